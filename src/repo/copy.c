/*
 * copy.c: copying backups and WAL between repositories (see copy.h for the
 * rules it keeps).
 *
 * One backup goes in three passes:
 *
 *   plan     walk the item list in the source (tree blobs only); every
 *            distinct blob the backup references gets an entry in the
 *            session's map (source id -> destination id).  Those the
 *            destination has are counted and skipped; the others are
 *            located in the source's index and sorted by pack and offset.
 *   copy     the wanted blobs, grouped into ranges of nearby blobs in one
 *            pack (one range GET each), go to worker threads that check
 *            each blob (decode, length, recomputed id), learn its
 *            destination id and hand it, re-encrypted for the destination,
 *            to the destination's pack writers.
 *   commit   (ids recomputed: rewrite the item list with the new ids into
 *            new tree blobs), flush the packs, write the destination's
 *            index files, check the lock, write the manifest.
 *
 * The session map lives until repo_copy_end, so a chunk shared by several
 * backups of one run is read once.  An entry's destination id is "known"
 * once a worker computed it (or the seeding found it); whether the
 * destination holds that blob is always asked of its index, so a blob whose
 * pack was dropped by a failed backup is simply read again by the next.
 *
 * Memory: the session map holds about 130 bytes per distinct blob the
 * copied backups reference (the entry, 80; the id set, about 50), so 1 TiB
 * of unique 1 MiB chunks costs some 130 MB; the copy pass holds up to one
 * range (RANGE_LEN_MAX) per worker plus the destination's pack writers
 * ((1 + 2) packs each).
 *
 * Locking: during the copy pass workers write only their own map entries
 * (an entry is in one range only) and the shared statistics under c->mu;
 * the map and the entry array are not resized while workers run.
 */
#include "repo/copy.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "repo/blob.h"
#include "repo/chunker.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/maint.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chunking of the item list (format section 7), as the writer does it. */
#define TREE_MIN_SIZE (64u * 1024)
#define TREE_AVG_SIZE (256u * 1024)
#define TREE_MAX_SIZE (1024u * 1024)

/*
 * Blobs of one pack less than RANGE_GAP_MAX apart are fetched with one
 * range GET of at most RANGE_LEN_MAX bytes: on an object store a request
 * costs about as much as a megabyte of transfer.
 */
#define RANGE_GAP_MAX (1u << 20)
#define RANGE_LEN_MAX (8u << 20)

/* Seeding walks at most SEED_BACKUPS common backups, looking at SEED_CANDIDATES. */
#define SEED_BACKUPS 3
#define SEED_CANDIDATES 16

#define WAL_HEADER_LEN 48
#define WAL_MAGIC "PVWA"
#define WAL_INFO_NAME "archive.info"

typedef struct Blob
{
	unsigned char from_id[REPO_ID_LEN];
	unsigned char to_id[REPO_ID_LEN];
	bool to_known;				/* to_id is valid */
	uint8_t type;				/* REPO_BLOB_DATA / TREE, as the source's index says */
	uint32_t raw_length;
	uint64_t gen;				/* the backup (session generation) that last planned it */
} Blob;

struct RepoCopy
{
	Repo *from;
	Repo *to;
	RepoCopyOpts opts;
	RepoLock *from_lock;
	RepoLock *to_lock;
	RepoIndex *from_idx;
	RepoIndex *to_idx;
	bool remap;
	char **seeded;				/* kind/source groups and backup ids seeding has used */
	size_t nseeded;
	RepoIdSet *map;				/* source id -> number of its Blob */
	Blob *blobs;
	size_t nblobs;
	size_t blobs_cap;
	uint64_t gen;
	char **to_backups;			/* the destination's backup ids at begin, sorted */
	size_t nto_backups;
	pthread_mutex_t mu;			/* stats, while workers run */
	RepoCopyStats stats;
};

/* What the plan wants read: one blob, where it is in the source. */
typedef struct Want
{
	const unsigned char *pack;	/* lent from the source's index */
	uint32_t offset;
	uint32_t length;
	size_t blob;
} Want;

typedef struct Plan
{
	Want *wants;
	size_t n;
	size_t cap;
	const char *backup;
} Plan;

/* ---- small helpers ---- */

static bool
same_ids(Repo *a, Repo *b)
{
	const RepoKeys *ka = repo_keys(a), *kb = repo_keys(b);

	if (ka == NULL || kb == NULL)
		return ka == NULL && kb == NULL;
	return memcmp(ka->id_key, kb->id_key, sizeof(ka->id_key)) == 0;
}

/* A source or secondary name: 1 to 64 of [A-Za-z0-9_.-], not starting with '.'. */
static bool
name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			  ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

static void
stats_add(RepoCopyStats *to, const RepoCopyStats *d)
{
	to->backups += d->backups;
	to->backups_present += d->backups_present;
	to->blobs += d->blobs;
	to->blobs_present += d->blobs_present;
	to->blobs_written += d->blobs_written;
	to->bytes_read += d->bytes_read;
	to->bytes_written += d->bytes_written;
	to->raw_bytes_written += d->raw_bytes_written;
	to->packs += d->packs;
	to->wal_files += d->wal_files;
	to->wal_present += d->wal_present;
	to->wal_bytes += d->wal_bytes;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool
backup_in_list(char **ids, size_t n, const char *id)
{
	return n > 0 && pv_bsearch(&id, ids, n, sizeof(char *), cmp_str) != NULL;
}

/* Parse a metadata object's plaintext that must be a JSON object. */
static int
json_object_parse(json_t **out, const Buf *plain, const char *what)
{
	int rc = pv_json_parse(out, (const char *) plain->data, plain->len, what);

	if (rc == 0 && !json_is_object(*out))
	{
		json_decref(*out);
		*out = NULL;
		rc = pv_error_set(PV_ECORRUPT, "'%s' is not a JSON object", what);
	}
	return rc;
}

/*
 * Check one stored blob of the source and make its destination form:
 * open it (source key, aad = its id), decode the layout, check the length
 * and the id, compute the destination id, seal the same layout for the
 * destination (aad = the new id).  The codec stays what it was.  On
 * success *out holds the stored form and *codec the layout's codec.
 * Errors are PV_ECORRUPT without the object's name (the caller adds it).
 */
static int
blob_transcode(Repo *from, Repo *to, bool remap, const unsigned char from_id[REPO_ID_LEN],
			   uint32_t raw_length, const unsigned char *stored, size_t len,
			   unsigned char to_id[REPO_ID_LEN], Buf *out, uint8_t *codec)
{
	const RepoKeys *fk = repo_keys(from), *tk = repo_keys(to);
	Buf z = PV_BUF_INIT, plain = PV_BUF_INIT;
	const unsigned char *zp = stored;
	size_t zlen = len;
	unsigned char got[REPO_ID_LEN];
	int rc;

	if (fk != NULL)
	{
		if ((rc = repo_aead_open(fk, from_id, REPO_ID_LEN, stored, len, &z)) < 0)
			goto done;
		zp = z.data;
		zlen = z.len;
	}
	if ((rc = repo_blob_decode(&plain, NULL, NULL, 0, zp, zlen, 0)) < 0)
		goto done;
	if (plain.len != raw_length)
	{
		rc = pv_error_set(PV_ECORRUPT, "it holds %zu bytes, the index says %u", plain.len,
						  raw_length);
		goto done;
	}
	repo_id_compute(got, fk, plain.data, plain.len);
	if (memcmp(got, from_id, REPO_ID_LEN) != 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "its content does not match its id");
		goto done;
	}
	if (remap)
		repo_id_compute(to_id, tk, plain.data, plain.len);
	else
		memcpy(to_id, from_id, REPO_ID_LEN);
	*codec = zp[0];
	if (tk != NULL)
		rc = repo_aead_seal(tk, to_id, REPO_ID_LEN, zp, zlen, out);
	else
		buf_append(out, zp, zlen);
done:
	buf_free_secret(&z);
	buf_free_secret(&plain);
	return rc;
}

