/*
 * chunker.h: content-defined chunking of streams (FastCDC).
 *
 * Cuts a byte stream into chunks whose boundaries depend on the content, not
 * on offsets, so an insertion near the start of a stream changes only the
 * chunk around it and every later chunk deduplicates.  The algorithm is
 * FastCDC (Xia et al., 2016/2020): a 64-bit gear rolling hash, no cut before
 * min_size, normalized chunking (a harder mask before avg_size, an easier one
 * after it, which narrows the size distribution around avg_size), and a
 * forced cut at max_size.
 *
 * The gear table is derived from params.seed with splitmix64.  Encrypted
 * repositories use a secret seed so chunk sizes reveal nothing about the
 * content; the same seed and sizes always give the same boundaries, which is
 * what deduplication across backups depends on, so the table and the cut rule
 * are part of the repository format and must never change.
 *
 * Usage (the caller owns the bytes; the chunker only remembers how far it has
 * scanned and the hash state there):
 *
 *     while (more input) {
 *         append input to the current chunk buffer;
 *         while ((n = repo_chunker_next(c, buf, len)) > 0) {
 *             emit buf[0..n); drop it from buf; repo_chunker_reset(c);
 *         }
 *     }
 *     emit what is left as the last chunk (may be shorter than min_size);
 *
 * The boundaries do not depend on how the input was split into calls.
 * A RepoChunker is not thread-safe; use one per stream.
 */
#ifndef PV_REPO_CHUNKER_H
#define PV_REPO_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct RepoChunkerParams
{
	uint32_t min_size;
	uint32_t avg_size;
	uint32_t max_size;
	uint64_t seed;
} RepoChunkerParams;

/* Bounds enforced by repo_chunker_params_check. */
#define REPO_CHUNKER_MIN_SIZE_LIMIT 64u
#define REPO_CHUNKER_MAX_SIZE_LIMIT (1u << 30)

/* min 256 KiB, avg 1 MiB, max 4 MiB, seed 0. */
void repo_chunker_params_default(RepoChunkerParams *out);

/* PV_EUSAGE unless 64 <= min <= avg <= max <= 1 GiB and avg is a power of 2. */
int repo_chunker_params_check(const RepoChunkerParams *p);

typedef struct RepoChunker RepoChunker;

/* p must pass repo_chunker_params_check (checked by assert).  Caller frees. */
RepoChunker *repo_chunker_new(const RepoChunkerParams *p);
void repo_chunker_free(RepoChunker *c);	/* NULL ok */

/*
 * data[0..len) is the current, unfinished chunk from its first byte; it only
 * grows between calls (the same bytes plus more).  Returns the length of the
 * chunk ending inside it, or 0 when there is no cut point yet.  Always cuts
 * at max_size once len >= max_size.  After a cut, call repo_chunker_reset
 * before passing the next chunk's bytes.
 */
size_t repo_chunker_next(RepoChunker *c, const unsigned char *data, size_t len);
void repo_chunker_reset(RepoChunker *c);

/* The parameters the chunker was made with (lent). */
const RepoChunkerParams *repo_chunker_params(const RepoChunker *c);

#endif
