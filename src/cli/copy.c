/*
 * copy.c (cli): "pgvault copy", backups and WAL from one repository to
 * another, and cli_sync_secondaries*(), which keep a source's other
 * repositories in step after a backup or an archive-push (copy.h).
 *
 * The work is in src/repo/copy.c; this file resolves the two repositories
 * (each with its own storage settings and passphrase), prints text or JSON
 * and picks the exit status.
 *
 * Passphrases: the source repository's come from the usual places
 * (cli_repo_open).  The destination's never from argv: --to-passphrase-file,
 * else $PGVAULT_TO_PASSPHRASE, else $PGVAULT_TO_PASSPHRASE_FILE, else the
 * passphrase-file or passphrase-command of its own [repo:NAME] section,
 * else the usual places (the same passphrase as the source, which is what
 * one person managing both repositories often chooses).  A secondary
 * repository of a source is opened with the passphrase of its section,
 * else the usual places.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/copy.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "repo/copy.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A secondary that lags for WAL is retried by archive-push at most this often. */
#define SYNC_WAL_RETRY_SECONDS (5 * 60)

static const char help_text[] =
	"pgvault copy: copy backups and their WAL to another repository\n\n"
	"Usage:\n  pgvault copy --to=REPO [--from=REPO] [ID...|--all] [OPTIONS]\n\n"
	"Copies the backups the destination lacks (by backup id), with the chunks\n"
	"they need that it lacks, then the WAL archive of their sources: only what\n"
	"is missing, so copying again copies nothing.  Every chunk read is checked\n"
	"against its id before it is written, and a backup appears in the\n"
	"destination only once everything it needs is there (its manifest is\n"
	"written last).  The repositories may have different encryption keys, or\n"
	"one may have none: chunk ids are then recomputed with the destination's\n"
	"key.  Restore reads from any repository that has the backup (--repo).\n\n"
	"Without IDs (or with --all) every backup and every source's WAL is copied;\n"
	"with IDs (full ids, unique prefixes or 'latest'), those backups and the\n"
	"WAL of the sources of the physical ones.\n\n"
	"REPO is a path, a URL (s3://, gs://, azure://) or the NAME of a [repo:NAME]\n"
	"section, whose settings (credentials, endpoint, passphrase) are used.\n\n"
	"Options:\n"
	"  --from=REPO              the repository to copy from (default: --repo,\n"
	"                           $PGVAULT_REPO or the configured one)\n"
	"  --to=REPO                the repository to copy to (required)\n"
	"  --to-passphrase-file=FILE\n"
	"                           the destination's passphrase, first line (else\n"
	"                           $PGVAULT_TO_PASSPHRASE, $PGVAULT_TO_PASSPHRASE_FILE,\n"
	"                           its [repo:NAME] passphrase-file or -command, else\n"
	"                           the source's passphrase)\n"
	"  --all                    every backup (the default)\n"
	"  --no-wal                 copy backups only\n"
	"  --dry-run                say what would be copied; write nothing\n"
	"  -j, --jobs=N             parallel reads and writes (default: one per core)\n\n"
	"Exit status: 0 everything copied, 3 damage found in the source (that backup\n"
	"is not copied), 4 a repository is locked, 1 another failure.\n\n"
	"Examples:\n"
	"  pgvault copy --to s3://offsite/pg\n"
	"  pgvault copy --from /srv/pgvault --to offsite latest\n"
	"  PGVAULT_TO_PASSPHRASE_FILE=~/.dr-pass pgvault copy --to azure://dr/pg --dry-run\n";

enum
{
	OPT_FROM = CLI_OPT_FIRST_COMMAND,
	OPT_TO,
	OPT_TO_PASSPHRASE_FILE,
	OPT_ALL,
	OPT_NO_WAL,
	OPT_DRY_RUN,
	OPT_JOBS,
};

/* ---- opening a second repository ---- */

typedef struct DestPassphrase
{
	const char *file;			/* --to-passphrase-file, or NULL */
	bool env;					/* $PGVAULT_TO_PASSPHRASE(_FILE) apply */
	const PvConfig *cfg;
	const CfgSection *sec;		/* its [repo:NAME], or NULL */
	RepoPassphraseSource fallback;	/* the usual places */
} DestPassphrase;

