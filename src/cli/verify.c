/*
 * verify.c (cli): "pgvault verify", read back what the backups need and
 * say what is damaged and which backups it affects.  The checks are in
 * src/repo/verify.c; this file prints the report (text or JSON) and maps it
 * to the exit status: 0 clean, 3 damage found.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "repo/repo.h"
#include "repo/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault verify: read back and check every byte the backups need\n\n"
	"Usage:\n  pgvault verify [ID...|--all] [OPTIONS]\n\n"
	"Without IDs (or with --all) every pack, index file and backup is checked:\n"
	"each pack is read whole and its name (a SHA-256 of its bytes), its header and\n"
	"every chunk in it (decrypted, decompressed, its id recomputed) are checked;\n"
	"each backup's manifest and item list are read and every chunk it needs must\n"
	"be in the index and in a pack.  With IDs (full ids, unique prefixes or\n"
	"'latest') only those backups and the packs they need are checked.  Damage\n"
	"is reported per chunk or pack, with the backups it affects.\n\n"
	"Options:\n"
	"  --all                    every backup (the default)\n"
	"  --quick                  presence and sizes only: no pack data is read\n"
	"  -j, --jobs=N             packs read in parallel (default: one per core)\n\n"
	"Exit status: 0 no damage, 3 damage found, 1 verify could not run.\n\n"
	"Examples:\n"
	"  pgvault verify\n"
	"  pgvault verify latest --quick\n"
	"  pgvault verify 20261122T023900Z-a1b2c3 --jobs 8\n"
	"  pgvault verify --json | jq '.problems[] | .backups'\n";

enum
{
	OPT_ALL = CLI_OPT_FIRST_COMMAND,
	OPT_QUICK,
};

/* Problems printed in full before the rest is summed up (JSON has them all). */
#define PRINT_PROBLEMS_MAX 50

static bool
report_has_unindexed_chunks(const RepoVerifyReport *r)
{
	for (size_t i = 0; i < r->nproblems; i++)
		if (r->problems[i].type == REPO_VERIFY_CHUNK && r->problems[i].pack == NULL)
			return true;
	return false;
}

static void
print_text(const RepoVerifyReport *r)
{
	char a[32];

	for (size_t i = 0; i < r->nproblems && i < PRINT_PROBLEMS_MAX; i++)
	{
		const RepoVerifyProblem *p = &r->problems[i];

		printf("DAMAGED %s: %s\n", repo_verify_problem_type_name(p->type), p->message);
		if (p->nbackups > 0)
		{
			printf("        affects %zu backup%s:", p->nbackups, p->nbackups == 1 ? "" : "s");
			for (size_t k = 0; k < p->nbackups; k++)
				printf(" %s", p->backups[k]);
			printf("\n");
		}
	}
	if (r->nproblems > PRINT_PROBLEMS_MAX)
		printf("... and %zu more problems (see --json for all of them)\n",
			   r->nproblems - PRINT_PROBLEMS_MAX);
	for (size_t i = 0; i < r->nbackups; i++)
	{
		const RepoVerifyBackup *b = &r->backups[i];

		printf("backup %s  %-8s %-12s ", b->id, b->kind ? b->kind : "?",
			   b->source && b->source[0] ? b->source : "-");
		if (!b->damaged)
			printf("ok (%llu item%s, %llu chunk%s)\n", (unsigned long long) b->items,
				   b->items == 1 ? "" : "s", (unsigned long long) b->chunks,
				   b->chunks == 1 ? "" : "s");
		else if (b->error != NULL && b->kind == NULL)
			printf("DAMAGED: its manifest cannot be read\n");
		else if (b->error != NULL)
			printf("DAMAGED: its item list cannot be read%s\n",
				   b->bad_chunks ? " and chunks it needs are damaged" : "");
		else
			printf("DAMAGED: %llu chunk%s it needs %s damaged or missing\n",
				   (unsigned long long) b->bad_chunks, b->bad_chunks == 1 ? "" : "s",
				   b->bad_chunks == 1 ? "is" : "are");
	}
	printf("verify: %s%llu packs (%s), %llu blobs, %llu index files, %zu backups checked\n",
		   r->quick ? "(quick) " : "", (unsigned long long) r->packs,
		   pv_size_format(a, sizeof(a), r->pack_bytes), (unsigned long long) r->blobs,
		   (unsigned long long) r->index_files, r->nbackups);
	if (r->unindexed_packs > 0)
		printf("verify: %llu packs are in no index (left by an interrupted or running backup; "
			   "'pgvault repo prune' removes them)\n", (unsigned long long) r->unindexed_packs);
	if (repo_verify_report_ok(r))
		printf("verify: OK, no damage found\n");
	else
		printf("verify: FAILED: %zu problems, %zu of %zu backups damaged\n", r->nproblems,
			   r->ndamaged, r->nbackups);
}

int
cli_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"all", no_argument, NULL, OPT_ALL},
		{"quick", no_argument, NULL, OPT_QUICK},
		{"jobs", required_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	RepoVerifyOpts opts = {.lock = true};
	RepoVerifyReport report;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	const char *jobs = NULL;
	bool all = false;
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		if (opt == OPT_ALL)
			all = true;
		else if (opt == OPT_QUICK)
			opts.quick = true;
		else if (opt == 'j')
			jobs = optarg;
		else
			return cli_bad_option("verify", argv, opt);
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (all && optind < argc)
		return cli_usage_error("verify", "give backup IDs or --all, not both");
	if (jobs != NULL)
	{
		char *end;
		long v = strtol(jobs, &end, 10);

		if (*jobs == '\0' || *end != '\0' || v < 0 || v > 256)
			return cli_usage_error("verify", "invalid number of jobs '%s' (0 to 256; 0 = one "
								   "per core)", jobs);
		opts.jobs = (int) v;
	}
	opts.backups = (const char *const *) (argv + optind);
	opts.nbackups = (size_t) (argc - optind);
	if ((rc = cli_setup(&common, &cfg)) < 0)
		return cli_fail(rc);
	if (jobs == NULL)
		opts.jobs = (int) cfg_int(cfg, NULL, "jobs");
	if ((rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = catalog_verify_run(repo, &opts, &report)) < 0)	/* records the outcome (issue 7) */
	{
		status = cli_fail(rc);
		goto done;
	}
	if (common.json)
	{
		json_t *j = repo_verify_report_json(&report);

		json_object_set_new(j, "repository", json_string(repo_url(repo)));
		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
	{
		print_text(&report);
		if (report_has_unindexed_chunks(&report))
			fprintf(stderr, "HINT: chunks missing from the index but present in packs come back "
					"with 'pgvault repo rebuild-index'\n");
	}
	status = repo_verify_report_ok(&report) ? 0 : pv_error_exit_status(PV_ECORRUPT);
	repo_verify_report_free(&report);
done:
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
