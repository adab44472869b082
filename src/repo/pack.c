/*
 * pack.c: pack header format, reading a pack's header, and the thread-safe
 * pack writer (see pack.h for its rules).
 *
 * Writer state: `cur` is the pack being filled (blob bytes in cur->data,
 * entries in cur->entries), guarded by pw->mu.  A full pack is detached
 * from `cur` under the mutex and finished (header appended, hashed,
 * uploaded, indexed) by the thread that filled it, outside the mutex.
 * `uploading` counts detached packs not yet done; the condition variable
 * wakes adders waiting for room (rule 2) and flush waiting for zero.
 */
#include "repo/pack.h"

#include "common/error.h"
#include "common/mem.h"
#include "repo/blob.h"
#include "repo/index.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

void
repo_pack_key(char out[REPO_PACK_KEY_MAX], const unsigned char pack_id[REPO_ID_LEN])
{
	char hex[2 * REPO_ID_LEN + 1];

	repo_id_hex(hex, pack_id);
	memcpy(out, "data/", 5);
	out[5] = hex[0];
	out[6] = hex[1];
	out[7] = '/';
	memcpy(out + 8, hex, 2 * REPO_ID_LEN + 1);
}

void
repo_pack_entry_encode(unsigned char out[REPO_PACK_ENTRY_SIZE], const RepoPackEntry *e)
{
	Buf b = PV_BUF_INIT;

	/* Via Buf's little-endian helpers; a 48-byte copy is not worth hand-packing. */
	buf_reserve(&b, REPO_PACK_ENTRY_SIZE);
	buf_append_byte(&b, e->type);
	buf_append_byte(&b, e->codec);
	buf_append_u16le(&b, 0);
	buf_append_u32le(&b, e->offset);
	buf_append_u32le(&b, e->length);
	buf_append_u32le(&b, e->raw_length);
	buf_append(&b, e->id, REPO_ID_LEN);
	memcpy(out, b.data, REPO_PACK_ENTRY_SIZE);
	buf_free(&b);
}

void
repo_pack_entry_decode(RepoPackEntry *out, const unsigned char in[REPO_PACK_ENTRY_SIZE])
{
	out->type = in[0];
	out->codec = in[1];
	out->offset = pv_read_u32le(in + 4);
	out->length = pv_read_u32le(in + 8);
	out->raw_length = pv_read_u32le(in + 12);
	memcpy(out->id, in + 16, REPO_ID_LEN);
}

void
repo_pack_header_build(Buf *out, const RepoPackEntry *entries, size_t n)
{
	unsigned char enc[REPO_PACK_ENTRY_SIZE];

	buf_reserve(out, REPO_PACK_HEADER_FIXED + n * REPO_PACK_ENTRY_SIZE);
	buf_append(out, REPO_PACK_HEADER_MAGIC, 4);
	buf_append_byte(out, 1);
	buf_append(out, "\0\0\0", 3);
	buf_append_u32le(out, (uint32_t) n);
	for (size_t k = 0; k < n; k++)
	{
		repo_pack_entry_encode(enc, &entries[k]);
		buf_append(out, enc, sizeof(enc));
	}
}

int
repo_pack_header_parse(RepoPackEntry **out, size_t *out_n, const unsigned char *plain,
					   size_t len, uint64_t data_len)
{
	RepoPackEntry *entries = NULL;
	uint64_t expect = 0;
	uint32_t n;
	int rc = 0;

	*out = NULL;
	*out_n = 0;
	if (len < REPO_PACK_HEADER_FIXED || memcmp(plain, REPO_PACK_HEADER_MAGIC, 4) != 0)
		return pv_error_set(PV_ECORRUPT, "pack header has a bad magic number");
	if (plain[4] != 1)
		return pv_error_set(PV_ECORRUPT, "pack header version %u is not supported", plain[4]);
	n = pv_read_u32le(plain + 8);
	if (n == 0 || (len - REPO_PACK_HEADER_FIXED) / REPO_PACK_ENTRY_SIZE != n ||
		(len - REPO_PACK_HEADER_FIXED) % REPO_PACK_ENTRY_SIZE != 0)
		return pv_error_set(PV_ECORRUPT, "pack header of %zu bytes cannot hold %u entries", len, n);
	entries = pv_malloc((size_t) n * sizeof(RepoPackEntry));
	for (uint32_t k = 0; k < n; k++)
	{
		RepoPackEntry *e = &entries[k];

		repo_pack_entry_decode(e, plain + REPO_PACK_HEADER_FIXED + (size_t) k * REPO_PACK_ENTRY_SIZE);
		if (e->type > REPO_BLOB_TREE)
		{
			rc = pv_error_set(PV_ECORRUPT, "pack header entry %u has unknown type %u", k, e->type);
			goto done;
		}
		if (e->offset != expect || e->length == 0)
		{
			rc = pv_error_set(PV_ECORRUPT, "pack header entry %u is at offset %u, expected %llu",
							  k, e->offset, (unsigned long long) expect);
			goto done;
		}
		expect += e->length;
	}
	if (expect != data_len)
	{
		rc = pv_error_set(PV_ECORRUPT, "pack header lists %llu bytes of blobs, the pack holds %llu",
						  (unsigned long long) expect, (unsigned long long) data_len);
		goto done;
	}
	*out = entries;
	*out_n = n;
	entries = NULL;
done:
	pv_free(entries);
	return rc;
}

