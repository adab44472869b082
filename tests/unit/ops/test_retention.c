/*
 * test_retention.c: the retention engine (ops/retention.h) over synthetic
 * calendars, table-driven: every test lists exactly the backups that must be
 * kept, each with its reasons; every other backup must expire.
 *
 * Calendars: hourly backups for two whole years (with and without gaps),
 * daylight-saving changes in Europe/Berlin and America/New_York (a day of
 * 25 hours, a repeated hour, a missing hour), ISO weeks across New Year,
 * keep-within, keep-min, pins, ties and the no-policy rule.  Also policy
 * parsing and the configuration's precedence (retention_policy_for).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "config/config.h"
#include "ops/retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR (3600 * PV_USEC_PER_SEC)

static PvTime
utc(const char *text)
{
	PvTime t = 0;

	if (pv_time_parse(&t, text, "UTC") != PV_OK)
		fail_msg("bad time '%s': %s", text, pv_error_msg());
	return t;
}

/* A calendar: entries with ids "<UTC time>-000000"-like, owned here. */
typedef struct Cal
{
	RetentionEntry *e;
	char (*ids)[32];
	size_t n, cap;
} Cal;

static void
cal_add(Cal *c, PvTime t)
{
	PvCalendar k;

	if (c->n == c->cap)
	{
		c->cap = c->cap ? 2 * c->cap : 64;
		c->e = pv_realloc(c->e, c->cap * sizeof(RetentionEntry));
		c->ids = pv_realloc(c->ids, c->cap * sizeof(*c->ids));
		for (size_t i = 0; i < c->n; i++)
			c->e[i].id = c->ids[i];
	}
	assert_int_equal(pv_time_calendar(&k, t, "UTC"), PV_OK);
	snprintf(c->ids[c->n], sizeof(c->ids[c->n]), "%04d%02d%02dT%02d%02d%02dZ-%06zx", k.year, k.month,
			 k.day, k.hour, k.minute, k.second, c->n);
	c->e[c->n] = (RetentionEntry) {.id = c->ids[c->n], .start = t};
	c->n++;
}

/* Hourly from first to last (inclusive), skipping [gap_from, gap_to) pairs (0-terminated). */
static void
cal_hourly(Cal *c, const char *first, const char *last, const char *const *gaps)
{
	PvTime a = utc(first), b = utc(last);

	for (PvTime t = a; t <= b; t += HOUR)
	{
		bool skip = false;

		for (size_t g = 0; gaps != NULL && gaps[g] != NULL; g += 2)
			skip |= t >= utc(gaps[g]) && t < utc(gaps[g + 1]);
		if (!skip)
			cal_add(c, t);
	}
}

static void
cal_free(Cal *c)
{
	pv_free(c->e);
	pv_free(c->ids);
	memset(c, 0, sizeof(*c));
}

/* One expected kept backup: its start time (UTC) and reasons ("daily,weekly"). */
typedef struct Kept
{
	const char *time;
	const char *reasons;
} Kept;

/*
 * Apply and compare: every entry listed in want must be kept with exactly
 * those reasons, every other entry must expire.
 */
static void
check_plan(Cal *c, const RetentionPolicy *p, const char *tz, const Kept *want, size_t nwant)
{
	bool *matched = pv_calloc(nwant ? nwant : 1, sizeof(bool));
	size_t nkept = 0;

	assert_int_equal(retention_apply(c->e, c->n, p, tz), PV_OK);
	for (size_t i = 0; i < c->n; i++)
	{
		const RetentionEntry *e = &c->e[i];
		Buf got = PV_BUF_INIT;
		bool listed = false;

		retention_reasons_format(e->reasons, &got);
		for (size_t k = 0; k < nwant; k++)
			if (utc(want[k].time) == e->start && !matched[k])
			{
				listed = true;
				matched[k] = true;
				if (strcmp(buf_cstr(&got), want[k].reasons) != 0)
					fail_msg("backup at %s: kept for '%s', expected '%s'", want[k].time, buf_cstr(&got),
							 want[k].reasons);
				break;
			}
		if (!listed && e->reasons != 0)
		{
			char t[PV_TIME_FORMAT_MAX];

			fail_msg("backup at %s is kept for '%s' but should expire",
					 pv_time_format_utc(t, sizeof(t), e->start), buf_cstr(&got));
		}
		nkept += e->reasons != 0;
		buf_free(&got);
	}
	for (size_t k = 0; k < nwant; k++)
		if (!matched[k])
			fail_msg("no backup at %s (expected to be kept for '%s')", want[k].time, want[k].reasons);
	assert_int_equal(nkept, nwant);
	pv_free(matched);
}

