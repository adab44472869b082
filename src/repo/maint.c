/*
 * maint.c: the helpers of maint.h.
 *
 * The id set is an open-addressing table (linear probing) of u32 slots over
 * a dense array of (id, value) records.  Invariants: nslots is a power of two; a slot holds 0 (empty) or 1 + the
 * number of a record; n * 10 <= nslots * 7 after every add.  Records are
 * never removed, so foreach sees them in the order they were added.
 */
#include "repo/maint.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/blob.h"
#include "repo/manifest.h"
#include "repo/quarantine.h"
#include "repo/repo.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

typedef struct IdRecord
{
	unsigned char id[REPO_ID_LEN];
	uint32_t value;
} IdRecord;

struct RepoIdSet
{
	IdRecord *recs;
	size_t n;
	size_t cap;
	uint32_t *slots;
	size_t nslots;
};

static size_t
id_hash(const unsigned char *id)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return (size_t) h;
}

RepoIdSet *
repo_idset_new(void)
{
	RepoIdSet *s = PV_NEW(RepoIdSet);

	s->nslots = 256;
	s->slots = pv_calloc(s->nslots, sizeof(uint32_t));
	return s;
}

void
repo_idset_free(RepoIdSet *s)
{
	if (s == NULL)
		return;
	pv_free(s->recs);
	pv_free(s->slots);
	pv_free(s);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t
slot_find(const RepoIdSet *s, const unsigned char *id)
{
	size_t mask = s->nslots - 1;
	size_t i = id_hash(id) & mask;

	while (s->slots[i] != 0 && memcmp(s->recs[s->slots[i] - 1].id, id, REPO_ID_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

static void
slots_grow(RepoIdSet *s)
{
	size_t n = s->nslots * 2;
	uint32_t *slots = pv_calloc(n, sizeof(uint32_t));

	for (size_t r = 0; r < s->n; r++)
	{
		size_t i = id_hash(s->recs[r].id) & (n - 1);

		while (slots[i] != 0)
			i = (i + 1) & (n - 1);
		slots[i] = (uint32_t) r + 1;
	}
	pv_free(s->slots);
	s->slots = slots;
	s->nslots = n;
}

uint32_t *
repo_idset_add(RepoIdSet *s, const unsigned char id[REPO_ID_LEN], bool *added)
{
	size_t i = slot_find(s, id);

	if (s->slots[i] != 0)
	{
		if (added != NULL)
			*added = false;
		return &s->recs[s->slots[i] - 1].value;
	}
	if (s->n == s->cap)
	{
		s->cap = s->cap ? s->cap + s->cap / 2 : 256;
		s->recs = pv_realloc(s->recs, s->cap * sizeof(IdRecord));
	}
	memcpy(s->recs[s->n].id, id, REPO_ID_LEN);
	s->recs[s->n].value = 0;
	s->slots[i] = (uint32_t) ++s->n;
	if (added != NULL)
		*added = true;
	if (s->n * 10 > s->nslots * 7)
		slots_grow(s);
	return &s->recs[s->n - 1].value;
}

uint32_t *
repo_idset_find(const RepoIdSet *s, const unsigned char id[REPO_ID_LEN])
{
	size_t i = slot_find(s, id);

	return s->slots[i] != 0 ? &s->recs[s->slots[i] - 1].value : NULL;
}

bool
repo_idset_contains(const RepoIdSet *s, const unsigned char id[REPO_ID_LEN])
{
	return repo_idset_find(s, id) != NULL;
}

size_t
repo_idset_count(const RepoIdSet *s)
{
	return s->n;
}

int
repo_idset_foreach(RepoIdSet *s, RepoIdSetFn fn, void *payload)
{
	int rc;

	for (size_t r = 0; r < s->n; r++)
		if ((rc = fn(s->recs[r].id, &s->recs[r].value, payload)) < 0)
			return rc;
	return 0;
}

void *
repo_idtable_get(void *items, size_t *n, size_t *cap, size_t elem_size, RepoIdSet *set,
				 const unsigned char id[REPO_ID_LEN], size_t *out_num)
{
	bool added;
	uint32_t *num = repo_idset_add(set, id, &added);

	if (added)
	{
		unsigned char *rec;

		if (*n == *cap)
		{
			*cap = *cap ? *cap * 2 : 64;
			items = pv_realloc(items, *cap * elem_size);
		}
		*num = (uint32_t) *n;
		rec = (unsigned char *) items + *n * elem_size;
		memset(rec, 0, elem_size);
		memcpy(rec, id, REPO_ID_LEN);
		(*n)++;
	}
	*out_num = *num;
	return items;
}

/* ---- listings ---- */

static int
keylist_add(const char *key, const StorageInfo *info, void *payload)
{
	RepoKeyList *l = payload;

	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 16;
		l->keys = pv_realloc(l->keys, l->cap * sizeof(char *));
		l->info = pv_realloc(l->info, l->cap * sizeof(StorageInfo));
	}
	l->keys[l->n] = pv_strdup(key);
	l->info[l->n] = *info;
	l->n++;
	return 0;
}

typedef struct KeyInfoPair
{
	char *key;
	StorageInfo info;
} KeyInfoPair;

static int
pair_cmp(const void *a, const void *b)
{
	return strcmp(((const KeyInfoPair *) a)->key, ((const KeyInfoPair *) b)->key);
}

int
repo_keylist_get(RepoKeyList *out, Storage *st, const char *prefix)
{
	RepoKeyList l = {NULL, NULL, 0, 0};
	KeyInfoPair *pairs;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = storage_list(st, prefix, keylist_add, &l)) < 0)
	{
		repo_keylist_free(&l);
		return rc;
	}
	/* Sort keys and infos together. */
	pairs = pv_malloc((l.n ? l.n : 1) * sizeof(KeyInfoPair));
	for (size_t i = 0; i < l.n; i++)
		pairs[i] = (KeyInfoPair) {l.keys[i], l.info[i]};
	pv_qsort(pairs, l.n, sizeof(KeyInfoPair), pair_cmp);
	for (size_t i = 0; i < l.n; i++)
	{
		l.keys[i] = pairs[i].key;
		l.info[i] = pairs[i].info;
	}
	pv_free(pairs);
	*out = l;
	return 0;
}

void
repo_keylist_free(RepoKeyList *l)
{
	for (size_t i = 0; i < l->n; i++)
		pv_free(l->keys[i]);
	pv_free(l->keys);
	pv_free(l->info);
	memset(l, 0, sizeof(*l));
}

static bool
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool
repo_pack_key_parse(unsigned char out[REPO_ID_LEN], const char *key)
{
	const char *hex = key + 8;

	if (strncmp(key, "data/", 5) != 0 || strlen(key) != 8 + 2 * REPO_ID_LEN || key[7] != '/' ||
		key[5] != hex[0] || key[6] != hex[1] || !is_lower_hex(hex, 2 * REPO_ID_LEN))
		return false;
	return pv_hex_decode(out, REPO_ID_LEN, hex) == 0;
}

bool
repo_index_key_parse(unsigned char out[REPO_ID_LEN], const char *key)
{
	if (strncmp(key, "index/", 6) != 0 || strlen(key) != 6 + 2 * REPO_ID_LEN ||
		!is_lower_hex(key + 6, 2 * REPO_ID_LEN))
		return false;
	return pv_hex_decode(out, REPO_ID_LEN, key + 6) == 0;
}

void
repo_sha256_hex(char out[2 * REPO_ID_LEN + 1], const void *data, size_t len)
{
	unsigned char md[REPO_ID_LEN];
	unsigned int mdlen;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	repo_id_hex(out, md);
}

void
repo_pack_entry_append(RepoPackEntry **entries, size_t *n, size_t *cap,
					   const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit)
{
	RepoPackEntry *e;

	if (*n == *cap)
	{
		*cap = *cap ? *cap * 2 : 16;
		*entries = pv_realloc(*entries, *cap * sizeof(RepoPackEntry));
	}
	e = &(*entries)[(*n)++];
	memcpy(e->id, id, REPO_ID_LEN);
	e->type = hit->type;
	e->codec = hit->codec;
	e->offset = hit->offset;
	e->length = hit->length;
	e->raw_length = hit->raw_length;
}

/* ---- index files one by one ---- */

typedef struct FileLoad
{
	RepoIndex *idx;
	RepoIndexFileStatus *f;
	const RepoQuarantine *q;	/* blobs left out (quarantine.h) */
} FileLoad;

static int
file_pack_cb(const unsigned char pack_id[REPO_ID_LEN], const RepoPackEntry *entries, size_t n,
			 void *payload)
{
	FileLoad *fl = payload;
	RepoIndexFileStatus *f = fl->f;

	/* Entries go into the index only after the whole file parsed (index_file_load). */
	f->packs = pv_realloc(f->packs, (f->npacks + 1) * REPO_ID_LEN);
	memcpy(f->packs[f->npacks++], pack_id, REPO_ID_LEN);
	f->nentries += n;
	(void) entries;
	return 0;
}

static int
file_add_cb(const unsigned char pack_id[REPO_ID_LEN], const RepoPackEntry *entries, size_t n,
			void *payload)
{
	FileLoad *fl = payload;

	repo_quarantine_index_add(fl->q, fl->idx, pack_id, entries, n);
	return 0;
}

/* Read, check and (when sound) add one index file; storage failures other than absence fail. */
static int
index_file_load(Repo *repo, RepoIndex *idx, RepoIndexFileStatus *f, bool check_names,
				const RepoQuarantine *q)
{
	Buf stored = PV_BUF_INIT;
	Buf plain = PV_BUF_INIT;
	FileLoad fl = {idx, f, q};
	char name[2 * REPO_ID_LEN + 1];
	int rc;

	if ((rc = storage_get(repo_storage(repo), f->key, &stored)) < 0)
	{
		if (rc != PV_ENOTFOUND)
			goto done;
		/* deleted since the listing: by a prune of another process; nothing to add */
		rc = 0;
		goto done;
	}
	f->size = stored.len;
	repo_sha256_hex(name, stored.data, stored.len);
	if (check_names && strcmp(name, f->key + 6) != 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "index file '%s' does not match its name (SHA-256 is %s)",
						  f->key, name);
		goto bad;
	}
	if ((rc = repo_meta_decode(repo, stored.data, stored.len, &plain)) < 0 ||
		(rc = repo_index_file_parse(plain.data, plain.len, file_pack_cb, &fl)) < 0)
	{
		rc = pv_error_prefix(PV_ECORRUPT, "index file '%s' is corrupt", f->key);
		pv_free(f->packs);
		f->packs = NULL;
		f->npacks = 0;
		f->nentries = 0;
		goto bad;
	}
	/* Whole file sound: now its entries count. */
	rc = repo_index_file_parse(plain.data, plain.len, file_add_cb, &fl);
	goto done;
bad:
	f->rc = rc;
	f->error = pv_strdup(pv_error_msg());
	rc = 0;
done:
	buf_free(&stored);
	buf_free(&plain);
	return rc;
}

