/*
 * test_pool.c: the worker pool (common/pool.h): every task runs once, the
 * queue bound really blocks the producer, the first error wins and its
 * message reaches the caller, and tiny queues do not deadlock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/mem.h"
#include "common/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ----- a gate that tasks block on until the test opens it ----- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int gate_waiting;

static void
gate_reset(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = false;
	pthread_mutex_unlock(&gate_lock);
	atomic_store(&gate_waiting, 0);
}

static void
gate_release(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static int
task_gated(void *arg)
{
	atomic_int *ran = arg;

	atomic_fetch_add(&gate_waiting, 1);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	atomic_fetch_add(ran, 1);
	return 0;
}

/* ----- simple tasks ----- */

static int
task_mark(void *arg)
{
	atomic_int *slot = arg;

	atomic_fetch_add(slot, 1);
	return 0;
}

typedef struct FailArg
{
	int index;
	int fail_code;		/* 0 = succeed */
	atomic_int *ran;
} FailArg;

static int
task_maybe_fail(void *p)
{
	FailArg *a = p;

	atomic_fetch_add(&a->ran[a->index], 1);
	if (a->fail_code == 0)
		return 0;
	pv_error_set(a->fail_code, "chunk %d is bad (%s)", a->index, pv_error_name(a->fail_code));
	pv_error_hint("run 'pgvault verify' on chunk %d", a->index);
	return a->fail_code;
}

static void
test_all_tasks_run_once(void **state)
{
	enum { N = 2000 };
	atomic_int *slots = pv_calloc(N, sizeof(atomic_int));
	PvPool *pool = pv_pool_new(4, 8);

	(void) state;
	assert_int_equal(pv_pool_threads(pool), 4);
	for (int i = 0; i < N; i++)
		assert_int_equal(pv_pool_submit(pool, task_mark, &slots[i]), PV_OK);
	assert_int_equal(pv_pool_wait(pool), PV_OK);
	for (int i = 0; i < N; i++)
		assert_int_equal(atomic_load(&slots[i]), 1);
	/* the pool is reusable after a successful wait */
	for (int i = 0; i < N; i++)
		assert_int_equal(pv_pool_submit(pool, task_mark, &slots[i]), PV_OK);
	assert_int_equal(pv_pool_wait(pool), PV_OK);
	for (int i = 0; i < N; i++)
		assert_int_equal(atomic_load(&slots[i]), 2);
	pv_pool_free(pool);
	pv_free(slots);
}

typedef struct Submitter
{
	PvPool *pool;
	atomic_int *ran;
	atomic_bool returned;
	int rc;
} Submitter;

static void *
submitter_main(void *p)
{
	Submitter *s = p;

	s->rc = pv_pool_submit(s->pool, task_gated, s->ran);
	atomic_store(&s->returned, true);
	return NULL;
}

/* With every worker busy and the queue full, submit must block until room appears. */
static void
check_queue_blocks(int nthreads, int queue_max)
{
	PvPool *pool = pv_pool_new(nthreads, queue_max);
	atomic_int ran = 0;
	Submitter sub = {.pool = pool, .ran = &ran};
	pthread_t th;

	gate_reset();
	for (int i = 0; i < nthreads + queue_max; i++)
		assert_int_equal(pv_pool_submit(pool, task_gated, &ran), PV_OK);
	/* every worker is inside a task; the queue holds queue_max more */
	for (int i = 0; i < 30000 && atomic_load(&gate_waiting) < nthreads; i++)
		sleep_ms(2);					/* up to a minute: threads start late under load */
	assert_int_equal(atomic_load(&gate_waiting), nthreads);

	assert_int_equal(pthread_create(&th, NULL, submitter_main, &sub), 0);
	sleep_ms(150);
	assert_false(atomic_load(&sub.returned));	/* blocked: the queue is full */
	assert_int_equal(atomic_load(&ran), 0);

	gate_release();
	pthread_join(th, NULL);
	assert_true(atomic_load(&sub.returned));
	assert_int_equal(sub.rc, PV_OK);
	assert_int_equal(pv_pool_wait(pool), PV_OK);
	assert_int_equal(atomic_load(&ran), nthreads + queue_max + 1);
	pv_pool_free(pool);
}

