/*
 * test_storage.c: the generic layer (storage.c): opening locations by URL,
 * the scheme registry, and what the wrappers guarantee to every driver
 * (checks before dispatch, Buf restored on failure, the exists fallback),
 * shown with a tiny fake driver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/storage_driver.h"
#include "storage_test.h"

#include <stdio.h>
#include <unistd.h>

/* ---- opening ---- */

static void
check_open_url(const char *url, const char *want)
{
	Storage *st = NULL;

	if (storage_open(&st, url) != 0)
		fail_msg("storage_open('%s'): %s", url, pv_error_msg());
	assert_string_equal(storage_url(st), want);
	storage_free(st);
}

static void
test_open_paths(void **state)
{
	char *cwd = getcwd(NULL, 0);
	char *want;

	check_open_url("/abs/path", "/abs/path");
	check_open_url("/abs/path/", "/abs/path");
	check_open_url("//abs//x/./y/../z/", "/abs/x/z");
	check_open_url("/", "/");
	check_open_url("file:///abs/p", "/abs/p");
	check_open_url("FILE:///abs/p", "/abs/p");
	check_open_url("file://localhost/abs/p", "/abs/p");
	check_open_url("file:///with%20space/%41", "/with space/A");
	check_open_url("file:///x%2fy%2F%7a", "/x/y/z");
	/* No "://": a relative path, however much it looks like a scheme. */
	want = pv_fs_path_join(cwd, "c:not-a-scheme");
	check_open_url("c:not-a-scheme", want);
	pv_free(want);
	want = pv_fs_path_join(cwd, "rel/repo");
	check_open_url("rel/repo", want);
	check_open_url("./rel/x/../repo/", want);
	pv_free(want);
	check_open_url(".", cwd);
	free(cwd);
}

static void
test_open_errors(void **state)
{
	Storage *st = NULL;

	assert_pv_error(storage_open(&st, ""), PV_EUSAGE, "no repository location given");
	assert_non_null(strstr(pv_error_hint_msg(), "s3://bucket/prefix"));
	assert_pv_error(storage_open(&st, NULL), PV_EUSAGE, "no repository location given");

	/* Object-store schemes reach their drivers (which check the URL before anything else). */
	assert_pv_error(storage_open(&st, "s3:///prefix"), PV_EUSAGE, "invalid s3 URL 's3:///prefix': no bucket");
	assert_pv_error(storage_open(&st, "S3://"), PV_EUSAGE, "invalid s3 URL 'S3://': no bucket");
	assert_pv_error(storage_open(&st, "gs://"), PV_EUSAGE, "invalid gs URL 'gs://': no bucket");
	assert_pv_error(storage_open(&st, "azure://"), PV_EUSAGE, "invalid azure URL 'azure://': no container");
	assert_pv_error(storage_open(&st, "s3://b/a/../c"), PV_EUSAGE,
					"invalid s3 URL 's3://b/a/../c': invalid object key 'a/../c': it contains '..'");

	assert_pv_error(storage_open(&st, "ftp://host/x"), PV_EUSAGE, "unknown storage type 'ftp' in 'ftp://host/x'");
	assert_non_null(strstr(pv_error_hint_msg(), "azure://container/prefix"));
	assert_pv_error(storage_open(&st, "s3x://b"), PV_EUSAGE, "unknown storage type 's3x' in 's3x://b'");

	assert_pv_error(storage_open(&st, "file://host/x"), PV_EUSAGE,
					"invalid file URL 'file://host/x': it must name an absolute path");
	assert_pv_error(storage_open(&st, "file://"), PV_EUSAGE, "invalid file URL 'file://': it must name an absolute path");
	assert_pv_error(storage_open(&st, "file:///a%2"), PV_EUSAGE, "invalid file URL 'file:///a%2': bad %-escape");
	assert_pv_error(storage_open(&st, "file:///a%zz"), PV_EUSAGE, "invalid file URL 'file:///a%zz': bad %-escape");
	assert_pv_error(storage_open(&st, "file:///a%00b"), PV_EUSAGE, "invalid file URL 'file:///a%00b': bad %-escape");
	assert_null(st);

	assert_pv_error(storage_posix_new(&st, "relative"), PV_EUSAGE,
					"storage directory 'relative' is not an absolute path");
	storage_free(NULL);
}

/* ---- the generic layer, seen through a fake driver ---- */

typedef struct Fake
{
	int calls;
	int fail_get;				/* append 3 bytes, then fail with this code */
	bool stat_found;
	char key[64];				/* the last key a call got */
	int flags;
} Fake;

static void
fake_note(Fake *fk, const char *key)
{
	fk->calls++;
	snprintf(fk->key, sizeof(fk->key), "%s", key);
}

static int
fake_put(void *d, const char *key, const void *data, size_t len, int flags)
{
	fake_note(d, key);
	((Fake *) d)->flags = flags;
	return 0;
}

static int
fake_writer_open(void **out, void *d, const char *key, int flags)
{
	fake_note(d, key);
	*out = d;
	return 0;
}

static int
fake_writer_write(void *w, const void *data, size_t len)
{
	((Fake *) w)->calls++;
	return 0;
}

