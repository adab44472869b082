/*
 * dump.c: `pgvault backup --logical` of one database (see logical.h for
 * what the backup holds).
 *
 * Order of work:
 *  1. The coordinator connection opens a REPEATABLE READ READ ONLY
 *     transaction, exports its snapshot and records the instant (LSN, time,
 *     txid snapshot) and the database's encoding, locale and owner.  It stays
 *     open until the end: the snapshot lives only as long as it does.
 *  2. Filters are resolved, the relations chosen and locked (ACCESS SHARE,
 *     as pg_dump does) so nobody drops or rewrites them meanwhile.  An
 *     extension's members are left to its CREATE EXTENSION, but for the
 *     tables and sequences it registered with pg_extension_config_dump:
 *     their rows matching its condition (one part, never split) and their
 *     values are data, as in pg_dump.
 *  3. Sequence values are read on the coordinator (same snapshot).
 *  4. A pool of `jobs` threads runs: pg_dump --schema-only --snapshot (one
 *     task), COPY of each table or page range (largest first), large
 *     objects (one task).  Each worker thread takes a connection that
 *     imported the snapshot (made on first use, then reused).
 *  5. The catalog item (rows, fingerprints, sequences) is written last, then
 *     the writer commits: packs, index, manifest.
 *
 * Any failure aborts the writer: no manifest, so no backup.
 */
#include "pg/logical/logical.h"

#include "common/sort.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "pg/logical/fingerprint.h"
#include "pg/logical/util.h"
#include "pg/tools.h"
#include "repo/repo.h"

#include <libpq/libpq-fs.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPY_FLUSH (1024 * 1024)
#define MAX_PARTS 4096

typedef struct DumpPart
{
	char *item;
	uint64_t from, to;			/* pages; to == 0: to the end */
	uint64_t rows, fp, bytes;
	int64_t ms;					/* how long its COPY took: a restore orders its loads by it */
} DumpPart;

typedef struct DumpRel
{
	uint32_t oid, nspoid;
	char relkind;
	char *schema, *name, *qname, *cols;
	char *owner;
	json_t *indexes;			/* index names (array) */
	json_t *referenced_by;		/* foreign keys of other tables pointing here (array) */
	json_t *dependents;			/* views and materialized views built on it (array) */
	json_t *partition_of;		/* {"schema","name"} of its partitioned parent, or NULL */
	json_t *publications;		/* [{"name","owner"}] it is a member of by name, or NULL */
	json_t *statistics;			/* [{"schema","name","owner"}] extended statistics on it, or NULL */
	int64_t npartitions;		/* a partitioned table's partitions (of any kind, foreign ones too); else -1 */
	char *extension;			/* an extension's configuration table (pg_extension_config_dump): its name; else NULL */
	char *filter;				/* its rows to back up: the extension's "WHERE ..." condition, or NULL for all */
	uint64_t size;
	bool populated;
	bool data;					/* its data is in the backup */
	int nparts;
	DumpPart *parts;
} DumpRel;

typedef struct DumpSeq
{
	char *schema, *name;
	char *owned_by;				/* the owning table's name (same schema), or NULL */
	char *last_value;
	bool is_called;
} DumpSeq;

/* What the whole backup shares (one database, or every one with --all). */
typedef struct Backup
{
	const PgLogicalBackupOpts *o;
	PgLogicalBackupResult *out;
	RepoWriter *w;				/* made once the first database is ready */
	PgTool pg_dump;				/* found on first use */
	int jobs;
} Backup;

/* One database being backed up. */
typedef struct Dump
{
	const PgLogicalBackupOpts *o;
	Backup *b;
	RepoWriter *w;				/* b->w, once made */
	const char *prefix;			/* item names start with it: "" or db/"name"/ */
	PgConnOpts conn;			/* the coordinator's connection */
	PGconn *coord;
	char *conninfo;				/* with password: worker connections */
	char *conninfo_nopw;		/* for pg_dump's argv */
	char *password;				/* PQpass of the coordinator, or NULL */
	char *snapshot;
	char *encoding;
	int server_version;
	uint64_t block_size;
	DumpRel *rels;
	size_t nrels;
	DumpSeq *seqs;
	size_t nseqs;
	bool want_lo;
	uint64_t lo_count, lo_bytes;
	json_t *meta;				/* this database's metadata being built */
	pthread_mutex_t mu;
	PGconn **idle;
	int nidle;
	PgProgress prog;
} Dump;

typedef struct PartTask
{
	Dump *d;
	DumpRel *rel;
	int part;
} PartTask;

/* ---- worker connections ---- */

static int
conn_get(Dump *d, PGconn **out)
{
	PGconn *c = NULL;
	Buf sql = PV_BUF_INIT;
	int rc;

	pthread_mutex_lock(&d->mu);
	if (d->nidle > 0)
		c = d->idle[--d->nidle];
	pthread_mutex_unlock(&d->mu);
	if (c != NULL)
	{
		*out = c;
		return PV_OK;
	}
	if ((rc = pgconn_connect(&c, &(PgConnOpts) {.conninfo = d->conninfo,
												.application_name = "pgvault backup worker"})) < 0)
		return pv_error_prefix(rc, "worker connection");
	buf_printf(&sql, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '%s'",
			   d->snapshot);
	if ((rc = pgconn_exec(c, buf_cstr(&sql))) < 0 ||
		(rc = pglogical_session_setup(c, d->encoding)) < 0)
	{
		pv_error_prefix(rc, "worker connection");
		PQfinish(c);
		c = NULL;
	}
	buf_free(&sql);
	*out = c;
	return rc;
}

static void
conn_put(Dump *d, PGconn *c, bool ok)
{
	if (!ok)
	{
		PQfinish(c);
		return;
	}
	pthread_mutex_lock(&d->mu);
	d->idle = pv_realloc(d->idle, sizeof(PGconn *) * (size_t) (d->nidle + 1));
	d->idle[d->nidle++] = c;
	pthread_mutex_unlock(&d->mu);
}

/* ---- tasks ---- */

/*
 * Run argv (pg_dump, pg_dumpall) and store its standard output as the
 * stream item name; bytes (may be NULL) counts what was read.
 */
static int
item_from_command(RepoWriter *w, const char *name, const json_t *meta, char *const argv[], const char *password,
				  atomic_uint_fast64_t *bytes)
{
	PgChild child = {.pid = 0, .out_fd = -1, .err_fd = -1};
	RepoWriterItem *it = NULL;
	unsigned char *buf = NULL;
	int rc;

	if ((rc = repo_writer_item_begin(&it, w, &(RepoItemSpec) {.name = name, .type = "stream", .meta = meta})) < 0)
		goto done;
	if ((rc = pglogical_child_start(&child, argv, password, true)) < 0)
		goto done;
	buf = pv_malloc(256 * 1024);
	for (;;)
	{
		ssize_t n = read(child.out_fd, buf, 256 * 1024);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "reading the output of '%s'", argv[0]);
			goto done;
		}
		if (n == 0)
			break;
		if (bytes != NULL)
			atomic_fetch_add(bytes, (uint64_t) n);
		if ((rc = repo_writer_item_write(it, buf, (size_t) n)) < 0)
			goto done;
	}
	if ((rc = pglogical_child_wait(&child)) < 0)
		goto done;
	rc = repo_writer_item_end(it, NULL);
	it = NULL;
done:
	if (child.pid > 0)
		pglogical_child_kill(&child);
	if (it != NULL)
		repo_writer_item_cancel(it);
	pv_free(buf);
	return rc;
}

