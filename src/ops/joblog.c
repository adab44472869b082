/*
 * joblog.c: writing and reading the job log (see joblog.h for the format
 * and the two places it is kept).
 */
#include "ops/joblog.h"

#include "common/sort.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
joblog_entry_init(JobLogEntry *e)
{
	memset(e, 0, sizeof(*e));
	e->exit_status = -1;
	e->size = e->stored_bytes = e->new_bytes = -1;
	e->verified = -1;
	e->notes = json_array();
}

void
joblog_entry_clear(JobLogEntry *e)
{
	pv_free(e->job);
	pv_free(e->type);
	pv_free(e->source);
	pv_free(e->trigger);
	pv_free(e->outcome);
	pv_free(e->backup_id);
	pv_free(e->location);
	pv_free(e->host);
	json_decref(e->notes);
	memset(e, 0, sizeof(*e));
}

void
joblog_entry_note(JobLogEntry *e, const char *fmt, ...)
{
	Buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	json_array_append_new(e->notes, json_string(buf_cstr(&b)));
	buf_free(&b);
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *
size_or_null(int64_t v)
{
	return v >= 0 ? json_integer((json_int_t) v) : json_null();
}

/* "2026-11-22T02:00:00.123Z": milliseconds, so durations survive a round trip. */
static json_t *
time_json(PvTime t)
{
	char buf[PV_TIME_FORMAT_MAX + 8];
	int64_t ms = ((t % PV_USEC_PER_SEC) + PV_USEC_PER_SEC) % PV_USEC_PER_SEC / PV_USEC_PER_MS;

	pv_time_format_utc(buf, sizeof(buf), t - (t % PV_USEC_PER_SEC + PV_USEC_PER_SEC) % PV_USEC_PER_SEC);
	snprintf(buf + 19, sizeof(buf) - 19, ".%03dZ", (int) ms);
	return json_string(buf);
}

json_t *
joblog_entry_json(const JobLogEntry *e)
{
	json_t *j = json_object();

	json_object_set_new(j, "format", json_integer(JOBLOG_FORMAT));
	json_object_set_new(j, "date", time_json(e->start));
	json_object_set_new(j, "end", time_json(e->end));
	/* From the millisecond times as written, so "date" + "duration_ms" = "end" exactly. */
	json_object_set_new(j, "duration_ms", json_integer((json_int_t) (e->end / PV_USEC_PER_MS - e->start / PV_USEC_PER_MS)));
	json_object_set_new(j, "job", str_or_null(e->job));
	json_object_set_new(j, "type", str_or_null(e->type));
	json_object_set_new(j, "source", str_or_null(e->source));
	json_object_set_new(j, "trigger", str_or_null(e->trigger));
	json_object_set_new(j, "outcome", str_or_null(e->outcome));
	json_object_set_new(j, "exit_status", e->exit_status >= 0 ? json_integer(e->exit_status) : json_null());
	json_object_set_new(j, "backup_id", str_or_null(e->backup_id));
	json_object_set_new(j, "size", size_or_null(e->size));
	json_object_set_new(j, "stored_bytes", size_or_null(e->stored_bytes));
	json_object_set_new(j, "new_bytes", size_or_null(e->new_bytes));
	json_object_set_new(j, "location", str_or_null(e->location));
	json_object_set_new(j, "verified", e->verified < 0 ? json_null() : json_boolean(e->verified));
	json_object_set_new(j, "notes", e->notes ? json_incref(e->notes) : json_array());
	json_object_set_new(j, "host", str_or_null(e->host));
	return j;
}

static int
opt_strdup(char **out, const json_t *j, const char *key)
{
	const char *s;
	int rc;

	if ((rc = pv_json_opt_str(&s, j, key, NULL)) < 0)
		return rc;
	*out = s ? pv_strdup(s) : NULL;
	return PV_OK;
}

static int
opt_size(int64_t *out, const json_t *j, const char *key)
{
	return pv_json_opt_int(out, j, key, -1);
}

static int
time_member(PvTime *out, const json_t *j, const char *key)
{
	const char *s;
	int rc;

	if ((rc = pv_json_get_str(&s, j, key)) < 0)
		return rc;
	if (pv_time_parse(out, s, "UTC") < 0)
		return pv_error_set(PV_ECORRUPT, "member '%s' is not a time: '%s'", key, s);
	return PV_OK;
}

int
joblog_entry_from_json(JobLogEntry *out, const json_t *j)
{
	JobLogEntry e;
	const json_t *notes = NULL;
	int64_t exit_status;
	bool verified;
	int rc;

	joblog_entry_init(&e);
	if (!json_is_object(j))
	{
		rc = pv_error_set(PV_ECORRUPT, "expected a JSON object");
		goto done;
	}
	if ((rc = time_member(&e.start, j, "date")) < 0 || (rc = time_member(&e.end, j, "end")) < 0 ||
		(rc = opt_strdup(&e.job, j, "job")) < 0 || (rc = opt_strdup(&e.type, j, "type")) < 0 ||
		(rc = opt_strdup(&e.source, j, "source")) < 0 || (rc = opt_strdup(&e.trigger, j, "trigger")) < 0 ||
		(rc = opt_strdup(&e.outcome, j, "outcome")) < 0 ||
		(rc = opt_strdup(&e.backup_id, j, "backup_id")) < 0 ||
		(rc = opt_strdup(&e.location, j, "location")) < 0 || (rc = opt_strdup(&e.host, j, "host")) < 0 ||
		(rc = opt_size(&e.size, j, "size")) < 0 || (rc = opt_size(&e.stored_bytes, j, "stored_bytes")) < 0 ||
		(rc = opt_size(&e.new_bytes, j, "new_bytes")) < 0 ||
		(rc = pv_json_opt_int(&exit_status, j, "exit_status", -1)) < 0)
		goto done;
	if (e.outcome == NULL || e.job == NULL)
	{
		rc = pv_error_set(PV_ECORRUPT, "missing member '%s'", e.job == NULL ? "job" : "outcome");
		goto done;
	}
	e.exit_status = (int) exit_status;
	if (json_is_boolean(json_object_get(j, "verified")))
	{
		if ((rc = pv_json_get_bool(&verified, j, "verified")) < 0)
			goto done;
		e.verified = verified;
	}
	if (json_object_get(j, "notes") != NULL && !json_is_null(json_object_get(j, "notes")))
	{
		size_t i;
		json_t *n;

		if ((rc = pv_json_get_array(&notes, j, "notes")) < 0)
			goto done;
		json_array_foreach(notes, i, n)
			if (json_is_string(n))
				json_array_append(e.notes, n);
	}
	*out = e;
	return PV_OK;
done:
	joblog_entry_clear(&e);
	return rc;
}

/* ---- the local file ---- */

int
joblog_append(const char *path, const JobLogEntry *e)
{
	json_t *j = joblog_entry_json(e);
	char *dir = pv_fs_path_dirname(path);
	Buf line;
	int fd = -1, rc;

	buf_init(&line);
	if ((rc = pv_fs_mkdir_p(dir, 0750)) < 0)
		goto done;
	if ((rc = pv_json_to_buf(&line, j, false)) < 0)
		goto done;
	buf_append_str(&line, "\n");
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot open job log '%s'", path);
		goto done;
	}
	/* One write on O_APPEND: lines of concurrent writers never interleave. */
	if ((rc = pv_fs_write_all(fd, line.data, line.len)) < 0)
	{
		rc = pv_error_prefix(rc, "job log '%s'", path);
		goto done;
	}
	if (fsync(fd) < 0)
		rc = pv_error_errno(PV_EIO, errno, "cannot sync job log '%s'", path);
done:
	if (fd >= 0)
		close(fd);
	buf_free(&line);
	pv_free(dir);
	json_decref(j);
	return rc;
}

