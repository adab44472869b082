/*
 * quarantine.c: the quarantine record (see quarantine.h for its format and
 * rules).  The set is an array of (pack, id, time) kept sorted by (pack, id):
 * lookups are a binary search, done once per blob listed in every index
 * file loaded, and additions are rare (verify, after damage).
 */
#include "repo/quarantine.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/index.h"
#include "repo/record.h"
#include "repo/repo.h"

#include <jansson.h>
#include <string.h>

typedef struct QEntry
{
	unsigned char pack[REPO_ID_LEN];
	unsigned char id[REPO_ID_LEN];
	int64_t time;
} QEntry;

struct RepoQuarantine
{
	QEntry *items;				/* sorted by (pack, id) */
	size_t n;
	size_t cap;
};

RepoQuarantine *
repo_quarantine_new(void)
{
	return PV_NEW(RepoQuarantine);
}

void
repo_quarantine_free(RepoQuarantine *q)
{
	if (q == NULL)
		return;
	pv_free(q->items);
	pv_free(q);
}

size_t
repo_quarantine_count(const RepoQuarantine *q)
{
	return q ? q->n : 0;
}

static int
key_cmp(const unsigned char *pack, const unsigned char *id, const QEntry *e)
{
	int c = memcmp(pack, e->pack, REPO_ID_LEN);

	return c ? c : memcmp(id, e->id, REPO_ID_LEN);
}

