/*
 * async.h: asynchronous archive-push.  The server still calls
 * `pgvault archive-push %p` once per file, but a background pusher works
 * ahead: it pushes every file the server has marked ready
 * (pg_wal/archive_status/<name>.ready) several at a time, and leaves a note
 * per file in the spool directory; the server's call then only waits for
 * its file's note, which is usually there already.
 *
 * Spool layout (<spool>/ is spool-path/<source>, local, the server user's):
 *   pusher.lock          flock()ed by the running pusher (at most one)
 *   out/<name>.ok        <name> is durably in the repository
 *   out/<name>.error     the push failed; the first line is the message
 *
 * Rules:
 *   1. A note is written only after pgwal_push() returned: an .ok always
 *      means the file is durable in the repository, so the server may
 *      recycle it.  Notes are not fsynced: a lost .ok only makes the next
 *      call push again, which succeeds as "already archived".
 *   2. The foreground consumes its note (unlinks it) before exiting 0, and
 *      an .error note (exiting 1, the server retries; the retry starts a
 *      new attempt).
 *   3. With queue_max set, a pusher that finds more than queue_max bytes
 *      of WAL waiting alerts loudly from 80 % on, and from 100 % on marks
 *      files .ok WITHOUT pushing them (they are lost to point-in-time
 *      recovery until the next backup) so pg_wal cannot fill its disk and
 *      stop the primary.  Without queue_max nothing is ever dropped.
 *
 * The pusher is a separate process started by the foreground call (the
 * CLI forks it before opening anything, so no threads are copied); it
 * exits after about two seconds without work.
 */
#ifndef PV_PG_WAL_ASYNC_H
#define PV_PG_WAL_ASYNC_H

#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

typedef struct PgWalAsyncOpts
{
	const char *spool;			/* spool-path/<source> */
	const char *source;
	const char *wal_dir;		/* the directory of the server's %p ("pg_wal") */
	int jobs;					/* files pushed at once by the pusher (<= 0: 4) */
	int64_t timeout_ms;			/* how long the foreground waits for its note */
	uint64_t queue_max;			/* bytes of WAL waiting before dropping; 0: never drop */
	/*
	 * Called by the pusher for each file it archived (or found archived),
	 * after the batch holding it, on the pusher's main thread, one call at
	 * a time (the CLI copies the file to the source's secondary
	 * repositories, as the synchronous path does).  NULL: nothing.
	 */
	void		(*pushed) (Repo *repo, const char *name, void *payload);
	void	   *payload;
} PgWalAsyncOpts;

/* Starts a pusher process (the CLI's fork); returns 0 or a code with a message. */
typedef int (*PgWalPusherStartFn) (void *payload);

/*
 * The foreground: wait for name's note, starting a pusher when none runs.
 * 0 when name is in the repository; the pusher's error (PV_ERROR with its
 * message) or PV_ECANCEL on timeout otherwise.
 */
int pgwal_async_push(const PgWalAsyncOpts *o, const char *name, PgWalPusherStartFn start,
					 void *payload);

/*
 * The pusher's lock: 1 and *fd set when we got it (we are the pusher), 0
 * when another process holds it.
 */
int pgwal_async_lock(const PgWalAsyncOpts *o, int *fd);

/* The pusher's loop (holding the lock): push ready files until idle. */
int pgwal_async_pusher_run(Repo *repo, const PgWalAsyncOpts *o);

#endif
