/*
 * test_buf.c: the growable buffer and its binary helpers (common/buf.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"

#include <string.h>

static void
test_init_and_empty(void **state)
{
	Buf a = PV_BUF_INIT;
	Buf b;
	char *s;

	(void) state;
	buf_init(&b);
	assert_null(a.data);
	assert_int_equal(a.len, 0);
	assert_null(b.data);
	assert_string_equal(buf_cstr(&a), "");	/* an empty Buf is still a C string */
	buf_append(&a, NULL, 0);
	assert_int_equal(a.len, 0);
	assert_string_equal(buf_cstr(&a), "");
	buf_reset(&b);	/* reset of a never-used Buf is fine */
	s = buf_detach(&b);	/* detach of an empty Buf gives an owned "" */
	assert_string_equal(s, "");
	pv_free(s);
	buf_free(&a);
	buf_free(&b);
	buf_free(&b);	/* twice is fine: free leaves the Buf empty */
	assert_null(b.data);
}

static void
test_append_and_grow(void **state)
{
	Buf b = PV_BUF_INIT;
	unsigned char bin[3] = {0, 0xff, 0};
	char expect[10001];

	(void) state;
	buf_append_str(&b, "hello");
	buf_append_byte(&b, ' ');
	buf_append(&b, "world!!", 5);
	assert_int_equal(b.len, 11);
	assert_string_equal(buf_cstr(&b), "hello world");
	assert_true(b.cap > b.len);	/* room for the terminator */
	assert_int_equal(b.data[b.len], '\0');

	/* binary data with NULs; len counts them, the terminator is extra */
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_append(&b, bin, 3);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, bin, 3);
	assert_int_equal(b.data[3], '\0');

	/* geometric growth keeps every byte */
	buf_reset(&b);
	for (int i = 0; i < 10000; i++)
	{
		expect[i] = (char) ('a' + i % 26);
		buf_append_byte(&b, (unsigned char) expect[i]);
	}
	expect[10000] = '\0';
	assert_int_equal(b.len, 10000);
	assert_string_equal(buf_cstr(&b), expect);
	buf_free(&b);
}

static void
test_reserve(void **state)
{
	Buf b = PV_BUF_INIT;
	unsigned char *before;

	(void) state;
	buf_reserve(&b, 1000);
	assert_true(b.cap >= 1001);
	before = b.data;
	for (int i = 0; i < 1000; i++)
		buf_append_byte(&b, 'x');
	assert_ptr_equal(b.data, before);	/* no reallocation after reserving */
	assert_int_equal(b.len, 1000);
	buf_free(&b);
}

static void
test_printf(void **state)
{
	Buf b = PV_BUF_INIT;
	char big[5000];

	(void) state;
	buf_printf(&b, "%s=%d", "n", 42);
	buf_printf(&b, ", %05.1f", 3.14159);
	assert_string_equal(buf_cstr(&b), "n=42, 003.1");
	assert_int_equal(b.len, strlen("n=42, 003.1"));
	buf_printf(&b, "%s", "");	/* nothing to add */
	assert_int_equal(b.len, 11);

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_reset(&b);
	buf_printf(&b, "<%s>", big);
	assert_int_equal(b.len, sizeof(big) + 1);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[b.len - 1], '>');
	assert_int_equal(b.data[b.len], '\0');
	buf_free(&b);
}

static void
test_consume_and_detach(void **state)
{
	Buf b = PV_BUF_INIT;
	char *s;

	(void) state;
	buf_append_str(&b, "0123456789");
	buf_consume(&b, 3);
	assert_string_equal(buf_cstr(&b), "3456789");
	assert_int_equal(b.len, 7);
	buf_consume(&b, 0);
	assert_string_equal(buf_cstr(&b), "3456789");
	buf_consume(&b, 7);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_append_str(&b, "abc");
	buf_consume(&b, 100);	/* more than there is: empty */
	assert_int_equal(b.len, 0);

	buf_append_str(&b, "owned");
	s = buf_detach(&b);
	assert_string_equal(s, "owned");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	pv_free(s);
	buf_append_str(&b, "again");	/* usable after detach */
	assert_string_equal(buf_cstr(&b), "again");
	buf_free_secret(&b);
	assert_null(b.data);
	buf_free_secret(&b);	/* on an empty Buf too */
}

static void
test_little_endian(void **state)
{
	Buf b = PV_BUF_INIT;
	static const unsigned char expect[] = {
		0x34, 0x12,
		0x78, 0x56, 0x34, 0x12,
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};

	(void) state;
	buf_append_u16le(&b, 0x1234);
	buf_append_u32le(&b, 0x12345678);
	buf_append_u64le(&b, 0x0123456789abcdefULL);
	buf_append_u64le(&b, UINT64_MAX);
	assert_int_equal(b.len, sizeof(expect));
	assert_memory_equal(b.data, expect, sizeof(expect));
	assert_int_equal(pv_read_u16le(b.data), 0x1234);
	assert_int_equal(pv_read_u32le(b.data + 2), 0x12345678);
	assert_true(pv_read_u64le(b.data + 6) == 0x0123456789abcdefULL);
	assert_true(pv_read_u64le(b.data + 14) == UINT64_MAX);
	/* high bits survive (no sign extension) */
	buf_reset(&b);
	buf_append_u32le(&b, 0x80000001u);
	assert_true(pv_read_u32le(b.data) == 0x80000001u);
	buf_free(&b);
}

static void
test_hex(void **state)
{
	static const unsigned char data[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
	char hex[2 * sizeof(data) + 1];
	unsigned char back[sizeof(data)];

	(void) state;
	pv_hex_encode(hex, data, sizeof(data));
	assert_string_equal(hex, "0001abcdefff");
	pv_hex_encode(hex, data, 0);
	assert_string_equal(hex, "");

	assert_int_equal(pv_hex_decode(back, sizeof(back), "0001abcdefff"), PV_OK);
	assert_memory_equal(back, data, sizeof(data));
	assert_int_equal(pv_hex_decode(back, sizeof(back), "0001ABCDEFFF"), PV_OK);
	assert_memory_equal(back, data, sizeof(data));
	assert_int_equal(pv_hex_decode(back, 0, ""), PV_OK);
	/* exactly 2*len digits: shorter, longer, odd or non-hex are refused */
	assert_int_equal(pv_hex_decode(back, sizeof(back), "0001abcdef"), PV_ERROR);
	assert_int_equal(pv_hex_decode(back, sizeof(back), "0001abcdefff00"), PV_ERROR);
	assert_int_equal(pv_hex_decode(back, sizeof(back), "0001abcdeff"), PV_ERROR);
	assert_int_equal(pv_hex_decode(back, sizeof(back), "0001abcdefgf"), PV_ERROR);
	assert_int_equal(pv_hex_decode(back, sizeof(back), "0001abcd efff"), PV_ERROR);
	assert_int_equal(pv_hex_decode(back, 1, "-1"), PV_ERROR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_empty),
		cmocka_unit_test(test_append_and_grow),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_consume_and_detach),
		cmocka_unit_test(test_little_endian),
		cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
