/*
 * timeutil.c: see timeutil.h.
 *
 * Why our own zone code: the C library only converts in the one
 * process-global zone, and switching it (setenv("TZ") + tzset()) under a
 * mutex is not enough, because every localtime_r(), mktime() and getenv()
 * in other threads (the logger, libpq, libcurl) reads that state without our
 * mutex.  Reading TZif files is small and well specified (RFC 8536), so we
 * do it here and never touch the global zone.
 *
 * Invariants:
 *  1. A TzZone is immutable after loading and lives until the process ends;
 *     lookups hand out const pointers without holding the lock.
 *  2. zone_cache (key -> zone) only grows; zone_lock guards it and the
 *     loading of a missing entry.  Keys are the zone text as given, or
 *     "\1" + $TZ for the local zone, so a changed $TZ is honoured.
 *  3. All arithmetic on seconds uses floor division, so instants before 1970
 *     convert correctly.
 *  4. Leap seconds are ignored (POSIX time); zone files that carry leap
 *     second records ("right/...") are refused rather than misread.
 */
#include "common/timeutil.h"

#include "common/error.h"
#include "common/mem.h"
#include "common/units.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TIME_HINT "use an ISO 8601 time such as '2026-11-22 14:30:05', '2026-11-22T14:30:05+01:00', " \
	"'2026-11-22', 'now' or '-2h'"
#define ZONE_HINT "use an IANA time zone name such as 'Europe/Berlin', 'America/New_York' or 'UTC'"
#define TZIF_MAX_SIZE (1024 * 1024)
#define SECS_PER_DAY INT64_C(86400)

/* ---------------------------------------------------------------------- */
/* Calendar arithmetic (proleptic Gregorian, after H. Hinnant's algorithms) */

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int64_t
floor_mod(int64_t a, int64_t b)
{
	return a - floor_div(a, b) * b;
}

bool
pv_is_leap_year(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int
pv_days_in_month(int64_t year, int month)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (month < 1 || month > 12)
		return 0;
	return mdays[month - 1] + (month == 2 && pv_is_leap_year(year));
}

int64_t
pv_days_from_civil(int64_t year, int month, int day)
{
	int64_t m0 = (int64_t) month - 1;
	int64_t y, era, yoe, doy, doe;
	int m;

	y = year + floor_div(m0, 12);
	m = (int) floor_mod(m0, 12) + 1;
	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5;	/* day 1 of month m */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468 + ((int64_t) day - 1);
}

static void
civil_from_days(int64_t z, int64_t *year, int *month, int *day)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*day = (int) (doy - (153 * mp + 2) / 5 + 1);
	*month = (int) (mp < 10 ? mp + 3 : mp - 9);
	*year = yoe + era * 400 + (*month <= 2);
}

/* ISO weekday, 1 = Monday; 1970-01-01 was a Thursday. */
static int
weekday_of_days(int64_t days)
{
	return (int) floor_mod(days + 3, 7) + 1;
}

/* ---------------------------------------------------------------------- */
/* Zones                                                                   */

typedef struct TzType
{
	int32_t utoff;
	bool isdst;
} TzType;

/* One end of a POSIX TZ daylight-saving rule. */
typedef struct TzRuleDate
{
	char kind;			/* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' (month.week.day) */
	int n, m, w, d;
	int32_t secs;		/* local time of day of the change, may be <0 or >24h */
} TzRuleDate;

typedef struct TzRule
{
	int32_t std_utoff;
	int32_t dst_utoff;
	bool has_dst;
	TzRuleDate start, end;
} TzRule;

typedef struct TzZone
{
	bool is_utc;		/* prints as "Z" */
	size_t ntrans;
	int64_t *trans;		/* ascending UTC seconds */
	uint8_t *trans_type;
	size_t ntypes;
	TzType *types;		/* at least one */
	bool has_rule;		/* footer: applies after the last transition */
	TzRule rule;
} TzZone;