int
repo_pack_read_header(RepoPackEntry **out, size_t *out_n, uint64_t *out_size, Storage *st,
					  const RepoKeys *keys, const unsigned char pack_id[REPO_ID_LEN])
{
	char key[REPO_PACK_KEY_MAX];
	char hex[2 * REPO_ID_LEN + 1];
	StorageInfo info;
	Buf raw = PV_BUF_INIT;
	Buf plain = PV_BUF_INIT;
	uint32_t hlen;
	int rc;

	*out = NULL;
	*out_n = 0;
	repo_pack_key(key, pack_id);
	repo_id_hex(hex, pack_id);
	if ((rc = storage_stat(st, key, &info)) < 0)
		goto done;
	if (out_size != NULL)
		*out_size = info.size;
	if (info.size < 4)
	{
		rc = pv_error_set(PV_ECORRUPT, "pack '%s' is truncated (%llu bytes)", hex,
						  (unsigned long long) info.size);
		goto done;
	}
	if ((rc = storage_get_range(st, key, info.size - 4, 4, &raw)) < 0)
		goto done;
	hlen = pv_read_u32le(raw.data);
	if (hlen == 0 || hlen > info.size - 4)
	{
		rc = pv_error_set(PV_ECORRUPT, "pack '%s' is truncated or damaged: its header length %u "
						  "does not fit in %llu bytes", hex, hlen, (unsigned long long) info.size);
		goto done;
	}
	buf_reset(&raw);
	if ((rc = storage_get_range(st, key, info.size - 4 - hlen, hlen, &raw)) < 0)
		goto done;
	if ((rc = repo_blob_decode(&plain, keys, NULL, 0, raw.data, raw.len, 0)) < 0 ||
		(rc = repo_pack_header_parse(out, out_n, plain.data, plain.len, info.size - 4 - hlen)) < 0)
	{
		rc = pv_error_prefix(PV_ECORRUPT, "pack '%s' has a damaged header", hex);
		goto done;
	}
done:
	buf_free(&raw);
	buf_free(&plain);
	return rc;
}

/* ---- writer ---- */

typedef struct OpenPack
{
	Buf data;
	RepoPackEntry *entries;
	size_t n;
	size_t cap;
} OpenPack;

struct RepoPackWriter
{
	Repo *repo;
	uint64_t pack_size;
	int max_uploads;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	OpenPack *cur;
	int uploading;
	int error;					/* sticky, rule 4 */
	PvErrorSave error_save;
	RepoPackWriterStats stats;
};

RepoPackWriter *
repo_pack_writer_new(Repo *repo, uint64_t pack_size, int max_uploads)
{
	RepoPackWriter *pw = PV_NEW(RepoPackWriter);

	pw->repo = repo;
	pw->pack_size = pack_size ? pack_size : repo_pack_size(repo);
	pw->max_uploads = max_uploads > 0 ? max_uploads : 2;
	pthread_mutex_init(&pw->mu, NULL);
	pthread_cond_init(&pw->cond, NULL);
	return pw;
}

static void
open_pack_free(OpenPack *p)
{
	if (p == NULL)
		return;
	buf_free(&p->data);
	pv_free(p->entries);
	pv_free(p);
}

/* Finish and store one detached pack; rule 3 then puts it in the index. */
static int
pack_upload(RepoPackWriter *pw, OpenPack *p)
{
	Buf plain = PV_BUF_INIT;
	unsigned char pack_id[REPO_ID_LEN];
	char key[REPO_PACK_KEY_MAX];
	size_t hstart = p->data.len;
	RepoIndex *idx;
	unsigned int mdlen;
	bool flush_index;
	int rc;

	repo_pack_header_build(&plain, p->entries, p->n);
	if ((rc = repo_blob_encode(&p->data, repo_keys(pw->repo), REPO_COMPRESS_NONE, 0, NULL, 0,
							   plain.data, plain.len)) < 0)
		goto done;
	buf_append_u32le(&p->data, (uint32_t) (p->data.len - hstart));
	EVP_Digest(p->data.data, p->data.len, pack_id, &mdlen, EVP_sha256(), NULL);
	repo_pack_key(key, pack_id);
	/* Same name means same bytes: an existing pack (a retry) is as good as ours. */
	rc = storage_put(repo_storage(pw->repo), key, p->data.data, p->data.len,
					 STORAGE_PUT_NO_OVERWRITE);
	if (rc == PV_EEXISTS)
		rc = 0;
	if (rc < 0)
	{
		rc = pv_error_prefix(rc, "cannot write pack to repository '%s'", repo_url(pw->repo));
		goto done;
	}
	if ((rc = repo_index_get(pw->repo, &idx)) < 0)
		goto done;
	repo_index_add_pack(idx, pack_id, p->entries, p->n, false);

	pthread_mutex_lock(&pw->mu);
	pw->stats.packs++;
	pw->stats.bytes += p->data.len;
	pw->stats.blobs += p->n;
	flush_index = pw->stats.packs % REPO_PACK_INDEX_EVERY == 0;
	pthread_mutex_unlock(&pw->mu);
	/* A long backup indexes as it goes: after a crash, the retry dedups against it. */
	if (flush_index)
		rc = repo_index_flush(pw->repo);
done:
	buf_free(&plain);
	return rc;
}

