/*
 * blob.h: the stored form of one chunk or metadata object.
 *
 * Compress (when that shrinks it), then encrypt (when the repository has
 * keys).  The plaintext layout is self-describing, so decoding never needs
 * to be told the codec or the raw size:
 *
 *   codec 0 (none):  [0x00][raw bytes]
 *   codec 1 (zstd):  [0x01][raw length, u64 little-endian][zstd frame]
 *   codec 2 (lz4):   [0x02][raw length, u64 little-endian][lz4 block]
 *
 * Codec 0 is used whenever the compressed form would not be smaller than
 * [0x00][raw], so random or already compressed data costs one byte.
 * An encrypted repository stores repo_aead_seal(layout) with aad = the chunk
 * id for chunks (so a blob cannot be swapped for another one's) or NULL for
 * metadata.  This layout is part of the repository format.
 *
 * Decoding treats its input as hostile: every length is checked and any
 * inconsistency is PV_ECORRUPT with a message; nothing is allocated beyond
 * what a valid blob of that size could decode to.
 */
#ifndef PV_REPO_BLOB_H
#define PV_REPO_BLOB_H

#include "common/buf.h"
#include "repo/compress.h"
#include "repo/crypto.h"

#include <stddef.h>

enum
{
	REPO_BLOB_CODEC_NONE = 0,
	REPO_BLOB_CODEC_ZSTD = 1,
	REPO_BLOB_CODEC_LZ4 = 2,
};

/* Bytes a blob adds at most around its data: header plus AEAD overhead. */
#define REPO_BLOB_MAX_OVERHEAD (1 + 8 + REPO_AEAD_OVERHEAD)

/* Appends the stored form of data[0..len) to out (data must not point into
   out).  keys NULL: plaintext repository.  aad may be NULL. */
int repo_blob_encode(Buf *out, const RepoKeys *keys, RepoCompress c, int level,
					 const void *aad, size_t aadlen, const void *data, size_t len);

/*
 * repo_blob_encode of the concatenation head[0..headlen) || data[0..len),
 * without copying data in a plaintext repository (see repo_compress_parts);
 * an encrypted one concatenates (the AEAD needs the layout whole).  The
 * stored form is the same as repo_blob_encode's of the concatenation.
 */
int repo_blob_encode2(Buf *out, const RepoKeys *keys, RepoCompress c, int level,
					  const void *aad, size_t aadlen, const void *head, size_t headlen,
					  const void *data, size_t len);

/* Appends the raw data to out.  rawlen_hint, when not 0, must equal the raw
   length (PV_ECORRUPT otherwise).  On error out->len is unchanged. */
int repo_blob_decode(Buf *out, const RepoKeys *keys, const void *aad, size_t aadlen,
					 const void *stored, size_t storedlen, size_t rawlen_hint);

/* The codec byte of a plaintext-repository blob (for statistics); -1 if empty. */
int repo_blob_codec(const void *stored, size_t storedlen);

#endif
