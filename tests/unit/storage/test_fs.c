/*
 * test_fs.c: the filesystem helpers of src/common/fs.c (they live with the
 * storage tests because the posix driver is built on them and one engineer
 * owns both).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static int
tmp_setup(void **state)
{
	*state = test_tmpdir_new();
	return 0;
}

static int
tmp_teardown(void **state)
{
	test_tmpdir_free(*state);
	return 0;
}

/* ---- path strings ---- */

static void
check_str(char *got, const char *want)
{
	assert_string_equal(got, want);
	pv_free(got);
}

static void
test_path_join(void **state)
{
	check_str(pv_fs_path_join("a", "b"), "a/b");
	check_str(pv_fs_path_join("a/", "b"), "a/b");
	check_str(pv_fs_path_join("a//", "/b"), "a/b");
	check_str(pv_fs_path_join("/", "b"), "/b");
	check_str(pv_fs_path_join("//", "b/c"), "/b/c");
	check_str(pv_fs_path_join("", "b"), "b");
	check_str(pv_fs_path_join("a", ""), "a");
	check_str(pv_fs_path_join("/x/y", "z/"), "/x/y/z/");
}

static void
test_path_dirname(void **state)
{
	check_str(pv_fs_path_dirname("a/b"), "a");
	check_str(pv_fs_path_dirname("a/b/"), "a");
	check_str(pv_fs_path_dirname("a//b"), "a");
	check_str(pv_fs_path_dirname("/a"), "/");
	check_str(pv_fs_path_dirname("/"), "/");
	check_str(pv_fs_path_dirname("b"), ".");
	check_str(pv_fs_path_dirname(""), ".");
	check_str(pv_fs_path_dirname("/x/y/z.tmp.0"), "/x/y");
}

static void
check_abs(const char *in, const char *want)
{
	char *out = NULL;

	assert_int_equal(pv_fs_path_absolute(&out, in), 0);
	check_str(out, want);
}

static void
test_path_absolute(void **state)
{
	char *cwd = getcwd(NULL, 0);
	char *want;
	char *out = NULL;

	check_abs("/", "/");
	check_abs("/a/b", "/a/b");
	check_abs("//a///b//", "/a/b");
	check_abs("/a/./b/.", "/a/b");
	check_abs("/a/b/../c", "/a/c");
	check_abs("/..", "/");
	check_abs("/../../x", "/x");
	check_abs("/a/..", "/");
	want = pv_fs_path_join(cwd, "x/y");
	check_abs("x/y", want);
	check_abs("./x/z/../y/", want);
	pv_free(want);
	check_abs(".", cwd);
	assert_pv_error(pv_fs_path_absolute(&out, ""), PV_EUSAGE, "empty path");
	assert_null(out);
	free(cwd);
}

static void
test_is_tmp_name(void **state)
{
	assert_true(pv_fs_is_tmp_name("x.tmp.0123456789abcdef"));
	assert_true(pv_fs_is_tmp_name("/a/b/x.tmp.0123456789abcdef"));
	assert_true(pv_fs_is_tmp_name(".tmp.0123456789abcdef"));
	assert_false(pv_fs_is_tmp_name("x.tmp.0123456789ABCDEF"));
	assert_false(pv_fs_is_tmp_name("x.tmp.0123456789abcde"));
	assert_false(pv_fs_is_tmp_name("x.tmp.0123456789abcdeg"));
	assert_false(pv_fs_is_tmp_name("x.tmp-0123456789abcdef"));
	assert_false(pv_fs_is_tmp_name("x.tmp.0123456789abcdef0"));
	assert_false(pv_fs_is_tmp_name("x"));
	assert_false(pv_fs_is_tmp_name(""));
}

/* ---- directories ---- */

