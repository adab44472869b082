/*
 * metrics.c: the Prometheus text format, rendered from the daemon's
 * snapshot (see metrics.h for what comes from where).
 *
 * Each family is a function that walks the part of the snapshot it needs,
 * so a family's samples are always contiguous, as the format requires.
 */
#include "ops/metrics.h"

#include "common/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the writer ---- */

static void
escape_append(Buf *out, const char *s, bool quotes)
{
	for (; s != NULL && *s; s++)
	{
		if (*s == '\\')
			buf_append_str(out, "\\\\");
		else if (*s == '\n')
			buf_append_str(out, "\\n");
		else if (*s == '"' && quotes)
			buf_append_str(out, "\\\"");
		else
			buf_append_byte(out, (unsigned char) *s);
	}
}

void
metrics_family(Buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s ", name);
	escape_append(out, help, false);
	buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void
value_append(Buf *out, double v)
{
	if (isnan(v))
		buf_append_str(out, "NaN");
	else if (isinf(v))
		buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		buf_printf(out, "%.0f", v);
	else
	{
		char s[40];

		/* The shortest of %.15g and %.17g that reads back as the same double. */
		snprintf(s, sizeof(s), "%.15g", v);
		if (strtod(s, NULL) != v)
			snprintf(s, sizeof(s), "%.17g", v);
		buf_append_str(out, s);
	}
}

void
metrics_sample(Buf *out, const char *name, const char *const *labels, double value)
{
	buf_append_str(out, name);
	if (labels != NULL && labels[0] != NULL)
	{
		buf_append_byte(out, '{');
		for (int i = 0; labels[i] != NULL; i += 2)
		{
			buf_printf(out, "%s%s=\"", i ? "," : "", labels[i]);
			escape_append(out, labels[i + 1], true);
			buf_append_byte(out, '"');
		}
		buf_append_byte(out, '}');
	}
	buf_append_byte(out, ' ');
	value_append(out, value);
	buf_append_byte(out, '\n');
}

/* ---- snapshot access ---- */

static const char *
str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

static bool
num(const json_t *obj, const char *key, double *out)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

/* An ISO time member as Unix seconds. */
static bool
time_secs(const json_t *obj, const char *key, double *out)
{
	const char *s = json_string_value(json_object_get(obj, key));
	PvTime t;

	if (s == NULL || pv_time_parse(&t, s, "UTC") < 0)
		return false;
	*out = (double) t / (double) PV_USEC_PER_SEC;
	return true;
}

static double
level_value(const char *level)
{
	return strcmp(level, "OK") == 0 ? 0 : strcmp(level, "WARNING") == 0 ? 1 : strcmp(level, "CRITICAL") == 0 ? 2 : 3;
}

#define GROUP_LABELS(g) \
	(const char *const[]) {"source", str(g, "source"), "kind", str(g, "kind"), "database", str(g, "database"), NULL}

/* A per-group value, or false when the group has none. */
typedef bool (*GroupValueFn)(const json_t *g, double *out);

static bool
g_status(const json_t *g, double *out)
{
	*out = level_value(str(g, "status"));
	return json_is_string(json_object_get(g, "status"));
}

static bool
g_backups(const json_t *g, double *out)
{
	return num(g, "backups", out);
}

static bool
g_age(const json_t *g, double *out)
{
	return num(json_object_get(g, "newest"), "age_seconds", out);
}

static bool
g_verify_time(const json_t *g, double *out)
{
	return time_secs(json_object_get(g, "verify"), "time", out);
}

static bool
record_ok(const json_t *rec, double *out)
{
	const json_t *ok = json_object_get(rec, "ok");

	*out = json_is_true(ok);
	return json_is_boolean(ok);
}

static bool
g_verify_ok(const json_t *g, double *out)
{
	return record_ok(json_object_get(g, "verify"), out);
}

static bool
g_drill_time(const json_t *g, double *out)
{
	return time_secs(json_object_get(g, "drill"), "time", out);
}

static bool
g_drill_ok(const json_t *g, double *out)
{
	return record_ok(json_object_get(g, "drill"), out);
}

static bool
g_drill_rto(const json_t *g, double *out)
{
	if (!num(json_object_get(json_object_get(g, "drill"), "times_ms"), "total", out))
		return false;
	*out /= 1000.0;
	return true;
}

/* A family over the groups; written only when some group has a value. */
static void
group_family(Buf *out, const json_t *groups, const char *name, const char *help, GroupValueFn fn)
{
	const json_t *g;
	size_t i;
	bool any = false;

	json_array_foreach(groups, i, g)
	{
		double v;

		if (!fn(g, &v))
			continue;
		if (!any)
			metrics_family(out, name, "gauge", help);
		any = true;
		metrics_sample(out, name, GROUP_LABELS(g), v);
	}
}

/* A family over the WAL archives (one per source); written only when some archive has the value. */
static void
archive_family(Buf *out, const json_t *archives, const char *name, const char *key, const char *help)
{
	const json_t *a;
	size_t i;
	bool any = false;

	json_array_foreach(archives, i, a)
	{
		double v;

		if (!num(a, key, &v))
			continue;
		if (!any)
			metrics_family(out, name, "gauge", help);
		any = true;
		metrics_sample(out, name, (const char *const[]) {"source", str(a, "source"), NULL}, v);
	}
}

/* ---- families from the status document ---- */

static void
render_status(Buf *out, const json_t *snap)
{
	const json_t *groups = json_object_get(snap, "groups"), *archives = json_object_get(snap, "archives");
	const json_t *g;
	size_t i;

	if (!json_is_string(json_object_get(snap, "status")))
		return;
	metrics_family(out, "pgvault_status", "gauge",
				   "overall status of the repository: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN");
	metrics_sample(out, "pgvault_status", (const char *const[]) {"repository", str(snap, "repository"), NULL},
				   level_value(str(snap, "status")));
	group_family(out, groups, "pgvault_group_status",
				 "status of a backup group (source, kind, database): 0 OK, 1 WARNING, 2 CRITICAL", g_status);
	group_family(out, groups, "pgvault_backups", "backups in the repository, per group", g_backups);
	group_family(out, groups, "pgvault_backup_age_seconds",
				 "age of the newest backup of the group (its start time: what a restore brings back)", g_age);
	group_family(out, groups, "pgvault_verify_last_timestamp_seconds",
				 "when the newest verify of the group's backups ran", g_verify_time);
	group_family(out, groups, "pgvault_verify_last_success",
				 "1 when the newest verify of the group found no damage, 0 when it did", g_verify_ok);
	group_family(out, groups, "pgvault_drill_last_timestamp_seconds",
				 "when the newest drill (test restore) of the group ran", g_drill_time);
	group_family(out, groups, "pgvault_drill_last_success",
				 "1 when the newest drill passed every check and the RTO, 0 otherwise", g_drill_ok);
	group_family(out, groups, "pgvault_drill_rto_measured_seconds",
				 "recovery time measured by the newest drill (setup, restore and checks)", g_drill_rto);
	archive_family(out, archives, "pgvault_wal_archive_lag_seconds", "age_seconds",
				   "age of the newest archived WAL segment of the source (the current RPO exposure)");
	archive_family(out, archives, "pgvault_wal_archive_segments", "segments",
				   "WAL segments in the archive of the source");
	{
		static const char *const levels[] = {"WARNING", "CRITICAL"};
		const json_t *problems = json_object_get(snap, "problems");

		metrics_family(out, "pgvault_problems", "gauge", "problems status reports, by level");
		for (size_t k = 0; k < 2; k++)
		{
			int n = 0;

			json_array_foreach(problems, i, g)
				n += strcmp(str(g, "level"), levels[k]) == 0;
			metrics_sample(out, "pgvault_problems", (const char *const[]) {"level", levels[k], NULL}, n);
		}
	}
}

/* ---- families from the backup history (newest backup per source and kind) ---- */

typedef struct Newest
{
	const json_t *entry;
	double stop;
} Newest;

static size_t
history_newest(const json_t *history, Newest *out, size_t max)
{
	const json_t *b;
	size_t i, n = 0;

	json_array_foreach(history, i, b)
	{
		double stop;
		size_t k;

		if (!num(b, "stop_unix", &stop))
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(str(out[k].entry, "source"), str(b, "source")) == 0 &&
				strcmp(str(out[k].entry, "kind"), str(b, "kind")) == 0)
				break;
		if (k == n)
		{
			if (n == max)
				continue;
			n++;
			out[k].entry = NULL;
		}
		if (out[k].entry == NULL || stop >= out[k].stop)
			out[k] = (Newest) {b, stop};
	}
	return n;
}

