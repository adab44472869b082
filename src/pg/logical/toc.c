/*
 * toc.c: see toc.h.
 *
 * Two spellings of names appear in `pg_restore -l`: the objects' own
 * entries (TABLE, INDEX, CONSTRAINT "table con", ...) print names raw,
 * while COMMENT, ACL and SECURITY LABEL entries print the SQL they are
 * about ("TABLE name", "COLUMN name.col", "CONSTRAINT con ON name") with
 * names quoted as pg_dump's fmtId() quotes them: only when needed, which
 * depends on the server's keyword list.  Those are matched against both
 * the raw and the always-quoted spelling.
 */
#include "pg/logical/toc.h"

#include "common/sort.h"
#include "common/mem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

/* The descriptions this module keeps, and the longer ones they prefix. */
static const char *const descs[] = {
	"MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "PUBLICATION TABLE", "STATISTICS", "EVENT TRIGGER",
	"SEQUENCE OWNED BY", "SECURITY LABEL", "FK CONSTRAINT", "INDEX ATTACH", "TABLE ATTACH",
	"ROW SECURITY", "SEQUENCE SET", "TABLE DATA", "DEFAULT ACL", "CONSTRAINT", "SEQUENCE",
	"COMMENT", "DEFAULT", "TRIGGER", "POLICY", "INDEX", "TABLE", "VIEW", "RULE", "ACL",
};

