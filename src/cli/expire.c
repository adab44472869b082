/*
 * expire.c (cli): "pgvault expire", apply the retention policies: print for
 * every backup whether it is kept and by which rule, delete the manifests
 * of the others, then prune the data no remaining backup needs.
 *
 * The rules are in src/ops/retention.c.  Order (format rule 4): manifests
 * first, then prune; the whole run holds the exclusive lock, so no backup
 * writes and no restore reads meanwhile, and the plan cannot go stale
 * between deciding and deleting.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "ops/retention.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/prune.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault expire: apply the retention policies, then remove data no backup needs\n\n"
	"Usage:\n  pgvault expire [OPTIONS]\n\n"
	"Backups are judged per source, kind and (logical backups) database.  In each\n"
	"group the newest backup and pinned backups ('pgvault pin') are always kept;\n"
	"keep-hourly/daily/weekly/monthly/yearly N keep the newest backup of each of\n"
	"the last N periods that have one (local periods in the configured\n"
	"time-zone), keep-within D keeps what started within D of the newest backup,\n"
	"keep-min N keeps at least N.  A group without any of these keeps everything.\n"
	"Policies come from --policy, else [source:NAME] (retention-KIND, then\n"
	"keep-*), else [global] (retention-KIND, then keep-*), e.g.\n"
	"    [global]\n"
	"    retention-logical = daily=7,weekly=4,monthly=12,yearly=5\n"
	"    retention-physical = daily=7,within=2d,min=3\n\n"
	"Every backup is printed with its fate and the rules that keep it; then the\n"
	"manifests of expired backups are deleted, the archived WAL older than the\n"
	"oldest kept physical backup of each source (no kept backup needs it, for\n"
	"its restore or its point-in-time window) is deleted, and the repository is\n"
	"pruned.\n\n"
	"Options:\n"
	"  --dry-run                only print what would happen\n"
	"  --policy=SPEC            this policy for every group, instead of the\n"
	"                           configured ones: hourly=N,daily=N,weekly=N,\n"
	"                           monthly=N,yearly=N,within=DURATION,min=N (any\n"
	"                           subset; within=30d is 'find -mtime +30 -delete')\n"
	"  --kind=KIND              only backups of this kind (logical, physical, file)\n"
	"  --source=NAME            only backups of this source\n"
	"  --no-prune               delete the manifests, leave the data for a later prune\n"
	"  --repack-threshold=PCT   repack packs with less live data (default 50%)\n"
	"  --lock-wait=DURATION     wait this long for running backups (default: fail)\n\n"
	"Exit status: 0 done, 4 the repository is busy, 1 something failed.\n\n"
	"Examples:\n"
	"  pgvault expire --dry-run\n"
	"  pgvault expire --policy daily=7,weekly=4,monthly=12 --dry-run\n"
	"  pgvault expire --policy within=30d --kind logical\n"
	"  pgvault expire --source prod --kind logical --json\n";

enum
{
	OPT_DRY_RUN = CLI_OPT_FIRST_COMMAND,
	OPT_KIND,
	OPT_NO_PRUNE,
	OPT_REPACK,
	OPT_LOCK_WAIT,
	OPT_POLICY,
};

typedef struct ExpireArgs
{
	CliCommon common;
	bool dry_run, no_prune;
	const char *kind;
	const char *repack;
	const char *lock_wait;
	const char *policy;
} ExpireArgs;

static void
print_backup(const RetentionPlan *plan, const RetentionItem *it, const char *tz_print)
{
	const RetentionGroup *g = it->group != (size_t) -1 ? &plan->groups[it->group] : NULL;
	char t[PV_TIME_FORMAT_MAX], label[64];
	Buf why = PV_BUF_INIT;

	pv_time_format(t, sizeof(t), it->start, g ? g->time_zone : tz_print);
	t[10] = ' ';
	t[16] = '\0';				/* "2026-11-22 02:39" */
	for (uint32_t bit = 1; bit < (1u << RETENTION_NREASONS); bit <<= 1)
	{
		if (!(it->reasons & bit))
			continue;
		if (why.len > 0)
			buf_append_str(&why, ", ");
		buf_append_str(&why, retention_reason_name(bit));
		if (g != NULL && bit >= RETENTION_HOURLY && bit <= RETENTION_YEARLY)
		{
			retention_period_label(label, sizeof(label), bit, it->start, g->time_zone);
			buf_printf(&why, " %s", label);
		}
	}
	if (it->error != NULL)
		buf_printf(&why, ": %s", it->error);
	if (it->reasons == 0)
		buf_append_str(&why, "(no rule keeps it)");
	printf("  %-6s  %s  %s  %s\n", it->reasons ? "keep" : "expire", it->id, t, buf_cstr(&why));
	buf_free(&why);
}

