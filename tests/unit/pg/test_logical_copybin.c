/*
 * test_logical_copybin.c: pg/logical/copybin.c against PostgreSQL 15's own
 * output.  copybin_vectors.inc (made by gen_copybin_vectors.py from a real
 * server) holds, per column and row of a table with every kind's edge
 * cases, the field as COPY text writes it and as COPY binary writes it:
 * each must convert byte for byte, alone and as the whole multi-column
 * table, whatever the split of the input across feed calls.  Then the
 * errors (exact messages) for what is not of COPY TO's form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "pg/logical/copybin.h"

#include <stdio.h>
#include <string.h>

typedef struct CopyBinVector
{
	CopyBinKind kind;
	const char *text;
	size_t text_len;
	const char *bin;			/* int32 length, then the bytes (or -1) */
	size_t bin_len;
} CopyBinVector;

#include "copybin_vectors.inc"

static const unsigned char header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0};

/* Convert text (one whole stream) with these kinds; 0 and *out, or the error code. */
static int
convert(const CopyBinKind *kinds, size_t ncols, const char *text, size_t len, Buf *out)
{
	CopyBin *cb = copybin_new(kinds, ncols);
	int rc = copybin_feed(cb, text, len, out);

	if (rc == 0)
		rc = copybin_finish(cb, out);
	copybin_free(cb);
	return rc;
}

/* One field of kind: the binary form it gives (without header, count, trailer). */
static int
convert_field(CopyBinKind kind, const char *text, size_t len, Buf *field)
{
	Buf in = PV_BUF_INIT, out = PV_BUF_INIT;
	int rc;

	buf_append(&in, text, len);
	buf_append_byte(&in, '\n');
	rc = convert(&kind, 1, (const char *) in.data, in.len, &out);
	if (rc == 0)
	{
		assert_true(out.len >= sizeof(header) + 4);
		assert_memory_equal(out.data, header, sizeof(header));
		assert_int_equal(out.data[19], 0);
		assert_int_equal(out.data[20], 1);
		assert_memory_equal(out.data + out.len - 2, "\377\377", 2);
		buf_append(field, out.data + 21, out.len - 21 - 2);
	}
	buf_free(&in);
	buf_free(&out);
	return rc;
}

static void
test_kind_for_receive(void **state)
{
	(void) state;
	assert_int_equal(copybin_kind_for_receive("textrecv"), COPYBIN_TEXT);
	assert_int_equal(copybin_kind_for_receive("varcharrecv"), COPYBIN_TEXT);
	assert_int_equal(copybin_kind_for_receive("bpcharrecv"), COPYBIN_TEXT);
	assert_int_equal(copybin_kind_for_receive("namerecv"), COPYBIN_TEXT);
	assert_int_equal(copybin_kind_for_receive("json_recv"), COPYBIN_TEXT);
	assert_int_equal(copybin_kind_for_receive("enum_recv"), COPYBIN_TEXT);
	assert_int_equal(copybin_kind_for_receive("citextrecv"), COPYBIN_TEXT);
	assert_int_equal(copybin_kind_for_receive("jsonb_recv"), COPYBIN_JSONB);
	assert_int_equal(copybin_kind_for_receive("bytearecv"), COPYBIN_BYTEA);
	assert_int_equal(copybin_kind_for_receive("boolrecv"), COPYBIN_BOOL);
	assert_int_equal(copybin_kind_for_receive("int2recv"), COPYBIN_INT2);
	assert_int_equal(copybin_kind_for_receive("int4recv"), COPYBIN_INT4);
	assert_int_equal(copybin_kind_for_receive("int8recv"), COPYBIN_INT8);
	assert_int_equal(copybin_kind_for_receive("oidrecv"), COPYBIN_OID);
	assert_int_equal(copybin_kind_for_receive("float4recv"), COPYBIN_FLOAT4);
	assert_int_equal(copybin_kind_for_receive("float8recv"), COPYBIN_FLOAT8);
	assert_int_equal(copybin_kind_for_receive("numeric_recv"), COPYBIN_NUMERIC);
	assert_int_equal(copybin_kind_for_receive("date_recv"), COPYBIN_DATE);
	assert_int_equal(copybin_kind_for_receive("timestamp_recv"), COPYBIN_TIMESTAMP);
	assert_int_equal(copybin_kind_for_receive("timestamptz_recv"), COPYBIN_TIMESTAMPTZ);
	assert_int_equal(copybin_kind_for_receive("uuid_recv"), COPYBIN_UUID);
	assert_int_equal(copybin_kind_for_receive("interval_recv"), -1);
	assert_int_equal(copybin_kind_for_receive("array_recv"), -1);
	assert_int_equal(copybin_kind_for_receive("-"), -1);
	assert_int_equal(copybin_kind_for_receive(""), -1);
	assert_int_equal(copybin_kind_for_receive(NULL), -1);
}

