/*
 * daemon.h: "pgvault daemon", the runbooks' crontab, monitoring and
 * alerting as one foreground process (for systemd: contrib/pgvault.service).
 *
 * Jobs.  Each schedule-KIND setting is a job: in [source:NAME] for
 * logical, physical and file backups, expire, verify and drill of that
 * source (job "NAME/KIND"); in [global] for repository-wide expire, verify
 * and drill (job "KIND").  Schedules are cron expressions or intervals
 * (schedule.h) in the source's time-zone, else [global] time-zone.
 *
 * How a job runs.  As a child process of the same binary (/proc/self/exe
 * with the command's arguments and --json), in its own process group, so a
 * crash or a leak of one job never takes the daemon down and a signal to
 * the group reaches the job's own children (pg_dump, ...).  Rules:
 *  1. No two runs of one job at once: a run that comes due while the
 *     previous one is still going is skipped (logged, counted).
 *  2. An expire (exclusive repository lock) never runs next to another job
 *     of its repository: whichever comes second waits for the first, once.
 *  3. catch-up = on: a run missed while the daemon was down (the state file
 *     remembers the last scheduled time of each job) runs once at start-up.
 *  4. jitter: each run starts up to this much later, at random.
 *  5. Before a scheduled logical or physical backup the checks of "pgvault
 *     check" run (pre-checks = on); their warnings and failures go into the
 *     job log entry and the notification; with strict, a failure skips the
 *     backup (a failed run).
 *  6. verify-after-backup = on: the new backup is verified at once; the job
 *     log's "verified" says how that went (damage makes the run a failure).
 *  7. Every run writes one job log entry (joblog.h) to the local job log and
 *     to the repository, and may notify (notify.h): failure, recovery after
 *     failure, drill failure, success (when asked).
 *
 * Monitoring.  Every status-interval and after every job the daemon reads
 * the repository (ops/status.h, the repository's statistics and its
 * backups' manifests) into a snapshot served at:
 *   /metrics   Prometheus text (metrics.h)
 *   /status    JSON: "pgvault status --json", plus "daemon" (jobs, next
 *              runs, counters) and "repository_stats"
 *   /history   JSON: every backup with times and sizes (for the charts)
 *   /health    JSON {"status": "ok"}; 503 while stopping
 *   /          the status page (statuspage.h), self-contained
 * on daemon-listen (127.0.0.1:9847), with an optional bearer token
 * (Authorization: Bearer TOKEN; the page also takes ?token=TOKEN) and
 * optional HTTPS (daemon-tls-cert, daemon-tls-key).  Problems status finds
 * (stale backups, archive lag, damage, failed drills) are alerts: notified
 * when they appear (and again once per notify-interval while they last)
 * and when they clear.
 *
 * Signals.
 *   SIGTERM, SIGINT  stop scheduling, send SIGTERM to every running job's
 *                    process group, wait up to daemon-grace-period, then
 *                    SIGKILL what is left; jobs stopped this way are logged
 *                    with outcome "aborted".  An interrupted backup leaves
 *                    no manifest (the repository writes it last), so it
 *                    does not exist.  Returns 0.
 *   SIGHUP           reload the configuration.  A configuration that does
 *                    not load, or whose schedules do not parse, is refused
 *                    with its FILE:LINE message (logged, shown in /status
 *                    and pgvault_config_last_reload_success) and the daemon
 *                    keeps running on the old one.  Running jobs finish
 *                    under the settings they started with.
 */
#ifndef PV_OPS_DAEMON_H
#define PV_OPS_DAEMON_H

#include "config/config.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct Repo Repo;

typedef struct DaemonOpts
{
	/*
	 * Load the configuration (again, on SIGHUP), applying command-line
	 * overrides and logging settings.  Must set cfg->path: jobs are run with
	 * --config PATH.  On failure: a negative code with the error set.
	 */
	int (*config_load)(PvConfig **out, void *payload);
	/* Open the repository of a source (NULL: the global one). */
	int (*repo_open)(Repo **out, PvConfig *cfg, const CfgSection *source, void *payload);
	void *payload;
	/* Arguments added to every job's command line (e.g. --repo URL), NULL-terminated or NULL. */
	const char *const *job_args;
	/* The binary jobs run; NULL = /proc/self/exe. */
	const char *exe;
} DaemonOpts;

/* Run until SIGTERM or SIGINT.  Errors only at start-up (configuration, state directory, port). */
int daemon_run(const DaemonOpts *opts);

/*
 * The jobs a configuration defines, as JSON (name, source, kind, schedule,
 * zone, next runs from now), without running anything: "pgvault daemon
 * --check".  PV_ECONFIG "FILE:LINE: invalid schedule ..." for a bad one.
 */
int daemon_jobs_describe(json_t **out, const PvConfig *cfg, int nruns);

#endif
