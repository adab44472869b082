/*
 * test_verify.c: repo_verify and repo_rebuild_index on real repositories
 * (posix driver in a scratch directory): a clean repository verifies; a
 * flipped byte in a pack is found and names the chunk, its pack and exactly
 * the backups that need it; a truncated pack, a missing pack and missing
 * index files are reported with the backups affected; a damaged index file
 * is named; --quick reads no pack data; verifying one backup checks only
 * its packs; rebuild-index brings a lost index back.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/index.h"
#include "repo/maint.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/rebuild.h"
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
#include <unistd.h>

#define MiB (1024u * 1024u)

typedef struct Fixture
{
	char *dir;
	char *url;
	Repo *repo;
	bool encrypted;
	char ids[3][REPO_BACKUP_ID_LEN + 1];	/* A and B share data X; C has data Y */
	unsigned char *x;
	unsigned char *y;
} Fixture;

#define X_LEN (3 * MiB + 123)
#define Y_LEN (2 * MiB + 7)

/*
 * Three backups: A and B of the same data X (B deduplicates against A), C
 * of other data Y.  Packs are small so the data spreads over several.
 */
static int
setup_common(void **state, bool encrypted)
{
	Fixture *f = PV_NEW(Fixture);
	Repo *w;

	f->encrypted = encrypted;
	f->dir = rt_tmpdir();
	f->x = pv_malloc(X_LEN);
	f->y = pv_malloc(Y_LEN);
	rt_fill_random(f->x, X_LEN, 1);
	rt_fill_text(f->y, Y_LEN, 2);
	w = rt_repo_new(f->dir, "repo", encrypted, "zstd:3", 1 * MiB, &f->url);
	rt_backup_one(w, "x", f->x, X_LEN, 65536, 0, f->ids[0], NULL);
	rt_backup_one(w, "x", f->x, X_LEN, 65536, 0, f->ids[1], NULL);
	rt_backup_one(w, "y", f->y, Y_LEN, 65536, 0, f->ids[2], NULL);
	repo_free(w);
	/* A fresh handle: nothing cached from the writes. */
	assert_int_equal(repo_open(&f->repo, f->url, rt_passphrase,
							   encrypted ? (void *) RT_PASS : NULL), 0);
	*state = f;
	return 0;
}

static int
setup_plain(void **state)
{
	return setup_common(state, false);
}

static int
setup_encrypted(void **state)
{
	return setup_common(state, true);
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

/* Reopen the repository (after damage, so no handle caches the old index). */
static void
reopen(Fixture *f)
{
	repo_free(f->repo);
	assert_int_equal(repo_open(&f->repo, f->url, rt_passphrase,
							   f->encrypted ? (void *) RT_PASS : NULL), 0);
}

static RepoVerifyReport
verify_all(Fixture *f, bool quick)
{
	RepoVerifyOpts opts = {.quick = quick, .jobs = 2, .lock = true};
	RepoVerifyReport r;

	assert_int_equal(repo_verify(f->repo, &opts, &r), 0);
	return r;
}

/* The first data chunk of item name in backup id. */
static void
first_chunk(Fixture *f, const char *id, const char *name, unsigned char out[REPO_ID_LEN])
{
	RepoManifest *m = NULL;
	RepoItem *item = NULL;

	assert_int_equal(repo_manifest_load(&m, f->repo, id), 0);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, name), 0);
	assert_true(item->nchunks > 0);
	memcpy(out, item->chunks[0].id, REPO_ID_LEN);
	repo_item_free(item);
	repo_manifest_free(m);
}

static char *
pack_path(Fixture *f, const unsigned char *pack_id)
{
	char key[REPO_PACK_KEY_MAX];

	repo_pack_key(key, pack_id);
	return pv_fs_path_join(f->url, key);
}

static void
flip_byte(const char *path, uint64_t offset)
{
	Buf b = PV_BUF_INIT;

	assert_int_equal(pv_fs_read_file(path, &b), 0);
	assert_true(offset < b.len);
	b.data[offset] ^= 0x40;
	assert_int_equal(pv_fs_write_atomic(path, b.data, b.len, 0600), 0);
	buf_free(&b);
}

static const RepoVerifyProblem *
problem_find(const RepoVerifyReport *r, RepoVerifyProblemType type, const char *object)
{
	for (size_t i = 0; i < r->nproblems; i++)
		if (r->problems[i].type == type && strcmp(r->problems[i].object, object) == 0)
			return &r->problems[i];
	return NULL;
}