static int
task_schema(void *arg)
{
	Dump *d = arg;
	const PgLogicalBackupOpts *o = d->o;
	char **argv = NULL;
	int argc = 0;
	json_t *meta = NULL;
	char *name = NULL;
	int rc;

#define ARG(s) (argv = pv_realloc(argv, sizeof(char *) * (size_t) (argc + 2)), argv[argc++] = (s))
	ARG(pv_strdup(d->b->pg_dump.path));
	ARG(pv_asprintf("--dbname=%s", d->conninfo_nopw));
	ARG(pv_strdup("--schema-only"));
	ARG(pv_strdup("--format=custom"));
	ARG(pv_strdup("--compress=0"));
	ARG(pv_asprintf("--snapshot=%s", d->snapshot));
	if (d->want_lo)
		ARG(pv_strdup("--blobs"));
	if (o->filter.strict_names)
		ARG(pv_strdup("--strict-names"));
	for (int i = 0; i < o->filter.tables.n; i++)
		ARG(pv_asprintf("--table=%s", o->filter.tables.v[i]));
	for (int i = 0; i < o->filter.exclude_tables.n; i++)
		ARG(pv_asprintf("--exclude-table=%s", o->filter.exclude_tables.v[i]));
	for (int i = 0; i < o->filter.schemas.n; i++)
		ARG(pv_asprintf("--schema=%s", o->filter.schemas.v[i]));
	for (int i = 0; i < o->filter.exclude_schemas.n; i++)
		ARG(pv_asprintf("--exclude-schema=%s", o->filter.exclude_schemas.v[i]));
	argv[argc] = NULL;
#undef ARG

	meta = json_pack("{s:s, s:s, s:s}", "kind", "schema", "format", "custom", "tool",
					 d->b->pg_dump.version_text ? d->b->pg_dump.version_text : "");
	name = pv_asprintf("%sschema", d->prefix);
	rc = item_from_command(d->w, name, meta, argv, d->password, &d->prog.bytes);
	if (rc == PV_OK)
		atomic_fetch_add(&d->prog.items_done, 1);
	else
		pv_error_prefix(rc, "schema (pg_dump --schema-only)");
	for (int i = 0; i < argc; i++)
		pv_free(argv[i]);
	pv_free(argv);
	pv_free(name);
	json_decref(meta);
	return rc;
}

/* COPY one table (or page range) into its item. */
static int
task_part(void *arg)
{
	PartTask *t = arg;
	Dump *d = t->d;
	DumpRel *rel = t->rel;
	DumpPart *p = &rel->parts[t->part];
	PGconn *c = NULL;
	PGresult *r = NULL;
	RepoWriterItem *it = NULL;
	json_t *meta = NULL;
	Buf sql = PV_BUF_INIT, out = PV_BUF_INIT;
	uint64_t rows = 0, fp = 0, bytes = 0, last_rows = 0;
	int64_t t0 = pglogical_now_ms();
	bool conn_ok = false;
	int rc;

	if ((rc = conn_get(d, &c)) < 0)
		goto done;
	if (rel->filter != NULL)
		/* as pg_dump: only the rows the extension's condition names (the others CREATE EXTENSION makes) */
		buf_printf(&sql, "COPY (SELECT %s FROM %s %s) TO STDOUT", rel->cols, rel->qname, rel->filter);
	else if (rel->nparts == 1)
		buf_printf(&sql, rel->cols[0] ? "COPY %s (%s) TO STDOUT" : "COPY %s %s TO STDOUT", rel->qname, rel->cols);
	else
	{
		buf_printf(&sql, "COPY (SELECT %s FROM ONLY %s WHERE ", rel->cols, rel->qname);
		if (p->from > 0)
			buf_printf(&sql, "ctid OPERATOR(pg_catalog.>=) '(%llu,0)'::pg_catalog.tid", (unsigned long long) p->from);
		if (p->from > 0 && p->to > 0)
			buf_append_str(&sql, " AND ");
		if (p->to > 0)
			buf_printf(&sql, "ctid OPERATOR(pg_catalog.<) '(%llu,0)'::pg_catalog.tid", (unsigned long long) p->to);
		buf_append_str(&sql, ") TO STDOUT");
	}
	meta = json_pack("{s:s, s:s, s:s, s:i, s:i}", "kind", "table-data", "schema", rel->schema,
					 "table", rel->name, "part", t->part, "parts", rel->nparts);
	if (rel->nparts > 1)
		json_object_set_new(meta, "pages", json_pack("[I, o]", (json_int_t) p->from,
													 p->to ? json_integer((json_int_t) p->to) : json_null()));
	if ((rc = repo_writer_item_begin(&it, d->w, &(RepoItemSpec) {.name = p->item, .type = "stream",
																  .meta = meta})) < 0)
		goto done;
	r = PQexec(c, buf_cstr(&sql));
	if (PQresultStatus(r) != PGRES_COPY_OUT)
	{
		char line[512];
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

		rc = pv_error_set(PV_EPG, "COPY failed: %s", msg ? msg : pgconn_error_line(c, line, sizeof(line)));
		goto done;
	}
	PQclear(r);
	r = NULL;
	for (;;)
	{
		char *row = NULL;
		int n = PQgetCopyData(c, &row, 0);

		if (n == -1)
			break;
		if (n < 0)
		{
			char line[512];

			rc = pv_error_set(PV_EPG, "COPY failed: %s", pgconn_error_line(c, line, sizeof(line)));
			goto done;
		}
		fp = pgfp_add_line(fp, row, (size_t) n);
		rows++;
		buf_append(&out, row, (size_t) n);
		PQfreemem(row);
		if (out.len >= COPY_FLUSH)
		{
			bytes += out.len;
			atomic_fetch_add(&d->prog.bytes, out.len);
			atomic_fetch_add(&d->prog.rows, rows - last_rows);
			last_rows = rows;
			if ((rc = repo_writer_item_write(it, out.data, out.len)) < 0)
				goto done;
			buf_reset(&out);
		}
	}
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		char line[512];
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

		rc = pv_error_set(PV_EPG, "COPY failed: %s", msg ? msg : pgconn_error_line(c, line, sizeof(line)));
		goto done;
	}
	PQclear(r);
	r = PQgetResult(c);			/* NULL: the command is over */
	bytes += out.len;
	atomic_fetch_add(&d->prog.bytes, out.len);
	atomic_fetch_add(&d->prog.rows, rows - last_rows);
	if (out.len > 0 && (rc = repo_writer_item_write(it, out.data, out.len)) < 0)
		goto done;
	rc = repo_writer_item_end(it, NULL);
	it = NULL;
	if (rc < 0)
		goto done;
	p->rows = rows;
	p->fp = fp;
	p->bytes = bytes;
	p->ms = pglogical_now_ms() - t0;
	conn_ok = true;
	atomic_fetch_add(&d->prog.items_done, 1);
	atomic_fetch_add(&d->prog.weight_done, rel->nparts > 0 ? rel->size / (uint64_t) rel->nparts : 0);
done:
	PQclear(r);
	if (it != NULL)
		repo_writer_item_cancel(it);
	if (c != NULL)
		conn_put(d, c, conn_ok);
	if (rc < 0)
	{
		if (rel->nparts > 1)
			pv_error_prefix(rc, "table %s part %d of %d", rel->qname, t->part + 1, rel->nparts);
		else
			pv_error_prefix(rc, "table %s", rel->qname);
	}
	json_decref(meta);
	buf_free(&sql);
	buf_free(&out);
	return rc;
}

