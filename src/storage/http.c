/*
 * http.c: requests with connection reuse, timeouts and retries, on libcurl
 * (see http.h for the contract).
 *
 * Ownership: an HttpClient owns its curl handles (a free list under a
 * mutex: a request takes one and gives it back, so at most one handle per
 * concurrent request exists and each keeps its connections warm).  A
 * request's header list (curl_slist) lives for one attempt.
 *
 * Invariants:
 *   1. Every attempt starts from a clean handle (curl_easy_reset keeps the
 *      connection cache, drops every option), a fresh copy of the fixed
 *      headers, an empty response and the sink at its original length, so
 *      nothing of a failed attempt leaks into the next.
 *   2. Only this file sleeps between attempts, and the total number of
 *      attempts is 1 + retries, whatever fails.
 *   3. No secret reaches a log line or a message: URLs are redacted before
 *      logging, header values are never logged, and messages name the
 *      caller's `what` instead of the URL.
 */
#include "storage/http.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "storage/storage_driver.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct HttpClient
{
	HttpClientOpts opts;		/* strings below are owned copies */
	char *service;
	char *ca_file;
	char *resolve;
	pthread_mutex_t lock;
	CURL **idle;				/* handles not in use */
	size_t nidle;
	size_t capidle;
	uint64_t nrequests;			/* atomic */
	uint64_t nretries;			/* atomic */
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc;

static void
http_global_init(void)
{
	http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
http_client_new(HttpClient **out, const HttpClientOpts *opts)
{
	HttpClient *c;

	pthread_once(&http_once, http_global_init);
	if (http_global_rc != CURLE_OK)	/* uncovered: only without memory or TLS library */
		return pv_error_set(PV_ERROR, "cannot initialise libcurl: %s", curl_easy_strerror(http_global_rc));
	c = PV_NEW(HttpClient);
	c->opts = *opts;
	c->service = pv_strdup(opts->service ? opts->service : "http");
	c->ca_file = opts->ca_file ? pv_strdup(opts->ca_file) : NULL;
	c->resolve = opts->resolve ? pv_strdup(opts->resolve) : NULL;
	c->opts.service = c->service;
	c->opts.ca_file = c->ca_file;
	c->opts.resolve = c->resolve;
	if (c->opts.connect_timeout_ms <= 0)
		c->opts.connect_timeout_ms = 10000;
	if (c->opts.timeout_ms <= 0)
		c->opts.timeout_ms = 60000;
	if (c->opts.retries < 0)
		c->opts.retries = 4;
	if (c->opts.retry_base_ms <= 0)
		c->opts.retry_base_ms = 250;
	if (c->opts.retry_max_ms <= 0)
		c->opts.retry_max_ms = 20000;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void
http_client_free(HttpClient *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nidle; i++)
		curl_easy_cleanup(c->idle[i]);
	pv_free(c->idle);
	pthread_mutex_destroy(&c->lock);
	pv_free(c->service);
	pv_free(c->ca_file);
	pv_free(c->resolve);
	pv_free(c);
}

uint64_t
http_client_requests(const HttpClient *c)
{
	return __atomic_load_n(&c->nrequests, __ATOMIC_RELAXED);
}

uint64_t
http_client_retries(const HttpClient *c)
{
	return __atomic_load_n(&c->nretries, __ATOMIC_RELAXED);
}

static CURL *
http_handle_take(HttpClient *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->nidle > 0)
		h = c->idle[--c->nidle];
	pthread_mutex_unlock(&c->lock);
	if (h == NULL)
	{
		h = curl_easy_init();
		if (h == NULL)			/* uncovered: out of memory */
		{
			fprintf(stderr, "pgvault: out of memory (curl_easy_init)\n");
			abort();
		}
	}
	else
		curl_easy_reset(h);
	return h;
}

static void
http_handle_give(HttpClient *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->nidle == c->capidle)
	{
		c->capidle = c->capidle ? c->capidle * 2 : 8;
		c->idle = pv_realloc(c->idle, c->capidle * sizeof(*c->idle));
	}
	c->idle[c->nidle++] = h;
	pthread_mutex_unlock(&c->lock);
}

/* ---- headers ---- */

