/*
 * test_upload.c: the parallel part uploader the object-store drivers share
 * (upload.c), with a fake driver that keeps the parts in memory: parts cut
 * at part_size and numbered from 1, the one-request path for objects that
 * fit in one part, begin called once before the first part, errors of a
 * part reaching the writer, the store's part limit; the read-ahead handle
 * (one fetch per window, exact bytes, ranges past the end refused); and
 * storage_delete_many's one-by-one fallback on the posix driver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/storage.h"
#include "storage/upload.h"
#include "storage_test.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAXPARTS 64

typedef struct Fake
{
	pthread_mutex_t lock;
	int begins;
	int begun_before_first_part;	/* 1 if begin ran before any part */
	unsigned char *parts[MAXPARTS + 1];
	size_t lens[MAXPARTS + 1];
	int fail_part;				/* 0: none */
} Fake;

static int
fake_begin(void *ctx)
{
	Fake *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->begins++;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int
fake_part(void *ctx, int number, const unsigned char *data, size_t len)
{
	Fake *f = ctx;

	if (number == f->fail_part)
		return pv_error_set(PV_EAUTH, "cannot write object 'k' (part %d): HTTP 403", number);
	pthread_mutex_lock(&f->lock);
	if (f->begins == 1 && number == 1)
		f->begun_before_first_part = 1;
	assert_true(number >= 1 && number <= MAXPARTS);
	assert_null(f->parts[number]);
	f->parts[number] = pv_malloc(len ? len : 1);
	memcpy(f->parts[number], data, len);
	f->lens[number] = len;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static Upload *
fake_upload(Fake *f, size_t part_size, int max_parts)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	return upload_new("k", &(UploadOpts) {
		.part_size = part_size, .jobs = 2, .max_parts = max_parts, .unit = "parts",
		.size_setting = "s3-part-size", .begin = fake_begin, .part = fake_part, .ctx = f});
}

static void
fake_free(Fake *f)
{
	for (int i = 0; i <= MAXPARTS; i++)
		pv_free(f->parts[i]);
	pthread_mutex_destroy(&f->lock);
}

/* Write data in pieces of step bytes. */
static int
write_steps(Upload *u, const unsigned char *data, size_t len, size_t step)
{
	for (size_t off = 0; off < len; off += step)
	{
		int rc = upload_write(u, data + off, len - off < step ? len - off : step);

		if (rc < 0)
			return rc;
	}
	return 0;
}

static void
test_small_objects_send_no_part(void **state)
{
	static const size_t sizes[] = {0, 1, 1000, 4096};	/* 4096 = exactly one part */
	unsigned char data[4096];

	test_fill(data, sizeof(data), 1);
	for (size_t i = 0; i < PV_ARRAY_LEN(sizes); i++)
	{
		Fake f;
		Upload *u = fake_upload(&f, 4096, 10);
		const unsigned char *got;
		size_t len;
		int parts = -1;

		assert_int_equal(write_steps(u, data, sizes[i], 777), 0);
		assert_int_equal(upload_finish(u, &parts), 0);
		assert_int_equal(parts, 0);
		got = upload_data(u, &len);
		assert_int_equal(len, sizes[i]);
		assert_memory_equal(got, data, sizes[i] ? sizes[i] : 0);
		assert_int_equal(upload_total(u), sizes[i]);
		assert_int_equal(f.begins, 0);
		upload_free(u);
		fake_free(&f);
	}
}

static void
test_parts_cut_and_numbered(void **state)
{
	size_t size = 4096 * 5 + 123;
	unsigned char *data = pv_malloc(size);
	Buf joined = PV_BUF_INIT;
	Fake f;
	Upload *u = fake_upload(&f, 4096, 10);
	int parts = 0;

	test_fill(data, size, 2);
	assert_int_equal(write_steps(u, data, size, 1000), 0);
	assert_int_equal(upload_finish(u, &parts), 0);
	assert_int_equal(parts, 6);
	assert_int_equal(f.begins, 1);
	assert_int_equal(f.begun_before_first_part, 1);
	for (int i = 1; i <= parts; i++)
	{
		assert_int_equal(f.lens[i], i < parts ? 4096 : 123);
		buf_append(&joined, f.parts[i], f.lens[i]);
	}
	assert_int_equal(joined.len, size);
	assert_memory_equal(joined.data, data, size);
	assert_int_equal(upload_total(u), size);
	upload_free(u);
	fake_free(&f);
	buf_free(&joined);
	pv_free(data);
}

static void
test_failed_part_fails_the_writer(void **state)
{
	size_t size = 4096 * 8;
	unsigned char *data = pv_malloc(size);
	Fake f;
	Upload *u = fake_upload(&f, 4096, 20);
	int parts = -1, rc;

	test_fill(data, size, 3);
	f.fail_part = 2;
	rc = write_steps(u, data, size, 4096);
	if (rc == 0)				/* the failure may surface at the finish instead */
		rc = upload_finish(u, &parts);
	assert_int_equal(rc, PV_EAUTH);
	assert_string_equal(pv_error_msg(), "cannot write object 'k' (part 2): HTTP 403");
	upload_free(u);
	fake_free(&f);

	/* a write after a failed write is refused */
	u = fake_upload(&f, 4096, 1);
	assert_int_equal(write_steps(u, data, size, 4096), PV_ERROR);
	assert_string_equal(pv_error_msg(), "cannot write object 'k': more than 1 parts of 4096 bytes; raise s3-part-size");
	assert_int_equal(upload_write(u, data, 1), PV_EIO);
	assert_string_equal(pv_error_msg(), "cannot write object 'k': an earlier write failed");
	assert_int_equal(upload_finish(u, &parts), PV_EIO);
	upload_free(u);
	fake_free(&f);
	pv_free(data);
}

/* ---- read-ahead ---- */

typedef struct FakeObject
{
	const unsigned char *data;
	uint64_t size;
	int gets;
} FakeObject;

static int
fake_get_range(void *driver, const char *key, uint64_t offset, uint64_t len, Buf *out)
{
	FakeObject *o = driver;

	__atomic_add_fetch(&o->gets, 1, __ATOMIC_RELAXED);
	assert_string_equal(key, "data/pack");
	assert_true(offset + len <= o->size);
	buf_append(out, o->data + offset, (size_t) len);
	return 0;
}

static void
test_readahead_windows(void **state)
{
	size_t size = 10000;
	unsigned char *data = pv_malloc(size);
	FakeObject o = {.data = data, .size = size};
	void *h;
	Buf got = PV_BUF_INIT;

	test_fill(data, size, 4);
	h = readahead_open(&o, "data/pack", size, 4096, fake_get_range);
	/* chunks of 100 bytes in order: one fetch per 4096-byte window */
	for (uint64_t off = 0; off < size; off += 100)
	{
		uint64_t n = size - off < 100 ? size - off : 100;

		buf_reset(&got);
		assert_int_equal(readahead_range(h, off, n, &got), 0);
		assert_int_equal(got.len, n);
		assert_memory_equal(got.data, data + off, n);
	}
	assert_int_equal(o.gets, 3);	/* windows 0-4095, 4096-8191, 8192-9999 */
	/* a range bigger than the window is fetched whole */
	buf_reset(&got);
	assert_int_equal(readahead_range(h, 10, 9000, &got), 0);
	assert_memory_equal(got.data, data + 10, 9000);
	assert_int_equal(o.gets, 4);
	/* empty ranges and ranges past the end cost no request */
	assert_int_equal(readahead_range(h, size, 0, &got), 0);
	assert_int_equal(readahead_range(h, 9990, 11, &got), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "object 'data/pack' has 10000 bytes, too few for 11 bytes at offset 9990");
	assert_int_equal(o.gets, 4);
	readahead_close(h);
	buf_free(&got);
	pv_free(data);
}

typedef struct RaThread
{
	void *h;
	const unsigned char *data;
	size_t size;
	int bad;
} RaThread;

static void *
ra_thread(void *arg)
{
	RaThread *t = arg;
	Buf got = PV_BUF_INIT;

	for (uint64_t off = 0; off < t->size; off += 300)
	{
		uint64_t n = t->size - off < 300 ? t->size - off : 300;

		buf_reset(&got);
		if (readahead_range(t->h, off, n, &got) != 0 || got.len != n || memcmp(got.data, t->data + off, n) != 0)
			t->bad++;
	}
	buf_free(&got);
	return NULL;
}

/* Threads reading the same chunks at once: each window is fetched once. */
static void
test_readahead_shared_by_threads(void **state)
{
	size_t size = 3 * 65536 + 5;
	unsigned char *data = pv_malloc(size);
	FakeObject o = {.data = data, .size = size};
	pthread_t th[4];
	RaThread t[4];
	void *h;

	test_fill(data, size, 5);
	h = readahead_open(&o, "data/pack", size, 65536, fake_get_range);

	for (int i = 0; i < 4; i++)
	{
		t[i] = (RaThread) {.h = h, .data = data, .size = size};
		assert_int_equal(pthread_create(&th[i], NULL, ra_thread, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++)
	{
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	assert_int_equal(o.gets, 4);	/* windows 0 to 3, once each */
	readahead_close(h);
	pv_free(data);
}

/* ---- storage_delete_many without a batch request (posix) ---- */

static void
test_delete_many_fallback(void **state)
{
	char *dir = test_tmpdir_new();
	Storage *st = NULL;
	const char *keys[] = {"a/1", "a/2", "gone/x", "b"};
	const char *bad[] = {"a/3", "a//b"};
	bool there = true;

	assert_int_equal(storage_open(&st, dir), 0);
	assert_int_equal(storage_create(st), 0);
	for (int i = 1; i <= 3; i++)
	{
		char key[8];

		snprintf(key, sizeof(key), "a/%d", i);
		assert_int_equal(storage_put(st, key, "x", 1, 0), 0);
	}
	assert_int_equal(storage_put(st, "b", "y", 1, 0), 0);
	/* a bad key fails before anything is deleted */
	assert_int_equal(storage_delete_many(st, bad, 2), PV_EUSAGE);
	assert_int_equal(storage_exists(st, "a/3", &there), 0);
	assert_true(there);
	/* absent keys ("gone/x") are fine */
	assert_int_equal(storage_delete_many(st, keys, PV_ARRAY_LEN(keys)), 0);
	for (size_t i = 0; i < PV_ARRAY_LEN(keys); i++)
	{
		assert_int_equal(storage_exists(st, keys[i], &there), 0);
		assert_false(there);
	}
	assert_int_equal(storage_exists(st, "a/3", &there), 0);
	assert_true(there);
	assert_int_equal(storage_delete_many(st, keys, 0), 0);
	storage_free(st);
	test_tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_objects_send_no_part),
		cmocka_unit_test(test_parts_cut_and_numbered),
		cmocka_unit_test(test_failed_part_fails_the_writer),
		cmocka_unit_test(test_readahead_windows),
		cmocka_unit_test(test_readahead_shared_by_threads),
		cmocka_unit_test(test_delete_many_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
