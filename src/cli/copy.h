/*
 * copy.h (cli): keeping a source's other repositories in step, for the
 * commands that write to a repository ("pgvault copy" itself is
 * cli_copy in commands.h).
 *
 * A source may name several repositories ([source:NAME] repos = a, b, ...;
 * the first is the primary).  After a backup or an archive-push to one of
 * them succeeded, the commands call the matching function below: it copies
 * what was just written to every other repository of the source.  Failing
 * to do so never fails the command (the backup is safe in the repository
 * it went to): it is logged as a warning and recorded in that repository
 * as lag (repo/copy.h, records/lag/<secondary>/...), which status reports
 * and the next sync retries.
 *
 * Nothing happens when source is NULL, names fewer than two repositories,
 * or when the repository written to is not one of them (the user chose
 * another one with --repo).
 */
#ifndef PV_CLI_COPY_H
#define PV_CLI_COPY_H

#include "config/config.h"

struct Repo;

/*
 * After backup id was committed to primary: copy it, then what the source's
 * WAL archive in primary has that a secondary lacks, then retry the
 * backups earlier syncs failed to copy.  Returns the number of secondaries
 * that still lag (0: all in step); never an error.
 */
int cli_sync_secondaries(PvConfig *cfg, const CfgSection *source, struct Repo *primary,
						 const char *id);

/* The same, with the source given by name (NULL or unknown: nothing to do), for file backups. */
int cli_sync_secondaries_by_name(PvConfig *cfg, const char *source, struct Repo *primary,
								 const char *id);

/*
 * After archive-push stored wal_path (a path or a file name; its base name
 * is used) in primary: copy that file to every other repository.  A
 * secondary that lags for WAL is retried (a whole catch-up of the source's
 * archive) at most every few minutes, so a secondary that is down does not
 * slow every archive_command down.  wal_path NULL: copy whatever the
 * secondaries lack of the source's archive (for the asynchronous pusher,
 * once per run).  Returns the number of secondaries that lag; never an
 * error.
 */
int cli_sync_secondaries_wal(PvConfig *cfg, const CfgSection *source, struct Repo *primary,
							 const char *wal_path);

#endif