static void
test_mkdir_p(void **state)
{
	const char *tmp = *state;
	char *deep = pv_fs_path_join(tmp, "a/b/c");
	char *p;
	mode_t old;

	old = umask(0);
	assert_int_equal(pv_fs_mkdir_p(deep, 0700), 0);
	umask(old);
	assert_int_equal(test_mode(deep), 0700);
	p = pv_fs_path_join(tmp, "a");
	assert_int_equal(test_mode(p), 0700);
	pv_free(p);
	assert_int_equal(pv_fs_mkdir_p(deep, 0700), 0);	/* exists: fine */

	/* Trailing slashes and an existing prefix. */
	p = pv_fs_path_join(tmp, "a/b/d/e/");
	assert_int_equal(pv_fs_mkdir_p(p, 0755), 0);
	pv_free(p);
	p = pv_fs_path_join(tmp, "a/b/d/e");
	assert_true(test_mode(p) >= 0);

	/* Writing a file over a directory fails at the rename, and cleans up its temp file. */
	assert_int_equal(pv_fs_write_atomic(p, "", 0, 0600), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "cannot rename"));
	assert_int_equal(test_count_files(tmp, true), 0);
	pv_free(p);

	/* A file in the way. */
	p = pv_fs_path_join(tmp, "file");
	assert_int_equal(pv_fs_write_atomic(p, "x", 1, 0600), 0);
	{
		char *sub = pv_fs_path_join(p, "sub");
		char *msg = pv_asprintf("cannot create directory '%s': a file of that name exists", p);

		assert_pv_error(pv_fs_mkdir_p(p, 0700), PV_ERROR, msg);
		assert_int_equal(pv_fs_mkdir_p(sub, 0700), PV_EIO);	/* ENOTDIR */
		assert_non_null(strstr(pv_error_msg(), "Not a directory"));
		pv_free(msg);
		pv_free(sub);
	}
	pv_free(p);
	assert_pv_error(pv_fs_mkdir_p("", 0700), PV_EUSAGE, "empty directory path");
	pv_free(deep);
}

static void
test_mkdir_under(void **state)
{
	const char *tmp = *state;
	char *base = pv_fs_path_join(tmp, "base");
	char *msg = pv_asprintf("directory '%s' does not exist", base);
	char *p;

	/* The base is never created. */
	assert_pv_error(pv_fs_mkdir_under(base, "x/y", 0700), PV_ENOTFOUND, msg);
	assert_pv_error(pv_fs_mkdir_under(base, "x", 0700), PV_ENOTFOUND, msg);
	assert_pv_error(pv_fs_mkdir_under(base, "", 0700), PV_ENOTFOUND, msg);
	assert_pv_error(pv_fs_mkdir_under(base, ".", 0700), PV_ENOTFOUND, msg);
	assert_int_equal(test_mode(base), -1);

	assert_int_equal(mkdir(base, 0700), 0);
	assert_int_equal(pv_fs_mkdir_under(base, "", 0700), 0);
	assert_int_equal(pv_fs_mkdir_under(base, "x/y/z", 0700), 0);
	assert_int_equal(pv_fs_mkdir_under(base, "x/y/z", 0700), 0);
	p = pv_fs_path_join(base, "x/y/z");
	assert_true(test_mode(p) >= 0);
	pv_free(p);
	pv_free(msg);
	pv_free(base);
}

static void
test_fsync_dir(void **state)
{
	const char *tmp = *state;
	char *gone = pv_fs_path_join(tmp, "gone");
	char *f = pv_fs_path_join(tmp, "f");

	assert_int_equal(pv_fs_fsync_dir(tmp), 0);
	assert_int_equal(pv_fs_fsync_parent(f), 0);
	assert_int_equal(pv_fs_fsync_dir(gone), PV_ENOTFOUND);
	assert_non_null(strstr(pv_error_msg(), "cannot open directory"));
	pv_free(gone);
	pv_free(f);
}

