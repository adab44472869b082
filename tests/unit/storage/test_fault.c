/*
 * test_fault.c: the fault-injecting wrapper over a real posix store: each
 * kind of fault hits exactly the operation asked for, and the inner store
 * shows what really happened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/fault.h"
#include "storage/storage.h"
#include "storage_test.h"

#include <pthread.h>

typedef struct Fixture
{
	char *tmp;
	Storage *inner;
	Storage *st;				/* the fault wrapper, options set per test */
} Fixture;

static int
fixture_setup(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->tmp = test_tmpdir_new();
	assert_int_equal(storage_open(&f->inner, f->tmp), 0);
	assert_int_equal(storage_fault_new(&f->st, f->inner, NULL), 0);
	*state = f;
	return 0;
}

static int
fixture_teardown(void **state)
{
	Fixture *f = *state;

	storage_free(f->st);
	storage_free(f->inner);
	test_tmpdir_free(f->tmp);
	pv_free(f);
	return 0;
}

static bool
inner_has(Fixture *f, const char *key)
{
	bool ex = false;

	assert_int_equal(storage_exists(f->inner, key, &ex), 0);
	return ex;
}

static void
test_passthrough(void **state)
{
	Fixture *f = *state;
	StorageFaultCounts c;
	StorageWriter *w = NULL;
	StorageInfo info;
	Buf out = PV_BUF_INIT;
	bool ex;

	assert_string_equal(storage_url(f->st), storage_url(f->inner));
	assert_int_equal(storage_create(f->st), 0);	/* passed on: the directory exists already */
	assert_int_equal(storage_put(f->st, "a", "hello", 5, 0), 0);
	assert_int_equal(storage_writer_open(&w, f->st, "b", 0), 0);
	assert_int_equal(storage_writer_write(w, "wor", 3), 0);
	assert_int_equal(storage_writer_write(w, "ld", 2), 0);
	assert_int_equal(storage_writer_commit(w), 0);
	assert_int_equal(storage_get(f->st, "a", &out), 0);
	assert_int_equal(storage_get_range(f->st, "b", 1, 3, &out), 0);
	assert_string_equal(buf_cstr(&out), "helloorl");
	assert_int_equal(storage_stat(f->st, "b", &info), 0);
	assert_int_equal(info.size, 5);
	assert_int_equal(storage_exists(f->st, "zz", &ex), 0);
	assert_false(ex);
	assert_int_equal(storage_delete(f->st, "a"), 0);
	assert_int_equal(storage_delete(f->st, "a"), PV_ENOTFOUND);	/* inner errors pass through */

	storage_fault_counts(f->st, &c);
	assert_int_equal(c.puts, 2);
	assert_int_equal(c.writes, 2);
	assert_int_equal(c.gets, 2);
	assert_int_equal(c.stats, 2);
	assert_int_equal(c.lists, 0);
	assert_int_equal(c.deletes, 2);
	buf_free(&out);
}

static void
test_fail_nth_put(void **state)
{
	Fixture *f = *state;
	StorageWriter *w = NULL;

	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_put = 2});
	assert_int_equal(storage_put(f->st, "p1", "1", 1, 0), 0);
	assert_pv_error(storage_put(f->st, "p2", "2", 1, 0), PV_EIO, "injected fault: cannot write object 'p2'");
	assert_int_equal(storage_put(f->st, "p3", "3", 1, 0), 0);
	assert_true(inner_has(f, "p1"));
	assert_false(inner_has(f, "p2"));
	assert_true(inner_has(f, "p3"));

	/* A writer that is the failing put fails at commit, and leaves nothing, not even a temp file. */
	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_put = 1, .fail_code = PV_ERETRY});
	assert_int_equal(storage_writer_open(&w, f->st, "streamed", 0), 0);
	assert_int_equal(storage_writer_write(w, "data", 4), 0);
	assert_pv_error(storage_writer_commit(w), PV_ERETRY, "injected fault: cannot write object 'streamed'");
	assert_false(inner_has(f, "streamed"));
	assert_int_equal(test_count_files(f->tmp, true), 0);
	assert_int_equal(test_count_files(f->tmp, false), 2);
}