static const RepoVerifyBackup *
backup_find(const RepoVerifyReport *r, const char *id)
{
	for (size_t i = 0; i < r->nbackups; i++)
		if (strcmp(r->backups[i].id, id) == 0)
			return &r->backups[i];
	return NULL;
}

/* The problem names exactly A and B (which share X), and C is fine. */
static void
assert_affects_a_b(const Fixture *f, const RepoVerifyReport *r, const RepoVerifyProblem *p)
{
	assert_int_equal(p->nbackups, 2);
	assert_true(strcmp(p->backups[0], p->backups[1]) < 0);	/* sorted */
	assert_true((strcmp(p->backups[0], f->ids[0]) == 0 && strcmp(p->backups[1], f->ids[1]) == 0) ||
				(strcmp(p->backups[0], f->ids[1]) == 0 && strcmp(p->backups[1], f->ids[0]) == 0));
	assert_true(backup_find(r, f->ids[0])->damaged);
	assert_true(backup_find(r, f->ids[1])->damaged);
	assert_false(backup_find(r, f->ids[2])->damaged);
	assert_int_equal(r->ndamaged, 2);
}

static void
test_clean_repository(void **state)
{
	Fixture *f = *state;
	RepoVerifyReport r = verify_all(f, false);
	json_t *j;

	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.nproblems, 0);
	assert_int_equal(r.nbackups, 3);
	assert_true(r.packs >= 3);
	assert_true(r.blobs >= 8);			/* X: >= 3 chunks, Y: >= 2, 3 tree blobs */
	assert_int_equal(r.unindexed_packs, 0);
	for (size_t i = 0; i < 3; i++)
	{
		assert_false(r.backups[i].damaged);
		assert_int_equal(r.backups[i].items, 1);
		assert_string_equal(r.backups[i].kind, "file");
		assert_string_equal(r.backups[i].source, "test");
	}
	j = repo_verify_report_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
	assert_int_equal(json_array_size(json_object_get(j, "backups")), 3);
	json_decref(j);
	repo_verify_report_free(&r);

	r = verify_all(f, true);
	assert_true(repo_verify_report_ok(&r));
	assert_true(r.quick);
	repo_verify_report_free(&r);
}

static void
flipped_byte(Fixture *f)
{
	unsigned char chunk[REPO_ID_LEN];
	char hex[2 * REPO_ID_LEN + 1], phex[2 * REPO_ID_LEN + 1], *path, *want;
	RepoIndex *idx;
	RepoIndexHit hit;
	RepoVerifyReport r;
	const RepoVerifyProblem *p;
	json_t *j;

	first_chunk(f, f->ids[0], "x", chunk);
	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	assert_true(repo_index_lookup(idx, chunk, &hit));
	repo_id_hex(hex, chunk);
	repo_id_hex(phex, hit.pack_id);
	path = pack_path(f, hit.pack_id);
	flip_byte(path, hit.offset + hit.length / 2);
	reopen(f);

	r = verify_all(f, false);
	assert_false(repo_verify_report_ok(&r));
	/* the pack as a whole: its name no longer matches */
	assert_non_null(p = problem_find(&r, REPO_VERIFY_PACK, phex));
	want = pv_asprintf("pack %s does not match its name: its content has been changed", phex);
	assert_string_equal(p->message, want);
	pv_free(want);
	/* the chunk, by id and pack, with the backups that need it */
	assert_non_null(p = problem_find(&r, REPO_VERIFY_CHUNK, hex));
	assert_string_equal(p->pack, phex);
	assert_false(p->tree);
	want = pv_asprintf("chunk %s in pack %s is corrupt: ", hex, phex);
	assert_memory_equal(p->message, want, strlen(want));
	pv_free(want);
	if (f->encrypted)
		assert_non_null(strstr(p->message, "authentication failed"));
	assert_affects_a_b(f, &r, p);
	assert_int_equal(backup_find(&r, f->ids[0])->bad_chunks, 1);
	/* only that chunk: the rest of the pack is fine */
	assert_int_equal(r.nproblems, 2);
	j = repo_verify_report_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "corrupt");
	assert_int_equal(json_integer_value(json_object_get(j, "damaged_backups")), 2);
	json_decref(j);
	repo_verify_report_free(&r);

	/* quick does not read pack data, so it cannot see this */
	r = verify_all(f, true);
	assert_true(repo_verify_report_ok(&r));
	repo_verify_report_free(&r);
	pv_free(path);
}

static void
test_flipped_byte_plain(void **state)
{
	flipped_byte(*state);
}