/* Every large object, framed "<oid> <length> <metadata JSON>\n<bytes>". */
static int
task_large_objects(void *arg)
{
	Dump *d = arg;
	PGconn *c = NULL;
	PGresult *r = NULL;
	RepoWriterItem *it = NULL;
	json_t *meta = json_pack("{s:s}", "kind", "large-objects");
	char *buf = pv_malloc(256 * 1024);
	char *name = pv_asprintf("%slarge-objects", d->prefix);
	bool conn_ok = false;
	int rc;

	if ((rc = conn_get(d, &c)) < 0)
		goto done;
	/* pg_dump --schema-only leaves large objects' owner, comment and grants out: keep them here. */
	if ((rc = pgconn_query(&r, c, 2,
						   "SELECT m.oid, pg_catalog.json_build_object('owner', pg_catalog.pg_get_userbyid(m.lomowner),"
						   " 'comment', pg_catalog.obj_description(m.oid, 'pg_largeobject'),"
						   " 'acl', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('grantee',"
						   "   CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'"
						   "   ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,"
						   "   'privilege', a.privilege_type, 'grantable', a.is_grantable))"
						   "   FROM pg_catalog.aclexplode(m.lomacl) a))::text"
						   " FROM pg_catalog.pg_largeobject_metadata m ORDER BY m.oid", 0, NULL)) < 0)
		goto done;
	if (PQntuples(r) == 0)
	{
		conn_ok = true;
		goto done;
	}
	if ((rc = repo_writer_item_begin(&it, d->w, &(RepoItemSpec) {.name = name, .type = "stream",
																  .meta = meta})) < 0)
		goto done;
	for (int i = 0; i < PQntuples(r); i++)
	{
		Oid oid = (Oid) strtoul(PQgetvalue(r, i, 0), NULL, 10);
		int fd = lo_open(c, oid, INV_READ);
		pg_int64 len, done_len = 0;
		char *hdr;
		int hl;

		if (fd < 0 || (len = lo_lseek64(c, fd, 0, SEEK_END)) < 0 || lo_lseek64(c, fd, 0, SEEK_SET) < 0)
		{
			char line[512];

			rc = pv_error_set(PV_EPG, "large object %u: %s", oid, pgconn_error_line(c, line, sizeof(line)));
			goto done;
		}
		/* json_build_object's text has no newline: the header stays one line. */
		hdr = pv_asprintf("%u %lld %s\n", oid, (long long) len, PQgetvalue(r, i, 1));
		hl = (int) strlen(hdr);
		rc = repo_writer_item_write(it, hdr, (size_t) hl);
		pv_free(hdr);
		if (rc < 0)
			goto done;
		while (done_len < len)
		{
			size_t want = (size_t) ((len - done_len) < 256 * 1024 ? (len - done_len) : 256 * 1024);
			int n = lo_read(c, fd, buf, want);

			if (n <= 0)
			{
				char line[512];

				rc = pv_error_set(PV_EPG, "large object %u: short read: %s", oid,
								  pgconn_error_line(c, line, sizeof(line)));
				goto done;
			}
			if ((rc = repo_writer_item_write(it, buf, (size_t) n)) < 0)
				goto done;
			done_len += n;
			atomic_fetch_add(&d->prog.bytes, (uint64_t) n);
		}
		lo_close(c, fd);
		d->lo_count++;
		d->lo_bytes += (uint64_t) len;
	}
	rc = repo_writer_item_end(it, NULL);
	it = NULL;
	conn_ok = rc == PV_OK;
done:
	PQclear(r);
	if (it != NULL)
		repo_writer_item_cancel(it);
	if (c != NULL)
		conn_put(d, c, conn_ok);
	if (rc < 0)
		pv_error_prefix(rc, "large objects");
	atomic_fetch_add(&d->prog.items_done, 1);
	json_decref(meta);
	pv_free(buf);
	pv_free(name);
	return rc;
}

/* ---- the coordinator's steps ---- */

/*
 * What `pg_dump --create` would add and a schema-only dump leaves out: the
 * database's settings (ALTER DATABASE / ALTER ROLE ... IN DATABASE ... SET),
 * grants, comment and connection limit; restore applies them to a database
 * it creates.
 */
static int
database_properties(Dump *d)
{
	PGresult *r = NULL;
	json_t *props = NULL, *acl = NULL, *settings = NULL;
	int rc;

	if ((rc = pgconn_query(&r, d->coord, 4,
						   "SELECT d.datconnlimit::text, pg_catalog.shobj_description(d.oid, 'pg_database'),"
						   " CASE WHEN d.datacl IS NULL THEN NULL ELSE (SELECT pg_catalog.json_agg("
						   "   pg_catalog.json_build_object('grantee', CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0"
						   "   THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,"
						   "   'privilege', a.privilege_type, 'grantable', a.is_grantable))"
						   "   FROM pg_catalog.aclexplode(d.datacl) a)::text END,"
						   " (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('role',"
						   "   CASE WHEN s.setrole OPERATOR(pg_catalog.=) 0 THEN NULL"
						   "   ELSE pg_catalog.pg_get_userbyid(s.setrole) END, 'config', s.setconfig) ORDER BY s.setrole)"
						   "   FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase OPERATOR(pg_catalog.=) d.oid)::text"
						   " FROM pg_catalog.pg_database d"
						   " WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()", 0, NULL)) < 0)
		return pv_error_prefix(rc, "reading the database's properties");
	if (PQntuples(r) != 1)
	{
		PQclear(r);
		return pv_error_set(PV_EPG, "reading the database's properties: database not found in pg_database");
	}
	if (!PQgetisnull(r, 0, 2) &&
		(rc = pv_json_parse(&acl, PQgetvalue(r, 0, 2), strlen(PQgetvalue(r, 0, 2)), "database grants")) < 0)
		goto done;
	if (!PQgetisnull(r, 0, 3) &&
		(rc = pv_json_parse(&settings, PQgetvalue(r, 0, 3), strlen(PQgetvalue(r, 0, 3)), "database settings")) < 0)
		goto done;
	props = json_pack("{s:I, s:o, s:o, s:o}", "connlimit", (json_int_t) strtoll(PQgetvalue(r, 0, 0), NULL, 10),
					  "comment", PQgetisnull(r, 0, 1) ? json_null() : json_string(PQgetvalue(r, 0, 1)),
					  "acl", acl ? acl : json_null(), "settings", settings ? settings : json_array());
	acl = settings = NULL;
	if (props == NULL)
	{
		rc = pv_error_set(PV_ERROR, "cannot build the database's properties");
		goto done;
	}
	json_object_set_new(d->meta, "properties", props);
	PQclear(r);
	r = NULL;
	/* the default search_path's schemas: what an unqualified --table pattern means at restore */
	if ((rc = pgconn_exec(d->coord, "RESET search_path")) < 0 ||
		(rc = pgconn_query(&r, d->coord, 1, "SELECT pg_catalog.array_to_json(pg_catalog.current_schemas(false))::text",
						   0, NULL)) < 0 ||
		(rc = pgconn_exec(d->coord, "SELECT pg_catalog.set_config('search_path', '', false)")) < 0)
		goto done;
	if (PQntuples(r) == 1)
		json_object_set_new(d->meta, "search_path", json_loads(PQgetvalue(r, 0, 0), 0, NULL));
	PQclear(r);
	r = NULL;
	/*
	 * The roles the database's objects name (owners, grants, policies, user
	 * mappings, default privileges: pg_shdepend), its owner and those with
	 * settings in it: what a restore into a cluster without them (a drill's
	 * scratch server) must create first (PgLogicalRestoreOpts.create_missing_roles).
	 */
	if ((rc = pgconn_query(&r, d->coord, 1,
						   "SELECT pg_catalog.json_agg(DISTINCT a.rolname ORDER BY a.rolname)::text"
						   " FROM pg_catalog.pg_roles a, pg_catalog.pg_database db"
						   " WHERE db.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"
						   " AND a.rolname OPERATOR(pg_catalog.!~) '^pg_' AND (a.oid OPERATOR(pg_catalog.=) db.datdba"
						   "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend sd"
						   "   WHERE sd.dbid OPERATOR(pg_catalog.=) db.oid AND sd.refobjid OPERATOR(pg_catalog.=) a.oid"
						   "   AND sd.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass)"
						   "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting rs"
						   "   WHERE rs.setdatabase OPERATOR(pg_catalog.=) db.oid AND rs.setrole OPERATOR(pg_catalog.=) a.oid))",
						   0, NULL)) < 0)
		goto done;
	json_object_set_new(d->meta, "roles", PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
						? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : json_array());
	rc = PV_OK;
done:
	json_decref(acl);
	json_decref(settings);
	PQclear(r);
	return rc;
}

