/*
 * test_posix.c: the storage API on the posix driver, against real temp
 * directories: round trips, ranges, stat, list, delete, create-only puts,
 * aborted and killed writers, bad keys, permissions and concurrent use.
 *
 * Each test gets a fresh "<tmp>/repo" directory opened as a Storage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/fault.h"
#include "storage/storage.h"
#include "storage_test.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct Fixture
{
	char *tmp;					/* scratch directory, removed afterwards */
	char *root;					/* tmp/repo: the storage root */
	Storage *st;
} Fixture;

static int
fixture_setup(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->tmp = test_tmpdir_new();
	f->root = pv_fs_path_join(f->tmp, "repo");
	assert_int_equal(mkdir(f->root, 0700), 0);
	assert_int_equal(storage_open(&f->st, f->root), 0);
	*state = f;
	return 0;
}

static int
fixture_teardown(void **state)
{
	Fixture *f = *state;

	storage_free(f->st);
	test_tmpdir_free(f->tmp);
	pv_free(f->root);
	pv_free(f);
	return 0;
}

/* put, then get/stat/exists agree with what was put. */
static void
check_roundtrip(Storage *st, const char *key, const void *data, size_t len)
{
	Buf out = PV_BUF_INIT;
	StorageInfo info;
	bool ex = false;

	assert_int_equal(storage_put(st, key, data, len, 0), 0);
	assert_int_equal(storage_get(st, key, &out), 0);
	assert_int_equal(out.len, len);
	if (len > 0)
		assert_memory_equal(out.data, data, len);
	assert_int_equal(storage_stat(st, key, &info), 0);
	assert_int_equal(info.size, len);
	assert_true(info.mtime > time(NULL) - 3600 && info.mtime <= time(NULL) + 1);
	assert_int_equal(storage_exists(st, key, &ex), 0);
	assert_true(ex);
	buf_free(&out);
}

static void
test_roundtrip_empty(void **state)
{
	Fixture *f = *state;

	check_roundtrip(f->st, "empty", NULL, 0);
	check_roundtrip(f->st, "nested/deeper/empty", "", 0);
}

static void
test_roundtrip_one_byte(void **state)
{
	Fixture *f = *state;

	check_roundtrip(f->st, "one", "x", 1);
	check_roundtrip(f->st, "zero-byte", "\0", 1);
}

static void
test_get_appends(void **state)
{
	Fixture *f = *state;
	Buf out = PV_BUF_INIT;

	assert_int_equal(storage_put(f->st, "k", "world", 5, 0), 0);
	buf_append_str(&out, "hello ");
	assert_int_equal(storage_get(f->st, "k", &out), 0);
	assert_string_equal(buf_cstr(&out), "hello world");
	assert_int_equal(storage_get_range(f->st, "k", 1, 3, &out), 0);
	assert_string_equal(buf_cstr(&out), "hello worldorl");
	buf_free(&out);
}

#define LARGE_SIZE (50u * 1024 * 1024)

/* 50 MiB through a writer in odd-sized pieces (1 byte up to 1 MiB + 3), read back whole and in ranges. */
static void
test_large_streamed(void **state)
{
	static const size_t sizes[] = {1, 7, 4093, 65537, 262143, 262144, 262145, 1048579, 3, 131071};
	Fixture *f = *state;
	unsigned char *data = pv_malloc(LARGE_SIZE);
	StorageWriter *w = NULL;
	Buf out = PV_BUF_INIT;
	StorageInfo info;
	size_t off = 0;

	test_fill(data, LARGE_SIZE, 42);
	assert_int_equal(storage_writer_open(&w, f->st, "data/large", 0), 0);
	for (size_t i = 0; off < LARGE_SIZE; i++)
	{
		size_t n = sizes[i % PV_ARRAY_LEN(sizes)];

		if (n > LARGE_SIZE - off)
			n = LARGE_SIZE - off;
		assert_int_equal(storage_writer_write(w, data + off, n), 0);
		if (i == 5)
			assert_int_equal(storage_writer_write(w, data, 0), 0);	/* empty writes are fine */
		off += n;
	}
	/* Nothing visible before commit. */
	assert_int_equal(storage_stat(f->st, "data/large", &info), PV_ENOTFOUND);
	assert_int_equal(storage_writer_commit(w), 0);

	assert_int_equal(storage_stat(f->st, "data/large", &info), 0);
	assert_int_equal(info.size, LARGE_SIZE);
	assert_int_equal(storage_get(f->st, "data/large", &out), 0);
	assert_int_equal(out.len, LARGE_SIZE);
	assert_true(memcmp(out.data, data, LARGE_SIZE) == 0);

	/* Ranges: start, across the writer's buffer boundary, middle, end. */
	{
		static const uint64_t ranges[][2] = {
			{0, 4096}, {262140, 10}, {LARGE_SIZE / 2 - 1, 1048577}, {LARGE_SIZE - 1, 1}, {LARGE_SIZE - 100000, 100000},
		};

		for (size_t i = 0; i < PV_ARRAY_LEN(ranges); i++)
		{
			buf_reset(&out);
			assert_int_equal(storage_get_range(f->st, "data/large", ranges[i][0], ranges[i][1], &out), 0);
			assert_int_equal(out.len, ranges[i][1]);
			assert_memory_equal(out.data, data + ranges[i][0], ranges[i][1]);
		}
	}
	assert_int_equal(test_count_files(f->root, true), 0);
	buf_free(&out);
	pv_free(data);
}