static void
render_history(Buf *out, const json_t *snap)
{
	static const struct
	{
		const char *name, *key, *help;
		double scale;
	} fams[] = {
		{"pgvault_backup_last_success_timestamp_seconds", "stop_unix",
			"when the newest backup of the source and kind completed", 1},
		{"pgvault_backup_last_duration_seconds", "duration_seconds",
			"how long the newest backup of the source and kind took", 1},
		{"pgvault_backup_last_size_bytes", "size",
			"logical size of the newest backup of the source and kind (what a restore writes)", 1},
		{"pgvault_backup_last_stored_bytes", "stored",
			"stored size of the chunks the newest backup of the source and kind uses", 1},
		{"pgvault_backup_last_new_bytes", "new",
			"bytes the newest backup of the source and kind added to the repository", 1},
	};
	const json_t *history = json_object_get(snap, "history");
	Newest newest[256];
	size_t n;

	if (!json_is_array(history) || (n = history_newest(history, newest, 256)) == 0)
		return;
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++)
	{
		metrics_family(out, fams[f].name, "gauge", fams[f].help);
		for (size_t k = 0; k < n; k++)
		{
			double v;

			if (num(newest[k].entry, fams[f].key, &v))
				metrics_sample(out, fams[f].name, (const char *const[]) {
					"source", str(newest[k].entry, "source"), "kind", str(newest[k].entry, "kind"), NULL},
							   v * fams[f].scale);
		}
	}
}

