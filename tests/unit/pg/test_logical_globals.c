/*
 * test_logical_globals.c: splitting and classifying `pg_dumpall
 * --globals-only` output (pg/logical/globals.h), and the SET clauses of
 * database and role settings as pg_dump writes them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "pg/logical/globals.h"

#include <string.h>

/* PostgreSQL 15.20's pg_dumpall --globals-only, with a tablespace added */
static const char script[] =
	"--\n-- PostgreSQL database cluster dump\n--\n\n"
	"\\restrict ZAR5gBNw2dr6FtvJPZmL6qQMldtz1BhjZCNMwXtdny5SSCixHgPVQn2JR2wbT1I\n\n"
	"SET default_transaction_read_only = off;\n\n"
	"SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\n"
	"--\n-- Roles\n--\n\n"
	"CREATE ROLE \"Odd R\";\n"
	"ALTER ROLE \"Odd R\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;\n"
	"CREATE ROLE postgres;\n"
	"ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;\n"
	"CREATE ROLE r2;\n"
	"ALTER ROLE r2 WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;\n"
	"COMMENT ON ROLE r2 IS 'it''s; here -- not a comment';\n\n"
	"--\n-- User Config \"r2\"\n--\n\n"
	"ALTER ROLE r2 SET work_mem TO '4MB';\n\n"
	"--\n-- Role memberships\n--\n\n"
	"GRANT \"Odd R\" TO r2 GRANTED BY postgres;\n\n"
	"--\n-- Tablespaces\n--\n\n"
	"CREATE TABLESPACE \"fast ssd\" OWNER r2 LOCATION '/srv/ssd';\n"
	"GRANT ALL ON TABLESPACE \"fast ssd\" TO \"Odd R\";\n"
	"COMMENT ON TABLESPACE \"fast ssd\" IS $$dollar; quoted$$;\n\n"
	"\\unrestrict ZAR5gBNw2dr6FtvJPZmL6qQMldtz1BhjZCNMwXtdny5SSCixHgPVQn2JR2wbT1I\n\n"
	"--\n-- PostgreSQL database cluster dump complete\n--\n\n";

static void
test_parse_classify(void **state)
{
	PgGlobalStmt *st = NULL;
	size_t n = 0;

	(void) state;
	pgglobals_parse(&st, &n, script, strlen(script));
	assert_int_equal(n, 15);
	assert_int_equal(st[0].kind, PGG_SET);
	assert_string_equal(st[0].sql, "SET default_transaction_read_only = off");
	assert_int_equal(st[2].kind, PGG_SET);
	assert_int_equal(st[3].kind, PGG_ROLE);
	assert_true(st[3].create);
	assert_string_equal(st[3].object, "Odd R");
	assert_int_equal(st[4].kind, PGG_ROLE);
	assert_false(st[4].create);
	assert_string_equal(st[4].object, "Odd R");
	assert_string_equal(st[5].object, "postgres");
	assert_int_equal(st[9].kind, PGG_ROLE);
	assert_string_equal(st[9].object, "r2");
	assert_string_equal(st[9].sql, "COMMENT ON ROLE r2 IS 'it''s; here -- not a comment'");
	assert_int_equal(st[10].kind, PGG_ROLE);
	assert_string_equal(st[10].sql, "ALTER ROLE r2 SET work_mem TO '4MB'");
	assert_int_equal(st[11].kind, PGG_MEMBERSHIP);
	assert_string_equal(st[11].object, "Odd R");
	assert_string_equal(st[11].member, "r2");
	assert_int_equal(st[12].kind, PGG_TABLESPACE);
	assert_true(st[12].create);
	assert_string_equal(st[12].object, "fast ssd");
	assert_int_equal(st[13].kind, PGG_TABLESPACE);
	assert_string_equal(st[13].object, "fast ssd");
	assert_false(st[13].create);
	assert_int_equal(st[14].kind, PGG_TABLESPACE);
	assert_string_equal(st[14].sql, "COMMENT ON TABLESPACE \"fast ssd\" IS $$dollar; quoted$$");
	pgglobals_free(st, n);
}

static void
test_parse_edge_cases(void **state)
{
	const char *text = "/* a; block */ SELECT 1; SELECT E'a\\';b'; SELECT 'x'\n-- trailing";
	PgGlobalStmt *st = NULL;
	size_t n = 0;

	(void) state;
	pgglobals_parse(&st, &n, text, strlen(text));
	assert_int_equal(n, 3);
	assert_string_equal(st[0].sql, "SELECT 1");
	assert_int_equal(st[0].kind, PGG_OTHER);
	assert_string_equal(st[1].sql, "SELECT E'a\\';b'");
	assert_string_equal(st[2].sql, "SELECT 'x'");
	pgglobals_free(st, n);
	pgglobals_parse(&st, &n, "", 0);
	assert_int_equal(n, 0);
	pgglobals_free(st, n);
}

static void
check_set(const char *nv, const char *want)
{
	Buf b = PV_BUF_INIT;

	pgglobals_set_clause(&b, nv);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void
test_set_clause(void **state)
{
	(void) state;
	check_set("work_mem=8MB", "SET work_mem TO '8MB'");
	check_set("search_path=\"$user\", app, public", "SET search_path TO '$user', 'app', 'public'");
	check_set("search_path=\"x \"\"y\"\"\", z", "SET search_path TO 'x \"y\"', 'z'");
	check_set("search_path=", "SET search_path TO ''");
	check_set("myapp.mode=it's", "SET \"myapp.mode\" TO 'it''s'");
	check_set("statement_timeout=5s", "SET statement_timeout TO '5s'");
	check_set("default_text_search_config=pg_catalog.english", "SET default_text_search_config TO 'pg_catalog.english'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_classify),
		cmocka_unit_test(test_parse_edge_cases),
		cmocka_unit_test(test_set_clause),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
