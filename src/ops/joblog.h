/*
 * joblog.h: the structured job log, the runbooks' "backup log entry
 * template" (Date, Type, Size, Duration, Location, Verified, Notes) written
 * by the daemon for every job it runs, and read back by "pgvault log".
 *
 * One entry is one JSON object:
 *
 *   {"date": "2026-11-22T02:00:00Z", "end": "...", "duration_ms": 81234,
 *    "job": "prod/logical", "type": "logical", "source": "prod",
 *    "trigger": "scheduled", "outcome": "success", "exit_status": 0,
 *    "backup_id": "20261122T020000Z-a1b2c3", "size": 123, "stored_bytes": 45,
 *    "new_bytes": 6, "location": "/srv/pgvault", "verified": true,
 *    "notes": ["warning: ..."], "host": "db1", "format": 1}
 *
 * type is the job's kind (logical, physical, file, expire, verify, drill);
 * trigger is scheduled, catch-up or manual; outcome is success, failure or
 * aborted (stopped by a shutdown); sizes are null when the job has none;
 * verified is null when the backup was not verified after it was made.
 *
 * It is kept in two places:
 *  1. a local file (job-log), one entry per line: appended with a single
 *     write(2) on an O_APPEND descriptor and fsynced, so concurrent writers
 *     never interleave and a crash loses at most the line being written;
 *  2. the repository, records/jobs/<record id>.<outcome> (a metadata object
 *     like the catalog's records: compressed, checksummed, encrypted in an
 *     encrypted repository), so every host that reads the backups sees what
 *     ran.  The record id starts with the job's start time, so a listing is
 *     in time order and can be filtered by time without reading objects.
 * Nothing in the log is needed to restore; prune and verify ignore it.
 *
 * Ownership: entries own their strings (joblog_entry_clear); JSON results
 * are new references.
 */
#ifndef PV_OPS_JOBLOG_H
#define PV_OPS_JOBLOG_H

#include "common/timeutil.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

#define JOBLOG_FORMAT 1
#define JOBLOG_PREFIX "records/jobs/"

typedef struct JobLogEntry
{
	PvTime start, end;
	char *job;					/* "prod/logical", or "verify" for a repository-wide job */
	char *type;					/* the kind: logical, physical, file, expire, verify, drill */
	char *source;				/* NULL for repository-wide jobs */
	char *trigger;				/* scheduled, catch-up, manual */
	char *outcome;				/* success, failure, aborted */
	int exit_status;			/* of the job's process; -1 when it did not run */
	char *backup_id;			/* NULL when the job made no backup */
	int64_t size;				/* logical bytes; -1 = none */
	int64_t stored_bytes;		/* -1 = none */
	int64_t new_bytes;			/* -1 = none */
	char *location;				/* the repository URL */
	int verified;				/* -1 = not verified, 0 = verify failed, 1 = verified */
	json_t *notes;				/* array of strings, owned */
	char *host;
} JobLogEntry;

/* A blank entry (sizes -1, verified -1, exit_status -1, notes []). */
void joblog_entry_init(JobLogEntry *e);
void joblog_entry_clear(JobLogEntry *e);
/* Append a note (printf style). */
void joblog_entry_note(JobLogEntry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

json_t *joblog_entry_json(const JobLogEntry *e);
/* PV_ECORRUPT naming the member that is missing or of the wrong type. */
int joblog_entry_from_json(JobLogEntry *out, const json_t *j);

/* Append one line to the local log (parent directory created, mode 0750). */
int joblog_append(const char *path, const JobLogEntry *e);

/* Store the entry in the repository (rule 2).  out_key (may be NULL) gets the key; caller frees. */
int joblog_record(Repo *repo, const JobLogEntry *e, char **out_key);

typedef struct JobLogFilter
{
	PvTime since, until;		/* 0 = open */
	const char *source;			/* NULL = any */
	const char *type;			/* NULL = any */
	const char *outcome;		/* NULL = any */
	const char *job;			/* NULL = any */
	size_t limit;				/* the newest N after filtering; 0 = all */
} JobLogFilter;

bool joblog_filter_match(const JobLogFilter *f, const JobLogEntry *e);

/*
 * The entries that match, oldest first, as a JSON array of entry objects.
 * From the local file: lines that do not parse are skipped with a warning
 * naming the line.  From the repository: records/jobs/, filtered by time
 * and outcome from the names before any object is read.
 */
int joblog_read_file(json_t **out, const char *path, const JobLogFilter *f);
int joblog_read_repo(json_t **out, Repo *repo, const JobLogFilter *f);

#endif
