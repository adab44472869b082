/*
 * archive.c: the WAL archive in a repository (see archive.h for the layout
 * and the reasons behind it).
 *
 * Durability and safety rules of archive-push:
 *   1. The object is written with STORAGE_PUT_NO_OVERWRITE, which the
 *      storage makes atomic and durable: once pgwal_push returns 0 the file
 *      survives a crash, and PostgreSQL may recycle its segment.
 *   2. When the name is taken, the stored object is read back, checked and
 *      compared byte for byte: equal content is success (archive_command
 *      may be retried after a crash between our write and the server noting
 *      it), different content is PV_EEXISTS and nothing is written.
 *   3. A segment whose header names another database system than the one
 *      recorded for the source is refused before anything is written.
 * Memory: the file is mapped, not copied (a segment is 16 MiB by default,
 * and fresh memory is what a push spends most on): its header and the
 * mapped bytes are compressed as one stream (repo_blob_encode2), so a plain
 * repository holds the file once (mapped, in the page cache) plus its
 * stored form; an encrypted one adds the plaintext layout.  The server
 * neither changes nor removes a segment while archive_command runs on it;
 * if something else truncated it under us, the push would die of SIGBUS
 * before anything was stored (the put is atomic), and the server retries.
 */
#include "pg/wal/archive.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "repo/blob.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* XLogLongPageHeaderData (access/xlog_internal.h), native = little-endian here. */
#define XLP_LONG_HEADER 0x0002
#define XLP_INFO_OFF 2
#define XLP_PAGEADDR_OFF 8
#define XLP_SYSID_OFF 24
#define XLP_SEG_SIZE_OFF 32
#define XLP_BLCKSZ_OFF 36
#define XLP_LONG_HEADER_LEN 40

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int
pgwal_segment_header_read(PgWalSystem *out, const char *name, const unsigned char *data,
						  size_t len)
{
	uint32_t tli, seg_size, blcksz;
	uint64_t segno, pageaddr, sysid;

	if (len < XLP_LONG_HEADER_LEN)
		return pv_error_set(PV_ECORRUPT, "WAL segment '%s' is too short (%zu bytes)", name, len);
	if ((pv_read_u16le(data + XLP_INFO_OFF) & XLP_LONG_HEADER) == 0)
		return pv_error_set(PV_ECORRUPT, "WAL segment '%s' does not start with a segment header",
							name);
	sysid = pv_read_u64le(data + XLP_SYSID_OFF);
	seg_size = pv_read_u32le(data + XLP_SEG_SIZE_OFF);
	blcksz = pv_read_u32le(data + XLP_BLCKSZ_OFF);
	pageaddr = pv_read_u64le(data + XLP_PAGEADDR_OFF);
	if (!pgwal_segment_size_valid(seg_size) || blcksz < 1024 || blcksz > 65536 ||
		(blcksz & (blcksz - 1)) != 0 || sysid == 0)
		return pv_error_set(PV_ECORRUPT, "WAL segment '%s' has an invalid segment header", name);
	if (len != seg_size)
		return pv_error_set(PV_ECORRUPT,
							"WAL segment '%s' is %zu bytes long, but its header says %" PRIu32,
							name, len, seg_size);
	if (pgwal_segment_parse(&tli, &segno, name, seg_size) < 0)
		return pv_error_set(PV_ECORRUPT, "'%s' is not a WAL segment name for %" PRIu32
							"-byte segments", name, seg_size);
	if (pageaddr != segno * seg_size)
		return pv_error_set(PV_ECORRUPT,
							"WAL segment '%s' holds the WAL of another segment (its first page is "
							"at %" PRIX32 "/%08" PRIX32 ")", name, (uint32_t) (pageaddr >> 32),
							(uint32_t) pageaddr);
	out->system_identifier = sysid;
	out->segment_size = seg_size;
	return 0;
}

/* ---- archive.info ---- */

