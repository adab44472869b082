/*
 * archive_push.c (cli): "pgvault archive-push PATH", PostgreSQL's
 * archive_command.  The work is pgwal_push() (src/pg/wal/archive.c): the
 * file is stored, compressed and encrypted like everything else, durably,
 * before the exit status 0 lets the server recycle the segment.
 *
 * The server runs this command as its own user, in the data directory, with
 * PATH and environment of the postmaster: the repository and the
 * configuration must be readable (and the repository writable) by that user.
 *
 * Asynchronous mode (--async or archive-async = on, with spool-path): this
 * call only waits for its file's note from a background pusher, which it
 * starts when none runs (src/pg/wal/async.h).  The pusher is forked before
 * anything is opened, double-forked into its own session so the archiver
 * does not wait for it, keeps stderr (the server's log) and opens its own
 * repository handle (cli/archive.h).
 */
#include "cli/archive.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/copy.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "common/fs.h"
#include "common/mem.h"
#include "pg/wal/archive.h"
#include "pg/wal/async.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault archive-push: archive one WAL file (PostgreSQL's archive_command)\n\n"
	"Usage:\n  pgvault archive-push [OPTIONS] PATH\n\n"
	"Stores the WAL segment, timeline history or backup history file at PATH in\n"
	"the repository, under the source's name and the file's timeline, compressed\n"
	"and (in an encrypted repository) encrypted.  Exit status 0 only once the\n"
	"file is durably stored.  Pushing a file that is already archived with the\n"
	"same content succeeds; a different file under an archived name is refused\n"
	"(exit status 5) and nothing is overwritten.  A segment of another database\n"
	"system than the one the source's archive belongs to is refused too.\n\n"
	"Options:\n"
	"  --async                  hand the file to a background pusher that archives\n"
	"                           every ready file ahead of the server, several at a\n"
	"                           time (or archive-async = on); needs --spool-path\n"
	"  --spool-path=DIR         local directory for the pusher's notes (spool-path)\n\n"
	"Configuration: archive-push-timeout (default 60s) bounds the wait in async\n"
	"mode; archive-push-queue-max (unset: never) makes the pusher DROP WAL once\n"
	"that much waits in pg_wal, with loud errors, so a broken archive cannot fill\n"
	"the disk and stop the primary (point-in-time recovery is lost until the next\n"
	"backup).\n\n"
	"Set it in postgresql.conf (the server runs it as its own user, which must be\n"
	"able to write to the repository):\n"
	"  archive_mode = on\n"
	"  archive_command = 'pgvault archive-push --repo /srv/pgvault --source main %%p'\n\n"
	"Examples:\n"
	"  pgvault archive-push --source main pg_wal/000000010000000000000003\n"
	"  pgvault archive-push --config /etc/pgvault/pgvault.conf %%p\n"
	"  pgvault archive-push --async --spool-path /var/spool/pgvault --source main %%p\n";

enum
{
	OPT_ASYNC = CLI_OPT_FIRST_COMMAND,
	OPT_SPOOL,
};

typedef struct Pusher
{
	CliArchiveHelper h;			/* first: the payload of cli_archive_helper_start */
	const CfgSection *sec;		/* the source's section (its secondaries), or NULL */
} Pusher;

/* The pusher keeps the source's other repositories in step, as the synchronous path does. */
static void
pusher_pushed(Repo *repo, const char *name, void *payload)
{
	const Pusher *p = payload;

	cli_sync_secondaries_wal(p->h.cfg, p->sec, repo, name);
}

static int
pusher_lock(const CliArchiveHelper *h, int *fd)
{
	return pgwal_async_lock(h->opts, fd);
}

static int
pusher_run(const CliArchiveHelper *h, Repo *repo)
{
	return pgwal_async_pusher_run(repo, h->opts);
}

/* Asynchronous mode: wait for the pusher's note about path. */
static int
push_async(PvConfig *cfg, const CliCommon *common, const CfgSection *sec, const char *source,
		   const char *path, const char *spool_opt)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *spool = NULL, *wal_dir = NULL;
	PgWalAsyncOpts o = {0};
	Pusher p = {.h = {.cfg = cfg, .common = common, .name = "archive-push pusher",
		.what = "the background pusher", .lock = pusher_lock, .run = pusher_run, .opts = &o}, .sec = sec};
	int rc;

	if ((rc = cli_archive_spool(&spool, cfg, spool_opt, source, "asynchronous archive-push")) < 0)
		return rc;
	wal_dir = pv_fs_path_dirname(path);
	o.spool = spool;
	o.source = source;
	o.wal_dir = wal_dir;
	o.jobs = (int) cfg_int(cfg, NULL, "jobs");
	o.timeout_ms = cfg_duration(cfg, NULL, "archive-push-timeout") * 1000;
	o.queue_max = cfg_size(cfg, NULL, "archive-push-queue-max");
	o.pushed = pusher_pushed;
	o.payload = &p;
	rc = pgwal_async_push(&o, name, cli_archive_helper_start, &p);
	pv_free(spool);
	pv_free(wal_dir);
	return rc;
}

int
cli_archive_push(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"async", no_argument, NULL, OPT_ASYNC},
		{"spool-path", required_argument, NULL, OPT_SPOOL},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	bool async = false;
	const char *spool = NULL;
	PvConfig *cfg = NULL;
	CfgSection *sec;
	Repo *repo = NULL;
	PgWalPushResult res;
	const char *source, *path;
	int64_t t0 = pv_time_monotonic_ms();
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_ASYNC)
			async = true;
		else if (opt == OPT_SPOOL)
			spool = optarg;
		else
			return cli_bad_option("archive-push", argv, opt);
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind == argc)
		return cli_usage_error("archive-push", "missing the WAL file path (%%p)");
	if (optind + 1 != argc)
		return cli_usage_error("archive-push", "unexpected argument '%s'", argv[optind + 1]);
	path = argv[optind];
	if ((rc = cli_archive_setup(&cfg, &source, &sec, &common)) < 0)
	{
		status = cli_archive_fail(rc, "archive-push", NULL, 1);
		goto done;
	}
	if (async || cfg_bool(cfg, NULL, "archive-async"))
	{
		if ((rc = push_async(cfg, &common, sec, source, path, spool)) < 0)
			status = cli_archive_fail(rc, "archive-push", path, 1);
		else
		{
			pv_log_detail("WAL file '%s' archived (asynchronously)", path);
			status = 0;
		}
		goto done;
	}
	if ((rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = pgwal_push(repo, source, path, &res)) < 0)
	{
		status = cli_archive_fail(rc, "archive-push", path, 1);
		goto done;
	}
	cli_sync_secondaries_wal(cfg, sec, repo, path);
	if (common.json)
	{
		json_t *j = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I}", "file", path, "source", source,
							  "already_archived", res.already_archived, "size",
							  (json_int_t) res.size, "stored", (json_int_t) res.stored,
							  "duration_ms", (json_int_t) (pv_time_monotonic_ms() - t0));

		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
	{
		char a[32], b[32], t[32];

		if (res.already_archived)
			pv_log_detail("WAL file '%s' was already archived (same content)", path);
		else
			pv_log_detail("archived WAL file '%s' (%s, stored %s) in %s", path,
						  pv_size_format(a, sizeof(a), res.size),
						  pv_size_format(b, sizeof(b), res.stored),
						  pv_elapsed_format(t, sizeof(t), pv_time_monotonic_ms() - t0));
	}
	status = 0;
done:
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
