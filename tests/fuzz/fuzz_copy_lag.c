/*
 * fuzz_copy_lag.c: a copy-lag record (records/lag/<secondary>/<what>-<id>,
 * copy.h) as status reads it: the input is the record's JSON, stored as a
 * metadata object in a scratch repository and read with
 * repo_copy_lag_list and repo_copy_lag_get.
 */
#include "fuzz_common.h"

#include "repo/copy.h"

static Repo *repo;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	repo = fuzz_scratch_repo("lag", NULL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RepoCopyLagList list = {0};
	RepoCopyLag one;

	fuzz_put_meta(repo, "records/lag/offsite/backup-20260101T000000Z-000000", data, size);
	if (repo_copy_lag_list(repo, NULL, &list) == 0)
		for (size_t i = 0; i < list.n; i++)
			if (strlen(list.items[i].key) == 0 || strlen(list.items[i].secondary) == 0)
				abort();
	pv_error_clear();
	repo_copy_lag_list_free(&list);
	(void) repo_copy_lag_get(repo, "offsite", "backup", "20260101T000000Z-000000", &one);
	pv_error_clear();
	repo_copy_lag_free(&one);
	return 0;
}
