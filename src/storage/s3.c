/*
 * s3.c: the S3 storage driver (see s3.h for URLs and settings).
 *
 * Object "k" of repository s3://bucket/pre is the S3 object "pre/k".
 * Every request goes through http.c (reuse, retries, error lines) and is
 * signed with SigV4 (sigv4.c), payload hash included, on every attempt.
 * What S3 does like every object store (stat, get, ranged reads, listing,
 * error mapping, the writer's frame) is objstore.c's, driven by s3_dialect;
 * what is S3's own (signing, multipart, conditional writes, DeleteObjects)
 * is here.
 *
 * Durability and visibility rules:
 *   1. An object becomes visible only whole: a single PUT, or the
 *      CompleteMultipartUpload of a streamed one.  S3 shows neither before
 *      it succeeded.
 *   2. A writer holds at most one part buffer of s3-part-size while
 *      filling, plus the parts in flight (storage-upload-jobs) and one
 *      queued: memory is bounded whatever the object's size (upload.c).
 *      A writer that never fills more than one part sends a single PUT.
 *   3. A failed or aborted multipart upload is aborted
 *      (AbortMultipartUpload), so its parts do not linger and bill; a
 *      store without that call (s3rver) is told nothing worse than a log
 *      line.
 *   4. STORAGE_PUT_NO_OVERWRITE sends "If-None-Match: *" on the PUT or the
 *      CompleteMultipartUpload (AWS since 2024, MinIO, R2, Ceph): atomic.
 *      Where the store ignores it (s3rver), s3-if-none-match = off checks
 *      with HEAD first instead: NOT atomic (two writers racing can both
 *      succeed); the repository's own locks are then the protection.  A
 *      store that refuses it as NotImplemented (Swift's s3api) gets the same
 *      fallback automatically, with one warning.
 *   5. A retried request whose earlier attempt did succeed is recognised
 *      where S3 would otherwise report a failure: a CompleteMultipartUpload
 *      answered NoSuchUpload whose object exists with the expected size.
 *   6. Many deletes (storage_delete_many) go as DeleteObjects, up to 1000
 *      keys a request, quiet mode (the answer lists only failures), with
 *      the Content-MD5 S3 requires.  A key that is not there is deleted as
 *      far as S3 is concerned.  A store that answers 501 or 405 to it gets
 *      one DELETE per key from then on, for the life of this Storage.
 *   7. A read handle (storage_reader_*) reads ahead (objstore_read_open):
 *      a range it does not hold fetches a window from there on, and later
 *      ranges inside that window cost no request.  Meant for write-once
 *      objects (packs): a window does not notice an object replaced since
 *      the open.
 *
 * Thread safety: the driver state is read-only after open, but for two
 * atomic flags (rules 4 and 6); writers send their parts through upload.c's
 * pool and guard the part ETags with one mutex.
 */
#include "storage/s3.h"

#include "storage/objstore.h"
#include "storage/sigv4.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"

#include <ini.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S3_MIB (UINT64_C(1024) * 1024)
#define S3_PART_MIN (5 * S3_MIB)		/* S3's smallest part (except the last) */
#define S3_PART_MAX (5 * 1024 * S3_MIB)
#define S3_PARTS_MAX 10000

typedef struct S3Storage
{
	ObjStore os;				/* first (objstore.h): type "s3" or "gs", bucket, prefix, client */
	char *scheme;				/* "https" / "http" */
	char *host;					/* endpoint host[:port] */
	bool virtual_host;
	char *region;
	char *access_key;
	char *secret_key;			/* secret */
	char *token;				/* secret, or NULL */
	char *storage_class;
	char *sse;
	size_t part_size;
	bool if_none_match;
	bool cond_refused;			/* atomic: the store answered a conditional write with 501 */
	bool batch_refused;			/* atomic: the store has no DeleteObjects (rule 6) */
} S3Storage;

/* Send If-None-Match on create-only writes? (rule 4) */
static bool
s3_cond(const S3Storage *s)
{
	return s->if_none_match && !__atomic_load_n(&s->cond_refused, __ATOMIC_RELAXED);
}

/*
 * The store refused a conditional write as not implemented (Swift's s3api):
 * fall back to rule 4's check-first for the life of this Storage, and say so
 * once.  Returns true when the caller should try again that way.
 */
static bool
s3_cond_refused(S3Storage *s, const HttpResponse *resp)
{
	char code[128];

	if (resp->status != 501 || !s3_cond(s))
		return false;
	http_response_error_code(resp, code, sizeof(code));
	if (strcmp(code, "NotImplemented") != 0)
		return false;
	if (!__atomic_exchange_n(&s->cond_refused, true, __ATOMIC_RELAXED))
		pv_log_warn("%s: bucket '%s' does not support conditional writes (If-None-Match): create-only writes "
					"check first, which is not atomic; set s3-if-none-match = off to silence this",
					s->os.type, s->os.container);
	return true;
}

/* ---- requests ---- */

