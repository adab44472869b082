/*
 * repo.c (cli): "pgvault repo stats|rebuild-index|prune|unlock", the
 * repository's maintenance commands, and cli_repo_open(), which every
 * command that reads or writes a repository uses to open it.
 *
 * The work is in src/repo/{stats,rebuild,prune,lock}.c; this file parses
 * options, prints text or JSON and picks the exit status (2 usage, 3 damage
 * found, 4 locked).
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "repo/lock.h"
#include "repo/prune.h"
#include "repo/rebuild.h"
#include "repo/repo.h"
#include "repo/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared by the subcommands ---- */

enum
{
	OPT_DRY_RUN = CLI_OPT_FIRST_COMMAND,
	OPT_REPACK,
	OPT_LOCK_WAIT,
	OPT_FORCE,
	OPT_JOBS,
};

static const char help_repo[] =
	"pgvault repo: repository maintenance\n\n"
	"Usage:\n"
	"  pgvault repo stats            sizes, counts, dedup and compression ratios\n"
	"  pgvault repo prune            delete or repack data no backup needs\n"
	"  pgvault repo rebuild-index    recreate the index from the pack files\n"
	"  pgvault repo unlock           remove stale locks (--force: all locks)\n\n"
	"Each has its own --help (\"pgvault repo prune --help\").\n\n"
	"Examples:\n"
	"  pgvault repo stats --repo /srv/pgvault\n"
	"  pgvault repo prune --dry-run\n"
	"  pgvault repo rebuild-index --json\n";

/* Parse the common options only (plus the ones in extra); returns -1 to go on, else an exit status. */
typedef struct SubOpts
{
	CliCommon common;
	bool dry_run;
	bool force;
	const char *repack;
	const char *lock_wait;
	const char *jobs;
} SubOpts;

static int
sub_parse(SubOpts *o, const char *name, const char *help, int argc, char **argv,
		  const struct option *longopts)
{
	char cmd[64];
	int opt;

	snprintf(cmd, sizeof(cmd), "repo %s", name);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&o->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_DRY_RUN:
				o->dry_run = true;
				break;
			case OPT_FORCE:
				o->force = true;
				break;
			case OPT_REPACK:
				o->repack = optarg;
				break;
			case OPT_LOCK_WAIT:
				o->lock_wait = optarg;
				break;
			case 'j':
			case OPT_JOBS:
				o->jobs = optarg;
				break;
			default:
				return cli_bad_option(cmd, argv, opt);
		}
	}
	if (o->common.help)
	{
		cli_print_help(help, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return -1;
}

/* Open config and repository; returns -1 on success, else an exit status. */
static int
sub_open(SubOpts *o, PvConfig **cfg, Repo **repo)
{
	int rc;

	*cfg = NULL;
	*repo = NULL;
	if ((rc = cli_setup(&o->common, cfg)) < 0 || (rc = cli_repo_open(repo, *cfg, &o->common)) < 0)
	{
		int status = cli_fail(rc);

		cfg_free(*cfg);
		*cfg = NULL;
		return status;
	}
	return -1;
}

static int
jobs_parse(const char *cmd, const char *text, PvConfig *cfg, int *out)
{
	if (text == NULL)
	{
		*out = (int) cfg_int(cfg, NULL, "jobs");
		return -1;
	}
	if (!cli_int_parse(out, text, 0, 256))
		return cli_usage_error(cmd, "invalid number of jobs '%s' (0 to 256; 0 = one per core)",
							   text);
	return -1;
}

static int
lock_wait_parse(const char *cmd, const char *text, int64_t *out)
{
	*out = 0;
	if (text != NULL && pv_duration_parse(out, text) < 0)
		return cli_usage_error(cmd, "%s", pv_error_msg());
	return -1;
}

/* ---- stats ---- */

static const char help_stats[] =
	"pgvault repo stats: what the repository holds and what it costs\n\n"
	"Usage:\n  pgvault repo stats [OPTIONS]\n\n"
	"Reads the index and the backups' manifests (no pack data) and prints:\n"
	"  logical size       what restoring every backup would write\n"
	"  unique data        the distinct chunks, before compression\n"
	"  stored             the pack files (what the storage holds)\n"
	"  dedup ratio        logical size / unique data\n"
	"  compression ratio  unique data / its stored size\n\n"
	"Examples:\n"
	"  pgvault repo stats --repo /srv/pgvault\n"
	"  pgvault repo stats --json | jq .dedup_ratio\n";

static int
repo_stats_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	SubOpts o = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoStats s;
	int status, rc;

	if ((status = sub_parse(&o, "stats", help_stats, argc, argv, longopts)) >= 0 ||
		(status = sub_open(&o, &cfg, &repo)) >= 0)
		return status;
	if ((rc = repo_stats_compute(repo, &s)) < 0)
		status = cli_fail(rc);
	else if (o.common.json)
	{
		json_t *j = repo_stats_json(&s);

		json_object_set_new(j, "repository", json_string(repo_url(repo)));
		json_object_set_new(j, "encrypted", json_boolean(repo_is_encrypted(repo)));
		pv_json_dump(stdout, j);
		json_decref(j);
		status = 0;
	}
	else
	{
		char a[32], b[32], c[32];

		printf("repository:         %s (%s)\n", repo_url(repo),
			   repo_is_encrypted(repo) ? "encrypted" : "not encrypted");
		printf("backups:            %llu\n", (unsigned long long) s.backups);
		printf("logical size:       %s\n", pv_size_format(a, sizeof(a), s.logical_bytes));
		printf("unique data:        %s in %llu chunks (%s stored)\n",
			   pv_size_format(a, sizeof(a), s.unique_raw_bytes), (unsigned long long) s.data_chunks,
			   pv_size_format(b, sizeof(b), s.unique_stored_bytes));
		printf("stored:             %s in %llu packs, index %s in %llu files\n",
			   pv_size_format(a, sizeof(a), s.pack_bytes), (unsigned long long) s.packs,
			   pv_size_format(c, sizeof(c), s.index_bytes), (unsigned long long) s.index_files);
		printf("tree blobs:         %llu\n", (unsigned long long) s.tree_blobs);
		printf("dedup ratio:        %.2fx\n", s.dedup_ratio);
		printf("compression ratio:  %.2fx\n", s.compression_ratio);
		printf("total ratio:        %.2fx (logical size / stored)\n", s.total_ratio);
		if (s.unindexed_packs > 0 || s.duplicate_blobs > 0)
			printf("leftovers:          %llu unindexed packs, %llu duplicate blobs "
				   "('pgvault repo prune' removes them)\n",
				   (unsigned long long) s.unindexed_packs, (unsigned long long) s.duplicate_blobs);
		status = 0;
	}
	repo_free(repo);
	cfg_free(cfg);
	return status;
}

