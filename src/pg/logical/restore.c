/*
 * restore.c: `pgvault restore` of a logical backup (see logical.h).
 *
 * Steps, in order; the name of the step that failed prefixes the error:
 *   target    pick the database; refuse one in use (unless
 *             --terminate-connections) or not empty (unless --clean);
 *             create it (source's encoding, locale, owner) when missing
 *   clean     with --clean: the DROP part of `pg_restore --clean --if-exists`
 *   pre-data  pg_restore --section=pre-data from the schema item (a temp file)
 *   data      COPY FROM STDIN of every data item in parallel (largest first),
 *             each part's row count checked against the backup's
 *   sequences setval of every sequence
 *   large objects
 *   post-data pg_restore --section=post-data -j N
 *   matviews  REFRESH of the materialized views that were populated
 *   analyze   ANALYZE of every table, in parallel (unless --no-analyze)
 * A database created by this restore is dropped again on failure; an
 * existing one is left as the failed step left it, and the error says so.
 */
#include "pg/logical/logical.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "pg/logical/util.h"
#include "pg/tools.h"
#include "repo/reader.h"
#include "repo/repo.h"

#include <libpq/libpq-fs.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct RPart
{
	char *item;
	char *qname, *cols;
	uint64_t rows;
	uint64_t bytes;
	RepoItem *ri;				/* from the item list */
} RPart;

typedef struct RSeq
{
	char *qname, *last_value;
	bool is_called;
} RSeq;

typedef struct Rst
{
	const PgLogicalRestoreOpts *o;
	PgLogicalRestoreResult *res;
	RepoManifest *m;
	const json_t *meta;
	const char *encoding;
	PGconn *maint;
	PGconn *coord;
	char *dbname;
	char *ci;					/* target conninfo with password */
	char *ci_nopw;
	char *password;
	char *schema_file;
	PgTool pg_restore;
	RPart *parts;
	size_t nparts;
	RSeq *seqs;
	size_t nseqs;
	char **matviews;			/* populated ones, qualified */
	size_t nmatviews;
	char **tables;				/* every table, for ANALYZE */
	size_t ntables;
	bool has_lo;
	pthread_mutex_t mu;
	PGconn **idle;
	int nidle;
	PgProgress prog;
} Rst;

/* ---- catalog ---- */

static int
catalog_entry(const json_t *e, void *payload)
{
	Rst *s = payload;
	const char *kind = "", *schema = "", *name = "";
	int rc;

	if ((rc = pv_json_get_str(&kind, e, "kind")) < 0)
		return rc;
	if (strcmp(kind, "large_objects") == 0)
	{
		s->has_lo = true;
		return PV_OK;
	}
	if ((rc = pv_json_get_str(&schema, e, "schema")) < 0 || (rc = pv_json_get_str(&name, e, "name")) < 0)
		return rc;
	if (strcmp(kind, "sequence") == 0)
	{
		const char *lv;
		bool called;

		if ((rc = pv_json_get_str(&lv, e, "last_value")) < 0 || (rc = pv_json_get_bool(&called, e, "is_called")) < 0)
			return rc;
		s->seqs = pv_realloc(s->seqs, sizeof(RSeq) * (s->nseqs + 1));
		s->seqs[s->nseqs++] = (RSeq) {.qname = pglogical_qualify(schema, name), .last_value = pv_strdup(lv),
									  .is_called = called};
	}
	else if (strcmp(kind, "matview") == 0)
	{
		bool populated = false, data = false;

		(void) pv_json_opt_bool(&populated, e, "populated", false);
		(void) pv_json_opt_bool(&data, e, "data", false);
		if (populated && data)
		{
			s->matviews = pv_realloc(s->matviews, sizeof(char *) * (s->nmatviews + 1));
			s->matviews[s->nmatviews++] = pglogical_qualify(schema, name);
		}
	}
	else if (strcmp(kind, "table") == 0)
	{
		const json_t *parts;
		const char *cols = "";
		bool data = false;
		size_t i;
		json_t *p;

		(void) pv_json_opt_bool(&data, e, "data", false);
		(void) pv_json_opt_str(&cols, e, "columns", "");
		s->tables = pv_realloc(s->tables, sizeof(char *) * (s->ntables + 1));
		s->tables[s->ntables++] = pglogical_qualify(schema, name);
		if (!data)
			return PV_OK;
		if ((rc = pv_json_get_array(&parts, e, "parts")) < 0)
			return rc;
		s->res->tables++;
		json_array_foreach(parts, i, p)
		{
			const char *item;
			uint64_t rows = 0, bytes = 0;

			if ((rc = pv_json_get_str(&item, p, "item")) < 0 || (rc = pv_json_get_uint(&rows, p, "rows")) < 0)
				return rc;
			(void) pv_json_get_uint(&bytes, p, "bytes");
			s->parts = pv_realloc(s->parts, sizeof(RPart) * (s->nparts + 1));
			s->parts[s->nparts++] = (RPart) {.item = pv_strdup(item), .qname = pglogical_qualify(schema, name),
											 .cols = pv_strdup(cols), .rows = rows, .bytes = bytes};
		}
	}
	return PV_OK;
}