typedef struct S3Call
{
	S3Storage *s;
	const char *host;
	const char *path;
	const char *query;
	char payload_hash[65];
} S3Call;

/* Sign one attempt: host, dates, payload hash and every header we send. */
static int
s3_sign(HttpHeaders *h, const HttpRequest *req, void *payload)
{
	S3Call *call = payload;
	S3Storage *s = call->s;
	char date[32];
	time_t now = time(NULL);
	struct tm tm;
	SigV4Header *sh;
	Buf auth = PV_BUF_INIT;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
	http_headers_add(h, "Host", "%s", call->host);
	http_headers_add(h, "x-amz-date", "%s", date);
	http_headers_add(h, "x-amz-content-sha256", "%s", call->payload_hash);
	if (s->token != NULL)
		http_headers_add(h, "x-amz-security-token", "%s", s->token);

	sh = pv_calloc(h->n, sizeof(*sh));
	for (size_t i = 0; i < h->n; i++)
	{
		char *colon = strchr(h->lines[i], ':');

		*colon = '\0';			/* split in place for the signer, restored below */
		sh[i].name = h->lines[i];
		sh[i].value = colon + 1;
	}
	sigv4_authorization(&auth, &(SigV4Request) {
		.method = req->method, .path = call->path, .query = call->query, .headers = sh,
		.nheaders = h->n, .payload_hash = call->payload_hash},
		&(SigV4Credentials) {
		.access_key = s->access_key, .secret_key = s->secret_key, .region = s->region, .service = "s3"},
		date);
	for (size_t i = 0; i < h->n; i++)
		h->lines[i][strlen(h->lines[i])] = ':';
	pv_free(sh);
	http_headers_add(h, "Authorization", "%s", buf_cstr(&auth));
	buf_free_secret(&auth);
	return 0;
}

/* The dialect's send: path-style or virtual-hosted URL, SigV4 on every attempt. */
static int
s3_send(ObjStore *os, const ObjReq *r, HttpResponse *resp)
{
	S3Storage *s = (S3Storage *) os;	/* os is its first member */
	S3Call call = {.s = s, .query = r->query};
	Buf host = PV_BUF_INIT, path = PV_BUF_INIT, url = PV_BUF_INIT;
	int rc;

	if (s->virtual_host)
		buf_printf(&host, "%s.%s", s->os.container, s->host);
	else
	{
		buf_append_str(&host, s->host);
		buf_printf(&path, "/%s", s->os.container);
	}
	if (r->okey != NULL)
	{
		buf_append_byte(&path, '/');
		sigv4_uri_encode(&path, r->okey, strlen(r->okey), 1);
	}
	else if (path.len == 0)
		buf_append_byte(&path, '/');
	buf_printf(&url, "%s://%s%s%s%s", s->scheme, buf_cstr(&host), buf_cstr(&path), r->query ? "?" : "",
			   r->query ? r->query : "");
	call.host = buf_cstr(&host);
	call.path = buf_cstr(&path);
	sigv4_sha256_hex(call.payload_hash, r->body ? r->body : "", r->body_len);
	rc = http_request(s->os.http, &(HttpRequest) {
		.method = r->method, .url = buf_cstr(&url), .path = call.path, .query = r->query,
		.headers = r->headers, .body = r->body, .body_len = r->body_len, .sink = r->sink,
		.sign = s3_sign, .check = r->check, .payload = &call, .what = r->what}, resp);
	buf_free(&host);
	buf_free(&path);
	buf_free(&url);
	return rc;
}

/* The headers every new object gets: storage class, encryption, create-only. */
static void
s3_object_headers(const S3Storage *s, HttpHeaders *h, int flags)
{
	if (s->storage_class != NULL)
		http_headers_add(h, "x-amz-storage-class", "%s", s->storage_class);
	if (s->sse != NULL)
		http_headers_add(h, "x-amz-server-side-encryption", "%s", s->sse);
	if ((flags & STORAGE_PUT_NO_OVERWRITE) && s3_cond(s))
		http_headers_add(h, "If-None-Match", "*");
}

/* Rule 4's fallback: fail with PV_EEXISTS if key is there already (not atomic). */
static int
s3_check_absent(S3Storage *s, const char *key, int flags)
{
	bool exists = false;
	int rc;

	if (!(flags & STORAGE_PUT_NO_OVERWRITE) || s3_cond(s))
		return 0;
	if ((rc = objstore_exists(&s->os, key, &exists)) < 0)
		return rc;
	if (exists)
		return pv_error_set(PV_EEXISTS, "object '%s' already exists", key);
	return 0;
}

/* ---- single PUT ---- */

