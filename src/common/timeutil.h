/*
 * timeutil.h: points in time, time zones and calendars.
 *
 * A PvTime is a count of microseconds since 1970-01-01T00:00:00Z (like
 * PostgreSQL's timestamptz, but with the Unix epoch), ignoring leap seconds.
 * It is what manifests, locks and logs store; text appears only at the edges
 * (command line, configuration, human output).
 *
 * Time zones are IANA names ("Europe/Berlin", "America/New_York", "UTC"),
 * an absolute path to a TZif file, or a POSIX TZ string ("CET-1CEST,M3.5.0,
 * M10.5.0/3").  NULL means the process's local zone: $TZ when set (glibc's
 * rules: ":name", a name, a POSIX string, "" = UTC), else /etc/localtime,
 * else UTC.
 *
 * Thread safety: pgvault reads the zone files itself (RFC 8536 TZif plus its
 * POSIX TZ footer) instead of switching the process-global zone with
 * setenv("TZ") + tzset(), which would race with every other thread calling
 * localtime_r(), getenv() or the logger.  Loaded zones are immutable and
 * cached for the life of the process (a handful of small tables), so every
 * function here is safe to call from any thread at any time.
 *
 * Local times that do not exist or occur twice (daylight-saving changes)
 * are resolved as PostgreSQL does: a time inside a spring-forward gap uses
 * the offset in effect before the change ("02:30" in New York on the day
 * clocks jump from 02:00 EST to 03:00 EDT means 02:30 EST = 03:30 EDT); an
 * ambiguous time in a fall-back overlap uses the offset in effect after it
 * (the later instant, normally standard time).
 */
#ifndef PV_COMMON_TIMEUTIL_H
#define PV_COMMON_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t PvTime;

#define PV_USEC_PER_SEC INT64_C(1000000)
#define PV_USEC_PER_MS INT64_C(1000)

/* Room for any pv_time_format() result, e.g. "2026-11-22T14:30:05+01:00". */
#define PV_TIME_FORMAT_MAX 40

/* Wall-clock now (CLOCK_REALTIME). */
PvTime pv_time_now(void);
/* Milliseconds from an arbitrary fixed origin (CLOCK_MONOTONIC): for timing. */
int64_t pv_time_monotonic_ms(void);

/*
 * Parse a time as users write it (surrounding blanks ignored):
 *   "2026-11-22"                       midnight, in default_tz
 *   "2026-11-22 14:30", "2026-11-22T14:30:05", "2026-11-22 14:30:05.123456"
 *   ... followed by a zone: "Z", "+02:00", "+0200", "-05", "UTC",
 *       or an IANA name after a blank: "2026-11-22 14:30 Europe/Berlin"
 *   "now", "now-30min", "now+1h", "-2h" (now minus a duration, units.h)
 * Without a zone in the text, the date and time are local time in default_tz
 * (NULL = the process's local zone).  Fractions beyond microseconds are
 * rounded.  Fails with PV_EUSAGE "invalid time '...'" plus a hint showing an
 * example, or "unknown time zone '...'"; *out is written only on success.
 */
int pv_time_parse(PvTime *out, const char *text, const char *default_tz);

/*
 * "2026-11-22T14:30:05+01:00" in zone tz (NULL = local); seconds precision
 * (microseconds are truncated).  A UTC zone ("UTC", "Etc/UTC", "Z") prints
 * "2026-11-22T14:30:05Z".  outsz >= PV_TIME_FORMAT_MAX.  Returns 0, or
 * PV_EUSAGE for an unknown zone (out then holds the UTC form, so it is
 * always a usable string).
 */
int pv_time_format(char *out, size_t outsz, PvTime t, const char *tz);
/* "2026-11-22T13:30:05Z"; cannot fail; returns out. */
const char *pv_time_format_utc(char *out, size_t outsz, PvTime t);
/* Local-zone form, for messages; cannot fail (falls back to UTC); returns out. */
const char *pv_time_format_local(char *out, size_t outsz, PvTime t);

/* Check that a zone name can be used (for validating configuration). */
int pv_time_zone_check(const char *tz);

/*
 * A PvTime as local calendar fields in some zone: what retention needs to
 * put backups into hourly/daily/weekly/monthly/yearly buckets.
 */
typedef struct PvCalendar
{
	int year;			/* e.g. 2026 */
	int month;			/* 1..12 */
	int day;			/* 1..31 */
	int hour;			/* 0..23 */
	int minute;			/* 0..59 */
	int second;			/* 0..59 */
	int usec;			/* 0..999999 */
	int weekday;		/* ISO: 1 = Monday .. 7 = Sunday */
	int yday;			/* 1..366 */
	int iso_year;		/* ISO 8601 week-numbering year (may differ near 1 January) */
	int iso_week;		/* 1..53 */
	int utc_offset;		/* seconds east of UTC in effect at that instant */
	bool is_dst;
} PvCalendar;

/* Broken-down local time of t in tz (NULL = local).  PV_EUSAGE for an unknown zone. */
int pv_time_calendar(PvCalendar *out, PvTime t, const char *tz);

/*
 * The instant whose local time in tz is cal's year, month, day, hour,
 * minute, second, usec (other fields ignored).  Fields may be out of range
 * and are normalised (day 0 = last day of the previous month, hour 24 = next
 * midnight), which makes "start of next month" easy.  Gaps and overlaps are
 * resolved as described at the top.  PV_EUSAGE for an unknown zone.
 */
int pv_time_from_calendar(PvTime *out, const PvCalendar *cal, const char *tz);

/* Days since 1970-01-01 of a proleptic Gregorian date (month/day may be out of range). */
int64_t pv_days_from_civil(int64_t year, int month, int day);
bool pv_is_leap_year(int64_t year);
int pv_days_in_month(int64_t year, int month);

#endif