typedef struct TzCacheEntry
{
	char *key;
	const TzZone *zone;
	struct TzCacheEntry *next;
} TzCacheEntry;

static TzType utc_type = {0, false};
static const TzZone utc_zone = {.is_utc = true, .ntypes = 1, .types = &utc_type};

static pthread_mutex_t zone_lock = PTHREAD_MUTEX_INITIALIZER;
static TzCacheEntry *zone_cache;

static int32_t
rule_day_secs(const TzRuleDate *r, int64_t year, int64_t *days_out)
{
	int64_t jan1 = pv_days_from_civil(year, 1, 1);

	if (r->kind == 'J')
		*days_out = jan1 + r->n - 1 + (pv_is_leap_year(year) && r->n >= 60);
	else if (r->kind == 'D')
		*days_out = jan1 + r->n;
	else
	{
		int64_t first = pv_days_from_civil(year, r->m, 1);
		/* POSIX weekday: 0 = Sunday; ours: 7 = Sunday */
		int wd1 = weekday_of_days(first) % 7;
		int day = 1 + (r->d - wd1 + 7) % 7 + (r->w - 1) * 7;

		while (day > pv_days_in_month(year, r->m))
			day -= 7;
		*days_out = first + day - 1;
	}
	return r->secs;
}

static TzType
rule_eval(const TzRule *rule, int64_t t)
{
	TzType std = {rule->std_utoff, false};
	TzType dst = {rule->dst_utoff, true};
	int64_t year, days, start, end;
	int month, day;
	bool in_dst;

	if (!rule->has_dst)
		return std;
	civil_from_days(floor_div(t + rule->std_utoff, SECS_PER_DAY), &year, &month, &day);
	/* The start is written in standard time, the end in daylight time. */
	start = rule_day_secs(&rule->start, year, &days);
	start += days * SECS_PER_DAY - rule->std_utoff;
	end = rule_day_secs(&rule->end, year, &days);
	end += days * SECS_PER_DAY - rule->dst_utoff;
	if (start < end)
		in_dst = t >= start && t < end;
	else
		in_dst = !(t >= end && t < start);	/* southern hemisphere */
	return in_dst ? dst : std;
}

static TzType
zone_type_at(const TzZone *z, int64_t t)
{
	size_t lo, hi;

	if (z->ntrans == 0 || t >= z->trans[z->ntrans - 1])
	{
		if (z->has_rule)
			return rule_eval(&z->rule, t);
		return z->ntrans == 0 ? z->types[0] : z->types[z->trans_type[z->ntrans - 1]];
	}
	if (t < z->trans[0])
		return z->types[0];
	/* largest i with trans[i] <= t */
	lo = 0;
	hi = z->ntrans - 1;
	while (lo < hi)
	{
		size_t mid = lo + (hi - lo + 1) / 2;

		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid - 1;
	}
	return z->types[z->trans_type[lo]];
}

/*
 * The UTC instant of local time `local` (seconds) in z.  Gap: the offset
 * in effect before the change; overlap: the offset after it (PostgreSQL's
 * DetermineTimeZoneOffset rule).  Offsets are under a day, so the offsets a
 * day either side are the only candidates unless two changes fall within
 * two days of each other, where we settle for a plain fixed-point guess.
 */
static int64_t
zone_local_to_utc(const TzZone *z, int64_t local)
{
	int32_t ob = zone_type_at(z, local - SECS_PER_DAY).utoff;
	int32_t oa = zone_type_at(z, local + SECS_PER_DAY).utoff;
	bool vb = zone_type_at(z, local - ob).utoff == ob;
	bool va = zone_type_at(z, local - oa).utoff == oa;

	if (ob == oa && !vb)
		return local - zone_type_at(z, local - ob).utoff;
	if (va)
		return local - oa;
	return local - ob;
}

/* ----- POSIX TZ strings ("CET-1CEST,M3.5.0,M10.5.0/3") ----- */

