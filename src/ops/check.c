/*
 * check.c: the pre-flight checks.  See check.h.
 *
 * Each check is a small function that reads what it needs from the server
 * and adds one CheckItem.  Checks never change the server, except the
 * archive test (check_archive_push), which writes a commit record and
 * forces a WAL switch.  Queries are gated on the server version where
 * catalogs differ (PostgreSQL 12..17).
 */
#include "ops/check.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/mem.h"
#include "common/units.h"
#include "common/timeutil.h"
#include "pg/tools.h"
#include "pg/wal/archive.h"
#include "repo/repo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static CheckItem *
item_add(CheckReport *r, const char *name, CheckStatus st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static CheckItem *
item_add(CheckReport *r, const char *name, CheckStatus st, const char *fmt, ...)
{
	CheckItem *it;
	va_list ap;
	char probe[1];
	int n;

	r->items = pv_realloc(r->items, sizeof(CheckItem) * (size_t) (r->nitems + 1));
	it = &r->items[r->nitems++];
	memset(it, 0, sizeof(*it));
	it->name = name;
	it->status = st;
	va_start(ap, fmt);
	n = vsnprintf(probe, sizeof(probe), fmt, ap);
	va_end(ap);
	it->message = pv_malloc((size_t) n + 1);
	va_start(ap, fmt);
	vsnprintf(it->message, (size_t) n + 1, fmt, ap);
	va_end(ap);
	it->details = json_object();
	if (st > r->status)
		r->status = st;
	return it;
}

static void
item_hint(CheckItem *it, const char *hint)
{
	pv_free(it->hint);
	it->hint = pv_strdup(hint);
}

/* A failed query becomes a failure item instead of ending the run. */
static bool
query_ok(CheckReport *r, const char *name, int rc)
{
	if (rc == PV_OK)
		return true;
	item_add(r, name, CHECK_FAILURE, "could not check: %s", pv_error_msg());
	return false;
}

static char *
setting(PGconn *c, const char *name)
{
	const char *params[1] = {name};
	char *v = NULL;

	if (pgconn_query_value(&v, c, "SELECT pg_catalog.current_setting($1, true)", 1, params) < 0)
		return NULL;
	return v;
}

static void
check_version(CheckReport *r, PGconn *c)
{
	int v = PQserverVersion(c);
	CheckItem *it;
	char *text = setting(c, "server_version");

	if (v < 120000)
	{
		it = item_add(r, "server_version", CHECK_FAILURE,
					  "PostgreSQL %s is older than 12, which pgvault does not support", text ? text : "?");
		item_hint(it, "upgrade the server to PostgreSQL 12 or newer");
	}
	else
		it = item_add(r, "server_version", CHECK_OK, "PostgreSQL %s", text ? text : "?");
	json_object_set_new(it->details, "version_num", json_integer(v));
	json_object_set_new(it->details, "version", json_string(text ? text : ""));
	pv_free(text);
}

static void
check_tools(CheckReport *r, PGconn *c, const char *bindir)
{
	static const char *const programs[] = {"pg_dump", "pg_restore"};
	int major = PQserverVersion(c) / 10000;
	json_t *found = json_object();
	char missing[512] = "";
	char hint[512] = "";
	char seen[512] = "";
	CheckItem *it;

	for (size_t i = 0; i < PV_ARRAY_LEN(programs); i++)
	{
		PgTool t;

		if (pgtools_find(&t, programs[i], bindir, major) == PV_OK)
		{
			json_object_set_new(found, programs[i], json_pack("{s:s, s:i}", "path", t.path,
															  "version_num", t.version_num));
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%s %d.%d",
					 seen[0] ? ", " : "", programs[i], t.version_num / 10000, t.version_num % 10000);
			pgtools_clear(&t);
		}
		else
		{
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
					 missing[0] ? "; " : "", pv_error_msg());
			snprintf(hint, sizeof(hint), "%s", pv_error_hint_msg());
		}
	}
	if (missing[0])
	{
		it = item_add(r, "client_tools", CHECK_FAILURE, "%s", missing);
		item_hint(it, hint);
	}
	else
		it = item_add(r, "client_tools", CHECK_OK, "%s can handle this server", seen);
	json_object_set_new(it->details, "tools", found);
}

