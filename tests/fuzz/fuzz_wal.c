/*
 * fuzz_wal.c: what the WAL archive (pg/wal) reads back from a repository.
 * The first input byte picks the reader, the rest is its input:
 *   0: wal/<source>/archive.info (JSON, a metadata object) with
 *      pgwal_system_read;
 *   1: an archived file's object (header "PVWA" + content, stored as a
 *      blob) with pgwal_fetch, then, when it decodes, the segment header
 *      check of the content with pgwal_segment_header_read;
 *   2: names and LSNs as listings and labels give them: pgwal_file_parse,
 *      pgwal_segment_parse and pgwal_lsn_parse of the text.
 */
#include "fuzz_common.h"

#include "pg/wal/archive.h"
#include "pg/wal/wal.h"
#include "repo/blob.h"

static Repo *repo;

#define SEGMENT "000000010000000000000003"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	repo = fuzz_scratch_repo("wal", NULL);
	return 0;
}

static void
names(const uint8_t *data, size_t size)
{
	char *text = pv_strndup((const char *) data, size);
	PgWalFile wf;
	uint32_t tli;
	uint64_t segno, lsn;

	(void) pgwal_file_parse(&wf, text);
	(void) pgwal_segment_parse(&tli, &segno, text, 16 * 1024 * 1024);
	(void) pgwal_segment_parse(&tli, &segno, text, 1024 * 1024);
	(void) pgwal_lsn_parse(&lsn, text);
	pv_free(text);
}

static void
object(const uint8_t *data, size_t size)
{
	char *key = pgwal_object_key("db1", SEGMENT, 1);
	Buf stored = PV_BUF_INIT, out = PV_BUF_INIT;
	PgWalSystem sys;

	if (repo_blob_encode(&stored, repo_keys(repo), REPO_COMPRESS_NONE, 0, key, strlen(key), data, size) != 0 ||
		storage_put(repo_storage(repo), key, stored.data, stored.len, 0) != 0)
		abort();
	if (pgwal_fetch(repo, "db1", SEGMENT, &out) == 0)
		(void) pgwal_segment_header_read(&sys, SEGMENT, out.data, out.len);
	(void) pgwal_segment_header_read(&sys, SEGMENT, data, size);
	buf_free(&stored);
	buf_free(&out);
	pv_free(key);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PgWalSystem sys;

	if (size == 0)
		return 0;
	switch (data[0] % 3)
	{
		case 0:
			{
				char *key = pgwal_info_key("db1");

				fuzz_put_meta(repo, key, data + 1, size - 1);
				(void) pgwal_system_read(repo, "db1", &sys);
				pv_free(key);
				break;
			}
		case 1:
			object(data + 1, size - 1);
			break;
		default:
			names(data + 1, size - 1);
	}
	pv_error_clear();
	return 0;
}
