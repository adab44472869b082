/*
 * manifest.c: backup ids, item JSON lines, manifest objects and the
 * streaming item iterator (see manifest.h and docs/repository-format.md
 * section 7).
 *
 * The iterator holds at most one tree blob plus the unfinished line that
 * spans into the next one: memory is bounded by the blob size and the
 * longest item, not by the number of items.
 */
#include "repo/manifest.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/reader.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct RepoManifest
{
	json_t *doc;
	const char *id;
	const char *kind;
	const char *source;
	const char *host;
	const char *parent;
	PvTime start_time;
	PvTime stop_time;
	uint64_t count;
	RepoTreeRef *tree;
	size_t ntree;
};

/* ---- backup ids ---- */

void
repo_backup_id_new(char out[REPO_BACKUP_ID_LEN + 1], PvTime start)
{
	PvCalendar c;
	unsigned char rnd[2];
	int ms;

	/*
	 * The suffix is the millisecond (3 hex digits, 000..3e7) then 3 random
	 * hex digits: two backups started in the same second still sort in the
	 * order they started, and "latest" is the one that started last.
	 */
	pv_time_calendar(&c, start, "UTC");
	ms = (int) ((start / 1000) % 1000);
	if (ms < 0)
		ms += 1000;
	if (pv_random_bytes(rnd, sizeof(rnd)) < 0)
		memset(rnd, 0, sizeof(rnd));	/* uncovered: the time part still orders it */
	snprintf(out, REPO_BACKUP_ID_LEN + 1, "%04d%02d%02dT%02d%02d%02dZ-%03x%03x",
			 c.year, c.month, c.day, c.hour, c.minute, c.second, ms,
			 ((unsigned) rnd[0] << 4 | rnd[1] >> 4) & 0xfff);
}

bool
repo_backup_id_valid(const char *id)
{
	static const char shape[] = "ddddddddTddddddZ-xxxxxx";

	if (id == NULL || strlen(id) != REPO_BACKUP_ID_LEN)
		return false;
	for (size_t i = 0; i < REPO_BACKUP_ID_LEN; i++)
	{
		char c = id[i];

		switch (shape[i])
		{
			case 'd':
				if (!isdigit((unsigned char) c))
					return false;
				break;
			case 'x':
				if (!isxdigit((unsigned char) c) || isupper((unsigned char) c))
					return false;
				break;
			default:
				if (c != shape[i])
					return false;
		}
	}
	return true;
}

/* ---- items ---- */

void
repo_item_free(RepoItem *item)
{
	if (item == NULL)
		return;
	pv_free(item->name);
	pv_free(item->type);
	pv_free(item->link);
	pv_free(item->chunks);
	json_decref(item->meta);
	pv_free(item);
}

void
repo_item_to_json(const RepoItem *item, Buf *out)
{
	json_t *o = json_object();
	json_t *chunks = json_array();
	uint64_t pos = 0;
	char hex[2 * REPO_ID_LEN + 1];
	char *text;

	json_object_set_new(o, "name", json_string(item->name));
	json_object_set_new(o, "type", json_string(item->type));
	json_object_set_new(o, "size", json_integer((json_int_t) item->size));
	if (item->has_mode)
	{
		json_object_set_new(o, "mode", json_integer(item->mode));
		json_object_set_new(o, "mtime", json_integer(item->mtime));
	}
	if (item->link != NULL)
		json_object_set_new(o, "link", json_string(item->link));
	if (item->has_sha256)
	{
		pv_hex_encode(hex, item->sha256, 32);
		json_object_set_new(o, "sha256", json_string(hex));
	}
	if (item->chunk_size != 0)
		json_object_set_new(o, "chunk_size", json_integer(item->chunk_size));
	for (size_t i = 0; i < item->nchunks; i++)
	{
		const RepoChunkRef *c = &item->chunks[i];
		json_t *ref;

		repo_id_hex(hex, c->id);
		ref = json_pack("[s, I]", hex, (json_int_t) c->raw_length);
		/* An offset only where the chunk does not follow its predecessor. */
		if (c->offset != pos)
			json_array_append_new(ref, json_integer((json_int_t) c->offset));
		json_array_append_new(chunks, ref);
		pos = c->offset + c->raw_length;
	}
	json_object_set_new(o, "chunks", chunks);
	if (item->meta != NULL)
		json_object_set(o, "meta", item->meta);
	text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	buf_append_str(out, text);
	buf_append_byte(out, '\n');
	free(text);
	json_decref(o);
}