static bool
posix_name(const char **pp)
{
	const char *p = *pp;
	size_t n = 0;

	if (*p == '<')
	{
		p++;
		while (*p != '\0' && *p != '>' && (isalnum((unsigned char) *p) || *p == '+' || *p == '-'))
		{
			p++;
			n++;
		}
		if (*p != '>' || n < 3)
			return false;
		*pp = p + 1;
		return true;
	}
	while (isalpha((unsigned char) *p))
	{
		p++;
		n++;
	}
	*pp = p;
	return n >= 3;
}

static bool
posix_number(const char **pp, int max, int *out)
{
	const char *p = *pp;
	int v = 0;

	if (!isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
	{
		v = v * 10 + (*p++ - '0');
		if (v > max)
			return false;
	}
	*pp = p;
	*out = v;
	return true;
}

/* [+-]hh[:mm[:ss]] in seconds; hours up to max_hours. */
static bool
posix_hms(const char **pp, int max_hours, int32_t *out)
{
	const char *p = *pp;
	int sign = 1, h, m = 0, s = 0;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (!posix_number(&p, max_hours, &h))
		return false;
	if (*p == ':')
	{
		p++;
		if (!posix_number(&p, 59, &m))
			return false;
		if (*p == ':')
		{
			p++;
			if (!posix_number(&p, 59, &s))
				return false;
		}
	}
	*pp = p;
	*out = sign * (h * 3600 + m * 60 + s);
	return true;
}

static bool
posix_rule_date(const char **pp, TzRuleDate *r)
{
	const char *p = *pp;

	memset(r, 0, sizeof(*r));
	if (*p == 'J')
	{
		p++;
		r->kind = 'J';
		if (!posix_number(&p, 365, &r->n) || r->n < 1)
			return false;
	}
	else if (*p == 'M')
	{
		p++;
		r->kind = 'M';
		if (!posix_number(&p, 12, &r->m) || r->m < 1 || *p++ != '.' ||
			!posix_number(&p, 5, &r->w) || r->w < 1 || *p++ != '.' ||
			!posix_number(&p, 6, &r->d))
			return false;
	}
	else
	{
		r->kind = 'D';
		if (!posix_number(&p, 365, &r->n))
			return false;
	}
	r->secs = 7200;
	if (*p == '/' && (p++, !posix_hms(&p, 167, &r->secs)))
		return false;
	*pp = p;
	return true;
}

/* Parse a whole POSIX TZ string into a rule; false if it is not one. */
static bool
posix_tz_parse(const char *s, TzRule *rule)
{
	const char *p = s;
	int32_t off;

	memset(rule, 0, sizeof(*rule));
	if (!posix_name(&p) || !posix_hms(&p, 24, &off))
		return false;
	rule->std_utoff = -off;	/* POSIX offsets count west of Greenwich */
	if (*p == '\0')
		return true;
	if (!posix_name(&p))
		return false;
	rule->has_dst = true;
	rule->dst_utoff = rule->std_utoff + 3600;
	if (*p != ',' && *p != '\0')
	{
		if (!posix_hms(&p, 24, &off))
			return false;
		rule->dst_utoff = -off;
	}
	if (*p == '\0')
	{
		/* No rule: glibc's default, the US rules since 2007. */
		return posix_rule_date(&(const char *){"M3.2.0"}, &rule->start) &&
			posix_rule_date(&(const char *){"M11.1.0"}, &rule->end);
	}
	if (*p++ != ',' || !posix_rule_date(&p, &rule->start) || *p++ != ',' ||
		!posix_rule_date(&p, &rule->end))
		return false;
	return *p == '\0';
}

/* ----- TZif files (RFC 8536) ----- */

static uint32_t
be32(const unsigned char *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t) (((uint64_t) be32(p) << 32) | be32(p + 4));
}

typedef struct TzifHeader
{
	char version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} TzifHeader;

