/*
 * test_copy.c: repo_copy_* between two real repositories (posix driver in
 * a scratch directory): plain -> plain (ids kept, the manifest copied as
 * it is), plain -> encrypted, encrypted -> encrypted with other keys and
 * encrypted -> plain (ids recomputed, the item list rewritten); every copy
 * restores bit-exact from the destination and verifies clean.  Also: a
 * second copy copies nothing; an incremental copy with recomputed ids reads
 * only the new chunks (seeding); a list of thousands of items spans several
 * tree blobs and keeps every member; a corrupt or missing chunk in the
 * source fails with a message naming it and leaves no manifest; a dry run
 * writes nothing; the WAL archive (objects read back by pg/wal's own
 * reader), archive.info conflicts, and lag records.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/mem.h"
#include "cli/commands.h"
#include "cli/copy.h"
#include "config/config.h"
#include "pg/wal/archive.h"
#include "repo/blob.h"
#include "repo/copy.h"
#include "repo/index.h"
#include "repo/maint.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "repo/verify.h"
#include "repo/writer.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#include <getopt.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define X_LEN (3 * MiB + 123)
#define Y_LEN (2 * MiB + 7)
#define Y_CHUNK (256u * 1024)

typedef struct Fixture
{
	char *dir;
	char *url_a;
	char *url_b;
	bool enc_a;
	bool enc_b;
	Repo *a;
	Repo *b;
	unsigned char *x;
	unsigned char *y;
} Fixture;

static int
setup_common(void **state, bool enc_a, bool enc_b)
{
	Fixture *f = PV_NEW(Fixture);

	f->enc_a = enc_a;
	f->enc_b = enc_b;
	f->dir = rt_tmpdir();
	/* Small packs so a backup spreads over several; other codecs on each side. */
	f->a = rt_repo_new(f->dir, "a", enc_a, "zstd:3", 1 * MiB, &f->url_a);
	f->b = rt_repo_new(f->dir, "b", enc_b, "lz4", 4 * MiB, &f->url_b);
	f->x = pv_malloc(X_LEN);
	f->y = pv_malloc(Y_LEN);
	rt_fill_random(f->x, X_LEN, 21);
	rt_fill_text(f->y, Y_LEN, 22);
	*state = f;
	return 0;
}

static int
setup_plain_plain(void **state)
{
	return setup_common(state, false, false);
}

static int
setup_plain_enc(void **state)
{
	return setup_common(state, false, true);
}

static int
setup_enc_enc(void **state)
{
	return setup_common(state, true, true);
}

static int
setup_enc_plain(void **state)
{
	return setup_common(state, true, false);
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	repo_free(f->a);
	repo_free(f->b);
	rt_tmpdir_free(f->dir);
	pv_free(f->url_a);
	pv_free(f->url_b);
	pv_free(f->x);
	pv_free(f->y);
	pv_free(f);
	return 0;
}

/* Open a repository of the fixture again (a fresh index, as a new process would). */
static void
reopen(Repo **r, const char *url, bool enc)
{
	repo_free(*r);
	*r = NULL;
	assert_int_equal(repo_open(r, url, rt_passphrase, enc ? (void *) RT_PASS : NULL), 0);
}

static Repo *
rt_repo_open_plain(const char *url)
{
	Repo *r = NULL;

	assert_int_equal(repo_open(&r, url, rt_passphrase, NULL), 0);
	return r;
}

/* One backup of x (content-defined) and y (fixed 256 KiB chunks, with metadata). */
static void
backup_xy(Repo *repo, const unsigned char *x, size_t xlen, const unsigned char *y, size_t ylen,
		  char id[REPO_BACKUP_ID_LEN + 1])
{
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;
	json_t *meta = json_pack("{s:s, s:I, s:[i, i]}", "table", "public.orders", "rows",
							 (json_int_t) 123456, "range", 0, 42);
	json_t *md = json_pack("{s:s}", "system_identifier", "7310382938574649347");

	assert_int_equal(repo_writer_new(&w, repo, &(RepoWriterOpts) {.kind = "file",
									 .source = "main", .jobs = 2}), 0);
	if (x != NULL)
	{
		assert_int_equal(repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = "x",
											   .type = "file", .has_mode = true, .mode = 0640,
											   .mtime = 1763777940}), 0);
		assert_int_equal(repo_writer_item_write(it, x, xlen), 0);
		assert_int_equal(repo_writer_item_end(it, NULL), 0);
	}
	assert_int_equal(repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = "data/y/0",
										   .chunk_size = Y_CHUNK, .meta = meta}), 0);
	assert_int_equal(repo_writer_item_write(it, y, ylen), 0);
	assert_int_equal(repo_writer_item_end(it, NULL), 0);
	assert_int_equal(repo_writer_commit(w, md), 0);
	snprintf(id, REPO_BACKUP_ID_LEN + 1, "%s", repo_writer_id(w));
	repo_writer_free(w);
	json_decref(meta);
	json_decref(md);
}

