/*
 * storage.h: where repository objects live, behind one interface.
 *
 * A Storage is a flat namespace of objects named by keys.  A key is a
 * relative path with '/' separators ("data/ab/ab12...", "index/..."): never
 * empty, never starting with '/', no empty segments ("a//b", "a/"), no "..",
 * no "." segments, no control characters, at most 1024 bytes, and no segment
 * containing ".tmp." (that name space belongs to temp files).  Functions
 * given a bad key fail with PV_EUSAGE before touching the store.
 *
 * Writes are atomic and durable: once storage_put or storage_writer_commit
 * returns 0 the whole object is visible and survives a crash; before that
 * nothing of it is visible (never a partial object).  Objects are written
 * once and read many times; overwriting is allowed unless
 * STORAGE_PUT_NO_OVERWRITE asks for an atomic "create only".
 *
 * A Storage is safe to use from several threads at once; a StorageWriter
 * belongs to one thread at a time.  Errors name the key; the caller adds
 * which repository if it matters (storage_url).
 *
 * Ownership: storage_open and storage_writer_open hand the caller an object
 * to free (storage_free; storage_writer_commit/abort free the writer).
 * storage_get* append to a caller's Buf and leave it unchanged on failure.
 */
#ifndef PV_STORAGE_STORAGE_H
#define PV_STORAGE_STORAGE_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Storage Storage;
typedef struct StorageWriter StorageWriter;

typedef struct StorageInfo
{
	uint64_t size;
	int64_t mtime;				/* seconds since epoch, 0 if unknown */
} StorageInfo;

enum
{
	STORAGE_PUT_NO_OVERWRITE = 1	/* fail with PV_EEXISTS if the key exists (atomic check) */
};

/* Longest key accepted (the S3 limit). */
#define STORAGE_KEY_MAX 1024

/*
 * Open a repository location by URL: "/abs/path", "file:///abs/path", a
 * relative path (made absolute against the current directory),
 * "s3://bucket/prefix", "gs://bucket/prefix" (S3 drivers, s3.h) or
 * "azure://container/prefix" (azure.h).  The posix driver creates nothing on
 * open (init does mkdir).  PV_EUSAGE for an unknown scheme, or one this
 * build has no driver for.
 */
int storage_open(Storage **out, const char *url);

/*
 * Settings for drivers that need more than a URL: object stores want
 * credentials, an endpoint, a CA file.  lookup(key, payload) answers a
 * configuration key of a [repo:NAME] section ("s3-region", "azure-key";
 * see options.def) with its value, or NULL when unset; values are lent
 * until storage_open_opts returns (drivers copy what they keep).  Keys a
 * lookup does not answer fall back to the environment the cloud's own CLI
 * reads (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, ...), which is all that
 * storage_open (opts NULL) uses.
 */
typedef const char *(*StorageOptLookupFn) (const char *key, void *payload);
typedef struct StorageOpenOpts
{
	StorageOptLookupFn lookup;	/* NULL: environment only */
	void *payload;
} StorageOpenOpts;

/* storage_open with settings; opts may be NULL (the same as storage_open). */
int storage_open_opts(Storage **out, const char *url, const StorageOpenOpts *opts);
void storage_free(Storage *st);	/* NULL ok */
/* The location in canonical form (an absolute path for local storage); lent. */
const char *storage_url(const Storage *st);

/*
 * Make the location ready to hold objects: a directory is created (with
 * missing parents, mode 0700, durably); object stores need nothing.
 * Idempotent.  Only repository init calls this: no other operation creates
 * the location, so a repository on an unmounted disk fails loudly instead of
 * quietly filling the mount point.
 */
int storage_create(Storage *st);

/* Store data under key: atomic + durable.  flags: 0 or STORAGE_PUT_NO_OVERWRITE. */
int storage_put(Storage *st, const char *key, const void *data, size_t len, int flags);

/* The streaming form of storage_put, for objects too big to hold in memory. */
int storage_writer_open(StorageWriter **out, Storage *st, const char *key, int flags);
int storage_writer_write(StorageWriter *w, const void *data, size_t len);
int storage_writer_commit(StorageWriter *w);	/* durable, then visible; frees w (also on error) */
void storage_writer_abort(StorageWriter *w);	/* nothing becomes visible; frees w; NULL ok */

/* Appends the whole object to out; PV_ENOTFOUND. */
int storage_get(Storage *st, const char *key, Buf *out);
/* Appends bytes [offset, offset+len) to out; PV_ECORRUPT if the object is shorter. */
int storage_get_range(Storage *st, const char *key, uint64_t offset, uint64_t len, Buf *out);
int storage_stat(Storage *st, const char *key, StorageInfo *out);	/* PV_ENOTFOUND */

/*
 * Repeated ranged reads of one object (pack files during a restore) without
 * finding the object again for every range.  storage_reader_open fails with
 * PV_ENOTFOUND like storage_get; storage_reader_range appends bytes
 * [offset, offset+len) to out (unchanged on failure) and fails with
 * PV_ECORRUPT when the object is shorter, exactly as storage_get_range.
 *
 * What a handle reads: drivers that implement it natively (posix: an open
 * descriptor) read the object as it was opened, so an object replaced by a
 * rename afterwards still reads as its old, complete self, and one truncated
 * in place fails with PV_ECORRUPT; other drivers fall back to
 * storage_get_range on every call.  Use it for write-once objects.  A handle
 * may be used from several threads at once; the Storage must outlive it.
 * storage_reader_close(NULL) is a no-op.
 */
typedef struct StorageReader StorageReader;
int storage_reader_open(StorageReader **out, Storage *st, const char *key);
int storage_reader_range(StorageReader *r, uint64_t offset, uint64_t len, Buf *out);
void storage_reader_close(StorageReader *r);
int storage_exists(Storage *st, const char *key, bool *out);

/*
 * Calls fn for each key under prefix (recursive; "" = all), in no promised
 * order, with its size.  prefix is a plain string prefix of keys, as in
 * object stores: "data/ab" matches "data/ab/x" and "data/abc".  fn returns 0
 * to go on or a negative code to stop (that code is returned).  Temp files
 * are never listed.  A prefix nothing matches gives no calls and 0.
 */
typedef int (*StorageListFn) (const char *key, const StorageInfo *info, void *payload);
int storage_list(Storage *st, const char *prefix, StorageListFn fn, void *payload);

int storage_delete(Storage *st, const char *key);	/* PV_ENOTFOUND if absent */

/*
 * Delete keys[0..n) for a clean-up (prune, WAL expiry): keys that are absent
 * already are not an error.  Object stores with a batch request (S3
 * DeleteObjects: up to 1000 keys a request) use it; other drivers delete one
 * key at a time.  On failure returns the first error, naming its key; other
 * keys may be gone by then (run it again: deleting is idempotent).
 */
int storage_delete_many(Storage *st, const char *const *keys, size_t n);

/* PV_EUSAGE with a message if key is not a valid object key (see above); 0 otherwise. */
int storage_key_check(const char *key);

#endif