static bool
tzif_header(const unsigned char *p, size_t len, TzifHeader *h)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return false;
	h->version = (char) p[4];
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	return h->typecnt >= 1 && h->typecnt <= 256 && h->timecnt <= 100000 &&
		h->charcnt <= 100000 && h->leapcnt <= 100000 && h->isutcnt <= 256 && h->isstdcnt <= 256;
}

static size_t
tzif_block_size(const TzifHeader *h, size_t timesz)
{
	return h->timecnt * timesz + h->timecnt + h->typecnt * 6 + h->charcnt +
		h->leapcnt * (timesz + 4) + h->isstdcnt + h->isutcnt;
}

static void
zone_free(TzZone *z)
{
	if (z == NULL)
		return;
	pv_free(z->trans);
	pv_free(z->trans_type);
	pv_free(z->types);
	pv_free(z);
}

/* Decode a TZif image; returns NULL with *why set when it is malformed. */
static TzZone *
tzif_decode(const unsigned char *data, size_t len, const char **why)
{
	TzifHeader h;
	const unsigned char *p = data;
	size_t timesz = 4, blk;
	TzZone *z = NULL;
	const unsigned char *block, *types, *chars;

	*why = "not a TZif file";
	if (!tzif_header(p, len, &h))
		return NULL;
	blk = tzif_block_size(&h, 4);
	if (h.version >= '2')
	{
		/* Skip the 32-bit block; the 64-bit one follows with its own header. */
		if (len < 44 + blk)
			return NULL;
		p += 44 + blk;
		len -= 44 + blk;
		if (!tzif_header(p, len, &h))
			return NULL;
		timesz = 8;
		blk = tzif_block_size(&h, 8);
	}
	*why = "truncated TZif file";
	if (len < 44 + blk)
		return NULL;
	if (h.leapcnt > 0)
	{
		*why = "zone files with leap seconds are not supported";
		return NULL;
	}
	z = PV_NEW(TzZone);
	z->ntrans = h.timecnt;
	z->ntypes = h.typecnt;
	z->trans = pv_calloc(h.timecnt + 1, sizeof(int64_t));
	z->trans_type = pv_calloc(h.timecnt + 1, 1);
	z->types = pv_calloc(h.typecnt, sizeof(TzType));
	block = p + 44;
	p = block;
	for (size_t i = 0; i < h.timecnt; i++)
	{
		z->trans[i] = timesz == 8 ? be64(p + i * 8) : (int32_t) be32(p + i * 4);
		if (i > 0 && z->trans[i] <= z->trans[i - 1])
			goto bad;
	}
	p += h.timecnt * timesz;
	for (size_t i = 0; i < h.timecnt; i++)
	{
		z->trans_type[i] = p[i];
		if (p[i] >= h.typecnt)
			goto bad;
	}
	p += h.timecnt;
	types = p;
	chars = types + h.typecnt * 6;
	for (size_t i = 0; i < h.typecnt; i++)
	{
		int32_t utoff = (int32_t) be32(types + i * 6);

		if (utoff <= -SECS_PER_DAY || utoff >= SECS_PER_DAY)
			goto bad;
		z->types[i].utoff = utoff;
		z->types[i].isdst = types[i * 6 + 4] != 0;
	}
	/* A zone that is plain UTC (Etc/UTC, /etc/localtime in containers) prints "Z". */
	z->is_utc = h.timecnt == 0 && h.typecnt == 1 && z->types[0].utoff == 0 && h.charcnt >= 4 &&
		types[5] < h.charcnt - 3 && memcmp(chars + types[5], "UTC", 4) == 0;
	/* The footer (version 2+) follows the 64-bit data block. */
	p = block + blk;
	len -= 44 + blk;
	if (timesz == 8 && len >= 2 && p[0] == '\n')
	{
		const unsigned char *nl = memchr(p + 1, '\n', len - 1);
		char footer[128];

		if (nl != NULL && nl - p - 1 > 0 && (size_t) (nl - p - 1) < sizeof(footer))
		{
			memcpy(footer, p + 1, (size_t) (nl - p - 1));
			footer[nl - p - 1] = '\0';
			if (!posix_tz_parse(footer, &z->rule))
			{
				*why = "bad TZ string in TZif footer";
				goto bad;
			}
			z->has_rule = true;
			if (z->is_utc && (z->rule.has_dst || z->rule.std_utoff != 0))
				z->is_utc = false;
		}
	}
	return z;

bad:
	zone_free(z);
	return NULL;
}

