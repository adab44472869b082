/*
 * lock.c: repository lock objects (see lock.h and
 * docs/repository-format.md section 8).
 *
 * Acquiring: put our object, list the others, break the stale ones in our
 * way, and back off (delete ours) if a live one conflicts.  Waiting (when
 * asked) retries from scratch every few seconds without holding our object,
 * so two exclusive lockers waiting for each other cannot block forever.
 *
 * The refresh thread owns nothing but the timer: it rewrites our object
 * (same key) with a new refresh time, after checking it still exists.  Its
 * state (stop, lost, last refresh) is guarded by lock->mu.
 */
#include "repo/lock.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCK_KEY_LEN (6 + 32)
#define LOCK_RETRY_SECONDS 3
#define LOCK_TIME_MAX (INT64_MAX / PV_USEC_PER_SEC)	/* later times overflow microseconds */

struct RepoLock
{
	Repo *repo;
	char key[LOCK_KEY_LEN + 1];
	bool exclusive;
	char *command;
	int64_t stale_seconds;
	int64_t refresh_seconds;
	int64_t time;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_started;
	bool stop;
	bool lost;
	int64_t last_refresh;
};

static int64_t
now_seconds(void)
{
	return pv_time_now() / PV_USEC_PER_SEC;
}

/* The user running us, into out (getpwuid_r: other threads may look users up too). */
static const char *
user_name(char *out, size_t outsz)
{
	const char *u = getenv("USER");
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (u != NULL && u[0] != '\0')
		snprintf(out, outsz, "%s", u);
	else if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
		snprintf(out, outsz, "%s", res->pw_name);
	else
		snprintf(out, outsz, "?");
	return out;
}

static char *
lock_json(const RepoLock *lock, int64_t refresh)
{
	char t1[PV_TIME_FORMAT_MAX], t2[PV_TIME_FORMAT_MAX];
	char user[256];
	json_t *o;
	char *text;

	o = json_pack("{s:i, s:s, s:I, s:s, s:s, s:b, s:s, s:I, s:s, s:I}",
				  "version", 1, "host", repo_hostname(lock->repo), "pid", (json_int_t) getpid(),
				  "user", user_name(user, sizeof(user)), "command", lock->command, "exclusive", lock->exclusive,
				  "time", pv_time_format_utc(t1, sizeof(t1), lock->time * PV_USEC_PER_SEC),
				  "time_unix", (json_int_t) lock->time,
				  "refresh_time", pv_time_format_utc(t2, sizeof(t2), refresh * PV_USEC_PER_SEC),
				  "refresh_time_unix", (json_int_t) refresh);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static int
lock_put(RepoLock *lock, int64_t refresh)
{
	char *text = lock_json(lock, refresh);
	int rc = storage_put(repo_storage(lock->repo), lock->key, text, strlen(text), 0);

	free(text);
	return rc;
}

/* ---- reading other locks ---- */

typedef struct LockRead
{
	json_t *doc;				/* owns the strings of info */
	RepoLockInfo info;
} LockRead;

static bool
lock_is_stale(const RepoLockInfo *info, const char *our_host, int64_t stale_seconds)
{
	if (now_seconds() - info->refresh_time > stale_seconds)
		return true;
	if (strcmp(info->host, our_host) == 0 && info->pid > 0 && info->pid != getpid() &&
		kill((pid_t) info->pid, 0) < 0 && errno == ESRCH)
		return true;
	return false;
}

/* Read one lock object.  PV_ENOTFOUND if it vanished; unreadable ones come back as stale-able. */
static int
lock_read(LockRead *out, Repo *repo, const char *key, const StorageInfo *si, int64_t stale_seconds)
{
	Buf text = PV_BUF_INIT;
	json_int_t pid = 0, t = 0, rt = 0;
	int exclusive = 0;
	const char *host = "?", *user = "?", *command = "?";
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = storage_get(repo_storage(repo), key, &text)) < 0)
		goto done;
	out->doc = json_loadb((const char *) text.data, text.len, 0, NULL);
	if (out->doc == NULL ||
		json_unpack(out->doc, "{s:s, s:I, s?s, s?s, s:b, s:I, s:I}", "host", &host, "pid", &pid,
					"user", &user, "command", &command, "exclusive", &exclusive,
					"time_unix", &t, "refresh_time_unix", &rt) != 0 ||
		pid < 0 || pid > INT32_MAX || t < 0 || t > LOCK_TIME_MAX || rt < 0 || rt > LOCK_TIME_MAX)
	{
		/* Not ours to understand: judge it by the storage's clock. */
		host = "?";
		pid = 0;
		exclusive = 1;
		t = rt = si ? si->mtime : 0;
	}
	out->info.key = key;
	out->info.host = host;
	out->info.pid = pid;
	out->info.user = user;
	out->info.command = command;
	out->info.exclusive = exclusive != 0;
	out->info.time = t;
	out->info.refresh_time = rt;
	out->info.stale = lock_is_stale(&out->info, repo_hostname(repo), stale_seconds);
