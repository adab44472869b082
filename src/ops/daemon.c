/*
 * daemon.c: the daemon's main thread: jobs from the configuration, the
 * scheduler, signals (stop, reload), the state file.  See daemon.h for the
 * behaviour and daemon_int.h for the threads and the lock.
 *
 * The main thread blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 before any
 * other thread exists (so every thread inherits the mask) and sleeps in
 * sigtimedwait() until the next job is due or a signal arrives: no signal
 * handler, no self-pipe, nothing async-signal-unsafe.
 *
 * State file (daemon-state-dir/daemon-state.json, written atomically): per
 * job the nominal time of its last run (catch-up) and its failure streak
 * (so a recovery after a restart is still reported), the notifier's rate
 * limits and the open alerts.
 */
#include "ops/daemon_int.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

const char *const daemon_job_kind_names[JOB_NKINDS] = {
	"logical", "physical", "file", "expire", "verify", "drill"};

#define STATE_FORMAT 1
#define LOOP_MAX_SLEEP_MS 60000
#define BLOCKED_RETRY_MS 1000
#define KILL_WAIT_SECS 10

/* ---- settings ---- */

const char *
daemon_setting(const PvConfig *cfg, const CfgSection *src, const char *key)
{
	const char *v = src ? cfg_str(cfg, src, key) : NULL;

	return v ? v : cfg_str(cfg, NULL, key);
}

