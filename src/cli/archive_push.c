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
 * repository handle.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/copy.h"
#include "cli/physical.h"

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

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
	PvConfig *cfg;
	const CliCommon *common;
	const PgWalAsyncOpts *opts;
	const CfgSection *sec;		/* the source's section (its secondaries), or NULL */
} Pusher;

/* The pusher keeps the source's other repositories in step, as the synchronous path does. */
static void
pusher_pushed(Repo *repo, const char *name, void *payload)
{
	const Pusher *p = payload;

	cli_sync_secondaries_wal(p->cfg, p->sec, repo, name);
}

/* The background pusher's process: never returns. */
static void __attribute__((noreturn))
pusher_main(const Pusher *p)
{
	Repo *repo = NULL;
	int lockfd, fd, rc;

	if (pgwal_async_lock(p->opts, &lockfd) != 1)
		_exit(0);				/* another pusher won the race */
	if ((fd = open("/dev/null", O_RDWR)) >= 0)
	{
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if ((rc = cli_repo_open(&repo, p->cfg, p->common)) < 0 ||
		(rc = pgwal_async_pusher_run(repo, p->opts)) < 0)
		pv_log_error("archive-push pusher: %s", pv_error_msg());
	repo_free(repo);
	_exit(rc < 0 ? 1 : 0);
}

static int
pusher_start(void *payload)
{
	pid_t pid = fork();
	int ws;

	if (pid < 0)
		return pv_error_errno(PV_ERROR, errno, "cannot start the background pusher");
	if (pid == 0)
	{
		setsid();
		if (fork() == 0)
			pusher_main(payload);
		_exit(0);
	}
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* Asynchronous mode: wait for the pusher's note about path. */
static int
push_async(PvConfig *cfg, const CliCommon *common, const CfgSection *sec, const char *source,
		   const char *path, const char *spool_opt)
{
	const char *spool_path = spool_opt ? spool_opt : cfg_str(cfg, NULL, "spool-path");
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *spool = NULL, *wal_dir = NULL;
	PgWalAsyncOpts o = {0};
	Pusher p = {cfg, common, &o, sec};
	int rc;

	if (spool_path == NULL)
	{
		pv_error_set(PV_ECONFIG, "asynchronous archive-push needs a spool directory");
		pv_error_hint("give --spool-path DIR or set spool-path in the configuration");
		return PV_ECONFIG;
	}
	if ((rc = pv_fs_path_absolute(&spool, spool_path)) < 0)
		return rc;
	wal_dir = pv_fs_path_dirname(path);
	o.spool = pv_fs_path_join(spool, source);
	o.source = source;
	o.wal_dir = wal_dir;
	o.jobs = (int) cfg_int(cfg, NULL, "jobs");
	o.timeout_ms = cfg_duration(cfg, NULL, "archive-push-timeout") * 1000;
	o.queue_max = cfg_size(cfg, NULL, "archive-push-queue-max");
	o.pushed = pusher_pushed;
	o.payload = &p;
	rc = pgwal_async_push(&o, name, pusher_start, &p);
	pv_free((char *) o.spool);
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
	if ((rc = cli_setup(&common, &cfg)) < 0 ||
		(rc = cli_physical_source(&source, &sec, cfg, &common)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (async || cfg_bool(cfg, NULL, "archive-async"))
	{
		if ((rc = push_async(cfg, &common, sec, source, path, spool)) < 0)
		{
			pv_error_prefix(rc, "archive-push of '%s' failed", path);
			status = cli_fail(rc);
		}
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
		pv_error_prefix(rc, "archive-push of '%s' failed", path);
		status = cli_fail(rc);
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
