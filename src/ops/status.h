/*
 * status.h: "is everything all right?" for people and for monitoring
 * ("pgvault status [--check]").
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
 *   secondaries    per source whose "repos" name this repository and others
 *                  (the others are its secondaries, kept in step by copy):
 *                  how far each secondary is behind: backups of the source
 *                  it lacks, WAL it lacks (when StatusOpts can open it), and
 *                  the failed syncs recorded as lag records (repo/copy.h).
 *                  The lag is the age of the oldest thing it lacks; over
 *                  copy-lag-warning (default 1d) it is a WARNING, and a
 *                  secondary that cannot be opened is a WARNING.
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
	/*
	 * Open the secondary repository [repo:name] (its own storage settings
	 * and passphrase: the CLI knows them), to compare it with this one.
	 * NULL: secondaries are judged by their lag records only.
	 */
	int (*secondary_open)(Repo **out, const PvConfig *cfg, const char *name, void *payload);
	void *payload;
} StatusOpts;

typedef struct StatusReport
{
	StatusLevel level;
	char *summary;				/* one line: "3 backup groups OK" or the problems */
	json_t *doc;				/* {"status","summary","groups":[...],"archives":[...],
								 * "secondaries":[...],"problems":[...]} */
} StatusReport;

int status_collect(StatusReport *out, Repo *repo, const PvConfig *cfg, const StatusOpts *opts);
void status_report_free(StatusReport *r);	/* leaves it empty */

/* "2h 5min" for an age in seconds (coarse: two units at most); out >= 32 bytes. */
const char *status_age_format(char *out, size_t outsz, int64_t seconds);

#endif