static int
part_cmp_name(const void *a, const void *b)
{
	return strcmp(((const RPart *) a)->item, ((const RPart *) b)->item);
}

static int
part_cmp_size(const void *a, const void *b)
{
	const RPart *x = a, *y = b;

	return x->bytes > y->bytes ? -1 : x->bytes < y->bytes;
}

/* One pass over the item list: attach each data part's RepoItem. */
static int
parts_attach(Rst *s, Repo *repo)
{
	RepoItemIter *it = NULL;
	const RepoItem *item;
	Buf line = PV_BUF_INIT;
	int rc;

	qsort(s->parts, s->nparts, sizeof(RPart), part_cmp_name);
	if ((rc = repo_item_iter_new(&it, repo, s->m)) < 0)
		return rc;
	while ((rc = repo_item_iter_next(it, &item)) == PV_OK && item != NULL)
	{
		RPart key = {.item = item->name};
		RPart *p = s->nparts ? bsearch(&key, s->parts, s->nparts, sizeof(RPart), part_cmp_name) : NULL;

		if (p == NULL || p->ri != NULL)
			continue;
		buf_reset(&line);
		repo_item_to_json(item, &line);
		if ((rc = repo_item_parse(&p->ri, (const char *) line.data, line.len - 1)) < 0)
			break;
	}
	repo_item_iter_free(it);
	buf_free(&line);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s->nparts; i++)
		if (s->parts[i].ri == NULL)
			return pv_error_set(PV_ECORRUPT, "backup '%s' lists data item '%s' in its catalog but not in its items",
								repo_manifest_id(s->m), s->parts[i].item);
	qsort(s->parts, s->nparts, sizeof(RPart), part_cmp_size);
	return PV_OK;
}

/* ---- connections to the target ---- */

static int
conn_get(Rst *s, PGconn **out)
{
	PGconn *c = NULL;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (s->nidle > 0)
		c = s->idle[--s->nidle];
	pthread_mutex_unlock(&s->mu);
	if (c != NULL)
	{
		*out = c;
		return PV_OK;
	}
	if ((rc = pgconn_connect(&c, &(PgConnOpts) {.conninfo = s->ci, .application_name = "pgvault restore"})) < 0)
		return pv_error_prefix(rc, "worker connection");
	if ((rc = pglogical_session_setup(c, s->encoding)) < 0)
	{
		PQfinish(c);
		return pv_error_prefix(rc, "worker connection");
	}
	*out = c;
	return PV_OK;
}

static void
conn_put(Rst *s, PGconn *c, bool ok)
{
	if (!ok)
	{
		PQfinish(c);
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->idle = pv_realloc(s->idle, sizeof(PGconn *) * (size_t) (s->nidle + 1));
	s->idle[s->nidle++] = c;
	pthread_mutex_unlock(&s->mu);
}

static void
conns_close(Rst *s)
{
	for (int i = 0; i < s->nidle; i++)
		PQfinish(s->idle[i]);
	s->nidle = 0;
	if (s->coord != NULL)
		PQfinish(s->coord);
	s->coord = NULL;
}

static int
copy_error(PGconn *c, PGresult *r, const char *what)
{
	char line[512];
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *ctx = r ? PQresultErrorField(r, PG_DIAG_CONTEXT) : NULL;

	if (msg == NULL)
		msg = pgconn_error_line(c, line, sizeof(line));
	if (ctx != NULL)
		return pv_error_set(PV_EPG, "%s: %s (%.*s)", what, msg, (int) strcspn(ctx, "\n"), ctx);
	return pv_error_set(PV_EPG, "%s: %s", what, msg);
}

/* ---- tasks ---- */

typedef struct PartTask
{
	Rst *s;
	RPart *p;
} PartTask;

static int
task_copy(void *arg)
{
	PartTask *t = arg;
	Rst *s = t->s;
	RPart *p = t->p;
	PGconn *c = NULL;
	PGresult *r = NULL;
	RepoReader *rd = NULL;
	char *buf = pv_malloc(256 * 1024);
	Buf sql = PV_BUF_INIT;
	bool ok = false, in_copy = false;
	int rc;

	if ((rc = conn_get(s, &c)) < 0)
		goto done;
	if ((rc = repo_reader_open(&rd, s->o->repo, s->m, p->ri, NULL)) < 0)
		goto done;
	/* A table without columns has rows too ("COPY t ()" is not valid SQL). */
	buf_printf(&sql, p->cols[0] ? "COPY %s (%s) FROM STDIN" : "COPY %s %s FROM STDIN", p->qname, p->cols);
	r = PQexec(c, buf_cstr(&sql));
	if (PQresultStatus(r) != PGRES_COPY_IN)
	{
		rc = copy_error(c, r, "COPY failed");
		goto done;
	}
	PQclear(r);
	r = NULL;
	in_copy = true;
	for (;;)
	{
		size_t n;

		if ((rc = repo_reader_read(rd, buf, 256 * 1024, &n)) < 0)
			goto done;
		if (n == 0)
			break;
		if (PQputCopyData(c, buf, (int) n) != 1)
		{
			rc = copy_error(c, NULL, "COPY failed");
			goto done;
		}
		atomic_fetch_add(&s->prog.bytes, n);
	}
	in_copy = false;
	if (PQputCopyEnd(c, NULL) != 1)
	{
		rc = copy_error(c, NULL, "COPY failed");
		goto done;
	}
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		rc = copy_error(c, r, "COPY failed");
		goto done;
	}
	if (strtoull(PQcmdTuples(r), NULL, 10) != p->rows)
	{
		rc = pv_error_set(PV_ECORRUPT, "loaded %s rows where the backup has %llu", PQcmdTuples(r),
						  (unsigned long long) p->rows);
		goto done;
	}
	PQclear(r);
	r = PQgetResult(c);
	atomic_fetch_add(&s->prog.rows, p->rows);
	atomic_fetch_add(&s->prog.items_done, 1);
	atomic_fetch_add(&s->prog.weight_done, p->bytes);
	ok = true;
	rc = PV_OK;
done:
	if (in_copy)
	{
		PGresult *x;

		PQputCopyEnd(c, "restore failed");
		while ((x = PQgetResult(c)) != NULL)
			PQclear(x);
	}
	PQclear(r);
	repo_reader_free(rd);
	if (c != NULL)
		conn_put(s, c, ok);
	if (rc < 0)
		pv_error_prefix(rc, "%s (item %s)", p->qname, p->item);
	buf_free(&sql);
	pv_free(buf);
	return rc;
}

