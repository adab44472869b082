/*
 * logical.h: logical backups of one PostgreSQL database, or of all of them
 * plus the cluster's globals, into a pgvault repository; their restore
 * (whole, one database of many, selected tables, globals only) and their
 * export as a plain SQL file (issue 4; docs: "Logical backups" in the
 * design).
 *
 * What a logical backup of one database holds (manifest kind "logical";
 * items are streams; with --all every database's items carry the prefix
 * db/"NAME"/, NAME quoted as an SQL identifier, and the item "globals" is
 * added):
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
 *      "bytes","pages"}],"owner","indexes":[names],
 *      "referenced_by":[{"schema","table","name","owner"}] (foreign keys of
 *      other tables pointing at this one; absent when none),
 *      "dependents":[{"schema","name","kind":"v"|"m","owner","indexes"}]
 *      (views and materialized views built on it, directly or not; absent
 *      when none),
 *      "partition_of":{"schema","name"} (its partitioned parent; absent when
 *      not a partition), "publications":[{"name","owner"}] (publications
 *      naming it; absent when none), "statistics":[{"schema","name","owner"}]
 *      (extended statistics on it; absent when none), "partitions":N (a
 *      partitioned table's direct partitions, foreign ones included),
 *      "extension":"<name>" (a configuration table the extension registered
 *      with pg_extension_config_dump: CREATE EXTENSION in the schema makes
 *      it, the backup holds its rows as pg_dump does; absent otherwise),
 *      "filter":"WHERE ..." (such a table's condition: only those rows are
 *      backed up, counted and fingerprinted; absent when all are)}
 *     {"kind":"sequence","schema","name","last_value":"<int8>","is_called":bool,
 *      "owned_by":"<table>" (same schema; absent when not owned)}
 *      (an extension's member sequence only when registered as configuration)
 *     {"kind":"matview","schema","name","populated":bool,"data":bool}
 *     {"kind":"large_objects","count","bytes","item"}
 *   rows and fingerprints are those of fingerprint.h; item names in the
 *   catalog are whole (prefix included).
 *   globals                (--all) `pg_dumpall --globals-only` output: roles,
 *                          memberships, role settings, tablespaces; role
 *                          passwords only with --with-role-passwords
 *
 * Database metadata (the manifest metadata of a one-database backup):
 * {"format":"pgvault-logical","version":1,"database","encoding","collate",
 * "ctype","locale_provider","icu_locale","owner","server_version",
 * "server_version_num","snapshot":{"id","lsn","time","txid_snapshot"},
 * "properties":{"connlimit","comment","acl":[...]|null,"settings":[{"role"
 * (null: the whole database),"config":["name=value"]}]},"schema_only",
 * "data_only","filters":{...},"pg_dump","tables","rows","sequences",
 * "roles":[names the database's objects, owner and settings refer to],
 * "large_objects","data_bytes","prefix","catalog_item","schema_item"}.
 *
 * --all manifest metadata: {"format":"pgvault-logical","version":1,"all":true,
 * "database":"*","databases":[database metadata, each with its "prefix"],
 * "globals":{"item","with_passwords","roles":[names],"tablespaces":[names],
 * "pg_dumpall"},"server_version","server_version_num","schema_only",
 * "data_only","exclude_databases":[patterns],"tables","rows","sequences",
 * "large_objects","data_bytes"}.
 *
 * Everything of one database (schema, rows, sequences, large objects) is
 * of one instant: the coordinator's REPEATABLE READ transaction exports a
 * snapshot that pg_dump and every worker connection import.  With --all
 * each database has its own snapshot, taken one after the other.
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
	PgFilter filter;			/* not with all */
	bool schema_only;
	bool data_only;
	uint64_t split_size;		/* tables larger are split into page ranges; 0 = default */
	bool progress;				/* progress line on a terminal */
	bool all;					/* every connectable database (but template0) and the globals */
	PgPatterns exclude_databases;	/* with all: pg_dumpall --exclude-database patterns */
	bool with_role_passwords;	/* with all: keep the roles' password hashes */
	const char *note;			/* recorded as metadata "note" (safety backups say why), or NULL */
} PgLogicalBackupOpts;

typedef struct PgLogicalBackupResult
{
	char id[REPO_BACKUP_ID_LEN + 1];
	char database[256];			/* "*" for --all */
	RepoWriterStats stats;
	int64_t elapsed_ms;
	uint64_t databases, roles;
	uint64_t tables, parts, rows, sequences, large_objects, data_bytes;
} PgLogicalBackupResult;

/*
 * Back up one database (or, with all, every one plus the globals, in one
 * backup).  On any failure nothing becomes a backup (no manifest), and the
 * error says where (database, table, part, pg_dump's message).
 */
int pglogical_backup(PgLogicalBackupResult *out, const PgLogicalBackupOpts *opts);

typedef struct PgLogicalRestoreOpts
{
	PgConnOpts conn;			/* the server (and, without target_db, the database) */
	const char *bindir;			/* where pg_restore is, or NULL */
	Repo *repo;
	const char *source;			/* source name for safety backups, or NULL */
	const char *backup;			/* id, prefix or "latest" */
	const char *target_db;		/* database to restore into; NULL = -d's, else the source's name */
	const char *database;		/* which database of an --all backup (NULL: every one) */
	bool globals_only;			/* --all backups: roles and tablespaces only */
	PgPatterns tables;			/* --table patterns: only these tables (and what belongs to them) */
	bool disable_triggers;		/* with data_only */
	bool no_safety_backup;		/* --clean replaces data without a backup of it first */
	bool clean;					/* drop the backup's objects first (pg_restore --clean) */
	bool if_exists;				/* with clean: DROP ... IF EXISTS */
	bool terminate;				/* end other sessions on the target */
	bool no_owner, no_privileges;
	bool no_tablespaces;		/* create no tablespace, put every object in the default one (drills) */
	bool create_missing_roles;	/* create (NOLOGIN) the roles of metadata "roles" that do not exist (drills) */
	bool no_analyze;
	bool text_copy;				/* load every table as COPY text (default: binary where the types allow) */
	bool schema_only, data_only;
	int jobs;
	bool progress;
} PgLogicalRestoreOpts;