/* ---- two years of hourly backups ---- */

static const Kept two_years_utc[] = {
	{"2025-12-31T23:00Z", "newest,hourly,daily,weekly,monthly,yearly"},
	{"2025-12-31T22:00Z", "hourly"},
	{"2025-12-31T21:00Z", "hourly"},
	{"2025-12-31T20:00Z", "hourly"},
	{"2025-12-31T19:00Z", "hourly"},
	{"2025-12-31T18:00Z", "hourly"},
	{"2025-12-30T23:00Z", "daily"},
	{"2025-12-29T23:00Z", "daily"},				/* Monday: same ISO week (2026-W01) as the 31st */
	{"2025-12-28T23:00Z", "daily,weekly"},		/* Sunday of 2025-W52 */
	{"2025-12-27T23:00Z", "daily"},
	{"2025-12-26T23:00Z", "daily"},
	{"2025-12-25T23:00Z", "daily"},
	{"2025-12-21T23:00Z", "weekly"},
	{"2025-12-14T23:00Z", "weekly"},
	{"2025-11-30T23:00Z", "monthly"},
	{"2025-10-31T23:00Z", "monthly"},
	{"2025-09-30T23:00Z", "monthly"},
	{"2025-08-31T23:00Z", "monthly"},
	{"2025-07-31T23:00Z", "monthly"},
	{"2025-06-30T23:00Z", "monthly"},
	{"2025-05-31T23:00Z", "monthly"},
	{"2025-04-30T23:00Z", "monthly"},
	{"2025-03-31T23:00Z", "monthly"},
	{"2025-02-28T23:00Z", "monthly"},
	{"2025-01-31T23:00Z", "monthly"},
	{"2024-12-31T23:00Z", "yearly"},			/* only two years hold backups: yearly=3 keeps two */
};

static void
test_two_years_hourly(void **state)
{
	RetentionPolicy p = {.hourly = 6, .daily = 7, .weekly = 4, .monthly = 12, .yearly = 3};
	Cal c = {0};

	(void) state;
	cal_hourly(&c, "2024-01-01T00:00Z", "2025-12-31T23:00Z", NULL);
	assert_int_equal(c.n, 731 * 24);
	check_plan(&c, &p, "UTC", two_years_utc, PV_ARRAY_LEN(two_years_utc));
	cal_free(&c);
}

/* Periods without backups do not use up the counts. */
static const Kept two_years_gaps[] = {
	{"2025-12-31T23:00Z", "newest,hourly,daily,weekly,monthly,yearly"},
	{"2025-12-31T22:00Z", "hourly"},
	{"2025-12-31T21:00Z", "hourly"},
	{"2025-12-31T20:00Z", "hourly"},
	{"2025-12-31T19:00Z", "hourly"},
	{"2025-12-31T18:00Z", "hourly"},
	{"2025-12-30T23:00Z", "daily"},
	{"2025-12-29T23:00Z", "daily"},
	{"2025-12-28T23:00Z", "daily,weekly"},
	{"2025-12-27T23:00Z", "daily"},
	{"2025-12-23T23:00Z", "daily"},				/* 24th to 26th have no backup */
	{"2025-12-22T23:00Z", "daily"},
	{"2025-12-21T23:00Z", "weekly"},
	{"2025-12-14T23:00Z", "weekly"},
	{"2025-11-30T23:00Z", "monthly"},
	{"2025-10-31T23:00Z", "monthly"},
	{"2025-09-30T23:00Z", "monthly"},			/* July and August have none */
	{"2025-06-09T23:00Z", "monthly"},			/* the last before the gap */
	{"2025-05-31T23:00Z", "monthly"},
	{"2025-04-30T23:00Z", "monthly"},
	{"2025-03-31T23:00Z", "monthly"},
	{"2025-02-28T23:00Z", "monthly"},
	{"2025-01-31T23:00Z", "monthly"},
	{"2024-12-31T23:00Z", "monthly,yearly"},
	{"2024-11-30T23:00Z", "monthly"},
};

