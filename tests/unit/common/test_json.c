/*
 * test_json.c: JSON output, parsing and the typed getters (common/json.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
parse_ok(const char *text)
{
	json_t *v = NULL;

	if (pv_json_parse(&v, text, strlen(text), "test") != PV_OK)
		fail_msg("parse failed: %s", pv_error_msg());
	return v;
}

static void
parse_bad(const char *text, const char *what, const char *msg)
{
	json_t *v = (json_t *) 0x1;

	assert_int_equal(pv_json_parse(&v, text, strlen(text), what), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), msg);
	assert_ptr_equal(v, (json_t *) 0x1);
}

static void
test_dump_pretty_sorted(void **state)
{
	json_t *v = json_pack("{s:i, s:[b,n], s:s, s:{s:f}}", "b", 1, "a", 1, "c", "x\"y", "d", "z", 1.5);
	char *mem = NULL;
	size_t memlen = 0;
	FILE *f = open_memstream(&mem, &memlen);

	(void) state;
	assert_non_null(v);
	assert_int_equal(pv_json_dump(f, v), PV_OK);
	fclose(f);
	assert_string_equal(mem,
						"{\n"
						"  \"a\": [\n"
						"    true,\n"
						"    null\n"
						"  ],\n"
						"  \"b\": 1,\n"
						"  \"c\": \"x\\\"y\",\n"
						"  \"d\": {\n"
						"    \"z\": 1.5\n"
						"  }\n"
						"}\n");
	free(mem);

	/* a scalar can be dumped too */
	mem = NULL;
	f = open_memstream(&mem, &memlen);
	assert_int_equal(pv_json_dump(f, json_object_get(v, "b")), PV_OK);
	fclose(f);
	assert_string_equal(mem, "1\n");
	free(mem);

	/* a stream that cannot be written to */
	f = fopen("/dev/null", "r");
	assert_non_null(f);
	assert_int_equal(pv_json_dump(f, v), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "could not write JSON output: "));
	fclose(f);
	json_decref(v);
}

static void
test_to_buf(void **state)
{
	json_t *v = json_pack("{s:i, s:s, s:[i,i]}", "zeta", -3, "alpha", "é", "mid", 1, 2);
	Buf b = PV_BUF_INIT;

	(void) state;
	buf_append_str(&b, "prefix:");
	assert_int_equal(pv_json_to_buf(&b, v, false), PV_OK);
	assert_string_equal(buf_cstr(&b), "prefix:{\"alpha\":\"é\",\"mid\":[1,2],\"zeta\":-3}");
	buf_reset(&b);
	assert_int_equal(pv_json_to_buf(&b, v, true), PV_OK);
	assert_string_equal(buf_cstr(&b), "{\n  \"alpha\": \"é\",\n  \"mid\": [\n    1,\n    2\n  ],\n  \"zeta\": -3\n}\n");
	/* the same data always gives the same bytes, whatever the insertion order */
	{
		json_t *w = json_pack("{s:[i,i], s:s, s:i}", "mid", 1, 2, "alpha", "é", "zeta", -3);
		Buf c = PV_BUF_INIT;

		buf_reset(&b);
		assert_int_equal(pv_json_to_buf(&b, v, false), PV_OK);
		assert_int_equal(pv_json_to_buf(&c, w, false), PV_OK);
		assert_string_equal(buf_cstr(&b), buf_cstr(&c));
		buf_free(&c);
		json_decref(w);
	}
	buf_free(&b);
	json_decref(v);
}

static void
test_parse(void **state)
{
	json_t *v;
	const char text[] = "{\"a\": [1, 2, 3], \"b\": {\"c\": null}}garbage";

	(void) state;
	v = parse_ok("{\"a\": 1}");
	assert_true(json_is_object(v));
	json_decref(v);
	v = parse_ok(" [1, \"two\"] \n");
	assert_int_equal(json_array_size(v), 2);
	json_decref(v);
	/* len bounds the input: the bytes after it are never looked at */
	assert_int_equal(pv_json_parse(&v, text, strlen(text) - 7, "x"), PV_OK);
	assert_int_equal(json_array_size(json_object_get(v, "a")), 3);
	json_decref(v);

	parse_bad("{\n \"a\": 1,\n}", "manifest 'ab12'",
			  "invalid JSON in 'manifest 'ab12'' at line 3: string or '}' expected near '}'");
	parse_bad("{\"a\":1,\"a\":2}", "index/0001",
			  "invalid JSON in 'index/0001' at line 1: duplicate object key near '\"a\"'");
	parse_bad("", "empty", "invalid JSON in 'empty' at line 1: '[' or '{' expected near end of file");
	parse_bad("[1,2] x", "f", "invalid JSON in 'f' at line 1: end of file expected near 'x'");
	parse_bad("\"str\"", "f", "invalid JSON in 'f' at line 1: '[' or '{' expected near '\"str\"'");
	parse_bad("{\"a\":\"\\u0000\"}", "f",
			  "invalid JSON in 'f' at line 1: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"\\u0000\"'");
	/* an embedded NUL inside len is an error, not a silent truncation */
	assert_int_equal(pv_json_parse(&v, "{}\0{}", 5, "nul"), PV_ECORRUPT);
}

