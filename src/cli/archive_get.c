/*
 * archive_get.c (cli): "pgvault archive-get FILE DEST", PostgreSQL's
 * restore_command.  The work is pgwal_get() (src/pg/wal/archive.c): the
 * archived file is fetched, checked (length and SHA-256; the AEAD tag in an
 * encrypted repository) and written to DEST atomically (temp file, fsync,
 * rename), so the server never sees half a segment.
 *
 * With --prefetch N (or archive-get-prefetch) and a spool directory, a
 * background prefetcher keeps the next N segments fetched and checked in
 * the spool, so recovery is not bound by the repository's latency
 * (src/pg/wal/prefetch.h); it is forked before anything is opened, like
 * archive-push's pusher (cli/archive.h).
 *
 * Exit statuses follow restore_command's contract: 0 the file is in place;
 * 1 the archive has no such file (the normal end of recovery, and the
 * answer to the server's probes for history files); anything else is a
 * real failure: 2 bad usage or configuration, 3 the archived file is
 * corrupt, 6 any other failure (repository unreachable, I/O error).  Note
 * that PostgreSQL treats every status from 1 to 125 alike (file not
 * available): the distinction is for the operator reading the server log,
 * where the reason is logged as an error.
 */
#include "cli/archive.h"
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "common/fs.h"
#include "common/mem.h"
#include "pg/wal/archive.h"
#include "pg/wal/prefetch.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>

#define ARCHIVE_GET_ABSENT 1
#define ARCHIVE_GET_FAILED 6

static const char help_text[] =
	"pgvault archive-get: fetch one WAL file from the archive (restore_command)\n\n"
	"Usage:\n  pgvault archive-get [OPTIONS] FILE DEST\n\n"
	"Fetches the archived WAL file FILE (a segment, timeline history or backup\n"
	"history file name) of the source, checks it and writes it to DEST\n"
	"atomically.  'pgvault restore' writes this command into the restored\n"
	"cluster's settings for you.\n\n"
	"Options:\n"
	"  --prefetch=N             keep the next N segments fetched ahead, in the\n"
	"                           background (or archive-get-prefetch); needs\n"
	"                           --spool-path\n"
	"  --spool-path=DIR         local directory for prefetched segments\n\n"
	"Exit status: 0 the file is in place; 1 the archive has no such file; 2 bad\n"
	"usage or configuration; 3 the archived file is corrupt; 6 another failure\n"
	"(repository unreachable, I/O error).\n\n"
	"Examples:\n"
	"  restore_command = 'pgvault archive-get --repo /srv/pgvault --source main %%f %%p'\n"
	"  pgvault archive-get --source main 000000010000000000000003 /tmp/seg\n";

enum
{
	OPT_PREFETCH = CLI_OPT_FIRST_COMMAND,
	OPT_SPOOL,
};

/* Open the repository; a missing one is a configuration error, never "not archived". */
static int
get_repo_open(Repo **out, PvConfig *cfg, const CliCommon *common)
{
	int rc = cli_repo_open(out, cfg, common);

	return rc == PV_ENOTFOUND ? pv_error_prefix(PV_ECONFIG, "cannot open the repository") : rc;
}

static int
repo_open_cb(Repo **out, void *payload)
{
	CliArchiveHelper *h = payload;

	return get_repo_open(out, h->cfg, h->common);
}

static int
prefetcher_lock(const CliArchiveHelper *h, int *fd)
{
	return pgwal_prefetch_lock(h->opts, fd);
}

static int
prefetcher_run(const CliArchiveHelper *h, Repo *repo)
{
	return pgwal_prefetch_run(repo, h->opts);
}

static int
get_prefetch(PvConfig *cfg, const CliCommon *common, const char *source, const char *name,
			 const char *dest, int count, const char *spool_opt)
{
	PgWalPrefetchOpts o = {0};
	CliArchiveHelper h = {.cfg = cfg, .common = common, .name = "archive-get prefetcher",
		.what = "the prefetcher", .lock = prefetcher_lock, .run = prefetcher_run, .opts = &o};
	char *spool = NULL;
	int rc;

	if ((rc = cli_archive_spool(&spool, cfg, spool_opt, source, "archive-get --prefetch")) < 0)
		return rc;
	o.spool = spool;
	o.source = source;
	o.count = count;
	o.jobs = (int) cfg_int(cfg, NULL, "jobs");
	rc = pgwal_prefetch_get(&o, name, dest, repo_open_cb, cli_archive_helper_start, &h);
	pv_free(spool);
	return rc;
}

int
cli_archive_get(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"prefetch", required_argument, NULL, OPT_PREFETCH},
		{"spool-path", required_argument, NULL, OPT_SPOOL},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	const char *prefetch = NULL, *spool = NULL;
	int count = 0;
	PvConfig *cfg = NULL;
	CfgSection *sec;
	Repo *repo = NULL;
	const char *source, *name, *dest;
	int64_t t0 = pv_time_monotonic_ms();
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_PREFETCH)
			prefetch = optarg;
		else if (opt == OPT_SPOOL)
			spool = optarg;
		else
			return cli_bad_option("archive-get", argv, opt);
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (argc - optind < 2)
		return cli_usage_error("archive-get", "need the WAL file name (%%f) and the destination "
							   "path (%%p)");
	if (argc - optind > 2)
		return cli_usage_error("archive-get", "unexpected argument '%s'", argv[optind + 2]);
	if (prefetch != NULL && !cli_int_parse(&count, prefetch, 0, 1024))
		return cli_usage_error("archive-get", "invalid --prefetch '%s' (0 to 1024 segments)", prefetch);
	name = argv[optind];
	dest = argv[optind + 1];
	if ((rc = cli_archive_setup(&cfg, &source, &sec, &common)) < 0)
	{
		status = cli_archive_fail(rc, "archive-get", NULL, ARCHIVE_GET_FAILED);
		goto done;
	}
	if (prefetch == NULL)
		count = (int) cfg_int(cfg, NULL, "archive-get-prefetch");
	if (count > 0)
		rc = get_prefetch(cfg, &common, source, name, dest, count, spool);
	else if ((rc = get_repo_open(&repo, cfg, &common)) == 0)
		rc = pgwal_get(repo, source, name, dest);
	if (rc == PV_ENOTFOUND)
	{
		pv_log_info("%s", pv_error_msg());
		status = ARCHIVE_GET_ABSENT;
	}
	else if (rc < 0)
		status = cli_archive_fail(rc, "archive-get", name, ARCHIVE_GET_FAILED);
	else
	{
		char t[32];

		pv_log_detail("restored WAL file '%s' from the archive in %s", name,
					  pv_elapsed_format(t, sizeof(t), pv_time_monotonic_ms() - t0));
		status = 0;
	}
done:
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
