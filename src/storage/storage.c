/*
 * storage.c: the public storage API (storage.h) over the driver table
 * (storage_driver.h).
 *
 * Everything every driver would otherwise repeat lives here: key and flag
 * checks, the URL-scheme registry, the exists() fallback and putting a
 * caller's Buf back when a read fails.  A Storage owns its driver pointer
 * and its canonical URL; it holds no other state, so it is as thread-safe
 * as its driver.
 */
#include "storage/storage_driver.h"
#include "storage/azure.h"
#include "storage/s3.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct Storage
{
	const StorageOps *ops;
	void *driver;
	char *url;
};

struct StorageWriter
{
	Storage *st;
	void *w;					/* the driver's writer state */
};

/* ---- construction ---- */

Storage *
storage_new(const StorageOps *ops, void *driver, const char *url)
{
	Storage *st = PV_NEW(Storage);

	/* A driver missing a required member is a programming error, caught in every test run. */
	assert(ops->put && ops->writer_open && ops->writer_write && ops->writer_commit &&
		   ops->writer_abort && ops->get && ops->get_range && ops->stat && ops->list && ops->delete);
	st->ops = ops;
	st->driver = driver;
	st->url = pv_strdup(url);
	return st;
}

void *
storage_driver(const Storage *st)
{
	return st->driver;
}

void
storage_free(Storage *st)
{
	if (st == NULL)
		return;
	if (st->ops->free != NULL)
		st->ops->free(st->driver);
	pv_free(st->url);
	pv_free(st);
}

const char *
storage_url(const Storage *st)
{
	return st->url;
}

/* ---- keys ---- */

/* Rules shared by keys and prefixes; a prefix may end in '/' (or mid-segment). */
static int
storage_name_check(const char *name, bool is_prefix)
{
	const char *what = is_prefix ? "prefix" : "object key";
	size_t len = strlen(name);
	const char *seg = name;

	if (len == 0 && !is_prefix)
		return pv_error_set(PV_EUSAGE, "invalid object key '': it is empty");
	if (len > STORAGE_KEY_MAX)
		return pv_error_set(PV_EUSAGE, "invalid %s '%.64s...': longer than %d bytes", what, name, STORAGE_KEY_MAX);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) name[i];

		if (c < 0x20 || c == 0x7f)
			return pv_error_set(PV_EUSAGE, "invalid %s: it contains a control character (0x%02x at byte %zu)",
								what, c, i);
	}
	if (name[0] == '/')
		return pv_error_set(PV_EUSAGE, "invalid %s '%s': it starts with '/'", what, name);
	if (strstr(name, "..") != NULL)
		return pv_error_set(PV_EUSAGE, "invalid %s '%s': it contains '..'", what, name);

	/* Segment by segment: empty, "." and reserved temp names. */
	for (const char *p = name;; p++)
	{
		if (*p != '/' && *p != '\0')
			continue;

		size_t slen = (size_t) (p - seg);
		bool last = *p == '\0';

		if (slen == 0 && !(last && is_prefix))
			return pv_error_set(PV_EUSAGE, "invalid %s '%s': it has an empty segment", what, name);
		if (slen == 1 && seg[0] == '.' && !(last && is_prefix))
			return pv_error_set(PV_EUSAGE, "invalid %s '%s': it has a '.' segment", what, name);
		if (!is_prefix && memmem(seg, slen, PV_FS_TMP_MARK, strlen(PV_FS_TMP_MARK)) != NULL)
			return pv_error_set(PV_EUSAGE, "invalid %s '%s': '%s' is reserved for temporary files",
								what, name, PV_FS_TMP_MARK);
		if (last)
			break;
		seg = p + 1;
	}
	return 0;
}

int
storage_key_check(const char *key)
{
	if (key == NULL)
		return pv_error_set(PV_EUSAGE, "invalid object key: none given");
	return storage_name_check(key, false);
}

int
storage_prefix_check(const char *prefix)
{
	if (prefix == NULL)
		return pv_error_set(PV_EUSAGE, "invalid prefix: none given");
	return storage_name_check(prefix, true);
}

static int
storage_flags_check(int flags)
{
	if ((flags & ~STORAGE_PUT_NO_OVERWRITE) != 0)
		return pv_error_set(PV_EUSAGE, "unknown storage write flags 0x%x", (unsigned) flags);
	return 0;
}

/* ---- opening by URL ---- */

/* A driver's open function gets the part after "scheme://", the whole URL and the settings (may be NULL). */
typedef int (*StorageOpenFn) (Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts);

static int storage_file_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts);

/*
 * The registry.  An entry with open == NULL is a known type whose driver is
 * not built yet: users get "not available in this build" instead of a
 * confusing "unknown storage type".
 */
static const struct
{
	const char *scheme;
	StorageOpenFn open;
} storage_schemes[] = {
	{"file", storage_file_open},
	{"s3", storage_s3_open},
	{"gs", storage_gs_open},
	{"azure", storage_azure_open},
};

