/*
 * test_timeutil.c: parsing, formatting, zones and calendars (common/timeutil.h).
 *
 * Besides fixed examples (DST edges in Europe/Berlin and America/New_York),
 * the zone code is checked against glibc's own conversion for many instants
 * across four centuries.  The oracle switches $TZ with setenv()+tzset(),
 * which is fine here because these tests run single-threaded except
 * test_threads, which never touches $TZ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC PV_USEC_PER_SEC

static PvTime
parse_ok(const char *text, const char *tz)
{
	PvTime t = -1;

	pv_error_clear();
	if (pv_time_parse(&t, text, tz) != PV_OK)
		fail_msg("parse '%s' failed: %s", text, pv_error_msg());
	return t;
}

static void
parse_bad(const char *text, const char *tz, const char *msg)
{
	PvTime t = 42;

	assert_int_equal(pv_time_parse(&t, text, tz), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), msg);
	assert_int_equal(t, 42);
}

static const char *
fmt(PvTime t, const char *tz)
{
	static char out[PV_TIME_FORMAT_MAX];

	assert_int_equal(pv_time_format(out, sizeof(out), t, tz), PV_OK);
	return out;
}

static void
test_parse_utc_forms(void **state)
{
	(void) state;
	assert_int_equal(parse_ok("2026-11-22", "UTC"), 1795305600 * SEC);
	assert_int_equal(parse_ok("  2026-11-22  ", "UTC"), 1795305600 * SEC);
	assert_int_equal(parse_ok("2026-11-22 13:30", "UTC"), 1795354200 * SEC);
	assert_int_equal(parse_ok("2026-11-22T13:30", "UTC"), 1795354200 * SEC);
	assert_int_equal(parse_ok("2026-11-22t13:30:00", "UTC"), 1795354200 * SEC);
	assert_int_equal(parse_ok("2026-11-22T13:30:05", "UTC"), (1795354200 + 5) * SEC);
	assert_int_equal(parse_ok("2026-11-22 13:30:05.25", "UTC"), (1795354200 + 5) * SEC + 250000);
	assert_int_equal(parse_ok("2026-11-22 13:30:05.123456", "UTC"), (1795354200 + 5) * SEC + 123456);
	/* beyond microseconds: rounded, carrying into the next second */
	assert_int_equal(parse_ok("2026-11-22 13:30:05.1234565", "UTC"), (1795354200 + 5) * SEC + 123457);
	assert_int_equal(parse_ok("2026-11-22 13:30:05.9999996", "UTC"), (1795354200 + 6) * SEC);
	assert_int_equal(parse_ok("2026-11-22 3:30", "UTC"), (1795354200 - 10 * 3600) * SEC);
	assert_int_equal(parse_ok("1970-01-01", "UTC"), 0);
	assert_int_equal(parse_ok("1969-12-31 23:59:59", "UTC"), -1 * SEC);
	assert_int_equal(parse_ok("2024-02-29", "UTC"), 1709164800 * SEC);
}

static void
test_parse_explicit_offsets(void **state)
{
	const PvTime t = 1795354200 * SEC;	/* 2026-11-22T13:30:00Z */

	(void) state;
	/* an explicit zone in the text wins over the default */
	assert_int_equal(parse_ok("2026-11-22T13:30:00Z", "America/New_York"), t);
	assert_int_equal(parse_ok("2026-11-22T13:30:00z", NULL), t);
	assert_int_equal(parse_ok("2026-11-22T15:30:00+02:00", "UTC"), t);
	assert_int_equal(parse_ok("2026-11-22T15:30:00+0200", "UTC"), t);
	assert_int_equal(parse_ok("2026-11-22T15:30+02", "UTC"), t);
	assert_int_equal(parse_ok("2026-11-22 08:30 -05", "Europe/Berlin"), t);
	assert_int_equal(parse_ok("2026-11-22 08:30:00 -05:00", "Europe/Berlin"), t);
	assert_int_equal(parse_ok("2026-11-22 19:00+05:30", "UTC"), t);
	assert_int_equal(parse_ok("2026-11-22 13:30 UTC", "Europe/Berlin"), t);
	assert_int_equal(parse_ok("2026-11-22 14:30 Europe/Berlin", "UTC"), t);
	assert_int_equal(parse_ok("2026-11-22 08:30 America/New_York", "UTC"), t);
	assert_int_equal(parse_ok("2026-11-22 14:30:00.5 Europe/Berlin", "UTC"), t + 500000);
}