static int
task_analyze(void *arg)
{
	PartTask *t = arg;
	PGconn *c = NULL;
	char *sql;
	int rc;

	if ((rc = conn_get(t->s, &c)) < 0)
		return rc;
	sql = pv_asprintf("ANALYZE %s", t->p->qname);
	rc = pgconn_exec(c, sql);
	pv_free(sql);
	conn_put(t->s, c, rc == PV_OK);
	if (rc < 0)
		pv_error_prefix(rc, "%s", t->p->qname);
	return rc;
}

/* ---- steps ---- */

/* The sessions on dbname other than ours: "pid 123 (user u, application a, client c)". */
static int
sessions_check(Rst *s)
{
	const char *params[1] = {s->dbname};
	PGresult *r = NULL;
	Buf list = PV_BUF_INIT;
	int rc;

	if ((rc = pgconn_query(&r, s->maint, 4,
						   "SELECT pid::text, coalesce(usename::text, ''), coalesce(application_name, ''),"
						   " coalesce(host(client_addr), 'local') FROM pg_catalog.pg_stat_activity"
						   " WHERE datname OPERATOR(pg_catalog.=) $1 AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
						   " ORDER BY pid", 1, params)) < 0)
		return rc;
	if (PQntuples(r) == 0)
	{
		PQclear(r);
		return PV_OK;
	}
	if (!s->o->terminate)
	{
		for (int i = 0; i < PQntuples(r); i++)
			buf_printf(&list, "%spid %s (user %s, application '%s', client %s)", i ? ", " : "",
					   PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
		rc = pv_error_set(PV_EREFUSED, "database '%s' is in use by %d other session%s: %s", s->dbname,
						  PQntuples(r), PQntuples(r) == 1 ? "" : "s", buf_cstr(&list));
		pv_error_hint("end them, or add --terminate-connections to have pgvault end them");
		PQclear(r);
		buf_free(&list);
		return rc;
	}
	PQclear(r);
	pv_log_warn("terminating the other sessions on database '%s'", s->dbname);
	for (int tries = 0; tries < 100; tries++)
	{
		char *n = NULL;

		if ((rc = pgconn_query_value(&n, s->maint,
									 "SELECT count(pg_catalog.pg_terminate_backend(pid))::text FROM pg_catalog.pg_stat_activity"
									 " WHERE datname OPERATOR(pg_catalog.=) $1 AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()",
									 1, params)) < 0)
			return rc;
		if (n != NULL && strcmp(n, "0") == 0)
		{
			pv_free(n);
			return PV_OK;
		}
		pv_free(n);
		usleep(100 * 1000);
	}
	return pv_error_set(PV_EREFUSED, "sessions on database '%s' did not end after 10s", s->dbname);
}

static int
database_create(Rst *s)
{
	Buf sql = PV_BUF_INIT;
	const char *enc = "UTF8", *coll = NULL, *ctype = NULL, *prov = "c", *icu = NULL, *owner = NULL;
	char *q = pglogical_quote_ident(s->dbname);
	char *lit;
	int rc;

	(void) pv_json_opt_str(&enc, s->meta, "encoding", "UTF8");
	(void) pv_json_opt_str(&coll, s->meta, "collate", NULL);
	(void) pv_json_opt_str(&ctype, s->meta, "ctype", NULL);
	(void) pv_json_opt_str(&prov, s->meta, "locale_provider", "c");
	(void) pv_json_opt_str(&icu, s->meta, "icu_locale", NULL);
	(void) pv_json_opt_str(&owner, s->meta, "owner", NULL);
	buf_printf(&sql, "CREATE DATABASE %s TEMPLATE template0", q);
#define LIT(kw, v) do { lit = PQescapeLiteral(s->maint, (v), strlen(v)); \
		buf_printf(&sql, " " kw " %s", lit ? lit : "''"); PQfreemem(lit); } while (0)
	LIT("ENCODING", enc);
	if (coll)
		LIT("LC_COLLATE", coll);
	if (ctype)
		LIT("LC_CTYPE", ctype);
	if (strcmp(prov, "i") == 0 && PQserverVersion(s->maint) >= 150000)
	{
		buf_append_str(&sql, " LOCALE_PROVIDER icu");
		if (icu)
			LIT("ICU_LOCALE", icu);
	}
#undef LIT
	if (owner != NULL && !s->o->no_owner)
	{
		char *exists = NULL;
		const char *p[1] = {owner};

		if ((rc = pgconn_query_value(&exists, s->maint,
									 "SELECT count(*)::text FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
									 1, p)) < 0)
			goto done;
		if (exists && strcmp(exists, "1") == 0)
		{
			char *qo = pglogical_quote_ident(owner);

			buf_printf(&sql, " OWNER %s", qo);
			pv_free(qo);
		}
		else
			pv_log_warn("role '%s' (the source database's owner) does not exist; the new database is owned by the restoring role",
						owner);
		pv_free(exists);
	}
	if ((rc = pgconn_exec(s->maint, buf_cstr(&sql))) < 0)
		goto done;
	s->res->created = true;
	pv_log_info("created database '%s'", s->dbname);
done:
	pv_free(q);
	buf_free(&sql);
	return rc;
}

