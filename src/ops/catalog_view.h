/*
 * catalog_view.h: the backups of a repository as "pgvault list" and
 * "pgvault show" present them: per backup its times, sizes, WAL range,
 * last verify and drill, pin and what the retention engine would decide
 * now; per source with physical backups the recoverable window (from the
 * oldest kept backup's end to the newest archived WAL) and every gap in the
 * archived WAL with the backups that cannot recover past it.
 *
 * The collecting part (catalog_view_collect) reads: one LIST of snapshots/
 * and one GET per manifest (item lists are not read), the retention plan
 * (which reads the manifests again), three LISTs under records/, and per
 * source shown with a window one LIST of its WAL and one STAT.  Nothing is
 * written.  The window computation and the text helpers are pure and
 * unit-tested (tests/unit/ops/test_catalog_view.c).
 *
 * JSON of one backup (keys of the old list output kept as they were):
 *   id kind source host start_time stop_time items size stored new
 *   pinned verify drill retention       (as status_annotate_backups gave them)
 *   database (logical: its database, else null), databases (--all backups)
 *   duration_ms, wal ({timeline start_lsn stop_lsn start_wal stop_wal}
 *   or null), verify/drill objects gain age_seconds, retention gains "text"
 *   (what list prints), and physical backups "recovers_to" (the LSN and
 *   segment their recovery can reach on their own timeline: before the
 *   first gap, else the timeline's last archived segment) and "restorable"
 *   (their own WAL complete).
 *
 * JSON of one window: {source, archive_source, from {backup time lsn
 * timeline} | null, to {segment time lsn timeline} | null, gaps [{timeline
 * first last segments from_lsn to_lsn backups_cut backups_broken}],
 * contiguous (no gap after from, on its timeline or a later one), archive
 * (pgwal_archive_summary_json)}.
 *
 * Ownership: everything returned is the caller's (json: new references;
 * CatalogWindow: catalog_window_free).
 */
#ifndef PV_OPS_CATALOG_VIEW_H
#define PV_OPS_CATALOG_VIEW_H

#include "common/timeutil.h"
#include "config/config.h"
#include "pg/wal/window.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Repo Repo;

typedef struct CatalogFilter
{
	const char *id;				/* only this backup (a full id); NULL = any */
	const char *source;			/* only this source ("" = backups without one); NULL = all */
	const char *kind;			/* "logical", "physical", "file"; NULL = all */
	const char *database;		/* logical backups holding this database; NULL = all */
	PvTime since, until;		/* start time within [since, until]; 0 = unbounded */
} CatalogFilter;

typedef struct CatalogViewOpts
{
	CatalogFilter filter;
	PvTime now;					/* 0 = the clock (tests pass a fixed time) */
	bool windows;				/* compute the recoverable windows */
} CatalogViewOpts;

/*
 * {"repository", "time_zone", "backups": [...], "windows": [...]}: the
 * backups matching the filter, oldest first (a manifest that cannot be read
 * is {"id", "error"} and counted in *out_damaged, which may be NULL); with
 * opts->windows, a window per source that has physical backups (of the
 * source filter; none when the kind filter excludes physical).
 */
int catalog_view_collect(json_t **out, Repo *repo, const PvConfig *cfg, const CatalogViewOpts *opts,
						 size_t *out_damaged);

/*
 * For show: read the backup's last verify record and last drill report (two
 * GETs) and add what they say to its "verify" and "drill" objects:
 * verify "mode" ("full", "new", "sample", "quick"; absent in records of
 * older versions), "duration_ms", "bad_chunks"; drill "times_ms",
 * "rto_seconds", "rto_ok", "integrity_ok".  Members missing from a record
 * are left out; a record that cannot be read is a debug message.
 */
void catalog_view_details(json_t *backup, Repo *repo);

/* ---- the recoverable window (pure) ---- */

