/*
 * index.h: where each blob lives.  The in-memory index of a repository
 * (the union of its index files, plus the packs this process wrote since)
 * and the index file format (docs/repository-format.md section 6).
 *
 * Memory: entries live in one dense array of 48 bytes each (id 32; pack
 * number 4, whose top bit is the blob type and next two bits the codec, so
 * at most 2^29 packs; offset 4, length 4, raw length 4); an open-addressing table (linear probing, hash = the id's first 8
 * bytes, ids being uniformly distributed) holds a u32 per slot, kept between
 * 35 % and 70 % full.  The dense array grows by a quarter at a time, so a
 * blob costs 54 to 72 bytes, about 60 on average, plus 32 bytes per pack
 * (the pack id table).
 *
 * The same id may be listed in several packs: every listing is kept (prune
 * and stats need them) but lookups return the first one added.  An exact
 * repeat (same id, pack and offset, e.g. two index files listing the same
 * pack after an interrupted prune) is dropped.
 *
 * Thread safety: a RepoIndex is guarded by a read-write lock; lookups run in
 * parallel and adds are exclusive.  Lent pointers into the index (pack ids)
 * stay valid until repo_index_free: packs are never removed from memory.
 *
 * Persistence: entries are "persisted" when they came from an index file or
 * were written into one by repo_index_flush; packs added by this process are
 * not, until the next flush writes them all into new index files (format
 * rule 2: any writer's commit makes every durable pack of the process
 * indexed before its manifest is written).
 */
#ifndef PV_REPO_INDEX_H
#define PV_REPO_INDEX_H

#include "repo/pack.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct RepoIndex RepoIndex;

#define REPO_INDEX_MAGIC "PVIX"
/* A writer starts a new index file after this many entries. */
#define REPO_INDEX_FILE_MAX_ENTRIES 100000

/* Where a blob lives.  pack_id is lent (valid until the index is freed). */
typedef struct RepoIndexHit
{
	const unsigned char *pack_id;
	uint8_t type;
	uint8_t codec;
	uint32_t offset;
	uint32_t length;
	uint32_t raw_length;
} RepoIndexHit;

RepoIndex *repo_index_new(void);
void repo_index_free(RepoIndex *idx);	/* NULL ok */

/*
 * Add the entries of one pack (all of them at once, so they stay together in
 * the next index file).  persisted: they are already in an index file.
 */
void repo_index_add_pack(RepoIndex *idx, const unsigned char pack_id[REPO_ID_LEN],
						 const RepoPackEntry *entries, size_t n, bool persisted);

/* Find a blob.  Returns true and fills *out (if not NULL) when present. */
bool repo_index_lookup(RepoIndex *idx, const unsigned char id[REPO_ID_LEN], RepoIndexHit *out);

/* Entries (every listing, duplicates included) and distinct packs. */
size_t repo_index_count(RepoIndex *idx);
size_t repo_index_pack_count(RepoIndex *idx);

/*
 * Call fn for every listing (duplicates included), in the order they were
 * added; fn returns 0 to go on or a negative code to stop (returned).  The
 * index is read-locked meanwhile: fn must not add to it.
 */
typedef int (*RepoIndexFn) (const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit,
							void *payload);
int repo_index_foreach(RepoIndex *idx, RepoIndexFn fn, void *payload);

/* ---- index files ---- */

/*
 * Parse the plaintext of an index file: fn is called once per pack record
 * with its entries (a lent array).  PV_ECORRUPT with a message (no file
 * name: callers prefix) when the bytes are not a valid index file.
 */
typedef int (*RepoIndexFileFn) (const unsigned char pack_id[REPO_ID_LEN],
								const RepoPackEntry *entries, size_t n, void *payload);
int repo_index_file_parse(const unsigned char *plain, size_t len, RepoIndexFileFn fn,
						  void *payload);

/*
 * Build index file plaintexts.  Begin with repo_index_file_init, add the
 * packs, then take the bytes from .out.  Packs must be added whole.
 */
typedef struct RepoIndexFileBuilder
{
	Buf out;
	uint32_t npacks;
	size_t nentries;
} RepoIndexFileBuilder;
void repo_index_file_init(RepoIndexFileBuilder *b);
void repo_index_file_add_pack(RepoIndexFileBuilder *b, const unsigned char pack_id[REPO_ID_LEN],
							  const RepoPackEntry *entries, size_t n);
void repo_index_file_free(RepoIndexFileBuilder *b);

/*
 * Flushing (used by repo_index_flush in repo.c, which encodes and stores the
 * files): take every pack not yet persisted as index file plaintexts, each
 * of up to about REPO_INDEX_FILE_MAX_ENTRIES entries.  The packs count as
 * persisted from now on, so concurrent flushes never write them twice;
 * repo_index_flush_end with written = false hands them back for the next
 * flush.  Frees f.
 */
typedef struct RepoIndexFlush
{
	Buf *files;					/* plaintexts, nfiles of them */
	size_t nfiles;
	void *priv;
} RepoIndexFlush;
RepoIndexFlush *repo_index_flush_begin(RepoIndex *idx);
void repo_index_flush_end(RepoIndex *idx, RepoIndexFlush *f, bool written);

#endif