static int
database_check_empty(Rst *s)
{
	char *n = NULL;
	int rc;

	if ((rc = pgconn_query_value(&n, s->coord,
								 "SELECT count(*)::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns"
								 " ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace"
								 " WHERE ns.nspname OPERATOR(pg_catalog.!~) '^pg_' AND ns.nspname OPERATOR(pg_catalog.<>) 'information_schema'",
								 0, NULL)) < 0)
		return rc;
	if (n != NULL && strcmp(n, "0") != 0)
	{
		rc = pv_error_set(PV_EREFUSED, "database '%s' is not empty (%s relations)", s->dbname, n);
		pv_error_hint("restore into a new database (--target-db), or add --clean to replace the backup's objects");
	}
	pv_free(n);
	return rc;
}

static int
schema_fetch(Rst *s)
{
	const char *tmp = getenv("TMPDIR");
	RepoItem *item = NULL;
	RepoReader *rd = NULL;
	char *buf = pv_malloc(256 * 1024);
	int fd = -1;
	int rc;

	s->schema_file = pv_asprintf("%s/pgvault-schema-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if ((fd = mkstemp(s->schema_file)) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot create a temporary file in '%s'", tmp && tmp[0] ? tmp : "/tmp");
		pv_free(s->schema_file);
		s->schema_file = NULL;
		goto done;
	}
	if ((rc = repo_manifest_find_item(&item, s->o->repo, s->m, "schema")) < 0 ||
		(rc = repo_reader_open(&rd, s->o->repo, s->m, item, NULL)) < 0)
		goto done;
	for (;;)
	{
		size_t n;

		if ((rc = repo_reader_read(rd, buf, 256 * 1024, &n)) < 0)
			goto done;
		if (n == 0)
			break;
		for (size_t off = 0; off < n;)
		{
			ssize_t w = write(fd, buf + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
			{
				rc = pv_error_errno(PV_EIO, errno, "writing '%s'", s->schema_file);
				goto done;
			}
			off += (size_t) w;
		}
	}
	rc = PV_OK;
done:
	if (fd >= 0)
		close(fd);
	repo_reader_free(rd);
	repo_item_free(item);
	pv_free(buf);
	return rc;
}

static int
run_pg_restore(Rst *s, const char *const *extra, Buf *capture)
{
	char *argv[32];
	int argc = 0;
	PgChild ch;
	int rc;

	argv[argc++] = s->pg_restore.path;
	for (int i = 0; extra[i] != NULL && argc < 24; i++)
		argv[argc++] = (char *) extra[i];
	if (s->o->no_owner)
		argv[argc++] = "--no-owner";
	if (s->o->no_privileges)
		argv[argc++] = "--no-privileges";
	argv[argc++] = s->schema_file;
	argv[argc] = NULL;
	if ((rc = pglogical_child_start(&ch, argv, s->password, capture != NULL)) < 0)
		return rc;
	if (capture != NULL)
	{
		char buf[65536];
		ssize_t n;

		while ((n = read(ch.out_fd, buf, sizeof(buf))) != 0)
		{
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			buf_append(capture, buf, (size_t) n);
		}
	}
	return pglogical_child_wait(&ch);
}