static int
snapshot_begin(Dump *d)
{
	PGresult *r = NULL;
	const char *sql;
	int rc;

	d->server_version = PQserverVersion(d->coord);
	if (d->server_version < 120000)
		return pv_error_set(PV_EUSAGE, "logical backups need PostgreSQL 12 or later (server is %d)",
							d->server_version);
	if ((rc = pgconn_exec(d->coord, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")) < 0)
		return rc;
	sql = d->server_version >= 150000
		? "SELECT pg_catalog.pg_export_snapshot(),"
		" (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()"
		"  ELSE pg_catalog.pg_current_wal_lsn() END)::text,"
		" pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		" pg_catalog.txid_current_snapshot()::text, d.datname, pg_catalog.pg_encoding_to_char(d.encoding),"
		" d.datcollate, d.datctype, pg_catalog.pg_get_userbyid(d.datdba),"
		" pg_catalog.current_setting('server_version'), pg_catalog.current_setting('block_size'),"
		" d.datlocprovider::text, d.daticulocale"
		" FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"
		: "SELECT pg_catalog.pg_export_snapshot(),"
		" (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()"
		"  ELSE pg_catalog.pg_current_wal_lsn() END)::text,"
		" pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		" pg_catalog.txid_current_snapshot()::text, d.datname, pg_catalog.pg_encoding_to_char(d.encoding),"
		" d.datcollate, d.datctype, pg_catalog.pg_get_userbyid(d.datdba),"
		" pg_catalog.current_setting('server_version'), pg_catalog.current_setting('block_size'),"
		" 'c'::text, NULL::text"
		" FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()";
	if ((rc = pgconn_query(&r, d->coord, 13, sql, 0, NULL)) < 0)
		return pv_error_prefix(rc, "exporting the snapshot");
	if (PQntuples(r) != 1)
	{
		PQclear(r);
		return pv_error_set(PV_EPG, "exporting the snapshot: database not found in pg_database");
	}
	d->snapshot = pv_strdup(PQgetvalue(r, 0, 0));
	for (const char *p = d->snapshot; *p; p++)
		if (!isxdigit((unsigned char) *p) && *p != '-')
		{
			PQclear(r);
			return pv_error_set(PV_EPG, "unexpected snapshot name '%s'", d->snapshot);
		}
	d->encoding = pv_strdup(PQgetvalue(r, 0, 5));
	d->block_size = strtoull(PQgetvalue(r, 0, 10), NULL, 10);
	if (d->block_size == 0)
		d->block_size = 8192;
	d->meta = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:o,"
						" s:{s:s, s:s, s:s, s:s}}",
						"format", "pgvault-logical", "version", 1,
						"database", PQgetvalue(r, 0, 4), "encoding", d->encoding,
						"collate", PQgetvalue(r, 0, 6), "ctype", PQgetvalue(r, 0, 7),
						"owner", PQgetvalue(r, 0, 8), "server_version", PQgetvalue(r, 0, 9),
						"server_version_num", d->server_version,
						"locale_provider", PQgetvalue(r, 0, 11),
						"icu_locale", PQgetisnull(r, 0, 12) ? json_null() : json_string(PQgetvalue(r, 0, 12)),
						"snapshot", "id", d->snapshot, "lsn", PQgetvalue(r, 0, 1),
						"time", PQgetvalue(r, 0, 2), "txid_snapshot", PQgetvalue(r, 0, 3));
	PQclear(r);
	if (d->meta == NULL)
		return pv_error_set(PV_ERROR, "cannot build the backup's metadata");
	if ((rc = database_properties(d)) < 0)
		return rc;
	return pglogical_session_setup(d->coord, d->encoding);
}

static void
rel_free(DumpRel *r)
{
	pv_free(r->schema);
	pv_free(r->name);
	pv_free(r->qname);
	pv_free(r->cols);
	pv_free(r->owner);
	json_decref(r->indexes);
	json_decref(r->referenced_by);
	json_decref(r->dependents);
	json_decref(r->partition_of);
	json_decref(r->publications);
	json_decref(r->statistics);
	pv_free(r->extension);
	pv_free(r->filter);
	for (int i = 0; i < r->nparts; i++)
		pv_free(r->parts[i].item);
	pv_free(r->parts);
}

/* Decide the parts of one table with data. */
static void
rel_plan_parts(Dump *d, DumpRel *rel)
{
	uint64_t split = d->o->split_size ? d->o->split_size : PGLOGICAL_SPLIT_DEFAULT;
	uint64_t pages = rel->size / d->block_size;
	int jobs = d->o->jobs > 0 ? d->o->jobs : 2;
	uint64_t n = 1;

	/* TID range scans (PostgreSQL 14) make a page range cost only its pages. */
	if (d->server_version >= 140000 && rel->relkind == 'r' && rel->extension == NULL && rel->size > split &&
		pages >= 2)
	{
		n = (rel->size + split - 1) / split;
		if (n < (uint64_t) jobs)
			n = (uint64_t) jobs;
		if (n > pages)
			n = pages;
		if (n > MAX_PARTS)
			n = MAX_PARTS;
	}
	rel->nparts = (int) n;
	rel->parts = pv_calloc(n, sizeof(DumpPart));
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t per = (pages + n - 1) / n;

		rel->parts[i].item = pv_asprintf("%sdata/%s/%llu", d->prefix, rel->qname, (unsigned long long) i);
		rel->parts[i].from = n > 1 ? i * per : 0;
		rel->parts[i].to = (n > 1 && i + 1 < n) ? (i + 1) * per : 0;
	}
}

static int
rel_cmp_size(const void *a, const void *b)
{
	const DumpRel *x = a, *y = b;

	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->oid < y->oid ? -1 : x->oid > y->oid;
}

/* Choose the relations (filters), lock them, plan the parts, read sequences. */
static int
relations_load(Dump *d)
{
	const PgLogicalBackupOpts *o = d->o;
	PgFilterSel sel;
	PGresult *r = NULL;
	Buf lock = PV_BUF_INIT;
	bool have_sel = false;
	int nlock = 0;
	int rc;

	if ((rc = pgfilter_resolve(&sel, d->coord, &o->filter)) < 0)
		goto done;
	have_sel = true;
	d->want_lo = sel.everything && !o->schema_only;
	if ((rc = pgconn_query(&r, d->coord, 20,
						   "SELECT c.oid, c.relnamespace, n.nspname, c.relname, c.relkind::text,"
						   " CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r','m']::\"char\"[])"
						   "  THEN pg_catalog.pg_relation_size(c.oid) ELSE 0 END,"
						   " c.relispopulated::text,"
						   " (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)"
						   "   FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid"
						   "   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped"
						   "   AND a.attgenerated OPERATOR(pg_catalog.=) ''),"
						   " (SELECT d.refobjid FROM pg_catalog.pg_depend d"
						   "   WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						   "   AND d.objid OPERATOR(pg_catalog.=) c.oid"
						   "   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						   "   AND d.deptype OPERATOR(pg_catalog.=) ANY (ARRAY['a','i']::\"char\"[])"
						   "   AND d.refobjsubid OPERATOR(pg_catalog.>) 0 LIMIT 1),"
						   " EXISTS (SELECT 1 FROM pg_catalog.pg_depend e"
						   "   WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						   "   AND e.objid OPERATOR(pg_catalog.=) c.oid AND e.deptype OPERATOR(pg_catalog.=) 'e')::text,"
						   " pg_catalog.pg_get_userbyid(c.relowner),"
						   " (SELECT pg_catalog.json_agg(ci.relname::text ORDER BY ci.relname) FROM pg_catalog.pg_index i"
						   "   JOIN pg_catalog.pg_class ci ON ci.oid OPERATOR(pg_catalog.=) i.indexrelid"
						   "   WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid)::text,"
						   " (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('schema', n2.nspname, 'table', c2.relname,"
						   "   'name', co.conname, 'owner', pg_catalog.pg_get_userbyid(c2.relowner))"
						   "   ORDER BY n2.nspname, c2.relname, co.conname)"
						   "   FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c2 ON c2.oid OPERATOR(pg_catalog.=) co.conrelid"
						   "   JOIN pg_catalog.pg_namespace n2 ON n2.oid OPERATOR(pg_catalog.=) c2.relnamespace"
						   "   WHERE co.contype OPERATOR(pg_catalog.=) 'f' AND co.confrelid OPERATOR(pg_catalog.=) c.oid"
						   "   AND co.conrelid OPERATOR(pg_catalog.<>) c.oid AND co.conparentid OPERATOR(pg_catalog.=) 0)::text,"
						   " (SELECT o.relname FROM pg_catalog.pg_depend d2 JOIN pg_catalog.pg_class o"
						   "   ON o.oid OPERATOR(pg_catalog.=) d2.refobjid"
						   "   WHERE d2.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						   "   AND d2.objid OPERATOR(pg_catalog.=) c.oid"
						   "   AND d2.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						   "   AND d2.deptype OPERATOR(pg_catalog.=) ANY (ARRAY['a','i']::\"char\"[])"
						   "   AND d2.refobjsubid OPERATOR(pg_catalog.>) 0 LIMIT 1),"
						   /* the views and materialized views built on a table, directly or not */
						   " CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r','p']::\"char\"[]) THEN"
						   " (WITH RECURSIVE dep(oid) AS ("
						   "   SELECT rw.ev_class FROM pg_catalog.pg_depend d3 JOIN pg_catalog.pg_rewrite rw"
						   "     ON rw.oid OPERATOR(pg_catalog.=) d3.objid"
						   "   WHERE d3.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
						   "   AND d3.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						   "   AND d3.refobjid OPERATOR(pg_catalog.=) c.oid AND rw.ev_class OPERATOR(pg_catalog.<>) c.oid"
						   "   UNION"
						   "   SELECT rw.ev_class FROM dep JOIN pg_catalog.pg_depend d3"
						   "     ON d3.refobjid OPERATOR(pg_catalog.=) dep.oid"
						   "     AND d3.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
						   "     AND d3.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						   "   JOIN pg_catalog.pg_rewrite rw ON rw.oid OPERATOR(pg_catalog.=) d3.objid"
						   "   WHERE rw.ev_class OPERATOR(pg_catalog.<>) dep.oid)"
						   "  SELECT pg_catalog.json_agg(pg_catalog.json_build_object('schema', vn.nspname, 'name', v.relname,"
						   "   'kind', v.relkind::text, 'owner', pg_catalog.pg_get_userbyid(v.relowner),"
						   "   'indexes', (SELECT COALESCE(pg_catalog.json_agg(vi.relname::text), '[]')"
						   "     FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class vi ON vi.oid OPERATOR(pg_catalog.=) x.indexrelid"
						   "     WHERE x.indrelid OPERATOR(pg_catalog.=) v.oid)) ORDER BY v.oid)"
						   "  FROM dep JOIN pg_catalog.pg_class v ON v.oid OPERATOR(pg_catalog.=) dep.oid"
						   "  JOIN pg_catalog.pg_namespace vn ON vn.oid OPERATOR(pg_catalog.=) v.relnamespace)::text END,"
						   /* what a --table restore must bring along: partitions, publication memberships, statistics */
						   " CASE WHEN c.relispartition THEN (SELECT pg_catalog.json_build_object('schema', pn.nspname,"
						   "   'name', pc.relname) FROM pg_catalog.pg_inherits ih"
						   "   JOIN pg_catalog.pg_class pc ON pc.oid OPERATOR(pg_catalog.=) ih.inhparent"
						   "   JOIN pg_catalog.pg_namespace pn ON pn.oid OPERATOR(pg_catalog.=) pc.relnamespace"
						   "   WHERE ih.inhrelid OPERATOR(pg_catalog.=) c.oid LIMIT 1)::text END,"
						   " (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('name', pb.pubname,"
						   "   'owner', pg_catalog.pg_get_userbyid(pb.pubowner)) ORDER BY pb.pubname)"
						   "   FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication pb"
						   "   ON pb.oid OPERATOR(pg_catalog.=) pr.prpubid WHERE pr.prrelid OPERATOR(pg_catalog.=) c.oid)::text,"
						   " (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('schema', sn.nspname, 'name', se.stxname,"
						   "   'owner', pg_catalog.pg_get_userbyid(se.stxowner)) ORDER BY sn.nspname, se.stxname)"
						   "   FROM pg_catalog.pg_statistic_ext se JOIN pg_catalog.pg_namespace sn"
						   "   ON sn.oid OPERATOR(pg_catalog.=) se.stxnamespace WHERE se.stxrelid OPERATOR(pg_catalog.=) c.oid)::text,"
						   " CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_inherits ih2"
						   "   WHERE ih2.inhparent OPERATOR(pg_catalog.=) c.oid)::text END,"
						   /* an extension's configuration table or sequence (pg_extension_config_dump) */
						   " (SELECT pg_catalog.json_build_object('extension', x.extname, 'filter',"
						   "   x.extcondition[pg_catalog.array_position(x.extconfig, c.oid)])::text"
						   "   FROM pg_catalog.pg_extension x WHERE c.oid OPERATOR(pg_catalog.=) ANY (x.extconfig) LIMIT 1)"
						   " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
						   "   ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
						   " WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r','p','S','m']::\"char\"[])"
						   " AND c.relpersistence OPERATOR(pg_catalog.<>) 't'"
						   " AND n.nspname OPERATOR(pg_catalog.!~) '^pg_'"
						   " AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'"
						   " ORDER BY c.oid", 0, NULL)) < 0)
		goto done;
	d->rels = pv_calloc((size_t) PQntuples(r) + 1, sizeof(DumpRel));
	for (int i = 0; i < PQntuples(r); i++)
	{
		uint32_t oid = (uint32_t) strtoul(PQgetvalue(r, i, 0), NULL, 10);
		uint32_t nsp = (uint32_t) strtoul(PQgetvalue(r, i, 1), NULL, 10);
		char kind = PQgetvalue(r, i, 4)[0];
		bool ext_member = strcmp(PQgetvalue(r, i, 9), "true") == 0;
		bool selected = pgfilter_sel_relation(&sel, oid, nsp);
		bool data = pgfilter_sel_data(&sel, oid, nsp);
		json_t *extcfg = PQgetisnull(r, i, 19) ? NULL : json_loads(PQgetvalue(r, i, 19), 0, NULL);
		const char *ext_filter = json_string_value(json_object_get(extcfg, "filter"));

		if (extcfg != NULL)
		{
			/*
			 * As pg_dump: CREATE EXTENSION makes the table, its rows that the
			 * extension's condition names are data (only those, only of
			 * tables and sequences, and never with --schema-only), chosen by
			 * the filters as other tables' data, and -N wins even over -t.
			 */
			selected = data = data && !pgfilter_oidset_has(&sel.exclude_schemas, nsp) && !o->schema_only &&
				(kind == 'r' || kind == 'S');
			if (!selected)
			{
				json_decref(extcfg);
				continue;
			}
		}
		else if (ext_member)
			continue;
		if (kind == 'S' && !PQgetisnull(r, i, 8))
		{
			/* An owned sequence follows its table, as in pg_dump. */
			uint32_t owner = (uint32_t) strtoul(PQgetvalue(r, i, 8), NULL, 10);

			if (sel.have_tables && pgfilter_oidset_has(&sel.tables, owner) &&
				!pgfilter_oidset_has(&sel.exclude_tables, oid))
			{
				selected = true;
				data = !pgfilter_oidset_has(&sel.exclude_data, oid);
			}
		}
		if (!selected)
		{
			json_decref(extcfg);
			continue;
		}
		if (kind == 'S')
		{
			if (data && !o->schema_only)
			{
				d->seqs = pv_realloc(d->seqs, sizeof(DumpSeq) * (d->nseqs + 1));
				d->seqs[d->nseqs++] = (DumpSeq) {.schema = pv_strdup(PQgetvalue(r, i, 2)),
												 .name = pv_strdup(PQgetvalue(r, i, 3)),
												 .owned_by = PQgetisnull(r, i, 13) ? NULL
												 : pv_strdup(PQgetvalue(r, i, 13))};
			}
			json_decref(extcfg);
			continue;
		}
		{
			DumpRel *rel = &d->rels[d->nrels++];

			rel->oid = oid;
			rel->nspoid = nsp;
			rel->relkind = kind;
			rel->schema = pv_strdup(PQgetvalue(r, i, 2));
			rel->name = pv_strdup(PQgetvalue(r, i, 3));
			rel->qname = pglogical_qualify(rel->schema, rel->name);
			rel->cols = pv_strdup(PQgetvalue(r, i, 7));
			rel->owner = pv_strdup(PQgetvalue(r, i, 10));
			rel->indexes = PQgetisnull(r, i, 11) ? NULL : json_loads(PQgetvalue(r, i, 11), 0, NULL);
			rel->referenced_by = PQgetisnull(r, i, 12) ? NULL : json_loads(PQgetvalue(r, i, 12), 0, NULL);
			rel->dependents = PQgetisnull(r, i, 14) ? NULL : json_loads(PQgetvalue(r, i, 14), 0, NULL);
			rel->partition_of = PQgetisnull(r, i, 15) ? NULL : json_loads(PQgetvalue(r, i, 15), 0, NULL);
			rel->publications = PQgetisnull(r, i, 16) ? NULL : json_loads(PQgetvalue(r, i, 16), 0, NULL);
			rel->statistics = PQgetisnull(r, i, 17) ? NULL : json_loads(PQgetvalue(r, i, 17), 0, NULL);
			rel->npartitions = PQgetisnull(r, i, 18) ? -1 : strtoll(PQgetvalue(r, i, 18), NULL, 10);
			if (extcfg != NULL)
			{
				rel->extension = pv_strdup(json_string_value(json_object_get(extcfg, "extension")));
				rel->filter = ext_filter != NULL && ext_filter[0] ? pv_strdup(ext_filter) : NULL;
				json_decref(extcfg);
			}
			rel->size = strtoull(PQgetvalue(r, i, 5), NULL, 10);
			rel->populated = strcmp(PQgetvalue(r, i, 6), "true") == 0;
			rel->data = data && !o->schema_only && kind == 'r';
			if (kind == 'm')
				rel->data = data && !o->schema_only;
			if (kind == 'r' || kind == 'p')
			{
				buf_append_str(&lock, nlock ? ", " : "LOCK TABLE ");
				buf_append_str(&lock, rel->qname);
				nlock++;
			}
			if (rel->relkind == 'r' && rel->data)
				rel_plan_parts(d, rel);
		}
	}
	PQclear(r);
	r = NULL;
	if (nlock > 0)
	{
		buf_append_str(&lock, " IN ACCESS SHARE MODE");
		if ((rc = pgconn_exec(d->coord, buf_cstr(&lock))) < 0)
		{
			pv_error_prefix(rc, "locking the tables");
			goto done;
		}
	}
	pv_qsort(d->rels, d->nrels, sizeof(DumpRel), rel_cmp_size);
	rc = PV_OK;
done:
	PQclear(r);
	buf_free(&lock);
	if (have_sel)
		pgfilter_sel_clear(&sel);
	return rc;
}

static int
sequences_read(Dump *d)
{
	const size_t batch = 200;

	for (size_t i = 0; i < d->nseqs; i += batch)
	{
		Buf sql = PV_BUF_INIT;
		PGresult *r = NULL;
		int rc;

		for (size_t j = i; j < d->nseqs && j < i + batch; j++)
		{
			char *q = pglogical_qualify(d->seqs[j].schema, d->seqs[j].name);

			buf_printf(&sql, "%sSELECT %zu, last_value::text, is_called::text FROM %s", j > i ? " UNION ALL " : "",
					   j, q);
			pv_free(q);
		}
		rc = pgconn_query(&r, d->coord, 3, buf_cstr(&sql), 0, NULL);
		buf_free(&sql);
		if (rc < 0)
			return pv_error_prefix(rc, "reading sequences");
		for (int k = 0; k < PQntuples(r); k++)
		{
			size_t j = strtoull(PQgetvalue(r, k, 0), NULL, 10);

			if (j < d->nseqs)
			{
				d->seqs[j].last_value = pv_strdup(PQgetvalue(r, k, 1));
				d->seqs[j].is_called = strcmp(PQgetvalue(r, k, 2), "true") == 0;
			}
		}
		PQclear(r);
	}
	return PV_OK;
}

static int
catalog_write(Dump *d, PgLogicalBackupResult *res)
{
	RepoWriterItem *it = NULL;
	json_t *meta = json_pack("{s:s}", "kind", "catalog");
	Buf b = PV_BUF_INIT;
	char *name = NULL;
	int rc;

	for (size_t i = 0; i < d->nrels; i++)
	{
		DumpRel *rel = &d->rels[i];
		json_t *e;
		char hex[17];

		if (rel->relkind == 'm')
		{
			e = json_pack("{s:s, s:s, s:s, s:b, s:b}", "kind", "matview", "schema", rel->schema,
						  "name", rel->name, "populated", rel->populated, "data", rel->data);
		}
		else
		{
			char rk[2] = {rel->relkind, 0};
			json_t *parts = json_array();
			uint64_t rows = 0, fp = 0, bytes = 0;

			for (int k = 0; k < rel->nparts; k++)
			{
				DumpPart *p = &rel->parts[k];
				json_t *pj;

				rows += p->rows;
				fp += p->fp;
				bytes += p->bytes;
				pgfp_format(hex, p->fp);
				pj = json_pack("{s:s, s:I, s:s, s:I, s:I}", "item", p->item, "rows", (json_int_t) p->rows,
							   "fingerprint", hex, "bytes", (json_int_t) p->bytes, "copy_ms", (json_int_t) p->ms);
				if (rel->nparts > 1)
					json_object_set_new(pj, "pages", json_pack("[I, o]", (json_int_t) p->from,
																p->to ? json_integer((json_int_t) p->to) : json_null()));
				json_array_append_new(parts, pj);
			}
			pgfp_format(hex, fp);
			e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:o}", "kind", "table", "schema", rel->schema,
						  "name", rel->name, "relkind", rk, "columns", rel->cols, "size", (json_int_t) rel->size,
						  "data", rel->data && rel->relkind == 'r', "parts", parts);
			/* what a table-level restore needs to find the table's entries in the schema archive */
			json_object_set_new(e, "owner", json_string(rel->owner));
			json_object_set_new(e, "indexes", rel->indexes ? json_incref(rel->indexes) : json_array());
			if (rel->referenced_by != NULL)
				json_object_set_new(e, "referenced_by", json_incref(rel->referenced_by));
			if (rel->dependents != NULL)
				json_object_set_new(e, "dependents", json_incref(rel->dependents));
			if (rel->partition_of != NULL)
				json_object_set_new(e, "partition_of", json_incref(rel->partition_of));
			if (rel->publications != NULL)
				json_object_set_new(e, "publications", json_incref(rel->publications));
			if (rel->statistics != NULL)
				json_object_set_new(e, "statistics", json_incref(rel->statistics));
			if (rel->npartitions >= 0)
				json_object_set_new(e, "partitions", json_integer((json_int_t) rel->npartitions));
			if (rel->extension != NULL)
				json_object_set_new(e, "extension", json_string(rel->extension));
			if (rel->filter != NULL)
				json_object_set_new(e, "filter", json_string(rel->filter));
			if (rel->data && rel->relkind == 'r')
			{
				json_object_set_new(e, "rows", json_integer((json_int_t) rows));
				json_object_set_new(e, "fingerprint", json_string(hex));
				json_object_set_new(e, "bytes", json_integer((json_int_t) bytes));
				res->tables++;
				res->parts += (uint64_t) rel->nparts;
				res->rows += rows;
				res->data_bytes += bytes;
			}
		}
		pv_json_to_buf(&b, e, false);
		buf_append_byte(&b, '\n');
		json_decref(e);
	}
	for (size_t i = 0; i < d->nseqs; i++)
	{
		json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:b}", "kind", "sequence", "schema", d->seqs[i].schema,
							  "name", d->seqs[i].name, "last_value",
							  d->seqs[i].last_value ? d->seqs[i].last_value : "1", "is_called", d->seqs[i].is_called);

		if (d->seqs[i].owned_by != NULL)
			json_object_set_new(e, "owned_by", json_string(d->seqs[i].owned_by));

		pv_json_to_buf(&b, e, false);
		buf_append_byte(&b, '\n');
		json_decref(e);
	}
	res->sequences = d->nseqs;
	if (d->lo_count > 0)
	{
		json_t *e = json_pack("{s:s, s:I, s:I}", "kind", "large_objects", "count", (json_int_t) d->lo_count,
							  "bytes", (json_int_t) d->lo_bytes);

		json_object_set_new(e, "item", json_sprintf("%slarge-objects", d->prefix));

		pv_json_to_buf(&b, e, false);
		buf_append_byte(&b, '\n');
		json_decref(e);
	}
	res->large_objects = d->lo_count;
	name = pv_asprintf("%scatalog", d->prefix);
	if ((rc = repo_writer_item_begin(&it, d->w, &(RepoItemSpec) {.name = name, .type = "stream",
																  .meta = meta})) < 0)
		goto done;
	if ((rc = repo_writer_item_write(it, b.data, b.len)) < 0)
	{
		repo_writer_item_cancel(it);
		goto done;
	}
	rc = repo_writer_item_end(it, NULL);
