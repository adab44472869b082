/*
 * restore_physical.c (cli): "pgvault restore ID|latest --pgdata DIR", a
 * physical backup back into a data directory, with point-in-time recovery
 * settings.  The work is pgphys_backup_pick() and pgphys_restore()
 * (src/pg/physical/restore.c); this file parses options, builds the
 * restore_command the restored server will run (this very binary, with the
 * repository and configuration given here, so it works as the server's
 * user), and prints the summary.
 *
 * --dry-run runs the very same checks (pgphys_restore with dry_run: the
 * data directory, the backup, the WAL archive, the tablespaces), so it
 * fails with the errors the restore would give, then prints the plan and
 * an estimate from earlier drills and restores of the source
 * (drill_restore_estimate) instead of writing anything.  A real restore
 * that succeeds leaves a restore record for those estimates
 * (catalog_restore_record); failing to write it is only a warning.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/physical.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "ops/drill.h"
#include "pg/physical/extconf.h"
#include "pg/physical/restore.h"
#include "pg/physical/start.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help_text[] =
	"pgvault restore --pgdata: restore a physical backup into a data directory\n\n"
	"Usage:\n  pgvault restore ID|latest --pgdata DIR [TARGET] [OPTIONS]\n\n"
	"Writes the backup's files into DIR (which must not exist or be empty, and\n"
	"not hold a running server; with --delta it may hold the cluster already),\n"
	"tablespaces into their original locations,\n"
	"then backup_label, recovery.signal and the recovery settings in\n"
	"postgresql.auto.conf, with restore_command = 'pgvault archive-get ...'.\n"
	"Start the server to recover: it replays the archived WAL up to the target\n"
	"(default: all of it).  With 'latest' and a target, the newest backup that\n"
	"ended before the target is chosen.\n\n"
	"Target (at most one):\n"
	"  --target-time=TIME       recover to this time ('2026-11-22 14:30:05',\n"
	"                           '... Europe/Berlin', '...Z'; default zone: local)\n"
	"  --target-lsn=LSN         recover to this WAL location (0/3000000)\n"
	"  --target-xid=XID         recover to the commit of this transaction\n"
	"  --target-name=NAME       recover to a restore point (pg_create_restore_point)\n"
	"  --target-immediate       stop as soon as the backup is consistent\n\n"
	"Options:\n"
	"  --pgdata=DIR             the data directory to create (default: the\n"
	"                           source's pgdata)\n"
	"  --target-action=ACTION   at the target: promote, pause (server default) or\n"
	"                           shutdown\n"
	"  --target-timeline=TLI    latest (server default), current, or a number\n"
	"  --target-exclusive       stop just before the target, not just after it\n"
	"  --archive-mode=MODE      preserve (default) the backup's archive_mode, or\n"
	"                           off: a test restore that must not archive into\n"
	"                           the source's archive\n"
	"  --tablespace-map=OID=DIR restore tablespace OID into DIR instead of its\n"
	"                           original location (repeat for more)\n"
	"  -j, --jobs=N             files written in parallel (default: one per core)\n"
	"  --prefetch=N             the restored server's archive-get keeps N segments\n"
	"                           fetched ahead (needs --spool-path or spool-path)\n"
	"  --spool-path=DIR         local directory for the prefetched segments\n"
	"  --start                  start the server (pg_ctl, as the user running this)\n"
	"                           and wait until recovery ends; report the times\n"
	"  --start-options=OPTS     options for the server (pg_ctl -o), e.g. '-p 5433'\n"
	"  --delta                  DIR may hold a (stopped) cluster: compare every file\n"
	"                           with the backup and rewrite only what differs,\n"
	"                           remove what the backup does not hold (pg_wal's\n"
	"                           segments stay)\n"
	"  --dry-run                check everything and print the plan (backup, WAL\n"
	"                           range, bytes to fetch, estimated time); write nothing\n"
	"  --config-dir=DIR         where the backup's configuration files from outside\n"
	"                           the data directory go (see below); DIR must be new\n"
	"                           or empty\n\n"
	"Configuration files outside the data directory (Debian's\n"
	"/etc/postgresql/VERSION/CLUSTER: postgresql.conf, pg_hba.conf, pg_ident.conf,\n"
	"conf.d) are kept with physical backups.  By default restore writes them into\n"
	"the new data directory when it lacks them (as postgresql.conf, pg_hba.conf,\n"
	"pg_ident.conf, conf.d/...), so 'pg_ctl -D DIR start' and --start work; with\n"
	"--config-dir they go to DIR instead, for 'postgres -c\n"
	"config_file=DIR/postgresql.conf'.  Either way nothing points back at the\n"
	"original cluster: include paths, hba_file and ident_file name the restored\n"
	"copies, data_directory is commented out (with --config-dir: the restored\n"
	"data directory), and so is external_pid_file.  The original files are never\n"
	"touched.\n\n"
	"Examples:\n"
	"  pgvault restore latest --pgdata /var/lib/postgresql/15/restored\n"
	"  pgvault restore latest --pgdata /srv/pitr --target-time '2026-11-22 14:30' \\\n"
	"                 --target-action promote\n"
	"  pgvault restore 20261122T023900Z-a1b2c3 --pgdata /srv/check --target-immediate \\\n"
	"                 --archive-mode off --tablespace-map 16384=/srv/check-ts\n"
	"  pgvault restore latest --pgdata /var/lib/postgresql/15/main --delta \\\n"
	"                 --target-time '2026-11-22 14:29' --target-action promote\n"
	"  pgvault restore latest --pgdata /srv/pitr --target-time '2026-11-22 14:30' --dry-run\n"
	"  pgvault restore latest --pgdata /srv/copy --config-dir /etc/postgresql/15/copy\n";

enum
{
	OPT_PHYSICAL = CLI_OPT_FIRST_COMMAND,
	OPT_PGDATA,
	OPT_TIME,
	OPT_LSN,
	OPT_XID,
	OPT_NAME,
	OPT_IMMEDIATE,
	OPT_ACTION,
	OPT_TIMELINE,
	OPT_EXCLUSIVE,
	OPT_ARCHIVE_MODE,
	OPT_TS_MAP,
	OPT_START,
	OPT_START_OPTIONS,
	OPT_PREFETCH,
	OPT_SPOOL,
	OPT_DELTA,
	OPT_DRY_RUN,
	OPT_CONFIG_DIR,
};

bool
cli_restore_physical_wanted(int argc, char **argv)
{
	return cli_argv_has(argc, argv, (const char *const[]) {"--physical", "--pgdata", "--delta", NULL}, false) ||
		cli_argv_has(argc, argv, (const char *const[]) {"--pgdata", NULL}, true);
}

/* "'/usr/bin/pgvault' archive-get --repo URL [--config FILE] [--prefetch N --spool-path DIR]" */
static char *
archive_get_command(Repo *repo, const PvConfig *cfg, int prefetch, const char *spool)
{
	char *self = cli_self_path();
	char *qself = pgphys_shell_quote(self);
	char *qrepo = pgphys_shell_quote(repo_url(repo));
	char *qcfg = NULL, *cfgabs = NULL;
	char *cmd;

	if (cfg->path != NULL && pv_fs_path_absolute(&cfgabs, cfg->path) == 0)
		qcfg = pgphys_shell_quote(cfgabs);
	pv_error_clear();
	cmd = pv_asprintf("%s archive-get --repo %s%s%s", qself, qrepo, qcfg ? " --config " : "",
					  qcfg ? qcfg : "");
	if (prefetch > 0)
	{
		char *qspool = pgphys_shell_quote(spool);
		char *more = pv_asprintf("%s --prefetch %d --spool-path %s", cmd, prefetch, qspool);

		pv_free(qspool);
		pv_free(cmd);
		cmd = more;
	}
	pv_free(self);
	pv_free(qself);
	pv_free(qrepo);
	pv_free(qcfg);
	pv_free(cfgabs);
	return cmd;
}