/* ---- prune ---- */

static const char help_prune[] =
	"pgvault repo prune: delete or repack the data no backup needs\n\n"
	"Usage:\n  pgvault repo prune [OPTIONS]\n\n"
	"Takes the exclusive repository lock (it fails at once, exit status 4, while a\n"
	"backup or another command holds a lock, unless --lock-wait says to wait),\n"
	"marks every chunk the backups' manifests need, deletes packs holding none,\n"
	"repacks packs holding too few, and rewrites the index.  Safe to interrupt at\n"
	"any point: run it again to finish.  Remove backups first (expire); prune\n"
	"frees their data.\n\n"
	"Options:\n"
	"  --dry-run                say what would be freed, change nothing\n"
	"  --repack-threshold=PCT   repack packs whose live part is below PCT\n"
	"                           (default 50%; 0 never repacks)\n"
	"  --lock-wait=DURATION     wait this long for other locks to go (default 0)\n\n"
	"Exit status: 0 done, 3 the repository is damaged (nothing deleted),\n"
	"4 locked by another command.\n\n"
	"Examples:\n"
	"  pgvault repo prune --dry-run\n"
	"  pgvault repo prune --repack-threshold 30%\n"
	"  pgvault repo prune --lock-wait 10min --json\n";

static int
threshold_parse(const char *text, int *out)
{
	char *end;
	long v;

	*out = REPO_PRUNE_REPACK_DEFAULT;
	if (text == NULL)
		return 0;
	v = strtol(text, &end, 10);
	if (end != text && *end == '%')
		end++;
	if (*text == '\0' || end == text || *end != '\0' || v < 0 || v > 100)
		return -1;
	*out = (int) v;
	return 0;
}

