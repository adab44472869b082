/*
 * units.c: see units.h.
 *
 * Parsing is exact integer arithmetic (no floating point): "1.5 GiB" is
 * 1 * 2^30 + 5 * 2^30 / 10, so every value a user can write maps to one
 * well-defined byte or millisecond count, and overflow is detected with
 * __builtin_*_overflow rather than guessed from a double.  A fraction that
 * does not come out whole is rounded to the nearest byte / millisecond.
 *
 * Grammar (whitespace allowed around numbers and units, units
 * case-insensitive):
 *   size     := number [unit]
 *   duration := number [unit] | (number unit)+   (bare number = seconds)
 *   number   := digits ['.' digits] | '.' digits
 */
#include "common/units.h"

#include "common/error.h"
#include "common/mem.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SIZE_HINT "use a number of bytes with an optional unit, e.g. 4096, 64k, 64KiB, 1.5GiB, 2GB " \
	"(k, M, G, T, P, E; all binary multiples of 1024)"
#define DURATION_HINT "use a number with a unit, e.g. 500ms, 90s, 15min, 4h, 30d, 2w or 1h30min " \
	"(a bare number means seconds)"

/* At most this many fractional digits are honoured (10^18 fits in uint64). */
#define FRAC_DIGITS_MAX 18

typedef struct UnitDef
{
	const char *name;
	uint64_t mult;
} UnitDef;

static const UnitDef size_units[] = {
	{"", 1}, {"b", 1}, {"byte", 1}, {"bytes", 1},
	{"k", 1ULL << 10}, {"kb", 1ULL << 10}, {"kib", 1ULL << 10},
	{"m", 1ULL << 20}, {"mb", 1ULL << 20}, {"mib", 1ULL << 20},
	{"g", 1ULL << 30}, {"gb", 1ULL << 30}, {"gib", 1ULL << 30},
	{"t", 1ULL << 40}, {"tb", 1ULL << 40}, {"tib", 1ULL << 40},
	{"p", 1ULL << 50}, {"pb", 1ULL << 50}, {"pib", 1ULL << 50},
	{"e", 1ULL << 60}, {"eb", 1ULL << 60}, {"eib", 1ULL << 60},
};

/* Multipliers in milliseconds. */
static const UnitDef duration_units[] = {
	{"ms", 1}, {"msec", 1}, {"msecs", 1}, {"millisecond", 1}, {"milliseconds", 1},
	{"s", 1000}, {"sec", 1000}, {"secs", 1000}, {"second", 1000}, {"seconds", 1000},
	{"m", 60000}, {"min", 60000}, {"mins", 60000}, {"minute", 60000}, {"minutes", 60000},
	{"h", 3600000}, {"hr", 3600000}, {"hrs", 3600000}, {"hour", 3600000}, {"hours", 3600000},
	{"d", 86400000}, {"day", 86400000}, {"days", 86400000},
	{"w", 604800000}, {"week", 604800000}, {"weeks", 604800000},
};

static const char *
skip_space(const char *p)
{
	while (isspace((unsigned char) *p))
		p++;
	return p;
}

/*
 * Read digits['.'digits] at *pp.  The integer part goes to *whole, the
 * fraction as numerator *frac over denominator *den (a power of ten).
 * Returns false when no digit is present; *overflow is set when the integer
 * part does not fit in 64 bits.
 */
static bool
number_read(const char **pp, uint64_t *whole, uint64_t *frac, uint64_t *den, bool *overflow)
{
	const char *p = *pp;
	bool any = false;
	int ndigits = 0;

	*whole = 0;
	*frac = 0;
	*den = 1;
	*overflow = false;
	while (isdigit((unsigned char) *p))
	{
		if (__builtin_mul_overflow(*whole, 10, whole) ||
			__builtin_add_overflow(*whole, (uint64_t) (*p - '0'), whole))
			*overflow = true;
		any = true;
		p++;
	}
	if (*p == '.' && isdigit((unsigned char) p[1]))
	{
		p++;
		while (isdigit((unsigned char) *p))
		{
			if (ndigits < FRAC_DIGITS_MAX)
			{
				*frac = *frac * 10 + (uint64_t) (*p - '0');
				*den *= 10;
				ndigits++;
			}
			any = true;
			p++;
		}
	}
	*pp = p;
	return any;
}