static void
test_two_years_with_gaps(void **state)
{
	static const char *const gaps[] = {"2025-06-10T00:00Z", "2025-09-20T00:00Z",
		"2025-12-24T00:00Z", "2025-12-27T00:00Z", NULL};
	RetentionPolicy p = {.hourly = 6, .daily = 7, .weekly = 4, .monthly = 12, .yearly = 3};
	Cal c = {0};

	(void) state;
	cal_hourly(&c, "2024-01-01T00:00Z", "2025-12-31T23:00Z", gaps);
	check_plan(&c, &p, "UTC", two_years_gaps, PV_ARRAY_LEN(two_years_gaps));
	cal_free(&c);
}

/*
 * The same two years judged in Europe/Berlin: the newest backup
 * (23:00 UTC on 31 December) is 00:00 on 1 January 2026 there, a new day,
 * month and year of its own; days end at 22:00 or 23:00 UTC depending on
 * daylight-saving time.
 */
static const Kept two_years_berlin[] = {
	{"2025-12-31T23:00Z", "newest,hourly,daily,weekly,monthly,yearly"},	/* 2026-01-01 00:00 CET */
	{"2025-12-31T22:00Z", "hourly,daily,monthly,yearly"},	/* 23:00 on the 31st */
	{"2025-12-31T21:00Z", "hourly"},
	{"2025-12-30T22:00Z", "daily"},
	{"2025-12-29T22:00Z", "daily"},
	{"2025-12-28T22:00Z", "daily,weekly"},		/* Sunday 23:00 CET */
	{"2025-12-21T22:00Z", "weekly"},
	{"2025-11-30T22:00Z", "monthly"},
	{"2025-10-31T22:00Z", "monthly"},			/* CET again since 26 October */
	{"2025-09-30T21:00Z", "monthly"},			/* CEST: 23:00 local is 21:00 UTC */
	{"2024-12-31T22:00Z", "yearly"},
};

static void
test_two_years_berlin(void **state)
{
	RetentionPolicy p = {.hourly = 3, .daily = 5, .weekly = 3, .monthly = 5, .yearly = 3};
	Cal c = {0};

	(void) state;
	cal_hourly(&c, "2024-01-01T00:00Z", "2025-12-31T23:00Z", NULL);
	check_plan(&c, &p, "Europe/Berlin", two_years_berlin, PV_ARRAY_LEN(two_years_berlin));
	cal_free(&c);
}

/* ---- daylight-saving edges ---- */

static void
cal_times(Cal *c, const char *const *times)
{
	for (size_t i = 0; times[i] != NULL; i++)
		cal_add(c, utc(times[i]));
}