static void
prune_print(const RepoPruneResult *r)
{
	const char *will = r->dry_run ? "would " : "";
	char a[32], b[32];

	printf("prune: %llu backups need %llu of %llu blobs (%s of %s in %llu packs)\n",
		   (unsigned long long) r->backups, (unsigned long long) r->live_blobs,
		   (unsigned long long) r->blobs, pv_size_format(a, sizeof(a), r->live_bytes),
		   pv_size_format(b, sizeof(b), r->pack_bytes), (unsigned long long) r->packs);
	printf("prune: %sdelete %llu packs with nothing needed and %llu packs no index lists\n", will,
		   (unsigned long long) r->packs_deleted, (unsigned long long) r->packs_unindexed);
	printf("prune: %srepack %llu packs (%s copied", will, (unsigned long long) r->packs_repacked,
		   pv_size_format(a, sizeof(a), r->bytes_repacked));
	if (!r->dry_run)
		printf(" into %llu new packs", (unsigned long long) r->packs_written);
	printf(")\n");
	printf("prune: %sreplace %llu index files, %sremove %llu temp files\n", will,
		   (unsigned long long) r->index_files_deleted, will, (unsigned long long) r->tmp_deleted);
	printf("prune: %s %s\n", r->dry_run ? "would free" : "freed",
		   pv_size_format(a, sizeof(a), r->bytes_freed));
}

static int
repo_prune_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"repack-threshold", required_argument, NULL, OPT_REPACK},
		{"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
		{NULL, 0, NULL, 0},
	};
	SubOpts o = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoPruneOpts opts = {.lock = true};
	RepoPruneResult r;
	int status, rc;

	if ((status = sub_parse(&o, "prune", help_prune, argc, argv, longopts)) >= 0)
		return status;
	if (threshold_parse(o.repack, &opts.repack_threshold) < 0)
		return cli_usage_error("repo prune", "invalid repack threshold '%s' (a percentage, 0%% "
							   "to 100%%)", o.repack);
	if ((status = lock_wait_parse("repo prune", o.lock_wait, &opts.lock_wait_seconds)) >= 0 ||
		(status = sub_open(&o, &cfg, &repo)) >= 0)
		return status;
	opts.dry_run = o.dry_run;
	if ((rc = repo_prune(repo, &opts, &r)) < 0)
		status = cli_fail(rc);
	else
	{
		if (o.common.json)
		{
			json_t *j = repo_prune_result_json(&r);

			pv_json_dump(stdout, j);
			json_decref(j);
		}
		else
			prune_print(&r);
		status = 0;
	}
	repo_free(repo);
	cfg_free(cfg);
	return status;
}

/* ---- rebuild-index ---- */

static const char help_rebuild[] =
	"pgvault repo rebuild-index: recreate the index from the pack files\n\n"
	"Usage:\n  pgvault repo rebuild-index [OPTIONS]\n\n"
	"Reads the header of every pack (each pack lists its own chunks), writes new\n"
	"index files, then removes the old ones.  Use it when index files were lost\n"
	"or damaged (verify says so).  Takes the exclusive lock.\n\n"
	"Options:\n"
	"  -j, --jobs=N             packs read in parallel (default: one per core)\n"
	"  --lock-wait=DURATION     wait this long for other locks to go (default 0)\n\n"
	"Exit status: 0 done, 3 some packs are damaged (the rest are indexed),\n"
	"4 locked by another command.\n\n"
	"Examples:\n"
	"  pgvault repo rebuild-index\n"
	"  pgvault repo rebuild-index --repo s3://backups/pg --jobs 16 --json\n";

