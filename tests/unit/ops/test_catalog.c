/*
 * test_catalog.c: records in a real repository (posix driver in a scratch
 * directory, plain and encrypted): pins, verify records and drill reports
 * (ops/catalog.h), and the expire plan over manifests with chosen start
 * times (retention_plan_build): groups by source, kind and database,
 * pins honoured, unreadable manifests kept, filters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../repo/repo_test.h"
#include "common/json.h"
#include "config/config.h"
#include "ops/catalog.h"
#include "ops/drill.h"
#include "ops/retention.h"
#include "repo/verify.h"
#include "storage/storage.h"

#include <unistd.h>

typedef struct Fixture
{
	char *dir;
	Repo *repo;
} Fixture;

static int
setup_plain(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->dir = rt_tmpdir();
	f->repo = rt_repo_new(f->dir, "repo", false, "zstd:3", 0, NULL);
	*state = f;
	return 0;
}

static int
setup_encrypted(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->dir = rt_tmpdir();
	f->repo = rt_repo_new(f->dir, "repo", true, "zstd:3", 0, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	repo_free(f->repo);
	rt_tmpdir_free(f->dir);
	pv_free(f);
	return 0;
}

/* A manifest with no items, started at time (UTC text), of a kind/source/database. */
static void
manifest_add(Repo *repo, const char *id, const char *time, const char *kind, const char *source,
			 const char *database)
{
	json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:{}, s:{s:i, s:[]}}", "format", 1, "id", id,
							"kind", kind, "source", source, "host", "test", "start_time", time,
							"stop_time", time, "totals", "items", "count", 0, "blobs");

	json_object_set_new(doc, "metadata", database ? json_pack("{s:s}", "database", database) : json_object());
	assert_int_equal(repo_manifest_write(repo, doc), PV_OK);
	json_decref(doc);
}

static int
count_keys_cb(const char *key, const StorageInfo *info, void *payload)
{
	(void) key;
	(void) info;
	(*(int *) payload)++;
	return 0;
}

static int
count_keys(Repo *repo, const char *prefix)
{
	int n = 0;

	assert_int_equal(storage_list(repo_storage(repo), prefix, count_keys_cb, &n), PV_OK);
	return n;
}

/* ---- pins ---- */

static void
test_pins(void **state)
{
	Fixture *f = *state;
	CatalogPinList pins;

	manifest_add(f->repo, "20250601T120000Z-aaaaaa", "2025-06-01T12:00:00Z", "logical", "prod", "app");
	manifest_add(f->repo, "20250602T120000Z-bbbbbb", "2025-06-02T12:00:00Z", "logical", "prod", "app");

	assert_int_equal(catalog_pin(f->repo, "20250601T120000Z-aaaaaa", "case 4711"), PV_OK);
	assert_int_equal(catalog_pin(f->repo, "20250601T120000Z-aaaaaa", "again"), PV_EEXISTS);
	assert_string_equal(pv_error_msg(), "backup '20250601T120000Z-aaaaaa' is already pinned");
	assert_int_equal(catalog_pin(f->repo, "20990101T000000Z-cccccc", NULL), PV_ENOTFOUND);
	assert_true(strstr(pv_error_msg(), "no backup '20990101T000000Z-cccccc' in repository") != NULL);
	assert_int_equal(catalog_pin(f->repo, "latest", NULL), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "'latest' is not a backup id");
	assert_int_equal(catalog_pin(f->repo, "20250602T120000Z-bbbbbb", NULL), PV_OK);

	assert_int_equal(catalog_pins(f->repo, true, &pins), PV_OK);
	assert_int_equal(pins.n, 2);
	assert_string_equal(pins.items[0].id, "20250601T120000Z-aaaaaa");
	assert_string_equal(pins.items[0].note, "case 4711");	/* the first note stayed */
	assert_string_equal(pins.items[1].note, "");
	assert_true(pins.items[0].time > 0 && pins.items[0].user[0] != '\0');
	assert_true(catalog_pins_has(&pins, "20250602T120000Z-bbbbbb"));
	assert_false(catalog_pins_has(&pins, "20250603T120000Z-bbbbbb"));
	catalog_pins_free(&pins);

	assert_int_equal(catalog_unpin(f->repo, "20250602T120000Z-bbbbbb"), PV_OK);
	assert_int_equal(catalog_unpin(f->repo, "20250602T120000Z-bbbbbb"), PV_ENOTFOUND);
	assert_string_equal(pv_error_msg(), "backup '20250602T120000Z-bbbbbb' is not pinned");
	assert_int_equal(catalog_pins(f->repo, false, &pins), PV_OK);
	assert_int_equal(pins.n, 1);
	catalog_pins_free(&pins);

	/* a damaged pin still holds (and says so), a foreign name is ignored */
	assert_int_equal(storage_put(repo_storage(f->repo), "records/pins/20250602T120000Z-bbbbbb", "junk", 4, 0),
					 PV_OK);
	assert_int_equal(storage_put(repo_storage(f->repo), "records/pins/README", "x", 1, 0), PV_OK);
	assert_int_equal(catalog_pins(f->repo, true, &pins), PV_OK);
	assert_int_equal(pins.n, 2);
	assert_int_equal(pins.items[1].time, 0);
	catalog_pins_free(&pins);
}

