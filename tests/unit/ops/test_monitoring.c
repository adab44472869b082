/*
 * test_monitoring.c: the daemon's building blocks that need no daemon:
 * the Prometheus text writer and renderer (ops/metrics.h), the job log
 * (ops/joblog.h: JSON round trip, the local file, filters) and
 * notifications (ops/notify.h: payloads, the e-mail message, and the rate
 * limits against a real local HTTP server that records what it gets).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "config/config.h"
#include "ops/joblog.h"
#include "ops/metrics.h"
#include "ops/notify.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- metrics ---- */

static void
test_metrics_sample_format(void **state)
{
	Buf b = PV_BUF_INIT;

	(void) state;
	metrics_family(&b, "pgvault_x", "gauge", "help with \\ and\nnewline");
	metrics_sample(&b, "pgvault_x", (const char *const[]) {"a", "q\"uote", "b", "back\\slash\nnl", NULL}, 1.5);
	metrics_sample(&b, "pgvault_x", NULL, 1795320244.0373771);
	metrics_sample(&b, "pgvault_x", (const char *const[]) {"a", NULL, NULL}, 42);
	metrics_sample(&b, "pgvault_x", NULL, 0.037);
	metrics_sample(&b, "pgvault_x", NULL, NAN);
	metrics_sample(&b, "pgvault_x", NULL, INFINITY);
	metrics_sample(&b, "pgvault_x", NULL, -INFINITY);
	assert_string_equal(buf_cstr(&b),
						"# HELP pgvault_x help with \\\\ and\\nnewline\n"
						"# TYPE pgvault_x gauge\n"
						"pgvault_x{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 1.5\n"
						"pgvault_x 1795320244.0373771\n"
						"pgvault_x{a=\"\"} 42\n"
						"pgvault_x 0.037\n"
						"pgvault_x NaN\n"
						"pgvault_x +Inf\n"
						"pgvault_x -Inf\n");
	buf_free(&b);
}

static const char snapshot_text[] =
	"{\"repository\": \"/srv/repo\", \"status\": \"WARNING\", \"summary\": \"s\", \"time\": \"2026-11-22T10:00:00Z\","
	" \"groups\": [{\"source\": \"prod\", \"kind\": \"logical\", \"database\": \"shop\", \"status\": \"WARNING\","
	"   \"backups\": 7, \"newest\": {\"id\": \"x\", \"start_time\": \"2026-11-22T02:00:00Z\", \"age_seconds\": 28800},"
	"   \"verify\": {\"time\": \"2026-11-22T03:00:00Z\", \"ok\": true, \"record\": \"r\"},"
	"   \"drill\": {\"time\": \"2026-11-22T04:00:00Z\", \"ok\": false, \"record\": \"d\","
	"               \"times_ms\": {\"total\": 61500}}, \"problems\": []},"
	"  {\"source\": \"prod\", \"kind\": \"physical\", \"database\": null, \"status\": \"OK\", \"backups\": 2,"
	"   \"newest\": {\"id\": \"y\", \"age_seconds\": 100}, \"verify\": null, \"drill\": null, \"problems\": []}],"
	" \"archives\": [{\"source\": \"prod\", \"status\": \"OK\", \"segments\": 12, \"age_seconds\": 45}],"
	" \"problems\": [{\"level\": \"WARNING\", \"message\": \"m\"}],"
	" \"repository_stats\": {\"stored_bytes\": 1000, \"logical_bytes\": 5000, \"unique_raw_bytes\": 2000,"
	"   \"dedup_ratio\": 2.5, \"compression_ratio\": 2.0},"
	" \"history\": [{\"source\": \"prod\", \"kind\": \"logical\", \"stop_unix\": 100.0, \"duration_seconds\": 5.0,"
	"                \"size\": 10, \"stored\": 4, \"new\": 1},"
	"               {\"source\": \"prod\", \"kind\": \"logical\", \"stop_unix\": 200.0, \"duration_seconds\": 7.0,"
	"                \"size\": 11, \"stored\": 5, \"new\": 2}],"
	" \"daemon\": {\"version\": \"0.1.0\", \"started_unix\": 50.0, \"reload_error\": \"bad\","
	"   \"jobs\": [{\"name\": \"prod/logical\", \"source\": \"prod\", \"kind\": \"logical\", \"running\": true,"
	"              \"runs_success\": 3, \"runs_failure\": 1, \"runs_aborted\": 0, \"runs_skipped\": 2,"
	"              \"consecutive_failures\": 0, \"next_run_unix\": 300.0}],"
	"   \"notifications\": {\"sent\": 4, \"suppressed\": 9, \"failed\": 1}}}";

