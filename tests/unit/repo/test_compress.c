/*
 * test_compress.c: codec names and levels, round trips of every codec at
 * awkward sizes with random and compressible data, and rejection of corrupt
 * or inconsistent input with PV_ECORRUPT (out left unchanged).
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/compress.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zstd.h>

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

/* Text-like data: repeated words with some variation, compresses well. */
static void
fill_text(unsigned char *p, size_t len, uint64_t seed)
{
	static const char *words[] = {"postgres ", "backup ", "chunk ", "42\t", "2024-01-01 ", "\\N\n"};
	uint64_t x = seed + 1;
	size_t i = 0;

	while (i < len)
	{
		const char *w;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		w = words[(x >> 33) % PV_ARRAY_LEN(words)];
		for (; *w != '\0' && i < len; w++)
			p[i++] = (unsigned char) *w;
	}
}

static void
check_parse(const char *text, RepoCompress want, int want_level)
{
	RepoCompress c = (RepoCompress) 99;
	int level = -1;

	assert_int_equal(repo_compress_parse(&c, &level, text), PV_OK);
	assert_int_equal(c, want);
	assert_int_equal(level, want_level);
}

static void
check_parse_error(const char *text, const char *msg)
{
	RepoCompress c;
	int level;

	assert_int_equal(repo_compress_parse(&c, &level, text), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), msg);
}

static void
test_compress_parse(void **state)
{
	(void) state;
	check_parse("zstd", REPO_COMPRESS_ZSTD, 3);
	check_parse("zstd:1", REPO_COMPRESS_ZSTD, 1);
	check_parse("zstd:19", REPO_COMPRESS_ZSTD, 19);
	check_parse("ZSTD:22", REPO_COMPRESS_ZSTD, 22);
	check_parse("lz4", REPO_COMPRESS_LZ4, 1);
	check_parse("lz4:9", REPO_COMPRESS_LZ4, 9);
	check_parse("none", REPO_COMPRESS_NONE, 0);

	check_parse_error("zstd:0", "invalid zstd compression level '0' (expected 1 to 22)");
	check_parse_error("zstd:23", "invalid zstd compression level '23' (expected 1 to 22)");
	check_parse_error("zstd:", "invalid zstd compression level '' (expected 1 to 22)");
	check_parse_error("zstd:3x", "invalid zstd compression level '3x' (expected 1 to 22)");
	check_parse_error("zstd:-1", "invalid zstd compression level '-1' (expected 1 to 22)");
	check_parse_error("zstd:99999999999999999999", "invalid zstd compression level '99999999999999999999' (expected 1 to 22)");
	check_parse_error("lz4:13", "invalid lz4 compression level '13' (expected 1 to 12)");
	check_parse_error("none:1", "compression 'none' takes no level (got 'none:1')");
	check_parse_error("gzip", "unknown compression 'gzip'");
	assert_string_equal(pv_error_hint_msg(), "use zstd, zstd:LEVEL, lz4, lz4:LEVEL or none");
	check_parse_error("", "unknown compression ''");
	check_parse_error("zstdx", "unknown compression 'zstdx'");

	assert_string_equal(repo_compress_name(REPO_COMPRESS_NONE), "none");
	assert_string_equal(repo_compress_name(REPO_COMPRESS_ZSTD), "zstd");
	assert_string_equal(repo_compress_name(REPO_COMPRESS_LZ4), "lz4");
	assert_string_equal(repo_compress_name((RepoCompress) 7), "unknown");
}

/* Compress then decompress, both appending after existing content. */
static size_t
roundtrip(RepoCompress c, int level, const unsigned char *data, size_t len)
{
	Buf z = PV_BUF_INIT;
	Buf raw = PV_BUF_INIT;
	size_t zlen;

	buf_append_str(&z, "HEAD");
	assert_int_equal(repo_compress(c, level, data, len, &z), PV_OK);
	assert_memory_equal(z.data, "HEAD", 4);
	zlen = z.len - 4;
	buf_append_str(&raw, "xy");
	assert_int_equal(repo_decompress(c, z.data + 4, zlen, len, &raw), PV_OK);
	assert_int_equal(raw.len, len + 2);
	assert_memory_equal(raw.data, "xy", 2);
	if (len > 0)
		assert_memory_equal(raw.data + 2, data, len);
	assert_int_equal(raw.data[raw.len], '\0');
	buf_free(&z);
	buf_free(&raw);
	return zlen;
}

