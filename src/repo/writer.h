/*
 * writer.h: writing one backup into a repository.
 *
 *     RepoWriter *w;
 *     repo_writer_new(&w, repo, &(RepoWriterOpts){ .kind = "logical", .source = "main" });
 *     RepoWriterItem *it;
 *     repo_writer_item_begin(&it, w, &(RepoItemSpec){ .name = "data/t/0", .type = "stream" });
 *     repo_writer_item_write(it, bytes, n);   ... as often as needed
 *     repo_writer_item_end(it, NULL);
 *     repo_writer_commit(w, metadata);      packs, then index, then manifest
 *     repo_writer_free(w);
 *
 * Pipeline: the thread writing an item cuts it into chunks (content-defined
 * by default, fixed offsets when spec.chunk_size is set) and hashes the whole
 * item (its sha256); each chunk goes, through a bounded queue, to worker
 * threads that compute its id, look it up (in this backup, then in the
 * repository index), and compress, encrypt and pack the new ones.  Memory is
 * bounded whatever the input size: per writer about
 * (2 * jobs + open items) chunks in flight plus (1 + 2) packs, plus the
 * list of chunk ids of the items still open and one set of the ids this
 * backup references (about 50 bytes per distinct chunk: 2 MB for 40 GiB of
 * 1 MiB chunks).
 *
 * Threads: items may be written concurrently, one item per thread; the
 * other calls (new, commit, abort, free) belong to one thread and need every
 * item ended first.  Errors are sticky: after the first failure every call
 * returns it, and only abort/free remain useful.
 *
 * The writer takes a shared repository lock (lock.h) for its lifetime
 * unless opts.lock is given (then the caller's lock is checked before the
 * manifest is written, and stays the caller's).
 */
#ifndef PV_REPO_WRITER_H
#define PV_REPO_WRITER_H

#include "common/timeutil.h"
#include "repo/manifest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;
typedef struct RepoLock RepoLock;
typedef struct RepoWriter RepoWriter;
typedef struct RepoWriterItem RepoWriterItem;
struct json_t;

typedef struct RepoWriterOpts
{
	const char *kind;			/* "logical", "physical", "file", ... (required) */
	const char *source;			/* source name, or NULL */
	const char *parent;			/* backup id this one is incremental against, or NULL */
	int jobs;					/* worker threads; 0 = one per CPU */
	const char *compression;	/* NULL = the repository's default ("zstd:3", "lz4", "none") */
	uint64_t pack_size;			/* 0 = the repository's */
	RepoLock *lock;				/* a lock the caller holds, or NULL: the writer takes a shared one */
	const char *command;		/* for the lock object ("backup"); NULL = kind */
} RepoWriterOpts;

typedef struct RepoItemSpec
{
	const char *name;			/* required, unique within the backup */
	const char *type;			/* "file", "dir", "symlink", "stream" (NULL = "stream") */
	bool has_mode;				/* mode and mtime are meaningful */
	uint32_t mode;
	int64_t mtime;
	const char *link;			/* symlink target, or NULL */
	uint32_t chunk_size;		/* > 0: fixed-offset chunks of this size; 0: content-defined */
	const struct json_t *meta;	/* per-item metadata object (copied), or NULL */
} RepoItemSpec;

typedef struct RepoWriterStats
{
	uint64_t items;
	uint64_t logical_bytes;		/* bytes of all items */
	uint64_t chunks;			/* chunk references, duplicates counted */
	uint64_t stored_bytes;		/* stored size of the distinct data chunks referenced */
	uint64_t new_chunks;		/* blobs this backup added (data and tree) */
	uint64_t new_bytes;			/* their stored size */
	uint64_t new_raw_bytes;		/* their plaintext size */
	uint64_t packs;				/* packs written */
} RepoWriterStats;

/* What an ended item amounted to. */
typedef struct RepoItemResult
{
	uint64_t size;
	unsigned char sha256[32];
	size_t nchunks;
} RepoItemResult;

int repo_writer_new(RepoWriter **out, Repo *repo, const RepoWriterOpts *opts);

/* The backup id (chosen at new: start time + random). */
const char *repo_writer_id(const RepoWriter *w);

int repo_writer_item_begin(RepoWriterItem **out, RepoWriter *w, const RepoItemSpec *spec);
int repo_writer_item_write(RepoWriterItem *it, const void *data, size_t len);
/* Waits for the item's chunks, records it in the item list, frees it.  out may be NULL. */
int repo_writer_item_end(RepoWriterItem *it, RepoItemResult *out);
/* Forget an item that cannot be finished (frees it); the backup goes on. */
void repo_writer_item_cancel(RepoWriterItem *it);

/*
 * Record an item whose chunks are already in the repository (an unchanged
 * file of a physical backup, taken from the parent's manifest): checks that
 * every chunk is in the index (PV_ENOTFOUND naming the first missing one,
 * so the caller can read the file instead).  spec as for begin; size and
 * sha256 describe the item.
 */
int repo_writer_item_add_existing(RepoWriter *w, const RepoItemSpec *spec, uint64_t size,
								  const unsigned char sha256[32], const RepoChunkRef *chunks,
								  size_t nchunks);

/*
 * Finish the backup: end the item list, upload the remaining packs, write
 * the index, then the manifest (format rules 1-3).  metadata: the kind's
 * object (copied), or NULL.  PV_EUSAGE while items are open.
 */
int repo_writer_commit(RepoWriter *w, const struct json_t *metadata);

/* Stop without a manifest: nothing of this backup becomes visible as a backup. */
void repo_writer_abort(RepoWriter *w);

void repo_writer_stats(RepoWriter *w, RepoWriterStats *out);

/* Frees the writer (aborting it if it was neither committed nor aborted). NULL ok. */
void repo_writer_free(RepoWriter *w);

#endif
