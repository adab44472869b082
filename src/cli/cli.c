/*
 * cli.c: dispatch of argv to a command, and what every command shares:
 * common options, configuration loading, error reporting and help layout.
 *
 * Exit statuses are decided here and in the command files only: 0 success,
 * 2 bad usage (unknown command or option, bad value), otherwise the status
 * errors.def gives the error that ended the command.
 */
#include "cli/cli.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pv_build.h"
#include "repo/repo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Levenshtein distance, for "did you mean" hints on mistyped commands. */
static int
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64];

	if (lb >= PV_ARRAY_LEN(row))
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int) j;
	for (size_t i = 1; i <= la; i++)
	{
		int prev = row[0];

		row[0] = (int) i;
		for (size_t j = 1; j <= lb; j++)
		{
			int cur = row[j];
			int best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

static const CliCommand *
command_find(const char *name)
{
	for (int i = 0; i < cli_ncommands; i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return &cli_commands[i];
	return NULL;
}

static void
print_main_help(void)
{
	printf("pgvault: backup, restore and point-in-time recovery for PostgreSQL\n\n"
		   "Usage:\n  pgvault COMMAND [OPTIONS]\n  pgvault COMMAND --help\n\n"
		   "Commands:\n");
	for (int i = 0; i < cli_ncommands; i++)
		printf("  %-16s %s\n", cli_commands[i].name, cli_commands[i].summary);
	printf("\nOptions:\n"
		   "  --help           show this help, or a command's help after its name\n"
		   "  --version        show the version and exit\n\n"
		   "Configuration: --config FILE, else $PGVAULT_CONFIG, else %s/pgvault/pgvault.conf\n"
		   "if present.  Without a file, libpq's environment (PGHOST, PGPORT, PGUSER,\n"
		   "PGDATABASE, PGSERVICE, ~/.pgpass) says where to connect.\n\n"
		   "Examples:\n"
		   "  pgvault check -d mydb                         ready to be backed up?\n"
		   "  pgvault init --repo /srv/pgvault              a repository (--encrypt optional)\n"
		   "  pgvault backup --logical -d mydb -j 4         the nightly pg_dump, done better\n"
		   "  pgvault restore latest --target-db mydb_copy  into a new database\n"
		   "  pgvault restore latest --pgdata /srv/pg --target-time '2026-11-22 14:30'\n"
		   "  pgvault list; pgvault verify; pgvault drill latest\n\n"
		   "Documentation: README.md and docs/ in the source tree.\n",
		   PV_SYSCONFDIR);
}

int
cli_main(int argc, char **argv)
{
	const CliCommand *cmd;
	const char *best = NULL;
	int best_dist = 99;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0 ||
		strcmp(argv[1], "help") == 0)
	{
		if (argc >= 3 && strcmp(argv[1], "help") == 0 && (cmd = command_find(argv[2])) != NULL)
		{
			char *args[] = {argv[2], (char *) "--help", NULL};

			return cmd->run(2, args);
		}
		print_main_help();
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
	{
		printf("pgvault %s\n", PV_VERSION);
		return 0;
	}
	if (argv[1][0] == '-')
	{
		fprintf(stderr, "pgvault: error: unknown option '%s' before the command\n"
				"Try 'pgvault --help' for the list of commands.\n", argv[1]);
		return 2;
	}
	cmd = command_find(argv[1]);
	if (cmd != NULL)
		return cmd->run(argc - 1, argv + 1);

	for (int i = 0; i < cli_ncommands; i++)
	{
		int d = edit_distance(argv[1], cli_commands[i].name);

		if (d < best_dist)
		{
			best_dist = d;
			best = cli_commands[i].name;
		}
	}
	if (best != NULL && best_dist <= 2)
		fprintf(stderr, "pgvault: error: unknown command '%s'\nHINT: did you mean 'pgvault %s'? "
				"Try 'pgvault --help' for the list of commands.\n", argv[1], best);
	else
		fprintf(stderr, "pgvault: error: unknown command '%s'\n"
				"HINT: try 'pgvault --help' for the list of commands.\n", argv[1]);
	return 2;
}

bool
cli_common_option(CliCommon *c, int opt, const char *arg)
{
	switch (opt)
	{
		case CLI_OPT_CONFIG:
			c->config_path = arg;
			return true;
		case CLI_OPT_LOG_LEVEL:
			c->log_level = arg;
			return true;
		case CLI_OPT_LOG_FILE:
			c->log_file = arg;
			return true;
		case CLI_OPT_SOURCE:
			c->source = arg;
			return true;
		case CLI_OPT_REPO:
			c->repo = arg;
			return true;
		case CLI_OPT_JSON:
			c->json = true;
			return true;
		case CLI_OPT_PASSPHRASE_FILE:
			c->passphrase_file = arg;
			return true;
		case CLI_OPT_PASSPHRASE_COMMAND:
			c->passphrase_command = arg;
			return true;
		case CLI_OPT_HELP:
			c->help = true;
			return true;
		case 'd':
			c->dbname = arg;
			return true;
		case 'h':
			c->host = arg;
			return true;
		case 'p':
			c->port = arg;
			return true;
		case 'U':
			c->username = arg;
			return true;
	}
	return false;
}

int
cli_bad_option(const char *cmd, char **argv, int opt)
{
	/* getopt_long (called with a leading ':' and opterr = 0) has set optind past the word. */
	const char *word = (optind > 0) ? argv[optind - 1] : "?";
	size_t namelen = strcspn(word, "=");

	/*
	 * "--passphrase X" / "--password=X" (as openssl enc -k and PGPASSWORD=
	 * runbooks have it): say where secrets go instead, and never echo the
	 * value, which would land in terminals and logs.
	 */
	if (word[0] == '-' && word[1] == '-' && namelen >= 10 &&
		(strncmp(word + namelen - 10, "passphrase", 10) == 0 || strncmp(word + namelen - 8, "password", 8) == 0))
	{
		fprintf(stderr, "pgvault %s: error: option '%.*s' does not exist: secrets are never taken from the "
				"command line (every user sees it in ps); %s\n", cmd, (int) namelen, word,
				strncmp(word + namelen - 8, "password", 8) == 0
				? "database passwords come from ~/.pgpass, PGPASSFILE or PGPASSWORD"
				: "give the passphrase with --passphrase-file=FILE, --passphrase-command=CMD or "
				"PGVAULT_PASSPHRASE_FILE");
		fprintf(stderr, "Try 'pgvault %s --help' for more information.\n", cmd);
		return 2;
	}
	if (opt == ':')
		fprintf(stderr, "pgvault %s: error: option '%s' needs a value\n", cmd, word);
	else if (optopt > 0 && optopt < 256 && word[0] == '-' && word[1] != '-')
		fprintf(stderr, "pgvault %s: error: unknown option '-%c'\n", cmd, optopt);
	else
		fprintf(stderr, "pgvault %s: error: unknown option '%s'\n", cmd, word);
	fprintf(stderr, "Try 'pgvault %s --help' for more information.\n", cmd);
	return 2;
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pgvault %s: error: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'pgvault %s --help' for more information.\n", cmd);
	return 2;
}

bool
cli_argv_has(int argc, char **argv, const char *const *words, bool with_value)
{
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--") == 0)
			break;
		for (const char *const *w = words; *w != NULL; w++)
		{
			size_t l = strlen(*w);

			if ((*w)[l - 1] == '*')
			{
				if (strncmp(argv[i], *w, l - 1) == 0)
					return true;
			}
			else if (strncmp(argv[i], *w, l) == 0 &&
					 (argv[i][l] == '\0' || (with_value && argv[i][l] == '=')))
				return true;
		}
	}
	return false;
}

int
cli_backup_arg(const char **out, const char *cmd, int argc, char **argv)
{
	if (optind >= argc)
		return cli_usage_error(cmd, "which backup? give its id, or 'latest'");
	*out = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return -1;
}

bool
cli_int_parse(int *out, const char *text, int min, int max)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v < min || v > max)
		return false;
	*out = (int) v;
	return true;
}

