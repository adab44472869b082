/*
 * config.c: loading, validating and printing the configuration.
 *
 * The INI syntax is inih's.  inih does not report line numbers to the
 * handler in Debian's build, so the file is fed through our own line reader
 * (config_reader) that counts lines; the handler then knows where it is.
 *
 * Invariants: every CfgSection has one CfgValue per option of its kind, in
 * options.def order; values are validated before they are stored, so getters
 * never see text that does not parse.
 */
#include "config/config.h"

#include "common/error.h"
#include "common/mem.h"
#include "common/units.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "pv_build.h"

#define CFG_DEFAULT_PATH PV_SYSCONFDIR "/pgvault/pgvault.conf"

const CfgOptionDef cfg_options[] = {
#define CFG_OPTION(name, section, type, def, env, secret, enums, help) \
	{name, CFG_SECTION_##section, CFG_TYPE_##type, def, env, secret, enums, help},
#include "config/options.def"
#undef CFG_OPTION
};
const int cfg_noptions = (int) (sizeof(cfg_options) / sizeof(cfg_options[0]));

static const char *const origin_names[] = {"default", "file", "environment", "command line"};

/* ---- sections ---- */

static void
section_init(CfgSection *sec, CfgSectionKind kind, const char *name, int line)
{
	int n = 0;

	sec->kind = kind;
	sec->name = pv_strdup(name);
	sec->line = line;
	for (int i = 0; i < cfg_noptions; i++)
		n += cfg_options[i].section == kind;
	sec->values = pv_calloc((size_t) n, sizeof(CfgValue));
	sec->nvalues = n;
	n = 0;
	for (int i = 0; i < cfg_noptions; i++)
	{
		if (cfg_options[i].section != kind)
			continue;
		sec->values[n].def = &cfg_options[i];
		if (cfg_options[i].default_value != NULL)
			sec->values[n].value = pv_strdup(cfg_options[i].default_value);
		sec->values[n].origin = CFG_ORIGIN_DEFAULT;
		n++;
	}
}

static void
section_clear(CfgSection *sec)
{
	for (int i = 0; i < sec->nvalues; i++)
		pv_free_secret_str(sec->values[i].value);
	pv_free(sec->values);
	pv_free(sec->name);
}

static CfgValue *
section_value(const CfgSection *sec, const char *key)
{
	for (int i = 0; i < sec->nvalues; i++)
		if (strcmp(sec->values[i].def->name, key) == 0)
			return &sec->values[i];
	return NULL;
}

static CfgSection *
section_find(CfgSection *arr, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(arr[i].name, name) == 0)
			return &arr[i];
	return NULL;
}

static CfgSection *
section_add(CfgSection **arr, int *n, CfgSectionKind kind, const char *name, int line)
{
	*arr = pv_realloc(*arr, sizeof(CfgSection) * (size_t) (*n + 1));
	section_init(&(*arr)[*n], kind, name, line);
	return &(*arr)[(*n)++];
}

/* ---- validation ---- */

static int
parse_bool(bool *out, const char *v)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};

	for (size_t i = 0; i < PV_ARRAY_LEN(yes); i++)
	{
		if (strcasecmp(v, yes[i]) == 0)
		{
			*out = true;
			return PV_OK;
		}
		if (strcasecmp(v, no[i]) == 0)
		{
			*out = false;
			return PV_OK;
		}
	}
	return PV_ECONFIG;
}

static bool
enum_contains(const char *list, const char *v)
{
	size_t len = strlen(v);

	for (const char *p = list; *p;)
	{
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t) (bar - p) : strlen(p);

		if (n == len && strncasecmp(p, v, n) == 0)
			return true;
		p += n + (bar != NULL);
	}
	return false;
}

