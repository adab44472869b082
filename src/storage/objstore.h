/*
 * objstore.h: what the HTTP object-store drivers (s3.c, azure.c) do the
 * same way, above http.c and beside upload.c: opening "scheme://container/
 * prefix" URLs and the HTTP client, mapping final answers to storage.h's
 * error codes, and the operations whose requests differ only in names:
 * stat (HEAD), get, ranged get, read handles (upload.c's read-ahead),
 * delete, paged listing, and the frame of a streaming writer around
 * upload.c's part uploader.
 *
 * A driver embeds an ObjStore as the FIRST member of its state, so the
 * `void *driver` of StorageOps is also an ObjStore *: the functions below
 * whose signatures are StorageOps members go into a driver's table as they
 * are.  Its streaming writer likewise starts with an ObjWriter.  What
 * differs between services (URL shape and signing, header and XML names,
 * error codes, hints) is the driver's ObjDialect, a static table with its
 * send function.  Driver-specific behaviour (S3's conditional-write
 * fallback and DeleteObjects, Azure's block ids) stays in the driver.
 *
 * Rules every driver gets from here:
 *   1. Reads (read = true) in a container that does not exist find nothing,
 *      as in an empty one (the posix driver's missing directory); writes
 *      fail with a hint, since only storage_create makes containers.
 *   2. A ranged read returns exactly len bytes or fails with PV_ECORRUPT
 *      naming the object; a store that ignores the Range header and sends
 *      the whole object (200) still gives just the slice asked for.
 *   3. Listing names that pgvault does not write ("a//b", folder markers
 *      "x/") are skipped, with a debug line.
 *
 * Ownership: objstore_url_parse and objstore_http_open fill container,
 * prefix and http; objstore_fini frees them.  Thread safety: an ObjStore is
 * read-only after open; an ObjWriter is used by one thread at a time (its
 * parts run on upload.c's workers).
 */
#ifndef PV_STORAGE_OBJSTORE_H
#define PV_STORAGE_OBJSTORE_H

#include "storage/http.h"
#include "storage/storage_driver.h"
#include "storage/upload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ObjStore ObjStore;

/* One request; the dialect's send turns it into an HttpRequest (URL, signature). */
typedef struct ObjReq
{
	const char *method;
	const char *okey;			/* full object key (prefix included), or NULL for the container */
	const char *query;			/* encoded, or NULL */
	HttpHeaders *headers;		/* extra headers, or NULL */
	const void *body;
	size_t body_len;
	Buf *sink;
	HttpCheckFn check;			/* see http.h, or NULL */
	const char *what;			/* context of messages */
} ObjReq;

typedef struct ObjDialect
{
	const char *setting;		/* "s3", "azure": the start of setting names (s3-endpoint, azure-verify-tls) */
	const char *container;		/* "bucket", "container": messages */
	const char *missing_code;	/* the error code of a missing container ("NoSuchBucket") */
	const char *exists_code;	/* a 409 error code meaning "exists" (412 always does), or NULL */
	const char *auth_hint;		/* the hint for 401 and 403 */
	const char *notimpl_hint;	/* the hint for 501 NotImplemented, or NULL */
	const char *range_header;	/* "Range", "x-ms-range" */
	/* Listing: the element of one object, and its name, size and mtime children. */
	const char *list_item;
	const char *list_name;
	const char *list_size;
	const char *list_mtime;
	/* The query of one listing page of keys starting with okey_prefix; token is empty on the first. */
	void (*list_query) (Buf *query, const ObjStore *os, const Buf *token, const char *okey_prefix);
	/* Where the next page starts, into token (reset first); empty after the last page. */
	int (*list_next) (const HttpResponse *resp, Buf *token);
	/* Send one request with the driver's URL and signature (http_request's contract). */
	int (*send) (ObjStore *os, const ObjReq *r, HttpResponse *resp);
} ObjDialect;

struct ObjStore
{
	const ObjDialect *d;
	const char *type;			/* the URL scheme ("s3", "gs", "azure"): messages */
	HttpClient *http;
	char *container;			/* bucket or container name */
	char *prefix;				/* "" or "a/b/" */
	int upload_jobs;			/* storage-upload-jobs */
	int page_size;				/* storage-list-page-size */
};

/* ---- opening ---- */

/*
 * rest is the URL after "type://": "container[/pre/fix]".  Sets container
 * and the tidy prefix ("/a//b/" -> "a/b/"), which must obey the key rules;
 * PV_EUSAGE naming url otherwise.  os->d and os->type must be set.
 */
