/*
 * backup.h: a physical backup of a local PostgreSQL cluster.
 *
 *   1. check the server (version, archiving, the data directory is the
 *      server's: its pg_control has the server's system identifier), and
 *      that the source's WAL archive belongs to this system;
 *   2. pg_backup_start on the caller's session (held open to the end);
 *   3. walk the data directory and tablespaces (datadir.h exclusions) and
 *      copy the files in parallel, pg_control last; a file whose size and
 *      mtime equal the previous backup's (and whose mtime is older than that
 *      backup's start) reuses its chunks without being read; relation files
 *      are cut at fixed offsets (PGPHYS_REL_CHUNK_SIZE) so a changed file
 *      stores only its changed regions, and their pages are checked against
 *      their checksums as they are read;
 *   4. pg_backup_stop (backup_label and tablespace_map go to the manifest);
 *   5. wait until every WAL segment from the start to the stop segment is in
 *      the repository (a clear error, and no backup, when archiving fails or
 *      the wait times out);
 *   5b. with --with-wal, copy those segments (and the timeline's history
 *      file) from the archive into the backup as pg_wal/<name> items, so a
 *      restore reaches consistency even without the archive; the manifest
 *      says so ("wal_included": true, "wal_files": [names]);
 *   6. commit: packs, index, then the manifest.  Only now does the backup
 *      exist; any failure before leaves no manifest.
 *
 * Page checksum failures do not stop the backup (the damage is in the
 * cluster, not in our copy of it): they are logged as warnings, recorded in
 * the manifest, and counted in the result for the caller to report.
 *
 * On failure the caller must end the session (PQfinish): the server then
 * cancels the backup itself.
 */
#ifndef PV_PG_PHYSICAL_BACKUP_H
#define PV_PG_PHYSICAL_BACKUP_H

#include "pg/conn.h"
#include "pg/wal/wal.h"
#include "repo/manifest.h"
#include "repo/writer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

/* Fixed-offset chunk size of relation files: the unit of incremental storage. */
#define PGPHYS_REL_CHUNK_SIZE (256u * 1024)
/* Default wait for the backup's WAL to reach the repository. */
#define PGPHYS_ARCHIVE_WAIT_DEFAULT_MS (60 * 1000)

typedef struct PgPhysBackupOpts
{
	Repo *repo;
	PGconn *conn;				/* the session the backup runs on (caller's) */
	const char *source;			/* source name: the WAL archive's namespace (required) */
	const char *pgdata;			/* NULL: the server's data_directory */
	int jobs;					/* files read in parallel; 0 = one per CPU */
	bool spread_checkpoint;		/* false: pg_backup_start(fast = true) */
	bool full;					/* read every file, reuse nothing from the previous backup */
	int64_t archive_wait_ms;	/* 0 = PGPHYS_ARCHIVE_WAIT_DEFAULT_MS */
	const char *compression;	/* NULL = the repository's */
	int64_t progress_ms;		/* log progress this often (0 = every 10 s; < 0 never) */
	bool with_wal;				/* also store the start..stop WAL in the backup (step 5b) */
	bool no_extconf;			/* leave out configuration files outside the data directory */
} PgPhysBackupOpts;

typedef struct PgPhysBackupResult
{
	char id[REPO_BACKUP_ID_LEN + 1];		/* set as soon as the backup has an id */
	char parent[REPO_BACKUP_ID_LEN + 1];	/* "" when no previous backup was used */
	RepoWriterStats stats;
	uint64_t files;				/* files in the backup */
	uint64_t files_reused;		/* unchanged since the parent: not read */
	uint64_t bytes_read;
	uint64_t checksum_failures;	/* pages that failed verification (twice) */
	uint64_t checksum_files;	/* files with such pages */
	bool checksums_verified;	/* the cluster has data checksums */
	uint32_t timeline;
	char start_lsn[PGWAL_LSN_TEXT_MAX];
	char stop_lsn[PGWAL_LSN_TEXT_MAX];
	char start_wal[PGWAL_SEGMENT_NAME_LEN + 1];
	char stop_wal[PGWAL_SEGMENT_NAME_LEN + 1];
	int64_t duration_ms;
	int64_t wal_wait_ms;
	uint32_t wal_files;			/* WAL files stored in the backup (with_wal) */
	uint32_t extconf_files;		/* configuration files from outside the data directory */
} PgPhysBackupResult;

int pgphys_backup(PgPhysBackupResult *out, const PgPhysBackupOpts *opts);

#endif
