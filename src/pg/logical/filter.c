/*
 * filter.c: see filter.h.  The pattern conversion mirrors
 * patternToSQLRegex() of PostgreSQL's src/fe_utils/string_utils.c (with
 * force_escape off, as pg_dump calls it), so `pgvault backup --logical -t`
 * and `pg_dump -t` agree on every pattern.
 */
#include "pg/logical/filter.h"

#include "common/sort.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "pg/conn.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void
pgfilter_patterns_add(PgPatterns *p, const char *pattern)
{
	p->v = pv_realloc(p->v, sizeof(*p->v) * (size_t) (p->n + 1));
	p->v[p->n++] = pattern;
}

void
pgfilter_patterns_clear(PgPatterns *p)
{
	pv_free(p->v);
	p->v = NULL;
	p->n = 0;
}

void
pgfilter_clear(PgFilter *f)
{
	pgfilter_patterns_clear(&f->tables);
	pgfilter_patterns_clear(&f->exclude_tables);
	pgfilter_patterns_clear(&f->schemas);
	pgfilter_patterns_clear(&f->exclude_schemas);
	pgfilter_patterns_clear(&f->exclude_table_data);
}

bool
pgfilter_includes_everything(const PgFilter *f)
{
	return f->tables.n == 0 && f->schemas.n == 0;
}

/* Finish one dotted part: NULL when it constrains nothing. */
static char *
part_finish(Buf *b)
{
	char *s;

	if (b->len == 0 || strcmp(buf_cstr(b), ".*") == 0)
	{
		buf_free(b);
		return NULL;
	}
	s = pv_asprintf("^(%s)$", buf_cstr(b));
	buf_free(b);
	return s;
}

int
pgfilter_pattern_regex(char **out_db, char **out_schema, char **out_name,
					   const char *pattern, int maxdots)
{
	Buf parts[3] = {PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT};
	char *res[3] = {NULL, NULL, NULL};
	bool inquotes = false;
	int dots = 0;
	const char *cp = pattern;

	while (*cp)
	{
		char ch = *cp;
		Buf *cur = &parts[dots];

		if (ch == '"')
		{
			if (inquotes && cp[1] == '"')
			{
				buf_append_byte(cur, '"');
				cp++;
			}
			else
				inquotes = !inquotes;
		}
		else if (!inquotes && isupper((unsigned char) ch))
			buf_append_byte(cur, (unsigned char) tolower((unsigned char) ch));
		else if (!inquotes && ch == '*')
			buf_append_str(cur, ".*");
		else if (!inquotes && ch == '?')
			buf_append_byte(cur, '.');
		else if (!inquotes && ch == '.')
		{
			if (++dots > maxdots)
			{
				for (int i = 0; i < 3; i++)
					buf_free(&parts[i]);
				return pv_error_set(PV_EUSAGE, "improper qualified name (too many dotted names): %s",
									pattern);
			}
		}
		else if (ch == '$')
			buf_append_str(cur, "\\$");
		else
		{
			if (inquotes && strchr("|*+?()[]{}.^$\\", ch))
				buf_append_byte(cur, '\\');
			else if (ch == '[' && cp[1] == ']')
				buf_append_byte(cur, '\\');
			buf_append_byte(cur, (unsigned char) ch);
		}
		cp++;
	}

	/* The last part is the name; the one before it the schema; then the database. */
	for (int i = 0; i <= dots; i++)
		res[maxdots - dots + i] = part_finish(&parts[i]);
	for (int i = dots + 1; i < 3; i++)
		buf_free(&parts[i]);
	if (maxdots == 2)
	{
		*out_db = res[0];
		*out_schema = res[1];
		*out_name = res[2];
	}
	else
	{
		*out_db = res[0];
		*out_schema = res[1];
		*out_name = NULL;
		pv_free(res[2]);
	}
	return PV_OK;
}

int
pgfilter_pattern_dots(const char *pattern)
{
	bool inquotes = false;
	int dots = 0;

	for (const char *cp = pattern; *cp; cp++)
	{
		if (*cp == '"')
		{
			if (inquotes && cp[1] == '"')
				cp++;
			else
				inquotes = !inquotes;
		}
		else if (!inquotes && *cp == '.')
			dots++;
	}
	return dots;
}

/* ---- oid sets ---- */

static int
oid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

static void
oidset_add(PgOidSet *s, uint32_t oid)
{
	if (s->n == s->cap)
	{
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = pv_realloc(s->v, s->cap * sizeof(uint32_t));
	}
	s->v[s->n++] = oid;
}

static void
oidset_sort(PgOidSet *s)
{
	size_t j = 0;

	if (s->n == 0)
		return;
	pv_qsort(s->v, s->n, sizeof(uint32_t), oid_cmp);
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i] != s->v[j])
			s->v[++j] = s->v[i];
	s->n = j + 1;
}

bool
pgfilter_oidset_has(const PgOidSet *s, uint32_t oid)
{
	return s->n > 0 && pv_bsearch(&oid, s->v, s->n, sizeof(uint32_t), oid_cmp) != NULL;
}

static void
oidset_free(PgOidSet *s)
{
	pv_free(s->v);
	memset(s, 0, sizeof(*s));
}

void
pgfilter_sel_clear(PgFilterSel *s)
{
	oidset_free(&s->tables);
	oidset_free(&s->exclude_tables);
	oidset_free(&s->schemas);
	oidset_free(&s->exclude_schemas);
	oidset_free(&s->exclude_data);
}

/* ---- resolving patterns on the server ---- */