static void
assert_item_equals(Repo *repo, const char *id, const char *name, const unsigned char *data,
				   size_t len)
{
	Buf out = PV_BUF_INIT;
	int rc = rt_read_item(repo, id, name, &out, 2);

	if (rc != 0)
		fail_msg("reading item '%s' of backup %s from '%s': %s", name, id, repo_url(repo),
				 pv_error_msg());
	assert_int_equal(out.len, len);
	assert_memory_equal(out.data, data, len);
	buf_free(&out);
}

static void
assert_verify_clean(Repo *repo)
{
	RepoVerifyReport r;

	assert_int_equal(repo_verify(repo, &(RepoVerifyOpts) {.jobs = 2}, &r), 0);
	if (!repo_verify_report_ok(&r))
		fail_msg("verify of '%s' found %zu problems, first: %s", repo_url(repo), r.nproblems,
				 r.nproblems ? r.problems[0].message : "?");
	repo_verify_report_free(&r);
}

static size_t
backup_count(Repo *repo)
{
	char **ids = NULL;
	size_t n = 0;

	assert_int_equal(repo_manifest_ids(repo, &ids, &n), 0);
	repo_manifest_ids_free(ids, n);
	return n;
}

static size_t
objects_under(Repo *repo, const char *prefix)
{
	RepoKeyList l;
	size_t n;

	assert_int_equal(repo_keylist_get(&l, repo_storage(repo), prefix), 0);
	n = l.n;
	repo_keylist_free(&l);
	return n;
}

/* ---- backups ---- */

static void
test_copy_roundtrip(void **state)
{
	Fixture *f = *state;
	bool recomputed = f->enc_a || f->enc_b;
	char id[REPO_BACKUP_ID_LEN + 1];
	RepoCopyStats st;
	RepoManifest *ma = NULL, *mb = NULL;
	RepoItem *ya = NULL, *yb = NULL;
	const RepoTreeRef *ta, *tb;
	size_t nta, ntb;

	backup_xy(f->a, f->x, X_LEN, f->y, Y_LEN, id);
	assert_int_equal(repo_copy_backup(f->a, f->b, id, &(RepoCopyOpts) {.jobs = 2}, &st), 0);
	assert_int_equal(st.backups, 1);
	assert_int_equal(st.backups_present, 0);
	assert_int_equal(st.blobs_present, 0);
	assert_int_equal(st.blobs_written, st.blobs);
	assert_true(st.blobs >= 3 + Y_LEN / Y_CHUNK + 1);	/* x: >= 3 chunks, y: 9, 1 tree blob */
	assert_true(st.bytes_read > 0 && st.bytes_written > 0 && st.packs >= 2);
	assert_true(st.raw_bytes_written >= X_LEN + Y_LEN);

	/* the locks are gone, and a fresh reader of B restores both items bit-exact */
	assert_int_equal(objects_under(f->a, "locks/"), 0);
	assert_int_equal(objects_under(f->b, "locks/"), 0);
	reopen(&f->b, f->url_b, f->enc_b);
	assert_item_equals(f->b, id, "x", f->x, X_LEN);
	assert_item_equals(f->b, id, "data/y/0", f->y, Y_LEN);
	assert_verify_clean(f->b);

	/* the same backup: id, kind, source, times, metadata, items and their members */
	assert_int_equal(repo_manifest_load(&ma, f->a, id), 0);
	assert_int_equal(repo_manifest_load(&mb, f->b, id), 0);
	assert_string_equal(repo_manifest_kind(mb), "file");
	assert_string_equal(repo_manifest_source(mb), "main");
	assert_int_equal(repo_manifest_start_time(mb), repo_manifest_start_time(ma));
	assert_int_equal(repo_manifest_item_count(mb), 2);
	assert_true(json_equal((json_t *) repo_manifest_metadata(ma),
						   (json_t *) repo_manifest_metadata(mb)));
	assert_true(json_equal((json_t *) repo_manifest_totals(ma),
						   (json_t *) repo_manifest_totals(mb)));
	ta = repo_manifest_tree(ma, &nta);
	tb = repo_manifest_tree(mb, &ntb);
	assert_int_equal(nta, ntb);
	assert_int_equal(ta[0].raw_length, tb[0].raw_length);
	if (recomputed)
		assert_memory_not_equal(ta[0].id, tb[0].id, REPO_ID_LEN);
	else
		assert_true(json_equal((json_t *) repo_manifest_json(ma),
							   (json_t *) repo_manifest_json(mb)));
	assert_int_equal(repo_manifest_find_item(&ya, f->a, ma, "data/y/0"), 0);
	assert_int_equal(repo_manifest_find_item(&yb, f->b, mb, "data/y/0"), 0);
	assert_true(json_equal(ya->meta, yb->meta));
	assert_int_equal(yb->chunk_size, Y_CHUNK);
	assert_memory_equal(ya->sha256, yb->sha256, 32);
	assert_int_equal(ya->nchunks, yb->nchunks);
	if (recomputed)
		assert_memory_not_equal(ya->chunks[0].id, yb->chunks[0].id, REPO_ID_LEN);
	else
		assert_memory_equal(ya->chunks[0].id, yb->chunks[0].id, REPO_ID_LEN);
	repo_item_free(ya);
	repo_item_free(yb);
	repo_manifest_free(ma);
	repo_manifest_free(mb);

	/* again: nothing to do, nothing read */
	assert_int_equal(repo_copy_backup(f->a, f->b, id, NULL, &st), 0);
	assert_int_equal(st.backups, 0);
	assert_int_equal(st.backups_present, 1);
	assert_int_equal(st.blobs_written, 0);
	assert_int_equal(st.bytes_read, 0);
	assert_int_equal(backup_count(f->b), 1);
}

