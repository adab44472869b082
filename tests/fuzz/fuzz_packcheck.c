/*
 * fuzz_packcheck.c: the pack-check record (records/packcheck, packcheck.h):
 * its JSON text decoded with repo_packchecks_decode.  A record that decodes
 * must encode with repo_packchecks_encode and decode back to the same
 * entries.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "repo/packcheck.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RepoPackChecks *c = NULL, *again = NULL;
	Buf text = PV_BUF_INIT;

	if (repo_packchecks_decode(&c, (const char *) data, size) == 0)
	{
		repo_packchecks_encode(c, &text);
		if (repo_packchecks_decode(&again, (const char *) text.data, text.len) != 0 ||
			repo_packchecks_count(again) != repo_packchecks_count(c))
			abort();
		/* (encode sorts by id: compare by id, not position) */
		for (size_t i = 0; i < repo_packchecks_count(c); i++)
		{
			const RepoPackCheck *a = repo_packchecks_at(c, i), *b = repo_packchecks_find(again, a->id);

			if (b == NULL || a->time != b->time || a->size != b->size || a->ok != b->ok ||
				repo_packchecks_find(c, a->id) != a)
				abort();
		}
	}
	pv_error_clear();
	repo_packchecks_free(c);
	repo_packchecks_free(again);
	buf_free(&text);
	return 0;
}