/* The sample line for name{labels}, or NULL. */
static const char *
line_find(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL)
	{
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return p;
		p += n;
	}
	return NULL;
}

static void
test_metrics_render(void **state)
{
	static const char *const expected[] = {
		"pgvault_status{repository=\"/srv/repo\"} 1",
		"pgvault_group_status{source=\"prod\",kind=\"logical\",database=\"shop\"} 1",
		"pgvault_group_status{source=\"prod\",kind=\"physical\",database=\"\"} 0",
		"pgvault_backups{source=\"prod\",kind=\"logical\",database=\"shop\"} 7",
		"pgvault_backup_age_seconds{source=\"prod\",kind=\"physical\",database=\"\"} 100",
		"pgvault_verify_last_timestamp_seconds{source=\"prod\",kind=\"logical\",database=\"shop\"} 1795316400",
		"pgvault_verify_last_success{source=\"prod\",kind=\"logical\",database=\"shop\"} 1",
		"pgvault_drill_last_success{source=\"prod\",kind=\"logical\",database=\"shop\"} 0",
		"pgvault_drill_rto_measured_seconds{source=\"prod\",kind=\"logical\",database=\"shop\"} 61.5",
		"pgvault_wal_archive_lag_seconds{source=\"prod\"} 45",
		"pgvault_problems{level=\"WARNING\"} 1",
		"pgvault_problems{level=\"CRITICAL\"} 0",
		"pgvault_backup_last_success_timestamp_seconds{source=\"prod\",kind=\"logical\"} 200",
		"pgvault_backup_last_duration_seconds{source=\"prod\",kind=\"logical\"} 7",
		"pgvault_backup_last_size_bytes{source=\"prod\",kind=\"logical\"} 11",
		"pgvault_backup_last_stored_bytes{source=\"prod\",kind=\"logical\"} 5",
		"pgvault_repository_stored_bytes{repository=\"/srv/repo\"} 1000",
		"pgvault_repository_dedup_ratio{repository=\"/srv/repo\"} 2.5",
		"pgvault_job_runs_total{job=\"prod/logical\",source=\"prod\",kind=\"logical\",outcome=\"success\"} 3",
		"pgvault_job_runs_total{job=\"prod/logical\",source=\"prod\",kind=\"logical\",outcome=\"failure\"} 1",
		"pgvault_job_skipped_total{job=\"prod/logical\",source=\"prod\",kind=\"logical\"} 2",
		"pgvault_job_running{job=\"prod/logical\",source=\"prod\",kind=\"logical\"} 1",
		"pgvault_job_next_run_timestamp_seconds{job=\"prod/logical\",source=\"prod\",kind=\"logical\"} 300",
		"pgvault_notifications_total{result=\"suppressed\"} 9",
		"pgvault_config_last_reload_success 0",
		"pgvault_daemon_start_time_seconds 50",
	};
	json_t *snap = NULL;
	Buf b = PV_BUF_INIT;
	char *copy, *save = NULL, *line;
	json_t *seen = json_object();
	char last[128] = "";

	(void) state;
	assert_int_equal(pv_json_parse(&snap, snapshot_text, strlen(snapshot_text), "snapshot"), PV_OK);
	metrics_render(&b, snap);
	for (size_t i = 0; i < PV_ARRAY_LEN(expected); i++)
		if (line_find(buf_cstr(&b), expected[i]) == NULL)
			fail_msg("missing line: %s\nin:\n%s", expected[i], buf_cstr(&b));
	/* No drill time for the physical group (it has none), no verify family without data. */
	assert_null(strstr(buf_cstr(&b), "pgvault_verify_last_success{source=\"prod\",kind=\"physical\""));
	/* Every family once, its samples together, each with HELP and TYPE first. */
	copy = pv_strdup(buf_cstr(&b));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char name[128];

		if (strncmp(line, "# TYPE ", 7) == 0)
		{
			sscanf(line + 7, "%127s", name);
			assert_null(json_object_get(seen, name));
			json_object_set_new(seen, name, json_true());
			snprintf(last, sizeof(last), "%s", name);
			continue;
		}
		if (line[0] == '#')
			continue;
		sscanf(line, "%127[^{ ]", name);
		if (strcmp(name, last) != 0)
			fail_msg("sample '%s' outside its family (current: %s)", line, last);
	}
	pv_free(copy);
	json_decref(seen);
	json_decref(snap);
	buf_free(&b);
}

