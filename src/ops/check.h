/*
 * check.h: the pre-flight checks of "pgvault check" (and, later, of the
 * daemon before each scheduled backup): is this cluster ready to be backed
 * up, and will the backup be restorable?
 *
 * Each check yields one CheckItem with a status; the report's status is the
 * worst of them.  Only the archive test (CheckOpts.archive_test) changes
 * the server: it forces a WAL switch.  A failed connection ends the run early: every other check
 * needs it.
 */
#ifndef PV_OPS_CHECK_H
#define PV_OPS_CHECK_H

#include <jansson.h>
#include <stdint.h>

#include "pg/conn.h"

typedef enum CheckStatus
{
	CHECK_INFO,					/* worth knowing, nothing to fix */
	CHECK_OK,
	CHECK_WARNING,
	CHECK_FAILURE,
} CheckStatus;

typedef struct CheckItem
{
	const char *name;			/* stable identifier: "wal_level" */
	CheckStatus status;
	char *message;				/* one line for people */
	char *hint;					/* how to fix it, or NULL */
	json_t *details;			/* machine-readable facts (owned) */
} CheckItem;

typedef struct CheckReport
{
	CheckItem *items;
	int nitems;
	CheckStatus status;			/* worst of items */
} CheckReport;

typedef struct Repo Repo;

typedef struct CheckOpts
{
	PgConnOpts conn;
	const char *bindir;			/* PostgreSQL programs to use, or NULL to search */
	const char *repo_url;		/* where backups will go, or NULL */
	int64_t long_xact_secs;		/* report transactions older than this */

	/*
	 * The archive test ("archive_push"): when archive_command calls pgvault
	 * archive-push and repo is set, check that the command names source
	 * (and the repository, when it names one), then write a little WAL,
	 * force a WAL switch and wait up to archive_wait_ms (0: 60 s) until the
	 * finished segment is in repo under source.  This is the one check that
	 * changes the server (one more WAL segment); archive_test false skips it.
	 */
	bool archive_test;
	Repo *repo;					/* lent; NULL: no archive test */
	const char *repo_name;		/* how the configuration names repo ([repo:NAME]), or NULL */
	const char *repo_error;		/* why repo could not be opened, or NULL */
	const char *source;			/* the WAL archive's source name */
	int64_t archive_wait_ms;
} CheckOpts;

/* Run every check; always fills report (even when connecting fails). */
void check_run(CheckReport *report, const CheckOpts *opts);
void check_report_clear(CheckReport *report);

const char *check_status_name(CheckStatus s);
json_t *check_report_json(const CheckReport *report);

#endif
