/*
 * copybin.c: see copybin.h.  COPY text rows in, COPY binary rows out.
 *
 * The reading rules are the server's (src/backend/commands/copyfromparse.c,
 * CopyReadLineText and CopyReadAttributesText of PostgreSQL 15): a line
 * ends at '\n', fields split at '\t', a raw field of exactly `\N` is NULL,
 * and a backslash takes the next byte (b f n r t v, 1-3 octal digits, 'x'
 * and 1-2 hex digits, anything else literally).  The value of each kind
 * is what that type's input function would make of the text, sent in the
 * form its send function writes (the receive function reads it back to
 * the same datum), so a binary load stores exactly what a text load would.
 *
 * Invariants:
 * 1. Never a guess.  Only the exact forms `COPY ... TO STDOUT` writes
 *    under pglogical_session_setup's settings are accepted; anything else
 *    is PV_ERROR naming the row and column (the caller then loads the
 *    table as text, where the server is the judge).  That includes what
 *    COPY TO never writes but the text reader would treat specially: a raw
 *    CR or NUL, a backslash ending the line (a continuation for the
 *    server), `\.` (its end-of-data marker), and octal or hex escapes that
 *    make NUL or a non-ASCII byte (the server checks their encoding on
 *    another path, and a NUL would cut the value short).  Messages name
 *    the row and column, never the value (the log must not hold table data).
 * 2. Each line is converted in one pass into space reserved up front
 *    (COPYBIN_FIELD_MAX bytes of overhead per field plus the line's
 *    length bound every kind's binary form), so no per-field allocation
 *    or bounds check; a row that fails is cut from out again.
 * 3. Lines are parsed in place from the caller's data; only a line split
 *    across feed calls is copied (into partial).  Every line handed to
 *    line_convert is followed by its '\n', which stops every scan.
 */
#include "pg/logical/copybin.h"

#include "common/error.h"
#include "common/mem.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Binary bytes of one field beyond its text's length: the int32 length and
   the largest fixed form (uuid, 16) or a numeric's header and rounding. */
#define COPYBIN_FIELD_MAX 24
/* The longest row converted (see partial_check). */
#define COPYBIN_LINE_MAX (16 * 1024 * 1024)
/* The longest float text accepted (float8out writes at most 24 bytes). */
#define COPYBIN_FLOAT_MAX 40

/* PostgreSQL's calendar limits (datatype/timestamp.h, utils/datetime.h). */
#define PG_EPOCH_JDATE 2451545				/* date2j(2000, 1, 1) */
#define PG_DATE_END_JULIAN 2147483494		/* date2j(5874898, 1, 1) */
#define PG_JULIAN_MINYEAR (-4713)
#define PG_JULIAN_MINMONTH 11
#define PG_JULIAN_MAXYEAR 5874898
#define PG_JULIAN_MAXMONTH 6
#define PG_MIN_TIMESTAMP INT64_C(-211813488000000000)
#define PG_END_TIMESTAMP INT64_C(9223371331200000000)	/* 294277-01-01 */
#define PG_USECS_PER_DAY INT64_C(86400000000)
#define PG_MAX_TZDISP_HOUR 15
/* numeric's limits (utils/adt/numeric.c) and sign words */
#define PG_NUMERIC_DSCALE_MAX 0x3FFF
#define PG_NUMERIC_WEIGHT_MAX 32767
#define PG_NUMERIC_POS 0x0000
#define PG_NUMERIC_NEG 0x4000
#define PG_NUMERIC_NAN 0xC000
#define PG_NUMERIC_PINF 0xD000
#define PG_NUMERIC_NINF 0xF000

struct CopyBin
{
	CopyBinKind *kinds;
	size_t ncols;
	size_t rows;				/* lines converted */
	bool header_done;
	bool failed;				/* an error was reported: no more input */
	Buf partial;				/* a line not yet ended by '\n' */
	Buf scratch;				/* an unescaped field of a parsed kind */
	locale_t c_locale;			/* for strtof_l/strtod_l */
};

/* Byte classes for scanning a field: 1 ends it, 2 escapes, 3 is refused. */
enum
{
	CLS_PLAIN = 0,
	CLS_END = 1,
	CLS_BACKSLASH = 2,
	CLS_BAD = 3,
};
static const unsigned char byte_class[256] = {
	['\t'] = CLS_END, ['\n'] = CLS_END, ['\\'] = CLS_BACKSLASH, ['\r'] = CLS_BAD, ['\0'] = CLS_BAD,
};

