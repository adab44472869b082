/*
 * conn.h: libpq connections and queries, the way every pgvault command
 * makes them.
 *
 * Where to connect is decided as psql decides it: libpq's environment
 * (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE, ~/.pgpass), overridden by a
 * source's conninfo from the configuration, overridden by -d/-h/-p/-U.
 * Passwords never come from the command line: a password inside --dbname is
 * refused, because every user of the machine can read argv with ps.
 *
 * Query helpers check the result status and shape and turn server errors
 * into PV_EPG messages that carry the server's own text.
 */
#ifndef PV_PG_CONN_H
#define PV_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct PgConnOpts
{
	const char *conninfo;		/* from the configuration: may hold anything */
	const char *dbname;			/* -d: name, conninfo or URI (no password) */
	const char *host;			/* -h */
	const char *port;			/* -p */
	const char *username;		/* -U */
	const char *application_name;	/* default "pgvault" */
} PgConnOpts;

/*
 * Connect.  Errors: PV_EUSAGE (password on the command line, bad conninfo),
 * PV_EAUTH (authentication), PV_EPG (anything else), each with a hint.
 */
int pgconn_connect(PGconn **out, const PgConnOpts *opts);

/* "host:port" or "/socket/dir:port" of a live connection; out >= 256 bytes. */
const char *pgconn_where(PGconn *conn, char *out, size_t outsz);

/*
 * Run a query that returns rows; checks PGRES_TUPLES_OK and, when
 * ncols >= 0, that the result has exactly ncols columns.  params may be NULL.
 * The caller owns *out (PQclear).
 */
int pgconn_query(PGresult **out, PGconn *conn, int ncols, const char *sql,
				 int nparams, const char *const *params);

/* Run a command that returns no rows (PGRES_COMMAND_OK or TUPLES_OK). */
int pgconn_exec(PGconn *conn, const char *sql);

/* One-row, one-column query; *out is a new string or NULL for SQL NULL. */
int pgconn_query_value(char **out, PGconn *conn, const char *sql,
					   int nparams, const char *const *params);

/* The first line of libpq's error text, for one-line messages; lent. */
const char *pgconn_error_line(PGconn *conn, char *buf, size_t bufsz);

#endif
