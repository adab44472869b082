/*
 * pin.c (cli): "pgvault pin" and "pgvault unpin", legal holds: a pinned
 * backup is never expired, whatever the retention policy says.  Pins are
 * records in the repository (src/ops/catalog.c), so every host sees them.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "ops/catalog.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#include <stdio.h>
#include <string.h>

static const char help_pin[] =
	"pgvault pin: keep a backup whatever the retention policy says (legal hold)\n\n"
	"Usage:\n  pgvault pin ID [--note TEXT]\n  pgvault pin --list\n\n"
	"ID is a backup id, a unique prefix of one (8 characters or more) or 'latest'.\n"
	"The pin is recorded in the repository with who pinned it, when and why;\n"
	"'pgvault expire' never removes a pinned backup.  'pgvault unpin ID' releases it.\n\n"
	"Options:\n"
	"  --note=TEXT              why it is held (a ticket, a case number)\n"
	"  --list                   list the pins\n\n"
	"Examples:\n"
	"  pgvault pin 20261122T023900Z-a1b2c3 --note 'case 4711: hold until released by legal'\n"
	"  pgvault pin --list --json\n";

static const char help_unpin[] =
	"pgvault unpin: release a pin, so retention applies to the backup again\n\n"
	"Usage:\n  pgvault unpin ID\n\n"
	"Examples:\n"
	"  pgvault unpin 20261122T023900Z-a1b2c3\n";

enum
{
	OPT_NOTE = CLI_OPT_FIRST_COMMAND,
	OPT_LIST,
};

static int
print_pins(Repo *repo, bool json)
{
	CatalogPinList pins;
	int rc;

	if ((rc = catalog_pins(repo, true, &pins)) < 0)
		return cli_fail(rc);
	if (json)
	{
		json_t *a = json_array();

		for (size_t i = 0; i < pins.n; i++)
		{
			const CatalogPin *p = &pins.items[i];
			char t[PV_TIME_FORMAT_MAX];

			json_array_append_new(a, json_pack("{s:s, s:o, s:s, s:s, s:s}", "id", p->id, "time",
											   p->time ? json_string(pv_time_format_utc(t, sizeof(t), p->time))
											   : json_null(), "user", p->user, "host", p->host, "note", p->note));
		}
		json_t *doc = json_pack("{s:s, s:o}", "repository", repo_url(repo), "pins", a);

		pv_json_dump(stdout, doc);
		json_decref(doc);
	}
	else if (pins.n == 0)
		printf("no pinned backups in repository '%s'\n", repo_url(repo));
	else
		for (size_t i = 0; i < pins.n; i++)
		{
			const CatalogPin *p = &pins.items[i];
			char t[PV_TIME_FORMAT_MAX];

			printf("%s  pinned %s by %s@%s%s%s\n", p->id,
				   p->time ? pv_time_format_local(t, sizeof(t), p->time) : "(time unknown)",
				   p->user[0] ? p->user : "?", p->host[0] ? p->host : "?", p->note[0] ? ": " : "", p->note);
		}
	catalog_pins_free(&pins);
	return 0;
}

/* pin and unpin share everything but the verb. */
static int
pin_main(int argc, char **argv, bool pin)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"note", required_argument, NULL, OPT_NOTE},
		{"list", no_argument, NULL, OPT_LIST},
		{NULL, 0, NULL, 0},
	};
	static const struct option longopts_unpin[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	const char *cmd = pin ? "pin" : "unpin";
	CliCommon common = {0};
	const char *note = NULL;
	bool list = false;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	char id[REPO_BACKUP_ID_LEN + 1];
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", pin ? longopts : longopts_unpin, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_NOTE)
			note = optarg;
		else if (opt == OPT_LIST)
			list = true;
		else
			return cli_bad_option(cmd, argv, opt);
	}
	if (common.help)
	{
		cli_print_help(pin ? help_pin : help_unpin, false);
		return 0;
	}
	if (list && (optind < argc || note != NULL))
		return cli_usage_error(cmd, "--list takes no backup and no note");
	if (!list && optind >= argc)
		return cli_usage_error(cmd, "which backup? give its ID (or 'latest')");
	if (optind + 1 < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = cli_setup(&common, &cfg)) < 0 || (rc = cli_repo_open(&repo, cfg, &common)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (list)
	{
		status = print_pins(repo, common.json);
		goto done;
	}
	rc = repo_manifest_resolve(repo, argv[optind], NULL, NULL, id);
	/* A pin whose backup is gone (deleted by hand) can still be released by its full id. */
	if (rc == PV_ENOTFOUND && !pin && repo_backup_id_valid(argv[optind]))
	{
		snprintf(id, sizeof(id), "%s", argv[optind]);
		rc = PV_OK;
	}
	if (rc < 0 || (rc = pin ? catalog_pin(repo, id, note) : catalog_unpin(repo, id)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (common.json)
	{
		json_t *doc = json_pack("{s:s, s:b}", "id", id, "pinned", pin);

		pv_json_dump(stdout, doc);
		json_decref(doc);
	}
	else
		printf("%s backup %s\n", pin ? "pinned" : "unpinned", id);
	status = 0;
done:
	repo_free(repo);
	cfg_free(cfg);
	return status;
}

int
cli_pin(int argc, char **argv)
{
	return pin_main(argc, argv, true);
}

int
cli_unpin(int argc, char **argv)
{
	return pin_main(argc, argv, false);
}
