/*
 * storage_driver.h: the interface a storage driver implements (for driver
 * writers only; everyone else uses storage.h).
 *
 * A driver supplies a StorageOps table and an opaque driver pointer, and
 * wraps them in a Storage with storage_new().  The public wrappers in
 * storage.c do everything that is the same for every driver, so a driver
 * never repeats it:
 *   - keys and prefixes are validated before a driver sees them;
 *   - flags hold only known bits;
 *   - on failure of get/get_range, out is put back to its old length, so a
 *     driver may leave partial data behind;
 *   - writer_abort and storage_free are no-ops on NULL.
 * A driver must be safe for concurrent calls on one driver pointer (each
 * writer pointer is used by one thread at a time), must set an error
 * message naming the key on every failure, and must use PV_ENOTFOUND,
 * PV_EEXISTS and PV_ECORRUPT exactly as storage.h documents.
 *
 * Drivers are found by URL scheme in the table in storage.c: adding a
 * driver (s3, azure) is one line there plus its open function; callers of
 * storage_open do not change.
 */
#ifndef PV_STORAGE_STORAGE_DRIVER_H
#define PV_STORAGE_STORAGE_DRIVER_H

#include "storage/storage.h"

typedef struct StorageOps
{
	const char *name;			/* "posix", "fault": for messages */

	/* ---- required ---- */
	int (*put) (void *driver, const char *key, const void *data, size_t len, int flags);
	/* *out is the driver's writer state, passed to the writer_* members below. */
	int (*writer_open) (void **out, void *driver, const char *key, int flags);
	int (*writer_write) (void *writer, const void *data, size_t len);
	int (*writer_commit) (void *writer);	/* frees writer, also on error */
	void (*writer_abort) (void *writer);	/* frees writer; never NULL here */
	int (*get) (void *driver, const char *key, Buf *out);
	int (*get_range) (void *driver, const char *key, uint64_t offset, uint64_t len, Buf *out);
	int (*stat) (void *driver, const char *key, StorageInfo *out);
	int (*list) (void *driver, const char *prefix, StorageListFn fn, void *payload);
	int (*delete) (void *driver, const char *key);

	/* ---- optional (NULL: the generic fallback in storage.c) ---- */
	int (*exists) (void *driver, const char *key, bool *out);	/* default: stat */
	int (*create) (void *driver);	/* see storage_create; default: nothing to create */
	void (*free) (void *driver);	/* default: nothing to free */
	/*
	 * Delete keys[0..n) (n > 0, keys checked), absent keys not an error; the
	 * driver splits n into its own batches.  Default: one delete per key.
	 */
	int (*delete_many) (void *driver, const char *const *keys, size_t n);
	/*
	 * Ranged reads through an open handle (storage_reader_*): all three or
	 * none.  Default: each storage_reader_range is a get_range.  offset+len
	 * is checked for overflow before read_range sees it.
	 */
	int (*read_open) (void **out, void *driver, const char *key);
	int (*read_range) (void *handle, uint64_t offset, uint64_t len, Buf *out);
	void (*read_close) (void *handle);
} StorageOps;

/*
 * Wrap a driver in a Storage.  ops must be static (it is lent for the life of
 * the Storage); driver is owned by the Storage from now on (ops->free
 * releases it); url is copied and is what storage_url() returns.
 */
Storage *storage_new(const StorageOps *ops, void *driver, const char *url);

/* The driver pointer of a Storage, for wrappers such as the fault driver. */
void *storage_driver(const Storage *st);

/* Check a list prefix: "" or a key prefix obeying the key rules (a trailing '/' is fine). */
int storage_prefix_check(const char *prefix);

/*
 * A driver setting: opts->lookup(key) when it answers, else the
 * environment variable env (when not NULL and set non-empty), else NULL.
 * Lent: valid until storage_open_opts returns.
 */
const char *storage_opts_get(const StorageOpenOpts *opts, const char *key, const char *env);

/* ---- built-in drivers ---- */

/* The posix driver on directory root (absolute, tidy: see pv_fs_path_absolute).  Creates nothing. */
int storage_posix_new(Storage **out, const char *root);

#endif
