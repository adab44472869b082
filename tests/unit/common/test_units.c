/*
 * test_units.c: sizes and durations as users write them (common/units.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/units.h"

#include <string.h>

static uint64_t
size_ok(const char *text)
{
	uint64_t v = 0xdeadbeef;

	pv_error_clear();
	assert_int_equal(pv_size_parse(&v, text), PV_OK);
	return v;
}

static void
size_bad(const char *text, const char *msg)
{
	uint64_t v = 12345;

	assert_int_equal(pv_size_parse(&v, text), PV_EUSAGE);
	assert_int_equal(pv_error_code(), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), msg);
	if (strstr(msg, "too large") != NULL)
		assert_string_equal(pv_error_hint_msg(), "the largest size is 16 EiB - 1 byte");
	else
		assert_non_null(strstr(pv_error_hint_msg(), "64k, 64KiB, 1.5GiB, 2GB"));
	assert_int_equal(v, 12345);	/* untouched on error */
}

static void
test_size_parse_plain_and_units(void **state)
{
	(void) state;
	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("64k"), 65536);
	assert_int_equal(size_ok("64K"), 65536);
	assert_int_equal(size_ok("64KiB"), 65536);
	assert_int_equal(size_ok("64kib"), 65536);
	assert_int_equal(size_ok("64 kB"), 65536);
	assert_int_equal(size_ok("1.5 GiB"), 1610612736ULL);
	assert_int_equal(size_ok("2GB"), 2147483648ULL);
	assert_int_equal(size_ok("10MB"), 10485760ULL);
	assert_int_equal(size_ok("10m"), 10485760ULL);
	assert_int_equal(size_ok("1T"), 1ULL << 40);
	assert_int_equal(size_ok("2 PiB"), 2ULL << 50);
	assert_int_equal(size_ok("1eib"), 1ULL << 60);
	assert_int_equal(size_ok("512b"), 512);
	assert_int_equal(size_ok("512 bytes"), 512);
	assert_int_equal(size_ok(" 7 "), 7);
	assert_int_equal(size_ok(".5k"), 512);
	assert_int_equal(size_ok("0.25MiB"), 262144);
}

static void
test_size_parse_fraction_rounds(void **state)
{
	(void) state;
	/* 0.3 KiB = 307.2 bytes -> 307; 0.0005k = 0.512 -> 1 */
	assert_int_equal(size_ok("0.3k"), 307);
	assert_int_equal(size_ok("0.0005k"), 1);
	/* fractional bytes round to nearest */
	assert_int_equal(size_ok("1.5"), 2);
	assert_int_equal(size_ok("1.4"), 1);
}

static void
test_size_parse_limits(void **state)
{
	(void) state;
	assert_true(size_ok("18446744073709551615") == UINT64_MAX);
	assert_true(size_ok("15.99 EiB") > (15ULL << 60));
	size_bad("18446744073709551616", "invalid size '18446744073709551616': too large");
	size_bad("16EiB", "invalid size '16EiB': too large");
	size_bad("99999999999999999999999k", "invalid size '99999999999999999999999k': too large");
	size_bad("17179869184G", "invalid size '17179869184G': too large");
}

static void
test_size_parse_rejects_garbage(void **state)
{
	(void) state;
	size_bad("", "invalid size ''");
	size_bad("   ", "invalid size '   '");
	size_bad("-1", "invalid size '-1'");
	size_bad("-1k", "invalid size '-1k'");
	size_bad("+5", "invalid size '+5'");
	size_bad("k", "invalid size 'k'");
	size_bad("abc", "invalid size 'abc'");
	size_bad("1.", "invalid size '1.'");
	size_bad("1..5k", "invalid size '1..5k'");
	size_bad("1k2", "invalid size '1k2'");
	size_bad("1 2", "invalid size '1 2'");
	size_bad("1e5", "invalid size '1e5'");
	size_bad("10 parsecs", "invalid size '10 parsecs': unknown unit 'parsecs'");
	size_bad("5x", "invalid size '5x': unknown unit 'x'");
	size_bad("5kilobyteswaytoolongunit", "invalid size '5kilobyteswaytoolongunit': unknown unit 'kilobyteswaytoolongunit'");
	size_bad(NULL, "invalid size ''");
}

static void
test_size_format(void **state)
{
	char out[32];

	(void) state;
	assert_string_equal(pv_size_format(out, sizeof(out), 0), "0 B");
	assert_string_equal(pv_size_format(out, sizeof(out), 512), "512 B");
	assert_string_equal(pv_size_format(out, sizeof(out), 1023), "1023 B");
	assert_string_equal(pv_size_format(out, sizeof(out), 1024), "1.0 KiB");
	assert_string_equal(pv_size_format(out, sizeof(out), 1536), "1.5 KiB");
	assert_string_equal(pv_size_format(out, sizeof(out), 12ULL << 30), "12.0 GiB");
	assert_string_equal(pv_size_format(out, sizeof(out), 1610612736ULL), "1.5 GiB");
	/* just under 1 MiB rounds up into the next unit, never "1024.0 KiB" */
	assert_string_equal(pv_size_format(out, sizeof(out), 1048575), "1.0 MiB");
	assert_string_equal(pv_size_format(out, sizeof(out), 1ULL << 60), "1.0 EiB");
	assert_string_equal(pv_size_format(out, sizeof(out), UINT64_MAX), "16.0 EiB");
	/* what is printed parses back to (about) the same value */
	assert_int_equal(size_ok(pv_size_format(out, sizeof(out), 1536)), 1536);
}