int objstore_url_parse(ObjStore *os, const char *rest, const char *url);

/* storage-upload-jobs (1 to 64) and storage-list-page-size (1 to page_max). */
int objstore_settings(ObjStore *os, const StorageOpenOpts *opts, int page_max);

/*
 * Open os->http with the settings every driver shares (http_client_opts_read
 * with ca_env), warning loudly when TLS checks are off; resolve pins a
 * host name (see HttpClientOpts), or NULL.
 */
int objstore_http_open(ObjStore *os, const StorageOpenOpts *opts, const char *url, const char *ca_env,
					   const char *resolve);

/* Free what the functions above set (not os itself). */
void objstore_fini(ObjStore *os);

/* ---- requests and answers ---- */

/* The full object key of key: prefix + key; caller frees. */
char *objstore_okey(const ObjStore *os, const char *key);

/* A 2xx answer? */
bool objstore_ok(const HttpResponse *resp);

/* Is resp the answer "the container does not exist"? */
bool objstore_missing(const ObjStore *os, const HttpResponse *resp);

/*
 * Turn a final non-2xx answer into the right error code and one clear
 * line: the missing container (rule 1), PV_ENOTFOUND and PV_EEXISTS for
 * key (when not NULL), PV_EAUTH with the dialect's hint, else PV_ERROR.
 */
int objstore_fail(const ObjStore *os, const HttpResponse *resp, const char *what, const char *key, bool read);

/*
 * The common request: send r with the dialect's send, and turn an answer
 * that is not 2xx into objstore_fail(r->what, key, read).  resp is the
 * caller's (http_response_init before, http_response_free after, whatever
 * the result), so it can read the headers or body of a 2xx answer.
 */
int objstore_send_ok(ObjStore *os, const ObjReq *r, const char *key, bool read, HttpResponse *resp);

/* ---- StorageOps members (driver is the ObjStore) ---- */

int objstore_stat(void *driver, const char *key, StorageInfo *out);
int objstore_exists(void *driver, const char *key, bool *out);
int objstore_get(void *driver, const char *key, Buf *out);
int objstore_get_range(void *driver, const char *key, uint64_t offset, uint64_t len, Buf *out);
/* One HEAD for the size, then upload.c's read-ahead (write-once objects such as packs). */
int objstore_read_open(void **out, void *driver, const char *key);
int objstore_list(void *driver, const char *prefix, StorageListFn fn, void *payload);
/* One listing page's objects under os->prefix (its XML body), for fn (exposed for the fuzz target). */
int objstore_list_page(ObjStore *os, const HttpResponse *resp, StorageListFn fn, void *payload);
/* One DELETE; what a store answers for an absent key is the driver's business. */
int objstore_delete(void *driver, const char *key);

/*
 * The StorageOps members every driver takes from here as they are (the
 * rest, put, writers' open/commit/abort, delete, create and free, are the
 * driver's): `static const StorageOps x_ops = {.name = "x", OBJSTORE_OPS, ...}`.
 */
#define OBJSTORE_OPS \
	.writer_write = objstore_writer_write, \
	.get = objstore_get, \
	.get_range = objstore_get_range, \
	.stat = objstore_stat, \
	.list = objstore_list, \
	.read_open = objstore_read_open, \
	.read_range = readahead_range, \
	.read_close = readahead_close

/* ---- streaming writers ---- */

/* The first member of a driver's writer. */
typedef struct ObjWriter
{
	ObjStore *os;
	char *key;
	char *okey;					/* objstore_okey(key) */
	int flags;					/* STORAGE_PUT_* */
	Upload *up;					/* the parts (upload.h's bounds) */
} ObjWriter;

/* Fill w and start its Upload with uo (uo->ctx is the driver's writer, usually w). */
void objstore_writer_init(ObjWriter *w, ObjStore *os, const char *key, int flags, const UploadOpts *uo);

/* StorageOps.writer_write, as it is. */
int objstore_writer_write(void *writer, const void *data, size_t len);

/*
 * The end of the data.  When no part was sent (upload.h rule 2) the whole
 * object goes as one put (the driver's StorageOps.put) and 0 is returned;
 * otherwise the number of parts sent, for the driver's completing request.
 */
int objstore_writer_finish(ObjWriter *w, int (*put) (void *driver, const char *key, const void *data,
													  size_t len, int flags));

/* Wait for parts in flight and free what init made (not w itself). */
void objstore_writer_fini(ObjWriter *w);

#endif
