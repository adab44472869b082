/*
 * schedule.c: cron expressions and intervals (see schedule.h for the
 * syntax and the daylight-saving rules).
 *
 * A cron expression becomes five bit sets.  The next run is found on the
 * wall clock of the zone, field by field (month, day, hour, minute: a
 * mismatch in a field skips the whole unit, so a search over years takes a
 * few thousand steps, not millions), and each matching wall time is then
 * turned into an instant by wall_resolve(), which applies the gap and
 * overlap rules.  Wall times whose instant is not after the starting point
 * (the first occurrence of a repeated hour, when starting inside the
 * second) are skipped, which is what makes the result strictly increasing.
 */
#include "ops/schedule.h"

#include "common/error.h"
#include "common/mem.h"
#include "common/units.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct Schedule
{
	char *text;
	char *zone;					/* NULL = local */
	int64_t interval_ms;		/* @every; 0 for cron */
	uint64_t minutes;			/* bit m: minute m (0-59) */
	uint32_t hours;				/* bit h (0-23) */
	uint32_t days;				/* bit d (1-31) */
	uint16_t months;			/* bit m (1-12) */
	uint8_t weekdays;			/* bit w: 0 = Sunday .. 6 = Saturday */
};

typedef struct FieldDef
{
	const char *name;			/* for messages */
	int min, max;
	const char *const *names;	/* names[i] is value min + i, or NULL */
} FieldDef;

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const weekday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const FieldDef field_defs[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	{"day of week", 0, 7, weekday_names},	/* 7 is Sunday too */
};