static int
s3_put_single(void *driver, const char *key, const void *data, size_t len, int flags)
{
	S3Storage *s = driver;
	char *okey = objstore_okey(&s->os, key);
	char *what = pv_asprintf("cannot write object '%s'", key);
	HttpHeaders h = {0};
	HttpResponse resp;
	int rc;

	http_response_init(&resp);
again:
	if ((rc = s3_check_absent(s, key, flags)) < 0)
		goto done;
	s3_object_headers(s, &h, flags);
	if ((rc = s3_send(&s->os, &(ObjReq) {.method = "PUT", .okey = okey, .headers = &h, .body = data,
						  .body_len = len, .what = what}, &resp)) < 0)
		goto done;
	if (!objstore_ok(&resp) && (flags & STORAGE_PUT_NO_OVERWRITE) && s3_cond_refused(s, &resp))
	{
		http_headers_free(&h);
		goto again;				/* once: s3_cond() is false from now on */
	}
	if (!objstore_ok(&resp))
		rc = objstore_fail(&s->os, &resp, what, key, false);

done:
	http_headers_free(&h);
	http_response_free(&resp);
	pv_free(okey);
	pv_free(what);
	return rc;
}

static int
s3_put(void *driver, const char *key, const void *data, size_t len, int flags)
{
	/*
	 * One PUT up to 5 GiB is S3's limit; above the part size the streaming
	 * writer would use multipart, but a caller handing us the whole object
	 * has already paid its memory: one request is cheapest.
	 */
	if (len > S3_PART_MAX)
	{
		/* uncovered: nobody holds a 5 GiB object in memory */
		return pv_error_set(PV_EUSAGE, "cannot write object '%s': %zu bytes is more than one request may "
							"carry; use the streaming writer", key, len);
	}
	return s3_put_single(driver, key, data, len, flags);
}

/* ---- streaming writer (multipart) ---- */

typedef struct S3Writer
{
	ObjWriter ow;				/* first (objstore.h): key, okey, flags, the parts (rule 2's bounds) */
	char *upload_id;			/* NULL until the first part is sent */
	char *upload_id_enc;		/* %-encoded for queries */
	pthread_mutex_t lock;		/* guards etags */
	char **etags;				/* [part number - 1] */
	int netags;					/* slots in etags */
} S3Writer;

/* UploadPart: one part of the upload, on a worker thread (upload.h rule 3). */
static int
s3_part_upload(void *ctx, int number, const unsigned char *data, size_t len)
{
	S3Writer *w = ctx;
	char *query = pv_asprintf("partNumber=%d&uploadId=%s", number, w->upload_id_enc);
	char *what = pv_asprintf("cannot write object '%s' (part %d)", w->ow.key, number);
	HttpResponse resp;
	char *etag = NULL;
	int rc;

	http_response_init(&resp);
	if ((rc = objstore_send_ok(w->ow.os, &(ObjReq) {.method = "PUT", .okey = w->ow.okey, .query = query,
								   .body = data, .body_len = len, .what = what}, NULL, false, &resp)) < 0)
		goto done;
	if ((etag = http_response_header_dup(&resp, "ETag")) == NULL)
	{
		rc = pv_error_set(PV_ERROR, "%s: the answer has no ETag", what);
		goto done;
	}
	pthread_mutex_lock(&w->lock);
	if (number > w->netags)
	{
		int n = number > 2 * w->netags ? number : 2 * w->netags;

		w->etags = pv_realloc(w->etags, (size_t) n * sizeof(*w->etags));
		memset(w->etags + w->netags, 0, (size_t) (n - w->netags) * sizeof(*w->etags));
		w->netags = n;
	}
	w->etags[number - 1] = etag;
	pthread_mutex_unlock(&w->lock);
	etag = NULL;

done:
	pv_free(etag);
	pv_free(query);
	pv_free(what);
	http_response_free(&resp);
	return rc;
}

/* CreateMultipartUpload, before the first part (upload.h rule 3): the upload id. */
static int
s3_multipart_begin(void *ctx)
{
	S3Writer *w = ctx;
	S3Storage *s = (S3Storage *) w->ow.os;
	char *what = pv_asprintf("cannot write object '%s' (start multipart upload)", w->ow.key);
	HttpHeaders h = {0};
	HttpResponse resp;
	const char *pos, *id;
	size_t idlen;
	Buf idbuf = PV_BUF_INIT, enc = PV_BUF_INIT;
	int rc;

	http_response_init(&resp);
	s3_object_headers(s, &h, 0);
	if ((rc = objstore_send_ok(&s->os, &(ObjReq) {.method = "POST", .okey = w->ow.okey, .query = "uploads",
								   .headers = &h, .what = what}, NULL, false, &resp)) < 0)
		goto done;
	pos = (const char *) resp.body.data;
	if (pos == NULL || !http_xml_next(&pos, pos + resp.body.len, "UploadId", &id, &idlen) || idlen == 0)
	{
		rc = pv_error_set(PV_ERROR, "%s: the answer has no UploadId", what);
		goto done;
	}
	http_xml_decode(&idbuf, id, idlen);
	sigv4_uri_encode(&enc, (const char *) idbuf.data, idbuf.len, 0);
	w->upload_id = buf_detach(&idbuf);
	w->upload_id_enc = buf_detach(&enc);
	pv_log_trace("s3: multipart upload of '%s' started", w->ow.key);

done:
	buf_free(&idbuf);
	buf_free(&enc);
	http_headers_free(&h);
	http_response_free(&resp);
	pv_free(what);
	return rc;
}

