/*
 * azure.c: the Azure Blob Storage driver (see azure.h for URLs and settings).
 *
 * Object "k" of repository azure://container/pre is the block blob
 * "pre/k".  Requests go through http.c and carry Shared Key signatures
 * (computed on every attempt: x-ms-date changes) or a SAS token in the
 * query string.  What Azure does like every object store (stat, get,
 * ranged reads, listing, delete, error mapping, the writer's frame) is
 * objstore.c's, driven by az_dialect; signing, block ids and connection
 * strings are here.
 *
 * Durability and visibility rules:
 *   1. A blob becomes visible only whole: one Put Blob, or the Put Block
 *      List that commits a streamed one's blocks.  Uncommitted blocks are
 *      invisible and are discarded by the service (after a week) when no
 *      block list commits them: aborting a writer needs no request.
 *   2. A writer holds one block buffer of azure-block-size while filling,
 *      plus the blocks in flight (storage-upload-jobs) and one queued
 *      (upload.c, which both object-store drivers share).
 *   3. Block ids carry a random tag per writer, so two writers of one name
 *      never commit each other's blocks.
 *   4. STORAGE_PUT_NO_OVERWRITE sends "If-None-Match: *" on Put Blob or Put
 *      Block List: atomic; the service answers 409 or 412 when the blob
 *      exists.
 *   5. Every Put Blob and Put Block carries Content-MD5: a body damaged on
 *      the way is refused (Md5Mismatch) and sent again by http.c.
 */
#include "storage/azure.h"

#include "storage/objstore.h"
#include "storage/sigv4.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define AZ_VERSION "2021-12-02"
#define AZ_MIB (UINT64_C(1024) * 1024)
#define AZ_BLOCKS_MAX 50000

typedef struct AzStorage
{
	ObjStore os;				/* first (objstore.h): container, prefix, client */
	char *account;
	unsigned char *key;			/* decoded Shared Key (secret), or NULL */
	size_t keylen;
	char *sas;					/* SAS query without '?' (secret), or NULL */
	char *endpoint;				/* "https://host[:port][/path]", no trailing '/' */
	size_t block_size;
} AzStorage;

/* ---- base64 ---- */

/* Decode base64 text; PV_ECONFIG if it is not base64. */
static int
az_base64_decode(unsigned char **out, size_t *out_len, const char *text)
{
	size_t len = strlen(text);
	unsigned char *raw;
	int n;

	if (len == 0 || len % 4 != 0)
		return PV_ECONFIG;
	raw = pv_malloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(raw, (const unsigned char *) text, (int) len);
	if (n < 0)
	{
		pv_free_secret(raw, len / 4 * 3 + 1);
		return PV_ECONFIG;
	}
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if (text[len - 1] == '=')
		n--;
	if (text[len - 2] == '=')
		n--;
	*out = raw;
	*out_len = (size_t) n;
	return 0;
}

/* ---- signing ---- */

typedef struct AzCall
{
	AzStorage *az;
	const char *path;			/* encoded URL path */
	const char *query;			/* our query (without the SAS), or NULL */
	size_t body_len;
} AzCall;

typedef struct AzParam
{
	char *name;					/* lowercase */
	char *value;				/* decoded */
} AzParam;

static int
az_param_cmp(const void *a, const void *b)
{
	const AzParam *pa = a, *pb = b;
	int c = strcmp(pa->name, pb->name);

	return c != 0 ? c : strcmp(pa->value, pb->value);
}

static char *
az_pct_decode(const char *s, size_t len)
{
	Buf out = PV_BUF_INIT;

	for (size_t i = 0; i < len; i++)
	{
		unsigned int v;

		if (s[i] == '%' && i + 2 < len + 0 && sscanf(s + i + 1, "%2x", &v) == 1)
		{
			buf_append_byte(&out, (unsigned char) v);
			i += 2;
		}
		else
			buf_append_byte(&out, (unsigned char) s[i]);
	}
	return buf_detach(&out);
}

