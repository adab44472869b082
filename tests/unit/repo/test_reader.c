/*
 * test_reader.c: the restore side's pack handle cache and its one-hash
 * checking, on the posix driver: many chunks of one pack read with one open
 * (shared and private caches, with and without read-ahead), a pack
 * truncated or replaced under an open handle (a clear error or the intact
 * old bytes, never wrong data), a corrupted chunk still detected when the
 * whole-file SHA-256 is not computed, check_item_sha256 still comparing it
 * when asked, and a tiny cache shared by threads (eviction under use).
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/index.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/reader.h"
#include "repo/repo.h"
#include "repo/writer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#define KiB 1024u
#define MiB (1024u * 1024u)
#define ITEM_LEN (2 * MiB + 12345)
#define CHUNK (64 * KiB)

typedef struct Fixture
{
	char *dir;
	char *url;
	Repo *repo;
	unsigned char *data;
	char id[REPO_BACKUP_ID_LEN + 1];
	RepoManifest *m;
	RepoItem *item;
} Fixture;

static int
fixture_setup(void **state, bool encrypt)
{
	Fixture *f = PV_NEW(Fixture);

	f->dir = rt_tmpdir();
	f->repo = rt_repo_new(f->dir, "repo", encrypt, "zstd:3", 16 * MiB, &f->url);
	f->data = pv_malloc(ITEM_LEN);
	rt_fill_random(f->data, ITEM_LEN, 7);
	/* fixed 64 KiB chunks: 33 chunks, all in one or two packs */
	rt_backup_one(f->repo, "item", f->data, ITEM_LEN, 300 * KiB, CHUNK, f->id, NULL);
	assert_int_equal(repo_manifest_load(&f->m, f->repo, f->id), 0);
	assert_int_equal(repo_manifest_find_item(&f->item, f->repo, f->m, "item"), 0);
	assert_true(f->item->nchunks > 30);
	*state = f;
	return 0;
}

static int
setup_plain(void **state)
{
	return fixture_setup(state, false);
}

static int
setup_encrypted(void **state)
{
	return fixture_setup(state, true);
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	repo_item_free(f->item);
	repo_manifest_free(f->m);
	repo_free(f->repo);
	rt_tmpdir_free(f->dir);
	pv_free(f->url);
	pv_free(f->data);
	pv_free(f);
	return 0;
}

/* Distinct packs holding the item's chunks; the first chunk's pack into hit/path. */
static size_t
item_packs(Fixture *f, RepoIndexHit *first, char **path_out)
{
	unsigned char seen[8][REPO_ID_LEN];
	size_t nseen = 0;
	RepoIndex *idx;

	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	for (size_t i = 0; i < f->item->nchunks; i++)
	{
		RepoIndexHit hit;
		size_t k;

		assert_true(repo_index_lookup(idx, f->item->chunks[i].id, &hit));
		if (i == 0)
			*first = hit;
		for (k = 0; k < nseen && memcmp(seen[k], hit.pack_id, REPO_ID_LEN) != 0; k++)
			;
		if (k == nseen)
		{
			assert_true(nseen < 8);
			memcpy(seen[nseen++], hit.pack_id, REPO_ID_LEN);
		}
	}
	if (path_out != NULL)
	{
		char key[REPO_PACK_KEY_MAX];

		repo_pack_key(key, first->pack_id);
		*path_out = pv_fs_path_join(f->url, key);
	}
	return nseen;
}

/* Read the whole item with opts; returns the reader's code, bytes in out. */
static int
read_item(Fixture *f, const RepoItem *item, const RepoReaderOpts *opts, Buf *out)
{
	RepoReader *r = NULL;
	unsigned char buf[100000];
	size_t n;
	int rc;

	assert_int_equal(repo_reader_open(&r, f->repo, f->m, item, opts), 0);
	while ((rc = repo_reader_read(r, buf, sizeof(buf), &n)) == 0 && n > 0)
		buf_append(out, buf, n);
	repo_reader_free(r);
	return rc;
}