static const struct
{
	const char *name;
	const char *expr;
} shorthands[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

#define SEC PV_USEC_PER_SEC
#define SEARCH_YEARS 400		/* the Gregorian cycle: every date pattern recurs within it */

/* ---- parsing ---- */

/* A number or (for month and weekday) a name; *pp advances past it. */
static int
value_parse(int *out, const char **pp, const FieldDef *f, const char *expr)
{
	const char *p = *pp;

	if (isdigit((unsigned char) *p))
	{
		long v = 0;

		while (isdigit((unsigned char) *p))
		{
			v = v * 10 + (*p++ - '0');
			if (v > 1000)
				break;
		}
		if (v < f->min || v > f->max)
			return pv_error_set(PV_ECONFIG, "invalid schedule '%s': %s %ld is out of range (%d-%d)",
								expr, f->name, v, f->min, f->max);
		*out = (int) v;
		*pp = p;
		return PV_OK;
	}
	if (isalpha((unsigned char) *p) && f->names != NULL)
	{
		char word[16];
		size_t n = 0;

		while (isalpha((unsigned char) p[n]) && n + 1 < sizeof(word))
		{
			word[n] = p[n];
			n++;
		}
		word[n] = '\0';
		for (int i = 0; f->names[i] != NULL; i++)
			if (strcasecmp(word, f->names[i]) == 0)
			{
				*out = f->min + i;
				*pp = p + n;
				return PV_OK;
			}
		return pv_error_set(PV_ECONFIG, "invalid schedule '%s': unknown %s name '%s' (use %s)",
							expr, f->name, word, f->names == month_names ? "jan..dec" : "sun..sat");
	}
	if (*p == '\0' || *p == ',' || *p == '-' || *p == '/')
		return pv_error_set(PV_ECONFIG, "invalid schedule '%s': a %s value is missing", expr, f->name);
	return pv_error_set(PV_ECONFIG, "invalid schedule '%s': unexpected '%c' in the %s field",
						expr, *p, f->name);
}

/* One comma-separated element: '*', N, N-M, each with an optional /STEP. */
static int
element_parse(uint64_t *bits, const char *elem, const FieldDef *f, const char *expr)
{
	const char *p = elem;
	int lo, hi, step = 1, rc;
	bool open_range = false;	/* "N/STEP" means N-max/STEP */

	if (*p == '*')
	{
		lo = f->min;
		hi = f->max == 7 ? 6 : f->max;
		p++;
	}
	else
	{
		if ((rc = value_parse(&lo, &p, f, expr)) < 0)
			return rc;
		hi = lo;
		if (*p == '-')
		{
			p++;
			if ((rc = value_parse(&hi, &p, f, expr)) < 0)
				return rc;
			if (hi < lo)
				return pv_error_set(PV_ECONFIG, "invalid schedule '%s': %s range '%s' goes backwards",
									expr, f->name, elem);
		}
		else
			open_range = true;
	}
	if (*p == '/')
	{
		long v = 0;

		p++;
		if (!isdigit((unsigned char) *p))
			return pv_error_set(PV_ECONFIG, "invalid schedule '%s': step in '%s' must be a number",
								expr, elem);
		while (isdigit((unsigned char) *p) && v <= 1000)
			v = v * 10 + (*p++ - '0');
		if (v < 1 || v > f->max)
			return pv_error_set(PV_ECONFIG, "invalid schedule '%s': step %ld in '%s' is out of range (1-%d)",
								expr, v, elem, f->max);
		step = (int) v;
		if (open_range)
			hi = f->max;
	}
	if (*p != '\0')
		return pv_error_set(PV_ECONFIG, "invalid schedule '%s': unexpected '%s' in the %s field",
							expr, p, f->name);
	for (int v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << (f->max == 7 && v == 7 ? 0 : v);
	return PV_OK;
}

static int
field_parse(uint64_t *bits, const char *text, const FieldDef *f, const char *expr)
{
	char *copy = pv_strdup(text), *save = NULL, *elem;
	int rc = PV_OK;

	*bits = 0;
	if (text[0] == ',' || text[strlen(text) - 1] == ',' || strstr(text, ",,") != NULL)
		rc = pv_error_set(PV_ECONFIG, "invalid schedule '%s': empty list element in the %s field '%s'",
						  expr, f->name, text);
	for (elem = strtok_r(copy, ",", &save); rc == PV_OK && elem; elem = strtok_r(NULL, ",", &save))
		rc = element_parse(bits, elem, f, expr);
	pv_free(copy);
	return rc;
}

/* A day of month of the set that some month of the set has (Feb: 29). */
static bool
cron_can_run(const Schedule *s)
{
	static const int max_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	for (int m = 1; m <= 12; m++)
		for (int d = 1; (s->months >> m & 1) && d <= max_days[m]; d++)
			if (s->days >> d & 1)
				return true;
	return false;
}

static int
cron_parse(Schedule *s, const char *body, const char *expr)
{
	char *copy = pv_strdup(body), *save = NULL, *tok;
	char *fields[6];
	uint64_t bits[5];
	int n = 0, rc = PV_OK;

	for (tok = strtok_r(copy, " \t", &save); tok && n < 6; tok = strtok_r(NULL, " \t", &save))
		fields[n++] = tok;
	if (n != 5)
	{
		rc = pv_error_set(PV_ECONFIG, "invalid schedule '%s': expected 5 fields (minute hour "
						  "day-of-month month day-of-week), got %s%d", expr, n > 5 ? "more than " : "",
						  n > 5 ? 5 : n);
		pv_error_hint("e.g. '0 2 * * *' (02:00 daily), '0 3 1-7 * sun' (03:00 on the first Sunday), "
					  "'@hourly', '@every 15min'");
		goto done;
	}
	for (int i = 0; i < 5; i++)
		if ((rc = field_parse(&bits[i], fields[i], &field_defs[i], expr)) < 0)
			goto done;
	s->minutes = bits[0];
	s->hours = (uint32_t) bits[1];
	s->days = (uint32_t) bits[2];
	s->months = (uint16_t) bits[3];
	s->weekdays = (uint8_t) bits[4];
	if (!cron_can_run(s))
		rc = pv_error_set(PV_ECONFIG, "invalid schedule '%s': it never runs (no month it names has "
						  "the days it names)", expr);
done:
	pv_free(copy);
	return rc;
}

static int
every_parse(Schedule *s, const char *arg, const char *expr)
{
	int64_t secs;

	while (*arg == ' ' || *arg == '\t')
		arg++;
	if (*arg == '\0')
		return pv_error_set(PV_ECONFIG, "invalid schedule '%s': @every needs a duration, e.g. "
							"'@every 15min'", expr);
	if (pv_duration_parse(&secs, arg) < 0)
		return pv_error_prefix(PV_ECONFIG, "invalid schedule '%s'", expr);
	if (secs < 1)
		return pv_error_set(PV_ECONFIG, "invalid schedule '%s': the interval must be at least 1s", expr);
	s->interval_ms = secs * 1000;
	return PV_OK;
}

/* "TZ=Europe/Berlin rest" or "CRON_TZ=...": split off the zone. */
static int
zone_prefix(char **out_zone, const char **rest, const char *text, const char *expr)
{
	const char *p = text, *end;
	int rc;

	*out_zone = NULL;
	if (strncmp(p, "TZ=", 3) == 0)
		p += 3;
	else if (strncmp(p, "CRON_TZ=", 8) == 0)
		p += 8;
	else
		return PV_OK;
	end = p + strcspn(p, " \t");
	if (end == p)
		return pv_error_set(PV_ECONFIG, "invalid schedule '%s': TZ= needs a zone name", expr);
	*out_zone = pv_strndup(p, (size_t) (end - p));
	if ((rc = pv_time_zone_check(*out_zone)) < 0)
	{
		pv_free(*out_zone);
		*out_zone = NULL;
		return pv_error_prefix(PV_ECONFIG, "invalid schedule '%s'", expr);
	}
	while (*end == ' ' || *end == '\t')
		end++;
	*rest = end;
	return PV_OK;
}

int
schedule_parse(Schedule **out, const char *expr, const char *default_tz)
{
	Schedule *s = PV_NEW(Schedule);
	const char *body;
	size_t len;
	int rc;

	*out = NULL;
	while (*expr == ' ' || *expr == '\t')
		expr++;
	len = strlen(expr);
	while (len > 0 && (expr[len - 1] == ' ' || expr[len - 1] == '\t' || expr[len - 1] == '\n'))
		len--;
	s->text = pv_strndup(expr, len);
	body = s->text;
	if (body[0] == '\0')
	{
		rc = pv_error_set(PV_ECONFIG, "invalid schedule '': it is empty");
		goto done;
	}
	if ((rc = zone_prefix(&s->zone, &body, s->text, s->text)) < 0)
		goto done;
	if (s->zone == NULL && default_tz != NULL)
	{
		if ((rc = pv_time_zone_check(default_tz)) < 0)
		{
			rc = pv_error_prefix(PV_ECONFIG, "schedule '%s'", s->text);
			goto done;
		}
		s->zone = pv_strdup(default_tz);
	}
	if (body[0] == '@')
	{
		size_t wlen = strcspn(body, " \t");

		if (wlen == 6 && strncasecmp(body, "@every", 6) == 0)
		{
			rc = every_parse(s, body + 6, s->text);
			goto done;
		}
		for (size_t i = 0; i < PV_ARRAY_LEN(shorthands); i++)
			if (strlen(shorthands[i].name) == wlen && strncasecmp(body, shorthands[i].name, wlen) == 0)
			{
				if (body[wlen] != '\0')
					rc = pv_error_set(PV_ECONFIG, "invalid schedule '%s': nothing may follow %s",
									  s->text, shorthands[i].name);
				else
					rc = cron_parse(s, shorthands[i].expr, s->text);
				goto done;
			}
		rc = pv_error_set(PV_ECONFIG, "invalid schedule '%s': unknown shorthand '%.*s'", s->text,
						  (int) wlen, body);
		pv_error_hint("use @yearly, @monthly, @weekly, @daily, @hourly or @every DURATION");
		goto done;
	}
	rc = cron_parse(s, body, s->text);
done:
	if (rc < 0)
	{
		schedule_free(s);
		return rc;
	}
	*out = s;
	return PV_OK;
}

void
schedule_free(Schedule *s)
{
	if (s == NULL)
		return;
	pv_free(s->text);
	pv_free(s->zone);
	pv_free(s);
}

const char *
schedule_text(const Schedule *s)
{
	return s->text;
}

const char *
schedule_zone(const Schedule *s)
{
	return s->zone;
}

int64_t
schedule_interval_ms(const Schedule *s)
{
	return s->interval_ms;
}

/* ---- next run ---- */

typedef struct Wall
{
	int year, month, day, hour, minute;
} Wall;

static bool
wall_equal(const Wall *w, const PvCalendar *c)
{
	return w->year == c->year && w->month == c->month && w->day == c->day &&
		w->hour == c->hour && w->minute == c->minute && c->second == 0;
}

static int
offset_at(const Schedule *s, PvTime t, int *out)
{
	PvCalendar c;
	int rc = pv_time_calendar(&c, t, s->zone);

	*out = c.utc_offset;
	return rc;
}

/*
 * The instant of wall time w: its first occurrence when it occurs twice,
 * the end of the gap when it does not occur (schedule.h, rules 1 and 2).
 * Offsets change at most once in six hours in every zone there is.
 */
static int
wall_resolve(const Schedule *s, const Wall *w, PvTime *out)
{
	PvCalendar cal = {.year = w->year, .month = w->month, .day = w->day, .hour = w->hour,
		.minute = w->minute};
	PvCalendar c;
	PvTime t;
	int rc, before;

	if ((rc = pv_time_from_calendar(&t, &cal, s->zone)) < 0 ||
		(rc = pv_time_calendar(&c, t, s->zone)) < 0 ||
		(rc = offset_at(s, t - 6 * 3600 * SEC, &before)) < 0)
		return rc;
	if (wall_equal(w, &c))
	{
		/* From_calendar picks the later of two occurrences; is there an earlier one? */
		if (before != c.utc_offset)
		{
			PvTime early = t + (PvTime) (c.utc_offset - before) * SEC;
			PvCalendar e;

			if (early < t && pv_time_calendar(&e, early, s->zone) == PV_OK && wall_equal(w, &e))
				t = early;
		}
		*out = t;
		return PV_OK;
	}
	/* In a gap: t is past the change; find the change itself, to the second. */
	{
		int64_t lo = t / SEC - 6 * 3600, hi = t / SEC;

		while (lo < hi)
		{
			int64_t mid = lo + (hi - lo) / 2;
			int off;

			if ((rc = offset_at(s, mid * SEC, &off)) < 0)
				return rc;
			if (off == c.utc_offset)
				hi = mid;
			else
				lo = mid + 1;
		}
		*out = lo * SEC;
	}
	return PV_OK;
}

static bool
day_matches(const Schedule *s, const Wall *w)
{
	int64_t days = pv_days_from_civil(w->year, w->month, w->day);
	int weekday = (int) (((days % 7) + 11) % 7);	/* 1970-01-01 was a Thursday (4) */

	return (s->days >> w->day & 1) && (s->weekdays >> weekday & 1);
}

/* Normalise w after a field was incremented past its end. */
static void
wall_carry(Wall *w)
{
	if (w->minute > 59)
	{
		w->minute = 0;
		w->hour++;
	}
	if (w->hour > 23)
	{
		w->hour = 0;
		w->day++;
	}
	if (w->day > pv_days_in_month(w->year, w->month))
	{
		w->day = 1;
		w->month++;
	}
	if (w->month > 12)
	{
		w->month = 1;
		w->year++;
	}
}

/* The first matching wall time at or after w (w is updated). */
static bool
wall_next_match(const Schedule *s, Wall *w, int year_limit)
{
	while (w->year <= year_limit)
	{
		if (!(s->months >> w->month & 1))
		{
			w->month++;
			w->day = 1;
			w->hour = 0;
			w->minute = 0;
		}
		else if (!day_matches(s, w))
		{
			w->day++;
			w->hour = 0;
			w->minute = 0;
		}
		else if (!(s->hours >> w->hour & 1))
		{
			w->hour++;
			w->minute = 0;
		}
		else if (!(s->minutes >> w->minute & 1))
			w->minute++;
		else
			return true;
		wall_carry(w);
	}
	return false;
}

int
schedule_next(const Schedule *s, PvTime after, PvTime *out)
{
	PvCalendar c;
	Wall w;
	int rc, limit;

	if (s->interval_ms > 0)
	{
		int64_t step = s->interval_ms * PV_USEC_PER_MS;
		int64_t k = after >= 0 ? after / step : -((-after + step - 1) / step);

		*out = (k + 1) * step;
		return PV_OK;
	}
	if ((rc = pv_time_calendar(&c, after, s->zone)) < 0)
		return rc;
	w = (Wall) {c.year, c.month, c.day, c.hour, c.minute + 1};
	wall_carry(&w);
	limit = c.year + SEARCH_YEARS;
	while (wall_next_match(s, &w, limit))
	{
		PvTime t;

		if ((rc = wall_resolve(s, &w, &t)) < 0)
			return rc;
		if (t > after)
		{
			*out = t;
			return PV_OK;
		}
		w.minute++;
		wall_carry(&w);
	}
	return pv_error_set(PV_ENOTFOUND, "schedule '%s' has no run in the next %d years", s->text,
						SEARCH_YEARS);
}
