/*
 * fuzz_lock.c: a lock object (locks/<hex>, lock.h) as another process may
 * have left it: stored in a scratch repository and read back with
 * repo_lock_list, which parses it, judges staleness and formats its times.
 */
#include "fuzz_common.h"

#include "repo/lock.h"

static Repo *repo;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	repo = fuzz_scratch_repo("lock", NULL);
	return 0;
}

static int
seen(const RepoLockInfo *info, void *payload)
{
	size_t *n = payload;

	/* every string must be readable, whatever the object held */
	*n += strlen(info->key) + strlen(info->host) + strlen(info->user) + strlen(info->command);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char key[] = "locks/0123456789abcdef0123456789abcdef";
	size_t n = 0;

	if (storage_put(repo_storage(repo), key, data, size, 0) != 0)
		abort();
	if (repo_lock_list(repo, 300, seen, &n) != 0)
		abort();	/* an unreadable lock is listed as stale, never an error */
	pv_error_clear();
	return 0;
}
