/*
 * pack.h: pack files (docs/repository-format.md section 5): the header
 * format, reading a pack's header on its own, and the thread-safe pack
 * writer that groups encoded blobs into packs of about pack_size bytes.
 *
 * A pack is  blob 0 | ... | blob n-1 | stored header | u32 header length.
 * The stored header is a blob (codec none, empty aad) of the plaintext
 * "PVPH" v1 table of 48-byte entries; entries are contiguous from offset 0.
 * The pack's name is the SHA-256 of all its bytes.
 *
 * RepoPackWriter rules:
 *   1. repo_pack_writer_add may be called from any number of threads.  It
 *      copies the blob into the current pack under a mutex; the thread whose
 *      add makes the pack reach pack_size closes it and uploads it outside
 *      the mutex, so other threads keep filling the next pack meanwhile.
 *   2. At most max_uploads closed packs exist at once (memory bound:
 *      (1 + max_uploads) * pack_size); an add that would close one more
 *      waits for an upload to end.
 *   3. A pack's entries go into the repository's in-memory index only after
 *      storage_put of the pack returned 0 (format rule 1): they are then
 *      visible to every later dedup lookup in this process, and are written
 *      to an index file by the next repo_index_flush.
 *   4. The first failure is sticky: every later call returns it.
 *   5. Every REPO_PACK_INDEX_EVERY packs a writer also flushes the index
 *      (repo_index_flush), so a long backup that dies leaves its packs
 *      indexed and a retry deduplicates against them.
 */
#ifndef PV_REPO_PACK_H
#define PV_REPO_PACK_H

#include "common/buf.h"
#include "repo/crypto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;
typedef struct Storage Storage;

/* Blob types (pack header and index). */
enum
{
	REPO_BLOB_DATA = 0,
	REPO_BLOB_TREE = 1,
};

#define REPO_PACK_HEADER_MAGIC "PVPH"
#define REPO_PACK_ENTRY_SIZE 48
#define REPO_PACK_HEADER_FIXED 12
/* Pack sizes accepted in the config (offsets are u32). */
#define REPO_PACK_SIZE_MIN (4u * 1024)
#define REPO_PACK_SIZE_MAX (1u << 30)
#define REPO_PACK_SIZE_DEFAULT (16u * 1024 * 1024)
#define REPO_PACK_INDEX_EVERY 64

/* One blob of a pack, as in the header (and in index files). */
typedef struct RepoPackEntry
{
	unsigned char id[REPO_ID_LEN];
	uint8_t type;				/* REPO_BLOB_DATA or REPO_BLOB_TREE */
	uint8_t codec;				/* RepoCompress of the blob (informational) */
	uint32_t offset;
	uint32_t length;			/* stored bytes */
	uint32_t raw_length;		/* plaintext bytes */
} RepoPackEntry;

/* The storage key of a pack: "data/ab/ab12..." (out needs REPO_PACK_KEY_MAX bytes). */
#define REPO_PACK_KEY_MAX (5 + 3 + 2 * REPO_ID_LEN + 1)
void repo_pack_key(char out[REPO_PACK_KEY_MAX], const unsigned char pack_id[REPO_ID_LEN]);

/* Serialise / parse one 48-byte entry (also the index file's entry format). */
void repo_pack_entry_encode(unsigned char out[REPO_PACK_ENTRY_SIZE], const RepoPackEntry *e);
void repo_pack_entry_decode(RepoPackEntry *out, const unsigned char in[REPO_PACK_ENTRY_SIZE]);

/* Append the plaintext header for entries[0..n) to out. */
void repo_pack_header_build(Buf *out, const RepoPackEntry *entries, size_t n);

/*
 * Parse a decoded (plaintext) header and check it against the pack: the
 * entries must be contiguous from 0 and end at data_len (the pack size
 * minus the stored header and its 4-byte length).  *out (caller frees) gets
 * the entries.  PV_ECORRUPT with a message (no pack name: callers prefix).
 */
int repo_pack_header_parse(RepoPackEntry **out, size_t *out_n, const unsigned char *plain,
						   size_t len, uint64_t data_len);

/*
 * Read and check the header of the pack pack_id by range reads (the last 4
 * bytes, then the stored header).  keys: the repository's (NULL when plain).
 * PV_ENOTFOUND when the pack is absent; PV_ECORRUPT "pack '<id>': ..." when
 * it is truncated or its header is damaged.  *out_size gets the pack size.
 */
int repo_pack_read_header(RepoPackEntry **out, size_t *out_n, uint64_t *out_size,
						  Storage *st, const RepoKeys *keys,
						  const unsigned char pack_id[REPO_ID_LEN]);

/* ---- writer ---- */

typedef struct RepoPackWriter RepoPackWriter;

typedef struct RepoPackWriterStats
{
	uint64_t packs;				/* packs uploaded */
	uint64_t bytes;				/* their total size */
	uint64_t blobs;				/* blobs in them */
} RepoPackWriterStats;

/* pack_size 0: the repository's; max_uploads 0: 2. */
RepoPackWriter *repo_pack_writer_new(Repo *repo, uint64_t pack_size, int max_uploads);

/*
 * Add one encoded blob (the output of repo_blob_encode for id).  May upload a
 * full pack before returning (rule 1).  Thread-safe.
 */
int repo_pack_writer_add(RepoPackWriter *pw, uint8_t type, const unsigned char id[REPO_ID_LEN],
						 uint8_t codec, uint32_t raw_length, const void *blob, size_t len);

/* Upload the current partial pack (if any) and wait for every upload to end. */
int repo_pack_writer_flush(RepoPackWriter *pw);

void repo_pack_writer_stats(RepoPackWriter *pw, RepoPackWriterStats *out);

/* Frees the writer; blobs not yet uploaded are dropped (nothing becomes visible).  NULL ok. */
void repo_pack_writer_free(RepoPackWriter *pw);

#endif