#define STORAGE_URL_HINT "a repository is a path, file:///path, s3://bucket/prefix, gs://bucket/prefix " \
	"or azure://container/prefix"

static int
storage_path_open(Storage **out, const char *path)
{
	char *abs = NULL;
	int rc;

	if ((rc = pv_fs_path_absolute(&abs, path)) < 0)
		return rc;
	rc = storage_posix_new(out, abs);
	pv_free(abs);
	return rc;
}

static int
storage_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "file:///abs/path" or "file://localhost/abs/path", %XX escapes decoded. */
static int
storage_file_open(Storage **out, const char *rest, const char *url, const StorageOpenOpts *opts)
{
	Buf path = PV_BUF_INIT;
	int rc = 0;

	if (strncasecmp(rest, "localhost/", 10) == 0)
		rest += 9;
	if (rest[0] != '/')
	{
		rc = pv_error_set(PV_EUSAGE, "invalid file URL '%s': it must name an absolute path", url);
		pv_error_hint("write file:///absolute/path, or just the path");
		goto done;
	}
	for (const char *p = rest; *p != '\0'; p++)
	{
		int hi, lo;

		if (*p != '%')
		{
			buf_append_byte(&path, (unsigned char) *p);
			continue;
		}
		hi = storage_hex_digit(p[1]);
		lo = hi < 0 ? -1 : storage_hex_digit(p[2]);
		if (lo < 0 || (hi == 0 && lo == 0))
		{
			rc = pv_error_set(PV_EUSAGE, "invalid file URL '%s': bad %%-escape", url);
			goto done;
		}
		buf_append_byte(&path, (unsigned char) (hi * 16 + lo));
		p += 2;
	}
	rc = storage_path_open(out, buf_cstr(&path));

done:
	buf_free(&path);
	return rc;
}

