/*
 * drill.c (cli): "pgvault drill", a test restore that runs itself: restore
 * a backup into a scratch cluster, check it against what the backup
 * recorded, time it against the RTO, record the report in the repository.
 * The drill itself is src/ops/drill.c; this file picks the settings (the
 * backup's source section, then [global], then the command line), prints
 * the report and turns it into an exit status.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "ops/drill.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault drill: prove a backup restorable, and measure how long it takes\n\n"
	"Usage:\n  pgvault drill [ID|latest] [OPTIONS]\n  pgvault drill --random[=DAYS] [OPTIONS]\n\n"
	"Restores a backup (default: the latest one that can be drilled) into a\n"
	"scratch PostgreSQL cluster that pgvault starts from the local binaries, in a\n"
	"temporary directory and reachable only through its own Unix socket (as root\n"
	"the server runs as drill-user), then checks it:\n"
	"  logical   into a new cluster (initdb): every table's row count and content\n"
	"            fingerprint, sequences, materialized views and large objects as\n"
	"            recorded at backup time; every index valid and every recorded\n"
	"            index present; no foreign-key orphans; no constraint NOT VALID\n"
	"            unless it was in the backup\n"
	"  physical  the data directory and the WAL to the backup's end, recovered\n"
	"            and promoted; in every database: indexes valid, no foreign-key\n"
	"            orphans; pg_amcheck over everything when installed\n"
	"and the checks of the drill-checks file ('QUERY => EXPECTED' lines; physical:\n"
	"in database postgres).  Setup, restore, recovery, checks and total time are\n"
	"measured; the total is compared with the RTO.  The report is recorded in the\n"
	"repository (list, show and status show it) and the scratch cluster is always\n"
	"removed.\n\n"
	"Options:\n"
	"  --random[=DAYS]          a random backup (of the last DAYS days)\n"
	"  --kind=KIND              latest/random: only logical or only physical backups\n"
	"  --database=NAME          latest/random: only logical backups of database NAME\n"
	"                           (a repository with backups of several databases)\n"
	"  --rto=DURATION           recovery time objective (default: the rto setting)\n"
	"  --checks=FILE            SQL checks (default: the drill-checks setting)\n"
	"  -j, --jobs=N             parallel connections (default 2, or 'jobs' setting)\n"
	"  --no-record              do not store the report in the repository\n\n"
	"Exit status: 0 passed, 3 the backup did not restore faithfully, 1 only the\n"
	"RTO was exceeded (or the drill could not run), 2 bad usage.\n\n"
	"Examples:\n"
	"  pgvault drill\n"
	"  pgvault drill --random=30 --source prod --rto 1h\n"
	"  pgvault drill latest --database telehealth_db --checks /etc/pgvault/telehealth.checks\n"
	"  pgvault drill 20261122T023900Z-a1b2c3 --json | jq '.times_ms'\n";

enum
{
	OPT_RANDOM = CLI_OPT_FIRST_COMMAND,
	OPT_RTO,
	OPT_CHECKS,
	OPT_NO_RECORD,
	OPT_KIND,
	OPT_DATABASE,
};

typedef struct DrillArgs
{
	CliCommon common;
	const char *backup;
	bool random;
	const char *random_days;
	const char *rto;
	const char *checks;
	const char *jobs;
	const char *kind;
	const char *database;
	bool no_record;
} DrillArgs;

static int
parse_args(DrillArgs *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"random", optional_argument, NULL, OPT_RANDOM},
		{"rto", required_argument, NULL, OPT_RTO},
		{"checks", required_argument, NULL, OPT_CHECKS},
		{"jobs", required_argument, NULL, 'j'},
		{"no-record", no_argument, NULL, OPT_NO_RECORD},
		{"kind", required_argument, NULL, OPT_KIND},
		{"database", required_argument, NULL, OPT_DATABASE},
		{NULL, 0, NULL, 0},
	};
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&a->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_RANDOM:
				a->random = true;
				a->random_days = optarg;
				break;
			case OPT_RTO:
				a->rto = optarg;
				break;
			case OPT_CHECKS:
				a->checks = optarg;
				break;
			case 'j':
				a->jobs = optarg;
				break;
			case OPT_NO_RECORD:
				a->no_record = true;
				break;
			case OPT_KIND:
				a->kind = optarg;
				break;
			case OPT_DATABASE:
				a->database = optarg;
				break;
			default:
				return cli_bad_option("drill", argv, opt);
		}
	}
	if (a->common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		a->backup = argv[optind++];
	if (optind < argc)
		return cli_usage_error("drill", "unexpected argument '%s'", argv[optind]);
	if (a->random && a->backup != NULL)
		return cli_usage_error("drill", "give a backup ID or --random, not both");
	if (a->kind != NULL && strcmp(a->kind, "logical") != 0 && strcmp(a->kind, "physical") != 0)
		return cli_usage_error("drill", "invalid kind '%s' (logical or physical)", a->kind);
	if (a->database != NULL && a->kind != NULL && strcmp(a->kind, "logical") != 0)
		return cli_usage_error("drill", "--database picks among logical backups: not with --kind %s", a->kind);
	return -1;
}

/* A source's setting, else the global one (NULL when neither is set). */
static const char *
setting(const PvConfig *cfg, const CfgSection *src, const char *key)
{
	const char *v = src ? cfg_str(cfg, src, key) : NULL;

	return v ? v : cfg_str(cfg, NULL, key);
}

