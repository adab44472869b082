/*
 * writer.c: the backup-side pipeline (see writer.h for the API and the
 * memory bound).
 *
 *   item thread:  bytes -> sha256 of the item -> chunker -> job (copy)
 *   pool worker:  job -> id -> dedup (this backup's set, then the index)
 *                 -> compress -> encrypt -> pack writer -> storage
 *   item end:     wait for the item's jobs -> JSON line -> tree stream
 *   tree stream:  lines -> chunker (64K/256K/1M) -> tree blob jobs
 *   commit:       last tree blob -> wait -> flush packs -> index -> manifest
 *
 * Locking:
 *   - w->mu guards the seen set, the stats, open_items and the item list of
 *     open items; never held while calling out (pool, storage, packs).
 *   - it->mu guards an item's chunk array (workers write ids into it while
 *     the item thread appends) and its pending-job count.
 *   - w->tree_mu guards the tree stream; held while submitting tree jobs,
 *     which may block on a full queue, but workers never take tree_mu, so
 *     that cannot deadlock.
 *
 * A chunk is claimed in the seen set before it is looked up and stored, so
 * two workers with the same new chunk store it once.  Jobs release their
 * data and their item's pending count in their free function, which the
 * pool runs exactly once whether the job ran or was dropped after a failure.
 */
#include "repo/writer.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "repo/blob.h"
#include "repo/chunker.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "pv_build.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* Chunking of the item list (format section 7). */
#define TREE_MIN_SIZE (64u * 1024)
#define TREE_AVG_SIZE (256u * 1024)
#define TREE_MAX_SIZE (1024u * 1024)

/* ---- the set of chunk ids this backup references ---- */

typedef struct SeenEntry
{
	unsigned char id[REPO_ID_LEN];
} SeenEntry;

typedef struct SeenSet
{
	SeenEntry *slots;			/* all-zero id = empty (a real id of zeros is absurdly unlikely; */
	bool *used;					/* ... but `used` makes it exact anyway) */
	size_t n;
	size_t cap;					/* power of 2 */
} SeenSet;

static void
seen_init(SeenSet *s)
{
	s->cap = 1024;
	s->n = 0;
	s->slots = pv_calloc(s->cap, sizeof(SeenEntry));
	s->used = pv_calloc(s->cap, sizeof(bool));
}

static void
seen_free(SeenSet *s)
{
	pv_free(s->slots);
	pv_free(s->used);
}

static size_t
seen_slot(const SeenSet *s, const unsigned char *id)
{
	uint64_t h;
	size_t i;

	memcpy(&h, id, sizeof(h));
	for (i = h & (s->cap - 1); s->used[i] && memcmp(s->slots[i].id, id, REPO_ID_LEN) != 0;
		 i = (i + 1) & (s->cap - 1))
		;
	return i;
}

/* Add id; true if it was new. */
static bool
seen_add(SeenSet *s, const unsigned char *id)
{
	size_t i = seen_slot(s, id);

	if (s->used[i])
		return false;
	memcpy(s->slots[i].id, id, REPO_ID_LEN);
	s->used[i] = true;
	s->n++;
	if (s->n * 10 > s->cap * 7)
	{
		SeenSet bigger = {pv_calloc(s->cap * 2, sizeof(SeenEntry)), pv_calloc(s->cap * 2, sizeof(bool)),
			0, s->cap * 2};

		for (size_t k = 0; k < s->cap; k++)
			if (s->used[k])
			{
				size_t j = seen_slot(&bigger, s->slots[k].id);

				bigger.slots[j] = s->slots[k];
				bigger.used[j] = true;
				bigger.n++;
			}
		seen_free(s);
		*s = bigger;
	}
	return true;
}

/* ---- writer state ---- */

struct RepoWriterItem
{
	RepoWriter *w;
	RepoItem item;				/* name, type, mode, chunks (ids filled by workers) */
	size_t chunks_cap;
	RepoChunker *chunker;		/* NULL: fixed-offset chunks of item.chunk_size */
	uint32_t max_chunk;
	Buf cur;					/* cur[start..len): the unfinished chunk */
	size_t start;
	uint64_t size;
	EVP_MD_CTX *md;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	size_t pending;
	RepoWriterItem *prev, *next;	/* open items of the writer */
};

