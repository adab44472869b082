/*
 * archive.c: see archive.h.
 */
#include "pg/logical/archive.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/logical/logical.h"
#include "pg/logical/toc.h"
#include "pg/logical/util.h"
#include "repo/reader.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- databases ---- */

bool
pgarchive_is_all(const RepoManifest *m)
{
	return json_is_true(json_object_get(repo_manifest_metadata(m), "all"));
}

bool
pgarchive_holds_database(const RepoManifest *m, const char *name)
{
	const json_t *meta = repo_manifest_metadata(m);
	const json_t *d;
	size_t i;

	if (!pgarchive_is_all(m))
		return json_is_string(json_object_get(meta, "database")) &&
			strcmp(json_string_value(json_object_get(meta, "database")), name) == 0;
	json_array_foreach(json_object_get(meta, "databases"), i, d)
		if (json_is_string(json_object_get(d, "database")) &&
			strcmp(json_string_value(json_object_get(d, "database")), name) == 0)
		return true;
	return false;
}

static void
db_fill(PgArchiveDb *out, const json_t *meta)
{
	const char *prefix = json_string_value(json_object_get(meta, "prefix"));
	const char *cat = json_string_value(json_object_get(meta, "catalog_item"));
	const char *sch = json_string_value(json_object_get(meta, "schema_item"));

	out->meta = meta;
	out->name = json_string_value(json_object_get(meta, "database"));
	if (out->name == NULL)
		out->name = "";
	out->prefix = prefix ? prefix : "";
	snprintf(out->catalog_item, sizeof(out->catalog_item), "%s", cat ? cat : "catalog");
	if (sch != NULL)
		snprintf(out->schema_item, sizeof(out->schema_item), "%s", sch);
	else if (json_is_true(json_object_get(meta, "data_only")))
		out->schema_item[0] = '\0';
	else
		snprintf(out->schema_item, sizeof(out->schema_item), "%sschema", out->prefix);
}

int
pgarchive_db(PgArchiveDb *out, const RepoManifest *m, const char *name)
{
	const json_t *meta = repo_manifest_metadata(m);
	const json_t *dbs = json_object_get(meta, "databases");
	Buf names = PV_BUF_INIT;
	size_t i;
	json_t *d;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!pgarchive_is_all(m))
	{
		const char *db = json_string_value(json_object_get(meta, "database"));

		if (name != NULL && (db == NULL || strcmp(db, name) != 0))
			return pv_error_set(PV_ENOTFOUND, "backup '%s' holds database '%s', not '%s'", repo_manifest_id(m),
								db ? db : "?", name);
		db_fill(out, meta);
		return PV_OK;
	}
	if (!json_is_array(dbs))
		return pv_error_set(PV_ECORRUPT, "backup '%s' has no list of databases", repo_manifest_id(m));
	json_array_foreach(dbs, i, d)
	{
		const char *n = json_string_value(json_object_get(d, "database"));

		if (n == NULL)
			continue;
		if (name != NULL && strcmp(n, name) == 0)
		{
			db_fill(out, d);
			buf_free(&names);
			return PV_OK;
		}
		buf_printf(&names, "%s%s", names.len ? ", " : "", n);
	}
	if (name == NULL)
		rc = pv_error_set(PV_EUSAGE, "backup '%s' holds several databases: say which with --database", repo_manifest_id(m));
	else
		rc = pv_error_set(PV_ENOTFOUND, "backup '%s' holds no database '%s'", repo_manifest_id(m), name);
	pv_error_hint("its databases: %s", names.len ? buf_cstr(&names) : "(none)");
	buf_free(&names);
	return rc;
}

/* ---- the catalog ---- */

static int
catalog_collect(const json_t *e, void *payload)
{
	PgCatalog *c = payload;
	const char *kind = json_string_value(json_object_get(e, "kind"));

	if (kind == NULL)
		return pv_error_set(PV_ECORRUPT, "catalog entry without a kind");
	if (strcmp(kind, "table") == 0)
		json_array_append(c->tables, (json_t *) e);
	else if (strcmp(kind, "sequence") == 0)
		json_array_append(c->sequences, (json_t *) e);
	else if (strcmp(kind, "matview") == 0)
		json_array_append(c->matviews, (json_t *) e);
	else if (strcmp(kind, "large_objects") == 0)
	{
		json_decref(c->large_objects);
		c->large_objects = json_incref((json_t *) e);
	}
	return PV_OK;
}