static void
test_flipped_byte_encrypted(void **state)
{
	flipped_byte(*state);
}

static void
test_truncated_pack(void **state)
{
	Fixture *f = *state;
	unsigned char chunk[REPO_ID_LEN];
	char phex[2 * REPO_ID_LEN + 1], *path;
	RepoIndex *idx;
	RepoIndexHit hit;
	RepoVerifyReport r;
	const RepoVerifyProblem *p;
	bool found_cut = false;

	first_chunk(f, f->ids[0], "x", chunk);
	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	assert_true(repo_index_lookup(idx, chunk, &hit));
	repo_id_hex(phex, hit.pack_id);
	path = pack_path(f, hit.pack_id);
	/* cut inside the chunk: it and everything after it are gone */
	assert_int_equal(truncate(path, hit.offset + hit.length / 2), 0);
	reopen(f);

	r = verify_all(f, false);
	assert_false(repo_verify_report_ok(&r));
	assert_non_null(p = problem_find(&r, REPO_VERIFY_PACK, phex));
	for (size_t i = 0; i < r.nproblems; i++)
	{
		const RepoVerifyProblem *c = &r.problems[i];

		if (c->type == REPO_VERIFY_CHUNK && c->pack != NULL && strcmp(c->pack, phex) == 0 &&
			strstr(c->message, "is cut off") != NULL)
			found_cut = true;
	}
	assert_true(found_cut);
	p = problem_find(&r, REPO_VERIFY_CHUNK, "0000000000000000000000000000000000000000000000000000000000000000");
	assert_null(p);
	{
		char hex[2 * REPO_ID_LEN + 1];

		repo_id_hex(hex, chunk);
		assert_non_null(p = problem_find(&r, REPO_VERIFY_CHUNK, hex));
		assert_affects_a_b(f, &r, p);
	}
	repo_verify_report_free(&r);

	/* quick sees it from the size alone */
	r = verify_all(f, true);
	assert_false(repo_verify_report_ok(&r));
	assert_non_null(p = problem_find(&r, REPO_VERIFY_PACK, phex));
	assert_non_null(strstr(p->message, "is truncated"));
	repo_verify_report_free(&r);
	pv_free(path);
}

static void
test_missing_pack(void **state)
{
	Fixture *f = *state;
	unsigned char chunk[REPO_ID_LEN];
	char phex[2 * REPO_ID_LEN + 1], *path, *want;
	RepoIndex *idx;
	RepoIndexHit hit;
	RepoVerifyReport r;
	const RepoVerifyProblem *p;

	first_chunk(f, f->ids[0], "x", chunk);
	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	assert_true(repo_index_lookup(idx, chunk, &hit));
	repo_id_hex(phex, hit.pack_id);
	path = pack_path(f, hit.pack_id);
	assert_int_equal(unlink(path), 0);
	reopen(f);

	for (int quick = 0; quick < 2; quick++)
	{
		r = verify_all(f, quick);
		assert_false(repo_verify_report_ok(&r));
		assert_non_null(p = problem_find(&r, REPO_VERIFY_PACK, phex));
		want = pv_asprintf("pack %s is missing: the index lists it, the storage does not have it",
						   phex);
		assert_string_equal(p->message, want);
		pv_free(want);
		assert_affects_a_b(f, &r, p);
		repo_verify_report_free(&r);
	}
	pv_free(path);
}

static int
delete_cb(const char *key, const StorageInfo *info, void *payload)
{
	return storage_delete(payload, key);
}

