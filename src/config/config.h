/*
 * config.h: pgvault's configuration, from INI file, environment and command
 * line, with one precedence everywhere:
 *
 *     command line  >  environment  >  configuration file  >  built-in default
 *
 * The file is found by: --config PATH, else $PGVAULT_CONFIG, else
 * /etc/pgvault/pgvault.conf when it exists; no file at all is fine.
 *
 * Sections:
 *   [global]           settings for every command
 *   [source:NAME]      a PostgreSQL cluster: conninfo, pgdata, bindir, ...
 *   [repo:NAME]        a repository: url, compression, credentials, ...
 *
 * Every key is declared once in options.def with its section, type, default,
 * environment variable and whether it is a secret.  Unknown sections, unknown
 * keys and values that do not parse are errors naming the file and line.
 * Secrets are never printed: cfg_print() masks them.
 *
 * Ownership: PvConfig owns every string it returns; they live until
 * cfg_free().  Getters lend pointers.
 */
#ifndef PV_CONFIG_CONFIG_H
#define PV_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum CfgSectionKind
{
	CFG_SECTION_GLOBAL,
	CFG_SECTION_SOURCE,
	CFG_SECTION_REPO,
} CfgSectionKind;

typedef enum CfgType
{
	CFG_TYPE_STRING,
	CFG_TYPE_PATH,
	CFG_TYPE_INT,		/* non-negative integer */
	CFG_TYPE_BOOL,		/* on/off, true/false, yes/no, 1/0 */
	CFG_TYPE_SIZE,		/* 64MiB, 1.5 GiB, 4096 */
	CFG_TYPE_DURATION,	/* 90s, 15min, 4h, 30d */
	CFG_TYPE_ENUM,		/* one of a '|'-separated list */
	CFG_TYPE_LIST,		/* comma-separated names */
	CFG_TYPE_CONNINFO,	/* libpq conninfo or URI; only its password is secret */
} CfgType;

typedef enum CfgOrigin
{
	CFG_ORIGIN_DEFAULT,
	CFG_ORIGIN_FILE,
	CFG_ORIGIN_ENV,
	CFG_ORIGIN_CLI,
} CfgOrigin;

typedef struct CfgOptionDef
{
	const char *name;
	CfgSectionKind section;
	CfgType type;
	const char *default_value;	/* NULL: unset */
	const char *env;			/* environment variable, or NULL */
	bool secret;
	const char *enum_values;	/* for CFG_TYPE_ENUM: "a|b|c" */
	const char *help;
} CfgOptionDef;

typedef struct CfgValue
{
	const CfgOptionDef *def;
	char *value;				/* NULL when unset */
	CfgOrigin origin;
	int line;					/* file line when origin is FILE */
} CfgValue;

typedef struct CfgSection
{
	CfgSectionKind kind;
	char *name;					/* "global", or the NAME of [source:NAME] */
	int line;					/* where the section header was, 0 if none */
	CfgValue *values;			/* one per option of this kind, in options.def order */
	int nvalues;
} CfgSection;

typedef struct PvConfig
{
	char *path;					/* the file read, or NULL */
	CfgSection global;
	CfgSection *sources;
	int nsources;
	CfgSection *repos;
	int nrepos;
} PvConfig;

/* The option table (options.def), for help output and validation. */
extern const CfgOptionDef cfg_options[];
extern const int cfg_noptions;

/*
 * Load the configuration.  path is --config (NULL if not given).  Applies
 * defaults, the file, then environment variables.  Errors: PV_ECONFIG with
 * "FILE:LINE: ..." messages, PV_ENOTFOUND for an explicit path that does not
 * exist.
 */
int cfg_load(PvConfig **out, const char *path);

/* Parse configuration text (for tests); name is used in messages. */
int cfg_load_string(PvConfig **out, const char *text, const char *name);

void cfg_free(PvConfig *cfg);

/*
 * Set a value from the command line (origin CLI), validating it.  sec is the
 * section to change (&cfg->global, a source or a repo).
 */
int cfg_set(PvConfig *cfg, CfgSection *sec, const char *key, const char *value,
			CfgOrigin origin);

/* Lookups.  A NULL sec means the global section. */
const CfgValue *cfg_value(const PvConfig *cfg, const CfgSection *sec, const char *key);
const char *cfg_str(const PvConfig *cfg, const CfgSection *sec, const char *key);
int64_t cfg_int(const PvConfig *cfg, const CfgSection *sec, const char *key);
bool cfg_bool(const PvConfig *cfg, const CfgSection *sec, const char *key);
uint64_t cfg_size(const PvConfig *cfg, const CfgSection *sec, const char *key);
int64_t cfg_duration(const PvConfig *cfg, const CfgSection *sec, const char *key);	/* seconds */

/*
 * A key that exists in both [global] and a section (e.g. passphrase-file in
 * [repo:NAME]): the section's value, unless the global one came from the
 * command line or the environment, which take precedence over any file.
 * sec may be NULL (then the global value).
 */
const char *cfg_str_layered(const PvConfig *cfg, const CfgSection *sec, const char *key);

/*
 * The source to work on: by name, or (name NULL) the only one configured,
 * or NULL when none is configured.  Errors when the name is unknown or when
 * several exist and none was named.
 */
int cfg_source_pick(CfgSection **out, PvConfig *cfg, const char *name);
CfgSection *cfg_repo_find(PvConfig *cfg, const char *name);

/*
 * The repository to use: the global "repo" setting (command line, then
 * PGVAULT_REPO, then the file) names a [repo:NAME] section or is itself a
 * path/URL; unset, the source's first "repos" entry or the only [repo:...]
 * section is used.  *out_sec is NULL when the repository has no section.
 * PV_EUSAGE with a hint when there is none.
 */
int cfg_repo_resolve(CfgSection **out_sec, const char **out_url, PvConfig *cfg,
					 const CfgSection *source);

/* A conninfo string with its password replaced by ********; caller frees. */
char *cfg_conninfo_mask(const char *conninfo);

/* Print the effective configuration, secrets masked, with origins. */
void cfg_print(const PvConfig *cfg, FILE *out);
/* The same as a jansson object (caller owns the reference). */
struct json_t;
struct json_t *cfg_to_json(const PvConfig *cfg);

/* Validate one value against its definition; PV_ECONFIG on failure. */
int cfg_validate(const CfgOptionDef *def, const char *value);

#endif
