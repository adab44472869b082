/*
 * log.c (cli): "pgvault log", the job history the daemon keeps (ops/joblog.h):
 * what ran, when, how long, how big, with what outcome; from the repository
 * (every host sees it) or from the local job log file.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "ops/joblog.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault log: the history of the daemon's jobs\n\n"
	"Usage:\n  pgvault log [OPTIONS]\n\n"
	"One line per job the daemon ran, oldest first: start time, job, outcome,\n"
	"duration, size, stored bytes, the backup made, and notes (pre-check\n"
	"warnings, errors).  Read from the repository, where the daemon records\n"
	"every job, or with --local from the job log file on this host (job-log,\n"
	"default daemon-state-dir/jobs.jsonl); --json prints the entries as they\n"
	"are stored (date, type, source, size, stored_bytes, duration_ms,\n"
	"location, verified, outcome, notes, ...).\n\n"
	"Options:\n"
	"  --since=TIME             only jobs that started at or after TIME\n"
	"                           ('2026-11-01', 'now-7d', '-24h')\n"
	"  --until=TIME             only jobs that started at or before TIME\n"
	"  --source=NAME            only jobs of this source\n"
	"  --kind=KIND              only jobs of this kind (logical, physical, file,\n"
	"                           expire, verify, drill)\n"
	"  --job=NAME               only this job ('prod/logical')\n"
	"  --outcome=OUTCOME        success, failure or aborted\n"
	"  --failed                 the same as --outcome failure\n"
	"  -n, --limit=N            the newest N (default 50; 0 = all)\n"
	"  --local                  read the local job log instead of the repository\n"
	"  --file=PATH              read this job log file\n\n"
	"Examples:\n"
	"  pgvault log --since now-7d\n"
	"  pgvault log --failed --kind logical --json | jq '.[].notes'\n"
	"  pgvault log --local -n 10\n";

enum
{
	OPT_SINCE = CLI_OPT_FIRST_COMMAND,
	OPT_UNTIL,
	OPT_KIND,
	OPT_JOB,
	OPT_OUTCOME,
	OPT_FAILED,
	OPT_LOCAL,
	OPT_FILE,
};

typedef struct LogArgs
{
	CliCommon common;
	const char *since, *until, *kind, *job, *outcome, *limit, *file;
	bool local;
} LogArgs;

static int
args_parse(LogArgs *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"since", required_argument, NULL, OPT_SINCE},
		{"until", required_argument, NULL, OPT_UNTIL},
		{"kind", required_argument, NULL, OPT_KIND},
		{"job", required_argument, NULL, OPT_JOB},
		{"outcome", required_argument, NULL, OPT_OUTCOME},
		{"failed", no_argument, NULL, OPT_FAILED},
		{"limit", required_argument, NULL, 'n'},
		{"local", no_argument, NULL, OPT_LOCAL},
		{"file", required_argument, NULL, OPT_FILE},
		{NULL, 0, NULL, 0},
	};
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":n:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&a->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_SINCE:
				a->since = optarg;
				break;
			case OPT_UNTIL:
				a->until = optarg;
				break;
			case OPT_KIND:
				a->kind = optarg;
				break;
			case OPT_JOB:
				a->job = optarg;
				break;
			case OPT_OUTCOME:
				a->outcome = optarg;
				break;
			case OPT_FAILED:
				a->outcome = "failure";
				break;
			case 'n':
				a->limit = optarg;
				break;
			case OPT_LOCAL:
				a->local = true;
				break;
			case OPT_FILE:
				a->file = optarg;
				break;
			default:
				return cli_bad_option("log", argv, opt);
		}
	}
	if (a->common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("log", "unexpected argument '%s'", argv[optind]);
	if (a->outcome != NULL && strcmp(a->outcome, "success") != 0 && strcmp(a->outcome, "failure") != 0 &&
		strcmp(a->outcome, "aborted") != 0)
		return cli_usage_error("log", "--outcome must be success, failure or aborted, not '%s'", a->outcome);
	if (a->kind != NULL)
	{
		static const char *const kinds[] = {"logical", "physical", "file", "expire", "verify", "drill"};
		bool known = false;

		for (size_t i = 0; i < PV_ARRAY_LEN(kinds); i++)
			known |= strcmp(a->kind, kinds[i]) == 0;
		if (!known)
			return cli_usage_error("log", "unknown kind '%s' (logical, physical, file, expire, verify, drill)",
								   a->kind);
	}
	return -1;
}

static const char *
jstr(const json_t *o, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : def;
}

static const char *
jsize(char *out, size_t outsz, const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return "-";
	return pv_size_format(out, outsz, (uint64_t) json_integer_value(v));
}

static void
print_table(const json_t *entries, const char *tz)
{
	const json_t *e;
	size_t i;

	if (json_array_size(entries) == 0)
	{
		printf("no jobs in the log\n");
		return;
	}
	printf("%-19s  %-20s  %-8s  %10s  %10s  %10s  %-23s  %s\n", "START", "JOB", "OUTCOME", "DURATION", "SIZE",
		   "STORED", "BACKUP", "NOTES");
	json_array_foreach(entries, i, e)
	{
		char t[PV_TIME_FORMAT_MAX], took[32], a[32], b[32];
		PvTime start = 0;
		const json_t *notes = json_object_get(e, "notes");

		if (pv_time_parse(&start, jstr(e, "date", ""), "UTC") == 0)
		{
			pv_time_format(t, sizeof(t), start, tz);
			t[10] = ' ';
			t[19] = '\0';
		}
		else
			snprintf(t, sizeof(t), "%s", jstr(e, "date", "?"));
		pv_elapsed_format(took, sizeof(took), json_integer_value(json_object_get(e, "duration_ms")));
		printf("%-19s  %-20s  %-8s  %10s  %10s  %10s  %-23s  %s%s\n", t, jstr(e, "job", "?"), jstr(e, "outcome", "?"),
			   took, jsize(a, sizeof(a), e, "size"), jsize(b, sizeof(b), e, "stored_bytes"), jstr(e, "backup_id", "-"),
			   json_array_size(notes) > 0 ? json_string_value(json_array_get(notes, 0)) : "",
			   json_array_size(notes) > 1 ? " (...)" : "");
	}
}

int
cli_log(int argc, char **argv)
{
	LogArgs a = {0};
	JobLogFilter f = {.limit = 50};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	json_t *entries = NULL;
	char *path = NULL;
	int status, rc;

	if ((status = args_parse(&a, argc, argv)) >= 0)
		return status;
	if ((a.since && pv_time_parse(&f.since, a.since, NULL) < 0) || (a.until && pv_time_parse(&f.until, a.until, NULL) < 0))
		return cli_usage_error("log", "%s", pv_error_msg());
	if (a.limit != NULL)
	{
		char *end;
		long v = strtol(a.limit, &end, 10);

		if (*a.limit == '\0' || *end != '\0' || v < 0)
			return cli_usage_error("log", "invalid --limit '%s' (a number, 0 = all)", a.limit);
		f.limit = (size_t) v;
	}
	f.source = a.common.source;
	f.type = a.kind;
	f.job = a.job;
	f.outcome = a.outcome;
	if ((rc = cli_setup(&a.common, &cfg)) < 0)
		goto fail;
	if (a.file != NULL || a.local)
	{
		const char *log = cfg_str(cfg, NULL, "job-log");

		path = a.file ? pv_strdup(a.file) :
			log ? pv_strdup(log) : pv_fs_path_join(cfg_str(cfg, NULL, "daemon-state-dir"), "jobs.jsonl");
		if ((rc = joblog_read_file(&entries, path, &f)) < 0)
			goto fail;
	}
	else
	{
		CliCommon c = a.common;
		bool configured = false;

		/* --source filters; the repository is the one that source (or the configuration) names. */
		for (int i = 0; c.source != NULL && i < cfg->nsources; i++)
			configured |= strcmp(cfg->sources[i].name, c.source) == 0;
		if (!configured)
			c.source = NULL;
		if ((rc = cli_repo_open(&repo, cfg, &c)) < 0 || (rc = joblog_read_repo(&entries, repo, &f)) < 0)
			goto fail;
	}
	if (a.common.json)
		pv_json_dump(stdout, entries);
	else
		print_table(entries, cfg_str(cfg, NULL, "time-zone"));
	status = 0;
	goto done;
fail:
	status = cli_fail(rc);
done:
	json_decref(entries);
	pv_free(path);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