/* The unit name starting at p: a run of letters (possibly empty). */
static size_t
unit_len(const char *p)
{
	size_t n = 0;

	while (isalpha((unsigned char) p[n]))
		n++;
	return n;
}

static const UnitDef *
unit_find(const UnitDef *units, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(units[i].name) == len && strncasecmp(units[i].name, name, len) == 0)
			return &units[i];
	return NULL;
}

/*
 * whole * mult + frac * mult / den, the fraction rounded to nearest.
 * Returns false on overflow.  frac < den <= 10^18 and mult <= 2^60, so
 * frac * mult < 2^120 fits the 128-bit intermediate (a GCC/Clang extension,
 * available on every platform we build for).
 */
static bool
scaled_value(uint64_t *out, uint64_t whole, uint64_t frac, uint64_t den, uint64_t mult)
{
	uint64_t v;
	uint64_t fpart;

	if (__builtin_mul_overflow(whole, mult, &v))
		return false;
	fpart = (uint64_t) (((unsigned __int128) frac * mult + den / 2) / den);
	if (__builtin_add_overflow(v, fpart, &v))
		return false;
	*out = v;
	return true;
}

int
pv_size_parse(uint64_t *out, const char *text)
{
	const char *p;
	uint64_t whole, frac, den, value;
	bool overflow;
	const char *unit;
	size_t ulen;
	const UnitDef *u;

	if (text == NULL)
		text = "";
	p = skip_space(text);
	if (!number_read(&p, &whole, &frac, &den, &overflow))
		goto invalid;
	p = skip_space(p);
	unit = p;
	ulen = unit_len(p);
	p = skip_space(p + ulen);
	if (*p != '\0')
		goto invalid;
	u = unit_find(size_units, PV_ARRAY_LEN(size_units), unit, ulen);
	if (u == NULL)
	{
		pv_error_set(PV_EUSAGE, "invalid size '%s': unknown unit '%.*s'", text, (int) ulen, unit);
		pv_error_hint(SIZE_HINT);
		return PV_EUSAGE;
	}
	if (overflow || !scaled_value(&value, whole, frac, den, u->mult))
	{
		pv_error_set(PV_EUSAGE, "invalid size '%s': too large", text);
		pv_error_hint("the largest size is 16 EiB - 1 byte");
		return PV_EUSAGE;
	}
	*out = value;
	return PV_OK;

invalid:
	pv_error_set(PV_EUSAGE, "invalid size '%s'", text);
	pv_error_hint(SIZE_HINT);
	return PV_EUSAGE;
}

const char *
pv_size_format(char *out, size_t outsz, uint64_t bytes)
{
	static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int k = 0;
	uint64_t unit = 1;
	uint64_t tenths;

	if (bytes < 1024)
	{
		snprintf(out, outsz, "%" PRIu64 " B", bytes);
		return out;
	}
	while (k < 6 && bytes / unit >= 1024)
	{
		unit <<= 10;
		k++;
	}
	/* rem * 10 < 2^60 * 10 fits in 64 bits. */
	tenths = (bytes / unit) * 10 + ((bytes % unit) * 10 + unit / 2) / unit;
	if (tenths >= 10240 && k < 6)
	{
		/* 1023.96 KiB rounds up to 1.0 MiB, not "1024.0 KiB". */
		unit <<= 10;
		k++;
		tenths = (bytes / unit) * 10 + ((bytes % unit) * 10 + unit / 2) / unit;
	}
	snprintf(out, outsz, "%" PRIu64 ".%d %s", tenths / 10, (int) (tenths % 10), names[k]);
	return out;
}