int
pgcatalog_load(PgCatalog *out, Repo *repo, const RepoManifest *m, const PgArchiveDb *db)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->tables = json_array();
	out->sequences = json_array();
	out->matviews = json_array();
	if ((rc = pglogical_catalog_foreach_item(repo, m, db->catalog_item, catalog_collect, out)) < 0)
		pgcatalog_clear(out);
	return rc;
}

void
pgcatalog_clear(PgCatalog *c)
{
	json_decref(c->tables);
	json_decref(c->sequences);
	json_decref(c->matviews);
	json_decref(c->large_objects);
	memset(c, 0, sizeof(*c));
}

static bool
pattern_match(regex_t *re, const char *s)
{
	return re == NULL || regexec(re, s, 0, NULL, 0) == 0;
}

static int
pattern_compile(regex_t **out, regex_t *storage, const char *pattern, const char *src)
{
	int e;

	*out = NULL;
	if (pattern == NULL)
		return PV_OK;
	if ((e = regcomp(storage, pattern, REG_EXTENDED | REG_NOSUB)) != 0)
	{
		char msg[256];

		regerror(e, storage, msg, sizeof(msg));
		return pv_error_set(PV_EUSAGE, "invalid pattern '%s': %s", src, msg);
	}
	*out = storage;
	return PV_OK;
}

/* The index in c->tables of the table schema.name, or the table count. */
static size_t
table_find(const PgCatalog *c, const char *schema, const char *name)
{
	size_t i;
	json_t *t;

	json_array_foreach(c->tables, i, t)
	{
		const char *ts = json_string_value(json_object_get(t, "schema"));
		const char *tn = json_string_value(json_object_get(t, "name"));

		if (ts && tn && schema && name && strcmp(ts, schema) == 0 && strcmp(tn, name) == 0)
			return i;
	}
	return json_array_size(c->tables);
}

/*
 * A partitioned table is nothing without its partitions: a --clean drops
 * them with it, and its rows are theirs.  Select the partitions (at any
 * depth) of every selected table.  Catalogs older than "partition_of" have
 * nothing to go by and keep the selection as it is.
 */
static void
select_partitions(const PgCatalog *c, bool *sel)
{
	size_t n = json_array_size(c->tables);
	bool changed = true;

	while (changed)
	{
		changed = false;
		for (size_t i = 0; i < n; i++)
		{
			const json_t *parent = json_object_get(json_array_get(c->tables, i), "partition_of");
			size_t p;

			if (sel[i] || parent == NULL)
				continue;
			p = table_find(c, json_string_value(json_object_get(parent, "schema")),
						   json_string_value(json_object_get(parent, "name")));
			if (p < n && sel[p])
				sel[i] = changed = true;
		}
	}
}

int
pgcatalog_select(bool **out_sel, const PgCatalog *c, const PgArchiveDb *db, const PgPatterns *patterns)
{
	size_t n = json_array_size(c->tables);
	bool *sel = pv_calloc(n + 1, sizeof(bool));
	const json_t *path = json_object_get(db->meta, "search_path");
	int rc = PV_OK;

	for (int k = 0; k < patterns->n && rc == PV_OK; k++)
	{
		char *dbre = NULL, *sre = NULL, *nre = NULL;
		regex_t rs, rn, rd, *ps = NULL, *pn = NULL, *pd = NULL;
		size_t matched = 0;

		if ((rc = pgfilter_pattern_regex(&dbre, &sre, &nre, patterns->v[k], 2)) < 0 ||
			(rc = pattern_compile(&pd, &rd, dbre, patterns->v[k])) < 0 ||
			(rc = pattern_compile(&ps, &rs, sre, patterns->v[k])) < 0 ||
			(rc = pattern_compile(&pn, &rn, nre, patterns->v[k])) < 0)
			goto next;
		if (!pattern_match(pd, db->name))
		{
			rc = pv_error_set(PV_EUSAGE, "cross-database references are not implemented: %s", patterns->v[k]);
			goto next;
		}
		for (size_t i = 0; i < n; i++)
		{
			const json_t *t = json_array_get(c->tables, i);
			const char *schema = json_string_value(json_object_get(t, "schema"));
			const char *name = json_string_value(json_object_get(t, "name"));
			bool visible = false;

			if (schema == NULL || name == NULL)
				continue;
			if (sre == NULL && pgfilter_pattern_dots(patterns->v[k]) == 0)
			{
				/* unqualified: the default search_path's schemas, as pg_dump -t */
				if (json_is_array(path))
				{
					size_t j;
					json_t *v;

					json_array_foreach(path, j, v)
						if (json_is_string(v) && strcmp(json_string_value(v), schema) == 0)
							visible = true;
				}
				else
					visible = strcmp(schema, "public") == 0;
				if (!visible)
					continue;
			}
			if (pattern_match(ps, schema) && pattern_match(pn, name))
			{
				sel[i] = true;
				matched++;
			}
		}
		if (matched == 0)
			rc = pv_error_set(PV_ENOTFOUND, "no matching tables were found for pattern '%s'", patterns->v[k]);
next:
		if (pd)
			regfree(pd);
		if (ps)
			regfree(ps);
		if (pn)
			regfree(pn);
		pv_free(dbre);
		pv_free(sre);
		pv_free(nre);
	}
	if (rc < 0)
	{
		pv_free(sel);
		sel = NULL;
	}
	else
		select_partitions(c, sel);
	*out_sel = sel;
	return rc;
}