static int
repo_rebuild_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"jobs", required_argument, NULL, OPT_JOBS},
		{"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
		{NULL, 0, NULL, 0},
	};
	SubOpts o = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoRebuildOpts opts = {.lock = true};
	RepoRebuildResult r;
	int status, rc;

	if ((status = sub_parse(&o, "rebuild-index", help_rebuild, argc, argv, longopts)) >= 0 ||
		(status = lock_wait_parse("repo rebuild-index", o.lock_wait,
								  &opts.lock_wait_seconds)) >= 0 ||
		(status = sub_open(&o, &cfg, &repo)) >= 0)
		return status;
	if ((status = jobs_parse("repo rebuild-index", o.jobs, cfg, &opts.jobs)) >= 0)
		goto done;
	if ((rc = repo_rebuild_index(repo, &opts, &r)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (o.common.json)
	{
		json_t *j = repo_rebuild_result_json(&r);

		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
	{
		printf("rebuild-index: %llu packs, %llu blobs indexed in %llu new index files; %llu old "
			   "index files removed\n", (unsigned long long) r.packs,
			   (unsigned long long) r.blobs, (unsigned long long) r.new_files,
			   (unsigned long long) r.old_files);
		for (uint64_t i = 0; i < r.bad_packs; i++)
			printf("DAMAGED %s\n", r.bad[i]);
		if (r.bad_packs > 0)
			printf("rebuild-index: %llu damaged packs (%llu kept from the old index); run "
				   "'pgvault verify' to see which backups they affect\n",
				   (unsigned long long) r.bad_packs, (unsigned long long) r.carried_packs);
	}
	status = r.bad_packs > 0 ? pv_error_exit_status(PV_ECORRUPT) : 0;
	repo_rebuild_result_free(&r);
done:
	repo_free(repo);
	cfg_free(cfg);
	return status;
}

/* ---- unlock ---- */

static const char help_unlock[] =
	"pgvault repo unlock: remove stale repository locks\n\n"
	"Usage:\n  pgvault repo unlock [--force] [OPTIONS]\n\n"
	"Lists the lock objects and removes the stale ones: those not refreshed for\n"
	"30 minutes, or taken on this host by a process that no longer exists.\n"
	"Commands remove stale locks in their way by themselves; this is for looking\n"
	"and for cleaning up.\n\n"
	"Options:\n"
	"  --force                  remove EVERY lock, also those of running commands.\n"
	"                           Only when you know no pgvault process uses the\n"
	"                           repository: a prune let through while a backup\n"
	"                           runs can delete data that backup needs.\n\n"
	"Examples:\n"
	"  pgvault repo unlock\n"
	"  pgvault repo unlock --force --repo /srv/pgvault\n";

typedef struct LockPrint
{
	json_t *list;
} LockPrint;

static int
lock_print_cb(const RepoLockInfo *info, void *payload)
{
	LockPrint *lp = payload;
	char t[PV_TIME_FORMAT_MAX];

	if (lp->list != NULL)
	{
		json_t *j = json_object();

		json_object_set_new(j, "key", json_string(info->key));
		json_object_set_new(j, "host", json_string(info->host));
		json_object_set_new(j, "pid", json_integer(info->pid));
		json_object_set_new(j, "command", json_string(info->command ? info->command : ""));
		json_object_set_new(j, "exclusive", json_boolean(info->exclusive));
		json_object_set_new(j, "refresh_time_unix", json_integer(info->refresh_time));
		json_object_set_new(j, "stale", json_boolean(info->stale));
		json_array_append_new(lp->list, j);
		return 0;
	}
	printf("lock %s: %s %s by %s pid %lld, refreshed %s%s\n", info->key,
		   info->exclusive ? "exclusive" : "shared", info->command ? info->command : "?",
		   info->host, (long long) info->pid,
		   pv_time_format_local(t, sizeof(t), info->refresh_time * PV_USEC_PER_SEC),
		   info->stale ? " (stale)" : "");
	return 0;
}

static int
repo_unlock_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"force", no_argument, NULL, OPT_FORCE},
		{NULL, 0, NULL, 0},
	};
	SubOpts o = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	LockPrint lp = {NULL};
	int status, rc, n = 0;

	if ((status = sub_parse(&o, "unlock", help_unlock, argc, argv, longopts)) >= 0 ||
		(status = sub_open(&o, &cfg, &repo)) >= 0)
		return status;
	if (o.common.json)
		lp.list = json_array();
	if ((rc = repo_lock_list(repo, 0, lock_print_cb, &lp)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (o.force)
		pv_log_warn("removing EVERY lock of repository '%s', also those of commands that may "
					"still be running: a backup running now may fail, and a prune let through "
					"while it runs could delete data it needs", repo_url(repo));
	if ((rc = repo_lock_break(repo, 0, o.force, &n)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (lp.list != NULL)
	{
		json_t *j = json_object();

		json_object_set_new(j, "locks", lp.list);
		json_object_set_new(j, "removed", json_integer(n));
		lp.list = NULL;
		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
		printf("unlock: removed %d %slocks\n", n, o.force ? "" : "stale ");
	status = 0;
done:
	json_decref(lp.list);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}

/* ---- dispatch ---- */

int
cli_repo(int argc, char **argv)
{
	static const struct
	{
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
		{"stats", repo_stats_cmd},
		{"prune", repo_prune_cmd},
		{"rebuild-index", repo_rebuild_cmd},
		{"unlock", repo_unlock_cmd},
	};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
	{
		fputs(help_repo, stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	fprintf(stderr, "pgvault repo: error: unknown subcommand '%s'\n"
			"Try 'pgvault repo --help' for more information.\n", argv[1]);
	return 2;
}