/* ---- reading an item list line by line ---- */

typedef struct LineIter
{
	Repo *repo;
	RepoIndex *idx;
	const RepoManifest *m;
	const RepoTreeRef *tree;
	size_t ntree;
	size_t next;
	Buf text;
	size_t pos;
	uint64_t count;
} LineIter;

static void
line_iter_init(LineIter *it, Repo *repo, RepoIndex *idx, const RepoManifest *m)
{
	memset(it, 0, sizeof(*it));
	it->repo = repo;
	it->idx = idx;
	it->m = m;
	it->tree = repo_manifest_tree(m, &it->ntree);
}

static void
line_iter_free(LineIter *it)
{
	buf_free(&it->text);
}

/* The next line (without its newline) in *line and *len; *line = NULL at the end of a sound list. */
static int
line_iter_next(LineIter *it, const char **line, size_t *len)
{
	int rc;

	*line = NULL;
	*len = 0;
	for (;;)
	{
		unsigned char *nl = it->pos < it->text.len ?
			memchr(it->text.data + it->pos, '\n', it->text.len - it->pos) : NULL;
		size_t before;

		if (nl != NULL)
		{
			*line = (const char *) it->text.data + it->pos;
			*len = (size_t) (nl - (it->text.data + it->pos));
			it->pos += *len + 1;
			it->count++;
			return 0;
		}
		if (it->next == it->ntree)
		{
			if (it->pos < it->text.len)
				return pv_error_set(PV_ECORRUPT, "item list of backup %s in repository '%s' "
									"ends inside an item", repo_manifest_id(it->m),
									repo_url(it->repo));
			if (it->count != repo_manifest_item_count(it->m))
				return pv_error_set(PV_ECORRUPT, "item list of backup %s in repository '%s' "
									"holds %llu items, its manifest says %llu",
									repo_manifest_id(it->m), repo_url(it->repo),
									(unsigned long long) it->count,
									(unsigned long long) repo_manifest_item_count(it->m));
			return 0;
		}
		buf_consume(&it->text, it->pos);
		it->pos = 0;
		before = it->text.len;
		if ((rc = repo_blob_fetch(it->repo, it->idx, it->tree[it->next].id, &it->text)) < 0)
			return pv_error_prefix(rc, "item list of backup %s in repository '%s'",
								   repo_manifest_id(it->m), repo_url(it->repo));
		if (it->text.len - before != it->tree[it->next].raw_length)
			return pv_error_set(PV_ECORRUPT, "item list of backup %s in repository '%s': a "
								"tree blob holds %zu bytes, the manifest says %u",
								repo_manifest_id(it->m), repo_url(it->repo),
								it->text.len - before, it->tree[it->next].raw_length);
		it->next++;
	}
}

/* ---- the session ---- */

int
repo_copy_begin(RepoCopy **out, Repo *from, Repo *to, const RepoCopyOpts *opts)
{
	RepoCopy *c;
	RepoLockOpts lo = {.exclusive = false};
	int rc;

	*out = NULL;
	if (strcmp(repo_id(from), repo_id(to)) == 0)
		return pv_error_set(PV_EUSAGE, "'%s' and '%s' are the same repository", repo_url(from),
							repo_url(to));
	c = PV_NEW(RepoCopy);
	c->from = from;
	c->to = to;
	if (opts != NULL)
		c->opts = *opts;
	lo.command = c->opts.command ? c->opts.command : "copy";
	c->remap = !same_ids(from, to);
	c->map = repo_idset_new();
	pthread_mutex_init(&c->mu, NULL);
	if (!c->opts.dry_run)
	{
		/* Locks before the indexes (format rule 5): no prune runs under us. */
		if ((rc = repo_lock_acquire_opts(&c->from_lock, from, &lo)) < 0 ||
			(rc = repo_lock_acquire_opts(&c->to_lock, to, &lo)) < 0 ||
			(rc = repo_index_refresh(from)) < 0 || (rc = repo_index_refresh(to)) < 0)
			goto done;
	}
	if ((rc = repo_index_get(from, &c->from_idx)) < 0 ||
		(rc = repo_index_get(to, &c->to_idx)) < 0 ||
		(rc = repo_manifest_ids(to, &c->to_backups, &c->nto_backups)) < 0)
		goto done;
	pv_log_debug("copy from '%s' to '%s': chunk ids %s", repo_url(from), repo_url(to),
				 c->remap ? "recomputed with the destination's key" : "kept");
	*out = c;
	c = NULL;
	rc = 0;
done:
	repo_copy_end(c);
	return rc;
}

bool
repo_copy_ids_recomputed(const RepoCopy *c)
{
	return c->remap;
}

void
repo_copy_stats(const RepoCopy *c, RepoCopyStats *out)
{
	*out = c->stats;
}

void
repo_copy_end(RepoCopy *c)
{
	if (c == NULL)
		return;
	repo_lock_release(c->to_lock);
	repo_lock_release(c->from_lock);
	repo_idset_free(c->map);
	pv_free(c->blobs);
	repo_manifest_ids_free(c->to_backups, c->nto_backups);
	repo_manifest_ids_free(c->seeded, c->nseeded);
	pthread_mutex_destroy(&c->mu);
	pv_free(c);
}

/* The entry of source id, new (*added) or existing. */
static Blob *
map_entry(RepoCopy *c, const unsigned char id[REPO_ID_LEN], bool *added)
{
	uint32_t *v = repo_idset_add(c->map, id, added);
	Blob *b;

	if (!*added)
		return &c->blobs[*v];
	if (c->nblobs == c->blobs_cap)
	{
		c->blobs_cap = c->blobs_cap ? c->blobs_cap * 2 : 1024;
		c->blobs = pv_realloc(c->blobs, c->blobs_cap * sizeof(Blob));
	}
	*v = (uint32_t) c->nblobs;
	b = &c->blobs[c->nblobs++];
	memset(b, 0, sizeof(*b));
	memcpy(b->from_id, id, REPO_ID_LEN);
	if (!c->remap)
	{
		memcpy(b->to_id, id, REPO_ID_LEN);
		b->to_known = true;
	}
	return b;
}

/* ---- seeding the id map from a backup both repositories hold ---- */

/* Same item, same chunk layout: the chunk ids of b are those of a, recomputed. */
static bool
items_match(const RepoItem *a, const RepoItem *b)
{
	if (strcmp(a->name, b->name) != 0 || a->size != b->size || a->nchunks != b->nchunks ||
		a->has_sha256 != b->has_sha256 || (a->has_sha256 && memcmp(a->sha256, b->sha256, 32) != 0))
		return false;
	for (size_t i = 0; i < a->nchunks; i++)
		if (a->chunks[i].raw_length != b->chunks[i].raw_length ||
			a->chunks[i].offset != b->chunks[i].offset)
			return false;
	return true;
}

