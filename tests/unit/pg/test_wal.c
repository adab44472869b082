/*
 * test_wal.c: WAL file names, segment arithmetic, LSNs, source names and
 * repository keys (src/pg/wal/wal.c), and the segment header check of
 * archive-push (src/pg/wal/archive.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "pg/wal/archive.h"
#include "pg/wal/wal.h"

#include <string.h>

#define MB (UINT64_C(1024) * 1024)

static void
test_file_names(void **state)
{
	PgWalFile f;

	(void) state;
	assert_int_equal(pgwal_file_parse(&f, "000000010000000A000000FF"), 0);
	assert_int_equal(f.kind, PGWAL_FILE_SEGMENT);
	assert_int_equal(f.timeline, 1);
	assert_int_equal(pgwal_file_parse(&f, "0000001A0000000000000003.partial"), 0);
	assert_int_equal(f.kind, PGWAL_FILE_PARTIAL);
	assert_int_equal(f.timeline, 0x1A);
	assert_int_equal(pgwal_file_parse(&f, "00000002.history"), 0);
	assert_int_equal(f.kind, PGWAL_FILE_HISTORY);
	assert_int_equal(f.timeline, 2);
	assert_int_equal(pgwal_file_parse(&f, "000000010000000000000002.00000028.backup"), 0);
	assert_int_equal(f.kind, PGWAL_FILE_BACKUP);

	static const char *const bad[] = {
		"", "x", "000000010000000a000000ff",	/* lower case: PostgreSQL never writes it */
		"00000001000000000000000", "0000000100000000000000001", "00000000.history",
		"000000000000000000000001", "00000002.histor", "../00000002.history",
		"000000010000000000000002.0000028.backup", "000000010000000000000002.partia",
		"pg_wal/000000010000000000000001", "RECOVERYXLOG",
	};
	for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++)
	{
		assert_int_equal(pgwal_file_parse(&f, bad[i]), PV_EUSAGE);
		assert_non_null(strstr(pv_error_msg(), "is not the name of a WAL file"));
	}
}

static void
test_segments_and_lsns(void **state)
{
	char name[PGWAL_SEGMENT_NAME_LEN + 1], lsn[PGWAL_LSN_TEXT_MAX];
	uint32_t tli;
	uint64_t segno, v;

	(void) state;
	/* 16 MiB: 256 segments per "log" id */
	pgwal_segment_name(name, 1, 0x1FF, 16 * MB);
	assert_string_equal(name, "0000000100000001000000FF");
	assert_int_equal(pgwal_segment_parse(&tli, &segno, name, 16 * MB), 0);
	assert_int_equal(tli, 1);
	assert_int_equal(segno, 0x1FF);
	/* 1 GiB segments: 4 per id; "...00000004" does not exist */
	pgwal_segment_name(name, 3, 9, 1024 * MB);
	assert_string_equal(name, "000000030000000200000001");
	assert_int_equal(pgwal_segment_parse(&tli, &segno, "000000030000000200000004", 1024 * MB),
					 PV_EUSAGE);
	/* ".backup" names parse by their first 24 characters */
	assert_int_equal(pgwal_segment_parse(&tli, &segno, "000000010000000000000002.00000028.backup",
										 16 * MB), 0);
	assert_int_equal(segno, 2);

	assert_int_equal(pgwal_lsn_parse(&v, "16/B374D848"), 0);
	assert_int_equal(v, UINT64_C(0x16B374D848));
	assert_string_equal(pgwal_lsn_format(lsn, sizeof(lsn), v), "16/B374D848");
	assert_int_equal(pgwal_lsn_parse(&v, "0/0"), 0);
	assert_int_equal(v, 0);
	assert_int_equal(pgwal_lsn_parse(&v, "16B374D848"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "invalid LSN '16B374D848'");
	assert_int_equal(pgwal_lsn_parse(&v, "1/2x"), PV_EUSAGE);
	assert_int_equal(pgwal_lsn_parse(&v, "-1/2"), PV_EUSAGE);

	/* a backup that stopped exactly at a segment boundary needs the segment before it */
	assert_int_equal(pgwal_lsn_segno(UINT64_C(0x3000000), 16 * MB), 3);
	assert_int_equal(pgwal_lsn_prev_segno(UINT64_C(0x3000000), 16 * MB), 2);
	assert_int_equal(pgwal_lsn_prev_segno(UINT64_C(0x3000100), 16 * MB), 3);
	assert_true(pgwal_segment_size_valid(16 * MB));
	assert_false(pgwal_segment_size_valid(3 * MB));
	assert_false(pgwal_segment_size_valid(2048 * MB));
}

static void
test_sources_and_keys(void **state)
{
	char *k;

	(void) state;
	assert_int_equal(pgwal_source_check("main"), 0);
	assert_int_equal(pgwal_source_check("db-1.prod_EU"), 0);
	static const char *const bad[] = {"", ".hidden", "a/b", "a b", "x.tmp.y", "é",
		"0123456789012345678901234567890123456789012345678901234567890123456789"};
	for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++)
		assert_int_equal(pgwal_source_check(bad[i]), PV_EUSAGE);
	k = pgwal_object_key("main", "000000020000000000000003", 2);
	assert_string_equal(k, "wal/main/00000002/000000020000000000000003");
	pv_free(k);
	k = pgwal_object_prefix("main", 0x1A);
	assert_string_equal(k, "wal/main/0000001A/");
	pv_free(k);
	k = pgwal_object_prefix("main", 0);
	assert_string_equal(k, "wal/main/");
	pv_free(k);
	k = pgwal_info_key("main");
	assert_string_equal(k, "wal/main/archive.info");
	pv_free(k);
}