static void
summary_print(bool json, bool delta, const char *id, const char *pgdata,
			  const PgPhysRestoreResult *r, const PgPhysTarget *t, const PgPhysStartResult *st)
{
	char *what = pgphys_target_describe(t);
	char size[32], took[32];

	if (json)
	{
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", id, "kind",
							  "physical", "pgdata", pgdata, "source", r->source, "target", what,
							  "files", (json_int_t) r->files, "bytes", (json_int_t) r->bytes,
							  "duration_ms", (json_int_t) r->duration_ms);

		if (delta)
			json_object_set_new(j, "delta", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
													  "checked_files", (json_int_t) r->checked_files,
													  "checked_bytes", (json_int_t) r->checked_bytes,
													  "rewritten_files", (json_int_t) r->rewritten_files,
													  "rewritten_bytes", (json_int_t) r->rewritten_bytes,
													  "removed_files", (json_int_t) r->removed_files,
													  "removed_bytes", (json_int_t) r->removed_bytes));
		if (st != NULL)
		{
			json_object_set_new(j, "start_ms", json_integer(st->start_ms));
			json_object_set_new(j, "recovery_ms", json_integer(st->recovery_ms));
			json_object_set_new(j, "cluster_state", json_string(st->state));
		}
		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
	{
		printf("restored backup %s (physical%s%s, source %s) into %s: %llu files, %s in %s\n", id,
			   r->pg_version_text[0] ? ", PostgreSQL " : "", r->pg_version_text,
			   r->source[0] ? r->source : "default", pgdata, (unsigned long long) r->files,
			   pv_size_format(size, sizeof(size), r->bytes),
			   pv_elapsed_format(took, sizeof(took), r->duration_ms));
		if (delta)
		{
			char b1[32], b2[32], b3[32];

			printf("delta: %llu files compared (%s read), %llu rewritten (%s written), %llu "
				   "removed (%s)\n", (unsigned long long) r->checked_files,
				   pv_size_format(b1, sizeof(b1), r->checked_bytes),
				   (unsigned long long) r->rewritten_files,
				   pv_size_format(b2, sizeof(b2), r->rewritten_bytes),
				   (unsigned long long) r->removed_files,
				   pv_size_format(b3, sizeof(b3), r->removed_bytes));
		}
		if (st == NULL)
			printf("start the server to recover to %s\n", what);
		else if (st->recovery_ms > 0)
			printf("recovered to %s (%s) in %s\n", what, st->state,
				   pv_elapsed_format(took, sizeof(took), st->recovery_ms));
		else
			printf("server started (%s): recovery pauses at %s\n", st->state, what);
	}
	pv_free(what);
}

