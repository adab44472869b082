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
 * Incremental verify (issue 7): a full verify that reads packs records
 * which it read, when and with what outcome in the pack-check record
 * (repo/packcheck.h).  Mode NEW reads only the packs no verify has read
 * (or whose last read found damage); SAMPLE reads those plus a random
 * share of the rest (sample_percent of the remaining packs by count,
 * rounded up).  In both, packs last read longer ago than opts->period are
 * read too ("forced"), so every byte is read within the period.  Packs not
 * read ("skipped") still get the quick size check; manifests, item lists
 * and the index are always walked in full.  A damaged pack-check record is
 * replaced (every pack then counts as never read): report->packcheck_warning.
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
typedef struct RepoManifest RepoManifest;
typedef struct RepoVerifyRun RepoVerifyRun;	/* one verify while it runs (for backup_check) */

/*
 * An extra check of one backup, run by the caller's layer (the WAL a
 * physical backup needs lives in src/pg, above this one): called once for
 * every backup whose manifest could be read, before any pack is read.  It
 * reports what it finds with repo_verify_backup_problem; a negative return
 * (it could not look) stops the verify with that code.
 */
typedef int (*RepoVerifyBackupFn) (RepoVerifyRun *run, Repo *repo, const RepoManifest *m,
								   void *payload);

#define REPO_VERIFY_ID_HEX 32	/* bytes of a pack id (REPO_ID_LEN) */

typedef enum RepoVerifyMode
{
	REPO_VERIFY_MODE_FULL = 0,	/* read every pack (the default) */
	REPO_VERIFY_MODE_NEW,		/* packs never read, damaged before, or older than the period */
	REPO_VERIFY_MODE_SAMPLE,	/* NEW plus sample_percent of the other packs */
} RepoVerifyMode;

/* Why a pack was read. */
typedef enum RepoVerifyReason
{
	REPO_VERIFY_READ_FULL,		/* a full verify reads everything */
	REPO_VERIFY_READ_NEW,		/* no verify has read it */
	REPO_VERIFY_READ_DAMAGED,	/* the last read found damage in it */
	REPO_VERIFY_READ_PERIOD,	/* last read longer ago than the period */
	REPO_VERIFY_READ_SAMPLE,	/* chosen at random */
} RepoVerifyReason;

typedef struct RepoVerifyOpts
{
	bool quick;					/* presence and sizes only */
	RepoVerifyMode mode;		/* not with quick */
	double sample_percent;		/* MODE_SAMPLE: 0 to 100 */
	int64_t period;				/* seconds; NEW/SAMPLE read packs last read before now - period; 0: no period */
	int64_t now;				/* unix seconds, 0 = the clock (tests) */
	uint64_t seed;				/* MODE_SAMPLE: 0 = random (tests fix it) */
	RepoVerifyBackupFn backup_check;	/* NULL: none */
	void *backup_check_payload;
	int jobs;					/* parallel pack readers; 0 = one per CPU */
	const char *const *backups;	/* ids, unique prefixes or "latest"; NULL = all */
	size_t nbackups;
	bool lock;					/* take a shared lock while verifying */
	bool quarantine;			/* set aside the damage found (quarantine.h) */
} RepoVerifyOpts;

typedef enum RepoVerifyProblemType
{
	REPO_VERIFY_INDEX,			/* an index file: object = its key */
	REPO_VERIFY_PACK,			/* a pack as a whole: object = pack id */
	REPO_VERIFY_CHUNK,			/* one blob: object = blob id, pack = where */
	REPO_VERIFY_MANIFEST,		/* a backup's manifest or item list: object = backup id */
	REPO_VERIFY_WAL,			/* WAL a physical backup needs: object = segment name */
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
	uint64_t bad_wal;			/* WAL segments it needs that are missing */
	char *error;				/* why it cannot even be walked, or NULL */
} RepoVerifyBackup;

/* A number of packs and their size. */
typedef struct RepoVerifyCount
{
	uint64_t packs;
	uint64_t bytes;
} RepoVerifyCount;

typedef struct RepoVerifyPackRead
{
	char id[2 * REPO_VERIFY_ID_HEX + 1];
	uint64_t bytes;
	RepoVerifyReason reason;
	bool ok;					/* no damage found in it */
} RepoVerifyPackRead;

typedef struct RepoVerifyReport
{
	bool quick;
	RepoVerifyMode mode;
	double sample_percent;
	int64_t period;				/* seconds (0: none) */
	uint64_t packs;				/* packs checked (read, or sized when quick) */
	uint64_t pack_bytes;		/* their size */
	/* How the packs to read were chosen (full: all in read_full). */
	RepoVerifyCount read_full;
	RepoVerifyCount read_new;	/* never read, or damaged when last read */
	RepoVerifyCount read_forced;	/* last read longer ago than the period */
	RepoVerifyCount read_sampled;
	RepoVerifyCount skipped;	/* read within the period: size check only */
	RepoVerifyPackRead *read;	/* every pack read, in pack id order */
	size_t nread;
	char *packcheck_warning;	/* the pack-check record could not be read or written, or NULL */
	uint64_t blobs;				/* blobs decoded and checked (full) or located (quick) */
	uint64_t unindexed_packs;	/* packs no index lists (garbage or a running backup's) */
	uint64_t index_files;
	RepoVerifyBackup *backups;	/* in id order */
	size_t nbackups;
	RepoVerifyProblem *problems;
	size_t nproblems;
	size_t ndamaged;			/* backups damaged */
	/* quarantine.h: damaged blobs recorded by this run, and ones recorded before that it met */
	uint64_t quarantined;
	uint64_t quarantined_seen;
	char *quarantine_warning;	/* the record could not be written, or NULL */
} RepoVerifyReport;

/* Run a verify; see the top of this file for what 0 means. */
int repo_verify(Repo *repo, const RepoVerifyOpts *opts, RepoVerifyReport *out);

/*
 * From a backup_check: a problem of the backup being checked (its only
 * affected backup), of type REPO_VERIFY_WAL (counted in its bad_wal) or
 * REPO_VERIFY_MANIFEST (its error).
 */
void repo_verify_backup_problem(RepoVerifyRun *run, RepoVerifyProblemType type, const char *object,
								const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* True when nothing is wrong. */
bool repo_verify_report_ok(const RepoVerifyReport *r);

const char *repo_verify_problem_type_name(RepoVerifyProblemType t);	/* "index", "pack", ... */
const char *repo_verify_mode_name(RepoVerifyMode m);	/* "full", "new", "sample" */
const char *repo_verify_reason_name(RepoVerifyReason r);	/* "full", "new", "damaged", "period", "sample" */

/* The report as JSON (a new reference). */
json_t *repo_verify_report_json(const RepoVerifyReport *r);

void repo_verify_report_free(RepoVerifyReport *r);	/* leaves it empty */

#endif
