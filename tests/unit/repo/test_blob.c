/*
 * test_blob.c: the stored form of chunks: exact layout, raw fallback when
 * compression does not pay, encryption with the chunk id as AAD, and
 * hostile input (truncations, wrong headers, random mutations) always
 * answered with PV_ECORRUPT and an unchanged output buffer.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/blob.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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

static void
fill_text(unsigned char *p, size_t len)
{
	static const char line[] = "1\tpostgres\t2024-01-01 00:00:00\t\\N\n";

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char) line[i % (sizeof(line) - 1)];
}

/* decode(encode(data)) == data, with existing content in both buffers kept. */
static void
roundtrip(const RepoKeys *keys, RepoCompress c, const void *aad, size_t aadlen,
		  const unsigned char *data, size_t len, Buf *stored)
{
	Buf raw = PV_BUF_INIT;

	buf_reset(stored);
	assert_int_equal(repo_blob_encode(stored, keys, c, 0, aad, aadlen, data, len), PV_OK);
	buf_append_str(&raw, "pre");
	assert_int_equal(repo_blob_decode(&raw, keys, aad, aadlen, stored->data, stored->len, 0), PV_OK);
	assert_int_equal(raw.len, 3 + len);
	assert_memory_equal(raw.data, "pre", 3);
	if (len > 0)
		assert_memory_equal(raw.data + 3, data, len);
	buf_reset(&raw);
	assert_int_equal(repo_blob_decode(&raw, keys, aad, aadlen, stored->data, stored->len,
									  len ? len : 0), PV_OK);
	assert_int_equal(raw.len, len);
	buf_free(&raw);
}

static void
test_blob_plain_layout(void **state)
{
	size_t len = 100000;
	unsigned char *txt = pv_malloc(len);
	unsigned char *rnd = pv_malloc(len);
	Buf s = PV_BUF_INIT;

	(void) state;
	fill_text(txt, len);
	fill_random(rnd, len, 1);

	/* compressible: codec byte, u64 raw length, then the codec's bytes */
	roundtrip(NULL, REPO_COMPRESS_ZSTD, NULL, 0, txt, len, &s);
	assert_int_equal(s.data[0], REPO_BLOB_CODEC_ZSTD);
	assert_int_equal(repo_blob_codec(s.data, s.len), REPO_BLOB_CODEC_ZSTD);
	assert_true(pv_read_u64le(s.data + 1) == len);
	assert_true(s.len < len / 10);
	assert_memory_equal(s.data + 9, "\x28\xb5\x2f\xfd", 4);	/* zstd frame magic */

	roundtrip(NULL, REPO_COMPRESS_LZ4, NULL, 0, txt, len, &s);
	assert_int_equal(s.data[0], REPO_BLOB_CODEC_LZ4);
	assert_true(pv_read_u64le(s.data + 1) == len);
	assert_true(s.len < len / 10);

	/* incompressible: stored raw, one byte of overhead */
	roundtrip(NULL, REPO_COMPRESS_ZSTD, NULL, 0, rnd, len, &s);
	assert_int_equal(s.data[0], REPO_BLOB_CODEC_NONE);
	assert_int_equal(s.len, len + 1);
	assert_memory_equal(s.data + 1, rnd, len);
	roundtrip(NULL, REPO_COMPRESS_LZ4, NULL, 0, rnd, len, &s);
	assert_int_equal(s.len, len + 1);
	roundtrip(NULL, REPO_COMPRESS_NONE, NULL, 0, txt, len, &s);
	assert_int_equal(s.data[0], REPO_BLOB_CODEC_NONE);
	assert_int_equal(s.len, len + 1);

	/* tiny and empty inputs never grow past [0x00][raw] */
	roundtrip(NULL, REPO_COMPRESS_ZSTD, NULL, 0, txt, 0, &s);
	assert_int_equal(s.len, 1);
	assert_int_equal(s.data[0], 0);
	roundtrip(NULL, REPO_COMPRESS_LZ4, NULL, 0, txt, 1, &s);
	assert_int_equal(s.len, 2);
	roundtrip(NULL, REPO_COMPRESS_ZSTD, NULL, 0, txt, 20, &s);
	assert_int_equal(s.len, 21);
	assert_int_equal(repo_blob_codec("", 0), -1);

	/* encode appends */
	buf_reset(&s);
	buf_append_str(&s, "xyz");
	assert_int_equal(repo_blob_encode(&s, NULL, REPO_COMPRESS_ZSTD, 3, NULL, 0, txt, len), PV_OK);
	assert_memory_equal(s.data, "xyz", 3);
	assert_int_equal(s.data[3], REPO_BLOB_CODEC_ZSTD);
	/* unknown codec: error, nothing appended */
	assert_int_equal(repo_blob_encode(&s, NULL, (RepoCompress) 5, 0, NULL, 0, txt, 10), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "unknown compression codec 5");
	buf_free(&s);
	pv_free(txt);
	pv_free(rnd);
}