/* "\nname:v1,v2" lines of the canonicalized resource, sorted by name. */
static void
az_canonical_query(Buf *out, const char *query)
{
	AzParam *ps = NULL;
	size_t n = 0;

	for (const char *p = query; p != NULL && *p != '\0';)
	{
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		size_t nlen = eq ? (size_t) (eq - p) : plen;

		ps = pv_realloc(ps, (n + 1) * sizeof(*ps));
		ps[n].name = az_pct_decode(p, nlen);
		for (char *c = ps[n].name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char) (*c - 'A' + 'a');
		ps[n].value = eq ? az_pct_decode(eq + 1, plen - nlen - 1) : pv_strdup("");
		n++;
		p = end ? end + 1 : NULL;
	}
	if (n > 1)
		pv_qsort(ps, n, sizeof(*ps), az_param_cmp);
	for (size_t i = 0; i < n; i++)
	{
		if (i > 0 && strcmp(ps[i].name, ps[i - 1].name) == 0)
			buf_printf(out, ",%s", ps[i].value);
		else
			buf_printf(out, "\n%s:%s", ps[i].name, ps[i].value);
	}
	for (size_t i = 0; i < n; i++)
	{
		pv_free(ps[i].name);
		pv_free(ps[i].value);
	}
	pv_free(ps);
}

static int
az_hdr_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *) a, *(char *const *) b);
}

/* Add x-ms-date, x-ms-version and (Shared Key) the Authorization header. */
static int
az_sign(HttpHeaders *h, const HttpRequest *req, void *payload)
{
	AzCall *call = payload;
	AzStorage *az = call->az;
	static const char *const std[] = {"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
		"Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"};
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	Buf sts = PV_BUF_INIT, sig = PV_BUF_INIT;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char **xms;
	size_t nxms = 0;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	http_headers_add(h, "x-ms-date", "%s", date);
	http_headers_add(h, "x-ms-version", "%s", AZ_VERSION);
	if (az->key == NULL)
		return 0;				/* SAS: the query string carries the authority */

	buf_printf(&sts, "%s\n", req->method);
	for (size_t i = 0; i < PV_ARRAY_LEN(std); i++)
	{
		size_t len;
		const char *v = http_headers_get(h, std[i], &len);

		if (strcmp(std[i], "Content-Length") == 0)
		{
			if (call->body_len > 0)
				buf_printf(&sts, "%zu", call->body_len);
		}
		else if (v != NULL)
			buf_append(&sts, v, len);
		buf_append_byte(&sts, '\n');
	}
	/* Canonicalized headers: x-ms-*, lowercase, sorted. */
	xms = pv_calloc(h->n + 1, sizeof(*xms));
	for (size_t i = 0; i < h->n; i++)
		if (strncasecmp(h->lines[i], "x-ms-", 5) == 0)
			xms[nxms++] = h->lines[i];
	if (nxms > 1)
		pv_qsort(xms, nxms, sizeof(*xms), az_hdr_cmp);
	for (size_t i = 0; i < nxms; i++)
	{
		const char *colon = strchr(xms[i], ':');
		const char *v = colon + 1;

		for (const char *c = xms[i]; c < colon; c++)
			buf_append_byte(&sts, (unsigned char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c));
		while (*v == ' ')
			v++;
		buf_printf(&sts, ":%s\n", v);
	}
	pv_free(xms);
	/* Canonicalized resource: "/account/path" (with path-style endpoints the account appears twice). */
	buf_printf(&sts, "/%s%s", az->account, call->path);
	az_canonical_query(&sts, call->query);

	HMAC(EVP_sha256(), az->key, (int) az->keylen, sts.data, sts.len, mac, &maclen);
	http_base64(&sig, mac, maclen);
	http_headers_add(h, "Authorization", "SharedKey %s:%s", az->account, buf_cstr(&sig));
	OPENSSL_cleanse(mac, sizeof(mac));
	buf_free(&sts);
	buf_free_secret(&sig);
	return 0;
}