static int
s3_writer_open(void **out, void *driver, const char *key, int flags)
{
	S3Storage *s = driver;
	S3Writer *w = PV_NEW(S3Writer);

	pthread_mutex_init(&w->lock, NULL);
	objstore_writer_init(&w->ow, &s->os, key, flags, &(UploadOpts) {
		.part_size = s->part_size, .jobs = s->os.upload_jobs, .max_parts = S3_PARTS_MAX, .unit = "parts",
		.size_setting = "s3-part-size", .begin = s3_multipart_begin, .part = s3_part_upload, .ctx = w});
	*out = w;
	return 0;
}

/* AbortMultipartUpload (rule 3); never fails the caller. */
static void
s3_multipart_abort(S3Writer *w)
{
	char *query = pv_asprintf("uploadId=%s", w->upload_id_enc);
	char *what = pv_asprintf("cannot abort the upload of object '%s'", w->ow.key);
	HttpResponse resp;

	http_response_init(&resp);
	if (s3_send(w->ow.os, &(ObjReq) {.method = "DELETE", .okey = w->ow.okey, .query = query, .what = what},
				&resp) < 0)
		pv_log_warn("s3: %s", pv_error_msg());
	else if (!objstore_ok(&resp) && resp.status != 404)
	{
		http_response_error(&resp, PV_ERROR, what);
		pv_log_detail("s3: %s", pv_error_msg());
	}
	http_response_free(&resp);
	pv_free(query);
	pv_free(what);
}

static void
s3_writer_free(S3Writer *w)
{
	objstore_writer_fini(&w->ow);	/* first: waits for parts in flight */
	for (int i = 0; i < w->netags; i++)
		pv_free(w->etags[i]);
	pv_free(w->etags);
	pthread_mutex_destroy(&w->lock);
	pv_free(w->upload_id);
	pv_free(w->upload_id_enc);
	pv_free(w);
}

/* A 200 answer to CompleteMultipartUpload may still carry an <Error>. */
static int
s3_complete_check(const HttpResponse *resp, void *payload)
{
	const char *pos = (const char *) resp->body.data;
	const char *v;
	size_t len;
	char code[128];

	if (pos == NULL || !http_xml_next(&pos, pos + resp->body.len, "Error", &v, &len))
		return 0;
	http_response_error_code(resp, code, sizeof(code));
	http_response_error(resp, PV_ERROR, "complete multipart upload");
	if (strcmp(code, "InternalError") == 0 || strcmp(code, "SlowDown") == 0 ||
		strcmp(code, "ServiceUnavailable") == 0 || code[0] == '\0')
		return PV_ERETRY;
	return PV_ERROR;
}