/* Berlin, 26 October 2025: 03:00 CEST becomes 02:00 CET (01:00 UTC). */
static void
test_dst_berlin_fall_back(void **state)
{
	static const char *const times[] = {
		"2025-10-25T21:30Z",	/* 23:30 CEST on the 25th */
		"2025-10-25T22:30Z",	/* 00:30 CEST on the 26th */
		"2025-10-25T23:30Z",	/* 01:30 CEST */
		"2025-10-26T00:30Z",	/* 02:30 CEST */
		"2025-10-26T01:30Z",	/* 02:30 CET: the same wall-clock hour again */
		"2025-10-26T02:30Z",	/* 03:30 CET */
		NULL};
	static const Kept want[] = {
		{"2025-10-26T02:30Z", "newest,hourly,daily"},
		{"2025-10-26T01:30Z", "hourly"},
		{"2025-10-26T00:30Z", "hourly"},
		{"2025-10-25T23:30Z", "hourly"},
		{"2025-10-25T21:30Z", "daily"},
	};
	RetentionPolicy p = {.hourly = 4, .daily = 2};
	Cal c = {0};
	char label[64];

	(void) state;
	cal_times(&c, times);
	check_plan(&c, &p, "Europe/Berlin", want, PV_ARRAY_LEN(want));
	retention_period_label(label, sizeof(label), RETENTION_HOURLY, utc("2025-10-26T00:30Z"), "Europe/Berlin");
	assert_string_equal(label, "2025-10-26 02h (+02:00)");
	retention_period_label(label, sizeof(label), RETENTION_HOURLY, utc("2025-10-26T01:30Z"), "Europe/Berlin");
	assert_string_equal(label, "2025-10-26 02h (+01:00)");
	retention_period_label(label, sizeof(label), RETENTION_DAILY, utc("2025-10-25T22:30Z"), "Europe/Berlin");
	assert_string_equal(label, "2025-10-26");
	cal_free(&c);
}

/* Berlin, 30 March 2025: 02:00 CET becomes 03:00 CEST; the day has 23 hours. */
static void
test_dst_berlin_spring_forward(void **state)
{
	static const char *const times[] = {
		"2025-03-29T22:59Z",	/* 23:59 CET on the 29th */
		"2025-03-29T23:00Z",	/* 00:00 CET on the 30th */
		"2025-03-30T00:30Z",	/* 01:30 CET */
		"2025-03-30T01:30Z",	/* 03:30 CEST (02:30 does not exist) */
		"2025-03-30T21:59Z",	/* 23:59 CEST, the last minute of the short day */
		"2025-03-30T22:00Z",	/* 00:00 CEST on the 31st */
		NULL};
	static const Kept want[] = {
		{"2025-03-30T22:00Z", "newest,daily"},
		{"2025-03-30T21:59Z", "daily"},
		{"2025-03-29T22:59Z", "daily"},
	};
	RetentionPolicy p = {.daily = 3};
	Cal c = {0};

	(void) state;
	cal_times(&c, times);
	check_plan(&c, &p, "Europe/Berlin", want, PV_ARRAY_LEN(want));
	cal_free(&c);
}

/* New York, 9 March 2025: 02:00 EST becomes 03:00 EDT (07:00 UTC). */
static void
test_dst_new_york_spring_forward(void **state)
{
	static const char *const times[] = {
		"2025-03-09T04:30Z",	/* 23:30 EST on the 8th */
		"2025-03-09T05:30Z",	/* 00:30 EST on the 9th */
		"2025-03-09T06:30Z",	/* 01:30 EST */
		"2025-03-09T07:30Z",	/* 03:30 EDT */
		"2025-03-10T03:30Z",	/* 23:30 EDT on the 9th */
		"2025-03-10T04:30Z",	/* 00:30 EDT on the 10th */
		NULL};
	static const Kept want[] = {
		{"2025-03-10T04:30Z", "newest,hourly,daily"},
		{"2025-03-10T03:30Z", "hourly,daily"},
		{"2025-03-09T07:30Z", "hourly"},
		{"2025-03-09T04:30Z", "daily"},
	};
	RetentionPolicy p = {.hourly = 3, .daily = 3};
	Cal c = {0};

	(void) state;
	cal_times(&c, times);
	check_plan(&c, &p, "America/New_York", want, PV_ARRAY_LEN(want));
	cal_free(&c);
}

