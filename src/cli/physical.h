/*
 * physical.h (cli): the physical modes of "pgvault backup" and "pgvault
 * restore" (backup_physical.c, restore_physical.c), so the generic commands
 * need one dispatch line each, and what the WAL commands (archive_push.c,
 * archive_get.c) share with them (physical.c).
 */
#ifndef PV_CLI_PHYSICAL_H
#define PV_CLI_PHYSICAL_H

#include "cli/cli.h"

#include <stdbool.h>

/* True when argv asks for a physical backup (--physical). */
bool cli_backup_physical_wanted(int argc, char **argv);
int cli_backup_physical(int argc, char **argv);

/* True when argv asks for a restore into a data directory (--pgdata or --physical). */
bool cli_restore_physical_wanted(int argc, char **argv);
int cli_restore_physical(int argc, char **argv);

/*
 * The source name under which a cluster's WAL and physical backups are
 * kept: --source (a [source:NAME] section, or, when the configuration has
 * none, just a name), else the only configured source, else "default".
 * *out_sec gets the section or NULL.  *out is lent (argv or cfg).
 * PV_EUSAGE for an invalid name or an unknown one when sources are configured.
 */
int cli_physical_source(const char **out, CfgSection **out_sec, PvConfig *cfg, const CliCommon *c);

/* The absolute path of the running pgvault binary; caller frees. */
char *cli_self_path(void);

#endif
