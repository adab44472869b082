/*
 * reader.h: the restore side of the repository: fetch a blob by id and
 * check it, and stream an item of a backup back with read-ahead.
 *
 * Every byte handed out has been checked: the blob decodes (the GCM tag
 * verifies in an encrypted repository), its plaintext has the raw length the
 * index promises, and its recomputed id equals the id asked for.  Each byte
 * is hashed once, for its chunk id: the chunk ids and offsets come from a
 * manifest that is itself checksummed (and id-checked tree blobs), so they
 * authenticate the whole item.  The item's whole-file SHA-256 is compared
 * only on request (check_item_sha256): what it adds is a check of the
 * writer itself (that its chunk list reassembles the bytes it hashed), at
 * the price of hashing every byte twice.  Any failure is
 * PV_ECORRUPT naming the chunk, its pack, and the backup and item:
 *     "chunk <id> in pack <pack> is corrupt (backup <id>, item <name>)"
 * A chunk the index does not know, or a pack missing from storage, is
 * reported the same way ("... is not in the index", "pack <pack> holding
 * chunk <id> is missing"): the backup cannot be restored as it is.
 *
 * A RepoReader belongs to one thread; its read-ahead threads are its own.
 * Several readers (items) may be used at once from different threads.
 */
#ifndef PV_REPO_READER_H
#define PV_REPO_READER_H

#include "common/buf.h"
#include "repo/crypto.h"
#include "repo/manifest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;

/*
 * Fetch blob id, decode and check it; append its plaintext to out.  context
 * (may be NULL) is added to error messages in parentheses ("backup X, item
 * Y").  out is unchanged on failure.
 */
int repo_chunk_fetch(Repo *repo, const unsigned char id[REPO_ID_LEN], Buf *out,
					 const char *context);

/*
 * Open pack handles (storage_reader_open), kept so that the many chunks of
 * one pack are read with one open: a small LRU shared by any number of
 * readers of one repository, in any threads.  A reader without one keeps a
 * private cache for its item.  A handle that fails is dropped, so the next
 * read opens the pack afresh; a pack replaced or truncated under the cache
 * gives the reader's usual "pack ... is truncated" or "chunk ... is corrupt"
 * error, never wrong bytes (every chunk's id is still recomputed).  The
 * cache must be freed before repo; it lends nothing out.
 */
typedef struct RepoPackCache RepoPackCache;

/* max: handles kept open (0 = 8). */
RepoPackCache *repo_pack_cache_new(Repo *repo, int max);
void repo_pack_cache_free(RepoPackCache *c);	/* NULL ok; no reader may still use it */
/* Packs opened so far (for tests and statistics). */
uint64_t repo_pack_cache_opens(RepoPackCache *c);

/* repo_chunk_fetch reading through cache (NULL: one ranged read per call, no handle kept). */
int repo_chunk_fetch_cached(Repo *repo, RepoPackCache *cache, const unsigned char id[REPO_ID_LEN],
							Buf *out, const char *context);

typedef struct RepoReaderOpts
{
	int readahead;				/* chunks fetched ahead: 0 = 4; < 0 = none (fetch on read) */
	int threads;				/* fetching threads: 0 = 2 */
	RepoPackCache *packs;		/* shared pack handles; NULL: the reader's own */
	bool check_item_sha256;		/* also compare the item's whole-file SHA-256 (see above) */
} RepoReaderOpts;

typedef struct RepoReader RepoReader;

/*
 * Open item (of backup m) for reading.  The reader copies what it needs;
 * item and m may be freed afterwards.  opts may be NULL.
 */
int repo_reader_open(RepoReader **out, Repo *repo, const RepoManifest *m, const RepoItem *item,
					 const RepoReaderOpts *opts);

/*
 * Copy up to cap bytes of the item into buf; *out_n is 0 at the end (after
 * the item's checksum was verified, when asked to).  Errors are sticky.
 */
int repo_reader_read(RepoReader *r, void *buf, size_t cap, size_t *out_n);

/* Bytes handed out so far. */
uint64_t repo_reader_offset(const RepoReader *r);

void repo_reader_free(RepoReader *r);	/* NULL ok; stops read-ahead */

#endif
