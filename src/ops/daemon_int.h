/*
 * daemon_int.h: what the daemon's files share (not a public interface).
 *
 *   daemon.c       jobs from the configuration, the scheduler loop,
 *                  signals, reload, shutdown, the state file
 *   daemon_job.c   one run of a job: pre-checks, the child process, its
 *                  result, the job log entry, notifications
 *   daemon_http.c  the endpoints (libmicrohttpd) and the snapshot they serve
 *   daemon_watch.c the repository watcher: status, statistics, history,
 *                  alerts
 *
 * Locking: one mutex (Daemon.lock) guards everything mutable in Daemon and
 * Job.  Nobody holds it across I/O: a child's lifetime, a repository read,
 * a notification or an HTTP response body is produced outside it, from
 * copies taken under it.  Threads: the main thread (scheduler and signals,
 * which every other thread blocks), one runner per running job, the
 * watcher, and libmicrohttpd's.  Runners wake the main thread with SIGUSR1
 * when they end.
 *
 * A configuration in use is reference-counted (CfgRef): a runner keeps the
 * one it started with until it ends, so a reload never frees settings under
 * a running job.
 */
#ifndef PV_OPS_DAEMON_INT_H
#define PV_OPS_DAEMON_INT_H

#include "common/timeutil.h"
#include "config/config.h"
#include "ops/daemon.h"
#include "ops/notify.h"
#include "ops/schedule.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum JobKind
{
	JOB_LOGICAL,
	JOB_PHYSICAL,
	JOB_FILE,
	JOB_EXPIRE,
	JOB_VERIFY,
	JOB_DRILL,
	JOB_NKINDS,
} JobKind;

extern const char *const daemon_job_kind_names[JOB_NKINDS];

typedef enum PreChecks
{
	PRECHECKS_OFF,
	PRECHECKS_ON,
	PRECHECKS_STRICT,
} PreChecks;

/* A job as the configuration defines it. */
typedef struct JobDef
{
	char *name;					/* "prod/logical", or "verify" for [global] */
	char *source;				/* NULL for [global] jobs */
	JobKind kind;
	Schedule *sched;
	bool catch_up;
	int64_t jitter_secs;
	PreChecks prechecks;
	bool verify_after;
	char **files;				/* JOB_FILE: NULL-terminated */
	char *repo_url;				/* for the log's location and rule 2 (NULL if unresolved) */
	char *origin;				/* "FILE:LINE" of its schedule setting */
} JobDef;

typedef enum JobOutcome
{
	OUTCOME_SUCCESS,
	OUTCOME_FAILURE,
	OUTCOME_ABORTED,
	OUTCOME_N,
} JobOutcome;

typedef struct Job
{
	JobDef def;
	bool retired;				/* gone from the configuration; dropped once idle */
	/* schedule */
	PvTime next_due;			/* nominal time of the next run */
	PvTime next_start;			/* next_due plus jitter */
	const char *next_trigger;	/* "scheduled" or "catch-up" (static strings) */
	PvTime last_due;			/* nominal time of the last run started (state file) */
	/* the run in progress */
	bool running;
	bool finished;				/* the runner ended; join it */
	pthread_t thread;
	pid_t pid;					/* the child's pid (= its process group), 0 when none */
	PvTime run_started;
	/* history */
	uint64_t runs[OUTCOME_N];
	uint64_t skipped;
	int64_t consecutive_failures;
	PvTime last_run, last_success;
	int64_t last_duration_ms;
	json_t *last_entry;			/* the last job log entry, or NULL */
} Job;

typedef struct CfgRef
{
	PvConfig *cfg;
	int refs;
} CfgRef;

struct MHD_Daemon;

typedef struct Daemon
{
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* the watcher waits on it (monotonic clock) */
	DaemonOpts opts;
	const char *exe;
	pthread_t main_thread;

	CfgRef *cfg;				/* in use */
	Job **jobs;
	size_t njobs;
	char *reload_error;			/* the last refused reload, or NULL */
	PvTime config_loaded;
	PvTime started;
	char *state_dir;
	char *state_path;
	char *joblog_path;
	int64_t grace_secs;
	int64_t status_interval_secs;

	bool stopping;
	bool refresh_requested;

	Notifier *notifier;
	pthread_mutex_t state_lock;	/* serialises writes of the state file */

	/* the watcher's view of the repository */
	pthread_t watcher;
	bool watcher_started;
	json_t *status_doc;			/* status.h document, or NULL before the first read */
	json_t *repo_stats;			/* or NULL */
	json_t *history;			/* array of backups, oldest first, or NULL */
	json_t *history_cache;		/* id -> entry (manifests never change) */
	json_t *alerts;				/* key -> {"level", "message", "since"} */
	PvTime watched;				/* when the snapshot was taken */

	/* endpoints */
	struct MHD_Daemon *http;
	char *listen;				/* as configured */
	char *token;				/* secret, or NULL */
	char *tls_cert, *tls_key;	/* paths, or NULL */
	char *tls_cert_pem, *tls_key_pem;	/* their contents while the listener runs */
} Daemon;

/* daemon.c */
CfgRef *daemon_cfg_get(Daemon *d);		/* takes a reference; lock not held */
void daemon_cfg_put(Daemon *d, CfgRef *ref);
void daemon_state_save(Daemon *d);
void daemon_wake(Daemon *d);			/* wake the main thread */
void daemon_refresh_request(Daemon *d);	/* wake the watcher */
const char *daemon_setting(const PvConfig *cfg, const CfgSection *src, const char *key);
CfgSection *daemon_source_find(PvConfig *cfg, const char *name);

/* daemon_job.c: start a run of job (lock held; the runner thread takes over). */
int daemon_job_start(Daemon *d, Job *job, const char *trigger);
/* The job's part of the snapshot (lock held). */
json_t *daemon_job_json(const Job *job);

/* daemon_watch.c */
int daemon_watch_start(Daemon *d);
void daemon_watch_stop(Daemon *d);

/* daemon_http.c */
int daemon_http_start(Daemon *d, const PvConfig *cfg);
void daemon_http_stop(Daemon *d);
/* The whole snapshot (/status plus history when with_history); new reference; takes the lock. */
json_t *daemon_snapshot(Daemon *d, bool with_history);

#endif
