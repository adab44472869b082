/*
 * upload.c: the transfers the object-store drivers share: the parallel part
 * uploader and the read-ahead handle (see upload.h for the rules).  The
 * uploader's pool is made at the first part, so an object that fits in one
 * part starts no threads.
 */
#include "storage/upload.h"

#include "common/error.h"
#include "common/mem.h"
#include "common/pool.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>

struct Upload
{
	UploadOpts o;
	char *key;
	unsigned char *buf;			/* the part being filled: grows up to part_size */
	size_t len;
	size_t cap;
	uint64_t total;
	PvPool *pool;				/* NULL until the first part is queued */
	int nparts;
	bool failed;
};

typedef struct UploadPart
{
	Upload *u;
	int number;					/* 1-based */
	unsigned char *data;
	size_t len;
} UploadPart;

Upload *
upload_new(const char *key, const UploadOpts *opts)
{
	Upload *u = PV_NEW(Upload);

	u->o = *opts;
	u->key = pv_strdup(key);
	return u;
}

static void
upload_part_free(void *arg)
{
	UploadPart *p = arg;

	pv_free(p->data);
	pv_free(p);
}

static int
upload_part_run(void *arg)
{
	UploadPart *p = arg;

	return p->u->o.part(p->u->o.ctx, p->number, p->data, p->len);
}

/* Queue the full buffer as the next part (rule 3: begin first). */
static int
upload_flush(Upload *u)
{
	UploadPart *p;
	int rc;

	if (u->nparts == u->o.max_parts)
		return pv_error_set(PV_ERROR, "cannot write object '%s': more than %d %s of %zu bytes; raise %s", u->key,
							u->o.max_parts, u->o.unit, u->o.part_size, u->o.size_setting);
	if (u->pool == NULL)
	{
		if (u->o.begin != NULL && (rc = u->o.begin(u->o.ctx)) < 0)
			return rc;
		u->pool = pv_pool_new(u->o.jobs, 1);
	}
	p = PV_NEW(UploadPart);
	p->u = u;
	p->number = ++u->nparts;
	p->data = u->buf;
	p->len = u->len;
	u->buf = NULL;
	u->len = 0;
	u->cap = 0;
	return pv_pool_submit_owned(u->pool, upload_part_run, p, upload_part_free);
}

int
upload_write(Upload *u, const void *data, size_t len)
{
	const unsigned char *p = data;
	int rc;

	if (u->failed)
		return pv_error_set(PV_EIO, "cannot write object '%s': an earlier write failed", u->key);
	while (len > 0)
	{
		size_t room, n;

		/* rule 2: a full buffer becomes a part only once more data comes */
		if (u->buf != NULL && u->len == u->o.part_size)
		{
			if ((rc = upload_flush(u)) < 0)
			{
				u->failed = true;
				return rc;
			}
		}
		room = u->o.part_size - u->len;
		n = len < room ? len : room;
		if (u->len + n > u->cap)
		{
			/* rule 1: grow geometrically, up to one part */
			size_t cap = u->cap ? u->cap * 2 : 256 * 1024;

			if (cap < u->len + n)
				cap = u->len + n;
			if (cap > u->o.part_size)
				cap = u->o.part_size;
			u->buf = pv_realloc(u->buf, cap);
			u->cap = cap;
		}
		memcpy(u->buf + u->len, p, n);
		u->len += n;
		u->total += n;
		p += n;
		len -= n;
	}
	return 0;
}

int
upload_finish(Upload *u, int *parts)
{
	int rc;

	*parts = 0;
	if (u->failed)
		return pv_error_set(PV_EIO, "cannot write object '%s': an earlier write failed", u->key);
	if (u->pool == NULL)
		return 0;
	if (u->len > 0 && (rc = upload_flush(u)) < 0)
		return rc;
	if ((rc = pv_pool_wait(u->pool)) < 0)
		return rc;
	*parts = u->nparts;
	return 0;
}

const unsigned char *
upload_data(const Upload *u, size_t *len)
{
	*len = u->len;
	return u->buf != NULL ? u->buf : (const unsigned char *) "";
}

uint64_t
upload_total(const Upload *u)
{
	return u->total;
}

void
upload_free(Upload *u)
{
	if (u == NULL)
		return;
	if (u->pool != NULL)
	{
		PvErrorSave e;

		pv_error_save(&e);
		pv_pool_free(u->pool);	/* waits for the parts in flight */
		pv_error_restore(&e);
	}
	pv_free(u->buf);
	pv_free(u->key);
	pv_free(u);
}

/* ---- read-ahead ---- */