static void
check_checksums(CheckReport *r, PGconn *c)
{
	char *v = setting(c, "data_checksums");
	CheckItem *it;

	if (v != NULL && strcmp(v, "on") == 0)
		it = item_add(r, "data_checksums", CHECK_OK, "data checksums are on: physical backups verify every page");
	else
	{
		it = item_add(r, "data_checksums", CHECK_INFO,
					  "data checksums are off: page corruption cannot be detected while backing up");
		item_hint(it, "enable them with 'pg_checksums --enable' while the cluster is shut down");
	}
	json_object_set_new(it->details, "enabled", json_boolean(v && strcmp(v, "on") == 0));
	pv_free(v);
}

static void
check_wal_level(CheckReport *r, PGconn *c)
{
	char *v = setting(c, "wal_level");
	CheckItem *it;

	if (v != NULL && (strcmp(v, "replica") == 0 || strcmp(v, "logical") == 0))
		it = item_add(r, "wal_level", CHECK_OK, "wal_level is %s", v);
	else
	{
		it = item_add(r, "wal_level", CHECK_WARNING,
					  "wal_level is %s: physical backups and point-in-time recovery need 'replica'",
					  v ? v : "unknown");
		item_hint(it, "set wal_level = replica in postgresql.conf and restart the server");
	}
	json_object_set_new(it->details, "value", json_string(v ? v : ""));
	pv_free(v);
}

/* ---- the archive test ---- */

#define ARCHIVE_WAIT_DEFAULT_MS (60 * 1000)
#define ARCHIVE_FAILURES_FATAL 3	/* one full round of the archiver's retries */

/*
 * The value of option --NAME (as "--NAME X" or "--NAME=X") in a shell
 * command line, without its quotes; NULL when absent.  Only what an
 * archive_command usually looks like: words split on blanks, quotes
 * stripped.
 */
static char *
command_option(const char *cmd, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = cmd;
	char *want_next = NULL;

	while (*p)
	{
		Buf word = PV_BUF_INIT;
		char quote = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		while (*p && (quote || (*p != ' ' && *p != '\t')))
		{
			if (!quote && (*p == '\'' || *p == '"'))
				quote = *p;
			else if (quote && *p == quote)
				quote = 0;
			else
				buf_append_byte(&word, *p);
			p++;
		}
		if (want_next != NULL)
		{
			pv_free(want_next);
			return buf_detach(&word);
		}
		if (word.len > 2 + nlen && strncmp(buf_cstr(&word), "--", 2) == 0 &&
			strncmp(buf_cstr(&word) + 2, name, nlen) == 0)
		{
			const char *rest = buf_cstr(&word) + 2 + nlen;

			if (*rest == '=')
			{
				char *v = pv_strdup(rest + 1);

				buf_free(&word);
				return v;
			}
		}
		else if (word.len == 2 + nlen && strncmp(buf_cstr(&word), "--", 2) == 0 &&
				 strcmp(buf_cstr(&word) + 2, name) == 0)
			want_next = pv_strdup(name);
		buf_free(&word);
	}
	pv_free(want_next);
	return NULL;
}

/* Does archive_command push into our source and repository (as far as it says)? */
static void
check_archive_target(CheckReport *r, CheckItem *it, const char *cmd, const CheckOpts *o)
{
	char *src = command_option(cmd, "source");
	char *repo = command_option(cmd, "repo");
	const char *url = o->repo != NULL ? repo_url(o->repo) : o->repo_url;

	if (src != NULL)
		json_object_set_new(it->details, "source", json_string(src));
	if (repo != NULL)
		json_object_set_new(it->details, "repo", json_string(repo));
	if (o->source != NULL && src != NULL && strcmp(src, o->source) != 0)
	{
		it->status = CHECK_WARNING;
		pv_free(it->message);
		it->message = pv_asprintf("archive_command archives WAL under source '%s', but backups of "
								  "this cluster use source '%s'", src, o->source);
		item_hint(it, "make archive_command say --source with the source the backups use, and "
				  "reload the server: a backup waits for its WAL under its own source");
	}
	else if (repo != NULL && url != NULL && strcmp(repo, url) != 0 &&
			 (o->repo_name == NULL || strcmp(repo, o->repo_name) != 0) &&
			 (o->repo_url == NULL || strcmp(repo, o->repo_url) != 0))
	{
		it->status = CHECK_WARNING;
		pv_free(it->message);
		it->message = pv_asprintf("archive_command archives WAL into repository '%s', but "
								  "backups go to '%s'", repo, url);
		item_hint(it, "make archive_command's --repo the repository the backups use, and "
				  "reload the server");
	}
	if (it->status > r->status)
		r->status = it->status;
	pv_free(src);
	pv_free(repo);
}

