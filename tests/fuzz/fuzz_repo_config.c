/*
 * fuzz_repo_config.c: a repository's config object (repo.c, format
 * section 3) as repo_open reads it: the input replaces the config of a
 * scratch repository, which is then opened.  An encrypted config gets a
 * passphrase, but the scratch repository has no key file for it, so that
 * ends in an error, never a crash.
 */
#include "fuzz_common.h"

#include "repo/repo.h"

static Repo *repo;
static char *url;

static int
passphrase(char **out, void *payload)
{
	(void) payload;
	*out = pv_strdup("fuzz-passphrase");
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir;

	fuzz_setup();
	repo = fuzz_scratch_repo("config", &dir);
	url = pv_fs_path_join(dir, "repo");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Repo *r = NULL;

	if (storage_put(repo_storage(repo), "config", data, size, 0) != 0)
		abort();
	if (repo_open(&r, url, passphrase, NULL) == 0)
	{
		(void) repo_id(r);
		(void) repo_config_chunker(r);
		(void) repo_is_encrypted(r);
	}
	pv_error_clear();
	repo_free(r);
	return 0;
}