static void
test_compress_roundtrip(void **state)
{
	static const size_t sizes[] = {0, 1, 4095, 1024 * 1024};
	static const struct
	{
		RepoCompress c;
		int level;
	} codecs[] = {
		{REPO_COMPRESS_NONE, 0}, {REPO_COMPRESS_ZSTD, 0}, {REPO_COMPRESS_ZSTD, 3},
		{REPO_COMPRESS_ZSTD, 19}, {REPO_COMPRESS_LZ4, 1}, {REPO_COMPRESS_LZ4, 9},
	};
	size_t maxlen = 1024 * 1024;
	unsigned char *rnd = pv_malloc(maxlen);
	unsigned char *txt = pv_malloc(maxlen);

	(void) state;
	fill_random(rnd, maxlen, 1);
	fill_text(txt, maxlen, 2);
	for (size_t i = 0; i < PV_ARRAY_LEN(codecs); i++)
	{
		for (size_t j = 0; j < PV_ARRAY_LEN(sizes); j++)
		{
			size_t len = sizes[j];
			size_t zr, zt;

			/* level 19 on a MiB is slow and adds nothing */
			if (codecs[i].level == 19 && len > 4095)
				continue;
			zr = roundtrip(codecs[i].c, codecs[i].level, rnd, len);
			zt = roundtrip(codecs[i].c, codecs[i].level, txt, len);
			if (codecs[i].c == REPO_COMPRESS_NONE)
			{
				assert_int_equal(zr, len);
				assert_int_equal(zt, len);
			}
			else if (len >= 4095)
			{
				/* text shrinks a lot; random data grows only a little */
				assert_true(zt < len / 3);
				assert_true(zr < len + len / 100 + 64);
			}
		}
	}
	pv_free(rnd);
	pv_free(txt);
}

/* The best possible ratios (long runs of one byte) stay within the bounds
   repo_decompress uses to reject impossible sizes. */
static void
test_compress_extreme_ratio(void **state)
{
	size_t len = 16 * 1024 * 1024;
	unsigned char *zeros = pv_calloc(1, len);

	(void) state;
	print_message("zstd:1 %zu, zstd:19 %zu, lz4:1 %zu, lz4:12 %zu bytes for 16 MiB of zeros\n",
				  roundtrip(REPO_COMPRESS_ZSTD, 1, zeros, len),
				  roundtrip(REPO_COMPRESS_ZSTD, 19, zeros, len),
				  roundtrip(REPO_COMPRESS_LZ4, 1, zeros, len),
				  roundtrip(REPO_COMPRESS_LZ4, 12, zeros, len));
	pv_free(zeros);
}

/* Decoding given compressed bytes yields exactly want. */
static void
roundtrip_raw(RepoCompress c, const void *z, size_t zlen, const unsigned char *want, size_t len)
{
	Buf raw = PV_BUF_INIT;

	assert_int_equal(repo_decompress(c, z, zlen, len, &raw), PV_OK);
	assert_int_equal(raw.len, len);
	assert_memory_equal(raw.data, want, len);
	buf_free(&raw);
}

/* Decoding fails with PV_ECORRUPT and leaves out exactly as it was. */
static void
check_corrupt(RepoCompress c, const void *in, size_t inlen, size_t rawlen, const char *msg)
{
	Buf out = PV_BUF_INIT;

	buf_append_str(&out, "keep");
	assert_int_equal(repo_decompress(c, in, inlen, rawlen, &out), PV_ECORRUPT);
	if (msg != NULL)
		assert_string_equal(pv_error_msg(), msg);
	assert_int_equal(out.len, 4);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_free(&out);
}

static void
test_compress_corrupt_zstd(void **state)
{
	size_t len = 100000;
	unsigned char *txt = pv_malloc(len);
	unsigned char junk[64];
	Buf z = PV_BUF_INIT;

	(void) state;
	fill_text(txt, len, 3);
	fill_random(junk, sizeof(junk), 4);
	assert_int_equal(repo_compress(REPO_COMPRESS_ZSTD, 3, txt, len, &z), PV_OK);

	check_corrupt(REPO_COMPRESS_ZSTD, z.data, z.len, len + 1,
				  "zstd frame declares 100000 bytes, expected 100001");
	check_corrupt(REPO_COMPRESS_ZSTD, z.data, z.len, len - 1,
				  "zstd frame declares 100000 bytes, expected 99999");
	check_corrupt(REPO_COMPRESS_ZSTD, z.data, z.len / 2, len, NULL);
	check_corrupt(REPO_COMPRESS_ZSTD, z.data, z.len - 1, len, NULL);
	check_corrupt(REPO_COMPRESS_ZSTD, z.data, 3, len, "zstd data is corrupt: bad frame header");
	check_corrupt(REPO_COMPRESS_ZSTD, z.data, 0, 0, "zstd data is corrupt: bad frame header");
	check_corrupt(REPO_COMPRESS_ZSTD, junk, sizeof(junk), len, "zstd data is corrupt: bad frame header");
	/* damage inside the compressed blocks */
	for (size_t i = 20; i < z.len; i += 97)
	{
		Buf out = PV_BUF_INIT;
		int rc;

		z.data[i] ^= 0xff;
		rc = repo_decompress(REPO_COMPRESS_ZSTD, z.data, z.len, len, &out);
		/* zstd has no checksum here: a flipped literal can decode to other bytes (ids catch that) */
		assert_true(rc == PV_ECORRUPT || (rc == PV_OK && out.len == len));
		z.data[i] ^= 0xff;
		buf_free(&out);
	}
	buf_free(&z);

	/* a frame without a declared size is decoded and checked by its output */
	{
		ZSTD_CCtx *cctx = ZSTD_createCCtx();
		unsigned char frame[1024];
		size_t n;

		assert_int_equal(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0), 0);
		n = ZSTD_compress2(cctx, frame, sizeof(frame), txt, 1000);
		assert_false(ZSTD_isError(n));
		assert_int_equal(ZSTD_getFrameContentSize(frame, n), ZSTD_CONTENTSIZE_UNKNOWN);
		roundtrip_raw(REPO_COMPRESS_ZSTD, frame, n, txt, 1000);
		check_corrupt(REPO_COMPRESS_ZSTD, frame, n, 1001,
					  "zstd data decodes to 1000 bytes, expected 1001");
		check_corrupt(REPO_COMPRESS_ZSTD, frame, n, 999, NULL);
		/* an impossible expansion is refused before anything is allocated */
		check_corrupt(REPO_COMPRESS_ZSTD, frame, 10, (size_t) 1 << 40,
					  "10 bytes of zstd data cannot expand to 1099511627776 bytes");
		ZSTD_freeCCtx(cctx);
	}
	pv_free(txt);
}

