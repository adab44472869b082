/*
 * schedule.h: when a daemon job runs: cron expressions evaluated in a time
 * zone, and fixed intervals.
 *
 * Syntax (one line, blanks between fields):
 *
 *   MIN HOUR DOM MON DOW     five cron fields, each a comma-separated list
 *                            of '*', N, N-M, with an optional /STEP
 *                            ('*' + '/15', '1-7', '10-50/20', '0,30');
 *                            MON also takes jan..dec, DOW sun..sat (0 and
 *                            7 are Sunday); names are case-insensitive
 *   @yearly @annually @monthly @weekly @daily @midnight @hourly
 *                            the usual shorthands ("0 0 1 1 *" ...)
 *   @every DURATION          a fixed interval, "@every 2s", "@every 15min"
 *                            (at least one second), anchored to the Unix
 *                            epoch: "@every 1h" runs on the hour (UTC), so
 *                            the times do not depend on when the daemon
 *                            started and a restart does not shift them
 *   TZ=ZONE EXPR             evaluate EXPR in ZONE instead of the default
 *                            zone given to schedule_parse (CRON_TZ= works too)
 *
 * Day of month and day of week: when both are restricted (neither is '*'),
 * a day must match BOTH, so "0 3 1-7 * 0" is "03:00 on the first Sunday of
 * the month".  This is deliberately not Vixie cron's rule (either field
 * matches when both are restricted), which turns that line into "every day
 * from the 1st to the 7th, and every Sunday" and surprises nearly everyone
 * who writes it.  With '*' in either field both rules agree.
 *
 * Daylight-saving time: cron fields name wall-clock times in the zone.
 *  1. A wall time that does not exist (inside a spring-forward gap) runs at
 *     the first valid instant after the gap (02:30 on the day New York
 *     jumps from 02:00 EST to 03:00 EDT runs at 03:00 EDT); several skipped
 *     times ("*" + "/15 2 * * *") collapse into that one run.
 *  2. A wall time that occurs twice (a fall-back overlap) runs once, at its
 *     first occurrence (01:30 EDT, not again at 01:30 EST).
 *  3. schedule_next() is strictly increasing: next(t) > t, and calling it
 *     again with its own result walks the runs in order without repeats.
 *
 * Errors name the field and the problem: PV_ECONFIG "invalid schedule
 * '61 * * * *': minute 61 is out of range (0-59)".  An expression that can
 * never run ("0 0 30 2 *") is refused at parse time.
 *
 * Ownership: a Schedule owns copies of its text and zone; it is immutable
 * after parsing and safe to share between threads.
 */
#ifndef PV_OPS_SCHEDULE_H
#define PV_OPS_SCHEDULE_H

#include "common/timeutil.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Schedule Schedule;

/*
 * Parse expr; default_tz is the zone of cron fields when expr has no TZ=
 * prefix (NULL = the process's local zone).  PV_ECONFIG with a message on
 * bad syntax, an unknown zone or an expression that never runs.
 */
int schedule_parse(Schedule **out, const char *expr, const char *default_tz);
void schedule_free(Schedule *s);	/* NULL ok */

/*
 * The first run strictly after `after` (microseconds, see timeutil.h),
 * rounded to whole seconds.  PV_ENOTFOUND when there is none within 400
 * years (cannot happen for an expression schedule_parse accepted, but the
 * caller need not trust that).
 */
int schedule_next(const Schedule *s, PvTime after, PvTime *out);

const char *schedule_text(const Schedule *s);	/* as given, trimmed */
const char *schedule_zone(const Schedule *s);	/* NULL = local zone */
/* For "@every": the interval in milliseconds; 0 for cron expressions. */
int64_t schedule_interval_ms(const Schedule *s);

#endif