int
repo_index_files_load(RepoIndexFiles *out, Repo *repo, RepoIndex *idx, bool check_names,
					  bool stop_on_error)
{
	RepoKeyList l;
	unsigned char name[REPO_ID_LEN];
	const RepoQuarantine *q;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = repo_quarantine_get(repo, &q)) < 0 ||
		(rc = repo_keylist_get(&l, repo_storage(repo), "index/")) < 0)
		return rc;
	out->files = pv_calloc(l.n ? l.n : 1, sizeof(RepoIndexFileStatus));
	for (size_t i = 0; i < l.n; i++)
	{
		RepoIndexFileStatus *f = &out->files[out->n++];

		f->key = pv_strdup(l.keys[i]);
		f->size = l.info[i].size;
		if (!repo_index_key_parse(name, f->key))
		{
			f->rc = pv_error_set(PV_ECORRUPT, "'%s' is not an index file name", f->key);
			f->error = pv_strdup(pv_error_msg());
		}
		else if ((rc = index_file_load(repo, idx, f, check_names, q)) < 0)
			goto done;
		if (f->rc < 0)
		{
			out->nbad++;
			if (stop_on_error)
			{
				rc = pv_error_set(f->rc, "%s", f->error);
				pv_error_hint("run 'pgvault repo rebuild-index' to rebuild the index from the packs");
				goto done;
			}
		}
	}
	rc = 0;