/* --clean: the DROP statements pg_restore --clean --if-exists would run. */
static int
step_clean(Rst *s)
{
	const char *args[] = {"--clean", "--if-exists", "--file=-", NULL};
	Buf script = PV_BUF_INIT;
	const char *start, *end;
	int rc;

	if ((rc = run_pg_restore(s, args, &script)) < 0)
		goto done;
	/*
	 * pg_restore prints its preamble (SETs), every DROP, and then the
	 * creations, each headed by a "-- Name: ..." comment block.  The first
	 * such block ends the drops.
	 */
	start = buf_cstr(&script);
	end = strstr(start, "\n--\n-- Name: ");
	if (end != NULL)
		script.data[end - start + 1] = '\0';
	/* psql meta-commands (pg_restore 15.14+ writes \restrict KEY) are not SQL: drop those lines. */
	for (char *ln = (char *) script.data; ln != NULL && *ln; ln = strchr(ln, '\n') ? strchr(ln, '\n') + 1 : NULL)
		if (*ln == '\\')
			for (char *p = ln; *p && *p != '\n'; p++)
				*p = ' ';
	if ((rc = pgconn_exec(s->coord, start)) < 0)
		goto done;
	/* The preamble set search_path to ''; keep our session settings. */
	rc = pglogical_session_setup(s->coord, s->encoding);
done:
	buf_free(&script);
	return rc;
}

static int
step_sequences(Rst *s)
{
	for (size_t i = 0; i < s->nseqs; i++)
	{
		const char *p[3] = {s->seqs[i].qname, s->seqs[i].last_value, s->seqs[i].is_called ? "true" : "false"};
		PGresult *r = NULL;
		int rc;

		if ((rc = pgconn_query(&r, s->coord, 1,
							   "SELECT pg_catalog.setval($1::pg_catalog.regclass, $2::bigint, $3::boolean)", 3, p)) < 0)
			return pv_error_prefix(rc, "sequence %s", s->seqs[i].qname);
		PQclear(r);
		s->res->sequences++;
	}
	return PV_OK;
}

/* Read exactly n bytes (or fewer at the end) from a reader. */
static int
reader_fill(RepoReader *rd, char *buf, size_t n, size_t *got)
{
	*got = 0;
	while (*got < n)
	{
		size_t k;
		int rc;

		if ((rc = repo_reader_read(rd, buf + *got, n - *got, &k)) < 0)
			return rc;
		if (k == 0)
			break;
		*got += k;
	}
	return PV_OK;
}

/* Owner, comment and grants of a large object (what pg_dump's BLOB entry would restore). */
static int
lo_meta_apply(Rst *s, unsigned long oid, const char *json)
{
	json_t *m = NULL;
	const char *owner = NULL, *comment = NULL;
	const json_t *acl;
	Buf sql = PV_BUF_INIT;
	int rc;

	if ((rc = pv_json_parse(&m, json, strlen(json), "large object metadata")) < 0)
		return rc;
	(void) pv_json_opt_str(&owner, m, "owner", NULL);
	(void) pv_json_opt_str(&comment, m, "comment", NULL);
	acl = json_object_get(m, "acl");
	if (owner != NULL && !s->o->no_owner)
	{
		char *q = pglogical_quote_ident(owner);

		buf_printf(&sql, "ALTER LARGE OBJECT %lu OWNER TO %s;", oid, q);
		pv_free(q);
	}
	if (comment != NULL)
	{
		char *lit = PQescapeLiteral(s->coord, comment, strlen(comment));

		buf_printf(&sql, "COMMENT ON LARGE OBJECT %lu IS %s;", oid, lit ? lit : "NULL");
		PQfreemem(lit);
	}
	if (json_is_array(acl) && !s->o->no_privileges)
	{
		size_t i;
		json_t *a;

		buf_printf(&sql, "REVOKE ALL ON LARGE OBJECT %lu FROM PUBLIC;", oid);
		if (owner != NULL && !s->o->no_owner)
		{
			char *q = pglogical_quote_ident(owner);

			buf_printf(&sql, "REVOKE ALL ON LARGE OBJECT %lu FROM %s;", oid, q);
			pv_free(q);
		}
		json_array_foreach(acl, i, a)
		{
			const char *grantee = json_string_value(json_object_get(a, "grantee"));
			const char *priv = json_string_value(json_object_get(a, "privilege"));

			/* grantee is already quoted (or PUBLIC); privileges are SELECT or UPDATE */
			if (grantee == NULL || priv == NULL || (strcmp(priv, "SELECT") != 0 && strcmp(priv, "UPDATE") != 0))
				continue;
			buf_printf(&sql, "GRANT %s ON LARGE OBJECT %lu TO %s%s;", priv, oid, grantee,
					   json_is_true(json_object_get(a, "grantable")) ? " WITH GRANT OPTION" : "");
		}
	}
	if (sql.len > 0)
		rc = pgconn_exec(s->coord, buf_cstr(&sql));
	buf_free(&sql);
	json_decref(m);
	return rc;
}