static int
dest_passphrase(char **out, void *payload)
{
	DestPassphrase *p = payload;
	const char *v;

	*out = NULL;
	if (p->file != NULL)
		return repo_passphrase_from_file(out, p->file);
	if (p->env && (v = getenv("PGVAULT_TO_PASSPHRASE")) != NULL)
	{
		if (v[0] == '\0')
			return pv_error_set(PV_ECONFIG, "passphrase from $PGVAULT_TO_PASSPHRASE is empty");
		*out = pv_strdup(v);
		return 0;
	}
	if (p->env && (v = getenv("PGVAULT_TO_PASSPHRASE_FILE")) != NULL && v[0] != '\0')
		return repo_passphrase_from_file(out, v);
	if (p->sec != NULL && (v = cfg_str(p->cfg, p->sec, "passphrase-file")) != NULL)
		return repo_passphrase_from_file(out, v);
	if (p->sec != NULL && (v = cfg_str(p->cfg, p->sec, "passphrase-command")) != NULL)
		return repo_passphrase_from_command(out, v);
	pv_log_debug("no passphrase of its own for the second repository: using the usual sources");
	return repo_passphrase_default(out, &p->fallback);
}

/*
 * Open the repository "name" (a [repo:NAME] or a URL) with its own storage
 * settings and passphrase.  *out_sec (may be NULL) gets its section.
 */
static int
second_repo_open(Repo **out, CfgSection **out_sec, PvConfig *cfg, const char *name,
				 const char *pass_file, bool env)
{
	CfgSection *sec = cfg_repo_find(cfg, name);
	const char *url = sec ? cfg_str(cfg, sec, "url") : name;
	DestPassphrase dp = {pass_file, env, cfg, sec,
		{cfg_str_layered(cfg, NULL, "passphrase-file"),
		 cfg_str_layered(cfg, NULL, "passphrase-command")}};
	CliStorageSettings settings;
	int rc;

	*out = NULL;
	if (out_sec != NULL)
		*out_sec = sec;
	if (url == NULL)
		return pv_error_set(PV_ECONFIG, "repository '%s' has no url", name);
	cli_storage_settings(&settings, cfg, sec);
	rc = repo_open_opts(out, url, &settings.opts, dest_passphrase, &dp);
	if ((rc == PV_EAUTH || rc == PV_EUSAGE) && env)
		pv_error_hint("the destination's passphrase comes from --to-passphrase-file, "
					  "PGVAULT_TO_PASSPHRASE(_FILE) or its [repo:NAME] section, else from where "
					  "the source's comes from");
	return rc;
}

/* ---- pgvault copy ---- */

typedef struct CopyRun
{
	CliCommon common;
	const char *to;
	const char *to_pass_file;
	const char *jobs;
	bool all;
	bool no_wal;
	bool dry_run;
	PvConfig *cfg;
	Repo *from;
	Repo *to_repo;
	RepoCopy *copy;
	char **ids;
	size_t nids;
	char **wal_sources;
	size_t nwal;
	json_t *backups;			/* per-backup results */
	json_t *wal;				/* per-source results */
	int first_error;			/* the first failure's code, 0 if none */
	size_t failed;
} CopyRun;

static void
run_fail(CopyRun *r, int rc)
{
	if (r->first_error == 0)
		r->first_error = rc;
	r->failed++;
}

static int
parse_args(CopyRun *r, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"from", required_argument, NULL, OPT_FROM},
		{"to", required_argument, NULL, OPT_TO},
		{"to-passphrase-file", required_argument, NULL, OPT_TO_PASSPHRASE_FILE},
		{"all", no_argument, NULL, OPT_ALL},
		{"no-wal", no_argument, NULL, OPT_NO_WAL},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"jobs", required_argument, NULL, OPT_JOBS},
		{NULL, 0, NULL, 0},
	};
	const char *from = NULL;
	int opt, jobs;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&r->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_FROM:
				from = optarg;
				break;
			case OPT_TO:
				r->to = optarg;
				break;
			case OPT_TO_PASSPHRASE_FILE:
				r->to_pass_file = optarg;
				break;
			case OPT_ALL:
				r->all = true;
				break;
			case OPT_NO_WAL:
				r->no_wal = true;
				break;
			case OPT_DRY_RUN:
				r->dry_run = true;
				break;
			case 'j':
			case OPT_JOBS:
				r->jobs = optarg;
				break;
			default:
				return cli_bad_option("copy", argv, opt);
		}
	}
	if (r->common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (r->to == NULL || r->to[0] == '\0')
		return cli_usage_error("copy", "missing --to (the repository to copy to)");
	if (r->all && optind < argc)
		return cli_usage_error("copy", "give backup IDs or --all, not both");
	if (from != NULL && r->common.repo != NULL && strcmp(from, r->common.repo) != 0)
		return cli_usage_error("copy", "give --from or --repo, not both");
	if (from != NULL)
		r->common.repo = from;
	/* checked here; run reads r->jobs again */
	if (r->jobs != NULL && !cli_int_parse(&jobs, r->jobs, 0, 256))
		return cli_usage_error("copy", "invalid number of jobs '%s' (0 to 256; 0 = one per core)", r->jobs);
	return -1;
}