done:
	repo_keylist_free(&l);
	return rc;
}

void
repo_index_files_free(RepoIndexFiles *f)
{
	for (size_t i = 0; i < f->n; i++)
	{
		pv_free(f->files[i].key);
		pv_free(f->files[i].error);
		pv_free(f->files[i].packs);
	}
	pv_free(f->files);
	memset(f, 0, sizeof(*f));
}

void
repo_keylist_add(RepoKeyList *l, const char *key, uint64_t size)
{
	StorageInfo info = {size, 0};

	keylist_add(key, &info, l);
}

bool
repo_keylist_has(const RepoKeyList *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->keys[i], key) == 0)
			return true;
	return false;
}

int
repo_index_file_store(Repo *repo, const void *plain, size_t len, RepoKeyList *written)
{
	Buf stored = PV_BUF_INIT;
	char key[6 + 2 * REPO_ID_LEN + 1];
	int rc;

	if ((rc = repo_meta_encode(repo, plain, len, &stored)) < 0)
		goto done;
	memcpy(key, "index/", 6);
	repo_sha256_hex(key + 6, stored.data, stored.len);
	rc = storage_put(repo_storage(repo), key, stored.data, stored.len, STORAGE_PUT_NO_OVERWRITE);
	if (rc == PV_EEXISTS)		/* same name, same bytes */
		rc = 0;
	if (rc < 0)
	{
		rc = pv_error_prefix(rc, "cannot write index file to repository '%s'", repo_url(repo));
		goto done;
	}
	if (written != NULL)
		repo_keylist_add(written, key, stored.len);
done:
	buf_free(&stored);
	return rc;
}