/* Length of the scheme if url starts with "scheme://" (scheme as RFC 3986 spells it), else 0. */
static size_t
storage_scheme_len(const char *url)
{
	size_t i = 0;

	if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
		return 0;
	while ((url[i] >= 'a' && url[i] <= 'z') || (url[i] >= 'A' && url[i] <= 'Z') ||
		   (url[i] >= '0' && url[i] <= '9') || url[i] == '+' || url[i] == '-' || url[i] == '.')
		i++;
	return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

const char *
storage_opts_get(const StorageOpenOpts *opts, const char *key, const char *env)
{
	const char *v = NULL;

	if (opts != NULL && opts->lookup != NULL)
		v = opts->lookup(key, opts->payload);
	if ((v == NULL || v[0] == '\0') && env != NULL)
		v = getenv(env);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
storage_open(Storage **out, const char *url)
{
	return storage_open_opts(out, url, NULL);
}

int
storage_open_opts(Storage **out, const char *url, const StorageOpenOpts *opts)
{
	size_t slen;

	if (url == NULL || url[0] == '\0')
	{
		pv_error_set(PV_EUSAGE, "no repository location given");
		pv_error_hint(STORAGE_URL_HINT);
		return PV_EUSAGE;
	}
	slen = storage_scheme_len(url);
	if (slen == 0)
		return storage_path_open(out, url);

	for (size_t i = 0; i < PV_ARRAY_LEN(storage_schemes); i++)
	{
		if (strlen(storage_schemes[i].scheme) != slen ||
			strncasecmp(url, storage_schemes[i].scheme, slen) != 0)
			continue;
		if (storage_schemes[i].open == NULL)
		{
			pv_error_set(PV_EUSAGE, "storage type '%s' is not available in this build",
						 storage_schemes[i].scheme);
			pv_error_hint("this pgvault supports local and file:// repositories only");
			return PV_EUSAGE;
		}
		return storage_schemes[i].open(out, url + slen + 3, url, opts);
	}
	pv_error_set(PV_EUSAGE, "unknown storage type '%.*s' in '%s'", (int) slen, url, url);
	pv_error_hint(STORAGE_URL_HINT);
	return PV_EUSAGE;
}

/* ---- objects ---- */

int
storage_create(Storage *st)
{
	if (st->ops->create == NULL)
		return 0;
	pv_log_trace("storage: create '%s'", st->url);
	return st->ops->create(st->driver);
}

int
storage_put(Storage *st, const char *key, const void *data, size_t len, int flags)
{
	int rc;

	if ((rc = storage_key_check(key)) < 0 || (rc = storage_flags_check(flags)) < 0)
		return rc;
	pv_log_trace("storage: put '%s' (%zu bytes)", key, len);
	return st->ops->put(st->driver, key, data, len, flags);
}

int
storage_writer_open(StorageWriter **out, Storage *st, const char *key, int flags)
{
	void *w = NULL;
	int rc;

	if ((rc = storage_key_check(key)) < 0 || (rc = storage_flags_check(flags)) < 0)
		return rc;
	if ((rc = st->ops->writer_open(&w, st->driver, key, flags)) < 0)
		return rc;
	*out = PV_NEW(StorageWriter);
	(*out)->st = st;
	(*out)->w = w;
	pv_log_trace("storage: writing '%s'", key);
	return 0;
}

int
storage_writer_write(StorageWriter *w, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	return w->st->ops->writer_write(w->w, data, len);
}

int
storage_writer_commit(StorageWriter *w)
{
	int rc = w->st->ops->writer_commit(w->w);

	pv_free(w);
	return rc;
}

void
storage_writer_abort(StorageWriter *w)
{
	if (w == NULL)
		return;
	w->st->ops->writer_abort(w->w);
	pv_free(w);
}

/* Put out back as it was before a failed read (the driver may have appended part). */
static void
storage_buf_restore(Buf *out, size_t oldlen)
{
	if (out->len > oldlen)
	{
		out->len = oldlen;
		out->data[oldlen] = '\0';
	}
}

int
storage_get(Storage *st, const char *key, Buf *out)
{
	size_t oldlen = out->len;
	int rc;

	if ((rc = storage_key_check(key)) < 0)
		return rc;
	if ((rc = st->ops->get(st->driver, key, out)) < 0)
		storage_buf_restore(out, oldlen);
	return rc;
}

int
storage_get_range(Storage *st, const char *key, uint64_t offset, uint64_t len, Buf *out)
{
	size_t oldlen = out->len;
	int rc;

	if ((rc = storage_key_check(key)) < 0)
		return rc;
	if (offset > UINT64_MAX - len)
		return pv_error_set(PV_EUSAGE, "invalid range of object '%s': offset %" PRIu64 " + length %" PRIu64
							" overflows", key, offset, len);
	if ((rc = st->ops->get_range(st->driver, key, offset, len, out)) < 0)
		storage_buf_restore(out, oldlen);
	return rc;
}

/*
 * storage_reader_*: a driver's native handle (read_open) or, without one,
 * the key kept for get_range calls.  Exactly one of handle and key is set.
 */
struct StorageReader
{
	Storage *st;
	void *handle;				/* the driver's, when it has read_open */
	char *key;					/* the fallback's */
};

int
storage_reader_open(StorageReader **out, Storage *st, const char *key)
{
	StorageReader *r;
	void *handle = NULL;
	int rc;

	if ((rc = storage_key_check(key)) < 0)
		return rc;
	if (st->ops->read_open != NULL && (rc = st->ops->read_open(&handle, st->driver, key)) < 0)
		return rc;
	r = PV_NEW(StorageReader);
	r->st = st;
	r->handle = handle;
	if (handle == NULL)
		r->key = pv_strdup(key);
	*out = r;
	return 0;
}

int
storage_reader_range(StorageReader *r, uint64_t offset, uint64_t len, Buf *out)
{
	size_t oldlen = out->len;
	int rc;

	if (r->handle == NULL)
		return storage_get_range(r->st, r->key, offset, len, out);
	if (offset > UINT64_MAX - len)
		return pv_error_set(PV_EUSAGE, "invalid range: offset %" PRIu64 " + length %" PRIu64 " overflows",
							offset, len);
	if ((rc = r->st->ops->read_range(r->handle, offset, len, out)) < 0)
		storage_buf_restore(out, oldlen);
	return rc;
}

void
storage_reader_close(StorageReader *r)
{
	if (r == NULL)
		return;
	if (r->handle != NULL)
		r->st->ops->read_close(r->handle);
	pv_free(r->key);
	pv_free(r);
}

int
storage_stat(Storage *st, const char *key, StorageInfo *out)
{
	int rc;

	if ((rc = storage_key_check(key)) < 0)
		return rc;
	return st->ops->stat(st->driver, key, out);
}

int
storage_exists(Storage *st, const char *key, bool *out)
{
	StorageInfo info;
	int rc;

	if ((rc = storage_key_check(key)) < 0)
		return rc;
	if (st->ops->exists != NULL)
		return st->ops->exists(st->driver, key, out);
	rc = st->ops->stat(st->driver, key, &info);
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

int
storage_list(Storage *st, const char *prefix, StorageListFn fn, void *payload)
{
	int rc;

	if ((rc = storage_prefix_check(prefix)) < 0)
		return rc;
	return st->ops->list(st->driver, prefix, fn, payload);
}

int
storage_delete(Storage *st, const char *key)
{
	int rc;

	if ((rc = storage_key_check(key)) < 0)
		return rc;
	pv_log_trace("storage: delete '%s'", key);
	return st->ops->delete(st->driver, key);
}

int
storage_delete_many(Storage *st, const char *const *keys, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++)
		if ((rc = storage_key_check(keys[i])) < 0)
			return rc;
	if (n == 0)
		return 0;
	pv_log_trace("storage: delete %zu objects, '%s' first", n, keys[0]);
	if (st->ops->delete_many != NULL)
		return st->ops->delete_many(st->driver, keys, n);
	for (size_t i = 0; i < n; i++)
	{
		rc = st->ops->delete(st->driver, keys[i]);
		if (rc == PV_ENOTFOUND)
			pv_error_clear();
		else if (rc < 0)
			return rc;
	}
	return 0;
}
