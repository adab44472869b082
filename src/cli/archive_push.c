/*
 * archive_push.c (cli): "pgvault archive-push PATH", PostgreSQL's
 * archive_command.  The work is pgwal_push() (src/pg/wal/archive.c): the
 * file is stored, compressed and encrypted like everything else, durably,
 * before the exit status 0 lets the server recycle the segment.
 *
 * The server runs this command as its own user, in the data directory, with
 * PATH and environment of the postmaster: the repository and the
 * configuration must be readable (and the repository writable) by that user.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/physical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "pg/wal/archive.h"
#include "repo/repo.h"

#include <stdio.h>

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
	"Set it in postgresql.conf (the server runs it as its own user, which must be\n"
	"able to write to the repository):\n"
	"  archive_mode = on\n"
	"  archive_command = 'pgvault archive-push --repo /srv/pgvault --source main %%p'\n\n"
	"Examples:\n"
	"  pgvault archive-push --source main pg_wal/000000010000000000000003\n"
	"  pgvault archive-push --config /etc/pgvault/pgvault.conf %%p\n";

int
cli_archive_push(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	PvConfig *cfg = NULL;
	CfgSection *sec;
	Repo *repo = NULL;
	PgWalPushResult res;
	const char *source, *path;
	int64_t t0 = pv_time_monotonic_ms();
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		if (!cli_common_option(&common, opt, optarg))
			return cli_bad_option("archive-push", argv, opt);
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
		(rc = cli_physical_source(&source, &sec, cfg, &common)) < 0 ||
		(rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = pgwal_push(repo, source, path, &res)) < 0)
	{
		pv_error_prefix(rc, "archive-push of '%s' failed", path);
		status = cli_fail(rc);
		goto done;
	}
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
