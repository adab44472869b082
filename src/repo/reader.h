/*
 * reader.h: the restore side of the repository: fetch a blob by id and
 * check it, and stream an item of a backup back with read-ahead.
 *
 * Every byte handed out has been checked: the blob decodes (the GCM tag
 * verifies in an encrypted repository), its plaintext has the raw length the
 * index promises, and its recomputed id equals the id asked for.  At the end
 * of an item its SHA-256 is compared with the manifest's.  Any failure is
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

typedef struct RepoReaderOpts
{
	int readahead;				/* chunks fetched ahead: 0 = 4; < 0 = none (fetch on read) */
	int threads;				/* fetching threads: 0 = 2 */
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
 * the item's checksum was verified).  Errors are sticky.
 */
int repo_reader_read(RepoReader *r, void *buf, size_t cap, size_t *out_n);

/* Bytes handed out so far. */
uint64_t repo_reader_offset(const RepoReader *r);

void repo_reader_free(RepoReader *r);	/* NULL ok; stops read-ahead */

#endif