CfgSection *
daemon_source_find(PvConfig *cfg, const char *name)
{
	for (int i = 0; name != NULL && i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

static bool
setting_bool(const PvConfig *cfg, const CfgSection *src, const char *key)
{
	const char *v = daemon_setting(cfg, src, key);

	return v != NULL && (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 ||
						 strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0);
}

static int64_t
setting_duration(const PvConfig *cfg, const CfgSection *src, const char *key)
{
	const char *v = daemon_setting(cfg, src, key);
	int64_t secs = 0;

	if (v != NULL)
		(void) pv_duration_parse(&secs, v);
	return secs;
}

/* ---- jobs from the configuration ---- */

static void
jobdef_clear(JobDef *j)
{
	pv_free(j->name);
	pv_free(j->source);
	schedule_free(j->sched);
	for (size_t i = 0; j->files != NULL && j->files[i] != NULL; i++)
		pv_free(j->files[i]);
	pv_free(j->files);
	pv_free(j->repo_url);
	pv_free(j->origin);
	memset(j, 0, sizeof(*j));
}

static char **
files_split(const char *list)
{
	char *copy = pv_strdup(list), *save = NULL, *tok;
	char **out = pv_calloc(strlen(list) / 2 + 2, sizeof(char *));
	size_t n = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		while (*tok == ' ' || *tok == '\t')
			tok++;
		for (size_t len = strlen(tok); len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'); len--)
			tok[len - 1] = '\0';
		if (*tok != '\0')
			out[n++] = pv_strdup(tok);
	}
	pv_free(copy);
	return out;
}

/* "FILE:LINE" of a setting, for messages. */
static char *
origin_of(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	const CfgValue *v = cfg_value(cfg, sec, key);

	if (v->origin == CFG_ORIGIN_FILE)
		return pv_asprintf("%s:%d", cfg->path ? cfg->path : "?", v->line);
	if (v->origin == CFG_ORIGIN_ENV)
		return pv_asprintf("environment %s", v->def->env);
	return pv_strdup("command line");
}

static int
jobdef_build(JobDef *out, PvConfig *cfg, CfgSection *src, JobKind kind)
{
	char key[32];
	const char *expr, *zone, *pc, *url = NULL;
	CfgSection *repo_sec = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(key, sizeof(key), "schedule-%s", daemon_job_kind_names[kind]);
	expr = cfg_str(cfg, src, key);
	out->origin = origin_of(cfg, src, key);
	zone = daemon_setting(cfg, src, "time-zone");
	if ((rc = schedule_parse(&out->sched, expr, zone)) < 0)
	{
		rc = pv_error_prefix(rc, "%s", out->origin);
		goto done;
	}
	out->kind = kind;
	out->source = src ? pv_strdup(src->name) : NULL;
	out->name = src ? pv_asprintf("%s/%s", src->name, daemon_job_kind_names[kind]) :
		pv_strdup(daemon_job_kind_names[kind]);
	out->catch_up = setting_bool(cfg, src, "catch-up");
	out->jitter_secs = setting_duration(cfg, src, "jitter");
	pc = daemon_setting(cfg, src, "pre-checks");
	out->prechecks = pc && strcasecmp(pc, "off") == 0 ? PRECHECKS_OFF :
		pc && strcasecmp(pc, "strict") == 0 ? PRECHECKS_STRICT : PRECHECKS_ON;
	out->verify_after = setting_bool(cfg, src, "verify-after-backup");
	if (kind == JOB_FILE)
	{
		const char *files = cfg_str(cfg, src, "backup-files");

		if (files == NULL || (out->files = files_split(files))[0] == NULL)
		{
			rc = pv_error_set(PV_ECONFIG, "%s: [source:%s] has schedule-file but no backup-files", out->origin,
							  src->name);
			pv_error_hint("list the files to back up: backup-files = /etc/postgresql/15/main/postgresql.conf, ...");
			goto done;
		}
	}
	if (cfg_repo_resolve(&repo_sec, &url, cfg, src) == PV_OK && url != NULL)
		out->repo_url = pv_strdup(url);
	pv_error_clear();
	rc = PV_OK;
done:
	if (rc < 0)
		jobdef_clear(out);
	return rc;
}

/* Every job of the configuration; PV_ECONFIG for the first bad one. */
static int
jobdefs_build(JobDef **out, size_t *out_n, PvConfig *cfg)
{
	static const JobKind global_kinds[] = {JOB_EXPIRE, JOB_VERIFY, JOB_DRILL};
	JobDef *defs = pv_calloc((size_t) (cfg->nsources + 1) * JOB_NKINDS, sizeof(JobDef));
	size_t n = 0;
	int rc = PV_OK;

	for (size_t k = 0; k < PV_ARRAY_LEN(global_kinds) && rc == PV_OK; k++)
	{
		char key[32];

		snprintf(key, sizeof(key), "schedule-%s", daemon_job_kind_names[global_kinds[k]]);
		if (cfg_str(cfg, NULL, key) != NULL)
			if ((rc = jobdef_build(&defs[n], cfg, NULL, global_kinds[k])) == PV_OK)
				n++;
	}
	for (int s = 0; s < cfg->nsources && rc == PV_OK; s++)
		for (int k = 0; k < JOB_NKINDS && rc == PV_OK; k++)
		{
			char key[32];

			snprintf(key, sizeof(key), "schedule-%s", daemon_job_kind_names[k]);
			if (cfg_str(cfg, &cfg->sources[s], key) != NULL)
				if ((rc = jobdef_build(&defs[n], cfg, &cfg->sources[s], (JobKind) k)) == PV_OK)
					n++;
		}
	if (rc < 0)
	{
		for (size_t i = 0; i < n; i++)
			jobdef_clear(&defs[i]);
		pv_free(defs);
		return rc;
	}
	*out = defs;
	*out_n = n;
	return PV_OK;
}

int
daemon_jobs_describe(json_t **out, const PvConfig *cfg_in, int nruns)
{
	PvConfig *cfg = (PvConfig *) cfg_in;	/* lookups only; cfg_repo_resolve wants it writable */
	JobDef *defs = NULL;
	size_t n = 0;
	PvTime now = pv_time_now();
	json_t *arr;
	int rc;

	*out = NULL;
	if ((rc = jobdefs_build(&defs, &n, cfg)) < 0)
		return rc;
	arr = json_array();
	for (size_t i = 0; i < n; i++)
	{
		json_t *runs = json_array();
		PvTime t = now;

		for (int k = 0; k < nruns && schedule_next(defs[i].sched, t, &t) == PV_OK; k++)
		{
			char buf[PV_TIME_FORMAT_MAX];

			pv_time_format(buf, sizeof(buf), t, schedule_zone(defs[i].sched));
			json_array_append_new(runs, json_string(buf));
		}
		json_array_append_new(arr, json_pack("{s:s, s:o, s:s, s:s, s:o, s:s, s:b, s:I, s:o}",
											 "name", defs[i].name,
											 "source", defs[i].source ? json_string(defs[i].source) : json_null(),
											 "kind", daemon_job_kind_names[defs[i].kind],
											 "schedule", schedule_text(defs[i].sched),
											 "zone", schedule_zone(defs[i].sched) ?
											 json_string(schedule_zone(defs[i].sched)) : json_null(),
											 "origin", defs[i].origin, "catch_up", defs[i].catch_up,
											 "jitter_seconds", (json_int_t) defs[i].jitter_secs,
											 "next_runs", runs));
		jobdef_clear(&defs[i]);
	}
	pv_error_clear();
	pv_free(defs);
	*out = arr;
	return PV_OK;
}

/* ---- configuration references ---- */

CfgRef *
daemon_cfg_get(Daemon *d)
{
	CfgRef *ref;

	pthread_mutex_lock(&d->lock);
	ref = d->cfg;
	ref->refs++;
	pthread_mutex_unlock(&d->lock);
	return ref;
}

static void
cfgref_release_locked(Daemon *d, CfgRef *ref)
{
	if (--ref->refs == 0 && ref != d->cfg)
	{
		cfg_free(ref->cfg);
		pv_free(ref);
	}
}

void
daemon_cfg_put(Daemon *d, CfgRef *ref)
{
	if (ref == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	cfgref_release_locked(d, ref);
	pthread_mutex_unlock(&d->lock);
}

/* ---- the state file ---- */

static void
time_member_set(json_t *obj, const char *key, PvTime t)
{
	char buf[PV_TIME_FORMAT_MAX];

	if (t != 0)
		json_object_set_new(obj, key, json_string(pv_time_format_utc(buf, sizeof(buf), t)));
}

static PvTime
time_member_get(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	PvTime t = 0;

	if (s != NULL && pv_time_parse(&t, s, "UTC") < 0)
	{
		pv_error_clear();
		t = 0;
	}
	return t;
}

void
daemon_state_save(Daemon *d)
{
	json_t *root = json_object(), *jobs = json_object();
	Buf text;
	int rc;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->njobs; i++)
	{
		const Job *j = d->jobs[i];
		json_t *o = json_object();

		time_member_set(o, "last_due", j->last_due);
		time_member_set(o, "last_run", j->last_run);
		time_member_set(o, "last_success", j->last_success);
		json_object_set_new(o, "consecutive_failures", json_integer((json_int_t) j->consecutive_failures));
		json_object_set_new(jobs, j->def.name, o);
	}
	json_object_set_new(root, "alerts", d->alerts ? json_deep_copy(d->alerts) : json_object());
	pthread_mutex_unlock(&d->lock);
	json_object_set_new(root, "format", json_integer(STATE_FORMAT));
	json_object_set_new(root, "jobs", jobs);
	json_object_set_new(root, "notify", notify_state_json(d->notifier));

	buf_init(&text);
	pthread_mutex_lock(&d->state_lock);
	if ((rc = pv_json_to_buf(&text, root, true)) == PV_OK)
		rc = pv_fs_write_atomic(d->state_path, text.data, text.len, 0640);
	pthread_mutex_unlock(&d->state_lock);
	if (rc < 0)
	{
		pv_log_warn("cannot save the daemon's state: %s", pv_error_msg());
		pv_error_clear();
	}
	buf_free(&text);
	json_decref(root);
}

/* Apply a loaded state to the jobs (before any runs) and the notifier. */
static void
state_load(Daemon *d)
{
	Buf text;
	json_t *root = NULL, *jobs;

	buf_init(&text);
	if (pv_fs_read_file(d->state_path, &text) < 0 ||
		pv_json_parse(&root, (const char *) text.data, text.len, d->state_path) < 0)
	{
		if (pv_error_code() != PV_ENOTFOUND)
			pv_log_warn("daemon state not read (starting afresh): %s", pv_error_msg());
		pv_error_clear();
		buf_free(&text);
		return;
	}
	jobs = json_object_get(root, "jobs");
	for (size_t i = 0; i < d->njobs; i++)
	{
		Job *j = d->jobs[i];
		const json_t *o = json_object_get(jobs, j->def.name);

		if (!json_is_object(o))
			continue;
		j->last_due = time_member_get(o, "last_due");
		j->last_run = time_member_get(o, "last_run");
		j->last_success = time_member_get(o, "last_success");
		j->consecutive_failures = json_integer_value(json_object_get(o, "consecutive_failures"));
	}
	if (json_is_object(json_object_get(root, "alerts")))
	{
		json_decref(d->alerts);
		d->alerts = json_deep_copy(json_object_get(root, "alerts"));
	}
	notify_state_load(d->notifier, json_object_get(root, "notify"));
	json_decref(root);
	buf_free(&text);
}

/* ---- scheduling ---- */

static PvTime
jitter_pick(const JobDef *def)
{
	uint64_t r;

	if (def->jitter_secs <= 0)
		return 0;
	pv_fs_random_fill(&r, sizeof(r));
	return (PvTime) (r % (uint64_t) (def->jitter_secs * 1000)) * PV_USEC_PER_MS;
}

/* The next nominal run after `after`; a schedule without one parks the job. */
static void
job_plan_next(Job *j, PvTime after)
{
	PvTime next;

	if (schedule_next(j->def.sched, after, &next) < 0)
	{
		pv_log_error("job %s: %s; it will not run again", j->def.name, pv_error_msg());
		pv_error_clear();
		next = INT64_MAX / 2;
	}
	j->next_due = next;
	j->next_start = next + jitter_pick(&j->def);
	j->next_trigger = "scheduled";
}

/* At start-up or when a job appears: the next run, or a catch-up run now (rule 3). */
static void
job_plan_first(Job *j, PvTime now)
{
	PvTime missed;

	if (j->def.catch_up && j->last_due != 0 && schedule_next(j->def.sched, j->last_due, &missed) == PV_OK &&
		missed <= now)
	{
		char t[PV_TIME_FORMAT_MAX];

		pv_log_info("job %s: the run due at %s was missed while the daemon was down; running it now",
					j->def.name, pv_time_format_local(t, sizeof(t), missed));
		j->next_due = missed;
		j->next_start = now;
		j->next_trigger = "catch-up";
		return;
	}
	pv_error_clear();
	job_plan_next(j, now);
}

/* Rule 2: an expire never shares its repository with another running job. */
static bool
job_blocked(const Daemon *d, const Job *j)
{
	for (size_t i = 0; i < d->njobs; i++)
	{
		const Job *o = d->jobs[i];

		if (o == j || !o->running || o->def.repo_url == NULL || j->def.repo_url == NULL ||
			strcmp(o->def.repo_url, j->def.repo_url) != 0)
			continue;
		if (o->def.kind == JOB_EXPIRE || j->def.kind == JOB_EXPIRE)
			return true;
	}
	return false;
}

/* Start what is due; returns how long the main thread may sleep (ms). Lock held. */
static int64_t
schedule_tick(Daemon *d)
{
	PvTime now = pv_time_now();
	int64_t sleep_ms = LOOP_MAX_SLEEP_MS;

	for (size_t i = 0; i < d->njobs; i++)
	{
		Job *j = d->jobs[i];

		if (j->retired)
			continue;
		if (now >= j->next_start)
		{
			if (j->running)
			{
				char t[PV_TIME_FORMAT_MAX], t0[PV_TIME_FORMAT_MAX];

				j->skipped++;
				pv_log_warn("job %s: the run due at %s is skipped: the previous run (started %s) is still going",
							j->def.name, pv_time_format_local(t, sizeof(t), j->next_due),
							pv_time_format_local(t0, sizeof(t0), j->run_started));
				job_plan_next(j, now > j->next_due ? now : j->next_due);
			}
			else if (job_blocked(d, j))
			{
				if (sleep_ms > BLOCKED_RETRY_MS)
					sleep_ms = BLOCKED_RETRY_MS;
				continue;
			}
			else
			{
				const char *trigger = j->next_trigger;

				j->last_due = j->next_due;
				job_plan_next(j, now > j->next_due ? now : j->next_due);
				if (daemon_job_start(d, j, trigger) < 0)
				{
					pv_log_error("job %s could not start: %s", j->def.name, pv_error_msg());
					pv_error_clear();
				}
			}
		}
		if (j->next_start > now && (j->next_start - now) / PV_USEC_PER_MS + 1 < sleep_ms)
			sleep_ms = (j->next_start - now) / PV_USEC_PER_MS + 1;
	}
	return sleep_ms;
}

static void
job_free(Job *j)
{
	jobdef_clear(&j->def);
	json_decref(j->last_entry);
	pv_free(j);
}

/* Join the runners that ended; drop retired jobs that are idle.  Lock held. */
static void
jobs_reap(Daemon *d)
{
	size_t w = 0;

	for (size_t i = 0; i < d->njobs; i++)
	{
		Job *j = d->jobs[i];

		if (j->finished)
		{
			pthread_join(j->thread, NULL);
			j->finished = false;
		}
		if (j->retired && !j->running)
		{
			job_free(j);
			continue;
		}
		d->jobs[w++] = j;
	}
	d->njobs = w;
}

static size_t
jobs_running(const Daemon *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->njobs; i++)
		n += d->jobs[i]->running;
	return n;
}

/* ---- loading and reloading ---- */

/* Everything a configuration decides besides the jobs (lock held). */
static void
settings_apply(Daemon *d, const PvConfig *cfg)
{
	d->grace_secs = cfg_duration(cfg, NULL, "daemon-grace-period");
	d->status_interval_secs = cfg_duration(cfg, NULL, "status-interval");
	if (d->status_interval_secs < 1)
		d->status_interval_secs = 1;
}

static int
notify_setup(Daemon *d, const PvConfig *cfg)
{
	NotifyConfig *nc = NULL;
	int rc;

	if ((rc = notify_config_load(&nc, cfg)) < 0)
		return rc;
	notify_configure(d->notifier, nc);
	return PV_OK;
}

/*
 * Merge freshly built definitions into the job list (lock held): a job that
 * keeps its name keeps its history and, when its schedule text and zone are
 * the same, its next run; new jobs are planned; missing ones are retired.
 */
static void
jobs_merge(Daemon *d, JobDef *defs, size_t n)
{
	PvTime now = pv_time_now();

	for (size_t i = 0; i < d->njobs; i++)
		d->jobs[i]->retired = true;
	for (size_t k = 0; k < n; k++)
	{
		Job *j = NULL;

		for (size_t i = 0; i < d->njobs && j == NULL; i++)
			if (strcmp(d->jobs[i]->def.name, defs[k].name) == 0)
				j = d->jobs[i];
		if (j != NULL)
		{
			bool same = strcmp(schedule_text(j->def.sched), schedule_text(defs[k].sched)) == 0 &&
				((schedule_zone(j->def.sched) == NULL && schedule_zone(defs[k].sched) == NULL) ||
				 (schedule_zone(j->def.sched) && schedule_zone(defs[k].sched) &&
				  strcmp(schedule_zone(j->def.sched), schedule_zone(defs[k].sched)) == 0));

			jobdef_clear(&j->def);
			j->def = defs[k];
			j->retired = false;
			if (!same)
				job_plan_next(j, now);
			continue;
		}
		j = PV_NEW(Job);
		j->def = defs[k];
		d->jobs = pv_realloc(d->jobs, (d->njobs + 1) * sizeof(Job *));
		d->jobs[d->njobs++] = j;
		job_plan_next(j, now);
	}
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->retired)
			pv_log_info("job %s is no longer configured%s", d->jobs[i]->def.name,
						d->jobs[i]->running ? "; its current run finishes" : "");
	pv_free(defs);
}