/* Walk both copies of backup id side by side; map every chunk pair. */
static void
seed_from(RepoCopy *c, const char *id)
{
	RepoManifest *ma = NULL, *mb = NULL;
	LineIter ia, ib;
	uint64_t pairs = 0;
	bool ok = true;

	if (repo_manifest_load(&ma, c->from, id) < 0 || repo_manifest_load(&mb, c->to, id) < 0 ||
		repo_manifest_item_count(ma) != repo_manifest_item_count(mb))
	{
		repo_manifest_free(ma);
		repo_manifest_free(mb);
		pv_error_clear();
		return;
	}
	line_iter_init(&ia, c->from, c->from_idx, ma);
	line_iter_init(&ib, c->to, c->to_idx, mb);
	while (ok)
	{
		const char *la, *lb;
		size_t na, nb;
		RepoItem *a = NULL, *b = NULL;

		if (line_iter_next(&ia, &la, &na) < 0 || line_iter_next(&ib, &lb, &nb) < 0 ||
			(la == NULL) != (lb == NULL))
			break;
		if (la == NULL)
			break;
		if (repo_item_parse(&a, la, na) < 0 || repo_item_parse(&b, lb, nb) < 0 ||
			!items_match(a, b))
			ok = false;
		for (size_t i = 0; ok && i < a->nchunks; i++)
		{
			bool added;
			Blob *e = map_entry(c, a->chunks[i].id, &added);

			if (added)
			{
				e->type = REPO_BLOB_DATA;
				e->raw_length = a->chunks[i].raw_length;
				memcpy(e->to_id, b->chunks[i].id, REPO_ID_LEN);
				e->to_known = true;
				pairs++;
			}
			else if (e->to_known && memcmp(e->to_id, b->chunks[i].id, REPO_ID_LEN) != 0)
				ok = false;
		}
		repo_item_free(a);
		repo_item_free(b);
	}
	if (!ok)
		pv_log_detail("copy: backup %s differs between the repositories; seeding the id map "
					  "from it stopped", id);
	pv_log_detail("copy: learnt %llu chunk ids from backup %s, which both repositories hold",
				  (unsigned long long) pairs, id);
	line_iter_free(&ia);
	line_iter_free(&ib);
	repo_manifest_free(ma);
	repo_manifest_free(mb);
	pv_error_clear();
}

/* Remember s in a list of strings; false if it was there already. */
static bool
strlist_add(char ***list, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], s) == 0)
			return false;
	*list = pv_realloc(*list, (*n + 1) * sizeof(char *));
	(*list)[(*n)++] = pv_strdup(s);
	return true;
}

/*
 * With ids recomputed, once per kind and source of backup in a session:
 * learn old -> new ids from backups both repositories hold: m's parent,
 * and the SEED_BACKUPS newest ones of m's kind and source older than m.
 * Best effort: any failure only means more chunks are read.
 */
static void
seed_map(RepoCopy *c, const RepoManifest *m)
{
	const char *parent = repo_manifest_parent(m);
	char *group = pv_asprintf("%s/%s", repo_manifest_kind(m), repo_manifest_source(m));
	int tries = 0, picked = 0;

	if (!strlist_add(&c->seeded, &c->nseeded, group))
		goto done;
	if (parent != NULL && backup_in_list(c->to_backups, c->nto_backups, parent) &&
		strlist_add(&c->seeded, &c->nseeded, parent))
		seed_from(c, parent);
	for (size_t i = c->nto_backups; i-- > 0 && tries < SEED_CANDIDATES && picked < SEED_BACKUPS;)
	{
		const char *id = c->to_backups[i];
		RepoManifest *cand = NULL;
		bool same;

		if (strcmp(id, repo_manifest_id(m)) >= 0)
			continue;
		tries++;
		if (repo_manifest_load(&cand, c->from, id) < 0)
		{
			pv_error_clear();
			continue;
		}
		same = strcmp(repo_manifest_kind(cand), repo_manifest_kind(m)) == 0 &&
			strcmp(repo_manifest_source(cand), repo_manifest_source(m)) == 0;
		repo_manifest_free(cand);
		if (same)
		{
			picked++;
			if (strlist_add(&c->seeded, &c->nseeded, id))
				seed_from(c, id);
		}
	}
done:
	pv_free(group);
}

/* ---- plan ---- */

static int
plan_blob(RepoCopy *c, Plan *p, const unsigned char id[REPO_ID_LEN], uint32_t raw_length,
		  const char *what)
{
	RepoIndexHit hit;
	bool added;
	Blob *b = map_entry(c, id, &added);

	if (b->gen == c->gen)
		return 0;				/* already planned for this backup */
	b->gen = c->gen;
	c->stats.blobs++;
	if (b->to_known && repo_index_lookup(c->to_idx, b->to_id, NULL))
	{
		c->stats.blobs_present++;
		return 0;
	}
	if (!repo_index_lookup(c->from_idx, id, &hit))
	{
		char hex[2 * REPO_ID_LEN + 1];

		repo_id_hex(hex, id);
		pv_error_set(PV_ECORRUPT, "%s %s of backup %s is not in the index of repository '%s'",
					 what, hex, p->backup, repo_url(c->from));
		pv_error_hint("'pgvault repo rebuild-index' recreates the index from the packs");
		return PV_ECORRUPT;
	}
	b->type = hit.type;
	b->raw_length = raw_length;
	if (hit.raw_length != raw_length)
	{
		char hex[2 * REPO_ID_LEN + 1];

		repo_id_hex(hex, id);
		return pv_error_set(PV_ECORRUPT, "%s %s of backup %s: its length is %u, the index of "
							"repository '%s' says %u", what, hex, p->backup, raw_length,
							repo_url(c->from), hit.raw_length);
	}
	if (p->n == p->cap)
	{
		p->cap = p->cap ? p->cap * 2 : 256;
		p->wants = pv_realloc(p->wants, p->cap * sizeof(Want));
	}
	p->wants[p->n++] = (Want) {hit.pack_id, hit.offset, hit.length, (size_t) (b - c->blobs)};
	return 0;
}

/* Every blob backup m needs: its tree blobs (ids kept) and the chunks of its items. */
static int
plan_backup(RepoCopy *c, const RepoManifest *m, Plan *p)
{
	const RepoTreeRef *tree;
	size_t ntree, len;
	const char *line;
	LineIter it;
	int rc = 0;

	tree = repo_manifest_tree(m, &ntree);
	for (size_t i = 0; !c->remap && i < ntree && rc == 0; i++)
		rc = plan_blob(c, p, tree[i].id, tree[i].raw_length, "tree blob");
	line_iter_init(&it, c->from, c->from_idx, m);
	while (rc == 0 && (rc = line_iter_next(&it, &line, &len)) == 0 && line != NULL)
	{
		RepoItem *item = NULL;

		if ((rc = repo_item_parse(&item, line, len)) < 0)
		{
			rc = pv_error_prefix(rc, "backup %s in repository '%s'", p->backup,
								 repo_url(c->from));
			break;
		}
		for (size_t i = 0; i < item->nchunks && rc == 0; i++)
			rc = plan_blob(c, p, item->chunks[i].id, item->chunks[i].raw_length, "chunk");
		repo_item_free(item);
	}
	line_iter_free(&it);
	return rc;
}

