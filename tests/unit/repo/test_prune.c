/*
 * test_prune.c: repo_prune on real repositories (posix driver in a scratch
 * directory): data of deleted backups goes and kept backups still restore
 * bit-exact; a partly used pack is repacked (or kept, under the
 * threshold); a dry run changes nothing; a shared lock (a running backup)
 * makes prune refuse with PV_ELOCKED and delete nothing; leftovers of an
 * aborted backup and old temp files are removed; a damaged repository stops
 * prune before it deletes anything.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/maint.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/prune.h"
#include "repo/repo.h"
#include "repo/verify.h"
#include "repo/writer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define X_LEN (2 * MiB + 321)
#define Y_LEN (2 * MiB + 55)

typedef struct Fixture
{
	char *dir;
	char *url;
	bool encrypted;
	Repo *repo;
	unsigned char *x;
	unsigned char *y;
} Fixture;

static int
setup_common(void **state, bool encrypted, uint64_t pack_size)
{
	Fixture *f = PV_NEW(Fixture);

	f->encrypted = encrypted;
	f->dir = rt_tmpdir();
	f->repo = rt_repo_new(f->dir, "repo", encrypted, "zstd:3", pack_size, &f->url);
	f->x = pv_malloc(X_LEN);
	f->y = pv_malloc(Y_LEN);
	rt_fill_random(f->x, X_LEN, 11);
	rt_fill_random(f->y, Y_LEN, 12);
	*state = f;
	return 0;
}

static int
setup_small_packs(void **state)
{
	return setup_common(state, false, 1 * MiB);
}

static int
setup_big_packs(void **state)
{
	return setup_common(state, false, 16 * MiB);
}

static int
setup_big_packs_encrypted(void **state)
{
	return setup_common(state, true, 16 * MiB);
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	repo_free(f->repo);
	rt_tmpdir_free(f->dir);
	pv_free(f->url);
	pv_free(f->x);
	pv_free(f->y);
	pv_free(f);
	return 0;
}

static void
reopen(Fixture *f)
{
	repo_free(f->repo);
	assert_int_equal(repo_open(&f->repo, f->url, rt_passphrase,
							   f->encrypted ? (void *) RT_PASS : NULL), 0);
}

/* One backup of two stream items (either may be NULL). */
static void
backup_two(Fixture *f, const unsigned char *x, const unsigned char *y, char id[REPO_BACKUP_ID_LEN + 1])
{
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;

	assert_int_equal(repo_writer_new(&w, f->repo, &(RepoWriterOpts) {.kind = "file", .jobs = 2}), 0);
	if (x != NULL)
	{
		assert_int_equal(repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = "x"}), 0);
		assert_int_equal(repo_writer_item_write(it, x, X_LEN), 0);
		assert_int_equal(repo_writer_item_end(it, NULL), 0);
	}
	if (y != NULL)
	{
		assert_int_equal(repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = "y"}), 0);
		assert_int_equal(repo_writer_item_write(it, y, Y_LEN), 0);
		assert_int_equal(repo_writer_item_end(it, NULL), 0);
	}
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	snprintf(id, REPO_BACKUP_ID_LEN + 1, "%s", repo_writer_id(w));
	repo_writer_free(w);
}

static void
assert_restores(Fixture *f, const char *id, const char *name, const unsigned char *data, size_t len)
{
	Buf got = PV_BUF_INIT;

	assert_int_equal(rt_read_item(f->repo, id, name, &got, 0), 0);
	assert_int_equal(got.len, len);
	assert_memory_equal(got.data, data, len);
	buf_free(&got);
}

static void
assert_verifies(Fixture *f)
{
	RepoVerifyReport r;

	assert_int_equal(repo_verify(f->repo, &(RepoVerifyOpts) {.jobs = 2}, &r), 0);
	if (!repo_verify_report_ok(&r))
		for (size_t i = 0; i < r.nproblems; i++)
			print_error("verify: %s\n", r.problems[i].message);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.unindexed_packs, 0);
	repo_verify_report_free(&r);
}