typedef struct Args Args;
static int start_and_wait(PgPhysStartResult *st, const Args *a, const char *pgdata,
						  const char *bindir, const PgPhysRestoreResult *res);

struct Args
{
	CliCommon common;
	const char *spec;
	const char *pgdata;
	const char *jobs;
	const char *archive_mode;
	PgPhysTablespaceMap *ts_map;
	size_t nts_map;
	bool start;
	const char *start_options;
	const char *prefetch;
	const char *spool;
	bool delta;
	bool dry_run;
	const char *config_dir;
	PgPhysTarget target;
	PgPhysTargetKind kind;
	const char *value;
};

/* --start: the server recovers; report how long restore and recovery took. */
static int
start_and_wait(PgPhysStartResult *out, const Args *a, const char *pgdata, const char *bindir,
			   const PgPhysRestoreResult *res)
{
	PgPhysStartResult st;
	/* a target without an action pauses there (the server's default) */
	const char *action = a->target.action ? a->target.action
		: a->kind != PGPHYS_TARGET_NONE ? "pause" : "promote";
	char t1[32], t2[32], t3[32];
	int rc;

	rc = pgphys_start(&st, &(PgPhysStartOpts) {.pgdata = pgdata, .bindir = bindir,
		.pg_major = res->pg_version_num / 10000, .options = a->start_options, .action = action});
	if (rc < 0)
		return rc;
	pv_elapsed_format(t1, sizeof(t1), res->duration_ms);
	pv_elapsed_format(t2, sizeof(t2), strcmp(action, "pause") == 0 ? st.start_ms : st.recovery_ms);
	pv_elapsed_format(t3, sizeof(t3), res->duration_ms +
					  (strcmp(action, "pause") == 0 ? st.start_ms : st.recovery_ms));
	if (strcmp(action, "pause") == 0)
		pv_log_info("server started in '%s' (%s); recovery pauses at the target: check the data, "
					"then SELECT pg_wal_replay_resume() to end recovery; restore %s + start %s = %s",
					pgdata, st.state, t1, t2, t3);
	else
		pv_log_info("recovery ended (%s): restore %s + recovery %s = %s", st.state, t1, t2, t3);
	*out = st;
	return 0;
}

