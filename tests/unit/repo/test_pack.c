/*
 * test_pack.c: the pack format (entry and header encoding, every header
 * check) and the pack writer against the posix driver: packs close at the
 * target size, are named by the SHA-256 of their bytes, parse on their own
 * (plain and encrypted), enter the index only once durable, and the writer
 * is safe with many threads adding at once.  Damaged packs: truncated,
 * missing, header flipped.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/blob.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/repo.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <unistd.h>

static void
test_entry_and_header_format(void **state)
{
	RepoPackEntry e[3], back;
	unsigned char enc[REPO_PACK_ENTRY_SIZE];
	RepoPackEntry *parsed = NULL;
	size_t n = 0;
	Buf h = PV_BUF_INIT;

	memset(e, 0, sizeof(e));
	for (int i = 0; i < 3; i++)
	{
		rt_fill_random(e[i].id, REPO_ID_LEN, (uint64_t) i);
		e[i].type = i == 2 ? REPO_BLOB_TREE : REPO_BLOB_DATA;
		e[i].codec = (uint8_t) i;
		e[i].offset = (uint32_t) i * 1000;
		e[i].length = 1000;
		e[i].raw_length = 5000 + (uint32_t) i;
	}
	repo_pack_entry_encode(enc, &e[1]);
	/* type, codec, zero, offset, length, raw length, id: little-endian. */
	assert_memory_equal(enc, "\x00\x01\x00\x00\xe8\x03\x00\x00\xe8\x03\x00\x00\x89\x13\x00\x00", 16);
	assert_memory_equal(enc + 16, e[1].id, REPO_ID_LEN);
	repo_pack_entry_decode(&back, enc);
	assert_memory_equal(&back.id, &e[1].id, REPO_ID_LEN);
	assert_int_equal(back.raw_length, 5001);

	repo_pack_header_build(&h, e, 3);
	assert_int_equal(h.len, 12 + 3 * 48);
	assert_memory_equal(h.data, "PVPH\x01\0\0\0\x03\0\0\0", 12);
	assert_int_equal(repo_pack_header_parse(&parsed, &n, h.data, h.len, 3000), 0);
	assert_int_equal(n, 3);
	assert_int_equal(parsed[2].type, REPO_BLOB_TREE);
	assert_int_equal(parsed[2].offset, 2000);
	pv_free(parsed);

	/* The blobs must fill exactly the data part of the pack. */
	assert_int_equal(repo_pack_header_parse(&parsed, &n, h.data, h.len, 3001), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack header lists 3000 bytes of blobs, the pack holds 3001");
	assert_null(parsed);
	/* Entries must be contiguous. */
	e[1].offset = 999;
	buf_reset(&h);
	repo_pack_header_build(&h, e, 3);
	assert_int_equal(repo_pack_header_parse(&parsed, &n, h.data, h.len, 3000), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack header entry 1 is at offset 999, expected 1000");
	/* Size must match the count; magic and version. */
	assert_int_equal(repo_pack_header_parse(&parsed, &n, h.data, h.len - 1, 3000), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack header of 155 bytes cannot hold 3 entries");
	h.data[4] = 7;
	assert_int_equal(repo_pack_header_parse(&parsed, &n, h.data, h.len, 3000), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack header version 7 is not supported");
	h.data[0] = 'Q';
	assert_int_equal(repo_pack_header_parse(&parsed, &n, h.data, h.len, 3000), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack header has a bad magic number");
	buf_free(&h);
}

typedef struct PackList
{
	char keys[64][128];
	uint64_t sizes[64];
	int n;
} PackList;

static int
pack_list_cb(const char *key, const StorageInfo *info, void *payload)
{
	PackList *l = payload;

	if (l->n < 64)
	{
		snprintf(l->keys[l->n], 128, "%s", key);
		l->sizes[l->n] = info->size;
	}
	l->n++;
	return 0;
}

/* Add nblobs encoded random blobs of about blob_size bytes; returns their ids. */
static unsigned char (*add_blobs(Repo *repo, RepoPackWriter *pw, int nblobs, size_t blob_size,
								 uint64_t seed))[REPO_ID_LEN]
{
	unsigned char (*ids)[REPO_ID_LEN] = pv_calloc((size_t) nblobs, REPO_ID_LEN);
	unsigned char *data = pv_malloc(blob_size);
	Buf stored = PV_BUF_INIT;

	for (int i = 0; i < nblobs; i++)
	{
		rt_fill_random(data, blob_size, seed + (uint64_t) i);
		repo_id_compute(ids[i], repo_keys(repo), data, blob_size);
		buf_reset(&stored);
		assert_int_equal(repo_blob_encode(&stored, repo_keys(repo), REPO_COMPRESS_NONE, 0, ids[i],
										  REPO_ID_LEN, data, blob_size), 0);
		assert_int_equal(repo_pack_writer_add(pw, REPO_BLOB_DATA, ids[i], 0, (uint32_t) blob_size,
											  stored.data, stored.len), 0);
	}
	buf_free(&stored);
	pv_free(data);
	return ids;
}

static void
writer_packs(bool encrypt)
{
	char *dir = rt_tmpdir();
	Repo *repo = rt_repo_new(dir, "r", encrypt, NULL, 64 * 1024, NULL);
	RepoPackWriter *pw = repo_pack_writer_new(repo, 0, 0);
	RepoPackWriterStats st;
	RepoIndex *idx;
	PackList l = {0};
	unsigned char (*ids)[REPO_ID_LEN];
	Buf whole = PV_BUF_INIT;
	size_t total = 0;

	assert_int_equal(repo_index_get(repo, &idx), 0);
	ids = add_blobs(repo, pw, 40, 10000, 1);
	/* Full packs went out as they filled; none of the blobs of the open one is indexed yet. */
	assert_true(!repo_index_lookup(idx, ids[39], NULL));
	assert_int_equal(repo_pack_writer_flush(pw), 0);
	repo_pack_writer_stats(pw, &st);
	assert_int_equal(st.blobs, 40);
	assert_int_equal(storage_list(repo_storage(repo), "data/", pack_list_cb, &l), 0);
	assert_int_equal(l.n, st.packs);
	assert_true(st.packs >= 6);	/* 40 * 10 KB in 64 KiB packs */
	for (int p = 0; p < l.n; p++)
	{
		unsigned char md[32], pack_id[REPO_ID_LEN];
		unsigned int mdlen;
		RepoPackEntry *entries = NULL;
		size_t n = 0;
		uint64_t size = 0;
		char hex[65];

		/* Name = data/<2 hex>/<SHA-256 of the bytes>; at most one blob past the target size. */
		buf_reset(&whole);
		assert_int_equal(storage_get(repo_storage(repo), l.keys[p], &whole), 0);
		EVP_Digest(whole.data, whole.len, md, &mdlen, EVP_sha256(), NULL);
		repo_id_hex(hex, md);
		assert_string_equal(l.keys[p] + 8, hex);
		assert_memory_equal(l.keys[p] + 5, hex, 2);
		assert_true(whole.len < 64 * 1024 + 10100 + 48 * 10 + 64);
		memcpy(pack_id, md, 32);
		assert_int_equal(repo_pack_read_header(&entries, &n, &size, repo_storage(repo), repo_keys(repo),
											   pack_id), 0);
		assert_int_equal(size, whole.len);
		for (size_t k = 0; k < n; k++)
		{
			RepoIndexHit hit;
			Buf plain = PV_BUF_INIT;

			assert_true(repo_index_lookup(idx, entries[k].id, &hit));
			assert_memory_equal(hit.pack_id, pack_id, REPO_ID_LEN);
			assert_int_equal(hit.offset, entries[k].offset);
			assert_int_equal(entries[k].raw_length, 10000);
			assert_int_equal(repo_blob_decode(&plain, repo_keys(repo), entries[k].id, REPO_ID_LEN,
											  whole.data + entries[k].offset, entries[k].length,
											  entries[k].raw_length), 0);
			buf_free(&plain);
		}
		total += n;
		pv_free(entries);
	}
	assert_int_equal(total, 40);
	/* Header flipped (encrypted: fails authentication; plain: fails the checks). */
	{
		char *path = pv_fs_path_join(repo_url(repo), l.keys[0]);
		unsigned char pack_id[REPO_ID_LEN];
		RepoPackEntry *entries = NULL;
		size_t n = 0;
		char want[256];

		buf_reset(&whole);
		assert_int_equal(storage_get(repo_storage(repo), l.keys[0], &whole), 0);
		assert_int_equal(repo_id_parse(pack_id, l.keys[0] + 8), 0);
		whole.data[whole.len - 4 - 20] ^= 0x04;	/* inside the last header entry's id or tag */
		whole.data[whole.len - 4 - 40] ^= 0x01;	/* its raw length or offset */
		assert_int_equal(pv_fs_write_atomic(path, whole.data, whole.len, 0600), 0);
		if (encrypt)
		{
			assert_int_equal(repo_pack_read_header(&entries, &n, NULL, repo_storage(repo), repo_keys(repo),
												   pack_id), PV_ECORRUPT);
			snprintf(want, sizeof(want), "pack '%.64s' has a damaged header: ", l.keys[0] + 8);
			assert_memory_equal(pv_error_msg(), want, strlen(want));
		}
		/* Truncated to a few bytes; then gone. */
		assert_int_equal(truncate(path, 3), 0);
		assert_int_equal(repo_pack_read_header(&entries, &n, NULL, repo_storage(repo), repo_keys(repo),
											   pack_id), PV_ECORRUPT);
		snprintf(want, sizeof(want), "pack '%.64s' is truncated (3 bytes)", l.keys[0] + 8);
		assert_string_equal(pv_error_msg(), want);
		assert_int_equal(truncate(path, 100), 0);
		assert_int_equal(repo_pack_read_header(&entries, &n, NULL, repo_storage(repo), repo_keys(repo),
											   pack_id), PV_ECORRUPT);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(repo_pack_read_header(&entries, &n, NULL, repo_storage(repo), repo_keys(repo),
											   pack_id), PV_ENOTFOUND);
		pv_free(path);
	}
	buf_free(&whole);
	pv_free(ids);
	repo_pack_writer_free(pw);
	repo_free(repo);
	rt_tmpdir_free(dir);
}

static void
test_writer_plain(void **state)
{
	writer_packs(false);
}

static void
test_writer_encrypted(void **state)
{
	writer_packs(true);
}

typedef struct AddJob
{
	Repo *repo;
	RepoPackWriter *pw;
	uint64_t seed;
	unsigned char (*ids)[REPO_ID_LEN];
} AddJob;

static void *
add_thread(void *arg)
{
	AddJob *j = arg;

	j->ids = add_blobs(j->repo, j->pw, 300, 3000, j->seed);
	return NULL;
}

static void
test_writer_threads(void **state)
{
	char *dir = rt_tmpdir();
	Repo *repo = rt_repo_new(dir, "r", false, NULL, 32 * 1024, NULL);
	RepoPackWriter *pw = repo_pack_writer_new(repo, 0, 1);
	pthread_t th[4];
	AddJob jobs[4];
	RepoIndex *idx;
	RepoPackWriterStats st;

	for (int t = 0; t < 4; t++)
	{
		jobs[t] = (AddJob) {repo, pw, (uint64_t) t * 100000, NULL};
		assert_int_equal(pthread_create(&th[t], NULL, add_thread, &jobs[t]), 0);
	}
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(repo_pack_writer_flush(pw), 0);
	repo_pack_writer_stats(pw, &st);
	assert_int_equal(st.blobs, 1200);
	assert_int_equal(repo_index_get(repo, &idx), 0);
	assert_int_equal(repo_index_count(idx), 1200);
	assert_int_equal(repo_index_pack_count(idx), st.packs);
	for (int t = 0; t < 4; t++)
	{
		for (int i = 0; i < 300; i++)
		{
			Buf got = PV_BUF_INIT;
			unsigned char want[3000];

			assert_int_equal(repo_chunk_fetch(repo, jobs[t].ids[i], &got, NULL), 0);
			rt_fill_random(want, sizeof(want), jobs[t].seed + (uint64_t) i);
			assert_int_equal(got.len, 3000);
			assert_memory_equal(got.data, want, 3000);
			buf_free(&got);
		}
		pv_free(jobs[t].ids);
	}
	/* Every 64 packs the writer flushed the index on its own (rule 5). */
	assert_true(st.packs >= 64);
	{
		PackList idxfiles = {0};

		assert_int_equal(storage_list(repo_storage(repo), "index/", pack_list_cb, &idxfiles), 0);
		/* (two flushes racing may find one of them nothing left to write) */
		assert_true(idxfiles.n >= 1 && idxfiles.n <= (int) (st.packs / REPO_PACK_INDEX_EVERY));
	}
	/* The final flush writes the rest; a fresh Repo sees them all. */
	assert_int_equal(repo_index_flush(repo), 0);
	{
		Repo *again = NULL;
		RepoIndex *idx2;

		assert_int_equal(repo_open(&again, repo_url(repo), NULL, NULL), 0);
		assert_int_equal(repo_index_get(again, &idx2), 0);
		assert_int_equal(repo_index_count(idx2), 1200);
		repo_free(again);
	}
	repo_pack_writer_free(pw);
	repo_free(repo);
	rt_tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_and_header_format),
		cmocka_unit_test(test_writer_plain),
		cmocka_unit_test(test_writer_encrypted),
		cmocka_unit_test(test_writer_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