bool
pgcatalog_seq_selected(const PgCatalog *c, const bool *sel, const json_t *seq)
{
	const char *schema = json_string_value(json_object_get(seq, "schema"));
	const char *owner = json_string_value(json_object_get(seq, "owned_by"));
	size_t i;
	json_t *t;

	if (schema == NULL || owner == NULL)
		return false;
	json_array_foreach(c->tables, i, t)
		if (sel[i] && strcmp(json_string_value(json_object_get(t, "schema")), schema) == 0 &&
			strcmp(json_string_value(json_object_get(t, "name")), owner) == 0)
			return true;
	return false;
}

/* ---- the schema archive ---- */

int
pgarchive_item_to_file(char **out_path, Repo *repo, const RepoManifest *m, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	RepoItem *item = NULL;
	RepoReader *rd = NULL;
	char *buf = pv_malloc(256 * 1024);
	char *path = pv_asprintf("%s/pgvault-schema-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	int fd;
	int rc;

	*out_path = NULL;
	if ((fd = mkstemp(path)) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot create a temporary file in '%s'", tmp && tmp[0] ? tmp : "/tmp");
		pv_free(path);
		pv_free(buf);
		return rc;
	}
	if ((rc = repo_manifest_find_item(&item, repo, m, name)) < 0 ||
		(rc = repo_reader_open(&rd, repo, m, item, NULL)) < 0)
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
				rc = pv_error_errno(PV_EIO, errno, "writing '%s'", path);
				goto done;
			}
			off += (size_t) w;
		}
	}
	rc = PV_OK;
done:
	close(fd);
	repo_reader_free(rd);
	repo_item_free(item);
	pv_free(buf);
	if (rc < 0)
	{
		unlink(path);
		pv_free(path);
	}
	else
		*out_path = path;
	return rc;
}

