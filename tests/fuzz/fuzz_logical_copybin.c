/*
 * fuzz_logical_copybin.c: COPY text rows turned into COPY binary rows
 * (pg/logical/copybin.h), as a logical restore converts what it reads from
 * the repository.  The converter has one column of every kind; the input's
 * first byte chooses where it is split between two copybin_feed calls
 * (splits inside lines and escapes), then copybin_finish.  Any input must
 * be converted or refused with PV_ERROR, and a refused row must leave
 * nothing of itself in the output (the output is walked as COPY binary).
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "pg/logical/copybin.h"

#include <stdbool.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

/* The header, whole tuples (a refused row leaves nothing), the trailer if finished. */
static bool
binary_well_formed(const unsigned char *p, size_t len, bool finished)
{
	size_t pos = 19;

	if (len < 19 || memcmp(p, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19) != 0)
		return false;
	while (pos < len)
	{
		int16_t n;

		if (len - pos < 2)
			return false;
		n = (int16_t) (p[pos] << 8 | p[pos + 1]);
		pos += 2;
		if (n == -1)
			return finished && pos == len;
		for (int16_t i = 0; i < n; i++)
		{
			int32_t fl;

			if (len - pos < 4)
				return false;
			fl = (int32_t) ((uint32_t) p[pos] << 24 | (uint32_t) p[pos + 1] << 16 | (uint32_t) p[pos + 2] << 8 | p[pos + 3]);
			pos += 4;
			if (fl < -1 || (fl > 0 && len - pos < (size_t) fl))
				return false;
			if (fl > 0)
				pos += (size_t) fl;
		}
	}
	return !finished;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const CopyBinKind kinds[] = {
		COPYBIN_TEXT, COPYBIN_JSONB, COPYBIN_BYTEA, COPYBIN_BOOL, COPYBIN_INT2, COPYBIN_INT4,
		COPYBIN_INT8, COPYBIN_OID, COPYBIN_FLOAT4, COPYBIN_FLOAT8, COPYBIN_NUMERIC, COPYBIN_DATE,
		COPYBIN_TIMESTAMP, COPYBIN_TIMESTAMPTZ, COPYBIN_UUID,
	};
	CopyBin *cb;
	Buf out = PV_BUF_INIT;
	size_t split;
	char *copy;
	int rc;

	if (size < 1)
		return 0;
	/* the first byte: a split point and how many columns (1 = one of each kind in turn) */
	split = (size_t) data[0] * (size - 1) / 255;
	cb = copybin_new(kinds + (data[0] % 3 == 0 ? data[0] / 3 % PV_ARRAY_LEN(kinds) : 0),
					 data[0] % 3 == 0 ? 1 : PV_ARRAY_LEN(kinds));
	data++;
	size--;
	/* exact-size heap copies, so that ASan sees any read past either part */
	copy = pv_malloc(split > 0 ? split : 1);
	memcpy(copy, data, split);
	rc = copybin_feed(cb, copy, split, &out);
	pv_free(copy);
	if (rc == 0)
	{
		copy = pv_malloc(size - split > 0 ? size - split : 1);
		memcpy(copy, data + split, size - split);
		rc = copybin_feed(cb, copy, size - split, &out);
		pv_free(copy);
	}
	if (rc == 0)
		rc = copybin_finish(cb, &out);
	if (rc != 0 && rc != PV_ERROR)
		abort();
	if (!binary_well_formed(out.data, out.len, rc == 0))
		abort();
	pv_error_clear();
	copybin_free(cb);
	buf_free(&out);
	return 0;
}
