/*
 * reader.c: fetching and checking blobs, and streaming items back with
 * read-ahead (see reader.h).
 *
 * Read-ahead: `ra` slots form a ring; chunk i lives in slot i % ra.  Fetch
 * threads take the next chunk number (next_fetch) while it is below
 * cur + ra, so the slot they fill was released by the consumer before (its
 * previous chunk, i - ra, is below cur).  The consumer waits for slot
 * cur % ra to be READY, copies out of it, and releases it when the chunk is
 * used up.  All slot state is guarded by mu; the fetching itself runs
 * outside it.  Memory: ra chunks per reader.
 *
 * Pack handles (RepoPackCache): entries are found by pack id under the
 * cache's mutex and pinned (refs) while a fetch reads through them, so
 * eviction (least recently used, refs == 0 only) never closes a handle in
 * use.  When every entry is pinned, a fetch opens a handle of its own and
 * closes it after the read.  Reads themselves run outside the mutex.
 */
#include "repo/reader.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/blob.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/quarantine.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define READER_DEFAULT_READAHEAD 4
#define READER_DEFAULT_THREADS 2

/* " (context)" or "" */
#define CTX_FMT "%s%s%s"
#define CTX_ARGS(c) ((c) ? " (" : ""), ((c) ? (c) : ""), ((c) ? ")" : "")

/* ---- pack handle cache ---- */

#define PACK_CACHE_DEFAULT_MAX 8

typedef struct PackEntry
{
	unsigned char pack_id[REPO_ID_LEN];
	StorageReader *rd;			/* NULL: free entry */
	int refs;					/* fetches reading through it now */
	uint64_t used;				/* tick of the last acquire */
	bool dead;					/* failed: close when the last user lets go */
} PackEntry;

struct RepoPackCache
{
	Repo *repo;
	pthread_mutex_t mu;
	PackEntry *e;
	int max;
	uint64_t tick;
	uint64_t opens;
};

RepoPackCache *
repo_pack_cache_new(Repo *repo, int max)
{
	RepoPackCache *c = PV_NEW(RepoPackCache);

	c->repo = repo;
	c->max = max > 0 ? max : PACK_CACHE_DEFAULT_MAX;
	c->e = pv_calloc((size_t) c->max, sizeof(PackEntry));
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

void
repo_pack_cache_free(RepoPackCache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < c->max; i++)
		storage_reader_close(c->e[i].rd);
	pv_free(c->e);
	pthread_mutex_destroy(&c->mu);
	pv_free(c);
}

uint64_t
repo_pack_cache_opens(RepoPackCache *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->mu);
	n = c->opens;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/*
 * A handle on pack key (id pack_id), pinned: *out_entry is the cache entry
 * to release, or NULL when *out is a private handle (cache full of pinned
 * entries) to close after use.  The open runs under the mutex: it is one
 * system call for the posix driver and keeps two fetches from opening the
 * same pack twice.
 */
