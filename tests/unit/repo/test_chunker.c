/*
 * test_chunker.c: FastCDC chunker: parameters, pinned boundaries, size bounds,
 * average size, independence from how input is fed, and deduplication after
 * an insertion.
 *
 * Test data comes from a fixed xorshift generator so every run (and every
 * machine) sees the same bytes; the pinned boundaries in
 * test_chunker_boundaries_pinned are part of the repository format.
 */
#include "common/error.h"
#include "common/mem.h"
#include "repo/chunker.h"
#include "repo/crypto.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define MiB (1024u * 1024u)

static void
fill_random(unsigned char *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++)
	{
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char) (x >> 24);
	}
}

typedef struct Cuts
{
	size_t *len;
	size_t n;
	size_t cap;
} Cuts;

static void
cuts_add(Cuts *c, size_t len)
{
	if (c->n == c->cap)
	{
		c->cap = c->cap ? c->cap * 2 : 64;
		c->len = pv_realloc(c->len, c->cap * sizeof(*c->len));
	}
	c->len[c->n++] = len;
}

/*
 * Chunk data the way a streaming caller does.  feed == 0: one call with all
 * of it; feed > 0: that many bytes per step; feed == SIZE_MAX: pseudo-random
 * step sizes from 1 to 200000.
 */
static Cuts
chunk_all(const RepoChunkerParams *p, const unsigned char *data, size_t len, size_t feed)
{
	RepoChunker *c = repo_chunker_new(p);
	Cuts cuts = {0};
	size_t start = 0;			/* first byte of the current chunk */
	size_t have = 0;			/* bytes of it available so far */
	uint64_t x = 12345;

	while (start + have < len)
	{
		size_t step = feed;
		size_t n;

		if (feed == SIZE_MAX)
		{
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			step = 1 + (size_t) ((x >> 33) % 200000);
		}
		if (step == 0 || step > len - start - have)
			step = len - start - have;
		have += step;
		while ((n = repo_chunker_next(c, data + start, have)) > 0)
		{
			assert_true(n <= have);
			cuts_add(&cuts, n);
			start += n;
			have -= n;
			repo_chunker_reset(c);
		}
	}
	if (have > 0)
		cuts_add(&cuts, have);
	repo_chunker_free(c);
	return cuts;
}

static RepoChunkerParams
small_params(void)
{
	RepoChunkerParams p = {.min_size = 4096, .avg_size = 16384, .max_size = 65536, .seed = 0};

	return p;
}

static void
test_chunker_params(void **state)
{
	RepoChunkerParams p;

	(void) state;
	repo_chunker_params_default(&p);
	assert_int_equal(p.min_size, 256 * 1024);
	assert_int_equal(p.avg_size, 1024 * 1024);
	assert_int_equal(p.max_size, 4 * 1024 * 1024);
	assert_int_equal(p.seed, 0);
	assert_int_equal(repo_chunker_params_check(&p), PV_OK);

	p = (RepoChunkerParams) {.min_size = 32, .avg_size = 64, .max_size = 128};
	assert_int_equal(repo_chunker_params_check(&p), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "chunk min size 32 is below the limit of 64 bytes");

	p = (RepoChunkerParams) {.min_size = 8192, .avg_size = 4096, .max_size = 65536};
	assert_int_equal(repo_chunker_params_check(&p), PV_EUSAGE);
	assert_string_equal(pv_error_msg(),
						"chunk sizes must satisfy min <= avg <= max (min 8192, avg 4096, max 65536)");

	p = (RepoChunkerParams) {.min_size = 4096, .avg_size = 65536, .max_size = 16384};
	assert_int_equal(repo_chunker_params_check(&p), PV_EUSAGE);

	p = (RepoChunkerParams) {.min_size = 4096, .avg_size = 10000, .max_size = 65536};
	assert_int_equal(repo_chunker_params_check(&p), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "chunk avg size 10000 is not a power of 2");

	p = (RepoChunkerParams) {.min_size = 4096, .avg_size = 65536, .max_size = (1u << 30) + 1};
	assert_int_equal(repo_chunker_params_check(&p), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "chunk max size 1073741825 is above the limit of 1073741824 bytes");

	/* the extremes are allowed, and min == avg == max means fixed-size chunks */
	p = (RepoChunkerParams) {.min_size = 64, .avg_size = 64, .max_size = 64};
	assert_int_equal(repo_chunker_params_check(&p), PV_OK);
}

/*
 * The boundaries for seed 0 and for seed 1 on the fixed test stream.  These
 * numbers define the format: if this test fails, existing repositories would
 * stop deduplicating against new backups.
 */