/* Every object of the repository with its size, as one string (for "nothing changed"). */
static char *
snapshot(Fixture *f)
{
	RepoKeyList l;
	Buf b = PV_BUF_INIT;

	assert_int_equal(repo_keylist_get(&l, repo_storage(f->repo), ""), 0);
	for (size_t i = 0; i < l.n; i++)
		buf_printf(&b, "%s %llu\n", l.keys[i], (unsigned long long) l.info[i].size);
	repo_keylist_free(&l);
	return buf_detach(&b);
}

static size_t
count(Fixture *f, const char *prefix)
{
	RepoKeyList l;
	size_t n;

	assert_int_equal(repo_keylist_get(&l, repo_storage(f->repo), prefix), 0);
	n = l.n;
	repo_keylist_free(&l);
	return n;
}

/* Is the first chunk of item name of backup id (read before it went) still indexed? */
static void
first_chunk(Fixture *f, const char *id, const char *name, unsigned char out[REPO_ID_LEN])
{
	RepoManifest *m = NULL;
	RepoItem *item = NULL;

	assert_int_equal(repo_manifest_load(&m, f->repo, id), 0);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, name), 0);
	memcpy(out, item->chunks[0].id, REPO_ID_LEN);
	repo_item_free(item);
	repo_manifest_free(m);
}

static bool
indexed(Fixture *f, const unsigned char id[REPO_ID_LEN])
{
	RepoIndex *idx;

	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	return repo_index_lookup(idx, id, NULL);
}

static RepoPruneResult
prune(Fixture *f, int threshold, bool dry_run)
{
	RepoPruneResult r;

	assert_int_equal(repo_prune(f->repo, &(RepoPruneOpts) {.repack_threshold = threshold,
		.dry_run = dry_run, .lock = true}, &r), 0);
	return r;
}

static void
test_expired_data_goes(void **state)
{
	Fixture *f = *state;
	char a[REPO_BACKUP_ID_LEN + 1], b[REPO_BACKUP_ID_LEN + 1];
	unsigned char xchunk[REPO_ID_LEN], ychunk[REPO_ID_LEN];
	size_t packs_before;
	RepoPruneResult r;

	backup_two(f, f->x, NULL, a);
	backup_two(f, NULL, f->y, b);
	first_chunk(f, a, "x", xchunk);
	first_chunk(f, b, "y", ychunk);
	packs_before = count(f, "data/");
	assert_int_equal(repo_manifest_delete(f->repo, a), 0);
	reopen(f);

	r = prune(f, 50, false);
	assert_false(r.dry_run);
	assert_int_equal(r.backups, 1);
	assert_true(r.packs_deleted >= 2);		/* X is over 2 MiB in packs of 1 MiB */
	assert_int_equal(r.packs_unindexed, 0);
	assert_true(r.bytes_freed >= X_LEN);
	assert_true(r.index_files_deleted >= 1);
	assert_int_equal(count(f, "data/"), packs_before - r.packs_deleted - r.packs_repacked +
					 r.packs_written);
	assert_int_equal(count(f, "locks/"), 0);

	reopen(f);
	assert_false(indexed(f, xchunk));
	assert_true(indexed(f, ychunk));
	assert_verifies(f);
	assert_restores(f, b, "y", f->y, Y_LEN);

	/* nothing left to do */
	r = prune(f, 50, false);
	assert_int_equal(r.packs_deleted + r.packs_repacked + r.packs_unindexed, 0);
	assert_int_equal(r.index_files_deleted, 0);
	assert_int_equal(r.bytes_freed, 0);
}