/* Many tiny writes go through the writer's buffer. */
static void
test_writer_small_writes(void **state)
{
	Fixture *f = *state;
	size_t total = 700 * 1024;
	unsigned char *data = pv_malloc(total);
	StorageWriter *w = NULL;
	Buf out = PV_BUF_INIT;
	size_t off = 0;

	test_fill(data, total, 7);
	assert_int_equal(storage_writer_open(&w, f->st, "small", 0), 0);
	for (size_t i = 0; off < total; i++)
	{
		size_t n = 1 + i % 13;

		if (n > total - off)
			n = total - off;
		assert_int_equal(storage_writer_write(w, data + off, n), 0);
		off += n;
	}
	assert_int_equal(storage_writer_commit(w), 0);
	assert_int_equal(storage_get(f->st, "small", &out), 0);
	assert_int_equal(out.len, total);
	assert_memory_equal(out.data, data, total);
	buf_free(&out);
	pv_free(data);
}

static void
test_get_range(void **state)
{
	Fixture *f = *state;
	unsigned char data[1000];
	Buf out = PV_BUF_INIT;

	test_fill(data, sizeof(data), 3);
	assert_int_equal(storage_put(f->st, "r/obj", data, sizeof(data), 0), 0);

	assert_int_equal(storage_get_range(f->st, "r/obj", 0, 10, &out), 0);
	assert_memory_equal(out.data, data, 10);
	buf_reset(&out);
	assert_int_equal(storage_get_range(f->st, "r/obj", 500, 100, &out), 0);
	assert_int_equal(out.len, 100);
	assert_memory_equal(out.data, data + 500, 100);
	buf_reset(&out);
	assert_int_equal(storage_get_range(f->st, "r/obj", 990, 10, &out), 0);
	assert_memory_equal(out.data, data + 990, 10);
	buf_reset(&out);
	assert_int_equal(storage_get_range(f->st, "r/obj", 1000, 0, &out), 0);
	assert_int_equal(out.len, 0);

	/* Past the end: corrupt (an index pointing past a pack's end), and out untouched. */
	buf_append_str(&out, "keep");
	assert_pv_error(storage_get_range(f->st, "r/obj", 995, 10, &out), PV_ECORRUPT,
					"object 'r/obj' has 1000 bytes, too few for 10 bytes at offset 995");
	assert_string_equal(buf_cstr(&out), "keep");
	assert_pv_error(storage_get_range(f->st, "r/obj", 2000, 0, &out), PV_ECORRUPT,
					"object 'r/obj' has 1000 bytes, too few for 0 bytes at offset 2000");
	assert_int_equal(storage_get_range(f->st, "r/obj", UINT64_MAX, 2, &out), PV_EUSAGE);
	assert_string_equal(buf_cstr(&out), "keep");

	assert_pv_error(storage_get_range(f->st, "r/none", 0, 1, &out), PV_ENOTFOUND, "object 'r/none' not found");
	buf_free(&out);
}

/*
 * storage_reader_*: ranged reads through one open descriptor.  The handle
 * keeps reading the object it opened (renamed over or unlinked since), and
 * an object truncated under it fails with PV_ECORRUPT, never short data.
 */
static void
test_reader_handle(void **state)
{
	Fixture *f = *state;
	unsigned char data[1000], other[1000];
	Buf out = PV_BUF_INIT;
	StorageReader *r = NULL;
	char *path = pv_fs_path_join(f->root, "r/obj");

	test_fill(data, sizeof(data), 3);
	test_fill(other, sizeof(other), 4);
	assert_int_equal(storage_put(f->st, "r/obj", data, sizeof(data), 0), 0);
	assert_pv_error(storage_reader_open(&r, f->st, "r/none"), PV_ENOTFOUND, "object 'r/none' not found");
	assert_int_equal(storage_reader_open(&r, f->st, "r/obj"), 0);
	for (int i = 0; i < 10; i++)
	{
		assert_int_equal(storage_reader_range(r, (uint64_t) i * 100, 100, &out), 0);
		assert_int_equal(out.len, (size_t) (i + 1) * 100);
	}
	assert_memory_equal(out.data, data, sizeof(data));
	buf_reset(&out);
	assert_int_equal(storage_reader_range(r, 1000, 0, &out), 0);
	assert_int_equal(out.len, 0);

	/* past the end: as storage_get_range, and out untouched */
	buf_append_str(&out, "keep");
	assert_pv_error(storage_reader_range(r, 995, 10, &out), PV_ECORRUPT,
					"object 'r/obj' has 1000 bytes, too few for 10 bytes at offset 995");
	assert_int_equal(storage_reader_range(r, UINT64_MAX, 2, &out), PV_EUSAGE);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_reset(&out);

	/* replaced by a rename: the handle still reads the object it opened */
	assert_int_equal(storage_put(f->st, "r/obj", other, sizeof(other), 0), 0);
	assert_int_equal(storage_reader_range(r, 200, 300, &out), 0);
	assert_memory_equal(out.data, data + 200, 300);
	storage_reader_close(r);
	buf_reset(&out);

	/* truncated in place under an open handle: a clear error, not short or stale data */
	assert_int_equal(storage_reader_open(&r, f->st, "r/obj"), 0);
	assert_int_equal(truncate(path, 600), 0);
	buf_append_str(&out, "keep");
	assert_pv_error(storage_reader_range(r, 500, 200, &out), PV_ECORRUPT,
					"object 'r/obj' is shorter than its size 1000: end of file at 600");
	assert_string_equal(buf_cstr(&out), "keep");
	buf_reset(&out);
	assert_int_equal(storage_reader_range(r, 400, 200, &out), 0);
	assert_memory_equal(out.data, other + 400, 200);
	buf_reset(&out);

	/* unlinked: still readable through the open descriptor */
	assert_int_equal(storage_delete(f->st, "r/obj"), 0);
	assert_int_equal(storage_reader_range(r, 0, 100, &out), 0);
	assert_memory_equal(out.data, other, 100);
	storage_reader_close(r);
	storage_reader_close(NULL);
	assert_int_equal(storage_reader_open(&r, f->st, "../x"), PV_EUSAGE);
	buf_free(&out);
	pv_free(path);
}

