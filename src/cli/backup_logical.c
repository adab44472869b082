/*
 * backup_logical.c (cli): "pgvault backup --logical", a logical backup of
 * one database, or with --all of every database plus the globals
 * (src/pg/logical).  Reached from cli_backup() when --logical
 * is on the command line; parses its own options, spelt as pg_dump spells
 * them.
 */
#include "cli/cli.h"
#include "cli/copy.h"
#include "cli/logical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "pg/logical/logical.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault backup --logical: back up one database (or all), faster than pg_dump\n\n"
	"Usage:\n  pgvault backup --logical [OPTIONS]\n  pgvault backup --logical --all [OPTIONS]\n\n"
	"One snapshot for everything: the schema (pg_dump --schema-only, custom\n"
	"format), every table's rows (parallel COPY; big tables are split into page\n"
	"ranges so one table uses every worker), sequence values and large objects.\n"
	"Each table's row count and content fingerprint are recorded.  Only data the\n"
	"repository does not hold yet is stored.\n\n"
	"Options:\n"
	"  --logical                a logical backup (this mode)\n"
	"  -j, --jobs=N             worker connections (default 2, or 'jobs' setting)\n"
	"  -t, --table=PATTERN      only tables matching PATTERN (repeatable)\n"
	"  -T, --exclude-table=PATTERN  not these tables (repeatable)\n"
	"  -n, --schema=PATTERN     only these schemas (repeatable)\n"
	"  -N, --exclude-schema=PATTERN not these schemas (repeatable)\n"
	"  --exclude-table-data=PATTERN  keep the definition, not the rows\n"
	"  -s, --schema-only        definitions only\n"
	"  -a, --data-only          rows, sequence values and large objects only\n"
	"  --strict-names           every -t/-n pattern must match something\n"
	"  --split-size=SIZE        split tables larger than this (default 512MiB)\n"
	"  --no-progress            no progress line on a terminal\n"
	"  --all                    every connectable database (but template0), each\n"
	"                           with its own snapshot, plus the globals: roles,\n"
	"                           memberships, role settings, tablespaces\n"
	"                           (pg_dumpall --globals-only), in one backup\n"
	"  --exclude-database=PATTERN  with --all: not these databases (repeatable)\n"
	"  --with-role-passwords    with --all: keep the roles' password hashes (the\n"
	"                           backup then holds secrets; encrypt the repository)\n\n"
	"Patterns follow pg_dump: * and ? are wildcards, \"Quoted\" parts are literal,\n"
	"and schema.table qualifies.  A -t or -n that matches nothing is an error.\n\n"
	"Output: the backup id on the first line, then a summary; with --json one\n"
	"JSON object.\n\n"
	"Examples:\n"
	"  pgvault backup --logical -d shop --repo /srv/pgvault\n"
	"  pgvault backup --logical -d shop -j 4 -N audit --exclude-table-data 'log_*'\n"
	"  pgvault backup --logical --source prod -t 'public.order*' --json\n"
	"  pgvault backup --logical --all --exclude-database 'scratch_*' -h db1\n";

enum
{
	OPT_LOGICAL = CLI_OPT_FIRST_COMMAND + 50,
	OPT_EXCLUDE_DATA,
	OPT_STRICT,
	OPT_SPLIT,
	OPT_NO_PROGRESS,
	OPT_ALL,
	OPT_EXCLUDE_DATABASE,
	OPT_WITH_ROLE_PASSWORDS,
};

bool
cli_backup_logical_wanted(int argc, char **argv)
{
	return cli_argv_has(argc, argv, (const char *const[]) {"--logical", NULL}, false);
}

static void
summary_print(bool json, const PgLogicalBackupResult *r)
{
	char size[32], stored[32], fresh[32], took[32], data[32];
	const RepoWriterStats *s = &r->stats;

	if (json)
	{
		json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
							  "id", r->id, "kind", "logical", "database", r->database,
							  "databases", (json_int_t) r->databases,
							  "tables", (json_int_t) r->tables, "parts", (json_int_t) r->parts,
							  "rows", (json_int_t) r->rows, "sequences", (json_int_t) r->sequences,
							  "large_objects", (json_int_t) r->large_objects,
							  "data_bytes", (json_int_t) r->data_bytes,
							  "logical_bytes", (json_int_t) s->logical_bytes,
							  "stored_bytes", (json_int_t) s->stored_bytes,
							  "new_bytes", (json_int_t) s->new_bytes,
							  "new_chunks", (json_int_t) s->new_chunks,
							  "items", (json_int_t) s->items, "duration_ms", (json_int_t) r->elapsed_ms);

		pv_json_dump(stdout, j);
		json_decref(j);
		return;
	}
	printf("%s\n", r->id);
	if (strcmp(r->database, "*") == 0)
		printf("backup %s of %llu databases and %llu roles: %llu tables (%llu rows, %s), %llu sequences,"
			   " %llu large objects; size %s, stored %s, new %s, %s\n", r->id, (unsigned long long) r->databases,
			   (unsigned long long) r->roles, (unsigned long long) r->tables, (unsigned long long) r->rows,
			   pv_size_format(data, sizeof(data), r->data_bytes), (unsigned long long) r->sequences,
			   (unsigned long long) r->large_objects, pv_size_format(size, sizeof(size), s->logical_bytes),
			   pv_size_format(stored, sizeof(stored), s->stored_bytes),
			   pv_size_format(fresh, sizeof(fresh), s->new_bytes), pv_elapsed_format(took, sizeof(took), r->elapsed_ms));
	else
		printf("backup %s of database '%s': %llu tables (%llu rows, %s), %llu sequences, %llu large objects;"
			   " size %s, stored %s, new %s, %s\n", r->id, r->database,
			   (unsigned long long) r->tables, (unsigned long long) r->rows,
			   pv_size_format(data, sizeof(data), r->data_bytes), (unsigned long long) r->sequences,
			   (unsigned long long) r->large_objects, pv_size_format(size, sizeof(size), s->logical_bytes),
			   pv_size_format(stored, sizeof(stored), s->stored_bytes),
			   pv_size_format(fresh, sizeof(fresh), s->new_bytes), pv_elapsed_format(took, sizeof(took), r->elapsed_ms));
}