static void
repack(Fixture *f)
{
	char a[REPO_BACKUP_ID_LEN + 1], b[REPO_BACKUP_ID_LEN + 1];
	unsigned char ychunk[REPO_ID_LEN];
	char *before;
	RepoPruneResult r;

	/* A: X and Y in one pack; B: X again (deduplicated) */
	backup_two(f, f->x, f->y, a);
	backup_two(f, f->x, NULL, b);
	first_chunk(f, a, "y", ychunk);
	assert_int_equal(repo_manifest_delete(f->repo, a), 0);
	reopen(f);
	before = snapshot(f);

	/* at 0 %: nothing is repacked; only A's tree blob (a pack of its own) is wholly dead */
	r = prune(f, 0, true);
	assert_int_equal(r.packs_repacked, 0);
	assert_int_equal(r.packs_deleted, 1);
	/* at 60 %, the pack that is half Y goes */
	r = prune(f, 60, true);
	assert_int_equal(r.packs_repacked, 1);
	assert_true(r.bytes_repacked >= X_LEN && r.bytes_repacked < X_LEN + Y_LEN);
	{
		char *after = snapshot(f);

		assert_string_equal(before, after);	/* dry runs */
		pv_free(after);
	}

	r = prune(f, 60, false);
	assert_int_equal(r.packs_repacked, 1);
	assert_int_equal(r.packs_written, 1);
	assert_true(r.bytes_freed >= Y_LEN - Y_LEN / 10);
	reopen(f);
	assert_false(indexed(f, ychunk));
	assert_verifies(f);
	assert_restores(f, b, "x", f->x, X_LEN);
	pv_free(before);
}

static void
test_repack(void **state)
{
	repack(*state);
}

static void
test_repack_encrypted(void **state)
{
	repack(*state);
}

static void
test_dry_run_changes_nothing(void **state)
{
	Fixture *f = *state;
	char a[REPO_BACKUP_ID_LEN + 1], b[REPO_BACKUP_ID_LEN + 1];
	char *before, *after;
	RepoPruneResult r;
	json_t *j;

	backup_two(f, f->x, NULL, a);
	backup_two(f, NULL, f->y, b);
	assert_int_equal(repo_manifest_delete(f->repo, a), 0);
	reopen(f);
	before = snapshot(f);
	r = prune(f, 50, true);
	after = snapshot(f);
	assert_string_equal(before, after);
	assert_true(r.dry_run);
	assert_true(r.packs_deleted >= 2);
	assert_true(r.bytes_freed >= X_LEN);
	j = repo_prune_result_json(&r);
	assert_true(json_is_true(json_object_get(j, "dry_run")));
	assert_int_equal(json_integer_value(json_object_get(j, "packs_deleted")), r.packs_deleted);
	json_decref(j);
	pv_free(before);
	pv_free(after);
}

static void
test_shared_lock_refuses(void **state)
{
	Fixture *f = *state;
	char a[REPO_BACKUP_ID_LEN + 1], b[REPO_BACKUP_ID_LEN + 1];
	char *before, *after;
	RepoLock *lock = NULL;
	RepoPruneResult r;
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;
	Repo *other = NULL;

	backup_two(f, f->x, NULL, a);
	assert_int_equal(repo_manifest_delete(f->repo, a), 0);
	reopen(f);
	before = snapshot(f);

	/* another holder of a shared lock (what backup, restore and verify take) */
	assert_int_equal(repo_open(&other, f->url, rt_passphrase, NULL), 0);
	assert_int_equal(repo_lock_acquire(&lock, other, false), 0);
	assert_int_equal(repo_prune(f->repo, &(RepoPruneOpts) {.repack_threshold = 50, .lock = true},
								&r), PV_ELOCKED);
	assert_int_equal(pv_error_exit_status(PV_ELOCKED), 4);
	assert_non_null(strstr(pv_error_hint_msg(), "wait for the backups"));
	repo_lock_release(lock);
	after = snapshot(f);
	assert_string_equal(before, after);
	pv_free(after);

	/* a backup running at the time: prune refuses, the backup completes and is whole */
	assert_int_equal(repo_writer_new(&w, other, &(RepoWriterOpts) {.kind = "file", .jobs = 2}), 0);
	assert_int_equal(repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = "y"}), 0);
	assert_int_equal(repo_writer_item_write(it, f->y, Y_LEN), 0);
	assert_int_equal(repo_prune(f->repo, &(RepoPruneOpts) {.repack_threshold = 50, .lock = true},
								&r), PV_ELOCKED);
	assert_int_equal(repo_writer_item_end(it, NULL), 0);
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	snprintf(b, sizeof(b), "%s", repo_writer_id(w));
	repo_writer_free(w);
	repo_free(other);

	/* now it runs, and the new backup keeps its data */
	r = prune(f, 50, false);
	assert_true(r.packs_deleted >= 2);
	reopen(f);
	assert_verifies(f);
	assert_restores(f, b, "y", f->y, Y_LEN);
	pv_free(before);
}