int
repo_index_files_write(Repo *repo, const RepoPackRecord *packs, size_t n, RepoKeyList *written)
{
	RepoIndexFileBuilder b;
	int rc = 0;

	repo_index_file_init(&b);
	for (size_t i = 0; i < n; i++)
	{
		if (b.npacks > 0 && b.nentries + packs[i].n > REPO_INDEX_FILE_MAX_ENTRIES)
		{
			if ((rc = repo_index_file_store(repo, b.out.data, b.out.len, written)) < 0)
				goto done;
			repo_index_file_free(&b);
			repo_index_file_init(&b);
		}
		repo_index_file_add_pack(&b, packs[i].id, packs[i].entries, packs[i].n);
	}
	if (b.npacks > 0)
		rc = repo_index_file_store(repo, b.out.data, b.out.len, written);
done:
	repo_index_file_free(&b);
	return rc;
}

/* ---- blobs and manifests through a given index ---- */

int
repo_blob_check(Repo *repo, const unsigned char id[REPO_ID_LEN], uint32_t raw_length,
				const void *stored, size_t len, Buf *out)
{
	const RepoKeys *keys = repo_keys(repo);
	unsigned char got[REPO_ID_LEN];
	size_t start = out->len;
	int rc;

	if ((rc = repo_blob_decode(out, keys, id, REPO_ID_LEN, stored, len, 0)) < 0)
		return rc;
	if (out->len - start != raw_length)
	{
		rc = pv_error_set(PV_ECORRUPT, "it holds %zu bytes, the index says %u",
						  out->len - start, raw_length);
		goto fail;
	}
	repo_id_compute(got, keys, out->data + start, out->len - start);
	if (memcmp(got, id, REPO_ID_LEN) != 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "its content does not match its id");
		goto fail;
	}
	return 0;
fail:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return rc;
}

