/*
 * compress.c: zstd / lz4 / none over whole buffers; see compress.h.
 *
 * Per-thread state: every worker thread gets its own ZSTD_CCtx, ZSTD_DCtx
 * and lz4 state, created on first use and reused for every later call (a
 * zstd context costs an allocation of about a MiB and its tables; making one
 * per chunk would dominate small chunks).  A _Thread_local pointer gives fast
 * access; a pthread key with a destructor frees the state when the thread
 * exits.
 *
 * Hostile input (decompress): rawlen is checked against the largest expansion
 * any valid stream of inlen bytes can have before anything is allocated
 * (lz4: 255 output bytes per input byte; zstd: one 128 KiB block per 3-byte
 * block header plus 1 RLE byte, so under 32768 per byte), and a zstd frame
 * that declares its content size must declare rawlen.  The libraries'
 * "safe" decoders never write past the rawlen bytes we give them.
 */
#include "repo/compress.h"

#include "common/error.h"
#include "common/mem.h"

#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <lz4hc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zstd.h>

#define LZ4_MAX_RATIO 255u
#define ZSTD_MAX_RATIO 32768u

typedef struct CompressThread
{
	ZSTD_CCtx *zcctx;
	ZSTD_DCtx *zdctx;
	void *lz4_state;
	void *lz4hc_state;
} CompressThread;

static pthread_key_t compress_key;
static pthread_once_t compress_once = PTHREAD_ONCE_INIT;
static _Thread_local CompressThread *compress_tls;

static void
compress_thread_free(void *p)
{
	CompressThread *t = p;

	ZSTD_freeCCtx(t->zcctx);
	ZSTD_freeDCtx(t->zdctx);
	pv_free(t->lz4_state);
	pv_free(t->lz4hc_state);
	pv_free(t);
	compress_tls = NULL;
}

static void
compress_key_create(void)
{
	if (pthread_key_create(&compress_key, compress_thread_free) != 0)
		abort();	/* uncovered: only fails when the process is out of keys */
}

static CompressThread *
compress_thread(void)
{
	if (compress_tls == NULL)
	{
		pthread_once(&compress_once, compress_key_create);
		compress_tls = PV_NEW(CompressThread);
		pthread_setspecific(compress_key, compress_tls);
	}
	return compress_tls;
}

static int
compress_level_parse(int *out, const char *text, int min, int max, const char *name)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max)
		return pv_error_set(PV_EUSAGE, "invalid %s compression level '%s' (expected %d to %d)",
							name, text, min, max);
	*out = (int) v;
	return PV_OK;
}

int
repo_compress_parse(RepoCompress *out, int *level_out, const char *text)
{
	const char *colon = strchr(text, ':');
	size_t namelen = colon ? (size_t) (colon - text) : strlen(text);
	int rc = PV_OK;

	if (namelen == 4 && strncasecmp(text, "zstd", 4) == 0)
	{
		*out = REPO_COMPRESS_ZSTD;
		*level_out = REPO_COMPRESS_ZSTD_DEFAULT_LEVEL;
		if (colon != NULL)
			rc = compress_level_parse(level_out, colon + 1, 1, ZSTD_maxCLevel(), "zstd");
	}
	else if (namelen == 3 && strncasecmp(text, "lz4", 3) == 0)
	{
		*out = REPO_COMPRESS_LZ4;
		*level_out = REPO_COMPRESS_LZ4_DEFAULT_LEVEL;
		if (colon != NULL)
			rc = compress_level_parse(level_out, colon + 1, 1, LZ4HC_CLEVEL_MAX, "lz4");
	}
	else if (namelen == 4 && strncasecmp(text, "none", 4) == 0)
	{
		*out = REPO_COMPRESS_NONE;
		*level_out = 0;
		if (colon != NULL)
			rc = pv_error_set(PV_EUSAGE, "compression 'none' takes no level (got '%s')", text);
	}
	else
	{
		rc = pv_error_set(PV_EUSAGE, "unknown compression '%s'", text);
		pv_error_hint("use zstd, zstd:LEVEL, lz4, lz4:LEVEL or none");
	}
	return rc;
}

const char *
repo_compress_name(RepoCompress c)
{
	switch (c)
	{
		case REPO_COMPRESS_NONE:
			return "none";
		case REPO_COMPRESS_ZSTD:
			return "zstd";
		case REPO_COMPRESS_LZ4:
			return "lz4";
	}
	return "unknown";
}

