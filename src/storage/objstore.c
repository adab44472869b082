/*
 * objstore.c: what the HTTP object-store drivers do the same way (see
 * objstore.h for the rules and who owns what).  Every request goes through
 * the driver's dialect->send, so URLs and signatures stay the driver's.
 */
#include "storage/objstore.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define OBJSTORE_READ_WINDOW (2 * 1024 * 1024)	/* read-ahead window of read handles */

/* ---- opening ---- */

int
objstore_url_parse(ObjStore *os, const char *rest, const char *url)
{
	size_t clen = strcspn(rest, "/");
	Buf pre = PV_BUF_INIT;
	int rc = 0;

	if (clen == 0)
	{
		pv_error_set(PV_EUSAGE, "invalid %s URL '%s': no %s", os->type, url, os->d->container);
		pv_error_hint("write %s://%s/prefix", os->type, os->d->container);
		return PV_EUSAGE;
	}
	os->container = pv_strndup(rest, clen);
	for (const char *p = rest + clen; *p != '\0';)
	{
		size_t seg;

		while (*p == '/')
			p++;
		seg = strcspn(p, "/");
		if (seg == 0)
			break;
		buf_append(&pre, p, seg);
		buf_append_byte(&pre, '/');
		p += seg;
	}
	os->prefix = buf_detach(&pre);
	if (os->prefix[0] != '\0')
	{
		/* The prefix obeys the key rules, so listing and key checks stay meaningful. */
		char *check = pv_strndup(os->prefix, strlen(os->prefix) - 1);

		if ((rc = storage_key_check(check)) < 0)
			rc = pv_error_prefix(PV_EUSAGE, "invalid %s URL '%s'", os->type, url);
		pv_free(check);
	}
	return rc;
}

int
objstore_settings(ObjStore *os, const StorageOpenOpts *opts, int page_max)
{
	int64_t n;
	int rc;

	if ((rc = http_opt_int(&n, opts, "storage-upload-jobs", 4, 1, 64)) < 0)
		return rc;
	os->upload_jobs = (int) n;
	if ((rc = http_opt_int(&n, opts, "storage-list-page-size", 1000, 1, page_max)) < 0)
		return rc;
	os->page_size = (int) n;
	return 0;
}

int
objstore_http_open(ObjStore *os, const StorageOpenOpts *opts, const char *url, const char *ca_env,
				   const char *resolve)
{
	HttpClientOpts hopts;
	int rc;

	if ((rc = http_client_opts_read(&hopts, opts, os->d->setting, ca_env)) < 0)
		return rc;
	if (hopts.insecure)
		pv_log_warn("%s: TLS certificate verification is OFF for '%s' (%s-verify-tls = off): anyone on the "
					"network path can read and change the repository", os->type, url, os->d->setting);
	hopts.resolve = resolve;
	return http_client_new(&os->http, &hopts);
}

void
objstore_fini(ObjStore *os)
{
	http_client_free(os->http);
	pv_free(os->container);
	pv_free(os->prefix);
}

/* ---- requests and answers ---- */

char *
objstore_okey(const ObjStore *os, const char *key)
{
	return pv_asprintf("%s%s", os->prefix, key);
}

bool
objstore_ok(const HttpResponse *resp)
{
	return resp->status >= 200 && resp->status < 300;
}

bool
objstore_missing(const ObjStore *os, const HttpResponse *resp)
{
	char code[128];

	if (resp->status != 404)
		return false;
	http_response_error_code(resp, code, sizeof(code));
	return strcmp(code, os->d->missing_code) == 0;
}

int
objstore_fail(const ObjStore *os, const HttpResponse *resp, const char *what, const char *key, bool read)
{
	const ObjDialect *d = os->d;
	char code[128];

	http_response_error_code(resp, code, sizeof(code));
	if (objstore_missing(os, resp) && !(read && key != NULL))
	{
		http_response_error(resp, PV_ECONFIG, what);
		pv_error_hint("%s '%s' does not exist: 'pgvault init' creates it, or check the URL and %s-endpoint",
					  d->container, os->container, d->setting);
		return PV_ECONFIG;
	}
	if (resp->status == 404 && key != NULL)
		return pv_error_set(PV_ENOTFOUND, "object '%s' not found", key);
	if (key != NULL && (resp->status == 412 ||
						(resp->status == 409 && d->exists_code != NULL && strcmp(code, d->exists_code) == 0)))
		return pv_error_set(PV_EEXISTS, "object '%s' already exists", key);
	if (resp->status == 401 || resp->status == 403)
	{
		http_response_error(resp, PV_EAUTH, what);
		pv_error_hint("%s", d->auth_hint);
		return PV_EAUTH;
	}
	if (resp->status == 501 && d->notimpl_hint != NULL && strstr(code, "NotImplemented") != NULL)
	{
		http_response_error(resp, PV_ERROR, what);
		pv_error_hint("%s", d->notimpl_hint);
		return PV_ERROR;
	}
	return http_response_error(resp, PV_ERROR, what);
}