/* New York, 2 November 2025: 02:00 EDT becomes 01:00 EST; 01:xx happens twice. */
static void
test_dst_new_york_fall_back(void **state)
{
	static const char *const times[] = {
		"2025-11-02T04:30Z",	/* 00:30 EDT */
		"2025-11-02T05:30Z",	/* 01:30 EDT */
		"2025-11-02T06:30Z",	/* 01:30 EST */
		"2025-11-02T07:30Z",	/* 02:30 EST */
		NULL};
	static const Kept want[] = {
		{"2025-11-02T07:30Z", "newest,hourly,daily"},
		{"2025-11-02T06:30Z", "hourly"},
		{"2025-11-02T05:30Z", "hourly"},
	};
	RetentionPolicy p = {.hourly = 3, .daily = 1};
	Cal c = {0};
	char label[64];

	(void) state;
	cal_times(&c, times);
	check_plan(&c, &p, "America/New_York", want, PV_ARRAY_LEN(want));
	retention_period_label(label, sizeof(label), RETENTION_HOURLY, utc("2025-11-02T05:30Z"), "America/New_York");
	assert_string_equal(label, "2025-11-02 01h (-04:00)");
	retention_period_label(label, sizeof(label), RETENTION_HOURLY, utc("2025-11-02T06:30Z"), "America/New_York");
	assert_string_equal(label, "2025-11-02 01h (-05:00)");
	cal_free(&c);
}

/* ISO weeks cross New Year: 2020-W53 runs from 28 December 2020 to 3 January 2021. */
static void
test_iso_weeks_across_new_year(void **state)
{
	static const char *const times[] = {
		"2020-12-28T12:00Z", "2020-12-31T12:00Z", "2021-01-03T12:00Z", "2021-01-04T12:00Z",
		"2021-01-05T12:00Z", NULL};
	static const Kept want[] = {
		{"2021-01-05T12:00Z", "newest,weekly,yearly"},
		{"2021-01-03T12:00Z", "weekly"},		/* 2020-W53, although it is 2021 */
		{"2020-12-31T12:00Z", "yearly"},
	};
	RetentionPolicy p = {.weekly = 2, .yearly = 2};
	Cal c = {0};
	char label[64];

	(void) state;
	cal_times(&c, times);
	check_plan(&c, &p, "UTC", want, PV_ARRAY_LEN(want));
	retention_period_label(label, sizeof(label), RETENTION_WEEKLY, utc("2021-01-03T12:00Z"), "UTC");
	assert_string_equal(label, "2020-W53");
	retention_period_label(label, sizeof(label), RETENTION_MONTHLY, utc("2021-01-03T12:00Z"), "UTC");
	assert_string_equal(label, "2021-01");
	retention_period_label(label, sizeof(label), RETENTION_YEARLY, utc("2021-01-03T12:00Z"), "UTC");
	assert_string_equal(label, "2021");
	cal_free(&c);
}

/* ---- within, min, pins, ties, no policy ---- */

static void
test_within_is_relative_to_newest(void **state)
{
	static const char *const times[] = {
		"2025-06-01T12:00Z", "2025-06-01T00:00Z", "2025-05-31T00:00Z",	/* exactly 36h before */
		"2025-05-30T23:00Z", "2025-05-28T08:00Z", NULL};
	static const Kept want[] = {
		{"2025-06-01T12:00Z", "newest,within"},
		{"2025-06-01T00:00Z", "within"},
		{"2025-05-31T00:00Z", "within"},
		{"2025-05-28T08:00Z", "pinned"},
	};
	RetentionPolicy p = {.within_secs = 36 * 3600};
	Cal c = {0};

	(void) state;
	cal_times(&c, times);
	c.e[4].pinned = true;
	/* Years later nothing changes: within counts from the newest backup, not from now. */
	check_plan(&c, &p, "UTC", want, PV_ARRAY_LEN(want));
	cal_free(&c);
}