/* ---- requests ---- */

/* The dialect's send: endpoint/container/blob, the SAS in the query or a Shared Key signature. */
static int
az_send(ObjStore *os, const ObjReq *r, HttpResponse *resp)
{
	AzStorage *az = (AzStorage *) os;	/* os is its first member */
	AzCall call = {.az = az, .query = r->query, .body_len = r->body_len};
	const char *after_host = strstr(az->endpoint, "://") + 3;
	Buf path = PV_BUF_INIT, url = PV_BUF_INIT, q = PV_BUF_INIT;
	int rc;

	after_host += strcspn(after_host, "/");
	buf_printf(&path, "%s/%s", after_host, az->os.container);
	if (r->okey != NULL)
	{
		buf_append_byte(&path, '/');
		sigv4_uri_encode(&path, r->okey, strlen(r->okey), 1);
	}
	if (r->query != NULL)
		buf_append_str(&q, r->query);
	if (az->sas != NULL)
		buf_printf(&q, "%s%s", q.len ? "&" : "", az->sas);
	buf_printf(&url, "%.*s%s%s%s", (int) (after_host - az->endpoint), az->endpoint, buf_cstr(&path),
			   q.len ? "?" : "", buf_cstr(&q));
	call.path = buf_cstr(&path);
	rc = http_request(az->os.http, &(HttpRequest) {
		.method = r->method, .url = buf_cstr(&url), .path = call.path, .query = r->query,
		.headers = r->headers, .body = r->body, .body_len = r->body_len, .sink = r->sink,
		.sign = az_sign, .check = r->check, .payload = &call, .what = r->what}, resp);
	buf_free(&path);
	buf_free_secret(&url);		/* holds the SAS */
	buf_free_secret(&q);
	return rc;
}

/* ---- writing ---- */

static int
az_put(void *driver, const char *key, const void *data, size_t len, int flags)
{
	AzStorage *az = driver;
	char *okey = objstore_okey(&az->os, key);
	char *what = pv_asprintf("cannot write object '%s'", key);
	HttpHeaders h = {0};
	HttpResponse resp;
	int rc;

	http_response_init(&resp);
	http_headers_add(&h, "x-ms-blob-type", "BlockBlob");
	http_headers_content_md5(&h, data, len);
	if (flags & STORAGE_PUT_NO_OVERWRITE)
		http_headers_add(&h, "If-None-Match", "*");
	rc = objstore_send_ok(&az->os, &(ObjReq) {.method = "PUT", .okey = okey, .headers = &h, .body = data,
						  .body_len = len, .what = what}, key, false, &resp);
	http_headers_free(&h);
	http_response_free(&resp);
	pv_free(okey);
	pv_free(what);
	return rc;
}

typedef struct AzWriter
{
	ObjWriter ow;				/* first (objstore.h): key, okey, flags, the blocks (rule 2's bounds) */
	char tag[17];				/* rule 3 */
} AzWriter;

/* The block id of block n: base64 of a fixed-length text (all ids of a blob must be as long). */
static void
az_block_id(Buf *out, const AzWriter *w, int n)
{
	char raw[40];
	int len = snprintf(raw, sizeof(raw), "%s-%06d", w->tag, n);

	http_base64(out, (const unsigned char *) raw, (size_t) len);
}