/* Read a file of at most TZIF_MAX_SIZE bytes; -errno-ish on failure. */
static int
file_slurp(const char *path, unsigned char **out, size_t *outlen)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data;
	size_t n;

	if (f == NULL)
		return errno;
	data = pv_malloc(TZIF_MAX_SIZE);
	n = fread(data, 1, TZIF_MAX_SIZE, f);
	if (ferror(f))
	{
		fclose(f);
		pv_free(data);
		return EIO;
	}
	fclose(f);
	*out = data;
	*outlen = n;
	return 0;
}

static bool
zone_name_is_utc(const char *name)
{
	static const char *const utc_names[] = {
		"UTC", "Z", "Zulu", "UCT", "Universal", "Etc/UTC", "Etc/Zulu", "Etc/UCT", "Etc/Universal",
	};

	for (size_t i = 0; i < PV_ARRAY_LEN(utc_names); i++)
		if (strcasecmp(name, utc_names[i]) == 0)
			return true;
	return false;
}

/* IANA names are relative paths of [A-Za-z0-9._+-] parts; no "..". */
static bool
zone_name_is_safe(const char *name)
{
	if (name[0] == '\0' || strlen(name) > 200 || strstr(name, "..") != NULL)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char) *p) && strchr("/._+-", *p) == NULL)
			return false;
	return true;
}

/*
 * Load zone `name` (not cached): "UTC" and friends, a file under $TZDIR or
 * /usr/share/zoneinfo (or an absolute path), else a POSIX TZ string.
 * PV_EUSAGE for an unknown name or a file that is not a usable TZif file.
 */
static int
zone_load(const TzZone **out, const char *name)
{
	const char *dir = getenv("TZDIR");
	char path[4096];
	unsigned char *data = NULL;
	size_t len = 0;
	const char *why = NULL;
	TzZone *z;
	TzRule rule;
	int err = ENOENT;
	int rc = PV_OK;

	if (zone_name_is_utc(name))
	{
		*out = &utc_zone;
		return PV_OK;
	}
	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else if (zone_name_is_safe(name))
		snprintf(path, sizeof(path), "%s/%s", dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", name);
	else
		path[0] = '\0';
	if (path[0] != '\0')
		err = file_slurp(path, &data, &len);
	if (err == 0)
	{
		z = tzif_decode(data, len, &why);
		if (z == NULL)
		{
			rc = pv_error_set(PV_EUSAGE, "invalid time zone '%s': %s", name, why);
			pv_error_hint(ZONE_HINT);
			goto done;
		}
		*out = z;
		goto done;
	}
	if (posix_tz_parse(name, &rule))
	{
		z = PV_NEW(TzZone);
		z->ntypes = 1;
		z->types = PV_NEW(TzType);
		z->types[0].utoff = rule.std_utoff;
		z->has_rule = true;
		z->rule = rule;
		*out = z;
		goto done;
	}
	rc = pv_error_set(PV_EUSAGE, "unknown time zone '%s'", name);
	pv_error_hint(ZONE_HINT);

done:
	pv_free(data);
	return rc;
}

/* The zone for tz (NULL = local), from the cache or loaded into it. */
static int
zone_get(const TzZone **out, const char *tz)
{
	char key[512];
	const char *name = tz;
	bool local = tz == NULL;
	TzCacheEntry *e;
	int rc = PV_OK;

	if (local)
	{
		/* glibc's rules: unset = /etc/localtime, "" = UTC, ":x" = x */
		name = getenv("TZ");
		if (name == NULL)
			name = "/etc/localtime";
		else if (name[0] == ':')
			name++;
		if (name[0] == '\0')
			name = "UTC";
	}
	if (strlen(name) > sizeof(key) - 2)
	{
		rc = pv_error_set(PV_EUSAGE, "unknown time zone '%.64s...'", name);
		pv_error_hint(ZONE_HINT);
		return rc;
	}
	snprintf(key, sizeof(key), "%s%s", local ? "\1" : "", name);

	pthread_mutex_lock(&zone_lock);
	for (e = zone_cache; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL)
	{
		const TzZone *z = NULL;
		PvErrorSave saved;

		pv_error_save(&saved);
		rc = zone_load(&z, name);
		if (rc < 0 && local)
		{
			/* A broken local zone is not the user's command's fault: use UTC, as libc does. */
			pv_error_restore(&saved);
			z = &utc_zone;
			rc = PV_OK;
		}
		if (rc == PV_OK)
		{
			e = PV_NEW(TzCacheEntry);
			e->key = pv_strdup(key);
			e->zone = z;
			e->next = zone_cache;
			zone_cache = e;
		}
	}
	if (e != NULL)
		*out = e->zone;
	pthread_mutex_unlock(&zone_lock);
	return rc;
}

int
pv_time_zone_check(const char *tz)
{
	const TzZone *z;

	return zone_get(&z, tz);
}

/* ---------------------------------------------------------------------- */
/* Clocks                                                                  */

PvTime
pv_time_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (PvTime) ts.tv_sec * PV_USEC_PER_SEC + ts.tv_nsec / 1000;
}

