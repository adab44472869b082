/*
 * check.c (cli): "pgvault check", the runbooks' pre-backup checks as one
 * command.  The checks themselves live in src/ops/check.c.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/physical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/check.h"
#include "repo/repo.h"

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
	"When archive_command calls 'pgvault archive-push' and a repository is\n"
	"known, check also tests archiving end to end: archive_command must name\n"
	"the same source (and repository, if it names one); then check writes a\n"
	"little WAL, forces a WAL switch (pg_switch_wal) and waits until that\n"
	"segment is in the repository, reporting how long it took, or why not\n"
	"(pg_stat_archiver's last failure).  This is the only check that changes\n"
	"the server: it finishes the current WAL segment early.\n\n"
	"Options:\n"
	"  --long-transaction-threshold=DURATION\n"
	"                           report transactions open longer (default 10min)\n"
	"  --archive-wait-timeout=DURATION\n"
	"                           how long to wait for the test segment (default 60s)\n"
	"  --no-archive-test        do not force a WAL switch to test archiving\n\n"
	"Exit status: 0 all good, 1 warnings, 2 failures.\n\n"
	"Examples:\n"
	"  pgvault check -d mydb\n"
	"  pgvault check -h db1.example.com -p 5433 -U backup --repo /srv/pgvault\n"
	"  pgvault check --source prod --json | jq .status\n"
	"  pgvault check --source main --repo /srv/pgvault --archive-wait-timeout 2min\n";

enum
{
	OPT_LONG_XACT = CLI_OPT_FIRST_COMMAND,
	OPT_ARCHIVE_WAIT,
	OPT_NO_ARCHIVE_TEST,
};

/*
 * The archive test's repository and source: the repository the backups of
 * this source go to, opened (a failure is reported as a check item, not as
 * an error: check reports, it does not stop).
 */
static void
archive_test_prepare(CheckOpts *o, Repo **repo, char **repo_error, PvConfig *cfg,
					 const CliCommon *common, const CfgSection *repo_sec)
{
	CfgSection *sec = NULL;
	const char *source = NULL;

	if (cli_physical_source(&source, &sec, cfg, common) < 0)
		source = common->source;
	o->source = source;
	o->repo_name = repo_sec ? repo_sec->name : NULL;
	if (source == NULL || o->repo_url == NULL)
	{
		o->archive_test = false;	/* nothing configured to test against */
		pv_error_clear();
		return;
	}
	if (cli_repo_open(repo, cfg, common) < 0)
	{
		*repo_error = pv_strdup(pv_error_msg());
		pv_error_clear();
	}
	o->repo = *repo;
	o->repo_error = *repo_error;
}

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
		{"archive-wait-timeout", required_argument, NULL, OPT_ARCHIVE_WAIT},
		{"no-archive-test", no_argument, NULL, OPT_NO_ARCHIVE_TEST},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0}, conn_common;
	const char *long_xact = NULL, *wait = NULL;
	bool no_archive_test = false;
	Repo *repo_handle = NULL;
	char *repo_error = NULL;
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
		else if (opt == OPT_ARCHIVE_WAIT)
			wait = optarg;
		else if (opt == OPT_NO_ARCHIVE_TEST)
			no_archive_test = true;
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
	if (wait != NULL &&
		(rc = cfg_set(cfg, &cfg->global, "archive-wait-timeout", wait, CFG_ORIGIN_CLI)) < 0)
	{
		cfg_free(cfg);
		fprintf(stderr, "pgvault check: error: %s\n", pv_error_msg());
		return 2;
	}
	/* --source without a configured source is only the WAL archive's name (as for backups) */
	conn_common = common;
	if (cfg->nsources == 0)
		conn_common.source = NULL;
	if ((rc = cli_conn_opts(&opts.conn, &source, &conn_common, cfg)) < 0)
	{
		cfg_free(cfg);
		return cli_fail(rc);
	}
	opts.bindir = source ? cfg_str(cfg, source, "bindir") : NULL;
	opts.long_xact_secs = cfg_duration(cfg, NULL, "long-transaction-threshold");
	if (cfg_repo_resolve(&repo, &opts.repo_url, cfg, source) < 0)
		opts.repo_url = NULL;	/* no repository yet is fine for a check */
	pv_error_clear();
	opts.archive_test = !no_archive_test;
	opts.archive_wait_ms = cfg_duration(cfg, NULL, "archive-wait-timeout") * 1000;
	if (opts.archive_test)
		archive_test_prepare(&opts, &repo_handle, &repo_error, cfg, &common, repo);

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
	repo_free(repo_handle);
	pv_free(repo_error);
	cfg_free(cfg);
	return status;
}
