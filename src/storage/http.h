/*
 * http.h: the HTTP layer under the object-store drivers (s3.c, azure.c),
 * on libcurl.
 *
 * What it does for every driver:
 *   - connection reuse: an HttpClient keeps a pool of curl handles; a
 *     request borrows one (each thread in practice keeps getting a warm
 *     one), so TLS sessions and keep-alive connections are reused;
 *   - timeouts: connect timeout, and a stall timeout (a transfer slower
 *     than 1 byte/s for `timeout_ms` is abandoned) instead of a total
 *     timeout that a big part on a slow link would hit;
 *   - retries, the only ones in pgvault (style.md): transport failures
 *     (refused, reset, timed out, truncated), HTTP 408, 429, 500, 502,
 *     503 (SlowDown), 504, and 400 answers saying the body arrived damaged
 *     (Md5Mismatch, BadDigest, XAmzContentSHA256Mismatch) or too slowly
 *     (RequestTimeout) are retried up to `retries` times with
 *     exponential backoff and full jitter (honouring Retry-After), a
 *     request body is re-sent from its start, a download target is put back
 *     to its old length, and the driver's sign callback runs again so
 *     signatures carry a fresh date;
 *   - errors in one line: "HTTP 403 SignatureDoesNotMatch: The request
 *     signature we calculated does not match ..." from the service's own
 *     XML <Code>/<Message> (S3 and Azure both use them) or its
 *     x-amz-/x-ms-error-code header when there is no body (HEAD);
 *   - secrets: request URLs are logged (debug) with signature query values
 *     (SAS sig, X-Amz-Signature, tokens) masked; headers never.
 *
 * A request that got any final HTTP answer returns 0 with the status in
 * the response: the driver decides what 404 or 412 means.  Only transport
 * failures and retryable statuses that outlast the retries become errors
 * here (PV_ERETRY: "... gave up after N attempts: <last problem>").
 * TLS problems (bad certificate, unknown CA) are not retried: PV_EAUTH
 * with a hint about the CA options.
 *
 * Thread safety: an HttpClient may be shared by any number of threads;
 * HttpHeaders and HttpResponse belong to one.  curl_global_init runs once
 * (pthread_once) on the first http_client_new.
 *
 * The small XML helpers at the end read the flat, well-known documents S3
 * and Azure answer with (listings, errors, upload ids); they are not a
 * general XML parser.
 */
#ifndef PV_STORAGE_HTTP_H
#define PV_STORAGE_HTTP_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HttpClient HttpClient;

typedef struct HttpClientOpts
{
	const char *service;		/* "s3", "azure": the start of messages */
	const char *ca_file;		/* PEM bundle; NULL: the system's */
	bool insecure;				/* no certificate or host name checks (loud at open) */
	int64_t connect_timeout_ms;	/* <= 0: 10 s */
	int64_t timeout_ms;			/* stall timeout, <= 0: 60 s */
	int retries;				/* extra attempts after the first; < 0: 4 */
	int64_t retry_base_ms;		/* first backoff ceiling, <= 0: 250 ms */
	int64_t retry_max_ms;		/* backoff ceiling, <= 0: 20 s */
	const char *resolve;		/* "host:port:addr" pinned like curl --resolve, or NULL */
} HttpClientOpts;

int http_client_new(HttpClient **out, const HttpClientOpts *opts);
void http_client_free(HttpClient *c);	/* NULL ok; no request may be running */

/* Requests sent and retries done so far (for tests and benchmarks). */
uint64_t http_client_requests(const HttpClient *c);
uint64_t http_client_retries(const HttpClient *c);

/* Header lines "Name: value", in order.  Zero-initialise; free with http_headers_free. */
typedef struct HttpHeaders
{
	char **lines;
	size_t n;
	size_t cap;
} HttpHeaders;