int
cfg_validate(const CfgOptionDef *def, const char *v)
{
	uint64_t size;
	int64_t dur;
	bool b;
	char *end;

	if (v[0] == '\0' && def->type != CFG_TYPE_STRING)
		return pv_error_set(PV_ECONFIG, "empty value for '%s'", def->name);
	switch (def->type)
	{
		case CFG_TYPE_STRING:
		case CFG_TYPE_PATH:
		case CFG_TYPE_LIST:
			return PV_OK;
		case CFG_TYPE_INT:
			errno = 0;
			(void) strtoll(v, &end, 10);
			if (errno != 0 || *end != '\0' || v[0] == '-')
				return pv_error_set(PV_ECONFIG, "invalid value '%s' for '%s': expected a non-negative integer",
									v, def->name);
			return PV_OK;
		case CFG_TYPE_BOOL:
			if (parse_bool(&b, v) < 0)
				return pv_error_set(PV_ECONFIG, "invalid value '%s' for '%s': expected on or off",
									v, def->name);
			return PV_OK;
		case CFG_TYPE_SIZE:
			if (pv_size_parse(&size, v) < 0)
				return pv_error_prefix(PV_ECONFIG, "invalid value for '%s'", def->name);
			return PV_OK;
		case CFG_TYPE_DURATION:
			if (pv_duration_parse(&dur, v) < 0)
				return pv_error_prefix(PV_ECONFIG, "invalid value for '%s'", def->name);
			return PV_OK;
		case CFG_TYPE_ENUM:
			if (!enum_contains(def->enum_values, v))
				return pv_error_set(PV_ECONFIG, "invalid value '%s' for '%s': expected one of %s",
									v, def->name, def->enum_values);
			return PV_OK;
		case CFG_TYPE_CONNINFO:
			{
				char *err = NULL;
				PQconninfoOption *opts = PQconninfoParse(v, &err);

				if (opts == NULL)
				{
					int rc = pv_error_set(PV_ECONFIG, "invalid connection string for '%s': %s",
										  def->name, err ? strtok(err, "\n") : "out of memory");

					PQfreemem(err);
					return rc;
				}
				PQconninfoFree(opts);
				return PV_OK;
			}
	}
	return PV_OK;
}

int
cfg_set(PvConfig *cfg, CfgSection *sec, const char *key, const char *value, CfgOrigin origin)
{
	CfgValue *val;
	int rc;

	(void) cfg;
	val = section_value(sec, key);
	if (val == NULL)
		return pv_error_set(PV_ECONFIG, "unknown key '%s' in section [%s]", key,
							sec->kind == CFG_SECTION_GLOBAL ? "global" : sec->name);
	if ((rc = cfg_validate(val->def, value)) < 0)
		return rc;
	pv_free_secret_str(val->value);
	val->value = pv_strdup(value);
	val->origin = origin;
	val->line = 0;
	return PV_OK;
}

/* ---- file parsing ---- */

typedef struct ParseState
{
	PvConfig *cfg;
	const char *name;
	const char *text;			/* for string input */
	size_t pos;
	FILE *fp;					/* for file input */
	int line;
	int failed;
} ParseState;

static CfgSection *section_for(ParseState *st, const char *section);

/*
 * Debian's inih does not call the handler for a section header without
 * keys, so headers are checked here, where every line passes.
 */
static bool
reader_check_header(ParseState *st, const char *line)
{
	char name[256];
	const char *end;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line != '[' || (end = strchr(line, ']')) == NULL)
		return true;
	snprintf(name, sizeof(name), "%.*s", (int) (end - line - 1), line + 1);
	if (section_for(st, name) == NULL)
	{
		st->failed = 1;
		return false;
	}
	return true;
}

/* inih reads a line per call; counting the calls gives the line number. */
static char *
config_reader(char *str, int num, void *stream)
{
	ParseState *st = stream;
	size_t i = 0;

	if (st->failed)
		return NULL;
	if (st->fp != NULL)
	{
		if (fgets(str, num, st->fp) == NULL)
			return NULL;
		if (strchr(str, '\n') != NULL || feof(st->fp))
			st->line++;
		return reader_check_header(st, str) ? str : NULL;
	}
	if (st->text[st->pos] == '\0')
		return NULL;
	while (i + 1 < (size_t) num && st->text[st->pos] != '\0')
	{
		char c = st->text[st->pos++];

		str[i++] = c;
		if (c == '\n')
			break;
	}
	str[i] = '\0';
	if (i > 0 && (str[i - 1] == '\n' || st->text[st->pos] == '\0'))
		st->line++;
	return reader_check_header(st, str) ? str : NULL;
}

