/*
 * archive_get.c (cli): "pgvault archive-get FILE DEST", PostgreSQL's
 * restore_command.  The work is pgwal_get() (src/pg/wal/archive.c): the
 * archived file is fetched, checked (length and SHA-256; the AEAD tag in an
 * encrypted repository) and written to DEST atomically (temp file, fsync,
 * rename), so the server never sees half a segment.
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
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/physical.h"

#include "common/error.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "pg/wal/archive.h"
#include "repo/repo.h"

#include <stdio.h>

#define ARCHIVE_GET_ABSENT 1
#define ARCHIVE_GET_FAILED 6

static const char help_text[] =
	"pgvault archive-get: fetch one WAL file from the archive (restore_command)\n\n"
	"Usage:\n  pgvault archive-get [OPTIONS] FILE DEST\n\n"
	"Fetches the archived WAL file FILE (a segment, timeline history or backup\n"
	"history file name) of the source, checks it and writes it to DEST\n"
	"atomically.  'pgvault restore' writes this command into the restored\n"
	"cluster's settings for you.\n\n"
	"Exit status: 0 the file is in place; 1 the archive has no such file; 2 bad\n"
	"usage or configuration; 3 the archived file is corrupt; 6 another failure\n"
	"(repository unreachable, I/O error).\n\n"
	"Examples:\n"
	"  restore_command = 'pgvault archive-get --repo /srv/pgvault --source main %%f %%p'\n"
	"  pgvault archive-get --source main 000000010000000000000003 /tmp/seg\n";

int
cli_archive_get(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	PvConfig *cfg = NULL;
	CfgSection *sec;
	Repo *repo = NULL;
	const char *source, *name, *dest;
	int64_t t0 = pv_time_monotonic_ms();
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		if (!cli_common_option(&common, opt, optarg))
			return cli_bad_option("archive-get", argv, opt);
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
	name = argv[optind];
	dest = argv[optind + 1];
	if ((rc = cli_setup(&common, &cfg)) < 0 ||
		(rc = cli_physical_source(&source, &sec, cfg, &common)) < 0 ||
		(rc = cli_repo_open(&repo, cfg, &common)) < 0)
	{
		status = cli_fail(rc);
		if (status == 1)
			status = ARCHIVE_GET_FAILED;
		goto done;
	}
	rc = pgwal_get(repo, source, name, dest);
	if (rc == PV_ENOTFOUND)
	{
		pv_log_info("%s", pv_error_msg());
		status = ARCHIVE_GET_ABSENT;
	}
	else if (rc < 0)
	{
		pv_error_prefix(rc, "archive-get of '%s' failed", name);
		status = cli_fail(rc);
		if (status == 1)
			status = ARCHIVE_GET_FAILED;
	}
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