static int
want_cmp(const void *a, const void *b)
{
	const Want *x = a, *y = b;
	int d = memcmp(x->pack, y->pack, REPO_ID_LEN);

	if (d != 0)
		return d;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* ---- copy: range jobs ---- */

typedef struct RangeJob
{
	RepoCopy *c;
	RepoPackWriter **pw;		/* [REPO_BLOB_DATA], [REPO_BLOB_TREE] */
	const char *backup;
	const Want *wants;			/* lent from the plan */
	size_t n;
	uint64_t start;
	uint64_t end;
} RangeJob;

static int
range_blob(RangeJob *j, const Want *w, const unsigned char *stored, size_t len)
{
	RepoCopy *c = j->c;
	Blob *b = &c->blobs[w->blob];
	unsigned char to_id[REPO_ID_LEN];
	Buf out = PV_BUF_INIT;
	uint8_t codec = 0;
	bool present;
	int rc;

	if ((rc = blob_transcode(c->from, c->to, c->remap, b->from_id, b->raw_length, stored, len,
							 to_id, &out, &codec)) < 0)
	{
		char hex[2 * REPO_ID_LEN + 1], phex[2 * REPO_ID_LEN + 1];

		repo_id_hex(hex, b->from_id);
		repo_id_hex(phex, w->pack);
		rc = pv_error_prefix(PV_ECORRUPT, "%s %s in pack %s of repository '%s' is corrupt "
							 "(backup %s)", b->type == REPO_BLOB_TREE ? "tree blob" : "chunk",
							 hex, phex, repo_url(c->from), j->backup);
		goto done;
	}
	memcpy(b->to_id, to_id, REPO_ID_LEN);
	b->to_known = true;
	/* Ids recomputed: only now do we know whether the destination has it. */
	present = c->remap && repo_index_lookup(c->to_idx, to_id, NULL);
	if (!present &&
		(rc = repo_pack_writer_add(j->pw[b->type == REPO_BLOB_TREE], b->type, to_id, codec,
								   b->raw_length, out.data, out.len)) < 0)
		goto done;
	pthread_mutex_lock(&c->mu);
	if (present)
		c->stats.blobs_present++;
	else
	{
		c->stats.blobs_written++;
		c->stats.bytes_written += out.len;
		c->stats.raw_bytes_written += b->raw_length;
	}
	pthread_mutex_unlock(&c->mu);
done:
	buf_free(&out);
	return rc;
}

static int
range_run(void *arg)
{
	RangeJob *j = arg;
	RepoCopy *c = j->c;
	char key[REPO_PACK_KEY_MAX];
	Buf data = PV_BUF_INIT;
	int rc;

	repo_pack_key(key, j->wants[0].pack);
	rc = storage_get_range(repo_storage(c->from), key, j->start, j->end - j->start, &data);
	if (rc < 0)
	{
		char hex[2 * REPO_ID_LEN + 1], phex[2 * REPO_ID_LEN + 1];

		repo_id_hex(hex, c->blobs[j->wants[0].blob].from_id);
		repo_id_hex(phex, j->wants[0].pack);
		if (rc == PV_ENOTFOUND)
			rc = pv_error_set(PV_ECORRUPT, "pack %s holding chunk %s is missing from repository "
							  "'%s' (backup %s)", phex, hex, repo_url(c->from), j->backup);
		else
			rc = pv_error_prefix(rc, "cannot read pack %s of repository '%s' (backup %s)", phex,
								 repo_url(c->from), j->backup);
		goto done;
	}
	pthread_mutex_lock(&c->mu);
	c->stats.bytes_read += data.len;
	pthread_mutex_unlock(&c->mu);
	for (size_t i = 0; i < j->n && rc == 0; i++)
		rc = range_blob(j, &j->wants[i], data.data + (j->wants[i].offset - j->start),
						j->wants[i].length);
done:
	buf_free(&data);
	return rc;
}

/* Submit the plan's wants (sorted) as range jobs; waits for them all. */
static int
copy_wanted(RepoCopy *c, Plan *p, PvPool *pool, RepoPackWriter **pw)
{
	size_t i = 0;
	int rc = 0, wrc;

	if (p->n > 1)
		pv_qsort(p->wants, p->n, sizeof(Want), want_cmp);
	while (i < p->n && rc == 0)
	{
		RangeJob *j = PV_NEW(RangeJob);
		size_t k = i + 1;

		j->c = c;
		j->pw = pw;
		j->backup = p->backup;
		j->wants = &p->wants[i];
		j->start = p->wants[i].offset;
		j->end = j->start + p->wants[i].length;
		while (k < p->n && memcmp(p->wants[k].pack, p->wants[i].pack, REPO_ID_LEN) == 0 &&
			   p->wants[k].offset >= j->end &&
			   p->wants[k].offset - j->end <= RANGE_GAP_MAX &&
			   (uint64_t) p->wants[k].offset + p->wants[k].length - j->start <= RANGE_LEN_MAX)
		{
			j->end = (uint64_t) p->wants[k].offset + p->wants[k].length;
			k++;
		}
		j->n = k - i;
		i = k;
		rc = pv_pool_submit_owned(pool, range_run, j, pv_free);
	}
	wrc = pv_pool_wait(pool);
	return rc < 0 ? rc : wrc;
}

/* ---- commit: the item list with new ids ---- */

typedef struct TreeOut
{
	RepoCopy *c;
	RepoPackWriter *pw;
	RepoChunker *chunker;
	RepoIdSet *written;			/* tree blobs of this backup already handed to pw */
	Buf buf;
	size_t start;
	json_t *blobs;
} TreeOut;

/* Store one tree blob of the rewritten list (unless the destination has it). */
static int
tree_blob_store(TreeOut *t, const unsigned char *p, size_t n)
{
	RepoCopy *c = t->c;
	const RepoKeys *tk = repo_keys(c->to);
	unsigned char id[REPO_ID_LEN];
	char hex[2 * REPO_ID_LEN + 1];
	Buf z = PV_BUF_INIT, out = PV_BUF_INIT;
	bool added;
	int rc = 0;

	repo_id_compute(id, tk, p, n);
	repo_id_hex(hex, id);
	json_array_append_new(t->blobs, json_pack("{s:s, s:I}", "id", hex, "raw_length",
											  (json_int_t) n));
	c->stats.blobs++;
	repo_idset_add(t->written, id, &added);
	if (!added || repo_index_lookup(c->to_idx, id, NULL))
	{
		c->stats.blobs_present++;
		return 0;
	}
	/* The writer's encoding of tree blobs: zstd level 3, sealed with aad = id. */
	if ((rc = repo_blob_encode(&z, NULL, REPO_COMPRESS_ZSTD, 3, NULL, 0, p, n)) < 0)
		goto done;
	if (tk != NULL)
		rc = repo_aead_seal(tk, id, REPO_ID_LEN, z.data, z.len, &out);
	else
		buf_append(&out, z.data, z.len);
	if (rc == 0)
		rc = repo_pack_writer_add(t->pw, REPO_BLOB_TREE, id, z.data[0], (uint32_t) n, out.data,
								  out.len);
	if (rc == 0)
	{
		c->stats.blobs_written++;
		c->stats.bytes_written += out.len;
		c->stats.raw_bytes_written += n;
	}
done:
	buf_free_secret(&z);
	buf_free(&out);
	return rc;
}

/* Cut tree blobs from t->buf (all of it when final), as the writer does. */
static int
tree_cut(TreeOut *t, bool final)
{
	int rc = 0;

	for (;;)
	{
		unsigned char *p = t->buf.data + t->start;
		size_t avail = t->buf.len - t->start;
		size_t n = avail ? repo_chunker_next(t->chunker, p, avail) : 0;

		if (n == 0 && final && avail > 0)
			n = avail;
		if (n == 0)
			break;
		repo_chunker_reset(t->chunker);
		if ((rc = tree_blob_store(t, p, n)) < 0)
			break;
		t->start += n;
	}
	buf_consume(&t->buf, t->start);
	t->start = 0;
	return rc;
}

/* Replace the chunk ids of one item line by their destination ids; append the line to t. */
static int
tree_line_rewrite(TreeOut *t, const char *line, size_t len, const char *backup)
{
	RepoCopy *c = t->c;
	json_error_t err;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	json_t *chunks, *ref;
	size_t i;
	char *text;
	int rc = 0;

	if (o == NULL || !json_is_array(chunks = json_object_get(o, "chunks")))
	{
		json_decref(o);
		return pv_error_set(PV_ECORRUPT, "an item of backup %s in repository '%s' is malformed",
							backup, repo_url(c->from));
	}
	json_array_foreach(chunks, i, ref)
	{
		unsigned char id[REPO_ID_LEN];
		char hex[2 * REPO_ID_LEN + 1];
		const char *s = json_string_value(json_array_get(ref, 0));
		uint32_t *v;

		if (s == NULL || repo_id_parse(id, s) < 0 || (v = repo_idset_find(c->map, id)) == NULL ||
			!c->blobs[*v].to_known)
		{
			/* uncovered: the plan pass parsed the same line and mapped every chunk */
			rc = pv_error_set(PV_ERROR, "chunk '%s' of backup %s was not copied", s ? s : "?",
							  backup);
			break;
		}
		repo_id_hex(hex, c->blobs[*v].to_id);
		json_array_set_new(ref, 0, json_string(hex));
	}
	if (rc == 0)
	{
		text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		buf_append_str(&t->buf, text);
		buf_append_byte(&t->buf, '\n');
		free(text);
		rc = tree_cut(t, false);
	}
	json_decref(o);
	return rc;
}

/* The manifest's item list, rewritten with destination ids; *out_blobs gets the new refs. */
static int
tree_rewrite(RepoCopy *c, const RepoManifest *m, RepoPackWriter *pw, json_t **out_blobs)
{
	RepoChunkerParams tp = {TREE_MIN_SIZE, TREE_AVG_SIZE, TREE_MAX_SIZE,
		repo_config_chunker(c->to)->seed};
	TreeOut t = {c, pw, repo_chunker_new(&tp), repo_idset_new(), PV_BUF_INIT, 0, json_array()};
	LineIter it;
	const char *line;
	size_t len;
	int rc;

	*out_blobs = NULL;
	line_iter_init(&it, c->from, c->from_idx, m);
	while ((rc = line_iter_next(&it, &line, &len)) == 0 && line != NULL)
		if ((rc = tree_line_rewrite(&t, line, len, repo_manifest_id(m))) < 0)
			break;
	if (rc == 0)
		rc = tree_cut(&t, true);
	if (rc == 0)
	{
		*out_blobs = t.blobs;
		t.blobs = NULL;
	}
	line_iter_free(&it);
	json_decref(t.blobs);
	buf_free(&t.buf);
	repo_idset_free(t.written);
	repo_chunker_free(t.chunker);
	return rc;
}

/* ---- one backup ---- */

static int
copy_commit(RepoCopy *c, const RepoManifest *m, RepoPackWriter **pw, bool *copied)
{
	RepoPackWriterStats ps;
	json_t *doc = json_deep_copy(repo_manifest_json(m));
	json_t *blobs = NULL;
	int rc;

	if (c->remap)
	{
		if ((rc = tree_rewrite(c, m, pw[1], &blobs)) < 0)
			goto done;
		json_object_set_new(json_object_get(doc, "items"), "blobs", blobs);
	}
	/* Rule 1: packs durable; rule 2: then indexed; rule 3: then the manifest. */
	if ((rc = repo_pack_writer_flush(pw[0])) < 0 || (rc = repo_pack_writer_flush(pw[1])) < 0 ||
		(rc = repo_index_flush(c->to)) < 0 || (rc = repo_lock_check(c->to_lock)) < 0)
		goto done;
	rc = repo_manifest_write(c->to, doc);
	if (rc == PV_EEXISTS)
	{
		pv_log_detail("copy: backup %s appeared in '%s' meanwhile", repo_manifest_id(m),
					  repo_url(c->to));
		pv_error_clear();
		rc = 0;
	}
	else if (rc == 0)
		*copied = true;
done:
	for (int i = 0; i < 2; i++)
	{
		repo_pack_writer_stats(pw[i], &ps);
		c->stats.packs += ps.packs;
	}
	json_decref(doc);
	return rc;
}

int
repo_copy_one(RepoCopy *c, const char *id, bool *out_copied)
{
	RepoManifest *m = NULL;
	Plan p = {NULL, 0, 0, id};
	PvPool *pool = NULL;
	RepoPackWriter *pw[2] = {NULL, NULL};
	char key[16 + REPO_BACKUP_ID_LEN];
	bool exists = false, copied = false;
	int rc;

	if (out_copied != NULL)
		*out_copied = false;
	if (!repo_backup_id_valid(id))
		return pv_error_set(PV_EUSAGE, "'%s' is not a backup id", id);
	snprintf(key, sizeof(key), "snapshots/%s", id);
	if ((rc = storage_exists(repo_storage(c->to), key, &exists)) < 0)
		return pv_error_prefix(rc, "repository '%s'", repo_url(c->to));
	if (exists)
	{
		c->stats.backups_present++;
		return 0;
	}
	if ((rc = repo_manifest_load(&m, c->from, id)) < 0)
		return rc;
	c->gen++;
	if (c->remap)
		seed_map(c, m);
	if ((rc = plan_backup(c, m, &p)) < 0)
		goto done;
	if (c->opts.dry_run)
	{
		c->stats.backups++;
		if (!c->remap)
			c->stats.blobs_written += p.n;	/* would be */
		goto done;
	}
	pool = pv_pool_new(c->opts.jobs, 0);
	pw[0] = repo_pack_writer_new(c->to, 0, 0);
	pw[1] = repo_pack_writer_new(c->to, 0, 0);
	if ((rc = copy_wanted(c, &p, pool, pw)) < 0 || (rc = copy_commit(c, m, pw, &copied)) < 0)
		goto done;
	if (copied)
	{
		c->stats.backups++;
		pv_log_detail("copy: backup %s copied to '%s'", id, repo_url(c->to));
	}
	else
		c->stats.backups_present++;
	if (out_copied != NULL)
		*out_copied = copied;
done:
	pv_pool_free(pool);
	repo_pack_writer_free(pw[0]);
	repo_pack_writer_free(pw[1]);
	pv_free(p.wants);
	repo_manifest_free(m);
	return rc;
}

int
repo_copy_backup(Repo *from, Repo *to, const char *id, const RepoCopyOpts *opts,
				 RepoCopyStats *out)
{
	RepoCopy *c = NULL;
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if ((rc = repo_copy_begin(&c, from, to, opts)) < 0)
		return rc;
	rc = repo_copy_one(c, id, NULL);
	if (out != NULL)
		*out = c->stats;
	repo_copy_end(c);
	return rc;
}

/* ---- the WAL archive ---- */

/* "wal/<source>/<8 upper hex>/<name starting with those 8>": an archived file. */
static bool
wal_key_valid(const char *key, size_t prefix_len)
{
	const char *rest = key + prefix_len;
	const char *name = rest + 9;

	for (int i = 0; i < 8; i++)
		if (!((rest[i] >= '0' && rest[i] <= '9') || (rest[i] >= 'A' && rest[i] <= 'F')))
			return false;
	return rest[8] == '/' && strlen(name) >= 8 && strchr(name, '/') == NULL &&
		memcmp(name, rest, 8) == 0;
}

/* Check an archived file object's decoded plaintext (format section 11). */
static int
wal_plain_check(const Buf *plain)
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (plain->len < WAL_HEADER_LEN || memcmp(plain->data, WAL_MAGIC, 4) != 0 ||
		plain->data[4] != 1)
		return pv_error_set(PV_ECORRUPT, "its header is not that of an archived WAL file");
	if (pv_read_u64le(plain->data + 8) != plain->len - WAL_HEADER_LEN)
		return pv_error_set(PV_ECORRUPT, "it holds %zu bytes, its header says %llu",
							plain->len - WAL_HEADER_LEN,
							(unsigned long long) pv_read_u64le(plain->data + 8));
	EVP_Digest(plain->data + WAL_HEADER_LEN, plain->len - WAL_HEADER_LEN, md, &mdlen,
			   EVP_sha256(), NULL);
	if (memcmp(md, plain->data + 16, 32) != 0)
		return pv_error_set(PV_ECORRUPT, "its content does not match its SHA-256");
	return 0;
}