void
http_headers_add(HttpHeaders *h, const char *name, const char *fmt, ...)
{
	Buf line = PV_BUF_INIT;
	va_list ap;

	buf_printf(&line, "%s: ", name);
	va_start(ap, fmt);
	buf_vprintf(&line, fmt, ap);
	va_end(ap);
	if (h->n == h->cap)
	{
		h->cap = h->cap ? h->cap * 2 : 16;
		h->lines = pv_realloc(h->lines, h->cap * sizeof(*h->lines));
	}
	h->lines[h->n++] = buf_detach(&line);
}

static void
http_headers_add_raw(HttpHeaders *h, const char *line, size_t len)
{
	if (h->n == h->cap)
	{
		h->cap = h->cap ? h->cap * 2 : 16;
		h->lines = pv_realloc(h->lines, h->cap * sizeof(*h->lines));
	}
	h->lines[h->n++] = pv_strndup(line, len);
}

const char *
http_headers_get(const HttpHeaders *h, const char *name, size_t *out_len)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < h->n; i++)
	{
		const char *l = h->lines[i];
		const char *v;
		size_t vlen;

		if (strncasecmp(l, name, nlen) != 0 || l[nlen] != ':')
			continue;
		v = l + nlen + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		vlen = strlen(v);
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t' || v[vlen - 1] == '\r' ||
							v[vlen - 1] == '\n'))
			vlen--;
		if (out_len != NULL)
			*out_len = vlen;
		return v;
	}
	return NULL;
}

void
http_headers_reset(HttpHeaders *h)
{
	for (size_t i = 0; i < h->n; i++)
		pv_free_secret_str(h->lines[i]);	/* signature and key headers live here */
	h->n = 0;
}

void
http_headers_free(HttpHeaders *h)
{
	http_headers_reset(h);
	pv_free(h->lines);
	h->lines = NULL;
	h->cap = 0;
}

void
http_response_init(HttpResponse *r)
{
	memset(r, 0, sizeof(*r));
}

void
http_response_free(HttpResponse *r)
{
	buf_free(&r->body);
	http_headers_free(&r->headers);
	r->status = 0;
}

char *
http_response_header_dup(const HttpResponse *r, const char *name)
{
	size_t len;
	const char *v = http_headers_get(&r->headers, name, &len);

	return v ? pv_strndup(v, len) : NULL;
}

/* ---- one attempt ---- */

typedef struct HttpAttempt
{
	CURL *h;
	const HttpRequest *req;
	HttpResponse *resp;
	size_t sent;				/* request body bytes handed to curl */
} HttpAttempt;

static size_t
http_on_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpAttempt *a = userdata;
	size_t want = size * nmemb;
	size_t left = a->req->body_len - a->sent;
	size_t n = want < left ? want : left;

	if (n > 0)
		memcpy(ptr, (const char *) a->req->body + a->sent, n);
	a->sent += n;
	return n;
}

/* A retried upload that curl rewinds (after a redirect or auth) starts over. */
static int
http_on_seek(void *userdata, curl_off_t offset, int origin)
{
	HttpAttempt *a = userdata;

	if (origin != SEEK_SET || offset < 0 || (size_t) offset > a->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	a->sent = (size_t) offset;
	return CURL_SEEKFUNC_OK;
}

static size_t
http_on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpAttempt *a = userdata;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300 && a->req->sink != NULL)
		buf_append(a->req->sink, ptr, n);
	else if (status >= 200 && status < 300)
		buf_append(&a->resp->body, ptr, n);
	else if (a->resp->body.len < 64 * 1024)	/* error documents are small; never hoard a wrong body */
		buf_append(&a->resp->body, ptr, n);
	return n;
}

static size_t
http_on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpAttempt *a = userdata;
	size_t n = size * nmemb;
	size_t len = n;

	while (len > 0 && (ptr[len - 1] == '\r' || ptr[len - 1] == '\n'))
		len--;
	if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
		http_headers_reset(&a->resp->headers);	/* a new response (after 100 Continue): start over */
	else if (len > 0 && memchr(ptr, ':', len) != NULL)
		http_headers_add_raw(&a->resp->headers, ptr, len);
	return n;
}