static void
test_metrics_empty_snapshot(void **state)
{
	json_t *snap = json_object();
	Buf b = PV_BUF_INIT;

	(void) state;
	metrics_render(&b, snap);
	assert_int_equal(b.len, 0);
	json_decref(snap);
	buf_free(&b);
}

/* ---- job log ---- */

static void
entry_fill(JobLogEntry *e, const char *job, const char *source, const char *outcome, PvTime start)
{
	joblog_entry_init(e);
	e->start = start;
	e->end = start + 1234567;	/* 1.234567 s later */
	e->job = pv_strdup(job);
	e->type = pv_strdup(strchr(job, '/') ? strchr(job, '/') + 1 : job);
	e->source = source ? pv_strdup(source) : NULL;
	e->trigger = pv_strdup("scheduled");
	e->outcome = pv_strdup(outcome);
	e->exit_status = strcmp(outcome, "success") == 0 ? 0 : 1;
	e->location = pv_strdup("/srv/repo");
	e->host = pv_strdup("db1");
}

static void
test_joblog_json_round_trip(void **state)
{
	JobLogEntry e, back;
	json_t *j, *j2;
	PvTime t;

	(void) state;
	assert_int_equal(pv_time_parse(&t, "2026-11-22T02:00:00.250Z", "UTC"), PV_OK);
	entry_fill(&e, "prod/logical", "prod", "success", t);
	e.backup_id = pv_strdup("20261122T020000Z-a1b2c3");
	e.size = 123456789;
	e.stored_bytes = 4567;
	e.new_bytes = 0;
	e.verified = 1;
	joblog_entry_note(&e, "pre-check %s %s: %s", "long_transactions", "WARNING", "1 open for 2h");
	j = joblog_entry_json(&e);
	assert_string_equal(json_string_value(json_object_get(j, "date")), "2026-11-22T02:00:00.250Z");
	assert_string_equal(json_string_value(json_object_get(j, "end")), "2026-11-22T02:00:01.484Z");
	assert_int_equal(json_integer_value(json_object_get(j, "duration_ms")), 1234);
	assert_true(json_is_true(json_object_get(j, "verified")));
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 123456789);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "notes"), 0)),
						"pre-check long_transactions WARNING: 1 open for 2h");
	assert_int_equal(joblog_entry_from_json(&back, j), PV_OK);
	j2 = joblog_entry_json(&back);
	assert_true(json_equal(j, j2));
	json_decref(j2);
	joblog_entry_clear(&back);

	/* Nulls: no backup, no sizes, not verified. */
	json_decref(j);
	joblog_entry_clear(&e);
	entry_fill(&e, "verify", NULL, "failure", t);
	j = joblog_entry_json(&e);
	assert_true(json_is_null(json_object_get(j, "source")));
	assert_true(json_is_null(json_object_get(j, "size")));
	assert_true(json_is_null(json_object_get(j, "verified")));
	assert_true(json_is_null(json_object_get(j, "backup_id")));
	assert_int_equal(joblog_entry_from_json(&back, j), PV_OK);
	assert_null(back.source);
	assert_int_equal(back.size, -1);
	assert_int_equal(back.verified, -1);
	joblog_entry_clear(&back);

	/* Broken entries are refused with the member named. */
	json_object_del(j, "outcome");
	assert_int_equal(joblog_entry_from_json(&back, j), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "missing member 'outcome'");
	json_object_set_new(j, "outcome", json_string("success"));
	json_object_set_new(j, "date", json_string("yesterday-ish"));
	assert_int_equal(joblog_entry_from_json(&back, j), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "member 'date' is not a time: 'yesterday-ish'");
	json_decref(j);
	joblog_entry_clear(&e);
}

