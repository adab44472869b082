/*
 * daemon.c (cli): "pgvault daemon", the scheduler, endpoints and alerts in
 * the foreground (src/ops/daemon.c); and "--check", which only validates
 * the configuration and prints the jobs with their next runs.
 *
 * The daemon reloads the configuration through cli_setup() again on SIGHUP,
 * so command-line settings (--log-level, --repo, --listen, ...) survive a
 * reload; the same settings are passed on to every job it runs.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "ops/daemon.h"
#include "repo/repo.h"

#include <stdio.h>
#include <string.h>

static const char help_text[] =
	"pgvault daemon: run the schedules, serve /metrics and /status, send alerts\n\n"
	"Usage:\n  pgvault daemon [OPTIONS]\n  pgvault daemon --check [OPTIONS]\n\n"
	"Runs in the foreground (systemd: contrib/pgvault.service) until SIGTERM.\n"
	"Jobs come from the configuration file:\n"
	"  [source:NAME] schedule-logical, schedule-physical, schedule-file (with\n"
	"                backup-files), schedule-expire, schedule-verify, schedule-drill\n"
	"  [global]      schedule-expire, schedule-verify, schedule-drill (whole repository)\n"
	"Each job runs as a child process ('pgvault backup --logical --source NAME'\n"
	"...), never two runs of one job at once; expire never runs beside another\n"
	"job of its repository.  Schedules are cron lines in the source's time-zone:\n"
	"  MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK   lists, ranges, steps, names:\n"
	"      '0 2 * * *' daily at 02:00, '30 */4 * * mon-fri', '0 3 1-7 * sun' the\n"
	"      first Sunday (both day fields must match when both are given)\n"
	"  @hourly @daily @weekly @monthly @yearly, @every 15min, TZ=Europe/Berlin ...\n"
	"A time skipped by a daylight-saving change runs right after it; a repeated\n"
	"hour runs once.  Also: catch-up (run a missed run at start-up), jitter,\n"
	"pre-checks (pgvault check before backups), verify-after-backup.\n\n"
	"Every job writes a line to the job log (job-log; see 'pgvault log') and a\n"
	"record in the repository.  Notifications (notify-webhook, notify-email-to,\n"
	"notify-on, notify-interval) go out on failures, recoveries, alerts (stale\n"
	"backups, archive lag, damage) and failed drills, rate-limited.\n\n"
	"Endpoints on daemon-listen (default 127.0.0.1:9847): / (status page),\n"
	"/metrics (Prometheus), /status and /history (JSON), /health; with\n"
	"daemon-token or daemon-token-file they need 'Authorization: Bearer TOKEN';\n"
	"daemon-tls-cert and daemon-tls-key turn on HTTPS.\n\n"
	"Signals: SIGTERM/SIGINT stop (running jobs are signalled, then killed after\n"
	"daemon-grace-period; an interrupted backup leaves nothing behind); SIGHUP\n"
	"reloads the configuration, keeping the old one if the new one is invalid.\n\n"
	"Options:\n"
	"  --check                  validate the configuration, print the jobs and\n"
	"                           their next runs, and exit (2 when invalid)\n"
	"  --listen=ADDRESS:PORT    endpoints address (overrides daemon-listen; 'off')\n\n"
	"Examples:\n"
	"  pgvault daemon --config /etc/pgvault/pgvault.conf\n"
	"  pgvault daemon --check --json\n"
	"  curl -s http://127.0.0.1:9847/metrics | grep pgvault_backup_last\n";

enum
{
	OPT_CHECK = CLI_OPT_FIRST_COMMAND,
	OPT_LISTEN,
};

typedef struct DaemonCli
{
	CliCommon common;
	const char *listen;
} DaemonCli;

static int
daemon_config_load(PvConfig **out, void *payload)
{
	DaemonCli *a = payload;
	PvConfig *cfg = NULL;
	int rc;

	*out = NULL;
	if ((rc = cli_setup(&a->common, &cfg)) < 0)
		return rc;
	if (a->listen != NULL && (rc = cfg_set(cfg, &cfg->global, "daemon-listen", a->listen, CFG_ORIGIN_CLI)) < 0)
	{
		cfg_free(cfg);
		return rc;
	}
	*out = cfg;
	return PV_OK;
}

static int
daemon_repo_open(Repo **out, PvConfig *cfg, const CfgSection *source, void *payload)
{
	DaemonCli *a = payload;
	CliCommon c = a->common;

	if (source != NULL)
		c.source = source->name;
	return cli_repo_open(out, cfg, &c);
}

static int
check_print(DaemonCli *a)
{
	PvConfig *cfg = NULL;
	json_t *jobs = NULL;
	size_t i;
	json_t *j;
	int rc;

	if ((rc = daemon_config_load(&cfg, a)) < 0 || (rc = daemon_jobs_describe(&jobs, cfg, 3)) < 0)
	{
		cfg_free(cfg);
		return cli_fail(rc);
	}
	if (a->common.json)
		pv_json_dump(stdout, jobs);
	else
	{
		printf("configuration '%s': %zu job%s\n", cfg->path ? cfg->path : "(none)", json_array_size(jobs),
			   json_array_size(jobs) == 1 ? "" : "s");
		json_array_foreach(jobs, i, j)
		{
			const json_t *runs = json_object_get(j, "next_runs");

			printf("  %-24s %-28s next: %s%s%s\n", json_string_value(json_object_get(j, "name")),
				   json_string_value(json_object_get(j, "schedule")),
				   json_array_size(runs) > 0 ? json_string_value(json_array_get(runs, 0)) : "never",
				   json_array_size(runs) > 1 ? ", " : "",
				   json_array_size(runs) > 1 ? json_string_value(json_array_get(runs, 1)) : "");
		}
	}
	json_decref(jobs);
	cfg_free(cfg);
	return 0;
}

int
cli_daemon(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"check", no_argument, NULL, OPT_CHECK},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{NULL, 0, NULL, 0},
	};
	DaemonCli a = {0};
	const char *job_args[16];
	size_t n = 0;
	bool check = false;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&a.common, opt, optarg))
			continue;
		if (opt == OPT_CHECK)
			check = true;
		else if (opt == OPT_LISTEN)
			a.listen = optarg;
		else
			return cli_bad_option("daemon", argv, opt);
	}
	if (a.common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("daemon", "unexpected argument '%s'", argv[optind]);
	if (a.common.source != NULL)
		return cli_usage_error("daemon", "--source does not apply: the daemon runs the jobs of every source");
	if (check)
		return check_print(&a);
	/* Command-line settings every job should share (values are borrowed from argv). */
	if (a.common.repo != NULL)
	{
		job_args[n++] = "--repo";
		job_args[n++] = a.common.repo;
	}
	if (a.common.passphrase_file != NULL)
	{
		job_args[n++] = "--passphrase-file";
		job_args[n++] = a.common.passphrase_file;
	}
	if (a.common.passphrase_command != NULL)
	{
		job_args[n++] = "--passphrase-command";
		job_args[n++] = a.common.passphrase_command;
	}
	if (a.common.log_level != NULL)
	{
		job_args[n++] = "--log-level";
		job_args[n++] = a.common.log_level;
	}
	job_args[n] = NULL;
	rc = daemon_run(&(DaemonOpts) {.config_load = daemon_config_load, .repo_open = daemon_repo_open, .payload = &a,
				   .job_args = job_args});
	return rc < 0 ? cli_fail(rc) : 0;
}