/* Mask the values of query parameters that are credentials, for logging. */
static char *
http_url_redact(const char *url)
{
	static const char *const secret[] = {"sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token"};
	const char *q = strchr(url, '?');
	Buf out = PV_BUF_INIT;

	if (q == NULL)
		return pv_strdup(url);
	buf_append(&out, url, (size_t) (q - url) + 1);
	for (const char *p = q + 1; *p != '\0';)
	{
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		bool masked = false;

		for (size_t i = 0; eq != NULL && i < PV_ARRAY_LEN(secret); i++)
			if ((size_t) (eq - p) == strlen(secret[i]) && strncasecmp(p, secret[i], strlen(secret[i])) == 0)
				masked = true;
		if (masked)
		{
			buf_append(&out, p, (size_t) (eq - p) + 1);
			buf_append_str(&out, "***");
		}
		else
			buf_append(&out, p, plen);
		if (end == NULL)
			break;
		buf_append_byte(&out, '&');
		p = end + 1;
	}
	return buf_detach(&out);
}

static void
http_setup(HttpClient *c, HttpAttempt *a, struct curl_slist *hdrs, struct curl_slist *resolve, char *errbuf)
{
	CURL *h = a->h;
	const HttpRequest *req = a->req;
	long stall = (long) ((c->opts.timeout_ms + 999) / 1000);

	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) c->opts.connect_timeout_ms);
	/* A stall, not a total: a 64 MiB part on a slow link may take long, but must keep moving. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall < 1 ? 1L : stall);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->opts.insecure)
	{
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (resolve != NULL)
		curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);

	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET") == 0)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else if (strcmp(req->method, "PUT") == 0)
	{
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, http_on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, a);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, http_on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, a);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) req->body_len);
	}
	else if (strcmp(req->method, "POST") == 0)
	{
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *) req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	}
	else
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
}

/* Is a transport failure worth another attempt? */
static bool
http_curl_retryable(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:	/* a reset during the handshake */
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_READ_ERROR:
		case CURLE_WEIRD_SERVER_REPLY:	/* a connection cut inside the status line */
			return true;
		default:
			return false;
	}
}

static bool
http_status_retryable(const HttpResponse *resp)
{
	long status = resp->status;
	char code[64];

	if (status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504)
		return true;
	if (status != 400)
		return false;
	/* The body was damaged on the way (the service checked its digest): send it again. */
	http_response_error_code(resp, code, sizeof(code));
	if (strcmp(code, "Md5Mismatch") == 0 || strcmp(code, "BadDigest") == 0 ||
		strcmp(code, "XAmzContentSHA256Mismatch") == 0 || strcmp(code, "RequestTimeout") == 0)
		return true;
	/* azurite says it as InvalidOperation "Provided contentMD5 doesn't match." */
	if (strcmp(code, "InvalidOperation") == 0 && resp->body.data != NULL)
	{
		const char *body = (const char *) resp->body.data;

		return strcasestr(body, "md5") != NULL && strcasestr(body, "match") != NULL;
	}
	return false;
}

static bool
http_curl_tls_problem(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
		rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_CRL_BADFILE;
}

/* A random number in [0, n) for jitter; quality does not matter, thread safety does. */
static uint64_t
http_jitter(uint64_t n)
{
	static __thread uint64_t x;

	if (n == 0)
		return 0;
	if (x == 0)
		x = ((uint64_t) time(NULL) << 20) ^ (uint64_t) (uintptr_t) &x ^ (uint64_t) pthread_self() ^ 1;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	return (x * 0x2545F4914F6CDD1Dull) % n;
}

/* How long to wait before attempt number `attempt` (1 = the first retry). */
static int64_t
http_backoff_ms(const HttpClient *c, int attempt, const HttpResponse *resp)
{
	int64_t ceil = c->opts.retry_base_ms;
	const char *ra = http_headers_get(&resp->headers, "Retry-After", NULL);

	for (int i = 1; i < attempt && ceil < c->opts.retry_max_ms; i++)
		ceil *= 2;
	if (ceil > c->opts.retry_max_ms)
		ceil = c->opts.retry_max_ms;
	/* Half fixed, half random: spreads a herd of workers, yet always waits. */
	ceil = ceil / 2 + (int64_t) http_jitter((uint64_t) (ceil / 2 + 1));
	if (ra != NULL && ra[0] >= '0' && ra[0] <= '9')
	{
		int64_t want = strtoll(ra, NULL, 10) * 1000;

		if (want > ceil)
			ceil = want < c->opts.retry_max_ms ? want : c->opts.retry_max_ms;
	}
	return ceil;
}