struct RepoWriter
{
	Repo *repo;
	char id[REPO_BACKUP_ID_LEN + 1];
	PvTime start;
	char *kind;
	char *source;
	char *parent;
	RepoCompress comp;
	int level;
	RepoChunkerParams chunker;
	PvPool *pool;
	RepoPackWriter *data_packs;
	RepoPackWriter *tree_packs;
	RepoIndex *idx;				/* the repository's, loaded at new */
	RepoLock *lock;
	bool own_lock;

	pthread_mutex_t mu;
	SeenSet seen;
	RepoWriterStats stats;
	int error;
	PvErrorSave error_save;
	RepoWriterItem *open;		/* list of open items */
	int nopen;
	atomic_bool aborting;
	bool finished;				/* committed or aborted */

	pthread_mutex_t tree_mu;
	RepoChunker *tree_chunker;
	Buf tree_buf;
	size_t tree_start;
	RepoTreeRef *tree;
	size_t ntree;
	size_t tree_cap;
	uint64_t nitems;
};

typedef struct Job
{
	RepoWriter *w;
	RepoWriterItem *it;			/* NULL for tree blobs */
	size_t index;				/* chunk number in the item */
	uint8_t type;
	unsigned char id[REPO_ID_LEN];	/* given for tree blobs, computed for data */
	unsigned char *data;
	size_t len;
} Job;