int
pgwal_system_read(Repo *repo, const char *source, PgWalSystem *out)
{
	char *key = pgwal_info_key(source);
	Buf stored = PV_BUF_INIT, plain = PV_BUF_INIT;
	json_t *doc = NULL;
	const char *sysid;
	uint64_t segsize;
	char *end;
	int rc;

	if ((rc = storage_get(repo_storage(repo), key, &stored)) < 0)
		goto done;
	if ((rc = repo_meta_decode(repo, stored.data, stored.len, &plain)) < 0 ||
		(rc = pv_json_parse(&doc, (const char *) plain.data, plain.len, key)) < 0 ||
		(rc = pv_json_get_str(&sysid, doc, "system_identifier")) < 0 ||
		(rc = pv_json_get_uint(&segsize, doc, "wal_segment_size")) < 0)
	{
		rc = pv_error_prefix(PV_ECORRUPT, "'%s' in repository '%s'", key, repo_url(repo));
		goto done;
	}
	out->system_identifier = strtoull(sysid, &end, 10);
	out->segment_size = segsize;
	if (*end != '\0' || sysid[0] == '\0' || !pgwal_segment_size_valid(segsize))
		rc = pv_error_set(PV_ECORRUPT, "'%s' in repository '%s' is damaged", key, repo_url(repo));
done:
	json_decref(doc);
	buf_free(&stored);
	buf_free(&plain);
	pv_free(key);
	return rc;
}

static int
system_write(Repo *repo, const char *source, const PgWalSystem *sys)
{
	char *key = pgwal_info_key(source);
	char ts[PV_TIME_FORMAT_MAX], idtext[32];
	Buf text = PV_BUF_INIT;
	json_t *doc;
	int rc;

	snprintf(idtext, sizeof(idtext), "%" PRIu64, sys->system_identifier);
	doc = json_pack("{s:i, s:s, s:I, s:s}", "version", 1, "system_identifier", idtext,
					"wal_segment_size", (json_int_t) sys->segment_size,
					"created", pv_time_format_utc(ts, sizeof(ts), pv_time_now()));
	if ((rc = pv_json_to_buf(&text, doc, false)) >= 0)
		rc = repo_meta_put(repo, key, text.data, text.len, STORAGE_PUT_NO_OVERWRITE);
	json_decref(doc);
	buf_free(&text);
	pv_free(key);
	return rc;
}

int
pgwal_system_check(Repo *repo, const char *source, const PgWalSystem *sys, bool create)
{
	PgWalSystem have;
	int rc;

	rc = pgwal_system_read(repo, source, &have);
	if (rc == PV_ENOTFOUND && create)
	{
		rc = system_write(repo, source, sys);
		if (rc == 0)
		{
			pv_log_info("archive of source '%s' now belongs to database system %" PRIu64, source,
						sys->system_identifier);
			return 0;
		}
		if (rc != PV_EEXISTS)
			return rc;
		/* someone else recorded one first: check theirs */
		pv_error_clear();
		rc = pgwal_system_read(repo, source, &have);
	}
	if (rc == PV_ENOTFOUND && !create)
	{
		pv_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	if (have.system_identifier != sys->system_identifier)
	{
		pv_error_set(PV_EREFUSED,
					 "the WAL archive of source '%s' in repository '%s' belongs to database system "
					 "%" PRIu64 ", not to this cluster (system %" PRIu64 ")", source,
					 repo_url(repo), have.system_identifier, sys->system_identifier);
		pv_error_hint("each cluster needs its own source name (--source or [source:NAME]); "
					  "a cluster made by initdb or pg_upgrade is a new system");
		return PV_EREFUSED;
	}
	if (have.segment_size != sys->segment_size)
		return pv_error_set(PV_EREFUSED,
							"the WAL archive of source '%s' holds %" PRIu64 "-byte segments, not %"
							PRIu64, source, have.segment_size, sys->segment_size);
	return 0;
}

/* ---- objects ---- */

static int
object_encode(Repo *repo, const char *key, const unsigned char *data, size_t len, Buf *out)
{
	Buf head = PV_BUF_INIT;
	unsigned char md[32];
	RepoCompress codec;
	int level, rc;

	EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
	buf_append(&head, PGWAL_OBJECT_MAGIC, 4);
	buf_append_byte(&head, 1);
	buf_append(&head, "\0\0\0", 3);
	buf_append_u64le(&head, len);
	buf_append(&head, md, sizeof(md));
	repo_compression(repo, &codec, &level);
	rc = repo_blob_encode2(out, repo_keys(repo), codec, level, key, strlen(key), head.data,
						   head.len, data, len);
	buf_free(&head);
	return rc;
}

/* A file to push: mapped when it can be, else read (empty files, odd filesystems). */
typedef struct WalInput
{
	const unsigned char *data;
	size_t len;
	void *map;					/* NULL: data is buf's */
	Buf buf;
} WalInput;

static int
wal_input_load(WalInput *in, const char *path)
{
	struct stat st;
	int fd;
	int rc;

	memset(in, 0, sizeof(*in));
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
		(uint64_t) st.st_size <= SIZE_MAX)
	{
		void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);

		if (p != MAP_FAILED)
		{
			in->map = p;
			in->data = p;
			in->len = (size_t) st.st_size;
			close(fd);
			return 0;
		}
	}
	if (fd >= 0)
		close(fd);
	/* the error messages of an ordinary read */
	if ((rc = pv_fs_read_file(path, &in->buf)) < 0)
		return rc;
	in->data = in->buf.data;
	in->len = in->buf.len;
	return 0;
}