int
cli_fail(int code)
{
	const char *msg = pv_error_msg();
	const char *hint = pv_error_hint_msg();

	if (code >= 0)
		code = PV_ERROR;
	pv_log(PV_LOG_ERROR, "%s", msg[0] ? msg : pv_error_name(code));
	if (hint[0] != '\0')
		fprintf(stderr, "HINT: %s\n", hint);
	return pv_error_exit_status(code);
}

int
cli_setup(const CliCommon *c, PvConfig **out)
{
	PvConfig *cfg = NULL;
	PvLogLevel level;
	const char *v;
	int rc;

	*out = NULL;
	/* Honour --log-level before loading, so config errors are reported as asked. */
	if (c->log_level != NULL)
	{
		if ((rc = pv_log_level_parse(&level, c->log_level)) < 0)
			return rc;
		pv_log_set_console_level(level);
	}
	if ((rc = cfg_load(&cfg, c->config_path)) < 0)
		return rc;
	if (c->log_level != NULL &&
		(rc = cfg_set(cfg, &cfg->global, "log-level", c->log_level, CFG_ORIGIN_CLI)) < 0)
		goto done;
	if (c->log_file != NULL &&
		(rc = cfg_set(cfg, &cfg->global, "log-file", c->log_file, CFG_ORIGIN_CLI)) < 0)
		goto done;
	if (c->repo != NULL &&
		(rc = cfg_set(cfg, &cfg->global, "repo", c->repo, CFG_ORIGIN_CLI)) < 0)
		goto done;

	if (c->passphrase_file != NULL &&
		(rc = cfg_set(cfg, &cfg->global, "passphrase-file", c->passphrase_file, CFG_ORIGIN_CLI)) < 0)
		goto done;
	if (c->passphrase_command != NULL &&
		(rc = cfg_set(cfg, &cfg->global, "passphrase-command", c->passphrase_command, CFG_ORIGIN_CLI)) < 0)
		goto done;

	if ((rc = pv_log_level_parse(&level, cfg_str(cfg, NULL, "log-level"))) < 0)
		goto done;
	pv_log_set_console_level(level);
	if ((v = cfg_str(cfg, NULL, "log-file")) != NULL)
	{
		PvLogLevel flevel;

		if ((rc = pv_log_level_parse(&flevel, cfg_str(cfg, NULL, "log-level-file"))) < 0)
			goto done;
		if ((rc = pv_log_set_file(v, flevel)) < 0)
			goto done;
	}
	*out = cfg;
	cfg = NULL;
	rc = PV_OK;
done:
	cfg_free(cfg);
	return rc;
}

