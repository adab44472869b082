/*
 * restore.h: restore of a physical backup into a data directory, ready for
 * the server to start and recover (recovery.signal, backup_label,
 * tablespace_map and the recovery settings in postgresql.auto.conf).
 *
 * Safety rules:
 *   1. The target directory must be absent or empty, and no server may be
 *      running in it (postmaster.pid naming a live process): PV_EREFUSED.
 *      Tablespace directories (their original locations, or where
 *      --tablespace-map puts them; tablespace_map then names the new ones)
 *      likewise.  With delta, a non-empty directory is allowed when it is a
 *      data directory (PG_VERSION) and no server runs in it; tablespace
 *      directories need only the latter.
 *   2. Every byte comes through the repository reader, which checks every
 *      chunk and each file's SHA-256 before the restore reports success.
 *      Item names are not trusted: absolute names and ".." are refused.
 *   3. global/pg_control is written last, atomically, after every other
 *      file, backup_label and the settings are durable: a restore that
 *      stops half-way leaves a directory no server starts in (no pg_control)
 *      instead of one that starts and silently lacks files.  A delta
 *      restore removes the old pg_control before it changes anything.
 *   4. The WAL archive is checked before anything is written: the segments
 *      from the backup's start to its stop, and on to the target (an LSN
 *      target's segment; for other targets and none, the archive's end),
 *      must be there without a hole (PV_ECORRUPT naming the first missing
 *      segment).  The archive may end before the target: recovery then
 *      stops at its end, which is not a gap.
 *   5. A dry run (opts.dry_run) makes the same checks, with the same
 *      errors, then fills the plan and writes nothing.  With delta over a
 *      cluster it also runs the delta's comparison read-only, so the
 *      checked/rewritten/removed counts say what the delta would do.
 */
#ifndef PV_PG_PHYSICAL_RESTORE_H
#define PV_PG_PHYSICAL_RESTORE_H

#include "pg/physical/recovery.h"
#include "pg/wal/wal.h"
#include "repo/manifest.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

/*
 * Choose the backup to restore: spec is an id (or unique prefix) or
 * "latest".  With "latest", the newest physical backup (of source, when not
 * NULL) that can reach the target (pgphys_target_reachable); with an id,
 * that backup, which must be physical and able to reach the target.
 * PV_ENOTFOUND naming the target when none can; PV_EUSAGE for a backup of
 * another kind.
 */
int pgphys_backup_pick(char out[REPO_BACKUP_ID_LEN + 1], Repo *repo, const char *spec,
					   const char *source, const PgPhysTarget *target);

/* Rule 1 for one directory: absent, or empty and no live postmaster.pid. */
int pgphys_pgdata_check(const char *dir);

/*
 * Rule 1 as a restore with or without delta sees it: without, as
 * pgphys_pgdata_check (its "not empty" hint names --delta); with, a
 * non-empty directory must hold PG_VERSION (when pgdata) and no live
 * server.  *out_empty (may be NULL) tells an absent or empty directory.
 */
int pgphys_pgdata_check_for(const char *dir, bool delta, bool pgdata, bool *out_empty);

/* --tablespace-map OID=DIR: restore tablespace OID into DIR instead of its original location. */
typedef struct PgPhysTablespaceMap
{
	const char *oid;
	const char *dir;			/* absolute */
} PgPhysTablespaceMap;

typedef struct PgPhysRestoreOpts
{
	Repo *repo;
	const char *backup_id;		/* a full id (pgphys_backup_pick) */
	const char *pgdata;
	int jobs;					/* files written in parallel; 0 = one per CPU */
	const PgPhysTarget *target;	/* NULL: replay all archived WAL */
	/*
	 * restore_command without its source and placeholders, e.g.
	 * "'/usr/bin/pgvault' archive-get --repo /srv/pgvault"; restore appends
	 * " --source <the backup's source> %f %p".
	 */
	const char *archive_get_command;
	bool archive_off;			/* write archive_mode = off (test restores) */
	const PgPhysTablespaceMap *ts_map;	/* every OID must be a tablespace of the backup */
	size_t nts_map;
	int64_t progress_ms;		/* log progress this often (0: 10 s; < 0 never) */
	bool delta;					/* pgdata may hold a cluster: rewrite only what differs */
	bool dry_run;				/* the checks and the plan only (rule 5) */
	const char *config_dir;		/* external configuration files go here, not into pgdata (extconf.h) */
} PgPhysRestoreOpts;

typedef struct PgPhysRestoreResult
{
	char source[128];			/* the backup's source */
	uint64_t files;
	uint64_t bytes;
	int64_t duration_ms;
	char pg_version_text[32];
	int pg_version_num;			/* 150004 */
	/* delta: files compared with the backup, rewritten (wholly or in part), removed
	 * (by a dry run: that would be) */
	uint64_t checked_files, checked_bytes;	/* bytes read from disk to compare */
	uint64_t rewritten_files, rewritten_bytes;	/* bytes written (fetched) */
	uint64_t removed_files, removed_bytes;
	/* the plan (filled by dry runs and real ones alike) */
	uint64_t plan_files, plan_bytes;	/* files in the backup, their bytes (to fetch) */
	uint64_t tablespaces;
	bool pgdata_empty;			/* absent or empty */
	char wal_first[PGWAL_SEGMENT_NAME_LEN + 1];	/* the backup's first segment */
	char wal_stop[PGWAL_SEGMENT_NAME_LEN + 1];	/* its last: consistent there */
	char wal_last[PGWAL_SEGMENT_NAME_LEN + 1];	/* the last the restore checked ("" if none) */
	bool wal_to_archive_end;	/* wal_last is where the archive ends (not the target) */
	uint64_t wal_segments;		/* archived segments wal_first..wal_last */
} PgPhysRestoreResult;

int pgphys_restore(PgPhysRestoreResult *out, const PgPhysRestoreOpts *opts);

/* The backup's tablespace_map text with opts' --tablespace-map directories; caller frees (exposed for the fuzz target). */
char *pgphys_tablespace_map_rewrite(const PgPhysRestoreOpts *opts, const char *map);

#endif