done:
	buf_free(&text);
	return rc;
}

typedef struct LockScan
{
	Repo *repo;
	RepoLock *self;				/* NULL when only listing */
	int64_t stale_seconds;
	RepoLockFn fn;
	void *payload;
	/* acquire: the first live conflict */
	bool conflict;
	char holder[512];
	int broken;
	bool break_all;
} LockScan;

static int
lock_scan_cb(const char *key, const StorageInfo *si, void *payload)
{
	LockScan *s = payload;
	LockRead r;
	char when[PV_TIME_FORMAT_MAX], refreshed[PV_TIME_FORMAT_MAX];
	int rc;

	if (s->self != NULL && strcmp(key, s->self->key) == 0)
		return 0;
	if ((rc = lock_read(&r, s->repo, key, si, s->stale_seconds)) < 0)
		return rc == PV_ENOTFOUND ? 0 : rc;
	pv_time_format_utc(when, sizeof(when), r.info.time * PV_USEC_PER_SEC);
	pv_time_format_utc(refreshed, sizeof(refreshed), r.info.refresh_time * PV_USEC_PER_SEC);
	if (s->fn != NULL)
		rc = s->fn(&r.info, s->payload);
	else if (s->self == NULL)
	{
		/* repo_lock_break */
		if (r.info.stale || s->break_all)
		{
			rc = storage_delete(repo_storage(s->repo), key);
			if (rc == PV_ENOTFOUND)
				rc = 0;
			if (rc == 0)
			{
				pv_log_warn("removed %s lock %s held by pid %lld on host '%s' (%s) since %s, "
							"last refreshed %s", r.info.exclusive ? "exclusive" : "shared", key,
							(long long) r.info.pid, r.info.host, r.info.command, when, refreshed);
				s->broken++;
			}
		}
	}
	else if (s->self->exclusive || r.info.exclusive)
	{
		if (r.info.stale)
		{
			rc = storage_delete(repo_storage(s->repo), key);
			if (rc == PV_ENOTFOUND)
				rc = 0;
			if (rc == 0)
				pv_log_warn("removed stale %s lock %s of repository '%s': held by pid %lld on host "
							"'%s' (%s) since %s, last refreshed %s",
							r.info.exclusive ? "exclusive" : "shared", key, repo_url(s->repo),
							(long long) r.info.pid, r.info.host, r.info.command, when, refreshed);
		}
		else if (!s->conflict)
		{
			s->conflict = true;
			snprintf(s->holder, sizeof(s->holder), "%s lock held by pid %lld on host '%s' (%s) "
					 "since %s, last refreshed %s", r.info.exclusive ? "an exclusive" : "a shared",
					 (long long) r.info.pid, r.info.host, r.info.command, when, refreshed);
		}
	}
	json_decref(r.doc);
	return rc;
}

int
repo_lock_list(Repo *repo, int64_t stale_seconds, RepoLockFn fn, void *payload)
{
	LockScan s = {.repo = repo, .stale_seconds = stale_seconds > 0 ? stale_seconds : REPO_LOCK_STALE_DEFAULT,
		.fn = fn, .payload = payload};

	return storage_list(repo_storage(repo), "locks/", lock_scan_cb, &s);
}

int
repo_lock_break(Repo *repo, int64_t stale_seconds, bool all, int *out_n)
{
	LockScan s = {.repo = repo, .stale_seconds = stale_seconds > 0 ? stale_seconds : REPO_LOCK_STALE_DEFAULT,
		.break_all = all};
	int rc = storage_list(repo_storage(repo), "locks/", lock_scan_cb, &s);

	if (out_n != NULL)
		*out_n = s.broken;
	return rc;
}

/* ---- holding a lock ---- */

static void *
lock_refresh_thread(void *arg)
{
	RepoLock *lock = arg;

	pthread_mutex_lock(&lock->mu);
	while (!lock->stop && !lock->lost)
	{
		struct timespec ts;
		bool exists = false;
		int64_t now;
		int rc;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += lock->refresh_seconds;
		while (!lock->stop && pthread_cond_timedwait(&lock->cond, &lock->mu, &ts) != ETIMEDOUT)
			;
		if (lock->stop)
			break;
		pthread_mutex_unlock(&lock->mu);

		now = now_seconds();
		rc = storage_exists(repo_storage(lock->repo), lock->key, &exists);
		if (rc == 0 && !exists)
		{
			pv_log_error("lock %s of repository '%s' was removed by another process",
						 lock->key, repo_url(lock->repo));
			pthread_mutex_lock(&lock->mu);
			lock->lost = true;
			continue;
		}
		if (rc == 0)
			rc = lock_put(lock, now);
		pthread_mutex_lock(&lock->mu);
		if (rc == 0)
			lock->last_refresh = now;
		else
		{
			pv_log_warn("cannot refresh lock %s of repository '%s': %s", lock->key,
						repo_url(lock->repo), pv_error_msg());
			if (now - lock->last_refresh > lock->stale_seconds)
				lock->lost = true;
		}
	}
	pthread_mutex_unlock(&lock->mu);
	return NULL;
}