static int
s3_multipart_complete(S3Writer *w, int nparts)
{
	S3Storage *s = (S3Storage *) w->ow.os;
	char *query = pv_asprintf("uploadId=%s", w->upload_id_enc);
	char *what = pv_asprintf("cannot write object '%s' (complete multipart upload)", w->ow.key);
	HttpHeaders h = {0};
	HttpResponse resp;
	Buf xml = PV_BUF_INIT;
	char code[128];
	int rc;

	http_response_init(&resp);
	buf_append_str(&xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (int i = 0; i < nparts; i++)
	{
		buf_printf(&xml, "<Part><PartNumber>%d</PartNumber><ETag>", i + 1);
		http_xml_escape(&xml, w->etags[i]);
		buf_append_str(&xml, "</ETag></Part>");
	}
	buf_append_str(&xml, "</CompleteMultipartUpload>");
again:
	if ((w->ow.flags & STORAGE_PUT_NO_OVERWRITE) && s3_cond(s))
		http_headers_add(&h, "If-None-Match", "*");
	http_headers_add(&h, "Content-Type", "application/xml");
	rc = s3_send(&s->os, &(ObjReq) {.method = "POST", .okey = w->ow.okey, .query = query, .headers = &h,
				 .body = xml.data, .body_len = xml.len, .check = s3_complete_check, .what = what}, &resp);
	if (rc < 0)
		goto done;
	if (!objstore_ok(&resp) && (w->ow.flags & STORAGE_PUT_NO_OVERWRITE) && s3_cond_refused(s, &resp))
	{
		http_headers_free(&h);
		if ((rc = s3_check_absent(s, w->ow.key, w->ow.flags)) < 0)
			goto done;
		goto again;
	}
	if (!objstore_ok(&resp))
	{
		StorageInfo info;

		http_response_error_code(&resp, code, sizeof(code));
		/* Rule 5: an earlier attempt completed it, and the answer was lost. */
		if (resp.status == 404 && strcmp(code, "NoSuchUpload") == 0 && objstore_stat(&s->os, w->ow.key, &info) == 0 &&
			info.size == upload_total(w->ow.up))
		{
			pv_log_detail("s3: object '%s' was completed by an earlier attempt", w->ow.key);
			rc = 0;
			goto done;
		}
		rc = objstore_fail(&s->os, &resp, what, w->ow.key, false);
	}

done:
	buf_free(&xml);
	http_headers_free(&h);
	http_response_free(&resp);
	pv_free(query);
	pv_free(what);
	return rc;
}

/* Wait for the parts in flight, then AbortMultipartUpload (rule 3); keeps the error. */
static void
s3_writer_cancel(S3Writer *w)
{
	PvErrorSave e;

	pv_error_save(&e);
	upload_free(w->ow.up);
	w->ow.up = NULL;
	s3_multipart_abort(w);
	pv_error_restore(&e);
}

static int
s3_writer_commit(void *writer)
{
	S3Writer *w = writer;
	int parts;
	int rc;

	/* Rule 2: what fitted in one part went as one PUT (parts == 0). */
	if ((rc = parts = objstore_writer_finish(&w->ow, s3_put_single)) <= 0)
		goto done;
	if ((rc = s3_check_absent((S3Storage *) w->ow.os, w->ow.key, w->ow.flags)) < 0)
		goto done;
	rc = s3_multipart_complete(w, parts);

done:
	if (rc < 0 && w->upload_id != NULL)
		s3_writer_cancel(w);
	s3_writer_free(w);
	return rc;
}

static void
s3_writer_abort(void *writer)
{
	S3Writer *w = writer;

	if (w->upload_id != NULL)
		s3_writer_cancel(w);
	s3_writer_free(w);
}

/* ---- listing ---- */

/* ListObjectsV2, paged by continuation token (the dialect's list_query). */
static void
s3_list_query(Buf *query, const ObjStore *os, const Buf *token, const char *okey_prefix)
{
	if (token->len > 0)
	{
		buf_append_str(query, "continuation-token=");
		sigv4_uri_encode(query, (const char *) token->data, token->len, 0);
		buf_append_byte(query, '&');
	}
	buf_printf(query, "list-type=2&max-keys=%d&prefix=", os->page_size);
	sigv4_uri_encode(query, okey_prefix, strlen(okey_prefix), 0);
}

/* The next page: <NextContinuationToken> when <IsTruncated> says there is one. */
int
s3_list_next(const HttpResponse *resp, Buf *token)
{
	const char *pos = (const char *) resp->body.data;
	const char *end = pos + resp->body.len;
	const char *v;
	size_t vlen;
	bool more = http_xml_next(&pos, end, "IsTruncated", &v, &vlen) && vlen == 4 && strncmp(v, "true", 4) == 0;

	buf_reset(token);
	pos = (const char *) resp->body.data;
	if (more && http_xml_next(&pos, end, "NextContinuationToken", &v, &vlen))
		http_xml_decode(token, v, vlen);
	if (more && token->len == 0)
		return pv_error_set(PV_ERROR, "cannot list objects: a truncated listing without NextContinuationToken");
	return 0;
}

/* ---- deleting ---- */

static int
s3_delete(void *driver, const char *key)
{
	StorageInfo info;
	int rc;

	/* S3 answers 204 for a key that is not there: ask first, so PV_ENOTFOUND means something. */
	if ((rc = objstore_stat(driver, key, &info)) < 0)
		return rc;
	return objstore_delete(driver, key);
}

#define S3_DELETE_BATCH 1000		/* S3's limit on keys per DeleteObjects */

/* The <Error>s of a quiet DeleteObjects answer: the first becomes the error (rule 6). */
int
s3_delete_errors(const ObjStore *os, const HttpResponse *resp)
{
	const char *pos = (const char *) resp->body.data;
	const char *end = pos + resp->body.len;
	const char *e, *v;
	size_t elen, vlen;
	size_t nerr = 0, plen = strlen(os->prefix);
	Buf key = PV_BUF_INIT, code = PV_BUF_INIT, msg = PV_BUF_INIT;
	int rc = 0;

	while (pos != NULL && http_xml_next(&pos, end, "Error", &e, &elen))
	{
		const char *ep = e;

		if (nerr++ > 0)
			continue;
		if (http_xml_next(&ep, e + elen, "Key", &v, &vlen))
			http_xml_decode(&key, v, vlen);
		ep = e;
		if (http_xml_next(&ep, e + elen, "Code", &v, &vlen))
			http_xml_decode(&code, v, vlen);
		ep = e;
		if (http_xml_next(&ep, e + elen, "Message", &v, &vlen))
			http_xml_decode(&msg, v, vlen);
	}
	if (nerr > 0)
	{
		const char *k = buf_cstr(&key);
		char more[64] = "";

		if (key.len >= plen && strncmp(k, os->prefix, plen) == 0)
			k += plen;
		if (nerr > 1)
			snprintf(more, sizeof(more), " (and %zu more objects could not be deleted)", nerr - 1);
		rc = strcmp(buf_cstr(&code), "AccessDenied") == 0 ? PV_EAUTH : PV_ERROR;
		pv_error_set(rc, "cannot delete object '%s': %s: %s%s", k, buf_cstr(&code), buf_cstr(&msg), more);
	}
	buf_free(&key);
	buf_free(&code);
	buf_free(&msg);
	return rc;
}

/* One DeleteObjects request of n <= S3_DELETE_BATCH keys: 0, an error, or 1 when the store has none. */
static int
s3_delete_batch(S3Storage *s, const char *const *keys, size_t n)
{
	char *what = pv_asprintf("cannot delete %zu objects ('%s' first)", n, keys[0]);
	HttpHeaders h = {0};
	HttpResponse resp;
	Buf xml = PV_BUF_INIT;
	char code[128];
	int rc;

	http_response_init(&resp);
	buf_append_str(&xml, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++)
	{
		char *okey = objstore_okey(&s->os, keys[i]);

		buf_append_str(&xml, "<Object><Key>");
		http_xml_escape(&xml, okey);
		buf_append_str(&xml, "</Key></Object>");
		pv_free(okey);
	}
	buf_append_str(&xml, "</Delete>");
	http_headers_content_md5(&h, xml.data, xml.len);
	http_headers_add(&h, "Content-Type", "application/xml");
	if ((rc = s3_send(&s->os, &(ObjReq) {.method = "POST", .query = "delete", .headers = &h, .body = xml.data,
						  .body_len = xml.len, .what = what}, &resp)) < 0)
		goto done;
	http_response_error_code(&resp, code, sizeof(code));
	if (resp.status == 405 || (resp.status == 501 && strcmp(code, "NotImplemented") == 0))
	{
		if (!__atomic_exchange_n(&s->batch_refused, true, __ATOMIC_RELAXED))
			pv_log_detail("%s: bucket '%s' does not support DeleteObjects (HTTP %ld): deleting one object "
						  "at a time", s->os.type, s->os.container, resp.status);
		rc = 1;
		goto done;
	}
	if (!objstore_ok(&resp))
		rc = objstore_fail(&s->os, &resp, what, NULL, false);
	else
		rc = s3_delete_errors(&s->os, &resp);

done:
	buf_free(&xml);
	http_headers_free(&h);
	http_response_free(&resp);
	pv_free(what);
	return rc;
}

static int
s3_delete_many(void *driver, const char *const *keys, size_t n)
{
	S3Storage *s = driver;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i += S3_DELETE_BATCH)
	{
		size_t m = n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH;

		if (__atomic_load_n(&s->batch_refused, __ATOMIC_RELAXED) || (rc = s3_delete_batch(s, keys + i, m)) == 1)
		{
			/* rule 6: no batches here; one DELETE each, absent keys are fine */
			rc = 0;
			for (size_t j = i; j < i + m && rc == 0; j++)
				if ((rc = s3_delete(s, keys[j])) == PV_ENOTFOUND)
				{
					pv_error_clear();
					rc = 0;
				}
		}
	}
	return rc;
}

