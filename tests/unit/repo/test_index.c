/*
 * test_index.c: the in-memory index (growth to many entries, lookups of
 * present and absent ids, duplicate listings, type and codec kept, memory
 * per entry) and the index file format (build/parse round trip, splitting,
 * every malformed input rejected), and the unpersisted-pack bookkeeping
 * behind repo_index_flush.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/index.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

static void
make_id(unsigned char id[REPO_ID_LEN], uint64_t n)
{
	rt_fill_random(id, REPO_ID_LEN, n + 1);
}

/* A pack of n entries with ids base..base+n-1. */
static RepoPackEntry *
make_pack(uint64_t base, size_t n, uint8_t type)
{
	RepoPackEntry *e = pv_calloc(n, sizeof(RepoPackEntry));
	uint32_t off = 0;

	for (size_t i = 0; i < n; i++)
	{
		make_id(e[i].id, base + i);
		e[i].type = type;
		e[i].codec = (uint8_t) (i % 3);
		e[i].offset = off;
		e[i].length = 100 + (uint32_t) i;
		e[i].raw_length = 1000 + (uint32_t) i;
		off += e[i].length;
	}
	return e;
}

static void
test_many_entries(void **state)
{
	RepoIndex *idx = repo_index_new();
	const size_t per_pack = 1000, npacks = 200;
	unsigned char pack_id[REPO_ID_LEN];
	unsigned char id[REPO_ID_LEN];
	RepoIndexHit hit;

	for (size_t p = 0; p < npacks; p++)
	{
		RepoPackEntry *e = make_pack(p * per_pack, per_pack, p % 2 ? REPO_BLOB_TREE : REPO_BLOB_DATA);

		make_id(pack_id, 1000000000 + p);
		repo_index_add_pack(idx, pack_id, e, per_pack, true);
		pv_free(e);
	}
	assert_int_equal(repo_index_count(idx), per_pack * npacks);
	assert_int_equal(repo_index_pack_count(idx), npacks);
	for (size_t k = 0; k < per_pack * npacks; k += 7)
	{
		size_t p = k / per_pack, i = k % per_pack;

		make_id(id, k);
		assert_true(repo_index_lookup(idx, id, &hit));
		make_id(pack_id, 1000000000 + p);
		assert_memory_equal(hit.pack_id, pack_id, REPO_ID_LEN);
		assert_int_equal(hit.type, p % 2 ? REPO_BLOB_TREE : REPO_BLOB_DATA);
		assert_int_equal(hit.codec, i % 3);
		assert_int_equal(hit.length, 100 + i);
		assert_int_equal(hit.raw_length, 1000 + i);
	}
	for (size_t k = 0; k < 1000; k++)
	{
		make_id(id, 5000000 + k);
		assert_false(repo_index_lookup(idx, id, NULL));
	}
	repo_index_free(idx);
}

static int
count_listings(const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit, void *payload)
{
	(*(int *) payload)++;
	return 0;
}

static void
test_duplicates(void **state)
{
	RepoIndex *idx = repo_index_new();
	RepoPackEntry *a = make_pack(0, 10, REPO_BLOB_DATA);
	RepoPackEntry *b = make_pack(5, 10, REPO_BLOB_DATA);	/* ids 5..9 in both */
	unsigned char pa[REPO_ID_LEN], pb[REPO_ID_LEN], id[REPO_ID_LEN];
	RepoIndexHit hit;
	int n = 0;

	make_id(pa, 900);
	make_id(pb, 901);
	repo_index_add_pack(idx, pa, a, 10, true);
	repo_index_add_pack(idx, pb, b, 10, true);
	assert_int_equal(repo_index_count(idx), 20);	/* every listing kept */
	make_id(id, 7);
	assert_true(repo_index_lookup(idx, id, &hit));
	assert_memory_equal(hit.pack_id, pa, REPO_ID_LEN);	/* the first one wins */
	/* The exact same pack listed again (two index files): dropped. */
	repo_index_add_pack(idx, pa, a, 10, true);
	assert_int_equal(repo_index_count(idx), 20);
	assert_int_equal(repo_index_pack_count(idx), 2);
	assert_int_equal(repo_index_foreach(idx, count_listings, &n), 0);
	assert_int_equal(n, 20);
	pv_free(a);
	pv_free(b);
	repo_index_free(idx);
}

typedef struct ParsedPacks
{
	int packs;
	size_t entries;
	RepoIndex *into;
} ParsedPacks;

static int
parsed_cb(const unsigned char pack_id[REPO_ID_LEN], const RepoPackEntry *entries, size_t n, void *payload)
{
	ParsedPacks *p = payload;

	p->packs++;
	p->entries += n;
	if (p->into != NULL)
		repo_index_add_pack(p->into, pack_id, entries, n, true);
	return 0;
}