static void
reload(Daemon *d)
{
	PvConfig *cfg = NULL;
	JobDef *defs = NULL;
	size_t n = 0;
	int rc;

	pv_log_info("SIGHUP: reloading the configuration");
	if ((rc = d->opts.config_load(&cfg, d->opts.payload)) < 0 || (rc = jobdefs_build(&defs, &n, cfg)) < 0 ||
		(rc = notify_setup(d, cfg)) < 0)
	{
		char *msg = pv_strdup(pv_error_msg());

		pv_log_error("configuration reload refused, still running on the previous one: %s", msg);
		if (pv_error_hint_msg()[0])
			pv_log_info("HINT: %s", pv_error_hint_msg());
		for (size_t i = 0; i < n; i++)
			jobdef_clear(&defs[i]);
		pv_free(defs);
		cfg_free(cfg);
		pthread_mutex_lock(&d->lock);
		pv_free(d->reload_error);
		d->reload_error = msg;
		pthread_mutex_unlock(&d->lock);
		pv_error_clear();
		return;
	}
	if (cfg->path == NULL)
		pv_log_warn("the reloaded configuration has no file: jobs keep using the old path");
	pthread_mutex_lock(&d->lock);
	{
		CfgRef *old = d->cfg;

		d->cfg = PV_NEW(CfgRef);
		d->cfg->cfg = cfg;
		d->cfg->refs = 1;
		cfgref_release_locked(d, old);	/* freed now, or by the last runner using it */
	}
	pv_free(d->reload_error);
	d->reload_error = NULL;
	d->config_loaded = pv_time_now();
	settings_apply(d, cfg);
	jobs_merge(d, defs, n);
	pthread_mutex_unlock(&d->lock);
	if (daemon_http_start(d, cfg) < 0)
	{
		pv_log_error("endpoints not restarted: %s", pv_error_msg());
		pv_error_clear();
	}
	pv_log_info("configuration reloaded from '%s': %zu job%s", cfg->path ? cfg->path : "(none)", n,
				n == 1 ? "" : "s");
	daemon_refresh_request(d);
}

