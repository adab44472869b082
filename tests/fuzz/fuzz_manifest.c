/*
 * fuzz_manifest.c: a hostile manifest object (section 7) read the way every
 * command reads one: stored in a scratch repository under snapshots/<id>
 * and loaded with repo_manifest_load (blob decode, JSON, shape checks, id,
 * tree blob list), then its item list opened and read as far as it goes
 * (its tree blobs are not in the scratch repository, so that ends in an
 * error, never a crash).
 *
 * The input is the stored object when it decodes as one (the seed corpus
 * holds real manifests), else the JSON text, which is then encoded.  The
 * object is named by the document's own id when it has a valid one, so the
 * fuzzer gets past the "id equals name" check.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "common/fs.h"
#include "common/mem.h"
#include "repo/blob.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static Repo *repo;
static char *dir;

static void
cleanup(void)
{
	repo_free(repo);
	if (dir != NULL)
		pv_fs_remove_tree(dir);
	pv_free(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* FUZZ_SCRATCH (run-fuzz.sh points it at a tmpfs): every run writes an object */
	const char *base = getenv("FUZZ_SCRATCH") ? getenv("FUZZ_SCRATCH") : getenv("TMPDIR");
	char *url;

	fuzz_setup();
	dir = pv_asprintf("%s/pgvault-fuzz-manifest-XXXXXX", base && base[0] ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	url = pv_fs_path_join(dir, "repo");
	if (repo_init(&repo, url, &(RepoInitOpts) {.compression = "zstd:1"}) != 0)
	{
		fprintf(stderr, "fuzz_manifest: cannot create a scratch repository: %s\n", pv_error_msg());
		abort();
	}
	pv_free(url);
	atexit(cleanup);
	return 0;
}

/* The id the document claims, if valid; else a fixed one. */
static void
pick_name(char out[REPO_BACKUP_ID_LEN + 1], const unsigned char *plain, size_t len)
{
	json_t *doc = json_loadb((const char *) plain, len, 0, NULL);
	const char *id = json_string_value(json_object_get(doc, "id"));

	snprintf(out, REPO_BACKUP_ID_LEN + 1, "%s",
			 id != NULL && repo_backup_id_valid(id) ? id : "20260101T000000Z-000000");
	json_decref(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Buf plain = PV_BUF_INIT, stored = PV_BUF_INIT;
	char name[REPO_BACKUP_ID_LEN + 1], key[16 + REPO_BACKUP_ID_LEN];
	RepoManifest *m = NULL;
	RepoItemIter *it = NULL;

	if (repo_meta_decode(repo, data, size, &plain) == 0)
		buf_append(&stored, data, size);
	else
	{
		buf_append(&plain, data, size);
		if (repo_meta_encode(repo, data, size, &stored) != 0)
			abort();
	}
	pick_name(name, plain.data, plain.len);
	snprintf(key, sizeof(key), "snapshots/%s", name);
	if (storage_put(repo_storage(repo), key, stored.data, stored.len, 0) != 0)
		abort();
	if (repo_manifest_load(&m, repo, name) == 0)
	{
		size_t ntree;
		const RepoItem *item;

		if (strcmp(repo_manifest_id(m), name) != 0)
			abort();
		(void) repo_manifest_kind(m);
		(void) repo_manifest_source(m);
		(void) repo_manifest_host(m);
		(void) repo_manifest_parent(m);
		(void) repo_manifest_start_time(m);
		(void) repo_manifest_totals(m);
		(void) repo_manifest_metadata(m);
		(void) repo_manifest_tree(m, &ntree);
		if (repo_item_iter_new(&it, repo, m) == 0)
			while (repo_item_iter_next(it, &item) == 0 && item != NULL)
				;
	}
	storage_delete(repo_storage(repo), key);
	pv_error_clear();
	repo_item_iter_free(it);
	repo_manifest_free(m);
	buf_free(&plain);
	buf_free(&stored);
	return 0;
}
