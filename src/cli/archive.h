/*
 * archive.h (cli): what the WAL commands archive-push (archive_push.c) and
 * archive-get (archive_get.c) share: their setup, the mapping of a failure
 * to an exit status, the spool directory, and the background helper each
 * may start (archive-push's pusher, archive-get's prefetcher).
 *
 * A helper is forked before the command opens anything, double-forked into
 * its own session so the server process that runs the command does not
 * wait for it; it keeps stderr (the server's log), takes its lock (a
 * helper that loses the race exits quietly), opens its own repository
 * handle and logs its failure, if any, as one line.
 */
#ifndef PV_CLI_ARCHIVE_H
#define PV_CLI_ARCHIVE_H

#include "cli/cli.h"

typedef struct CliArchiveHelper CliArchiveHelper;

struct CliArchiveHelper
{
	PvConfig *cfg;
	const CliCommon *common;
	const char *name;			/* "archive-push pusher": the start of its log line */
	const char *what;			/* "the background pusher": "cannot start <what>" */
	/* In the helper: 1 when it holds its lock, else it exits (another one runs). */
	int (*lock) (const CliArchiveHelper *h, int *fd);
	/* In the helper, holding the lock: its work on its own repository handle. */
	int (*run) (const CliArchiveHelper *h, struct Repo *repo);
	const void *opts;			/* what lock and run read (PgWalAsyncOpts, PgWalPrefetchOpts) */
};

/* Start the helper h (a CliArchiveHelper *, as pgwal's start callbacks take it); 0 or an error. */
int cli_archive_helper_start(void *h);

/*
 * Set up a WAL command: the configuration (cli_setup), then the source
 * (cli_physical_source).  *cfg is set (maybe NULL) even on failure.
 */
int cli_archive_setup(PvConfig **cfg, const char **source, CfgSection **sec, const CliCommon *common);

/*
 * Report a failure and return its exit status: the error prefixed with
 * "<command> of '<file>' failed" (file NULL: as it is), then cli_fail; the
 * general status 1 becomes status_general (archive-get keeps 1 for "no such
 * file").
 */
int cli_archive_fail(int rc, const char *command, const char *file, int status_general);

/*
 * The spool directory of source: spool_opt (--spool-path), else spool-path,
 * made absolute, plus "/<source>"; caller frees.  PV_ECONFIG saying that
 * what ("asynchronous archive-push") needs one when neither is set.
 */
int cli_archive_spool(char **out, PvConfig *cfg, const char *spool_opt, const char *source, const char *what);

#endif