int64_t
pv_time_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* Calendar fields                                                         */

static void
calendar_fill(PvCalendar *c, const TzZone *z, PvTime t)
{
	int64_t secs = floor_div(t, PV_USEC_PER_SEC);
	TzType type = zone_type_at(z, secs);
	int64_t local = secs + type.utoff;
	int64_t days = floor_div(local, SECS_PER_DAY);
	int64_t rem = local - days * SECS_PER_DAY;
	int64_t year, iso_year, thursday;
	int month, day;

	civil_from_days(days, &year, &month, &day);
	c->year = (int) year;
	c->month = month;
	c->day = day;
	c->hour = (int) (rem / 3600);
	c->minute = (int) (rem / 60 % 60);
	c->second = (int) (rem % 60);
	c->usec = (int) floor_mod(t, PV_USEC_PER_SEC);
	c->weekday = weekday_of_days(days);
	c->yday = (int) (days - pv_days_from_civil(year, 1, 1) + 1);
	/* The ISO week belongs to the year holding its Thursday. */
	thursday = days - (c->weekday - 1) + 3;
	civil_from_days(thursday, &iso_year, &month, &day);
	c->iso_year = (int) iso_year;
	c->iso_week = (int) ((thursday - pv_days_from_civil(iso_year, 1, 1)) / 7 + 1);
	c->utc_offset = type.utoff;
	c->is_dst = type.isdst;
}

int
pv_time_calendar(PvCalendar *out, PvTime t, const char *tz)
{
	const TzZone *z;
	int rc;

	if ((rc = zone_get(&z, tz)) < 0)
		return rc;
	calendar_fill(out, z, t);
	return PV_OK;
}

static PvTime
local_fields_to_time(const TzZone *z, int64_t year, int month, int day, int64_t secs_of_day, int64_t usec)
{
	int64_t local = pv_days_from_civil(year, month, day) * SECS_PER_DAY + secs_of_day;
	int64_t extra = floor_div(usec, PV_USEC_PER_SEC);

	local += extra;
	usec -= extra * PV_USEC_PER_SEC;
	return zone_local_to_utc(z, local) * PV_USEC_PER_SEC + usec;
}