/* Called with pw->mu held: record the first error. */
static void
writer_fail_locked(RepoPackWriter *pw, int rc)
{
	if (pw->error == 0)
	{
		pw->error = rc;
		pv_error_save(&pw->error_save);
	}
}

/* Upload a detached pack (mu not held), then account for it. */
static int
pack_finish(RepoPackWriter *pw, OpenPack *p)
{
	int rc = pack_upload(pw, p);

	open_pack_free(p);
	pthread_mutex_lock(&pw->mu);
	if (rc < 0)
		writer_fail_locked(pw, rc);
	pw->uploading--;
	pthread_cond_broadcast(&pw->cond);
	pthread_mutex_unlock(&pw->mu);
	return rc;
}

int
repo_pack_writer_add(RepoPackWriter *pw, uint8_t type, const unsigned char id[REPO_ID_LEN],
					 uint8_t codec, uint32_t raw_length, const void *blob, size_t len)
{
	OpenPack *full = NULL;
	RepoPackEntry *e;
	int rc = 0;

	if (len == 0 || len > REPO_PACK_SIZE_MAX)
		return pv_error_set(PV_ERROR, "blob of %zu bytes cannot go into a pack", len);
	pthread_mutex_lock(&pw->mu);
	if (pw->error)
	{
		rc = pv_error_restore(&pw->error_save);
		goto unlock;
	}
	/* Rule 2: a pack that would be closed needs upload room first. */
	while (pw->cur != NULL && pw->cur->data.len + len >= pw->pack_size &&
		   pw->uploading >= pw->max_uploads && !pw->error)
		pthread_cond_wait(&pw->cond, &pw->mu);
	if (pw->error)
	{
		rc = pv_error_restore(&pw->error_save);
		goto unlock;
	}
	if (pw->cur == NULL)
	{
		pw->cur = PV_NEW(OpenPack);
		buf_reserve(&pw->cur->data, pw->pack_size + 4096);
	}
	if (pw->cur->n == pw->cur->cap)
	{
		pw->cur->cap = pw->cur->cap ? pw->cur->cap * 2 : 64;
		pw->cur->entries = pv_realloc(pw->cur->entries, pw->cur->cap * sizeof(RepoPackEntry));
	}
	e = &pw->cur->entries[pw->cur->n++];
	memcpy(e->id, id, REPO_ID_LEN);
	e->type = type;
	e->codec = codec;
	e->offset = (uint32_t) pw->cur->data.len;
	e->length = (uint32_t) len;
	e->raw_length = raw_length;
	buf_append(&pw->cur->data, blob, len);
	if (pw->cur->data.len >= pw->pack_size)
	{
		full = pw->cur;
		pw->cur = NULL;
		pw->uploading++;
	}
unlock:
	pthread_mutex_unlock(&pw->mu);
	if (full != NULL)
		rc = pack_finish(pw, full);
	return rc;
}

int
repo_pack_writer_flush(RepoPackWriter *pw)
{
	OpenPack *last;
	int rc = 0;

	pthread_mutex_lock(&pw->mu);
	last = pw->cur;
	pw->cur = NULL;
	if (last != NULL)
		pw->uploading++;
	pthread_mutex_unlock(&pw->mu);
	if (last != NULL)
		pack_finish(pw, last);

	pthread_mutex_lock(&pw->mu);
	while (pw->uploading > 0)
		pthread_cond_wait(&pw->cond, &pw->mu);
	if (pw->error)
		rc = pv_error_restore(&pw->error_save);
	pthread_mutex_unlock(&pw->mu);
	return rc;
}

void
repo_pack_writer_stats(RepoPackWriter *pw, RepoPackWriterStats *out)
{
	pthread_mutex_lock(&pw->mu);
	*out = pw->stats;
	pthread_mutex_unlock(&pw->mu);
}

void
repo_pack_writer_free(RepoPackWriter *pw)
{
	if (pw == NULL)
		return;
	/* Wait for uploads in flight (other threads may still be finishing one). */
	pthread_mutex_lock(&pw->mu);
	while (pw->uploading > 0)
		pthread_cond_wait(&pw->cond, &pw->mu);
	pthread_mutex_unlock(&pw->mu);
	open_pack_free(pw->cur);
	pthread_mutex_destroy(&pw->mu);
	pthread_cond_destroy(&pw->cond);
	pv_free(pw);
}
