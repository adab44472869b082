/*
 * units.h: sizes and durations as people write them.
 *
 * Sizes: "4096", "64k", "64KiB", "1.5 GiB", "2GB" (binary multiples: k/K/KB/KiB
 * all mean 1024; pgvault follows PostgreSQL here, where 1GB = 1024 MB).
 * Durations: "90s", "15min", "4h", "30d", "2w", "500ms" (seconds when no
 * unit), also combined: "1h30min" or "1h 30min".  Unit names accepted:
 * ms/msec/millisecond(s), s/sec(s)/second(s), m/min(s)/minute(s),
 * h/hr(s)/hour(s), d/day(s), w/week(s).  Printing uses the largest exact unit
 * for durations and one decimal for sizes ("1.5 GiB").
 *
 * Units are case-insensitive ("M" is minutes in a duration, MiB in a size).
 * Fractions are allowed ("1.5h") and rounded to the nearest byte or
 * millisecond.  Negative values, empty text, unknown units and values that
 * overflow (sizes >= 16 EiB, durations >= 2^63 ms) fail with PV_EUSAGE, a
 * message "invalid size '...'" / "invalid duration '...'" and a hint.
 * Outputs are written only on success.
 */
#ifndef PV_COMMON_UNITS_H
#define PV_COMMON_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parse a size in bytes.  PV_EUSAGE with a message on bad input. */
int pv_size_parse(uint64_t *out, const char *text);
/* "0 B", "512 B", "1.5 KiB", "12.0 GiB"; out needs 32 bytes. */
const char *pv_size_format(char *out, size_t outsz, uint64_t bytes);

/* Parse a duration into milliseconds. */
int pv_duration_parse_ms(int64_t *out, const char *text);
/* Parse a duration into whole seconds (sub-second parts rejected). */
int pv_duration_parse(int64_t *out, const char *text);
/* "90s" -> "1min 30s", "0s"; from seconds. */
const char *pv_duration_format(char *out, size_t outsz, int64_t seconds);
/* "1.23s", "45ms", "2min 3s" from milliseconds, for elapsed times. */
const char *pv_elapsed_format(char *out, size_t outsz, int64_t ms);

#endif