static void
test_min_is_a_floor(void **state)
{
	static const char *const times[] = {
		"2025-06-01T01:00Z", "2025-06-01T02:00Z", "2025-06-01T03:00Z",
		"2025-06-01T04:00Z", "2025-06-01T05:00Z", "2025-06-01T06:00Z", NULL};
	static const Kept want[] = {
		{"2025-06-01T06:00Z", "newest,daily"},
		{"2025-06-01T05:00Z", "min"},
		{"2025-06-01T04:00Z", "min"},
		{"2025-06-01T03:00Z", "min"},
	};
	static const Kept want_pinned[] = {
		{"2025-06-01T06:00Z", "newest,daily"},
		{"2025-06-01T05:00Z", "min"},
		{"2025-06-01T04:00Z", "min"},
		{"2025-06-01T03:00Z", "min"},
		{"2025-06-01T01:00Z", "pinned"},		/* a hold, not part of the floor */
	};
	static const Kept want_pinned_in_floor[] = {
		{"2025-06-01T06:00Z", "newest,daily"},
		{"2025-06-01T05:00Z", "pinned,min"},	/* pinned and the floor's: both said */
		{"2025-06-01T04:00Z", "min"},
		{"2025-06-01T03:00Z", "min"},
	};
	RetentionPolicy p = {.daily = 1, .min = 4};
	Cal c = {0};

	(void) state;
	cal_times(&c, times);
	check_plan(&c, &p, "UTC", want, PV_ARRAY_LEN(want));
	c.e[0].pinned = true;
	check_plan(&c, &p, "UTC", want_pinned, PV_ARRAY_LEN(want_pinned));
	c.e[0].pinned = false;
	c.e[4].pinned = true;
	check_plan(&c, &p, "UTC", want_pinned_in_floor, PV_ARRAY_LEN(want_pinned_in_floor));
	c.e[4].pinned = false;
	/* A floor above the number of backups keeps them all. */
	p.min = 50;
	assert_int_equal(retention_apply(c.e, c.n, &p, "UTC"), PV_OK);
	for (size_t i = 0; i < c.n; i++)
		assert_true(c.e[i].reasons != 0);
	cal_free(&c);
}

static void
test_no_policy_keeps_everything(void **state)
{
	static const char *const times[] = {"2020-01-01T00:00Z", "2021-01-01T00:00Z", "2022-01-01T00:00Z", NULL};
	static const Kept want[] = {
		{"2022-01-01T00:00Z", "newest,no-policy"},
		{"2021-01-01T00:00Z", "no-policy"},
		{"2020-01-01T00:00Z", "pinned,no-policy"},
	};
	RetentionPolicy p = {.min = 1};			/* a floor alone is not a policy */
	Cal c = {0};

	(void) state;
	cal_times(&c, times);
	c.e[0].pinned = true;
	assert_true(retention_policy_empty(&p));
	check_plan(&c, &p, "UTC", want, PV_ARRAY_LEN(want));
	cal_free(&c);
}

static void
test_newest_always_kept_and_ties(void **state)
{
	RetentionEntry e[3] = {
		{.id = "20250601T120000Z-aaaaaa", .start = utc("2025-06-01T12:00Z")},
		{.id = "20250601T120000Z-bbbbbb", .start = utc("2025-06-01T12:00Z")},
		{.id = "20250501T120000Z-cccccc", .start = utc("2025-05-01T12:00Z")},
	};
	RetentionPolicy p = {.yearly = 1};

	(void) state;
	assert_int_equal(retention_apply(e, 3, &p, "UTC"), PV_OK);
	/* equal start times: the greater id is the newer */
	assert_int_equal(e[1].reasons, RETENTION_NEWEST | RETENTION_YEARLY);
	assert_int_equal(e[0].reasons, 0);
	assert_int_equal(e[2].reasons, 0);
	/* a policy of nothing but a zero-count rule still never drops the newest */
	p = (RetentionPolicy) {.within_secs = 1};
	assert_int_equal(retention_apply(e, 3, &p, "UTC"), PV_OK);
	assert_int_equal(e[1].reasons, RETENTION_NEWEST | RETENTION_WITHIN);
	assert_int_equal(e[0].reasons, RETENTION_WITHIN);	/* same instant: within 1s */
	assert_int_equal(e[2].reasons, 0);
	assert_int_equal(retention_apply(e, 0, &p, "UTC"), PV_OK);
}

