/*
 * status.c (cli): "pgvault status", the Monday-morning checklist as one
 * command: per source, kind and database the newest backup and its age, the
 * last verify and the last drill with their outcome, each source's WAL
 * archive lag, each secondary repository's lag; judged against the
 * configured thresholds (src/ops/status.c).
 * With --check it behaves as a monitoring plugin: one line, exit status
 * 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "ops/status.h"
#include "repo/repo.h"

#include <stdio.h>
#include <string.h>

static const char help_text[] =
	"pgvault status: are the backups fresh, verified and restorable?\n\n"
	"Usage:\n  pgvault status [--check] [OPTIONS]\n\n"
	"For each source, kind and (logical) database: the newest backup and its\n"
	"age, the last verify and the last drill with their outcome; for each\n"
	"source with a WAL archive, the age of the newest archived segment.\n"
	"Thresholds ([source:NAME], else [global]): backup-age-warning (26h),\n"
	"backup-age-critical (50h), verify-age-warning, drill-age-warning,\n"
	"archive-lag-warning, archive-lag-critical.  Damage found by the last\n"
	"verify and a failed last drill are critical; a drill that only exceeded\n"
	"the RTO is a warning.  For a source with several repositories (repos = a, b),\n"
	"each other repository's lag: the backups and WAL it lacks and its failed\n"
	"copies, since when; over copy-lag-warning (1d) it is a warning.\n\n"
	"Options:\n"
	"  --check                  one line and the exit status of a monitoring\n"
	"                           plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN\n\n"
	"Examples:\n"
	"  pgvault status\n"
	"  pgvault status --check --source prod     (Nagios, Icinga, Zabbix, cron)\n"
	"  pgvault status --json | jq '.groups[] | select(.status != \"OK\")'\n"
	"  pgvault status --json | jq '.secondaries[] | {repository, lag_seconds}'\n";

enum
{
	OPT_CHECK = CLI_OPT_FIRST_COMMAND,
};

/* "WARNING   prod   secondary repository 'b': 2h 5min behind: 1 backup missing, WAL behind, 1 failed sync" */
static void
print_secondary(const json_t *a)
{
	const json_t *missing = json_object_get(a, "backups_missing"), *wal = json_object_get(a, "wal");
	const json_t *failures = json_object_get(a, "failures");
	char age[32];

	printf("%-8s  %-12s  secondary repository '%s': ", json_string_value(json_object_get(a, "status")),
		   json_string_value(json_object_get(a, "source")), json_string_value(json_object_get(a, "repository")));
	if (json_is_string(json_object_get(a, "error")))
	{
		printf("cannot be read: %s", json_string_value(json_object_get(a, "error")));
		if (json_array_size(failures) > 0)
			printf("; %zu failed cop%s recorded", json_array_size(failures),
				   json_array_size(failures) == 1 ? "y" : "ies");
		printf("\n");
		return;
	}
	if (json_is_true(json_object_get(a, "in_step")))
	{
		printf("in step%s\n", json_is_true(json_object_get(a, "compared")) ? "" : " (no failed copy recorded)");
		return;
	}
	printf("%s behind", status_age_format(age, sizeof(age), json_integer_value(json_object_get(a, "lag_seconds"))));
	if (json_array_size(missing) > 0)
		printf(", %zu backup%s missing", json_array_size(missing), json_array_size(missing) == 1 ? "" : "s");
	if (json_is_true(json_object_get(wal, "behind")))
		printf(", WAL up to %s only (here %s)",
			   json_is_string(json_object_get(wal, "secondary_newest")) ?
			   json_string_value(json_object_get(wal, "secondary_newest")) : "nothing",
			   json_string_value(json_object_get(wal, "newest")));
	if (json_array_size(failures) > 0)
		printf(", %zu failed cop%s, last: %s", json_array_size(failures), json_array_size(failures) == 1 ? "y" : "ies",
			   json_string_value(json_object_get(json_array_get(failures, json_array_size(failures) - 1), "error")));
	printf("\n");
}

/* StatusOpts.secondary_open: a [repo:NAME] with its own storage settings and passphrase source. */
static int
secondary_open(Repo **out, const PvConfig *cfg, const char *name, void *payload)
{
	const CfgSection *sec = NULL;
	RepoPassphraseSource ps;
	CliStorageSettings settings;

	(void) payload;
	*out = NULL;
	for (int i = 0; i < cfg->nrepos; i++)
		if (strcmp(cfg->repos[i].name, name) == 0)
			sec = &cfg->repos[i];
	if (sec == NULL || cfg_str(cfg, sec, "url") == NULL)
		return pv_error_set(PV_ECONFIG, "repository '%s' is not configured (no [repo:%s] with a url)", name, name);
	ps.file = cfg_str_layered(cfg, sec, "passphrase-file");
	ps.command = cfg_str_layered(cfg, sec, "passphrase-command");
	cli_storage_settings(&settings, cfg, sec);
	return repo_open_opts(out, cfg_str(cfg, sec, "url"), &settings.opts, repo_passphrase_default, &ps);
}

