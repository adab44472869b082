/*
 * archive.h: what restore and export share about a logical backup's
 * contents (internal to src/pg/logical):
 *
 *  - which database of the backup (one-database backups have one; --all
 *    backups one per database, items under a prefix);
 *  - the catalog loaded as JSON entries, and the selection of tables by
 *    pg_dump patterns (--table), resolved offline against the catalog;
 *  - the schema item as a temporary file for pg_restore, and a pg_restore
 *    -L list file that keeps only the selected tables' entries (toc.h);
 *  - the SQL that gives a large object its owner, comment and grants.
 *
 * Ownership: PgArchiveDb lends into the manifest (valid while it is);
 * PgCatalog owns its entries (pgcatalog_clear); paths returned are the
 * caller's (unlink, then pv_free).
 */
#ifndef PV_PG_LOGICAL_ARCHIVE_H
#define PV_PG_LOGICAL_ARCHIVE_H

#include "common/buf.h"
#include "pg/logical/filter.h"
#include "pg/tools.h"
#include "repo/manifest.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct Repo Repo;
struct json_t;

/* One database of a backup. */
typedef struct PgArchiveDb
{
	const struct json_t *meta;	/* its metadata (the manifest's, or an element of "databases") */
	const char *name;			/* the source database's name */
	const char *prefix;			/* of its items: "" or db/"name"/ */
	char catalog_item[512];
	char schema_item[512];		/* "" when the backup has no schema (data only) */
} PgArchiveDb;

/* Is this an --all backup (several databases and globals)? */
bool pgarchive_is_all(const RepoManifest *m);

/* Does this logical backup hold database name (a backup of it, or an --all one with it)? */
bool pgarchive_holds_database(const RepoManifest *m, const char *name);

/*
 * The database called name (NULL: the only one; an --all backup then
 * needs a name, PV_EUSAGE listing them).  PV_ENOTFOUND when there is none
 * by that name.
 */
int pgarchive_db(PgArchiveDb *out, const RepoManifest *m, const char *name);

/* The catalog of one database, as entries by kind (lent until clear). */
typedef struct PgCatalog
{
	struct json_t *tables;		/* array of "table" entries */
	struct json_t *sequences;
	struct json_t *matviews;
	struct json_t *large_objects;	/* the "large_objects" entry, or NULL */
} PgCatalog;

int pgcatalog_load(PgCatalog *out, Repo *repo, const RepoManifest *m, const PgArchiveDb *db);
void pgcatalog_clear(PgCatalog *c);

/*
 * Select tables by pg_dump patterns: *out_sel gets one bool per entry of
 * c->tables.  A pattern without a schema ("t", not "*.t") matches tables in
 * the schemas of the source database's default search_path (as pg_dump's does; recorded
 * at backup time, "public" for older backups).  Every pattern must match
 * a table: PV_ENOTFOUND "no matching tables were found for pattern '%s'".
 * The partitions (at any depth) of a selected partitioned table are
 * selected with it (catalogs that record "partition_of").
 */
int pgcatalog_select(bool **out_sel, const PgCatalog *c, const PgArchiveDb *db, const PgPatterns *patterns);

/* Is sequence entry seq owned by a selected table? */
bool pgcatalog_seq_selected(const PgCatalog *c, const bool *sel, const struct json_t *seq);

/* Store an item of the backup in a new temporary file; *out_path is the caller's. */
int pgarchive_item_to_file(char **out_path, Repo *repo, const RepoManifest *m, const char *item);

/*
 * Write a pg_restore -L list keeping only the selected tables' entries of
 * the archive (and, with_referencing, for a --clean that drops and makes
 * them again: the foreign keys of other tables that reference them and the
 * views built on them): *out_path is the caller's; *out_kept (may be NULL)
 * gets the number of entries kept.  A catalog without index names
 * (older backups) keeps no indexes; a warning says so.
 */
int pgarchive_toc_list(char **out_path, size_t *out_kept, const PgTool *pg_restore, const char *archive,
					   const PgCatalog *c, const bool *sel, bool with_referencing);

/* Run pg_restore with args then the archive; capture (may be NULL) gets its stdout. */
int pgarchive_pg_restore(const PgTool *pg_restore, const char *const *args, const char *archive,
						 const char *password, Buf *capture);

/*
 * The SQL that gives large object oid the owner, comment and grants of its
 * metadata JSON ({"owner","comment","acl"}, see logical.h).  PV_ECORRUPT
 * when the JSON does not parse.
 */
int pgarchive_lo_meta_sql(Buf *out, unsigned long oid, const char *json, bool no_owner, bool no_privileges);

/* 'text' as an SQL literal (standard_conforming_strings on). */
void pgarchive_literal(Buf *out, const char *s);

#endif