static void
test_leftovers_removed(void **state)
{
	Fixture *f = *state;
	char b[REPO_BACKUP_ID_LEN + 1];
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;
	char *old_tmp, *new_tmp;
	struct timeval tv[2];
	RepoPruneResult r;
	size_t packs_kept;

	backup_two(f, NULL, f->y, b);
	packs_kept = count(f, "data/");
	/* a backup that wrote packs and never got to its manifest */
	assert_int_equal(repo_writer_new(&w, f->repo, &(RepoWriterOpts) {.kind = "file", .jobs = 2}), 0);
	assert_int_equal(repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = "x"}), 0);
	assert_int_equal(repo_writer_item_write(it, f->x, X_LEN), 0);
	assert_int_equal(repo_writer_item_end(it, NULL), 0);
	repo_writer_abort(w);
	repo_writer_free(w);
	assert_true(count(f, "data/") > packs_kept);
	/* temp files a crash left: one old, one that a writer may still be renaming */
	old_tmp = pv_fs_path_join(f->url, "data/00.tmp.0123456789abcdef");
	new_tmp = pv_fs_path_join(f->url, "index/ab.tmp.fedcba9876543210");
	assert_int_equal(pv_fs_write_atomic(old_tmp, "x", 1, 0600), 0);
	assert_int_equal(pv_fs_write_atomic(new_tmp, "y", 1, 0600), 0);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= 2 * 24 * 3600;
	tv[1] = tv[0];
	assert_int_equal(utimes(old_tmp, tv), 0);
	reopen(f);

	r = prune(f, 50, false);
	assert_true(r.packs_deleted + r.packs_unindexed >= 1);
	assert_int_equal(r.tmp_deleted, 1);
	assert_int_equal(access(old_tmp, F_OK), -1);
	assert_int_equal(access(new_tmp, F_OK), 0);
	assert_int_equal(count(f, "data/"), packs_kept);
	reopen(f);
	assert_verifies(f);
	assert_restores(f, b, "y", f->y, Y_LEN);
	pv_free(old_tmp);
	pv_free(new_tmp);
}

static int
delete_cb(const char *key, const StorageInfo *info, void *payload)
{
	return storage_delete(payload, key);
}

static void
test_damaged_repository_stops_prune(void **state)
{
	Fixture *f = *state;
	char a[REPO_BACKUP_ID_LEN + 1], b[REPO_BACKUP_ID_LEN + 1];
	char *before, *after;
	RepoPruneResult r;

	backup_two(f, f->x, NULL, a);
	backup_two(f, NULL, f->y, b);
	assert_int_equal(repo_manifest_delete(f->repo, a), 0);
	/* the index is lost: every pack looks unindexed, so prune must not guess */
	assert_int_equal(storage_list(repo_storage(f->repo), "index/", delete_cb,
								  repo_storage(f->repo)), 0);
	reopen(f);
	before = snapshot(f);
	assert_int_equal(repo_prune(f->repo, &(RepoPruneOpts) {.repack_threshold = 50, .lock = true},
								&r), PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "prune stopped before deleting anything"));
	assert_non_null(strstr(pv_error_msg(), b));
	after = snapshot(f);
	assert_string_equal(before, after);
	assert_int_equal(count(f, "locks/"), 0);
	pv_free(before);
	pv_free(after);
}

static void
test_bad_threshold(void **state)
{
	Fixture *f = *state;
	RepoPruneResult r;

	assert_int_equal(repo_prune(f->repo, &(RepoPruneOpts) {.repack_threshold = 101}, &r),
					 PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "repack threshold 101% is not between 0% and 100%");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expired_data_goes, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_repack, setup_big_packs, teardown),
		cmocka_unit_test_setup_teardown(test_repack_encrypted, setup_big_packs_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_changes_nothing, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_shared_lock_refuses, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_leftovers_removed, setup_small_packs, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_repository_stops_prune, setup_small_packs,
										teardown),
		cmocka_unit_test_setup_teardown(test_bad_threshold, setup_small_packs, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