static void
test_remove_tree(void **state)
{
	const char *tmp = *state;
	char *outside = pv_fs_path_join(tmp, "outside");
	char *keep = pv_fs_path_join(tmp, "outside/keep");
	char *tree = pv_fs_path_join(tmp, "tree");
	char *p;

	assert_int_equal(pv_fs_mkdir_p(outside, 0700), 0);
	assert_int_equal(pv_fs_write_atomic(keep, "k", 1, 0600), 0);
	p = pv_fs_path_join(tree, "a/b/c");
	assert_int_equal(pv_fs_mkdir_p(p, 0700), 0);
	pv_free(p);
	p = pv_fs_path_join(tree, "a/b/c/f");
	assert_int_equal(pv_fs_write_atomic(p, "x", 1, 0600), 0);
	pv_free(p);
	p = pv_fs_path_join(tree, "top");
	assert_int_equal(pv_fs_write_atomic(p, "x", 1, 0600), 0);
	pv_free(p);
	/* A symlink to a directory outside: removed, never followed. */
	p = pv_fs_path_join(tree, "a/link");
	assert_int_equal(symlink(outside, p), 0);
	pv_free(p);

	assert_int_equal(pv_fs_remove_tree(tree), 0);
	assert_int_equal(test_mode(tree), -1);
	assert_int_equal(test_mode(keep), 0600);
	assert_int_equal(pv_fs_remove_tree(tree), 0);	/* absent: fine */
	assert_int_equal(pv_fs_remove_tree(keep), 0);	/* a plain file */
	assert_int_equal(test_mode(keep), -1);
	pv_free(outside);
	pv_free(keep);
	pv_free(tree);
}

static void
test_free_space(void **state)
{
	const char *tmp = *state;
	char *deep = pv_fs_path_join(tmp, "not/yet/there");
	uint64_t a = 0, b = 0;

	assert_int_equal(pv_fs_free_space(tmp, &a), 0);
	assert_true(a > 0);
	assert_int_equal(pv_fs_free_space(deep, &b), 0);	/* nearest existing parent */
	assert_true(b > 0);
	/* Same filesystem; others may write meanwhile, so allow some drift. */
	assert_true(b > a / 2 && b < a * 2);
	pv_free(deep);
}

/* ---- files ---- */

static void
test_write_atomic_and_read(void **state)
{
	const char *tmp = *state;
	char *p = pv_fs_path_join(tmp, "file");
	char *missing = pv_fs_path_join(tmp, "nodir/file");
	Buf out = PV_BUF_INIT;
	char *msg;
	mode_t old;

	old = umask(0);
	assert_int_equal(pv_fs_write_atomic(p, "first", 5, 0640), 0);
	umask(old);
	assert_int_equal(test_mode(p), 0640);
	assert_int_equal(pv_fs_read_file(p, &out), 0);
	assert_string_equal(buf_cstr(&out), "first");

	/* Replace; read appends. */
	assert_int_equal(pv_fs_write_atomic(p, "2nd", 3, 0600), 0);
	assert_int_equal(pv_fs_read_file(p, &out), 0);
	assert_string_equal(buf_cstr(&out), "first2nd");
	assert_int_equal(test_count_files(tmp, true), 0);
	assert_int_equal(test_count_files(tmp, false), 1);

	/* Empty file. */
	assert_int_equal(pv_fs_write_atomic(p, NULL, 0, 0600), 0);
	buf_reset(&out);
	assert_int_equal(pv_fs_read_file(p, &out), 0);
	assert_int_equal(out.len, 0);

	/* Missing directory: PV_ENOTFOUND, nothing created. */
	assert_int_equal(pv_fs_write_atomic(missing, "x", 1, 0600), PV_ENOTFOUND);
	assert_non_null(strstr(pv_error_msg(), "cannot create temporary file"));
	assert_int_equal(test_count_files(tmp, false), 1);

	/* Reading: missing, a directory, and a /proc file that claims size 0. */
	buf_append_str(&out, "keep");
	msg = pv_asprintf("file '%s' not found", missing);
	assert_pv_error(pv_fs_read_file(missing, &out), PV_ENOTFOUND, msg);
	pv_free(msg);
	msg = pv_asprintf("cannot read '%s': it is a directory", tmp);
	assert_pv_error(pv_fs_read_file(tmp, &out), PV_ERROR, msg);
	pv_free(msg);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_reset(&out);
	assert_int_equal(pv_fs_read_file("/proc/self/status", &out), 0);
	assert_non_null(strstr(buf_cstr(&out), "Pid:"));

	pv_free(p);
	pv_free(missing);
	buf_free(&out);
}