static int
compress_zstd(int level, const void *in, size_t inlen, Buf *out)
{
	CompressThread *t = compress_thread();
	size_t bound = ZSTD_compressBound(inlen);
	size_t n;

	if (ZSTD_isError(bound))
		return pv_error_set(PV_EUSAGE, "input of %zu bytes is too large for zstd", inlen);
	if (t->zcctx == NULL)
		t->zcctx = ZSTD_createCCtx();
	if (t->zcctx == NULL)
		return pv_error_set(PV_ERROR, "cannot create a zstd compression context");	/* uncovered: OOM */
	buf_reserve(out, bound);
	n = ZSTD_compressCCtx(t->zcctx, out->data + out->len, bound, in, inlen,
						  level > 0 ? level : REPO_COMPRESS_ZSTD_DEFAULT_LEVEL);
	if (ZSTD_isError(n))
		return pv_error_set(PV_ERROR, "zstd compression failed: %s", ZSTD_getErrorName(n));	/* uncovered */
	out->len += n;
	out->data[out->len] = '\0';
	return PV_OK;
}

static int
compress_lz4(int level, const void *in, size_t inlen, Buf *out)
{
	CompressThread *t = compress_thread();
	int bound;
	int n;

	if (inlen > LZ4_MAX_INPUT_SIZE)
		return pv_error_set(PV_EUSAGE, "input of %zu bytes is too large for lz4", inlen);
	bound = LZ4_compressBound((int) inlen);
	buf_reserve(out, (size_t) bound);
	if (level < LZ4HC_CLEVEL_MIN)
	{
		if (t->lz4_state == NULL)
			t->lz4_state = pv_malloc((size_t) LZ4_sizeofState());
		n = LZ4_compress_fast_extState(t->lz4_state, in, (char *) out->data + out->len,
									   (int) inlen, bound, 1);
	}
	else
	{
		if (t->lz4hc_state == NULL)
			t->lz4hc_state = pv_malloc((size_t) LZ4_sizeofStateHC());
		n = LZ4_compress_HC_extStateHC(t->lz4hc_state, in, (char *) out->data + out->len,
									   (int) inlen, bound, level);
	}
	if (n <= 0)
		return pv_error_set(PV_ERROR, "lz4 compression failed");	/* uncovered: bound is enough */
	out->len += (size_t) n;
	out->data[out->len] = '\0';
	return PV_OK;
}

int
repo_compress(RepoCompress c, int level, const void *in, size_t inlen, Buf *out)
{
	switch (c)
	{
		case REPO_COMPRESS_NONE:
			buf_append(out, in, inlen);
			return PV_OK;
		case REPO_COMPRESS_ZSTD:
			return compress_zstd(level, in, inlen, out);
		case REPO_COMPRESS_LZ4:
			return compress_lz4(level, in, inlen, out);
	}
	return pv_error_set(PV_EUSAGE, "unknown compression codec %d", (int) c);
}