/* Copy one archived file object (key) unless the destination has it. */
static int
wal_object_copy(Repo *from, Repo *to, const char *key, bool *copied, uint64_t *stored_len)
{
	const RepoKeys *fk = repo_keys(from), *tk = repo_keys(to);
	Buf stored = PV_BUF_INIT, z = PV_BUF_INIT, plain = PV_BUF_INIT, out = PV_BUF_INIT;
	const unsigned char *zp;
	size_t zlen;
	int rc;

	*copied = false;
	*stored_len = 0;
	if ((rc = storage_get(repo_storage(from), key, &stored)) < 0)
	{
		rc = pv_error_prefix(rc, "repository '%s'", repo_url(from));
		goto done;
	}
	zp = stored.data;
	zlen = stored.len;
	if (fk != NULL)
	{
		if ((rc = repo_aead_open(fk, key, strlen(key), stored.data, stored.len, &z)) < 0)
			goto corrupt;
		zp = z.data;
		zlen = z.len;
	}
	if ((rc = repo_blob_decode(&plain, NULL, NULL, 0, zp, zlen, 0)) < 0 ||
		(rc = wal_plain_check(&plain)) < 0)
		goto corrupt;
	if (tk != NULL)
	{
		if ((rc = repo_aead_seal(tk, key, strlen(key), zp, zlen, &out)) < 0)
			goto done;
	}
	else
		buf_append(&out, zp, zlen);
	rc = storage_put(repo_storage(to), key, out.data, out.len, STORAGE_PUT_NO_OVERWRITE);
	if (rc == PV_EEXISTS)
	{
		pv_error_clear();
		rc = 0;
	}
	else if (rc < 0)
		rc = pv_error_prefix(rc, "cannot copy WAL object '%s' to repository '%s'", key,
							 repo_url(to));
	else
	{
		*copied = true;
		*stored_len = out.len;
	}
	goto done;
corrupt:
	rc = pv_error_prefix(PV_ECORRUPT, "WAL object '%s' of repository '%s' is corrupt", key,
						 repo_url(from));
done:
	buf_free(&stored);
	buf_free_secret(&z);
	buf_free_secret(&plain);
	buf_free(&out);
	return rc;
}

