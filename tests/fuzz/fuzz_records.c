/*
 * fuzz_records.c: the records commands keep under records/ (ops/catalog.h,
 * ops/joblog.h) and read back for list, show, status and log.  The first
 * input byte picks what the rest is:
 *   0, 1, 2: the body of a verify, drill or restore record, read with
 *      catalog_records_list + catalog_record_read, shown the way "show"
 *      does (catalog_view_details, catalog_view_print_backup) and used as
 *      drills and restores use them (drill_restore_estimate, for a backup
 *      of kind "file", source "test");
 *   3: a pin object, read with catalog_pins (details);
 *   4: a job record (records/jobs/), read with joblog_read_repo, with and
 *      without a filter;
 *   5: the local job log (one JSON entry a line), read with joblog_read_file;
 *   6: the name of a record (what a listing returns), listed by every
 *      reader above.
 * Records are metadata objects in a scratch repository.
 */
#include "fuzz_common.h"

#include "ops/catalog.h"
#include "ops/catalog_view.h"
#include "ops/drill.h"
#include "ops/joblog.h"
#include "repo/manifest.h"
#include "repo/writer.h"

#include <stdio.h>

#define BACKUP "20260101T000000Z-000000"
#define RECORD "20260101T000000.000Z-abcdef"

static Repo *repo;
static char *logpath;
static FILE *devnull;
static RepoManifest *manifest;	/* a backup for drill_restore_estimate */

/* A one-item backup of kind "file", source "test", loaded into manifest. */
static void
backup_make(void)
{
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;
	RepoItemSpec spec = {.name = "a", .type = "stream", .chunk_size = 4096};

	if (repo_writer_new(&w, repo, &(RepoWriterOpts) {.kind = "file", .source = "test", .jobs = 1}) != 0 ||
		repo_writer_item_begin(&it, w, &spec) != 0 || repo_writer_item_write(it, "hello", 5) != 0 ||
		repo_writer_item_end(it, NULL) != 0 || repo_writer_commit(w, NULL) != 0 ||
		repo_manifest_load(&manifest, repo, repo_writer_id(w)) != 0)
	{
		fprintf(stderr, "fuzz_records: cannot write a backup: %s\n", pv_error_msg());
		abort();
	}
	repo_writer_free(w);
}

static const char *const keys[] = {
	"records/verify/" BACKUP "/" RECORD ".ok",
	"records/drills/" BACKUP "/" RECORD ".failed",
	"records/restores/" BACKUP "/" RECORD ".ok",
	"records/pins/" BACKUP,
	"records/jobs/" BACKUP ".success",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir;

	fuzz_setup();
	repo = fuzz_scratch_repo("records", &dir);
	logpath = pv_fs_path_join(dir, "job.log");
	devnull = fopen("/dev/null", "w");
	backup_make();
	return 0;
}

static void
read_all(void)
{
	static const CatalogType types[] = {CATALOG_VERIFY, CATALOG_DRILL, CATALOG_RESTORE};
	JobLogFilter f = {.since = 1, .until = (PvTime) 4102444800 * PV_USEC_PER_SEC, .outcome = "success",
	.type = "logical", .limit = 3};
	CatalogPinList pins = {0};
	json_t *backup, *jobs = NULL, *est = NULL;

	for (size_t t = 0; t < PV_ARRAY_LEN(types); t++)
	{
		CatalogRecordList l = {0};

		if (catalog_records_list(repo, types[t], NULL, &l) == 0)
			for (size_t i = 0; i < l.n; i++)
			{
				json_t *doc = NULL, *s = catalog_record_summary_json(&l.items[i]);
				char cell[64];

				(void) catalog_record_read(repo, &l.items[i], &doc);
				(void) catalog_record_cell(cell, sizeof(cell), s, "BAD", 1800000000 * PV_USEC_PER_SEC);
				json_decref(doc);
				json_decref(s);
			}
		catalog_records_free(&l);
		pv_error_clear();
	}
	(void) drill_restore_estimate(repo, manifest, &est);
	json_decref(est);
	pv_error_clear();
	backup = json_pack("{s:s, s:s, s:{}, s:{}}", "id", BACKUP, "kind", "logical", "verify", "drill");
	catalog_view_details(backup, repo);
	catalog_view_print_backup(devnull, backup, "UTC", 1800000000 * PV_USEC_PER_SEC);
	json_decref(backup);
	pv_error_clear();
	(void) catalog_pins(repo, true, &pins);
	catalog_pins_free(&pins);
	pv_error_clear();
	(void) joblog_read_repo(&jobs, repo, NULL);
	json_decref(jobs);
	jobs = NULL;
	(void) joblog_read_repo(&jobs, repo, &f);
	json_decref(jobs);
	pv_error_clear();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned pick;

	if (size == 0)
		return 0;
	pick = data[0] % 7;
	data++;
	size--;
	if (pick < PV_ARRAY_LEN(keys))
	{
		fuzz_put_meta(repo, keys[pick], data, size);
		read_all();
		storage_delete(repo_storage(repo), keys[pick]);
	}
	else if (pick == 5)
	{
		json_t *out = NULL;
		JobLogFilter f = {.source = "db1", .limit = 2};

		if (pv_fs_write_atomic(logpath, data, size, 0600) != 0)
			abort();
		(void) joblog_read_file(&out, logpath, NULL);
		json_decref(out);
		out = NULL;
		(void) joblog_read_file(&out, logpath, &f);
		json_decref(out);
	}
	else
	{
		/* a name under records/ (a listing gives any key the storage allows) */
		char *name = pv_strndup((const char *) data, size);
		char *key = pv_asprintf("records/%s", name);
		static const char body[] = "{\"record\":{\"format\":\"pgvault-record\"},\"time\":\"x\"}";
		Buf stored = PV_BUF_INIT;

		if (repo_meta_encode(repo, body, sizeof(body) - 1, &stored) != 0)
			abort();
		if (memchr(data, '\0', size) == NULL &&
			storage_put(repo_storage(repo), key, stored.data, stored.len, 0) == 0)
		{
			read_all();
			storage_delete(repo_storage(repo), key);
		}
		buf_free(&stored);
		pv_free(key);
		pv_free(name);
	}
	pv_error_clear();
	return 0;
}