int
objstore_send_ok(ObjStore *os, const ObjReq *r, const char *key, bool read, HttpResponse *resp)
{
	int rc;

	if ((rc = os->d->send(os, r, resp)) < 0)
		return rc;
	if (!objstore_ok(resp))
		return objstore_fail(os, resp, r->what, key, read);
	return rc;
}

/* ---- stat, get, delete ---- */

int
objstore_stat(void *driver, const char *key, StorageInfo *out)
{
	ObjStore *os = driver;
	char *okey = objstore_okey(os, key);
	char *what = pv_asprintf("cannot stat object '%s'", key);
	HttpResponse resp;
	char *len = NULL, *lm = NULL;
	int rc;

	http_response_init(&resp);
	if ((rc = objstore_send_ok(os, &(ObjReq) {.method = "HEAD", .okey = okey, .what = what}, key, true, &resp)) < 0)
		goto done;
	len = http_response_header_dup(&resp, "Content-Length");
	lm = http_response_header_dup(&resp, "Last-Modified");
	if (len == NULL)
	{
		rc = pv_error_set(PV_ERROR, "%s: the answer has no Content-Length", what);
		goto done;
	}
	out->size = strtoull(len, NULL, 10);
	out->mtime = http_date_parse(lm);

done:
	pv_free(len);
	pv_free(lm);
	http_response_free(&resp);
	pv_free(okey);
	pv_free(what);
	return rc;
}

int
objstore_exists(void *driver, const char *key, bool *out)
{
	StorageInfo info;
	int rc = objstore_stat(driver, key, &info);

	if (rc == PV_ENOTFOUND)
	{
		pv_error_clear();
		*out = false;
		return 0;
	}
	if (rc == 0)
		*out = true;
	return rc;
}

/* One request on key whose answer carries nothing more than its status (and sink's bytes). */
static int
objstore_simple(ObjStore *os, const char *method, const char *verb, const char *key, Buf *sink)
{
	char *okey = objstore_okey(os, key);
	char *what = pv_asprintf("cannot %s object '%s'", verb, key);
	HttpResponse resp;
	int rc;

	http_response_init(&resp);
	rc = objstore_send_ok(os, &(ObjReq) {.method = method, .okey = okey, .sink = sink, .what = what}, key, true,
						  &resp);
	http_response_free(&resp);
	pv_free(okey);
	pv_free(what);
	return rc;
}

int
objstore_get(void *driver, const char *key, Buf *out)
{
	return objstore_simple(driver, "GET", "read", key, out);
}

int
objstore_delete(void *driver, const char *key)
{
	return objstore_simple(driver, "DELETE", "delete", key, NULL);
}

/* Rule 2: check what a 2xx answer to a ranged GET appended to out since oldlen. */
static int
objstore_range_check(const HttpResponse *resp, const char *key, uint64_t offset, uint64_t len, Buf *out,
					 size_t oldlen)
{
	size_t got = out->len - oldlen;

	if (resp->status == 200)
	{
		/* The store ignored the range and sent everything: keep our slice. */
		if (offset > got || len > got - offset)
			return pv_error_set(PV_ECORRUPT, "object '%s' has %zu bytes, too few for %" PRIu64
								" bytes at offset %" PRIu64, key, got, len, offset);
		memmove(out->data + oldlen, out->data + oldlen + offset, (size_t) len);
		out->len = oldlen + (size_t) len;
		out->data[out->len] = '\0';
		return 0;
	}
	if (got != len)
		return pv_error_set(PV_ECORRUPT, "object '%s' is too short for %" PRIu64 " bytes at offset %" PRIu64
							": got %zu", key, len, offset, got);
	return 0;
}

int
objstore_get_range(void *driver, const char *key, uint64_t offset, uint64_t len, Buf *out)
{
	ObjStore *os = driver;
	char *okey = objstore_okey(os, key);
	char *what = pv_asprintf("cannot read object '%s'", key);
	size_t oldlen = out->len;
	HttpHeaders h = {0};
	HttpResponse resp;
	StorageInfo info;
	int rc;

	http_response_init(&resp);
	if (len == 0)
	{
		/* No empty Range exists in HTTP: just check the offset against the size. */
		if ((rc = objstore_stat(os, key, &info)) == 0 && offset > info.size)
			rc = pv_error_set(PV_ECORRUPT, "object '%s' has %" PRIu64 " bytes, too few for 0 bytes at offset %"
							  PRIu64, key, info.size, offset);
		goto done;
	}
	http_headers_add(&h, os->d->range_header, "bytes=%" PRIu64 "-%" PRIu64, offset, offset + len - 1);
	if ((rc = os->d->send(os, &(ObjReq) {.method = "GET", .okey = okey, .headers = &h, .sink = out,
						  .what = what}, &resp)) < 0)
		goto done;
	if (resp.status == 416)
		rc = pv_error_set(PV_ECORRUPT, "object '%s' is too short for %" PRIu64 " bytes at offset %" PRIu64,
						  key, len, offset);
	else if (!objstore_ok(&resp))
		rc = objstore_fail(os, &resp, what, key, true);
	else
		rc = objstore_range_check(&resp, key, offset, len, out, oldlen);

done:
	http_headers_free(&h);
	http_response_free(&resp);
	pv_free(okey);
	pv_free(what);
	return rc;
}