/* The system identifier an archive.info object records (decoded with repo's keys). */
static int
wal_info_read(Repo *repo, const char *key, Buf *plain, char **sysid)
{
	Buf stored = PV_BUF_INIT;
	json_t *doc = NULL;
	const char *s;
	int rc;

	*sysid = NULL;
	if ((rc = storage_get(repo_storage(repo), key, &stored)) < 0)
		goto done;
	if ((rc = repo_meta_decode(repo, stored.data, stored.len, plain)) < 0 ||
		(rc = json_object_parse(&doc, plain, key)) < 0)
	{
		rc = pv_error_prefix(PV_ECORRUPT, "'%s' in repository '%s' is corrupt", key,
							 repo_url(repo));
		goto done;
	}
	if ((s = json_string_value(json_object_get(doc, "system_identifier"))) == NULL)
	{
		rc = pv_error_set(PV_ECORRUPT, "'%s' in repository '%s' names no system identifier",
						  key, repo_url(repo));
		goto done;
	}
	*sysid = pv_strdup(s);
done:
	json_decref(doc);
	buf_free(&stored);
	return rc;
}

/*
 * archive.info of source: copy it when the destination has none; refuse
 * when the destination's names another database system.  Nothing when the
 * source's archive has none.
 */
static int
wal_info_copy(Repo *from, Repo *to, const char *source, bool dry_run)
{
	char *key = pv_asprintf("wal/%s/" WAL_INFO_NAME, source);
	Buf plain = PV_BUF_INIT, theirs = PV_BUF_INIT, stored = PV_BUF_INIT;
	char *ours_id = NULL, *their_id = NULL;
	int rc;

	if ((rc = wal_info_read(from, key, &plain, &ours_id)) < 0)
		goto done;
	if ((rc = repo_meta_encode(to, plain.data, plain.len, &stored)) < 0)
		goto done;
	/* Twice at most: when a put finds the name taken, compare with that one. */
	for (int attempt = 0; attempt < 2; attempt++)
	{
		buf_reset(&theirs);
		pv_free(their_id);
		their_id = NULL;
		if ((rc = wal_info_read(to, key, &theirs, &their_id)) == 0)
		{
			if (strcmp(ours_id, their_id) != 0)
			{
				rc = pv_error_set(PV_EREFUSED, "the WAL archive of source '%s' in repository "
								  "'%s' belongs to database system %s, the one in '%s' to %s",
								  source, repo_url(to), their_id, repo_url(from), ours_id);
				pv_error_hint("the repositories hold WAL of different clusters under one "
							  "source name");
			}
			goto done;
		}
		if (rc != PV_ENOTFOUND || dry_run)
			goto done;
		rc = storage_put(repo_storage(to), key, stored.data, stored.len,
						 STORAGE_PUT_NO_OVERWRITE);
		if (rc != PV_EEXISTS)
			break;
	}
	if (rc < 0)
		rc = pv_error_prefix(rc, "cannot copy '%s' to repository '%s'", key, repo_url(to));
done:
	if (rc == PV_ENOTFOUND)		/* the source has no archive.info (or dry run) */
	{
		pv_error_clear();
		rc = 0;
	}
	pv_free(key);
	pv_free(ours_id);
	pv_free(their_id);
	buf_free(&plain);
	buf_free(&theirs);
	buf_free(&stored);
	return rc;
}