/* ---- wake-ups ---- */

void
daemon_wake(Daemon *d)
{
	pthread_kill(d->main_thread, SIGUSR1);
}

void
daemon_refresh_request(Daemon *d)
{
	pthread_mutex_lock(&d->lock);
	d->refresh_requested = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* Wait for a signal up to ms; returns the signal or 0 on timeout. */
static int
signal_wait(const sigset_t *set, int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	int sig;

	for (;;)
	{
		sig = sigtimedwait(set, NULL, &ts);
		if (sig > 0)
			return sig;
		if (errno == EAGAIN)
			return 0;
		if (errno != EINTR)
			return 0;
	}
}

/* ---- shutdown ---- */

static void
jobs_signal(Daemon *d, int sig)
{
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->running && d->jobs[i]->pid > 0)
			kill(-d->jobs[i]->pid, sig);
	pthread_mutex_unlock(&d->lock);
}

/* Stop scheduling; signal, wait for and kill the running jobs. */
static void
shutdown_jobs(Daemon *d, const sigset_t *set)
{
	PvTime deadline;
	size_t n;

	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	n = jobs_running(d);
	deadline = pv_time_now() + d->grace_secs * PV_USEC_PER_SEC;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (n > 0)
		pv_log_info("stopping: %zu running job%s signalled, waiting up to %llds", n, n == 1 ? "" : "s",
					(long long) d->grace_secs);
	jobs_signal(d, SIGTERM);
	for (;;)
	{
		PvTime now = pv_time_now();
		int sig;

		pthread_mutex_lock(&d->lock);
		jobs_reap(d);
		n = jobs_running(d);
		pthread_mutex_unlock(&d->lock);
		if (n == 0 || now >= deadline)
			break;
		sig = signal_wait(set, (deadline - now) / PV_USEC_PER_MS + 1);
		if (sig == SIGTERM || sig == SIGINT)
		{
			pv_log_warn("second stop signal: killing the running jobs now");
			break;
		}
	}
	if (n == 0)
		return;
	pv_log_warn("%zu job%s still running after the grace period: killed", n, n == 1 ? "" : "s");
	jobs_signal(d, SIGKILL);
	deadline = pv_time_now() + KILL_WAIT_SECS * PV_USEC_PER_SEC;
	while (pv_time_now() < deadline)
	{
		pthread_mutex_lock(&d->lock);
		jobs_reap(d);
		n = jobs_running(d);
		pthread_mutex_unlock(&d->lock);
		if (n == 0)
			return;
		(void) signal_wait(set, 200);
	}
	pv_log_warn("%zu job%s did not end (stuck before starting its process); exiting anyway", n,
				n == 1 ? "" : "s");
}