static int
item_bad(const char *name, const char *what)
{
	return pv_error_set(PV_ECORRUPT, "item '%s' is malformed: %s", name ? name : "?", what);
}

static int
item_parse_chunks(RepoItem *item, json_t *chunks)
{
	uint64_t pos = 0;
	size_t i;
	json_t *ref;

	if (!json_is_array(chunks))
		return item_bad(item->name, "no chunk list");
	item->nchunks = json_array_size(chunks);
	item->chunks = pv_calloc(item->nchunks ? item->nchunks : 1, sizeof(RepoChunkRef));
	json_array_foreach(chunks, i, ref)
	{
		RepoChunkRef *c = &item->chunks[i];
		const char *hex = json_string_value(json_array_get(ref, 0));
		json_t *len = json_array_get(ref, 1);
		json_t *off = json_array_get(ref, 2);

		if (!json_is_array(ref) || json_array_size(ref) > 3 || hex == NULL ||
			repo_id_parse(c->id, hex) < 0 || !json_is_integer(len) ||
			json_integer_value(len) <= 0 || json_integer_value(len) > UINT32_MAX ||
			(off != NULL && (!json_is_integer(off) || json_integer_value(off) < 0)))
			return item_bad(item->name, "bad chunk reference");
		c->raw_length = (uint32_t) json_integer_value(len);
		c->offset = off ? (uint64_t) json_integer_value(off) : pos;
		if (c->offset < pos)
			return item_bad(item->name, "chunks overlap");
		pos = c->offset + c->raw_length;
	}
	if (pos > item->size)
		return item_bad(item->name, "chunks extend past the item's size");
	return 0;
}