int
pv_duration_parse_ms(int64_t *out, const char *text)
{
	const char *p;
	uint64_t total = 0;
	int parts = 0;
	bool bare = false;

	if (text == NULL)
		text = "";
	p = skip_space(text);
	while (*p != '\0')
	{
		uint64_t whole, frac, den, value;
		bool overflow;
		const char *unit;
		size_t ulen;
		const UnitDef *u;

		if (bare || !number_read(&p, &whole, &frac, &den, &overflow))
			goto invalid;
		p = skip_space(p);
		unit = p;
		ulen = unit_len(p);
		p = skip_space(p + ulen);
		if (ulen == 0)
		{
			/* A bare number is seconds, and only allowed on its own. */
			if (parts > 0)
				goto invalid;
			bare = true;
			u = &duration_units[5];	/* "s" */
		}
		else if ((u = unit_find(duration_units, PV_ARRAY_LEN(duration_units), unit, ulen)) == NULL)
		{
			pv_error_set(PV_EUSAGE, "invalid duration '%s': unknown unit '%.*s'", text, (int) ulen, unit);
			pv_error_hint(DURATION_HINT);
			return PV_EUSAGE;
		}
		if (overflow || !scaled_value(&value, whole, frac, den, u->mult) ||
			__builtin_add_overflow(total, value, &total) || total > (uint64_t) INT64_MAX)
		{
			pv_error_set(PV_EUSAGE, "invalid duration '%s': too large", text);
			pv_error_hint(DURATION_HINT);
			return PV_EUSAGE;
		}
		parts++;
	}
	if (parts == 0)
		goto invalid;
	*out = (int64_t) total;
	return PV_OK;

invalid:
	pv_error_set(PV_EUSAGE, "invalid duration '%s'", text);
	pv_error_hint(DURATION_HINT);
	return PV_EUSAGE;
}

int
pv_duration_parse(int64_t *out, const char *text)
{
	int64_t ms;
	int rc;

	if ((rc = pv_duration_parse_ms(&ms, text)) < 0)
		return rc;
	if (ms % 1000 != 0)
	{
		pv_error_set(PV_EUSAGE, "invalid duration '%s': not a whole number of seconds", text);
		pv_error_hint("this setting has a resolution of one second; e.g. 90s, 15min, 4h");
		return PV_EUSAGE;
	}
	*out = ms / 1000;
	return PV_OK;
}

/* Appends "1h 30min"-style components of a non-negative seconds count. */
static void
duration_components(char *out, size_t outsz, uint64_t s)
{
	static const struct
	{
		const char *name;
		uint64_t secs;
	} parts[] = {
		{"w", 604800}, {"d", 86400}, {"h", 3600}, {"min", 60}, {"s", 1},
	};
	size_t len = strlen(out);

	for (size_t i = 0; i < PV_ARRAY_LEN(parts); i++)
	{
		uint64_t n = s / parts[i].secs;

		if (n == 0)
			continue;
		s %= parts[i].secs;
		if (len < outsz)
			len += (size_t) snprintf(out + len, outsz - len, "%s%" PRIu64 "%s",
									 len > 0 && out[len - 1] != '-' ? " " : "", n, parts[i].name);
	}
}

const char *
pv_duration_format(char *out, size_t outsz, int64_t seconds)
{
	uint64_t mag;

	if (outsz == 0)
		return out;
	out[0] = '\0';
	if (seconds == 0)
	{
		snprintf(out, outsz, "0s");
		return out;
	}
	if (seconds < 0)
	{
		snprintf(out, outsz, "-");
		mag = (uint64_t) 0 - (uint64_t) seconds;
	}
	else
		mag = (uint64_t) seconds;
	duration_components(out, outsz, mag);
	return out;
}

const char *
pv_elapsed_format(char *out, size_t outsz, int64_t ms)
{
	uint64_t mag;
	const char *sign = "";

	if (ms < 0)
	{
		sign = "-";
		mag = (uint64_t) 0 - (uint64_t) ms;
	}
	else
		mag = (uint64_t) ms;
	if (mag < 1000)
		snprintf(out, outsz, "%s%" PRIu64 "ms", sign, mag);
	else if (mag < 60000)
	{
		/* Hundredths, rounded; 59.996s prints as "60.00s", which is fine. */
		uint64_t hs = (mag + 5) / 10;

		snprintf(out, outsz, "%s%" PRIu64 ".%02" PRIu64 "s", sign, hs / 100, hs % 100);
	}
	else
	{
		snprintf(out, outsz, "%s", sign);
		duration_components(out, outsz, mag / 1000);
	}
	return out;
}