done:
	json_decref(meta);
	buf_free(&b);
	pv_free(name);
	return rc;
}

static json_t *
patterns_json(const PgPatterns *p)
{
	json_t *a = json_array();

	for (int i = 0; i < p->n; i++)
		json_array_append_new(a, json_string(p->v[i]));
	return a;
}

/* Queue the work: schema first (pg_dump is slow to start), big tables next. */
static int
tasks_run(Dump *d, PvPool *pool, PartTask **out_tasks)
{
	const PgLogicalBackupOpts *o = d->o;
	size_t ntasks = 0, i;
	PartTask *tasks;
	int rc;

	for (i = 0; i < d->nrels; i++)
		if (d->rels[i].relkind == 'r' && d->rels[i].data)
			ntasks += (size_t) d->rels[i].nparts;
	tasks = pv_calloc(ntasks + 1, sizeof(PartTask));
	*out_tasks = tasks;
	d->prog.items_total = ntasks + (o->data_only ? 0 : 1) + (d->want_lo ? 1 : 0);
	if (!o->data_only && (rc = pv_pool_submit(pool, task_schema, d)) < 0)
		return rc;
	ntasks = 0;
	for (i = 0; i < d->nrels; i++)
	{
		DumpRel *rel = &d->rels[i];

		if (rel->relkind != 'r' || !rel->data)
			continue;
		d->prog.weight_total += rel->size;
		for (int k = 0; k < rel->nparts; k++)
		{
			tasks[ntasks] = (PartTask) {.d = d, .rel = rel, .part = k};
			if ((rc = pv_pool_submit(pool, task_part, &tasks[ntasks])) < 0)
				return rc;
			ntasks++;
		}
	}
	if (d->want_lo && (rc = pv_pool_submit(pool, task_large_objects, d)) < 0)
		return rc;
	return pv_pool_wait(pool);
}