static void
print_plan(const RetentionPlan *plan, const char *tz_print)
{
	for (size_t g = 0; g < plan->ngroups; g++)
	{
		const RetentionGroup *gr = &plan->groups[g];
		Buf label = PV_BUF_INIT, pol = PV_BUF_INIT;

		retention_group_label(gr, &label);
		retention_policy_format(&gr->policy, &pol);
		printf("%s: policy %s (%s), time zone %s\n", buf_cstr(&label), buf_cstr(&pol), gr->origin,
			   gr->time_zone ? gr->time_zone : "local");
		/* newest first, as people read retention */
		for (size_t i = plan->nitems; i > 0; i--)
			if (plan->items[i - 1].group == g)
				print_backup(plan, &plan->items[i - 1], tz_print);
		buf_free(&label);
		buf_free(&pol);
	}
	if (plan->nunreadable > 0)
	{
		printf("unreadable manifests (kept; 'pgvault verify' says more):\n");
		for (size_t i = 0; i < plan->nitems; i++)
			if (plan->items[i].group == (size_t) -1)
				print_backup(plan, &plan->items[i], tz_print);
	}
}

static void
prune_print(const RepoPruneResult *r)
{
	char a[32], b[32], c[32];

	printf("prune: %llu backups need %s of %s stored; deleted %llu packs, repacked %llu, freed %s\n",
		   (unsigned long long) r->backups, pv_size_format(a, sizeof(a), r->live_bytes),
		   pv_size_format(b, sizeof(b), r->pack_bytes),
		   (unsigned long long) (r->packs_deleted + r->packs_unindexed),
		   (unsigned long long) r->packs_repacked, pv_size_format(c, sizeof(c), r->bytes_freed));
}

static void
wal_print(const RetentionWalPlan *wp, bool dry_run)
{
	char a[32];

	for (size_t i = 0; i < wp->n; i++)
	{
		const RetentionWal *w = &wp->sources[i];

		if (w->reason != NULL)
			printf("wal: %s: nothing deleted: %s\n", w->source, w->reason);
		else if (w->nfiles == 0)
			printf("wal: %s: nothing before %s (the oldest kept physical backup's start)\n", w->source,
				   w->keep_from);
		else
			printf("wal: %s: %s %zu files (%s, %s to %s), kept from %s on (%zu files)\n", w->source,
				   dry_run ? "would delete" : "deleted", w->nfiles, pv_size_format(a, sizeof(a), w->bytes),
				   w->files[0].name, w->files[w->nfiles - 1].name, w->keep_from, w->kept);
	}
}

static int
parse_args(ExpireArgs *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"kind", required_argument, NULL, OPT_KIND},
		{"no-prune", no_argument, NULL, OPT_NO_PRUNE},
		{"repack-threshold", required_argument, NULL, OPT_REPACK},
		{"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
		{"policy", required_argument, NULL, OPT_POLICY},
		{NULL, 0, NULL, 0},
	};
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&a->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_DRY_RUN:
				a->dry_run = true;
				break;
			case OPT_KIND:
				a->kind = optarg;
				break;
			case OPT_NO_PRUNE:
				a->no_prune = true;
				break;
			case OPT_REPACK:
				a->repack = optarg;
				break;
			case OPT_LOCK_WAIT:
				a->lock_wait = optarg;
				break;
			case OPT_POLICY:
				a->policy = optarg;
				break;
			default:
				return cli_bad_option("expire", argv, opt);
		}
	}
	if (a->common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("expire", "unexpected argument '%s'", argv[optind]);
	return -1;
}

/* Delete the expired backups' manifests (and their verify records). */
static int
expire_delete(Repo *repo, RepoLock *lock, const RetentionPlan *plan, json_t *deleted)
{
	int rc = PV_OK;

	for (size_t i = 0; i < plan->nitems; i++)
	{
		const RetentionItem *it = &plan->items[i];

		if (it->reasons != 0)
			continue;
		if ((rc = repo_lock_check(lock)) < 0)
			return rc;
		if ((rc = repo_manifest_delete(repo, it->id)) < 0)
			return pv_error_prefix(rc, "cannot expire backup '%s'", it->id);
		pv_log_detail("expired backup '%s'", it->id);
		json_array_append_new(deleted, json_string(it->id));
		if (catalog_backup_forget(repo, it->id) < 0)
		{
			pv_log_warn("backup '%s' expired, but its verify records stay: %s", it->id, pv_error_msg());
			pv_error_clear();
		}
	}
	return rc;
}