static int
step_large_objects(Rst *s)
{
	RepoItem *item = NULL;
	RepoReader *rd = NULL;
	char *buf = pv_malloc(256 * 1024);
	PGconn *c = s->coord;
	int rc;

	if ((rc = repo_manifest_find_item(&item, s->o->repo, s->m, "large-objects")) < 0 ||
		(rc = repo_reader_open(&rd, s->o->repo, s->m, item, NULL)) < 0)
		goto done;
	for (;;)
	{
		Buf hdr = PV_BUF_INIT;
		size_t got = 0;
		unsigned long oid;
		long long len, left;
		int fd, pos = 0;

		/* "<oid> <length> <json>\n" */
		for (;;)
		{
			char ch;

			if ((rc = reader_fill(rd, &ch, 1, &got)) < 0)
			{
				buf_free(&hdr);
				goto done;
			}
			if (got == 0 || ch == '\n')
				break;
			buf_append_byte(&hdr, (unsigned char) ch);
		}
		if (hdr.len == 0 && got == 0)
		{
			buf_free(&hdr);
			break;
		}
		if (sscanf(buf_cstr(&hdr), "%lu %lld %n", &oid, &len, &pos) != 2 || len < 0)
		{
			rc = pv_error_set(PV_ECORRUPT, "item 'large-objects' of backup '%s' is malformed near '%.60s'",
							  repo_manifest_id(s->m), buf_cstr(&hdr));
			buf_free(&hdr);
			goto done;
		}
		if ((rc = pgconn_exec(c, "BEGIN")) < 0)
			goto done;
		{
			char sql[160];

			/* An existing one (--clean, --data-only) is replaced whole: contents, owner, grants. */
			snprintf(sql, sizeof(sql),
					 "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata"
					 " WHERE oid OPERATOR(pg_catalog.=) %lu; SELECT pg_catalog.lo_create(%lu)", oid, oid);
			if ((rc = pgconn_exec(c, sql)) < 0)
				goto done;
		}
		if ((fd = lo_open(c, (Oid) oid, INV_WRITE)) < 0)
		{
			rc = copy_error(c, NULL, "opening it");
			goto lo_fail;
		}
		for (left = len; left > 0;)
		{
			size_t want = left < 256 * 1024 ? (size_t) left : 256 * 1024;

			if ((rc = reader_fill(rd, buf, want, &got)) < 0)
				goto lo_fail;
			if (got != want)
			{
				rc = pv_error_set(PV_ECORRUPT, "item 'large-objects' of backup '%s' is truncated", repo_manifest_id(s->m));
				goto lo_fail;
			}
			if (lo_write(c, fd, buf, got) != (int) got)
			{
				rc = copy_error(c, NULL, "writing it");
				goto lo_fail;
			}
			left -= (long long) got;
			atomic_fetch_add(&s->prog.bytes, got);
		}
		lo_close(c, fd);
		if (pos > 0 && (size_t) pos < hdr.len && (rc = lo_meta_apply(s, oid, buf_cstr(&hdr) + pos)) < 0)
			goto lo_fail;
		if ((rc = pgconn_exec(c, "COMMIT")) < 0)
			goto lo_fail;
		buf_free(&hdr);
		s->res->large_objects++;
		continue;
lo_fail:
		pv_error_prefix(rc, "large object %lu", oid);
		(void) PQclear(PQexec(c, "ROLLBACK"));
		buf_free(&hdr);
		goto done;
	}
	rc = PV_OK;
done:
	repo_reader_free(rd);
	repo_item_free(item);
	pv_free(buf);
	return rc;
}

static int
step_matviews(Rst *s)
{
	size_t left = s->nmatviews;
	bool *done = pv_calloc(s->nmatviews + 1, sizeof(bool));
	int rc = PV_OK;

	/* Dependencies among them are unknown here: retry until no progress. */
	while (left > 0)
	{
		size_t before = left;
		PvErrorSave last;

		for (size_t i = 0; i < s->nmatviews; i++)
		{
			char *sql;

			if (done[i])
				continue;
			sql = pv_asprintf("REFRESH MATERIALIZED VIEW %s", s->matviews[i]);
			rc = pgconn_exec(s->coord, sql);
			pv_free(sql);
			if (rc == PV_OK)
			{
				done[i] = true;
				left--;
			}
			else
			{
				pv_error_prefix(rc, "materialized view %s", s->matviews[i]);
				pv_error_save(&last);
			}
		}
		if (left == before)
		{
			rc = pv_error_restore(&last);
			break;
		}
		rc = PV_OK;
	}
	pv_free(done);
	return rc;
}

static int
pool_run(Rst *s, PvPool *pool, PartTask *tasks, size_t n, PvPoolFn fn)
{
	int rc;

	for (size_t i = 0; i < n; i++)
		if ((rc = pv_pool_submit(pool, fn, &tasks[i])) < 0)
			return rc;
	(void) s;
	return pv_pool_wait(pool);
}