typedef struct Archiver
{
	int64_t failed_count;
	char last_archived[64];
	char last_failed[64];
	char last_failed_time[64];
} Archiver;

static int
archiver_read(Archiver *out, PGconn *c)
{
	PGresult *res = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = pgconn_query(&res, c, 4, "SELECT failed_count, coalesce(last_archived_wal, ''), "
					  "coalesce(last_failed_wal, ''), coalesce(last_failed_time::text, '') "
					  "FROM pg_catalog.pg_stat_archiver", 0, NULL);
	if (rc == 0 && PQntuples(res) == 1)
	{
		out->failed_count = atoll(PQgetvalue(res, 0, 0));
		snprintf(out->last_archived, sizeof(out->last_archived), "%s", PQgetvalue(res, 0, 1));
		snprintf(out->last_failed, sizeof(out->last_failed), "%s", PQgetvalue(res, 0, 2));
		snprintf(out->last_failed_time, sizeof(out->last_failed_time), "%s", PQgetvalue(res, 0, 3));
	}
	PQclear(res);
	return rc;
}

/*
 * Write a little WAL (txid_current() commits a transaction with an xid: a
 * commit record), so that pg_switch_wal() switches even on an idle server,
 * and return the finished segment's name.
 */
static int
wal_switch(char **out, PGconn *c)
{
	char *xid = NULL;
	int rc;

	*out = NULL;
	if ((rc = pgconn_query_value(&xid, c, "SELECT pg_catalog.txid_current()::text", 0, NULL)) < 0)
		return rc;
	pv_free(xid);
	return pgconn_query_value(out, c, "SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal())",
							  0, NULL);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* The one sure test that archive_command works: a segment reaches the repository. */
static void
check_archive_push(CheckReport *r, PGconn *c, const CheckOpts *o)
{
	int64_t wait = o->archive_wait_ms > 0 ? o->archive_wait_ms : ARCHIVE_WAIT_DEFAULT_MS;
	int64_t t0, elapsed, sleep = 50;
	char *seg = NULL;
	char took[32], limit[32];
	Archiver a0, a = {0};
	CheckItem *it;
	bool have = false;
	int rc;

	if (o->repo == NULL)
	{
		it = item_add(r, "archive_push", CHECK_WARNING, "cannot test archiving: %s",
					  o->repo_error ? o->repo_error : "no repository");
		item_hint(it, "give --repo (and the passphrase) so check can see WAL arrive");
		return;
	}
	if ((rc = archiver_read(&a0, c)) < 0 || (rc = wal_switch(&seg, c)) < 0)
	{
		it = item_add(r, "archive_push", CHECK_WARNING, "cannot force a WAL switch to test "
					  "archiving: %s", pv_error_msg());
		item_hint(it, "run check as a superuser, or GRANT EXECUTE ON FUNCTION pg_switch_wal() "
				  "to the role; --no-archive-test skips this test");
		pv_error_clear();
		return;
	}
	t0 = pv_time_monotonic_ms();
	for (;;)
	{
		if ((rc = pgwal_exists(o->repo, o->source, seg, &have)) < 0)
			break;
		elapsed = pv_time_monotonic_ms() - t0;
		if (have || elapsed >= wait)
			break;
		if ((rc = archiver_read(&a, c)) < 0)
			break;
		if (a.failed_count - a0.failed_count >= ARCHIVE_FAILURES_FATAL)
			break;
		sleep_ms(sleep);
		if (sleep < 500)
			sleep *= 2;
	}
	elapsed = pv_time_monotonic_ms() - t0;
	pv_elapsed_format(took, sizeof(took), elapsed);
	if (rc < 0)
	{
		it = item_add(r, "archive_push", CHECK_FAILURE, "cannot look for WAL segment %s in "
					  "repository '%s': %s", seg, repo_url(o->repo), pv_error_msg());
		pv_error_clear();
	}
	else if (have)
		it = item_add(r, "archive_push", CHECK_OK, "WAL segment %s reached repository '%s' "
					  "(source '%s') in %s", seg, repo_url(o->repo), o->source, took);
	else
	{
		(void) archiver_read(&a, c);
		pv_error_clear();
		pv_duration_format(limit, sizeof(limit), wait / 1000);
		if (a.failed_count > a0.failed_count)
			it = item_add(r, "archive_push", CHECK_FAILURE, "WAL segment %s did not reach "
						  "repository '%s' (source '%s') within %s: archive_command is failing "
						  "(pg_stat_archiver: last failed WAL %s at %s, %lld failures)", seg,
						  repo_url(o->repo), o->source, took, a.last_failed,
						  a.last_failed_time, (long long) a.failed_count);
		else if (strcmp(a.last_archived, seg) >= 0 && a.last_archived[0] != '\0')
			it = item_add(r, "archive_push", CHECK_FAILURE, "the server archived WAL segment %s, "
						  "but it is not in repository '%s' under source '%s': archive_command "
						  "stores WAL elsewhere", seg, repo_url(o->repo), o->source);
		else
			it = item_add(r, "archive_push", CHECK_FAILURE, "WAL segment %s did not reach "
						  "repository '%s' (source '%s') within %s (pg_stat_archiver: last "
						  "archived %s, last failed %s)", seg, repo_url(o->repo), o->source,
						  limit, a.last_archived[0] ? a.last_archived : "nothing",
						  a.last_failed[0] ? a.last_failed : "nothing");
		item_hint(it, "read the server log for archive_command's error; archive_command must run "
				  "'pgvault archive-push' into this repository with this source, as the "
				  "server's user (--archive-wait-timeout waits longer)");
		json_object_set_new(it->details, "last_failed_wal", json_string(a.last_failed));
		json_object_set_new(it->details, "failed_count", json_integer(a.failed_count));
	}
	json_object_set_new(it->details, "segment", json_string(seg));
	json_object_set_new(it->details, "source", json_string(o->source));
	json_object_set_new(it->details, "arrived", json_boolean(have));
	json_object_set_new(it->details, "wait_ms", json_integer(elapsed));
	pv_free(seg);
}

/*
 * archive_mode, archive_command and archive_timeout, plus pg_stat_archiver:
 * the settings can look right while every archive attempt fails.
 */
static void
check_archiving(CheckReport *r, PGconn *c, const CheckOpts *o)
{
	char *mode = setting(c, "archive_mode");
	char *cmd = setting(c, "archive_command");
	char *lib = PQserverVersion(c) >= 150000 ? setting(c, "archive_library") : NULL;
	char *timeout = setting(c, "archive_timeout");
	bool on = mode && (strcmp(mode, "on") == 0 || strcmp(mode, "always") == 0);
	bool has_cmd = cmd && cmd[0] != '\0' && strcmp(cmd, "(disabled)") != 0;
	PGresult *res = NULL;
	CheckItem *it;
	bool pgvault_push = false;

	if (on)
		it = item_add(r, "archive_mode", CHECK_OK, "archive_mode is %s", mode);
	else
	{
		it = item_add(r, "archive_mode", CHECK_WARNING,
					  "archive_mode is off: WAL is not archived, so point-in-time recovery is impossible");
		item_hint(it, "set archive_mode = on and archive_command = 'pgvault archive-push %p' "
				  "in postgresql.conf, then restart the server");
	}
	json_object_set_new(it->details, "value", json_string(mode ? mode : ""));

	if (!on)
		it = item_add(r, "archive_command", CHECK_INFO, "not used while archive_mode is off");
	else if (lib != NULL && lib[0] != '\0')
		it = item_add(r, "archive_command", CHECK_WARNING,
					  "archive_library '%s' is used instead of archive_command: pgvault cannot see "
					  "where WAL goes", lib);
	else if (!has_cmd)
	{
		it = item_add(r, "archive_command", CHECK_FAILURE,
					  "archive_mode is on but archive_command is empty: WAL accumulates in pg_wal "
					  "until the disk is full");
		item_hint(it, "set archive_command = 'pgvault archive-push %p' and reload the server");
	}
	else if (strstr(cmd, "pgvault") == NULL || strstr(cmd, "archive-push") == NULL)
	{
		it = item_add(r, "archive_command", CHECK_WARNING,
					  "archive_command does not call pgvault: '%s'", cmd);
		item_hint(it, "set archive_command = 'pgvault archive-push %p' so WAL reaches the repository");
	}
	else
	{
		it = item_add(r, "archive_command", CHECK_OK, "archive_command calls pgvault");
		check_archive_target(r, it, cmd, o);
		pgvault_push = true;
	}
	json_object_set_new(it->details, "value", json_string(cmd ? cmd : ""));

	/* The archiver's own counters: failing now means a broken command. */
	if (on && pgconn_query(&res, c, 5,
						   "SELECT archived_count, failed_count, last_failed_wal, "
						   "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false), "
						   "last_archived_wal FROM pg_catalog.pg_stat_archiver", 0, NULL) == PV_OK &&
		PQntuples(res) == 1)
	{
		json_object_set_new(it->details, "archived_count", json_integer(atoll(PQgetvalue(res, 0, 0))));
		json_object_set_new(it->details, "failed_count", json_integer(atoll(PQgetvalue(res, 0, 1))));
		if (strcmp(PQgetvalue(res, 0, 3), "t") == 0)
		{
			it->status = CHECK_FAILURE;
			r->status = CHECK_FAILURE;
			pv_free(it->message);
			it->message = pv_asprintf("archiving is failing: the last attempt, for WAL file %s, failed "
									  "(%s failures so far)", PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1));
			item_hint(it, "read the server log for the archive_command error and fix the command");
		}
	}
	PQclear(res);

	{
		int64_t secs = timeout ? atoll(timeout) : 0;

		if (!on)
			it = item_add(r, "archive_timeout", CHECK_INFO, "not used while archive_mode is off");
		else if (secs == 0)
		{
			it = item_add(r, "archive_timeout", CHECK_WARNING,
						  "archive_timeout is 0: on a quiet server the newest changes may wait "
						  "indefinitely before they are archived");
			item_hint(it, "set archive_timeout = 60s (or your RPO) and reload the server");
		}
		else
			it = item_add(r, "archive_timeout", CHECK_OK,
						  "archive_timeout is %llds: at most that much WAL waits to be archived",
						  (long long) secs);
		json_object_set_new(it->details, "seconds", json_integer(secs));
	}
	/* even when failing: the test shows whether a fixed command works now */
	if (on && pgvault_push && o->archive_test)
		check_archive_push(r, c, o);
	pv_free(mode);
	pv_free(cmd);
	pv_free(lib);
	pv_free(timeout);
}