static void
test_file_roundtrip_and_errors(void **state)
{
	RepoIndexFileBuilder b;
	RepoPackEntry *e1 = make_pack(0, 3, REPO_BLOB_DATA);
	RepoPackEntry *e2 = make_pack(3, 2, REPO_BLOB_TREE);
	unsigned char p1[REPO_ID_LEN], p2[REPO_ID_LEN], id[REPO_ID_LEN];
	ParsedPacks got = {0, 0, repo_index_new()};
	RepoIndexHit hit;

	make_id(p1, 77);
	make_id(p2, 78);
	repo_index_file_init(&b);
	repo_index_file_add_pack(&b, p1, e1, 3);
	repo_index_file_add_pack(&b, p2, e2, 2);
	assert_int_equal(b.out.len, 12 + 2 * 36 + 5 * 48);
	assert_memory_equal(b.out.data, "PVIX\x01\0\0\0\x02\0\0\0", 12);
	assert_int_equal(repo_index_file_parse(b.out.data, b.out.len, parsed_cb, &got), 0);
	assert_int_equal(got.packs, 2);
	assert_int_equal(got.entries, 5);
	make_id(id, 4);
	assert_true(repo_index_lookup(got.into, id, &hit));
	assert_memory_equal(hit.pack_id, p2, REPO_ID_LEN);
	assert_int_equal(hit.type, REPO_BLOB_TREE);
	assert_int_equal(hit.offset, 100);
	assert_int_equal(hit.codec, 1);

	/* Every truncation is an error; so is a stray byte, a bad magic, version or type. */
	for (size_t len = 0; len < b.out.len; len++)
	{
		ParsedPacks none = {0, 0, NULL};

		assert_int_equal(repo_index_file_parse(b.out.data, len, parsed_cb, &none), PV_ECORRUPT);
	}
	buf_append_byte(&b.out, 0);
	assert_int_equal(repo_index_file_parse(b.out.data, b.out.len, parsed_cb, &(ParsedPacks) {0}), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "index file has 1 stray bytes at its end");
	b.out.len--;
	b.out.data[4] = 2;
	assert_int_equal(repo_index_file_parse(b.out.data, b.out.len, parsed_cb, &(ParsedPacks) {0}), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "index file version 2 is not supported");
	b.out.data[4] = 1;
	b.out.data[12 + 36] = 9;	/* type of the first entry */
	assert_int_equal(repo_index_file_parse(b.out.data, b.out.len, parsed_cb, &(ParsedPacks) {0}), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "index file has an entry of unknown type 9");
	b.out.data[0] = 'X';
	assert_int_equal(repo_index_file_parse(b.out.data, b.out.len, parsed_cb, &(ParsedPacks) {0}), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "not an index file (bad magic)");

	repo_index_file_free(&b);
	repo_index_free(got.into);
	pv_free(e1);
	pv_free(e2);
}

static void
test_flush_bookkeeping(void **state)
{
	RepoIndex *idx = repo_index_new();
	RepoPackEntry *old = make_pack(0, 5, REPO_BLOB_DATA);
	RepoPackEntry *big = make_pack(100, 60000, REPO_BLOB_DATA);
	RepoPackEntry *big2 = make_pack(100000, 60000, REPO_BLOB_DATA);
	unsigned char p[REPO_ID_LEN];
	RepoIndexFlush *f;
	ParsedPacks got = {0};

	make_id(p, 1);
	repo_index_add_pack(idx, p, old, 5, true);	/* from an index file: never flushed again */
	f = repo_index_flush_begin(idx);
	assert_int_equal(f->nfiles, 0);
	repo_index_flush_end(idx, f, true);

	make_id(p, 2);
	repo_index_add_pack(idx, p, big, 60000, false);
	make_id(p, 3);
	repo_index_add_pack(idx, p, big2, 60000, false);
	f = repo_index_flush_begin(idx);
	assert_int_equal(f->nfiles, 2);	/* split: 120000 entries > 100000 per file */
	for (size_t i = 0; i < f->nfiles; i++)
		assert_int_equal(repo_index_file_parse(f->files[i].data, f->files[i].len, parsed_cb, &got), 0);
	assert_int_equal(got.packs, 2);
	assert_int_equal(got.entries, 120000);
	/* Writing failed: the packs come back for the next flush. */
	repo_index_flush_end(idx, f, false);
	f = repo_index_flush_begin(idx);
	assert_int_equal(f->nfiles, 2);
	repo_index_flush_end(idx, f, true);
	f = repo_index_flush_begin(idx);
	assert_int_equal(f->nfiles, 0);
	repo_index_flush_end(idx, f, true);

	pv_free(old);
	pv_free(big);
	pv_free(big2);
	repo_index_free(idx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_file_roundtrip_and_errors),
		cmocka_unit_test(test_flush_bookkeeping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