static void
test_chunker_boundaries_pinned(void **state)
{
	static const size_t want0[] = {15842, 20432, 16613, 25183, 22838, 20202, 26796, 18938, 18799, 19903, 36988, 16577};
	static const size_t want1[] = {17517, 22924, 23756, 34920, 17440, 18341, 18438, 17871, 24033, 8493, 17418, 32748};
	size_t len = 1 * MiB;
	unsigned char *data = pv_malloc(len);
	RepoChunkerParams p = small_params();
	Cuts a, b, again;

	(void) state;
	fill_random(data, len, 1);
	a = chunk_all(&p, data, len, 0);
	again = chunk_all(&p, data, len, 0);
	p.seed = 1;
	b = chunk_all(&p, data, len, 0);

	assert_true(a.n >= PV_ARRAY_LEN(want0));
	for (size_t i = 0; i < PV_ARRAY_LEN(want0); i++)
		assert_int_equal(a.len[i], want0[i]);
	for (size_t i = 0; i < PV_ARRAY_LEN(want1); i++)
		assert_int_equal(b.len[i], want1[i]);
	assert_int_equal(a.n, again.n);
	assert_memory_equal(a.len, again.len, a.n * sizeof(size_t));
	/* a different seed cuts elsewhere */
	assert_true(a.n != b.n || memcmp(a.len, b.len, a.n * sizeof(size_t)) != 0);

	pv_free(a.len);
	pv_free(b.len);
	pv_free(again.len);
	pv_free(data);
}

static void
check_bounds(const RepoChunkerParams *p, const Cuts *c, size_t total)
{
	size_t sum = 0;

	for (size_t i = 0; i < c->n; i++)
	{
		if (i + 1 < c->n)
			assert_in_range(c->len[i], p->min_size, p->max_size);
		else
			assert_in_range(c->len[i], 1, p->max_size);
		sum += c->len[i];
	}
	assert_int_equal(sum, total);
}

static void
test_chunker_bounds_and_average(void **state)
{
	size_t len = 64 * MiB;
	unsigned char *data = pv_malloc(len);
	RepoChunkerParams p;
	Cuts c;
	double mean;

	(void) state;
	fill_random(data, len, 2);

	/* defaults: 64 MiB is only ~55 chunks, so the mean is loose */
	repo_chunker_params_default(&p);
	c = chunk_all(&p, data, len, 0);
	check_bounds(&p, &c, len);
	mean = (double) len / (double) c.n;
	print_message("defaults: %zu chunks, mean %.0f bytes\n", c.n, mean);
	assert_true(mean > 0.75 * p.avg_size && mean < 1.5 * p.avg_size);
	pv_free(c.len);

	/* small sizes: ~4000 chunks, the mean is tight */
	p = small_params();
	c = chunk_all(&p, data, len, 0);
	check_bounds(&p, &c, len);
	mean = (double) len / (double) c.n;
	print_message("small: %zu chunks, mean %.0f bytes\n", c.n, mean);
	assert_true(mean > 0.9 * p.avg_size && mean < 1.3 * p.avg_size);
	pv_free(c.len);
	pv_free(data);
}

/* The same chunks whatever the sizes of the pieces the input comes in. */
static void
test_chunker_feed_independent(void **state)
{
	size_t len = 4 * MiB + 777;
	unsigned char *data = pv_malloc(len);
	RepoChunkerParams p = small_params();
	Cuts whole, bytewise, random, fixed;

	(void) state;
	fill_random(data, len, 3);
	whole = chunk_all(&p, data, len, 0);
	bytewise = chunk_all(&p, data, len, 1);
	random = chunk_all(&p, data, len, SIZE_MAX);
	fixed = chunk_all(&p, data, len, 65536);
	check_bounds(&p, &whole, len);
	assert_true(whole.n > 100);
	assert_int_equal(whole.n, bytewise.n);
	assert_memory_equal(whole.len, bytewise.len, whole.n * sizeof(size_t));
	assert_int_equal(whole.n, random.n);
	assert_memory_equal(whole.len, random.len, whole.n * sizeof(size_t));
	assert_int_equal(whole.n, fixed.n);
	assert_memory_equal(whole.len, fixed.len, whole.n * sizeof(size_t));
	pv_free(whole.len);
	pv_free(bytewise.len);
	pv_free(random.len);
	pv_free(fixed.len);
	pv_free(data);
}