/* ---- creating the bucket ---- */

static int
s3_create(void *driver)
{
	S3Storage *s = driver;
	char *what = pv_asprintf("cannot open bucket '%s'", s->os.container);
	HttpResponse resp;
	Buf body = PV_BUF_INIT;
	char code[128];
	int rc;

	http_response_init(&resp);
	if ((rc = s3_send(&s->os, &(ObjReq) {.method = "GET", .query = "list-type=2&max-keys=1", .what = what},
					  &resp)) < 0)
		goto done;
	if (objstore_ok(&resp))
		goto done;
	if (!objstore_missing(&s->os, &resp))
	{
		rc = objstore_fail(&s->os, &resp, what, NULL, false);
		goto done;
	}
	pv_free(what);
	what = pv_asprintf("cannot create bucket '%s'", s->os.container);
	if (strcmp(s->region, "us-east-1") != 0 && strcmp(s->os.type, "s3") == 0)
		buf_printf(&body, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				   "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>", s->region);
	if ((rc = s3_send(&s->os, &(ObjReq) {.method = "PUT", .body = body.data, .body_len = body.len, .what = what},
					  &resp)) < 0)
		goto done;
	http_response_error_code(&resp, code, sizeof(code));
	if (!objstore_ok(&resp) && strcmp(code, "BucketAlreadyOwnedByYou") != 0)
	{
		rc = objstore_fail(&s->os, &resp, what, NULL, false);
		goto done;
	}
	pv_log_info("%s: created bucket '%s'", s->os.type, s->os.container);

done:
	buf_free(&body);
	http_response_free(&resp);
	pv_free(what);
	return rc;
}

/* ---- the driver ---- */

static const ObjDialect s3_dialect = {
	.setting = "s3",
	.container = "bucket",
	.missing_code = "NoSuchBucket",
	.auth_hint = "check the credentials: s3-key and s3-key-secret, or AWS_ACCESS_KEY_ID and "
		"AWS_SECRET_ACCESS_KEY (or the AWS_PROFILE in ~/.aws/credentials)",
	.notimpl_hint = "if this store does not support conditional writes, set s3-if-none-match = off",
	.range_header = "Range",
	.list_item = "Contents",
	.list_name = "Key",
	.list_size = "Size",
	.list_mtime = "LastModified",
	.list_query = s3_list_query,
	.list_next = s3_list_next,
	.send = s3_send,
};