typedef struct WalJob
{
	Repo *from;
	Repo *to;
	char *key;
	pthread_mutex_t *mu;
	RepoCopyStats *stats;
} WalJob;

static void
wal_job_free(void *arg)
{
	WalJob *j = arg;

	pv_free(j->key);
	pv_free(j);
}

static int
wal_job_run(void *arg)
{
	WalJob *j = arg;
	bool copied;
	uint64_t len;
	int rc = wal_object_copy(j->from, j->to, j->key, &copied, &len);

	if (rc == 0)
	{
		pthread_mutex_lock(j->mu);
		if (copied)
		{
			j->stats->wal_files++;
			j->stats->wal_bytes += len;
		}
		else
			j->stats->wal_present++;
		pthread_mutex_unlock(j->mu);
	}
	return rc;
}

int
repo_copy_wal_source(Repo *from, Repo *to, const char *source, const RepoCopyOpts *opts,
					 RepoCopyStats *stats)
{
	RepoCopyOpts o = {0};
	RepoCopyStats s = {0};
	RepoKeyList a = {0}, b = {0};
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	PvPool *pool = NULL;
	char *prefix = NULL;
	size_t plen;
	int rc, wrc;

	if (opts != NULL)
		o = *opts;
	if (!name_valid(source))
		return pv_error_set(PV_EUSAGE, "invalid source name '%s'", source ? source : "");
	if (strcmp(repo_id(from), repo_id(to)) == 0)
		return pv_error_set(PV_EUSAGE, "'%s' and '%s' are the same repository", repo_url(from),
							repo_url(to));
	prefix = pv_asprintf("wal/%s/", source);
	plen = strlen(prefix);
	if ((rc = wal_info_copy(from, to, source, o.dry_run)) < 0 ||
		(rc = repo_keylist_get(&a, repo_storage(from), prefix)) < 0 ||
		(rc = repo_keylist_get(&b, repo_storage(to), prefix)) < 0)
		goto done;
	if (!o.dry_run)
		pool = pv_pool_new(o.jobs, 0);
	for (size_t i = 0; i < a.n && rc == 0; i++)
	{
		const char *key = a.keys[i];
		WalJob *j;

		if (!wal_key_valid(key, plen))
			continue;			/* archive.info and anything foreign */
		if (b.n > 0 && pv_bsearch(&key, b.keys, b.n, sizeof(char *), cmp_str) != NULL)
		{
			s.wal_present++;
			continue;
		}
		if (o.dry_run)
		{
			s.wal_files++;
			continue;
		}
		j = PV_NEW(WalJob);
		*j = (WalJob) {from, to, pv_strdup(key), &mu, &s};
		rc = pv_pool_submit_owned(pool, wal_job_run, j, wal_job_free);
	}
	if (pool != NULL && (wrc = pv_pool_wait(pool)) < 0 && rc == 0)
		rc = wrc;
	if (s.wal_files > 0 && !o.dry_run)
		pv_log_detail("copy: %llu WAL files of source '%s' copied to '%s'",
					  (unsigned long long) s.wal_files, source, repo_url(to));
done:
	pv_pool_free(pool);
	if (stats != NULL)
		stats_add(stats, &s);
	repo_keylist_free(&a);
	repo_keylist_free(&b);
	pv_free(prefix);
	pthread_mutex_destroy(&mu);
	return rc;
}

int
repo_copy_wal(RepoCopy *c, const char *source)
{
	return repo_copy_wal_source(c->from, c->to, source, &c->opts, &c->stats);
}

int
repo_copy_wal_file(Repo *from, Repo *to, const char *source, const char *name,
				   bool *out_copied)
{
	char *key = NULL;
	bool copied = false, exists = false;
	uint64_t len;
	int rc;

	if (out_copied != NULL)
		*out_copied = false;
	if (!name_valid(source))
		return pv_error_set(PV_EUSAGE, "invalid source name '%s'", source ? source : "");
	if (name == NULL || strlen(name) < 8 || strchr(name, '/') != NULL)
		return pv_error_set(PV_EUSAGE, "'%s' is not a WAL file name", name ? name : "");
	key = pv_asprintf("wal/%s/%.8s/%s", source, name, name);
	if (!wal_key_valid(key, strlen(source) + 5))
	{
		rc = pv_error_set(PV_EUSAGE, "'%s' is not a WAL file name", name);
		goto done;
	}
	if ((rc = storage_exists(repo_storage(to), key, &exists)) < 0)
		goto done;
	if (exists)
		goto done;
	if ((rc = wal_info_copy(from, to, source, false)) < 0 ||
		(rc = wal_object_copy(from, to, key, &copied, &len)) < 0)
		goto done;
	if (rc == 0 && out_copied != NULL)
		*out_copied = copied;
done:
	pv_free(key);
	return rc;
}

static int
source_add(const char *key, const StorageInfo *info, void *payload)
{
	RepoKeyList *l = payload;
	const char *s = key + 4;
	const char *slash = strchr(s, '/');
	char *name;

	(void) info;
	if (slash == NULL || slash == s)
		return 0;
	name = pv_strndup(s, (size_t) (slash - s));
	if (name_valid(name) && !repo_keylist_has(l, name))
		repo_keylist_add(l, name, 0);
	pv_free(name);
	return 0;
}

int
repo_copy_wal_sources(Repo *repo, char ***out, size_t *out_n)
{
	RepoKeyList l = {0};
	int rc;

	*out = NULL;
	*out_n = 0;
	if ((rc = storage_list(repo_storage(repo), "wal/", source_add, &l)) < 0)
	{
		repo_keylist_free(&l);
		return rc;
	}
	if (l.n > 1)
		pv_qsort(l.keys, l.n, sizeof(char *), cmp_str);
	*out = l.keys;
	*out_n = l.n;
	pv_free(l.info);
	return 0;
}

/* ---- lag records ---- */

static int
lag_key(char **out, const char *secondary, const char *what, const char *id)
{
	*out = NULL;
	if (!name_valid(secondary))
		return pv_error_set(PV_EUSAGE, "invalid repository name '%s' for a lag record",
							secondary ? secondary : "");
	if (what == NULL || (strcmp(what, "backup") != 0 && strcmp(what, "wal") != 0))
		return pv_error_set(PV_EUSAGE, "invalid lag record kind '%s'", what ? what : "");
	if (strcmp(what, "backup") == 0 ? !repo_backup_id_valid(id) : !name_valid(id))
		return pv_error_set(PV_EUSAGE, "invalid %s '%s' for a lag record", what, id ? id : "");
	*out = pv_asprintf(REPO_COPY_LAG_PREFIX "%s/%s-%s", secondary, what, id);
	return 0;
}

void
repo_copy_lag_free(RepoCopyLag *l)
{
	pv_free(l->key);
	pv_free(l->secondary);
	pv_free(l->url);
	pv_free(l->what);
	pv_free(l->id);
	pv_free(l->error);
	memset(l, 0, sizeof(*l));
}

