/*
 * test_catalog_view.c: the pure parts of list's view (ops/catalog_view.h):
 * the recoverable window over a synthetic WAL archive (gaps, backups cut
 * by a gap, backups whose own WAL is missing, expired backups, a second
 * timeline), the compact cells list prints (sizes, durations, ages,
 * verify/drill state, retention reasons cut to a width) and list's whole
 * text for a synthetic document (columns, time zone, damaged backups, the
 * window with a gap, the one-line empty results).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "ops/catalog_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEG (16u * 1024 * 1024)

static void
test_size_cells(void **state)
{
	char b[16];

	(void) state;
	assert_string_equal(catalog_size_short(b, sizeof(b), 0), "0");
	assert_string_equal(catalog_size_short(b, sizeof(b), 1023), "1023");
	assert_string_equal(catalog_size_short(b, sizeof(b), 1024), "1.0K");
	assert_string_equal(catalog_size_short(b, sizeof(b), 1536), "1.5K");
	assert_string_equal(catalog_size_short(b, sizeof(b), 10 * 1024), "10K");
	assert_string_equal(catalog_size_short(b, sizeof(b), 1024 * 1024 - 1), "1023K");
	assert_string_equal(catalog_size_short(b, sizeof(b), UINT64_C(1288490189)), "1.2G");
	assert_string_equal(catalog_size_short(b, sizeof(b), UINT64_C(1288490188)), "1.1G");	/* 1.1999..: down */
	assert_string_equal(catalog_size_short(b, sizeof(b), UINT64_C(5) << 40), "5.0T");
	assert_true(strlen(catalog_size_short(b, sizeof(b), UINT64_MAX)) <= 5);
}

static void
test_duration_and_age_cells(void **state)
{
	char b[16];

	(void) state;
	assert_string_equal(catalog_duration_short(b, sizeof(b), -5), "0s");
	assert_string_equal(catalog_duration_short(b, sizeof(b), 4999), "4s");
	assert_string_equal(catalog_duration_short(b, sizeof(b), 65000), "1m05s");
	assert_string_equal(catalog_duration_short(b, sizeof(b), 7380000), "2h03m");
	assert_string_equal(catalog_duration_short(b, sizeof(b), 93600000), "1d02h");
	assert_string_equal(catalog_age_short(b, sizeof(b), 45), "45s");
	assert_string_equal(catalog_age_short(b, sizeof(b), 3599), "59m");
	assert_string_equal(catalog_age_short(b, sizeof(b), 7200), "2h");
	assert_string_equal(catalog_age_short(b, sizeof(b), 86400 * 12 + 5), "12d");
	assert_string_equal(catalog_age_short(b, sizeof(b), 86400 * 800), "2y");
}

static void
test_record_cells(void **state)
{
	PvTime now = 0;
	char b[32];
	json_t *ok, *bad;

	(void) state;
	assert_int_equal(pv_time_parse(&now, "2026-11-22T12:00:00Z", "UTC"), 0);
	ok = json_pack("{s:s, s:b}", "time", "2026-11-22T10:00:00Z", "ok", 1);
	bad = json_pack("{s:s, s:b}", "time", "2026-11-22T11:59:30Z", "ok", 0);
	assert_string_equal(catalog_record_cell(b, sizeof(b), ok, "BAD", now), "ok 2h ago");
	assert_string_equal(catalog_record_cell(b, sizeof(b), bad, "FAIL", now), "FAIL 30s ago");
	assert_string_equal(catalog_record_cell(b, sizeof(b), json_null(), "BAD", now), "-");
	assert_string_equal(catalog_record_cell(b, sizeof(b), NULL, "BAD", now), "-");
	json_decref(ok);
	json_decref(bad);
}

static void
test_retention_cells(void **state)
{
	char b[64];
	json_t *keep = json_pack("{s:s, s:[s,s,s]}", "action", "keep", "reasons", "newest", "daily", "weekly");
	json_t *pin = json_pack("{s:s, s:[s]}", "action", "keep", "reasons", "pinned");
	json_t *exp = json_pack("{s:s, s:[]}", "action", "expire", "reasons");
	json_t *none = json_pack("{s:s, s:[s,s,s]}", "action", "keep", "reasons", "newest", "pinned", "no-policy");

	(void) state;
	assert_string_equal(catalog_retention_cell(b, sizeof(b), keep, false, 0), "newest,daily,weekly");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), keep, false, 15), "newest,daily,w+");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), keep, false, 19), "newest,daily,weekly");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), pin, true, 15), "pinned");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), exp, false, 15), "EXPIRE");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), none, true, 0), "pinned,no policy");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), none, false, 0), "no policy");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), json_null(), true, 15), "pinned");
	assert_string_equal(catalog_retention_cell(b, sizeof(b), NULL, false, 15), "unknown");
	json_decref(keep);
	json_decref(pin);
	json_decref(exp);
	json_decref(none);
}