static void
s3_free(void *driver)
{
	S3Storage *s = driver;

	objstore_fini(&s->os);
	pv_free(s->scheme);
	pv_free(s->host);
	pv_free(s->region);
	pv_free(s->access_key);
	pv_free_secret_str(s->secret_key);
	pv_free_secret_str(s->token);
	pv_free(s->storage_class);
	pv_free(s->sse);
	pv_free(s);
}

static const StorageOps s3_ops = {
	.name = "s3",
	OBJSTORE_OPS,
	.put = s3_put,
	.writer_open = s3_writer_open,
	.writer_commit = s3_writer_commit,
	.writer_abort = s3_writer_abort,
	.delete = s3_delete,
	.delete_many = s3_delete_many,
	.exists = objstore_exists,
	.create = s3_create,
	.free = s3_free,
};

/* ---- credentials file ---- */

typedef struct S3Profile
{
	const char *want;
	char *key;
	char *secret;
	char *token;
} S3Profile;

static int
s3_profile_handler(void *user, const char *section, const char *name, const char *value)
{
	S3Profile *p = user;
	char **slot = NULL;

	/* ~/.aws/credentials names sections "NAME"; ~/.aws/config "profile NAME". */
	if (strcmp(section, p->want) != 0 &&
		!(strncmp(section, "profile ", 8) == 0 && strcmp(section + 8, p->want) == 0))
		return 1;
	if (strcmp(name, "aws_access_key_id") == 0)
		slot = &p->key;
	else if (strcmp(name, "aws_secret_access_key") == 0)
		slot = &p->secret;
	else if (strcmp(name, "aws_session_token") == 0)
		slot = &p->token;
	if (slot != NULL)
	{
		pv_free_secret_str(*slot);
		*slot = pv_strdup(value);
	}
	return 1;
}

/* Credentials from the shared credentials file, if it has the profile. */
static void
s3_profile_read(S3Storage *s)
{
	const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *home = getenv("HOME");
	const char *profile = getenv("AWS_PROFILE");
	S3Profile p = {.want = profile && profile[0] ? profile : "default"};
	char *path = NULL;

	if (file != NULL && file[0] != '\0')
		path = pv_strdup(file);
	else if (home != NULL && home[0] != '\0')
		path = pv_asprintf("%s/.aws/credentials", home);
	if (path == NULL)
		return;
	if (ini_parse(path, s3_profile_handler, &p) == 0 && p.key != NULL && p.secret != NULL)
	{
		s->access_key = p.key;
		s->secret_key = p.secret;
		s->token = p.token;
		p.key = p.secret = p.token = NULL;
		pv_log_debug("%s: credentials from profile '%s' of '%s'", s->os.type, p.want, path);
	}
	pv_free(p.key);
	pv_free_secret_str(p.secret);
	pv_free_secret_str(p.token);
	pv_free(path);
}

/* ---- opening ---- */

/* s3-endpoint: "https://host[:port]" (a path is not allowed), or a bare host (https). */
static int
s3_endpoint_parse(S3Storage *s, const char *ep)
{
	const char *host = ep;
	size_t hlen;

	if (strncasecmp(ep, "https://", 8) == 0)
	{
		s->scheme = pv_strdup("https");
		host += 8;
	}
	else if (strncasecmp(ep, "http://", 7) == 0)
	{
		s->scheme = pv_strdup("http");
		host += 7;
	}
	else
		s->scheme = pv_strdup("https");
	hlen = strcspn(host, "/");
	if (hlen == 0 || (host[hlen] == '/' && host[hlen + 1] != '\0'))
	{
		pv_error_set(PV_ECONFIG, "invalid s3-endpoint '%s': expected https://host[:port]", ep);
		pv_error_hint("the bucket goes in the repository URL (s3://bucket/prefix), not in the endpoint");
		return PV_ECONFIG;
	}
	s->host = pv_strndup(host, hlen);
	return 0;
}