static void
check_one_open_per_pack(Fixture *f, int readahead)
{
	RepoIndexHit hit;
	size_t npacks = item_packs(f, &hit, NULL);
	RepoPackCache *c = repo_pack_cache_new(f->repo, 0);
	RepoReaderOpts ro = {.readahead = readahead, .packs = c};
	Buf got = PV_BUF_INIT;

	assert_int_equal(read_item(f, f->item, &ro, &got), 0);
	assert_int_equal(got.len, ITEM_LEN);
	assert_memory_equal(got.data, f->data, ITEM_LEN);
	assert_int_equal(repo_pack_cache_opens(c), npacks);
	/* a second item (here the same one) reuses the open handles */
	buf_reset(&got);
	assert_int_equal(read_item(f, f->item, &ro, &got), 0);
	assert_memory_equal(got.data, f->data, ITEM_LEN);
	assert_int_equal(repo_pack_cache_opens(c), npacks);
	repo_pack_cache_free(c);
	buf_free(&got);
}

static void
test_one_open_per_pack_sync(void **state)
{
	check_one_open_per_pack(*state, -1);
}

static void
test_one_open_per_pack_readahead(void **state)
{
	check_one_open_per_pack(*state, 4);
}

/* The reader's private cache (no opts) reads the same bytes. */
static void
test_private_cache(void **state)
{
	Fixture *f = *state;
	Buf got = PV_BUF_INIT;

	assert_int_equal(read_item(f, f->item, NULL, &got), 0);
	assert_int_equal(got.len, ITEM_LEN);
	assert_memory_equal(got.data, f->data, ITEM_LEN);
	buf_free(&got);
}

static void
flip_byte(const char *path, uint64_t offset)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, (off_t) offset), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, (off_t) offset), 1);
	close(fd);
}

/*
 * Truncated in place while the cache holds the pack open: the next chunk
 * past the new end is "truncated", not short or zero bytes; chunks before
 * it still read.
 */
static void
test_truncated_under_cache(void **state)
{
	Fixture *f = *state;
	RepoIndexHit hit;
	char *path = NULL;
	RepoPackCache *c = repo_pack_cache_new(f->repo, 0);
	RepoReaderOpts ro = {.readahead = -1, .packs = c};
	RepoReader *r = NULL;
	unsigned char buf[CHUNK];
	char want[512], chunk[65], pack[65];
	size_t n;

	item_packs(f, &hit, &path);
	assert_int_equal(repo_reader_open(&r, f->repo, f->m, f->item, &ro), 0);
	assert_int_equal(repo_reader_read(r, buf, CHUNK, &n), 0);	/* chunk 0: pack now open */
	assert_int_equal(n, CHUNK);
	assert_memory_equal(buf, f->data, CHUNK);
	assert_int_equal(repo_pack_cache_opens(c), 1);
	/*
	 * Cut the pack inside chunk 1 (where the index puts it: the writer's
	 * parallel compressors do not keep the item's order inside a pack).
	 */
	{
		RepoIndex *idx;

		RepoIndexHit first = hit;

		assert_int_equal(repo_index_get(f->repo, &idx), 0);
		assert_true(repo_index_lookup(idx, f->item->chunks[1].id, &hit));
		assert_memory_equal(hit.pack_id, first.pack_id, REPO_ID_LEN);	/* the open pack */
	}
	assert_int_equal(truncate(path, hit.offset + 10), 0);
	assert_int_equal(repo_reader_read(r, buf, CHUNK, &n), PV_ECORRUPT);
	repo_id_hex(chunk, f->item->chunks[1].id);
	repo_id_hex(pack, hit.pack_id);
	snprintf(want, sizeof(want), "pack %s is truncated: chunk %s is past its end (backup %s, item item)",
			 pack, chunk, f->id);
	assert_string_equal(pv_error_msg(), want);
	/* sticky */
	assert_int_equal(repo_reader_read(r, buf, CHUNK, &n), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), want);
	repo_reader_free(r);
	repo_pack_cache_free(c);
	pv_free(path);
}

/*
 * Replaced by a rename while open (a damaged copy put in its place): the
 * open handle keeps reading the intact original; a fresh cache opens the
 * damaged one and the chunk id catches it.  Never wrong bytes.
 */