static void
wal_input_free(WalInput *in)
{
	if (in->map != NULL)
		munmap(in->map, in->len);
	buf_free(&in->buf);
}

/* Decode a stored object into out (the file's bytes); every check of archive.h. */
static int
object_decode(Repo *repo, const char *key, const Buf *stored, Buf *out)
{
	Buf plain = PV_BUF_INIT;
	unsigned char md[32];
	uint64_t len;
	int rc;

	if ((rc = repo_blob_decode(&plain, repo_keys(repo), key, strlen(key), stored->data,
							   stored->len, 0)) < 0)
	{
		rc = pv_error_prefix(PV_ECORRUPT, "WAL object '%s' in repository '%s' is corrupt", key,
							 repo_url(repo));
		goto done;
	}
	if (plain.len < PGWAL_OBJECT_HEADER_LEN || memcmp(plain.data, PGWAL_OBJECT_MAGIC, 4) != 0 ||
		plain.data[4] != 1)
	{
		rc = pv_error_set(PV_ECORRUPT, "WAL object '%s' in repository '%s' has no valid header",
						  key, repo_url(repo));
		goto done;
	}
	len = pv_read_u64le(plain.data + 8);
	EVP_Digest(plain.data + PGWAL_OBJECT_HEADER_LEN, plain.len - PGWAL_OBJECT_HEADER_LEN, md, NULL,
			   EVP_sha256(), NULL);
	if (len != plain.len - PGWAL_OBJECT_HEADER_LEN || memcmp(md, plain.data + 16, 32) != 0)
	{
		rc = pv_error_set(PV_ECORRUPT,
						  "WAL object '%s' in repository '%s' is corrupt: its length or SHA-256 "
						  "does not match", key, repo_url(repo));
		goto done;
	}
	buf_append(out, plain.data + PGWAL_OBJECT_HEADER_LEN, (size_t) len);
done:
	buf_free(&plain);
	return rc;
}

int
pgwal_fetch(Repo *repo, const char *source, const char *name, Buf *out)
{
	PgWalFile wf;
	Buf stored = PV_BUF_INIT;
	char *key = NULL;
	int rc;

	if ((rc = pgwal_source_check(source)) < 0 || (rc = pgwal_file_parse(&wf, name)) < 0)
		return rc;
	key = pgwal_object_key(source, name, wf.timeline);
	rc = storage_get(repo_storage(repo), key, &stored);
	if (rc == PV_ENOTFOUND)
		rc = pv_error_set(PV_ENOTFOUND, "WAL file '%s' is not in the archive of source '%s'",
						  name, source);
	else if (rc < 0)
		rc = pv_error_prefix(rc, "cannot read WAL file '%s' from repository '%s'", name,
							 repo_url(repo));
	else
		rc = object_decode(repo, key, &stored, out);
	buf_free(&stored);
	pv_free(key);
	return rc;
}