/* ---- records ---- */

static void
test_records(void **state)
{
	Fixture *f = *state;
	const char *a = "20250601T120000Z-aaaaaa", *b = "20250602T120000Z-bbbbbb";
	char rid[CATALOG_RECORD_ID_LEN + 1];
	CatalogRecordList l;
	CatalogState st;
	json_t *body = json_pack("{s:s, s:I}", "source", "prod", "total_ms", (json_int_t) 1234), *doc = NULL;
	const CatalogRecord *last;

	manifest_add(f->repo, a, "2025-06-01T12:00:00Z", "logical", "prod", "app");
	manifest_add(f->repo, b, "2025-06-02T12:00:00Z", "logical", "prod", "app");
	assert_int_equal(catalog_record_write(f->repo, CATALOG_DRILL, a, false, body, rid), PV_OK);
	assert_true(catalog_record_id_valid(rid));
	assert_false(catalog_record_id_valid("20250601T120000Z-aaaaaa"));
	usleep(2000);						/* record ids have a millisecond resolution */
	assert_int_equal(catalog_record_write(f->repo, CATALOG_DRILL, a, true, body, NULL), PV_OK);
	assert_int_equal(catalog_record_write(f->repo, CATALOG_DRILL, b, true, NULL, NULL), PV_OK);
	assert_int_equal(catalog_record_write(f->repo, CATALOG_DRILL, "nope", true, NULL, NULL), PV_EUSAGE);
	/* a stranger under records/ is ignored */
	assert_int_equal(storage_put(repo_storage(f->repo), "records/drills/notes.txt", "x", 1, 0), PV_OK);

	assert_int_equal(catalog_records_list(f->repo, CATALOG_DRILL, a, &l), PV_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].id, rid);
	assert_false(l.items[0].ok);
	assert_true(l.items[1].ok);
	assert_string_equal(l.items[0].backup, a);
	assert_true(l.items[1].time >= l.items[0].time && l.items[0].time > 0);
	assert_int_equal(catalog_record_read(f->repo, &l.items[0], &doc), PV_OK);
	{
		json_t *rec = json_object_get(doc, "record");

		assert_string_equal(json_string_value(json_object_get(rec, "format")), "pgvault-record");
		assert_string_equal(json_string_value(json_object_get(rec, "type")), "drill");
		assert_string_equal(json_string_value(json_object_get(rec, "backup")), a);
		assert_string_equal(json_string_value(json_object_get(rec, "id")), rid);
		assert_true(json_is_false(json_object_get(rec, "ok")));
	}
	assert_string_equal(json_string_value(json_object_get(doc, "source")), "prod");
	assert_int_equal(json_integer_value(json_object_get(doc, "total_ms")), 1234);
	json_decref(doc);
	/* the caller's object is what was stored (body last went into the second record) */
	assert_int_equal(catalog_record_read(f->repo, &l.items[1], &doc), PV_OK);
	assert_true(json_equal(doc, body));
	json_decref(doc);
	catalog_records_free(&l);

	assert_int_equal(catalog_state_load(&st, f->repo), PV_OK);
	assert_int_equal(st.drills.n, 3);
	last = catalog_state_last(&st, CATALOG_DRILL, a);
	assert_non_null(last);
	assert_true(last->ok);
	assert_null(catalog_state_last(&st, CATALOG_VERIFY, a));
	catalog_state_free(&st);

	/* damaged contents are reported as such */
	{
		CatalogRecord r = {.key = (char *) "records/drills/x"};

		assert_int_equal(storage_put(repo_storage(f->repo), "records/drills/x", "junk", 4, 0), PV_OK);
		assert_int_equal(catalog_record_read(f->repo, &r, &doc), PV_ECORRUPT);
		assert_true(strncmp(pv_error_msg(), "record 'records/drills/x': ", 27) == 0);
	}
	json_decref(body);
}

