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
 *   6. REFRESH of the populated materialized views.
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
				   "SELECT pg_catalog.set_config('search_path', '', false);\n\n");
	if ((rc = sink_write(&e->sink, b.data, b.len)) < 0)
		goto done;
	json_array_foreach(e->cat.tables, i, t)
	{
		const char *schema = json_string_value(json_object_get(t, "schema"));
		const char *name = json_string_value(json_object_get(t, "name"));
		const char *cols = json_string_value(json_object_get(t, "columns"));
		char *q;
		size_t k;
		json_t *p;

		if ((e->sel && !e->sel[i]) || !json_is_true(json_object_get(t, "data")) || !schema || !name)
			continue;
		q = pglogical_qualify(schema, name);
		buf_reset(&b);
		buf_printf(&b, "--\n-- Data for %s (%lld rows)\n--\n\n", q,
				   (long long) json_integer_value(json_object_get(t, "rows")));
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

static int
export_run(Exp *e)
{
	const PgLogicalExportOpts *o = e->o;
	const json_t *snap = json_object_get(e->db.meta, "snapshot");
	bool schema = e->db.schema_item[0] != '\0';
	Buf b = PV_BUF_INIT;
	int rc;

	if ((rc = pgcatalog_load(&e->cat, o->repo, e->m, &e->db)) < 0)
		goto done;
	if (o->tables.n > 0 && (rc = pgcatalog_select(&e->sel, &e->cat, &e->db, &o->tables)) < 0)
		goto done;
	if (schema &&
		((rc = pgtools_find(&e->pg_restore, "pg_restore", o->bindir, 0)) < 0 ||
		 (rc = pgarchive_item_to_file(&e->schema_file, o->repo, e->m, e->db.schema_item)) < 0 ||
		 (e->sel != NULL &&
		  (rc = pgarchive_toc_list(&e->list_file, NULL, &e->pg_restore, e->schema_file, &e->cat, e->sel, false)) < 0)))
		goto done;
	if ((rc = sink_open(&e->sink, o->output, o->compress)) < 0)
		goto done;
	buf_printf(&b, "--\n-- pgvault export of backup %s: database %s, snapshot %s (LSN %s)%s\n"
			   "-- Load it into an empty database: psql -X -v ON_ERROR_STOP=1 -d NEWDB -f FILE\n--\n\n",
			   e->res->id, e->db.name, jstr(snap, "time"), jstr(snap, "lsn"), e->sel ? ", selected tables" : "");
	if ((rc = sink_write(&e->sink, b.data, b.len)) < 0)
		goto done;
	if (schema && (rc = section(e, "pre-data")) < 0)
		goto done;
	if ((rc = data_write(e)) < 0)
		goto done;
	if (e->sel == NULL && e->cat.large_objects != NULL)
	{
		const char *item = json_string_value(json_object_get(e->cat.large_objects, "item"));

		if ((rc = large_objects_write(e, item ? item : "large-objects")) < 0)
			goto done;
	}
	if (schema && (rc = section(e, "post-data")) < 0)
		goto done;
	if (e->sel == NULL && (rc = matviews_write(e)) < 0)
		goto done;
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
	if ((rc = pgarchive_db(&e.db, e.m, o->database)) < 0)
		goto done;
	snprintf(out->database, sizeof(out->database), "%s", e.db.name);
	e.buf = pv_malloc(IO_BUF);
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
		if (e.schema_file)
		{
			unlink(e.schema_file);
			pv_free(e.schema_file);
		}
		if (e.list_file)
		{
			unlink(e.list_file);
			pv_free(e.list_file);
		}
		pv_free(e.sel);
		pv_free(e.buf);
		pgcatalog_clear(&e.cat);
		pgtools_clear(&e.pg_restore);
		repo_manifest_free(e.m);
	}
	out->elapsed_ms = pglogical_now_ms() - t0;
	return rc;
}
