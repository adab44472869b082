/*
 * conn.c: see conn.h.
 *
 * The connection parameters are assembled as keyword/value arrays for
 * PQconnectdbParams with expand_dbname, in increasing precedence: the
 * configured conninfo is expanded first, then -d (itself possibly a conninfo
 * or URI), then -h/-p/-U.  libpq fills in whatever is left from its
 * environment, so pgvault behaves as psql does.
 */
#include "pg/conn.h"

#include "common/error.h"
#include "common/mem.h"

#include <stdio.h>
#include <string.h>

static bool
conninfo_has_password(const char *s)
{
	PQconninfoOption *opts;
	bool found = false;

	if (s == NULL || (strchr(s, '=') == NULL && strstr(s, "://") == NULL))
		return false;
	opts = PQconninfoParse(s, NULL);
	if (opts == NULL)
		return false;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
			found = true;
	PQconninfoFree(opts);
	return found;
}

const char *
pgconn_error_line(PGconn *conn, char *buf, size_t bufsz)
{
	const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
	size_t n;

	/* libpq prefixes server errors with "ERROR:  " and adds detail lines. */
	if (strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	else if (strncmp(msg, "FATAL:  ", 8) == 0)
		msg += 8;
	n = strcspn(msg, "\n");
	snprintf(buf, bufsz, "%.*s", (int) n, msg);
	return buf;
}

const char *
pgconn_where(PGconn *conn, char *out, size_t outsz)
{
	const char *host = PQhost(conn);
	const char *port = PQport(conn);

	snprintf(out, outsz, "%s:%s", host && host[0] ? host : "localhost", port && port[0] ? port : "5432");
	return out;
}

int
pgconn_connect(PGconn **out, const PgConnOpts *o)
{
	const char *keys[8];
	const char *vals[8];
	char line[512];
	PGconn *conn;
	int n = 0;
	int rc;

	*out = NULL;
	if (conninfo_has_password(o->dbname))
	{
		pv_error_set(PV_EUSAGE, "refusing a password in --dbname: other users can read the command line");
		pv_error_hint("put the password in ~/.pgpass (or PGPASSFILE), or export PGPASSWORD");
		return PV_EUSAGE;
	}
	if (o->conninfo != NULL)
	{
		keys[n] = "dbname";
		vals[n++] = o->conninfo;
	}
	if (o->dbname != NULL)
	{
		keys[n] = "dbname";
		vals[n++] = o->dbname;
	}
	if (o->host != NULL)
	{
		keys[n] = "host";
		vals[n++] = o->host;
	}
	if (o->port != NULL)
	{
		keys[n] = "port";
		vals[n++] = o->port;
	}
	if (o->username != NULL)
	{
		keys[n] = "user";
		vals[n++] = o->username;
	}
	keys[n] = "fallback_application_name";
	vals[n++] = o->application_name ? o->application_name : "pgvault";
	keys[n] = NULL;
	vals[n] = NULL;

	conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(conn) == CONNECTION_OK)
	{
		/* Never let a hostile search_path change what our queries mean. */
		PGresult *r = PQexec(conn, "SELECT pg_catalog.set_config('search_path', '', false)");

		PQclear(r);
		*out = conn;
		return PV_OK;
	}

	pgconn_error_line(conn, line, sizeof(line));
	if (strstr(line, "password authentication failed") != NULL ||
		strstr(line, "no password supplied") != NULL ||
		strstr(line, "authentication failed") != NULL)
	{
		rc = pv_error_set(PV_EAUTH, "%s", line);
		pv_error_hint("check the role name (-U) and its password in ~/.pgpass or PGPASSWORD");
	}
	else if (strstr(line, "does not exist") != NULL)
	{
		rc = pv_error_set(PV_EPG, "%s", line);
		pv_error_hint("check the database (-d) and role (-U) names; 'psql -l' lists databases");
	}
	else
	{
		rc = pv_error_set(PV_EPG, "%s", line);
		pv_error_hint("check that the server is running and that the host and port are right "
					  "(-h/-p, PGHOST/PGPORT, or the source's conninfo)");
	}
	PQfinish(conn);
	return rc;
}

static int
result_error(PGconn *conn, PGresult *r, const char *sql)
{
	char line[512];
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (msg == NULL)
		msg = pgconn_error_line(conn, line, sizeof(line));
	pv_error_set(PV_EPG, "query failed: %s", msg);
	(void) sql;
	PQclear(r);
	return PV_EPG;
}

int
pgconn_query(PGresult **out, PGconn *conn, int ncols, const char *sql,
			 int nparams, const char *const *params)
{
	PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	*out = NULL;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return result_error(conn, r, sql);
	if (ncols >= 0 && PQnfields(r) != ncols)
	{
		int got = PQnfields(r);

		PQclear(r);
		return pv_error_set(PV_EPG, "unexpected result shape: %d columns instead of %d", got, ncols);
	}
	*out = r;
	return PV_OK;
}

int
pgconn_exec(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return result_error(conn, r, sql);
	PQclear(r);
	return PV_OK;
}

int
pgconn_query_value(char **out, PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *r;
	int rc;

	*out = NULL;
	if ((rc = pgconn_query(&r, conn, 1, sql, nparams, params)) < 0)
		return rc;
	if (PQntuples(r) != 1)
	{
		int rows = PQntuples(r);

		PQclear(r);
		return pv_error_set(PV_EPG, "unexpected result shape: %d rows instead of 1", rows);
	}
	if (!PQgetisnull(r, 0, 0))
		*out = pv_strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return PV_OK;
}