static void
test_parse_default_zone(void **state)
{
	(void) state;
	/* November: Berlin is UTC+1, New York UTC-5 */
	assert_int_equal(parse_ok("2026-11-22 14:30", "Europe/Berlin"), 1795354200 * SEC);
	assert_int_equal(parse_ok("2026-11-22 08:30", "America/New_York"), 1795354200 * SEC);
	/* July: UTC+2 and UTC-4 */
	assert_int_equal(parse_ok("2026-07-01 12:00", "Europe/Berlin"), parse_ok("2026-07-01 10:00Z", NULL));
	assert_int_equal(parse_ok("2026-07-01 12:00", "America/New_York"), parse_ok("2026-07-01 16:00Z", NULL));
	assert_int_equal(parse_ok("2026-07-01 12:00", "Asia/Kolkata"), parse_ok("2026-07-01 06:30Z", NULL));
	/* a POSIX TZ string works as a zone too */
	assert_int_equal(parse_ok("2026-07-01 12:00", "CET-1CEST,M3.5.0,M10.5.0/3"),
					 parse_ok("2026-07-01 10:00Z", NULL));
}

static void
test_dst_edges_berlin(void **state)
{
	const char *tz = "Europe/Berlin";

	(void) state;
	/* spring forward 2026-03-29: 02:00 CET -> 03:00 CEST (01:00Z) */
	assert_int_equal(parse_ok("2026-03-29 01:59:59", tz), parse_ok("2026-03-29 00:59:59Z", NULL));
	assert_int_equal(parse_ok("2026-03-29 03:00", tz), parse_ok("2026-03-29 01:00Z", NULL));
	/* 02:30 does not exist: read with the offset before (+01), = 03:30 CEST */
	assert_int_equal(parse_ok("2026-03-29 02:30", tz), 1774747800 * SEC);
	assert_string_equal(fmt(1774747800 * SEC, tz), "2026-03-29T03:30:00+02:00");
	assert_string_equal(fmt(parse_ok("2026-03-29 00:59:59Z", NULL), tz), "2026-03-29T01:59:59+01:00");
	assert_string_equal(fmt(parse_ok("2026-03-29 01:00:00Z", NULL), tz), "2026-03-29T03:00:00+02:00");
	/* fall back 2026-10-25: 03:00 CEST -> 02:00 CET (01:00Z); 02:30 happens twice */
	assert_int_equal(parse_ok("2026-10-25 02:30", tz), 1792891800 * SEC);	/* the later, CET */
	assert_string_equal(fmt(1792891800 * SEC, tz), "2026-10-25T02:30:00+01:00");
	assert_string_equal(fmt(1792891800 * SEC - 3600 * SEC, tz), "2026-10-25T02:30:00+02:00");
	assert_int_equal(parse_ok("2026-10-25 02:30+02:00", NULL), 1792891800 * SEC - 3600 * SEC);
	assert_string_equal(fmt(parse_ok("2026-10-25 00:59:59Z", NULL), tz), "2026-10-25T02:59:59+02:00");
	assert_string_equal(fmt(parse_ok("2026-10-25 01:00:00Z", NULL), tz), "2026-10-25T02:00:00+01:00");
	assert_int_equal(parse_ok("2026-10-25 01:59:59", tz), parse_ok("2026-10-24 23:59:59Z", NULL));
	assert_int_equal(parse_ok("2026-10-25 03:00", tz), parse_ok("2026-10-25 02:00Z", NULL));
}