static void
add_unique(char ***list, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], s) == 0)
			return;
	*list = pv_realloc(*list, (*n + 1) * sizeof(char *));
	(*list)[(*n)++] = pv_strdup(s);
}

/* The backups to copy: every one, or those the arguments name (resolved in the source). */
static int
ids_resolve(CopyRun *r, int argc, char **argv)
{
	int rc;

	if (optind == argc)
		return repo_manifest_ids(r->from, &r->ids, &r->nids);
	for (int i = optind; i < argc; i++)
	{
		char id[REPO_BACKUP_ID_LEN + 1];

		if ((rc = repo_manifest_resolve(r->from, argv[i], NULL, NULL, id)) < 0)
			return rc;
		add_unique(&r->ids, &r->nids, id);
	}
	return 0;
}

static json_t *
stats_json(const RepoCopyStats *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
					 "backups", (json_int_t) s->backups,
					 "backups_present", (json_int_t) s->backups_present,
					 "blobs", (json_int_t) s->blobs,
					 "blobs_present", (json_int_t) s->blobs_present,
					 "blobs_written", (json_int_t) s->blobs_written,
					 "bytes_read", (json_int_t) s->bytes_read,
					 "bytes_written", (json_int_t) s->bytes_written,
					 "raw_bytes_written", (json_int_t) s->raw_bytes_written,
					 "packs", (json_int_t) s->packs,
					 "wal_files", (json_int_t) s->wal_files,
					 "wal_present", (json_int_t) s->wal_present,
					 "wal_bytes", (json_int_t) s->wal_bytes);
}

static void
stats_diff(RepoCopyStats *d, const RepoCopyStats *after, const RepoCopyStats *before)
{
	d->blobs = after->blobs - before->blobs;
	d->blobs_present = after->blobs_present - before->blobs_present;
	d->blobs_written = after->blobs_written - before->blobs_written;
	d->bytes_read = after->bytes_read - before->bytes_read;
	d->bytes_written = after->bytes_written - before->bytes_written;
	d->wal_files = after->wal_files - before->wal_files;
	d->wal_present = after->wal_present - before->wal_present;
	d->wal_bytes = after->wal_bytes - before->wal_bytes;
}