static void
render_repo_stats(Buf *out, const json_t *snap)
{
	static const struct
	{
		const char *name, *key, *help;
	} fams[] = {
		{"pgvault_repository_stored_bytes", "stored_bytes", "bytes of pack files in the repository"},
		{"pgvault_repository_logical_bytes", "logical_bytes", "sum of every backup's logical size"},
		{"pgvault_repository_unique_bytes", "unique_raw_bytes", "plaintext bytes of the distinct chunks"},
		{"pgvault_repository_dedup_ratio", "dedup_ratio", "logical bytes / unique bytes"},
		{"pgvault_repository_compression_ratio", "compression_ratio", "unique bytes / their stored size"},
	};
	const json_t *st = json_object_get(snap, "repository_stats");

	if (!json_is_object(st))
		return;
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++)
	{
		double v;

		if (!num(st, fams[f].key, &v))
			continue;
		metrics_family(out, fams[f].name, "gauge", fams[f].help);
		metrics_sample(out, fams[f].name, (const char *const[]) {"repository", str(snap, "repository"), NULL}, v);
	}
}

/* ---- families from the daemon ---- */

#define JOB_LABELS(j) \
	(const char *const[]) {"job", str(j, "name"), "source", str(j, "source"), "kind", str(j, "kind"), NULL}

static void
render_job_gauge(Buf *out, const json_t *jobs, const char *name, const char *key, const char *help)
{
	const json_t *j;
	size_t i;
	bool any = false;

	json_array_foreach(jobs, i, j)
	{
		double v;

		if (!num(j, key, &v))
			continue;
		if (!any)
			metrics_family(out, name, "gauge", help);
		any = true;
		metrics_sample(out, name, JOB_LABELS(j), v);
	}
}

