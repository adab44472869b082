/*
 * checksum.h: PostgreSQL's data page checksums (storage/checksum_impl.h),
 * and the check a base backup makes of every page it reads.
 *
 * A page is checked only if it is initialised (pd_upper != 0) and its LSN is
 * older than the backup's start: a page changed since then may be torn in
 * our copy, which is harmless because WAL replay from the start point
 * rewrites it (full-page writes).  A new page (pd_upper == 0) must be all
 * zeros, as PageIsVerified requires.
 *
 * Layout assumptions: the page header is read in the host's byte order
 * (PostgreSQL writes it natively); block sizes are multiples of 128 bytes
 * (1 KiB .. 32 KiB in practice).
 */
#ifndef PV_PG_PHYSICAL_CHECKSUM_H
#define PV_PG_PHYSICAL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* The checksum PostgreSQL stores in pd_checksum for page (blcksz bytes) at block blkno of its relation. */
uint16_t pgphys_page_checksum(const unsigned char *page, size_t blcksz, uint32_t blkno);

/* The checksum stored in the page header. */
uint16_t pgphys_page_stored_checksum(const unsigned char *page);

/* pd_lsn of a page. */
uint64_t pgphys_page_lsn(const unsigned char *page);

typedef enum PgPhysPageStatus
{
	PGPHYS_PAGE_OK,				/* checked, good */
	PGPHYS_PAGE_SKIPPED,		/* new page of zeros, or changed since start_lsn: not checked */
	PGPHYS_PAGE_BAD,			/* checksum mismatch, or a "new" page that is not all zeros */
} PgPhysPageStatus;

PgPhysPageStatus pgphys_page_verify(const unsigned char *page, size_t blcksz, uint32_t blkno,
									uint64_t start_lsn);

#endif
