/*
 * logical.h (cli): the logical modes of "pgvault backup" and "pgvault
 * restore", in their own files (backup_logical.c, restore_logical.c) so the
 * generic commands only need one dispatch line each.
 */
#ifndef PV_CLI_LOGICAL_H
#define PV_CLI_LOGICAL_H

#include "repo/manifest.h"

#include <stdbool.h>

typedef struct Repo Repo;

/* True when argv asks for a logical backup (--logical). */
bool cli_backup_logical_wanted(int argc, char **argv);
int cli_backup_logical(int argc, char **argv);

/* True when argv asks for a restore into a database (--target-db or --logical). */
bool cli_restore_logical_wanted(int argc, char **argv);
int cli_restore_logical(int argc, char **argv);

/*
 * 'latest' among logical backups (restore --target-db, export): the newest
 * logical backup of source (NULL: any) holding database want (NULL: any),
 * with all_only only those made with --all; safety backups (taken by
 * restore --clean) never count.  When none holds want, the newest is taken
 * if every logical backup is of one and the same database (a restore
 * under a new name); else PV_ENOTFOUND "'latest' is ambiguous ..." with a
 * hint naming --database.  *out_why (caller frees) says how it was chosen.
 */
int cli_logical_latest(char id[REPO_BACKUP_ID_LEN + 1], char **out_why, Repo *repo, const char *source,
					   const char *want, bool all_only);

#endif