static void
test_replaced_under_cache(void **state)
{
	Fixture *f = *state;
	RepoIndexHit hit;
	char *path = NULL, *copy;
	RepoPackCache *c = repo_pack_cache_new(f->repo, 0);
	RepoReaderOpts ro = {.readahead = -1, .packs = c};
	RepoReader *r = NULL;
	Buf got = PV_BUF_INIT, pack = PV_BUF_INIT;
	unsigned char buf[CHUNK];
	char want[512], chunkhex[65], packhex[65];
	size_t n;

	item_packs(f, &hit, &path);
	copy = pv_asprintf("%s.copy", path);
	assert_int_equal(repo_reader_open(&r, f->repo, f->m, f->item, &ro), 0);
	assert_int_equal(repo_reader_read(r, buf, CHUNK, &n), 0);
	assert_int_equal(pv_fs_read_file(path, &pack), 0);
	{
		FILE *fp = fopen(copy, "wb");

		assert_non_null(fp);
		assert_int_equal(fwrite(pack.data, 1, pack.len, fp), pack.len);
		assert_int_equal(fclose(fp), 0);
	}
	flip_byte(copy, hit.offset + hit.length / 2);
	assert_int_equal(rename(copy, path), 0);
	buf_append(&got, buf, n);
	while (repo_reader_read(r, buf, sizeof(buf), &n) == 0 && n > 0)
		buf_append(&got, buf, n);
	assert_int_equal(got.len, ITEM_LEN);
	assert_memory_equal(got.data, f->data, ITEM_LEN);
	repo_reader_free(r);
	repo_pack_cache_free(c);

	buf_reset(&got);
	c = repo_pack_cache_new(f->repo, 0);
	ro.packs = c;
	assert_int_equal(read_item(f, f->item, &ro, &got), PV_ECORRUPT);
	repo_id_hex(chunkhex, f->item->chunks[0].id);
	repo_id_hex(packhex, hit.pack_id);
	snprintf(want, sizeof(want), "chunk %s in pack %s is corrupt (backup %s, item item)", chunkhex,
			 packhex, f->id);
	assert_string_equal(pv_error_msg(), want);
	repo_pack_cache_free(c);
	buf_free(&got);
	buf_free(&pack);
	pv_free(copy);
	pv_free(path);
}

/* Without the whole-file hash, a flipped byte in any chunk is still corruption. */
static void
test_corrupt_chunk_without_file_hash(void **state)
{
	Fixture *f = *state;
	RepoIndexHit hit;
	RepoIndex *idx;
	char *path = NULL, key[REPO_PACK_KEY_MAX];
	char want[512], chunkhex[65], packhex[65];
	size_t last = f->item->nchunks - 1;
	Buf got = PV_BUF_INIT;

	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	assert_true(repo_index_lookup(idx, f->item->chunks[last].id, &hit));
	repo_pack_key(key, hit.pack_id);
	path = pv_fs_path_join(f->url, key);
	flip_byte(path, hit.offset + hit.length - 20);
	repo_id_hex(chunkhex, f->item->chunks[last].id);
	repo_id_hex(packhex, hit.pack_id);
	snprintf(want, sizeof(want), "chunk %s in pack %s is corrupt (backup %s, item item)", chunkhex,
			 packhex, f->id);
	for (int ra = -1; ra <= 4; ra += 5)
	{
		RepoReaderOpts ro = {.readahead = ra, .check_item_sha256 = false};

		buf_reset(&got);
		assert_int_equal(read_item(f, f->item, &ro, &got), PV_ECORRUPT);
		assert_string_equal(pv_error_msg(), want);
		assert_true(got.len < ITEM_LEN);
		assert_memory_equal(got.data, f->data, got.len);	/* all handed out was right */
	}
	buf_free(&got);
	pv_free(path);
}

/*
 * check_item_sha256 still compares the whole-file hash (here a manifest
 * item whose recorded SHA-256 disagrees with its chunks); by default the
 * reader trusts the id-checked chunks and does not hash again.
 */