static int64_t
check_database_sizes(CheckReport *r, PGconn *c)
{
	PGresult *res;
	json_t *list = json_array();
	char buf[32];
	int64_t total = 0;
	CheckItem *it;

	if (!query_ok(r, "database_sizes",
				  pgconn_query(&res, c, 2,
							   "SELECT datname, pg_catalog.pg_database_size(oid) FROM pg_catalog.pg_database "
							   "WHERE datallowconn AND pg_catalog.has_database_privilege(oid, 'CONNECT') "
							   "ORDER BY 2 DESC, 1", 0, NULL)))
	{
		json_decref(list);
		return 0;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64_t size = atoll(PQgetvalue(res, i, 1));

		total += size;
		json_array_append_new(list, json_pack("{s:s, s:I}", "name", PQgetvalue(res, i, 0),
											  "bytes", (json_int_t) size));
	}
	it = item_add(r, "database_sizes", CHECK_INFO, "%d databases, %s in all", PQntuples(res),
				  pv_size_format(buf, sizeof(buf), (uint64_t) total));
	json_object_set_new(it->details, "databases", list);
	json_object_set_new(it->details, "total_bytes", json_integer(total));
	PQclear(res);
	return total;
}

static void
check_largest_tables(CheckReport *r, PGconn *c)
{
	PGresult *res;
	json_t *list = json_array();
	char buf[32];
	char first[300] = "";
	CheckItem *it;

	if (!query_ok(r, "largest_tables",
				  pgconn_query(&res, c, 3,
							   "SELECT n.nspname, c.relname, pg_catalog.pg_total_relation_size(c.oid) "
							   "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
							   "WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
							   "AND n.nspname NOT LIKE 'pg_toast%' "
							   "ORDER BY 3 DESC, 1, 2 LIMIT 10", 0, NULL)))
	{
		json_decref(list);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64_t size = atoll(PQgetvalue(res, i, 2));

		json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "schema", PQgetvalue(res, i, 0),
											  "table", PQgetvalue(res, i, 1), "bytes", (json_int_t) size));
		if (i == 0)
			snprintf(first, sizeof(first), "%s.%s (%s)", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
					 pv_size_format(buf, sizeof(buf), (uint64_t) size));
	}
	if (PQntuples(res) == 0)
		it = item_add(r, "largest_tables", CHECK_INFO, "no user tables in database '%s'", PQdb(c));
	else
		it = item_add(r, "largest_tables", CHECK_INFO, "largest table in database '%s': %s", PQdb(c), first);
	json_object_set_new(it->details, "database", json_string(PQdb(c)));
	json_object_set_new(it->details, "tables", list);
	PQclear(res);
}