/* One name as pg_restore -l prints it (newlines as spaces). */
static char *
sanitize(const char *s)
{
	char *r = pv_strdup(s ? s : "");

	for (char *p = r; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return r;
}

/* "name" with quotes doubled, as fmtId() writes a name that needs quoting. */
static char *
quoted(const char *s)
{
	Buf b = PV_BUF_INIT;

	buf_append_byte(&b, '"');
	for (const char *p = s; *p; p++)
	{
		if (*p == '"')
			buf_append_byte(&b, '"');
		buf_append_byte(&b, (unsigned char) *p);
	}
	buf_append_byte(&b, '"');
	return buf_detach(&b);
}

/*
 * Is rest "SCHEMA PREFIX[X]SUFFIX OWNER"?  With var, X is some non-empty
 * text; without, there is none.  An unknown owner (NULL) matches any.
 */
static bool
match(const char *rest, const char *schema, const char *prefix, const char *suffix, bool var,
	  const char *owner)
{
	size_t ls = strlen(schema), lp = strlen(prefix), lsuf = strlen(suffix), lr = strlen(rest);
	const char *after;

	if (lr < ls + 1 + lp || strncmp(rest, schema, ls) != 0 || rest[ls] != ' ' ||
		strncmp(rest + ls + 1, prefix, lp) != 0)
		return false;
	after = rest + ls + 1 + lp;
	if (owner != NULL)
	{
		size_t lo = strlen(owner);
		size_t left = strlen(after);
		size_t need = lsuf + 1 + lo;

		if (left < need + (var ? 1 : 0) || (!var && left != need))
			return false;
		return strncmp(after + left - need, suffix, lsuf) == 0 && after[left - lo - 1] == ' ' &&
			strcmp(after + left - lo, owner) == 0;
	}
	if (!var)
		return strncmp(after, suffix, lsuf) == 0 && after[lsuf] == ' ';
	if (*after == '\0' || *after == ' ')
		return false;
	if (lsuf == 0)
		return strchr(after, ' ') != NULL;
	{
		const char *p = strstr(after + 1, suffix);

		return p != NULL && p[lsuf] == ' ';
	}
}

/* ... for a COMMENT/ACL/SECURITY LABEL tag "KIND NAME" or "KIND NAME.X" / "KIND X ON NAME". */
static bool
match_about(const char *rest, const char *schema, const char *kind, const char *raw, const char *q,
			int shape, const char *owner)
{
	const char *names[2] = {raw, q};

	for (int i = 0; i < 2; i++)
	{
		char *a;
		bool ok;

		if (shape == 0)			/* KIND NAME */
		{
			a = pv_asprintf("%s %s", kind, names[i]);
			ok = match(rest, schema, a, "", false, owner);
		}
		else if (shape == 1)	/* KIND NAME.X */
		{
			a = pv_asprintf("%s %s.", kind, names[i]);
			ok = match(rest, schema, a, "", true, owner);
		}
		else					/* KIND X ON NAME */
		{
			char *k = pv_asprintf("%s ", kind);

			a = pv_asprintf(" ON %s", names[i]);
			ok = match(rest, schema, k, a, true, owner);
			pv_free(k);
		}
		pv_free(a);
		if (ok)
			return true;
	}
	return false;
}

typedef struct TocT
{
	bool view;
	char *schema, *name, *qname, *owner;
	char **idx, **qidx;
	size_t nidx;
	char **seq, **qseq;
	size_t nseq;
	char **pub, **pubowner;		/* publications naming the table (PUBLICATION TABLE "pub table") */
	size_t npub;
	char **stschema, **st, **qst, **stowner;	/* extended statistics on it */
	size_t nst;
} TocT;

static bool
entry_of_table(const char *desc, const char *rest, const TocT *t)
{
	const char *s = t->schema, *o = t->owner;

	if (t->view && (strcmp(desc, "VIEW") == 0 || strcmp(desc, "MATERIALIZED VIEW") == 0))
		return match(rest, s, t->name, "", false, o);
	if (!t->view &&
		(strcmp(desc, "TABLE") == 0 || strcmp(desc, "TABLE ATTACH") == 0 || strcmp(desc, "ROW SECURITY") == 0))
		return match(rest, s, t->name, "", false, o);
	if (strcmp(desc, "DEFAULT") == 0 || strcmp(desc, "CONSTRAINT") == 0 || strcmp(desc, "FK CONSTRAINT") == 0 ||
		strcmp(desc, "TRIGGER") == 0 || strcmp(desc, "RULE") == 0 || strcmp(desc, "POLICY") == 0)
	{
		char *p = pv_asprintf("%s ", t->name);
		bool ok = match(rest, s, p, "", true, o);

		pv_free(p);
		return ok;
	}
	if (strcmp(desc, "INDEX") == 0 || strcmp(desc, "INDEX ATTACH") == 0)
	{
		for (size_t i = 0; i < t->nidx; i++)
			if (match(rest, s, t->idx[i], "", false, o))
				return true;
		return false;
	}
	if (strcmp(desc, "PUBLICATION TABLE") == 0)
	{
		/* "SCHEMA PUB TABLE PUBOWNER": the table's schema, the publication's owner */
		for (size_t i = 0; i < t->npub; i++)
		{
			char *tag = pv_asprintf("%s %s", t->pub[i], t->name);
			bool ok = match(rest, s, tag, "", false, t->pubowner[i]);

			pv_free(tag);
			if (ok)
				return true;
		}
		return false;
	}
	if (strcmp(desc, "STATISTICS") == 0)
	{
		for (size_t i = 0; i < t->nst; i++)
			if (match(rest, t->stschema[i], t->st[i], "", false, t->stowner[i]))
				return true;
		return false;
	}
	if (strcmp(desc, "SEQUENCE") == 0 || strcmp(desc, "SEQUENCE OWNED BY") == 0)
	{
		for (size_t i = 0; i < t->nseq; i++)
			if (match(rest, s, t->seq[i], "", false, o))
				return true;
		return false;
	}
	if (strcmp(desc, "COMMENT") == 0 || strcmp(desc, "ACL") == 0 || strcmp(desc, "SECURITY LABEL") == 0)
	{
		static const char *const on_kinds[] = {"CONSTRAINT", "TRIGGER", "POLICY", "RULE"};

		if (match_about(rest, s, "TABLE", t->name, t->qname, 0, o) ||
			match_about(rest, s, "COLUMN", t->name, t->qname, 1, o))
			return true;
		if (t->view && (match_about(rest, s, "VIEW", t->name, t->qname, 0, o) ||
						match_about(rest, s, "MATERIALIZED VIEW", t->name, t->qname, 0, o)))
			return true;
		for (size_t i = 0; i < PV_ARRAY_LEN(on_kinds); i++)
			if (match_about(rest, s, on_kinds[i], t->name, t->qname, 2, o))
				return true;
		for (size_t i = 0; i < t->nidx; i++)
			if (match_about(rest, s, "INDEX", t->idx[i], t->qidx[i], 0, o))
				return true;
		for (size_t i = 0; i < t->nseq; i++)
			if (match_about(rest, s, "SEQUENCE", t->seq[i], t->qseq[i], 0, o))
				return true;
		for (size_t i = 0; i < t->nst; i++)
			if (match_about(rest, t->stschema[i], "STATISTICS", t->st[i], t->qst[i], 0, t->stowner[i]))
				return true;
	}
	return false;
}

static bool
entry_is_fk(const char *desc, const char *rest, const PgTocFk *fk)
{
	char *s = sanitize(fk->schema), *t = sanitize(fk->table), *n = sanitize(fk->name);
	char *o = fk->owner ? sanitize(fk->owner) : NULL;
	char *tag = pv_asprintf("%s %s", t, n);
	bool ok = false;

	if (strcmp(desc, "FK CONSTRAINT") == 0)
		ok = match(rest, s, tag, "", false, o);
	else if (strcmp(desc, "COMMENT") == 0)
	{
		char *qt = quoted(t), *qn = quoted(n);
		const char *tn[2] = {t, qt}, *nn[2] = {n, qn};

		for (int i = 0; i < 2 && !ok; i++)
			for (int j = 0; j < 2 && !ok; j++)
			{
				char *a = pv_asprintf("CONSTRAINT %s ON %s", nn[j], tn[i]);

				ok = match(rest, s, a, "", false, o);
				pv_free(a);
			}
		pv_free(qt);
		pv_free(qn);
	}
	pv_free(tag);
	pv_free(s);
	pv_free(t);
	pv_free(n);
	pv_free(o);
	return ok;
}

static void
toct_init(TocT *t, const PgTocTable *src)
{
	t->view = src->view;
	t->schema = sanitize(src->schema);
	t->name = sanitize(src->name);
	t->qname = quoted(t->name);
	t->owner = src->owner ? sanitize(src->owner) : NULL;
	t->nidx = src->nindexes;
	t->idx = pv_calloc(t->nidx + 1, sizeof(char *));
	t->qidx = pv_calloc(t->nidx + 1, sizeof(char *));
	for (size_t i = 0; i < t->nidx; i++)
	{
		t->idx[i] = sanitize(src->indexes[i]);
		t->qidx[i] = quoted(t->idx[i]);
	}
	t->nseq = src->nsequences;
	t->seq = pv_calloc(t->nseq + 1, sizeof(char *));
	t->qseq = pv_calloc(t->nseq + 1, sizeof(char *));
	for (size_t i = 0; i < t->nseq; i++)
	{
		t->seq[i] = sanitize(src->sequences[i]);
		t->qseq[i] = quoted(t->seq[i]);
	}
	t->npub = src->npublications;
	t->pub = pv_calloc(t->npub + 1, sizeof(char *));
	t->pubowner = pv_calloc(t->npub + 1, sizeof(char *));
	for (size_t i = 0; i < t->npub; i++)
	{
		t->pub[i] = sanitize(src->publications[i].name);
		t->pubowner[i] = src->publications[i].owner ? sanitize(src->publications[i].owner) : NULL;
	}
	t->nst = src->nstatistics;
	t->stschema = pv_calloc(t->nst + 1, sizeof(char *));
	t->st = pv_calloc(t->nst + 1, sizeof(char *));
	t->qst = pv_calloc(t->nst + 1, sizeof(char *));
	t->stowner = pv_calloc(t->nst + 1, sizeof(char *));
	for (size_t i = 0; i < t->nst; i++)
	{
		t->stschema[i] = sanitize(src->statistics[i].schema ? src->statistics[i].schema : src->schema);
		t->st[i] = sanitize(src->statistics[i].name);
		t->qst[i] = quoted(t->st[i]);
		t->stowner[i] = src->statistics[i].owner ? sanitize(src->statistics[i].owner) : NULL;
	}
}

static void
toct_free(TocT *t)
{
	for (size_t i = 0; i < t->nidx; i++)
	{
		pv_free(t->idx[i]);
		pv_free(t->qidx[i]);
	}
	for (size_t i = 0; i < t->nseq; i++)
	{
		pv_free(t->seq[i]);
		pv_free(t->qseq[i]);
	}
	pv_free(t->idx);
	pv_free(t->qidx);
	pv_free(t->seq);
	pv_free(t->qseq);
	for (size_t i = 0; i < t->npub; i++)
	{
		pv_free(t->pub[i]);
		pv_free(t->pubowner[i]);
	}
	pv_free(t->pub);
	pv_free(t->pubowner);
	for (size_t i = 0; i < t->nst; i++)
	{
		pv_free(t->stschema[i]);
		pv_free(t->st[i]);
		pv_free(t->qst[i]);
		pv_free(t->stowner[i]);
	}
	pv_free(t->stschema);
	pv_free(t->st);
	pv_free(t->qst);
	pv_free(t->stowner);
	pv_free(t->schema);
	pv_free(t->name);
	pv_free(t->qname);
	pv_free(t->owner);
}

/* Split "ID; TABLEOID OID DESC REST" into desc (one of descs) and rest; false otherwise. */
static bool
line_parse(const char *line, const char **desc, const char **rest)
{
	const char *p = line;
	int fields = 0;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p == line || *p != ';')
		return false;
	p++;
	/* " TABLEOID OID " */
	while (fields < 2)
	{
		if (*p != ' ')
			return false;
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		fields++;
	}
	if (*p != ' ')
		return false;
	p++;
	for (size_t i = 0; i < PV_ARRAY_LEN(descs); i++)
	{
		size_t l = strlen(descs[i]);

		if (strncmp(p, descs[i], l) == 0 && p[l] == ' ')
		{
			*desc = descs[i];
			*rest = p + l + 1;
			return true;
		}
	}
	return false;
}