/* A verify run is recorded per backup; a backup keeps its newest few; expire forgets them. */
static void
test_verify_records(void **state)
{
	Fixture *f = *state;
	const char *a = "20250601T120000Z-aaaaaa", *b = "20250602T120000Z-bbbbbb";
	RepoVerifyReport r;
	CatalogRecordList l;
	char *ids[] = {(char *) a, (char *) b};

	manifest_add(f->repo, a, "2025-06-01T12:00:00Z", "logical", "prod", "app");
	manifest_add(f->repo, b, "2025-06-02T12:00:00Z", "physical", "prod", NULL);
	assert_int_equal(repo_verify(f->repo, &(RepoVerifyOpts) {.jobs = 1}, &r), PV_OK);
	assert_int_equal(r.nbackups, 2);
	/* pretend b was damaged */
	r.backups[1].damaged = true;
	r.backups[1].bad_chunks = 3;
	for (int i = 0; i < CATALOG_VERIFY_KEEP + 2; i++)
		assert_int_equal(catalog_verify_record(f->repo, &r, 42), PV_OK);
	repo_verify_report_free(&r);

	for (int i = 0; i < 2; i++)
	{
		json_t *doc = NULL;

		assert_int_equal(catalog_records_list(f->repo, CATALOG_VERIFY, ids[i], &l), PV_OK);
		assert_int_equal(l.n, CATALOG_VERIFY_KEEP);
		assert_int_equal(l.items[0].ok, i == 0);
		assert_int_equal(catalog_record_read(f->repo, &l.items[l.n - 1], &doc), PV_OK);
		assert_int_equal(json_integer_value(json_object_get(doc, "duration_ms")), 42);
		assert_int_equal(json_integer_value(json_object_get(doc, "bad_chunks")), i == 0 ? 0 : 3);
		json_decref(doc);
		catalog_records_free(&l);
	}
	assert_int_equal(catalog_backup_forget(f->repo, a), PV_OK);
	assert_int_equal(catalog_records_list(f->repo, CATALOG_VERIFY, a, &l), PV_OK);
	assert_int_equal(l.n, 0);
	catalog_records_free(&l);
	assert_int_equal(count_keys(f->repo, "records/verify/"), CATALOG_VERIFY_KEEP);
}

/* ---- the plan ---- */

