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
 *     as pg_dump does) so nobody drops or rewrites them meanwhile.
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
} DumpPart;

typedef struct DumpRel
{
	uint32_t oid, nspoid;
	char relkind;
	char *schema, *name, *qname, *cols;
	uint64_t size;
	bool populated;
	bool data;					/* its data is in the backup */
	int nparts;
	DumpPart *parts;
} DumpRel;

typedef struct DumpSeq
{
	char *schema, *name;
	char *last_value;
	bool is_called;
} DumpSeq;

typedef struct Dump
{
	const PgLogicalBackupOpts *o;
	PGconn *coord;
	RepoWriter *w;
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
	PgTool pg_dump;
	json_t *meta;				/* manifest metadata being built */
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
												.application_name = "pgvault backup"})) < 0)
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

static int
task_schema(void *arg)
{
	Dump *d = arg;
	const PgLogicalBackupOpts *o = d->o;
	char **argv = NULL;
	int argc = 0;
	PgChild child = {.pid = 0, .out_fd = -1, .err_fd = -1};
	RepoWriterItem *it = NULL;
	json_t *meta = NULL;
	unsigned char *buf = NULL;
	int rc;

#define ARG(s) (argv = pv_realloc(argv, sizeof(char *) * (size_t) (argc + 2)), argv[argc++] = (s))
	ARG(pv_strdup(d->pg_dump.path));
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
					 d->pg_dump.version_text ? d->pg_dump.version_text : "");
	if ((rc = repo_writer_item_begin(&it, d->w, &(RepoItemSpec) {.name = "schema", .type = "stream",
																  .meta = meta})) < 0)
		goto done;
	if ((rc = pglogical_child_start(&child, argv, d->password, true)) < 0)
		goto done;
	buf = pv_malloc(256 * 1024);
	for (;;)
	{
		ssize_t n = read(child.out_fd, buf, 256 * 1024);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "reading pg_dump's output");
			goto done;
		}
		if (n == 0)
			break;
		atomic_fetch_add(&d->prog.bytes, (uint64_t) n);
		if ((rc = repo_writer_item_write(it, buf, (size_t) n)) < 0)
			goto done;
	}
	rc = pglogical_child_wait(&child);
	if (rc < 0)
		goto done;
	rc = repo_writer_item_end(it, NULL);
	it = NULL;
	atomic_fetch_add(&d->prog.items_done, 1);
