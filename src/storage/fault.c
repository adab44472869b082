/*
 * fault.c: the fault-injecting storage wrapper; see fault.h.
 *
 * Every operation is passed to the inner Storage through the public API,
 * after one decision taken under a mutex: which number this operation is of
 * its kind, and whether that number is one the options break.  The mutex
 * guards only the counters and options, never the inner call, so threads
 * still reach the inner store concurrently.
 */
#include "storage/fault.h"

#include "common/error.h"
#include "common/mem.h"
#include "storage/storage_driver.h"

#include <pthread.h>
#include <string.h>

typedef enum FaultKind
{
	FAULT_PUT,
	FAULT_WRITE,
	FAULT_GET,
	FAULT_STAT,
	FAULT_LIST,
	FAULT_DELETE,
	FAULT_KINDS
} FaultKind;

typedef struct FaultStorage
{
	Storage *inner;				/* borrowed */
	pthread_mutex_t mu;
	StorageFaultOpts opts;		/* only_prefix points at prefix */
	char *prefix;
	uint64_t counts[FAULT_KINDS];
} FaultStorage;

/* What was decided for one operation. */
typedef struct FaultPlan
{
	bool fail;
	bool truncate;
	bool flip;
} FaultPlan;

typedef struct FaultWriter
{
	FaultStorage *fs;
	StorageWriter *inner;
	char *key;
	FaultPlan plan;
	uint64_t written;			/* bytes passed to the inner writer */
} FaultWriter;

static bool
fault_nth(unsigned nth, uint64_t count, bool after)
{
	return nth != 0 && (count == nth || (after && count > nth));
}

static unsigned
fault_fail_nth(const StorageFaultOpts *o, FaultKind kind)
{
	switch (kind)
	{
		case FAULT_PUT:
			return o->fail_put;
		case FAULT_WRITE:
			return o->fail_write;
		case FAULT_GET:
			return o->fail_get;
		case FAULT_STAT:
			return o->fail_stat;
		case FAULT_LIST:
			return o->fail_list;
		case FAULT_DELETE:
			return o->fail_delete;
		case FAULT_KINDS:
			break;
	}
	return 0;
}

/* Count one operation of kind on key and decide its fate. */
static FaultPlan
fault_plan(FaultStorage *fs, FaultKind kind, const char *key)
{
	FaultPlan plan = {false, false, false};
	uint64_t n;

	pthread_mutex_lock(&fs->mu);
	if (fs->prefix == NULL || strncmp(key, fs->prefix, strlen(fs->prefix)) == 0)
	{
		n = ++fs->counts[kind];
		plan.fail = fault_nth(fault_fail_nth(&fs->opts, kind), n, fs->opts.fail_after);
		plan.truncate = kind == FAULT_PUT && fault_nth(fs->opts.truncate_put, n, false);
		plan.flip = kind == FAULT_GET && fault_nth(fs->opts.flip_get, n, false);
	}
	pthread_mutex_unlock(&fs->mu);
	return plan;
}

static int
fault_fail(FaultStorage *fs, const char *what, const char *key)
{
	int code;

	pthread_mutex_lock(&fs->mu);
	code = fs->opts.fail_code != 0 ? fs->opts.fail_code : PV_EIO;
	pthread_mutex_unlock(&fs->mu);
	return pv_error_set(code, "injected fault: %s '%s'", what, key);
}

