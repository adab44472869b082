/*
 * start.h: "restore --start": start the server on a restored data
 * directory with pg_ctl and follow its recovery through pg_controldata
 * (no connection needed, so nothing depends on roles, ports or pg_hba).
 *
 * The server's own log goes to <pgdata>/log/pgvault-start.log (pg_ctl -l),
 * whose tail is quoted when the server stops before recovery ends.
 */
#ifndef PV_PG_PHYSICAL_START_H
#define PV_PG_PHYSICAL_START_H

#include <stdint.h>

typedef struct PgPhysStartOpts
{
	const char *pgdata;
	const char *bindir;			/* NULL: find the server's major version's programs */
	int pg_major;				/* of the backup */
	const char *options;		/* pg_ctl -o (e.g. "-p 5433"), or NULL */
	const char *action;			/* the target action: NULL/"promote", "pause", "shutdown" */
	int64_t timeout_ms;			/* 0: wait as long as recovery takes */
} PgPhysStartOpts;

typedef struct PgPhysStartResult
{
	int64_t start_ms;			/* until the server accepted connections (or stopped) */
	int64_t recovery_ms;		/* until recovery ended (promoted, or shut down at the target) */
	char state[64];				/* pg_controldata's last "Database cluster state" */
	char log[256];				/* the server log file */
} PgPhysStartResult;

/*
 * Start and wait: for promote, until the cluster is "in production"; for
 * shutdown, until the server stopped at the target; for pause, until it
 * accepts connections (recovery then pauses at the target by itself).
 * PV_EREFUSED as root (PostgreSQL refuses to run as root); PV_ERROR with
 * the log's tail when the server stops early; PV_ECANCEL on timeout.
 */
int pgphys_start(PgPhysStartResult *out, const PgPhysStartOpts *opts);

#endif