static void
check_long_transactions(CheckReport *r, PGconn *c, int64_t threshold)
{
	PGresult *res;
	json_t *list = json_array();
	char secs[32];
	char dur[64];
	const char *params[1] = {secs};
	CheckItem *it;

	snprintf(secs, sizeof(secs), "%lld", (long long) threshold);
	if (!query_ok(r, "long_transactions",
				  pgconn_query(&res, c, 6,
							   "SELECT pid, coalesce(usename, ''), coalesce(datname, ''), "
							   "extract(epoch FROM now() - xact_start)::bigint, coalesce(state, ''), "
							   "left(coalesce(query, ''), 200) FROM pg_catalog.pg_stat_activity "
							   "WHERE xact_start < now() - make_interval(secs => $1::bigint) "
							   "AND pid <> pg_catalog.pg_backend_pid() ORDER BY xact_start", 1, params)))
	{
		json_decref(list);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, json_pack("{s:i, s:s, s:s, s:I, s:s, s:s}",
											  "pid", atoi(PQgetvalue(res, i, 0)),
											  "user", PQgetvalue(res, i, 1),
											  "database", PQgetvalue(res, i, 2),
											  "age_seconds", (json_int_t) atoll(PQgetvalue(res, i, 3)),
											  "state", PQgetvalue(res, i, 4),
											  "query", PQgetvalue(res, i, 5)));
	pv_duration_format(dur, sizeof(dur), threshold);
	if (PQntuples(res) == 0)
		it = item_add(r, "long_transactions", CHECK_OK, "no transaction open longer than %s", dur);
	else
	{
		char age[64];

		pv_duration_format(age, sizeof(age), atoll(PQgetvalue(res, 0, 3)));
		it = item_add(r, "long_transactions", CHECK_WARNING,
					  "%d transaction(s) open longer than %s; oldest: pid %s (user %s, database %s, "
					  "%s, open %s)", PQntuples(res), dur, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
					  PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 4), age);
		item_hint(it, "long transactions hold back vacuum and can block a backup's locks; "
				  "end them or wait (pg_terminate_backend(pid) ends one)");
	}
	json_object_set_new(it->details, "threshold_seconds", json_integer(threshold));
	json_object_set_new(it->details, "transactions", list);
	PQclear(res);
}

