/*
 * checksum.c: PostgreSQL's page checksum, the FNV-1a-derived algorithm of
 * src/include/storage/checksum_impl.h (32 parallel sums over the page seen
 * as uint32 words, two rounds of zeros, xor-folded, mixed with the block
 * number, reduced to 1..65535).  Reimplemented because the server headers
 * are not a dependency; the base offsets below are part of the on-disk
 * format and must never change.
 */
#include "pg/physical/checksum.h"

#include "common/buf.h"

#include <stdbool.h>
#include <string.h>

#define N_SUMS 32
#define FNV_PRIME 16777619u
#define PD_CHECKSUM_OFF 8
#define PD_UPPER_OFF 14

static const uint32_t checksum_base_offsets[N_SUMS] = {
	0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A,
	0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
	0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA,
	0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
	0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE,
	0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
	0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E,
	0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756
};

#define CHECKSUM_COMP(checksum, value) \
	do { \
		uint32_t tmp_ = (checksum) ^ (value); \
		(checksum) = tmp_ * FNV_PRIME ^ (tmp_ >> 17); \
	} while (0)

uint16_t
pgphys_page_checksum(const unsigned char *page, size_t blcksz, uint32_t blkno)
{
	uint32_t sums[N_SUMS];
	uint32_t result = 0;
	size_t rows = blcksz / (sizeof(uint32_t) * N_SUMS);

	memcpy(sums, checksum_base_offsets, sizeof(sums));
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < N_SUMS; j++)
		{
			size_t off = (i * N_SUMS + j) * sizeof(uint32_t);
			uint32_t v;

			/* pd_checksum (bytes 8..9) counts as zero: it is what we compute */
			if (off == PD_CHECKSUM_OFF)
			{
				unsigned char w[4];

				memcpy(w, page + off, 4);
				w[0] = w[1] = 0;
				memcpy(&v, w, 4);
			}
			else
				memcpy(&v, page + off, sizeof(v));
			CHECKSUM_COMP(sums[j], v);
		}
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < N_SUMS; j++)
			CHECKSUM_COMP(sums[j], 0);
	for (int i = 0; i < N_SUMS; i++)
		result ^= sums[i];
	result ^= blkno;
	return (uint16_t) ((result % 65535) + 1);
}

uint16_t
pgphys_page_stored_checksum(const unsigned char *page)
{
	uint16_t v;

	memcpy(&v, page + PD_CHECKSUM_OFF, sizeof(v));
	return v;
}

uint64_t
pgphys_page_lsn(const unsigned char *page)
{
	uint32_t hi, lo;

	memcpy(&hi, page, 4);
	memcpy(&lo, page + 4, 4);
	return ((uint64_t) hi << 32) | lo;
}

static bool
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

PgPhysPageStatus
pgphys_page_verify(const unsigned char *page, size_t blcksz, uint32_t blkno, uint64_t start_lsn)
{
	uint16_t upper;

	memcpy(&upper, page + PD_UPPER_OFF, sizeof(upper));
	if (upper == 0)
		return all_zero(page, blcksz) ? PGPHYS_PAGE_SKIPPED : PGPHYS_PAGE_BAD;
	if (pgphys_page_lsn(page) >= start_lsn)
		return PGPHYS_PAGE_SKIPPED;
	return pgphys_page_checksum(page, blcksz, blkno) == pgphys_page_stored_checksum(page)
		? PGPHYS_PAGE_OK : PGPHYS_PAGE_BAD;
}