/* Position of (pack, id), or where it would go; *found says which. */
static size_t
entry_find(const RepoQuarantine *q, const unsigned char *pack, const unsigned char *id, bool *found)
{
	size_t lo = 0, hi = q->n;

	while (lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(pack, id, &q->items[mid]);

		if (c == 0)
		{
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

void
repo_quarantine_add(RepoQuarantine *q, const unsigned char pack[REPO_ID_LEN],
					const unsigned char id[REPO_ID_LEN], int64_t time)
{
	bool found;
	size_t pos = entry_find(q, pack, id, &found);

	if (found)
	{
		if (time < q->items[pos].time)
			q->items[pos].time = time;
		return;
	}
	if (q->n == q->cap)
	{
		q->cap = q->cap ? q->cap * 2 : 16;
		q->items = pv_realloc(q->items, q->cap * sizeof(QEntry));
	}
	memmove(q->items + pos + 1, q->items + pos, (q->n - pos) * sizeof(QEntry));
	memcpy(q->items[pos].pack, pack, REPO_ID_LEN);
	memcpy(q->items[pos].id, id, REPO_ID_LEN);
	q->items[pos].time = time;
	q->n++;
}

bool
repo_quarantine_has(const RepoQuarantine *q, const unsigned char pack[REPO_ID_LEN],
					const unsigned char id[REPO_ID_LEN])
{
	bool found = false;

	if (q != NULL && q->n > 0)
		(void) entry_find(q, pack, id, &found);
	return found;
}

bool
repo_quarantine_has_id(const RepoQuarantine *q, const unsigned char id[REPO_ID_LEN])
{
	for (size_t i = 0; q != NULL && i < q->n; i++)
		if (memcmp(q->items[i].id, id, REPO_ID_LEN) == 0)
			return true;
	return false;
}

void
repo_quarantine_index_add(const RepoQuarantine *q, RepoIndex *idx, const unsigned char pack[REPO_ID_LEN],
						  const RepoPackEntry *entries, size_t n)
{
	RepoPackEntry *kept;
	size_t nkept = 0;

	if (repo_quarantine_count(q) == 0)
	{
		repo_index_add_pack(idx, pack, entries, n, true);
		return;
	}
	kept = pv_malloc((n ? n : 1) * sizeof(RepoPackEntry));
	for (size_t i = 0; i < n; i++)
		if (!repo_quarantine_has(q, pack, entries[i].id))
			kept[nkept++] = entries[i];
	if (nkept > 0)
		repo_index_add_pack(idx, pack, kept, nkept, true);
	pv_free(kept);
}

/* ---- encoding ---- */

static const RepoRecordKind quarantine_kind = {
	REPO_QUARANTINE_KEY, "quarantine record", REPO_QUARANTINE_FORMAT, REPO_QUARANTINE_VERSION, "blobs"
};

void
repo_quarantine_encode(const RepoQuarantine *q, Buf *out)
{
	json_t *blobs = json_array();
	json_t *doc;

	for (size_t i = 0; i < q->n; i++)
	{
		char ph[2 * REPO_ID_LEN + 1], ih[2 * REPO_ID_LEN + 1];

		repo_id_hex(ph, q->items[i].pack);
		repo_id_hex(ih, q->items[i].id);
		json_array_append_new(blobs, json_pack("{s:s, s:s, s:I}", "pack", ph, "id", ih,
											   "time", (json_int_t) q->items[i].time));
	}
	doc = json_pack("{s:s, s:i, s:o}", "format", REPO_QUARANTINE_FORMAT,
					"version", REPO_QUARANTINE_VERSION, "blobs", blobs);
	/* uncovered: pv_json_to_buf fails only on allocation failure, which aborts first */
	(void) pv_json_to_buf(out, doc, false);
	json_decref(doc);
}

static int
entry_decode(RepoQuarantine *q, const json_t *j, size_t i)
{
	const char *ph, *ih;
	int64_t time;
	unsigned char pack[REPO_ID_LEN], id[REPO_ID_LEN];
	Buf why = PV_BUF_INIT;
	int rc;

	if (!json_is_object(j))
		buf_printf(&why, "entry %zu is not an object", i);
	else if ((rc = pv_json_get_str(&ph, j, "pack")) < 0 || (rc = pv_json_get_str(&ih, j, "id")) < 0 ||
			 (rc = pv_json_get_int(&time, j, "time")) < 0)
		buf_printf(&why, "entry %zu: %s", i, pv_error_msg());
	else if (strlen(ph) != 2 * REPO_ID_LEN || repo_id_parse(pack, ph) < 0 ||
			 strlen(ih) != 2 * REPO_ID_LEN || repo_id_parse(id, ih) < 0)
		buf_printf(&why, "entry %zu: '%s' / '%s' is not a pack and blob id", i, ph, ih);
	else
		repo_quarantine_add(q, pack, id, time);
	rc = why.len > 0 ? repo_record_damaged(&quarantine_kind, buf_cstr(&why)) : PV_OK;
	buf_free(&why);
	return rc;
}

int
repo_quarantine_decode(RepoQuarantine **out, const char *text, size_t len)
{
	RepoQuarantine *q = NULL;
	json_t *doc = NULL;
	const json_t *blobs;
	int rc;

	*out = NULL;
	if ((rc = repo_record_parse(&doc, &blobs, &quarantine_kind, text, len)) < 0)
		return rc;
	q = repo_quarantine_new();
	for (size_t i = 0; i < json_array_size(blobs); i++)
		if ((rc = entry_decode(q, json_array_get(blobs, i), i)) < 0)
			goto done;
	*out = q;
	q = NULL;
done:
	repo_quarantine_free(q);
	json_decref(doc);
	return rc;
}

/* ---- storage ---- */

int
repo_quarantine_load(RepoQuarantine **out, Repo *repo)
{
	Buf text = PV_BUF_INIT;
	bool found;
	int rc;

	*out = NULL;
	if ((rc = repo_record_read(&text, &found, repo, &quarantine_kind)) < 0)
		goto done;
	if (!found)
		*out = repo_quarantine_new();
	else
		rc = repo_quarantine_decode(out, (const char *) text.data, text.len);
done:
	buf_free(&text);
	return rc;
}

int
repo_quarantine_save(RepoQuarantine *q, Repo *repo, RepoQuarantineKeepFn keep, void *payload)
{
	RepoQuarantine *stored = NULL, *kept = repo_quarantine_new();
	Buf text = PV_BUF_INIT;
	int rc;

	/* what another verify wrote since */
	rc = repo_quarantine_load(&stored, repo);
	if (rc == PV_ECORRUPT)
	{
		pv_error_clear();		/* replaced by ours */
		rc = PV_OK;
	}
	else if (rc < 0)
		goto done;
	for (size_t i = 0; stored != NULL && i < stored->n; i++)
		repo_quarantine_add(q, stored->items[i].pack, stored->items[i].id, stored->items[i].time);
	for (size_t i = 0; i < q->n; i++)
		if (keep == NULL || keep(q->items[i].pack, payload))
			repo_quarantine_add(kept, q->items[i].pack, q->items[i].id, q->items[i].time);
	repo_quarantine_encode(kept, &text);
	if ((rc = repo_record_write(repo, &quarantine_kind, &text)) < 0)
		goto done;
	{
		RepoQuarantine tmp = *q;

		*q = *kept;
		*kept = tmp;
	}
done:
	repo_quarantine_free(stored);
	repo_quarantine_free(kept);
	buf_free(&text);
	return rc;
}