static void
http_sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* "HTTP 503 SlowDown: Please reduce your request rate" into out. */
static void
http_describe(Buf *out, const HttpResponse *resp)
{
	char code[128];
	const char *pos = (const char *) resp->body.data;
	const char *end = pos ? pos + resp->body.len : NULL;
	const char *msg;
	size_t msglen;

	http_response_error_code(resp, code, sizeof(code));
	buf_printf(out, "HTTP %ld", resp->status);
	if (code[0] != '\0')
		buf_printf(out, " %s", code);
	if (pos != NULL && http_xml_next(&pos, end, "Message", &msg, &msglen))
	{
		Buf text = PV_BUF_INIT;
		const char *nl;

		http_xml_decode(&text, msg, msglen);
		/* Azure appends "\nRequestId:...\nTime:...": one line is enough. */
		nl = memchr(text.data, '\n', text.len);
		buf_printf(out, ": %.*s", (int) (nl ? (size_t) (nl - (const char *) text.data) : text.len),
				   buf_cstr(&text));
		buf_free(&text);
	}
	else if (code[0] == '\0')
	{
		const char *reason = http_headers_get(&resp->headers, "x-ms-error-message", NULL);

		if (reason != NULL)
			buf_printf(out, ": %s", reason);
	}
}

void
http_response_error_code(const HttpResponse *resp, char *out, size_t outsz)
{
	const char *pos = (const char *) resp->body.data;
	const char *v;
	size_t len;

	out[0] = '\0';
	if (pos != NULL && http_xml_next(&pos, pos + resp->body.len, "Code", &v, &len))
	{
		Buf text = PV_BUF_INIT;

		http_xml_decode(&text, v, len);
		snprintf(out, outsz, "%s", buf_cstr(&text));
		buf_free(&text);
		return;
	}
	if ((v = http_headers_get(&resp->headers, "x-ms-error-code", &len)) != NULL ||
		(v = http_headers_get(&resp->headers, "x-amz-error-code", &len)) != NULL)
		snprintf(out, outsz, "%.*s", (int) len, v);
}

int
http_response_error(const HttpResponse *resp, int code, const char *what)
{
	Buf d = PV_BUF_INIT;

	http_describe(&d, resp);
	pv_error_set(code, "%s: %s", what, buf_cstr(&d));
	buf_free(&d);
	return code;
}

/* Build the attempt's header list: fixed headers, the signer's, and our own. */
static int
http_headers_build(struct curl_slist **out, HttpHeaders *all, const HttpRequest *req)
{
	struct curl_slist *list = NULL;
	int rc;

	http_headers_reset(all);
	for (size_t i = 0; req->headers != NULL && i < req->headers->n; i++)
		http_headers_add_raw(all, req->headers->lines[i], strlen(req->headers->lines[i]));
	if (req->sign != NULL && (rc = req->sign(all, req, req->payload)) < 0)
		return rc;
	/* No "Expect: 100-continue" round trip; no form content type on POST. */
	http_headers_add(all, "Expect", "%s", "");
	if (strcmp(req->method, "POST") == 0 && http_headers_get(all, "Content-Type", NULL) == NULL)
		http_headers_add(all, "Content-Type", "%s", "");
	for (size_t i = 0; i < all->n; i++)
	{
		/* "Name: " with an empty value must be sent as "Name;" to curl to go out empty. */
		size_t len = strlen(all->lines[i]);
		struct curl_slist *next;

		if (len >= 2 && all->lines[i][len - 1] == ' ' && all->lines[i][len - 2] == ':')
		{
			bool ours = strncasecmp(all->lines[i], "Expect:", 7) == 0 ||
				strncasecmp(all->lines[i], "Content-Type:", 13) == 0;

			if (ours)
				all->lines[i][len - 1] = '\0';	/* "Expect:" removes the header */
			else
			{
				all->lines[i][len - 2] = ';';	/* "Name;" sends it empty */
				all->lines[i][len - 1] = '\0';
			}
		}
		next = curl_slist_append(list, all->lines[i]);
		if (next == NULL)		/* uncovered: out of memory */
		{
			fprintf(stderr, "pgvault: out of memory (curl_slist_append)\n");
			abort();
		}
		list = next;
	}
	*out = list;
	return 0;
}

