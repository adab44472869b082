/*
 * export.c: `pgvault export ID --format plain`, a logical backup as one SQL
 * script that `psql -f` loads into an empty database, so that no one is
 * locked into pgvault (see logical.h).
 *
 * The script, in order:
 *   1. pre-data: `pg_restore -f - --section=pre-data` of the schema item
 *      (with -L when --table selects tables);
 *   2. data: per table "COPY t (cols) FROM stdin;", the backup's COPY text
 *      unchanged, "\." (the client encoding is the database's, the text
 *      was written with the settings of fingerprint.h);
 *   3. sequences: setval;
 *   4. large objects: lo_create + lo_put of hex bytea chunks, owner,
 *      comment, grants;
 *   5. post-data: `pg_restore -f - --section=post-data`;
 *   6. REFRESH of the populated materialized views;
 *   7. the database's properties (settings, role settings in it, comment;
 *      psql's \gset names the database the script is loaded into);
 *   8. the event triggers, taken out of 5 (as pg_dump orders them: made
 *      earlier they would fire on 6 and 7).
 * The data is written with ISO dates and postgres intervals (fingerprint.h)
 * and read back under those settings too, whatever the target database's.
 * An --all backup without --database becomes one script for a new cluster,
 * as pg_dumpall's: the globals, then per database CREATE DATABASE (but
 * postgres and template1), \connect, and 1 to 7 (with the owner,
 * connection limit and grants of the database as well).
 * Output goes to a file (written as FILE.tmp, then renamed: a failed export
 * leaves no half file under the name asked for) or to standard output,
 * optionally compressed (zstd or gzip) as it is written.  Memory stays
 * bounded: data streams through in 256 KiB pieces.
 */
#include "pg/logical/logical.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/logical/archive.h"
#include "pg/logical/globals.h"
#include "pg/logical/toc.h"
#include "pg/logical/util.h"
#include "pg/tools.h"
#include "repo/reader.h"
#include "repo/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define IO_BUF (256 * 1024)
#define LO_PIECE (64 * 1024)

/* ---- the output: a file or stdout, maybe compressed ---- */

typedef enum SinkMode
{
	SINK_PLAIN,
	SINK_ZSTD,
	SINK_GZIP,
} SinkMode;

typedef struct Sink
{
	int fd;
	SinkMode mode;
	ZSTD_CCtx *zc;
	z_stream zs;
	bool zs_open;
	unsigned char *obuf;
	size_t ocap;
	char *path;					/* the final name, or NULL for stdout */
	char *tmp;					/* what is written until the end */
	uint64_t in, out;
} Sink;

static int
sink_raw(Sink *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0)
	{
		ssize_t w = write(s->fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return pv_error_errno(PV_EIO, errno, "writing %s", s->path ? s->tmp : "standard output");
		p += w;
		len -= (size_t) w;
		s->out += (uint64_t) w;
	}
	return PV_OK;
}

/* Compress and write; end finishes the compressed stream. */
static int
sink_feed(Sink *s, const void *data, size_t len, bool end)
{
	int rc;

	if (s->mode == SINK_PLAIN)
		return len > 0 ? sink_raw(s, data, len) : PV_OK;
	if (s->mode == SINK_ZSTD)
	{
		ZSTD_inBuffer in = {data, len, 0};

		for (;;)
		{
			ZSTD_outBuffer out = {s->obuf, s->ocap, 0};
			size_t left = ZSTD_compressStream2(s->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);

			if (ZSTD_isError(left))
				return pv_error_set(PV_ERROR, "zstd: %s", ZSTD_getErrorName(left));
			if (out.pos > 0 && (rc = sink_raw(s, s->obuf, out.pos)) < 0)
				return rc;
			if (end ? left == 0 : in.pos == in.size)
				return PV_OK;
		}
	}
	s->zs.next_in = (Bytef *) data;
	s->zs.avail_in = (uInt) len;
	for (;;)
	{
		int zr;

		s->zs.next_out = s->obuf;
		s->zs.avail_out = (uInt) s->ocap;
		zr = deflate(&s->zs, end ? Z_FINISH : Z_NO_FLUSH);
		if (zr == Z_STREAM_ERROR)
			return pv_error_set(PV_ERROR, "gzip: deflate failed");
		if (s->ocap - s->zs.avail_out > 0 && (rc = sink_raw(s, s->obuf, s->ocap - s->zs.avail_out)) < 0)
			return rc;
		if (end ? zr == Z_STREAM_END : (s->zs.avail_in == 0 && s->zs.avail_out != 0))
			return PV_OK;
	}
}