/* "OID=DIR" -> a->ts_map (DIR made absolute). */
static int
ts_map_add(Args *a, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *oid, *dir = NULL;
	int rc;

	if (eq == NULL || eq == arg || strspn(arg, "0123456789") != (size_t) (eq - arg) || eq[1] == '\0')
		return pv_error_set(PV_EUSAGE, "--tablespace-map wants OID=DIR, not '%s'", arg);
	oid = pv_strndup(arg, (size_t) (eq - arg));
	if ((rc = pv_fs_path_absolute(&dir, eq + 1)) < 0)
	{
		pv_free(oid);
		return rc;
	}
	for (size_t i = 0; i < a->nts_map; i++)
		if (strcmp(a->ts_map[i].oid, oid) == 0)
		{
			pv_free(oid);
			pv_free(dir);
			return pv_error_set(PV_EUSAGE, "tablespace %.*s is mapped twice", (int) (eq - arg), arg);
		}
	a->ts_map = pv_realloc(a->ts_map, (a->nts_map + 1) * sizeof(PgPhysTablespaceMap));
	a->ts_map[a->nts_map++] = (PgPhysTablespaceMap) {oid, dir};
	return 0;
}

static void
ts_map_free(Args *a)
{
	for (size_t i = 0; i < a->nts_map; i++)
	{
		pv_free((char *) a->ts_map[i].oid);
		pv_free((char *) a->ts_map[i].dir);
	}
	pv_free(a->ts_map);
}