/* A second backup sharing x: only the new chunks are read and written. */
static void
test_copy_incremental(void **state)
{
	Fixture *f = *state;
	char id1[REPO_BACKUP_ID_LEN + 1], id2[REPO_BACKUP_ID_LEN + 1];
	unsigned char *y2 = pv_malloc(Y_LEN);
	RepoCopyStats st;

	backup_xy(f->a, f->x, X_LEN, f->y, Y_LEN, id1);
	assert_int_equal(repo_copy_backup(f->a, f->b, id1, NULL, NULL), 0);
	memcpy(y2, f->y, Y_LEN);
	memset(y2 + 10, 'z', 1000);			/* only y's first chunk changes */
	sleep(1);								/* backup ids are per second */
	backup_xy(f->a, f->x, X_LEN, y2, Y_LEN, id2);
	reopen(&f->a, f->url_a, f->enc_a);
	reopen(&f->b, f->url_b, f->enc_b);	/* a new process: the id map must be learnt */
	assert_int_equal(repo_copy_backup(f->a, f->b, id2, &(RepoCopyOpts) {.jobs = 2}, &st), 0);
	assert_int_equal(st.backups, 1);
	/* written: y's first chunk and the tree blob; the rest was there */
	assert_int_equal(st.blobs_written, 2);
	assert_int_equal(st.blobs_present, st.blobs - 2);
	assert_true(st.bytes_read < 2 * MiB);	/* y's first chunk, the tree, never x */
	assert_item_equals(f->b, id2, "x", f->x, X_LEN);
	assert_item_equals(f->b, id2, "data/y/0", y2, Y_LEN);
	assert_item_equals(f->b, id1, "data/y/0", f->y, Y_LEN);
	assert_verify_clean(f->b);
	pv_free(y2);
}

/* Thousands of items: several tree blobs, rewritten with every member kept. */
static void
test_copy_many_items(void **state)
{
	Fixture *f = *state;
	RepoWriter *w = NULL;
	RepoManifest *ma = NULL, *mb = NULL;
	RepoItemIter *ia = NULL, *ib = NULL;
	const RepoItem *a, *b;
	const RepoTreeRef *tb;
	size_t ntb, n = 0;
	char id[REPO_BACKUP_ID_LEN + 1];
	char pad[301];

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	assert_int_equal(repo_writer_new(&w, f->a, &(RepoWriterOpts) {.kind = "physical",
									 .source = "main", .jobs = 2}), 0);
	for (int i = 0; i < 4000; i++)
	{
		RepoWriterItem *it = NULL;
		char name[64];
		unsigned char data[64];
		json_t *meta = json_pack("{s:i, s:s}", "n", i, "pad", pad);

		snprintf(name, sizeof(name), "base/16384/%05d", i);
		rt_fill_random(data, sizeof(data), (uint64_t) i % 50);	/* dedups within the backup */
		assert_int_equal(repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = name,
											   .type = "file", .has_mode = true, .mode = 0600,
											   .mtime = i, .meta = meta}), 0);
		assert_int_equal(repo_writer_item_write(it, data, (size_t) (i % 64) + 1), 0);
		assert_int_equal(repo_writer_item_end(it, NULL), 0);
		json_decref(meta);
	}
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	snprintf(id, sizeof(id), "%s", repo_writer_id(w));
	repo_writer_free(w);

	assert_int_equal(repo_copy_backup(f->a, f->b, id, &(RepoCopyOpts) {.jobs = 2}, NULL), 0);
	assert_int_equal(repo_manifest_load(&ma, f->a, id), 0);
	assert_int_equal(repo_manifest_load(&mb, f->b, id), 0);
	tb = repo_manifest_tree(mb, &ntb);
	assert_true(ntb >= 2);
	(void) tb;
	assert_int_equal(repo_item_iter_new(&ia, f->a, ma), 0);
	assert_int_equal(repo_item_iter_new(&ib, f->b, mb), 0);
	while (repo_item_iter_next(ia, &a) == 0 && a != NULL)
	{
		assert_int_equal(repo_item_iter_next(ib, &b), 0);
		assert_non_null(b);
		assert_string_equal(a->name, b->name);
		assert_string_equal(a->type, b->type);
		assert_int_equal(a->size, b->size);
		assert_int_equal(a->mode, b->mode);
		assert_int_equal(a->mtime, b->mtime);
		assert_memory_equal(a->sha256, b->sha256, 32);
		assert_true(json_equal(a->meta, b->meta));
		assert_int_equal(a->nchunks, b->nchunks);
		n++;
	}
	assert_int_equal(n, 4000);
	assert_int_equal(repo_item_iter_next(ib, &b), 0);
	assert_null(b);
	repo_item_iter_free(ia);
	repo_item_iter_free(ib);
	repo_manifest_free(ma);
	repo_manifest_free(mb);
	{
		unsigned char data[64];

		rt_fill_random(data, sizeof(data), 3999 % 50);
		assert_item_equals(f->b, id, "base/16384/03999", data, 3999 % 64 + 1);
	}
}

