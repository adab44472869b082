/*
 * fault.h: a storage driver that wraps another and injects failures, for
 * tests (in the spirit of SQLite's test6.c crash VFS).
 *
 * Wrap a real store (usually posix on a temp directory) and tell the wrapper
 * which operation to break: "the 3rd put fails", "the 2nd get returns one
 * byte flipped", "the 1st put stores only 100 bytes but reports success".
 * Code under test then meets the error on a real store, and the test can
 * look at the inner store to see what really got written.
 *
 * Operations are counted per kind from 1, over the whole wrapper and all
 * threads, counting only keys that start with only_prefix.  An injected
 * failure returns fail_code (PV_EIO by default) with the message
 * "injected fault: <what> '<key>'", and stores nothing.
 *
 * Ownership: the wrapper borrows inner, which must outlive it; freeing the
 * wrapper (storage_free) leaves inner open.  The options are copied.
 */
#ifndef PV_STORAGE_FAULT_H
#define PV_STORAGE_FAULT_H

#include "storage/storage.h"

typedef struct StorageFaultOpts
{
	/* The Nth operation of a kind fails (0 = never).  A put is storage_put or a
	 * writer: storage_put fails at once, a writer when it commits (the inner
	 * writer is aborted, so nothing becomes visible). */
	unsigned fail_put;
	unsigned fail_write;		/* the Nth storage_writer_write call */
	unsigned fail_get;			/* storage_get and storage_get_range */
	unsigned fail_stat;			/* storage_stat and storage_exists */
	unsigned fail_list;
	unsigned fail_delete;
	bool fail_after;			/* also fail every later operation of the kinds above: a dead disk */
	int fail_code;				/* 0 = PV_EIO */

	/* The Nth put stores only its first truncate_to bytes, yet reports success (a lying disk). */
	unsigned truncate_put;
	uint64_t truncate_to;

	/* The Nth get/get_range returns its data with the byte at flip_offset (modulo
	 * the length returned) inverted (bit rot). */
	unsigned flip_get;
	uint64_t flip_offset;

	const char *only_prefix;	/* count only keys (or list prefixes) starting with this; NULL = all */
} StorageFaultOpts;

/* How many operations of each kind the wrapper has counted so far. */
typedef struct StorageFaultCounts
{
	uint64_t puts, writes, gets, stats, lists, deletes;
} StorageFaultCounts;

int storage_fault_new(Storage **out, Storage *inner, const StorageFaultOpts *opts);

/* st must come from storage_fault_new. */
void storage_fault_counts(Storage *st, StorageFaultCounts *out);
/* Replace the options and reset the counts to zero. */
void storage_fault_set(Storage *st, const StorageFaultOpts *opts);

#endif