/* Copy one backup; print its line; remember the sources of physical backups for WAL. */
static void
copy_backup(CopyRun *r, const char *id)
{
	RepoManifest *m = NULL;
	RepoCopyStats before, after, d = {0};
	const char *status;
	bool copied = false;
	json_t *j;
	int rc;

	repo_copy_stats(r->copy, &before);
	if ((rc = repo_manifest_load(&m, r->from, id)) == 0)
		rc = repo_copy_one(r->copy, id, &copied);
	repo_copy_stats(r->copy, &after);
	stats_diff(&d, &after, &before);
	if (rc < 0)
		status = "failed";
	else if (after.backups_present > before.backups_present)
		status = "present";
	else
		status = r->dry_run ? "would copy" : "copied";
	if (rc == 0 && strcmp(repo_manifest_kind(m), "physical") == 0)
		add_unique(&r->wal_sources, &r->nwal,
				   repo_manifest_source(m)[0] ? repo_manifest_source(m) : "default");
	j = json_pack("{s:s, s:s, s:o}", "id", id, "status", status, "kind",
				  m ? json_string(repo_manifest_kind(m)) : json_null());
	json_object_set_new(j, "source", m && repo_manifest_source(m)[0] ?
						json_string(repo_manifest_source(m)) : json_null());
	if (rc < 0)
	{
		run_fail(r, rc);
		json_object_set_new(j, "error", json_string(pv_error_msg()));
		if (!r->common.json)
			printf("FAILED   %s  %s\n", id, pv_error_msg());
		pv_log_error("%s", pv_error_msg());
		if (pv_error_hint_msg() != NULL && pv_error_hint_msg()[0])
			fprintf(stderr, "HINT: %s\n", pv_error_hint_msg());
	}
	else
	{
		json_object_set_new(j, "blobs", json_integer((json_int_t) d.blobs));
		json_object_set_new(j, "blobs_present", json_integer((json_int_t) d.blobs_present));
		json_object_set_new(j, "blobs_written", json_integer((json_int_t) d.blobs_written));
		json_object_set_new(j, "bytes_written", json_integer((json_int_t) d.bytes_written));
		if (!r->common.json && strcmp(status, "present") == 0)
			printf("present  %s  (the destination has it)\n", id);
		else if (!r->common.json)
		{
			char a[32];
			const char *src = repo_manifest_source(m)[0] ? repo_manifest_source(m) : "-";

			if (r->dry_run)
				printf("would    %s  %-8s %-12s %llu blobs, %llu present%s\n", id,
					   repo_manifest_kind(m), src, (unsigned long long) d.blobs,
					   (unsigned long long) d.blobs_present,
					   repo_copy_ids_recomputed(r->copy) ? " (ids recomputed: the rest is read "
					   "to know)" : "");
			else
				printf("copied   %s  %-8s %-12s %llu blobs, %llu present, %llu written (%s)\n",
					   id, repo_manifest_kind(m), src, (unsigned long long) d.blobs,
					   (unsigned long long) d.blobs_present, (unsigned long long) d.blobs_written,
					   pv_size_format(a, sizeof(a), d.bytes_written));
		}
	}
	json_array_append_new(r->backups, j);
	repo_manifest_free(m);
}

static void
copy_wal(CopyRun *r, const char *source)
{
	RepoCopyStats before, after, d = {0};
	json_t *j;
	int rc;

	repo_copy_stats(r->copy, &before);
	rc = repo_copy_wal(r->copy, source);
	repo_copy_stats(r->copy, &after);
	stats_diff(&d, &after, &before);
	j = json_pack("{s:s, s:s, s:I, s:I, s:I}", "source", source, "status",
				  rc < 0 ? "failed" : "ok", "files", (json_int_t) d.wal_files, "present",
				  (json_int_t) d.wal_present, "bytes", (json_int_t) d.wal_bytes);
	if (rc < 0)
	{
		run_fail(r, rc);
		json_object_set_new(j, "error", json_string(pv_error_msg()));
		if (!r->common.json)
			printf("FAILED   WAL of source '%s': %s\n", source, pv_error_msg());
		pv_log_error("%s", pv_error_msg());
	}
	else if (!r->common.json)
	{
		char a[32];

		printf("WAL      source '%s': %llu files %s (%s), %llu present\n", source,
			   (unsigned long long) d.wal_files, r->dry_run ? "to copy" : "copied",
			   pv_size_format(a, sizeof(a), d.wal_bytes), (unsigned long long) d.wal_present);
	}
	json_array_append_new(r->wal, j);
}

/* Did this run leave what/id in step (a backup copied or present, a source's WAL copied)? */
static bool
run_in_step(const CopyRun *r, const char *what, const char *id)
{
	json_t *list = strcmp(what, "backup") == 0 ? r->backups : r->wal;
	const char *key = strcmp(what, "backup") == 0 ? "id" : "source";
	size_t i;
	json_t *j;

	json_array_foreach(list, i, j)
		if (strcmp(json_string_value(json_object_get(j, key)), id) == 0)
			return strcmp(json_string_value(json_object_get(j, "status")), "failed") != 0;
	return false;
}

/*
 * The destination is a [repo:NAME] that syncs after backups may have
 * recorded as lagging in the source: clear what this run brought in step.
 */
static void
lag_clear_after_copy(CopyRun *r)
{
	RepoCopyLagList lags;

	if (r->dry_run || cfg_repo_find(r->cfg, r->to) == NULL ||
		repo_copy_lag_list(r->from, r->to, &lags) < 0)
	{
		pv_error_clear();
		return;
	}
	for (size_t i = 0; i < lags.n; i++)
		if (run_in_step(r, lags.items[i].what, lags.items[i].id) &&
			repo_copy_lag_clear(r->from, r->to, lags.items[i].what, lags.items[i].id) == 0)
			pv_log_detail("repository '%s' no longer lags for %s %s", r->to, lags.items[i].what,
						  lags.items[i].id);
	pv_error_clear();
	repo_copy_lag_list_free(&lags);
}