static void
test_missing_index(void **state)
{
	Fixture *f = *state;
	RepoVerifyReport r;
	RepoRebuildResult rr;
	size_t not_indexed = 0, named = 0;

	assert_int_equal(storage_list(repo_storage(f->repo), "index/", delete_cb,
								  repo_storage(f->repo)), 0);
	reopen(f);

	r = verify_all(f, false);
	assert_false(repo_verify_report_ok(&r));
	assert_int_equal(r.index_files, 0);
	assert_int_equal(r.ndamaged, 3);
	assert_true(r.unindexed_packs >= 3);
	for (size_t i = 0; i < r.nproblems; i++)
	{
		const RepoVerifyProblem *p = &r.problems[i];

		if (p->type == REPO_VERIFY_CHUNK)
		{
			/* the tree blobs: nothing else can be known without them */
			assert_true(p->tree);
			assert_null(p->pack);
			assert_non_null(strstr(p->message, "is not in the index"));
			named += p->nbackups;
			not_indexed++;
		}
		else
			assert_int_equal(p->type, REPO_VERIFY_MANIFEST);
	}
	/* A and B have the same item list, so the same tree blob */
	assert_int_equal(not_indexed, 2);
	assert_int_equal(named, 3);
	for (size_t i = 0; i < 3; i++)
	{
		const RepoVerifyBackup *b = backup_find(&r, f->ids[i]);

		assert_true(b->damaged);
		assert_non_null(b->error);
		assert_non_null(strstr(b->error, "is not in the index"));
	}
	repo_verify_report_free(&r);

	/* rebuild-index brings it back from the pack headers */
	assert_int_equal(repo_rebuild_index(f->repo, &(RepoRebuildOpts) {.jobs = 2, .lock = true},
										&rr), 0);
	assert_int_equal(rr.bad_packs, 0);
	assert_int_equal(rr.old_files, 0);
	assert_int_equal(rr.new_files, 1);
	assert_true(rr.packs >= 3);
	repo_rebuild_result_free(&rr);
	reopen(f);
	r = verify_all(f, false);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.unindexed_packs, 0);
	repo_verify_report_free(&r);
}

static int
first_key_cb(const char *key, const StorageInfo *info, void *payload)
{
	char **out = payload;

	if (*out == NULL)
		*out = pv_strdup(key);
	return 0;
}

static void
test_damaged_index_file(void **state)
{
	Fixture *f = *state;
	char *key = NULL, *path;
	RepoVerifyReport r;
	RepoRebuildResult rr;
	const RepoVerifyProblem *p;
	RepoKeyList before;

	assert_int_equal(repo_keylist_get(&before, repo_storage(f->repo), "index/"), 0);
	assert_true(before.n >= 2);
	assert_int_equal(storage_list(repo_storage(f->repo), "index/", first_key_cb, &key), 0);
	assert_non_null(key);
	path = pv_fs_path_join(f->url, key);
	flip_byte(path, 20);
	reopen(f);

	r = verify_all(f, false);
	assert_false(repo_verify_report_ok(&r));
	assert_non_null(p = problem_find(&r, REPO_VERIFY_INDEX, key));
	assert_non_null(strstr(p->message, "does not match its name"));
	repo_verify_report_free(&r);

	/* rebuild replaces every index file, the damaged one included */
	assert_int_equal(repo_rebuild_index(f->repo, &(RepoRebuildOpts) {.lock = true}, &rr), 0);
	assert_int_equal(rr.old_files, before.n);
	repo_keylist_free(&before);
	repo_rebuild_result_free(&rr);
	reopen(f);
	r = verify_all(f, false);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.index_files, 1);
	repo_verify_report_free(&r);
	pv_free(key);
	pv_free(path);
}

/* Verifying backup C reads only C's packs: damage in X's packs is not its business. */
static void
test_verify_one_backup(void **state)
{
	Fixture *f = *state;
	unsigned char chunk[REPO_ID_LEN];
	RepoIndex *idx;
	RepoIndexHit hit;
	RepoVerifyReport r;
	const char *only_c[] = {f->ids[2]};
	const char *only_a[] = {f->ids[0]};
	char *path;

	first_chunk(f, f->ids[0], "x", chunk);
	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	assert_true(repo_index_lookup(idx, chunk, &hit));
	path = pack_path(f, hit.pack_id);
	flip_byte(path, hit.offset + 1);
	reopen(f);

	assert_int_equal(repo_verify(f->repo, &(RepoVerifyOpts) {.backups = only_c, .nbackups = 1},
								 &r), 0);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.nbackups, 1);
	assert_string_equal(r.backups[0].id, f->ids[2]);
	repo_verify_report_free(&r);

	assert_int_equal(repo_verify(f->repo, &(RepoVerifyOpts) {.backups = only_a, .nbackups = 1},
								 &r), 0);
	assert_false(repo_verify_report_ok(&r));
	assert_int_equal(r.ndamaged, 1);
	repo_verify_report_free(&r);

	/* an unknown backup is an error, not a report */
	{
		const char *bad[] = {"20200101T000000Z-000000"};

		assert_int_equal(repo_verify(f->repo, &(RepoVerifyOpts) {.backups = bad, .nbackups = 1},
									 &r), PV_ENOTFOUND);
		assert_non_null(strstr(pv_error_msg(), "no backup '20200101T000000Z-000000'"));
	}
	pv_free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean_repository, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_plain, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_encrypted, setup_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_pack, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_missing_pack, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_missing_index, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_index_file, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_verify_one_backup, setup_plain, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