int
pv_time_from_calendar(PvTime *out, const PvCalendar *cal, const char *tz)
{
	const TzZone *z;
	int rc;

	if ((rc = zone_get(&z, tz)) < 0)
		return rc;
	*out = local_fields_to_time(z, cal->year, cal->month, cal->day,
								(int64_t) cal->hour * 3600 + (int64_t) cal->minute * 60 + cal->second,
								cal->usec);
	return PV_OK;
}

/* ---------------------------------------------------------------------- */
/* Formatting                                                              */

static void
format_in_zone(char *out, size_t outsz, PvTime t, const TzZone *z)
{
	PvCalendar c;
	int off;
	char sign;

	calendar_fill(&c, z, t);
	off = c.utc_offset;
	if (z->is_utc)
	{
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ",
				 c.year, c.month, c.day, c.hour, c.minute, c.second);
		return;
	}
	sign = off < 0 ? '-' : '+';
	off = off < 0 ? -off : off;
	if (off % 60 != 0)	/* local mean time offsets of old dates, e.g. +00:53:28 */
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d:%02d",
				 c.year, c.month, c.day, c.hour, c.minute, c.second,
				 sign, off / 3600, off / 60 % 60, off % 60);
	else
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
				 c.year, c.month, c.day, c.hour, c.minute, c.second,
				 sign, off / 3600, off / 60 % 60);
}

int
pv_time_format(char *out, size_t outsz, PvTime t, const char *tz)
{
	const TzZone *z;
	int rc;

	if ((rc = zone_get(&z, tz)) < 0)
	{
		format_in_zone(out, outsz, t, &utc_zone);
		return rc;
	}
	format_in_zone(out, outsz, t, z);
	return PV_OK;
}

const char *
pv_time_format_utc(char *out, size_t outsz, PvTime t)
{
	format_in_zone(out, outsz, t, &utc_zone);
	return out;
}

const char *
pv_time_format_local(char *out, size_t outsz, PvTime t)
{
	pv_time_format(out, outsz, t, NULL);	/* the local zone never fails */
	return out;
}

/* ---------------------------------------------------------------------- */
/* Parsing                                                                 */

/* Exactly n digits (n = 0: one or more, at most 2) at *pp. */
static bool
read_digits(const char **pp, int n, int *out)
{
	const char *p = *pp;
	int v = 0, count = 0;
	int max = n == 0 ? 2 : n;

	while (count < max && isdigit((unsigned char) *p))
	{
		v = v * 10 + (*p++ - '0');
		count++;
	}
	if (count == 0 || (n != 0 && count != n) || isdigit((unsigned char) *p))
		return false;
	*pp = p;
	*out = v;
	return true;
}

/* "Z", "+02", "+0200", "+02:00", "-05"; *p is at the sign or Z. */
static bool
parse_numeric_offset(const char *p, int32_t *out)
{
	int sign, h, m = 0;

	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
	{
		*out = 0;
		return true;
	}
	if (*p != '+' && *p != '-')
		return false;
	sign = *p++ == '-' ? -1 : 1;
	if (isdigit((unsigned char) p[0]) && isdigit((unsigned char) p[1]) &&
		isdigit((unsigned char) p[2]) && isdigit((unsigned char) p[3]) && p[4] == '\0')
	{
		h = (p[0] - '0') * 10 + (p[1] - '0');
		m = (p[2] - '0') * 10 + (p[3] - '0');
		p += 4;
	}
	else
	{
		if (!read_digits(&p, 0, &h))
			return false;
		if (*p == ':' && (p++, !read_digits(&p, 2, &m)))
			return false;
	}
	if (*p != '\0' || h > 23 || m > 59)
		return false;
	*out = sign * (h * 3600 + m * 60);
	return true;
}

/* Seconds fraction ".123456789" -> microseconds, rounded (may reach 1000000). */
static int64_t
parse_fraction(const char **pp)
{
	const char *p = *pp;
	int64_t usec = 0;
	int n = 0;

	while (isdigit((unsigned char) *p))
	{
		if (n < 6)
			usec = usec * 10 + (*p - '0');
		else if (n == 6 && *p >= '5')
			usec++;
		n++;
		p++;
	}
	for (; n < 6; n++)
		usec *= 10;
	*pp = p;
	return usec;
}

