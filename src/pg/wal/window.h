/*
 * window.h: what a source's WAL archive holds, per timeline: the first and
 * last archived segment, how many there are, and the gaps between them
 * (segments missing in the middle, past which recovery cannot go), plus the
 * timeline history files.  For `pgvault list` (the recoverable window) and
 * for restore, which warns when the WAL after its backup has a gap.
 *
 * One listing of wal/<source>/ (no object is read but archive.info, for
 * the segment size).  Ownership: the summary owns its arrays
 * (pgwal_archive_summary_free).
 */
#ifndef PV_PG_WAL_WINDOW_H
#define PV_PG_WAL_WINDOW_H

#include "pg/wal/archive.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

typedef struct PgWalGap
{
	uint64_t first;				/* first missing segment number */
	uint64_t last;				/* last missing segment number */
} PgWalGap;

typedef struct PgWalTimelineInfo
{
	uint32_t timeline;
	bool history;				/* its NNNNNNNN.history file is archived */
	uint64_t segments;			/* archived segments (0: none, first/last meaningless) */
	uint64_t first;				/* lowest archived segment number */
	uint64_t last;				/* highest */
	uint64_t partial;			/* .partial files */
	uint64_t stored_bytes;
	PgWalGap *gaps;				/* ascending */
	size_t ngaps;
} PgWalTimelineInfo;

typedef struct PgWalArchiveSummary
{
	bool has_system;			/* archive.info exists (sys is valid) */
	PgWalSystem sys;
	PgWalTimelineInfo *timelines;	/* ascending timeline */
	size_t ntimelines;
} PgWalArchiveSummary;

int pgwal_archive_summarize(PgWalArchiveSummary *out, Repo *repo, const char *source);
void pgwal_archive_summary_free(PgWalArchiveSummary *s);

/* The timeline's entry, or NULL. */
const PgWalTimelineInfo *pgwal_summary_timeline(const PgWalArchiveSummary *s, uint32_t timeline);

/*
 * The first gap on timeline at or after segment from (segments from..last
 * archived), or NULL when the WAL from there on is contiguous.
 */
const PgWalGap *pgwal_summary_gap_after(const PgWalArchiveSummary *s, uint32_t timeline,
										uint64_t from);

/*
 * JSON for list: {"source", "system_identifier", "wal_segment_size",
 * "timelines": [{"timeline", "history", "segments", "first", "last",
 * "partial", "stored_bytes", "gaps": [{"first", "last"}]}]} with segment
 * names (new reference).
 */
struct json_t *pgwal_archive_summary_json(const PgWalArchiveSummary *s, const char *source);

#endif
