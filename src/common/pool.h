/*
 * pool.h: a fixed set of worker threads fed through a bounded queue.
 *
 * The producer (usually one coordinating thread) submits tasks; workers run
 * them in submission order, several at a time.  The queue is bounded so a
 * fast producer (a chunker) cannot run ahead of slow workers (uploads) and
 * fill memory: pv_pool_submit() blocks while the queue is full.
 *
 * Invariants:
 *  1. Every submitted task is either run exactly once or, after a failure,
 *     dropped without running; never both, never twice.
 *  2. The first task to fail (return < 0) wins: its code and its
 *     thread-local message and hint (error.h) are kept.  From then on
 *     queued tasks are dropped, running ones finish, and pv_pool_submit()
 *     and pv_pool_wait() return that code at once with the message restored
 *     in the calling thread.  A failed pool stays failed; make a new one.
 *  3. pv_pool_wait() returns only when no task is queued or running.
 *  4. pv_pool_free() lets queued tasks finish (as pv_pool_wait() would),
 *     then joins the workers.
 *  5. Each task starts with a clear thread-local error.
 *
 * Ownership: arg stays the submitter's; because a task may be dropped, a
 * task must not be the only owner of its arg unless it is submitted with
 * pv_pool_submit_owned(), whose free_arg runs exactly once in every case
 * (after the task ran, when it is dropped, or when the submit fails).
 *
 * Tasks must not submit to their own pool (a full queue would deadlock) and
 * must not call pv_pool_wait() or pv_pool_free() on it.  One thread at a time
 * should submit and wait; tasks may run concurrently with each other and
 * must synchronise any state they share.
 */
#ifndef PV_COMMON_POOL_H
#define PV_COMMON_POOL_H

typedef struct PvPool PvPool;

/* A task: returns 0, or a negative PV_E* code with a message set. */
typedef int (*PvPoolFn)(void *arg);

/*
 * Start nthreads workers (<= 0: pv_cpu_count()) with room for queue_max
 * waiting tasks (<= 0: twice the number of workers).  Aborts, like an
 * allocation failure, if not a single thread can be started.
 */
PvPool *pv_pool_new(int nthreads, int queue_max);

/* Queue fn(arg); blocks while the queue is full.  0, or the first task error. */
int pv_pool_submit(PvPool *pool, PvPoolFn fn, void *arg);

/* Same, handing arg over: free_arg(arg) is called exactly once, whatever happens. */
int pv_pool_submit_owned(PvPool *pool, PvPoolFn fn, void *arg, void (*free_arg)(void *arg));

/* Wait until every submitted task has run or been dropped; 0 or the first error. */
int pv_pool_wait(PvPool *pool);

/* Finish queued tasks, stop and join the workers, free the pool.  NULL is a no-op. */
void pv_pool_free(PvPool *pool);

/* Number of workers the pool really started. */
int pv_pool_threads(const PvPool *pool);

/* CPUs this process may run on (affinity mask), at least 1. */
int pv_cpu_count(void);

#endif