static CfgSection *
section_for(ParseState *st, const char *section)
{
	PvConfig *cfg = st->cfg;
	const char *colon = strchr(section, ':');
	const char *name = colon ? colon + 1 : "";
	size_t kindlen = colon ? (size_t) (colon - section) : strlen(section);
	CfgSection *sec;

	if (strcmp(section, "global") == 0 || section[0] == '\0')
		return &cfg->global;
	if (colon == NULL || name[0] == '\0')
	{
		pv_error_set(PV_ECONFIG, "%s:%d: unknown section [%s]", st->name, st->line, section);
		pv_error_hint("sections are [global], [source:NAME] and [repo:NAME]");
		return NULL;
	}
	if (kindlen == 6 && strncmp(section, "source", 6) == 0)
	{
		sec = section_find(cfg->sources, cfg->nsources, name);
		return sec ? sec : section_add(&cfg->sources, &cfg->nsources, CFG_SECTION_SOURCE, name, st->line);
	}
	if (kindlen == 4 && strncmp(section, "repo", 4) == 0)
	{
		sec = section_find(cfg->repos, cfg->nrepos, name);
		return sec ? sec : section_add(&cfg->repos, &cfg->nrepos, CFG_SECTION_REPO, name, st->line);
	}
	pv_error_set(PV_ECONFIG, "%s:%d: unknown section [%s]", st->name, st->line, section);
	pv_error_hint("sections are [global], [source:NAME] and [repo:NAME]");
	return NULL;
}

static int
config_handler(void *user, const char *section, const char *name, const char *value)
{
	ParseState *st = user;
	char key[128];
	CfgSection *sec;
	CfgValue *val;

	if (st->failed)
		return 1;				/* report only the first error */
	if (name == NULL)			/* a section header on its own (inih >= 50) */
	{
		if (section_for(st, section) == NULL)
			st->failed = 1;
		return 1;
	}
	if ((sec = section_for(st, section)) == NULL)
	{
		st->failed = 1;
		return 1;
	}
	snprintf(key, sizeof(key), "%s", name);
	for (char *p = key; *p; p++)
		*p = *p == '_' ? '-' : (char) tolower((unsigned char) *p);
	val = section_value(sec, key);
	if (val == NULL)
	{
		pv_error_set(PV_ECONFIG, "%s:%d: unknown key '%s' in section [%s]", st->name, st->line, name,
					 section[0] ? section : "global");
		pv_error_hint("'pgvault config --help' lists every key and its section");
		st->failed = 1;
		return 1;
	}
	if (cfg_validate(val->def, value) < 0)
	{
		pv_error_prefix(PV_ECONFIG, "%s:%d", st->name, st->line);
		st->failed = 1;
		return 1;
	}
	pv_free_secret_str(val->value);
	val->value = pv_strdup(value);
	val->origin = CFG_ORIGIN_FILE;
	val->line = st->line;
	return 1;
}

static PvConfig *
config_new(void)
{
	PvConfig *cfg = PV_NEW(PvConfig);

	section_init(&cfg->global, CFG_SECTION_GLOBAL, "global", 0);
	return cfg;
}

static int
config_parse(ParseState *st)
{
	int r = ini_parse_stream(config_reader, st, config_handler, st);

	if (st->failed)
		return PV_ECONFIG;
	if (r > 0)
	{
		pv_error_set(PV_ECONFIG, "%s:%d: syntax error", st->name, r);
		pv_error_hint("lines are 'key = value', '[section]' or comments starting with # or ;");
		return PV_ECONFIG;
	}
	if (r < 0)
		return pv_error_set(PV_ECONFIG, "%s: could not be parsed", st->name);
	return PV_OK;
}