/* A driver without read handles (the fault wrapper): every range is a get_range. */
static void
test_reader_fallback(void **state)
{
	Fixture *f = *state;
	unsigned char data[1000];
	Buf out = PV_BUF_INIT;
	StorageReader *r = NULL;
	Storage *fault = NULL;
	StorageFaultCounts counts;

	test_fill(data, sizeof(data), 5);
	assert_int_equal(storage_put(f->st, "r/obj", data, sizeof(data), 0), 0);
	assert_int_equal(storage_fault_new(&fault, f->st, &(StorageFaultOpts) {.fail_get = 3}), 0);
	assert_int_equal(storage_reader_open(&r, fault, "r/obj"), 0);
	assert_int_equal(storage_reader_range(r, 0, 500, &out), 0);
	assert_int_equal(storage_reader_range(r, 500, 500, &out), 0);
	assert_memory_equal(out.data, data, sizeof(data));
	storage_fault_counts(fault, &counts);
	assert_int_equal(counts.gets, 2);
	buf_reset(&out);
	assert_int_equal(storage_reader_range(r, 0, 10, &out), PV_EIO);
	assert_int_equal(out.len, 0);
	assert_pv_error(storage_reader_range(r, 995, 10, &out), PV_ECORRUPT,
					"object 'r/obj' has 1000 bytes, too few for 10 bytes at offset 995");
	storage_reader_close(r);
	/* the fallback finds a missing object only when it reads */
	assert_int_equal(storage_reader_open(&r, fault, "r/none"), 0);
	assert_pv_error(storage_reader_range(r, 0, 1, &out), PV_ENOTFOUND, "object 'r/none' not found");
	storage_reader_close(r);
	storage_free(fault);
	buf_free(&out);
}

static void check_list(Storage *st, const char *prefix, const char *expect);

