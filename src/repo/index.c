/*
 * index.c: the in-memory blob index and the index file format; see index.h
 * for the memory layout and the thread-safety rules.
 *
 * Invariants:
 *   - slots[] has a power-of-two size; a slot holds 0 (empty) or 1 + the
 *     number of an entry in entries[].  Only the first listing of an id has a
 *     slot; later listings of the same id live in entries[] only.
 *   - nslots_used * 10 <= nslots * 7 (at most 70 % full) after every add.
 *   - pending[] lists, in order, the packs added with persisted = false and
 *     not yet taken by repo_index_flush_begin; each covers a contiguous run
 *     of entries[].
 */
#include "repo/index.h"

#include "common/error.h"
#include "common/mem.h"

#include <pthread.h>
#include <string.h>

/* The pack field: bit 31 = tree blob, bits 29-30 = codec, bits 0-28 = pack number. */
#define PACK_TYPE_BIT 0x80000000u
#define PACK_CODEC_SHIFT 29
#define PACK_NUMBER_MASK 0x1fffffffu
#define PACK_OF(ie) ((ie)->pack & PACK_NUMBER_MASK)
#define CODEC_OF(ie) ((uint8_t) (((ie)->pack >> PACK_CODEC_SHIFT) & 3u))

typedef struct IndexEntry
{
	unsigned char id[REPO_ID_LEN];
	uint32_t pack;				/* pack number, type and codec: see PACK_* */
	uint32_t offset;
	uint32_t length;
	uint32_t raw_length;
} IndexEntry;

_Static_assert(sizeof(IndexEntry) == 48, "index entries are 48 bytes");

typedef struct PendingPack
{
	uint32_t pack;
	size_t first;				/* first entry */
	size_t n;
} PendingPack;

struct RepoIndex
{
	pthread_rwlock_t lock;
	IndexEntry *entries;
	size_t nentries;
	size_t cap;
	uint32_t *slots;
	size_t nslots;				/* power of 2 */
	size_t nslots_used;
	unsigned char (**pack_blocks)[REPO_ID_LEN];	/* blocks of PACK_BLOCK ids; never move */
	uint32_t npacks;
	uint32_t nblocks;
	uint32_t *pack_slots;		/* 1 + pack number, open addressing */
	size_t npack_slots;
	PendingPack *pending;
	size_t npending;
	size_t pending_cap;
};

static uint64_t
id_hash(const unsigned char *id)
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return h;
}

RepoIndex *
repo_index_new(void)
{
	RepoIndex *idx = PV_NEW(RepoIndex);

	pthread_rwlock_init(&idx->lock, NULL);
	idx->nslots = 1024;
	idx->slots = pv_calloc(idx->nslots, sizeof(uint32_t));
	idx->npack_slots = 64;
	idx->pack_slots = pv_calloc(idx->npack_slots, sizeof(uint32_t));
	return idx;
}

void
repo_index_free(RepoIndex *idx)
{
	if (idx == NULL)
		return;
	pthread_rwlock_destroy(&idx->lock);
	pv_free(idx->entries);
	pv_free(idx->slots);
	for (uint32_t b = 0; b < idx->nblocks; b++)
		pv_free(idx->pack_blocks[b]);
	pv_free(idx->pack_blocks);
	pv_free(idx->pack_slots);
	pv_free(idx->pending);
	pv_free(idx);
}

/* ---- packs ---- */

/*
 * Pack ids live in fixed blocks that are never reallocated, so the pack_id
 * pointers handed out in RepoIndexHit stay valid while other threads add
 * packs.
 */
#define PACK_BLOCK 1024u

static unsigned char *
pack_id_at(const RepoIndex *idx, uint32_t p)
{
	return idx->pack_blocks[p / PACK_BLOCK][p % PACK_BLOCK];
}

static void
pack_slots_grow(RepoIndex *idx)
{
	size_t n = idx->npack_slots * 2;
	uint32_t *slots = pv_calloc(n, sizeof(uint32_t));

	for (uint32_t p = 0; p < idx->npacks; p++)
	{
		size_t i = id_hash(pack_id_at(idx, p)) & (n - 1);

		while (slots[i] != 0)
			i = (i + 1) & (n - 1);
		slots[i] = p + 1;
	}
	pv_free(idx->pack_slots);
	idx->pack_slots = slots;
	idx->npack_slots = n;
}