int
pgarchive_pg_restore(const PgTool *pg_restore, const char *const *args, const char *archive,
					 const char *password, Buf *capture)
{
	char *argv[40];
	int argc = 0;
	PgChild ch;
	int rc;

	argv[argc++] = pg_restore->path;
	for (int i = 0; args[i] != NULL && argc < 38; i++)
		argv[argc++] = (char *) args[i];
	argv[argc++] = (char *) archive;
	argv[argc] = NULL;
	if ((rc = pglogical_child_start(&ch, argv, password, capture != NULL)) < 0)
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

/* The index in c->tables of the j-th selected table. */
static size_t
table_index(const PgCatalog *c, const bool *sel, size_t j)
{
	for (size_t i = 0; i < json_array_size(c->tables); i++)
		if (sel[i] && j-- == 0)
			return i;
	return json_array_size(c->tables);
}

/* The {"schema","name","owner"} objects of array a (schema may be absent). */
static PgTocObject *
objects_of(const json_t *a, size_t *n)
{
	PgTocObject *v = pv_calloc(json_array_size(a) + 1, sizeof(PgTocObject));
	size_t i;
	json_t *x;

	*n = 0;
	json_array_foreach(a, i, x)
	{
		const char *name = json_string_value(json_object_get(x, "name"));

		if (name != NULL)
			v[(*n)++] = (PgTocObject) {.schema = json_string_value(json_object_get(x, "schema")), .name = name,
									   .owner = json_string_value(json_object_get(x, "owner"))};
	}
	return v;
}

static const char **
strings_of(const json_t *a, size_t *n)
{
	const char **v = pv_calloc(json_array_size(a) + 1, sizeof(char *));
	size_t i;
	json_t *x;

	*n = 0;
	json_array_foreach(a, i, x)
		if (json_is_string(x))
			v[(*n)++] = json_string_value(x);
	return v;
}

int
pgarchive_toc_list(char **out_path, size_t *out_kept, const PgTool *pg_restore, const char *archive,
				   const PgCatalog *c, const bool *sel, bool with_referencing)
{
	const char *args[] = {"--list", NULL};
	size_t nt = 0, nfk = 0, kept;
	PgTocTable *ts = NULL;
	PgTocFk *fks = NULL;
	Buf list = PV_BUF_INIT, keep = PV_BUF_INIT;
	bool old_catalog = false;
	const char *tmp = getenv("TMPDIR");
	char *path = NULL;
	FILE *f = NULL;
	size_t i;
	json_t *t;
	int rc;

	*out_path = NULL;
	if ((rc = pgarchive_pg_restore(pg_restore, args, archive, NULL, &list)) < 0)
		goto done;
	json_array_foreach(c->tables, i, t)
	{
		PgTocTable *x;
		size_t k;
		json_t *s;

		if (!sel[i])
			continue;
		ts = pv_realloc(ts, sizeof(PgTocTable) * (nt + 1));
		x = &ts[nt++];
		memset(x, 0, sizeof(*x));
		x->schema = json_string_value(json_object_get(t, "schema"));
		x->name = json_string_value(json_object_get(t, "name"));
		x->owner = json_string_value(json_object_get(t, "owner"));
		if (json_object_get(t, "indexes") == NULL)
			old_catalog = true;
		x->indexes = strings_of(json_object_get(t, "indexes"), &x->nindexes);
		x->publications = objects_of(json_object_get(t, "publications"), &x->npublications);
		x->statistics = objects_of(json_object_get(t, "statistics"), &x->nstatistics);
		x->sequences = pv_calloc(json_array_size(c->sequences) + 1, sizeof(char *));
		json_array_foreach(c->sequences, k, s)
		{
			const char *ss = json_string_value(json_object_get(s, "schema"));
			const char *ob = json_string_value(json_object_get(s, "owned_by"));

			if (ss && ob && strcmp(ss, x->schema) == 0 && strcmp(ob, x->name) == 0)
				((const char **) x->sequences)[x->nsequences++] = json_string_value(json_object_get(s, "name"));
		}
		if (with_referencing)
		{
			json_t *fk;

			json_array_foreach(json_object_get(t, "referenced_by"), k, fk)
			{
				const char *fs = json_string_value(json_object_get(fk, "schema"));
				const char *ft = json_string_value(json_object_get(fk, "table"));
				bool inside = false;
				size_t j;
				json_t *u;

				if (fs == NULL || ft == NULL)
					continue;
				/* a foreign key of another selected table comes with that table */
				json_array_foreach(c->tables, j, u)
					if (sel[j] && strcmp(json_string_value(json_object_get(u, "schema")), fs) == 0 &&
						strcmp(json_string_value(json_object_get(u, "name")), ft) == 0)
						inside = true;
				if (inside)
					continue;
				fks = pv_realloc(fks, sizeof(PgTocFk) * (nfk + 1));
				fks[nfk++] = (PgTocFk) {.schema = fs, .table = ft,
										.name = json_string_value(json_object_get(fk, "name")),
										.owner = json_string_value(json_object_get(fk, "owner"))};
			}
		}
	}
	/* the views built on them: dropped by --clean with them, so made again with them */
	for (size_t j = 0, ntab = nt; with_referencing && j < ntab; j++)
	{
		json_t *v;
		size_t k;

		json_array_foreach(json_object_get(json_array_get(c->tables, table_index(c, sel, j)), "dependents"), k, v)
		{
			const char *vs = json_string_value(json_object_get(v, "schema"));
			const char *vn = json_string_value(json_object_get(v, "name"));
			bool dup = false;

			if (vs == NULL || vn == NULL)
				continue;
			for (size_t x = ntab; x < nt && !dup; x++)
				dup = strcmp(ts[x].schema, vs) == 0 && strcmp(ts[x].name, vn) == 0;
			if (dup)
				continue;
			ts = pv_realloc(ts, sizeof(PgTocTable) * (nt + 1));
			memset(&ts[nt], 0, sizeof(PgTocTable));
			ts[nt].schema = vs;
			ts[nt].name = vn;
			ts[nt].owner = json_string_value(json_object_get(v, "owner"));
			ts[nt].indexes = strings_of(json_object_get(v, "indexes"), &ts[nt].nindexes);
			ts[nt].sequences = pv_calloc(1, sizeof(char *));
			ts[nt].view = true;
			nt++;
		}
	}
	if (old_catalog)
		pv_log_warn("this backup was made by an older pgvault that did not record index names: the selected"
					" tables' indexes (other than constraints) are not restored");
	kept = pgtoc_filter(&keep, buf_cstr(&list), ts, nt, fks, nfk);
	path = pv_asprintf("%s/pgvault-list-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	{
		int fd = mkstemp(path);

		if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		{
			rc = pv_error_errno(PV_EIO, errno, "cannot create a temporary file in '%s'", tmp && tmp[0] ? tmp : "/tmp");
			if (fd >= 0)
			{
				close(fd);
				unlink(path);
			}
			pv_free(path);
			path = NULL;
			goto done;
		}
	}
	if (fwrite(keep.data ? (const void *) keep.data : "", 1, keep.len, f) != keep.len || fclose(f) != 0)
	{
		f = NULL;
		rc = pv_error_errno(PV_EIO, errno, "writing '%s'", path);
		unlink(path);
		pv_free(path);
		path = NULL;
		goto done;
	}
	f = NULL;
	pv_log_debug("pg_restore list: %zu entries kept for %zu tables", kept, nt);
	if (out_kept)
		*out_kept = kept;
	*out_path = path;
	rc = PV_OK;
done:
	for (i = 0; i < nt; i++)
	{
		pv_free((void *) ts[i].indexes);
		pv_free((void *) ts[i].sequences);
		pv_free((void *) ts[i].publications);
		pv_free((void *) ts[i].statistics);
	}
	pv_free(ts);
	pv_free(fks);
	buf_free(&list);
	buf_free(&keep);
	return rc;
}

/* ---- large objects ---- */

void
pgarchive_literal(Buf *out, const char *s)
{
	buf_append_byte(out, '\'');
	for (const char *p = s; *p; p++)
	{
		if (*p == '\'')
			buf_append_byte(out, '\'');
		buf_append_byte(out, (unsigned char) *p);
	}
	buf_append_byte(out, '\'');
}

int
pgarchive_lo_meta_sql(Buf *out, unsigned long oid, const char *json, bool no_owner, bool no_privileges)
{
	json_t *m = NULL;
	const char *owner = NULL, *comment = NULL;
	const json_t *acl;
	int rc;

	if ((rc = pv_json_parse(&m, json, strlen(json), "large object metadata")) < 0)
		return rc;
	(void) pv_json_opt_str(&owner, m, "owner", NULL);
	(void) pv_json_opt_str(&comment, m, "comment", NULL);
	acl = json_object_get(m, "acl");
	if (owner != NULL && !no_owner)
	{
		char *q = pglogical_quote_ident(owner);

		buf_printf(out, "ALTER LARGE OBJECT %lu OWNER TO %s;\n", oid, q);
		pv_free(q);
	}
	if (comment != NULL)
	{
		buf_printf(out, "COMMENT ON LARGE OBJECT %lu IS ", oid);
		pgarchive_literal(out, comment);
		buf_append_str(out, ";\n");
	}
	if (json_is_array(acl) && !no_privileges)
	{
		size_t i;
		json_t *a;

		buf_printf(out, "REVOKE ALL ON LARGE OBJECT %lu FROM PUBLIC;\n", oid);
		if (owner != NULL && !no_owner)
		{
			char *q = pglogical_quote_ident(owner);

			buf_printf(out, "REVOKE ALL ON LARGE OBJECT %lu FROM %s;\n", oid, q);
			pv_free(q);
		}
		json_array_foreach(acl, i, a)
		{
			const char *grantee = json_string_value(json_object_get(a, "grantee"));
			const char *priv = json_string_value(json_object_get(a, "privilege"));

			/* grantee is already quoted (or PUBLIC); privileges are SELECT or UPDATE */
			if (grantee == NULL || priv == NULL || (strcmp(priv, "SELECT") != 0 && strcmp(priv, "UPDATE") != 0))
				continue;
			buf_printf(out, "GRANT %s ON LARGE OBJECT %lu TO %s%s;\n", priv, oid, grantee,
					   json_is_true(json_object_get(a, "grantable")) ? " WITH GRANT OPTION" : "");
		}
	}
	json_decref(m);
	return PV_OK;
}