static void
test_joblog_file_append_read_filter(void **state)
{
	char dir[] = "/tmp/pgvault-joblog-XXXXXX";
	char *path;
	json_t *all = NULL, *some = NULL;
	PvTime t0;
	FILE *f;

	(void) state;
	assert_non_null(mkdtemp(dir));
	path = pv_asprintf("%s/sub/jobs.jsonl", dir);
	assert_int_equal(pv_time_parse(&t0, "2026-11-22T00:00:00Z", "UTC"), PV_OK);
	for (int i = 0; i < 6; i++)
	{
		JobLogEntry e;

		entry_fill(&e, i % 2 ? "prod/logical" : "files/file", i % 2 ? "prod" : "files",
				   i == 3 ? "failure" : "success", t0 + (PvTime) i * 3600 * PV_USEC_PER_SEC);
		assert_int_equal(joblog_append(path, &e), PV_OK);
		joblog_entry_clear(&e);
	}
	/* A torn last line (crash while writing) is skipped. */
	f = fopen(path, "a");
	fputs("{\"date\": \"2026-11-22T07:00", f);
	fclose(f);

	pv_log_set_console_level(PV_LOG_OFF);
	assert_int_equal(joblog_read_file(&all, path, NULL), PV_OK);
	assert_int_equal(json_array_size(all), 6);
	assert_string_equal(json_string_value(json_object_get(json_array_get(all, 5), "date")),
						"2026-11-22T05:00:00.000Z");
	assert_int_equal(joblog_read_file(&some, path, &(JobLogFilter) {.source = "prod"}), PV_OK);
	assert_int_equal(json_array_size(some), 3);
	json_decref(some);
	assert_int_equal(joblog_read_file(&some, path, &(JobLogFilter) {.outcome = "failure"}), PV_OK);
	assert_int_equal(json_array_size(some), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(some, 0), "job")), "prod/logical");
	json_decref(some);
	assert_int_equal(joblog_read_file(&some, path, &(JobLogFilter) {.type = "file", .limit = 2}), PV_OK);
	assert_int_equal(json_array_size(some), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(some, 1), "date")),
						"2026-11-22T04:00:00.000Z");
	json_decref(some);
	assert_int_equal(joblog_read_file(&some, path, &(JobLogFilter) {
		.since = t0 + 2 * 3600 * PV_USEC_PER_SEC, .until = t0 + 4 * 3600 * PV_USEC_PER_SEC}), PV_OK);
	assert_int_equal(json_array_size(some), 3);
	json_decref(some);
	json_decref(all);
	pv_log_set_console_level(PV_LOG_INFO);

	assert_int_equal(joblog_read_file(&some, "/nonexistent/jobs.jsonl", NULL), PV_ENOTFOUND);
	assert_null(some);
	{
		char *cmd = pv_asprintf("rm -rf '%s'", dir);

		assert_int_equal(system(cmd), 0);
		pv_free(cmd);
	}
	pv_free(path);
}

/* ---- notifications ---- */

