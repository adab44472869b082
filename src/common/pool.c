/*
 * pool.c: see pool.h for the contract and its invariants.
 *
 * One mutex guards all state.  Three condition variables:
 *   work   - workers wait for a task (or shutdown)
 *   room   - the submitter waits for queue space (or a failure)
 *   idle   - pv_pool_wait waits for queued == 0 && running == 0
 * The queue is a ring of queue_max slots.  A failure empties the ring at
 * once (dropping tasks) so a blocked submitter wakes and returns the error
 * instead of feeding more work to a pool that is already lost.
 */
#include "common/pool.h"

#include "common/error.h"
#include "common/mem.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct PoolTask
{
	PvPoolFn fn;
	void *arg;
	void (*free_arg)(void *arg);
} PoolTask;

struct PvPool
{
	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_cond_t room;
	pthread_cond_t idle;
	PoolTask *ring;
	int queue_max;
	int head;			/* index of the oldest queued task */
	int queued;
	int running;
	bool shutdown;
	bool failed;
	PvErrorSave first_error;
	pthread_t *threads;
	int nthreads;
};

int
pv_cpu_count(void)
{
	cpu_set_t set;
	long n;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int) n : 1;
}

static void
task_release(const PoolTask *t)
{
	if (t->free_arg != NULL)
		t->free_arg(t->arg);
}

/* Called with the lock held: record the first failure and drop the queue. */
static void
pool_fail_locked(PvPool *pool, int rc)
{
	if (pool->failed)
		return;
	if (pv_error_msg()[0] == '\0')
		pv_error_set(rc, "task failed with %s", pv_error_name(rc));
	pv_error_save(&pool->first_error);
	pool->first_error.code = rc;
	pool->failed = true;
	while (pool->queued > 0)
	{
		task_release(&pool->ring[pool->head]);
		pool->head = (pool->head + 1) % pool->queue_max;
		pool->queued--;
	}
	pthread_cond_broadcast(&pool->room);
}

static void *
pool_worker(void *p)
{
	PvPool *pool = p;
	PoolTask task;
	int rc;

	pthread_mutex_lock(&pool->lock);
	for (;;)
	{
		while (pool->queued == 0 && !pool->shutdown)
			pthread_cond_wait(&pool->work, &pool->lock);
		if (pool->queued == 0)
			break;	/* shutdown and nothing left */
		task = pool->ring[pool->head];
		pool->head = (pool->head + 1) % pool->queue_max;
		pool->queued--;
		pool->running++;
		pthread_cond_signal(&pool->room);
		pthread_mutex_unlock(&pool->lock);

		pv_error_clear();
		rc = task.fn(task.arg);

		pthread_mutex_lock(&pool->lock);
		/* free_arg runs under the lock: ordered with the drop path, and cheap. */
		task_release(&task);
		pool->running--;
		if (rc < 0)
			pool_fail_locked(pool, rc);
		if (pool->queued == 0 && pool->running == 0)
			pthread_cond_broadcast(&pool->idle);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

PvPool *
pv_pool_new(int nthreads, int queue_max)
{
	PvPool *pool = PV_NEW(PvPool);
	int want = nthreads > 0 ? nthreads : pv_cpu_count();

	pool->queue_max = queue_max > 0 ? queue_max : 2 * want;
	pool->ring = pv_calloc((size_t) pool->queue_max, sizeof(PoolTask));
	pool->threads = pv_calloc((size_t) want, sizeof(pthread_t));
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->room, NULL);
	pthread_cond_init(&pool->idle, NULL);
	for (int i = 0; i < want; i++)
	{
		if (pthread_create(&pool->threads[i], NULL, pool_worker, pool) != 0)
			break;	/* run with the threads we got */
		pool->nthreads++;
	}
	if (pool->nthreads == 0)
	{
		fprintf(stderr, "pgvault: fatal: could not start any worker thread\n");
		abort();	/* uncovered: needs thread creation to fail */
	}
	return pool;
}

int
pv_pool_submit_owned(PvPool *pool, PvPoolFn fn, void *arg, void (*free_arg)(void *arg))
{
	PoolTask task = {fn, arg, free_arg};
	int rc = PV_OK;

	pthread_mutex_lock(&pool->lock);
	while (pool->queued == pool->queue_max && !pool->failed)
		pthread_cond_wait(&pool->room, &pool->lock);
	if (pool->failed)
	{
		rc = pv_error_restore(&pool->first_error);
		pthread_mutex_unlock(&pool->lock);
		task_release(&task);
		return rc;
	}
	pool->ring[(pool->head + pool->queued) % pool->queue_max] = task;
	pool->queued++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	return PV_OK;
}

int
pv_pool_submit(PvPool *pool, PvPoolFn fn, void *arg)
{
	return pv_pool_submit_owned(pool, fn, arg, NULL);
}

int
pv_pool_wait(PvPool *pool)
{
	int rc = PV_OK;

	pthread_mutex_lock(&pool->lock);
	while (pool->queued > 0 || pool->running > 0)
		pthread_cond_wait(&pool->idle, &pool->lock);
	if (pool->failed)
		rc = pv_error_restore(&pool->first_error);
	pthread_mutex_unlock(&pool->lock);
	return rc;
}

void
pv_pool_free(PvPool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->shutdown = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->work);
	pthread_cond_destroy(&pool->room);
	pthread_cond_destroy(&pool->idle);
	pv_free(pool->threads);
	pv_free(pool->ring);
	pv_free(pool);
}

int
pv_pool_threads(const PvPool *pool)
{
	return pool->nthreads;
}
