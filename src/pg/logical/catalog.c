/*
 * catalog.c: reading the catalog item of a logical backup (logical.h),
 * for restore, export, show and drills.  The catalog is small (one line per
 * table, sequence and materialized view), so it is read whole.
 */
#include "pg/logical/logical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "repo/reader.h"

#include <string.h>

int
pglogical_item_read_all(Repo *repo, const RepoManifest *m, const char *name, Buf *out)
{
	RepoItem *item = NULL;
	RepoReader *r = NULL;
	int rc;

	if ((rc = repo_manifest_find_item(&item, repo, m, name)) < 0)
		goto done;
	if ((rc = repo_reader_open(&r, repo, m, item, NULL)) < 0)
		goto done;
	for (;;)
	{
		size_t n;

		buf_reserve(out, 256 * 1024);
		if ((rc = repo_reader_read(r, out->data + out->len, out->cap - out->len - 1, &n)) < 0)
			goto done;
		if (n == 0)
			break;
		out->len += n;
		out->data[out->len] = '\0';
	}
	rc = PV_OK;
done:
	repo_reader_free(r);
	repo_item_free(item);
	return rc;
}

int
pglogical_catalog_foreach(Repo *repo, const RepoManifest *m, PgLogicalCatalogFn fn, void *payload)
{
	const json_t *meta = repo_manifest_metadata(m);
	const char *item = json_string_value(json_object_get(meta, "catalog_item"));

	if (json_is_true(json_object_get(meta, "all")))
		return pv_error_set(PV_EUSAGE, "backup '%s' holds several databases: read one database's catalog",
							repo_manifest_id(m));
	return pglogical_catalog_foreach_item(repo, m, item ? item : "catalog", fn, payload);
}

int
pglogical_catalog_foreach_item(Repo *repo, const RepoManifest *m, const char *item, PgLogicalCatalogFn fn,
							   void *payload)
{
	Buf b = PV_BUF_INIT;
	size_t pos = 0;
	int rc;

	if (strcmp(repo_manifest_kind(m), "logical") != 0)
		return pv_error_set(PV_EUSAGE, "backup '%s' is a %s backup, not a logical one",
							repo_manifest_id(m), repo_manifest_kind(m));
	if ((rc = pglogical_item_read_all(repo, m, item, &b)) < 0)
		goto done;
	while (pos < b.len)
	{
		const char *line = (const char *) b.data + pos;
		const char *nl = memchr(line, '\n', b.len - pos);
		size_t len = nl ? (size_t) (nl - line) : b.len - pos;
		json_t *e = NULL;

		pos += len + 1;
		if (len == 0)
			continue;
		if ((rc = pv_json_parse(&e, line, len, "catalog")) < 0)
			goto done;
		rc = fn(e, payload);
		json_decref(e);
		if (rc < 0)
			goto done;
	}
	rc = PV_OK;
done:
	if (rc < 0)
		pv_error_prefix(rc, "backup '%s'", repo_manifest_id(m));
	buf_free(&b);
	return rc;
}