/* ---- damage in the source ---- */

static void
first_chunk_hit(Repo *repo, const char *id, const char *name, unsigned char chunk[REPO_ID_LEN],
				RepoIndexHit *hit)
{
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	RepoIndex *idx;

	assert_int_equal(repo_manifest_load(&m, repo, id), 0);
	assert_int_equal(repo_manifest_find_item(&item, repo, m, name), 0);
	memcpy(chunk, item->chunks[0].id, REPO_ID_LEN);
	assert_int_equal(repo_index_get(repo, &idx), 0);
	assert_true(repo_index_lookup(idx, chunk, hit));
	repo_item_free(item);
	repo_manifest_free(m);
}

static char *
pack_path(const char *url, const unsigned char *pack_id)
{
	char key[REPO_PACK_KEY_MAX];

	repo_pack_key(key, pack_id);
	return pv_fs_path_join(url, key);
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

static void
test_copy_corrupt_chunk(void **state)
{
	Fixture *f = *state;
	char id1[REPO_BACKUP_ID_LEN + 1], id2[REPO_BACKUP_ID_LEN + 1];
	unsigned char chunk[REPO_ID_LEN];
	char hex[2 * REPO_ID_LEN + 1], phex[2 * REPO_ID_LEN + 1];
	RepoIndexHit hit;
	RepoCopy *c = NULL;
	RepoCopyStats st;
	char *path, *want;
	bool copied = true;

	backup_xy(f->a, f->x, X_LEN, f->y, Y_LEN, id1);
	sleep(1);
	backup_xy(f->a, NULL, 0, f->x, 1000, id2);	/* shares nothing with id1 but a tiny bit */
	first_chunk_hit(f->a, id1, "x", chunk, &hit);
	repo_id_hex(hex, chunk);
	repo_id_hex(phex, hit.pack_id);
	path = pack_path(f->url_a, hit.pack_id);
	flip_byte(path, hit.offset + hit.length / 2);
	reopen(&f->a, f->url_a, f->enc_a);

	assert_int_equal(repo_copy_begin(&c, f->a, f->b, &(RepoCopyOpts) {.jobs = 2}), 0);
	assert_int_equal(repo_copy_one(c, id1, &copied), PV_ECORRUPT);
	assert_false(copied);
	want = pv_asprintf("chunk %s in pack %s of repository '%s' is corrupt (backup %s): ", hex,
					   phex, repo_url(f->a), id1);
	assert_memory_equal(pv_error_msg(), want, strlen(want));
	if (f->enc_a)
		assert_non_null(strstr(pv_error_msg(), "authentication failed"));
	pv_free(want);
	assert_int_equal(backup_count(f->b), 0);
	/* the session goes on: another backup copies */
	assert_int_equal(repo_copy_one(c, id2, &copied), 0);
	assert_true(copied);
	repo_copy_stats(c, &st);
	assert_int_equal(st.backups, 1);
	repo_copy_end(c);
	assert_int_equal(backup_count(f->b), 1);
	assert_item_equals(f->b, id2, "data/y/0", f->x, 1000);
	assert_verify_clean(f->b);

	/* a missing pack is named too */
	assert_int_equal(unlink(path), 0);
	reopen(&f->a, f->url_a, f->enc_a);
	assert_int_equal(repo_copy_backup(f->a, f->b, id1, NULL, NULL), PV_ECORRUPT);
	want = pv_asprintf("pack %s holding chunk ", phex);
	assert_memory_equal(pv_error_msg(), want, strlen(want));
	assert_non_null(strstr(pv_error_msg(), "is missing from repository"));
	pv_free(want);
	assert_int_equal(backup_count(f->b), 1);
	pv_free(path);
}

static void
test_copy_dry_run_and_refusals(void **state)
{
	Fixture *f = *state;
	char id[REPO_BACKUP_ID_LEN + 1];
	RepoCopy *c = NULL;
	RepoCopyStats st;
	bool copied = true;

	backup_xy(f->a, f->x, X_LEN, f->y, Y_LEN, id);
	assert_int_equal(repo_copy_begin(&c, f->a, f->b, &(RepoCopyOpts) {.dry_run = true}), 0);
	assert_int_equal(repo_copy_one(c, id, &copied), 0);
	assert_false(copied);
	repo_copy_stats(c, &st);
	assert_int_equal(st.backups, 1);
	assert_int_equal(st.bytes_read, 0);
	assert_int_equal(st.blobs_written, 0);	/* ids recomputed: not knowable without reading */
	assert_true(st.blobs > 0);
	repo_copy_end(c);
	assert_int_equal(objects_under(f->b, "data/"), 0);
	assert_int_equal(objects_under(f->b, "index/"), 0);
	assert_int_equal(objects_under(f->b, "snapshots/"), 0);
	assert_int_equal(objects_under(f->b, "locks/"), 0);

	/* the same repository twice, a bad id */
	assert_int_equal(repo_copy_begin(&c, f->a, f->a, NULL), PV_EUSAGE);
	assert_non_null(strstr(pv_error_msg(), "are the same repository"));
	assert_int_equal(repo_copy_begin(&c, f->a, f->b, NULL), 0);
	assert_int_equal(repo_copy_one(c, "latest", NULL), PV_EUSAGE);
	assert_int_equal(repo_copy_one(c, "20200101T000000Z-000000", NULL), PV_ENOTFOUND);
	repo_copy_end(c);
	assert_int_equal(objects_under(f->b, "locks/"), 0);
}

static void
test_copy_dry_run_same_ids(void **state)
{
	Fixture *f = *state;
	char id[REPO_BACKUP_ID_LEN + 1];
	RepoCopy *c = NULL;
	RepoCopyStats st;

	backup_xy(f->a, f->x, X_LEN, f->y, Y_LEN, id);
	assert_int_equal(repo_copy_begin(&c, f->a, f->b, &(RepoCopyOpts) {.dry_run = true}), 0);
	assert_false(repo_copy_ids_recomputed(c));
	assert_int_equal(repo_copy_one(c, id, NULL), 0);
	repo_copy_stats(c, &st);
	assert_int_equal(st.blobs_written, st.blobs);	/* would be written: B has none */
	repo_copy_end(c);
	assert_int_equal(objects_under(f->b, "data/"), 0);
}

/* ---- the WAL archive ---- */

/* Store an archived-file object the way format section 11 describes it. */
static void
wal_put(Repo *repo, const char *source, const char *name, const unsigned char *data, size_t len)
{
	char *key = pv_asprintf("wal/%s/%.8s/%s", source, name, name);
	Buf plain = PV_BUF_INIT, stored = PV_BUF_INIT;
	unsigned char md[32];

	EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
	buf_append(&plain, "PVWA\1\0\0\0", 8);
	buf_append_u64le(&plain, len);
	buf_append(&plain, md, 32);
	buf_append(&plain, data, len);
	assert_int_equal(repo_blob_encode(&stored, repo_keys(repo), REPO_COMPRESS_ZSTD, 3, key,
									  strlen(key), plain.data, plain.len), 0);
	assert_int_equal(storage_put(repo_storage(repo), key, stored.data, stored.len, 0), 0);
	buf_free(&plain);
	buf_free(&stored);
	pv_free(key);
}

static void
wal_info_put(Repo *repo, const char *source, const char *sysid)
{
	char *key = pv_asprintf("wal/%s/archive.info", source);
	char *text = pv_asprintf("{\"version\":1,\"system_identifier\":\"%s\","
							 "\"wal_segment_size\":16777216,\"created\":\"2026-11-22T02:39:00Z\"}",
							 sysid);
	Buf stored = PV_BUF_INIT;

	assert_int_equal(repo_meta_encode(repo, text, strlen(text), &stored), 0);
	assert_int_equal(storage_put(repo_storage(repo), key, stored.data, stored.len, 0), 0);
	buf_free(&stored);
	pv_free(text);
	pv_free(key);
}

static const char *const wal_names[] = {
	"000000010000000000000001", "000000010000000000000002", "000000010000000000000003",
	"00000002.history", "000000020000000000000003.partial",
};
#define NWAL (sizeof(wal_names) / sizeof(wal_names[0]))
#define WAL_LEN (64 * 1024)

static void
test_copy_wal(void **state)
{
	Fixture *f = *state;
	unsigned char data[NWAL + 2][WAL_LEN];
	char **sources = NULL;
	size_t nsources = 0;
	RepoCopyStats st = {0};
	PgWalSystem sys;
	Repo *c = NULL;
	char *c_url = NULL, *key;
	bool copied;

	wal_info_put(f->a, "main", "7310382938574649347");
	for (size_t i = 0; i < NWAL + 2; i++)
		rt_fill_random(data[i], WAL_LEN, 100 + i);
	for (size_t i = 0; i < NWAL; i++)
		wal_put(f->a, "main", wal_names[i], data[i], WAL_LEN);
	wal_put(f->a, "other", "000000010000000000000009", data[0], 100);
	assert_int_equal(storage_put(repo_storage(f->a), "wal/main/junk", "x", 1, 0), 0);

	assert_int_equal(repo_copy_wal_sources(f->a, &sources, &nsources), 0);
	assert_int_equal(nsources, 2);
	assert_string_equal(sources[0], "main");
	assert_string_equal(sources[1], "other");
	repo_manifest_ids_free(sources, nsources);

	assert_int_equal(repo_copy_wal_source(f->a, f->b, "main", &(RepoCopyOpts) {.jobs = 2},
										  &st), 0);
	assert_int_equal(st.wal_files, NWAL);
	assert_int_equal(st.wal_present, 0);
	/* pg/wal's own reader checks every object in the destination */
	for (size_t i = 0; i < NWAL; i++)
	{
		Buf out = PV_BUF_INIT;

		assert_int_equal(pgwal_fetch(f->b, "main", wal_names[i], &out), 0);
		assert_int_equal(out.len, WAL_LEN);
		assert_memory_equal(out.data, data[i], WAL_LEN);
		buf_free(&out);
	}
	assert_int_equal(pgwal_system_read(f->b, "main", &sys), 0);
	assert_true(sys.system_identifier == UINT64_C(7310382938574649347));
	assert_int_equal(objects_under(f->b, "wal/other/"), 0);
	assert_int_equal(objects_under(f->b, "wal/main/junk"), 0);

	/* again: nothing copied */
	memset(&st, 0, sizeof(st));
	assert_int_equal(repo_copy_wal_source(f->a, f->b, "main", NULL, &st), 0);
	assert_int_equal(st.wal_files, 0);
	assert_int_equal(st.wal_present, NWAL);

	/* one file, as archive-push's sync does */
	wal_put(f->a, "main", "000000020000000000000004", data[NWAL], WAL_LEN);
	assert_int_equal(repo_copy_wal_file(f->a, f->b, "main", "000000020000000000000004",
										&copied), 0);
	assert_true(copied);
	assert_int_equal(repo_copy_wal_file(f->a, f->b, "main", "000000020000000000000004",
										&copied), 0);
	assert_false(copied);
	assert_int_equal(repo_copy_wal_file(f->a, f->b, "main", "000000020000000000000005", NULL),
					 PV_ENOTFOUND);
	assert_int_equal(repo_copy_wal_file(f->a, f->b, "main", "../../x", NULL), PV_EUSAGE);
	assert_int_equal(repo_copy_wal_source(f->a, f->b, "../x", NULL, NULL), PV_EUSAGE);

	/* a corrupt object is named, and not copied */
	wal_put(f->a, "main", "000000020000000000000006", data[NWAL + 1], WAL_LEN);
	key = pv_asprintf("%s/wal/main/00000002/000000020000000000000006", f->url_a);
	flip_byte(key, 40);
	pv_free(key);
	assert_int_equal(repo_copy_wal_source(f->a, f->b, "main", NULL, NULL), PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "WAL object 'wal/main/00000002/000000020000000000000006'"
						   " of repository '"));
	assert_int_equal(objects_under(f->b, "wal/main/00000002/000000020000000000000006"), 0);

	/* a destination whose archive belongs to another system is refused */
	c = rt_repo_new(f->dir, "c", false, NULL, 0, &c_url);
	wal_info_put(c, "main", "1111");
	assert_int_equal(repo_copy_wal_source(f->a, c, "main", NULL, NULL), PV_EREFUSED);
	assert_non_null(strstr(pv_error_msg(), "belongs to database system 1111"));
	assert_int_equal(objects_under(c, "wal/main/0"), 0);
	repo_free(c);
	pv_free(c_url);
}