/* Returns -1 to go on, else an exit status. */
static int
args_parse(Args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"physical", no_argument, NULL, OPT_PHYSICAL},
		{"pgdata", required_argument, NULL, OPT_PGDATA},
		{"jobs", required_argument, NULL, 'j'},
		{"target-time", required_argument, NULL, OPT_TIME},
		{"target-lsn", required_argument, NULL, OPT_LSN},
		{"target-xid", required_argument, NULL, OPT_XID},
		{"target-name", required_argument, NULL, OPT_NAME},
		{"target-immediate", no_argument, NULL, OPT_IMMEDIATE},
		{"target-action", required_argument, NULL, OPT_ACTION},
		{"target-timeline", required_argument, NULL, OPT_TIMELINE},
		{"target-exclusive", no_argument, NULL, OPT_EXCLUSIVE},
		{"archive-mode", required_argument, NULL, OPT_ARCHIVE_MODE},
		{"tablespace-map", required_argument, NULL, OPT_TS_MAP},
		{"start", no_argument, NULL, OPT_START},
		{"start-options", required_argument, NULL, OPT_START_OPTIONS},
		{"prefetch", required_argument, NULL, OPT_PREFETCH},
		{"spool-path", required_argument, NULL, OPT_SPOOL},
		{"delta", no_argument, NULL, OPT_DELTA},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"config-dir", required_argument, NULL, OPT_CONFIG_DIR},
		{NULL, 0, NULL, 0},
	};
	static const PgPhysTargetKind kinds[] = {
		[OPT_TIME - OPT_TIME] = PGPHYS_TARGET_TIME, [OPT_LSN - OPT_TIME] = PGPHYS_TARGET_LSN,
		[OPT_XID - OPT_TIME] = PGPHYS_TARGET_XID, [OPT_NAME - OPT_TIME] = PGPHYS_TARGET_NAME,
		[OPT_IMMEDIATE - OPT_TIME] = PGPHYS_TARGET_IMMEDIATE,
	};
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&a->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_PHYSICAL:
				break;
			case OPT_PGDATA:
				a->pgdata = optarg;
				break;
			case 'j':
				a->jobs = optarg;
				break;
			case OPT_TIME:
			case OPT_LSN:
			case OPT_XID:
			case OPT_NAME:
			case OPT_IMMEDIATE:
				if (a->kind != PGPHYS_TARGET_NONE)
					return cli_usage_error("restore", "give only one recovery target");
				a->kind = kinds[opt - OPT_TIME];
				a->value = optarg;
				break;
			case OPT_ACTION:
				a->target.action = optarg;
				break;
			case OPT_TIMELINE:
				a->target.timeline = optarg;
				break;
			case OPT_EXCLUSIVE:
				a->target.exclusive = true;
				break;
			case OPT_ARCHIVE_MODE:
				a->archive_mode = optarg;
				break;
			case OPT_START:
				a->start = true;
				break;
			case OPT_START_OPTIONS:
				a->start_options = optarg;
				break;
			case OPT_PREFETCH:
				a->prefetch = optarg;
				break;
			case OPT_SPOOL:
				a->spool = optarg;
				break;
			case OPT_DELTA:
				a->delta = true;
				break;
			case OPT_DRY_RUN:
				a->dry_run = true;
				break;
			case OPT_CONFIG_DIR:
				a->config_dir = optarg;
				break;
			case OPT_TS_MAP:
				if (ts_map_add(a, optarg) < 0)
					return cli_usage_error("restore", "%s", pv_error_msg());
				break;
			default:
				return cli_bad_option("restore", argv, opt);
		}
	}
	if (a->common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind == argc)
		return cli_usage_error("restore", "which backup? give an id or 'latest'");
	if (optind + 1 < argc)
		return cli_usage_error("restore", "unexpected argument '%s'", argv[optind + 1]);
	a->spec = argv[optind];
	if (a->start_options != NULL && !a->start)
		return cli_usage_error("restore", "--start-options goes with --start");
	if (a->dry_run && a->start)
		return cli_usage_error("restore", "--dry-run writes nothing, so there is nothing to --start");
	if (a->archive_mode != NULL && strcmp(a->archive_mode, "off") != 0 &&
		strcmp(a->archive_mode, "preserve") != 0)
		return cli_usage_error("restore", "--archive-mode must be 'off' or 'preserve', not '%s'",
							   a->archive_mode);
	return -1;
}

/* ---- --dry-run: the plan ---- */

/* Why this backup: the spec as given, or what "latest" settled on. */
static char *
plan_choice(const Args *a, const char *source, const char *what)
{
	if (strcmp(a->spec, "latest") != 0)
		return pv_asprintf("as given ('%s')", a->spec);
	return pv_asprintf("latest: the newest physical backup%s%s%s%s%s", source ? " of source '" : "",
					   source ? source : "", source ? "'" : "",
					   a->kind != PGPHYS_TARGET_NONE ? " that can reach " : "",
					   a->kind != PGPHYS_TARGET_NONE ? what : "");
}