static int
sink_write(Sink *s, const void *data, size_t len)
{
	s->in += len;
	return sink_feed(s, data, len, false);
}

static int
sink_str(Sink *s, const char *text)
{
	return sink_write(s, text, strlen(text));
}

/* compress: NULL, "none", "zstd[:LEVEL]" or "gzip[:LEVEL]". */
static int
sink_open(Sink *s, const char *path, const char *compress)
{
	const char *colon = compress ? strchr(compress, ':') : NULL;
	size_t nl = colon ? (size_t) (colon - compress) : (compress ? strlen(compress) : 0);
	long level = -1;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (colon != NULL)
	{
		char *end;

		level = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || level < 1 || level > 19)
			return pv_error_set(PV_EUSAGE, "invalid compression level in '%s'", compress);
	}
	if (compress == NULL || (nl == 4 && strncmp(compress, "none", 4) == 0))
		s->mode = SINK_PLAIN;
	else if (nl == 4 && strncmp(compress, "zstd", 4) == 0)
		s->mode = SINK_ZSTD;
	else if (nl == 4 && strncmp(compress, "gzip", 4) == 0)
	{
		s->mode = SINK_GZIP;
		if (level > 9)
			return pv_error_set(PV_EUSAGE, "gzip levels go from 1 to 9 ('%s')", compress);
	}
	else
		return pv_error_set(PV_EUSAGE, "unknown compression '%s' (zstd, gzip or none)", compress);
	if (path == NULL || strcmp(path, "-") == 0)
		s->fd = STDOUT_FILENO;
	else
	{
		s->path = pv_strdup(path);
		s->tmp = pv_asprintf("%s.tmp", path);
		if ((s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
			return pv_error_errno(PV_EIO, errno, "cannot create '%s'", s->tmp);
	}
	s->ocap = IO_BUF;
	s->obuf = pv_malloc(s->ocap);
	if (s->mode == SINK_ZSTD)
	{
		s->zc = ZSTD_createCCtx();
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, level > 0 ? (int) level : 3);
	}
	else if (s->mode == SINK_GZIP)
	{
		if (deflateInit2(&s->zs, level > 0 ? (int) level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return pv_error_set(PV_ERROR, "gzip: cannot start the compressor");
		s->zs_open = true;
	}
	return PV_OK;
}

/* Finish: on success flush, fsync and rename into place; else remove the temporary file. */
static int
sink_close(Sink *s, bool ok)
{
	int rc = PV_OK;

	if (ok && s->mode != SINK_PLAIN)
		rc = sink_feed(s, NULL, 0, true);
	if (s->path != NULL && s->fd >= 0)
	{
		if (ok && rc == PV_OK && fsync(s->fd) != 0)
			rc = pv_error_errno(PV_EIO, errno, "writing '%s'", s->tmp);
		close(s->fd);
		if (ok && rc == PV_OK && rename(s->tmp, s->path) != 0)
			rc = pv_error_errno(PV_EIO, errno, "cannot rename '%s' to '%s'", s->tmp, s->path);
		if (!ok || rc < 0)
			unlink(s->tmp);
	}
	if (s->zc)
		ZSTD_freeCCtx(s->zc);
	if (s->zs_open)
		deflateEnd(&s->zs);
	pv_free(s->obuf);
	pv_free(s->path);
	pv_free(s->tmp);
	s->fd = -1;
	return rc;
}

/* ---- the parts of the script ---- */

typedef struct Exp
{
	const PgLogicalExportOpts *o;
	PgLogicalExportResult *res;
	RepoManifest *m;
	PgArchiveDb db;
	PgCatalog cat;
	bool *sel;
	PgTool pg_restore;
	char *schema_file, *list_file;
	char *evt_file;				/* pg_restore -L list of the event triggers (written last), or NULL */
	Sink sink;
	char *buf;
} Exp;

static int
section(Exp *e, const char *which)
{
	Buf out = PV_BUF_INIT;
	char *sec = pv_asprintf("--section=%s", which);
	char *list = e->list_file ? pv_asprintf("--use-list=%s", e->list_file) : NULL;
	const char *args[8];
	int n = 0, rc;

	args[n++] = "--file=-";
	args[n++] = sec;
	if (list)
		args[n++] = list;
	if (e->o->no_owner)
		args[n++] = "--no-owner";
	if (e->o->no_privileges)
		args[n++] = "--no-privileges";
	args[n] = NULL;
	rc = pgarchive_pg_restore(&e->pg_restore, args, e->schema_file, NULL, &out);
	if (rc == PV_OK)
		rc = sink_write(&e->sink, out.data, out.len);
	if (rc < 0)
		pv_error_prefix(rc, "%s", which);
	buf_free(&out);
	pv_free(sec);
	pv_free(list);
	return rc;
}

static int
item_copy(Exp *e, const char *name)
{
	RepoItem *item = NULL;
	RepoReader *rd = NULL;
	int rc;

	if ((rc = repo_manifest_find_item(&item, e->o->repo, e->m, name)) < 0 ||
		(rc = repo_reader_open(&rd, e->o->repo, e->m, item, NULL)) < 0)
		goto done;
	for (;;)
	{
		size_t n;

		if ((rc = repo_reader_read(rd, e->buf, IO_BUF, &n)) < 0)
			goto done;
		if (n == 0)
			break;
		if ((rc = sink_write(&e->sink, e->buf, n)) < 0)
			goto done;
	}
	rc = PV_OK;
done:
	repo_reader_free(rd);
	repo_item_free(item);
	return rc;
}

/* s for an SQL comment line: a name may hold newlines, which would end the comment (pg_dump's rule). */
static char *
comment_safe(const char *s)
{
	char *r = pv_strdup(s ? s : "");

	for (char *p = r; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return r;
}

static int
data_write(Exp *e)
{
	Buf b = PV_BUF_INIT;
	const char *enc = json_string_value(json_object_get(e->db.meta, "encoding"));
	size_t i;
	json_t *t;
	int rc = PV_OK;

	buf_append_str(&b, "\n--\n-- Data (pgvault)\n--\n\nSET client_encoding = ");
	pgarchive_literal(&b, enc ? enc : "UTF8");
	buf_append_str(&b, ";\nSET standard_conforming_strings = on;\n"
				   "SELECT pg_catalog.set_config('search_path', '', false);\n"
				   "SET datestyle = 'ISO';\nSET intervalstyle = 'postgres';\nSET xmloption = content;\n\n");
	if ((rc = sink_write(&e->sink, b.data, b.len)) < 0)
		goto done;
	json_array_foreach(e->cat.tables, i, t)
	{
		const char *schema = json_string_value(json_object_get(t, "schema"));
		const char *name = json_string_value(json_object_get(t, "name"));
		const char *cols = json_string_value(json_object_get(t, "columns"));
		char *q, *qc;
		size_t k;
		json_t *p;

		if ((e->sel && !e->sel[i]) || !json_is_true(json_object_get(t, "data")) || !schema || !name)
			continue;
		q = pglogical_qualify(schema, name);
		buf_reset(&b);
		qc = comment_safe(q);
		buf_printf(&b, "--\n-- Data for %s (%lld rows)\n--\n\n", qc,
				   (long long) json_integer_value(json_object_get(t, "rows")));
		pv_free(qc);
		buf_printf(&b, cols && cols[0] ? "COPY %s (%s) FROM stdin;\n" : "COPY %s %s FROM stdin;\n", q, cols ? cols : "");
		pv_free(q);
		if ((rc = sink_write(&e->sink, b.data, b.len)) < 0)
			goto done;
		json_array_foreach(json_object_get(t, "parts"), k, p)
		{
			const char *item = json_string_value(json_object_get(p, "item"));

			if (item == NULL)
			{
				rc = pv_error_set(PV_ECORRUPT, "catalog of backup '%s' has a part without an item", e->res->id);
				goto done;
			}
			if ((rc = item_copy(e, item)) < 0)
				goto done;
		}
		if ((rc = sink_str(&e->sink, "\\.\n\n")) < 0)
			goto done;
		e->res->tables++;
		e->res->rows += (uint64_t) json_integer_value(json_object_get(t, "rows"));
	}
	json_array_foreach(e->cat.sequences, i, t)
	{
		const char *schema = json_string_value(json_object_get(t, "schema"));
		const char *name = json_string_value(json_object_get(t, "name"));
		const char *lv = json_string_value(json_object_get(t, "last_value"));
		char *q;

		if ((e->sel && !pgcatalog_seq_selected(&e->cat, e->sel, t)) || !schema || !name || !lv)
			continue;
		q = pglogical_qualify(schema, name);
		buf_reset(&b);
		buf_append_str(&b, "SELECT pg_catalog.setval(");
		pgarchive_literal(&b, q);
		buf_append_str(&b, ", ");
		pgarchive_literal(&b, lv);
		buf_printf(&b, "::bigint, %s);\n", json_is_true(json_object_get(t, "is_called")) ? "true" : "false");
		pv_free(q);
		if ((rc = sink_write(&e->sink, b.data, b.len)) < 0)
			goto done;
		e->res->sequences++;
	}
done:
	buf_free(&b);
	return rc;
}

/* Read exactly n bytes (fewer only at the end). */
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

static int
large_objects_write(Exp *e, const char *name)
{
	RepoItem *item = NULL;
	RepoReader *rd = NULL;
	Buf hdr = PV_BUF_INIT, sql = PV_BUF_INIT;
	int rc;

	if ((rc = repo_manifest_find_item(&item, e->o->repo, e->m, name)) < 0 ||
		(rc = repo_reader_open(&rd, e->o->repo, e->m, item, NULL)) < 0)
		goto done;
	if ((rc = sink_str(&e->sink, "\n--\n-- Large objects (pgvault)\n--\n\n")) < 0)
		goto done;
	for (;;)
	{
		unsigned long oid;
		long long len, off = 0;
		size_t got = 0;
		int pos = 0;

		buf_reset(&hdr);
		for (;;)
		{
			char ch;

			if ((rc = reader_fill(rd, &ch, 1, &got)) < 0)
				goto done;
			if (got == 0 || ch == '\n')
				break;
			buf_append_byte(&hdr, (unsigned char) ch);
		}
		if (hdr.len == 0 && got == 0)
			break;
		if (sscanf(buf_cstr(&hdr), "%lu %lld %n", &oid, &len, &pos) != 2 || len < 0)
		{
			rc = pv_error_set(PV_ECORRUPT, "item '%s' of backup '%s' is malformed near '%.60s'", name,
							  e->res->id, buf_cstr(&hdr));
			goto done;
		}
		buf_reset(&sql);
		buf_printf(&sql, "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata"
				   " WHERE oid OPERATOR(pg_catalog.=) %lu;\nSELECT pg_catalog.lo_create(%lu);\n", oid, oid);
		while (off < len)
		{
			size_t want = (size_t) (len - off) < LO_PIECE ? (size_t) (len - off) : LO_PIECE;
			char *hex;

			if ((rc = reader_fill(rd, e->buf, want, &got)) < 0)
				goto done;
			if (got != want)
			{
				rc = pv_error_set(PV_ECORRUPT, "item '%s' of backup '%s' is truncated", name, e->res->id);
				goto done;
			}
			hex = pv_malloc(2 * got + 1);
			pv_hex_encode(hex, (const unsigned char *) e->buf, got);
			buf_printf(&sql, "SELECT pg_catalog.lo_put(%lu, %lld, '\\x%s'::bytea);\n", oid, off, hex);
			pv_free(hex);
			off += (long long) got;
			if ((rc = sink_write(&e->sink, sql.data, sql.len)) < 0)
				goto done;
			buf_reset(&sql);
		}
		if (pos > 0 && (size_t) pos < hdr.len &&
			(rc = pgarchive_lo_meta_sql(&sql, oid, buf_cstr(&hdr) + pos, e->o->no_owner, e->o->no_privileges)) < 0)
			goto done;
		buf_append_byte(&sql, '\n');
		if ((rc = sink_write(&e->sink, sql.data, sql.len)) < 0)
			goto done;
		e->res->large_objects++;
	}
	rc = PV_OK;
done:
	if (rc < 0)
		pv_error_prefix(rc, "large objects");
	buf_free(&hdr);
	buf_free(&sql);
	repo_reader_free(rd);
	repo_item_free(item);
	return rc;
}

static int
matviews_write(Exp *e)
{
	Buf b = PV_BUF_INIT;
	size_t i;
	json_t *v;
	int rc = PV_OK;

	json_array_foreach(e->cat.matviews, i, v)
	{
		const char *schema = json_string_value(json_object_get(v, "schema"));
		const char *name = json_string_value(json_object_get(v, "name"));
		char *q;

		if (!schema || !name || !json_is_true(json_object_get(v, "populated")) || !json_is_true(json_object_get(v, "data")))
			continue;
		q = pglogical_qualify(schema, name);
		buf_printf(&b, "%sREFRESH MATERIALIZED VIEW %s;\n", b.len ? "" : "\n--\n-- Materialized views (pgvault)\n--\n\n",
				   q);
		pv_free(q);
	}
	if (b.len > 0)
		rc = sink_write(&e->sink, b.data, b.len);
	buf_free(&b);
	return rc;
}

static const char *
jstr(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "?";
}

/*
 * A psql \connect to database name whatever its spelling (as pg_dumpall
 * writes it): a conninfo string in double quotes.
 */
static void
psql_connect(Buf *b, const char *name)
{
	buf_append_str(b, "\\connect -reuse-previous=on \"dbname='");
	for (const char *p = name; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf_append_byte(b, '\\');
		if (*p == '"')
			buf_append_byte(b, '"');
		buf_append_byte(b, (unsigned char) *p);
	}
	buf_append_str(b, "'\"\n");
}

/*
 * The database-level properties, for the database psql is connected to
 * (its name is taken from the server: the script may be loaded into a
 * database of any name): ALTER DATABASE ... SET and ALTER ROLE ... IN
 * DATABASE ... SET (skipped, with a comment, when the role does not exist
 * where the script is loaded), the comment; with an --all backup also the
 * owner, the connection limit and the grants (as pg_dumpall).
 */
static int
properties_write(Exp *e, bool all)
{
	const json_t *p = json_object_get(e->db.meta, "properties");
	const char *owner = json_string_value(json_object_get(e->db.meta, "owner"));
	const char *comment = json_string_value(json_object_get(p, "comment"));
	const json_t *acl = json_object_get(p, "acl");
	json_int_t limit = json_integer_value(json_object_get(p, "connlimit"));
	Buf b = PV_BUF_INIT;
	size_t i, k;
	json_t *s, *c;
	int rc;

	buf_append_str(&b, "\n--\n-- Database properties (pgvault)\n--\n\n"
				   "SELECT pg_catalog.current_database() AS pgvault_db \\gset\n");
	if (all && owner != NULL && !e->o->no_owner)
	{
		char *q = pglogical_quote_ident(owner);

		buf_printf(&b, "ALTER DATABASE :\"pgvault_db\" OWNER TO %s;\n", q);
		pv_free(q);
	}
	json_array_foreach(json_object_get(p, "settings"), i, s)
	{
		const char *role = json_string_value(json_object_get(s, "role"));
		char *q = role ? pglogical_quote_ident(role) : NULL;

		if (role != NULL)
		{
			buf_append_str(&b, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ");
			pgarchive_literal(&b, role);
			buf_append_str(&b, ") AS pgvault_role \\gset\n\\if :pgvault_role\n");
		}
		json_array_foreach(json_object_get(s, "config"), k, c)
		{
			if (!json_is_string(c))
				continue;
			if (role != NULL)
				buf_printf(&b, "ALTER ROLE %s IN DATABASE :\"pgvault_db\" ", q);
			else
				buf_append_str(&b, "ALTER DATABASE :\"pgvault_db\" ");
			pgglobals_set_clause(&b, json_string_value(c));
			buf_append_str(&b, ";\n");
		}
		if (role != NULL)
		{
			buf_append_str(&b, "\\else\n\\echo 'role ");
			for (const char *x = role; *x; x++)
				if (*x != '\'' && *x != '\\' && *x != ':')
					buf_append_byte(&b, (unsigned char) *x);
			buf_append_str(&b, " does not exist: its settings in this database are not restored'\n\\endif\n");
		}
		pv_free(q);
	}
	if (comment != NULL)
	{
		buf_append_str(&b, "COMMENT ON DATABASE :\"pgvault_db\" IS ");
		pgarchive_literal(&b, comment);
		buf_append_str(&b, ";\n");
	}
	if (all && json_is_integer(json_object_get(p, "connlimit")) && limit != -1)
		buf_printf(&b, "ALTER DATABASE :\"pgvault_db\" CONNECTION LIMIT %lld;\n", (long long) limit);
	if (all && json_is_array(acl) && !e->o->no_privileges)
	{
		buf_append_str(&b, "REVOKE ALL ON DATABASE :\"pgvault_db\" FROM PUBLIC;\n");
		json_array_foreach(acl, i, s)
		{
			const char *grantee = json_string_value(json_object_get(s, "grantee"));
			const char *priv = json_string_value(json_object_get(s, "privilege"));

			/* grantee is quoted already (or PUBLIC); the privileges of a database are words */
			if (grantee == NULL || priv == NULL || strspn(priv, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(priv))
				continue;
			buf_printf(&b, "GRANT %s ON DATABASE :\"pgvault_db\" TO %s%s;\n", priv, grantee,
					   json_is_true(json_object_get(s, "grantable")) ? " WITH GRANT OPTION" : "");
		}
	}
	rc = sink_write(&e->sink, b.data, b.len);
	buf_free(&b);
	return rc;
}

/* Forget one database's catalog and files before the next one. */
static void
db_clear(Exp *e)
{
	if (e->schema_file)
	{
		unlink(e->schema_file);
		pv_free(e->schema_file);
		e->schema_file = NULL;
	}
	if (e->list_file)
	{
		unlink(e->list_file);
		pv_free(e->list_file);
		e->list_file = NULL;
	}
	if (e->evt_file)
	{
		unlink(e->evt_file);
		pv_free(e->evt_file);
		e->evt_file = NULL;
	}
	pv_free(e->sel);
	e->sel = NULL;
	pgcatalog_clear(&e->cat);
}

/* Whole database: the event triggers out of the post-data list into e->evt_file (see restore.c). */
static int
event_triggers_defer(Exp *e)
{
	const char *args[] = {"--list", NULL};
	Buf toc = PV_BUF_INIT, evt = PV_BUF_INIT, rest = PV_BUF_INIT;
	int rc;

	if ((rc = pgarchive_pg_restore(&e->pg_restore, args, e->schema_file, NULL, &toc)) < 0)
		goto done;
	if (pgtoc_event_triggers(&evt, buf_cstr(&toc)) == 0)
		goto done;
	pgtoc_subtract(&rest, buf_cstr(&toc), buf_cstr(&evt));
	if ((rc = pglogical_temp_write(&e->evt_file, &evt)) < 0)
		goto done;
	rc = pglogical_temp_write(&e->list_file, &rest);
done:
	buf_free(&toc);
	buf_free(&evt);
	buf_free(&rest);
	return rc;
}

/* One database's script (e->db): schema, data, large objects, post-data, matviews, properties, event triggers. */
static int
export_db(Exp *e, bool all)
{
	const PgLogicalExportOpts *o = e->o;
	bool schema = e->db.schema_item[0] != '\0';
	int rc;

	if ((rc = pgcatalog_load(&e->cat, o->repo, e->m, &e->db)) < 0)
		return rc;
	if (o->tables.n > 0 && (rc = pgcatalog_select(&e->sel, &e->cat, &e->db, &o->tables)) < 0)
		return rc;
	if (schema &&
		((e->pg_restore.path == NULL && (rc = pgtools_find(&e->pg_restore, "pg_restore", o->bindir, 0)) < 0) ||
		 (rc = pgarchive_item_to_file(&e->schema_file, o->repo, e->m, e->db.schema_item)) < 0 ||
		 (e->sel != NULL &&
		  (rc = pgarchive_toc_list(&e->list_file, NULL, &e->pg_restore, e->schema_file, &e->cat, e->sel, false)) < 0)))
		return rc;
	if (schema && (rc = section(e, "pre-data")) < 0)
		return rc;
	if ((rc = data_write(e)) < 0)
		return rc;
	if (e->sel == NULL && e->cat.large_objects != NULL)
	{
		const char *item = json_string_value(json_object_get(e->cat.large_objects, "item"));

		if ((rc = large_objects_write(e, item ? item : "large-objects")) < 0)
			return rc;
	}
	if (schema && e->sel == NULL && (rc = event_triggers_defer(e)) < 0)
		return rc;
	if (schema && (rc = section(e, "post-data")) < 0)
		return rc;
	if (e->sel == NULL && (rc = matviews_write(e)) < 0)
		return rc;
	if (e->sel == NULL && (rc = properties_write(e, all)) < 0)
		return rc;
	if (e->evt_file != NULL)
	{
		char *rest = e->list_file;

		e->list_file = e->evt_file;
		rc = section(e, "post-data");
		e->list_file = rest;
		if (rc < 0)
			return pv_error_prefix(rc, "event triggers");
	}
	return PV_OK;
}

static int
export_run(Exp *e)
{
	const json_t *snap = json_object_get(e->db.meta, "snapshot");
	Buf b = PV_BUF_INIT;
	char *dbc = comment_safe(e->db.name);
	int rc;

	if ((rc = sink_open(&e->sink, e->o->output, e->o->compress)) < 0)
		goto done;
	buf_printf(&b, "--\n-- pgvault export of backup %s: database %s, snapshot %s (LSN %s)%s\n"
			   "-- Load it into an empty database: psql -X -v ON_ERROR_STOP=1 -d NEWDB -f FILE\n--\n\n",
			   e->res->id, dbc, jstr(snap, "time"), jstr(snap, "lsn"), e->sel ? ", selected tables" : "");
	if ((rc = sink_write(&e->sink, b.data, b.len)) < 0 || (rc = export_db(e, false)) < 0)
		goto done;
	rc = sink_str(&e->sink, "\n--\n-- pgvault export complete\n--\n");
done:
	pv_free(dbc);
	buf_free(&b);
	return rc;
}

/* CREATE DATABASE with the source's encoding and locale (owner and the rest come once connected). */
static void
database_create_sql(Buf *b, const json_t *meta, const char *name)
{
	const char *enc = json_string_value(json_object_get(meta, "encoding"));
	const char *coll = json_string_value(json_object_get(meta, "collate"));
	const char *ctype = json_string_value(json_object_get(meta, "ctype"));
	const char *prov = json_string_value(json_object_get(meta, "locale_provider"));
	const char *icu = json_string_value(json_object_get(meta, "icu_locale"));
	char *q = pglogical_quote_ident(name);

	buf_printf(b, "CREATE DATABASE %s WITH TEMPLATE = template0 ENCODING = ", q);
	pgarchive_literal(b, enc ? enc : "UTF8");
	if (coll)
	{
		buf_append_str(b, " LC_COLLATE = ");
		pgarchive_literal(b, coll);
	}
	if (ctype)
	{
		buf_append_str(b, " LC_CTYPE = ");
		pgarchive_literal(b, ctype);
	}
	if (prov && strcmp(prov, "i") == 0)
	{
		buf_append_str(b, " LOCALE_PROVIDER = icu");
		if (icu)
		{
			buf_append_str(b, " ICU_LOCALE = ");
			pgarchive_literal(b, icu);
		}
	}
	buf_append_str(b, ";\n");
	pv_free(q);
}

/*
 * The globals script of the backup, statement by statement, where a CREATE
 * ROLE or CREATE TABLESPACE runs only when no such role or tablespace
 * exists (pg_dumpall's script lets those fail, which ON_ERROR_STOP would
 * not survive: every cluster has its bootstrap role).
 */
static int
globals_write(Exp *e, const char *item)
{
	Buf script = PV_BUF_INIT, b = PV_BUF_INIT;
	PgGlobalStmt *st = NULL;
	size_t n = 0;
	int rc;

	if ((rc = pglogical_item_read_all(e->o->repo, e->m, item, &script)) < 0)
		goto done;
	pgglobals_parse(&st, &n, (const char *) script.data, script.len);
	for (size_t i = 0; i < n; i++)
	{
		const PgGlobalStmt *x = &st[i];
		bool guard = x->create && x->object != NULL && (x->kind == PGG_ROLE || x->kind == PGG_TABLESPACE);

		if (guard)
		{
			buf_printf(&b, "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.%s WHERE %s = ",
					   x->kind == PGG_ROLE ? "pg_roles" : "pg_tablespace",
					   x->kind == PGG_ROLE ? "rolname" : "spcname");
			pgarchive_literal(&b, x->object);
			buf_append_str(&b, ") AS pgvault_new \\gset\n\\if :pgvault_new\n");
		}
		buf_printf(&b, "%s;\n", x->sql);
		if (guard)
			buf_append_str(&b, "\\endif\n");
	}
	rc = sink_write(&e->sink, b.data, b.len);
done:
	pgglobals_free(st, n);
	buf_free(&script);
	buf_free(&b);
	return rc;
}

/*
 * An --all backup as one script for a new cluster (as pg_dumpall writes
 * one): the globals (pg_dumpall --globals-only's script as the backup
 * holds it), then for every database: CREATE DATABASE (not for postgres
 * and template1, which every cluster has), \connect, its script.
 */
static int
export_all(Exp *e)
{
	const json_t *meta = repo_manifest_metadata(e->m);
	const json_t *dbs = json_object_get(meta, "databases"), *g = json_object_get(meta, "globals");
	const char *gitem = json_string_value(json_object_get(g, "item"));
	Buf b = PV_BUF_INIT;
	size_t i;
	json_t *d;
	int rc;

	if (gitem == NULL)
		return pv_error_set(PV_ECORRUPT, "backup '%s' names no globals item", e->res->id);
	if ((rc = sink_open(&e->sink, e->o->output, e->o->compress)) < 0)
		goto done;
	buf_printf(&b, "--\n-- pgvault export of backup %s: every database (%zu) and the globals\n"
			   "-- Load it into a new cluster: psql -X -v ON_ERROR_STOP=1 -d postgres -f FILE\n--\n\n"
			   "--\n-- Globals: roles, memberships, role settings, tablespaces (pg_dumpall --globals-only)\n--\n\n",
			   e->res->id, json_array_size(dbs));
	if ((rc = sink_write(&e->sink, b.data, b.len)) < 0 || (rc = globals_write(e, gitem)) < 0)
		goto done;
	json_array_foreach(dbs, i, d)
	{
		const char *name = json_string_value(json_object_get(d, "database"));

		if (name == NULL)
		{
			rc = pv_error_set(PV_ECORRUPT, "backup '%s' lists a database without a name", e->res->id);
			goto done;
		}
		if ((rc = pgarchive_db(&e->db, e->m, name)) < 0)
			goto done;
		buf_reset(&b);
		{
			char *nc = comment_safe(name);

			buf_printf(&b, "\n--\n-- Database %s\n--\n\n", nc);
			pv_free(nc);
		}
		if (strcmp(name, "postgres") != 0 && strcmp(name, "template1") != 0)
			database_create_sql(&b, d, name);
		psql_connect(&b, name);
		if ((rc = sink_write(&e->sink, b.data, b.len)) < 0 || (rc = export_db(e, true)) < 0)
		{
			pv_error_prefix(rc, "database '%s'", name);
			goto done;
		}
		db_clear(e);
	}
	rc = sink_str(&e->sink, "\n--\n-- pgvault export complete\n--\n");
done:
	buf_free(&b);
	return rc;
}

int
pglogical_export(PgLogicalExportResult *out, const PgLogicalExportOpts *o)
{
	Exp e = {.o = o, .res = out};
	int64_t t0 = pglogical_now_ms();
	int rc;

	memset(out, 0, sizeof(*out));
	e.sink.fd = -1;
	if ((rc = repo_manifest_load(&e.m, o->repo, o->backup)) < 0)
		goto done;
	snprintf(out->id, sizeof(out->id), "%s", repo_manifest_id(e.m));
	if (strcmp(repo_manifest_kind(e.m), "logical") != 0)
	{
		rc = pv_error_set(PV_EUSAGE, "backup '%s' is a %s backup, not a logical one: only logical backups export"
						  " as SQL", out->id, repo_manifest_kind(e.m));
		goto done;
	}
	e.buf = pv_malloc(IO_BUF);
	if (pgarchive_is_all(e.m) && o->database == NULL)
	{
		if (o->tables.n > 0)
		{
			rc = pv_error_set(PV_EUSAGE, "--table needs --database NAME with a backup of several databases");
			goto done;
		}
		snprintf(out->database, sizeof(out->database), "*");
		rc = export_all(&e);
		goto done;
	}
	if ((rc = pgarchive_db(&e.db, e.m, o->database)) < 0)
		goto done;
	snprintf(out->database, sizeof(out->database), "%s", e.db.name);
	rc = export_run(&e);
done:
	{
		PvErrorSave err;
		int rc2;

		pv_error_save(&err);
		rc2 = e.sink.obuf != NULL || e.sink.fd >= 0 ? sink_close(&e.sink, rc == PV_OK) : PV_OK;
		if (rc == PV_OK && rc2 < 0)
			rc = rc2;
		else
			pv_error_restore(&err);
		out->bytes = e.sink.in;
		out->written = e.sink.out;
		db_clear(&e);
		pv_free(e.buf);
		pgtools_clear(&e.pg_restore);
		repo_manifest_free(e.m);
	}
	out->elapsed_ms = pglogical_now_ms() - t0;
	return rc;
}
