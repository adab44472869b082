/*
 * server.h: the PostgreSQL side of a physical backup, on one session that
 * stays open from start to stop (non-exclusive backup mode: if the session
 * ends early, the server cancels the backup by itself).
 *
 * Version gates: PostgreSQL 12 to 14 name the functions pg_start_backup /
 * pg_stop_backup (called with exclusive = false), 15 and later
 * pg_backup_start / pg_backup_stop.  Older servers are refused.
 *
 * Ownership: PgPhysServer strings are owned by it (pgphys_server_clear);
 * PgPhysStop strings by it (pgphys_stop_clear).
 */
#ifndef PV_PG_PHYSICAL_SERVER_H
#define PV_PG_PHYSICAL_SERVER_H

#include "pg/conn.h"

#include <stdbool.h>
#include <stdint.h>

#define PGPHYS_MIN_VERSION 120000

typedef struct PgPhysServer
{
	int version_num;			/* 150004 */
	char *version_text;			/* "15.4" */
	char *data_directory;
	uint64_t system_identifier;
	bool data_checksums;
	uint32_t block_size;
	uint64_t wal_segment_size;
	uint32_t segment_blocks;	/* blocks per relation segment file (RELSEG_SIZE) */
	char *archive_mode;
	char *archive_command;		/* "" when unset */
	char *archive_library;		/* "" when unset or before 15 */
	bool in_recovery;
} PgPhysServer;

/* Read what a backup needs to know; refuses servers older than 12 (PV_EUSAGE). */
int pgphys_server_read(PgPhysServer *out, PGconn *conn);
void pgphys_server_clear(PgPhysServer *s);

/*
 * PV_EREFUSED with a hint when the server cannot archive WAL at all
 * (archive_mode off, no archive_command or archive_library), which would
 * make every backup unrestorable.
 */
int pgphys_server_check_archiving(const PgPhysServer *s);

/* pg_stat_archiver. */
typedef struct PgPhysArchiver
{
	int64_t archived_count;
	int64_t failed_count;
	char last_archived_wal[64];	/* "" if none */
	char last_failed_wal[64];
	bool failing;				/* the last attempt failed (no success after the last failure) */
} PgPhysArchiver;
int pgphys_archiver_read(PgPhysArchiver *out, PGconn *conn);

/* Start the backup (label, immediate checkpoint or spread); *start_lsn gets its start. */
int pgphys_backup_start(uint64_t *start_lsn, PGconn *conn, int version_num, const char *label,
						bool fast);

typedef struct PgPhysStop
{
	uint64_t stop_lsn;
	char *backup_label;			/* the contents of backup_label */
	char *tablespace_map;		/* the contents of tablespace_map ("" when none) */
	int64_t end_time_us;		/* server clock right after the stop (unix microseconds) */
	uint64_t next_xid;			/* first transaction id not yet assigned, at the stop (full) */
	uint32_t timeline;			/* START TIMELINE of the label */
	uint64_t start_lsn;			/* START WAL LOCATION of the label */
} PgPhysStop;

/* Stop the backup without waiting for archiving (pgvault waits for its repository itself). */
int pgphys_backup_stop(PgPhysStop *out, PGconn *conn, int version_num);
void pgphys_stop_clear(PgPhysStop *s);

/* Parse START WAL LOCATION and START TIMELINE out of a backup_label. */
int pgphys_label_parse(const char *label, uint64_t *start_lsn, uint32_t *timeline);

#endif