/* Fill l from its key ("records/lag/<secondary>/<what>-<id>"); false if it is no lag record. */
static bool
lag_from_key(RepoCopyLag *l, const char *key)
{
	const char *s = key + strlen(REPO_COPY_LAG_PREFIX);
	const char *slash = strchr(s, '/');
	const char *dash;

	if (strncmp(key, REPO_COPY_LAG_PREFIX, strlen(REPO_COPY_LAG_PREFIX)) != 0 || slash == NULL ||
		(dash = strchr(slash + 1, '-')) == NULL)
		return false;
	l->key = pv_strdup(key);
	l->secondary = pv_strndup(s, (size_t) (slash - s));
	l->what = pv_strndup(slash + 1, (size_t) (dash - slash - 1));
	l->id = pv_strdup(dash + 1);
	if (!name_valid(l->secondary) ||
		(strcmp(l->what, "backup") != 0 && strcmp(l->what, "wal") != 0))
	{
		repo_copy_lag_free(l);
		return false;
	}
	return true;
}

/* Read the record at l->key into l. */
static int
lag_read(Repo *primary, RepoCopyLag *l)
{
	Buf stored = PV_BUF_INIT, plain = PV_BUF_INIT;
	json_t *doc = NULL;
	int64_t since = 0, last = 0, attempts = 0;
	const char *s;
	int rc;

	if ((rc = storage_get(repo_storage(primary), l->key, &stored)) < 0)
		goto done;
	if ((rc = repo_meta_decode(primary, stored.data, stored.len, &plain)) < 0 ||
		(rc = json_object_parse(&doc, &plain, l->key)) < 0)
	{
		rc = pv_error_prefix(PV_ECORRUPT, "lag record '%s' is corrupt", l->key);
		goto done;
	}
	pv_json_opt_int(&since, doc, "since_unix", 0);
	pv_json_opt_int(&last, doc, "last_attempt_unix", 0);
	pv_json_opt_int(&attempts, doc, "attempts", 0);
	pv_error_clear();
	/* a damaged time must not overflow to microseconds: it is unknown (0) */
	if (since < 0 || since > INT64_MAX / PV_USEC_PER_SEC)
		since = 0;
	if (last < 0 || last > INT64_MAX / PV_USEC_PER_SEC)
		last = 0;
	l->since = since * PV_USEC_PER_SEC;
	l->last_attempt = last * PV_USEC_PER_SEC;
	l->attempts = attempts;
	if ((s = json_string_value(json_object_get(doc, "url"))) != NULL)
		l->url = pv_strdup(s);
	if ((s = json_string_value(json_object_get(doc, "error"))) != NULL)
		l->error = pv_strdup(s);
done:
	json_decref(doc);
	buf_free(&stored);
	buf_free(&plain);
	return rc;
}

int
repo_copy_lag_note(Repo *primary, const char *secondary, const char *url, const char *what,
				   const char *id, const char *error)
{
	RepoCopyLag old = {0};
	char *key = NULL;
	char t1[PV_TIME_FORMAT_MAX], t2[PV_TIME_FORMAT_MAX];
	PvTime now = pv_time_now();
	Buf text = PV_BUF_INIT, stored = PV_BUF_INIT;
	json_t *doc = NULL;
	char *msg;
	int rc;

	if ((rc = lag_key(&key, secondary, what, id)) < 0)
		return rc;
	/* error may be pv_error_msg(), which the reads below overwrite */
	msg = pv_strdup(error ? error : "");
	old.key = pv_strdup(key);
	if (lag_read(primary, &old) < 0 || old.since == 0)
	{
		pv_error_clear();
		old.since = now;
		old.attempts = 0;
	}
	now = now / PV_USEC_PER_SEC * PV_USEC_PER_SEC;
	doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:s}",
					"format", 1, "secondary", secondary, "url", url ? url : "", "what", what,
					"id", id, "since", pv_time_format_utc(t1, sizeof(t1), old.since),
					"since_unix", (json_int_t) (old.since / PV_USEC_PER_SEC),
					"last_attempt", pv_time_format_utc(t2, sizeof(t2), now),
					"last_attempt_unix", (json_int_t) (now / PV_USEC_PER_SEC),
					"attempts", (json_int_t) (old.attempts + 1), "error", msg);
	if ((rc = pv_json_to_buf(&text, doc, false)) < 0 ||
		(rc = repo_meta_encode(primary, text.data, text.len, &stored)) < 0)
		goto done;
	/* A record is state, not history: each failure rewrites it. */
	if ((rc = storage_put(repo_storage(primary), key, stored.data, stored.len, 0)) < 0)
		rc = pv_error_prefix(rc, "cannot record that repository '%s' lags", secondary);
done:
	json_decref(doc);
	buf_free(&text);
	buf_free(&stored);
	repo_copy_lag_free(&old);
	pv_free(key);
	pv_free(msg);
	return rc;
}

int
repo_copy_lag_clear(Repo *primary, const char *secondary, const char *what, const char *id)
{
	char *key = NULL;
	int rc;

	if ((rc = lag_key(&key, secondary, what, id)) < 0)
		return rc;
	rc = storage_delete(repo_storage(primary), key);
	if (rc == PV_ENOTFOUND)
	{
		pv_error_clear();
		rc = 0;
	}
	pv_free(key);
	return rc;
}

int
repo_copy_lag_get(Repo *primary, const char *secondary, const char *what, const char *id,
				  RepoCopyLag *out)
{
	char *key = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = lag_key(&key, secondary, what, id)) < 0)
		return rc;
	if (!lag_from_key(out, key))
		rc = pv_error_set(PV_EUSAGE, "invalid lag record name '%s'", key);	/* uncovered: lag_key made it */
	else if ((rc = lag_read(primary, out)) < 0)
		repo_copy_lag_free(out);
	pv_free(key);
	return rc;
}

int
repo_copy_lag_list(Repo *primary, const char *secondary, RepoCopyLagList *out)
{
	RepoKeyList keys = {0};
	char *prefix;
	int rc;

	memset(out, 0, sizeof(*out));
	if (secondary != NULL && !name_valid(secondary))
		return pv_error_set(PV_EUSAGE, "invalid repository name '%s'", secondary);
	prefix = secondary ? pv_asprintf(REPO_COPY_LAG_PREFIX "%s/", secondary) :
		pv_strdup(REPO_COPY_LAG_PREFIX);
	if ((rc = repo_keylist_get(&keys, repo_storage(primary), prefix)) < 0)
		goto done;
	out->items = pv_calloc(keys.n ? keys.n : 1, sizeof(RepoCopyLag));
	for (size_t i = 0; i < keys.n; i++)
	{
		RepoCopyLag *l = &out->items[out->n];

		if (!lag_from_key(l, keys.keys[i]))
			continue;
		out->n++;
		if ((rc = lag_read(primary, l)) < 0)
		{
			if (rc == PV_ENOTFOUND)	/* cleared meanwhile */
			{
				repo_copy_lag_free(l);
				out->n--;
			}
			else
				l->error = pv_strdup(pv_error_msg());
			pv_error_clear();
			rc = 0;
		}
	}
done:
	if (rc < 0)
		repo_copy_lag_list_free(out);
	repo_keylist_free(&keys);
	pv_free(prefix);
	return rc;
}

void
repo_copy_lag_list_free(RepoCopyLagList *l)
{
	for (size_t i = 0; i < l->n; i++)
		repo_copy_lag_free(&l->items[i]);
	pv_free(l->items);
	memset(l, 0, sizeof(*l));
}
