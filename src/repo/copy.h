/*
 * copy.h: copying backups, and the WAL archive, from one repository to
 * another ("pgvault copy", and keeping a source's secondary repositories in
 * step after each backup and archive-push).
 *
 * A backup is copied only when the destination lacks it (by backup id),
 * and of its blobs only those the destination lacks.  Order (format rules
 * 1-3): every pack, then the destination's index, then the manifest last,
 * so a copy that fails leaves no backup behind, only unreferenced or
 * indexed blobs that a retry reuses and prune removes.
 *
 * Chunk ids: when both repositories compute ids the same way (both plain:
 * SHA-256; both encrypted with the same id key: the same HMAC), blobs keep
 * their ids and the manifest and its tree blobs are copied as they are.
 * Otherwise every data chunk's id is recomputed with the destination's key
 * from its plaintext, the item list is rewritten with the new ids (only the
 * ids change; every other member of every item is kept) and cut into new
 * tree blobs with the destination's tree chunker, and the manifest points
 * at those.  Blobs keep the codec they were stored with (the compressed
 * bytes are re-encrypted, never recompressed); chunk boundaries stay the
 * source's, so copied backups do not deduplicate with backups made directly
 * into the destination by a repository with another chunker seed.
 *
 * Verification: every blob read from the source is decoded (its GCM tag
 * checked when encrypted), its length checked and its id recomputed before
 * anything derived from it is written; WAL objects are checked like
 * archive-get checks them (magic, length, SHA-256).  A failure is
 * PV_ECORRUPT naming the blob, its pack, the source repository and the
 * backup, and no manifest is written for that backup.
 *
 * Ids recomputed: each chunk must be read to learn its new id.  To avoid
 * reading what an earlier copy already brought over, a session seeds its
 * id map, once per kind and source of backup, from backups present in both
 * repositories (the backup's parent and the three newest of its kind and
 * source): both item lists are walked side by side (tree blobs only), and
 * pairs of chunk references of matching items (same name, size, SHA-256
 * and chunk layout) give old id -> new id.
 *
 * Locks: a session (repo_copy_begin) holds a shared lock on both
 * repositories until repo_copy_end (none in a dry run).  WAL objects need
 * none (format section 11, rule 4): repo_copy_wal_source and
 * repo_copy_wal_file take no lock.
 *
 * Threads: a session belongs to one thread; it reads and writes with its
 * own worker threads (opts.jobs).  Ownership: the caller keeps both Repos
 * and must keep them open until repo_copy_end.
 *
 * Lag records (the last part of this header): when keeping a secondary
 * repository in step fails, the primary records it under
 * records/lag/<secondary>/<what>-<id> (a metadata object, JSON), so status
 * can say which secondary lags, since when and why, and the next sync
 * retries it.
 */
#ifndef PV_REPO_COPY_H
#define PV_REPO_COPY_H

#include "common/timeutil.h"
#include "repo/manifest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;
typedef struct RepoCopy RepoCopy;

typedef struct RepoCopyOpts
{
	int jobs;					/* reading, checking and writing threads; 0 = one per CPU */
	bool dry_run;				/* read manifests and item lists only, write nothing, lock nothing */
	const char *command;		/* recorded in the lock objects; NULL = "copy" */
} RepoCopyOpts;

typedef struct RepoCopyStats
{
	uint64_t backups;			/* copied (dry run: would be) */
	uint64_t backups_present;	/* already in the destination */
	uint64_t blobs;				/* distinct blobs the copied backups reference */
	uint64_t blobs_present;		/* of those, already in the destination (dry run with
								 * recomputed ids: only what the seeding knows) */
	uint64_t blobs_written;		/* blobs stored in the destination */
	uint64_t bytes_read;		/* bytes read from the source's packs */
	uint64_t bytes_written;		/* stored size of the blobs written */
	uint64_t raw_bytes_written;	/* their plaintext size */
	uint64_t packs;				/* packs written */
	uint64_t wal_files;			/* WAL objects copied (dry run: would be) */
	uint64_t wal_present;		/* WAL objects the destination had */
	uint64_t wal_bytes;			/* stored size of the WAL objects written */
} RepoCopyStats;

