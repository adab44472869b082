/*
 * cli.h: the command-line layer.  argv goes in, an exit status comes out.
 *
 * Every command lives in its own file, src/cli/<name>.c, and exports one
 * function, int cli_<name>(int argc, char **argv), registered in the table of
 * commands.c.  argv[0] is the command name, so getopt_long works as usual.
 * A command returns the process exit status; it is the only layer that
 * decides one (see errors.def for the mapping of error codes).
 *
 * Options every command understands are parsed by cli_common_option(); see
 * CLI_COMMON_LONGOPTS.  After option parsing a command calls cli_setup() to
 * load the configuration and start logging.
 */
#ifndef PV_CLI_CLI_H
#define PV_CLI_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "config/config.h"
#include "pg/conn.h"
#include "storage/storage.h"

typedef struct CliCommand
{
	const char *name;
	const char *summary;	/* one line, for "pgvault --help" */
	int (*run)(int argc, char **argv);
} CliCommand;

extern const CliCommand cli_commands[];

/* The whole command line: dispatch to a command; returns the exit status. */
int cli_main(int argc, char **argv);
extern const int cli_ncommands;

/* Options shared by every command; the values are borrowed from argv. */
typedef struct CliCommon
{
	const char *config_path;
	const char *log_level;
	const char *log_file;
	const char *source;
	const char *repo;
	const char *dbname;
	const char *host;
	const char *port;
	const char *username;
	const char *passphrase_file;
	const char *passphrase_command;
	bool json;
	bool help;
} CliCommon;

/* Long-option ids above the ASCII range, for options without a short form. */
enum
{
	CLI_OPT_CONFIG = 1000,
	CLI_OPT_LOG_LEVEL,
	CLI_OPT_LOG_FILE,
	CLI_OPT_SOURCE,
	CLI_OPT_REPO,
	CLI_OPT_JSON,
	CLI_OPT_HELP,
	CLI_OPT_PASSPHRASE_FILE,
	CLI_OPT_PASSPHRASE_COMMAND,
	CLI_OPT_FIRST_COMMAND = 1100,	/* commands number their own from here */
};

#define CLI_COMMON_LONGOPTS \
	{"config", required_argument, NULL, CLI_OPT_CONFIG}, \
	{"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL}, \
	{"log-file", required_argument, NULL, CLI_OPT_LOG_FILE}, \
	{"source", required_argument, NULL, CLI_OPT_SOURCE}, \
	{"repo", required_argument, NULL, CLI_OPT_REPO}, \
	{"json", no_argument, NULL, CLI_OPT_JSON}, \
	{"passphrase-file", required_argument, NULL, CLI_OPT_PASSPHRASE_FILE}, \
	{"passphrase-command", required_argument, NULL, CLI_OPT_PASSPHRASE_COMMAND}, \
	{"help", no_argument, NULL, CLI_OPT_HELP}

/* The connection options, spelt as PostgreSQL's own tools spell them. */
#define CLI_CONN_LONGOPTS \
	{"dbname", required_argument, NULL, 'd'}, \
	{"host", required_argument, NULL, 'h'}, \
	{"port", required_argument, NULL, 'p'}, \
	{"username", required_argument, NULL, 'U'}
#define CLI_CONN_SHORTOPTS "d:h:p:U:"

/* Returns true if opt was a common or connection option (and stores it). */
bool cli_common_option(CliCommon *c, int opt, const char *arg);

/*
 * Handle a getopt_long failure.  Commands call getopt_long with an optstring
 * that starts with ':' and opterr = 0, and pass the '?' or ':' it returned.
 * Prints the one-line error and the hint to "pgvault CMD --help"; returns 2.
 */
int cli_bad_option(const char *cmd, char **argv, int opt);

/* Print "pgvault: error: <msg>" and the hint line; returns exit status 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Load the configuration (--config, PGVAULT_CONFIG, /etc/pgvault/pgvault.conf),
 * apply command-line overrides and set up logging.  On failure the error is
 * left set and a negative code returned; use cli_fail() to report it.
 */
int cli_setup(const CliCommon *c, PvConfig **out);

/*
 * Resolve the source (--source, or the only one configured) and fill the
 * connection options from it and from -d/-h/-p/-U.  *out_source may be NULL
 * when no source is configured (libpq's environment decides); --source is
 * then only the name recorded with the backups.
 */
int cli_conn_opts(PgConnOpts *out, CfgSection **out_source, const CliCommon *c, PvConfig *cfg);

/*
 * The one argument of a command that names a backup (an id, or 'latest'),
 * after getopt: *out = argv[optind++] and -1 when it is there and alone,
 * else the usage error's exit status (2).
 */
int cli_backup_arg(const char **out, const char *cmd, int argc, char **argv);

/*
 * A whole number from min to max (--jobs and the like): true with *out
 * set, false (*out unchanged) when text is not one.  The caller words the
 * usage error, since what the range means differs by command.
 */
bool cli_int_parse(int *out, const char *text, int min, int max);

/*
 * Does argv, up to a "--", hold one of words (NULL-ended)?  For the
 * dispatch of a command to its variants (restore --logical/--physical),
 * before getopt.  A word matches a whole argument, or with with_value also
 * "word=VALUE"; a word ending in '*' matches every argument that starts
 * with the rest ("-t*": -t and -tPATTERN).
 */
bool cli_argv_has(int argc, char **argv, const char *const *words, bool with_value);

/* Report the current error (message and HINT) and return its exit status. */
int cli_fail(int code);

/* Print a command's help text with the common options appended. */
void cli_print_help(const char *text, bool connects);

/*
 * Open the repository named by --repo / the configuration, with the
 * passphrase (when encrypted) from the environment or the passphrase-file /
 * passphrase-command of its [repo:NAME] section or [global].
 */
struct Repo;
int cli_repo_open(struct Repo **out, PvConfig *cfg, const CliCommon *c);

/*
 * Storage driver settings (s3-*, azure-*, http-* keys) of a [repo:NAME]
 * section, for storage_open_opts()/repo_open_opts().  sec may be NULL: the
 * drivers then read only their environment variables.  out borrows cfg.
 */
typedef struct CliStorageSettings
{
	StorageOpenOpts opts;
	const PvConfig *cfg;
	const CfgSection *sec;
} CliStorageSettings;
void cli_storage_settings(CliStorageSettings *out, const PvConfig *cfg, const CfgSection *sec);

#endif
