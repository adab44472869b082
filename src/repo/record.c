/*
 * record.c: reading, checking and writing the repository's "replaced
 * whole" records (see record.h).  Nothing here knows an entry format.
 */
#include "repo/record.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "storage/storage.h"

#include <string.h>

int
repo_record_damaged(const RepoRecordKind *k, const char *why)
{
	/* why may be the message pv_error_set is about to replace */
	char *copy = pv_strdup(why);
	int rc = pv_error_set(PV_ECORRUPT, "%s '%s' is damaged: %s", k->what, k->key, copy);

	pv_free(copy);
	return rc;
}

int
repo_record_parse(json_t **out_doc, const json_t **out_items, const RepoRecordKind *k,
				  const char *text, size_t len)
{
	json_t *doc = NULL;
	const char *format;
	int64_t version;
	int rc;

	*out_doc = NULL;
	*out_items = NULL;
	if ((rc = pv_json_parse(&doc, text, len, k->key)) < 0)
		return repo_record_damaged(k, pv_error_msg());
	if (!json_is_object(doc) || pv_json_get_str(&format, doc, "format") < 0 ||
		strcmp(format, k->format) != 0)
	{
		Buf why = PV_BUF_INIT;

		buf_printf(&why, "it is not a %s (no \"format\": \"%s\")", k->what, k->format);
		rc = repo_record_damaged(k, buf_cstr(&why));
		buf_free(&why);
		goto done;
	}
	if ((rc = pv_json_get_int(&version, doc, "version")) < 0 ||
		(rc = pv_json_get_array(out_items, doc, k->items)) < 0)
	{
		rc = repo_record_damaged(k, pv_error_msg());
		goto done;
	}
	if (version != k->version)
	{
		rc = pv_error_set(PV_ECORRUPT, "%s '%s' has version %lld, this pgvault reads version %d",
						  k->what, k->key, (long long) version, k->version);
		goto done;
	}
	*out_doc = doc;
	doc = NULL;
done:
	if (rc < 0)
		*out_items = NULL;
	json_decref(doc);
	return rc;
}

int
repo_record_read(Buf *out, bool *out_found, Repo *repo, const RepoRecordKind *k)
{
	Buf stored = PV_BUF_INIT;
	int rc;

	*out_found = false;
	rc = storage_get(repo_storage(repo), k->key, &stored);
	if (rc == PV_ENOTFOUND)
	{
		pv_error_clear();
		rc = PV_OK;
	}
	else if (rc < 0)
		rc = pv_error_prefix(rc, "cannot read the %s '%s'", k->what, k->key);
	else if ((rc = repo_meta_decode(repo, stored.data, stored.len, out)) < 0)
		rc = repo_record_damaged(k, pv_error_msg());
	else
		*out_found = true;
	buf_free(&stored);
	return rc;
}

int
repo_record_write(Repo *repo, const RepoRecordKind *k, const Buf *text)
{
	int rc = repo_meta_put(repo, k->key, text->data, text->len, 0);

	if (rc < 0)
		rc = pv_error_prefix(rc, "cannot write the %s '%s'", k->what, k->key);
	return rc;
}
