/*
 * list.c (cli): "pgvault list", the backups in a repository per source and
 * kind, oldest first, with their evidence (last verify, last drill), pins
 * and what retention would decide now, then each source's recoverable
 * window and the gaps in its archived WAL (src/ops/catalog_view.c does the
 * work).  A manifest that cannot be read is listed as damaged rather than
 * stopping the listing (exit status of PV_ECORRUPT).
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "ops/catalog_view.h"
#include "repo/repo.h"

#include <stdio.h>
#include <string.h>

static const char help_text[] =
	"pgvault list: the backups in a repository and the recoverable window\n\n"
	"Usage:\n  pgvault list [OPTIONS]\n\n"
	"Per source and kind (and database, for logical backups), oldest first: id,\n"
	"start (in the configured time-zone, else UTC), end, duration, size (the bytes\n"
	"a restore writes), stored (the stored size of the chunks it uses), new (what\n"
	"it added to the repository), the last verify and drill (\"ok 2h ago\"), and\n"
	"retention: the rules that keep it, \"pinned\", or EXPIRE when the next\n"
	"'pgvault expire' would remove it.  Physical backups add their WAL range.\n"
	"Then, per source with physical backups, the recoverable window: from the\n"
	"oldest kept backup's end to the newest archived WAL, and every gap in the\n"
	"archived WAL with the backups that cannot recover past it.\n\n"
	"Options:\n"
	"  --kind KIND              only logical, physical or file backups\n"
	"  --database NAME          only logical backups holding database NAME\n"
	"  --since TIME             only backups started at or after TIME: ISO 8601\n"
	"                           (2026-11-22, 2026-11-22T14:30Z) or an age (7d, 12h)\n"
	"  --until TIME             only backups started at or before TIME\n"
	"  --source NAME            only the backups of source NAME\n\n"
	"Examples:\n"
	"  pgvault list --repo /srv/pgvault\n"
	"  pgvault list --source prod --kind physical --since 7d\n"
	"  pgvault list --database app --until 2026-11-01\n"
	"  pgvault list --json | jq -r '.backups[-1].id'\n"
	"  pgvault list --json | jq '.windows[] | {source, from, to, gaps}'\n";

enum
{
	OPT_KIND = CLI_OPT_FIRST_COMMAND,
	OPT_DATABASE,
	OPT_SINCE,
	OPT_UNTIL,
};

/* "7d" (an age: now minus it) or a time as pv_time_parse reads it, in tz. */
static int
time_arg(PvTime *out, const char *opt, const char *text, const char *tz, PvTime now)
{
	int64_t secs;

	if (pv_duration_parse(&secs, text) == 0)
	{
		*out = now - secs * PV_USEC_PER_SEC;
		return PV_OK;
	}
	pv_error_clear();
	if (pv_time_parse(out, text, tz ? tz : "UTC") == 0)
		return PV_OK;
	pv_error_clear();
	return pv_error_set(PV_EUSAGE, "invalid %s '%s': give an ISO 8601 time (2026-11-22T14:30Z) or an age (7d)",
						opt, text);
}

int
cli_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"kind", required_argument, NULL, OPT_KIND},
		{"database", required_argument, NULL, OPT_DATABASE},
		{"since", required_argument, NULL, OPT_SINCE},
		{"until", required_argument, NULL, OPT_UNTIL},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	CatalogViewOpts vo = {.windows = true};
	const char *since = NULL, *until = NULL, *tz;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	json_t *doc = NULL;
	size_t damaged = 0;
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_KIND)
			vo.filter.kind = optarg;
		else if (opt == OPT_DATABASE)
			vo.filter.database = optarg;
		else if (opt == OPT_SINCE)
			since = optarg;
		else if (opt == OPT_UNTIL)
			until = optarg;
		else
			return cli_bad_option("list", argv, opt);
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
	if (vo.filter.kind != NULL && strcmp(vo.filter.kind, "logical") != 0 &&
		strcmp(vo.filter.kind, "physical") != 0 && strcmp(vo.filter.kind, "file") != 0)
		return cli_usage_error("list", "invalid --kind '%s': give logical, physical or file", vo.filter.kind);
	if ((rc = cli_setup(&common, &cfg)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	tz = cfg_str(cfg, NULL, "time-zone");
	vo.now = pv_time_now();
	vo.filter.source = common.source;
	if ((since != NULL && (rc = time_arg(&vo.filter.since, "--since", since, tz, vo.now)) < 0) ||
		(until != NULL && (rc = time_arg(&vo.filter.until, "--until", until, tz, vo.now)) < 0))
	{
		status = cli_usage_error("list", "%s", pv_error_msg());
		goto done;
	}
	if ((rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = catalog_view_collect(&doc, repo, cfg, &vo, &damaged)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (common.json)
		pv_json_dump(stdout, doc);
	else
		catalog_view_print(stdout, doc, tz, vo.now);
	status = damaged > 0 ? pv_error_exit_status(PV_ECORRUPT) : 0;
done:
	json_decref(doc);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
