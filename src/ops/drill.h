/*
 * drill.h: prove a backup restorable ("pgvault drill"): restore it into a
 * scratch PostgreSQL cluster that pgvault starts itself, check the result
 * against what the backup recorded, measure the time against the recovery
 * time objective, record the report in the repository, and remove the
 * scratch cluster whatever happened.
 *
 * Logical and physical backups.  The steps for a logical backup of one
 * database:
 *
 *   1. pick the backup (an id, a prefix, "latest", or a random one of the
 *      last N days) and read its catalog: every table's row count and
 *      content fingerprint (fingerprint.h), sequences, materialized views,
 *      large objects, index names;
 *   2. scratch cluster: initdb (the local binaries of the backup's major
 *      version or newer) into a new directory under drill-dir, start it
 *      listening only on a Unix socket in that directory (mode 0700): trust
 *      authentication is safe because nobody else can reach the socket.
 *      Run as root, the server runs as an unprivileged user (drill-user,
 *      "postgres") through runuser, as PostgreSQL requires;
 *   3. restore (pglogical_restore) into a database of the source's name,
 *      with --no-owner --no-privileges (roles are not part of a one-database
 *      backup); the fault hook (fault_sql) runs next, for tests;
 *   4. checks, each "ok", "warning" or "failed":
 *        tables         every table's row count and fingerprint, recomputed
 *                       in parallel (COPY ... TO STDOUT), equal the backup's
 *        sequences      last_value and is_called as recorded
 *        matviews       populated ones are populated
 *        large_objects  their number
 *        indexes        every index is valid; every index the catalog names
 *                       exists (primary keys and unique constraints hold:
 *                       their indexes were built)
 *        foreign_keys   no row references a missing one (an anti-join per
 *                       constraint, with the constraint's own operators and
 *                       MATCH rule)
 *        not_valid      no constraint is NOT VALID unless it was NOT VALID
 *                       in the backup's schema
 *        sql:N          the user's checks (checks_file: "QUERY => EXPECTED")
 *        rto            total time <= the RTO (when one is configured)
 *   5. the report (JSON) is stored as a drill record (catalog.h), then the
 *      scratch cluster is stopped and its directory removed.
 *
 * A logical backup of every database (--all): every database is created
 * first (target_create: the source's encoding and locale, or C), then the
 * whole backup restored as `pgvault restore` does (globals, tablespaces
 * left out, owners and grants kept), a "globals" check says every role of
 * the backup exists, and step 4 runs for each database with its checks
 * named "DATABASE:CHECK" (member "database"); the user's checks run once,
 * in database postgres.  The report's backup.database is "*" and
 * backup.databases lists them.  The fault hook runs in the first database,
 * or in NAME when its first line is "\connect NAME" (or "\c NAME").
 *
 * A failed restore is a failed drill (the report says which step and why),
 * not an error: drill_run returns 0 whenever it could judge the backup.  It
 * returns an error only when it could not: no such backup, not a logical
 * one, no PostgreSQL binaries, the scratch cluster would not start.
 *
 * Times: setup (initdb and start), restore, checks, total (all three); the
 * RTO is compared with the total, which stands for "a server is there and
 * the data is back and proven" (cleanup is not counted).
 *
 * Signals: while a scratch cluster runs, SIGINT/SIGTERM/SIGHUP stop its
 * postmaster (SIGQUIT) before pgvault dies; the directory is then left
 * behind and named in the log.
 */
#ifndef PV_OPS_DRILL_H
#define PV_OPS_DRILL_H

#include "ops/catalog.h"
#include "repo/manifest.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

typedef struct DrillOpts
{
	Repo *repo;
	const char *backup;			/* id, unique prefix or "latest"; NULL with random */
	bool random;				/* a random logical backup ... */
	int64_t random_days;		/* ... that started within this many days (0 = any) */
	const char *source;			/* latest/random: only backups of this source (NULL = any) */
	const char *kind;			/* latest/random: only this kind ("logical", "physical"; NULL = both) */
	const char *database;		/* latest/random: only logical backups holding it (NULL = any) */
	const char *bindir;			/* PostgreSQL programs (NULL = search, tools.h) */
	const char *work_dir;		/* parent of the scratch directory (NULL = $TMPDIR or /tmp) */
	const char *run_as;			/* when root: the server's OS user (NULL = "postgres") */
	int64_t rto_secs;			/* 0 = no objective */
	const char *checks_file;	/* user SQL checks, or NULL */
	int jobs;					/* parallel connections for restore and checks (<= 0: 2) */
	const char *fault_sql;		/* run in the restored database before the checks (tests) */
	bool record;				/* store the report in the repository */
} DrillOpts;

typedef struct DrillResult
{
	char backup[REPO_BACKUP_ID_LEN + 1];
	char record[CATALOG_RECORD_ID_LEN + 1];	/* "" when not recorded */
	bool ok;					/* every check passed, RTO included */
	bool integrity_ok;			/* the restore and every data check passed */
	bool rto_ok;				/* within the RTO (true when none is set) */
	json_t *report;				/* owned: the whole report */
} DrillResult;

/*
 * Which backup a drill of opts would restore: opts->backup resolved (kind
 * logical, source opts->source when "latest"), or with random a random
 * logical backup (not schema-only) started within random_days.  PV_ENOTFOUND.
 */
int drill_backup_pick(const DrillOpts *opts, char out[REPO_BACKUP_ID_LEN + 1]);

/* Run a drill; see the top of this file for what 0 means.  out is always initialised. */
int drill_run(DrillResult *out, const DrillOpts *opts);
void drill_result_clear(DrillResult *r);

/*
 * How long restoring backup m would take, from earlier drills and real
 * restores of its source and kind (for "restore --dry-run"): the newest
 * drill reports and restore records (at most DRILL_ESTIMATE_SAMPLES,
 * reading at most 4 times as many) whose restore succeeded (and, for
 * restores, was whole) give a throughput, total backup bytes over total
 * restore time (plus, for physical backups, the mean measured recovery
 * time); it is applied to m's size.  *out gets {"estimate_ms",
 * "bytes_per_second", "recovery_ms", "basis":[{"kind" ("drill" or
 * "restore"),"record","backup","size","restore_ms","recovery_ms"}]}, or
 * NULL when none gives a basis.  Returns 0 either way; an error only when
 * the records cannot be listed.
 */
#define DRILL_ESTIMATE_SAMPLES 5
int drill_restore_estimate(Repo *repo, const RepoManifest *m, json_t **out);

/*
 * Parse a file of user checks (for validation before a drill): one per
 * line, "QUERY => EXPECTED" (split at the last " => "), blank lines and
 * lines starting with '#' ignored.  In QUERY, :backup_time is replaced by
 * the backup's start time (a timestamptz literal) and :backup_id by its id.
 * The query must return one row of one column; its text (NULL as "NULL")
 * must equal EXPECTED.  *out_n gets the number of checks.  PV_ECONFIG
 * "FILE:LINE: ..." for a malformed line, PV_ENOTFOUND for a missing file.
 */
int drill_checks_validate(const char *path, int *out_n);

#endif
