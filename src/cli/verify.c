/*
 * verify.c (cli): "pgvault verify", read back what the backups need and
 * say what is damaged and which backups it affects.  The checks are in
 * src/repo/verify.c; this file prints the report (text or JSON) and maps it
 * to the exit status: 0 clean, 3 damage found.  --new, --sample and
 * verify-period choose which packs are read (see repo/verify.h).  It also
 * gives repo_verify the check of the WAL each physical backup needs
 * (wal_check below), which knows WAL names and so lives above src/repo.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "pg/wal/wal.h"
#include "pg/wal/window.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/verify.h"

#include <inttypes.h>
#include <jansson.h>

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
	"is reported per chunk or pack, with the backups it affects.  For physical\n"
	"backups the WAL each needs to become consistent (start to stop segment)\n"
	"must be in the archive.\n\n"
	"Every verify that reads packs records which it read, when and with what\n"
	"outcome (records/packcheck in the repository).  --new and --sample use that\n"
	"record so a nightly verify of a large repository stays cheap: packs not read\n"
	"are still checked for presence and size, and manifests, item lists, the\n"
	"index and the WAL of physical backups are always checked in full.  With\n"
	"verify-period set (configuration or --verify-period), packs last read longer\n"
	"ago are always read too, so every byte is read within the period.  A verify\n"
	"without --new/--sample reads everything and refreshes the whole record.\n\n"
	"Options:\n"
	"  --all                    every backup (the default)\n"
	"  --quick                  presence and sizes only: no pack data is read\n"
	"  --new                    read only packs no verify has read yet (or whose\n"
	"                           last read found damage), and those verify-period\n"
	"                           says are due\n"
	"  --sample=PERCENT         as --new, and also re-read PERCENT (0-100) of the\n"
	"                           other packs, chosen at random; the share is by COUNT\n"
	"                           of packs, rounded up\n"
	"  --verify-period=DURATION override the configured verify-period (e.g. 30d);\n"
	"                           0 = never force a re-read\n"
	"  -j, --jobs=N             packs read in parallel (default: one per core)\n\n"
	"Exit status: 0 no damage, 3 damage found, 1 verify could not run.\n\n"
	"Examples:\n"
	"  pgvault verify\n"
	"  pgvault verify --new\n"
	"  pgvault verify --sample 5 --verify-period 30d   # nightly: new packs + 5 %\n"
	"  pgvault verify latest --quick\n"
	"  pgvault verify 20261122T023900Z-a1b2c3 --jobs 8\n"
	"  pgvault verify --json | jq '.problems[] | .backups'\n";

enum
{
	OPT_ALL = CLI_OPT_FIRST_COMMAND,
	OPT_QUICK,
	OPT_NEW,
	OPT_SAMPLE,
	OPT_PERIOD,
};

/* ---- the WAL physical backups need ---- */

/* The WAL archive summaries of the sources seen so far (one listing each). */
typedef struct WalCache
{
	char **sources;
	PgWalArchiveSummary *sums;
	size_t n;
} WalCache;

static int
wal_summary_get(const PgWalArchiveSummary **out, WalCache *c, Repo *repo, const char *source)
{
	int rc;

	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->sources[i], source) == 0)
		{
			*out = &c->sums[i];
			return 0;
		}
	c->sources = pv_realloc(c->sources, (c->n + 1) * sizeof(char *));
	c->sums = pv_realloc(c->sums, (c->n + 1) * sizeof(PgWalArchiveSummary));
	if ((rc = pgwal_archive_summarize(&c->sums[c->n], repo, source)) < 0)
		return pv_error_prefix(rc, "cannot list the WAL archive of source '%s'", source);
	c->sources[c->n] = pv_strdup(source);
	*out = &c->sums[c->n++];
	return 0;
}

static void
wal_cache_free(WalCache *c)
{
	for (size_t i = 0; i < c->n; i++)
	{
		pv_free(c->sources[i]);
		pgwal_archive_summary_free(&c->sums[i]);
	}
	pv_free(c->sources);
	pv_free(c->sums);
}

/*
 * A physical backup needs every segment from start_wal to stop_wal in the
 * archive (unless it carries its WAL itself: backup --with-wal), as restore
 * checks before it writes anything (src/pg/physical/restore.c).  One
 * problem per gap, naming its first segment.  A listing only: cheap.
 */