static uint64_t
fault_truncate_to(FaultStorage *fs)
{
	uint64_t n;

	pthread_mutex_lock(&fs->mu);
	n = fs->opts.truncate_to;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

/* ---- writing ---- */

static int
fault_put(void *driver, const char *key, const void *data, size_t len, int flags)
{
	FaultStorage *fs = driver;
	FaultPlan plan = fault_plan(fs, FAULT_PUT, key);

	if (plan.fail)
		return fault_fail(fs, "cannot write object", key);
	if (plan.truncate)
	{
		uint64_t to = fault_truncate_to(fs);

		if (to < len)
			len = (size_t) to;
	}
	return storage_put(fs->inner, key, data, len, flags);
}

static void
fault_writer_free(FaultWriter *fw)
{
	pv_free(fw->key);
	pv_free(fw);
}

static int
fault_writer_open(void **out, void *driver, const char *key, int flags)
{
	FaultStorage *fs = driver;
	FaultWriter *fw;
	StorageWriter *inner = NULL;
	int rc;

	if ((rc = storage_writer_open(&inner, fs->inner, key, flags)) < 0)
		return rc;
	fw = PV_NEW(FaultWriter);
	fw->fs = fs;
	fw->inner = inner;
	fw->key = pv_strdup(key);
	fw->plan = fault_plan(fs, FAULT_PUT, key);
	*out = fw;
	return 0;
}

static int
fault_writer_write(void *writer, const void *data, size_t len)
{
	FaultWriter *fw = writer;
	FaultPlan plan = fault_plan(fw->fs, FAULT_WRITE, fw->key);
	int rc;

	if (plan.fail)
		return fault_fail(fw->fs, "cannot write object", fw->key);
	if (fw->plan.truncate)
	{
		uint64_t to = fault_truncate_to(fw->fs);

		len = fw->written >= to ? 0 : (to - fw->written < len ? (size_t) (to - fw->written) : len);
	}
	if ((rc = storage_writer_write(fw->inner, data, len)) < 0)
		return rc;
	fw->written += len;
	return 0;
}

static int
fault_writer_commit(void *writer)
{
	FaultWriter *fw = writer;
	int rc;

	if (fw->plan.fail)
	{
		storage_writer_abort(fw->inner);
		rc = fault_fail(fw->fs, "cannot write object", fw->key);
	}
	else
		rc = storage_writer_commit(fw->inner);
	fault_writer_free(fw);
	return rc;
}

static void
fault_writer_abort(void *writer)
{
	FaultWriter *fw = writer;

	storage_writer_abort(fw->inner);
	fault_writer_free(fw);
}

/* ---- reading ---- */

/* Invert one byte of what a read appended at out[oldlen..]. */
static void
fault_flip(FaultStorage *fs, Buf *out, size_t oldlen)
{
	uint64_t off;

	if (out->len <= oldlen)
		return;
	pthread_mutex_lock(&fs->mu);
	off = fs->opts.flip_offset;
	pthread_mutex_unlock(&fs->mu);
	out->data[oldlen + (size_t) (off % (out->len - oldlen))] ^= 0xff;
}

static int
fault_get(void *driver, const char *key, Buf *out)
{
	FaultStorage *fs = driver;
	FaultPlan plan = fault_plan(fs, FAULT_GET, key);
	size_t oldlen = out->len;
	int rc;

	if (plan.fail)
		return fault_fail(fs, "cannot read object", key);
	if ((rc = storage_get(fs->inner, key, out)) == 0 && plan.flip)
		fault_flip(fs, out, oldlen);
	return rc;
}

static int
fault_get_range(void *driver, const char *key, uint64_t offset, uint64_t len, Buf *out)
{
	FaultStorage *fs = driver;
	FaultPlan plan = fault_plan(fs, FAULT_GET, key);
	size_t oldlen = out->len;
	int rc;

	if (plan.fail)
		return fault_fail(fs, "cannot read object", key);
	if ((rc = storage_get_range(fs->inner, key, offset, len, out)) == 0 && plan.flip)
		fault_flip(fs, out, oldlen);
	return rc;
}

static int
fault_stat(void *driver, const char *key, StorageInfo *out)
{
	FaultStorage *fs = driver;

	if (fault_plan(fs, FAULT_STAT, key).fail)
		return fault_fail(fs, "cannot stat object", key);
	return storage_stat(fs->inner, key, out);
}

static int
fault_exists(void *driver, const char *key, bool *out)
{
	FaultStorage *fs = driver;

	if (fault_plan(fs, FAULT_STAT, key).fail)
		return fault_fail(fs, "cannot stat object", key);
	return storage_exists(fs->inner, key, out);
}

static int
fault_list(void *driver, const char *prefix, StorageListFn fn, void *payload)
{
	FaultStorage *fs = driver;

	if (fault_plan(fs, FAULT_LIST, prefix).fail)
		return fault_fail(fs, "cannot list objects under", prefix);
	return storage_list(fs->inner, prefix, fn, payload);
}

static int
fault_delete(void *driver, const char *key)
{
	FaultStorage *fs = driver;

	if (fault_plan(fs, FAULT_DELETE, key).fail)
		return fault_fail(fs, "cannot delete object", key);
	return storage_delete(fs->inner, key);
}

/* ---- the driver ---- */

static int
fault_create(void *driver)
{
	return storage_create(((FaultStorage *) driver)->inner);
}

static void
fault_opts_copy(FaultStorage *fs, const StorageFaultOpts *opts)
{
	pv_free(fs->prefix);
	fs->prefix = NULL;
	if (opts != NULL)
		fs->opts = *opts;
	else
		memset(&fs->opts, 0, sizeof(fs->opts));
	if (fs->opts.only_prefix != NULL && fs->opts.only_prefix[0] != '\0')
		fs->prefix = pv_strdup(fs->opts.only_prefix);
	fs->opts.only_prefix = fs->prefix;
	memset(fs->counts, 0, sizeof(fs->counts));
}

static void
fault_free(void *driver)
{
	FaultStorage *fs = driver;

	pthread_mutex_destroy(&fs->mu);
	pv_free(fs->prefix);
	pv_free(fs);
}

static const StorageOps fault_ops = {
	.name = "fault",
	.put = fault_put,
	.writer_open = fault_writer_open,
	.writer_write = fault_writer_write,
	.writer_commit = fault_writer_commit,
	.writer_abort = fault_writer_abort,
	.get = fault_get,
	.get_range = fault_get_range,
	.stat = fault_stat,
	.list = fault_list,
	.delete = fault_delete,
	.exists = fault_exists,
	.create = fault_create,
	.free = fault_free,
};

int
storage_fault_new(Storage **out, Storage *inner, const StorageFaultOpts *opts)
{
	FaultStorage *fs = PV_NEW(FaultStorage);

	fs->inner = inner;
	pthread_mutex_init(&fs->mu, NULL);
	fault_opts_copy(fs, opts);
	*out = storage_new(&fault_ops, fs, storage_url(inner));
	return 0;
}

void
storage_fault_counts(Storage *st, StorageFaultCounts *out)
{
	FaultStorage *fs = storage_driver(st);

	pthread_mutex_lock(&fs->mu);
	out->puts = fs->counts[FAULT_PUT];
	out->writes = fs->counts[FAULT_WRITE];
	out->gets = fs->counts[FAULT_GET];
	out->stats = fs->counts[FAULT_STAT];
	out->lists = fs->counts[FAULT_LIST];
	out->deletes = fs->counts[FAULT_DELETE];
	pthread_mutex_unlock(&fs->mu);
}

void
storage_fault_set(Storage *st, const StorageFaultOpts *opts)
{
	FaultStorage *fs = storage_driver(st);

	pthread_mutex_lock(&fs->mu);
	fault_opts_copy(fs, opts);
	pthread_mutex_unlock(&fs->mu);
}