static void
test_compress_corrupt_lz4(void **state)
{
	size_t len = 100000;
	unsigned char *txt = pv_malloc(len);
	unsigned char junk[64];
	Buf z = PV_BUF_INIT;

	(void) state;
	fill_text(txt, len, 5);
	fill_random(junk, sizeof(junk), 6);
	assert_int_equal(repo_compress(REPO_COMPRESS_LZ4, 1, txt, len, &z), PV_OK);

	check_corrupt(REPO_COMPRESS_LZ4, z.data, z.len, len + 1, NULL);
	check_corrupt(REPO_COMPRESS_LZ4, z.data, z.len, len - 1, "lz4 data is corrupt");
	check_corrupt(REPO_COMPRESS_LZ4, z.data, z.len / 2, len, "lz4 data is corrupt");
	check_corrupt(REPO_COMPRESS_LZ4, junk, sizeof(junk), 1000, NULL);
	check_corrupt(REPO_COMPRESS_LZ4, z.data, 10, (size_t) 1 << 40,
				  "10 bytes of lz4 data cannot expand to 1099511627776 bytes");
	check_corrupt(REPO_COMPRESS_LZ4, z.data, 0, 1, "0 bytes of lz4 data cannot expand to 1 bytes");
	for (size_t i = 0; i < z.len; i += 61)
	{
		Buf out = PV_BUF_INIT;
		int rc;

		z.data[i] ^= 0x5a;
		rc = repo_decompress(REPO_COMPRESS_LZ4, z.data, z.len, len, &out);
		assert_true(rc == PV_ECORRUPT || (rc == PV_OK && out.len == len));
		z.data[i] ^= 0x5a;
		buf_free(&out);
	}
	buf_free(&z);
	pv_free(txt);
}

static void
test_compress_corrupt_other(void **state)
{
	Buf out = PV_BUF_INIT;

	(void) state;
	check_corrupt(REPO_COMPRESS_NONE, "abc", 3, 4, "uncompressed data is 3 bytes, expected 4");
	check_corrupt((RepoCompress) 9, "abc", 3, 3, "unknown compression codec 9");
	assert_int_equal(repo_compress((RepoCompress) 9, 0, "abc", 3, &out), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "unknown compression codec 9");
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/* The per-thread contexts work from several threads at once and are freed
   when the threads end (ASan's leak check sees it). */
static void *
compress_worker(void *arg)
{
	size_t len = 200000;
	unsigned char *txt = pv_malloc(len);
	uintptr_t seed = (uintptr_t) arg;

	fill_text(txt, len, seed);
	for (int i = 0; i < 20; i++)
	{
		roundtrip(REPO_COMPRESS_ZSTD, 3, txt, len);
		roundtrip(REPO_COMPRESS_LZ4, (i % 2) ? 1 : 9, txt, len);
	}
	pv_free(txt);
	return NULL;
}

static void
test_compress_threads(void **state)
{
	pthread_t th[4];

	(void) state;
	for (uintptr_t i = 0; i < PV_ARRAY_LEN(th); i++)
		assert_int_equal(pthread_create(&th[i], NULL, compress_worker, (void *) i), 0);
	for (size_t i = 0; i < PV_ARRAY_LEN(th); i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compress_parse),
		cmocka_unit_test(test_compress_roundtrip),
		cmocka_unit_test(test_compress_extreme_ratio),
		cmocka_unit_test(test_compress_corrupt_zstd),
		cmocka_unit_test(test_compress_corrupt_lz4),
		cmocka_unit_test(test_compress_corrupt_other),
		cmocka_unit_test(test_compress_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
