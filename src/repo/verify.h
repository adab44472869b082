/*
 * verify.h: read back a repository and check every byte the backups need
 * ("pgvault verify").
 *
 * A full verify reads every pack (in parallel) and checks its name (the
 * SHA-256 of its bytes), its header, and every blob in it (decoded, tag
 * verified when encrypted, raw length and recomputed id compared); it reads
 * every index file (name, decoding, format) and every manifest, walks each
 * item list and checks that every chunk a backup references is in the index
 * and in a pack that exists.  A quick verify reads no pack data: packs
 * exist and are as long as the index says, and every referenced chunk is
 * indexed (tree blobs are still read, to know the chunks).
 *
 * The result is a report, not an error: repo_verify returns 0 when it could
 * look at everything (whether or not it found damage) and a negative code
 * only when it could not run (the storage failed, a named backup does not
 * exist).  Each damaged chunk names its pack and the backups it affects.
 *
 * Verify holds a shared lock on the repository while it runs (when
 * opts->lock), so a prune cannot delete packs under it.
 *
 * Ownership: the report owns all its strings; repo_verify_report_free.
 */
#ifndef PV_REPO_VERIFY_H
#define PV_REPO_VERIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;

typedef struct RepoVerifyOpts
{
	bool quick;					/* presence and sizes only */
	int jobs;					/* parallel pack readers; 0 = one per CPU */
	const char *const *backups;	/* ids, unique prefixes or "latest"; NULL = all */
	size_t nbackups;
	bool lock;					/* take a shared lock while verifying */
} RepoVerifyOpts;

typedef enum RepoVerifyProblemType
{
	REPO_VERIFY_INDEX,			/* an index file: object = its key */
	REPO_VERIFY_PACK,			/* a pack as a whole: object = pack id */
	REPO_VERIFY_CHUNK,			/* one blob: object = blob id, pack = where */
	REPO_VERIFY_MANIFEST,		/* a backup's manifest or item list: object = backup id */
} RepoVerifyProblemType;

typedef struct RepoVerifyProblem
{
	RepoVerifyProblemType type;
	char *object;
	char *pack;					/* REPO_VERIFY_CHUNK: the pack id, NULL when not indexed */
	bool tree;					/* REPO_VERIFY_CHUNK: a tree blob (item list) */
	char *message;
	char **backups;				/* backups affected (ids), sorted */
	size_t nbackups;
} RepoVerifyProblem;

typedef struct RepoVerifyBackup
{
	char *id;
	char *kind;
	char *source;
	bool damaged;
	uint64_t items;
	uint64_t chunks;			/* chunk references (duplicates counted) */
	uint64_t bad_chunks;		/* distinct damaged or missing chunks it needs */
	char *error;				/* why it cannot even be walked, or NULL */
} RepoVerifyBackup;

typedef struct RepoVerifyReport
{
	bool quick;
	uint64_t packs;				/* packs checked */
	uint64_t pack_bytes;		/* their size */
	uint64_t blobs;				/* blobs decoded and checked (full) or located (quick) */
	uint64_t unindexed_packs;	/* packs no index lists (garbage or a running backup's) */
	uint64_t index_files;
	RepoVerifyBackup *backups;	/* in id order */
	size_t nbackups;
	RepoVerifyProblem *problems;
	size_t nproblems;
	size_t ndamaged;			/* backups damaged */
} RepoVerifyReport;

/* Run a verify; see the top of this file for what 0 means. */
int repo_verify(Repo *repo, const RepoVerifyOpts *opts, RepoVerifyReport *out);

/* True when nothing is wrong. */
bool repo_verify_report_ok(const RepoVerifyReport *r);

const char *repo_verify_problem_type_name(RepoVerifyProblemType t);	/* "index", "pack", ... */

/* The report as JSON (a new reference). */
json_t *repo_verify_report_json(const RepoVerifyReport *r);

void repo_verify_report_free(RepoVerifyReport *r);	/* leaves it empty */

#endif