static int
fake_writer_commit(void *w)
{
	((Fake *) w)->calls++;
	return pv_error_set(PV_EIO, "commit failed");
}

static void
fake_writer_abort(void *w)
{
	((Fake *) w)->calls++;
}

static int
fake_get(void *d, const char *key, Buf *out)
{
	Fake *fk = d;

	fake_note(fk, key);
	buf_append(out, "abc", 3);
	if (fk->fail_get)
		return pv_error_set(fk->fail_get, "fake read of '%s' failed", key);
	return 0;
}

static int
fake_get_range(void *d, const char *key, uint64_t offset, uint64_t len, Buf *out)
{
	return fake_get(d, key, out);
}

static int
fake_stat(void *d, const char *key, StorageInfo *out)
{
	Fake *fk = d;

	fake_note(fk, key);
	if (!fk->stat_found)
		return pv_error_set(PV_ENOTFOUND, "object '%s' not found", key);
	out->size = 7;
	out->mtime = 0;
	return 0;
}

static int
fake_list(void *d, const char *prefix, StorageListFn fn, void *payload)
{
	StorageInfo info = {1, 0};

	fake_note(d, prefix);
	return fn("only", &info, payload);
}

static int
fake_delete(void *d, const char *key)
{
	fake_note(d, key);
	return 0;
}

static const StorageOps fake_ops = {
	.name = "fake",
	.put = fake_put,
	.writer_open = fake_writer_open,
	.writer_write = fake_writer_write,
	.writer_commit = fake_writer_commit,
	.writer_abort = fake_writer_abort,
	.get = fake_get,
	.get_range = fake_get_range,
	.stat = fake_stat,
	.list = fake_list,
	.delete = fake_delete,
	/* exists and free left out: the generic fallbacks apply */
};

static int
list_cb(const char *key, const StorageInfo *info, void *payload)
{
	snprintf(payload, 16, "%s", key);
	return 0;
}

static void
test_generic_layer(void **state)
{
	Fake fk = {0};
	Storage *st = storage_new(&fake_ops, &fk, "fake://x");
	StorageWriter *w = NULL;
	Buf out = PV_BUF_INIT;
	bool ex = true;
	char listed[16] = "";

	assert_string_equal(storage_url(st), "fake://x");
	assert_int_equal(storage_create(st), 0);	/* no create member: nothing to do */
	assert_ptr_equal(storage_driver(st), &fk);

	/* Bad keys and flags never reach the driver. */
	assert_int_equal(storage_put(st, "../x", "", 0, 0), PV_EUSAGE);
	assert_int_equal(storage_put(st, "x", "", 0, 4), PV_EUSAGE);
	assert_int_equal(storage_list(st, "/", list_cb, listed), PV_EUSAGE);
	assert_pv_error(storage_list(st, NULL, list_cb, listed), PV_EUSAGE, "invalid prefix: none given");
	assert_int_equal(fk.calls, 0);

	assert_int_equal(storage_put(st, "k", "v", 1, STORAGE_PUT_NO_OVERWRITE), 0);
	assert_string_equal(fk.key, "k");
	assert_int_equal(fk.flags, STORAGE_PUT_NO_OVERWRITE);

	/* A failed read leaves the caller's Buf as it was, even if the driver appended. */
	buf_append_str(&out, "mine");
	fk.fail_get = PV_ECORRUPT;
	assert_pv_error(storage_get(st, "k", &out), PV_ECORRUPT, "fake read of 'k' failed");
	assert_int_equal(out.len, 4);
	assert_string_equal(buf_cstr(&out), "mine");
	assert_int_equal(storage_get_range(st, "k", 0, 3, &out), PV_ECORRUPT);
	assert_string_equal(buf_cstr(&out), "mine");
	fk.fail_get = 0;
	assert_int_equal(storage_get(st, "k", &out), 0);
	assert_string_equal(buf_cstr(&out), "mineabc");

	/* exists falls back to stat, turning PV_ENOTFOUND into false with no error left behind. */
	pv_error_clear();
	assert_int_equal(storage_exists(st, "k", &ex), 0);
	assert_false(ex);
	assert_string_equal(pv_error_msg(), "");
	fk.stat_found = true;
	assert_int_equal(storage_exists(st, "k", &ex), 0);
	assert_true(ex);

	assert_int_equal(storage_list(st, "", list_cb, listed), 0);
	assert_string_equal(listed, "only");
	assert_int_equal(storage_delete(st, "k"), 0);

	/* Writers: zero-length writes are not passed on; commit frees the writer even when it fails. */
	fk.calls = 0;
	assert_int_equal(storage_writer_open(&w, st, "w", 0), 0);
	assert_int_equal(storage_writer_write(w, "", 0), 0);
	assert_int_equal(storage_writer_write(w, "x", 1), 0);
	assert_pv_error(storage_writer_commit(w), PV_EIO, "commit failed");
	assert_int_equal(fk.calls, 3);
	assert_int_equal(storage_writer_open(&w, st, "w", 0), 0);
	storage_writer_abort(w);
	assert_int_equal(fk.calls, 5);

	storage_free(st);			/* no free member: the driver pointer is ours */
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_paths),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_generic_layer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