void http_headers_add(HttpHeaders *h, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Value of the first header called name (case-insensitive), blanks trimmed; lent; NULL if none. */
const char *http_headers_get(const HttpHeaders *h, const char *name, size_t *out_len);
void http_headers_reset(HttpHeaders *h);
void http_headers_free(HttpHeaders *h);

typedef struct HttpResponse
{
	long status;				/* 0 before an answer */
	Buf body;					/* bodies of non-2xx answers, and of 2xx ones without a sink */
	HttpHeaders headers;		/* response headers of the last attempt */
} HttpResponse;

void http_response_init(HttpResponse *r);
void http_response_free(HttpResponse *r);
/* A response header's value as a new string, or NULL. */
char *http_response_header_dup(const HttpResponse *r, const char *name);

typedef struct HttpRequest HttpRequest;

/*
 * Called before every attempt with that attempt's header list (already
 * holding req->headers): adds date and signature headers.  0 or an error.
 */
typedef int (*HttpSignFn) (HttpHeaders *headers, const HttpRequest *req, void *payload);

/*
 * Called after a 2xx answer; may return PV_ERETRY (message set) to retry
 * it (S3 answers some failed CompleteMultipartUpload calls with 200 and an
 * <Error> body) or another code to fail without retrying.
 */
typedef int (*HttpCheckFn) (const HttpResponse *resp, void *payload);

struct HttpRequest
{
	const char *method;			/* "GET" "HEAD" "PUT" "POST" "DELETE" */
	const char *url;			/* complete and encoded */
	const char *path;			/* the encoded path part of url, for signers */
	const char *query;			/* the query part of url without '?', or NULL */
	const HttpHeaders *headers;	/* fixed headers, or NULL */
	const void *body;			/* request body (lent), or NULL */
	size_t body_len;
	Buf *sink;					/* 2xx bodies are appended here (restored on retry), or NULL */
	HttpSignFn sign;
	HttpCheckFn check;
	void *payload;				/* for sign and check */
	const char *what;			/* "get object 'a/b'": the context of messages */
};

/* Send req (with retries); see the top of this file.  resp must be initialised. */
int http_request(HttpClient *c, const HttpRequest *req, HttpResponse *resp);

/*
 * Set an error from a final non-2xx answer and return code:
 *   "<what>: HTTP 403 SignatureDoesNotMatch: The request signature ..."
 * (service code and the first line of its message when present).
 */
int http_response_error(const HttpResponse *resp, int code, const char *what);

/* The service's error code of a response ("NoSuchKey", "BlobNotFound") into out; "" if none. */
void http_response_error_code(const HttpResponse *resp, char *out, size_t outsz);

/* ---- XML, just enough for S3 and Azure answers ---- */

/*
 * Find the next element <tag>...</tag> (or <tag/>) in [*pos, end): on
 * success *out and *out_len is its raw content and *pos moves past it; returns
 * false when there is none.  Attributes on the start tag are allowed.
 */
bool http_xml_next(const char **pos, const char *end, const char *tag, const char **out, size_t *out_len);

/* Append text with its XML entities (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;) decoded. */
void http_xml_decode(Buf *out, const char *text, size_t len);

/* Append s with & < > " ' escaped. */
void http_xml_escape(Buf *out, const char *s);

/* ---- body digests ---- */

/* Append base64 of data (with padding). */
void http_base64(Buf *out, const unsigned char *data, size_t len);

/*
 * Add "Content-MD5: <base64 of the MD5 of the body>": Azure checks it on
 * arrival; S3 requires it on DeleteObjects.
 */
void http_headers_content_md5(HttpHeaders *h, const void *data, size_t len);

/* Parse an HTTP date (RFC 1123 and relatives) or ISO 8601 "2026-11-22T10:00:00.000Z"; 0 if unparsable. */
int64_t http_date_parse(const char *text);

/* ---- driver settings (storage_opts_get, parsed; PV_ECONFIG naming the key) ---- */

struct StorageOpenOpts;
int http_opt_bool(bool *out, const struct StorageOpenOpts *o, const char *key, bool def);
int http_opt_size(uint64_t *out, const struct StorageOpenOpts *o, const char *key, uint64_t def,
				  uint64_t min, uint64_t max);
int http_opt_int(int64_t *out, const struct StorageOpenOpts *o, const char *key, int64_t def,
				 int64_t min, int64_t max);

/*
 * The settings every object-store driver shares: http-retries,
 * http-timeout, <service>-ca-file (else the env variables named, else
 * SSL_CERT_FILE), <service>-verify-tls.  Strings in out are lent from o.
 */
int http_client_opts_read(HttpClientOpts *out, const struct StorageOpenOpts *o, const char *service,
						  const char *ca_env);

#endif