static int
config_apply_env(PvConfig *cfg)
{
	for (int i = 0; i < cfg->global.nvalues; i++)
	{
		CfgValue *val = &cfg->global.values[i];
		const char *env = val->def->env ? getenv(val->def->env) : NULL;

		if (env == NULL || env[0] == '\0')
			continue;
		if (cfg_validate(val->def, env) < 0)
			return pv_error_prefix(PV_ECONFIG, "environment variable %s", val->def->env);
		pv_free_secret_str(val->value);
		val->value = pv_strdup(env);
		val->origin = CFG_ORIGIN_ENV;
	}
	return PV_OK;
}

static int
config_check_sections(PvConfig *cfg)
{
	for (int i = 0; i < cfg->nrepos; i++)
		if (cfg_str(cfg, &cfg->repos[i], "url") == NULL)
		{
			pv_error_set(PV_ECONFIG, "%s:%d: section [repo:%s] has no 'url'", cfg->path,
						 cfg->repos[i].line, cfg->repos[i].name);
			pv_error_hint("add a line such as 'url = /var/lib/pgvault' or 'url = s3://bucket/prefix'");
			return PV_ECONFIG;
		}
	for (int i = 0; i < cfg->nsources; i++)
	{
		const char *repos = cfg_str(cfg, &cfg->sources[i], "repos");
		char *copy, *tok, *save = NULL;
		int rc = PV_OK;

		if (repos == NULL)
			continue;
		copy = pv_strdup(repos);
		for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
			if (cfg_repo_find(cfg, tok) == NULL)
			{
				rc = pv_error_set(PV_ECONFIG, "%s: source '%s' names repository '%s', which has no [repo:%s] section",
								  cfg->path, cfg->sources[i].name, tok, tok);
				break;
			}
		pv_free(copy);
		if (rc < 0)
			return rc;
	}
	return PV_OK;
}

int
cfg_load_string(PvConfig **out, const char *text, const char *name)
{
	PvConfig *cfg = config_new();
	ParseState st = {.cfg = cfg, .name = name, .text = text};
	int rc;

	cfg->path = pv_strdup(name);
	if ((rc = config_parse(&st)) < 0 || (rc = config_apply_env(cfg)) < 0 ||
		(rc = config_check_sections(cfg)) < 0)
	{
		cfg_free(cfg);
		*out = NULL;
		return rc;
	}
	*out = cfg;
	return PV_OK;
}

int
cfg_load(PvConfig **out, const char *path)
{
	PvConfig *cfg = config_new();
	ParseState st = {.cfg = cfg};
	const char *env = getenv("PGVAULT_CONFIG");
	struct stat sb;
	int rc = PV_OK;

	*out = NULL;
	if (path == NULL && env != NULL && env[0] != '\0')
		path = env;
	if (path == NULL && stat(CFG_DEFAULT_PATH, &sb) == 0)
		path = CFG_DEFAULT_PATH;
	if (path != NULL)
	{
		st.fp = fopen(path, "r");
		if (st.fp == NULL)
		{
			rc = pv_error_errno(errno == ENOENT ? PV_ENOTFOUND : PV_ECONFIG, errno,
								"could not open configuration file '%s'", path);
			goto done;
		}
		cfg->path = pv_strdup(path);
		st.name = cfg->path;
		rc = config_parse(&st);
		fclose(st.fp);
		if (rc < 0)
			goto done;
	}
	if ((rc = config_apply_env(cfg)) < 0 || (rc = config_check_sections(cfg)) < 0)
		goto done;
	*out = cfg;
	cfg = NULL;
done:
	cfg_free(cfg);
	return rc;
}

void
cfg_free(PvConfig *cfg)
{
	if (cfg == NULL)
		return;
	section_clear(&cfg->global);
	for (int i = 0; i < cfg->nsources; i++)
		section_clear(&cfg->sources[i]);
	for (int i = 0; i < cfg->nrepos; i++)
		section_clear(&cfg->repos[i]);
	pv_free(cfg->sources);
	pv_free(cfg->repos);
	pv_free(cfg->path);
	pv_free(cfg);
}

/* ---- lookups ---- */

