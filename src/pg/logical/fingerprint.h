/*
 * fingerprint.h: the order-independent content fingerprint of a table.
 *
 * Definition (stable: drills recompute it on a restored copy without
 * touching the source):
 *
 *   fingerprint = sum over rows, modulo 2^64, of XXH64(line, seed 0)
 *
 * where line is a row exactly as `COPY table (columns) TO STDOUT` sends it
 * (text format, with its final "\n"), columns are the table's non-dropped,
 * non-generated columns in attnum order, and the session has the settings
 * of pglogical_session_setup() (client_encoding = the database encoding,
 * DateStyle ISO, IntervalStyle postgres, TimeZone UTC, extra_float_digits 3,
 * bytea_output hex).  A sum (not xor) so duplicate rows count; the
 * fingerprint of a table split into parts is the sum of the parts'.
 * It is printed as 16 lowercase hex digits.
 */
#ifndef PV_PG_LOGICAL_FINGERPRINT_H
#define PV_PG_LOGICAL_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

/* XXH64 of len bytes (the reference algorithm, seed as given). */
uint64_t pgfp_xxh64(const void *data, size_t len, uint64_t seed);

/* Add one COPY line to a running fingerprint. */
static inline uint64_t
pgfp_add_line(uint64_t fp, const void *line, size_t len)
{
	return fp + pgfp_xxh64(line, len, 0);
}

/* "%016llx" into out (17 bytes). */
void pgfp_format(char out[17], uint64_t fp);
/* Parse 16 hex digits; 0 or PV_ECORRUPT. */
int pgfp_parse(uint64_t *out, const char *hex);

#endif