static bool
url_is_local(const char *url)
{
	return strstr(url, "://") == NULL || strncmp(url, "file://", 7) == 0;
}

static void
check_repo_space(CheckReport *r, const char *url, int64_t db_bytes)
{
	char freebuf[32], needbuf[32];
	uint64_t free_bytes = 0;
	const char *path;
	CheckItem *it;

	if (url == NULL)
	{
		it = item_add(r, "repo_free_space", CHECK_INFO, "no repository given: free space not checked");
		item_hint(it, "pass --repo PATH|URL or set PGVAULT_REPO to check where backups will go");
		return;
	}
	if (!url_is_local(url))
	{
		it = item_add(r, "repo_free_space", CHECK_INFO, "repository '%s' is an object store: no free space "
					  "limit to check", url);
		json_object_set_new(it->details, "url", json_string(url));
		return;
	}
	path = strncmp(url, "file://", 7) == 0 ? url + 7 : url;
	if (pv_fs_free_space(path, &free_bytes) < 0)
	{
		it = item_add(r, "repo_free_space", CHECK_FAILURE, "could not measure free space: %s", pv_error_msg());
		item_hint(it, "check that the repository's directory (or a parent) exists and is readable");
		return;
	}
	pv_size_format(freebuf, sizeof(freebuf), free_bytes);
	pv_size_format(needbuf, sizeof(needbuf), (uint64_t) db_bytes);
	/*
	 * Deduplication and compression usually shrink a backup well below the
	 * database size, so only less than a tenth of it is a sure failure.
	 */
	if ((int64_t) free_bytes < db_bytes / 10)
	{
		it = item_add(r, "repo_free_space", CHECK_FAILURE, "only %s free at '%s' for %s of databases",
					  freebuf, path, needbuf);
		item_hint(it, "free space, or put the repository on a larger filesystem or an object store");
	}
	else if ((int64_t) free_bytes < db_bytes)
	{
		it = item_add(r, "repo_free_space", CHECK_WARNING, "%s free at '%s', less than the %s of databases: "
					  "a first full backup may not fit", freebuf, path, needbuf);
		item_hint(it, "compression usually halves the size, but make room to be sure");
	}
	else
		it = item_add(r, "repo_free_space", CHECK_OK, "%s free at '%s' (databases: %s)", freebuf, path, needbuf);
	json_object_set_new(it->details, "path", json_string(path));
	json_object_set_new(it->details, "free_bytes", json_integer((json_int_t) free_bytes));
	json_object_set_new(it->details, "database_bytes", json_integer(db_bytes));
}

