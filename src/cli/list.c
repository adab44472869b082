/*
 * list.c (cli): "pgvault list", the backups in a repository, oldest first,
 * from their manifests (no item list is read).  A manifest that cannot be
 * read is listed as damaged rather than stopping the listing.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "ops/status.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#include <stdio.h>
#include <string.h>

static const char help_text[] =
	"pgvault list: the backups in a repository\n\n"
	"Usage:\n  pgvault list [OPTIONS]\n\n"
	"One line per backup, oldest first: id, kind, source, start time, size (the\n"
	"bytes a restore writes), stored (the stored size of the chunks it uses) and\n"
	"new (what it added to the repository).\n\n"
	"Examples:\n"
	"  pgvault list --repo /srv/pgvault\n"
	"  pgvault list --json | jq -r '.backups[-1].id'\n";

static uint64_t
total(const RepoManifest *m, const char *key)
{
	json_t *v = json_object_get(repo_manifest_totals(m), key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t) json_integer_value(v) : 0;
}

static json_t *
backup_json(const RepoManifest *m)
{
	json_t *j = json_object();
	char t[PV_TIME_FORMAT_MAX];

	json_object_set_new(j, "id", json_string(repo_manifest_id(m)));
	json_object_set_new(j, "kind", json_string(repo_manifest_kind(m)));
	json_object_set_new(j, "source", repo_manifest_source(m)[0] ?
						json_string(repo_manifest_source(m)) : json_null());
	json_object_set_new(j, "host", json_string(repo_manifest_host(m)));
	json_object_set_new(j, "start_time", json_string(pv_time_format_utc(t, sizeof(t),
																		 repo_manifest_start_time(m))));
	json_object_set_new(j, "stop_time", json_string(pv_time_format_utc(t, sizeof(t),
																		repo_manifest_stop_time(m))));
	json_object_set_new(j, "items", json_integer((json_int_t) repo_manifest_item_count(m)));
	json_object_set_new(j, "size", json_integer((json_int_t) total(m, "logical_bytes")));
	json_object_set_new(j, "stored", json_integer((json_int_t) total(m, "stored_bytes")));
	json_object_set_new(j, "new", json_integer((json_int_t) total(m, "new_bytes")));
	return j;
}

int
cli_list(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	CliCommon common = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	char **ids = NULL;
	size_t n = 0, damaged = 0;
	json_t *list = NULL;
	const char *tz;
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		if (!cli_common_option(&common, opt, optarg))
			return cli_bad_option("list", argv, opt);
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_setup(&common, &cfg)) < 0 || (rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = repo_manifest_ids(repo, &ids, &n)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	tz = cfg_str(cfg, NULL, "time-zone");
	if (common.json)
		list = json_array();
	else if (n > 0)
		printf("%-23s  %-8s  %-12s  %-20s  %10s  %10s  %10s\n", "ID", "KIND", "SOURCE", "START",
			   "SIZE", "STORED", "NEW");
	for (size_t i = 0; i < n; i++)
	{
		RepoManifest *m = NULL;
		char t[PV_TIME_FORMAT_MAX], a[32], b[32], c[32];

		if (repo_manifest_load(&m, repo, ids[i]) < 0)
		{
			damaged++;
			if (list != NULL)
			{
				json_t *j = json_object();

				json_object_set_new(j, "id", json_string(ids[i]));
				json_object_set_new(j, "error", json_string(pv_error_msg()));
				json_array_append_new(list, j);
			}
			else
				printf("%-23s  DAMAGED: %s\n", ids[i], pv_error_msg());
			continue;
		}
		if (list != NULL)
			json_array_append_new(list, backup_json(m));
		else
		{
			pv_time_format(t, sizeof(t), repo_manifest_start_time(m), tz);
			/* "2026-11-22T02:39:00+01:00" -> "2026-11-22 02:39:00" */
			t[10] = ' ';
			t[19] = '\0';
			printf("%-23s  %-8s  %-12s  %-20s  %10s  %10s  %10s\n", repo_manifest_id(m),
				   repo_manifest_kind(m),
				   repo_manifest_source(m)[0] ? repo_manifest_source(m) : "-", t,
				   pv_size_format(a, sizeof(a), total(m, "logical_bytes")),
				   pv_size_format(b, sizeof(b), total(m, "stored_bytes")),
				   pv_size_format(c, sizeof(c), total(m, "new_bytes")));
		}
		repo_manifest_free(m);
	}
	if (list != NULL)
	{
		json_t *doc = json_object();

		status_annotate_backups(repo, cfg, list);	/* issue 7: pin, retention, verify, drill */
		json_object_set_new(doc, "repository", json_string(repo_url(repo)));
		json_object_set_new(doc, "backups", list);
		list = NULL;
		pv_json_dump(stdout, doc);
		json_decref(doc);
	}
	else if (n == 0)
		printf("no backups in repository '%s'\n", repo_url(repo));
	status = damaged > 0 ? pv_error_exit_status(PV_ECORRUPT) : 0;
done:
	json_decref(list);
	repo_manifest_ids_free(ids, n);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
