/*
 * fuzz_index_file.c: a hostile index file (section 6).  The input is the
 * stored object (a blob, decoded first) or, when that fails, the plaintext
 * itself; the "PVIX" records are parsed and every pack's entries are added
 * to an in-memory index, then looked up again and walked, as loading the
 * repository's index does.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "repo/blob.h"
#include "repo/index.h"

#include <stdlib.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

static int
add_cb(const unsigned char pack_id[REPO_ID_LEN], const RepoPackEntry *entries, size_t n,
	   void *payload)
{
	RepoIndex *idx = payload;

	repo_index_add_pack(idx, pack_id, entries, n, false);
	for (size_t k = 0; k < n; k++)
		if (!repo_index_lookup(idx, entries[k].id, NULL))
			abort();
	return 0;
}

static int
walk_cb(const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit, void *payload)
{
	(*(size_t *) payload)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Buf plain = PV_BUF_INIT;
	RepoIndex *idx = repo_index_new();
	const unsigned char *p = data;
	size_t len = size, walked = 0;

	if (repo_blob_decode(&plain, NULL, NULL, 0, data, size, 0) == 0)
	{
		p = plain.data;
		len = plain.len;
	}
	if (repo_index_file_parse(p, len, add_cb, idx) == 0)
	{
		RepoIndexFlush *f;

		repo_index_foreach(idx, walk_cb, &walked);
		if (walked != repo_index_count(idx))
			abort();
		/* and written back out, as a flush does */
		f = repo_index_flush_begin(idx);
		repo_index_flush_end(idx, f, true);
	}
	pv_error_clear();
	repo_index_free(idx);
	buf_free(&plain);
	return 0;
}