static void
test_notify_payloads(void **state)
{
	json_t *details = json_pack("{s:s}", "outcome", "failure");
	NotifyMessage m = {.event = NOTIFY_FAILURE, .key = "job:prod/logical", .subject = "pgvault: prod/logical FAILED",
		.text = "Job: prod/logical\n.leading dot\n- error: boom", .details = details};
	json_t *j;
	const char *text;

	(void) state;
	assert_int_equal(pv_time_parse(&m.time, "2026-11-22T02:00:03Z", "UTC"), PV_OK);
	j = notify_payload_json(&m, "db1", 3);
	assert_string_equal(json_string_value(json_object_get(j, "event")), "failure");
	assert_string_equal(json_string_value(json_object_get(j, "key")), "job:prod/logical");
	assert_string_equal(json_string_value(json_object_get(j, "host")), "db1");
	assert_string_equal(json_string_value(json_object_get(j, "time")), "2026-11-22T02:00:03Z");
	assert_int_equal(json_integer_value(json_object_get(j, "suppressed")), 3);
	assert_true(json_equal(json_object_get(j, "details"), details));
	json_decref(j);

	j = notify_payload_slack(&m, "db1", 2);
	text = json_string_value(json_object_get(j, "text"));
	assert_string_equal(text, ":x: *pgvault: prod/logical FAILED*\nJob: prod/logical\n.leading dot\n- error: boom\n"
						"_(2 similar notifications held back since the last one)_\n_host db1_");
	assert_string_equal(json_string_value(json_object_get(j, "username")), "pgvault");
	json_decref(j);
	m.event = NOTIFY_RECOVERY;
	j = notify_payload_slack(&m, "db1", 0);
	assert_true(strncmp(json_string_value(json_object_get(j, "text")), ":white_check_mark: ", 19) == 0);
	json_decref(j);
	json_decref(details);
}

static void
test_notify_email_message(void **state)
{
	char *to[] = {"ops@example.com", "dba@example.com", NULL};
	NotifyConfig c = {.email_to = to, .email_from = "pgvault@db1.example.com", .hostname = "db1"};
	NotifyMessage m = {.event = NOTIFY_ALERT, .key = "k", .subject = "pgvault WARNING: größe",
		.text = "line one\nline two"};
	Buf b = PV_BUF_INIT;
	const char *s;

	(void) state;
	assert_int_equal(pv_time_parse(&m.time, "2026-11-22T02:00:03Z", "UTC"), PV_OK);
	notify_email_build(&b, &c, &m, 1);
	s = buf_cstr(&b);
	assert_non_null(strstr(s, "From: pgvault@db1.example.com\r\n"));
	assert_non_null(strstr(s, "To: ops@example.com, dba@example.com\r\n"));
	/* "pgvault WARNING: größe" in base64 */
	assert_non_null(strstr(s, "Subject: =?UTF-8?B?cGd2YXVsdCBXQVJOSU5HOiBncsO2w59l?=\r\n"));
	assert_non_null(strstr(s, "Date: Sun, 22 Nov 2026 02:00:03 +0000\r\n"));
	assert_non_null(strstr(s, "Message-ID: <"));
	assert_non_null(strstr(s, "@db1>\r\n"));
	assert_non_null(strstr(s, "X-Pgvault-Event: alert\r\n"));
	assert_non_null(strstr(s, "Content-Transfer-Encoding: 8bit\r\n\r\nline one\r\nline two\r\n"));
	assert_non_null(strstr(s, "(1 similar notification held back since the last one.)"));
	assert_null(strstr(s, "\n\n"));		/* every line ends in CRLF */
	buf_free(&b);
}

/* A local HTTP server that answers 200 and keeps the bodies it got. */
typedef struct Hook
{
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	json_t *bodies;
} Hook;

static void *
hook_serve(void *arg)
{
	Hook *h = arg;

	for (;;)
	{
		int c = accept(h->fd, NULL, NULL);
		char buf[65536];
		size_t got = 0;
		const char *body;
		long len = -1;

		if (c < 0)
			return NULL;
		for (;;)
		{
			ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t) n;
			buf[got] = '\0';
			if ((body = strstr(buf, "\r\n\r\n")) != NULL)
			{
				const char *cl = strcasestr(buf, "Content-Length:");

				len = cl ? strtol(cl + 15, NULL, 10) : 0;
				if ((size_t) (body + 4 - buf) + (size_t) len <= got)
					break;
			}
		}
		if (len >= 0)
		{
			json_t *j = NULL;

			body = strstr(buf, "\r\n\r\n") + 4;
			if (pv_json_parse(&j, body, (size_t) len, "hook") == PV_OK)
			{
				pthread_mutex_lock(&h->lock);
				json_array_append_new(h->bodies, j);
				pthread_mutex_unlock(&h->lock);
			}
		}
		(void) !write(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 57);
		close(c);
	}
}