size_t
pgtoc_filter(Buf *out, const char *list, const PgTocTable *tables, size_t ntables,
			 const PgTocFk *fks, size_t nfks)
{
	TocT *ts = pv_calloc(ntables + 1, sizeof(TocT));
	size_t kept = 0;
	const char *p = list;

	for (size_t i = 0; i < ntables; i++)
		toct_init(&ts[i], &tables[i]);
	while (p != NULL && *p)
	{
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t) (nl - p) : strlen(p);
		char *line = pv_strndup(p, len);
		const char *desc = NULL, *rest = NULL;
		bool keep = false;

		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		if (line_parse(line, &desc, &rest))
		{
			for (size_t i = 0; i < ntables && !keep; i++)
				keep = entry_of_table(desc, rest, &ts[i]);
			for (size_t i = 0; i < nfks && !keep; i++)
				keep = entry_is_fk(desc, rest, &fks[i]);
		}
		if (keep)
		{
			buf_append_str(out, line);
			buf_append_byte(out, '\n');
			kept++;
		}
		pv_free(line);
		p = nl ? nl + 1 : NULL;
	}
	for (size_t i = 0; i < ntables; i++)
		toct_free(&ts[i]);
	pv_free(ts);
	return kept;
}

size_t
pgtoc_table_post_data(Buf *out, const char *list, const PgTocTable *t)
{
	static const char *const own[] = {"INDEX", "CONSTRAINT", "TRIGGER", "RULE", "POLICY"};
	Buf all = PV_BUF_INIT;
	size_t kept = 0;
	const char *p;

	(void) pgtoc_filter(&all, list, t, 1, NULL, 0);
	for (p = buf_cstr(&all); *p;)
	{
		const char *nl = strchr(p, '\n');
		char *line = pv_strndup(p, (size_t) (nl - p));	/* pgtoc_filter ends every line */
		const char *desc = NULL, *rest = NULL;
		bool keep = false;

		if (line_parse(line, &desc, &rest))
		{
			for (size_t i = 0; i < PV_ARRAY_LEN(own) && !keep; i++)
				keep = strcmp(desc, own[i]) == 0;
			if (!keep && (strcmp(desc, "COMMENT") == 0 || strcmp(desc, "SECURITY LABEL") == 0))
			{
				/* "SCHEMA KIND ...": a comment on one of those */
				const char *kind = rest + strlen(t->schema) + 1;

				for (size_t i = 0; i < PV_ARRAY_LEN(own) && !keep; i++)
					keep = strncmp(kind, own[i], strlen(own[i])) == 0 && kind[strlen(own[i])] == ' ';
			}
		}
		if (keep)
		{
			buf_append_str(out, line);
			buf_append_byte(out, '\n');
			kept++;
		}
		pv_free(line);
		p = nl + 1;
	}
	buf_free(&all);
	return kept;
}