/*
 * Timeline 1: segments 2..12 archived but 6..7 (a gap); timeline 2:
 * 13..14.  Backups (segments start..stop):
 *   0 expired   2..3   restorable, but expired: does not open the window
 *   1 kept      3..4   the oldest kept one: the window opens at its end
 *   2 kept      5..6   its own WAL falls in the gap: not restorable
 *   3 kept      9..10  after the gap
 *   4 kept      1..2   starts before the first archived segment
 *   5 kept tl2  13..13
 */
static PgWalGap gaps1[] = {{6, 7}};
static PgWalTimelineInfo tls[] = {
	{.timeline = 1, .segments = 9, .first = 2, .last = 12, .gaps = gaps1, .ngaps = 1},
	{.timeline = 2, .history = true, .segments = 2, .first = 13, .last = 14},
};
static const PgWalArchiveSummary summary = {.has_system = true, .sys = {.segment_size = SEG},
	.timelines = tls, .ntimelines = 2};

static CatalogWindowBackup
wb(const char *id, uint32_t tl, uint64_t start, uint64_t stop, bool kept)
{
	return (CatalogWindowBackup) {.id = id, .timeline = tl, .start_segno = start, .stop_segno = stop,
		.stop_lsn = stop * SEG + 100, .stop_time = (PvTime) stop * 1000, .kept = kept};
}

static void
test_window_gap_and_cut_backups(void **state)
{
	CatalogWindowBackup b[] = {
		wb("expired", 1, 2, 3, false), wb("kept", 1, 3, 4, true), wb("broken", 1, 5, 6, true),
		wb("after", 1, 9, 10, true), wb("early", 1, 1, 2, true), wb("tl2", 2, 13, 13, true),
	};
	CatalogWindow w;

	(void) state;
	catalog_window_compute(&w, b, 6, &summary);
	assert_int_equal(w.from, 1);	/* "expired" ends earlier but is not kept; "early" lacks segment 1 */
	assert_true(w.has_newest);
	assert_int_equal(w.newest_timeline, 2);
	assert_int_equal(w.newest_segno, 14);
	assert_int_equal(w.ngaps, 1);
	assert_int_equal(w.gaps[0].timeline, 1);
	assert_int_equal(w.gaps[0].first, 6);
	assert_int_equal(w.gaps[0].last, 7);
	/* the backups ending before the gap cannot recover past it */
	assert_int_equal(w.gaps[0].ncut, 3);
	assert_int_equal(w.gaps[0].cut[0], 0);
	assert_int_equal(w.gaps[0].cut[1], 1);
	assert_int_equal(w.gaps[0].cut[2], 4);
	assert_int_equal(w.gaps[0].nbroken, 1);
	assert_int_equal(w.gaps[0].broken[0], 2);
	catalog_window_free(&w);
	assert_int_equal(w.ngaps, 0);
	assert_int_equal(w.from, SIZE_MAX);
}

static void
test_window_reach_and_segments(void **state)
{
	(void) state;
	assert_true(catalog_window_has_segment(&summary, 1, 2));
	assert_true(catalog_window_has_segment(&summary, 1, 5));
	assert_false(catalog_window_has_segment(&summary, 1, 6));
	assert_false(catalog_window_has_segment(&summary, 1, 7));
	assert_true(catalog_window_has_segment(&summary, 1, 8));
	assert_false(catalog_window_has_segment(&summary, 1, 13));
	assert_false(catalog_window_has_segment(&summary, 3, 13));
	assert_true(catalog_window_has_segment(&summary, 2, 13));
	/* from segment 4: up to 5, the last before the gap; from 10: to the end of timeline 1 */
	assert_int_equal(catalog_window_reach(&summary, 1, 4), 5);
	assert_int_equal(catalog_window_reach(&summary, 1, 10), 12);
	assert_int_equal(catalog_window_reach(&summary, 2, 13), 14);
	assert_int_equal(catalog_window_reach(&summary, 7, 3), 3);	/* no such timeline */
}

static void
test_window_without_backups_or_wal(void **state)
{
	PgWalArchiveSummary empty = {0};
	CatalogWindowBackup b[] = {wb("a", 1, 3, 4, true)};
	CatalogWindow w;

	(void) state;
	catalog_window_compute(&w, NULL, 0, &summary);
	assert_int_equal(w.from, SIZE_MAX);
	assert_true(w.has_newest);
	assert_int_equal(w.gaps[0].ncut + w.gaps[0].nbroken, 0);
	catalog_window_free(&w);
	catalog_window_compute(&w, b, 1, &empty);
	assert_int_equal(w.from, SIZE_MAX);	/* no WAL: nothing is restorable */
	assert_false(w.has_newest);
	assert_int_equal(w.ngaps, 0);
	catalog_window_free(&w);
}

