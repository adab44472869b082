/*
 * catalog.h: what pgvault records about backups besides the backups
 * themselves: pins (legal holds), verify results and drill reports.  They
 * live in the repository, under records/ (docs/repository-format.md,
 * section "Records"), so every host that can read the backups can see the
 * evidence too:
 *
 *   records/pins/<backup id>                         a pin
 *   records/verify/<backup id>/<record id>.<ok|failed>   one verify of one backup
 *   records/drills/<backup id>/<record id>.<ok|failed>   one drill report
 *   records/restores/<backup id>/<record id>.<ok|failed> one real restore
 *
 * A record id is a UTC time in milliseconds and 6 random hex digits
 * ("20261122T023900.123Z-a1b2c3"), so names sort in time order (also two
 * records of one backup written within a second, as a verify and a
 * drill run back to back may be).  The outcome is
 * in the name, so a listing (one LIST per prefix) tells list and status
 * which backups were verified or drilled, when, and whether it passed,
 * without reading any record.  Contents are metadata objects
 * (repo_meta_encode: zstd, checksummed, encrypted in encrypted
 * repositories), JSON.
 *
 * Invariants:
 *  1. Records are written once (no overwrite) and never changed; pins are
 *     deleted by unpin, verify records by expire (with their backup) and
 *     when more than CATALOG_VERIFY_KEEP exist for one backup; drill
 *     reports are evidence and are never deleted by pgvault.
 *  2. Records never hold data of the backups, only facts about them, and
 *     nothing in them is needed to restore: a repository without records/
 *     is complete.  Prune and verify ignore records/.
 *
 * Ownership: lists and states own their strings (the matching _free).
 */
#ifndef PV_OPS_CATALOG_H
#define PV_OPS_CATALOG_H

#include "common/timeutil.h"
#include "repo/manifest.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;
struct RepoVerifyReport;

#define CATALOG_VERIFY_KEEP 5	/* verify records kept per backup */
#define CATALOG_RECORD_ID_LEN 27	/* "20261122T023900.123Z-a1b2c3" */

/* A new record id for time t (random suffix); is text one? */
void catalog_record_id_new(char out[CATALOG_RECORD_ID_LEN + 1], PvTime t);
bool catalog_record_id_valid(const char *id);

typedef enum CatalogType
{
	CATALOG_VERIFY,
	CATALOG_DRILL,
	CATALOG_RESTORE,
} CatalogType;

const char *catalog_type_name(CatalogType t);	/* "verify", "drill", "restore" */

typedef struct CatalogRecord
{
	CatalogType type;
	char backup[REPO_BACKUP_ID_LEN + 1];
	char id[CATALOG_RECORD_ID_LEN + 1];	/* record id */
	PvTime time;				/* from the record id (milliseconds) */
	bool ok;
	char *key;					/* the object's key */
} CatalogRecord;

typedef struct CatalogRecordList
{
	CatalogRecord *items;		/* oldest first (record id order) */
	size_t n;
} CatalogRecordList;

/*
 * Store a record about backup_id: the object body (NULL: {}) with a member
 * "record" added first, {"format":"pgvault-record","version":1,"type",
 * "id","backup","time","ok"}, so the caller's object is what was stored.
 * out_id (may be NULL) gets the record id.
 */
int catalog_record_write(Repo *repo, CatalogType type, const char *backup_id, bool ok,
						 json_t *body, char out_id[CATALOG_RECORD_ID_LEN + 1]);

/*
 * The records of a type, of one backup (backup_id) or of all (NULL).  Names
 * under records/ that are not records are skipped (with a debug message).
 */
int catalog_records_list(Repo *repo, CatalogType type, const char *backup_id,
						 CatalogRecordList *out);
void catalog_records_free(CatalogRecordList *l);	/* leaves it empty */

/* Read and decode one record (*out: new reference).  PV_ECORRUPT, PV_ENOTFOUND. */
int catalog_record_read(Repo *repo, const CatalogRecord *r, json_t **out);

/* Delete every verify record of a backup (what expire does with the backup). */
int catalog_backup_forget(Repo *repo, const char *backup_id);