static void
render_daemon(Buf *out, const json_t *snap)
{
	static const char *const outcomes[] = {"success", "failure", "aborted"};
	const json_t *d = json_object_get(snap, "daemon"), *jobs = json_object_get(d, "jobs");
	const json_t *j, *n;
	size_t i;
	double v;

	if (!json_is_object(d))
		return;
	metrics_family(out, "pgvault_build_info", "gauge", "pgvault's version");
	metrics_sample(out, "pgvault_build_info", (const char *const[]) {"version", str(d, "version"), NULL}, 1);
	if (num(d, "started_unix", &v))
	{
		metrics_family(out, "pgvault_daemon_start_time_seconds", "gauge", "when the daemon started");
		metrics_sample(out, "pgvault_daemon_start_time_seconds", NULL, v);
	}
	metrics_family(out, "pgvault_config_last_reload_success", "gauge",
				   "1 when the last configuration (re)load succeeded, 0 when a reload was refused");
	metrics_sample(out, "pgvault_config_last_reload_success", NULL,
				   json_is_string(json_object_get(d, "reload_error")) ? 0 : 1);
	if (num(d, "config_loaded_unix", &v))
	{
		metrics_family(out, "pgvault_config_last_reload_timestamp_seconds", "gauge",
					   "when the configuration in use was loaded");
		metrics_sample(out, "pgvault_config_last_reload_timestamp_seconds", NULL, v);
	}
	if (json_array_size(jobs) > 0)
	{
		metrics_family(out, "pgvault_job_runs_total", "counter", "runs of a scheduled job, by outcome");
		json_array_foreach(jobs, i, j)
			for (size_t k = 0; k < 3; k++)
			{
				char key[32];

				snprintf(key, sizeof(key), "runs_%s", outcomes[k]);
				metrics_sample(out, "pgvault_job_runs_total", (const char *const[]) {
					"job", str(j, "name"), "source", str(j, "source"), "kind", str(j, "kind"),
						"outcome", outcomes[k], NULL}, num(j, key, &v) ? v : 0);
			}
		metrics_family(out, "pgvault_job_skipped_total", "counter",
					   "scheduled runs skipped because the previous run of the job was still going");
		json_array_foreach(jobs, i, j)
			metrics_sample(out, "pgvault_job_skipped_total", JOB_LABELS(j), num(j, "runs_skipped", &v) ? v : 0);
		metrics_family(out, "pgvault_job_running", "gauge", "1 while the job runs");
		json_array_foreach(jobs, i, j)
			metrics_sample(out, "pgvault_job_running", JOB_LABELS(j), json_is_true(json_object_get(j, "running")));
		render_job_gauge(out, jobs, "pgvault_job_last_run_timestamp_seconds", "last_run_unix",
						 "when the last run of the job started");
		render_job_gauge(out, jobs, "pgvault_job_last_success_timestamp_seconds", "last_success_unix",
						 "when the last successful run of the job ended");
		render_job_gauge(out, jobs, "pgvault_job_last_duration_seconds", "last_duration_seconds",
						 "how long the last run of the job took");
		render_job_gauge(out, jobs, "pgvault_job_next_run_timestamp_seconds", "next_run_unix",
						 "when the job runs next");
		render_job_gauge(out, jobs, "pgvault_job_consecutive_failures", "consecutive_failures",
						 "failed runs of the job since its last success");
	}
	if (json_is_object(n = json_object_get(d, "notifications")))
	{
		static const char *const results[] = {"sent", "suppressed", "failed"};

		metrics_family(out, "pgvault_notifications_total", "counter",
					   "notifications: sent, held back by the rate limits, failed deliveries");
		for (size_t k = 0; k < 3; k++)
			metrics_sample(out, "pgvault_notifications_total",
						   (const char *const[]) {"result", results[k], NULL}, num(n, results[k], &v) ? v : 0);
	}
}

void
metrics_render(Buf *out, const json_t *snapshot)
{
	render_daemon(out, snapshot);
	render_status(out, snapshot);
	render_history(out, snapshot);
	render_repo_stats(out, snapshot);
}