/* catalog_view_print of a synthetic document, captured. */
static char *
print_doc(const char *json, const char *tz, PvTime now)
{
	json_error_t err;
	json_t *doc = json_loads(json, 0, &err);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(doc);
	catalog_view_print(f, doc, tz, now);
	fclose(f);
	json_decref(doc);
	return text;
}

static void
test_print_list(void **state)
{
	PvTime now = 0;
	char *text;
	const char *doc =
		"{\"repository\": \"/srv/r\", \"backups\": ["
		"{\"id\": \"20261122T020000Z-aaaaaa\", \"kind\": \"physical\", \"source\": \"prod\","
		" \"start_time\": \"2026-11-22T02:00:00Z\", \"stop_time\": \"2026-11-22T02:01:05Z\","
		" \"duration_ms\": 65000, \"size\": 31457280, \"stored\": 2097152, \"new\": 180224,"
		" \"pinned\": true, \"verify\": {\"time\": \"2026-11-22T10:00:00Z\", \"ok\": true},"
		" \"drill\": {\"time\": \"2026-11-21T12:00:00Z\", \"ok\": false},"
		" \"retention\": {\"action\": \"keep\", \"reasons\": [\"pinned\", \"daily\", \"weekly\", \"monthly\"]},"
		" \"wal\": {\"timeline\": 1, \"start_lsn\": \"0/3000028\", \"stop_lsn\": \"0/3000100\","
		" \"start_wal\": \"000000010000000000000003\", \"stop_wal\": \"000000010000000000000003\"},"
		" \"restorable\": true},"
		"{\"id\": \"20261122T030000Z-bbbbbb\", \"error\": \"manifest is damaged\"}],"
		" \"windows\": [{\"source\": \"prod\", \"archive_source\": \"prod\","
		" \"from\": {\"backup\": \"20261122T020000Z-aaaaaa\", \"time\": \"2026-11-22T02:01:05Z\","
		" \"lsn\": \"0/3000100\", \"timeline\": 1},"
		" \"to\": {\"segment\": \"000000010000000000000009\", \"time\": null, \"lsn\": \"0/A000000\", \"timeline\": 1},"
		" \"gaps\": [{\"timeline\": 1, \"first\": \"000000010000000000000005\", \"last\": \"000000010000000000000006\","
		" \"segments\": 2, \"from_lsn\": \"0/5000000\", \"to_lsn\": \"0/7000000\","
		" \"backups_cut\": [\"20261122T020000Z-aaaaaa\"], \"backups_broken\": []}]}]}";

	(void) state;
	assert_int_equal(pv_time_parse(&now, "2026-11-22T12:00:00Z", "UTC"), 0);
	text = print_doc(doc, "Europe/Paris", now);
	assert_string_equal(text,
		"source prod, physical (times Europe/Paris):\n"
		"ID                       START             END         DUR  SIZE STORED   NEW  VERIFY       DRILL        RETENTION\n"
		"20261122T020000Z-aaaaaa  2026-11-22T03:00  03:01     1m05s   30M   2.0M  176K  ok 2h ago    FAIL 1d ago  pinned,daily,w+\n"
		"                         WAL 0/3000028..0/3000100  000000010000000000000003..000000010000000000000003\n"
		"\n"
		"20261122T030000Z-bbbbbb  DAMAGED: manifest is damaged\n"
		"\n"
		"recoverable window, source prod (WAL archive 'prod'):\n"
		"  from  2026-11-22T03:01:05+01:00  0/3000100          end of backup 20261122T020000Z-aaaaaa (timeline 1)\n"
		"  to    (time unknown)             0/A000000          newest archived segment 000000010000000000000009\n"
		"  GAP   000000010000000000000005..000000010000000000000006 missing (2 segments, timeline 1, 0/5000000..0/7000000)\n"
		"        cannot recover past it: 20261122T020000Z-aaaaaa\n");
	free(text);
	text = print_doc("{\"repository\": \"/srv/r\", \"filtered\": true, \"backups\": [], \"windows\": []}", NULL, now);
	assert_string_equal(text, "no backups match the filters in repository '/srv/r'\n");
	free(text);
	text = print_doc("{\"repository\": \"/srv/r\", \"backups\": [], \"windows\": []}", NULL, now);
	assert_string_equal(text, "no backups in repository '/srv/r'\n");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_cells),
		cmocka_unit_test(test_duration_and_age_cells),
		cmocka_unit_test(test_record_cells),
		cmocka_unit_test(test_retention_cells),
		cmocka_unit_test(test_window_gap_and_cut_backups),
		cmocka_unit_test(test_window_reach_and_segments),
		cmocka_unit_test(test_window_without_backups_or_wal),
		cmocka_unit_test(test_print_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
