/*
 * test_logical_fingerprint.c: XXH64 against the published test vectors, and
 * the table fingerprint's properties (order-independent, duplicates count,
 * parts add up) from pg/logical/fingerprint.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "pg/logical/fingerprint.h"

#include <string.h>

static void
test_xxh64_vectors(void **state)
{
	const char *nobody = "Nobody inspects the spammish repetition";

	(void) state;
	assert_true(pgfp_xxh64("", 0, 0) == 0xEF46DB3751D8E999ULL);
	assert_true(pgfp_xxh64("abc", 3, 0) == 0x44BC2CF5AD770999ULL);
	/* >= 32 bytes takes the four-lane path */
	assert_true(pgfp_xxh64(nobody, strlen(nobody), 0) == 0xFBCEA83C8A378BF1ULL);
}

static void
test_fingerprint_is_order_independent(void **state)
{
	const char *rows[] = {"1\ta\n", "2\tb\n", "3\t\\N\n", "2\tb\n"};
	uint64_t fwd = 0, rev = 0, part1 = 0, part2 = 0, nodup = 0;

	(void) state;
	for (int i = 0; i < 4; i++)
		fwd = pgfp_add_line(fwd, rows[i], strlen(rows[i]));
	for (int i = 3; i >= 0; i--)
		rev = pgfp_add_line(rev, rows[i], strlen(rows[i]));
	assert_true(fwd == rev);
	for (int i = 0; i < 2; i++)
		part1 = pgfp_add_line(part1, rows[i], strlen(rows[i]));
	for (int i = 2; i < 4; i++)
		part2 = pgfp_add_line(part2, rows[i], strlen(rows[i]));
	assert_true(part1 + part2 == fwd);
	for (int i = 0; i < 3; i++)
		nodup = pgfp_add_line(nodup, rows[i], strlen(rows[i]));
	assert_true(nodup != fwd);		/* a duplicate row changes it (a xor would not) */
}

static void
test_fingerprint_format_parse(void **state)
{
	char hex[17];
	uint64_t v = 0;

	(void) state;
	pgfp_format(hex, 0x00ab00cd00ef0012ULL);
	assert_string_equal(hex, "00ab00cd00ef0012");
	assert_int_equal(pgfp_parse(&v, hex), 0);
	assert_true(v == 0x00ab00cd00ef0012ULL);
	assert_int_equal(pgfp_parse(&v, "00AB00cd00ef0012"), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "invalid fingerprint '00AB00cd00ef0012'");
	assert_int_equal(pgfp_parse(&v, "123"), PV_ECORRUPT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xxh64_vectors),
		cmocka_unit_test(test_fingerprint_is_order_independent),
		cmocka_unit_test(test_fingerprint_format_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