static void
hook_start(Hook *h)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(h->fd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(listen(h->fd, 16), 0);
	getsockname(h->fd, (struct sockaddr *) &a, &len);
	h->port = ntohs(a.sin_port);
	h->bodies = json_array();
	pthread_mutex_init(&h->lock, NULL);
	pthread_create(&h->thread, NULL, hook_serve, h);
}

static size_t
hook_count(Hook *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = json_array_size(h->bodies);
	pthread_mutex_unlock(&h->lock);
	return n;
}

static void
hook_stop(Hook *h)
{
	shutdown(h->fd, SHUT_RDWR);
	close(h->fd);
	pthread_join(h->thread, NULL);
	json_decref(h->bodies);
	pthread_mutex_destroy(&h->lock);
}

static NotifyConfig *
hook_config(const char *url, int max_per_hour)
{
	NotifyConfig *c = pv_calloc(1, sizeof(NotifyConfig));

	c->events = (1u << NOTIFY_FAILURE) | (1u << NOTIFY_RECOVERY) | (1u << NOTIFY_ALERT);
	c->interval_secs = 3600;
	c->max_per_hour = max_per_hour;
	c->webhook_url = pv_strdup(url);
	c->email_from = pv_strdup("pgvault@test");
	c->smtp_url = pv_strdup("smtp://127.0.0.1:1");
	c->hostname = pv_strdup("test");
	c->verify_tls = true;
	return c;
}

static NotifyOutcome
send_one(Notifier *n, NotifyEvent ev, const char *key)
{
	return notify_send(n, &(NotifyMessage) {.event = ev, .key = key, .subject = key, .text = "t"});
}

static void
test_notify_rate_limits(void **state)
{
	Hook h;
	char *url;
	Notifier *n = notify_new(), *n2 = notify_new();
	NotifyStats st;
	json_t *saved;

	(void) state;
	pv_log_set_console_level(PV_LOG_OFF);
	hook_start(&h);
	url = pv_asprintf("http://127.0.0.1:%d/hook", h.port);
	notify_configure(n, hook_config(url, 5));

	assert_int_equal(send_one(n, NOTIFY_FAILURE, "job:a"), NOTIFY_OUT_SENT);
	assert_int_equal(send_one(n, NOTIFY_FAILURE, "job:a"), NOTIFY_OUT_SUPPRESSED);	/* rule 1 */
	assert_int_equal(send_one(n, NOTIFY_FAILURE, "job:a"), NOTIFY_OUT_SUPPRESSED);
	assert_int_equal(send_one(n, NOTIFY_FAILURE, "job:b"), NOTIFY_OUT_SENT);	/* another key */
	assert_int_equal(send_one(n, NOTIFY_SUCCESS, "job:b"), NOTIFY_OUT_DISABLED);	/* not in notify-on */
	assert_int_equal(send_one(n, NOTIFY_RECOVERY, "job:a"), NOTIFY_OUT_SENT);	/* rule 2 */
	assert_int_equal(send_one(n, NOTIFY_FAILURE, "job:a"), NOTIFY_OUT_SENT);	/* news again */
	assert_int_equal(hook_count(&h), 4);
	{
		json_t *last = json_array_get(h.bodies, 3), *first = json_array_get(h.bodies, 0);

		assert_string_equal(json_string_value(json_object_get(first, "event")), "failure");
		assert_string_equal(json_string_value(json_object_get(first, "key")), "job:a");
		assert_string_equal(json_string_value(json_object_get(json_array_get(h.bodies, 2), "event")), "recovery");
		/* the two held back before the recovery were forgotten with it */
		assert_int_equal(json_integer_value(json_object_get(last, "suppressed")), 0);
	}
	/* rule 3: five per hour, whatever the key */
	assert_int_equal(send_one(n, NOTIFY_ALERT, "alert:x"), NOTIFY_OUT_SENT);
	assert_int_equal(send_one(n, NOTIFY_ALERT, "alert:y"), NOTIFY_OUT_SUPPRESSED);
	assert_int_equal(hook_count(&h), 5);
	notify_stats(n, &st);
	assert_int_equal(st.sent, 5);
	assert_int_equal(st.webhook_sent, 5);
	assert_int_equal(st.suppressed, 3);
	assert_int_equal(st.failed, 0);

	/* The limits survive a restart through the state. */
	saved = notify_state_json(n);
	notify_configure(n2, hook_config(url, 0));
	notify_state_load(n2, saved);
	assert_int_equal(send_one(n2, NOTIFY_FAILURE, "job:b"), NOTIFY_OUT_SUPPRESSED);
	assert_int_equal(send_one(n2, NOTIFY_FAILURE, "job:c"), NOTIFY_OUT_SENT);
	json_decref(saved);

	/* rule 4: an unreachable webhook does not use up the interval */
	notify_configure(n2, hook_config("http://127.0.0.1:1/nobody", 0));
	assert_int_equal(send_one(n2, NOTIFY_FAILURE, "job:d"), NOTIFY_OUT_FAILED);
	assert_int_equal(send_one(n2, NOTIFY_FAILURE, "job:d"), NOTIFY_OUT_FAILED);
	notify_stats(n2, &st);
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.suppressed, 1);

	notify_configure(n2, NULL);
	assert_int_equal(send_one(n2, NOTIFY_FAILURE, "job:e"), NOTIFY_OUT_DISABLED);
	notify_free(n);
	notify_free(n2);
	hook_stop(&h);
	pv_free(url);
	pv_log_set_console_level(PV_LOG_INFO);
}