static json_t *
plan_json(const Args *a, const char *id, const char *pgdata, const PgPhysRestoreResult *r,
		  const json_t *md, const char *choice, const char *what, json_t *estimate)
{
	const char *state = r->pgdata_empty ? "empty or absent" : "a stopped cluster (delta)";
	bool measured = a->delta && !r->pgdata_empty;
	json_t *j;

	j = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s?, s:s?, s:s?,"
					 " s:{s:s, s:s, s:s, s:I, s:b, s:b}, s:I, s:I, s:I, s:n, s:o}",
					 "dry_run", 1, "kind", "physical", "id", id, "choice", choice,
					 "source", r->source[0] ? r->source : "default", "pgdata", pgdata,
					 "pgdata_state", state, "target", what, "delta", a->delta,
					 "backup_end_time", json_string_value(json_object_get(md, "backup_end_time")),
					 "stop_lsn", json_string_value(json_object_get(md, "stop_lsn")),
					 "pg_version", r->pg_version_text[0] ? r->pg_version_text : NULL,
					 "wal", "first", r->wal_first, "consistent_at", r->wal_stop,
					 "last", r->wal_last, "segments", (json_int_t) r->wal_segments,
					 "to_archive_end", r->wal_to_archive_end, "complete", 1,
					 "files", (json_int_t) r->plan_files, "bytes", (json_int_t) r->plan_bytes,
					 "tablespaces", (json_int_t) r->tablespaces, "safety_backup",
					 "estimate", estimate ? json_incref(estimate) : json_null());
	/* with --delta over a cluster, what differs was measured (read-only) */
	json_object_set_new(j, "fetch_bytes", json_integer((json_int_t) (measured ? r->rewritten_bytes
																	 : r->plan_bytes)));
	if (measured)
		json_object_set_new(j, "delta", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
												  "checked_files", (json_int_t) r->checked_files,
												  "checked_bytes", (json_int_t) r->checked_bytes,
												  "rewritten_files", (json_int_t) r->rewritten_files,
												  "rewritten_bytes", (json_int_t) r->rewritten_bytes,
												  "removed_files", (json_int_t) r->removed_files,
												  "removed_bytes", (json_int_t) r->removed_bytes));
	return j;
}

/* Print the plan of a dry run (text or JSON); returns the exit status. */
static int
plan_print(const Args *a, Repo *repo, const char *id, const char *pgdata,
		   const PgPhysRestoreResult *r, const char *source)
{
	RepoManifest *m = NULL;
	json_t *estimate = NULL;
	char *what = pgphys_target_describe(&a->target);
	char *choice = plan_choice(a, source, what);
	const json_t *md;
	char size[32], took[32];
	int rc;

	if ((rc = repo_manifest_load(&m, repo, id)) < 0 ||
		(rc = drill_restore_estimate(repo, m, &estimate)) < 0)
	{
		pv_free(what);
		pv_free(choice);
		repo_manifest_free(m);
		return cli_fail(rc);
	}
	md = repo_manifest_metadata(m);
	if (a->common.json)
	{
		json_t *j = plan_json(a, id, pgdata, r, md, choice, what, estimate);

		pv_json_dump(stdout, j);
		json_decref(j);
	}
	else
	{
		const char *end = json_string_value(json_object_get(md, "backup_end_time"));

		printf("dry run: nothing was written\n");
		printf("backup:        %s (%s; PostgreSQL %s, source %s, ended %s)\n", id, choice,
			   r->pg_version_text[0] ? r->pg_version_text : "?",
			   r->source[0] ? r->source : "default", end ? end : "?");
		printf("into:          %s (%s)\n", pgdata, r->pgdata_empty ? "empty or absent"
			   : "a stopped cluster: --delta compares every file, rewrites what differs");
		printf("recovery to:   %s\n", what);
		printf("WAL needed:    %s..%s (%llu segments, all archived; consistent at %s%s)\n",
			   r->wal_first, r->wal_last[0] ? r->wal_last : r->wal_stop,
			   (unsigned long long) r->wal_segments, r->wal_stop,
			   r->wal_to_archive_end ? "; recovery ends where the archive ends" : "");
		if (a->delta && !r->pgdata_empty)
		{
			char rm[32];

			printf("to fetch:      %s: %llu of %llu files differ from the backup (compared on "
				   "disk); %llu files (%s) would be removed\n",
				   pv_size_format(size, sizeof(size), r->rewritten_bytes),
				   (unsigned long long) r->rewritten_files, (unsigned long long) r->checked_files,
				   (unsigned long long) r->removed_files,
				   pv_size_format(rm, sizeof(rm), r->removed_bytes));
		}
		else
			printf("to fetch:      %llu files, %s%s\n", (unsigned long long) r->plan_files,
				   pv_size_format(size, sizeof(size), r->plan_bytes),
				   r->tablespaces ? " (with tablespaces)" : "");
		printf("safety backup: none (a physical restore takes none)\n");
		if (estimate != NULL)
			printf("estimate:      about %s (restore and recovery), from %zu earlier %s of this source\n",
				   pv_elapsed_format(took, sizeof(took), json_integer_value(json_object_get(estimate,
																							  "estimate_ms"))),
				   json_array_size(json_object_get(estimate, "basis")),
				   json_array_size(json_object_get(estimate, "basis")) == 1 ? "drill or restore"
				   : "drills and restores");
		else
			printf("estimate:      none: no earlier drill or restore of this source to measure "
				   "from ('pgvault drill' records one)\n");
	}
	json_decref(estimate);
	repo_manifest_free(m);
	pv_free(what);
	pv_free(choice);
	return 0;
}