/* The number of pack_id, added if new.  Write-locked. */
static uint32_t
pack_number(RepoIndex *idx, const unsigned char *pack_id)
{
	size_t mask = idx->npack_slots - 1;
	size_t i = id_hash(pack_id) & mask;

	for (; idx->pack_slots[i] != 0; i = (i + 1) & mask)
	{
		uint32_t p = idx->pack_slots[i] - 1;

		if (memcmp(pack_id_at(idx, p), pack_id, REPO_ID_LEN) == 0)
			return p;
	}
	if (idx->npacks == idx->nblocks * PACK_BLOCK)
	{
		idx->pack_blocks = pv_realloc(idx->pack_blocks, (idx->nblocks + 1) * sizeof(*idx->pack_blocks));
		idx->pack_blocks[idx->nblocks++] = pv_malloc(PACK_BLOCK * REPO_ID_LEN);
	}
	memcpy(pack_id_at(idx, idx->npacks), pack_id, REPO_ID_LEN);
	idx->pack_slots[i] = idx->npacks + 1;
	idx->npacks++;
	if ((size_t) idx->npacks * 10 > idx->npack_slots * 7)
		pack_slots_grow(idx);
	return idx->npacks - 1;
}

/* ---- entries ---- */

static void
slots_grow(RepoIndex *idx)
{
	size_t n = idx->nslots * 2;
	uint32_t *slots = pv_calloc(n, sizeof(uint32_t));

	for (size_t s = 0; s < idx->nslots; s++)
	{
		uint32_t e = idx->slots[s];
		size_t i;

		if (e == 0)
			continue;
		i = id_hash(idx->entries[e - 1].id) & (n - 1);
		while (slots[i] != 0)
			i = (i + 1) & (n - 1);
		slots[i] = e;
	}
	pv_free(idx->slots);
	idx->slots = slots;
	idx->nslots = n;
}