/* Add the oids matching one pattern; *out_n gets how many matched. */
static int
match_pattern(PgOidSet *set, size_t *out_n, PGconn *conn, const char *pattern, bool relation)
{
	char *db = NULL, *schema = NULL, *name = NULL;
	const char *params[3];
	int np = 0;
	Buf sql = PV_BUF_INIT;
	PGresult *r = NULL;
	int rc;

	*out_n = 0;
	if ((rc = pgfilter_pattern_regex(&db, &schema, &name, pattern, relation ? 2 : 1)) < 0)
		goto done;
	if (db != NULL)
	{
		char *ok = NULL;
		const char *p1[1] = {db};

		if ((rc = pgconn_query_value(&ok, conn, "SELECT (pg_catalog.current_database() OPERATOR(pg_catalog.~) $1)::text",
									 1, p1)) < 0)
			goto done;
		if (ok == NULL || strcmp(ok, "true") != 0)
		{
			pv_free(ok);
			rc = pv_error_set(PV_EUSAGE, "cross-database references are not implemented: %s", pattern);
			goto done;
		}
		pv_free(ok);
	}
	if (relation)
	{
		buf_append_str(&sql, "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
					   " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
					   " WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r','S','v','m','f','p']::\"char\"[])");
		if (schema != NULL)
		{
			params[np++] = schema;
			buf_printf(&sql, " AND n.nspname OPERATOR(pg_catalog.~) $%d", np);
		}
		if (name != NULL)
		{
			params[np++] = name;
			buf_printf(&sql, " AND c.relname OPERATOR(pg_catalog.~) $%d", np);
		}
		if (schema == NULL && pgfilter_pattern_dots(pattern) == 0)
			buf_append_str(&sql, " AND pg_catalog.pg_table_is_visible(c.oid)");
	}
	else
	{
		buf_append_str(&sql, "SELECT n.oid FROM pg_catalog.pg_namespace n WHERE true");
		if (schema != NULL)
		{
			params[np++] = schema;
			buf_printf(&sql, " AND n.nspname OPERATOR(pg_catalog.~) $%d", np);
		}
	}
	if ((rc = pgconn_query(&r, conn, 1, buf_cstr(&sql), np, params)) < 0)
		goto done;
	for (int i = 0; i < PQntuples(r); i++)
		oidset_add(set, (uint32_t) strtoul(PQgetvalue(r, i, 0), NULL, 10));
	*out_n = (size_t) PQntuples(r);
	rc = PV_OK;
done:
	PQclear(r);
	buf_free(&sql);
	pv_free(db);
	pv_free(schema);
	pv_free(name);
	return rc;
}

static int
match_list(PgOidSet *set, PGconn *conn, const PgPatterns *p, bool relation, bool strict)
{
	size_t total = 0;
	int rc;

	for (int i = 0; i < p->n; i++)
	{
		size_t n;

		if ((rc = match_pattern(set, &n, conn, p->v[i], relation)) < 0)
			return rc;
		if (strict && n == 0)
			return pv_error_set(PV_ENOTFOUND, "no matching %s were found for pattern '%s'",
								relation ? "tables" : "schemas", p->v[i]);
		total += n;
	}
	oidset_sort(set);
	(void) total;
	return PV_OK;
}

int
pgfilter_resolve(PgFilterSel *out, PGconn *conn, const PgFilter *f)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->everything = pgfilter_includes_everything(f);
	out->have_tables = f->tables.n > 0;
	out->have_schemas = f->schemas.n > 0;
	/* pg_dump resolves patterns with the default search_path (RESET). */
	if ((rc = pgconn_exec(conn, "RESET search_path")) < 0)
		goto done;
	if ((rc = match_list(&out->schemas, conn, &f->schemas, false, f->strict_names)) < 0 ||
		(rc = match_list(&out->exclude_schemas, conn, &f->exclude_schemas, false, false)) < 0 ||
		(rc = match_list(&out->tables, conn, &f->tables, true, f->strict_names)) < 0 ||
		(rc = match_list(&out->exclude_tables, conn, &f->exclude_tables, true, false)) < 0 ||
		(rc = match_list(&out->exclude_data, conn, &f->exclude_table_data, true, false)) < 0)
		goto done;
	if (out->have_schemas && out->schemas.n == 0)
	{
		rc = pv_error_set(PV_ENOTFOUND, "no matching schemas were found");
		goto done;
	}
	if (out->have_tables && out->tables.n == 0)
	{
		rc = pv_error_set(PV_ENOTFOUND, "no matching tables were found");
		goto done;
	}
	rc = PV_OK;
done:
	{
		int rc2 = pgconn_exec(conn, "SELECT pg_catalog.set_config('search_path', '', false)");

		if (rc == PV_OK)
			rc = rc2;
	}
	if (rc < 0)
	{
		PvErrorSave e;

		pv_error_save(&e);
		pgfilter_sel_clear(out);
		pv_error_restore(&e);
	}
	return rc;
}

bool
pgfilter_sel_relation(const PgFilterSel *s, uint32_t reloid, uint32_t nspoid)
{
	bool in;

	/* As pg_dump: -t alone decides when given (-n/-N then have no effect); -T always wins. */
	if (s->have_tables)
		in = pgfilter_oidset_has(&s->tables, reloid);
	else if (s->have_schemas)
		in = pgfilter_oidset_has(&s->schemas, nspoid) && !pgfilter_oidset_has(&s->exclude_schemas, nspoid);
	else
		in = !pgfilter_oidset_has(&s->exclude_schemas, nspoid);
	return in && !pgfilter_oidset_has(&s->exclude_tables, reloid);
}

bool
pgfilter_sel_data(const PgFilterSel *s, uint32_t reloid, uint32_t nspoid)
{
	return pgfilter_sel_relation(s, reloid, nspoid) && !pgfilter_oidset_has(&s->exclude_data, reloid);
}