int
cli_restore_physical(int argc, char **argv)
{
	Args a = {0};
	PgPhysRestoreOpts o = {0};
	PgPhysRestoreResult res;
	PgPhysStartResult st;
	PvConfig *cfg = NULL;
	CfgSection *sec = NULL;
	Repo *repo = NULL;
	char id[REPO_BACKUP_ID_LEN + 1];
	char *cmd = NULL, *pgdata = NULL, *config_dir = NULL;
	const char *source = NULL;
	int rc, status;

	if ((status = args_parse(&a, argc, argv)) >= 0)
		goto done;
	if ((rc = cli_setup(&a.common, &cfg)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (a.kind != PGPHYS_TARGET_NONE &&
		(rc = pgphys_target_set(&a.target, a.kind, a.value ? a.value : "",
								cfg_str(cfg, NULL, "time-zone"))) < 0)
	{
		status = cli_usage_error("restore", "%s", pv_error_msg());
		goto done;
	}
	if ((rc = pgphys_target_check(&a.target)) < 0)
	{
		status = cli_usage_error("restore", "%s", pv_error_msg());
		goto done;
	}
	if (a.jobs != NULL)
	{
		if (!cli_int_parse(&o.jobs, a.jobs, 0, 256))
		{
			status = cli_usage_error("restore", "invalid number of jobs '%s' (0 to 256)", a.jobs);
			goto done;
		}
	}
	else
		o.jobs = (int) cfg_int(cfg, NULL, "jobs");
	if (a.common.source != NULL && (rc = cli_physical_source(&source, &sec, cfg, &a.common)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (a.pgdata == NULL && sec != NULL)
		a.pgdata = cfg_str(cfg, sec, "pgdata");
	if (a.pgdata == NULL)
	{
		status = cli_usage_error("restore", "where to? give --pgdata DIR");
		goto done;
	}
	if ((rc = pv_fs_path_absolute(&pgdata, a.pgdata)) < 0 ||
		(rc = pgphys_pgdata_check_for(pgdata, a.delta, true, NULL)) < 0 ||
		(a.config_dir != NULL && ((rc = pv_fs_path_absolute(&config_dir, a.config_dir)) < 0 ||
								  (rc = pgphys_extconf_dir_check(config_dir)) < 0)) ||
		(rc = cli_repo_open(&repo, cfg, &a.common)) < 0 ||
		(rc = pgphys_backup_pick(id, repo, a.spec, source,
								 a.kind != PGPHYS_TARGET_NONE ? &a.target : NULL)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (repo_is_encrypted(repo) && cfg->path == NULL)
		pv_log_warn("the repository is encrypted: the restored server's restore_command needs "
					"the passphrase from a configuration file (passphrase-file); without one, "
					"recovery finds no WAL");
	{
		const char *spool = a.spool ? a.spool : cfg_str(cfg, NULL, "spool-path");
		char *spoolabs = NULL;
		int prefetch = 0;

		if (a.prefetch != NULL && !cli_int_parse(&prefetch, a.prefetch, 1, 1024))
		{
			status = cli_usage_error("restore", "invalid --prefetch '%s' (1 to 1024 segments)",
									 a.prefetch);
			goto done;
		}
		if (prefetch > 0 && spool == NULL)
		{
			status = cli_usage_error("restore", "--prefetch needs --spool-path DIR (or spool-path "
									 "in the configuration)");
			goto done;
		}
		if (prefetch > 0 && (rc = pv_fs_path_absolute(&spoolabs, spool)) < 0)
		{
			status = cli_fail(rc);
			goto done;
		}
		cmd = archive_get_command(repo, cfg, prefetch, spoolabs);
		pv_free(spoolabs);
	}
	o.repo = repo;
	o.backup_id = id;
	o.pgdata = pgdata;
	o.target = &a.target;
	o.archive_get_command = cmd;
	o.archive_off = a.archive_mode != NULL && strcmp(a.archive_mode, "off") == 0;
	o.ts_map = a.ts_map;
	o.nts_map = a.nts_map;
	o.progress_ms = a.common.json ? -1 : 0;
	o.delta = a.delta;
	o.dry_run = a.dry_run;
	o.config_dir = config_dir;
	if ((rc = pgphys_restore(&res, &o)) == 0 && a.dry_run)
	{
		status = plan_print(&a, repo, id, pgdata, &res, source);
		goto done;
	}
	if (rc < 0)
	{
		/* a dry run fails with the very error the restore gives */
		pv_error_prefix(rc, "restore of backup %s into '%s' failed", id, pgdata);
		status = cli_fail(rc);
		goto done;
	}
	if (a.start && (rc = start_and_wait(&st, &a, pgdata, sec ? cfg_str(cfg, sec, "bindir") : NULL,
										&res)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	summary_print(a.common.json, a.delta, id, pgdata, &res, &a.target, a.start ? &st : NULL);
	{
		/* evidence for restore --dry-run's estimates; never turns this restore into a failure */
		CatalogRestoreInfo ri = {
			.backup_id = id, .source = res.source[0] ? res.source : NULL, .kind = "physical",
			.target_kind = "pgdata", .target = pgdata, .duration_ms = res.duration_ms,
			.recovery_ms = a.start && st.recovery_ms > 0 ? st.recovery_ms : -1, .bytes = res.bytes,
			.jobs = o.jobs, .partial = a.delta, .ok = true,
		};

		if (catalog_restore_record(repo, &ri, NULL) < 0)
		{
			pv_log_warn("the restore succeeded but was not recorded for later estimates: %s", pv_error_msg());
			pv_error_clear();
		}
	}
	if (!a.start && geteuid() == 0)
		pv_log_warn("restored as root: the files belong to root, and PostgreSQL will not start "
					"until they belong to its own user (chown -R postgres: '%s'); restore as "
					"that user instead", pgdata);
	status = 0;
done:
	pgphys_target_clear(&a.target);
	ts_map_free(&a);
	repo_free(repo);
	cfg_free(cfg);
	pv_free(cmd);
	pv_free(pgdata);
	pv_free(config_dir);
	return status;
}