int
cli_backup_logical(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS, CLI_CONN_LONGOPTS,
		{"logical", no_argument, NULL, OPT_LOGICAL},
		{"jobs", required_argument, NULL, 'j'},
		{"table", required_argument, NULL, 't'},
		{"exclude-table", required_argument, NULL, 'T'},
		{"schema", required_argument, NULL, 'n'},
		{"exclude-schema", required_argument, NULL, 'N'},
		{"exclude-table-data", required_argument, NULL, OPT_EXCLUDE_DATA},
		{"schema-only", no_argument, NULL, 's'},
		{"data-only", no_argument, NULL, 'a'},
		{"strict-names", no_argument, NULL, OPT_STRICT},
		{"split-size", required_argument, NULL, OPT_SPLIT},
		{"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
		{"all", no_argument, NULL, OPT_ALL},
		{"exclude-database", required_argument, NULL, OPT_EXCLUDE_DATABASE},
		{"with-role-passwords", no_argument, NULL, OPT_WITH_ROLE_PASSWORDS},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	PgLogicalBackupOpts o = {.progress = true};
	PgLogicalBackupResult res;
	CfgSection *source = NULL;
	const char *jobs = NULL, *split = NULL;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	int opt, rc, status;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":" CLI_CONN_SHORTOPTS "j:t:T:n:N:sa", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_LOGICAL:
				break;
			case 'j':
				jobs = optarg;
				break;
			case 't':
				pgfilter_patterns_add(&o.filter.tables, optarg);
				break;
			case 'T':
				pgfilter_patterns_add(&o.filter.exclude_tables, optarg);
				break;
			case 'n':
				pgfilter_patterns_add(&o.filter.schemas, optarg);
				break;
			case 'N':
				pgfilter_patterns_add(&o.filter.exclude_schemas, optarg);
				break;
			case OPT_EXCLUDE_DATA:
				pgfilter_patterns_add(&o.filter.exclude_table_data, optarg);
				break;
			case 's':
				o.schema_only = true;
				break;
			case 'a':
				o.data_only = true;
				break;
			case OPT_STRICT:
				o.filter.strict_names = true;
				break;
			case OPT_SPLIT:
				split = optarg;
				break;
			case OPT_NO_PROGRESS:
				o.progress = false;
				break;
			case OPT_ALL:
				o.all = true;
				break;
			case OPT_EXCLUDE_DATABASE:
				pgfilter_patterns_add(&o.exclude_databases, optarg);
				break;
			case OPT_WITH_ROLE_PASSWORDS:
				o.with_role_passwords = true;
				break;
			default:
				status = cli_bad_option("backup", argv, opt);
				goto done;
		}
	}
	if (common.help)
	{
		cli_print_help(help_text, true);
		status = 0;
		goto done;
	}
	if (optind < argc)
	{
		status = cli_usage_error("backup", "unexpected argument '%s'", argv[optind]);
		goto done;
	}
	if (o.schema_only && o.data_only)
	{
		status = cli_usage_error("backup", "options --schema-only and --data-only cannot be used together");
		goto done;
	}
	if (jobs != NULL && !cli_int_parse(&o.jobs, jobs, 1, 256))
	{
		status = cli_usage_error("backup", "invalid number of jobs '%s' (1 to 256)", jobs);
		goto done;
	}
	if (o.all && (o.filter.tables.n || o.filter.schemas.n || o.filter.exclude_tables.n ||
				  o.filter.exclude_schemas.n || o.filter.exclude_table_data.n))
	{
		status = cli_usage_error("backup", "table and schema filters cannot be used with --all");
		goto done;
	}
	if (!o.all && (o.exclude_databases.n > 0 || o.with_role_passwords))
	{
		status = cli_usage_error("backup", "%s needs --all",
								 o.with_role_passwords ? "--with-role-passwords" : "--exclude-database");
		goto done;
	}
	if (split != NULL && (rc = pv_size_parse(&o.split_size, split)) < 0)
	{
		status = cli_usage_error("backup", "%s", pv_error_msg());
		goto done;
	}
	if ((rc = cli_setup(&common, &cfg)) < 0 || (rc = cli_conn_opts(&o.conn, &source, &common, cfg)) < 0 ||
		(rc = cli_repo_open(&repo, cfg, &common)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (o.jobs == 0)
		o.jobs = cfg_int(cfg, NULL, "jobs") > 0 ? (int) cfg_int(cfg, NULL, "jobs") : 2;
	o.conn.application_name = "pgvault backup";
	o.bindir = source ? cfg_str(cfg, source, "bindir") : NULL;
	o.source = source ? source->name : common.source;
	o.repo = repo;
	if ((rc = pglogical_backup(&res, &o)) < 0)
	{
		if (res.id[0])
			pv_error_prefix(rc, "backup %s failed (nothing was recorded)", res.id);
		else
			pv_error_prefix(rc, "logical backup failed (nothing was recorded)");
		status = cli_fail(rc);
		goto done;
	}
	summary_print(common.json, &res);
	/* Keep the source's other repositories in step; a failure only warns. */
	cli_sync_secondaries(cfg, source, repo, res.id);
	status = 0;
done:
	pgfilter_clear(&o.filter);
	pgfilter_patterns_clear(&o.exclude_databases);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