static void
lock_free(RepoLock *lock)
{
	pthread_mutex_destroy(&lock->mu);
	pthread_cond_destroy(&lock->cond);
	pv_free(lock->command);
	pv_free(lock);
}

int
repo_lock_acquire_opts(RepoLock **out, Repo *repo, const RepoLockOpts *opts)
{
	RepoLock *lock = PV_NEW(RepoLock);
	unsigned char rnd[16];
	int64_t deadline;
	int rc;

	*out = NULL;
	lock->repo = repo;
	lock->exclusive = opts->exclusive;
	lock->command = pv_strdup(opts->command ? opts->command : "pgvault");
	lock->stale_seconds = opts->stale_seconds > 0 ? opts->stale_seconds : REPO_LOCK_STALE_DEFAULT;
	lock->refresh_seconds = opts->refresh_seconds > 0 ? opts->refresh_seconds : REPO_LOCK_REFRESH_DEFAULT;
	if (lock->refresh_seconds > lock->stale_seconds / 3 && lock->stale_seconds >= 3)
		lock->refresh_seconds = lock->stale_seconds / 3;
	pthread_mutex_init(&lock->mu, NULL);
	pthread_cond_init(&lock->cond, NULL);
	if ((rc = pv_random_bytes(rnd, sizeof(rnd))) < 0)
		goto done;
	memcpy(lock->key, "locks/", 6);
	pv_hex_encode(lock->key + 6, rnd, sizeof(rnd));
	deadline = now_seconds() + (opts->wait_seconds > 0 ? opts->wait_seconds : 0);

	for (;;)
	{
		LockScan s = {.repo = repo, .self = lock, .stale_seconds = lock->stale_seconds};

		lock->time = now_seconds();
		lock->last_refresh = lock->time;
		if ((rc = lock_put(lock, lock->time)) < 0)
		{
			rc = pv_error_prefix(rc, "cannot lock repository '%s'", repo_url(repo));
			goto done;
		}
		rc = storage_list(repo_storage(repo), "locks/", lock_scan_cb, &s);
		if (rc == 0 && !s.conflict)
			break;
		storage_delete(repo_storage(repo), lock->key);
		if (rc < 0)
			goto done;
		if (now_seconds() + LOCK_RETRY_SECONDS <= deadline)
		{
			pv_log_info("repository '%s' is locked (%s); waiting", repo_url(repo), s.holder);
			sleep(LOCK_RETRY_SECONDS);
			continue;
		}
		rc = pv_error_set(PV_ELOCKED, "repository '%s' is locked: %s", repo_url(repo), s.holder);
		pv_error_hint("if that process is gone, its lock counts as stale once it has not been "
					  "refreshed for %lld s and is then removed automatically",
					  (long long) lock->stale_seconds);
		goto done;
	}
	if (pthread_create(&lock->thread, NULL, lock_refresh_thread, lock) == 0)
		lock->thread_started = true;
	else
		pv_log_warn("cannot start the thread refreshing lock %s: it will go stale after %lld s",
					lock->key, (long long) lock->stale_seconds);	/* uncovered */
	pv_log_debug("took %s lock %s of repository '%s'", lock->exclusive ? "an exclusive" : "a shared",
				 lock->key, repo_url(repo));
	*out = lock;
	lock = NULL;
	rc = 0;
done:
	if (lock != NULL)
		lock_free(lock);
	return rc;
}

int
repo_lock_acquire(RepoLock **out, Repo *repo, bool exclusive)
{
	RepoLockOpts opts = {.exclusive = exclusive};

	return repo_lock_acquire_opts(out, repo, &opts);
}

int
repo_lock_check(RepoLock *lock)
{
	bool lost;
	int64_t last;

	pthread_mutex_lock(&lock->mu);
	lost = lock->lost;
	last = lock->last_refresh;
	pthread_mutex_unlock(&lock->mu);
	if (!lost && now_seconds() - last > lock->stale_seconds)
		lost = true;	/* others may have broken it by now */
	if (lost)
		return pv_error_set(PV_ELOCKED, "lock %s on repository '%s' was lost (removed by another "
							"process or not refreshed in time)", lock->key, repo_url(lock->repo));
	return 0;
}

const char *
repo_lock_key(const RepoLock *lock)
{
	return lock->key;
}

void
repo_lock_release(RepoLock *lock)
{
	int rc;

	if (lock == NULL)
		return;
	pthread_mutex_lock(&lock->mu);
	lock->stop = true;
	pthread_cond_broadcast(&lock->cond);
	pthread_mutex_unlock(&lock->mu);
	if (lock->thread_started)
		pthread_join(lock->thread, NULL);
	rc = storage_delete(repo_storage(lock->repo), lock->key);
	if (rc < 0 && rc != PV_ENOTFOUND)
		pv_log_warn("cannot remove lock %s of repository '%s': %s", lock->key,
					repo_url(lock->repo), pv_error_msg());
	lock_free(lock);
}