int
pgwal_push(Repo *repo, const char *source, const char *path, PgWalPushResult *out)
{
	const char *name = base_name(path);
	PgWalPushResult res = {0};
	PgWalFile wf;
	PgWalSystem sys;
	WalInput file = {0};
	Buf stored = PV_BUF_INIT, have = PV_BUF_INIT;
	char *key = NULL;
	int rc;

	if ((rc = pgwal_source_check(source)) < 0 || (rc = pgwal_file_parse(&wf, name)) < 0)
		goto done;
	if ((rc = wal_input_load(&file, path)) < 0)
		goto done;
	res.size = file.len;
	/* Rule 3: a segment names its system; check it before writing anything. */
	if (wf.kind == PGWAL_FILE_SEGMENT || wf.kind == PGWAL_FILE_PARTIAL)
	{
		if ((rc = pgwal_segment_header_read(&sys, name, file.data, file.len)) < 0 ||
			(rc = pgwal_system_check(repo, source, &sys, true)) < 0)
			goto done;
	}
	key = pgwal_object_key(source, name, wf.timeline);
	if ((rc = object_encode(repo, key, file.data, file.len, &stored)) < 0)
		goto done;
	rc = storage_put(repo_storage(repo), key, stored.data, stored.len, STORAGE_PUT_NO_OVERWRITE);
	if (rc == 0)
	{
		res.stored = stored.len;
		goto done;
	}
	if (rc != PV_EEXISTS)
	{
		rc = pv_error_prefix(rc, "cannot archive WAL file '%s' in repository '%s'", name,
							 repo_url(repo));
		goto done;
	}
	/* Rule 2: already there.  The same bytes are success; anything else is loud. */
	pv_error_clear();
	if ((rc = pgwal_fetch(repo, source, name, &have)) < 0)
	{
		rc = pv_error_prefix(rc, "WAL file '%s' is already archived but cannot be compared", name);
		goto done;
	}
	if (have.len == file.len && memcmp(have.data, file.data, file.len) == 0)
	{
		pv_log_detail("WAL file '%s' was already archived with the same content", name);
		res.already_archived = true;
		goto done;
	}
	rc = pv_error_set(PV_EEXISTS,
					  "WAL file '%s' is already archived for source '%s' in repository '%s' with "
					  "different content; nothing was overwritten", name, source, repo_url(repo));
	pv_error_hint("two clusters may be archiving under the same source name, or a restored "
				  "cluster is archiving on its source's timeline: give each cluster its own "
				  "source, and keep archive_mode off on test restores");
done:
	if (rc == 0 && out != NULL)
		*out = res;
	wal_input_free(&file);
	buf_free(&stored);
	buf_free(&have);
	pv_free(key);
	return rc;
}

int
pgwal_get(Repo *repo, const char *source, const char *name, const char *dest)
{
	Buf data = PV_BUF_INIT;
	int rc;

	if ((rc = pgwal_fetch(repo, source, name, &data)) < 0)
		goto done;
	/* Not PV_ENOTFOUND for a missing directory: that would read as "not archived". */
	if ((rc = pv_fs_write_atomic(dest, data.data, data.len, 0600)) < 0)
		rc = pv_error_prefix(rc == PV_ENOTFOUND ? PV_EIO : rc, "cannot write WAL file '%s'", name);
done:
	buf_free(&data);
	return rc;
}

int
pgwal_exists(Repo *repo, const char *source, const char *name, bool *out)
{
	PgWalFile wf;
	char *key;
	int rc;

	if ((rc = pgwal_source_check(source)) < 0 || (rc = pgwal_file_parse(&wf, name)) < 0)
		return rc;
	key = pgwal_object_key(source, name, wf.timeline);
	rc = storage_exists(repo_storage(repo), key, out);
	pv_free(key);
	return rc;
}

typedef struct ListCtx
{
	size_t prefix_len;
	PgWalListFn fn;
	void *payload;
} ListCtx;

static int
list_one(const char *key, const StorageInfo *info, void *payload)
{
	ListCtx *lc = payload;
	const char *rest = key + lc->prefix_len;
	const char *slash = strrchr(rest, '/');
	const char *name = slash ? slash + 1 : rest;
	PgWalFile wf;

	if (pgwal_file_parse(&wf, name) < 0)
	{
		pv_error_clear();		/* archive.info and anything foreign */
		return 0;
	}
	return lc->fn(name, info->size, lc->payload);
}

int
pgwal_list(Repo *repo, const char *source, uint32_t timeline, PgWalListFn fn, void *payload)
{
	char *prefix;
	ListCtx lc = {0, fn, payload};
	int rc;

	if ((rc = pgwal_source_check(source)) < 0)
		return rc;
	prefix = pgwal_object_prefix(source, timeline);
	lc.prefix_len = strlen(prefix);
	rc = storage_list(repo_storage(repo), prefix, list_one, &lc);
	pv_free(prefix);
	return rc;
}
