/*
 * prune.h: "pgvault repo prune": delete or repack the data no backup needs
 * (docs/repository-format.md section 9, rule 4).
 *
 * Under the exclusive lock (so no backup writes meanwhile; a running backup
 * holds a shared lock and prune fails with PV_ELOCKED):
 *   1. read every index file (a damaged one stops prune: rebuild-index
 *      first) and list the packs;
 *   2. mark every chunk and tree blob of every manifest; a manifest that
 *      cannot be read, or a blob that is in no index or no existing pack,
 *      stops prune before anything is deleted (it would be guessing);
 *   3. plan: each live blob keeps one copy; a pack with no kept copy is
 *      deleted, a pack whose kept bytes are below the threshold is repacked
 *      (its live blobs copied, as stored, into new packs), other packs stay;
 *      packs no index lists are garbage (no writer runs) and are deleted;
 *   4. write the new packs, then new index files for every surviving pack
 *      an old file to be replaced listed, then delete those old index
 *      files, then the packs; finally delete temp leftovers older than a
 *      day (local repositories).
 * A crash between any two steps leaves every manifest's blobs indexed and
 * present; what is left over (unindexed packs, temp files) goes next time.
 * With dry_run only steps 1-3 run and nothing is written or deleted.
 */
#ifndef PV_REPO_PRUNE_H
#define PV_REPO_PRUNE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

#define REPO_PRUNE_REPACK_DEFAULT 50	/* percent */
#define REPO_PRUNE_TMP_AGE_DEFAULT (24 * 3600)

typedef struct RepoPruneOpts
{
	bool dry_run;
	int repack_threshold;		/* percent 0..100: repack packs with fewer live bytes; 0 = never */
	bool lock;					/* take the exclusive lock (callers holding one pass false) */
	int64_t lock_wait_seconds;	/* wait this long for other locks to go */
	int64_t tmp_age_seconds;	/* temp files older than this go; 0 = a day, < 0 = keep */
} RepoPruneOpts;

typedef struct RepoPruneResult
{
	bool dry_run;
	uint64_t backups;			/* manifests whose blobs were kept */
	uint64_t packs;				/* packs before */
	uint64_t pack_bytes;		/* their size */
	uint64_t blobs;				/* distinct blobs indexed before */
	uint64_t live_blobs;		/* blobs some backup needs */
	uint64_t live_bytes;		/* their stored size */
	uint64_t packs_deleted;		/* nothing live in them */
	uint64_t packs_unindexed;	/* in no index: deleted as garbage */
	uint64_t packs_repacked;
	uint64_t packs_written;		/* new packs from repacking */
	uint64_t bytes_repacked;	/* live bytes copied */
	uint64_t bytes_freed;		/* storage space given back (planned, in a dry run) */
	uint64_t index_files_deleted;
	uint64_t index_files_written;
	uint64_t tmp_deleted;
} RepoPruneResult;

int repo_prune(Repo *repo, const RepoPruneOpts *opts, RepoPruneResult *out);
json_t *repo_prune_result_json(const RepoPruneResult *r);

#endif
