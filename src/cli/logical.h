/*
 * logical.h (cli): the logical modes of "pgvault backup" and "pgvault
 * restore", in their own files (backup_logical.c, restore_logical.c) so the
 * generic commands only need one dispatch line each.
 */
#ifndef PV_CLI_LOGICAL_H
#define PV_CLI_LOGICAL_H

#include <stdbool.h>

/* True when argv asks for a logical backup (--logical). */
bool cli_backup_logical_wanted(int argc, char **argv);
int cli_backup_logical(int argc, char **argv);

/* True when argv asks for a restore into a database (--target-db or --logical). */
bool cli_restore_logical_wanted(int argc, char **argv);
int cli_restore_logical(int argc, char **argv);

#endif