static int
target_pick(Rst *s)
{
	const PgLogicalRestoreOpts *o = s->o;
	const char *d = o->conn.dbname;
	bool d_is_conninfo = d != NULL && (strchr(d, '=') != NULL || strstr(d, "://") != NULL);
	PgConnOpts mc = o->conn;
	const char *src = NULL;
	int rc;

	(void) pv_json_opt_str(&src, s->meta, "database", NULL);
	if (o->target_db != NULL)
		s->dbname = pv_strdup(o->target_db);
	else if (d != NULL && !d_is_conninfo)
		s->dbname = pv_strdup(d);
	else if (src != NULL)
		s->dbname = pv_strdup(src);
	else
		return pv_error_set(PV_EUSAGE, "no target database: use --target-db");
	/* The maintenance connection goes to "postgres" unless -d is a whole conninfo. */
	if (!d_is_conninfo)
		mc.dbname = "postgres";
	if ((rc = pgconn_connect(&s->maint, &mc)) < 0 && !d_is_conninfo)
	{
		mc.dbname = "template1";
		rc = pgconn_connect(&s->maint, &mc);
	}
	return rc;
}

static int
restore_run(Rst *s)
{
	const PgLogicalRestoreOpts *o = s->o;
	int jobs = o->jobs > 0 ? o->jobs : 2;
	const char *params[1];
	char *exists = NULL;
	char jobs_arg[32];
	PvPool *pool = NULL;
	PartTask *tasks = NULL;
	bool schema = !o->data_only;
	bool data = !o->schema_only;
	bool has_schema_item;
	const char *step = "target";
	int rc;

	{
		bool schema_only_backup = false, data_only_backup = false;

		(void) pv_json_opt_bool(&schema_only_backup, s->meta, "schema_only", false);
		(void) pv_json_opt_bool(&data_only_backup, s->meta, "data_only", false);
		has_schema_item = !data_only_backup;
		if (!has_schema_item)
			schema = false;
	}
	if ((rc = pglogical_catalog_foreach(o->repo, s->m, catalog_entry, s)) < 0)
		goto done;
	if (data && (rc = parts_attach(s, o->repo)) < 0)
		goto done;
	if (schema && (rc = pgtools_find(&s->pg_restore, "pg_restore", o->bindir, 0)) < 0)
		goto done;
	if ((rc = target_pick(s)) < 0)
		goto done;
	snprintf(s->res->database, sizeof(s->res->database), "%s", s->dbname);
	params[0] = s->dbname;
	if ((rc = pgconn_query_value(&exists, s->maint,
								 "SELECT count(*)::text FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1",
								 1, params)) < 0)
		goto done;
	if (exists != NULL && strcmp(exists, "1") == 0)
	{
		if ((rc = sessions_check(s)) < 0)
			goto done;
	}
	else if ((rc = database_create(s)) < 0)
		goto done;
	if ((rc = pglogical_connect_like(&s->coord, s->maint, s->dbname, "pgvault restore")) < 0 ||
		(rc = pglogical_session_setup(s->coord, s->encoding)) < 0)
		goto done;
	s->ci = pglogical_conninfo(s->coord, NULL, true);
	s->ci_nopw = pglogical_conninfo(s->coord, NULL, false);
	if (PQconnectionUsedPassword(s->coord) && PQpass(s->coord) != NULL)
		s->password = pv_strdup(PQpass(s->coord));
	if (!s->res->created && !o->clean && schema && (rc = database_check_empty(s)) < 0)
		goto done;

	if (schema)
	{
		char *dbarg = pv_asprintf("--dbname=%s", s->ci_nopw);
		const char *pre[] = {"--section=pre-data", "--exit-on-error", dbarg, NULL};

		step = "reading the schema";
		if ((rc = schema_fetch(s)) < 0)
		{
			pv_free(dbarg);
			goto done;
		}
		step = "clean";
		if (o->clean && !s->res->created && (rc = step_clean(s)) < 0)
		{
			pv_free(dbarg);
			goto done;
		}
		step = "pre-data";
		rc = run_pg_restore(s, pre, NULL);
		pv_free(dbarg);
		if (rc < 0)
			goto done;
	}

	pool = pv_pool_new(jobs, 0);
	if (data)
	{
		step = "data";
		tasks = pv_calloc(s->nparts + s->ntables + 1, sizeof(PartTask));
		s->prog.items_total = s->nparts;
		for (size_t i = 0; i < s->nparts; i++)
		{
			tasks[i] = (PartTask) {.s = s, .p = &s->parts[i]};
			s->prog.weight_total += s->parts[i].bytes;
		}
		pglogical_progress_start(&s->prog, "restore", o->progress);
		rc = pool_run(s, pool, tasks, s->nparts, task_copy);
		pglogical_progress_stop(&s->prog);
		if (rc < 0)
			goto done;
		s->res->parts = s->nparts;
		s->res->rows = atomic_load(&s->prog.rows);
		s->res->bytes = atomic_load(&s->prog.bytes);
		step = "sequences";
		if ((rc = step_sequences(s)) < 0)
			goto done;
		step = "large objects";
		if (s->has_lo && (rc = step_large_objects(s)) < 0)
			goto done;
	}
	if (schema)
	{
		char *dbarg = pv_asprintf("--dbname=%s", s->ci_nopw);
		const char *post[] = {"--section=post-data", "--exit-on-error", jobs_arg, dbarg, NULL};

		snprintf(jobs_arg, sizeof(jobs_arg), "--jobs=%d", jobs);
		step = "post-data";
		rc = run_pg_restore(s, post, NULL);
		pv_free(dbarg);
		if (rc < 0)
			goto done;
	}
	if (data)
	{
		step = "materialized views";
		if ((rc = step_matviews(s)) < 0)
			goto done;
		if (!o->no_analyze)
		{
			PartTask *at = pv_calloc(s->ntables + 1, sizeof(PartTask));
			RPart *ap = pv_calloc(s->ntables + 1, sizeof(RPart));

			step = "analyze";
			for (size_t i = 0; i < s->ntables; i++)
			{
				ap[i].qname = s->tables[i];
				at[i] = (PartTask) {.s = s, .p = &ap[i]};
			}
			rc = pool_run(s, pool, at, s->ntables, task_analyze);
			pv_free(at);
			pv_free(ap);
			if (rc < 0)
				goto done;
		}
	}
	rc = PV_OK;
done:
	pv_pool_free(pool);
	pv_free(tasks);
	pv_free(exists);
	if (rc < 0)
		pv_error_prefix(rc, "%s", step);
	return rc;
}