/* ---- lag records ---- */

static void
test_lag_records(void **state)
{
	Fixture *f = *state;
	RepoCopyLagList l;
	RepoCopyLag one;
	const char *id = "20261122T023900Z-a1b2c3";
	PvTime since;

	assert_int_equal(repo_copy_lag_list(f->a, NULL, &l), 0);
	assert_int_equal(l.n, 0);
	repo_copy_lag_list_free(&l);

	assert_int_equal(repo_copy_lag_note(f->a, "offsite", "s3://dr/pg", "backup", id,
										"connection refused"), 0);
	assert_int_equal(repo_copy_lag_get(f->a, "offsite", "backup", id, &one), 0);
	assert_string_equal(one.secondary, "offsite");
	assert_string_equal(one.url, "s3://dr/pg");
	assert_string_equal(one.what, "backup");
	assert_string_equal(one.id, id);
	assert_int_equal(one.attempts, 1);
	assert_string_equal(one.error, "connection refused");
	assert_true(one.since > 0 && one.since <= pv_time_now());
	since = one.since;
	repo_copy_lag_free(&one);

	sleep(1);
	assert_int_equal(repo_copy_lag_note(f->a, "offsite", "s3://dr/pg", "backup", id,
										"timed out"), 0);
	assert_int_equal(repo_copy_lag_note(f->a, "offsite", "s3://dr/pg", "wal", "main", "x"), 0);
	assert_int_equal(repo_copy_lag_note(f->a, "second", "/mnt/b", "wal", "main", "y"), 0);
	assert_int_equal(repo_copy_lag_list(f->a, "offsite", &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].what, "backup");
	assert_int_equal(l.items[0].attempts, 2);
	assert_int_equal(l.items[0].since, since);
	assert_true(l.items[0].last_attempt > since);
	assert_string_equal(l.items[0].error, "timed out");
	assert_string_equal(l.items[1].what, "wal");
	assert_string_equal(l.items[1].id, "main");
	repo_copy_lag_list_free(&l);
	assert_int_equal(repo_copy_lag_list(f->a, NULL, &l), 0);
	assert_int_equal(l.n, 3);
	repo_copy_lag_list_free(&l);

	assert_int_equal(repo_copy_lag_clear(f->a, "offsite", "backup", id), 0);
	assert_int_equal(repo_copy_lag_clear(f->a, "offsite", "backup", id), 0);
	assert_int_equal(repo_copy_lag_get(f->a, "offsite", "backup", id, &one), PV_ENOTFOUND);
	assert_int_equal(repo_copy_lag_list(f->a, "offsite", &l), 0);
	assert_int_equal(l.n, 1);
	repo_copy_lag_list_free(&l);

	assert_int_equal(repo_copy_lag_note(f->a, "../x", NULL, "wal", "main", "e"), PV_EUSAGE);
	assert_int_equal(repo_copy_lag_note(f->a, "offsite", NULL, "index", "main", "e"), PV_EUSAGE);
	assert_int_equal(repo_copy_lag_note(f->a, "offsite", NULL, "backup", "latest", "e"),
					 PV_EUSAGE);
}