static void
test_blob_encrypted(void **state)
{
	size_t len = 100000;
	unsigned char *txt = pv_malloc(len);
	unsigned char *rnd = pv_malloc(len);
	unsigned char id[REPO_ID_LEN];
	unsigned char other_id[REPO_ID_LEN];
	RepoKeys keys, other;
	Buf s = PV_BUF_INIT;
	Buf plain = PV_BUF_INIT;
	Buf raw = PV_BUF_INIT;

	(void) state;
	fill_text(txt, len);
	fill_random(rnd, len, 2);
	repo_keys_generate(&keys);
	repo_keys_generate(&other);
	repo_id_compute(id, &keys, txt, len);
	repo_id_compute(other_id, &keys, rnd, len);

	/* the ciphertext is the AEAD of the plaintext layout: same size plus 28 */
	roundtrip(NULL, REPO_COMPRESS_ZSTD, NULL, 0, txt, len, &plain);
	roundtrip(&keys, REPO_COMPRESS_ZSTD, id, sizeof(id), txt, len, &s);
	assert_int_equal(s.len, plain.len + REPO_AEAD_OVERHEAD);
	assert_int_equal(repo_aead_open(&keys, id, sizeof(id), s.data, s.len, &raw), PV_OK);
	assert_int_equal(raw.len, plain.len);
	assert_int_equal(raw.data[0], REPO_BLOB_CODEC_ZSTD);
	buf_reset(&raw);

	roundtrip(&keys, REPO_COMPRESS_LZ4, id, sizeof(id), rnd, len, &s);
	assert_int_equal(s.len, len + 1 + REPO_AEAD_OVERHEAD);
	roundtrip(&keys, REPO_COMPRESS_NONE, NULL, 0, txt, 0, &s);
	assert_int_equal(s.len, 1 + REPO_AEAD_OVERHEAD);

	/* a blob presented under another chunk's id, or read with other keys, is refused */
	roundtrip(&keys, REPO_COMPRESS_ZSTD, id, sizeof(id), txt, len, &s);
	buf_append_str(&raw, "keep");
	assert_int_equal(repo_blob_decode(&raw, &keys, other_id, sizeof(other_id), s.data, s.len, 0),
					 PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "authentication failed");
	assert_int_equal(repo_blob_decode(&raw, &other, id, sizeof(id), s.data, s.len, 0), PV_ECORRUPT);
	assert_int_equal(repo_blob_decode(&raw, &keys, NULL, 0, s.data, s.len, 0), PV_ECORRUPT);
	/* read as if the repository were not encrypted: garbage, refused */
	assert_int_equal(repo_blob_decode(&raw, NULL, NULL, 0, s.data, s.len, len), PV_ECORRUPT);
	assert_string_equal(buf_cstr(&raw), "keep");
	/* wrong size expected */
	assert_int_equal(repo_blob_decode(&raw, &keys, id, sizeof(id), s.data, s.len, len + 1), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "stored object holds 100000 bytes, expected 100001");
	assert_string_equal(buf_cstr(&raw), "keep");

	buf_free(&s);
	buf_free(&plain);
	buf_free(&raw);
	repo_keys_wipe(&keys);
	repo_keys_wipe(&other);
	pv_free(txt);
	pv_free(rnd);
}