/* Put Block: one block of the blob, on a worker thread (upload.h rule 3). */
static int
az_block_upload(void *ctx, int number, const unsigned char *data, size_t len)
{
	AzWriter *w = ctx;
	Buf id = PV_BUF_INIT, query = PV_BUF_INIT;
	char *what = pv_asprintf("cannot write object '%s' (block %d)", w->ow.key, number);
	HttpHeaders h = {0};
	HttpResponse resp;
	int rc;

	http_response_init(&resp);
	az_block_id(&id, w, number);
	buf_append_str(&query, "comp=block&blockid=");
	sigv4_uri_encode(&query, (const char *) id.data, id.len, 0);
	http_headers_content_md5(&h, data, len);
	rc = objstore_send_ok(w->ow.os, &(ObjReq) {.method = "PUT", .okey = w->ow.okey, .query = buf_cstr(&query),
						  .headers = &h, .body = data, .body_len = len, .what = what}, NULL, false, &resp);
	http_headers_free(&h);
	http_response_free(&resp);
	buf_free(&id);
	buf_free(&query);
	pv_free(what);
	return rc;
}

static int
az_writer_open(void **out, void *driver, const char *key, int flags)
{
	AzStorage *az = driver;
	AzWriter *w = PV_NEW(AzWriter);
	unsigned char rnd[8];

	pv_fs_random_fill(rnd, sizeof(rnd));
	pv_hex_encode(w->tag, rnd, sizeof(rnd));
	objstore_writer_init(&w->ow, &az->os, key, flags, &(UploadOpts) {
		.part_size = az->block_size, .jobs = az->os.upload_jobs, .max_parts = AZ_BLOCKS_MAX, .unit = "blocks",
		.size_setting = "azure-block-size", .part = az_block_upload, .ctx = w});
	*out = w;
	return 0;
}

static void
az_writer_free(AzWriter *w)
{
	objstore_writer_fini(&w->ow);	/* waits for blocks in flight */
	pv_free(w);
}

