/*
 * prefetch.h: archive-get with read-ahead.  Recovery asks for one segment
 * at a time and waits for each; a background prefetcher fetches the next
 * ones (checked, as every fetch is) into the spool directory meanwhile, so
 * the next call only renames a local file into place.
 *
 * Spool layout (<spool>/ is spool-path/<source>, local):
 *   in/<segment>     a fetched, checked segment, written whole (temp + rename)
 *   in/want          the segment recovery asked for last
 *   prefetch.lock    flock()ed by the running prefetcher (at most one)
 *
 * Rules:
 *   1. A prefetched file is only ever a complete, checked copy of the
 *      archived object (pgwal_fetch); it is moved into place with rename()
 *      (or copied, then renamed, across filesystems), never half-written.
 *   2. At most `count` segments ahead of "want" are kept; files behind
 *      "want" (on its timeline) or on other timelines are deleted by the
 *      next call, so the spool holds at most count + 1 segments.
 *   3. Only segments are prefetched; history files and anything absent
 *      from the archive are fetched by the foreground itself.
 */
#ifndef PV_PG_WAL_PREFETCH_H
#define PV_PG_WAL_PREFETCH_H

#include <stdint.h>

typedef struct Repo Repo;

typedef struct PgWalPrefetchOpts
{
	const char *spool;			/* spool-path/<source> */
	const char *source;
	int count;					/* segments to keep fetched ahead (> 0) */
	int jobs;					/* fetches at once (<= 0: 4) */
} PgWalPrefetchOpts;

typedef int (*PgWalPrefetcherStartFn) (void *payload);

/*
 * The foreground: put name at dest, from the spool when prefetched, else
 * fetched now (repo_open is called only then: *repo may stay NULL); then
 * note the wish and start a prefetcher if none runs.  PV_ENOTFOUND as
 * pgwal_get.
 */
typedef int (*PgWalRepoOpenFn) (Repo **out, void *payload);
int pgwal_prefetch_get(const PgWalPrefetchOpts *o, const char *name, const char *dest,
					   PgWalRepoOpenFn open_repo, PgWalPrefetcherStartFn start, void *payload);

/* The prefetcher's lock: 1 (we hold it, *fd set) or 0 (another process does). */
int pgwal_prefetch_lock(const PgWalPrefetchOpts *o, int *fd);

/* The prefetcher's loop: keep count segments after "want" fetched, until idle. */
int pgwal_prefetch_run(Repo *repo, const PgWalPrefetchOpts *o);

#endif