int
pglogical_restore(PgLogicalRestoreResult *out, const PgLogicalRestoreOpts *o)
{
	Rst s = {.o = o, .res = out};
	int64_t t0 = pglogical_now_ms();
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_init(&s.mu, NULL);
	if (o->schema_only && o->data_only)
	{
		rc = pv_error_set(PV_EUSAGE, "options --schema-only and --data-only cannot be used together");
		goto done;
	}
	if ((rc = repo_manifest_load(&s.m, o->repo, o->backup)) < 0)
		goto done;
	snprintf(out->id, sizeof(out->id), "%s", repo_manifest_id(s.m));
	if (strcmp(repo_manifest_kind(s.m), "logical") != 0)
	{
		rc = pv_error_set(PV_EUSAGE, "backup '%s' is a %s backup, not a logical one", out->id,
						  repo_manifest_kind(s.m));
		goto done;
	}
	s.meta = repo_manifest_metadata(s.m);
	if ((rc = pv_json_opt_str(&s.encoding, s.meta, "encoding", "UTF8")) < 0)
		goto done;
	rc = restore_run(&s);
	if (rc < 0 && s.maint != NULL && s.dbname != NULL)
	{
		PvErrorSave e;

		pv_error_save(&e);
		conns_close(&s);
		if (out->created)
		{
			char *q = pglogical_quote_ident(s.dbname);
			char *sql = pv_asprintf("DROP DATABASE IF EXISTS %s%s", q,
									PQserverVersion(s.maint) >= 130000 ? " WITH (FORCE)" : "");

			if (pgconn_exec(s.maint, sql) == PV_OK)
				snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
						 "; database '%s', created by this restore, was dropped again", s.dbname);
			else
				snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
						 "; database '%s' was created by this restore but could not be dropped: %s",
						 s.dbname, pv_error_msg());
			out->created = false;
			pv_free(q);
			pv_free(sql);
		}
		else
			snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
					 "; database '%s' is left as the failed step left it", s.dbname);
		pv_error_restore(&e);
	}
done:
	{
		PvErrorSave e;

		pv_error_save(&e);
		conns_close(&s);
		if (s.maint != NULL)
			PQfinish(s.maint);
		if (s.schema_file != NULL)
		{
			unlink(s.schema_file);
			pv_free(s.schema_file);
		}
		for (size_t i = 0; i < s.nparts; i++)
		{
			pv_free(s.parts[i].item);
			pv_free(s.parts[i].qname);
			pv_free(s.parts[i].cols);
			repo_item_free(s.parts[i].ri);
		}
		pv_free(s.parts);
		for (size_t i = 0; i < s.nseqs; i++)
		{
			pv_free(s.seqs[i].qname);
			pv_free(s.seqs[i].last_value);
		}
		pv_free(s.seqs);
		for (size_t i = 0; i < s.nmatviews; i++)
			pv_free(s.matviews[i]);
		pv_free(s.matviews);
		for (size_t i = 0; i < s.ntables; i++)
			pv_free(s.tables[i]);
		pv_free(s.tables);
		pv_free(s.idle);
		pgtools_clear(&s.pg_restore);
		if (s.ci)
			pv_free_secret_str(s.ci);
		pv_free(s.ci_nopw);
		if (s.password)
			pv_free_secret_str(s.password);
		pv_free(s.dbname);
		repo_manifest_free(s.m);
		pthread_mutex_destroy(&s.mu);
		pv_error_restore(&e);
	}
	out->elapsed_ms = pglogical_now_ms() - t0;
	return rc;
}