static void
test_bounded_queue_blocks(void **state)
{
	(void) state;
	check_queue_blocks(1, 1);
	check_queue_blocks(1, 3);
	check_queue_blocks(3, 2);
}

static void
test_first_error_wins_single_worker(void **state)
{
	enum { N = 10 };
	atomic_int ran[N] = {0};
	FailArg args[N];
	PvPool *pool = pv_pool_new(1, 2);
	int rc = PV_OK;
	int submitted = 0;

	(void) state;
	for (int i = 0; i < N; i++)
		args[i] = (FailArg) {.index = i, .ran = ran};
	args[3].fail_code = PV_ECORRUPT;
	args[4].fail_code = PV_EIO;	/* never runs: the pool already failed */
	for (int i = 0; i < N && rc == PV_OK; i++)
	{
		rc = pv_pool_submit(pool, task_maybe_fail, &args[i]);
		if (rc == PV_OK)
			submitted++;
	}
	pv_error_clear();	/* the caller's own message does not matter */
	assert_int_equal(pv_pool_wait(pool), PV_ECORRUPT);
	assert_int_equal(pv_error_code(), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "chunk 3 is bad (PV_ECORRUPT)");
	assert_string_equal(pv_error_hint_msg(), "run 'pgvault verify' on chunk 3");
	for (int i = 0; i < N; i++)
		assert_int_equal(atomic_load(&ran[i]), i <= 3 ? 1 : 0);
	assert_true(submitted >= 4);

	/* later submits fail fast with the same error, and the task never runs */
	pv_error_clear();
	assert_int_equal(pv_pool_submit(pool, task_maybe_fail, &args[9]), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "chunk 3 is bad (PV_ECORRUPT)");
	assert_int_equal(pv_pool_wait(pool), PV_ECORRUPT);
	assert_int_equal(atomic_load(&ran[9]), 0);
	pv_pool_free(pool);
}

static void
test_first_error_wins_many_workers(void **state)
{
	enum { N = 400 };
	atomic_int *ran = pv_calloc(N, sizeof(atomic_int));
	FailArg *args = pv_calloc(N, sizeof(FailArg));
	PvPool *pool = pv_pool_new(4, 4);
	char expect[64];
	int rc = PV_OK;
	int index;
	int total = 0;

	(void) state;
	for (int i = 0; i < N; i++)
	{
		args[i] = (FailArg) {.index = i, .ran = ran};
		if (i >= 100 && i % 7 == 0)
			args[i].fail_code = i % 2 ? PV_EIO : PV_ECORRUPT;
	}
	for (int i = 0; i < N && rc == PV_OK; i++)
		rc = pv_pool_submit(pool, task_maybe_fail, &args[i]);
	rc = pv_pool_wait(pool);
	assert_true(rc == PV_EIO || rc == PV_ECORRUPT);
	/* the message belongs to the code: both come from the same task */
	assert_int_equal(sscanf(pv_error_msg(), "chunk %d", &index), 1);
	assert_int_equal(args[index].fail_code, rc);
	snprintf(expect, sizeof(expect), "chunk %d is bad (%s)", index, pv_error_name(rc));
	assert_string_equal(pv_error_msg(), expect);
	for (int i = 0; i < 100; i++)
		assert_int_equal(atomic_load(&ran[i]), 1);
	for (int i = 0; i < N; i++)
	{
		assert_true(atomic_load(&ran[i]) <= 1);
		total += atomic_load(&ran[i]);
	}
	assert_true(total < N);	/* the rest was cancelled */
	pv_pool_free(pool);
	pv_free(ran);
	pv_free(args);
}

static int
task_fail_silently(void *arg)
{
	(void) arg;
	return PV_EIO;
}

static int
task_set_message_and_succeed(void *arg)
{
	(void) arg;
	pv_error_set(PV_ERROR, "stale message");
	return 0;
}

static int
task_check_clean_error(void *arg)
{
	atomic_int *dirty = arg;

	if (pv_error_code() != 0 || pv_error_msg()[0] != '\0')
		atomic_fetch_add(dirty, 1);
	return 0;
}