static void
print_summary(CopyRun *r)
{
	RepoCopyStats s;
	char a[32], b[32];

	repo_copy_stats(r->copy, &s);
	if (r->common.json)
	{
		json_t *doc = json_pack("{s:s, s:s, s:b, s:b, s:O, s:O, s:o, s:s}",
								"from", repo_url(r->from), "to", repo_url(r->to_repo),
								"dry_run", r->dry_run,
								"ids_recomputed", repo_copy_ids_recomputed(r->copy),
								"backups", r->backups, "wal", r->wal, "totals", stats_json(&s),
								"status", r->failed ? "failed" : "ok");

		pv_json_dump(stdout, doc);
		json_decref(doc);
		return;
	}
	printf("copy: %llu backup%s %s, %llu already in '%s'; %s read, %s written in %llu "
		   "pack%s; %llu WAL file%s%s\n",
		   (unsigned long long) s.backups, s.backups == 1 ? "" : "s",
		   r->dry_run ? "to copy" : "copied", (unsigned long long) s.backups_present,
		   repo_url(r->to_repo),
		   pv_size_format(a, sizeof(a), s.bytes_read), pv_size_format(b, sizeof(b), s.bytes_written),
		   (unsigned long long) s.packs, s.packs == 1 ? "" : "s",
		   (unsigned long long) s.wal_files, s.wal_files == 1 ? "" : "s",
		   r->dry_run ? " to copy" : " copied");
	if (repo_copy_ids_recomputed(r->copy))
		printf("copy: the repositories compute chunk ids differently (encryption keys): ids "
			   "were recomputed with the destination's key\n");
	if (r->failed)
		printf("copy: FAILED: %zu problem%s (see above); what failed was not copied, run copy "
			   "again once it is fixed\n", r->failed, r->failed == 1 ? "" : "s");
}