static void
test_plan(void **state)
{
	Fixture *f = *state;
	static const char conf[] =
		"[global]\n"
		"keep-daily = 2\n"
		"time-zone = UTC\n"
		"[source:prod]\n"
		"retention-physical = weekly=1\n"
		"retention-logical = daily=1\n";
	static const struct
	{
		const char *id, *time, *kind, *source, *db;
		const char *action, *reasons;
	} rows[] = {
		/* prod logical app: daily=1 */
		{"20250601T010000Z-000001", "2025-06-01T01:00:00Z", "logical", "prod", "app", "keep", "pinned"},
		{"20250602T010000Z-000002", "2025-06-02T01:00:00Z", "logical", "prod", "app", "expire", ""},
		{"20250603T010000Z-000003", "2025-06-03T01:00:00Z", "logical", "prod", "app", "keep", "newest,daily"},
		/* prod logical other: another database, its own newest */
		{"20250601T020000Z-000004", "2025-06-01T02:00:00Z", "logical", "prod", "other", "keep", "newest,daily"},
		/* prod physical: weekly=1 */
		{"20250602T030000Z-000005", "2025-06-02T03:00:00Z", "physical", "prod", NULL, "expire", ""},
		{"20250604T030000Z-000006", "2025-06-04T03:00:00Z", "physical", "prod", NULL, "keep", "newest,weekly"},
		/* no source: global keep-daily = 2 */
		{"20250601T040000Z-000007", "2025-06-01T04:00:00Z", "file", "", NULL, "expire", ""},
		{"20250602T040000Z-000008", "2025-06-02T04:00:00Z", "file", "", NULL, "keep", "daily"},
		{"20250603T040000Z-000009", "2025-06-03T04:00:00Z", "file", "", NULL, "keep", "newest,daily"},
	};
	PvConfig *cfg = NULL;
	RetentionPlan plan;
	json_t *j;

	for (size_t i = 0; i < PV_ARRAY_LEN(rows); i++)
		manifest_add(f->repo, rows[i].id, rows[i].time, rows[i].kind, rows[i].source, rows[i].db);
	/* an unreadable manifest is kept and named */
	assert_int_equal(storage_put(repo_storage(f->repo), "snapshots/20250530T000000Z-0000ff", "junk", 4, 0), PV_OK);
	assert_int_equal(catalog_pin(f->repo, "20250601T010000Z-000001", "hold"), PV_OK);
	assert_int_equal(cfg_load_string(&cfg, conf, "t.conf"), PV_OK);

	assert_int_equal(retention_plan_build(&plan, f->repo, cfg, NULL), PV_OK);
	assert_int_equal(plan.nitems, PV_ARRAY_LEN(rows) + 1);
	assert_int_equal(plan.ngroups, 4);
	assert_int_equal(plan.nexpire, 3);
	assert_int_equal(plan.nunreadable, 1);
	assert_string_equal(plan.items[0].id, "20250530T000000Z-0000ff");
	assert_int_equal(plan.items[0].reasons, RETENTION_UNREADABLE);
	assert_non_null(plan.items[0].error);
	for (size_t i = 0; i < PV_ARRAY_LEN(rows); i++)
	{
		const RetentionItem *it = retention_plan_find(&plan, rows[i].id);
		Buf r = PV_BUF_INIT;

		assert_non_null(it);
		retention_reasons_format(it->reasons, &r);
		if (strcmp(buf_cstr(&r), rows[i].reasons) != 0 || (it->reasons != 0) != (strcmp(rows[i].action, "keep") == 0))
			fail_msg("backup %s: got '%s', expected %s '%s'", rows[i].id, buf_cstr(&r), rows[i].action,
					 rows[i].reasons);
		buf_free(&r);
	}
	j = retention_plan_json(&plan);
	assert_int_equal(json_integer_value(json_object_get(j, "expire")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "keep")), 7);
	{
		json_t *g0 = json_array_get(json_object_get(j, "groups"), 0);

		assert_string_equal(json_string_value(json_object_get(g0, "policy")), "daily=1");
		assert_string_equal(json_string_value(json_object_get(g0, "policy_from")), "[source:prod] retention-logical");
		assert_string_equal(json_string_value(json_object_get(g0, "database")), "app");
	}
	{
		json_t *b = json_array_get(json_object_get(j, "backups"), 7);	/* in id order */

		assert_string_equal(json_string_value(json_object_get(b, "id")), "20250603T010000Z-000003");
		assert_string_equal(json_string_value(json_object_get(b, "action")), "keep");
		assert_string_equal(json_string_value(json_object_get(json_object_get(b, "periods"), "daily")),
							"2025-06-03");
	}
	json_decref(j);
	retention_plan_free(&plan);

	/* filters: one source and kind only */
	assert_int_equal(retention_plan_build(&plan, f->repo, cfg, &(RetentionPlanOpts) {.source = "prod",
																					 .kind = "physical"}), PV_OK);
	assert_int_equal(plan.ngroups, 1);
	assert_int_equal(plan.nitems, 3);	/* two physical backups and the unreadable one */
	assert_int_equal(plan.nexpire, 1);
	retention_plan_free(&plan);
	assert_int_equal(retention_plan_build(&plan, f->repo, cfg, &(RetentionPlanOpts) {.source = ""}), PV_OK);
	assert_int_equal(plan.ngroups, 1);
	assert_int_equal(plan.nexpire, 1);
	retention_plan_free(&plan);
	cfg_free(cfg);

	/* a bad policy stops the plan before anything is decided */
	assert_int_equal(cfg_load_string(&cfg, "[global]\nretention-file = daily=x\n", "bad.conf"), PV_OK);
	assert_int_equal(retention_plan_build(&plan, f->repo, cfg, NULL), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "[global] retention-file: invalid retention policy 'daily=x': "
						"'daily=x' is not a count (0 or more)");
	assert_int_equal(plan.nitems, 0);
	cfg_free(cfg);
}

