/*
 * backup_physical.c (cli): "pgvault backup --physical", a base backup of a
 * local cluster into the repository.  The work is pgphys_backup()
 * (src/pg/physical/backup.c); this file parses options, connects, prints
 * the summary and picks the exit status: 0 done; 3 done, but pages failed
 * their checksums (the backup exists and says so in its manifest); other
 * failures leave no backup.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/copy.h"
#include "cli/physical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "pg/physical/backup.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault backup --physical: back up a whole cluster (base backup)\n\n"
	"Usage:\n  pgvault backup --physical [OPTIONS]\n\n"
	"Copies the data directory and every tablespace between pg_backup_start and\n"
	"pg_backup_stop, on the database host, with the exclusions of PostgreSQL's\n"
	"own base backup.  Files unchanged since the previous physical backup of the\n"
	"source are not read again; changed relation files store only their changed\n"
	"256 KiB regions.  Page checksums are verified while reading.  The backup is\n"
	"recorded only once the WAL from its start to its end is in the repository,\n"
	"so archive_command must run 'pgvault archive-push' into the same repository\n"
	"and source (see 'pgvault archive-push --help').\n\n"
	"Options:\n"
	"  --physical               a physical backup (this mode)\n"
	"  --pgdata=DIR             the data directory (default: the source's pgdata,\n"
	"                           else the server's data_directory)\n"
	"  -j, --jobs=N             files read in parallel (default: one per core)\n"
	"  --checkpoint=fast|spread start with an immediate checkpoint (default) or\n"
	"                           a spread one that disturbs the server less\n"
	"  --full                   read every file, reuse nothing of the previous backup\n"
	"  --archive-wait-timeout=DURATION\n"
	"                           how long to wait for the WAL to be archived\n"
	"                           (default 60s)\n"
	"  --with-wal               also store the WAL from the backup's start to its\n"
	"                           end in the backup itself (once it is archived), so\n"
	"                           it can be restored to a consistent state even when\n"
	"                           the archive has lost those segments\n"
	"  --no-external-config     leave out configuration files that live outside the\n"
	"                           data directory (postgresql.conf, pg_hba.conf,\n"
	"                           pg_ident.conf and their includes, as Debian keeps\n"
	"                           them in /etc/postgresql/VERSION/CLUSTER); by default\n"
	"                           they are stored with the backup, under their\n"
	"                           original paths (see 'pgvault restore --help')\n\n"
	"Output: the backup id on the first line, then a summary; with --json one\n"
	"JSON object.  Exit status 3 means the backup was made but some pages failed\n"
	"their checksums: the cluster has damaged pages (named in the log).\n\n"
	"Examples:\n"
	"  pgvault backup --physical --source main\n"
	"  pgvault backup --physical --repo /srv/pgvault --source main --pgdata "
	"/var/lib/postgresql/15/main\n"
	"  pgvault backup --physical --checkpoint spread -j 4 --json\n"
	"  pgvault backup --physical --source main --with-wal\n";

enum
{
	OPT_PHYSICAL = CLI_OPT_FIRST_COMMAND,
	OPT_PGDATA,
	OPT_CHECKPOINT,
	OPT_FULL,
	OPT_ARCHIVE_WAIT,
	OPT_WITH_WAL,
	OPT_NO_EXTCONF,
};

bool
cli_backup_physical_wanted(int argc, char **argv)
{
	return cli_argv_has(argc, argv, (const char *const[]) {"--physical", NULL}, false);
}

static void
summary_print(bool json, const char *source, const PgPhysBackupResult *r)
{
	char size[32], stored[32], fresh[32], readb[32], took[32];

	if (json)
	{
		json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
							  " s:I, s:i, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}",
							  "id", r->id, "kind", "physical", "source", source,
							  "parent", r->parent[0] ? json_string(r->parent) : json_null(),
							  "files", (json_int_t) r->files,
							  "files_reused", (json_int_t) r->files_reused,
							  "bytes_read", (json_int_t) r->bytes_read,
							  "items", (json_int_t) r->stats.items,
							  "logical_bytes", (json_int_t) r->stats.logical_bytes,
							  "chunks", (json_int_t) r->stats.chunks,
							  "stored_bytes", (json_int_t) r->stats.stored_bytes,
							  "new_chunks", (json_int_t) r->stats.new_chunks,
							  "new_bytes", (json_int_t) r->stats.new_bytes,
							  "new_raw_bytes", (json_int_t) r->stats.new_raw_bytes,
							  "timeline", (int) r->timeline,
							  "start_lsn", r->start_lsn, "stop_lsn", r->stop_lsn,
							  "start_wal", r->start_wal, "stop_wal", r->stop_wal,
							  "checksums_verified", r->checksums_verified,
							  "checksum_failures", (json_int_t) r->checksum_failures,
							  "duration_ms", (json_int_t) r->duration_ms,
							  "wal_wait_ms", (json_int_t) r->wal_wait_ms);

		json_object_set_new(j, "wal_included", json_boolean(r->wal_files > 0));
		json_object_set_new(j, "wal_files", json_integer(r->wal_files));
		json_object_set_new(j, "external_config_files", json_integer(r->extconf_files));
		pv_json_dump(stdout, j);
		json_decref(j);
		return;
	}
	printf("%s\n", r->id);
	printf("backup %s (physical, source %s): %llu files (%llu unchanged), %s, read %s, new %s "
		   "(stored %s in all); WAL %s..%s; %s\n", r->id, source, (unsigned long long) r->files,
		   (unsigned long long) r->files_reused,
		   pv_size_format(size, sizeof(size), r->stats.logical_bytes),
		   pv_size_format(readb, sizeof(readb), r->bytes_read),
		   pv_size_format(fresh, sizeof(fresh), r->stats.new_bytes),
		   pv_size_format(stored, sizeof(stored), r->stats.stored_bytes),
		   r->start_wal, r->stop_wal, pv_elapsed_format(took, sizeof(took), r->duration_ms));
	if (r->wal_files > 0)
		printf("backup %s carries its WAL (%u files): restorable without the archive\n", r->id,
			   r->wal_files);
	if (r->extconf_files > 0)
		printf("backup %s holds %u configuration files from outside the data directory\n",
			   r->id, r->extconf_files);
}

static int
jobs_parse(int *out, const char *text)
{
	if (!cli_int_parse(out, text, 0, 256))
		return pv_error_set(PV_EUSAGE, "invalid number of jobs '%s' (0 to 256; 0 = one per core)",
							text);
	return 0;
}

int
cli_backup_physical(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS, CLI_CONN_LONGOPTS,
		{"physical", no_argument, NULL, OPT_PHYSICAL},
		{"pgdata", required_argument, NULL, OPT_PGDATA},
		{"jobs", required_argument, NULL, 'j'},
		{"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
		{"full", no_argument, NULL, OPT_FULL},
		{"archive-wait-timeout", required_argument, NULL, OPT_ARCHIVE_WAIT},
		{"with-wal", no_argument, NULL, OPT_WITH_WAL},
		{"no-external-config", no_argument, NULL, OPT_NO_EXTCONF},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0}, conn_common;
	PgPhysBackupOpts o = {0};
	PgPhysBackupResult res;
	PgConnOpts copts;
	PvConfig *cfg = NULL;
	CfgSection *sec = NULL;
	Repo *repo = NULL;
	PGconn *conn = NULL;
	const char *jobs = NULL, *checkpoint = NULL, *wait = NULL, *source = NULL;
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:" CLI_CONN_SHORTOPTS, longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_PHYSICAL:
				break;
			case OPT_PGDATA:
				o.pgdata = optarg;
				break;
			case 'j':
				jobs = optarg;
				break;
			case OPT_CHECKPOINT:
				checkpoint = optarg;
				break;
			case OPT_FULL:
				o.full = true;
				break;
			case OPT_ARCHIVE_WAIT:
				wait = optarg;
				break;
			case OPT_WITH_WAL:
				o.with_wal = true;
				break;
			case OPT_NO_EXTCONF:
				o.no_extconf = true;
				break;
			default:
				return cli_bad_option("backup", argv, opt);
		}
	}
	if (common.help)
	{
		cli_print_help(help_text, true);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("backup", "unexpected argument '%s'", argv[optind]);
	if (checkpoint != NULL && strcmp(checkpoint, "fast") != 0 && strcmp(checkpoint, "spread") != 0)
		return cli_usage_error("backup", "--checkpoint must be 'fast' or 'spread', not '%s'",
							   checkpoint);
	o.spread_checkpoint = checkpoint != NULL && strcmp(checkpoint, "spread") == 0;
	if (jobs != NULL && jobs_parse(&o.jobs, jobs) < 0)
		return cli_usage_error("backup", "%s", pv_error_msg());

	if ((rc = cli_setup(&common, &cfg)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (wait != NULL && (rc = cfg_set(cfg, &cfg->global, "archive-wait-timeout", wait,
									  CFG_ORIGIN_CLI)) < 0)
	{
		status = cli_usage_error("backup", "%s", pv_error_msg());
		goto done;
	}
	/* --source without a configured source is only the archive's name: libpq's environment connects */
	conn_common = common;
	if (cfg->nsources == 0)
		conn_common.source = NULL;
	if ((rc = cli_physical_source(&source, &sec, cfg, &common)) < 0 ||
		(rc = cli_conn_opts(&copts, NULL, &conn_common, cfg)) < 0 ||
		(rc = cli_repo_open(&repo, cfg, &common)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (jobs == NULL)
		o.jobs = (int) cfg_int(cfg, NULL, "jobs");
	if (o.pgdata == NULL && sec != NULL)
		o.pgdata = cfg_str(cfg, sec, "pgdata");
	o.archive_wait_ms = cfg_duration(cfg, NULL, "archive-wait-timeout") * 1000;
	copts.application_name = "pgvault backup";
	if ((rc = pgconn_connect(&conn, &copts)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	o.repo = repo;
	o.conn = conn;
	o.source = source;
	o.progress_ms = common.json ? -1 : 0;
	if ((rc = pgphys_backup(&res, &o)) < 0)
	{
		if (res.id[0])
			pv_error_prefix(rc, "backup %s failed (nothing was recorded)", res.id);
		else
			pv_error_prefix(rc, "physical backup failed (nothing was recorded)");
		status = cli_fail(rc);
		goto done;
	}
	summary_print(common.json, source, &res);
	/* Keep the source's other repositories in step; a failure only warns. */
	cli_sync_secondaries(cfg, sec, repo, res.id);
	status = 0;
	if (res.checksum_failures > 0)
	{
		pv_log_warn("backup %s is complete, but %llu pages in %llu files failed their checksums: "
					"the cluster has damaged pages (listed above and in the backup's manifest)",
					res.id, (unsigned long long) res.checksum_failures,
					(unsigned long long) res.checksum_files);
		status = pv_error_exit_status(PV_ECORRUPT);
	}
	else if (!res.checksums_verified)
		pv_log_detail("the cluster has no data checksums: pages were not verified");
done:
	if (conn != NULL)
		PQfinish(conn);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