int
cli_copy(int argc, char **argv)
{
	CopyRun r = {0};
	RepoCopyOpts opts = {.command = "copy"};
	int status, rc;

	if ((status = parse_args(&r, argc, argv)) >= 0)
		return status;
	opts.dry_run = r.dry_run;
	if ((rc = cli_setup(&r.common, &r.cfg)) < 0)
		return cli_fail(rc);
	opts.jobs = r.jobs ? atoi(r.jobs) : (int) cfg_int(r.cfg, NULL, "jobs");
	if ((rc = cli_repo_open(&r.from, r.cfg, &r.common)) < 0 ||
		(rc = second_repo_open(&r.to_repo, NULL, r.cfg, r.to, r.to_pass_file, true)) < 0 ||
		(rc = ids_resolve(&r, argc, argv)) < 0 ||
		(rc = repo_copy_begin(&r.copy, r.from, r.to_repo, &opts)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (!r.no_wal && optind == argc && (rc = repo_copy_wal_sources(r.from, &r.wal_sources,
																	&r.nwal)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	r.backups = json_array();
	r.wal = json_array();
	for (size_t i = 0; i < r.nids; i++)
		copy_backup(&r, r.ids[i]);
	for (size_t i = 0; !r.no_wal && i < r.nwal; i++)
		copy_wal(&r, r.wal_sources[i]);
	lag_clear_after_copy(&r);
	print_summary(&r);
	status = r.failed ? pv_error_exit_status(r.first_error) : 0;
done:
	json_decref(r.backups);
	json_decref(r.wal);
	repo_copy_end(r.copy);
	repo_manifest_ids_free(r.ids, r.nids);
	repo_manifest_ids_free(r.wal_sources, r.nwal);
	repo_free(r.to_repo);
	repo_free(r.from);
	cfg_free(r.cfg);
	return status;
}

/* ---- keeping secondaries in step ---- */

typedef struct Secondary
{
	char name[128];
	const char *url;
	CfgSection *sec;
} Secondary;

/*
 * The source's repositories other than primary, or none when primary is
 * not one of them.  Locations are compared in canonical form (the storage
 * driver's), so "/srv/x/" and "/srv/x" are one repository.
 */
static size_t
secondaries_find(Secondary **out, PvConfig *cfg, const CfgSection *source, Repo *primary)
{
	const char *list = source ? cfg_str(cfg, source, "repos") : NULL;
	Secondary *all = NULL;
	size_t n = 0, kept = 0;
	bool member = false;

	*out = NULL;
	while (list != NULL && *list != '\0')
	{
		size_t len;
		Storage *st = NULL;
		CliStorageSettings settings;
		Secondary s = {{0}, NULL, NULL};

		list += strspn(list, ", ");
		len = strcspn(list, ", ");
		if (len == 0)
			break;
		snprintf(s.name, sizeof(s.name), "%.*s", (int) len, list);
		list += len;
		if ((s.sec = cfg_repo_find(cfg, s.name)) == NULL ||
			(s.url = cfg_str(cfg, s.sec, "url")) == NULL)
		{
			pv_log_warn("source '%s' names repository '%s', which is not configured (no "
						"[repo:%s] with a url)", source->name, s.name, s.name);
			continue;
		}
		cli_storage_settings(&settings, cfg, s.sec);
		if (storage_open_opts(&st, s.url, &settings.opts) == 0 &&
			strcmp(storage_url(st), repo_url(primary)) == 0)
		{
			member = true;
			storage_free(st);
			continue;
		}
		pv_error_clear();
		storage_free(st);
		all = pv_realloc(all, (n + 1) * sizeof(Secondary));
		all[n++] = s;
	}
	if (member)
	{
		*out = all;
		kept = n;
	}
	else
	{
		if (n > 0)
			pv_log_debug("repository '%s' is not one of source '%s''s repositories: no "
						 "secondary to keep in step", repo_url(primary), source->name);
		pv_free(all);
	}
	return kept;
}

static void
lag_note(Repo *primary, const Secondary *s, const char *what, const char *id, const char *error)
{
	if (repo_copy_lag_note(primary, s->name, s->url, what, id, error) < 0)
	{
		pv_log_warn("%s", pv_error_msg());
		pv_error_clear();
	}
}

static void
lag_clear(Repo *primary, const Secondary *s, const char *what, const char *id)
{
	if (repo_copy_lag_clear(primary, s->name, what, id) < 0)
	{
		pv_log_warn("%s", pv_error_msg());
		pv_error_clear();
	}
}

/* Copy the backups earlier syncs failed to bring to s (their lag records). */
static void
sync_retry_backups(RepoCopy *c, Repo *primary, const Secondary *s)
{
	RepoCopyLagList lags;

	if (repo_copy_lag_list(primary, s->name, &lags) < 0)
	{
		pv_log_warn("%s", pv_error_msg());
		pv_error_clear();
		return;
	}
	for (size_t i = 0; i < lags.n; i++)
	{
		const RepoCopyLag *l = &lags.items[i];
		RepoManifest *m = NULL;

		if (strcmp(l->what, "backup") != 0)
			continue;
		if (repo_manifest_load(&m, primary, l->id) == PV_ENOTFOUND)
		{
			pv_error_clear();	/* expired meanwhile: nothing to catch up */
			lag_clear(primary, s, "backup", l->id);
			continue;
		}
		repo_manifest_free(m);
		if (repo_copy_one(c, l->id, NULL) == 0)
		{
			pv_log_info("backup %s, which had not reached repository '%s', is there now",
						l->id, s->name);
			lag_clear(primary, s, "backup", l->id);
		}
		else
		{
			lag_note(primary, s, "backup", l->id, pv_error_msg());
			pv_error_clear();
		}
	}
	repo_copy_lag_list_free(&lags);
}

/* One secondary after a backup; true when it is in step. */
static bool
sync_one(PvConfig *cfg, const CfgSection *source, Repo *primary, const Secondary *s,
		 const char *id)
{
	RepoCopyOpts opts = {.jobs = (int) cfg_int(cfg, NULL, "jobs"), .command = "copy"};
	Repo *to = NULL;
	RepoCopy *c = NULL;
	bool ok = false, copied = false;
	int64_t t0 = pv_time_monotonic_ms();
	char t[32];

	if (second_repo_open(&to, NULL, cfg, s->name, NULL, false) < 0 ||
		repo_copy_begin(&c, primary, to, &opts) < 0 || repo_copy_one(c, id, &copied) < 0)
	{
		pv_log_warn("backup %s is safe in repository '%s' but could not be copied to '%s': %s",
					id, repo_url(primary), s->name, pv_error_msg());
		pv_log_warn("repository '%s' lags; the next backup retries, or run 'pgvault copy "
					"--to %s'", s->name, s->name);
		lag_note(primary, s, "backup", id, pv_error_msg());
		pv_error_clear();
		goto done;
	}
	lag_clear(primary, s, "backup", id);
	ok = true;
	if (repo_copy_wal(c, source->name) < 0)
	{
		pv_log_warn("the WAL archive of source '%s' could not be copied to '%s': %s",
					source->name, s->name, pv_error_msg());
		lag_note(primary, s, "wal", source->name, pv_error_msg());
		pv_error_clear();
		ok = false;
	}
	else
		lag_clear(primary, s, "wal", source->name);
	sync_retry_backups(c, primary, s);
	if (copied)
		pv_log_info("backup %s copied to repository '%s' in %s", id, s->name,
					pv_elapsed_format(t, sizeof(t), pv_time_monotonic_ms() - t0));
done:
	repo_copy_end(c);
	repo_free(to);
	return ok;
}

int
cli_sync_secondaries(PvConfig *cfg, const CfgSection *source, Repo *primary, const char *id)
{
	Secondary *secs = NULL;
	size_t n = secondaries_find(&secs, cfg, source, primary);
	int lagging = 0;

	for (size_t i = 0; i < n; i++)
		if (!sync_one(cfg, source, primary, &secs[i], id))
			lagging++;
	pv_free(secs);
	return lagging;
}

int
cli_sync_secondaries_by_name(PvConfig *cfg, const char *source, Repo *primary, const char *id)
{
	for (int i = 0; source != NULL && i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, source) == 0)
			return cli_sync_secondaries(cfg, &cfg->sources[i], primary, id);
	return 0;
}

/* One secondary after an archive-push; true when it is in step. */
static bool
sync_wal_one(PvConfig *cfg, const CfgSection *source, Repo *primary, const Secondary *s,
			 const char *name)
{
	RepoCopyLag lag;
	Repo *to = NULL;
	bool lagging, ok = false;
	int rc;

	rc = repo_copy_lag_get(primary, s->name, "wal", source->name, &lag);
	if (rc < 0 && rc != PV_ENOTFOUND)
		pv_log_debug("%s", pv_error_msg());
	pv_error_clear();
	lagging = rc == 0;
	if (lagging &&
		pv_time_now() - lag.last_attempt < SYNC_WAL_RETRY_SECONDS * PV_USEC_PER_SEC)
	{
		pv_log_detail("repository '%s' lags for the WAL of source '%s' (last attempt failed: "
					  "%s); retrying within %d minutes", s->name, source->name,
					  lag.error ? lag.error : "?", SYNC_WAL_RETRY_SECONDS / 60);
		goto done;
	}
	if ((rc = second_repo_open(&to, NULL, cfg, s->name, NULL, false)) == 0)
		rc = lagging || name == NULL ?
			repo_copy_wal_source(primary, to, source->name, &(RepoCopyOpts) {.jobs = 2}, NULL) :
			repo_copy_wal_file(primary, to, source->name, name, NULL);
	if (rc < 0)
	{
		pv_log_warn("WAL %s%s%s is archived in repository '%s' but could not be copied to "
					"'%s': %s", name ? "file '" : "of source '", name ? name : source->name, "'",
					repo_url(primary), s->name, pv_error_msg());
		lag_note(primary, s, "wal", source->name, pv_error_msg());
		pv_error_clear();
		goto done;
	}
	if (lagging)
	{
		pv_log_info("the WAL archive of source '%s' in repository '%s' has caught up",
					source->name, s->name);
		lag_clear(primary, s, "wal", source->name);
	}
	ok = true;
done:
	if (lagging)
		repo_copy_lag_free(&lag);
	repo_free(to);
	return ok;
}

int
cli_sync_secondaries_wal(PvConfig *cfg, const CfgSection *source, Repo *primary,
						 const char *wal_path)
{
	Secondary *secs = NULL;
	const char *slash = wal_path ? strrchr(wal_path, '/') : NULL;
	const char *name = slash ? slash + 1 : wal_path;
	size_t n = secondaries_find(&secs, cfg, source, primary);
	int lagging = 0;

	for (size_t i = 0; i < n; i++)
		if (!sync_wal_one(cfg, source, primary, &secs[i], name))
			lagging++;
	pv_free(secs);
	return lagging;
}