static void
test_notify_config_from_settings(void **state)
{
	PvConfig *cfg = NULL;
	NotifyConfig *c = NULL;
	static const char text[] =
		"[global]\nnotify-on = failure, success\nnotify-interval = 30min\nnotify-webhook = https://hooks/x\n"
		"notify-webhook-format = slack\nnotify-email-to = a@x, b@y\nnotify-smtp-user = u\n";

	(void) state;
	assert_int_equal(cfg_load_string(&cfg, text, "t.conf"), PV_OK);
	assert_int_equal(notify_config_load(&c, cfg), PV_OK);
	assert_int_equal(c->events, (1u << NOTIFY_FAILURE) | (1u << NOTIFY_SUCCESS));
	assert_int_equal(c->interval_secs, 1800);
	assert_int_equal(c->max_per_hour, 30);
	assert_int_equal(c->webhook_format, NOTIFY_WEBHOOK_SLACK);
	assert_string_equal(c->email_to[0], "a@x");
	assert_string_equal(c->email_to[1], "b@y");
	assert_null(c->email_to[2]);
	assert_string_equal(c->smtp_url, "smtp://localhost");
	assert_true(strncmp(c->email_from, "pgvault@", 8) == 0);
	assert_int_equal(c->starttls, NOTIFY_STARTTLS_AUTO);
	assert_true(notify_config_has_channel(c));
	notify_config_free(c);
	cfg_free(cfg);

	assert_int_equal(cfg_load_string(&cfg, "[global]\nnotify-on = failure, sometimes\n", "t.conf"), PV_OK);
	assert_int_equal(notify_config_load(&c, cfg), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "unknown notification event 'sometimes' in 'notify-on'");
	assert_string_equal(pv_error_hint_msg(), "events are failure, recovery, alert, drill and success");
	assert_null(c);
	cfg_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_sample_format),
		cmocka_unit_test(test_metrics_render),
		cmocka_unit_test(test_metrics_empty_snapshot),
		cmocka_unit_test(test_joblog_json_round_trip),
		cmocka_unit_test(test_joblog_file_append_read_filter),
		cmocka_unit_test(test_notify_payloads),
		cmocka_unit_test(test_notify_email_message),
		cmocka_unit_test(test_notify_rate_limits),
		cmocka_unit_test(test_notify_config_from_settings),
	};

	pv_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