/* ---- start-up ---- */

static int
state_dir_setup(Daemon *d, const PvConfig *cfg)
{
	const char *dir = cfg_str(cfg, NULL, "daemon-state-dir");
	const char *log = cfg_str(cfg, NULL, "job-log");
	int rc;

	if ((rc = pv_fs_mkdir_p(dir, 0750)) < 0)
	{
		pv_error_prefix(rc, "daemon-state-dir");
		pv_error_hint("create it for the user the daemon runs as, or set daemon-state-dir (or PGVAULT_STATE_DIR)");
		return rc;
	}
	if (access(dir, W_OK) < 0)
	{
		rc = pv_error_errno(PV_ECONFIG, errno, "daemon-state-dir '%s' is not writable", dir);
		pv_error_hint("create it for the user the daemon runs as, or set daemon-state-dir (or PGVAULT_STATE_DIR)");
		return rc;
	}
	d->state_dir = pv_strdup(dir);
	d->state_path = pv_fs_path_join(dir, "daemon-state.json");
	d->joblog_path = log ? pv_strdup(log) : pv_fs_path_join(dir, "jobs.jsonl");
	return PV_OK;
}

static void
daemon_free(Daemon *d)
{
	for (size_t i = 0; i < d->njobs; i++)
		job_free(d->jobs[i]);
	pv_free(d->jobs);
	if (d->cfg != NULL)
	{
		cfg_free(d->cfg->cfg);
		pv_free(d->cfg);
	}
	notify_free(d->notifier);
	json_decref(d->status_doc);
	json_decref(d->repo_stats);
	json_decref(d->history);
	json_decref(d->history_cache);
	json_decref(d->alerts);
	pv_free(d->reload_error);
	pv_free(d->state_dir);
	pv_free(d->state_path);
	pv_free(d->joblog_path);
	pv_free(d->listen);
	pv_free_secret_str(d->token);
	pv_free(d->tls_cert);
	pv_free(d->tls_key);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->state_lock);
	pthread_cond_destroy(&d->cond);
	pv_free(d);
}