static void
test_read_large(void **state)
{
	const char *tmp = *state;
	char *p = pv_fs_path_join(tmp, "large");
	size_t n = 3 * 1024 * 1024 + 17;
	unsigned char *data = pv_malloc(n);
	Buf out = PV_BUF_INIT;

	test_fill(data, n, 11);
	assert_int_equal(pv_fs_write_atomic(p, data, n, 0600), 0);
	assert_int_equal(pv_fs_read_file(p, &out), 0);
	assert_int_equal(out.len, n);
	assert_memory_equal(out.data, data, n);
	pv_free(data);
	pv_free(p);
	buf_free(&out);
}

static void
test_tmp_open(void **state)
{
	const char *tmp = *state;
	char *p = pv_fs_path_join(tmp, "obj");
	char *missing = pv_fs_path_join(tmp, "nodir/obj");
	char *t1 = NULL, *t2 = NULL, *t3 = NULL;
	int fd1 = -1, fd2 = -1, fd3 = -1;
	mode_t old;

	old = umask(0);
	assert_int_equal(pv_fs_tmp_open(&t1, &fd1, p, 0600), 0);
	umask(old);
	assert_int_equal(pv_fs_tmp_open(&t2, &fd2, p, 0600), 0);
	assert_string_not_equal(t1, t2);
	assert_true(pv_fs_is_tmp_name(t1));
	assert_int_equal(strncmp(t1, p, strlen(p)), 0);
	assert_int_equal(test_mode(t1), 0600);
	assert_true(fcntl(fd1, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(pv_fs_tmp_open(&t3, &fd3, missing, 0600), PV_ENOTFOUND);
	assert_null(t3);
	assert_int_equal(fd3, -1);
	close(fd1);
	close(fd2);
	pv_free(t1);
	pv_free(t2);
	pv_free(p);
	pv_free(missing);
}

static void
test_write_all_pread_all(void **state)
{
	const char *tmp = *state;
	char *p = pv_fs_path_join(tmp, "io");
	unsigned char data[100000], back[100000];
	size_t got = 0;
	int fd;

	test_fill(data, sizeof(data), 2);
	fd = open(p, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pv_fs_write_all(fd, data, sizeof(data)), 0);
	assert_int_equal(pv_fs_pread_all(fd, back, 1000, 500, &got), 0);
	assert_int_equal(got, 1000);
	assert_memory_equal(back, data + 500, 1000);
	/* Past the end: a short count, not an error. */
	assert_int_equal(pv_fs_pread_all(fd, back, sizeof(back), 99990, &got), 0);
	assert_int_equal(got, 10);
	assert_int_equal(pv_fs_pread_all(fd, back, 10, 200000, &got), 0);
	assert_int_equal(got, 0);
	close(fd);

	/* Errors carry only the system's text, for the caller to prefix. */
	assert_pv_error(pv_fs_write_all(fd, data, 1), PV_EIO, strerror(EBADF));
	assert_pv_error(pv_fs_pread_all(fd, back, 1, 0, &got), PV_EIO, strerror(EBADF));
	pv_free(p);
}

static void
test_random_fill(void **state)
{
	unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};

	pv_fs_random_fill(a, sizeof(a));
	pv_fs_random_fill(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
}


/* Names longer than NAME_MAX make every helper fail with a message naming the path. */
static void
test_name_too_long(void **state)
{
	const char *tmp = *state;
	char seg[301];
	char *p;
	Buf out = PV_BUF_INIT;
	uint64_t n;

	memset(seg, 'n', sizeof(seg) - 1);
	seg[sizeof(seg) - 1] = '\0';
	p = pv_fs_path_join(tmp, seg);
	assert_int_equal(pv_fs_mkdir_p(p, 0700), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "cannot create directory"));
	assert_int_equal(pv_fs_remove_tree(p), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "cannot stat"));
	assert_int_equal(pv_fs_read_file(p, &out), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "cannot open"));
	assert_int_equal(pv_fs_fsync_dir(p), PV_EIO);
	assert_int_equal(pv_fs_free_space(p, &n), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "cannot find the free space of"));
	assert_non_null(strstr(pv_error_msg(), strerror(ENAMETOOLONG)));
	assert_int_equal(pv_fs_write_atomic(p, "x", 1, 0600), PV_EIO);
	assert_int_equal(out.len, 0);
	pv_free(p);
	buf_free(&out);
}