static const char doc[] =
	"{\"id\": \"ab12\", \"size\": 4096, \"neg\": -5, \"big\": 9223372036854775807,"
	" \"ok\": true, \"no\": false, \"ratio\": 0.25, \"whole\": 3, \"nil\": null,"
	" \"obj\": {\"k\": 1}, \"arr\": [1, 2], \"float1\": 1.0}";

static void
expect_err(int rc, int code, const char *msg)
{
	assert_int_equal(rc, code);
	assert_string_equal(pv_error_msg(), msg);
}

static void
test_getters_success(void **state)
{
	json_t *v = parse_ok(doc);
	const char *s;
	char *dup;
	int64_t i;
	uint64_t u;
	bool b;
	double d;
	const json_t *o;

	(void) state;
	assert_int_equal(pv_json_get_str(&s, v, "id"), PV_OK);
	assert_string_equal(s, "ab12");
	assert_int_equal(pv_json_get_strdup(&dup, v, "id"), PV_OK);
	assert_string_equal(dup, "ab12");
	pv_free(dup);
	assert_int_equal(pv_json_get_int(&i, v, "size"), PV_OK);
	assert_int_equal(i, 4096);
	assert_int_equal(pv_json_get_int(&i, v, "neg"), PV_OK);
	assert_int_equal(i, -5);
	assert_int_equal(pv_json_get_int(&i, v, "big"), PV_OK);
	assert_true(i == INT64_MAX);
	assert_int_equal(pv_json_get_int_range(&i, v, "size", 0, 4096), PV_OK);
	assert_int_equal(i, 4096);
	assert_int_equal(pv_json_get_uint(&u, v, "size"), PV_OK);
	assert_int_equal(u, 4096);
	assert_int_equal(pv_json_get_bool(&b, v, "ok"), PV_OK);
	assert_true(b);
	assert_int_equal(pv_json_get_bool(&b, v, "no"), PV_OK);
	assert_false(b);
	assert_int_equal(pv_json_get_real(&d, v, "ratio"), PV_OK);
	assert_true(d == 0.25);
	assert_int_equal(pv_json_get_real(&d, v, "whole"), PV_OK);
	assert_true(d == 3.0);
	assert_int_equal(pv_json_get_object(&o, v, "obj"), PV_OK);
	assert_int_equal(pv_json_get_int(&i, o, "k"), PV_OK);
	assert_int_equal(i, 1);
	assert_int_equal(pv_json_get_array(&o, v, "arr"), PV_OK);
	assert_int_equal(json_array_size(o), 2);

	/* optional members: present, missing and null */
	assert_int_equal(pv_json_opt_str(&s, v, "id", "dflt"), PV_OK);
	assert_string_equal(s, "ab12");
	assert_int_equal(pv_json_opt_str(&s, v, "missing", "dflt"), PV_OK);
	assert_string_equal(s, "dflt");
	assert_int_equal(pv_json_opt_str(&s, v, "nil", NULL), PV_OK);
	assert_null(s);
	assert_int_equal(pv_json_opt_int(&i, v, "size", 7), PV_OK);
	assert_int_equal(i, 4096);
	assert_int_equal(pv_json_opt_int(&i, v, "missing", 7), PV_OK);
	assert_int_equal(i, 7);
	assert_int_equal(pv_json_opt_int(&i, v, "nil", 8), PV_OK);
	assert_int_equal(i, 8);
	assert_int_equal(pv_json_opt_bool(&b, v, "ok", false), PV_OK);
	assert_true(b);
	assert_int_equal(pv_json_opt_bool(&b, v, "missing", true), PV_OK);
	assert_true(b);
	json_decref(v);
}