static int
wal_check(RepoVerifyRun *run, Repo *repo, const RepoManifest *m, void *payload)
{
	const json_t *md = repo_manifest_metadata(m);
	const char *src = repo_manifest_source(m);
	const char *start = json_string_value(json_object_get(md, "start_wal"));
	const char *stop = json_string_value(json_object_get(md, "stop_wal"));
	json_t *segv = json_object_get(md, "wal_segment_size");
	uint64_t seg = json_is_integer(segv) ? (uint64_t) json_integer_value(segv) : 0;
	const PgWalArchiveSummary *sum = NULL;
	const PgWalTimelineInfo *t;
	uint32_t tli, tli2;
	uint64_t first, last, from;
	char a[PGWAL_SEGMENT_NAME_LEN + 1];
	int rc;

	if (strcmp(repo_manifest_kind(m), "physical") != 0 ||
		json_is_true(json_object_get(md, "wal_included")))
		return 0;
	if (start == NULL || stop == NULL || !pgwal_segment_size_valid(seg) ||
		pgwal_segment_parse(&tli, &first, start, seg) < 0 ||
		pgwal_segment_parse(&tli2, &last, stop, seg) < 0)
	{
		pv_error_clear();
		repo_verify_backup_problem(run, REPO_VERIFY_MANIFEST, repo_manifest_id(m),
								   "backup %s does not say which WAL it needs", repo_manifest_id(m));
		return 0;
	}
	if (tli2 != tli)
		last = UINT64_MAX;		/* it ends on a later timeline: check its own up to the archive's end */
	src = src[0] ? src : PGWAL_DEFAULT_SOURCE;
	if ((rc = wal_summary_get(&sum, payload, repo, src)) < 0)
		return rc;
	t = pgwal_summary_timeline(sum, tli);
	if (t == NULL || t->segments == 0 || t->first > first)
	{
		pgwal_segment_name(a, tli, first, seg);
		repo_verify_backup_problem(run, REPO_VERIFY_WAL, a, "WAL segment %s, which backup %s "
								   "needs to become consistent (%s..%s), is missing from the "
								   "archive of source '%s'", a, repo_manifest_id(m), start, stop,
								   src);
		return 0;
	}
	for (from = first;;)
	{
		const PgWalGap *gap = pgwal_summary_gap_after(sum, tli, from);

		if (gap == NULL || gap->first > last)
			break;
		pgwal_segment_name(a, tli, gap->first, seg);
		repo_verify_backup_problem(run, REPO_VERIFY_WAL, a, "WAL segment %s, which backup %s "
								   "needs to become consistent (%s..%s), is missing from the "
								   "archive of source '%s' (a gap of %" PRIu64 " segment%s)", a,
								   repo_manifest_id(m), start, stop, src,
								   gap->last - gap->first + 1, gap->last == gap->first ? "" : "s");
		from = gap->last + 1;
	}
	if (last != UINT64_MAX && t->last < last)
	{
		pgwal_segment_name(a, tli, t->last + 1, seg);
		repo_verify_backup_problem(run, REPO_VERIFY_WAL, a, "WAL segment %s, which backup %s "
								   "needs to become consistent (%s..%s), is missing from the "
								   "archive of source '%s'", a, repo_manifest_id(m), start, stop,
								   src);
	}
	return 0;
}

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

/* One "N packs (SIZE)" phrase. */
static const char *
count_text(char *out, size_t outsz, const RepoVerifyCount *c)
{
	char sz[32];

	snprintf(out, outsz, "%llu pack%s (%s)", (unsigned long long) c->packs,
			 c->packs == 1 ? "" : "s", pv_size_format(sz, sizeof(sz), c->bytes));
	return out;
}

/* How the packs read were chosen (not for a quick verify). */
static void
print_selection(const RepoVerifyReport *r, bool chosen)
{
	char a[64], b[64], c[64], d[64], t[64], per[32];
	RepoVerifyCount total;

	if (r->quick)
		return;
	if (r->mode == REPO_VERIFY_MODE_FULL)
	{
		printf("verify (full): read %s: every pack%s\n", count_text(a, sizeof(a), &r->read_full),
			   chosen ? " the chosen backups need" : "");
		goto warn;
	}
	if (r->period > 0)
		pv_duration_format(per, sizeof(per), r->period);
	else
		snprintf(per, sizeof(per), "none");
	total.packs = r->read_new.packs + r->read_forced.packs + r->read_sampled.packs;
	total.bytes = r->read_new.bytes + r->read_forced.bytes + r->read_sampled.bytes;
	printf("verify (%s): read %s: %s new or damaged when last read, %s forced by "
		   "verify-period (%s), %s sampled", repo_verify_mode_name(r->mode),
		   count_text(t, sizeof(t), &total), count_text(a, sizeof(a), &r->read_new),
		   count_text(b, sizeof(b), &r->read_forced), per,
		   count_text(c, sizeof(c), &r->read_sampled));
	if (r->mode == REPO_VERIFY_MODE_SAMPLE)
		printf(" (%g %% of the others, by count)", r->sample_percent);
	printf("\n");
	printf("verify (%s): skipped %s already read%s (checked for presence and size only; "
		   "damage in them is not looked for by this run)\n", repo_verify_mode_name(r->mode),
		   count_text(d, sizeof(d), &r->skipped),
		   r->period > 0 ? " within the period" : " before");
warn:
	if (r->packcheck_warning != NULL)
		printf("verify: WARNING: pack-check record: %s\n", r->packcheck_warning);
}