static void
test_dst_edges_new_york(void **state)
{
	const char *tz = "America/New_York";

	(void) state;
	/* spring forward 2026-03-08 02:00 EST -> 03:00 EDT; 02:30 read as EST */
	assert_int_equal(parse_ok("2026-03-08 02:30", tz), 1772955000 * SEC);
	assert_string_equal(fmt(1772955000 * SEC, tz), "2026-03-08T03:30:00-04:00");
	assert_string_equal(fmt(parse_ok("2026-03-08 06:59:59Z", NULL), tz), "2026-03-08T01:59:59-05:00");
	assert_string_equal(fmt(parse_ok("2026-03-08 07:00:00Z", NULL), tz), "2026-03-08T03:00:00-04:00");
	/* fall back 2026-11-01 02:00 EDT -> 01:00 EST; 01:30 happens twice, EST wins */
	assert_int_equal(parse_ok("2026-11-01 01:30", tz), 1793514600 * SEC);
	assert_string_equal(fmt(1793514600 * SEC, tz), "2026-11-01T01:30:00-05:00");
	assert_string_equal(fmt(1793514600 * SEC - 3600 * SEC, tz), "2026-11-01T01:30:00-04:00");
	assert_int_equal(parse_ok("2026-11-01 00:59", tz), parse_ok("2026-11-01 04:59Z", NULL));
	assert_int_equal(parse_ok("2026-11-01 02:00", tz), parse_ok("2026-11-01 07:00Z", NULL));
	/* PostgreSQL's documented examples (2018) give the same answers */
	assert_string_equal(fmt(parse_ok("2018-03-11 02:30", tz), tz), "2018-03-11T03:30:00-04:00");
	assert_string_equal(fmt(parse_ok("2018-11-04 01:30", tz), tz), "2018-11-04T01:30:00-05:00");
}

