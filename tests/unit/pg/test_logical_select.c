/*
 * test_logical_select.c: choosing tables of a backup's catalog by pg_dump
 * patterns, offline (pgcatalog_select in pg/logical/archive.h): folding,
 * quotes, wildcards, the search_path rule for unqualified patterns, owned
 * sequences following their table, and the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "pg/logical/archive.h"

#include <jansson.h>
#include <string.h>

typedef struct Fixture
{
	PgCatalog cat;
	json_t *meta;
	PgArchiveDb db;
} Fixture;

static int
setup(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->cat.tables = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]",
							  "schema", "public", "name", "orders",
							  "schema", "archive", "name", "orders",
							  "schema", "app", "name", "values",
							  "schema", "Odd Schema", "name", "My \"Quoted\" Table",
							  "schema", "app", "name", "Orders2");
	f->cat.sequences = json_pack("[{s:s, s:s, s:s}, {s:s, s:s}]",
								 "schema", "public", "name", "orders_id_seq", "owned_by", "orders",
								 "schema", "public", "name", "free_seq");
	f->cat.matviews = json_array();
	f->meta = json_pack("{s:s, s:[s, s]}", "database", "shop", "search_path", "app", "public");
	f->db.meta = f->meta;
	f->db.name = "shop";
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	pgcatalog_clear(&f->cat);
	json_decref(f->meta);
	pv_free(f);
	return 0;
}

/* Select with patterns; "0/1" per table into out. */
static int
select_str(Fixture *f, char *out, const char *p1, const char *p2)
{
	PgPatterns pats = {0};
	bool *sel = NULL;
	int rc;

	pgfilter_patterns_add(&pats, p1);
	if (p2)
		pgfilter_patterns_add(&pats, p2);
	rc = pgcatalog_select(&sel, &f->cat, &f->db, &pats);
	out[0] = '\0';
	for (size_t i = 0; rc == PV_OK && i < json_array_size(f->cat.tables); i++)
		strcat(out, sel[i] ? "1" : "0");
	pv_free(sel);
	pgfilter_patterns_clear(&pats);
	return rc;
}

static void
test_patterns(void **state)
{
	Fixture *f = *state;
	char got[16];

	assert_int_equal(select_str(f, got, "orders", NULL), 0);		/* visible: public, not archive */
	assert_string_equal(got, "10000");
	assert_int_equal(select_str(f, got, "ORDERS", NULL), 0);		/* folded */
	assert_string_equal(got, "10000");
	assert_int_equal(select_str(f, got, "*.orders", NULL), 0);
	assert_string_equal(got, "11000");
	assert_int_equal(select_str(f, got, "app.*", NULL), 0);
	assert_string_equal(got, "00101");
	assert_int_equal(select_str(f, got, "\"Orders2\"", NULL), 0);	/* quoted: literal, visible in app */
	assert_string_equal(got, "00001");
	assert_int_equal(select_str(f, got, "\"Odd Schema\".\"My \"\"Quoted\"\" Table\"", "public.order?"), 0);
	assert_string_equal(got, "10010");
	assert_int_equal(select_str(f, got, "shop.app.values", NULL), 0);
	assert_string_equal(got, "00100");
}

static void
test_errors(void **state)
{
	Fixture *f = *state;
	char got[16];

	assert_int_equal(select_str(f, got, "orders", "nope*"), PV_ENOTFOUND);
	assert_string_equal(pv_error_msg(), "no matching tables were found for pattern 'nope*'");
	assert_int_equal(select_str(f, got, "values", NULL), 0);			/* app is on the search_path */
	assert_int_equal(select_str(f, got, "other.app.values", NULL), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "cross-database references are not implemented: other.app.values");
	assert_int_equal(select_str(f, got, "a.b.c.d", NULL), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "improper qualified name (too many dotted names): a.b.c.d");
}

static void
test_owned_sequences(void **state)
{
	Fixture *f = *state;
	PgPatterns pats = {0};
	bool *sel = NULL;

	pgfilter_patterns_add(&pats, "public.orders");
	assert_int_equal(pgcatalog_select(&sel, &f->cat, &f->db, &pats), 0);
	assert_true(pgcatalog_seq_selected(&f->cat, sel, json_array_get(f->cat.sequences, 0)));
	assert_false(pgcatalog_seq_selected(&f->cat, sel, json_array_get(f->cat.sequences, 1)));
	pv_free(sel);
	pgfilter_patterns_clear(&pats);
}

/*
 * A partitioned table comes with its partitions, at any depth (catalog
 * "partition_of"); a partition selected alone does not bring its parent.
 */
static void
test_partitions_follow(void **state)
{
	Fixture *f = *state;
	char got[16];
	/* a sub-partition listed before its parent, which lives in another schema */
	json_t *more = json_pack("[{s:s, s:s}, {s:s, s:s, s:{s:s, s:s}}, {s:s, s:s, s:{s:s, s:s}},"
							 " {s:s, s:s, s:{s:s, s:s}}]",
							 "schema", "app", "name", "parted",
							 "schema", "app", "name", "parted_2024_h0",
							 "partition_of", "schema", "other", "name", "parted_2024",
							 "schema", "other", "name", "parted_2024",
							 "partition_of", "schema", "app", "name", "parted",
							 "schema", "app", "name", "Orders3",
							 "partition_of", "schema", "app", "name", "Orders2");

	json_array_extend(f->cat.tables, more);
	json_decref(more);
	assert_int_equal(json_array_size(f->cat.tables), 9);
	assert_int_equal(select_str(f, got, "app.parted", NULL), 0);
	assert_string_equal(got, "000001110");
	assert_int_equal(select_str(f, got, "other.parted_2024", NULL), 0);
	assert_string_equal(got, "000000110");
	assert_int_equal(select_str(f, got, "app.parted_2024_h0", NULL), 0);
	assert_string_equal(got, "000000100");
	assert_int_equal(select_str(f, got, "\"Orders2\"", NULL), 0);
	assert_string_equal(got, "000010001");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_patterns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owned_sequences, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partitions_follow, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