static int64_t
dur_ms_ok(const char *text)
{
	int64_t v = -7;

	assert_int_equal(pv_duration_parse_ms(&v, text), PV_OK);
	return v;
}

static int64_t
dur_ok(const char *text)
{
	int64_t v = -7;

	assert_int_equal(pv_duration_parse(&v, text), PV_OK);
	return v;
}

static void
dur_bad(const char *text, const char *msg)
{
	int64_t v = -7;

	assert_int_equal(pv_duration_parse_ms(&v, text), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), msg);
	assert_non_null(strstr(pv_error_hint_msg(), "15min"));
	assert_int_equal(pv_duration_parse(&v, text), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), msg);
	assert_int_equal(v, -7);
}

static void
test_duration_parse(void **state)
{
	(void) state;
	assert_int_equal(dur_ok("90s"), 90);
	assert_int_equal(dur_ok("90"), 90);
	assert_int_equal(dur_ok("0"), 0);
	assert_int_equal(dur_ok("15min"), 900);
	assert_int_equal(dur_ok("15m"), 900);
	assert_int_equal(dur_ok("15 minutes"), 900);
	assert_int_equal(dur_ok("1 minute"), 60);
	assert_int_equal(dur_ok("4h"), 14400);
	assert_int_equal(dur_ok("4 hours"), 14400);
	assert_int_equal(dur_ok("1hour"), 3600);
	assert_int_equal(dur_ok("30d"), 2592000);
	assert_int_equal(dur_ok("1 day"), 86400);
	assert_int_equal(dur_ok("2days"), 172800);
	assert_int_equal(dur_ok("2w"), 1209600);
	assert_int_equal(dur_ok("10sec"), 10);
	assert_int_equal(dur_ok("10 seconds"), 10);
	assert_int_equal(dur_ok("1h30min"), 5400);
	assert_int_equal(dur_ok("1h 30min"), 5400);
	assert_int_equal(dur_ok("1d2h3m4s"), 93784);
	assert_int_equal(dur_ok("1.5h"), 5400);
	assert_int_equal(dur_ok("4H"), 14400);
	assert_int_equal(dur_ok("2000ms"), 2);
	assert_int_equal(dur_ms_ok("500ms"), 500);
	assert_int_equal(dur_ms_ok("1.5s"), 1500);
	assert_int_equal(dur_ms_ok("0.0004s"), 0);
	assert_int_equal(dur_ms_ok("1s 250ms"), 1250);
	assert_int_equal(dur_ms_ok("90"), 90000);
}

static void
test_duration_parse_rejects(void **state)
{
	int64_t v = -7;

	(void) state;
	dur_bad("", "invalid duration ''");
	dur_bad("  ", "invalid duration '  '");
	dur_bad("-5s", "invalid duration '-5s'");
	dur_bad("s", "invalid duration 's'");
	dur_bad("1h30", "invalid duration '1h30'");
	dur_bad("30 1h", "invalid duration '30 1h'");
	dur_bad("5 fortnights", "invalid duration '5 fortnights': unknown unit 'fortnights'");
	dur_bad("3y", "invalid duration '3y': unknown unit 'y'");
	dur_bad("99999999999999999999w", "invalid duration '99999999999999999999w': too large");
	dur_bad("9223372036854776s", "invalid duration '9223372036854776s': too large");
	/* sub-second values are fine in ms, refused where whole seconds are wanted */
	assert_int_equal(pv_duration_parse(&v, "500ms"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "invalid duration '500ms': not a whole number of seconds");
	assert_int_equal(v, -7);
}

static void
test_duration_format(void **state)
{
	char out[64];

	(void) state;
	assert_string_equal(pv_duration_format(out, sizeof(out), 0), "0s");
	assert_string_equal(pv_duration_format(out, sizeof(out), 90), "1min 30s");
	assert_string_equal(pv_duration_format(out, sizeof(out), 3600), "1h");
	assert_string_equal(pv_duration_format(out, sizeof(out), 5400), "1h 30min");
	assert_string_equal(pv_duration_format(out, sizeof(out), 86400 * 30), "4w 2d");
	assert_string_equal(pv_duration_format(out, sizeof(out), 1209600), "2w");
	assert_string_equal(pv_duration_format(out, sizeof(out), 93784), "1d 2h 3min 4s");
	assert_string_equal(pv_duration_format(out, sizeof(out), -90), "-1min 30s");
	assert_string_equal(pv_duration_format(out, sizeof(out), INT64_MIN), "-15250284452471w 3d 15h 30min 8s");
	/* formatted durations parse back */
	for (int64_t s = 0; s < 200000; s += 3797)
	{
		assert_int_equal(dur_ok(pv_duration_format(out, sizeof(out), s)), s);
	}
	/* a small buffer truncates but stays terminated */
	pv_duration_format(out, 6, 93784);
	assert_string_equal(out, "1d 2h");
}

static void
test_elapsed_format(void **state)
{
	char out[64];

	(void) state;
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 0), "0ms");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 45), "45ms");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 999), "999ms");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 1000), "1.00s");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 1234), "1.23s");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 1235), "1.24s");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 59990), "59.99s");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 123000), "2min 3s");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), 3723456), "1h 2min 3s");
	assert_string_equal(pv_elapsed_format(out, sizeof(out), -45), "-45ms");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_parse_plain_and_units),
		cmocka_unit_test(test_size_parse_fraction_rounds),
		cmocka_unit_test(test_size_parse_limits),
		cmocka_unit_test(test_size_parse_rejects_garbage),
		cmocka_unit_test(test_size_format),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_parse_rejects),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_elapsed_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