/* Made when the first database is ready: nothing exists to abort before. */
static int
backup_writer(Backup *b, const char *what)
{
	const PgLogicalBackupOpts *o = b->o;
	int rc;

	if (b->w != NULL)
		return PV_OK;
	if ((rc = repo_writer_new(&b->w, o->repo, &(RepoWriterOpts) {.kind = "logical", .source = o->source,
																 .jobs = b->jobs, .compression = o->compression,
																 .command = "backup"})) < 0)
		return rc;
	snprintf(b->out->id, sizeof(b->out->id), "%s", repo_writer_id(b->w));
	pv_log_info("backup %s of %s started (%d jobs)", b->out->id, what, b->jobs);
	return PV_OK;
}

static void
dump_clear(Dump *d)
{
	for (int i = 0; i < d->nidle; i++)
		PQfinish(d->idle[i]);
	pv_free(d->idle);
	if (d->coord != NULL)
		PQfinish(d->coord);
	for (size_t i = 0; i < d->nrels; i++)
		rel_free(&d->rels[i]);
	pv_free(d->rels);
	for (size_t i = 0; i < d->nseqs; i++)
	{
		pv_free(d->seqs[i].schema);
		pv_free(d->seqs[i].name);
		pv_free(d->seqs[i].owned_by);
		pv_free(d->seqs[i].last_value);
	}
	pv_free(d->seqs);
	json_decref(d->meta);
	if (d->conninfo)
		pv_free_secret_str(d->conninfo);
	pv_free(d->conninfo_nopw);
	if (d->password)
		pv_free_secret_str(d->password);
	pv_free(d->snapshot);
	pv_free(d->encoding);
	pthread_mutex_destroy(&d->mu);
	memset(d, 0, sizeof(*d));
}

