/*
 * async.c: asynchronous archive-push (see async.h for the spool layout and
 * its rules).  The foreground polls for its note; the pusher scans the
 * server's archive_status directory and pushes ready files through a
 * thread pool, oldest name first (a timeline's history file sorts before
 * its segments).
 */
#include "pg/wal/async.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "pg/wal/archive.h"
#include "pg/wal/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IDLE_SCANS 10			/* the pusher exits after this many empty scans ... */
#define IDLE_SLEEP_MS 200		/* ... this far apart */
#define BATCH_PER_JOB 4

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static char *
note_path(const PgWalAsyncOpts *o, const char *name, const char *kind)
{
	return pv_asprintf("%s/out/%s.%s", o->spool, name, kind);
}

/* Rule 1: a note appears whole (temp + rename), without fsync. */
static void
note_write(const PgWalAsyncOpts *o, const char *name, const char *kind, const char *text)
{
	char *path = note_path(o, name, kind);
	char *tmp = pv_asprintf("%s.tmp.%ld", path, (long) getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0)
	{
		if (text != NULL)
			(void) pv_fs_write_all(fd, text, strlen(text));
		close(fd);
		if (rename(tmp, path) < 0)
			unlink(tmp);
	}
	if (fd < 0)
		pv_log_error("archive-push pusher: cannot write '%s': %s", path, strerror(errno));
	pv_error_clear();
	pv_free(tmp);
	pv_free(path);
}

static bool
note_exists(const PgWalAsyncOpts *o, const char *name, const char *kind)
{
	char *path = note_path(o, name, kind);
	bool ok = access(path, F_OK) == 0;

	pv_free(path);
	return ok;
}

int
pgwal_async_lock(const PgWalAsyncOpts *o, int *out_fd)
{
	char *path = pv_asprintf("%s/pusher.lock", o->spool);
	int rc = pv_fs_lock_try(path, out_fd);

	pv_free(path);
	return rc;
}

static bool
pusher_running(const PgWalAsyncOpts *o)
{
	char *path = pv_asprintf("%s/pusher.lock", o->spool);
	bool held = pv_fs_lock_held(path);

	pv_free(path);
	return held;
}

static int
spool_prepare(const PgWalAsyncOpts *o)
{
	char *out = pv_asprintf("%s/out", o->spool);
	int rc = pv_fs_mkdir_p(out, 0700);

	pv_free(out);
	if (rc < 0)
		pv_error_hint("spool-path must be a local directory the server's user can write");
	return rc;
}

int
pgwal_async_push(const PgWalAsyncOpts *o, const char *name, PgWalPusherStartFn start,
				 void *payload)
{
	char *ok = note_path(o, name, "ok"), *err = note_path(o, name, "error");
	int64_t t0 = pv_time_monotonic_ms(), last_start = -1000000, sleep = 10;
	Buf msg = PV_BUF_INIT;
	PgWalFile f;
	int rc;

	if ((rc = pgwal_file_parse(&f, name)) < 0 || (rc = spool_prepare(o)) < 0)
		goto done;
	for (;;)
	{
		int64_t now = pv_time_monotonic_ms();

		if (unlink(ok) == 0)
			break;				/* rule 2: consumed */
		if (pv_fs_read_file(err, &msg) == 0)
		{
			unlink(err);
			rc = pv_error_set(PV_ERROR, "the background pusher could not archive '%s': %.*s",
							  name, (int) strcspn(buf_cstr(&msg), "\n"), buf_cstr(&msg));
			goto done;
		}
		pv_error_clear();
		if (now - last_start >= 500 && !pusher_running(o))
		{
			last_start = now;
			if ((rc = start(payload)) < 0)
				goto done;
		}
		if (now - t0 > o->timeout_ms)
		{
			char t[32];

			rc = pv_error_set(PV_ECANCEL, "WAL file '%s' was not archived within %s by the "
							  "background pusher", name,
							  pv_duration_format(t, sizeof(t), o->timeout_ms / 1000));
			pv_error_hint("the archive may be slow or unreachable; the server retries, and the "
						  "log shows the pusher's errors");
			goto done;
		}
		sleep_ms(sleep);
		if (sleep < 100)
			sleep *= 2;
	}
done:
	buf_free(&msg);
	pv_free(ok);
	pv_free(err);
	return rc;
}