static void
test_unknown_zone(void **state)
{
	RetentionEntry e[1] = {{.id = "20250601T120000Z-aaaaaa", .start = utc("2025-06-01T12:00Z"),
		.reasons = 77}};
	RetentionPolicy p = {.daily = 1};

	(void) state;
	assert_int_equal(retention_apply(e, 1, &p, "Mars/Olympus_Mons"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "unknown time zone 'Mars/Olympus_Mons'");
	assert_int_equal(e[0].reasons, 0);
}

/* ---- policies ---- */

static void
test_policy_parse_and_format(void **state)
{
	RetentionPolicy p;
	Buf b = PV_BUF_INIT;

	(void) state;
	assert_int_equal(retention_policy_parse(&p, " daily=7, weekly = 4 ,within=36h,min=3,hourly=0 "), PV_OK);
	assert_int_equal(p.daily, 7);
	assert_int_equal(p.weekly, 4);
	assert_int_equal(p.within_secs, 36 * 3600);
	assert_int_equal(p.min, 3);
	assert_int_equal(p.hourly + p.monthly + p.yearly, 0);
	retention_policy_format(&p, &b);
	assert_string_equal(buf_cstr(&b), "daily=7,weekly=4,within=1d12h,min=3");
	/* the format reads back to the same policy */
	{
		RetentionPolicy q;

		assert_int_equal(retention_policy_parse(&q, buf_cstr(&b)), PV_OK);
		assert_memory_equal(&p, &q, sizeof(p));
	}
	buf_reset(&b);
	assert_int_equal(retention_policy_parse(&p, "none"), PV_OK);
	assert_true(retention_policy_empty(&p));
	retention_policy_format(&p, &b);
	assert_string_equal(buf_cstr(&b), "none");
	buf_free(&b);
}

static void
test_policy_parse_errors(void **state)
{
	static const struct
	{
		const char *spec;
		const char *msg;
	} bad[] = {
		{"", "invalid retention policy '': it is empty"},
		{"daily", "invalid retention policy 'daily': 'daily' is not NAME=VALUE"},
		{"fortnightly=2", "invalid retention policy 'fortnightly=2': 'fortnightly' is not a rule "
		 "(hourly, daily, weekly, monthly, yearly, within, min)"},
		{"daily=-1", "invalid retention policy 'daily=-1': 'daily=-1' is not a count (0 or more)"},
		{"daily=7x", "invalid retention policy 'daily=7x': 'daily=7x' is not a count (0 or more)"},
		{"within=soon", "invalid retention policy 'within=soon': 'within=soon' is not a duration "
		 "(e.g. 36h, 14d)"},
		{"daily=", "invalid retention policy 'daily=': 'daily=' has no usable value"},
		{"daily=7,", "invalid retention policy 'daily=7,': it ends with a comma"},
	};
	RetentionPolicy p = {.daily = 99};

	(void) state;
	for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++)
	{
		assert_int_equal(retention_policy_parse(&p, bad[i].spec), PV_ECONFIG);
		assert_string_equal(pv_error_msg(), bad[i].msg);
		assert_int_equal(p.daily, 99);		/* untouched on failure */
	}
}