/*
 * A handle holds READAHEAD_SLOTS windows aligned to multiples of the window
 * size, least recently used replaced.  A slot being fetched is marked
 * loading: other threads wanting it wait for it instead of fetching it again
 * (a restore's threads read neighbouring chunks of one pack at once).
 */
#define READAHEAD_SLOTS 4

typedef struct RaSlot
{
	uint64_t index;				/* window number: offset / window */
	Buf data;
	bool ready;
	bool loading;
	uint64_t used;				/* tick of the last use */
} RaSlot;

typedef struct Readahead
{
	void *driver;
	char *key;
	uint64_t size;
	uint64_t window;
	ReadaheadGetFn get;
	pthread_mutex_t lock;		/* guards slots and tick */
	pthread_cond_t loaded;		/* a slot stopped loading */
	RaSlot slots[READAHEAD_SLOTS];
	uint64_t tick;
} Readahead;

void *
readahead_open(void *driver, const char *key, uint64_t size, size_t window, ReadaheadGetFn get)
{
	Readahead *r = PV_NEW(Readahead);

	r->driver = driver;
	r->key = pv_strdup(key);
	r->size = size;
	r->window = window;
	r->get = get;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->loaded, NULL);
	return r;
}

/* The slot to fill next: an empty one, else the least recently used ready one; NULL if all load. */
static RaSlot *
readahead_victim(Readahead *r)
{
	RaSlot *victim = NULL;

	for (int i = 0; i < READAHEAD_SLOTS; i++)
	{
		RaSlot *s = &r->slots[i];

		if (s->loading)
			continue;
		if (!s->ready)
			return s;
		if (victim == NULL || s->used < victim->used)
			victim = s;
	}
	return victim;
}

/* The slot holding or loading window index, or NULL. */
static RaSlot *
readahead_find(Readahead *r, uint64_t index)
{
	for (int i = 0; i < READAHEAD_SLOTS; i++)
	{
		RaSlot *s = &r->slots[i];

		if ((s->ready || s->loading) && s->index == index)
			return s;
	}
	return NULL;
}

/*
 * Append [offset, offset + len) of window index to out (the range lies in
 * it), fetching the window first when no slot holds it.  Called without the
 * lock.
 */
static int
readahead_window_copy(Readahead *r, uint64_t index, uint64_t offset, uint64_t len, Buf *out)
{
	RaSlot *slot;
	Buf data = PV_BUF_INIT;
	uint64_t start = index * r->window;
	uint64_t want = r->size - start < r->window ? r->size - start : r->window;
	int rc;

	pthread_mutex_lock(&r->lock);
	for (;;)
	{
		slot = readahead_find(r, index);
		if (slot != NULL && slot->ready)
		{
			slot->used = ++r->tick;
			buf_append(out, slot->data.data + (offset - start), (size_t) len);
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
		if (slot == NULL && (slot = readahead_victim(r)) != NULL)
			break;
		pthread_cond_wait(&r->loaded, &r->lock);	/* it is loading, or every slot is */
	}
	slot->ready = false;
	slot->loading = true;
	slot->index = index;
	buf_free(&slot->data);
	pthread_mutex_unlock(&r->lock);

	rc = r->get(r->driver, r->key, start, want, &data);

	pthread_mutex_lock(&r->lock);
	slot->loading = false;
	if (rc == 0)
	{
		slot->data = data;
		slot->ready = true;
		slot->used = ++r->tick;
		buf_append(out, data.data + (offset - start), (size_t) len);
	}
	else
		buf_free(&data);
	pthread_cond_broadcast(&r->loaded);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int
readahead_range(void *handle, uint64_t offset, uint64_t len, Buf *out)
{
	Readahead *r = handle;
	uint64_t end;
	int rc;

	if (offset > r->size || len > r->size - offset)
		return pv_error_set(PV_ECORRUPT, "object '%s' has %" PRIu64 " bytes, too few for %" PRIu64
							" bytes at offset %" PRIu64, r->key, r->size, len, offset);
	if (len > r->window)
		return r->get(r->driver, r->key, offset, len, out);	/* bigger than a window: as it is */
	end = offset + len;
	while (offset < end)
	{
		uint64_t index = offset / r->window;
		uint64_t stop = (index + 1) * r->window < end ? (index + 1) * r->window : end;

		if ((rc = readahead_window_copy(r, index, offset, stop - offset, out)) < 0)
			return rc;
		offset = stop;
	}
	return 0;
}

void
readahead_close(void *handle)
{
	Readahead *r = handle;

	for (int i = 0; i < READAHEAD_SLOTS; i++)
		buf_free(&r->slots[i].data);
	pthread_cond_destroy(&r->loaded);
	pthread_mutex_destroy(&r->lock);
	pv_free(r->key);
	pv_free(r);
}