/* Record the first failure; returns rc (with the message restored). */
static int
writer_fail(RepoWriter *w, int rc)
{
	pthread_mutex_lock(&w->mu);
	if (w->error == 0)
	{
		w->error = rc;
		pv_error_save(&w->error_save);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static int
writer_check(RepoWriter *w)
{
	int rc = 0;

	pthread_mutex_lock(&w->mu);
	if (w->error)
		rc = pv_error_restore(&w->error_save);
	else if (w->finished)
		rc = pv_error_set(PV_EUSAGE, "backup %s is already finished", w->id);
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* ---- workers ---- */

static void
job_free(void *arg)
{
	Job *job = arg;

	if (job->it != NULL)
	{
		pthread_mutex_lock(&job->it->mu);
		job->it->pending--;
		pthread_cond_broadcast(&job->it->cond);
		pthread_mutex_unlock(&job->it->mu);
	}
	pv_free(job->data);
	pv_free(job);
}

/* Compress and encrypt; the codec is read from the plaintext layout (blob.h). */
static int
job_encode(RepoWriter *w, const Job *job, Buf *out, uint8_t *codec)
{
	const RepoKeys *keys = repo_keys(w->repo);
	RepoCompress comp = job->type == REPO_BLOB_TREE ? REPO_COMPRESS_ZSTD : w->comp;
	int level = job->type == REPO_BLOB_TREE ? 3 : w->level;
	Buf plain = PV_BUF_INIT;
	int rc;

	if (keys == NULL)
	{
		rc = repo_blob_encode(out, NULL, comp, level, NULL, 0, job->data, job->len);
		*codec = out->len ? out->data[0] : 0;
		return rc;
	}
	/* Encrypted blob = seal(layout, aad = id): build the layout first to learn its codec. */
	if ((rc = repo_blob_encode(&plain, NULL, comp, level, NULL, 0, job->data, job->len)) == 0)
	{
		*codec = plain.data[0];
		rc = repo_aead_seal(keys, job->id, REPO_ID_LEN, plain.data, plain.len, out);
	}
	buf_free_secret(&plain);
	return rc;
}

static int
job_run(void *arg)
{
	Job *job = arg;
	RepoWriter *w = job->w;
	RepoIndexHit hit;
	Buf stored = PV_BUF_INIT;
	uint8_t codec = 0;
	bool fresh;
	int rc = 0;

	if (atomic_load(&w->aborting))
		return 0;
	if (job->it != NULL)
	{
		repo_id_compute(job->id, repo_keys(w->repo), job->data, job->len);
		pthread_mutex_lock(&job->it->mu);
		memcpy(job->it->item.chunks[job->index].id, job->id, REPO_ID_LEN);
		pthread_mutex_unlock(&job->it->mu);
	}
	pthread_mutex_lock(&w->mu);
	fresh = seen_add(&w->seen, job->id);
	pthread_mutex_unlock(&w->mu);
	if (!fresh)
		return 0;	/* another chunk of this backup, stored or being stored */
	if (repo_index_lookup(w->idx, job->id, &hit))
	{
		pthread_mutex_lock(&w->mu);
		if (job->type == REPO_BLOB_DATA)
			w->stats.stored_bytes += hit.length;
		pthread_mutex_unlock(&w->mu);
		goto done;
	}
	if ((rc = job_encode(w, job, &stored, &codec)) < 0)
		goto done;
	if ((rc = repo_pack_writer_add(job->type == REPO_BLOB_TREE ? w->tree_packs : w->data_packs,
								   job->type, job->id, codec, (uint32_t) job->len,
								   stored.data, stored.len)) < 0)
		goto done;
	pthread_mutex_lock(&w->mu);
	w->stats.new_chunks++;
	w->stats.new_bytes += stored.len;
	w->stats.new_raw_bytes += job->len;
	if (job->type == REPO_BLOB_DATA)
		w->stats.stored_bytes += stored.len;
	pthread_mutex_unlock(&w->mu);
done:
	buf_free(&stored);
	if (rc < 0)
		writer_fail(w, rc);	/* so item_end and commit see it, not only the pool */
	return rc;
}

static int
job_submit(RepoWriter *w, RepoWriterItem *it, size_t index, uint8_t type,
		   const unsigned char *id, const void *data, size_t len)
{
	Job *job = PV_NEW(Job);
	int rc;

	job->w = w;
	job->it = it;
	job->index = index;
	job->type = type;
	if (id != NULL)
		memcpy(job->id, id, REPO_ID_LEN);
	job->data = pv_malloc(len);
	memcpy(job->data, data, len);
	job->len = len;
	if (it != NULL)
	{
		pthread_mutex_lock(&it->mu);
		it->pending++;
		pthread_mutex_unlock(&it->mu);
	}
	if ((rc = pv_pool_submit_owned(w->pool, job_run, job, job_free)) < 0)
		writer_fail(w, rc);
	return rc;
}

/* ---- the item list (tree stream) ---- */

/* Cut and submit tree blobs from w->tree_buf; all of it when final.  tree_mu held. */
static int
tree_cut(RepoWriter *w, bool final)
{
	int rc = 0;

	for (;;)
	{
		unsigned char *p = w->tree_buf.data + w->tree_start;
		size_t avail = w->tree_buf.len - w->tree_start;
		size_t n = avail ? repo_chunker_next(w->tree_chunker, p, avail) : 0;
		RepoTreeRef *ref;

		if (n == 0 && final && avail > 0)
			n = avail;
		if (n == 0)
			break;
		repo_chunker_reset(w->tree_chunker);
		if (w->ntree == w->tree_cap)
		{
			w->tree_cap = w->tree_cap ? w->tree_cap * 2 : 16;
			w->tree = pv_realloc(w->tree, w->tree_cap * sizeof(RepoTreeRef));
		}
		ref = &w->tree[w->ntree++];
		repo_id_compute(ref->id, repo_keys(w->repo), p, n);
		ref->raw_length = (uint32_t) n;
		w->tree_start += n;
		if ((rc = job_submit(w, NULL, 0, REPO_BLOB_TREE, ref->id, p, n)) < 0)
			break;
	}
	/* Compact once per call, not per cut. */
	buf_consume(&w->tree_buf, w->tree_start);
	w->tree_start = 0;
	return rc;
}

static int
tree_append(RepoWriter *w, const RepoItem *item)
{
	int rc;

	pthread_mutex_lock(&w->tree_mu);
	repo_item_to_json(item, &w->tree_buf);
	w->nitems++;
	rc = tree_cut(w, false);
	pthread_mutex_unlock(&w->tree_mu);
	return rc;
}

/* ---- writer ---- */

int
repo_writer_new(RepoWriter **out, Repo *repo, const RepoWriterOpts *opts)
{
	RepoWriter *w = NULL;
	RepoChunkerParams tp;
	int rc;

	*out = NULL;
	if (opts == NULL || opts->kind == NULL || opts->kind[0] == '\0')
		return pv_error_set(PV_EUSAGE, "a backup needs a kind");
	if (opts->parent != NULL && !repo_backup_id_valid(opts->parent))
		return pv_error_set(PV_EUSAGE, "parent '%s' is not a backup id", opts->parent);
	w = PV_NEW(RepoWriter);
	w->repo = repo;
	w->start = pv_time_now();
	repo_backup_id_new(w->id, w->start);
	w->kind = pv_strdup(opts->kind);
	w->source = opts->source ? pv_strdup(opts->source) : NULL;
	w->parent = opts->parent ? pv_strdup(opts->parent) : NULL;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->tree_mu, NULL);
	seen_init(&w->seen);
	atomic_init(&w->aborting, false);
	if (opts->compression != NULL)
	{
		if ((rc = repo_compress_parse(&w->comp, &w->level, opts->compression)) < 0)
			goto done;
	}
	else
		repo_compression(repo, &w->comp, &w->level);
	w->chunker = *repo_config_chunker(repo);
	tp = (RepoChunkerParams) {TREE_MIN_SIZE, TREE_AVG_SIZE, TREE_MAX_SIZE, w->chunker.seed};
	w->tree_chunker = repo_chunker_new(&tp);

	if (opts->lock != NULL)
		w->lock = opts->lock;
	else
	{
		RepoLockOpts lo = {.exclusive = false, .command = opts->command ? opts->command : opts->kind};

		if ((rc = repo_lock_acquire_opts(&w->lock, repo, &lo)) < 0)
			goto done;
		w->own_lock = true;
	}
	/*
	 * Under the lock, so no prune deletes what dedup will rely on: load (or
	 * bring up to date) the index, and refuse one a prune made stale.
	 */
	if ((rc = repo_index_refresh(repo)) < 0 || (rc = repo_index_get(repo, &w->idx)) < 0)
		goto done;
	w->pool = pv_pool_new(opts->jobs, 0);
	w->data_packs = repo_pack_writer_new(repo, opts->pack_size, 0);
	w->tree_packs = repo_pack_writer_new(repo, opts->pack_size, 0);
	pv_log_debug("backup %s: writing to repository '%s' with %d workers", w->id, repo_url(repo),
				 pv_pool_threads(w->pool));
	*out = w;
	w = NULL;
	rc = 0;
done:
	repo_writer_free(w);
	return rc;
}

const char *
repo_writer_id(const RepoWriter *w)
{
	return w->id;
}

static void
item_free(RepoWriterItem *it)
{
	pv_free(it->item.name);
	pv_free(it->item.type);
	pv_free(it->item.link);
	pv_free(it->item.chunks);
	json_decref(it->item.meta);
	repo_chunker_free(it->chunker);
	buf_free(&it->cur);
	EVP_MD_CTX_free(it->md);
	pthread_mutex_destroy(&it->mu);
	pthread_cond_destroy(&it->cond);
	pv_free(it);
}

static void
item_fill_spec(RepoItem *item, const RepoItemSpec *spec)
{
	item->name = pv_strdup(spec->name);
	item->type = pv_strdup(spec->type ? spec->type : "stream");
	item->has_mode = spec->has_mode;
	item->mode = spec->mode;
	item->mtime = spec->mtime;
	item->link = spec->link ? pv_strdup(spec->link) : NULL;
	item->chunk_size = spec->chunk_size;
	item->meta = spec->meta ? json_deep_copy(spec->meta) : NULL;
}

static int
spec_check(const RepoItemSpec *spec)
{
	if (spec == NULL || spec->name == NULL || spec->name[0] == '\0')
		return pv_error_set(PV_EUSAGE, "a backup item needs a name");
	if (spec->meta != NULL && !json_is_object(spec->meta))
		return pv_error_set(PV_EUSAGE, "metadata of item '%s' is not a JSON object", spec->name);
	if (spec->chunk_size > REPO_CHUNKER_MAX_SIZE_LIMIT)
		return pv_error_set(PV_EUSAGE, "chunk size %u of item '%s' is too big", spec->chunk_size,
							spec->name);
	return 0;
}

int
repo_writer_item_begin(RepoWriterItem **out, RepoWriter *w, const RepoItemSpec *spec)
{
	RepoWriterItem *it;
	int rc;

	*out = NULL;
	if ((rc = writer_check(w)) < 0 || (rc = spec_check(spec)) < 0)
		return rc;
	it = PV_NEW(RepoWriterItem);
	it->w = w;
	item_fill_spec(&it->item, spec);
	it->item.has_sha256 = true;
	if (spec->chunk_size == 0)
	{
		it->chunker = repo_chunker_new(&w->chunker);
		it->max_chunk = w->chunker.max_size;
	}
	else
		it->max_chunk = spec->chunk_size;
	it->md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(it->md, EVP_sha256(), NULL);
	pthread_mutex_init(&it->mu, NULL);
	pthread_cond_init(&it->cond, NULL);

	pthread_mutex_lock(&w->mu);
	it->next = w->open;
	if (w->open != NULL)
		w->open->prev = it;
	w->open = it;
	w->nopen++;
	pthread_mutex_unlock(&w->mu);
	*out = it;
	return 0;
}

/* Hand chunk bytes to the workers as chunk number nchunks of the item. */
static int
item_emit(RepoWriterItem *it, const unsigned char *data, size_t len)
{
	size_t index;

	pthread_mutex_lock(&it->mu);
	if (it->item.nchunks == it->chunks_cap)
	{
		it->chunks_cap = it->chunks_cap ? it->chunks_cap * 2 : 16;
		it->item.chunks = pv_realloc(it->item.chunks, it->chunks_cap * sizeof(RepoChunkRef));
	}
	index = it->item.nchunks++;
	memset(&it->item.chunks[index], 0, sizeof(RepoChunkRef));
	it->item.chunks[index].raw_length = (uint32_t) len;
	it->item.chunks[index].offset = index == 0 ? 0 :
		it->item.chunks[index - 1].offset + it->item.chunks[index - 1].raw_length;
	pthread_mutex_unlock(&it->mu);
	return job_submit(it->w, it, index, REPO_BLOB_DATA, NULL, data, len);
}

/* Emit every complete chunk in cur[start..len). */
static int
item_cut(RepoWriterItem *it)
{
	int rc;

	for (;;)
	{
		unsigned char *p = it->cur.data + it->start;
		size_t avail = it->cur.len - it->start;
		size_t n;

		if (it->chunker != NULL)
			n = avail ? repo_chunker_next(it->chunker, p, avail) : 0;
		else
			n = avail >= it->item.chunk_size ? it->item.chunk_size : 0;
		if (n == 0)
			return 0;
		if (it->chunker != NULL)
			repo_chunker_reset(it->chunker);
		if ((rc = item_emit(it, p, n)) < 0)
			return rc;
		it->start += n;
	}
}

int
repo_writer_item_write(RepoWriterItem *it, const void *data, size_t len)
{
	const unsigned char *p = data;
	int rc;

	if ((rc = writer_check(it->w)) < 0)
		return rc;
	EVP_DigestUpdate(it->md, data, len);
	it->size += len;
	while (len > 0)
	{
		/* Feed at most one chunk's worth at a time: the buffer stays under 2 chunks. */
		size_t take = len < it->max_chunk ? len : it->max_chunk;

		if (it->start > 0)
		{
			buf_consume(&it->cur, it->start);
			it->start = 0;
		}
		buf_append(&it->cur, p, take);
		p += take;
		len -= take;
		if ((rc = item_cut(it)) < 0)
			return rc;
	}
	return 0;
}

/* Unlink from the writer's open list. */
static void
item_detach(RepoWriterItem *it)
{
	RepoWriter *w = it->w;

	pthread_mutex_lock(&w->mu);
	if (it->prev != NULL)
		it->prev->next = it->next;
	else
		w->open = it->next;
	if (it->next != NULL)
		it->next->prev = it->prev;
	w->nopen--;
	pthread_mutex_unlock(&w->mu);
}

static void
item_wait(RepoWriterItem *it)
{
	pthread_mutex_lock(&it->mu);
	while (it->pending > 0)
		pthread_cond_wait(&it->cond, &it->mu);
	pthread_mutex_unlock(&it->mu);
}

int
repo_writer_item_end(RepoWriterItem *it, RepoItemResult *out)
{
	RepoWriter *w = it->w;
	unsigned int mdlen;
	int rc;

	if ((rc = writer_check(w)) < 0)
		goto done;
	if (it->cur.len > it->start &&
		(rc = item_emit(it, it->cur.data + it->start, it->cur.len - it->start)) < 0)
		goto done;
	item_wait(it);
	if ((rc = writer_check(w)) < 0)
		goto done;
	EVP_DigestFinal_ex(it->md, it->item.sha256, &mdlen);
	it->item.size = it->size;
	if ((rc = tree_append(w, &it->item)) < 0)
		goto done;
	pthread_mutex_lock(&w->mu);
	w->stats.items++;
	w->stats.logical_bytes += it->size;
	w->stats.chunks += it->item.nchunks;
	pthread_mutex_unlock(&w->mu);
	if (out != NULL)
	{
		out->size = it->size;
		memcpy(out->sha256, it->item.sha256, 32);
		out->nchunks = it->item.nchunks;
	}
done:
	item_wait(it);
	item_detach(it);
	item_free(it);
	return rc;
}

void
repo_writer_item_cancel(RepoWriterItem *it)
{
	if (it == NULL)
		return;
	item_wait(it);
	item_detach(it);
	item_free(it);
}

int
repo_writer_item_add_existing(RepoWriter *w, const RepoItemSpec *spec, uint64_t size,
							  const unsigned char sha256[32], const RepoChunkRef *chunks,
							  size_t nchunks)
{
	RepoItem item = {0};
	RepoIndex *idx;
	uint64_t pos = 0;
	int rc;

	if ((rc = writer_check(w)) < 0 || (rc = spec_check(spec)) < 0)
		return rc;
	if ((rc = repo_index_get(w->repo, &idx)) < 0)
		return rc;
	for (size_t i = 0; i < nchunks; i++)
	{
		char hex[2 * REPO_ID_LEN + 1];

		if (chunks[i].offset < pos)
			return pv_error_set(PV_EUSAGE, "chunks of item '%s' overlap", spec->name);
		pos = chunks[i].offset + chunks[i].raw_length;
		if (!repo_index_lookup(idx, chunks[i].id, NULL))
		{
			repo_id_hex(hex, chunks[i].id);
			return pv_error_set(PV_ENOTFOUND, "chunk %s of item '%s' is not in the repository",
								hex, spec->name);
		}
	}
	if (pos > size)
		return pv_error_set(PV_EUSAGE, "chunks of item '%s' extend past its size", spec->name);

	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < nchunks; i++)
	{
		RepoIndexHit hit;

		if (seen_add(&w->seen, chunks[i].id) && repo_index_lookup(idx, chunks[i].id, &hit))
			w->stats.stored_bytes += hit.length;
	}
	w->stats.items++;
	w->stats.logical_bytes += size;
	w->stats.chunks += nchunks;
	pthread_mutex_unlock(&w->mu);

	item_fill_spec(&item, spec);
	item.size = size;
	item.has_sha256 = true;
	memcpy(item.sha256, sha256, 32);
	item.chunks = (RepoChunkRef *) chunks;
	item.nchunks = nchunks;
	rc = tree_append(w, &item);
	item.chunks = NULL;
	pv_free(item.name);
	pv_free(item.type);
	pv_free(item.link);
	json_decref(item.meta);
	if (rc < 0)
		writer_fail(w, rc);
	return rc;
}

/* ---- commit and abort ---- */

static json_t *
manifest_doc(RepoWriter *w, const json_t *metadata)
{
	char start[PV_TIME_FORMAT_MAX], stop[PV_TIME_FORMAT_MAX];
	char hex[2 * REPO_ID_LEN + 1];
	json_t *blobs = json_array();
	json_t *totals;
	json_t *doc;

	for (size_t i = 0; i < w->ntree; i++)
	{
		repo_id_hex(hex, w->tree[i].id);
		json_array_append_new(blobs, json_pack("{s:s, s:I}", "id", hex, "raw_length",
											   (json_int_t) w->tree[i].raw_length));
	}
	totals = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
					   "items", (json_int_t) w->stats.items,
					   "logical_bytes", (json_int_t) w->stats.logical_bytes,
					   "chunks", (json_int_t) w->stats.chunks,
					   "stored_bytes", (json_int_t) w->stats.stored_bytes,
					   "new_chunks", (json_int_t) w->stats.new_chunks,
					   "new_bytes", (json_int_t) w->stats.new_bytes,
					   "new_raw_bytes", (json_int_t) w->stats.new_raw_bytes);
	doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:{s:s, s:I, s:o}}",
					"format", REPO_MANIFEST_FORMAT, "id", w->id, "kind", w->kind,
					"source", w->source ? w->source : "", "host", repo_hostname(w->repo),
					"tool_version", PV_VERSION,
					"start_time", pv_time_format_utc(start, sizeof(start), w->start),
					"stop_time", pv_time_format_utc(stop, sizeof(stop), pv_time_now()),
					"parent", w->parent ? json_string(w->parent) : json_null(),
					"metadata", metadata ? json_deep_copy(metadata) : json_object(),
					"totals", totals,
					"items", "encoding", "jsonl", "count", (json_int_t) w->nitems, "blobs", blobs);
	return doc;
}