/* ---- keeping a source's secondaries in step (cli/copy.h) ---- */

static void
test_sync_secondaries(void **state)
{
	Fixture *f = *state;
	char *pass = pv_fs_path_join(f->dir, "pass");
	char *c_url = pv_fs_path_join(f->dir, "c");
	char *c_moved = pv_fs_path_join(f->dir, "c.moved");
	char *text;
	PvConfig *cfg = NULL;
	CfgSection *src = NULL;
	char id1[REPO_BACKUP_ID_LEN + 1], id2[REPO_BACKUP_ID_LEN + 1];
	unsigned char wal[WAL_LEN];
	RepoCopyLagList l;
	RepoCopyLag one;
	Repo *c = NULL, *d = NULL;
	Buf out = PV_BUF_INIT;

	assert_int_equal(pv_fs_write_atomic(pass, RT_PASS "\n", strlen(RT_PASS) + 1, 0600), 0);
	text = pv_asprintf("[source:main]\nrepos = a, b, c\n\n[repo:a]\nurl = %s\n\n"
					   "[repo:b]\nurl = %s\npassphrase-file = %s\n\n[repo:c]\nurl = %s\n",
					   f->url_a, f->url_b, pass, c_url);
	assert_int_equal(cfg_load_string(&cfg, text, "sync.conf"), 0);
	assert_int_equal(cfg_source_pick(&src, cfg, "main"), 0);

	/* b gets the backup; c is no repository yet: it lags, and a says so */
	backup_xy(f->a, f->x, 1000, f->y, 5000, id1);
	assert_int_equal(cli_sync_secondaries(cfg, src, f->a, id1), 1);
	assert_item_equals(f->b, id1, "x", f->x, 1000);
	assert_int_equal(repo_copy_lag_list(f->a, NULL, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].secondary, "c");
	assert_string_equal(l.items[0].what, "backup");
	assert_string_equal(l.items[0].id, id1);
	assert_string_equal(l.items[0].url, c_url);
	assert_non_null(strstr(l.items[0].error, "no repository at"));
	repo_copy_lag_list_free(&l);

	/* c exists now: the next backup brings both over and clears the lag */
	c = rt_repo_new(f->dir, "c", false, NULL, 0, NULL);
	sleep(1);
	backup_xy(f->a, f->x, 2000, f->y, 5000, id2);
	assert_int_equal(cli_sync_secondaries(cfg, src, f->a, id2), 0);
	reopen(&f->b, f->url_b, true);		/* its index was loaded before the sync wrote more */
	assert_item_equals(c, id1, "x", f->x, 1000);
	assert_item_equals(c, id2, "x", f->x, 2000);
	assert_item_equals(f->b, id2, "x", f->x, 2000);
	assert_int_equal(repo_copy_lag_list(f->a, NULL, &l), 0);
	assert_int_equal(l.n, 0);
	repo_copy_lag_list_free(&l);

	/* archive-push: the file reaches both */
	rt_fill_random(wal, WAL_LEN, 7);
	wal_info_put(f->a, "main", "42");
	wal_put(f->a, "main", "000000010000000000000001", wal, WAL_LEN);
	assert_int_equal(cli_sync_secondaries_wal(cfg, src, f->a,
											  "pg_wal/000000010000000000000001"), 0);
	assert_int_equal(pgwal_fetch(f->b, "main", "000000010000000000000001", &out), 0);
	assert_int_equal(pgwal_fetch(c, "main", "000000010000000000000001", &out), 0);
	assert_int_equal(out.len, 2 * WAL_LEN);
	assert_memory_equal(out.data + WAL_LEN, wal, WAL_LEN);

	/* c goes away: it lags, and is not tried again on every push */
	repo_free(c);
	c = NULL;
	assert_int_equal(rename(c_url, c_moved), 0);
	wal_put(f->a, "main", "000000010000000000000002", wal, WAL_LEN);
	assert_int_equal(cli_sync_secondaries_wal(cfg, src, f->a, "000000010000000000000002"), 1);
	wal_put(f->a, "main", "000000010000000000000003", wal, WAL_LEN);
	assert_int_equal(rename(c_moved, c_url), 0);
	assert_int_equal(cli_sync_secondaries_wal(cfg, src, f->a, "000000010000000000000003"), 1);
	assert_int_equal(repo_copy_lag_get(f->a, "c", "wal", "main", &one), 0);
	assert_int_equal(one.attempts, 1);
	repo_copy_lag_free(&one);
	assert_int_equal(pgwal_fetch(f->b, "main", "000000010000000000000003", &out), 0);
	/* the whole archive at once (wal_path NULL), as the asynchronous pusher may ask */
	wal_put(f->a, "main", "000000010000000000000004", wal, WAL_LEN);
	assert_int_equal(cli_sync_secondaries_wal(cfg, src, f->a, NULL), 1);	/* c: throttled */
	assert_int_equal(pgwal_fetch(f->b, "main", "000000010000000000000004", &out), 0);

	/* the next backup catches c's WAL up and clears that lag too */
	assert_int_equal(cli_sync_secondaries(cfg, src, f->a, id2), 0);
	c = rt_repo_open_plain(c_url);
	assert_int_equal(pgwal_fetch(c, "main", "000000010000000000000002", &out), 0);
	assert_int_equal(pgwal_fetch(c, "main", "000000010000000000000003", &out), 0);
	assert_int_equal(repo_copy_lag_get(f->a, "c", "wal", "main", &one), PV_ENOTFOUND);

	/* a backup to a repository that is not one of the source's: nothing to keep in step */
	d = rt_repo_new(f->dir, "d", false, NULL, 0, NULL);
	assert_int_equal(cli_sync_secondaries(cfg, src, d, id2), 0);
	assert_int_equal(cli_sync_secondaries(cfg, NULL, f->a, id2), 0);
	assert_int_equal(cli_sync_secondaries_by_name(cfg, "nosuch", f->a, id2), 0);
	assert_int_equal(cli_sync_secondaries_by_name(cfg, NULL, f->a, id2), 0);

	/* by name, as file backups call it: a new backup reaches b and c */
	{
		char id3[REPO_BACKUP_ID_LEN + 1];

		sleep(1);
		backup_xy(f->a, f->x, 3000, f->y, 100, id3);
		assert_int_equal(cli_sync_secondaries_by_name(cfg, "main", f->a, id3), 0);
		assert_item_equals(c, id3, "x", f->x, 3000);
	}

	/* c lags again; "pgvault copy --from a --to c" brings it in step and clears the record */
	{
		char id4[REPO_BACKUP_ID_LEN + 1];
		char *conf = pv_fs_path_join(f->dir, "pgvault.conf");
		char *argv[] = {"copy", "--from", "a", "--to", "c", "--no-wal", NULL};

		repo_free(c);
		c = NULL;
		assert_int_equal(rename(c_url, c_moved), 0);
		sleep(1);
		backup_xy(f->a, f->x, 4000, f->y, 100, id4);
		assert_int_equal(cli_sync_secondaries(cfg, src, f->a, id4), 1);
		assert_int_equal(rename(c_moved, c_url), 0);
		assert_int_equal(repo_copy_lag_get(f->a, "c", "backup", id4, &one), 0);
		repo_copy_lag_free(&one);
		assert_int_equal(pv_fs_write_atomic(conf, text, strlen(text), 0600), 0);
		setenv("PGVAULT_CONFIG", conf, 1);
		optind = 0;
		assert_int_equal(cli_copy(6, argv), 0);
		unsetenv("PGVAULT_CONFIG");
		assert_int_equal(repo_copy_lag_get(f->a, "c", "backup", id4, &one), PV_ENOTFOUND);
		c = rt_repo_open_plain(c_url);
		assert_item_equals(c, id4, "x", f->x, 4000);
		pv_free(conf);
	}

	buf_free(&out);
	repo_free(c);
	repo_free(d);
	cfg_free(cfg);
	pv_free(text);
	pv_free(pass);
	pv_free(c_url);
	pv_free(c_moved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_roundtrip, setup_plain_plain, teardown),
		cmocka_unit_test_setup_teardown(test_copy_roundtrip, setup_plain_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_roundtrip, setup_enc_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_roundtrip, setup_enc_plain, teardown),
		cmocka_unit_test_setup_teardown(test_copy_incremental, setup_plain_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_incremental, setup_enc_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_many_items, setup_plain_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_corrupt_chunk, setup_plain_plain, teardown),
		cmocka_unit_test_setup_teardown(test_copy_corrupt_chunk, setup_enc_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_dry_run_and_refusals, setup_enc_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_dry_run_same_ids, setup_plain_plain, teardown),
		cmocka_unit_test_setup_teardown(test_copy_wal, setup_plain_enc, teardown),
		cmocka_unit_test_setup_teardown(test_copy_wal, setup_enc_plain, teardown),
		cmocka_unit_test_setup_teardown(test_lag_records, setup_enc_plain, teardown),
		cmocka_unit_test_setup_teardown(test_sync_secondaries, setup_plain_enc, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
