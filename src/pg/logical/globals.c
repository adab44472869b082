/*
 * globals.c: see globals.h.  A small SQL scanner: enough of PostgreSQL's
 * lexical rules (quotes, quoted identifiers, comments, dollar quotes) to
 * find where pg_dumpall's statements end and what their first words are.
 */
#include "pg/logical/globals.h"

#include "common/buf.h"
#include "common/mem.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* ---- splitting ---- */

/* Length of a dollar-quote tag at p ("$$", "$tag$"), or 0. */
static size_t
dollar_tag(const char *p, const char *end)
{
	const char *q = p + 1;

	if (*p != '$')
		return 0;
	while (q < end && (isalnum((unsigned char) *q) || *q == '_'))
		q++;
	if (q < end && *q == '$' && !(q > p + 1 && isdigit((unsigned char) p[1])))
		return (size_t) (q - p + 1);
	return 0;
}

static bool
only_space(const Buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (!isspace(b->data[i]))
			return false;
	return true;
}

static void stmt_add(PgGlobalStmt **out, size_t *n, Buf *sql);

void
pgglobals_parse(PgGlobalStmt **out, size_t *out_n, const char *script, size_t len)
{
	const char *p = script, *end = script + len;
	Buf cur = PV_BUF_INIT;

	*out = NULL;
	*out_n = 0;
	while (p < end)
	{
		char c = *p;

		if (c == '\\' && only_space(&cur))
		{
			/* a psql meta-command: the rest of the line */
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		if (c == '-' && p + 1 < end && p[1] == '-')
		{
			while (p < end && *p != '\n')
				p++;
			continue;
		}
		if (c == '/' && p + 1 < end && p[1] == '*')
		{
			const char *q = p + 2;

			while (q + 1 < end && !(q[0] == '*' && q[1] == '/'))
				q++;
			p = q + 1 < end ? q + 2 : end;
			buf_append_byte(&cur, ' ');
			continue;
		}
		if (c == '\'' || c == '"')
		{
			/* E'...' strings treat backslashes as escapes */
			bool esc = c == '\'' && cur.len > 0 && (cur.data[cur.len - 1] == 'E' || cur.data[cur.len - 1] == 'e') &&
				(cur.len == 1 || !(isalnum(cur.data[cur.len - 2]) || cur.data[cur.len - 2] == '_'));
			const char *q = p + 1;

			for (; q < end; q++)
			{
				if (esc && *q == '\\' && q + 1 < end)
				{
					q++;
					continue;
				}
				if (*q == c)
				{
					if (q + 1 < end && q[1] == c)
					{
						q++;
						continue;
					}
					break;
				}
			}
			q = q < end ? q + 1 : end;
			buf_append(&cur, p, (size_t) (q - p));
			p = q;
			continue;
		}
		if (c == '$')
		{
			size_t tl = dollar_tag(p, end);

			if (tl > 0)
			{
				const char *q = p + tl;

				while (q < end && !((size_t) (end - q) >= tl && strncmp(q, p, tl) == 0))
					q++;
				q = q < end ? q + tl : end;
				buf_append(&cur, p, (size_t) (q - p));
				p = q;
				continue;
			}
		}
		if (c == ';')
		{
			stmt_add(out, out_n, &cur);
			p++;
			continue;
		}
		buf_append_byte(&cur, (unsigned char) c);
		p++;
	}
	stmt_add(out, out_n, &cur);
	buf_free(&cur);
}

/* ---- classifying ---- */

/* The next token: an identifier (quoted ones unquoted) or one other character. */
static const char *
token_next(const char *p, char **tok, bool *was_quoted)
{
	Buf b = PV_BUF_INIT;

	*was_quoted = false;
	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
	{
		*tok = NULL;
		return p;
	}
	if (*p == '"')
	{
		p++;
		while (*p)
		{
			if (*p == '"')
			{
				if (p[1] == '"')
				{
					buf_append_byte(&b, '"');
					p += 2;
					continue;
				}
				p++;
				break;
			}
			buf_append_byte(&b, (unsigned char) *p++);
		}
		*was_quoted = true;
	}
	else if (isalnum((unsigned char) *p) || *p == '_' || (unsigned char) *p >= 0x80)
	{
		while (*p && (isalnum((unsigned char) *p) || *p == '_' || *p == '$' || (unsigned char) *p >= 0x80))
			buf_append_byte(&b, (unsigned char) *p++);
	}
	else
		buf_append_byte(&b, (unsigned char) *p++);
	*tok = buf_detach(&b);
	return p;
}

/* Up to max tokens of sql; returns how many.  Unquoted words keep their case (compare with strcasecmp). */
static int
tokens(const char *sql, char **v, int max)
{
	const char *p = sql;
	int n = 0;

	while (n < max)
	{
		bool q;

		p = token_next(p, &v[n], &q);
		if (v[n] == NULL)
			break;
		n++;
	}
	return n;
}

static bool
kw(const char *tok, const char *word)
{
	return tok != NULL && strcasecmp(tok, word) == 0;
}

static void
classify(PgGlobalStmt *s)
{
	char *t[64] = {0};
	int n = tokens(s->sql, t, 64);
	int i;

	s->kind = PGG_OTHER;
	if (n >= 1 && kw(t[0], "SET"))
		s->kind = PGG_SET;
	else if (n >= 3 && (kw(t[0], "CREATE") || kw(t[0], "ALTER")) && (kw(t[1], "ROLE") || kw(t[1], "TABLESPACE")))
	{
		s->kind = kw(t[1], "ROLE") ? PGG_ROLE : PGG_TABLESPACE;
		s->object = pv_strdup(t[2]);
		s->create = kw(t[0], "CREATE");
	}
	else if (n >= 4 && kw(t[0], "COMMENT") && kw(t[1], "ON") && (kw(t[2], "ROLE") || kw(t[2], "TABLESPACE")))
	{
		s->kind = kw(t[2], "ROLE") ? PGG_ROLE : PGG_TABLESPACE;
		s->object = pv_strdup(t[3]);
	}
	else if (n >= 4 && kw(t[0], "SECURITY") && kw(t[1], "LABEL"))
	{
		for (i = 2; i + 2 < n; i++)
			if (kw(t[i], "ON") && (kw(t[i + 1], "ROLE") || kw(t[i + 1], "TABLESPACE")))
			{
				s->kind = kw(t[i + 1], "ROLE") ? PGG_ROLE : PGG_TABLESPACE;
				s->object = pv_strdup(t[i + 2]);
				break;
			}
	}
	else if (n >= 4 && (kw(t[0], "GRANT") || kw(t[0], "REVOKE")))
	{
		for (i = 1; i < n; i++)
			if (kw(t[i], "ON") || kw(t[i], "TO") || kw(t[i], "FROM"))
				break;
		if (i + 2 < n && kw(t[i], "ON") && kw(t[i + 1], "TABLESPACE"))
		{
			s->kind = PGG_TABLESPACE;
			s->object = pv_strdup(t[i + 2]);
		}
		else if (i == 2 && i + 1 < n && kw(t[0], "GRANT") && kw(t[i], "TO"))
		{
			s->kind = PGG_MEMBERSHIP;
			s->object = pv_strdup(t[1]);
			s->member = pv_strdup(t[i + 1]);
		}
	}
	for (i = 0; i < n; i++)
		pv_free(t[i]);
}

static void
stmt_add(PgGlobalStmt **out, size_t *n, Buf *sql)
{
	size_t a = 0, b = sql->len;
	PgGlobalStmt *s;

	while (a < b && isspace(sql->data[a]))
		a++;
	while (b > a && isspace(sql->data[b - 1]))
		b--;
	if (a == b)
	{
		buf_reset(sql);
		return;
	}
	*out = pv_realloc(*out, sizeof(PgGlobalStmt) * (*n + 1));
	s = &(*out)[(*n)++];
	memset(s, 0, sizeof(*s));
	s->sql = pv_strndup((const char *) sql->data + a, b - a);
	classify(s);
	buf_reset(sql);
}

void
pgglobals_free(PgGlobalStmt *stmts, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		pv_free(stmts[i].sql);
		pv_free(stmts[i].object);
		pv_free(stmts[i].member);
	}
	pv_free(stmts);
}