/* The slot of id, or of the empty position where it would go. */
static size_t
slot_find(const RepoIndex *idx, const unsigned char *id)
{
	size_t mask = idx->nslots - 1;
	size_t i = id_hash(id) & mask;

	while (idx->slots[i] != 0 &&
		   memcmp(idx->entries[idx->slots[i] - 1].id, id, REPO_ID_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

/* Is (id, pack, offset) already listed?  Walks the entries only for ids already present. */
static bool
entry_is_repeat(const RepoIndex *idx, size_t slot, uint32_t pack, const RepoPackEntry *e)
{
	const IndexEntry *first = &idx->entries[idx->slots[slot] - 1];

	if (PACK_OF(first) == pack && first->offset == e->offset)
		return true;
	/* Rare: a second copy of a blob.  A linear look is fine for this case. */
	for (size_t k = (size_t) (first - idx->entries) + 1; k < idx->nentries; k++)
		if (PACK_OF(&idx->entries[k]) == pack &&
			idx->entries[k].offset == e->offset &&
			memcmp(idx->entries[k].id, e->id, REPO_ID_LEN) == 0)
			return true;
	return false;
}

void
repo_index_add_pack(RepoIndex *idx, const unsigned char pack_id[REPO_ID_LEN],
					const RepoPackEntry *entries, size_t n, bool persisted)
{
	uint32_t pack;
	size_t first;

	pthread_rwlock_wrlock(&idx->lock);
	pack = pack_number(idx, pack_id);
	first = idx->nentries;
	for (size_t k = 0; k < n; k++)
	{
		const RepoPackEntry *e = &entries[k];
		size_t slot = slot_find(idx, e->id);
		IndexEntry *ie;

		if (idx->slots[slot] != 0 && entry_is_repeat(idx, slot, pack, e))
			continue;
		if (idx->nentries == idx->cap)
		{
			idx->cap = idx->cap ? idx->cap + idx->cap / 4 : 1024;
			idx->entries = pv_realloc(idx->entries, idx->cap * sizeof(IndexEntry));
		}
		ie = &idx->entries[idx->nentries];
		memcpy(ie->id, e->id, REPO_ID_LEN);
		ie->pack = pack | (e->type == REPO_BLOB_TREE ? PACK_TYPE_BIT : 0) |
			((uint32_t) (e->codec & 3u) << PACK_CODEC_SHIFT);
		ie->offset = e->offset;
		ie->length = e->length;
		ie->raw_length = e->raw_length;
		idx->nentries++;
		if (idx->slots[slot] == 0)
		{
			idx->slots[slot] = (uint32_t) idx->nentries;
			idx->nslots_used++;
			if (idx->nslots_used * 10 > idx->nslots * 7)
				slots_grow(idx);
		}
	}
	if (!persisted && idx->nentries > first)
	{
		if (idx->npending == idx->pending_cap)
		{
			idx->pending_cap = idx->pending_cap ? idx->pending_cap * 2 : 16;
			idx->pending = pv_realloc(idx->pending, idx->pending_cap * sizeof(PendingPack));
		}
		idx->pending[idx->npending++] = (PendingPack) {pack, first, idx->nentries - first};
	}
	pthread_rwlock_unlock(&idx->lock);
}

static void
hit_fill(const RepoIndex *idx, const IndexEntry *ie, RepoIndexHit *out)
{
	out->pack_id = pack_id_at(idx, PACK_OF(ie));
	out->type = (ie->pack & PACK_TYPE_BIT) ? REPO_BLOB_TREE : REPO_BLOB_DATA;
	out->codec = CODEC_OF(ie);
	out->offset = ie->offset;
	out->length = ie->length;
	out->raw_length = ie->raw_length;
}

bool
repo_index_lookup(RepoIndex *idx, const unsigned char id[REPO_ID_LEN], RepoIndexHit *out)
{
	size_t slot;
	bool found;

	pthread_rwlock_rdlock(&idx->lock);
	slot = slot_find(idx, id);
	found = idx->slots[slot] != 0;
	if (found && out != NULL)
		hit_fill(idx, &idx->entries[idx->slots[slot] - 1], out);
	pthread_rwlock_unlock(&idx->lock);
	return found;
}

size_t
repo_index_count(RepoIndex *idx)
{
	size_t n;

	pthread_rwlock_rdlock(&idx->lock);
	n = idx->nentries;
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

size_t
repo_index_pack_count(RepoIndex *idx)
{
	size_t n;

	pthread_rwlock_rdlock(&idx->lock);
	n = idx->npacks;
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

int
repo_index_foreach(RepoIndex *idx, RepoIndexFn fn, void *payload)
{
	int rc = 0;

	pthread_rwlock_rdlock(&idx->lock);
	for (size_t k = 0; k < idx->nentries && rc == 0; k++)
	{
		RepoIndexHit hit;

		hit_fill(idx, &idx->entries[k], &hit);
		rc = fn(idx->entries[k].id, &hit, payload);
	}
	pthread_rwlock_unlock(&idx->lock);
	return rc;
}

/* ---- index files ---- */

void
repo_index_file_init(RepoIndexFileBuilder *b)
{
	buf_init(&b->out);
	buf_append(&b->out, REPO_INDEX_MAGIC, 4);
	buf_append_byte(&b->out, 1);
	buf_append(&b->out, "\0\0\0", 3);
	buf_append_u32le(&b->out, 0);	/* pack count, patched as packs are added */
	b->npacks = 0;
	b->nentries = 0;
}

void
repo_index_file_add_pack(RepoIndexFileBuilder *b, const unsigned char pack_id[REPO_ID_LEN],
						 const RepoPackEntry *entries, size_t n)
{
	unsigned char enc[REPO_PACK_ENTRY_SIZE];

	buf_append(&b->out, pack_id, REPO_ID_LEN);
	buf_append_u32le(&b->out, (uint32_t) n);
	for (size_t k = 0; k < n; k++)
	{
		repo_pack_entry_encode(enc, &entries[k]);
		buf_append(&b->out, enc, sizeof(enc));
	}
	b->npacks++;
	b->nentries += n;
	b->out.data[8] = (unsigned char) (b->npacks & 0xff);
	b->out.data[9] = (unsigned char) ((b->npacks >> 8) & 0xff);
	b->out.data[10] = (unsigned char) ((b->npacks >> 16) & 0xff);
	b->out.data[11] = (unsigned char) ((b->npacks >> 24) & 0xff);
}

void
repo_index_file_free(RepoIndexFileBuilder *b)
{
	buf_free(&b->out);
}

int
repo_index_file_parse(const unsigned char *plain, size_t len, RepoIndexFileFn fn, void *payload)
{
	RepoPackEntry *entries = NULL;
	size_t cap = 0;
	size_t pos = 12;
	uint32_t npacks;
	int rc = 0;

	if (len < 12 || memcmp(plain, REPO_INDEX_MAGIC, 4) != 0)
		return pv_error_set(PV_ECORRUPT, "not an index file (bad magic)");
	if (plain[4] != 1)
		return pv_error_set(PV_ECORRUPT, "index file version %u is not supported", plain[4]);
	npacks = pv_read_u32le(plain + 8);
	for (uint32_t p = 0; p < npacks; p++)
	{
		const unsigned char *pack_id;
		uint32_t n;

		if (len - pos < REPO_ID_LEN + 4)
		{
			rc = pv_error_set(PV_ECORRUPT, "index file is truncated (pack %u of %u)", p + 1, npacks);
			goto done;
		}
		pack_id = plain + pos;
		n = pv_read_u32le(plain + pos + REPO_ID_LEN);
		pos += REPO_ID_LEN + 4;
		if ((len - pos) / REPO_PACK_ENTRY_SIZE < n)
		{
			rc = pv_error_set(PV_ECORRUPT, "index file is truncated (pack %u of %u)", p + 1, npacks);
			goto done;
		}
		if (n > cap)
		{
			cap = n;
			entries = pv_realloc(entries, cap * sizeof(RepoPackEntry));
		}
		for (uint32_t k = 0; k < n; k++)
		{
			repo_pack_entry_decode(&entries[k], plain + pos);
			pos += REPO_PACK_ENTRY_SIZE;
			if (entries[k].type > REPO_BLOB_TREE)
			{
				rc = pv_error_set(PV_ECORRUPT, "index file has an entry of unknown type %u",
								  entries[k].type);
				goto done;
			}
		}
		if ((rc = fn(pack_id, entries, n, payload)) < 0)
			goto done;
	}
	if (pos != len)
		rc = pv_error_set(PV_ECORRUPT, "index file has %zu stray bytes at its end", len - pos);
done:
	pv_free(entries);
	return rc;
}

/* ---- flushing ---- */

typedef struct FlushPriv
{
	PendingPack *packs;
	size_t n;
} FlushPriv;

RepoIndexFlush *
repo_index_flush_begin(RepoIndex *idx)
{
	RepoIndexFlush *f = PV_NEW(RepoIndexFlush);
	FlushPriv *priv = PV_NEW(FlushPriv);
	RepoIndexFileBuilder b;
	RepoPackEntry *tmp = NULL;
	size_t tmpcap = 0;

	pthread_rwlock_wrlock(&idx->lock);
	priv->packs = idx->pending;
	priv->n = idx->npending;
	idx->pending = NULL;
	idx->npending = 0;
	idx->pending_cap = 0;

	repo_index_file_init(&b);
	for (size_t k = 0; k < priv->n; k++)
	{
		const PendingPack *pp = &priv->packs[k];

		if (pp->n > tmpcap)
		{
			tmpcap = pp->n;
			tmp = pv_realloc(tmp, tmpcap * sizeof(RepoPackEntry));
		}
		for (size_t e = 0; e < pp->n; e++)
		{
			const IndexEntry *ie = &idx->entries[pp->first + e];

			memcpy(tmp[e].id, ie->id, REPO_ID_LEN);
			tmp[e].type = (ie->pack & PACK_TYPE_BIT) ? REPO_BLOB_TREE : REPO_BLOB_DATA;
			tmp[e].codec = CODEC_OF(ie);
			tmp[e].offset = ie->offset;
			tmp[e].length = ie->length;
			tmp[e].raw_length = ie->raw_length;
		}
		if (b.nentries > 0 && b.nentries + pp->n > REPO_INDEX_FILE_MAX_ENTRIES)
		{
			f->files = pv_realloc(f->files, (f->nfiles + 1) * sizeof(Buf));
			f->files[f->nfiles++] = b.out;
			repo_index_file_init(&b);
		}
		repo_index_file_add_pack(&b, pack_id_at(idx, pp->pack), tmp, pp->n);
	}
	if (b.nentries > 0)
	{
		f->files = pv_realloc(f->files, (f->nfiles + 1) * sizeof(Buf));
		f->files[f->nfiles++] = b.out;
	}
	else
		repo_index_file_free(&b);
	pthread_rwlock_unlock(&idx->lock);
	pv_free(tmp);
	f->priv = priv;
	return f;
}

void
repo_index_flush_end(RepoIndex *idx, RepoIndexFlush *f, bool written)
{
	FlushPriv *priv;

	if (f == NULL)
		return;
	priv = f->priv;
	if (!written && priv->n > 0)
	{
		pthread_rwlock_wrlock(&idx->lock);
		/* Put them back in front: older packs first, as they were. */
		idx->pending = pv_realloc(idx->pending, (idx->npending + priv->n) * sizeof(PendingPack));
		memmove(idx->pending + priv->n, idx->pending, idx->npending * sizeof(PendingPack));
		memcpy(idx->pending, priv->packs, priv->n * sizeof(PendingPack));
		idx->npending += priv->n;
		idx->pending_cap = idx->npending;
		pthread_rwlock_unlock(&idx->lock);
	}
	for (size_t k = 0; k < f->nfiles; k++)
		buf_free(&f->files[k]);
	pv_free(f->files);
	pv_free(priv->packs);
	pv_free(priv);
	pv_free(f);
}