/* restore --dry-run's estimate from earlier drills of the same source and kind */
static void
test_restore_estimate(void **state)
{
	Fixture *f = *state;
	static const struct
	{
		const char *backup, *kind, *source;
		int size, restore_ms, recovery_ms;
		bool integrity;
	} drills[] = {
		{"20250601T010000Z-000001", "physical", "prod", 1000, 100, 40, true},
		{"20250601T010000Z-000001", "physical", "prod", 3000, 300, 60, true},
		{"20250601T010000Z-000001", "physical", "prod", 10, 1000, 1, false},	/* failed: no basis */
		{"20250601T010000Z-000001", "physical", "other", 10, 1000, 1, true},	/* another source */
		{"20250601T010000Z-000001", "logical", "prod", 10, 1000, 1, true},		/* another kind */
	};
	RepoManifest *m = NULL;
	json_t *est = NULL, *doc;

	doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:{}, s:{s:i}, s:{s:i, s:[]}}", "format", 1,
					"id", "20250602T010000Z-000002", "kind", "physical", "source", "prod", "host", "t",
					"start_time", "2025-06-02T01:00:00Z", "stop_time", "2025-06-02T01:00:00Z", "metadata",
					"totals", "logical_bytes", 5000, "items", "count", 0, "blobs");
	assert_int_equal(repo_manifest_write(f->repo, doc), PV_OK);
	json_decref(doc);
	manifest_add(f->repo, "20250601T010000Z-000001", "2025-06-01T01:00:00Z", "physical", "prod", NULL);
	assert_int_equal(repo_manifest_load(&m, f->repo, "20250602T010000Z-000002"), PV_OK);

	/* no drills yet: no estimate */
	assert_int_equal(drill_restore_estimate(f->repo, m, &est), PV_OK);
	assert_null(est);
	for (size_t i = 0; i < PV_ARRAY_LEN(drills); i++)
	{
		json_t *body = json_pack("{s:{s:s, s:s, s:i}, s:{s:i, s:i}, s:b}", "backup", "kind", drills[i].kind,
								 "source", drills[i].source, "size", drills[i].size, "times_ms", "restore",
								 drills[i].restore_ms, "recovery", drills[i].recovery_ms, "integrity_ok",
								 drills[i].integrity);

		assert_int_equal(catalog_record_write(f->repo, CATALOG_DRILL, drills[i].backup, drills[i].integrity,
											  body, NULL), PV_OK);
		json_decref(body);
		usleep(2000);
	}
	assert_int_equal(drill_restore_estimate(f->repo, m, &est), PV_OK);
	assert_non_null(est);
	/* 4000 bytes in 400 ms: 10000 B/s; 5000 bytes take 500 ms, plus the mean recovery (50 ms) */
	assert_int_equal(json_integer_value(json_object_get(est, "bytes_per_second")), 10000);
	assert_int_equal(json_integer_value(json_object_get(est, "recovery_ms")), 50);
	assert_int_equal(json_integer_value(json_object_get(est, "estimate_ms")), 550);
	assert_int_equal(json_array_size(json_object_get(est, "basis")), 2);
	json_decref(est);
	repo_manifest_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pins, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_records, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_records, setup_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_verify_records, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_plan, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_plan, setup_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_restore_estimate, setup_plain, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
