/*
 * check.c (cli): "pgvault check", the runbooks' pre-backup checks as one
 * command.  The checks themselves live in src/ops/check.c.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/units.h"
#include "ops/check.h"

#include <stdio.h>
#include <string.h>

static const char help_text[] =
	"pgvault check: is this cluster ready to be backed up, and restored?\n\n"
	"Usage:\n  pgvault check [OPTIONS]\n\n"
	"Connects and reports: server version and whether the local pg_dump and\n"
	"pg_restore can handle it; data checksums; wal_level, archive_mode,\n"
	"archive_command and archive_timeout (and whether archiving is failing);\n"
	"database sizes and the largest tables; transactions open too long; free\n"
	"space where the repository lives; whether the role can read everything a\n"
	"backup needs.  Every warning and failure says how to fix it.\n\n"
	"Options:\n"
	"  --long-transaction-threshold=DURATION\n"
	"                           report transactions open longer (default 10min)\n\n"
	"Exit status: 0 all good, 1 warnings, 2 failures.\n\n"
	"Examples:\n"
	"  pgvault check -d mydb\n"
	"  pgvault check -h db1.example.com -p 5433 -U backup --repo /srv/pgvault\n"
	"  pgvault check --source prod --json | jq .status\n";

enum
{
	OPT_LONG_XACT = CLI_OPT_FIRST_COMMAND,
};

static void
print_text(const CheckReport *r)
{
	int counts[4] = {0};

	for (int i = 0; i < r->nitems; i++)
	{
		const CheckItem *it = &r->items[i];

		counts[it->status]++;
		printf("%-8s %-18s %s\n", check_status_name(it->status), it->name, it->message);
		if (it->hint != NULL && it->status >= CHECK_WARNING)
			printf("%-8s %-18s HINT: %s\n", "", "", it->hint);
	}
	printf("\ncheck: %s (%d ok, %d warnings, %d failures)\n",
		   r->status == CHECK_FAILURE ? "FAILED" : r->status == CHECK_WARNING ? "passed with warnings" : "passed",
		   counts[CHECK_OK], counts[CHECK_WARNING], counts[CHECK_FAILURE]);
}

int
cli_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS, CLI_CONN_LONGOPTS,
		{"long-transaction-threshold", required_argument, NULL, OPT_LONG_XACT},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	const char *long_xact = NULL;
	CheckOpts opts = {0};
	CheckReport report;
	CfgSection *source = NULL, *repo = NULL;
	PvConfig *cfg = NULL;
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":" CLI_CONN_SHORTOPTS, longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_LONG_XACT)
			long_xact = optarg;
		else
			return cli_bad_option("check", argv, opt);
	}
	if (common.help)
	{
		cli_print_help(help_text, true);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_setup(&common, &cfg)) < 0)
		return cli_fail(rc);
	if (long_xact != NULL &&
		(rc = cfg_set(cfg, &cfg->global, "long-transaction-threshold", long_xact, CFG_ORIGIN_CLI)) < 0)
	{
		cfg_free(cfg);
		fprintf(stderr, "pgvault check: error: %s\n", pv_error_msg());
		return 2;
	}
	if ((rc = cli_conn_opts(&opts.conn, &source, &common, cfg)) < 0)
	{
		cfg_free(cfg);
		return cli_fail(rc);
	}
	opts.bindir = source ? cfg_str(cfg, source, "bindir") : NULL;
	opts.long_xact_secs = cfg_duration(cfg, NULL, "long-transaction-threshold");
	if (cfg_repo_resolve(&repo, &opts.repo_url, cfg, source) < 0)
		opts.repo_url = NULL;	/* no repository yet is fine for a check */
	pv_error_clear();

	check_run(&report, &opts);
	if (common.json)
	{
		json_t *j = check_report_json(&report);

		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
		print_text(&report);
	status = report.status == CHECK_FAILURE ? 2 : report.status == CHECK_WARNING ? 1 : 0;
	check_report_clear(&report);
	cfg_free(cfg);
	return status;
}
