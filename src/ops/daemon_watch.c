/*
 * daemon_watch.c: the daemon's view of the repository, refreshed every
 * status-interval and after every job, in its own thread: the status
 * report (ops/status.h), the repository's statistics and the backup
 * history (one entry per manifest; manifests never change, so each is read
 * once and cached by id), and the alerts derived from the status report.
 *
 * The repository watched is the one "pgvault status" reads with the same
 * configuration: the global one (repo setting, or the only [repo:NAME]),
 * else the first source's.  It is opened for each refresh and closed after
 * it, so the daemon holds no repository handle between refreshes (an
 * encrypted repository's key derivation costs about 0.1 s).
 *
 * Alerts: every group or WAL archive that status does not judge OK, and an
 * unreadable repository, is an alert keyed by what it is about.  A new
 * alert (or one whose level changed) is notified at once; one that lasts is
 * notified again every notify-interval; one that clears sends a recovery.
 */
#include "ops/daemon_int.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "ops/status.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/stats.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- one refresh ---- */

static int
repo_open_watched(Daemon *d, PvConfig *cfg, Repo **out)
{
	int rc = d->opts.repo_open(out, cfg, NULL, d->opts.payload);

	if (rc < 0 && cfg->nsources > 0)
	{
		pv_error_clear();
		rc = d->opts.repo_open(out, cfg, &cfg->sources[0], d->opts.payload);
	}
	return rc;
}

static const char *
str_or(const char *s, const char *def)
{
	return s ? s : def;
}

/* A manifest total as a new reference (0 when absent). */
static json_t *
total_member(const json_t *totals, const char *key)
{
	json_t *v = json_object_get(totals, key);

	return json_is_integer(v) ? json_incref(v) : json_integer(0);
}

static json_t *
history_entry(const RepoManifest *m)
{
	const json_t *totals = repo_manifest_totals(m);
	const json_t *db = json_object_get(repo_manifest_metadata(m), "database");
	PvTime start = repo_manifest_start_time(m), stop = repo_manifest_stop_time(m);
	char a[PV_TIME_FORMAT_MAX], b[PV_TIME_FORMAT_MAX];
	json_t *j = json_object();

	json_object_set_new(j, "id", json_string(repo_manifest_id(m)));
	json_object_set_new(j, "kind", json_string(repo_manifest_kind(m)));
	json_object_set_new(j, "source", repo_manifest_source(m)[0] ? json_string(repo_manifest_source(m)) : json_null());
	json_object_set_new(j, "database", json_is_string(db) ? json_incref((json_t *) db) : json_null());
	json_object_set_new(j, "start_time", json_string(pv_time_format_utc(a, sizeof(a), start)));
	json_object_set_new(j, "stop_time", json_string(pv_time_format_utc(b, sizeof(b), stop)));
	json_object_set_new(j, "start_unix", json_real((double) start / PV_USEC_PER_SEC));
	json_object_set_new(j, "stop_unix", json_real((double) stop / PV_USEC_PER_SEC));
	json_object_set_new(j, "duration_seconds", json_real((double) (stop - start) / PV_USEC_PER_SEC));
	json_object_set_new(j, "size", total_member(totals, "logical_bytes"));
	json_object_set_new(j, "stored", total_member(totals, "stored_bytes"));
	json_object_set_new(j, "new", total_member(totals, "new_bytes"));
	return j;
}