static void
check_privileges(CheckReport *r, PGconn *c)
{
	bool pg15 = PQserverVersion(c) >= 150000;
	PGresult *res;
	CheckItem *it;
	bool super, readall, backupfn;
	char sql[600];

	snprintf(sql, sizeof(sql),
			 "SELECT current_user, rolsuper, "
			 "pg_catalog.pg_has_role(current_user, 'pg_read_all_data', 'MEMBER'), "
			 "pg_catalog.has_function_privilege(current_user, '%s', 'EXECUTE') "
			 "FROM pg_catalog.pg_roles WHERE rolname = current_user",
			 pg15 ? "pg_catalog.pg_backup_start(text, boolean)" : "pg_catalog.pg_start_backup(text, boolean, boolean)");
	if (PQserverVersion(c) < 140000)	/* pg_read_all_data arrived in 14 */
		snprintf(sql, sizeof(sql),
				 "SELECT current_user, rolsuper, false, "
				 "pg_catalog.has_function_privilege(current_user, "
				 "'pg_catalog.pg_start_backup(text, boolean, boolean)', 'EXECUTE') "
				 "FROM pg_catalog.pg_roles WHERE rolname = current_user");
	if (!query_ok(r, "privileges", pgconn_query(&res, c, 4, sql, 0, NULL)))
		return;
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		item_add(r, "privileges", CHECK_FAILURE, "could not read the current role's attributes");
		return;
	}
	super = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	readall = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	backupfn = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	if (super)
		it = item_add(r, "privileges", CHECK_OK, "role '%s' is a superuser", PQgetvalue(res, 0, 0));
	else if (!readall)
	{
		it = item_add(r, "privileges", CHECK_FAILURE,
					  "role '%s' is neither a superuser nor a member of pg_read_all_data: "
					  "a logical backup would miss tables it cannot read", PQgetvalue(res, 0, 0));
		item_hint(it, "GRANT pg_read_all_data TO the role (PostgreSQL 14+), or connect as a superuser");
	}
	else if (!backupfn)
	{
		it = item_add(r, "privileges", CHECK_WARNING,
					  "role '%s' can read all data but may not run %s: physical backups will fail",
					  PQgetvalue(res, 0, 0), pg15 ? "pg_backup_start" : "pg_start_backup");
		item_hint(it, pg15 ? "GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean), "
				  "pg_backup_stop(boolean) TO the role" :
				  "GRANT EXECUTE ON FUNCTION pg_start_backup(text, boolean, boolean) TO the role");
	}
	else
		it = item_add(r, "privileges", CHECK_OK, "role '%s' can read all data and run the backup functions",
					  PQgetvalue(res, 0, 0));
	json_object_set_new(it->details, "role", json_string(PQgetvalue(res, 0, 0)));
	json_object_set_new(it->details, "superuser", json_boolean(super));
	json_object_set_new(it->details, "pg_read_all_data", json_boolean(readall));
	json_object_set_new(it->details, "backup_functions", json_boolean(backupfn));
	PQclear(res);
}

