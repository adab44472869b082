/*
 * toc.h: choosing the entries of a schema archive (pg_dump custom format)
 * that belong to a set of tables, for `pgvault restore --table` and
 * `pgvault export --table`.
 *
 * pg_restore -L LIST restores only the entries LIST names (by dump id), so
 * selecting tables means writing such a list: read `pg_restore -l` of the
 * schema item and keep, for each selected table, its TABLE (and TABLE
 * ATTACH), its owned sequences (SEQUENCE, SEQUENCE OWNED BY), column
 * DEFAULTs, CONSTRAINTs, FK CONSTRAINTs, INDEXes (and INDEX ATTACH),
 * TRIGGERs, RULEs, POLICYs, ROW SECURITY, its extended STATISTICS, its
 * membership of publications (PUBLICATION TABLE), and the COMMENT, ACL and
 * SECURITY LABEL entries on all of those.  Extra foreign keys of other
 * tables (those that reference a selected table and must be dropped and
 * re-made around a --clean) can be kept too, and so can views and
 * materialized views (VIEW, MATERIALIZED VIEW, their indexes, triggers,
 * rules, comments and grants), given as tables with view set.
 *
 * A line of `pg_restore -l` reads "ID; TABLEOID OID DESC SCHEMA TAG OWNER"
 * where DESC may hold spaces ("FK CONSTRAINT") and so may SCHEMA, TAG and
 * OWNER (names are printed unquoted, with newlines turned into spaces).
 * Matching is therefore done against what the line must be for a known
 * table: "SCHEMA TAG OWNER" compared whole when the table's owner is known
 * (then a table "a" never picks up the entries of a table "a b"), by
 * prefix otherwise.  Index names must be given: an INDEX entry's tag does
 * not name its table.  One ambiguity is left: the two-part tags of
 * CONSTRAINT, TRIGGER, POLICY, RULE and DEFAULT entries ("table name") of a
 * table "a b" also read as entries of a table "a" named "b ..." with the
 * same owner.
 *
 * Ownership: everything is borrowed; the result is appended to a Buf.
 */
#ifndef PV_PG_LOGICAL_TOC_H
#define PV_PG_LOGICAL_TOC_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* A named object of the table's: a publication (schema NULL) or extended statistics. */
typedef struct PgTocObject
{
	const char *schema;
	const char *name;
	const char *owner;			/* the object's owner (not the table's), or NULL */
} PgTocObject;

typedef struct PgTocTable
{
	const char *schema;
	const char *name;
	const char *owner;			/* NULL: unknown (prefix matching) */
	const char *const *indexes;	/* index names (same schema) */
	size_t nindexes;
	const char *const *sequences;	/* owned sequence names (same schema) */
	size_t nsequences;
	const PgTocObject *publications;	/* publications naming the table */
	size_t npublications;
	const PgTocObject *statistics;	/* extended statistics on the table */
	size_t nstatistics;
	bool view;					/* a view or materialized view (VIEW entries, not TABLE) */
} PgTocTable;

/* A foreign key of another table, kept with the selection. */
typedef struct PgTocFk
{
	const char *schema;
	const char *table;
	const char *name;
	const char *owner;			/* the table's owner, or NULL */
} PgTocFk;

/*
 * Append to out the lines of list (the text of `pg_restore -l`) that
 * belong to the tables or are one of the foreign keys; returns how many.
 */
size_t pgtoc_filter(Buf *out, const char *list, const PgTocTable *tables, size_t ntables,
					const PgTocFk *fks, size_t nfks);

/*
 * The entries of one table (list as for pgtoc_filter) that can be restored
 * as soon as its rows are in, whatever other tables are doing: INDEX,
 * CONSTRAINT (no foreign keys), TRIGGER, RULE, POLICY and the COMMENT and
 * SECURITY LABEL entries on those.  Appended to out; returns how many.
 */
size_t pgtoc_table_post_data(Buf *out, const char *list, const PgTocTable *t);

/*
 * The EVENT TRIGGER entries of list and the COMMENT and SECURITY LABEL
 * entries on them, appended to out; returns how many.  A restore makes
 * them last, as pg_dump orders them, so that they do not fire on what the
 * restore itself does (REFRESH MATERIALIZED VIEW is DDL to them).
 */
size_t pgtoc_event_triggers(Buf *out, const char *list);

/*
 * pg_restore -j 15 runs INDEX ATTACH entries in parallel with no lock
 * ordering between them, and two attachments into one partitioned index
 * tree can deadlock (the one completing a level locks the index above).
 * Append to attach the INDEX ATTACH lines of list (returns how many), and
 * to after the entries that may need them done: FK CONSTRAINTs (one
 * referencing a partitioned table needs its unique index valid, i.e. every
 * attachment made) and the COMMENT and SECURITY LABEL entries on
 * constraints.  A restore runs the rest in parallel, attach serially, then
 * after in parallel.
 */
size_t pgtoc_index_attach_split(Buf *attach, Buf *after, const char *list);

/* Append to out the lines of list whose dump id is not that of a line of remove. */
void pgtoc_subtract(Buf *out, const char *list, const char *remove);

#endif
