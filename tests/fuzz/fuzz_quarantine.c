/*
 * fuzz_quarantine.c: the quarantine record (records/quarantine,
 * quarantine.h): its JSON text decoded with repo_quarantine_decode.  A
 * record that decodes must encode and decode back to the same pairs, and
 * its filter must leave out exactly those pairs of an index listing.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "repo/index.h"
#include "repo/quarantine.h"

#include <string.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fuzz_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RepoQuarantine *q = NULL, *again = NULL;
	Buf text = PV_BUF_INIT;

	if (repo_quarantine_decode(&q, (const char *) data, size) == 0)
	{
		unsigned char pack[REPO_ID_LEN], id[REPO_ID_LEN];
		RepoPackEntry e = {0};
		RepoIndex *idx = repo_index_new();
		RepoIndexHit hit;

		repo_quarantine_encode(q, &text);
		if (repo_quarantine_decode(&again, (const char *) text.data, text.len) != 0 ||
			repo_quarantine_count(again) != repo_quarantine_count(q))
			abort();
		/* a pair of the input: set aside, so the filter drops it */
		memset(pack, 0xab, sizeof(pack));
		memset(id, 0xcd, sizeof(id));
		memcpy(e.id, id, REPO_ID_LEN);
		e.length = 1;
		e.raw_length = 1;
		repo_quarantine_index_add(q, idx, pack, &e, 1);
		if (repo_index_lookup(idx, id, &hit) == repo_quarantine_has(q, pack, id) ||
			repo_quarantine_has(again, pack, id) != repo_quarantine_has(q, pack, id))
			abort();
		repo_index_free(idx);
	}
	pv_error_clear();
	repo_quarantine_free(q);
	repo_quarantine_free(again);
	buf_free(&text);
	return 0;
}
