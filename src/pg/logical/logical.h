/*
 * logical.h: logical backups of one PostgreSQL database into a pgvault
 * repository, and their restore (issue 4; docs: "Logical backups" in the
 * design).
 *
 * What a logical backup holds (manifest kind "logical"; items are streams):
 *
 *   schema                 pg_dump --schema-only -Fc -Z0 --snapshot of the
 *                          backup's snapshot (absent with --data-only);
 *                          item meta {"kind":"schema","format":"custom","tool":...}
 *   data/<"s"."t">/<part>  COPY text of one table, or of one page range
 *                          [from, to) of it (ctid range scan) when the table
 *                          was split; meta {"kind":"table-data","schema",
 *                          "table","part","parts","pages":[from,to|null]}
 *   large-objects          every large object: "<oid> <length> <json>\n" then
 *                          its bytes, one after another (absent when none);
 *                          json is {"owner","comment","acl":[{"grantee" (quoted
 *                          or PUBLIC),"privilege","grantable"}]|null}
 *   catalog                JSON lines written last, one per object:
 *     {"kind":"table","schema","name","relkind","columns","size","data":bool,
 *      "rows","fingerprint","bytes","parts":[{"item","rows","fingerprint",
 *      "bytes","pages"}]}
 *     {"kind":"sequence","schema","name","last_value":"<int8>","is_called":bool}
 *     {"kind":"matview","schema","name","populated":bool,"data":bool}
 *     {"kind":"large_objects","count","bytes","item"}
 *   rows and fingerprints are those of fingerprint.h.
 *
 * Manifest metadata: {"format":"pgvault-logical","version":1,"database",
 * "encoding","collate","ctype","locale_provider","icu_locale","owner",
 * "server_version","server_version_num","snapshot":{"lsn","time","txid_snapshot"},
 * "schema_only","data_only","filters":{...},"pg_dump","tables","rows",
 * "sequences","large_objects","data_bytes"}.
 *
 * Everything (schema, rows, sequences, large objects) is of one instant:
 * the coordinator's REPEATABLE READ transaction exports a snapshot that
 * pg_dump and every worker connection import, and stays open until the end.
 */
#ifndef PV_PG_LOGICAL_LOGICAL_H
#define PV_PG_LOGICAL_LOGICAL_H

#include "pg/conn.h"
#include "pg/logical/filter.h"
#include "repo/manifest.h"
#include "repo/writer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

#define PGLOGICAL_SPLIT_DEFAULT (512ULL * 1024 * 1024)

typedef struct PgLogicalBackupOpts
{
	PgConnOpts conn;			/* which database */
	const char *bindir;			/* where pg_dump is, or NULL (pgtools_find) */
	Repo *repo;					/* open repository (lent) */
	const char *source;			/* manifest source name, or NULL */
	const char *compression;	/* NULL = the repository's */
	int jobs;					/* worker connections; <= 0: 2 */
	PgFilter filter;
	bool schema_only;
	bool data_only;
	uint64_t split_size;		/* tables larger are split into page ranges; 0 = default */
	bool progress;				/* progress line on a terminal */
} PgLogicalBackupOpts;

typedef struct PgLogicalBackupResult
{
	char id[REPO_BACKUP_ID_LEN + 1];
	char database[256];
	RepoWriterStats stats;
	int64_t elapsed_ms;
	uint64_t tables, parts, rows, sequences, large_objects, data_bytes;
} PgLogicalBackupResult;

/*
 * Back up one database.  On any failure nothing becomes a backup (no
 * manifest), and the error says where (table, part, pg_dump's message).
 */
int pglogical_backup(PgLogicalBackupResult *out, const PgLogicalBackupOpts *opts);

typedef struct PgLogicalRestoreOpts
{
	PgConnOpts conn;			/* the server (and, without target_db, the database) */
	const char *bindir;			/* where pg_restore is, or NULL */
	Repo *repo;
	const char *backup;			/* id, prefix or "latest" */
	const char *target_db;		/* database to restore into; NULL = -d's, else the source's name */
	bool clean;					/* drop the backup's objects first (pg_restore --clean) */
	bool if_exists;				/* with clean: DROP ... IF EXISTS */
	bool terminate;				/* end other sessions on the target */
	bool no_owner, no_privileges;
	bool no_analyze;
	bool schema_only, data_only;
	int jobs;
	bool progress;
} PgLogicalRestoreOpts;

typedef struct PgLogicalRestoreResult
{
	char id[REPO_BACKUP_ID_LEN + 1];
	char database[256];
	bool created;				/* the database was created by this restore */
	int64_t elapsed_ms;
	uint64_t tables, parts, rows, sequences, large_objects, bytes;
} PgLogicalRestoreResult;

/*
 * Restore a logical backup: pre-data (pg_restore), data in parallel (COPY),
 * sequences, large objects, post-data (pg_restore -j), materialized views,
 * ANALYZE.  A database created here is dropped again on failure.  Errors:
 * PV_EREFUSED for a database in use (naming the sessions) or not empty
 * without clean; PV_EUSAGE for a backup that is not logical.
 */
int pglogical_restore(PgLogicalRestoreResult *out, const PgLogicalRestoreOpts *opts);

/* ---- reading a backup's catalog (show, drills) ---- */

/* Calls fn with each line of the catalog item, parsed (lent until fn returns). */
typedef int (*PgLogicalCatalogFn) (const struct json_t *entry, void *payload);
int pglogical_catalog_foreach(Repo *repo, const RepoManifest *m, PgLogicalCatalogFn fn, void *payload);

/* Read a whole (small) stream item into out. */
int pglogical_item_read_all(Repo *repo, const RepoManifest *m, const char *name, Buf *out);

#endif