/* A minimal segment: the long page header of its first page, then zeros. */
static unsigned char *
segment_make(uint64_t segno, uint64_t seg_size, uint64_t sysid)
{
	unsigned char *seg = pv_calloc(1, seg_size);
	Buf h = PV_BUF_INIT;

	buf_append_u16le(&h, 0xD110);	/* magic (15) */
	buf_append_u16le(&h, 0x0002);	/* XLP_LONG_HEADER */
	buf_append_u32le(&h, 1);		/* timeline */
	buf_append_u64le(&h, segno * seg_size);
	buf_append_u32le(&h, 0);
	buf_append_u32le(&h, 0);		/* padding */
	buf_append_u64le(&h, sysid);
	buf_append_u32le(&h, (uint32_t) seg_size);
	buf_append_u32le(&h, 8192);
	memcpy(seg, h.data, h.len);
	buf_free(&h);
	return seg;
}

static void
test_segment_header(void **state)
{
	uint64_t size = 1 * MB;
	unsigned char *seg = segment_make(5, size, UINT64_C(7310000000000000001));
	PgWalSystem sys;

	(void) state;
	assert_int_equal(pgwal_segment_header_read(&sys, "000000010000000000000005", seg, size), 0);
	assert_int_equal(sys.system_identifier, UINT64_C(7310000000000000001));
	assert_int_equal(sys.segment_size, size);
	/* renamed to another segment's name */
	assert_int_equal(pgwal_segment_header_read(&sys, "000000010000000000000006", seg, size),
					 PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "holds the WAL of another segment"));
	/* truncated */
	assert_int_equal(pgwal_segment_header_read(&sys, "000000010000000000000005", seg, size / 2),
					 PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "but its header says"));
	/* not a segment start */
	seg[2] = 0;
	assert_int_equal(pgwal_segment_header_read(&sys, "000000010000000000000005", seg, size),
					 PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "does not start with a segment header"));
	pv_free(seg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_names),
		cmocka_unit_test(test_segments_and_lsns),
		cmocka_unit_test(test_sources_and_keys),
		cmocka_unit_test(test_segment_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