bool
joblog_filter_match(const JobLogFilter *f, const JobLogEntry *e)
{
	if (f == NULL)
		return true;
	if ((f->since && e->start < f->since) || (f->until && e->start > f->until))
		return false;
	if (f->source && (e->source == NULL || strcmp(f->source, e->source) != 0))
		return false;
	if (f->type && (e->type == NULL || strcmp(f->type, e->type) != 0))
		return false;
	if (f->outcome && strcmp(f->outcome, e->outcome) != 0)
		return false;
	if (f->job && strcmp(f->job, e->job) != 0)
		return false;
	return true;
}

/* Keep the newest f->limit entries of arr (oldest first). */
static void
limit_apply(json_t *arr, const JobLogFilter *f)
{
	while (f != NULL && f->limit > 0 && json_array_size(arr) > f->limit)
		json_array_remove(arr, 0);
}

/* Parse one entry, filter it, and append the canonical object to arr. */
static void
entry_take(json_t *arr, const json_t *j, const JobLogFilter *f, const char *where)
{
	JobLogEntry e;

	if (joblog_entry_from_json(&e, j) < 0)
	{
		pv_log_warn("%s: not a job log entry: %s", where, pv_error_msg());
		pv_error_clear();
		return;
	}
	if (joblog_filter_match(f, &e))
		json_array_append_new(arr, joblog_entry_json(&e));
	joblog_entry_clear(&e);
}

int
joblog_read_file(json_t **out, const char *path, const JobLogFilter *f)
{
	FILE *fp = fopen(path, "r");
	json_t *arr = json_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;

	*out = NULL;
	if (fp == NULL)
	{
		json_decref(arr);
		return pv_error_errno(errno == ENOENT ? PV_ENOTFOUND : PV_EIO, errno, "cannot open job log '%s'",
							  path);
	}
	while ((n = getline(&line, &cap, fp)) >= 0)
	{
		json_t *j = NULL;
		char where[64 + 4096];

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (pv_json_parse(&j, line, (size_t) n, where) < 0)
		{
			/* A torn last line after a crash is expected; anything else is worth a word. */
			pv_log_warn("%s", pv_error_msg());
			pv_error_clear();
			continue;
		}
		entry_take(arr, j, f, where);
		json_decref(j);
	}
	free(line);
	fclose(fp);
	limit_apply(arr, f);
	*out = arr;
	return PV_OK;
}

