/*
 * globals.h: the cluster-wide objects of an `--all` logical backup (roles,
 * role memberships, role settings, tablespaces), as the output of
 * `pg_dumpall --globals-only`, split into statements that know which role
 * or tablespace they are about, so that a restore can create what is
 * missing and leave alone what exists.
 *
 * The script is pg_dumpall's: one SQL statement after another, "--"
 * comments, and psql meta-command lines (\restrict KEY, \connect) which are
 * not SQL and are dropped.  Statements are classified by their first words:
 *
 *   SET ...                                   PGG_SET
 *   CREATE ROLE r / ALTER ROLE r ... /        PGG_ROLE (object r; create for CREATE)
 *     COMMENT ON ROLE r / SECURITY LABEL ... ON ROLE r
 *   GRANT a TO b ...                          PGG_MEMBERSHIP (object a, member b)
 *   CREATE TABLESPACE t / ALTER TABLESPACE t  PGG_TABLESPACE (object t)
 *     / COMMENT ON TABLESPACE t / GRANT|REVOKE ... ON TABLESPACE t ...
 *     / SECURITY LABEL ... ON TABLESPACE t
 *   anything else                             PGG_OTHER
 *
 * Names are returned unquoted (as the catalogs spell them).
 * Ownership: pgglobals_parse hands out an array the caller frees with
 * pgglobals_free.
 */
#ifndef PV_PG_LOGICAL_GLOBALS_H
#define PV_PG_LOGICAL_GLOBALS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum PgGlobalKind
{
	PGG_OTHER,
	PGG_SET,
	PGG_ROLE,
	PGG_MEMBERSHIP,
	PGG_TABLESPACE,
} PgGlobalKind;

typedef struct PgGlobalStmt
{
	PgGlobalKind kind;
	char *sql;					/* the statement, without its final ';' */
	char *object;				/* role or tablespace (the granted role), or NULL */
	char *member;				/* PGG_MEMBERSHIP: the role that becomes a member */
	bool create;				/* CREATE ROLE / CREATE TABLESPACE */
} PgGlobalStmt;

/* Split and classify script (len bytes).  Never fails: malformed text becomes PGG_OTHER. */
void pgglobals_parse(PgGlobalStmt **out, size_t *out_n, const char *script, size_t len);
void pgglobals_free(PgGlobalStmt *stmts, size_t n);

/*
 * "SET name TO value" for one "name=value" element of pg_db_role_setting's
 * setconfig, quoted as pg_dump quotes it: list-valued settings
 * (search_path, temp_tablespaces, *_preload_libraries) element by element.
 * Appended to out; the name is quoted only when it must be.
 */
struct Buf;
void pgglobals_set_clause(struct Buf *out, const char *name_eq_value);

#endif
