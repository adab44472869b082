/*
 * fuzz_common.h: what every libFuzzer target of pgvault shares: the one-time
 * setup (jansson through pv_malloc, quiet logging) and fixed keys for the
 * encrypted code paths.  Targets treat their input as hostile bytes from a
 * repository and must never crash, leak or read out of bounds: a parser
 * either accepts the input or returns a PV_E* code.
 */
#ifndef PV_FUZZ_COMMON_H
#define PV_FUZZ_COMMON_H

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/fs.h"
#include "common/mem.h"
#include "repo/crypto.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline void
fuzz_setup(void)
{
	pv_json_init();
	pv_log_set_console_level(PV_LOG_OFF);
}

/* Deterministic keys, so a crash found with encryption replays. */
static inline const RepoKeys *
fuzz_keys(void)
{
	static RepoKeys k;
	static int done;

	if (!done)
	{
		for (size_t i = 0; i < sizeof(k.enc_key); i++)
			k.enc_key[i] = (unsigned char) (i * 7 + 1);
		for (size_t i = 0; i < sizeof(k.id_key); i++)
			k.id_key[i] = (unsigned char) (i * 13 + 5);
		done = 1;
	}
	return &k;
}

/*
 * A scratch plain repository for targets that read a record the way a
 * command does (stored object, storage_get, repo_meta_decode, parse):
 * under FUZZ_SCRATCH (run-fuzz.sh points it at a tmpfs) or TMPDIR, removed
 * at exit.  *dir_out (may be NULL) gets its directory (lent).
 */
static char *fuzz_scratch_dir;
static Repo *fuzz_scratch;

static inline void
fuzz_scratch_cleanup(void)
{
	repo_free(fuzz_scratch);
	if (fuzz_scratch_dir != NULL)
		pv_fs_remove_tree(fuzz_scratch_dir);
	pv_free(fuzz_scratch_dir);
}

static inline Repo *
fuzz_scratch_repo(const char *name, const char **dir_out)
{
	const char *base = getenv("FUZZ_SCRATCH") ? getenv("FUZZ_SCRATCH") : getenv("TMPDIR");
	char *url;

	fuzz_scratch_dir = pv_asprintf("%s/pgvault-fuzz-%s-XXXXXX", base && base[0] ? base : "/tmp", name);
	if (mkdtemp(fuzz_scratch_dir) == NULL)
		abort();
	url = pv_fs_path_join(fuzz_scratch_dir, "repo");
	if (repo_init(&fuzz_scratch, url, &(RepoInitOpts) {.compression = "zstd:1"}) != 0)
	{
		fprintf(stderr, "fuzz_%s: cannot create a scratch repository: %s\n", name, pv_error_msg());
		abort();
	}
	pv_free(url);
	atexit(fuzz_scratch_cleanup);
	if (dir_out != NULL)
		*dir_out = fuzz_scratch_dir;
	return fuzz_scratch;
}

/* Store data (a record's plaintext) at key as a metadata object (repo_meta_encode). */
static inline void
fuzz_put_meta(Repo *repo, const char *key, const uint8_t *data, size_t size)
{
	Buf stored = PV_BUF_INIT;

	if (repo_meta_encode(repo, data, size, &stored) != 0 ||
		storage_put(repo_storage(repo), key, stored.data, stored.len, 0) != 0)
		abort();
	buf_free(&stored);
}

#endif
