/*
 * upload.h: the transfers the object-store drivers share: the parallel part
 * uploader (S3 multipart parts, Azure blocks) and, at the end, the read-ahead
 * handle behind their storage_reader_* (see "Read-ahead" below).
 *
 * An Upload takes an object's bytes as they come, cuts them into parts of
 * part_size, and hands each full part to a pool of `jobs` workers that call
 * the driver's part function.  A driver's streaming writer is then: its
 * own begin (CreateMultipartUpload) and part (UploadPart, Put Block)
 * requests, plus its own finish (CompleteMultipartUpload, Put Block List).
 *
 * Invariants:
 *   1. Memory is bounded whatever the object's size: one part being filled
 *      (grown geometrically, so a small object never costs a whole part),
 *      the parts in flight and one queued (upload_write blocks meanwhile).
 *   2. A full buffer becomes a part only when more data comes: an object
 *      that fits in one part sends no part at all, and the driver writes it
 *      with one plain request (upload_finish says so: parts == 0).
 *   3. begin runs once, on the writer's thread, before the first part is
 *      queued; part runs on worker threads, up to `jobs` at once, each part
 *      exactly once (retries are the HTTP layer's), numbered from 1.
 *   4. After a failed write every later write and the finish fail with
 *      "an earlier write failed"; the first error is what the failing call
 *      returned.
 * Ownership: the driver's writer owns the Upload (upload_free); data handed
 * to part is lent for the call.
 */
#ifndef PV_STORAGE_UPLOAD_H
#define PV_STORAGE_UPLOAD_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Upload Upload;

typedef struct UploadOpts
{
	size_t part_size;
	int jobs;					/* parallel parts: storage-upload-jobs */
	int max_parts;				/* the store's limit (S3 10000, Azure 50000) */
	const char *unit;			/* "parts", "blocks": messages */
	const char *size_setting;	/* "s3-part-size": named when max_parts is reached */
	int (*begin) (void *ctx);	/* NULL: nothing to start */
	int (*part) (void *ctx, int number, const unsigned char *data, size_t len);
	void *ctx;					/* the driver's writer, for begin and part */
} UploadOpts;

/* A new upload of object key (for messages; copied); opts is copied. */
Upload *upload_new(const char *key, const UploadOpts *opts);

/* Append data; may queue full parts (blocks while the queue is full). */
int upload_write(Upload *u, const void *data, size_t len);

/*
 * The end of the data.  *parts = 0: nothing was sent, the whole object is
 * upload_data() (rule 2).  Otherwise the last part is queued and every part
 * has been sent: *parts is how many.
 */
int upload_finish(Upload *u, int *parts);

/* The bytes not yet sent as a part (the whole object when none was); lent. */
const unsigned char *upload_data(const Upload *u, size_t *len);

/* Bytes written so far. */
uint64_t upload_total(const Upload *u);

/* Wait for parts in flight (the error state is kept), free; NULL ok. */
void upload_free(Upload *u);

/*
 * Read-ahead: a driver's read handle (StorageOps read_open/read_range/
 * read_close) for write-once objects such as packs.  The object is read in
 * windows of `window` bytes aligned to multiples of it, with the driver's
 * get_range; a handle keeps the 4 most recently used, so reading a pack's
 * chunks costs one request per window instead of one per chunk.  A range
 * bigger than a window is read as it is.  size comes from the driver's
 * stat at open: a range past it fails with PV_ECORRUPT before any request.
 * Threads may share a handle: a window is fetched once, outside the lock,
 * while threads wanting it wait.  Memory: 4 windows per handle.  An object
 * replaced after the open is not noticed.
 */
typedef int (*ReadaheadGetFn) (void *driver, const char *key, uint64_t offset, uint64_t len, Buf *out);

/* A new handle on key (copied) of size bytes; driver is lent to get. */
void *readahead_open(void *driver, const char *key, uint64_t size, size_t window, ReadaheadGetFn get);
/* StorageOps.read_range and read_close, as they are. */
int readahead_range(void *handle, uint64_t offset, uint64_t len, Buf *out);
void readahead_close(void *handle);

#endif
