/*
 * export.c (cli): "pgvault export ID --format plain", a logical backup as
 * an SQL script any psql loads (src/pg/logical/export.c): nobody is locked
 * into pgvault.  Standard output unless -o FILE; optionally compressed.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/logical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "pg/logical/logical.h"
#include "repo/lock.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help_text[] =
	"pgvault export: a logical backup as a plain SQL script\n\n"
	"Usage:\n  pgvault export ID --format plain [-o FILE|-] [OPTIONS]\n\n"
	"ID is a backup id, a unique prefix of one, or 'latest'.  The script loads\n"
	"into an empty database with psql alone:\n"
	"    psql -X -v ON_ERROR_STOP=1 -d NEWDB -f FILE\n"
	"It holds the schema (as pg_restore writes it), every table's rows as COPY\n"
	"blocks, sequence values, large objects, then indexes, constraints and\n"
	"triggers, refreshes the materialized views, and sets the database's own\n"
	"settings (ALTER DATABASE ... SET, ALTER ROLE ... IN DATABASE ... SET).\n\n"
	"A backup made with --all exports, without --database, as one script for a\n"
	"new cluster (as pg_dumpall writes): roles and tablespaces, then every\n"
	"database created with its encoding, locale, owner, settings and grants:\n"
	"    psql -X -v ON_ERROR_STOP=1 -d postgres -f FILE\n"
	"With --database NAME, only that database, as above.\n\n"
	"Options:\n"
	"  --format=plain           the only format (SQL text)\n"
	"  -o, --output=FILE        write FILE (made whole, then renamed into place);\n"
	"                           '-' or nothing: standard output\n"
	"  -t, --table=PATTERN      only these tables (pg_dump patterns; repeatable)\n"
	"  --compress=METHOD        zstd or gzip (optionally :LEVEL), or none\n"
	"  --database=NAME          the backed-up database: 'latest' is its newest\n"
	"                           backup; of a backup made with --all: only this one\n"
	"  -O, --no-owner           no ALTER ... OWNER statements\n"
	"  -x, --no-privileges      no GRANT/REVOKE statements\n\n"
	"Examples:\n"
	"  pgvault export latest --format plain -o shop.sql\n"
	"  pgvault export latest --format plain --compress zstd -o shop.sql.zst\n"
	"  pgvault export 20261122T023900Z --format plain -t public.orders | psql -d scratch\n"
	"  pgvault export latest --format plain -o cluster.sql   (an --all backup: every database)\n"
	"  pgvault export latest --format plain --database shop -o shop.sql\n";

enum
{
	OPT_FORMAT = CLI_OPT_FIRST_COMMAND,
	OPT_COMPRESS,
	OPT_DATABASE,
};

int
cli_export(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"format", required_argument, NULL, OPT_FORMAT},
		{"output", required_argument, NULL, 'o'},
		{"table", required_argument, NULL, 't'},
		{"compress", required_argument, NULL, OPT_COMPRESS},
		{"database", required_argument, NULL, OPT_DATABASE},
		{"no-owner", no_argument, NULL, 'O'},
		{"no-privileges", no_argument, NULL, 'x'},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	PgLogicalExportOpts o = {0};
	PgLogicalExportResult res = {0};
	const char *format = NULL;
	CfgSection *source = NULL;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoLock *lock = NULL;
	char latest_id[REPO_BACKUP_ID_LEN + 1] = "";
	char *latest_why = NULL;
	int opt, rc, status = 2;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":o:t:Ox", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_FORMAT:
				format = optarg;
				break;
			case 'o':
				o.output = optarg;
				break;
			case 't':
				pgfilter_patterns_add(&o.tables, optarg);
				break;
			case OPT_COMPRESS:
				o.compress = optarg;
				break;
			case OPT_DATABASE:
				o.database = optarg;
				break;
			case 'O':
				o.no_owner = true;
				break;
			case 'x':
				o.no_privileges = true;
				break;
			default:
				status = cli_bad_option("export", argv, opt);
				goto done;
		}
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		status = 0;
		goto done;
	}
	if ((status = cli_backup_arg(&o.backup, "export", argc, argv)) >= 0)
		goto done;
	if (format == NULL || strcmp(format, "plain") != 0)
	{
		if (format == NULL)
			status = cli_usage_error("export", "which format? only --format plain exists");
		else
			status = cli_usage_error("export", "unknown format '%s' (only 'plain')", format);
		goto done;
	}
	if ((o.output == NULL || strcmp(o.output, "-") == 0) && o.compress != NULL &&
		strncmp(o.compress, "none", 4) != 0 && isatty(STDOUT_FILENO))
	{
		status = cli_usage_error("export", "compressed output would go to the terminal: use -o FILE or a pipe");
		goto done;
	}
	if ((rc = cli_setup(&common, &cfg)) < 0 || (rc = cfg_source_pick(&source, cfg, common.source)) < 0 ||
		(rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {.command = "export"})) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	o.repo = repo;
	o.bindir = source ? cfg_str(cfg, source, "bindir") : NULL;
	if (strcmp(o.backup, "latest") == 0)
	{
		/* the newest logical backup (of --database), never a physical or safety backup */
		if ((rc = cli_logical_latest(latest_id, &latest_why, repo, source ? source->name : NULL, o.database,
									  false)) < 0)
		{
			status = cli_fail(rc);
			goto done;
		}
		pv_log_detail("%s: %s", latest_why, latest_id);
		o.backup = latest_id;
	}
	if ((rc = pglogical_export(&res, &o)) < 0)
	{
		pv_error_prefix(rc, "export of backup %s failed", res.id[0] ? res.id : o.backup);
		status = cli_fail(rc);
		goto done;
	}
	if (common.json)
	{
		json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "id", res.id,
							  "database", res.database, "output", o.output ? o.output : "-",
							  "tables", (json_int_t) res.tables, "rows", (json_int_t) res.rows,
							  "sequences", (json_int_t) res.sequences, "large_objects", (json_int_t) res.large_objects,
							  "bytes", (json_int_t) res.bytes, "written", (json_int_t) res.written,
							  "duration_ms", (json_int_t) res.elapsed_ms);

		/* with the script on stdout, the summary goes to stderr */
		pv_json_dump(o.output && strcmp(o.output, "-") != 0 ? stdout : stderr, j);
		json_decref(j);
	}
	else
	{
		char a[32], b[32], t[32];

		pv_log_info("exported backup %s (database '%s'): %llu tables (%llu rows), %llu sequences, %llu large objects;"
					" %s of SQL, %s written to %s in %s", res.id, res.database, (unsigned long long) res.tables,
					(unsigned long long) res.rows, (unsigned long long) res.sequences,
					(unsigned long long) res.large_objects, pv_size_format(a, sizeof(a), res.bytes),
					pv_size_format(b, sizeof(b), res.written),
					o.output && strcmp(o.output, "-") != 0 ? o.output : "standard output",
					pv_elapsed_format(t, sizeof(t), res.elapsed_ms));
	}
	status = 0;
done:
	pv_free(latest_why);
	pgfilter_patterns_clear(&o.tables);
	repo_lock_release(lock);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