int
http_request(HttpClient *c, const HttpRequest *req, HttpResponse *resp)
{
	size_t sink_len = req->sink ? req->sink->len : 0;
	const char *what = req->what ? req->what : req->method;
	struct curl_slist *resolve = NULL;
	HttpHeaders all = {0};
	Buf last = PV_BUF_INIT;		/* the last failure, for the final message */
	char *logurl = http_url_redact(req->url);
	int attempts = 1 + c->opts.retries;
	int rc = 0;

	if (c->resolve != NULL)
		resolve = curl_slist_append(NULL, c->resolve);

	for (int attempt = 0; attempt < attempts; attempt++)
	{
		char errbuf[CURL_ERROR_SIZE] = "";
		HttpAttempt a = {.req = req, .resp = resp};
		struct curl_slist *hdrs = NULL;
		int64_t t0 = pv_time_monotonic_ms();
		CURLcode crc;
		bool retry = false;

		if (attempt > 0)
		{
			int64_t ms = http_backoff_ms(c, attempt, resp);

			__atomic_add_fetch(&c->nretries, 1, __ATOMIC_RELAXED);
			pv_log_detail("%s: %s: %s; retry %d of %d in %" PRId64 " ms", c->service, what, buf_cstr(&last),
						  attempt, attempts - 1, ms);
			http_sleep_ms(ms);
		}
		/* Invariant 1: nothing of an earlier attempt survives. */
		http_response_free(resp);
		if (req->sink != NULL && req->sink->len > sink_len)
		{
			req->sink->len = sink_len;
			req->sink->data[sink_len] = '\0';
		}
		if ((rc = http_headers_build(&hdrs, &all, req)) < 0)
			goto done;
		a.h = http_handle_take(c);
		http_setup(c, &a, hdrs, resolve, errbuf);
		__atomic_add_fetch(&c->nrequests, 1, __ATOMIC_RELAXED);
		crc = curl_easy_perform(a.h);
		if (crc == CURLE_OK)
			curl_easy_getinfo(a.h, CURLINFO_RESPONSE_CODE, &resp->status);
		http_handle_give(c, a.h);
		curl_slist_free_all(hdrs);
		pv_log_debug("%s: %s %s -> %ld (%" PRId64 " ms%s%s)", c->service, req->method, logurl, resp->status,
					 pv_time_monotonic_ms() - t0, crc != CURLE_OK ? ", " : "",
					 crc != CURLE_OK ? curl_easy_strerror(crc) : "");

		buf_reset(&last);
		if (crc != CURLE_OK)
		{
			buf_append_str(&last, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(crc));
			if (http_curl_tls_problem(crc))
			{
				rc = pv_error_set(PV_EAUTH, "%s: TLS: %s", what, buf_cstr(&last));
				pv_error_hint("give the repository's CA file option (s3-ca-file, azure-ca-file) the "
							  "certificate of the CA that signed the endpoint's certificate");
				goto done;
			}
			if (!http_curl_retryable(crc))
			{
				rc = pv_error_set(PV_ERROR, "%s: %s", what, buf_cstr(&last));
				goto done;
			}
			resp->status = 0;
			retry = true;
		}
		else if (http_status_retryable(resp))
		{
			http_describe(&last, resp);
			retry = true;
		}
		else if (resp->status >= 200 && resp->status < 300 && req->check != NULL)
		{
			rc = req->check(resp, req->payload);
			if (rc == PV_ERETRY)
			{
				buf_append_str(&last, pv_error_msg());
				retry = true;
			}
			else if (rc < 0)
				goto done;
		}
		if (!retry)
		{
			rc = 0;
			goto done;
		}
	}
	rc = pv_error_set(PV_ERETRY, "%s: %s (gave up after %d attempts)", what, buf_cstr(&last), attempts);

done:
	if (rc < 0 && req->sink != NULL && req->sink->len > sink_len)
	{
		req->sink->len = sink_len;
		req->sink->data[sink_len] = '\0';
	}
	curl_slist_free_all(resolve);
	http_headers_free(&all);
	buf_free(&last);
	pv_free(logurl);
	return rc;
}

/* ---- XML ---- */