done:
	if (child.pid > 0)
		pglogical_child_kill(&child);
	if (it != NULL)
		repo_writer_item_cancel(it);
	if (rc < 0)
		pv_error_prefix(rc, "schema (pg_dump --schema-only)");
	for (int i = 0; i < argc; i++)
		pv_free(argv[i]);
	pv_free(argv);
	pv_free(buf);
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
	bool conn_ok = false;
	int rc;

	if ((rc = conn_get(d, &c)) < 0)
		goto done;
	if (rel->nparts == 1)
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
	if ((rc = repo_writer_item_begin(&it, d->w, &(RepoItemSpec) {.name = "large-objects", .type = "stream",
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
	return rc;
}

/* ---- the coordinator's steps ---- */

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
	return pglogical_session_setup(d->coord, d->encoding);
}

static void
rel_free(DumpRel *r)
{
	pv_free(r->schema);
	pv_free(r->name);
	pv_free(r->qname);
	pv_free(r->cols);
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
	if (d->server_version >= 140000 && rel->relkind == 'r' && rel->size > split && pages >= 2)
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

		rel->parts[i].item = pv_asprintf("data/%s/%llu", rel->qname, (unsigned long long) i);
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
	if ((rc = pgconn_query(&r, d->coord, 10,
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
						   "   AND e.objid OPERATOR(pg_catalog.=) c.oid AND e.deptype OPERATOR(pg_catalog.=) 'e')::text"
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

		if (ext_member)
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
			continue;
		if (kind == 'S')
		{
			if (data && !o->schema_only)
			{
				d->seqs = pv_realloc(d->seqs, sizeof(DumpSeq) * (d->nseqs + 1));
				d->seqs[d->nseqs++] = (DumpSeq) {.schema = pv_strdup(PQgetvalue(r, i, 2)),
												 .name = pv_strdup(PQgetvalue(r, i, 3))};
			}
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
	qsort(d->rels, d->nrels, sizeof(DumpRel), rel_cmp_size);
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
				pj = json_pack("{s:s, s:I, s:s, s:I}", "item", p->item, "rows", (json_int_t) p->rows,
							   "fingerprint", hex, "bytes", (json_int_t) p->bytes);
				if (rel->nparts > 1)
					json_object_set_new(pj, "pages", json_pack("[I, o]", (json_int_t) p->from,
																p->to ? json_integer((json_int_t) p->to) : json_null()));
				json_array_append_new(parts, pj);
			}
			pgfp_format(hex, fp);
			e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:o}", "kind", "table", "schema", rel->schema,
						  "name", rel->name, "relkind", rk, "columns", rel->cols, "size", (json_int_t) rel->size,
						  "data", rel->data && rel->relkind == 'r', "parts", parts);
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

		pv_json_to_buf(&b, e, false);
		buf_append_byte(&b, '\n');
		json_decref(e);
	}
	res->sequences = d->nseqs;
	if (d->lo_count > 0)
	{
		json_t *e = json_pack("{s:s, s:I, s:I, s:s}", "kind", "large_objects", "count", (json_int_t) d->lo_count,
							  "bytes", (json_int_t) d->lo_bytes, "item", "large-objects");

		pv_json_to_buf(&b, e, false);
		buf_append_byte(&b, '\n');
		json_decref(e);
	}
	res->large_objects = d->lo_count;
	if ((rc = repo_writer_item_begin(&it, d->w, &(RepoItemSpec) {.name = "catalog", .type = "stream",
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

int
pglogical_backup(PgLogicalBackupResult *out, const PgLogicalBackupOpts *o)
{
	Dump d = {.o = o};
	PvPool *pool = NULL;
	PartTask *tasks = NULL;
	int64_t t0 = pglogical_now_ms();
	int jobs = o->jobs > 0 ? o->jobs : 2;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_init(&d.mu, NULL);
	if (o->schema_only && o->data_only)
		return pv_error_set(PV_EUSAGE, "options --schema-only and --data-only cannot be used together");
	if ((rc = pgconn_connect(&d.coord, &o->conn)) < 0)
		goto done;
	snprintf(out->database, sizeof(out->database), "%s", PQdb(d.coord));
	d.conninfo = pglogical_conninfo(d.coord, NULL, true);
	d.conninfo_nopw = pglogical_conninfo(d.coord, NULL, false);
	if (PQconnectionUsedPassword(d.coord) && PQpass(d.coord) != NULL)
		d.password = pv_strdup(PQpass(d.coord));
	if (!o->data_only &&
		(rc = pgtools_find(&d.pg_dump, "pg_dump", o->bindir, PQserverVersion(d.coord) / 10000)) < 0)
		goto done;
	if ((rc = snapshot_begin(&d)) < 0 || (rc = relations_load(&d)) < 0 || (rc = sequences_read(&d)) < 0)
		goto done;

	if ((rc = repo_writer_new(&d.w, o->repo, &(RepoWriterOpts) {.kind = "logical", .source = o->source,
																 .jobs = jobs, .compression = o->compression,
																 .command = "backup"})) < 0)
		goto done;
	snprintf(out->id, sizeof(out->id), "%s", repo_writer_id(d.w));
	pv_log_info("backup %s of database '%s' started (%d jobs)", out->id, out->database, jobs);

	pglogical_progress_start(&d.prog, "backup", o->progress);
	pool = pv_pool_new(jobs, 0);
	rc = tasks_run(&d, pool, &tasks);
	if (rc == PV_OK)
		rc = pv_pool_wait(pool);
	pv_pool_free(pool);
	pool = NULL;
	pglogical_progress_stop(&d.prog);
	if (rc < 0)
		goto done;

	if ((rc = catalog_write(&d, out)) < 0)
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
	json_object_set_new(d.meta, "pg_dump", d.pg_dump.version_text ? json_string(d.pg_dump.version_text) : json_null());
	json_object_set_new(d.meta, "tables", json_integer((json_int_t) out->tables));
	json_object_set_new(d.meta, "rows", json_integer((json_int_t) out->rows));
	json_object_set_new(d.meta, "sequences", json_integer((json_int_t) out->sequences));
	json_object_set_new(d.meta, "large_objects", json_integer((json_int_t) out->large_objects));
	json_object_set_new(d.meta, "data_bytes", json_integer((json_int_t) out->data_bytes));
	json_object_set_new(d.meta, "catalog_item", json_string("catalog"));
	if ((rc = repo_writer_commit(d.w, d.meta)) < 0)
		goto done;
	repo_writer_stats(d.w, &out->stats);
	/* The snapshot could end now; ending it only after the commit keeps it simple. */
	(void) pgconn_exec(d.coord, "COMMIT");
	rc = PV_OK;
done:
	{
		PvErrorSave e;

		pv_error_save(&e);
		pv_pool_free(pool);
		if (d.w != NULL)
		{
			if (rc < 0)
				repo_writer_abort(d.w);
			repo_writer_free(d.w);
		}
		for (int i = 0; i < d.nidle; i++)
			PQfinish(d.idle[i]);
		pv_free(d.idle);
		if (d.coord != NULL)
			PQfinish(d.coord);
		for (size_t i = 0; i < d.nrels; i++)
			rel_free(&d.rels[i]);
		pv_free(d.rels);
		for (size_t i = 0; i < d.nseqs; i++)
		{
			pv_free(d.seqs[i].schema);
			pv_free(d.seqs[i].name);
			pv_free(d.seqs[i].last_value);
		}
		pv_free(d.seqs);
		pv_free(tasks);
		json_decref(d.meta);
		pgtools_clear(&d.pg_dump);
		if (d.conninfo)
			pv_free_secret_str(d.conninfo);
		pv_free(d.conninfo_nopw);
		if (d.password)
			pv_free_secret_str(d.password);
		pv_free(d.snapshot);
		pv_free(d.encoding);
		pthread_mutex_destroy(&d.mu);
		pv_error_restore(&e);
	}
	out->elapsed_ms = pglogical_now_ms() - t0;
	return rc;
}