static int
pack_cache_acquire(RepoPackCache *c, const unsigned char pack_id[REPO_ID_LEN], const char *key,
				   StorageReader **out, PackEntry **out_entry)
{
	PackEntry *victim = NULL;
	int rc = 0;

	*out_entry = NULL;
	pthread_mutex_lock(&c->mu);
	c->tick++;
	for (int i = 0; i < c->max; i++)
	{
		PackEntry *e = &c->e[i];

		if (e->rd != NULL && !e->dead && memcmp(e->pack_id, pack_id, REPO_ID_LEN) == 0)
		{
			e->refs++;
			e->used = c->tick;
			*out = e->rd;
			*out_entry = e;
			goto done;
		}
		if (e->refs != 0)
			continue;
		/* a free entry, else the least recently used idle one */
		if (e->rd == NULL)
		{
			if (victim == NULL || victim->rd != NULL)
				victim = e;
		}
		else if (victim == NULL || (victim->rd != NULL && e->used < victim->used))
			victim = e;
	}
	if ((rc = storage_reader_open(out, repo_storage(c->repo), key)) < 0)
		goto done;
	c->opens++;
	if (victim != NULL)
	{
		storage_reader_close(victim->rd);
		memcpy(victim->pack_id, pack_id, REPO_ID_LEN);
		victim->rd = *out;
		victim->refs = 1;
		victim->used = c->tick;
		victim->dead = false;
		*out_entry = victim;
	}
done:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Unpin; failed: the handle read wrongly, so no later fetch may reuse it. */
static void
pack_cache_release(RepoPackCache *c, StorageReader *rd, PackEntry *e, bool failed)
{
	if (e == NULL)
	{
		storage_reader_close(rd);
		return;
	}
	pthread_mutex_lock(&c->mu);
	if (failed)
		e->dead = true;
	if (--e->refs == 0 && e->dead)
	{
		storage_reader_close(e->rd);
		e->rd = NULL;
		e->dead = false;
	}
	pthread_mutex_unlock(&c->mu);
}

/* Read a chunk's stored bytes from its pack, through cache when there is one. */
static int
chunk_read_stored(Repo *repo, RepoPackCache *cache, const RepoIndexHit *hit, const char *key,
				  Buf *stored)
{
	StorageReader *rd;
	PackEntry *e;
	int rc;

	if (cache == NULL)
		return storage_get_range(repo_storage(repo), key, hit->offset, hit->length, stored);
	if ((rc = pack_cache_acquire(cache, hit->pack_id, key, &rd, &e)) < 0)
		return rc;
	rc = storage_reader_range(rd, hit->offset, hit->length, stored);
	pack_cache_release(cache, rd, e, rc < 0);
	return rc;
}

int
repo_chunk_fetch(Repo *repo, const unsigned char id[REPO_ID_LEN], Buf *out, const char *context)
{
	return repo_chunk_fetch_cached(repo, NULL, id, out, context);
}

int
repo_chunk_fetch_cached(Repo *repo, RepoPackCache *cache, const unsigned char id[REPO_ID_LEN],
						Buf *out, const char *context)
{
	char idhex[2 * REPO_ID_LEN + 1];
	char packhex[2 * REPO_ID_LEN + 1];
	char key[REPO_PACK_KEY_MAX];
	unsigned char check[REPO_ID_LEN];
	RepoIndex *idx;
	RepoIndexHit hit;
	Buf stored = PV_BUF_INIT;
	size_t start = out->len;
	int rc;

	if ((rc = repo_index_get(repo, &idx)) < 0)
		return rc;
	repo_id_hex(idhex, id);
	if (!repo_index_lookup(idx, id, &hit))
	{
		const RepoQuarantine *q = NULL;

		if (repo_quarantine_get(repo, &q) == 0 && repo_quarantine_has_id(q, id))
		{
			rc = pv_error_set(PV_ECORRUPT, "chunk %s is damaged (a verify found it so and set it aside)"
							  CTX_FMT, idhex, CTX_ARGS(context));
			pv_error_hint("a new backup of the same data stores the chunk again and so repairs this "
						  "backup; or copy the backup from another repository ('pgvault copy')");
			return rc;
		}
		pv_error_clear();
		rc = pv_error_set(PV_ECORRUPT, "chunk %s is not in the index of repository '%s'" CTX_FMT,
						  idhex, repo_url(repo), CTX_ARGS(context));
		pv_error_hint("if its pack still exists, 'pgvault repo rebuild-index' finds it again");
		return rc;
	}
	repo_id_hex(packhex, hit.pack_id);
	repo_pack_key(key, hit.pack_id);
	rc = chunk_read_stored(repo, cache, &hit, key, &stored);
	if (rc == PV_ENOTFOUND)
	{
		rc = pv_error_set(PV_ECORRUPT, "pack %s holding chunk %s is missing" CTX_FMT, packhex,
						  idhex, CTX_ARGS(context));
		goto done;
	}
	if (rc == PV_ECORRUPT)
	{
		rc = pv_error_set(PV_ECORRUPT, "pack %s is truncated: chunk %s is past its end" CTX_FMT,
						  packhex, idhex, CTX_ARGS(context));
		goto done;
	}
	if (rc < 0)
	{
		rc = pv_error_prefix(rc, "cannot read chunk %s from pack %s" CTX_FMT, idhex, packhex,
							 CTX_ARGS(context));
		goto done;
	}
	rc = repo_blob_decode(out, repo_keys(repo), id, REPO_ID_LEN, stored.data, stored.len,
						  hit.raw_length);
	if (rc == 0)
	{
		/* The one hash of these bytes: it authenticates them (see reader.h). */
		repo_id_compute(check, repo_keys(repo), out->data + start, out->len - start);
		if (out->len - start != hit.raw_length || memcmp(check, id, REPO_ID_LEN) != 0)
			rc = PV_ECORRUPT;
	}
	else
		pv_log_debug("chunk %s: %s", idhex, pv_error_msg());
	if (rc < 0)
	{
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		rc = pv_error_set(PV_ECORRUPT, "chunk %s in pack %s is corrupt" CTX_FMT, idhex, packhex,
						  CTX_ARGS(context));
	}
done:
	buf_free(&stored);
	return rc;
}

/* ---- item reader ---- */

enum
{
	SLOT_EMPTY = 0,
	SLOT_LOADING,
	SLOT_READY,
	SLOT_FAILED,
};

typedef struct Slot
{
	int state;
	Buf data;
	PvErrorSave err;
	int rc;
} Slot;

struct RepoReader
{
	Repo *repo;
	char context[512];
	char name[256];
	char backup[REPO_BACKUP_ID_LEN + 1];
	RepoChunkRef *chunks;
	size_t n;
	uint64_t size;
	bool has_sha256;
	unsigned char sha256[32];
	EVP_MD_CTX *md;				/* NULL: the whole-file hash is not checked */
	RepoPackCache *packs;
	bool own_packs;				/* packs is ours to free */

	uint64_t pos;				/* bytes handed out */
	size_t cur;					/* chunk being consumed (or next) */
	size_t cur_off;				/* bytes of chunk cur handed out */
	bool cur_loaded;			/* chunk cur's bytes are in its slot (or sync) */
	int error;
	PvErrorSave error_save;
	bool done;

	int ra;						/* 0: synchronous */
	Slot *slots;
	Buf sync;
	pthread_t *threads;
	int nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	size_t next_fetch;
	bool stop;
};

static void *
reader_fetch_thread(void *arg)
{
	RepoReader *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->stop)
	{
		size_t i;
		Slot *slot;
		Buf data = PV_BUF_INIT;
		int rc;

		if (r->next_fetch >= r->n || r->next_fetch >= r->cur + (size_t) r->ra)
		{
			pthread_cond_wait(&r->cond, &r->mu);
			continue;
		}
		i = r->next_fetch++;
		slot = &r->slots[i % (size_t) r->ra];
		slot->state = SLOT_LOADING;
		pthread_mutex_unlock(&r->mu);

		pv_error_clear();
		rc = repo_chunk_fetch_cached(r->repo, r->packs, r->chunks[i].id, &data, r->context);

		pthread_mutex_lock(&r->mu);
		slot->rc = rc;
		if (rc < 0)
		{
			pv_error_save(&slot->err);
			slot->state = SLOT_FAILED;
			buf_free(&data);
		}
		else
		{
			buf_free(&slot->data);
			slot->data = data;
			slot->state = SLOT_READY;
		}
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int
repo_reader_open(RepoReader **out, Repo *repo, const RepoManifest *m, const RepoItem *item,
				 const RepoReaderOpts *opts)
{
	RepoReader *r = PV_NEW(RepoReader);
	int ra = opts && opts->readahead ? opts->readahead : READER_DEFAULT_READAHEAD;
	int nthreads = opts && opts->threads > 0 ? opts->threads : READER_DEFAULT_THREADS;

	r->repo = repo;
	snprintf(r->name, sizeof(r->name), "%s", item->name);
	snprintf(r->backup, sizeof(r->backup), "%s", repo_manifest_id(m));
	snprintf(r->context, sizeof(r->context), "backup %s, item %s", r->backup, item->name);
	r->n = item->nchunks;
	r->chunks = pv_malloc((r->n ? r->n : 1) * sizeof(RepoChunkRef));
	memcpy(r->chunks, item->chunks, r->n * sizeof(RepoChunkRef));
	r->size = item->size;
	r->has_sha256 = item->has_sha256;
	memcpy(r->sha256, item->sha256, sizeof(r->sha256));
	if (opts && opts->check_item_sha256 && r->has_sha256)
	{
		r->md = EVP_MD_CTX_new();
		EVP_DigestInit_ex(r->md, EVP_sha256(), NULL);
	}
	r->packs = opts ? opts->packs : NULL;
	if (r->packs == NULL && r->n > 1)
	{
		/* an item's chunks mostly sit in a few packs, in order */
		r->packs = repo_pack_cache_new(repo, 4);
		r->own_packs = true;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);

	r->ra = ra < 0 || r->n == 0 ? 0 : ra;
	if (r->ra > 0)
	{
		if ((size_t) nthreads > r->n)
			nthreads = (int) r->n;
		if (nthreads > r->ra)
			nthreads = r->ra;
		r->slots = pv_calloc((size_t) r->ra, sizeof(Slot));
		r->threads = pv_calloc((size_t) nthreads, sizeof(pthread_t));
		for (int t = 0; t < nthreads; t++)
		{
			if (pthread_create(&r->threads[t], NULL, reader_fetch_thread, r) != 0)
				break;	/* fewer threads is still correct */
			r->nthreads++;
		}
		if (r->nthreads == 0)
			r->ra = 0;	/* uncovered: no thread could start; read synchronously */
	}
	*out = r;
	return 0;
}

void
repo_reader_free(RepoReader *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
	for (int t = 0; t < r->nthreads; t++)
		pthread_join(r->threads[t], NULL);
	if (r->slots != NULL)
		for (int s = 0; s < r->ra; s++)
			buf_free(&r->slots[s].data);
	pv_free(r->slots);
	pv_free(r->threads);
	buf_free(&r->sync);
	pv_free(r->chunks);
	EVP_MD_CTX_free(r->md);
	if (r->own_packs)
		repo_pack_cache_free(r->packs);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cond);
	pv_free(r);
}

uint64_t
repo_reader_offset(const RepoReader *r)
{
	return r->pos;
}

static int
reader_fail(RepoReader *r, int rc)
{
	r->error = rc;
	pv_error_save(&r->error_save);
	return rc;
}

/* Make chunk cur's bytes available; returns the buffer holding them. */
static int
reader_load_current(RepoReader *r, Buf **out)
{
	char idhex[2 * REPO_ID_LEN + 1];
	Buf *b;
	int rc = 0;

	if (r->ra == 0)
	{
		b = &r->sync;
		if (!r->cur_loaded)
		{
			buf_reset(b);
			if ((rc = repo_chunk_fetch_cached(r->repo, r->packs, r->chunks[r->cur].id, b,
											  r->context)) < 0)
				return rc;
		}
	}
	else
	{
		Slot *slot = &r->slots[r->cur % (size_t) r->ra];

		pthread_mutex_lock(&r->mu);
		while (slot->state != SLOT_READY && slot->state != SLOT_FAILED)
			pthread_cond_wait(&r->cond, &r->mu);
		pthread_mutex_unlock(&r->mu);
		if (slot->state == SLOT_FAILED)
			return pv_error_restore(&slot->err);
		b = &slot->data;
	}
	r->cur_loaded = true;
	if (b->len != r->chunks[r->cur].raw_length)
	{
		repo_id_hex(idhex, r->chunks[r->cur].id);
		return pv_error_set(PV_ECORRUPT, "chunk %s holds %zu bytes, the manifest says %u (%s)",
							idhex, b->len, r->chunks[r->cur].raw_length, r->context);
	}
	*out = b;
	return rc;
}

/* Chunk cur is used up: free its slot for the fetchers. */
static void
reader_release_current(RepoReader *r)
{
	if (r->ra > 0)
	{
		Slot *slot = &r->slots[r->cur % (size_t) r->ra];

		pthread_mutex_lock(&r->mu);
		buf_reset(&slot->data);
		slot->state = SLOT_EMPTY;
		r->cur++;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->mu);
	}
	else
		r->cur++;
	r->cur_off = 0;
	r->cur_loaded = false;
}