int
cli_expire(int argc, char **argv)
{
	ExpireArgs a = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoLock *lock = NULL;
	RetentionPlan plan = {0};
	RetentionWalPlan wal = {0};
	RetentionPolicy policy = {0};
	RepoPruneOpts popts = {.lock = false};
	RepoPruneResult pres;
	bool pruned = false;
	json_t *deleted = json_array();
	int64_t wait = 0;
	long threshold = REPO_PRUNE_REPACK_DEFAULT;
	int status, rc;

	if ((status = parse_args(&a, argc, argv)) >= 0)
		goto out;
	if (a.lock_wait != NULL && pv_duration_parse(&wait, a.lock_wait) < 0)
	{
		status = cli_usage_error("expire", "%s", pv_error_msg());
		goto out;
	}
	if (a.repack != NULL)
	{
		char *end;

		threshold = strtol(a.repack, &end, 10);
		if (*end == '%')
			end++;
		if (end == a.repack || *end != '\0' || threshold < 0 || threshold > 100)
		{
			status = cli_usage_error("expire", "invalid repack threshold '%s' (a percentage, 0%% to 100%%)",
									 a.repack);
			goto out;
		}
	}
	if (a.policy != NULL && retention_policy_parse(&policy, a.policy) < 0)
	{
		status = cli_usage_error("expire", "%s", pv_error_msg());
		goto out;
	}
	popts.repack_threshold = (int) threshold;
	popts.dry_run = a.dry_run;
	if ((rc = cli_setup(&a.common, &cfg)) < 0 || (rc = cli_repo_open(&repo, cfg, &a.common)) < 0)
		goto fail;
	/* A dry run changes nothing and takes no lock; a real one locks before deciding. */
	if (!a.dry_run &&
		(rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {.exclusive = true, .command = "expire",
																	.wait_seconds = wait})) < 0)
		goto fail;
	if ((rc = retention_plan_build(&plan, repo, cfg, &(RetentionPlanOpts) {.source = a.common.source,
																		   .kind = a.kind,
																		   .policy = a.policy ? &policy : NULL})) < 0)
		goto fail;
	if (!a.common.json)
		print_plan(&plan, cfg_str(cfg, NULL, "time-zone"));
	if (!a.dry_run && (rc = expire_delete(repo, lock, &plan, deleted)) < 0)
		goto fail;
	if (!a.common.json)
		printf("expire: %s %zu of %zu backups (%zu kept)\n", a.dry_run ? "would expire" : "expired",
			   plan.nexpire, plan.nitems, plan.nitems - plan.nexpire);
	/* WAL after the manifests: a crash in between leaves WAL nobody needs, never the reverse. */
	if ((rc = retention_wal_plan(&wal, repo, &plan)) < 0 ||
		(!a.dry_run && (rc = retention_wal_expire(repo, &wal, NULL)) < 0))
		goto fail;
	if (!a.common.json)
		wal_print(&wal, a.dry_run);
	if (!a.dry_run)
	{
		if (!a.no_prune)
		{
			if ((rc = repo_lock_check(lock)) < 0 || (rc = repo_prune(repo, &popts, &pres)) < 0)
				goto fail;
			pruned = true;
			if (!a.common.json)
				prune_print(&pres);
		}
	}
	else if (!a.common.json && plan.nexpire > 0 && !a.no_prune)
		printf("prune: would then remove the data only the expired backups need\n");
	if (a.common.json)
	{
		json_t *doc = retention_plan_json(&plan);

		json_object_set_new(doc, "repository", json_string(repo_url(repo)));
		json_object_set_new(doc, "dry_run", json_boolean(a.dry_run));
		json_object_set_new(doc, "deleted", deleted);
		deleted = NULL;
		json_object_set_new(doc, "prune", pruned ? repo_prune_result_json(&pres) : json_null());
		json_object_set_new(doc, "wal", retention_wal_plan_json(&wal));
		pv_json_dump(stdout, doc);
		json_decref(doc);
	}
	status = 0;
	goto out;
fail:
	status = cli_fail(rc);
out:
	repo_lock_release(lock);
	retention_plan_free(&plan);
	retention_wal_plan_free(&wal);
	json_decref(deleted);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