/* A host name under .localhost (RFC 6761: always loopback), without its port. */
static bool
s3_host_is_localhost(const char *host, size_t *out_len)
{
	size_t len = strcspn(host, ":");

	*out_len = len;
	return (len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
		(len > 10 && strncasecmp(host + len - 10, ".localhost", 10) == 0);
}

static int
s3_settings(S3Storage *s, const StorageOpenOpts *opts, bool gs)
{
	const char *ep = storage_opts_get(opts, "s3-endpoint", "AWS_ENDPOINT_URL_S3");
	const char *style;
	const char *key, *secret;
	uint64_t part;
	int rc;

	if (ep == NULL)
		ep = storage_opts_get(NULL, NULL, "AWS_ENDPOINT_URL");
	s->region = pv_strdup(storage_opts_get(opts, "s3-region", "AWS_REGION") ?:
						  storage_opts_get(NULL, NULL, "AWS_DEFAULT_REGION") ?: (gs ? "auto" : "us-east-1"));
	if (ep != NULL)
		rc = s3_endpoint_parse(s, ep);
	else if (gs)
		rc = s3_endpoint_parse(s, "https://storage.googleapis.com");
	else
	{
		char *def = pv_asprintf("https://s3.%s.amazonaws.com", s->region);

		rc = s3_endpoint_parse(s, def);
		pv_free(def);
	}
	if (rc < 0)
		return rc;

	/* auto: virtual-hosted on AWS itself (path style is deprecated there), path style elsewhere. */
	style = storage_opts_get(opts, "s3-bucket-style", NULL);
	if (style == NULL || strcmp(style, "auto") == 0)
		s->virtual_host = ep == NULL && !gs && strchr(s->os.container, '.') == NULL;
	else if (strcmp(style, "virtual") == 0)
		s->virtual_host = true;
	else if (strcmp(style, "path") == 0)
		s->virtual_host = false;
	else
		return pv_error_set(PV_ECONFIG, "invalid value '%s' for 's3-bucket-style': expected path, virtual or auto",
							style);

	key = storage_opts_get(opts, "s3-key", NULL);
	secret = storage_opts_get(opts, "s3-key-secret", NULL);
	if (key == NULL && secret == NULL)
	{
		/* A pair comes from one place: never a key from the file and a secret from the environment. */
		key = storage_opts_get(NULL, NULL, "AWS_ACCESS_KEY_ID");
		secret = storage_opts_get(NULL, NULL, "AWS_SECRET_ACCESS_KEY");
		if (key != NULL && secret != NULL)
		{
			s->access_key = pv_strdup(key);
			s->secret_key = pv_strdup(secret);
			if ((key = storage_opts_get(NULL, NULL, "AWS_SESSION_TOKEN")) != NULL)
				s->token = pv_strdup(key);
		}
		else
			s3_profile_read(s);
	}
	else if (key != NULL && secret != NULL)
	{
		s->access_key = pv_strdup(key);
		s->secret_key = pv_strdup(secret);
		if ((key = storage_opts_get(opts, "s3-token", NULL)) != NULL)
			s->token = pv_strdup(key);
	}
	if (s->access_key == NULL || s->secret_key == NULL)
	{
		pv_error_set(PV_ECONFIG, "no credentials for '%s://%s'", s->os.type, s->os.container);
		pv_error_hint("set s3-key and s3-key-secret in the repository's section, or AWS_ACCESS_KEY_ID and "
					  "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials (AWS_PROFILE)");
		return PV_ECONFIG;
	}

	if ((key = storage_opts_get(opts, "s3-storage-class", NULL)) != NULL)
		s->storage_class = pv_strdup(key);
	if ((key = storage_opts_get(opts, "s3-sse", NULL)) != NULL)
	{
		if (strcmp(key, "AES256") != 0 && strcmp(key, "aws:kms") != 0)
			return pv_error_set(PV_ECONFIG, "invalid value '%s' for 's3-sse': expected AES256 or aws:kms", key);
		s->sse = pv_strdup(key);
	}
	if ((rc = http_opt_size(&part, opts, "s3-part-size", 16 * S3_MIB, S3_PART_MIN, S3_PART_MAX)) < 0)
		return rc;
	s->part_size = (size_t) part;
	if ((rc = objstore_settings(&s->os, opts, 1000)) < 0)
		return rc;
	return http_opt_bool(&s->if_none_match, opts, "s3-if-none-match", true);
}

static int
s3_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts, bool gs)
{
	S3Storage *s = PV_NEW(S3Storage);
	char *resolve = NULL;
	size_t hlen;
	int rc;

	s->os.d = &s3_dialect;
	s->os.type = gs ? "gs" : "s3";
	if ((rc = objstore_url_parse(&s->os, rest, url)) < 0 || (rc = s3_settings(s, opts, gs)) < 0)
		goto done;
	/* Names under .localhost mean loopback (RFC 6761), also for virtual-hosted bucket names. */
	if (s->virtual_host && s3_host_is_localhost(s->host, &hlen))
	{
		const char *port = s->host[hlen] == ':' ? s->host + hlen + 1 : (strcmp(s->scheme, "https") ? "80" : "443");

		resolve = pv_asprintf("%s.%.*s:%s:127.0.0.1", s->os.container, (int) hlen, s->host, port);
	}
	if ((rc = objstore_http_open(&s->os, opts, url, "AWS_CA_BUNDLE", resolve)) < 0)
		goto done;
	*out = storage_new(&s3_ops, s, url);
	s = NULL;

done:
	if (s != NULL)
		s3_free(s);
	pv_free(resolve);
	return rc;
}

int
storage_s3_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts)
{
	return s3_open(out, rest, url, opts, false);
}

int
storage_gs_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts)
{
	return s3_open(out, rest, url, opts, true);
}