typedef struct PgLogicalRestoreResult
{
	char id[REPO_BACKUP_ID_LEN + 1];
	char database[256];			/* the target; "*" when every database of an --all backup */
	char source_database[256];	/* its name in the backup */
	bool created;				/* the database was created by this restore */
	char safety_backup[REPO_BACKUP_ID_LEN + 1];	/* taken before --clean, or "" */
	int64_t elapsed_ms;
	uint64_t tables, parts, rows, sequences, large_objects, bytes;
	uint64_t binary_parts;		/* of parts: loaded as COPY binary (the rest as text) */
	uint64_t databases;
	uint64_t roles_created, roles_skipped, tablespaces_created, tablespaces_skipped;
	struct PgLogicalRestoreResult *dbs;	/* every database: one result each (ndbs), else NULL */
	size_t ndbs;
} PgLogicalRestoreResult;

/*
 * Restore a logical backup: pre-data (pg_restore), data in parallel (COPY),
 * sequences, large objects, post-data (pg_restore -j), materialized views,
 * ANALYZE (restore.c lists the steps).  An --all backup restores its
 * globals, then every database under its own name (or only `database`,
 * renamed to target_db if given); globals_only restores only the globals.
 * With tables, only the selected tables.  A database created here is
 * dropped again on failure.  Errors: PV_EREFUSED for a database in use
 * (naming the sessions), not empty without clean, or selected tables that
 * exist without clean; PV_ENOTFOUND for a --table pattern matching nothing;
 * PV_EUSAGE for a backup that is not logical.  Free with
 * pglogical_restore_result_clear (also after a failure).
 */
int pglogical_restore(PgLogicalRestoreResult *out, const PgLogicalRestoreOpts *opts);
void pglogical_restore_result_clear(PgLogicalRestoreResult *r);

/*
 * The checks a restore makes on its target before writing anything, shared
 * with restore --dry-run so both refuse with the same words: which database
 * and a maintenance connection (pglogical_target_connect), its other
 * sessions (refused unless terminate; dry never ends them), and whether it
 * holds relations (refused as not empty with refuse).
 */
int pglogical_target_connect(char **out_dbname, PGconn **out_maint, const PgLogicalRestoreOpts *o,
							 const char *target, const char *source_db);
int pglogical_target_sessions(PGconn *maint, const char *dbname, bool terminate, bool dry, int *out_count);
int pglogical_target_relations(PGconn *coord, const char *dbname, bool refuse, long *out_count);

/* ---- export as a plain SQL script (export.c) ---- */

typedef struct PgLogicalExportOpts
{
	Repo *repo;
	const char *backup;			/* id, prefix or "latest" */
	const char *bindir;			/* where pg_restore is, or NULL */
	const char *database;		/* which database of an --all backup (NULL: the only one) */
	PgPatterns tables;			/* --table: only these tables */
	const char *output;			/* a file (written whole, then renamed), or NULL / "-" for stdout */
	const char *compress;		/* NULL or "none", "zstd[:LEVEL]", "gzip[:LEVEL]" */
	bool no_owner, no_privileges;
} PgLogicalExportOpts;

typedef struct PgLogicalExportResult
{
	char id[REPO_BACKUP_ID_LEN + 1];
	char database[256];
	uint64_t tables, rows, sequences, large_objects;
	uint64_t bytes;				/* of SQL */
	uint64_t written;			/* after compression */
	int64_t elapsed_ms;
} PgLogicalExportResult;

/*
 * Write a logical backup (one database) as an SQL script that `psql -f`
 * loads into an empty database: pre-data, COPY blocks, setval, large
 * objects, post-data, materialized view refreshes, the database's settings
 * (ALTER DATABASE / ALTER ROLE ... IN DATABASE ... SET) and comment.  An
 * --all backup without database becomes one script for a new cluster (as
 * pg_dumpall's): the globals, then per database CREATE DATABASE, \connect,
 * its script with owner, connection limit and grants (database "*").
 * Errors: PV_EUSAGE for a backup that is not logical, or --table with an
 * --all backup without database; PV_ENOTFOUND for a --table pattern that
 * matches nothing.  A failed export to a file leaves no file.
 */
int pglogical_export(PgLogicalExportResult *out, const PgLogicalExportOpts *opts);

/* ---- reading a backup's catalog (show, drills) ---- */

/* Calls fn with each line of the catalog item, parsed (lent until fn returns);
   PV_EUSAGE for an --all backup. */
typedef int (*PgLogicalCatalogFn) (const struct json_t *entry, void *payload);
int pglogical_catalog_foreach(Repo *repo, const RepoManifest *m, PgLogicalCatalogFn fn, void *payload);
/* The same for the catalog item named item (one database of an --all backup). */
int pglogical_catalog_foreach_item(Repo *repo, const RepoManifest *m, const char *item, PgLogicalCatalogFn fn,
								   void *payload);

/* Read a whole (small) stream item into out. */
int pglogical_item_read_all(Repo *repo, const RepoManifest *m, const char *name, Buf *out);

#endif
