/*
 * wal.c: WAL file names, segment numbers and LSNs (see wal.h).  The
 * arithmetic is xlog_internal.h's (XLogFileName, XLByteToSeg,
 * XLByteToPrevSeg), re-done here so nothing links against server code.
 */
#include "pg/wal/wal.h"

#include "common/error.h"
#include "common/mem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool
all_hex_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static uint32_t
hex32(const char *s)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 4) | (uint32_t) (s[i] <= '9' ? s[i] - '0' : s[i] - 'A' + 10);
	return v;
}

int
pgwal_file_parse(PgWalFile *out, const char *name)
{
	size_t n = strlen(name);

	if (n == PGWAL_SEGMENT_NAME_LEN && all_hex_upper(name, n))
		out->kind = PGWAL_FILE_SEGMENT;
	else if (n == PGWAL_SEGMENT_NAME_LEN + 8 && all_hex_upper(name, PGWAL_SEGMENT_NAME_LEN) &&
			 strcmp(name + PGWAL_SEGMENT_NAME_LEN, ".partial") == 0)
		out->kind = PGWAL_FILE_PARTIAL;
	else if (n == 8 + 8 && all_hex_upper(name, 8) && strcmp(name + 8, ".history") == 0)
		out->kind = PGWAL_FILE_HISTORY;
	else if (n == PGWAL_SEGMENT_NAME_LEN + 1 + 8 + 7 && all_hex_upper(name, PGWAL_SEGMENT_NAME_LEN) &&
			 name[PGWAL_SEGMENT_NAME_LEN] == '.' &&
			 all_hex_upper(name + PGWAL_SEGMENT_NAME_LEN + 1, 8) &&
			 strcmp(name + PGWAL_SEGMENT_NAME_LEN + 9, ".backup") == 0)
		out->kind = PGWAL_FILE_BACKUP;
	else
		return pv_error_set(PV_EUSAGE, "'%s' is not the name of a WAL file", name);
	out->timeline = hex32(name);
	if (out->timeline == 0)
		return pv_error_set(PV_EUSAGE, "'%s' is not the name of a WAL file: timeline 0", name);
	return 0;
}

bool
pgwal_segment_size_valid(uint64_t size)
{
	return size >= PGWAL_MIN_SEGMENT_SIZE && size <= PGWAL_MAX_SEGMENT_SIZE &&
		(size & (size - 1)) == 0;
}

uint64_t
pgwal_lsn_segno(uint64_t lsn, uint64_t seg_size)
{
	return lsn / seg_size;
}

uint64_t
pgwal_lsn_prev_segno(uint64_t lsn, uint64_t seg_size)
{
	return lsn == 0 ? 0 : (lsn - 1) / seg_size;
}

void
pgwal_segment_name(char *out, uint32_t timeline, uint64_t segno, uint64_t seg_size)
{
	uint64_t per_id = UINT64_C(0x100000000) / seg_size;

	snprintf(out, PGWAL_SEGMENT_NAME_LEN + 1, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32, timeline,
			 (uint32_t) (segno / per_id), (uint32_t) (segno % per_id));
}

int
pgwal_segment_parse(uint32_t *out_timeline, uint64_t *out_segno, const char *name,
					uint64_t seg_size)
{
	uint64_t per_id = UINT64_C(0x100000000) / seg_size;
	uint32_t log, seg;

	if (strlen(name) < PGWAL_SEGMENT_NAME_LEN || !all_hex_upper(name, PGWAL_SEGMENT_NAME_LEN))
		return pv_error_set(PV_EUSAGE, "'%s' is not the name of a WAL segment", name);
	log = hex32(name + 8);
	seg = hex32(name + 16);
	if (seg >= per_id)
		return pv_error_set(PV_EUSAGE, "'%s' is not a WAL segment name for %" PRIu64 "-byte segments",
							name, seg_size);
	*out_timeline = hex32(name);
	*out_segno = (uint64_t) log * per_id + seg;
	return 0;
}

int
pgwal_lsn_parse(uint64_t *out, const char *text)
{
	unsigned int hi, lo;
	int n = 0;

	if (text == NULL || sscanf(text, "%8X/%8X%n", &hi, &lo, &n) != 2 || text[n] != '\0' ||
		strchr(text, '-') != NULL || strchr(text, '+') != NULL || text[0] == ' ')
		return pv_error_set(PV_EUSAGE, "invalid LSN '%s'", text ? text : "");
	*out = ((uint64_t) hi << 32) | lo;
	return 0;
}

const char *
pgwal_lsn_format(char *out, size_t outsz, uint64_t lsn)
{
	snprintf(out, outsz, "%" PRIX32 "/%" PRIX32, (uint32_t) (lsn >> 32), (uint32_t) lsn);
	return out;
}

int
pgwal_source_check(const char *source)
{
	size_t n = source ? strlen(source) : 0;

	if (n == 0 || n > 64 || source[0] == '.')
		goto bad;
	for (size_t i = 0; i < n; i++)
	{
		char c = source[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '-' || c == '.'))
			goto bad;
	}
	if (strstr(source, ".tmp.") != NULL)
		goto bad;
	return 0;
bad:
	pv_error_set(PV_EUSAGE, "invalid source name '%s'", source ? source : "");
	pv_error_hint("a source name has 1 to 64 letters, digits, '_', '-' or '.'");
	return PV_EUSAGE;
}

char *
pgwal_object_key(const char *source, const char *name, uint32_t timeline)
{
	return pv_asprintf("wal/%s/%08" PRIX32 "/%s", source, timeline, name);
}

char *
pgwal_object_prefix(const char *source, uint32_t timeline)
{
	if (timeline == 0)
		return pv_asprintf("wal/%s/", source);
	return pv_asprintf("wal/%s/%08" PRIX32 "/", source, timeline);
}

char *
pgwal_info_key(const char *source)
{
	return pv_asprintf("wal/%s/archive.info", source);
}