int
repo_item_parse(RepoItem **out, const char *line, size_t len)
{
	RepoItem *item = PV_NEW(RepoItem);
	json_t *o = NULL;
	json_error_t err;
	const char *s;
	json_t *v;
	int rc;

	*out = NULL;
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (o == NULL || !json_is_object(o))
	{
		rc = pv_error_set(PV_ECORRUPT, "item is not a JSON object: %s", o ? "" : err.text);
		goto done;
	}
	if ((s = json_string_value(json_object_get(o, "name"))) == NULL)
	{
		rc = item_bad(NULL, "no name");
		goto done;
	}
	item->name = pv_strdup(s);
	if ((s = json_string_value(json_object_get(o, "type"))) == NULL)
	{
		rc = item_bad(item->name, "no type");
		goto done;
	}
	item->type = pv_strdup(s);
	v = json_object_get(o, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
	{
		rc = item_bad(item->name, "no size");
		goto done;
	}
	item->size = (uint64_t) json_integer_value(v);
	if ((v = json_object_get(o, "mode")) != NULL)
	{
		if (!json_is_integer(v) || !json_is_integer(json_object_get(o, "mtime")))
		{
			rc = item_bad(item->name, "bad mode or mtime");
			goto done;
		}
		item->has_mode = true;
		item->mode = (uint32_t) json_integer_value(v);
		item->mtime = json_integer_value(json_object_get(o, "mtime"));
	}
	if ((s = json_string_value(json_object_get(o, "link"))) != NULL)
		item->link = pv_strdup(s);
	if ((v = json_object_get(o, "sha256")) != NULL)
	{
		if (!json_is_string(v) || strlen(json_string_value(v)) != 64 ||
			pv_hex_decode(item->sha256, 32, json_string_value(v)) != 0)
		{
			rc = item_bad(item->name, "bad sha256");
			goto done;
		}
		item->has_sha256 = true;
	}
	if ((v = json_object_get(o, "chunk_size")) != NULL)
		item->chunk_size = (uint32_t) json_integer_value(v);
	if ((rc = item_parse_chunks(item, json_object_get(o, "chunks"))) < 0)
		goto done;
	if ((v = json_object_get(o, "meta")) != NULL && json_is_object(v))
		item->meta = json_incref(v);
	*out = item;
	item = NULL;
	rc = 0;
done:
	json_decref(o);
	repo_item_free(item);
	return rc;
}

/* ---- manifest documents ---- */

void
repo_manifest_free(RepoManifest *m)
{
	if (m == NULL)
		return;
	json_decref(m->doc);
	pv_free(m->tree);
	pv_free(m);
}

static int
manifest_bad(const char *id, const char *what)
{
	return pv_error_set(PV_ECORRUPT, "manifest of backup '%s' is malformed: %s", id, what);
}

static PvTime
time_or_zero(const char *text)
{
	PvTime t = 0;

	if (text != NULL && pv_time_parse(&t, text, "UTC") < 0)
	{
		pv_error_clear();
		t = 0;
	}
	return t;
}

/* Check a document's shape and fill the struct from it (takes a reference). */
static int
manifest_from_doc(RepoManifest **out, json_t *doc, const char *expect_id)
{
	RepoManifest *m = PV_NEW(RepoManifest);
	json_t *items, *blobs, *b;
	json_int_t format = 0, count = 0;
	json_error_t err;
	size_t i;
	int rc;

	m->doc = json_incref(doc);
	if (json_unpack_ex(doc, &err, 0, "{s:I, s:s, s:s}", "format", &format, "id", &m->id,
					   "kind", &m->kind) != 0)
	{
		rc = manifest_bad(expect_id, err.text);
		goto done;
	}
	if (format > REPO_MANIFEST_FORMAT || format < 1)
	{
		rc = pv_error_set(PV_ECORRUPT, "manifest of backup '%s' has format %lld, this pgvault "
						  "reads %d", expect_id, (long long) format, REPO_MANIFEST_FORMAT);
		goto done;
	}
	if (!repo_backup_id_valid(m->id) || (expect_id != NULL && strcmp(m->id, expect_id) != 0))
	{
		rc = manifest_bad(expect_id, "its id does not match its name");
		goto done;
	}
	m->source = json_string_value(json_object_get(doc, "source"));
	if (m->source == NULL)
		m->source = "";
	m->host = json_string_value(json_object_get(doc, "host"));
	if (m->host == NULL)
		m->host = "";
	m->parent = json_string_value(json_object_get(doc, "parent"));
	m->start_time = time_or_zero(json_string_value(json_object_get(doc, "start_time")));
	m->stop_time = time_or_zero(json_string_value(json_object_get(doc, "stop_time")));
	items = json_object_get(doc, "items");
	if (json_unpack_ex(items, &err, 0, "{s:I, s:o}", "count", &count, "blobs", &blobs) != 0 ||
		!json_is_array(blobs) || count < 0)
	{
		rc = manifest_bad(m->id, "bad item list");
		goto done;
	}
	m->count = (uint64_t) count;
	m->ntree = json_array_size(blobs);
	m->tree = pv_calloc(m->ntree ? m->ntree : 1, sizeof(RepoTreeRef));
	json_array_foreach(blobs, i, b)
	{
		const char *hex = json_string_value(json_object_get(b, "id"));
		json_t *len = json_object_get(b, "raw_length");

		if (hex == NULL || repo_id_parse(m->tree[i].id, hex) < 0 || !json_is_integer(len) ||
			json_integer_value(len) <= 0 || json_integer_value(len) > UINT32_MAX)
		{
			rc = manifest_bad(m->id, "bad item list blob");
			goto done;
		}
		m->tree[i].raw_length = (uint32_t) json_integer_value(len);
	}
	*out = m;
	m = NULL;
	rc = 0;
done:
	repo_manifest_free(m);
	return rc;
}

typedef struct IdList
{
	char **ids;
	size_t n;
} IdList;

static int
id_list_add(const char *key, const StorageInfo *info, void *payload)
{
	IdList *l = payload;
	const char *id = key + strlen("snapshots/");

	if (!repo_backup_id_valid(id))
		return 0;	/* not ours; verify reports strangers */
	l->ids = pv_realloc(l->ids, (l->n + 1) * sizeof(char *));
	l->ids[l->n++] = pv_strdup(id);
	return 0;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

int
repo_manifest_ids(Repo *repo, char ***out, size_t *out_n)
{
	IdList l = {NULL, 0};
	int rc;

	*out = NULL;
	*out_n = 0;
	if ((rc = storage_list(repo_storage(repo), "snapshots/", id_list_add, &l)) < 0)
	{
		repo_manifest_ids_free(l.ids, l.n);
		return rc;
	}
	if (l.n > 1)
		pv_qsort(l.ids, l.n, sizeof(char *), cmp_id);
	*out = l.ids;
	*out_n = l.n;
	return 0;
}

void
repo_manifest_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pv_free(ids[i]);
	pv_free(ids);
}

/* Load by exact id. */
static int
manifest_load_id(RepoManifest **out, Repo *repo, const char *id)
{
	char key[16 + REPO_BACKUP_ID_LEN];
	Buf stored = PV_BUF_INIT;
	Buf plain = PV_BUF_INIT;
	json_t *doc = NULL;
	json_error_t err;
	int rc;

	*out = NULL;
	snprintf(key, sizeof(key), "snapshots/%s", id);
	if ((rc = storage_get(repo_storage(repo), key, &stored)) < 0)
	{
		if (rc == PV_ENOTFOUND)
			rc = pv_error_set(PV_ENOTFOUND, "no backup '%s' in repository '%s'", id,
							  repo_url(repo));
		goto done;
	}
	if ((rc = repo_meta_decode(repo, stored.data, stored.len, &plain)) < 0)
	{
		rc = pv_error_prefix(PV_ECORRUPT, "manifest of backup '%s' is corrupt", id);
		goto done;
	}
	if ((doc = json_loadb((const char *) plain.data, plain.len, 0, &err)) == NULL ||
		!json_is_object(doc))
	{
		rc = manifest_bad(id, doc ? "not a JSON object" : err.text);
		goto done;
	}
	rc = manifest_from_doc(out, doc, id);
done:
	json_decref(doc);
	buf_free(&stored);
	buf_free(&plain);
	return rc;
}

int
repo_manifest_resolve(Repo *repo, const char *spec, const char *kind, const char *source,
					  char out[REPO_BACKUP_ID_LEN + 1])
{
	char **ids = NULL;
	size_t n = 0;
	const char *match = NULL;
	int rc;

	if (strcmp(spec, "latest") != 0 && repo_backup_id_valid(spec) && kind == NULL && source == NULL)
	{
		snprintf(out, REPO_BACKUP_ID_LEN + 1, "%s", spec);
		return 0;
	}
	if ((rc = repo_manifest_ids(repo, &ids, &n)) < 0)
		return rc;
	if (strcmp(spec, "latest") == 0)
	{
		for (size_t i = n; i-- > 0 && match == NULL;)
		{
			RepoManifest *m;

			if (kind == NULL && source == NULL)
			{
				match = ids[i];
				break;
			}
			if ((rc = manifest_load_id(&m, repo, ids[i])) < 0)
			{
				if (rc == PV_ENOTFOUND)	/* expired meanwhile */
					continue;
				goto done;
			}
			if ((kind == NULL || strcmp(kind, m->kind) == 0) &&
				(source == NULL || strcmp(source, m->source) == 0))
				match = ids[i];
			repo_manifest_free(m);
		}
	}
	else if (strlen(spec) >= 8)
	{
		for (size_t i = 0; i < n; i++)
		{
			if (strncmp(ids[i], spec, strlen(spec)) != 0)
				continue;
			if (match != NULL)
			{
				rc = pv_error_set(PV_EUSAGE, "backup id '%s' is ambiguous: it matches '%s' and "
								  "'%s'", spec, match, ids[i]);
				goto done;
			}
			match = ids[i];
		}
	}
	if (match == NULL)
	{
		rc = pv_error_set(PV_ENOTFOUND, "no backup '%s'%s%s%s in repository '%s'", spec,
						  kind ? " of kind " : "", kind ? kind : "", source ? " for that source" : "",
						  repo_url(repo));
		goto done;
	}
	snprintf(out, REPO_BACKUP_ID_LEN + 1, "%s", match);
	rc = 0;
done:
	repo_manifest_ids_free(ids, n);
	return rc;
}

int
repo_manifest_load(RepoManifest **out, Repo *repo, const char *spec)
{
	char id[REPO_BACKUP_ID_LEN + 1];
	int rc;

	*out = NULL;
	if ((rc = repo_manifest_resolve(repo, spec, NULL, NULL, id)) < 0)
		return rc;
	return manifest_load_id(out, repo, id);
}

const char *
repo_manifest_id(const RepoManifest *m)
{
	return m->id;
}

const char *
repo_manifest_kind(const RepoManifest *m)
{
	return m->kind;
}

const char *
repo_manifest_source(const RepoManifest *m)
{
	return m->source;
}

const char *
repo_manifest_host(const RepoManifest *m)
{
	return m->host;
}

const char *
repo_manifest_parent(const RepoManifest *m)
{
	return m->parent;
}

PvTime
repo_manifest_start_time(const RepoManifest *m)
{
	return m->start_time;
}

PvTime
repo_manifest_stop_time(const RepoManifest *m)
{
	return m->stop_time;
}

uint64_t
repo_manifest_item_count(const RepoManifest *m)
{
	return m->count;
}

const json_t *
repo_manifest_json(const RepoManifest *m)
{
	return m->doc;
}

const json_t *
repo_manifest_metadata(const RepoManifest *m)
{
	return json_object_get(m->doc, "metadata");
}

const json_t *
repo_manifest_totals(const RepoManifest *m)
{
	return json_object_get(m->doc, "totals");
}

const RepoTreeRef *
repo_manifest_tree(const RepoManifest *m, size_t *out_n)
{
	*out_n = m->ntree;
	return m->tree;
}

int
repo_manifest_write(Repo *repo, const json_t *doc)
{
	RepoManifest *m = NULL;
	Buf stored = PV_BUF_INIT;
	char key[16 + REPO_BACKUP_ID_LEN];
	char *text = NULL;
	int rc;

	if ((rc = manifest_from_doc(&m, (json_t *) doc, NULL)) < 0)
		goto done;
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if ((rc = repo_meta_encode(repo, text, strlen(text), &stored)) < 0)
		goto done;
	snprintf(key, sizeof(key), "snapshots/%s", m->id);
	rc = storage_put(repo_storage(repo), key, stored.data, stored.len, STORAGE_PUT_NO_OVERWRITE);
	if (rc == PV_EEXISTS)
		rc = pv_error_set(PV_EEXISTS, "backup '%s' already exists in repository '%s'", m->id,
						  repo_url(repo));
	else if (rc < 0)
		rc = pv_error_prefix(rc, "cannot write the manifest of backup '%s'", m->id);
done:
	free(text);
	buf_free(&stored);
	repo_manifest_free(m);
	return rc;
}

int
repo_manifest_delete(Repo *repo, const char *id)
{
	char key[16 + REPO_BACKUP_ID_LEN];
	int rc;

	if (!repo_backup_id_valid(id))
		return pv_error_set(PV_EUSAGE, "'%s' is not a backup id", id);
	snprintf(key, sizeof(key), "snapshots/%s", id);
	rc = storage_delete(repo_storage(repo), key);
	if (rc == PV_ENOTFOUND)
		rc = pv_error_set(PV_ENOTFOUND, "no backup '%s' in repository '%s'", id, repo_url(repo));
	return rc;
}

/* ---- item iteration ---- */

struct RepoItemIter
{
	Repo *repo;
	char backup[REPO_BACKUP_ID_LEN + 1];
	RepoTreeRef *tree;
	size_t ntree;
	size_t next_blob;
	uint64_t count;
	uint64_t seen;
	Buf pending;				/* pending[start..len): bytes of the list not yet returned */
	size_t start;
	size_t scan;				/* no '\n' in pending[start..scan) */
	RepoItem *cur;
};

int
repo_item_iter_new(RepoItemIter **out, Repo *repo, const RepoManifest *m)
{
	RepoItemIter *it = PV_NEW(RepoItemIter);

	it->repo = repo;
	snprintf(it->backup, sizeof(it->backup), "%s", m->id);
	it->ntree = m->ntree;
	it->tree = pv_malloc((m->ntree ? m->ntree : 1) * sizeof(RepoTreeRef));
	memcpy(it->tree, m->tree, m->ntree * sizeof(RepoTreeRef));
	it->count = m->count;
	*out = it;
	return 0;
}

void
repo_item_iter_free(RepoItemIter *it)
{
	if (it == NULL)
		return;
	repo_item_free(it->cur);
	buf_free(&it->pending);
	pv_free(it->tree);
	pv_free(it);
}

int
repo_item_iter_next(RepoItemIter *it, const RepoItem **out)
{
	char context[64 + REPO_BACKUP_ID_LEN];
	unsigned char *nl;
	size_t linelen;
	int rc;

	*out = NULL;
	repo_item_free(it->cur);
	it->cur = NULL;
	snprintf(context, sizeof(context), "backup %s, item list", it->backup);
	for (;;)
	{
		if (it->scan < it->start)
			it->scan = it->start;
		nl = it->pending.len > it->scan ?
			memchr(it->pending.data + it->scan, '\n', it->pending.len - it->scan) : NULL;
		if (nl != NULL)
			break;
		if (it->next_blob == it->ntree)
		{
			if (it->pending.len > it->start)
				return pv_error_set(PV_ECORRUPT, "item list of backup '%s' ends inside an item",
									it->backup);
			if (it->seen != it->count)
				return pv_error_set(PV_ECORRUPT, "item list of backup '%s' has %llu items, its "
									"manifest says %llu", it->backup,
									(unsigned long long) it->seen, (unsigned long long) it->count);
			return 0;
		}
		/* Compact only when more is needed: one move per blob, not per line. */
		buf_consume(&it->pending, it->start);
		it->start = 0;
		it->scan = it->pending.len;
		if ((rc = repo_chunk_fetch(it->repo, it->tree[it->next_blob].id, &it->pending, context)) < 0)
			return rc;
		it->next_blob++;
	}
	linelen = (size_t) (nl - (it->pending.data + it->start));
	rc = repo_item_parse(&it->cur, (const char *) it->pending.data + it->start, linelen);
	it->start += linelen + 1;
	it->scan = it->start;
	if (rc < 0)
		return pv_error_prefix(rc, "backup '%s'", it->backup);
	it->seen++;
	*out = it->cur;
	return 0;
}

int
repo_manifest_find_item(RepoItem **out, Repo *repo, const RepoManifest *m, const char *name)
{
	RepoItemIter *it = NULL;
	const RepoItem *item;
	int rc;

	*out = NULL;
	repo_item_iter_new(&it, repo, m);
	while ((rc = repo_item_iter_next(it, &item)) == 0 && item != NULL)
	{
		if (strcmp(item->name, name) == 0)
		{
			*out = it->cur;
			it->cur = NULL;
			break;
		}
	}
	if (rc == 0 && *out == NULL)
		rc = pv_error_set(PV_ENOTFOUND, "backup '%s' has no item '%s'", m->id, name);
	repo_item_iter_free(it);
	return rc;
}