static void
check_decode_fails(const RepoKeys *keys, const void *stored, size_t len, size_t hint, const char *msg)
{
	Buf out = PV_BUF_INIT;

	buf_append_str(&out, "keep");
	assert_int_equal(repo_blob_decode(&out, keys, NULL, 0, stored, len, hint), PV_ECORRUPT);
	if (msg != NULL)
		assert_string_equal(pv_error_msg(), msg);
	assert_int_equal(out.len, 4);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_free(&out);
}

/*
 * repo_blob_encode2 (head || data without concatenating, as archive-push
 * uses it) decodes to the concatenation, for every codec, plain and
 * encrypted, compressible and not, and an empty data part.
 */
static void
test_blob_encode2(void **state)
{
	size_t len = 3 * 1024 * 1024 + 17;	/* more than one zstd block and window step */
	unsigned char *data = pv_malloc(len);
	unsigned char head[48];
	RepoKeys keys;
	const RepoCompress codecs[] = {REPO_COMPRESS_NONE, REPO_COMPRESS_ZSTD, REPO_COMPRESS_LZ4};

	(void) state;
	fill_random(head, sizeof(head), 9);
	repo_keys_generate(&keys);
	for (int k = 0; k < 2; k++)
		for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++)
			for (int kind = 0; kind < 3; kind++)
			{
				size_t dlen = kind == 2 ? 0 : len;
				Buf stored = PV_BUF_INIT, raw = PV_BUF_INIT;

				if (kind == 0)
					fill_text(data, len);
				else
					fill_random(data, len, 10);
				buf_append_str(&stored, "x");
				assert_int_equal(repo_blob_encode2(&stored, k ? &keys : NULL, codecs[c], 3, "aad", 3,
												   head, sizeof(head), data, dlen), PV_OK);
				if (k == 0 && kind == 0 && codecs[c] != REPO_COMPRESS_NONE)
				{
					assert_int_equal(stored.data[1], (unsigned char) codecs[c]);
					assert_true(stored.len < len / 4);
				}
				if (k == 0 && kind == 1)
					assert_int_equal(stored.data[1], REPO_BLOB_CODEC_NONE);	/* no gain: stored raw */
				assert_int_equal(repo_blob_decode(&raw, k ? &keys : NULL, "aad", 3, stored.data + 1,
												  stored.len - 1, sizeof(head) + dlen), PV_OK);
				assert_int_equal(raw.len, sizeof(head) + dlen);
				assert_memory_equal(raw.data, head, sizeof(head));
				if (dlen > 0)
					assert_memory_equal(raw.data + sizeof(head), data, dlen);
				buf_free(&stored);
				buf_free(&raw);
			}
	pv_free(data);
}