/* ---- the pusher ---- */

typedef struct Ready
{
	char **names;
	size_t n;
	uint64_t bytes;				/* of the files waiting */
} Ready;

static void
ready_free(Ready *r)
{
	for (size_t i = 0; i < r->n; i++)
		pv_free(r->names[i]);
	pv_free(r->names);
	memset(r, 0, sizeof(*r));
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Names this pusher already handled.  After the server consumed a note its
 * file stays "ready" for a moment (until the archiver renames it .done):
 * without this set the pusher would push it again and leave a stray note.
 */
typedef struct Handled
{
	char **v;
	size_t n, cap;
} Handled;

static bool
handled_has(const Handled *h, const char *name)
{
	for (size_t i = h->n; i-- > 0;)
		if (strcmp(h->v[i], name) == 0)
			return true;
	return false;
}

static void
handled_add(Handled *h, const char *name)
{
	if (h->n == h->cap)
	{
		h->cap = h->cap ? h->cap * 2 : 256;
		h->v = pv_realloc(h->v, h->cap * sizeof(char *));
	}
	h->v[h->n++] = pv_strdup(name);
}

static void
handled_free(Handled *h)
{
	for (size_t i = 0; i < h->n; i++)
		pv_free(h->v[i]);
	pv_free(h->v);
}

/* Notes nobody came for (the server archived the file otherwise, or was reset): gone after an hour. */
static void
stale_notes_remove(const PgWalAsyncOpts *o)
{
	char *dir = pv_asprintf("%s/out", o->spool);
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t now = time(NULL);

	while (d != NULL && (de = readdir(d)) != NULL)
	{
		char *path;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		path = pv_asprintf("%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && now - st.st_mtime > 3600)
			unlink(path);
		pv_free(path);
	}
	if (d != NULL)
		closedir(d);
	pv_free(dir);
}

/*
 * Every file the server marked ready that has no note yet and we did not
 * handle, sorted.  Handled names no longer ready (the server archived them)
 * are forgotten, so the set stays as small as the server's backlog.
 */
static int
ready_scan(Ready *out, const PgWalAsyncOpts *o, Handled *handled)
{
	Handled still = {0};
	char *dir = pv_asprintf("%s/archive_status", o->wal_dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (d == NULL)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot open '%s'", dir);
		goto done;
	}
	while ((de = readdir(d)) != NULL)
	{
		size_t len = strlen(de->d_name);
		char *name, *path;
		struct stat st;
		PgWalFile f;

		if (len <= 6 || strcmp(de->d_name + len - 6, ".ready") != 0)
			continue;
		name = pv_strndup(de->d_name, len - 6);
		if (handled_has(handled, name))
		{
			handled_add(&still, name);
			pv_free(name);
			continue;
		}
		if (pgwal_file_parse(&f, name) < 0 || note_exists(o, name, "ok") ||
			note_exists(o, name, "error"))
		{
			pv_error_clear();
			pv_free(name);
			continue;
		}
		path = pv_asprintf("%s/%s", o->wal_dir, name);
		if (stat(path, &st) == 0)
			out->bytes += (uint64_t) st.st_size;
		pv_free(path);
		if (out->n == cap)
		{
			cap = cap ? cap * 2 : 64;
			out->names = pv_realloc(out->names, cap * sizeof(char *));
		}
		out->names[out->n++] = name;
	}
	closedir(d);
	pv_qsort(out->names, out->n, sizeof(char *), name_cmp);
	handled_free(handled);
	*handled = still;
	still = (Handled) {0};
done:
	handled_free(&still);
	pv_free(dir);
	return rc;
}

typedef struct PushTask
{
	Repo *repo;
	const PgWalAsyncOpts *o;
	const char *name;
	bool ok;					/* archived: o->pushed gets it after the batch */
} PushTask;

/* Never fails the pool: the outcome is the note. */
static int
push_task(void *arg)
{
	PushTask *t = arg;
	char *path = pv_asprintf("%s/%s", t->o->wal_dir, t->name);
	PgWalPushResult res;

	if (pgwal_push(t->repo, t->o->source, path, &res) == 0)
	{
		t->ok = true;
		note_write(t->o, t->name, "ok", NULL);
		pv_log_detail("archive-push pusher: archived '%s'", t->name);
	}
	else
	{
		pv_log_error("archive-push pusher: %s", pv_error_msg());
		note_write(t->o, t->name, "error", pv_error_msg());
	}
	pv_error_clear();
	pv_free(path);
	return 0;
}

/* Rule 3.  Returns how many of r's (oldest) files were dropped. */
static size_t
queue_check(const PgWalAsyncOpts *o, Ready *r)
{
	char have[32], max[32];
	uint64_t bytes = r->bytes;
	size_t dropped = 0;

	if (o->queue_max == 0)
		return 0;
	pv_size_format(have, sizeof(have), r->bytes);
	pv_size_format(max, sizeof(max), o->queue_max);
	if (bytes * 10 >= o->queue_max * 8 && bytes <= o->queue_max)
		pv_log_warn("WAL archiving is falling behind: %s of WAL waits in '%s' (archive-push-"
					"queue-max %s); past the limit WAL is DROPPED from the archive", have,
					o->wal_dir, max);
	while (bytes > o->queue_max && dropped < r->n)
	{
		char *path = pv_asprintf("%s/%s", o->wal_dir, r->names[dropped]);
		struct stat st;

		if (stat(path, &st) == 0)
			bytes -= (uint64_t) st.st_size < bytes ? (uint64_t) st.st_size : bytes;
		pv_log_error("WAL file '%s' DROPPED without archiving: %s of WAL waits in '%s', over "
					 "archive-push-queue-max %s; point-in-time recovery across it is "
					 "impossible until the next backup", r->names[dropped], have, o->wal_dir, max);
		note_write(o, r->names[dropped], "ok", NULL);
		pv_free(path);
		dropped++;
	}
	return dropped;
}

int
pgwal_async_pusher_run(Repo *repo, const PgWalAsyncOpts *o)
{
	int jobs = o->jobs > 0 ? o->jobs : 4;
	PvPool *pool = pv_pool_new(jobs, jobs * BATCH_PER_JOB);
	Handled handled = {0};
	int idle = 0, rc = 0;

	stale_notes_remove(o);
	while (idle < IDLE_SCANS)
	{
		Ready r;
		size_t first, n;
		PushTask *tasks;

		if ((rc = ready_scan(&r, o, &handled)) < 0)
			break;
		if (r.n == 0)
		{
			ready_free(&r);
			idle++;
			sleep_ms(IDLE_SLEEP_MS);
			continue;
		}
		idle = 0;
		first = queue_check(o, &r);
		for (size_t i = 0; i < first; i++)
			handled_add(&handled, r.names[i]);
		n = r.n - first < (size_t) (jobs * BATCH_PER_JOB) ? r.n - first : (size_t) (jobs * BATCH_PER_JOB);
		tasks = pv_calloc(n ? n : 1, sizeof(PushTask));
		for (size_t i = 0; i < n; i++)
		{
			tasks[i] = (PushTask) {repo, o, r.names[first + i], false};
			handled_add(&handled, r.names[first + i]);
			pv_pool_submit(pool, push_task, &tasks[i]);
		}
		pv_pool_wait(pool);
		for (size_t i = 0; i < n && o->pushed != NULL; i++)
			if (tasks[i].ok)
				o->pushed(repo, tasks[i].name, o->payload);
		pv_free(tasks);
		ready_free(&r);
	}
	pv_pool_free(pool);
	handled_free(&handled);
	return rc;
}