static void
test_stat_and_missing(void **state)
{
	Fixture *f = *state;
	StorageInfo info = {99, 99};
	Buf out = PV_BUF_INIT;
	bool ex = true;

	assert_pv_error(storage_stat(f->st, "nope", &info), PV_ENOTFOUND, "object 'nope' not found");
	assert_pv_error(storage_get(f->st, "nope/deeper", &out), PV_ENOTFOUND, "object 'nope/deeper' not found");
	assert_int_equal(storage_exists(f->st, "nope", &ex), 0);
	assert_false(ex);

	/* A directory is not an object, and a path through a file finds nothing. */
	assert_int_equal(storage_put(f->st, "dir/file", "abc", 3, 0), 0);
	assert_pv_error(storage_stat(f->st, "dir", &info), PV_ENOTFOUND, "object 'dir' not found");
	assert_pv_error(storage_get(f->st, "dir", &out), PV_ENOTFOUND, "object 'dir' not found");
	assert_pv_error(storage_stat(f->st, "dir/file/x", &info), PV_ENOTFOUND, "object 'dir/file/x' not found");
	assert_int_equal(storage_exists(f->st, "dir", &ex), 0);
	assert_false(ex);

	/* Nor is a FIFO, and reading one must not hang. */
	{
		char *fifo = pv_fs_path_join(f->root, "dir/fifo");

		assert_int_equal(mkfifo(fifo, 0600), 0);
		assert_pv_error(storage_get(f->st, "dir/fifo", &out), PV_ENOTFOUND, "object 'dir/fifo' not found");
		assert_pv_error(storage_stat(f->st, "dir/fifo", &info), PV_ENOTFOUND, "object 'dir/fifo' not found");
		check_list(f->st, "dir/", "dir/file");
		pv_free(fifo);
	}
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/* ---- list ---- */

typedef struct Listed
{
	char keys[32][64];
	uint64_t sizes[32];
	size_t n;
	int stop_after;				/* return -42 after this many calls (0 = never) */
} Listed;

static int
collect(const char *key, const StorageInfo *info, void *payload)
{
	Listed *l = payload;

	assert_true(l->n < 32);
	snprintf(l->keys[l->n], sizeof(l->keys[l->n]), "%s", key);
	l->sizes[l->n] = info->size;
	l->n++;
	if (l->stop_after > 0 && (int) l->n >= l->stop_after)
		return pv_error_set(-42, "stop");
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* List prefix and compare with the expected keys, given as "k1 k2 k3" sorted. */
static void
check_list(Storage *st, const char *prefix, const char *expect)
{
	Listed l = {0};
	Buf got = PV_BUF_INIT;

	assert_int_equal(storage_list(st, prefix, collect, &l), 0);
	qsort(l.keys, l.n, sizeof(l.keys[0]), cmp_str);
	for (size_t i = 0; i < l.n; i++)
		buf_printf(&got, "%s%s", i ? " " : "", l.keys[i]);
	if (strcmp(buf_cstr(&got), expect) != 0)
		fail_msg("list '%s': got \"%s\", wanted \"%s\"", prefix, buf_cstr(&got), expect);
	buf_free(&got);
}

static void
test_list(void **state)
{
	static const char *keys[] = {"a", "b/c", "b/d/e", "bc", "data/ab/1", "data/ab/2", "data/ac/3", ".hidden"};
	Fixture *f = *state;
	StorageWriter *w = NULL;
	Listed l = {0};
	char *stray;
	int fd;

	for (size_t i = 0; i < PV_ARRAY_LEN(keys); i++)
		assert_int_equal(storage_put(f->st, keys[i], keys[i], strlen(keys[i]), 0), 0);

	/* Temp files, from a writer in progress and from a crash, are never listed. */
	assert_int_equal(storage_writer_open(&w, f->st, "b/in-progress", 0), 0);
	assert_int_equal(storage_writer_write(w, "xx", 2), 0);
	stray = pv_fs_path_join(f->root, "data/ab/3.tmp.0123456789abcdef");
	assert_true((fd = open(stray, O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	assert_int_equal(test_count_files(f->root, true), 2);

	check_list(f->st, "", ".hidden a b/c b/d/e bc data/ab/1 data/ab/2 data/ac/3");
	check_list(f->st, "b", "b/c b/d/e bc");
	check_list(f->st, "b/", "b/c b/d/e");
	check_list(f->st, "b/d/", "b/d/e");
	check_list(f->st, "data/a", "data/ab/1 data/ab/2 data/ac/3");
	check_list(f->st, "data/ab", "data/ab/1 data/ab/2");
	check_list(f->st, "data/ab/1", "data/ab/1");
	check_list(f->st, "zzz", "");
	check_list(f->st, "zzz/", "");
	check_list(f->st, "a/", "");		/* "a" is a file, not a directory */

	/* Sizes are reported. */
	assert_int_equal(storage_list(f->st, "data/ac", collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.sizes[0], strlen("data/ac/3"));

	/* The callback's code stops the walk and is returned. */
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	assert_int_equal(storage_list(f->st, "", collect, &l), -42);
	assert_int_equal(l.n, 2);

	/* Bad prefixes. */
	assert_pv_error(storage_list(f->st, "/data", collect, &l), PV_EUSAGE, "invalid prefix '/data': it starts with '/'");
	assert_pv_error(storage_list(f->st, "data//ab", collect, &l), PV_EUSAGE,
					"invalid prefix 'data//ab': it has an empty segment");
	assert_pv_error(storage_list(f->st, "../", collect, &l), PV_EUSAGE, "invalid prefix '../': it contains '..'");

	storage_writer_abort(w);
	assert_int_equal(test_count_files(f->root, true), 1);	/* only the crash leftover */
	pv_free(stray);
}

static void
test_list_missing_root(void **state)
{
	Fixture *f = *state;
	Storage *st = NULL;
	char *gone = pv_fs_path_join(f->tmp, "never-made");
	Listed l = {0};

	assert_int_equal(storage_open(&st, gone), 0);
	assert_int_equal(storage_list(st, "", collect, &l), 0);
	assert_int_equal(l.n, 0);
	storage_free(st);
	pv_free(gone);
}

/* ---- delete, overwrite ---- */

static void
test_delete(void **state)
{
	Fixture *f = *state;
	Buf out = PV_BUF_INIT;

	assert_int_equal(storage_put(f->st, "x/y", "1", 1, 0), 0);
	assert_int_equal(storage_delete(f->st, "x/y"), 0);
	assert_pv_error(storage_get(f->st, "x/y", &out), PV_ENOTFOUND, "object 'x/y' not found");
	assert_pv_error(storage_delete(f->st, "x/y"), PV_ENOTFOUND, "object 'x/y' not found");
	assert_pv_error(storage_delete(f->st, "x"), PV_ENOTFOUND, "object 'x' not found");	/* a directory */
	assert_pv_error(storage_delete(f->st, "never/was"), PV_ENOTFOUND, "object 'never/was' not found");
	/* The key can be written again. */
	assert_int_equal(storage_put(f->st, "x/y", "2", 1, 0), 0);
	assert_int_equal(storage_get(f->st, "x/y", &out), 0);
	assert_string_equal(buf_cstr(&out), "2");
	buf_free(&out);
}

static void
test_overwrite(void **state)
{
	Fixture *f = *state;
	StorageWriter *w = NULL;
	Buf out = PV_BUF_INIT;

	assert_int_equal(storage_put(f->st, "k", "first", 5, 0), 0);
	assert_int_equal(storage_put(f->st, "k", "second!", 7, 0), 0);
	assert_int_equal(storage_get(f->st, "k", &out), 0);
	assert_string_equal(buf_cstr(&out), "second!");
	assert_int_equal(storage_writer_open(&w, f->st, "k", 0), 0);
	assert_int_equal(storage_writer_write(w, "3", 1), 0);
	assert_int_equal(storage_writer_commit(w), 0);
	buf_reset(&out);
	assert_int_equal(storage_get(f->st, "k", &out), 0);
	assert_string_equal(buf_cstr(&out), "3");
	assert_int_equal(test_count_files(f->root, false), 1);
	buf_free(&out);
}

static void
test_no_overwrite(void **state)
{
	Fixture *f = *state;
	StorageWriter *w = NULL;
	Buf out = PV_BUF_INIT;

	assert_int_equal(storage_put(f->st, "locks/l", "old", 3, STORAGE_PUT_NO_OVERWRITE), 0);
	assert_pv_error(storage_put(f->st, "locks/l", "new", 3, STORAGE_PUT_NO_OVERWRITE), PV_EEXISTS,
					"object 'locks/l' already exists");

	assert_int_equal(storage_writer_open(&w, f->st, "locks/l", STORAGE_PUT_NO_OVERWRITE), 0);
	assert_int_equal(storage_writer_write(w, "newer", 5), 0);
	assert_pv_error(storage_writer_commit(w), PV_EEXISTS, "object 'locks/l' already exists");

	assert_int_equal(storage_get(f->st, "locks/l", &out), 0);
	assert_string_equal(buf_cstr(&out), "old");
	assert_int_equal(test_count_files(f->root, false), 1);	/* no temp files left */

	/* After a delete the key is free again. */
	assert_int_equal(storage_delete(f->st, "locks/l"), 0);
	assert_int_equal(storage_put(f->st, "locks/l", "again", 5, STORAGE_PUT_NO_OVERWRITE), 0);
	buf_reset(&out);
	assert_int_equal(storage_get(f->st, "locks/l", &out), 0);
	assert_string_equal(buf_cstr(&out), "again");
	buf_free(&out);
}

/* ---- threads ---- */

#define RACERS 8

typedef struct Racer
{
	Storage *st;
	pthread_barrier_t *barrier;
	int id;
	int rc;
} Racer;

static void *
racer_main(void *arg)
{
	Racer *r = arg;
	char body[32];

	snprintf(body, sizeof(body), "racer %d", r->id);
	pthread_barrier_wait(r->barrier);
	if (r->id % 2 == 0)
		r->rc = storage_put(r->st, "lock", body, strlen(body), STORAGE_PUT_NO_OVERWRITE);
	else
	{
		StorageWriter *w = NULL;

		r->rc = storage_writer_open(&w, r->st, "lock", STORAGE_PUT_NO_OVERWRITE);
		if (r->rc == 0)
			r->rc = storage_writer_write(w, body, strlen(body));
		if (r->rc == 0)
			r->rc = storage_writer_commit(w);
		else
			storage_writer_abort(w);
	}
	return NULL;
}

/* Several threads create the same key at once: exactly one wins, the others see PV_EEXISTS. */
static void
test_no_overwrite_race(void **state)
{
	Fixture *f = *state;
	pthread_barrier_t barrier;
	pthread_t th[RACERS];
	Racer r[RACERS];
	Buf out = PV_BUF_INIT;
	int winner = -1;
	char body[32];

	for (int round = 0; round < 5; round++)
	{
		pthread_barrier_init(&barrier, NULL, RACERS);
		for (int i = 0; i < RACERS; i++)
		{
			r[i] = (Racer) {.st = f->st, .barrier = &barrier, .id = i};
			assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
		}
		winner = -1;
		for (int i = 0; i < RACERS; i++)
		{
			pthread_join(th[i], NULL);
			if (r[i].rc == 0)
			{
				assert_int_equal(winner, -1);
				winner = i;
			}
			else
				assert_int_equal(r[i].rc, PV_EEXISTS);
		}
		pthread_barrier_destroy(&barrier);
		assert_true(winner >= 0);
		snprintf(body, sizeof(body), "racer %d", winner);
		buf_reset(&out);
		assert_int_equal(storage_get(f->st, "lock", &out), 0);
		assert_string_equal(buf_cstr(&out), body);
		assert_int_equal(test_count_files(f->root, false), 1);
		assert_int_equal(storage_delete(f->st, "lock"), 0);
	}
	buf_free(&out);
}

#define WRITERS 4
#define WRITER_OBJECTS 40

typedef struct WriterJob
{
	Storage *st;
	int id;
	int failures;				/* checked in the main thread: cmocka asserts are not thread-safe */
	PvErrorSave err;
} WriterJob;

static void
writer_job_fail(WriterJob *j)
{
	if (j->failures++ == 0)
		pv_error_save(&j->err);
}

static void *
writer_job_main(void *arg)
{
	WriterJob *j = arg;
	unsigned char data[20000];
	Buf out = PV_BUF_INIT;

	for (int i = 0; i < WRITER_OBJECTS; i++)
	{
		/* Threads share directories, so they also race to create them. */
		char *key = pv_asprintf("t/%d/%02d/obj-%d-%d", i % 3, i % 5, j->id, i);
		size_t len = (size_t) (i * 487 + j->id) % sizeof(data);

		test_fill(data, len, (uint64_t) (j->id * 1000 + i));
		if (i % 2 == 0)
		{
			if (storage_put(j->st, key, data, len, STORAGE_PUT_NO_OVERWRITE) < 0)
				writer_job_fail(j);
		}
		else
		{
			StorageWriter *w = NULL;

			if (storage_writer_open(&w, j->st, key, 0) < 0 ||
				storage_writer_write(w, data, len / 3) < 0 ||
				storage_writer_write(w, data + len / 3, len - len / 3) < 0 ||
				storage_writer_commit(w) < 0)
				writer_job_fail(j);
		}
		buf_reset(&out);
		if (storage_get(j->st, key, &out) < 0 || out.len != len || (len > 0 && memcmp(out.data, data, len) != 0))
			writer_job_fail(j);
		pv_free(key);
	}
	buf_free(&out);
	return NULL;
}

static int
count_cb(const char *key, const StorageInfo *info, void *payload)
{
	(*(size_t *) payload)++;
	return 0;
}

static void
test_concurrent_writers(void **state)
{
	Fixture *f = *state;
	pthread_t th[WRITERS];
	WriterJob jobs[WRITERS];
	size_t n = 0;

	for (int i = 0; i < WRITERS; i++)
	{
		jobs[i] = (WriterJob) {.st = f->st, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, writer_job_main, &jobs[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++)
	{
		pthread_join(th[i], NULL);
		if (jobs[i].failures > 0)
			fail_msg("thread %d: %d failures, first: %s", i, jobs[i].failures, jobs[i].err.msg);
	}
	assert_int_equal(storage_list(f->st, "t/", count_cb, &n), 0);
	assert_int_equal(n, WRITERS * WRITER_OBJECTS);
	assert_int_equal(test_count_files(f->root, true), 0);
}

/* ---- aborts and crashes ---- */

static void
test_abort(void **state)
{
	Fixture *f = *state;
	StorageWriter *w = NULL;
	unsigned char data[300000];
	StorageInfo info;

	test_fill(data, sizeof(data), 1);
	assert_int_equal(storage_writer_open(&w, f->st, "aborted/obj", 0), 0);
	assert_int_equal(storage_writer_write(w, data, 100), 0);
	assert_int_equal(storage_writer_write(w, data, sizeof(data)), 0);
	assert_int_equal(test_count_files(f->root, true), 1);	/* the temp file exists meanwhile */
	storage_writer_abort(w);
	storage_writer_abort(NULL);

	assert_pv_error(storage_stat(f->st, "aborted/obj", &info), PV_ENOTFOUND, "object 'aborted/obj' not found");
	assert_int_equal(test_count_files(f->root, false), 0);

	/* Aborting a replacement leaves the old object alone. */
	assert_int_equal(storage_put(f->st, "aborted/obj", "old", 3, 0), 0);
	assert_int_equal(storage_writer_open(&w, f->st, "aborted/obj", 0), 0);
	assert_int_equal(storage_writer_write(w, data, sizeof(data)), 0);
	storage_writer_abort(w);
	assert_int_equal(storage_stat(f->st, "aborted/obj", &info), 0);
	assert_int_equal(info.size, 3);
	assert_int_equal(test_count_files(f->root, false), 1);
}

/* A child writing an object is killed with SIGKILL half way: nothing becomes visible. */
static void
test_killed_writer(void **state)
{
	Fixture *f = *state;
	StorageInfo info;
	Listed l = {0};
	int pipefd[2];
	pid_t pid;
	char c;
	int status;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
	{
		static unsigned char data[1 << 20];
		StorageWriter *w = NULL;

		close(pipefd[0]);
		test_fill(data, sizeof(data), 9);
		if (storage_writer_open(&w, f->st, "wal/000000010000000000000001", 0) < 0 ||
			storage_writer_write(w, data, sizeof(data)) < 0 ||
			storage_writer_write(w, data, 12345) < 0)	/* some still in the buffer */
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	assert_pv_error(storage_stat(f->st, "wal/000000010000000000000001", &info), PV_ENOTFOUND,
					"object 'wal/000000010000000000000001' not found");
	assert_int_equal(storage_list(f->st, "", collect, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(test_count_files(f->root, true), 1);	/* the dead writer's temp, invisible */

	/* The key is still writable, and the leftover stays hidden. */
	assert_int_equal(storage_put(f->st, "wal/000000010000000000000001", "ok", 2, STORAGE_PUT_NO_OVERWRITE), 0);
	assert_int_equal(storage_list(f->st, "", collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.keys[0], "wal/000000010000000000000001");
}

/* ---- keys, flags, permissions, missing root ---- */

static void
test_bad_keys(void **state)
{
	static const struct
	{
		const char *key;
		const char *msg;
	} bad[] = {
		{"", "invalid object key '': it is empty"},
		{"/abs", "invalid object key '/abs': it starts with '/'"},
		{"..", "invalid object key '..': it contains '..'"},
		{"a/../b", "invalid object key 'a/../b': it contains '..'"},
		{"a/b..c", "invalid object key 'a/b..c': it contains '..'"},
		{"a//b", "invalid object key 'a//b': it has an empty segment"},
		{"a/", "invalid object key 'a/': it has an empty segment"},
		{".", "invalid object key '.': it has a '.' segment"},
		{"./a", "invalid object key './a': it has a '.' segment"},
		{"a/./b", "invalid object key 'a/./b': it has a '.' segment"},
		{"x.tmp.0123456789abcdef", "invalid object key 'x.tmp.0123456789abcdef': '.tmp.' is reserved for temporary files"},
		{"a.tmp.b/c", "invalid object key 'a.tmp.b/c': '.tmp.' is reserved for temporary files"},
		{"a\nb", "invalid object key: it contains a control character (0x0a at byte 1)"},
		{"a\x7f", "invalid object key: it contains a control character (0x7f at byte 1)"},
	};
	Fixture *f = *state;
	StorageWriter *w = NULL;
	StorageInfo info;
	Buf out = PV_BUF_INIT;
	bool ex;
	char longkey[STORAGE_KEY_MAX + 2];

	for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++)
	{
		const char *k = bad[i].key;

		assert_pv_error(storage_put(f->st, k, "x", 1, 0), PV_EUSAGE, bad[i].msg);
		assert_pv_error(storage_writer_open(&w, f->st, k, 0), PV_EUSAGE, bad[i].msg);
		assert_pv_error(storage_get(f->st, k, &out), PV_EUSAGE, bad[i].msg);
		assert_pv_error(storage_get_range(f->st, k, 0, 1, &out), PV_EUSAGE, bad[i].msg);
		assert_pv_error(storage_stat(f->st, k, &info), PV_EUSAGE, bad[i].msg);
		assert_pv_error(storage_exists(f->st, k, &ex), PV_EUSAGE, bad[i].msg);
		assert_pv_error(storage_delete(f->st, k), PV_EUSAGE, bad[i].msg);
		assert_pv_error(storage_key_check(k), PV_EUSAGE, bad[i].msg);
	}
	assert_null(w);
	assert_pv_error(storage_key_check(NULL), PV_EUSAGE, "invalid object key: none given");

	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[STORAGE_KEY_MAX + 1] = '\0';
	assert_int_equal(storage_put(f->st, longkey, "x", 1, 0), PV_EUSAGE);
	assert_non_null(strstr(pv_error_msg(), "longer than 1024 bytes"));
	/* Just under the limit, cut into segments that fit a file name (NAME_MAX 255). */
	longkey[STORAGE_KEY_MAX - 8] = '\0';
	for (size_t i = 200; i < STORAGE_KEY_MAX - 8; i += 200)
		longkey[i] = '/';
	assert_int_equal(storage_key_check(longkey), 0);
	assert_int_equal(storage_put(f->st, longkey, "x", 1, 0), 0);

	/* Nothing was written by the refused calls. */
	assert_int_equal(test_count_files(f->root, false), 1);

	/* Keys that look odd but are fine. */
	assert_int_equal(storage_key_check(".hidden"), 0);
	assert_int_equal(storage_key_check("a/.b/c.d"), 0);
	assert_int_equal(storage_key_check("a.tmp"), 0);
	assert_int_equal(storage_key_check("spaces are ok/ü"), 0);

	/* Unknown flags. */
	assert_pv_error(storage_put(f->st, "k", "x", 1, 2), PV_EUSAGE, "unknown storage write flags 0x2");
	assert_pv_error(storage_writer_open(&w, f->st, "k", 0x10), PV_EUSAGE, "unknown storage write flags 0x10");
	buf_free(&out);
}

static void
test_permissions(void **state)
{
	Fixture *f = *state;
	mode_t old = umask(0);		/* prove the modes are asked for, not inherited from the umask */
	StorageWriter *w = NULL;
	char *p;

	assert_int_equal(storage_put(f->st, "p1/p2/file", "x", 1, 0), 0);
	assert_int_equal(storage_put(f->st, "p1/excl", "x", 1, STORAGE_PUT_NO_OVERWRITE), 0);
	assert_int_equal(storage_writer_open(&w, f->st, "p3/streamed", 0), 0);
	assert_int_equal(storage_writer_commit(w), 0);
	umask(old);

	p = pv_fs_path_join(f->root, "p1");
	assert_int_equal(test_mode(p), 0700);
	pv_free(p);
	p = pv_fs_path_join(f->root, "p1/p2");
	assert_int_equal(test_mode(p), 0700);
	pv_free(p);
	p = pv_fs_path_join(f->root, "p1/p2/file");
	assert_int_equal(test_mode(p), 0600);
	pv_free(p);
	p = pv_fs_path_join(f->root, "p1/excl");
	assert_int_equal(test_mode(p), 0600);
	pv_free(p);
	p = pv_fs_path_join(f->root, "p3/streamed");
	assert_int_equal(test_mode(p), 0600);
	pv_free(p);
	assert_int_equal(test_mode(f->root), 0700);	/* made by the fixture, untouched */
}

/* The driver never creates its root: a repository on an unmounted disk must fail, not fill the mount point. */
static void
test_missing_root(void **state)
{
	Fixture *f = *state;
	char *gone = pv_fs_path_join(f->tmp, "unmounted/repo");
	Storage *st = NULL;
	StorageWriter *w = NULL;
	Buf out = PV_BUF_INIT;
	char *msg;

	assert_int_equal(storage_open(&st, gone), 0);
	assert_string_equal(storage_url(st), gone);
	assert_int_equal(test_mode(gone), -1);

	msg = pv_asprintf("cannot write object 'data/x': directory '%s' does not exist", gone);
	assert_pv_error(storage_put(st, "data/x", "x", 1, 0), PV_ENOTFOUND, msg);
	pv_free(msg);
	msg = pv_asprintf("cannot write object 'config': directory '%s' does not exist", gone);
	assert_pv_error(storage_writer_open(&w, st, "config", 0), PV_ENOTFOUND, msg);
	pv_free(msg);
	assert_pv_error(storage_get(st, "config", &out), PV_ENOTFOUND, "object 'config' not found");
	assert_int_equal(test_mode(gone), -1);
	assert_int_equal(test_mode(f->tmp), 0700);
	assert_int_equal(test_count_files(f->tmp, false), 0);

	/* Repository init creates it, and then everything works. */
	{
		mode_t old = umask(0);

		assert_int_equal(storage_create(st), 0);
		umask(old);
	}
	assert_int_equal(test_mode(gone), 0700);
	assert_int_equal(storage_create(st), 0);	/* idempotent */
	assert_int_equal(storage_put(st, "data/x", "x", 1, 0), 0);
	assert_int_equal(storage_get(st, "data/x", &out), 0);
	assert_string_equal(buf_cstr(&out), "x");
	storage_free(st);
	pv_free(gone);
	buf_free(&out);
}

static void
test_create_over_file(void **state)
{
	Fixture *f = *state;
	char *file = pv_fs_path_join(f->tmp, "file");
	char *msg = pv_asprintf("cannot create storage directory '%s': cannot create directory '%s': "
							"a file of that name exists", file, file);
	Storage *st = NULL;

	assert_int_equal(pv_fs_write_atomic(file, "x", 1, 0600), 0);
	assert_int_equal(storage_open(&st, file), 0);
	assert_pv_error(storage_create(st), PV_ERROR, msg);
	storage_free(st);
	pv_free(msg);
	pv_free(file);
}

/* A key below an existing object cannot be written (a file is in the way) and nothing is left behind. */
static void
test_key_under_object(void **state)
{
	Fixture *f = *state;
	Buf out = PV_BUF_INIT;

	assert_int_equal(storage_put(f->st, "f", "1", 1, 0), 0);
	assert_int_equal(storage_put(f->st, "f/g", "2", 1, 0), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "cannot write object 'f/g'"));
	assert_non_null(strstr(pv_error_msg(), "Not a directory"));
	assert_int_equal(storage_get(f->st, "f/g", &out), PV_ENOTFOUND);
	assert_int_equal(storage_get(f->st, "f", &out), 0);
	assert_string_equal(buf_cstr(&out), "1");
	buf_free(&out);
}

/* Someone removed a directory between our directory creation and the temp file: still works. */
static void
test_put_recreates_directories(void **state)
{
	Fixture *f = *state;
	char *dir = pv_fs_path_join(f->root, "gone");
	Buf out = PV_BUF_INIT;

	assert_int_equal(storage_put(f->st, "gone/a", "1", 1, 0), 0);
	assert_int_equal(pv_fs_remove_tree(dir), 0);
	assert_int_equal(storage_put(f->st, "gone/a", "2", 1, 0), 0);
	assert_int_equal(storage_get(f->st, "gone/a", &out), 0);
	assert_string_equal(buf_cstr(&out), "2");
	pv_free(dir);
	buf_free(&out);
}


/* ---- failures the kernel can be made to produce ---- */

/* Run with the file size limit at 64 KiB, so write() fails with EFBIG like a full disk. */
static struct rlimit
limit_file_size(void)
{
	struct rlimit old, lim;

	signal(SIGXFSZ, SIG_IGN);	/* get EFBIG instead of being killed */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 64 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	return old;
}

static void
test_write_errors(void **state)
{
	Fixture *f = *state;
	static unsigned char data[400 * 1024];
	StorageWriter *w = NULL;
	struct rlimit old;
	char *msg = pv_asprintf("cannot write object 'big': %s", strerror(EFBIG));
	bool ex = true;

	test_fill(data, sizeof(data), 4);
	old = limit_file_size();

	/* storage_put: the whole object in one write. */
	assert_pv_error(storage_put(f->st, "big", data, 100 * 1024, 0), PV_EIO, msg);

	/* A writer whose direct (large) write fails, then refuses to go on. */
	assert_int_equal(storage_writer_open(&w, f->st, "big", 0), 0);
	assert_int_equal(storage_writer_write(w, data, 10 * 1024), 0);
	assert_pv_error(storage_writer_write(w, data, 300 * 1024), PV_EIO, msg);
	assert_pv_error(storage_writer_write(w, data, 1), PV_EIO, "cannot write object 'big': an earlier write failed");
	assert_pv_error(storage_writer_commit(w), PV_EIO, "cannot write object 'big': an earlier write failed");

	/* A writer of small pieces fails when its buffer is flushed: here at commit. */
	assert_int_equal(storage_writer_open(&w, f->st, "big", 0), 0);
	for (size_t off = 0; off < 200 * 1024; off += 1000)
		assert_int_equal(storage_writer_write(w, data + off, 1000), 0);
	assert_pv_error(storage_writer_commit(w), PV_EIO, msg);

	/* Filling the buffer flushes it: the failure shows on a write. */
	assert_int_equal(storage_writer_open(&w, f->st, "big", 0), 0);
	assert_int_equal(storage_writer_write(w, data, 200 * 1024), 0);
	assert_pv_error(storage_writer_write(w, data, 100 * 1024), PV_EIO, msg);
	storage_writer_abort(w);

	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(storage_exists(f->st, "big", &ex), 0);
	assert_false(ex);
	assert_int_equal(test_count_files(f->root, false), 0);	/* no temp files either */
	pv_free(msg);
}

/* A segment longer than a file name may be (NAME_MAX): every call fails cleanly, naming the key. */
static void
test_name_too_long(void **state)
{
	Fixture *f = *state;
	char seg[301];
	char *key, *prefix, *msg;
	StorageInfo info;
	Buf out = PV_BUF_INIT;
	Listed l = {0};
	bool ex;

	memset(seg, 'n', sizeof(seg) - 1);
	seg[sizeof(seg) - 1] = '\0';
	key = pv_asprintf("d/%s", seg);
	prefix = pv_asprintf("d/%s/", seg);

	assert_int_equal(storage_put(f->st, key, "x", 1, 0), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "File name too long"));
	assert_int_equal(strncmp(pv_error_msg(), "cannot write object 'd/nnn", 26), 0);
	msg = pv_asprintf("cannot open object '%s': %s", key, strerror(ENAMETOOLONG));
	assert_pv_error(storage_get(f->st, key, &out), PV_EIO, msg);
	assert_pv_error(storage_get_range(f->st, key, 0, 1, &out), PV_EIO, msg);
	pv_free(msg);
	msg = pv_asprintf("cannot stat object '%s': %s", key, strerror(ENAMETOOLONG));
	assert_pv_error(storage_stat(f->st, key, &info), PV_EIO, msg);
	assert_pv_error(storage_exists(f->st, key, &ex), PV_EIO, msg);
	pv_free(msg);
	msg = pv_asprintf("cannot delete object '%s': %s", key, strerror(ENAMETOOLONG));
	assert_pv_error(storage_delete(f->st, key), PV_EIO, msg);
	pv_free(msg);
	msg = pv_asprintf("cannot list objects under '%s': %s", prefix, strerror(ENAMETOOLONG));
	assert_pv_error(storage_list(f->st, prefix, collect, &l), PV_EIO, msg);
	pv_free(msg);
	assert_int_equal(out.len, 0);
	pv_free(key);
	pv_free(prefix);
	buf_free(&out);
}

/* Links are followed (data/ may live on another disk) but loops are not, and dangling ones are skipped. */
static void
test_list_symlinks(void **state)
{
	Fixture *f = *state;
	char *outside = pv_fs_path_join(f->tmp, "outside");
	char *p;

	assert_int_equal(storage_put(f->st, "real/x", "1", 1, 0), 0);
	assert_int_equal(mkdir(outside, 0700), 0);
	p = pv_fs_path_join(outside, "y");
	assert_int_equal(pv_fs_write_atomic(p, "22", 2, 0600), 0);
	pv_free(p);

#define LINK(target, name) \
	do { \
		char *lp_ = pv_fs_path_join(f->root, name); \
		assert_int_equal(symlink(target, lp_), 0); \
		pv_free(lp_); \
	} while (0)
	LINK(outside, "ext");			/* another disk */
	LINK("real", "linked");			/* a second name for a directory */
	LINK("..", "real/up");			/* loops back to the root */
	LINK(".", "self");				/* loops to itself */
	LINK("nowhere", "dangling");	/* points at nothing */
	LINK("selfloop", "selfloop");	/* points at itself (ELOOP) */
	LINK("real/x", "filelink");		/* a link to an object is an object */
#undef LINK

	check_list(f->st, "", "ext/y filelink linked/x real/x");
	check_list(f->st, "ext/", "ext/y");
	pv_free(outside);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_roundtrip_empty),
		T(test_roundtrip_one_byte),
		T(test_get_appends),
		T(test_large_streamed),
		T(test_writer_small_writes),
		T(test_get_range),
		T(test_reader_handle),
		T(test_reader_fallback),
		T(test_stat_and_missing),
		T(test_list),
		T(test_list_missing_root),
		T(test_delete),
		T(test_overwrite),
		T(test_no_overwrite),
		T(test_no_overwrite_race),
		T(test_concurrent_writers),
		T(test_abort),
		T(test_killed_writer),
		T(test_bad_keys),
		T(test_permissions),
		T(test_missing_root),
		T(test_create_over_file),
		T(test_key_under_object),
		T(test_put_recreates_directories),
		T(test_write_errors),
		T(test_name_too_long),
		T(test_list_symlinks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
