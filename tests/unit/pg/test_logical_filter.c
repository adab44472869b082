/*
 * test_logical_filter.c: pg_dump's pattern rules (processSQLNamePattern) as
 * pg/logical/filter.c converts them, and the selection rules of -t/-T/-n/-N
 * and --exclude-table-data over resolved oid sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/mem.h"
#include "pg/logical/filter.h"

#include <string.h>

static void
check(const char *pattern, int maxdots, const char *db, const char *schema, const char *name)
{
	char *d = (char *) 1, *s = (char *) 1, *n = (char *) 1;

	assert_int_equal(pgfilter_pattern_regex(&d, &s, &n, pattern, maxdots), 0);
	if (db)
		assert_string_equal(d, db);
	else
		assert_null(d);
	if (schema)
		assert_string_equal(s, schema);
	else
		assert_null(s);
	if (name)
		assert_string_equal(n, name);
	else
		assert_null(n);
	pv_free(d);
	pv_free(s);
	pv_free(n);
}

static void
test_pattern_rules(void **state)
{
	(void) state;
	check("ORDERS", 2, NULL, NULL, "^(orders)$");					/* folded */
	check("\"ORDERS\"", 2, NULL, NULL, "^(ORDERS)$");				/* quoted: literal */
	check("app.val?es", 2, NULL, "^(app)$", "^(val.es)$");
	check("public.order*", 2, NULL, "^(public)$", "^(order.*)$");
	check("\"Odd Schema\".*", 2, NULL, "^(Odd Schema)$", NULL);		/* * constrains nothing */
	check("\"My \"\"Quoted\"\" Table\"", 2, NULL, NULL, "^(My \"Quoted\" Table)$");
	check("\"a.b\"", 2, NULL, NULL, "^(a\\.b)$");					/* dot inside quotes */
	check("\"a*\"", 2, NULL, NULL, "^(a\\*)$");
	check("x$", 2, NULL, NULL, "^(x\\$)$");						/* $ always escaped */
	check("a[]", 2, NULL, NULL, "^(a\\[])$");
	check("t(1|2)", 2, NULL, NULL, "^(t(1|2))$");					/* regexp passes outside quotes */
	check("mydb.s.t", 2, "^(mydb)$", "^(s)$", "^(t)$");
	check("s.", 2, NULL, "^(s)$", NULL);
	check("App", 1, NULL, "^(app)$", NULL);						/* schema patterns */
	check("mydb.app", 1, "^(mydb)$", "^(app)$", NULL);
}

static void
test_pattern_too_many_dots(void **state)
{
	char *d, *s, *n;

	(void) state;
	assert_int_equal(pgfilter_pattern_regex(&d, &s, &n, "a.b.c.d", 2), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "improper qualified name (too many dotted names): a.b.c.d");
	assert_int_equal(pgfilter_pattern_regex(&d, &s, &n, "a.b.c", 1), PV_EUSAGE);
}

static PgOidSet
set_of(uint32_t *v, size_t n)
{
	PgOidSet s = {.v = v, .n = n, .cap = n};

	return s;
}

static void
test_selection_rules(void **state)
{
	uint32_t t[] = {10, 11}, tx[] = {11}, sch[] = {100}, nx[] = {200}, xd[] = {12};
	PgFilterSel s = {0};

	(void) state;
	/* everything, minus -N schemas and -T tables */
	s.everything = true;
	s.exclude_schemas = set_of(nx, 1);
	s.exclude_tables = set_of(tx, 1);
	s.exclude_data = set_of(xd, 1);
	assert_true(pgfilter_sel_relation(&s, 10, 100));
	assert_false(pgfilter_sel_relation(&s, 10, 200));
	assert_false(pgfilter_sel_relation(&s, 11, 100));
	assert_true(pgfilter_sel_relation(&s, 12, 100));
	assert_false(pgfilter_sel_data(&s, 12, 100));					/* definition yes, rows no */
	assert_true(pgfilter_sel_data(&s, 10, 100));

	/* -n: only those schemas */
	s.everything = false;
	s.have_schemas = true;
	s.schemas = set_of(sch, 1);
	assert_true(pgfilter_sel_relation(&s, 10, 100));
	assert_false(pgfilter_sel_relation(&s, 13, 101));

	/* -t decides alone (as pg_dump: -n/-N have no effect), -T still wins */
	s.have_tables = true;
	s.tables = set_of(t, 2);
	assert_true(pgfilter_sel_relation(&s, 10, 200));
	assert_false(pgfilter_sel_relation(&s, 11, 100));
	assert_false(pgfilter_sel_relation(&s, 13, 100));
	assert_true(pgfilter_oidset_has(&s.tables, 11));
	assert_false(pgfilter_oidset_has(&s.tables, 12));
}

static void
test_patterns_list(void **state)
{
	PgFilter f = {0};

	(void) state;
	assert_true(pgfilter_includes_everything(&f));
	pgfilter_patterns_add(&f.exclude_tables, "x");
	assert_true(pgfilter_includes_everything(&f));
	pgfilter_patterns_add(&f.tables, "a");
	pgfilter_patterns_add(&f.tables, "b");
	assert_int_equal(f.tables.n, 2);
	assert_string_equal(f.tables.v[1], "b");
	assert_false(pgfilter_includes_everything(&f));
	pgfilter_clear(&f);
	assert_int_equal(f.tables.n, 0);
}

static void
test_pattern_dots(void **state)
{
	(void) state;
	assert_int_equal(pgfilter_pattern_dots("orders"), 0);
	assert_int_equal(pgfilter_pattern_dots("*.orders"), 1);
	assert_int_equal(pgfilter_pattern_dots("db.s.t"), 2);
	assert_int_equal(pgfilter_pattern_dots("\"a.b\""), 0);			/* quoted dots are names */
	assert_int_equal(pgfilter_pattern_dots("\"a\"\"b.c\".t"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_rules),
		cmocka_unit_test(test_pattern_too_many_dots),
		cmocka_unit_test(test_selection_rules),
		cmocka_unit_test(test_patterns_list),
		cmocka_unit_test(test_pattern_dots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