/* Hex digit value + 1; 0 for a byte that is not one. */
static const unsigned char hex_value1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
	['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static const char *const kind_names[] = {
	[COPYBIN_TEXT] = "text", [COPYBIN_JSONB] = "jsonb", [COPYBIN_BYTEA] = "bytea",
	[COPYBIN_BOOL] = "boolean", [COPYBIN_INT2] = "smallint", [COPYBIN_INT4] = "integer",
	[COPYBIN_INT8] = "bigint", [COPYBIN_OID] = "oid", [COPYBIN_FLOAT4] = "real",
	[COPYBIN_FLOAT8] = "double precision", [COPYBIN_NUMERIC] = "numeric", [COPYBIN_DATE] = "date",
	[COPYBIN_TIMESTAMP] = "timestamp", [COPYBIN_TIMESTAMPTZ] = "timestamptz", [COPYBIN_UUID] = "uuid",
};

int
copybin_kind_for_receive(const char *typreceive)
{
	static const struct
	{
		const char *name;
		CopyBinKind kind;
	} map[] = {
		{"textrecv", COPYBIN_TEXT}, {"varcharrecv", COPYBIN_TEXT}, {"bpcharrecv", COPYBIN_TEXT},
		{"namerecv", COPYBIN_TEXT}, {"json_recv", COPYBIN_TEXT}, {"enum_recv", COPYBIN_TEXT},
		{"citextrecv", COPYBIN_TEXT}, {"jsonb_recv", COPYBIN_JSONB}, {"bytearecv", COPYBIN_BYTEA},
		{"boolrecv", COPYBIN_BOOL}, {"int2recv", COPYBIN_INT2}, {"int4recv", COPYBIN_INT4},
		{"int8recv", COPYBIN_INT8}, {"oidrecv", COPYBIN_OID}, {"float4recv", COPYBIN_FLOAT4},
		{"float8recv", COPYBIN_FLOAT8}, {"numeric_recv", COPYBIN_NUMERIC}, {"date_recv", COPYBIN_DATE},
		{"timestamp_recv", COPYBIN_TIMESTAMP}, {"timestamptz_recv", COPYBIN_TIMESTAMPTZ},
		{"uuid_recv", COPYBIN_UUID},
	};

	if (typreceive == NULL)
		return -1;
	for (size_t i = 0; i < PV_ARRAY_LEN(map); i++)
		if (strcmp(map[i].name, typreceive) == 0)
			return (int) map[i].kind;
	return -1;
}

CopyBin *
copybin_new(const CopyBinKind *kinds, size_t ncols)
{
	CopyBin *cb = PV_NEW(CopyBin);

	cb->kinds = pv_malloc(sizeof(CopyBinKind) * (ncols + 1));
	if (ncols > 0)
		memcpy(cb->kinds, kinds, sizeof(CopyBinKind) * ncols);
	cb->ncols = ncols;
	buf_init(&cb->partial);
	buf_init(&cb->scratch);
	/* "C" always exists; (locale_t) 0 would only make the floats refused */
	cb->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
	return cb;
}

void
copybin_free(CopyBin *cb)
{
	if (cb == NULL)
		return;
	if (cb->c_locale != (locale_t) 0)
		freelocale(cb->c_locale);
	buf_free(&cb->partial);
	buf_free(&cb->scratch);
	pv_free(cb->kinds);
	pv_free(cb);
}

size_t
copybin_rows(const CopyBin *cb)
{
	return cb->rows;
}

/* ---- big-endian stores ---- */

static inline unsigned char *
put16(unsigned char *w, uint16_t v)
{
	w[0] = (unsigned char) (v >> 8);
	w[1] = (unsigned char) v;
	return w + 2;
}

static inline unsigned char *
put32(unsigned char *w, uint32_t v)
{
	w[0] = (unsigned char) (v >> 24);
	w[1] = (unsigned char) (v >> 16);
	w[2] = (unsigned char) (v >> 8);
	w[3] = (unsigned char) v;
	return w + 4;
}

static inline unsigned char *
put64(unsigned char *w, uint64_t v)
{
	return put32(put32(w, (uint32_t) (v >> 32)), (uint32_t) v);
}

static bool
text_is(const unsigned char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* ---- the field reader ---- */

/*
 * The first byte at or after p that is not CLS_PLAIN, or one that may not
 * be (a control byte); eol is the line's '\n', which stops it.  With SSE2
 * (every x86-64), 16 bytes a step while they lie within the line and its
 * '\n': the scan is most of the time spent on text columns.
 */
static inline const unsigned char *
plain_skip(const unsigned char *p, const unsigned char *eol)
{
#ifdef __SSE2__
	const __m128i ctl = _mm_set1_epi8(13), bs = _mm_set1_epi8('\\');

	while (eol - p >= 15)
	{
		__m128i v = _mm_loadu_si128((const __m128i *) p);
		/* bytes <= 13 (NUL, tab, LF, CR among them) or a backslash */
		__m128i hit = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v), _mm_cmpeq_epi8(v, bs));
		int mask = _mm_movemask_epi8(hit);

		if (mask != 0)
			return p + __builtin_ctz((unsigned int) mask);
		p += 16;
	}