static int
az_block_list_put(AzWriter *w, int nblocks)
{
	char *what = pv_asprintf("cannot write object '%s' (put block list)", w->ow.key);
	HttpHeaders h = {0};
	HttpResponse resp;
	Buf xml = PV_BUF_INIT;
	int rc;

	http_response_init(&resp);
	buf_append_str(&xml, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
	for (int i = 1; i <= nblocks; i++)
	{
		buf_append_str(&xml, "<Latest>");
		az_block_id(&xml, w, i);
		buf_append_str(&xml, "</Latest>");
	}
	buf_append_str(&xml, "</BlockList>");
	if (w->ow.flags & STORAGE_PUT_NO_OVERWRITE)
		http_headers_add(&h, "If-None-Match", "*");
	rc = objstore_send_ok(w->ow.os, &(ObjReq) {.method = "PUT", .okey = w->ow.okey, .query = "comp=blocklist",
						  .headers = &h, .body = xml.data, .body_len = xml.len, .what = what}, w->ow.key, false,
						  &resp);
	buf_free(&xml);
	http_headers_free(&h);
	http_response_free(&resp);
	pv_free(what);
	return rc;
}

static int
az_writer_commit(void *writer)
{
	AzWriter *w = writer;
	int rc;

	/* What fitted in one block went as one Put Blob (0 blocks). */
	if ((rc = objstore_writer_finish(&w->ow, az_put)) > 0)
		rc = az_block_list_put(w, rc);
	az_writer_free(w);
	return rc;
}

static void
az_writer_abort(void *writer)
{
	az_writer_free(writer);		/* rule 1: uncommitted blocks expire by themselves */
}

/* ---- listing ---- */

/* List Blobs, paged by marker (the dialect's list_query). */
static void
az_list_query(Buf *query, const ObjStore *os, const Buf *token, const char *okey_prefix)
{
	buf_append_str(query, "comp=list");
	if (token->len > 0)
	{
		buf_append_str(query, "&marker=");
		sigv4_uri_encode(query, (const char *) token->data, token->len, 0);
	}
	buf_printf(query, "&maxresults=%d&prefix=", os->page_size);
	sigv4_uri_encode(query, okey_prefix, strlen(okey_prefix), 0);
	buf_append_str(query, "&restype=container");
}

/* The next page starts at <NextMarker>, empty after the last one. */
int
az_list_next(const HttpResponse *resp, Buf *token)
{
	const char *pos = (const char *) resp->body.data;
	const char *v;
	size_t vlen;

	buf_reset(token);
	if (http_xml_next(&pos, pos + resp->body.len, "NextMarker", &v, &vlen))
		http_xml_decode(token, v, vlen);
	return 0;
}

/* ---- creating ---- */

static int
az_create(void *driver)
{
	AzStorage *az = driver;
	char *what = pv_asprintf("cannot create container '%s'", az->os.container);
	HttpResponse resp;
	char code[128];
	int rc;

	http_response_init(&resp);
	if ((rc = az_send(&az->os, &(ObjReq) {.method = "PUT", .query = "restype=container", .what = what}, &resp)) < 0)
		goto done;
	http_response_error_code(&resp, code, sizeof(code));
	if (resp.status == 201)
		pv_log_info("azure: created container '%s'", az->os.container);
	else if (!(resp.status == 409 && strcmp(code, "ContainerAlreadyExists") == 0))
		rc = objstore_fail(&az->os, &resp, what, NULL, false);

done:
	http_response_free(&resp);
	pv_free(what);
	return rc;
}

static const ObjDialect az_dialect = {
	.setting = "azure",
	.container = "container",
	.missing_code = "ContainerNotFound",
	.exists_code = "BlobAlreadyExists",
	.auth_hint = "check azure-account with azure-key or azure-sas (or AZURE_STORAGE_ACCOUNT with "
		"AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN)",
	.range_header = "x-ms-range",
	.list_item = "Blob",
	.list_name = "Name",
	.list_size = "Content-Length",
	.list_mtime = "Last-Modified",
	.list_query = az_list_query,
	.list_next = az_list_next,
	.send = az_send,
};

static void
az_free(void *driver)
{
	AzStorage *az = driver;

	objstore_fini(&az->os);
	pv_free(az->account);
	if (az->key != NULL)
		pv_free_secret(az->key, az->keylen);
	pv_free_secret_str(az->sas);
	pv_free(az->endpoint);
	pv_free(az);
}

static const StorageOps az_ops = {
	.name = "azure",
	OBJSTORE_OPS,
	.put = az_put,
	.writer_open = az_writer_open,
	.writer_commit = az_writer_commit,
	.writer_abort = az_writer_abort,
	.delete = objstore_delete,
	.create = az_create,
	.free = az_free,
};

/* ---- opening ---- */

/* The value of name in a connection string ("A=x;B=y"), as a new string, or NULL. */
static char *
az_conn_get(const char *conn, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = conn; p != NULL && *p != '\0';)
	{
		const char *end = strchr(p, ';');
		size_t plen = end ? (size_t) (end - p) : strlen(p);

		while (plen > 0 && *p == ' ')
			p++, plen--;
		if (plen > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == '=')
			return pv_strndup(p + nlen + 1, plen - nlen - 1);
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

/* Azurite's well-known development account (public, from its documentation). */
#define AZ_DEV_ACCOUNT "devstoreaccount1"
#define AZ_DEV_KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static int
az_settings(AzStorage *az, const StorageOpenOpts *opts)
{
	const char *conn = storage_opts_get(opts, "azure-connection-string", "AZURE_STORAGE_CONNECTION_STRING");
	const char *v;
	char *cv = NULL;
	char *key = NULL;
	uint64_t bs;
	int rc = 0;

	if (conn != NULL && (cv = az_conn_get(conn, "UseDevelopmentStorage")) != NULL)
	{
		if (strcasecmp(cv, "true") == 0)
			conn = "AccountName=" AZ_DEV_ACCOUNT ";AccountKey=" AZ_DEV_KEY
				";BlobEndpoint=http://127.0.0.1:10000/" AZ_DEV_ACCOUNT;
		pv_free(cv);
		cv = NULL;
	}

	if ((v = storage_opts_get(opts, "azure-account", "AZURE_STORAGE_ACCOUNT")) != NULL)
		az->account = pv_strdup(v);
	else if (conn != NULL)
		az->account = az_conn_get(conn, "AccountName");

	if ((v = storage_opts_get(opts, "azure-key", "AZURE_STORAGE_KEY")) != NULL)
		key = pv_strdup(v);
	else if (conn != NULL)
		key = az_conn_get(conn, "AccountKey");
	if ((v = storage_opts_get(opts, "azure-sas", "AZURE_STORAGE_SAS_TOKEN")) != NULL)
		az->sas = pv_strdup(v[0] == '?' ? v + 1 : v);
	else if (conn != NULL && (cv = az_conn_get(conn, "SharedAccessSignature")) != NULL)
	{
		az->sas = pv_strdup(cv[0] == '?' ? cv + 1 : cv);
		pv_free_secret_str(cv);
	}

	if ((v = storage_opts_get(opts, "azure-endpoint", NULL)) != NULL)
		az->endpoint = pv_strdup(v);
	else if (conn != NULL && (cv = az_conn_get(conn, "BlobEndpoint")) != NULL)
		az->endpoint = cv;
	else if (az->account != NULL)
	{
		char *suffix = conn ? az_conn_get(conn, "EndpointSuffix") : NULL;

		az->endpoint = pv_asprintf("https://%s.blob.%s", az->account, suffix ? suffix : "core.windows.net");
		pv_free(suffix);
	}

	if (az->account == NULL)
	{
		rc = pv_error_set(PV_ECONFIG, "no storage account for 'azure://%s'", az->os.container);
		pv_error_hint("set azure-account in the repository's section, or AZURE_STORAGE_ACCOUNT");
		goto done;
	}
	if (key == NULL && az->sas == NULL)
	{
		rc = pv_error_set(PV_ECONFIG, "no credentials for 'azure://%s'", az->os.container);
		pv_error_hint("set azure-key or azure-sas in the repository's section, or AZURE_STORAGE_KEY or "
					  "AZURE_STORAGE_SAS_TOKEN");
		goto done;
	}
	if (key != NULL && az->sas == NULL && az_base64_decode(&az->key, &az->keylen, key) < 0)
	{
		rc = pv_error_set(PV_ECONFIG, "invalid Azure storage key for account '%s': it is not base64",
						  az->account);
		goto done;
	}
	/* The endpoint: scheme://host[:port][/path], kept without a trailing '/'. */
	if (strncmp(az->endpoint, "https://", 8) != 0 && strncmp(az->endpoint, "http://", 7) != 0)
	{
		rc = pv_error_set(PV_ECONFIG, "invalid azure-endpoint '%s': expected https://host[:port][/path]",
						  az->endpoint);
		goto done;
	}
	while (az->endpoint[strlen(az->endpoint) - 1] == '/')
		az->endpoint[strlen(az->endpoint) - 1] = '\0';

	if ((rc = http_opt_size(&bs, opts, "azure-block-size", 16 * AZ_MIB, AZ_MIB, 4000 * AZ_MIB)) < 0)
		goto done;
	az->block_size = (size_t) bs;
	rc = objstore_settings(&az->os, opts, 5000);

done:
	pv_free_secret_str(key);
	return rc;
}

int
storage_azure_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts)
{
	AzStorage *az = PV_NEW(AzStorage);
	int rc;

	az->os.d = &az_dialect;
	az->os.type = "azure";
	if ((rc = objstore_url_parse(&az->os, rest, url)) < 0 || (rc = az_settings(az, opts)) < 0 ||
		(rc = objstore_http_open(&az->os, opts, url, NULL, NULL)) < 0)
		goto done;
	*out = storage_new(&az_ops, az, url);
	az = NULL;

done:
	if (az != NULL)
		az_free(az);
	return rc;
}
