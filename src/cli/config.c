/*
 * config.c (cli): "pgvault config" prints the effective configuration, with
 * where each value came from and secrets masked.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"

#include <jansson.h>
#include <stdio.h>

static const char help_text[] =
	"pgvault config: print the effective configuration, secrets masked\n\n"
	"Usage:\n  pgvault config [OPTIONS]\n\n"
	"Shows every setting in force and where it came from (default, file:line,\n"
	"environment or command line).  Precedence: command line > environment >\n"
	"configuration file > defaults.\n\n"
	"Examples:\n"
	"  pgvault config\n"
	"  pgvault config --config /etc/pgvault/pgvault.conf --json\n"
	"  PGVAULT_REPO=/backups pgvault config\n\n"
	"A configuration file looks like this:\n"
	"  [global]\n"
	"  repo = main\n"
	"  log-level = info\n\n"
	"  [source:prod]\n"
	"  conninfo = host=/var/run/postgresql dbname=postgres\n"
	"  pgdata = /var/lib/postgresql/15/main\n"
	"  bindir = /usr/lib/postgresql/15/bin\n"
	"  repos = main\n\n"
	"  [repo:main]\n"
	"  url = /var/lib/pgvault\n"
	"  compression = zstd:3\n";

static void
print_keys(void)
{
	static const char *const kinds[] = {"[global]", "[source:NAME]", "[repo:NAME]"};

	printf("\nKeys:\n");
	for (int k = 0; k < 3; k++)
	{
		printf("  %s\n", kinds[k]);
		for (int i = 0; i < cfg_noptions; i++)
		{
			const CfgOptionDef *d = &cfg_options[i];

			if ((int) d->section != k)
				continue;
			printf("    %-28s %s", d->name, d->help);
			if (d->default_value)
				printf(" (default %s)", d->default_value);
			if (d->env)
				printf(" [$%s]", d->env);
			printf("\n");
		}
	}
}

int
cli_config(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	CliCommon common = {0};
	PvConfig *cfg = NULL;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (!cli_common_option(&common, opt, optarg))
			return cli_bad_option("config", argv, opt);
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		print_keys();
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("config", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_setup(&common, &cfg)) < 0)
		return cli_fail(rc);
	if (common.json)
	{
		json_t *j = cfg_to_json(cfg);

		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
		cfg_print(cfg, stdout);
	cfg_free(cfg);
	return 0;
}