int
repo_writer_commit(RepoWriter *w, const json_t *metadata)
{
	RepoPackWriterStats ps;
	json_t *doc = NULL;
	int rc;

	if ((rc = writer_check(w)) < 0)
		return rc;
	if (w->nopen > 0)
		return pv_error_set(PV_EUSAGE, "backup %s still has %d open items", w->id, w->nopen);
	if (metadata != NULL && !json_is_object(metadata))
		return pv_error_set(PV_EUSAGE, "backup metadata is not a JSON object");

	pthread_mutex_lock(&w->tree_mu);
	rc = tree_cut(w, true);
	pthread_mutex_unlock(&w->tree_mu);
	if (rc < 0)
		goto done;
	/* Rule 1: every pack durable ... */
	if ((rc = pv_pool_wait(w->pool)) < 0 ||
		(rc = repo_pack_writer_flush(w->data_packs)) < 0 ||
		(rc = repo_pack_writer_flush(w->tree_packs)) < 0)
		goto done;
	/* Rule 2: ... then indexed ... */
	if ((rc = repo_index_flush(w->repo)) < 0)
		goto done;
	/* ... and only then (still holding our lock) the manifest: rule 3. */
	if ((rc = repo_lock_check(w->lock)) < 0)
		goto done;
	repo_pack_writer_stats(w->data_packs, &ps);
	w->stats.packs = ps.packs;
	repo_pack_writer_stats(w->tree_packs, &ps);
	w->stats.packs += ps.packs;
	doc = manifest_doc(w, metadata);
	if ((rc = repo_manifest_write(w->repo, doc)) < 0)
		goto done;
	pv_log_detail("backup %s: %llu items, %llu bytes, %llu new chunks (%llu bytes stored)", w->id,
				  (unsigned long long) w->stats.items, (unsigned long long) w->stats.logical_bytes,
				  (unsigned long long) w->stats.new_chunks, (unsigned long long) w->stats.new_bytes);
	pthread_mutex_lock(&w->mu);
	w->finished = true;
	pthread_mutex_unlock(&w->mu);
	if (w->own_lock)
	{
		repo_lock_release(w->lock);
		w->lock = NULL;
		w->own_lock = false;
	}
done:
	json_decref(doc);
	if (rc < 0)
		writer_fail(w, rc);
	return rc;
}

