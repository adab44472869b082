/*
 * lock.h: repository locks (docs/repository-format.md section 8).
 *
 * A lock is an object locks/<32 hex> holding plaintext JSON {host, pid,
 * user, command, exclusive, time, refresh_time}.  Shared locks (backup,
 * restore, verify) coexist; an exclusive one (prune) excludes all others.
 * Acquiring writes our object first and then looks at the others, so two
 * conflicting lockers that race both back off.
 *
 * While held, a thread rewrites the object every refresh interval; before
 * each refresh it checks that the object still exists.  If it is gone
 * (another process broke it as stale) or refreshing kept failing for longer
 * than the stale timeout, the lock is *lost*: repo_lock_check then fails,
 * and writers check before writing a manifest.
 *
 * Stale: refresh_time older than the stale timeout, or taken on this host by
 * a pid that no longer exists.  Stale locks in the way are broken (deleted)
 * with a warning.
 *
 * Ownership: repo_lock_release deletes the object, stops the thread and
 * frees the lock.  The Repo must outlive its locks.
 */
#ifndef PV_REPO_LOCK_H
#define PV_REPO_LOCK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;
typedef struct RepoLock RepoLock;

#define REPO_LOCK_STALE_DEFAULT (30 * 60)		/* seconds */
#define REPO_LOCK_REFRESH_DEFAULT (5 * 60)

typedef struct RepoLockOpts
{
	bool exclusive;
	const char *command;		/* recorded in the object ("backup", "prune"); NULL = "pgvault" */
	int64_t stale_seconds;		/* 0 = 30 min */
	int64_t refresh_seconds;	/* 0 = 5 min (capped at a third of stale) */
	int64_t wait_seconds;		/* keep retrying a conflict this long; 0 = fail at once */
} RepoLockOpts;

/* Acquire with defaults.  PV_ELOCKED naming the holder when it conflicts. */
int repo_lock_acquire(RepoLock **out, Repo *repo, bool exclusive);
int repo_lock_acquire_opts(RepoLock **out, Repo *repo, const RepoLockOpts *opts);

/* 0 while the lock is held; PV_ELOCKED "lock ... was lost" otherwise. */
int repo_lock_check(RepoLock *lock);

/* Delete the lock object, stop refreshing, free.  NULL ok.  Failure is logged. */
void repo_lock_release(RepoLock *lock);

/* The object key ("locks/<hex>"), lent. */
const char *repo_lock_key(const RepoLock *lock);

/* ---- inspecting ---- */

typedef struct RepoLockInfo
{
	const char *key;
	const char *host;
	int64_t pid;
	const char *user;
	const char *command;
	bool exclusive;
	int64_t time;				/* unix seconds */
	int64_t refresh_time;
	bool stale;					/* by the rules above, with stale_seconds */
} RepoLockInfo;
typedef int (*RepoLockFn) (const RepoLockInfo *info, void *payload);

/* Every lock object (unreadable ones are reported as stale with host "?"). */
int repo_lock_list(Repo *repo, int64_t stale_seconds, RepoLockFn fn, void *payload);

/* Delete every stale lock (or, with all, every lock); *out_n (may be NULL) gets how many. */
int repo_lock_break(Repo *repo, int64_t stale_seconds, bool all, int *out_n);

#endif