/*
 * Record a verify run (hook for "pgvault verify"): one record per backup of
 * the report, ok when the backup was not damaged, with the run's time,
 * duration and whether it was quick; then trims each backup's records to the
 * newest CATALOG_VERIFY_KEEP.  Failing to record is logged and returned,
 * never hides the verify result itself (the caller decides).
 */
int catalog_verify_record(Repo *repo, const struct RepoVerifyReport *report, int64_t elapsed_ms);

/*
 * "pgvault verify" with its evidence kept: repo_verify, timed, then
 * catalog_verify_record of its report (a failure to record is a warning:
 * the verify result stands).  The hook src/cli/verify.c calls.
 */
struct RepoVerifyOpts;
int catalog_verify_run(Repo *repo, const struct RepoVerifyOpts *opts, struct RepoVerifyReport *out);

/*
 * A real restore, as "restore" records it (for restore --dry-run's
 * estimate).  Strings are lent; source, kind and size may be left NULL/0:
 * catalog_restore_record then takes them from the backup's manifest.
 */
typedef struct CatalogRestoreInfo
{
	const char *backup_id;
	const char *source;
	const char *kind;			/* "logical", "physical" */
	const char *target_kind;	/* "pgdata", "database" */
	const char *target;			/* the data directory or the database */
	int64_t duration_ms;		/* the restore itself */
	int64_t recovery_ms;		/* physical with --start: until recovery ended; else -1 */
	uint64_t bytes;				/* what the restore wrote (as it reports it) */
	uint64_t size;				/* the backup's logical bytes */
	int jobs;
	bool partial;				/* only part of the backup (--table, delta, ...) */
	bool ok;
} CatalogRestoreInfo;

/*
 * Store a restore record: records/restores/<backup id>/<record id>.<ok|failed>,
 * whose body is {"source","kind","duration_ms","recovery_ms" (null when not
 * measured),"bytes","size","jobs","target_kind","target","partial",
 * "outcome","host","tool_version"} after the envelope.  Errors are those of
 * catalog_record_write (the caller warns; the restore itself stands).
 */
int catalog_restore_record(Repo *repo, const CatalogRestoreInfo *info,
						   char out_id[CATALOG_RECORD_ID_LEN + 1]);

/* ---- pins ---- */

typedef struct CatalogPin
{
	char id[REPO_BACKUP_ID_LEN + 1];
	PvTime time;				/* when it was pinned (0 when unreadable) */
	char *user;					/* may be "" */
	char *host;
	char *note;					/* may be "" */
} CatalogPin;

typedef struct CatalogPinList
{
	CatalogPin *items;			/* in backup id order */
	size_t n;
} CatalogPinList;

/*
 * Pin backup_id (a full id; the caller resolves prefixes) with an optional
 * note.  Pinning a pinned backup is PV_EEXISTS (the existing pin, with its
 * note, stays).  The backup must exist (PV_ENOTFOUND).
 */
int catalog_pin(Repo *repo, const char *backup_id, const char *note);
/* Remove the pin.  PV_ENOTFOUND "backup '%s' is not pinned". */
int catalog_unpin(Repo *repo, const char *backup_id);
/* Every pin.  With details, each pin object is read (time, user, note); else only ids. */
int catalog_pins(Repo *repo, bool details, CatalogPinList *out);
void catalog_pins_free(CatalogPinList *l);	/* leaves it empty */
bool catalog_pins_has(const CatalogPinList *l, const char *backup_id);

/* ---- everything at once, for list, show and status ---- */

typedef struct CatalogState
{
	CatalogPinList pins;
	CatalogRecordList verify;
	CatalogRecordList drills;
} CatalogState;

/* Three listings (pins, verify, drills); no record is read. */
int catalog_state_load(CatalogState *out, Repo *repo);
void catalog_state_free(CatalogState *st);	/* leaves it empty */

/* The newest record of a type for a backup, or NULL (lent from st). */
const CatalogRecord *catalog_state_last(const CatalogState *st, CatalogType type,
										const char *backup_id);

/* {"time": "...", "ok": bool, "record": id} for a record, or JSON null for NULL. */
json_t *catalog_record_summary_json(const CatalogRecord *r);

#endif