void
repo_writer_abort(RepoWriter *w)
{
	if (w == NULL || w->finished)
		return;
	atomic_store(&w->aborting, true);
	if (w->pool != NULL)
		pv_pool_wait(w->pool);	/* queued jobs see `aborting` and return at once */
	pthread_mutex_lock(&w->mu);
	w->finished = true;
	pthread_mutex_unlock(&w->mu);
	pv_log_detail("backup %s aborted: no manifest written", w->id);
	if (w->own_lock)
	{
		repo_lock_release(w->lock);
		w->lock = NULL;
		w->own_lock = false;
	}
}

void
repo_writer_stats(RepoWriter *w, RepoWriterStats *out)
{
	RepoPackWriterStats ps;

	pthread_mutex_lock(&w->mu);
	*out = w->stats;
	pthread_mutex_unlock(&w->mu);
	out->packs = 0;
	if (w->data_packs != NULL)
	{
		repo_pack_writer_stats(w->data_packs, &ps);
		out->packs += ps.packs;
		repo_pack_writer_stats(w->tree_packs, &ps);
		out->packs += ps.packs;
	}
}

void
repo_writer_free(RepoWriter *w)
{
	if (w == NULL)
		return;
	repo_writer_abort(w);
	/* Items the caller left open: no thread may use them any more (writer.h). */
	while (w->open != NULL)
	{
		RepoWriterItem *it = w->open;

		w->open = it->next;
		item_free(it);
	}
	pv_pool_free(w->pool);
	repo_pack_writer_free(w->data_packs);
	repo_pack_writer_free(w->tree_packs);
	if (w->own_lock)
		repo_lock_release(w->lock);
	repo_chunker_free(w->tree_chunker);
	buf_free(&w->tree_buf);
	pv_free(w->tree);
	seen_free(&w->seen);
	pv_free(w->kind);
	pv_free(w->source);
	pv_free(w->parent);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->tree_mu);
	pv_free(w);
}