static void
result_add(PgLogicalBackupResult *acc, const PgLogicalBackupResult *r)
{
	acc->tables += r->tables;
	acc->parts += r->parts;
	acc->rows += r->rows;
	acc->sequences += r->sequences;
	acc->large_objects += r->large_objects;
	acc->data_bytes += r->data_bytes;
}

/*
 * Back up the database conn leads to, with its own snapshot, into b's
 * writer (made here when it does not exist yet), its items' names starting
 * with prefix.  *out_meta gets its metadata; the counts are added to b->out.
 */
static int
dump_database(Backup *b, const char *prefix, const PgConnOpts *conn, json_t **out_meta)
{
	const PgLogicalBackupOpts *o = b->o;
	Dump d = {.o = o, .b = b, .prefix = prefix, .conn = *conn};
	PgLogicalBackupResult res;
	PvPool *pool = NULL;
	PartTask *tasks = NULL;
	char dbname[256] = "";
	int rc;

	memset(&res, 0, sizeof(res));
	pthread_mutex_init(&d.mu, NULL);
	if ((rc = pgconn_connect(&d.coord, &d.conn)) < 0)
		goto done;
	snprintf(dbname, sizeof(dbname), "%s", PQdb(d.coord));
	d.conninfo = pglogical_conninfo(d.coord, NULL, true);
	d.conninfo_nopw = pglogical_conninfo(d.coord, NULL, false);
	if (PQconnectionUsedPassword(d.coord) && PQpass(d.coord) != NULL)
		d.password = pv_strdup(PQpass(d.coord));
	if (!o->data_only && b->pg_dump.path == NULL &&
		(rc = pgtools_find(&b->pg_dump, "pg_dump", o->bindir, PQserverVersion(d.coord) / 10000)) < 0)
		goto done;
	if ((rc = snapshot_begin(&d)) < 0 || (rc = relations_load(&d)) < 0 || (rc = sequences_read(&d)) < 0)
		goto done;
	{
		char *what = pv_asprintf("database '%s'", dbname);

		rc = backup_writer(b, what);
		pv_free(what);
		if (rc < 0)
			goto done;
	}
	d.w = b->w;
	if (prefix[0])
		pv_log_info("database '%s': %zu relations", dbname, d.nrels);

	pglogical_progress_start(&d.prog, "backup", o->progress);
	pool = pv_pool_new(b->jobs, 0);
	rc = tasks_run(&d, pool, &tasks);
	if (rc == PV_OK)
		rc = pv_pool_wait(pool);
	pv_pool_free(pool);
	pool = NULL;
	pglogical_progress_stop(&d.prog);
	if (rc < 0)
		goto done;

	if ((rc = catalog_write(&d, &res)) < 0)
		goto done;
	json_object_set_new(d.meta, "schema_only", json_boolean(o->schema_only));
	json_object_set_new(d.meta, "data_only", json_boolean(o->data_only));
	json_object_set_new(d.meta, "filters",
						json_pack("{s:o, s:o, s:o, s:o, s:o, s:b}",
								  "tables", patterns_json(&o->filter.tables),
								  "exclude_tables", patterns_json(&o->filter.exclude_tables),
								  "schemas", patterns_json(&o->filter.schemas),
								  "exclude_schemas", patterns_json(&o->filter.exclude_schemas),
								  "exclude_table_data", patterns_json(&o->filter.exclude_table_data),
								  "strict_names", o->filter.strict_names));
	json_object_set_new(d.meta, "pg_dump", b->pg_dump.version_text ? json_string(b->pg_dump.version_text) : json_null());
	json_object_set_new(d.meta, "tables", json_integer((json_int_t) res.tables));
	json_object_set_new(d.meta, "rows", json_integer((json_int_t) res.rows));
	json_object_set_new(d.meta, "sequences", json_integer((json_int_t) res.sequences));
	json_object_set_new(d.meta, "large_objects", json_integer((json_int_t) res.large_objects));
	json_object_set_new(d.meta, "data_bytes", json_integer((json_int_t) res.data_bytes));
	json_object_set_new(d.meta, "catalog_item", json_sprintf("%scatalog", prefix));
	if (o->note != NULL)
		json_object_set_new(d.meta, "note", json_string(o->note));
	if (!o->data_only)
		json_object_set_new(d.meta, "schema_item", json_sprintf("%sschema", prefix));
	/* Every row is read: the snapshot can end. */
	(void) pgconn_exec(d.coord, "COMMIT");
	result_add(b->out, &res);
	*out_meta = d.meta;
	d.meta = NULL;
	rc = PV_OK;
done:
	{
		PvErrorSave e;

		pv_error_save(&e);
		pv_pool_free(pool);
		dump_clear(&d);
		pv_free(tasks);
		pv_error_restore(&e);
	}
	if (rc < 0 && prefix[0])
		pv_error_prefix(rc, "database '%s'", dbname[0] ? dbname : "?");
	return rc;
}

/* ---- --all: every database plus the globals ---- */

/* The databases to back up: connectable ones but template0, minus --exclude-database. */
static int
databases_list(PGconn *maint, const PgPatterns *exclude, char ***out, size_t *out_n)
{
	PGresult *r = NULL;
	char **names = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*out_n = 0;
	if ((rc = pgconn_query(&r, maint, 1,
						   "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn"
						   " AND datname OPERATOR(pg_catalog.<>) 'template0' ORDER BY datname", 0, NULL)) < 0)
		return pv_error_prefix(rc, "listing the databases");
	names = pv_calloc((size_t) PQntuples(r) + 1, sizeof(char *));
	for (int i = 0; i < PQntuples(r); i++)
	{
		const char *name = PQgetvalue(r, i, 0);
		bool skip = false;

		for (int k = 0; k < exclude->n && !skip; k++)
		{
			char *db = NULL, *sch = NULL, *nm = NULL, *res = NULL;
			const char *params[2] = {name, NULL};

			if ((rc = pgfilter_pattern_regex(&db, &sch, &nm, exclude->v[k], 0)) < 0)
				goto fail;
			params[1] = db ? db : ".*";
			rc = pgconn_query_value(&res, maint, "SELECT ($1 OPERATOR(pg_catalog.~) $2)::text", 2, params);
			skip = rc == PV_OK && res != NULL && strcmp(res, "true") == 0;
			pv_free(db);
			pv_free(sch);
			pv_free(nm);
			pv_free(res);
			if (rc < 0)
				goto fail;
		}
		if (!skip)
			names[n++] = pv_strdup(name);
	}
	PQclear(r);
	*out = names;
	*out_n = n;
	return PV_OK;
fail:
	PQclear(r);
	for (size_t i = 0; i < n; i++)
		pv_free(names[i]);
	pv_free(names);
	return rc;
}