/* Every field the server wrote converts to exactly the server's binary field. */
static void
test_server_vectors(void **state)
{
	Buf field = PV_BUF_INIT;
	size_t failures = 0;

	(void) state;
	for (size_t i = 0; i < PV_ARRAY_LEN(copybin_vectors); i++)
	{
		const CopyBinVector *v = &copybin_vectors[i];
		int rc;

		buf_reset(&field);
		rc = convert_field(v->kind, v->text, v->text_len, &field);
		if (rc != 0 || field.len != v->bin_len || memcmp(field.data, v->bin, v->bin_len) != 0)
		{
			fprintf(stderr, "vector %zu (kind %d, text '%.*s'): %s\n", i, (int) v->kind, (int) v->text_len,
					v->text, rc != 0 ? pv_error_msg() : "different bytes");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	buf_free(&field);
}

/* The whole table in one feed, then in random splits (a fixed seed), byte for byte. */
static void
test_server_table_splits(void **state)
{
	const size_t ncols = PV_ARRAY_LEN(copybin_table_kinds);
	Buf out = PV_BUF_INIT;
	uint32_t seed = 20261122;

	(void) state;
	assert_int_equal(convert(copybin_table_kinds, ncols, copybin_table_text, copybin_table_text_len, &out), 0);
	assert_int_equal(out.len, copybin_table_bin_len);
	assert_memory_equal(out.data, copybin_table_bin, copybin_table_bin_len);
	for (int round = 0; round < 30; round++)
	{
		CopyBin *cb = copybin_new(copybin_table_kinds, ncols);
		size_t pos = 0, lines = 0;

		buf_reset(&out);
		while (pos < copybin_table_text_len)
		{
			size_t n;

			seed = seed * 1103515245u + 12345u;
			/* mostly small pieces (splits inside escapes), sometimes big ones */
			n = round % 3 == 0 ? 1 + (seed >> 16) % 7 : 1 + (seed >> 8) % (round % 3 == 1 ? 300 : 20000);
			if (n > copybin_table_text_len - pos)
				n = copybin_table_text_len - pos;
			assert_int_equal(copybin_feed(cb, copybin_table_text + pos, n, &out), 0);
			pos += n;
		}
		assert_int_equal(copybin_finish(cb, &out), 0);
		for (size_t i = 0; i < copybin_table_text_len; i++)
			lines += copybin_table_text[i] == '\n';
		assert_int_equal(copybin_rows(cb), lines);
		assert_int_equal(out.len, copybin_table_bin_len);
		assert_memory_equal(out.data, copybin_table_bin, copybin_table_bin_len);
		copybin_free(cb);
	}
	buf_free(&out);
}

static void
expect_field(CopyBinKind kind, const char *text, const void *bin, size_t bin_len)
{
	Buf field = PV_BUF_INIT;

	if (convert_field(kind, text, strlen(text), &field) != 0)
		fail_msg("'%s': %s", text, pv_error_msg());
	assert_int_equal(field.len, bin_len);
	assert_memory_equal(field.data, bin, bin_len);
	buf_free(&field);
}

/* Escapes COPY TO does not write but the server reads the same way. */
static void
test_escapes(void **state)
{
	(void) state;
	expect_field(COPYBIN_TEXT, "\\101\\x41\\x4a\\1010\\q\\\t\\\\N", "\0\0\0\11AAJA0q\t\\N", 13);
	expect_field(COPYBIN_TEXT, "\\xg\\b\\f\\v\\r\\n\\t", "\0\0\0\10xg\b\f\v\r\n\t", 12);
	expect_field(COPYBIN_TEXT, "N", "\0\0\0\1N", 5);
	expect_field(COPYBIN_TEXT, "\\N\\N", "\0\0\0\2NN", 6);
	expect_field(COPYBIN_JSONB, "\"\\\\t\"", "\0\0\0\5\1\"\\t\"", 9);
	expect_field(COPYBIN_BYTEA, "\\\\x0aFF", "\0\0\0\2\n\377", 6);
	expect_field(COPYBIN_BYTEA, "\\134x\\061\\x32", "\0\0\0\1\22", 5);	/* "\x12" spelt in escapes */
	expect_field(COPYBIN_INT4, "\\061\\x32", "\0\0\0\4\0\0\0\14", 8);
	expect_field(COPYBIN_INT4, "-0", "\0\0\0\4\0\0\0\0", 8);
	expect_field(COPYBIN_INT2, "007", "\0\0\0\2\0\7", 6);
	expect_field(COPYBIN_NUMERIC, "-0.000", "\0\0\0\10\0\0\0\0\0\0\0\3", 12);
	expect_field(COPYBIN_NUMERIC, "000123.40", "\0\0\0\14\0\2\0\0\0\0\0\2\0\173\17\240", 16);
	expect_field(COPYBIN_TIMESTAMPTZ, "2000-01-01 00:00:00-00:00:01", "\0\0\0\10\0\0\0\0\0\17\102\100", 12);
	expect_field(COPYBIN_UUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
				 "\0\0\0\20\240\356\274\231\234\13\116\370\273\155\153\271\275\70\12\21", 20);
}

/* Zero columns: empty lines; the header and trailer even without rows. */
static void
test_edges(void **state)
{
	CopyBinKind k = COPYBIN_INT4;
	Buf out = PV_BUF_INIT;
	CopyBin *cb;

	(void) state;
	assert_int_equal(convert(&k, 0, "\n\n", 2, &out), 0);
	assert_int_equal(out.len, 19 + 2 + 2 + 2);
	assert_memory_equal(out.data + 19, "\0\0\0\0\377\377", 6);
	buf_reset(&out);
	assert_int_equal(convert(&k, 1, "", 0, &out), 0);
	assert_int_equal(out.len, 21);
	assert_memory_equal(out.data, header, 19);
	assert_memory_equal(out.data + 19, "\377\377", 2);
	/* a failed row leaves out as it was; nothing more is taken */
	buf_reset(&out);
	cb = copybin_new(&k, 1);
	assert_int_equal(copybin_feed(cb, "1\n2\nx\n3\n", 8, &out), PV_ERROR);
	assert_string_equal(pv_error_msg(), "row 3 column 1: invalid integer value");
	assert_int_equal(copybin_rows(cb), 2);
	assert_int_equal(out.len, 19 + 2 * 10);
	assert_int_equal(copybin_feed(cb, "4\n", 2, &out), PV_ERROR);
	assert_string_equal(pv_error_msg(), "the conversion failed at row 3");
	assert_int_equal(copybin_finish(cb, &out), PV_ERROR);
	copybin_free(cb);
	copybin_free(NULL);
	buf_free(&out);
}

static void
expect_error(const CopyBinKind *kinds, size_t ncols, const char *text, const char *msg)
{
	Buf out = PV_BUF_INIT;

	pv_error_clear();
	if (convert(kinds, ncols, text, strlen(text), &out) != PV_ERROR)
		fail_msg("'%s' was accepted", text);
	assert_string_equal(pv_error_msg(), msg);
	buf_free(&out);
}

static void
expect_bad(CopyBinKind kind, const char *text, const char *msg)
{
	Buf in = PV_BUF_INIT;

	buf_printf(&in, "%s\n", text);
	expect_error(&kind, 1, buf_cstr(&in), msg);
	buf_free(&in);
}

static void
test_errors(void **state)
{
	const CopyBinKind two[] = {COPYBIN_INT4, COPYBIN_TEXT};

	(void) state;
	/* the shape of the lines */
	expect_error(two, 2, "1\ta\n2\n", "row 2 has 1 fields where 2 are expected");
	expect_error(two, 2, "1\ta\tb\n", "row 1 has 3 fields where 2 are expected");
	expect_error(two, 2, "1\ta\\\tb\t\n", "row 1 has 3 fields where 2 are expected");
	expect_error(two, 2, "1\ta\n2\tb", "row 2: the data ends inside the line");
	expect_error(two, 0, "\n1\n", "row 2 has 1 fields where 0 are expected");
	expect_error(two, 2, "1\ta\\\nb\n", "row 1 column 2: a backslash at the end of the line");
	expect_error(two, 2, "1\ta\rb\n", "row 1 column 2: a carriage return in the data");
	expect_error(two, 2, "1\t\\.\n", "row 1 column 2: an end-of-data marker (\\.)");
	expect_error(two, 2, "1\ta\\000\n", "row 1 column 2: an escape making a NUL or non-ASCII byte");
	expect_error(two, 2, "1\ta\\x80\n", "row 1 column 2: an escape making a NUL or non-ASCII byte");
	expect_error(two, 2, "1\ta\\351\n", "row 1 column 2: an escape making a NUL or non-ASCII byte");
	{
		Buf out = PV_BUF_INIT;

		assert_int_equal(convert(two, 2, "1\ta\0b\n", 6, &out), PV_ERROR);
		assert_string_equal(pv_error_msg(), "row 1 column 2: a NUL byte in the data");
		buf_free(&out);
	}
	/* values */
	expect_bad(COPYBIN_INT4, "12x", "row 1 column 1: invalid integer value");
	expect_bad(COPYBIN_INT4, "", "row 1 column 1: invalid integer value");
	expect_bad(COPYBIN_INT4, "+1", "row 1 column 1: invalid integer value");
	expect_bad(COPYBIN_INT4, " 1", "row 1 column 1: invalid integer value");
	expect_bad(COPYBIN_INT4, "2147483648", "row 1 column 1: out of range integer value");
	expect_bad(COPYBIN_INT4, "-2147483649", "row 1 column 1: out of range integer value");
	expect_bad(COPYBIN_INT2, "32768", "row 1 column 1: out of range smallint value");
	expect_bad(COPYBIN_INT8, "9223372036854775808", "row 1 column 1: out of range bigint value");
	expect_bad(COPYBIN_INT8, "99999999999999999999999", "row 1 column 1: out of range bigint value");
	expect_bad(COPYBIN_OID, "-1", "row 1 column 1: invalid oid value");
	expect_bad(COPYBIN_OID, "4294967296", "row 1 column 1: out of range oid value");
	expect_bad(COPYBIN_BOOL, "true", "row 1 column 1: invalid boolean value");
	expect_bad(COPYBIN_FLOAT8, "inf", "row 1 column 1: invalid double precision value");
	expect_bad(COPYBIN_FLOAT8, "0x1p3", "row 1 column 1: invalid double precision value");
	expect_bad(COPYBIN_FLOAT8, "1e", "row 1 column 1: invalid double precision value");
	expect_bad(COPYBIN_FLOAT8, ".", "row 1 column 1: invalid double precision value");
	expect_bad(COPYBIN_FLOAT8, "1e400", "row 1 column 1: out of range double precision value");
	expect_bad(COPYBIN_FLOAT8, "1e-400", "row 1 column 1: out of range double precision value");
	expect_bad(COPYBIN_FLOAT4, "1e39", "row 1 column 1: out of range real value");
	expect_bad(COPYBIN_NUMERIC, "1.", "row 1 column 1: invalid numeric value");
	expect_bad(COPYBIN_NUMERIC, ".5", "row 1 column 1: invalid numeric value");
	expect_bad(COPYBIN_NUMERIC, "1e5", "row 1 column 1: invalid numeric value");
	expect_bad(COPYBIN_NUMERIC, "nan", "row 1 column 1: invalid numeric value");
	expect_bad(COPYBIN_DATE, "2000-02-30", "row 1 column 1: invalid date value");
	expect_bad(COPYBIN_DATE, "1900-02-29", "row 1 column 1: invalid date value");
	expect_bad(COPYBIN_DATE, "0000-01-01", "row 1 column 1: invalid date value");
	expect_bad(COPYBIN_DATE, "2000-1-01", "row 1 column 1: invalid date value");
	expect_bad(COPYBIN_DATE, "02000-01-01", "row 1 column 1: invalid date value");
	expect_bad(COPYBIN_DATE, "2000-01-01 AD", "row 1 column 1: invalid date value");
	expect_bad(COPYBIN_DATE, "4714-11-23 BC", "row 1 column 1: out of range date value");
	expect_bad(COPYBIN_DATE, "5874898-01-01", "row 1 column 1: out of range date value");
	expect_bad(COPYBIN_TIMESTAMP, "2000-01-01 24:00:00", "row 1 column 1: invalid timestamp value");
	expect_bad(COPYBIN_TIMESTAMP, "2000-01-01 00:00:00.1234567", "row 1 column 1: invalid timestamp value");
	expect_bad(COPYBIN_TIMESTAMP, "2000-01-01 00:00:00+00", "row 1 column 1: invalid timestamp value");
	expect_bad(COPYBIN_TIMESTAMP, "294277-01-01 00:00:00", "row 1 column 1: out of range timestamp value");
	expect_bad(COPYBIN_TIMESTAMPTZ, "2000-01-01 00:00:00", "row 1 column 1: invalid timestamptz value");
	expect_bad(COPYBIN_TIMESTAMPTZ, "2000-01-01 00:00:00+16", "row 1 column 1: invalid timestamptz value");
	expect_bad(COPYBIN_TIMESTAMPTZ, "2000-01-01 00:00:00+0100", "row 1 column 1: invalid timestamptz value");
	expect_bad(COPYBIN_TIMESTAMPTZ, "4714-11-24 00:00:00+01 BC", "row 1 column 1: out of range timestamptz value");
	expect_bad(COPYBIN_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "row 1 column 1: invalid uuid value");
	expect_bad(COPYBIN_UUID, "a0eebc999c0b4ef8bb6d6bb9bd380a11", "row 1 column 1: invalid uuid value");
	expect_bad(COPYBIN_BYTEA, "\\\\x123", "row 1 column 1: invalid bytea value");
	expect_bad(COPYBIN_BYTEA, "\\\\x12 34", "row 1 column 1: invalid bytea value");
	expect_bad(COPYBIN_BYTEA, "\\\\001abc", "row 1 column 1: invalid bytea value");	/* escape format */
	expect_bad(COPYBIN_BYTEA, "abc", "row 1 column 1: invalid bytea value");
}

/* A row too long to hold whole is refused (the restore streams it as text), before it is all read. */
static void
test_long_row(void **state)
{
	CopyBinKind kinds[] = {COPYBIN_INT4, COPYBIN_TEXT};
	CopyBin *cb = copybin_new(kinds, 2);
	Buf out = PV_BUF_INIT;
	char *piece = pv_malloc(1024 * 1024);
	int rc = PV_OK, fed = 0;

	(void) state;
	memset(piece, 'x', 1024 * 1024);
	assert_int_equal(copybin_feed(cb, "1\tshort\n2\t", 11, &out), PV_OK);
	while (rc == PV_OK && fed < 32)
	{
		rc = copybin_feed(cb, piece, 1024 * 1024, &out);
		fed++;
	}
	assert_int_equal(rc, PV_ERROR);
	assert_int_equal(fed, 16);	/* "2\t" and 16 MiB: more than 16 MiB held */
	assert_string_equal(pv_error_msg(), "row 2 is longer than 16 MiB");
	assert_int_equal(copybin_rows(cb), 1);
	copybin_free(cb);
	buf_free(&out);
	pv_free(piece);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_for_receive),
		cmocka_unit_test(test_server_vectors),
		cmocka_unit_test(test_server_table_splits),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_row),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