/* ---- the repository ---- */

int
joblog_record(Repo *repo, const JobLogEntry *e, char **out_key)
{
	char id[REPO_BACKUP_ID_LEN + 1];
	json_t *j = joblog_entry_json(e);
	Buf text;
	char *key;
	int rc;

	buf_init(&text);
	repo_backup_id_new(id, e->start);
	key = pv_asprintf(JOBLOG_PREFIX "%s.%s", id, e->outcome ? e->outcome : "unknown");
	if ((rc = pv_json_to_buf(&text, j, false)) < 0 ||
		(rc = repo_meta_put(repo, key, text.data, text.len, STORAGE_PUT_NO_OVERWRITE)) < 0)
		rc = pv_error_prefix(rc, "cannot record job '%s' in the repository", e->job ? e->job : "?");
	if (rc == PV_OK && out_key != NULL)
	{
		*out_key = key;
		key = NULL;
	}
	pv_free(key);
	buf_free(&text);
	json_decref(j);
	return rc;
}

typedef struct RepoListCtx
{
	char **keys;
	size_t n, cap;
} RepoListCtx;

static int
record_key_add(const char *key, const StorageInfo *info, void *payload)
{
	RepoListCtx *c = payload;

	(void) info;
	if (c->n == c->cap)
	{
		c->cap = c->cap ? 2 * c->cap : 64;
		c->keys = pv_realloc(c->keys, c->cap * sizeof(char *));
	}
	c->keys[c->n++] = pv_strdup(key);
	return PV_OK;
}

static int
key_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Filter on what the name tells: the record id's time and the outcome. */
static bool
key_may_match(const char *key, const JobLogFilter *f)
{
	const char *name = key + strlen(JOBLOG_PREFIX);
	const char *dot = strrchr(name, '.');
	char id[REPO_BACKUP_ID_LEN + 1], ts[32];
	PvTime t;

	if (dot == NULL || (size_t) (dot - name) != REPO_BACKUP_ID_LEN)
		return false;
	if (f == NULL)
		return true;
	if (f->outcome && strcmp(dot + 1, f->outcome) != 0)
		return false;
	memcpy(id, name, REPO_BACKUP_ID_LEN);
	id[REPO_BACKUP_ID_LEN] = '\0';
	/* "20261122T023900Z-..." -> "2026-11-22T02:39:00Z" */
	snprintf(ts, sizeof(ts), "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", id, id + 4, id + 6, id + 9, id + 11, id + 13);
	if (pv_time_parse(&t, ts, "UTC") < 0)
	{
		pv_error_clear();
		return false;
	}
	if (f->since && t < f->since / PV_USEC_PER_SEC * PV_USEC_PER_SEC)
		return false;
	if (f->until && t > f->until)
		return false;
	return true;
}

int
joblog_read_repo(json_t **out, Repo *repo, const JobLogFilter *f)
{
	RepoListCtx c = {0};
	json_t *arr = json_array();
	int rc;

	*out = NULL;
	if ((rc = storage_list(repo_storage(repo), JOBLOG_PREFIX, record_key_add, &c)) < 0)
		goto done;
	pv_qsort(c.keys, c.n, sizeof(char *), key_compare);
	/* Newest first, so a limit stops the reading early; reversed at the end. */
	for (size_t i = c.n; i-- > 0;)
	{
		Buf stored, text;
		json_t *j = NULL;

		if (f != NULL && f->limit > 0 && json_array_size(arr) >= f->limit)
			break;
		if (!key_may_match(c.keys[i], f))
			continue;
		buf_init(&stored);
		buf_init(&text);
		if ((rc = storage_get(repo_storage(repo), c.keys[i], &stored)) < 0 ||
			(rc = repo_meta_decode(repo, stored.data, stored.len, &text)) < 0 ||
			(rc = pv_json_parse(&j, (const char *) text.data, text.len, c.keys[i])) < 0)
		{
			pv_log_warn("job record '%s' skipped: %s", c.keys[i], pv_error_msg());
			pv_error_clear();
			rc = PV_OK;
		}
		else
			entry_take(arr, j, f, c.keys[i]);
		json_decref(j);
		buf_free(&stored);
		buf_free(&text);
	}
	*out = json_array();
	for (size_t i = json_array_size(arr); i-- > 0;)
		json_array_append(*out, json_array_get(arr, i));
done:
	for (size_t i = 0; i < c.n; i++)
		pv_free(c.keys[i]);
	pv_free(c.keys);
	json_decref(arr);
	return rc;
}