/* With the current directory deleted, relative paths cannot be resolved or created. */
static void
test_deleted_cwd(void **state)
{
	const char *tmp = *state;
	char *gone = pv_fs_path_join(tmp, "gone");
	int here = open(".", O_RDONLY | O_DIRECTORY);
	char *out = NULL;

	assert_true(here >= 0);
	assert_int_equal(mkdir(gone, 0700), 0);
	assert_int_equal(chdir(gone), 0);
	assert_int_equal(rmdir(gone), 0);

	assert_int_equal(pv_fs_path_absolute(&out, "x"), PV_ERROR);
	assert_non_null(strstr(pv_error_msg(), "cannot find the current directory to resolve 'x'"));
	assert_null(out);
	assert_int_equal(pv_fs_mkdir_p("a/b", 0700), PV_ENOTFOUND);

	assert_int_equal(fchdir(here), 0);
	close(here);
	pv_free(gone);
}

/* A write that fails (file size limit: EFBIG, like a full disk) leaves the old file and no temp file. */
static void
test_write_atomic_fails(void **state)
{
	const char *tmp = *state;
	static unsigned char data[128 * 1024];
	char *p = pv_fs_path_join(tmp, "f");
	struct rlimit old, lim;
	Buf out = PV_BUF_INIT;

	assert_int_equal(pv_fs_write_atomic(p, "old", 3, 0600), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 64 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(pv_fs_write_atomic(p, data, sizeof(data), 0600), PV_EIO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(strncmp(pv_error_msg(), "cannot write '", 14), 0);
	assert_non_null(strstr(pv_error_msg(), strerror(EFBIG)));

	assert_int_equal(pv_fs_read_file(p, &out), 0);
	assert_string_equal(buf_cstr(&out), "old");
	assert_int_equal(test_count_files(tmp, false), 1);
	pv_free(p);
	buf_free(&out);
}

/* At most one holder: a second open file takes nothing until the first closes. */
static void
test_lock_try_and_held(void **state)
{
	const char *tmp = *state;
	char *p = pv_fs_path_join(tmp, "x.lock");
	char *missing = pv_fs_path_join(tmp, "no/x.lock");
	char *want = pv_asprintf("cannot open '%s': %s", missing, strerror(ENOENT));
	int fd = -1, fd2 = -1;

	assert_false(pv_fs_lock_held(p));
	assert_int_equal(pv_fs_lock_try(p, &fd), 1);
	assert_true(fd >= 0);
	assert_int_equal(pv_fs_lock_try(p, &fd2), 0);
	assert_int_equal(fd2, -1);
	assert_true(pv_fs_lock_held(p));
	close(fd);
	assert_false(pv_fs_lock_held(p));
	assert_int_equal(pv_fs_lock_try(p, &fd2), 1);
	close(fd2);

	assert_int_equal(pv_fs_lock_try(missing, &fd), PV_EIO);
	assert_string_equal(pv_error_msg(), want);
	assert_false(pv_fs_lock_held(missing));	/* cannot be checked: free */
	pv_free(p);
	pv_free(missing);
	pv_free(want);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tmp_setup, tmp_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_join),
		cmocka_unit_test(test_path_dirname),
		cmocka_unit_test(test_path_absolute),
		cmocka_unit_test(test_is_tmp_name),
		T(test_mkdir_p),
		T(test_mkdir_under),
		T(test_fsync_dir),
		T(test_remove_tree),
		T(test_free_space),
		T(test_write_atomic_and_read),
		T(test_read_large),
		T(test_tmp_open),
		T(test_write_all_pread_all),
		T(test_name_too_long),
		T(test_deleted_cwd),
		T(test_write_atomic_fails),
		T(test_lock_try_and_held),
		cmocka_unit_test(test_random_fill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