static void
test_format(void **state)
{
	char out[PV_TIME_FORMAT_MAX];
	const PvTime t = (1795354200 + 5) * SEC + 999999;	/* micros are truncated */

	(void) state;
	assert_string_equal(fmt(t, "UTC"), "2026-11-22T13:30:05Z");
	assert_string_equal(fmt(t, "Etc/UTC"), "2026-11-22T13:30:05Z");
	assert_string_equal(fmt(t, "Z"), "2026-11-22T13:30:05Z");
	assert_string_equal(fmt(t, "GMT"), "2026-11-22T13:30:05+00:00");
	assert_string_equal(fmt(t, "Europe/Berlin"), "2026-11-22T14:30:05+01:00");
	assert_string_equal(fmt(t, "America/New_York"), "2026-11-22T08:30:05-05:00");
	assert_string_equal(fmt(t, "Asia/Kolkata"), "2026-11-22T19:00:05+05:30");
	assert_string_equal(pv_time_format_utc(out, sizeof(out), t), "2026-11-22T13:30:05Z");
	assert_string_equal(pv_time_format_utc(out, sizeof(out), -1), "1969-12-31T23:59:59Z");
	assert_string_equal(pv_time_format_utc(out, sizeof(out), 0), "1970-01-01T00:00:00Z");
	/* local mean time before zones existed, far past and far future (POSIX footer) */
	assert_string_equal(fmt(parse_ok("1890-01-01Z", NULL), "Europe/Berlin"), "1890-01-01T00:53:28+00:53:28");
	assert_string_equal(fmt(parse_ok("2100-07-01Z", NULL), "Europe/Berlin"), "2100-07-01T02:00:00+02:00");
	assert_string_equal(fmt(parse_ok("2100-12-01Z", NULL), "America/New_York"), "2100-11-30T19:00:00-05:00");
	/* an unknown zone: error, but out is still the UTC form */
	assert_int_equal(pv_time_format(out, sizeof(out), t, "Nowhere/Land"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "unknown time zone 'Nowhere/Land'");
	assert_string_equal(out, "2026-11-22T13:30:05Z");
	/* what is printed parses back */
	assert_int_equal(parse_ok(fmt(t, "Asia/Kolkata"), "UTC"), t - 999999);
	assert_int_equal(parse_ok(fmt(t, "America/New_York"), "Europe/Berlin"), t - 999999);
}

static void
test_now_and_relative(void **state)
{
	PvTime before, after, t;

	(void) state;
	before = pv_time_now();
	t = parse_ok("now", NULL);
	after = pv_time_now();
	assert_true(t >= before && t <= after);
	assert_true(before > parse_ok("2024-01-01", "UTC"));

	before = pv_time_now();
	t = parse_ok("now-30min", NULL);
	after = pv_time_now();
	assert_true(t >= before - 1800 * SEC && t <= after - 1800 * SEC);
	/* bracketed by clock readings: a slow or preempted run cannot fail it */
	before = pv_time_now();
	t = parse_ok("NOW - 1h30min", NULL);
	after = pv_time_now();
	assert_true(t >= before - 5400 * SEC && t <= after - 5400 * SEC);
	before = pv_time_now();
	t = parse_ok("now+1h", NULL);
	after = pv_time_now();
	assert_true(t >= before + 3600 * SEC && t <= after + 3600 * SEC);
	before = pv_time_now();
	t = parse_ok("-2h", NULL);
	after = pv_time_now();
	assert_true(t >= before - 7200 * SEC && t <= after - 7200 * SEC);
	before = pv_time_now();
	t = parse_ok("-500ms", NULL);
	after = pv_time_now();
	assert_true(t >= before - 500000 && t <= after - 500000);
}

static void
test_monotonic(void **state)
{
	int64_t a, b;
	struct timespec ts = {0, 20 * 1000 * 1000};

	(void) state;
	a = pv_time_monotonic_ms();
	nanosleep(&ts, NULL);
	b = pv_time_monotonic_ms();
	assert_true(b - a >= 20 && b - a < 60000);	/* the bound only catches a wrong unit */
}

static void
test_parse_invalid(void **state)
{
	PvTime t = 42;

	(void) state;
	parse_bad("", NULL, "invalid time ''");
	assert_string_equal(pv_error_hint_msg(),
						"use an ISO 8601 time such as '2026-11-22 14:30:05', '2026-11-22T14:30:05+01:00', "
						"'2026-11-22', 'now' or '-2h'");
	parse_bad(NULL, NULL, "invalid time ''");
	parse_bad("yesterday", NULL, "invalid time 'yesterday'");
	parse_bad("nowish", NULL, "invalid time 'nowish'");
	parse_bad("now-", NULL, "invalid time 'now-'");
	parse_bad("now-abc", NULL, "invalid time 'now-abc'");
	parse_bad("now 30min", NULL, "invalid time 'now 30min'");
	parse_bad("-", NULL, "invalid time '-'");
	parse_bad("2026-13-01", "UTC", "invalid time '2026-13-01'");
	parse_bad("2026-00-01", "UTC", "invalid time '2026-00-01'");
	parse_bad("2026-02-29", "UTC", "invalid time '2026-02-29'");
	parse_bad("2026-04-31", "UTC", "invalid time '2026-04-31'");
	parse_bad("2026-11-00", "UTC", "invalid time '2026-11-00'");
	parse_bad("26-11-22", "UTC", "invalid time '26-11-22'");
	parse_bad("20261122", "UTC", "invalid time '20261122'");
	parse_bad("2026-11-22 24:00", "UTC", "invalid time '2026-11-22 24:00'");
	parse_bad("2026-11-22 12:60", "UTC", "invalid time '2026-11-22 12:60'");
	parse_bad("2026-11-22 12:30:60", "UTC", "invalid time '2026-11-22 12:30:60'");
	parse_bad("2026-11-22 12:3", "UTC", "invalid time '2026-11-22 12:3'");
	parse_bad("2026-11-22 12:30:00.", "UTC", "invalid time '2026-11-22 12:30:00.'");
	parse_bad("2026-11-22 12:30x", "UTC", "invalid time '2026-11-22 12:30x'");
	parse_bad("2026-11-22T", "UTC", "invalid time '2026-11-22T'");
	parse_bad("2026-11-22T12:30+25:00", "UTC", "invalid time '2026-11-22T12:30+25:00'");
	parse_bad("2026-11-22T12:30+02:0", "UTC", "invalid time '2026-11-22T12:30+02:0'");
	parse_bad("2026-11-22T12:30+02:00 junk", "UTC", "invalid time '2026-11-22T12:30+02:00 junk'");
	parse_bad("2026-11-22 12:30 Europe/Berlin x", "UTC", "invalid time '2026-11-22 12:30 Europe/Berlin x'");
	parse_bad("2026-11-22 12:30 Mars/Olympus", "UTC",
			  "invalid time '2026-11-22 12:30 Mars/Olympus': unknown time zone 'Mars/Olympus'");
	/* zones given by the caller */
	parse_bad("2026-11-22", "Nowhere/Zone", "unknown time zone 'Nowhere/Zone'");
	assert_string_equal(pv_error_hint_msg(),
						"use an IANA time zone name such as 'Europe/Berlin', 'America/New_York' or 'UTC'");
	parse_bad("2026-11-22", "../../../etc/passwd", "unknown time zone '../../../etc/passwd'");
	parse_bad("2026-11-22", "", "unknown time zone ''");
	parse_bad("2026-11-22", "zone1970.tab", "invalid time zone 'zone1970.tab': not a TZif file");
	parse_bad("2026-11-22", "Europe", "unknown time zone 'Europe'");
	/* an explicit offset does not need the default zone, even a bad one */
	assert_int_equal(pv_time_parse(&t, "2026-11-22Z", "Nowhere/Zone"), PV_OK);
}

static void
test_zone_check(void **state)
{
	(void) state;
	assert_int_equal(pv_time_zone_check("Europe/Berlin"), PV_OK);
	assert_int_equal(pv_time_zone_check("UTC"), PV_OK);
	assert_int_equal(pv_time_zone_check("utc"), PV_OK);
	assert_int_equal(pv_time_zone_check(NULL), PV_OK);
	assert_int_equal(pv_time_zone_check("EST5EDT"), PV_OK);
	assert_int_equal(pv_time_zone_check("<+0330>-3:30"), PV_OK);
	assert_int_equal(pv_time_zone_check("Europe/Berln"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "unknown time zone 'Europe/Berln'");
	assert_int_equal(pv_time_zone_check("CET-1CEST,M3.5.0"), PV_EUSAGE);
}

static void
test_local_zone_from_env(void **state)
{
	const PvTime t = 1795354200 * SEC;	/* 2026-11-22T13:30:00Z */
	char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	char out[PV_TIME_FORMAT_MAX];

	(void) state;
	setenv("TZ", "America/New_York", 1);
	assert_string_equal(fmt(t, NULL), "2026-11-22T08:30:00-05:00");
	assert_int_equal(parse_ok("2026-11-22 08:30", NULL), t);
	setenv("TZ", ":Europe/Berlin", 1);
	assert_string_equal(fmt(t, NULL), "2026-11-22T14:30:00+01:00");
	assert_string_equal(pv_time_format_local(out, sizeof(out), t), "2026-11-22T14:30:00+01:00");
	setenv("TZ", "", 1);
	assert_string_equal(fmt(t, NULL), "2026-11-22T13:30:00Z");
	setenv("TZ", "AEST-10AEDT,M10.1.0,M4.1.0/3", 1);
	assert_string_equal(fmt(t, NULL), "2026-11-23T00:30:00+11:00");
	/* a broken local zone falls back to UTC, as libc does, without an error */
	setenv("TZ", "Not/A_Zone", 1);
	pv_error_clear();
	assert_string_equal(fmt(t, NULL), "2026-11-22T13:30:00Z");
	assert_string_equal(pv_error_msg(), "");
	/* unset: /etc/localtime; agree with libc */
	unsetenv("TZ");
	{
		struct tm tm;
		time_t s = (time_t) (t / SEC);
		PvCalendar c;

		tzset();
		localtime_r(&s, &tm);
		assert_int_equal(pv_time_calendar(&c, t, NULL), PV_OK);
		assert_int_equal(c.utc_offset, tm.tm_gmtoff);
		assert_int_equal(c.hour, tm.tm_hour);
	}
	if (saved != NULL)
	{
		setenv("TZ", saved, 1);
		free(saved);
	}
}

static void
cal_expect(PvTime t, const char *tz, int y, int mo, int d, int wd, int yday, int iso_y, int iso_w)
{
	PvCalendar c;

	assert_int_equal(pv_time_calendar(&c, t, tz), PV_OK);
	assert_int_equal(c.year, y);
	assert_int_equal(c.month, mo);
	assert_int_equal(c.day, d);
	assert_int_equal(c.weekday, wd);
	assert_int_equal(c.yday, yday);
	assert_int_equal(c.iso_year, iso_y);
	assert_int_equal(c.iso_week, iso_w);
}

static void
test_calendar(void **state)
{
	PvCalendar c;
	PvTime t;

	(void) state;
	cal_expect(parse_ok("2026-01-01 12:00Z", NULL), "UTC", 2026, 1, 1, 4, 1, 2026, 1);	/* Thursday */
	cal_expect(parse_ok("2027-01-01 12:00Z", NULL), "UTC", 2027, 1, 1, 5, 1, 2026, 53);	/* Friday */
	cal_expect(parse_ok("2024-12-30 12:00Z", NULL), "UTC", 2024, 12, 30, 1, 365, 2025, 1);
	cal_expect(parse_ok("2024-12-31 12:00Z", NULL), "UTC", 2024, 12, 31, 2, 366, 2025, 1);
	cal_expect(parse_ok("2021-01-03 12:00Z", NULL), "UTC", 2021, 1, 3, 7, 3, 2020, 53);
	/* the zone decides the date: 23:30 UTC Sunday is Monday in Berlin */
	cal_expect(parse_ok("2026-11-22 23:30Z", NULL), "UTC", 2026, 11, 22, 7, 326, 2026, 47);
	cal_expect(parse_ok("2026-11-22 23:30Z", NULL), "Europe/Berlin", 2026, 11, 23, 1, 327, 2026, 48);
	cal_expect(parse_ok("1969-12-31 23:00Z", NULL), "UTC", 1969, 12, 31, 3, 365, 1970, 1);

	t = parse_ok("2026-07-04 09:08:07.654321", "America/New_York");
	assert_int_equal(pv_time_calendar(&c, t, "America/New_York"), PV_OK);
	assert_int_equal(c.hour, 9);
	assert_int_equal(c.minute, 8);
	assert_int_equal(c.second, 7);
	assert_int_equal(c.usec, 654321);
	assert_int_equal(c.utc_offset, -4 * 3600);
	assert_true(c.is_dst);
	assert_int_equal(pv_time_calendar(&c, parse_ok("2026-01-04 00:00:00.000001Z", NULL), "UTC"), PV_OK);
	assert_false(c.is_dst);
	assert_int_equal(c.usec, 1);
	assert_int_equal(pv_time_calendar(&c, 0, "Bogus/Zone"), PV_EUSAGE);
	assert_int_equal(pv_time_calendar(&c, -1, "UTC"), PV_OK);
	assert_int_equal(c.usec, 999999);
	assert_int_equal(c.second, 59);
}

static void
test_from_calendar(void **state)
{
	PvCalendar c = {0};
	PvTime t;

	(void) state;
	c.year = 2026;
	c.month = 11;
	c.day = 22;
	c.hour = 14;
	c.minute = 30;
	assert_int_equal(pv_time_from_calendar(&t, &c, "Europe/Berlin"), PV_OK);
	assert_int_equal(t, 1795354200 * SEC);
	/* out-of-range fields normalise: month 13 = January next year, day 0 = last of previous month */
	c = (PvCalendar) {.year = 2026, .month = 13, .day = 1};
	assert_int_equal(pv_time_from_calendar(&t, &c, "UTC"), PV_OK);
	assert_int_equal(t, parse_ok("2027-01-01Z", NULL));
	c = (PvCalendar) {.year = 2024, .month = 3, .day = 0};
	assert_int_equal(pv_time_from_calendar(&t, &c, "UTC"), PV_OK);
	assert_int_equal(t, parse_ok("2024-02-29Z", NULL));
	c = (PvCalendar) {.year = 2026, .month = 3, .day = 28, .hour = 24 + 2, .minute = 30};
	assert_int_equal(pv_time_from_calendar(&t, &c, "Europe/Berlin"), PV_OK);
	assert_int_equal(t, 1774747800 * SEC);	/* the gap, as parse resolves it */
	c = (PvCalendar) {.year = 2026, .month = 1, .day = 1, .usec = -1};
	assert_int_equal(pv_time_from_calendar(&t, &c, "UTC"), PV_OK);
	assert_int_equal(t, parse_ok("2026-01-01Z", NULL) - 1);
	assert_int_equal(pv_time_from_calendar(&t, &c, "No/Such"), PV_EUSAGE);

	assert_int_equal(pv_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(pv_days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(pv_days_from_civil(1969, 12, 31), -1);
	assert_int_equal(pv_days_from_civil(1600, 1, 1), -135140);
	assert_true(pv_is_leap_year(2000));
	assert_false(pv_is_leap_year(1900));
	assert_true(pv_is_leap_year(2024));
	assert_int_equal(pv_days_in_month(2024, 2), 29);
	assert_int_equal(pv_days_in_month(2100, 2), 28);
	assert_int_equal(pv_days_in_month(2026, 13), 0);
}

/* Our zone code against glibc's, for many instants across four centuries. */
static void
compare_with_libc(const char *zone, const char *tzenv, int64_t start)
{
	char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	int64_t stop = 7258118400LL;	/* 2200-01-01 */
	long checked = 0;

	setenv("TZ", tzenv, 1);
	tzset();
	for (int64_t s = start; s < stop; s += 86400 * 3 + 3607)
	{
		/* each sample, and the seconds around the next hour boundary */
		for (int k = 0; k < 2; k++)
		{
			int64_t u = s + k * 1800;
			time_t tt = (time_t) u;
			struct tm tm;
			PvCalendar c, back;
			PvTime r;

			localtime_r(&tt, &tm);
			assert_int_equal(pv_time_calendar(&c, u * SEC, zone), PV_OK);
			if (c.utc_offset != tm.tm_gmtoff || c.hour != tm.tm_hour || c.day != tm.tm_mday ||
				c.month != tm.tm_mon + 1 || c.year != tm.tm_year + 1900 || c.is_dst != (tm.tm_isdst > 0) ||
				c.weekday != (tm.tm_wday == 0 ? 7 : tm.tm_wday) || c.yday != tm.tm_yday + 1)
				fail_msg("%s at %lld: ours %04d-%02d-%02d %02d off %d dst %d, libc %04d-%02d-%02d %02d off %ld dst %d",
						 zone, (long long) u, c.year, c.month, c.day, c.hour, c.utc_offset, c.is_dst,
						 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_gmtoff, tm.tm_isdst);
			/* local -> UTC gives the same instant, or the later one of an overlap */
			assert_int_equal(pv_time_from_calendar(&r, &c, zone), PV_OK);
			assert_int_equal(pv_time_calendar(&back, r, zone), PV_OK);
			assert_int_equal(back.hour * 3600 + back.minute * 60 + back.second,
							 c.hour * 3600 + c.minute * 60 + c.second);
			assert_int_equal(back.day, c.day);
			assert_true(r >= u * SEC);
			if (r != u * SEC)
				assert_true(back.utc_offset < c.utc_offset);
			checked++;
		}
	}
	assert_true(checked > 40000);
	if (saved != NULL)
	{
		setenv("TZ", saved, 1);
		free(saved);
	}
	else
		unsetenv("TZ");
	tzset();
}

static void
test_zones_match_libc(void **state)
{
	static const char *const zones[] = {
		"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
		"Europe/Dublin", "America/Sao_Paulo", "Africa/Casablanca", "Pacific/Chatham",
		"America/Nuuk", "Asia/Tehran", "Europe/Moscow", "UTC",
	};

	(void) state;
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		compare_with_libc(zones[i], zones[i], -2208988800LL);	/* from 1900-01-01 */
	/*
	 * POSIX strings (no table at all): the rule code alone.  glibc applies
	 * such rules only from 1970 on (we apply them to every year, as tzcode
	 * does), so compare from there.
	 */
	compare_with_libc("EST5EDT,M3.2.0,M11.1.0", "EST5EDT,M3.2.0,M11.1.0", 0);
	compare_with_libc("AEST-10AEDT,M10.1.0,M4.1.0/3", "AEST-10AEDT,M10.1.0,M4.1.0/3", 0);
	compare_with_libc("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", 0);
	compare_with_libc("<+0330>-3:30", "<+0330>-3:30", 0);
	compare_with_libc("XST3XDT,J60/1,J300/1", "XST3XDT,J60/1,J300/1", 0);
	compare_with_libc("YST3YDT,59/1,299/1", "YST3YDT,59/1,299/1", 0);
	compare_with_libc("EST5EDT", "EST5EDT", 0);	/* the file of that name */
}

typedef struct ThreadArg
{
	const char *tz;
	const char *expect;
	int failures;
} ThreadArg;

static void *
thread_main(void *p)
{
	ThreadArg *a = p;
	char out[PV_TIME_FORMAT_MAX];
	PvTime t;

	for (int i = 0; i < 2000; i++)
	{
		if (pv_time_format(out, sizeof(out), 1795354200 * SEC, a->tz) != PV_OK || strcmp(out, a->expect) != 0)
			a->failures++;
		if (pv_time_parse(&t, "2026-11-22 13:30", a->tz) != PV_OK)
			a->failures++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	ThreadArg args[] = {
		{"Europe/Berlin", "2026-11-22T14:30:00+01:00", 0},
		{"America/New_York", "2026-11-22T08:30:00-05:00", 0},
		{"Asia/Tokyo", "2026-11-22T22:30:00+09:00", 0},
		{"Australia/Adelaide", "2026-11-23T00:00:00+10:30", 0},
	};
	pthread_t th[4];

	(void) state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	for (int i = 0; i < 4; i++)
	{
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_utc_forms),
		cmocka_unit_test(test_parse_explicit_offsets),
		cmocka_unit_test(test_parse_default_zone),
		cmocka_unit_test(test_dst_edges_berlin),
		cmocka_unit_test(test_dst_edges_new_york),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_now_and_relative),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_zone_check),
		cmocka_unit_test(test_local_zone_from_env),
		cmocka_unit_test(test_calendar),
		cmocka_unit_test(test_from_calendar),
		cmocka_unit_test(test_zones_match_libc),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
