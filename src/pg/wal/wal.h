/*
 * wal.h: PostgreSQL's WAL vocabulary: LSNs, timelines, segment numbers and
 * the names of the files archive_command hands us, and where each one lives
 * in a repository.
 *
 * Names (as xlog_internal.h spells them, 24 upper-case hex digits = timeline,
 * then the segment number split in "log" and "seg" halves):
 *   000000010000000A000000FF            a segment
 *   000000010000000A000000FF.partial    the last, incomplete segment of a timeline (after promotion)
 *   00000002.history                    a timeline history file
 *   000000010000000A000000FF.00000028.backup   a backup history file
 *
 * Repository keys (docs/repository-format.md, "WAL archive"):
 *   wal/<source>/<timeline, 8 hex>/<file name>
 *   wal/<source>/archive.info
 *
 * Everything here is pure computation: no I/O, no allocation except where a
 * function returns a new string (caller frees with pv_free).
 */
#ifndef PV_PG_WAL_WAL_H
#define PV_PG_WAL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGWAL_SEGMENT_NAME_LEN 24
#define PGWAL_LSN_TEXT_MAX 20		/* "FFFFFFFF/FFFFFFFF" + NUL */
#define PGWAL_DEFAULT_SEGMENT_SIZE (16u * 1024 * 1024)
/* wal_segment_size is a power of two between 1 MiB and 1 GiB. */
#define PGWAL_MIN_SEGMENT_SIZE (1u * 1024 * 1024)
#define PGWAL_MAX_SEGMENT_SIZE (1024u * 1024 * 1024)

typedef enum PgWalFileKind
{
	PGWAL_FILE_SEGMENT,
	PGWAL_FILE_PARTIAL,
	PGWAL_FILE_HISTORY,
	PGWAL_FILE_BACKUP,
} PgWalFileKind;

typedef struct PgWalFile
{
	PgWalFileKind kind;
	uint32_t timeline;
} PgWalFile;

/*
 * Classify a WAL file name (a base name, no directory).  PV_EUSAGE
 * "'%s' is not the name of a WAL file" for anything else (so a path or a
 * stray file can never become a repository key).
 */
int pgwal_file_parse(PgWalFile *out, const char *name);

/* True if size is a valid wal_segment_size. */
bool pgwal_segment_size_valid(uint64_t size);

/* The segment that holds byte lsn (XLByteToSeg). */
uint64_t pgwal_lsn_segno(uint64_t lsn, uint64_t seg_size);
/* The segment that holds the byte before lsn (XLByteToPrevSeg): the last
   segment a backup that stopped at lsn needs. */
uint64_t pgwal_lsn_prev_segno(uint64_t lsn, uint64_t seg_size);

/* "000000010000000A000000FF"; out has room for PGWAL_SEGMENT_NAME_LEN + 1. */
void pgwal_segment_name(char *out, uint32_t timeline, uint64_t segno, uint64_t seg_size);

/*
 * Parse the first 24 characters of a segment name (the rest is ignored, so
 * ".partial" and ".backup" names work).  PV_EUSAGE when they are not 24 hex
 * digits or the seg half is out of range for seg_size.
 */
int pgwal_segment_parse(uint32_t *out_timeline, uint64_t *out_segno, const char *name,
						uint64_t seg_size);

/* "16/B374D848" <-> 0x16B374D848.  PV_EUSAGE "invalid LSN '%s'". */
int pgwal_lsn_parse(uint64_t *out, const char *text);
const char *pgwal_lsn_format(char *out, size_t outsz, uint64_t lsn);

/*
 * Source names become key segments: 1..64 characters of [A-Za-z0-9_.-],
 * not starting with '.'.  PV_EUSAGE "invalid source name '%s'" otherwise.
 */
int pgwal_source_check(const char *source);

/* The source name used when none is configured or given. */
#define PGWAL_DEFAULT_SOURCE "default"

/* "wal/<source>/<timeline hex>/<name>" for a valid file name; caller frees. */
char *pgwal_object_key(const char *source, const char *name, uint32_t timeline);
/* "wal/<source>/<timeline hex>/" (timeline > 0) or "wal/<source>/" (0); caller frees. */
char *pgwal_object_prefix(const char *source, uint32_t timeline);
/* "wal/<source>/archive.info"; caller frees. */
char *pgwal_info_key(const char *source);

#endif