int
cli_conn_opts(PgConnOpts *out, CfgSection **out_source, const CliCommon *c, PvConfig *cfg)
{
	CfgSection *src = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	/*
	 * Without any [source:NAME] section, --source is only the name recorded
	 * with the backups (as for physical backups and the WAL archive): libpq's
	 * options and environment say where to connect.
	 */
	if ((c->source == NULL || cfg->nsources > 0) && (rc = cfg_source_pick(&src, cfg, c->source)) < 0)
		return rc;
	if (src != NULL)
		out->conninfo = cfg_str(cfg, src, "conninfo");
	out->dbname = c->dbname;
	out->host = c->host;
	out->port = c->port;
	out->username = c->username;
	if (out_source != NULL)
		*out_source = src;
	return PV_OK;
}

static const char *
storage_setting(const char *key, void *payload)
{
	const CliStorageSettings *s = payload;

	/* Only keys the [repo:NAME] section knows; the drivers fall back to env. */
	for (int i = 0; s->sec != NULL && i < s->sec->nvalues; i++)
		if (strcmp(s->sec->values[i].def->name, key) == 0)
			return s->sec->values[i].value;
	return NULL;
}

void
cli_storage_settings(CliStorageSettings *out, const PvConfig *cfg, const CfgSection *sec)
{
	out->cfg = cfg;
	out->sec = sec;
	out->opts.lookup = storage_setting;
	out->opts.payload = out;
}

int
cli_repo_open(Repo **out, PvConfig *cfg, const CliCommon *c)
{
	CfgSection *sec = NULL, *source = NULL;
	RepoPassphraseSource ps = {NULL, NULL};
	CliStorageSettings settings;
	const char *url;
	int rc;

	/*
	 * The passphrase's file or command: --passphrase-file/-command or
	 * PGVAULT_PASSPHRASE_FILE/_COMMAND, else the repository's own section,
	 * else [global] (cfg_str_layered).
	 */
	*out = NULL;
	/* --source names a [source:NAME] for backups of databases; for others it is only a label. */
	for (int i = 0; c->source != NULL && i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, c->source) == 0)
			source = &cfg->sources[i];
	if ((rc = cfg_repo_resolve(&sec, &url, cfg, source)) < 0)
		return rc;
	ps.file = cfg_str_layered(cfg, sec, "passphrase-file");
	ps.command = cfg_str_layered(cfg, sec, "passphrase-command");
	cli_storage_settings(&settings, cfg, sec);
	return repo_open_opts(out, url, &settings.opts, repo_passphrase_default, &ps);
}

void
cli_print_help(const char *text, bool connects)
{
	fputs(text, stdout);
	if (connects)
		printf("\nConnection options (as psql and pg_dump spell them):\n"
			   "  -d, --dbname=DBNAME      database name, conninfo string or URI\n"
			   "  -h, --host=HOST          server host or socket directory\n"
			   "  -p, --port=PORT          server port\n"
			   "  -U, --username=USER      role to connect as\n"
			   "  Passwords come from ~/.pgpass, PGPASSWORD or PGPASSFILE, never from the\n"
			   "  command line.\n");
	printf("\nCommon options:\n"
		   "  --config=FILE            configuration file (default $PGVAULT_CONFIG or\n"
		   "                           %s/pgvault/pgvault.conf)\n"
		   "  --source=NAME            a [source:NAME] section of the configuration\n"
		   "  --repo=URL               repository (default $PGVAULT_REPO)\n"
		   "  --log-level=LEVEL        error, warn, info, detail, debug, trace\n"
		   "  --log-file=FILE          also log to FILE, with timestamps\n"
		   "  --passphrase-file=FILE   passphrase of an encrypted repository, first line\n"
		   "  --passphrase-command=CMD command that prints that passphrase (also\n"
		   "                           PGVAULT_PASSPHRASE, PGVAULT_PASSPHRASE_FILE/_COMMAND)\n"
		   "  --json                   machine-readable output on stdout\n"
		   "  --help                   show this help\n", PV_SYSCONFDIR);
}
