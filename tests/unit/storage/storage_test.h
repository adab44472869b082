/*
 * storage_test.h: helpers shared by the storage unit tests: scratch
 * directories, deterministic test data, and counting files on disk (to see
 * temp files the storage API hides).
 *
 * Include after <cmocka.h>.  Everything is static inline so each test
 * program takes only what it uses.
 */
#ifndef PV_TEST_STORAGE_TEST_H
#define PV_TEST_STORAGE_TEST_H

#include "common/error.h"
#include "common/fs.h"
#include "common/mem.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A fresh empty directory under $TMPDIR (or /tmp); remove with test_tmpdir_free. */
static inline char *
test_tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = pv_asprintf("%s/pgvault-test-XXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp");

	assert_non_null(mkdtemp(dir));
	return dir;
}

static inline void
test_tmpdir_free(char *dir)
{
	if (dir == NULL)
		return;
	assert_int_equal(pv_fs_remove_tree(dir), 0);
	pv_free(dir);
}

/* Deterministic bytes (xorshift64*) so a test can regenerate what it wrote. */
static inline void
test_fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i++)
	{
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p[i] = (unsigned char) ((x * 0x2545F4914F6CDD1Dull) >> 56);
	}
}

/* Count regular files below dir (recursively); with tmp_only, only our temp files. */
static inline size_t
test_count_files(const char *dir, bool tmp_only)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
	{
		char *p;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		p = pv_fs_path_join(dir, de->d_name);
		if (lstat(p, &st) == 0)
		{
			if (S_ISDIR(st.st_mode))
				n += test_count_files(p, tmp_only);
			else if (!tmp_only || pv_fs_is_tmp_name(de->d_name))
				n++;
		}
		pv_free(p);
	}
	closedir(d);
	return n;
}

/* Permission bits of path (lstat), or -1. */
static inline int
test_mode(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -1;
	return (int) (st.st_mode & 07777);
}

/* Assert the current thread's error: exact code and message. */
#define assert_pv_error(rc, code, msg) \
	do { \
		int rc_ = (rc); \
		if (rc_ != (code) || strcmp(pv_error_msg(), (msg)) != 0) \
			fail_msg("got %s (%d) \"%s\", wanted %s \"%s\"", pv_error_name(rc_), rc_, pv_error_msg(), \
					 pv_error_name(code), (msg)); \
	} while (0)

#endif