static void
print_text(const RepoVerifyReport *r, bool chosen)
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
		else if (b->bad_wal > 0 && b->bad_chunks == 0)
			printf("DAMAGED: WAL it needs is missing from the archive (%llu gap%s)\n",
				   (unsigned long long) b->bad_wal, b->bad_wal == 1 ? "" : "s");
		else
			printf("DAMAGED: %llu chunk%s it needs %s damaged or missing\n",
				   (unsigned long long) b->bad_chunks, b->bad_chunks == 1 ? "" : "s",
				   b->bad_chunks == 1 ? "is" : "are");
	}
	print_selection(r, chosen);
	printf("verify: %s%llu packs (%s), %llu blobs, %llu index files, %zu backups checked\n",
		   r->quick ? "(quick) " : "", (unsigned long long) r->packs,
		   pv_size_format(a, sizeof(a), r->pack_bytes), (unsigned long long) r->blobs,
		   (unsigned long long) r->index_files, r->nbackups);
	if (r->unindexed_packs > 0)
		printf("verify: %llu packs are in no index (left by an interrupted or running backup; "
			   "'pgvault repo prune' removes them)\n", (unsigned long long) r->unindexed_packs);
	if (r->quarantined > 0)
		printf("verify: %llu damaged blob%s set aside: no backup will use %s; the next backup of the "
			   "same data stores %s again, which repairs the backups above\n",
			   (unsigned long long) r->quarantined, r->quarantined == 1 ? "" : "s",
			   r->quarantined == 1 ? "it" : "them", r->quarantined == 1 ? "it" : "them");
	if (r->quarantine_warning != NULL)
		printf("verify: WARNING: damaged blobs not set aside (a new backup may reuse them): %s\n",
			   r->quarantine_warning);
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
		{"new", no_argument, NULL, OPT_NEW},
		{"sample", required_argument, NULL, OPT_SAMPLE},
		{"verify-period", required_argument, NULL, OPT_PERIOD},
		{"jobs", required_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	RepoVerifyOpts opts = {.lock = true, .quarantine = true, .backup_check = wal_check};
	WalCache wal = {0};
	RepoVerifyReport report;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	const char *jobs = NULL, *sample = NULL, *period = NULL;
	bool new_only = false;
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
		else if (opt == OPT_NEW)
			new_only = true;
		else if (opt == OPT_SAMPLE)
			sample = optarg;
		else if (opt == OPT_PERIOD)
			period = optarg;
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
	if (opts.quick && (new_only || sample != NULL))
		return cli_usage_error("verify", "--quick reads no pack data: use it without --new "
							   "and --sample");
	if (new_only && sample != NULL)
		return cli_usage_error("verify", "give --new or --sample, not both (--sample also "
							   "reads the new packs)");
	opts.mode = new_only ? REPO_VERIFY_MODE_NEW : REPO_VERIFY_MODE_FULL;
	if (sample != NULL)
	{
		char *end;
		double v = strtod(sample, &end);

		if (*sample == '\0' || *end != '\0' || !(v >= 0.0 && v <= 100.0))
			return cli_usage_error("verify", "invalid sample percentage '%s' (a number from 0 "
								   "to 100, e.g. --sample 5)", sample);
		opts.mode = REPO_VERIFY_MODE_SAMPLE;
		opts.sample_percent = v;
	}
	if (period != NULL)
	{
		int64_t secs;

		if (pv_duration_parse(&secs, period) < 0)
			return cli_usage_error("verify", "invalid --verify-period '%s' (a duration such as "
								   "30d, 12h or 0)", period);
		opts.period = secs;
	}
	if (jobs != NULL && !cli_int_parse(&opts.jobs, jobs, 0, 256))
		return cli_usage_error("verify", "invalid number of jobs '%s' (0 to 256; 0 = one per core)", jobs);
	opts.backup_check_payload = &wal;
	opts.backups = (const char *const *) (argv + optind);
	opts.nbackups = (size_t) (argc - optind);
	if ((rc = cli_setup(&common, &cfg)) < 0)
		return cli_fail(rc);
	if (jobs == NULL)
		opts.jobs = (int) cfg_int(cfg, NULL, "jobs");
	if (period == NULL)
		opts.period = cfg_duration(cfg, NULL, "verify-period");	/* unset: 0, no period */
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
		print_text(&report, opts.nbackups > 0);
		if (report_has_unindexed_chunks(&report))
			fprintf(stderr, "HINT: chunks missing from the index but present in packs come back "
					"with 'pgvault repo rebuild-index'\n");
	}
	status = repo_verify_report_ok(&report) ? 0 : pv_error_exit_status(PV_ECORRUPT);
	repo_verify_report_free(&report);
done:
	wal_cache_free(&wal);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
