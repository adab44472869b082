/*
 * filter.h: pg_dump's object filters (-t/-T/-n/-N/--exclude-table-data and
 * --strict-names), with pg_dump's pattern rules, so that a pgvault logical
 * backup selects exactly what `pg_dump` with the same switches would.
 *
 * Patterns follow processSQLNamePattern (PostgreSQL's fe_utils): outside
 * double quotes letters fold to lower case, `*` matches any text, `?` one
 * character, `.` separates database, schema and name, other characters pass
 * through as regular-expression text; inside double quotes everything is
 * literal ("" is a quote).  Matching is done by the server (`~`), as pg_dump
 * does; a relation pattern without a schema matches only relations visible
 * in the default search_path.
 *
 * Ownership: PgFilterSel is the caller's (pgfilter_sel_clear).  PgFilter
 * only borrows its pattern strings.
 */
#ifndef PV_PG_LOGICAL_FILTER_H
#define PV_PG_LOGICAL_FILTER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct PgPatterns
{
	const char **v;
	int n;
} PgPatterns;

typedef struct PgFilter
{
	PgPatterns tables;			/* -t */
	PgPatterns exclude_tables;	/* -T */
	PgPatterns schemas;			/* -n */
	PgPatterns exclude_schemas;	/* -N */
	PgPatterns exclude_table_data;	/* --exclude-table-data */
	bool strict_names;			/* every include pattern must match something */
} PgFilter;

/* Append a pattern (the string is borrowed). */
void pgfilter_patterns_add(PgPatterns *p, const char *pattern);
void pgfilter_patterns_clear(PgPatterns *p);
void pgfilter_clear(PgFilter *f);
/* True when no -t and no -n was given: pg_dump's "include everything". */
bool pgfilter_includes_everything(const PgFilter *f);

/*
 * Convert one pattern into anchored regular expressions "^(...)$", one per
 * dotted part, as processSQLNamePattern does.  maxdots is 2 for relations
 * (db.schema.name) and 1 for schemas (db.schema).  Parts left unconstrained
 * ("" or "*") are NULL.  PV_EUSAGE "improper qualified name (too many dotted
 * names): %s".  Outputs are the caller's (pv_free).
 */
int pgfilter_pattern_regex(char **out_db, char **out_schema, char **out_name,
						   const char *pattern, int maxdots);

/*
 * How many separating dots (outside double quotes) pattern has: a relation
 * pattern with at least one names its schema, even as "*" ("*.t" matches t
 * in every schema; "t" only where the search_path sees it).
 */
int pgfilter_pattern_dots(const char *pattern);

typedef struct PgOidSet
{
	uint32_t *v;				/* sorted, unique */
	size_t n;
	size_t cap;
} PgOidSet;

bool pgfilter_oidset_has(const PgOidSet *s, uint32_t oid);

/* The filter resolved against one database's catalog. */
typedef struct PgFilterSel
{
	bool everything;			/* no -t, no -n */
	bool have_tables;			/* -t given */
	bool have_schemas;			/* -n given */
	PgOidSet tables, exclude_tables, schemas, exclude_schemas, exclude_data;
} PgFilterSel;

/*
 * Resolve every pattern with queries on conn (which may be inside the
 * backup's snapshot transaction; search_path is reset for the pattern
 * queries and set back to '' after).  Errors as pg_dump's: with
 * strict_names, "no matching tables were found for pattern '%s'" /
 * "no matching schemas were found for pattern '%s'"; always, when every
 * -t (or -n) pattern matched nothing, "no matching tables were found" /
 * "no matching schemas were found" (PV_ENOTFOUND); a database part naming
 * another database: PV_EUSAGE "cross-database references are not
 * implemented: %s".
 */
int pgfilter_resolve(PgFilterSel *out, PGconn *conn, const PgFilter *f);
void pgfilter_sel_clear(PgFilterSel *s);

/* Is a relation (its oid and its schema's oid) part of the backup? */
bool pgfilter_sel_relation(const PgFilterSel *s, uint32_t reloid, uint32_t nspoid);
/* ... and its data (not excluded by --exclude-table-data)? */
bool pgfilter_sel_data(const PgFilterSel *s, uint32_t reloid, uint32_t nspoid);

#endif