static void
test_getters_errors(void **state)
{
	json_t *v = parse_ok(doc);
	json_t *arr = parse_ok("[1]");
	const char *s = "untouched";
	char *dup = NULL;
	int64_t i = 99;
	uint64_t u = 99;
	bool b = true;
	double d = 9.5;
	const json_t *o = NULL;

	(void) state;
	expect_err(pv_json_get_str(&s, v, "missing"), PV_ECORRUPT, "missing member 'missing'");
	expect_err(pv_json_get_str(&s, v, "size"), PV_ECORRUPT, "member 'size' is not a string");
	expect_err(pv_json_get_str(&s, v, "nil"), PV_ECORRUPT, "member 'nil' is not a string");
	expect_err(pv_json_get_strdup(&dup, v, "ok"), PV_ECORRUPT, "member 'ok' is not a string");
	expect_err(pv_json_get_int(&i, v, "id"), PV_ECORRUPT, "member 'id' is not an integer");
	expect_err(pv_json_get_int(&i, v, "float1"), PV_ECORRUPT, "member 'float1' is not an integer");
	expect_err(pv_json_get_int(&i, v, "nope"), PV_ECORRUPT, "missing member 'nope'");
	expect_err(pv_json_get_int_range(&i, v, "size", 0, 4095), PV_ECORRUPT,
			   "member 'size' is out of range (0..4095)");
	expect_err(pv_json_get_int_range(&i, v, "neg", -4, 10), PV_ECORRUPT,
			   "member 'neg' is out of range (-4..10)");
	expect_err(pv_json_get_uint(&u, v, "neg"), PV_ECORRUPT, "member 'neg' is negative");
	expect_err(pv_json_get_uint(&u, v, "ratio"), PV_ECORRUPT, "member 'ratio' is not an integer");
	expect_err(pv_json_get_bool(&b, v, "whole"), PV_ECORRUPT, "member 'whole' is not a boolean");
	expect_err(pv_json_get_real(&d, v, "id"), PV_ECORRUPT, "member 'id' is not a number");
	expect_err(pv_json_get_object(&o, v, "arr"), PV_ECORRUPT, "member 'arr' is not an object");
	expect_err(pv_json_get_array(&o, v, "obj"), PV_ECORRUPT, "member 'obj' is not an array");
	expect_err(pv_json_opt_str(&s, v, "size", "d"), PV_ECORRUPT, "member 'size' is not a string");
	expect_err(pv_json_opt_int(&i, v, "id", 1), PV_ECORRUPT, "member 'id' is not an integer");
	expect_err(pv_json_opt_bool(&b, v, "id", false), PV_ECORRUPT, "member 'id' is not a boolean");
	/* not an object at all, or no value */
	expect_err(pv_json_get_str(&s, arr, "id"), PV_ECORRUPT, "expected a JSON object");
	expect_err(pv_json_get_int(&i, NULL, "id"), PV_ECORRUPT, "expected a JSON object");
	expect_err(pv_json_opt_bool(&b, arr, "id", false), PV_ECORRUPT, "expected a JSON object");
	/* outputs untouched on error */
	assert_string_equal(s, "untouched");
	assert_null(dup);
	assert_int_equal(i, 99);
	assert_int_equal(u, 99);
	assert_true(b);
	assert_true(d == 9.5);
	assert_null(o);
	/* the caller adds context */
	assert_int_equal(pv_error_prefix(pv_json_get_int(&i, v, "id"), "manifest '%s'", "ab12"), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "manifest 'ab12': member 'id' is not an integer");
	json_decref(arr);
	json_decref(v);
}

/* Random bytes and mutated documents: parse and getters must never crash. */
static void
test_garbage_never_crashes(void **state)
{
	char text[sizeof(doc)];
	unsigned seed = 12345;

	(void) state;
	for (int round = 0; round < 3000; round++)
	{
		json_t *v = NULL;
		const char *s;
		int64_t i;
		bool b;
		const json_t *o;

		memcpy(text, doc, sizeof(doc));
		for (int k = 0; k < 1 + round % 5; k++)
		{
			seed = seed * 1103515245 + 12345;
			text[(seed >> 8) % (sizeof(doc) - 1)] = (char) (seed >> 20);
		}
		if (pv_json_parse(&v, text, sizeof(doc) - 1, "fuzz") < 0)
		{
			assert_int_equal(pv_error_code(), PV_ECORRUPT);
			continue;
		}
		(void) pv_json_get_str(&s, v, "id");
		(void) pv_json_get_int(&i, v, "size");
		(void) pv_json_get_bool(&b, v, "ok");
		if (pv_json_get_object(&o, v, "obj") == PV_OK)
			(void) pv_json_get_int(&i, o, "k");
		json_decref(v);
	}
}

static void
test_init_allocator(void **state)
{
	json_t *v;
	char *s;

	(void) state;
	/* jansson now allocates through pv_malloc/pv_free; calling twice is harmless */
	pv_json_init();
	pv_json_init();
	v = json_pack("{s:s}", "k", "v");
	assert_non_null(v);
	s = json_dumps(v, JSON_COMPACT);
	assert_string_equal(s, "{\"k\":\"v\"}");
	pv_free(s);
	json_decref(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_pretty_sorted),
		cmocka_unit_test(test_to_buf),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_getters_success),
		cmocka_unit_test(test_getters_errors),
		cmocka_unit_test(test_garbage_never_crashes),
		cmocka_unit_test(test_init_allocator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
