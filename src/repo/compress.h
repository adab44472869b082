/*
 * compress.h: one-shot compression of chunks and metadata (zstd, lz4, none).
 *
 * Whole buffers in, whole buffers out: a chunk is at most a few MiB, so the
 * one-shot APIs are both the simplest and the fastest.  The compressed bytes
 * carry no length of their own that we rely on: the caller (blob.c) stores
 * the raw length and passes it back to repo_decompress, which checks that the
 * data decodes to exactly that many bytes.  Hostile input never crashes or
 * allocates more than rawlen (and rawlen itself is rejected when no valid
 * stream of inlen bytes could expand to it).
 *
 * Levels: zstd 1..22 (default 3); lz4 1..12 as in the lz4 tool (1-2 the fast
 * compressor, 3-12 LZ4HC; default 1); none has no level.  The compression
 * contexts are kept per thread and reused, and freed when the thread exits.
 * All functions are thread-safe.
 */
#ifndef PV_REPO_COMPRESS_H
#define PV_REPO_COMPRESS_H

#include "common/buf.h"

#include <stddef.h>

typedef enum RepoCompress
{
	REPO_COMPRESS_NONE = 0,
	REPO_COMPRESS_ZSTD = 1,
	REPO_COMPRESS_LZ4 = 2,
} RepoCompress;

#define REPO_COMPRESS_ZSTD_DEFAULT_LEVEL 3
#define REPO_COMPRESS_LZ4_DEFAULT_LEVEL 1

/*
 * Parse "zstd", "zstd:3", "lz4", "lz4:9", "none" (names case-insensitive).
 * *level_out gets the level, or the default when none is given (0 for none).
 * PV_EUSAGE with a message on anything else.
 */
int repo_compress_parse(RepoCompress *out, int *level_out, const char *text);

/* "none", "zstd", "lz4" ("unknown" for a value outside the enum). */
const char *repo_compress_name(RepoCompress c);

/* Appends the compressed form of in[0..inlen) to out.  level <= 0 means the
   default.  PV_EUSAGE for an unknown codec. */
int repo_compress(RepoCompress c, int level, const void *in, size_t inlen, Buf *out);

/*
 * repo_compress of the concatenation of n parts (parts[i], lens[i] bytes),
 * without building it: zstd streams the parts into one frame (declaring
 * the total size, as repo_compress does); the other codecs concatenate.
 * For big inputs that live apart, e.g. a WAL object's header and the
 * mapped segment: no copy of the segment is made.
 */
int repo_compress_parts(RepoCompress c, int level, const void *const *parts, const size_t *lens,
						int n, Buf *out);

/* Appends exactly rawlen bytes to out, or returns PV_ECORRUPT with a message
   and leaves out->len unchanged. */
int repo_decompress(RepoCompress c, const void *in, size_t inlen, size_t rawlen, Buf *out);

#endif
