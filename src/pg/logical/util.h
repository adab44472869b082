/*
 * util.h: what logical backup and restore share (internal to
 * src/pg/logical): connections made "like" a live one, the session
 * settings every data connection uses, identifier quoting, running
 * pg_dump / pg_restore as child processes, and the progress line.
 *
 * Passwords: a conninfo built here may hold the password the first
 * connection used; it lives in memory only (freed with pv_free_secret_str).
 * Child processes get it through PGPASSWORD in their environment, never
 * argv.
 */
#ifndef PV_PG_LOGICAL_UTIL_H
#define PV_PG_LOGICAL_UTIL_H

#include "common/buf.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

/* conninfo reaching conn's server as conn did, for dbname (NULL = conn's
   database); with_password adds the password conn used, if any. */
char *pglogical_conninfo(PGconn *conn, const char *dbname, bool with_password);

/* Append " key='val'" to a conninfo string (quoted as libpq wants). */
void pglogical_conninfo_append(Buf *b, const char *key, const char *val);

/* Connect to dbname (NULL = the same) on conn's server, as conn did. */
int pglogical_connect_like(PGconn **out, PGconn *model, const char *dbname, const char *appname);

/* The session settings of fingerprint.h (and row_security off). */
int pglogical_session_setup(PGconn *conn, const char *encoding);

/* "name" with embedded quotes doubled; "schema"."name".  Caller frees. */
char *pglogical_quote_ident(const char *name);
char *pglogical_qualify(const char *schema, const char *name);

/* A running child (pg_dump, pg_restore). */
typedef struct PgChild
{
	pid_t pid;
	int out_fd;					/* read end of its stdout, or -1 */
	int err_fd;					/* a temporary file holding its stderr */
	char *name;					/* "pg_dump" */
} PgChild;

/*
 * Start argv[0] with the password (may be NULL) in PGPASSWORD.  With
 * pipe_stdout its stdout is out->out_fd, else it goes where stderr goes.
 */
int pglogical_child_start(PgChild *out, char *const argv[], const char *password, bool pipe_stdout);
/* Wait for it; PV_ERROR "NAME failed (exit N): <last stderr lines>" unless it exited 0. */
int pglogical_child_wait(PgChild *c);
/* Kill (SIGTERM) and reap a child that must stop early; closes everything. */
void pglogical_child_kill(PgChild *c);

/* ---- progress on a terminal ---- */

typedef struct PgProgress
{
	const char *verb;			/* "backup", "restore" */
	atomic_uint_fast64_t bytes, rows, items_done;
	uint64_t items_total;
	atomic_uint_fast64_t weight_done;	/* for the ETA: relation bytes done */
	uint64_t weight_total;
	int64_t start_ms;
	bool on;
	bool stop;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} PgProgress;

/* Start printing to stderr once a second, only when enabled and stderr is a tty. */
void pglogical_progress_start(PgProgress *p, const char *verb, bool enabled);
void pglogical_progress_stop(PgProgress *p);

int64_t pglogical_now_ms(void);

/* Write b to a new file $TMPDIR/pgvault-list-XXXXXX (a pg_restore -L list); *out_path is the caller's. */
int pglogical_temp_write(char **out_path, const Buf *b);

#endif