static void
test_blob_hostile_headers(void **state)
{
	unsigned char b[64];
	Buf s = PV_BUF_INIT;

	(void) state;
	check_decode_fails(NULL, "", 0, 0, "stored object is empty");
	check_decode_fails(NULL, "\x07" "abc", 4, 0, "unknown codec 7 in stored object");
	check_decode_fails(NULL, "\xff", 1, 0, "unknown codec 255 in stored object");
	check_decode_fails(NULL, "\x01" "abc", 4, 0, "stored object too short for its header (4 bytes)");
	check_decode_fails(NULL, "\x02\x01\x00\x00\x00\x00\x00\x00", 8, 0,
					   "stored object too short for its header (8 bytes)");
	check_decode_fails(NULL, "\x00" "abc", 4, 4, "stored object holds 3 bytes, expected 4");

	/* huge claimed sizes are refused without allocating them */
	memset(b, 0, sizeof(b));
	b[0] = REPO_BLOB_CODEC_LZ4;
	memset(b + 1, 0xff, 8);
	check_decode_fails(NULL, b, sizeof(b), 0,
					   "stored object claims an impossible size of 18446744073709551615 bytes");
	b[8] = 0x00;				/* 2^56 - 1 */
	check_decode_fails(NULL, b, sizeof(b), 0,
					   "55 bytes of lz4 data cannot expand to 72057594037927935 bytes");
	b[0] = REPO_BLOB_CODEC_ZSTD;
	check_decode_fails(NULL, b, sizeof(b), 0, "zstd data is corrupt: bad frame header");
	/* a valid zstd frame with a lying header */
	assert_int_equal(repo_blob_encode(&s, NULL, REPO_COMPRESS_ZSTD, 3, NULL, 0,
									  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 48), PV_OK);
	assert_int_equal(s.data[0], REPO_BLOB_CODEC_ZSTD);
	s.data[1] = 49;
	check_decode_fails(NULL, s.data, s.len, 0, "zstd frame declares 48 bytes, expected 49");
	s.data[1] = 48;
	s.data[0] = REPO_BLOB_CODEC_LZ4;
	check_decode_fails(NULL, s.data, s.len, 0, NULL);
	buf_free(&s);
}

/*
 * Every truncation and thousands of random mutations of valid blobs: decode
 * returns PV_OK or PV_ECORRUPT and never misbehaves (run under ASan/UBSan).
 */
static void
test_blob_mutations(void **state)
{
	size_t len = 5000;
	unsigned char *txt = pv_malloc(len);
	RepoKeys keys;
	uint64_t x = 99;

	(void) state;
	fill_text(txt, len);
	fill_random(txt + 2000, 500, 3);
	repo_keys_generate(&keys);
	for (int variant = 0; variant < 4; variant++)
	{
		const RepoKeys *k = variant == 3 ? &keys : NULL;
		RepoCompress c = variant == 0 ? REPO_COMPRESS_NONE
			: variant == 1 ? REPO_COMPRESS_ZSTD : REPO_COMPRESS_LZ4;
		Buf s = PV_BUF_INIT;

		assert_int_equal(repo_blob_encode(&s, k, c, 0, NULL, 0, txt, len), PV_OK);
		/* truncations with the size known are always caught */
		for (size_t cut = 0; cut < s.len; cut++)
			check_decode_fails(k, s.data, cut, len, NULL);
		for (int round = 0; round < 3000; round++)
		{
			unsigned char *m = pv_malloc(s.len);
			Buf out = PV_BUF_INIT;
			int flips;
			int rc;

			memcpy(m, s.data, s.len);
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			flips = 1 + (int) ((x >> 60) & 3);
			for (int f = 0; f < flips; f++)
			{
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				m[(x >> 33) % s.len] ^= (unsigned char) (1 + ((x >> 20) % 255));
			}
			rc = repo_blob_decode(&out, k, NULL, 0, m, s.len, 0);
			assert_true(rc == PV_OK || rc == PV_ECORRUPT);
			if (k != NULL && memcmp(m, s.data, s.len) != 0)
				assert_int_equal(rc, PV_ECORRUPT);	/* any change fails authentication */
			if (rc != PV_OK)
				assert_int_equal(out.len, 0);
			buf_free(&out);
			pv_free(m);
		}
		buf_free(&s);
	}
	repo_keys_wipe(&keys);
	pv_free(txt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blob_plain_layout),
		cmocka_unit_test(test_blob_encrypted),
		cmocka_unit_test(test_blob_encode2),
		cmocka_unit_test(test_blob_hostile_headers),
		cmocka_unit_test(test_blob_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