static void
test_error_details(void **state)
{
	PvPool *pool = pv_pool_new(1, 4);
	atomic_int dirty = 0;

	(void) state;
	/* each task starts with a clean thread-local error */
	for (int i = 0; i < 20; i++)
	{
		assert_int_equal(pv_pool_submit(pool, task_set_message_and_succeed, NULL), PV_OK);
		assert_int_equal(pv_pool_submit(pool, task_check_clean_error, &dirty), PV_OK);
	}
	assert_int_equal(pv_pool_wait(pool), PV_OK);
	assert_int_equal(atomic_load(&dirty), 0);
	/* a task failing without a message still yields a readable one */
	assert_int_equal(pv_pool_submit(pool, task_fail_silently, NULL), PV_OK);
	assert_int_equal(pv_pool_wait(pool), PV_EIO);
	assert_string_equal(pv_error_msg(), "task failed with PV_EIO");
	pv_pool_free(pool);
}

static void
test_no_deadlock_queue_one(void **state)
{
	enum { N = 5000 };
	atomic_int count = 0;

	(void) state;
	for (int threads = 1; threads <= 8; threads *= 2)
	{
		PvPool *pool = pv_pool_new(threads, 1);

		atomic_store(&count, 0);
		for (int i = 0; i < N; i++)
			assert_int_equal(pv_pool_submit(pool, task_mark, &count), PV_OK);
		assert_int_equal(pv_pool_wait(pool), PV_OK);
		assert_int_equal(atomic_load(&count), N);
		pv_pool_free(pool);
	}
	/* wait on an idle pool returns at once; free without wait finishes queued tasks */
	{
		PvPool *pool = pv_pool_new(2, 1);

		assert_int_equal(pv_pool_wait(pool), PV_OK);
		atomic_store(&count, 0);
		for (int i = 0; i < 100; i++)
			assert_int_equal(pv_pool_submit(pool, task_mark, &count), PV_OK);
		pv_pool_free(pool);
		assert_int_equal(atomic_load(&count), 100);
	}
	pv_pool_free(NULL);
}

/* ----- owned arguments: free_arg exactly once ----- */

static atomic_int owned_freed;
static atomic_int owned_ran;

static void
owned_free(void *arg)
{
	atomic_fetch_add(&owned_freed, 1);
	pv_free(arg);
}

static int
task_owned(void *arg)
{
	int *v = arg;

	atomic_fetch_add(&owned_ran, 1);
	if (*v == 5)
		return pv_error_set(PV_ERROR, "owned task 5 failed");
	return 0;
}

static void
test_submit_owned(void **state)
{
	PvPool *pool = pv_pool_new(1, 3);
	int submitted = 0, refused = 0;

	(void) state;
	atomic_store(&owned_freed, 0);
	atomic_store(&owned_ran, 0);
	for (int i = 0; i < 50; i++)
	{
		int *v = pv_malloc(sizeof(int));

		*v = i;
		if (pv_pool_submit_owned(pool, task_owned, v, owned_free) == PV_OK)
			submitted++;
		else
		{
			assert_string_equal(pv_error_msg(), "owned task 5 failed");
			refused++;
		}
	}
	assert_int_equal(pv_pool_wait(pool), PV_ERROR);
	pv_pool_free(pool);
	/* every argument freed once: run, dropped, or refused at submit */
	assert_int_equal(atomic_load(&owned_freed), 50);
	assert_true(refused > 0);
	assert_int_equal(atomic_load(&owned_ran), 6);	/* 0..5 with one worker */
	assert_int_equal(submitted + refused, 50);
}

static void
test_cpu_count_and_defaults(void **state)
{
	PvPool *pool;
	int n = pv_cpu_count();

	(void) state;
	assert_true(n >= 1);
	pool = pv_pool_new(0, 0);
	assert_int_equal(pv_pool_threads(pool), n);
	pv_pool_free(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_tasks_run_once),
		cmocka_unit_test(test_bounded_queue_blocks),
		cmocka_unit_test(test_first_error_wins_single_worker),
		cmocka_unit_test(test_first_error_wins_many_workers),
		cmocka_unit_test(test_error_details),
		cmocka_unit_test(test_no_deadlock_queue_one),
		cmocka_unit_test(test_submit_owned),
		cmocka_unit_test(test_cpu_count_and_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