/* No content cut point in all-zero data: every chunk is max_size. */
static void
test_chunker_zeros_cut_at_max(void **state)
{
	size_t len = 300000;
	unsigned char *data = pv_calloc(1, len);
	RepoChunkerParams p = small_params();
	RepoChunker *c = repo_chunker_new(&p);
	Cuts cuts;

	(void) state;
	/* below min: never a cut; at max: always */
	assert_int_equal(repo_chunker_next(c, data, p.min_size - 1), 0);
	assert_int_equal(repo_chunker_next(c, data, p.max_size - 1), 0);
	assert_int_equal(repo_chunker_next(c, data, p.max_size), p.max_size);
	repo_chunker_reset(c);
	assert_int_equal(repo_chunker_next(c, data, len), p.max_size);
	/* a shorter buffer than already scanned (a caller bug) still gives the right answer */
	repo_chunker_reset(c);
	assert_int_equal(repo_chunker_next(c, data, 60000), 0);
	assert_int_equal(repo_chunker_next(c, data, 50000), 0);
	assert_int_equal(repo_chunker_next(c, data, 70000), p.max_size);
	assert_ptr_not_equal(repo_chunker_params(c), NULL);
	assert_int_equal(repo_chunker_params(c)->max_size, p.max_size);
	repo_chunker_free(c);
	repo_chunker_free(NULL);

	cuts = chunk_all(&p, data, len, 1000);
	assert_int_equal(cuts.n, 5);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(cuts.len[i], 65536);
	assert_int_equal(cuts.len[4], len - 4 * 65536);
	pv_free(cuts.len);
	pv_free(data);
}

static void
test_chunker_fixed_size(void **state)
{
	size_t len = 1000;
	unsigned char *data = pv_malloc(len);
	RepoChunkerParams p = {.min_size = 128, .avg_size = 128, .max_size = 128};
	Cuts c;

	(void) state;
	fill_random(data, len, 4);
	c = chunk_all(&p, data, len, 7);
	assert_int_equal(c.n, 8);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(c.len[i], 128);
	assert_int_equal(c.len[7], 1000 - 7 * 128);
	pv_free(c.len);
	pv_free(data);
}

typedef struct ChunkId
{
	unsigned char id[REPO_ID_LEN];
	size_t len;
} ChunkId;

static int
chunk_id_cmp(const void *a, const void *b)
{
	return memcmp(((const ChunkId *) a)->id, ((const ChunkId *) b)->id, REPO_ID_LEN);
}

static ChunkId *
chunk_ids(const Cuts *c, const unsigned char *data)
{
	ChunkId *ids = pv_calloc(c->n, sizeof(*ids));
	size_t off = 0;

	for (size_t i = 0; i < c->n; i++)
	{
		repo_id_compute(ids[i].id, NULL, data + off, c->len[i]);
		ids[i].len = c->len[i];
		off += c->len[i];
	}
	return ids;
}

/* Fraction of b's bytes that are in chunks a also has. */
static double
shared_fraction(const RepoChunkerParams *p, const unsigned char *a, size_t alen,
				const unsigned char *b, size_t blen)
{
	Cuts ca = chunk_all(p, a, alen, 0);
	Cuts cb = chunk_all(p, b, blen, 1 << 20);
	ChunkId *ia = chunk_ids(&ca, a);
	ChunkId *ib = chunk_ids(&cb, b);
	size_t shared = 0;

	qsort(ia, ca.n, sizeof(*ia), chunk_id_cmp);
	for (size_t i = 0; i < cb.n; i++)
		if (bsearch(&ib[i], ia, ca.n, sizeof(*ia), chunk_id_cmp) != NULL)
			shared += ib[i].len;
	print_message("%zu and %zu chunks, %zu of %zu bytes shared\n", ca.n, cb.n, shared, blen);
	pv_free(ca.len);
	pv_free(cb.len);
	pv_free(ia);
	pv_free(ib);
	return (double) shared / (double) blen;
}

/* Insert 7 bytes near the start of a 64 MiB stream: almost every chunk survives. */
static void
test_chunker_dedup_after_insert(void **state)
{
	size_t len = 64 * MiB;
	size_t at = 100000;
	unsigned char *a = pv_malloc(len);
	unsigned char *b = pv_malloc(len + 7);
	RepoChunkerParams p;

	(void) state;
	fill_random(a, len, 5);
	memcpy(b, a, at);
	memcpy(b + at, "INSERT!", 7);
	memcpy(b + at + 7, a + at, len - at);

	repo_chunker_params_default(&p);
	assert_true(shared_fraction(&p, a, len, b, len + 7) >= 0.95);
	p.seed = 0x5eed;
	assert_true(shared_fraction(&p, a, len, b, len + 7) >= 0.95);
	p = small_params();
	assert_true(shared_fraction(&p, a, len, b, len + 7) >= 0.99);
	pv_free(a);
	pv_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunker_params),
		cmocka_unit_test(test_chunker_boundaries_pinned),
		cmocka_unit_test(test_chunker_bounds_and_average),
		cmocka_unit_test(test_chunker_feed_independent),
		cmocka_unit_test(test_chunker_zeros_cut_at_max),
		cmocka_unit_test(test_chunker_fixed_size),
		cmocka_unit_test(test_chunker_dedup_after_insert),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