size_t
pgtoc_event_triggers(Buf *out, const char *list)
{
	size_t kept = 0;

	for (const char *p = list; p != NULL && *p;)
	{
		const char *nl = strchr(p, '\n');
		char *line = pv_strndup(p, nl ? (size_t) (nl - p) : strlen(p));
		const char *desc = NULL, *rest = NULL;

		/* comments and labels on them: "COMMENT - EVENT TRIGGER name owner" */
		if (line_parse(line, &desc, &rest) &&
			(strcmp(desc, "EVENT TRIGGER") == 0 ||
			 ((strcmp(desc, "COMMENT") == 0 || strcmp(desc, "SECURITY LABEL") == 0) &&
			  strncmp(rest, "- EVENT TRIGGER ", 16) == 0)))
		{
			buf_append_str(out, line);
			buf_append_byte(out, '\n');
			kept++;
		}
		pv_free(line);
		p = nl ? nl + 1 : NULL;
	}
	return kept;
}

size_t
pgtoc_index_attach_split(Buf *attach, Buf *after, const char *list)
{
	size_t n = 0;

	for (const char *p = list; p != NULL && *p;)
	{
		const char *nl = strchr(p, '\n');
		char *line = pv_strndup(p, nl ? (size_t) (nl - p) : strlen(p));
		const char *desc = NULL, *rest = NULL;

		if (line_parse(line, &desc, &rest))
		{
			Buf *to = NULL;

			if (strcmp(desc, "INDEX ATTACH") == 0)
			{
				to = attach;
				n++;
			}
			else if (strcmp(desc, "FK CONSTRAINT") == 0 ||
					 ((strcmp(desc, "COMMENT") == 0 || strcmp(desc, "SECURITY LABEL") == 0) &&
					  strstr(rest, " CONSTRAINT ") != NULL))
				to = after;		/* a comment on another kind that only looks so waits too: harmless */
			if (to != NULL)
			{
				buf_append_str(to, line);
				buf_append_byte(to, '\n');
			}
		}
		pv_free(line);
		p = nl ? nl + 1 : NULL;
	}
	return n;
}

