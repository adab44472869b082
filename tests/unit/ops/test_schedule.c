/*
 * test_schedule.c: cron expressions and intervals (ops/schedule.h).
 *
 * Table-driven: each case is an expression, a zone, a starting instant and
 * the runs schedule_next() must produce from there, one after the other
 * (each result fed back as the next starting point), printed in the zone so
 * the daylight-saving cases read as wall clocks with their offsets.  The
 * expected values were checked against Python's zoneinfo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "ops/schedule.h"

#include <stdio.h>
#include <string.h>

#define MAX_RUNS 8

typedef struct NextCase
{
	const char *expr;
	const char *tz;				/* default zone given to schedule_parse */
	const char *start;			/* pv_time_parse text, with its own offset */
	const char *runs[MAX_RUNS];	/* in tz (pv_time_format), NULL-terminated */
} NextCase;

static const NextCase next_cases[] = {
	/* the "first Sunday": day of month AND day of week */
	{"0 3 1-7 * 0", "UTC", "2026-01-01T00:00:00Z",
		{"2026-01-04T03:00:00Z", "2026-02-01T03:00:00Z", "2026-03-01T03:00:00Z",
		"2026-04-05T03:00:00Z", "2026-05-03T03:00:00Z", "2026-06-07T03:00:00Z"}},
	{"0 3 1-7 * sun", "UTC", "2026-01-04T03:00:00Z",
		{"2026-02-01T03:00:00Z", "2026-03-01T03:00:00Z"}},
	{"0 2 * * *", "UTC", "2026-11-22T01:59:59.999Z",
		{"2026-11-22T02:00:00Z", "2026-11-23T02:00:00Z", "2026-11-24T02:00:00Z"}},
	/* steps, lists, ranges, names */
	{"*/15 * * * *", "UTC", "2026-11-22T10:07:00Z",
		{"2026-11-22T10:15:00Z", "2026-11-22T10:30:00Z", "2026-11-22T10:45:00Z",
		"2026-11-22T11:00:00Z"}},
	{"5/20 * * * *", "UTC", "2026-11-22T10:00:00Z",
		{"2026-11-22T10:05:00Z", "2026-11-22T10:25:00Z", "2026-11-22T10:45:00Z",
		"2026-11-22T11:05:00Z"}},
	{"0,30 9-17/4 * * mon-fri", "UTC", "2026-11-20T12:00:00Z",	/* a Friday */
		{"2026-11-20T13:00:00Z", "2026-11-20T13:30:00Z", "2026-11-20T17:00:00Z",
		"2026-11-20T17:30:00Z", "2026-11-23T09:00:00Z", "2026-11-23T09:30:00Z"}},
	{"0 0 1 JAN,jul *", "UTC", "2026-03-01T00:00:00Z",
		{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"}},
	{"0 12 * * 7", "UTC", "2026-11-22T12:00:00Z",	/* 7 is Sunday too */
		{"2026-11-29T12:00:00Z", "2026-12-06T12:00:00Z"}},
	{"10 4 * * sat,sun", "UTC", "2026-11-20T00:00:00Z",
		{"2026-11-21T04:10:00Z", "2026-11-22T04:10:00Z", "2026-11-28T04:10:00Z"}},
	/* 29 February, and the century rule (2100 is not a leap year) */
	{"0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z",
		{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"}},
	{"0 0 29 feb mon", "UTC", "2026-01-01T00:00:00Z",
		{"2044-02-29T00:00:00Z", "2072-02-29T00:00:00Z", "2112-02-29T00:00:00Z"}},
	{"0 0 31 * *", "UTC", "2026-01-31T00:00:00Z",
		{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
		"2026-08-31T00:00:00Z"}},
	/* shorthands */
	{"@daily", "UTC", "2026-11-22T10:00:00Z", {"2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z"}},
	{"@hourly", "UTC", "2026-11-22T10:00:00Z", {"2026-11-22T11:00:00Z", "2026-11-22T12:00:00Z"}},
	{"@weekly", "UTC", "2026-11-22T10:00:00Z", {"2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"}},
	{"@monthly", "UTC", "2026-11-22T10:00:00Z", {"2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
	{"@yearly", "UTC", "2026-11-22T10:00:00Z", {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
	{"@annually", "UTC", "2026-11-22T10:00:00Z", {"2027-01-01T00:00:00Z"}},
	{"@midnight", "UTC", "2026-11-22T10:00:00Z", {"2026-11-23T00:00:00Z"}},
	/* intervals: anchored to the epoch, second resolution */
	{"@every 2s", "UTC", "2026-11-22T10:00:00.5Z",
		{"2026-11-22T10:00:02Z", "2026-11-22T10:00:04Z", "2026-11-22T10:00:06Z"}},
	{"@every 1h", "Europe/Berlin", "2026-11-22T10:20:00Z",
		{"2026-11-22T12:00:00+01:00", "2026-11-22T13:00:00+01:00"}},
	{"@every 90min", "UTC", "2026-11-22T00:00:00Z",
		{"2026-11-22T01:30:00Z", "2026-11-22T03:00:00Z"}},
	/* Europe/Berlin, spring forward: 2026-03-29 02:00 CET -> 03:00 CEST */
	{"30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00+01:00",
		{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
	{"*/20 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00+01:00",	/* three skipped times, one run */
		{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:20:00+02:00"}},
	{"0 * * * *", "Europe/Berlin", "2026-03-29T00:30:00+01:00",
		{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
	/* Europe/Berlin, fall back: 2026-10-25 03:00 CEST -> 02:00 CET; 02:xx happens twice */
	{"30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00+02:00",
		{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
	{"*/30 * * * *", "Europe/Berlin", "2026-10-25T01:45:00+02:00",
		{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T03:00:00+01:00",
		"2026-10-25T03:30:00+01:00"}},
	/* America/New_York, spring forward: 2026-03-08 02:00 EST -> 03:00 EDT */
	{"30 2 * * *", "America/New_York", "2026-03-07T12:00:00-05:00",
		{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
	{"*/15 2 * * *", "America/New_York", "2026-03-07T23:00:00-05:00",
		{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00", "2026-03-09T02:15:00-04:00"}},
	{"0 3 * * *", "America/New_York", "2026-03-08T01:00:00-05:00",	/* 03:00 exists: once */
		{"2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"}},
	/* America/New_York, fall back: 2026-11-01 02:00 EDT -> 01:00 EST; 01:xx happens twice */
	{"30 1 * * *", "America/New_York", "2026-10-31T00:00:00-04:00",
		{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
	{"0 * * * *", "America/New_York", "2026-11-01T00:30:00-04:00",
		{"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"}},
	/* starting inside the second 01:xx: its wall times already ran in EDT */
	{"*/20 * * * *", "America/New_York", "2026-11-01T01:10:00-05:00",
		{"2026-11-01T02:00:00-05:00", "2026-11-01T02:20:00-05:00"}},
	/* a zone in the expression wins over the default */
	{"TZ=America/New_York 0 9 * * *", "UTC", "2026-03-07T00:00:00Z",
		{"2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"}},
	{"CRON_TZ=Europe/Berlin 0 0 * * *", NULL, "2026-06-01T00:00:00Z",
		{"2026-06-01T22:00:00Z", "2026-06-02T22:00:00Z"}},
};

static void
test_next_sequences(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++)
	{
		const NextCase *c = &next_cases[i];
		Schedule *s = NULL;
		PvTime t;
		const char *print_tz = c->tz;

		if (schedule_parse(&s, c->expr, c->tz) != PV_OK)
			fail_msg("case %zu '%s': %s", i, c->expr, pv_error_msg());
		if (strncmp(c->expr, "TZ=", 3) == 0 || strncmp(c->expr, "CRON_TZ=", 8) == 0)
			print_tz = "UTC";
		assert_int_equal(pv_time_parse(&t, c->start, "UTC"), PV_OK);
		for (int k = 0; k < MAX_RUNS && c->runs[k] != NULL; k++)
		{
			char got[PV_TIME_FORMAT_MAX];
			PvTime next = 0;

			if (schedule_next(s, t, &next) != PV_OK)
				fail_msg("case %zu '%s' run %d: %s", i, c->expr, k, pv_error_msg());
			assert_int_equal(pv_time_format(got, sizeof(got), next, print_tz), PV_OK);
			if (strcmp(got, c->runs[k]) != 0)
				fail_msg("case %zu '%s' (%s) run %d: expected %s, got %s", i, c->expr,
						 c->tz ? c->tz : "local", k, c->runs[k], got);
			assert_true(next > t);
			t = next;
		}
		schedule_free(s);
	}
}

typedef struct BadCase
{
	const char *expr;
	const char *msg;
} BadCase;

static const BadCase bad_cases[] = {
	{"61 * * * *", "invalid schedule '61 * * * *': minute 61 is out of range (0-59)"},
	{"0 24 * * *", "invalid schedule '0 24 * * *': hour 24 is out of range (0-23)"},
	{"0 0 0 * *", "invalid schedule '0 0 0 * *': day of month 0 is out of range (1-31)"},
	{"0 0 * 13 *", "invalid schedule '0 0 * 13 *': month 13 is out of range (1-12)"},
	{"0 0 * * 8", "invalid schedule '0 0 * * 8': day of week 8 is out of range (0-7)"},
	{"* * * *", "invalid schedule '* * * *': expected 5 fields (minute hour day-of-month month "
		"day-of-week), got 4"},
	{"1 2 3 4 5 6", "invalid schedule '1 2 3 4 5 6': expected 5 fields (minute hour day-of-month "
		"month day-of-week), got more than 5"},
	{"0 0 30 2 *", "invalid schedule '0 0 30 2 *': it never runs (no month it names has the days "
		"it names)"},
	{"0 0 31 apr,jun,sep,nov *", "invalid schedule '0 0 31 apr,jun,sep,nov *': it never runs (no "
		"month it names has the days it names)"},
	{"0 0 * foo *", "invalid schedule '0 0 * foo *': unknown month name 'foo' (use jan..dec)"},
	{"0 0 * * funday", "invalid schedule '0 0 * * funday': unknown day of week name 'funday' (use "
		"sun..sat)"},
	{"0 jan * * *", "invalid schedule '0 jan * * *': unexpected 'j' in the hour field"},
	{"*/0 * * * *", "invalid schedule '*/0 * * * *': step 0 in '*/0' is out of range (1-59)"},
	{"*/x * * * *", "invalid schedule '*/x * * * *': step in '*/x' must be a number"},
	{"5-3 * * * *", "invalid schedule '5-3 * * * *': minute range '5-3' goes backwards"},
	{"0 0 1,,2 * *", "invalid schedule '0 0 1,,2 * *': empty list element in the day of month "
		"field '1,,2'"},
	{"0 0 * * mon-", "invalid schedule '0 0 * * mon-': a day of week value is missing"},
	{"1x * * * *", "invalid schedule '1x * * * *': unexpected 'x' in the minute field"},
	{"@weekdays", "invalid schedule '@weekdays': unknown shorthand '@weekdays'"},
	{"@daily 5", "invalid schedule '@daily 5': nothing may follow @daily"},
	{"@every", "invalid schedule '@every': @every needs a duration, e.g. '@every 15min'"},
	{"@every 0s", "invalid schedule '@every 0s': the interval must be at least 1s"},
	{"", "invalid schedule '': it is empty"},
	{"   ", "invalid schedule '': it is empty"},
};

static void
test_invalid(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
	{
		Schedule *s = (Schedule *) 1;

		pv_error_clear();
		if (schedule_parse(&s, bad_cases[i].expr, "UTC") != PV_ECONFIG)
			fail_msg("'%s' was accepted", bad_cases[i].expr);
		assert_null(s);
		if (strcmp(pv_error_msg(), bad_cases[i].msg) != 0)
			fail_msg("'%s': expected message\n  %s\ngot\n  %s", bad_cases[i].expr,
					 bad_cases[i].msg, pv_error_msg());
	}
}

static void
test_invalid_zone_and_duration(void **state)
{
	Schedule *s = NULL;

	(void) state;
	assert_int_equal(schedule_parse(&s, "TZ=Mars/Olympus 0 0 * * *", NULL), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "invalid schedule 'TZ=Mars/Olympus 0 0 * * *': "));
	assert_non_null(strstr(pv_error_msg(), "Mars/Olympus"));
	assert_int_equal(schedule_parse(&s, "0 0 * * *", "Mars/Olympus"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "schedule '0 0 * * *': "));
	assert_int_equal(schedule_parse(&s, "@every soon", "UTC"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "invalid schedule '@every soon': invalid duration 'soon'"));
	assert_int_equal(schedule_parse(&s, "@weekdays", "UTC"), PV_ECONFIG);
	assert_string_equal(pv_error_hint_msg(), "use @yearly, @monthly, @weekly, @daily, @hourly or "
						"@every DURATION");
	assert_null(s);
}

static void
test_accessors(void **state)
{
	Schedule *s = NULL;

	(void) state;
	assert_int_equal(schedule_parse(&s, "  @every 15min \n", "UTC"), PV_OK);
	assert_string_equal(schedule_text(s), "@every 15min");
	assert_int_equal(schedule_interval_ms(s), 15 * 60 * 1000);
	assert_string_equal(schedule_zone(s), "UTC");
	schedule_free(s);
	assert_int_equal(schedule_parse(&s, "TZ=Europe/Berlin 0 2 * * *", "UTC"), PV_OK);
	assert_string_equal(schedule_zone(s), "Europe/Berlin");
	assert_int_equal(schedule_interval_ms(s), 0);
	schedule_free(s);
	assert_int_equal(schedule_parse(&s, "0 2 * * *", NULL), PV_OK);
	assert_null(schedule_zone(s));
	schedule_free(s);
	schedule_free(NULL);
}

/* Every minute for three days around each change: strictly increasing, no duplicates. */
static void
test_every_minute_across_changes(void **state)
{
	static const struct
	{
		const char *tz, *start;
		int expected;			/* runs in 72 hours of real time */
	} cases[] = {
		{"Europe/Berlin", "2026-03-28T00:00:00Z", 72 * 60},
		{"Europe/Berlin", "2026-10-24T00:00:00Z", 72 * 60 - 60},	/* the repeated hour runs once */
		{"America/New_York", "2026-03-07T00:00:00Z", 72 * 60},
		{"America/New_York", "2026-10-31T00:00:00Z", 72 * 60 - 60},
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		Schedule *s = NULL;
		PvTime t, end;
		int n = 0;

		assert_int_equal(schedule_parse(&s, "* * * * *", cases[i].tz), PV_OK);
		assert_int_equal(pv_time_parse(&t, cases[i].start, NULL), PV_OK);
		end = t + INT64_C(72) * 3600 * PV_USEC_PER_SEC;
		for (;;)
		{
			PvTime next;

			assert_int_equal(schedule_next(s, t, &next), PV_OK);
			assert_true(next > t);
			assert_int_equal(next % (60 * PV_USEC_PER_SEC), 0);
			if (next > end)
				break;
			t = next;
			n++;
		}
		if (n != cases[i].expected)
			fail_msg("%s from %s: %d runs, expected %d", cases[i].tz, cases[i].start, n,
					 cases[i].expected);
		schedule_free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_sequences),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_invalid_zone_and_duration),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_every_minute_across_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