/* "now", "now-30min", "now+1h", "-2h"; returns 1 if handled, 0 if not relative, <0 error. */
static int
parse_relative(PvTime *out, const char *s)
{
	int64_t ms;
	int sign;

	if (strncasecmp(s, "now", 3) == 0)
	{
		s += 3;
		while (isspace((unsigned char) *s))
			s++;
		if (*s == '\0')
		{
			*out = pv_time_now();
			return 1;
		}
		if (*s != '-' && *s != '+')
			return PV_EUSAGE;
	}
	else if (*s != '-')
		return 0;
	sign = *s++ == '-' ? -1 : 1;
	while (isspace((unsigned char) *s))
		s++;
	if (pv_duration_parse_ms(&ms, s) < 0)
		return PV_EUSAGE;
	*out = pv_time_now() + sign * ms * PV_USEC_PER_MS;
	return 1;
}

int
pv_time_parse(PvTime *out, const char *text, const char *default_tz)
{
	char buf[256];
	const char *p;
	char *end;
	int year, month, day, hour = 0, minute = 0, second = 0;
	int64_t usec = 0;
	int32_t offset;
	const TzZone *z;
	int rc;

	if (text == NULL)
		text = "";
	p = text;
	while (isspace((unsigned char) *p))
		p++;
	if (strlen(p) >= sizeof(buf))
		goto invalid;
	snprintf(buf, sizeof(buf), "%s", p);
	end = buf + strlen(buf);
	while (end > buf && isspace((unsigned char) end[-1]))
		*--end = '\0';
	p = buf;

	rc = parse_relative(out, p);
	if (rc == 1)
		return PV_OK;
	if (rc < 0)
		goto invalid;

	if (!read_digits(&p, 4, &year) || *p++ != '-' || !read_digits(&p, 0, &month) ||
		*p++ != '-' || !read_digits(&p, 0, &day))
		goto invalid;
	if (year < 1 || month < 1 || month > 12 || day < 1 || day > pv_days_in_month(year, month))
		goto invalid;
	if ((*p == 'T' || *p == 't' || *p == ' ') && isdigit((unsigned char) p[1]))
	{
		p++;
		if (!read_digits(&p, 0, &hour) || *p++ != ':' || !read_digits(&p, 2, &minute))
			goto invalid;
		if (*p == ':')
		{
			p++;
			if (!read_digits(&p, 2, &second))
				goto invalid;
			if (*p == '.' || *p == ',')
			{
				p++;
				if (!isdigit((unsigned char) *p))
					goto invalid;
				usec = parse_fraction(&p);
			}
		}
		if (hour > 23 || minute > 59 || second > 59)
			goto invalid;
	}
	while (*p == ' ')
		p++;

	if (*p == '\0' || !parse_numeric_offset(p, &offset))
	{
		/* Local time: in the zone named in the text, or the default. */
		const char *zname = *p != '\0' ? p : default_tz;

		if (*p != '\0' && (p[-1] != ' ' || strchr(p, ' ') != NULL || *p == '+' || *p == '-'))
			goto invalid;
		if ((rc = zone_get(&z, zname)) < 0)
		{
			if (zname == p)
				pv_error_prefix(rc, "invalid time '%s'", text);
			return rc;
		}
		*out = local_fields_to_time(z, year, month, day, hour * 3600 + minute * 60 + second, usec);
		return PV_OK;
	}
	*out = (pv_days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second -
			offset) * PV_USEC_PER_SEC + usec;
	return PV_OK;

invalid:
	pv_error_set(PV_EUSAGE, "invalid time '%s'", text);
	pv_error_hint(TIME_HINT);
	return PV_EUSAGE;
}