#else
	(void) eol;
#endif
	while (byte_class[*p] == CLS_PLAIN)
		p++;
	return p;
}

/*
 * The end of the field starting at p (its '\t' or the line's '\n' at eol);
 * *escaped is set if it holds a backslash.  NULL with *why set for what the
 * server would read otherwise than as data (invariant 1).
 */
static inline const unsigned char *
field_scan(const unsigned char *p, const unsigned char *eol, bool *escaped, const char **why)
{
	for (;;)
	{
		unsigned char c;

		p = plain_skip(p, eol);
		c = *p;
		if (byte_class[c] == CLS_PLAIN)
		{
			p++;				/* a control byte that is data */
			continue;
		}
		if (c == '\t' || c == '\n')
			return p;
		if (c != '\\')
		{
			*why = c == '\r' ? "a carriage return in the data" : "a NUL byte in the data";
			return NULL;
		}
		*escaped = true;
		c = p[1];
		if (c == '\n')
		{
			*why = "a backslash at the end of the line";
			return NULL;
		}
		if (c == '.')
		{
			*why = "an end-of-data marker (\\.)";
			return NULL;
		}
		if (c == '\0')
		{
			*why = "a NUL byte in the data";
			return NULL;
		}
		p += 2;
	}
}

static inline bool
is_octal(unsigned char c)
{
	return c >= '0' && c <= '7';
}

/*
 * Unescape [p, end) (a field field_scan accepted) into out, which has room
 * for end - p bytes; returns the length, or -1 with *why set.
 */
static long
field_unescape(const unsigned char *p, const unsigned char *end, unsigned char *out, const char **why)
{
	unsigned char *o = out;

	while (p < end)
	{
		unsigned char c = *p++;

		if (c == '\\')
		{
			unsigned int v;

			c = *p++;			/* field_scan saw that one follows */
			switch (c)
			{
				case '0': case '1': case '2': case '3':
				case '4': case '5': case '6': case '7':
					v = (unsigned int) (c - '0');
					if (p < end && is_octal(*p))
					{
						v = (v << 3) + (unsigned int) (*p++ - '0');
						if (p < end && is_octal(*p))
							v = (v << 3) + (unsigned int) (*p++ - '0');
					}
					c = (unsigned char) (v & 0377);
					if (c == 0 || c >= 0x80)
						goto bad_escape;
					break;
				case 'x':
					if (p < end && hex_value1[*p] != 0)
					{
						v = hex_value1[*p++] - 1u;
						if (p < end && hex_value1[*p] != 0)
							v = (v << 4) + hex_value1[*p++] - 1u;
						c = (unsigned char) v;
						if (c == 0 || c >= 0x80)
							goto bad_escape;
					}
					break;
				case 'b': c = '\b'; break;
				case 'f': c = '\f'; break;
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				case 't': c = '\t'; break;
				case 'v': c = '\v'; break;
				default:
					break;		/* any other byte stands for itself */
			}
		}
		*o++ = c;
	}
	return (long) (o - out);
bad_escape:
	*why = "an escape making a NUL or non-ASCII byte";
	return -1;
}

/* ---- the kinds ---- */

/* A decimal of [-]digits within [min, max]; 1 = not one, 2 = out of range. */
static int
decimal_parse(const unsigned char *s, size_t n, bool allow_minus, int64_t min, int64_t max, int64_t *out)
{
	bool neg = false;
	uint64_t acc = 0, limit;

	if (n > 0 && s[0] == '-' && allow_minus)
	{
		neg = true;
		s++;
		n--;
	}
	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
	{
		unsigned int d = (unsigned int) s[i] - '0';

		if (d > 9)
			return 1;
		/* 19 digits cannot overflow; past that, check each step */
		if (i >= 19 && acc > (UINT64_MAX - d) / 10)
			return 2;
		acc = acc * 10 + d;
	}
	limit = neg ? (uint64_t) (-(min + 1)) + 1 : (uint64_t) max;
	if (acc > limit)
		return 2;
	*out = neg ? (int64_t) (0 - acc) : (int64_t) acc;
	return 0;
}