int
objstore_read_open(void **out, void *driver, const char *key)
{
	StorageInfo info;
	int rc;

	if ((rc = objstore_stat(driver, key, &info)) < 0)
		return rc;
	*out = readahead_open(driver, key, info.size, OBJSTORE_READ_WINDOW, objstore_get_range);
	return 0;
}

/* ---- listing ---- */

/* The text of child tag of an item into out; false when there is none. */
static bool
objstore_xml_child(const char *item, size_t item_len, const char *tag, const char **out, size_t *out_len)
{
	const char *pos = item;

	return http_xml_next(&pos, item + item_len, tag, out, out_len);
}

/* Call fn for each object of one listing page (rule 3). */
int
objstore_list_page(ObjStore *os, const HttpResponse *resp, StorageListFn fn, void *payload)
{
	const ObjDialect *d = os->d;
	const char *pos = (const char *) resp->body.data;
	const char *end = pos + resp->body.len;
	const char *c, *v;
	size_t clen, vlen;
	size_t plen = strlen(os->prefix);
	Buf key = PV_BUF_INIT;
	int rc = 0;

	while (http_xml_next(&pos, end, d->list_item, &c, &clen))
	{
		StorageInfo info = {0};

		buf_reset(&key);
		if (!objstore_xml_child(c, clen, d->list_name, &v, &vlen))
			continue;
		http_xml_decode(&key, v, vlen);
		if (objstore_xml_child(c, clen, d->list_size, &v, &vlen))
			info.size = strtoull(v, NULL, 10);
		if (objstore_xml_child(c, clen, d->list_mtime, &v, &vlen))
		{
			char *lm = pv_strndup(v, vlen);

			info.mtime = http_date_parse(lm);
			pv_free(lm);
		}
		if (key.len < plen || memcmp(key.data, os->prefix, plen) != 0)
			continue;
		if (storage_key_check(buf_cstr(&key) + plen) < 0)
		{
			pv_log_debug("%s: listing skips '%s': %s", os->type, buf_cstr(&key), pv_error_msg());
			pv_error_clear();
			continue;
		}
		if ((rc = fn(buf_cstr(&key) + plen, &info, payload)) < 0)
			goto done;
		rc = 0;
	}

done:
	buf_free(&key);
	return rc;
}

int
objstore_list(void *driver, const char *prefix, StorageListFn fn, void *payload)
{
	ObjStore *os = driver;
	char *full = objstore_okey(os, prefix);
	char *what = pv_asprintf("cannot list objects under '%s'", prefix);
	Buf token = PV_BUF_INIT, query = PV_BUF_INIT;
	HttpResponse resp;
	int rc = 0;

	http_response_init(&resp);
	do
	{
		buf_reset(&query);
		os->d->list_query(&query, os, &token, full);
		if ((rc = os->d->send(os, &(ObjReq) {.method = "GET", .query = buf_cstr(&query), .what = what},
							  &resp)) < 0)
			goto done;
		if (!objstore_ok(&resp))
		{
			if (!objstore_missing(os, &resp))	/* no container: nothing in it (rule 1) */
				rc = objstore_fail(os, &resp, what, NULL, true);
			goto done;
		}
		if ((rc = objstore_list_page(os, &resp, fn, payload)) < 0 || (rc = os->d->list_next(&resp, &token)) < 0)
			goto done;
	} while (token.len > 0);

done:
	buf_free(&token);
	buf_free(&query);
	http_response_free(&resp);
	pv_free(full);
	pv_free(what);
	return rc;
}

/* ---- streaming writers ---- */

void
objstore_writer_init(ObjWriter *w, ObjStore *os, const char *key, int flags, const UploadOpts *uo)
{
	w->os = os;
	w->key = pv_strdup(key);
	w->okey = objstore_okey(os, key);
	w->flags = flags;
	w->up = upload_new(key, uo);
}

int
objstore_writer_write(void *writer, const void *data, size_t len)
{
	ObjWriter *w = writer;

	return upload_write(w->up, data, len);
}

int
objstore_writer_finish(ObjWriter *w, int (*put) (void *driver, const char *key, const void *data,
												  size_t len, int flags))
{
	const unsigned char *data;
	size_t len;
	int parts;
	int rc;

	if ((rc = upload_finish(w->up, &parts)) < 0)
		return rc;
	if (parts > 0)
		return parts;
	data = upload_data(w->up, &len);
	return put(w->os, w->key, data, len, w->flags);
}

void
objstore_writer_fini(ObjWriter *w)
{
	upload_free(w->up);			/* waits for parts in flight */
	pv_free(w->okey);
	pv_free(w->key);
}