typedef struct CatalogWindowBackup
{
	const char *id;				/* lent */
	uint32_t timeline;
	uint64_t start_segno;		/* first segment its recovery needs */
	uint64_t stop_segno;		/* last segment its recovery needs */
	uint64_t stop_lsn;
	PvTime stop_time;
	bool kept;					/* retention keeps it (expired ones do not open the window) */
} CatalogWindowBackup;

typedef struct CatalogWindowGap
{
	uint32_t timeline;
	uint64_t first, last;		/* missing segment numbers */
	size_t *cut;				/* backups (indexes) ending before it: recovery stops there */
	size_t ncut;
	size_t *broken;				/* backups whose own WAL falls in it: not restorable */
	size_t nbroken;
} CatalogWindowGap;

typedef struct CatalogWindow
{
	size_t from;				/* oldest kept restorable backup (by stop), or SIZE_MAX */
	bool has_newest;			/* the archive holds a segment */
	uint32_t newest_timeline;
	uint64_t newest_segno;		/* the newest archived segment (highest timeline) */
	CatalogWindowGap *gaps;		/* every gap of the archive, by timeline then segment */
	size_t ngaps;
} CatalogWindow;

/*
 * The window of a source from its physical backups (any order) and its
 * archive's summary.  A backup is restorable when every segment from its
 * start to its stop is archived (on its timeline: between the first and
 * last archived segment and in no gap).
 */
void catalog_window_compute(CatalogWindow *out, const CatalogWindowBackup *b, size_t n,
							const PgWalArchiveSummary *s);
void catalog_window_free(CatalogWindow *w);	/* leaves it empty */

/* Is segment segno of timeline archived by s (within first..last, in no gap)? */
bool catalog_window_has_segment(const PgWalArchiveSummary *s, uint32_t timeline, uint64_t segno);

/* The last segment reachable from a backup ending at stop_segno: before the first gap after it. */
uint64_t catalog_window_reach(const PgWalArchiveSummary *s, uint32_t timeline, uint64_t stop_segno);

/* ---- text helpers (pure) ---- */

/* "45s", "59m", "23h", "12d", "3y" (one unit, floor); out >= 16 bytes. */
const char *catalog_age_short(char *out, size_t outsz, int64_t seconds);

/* "4s", "1m05s", "2h03m", "1d02h"; out >= 16 bytes. */
const char *catalog_duration_short(char *out, size_t outsz, int64_t ms);

/* "0", "512", "1.5K", "12M", "1.2G", "3.4T" (1024-based, at most 5 chars); out >= 16 bytes. */
const char *catalog_size_short(char *out, size_t outsz, uint64_t bytes);

/*
 * A verify or drill summary object ({"time","ok",...} or null) as a cell:
 * "-", "ok 2h ago", or bad ("BAD 2h ago" for verify, "FAIL 2h ago" for a
 * drill) at now.  out >= 32 bytes.
 */
const char *catalog_record_cell(char *out, size_t outsz, const json_t *summary, const char *bad, PvTime now);

/*
 * The retention cell: "EXPIRE" (the next expire removes it), else the
 * reasons it is kept for joined by "," ("pinned,daily"); without a plan
 * (retention null) "pinned" or "unknown"; a group without policy "no policy"
 * (with "pinned," before it when pinned);
 * cut to at most width characters with a trailing "+" when longer.
 */
const char *catalog_retention_cell(char *out, size_t outsz, const json_t *retention, bool pinned,
								   size_t width);

/* ---- text output ---- */

/*
 * list's text for a catalog_view_collect document: per source and kind
 * (and logical database) a header and aligned rows that fit 120 columns,
 * physical rows followed by their WAL range, then each source's window.
 * Times in the zone tz (NULL: UTC).  An empty list is one line.
 */
void catalog_view_print(FILE *out, const json_t *doc, const char *tz, PvTime now);

/* The same header fields for one backup object (show), "key  value" lines. */
void catalog_view_print_backup(FILE *out, const json_t *backup, const char *tz, PvTime now);

#endif