static void
test_check_item_sha256(void **state)
{
	Fixture *f = *state;
	RepoItem *item = NULL;
	RepoReaderOpts ro = {.readahead = 2, .check_item_sha256 = true};
	Buf got = PV_BUF_INIT;
	char want[256];

	assert_true(f->item->has_sha256);
	assert_int_equal(read_item(f, f->item, &ro, &got), 0);
	assert_int_equal(got.len, ITEM_LEN);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, f->m, "item"), 0);
	item->sha256[5] ^= 0x10;
	buf_reset(&got);
	assert_int_equal(read_item(f, item, &ro, &got), PV_ECORRUPT);
	snprintf(want, sizeof(want), "item item of backup %s does not match its checksum", f->id);
	assert_string_equal(pv_error_msg(), want);
	ro.check_item_sha256 = false;
	buf_reset(&got);
	assert_int_equal(read_item(f, item, &ro, &got), 0);
	assert_memory_equal(got.data, f->data, ITEM_LEN);
	repo_item_free(item);
	buf_free(&got);
}

typedef struct ThreadJob
{
	Fixture *f;
	RepoPackCache *c;
	int rc;
	bool same;
} ThreadJob;

static void *
read_thread(void *arg)
{
	ThreadJob *j = arg;
	RepoReaderOpts ro = {.readahead = 3, .threads = 2, .packs = j->c};
	Buf got = PV_BUF_INIT;

	for (int i = 0; i < 3 && j->rc == 0; i++)
	{
		buf_reset(&got);
		j->rc = read_item(j->f, j->f->item, &ro, &got);
		j->same = j->rc == 0 && got.len == ITEM_LEN && memcmp(got.data, j->f->data, ITEM_LEN) == 0;
	}
	buf_free(&got);
	return NULL;
}

/* A one-handle cache shared by four readers with two fetchers each: pinned handles are never closed. */
static void
test_tiny_cache_threads(void **state)
{
	Fixture *f = *state;
	RepoPackCache *c = repo_pack_cache_new(f->repo, 1);
	pthread_t th[4];
	ThreadJob jobs[4];

	for (int i = 0; i < 4; i++)
	{
		jobs[i] = (ThreadJob) {f, c, 0, false};
		assert_int_equal(pthread_create(&th[i], NULL, read_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
	{
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].rc, 0);
		assert_true(jobs[i].same);
	}
	repo_pack_cache_free(c);
	repo_pack_cache_free(NULL);
}

/* A missing pack through the cache: the usual message. */
static void
test_missing_pack_cached(void **state)
{
	Fixture *f = *state;
	RepoIndexHit hit;
	char *path = NULL;
	RepoPackCache *c = repo_pack_cache_new(f->repo, 0);
	Buf got = PV_BUF_INIT;
	char want[512], chunkhex[65], packhex[65];

	item_packs(f, &hit, &path);
	assert_int_equal(unlink(path), 0);
	repo_id_hex(chunkhex, f->item->chunks[0].id);
	repo_id_hex(packhex, hit.pack_id);
	snprintf(want, sizeof(want), "pack %s holding chunk %s is missing (backup %s, item item)", packhex,
			 chunkhex, f->id);
	assert_int_equal(repo_chunk_fetch_cached(f->repo, c, f->item->chunks[0].id, &got, "backup x"),
					 PV_ECORRUPT);
	assert_int_equal(got.len, 0);
	assert_int_equal(read_item(f, f->item, &(RepoReaderOpts) {.readahead = -1, .packs = c}, &got),
					 PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), want);
	assert_int_equal(repo_pack_cache_opens(c), 0);
	repo_pack_cache_free(c);
	buf_free(&got);
	pv_free(path);
}

#define TP(fn) cmocka_unit_test_setup_teardown(fn, setup_plain, teardown)
#define TE(fn) cmocka_unit_test_setup_teardown(fn, setup_encrypted, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TP(test_one_open_per_pack_sync),
		TP(test_one_open_per_pack_readahead),
		TE(test_one_open_per_pack_readahead),
		TP(test_private_cache),
		TP(test_truncated_under_cache),
		TP(test_replaced_under_cache),
		TE(test_replaced_under_cache),
		TP(test_corrupt_chunk_without_file_hash),
		TE(test_corrupt_chunk_without_file_hash),
		TP(test_check_item_sha256),
		TP(test_tiny_cache_threads),
		TP(test_missing_pack_cached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