bool
http_xml_next(const char **pos, const char *end, const char *tag, const char **out, size_t *out_len)
{
	size_t tlen = strlen(tag);
	const char *p = *pos;

	while (p < end)
	{
		const char *lt = memchr(p, '<', (size_t) (end - p));
		const char *gt;
		const char *close;

		if (lt == NULL || (size_t) (end - lt) < tlen + 2)
			return false;
		p = lt + 1;
		if (strncmp(p, tag, tlen) != 0 || (p[tlen] != '>' && p[tlen] != ' ' && p[tlen] != '/' &&
										   p[tlen] != '\t' && p[tlen] != '\n' && p[tlen] != '\r'))
			continue;
		gt = memchr(p, '>', (size_t) (end - p));
		if (gt == NULL)
			return false;
		if (gt[-1] == '/')		/* <tag/> */
		{
			*out = gt + 1;
			*out_len = 0;
			*pos = gt + 1;
			return true;
		}
		/* The matching end tag; our documents do not nest an element in itself. */
		for (close = gt + 1; close < end; close++)
		{
			close = memchr(close, '<', (size_t) (end - close));
			if (close == NULL)
				return false;
			if ((size_t) (end - close) >= tlen + 3 && close[1] == '/' && strncmp(close + 2, tag, tlen) == 0 &&
				close[2 + tlen] == '>')
				break;
		}
		if (close >= end)
			return false;
		*out = gt + 1;
		*out_len = (size_t) (close - (gt + 1));
		*pos = close + tlen + 3;
		return true;
	}
	return false;
}

/* Append code point cp as UTF-8. */
static void
http_utf8_append(Buf *out, unsigned long cp)
{
	if (cp < 0x80)
		buf_append_byte(out, (unsigned char) cp);
	else if (cp < 0x800)
	{
		buf_append_byte(out, (unsigned char) (0xC0 | (cp >> 6)));
		buf_append_byte(out, (unsigned char) (0x80 | (cp & 0x3F)));
	}
	else if (cp < 0x10000)
	{
		buf_append_byte(out, (unsigned char) (0xE0 | (cp >> 12)));
		buf_append_byte(out, (unsigned char) (0x80 | ((cp >> 6) & 0x3F)));
		buf_append_byte(out, (unsigned char) (0x80 | (cp & 0x3F)));
	}
	else
	{
		buf_append_byte(out, (unsigned char) (0xF0 | (cp >> 18)));
		buf_append_byte(out, (unsigned char) (0x80 | ((cp >> 12) & 0x3F)));
		buf_append_byte(out, (unsigned char) (0x80 | ((cp >> 6) & 0x3F)));
		buf_append_byte(out, (unsigned char) (0x80 | (cp & 0x3F)));
	}
}

void
http_xml_decode(Buf *out, const char *text, size_t len)
{
	static const struct
	{
		const char *name;
		char c;
	} ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};

	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++)
	{
		bool done = false;

		if (text[i] != '&')
		{
			buf_append_byte(out, (unsigned char) text[i]);
			continue;
		}
		for (size_t e = 0; e < PV_ARRAY_LEN(ents) && !done; e++)
		{
			size_t elen = strlen(ents[e].name);

			if (len - i - 1 >= elen && strncmp(text + i + 1, ents[e].name, elen) == 0)
			{
				buf_append_byte(out, (unsigned char) ents[e].c);
				i += elen;
				done = true;
			}
		}
		if (!done && i + 2 < len && text[i + 1] == '#')
		{
			const char *semi = memchr(text + i, ';', len - i);
			bool hex = text[i + 2] == 'x' || text[i + 2] == 'X';
			char *endp = NULL;
			unsigned long cp;

			if (semi != NULL)
			{
				cp = strtoul(text + i + (hex ? 3 : 2), &endp, hex ? 16 : 10);
				if (endp == semi && cp > 0 && cp <= 0x10FFFF)
				{
					http_utf8_append(out, cp);
					i = (size_t) (semi - text);
					done = true;
				}
			}
		}
		if (!done)
			buf_append_byte(out, '&');
	}
}

void
http_base64(Buf *out, const unsigned char *data, size_t len)
{
	size_t n = 4 * ((len + 2) / 3);

	buf_reserve(out, n + 1);
	EVP_EncodeBlock(out->data + out->len, data, (int) len);
	out->len += n;
	out->data[out->len] = '\0';
}

