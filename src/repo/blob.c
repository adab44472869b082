/*
 * blob.c: encode and decode the stored form of chunks; see blob.h.
 *
 * In a plaintext repository the layout is written straight into the
 * caller's buffer; in an encrypted one it is built in a scratch buffer and
 * sealed into the caller's.  On any failure the caller's buffer keeps its
 * old length.
 */
#include "repo/blob.h"

#include "common/error.h"

#include <stdbool.h>

#define BLOB_HEADER_LEN 9		/* codec byte + u64 raw length */

/* Append the plaintext layout of data to out. */
static int
blob_layout_append(Buf *out, RepoCompress c, int level, const void *data, size_t len)
{
	size_t start = out->len;
	int rc;

	if (c != REPO_COMPRESS_NONE)
	{
		buf_append_byte(out, (unsigned char) c);
		buf_append_u64le(out, (uint64_t) len);
		if ((rc = repo_compress(c, level, data, len, out)) != PV_OK)
		{
			out->len = start;
			return rc;
		}
		/* keep it only if it beats [0x00][raw] */
		if (out->len - start < 1 + len)
			return PV_OK;
		out->len = start;
	}
	buf_append_byte(out, REPO_BLOB_CODEC_NONE);
	buf_append(out, data, len);
	return PV_OK;
}

int
repo_blob_encode(Buf *out, const RepoKeys *keys, RepoCompress c, int level,
				 const void *aad, size_t aadlen, const void *data, size_t len)
{
	Buf plain = PV_BUF_INIT;
	size_t start = out->len;
	int rc;

	if (keys == NULL)
	{
		rc = blob_layout_append(out, c, level, data, len);
		goto done;
	}
	buf_reserve(&plain, len + BLOB_HEADER_LEN);
	if ((rc = blob_layout_append(&plain, c, level, data, len)) != PV_OK)
		goto done;
	rc = repo_aead_seal(keys, aad, aadlen, plain.data, plain.len, out);
done:
	if (rc != PV_OK)
		out->len = start;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	buf_free(&plain);
	return rc;
}

int
repo_blob_encode2(Buf *out, const RepoKeys *keys, RepoCompress c, int level,
				  const void *aad, size_t aadlen, const void *head, size_t headlen,
				  const void *data, size_t len)
{
	const void *parts[2] = {head, data};
	size_t lens[2] = {headlen, len};
	Buf all = PV_BUF_INIT;
	size_t start = out->len;
	int rc;

	if (keys != NULL || c == REPO_COMPRESS_NONE)
	{
		buf_reserve(&all, headlen + len);
		buf_append(&all, head, headlen);
		buf_append(&all, data, len);
		rc = repo_blob_encode(out, keys, c, level, aad, aadlen, all.data, all.len);
		buf_free(&all);
		return rc;
	}
	/* blob_layout_append over two parts */
	buf_append_byte(out, (unsigned char) c);
	buf_append_u64le(out, (uint64_t) (headlen + len));
	if ((rc = repo_compress_parts(c, level, parts, lens, 2, out)) != PV_OK)
		goto done;
	if (out->len - start < 1 + headlen + len)
		goto done;
	out->len = start;
	buf_append_byte(out, REPO_BLOB_CODEC_NONE);
	buf_append(out, head, headlen);
	buf_append(out, data, len);
done:
	if (rc != PV_OK)
		out->len = start;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return rc;
}

static int
blob_check_hint(uint64_t rawlen, size_t hint)
{
	if (hint != 0 && rawlen != hint)
		return pv_error_set(PV_ECORRUPT, "stored object holds %llu bytes, expected %zu",
							(unsigned long long) rawlen, hint);
	return PV_OK;
}

/* Decode a plaintext layout p[0..len) into out. */
static int
blob_layout_decode(Buf *out, const unsigned char *p, size_t len, size_t hint)
{
	uint64_t rawlen;
	int rc;

	if (len < 1)
		return pv_error_set(PV_ECORRUPT, "stored object is empty");
	switch (p[0])
	{
		case REPO_BLOB_CODEC_NONE:
			if ((rc = blob_check_hint(len - 1, hint)) != PV_OK)
				return rc;
			buf_append(out, p + 1, len - 1);
			return PV_OK;
		case REPO_BLOB_CODEC_ZSTD:
		case REPO_BLOB_CODEC_LZ4:
			if (len < BLOB_HEADER_LEN)
				return pv_error_set(PV_ECORRUPT, "stored object too short for its header (%zu bytes)",
									len);
			rawlen = pv_read_u64le(p + 1);
			if ((rc = blob_check_hint(rawlen, hint)) != PV_OK)
				return rc;
			if (rawlen > SIZE_MAX / 2)
				return pv_error_set(PV_ECORRUPT, "stored object claims an impossible size of %llu bytes",
									(unsigned long long) rawlen);
			return repo_decompress((RepoCompress) p[0], p + BLOB_HEADER_LEN,
								   len - BLOB_HEADER_LEN, (size_t) rawlen, out);
	}
	return pv_error_set(PV_ECORRUPT, "unknown codec %u in stored object", (unsigned) p[0]);
}

int
repo_blob_decode(Buf *out, const RepoKeys *keys, const void *aad, size_t aadlen,
				 const void *stored, size_t storedlen, size_t rawlen_hint)
{
	Buf plain = PV_BUF_INIT;
	size_t start = out->len;
	int rc;

	if (keys == NULL)
	{
		rc = blob_layout_decode(out, stored, storedlen, rawlen_hint);
		goto done;
	}
	if ((rc = repo_aead_open(keys, aad, aadlen, stored, storedlen, &plain)) != PV_OK)
		goto done;
	rc = blob_layout_decode(out, plain.data, plain.len, rawlen_hint);
done:
	if (rc != PV_OK)
		out->len = start;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	buf_free(&plain);
	return rc;
}

int
repo_blob_codec(const void *stored, size_t storedlen)
{
	return storedlen > 0 ? ((const unsigned char *) stored)[0] : -1;
}