/* One zstd frame over several parts, streamed straight into out (which has room for the bound). */
static int
compress_zstd_parts(int level, const void *const *parts, const size_t *lens, int n, size_t total,
					Buf *out)
{
	CompressThread *t = compress_thread();
	size_t bound = ZSTD_compressBound(total);
	ZSTD_outBuffer ob;
	size_t r;

	if (ZSTD_isError(bound))
		return pv_error_set(PV_EUSAGE, "input of %zu bytes is too large for zstd", total);
	if (t->zcctx == NULL)
		t->zcctx = ZSTD_createCCtx();
	if (t->zcctx == NULL)
		return pv_error_set(PV_ERROR, "cannot create a zstd compression context");	/* uncovered: OOM */
	buf_reserve(out, bound);
	ob = (ZSTD_outBuffer) {out->data + out->len, bound, 0};
	ZSTD_CCtx_reset(t->zcctx, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(t->zcctx, ZSTD_c_compressionLevel,
						   level > 0 ? level : REPO_COMPRESS_ZSTD_DEFAULT_LEVEL);
	ZSTD_CCtx_setPledgedSrcSize(t->zcctx, total);
	for (int i = 0; i < n; i++)
	{
		ZSTD_inBuffer ib = {parts[i], lens[i], 0};
		ZSTD_EndDirective end = i == n - 1 ? ZSTD_e_end : ZSTD_e_continue;

		do
			r = ZSTD_compressStream2(t->zcctx, &ob, &ib, end);
		while (!ZSTD_isError(r) && (end == ZSTD_e_end ? r != 0 : ib.pos < ib.size));
		if (ZSTD_isError(r))
			return pv_error_set(PV_ERROR, "zstd compression failed: %s", ZSTD_getErrorName(r));	/* uncovered */
	}
	out->len += ob.pos;
	out->data[out->len] = '\0';
	return PV_OK;
}

int
repo_compress_parts(RepoCompress c, int level, const void *const *parts, const size_t *lens,
					int n, Buf *out)
{
	Buf all = PV_BUF_INIT;
	size_t total = 0;
	int rc;

	for (int i = 0; i < n; i++)
		total += lens[i];
	if (c == REPO_COMPRESS_ZSTD && n > 0)
		return compress_zstd_parts(level, parts, lens, n, total, out);
	buf_reserve(&all, total);
	for (int i = 0; i < n; i++)
		buf_append(&all, parts[i], lens[i]);
	rc = repo_compress(c, level, all.data, all.len, out);
	buf_free(&all);
	return rc;
}

static int
decompress_zstd(const void *in, size_t inlen, size_t rawlen, Buf *out)
{
	CompressThread *t = compress_thread();
	unsigned long long declared = ZSTD_getFrameContentSize(in, inlen);
	size_t n;

	if (declared == ZSTD_CONTENTSIZE_ERROR)
		return pv_error_set(PV_ECORRUPT, "zstd data is corrupt: bad frame header");
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != rawlen)
		return pv_error_set(PV_ECORRUPT, "zstd frame declares %llu bytes, expected %zu",
							declared, rawlen);
	if (inlen < SIZE_MAX / ZSTD_MAX_RATIO && rawlen > inlen * ZSTD_MAX_RATIO)
		return pv_error_set(PV_ECORRUPT, "%zu bytes of zstd data cannot expand to %zu bytes",
							inlen, rawlen);
	if (t->zdctx == NULL)
		t->zdctx = ZSTD_createDCtx();
	if (t->zdctx == NULL)
		return pv_error_set(PV_ERROR, "cannot create a zstd decompression context");	/* uncovered: OOM */
	buf_reserve(out, rawlen);
	n = ZSTD_decompressDCtx(t->zdctx, out->data + out->len, rawlen, in, inlen);
	if (ZSTD_isError(n))
		return pv_error_set(PV_ECORRUPT, "zstd data is corrupt: %s", ZSTD_getErrorName(n));
	if (n != rawlen)
		return pv_error_set(PV_ECORRUPT, "zstd data decodes to %zu bytes, expected %zu", n, rawlen);
	out->len += n;
	out->data[out->len] = '\0';
	return PV_OK;
}

static int
decompress_lz4(const void *in, size_t inlen, size_t rawlen, Buf *out)
{
	int n;

	if (inlen > INT_MAX || rawlen > INT_MAX || rawlen > inlen * LZ4_MAX_RATIO)
		return pv_error_set(PV_ECORRUPT, "%zu bytes of lz4 data cannot expand to %zu bytes",
							inlen, rawlen);
	buf_reserve(out, rawlen);
	n = LZ4_decompress_safe(in, (char *) out->data + out->len, (int) inlen, (int) rawlen);
	if (n < 0)
		return pv_error_set(PV_ECORRUPT, "lz4 data is corrupt");
	if ((size_t) n != rawlen)
		return pv_error_set(PV_ECORRUPT, "lz4 data decodes to %d bytes, expected %zu", n, rawlen);
	out->len += rawlen;
	out->data[out->len] = '\0';
	return PV_OK;
}

int
repo_decompress(RepoCompress c, const void *in, size_t inlen, size_t rawlen, Buf *out)
{
	int rc;

	switch (c)
	{
		case REPO_COMPRESS_NONE:
			if (inlen != rawlen)
				return pv_error_set(PV_ECORRUPT, "uncompressed data is %zu bytes, expected %zu",
									inlen, rawlen);
			buf_append(out, in, inlen);
			return PV_OK;
		case REPO_COMPRESS_ZSTD:
			rc = decompress_zstd(in, inlen, rawlen, out);
			break;
		case REPO_COMPRESS_LZ4:
			rc = decompress_lz4(in, inlen, rawlen, out);
			break;
		default:
			return pv_error_set(PV_ECORRUPT, "unknown compression codec %d", (int) c);
	}
	/* a failed decoder may have written past out->len: restore the terminator */
	if (rc != PV_OK && out->data != NULL)
		out->data[out->len] = '\0';
	return rc;
}
