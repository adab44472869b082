/*
 * sort.h: qsort and bsearch that accept an empty array.
 *
 * The C library declares their array argument nonnull, so qsort(NULL, 0, ...)
 * -- what an empty, never-allocated list gives -- is undefined behaviour
 * (UBSan reports it).  Every sort and binary search in pgvault goes through
 * these instead.
 */
#ifndef PV_COMMON_SORT_H
#define PV_COMMON_SORT_H

#include <stdlib.h>

static inline void
pv_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

static inline void *
pv_bsearch(const void *key, const void *base, size_t n, size_t size,
		   int (*cmp)(const void *, const void *))
{
	return n > 0 ? bsearch(key, base, n, size, cmp) : NULL;
}

#endif