int
repo_blob_fetch(Repo *repo, RepoIndex *idx, const unsigned char id[REPO_ID_LEN], Buf *out)
{
	RepoIndexHit hit;
	char hex[2 * REPO_ID_LEN + 1], phex[2 * REPO_ID_LEN + 1];
	char key[REPO_PACK_KEY_MAX];
	Buf stored = PV_BUF_INIT;
	int rc;

	repo_id_hex(hex, id);
	if (!repo_index_lookup(idx, id, &hit))
		return pv_error_set(PV_ECORRUPT, "blob %s is not in the index", hex);
	repo_id_hex(phex, hit.pack_id);
	repo_pack_key(key, hit.pack_id);
	rc = storage_get_range(repo_storage(repo), key, hit.offset, hit.length, &stored);
	if (rc == PV_ENOTFOUND)
		rc = pv_error_set(PV_ECORRUPT, "pack %s holding blob %s is missing", phex, hex);
	else if (rc == PV_ECORRUPT)
		rc = pv_error_prefix(PV_ECORRUPT, "pack %s holding blob %s is truncated", phex, hex);
	else if (rc == 0 && (rc = repo_blob_check(repo, id, hit.raw_length, stored.data, stored.len,
											  out)) < 0)
		rc = pv_error_prefix(PV_ECORRUPT, "blob %s in pack %s is corrupt", hex, phex);
	buf_free(&stored);
	return rc;
}

typedef struct Walk
{
	const RepoManifest *m;
	RepoWalkItemFn item_fn;
	void *payload;
	uint64_t count;
	bool callback_failed;		/* the error came from item_fn, not the list */
} Walk;

/* Parse and hand out every complete line at the front of text; keep the rest. */
static int
walk_lines(Walk *w, Buf *text)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < text->len)
	{
		const unsigned char *nl = memchr(text->data + pos, '\n', text->len - pos);
		size_t len;
		RepoItem *item = NULL;

		if (nl == NULL)
			break;
		len = (size_t) (nl - (text->data + pos));
		if ((rc = repo_item_parse(&item, (const char *) text->data + pos, len)) < 0)
		{
			rc = pv_error_prefix(rc, "item %llu", (unsigned long long) w->count + 1);
			break;
		}
		w->count++;
		if (w->item_fn != NULL && (rc = w->item_fn(item, w->payload)) < 0)
			w->callback_failed = true;
		repo_item_free(item);
		pos += len + 1;
		if (rc < 0)
			break;
	}
	buf_consume(text, pos);
	return rc;
}

int
repo_manifest_walk(Repo *repo, RepoIndex *idx, const RepoManifest *m, RepoWalkTreeFn tree_fn,
				   RepoWalkItemFn item_fn, void *payload)
{
	Walk w = {m, item_fn, payload, 0, false};
	const RepoTreeRef *tree;
	size_t ntree;
	Buf text = PV_BUF_INIT;
	int rc = 0;

	tree = repo_manifest_tree(m, &ntree);
	for (size_t i = 0; i < ntree; i++)
	{
		size_t before = text.len;

		if (tree_fn != NULL && (rc = tree_fn(&tree[i], payload)) < 0)
			goto done;			/* the caller's own error, as it is */
		if ((rc = repo_blob_fetch(repo, idx, tree[i].id, &text)) < 0)
			goto corrupt;
		if (text.len - before != tree[i].raw_length)
		{
			char hex[2 * REPO_ID_LEN + 1];

			repo_id_hex(hex, tree[i].id);
			rc = pv_error_set(PV_ECORRUPT, "tree blob %s holds %zu bytes, the manifest says %u",
							  hex, text.len - before, tree[i].raw_length);
			goto corrupt;
		}
		if ((rc = walk_lines(&w, &text)) < 0)
		{
			if (w.callback_failed)
				goto done;
			goto corrupt;
		}
	}
	if (text.len > 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "item list ends inside a line");
		goto corrupt;
	}
	if (w.count != repo_manifest_item_count(m))
	{
		rc = pv_error_set(PV_ECORRUPT, "item list holds %llu items, the manifest says %llu",
						  (unsigned long long) w.count,
						  (unsigned long long) repo_manifest_item_count(m));
		goto corrupt;
	}
	rc = 0;
	goto done;
corrupt:
	rc = pv_error_prefix(rc, "backup %s", repo_manifest_id(m));
done:
	buf_free(&text);
	return rc;
}