void
check_run(CheckReport *r, const CheckOpts *o)
{
	PGconn *c = NULL;
	char where[256];
	CheckItem *it;
	int64_t db_bytes;

	memset(r, 0, sizeof(*r));
	r->status = CHECK_OK;
	if (pgconn_connect(&c, &o->conn) < 0)
	{
		it = item_add(r, "connection", CHECK_FAILURE, "could not connect: %s", pv_error_msg());
		if (pv_error_hint_msg()[0])
			item_hint(it, pv_error_hint_msg());
		return;
	}
	it = item_add(r, "connection", CHECK_OK, "connected to %s as '%s', database '%s'",
				  pgconn_where(c, where, sizeof(where)), PQuser(c), PQdb(c));
	json_object_set_new(it->details, "server", json_string(where));
	json_object_set_new(it->details, "user", json_string(PQuser(c)));
	json_object_set_new(it->details, "database", json_string(PQdb(c)));

	check_version(r, c);
	check_tools(r, c, o->bindir);
	check_checksums(r, c);
	check_wal_level(r, c);
	check_archiving(r, c, o);
	db_bytes = check_database_sizes(r, c);
	check_largest_tables(r, c);
	check_long_transactions(r, c, o->long_xact_secs);
	check_repo_space(r, o->repo_url, db_bytes);
	check_privileges(r, c);
	PQfinish(c);
}

void
check_report_clear(CheckReport *r)
{
	for (int i = 0; i < r->nitems; i++)
	{
		pv_free(r->items[i].message);
		pv_free(r->items[i].hint);
		json_decref(r->items[i].details);
	}
	pv_free(r->items);
	memset(r, 0, sizeof(*r));
}

const char *
check_status_name(CheckStatus s)
{
	switch (s)
	{
		case CHECK_INFO:
			return "info";
		case CHECK_OK:
			return "ok";
		case CHECK_WARNING:
			return "warning";
		case CHECK_FAILURE:
			return "failure";
	}
	return "?";
}

json_t *
check_report_json(const CheckReport *r)
{
	json_t *checks = json_array();

	for (int i = 0; i < r->nitems; i++)
	{
		const CheckItem *it = &r->items[i];

		json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:o, s:O}",
												"name", it->name,
												"status", check_status_name(it->status),
												"message", it->message,
												"hint", it->hint ? json_string(it->hint) : json_null(),
												"details", it->details));
	}
	return json_pack("{s:s, s:o}", "status",
					 check_status_name(r->status == CHECK_INFO ? CHECK_OK : r->status), "checks", checks);
}