static void
test_fail_write(void **state)
{
	Fixture *f = *state;
	StorageWriter *w = NULL;

	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_write = 2});
	assert_int_equal(storage_writer_open(&w, f->st, "w", 0), 0);
	assert_int_equal(storage_writer_write(w, "a", 1), 0);
	assert_pv_error(storage_writer_write(w, "b", 1), PV_EIO, "injected fault: cannot write object 'w'");
	storage_writer_abort(w);
	assert_false(inner_has(f, "w"));
	assert_int_equal(test_count_files(f->tmp, false), 0);
}

static void
test_fail_after(void **state)
{
	Fixture *f = *state;
	Buf out = PV_BUF_INIT;

	assert_int_equal(storage_put(f->inner, "g", "x", 1, 0), 0);
	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_get = 2, .fail_after = true, .fail_delete = 1});
	assert_int_equal(storage_get(f->st, "g", &out), 0);
	assert_pv_error(storage_get(f->st, "g", &out), PV_EIO, "injected fault: cannot read object 'g'");
	assert_pv_error(storage_get_range(f->st, "g", 0, 1, &out), PV_EIO, "injected fault: cannot read object 'g'");
	assert_int_equal(storage_get(f->st, "g", &out), PV_EIO);
	assert_string_equal(buf_cstr(&out), "x");
	/* fail_after applies to every kind with an N: the 1st delete and all later ones. */
	assert_pv_error(storage_delete(f->st, "g"), PV_EIO, "injected fault: cannot delete object 'g'");
	assert_int_equal(storage_delete(f->st, "g"), PV_EIO);
	assert_true(inner_has(f, "g"));
	/* Kinds without an N are unaffected. */
	assert_int_equal(storage_put(f->st, "h", "y", 1, 0), 0);
	buf_free(&out);
}

static int
count_cb(const char *key, const StorageInfo *info, void *payload)
{
	(*(int *) payload)++;
	return 0;
}

static void
test_fail_stat_list(void **state)
{
	Fixture *f = *state;
	StorageInfo info;
	bool ex;
	int n = 0;

	assert_int_equal(storage_put(f->inner, "s", "x", 1, 0), 0);
	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_stat = 1});
	assert_pv_error(storage_stat(f->st, "s", &info), PV_EIO, "injected fault: cannot stat object 's'");
	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_stat = 2, .fail_list = 1});
	assert_int_equal(storage_stat(f->st, "s", &info), 0);
	assert_pv_error(storage_exists(f->st, "s", &ex), PV_EIO, "injected fault: cannot stat object 's'");
	assert_int_equal(storage_exists(f->st, "s", &ex), 0);
	assert_true(ex);
	assert_pv_error(storage_list(f->st, "", count_cb, &n), PV_EIO, "injected fault: cannot list objects under ''");
	assert_int_equal(n, 0);
	assert_int_equal(storage_list(f->st, "", count_cb, &n), 0);
	assert_int_equal(n, 1);
}

static void
test_truncate(void **state)
{
	Fixture *f = *state;
	StorageWriter *w = NULL;
	Buf out = PV_BUF_INIT;

	/* The 1st put stores 5 bytes of 10 and still reports success: a lying disk. */
	storage_fault_set(f->st, &(StorageFaultOpts) {.truncate_put = 1, .truncate_to = 5});
	assert_int_equal(storage_put(f->st, "t1", "0123456789", 10, 0), 0);
	assert_int_equal(storage_put(f->st, "t2", "0123456789", 10, 0), 0);
	assert_int_equal(storage_get(f->inner, "t1", &out), 0);
	assert_string_equal(buf_cstr(&out), "01234");
	buf_reset(&out);
	assert_int_equal(storage_get(f->inner, "t2", &out), 0);
	assert_string_equal(buf_cstr(&out), "0123456789");

	/* Same for a writer, the cut falling inside the second write. */
	storage_fault_set(f->st, &(StorageFaultOpts) {.truncate_put = 1, .truncate_to = 6});
	assert_int_equal(storage_writer_open(&w, f->st, "t3", 0), 0);
	assert_int_equal(storage_writer_write(w, "abcd", 4), 0);
	assert_int_equal(storage_writer_write(w, "efgh", 4), 0);
	assert_int_equal(storage_writer_write(w, "ijkl", 4), 0);
	assert_int_equal(storage_writer_commit(w), 0);
	buf_reset(&out);
	assert_int_equal(storage_get(f->inner, "t3", &out), 0);
	assert_string_equal(buf_cstr(&out), "abcdef");
	buf_free(&out);
}