static void
test_policy_from_config(void **state)
{
	static const char text[] =
		"[global]\n"
		"keep-daily = 7\n"
		"keep-min = 2\n"
		"retention-physical = weekly=4\n"
		"time-zone = Europe/Berlin\n"
		"[source:prod]\n"
		"keep-hourly = 24\n"
		"time-zone = America/New_York\n"
		"retention-file = bogus\n"
		"[source:other]\n"
		"retention-logical = within=2d\n";
	PvConfig *cfg = NULL;
	RetentionPolicy p;
	const char *tz = NULL;
	char *origin = NULL;

	(void) state;
	assert_int_equal(cfg_load_string(&cfg, text, "t.conf"), PV_OK);

	/* the source's keep-* is its whole policy (the global keep-min does not leak in) */
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, "prod", "logical"), PV_OK);
	assert_memory_equal(&p, (&(RetentionPolicy) {.hourly = 24}), sizeof(p));
	assert_string_equal(tz, "America/New_York");
	assert_string_equal(origin, "[source:prod] keep-*");
	pv_free(origin);
	/* ... also over the global retention-physical */
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, "prod", "physical"), PV_OK);
	assert_memory_equal(&p, (&(RetentionPolicy) {.hourly = 24}), sizeof(p));
	pv_free(origin);
	/* a source without keep-* falls back to the global policies */
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, "other", "physical"), PV_OK);
	assert_memory_equal(&p, (&(RetentionPolicy) {.weekly = 4}), sizeof(p));
	assert_string_equal(tz, "Europe/Berlin");
	assert_string_equal(origin, "[global] retention-physical");
	pv_free(origin);
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, "other", "logical"), PV_OK);
	assert_memory_equal(&p, (&(RetentionPolicy) {.within_secs = 2 * 86400}), sizeof(p));
	assert_string_equal(origin, "[source:other] retention-logical");
	pv_free(origin);
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, "unconfigured", "logical"), PV_OK);
	assert_memory_equal(&p, (&(RetentionPolicy) {.daily = 7, .min = 2}), sizeof(p));
	assert_string_equal(origin, "[global] keep-*");
	pv_free(origin);
	assert_int_equal(retention_policy_for(&p, &tz, NULL, cfg, NULL, "wal"), PV_OK);
	assert_memory_equal(&p, (&(RetentionPolicy) {.daily = 7, .min = 2}), sizeof(p));
	/* a bad policy is a configuration error naming where it is */
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, "prod", "file"), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "[source:prod] retention-file: invalid retention policy 'bogus': "
						"'bogus' is not NAME=VALUE");
	cfg_free(cfg);

	/* nothing configured: no policy, the local zone */
	assert_int_equal(cfg_load_string(&cfg, "", "empty.conf"), PV_OK);
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, "x", "logical"), PV_OK);
	assert_true(retention_policy_empty(&p));
	assert_null(tz);
	assert_string_equal(origin, "none");
	pv_free(origin);
	cfg_free(cfg);

	assert_int_equal(cfg_load_string(&cfg, "[global]\nkeep-daily = 1\ntime-zone = Nowhere/Land\n", "z.conf"),
					 PV_OK);
	assert_int_equal(retention_policy_for(&p, &tz, &origin, cfg, NULL, "logical"), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "unknown time zone 'Nowhere/Land'");
	cfg_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_years_hourly),
		cmocka_unit_test(test_two_years_with_gaps),
		cmocka_unit_test(test_two_years_berlin),
		cmocka_unit_test(test_dst_berlin_fall_back),
		cmocka_unit_test(test_dst_berlin_spring_forward),
		cmocka_unit_test(test_dst_new_york_spring_forward),
		cmocka_unit_test(test_dst_new_york_fall_back),
		cmocka_unit_test(test_iso_weeks_across_new_year),
		cmocka_unit_test(test_within_is_relative_to_newest),
		cmocka_unit_test(test_min_is_a_floor),
		cmocka_unit_test(test_no_policy_keeps_everything),
		cmocka_unit_test(test_newest_always_kept_and_ties),
		cmocka_unit_test(test_unknown_zone),
		cmocka_unit_test(test_policy_parse_and_format),
		cmocka_unit_test(test_policy_parse_errors),
		cmocka_unit_test(test_policy_from_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