static const char *
int_convert(const unsigned char *s, size_t n, CopyBinKind kind, unsigned char **wp)
{
	int64_t v = 0;
	int rc;

	switch (kind)
	{
		case COPYBIN_INT2:
			rc = decimal_parse(s, n, true, INT16_MIN, INT16_MAX, &v);
			break;
		case COPYBIN_INT4:
			rc = decimal_parse(s, n, true, INT32_MIN, INT32_MAX, &v);
			break;
		case COPYBIN_OID:
			rc = decimal_parse(s, n, false, 0, UINT32_MAX, &v);
			break;
		default:
			rc = decimal_parse(s, n, true, INT64_MIN, INT64_MAX, &v);
			break;
	}
	if (rc != 0)
		return rc == 2 ? "out of range" : "invalid";
	if (kind == COPYBIN_INT2)
		*wp = put16(put32(*wp, 2), (uint16_t) v);
	else if (kind == COPYBIN_INT8)
		*wp = put64(put32(*wp, 8), (uint64_t) v);
	else
		*wp = put32(put32(*wp, 4), (uint32_t) v);
	return NULL;
}

/*
 * float4in/float8in for float4out/float8out's forms: the specials, or
 * [-]digits[.digits][e[+-]digits] read by strto[fd]_l in the C locale,
 * with the server's rule for ERANGE (denormals pass, zero and infinity
 * from a finite text are out of range).  NaN is the server's NAN macro.
 */