static Daemon *
daemon_new(const DaemonOpts *opts)
{
	Daemon *d = PV_NEW(Daemon);
	pthread_condattr_t ca;

	d->opts = *opts;
	d->exe = opts->exe ? opts->exe : "/proc/self/exe";
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->state_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	d->main_thread = pthread_self();
	d->notifier = notify_new();
	d->alerts = json_object();
	d->history_cache = json_object();
	d->started = pv_time_now();
	return d;
}

static int
daemon_start(Daemon *d)
{
	PvConfig *cfg = NULL;
	JobDef *defs = NULL;
	size_t n = 0;
	PvTime now = pv_time_now();
	int rc;

	if ((rc = d->opts.config_load(&cfg, d->opts.payload)) < 0)
		return rc;
	d->cfg = PV_NEW(CfgRef);
	d->cfg->cfg = cfg;
	d->cfg->refs = 1;
	d->config_loaded = now;
	if (cfg->path == NULL)
	{
		pv_error_set(PV_ECONFIG, "the daemon needs a configuration file");
		pv_error_hint("give --config FILE (or set PGVAULT_CONFIG) naming a file with schedule-* settings");
		return PV_ECONFIG;
	}
	if ((rc = jobdefs_build(&defs, &n, cfg)) < 0 || (rc = notify_setup(d, cfg)) < 0 ||
		(rc = state_dir_setup(d, cfg)) < 0)
		return rc;
	if (n == 0)
		pv_log_warn("no schedule-* setting in '%s': the daemon only serves its endpoints", cfg->path);
	settings_apply(d, cfg);
	jobs_merge(d, defs, n);
	state_load(d);
	for (size_t i = 0; i < d->njobs; i++)
		job_plan_first(d->jobs[i], now);
	if ((rc = daemon_http_start(d, cfg)) < 0)
		return rc;
	if ((rc = daemon_watch_start(d)) < 0)
		return rc;
	for (size_t i = 0; i < d->njobs; i++)
	{
		char t[PV_TIME_FORMAT_MAX];

		pv_time_format(t, sizeof(t), d->jobs[i]->next_start, schedule_zone(d->jobs[i]->def.sched));
		pv_log_info("job %s: '%s'%s%s, next run %s", d->jobs[i]->def.name, schedule_text(d->jobs[i]->def.sched),
					schedule_zone(d->jobs[i]->def.sched) ? " in " : "",
					schedule_zone(d->jobs[i]->def.sched) ? schedule_zone(d->jobs[i]->def.sched) : "", t);
	}
	return PV_OK;
}

int
daemon_run(const DaemonOpts *opts)
{
	sigset_t set;
	Daemon *d;
	int rc;

	/* Before any thread exists, so every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = daemon_new(opts);
	if ((rc = daemon_start(d)) < 0)
		goto done;
	pv_log_info("daemon started (pid %d), %zu job%s", (int) getpid(), d->njobs, d->njobs == 1 ? "" : "s");
	for (;;)
	{
		int64_t sleep_ms;
		int sig;

		pthread_mutex_lock(&d->lock);
		jobs_reap(d);
		sleep_ms = schedule_tick(d);
		pthread_mutex_unlock(&d->lock);
		sig = signal_wait(&set, sleep_ms);
		if (sig == SIGTERM || sig == SIGINT)
		{
			pv_log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (sig == SIGHUP)
			reload(d);
	}
	shutdown_jobs(d, &set);
	daemon_watch_stop(d);
	daemon_state_save(d);
	pv_log_info("daemon stopped");
	rc = PV_OK;
done:
	daemon_http_stop(d);
	if (rc < 0)
		daemon_watch_stop(d);
	if (jobs_running(d) == 0)
		daemon_free(d);			/* a runner stuck in its pre-checks keeps d alive until exit */
	return rc;
}