const CfgValue *
cfg_value(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	const CfgValue *v = section_value(sec ? sec : &cfg->global, key);

	/* Asking for a key that options.def lacks is a programming error. */
	if (v == NULL)
	{
		fprintf(stderr, "pgvault: internal error: unknown configuration key '%s'\n", key);
		abort();
	}
	return v;
}

const char *
cfg_str(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	return cfg_value(cfg, sec, key)->value;
}

const char *
cfg_str_layered(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	const CfgValue *g = cfg_value(cfg, NULL, key);
	const char *v;

	if (sec == NULL || g->origin == CFG_ORIGIN_CLI || g->origin == CFG_ORIGIN_ENV)
		return g->value;
	v = cfg_str(cfg, sec, key);
	return v ? v : g->value;
}

int64_t
cfg_int(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	const char *v = cfg_str(cfg, sec, key);

	return v ? strtoll(v, NULL, 10) : 0;
}

bool
cfg_bool(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	const char *v = cfg_str(cfg, sec, key);
	bool b = false;

	if (v != NULL)
		(void) parse_bool(&b, v);
	return b;
}

uint64_t
cfg_size(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	const char *v = cfg_str(cfg, sec, key);
	uint64_t size = 0;

	if (v != NULL)
		(void) pv_size_parse(&size, v);
	return size;
}

int64_t
cfg_duration(const PvConfig *cfg, const CfgSection *sec, const char *key)
{
	const char *v = cfg_str(cfg, sec, key);
	int64_t d = 0;

	if (v != NULL)
		(void) pv_duration_parse(&d, v);
	return d;
}

int
cfg_source_pick(CfgSection **out, PvConfig *cfg, const char *name)
{
	*out = NULL;
	if (name != NULL)
	{
		*out = section_find(cfg->sources, cfg->nsources, name);
		if (*out == NULL)
		{
			pv_error_set(PV_EUSAGE, "no source named '%s' in the configuration", name);
			pv_error_hint(cfg->path ? "add a [source:%s] section to '%s'" :
						  "no configuration file was read; see 'pgvault config --help'",
						  name, cfg->path ? cfg->path : "");
			return PV_EUSAGE;
		}
		return PV_OK;
	}
	if (cfg->nsources == 1)
		*out = &cfg->sources[0];
	else if (cfg->nsources > 1)
	{
		pv_error_set(PV_EUSAGE, "%d sources are configured and none was chosen", cfg->nsources);
		pv_error_hint("name one with --source NAME");
		return PV_EUSAGE;
	}
	return PV_OK;
}

CfgSection *
cfg_repo_find(PvConfig *cfg, const char *name)
{
	return section_find(cfg->repos, cfg->nrepos, name);
}

int
cfg_repo_resolve(CfgSection **out_sec, const char **out_url, PvConfig *cfg, const CfgSection *source)
{
	const char *repo = cfg_str(cfg, NULL, "repo");
	CfgSection *sec = NULL;

	*out_sec = NULL;
	*out_url = NULL;
	if (repo == NULL && source != NULL && cfg_str(cfg, source, "repos") != NULL)
	{
		char first[128];
		const char *list = cfg_str(cfg, source, "repos");
		size_t n = strcspn(list, ", ");

		snprintf(first, sizeof(first), "%.*s", (int) n, list);
		sec = cfg_repo_find(cfg, first);
	}
	else if (repo == NULL && cfg->nrepos == 1)
		sec = &cfg->repos[0];
	else if (repo != NULL)
		sec = cfg_repo_find(cfg, repo);

	if (sec != NULL)
	{
		*out_sec = sec;
		*out_url = cfg_str(cfg, sec, "url");
		return PV_OK;
	}
	if (repo == NULL)
	{
		pv_error_set(PV_EUSAGE, "no repository given");
		pv_error_hint("use --repo PATH|URL, set PGVAULT_REPO, or configure a [repo:NAME] section");
		return PV_EUSAGE;
	}
	*out_url = repo;
	return PV_OK;
}

/* ---- printing ---- */

