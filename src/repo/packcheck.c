/*
 * packcheck.c: the pack-check record (see packcheck.h for its format and
 * rules).  The set is an array of entries plus an id set mapping a pack id
 * to its place in the array; entries are sorted by id only when encoded,
 * so the stored text does not depend on the order packs were read in.
 */
#include "repo/packcheck.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "repo/maint.h"
#include "repo/record.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct RepoPackChecks
{
	RepoPackCheck *items;
	size_t n;
	size_t cap;
	RepoIdSet *ids;				/* pack id -> index in items */
};

RepoPackChecks *
repo_packchecks_new(void)
{
	RepoPackChecks *c = PV_NEW(RepoPackChecks);

	c->ids = repo_idset_new();
	return c;
}

void
repo_packchecks_free(RepoPackChecks *c)
{
	if (c == NULL)
		return;
	pv_free(c->items);
	repo_idset_free(c->ids);
	pv_free(c);
}

size_t
repo_packchecks_count(const RepoPackChecks *c)
{
	return c->n;
}

const RepoPackCheck *
repo_packchecks_at(const RepoPackChecks *c, size_t i)
{
	return &c->items[i];
}

const RepoPackCheck *
repo_packchecks_find(const RepoPackChecks *c, const unsigned char id[REPO_ID_LEN])
{
	uint32_t *num = repo_idset_find(c->ids, id);

	return num ? &c->items[*num] : NULL;
}

void
repo_packchecks_set(RepoPackChecks *c, const RepoPackCheck *e)
{
	bool added;
	uint32_t *num = repo_idset_add(c->ids, e->id, &added);

	if (added)
	{
		if (c->n == c->cap)
		{
			c->cap = c->cap ? c->cap * 2 : 64;
			c->items = pv_realloc(c->items, c->cap * sizeof(RepoPackCheck));
		}
		*num = (uint32_t) c->n++;
	}
	c->items[*num] = *e;
}

/* ---- encoding ---- */

static int
entry_cmp(const void *a, const void *b)
{
	return memcmp(((const RepoPackCheck *) a)->id, ((const RepoPackCheck *) b)->id, REPO_ID_LEN);
}

void
repo_packchecks_encode(const RepoPackChecks *c, Buf *out)
{
	RepoPackCheck *sorted = pv_malloc((c->n ? c->n : 1) * sizeof(RepoPackCheck));
	json_t *packs = json_array();
	json_t *doc;
	char t[PV_TIME_FORMAT_MAX];

	if (c->n > 0)
		memcpy(sorted, c->items, c->n * sizeof(RepoPackCheck));
	qsort(sorted, c->n, sizeof(RepoPackCheck), entry_cmp);
	for (size_t i = 0; i < c->n; i++)
	{
		char hex[2 * REPO_ID_LEN + 1];

		repo_id_hex(hex, sorted[i].id);
		json_array_append_new(packs, json_pack("{s:s, s:I, s:I, s:b}", "id", hex,
											   "time", (json_int_t) sorted[i].time,
											   "size", (json_int_t) sorted[i].size,
											   "ok", sorted[i].ok));
	}
	doc = json_pack("{s:s, s:i, s:s, s:o}", "format", REPO_PACKCHECK_FORMAT,
					"version", REPO_PACKCHECK_VERSION,
					"written", pv_time_format_utc(t, sizeof(t), pv_time_now()), "packs", packs);
	/* uncovered: pv_json_to_buf fails only on allocation failure, which aborts first */
	(void) pv_json_to_buf(out, doc, false);
	json_decref(doc);
	pv_free(sorted);
}

static const RepoRecordKind packcheck_kind = {
	REPO_PACKCHECK_KEY, "pack-check record", REPO_PACKCHECK_FORMAT, REPO_PACKCHECK_VERSION, "packs"
};

/* One element of "packs". */
static int
entry_decode(RepoPackCheck *e, const json_t *j, size_t i)
{
	const char *hex;
	int64_t time;
	uint64_t size;
	Buf why = PV_BUF_INIT;
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = pv_json_get_str(&hex, j, "id")) < 0 ||
		(rc = pv_json_get_int_range(&time, j, "time", 0, INT64_MAX)) < 0 ||
		(rc = pv_json_get_uint(&size, j, "size")) < 0 ||
		(rc = pv_json_get_bool(&e->ok, j, "ok")) < 0)
	{
		buf_printf(&why, "entry %zu: %s", i, pv_error_msg());
		goto done;
	}
	if (strlen(hex) != 2 * REPO_ID_LEN || repo_id_parse(e->id, hex) < 0)
	{
		buf_printf(&why, "entry %zu: '%s' is not a pack id", i, hex);
		goto done;
	}
	e->time = time;
	e->size = size;
done:
	if (why.len > 0)
		rc = repo_record_damaged(&packcheck_kind, buf_cstr(&why));
	buf_free(&why);
	return rc;
}

int
repo_packchecks_decode(RepoPackChecks **out, const char *text, size_t len)
{
	RepoPackChecks *c = NULL;
	json_t *doc = NULL;
	const json_t *packs;
	int rc;

	*out = NULL;
	if ((rc = repo_record_parse(&doc, &packs, &packcheck_kind, text, len)) < 0)
		return rc;
	c = repo_packchecks_new();
	for (size_t i = 0; i < json_array_size(packs); i++)
	{
		RepoPackCheck e;

		if ((rc = entry_decode(&e, json_array_get(packs, i), i)) < 0)
			goto done;
		repo_packchecks_set(c, &e);
	}
	*out = c;
	c = NULL;
done:
	repo_packchecks_free(c);
	json_decref(doc);
	return rc;
}

/* ---- storage ---- */

int
repo_packchecks_load(RepoPackChecks **out, Repo *repo)
{
	Buf text = PV_BUF_INIT;
	bool found;
	int rc;

	*out = NULL;
	if ((rc = repo_record_read(&text, &found, repo, &packcheck_kind)) < 0)
		goto done;
	if (!found)
		*out = repo_packchecks_new();
	else
		rc = repo_packchecks_decode(out, (const char *) text.data, text.len);
done:
	buf_free(&text);
	return rc;
}

int
repo_packchecks_save(RepoPackChecks *c, Repo *repo, RepoPackCheckKeepFn keep, void *payload)
{
	RepoPackChecks *stored = NULL, *kept = repo_packchecks_new();
	Buf text = PV_BUF_INIT;
	int rc;

	/* Rule 4: what another verify wrote since we loaded. */
	rc = repo_packchecks_load(&stored, repo);
	if (rc == PV_ECORRUPT)
	{
		pv_error_clear();		/* we replace it (rule 1) */
		rc = PV_OK;
	}
	else if (rc < 0)
		goto done;
	for (size_t i = 0; stored != NULL && i < stored->n; i++)
	{
		const RepoPackCheck *mine = repo_packchecks_find(c, stored->items[i].id);

		if (mine == NULL || mine->time < stored->items[i].time)
			repo_packchecks_set(c, &stored->items[i]);
	}
	/* Rule 3: entries of packs that are gone are dropped. */
	for (size_t i = 0; i < c->n; i++)
		if (keep == NULL || keep(&c->items[i], payload))
			repo_packchecks_set(kept, &c->items[i]);
	repo_packchecks_encode(kept, &text);
	if ((rc = repo_record_write(repo, &packcheck_kind, &text)) < 0)
		goto done;
	/* c becomes what was written */
	{
		RepoPackChecks tmp = *c;

		*c = *kept;
		*kept = tmp;
	}
done:
	repo_packchecks_free(stored);
	repo_packchecks_free(kept);
	buf_free(&text);
	return rc;
}