/* The dump id a line starts with, or -1 (also for one too large: pg_dump's are ints). */
static long
line_id(const char *line)
{
	long v = 0;
	const char *p = line;

	while (*p >= '0' && *p <= '9')
	{
		if (v > (LONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	return p > line && *p == ';' ? v : -1;
}

static int
id_cmp(const void *a, const void *b)
{
	long x = *(const long *) a, y = *(const long *) b;

	return x < y ? -1 : x > y;
}

void
pgtoc_subtract(Buf *out, const char *list, const char *remove)
{
	long *ids = NULL;
	size_t n = 0;
	const char *p;

	for (p = remove; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
	{
		long id = line_id(p);

		if (id >= 0)
		{
			ids = pv_realloc(ids, sizeof(long) * (n + 1));
			ids[n++] = id;
		}
	}
	if (n > 0)
		pv_qsort(ids, n, sizeof(long), id_cmp);
	for (p = list; p && *p;)
	{
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t) (nl - p) + 1 : strlen(p);
		long id = line_id(p);

		if (id < 0 || n == 0 || pv_bsearch(&id, ids, n, sizeof(long), id_cmp) == NULL)
		{
			buf_append(out, p, len);
			if (nl == NULL)
				buf_append_byte(out, '\n');
		}
		p += len;
	}
	pv_free(ids);
}