/* Every backup, oldest first; cache (id -> entry) is replaced by the ids seen now. */
static int
history_read(Repo *repo, json_t *old_cache, json_t **out_history, json_t **out_cache)
{
	char **ids = NULL;
	size_t n = 0;
	json_t *cache = json_object(), *hist = json_array();
	int rc;

	if ((rc = repo_manifest_ids(repo, &ids, &n)) < 0)
	{
		json_decref(cache);
		json_decref(hist);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
	{
		json_t *e = json_object_get(old_cache, ids[i]);
		RepoManifest *m = NULL;

		if (e != NULL)
			json_incref(e);
		else if (repo_manifest_load(&m, repo, ids[i]) == PV_OK)
		{
			e = history_entry(m);
			repo_manifest_free(m);
		}
		else
		{
			pv_log_debug("history: backup %s skipped: %s", ids[i], pv_error_msg());
			pv_error_clear();
			continue;
		}
		json_object_set(cache, ids[i], e);
		json_array_append_new(hist, e);
	}
	repo_manifest_ids_free(ids, n);
	*out_history = hist;
	*out_cache = cache;
	return PV_OK;
}

static json_t *
unknown_doc(const char *url, const char *msg)
{
	char t[PV_TIME_FORMAT_MAX], summary[1200];

	snprintf(summary, sizeof(summary), "the repository cannot be read: %s", msg);
	return json_pack("{s:s?, s:s, s:s, s:s, s:[], s:[], s:[{s:s, s:s}]}", "repository", url, "status",
					 "UNKNOWN", "summary", summary, "time", pv_time_format_utc(t, sizeof(t), pv_time_now()),
					 "groups", "archives", "problems", "level", "UNKNOWN", "message", summary);
}

/* ---- alerts ---- */

static void
problems_join(Buf *out, const json_t *problems)
{
	const json_t *p;
	size_t i;

	json_array_foreach(problems, i, p)
		buf_printf(out, "%s%s", i ? "; " : "", json_string_value(json_object_get(p, "message")) ?
				   json_string_value(json_object_get(p, "message")) : "?");
}

/*
 * Whether a problem of the report's list is a group's (status prefixes
 * those with the group's label, "SOURCE KIND[ DATABASE]: ") or a WAL
 * archive's: those are alerts of their own, keyed by what they are about.
 */
static bool
problem_is_covered(const json_t *doc, const char *msg)
{
	const json_t *g;
	size_t i;

	json_array_foreach(json_object_get(doc, "groups"), i, g)
	{
		const char *db = json_string_value(json_object_get(g, "database"));
		const char *src = json_string_value(json_object_get(g, "source"));
		char label[512];

		snprintf(label, sizeof(label), "%s %s%s%s: ", src && src[0] ? src : "-",
				 str_or(json_string_value(json_object_get(g, "kind")), "?"), db ? " " : "", db ? db : "");
		if (strncmp(msg, label, strlen(label)) == 0)
			return true;
	}
	json_array_foreach(json_object_get(doc, "archives"), i, g)
	{
		char label[512];

		snprintf(label, sizeof(label), "%s WAL archive: ", str_or(json_string_value(json_object_get(g, "source")), ""));
		if (strncmp(msg, label, strlen(label)) == 0)
			return true;
	}
	return false;
}

/* key -> {"level", "message", "subject"} for everything status does not call OK. */
static json_t *
alerts_from_status(const json_t *doc)
{
	json_t *out = json_object();
	const json_t *g;
	size_t i;

	json_array_foreach(json_object_get(doc, "groups"), i, g)
	{
		const char *level = json_string_value(json_object_get(g, "status"));
		const char *db = json_string_value(json_object_get(g, "database"));
		const char *src = json_string_value(json_object_get(g, "source"));
		char key[512], subject[700];
		Buf msg;

		if (level == NULL || strcmp(level, "OK") == 0)
			continue;
		snprintf(key, sizeof(key), "group:%s/%s%s%s", src ? src : "-",
				 json_string_value(json_object_get(g, "kind")), db && db[0] ? "/" : "", db && db[0] ? db : "");
		buf_init(&msg);
		problems_join(&msg, json_object_get(g, "problems"));
		snprintf(subject, sizeof(subject), "pgvault %s: %s", level, key + 6);
		json_object_set_new(out, key, json_pack("{s:s, s:s, s:s}", "level", level, "message", buf_cstr(&msg),
												"subject", subject));
		buf_free(&msg);
	}
	json_array_foreach(json_object_get(doc, "archives"), i, g)
	{
		const char *level = json_string_value(json_object_get(g, "status"));
		char key[512], subject[700];
		Buf msg;

		if (level == NULL || strcmp(level, "OK") == 0)
			continue;
		snprintf(key, sizeof(key), "archive:%s", json_string_value(json_object_get(g, "source")));
		buf_init(&msg);
		problems_join(&msg, json_object_get(g, "problems"));
		if (msg.len == 0)
			buf_printf(&msg, "WAL archive of '%s' is %s", json_string_value(json_object_get(g, "source")), level);
		snprintf(subject, sizeof(subject), "pgvault %s: WAL archive of %s", level,
				 json_string_value(json_object_get(g, "source")));
		json_object_set_new(out, key, json_pack("{s:s, s:s, s:s}", "level", level, "message", buf_cstr(&msg),
												"subject", subject));
		buf_free(&msg);
	}
	if (json_array_size(json_object_get(doc, "groups")) == 0 &&
		strcmp(str_or(json_string_value(json_object_get(doc, "status")), ""), "UNKNOWN") == 0)
	{
		json_object_set_new(out, "repository", json_pack("{s:s, s:s, s:s}", "level", "UNKNOWN", "message",
														 str_or(json_string_value(json_object_get(doc, "summary")), ""),
														 "subject", "pgvault UNKNOWN: the repository cannot be read"));
		return out;
	}
	/* Problems of the repository as a whole ("source 'x' has no backup ..."). */
	json_array_foreach(json_object_get(doc, "problems"), i, g)
	{
		const char *msg = str_or(json_string_value(json_object_get(g, "message")), "");
		const char *level = str_or(json_string_value(json_object_get(g, "level")), "WARNING");
		char key[600], subject[700];
		size_t k = 0;

		if (problem_is_covered(doc, msg))
			continue;
		/* A stable key: the message without its numbers ("3 backups cannot be read"). */
		k = (size_t) snprintf(key, sizeof(key), "problem:");
		for (const char *p = msg; *p && k + 2 < sizeof(key); p++)
			if (!(*p >= '0' && *p <= '9') || (k > 0 && key[k - 1] != '#'))
				key[k++] = (*p >= '0' && *p <= '9') ? '#' : *p;
		key[k] = '\0';
		snprintf(subject, sizeof(subject), "pgvault %s: %s", level, msg);
		json_object_set_new(out, key, json_pack("{s:s, s:s, s:s}", "level", level, "message", msg, "subject",
												subject));
	}
	return out;
}

static void
alert_notify(Daemon *d, NotifyEvent ev, const char *key, const json_t *a, const char *prefix)
{
	char subject[800];

	snprintf(subject, sizeof(subject), "%s%s", prefix, json_string_value(json_object_get(a, "subject")));
	notify_send(d->notifier, &(NotifyMessage) {.event = ev, .key = key, .subject = subject,
		.text = json_string_value(json_object_get(a, "message")), .details = a});
}

/* Compare with the open alerts; notify what appeared, lasted long enough, or cleared. */
static void
alerts_update(Daemon *d, const json_t *doc, int64_t interval_secs)
{
	json_t *now_alerts = alerts_from_status(doc), *old, *sends = json_array(), *a;
	const char *key;
	double now = (double) pv_time_now() / PV_USEC_PER_SEC;
	bool changed = false;
	size_t i;

	pthread_mutex_lock(&d->lock);
	old = d->alerts;
	json_object_foreach(now_alerts, key, a)
	{
		json_t *prev = json_object_get(old, key);
		const char *pl = json_string_value(json_object_get(prev, "level"));
		double notified = json_number_value(json_object_get(prev, "notified_unix"));
		bool fresh = prev == NULL || pl == NULL || strcmp(pl, json_string_value(json_object_get(a, "level"))) != 0;

		json_object_set_new(a, "since", prev && !fresh ? json_incref(json_object_get(prev, "since")) : json_real(now));
		if (fresh || now - notified >= (double) interval_secs)
		{
			json_object_set_new(a, "notified_unix", json_real(now));
			json_array_append_new(sends, json_pack("{s:s, s:O, s:s}", "key", key, "alert", a, "prefix",
												   fresh ? "" : "still "));
			changed = true;
		}
		else
			json_object_set_new(a, "notified_unix", json_real(notified));
	}
	json_object_foreach(old, key, a)
		if (json_object_get(now_alerts, key) == NULL)
		{
			json_t *r = json_deep_copy(a);
			char subject[700];

			snprintf(subject, sizeof(subject), "pgvault OK again: %s (was %s)", key,
					 str_or(json_string_value(json_object_get(a, "level")), "?"));
			json_object_set_new(r, "subject", json_string(subject));
			json_array_append_new(sends, json_pack("{s:s, s:o, s:s, s:b}", "key", key, "alert", r, "prefix", "",
												   "recovery", 1));
			changed = true;
		}
	d->alerts = now_alerts;
	pthread_mutex_unlock(&d->lock);
	json_decref(old);

	json_array_foreach(sends, i, a)
		alert_notify(d, json_is_true(json_object_get(a, "recovery")) ? NOTIFY_RECOVERY : NOTIFY_ALERT,
					 json_string_value(json_object_get(a, "key")), json_object_get(a, "alert"),
					 json_string_value(json_object_get(a, "prefix")));
	json_decref(sends);
	if (changed)
		daemon_state_save(d);
}

static void
watch_once(Daemon *d)
{
	CfgRef *ref = daemon_cfg_get(d);
	PvConfig *cfg = ref->cfg;
	Repo *repo = NULL;
	StatusReport rep = {0};
	RepoStats st;
	json_t *doc = NULL, *stats = NULL, *hist = NULL, *cache = NULL, *old_cache;
	int64_t interval = cfg_duration(cfg, NULL, "notify-interval");

	pthread_mutex_lock(&d->lock);
	old_cache = json_incref(d->history_cache);
	pthread_mutex_unlock(&d->lock);
	if (repo_open_watched(d, cfg, &repo) < 0)
	{
		const char *url = NULL;
		CfgSection *sec = NULL;

		if (cfg_repo_resolve(&sec, &url, cfg, NULL) < 0)
			url = NULL;
		pv_log_warn("status: %s", pv_error_msg());
		doc = unknown_doc(url, pv_error_msg());
		pv_error_clear();
	}
	else
	{
		if (status_collect(&rep, repo, cfg, &(StatusOpts) {0}) == PV_OK && rep.doc != NULL)
			doc = json_incref(rep.doc);
		else
		{
			pv_log_warn("status: %s", pv_error_msg());
			doc = unknown_doc(repo_url(repo), pv_error_msg());
		}
		pv_error_clear();
		status_report_free(&rep);
		if (repo_stats_compute(repo, &st) == PV_OK)
			stats = repo_stats_json(&st);
		else
			pv_log_debug("repository statistics: %s", pv_error_msg());
		pv_error_clear();
		if (history_read(repo, old_cache, &hist, &cache) < 0)
		{
			pv_log_debug("history: %s", pv_error_msg());
			pv_error_clear();
		}
	}
	repo_free(repo);
	json_decref(old_cache);
	daemon_cfg_put(d, ref);

	pthread_mutex_lock(&d->lock);
	json_decref(d->status_doc);
	d->status_doc = doc;
	if (stats != NULL || d->repo_stats == NULL)
	{
		json_decref(d->repo_stats);
		d->repo_stats = stats;
		stats = NULL;
	}
	if (hist != NULL)
	{
		json_decref(d->history);
		json_decref(d->history_cache);
		d->history = hist;
		d->history_cache = cache;
		hist = cache = NULL;
	}
	d->watched = pv_time_now();
	pthread_mutex_unlock(&d->lock);
	json_decref(stats);
	alerts_update(d, doc, interval);
}

/* ---- the thread ---- */

static void *
watch_thread(void *arg)
{
	Daemon *d = arg;

	for (;;)
	{
		struct timespec ts;

		pthread_mutex_lock(&d->lock);
		if (!d->refresh_requested && !d->stopping)
		{
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += d->status_interval_secs;
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
		if (d->stopping)
		{
			pthread_mutex_unlock(&d->lock);
			break;
		}
		d->refresh_requested = false;
		pthread_mutex_unlock(&d->lock);
		watch_once(d);
	}
	return NULL;
}

int
daemon_watch_start(Daemon *d)
{
	int rc;

	d->refresh_requested = true;	/* a first read at once */
	if ((rc = pthread_create(&d->watcher, NULL, watch_thread, d)) != 0)
		return pv_error_errno(PV_ERROR, rc, "cannot start the repository watcher thread");
	d->watcher_started = true;
	return PV_OK;
}

void
daemon_watch_stop(Daemon *d)
{
	if (!d->watcher_started)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->watcher, NULL);
	d->watcher_started = false;
}