/* ---- settings ---- */

static void
literal(Buf *out, const char *s, size_t len)
{
	buf_append_byte(out, '\'');
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '\'')
			buf_append_byte(out, '\'');
		buf_append_byte(out, (unsigned char) s[i]);
	}
	buf_append_byte(out, '\'');
}

static bool
guc_is_list(const char *name, size_t len)
{
	static const char *const lists[] = {"search_path", "temp_tablespaces", "session_preload_libraries",
		"shared_preload_libraries", "local_preload_libraries", "unix_socket_directories"};

	for (size_t i = 0; i < PV_ARRAY_LEN(lists); i++)
		if (strlen(lists[i]) == len && strncasecmp(lists[i], name, len) == 0)
			return true;
	return false;
}

void
pgglobals_set_clause(Buf *out, const char *nv)
{
	const char *eq = strchr(nv, '=');
	size_t nl = eq ? (size_t) (eq - nv) : strlen(nv);
	const char *val = eq ? eq + 1 : "";
	bool plain = nl > 0 && (islower((unsigned char) nv[0]) || nv[0] == '_');

	for (size_t i = 0; i < nl && plain; i++)
		plain = islower((unsigned char) nv[i]) || isdigit((unsigned char) nv[i]) || nv[i] == '_';
	buf_append_str(out, "SET ");
	if (plain)
		buf_append(out, nv, nl);
	else
	{
		buf_append_byte(out, '"');
		for (size_t i = 0; i < nl; i++)
		{
			if (nv[i] == '"')
				buf_append_byte(out, '"');
			buf_append_byte(out, (unsigned char) nv[i]);
		}
		buf_append_byte(out, '"');
	}
	buf_append_str(out, " TO ");
	if (!guc_is_list(nv, nl))
	{
		literal(out, val, strlen(val));
		return;
	}
	/* SplitGUCList: comma-separated, "quoted" elements with "" for a quote */
	{
		const char *p = val;
		int count = 0;

		for (;;)
		{
			Buf el = PV_BUF_INIT;

			while (isspace((unsigned char) *p))
				p++;
			if (*p == '\0')
			{
				buf_free(&el);
				break;
			}
			if (*p == '"')
			{
				for (p++; *p; p++)
				{
					if (*p == '"')
					{
						if (p[1] == '"')
						{
							buf_append_byte(&el, '"');
							p++;
							continue;
						}
						p++;
						break;
					}
					buf_append_byte(&el, (unsigned char) *p);
				}
			}
			else
				while (*p && *p != ',' && !isspace((unsigned char) *p))
					buf_append_byte(&el, (unsigned char) *p++);
			while (isspace((unsigned char) *p))
				p++;
			if (count++ > 0)
				buf_append_str(out, ", ");
			literal(out, buf_cstr(&el), el.len);
			buf_free(&el);
			if (*p == ',')
				p++;
			else
				break;
		}
		if (count == 0)
			literal(out, "", 0);
	}
}