static void
print_text(const StatusReport *r)
{
	const json_t *groups = json_object_get(r->doc, "groups"), *g, *a, *p;
	size_t i;
	char age[32];

	if (json_array_size(groups) > 0)
		printf("%-8s  %-12s  %-8s  %-12s  %-23s  %-10s  %-16s  %s\n", "STATUS", "SOURCE", "KIND", "DATABASE",
			   "NEWEST", "AGE", "LAST VERIFY", "LAST DRILL");
	json_array_foreach(groups, i, g)
	{
		const json_t *newest = json_object_get(g, "newest"), *v = json_object_get(g, "verify"),
			*d = json_object_get(g, "drill");
		char vs[48] = "-", ds[48] = "-";
		PvTime t;

		if (json_is_object(v) && pv_time_parse(&t, json_string_value(json_object_get(v, "time")), "UTC") == 0)
			snprintf(vs, sizeof(vs), "%s %s ago", json_is_true(json_object_get(v, "ok")) ? "ok" : "DAMAGED",
					 status_age_format(age, sizeof(age), (pv_time_now() - t) / PV_USEC_PER_SEC));
		if (json_is_object(d) && pv_time_parse(&t, json_string_value(json_object_get(d, "time")), "UTC") == 0)
			snprintf(ds, sizeof(ds), "%s %s ago", json_is_true(json_object_get(d, "ok")) ? "passed" : "FAILED",
					 status_age_format(age, sizeof(age), (pv_time_now() - t) / PV_USEC_PER_SEC));
		pv_error_clear();
		printf("%-8s  %-12s  %-8s  %-12s  %-23s  %-10s  %-16s  %s\n", json_string_value(json_object_get(g, "status")),
			   json_is_string(json_object_get(g, "source")) ? json_string_value(json_object_get(g, "source")) : "-",
			   json_string_value(json_object_get(g, "kind")),
			   json_is_string(json_object_get(g, "database")) ? json_string_value(json_object_get(g, "database")) : "-",
			   json_string_value(json_object_get(newest, "id")),
			   status_age_format(age, sizeof(age), json_integer_value(json_object_get(newest, "age_seconds"))), vs, ds);
	}
	json_array_foreach(json_object_get(r->doc, "archives"), i, a)
	{
		const json_t *agej = json_object_get(a, "age_seconds");

		printf("%-8s  %-12s  WAL archive: newest segment %s, archived %s%s\n",
			   json_string_value(json_object_get(a, "status")), json_string_value(json_object_get(a, "source")),
			   json_string_value(json_object_get(a, "newest_segment")),
			   json_is_integer(agej) ? status_age_format(age, sizeof(age), json_integer_value(agej)) : "(time unknown)",
			   json_is_integer(agej) ? " ago" : "");
	}
	json_array_foreach(json_object_get(r->doc, "secondaries"), i, a)
		print_secondary(a);
	json_array_foreach(json_object_get(r->doc, "problems"), i, p)
		printf("%s: %s\n", json_string_value(json_object_get(p, "level")),
			   json_string_value(json_object_get(p, "message")));
	printf("status: %s - %s\n", status_level_name(r->level), r->summary);
}

int
cli_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"check", no_argument, NULL, OPT_CHECK},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	bool check = false;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	StatusReport r = {0};
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_CHECK)
			check = true;
		else
			return cli_bad_option("status", argv, opt);
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_setup(&common, &cfg)) < 0)
	{
		status = cli_fail(rc);
		if (check)
		{
			printf("PGVAULT UNKNOWN - %s\n", pv_error_msg());
			status = STATUS_UNKNOWN;
		}
		goto done;
	}
	if ((rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = status_collect(&r, repo, cfg, &(StatusOpts) {.source = common.source,
															 .secondary_open = secondary_open})) < 0)
	{
		if (check)
		{
			/* A monitoring system must hear "unknown", not a usage or data exit code. */
			printf("PGVAULT UNKNOWN - %s\n", pv_error_msg());
			status = STATUS_UNKNOWN;
		}
		else
			status = cli_fail(rc);
		goto done;
	}
	if (common.json)
		pv_json_dump(stdout, r.doc);
	else if (check)
		printf("PGVAULT %s - %s\n", status_level_name(r.level), r.summary);
	else
		print_text(&r);
	status = check ? (int) r.level : 0;
done:
	status_report_free(&r);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