static const CfgSection *
source_find(const PvConfig *cfg, const char *name)
{
	for (int i = 0; name && name[0] && i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

static void
print_report(const DrillResult *res)
{
	const json_t *rep = res->report, *b = json_object_get(rep, "backup"), *times = json_object_get(rep, "times_ms");
	const json_t *c, *w;
	size_t i;
	char s[4][32];

	printf("drill: backup %s (%s, source %s", res->backup, json_string_value(json_object_get(b, "kind")),
		   json_string_length(json_object_get(b, "source")) ? json_string_value(json_object_get(b, "source")) : "-");
	if (json_is_string(json_object_get(b, "database")))
		printf(", database %s", json_string_value(json_object_get(b, "database")));
	printf(", started %s)\n", json_string_value(json_object_get(b, "start_time")));
	json_array_foreach(json_object_get(rep, "warnings"), i, w)
		printf("  warning: %s\n", json_string_value(w));
	json_array_foreach(json_object_get(rep, "checks"), i, c)
	{
		const char *st = json_string_value(json_object_get(c, "status"));
		const json_t *probs = json_object_get(json_object_get(c, "details"), "problems"), *p;
		size_t k;

		printf("  %-7s %-14s %s\n", strcmp(st, "failed") == 0 ? "FAILED" : strcmp(st, "warning") == 0 ? "WARNING" : st,
			   json_string_value(json_object_get(c, "name")), json_string_value(json_object_get(c, "message")));
		json_array_foreach(probs, k, p)
			printf("  %-7s %-14s   %s\n", "", "", json_string_value(p));
	}
	printf("drill: %s (setup %s, restore %s", res->ok ? "PASSED" : "FAILED",
		   pv_elapsed_format(s[0], sizeof(s[0]), json_integer_value(json_object_get(times, "setup"))),
		   pv_elapsed_format(s[1], sizeof(s[1]), json_integer_value(json_object_get(times, "restore"))));
	if (json_integer_value(json_object_get(times, "recovery")) > 0)
		printf(", recovery %s", pv_elapsed_format(s[0], sizeof(s[0]),
												  json_integer_value(json_object_get(times, "recovery"))));
	printf(", checks %s, total %s",
		   pv_elapsed_format(s[2], sizeof(s[2]), json_integer_value(json_object_get(times, "checks"))),
		   pv_elapsed_format(s[3], sizeof(s[3]), json_integer_value(json_object_get(times, "total"))));
	if (json_is_integer(json_object_get(rep, "rto_seconds")))
		printf("; RTO %s", pv_duration_format(s[0], sizeof(s[0]),
											   json_integer_value(json_object_get(rep, "rto_seconds"))));
	printf(")\n");
	if (res->record[0])
		printf("drill: report %s recorded in the repository\n", res->record);
}

int
cli_drill(int argc, char **argv)
{
	DrillArgs a = {0};
	DrillOpts o = {.record = true};
	DrillResult res = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoManifest *m = NULL;
	const CfgSection *src;
	const char *v;
	char id[REPO_BACKUP_ID_LEN + 1];
	int status, rc;

	if ((status = parse_args(&a, argc, argv)) >= 0)
		return status;
	if (a.random_days != NULL)
	{
		char *end;
		long d = strtol(a.random_days, &end, 10);

		if (*a.random_days == '\0' || *end != '\0' || d < 1 || d > 100000)
			return cli_usage_error("drill", "invalid --random value '%s' (a number of days)", a.random_days);
		o.random_days = d;
	}
	if (a.rto != NULL && pv_duration_parse(&o.rto_secs, a.rto) < 0)
		return cli_usage_error("drill", "%s", pv_error_msg());
	if (a.jobs != NULL && !cli_int_parse(&o.jobs, a.jobs, 1, 64))
		return cli_usage_error("drill", "invalid number of jobs '%s' (1 to 64)", a.jobs);
	if ((rc = cli_setup(&a.common, &cfg)) < 0 || (rc = cli_repo_open(&repo, cfg, &a.common)) < 0)
		goto fail;
	o.repo = repo;
	o.backup = a.backup;
	o.random = a.random;
	o.source = a.common.source;
	o.kind = a.kind;
	o.database = a.database;
	/* Settings follow the backup's source, so pick it first. */
	if ((rc = drill_backup_pick(&o, id)) < 0 || (rc = repo_manifest_load(&m, repo, id)) < 0)
		goto fail;
	src = source_find(cfg, repo_manifest_source(m));
	o.backup = id;
	o.random = false;
	o.source = NULL;
	o.kind = NULL;
	o.database = NULL;
	o.bindir = src ? cfg_str(cfg, src, "bindir") : NULL;
	o.work_dir = cfg_str(cfg, NULL, "drill-dir");
	o.run_as = cfg_str(cfg, NULL, "drill-user");
	o.checks_file = a.checks ? a.checks : setting(cfg, src, "drill-checks");
	if (a.rto == NULL && (v = setting(cfg, src, "rto")) != NULL && pv_duration_parse(&o.rto_secs, v) < 0)
		goto fail_rc;
	if (o.jobs == 0)
		o.jobs = (int) cfg_int(cfg, NULL, "jobs");
	o.fault_sql = getenv("PGVAULT_DRILL_FAULT_SQL");
	o.record = !a.no_record;
	if ((rc = drill_run(&res, &o)) < 0)
		goto fail;
	if (a.common.json)
		pv_json_dump(stdout, res.report);
	else
		print_report(&res);
	status = res.ok ? 0 : !res.integrity_ok ? pv_error_exit_status(PV_ECORRUPT) : 1;
	goto done;
fail_rc:
	rc = pv_error_code() < 0 ? pv_error_code() : PV_ECONFIG;
fail:
	status = cli_fail(rc);
done:
	drill_result_clear(&res);
	repo_manifest_free(m);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
