/*
 * chunker.c: FastCDC content-defined chunking; see chunker.h.
 *
 * Format-defining rules (changing any of them changes every chunk boundary
 * and so breaks deduplication against existing repositories):
 *
 *   1. gear[i] = the i-th output (i = 0..255) of splitmix64 started at seed.
 *   2. Scanning starts at offset min_size of the chunk with hash 0; for each
 *      byte b at offset i: hash = (hash << 1) + gear[b].
 *   3. With bits = log2(avg_size): for i < avg_size the cut test uses the top
 *      bits+2 bits of the hash (mask_s, harder), from avg_size on the top
 *      bits-2 bits (mask_l, easier).  This is FastCDC's normalized chunking,
 *      level 2.  The top bits are used because with a left-shifting gear
 *      hash bit k depends only on the last k+1 bytes: the high bits see the
 *      whole 64-byte window.
 *   4. If (hash & mask) == 0 after byte i, the chunk is i + 1 bytes long.
 *   5. Otherwise the chunk is cut at max_size.
 *
 * Invariant between calls: pos is how far data has been scanned (pos == 0
 * means nothing yet; otherwise min_size <= pos <= max_size) and hash is the
 * state after byte pos-1.  The scan loop is the hot path of every backup:
 * it keeps the hash in a register and does one table load, a shift, an add,
 * a test and a branch per byte.
 */
#include "repo/chunker.h"

#include "common/error.h"
#include "common/mem.h"

#include <assert.h>

struct RepoChunker
{
	uint64_t gear[256];
	uint64_t mask_s;
	uint64_t mask_l;
	RepoChunkerParams params;
	size_t pos;
	uint64_t hash;
};

void
repo_chunker_params_default(RepoChunkerParams *out)
{
	out->min_size = 256u * 1024;
	out->avg_size = 1024u * 1024;
	out->max_size = 4u * 1024 * 1024;
	out->seed = 0;
}

int
repo_chunker_params_check(const RepoChunkerParams *p)
{
	if (p->min_size < REPO_CHUNKER_MIN_SIZE_LIMIT)
		return pv_error_set(PV_EUSAGE, "chunk min size %u is below the limit of %u bytes",
							p->min_size, REPO_CHUNKER_MIN_SIZE_LIMIT);
	if (p->max_size > REPO_CHUNKER_MAX_SIZE_LIMIT)
		return pv_error_set(PV_EUSAGE, "chunk max size %u is above the limit of %u bytes",
							p->max_size, REPO_CHUNKER_MAX_SIZE_LIMIT);
	if (p->min_size > p->avg_size || p->avg_size > p->max_size)
		return pv_error_set(PV_EUSAGE,
							"chunk sizes must satisfy min <= avg <= max (min %u, avg %u, max %u)",
							p->min_size, p->avg_size, p->max_size);
	if ((p->avg_size & (p->avg_size - 1)) != 0)
		return pv_error_set(PV_EUSAGE, "chunk avg size %u is not a power of 2", p->avg_size);
	return PV_OK;
}

static uint64_t
splitmix64_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A mask of the top n bits of a 64-bit word (0 < n < 64). */
static uint64_t
mask_top_bits(unsigned n)
{
	return ~0ull << (64 - n);
}

RepoChunker *
repo_chunker_new(const RepoChunkerParams *p)
{
	RepoChunker *c;
	uint64_t state = p->seed;
	unsigned bits = 0;

	assert(repo_chunker_params_check(p) == PV_OK);
	c = PV_NEW(RepoChunker);
	c->params = *p;
	for (int i = 0; i < 256; i++)
		c->gear[i] = splitmix64_next(&state);
	while ((1u << bits) < p->avg_size)
		bits++;
	/* avg >= 64 so bits >= 6: both masks are well inside 1..63 bits */
	c->mask_s = mask_top_bits(bits + 2);
	c->mask_l = mask_top_bits(bits - 2);
	repo_chunker_reset(c);
	return c;
}

void
repo_chunker_free(RepoChunker *c)
{
	pv_free(c);
}

void
repo_chunker_reset(RepoChunker *c)
{
	c->pos = 0;
	c->hash = 0;
}

const RepoChunkerParams *
repo_chunker_params(const RepoChunker *c)
{
	return &c->params;
}

/*
 * Scan data[*pos..end) with mask; returns the cut length, or 0 with *pos and
 * *hash advanced to end.  Kept tiny and static so the compiler inlines it
 * into both phases with the state in registers.
 */
static inline size_t
chunker_scan(const uint64_t *restrict gear, const unsigned char *restrict data,
			 size_t *pos, size_t end, uint64_t *hash, uint64_t mask)
{
	uint64_t h = *hash;
	size_t i = *pos;

	/* two bytes per iteration: halves the loop overhead on the hot path */
	for (; i + 1 < end; i += 2)
	{
		h = (h << 1) + gear[data[i]];
		if ((h & mask) == 0)
		{
			*hash = h;
			return i + 1;
		}
		h = (h << 1) + gear[data[i + 1]];
		if ((h & mask) == 0)
		{
			*hash = h;
			return i + 2;
		}
	}
	for (; i < end; i++)
	{
		h = (h << 1) + gear[data[i]];
		if ((h & mask) == 0)
		{
			*hash = h;
			return i + 1;
		}
	}
	*pos = i;
	*hash = h;
	return 0;
}

size_t
repo_chunker_next(RepoChunker *c, const unsigned char *data, size_t len)
{
	size_t min = c->params.min_size;
	size_t avg = c->params.avg_size;
	size_t max = c->params.max_size;
	size_t end;
	size_t cut;

	/* the caller passed fewer bytes than already scanned: rescan (same result) */
	if (c->pos > len)
		repo_chunker_reset(c);
	if (len < min)
		return 0;
	if (c->pos < min)
	{
		c->pos = min;
		c->hash = 0;
	}
	if (c->pos < avg)
	{
		end = len < avg ? len : avg;
		cut = chunker_scan(c->gear, data, &c->pos, end, &c->hash, c->mask_s);
		if (cut > 0)
			return cut;
	}
	end = len < max ? len : max;
	if (c->pos < end)
	{
		cut = chunker_scan(c->gear, data, &c->pos, end, &c->hash, c->mask_l);
		if (cut > 0)
			return cut;
	}
	return len >= max ? max : 0;
}