static void
test_flip(void **state)
{
	Fixture *f = *state;
	unsigned char data[100];
	Buf out = PV_BUF_INIT;

	test_fill(data, sizeof(data), 5);
	assert_int_equal(storage_put(f->inner, "rot", data, sizeof(data), 0), 0);

	storage_fault_set(f->st, &(StorageFaultOpts) {.flip_get = 1, .flip_offset = 3});
	buf_append_str(&out, "pre");
	assert_int_equal(storage_get(f->st, "rot", &out), 0);
	assert_int_equal(out.len, 3 + sizeof(data));
	assert_memory_equal(out.data, "pre", 3);
	for (size_t i = 0; i < sizeof(data); i++)
		assert_int_equal(out.data[3 + i], i == 3 ? (unsigned char) ~data[i] : data[i]);
	/* Only the 1st get. */
	buf_reset(&out);
	assert_int_equal(storage_get(f->st, "rot", &out), 0);
	assert_memory_equal(out.data, data, sizeof(data));

	/* In a range the offset counts within the returned bytes, modulo their number. */
	storage_fault_set(f->st, &(StorageFaultOpts) {.flip_get = 1, .flip_offset = 12});
	buf_reset(&out);
	assert_int_equal(storage_get_range(f->st, "rot", 50, 10, &out), 0);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(out.data[i], i == 2 ? (unsigned char) ~data[50 + i] : data[50 + i]);
	buf_free(&out);
}

static void
test_only_prefix(void **state)
{
	Fixture *f = *state;
	StorageFaultCounts c;
	char prefix[] = "data/";

	/* The options are copied: changing the caller's string later has no effect. */
	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_put = 2, .only_prefix = prefix});
	prefix[0] = 'x';
	assert_int_equal(storage_put(f->st, "index/1", "i", 1, 0), 0);
	assert_int_equal(storage_put(f->st, "data/1", "d", 1, 0), 0);
	assert_int_equal(storage_put(f->st, "index/2", "i", 1, 0), 0);
	assert_int_equal(storage_put(f->st, "data/2", "d", 1, 0), PV_EIO);
	assert_int_equal(storage_put(f->st, "index/3", "i", 1, 0), 0);
	storage_fault_counts(f->st, &c);
	assert_int_equal(c.puts, 2);
	assert_false(inner_has(f, "data/2"));
	assert_true(inner_has(f, "index/3"));
}

#define THREADS 4
#define PUTS 50

typedef struct Job
{
	Storage *st;
	int id;
	int failed;
	int eio;
} Job;

static void *
job_main(void *arg)
{
	Job *j = arg;

	for (int i = 0; i < PUTS; i++)
	{
		char *key = pv_asprintf("c/%d/%d", j->id, i);
		int rc = storage_put(j->st, key, key, strlen(key), 0);

		if (rc == PV_EIO)
			j->eio++;
		else if (rc != 0)
			j->failed++;
		pv_free(key);
	}
	return NULL;
}

/* Counting is exact under threads: the 101st put of 200 fails, and only it. */
static void
test_threads(void **state)
{
	Fixture *f = *state;
	pthread_t th[THREADS];
	Job jobs[THREADS];
	StorageFaultCounts c;
	int eio = 0;

	storage_fault_set(f->st, &(StorageFaultOpts) {.fail_put = THREADS * PUTS / 2 + 1});
	for (int i = 0; i < THREADS; i++)
	{
		jobs[i] = (Job) {.st = f->st, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
	{
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].failed, 0);
		eio += jobs[i].eio;
	}
	assert_int_equal(eio, 1);
	storage_fault_counts(f->st, &c);
	assert_int_equal(c.puts, THREADS * PUTS);
	assert_int_equal(test_count_files(f->tmp, false), THREADS * PUTS - 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_passthrough),
		T(test_fail_nth_put),
		T(test_fail_write),
		T(test_fail_after),
		T(test_fail_stat_list),
		T(test_truncate),
		T(test_flip),
		T(test_only_prefix),
		T(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