char *
cfg_conninfo_mask(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	char *out;
	size_t len = 0;

	if (opts == NULL)
		return pv_strdup("********");
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val != NULL)
			len += strlen(o->keyword) + 2 * strlen(o->val) + 8 + 12;
	out = pv_calloc(1, len + 1);
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		const char *val = o->val;
		char *p;

		if (val == NULL)
			continue;
		if (strcmp(o->keyword, "password") == 0)
			val = "********";
		p = out + strlen(out);
		p += sprintf(p, "%s%s='", out[0] ? " " : "", o->keyword);
		for (const char *s = val; *s; s++)
		{
			if (*s == '\'' || *s == '\\')
				*p++ = '\\';
			*p++ = *s;
		}
		*p++ = '\'';
		*p = '\0';
	}
	PQconninfoFree(opts);
	return out;
}

static char *
value_display(const CfgValue *v)
{
	if (v->value == NULL)
		return NULL;
	if (v->def->secret)
		return pv_strdup("********");
	if (v->def->type == CFG_TYPE_CONNINFO)
		return cfg_conninfo_mask(v->value);
	return pv_strdup(v->value);
}

static void
section_print(const PvConfig *cfg, const CfgSection *sec, FILE *out)
{
	if (sec->kind == CFG_SECTION_GLOBAL)
		fprintf(out, "[global]\n");
	else
		fprintf(out, "\n[%s:%s]\n", sec->kind == CFG_SECTION_SOURCE ? "source" : "repo", sec->name);
	for (int i = 0; i < sec->nvalues; i++)
	{
		const CfgValue *v = &sec->values[i];
		char *shown = value_display(v);
		char where[256];

		if (shown == NULL)
			continue;
		if (v->origin == CFG_ORIGIN_FILE)
			snprintf(where, sizeof(where), "%s:%d", cfg->path, v->line);
		else if (v->origin == CFG_ORIGIN_ENV)
			snprintf(where, sizeof(where), "environment %s", v->def->env);
		else
			snprintf(where, sizeof(where), "%s", origin_names[v->origin]);
		{
			int n = fprintf(out, "%s = %s", v->def->name, shown);

			fprintf(out, "%*s  # %s\n", n < 40 ? 40 - n : 0, "", where);
		}
		pv_free(shown);
	}
}

void
cfg_print(const PvConfig *cfg, FILE *out)
{
	fprintf(out, "# configuration file: %s\n", cfg->path ? cfg->path : "(none)");
	section_print(cfg, &cfg->global, out);
	for (int i = 0; i < cfg->nsources; i++)
		section_print(cfg, &cfg->sources[i], out);
	for (int i = 0; i < cfg->nrepos; i++)
		section_print(cfg, &cfg->repos[i], out);
}

static json_t *
section_json(const CfgSection *sec)
{
	json_t *obj = json_object();

	for (int i = 0; i < sec->nvalues; i++)
	{
		const CfgValue *v = &sec->values[i];
		char *shown = value_display(v);
		json_t *entry;

		if (shown == NULL)
			continue;
		entry = json_pack("{s:s, s:s}", "value", shown, "origin",
						  v->origin == CFG_ORIGIN_ENV ? "env" :
						  v->origin == CFG_ORIGIN_CLI ? "cli" : origin_names[v->origin]);
		if (v->origin == CFG_ORIGIN_FILE)
			json_object_set_new(entry, "line", json_integer(v->line));
		json_object_set_new(obj, v->def->name, entry);
		pv_free(shown);
	}
	return obj;
}

json_t *
cfg_to_json(const PvConfig *cfg)
{
	json_t *root = json_object();
	json_t *sources = json_object();
	json_t *repos = json_object();

	json_object_set_new(root, "file", cfg->path ? json_string(cfg->path) : json_null());
	json_object_set_new(root, "global", section_json(&cfg->global));
	for (int i = 0; i < cfg->nsources; i++)
		json_object_set_new(sources, cfg->sources[i].name, section_json(&cfg->sources[i]));
	for (int i = 0; i < cfg->nrepos; i++)
		json_object_set_new(repos, cfg->repos[i].name, section_json(&cfg->repos[i]));
	json_object_set_new(root, "sources", sources);
	json_object_set_new(root, "repos", repos);
	return root;
}
