/*
 * status.h: "is everything all right?" for people and for monitoring
 * ("pgvault status [--check]"), and the per-backup state that list and show
 * print (retention reason, pin, last verify, last drill).
 *
 * Status judges each *group* of backups (source, kind and, for logical
 * backups, database: the same groups as retention.h) and each source's WAL
 * archive, with thresholds from the configuration ([source:NAME] first,
 * then [global]):
 *
 *   backup age     the newest backup's start time (what a restore would
 *                  bring back) against backup-age-warning / -critical;
 *   verify         the newest verify record of the group's backups: damage
 *                  found is CRITICAL; older than verify-age-warning (or none
 *                  at all when that is set) is a WARNING;
 *   drill          the newest drill of the group (also of backups expired
 *                  since): a failed restore or check is CRITICAL, an RTO
 *                  exceeded a WARNING; older than drill-age-warning (or
 *                  none when set) a WARNING;
 *   WAL archive    per source that has one: the newest archived segment's
 *                  age (the current RPO exposure) against archive-lag-warning
 *                  / -critical (unset: reported, not judged, because an idle
 *                  server without archive_timeout archives nothing);
 *   sources        a configured source without any backup is CRITICAL.
 *
 * Each group gets the worst of its levels; the report the worst of all.
 * Levels are those of monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN (the repository could not be read).
 *
 * Ownership: a StatusReport owns its JSON document and summary.
 */
#ifndef PV_OPS_STATUS_H
#define PV_OPS_STATUS_H

#include "common/timeutil.h"
#include "config/config.h"

#include <jansson.h>

typedef struct Repo Repo;

typedef enum StatusLevel
{
	STATUS_OK = 0,
	STATUS_WARNING = 1,
	STATUS_CRITICAL = 2,
	STATUS_UNKNOWN = 3,
} StatusLevel;

const char *status_level_name(StatusLevel l);	/* "OK", "WARNING", "CRITICAL", "UNKNOWN" */

typedef struct StatusOpts
{
	const char *source;			/* only this source; NULL = all */
	PvTime now;					/* 0 = the clock (tests pass a fixed time) */
} StatusOpts;

typedef struct StatusReport
{
	StatusLevel level;
	char *summary;				/* one line: "3 backup groups OK" or the problems */
	json_t *doc;				/* {"status","summary","groups":[...],"archives":[...],"problems":[...]} */
} StatusReport;

int status_collect(StatusReport *out, Repo *repo, const PvConfig *cfg, const StatusOpts *opts);
void status_report_free(StatusReport *r);	/* leaves it empty */

/*
 * For list and show: add to each backup object of the array (objects with
 * an "id") its "pinned", "retention" ({"action","reasons"}), "verify" and
 * "drill" ({"time","ok","record"} or null).  Best effort: a failure is
 * logged and the array is left as it was.  (One-line hook for list/show.)
 */
void status_annotate_backups(Repo *repo, const PvConfig *cfg, json_t *backups);
/* The same for one backup object (show). */
void status_annotate_backup(Repo *repo, const PvConfig *cfg, json_t *backup);

/* "2h 5min" for an age in seconds (coarse: two units at most); out >= 32 bytes. */
const char *status_age_format(char *out, size_t outsz, int64_t seconds);

#endif