void
http_headers_content_md5(HttpHeaders *h, const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	Buf b64 = PV_BUF_INIT;

	EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
	http_base64(&b64, md, mdlen);
	http_headers_add(h, "Content-MD5", "%s", buf_cstr(&b64));
	buf_free(&b64);
}

void
http_xml_escape(Buf *out, const char *s)
{
	for (; *s != '\0'; s++)
	{
		switch (*s)
		{
			case '&':
				buf_append_str(out, "&amp;");
				break;
			case '<':
				buf_append_str(out, "&lt;");
				break;
			case '>':
				buf_append_str(out, "&gt;");
				break;
			case '"':
				buf_append_str(out, "&quot;");
				break;
			case '\'':
				buf_append_str(out, "&apos;");
				break;
			default:
				buf_append_byte(out, (unsigned char) *s);
		}
	}
}

int64_t
http_date_parse(const char *text)
{
	int y, mo, d, h, mi, s;
	time_t t;

	if (text == NULL)
		return 0;
	if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) == 6)
		return pv_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	t = curl_getdate(text, NULL);
	return t < 0 ? 0 : (int64_t) t;
}

/* ---- driver settings ---- */

int
http_opt_bool(bool *out, const StorageOpenOpts *o, const char *key, bool def)
{
	const char *v = storage_opts_get(o, key, NULL);

	*out = def;
	if (v == NULL)
		return 0;
	if (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
		strcmp(v, "1") == 0)
		*out = true;
	else if (strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ||
			 strcmp(v, "0") == 0)
		*out = false;
	else
		return pv_error_set(PV_ECONFIG, "invalid value '%s' for '%s': expected on or off", v, key);
	return 0;
}

int
http_opt_size(uint64_t *out, const StorageOpenOpts *o, const char *key, uint64_t def, uint64_t min, uint64_t max)
{
	const char *v = storage_opts_get(o, key, NULL);
	char a[32], b[32];

	*out = def;
	if (v == NULL)
		return 0;
	if (pv_size_parse(out, v) < 0)
		return pv_error_prefix(PV_ECONFIG, "invalid value for '%s'", key);
	if (*out < min || *out > max)
		return pv_error_set(PV_ECONFIG, "invalid value '%s' for '%s': must be between %s and %s", v, key,
							pv_size_format(a, sizeof(a), min), pv_size_format(b, sizeof(b), max));
	return 0;
}

int
http_opt_int(int64_t *out, const StorageOpenOpts *o, const char *key, int64_t def, int64_t min, int64_t max)
{
	const char *v = storage_opts_get(o, key, NULL);
	char *end = NULL;

	*out = def;
	if (v == NULL)
		return 0;
	errno = 0;
	*out = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || *out < min || *out > max)
		return pv_error_set(PV_ECONFIG, "invalid value '%s' for '%s': expected an integer from %" PRId64
							" to %" PRId64, v, key, min, max);
	return 0;
}

int
http_client_opts_read(HttpClientOpts *out, const StorageOpenOpts *o, const char *service, const char *ca_env)
{
	char key[64];
	const char *v;
	int64_t n;
	bool verify;
	int rc;

	memset(out, 0, sizeof(*out));
	out->service = service;
	if ((rc = http_opt_int(&n, o, "http-retries", 4, 0, 100)) < 0)
		return rc;
	out->retries = (int) n;
	if ((v = storage_opts_get(o, "http-timeout", NULL)) != NULL)
	{
		if (pv_duration_parse_ms(&out->timeout_ms, v) < 0 || out->timeout_ms < 1000)
			return pv_error_set(PV_ECONFIG, "invalid value '%s' for 'http-timeout': expected a duration of "
								"at least 1s", v);
	}
	snprintf(key, sizeof(key), "%s-ca-file", service);
	out->ca_file = storage_opts_get(o, key, ca_env);
	if (out->ca_file == NULL)
		out->ca_file = storage_opts_get(NULL, NULL, "SSL_CERT_FILE");
	snprintf(key, sizeof(key), "%s-verify-tls", service);
	if ((rc = http_opt_bool(&verify, o, key, true)) < 0)
		return rc;
	out->insecure = !verify;
	return 0;
}