static const char *
float_convert(const unsigned char *s, size_t n, bool is4, locale_t loc, unsigned char **wp)
{
	char text[COPYBIN_FLOAT_MAX + 1];
	char *end;
	uint64_t bits8 = 0;
	uint32_t bits4 = 0;

	if (text_is(s, n, "NaN"))
		bits8 = UINT64_C(0x7FF8000000000000), bits4 = 0x7FC00000u;
	else if (text_is(s, n, "Infinity"))
		bits8 = UINT64_C(0x7FF0000000000000), bits4 = 0x7F800000u;
	else if (text_is(s, n, "-Infinity"))
		bits8 = UINT64_C(0xFFF0000000000000), bits4 = 0xFF800000u;
	else
	{
		size_t i = 0;
		bool digits = false;

		if (n == 0 || n > COPYBIN_FLOAT_MAX || loc == (locale_t) 0)
			return "invalid";
		/* the grammar first: strtod would also take hex, "inf", spaces */
		if (s[i] == '-')
			i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			digits = true;
		if (i < n && s[i] == '.')
			for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
				digits = true;
		if (!digits)
			return "invalid";
		if (i < n && s[i] == 'e')
		{
			size_t e0;

			i++;
			if (i < n && (s[i] == '+' || s[i] == '-'))
				i++;
			for (e0 = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
				;
			if (i == e0)
				return "invalid";
		}
		if (i != n)
			return "invalid";
		memcpy(text, s, n);
		text[n] = '\0';
		errno = 0;
		if (is4)
		{
			float f = strtof_l(text, &end, loc);

			if (end != text + n)
				return "invalid";
			if (errno == ERANGE && (f == 0.0f || f >= HUGE_VALF || f <= -HUGE_VALF))
				return "out of range";
			memcpy(&bits4, &f, 4);
		}
		else
		{
			double d = strtod_l(text, &end, loc);

			if (end != text + n)
				return "invalid";
			if (errno == ERANGE && (d == 0.0 || d >= HUGE_VAL || d <= -HUGE_VAL))
				return "out of range";
			memcpy(&bits8, &d, 8);
		}
	}
	if (is4)
		*wp = put32(put32(*wp, 4), bits4);
	else
		*wp = put64(put32(*wp, 8), bits8);
	return NULL;
}

static inline int
floor_div4(int e)
{
	return e >= 0 ? e / 4 : -((3 - e) / 4);
}

/*
 * numeric_in then numeric_send: [-]digits[.digits] to base-10000 digits,
 * zero digit groups stripped at both ends as make_result stores them (a
 * zero is positive with weight 0), dscale the count of written decimals.
 */
static const char *
numeric_convert(const unsigned char *s, size_t n, unsigned char **wp)
{
	static const int pow10[4] = {1, 10, 100, 1000};
	const unsigned char *ip, *iend, *fp = NULL, *fend = NULL, *end = s + n;
	unsigned char *w = *wp, *dig = w + 12;
	uint16_t sign = PG_NUMERIC_POS;
	size_t nd = 0, nd_used = 0;
	int weight, e, group_weight, nint;
	unsigned int cur = 0;
	bool started = false;

	if (text_is(s, n, "NaN") || text_is(s, n, "Infinity") || text_is(s, n, "-Infinity"))
	{
		/*
		 * numeric_send writes NUMERIC_DSCALE() of the stored value, which for
		 * the special values reads bits of the sign word: 32 for the
		 * infinities, 0 for NaN (numeric_recv ignores it; this is for byte
		 * equality with the server's own binary output).
		 */
		sign = s[0] == 'N' ? PG_NUMERIC_NAN : s[0] == 'I' ? PG_NUMERIC_PINF : PG_NUMERIC_NINF;
		w = put32(w, 8);
		w = put16(put16(w, 0), 0);
		*wp = put16(put16(w, sign), (uint16_t) ((sign & 0x1F80) >> 7));
		return NULL;
	}
	ip = s;
	if (ip < end && *ip == '-')
	{
		sign = PG_NUMERIC_NEG;
		ip++;
	}
	for (iend = ip; iend < end && *iend >= '0' && *iend <= '9'; iend++)
		;
	if (iend == ip)
		return "invalid";
	if (iend < end)
	{
		if (*iend != '.')
			return "invalid";
		fp = iend + 1;
		for (fend = fp; fend < end && *fend >= '0' && *fend <= '9'; fend++)
			;
		if (fend == fp || fend != end)
			return "invalid";
		if (fend - fp > PG_NUMERIC_DSCALE_MAX)
			return "out of range";
	}
	while (ip < iend && *ip == '0')
		ip++;
	nint = (int) (iend - ip);
	if (iend - ip > 4 * (PG_NUMERIC_WEIGHT_MAX + 1))
		return "out of range";

	/* digit k has decimal exponent e; its group is floor(e / 4) */
	e = nint - 1;
	weight = group_weight = floor_div4(e);
	for (int part = 0; part < 2; part++)
	{
		const unsigned char *p = part == 0 ? ip : fp, *pe = part == 0 ? iend : fend;

		for (; p < pe; p++, e--)
		{
			int gw = floor_div4(e);

			if (gw != group_weight)
			{
				/* emit the finished group (leading zero groups are dropped) */
				if (started || cur != 0)
				{
					started = true;
					put16(dig + 2 * nd++, (uint16_t) cur);
					if (cur != 0)
						nd_used = nd;
				}
				else
					weight--;
				group_weight = gw;
				cur = 0;
			}
			cur += (unsigned int) (*p - '0') * (unsigned int) pow10[e - 4 * gw];
		}
	}
	if (started || cur != 0)
	{
		put16(dig + 2 * nd++, (uint16_t) cur);
		if (cur != 0)
			nd_used = nd;
	}
	if (nd_used == 0)
	{
		weight = 0;
		sign = PG_NUMERIC_POS;
	}
	if (weight > PG_NUMERIC_WEIGHT_MAX)
		return "out of range";
	w = put32(w, (uint32_t) (8 + 2 * nd_used));
	w = put16(w, (uint16_t) nd_used);
	w = put16(w, (uint16_t) (int16_t) weight);
	w = put16(w, sign);
	put16(w, (uint16_t) (fp != NULL ? fend - fp : 0));
	*wp = dig + 2 * nd_used;
	return NULL;
}

/* date2j of PostgreSQL's datetime.c: the Julian day of a proleptic Gregorian date. */
static int64_t
date2j(int64_t y, int64_t m, int64_t d)
{
	int64_t julian, century;

	if (m > 2)
	{
		m += 1;
		y += 4800;
	}
	else
	{
		m += 13;
		y += 4799;
	}
	century = y / 100;
	julian = y * 365 - 32167;
	julian += y / 4 - century + century / 4;
	julian += 7834 * m / 256 + d;
	return julian;
}

static bool
is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* n digits at s (all of them digits) as a number. */
static bool
digits_parse(const unsigned char *s, size_t n, int64_t *out)
{
	int64_t v = 0;

	for (size_t i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * "YYYY-MM-DD" (4 to 7 digits of year, no zero-padding beyond 4) at *sp;
 * year, month, day checked as ValidateDate does (no year 0).  Advances *sp.
 */
static bool
ymd_parse(const unsigned char **sp, const unsigned char *end, int64_t *y, int64_t *m, int64_t *d)
{
	const unsigned char *s = *sp;
	size_t yl = 0;

	while (s + yl < end && s[yl] >= '0' && s[yl] <= '9')
		yl++;
	if (yl < 4 || yl > 7 || (yl > 4 && s[0] == '0') || end - s < (ptrdiff_t) yl + 6)
		return false;
	if (!digits_parse(s, yl, y) || s[yl] != '-' || !digits_parse(s + yl + 1, 2, m) ||
		s[yl + 3] != '-' || !digits_parse(s + yl + 4, 2, d))
		return false;
	if (*y < 1 || *m < 1 || *m > 12 || *d < 1)
		return false;
	/* the day is checked by ymd_valid, once " BC" has made the year astronomical */
	*sp = s + yl + 6;
	return true;
}

/* The month length check, on the astronomical year (BC applied). */
static bool
ymd_valid(int64_t y, int64_t m, int64_t d)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return d <= mdays[m - 1] + (m == 2 && is_leap(y) ? 1 : 0);
}

static bool
julian_valid(int64_t y, int64_t m)
{
	return (y > PG_JULIAN_MINYEAR || (y == PG_JULIAN_MINYEAR && m >= PG_JULIAN_MINMONTH)) &&
		(y < PG_JULIAN_MAXYEAR || (y == PG_JULIAN_MAXYEAR && m < PG_JULIAN_MAXMONTH));
}

/* " BC" at the very end: consumed, and the year made astronomical. */
static void
bc_apply(const unsigned char **sp, const unsigned char *end, int64_t *y)
{
	if (end - *sp == 3 && memcmp(*sp, " BC", 3) == 0)
	{
		*y = 1 - *y;
		*sp = end;
	}
}

static const char *
date_convert(const unsigned char *s, size_t n, unsigned char **wp)
{
	const unsigned char *end = s + n;
	int64_t y, m, d, date;

	if (text_is(s, n, "infinity") || text_is(s, n, "-infinity"))
	{
		*wp = put32(put32(*wp, 4), s[0] == '-' ? (uint32_t) INT32_MIN : (uint32_t) INT32_MAX);
		return NULL;
	}
	if (!ymd_parse(&s, end, &y, &m, &d))
		return "invalid";
	bc_apply(&s, end, &y);
	if (s != end || !ymd_valid(y, m, d))
		return "invalid";
	if (!julian_valid(y, m))
		return "out of range";
	date = date2j(y, m, d) - PG_EPOCH_JDATE;
	if (date < -PG_EPOCH_JDATE || date >= PG_DATE_END_JULIAN - PG_EPOCH_JDATE)
		return "out of range";
	*wp = put32(put32(*wp, 4), (uint32_t) (int32_t) date);
	return NULL;
}

/*
 * timestamp_in / timestamptz_in for the ISO forms, then tm2timestamp's
 * checks: "Y-M-D HH:MM:SS[.f{1,6}]", for timestamptz an offset
 * +HH[:MM[:SS]] (east of UTC, subtracted), then an optional " BC".
 */
static const char *
timestamp_convert(const unsigned char *s, size_t n, bool tz, unsigned char **wp)
{
	const unsigned char *end = s + n;
	int64_t y, mo, d, h, mi, sec, usec = 0, off = 0, date, t, time;

	if (text_is(s, n, "infinity") || text_is(s, n, "-infinity"))
	{
		*wp = put64(put32(*wp, 8), s[0] == '-' ? (uint64_t) INT64_MIN : (uint64_t) INT64_MAX);
		return NULL;
	}
	if (!ymd_parse(&s, end, &y, &mo, &d))
		return "invalid";
	if (end - s < 9 || s[0] != ' ' || !digits_parse(s + 1, 2, &h) || s[3] != ':' ||
		!digits_parse(s + 4, 2, &mi) || s[6] != ':' || !digits_parse(s + 7, 2, &sec))
		return "invalid";
	s += 9;
	if (h > 23 || mi > 59 || sec > 59)
		return "invalid";
	if (s < end && *s == '.')
	{
		static const int64_t scale[7] = {0, 100000, 10000, 1000, 100, 10, 1};
		size_t fl = 0;

		s++;
		while (s + fl < end && s[fl] >= '0' && s[fl] <= '9')
			fl++;
		if (fl < 1 || fl > 6 || !digits_parse(s, fl, &usec))
			return "invalid";
		usec *= scale[fl];
		s += fl;
	}
	if (tz)
	{
		int64_t oh, om = 0, os = 0;
		bool neg;

		if (end - s < 3 || (s[0] != '+' && s[0] != '-') || !digits_parse(s + 1, 2, &oh))
			return "invalid";
		neg = s[0] == '-';
		s += 3;
		if (end - s >= 3 && s[0] == ':')
		{
			if (!digits_parse(s + 1, 2, &om))
				return "invalid";
			s += 3;
			if (end - s >= 3 && s[0] == ':')
			{
				if (!digits_parse(s + 1, 2, &os))
					return "invalid";
				s += 3;
			}
		}
		if (oh > PG_MAX_TZDISP_HOUR || om > 59 || os > 59)
			return "invalid";
		off = (oh * 3600 + om * 60 + os) * (neg ? -1 : 1);
	}
	bc_apply(&s, end, &y);
	if (s != end || !ymd_valid(y, mo, d))
		return "invalid";
	if (!julian_valid(y, mo))
		return "out of range";
	date = date2j(y, mo, d) - PG_EPOCH_JDATE;
	time = ((h * 60 + mi) * 60 + sec) * INT64_C(1000000) + usec;
	if (__builtin_mul_overflow(date, PG_USECS_PER_DAY, &t) || __builtin_add_overflow(t, time, &t) ||
		(t < 0 && date > 0) || (t > 0 && date < -1))
		return "out of range";
	if (__builtin_sub_overflow(t, off * INT64_C(1000000), &t) || t < PG_MIN_TIMESTAMP || t >= PG_END_TIMESTAMP)
		return "out of range";
	*wp = put64(put32(*wp, 8), (uint64_t) t);
	return NULL;
}

static const char *
uuid_convert(const unsigned char *s, size_t n, unsigned char **wp)
{
	unsigned char *w;

	if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return "invalid";
	w = put32(*wp, 16);
	for (size_t i = 0; i < 36; i += 2)
	{
		unsigned int a, b;

		if (i == 8 || i == 13 || i == 18 || i == 23)
			i++;
		a = hex_value1[s[i]];
		b = hex_value1[s[i + 1]];
		if (a == 0 || b == 0)
			return "invalid";
		*w++ = (unsigned char) (((a - 1) << 4) | (b - 1));
	}
	*wp = w;
	return NULL;
}

/* "\x" then pairs of hex digits (byteain's hex form, whitespace refused). */
static const char *
bytea_hex_convert(const unsigned char *s, size_t n, unsigned char **wp)
{
	unsigned char *w = *wp + 4;

	if (n < 2 || s[0] != '\\' || s[1] != 'x' || (n - 2) % 2 != 0)
		return "invalid";
	for (size_t i = 2; i < n; i += 2)
	{
		unsigned int a = hex_value1[s[i]], b = hex_value1[s[i + 1]];

		if (a == 0 || b == 0)
			return "invalid";
		*w++ = (unsigned char) (((a - 1) << 4) | (b - 1));
	}
	put32(*wp, (uint32_t) ((n - 2) / 2));
	*wp = w;
	return NULL;
}

/* ---- lines ---- */

/* The fields of a line as the server splits them (for the message). */
static size_t
line_count_fields(const unsigned char *p, const unsigned char *end)
{
	size_t n = 1;

	for (; p < end; p++)
	{
		if (*p == '\\' && p + 1 < end)
			p++;
		else if (*p == '\t')
			n++;
	}
	return n;
}

/* One field's value (already unescaped when it had to be) of a parsed kind. */
static const char *
field_convert(CopyBin *cb, CopyBinKind kind, const unsigned char *v, size_t n, unsigned char **wp)
{
	switch (kind)
	{
		case COPYBIN_BOOL:
			if (n != 1 || (v[0] != 't' && v[0] != 'f'))
				return "invalid";
			*wp = put32(*wp, 1);
			*(*wp)++ = v[0] == 't' ? 1 : 0;
			return NULL;
		case COPYBIN_INT2:
		case COPYBIN_INT4:
		case COPYBIN_INT8:
		case COPYBIN_OID:
			return int_convert(v, n, kind, wp);
		case COPYBIN_FLOAT4:
		case COPYBIN_FLOAT8:
			return float_convert(v, n, kind == COPYBIN_FLOAT4, cb->c_locale, wp);
		case COPYBIN_NUMERIC:
			return numeric_convert(v, n, wp);
		case COPYBIN_DATE:
			return date_convert(v, n, wp);
		case COPYBIN_TIMESTAMP:
		case COPYBIN_TIMESTAMPTZ:
			return timestamp_convert(v, n, kind == COPYBIN_TIMESTAMPTZ, wp);
		case COPYBIN_UUID:
			return uuid_convert(v, n, wp);
		case COPYBIN_BYTEA:
			return bytea_hex_convert(v, n, wp);
		default:
			return "unsupported kind";
	}
}

/*
 * Convert line[0..len) (line[len] is its '\n') into out; the row is cut
 * from out again when it fails.
 */
static int
line_convert(CopyBin *cb, const unsigned char *line, size_t len, Buf *out)
{
	const unsigned char *p = line, *end = line + len;
	size_t row = cb->rows + 1, start = out->len, col = 0;
	const char *why = NULL;
	unsigned char *w;

	buf_reserve(out, 2 + cb->ncols * COPYBIN_FIELD_MAX + len);
	w = put16(out->data + out->len, (uint16_t) cb->ncols);
	for (col = 0; col < cb->ncols; col++)
	{
		CopyBinKind kind = cb->kinds[col];
		const unsigned char *f = p, *v;
		bool escaped = false;
		size_t n;

		if (col > 0)
		{
			if (*p != '\t')
				goto count;
			f = ++p;
		}
		if ((p = field_scan(p, end, &escaped, &why)) == NULL)
			goto fail;
		n = (size_t) (p - f);
		if (n == 2 && f[0] == '\\' && f[1] == 'N')
		{
			w = put32(w, UINT32_MAX);
			continue;
		}
		if (kind == COPYBIN_TEXT || kind == COPYBIN_JSONB)
		{
			/* unescape straight into place: never longer than the text */
			size_t hdr = kind == COPYBIN_JSONB ? 5 : 4;
			long vl = (long) n;

			if (!escaped)
				memcpy(w + hdr, f, n);
			else if ((vl = field_unescape(f, p, w + hdr, &why)) < 0)
				goto fail;
			put32(w, (uint32_t) vl + (uint32_t) (hdr - 4));
			if (kind == COPYBIN_JSONB)
				w[4] = 1;		/* jsonb's binary format version */
			w += hdr + (size_t) vl;
			continue;
		}
		v = f;
		if (escaped && !(kind == COPYBIN_BYTEA && n >= 3 && memcmp(f, "\\\\x", 3) == 0 &&
						 memchr(f + 3, '\\', n - 3) == NULL))
		{
			long vl;

			buf_reset(&cb->scratch);
			buf_reserve(&cb->scratch, n);
			if ((vl = field_unescape(f, p, cb->scratch.data, &why)) < 0)
				goto fail;
			v = cb->scratch.data;
			n = (size_t) vl;
		}
		else if (escaped)
		{
			/* the usual bytea: "\\x" then hex, read from the text as is */
			v = f + 1;
			n--;
		}
		if ((why = field_convert(cb, kind, v, n, &w)) != NULL)
		{
			out->len = start;
			out->data[start] = '\0';
			return pv_error_set(PV_ERROR, "row %zu column %zu: %s %s value", row, col + 1, why,
								(size_t) kind < PV_ARRAY_LEN(kind_names) ? kind_names[kind] : "unknown");
		}
	}
	if (p != end)
		goto count;
	out->len = (size_t) (w - out->data);
	out->data[out->len] = '\0';
	cb->rows++;
	return PV_OK;
count:
	out->len = start;
	out->data[start] = '\0';
	return pv_error_set(PV_ERROR, "row %zu has %zu fields where %zu are expected", row,
						cb->ncols == 0 && len == 0 ? 0 : line_count_fields(line, end), cb->ncols);
fail:
	out->len = start;
	out->data[start] = '\0';
	return pv_error_set(PV_ERROR, "row %zu column %zu: %s", row, col + 1, why);
}

static void
header_put(CopyBin *cb, Buf *out)
{
	/* signature, int32 flags 0, int32 header extension length 0 */
	static const unsigned char header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0};

	if (!cb->header_done)
	{
		buf_append(out, header, sizeof(header));
		cb->header_done = true;
	}
}

static int
state_check(CopyBin *cb)
{
	if (cb->failed)
		return pv_error_set(PV_ERROR, "the conversion failed at row %zu", cb->rows + 1);
	if (cb->ncols > INT16_MAX)
	{
		cb->failed = true;
		return pv_error_set(PV_ERROR, "%zu columns do not fit a binary COPY row", cb->ncols);
	}
	return PV_OK;
}

/*
 * A row longer than COPYBIN_LINE_MAX is not converted: as text it streams
 * through in small pieces, as binary it would be held whole (twice) in
 * memory, and a restore's memory must not grow with its longest value.
 */
static int
partial_check(CopyBin *cb)
{
	if (cb->partial.len <= COPYBIN_LINE_MAX)
		return PV_OK;
	cb->failed = true;
	return pv_error_set(PV_ERROR, "row %zu is longer than %d MiB", cb->rows + 1, COPYBIN_LINE_MAX >> 20);
}

int
copybin_feed(CopyBin *cb, const char *data, size_t n, Buf *out)
{
	const unsigned char *p = (const unsigned char *) data, *end = p + n, *nl;
	int rc;

	if ((rc = state_check(cb)) < 0)
		return rc;
	header_put(cb, out);
	if (n == 0)
		return PV_OK;
	if (cb->partial.len > 0)
	{
		/* finish the line an earlier call left, in partial */
		if ((nl = memchr(p, '\n', n)) == NULL)
		{
			buf_append(&cb->partial, p, n);
			return partial_check(cb);
		}
		buf_append(&cb->partial, p, (size_t) (nl - p) + 1);
		rc = line_convert(cb, cb->partial.data, cb->partial.len - 1, out);
		buf_reset(&cb->partial);
		if (rc < 0)
			goto fail;
		p = nl + 1;
	}
	while (p < end)
	{
		if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL)
		{
			buf_append(&cb->partial, p, (size_t) (end - p));
			return partial_check(cb);
		}
		if ((rc = line_convert(cb, p, (size_t) (nl - p), out)) < 0)
			goto fail;
		p = nl + 1;
	}
	return PV_OK;
fail:
	cb->failed = true;
	return rc;
}

int
copybin_finish(CopyBin *cb, Buf *out)
{
	int rc;

	if ((rc = state_check(cb)) < 0)
		return rc;
	if (cb->partial.len > 0)
	{
		cb->failed = true;
		return pv_error_set(PV_ERROR, "row %zu: the data ends inside the line", cb->rows + 1);
	}
	header_put(cb, out);
	buf_append(out, "\377\377", 2);
	return PV_OK;
}