static json_t *
names_query(PGconn *c, const char *sql)
{
	PGresult *r = NULL;
	json_t *a = json_array();

	if (pgconn_query(&r, c, 1, sql, 0, NULL) == PV_OK)
		for (int i = 0; i < PQntuples(r); i++)
			json_array_append_new(a, json_string(PQgetvalue(r, i, 0)));
	PQclear(r);
	pv_error_clear();
	return a;
}

/* pg_dumpall --globals-only into the item "globals"; *out_meta describes it. */
static int
globals_dump(Backup *b, PGconn *maint, json_t **out_meta)
{
	const PgLogicalBackupOpts *o = b->o;
	PgTool dumpall = {0};
	char *ci = pglogical_conninfo(maint, NULL, false);
	char *password = PQconnectionUsedPassword(maint) && PQpass(maint) ? pv_strdup(PQpass(maint)) : NULL;
	char *argv[6];
	int argc = 0;
	json_t *meta = NULL;
	int rc;

	if ((rc = pgtools_find(&dumpall, "pg_dumpall", o->bindir, PQserverVersion(maint) / 10000)) < 0)
		goto done;
	argv[argc++] = dumpall.path;
	argv[argc++] = "--globals-only";
	if (!o->with_role_passwords)
		argv[argc++] = "--no-role-passwords";
	argv[argc++] = pv_asprintf("--dbname=%s", ci);
	argv[argc] = NULL;
	if (o->with_role_passwords)
		pv_log_warn("the backup holds the roles' password hashes: whoever can read the repository can try to"
					" crack them%s", repo_is_encrypted(o->repo) ? "" : " (the repository is not encrypted)");
	meta = json_pack("{s:s, s:s, s:s, s:b}", "kind", "globals", "format", "sql",
					 "tool", dumpall.version_text ? dumpall.version_text : "", "with_passwords", o->with_role_passwords);
	rc = item_from_command(b->w, "globals", meta, argv, password, NULL);
	pv_free(argv[argc - 1]);
	if (rc < 0)
		goto done;
	*out_meta = json_pack("{s:s, s:b, s:o, s:o, s:s}", "item", "globals", "with_passwords", o->with_role_passwords,
						  "roles", names_query(maint, "SELECT rolname FROM pg_catalog.pg_roles"
											   " WHERE rolname OPERATOR(pg_catalog.!~) '^pg_' ORDER BY 1"),
						  "tablespaces", names_query(maint, "SELECT spcname FROM pg_catalog.pg_tablespace"
													 " WHERE spcname OPERATOR(pg_catalog.!~) '^pg_' ORDER BY 1"),
						  "pg_dumpall", dumpall.version_text ? dumpall.version_text : "");
	b->out->roles = json_array_size(json_object_get(*out_meta, "roles"));
done:
	if (rc < 0)
		pv_error_prefix(rc, "globals (pg_dumpall --globals-only)");
	json_decref(meta);
	pgtools_clear(&dumpall);
	pv_free(ci);
	if (password)
		pv_free_secret_str(password);
	return rc;
}

static int
backup_all(Backup *b)
{
	const PgLogicalBackupOpts *o = b->o;
	PgConnOpts mc = o->conn;
	PGconn *maint = NULL;
	char **names = NULL;
	size_t n = 0;
	json_t *dbs = json_array(), *globals = NULL, *top = NULL;
	int rc;

	if (mc.dbname == NULL)
		mc.dbname = "postgres";
	if ((rc = pgconn_connect(&maint, &mc)) < 0)
	{
		if (o->conn.dbname != NULL)
			goto done;
		mc.dbname = "template1";
		if ((rc = pgconn_connect(&maint, &mc)) < 0)
			goto done;
	}
	if ((rc = databases_list(maint, &o->exclude_databases, &names, &n)) < 0)
		goto done;
	if ((rc = backup_writer(b, "all databases")) < 0 || (rc = globals_dump(b, maint, &globals)) < 0)
		goto done;
	for (size_t i = 0; i < n; i++)
	{
		char *q = pglogical_quote_ident(names[i]);
		char *prefix = pv_asprintf("db/%s/", q);
		char *ci = pglogical_conninfo(maint, names[i], true);
		json_t *meta = NULL;

		rc = dump_database(b, prefix, &(PgConnOpts) {.conninfo = ci, .application_name = "pgvault backup"}, &meta);
		if (rc == PV_OK)
		{
			json_object_set_new(meta, "prefix", json_string(prefix));
			json_array_append_new(dbs, meta);
			b->out->databases++;
		}
		pv_free_secret_str(ci);
		pv_free(prefix);
		pv_free(q);
		if (rc < 0)
			goto done;
	}
	top = json_pack("{s:s, s:i, s:b, s:s, s:o, s:O, s:s, s:i, s:b, s:b, s:o}",
					"format", "pgvault-logical", "version", 1, "all", true, "database", "*",
					"databases", dbs, "globals", globals,
					"server_version", PQparameterStatus(maint, "server_version") ? PQparameterStatus(maint, "server_version") : "",
					"server_version_num", PQserverVersion(maint),
					"schema_only", o->schema_only, "data_only", o->data_only,
					"exclude_databases", patterns_json(&o->exclude_databases));
	dbs = NULL;
	if (top == NULL)
	{
		rc = pv_error_set(PV_ERROR, "cannot build the backup's metadata");
		goto done;
	}
	json_object_set_new(top, "tables", json_integer((json_int_t) b->out->tables));
	json_object_set_new(top, "rows", json_integer((json_int_t) b->out->rows));
	json_object_set_new(top, "sequences", json_integer((json_int_t) b->out->sequences));
	json_object_set_new(top, "large_objects", json_integer((json_int_t) b->out->large_objects));
	json_object_set_new(top, "data_bytes", json_integer((json_int_t) b->out->data_bytes));
	rc = repo_writer_commit(b->w, top);
done:
	json_decref(dbs);
	json_decref(globals);
	json_decref(top);
	for (size_t i = 0; i < n; i++)
		pv_free(names[i]);
	pv_free(names);
	if (maint != NULL)
		PQfinish(maint);
	return rc;
}

int
pglogical_backup(PgLogicalBackupResult *out, const PgLogicalBackupOpts *o)
{
	Backup b = {.o = o, .out = out, .jobs = o->jobs > 0 ? o->jobs : 2};
	int64_t t0 = pglogical_now_ms();
	json_t *meta = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (o->schema_only && o->data_only)
		return pv_error_set(PV_EUSAGE, "options --schema-only and --data-only cannot be used together");
	if (o->all && (o->filter.tables.n || o->filter.schemas.n || o->filter.exclude_tables.n ||
				   o->filter.exclude_schemas.n || o->filter.exclude_table_data.n))
		return pv_error_set(PV_EUSAGE, "table and schema filters cannot be used with --all");
	if (!o->all && o->exclude_databases.n > 0)
		return pv_error_set(PV_EUSAGE, "--exclude-database needs --all");
	if (o->all)
	{
		snprintf(out->database, sizeof(out->database), "*");
		rc = backup_all(&b);
	}
	else
	{
		if ((rc = dump_database(&b, "", &o->conn, &meta)) < 0)
			goto done;
		json_object_set_new(meta, "prefix", json_string(""));
		snprintf(out->database, sizeof(out->database), "%s", json_string_value(json_object_get(meta, "database")));
		out->databases = 1;
		rc = repo_writer_commit(b.w, meta);
	}
	if (rc == PV_OK)
		repo_writer_stats(b.w, &out->stats);
done:
	{
		PvErrorSave e;

		pv_error_save(&e);
		if (b.w != NULL)
		{
			if (rc < 0)
				repo_writer_abort(b.w);
			repo_writer_free(b.w);
		}
		json_decref(meta);
		pgtools_clear(&b.pg_dump);
		pv_error_restore(&e);
	}
	out->elapsed_ms = pglogical_now_ms() - t0;
	return rc;
}
