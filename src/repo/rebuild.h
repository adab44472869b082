/*
 * rebuild.h: "pgvault repo rebuild-index": recreate the index from the pack
 * headers alone, after index files were lost or damaged.
 *
 * Under the exclusive lock: list the packs, read each one's header (in
 * parallel, range reads only), write new index files covering every pack
 * whose header is sound, and only then delete the index files that were
 * there before (format rule 4: the new files are durable before the old
 * ones go).  A pack whose header is damaged is reported; if a readable old
 * index file listed it, those old entries are carried over (the blobs may
 * well be intact: verify tells), so a rebuild never loses what the index
 * knew.  A crash at any point leaves the old files, the new ones, or both.
 */
#ifndef PV_REPO_REBUILD_H
#define PV_REPO_REBUILD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;

typedef struct RepoRebuildOpts
{
	int jobs;					/* parallel header reads; 0 = one per CPU */
	bool lock;					/* take the exclusive lock (callers holding one pass false) */
	int64_t lock_wait_seconds;	/* wait this long for other locks to go */
} RepoRebuildOpts;

typedef struct RepoRebuildResult
{
	uint64_t packs;				/* packs indexed from their header */
	uint64_t blobs;				/* entries written */
	uint64_t bad_packs;			/* packs whose header is damaged */
	uint64_t carried_packs;		/* of those, packs kept from an old index file */
	uint64_t old_files;			/* index files removed */
	uint64_t new_files;			/* index files written */
	char **bad;					/* messages about the damaged packs (bad_packs of them) */
} RepoRebuildResult;

int repo_rebuild_index(Repo *repo, const RepoRebuildOpts *opts, RepoRebuildResult *out);
json_t *repo_rebuild_result_json(const RepoRebuildResult *r);
void repo_rebuild_result_free(RepoRebuildResult *r);	/* leaves it empty */

#endif