/*
 * Start a session copying from -> to: take the locks, load both indexes,
 * decide whether ids are recomputed.  PV_EUSAGE when both are the same
 * repository (same config id); PV_ELOCKED when one is exclusively locked.
 */
int repo_copy_begin(RepoCopy **out, Repo *from, Repo *to, const RepoCopyOpts *opts);

/* True when chunk ids differ between the two repositories (recomputed). */
bool repo_copy_ids_recomputed(const RepoCopy *c);

/*
 * Copy backup id (a full id) unless the destination has it (*out_copied,
 * may be NULL, is then false).  A failure leaves no manifest in the
 * destination and does not end the session: the next backup may be copied.
 */
int repo_copy_one(RepoCopy *c, const char *id, bool *out_copied);

/* Copy every WAL object of source (wal/<source>/...) the destination lacks. */
int repo_copy_wal(RepoCopy *c, const char *source);

/* Totals of the session so far. */
void repo_copy_stats(const RepoCopy *c, RepoCopyStats *out);

/* Release the locks, free the session (the Repos stay the caller's).  NULL ok. */
void repo_copy_end(RepoCopy *c);

/* One backup, as a whole session (begin, one, end).  out (may be NULL) gets its totals. */
int repo_copy_backup(Repo *from, Repo *to, const char *id, const RepoCopyOpts *opts,
					 RepoCopyStats *out);

/* ---- the WAL archive, without a session (no lock, no index) ---- */

/* The sources with a WAL archive in repo (names under wal/), sorted.  Free with repo_manifest_ids_free. */
int repo_copy_wal_sources(Repo *repo, char ***out, size_t *out_n);

/*
 * Copy what the destination lacks of source's WAL archive: archive.info
 * first (PV_EREFUSED when the destination's names another database
 * system), then every archived file.  stats (may be NULL) is added to.
 */
int repo_copy_wal_source(Repo *from, Repo *to, const char *source, const RepoCopyOpts *opts,
						 RepoCopyStats *stats);

/*
 * Copy one archived file (name as PostgreSQL gives it, e.g.
 * "000000010000000000000003" or "00000002.history"), and archive.info when
 * the destination has none.  *out_copied (may be NULL) is false when the
 * destination had it.  PV_ENOTFOUND when the source's archive lacks it.
 */
int repo_copy_wal_file(Repo *from, Repo *to, const char *source, const char *name,
					   bool *out_copied);

/* ---- lag records (in the primary repository) ---- */

#define REPO_COPY_LAG_PREFIX "records/lag/"

typedef struct RepoCopyLag
{
	char *key;					/* records/lag/<secondary>/<what>-<id> */
	char *secondary;			/* the [repo:NAME] name of the secondary */
	char *url;					/* its location, as configured */
	char *what;					/* "backup" or "wal" */
	char *id;					/* the backup id, or the WAL source name */
	PvTime since;				/* first failure */
	PvTime last_attempt;
	int64_t attempts;
	char *error;				/* the last failure's message */
} RepoCopyLag;

typedef struct RepoCopyLagList
{
	RepoCopyLag *items;			/* sorted by key */
	size_t n;
} RepoCopyLagList;

/*
 * Record (or update: attempts + 1, last_attempt, error; since is kept) that
 * secondary failed to receive what/id.  secondary must be 1 to 64 of
 * [A-Za-z0-9_.-] (a [repo:NAME] name); PV_EUSAGE otherwise.
 */
int repo_copy_lag_note(Repo *primary, const char *secondary, const char *url, const char *what,
					   const char *id, const char *error);

/* Remove the record of secondary's what/id; no record is fine (returns 0). */
int repo_copy_lag_clear(Repo *primary, const char *secondary, const char *what, const char *id);

/* The record of secondary's what/id.  PV_ENOTFOUND when there is none. */
int repo_copy_lag_get(Repo *primary, const char *secondary, const char *what, const char *id,
					  RepoCopyLag *out);
void repo_copy_lag_free(RepoCopyLag *l);	/* leaves it empty */

/*
 * The lag records of secondary (NULL: of every secondary).  A record that
 * cannot be read is listed with its key, secondary, what and id from its
 * name and error saying why.
 */
int repo_copy_lag_list(Repo *primary, const char *secondary, RepoCopyLagList *out);
void repo_copy_lag_list_free(RepoCopyLagList *l);	/* leaves it empty */

#endif