static int
reader_finish(RepoReader *r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;

	r->done = true;
	if (r->md == NULL)
		return 0;
	EVP_DigestFinal_ex(r->md, md, &mdlen);
	if (memcmp(md, r->sha256, 32) != 0)
		return pv_error_set(PV_ECORRUPT, "item %s of backup %s does not match its checksum",
							r->name, r->backup);
	return 0;
}

int
repo_reader_read(RepoReader *r, void *buf, size_t cap, size_t *out_n)
{
	unsigned char *dst = buf;
	size_t got = 0;
	int rc = 0;

	*out_n = 0;
	if (r->error)
		return pv_error_restore(&r->error_save);
	while (got < cap && !r->done)
	{
		uint64_t next_start = r->cur < r->n ? r->chunks[r->cur].offset : r->size;
		size_t take;

		if (r->pos < next_start)
		{
			/* A gap before the next chunk (or the tail) reads as zeros. */
			take = (size_t) (next_start - r->pos < cap - got ? next_start - r->pos : cap - got);
			memset(dst + got, 0, take);
		}
		else if (r->cur < r->n)
		{
			Buf *b = NULL;

			if ((rc = reader_load_current(r, &b)) < 0)
				return reader_fail(r, rc);
			take = b->len - r->cur_off < cap - got ? b->len - r->cur_off : cap - got;
			memcpy(dst + got, b->data + r->cur_off, take);
			r->cur_off += take;
			if (r->cur_off == b->len)
				reader_release_current(r);
		}
		else
		{
			if ((rc = reader_finish(r)) < 0)
				return reader_fail(r, rc);
			break;
		}
		if (r->md != NULL)
			EVP_DigestUpdate(r->md, dst + got, take);
		got += take;
		r->pos += take;
	}
	*out_n = got;
	return 0;
}
