/*
 * datadir.h: what of a PostgreSQL data directory a physical backup copies,
 * by the rules of PostgreSQL's own base backup (basebackup.c):
 *
 *   - not copied at all: postmaster.pid, postmaster.opts, backup_label,
 *     tablespace_map, backup_manifest, postgresql.auto.conf.tmp,
 *     current_logfiles.tmp (top level); pg_internal.init* (relcache init
 *     files, anywhere); pgsql_tmp* files and directories; temporary
 *     relations (t<backend>_<relfilenode>...); the forks of unlogged
 *     relations other than their init fork (recovery rebuilds them from it);
 *     sockets, FIFOs and devices;
 *   - copied empty (the directory, not its contents): pg_wal (plus
 *     pg_wal/archive_status), pg_dynshmem, pg_notify, pg_serial,
 *     pg_snapshots, pg_stat_tmp, pg_subtrans, pg_replslot;
 *   - tablespaces: pg_tblspc/<oid> is recorded as the symbolic link it is,
 *     and the PG_<major>_* directory it points to is walked as if it were
 *     below pg_tblspc/<oid>/ (an in-place tablespace, a plain directory,
 *     is walked as one).
 *
 * The scan lists entries with their lstat() data; files that vanish while
 * it runs (a dropped table) are left out, as PostgreSQL does.  Relation
 * files (data, fsm, vm and init forks of a relfilenode, any segment) are
 * flagged, with their segment number, for fixed-offset chunking and page
 * checksum verification.
 *
 * Ownership: a PgPhysDirList owns its entries and their strings
 * (pgphys_datadir_free).
 */
#ifndef PV_PG_PHYSICAL_DATADIR_H
#define PV_PG_PHYSICAL_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum PgPhysEntryType
{
	PGPHYS_ENTRY_FILE,
	PGPHYS_ENTRY_DIR,
	PGPHYS_ENTRY_SYMLINK,
} PgPhysEntryType;

typedef struct PgPhysEntry
{
	char *name;					/* name in the backup: "base/5/1259", "pg_tblspc/16384/PG_15_.../5/16385" */
	char *path;					/* where to read it (the real path, through tablespace links) */
	PgPhysEntryType type;
	uint32_t mode;				/* permission bits */
	int64_t mtime;				/* unix seconds */
	uint64_t size;				/* files: size when scanned */
	char *link;					/* symlinks: the target */
	bool relation;				/* a relation data file (fixed chunks, page checksums) */
	uint32_t segno;				/* relation files: the ".N" segment number (0 without suffix) */
} PgPhysEntry;

typedef struct PgPhysDirList
{
	PgPhysEntry *v;
	size_t n;
	size_t cap;
	uint64_t file_bytes;		/* sum of the files' sizes */
} PgPhysDirList;

/*
 * Scan the data directory pgdata of a server of major version pg_major
 * (12, 15, ...; used to find the tablespaces' version directories).
 * Errors: PV_ENOTFOUND when pgdata does not exist, PV_EIO naming the path
 * for unreadable directories.
 */
int pgphys_datadir_scan(PgPhysDirList *out, const char *pgdata, int pg_major);
void pgphys_datadir_free(PgPhysDirList *list);	/* leaves it empty */

/*
 * Whether name (a base name) is a relation file "<relfilenode>[_fsm|_vm|_init][.N]";
 * *segno (may be NULL) gets N.  *fork_init (may be NULL) tells an init fork.
 */
bool pgphys_relation_name(const char *name, uint32_t *segno, bool *fork_init);

#endif
