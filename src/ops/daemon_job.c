/*
 * daemon_job.c: one run of a daemon job, in its own thread: pre-checks,
 * the child process (posix_spawn of the pgvault binary, in a new process
 * group, default signal dispositions and an empty signal mask), its output
 * (--json on stdout; log lines on stderr, passed on to the daemon's log),
 * the job log entry and the notifications.
 *
 * Ownership: a JobRun belongs to its thread.  The Job it runs stays alive
 * while job->running is true (the main thread frees only idle jobs); the
 * runner's last act is to clear it under the lock, and it touches the Job
 * no more after that.
 */
#include "ops/daemon_int.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/check.h"
#include "ops/joblog.h"
#include "repo/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define STDOUT_MAX (64u << 20)		/* a job's JSON beyond this is not kept */
#define STDERR_TAIL 8				/* error lines kept for the notification */

typedef struct JobRun
{
	Daemon *d;
	Job *job;
	CfgRef *cfg;
	char *name;
	char *source;
	JobKind kind;
	const char *trigger;
	char *repo_url;
	PreChecks prechecks;
	bool verify_after;
	char **argv;
	char *config_path;
} JobRun;

typedef struct ChildResult
{
	int exit_status;			/* -1 when killed by a signal */
	int signal;					/* the signal that killed it, or 0 */
	Buf out;					/* stdout */
	char *error;				/* the last "error:" line, or NULL */
	char *hint;					/* the last "HINT:" line, or NULL */
	json_t *warnings;			/* "warning:" lines */
} ChildResult;

/* ---- command lines ---- */

typedef struct Argv
{
	char **v;
	size_t n, cap;
} Argv;

static void
argv_add(Argv *a, const char *s)
{
	if (a->n + 2 > a->cap)
	{
		a->cap = a->cap ? 2 * a->cap : 16;
		a->v = pv_realloc(a->v, a->cap * sizeof(char *));
	}
	a->v[a->n++] = pv_strdup(s);
	a->v[a->n] = NULL;
}

static void
argv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		pv_free(v[i]);
	pv_free(v);
}

/*
 * The command of a job (or, with verify_id, of the verify after its backup).
 * verify_new: the scheduled verify reads only what is due (verify --new:
 * packs no verify has read, and those verify-period says are due), so a
 * nightly verify stays cheap while every byte is read within the period.
 */
static char **
job_argv(const Daemon *d, const JobDef *def, const char *config_path, const char *verify_id,
		 bool verify_new)
{
	Argv a = {0};

	argv_add(&a, "pgvault");
	if (verify_id != NULL)
	{
		argv_add(&a, "verify");
		argv_add(&a, verify_id);
	}
	else
		switch (def->kind)
		{
			case JOB_LOGICAL:
				argv_add(&a, "backup");
				argv_add(&a, "--logical");
				argv_add(&a, "--no-progress");
				break;
			case JOB_PHYSICAL:
				argv_add(&a, "backup");
				argv_add(&a, "--physical");
				break;
			case JOB_FILE:
				argv_add(&a, "backup");
				for (size_t i = 0; def->files[i] != NULL; i++)
				{
					argv_add(&a, "--file");
					argv_add(&a, def->files[i]);
				}
				break;
			case JOB_EXPIRE:
				argv_add(&a, "expire");
				argv_add(&a, "--lock-wait");
				argv_add(&a, "10min");
				break;
			case JOB_VERIFY:
				argv_add(&a, "verify");
				argv_add(&a, "--all");
				if (verify_new)
					argv_add(&a, "--new");
				break;
			case JOB_DRILL:
				argv_add(&a, "drill");
				argv_add(&a, "latest");
				break;
			case JOB_NKINDS:
				break;
		}
	if (def->source != NULL && def->kind != JOB_VERIFY)
	{
		argv_add(&a, "--source");
		argv_add(&a, def->source);
	}
	argv_add(&a, "--config");
	argv_add(&a, config_path);
	for (size_t i = 0; d->opts.job_args != NULL && d->opts.job_args[i] != NULL; i++)
		argv_add(&a, d->opts.job_args[i]);
	argv_add(&a, "--json");
	return a.v;
}

/* ---- the child ---- */

/* A stderr line of the child: pass it on, keep errors, warnings and hints. */
static void
child_line(const JobRun *r, ChildResult *res, const char *line)
{
	static const struct
	{
		const char *label;
		PvLogLevel level;
	} labels[] = {
		{"error: ", PV_LOG_ERROR}, {"warning: ", PV_LOG_WARN}, {"info: ", PV_LOG_INFO},
		{"detail: ", PV_LOG_DETAIL}, {"debug: ", PV_LOG_DEBUG}, {"trace: ", PV_LOG_TRACE},
	};
	const char *msg = line;
	PvLogLevel level = PV_LOG_DETAIL;

	/* "2026-11-22 02:00:00.123 UTC [4242] error: text" or "pgvault: error: text" */
	if (strncmp(msg, "pgvault: ", 9) == 0)
		msg += 9;
	else if (strstr(msg, "] ") != NULL && strchr(msg, '[') != NULL && strchr(msg, '[') < strstr(msg, "] "))
		msg = strstr(msg, "] ") + 2;
	for (size_t i = 0; i < PV_ARRAY_LEN(labels); i++)
		if (strncmp(msg, labels[i].label, strlen(labels[i].label)) == 0)
		{
			msg += strlen(labels[i].label);
			level = labels[i].level;
			break;
		}
	if (strncmp(line, "HINT: ", 6) == 0)
	{
		pv_free(res->hint);
		res->hint = pv_strdup(line + 6);
		level = PV_LOG_INFO;
	}
	else if (level == PV_LOG_ERROR)
	{
		pv_free(res->error);
		res->error = pv_strdup(msg);
	}
	else if (level == PV_LOG_WARN && json_array_size(res->warnings) < STDERR_TAIL)
		json_array_append_new(res->warnings, json_string(msg));
	pv_log(level, "job %s: %s", r->name, msg);
}

static int
spawn_child(pid_t *out, const char *exe, char *const argv[], int out_fd, int err_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGTERM);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGHUP);
	sigaddset(&deflt, SIGUSR1);
	sigaddset(&deflt, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	rc = posix_spawn(out, exe, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		return pv_error_errno(PV_ERROR, rc, "cannot start '%s'", exe);
	return PV_OK;
}

/* Read both pipes to their end: stdout into res->out, stderr line by line. */
static void
child_drain(const JobRun *r, ChildResult *res, int out_fd, int err_fd)
{
	struct pollfd pfd[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
	Buf line;
	char buf[65536];

	buf_init(&line);
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0)
	{
		if (poll(pfd, 2, -1) < 0)
		{
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++)
		{
			ssize_t n;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
			{
				pfd[i].fd = -1;
				continue;
			}
			if (i == 0)
			{
				if (res->out.len + (size_t) n <= STDOUT_MAX)
					buf_append(&res->out, buf, (size_t) n);
				continue;
			}
			for (ssize_t k = 0; k < n; k++)
			{
				if (buf[k] != '\n')
				{
					if (line.len < 8192)
						buf_append_byte(&line, (unsigned char) buf[k]);
					continue;
				}
				child_line(r, res, buf_cstr(&line));
				buf_reset(&line);
			}
		}
	}
	if (line.len > 0)
		child_line(r, res, buf_cstr(&line));
	buf_free(&line);
}

static void
child_result_clear(ChildResult *res)
{
	buf_free(&res->out);
	pv_free(res->error);
	pv_free(res->hint);
	json_decref(res->warnings);
}

/* Run argv to its end.  Errors only when it could not start. */
static int
child_run(JobRun *r, char *const argv[], ChildResult *res)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	pid_t pid = 0;
	bool stopping;
	int status = 0, rc;

	memset(res, 0, sizeof(*res));
	buf_init(&res->out);
	res->warnings = json_array();
	res->exit_status = -1;
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
	{
		rc = pv_error_errno(PV_ERROR, errno, "cannot create a pipe");
		goto done;
	}
	if ((rc = spawn_child(&pid, r->d->exe, argv, outp[1], errp[1])) < 0)
		goto done;
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	pthread_mutex_lock(&r->d->lock);
	r->job->pid = pid;
	stopping = r->d->stopping;
	pthread_mutex_unlock(&r->d->lock);
	if (stopping)
		kill(-pid, SIGTERM);	/* the stop came between the check and the spawn */
	pv_log_debug("job %s: process %d started", r->name, (int) pid);
	child_drain(r, res, outp[0], errp[0]);
	/* Still a zombie until waitpid, so the pid cannot be reused while the main thread may signal it. */
	pthread_mutex_lock(&r->d->lock);
	r->job->pid = 0;
	pthread_mutex_unlock(&r->d->lock);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		res->exit_status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		res->signal = WTERMSIG(status);
	rc = PV_OK;
done:
	for (int i = 0; i < 2; i++)
	{
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return rc;
}

/* ---- results ---- */

static bool
daemon_stopping(Daemon *d)
{
	bool stopping;

	pthread_mutex_lock(&d->lock);
	stopping = d->stopping;
	pthread_mutex_unlock(&d->lock);
	return stopping;
}

static int64_t
int_member(const json_t *j, const char *key)
{
	const json_t *v = json_object_get(j, key);

	return json_is_integer(v) ? (int64_t) json_integer_value(v) : -1;
}

/* What the job printed (its --json document) into the entry. */
static void
result_apply(JobLogEntry *e, JobKind kind, const json_t *doc)
{
	const char *id;
	size_t i;
	json_t *v;

	switch (kind)
	{
		case JOB_LOGICAL:
		case JOB_PHYSICAL:
		case JOB_FILE:
			if ((id = json_string_value(json_object_get(doc, "id"))) != NULL)
				e->backup_id = pv_strdup(id);
			e->size = int_member(doc, "logical_bytes");
			e->stored_bytes = int_member(doc, "stored_bytes");
			e->new_bytes = int_member(doc, "new_bytes");
			break;
		case JOB_EXPIRE:
			if (json_is_array(json_object_get(doc, "deleted")))
				joblog_entry_note(e, "expired %zu backup%s", json_array_size(json_object_get(doc, "deleted")),
								  json_array_size(json_object_get(doc, "deleted")) == 1 ? "" : "s");
			break;
		case JOB_VERIFY:
			if (int_member(doc, "damaged_backups") >= 0)
				joblog_entry_note(e, "verify: %lld damaged backup%s, %lld packs read", (long long) int_member(doc, "damaged_backups"),
								  int_member(doc, "damaged_backups") == 1 ? "" : "s", (long long) int_member(doc, "packs"));
			break;
		case JOB_DRILL:
			if ((id = json_string_value(json_object_get(json_object_get(doc, "backup"), "id"))) != NULL)
				e->backup_id = pv_strdup(id);
			if (int_member(json_object_get(doc, "times_ms"), "total") >= 0)
				joblog_entry_note(e, "drill %s, total %.1fs (restore %.1fs)",
								  json_is_true(json_object_get(doc, "ok")) ? "passed" : "failed",
								  (double) int_member(json_object_get(doc, "times_ms"), "total") / 1000.0,
								  (double) int_member(json_object_get(doc, "times_ms"), "restore") / 1000.0);
			json_array_foreach(json_object_get(doc, "checks"), i, v)
			{
				const char *st = json_string_value(json_object_get(v, "status"));

				if (st != NULL && strcmp(st, "ok") != 0)
					joblog_entry_note(e, "check %s %s: %s", json_string_value(json_object_get(v, "name")), st,
									  json_string_value(json_object_get(v, "message")) ?
									  json_string_value(json_object_get(v, "message")) : "");
			}
			break;
		case JOB_NKINDS:
			break;
	}
}

/* Rule 5 of daemon.h.  Returns true when a check failed. */
static bool
prechecks_run(JobRun *r, JobLogEntry *e)
{
	PvConfig *cfg = r->cfg->cfg;
	CfgSection *src = daemon_source_find(cfg, r->source);
	CheckOpts o = {0};
	CheckReport report;
	bool failed;

	o.conn.conninfo = src ? cfg_str(cfg, src, "conninfo") : NULL;
	o.conn.application_name = "pgvault daemon";
	o.bindir = src ? cfg_str(cfg, src, "bindir") : NULL;
	o.repo_url = r->repo_url;
	o.long_xact_secs = cfg_duration(cfg, NULL, "long-transaction-threshold");
	check_run(&report, &o);
	for (int i = 0; i < report.nitems; i++)
	{
		const CheckItem *it = &report.items[i];

		if (it->status < CHECK_WARNING)
			continue;
		joblog_entry_note(e, "pre-check %s %s: %s", it->name, check_status_name(it->status), it->message);
		pv_log_warn("job %s: pre-check %s %s: %s", r->name, it->name, check_status_name(it->status), it->message);
	}
	failed = report.status == CHECK_FAILURE;
	check_report_clear(&report);
	pv_error_clear();
	return failed;
}

/* Run the job's command and judge it; fills e. */
static void
command_run(JobRun *r, JobLogEntry *e, ChildResult *res)
{
	json_t *doc = NULL;

	if (child_run(r, r->argv, res) < 0)
	{
		e->outcome = pv_strdup("failure");
		joblog_entry_note(e, "%s", pv_error_msg());
		pv_error_clear();
		return;
	}
	e->exit_status = res->exit_status;
	if (res->out.len > 0 && pv_json_parse(&doc, (const char *) res->out.data, res->out.len, "job output") == PV_OK)
		result_apply(e, r->kind, doc);
	pv_error_clear();
	json_decref(doc);
	for (size_t i = 0; i < json_array_size(res->warnings); i++)
		joblog_entry_note(e, "warning: %s", json_string_value(json_array_get(res->warnings, i)));
	if (res->exit_status != 0 && daemon_stopping(r->d))
		e->outcome = pv_strdup("aborted");
	if (e->outcome != NULL)
		joblog_entry_note(e, "stopped by the daemon's shutdown%s", res->signal ? " (killed)" : "");
	else if (res->exit_status == 0)
		e->outcome = pv_strdup("success");
	else
	{
		e->outcome = pv_strdup("failure");
		if (res->error != NULL)
			joblog_entry_note(e, "error: %s", res->error);
		else if (res->signal != 0)
			joblog_entry_note(e, "the job's process was killed by signal %d (%s)", res->signal, strsignal(res->signal));
		else
			joblog_entry_note(e, "the job's process exited with status %d", res->exit_status);
		if (res->hint != NULL)
			joblog_entry_note(e, "HINT: %s", res->hint);
	}
}

/* Rule 6: verify the backup just made. */
static void
verify_after_run(JobRun *r, JobLogEntry *e)
{
	JobDef def = {.kind = JOB_VERIFY};
	char **argv = job_argv(r->d, &def, r->config_path, e->backup_id, false);
	ChildResult res;

	if (child_run(r, argv, &res) < 0)
	{
		joblog_entry_note(e, "verify after backup did not run: %s", pv_error_msg());
		pv_error_clear();
	}
	else if (res.exit_status != 0 && daemon_stopping(r->d))
		joblog_entry_note(e, "verify after backup interrupted by the daemon's shutdown");
	else
	{
		e->verified = res.exit_status == 0;
		if (!e->verified)
		{
			joblog_entry_note(e, "verify after backup failed: %s", res.error ? res.error : "damage found");
			pv_free(e->outcome);
			e->outcome = pv_strdup("failure");
		}
	}
	child_result_clear(&res);
	argv_free(argv);
}

/* ---- the log entry and notifications ---- */

static void
entry_store(JobRun *r, const JobLogEntry *e)
{
	PvConfig *cfg = r->cfg->cfg;
	Repo *repo = NULL;

	if (joblog_append(r->d->joblog_path, e) < 0)
	{
		pv_log_warn("job %s: %s", r->name, pv_error_msg());
		pv_error_clear();
	}
	if (r->d->opts.repo_open(&repo, cfg, daemon_source_find(cfg, r->source), r->d->opts.payload) < 0 ||
		joblog_record(repo, e, NULL) < 0)
	{
		pv_log_warn("job %s: the job log entry is not in the repository: %s", r->name, pv_error_msg());
		pv_error_clear();
	}
	repo_free(repo);
}

static void
notify_job(JobRun *r, const JobLogEntry *e, json_t *entry, int64_t failures_before)
{
	char key[300], subject[512], took[32];
	Buf text;
	NotifyEvent ev;
	bool ok = strcmp(e->outcome, "success") == 0;

	if (strcmp(e->outcome, "aborted") == 0)
		return;
	if (!ok)
		ev = r->kind == JOB_DRILL ? NOTIFY_DRILL : NOTIFY_FAILURE;
	else if (failures_before > 0)
		ev = NOTIFY_RECOVERY;
	else
		ev = NOTIFY_SUCCESS;
	pv_elapsed_format(took, sizeof(took), (e->end - e->start) / PV_USEC_PER_MS);
	snprintf(key, sizeof(key), "job:%s", r->name);
	if (ev == NOTIFY_RECOVERY)
		snprintf(subject, sizeof(subject), "pgvault: %s recovered (after %lld failed run%s)", r->name,
				 (long long) failures_before, failures_before == 1 ? "" : "s");
	else
		snprintf(subject, sizeof(subject), "pgvault: %s %s", r->name, ok ? "succeeded" : "FAILED");
	buf_init(&text);
	buf_printf(&text, "Job: %s (%s%s%s)\nTrigger: %s\nOutcome: %s after %s\n", r->name,
			   daemon_job_kind_names[r->kind], r->source ? ", source " : "", r->source ? r->source : "",
			   e->trigger, e->outcome, took);
	if (e->backup_id != NULL)
		buf_printf(&text, "Backup: %s\n", e->backup_id);
	if (e->size >= 0)
	{
		char a[32], b[32];

		buf_printf(&text, "Size: %s, stored %s\n", pv_size_format(a, sizeof(a), (uint64_t) e->size),
				   pv_size_format(b, sizeof(b), (uint64_t) (e->stored_bytes > 0 ? e->stored_bytes : 0)));
	}
	if (e->location != NULL)
		buf_printf(&text, "Location: %s\n", e->location);
	if (e->verified >= 0)
		buf_printf(&text, "Verified: %s\n", e->verified ? "yes" : "no");
	if (!ok && failures_before > 0)
		buf_printf(&text, "Failed runs in a row: %lld\n", (long long) failures_before + 1);
	for (size_t i = 0; i < json_array_size(e->notes); i++)
		buf_printf(&text, "- %s\n", json_string_value(json_array_get(e->notes, i)));
	notify_send(r->d->notifier, &(NotifyMessage) {.event = ev, .key = key, .subject = subject,
		.text = buf_cstr(&text), .details = entry, .time = e->end});
	buf_free(&text);
}

/* Record the run in the Job (lock held); returns the failure streak before it. */
static int64_t
job_account(Job *job, const JobLogEntry *e, json_t *entry)
{
	int64_t before = job->consecutive_failures;
	JobOutcome o = strcmp(e->outcome, "success") == 0 ? OUTCOME_SUCCESS :
		strcmp(e->outcome, "aborted") == 0 ? OUTCOME_ABORTED : OUTCOME_FAILURE;

	job->runs[o]++;
	job->last_run = e->start;
	job->last_duration_ms = (e->end - e->start) / PV_USEC_PER_MS;
	if (o == OUTCOME_SUCCESS)
	{
		job->last_success = e->end;
		job->consecutive_failures = 0;
	}
	else if (o == OUTCOME_FAILURE)
		job->consecutive_failures++;
	json_decref(job->last_entry);
	job->last_entry = json_incref(entry);
	return before;
}

static void
jobrun_free(JobRun *r)
{
	pv_free(r->name);
	pv_free(r->source);
	pv_free(r->repo_url);
	pv_free(r->config_path);
	argv_free(r->argv);
	pv_free(r);
}

/* Pre-checks, the command, the verify after it: fills e (its outcome included). */
static void
job_execute(JobRun *r, JobLogEntry *e, ChildResult *res)
{
	bool is_backup = r->kind == JOB_LOGICAL || r->kind == JOB_PHYSICAL || r->kind == JOB_FILE;

	if ((r->kind == JOB_LOGICAL || r->kind == JOB_PHYSICAL) && r->prechecks != PRECHECKS_OFF &&
		prechecks_run(r, e) && r->prechecks == PRECHECKS_STRICT)
	{
		e->outcome = pv_strdup("failure");
		joblog_entry_note(e, "backup skipped: a pre-backup check failed (pre-checks = strict)");
		return;
	}
	if (daemon_stopping(r->d))
	{
		e->outcome = pv_strdup("aborted");
		joblog_entry_note(e, "not started: the daemon is stopping");
		return;
	}
	command_run(r, e, res);
	if (is_backup && strcmp(e->outcome, "success") == 0 && r->verify_after && e->backup_id != NULL)
		verify_after_run(r, e);
}

/* The end of a run: the log line, the job log, the job's counters, notifications, the state. */
static void
job_record(JobRun *r, const JobLogEntry *e)
{
	Daemon *d = r->d;
	json_t *entry = joblog_entry_json(e);
	bool ok = strcmp(e->outcome, "success") == 0;
	int64_t before;

	pv_log(ok ? PV_LOG_INFO : strcmp(e->outcome, "aborted") == 0 ? PV_LOG_WARN : PV_LOG_ERROR,
		   "job %s: %s in %.1fs%s%s", r->name, e->outcome, (double) (e->end - e->start) / (double) PV_USEC_PER_SEC,
		   e->backup_id ? ", backup " : "", e->backup_id ? e->backup_id : "");
	entry_store(r, e);
	pthread_mutex_lock(&d->lock);
	before = job_account(r->job, e, entry);
	pthread_mutex_unlock(&d->lock);
	notify_job(r, e, entry, before);
	daemon_state_save(d);
	json_decref(entry);
}

static void *
job_thread(void *arg)
{
	JobRun *r = arg;
	Daemon *d = r->d;
	Job *job = r->job;
	JobLogEntry e;
	ChildResult res = {0};
	char host[256] = "";

	joblog_entry_init(&e);
	buf_init(&res.out);
	e.start = pv_time_now();
	e.job = pv_strdup(r->name);
	e.type = pv_strdup(daemon_job_kind_names[r->kind]);
	e.source = r->source ? pv_strdup(r->source) : NULL;
	e.trigger = pv_strdup(r->trigger);
	e.location = r->repo_url ? pv_strdup(r->repo_url) : NULL;
	if (gethostname(host, sizeof(host) - 1) == 0)
		e.host = pv_strdup(host);
	pv_log_info("job %s started (%s)", r->name, r->trigger);
	job_execute(r, &e, &res);
	e.end = pv_time_now();
	job_record(r, &e);
	child_result_clear(&res);
	joblog_entry_clear(&e);
	daemon_cfg_put(d, r->cfg);
	jobrun_free(r);
	daemon_refresh_request(d);
	/*
	 * Last use of the lock: the main thread joins this thread holding it, so
	 * nothing after this point may take it (nor touch the Job).
	 */
	pthread_mutex_lock(&d->lock);
	job->running = false;
	job->finished = true;
	job->pid = 0;
	pthread_mutex_unlock(&d->lock);
	daemon_wake(d);
	return NULL;
}

int
daemon_job_start(Daemon *d, Job *job, const char *trigger)
{
	JobRun *r = PV_NEW(JobRun);
	int rc;

	r->d = d;
	r->job = job;
	r->cfg = d->cfg;
	r->cfg->refs++;
	r->name = pv_strdup(job->def.name);
	r->source = job->def.source ? pv_strdup(job->def.source) : NULL;
	r->kind = job->def.kind;
	r->trigger = trigger;
	r->repo_url = job->def.repo_url ? pv_strdup(job->def.repo_url) : NULL;
	r->prechecks = job->def.prechecks;
	r->verify_after = job->def.verify_after;
	r->config_path = pv_strdup(r->cfg->cfg->path);
	/* with a verify-period configured, the scheduled verify is incremental */
	r->argv = job_argv(d, &job->def, r->config_path, NULL,
					   cfg_duration(r->cfg->cfg, NULL, "verify-period") > 0);
	job->running = true;
	job->finished = false;
	job->pid = 0;
	job->run_started = pv_time_now();
	if ((rc = pthread_create(&job->thread, NULL, job_thread, r)) != 0)
	{
		job->running = false;
		r->cfg->refs--;
		jobrun_free(r);
		return pv_error_errno(PV_ERROR, rc, "cannot start a thread for job '%s'", job->def.name);
	}
	return PV_OK;
}

json_t *
daemon_job_json(const Job *j)
{
	char t[PV_TIME_FORMAT_MAX];
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(j->def.name));
	json_object_set_new(o, "source", j->def.source ? json_string(j->def.source) : json_null());
	json_object_set_new(o, "kind", json_string(daemon_job_kind_names[j->def.kind]));
	json_object_set_new(o, "schedule", json_string(schedule_text(j->def.sched)));
	json_object_set_new(o, "zone", schedule_zone(j->def.sched) ? json_string(schedule_zone(j->def.sched)) : json_null());
	json_object_set_new(o, "running", json_boolean(j->running));
	if (j->running)
	{
		json_object_set_new(o, "running_since", json_string(pv_time_format_utc(t, sizeof(t), j->run_started)));
		json_object_set_new(o, "running_since_unix", json_real((double) j->run_started / PV_USEC_PER_SEC));
	}
	if (!j->retired && j->next_start < INT64_MAX / 4)
	{
		json_object_set_new(o, "next_run", json_string(pv_time_format_utc(t, sizeof(t), j->next_start)));
		json_object_set_new(o, "next_run_unix", json_real((double) j->next_start / PV_USEC_PER_SEC));
	}
	json_object_set_new(o, "runs_success", json_integer((json_int_t) j->runs[OUTCOME_SUCCESS]));
	json_object_set_new(o, "runs_failure", json_integer((json_int_t) j->runs[OUTCOME_FAILURE]));
	json_object_set_new(o, "runs_aborted", json_integer((json_int_t) j->runs[OUTCOME_ABORTED]));
	json_object_set_new(o, "runs_skipped", json_integer((json_int_t) j->skipped));
	json_object_set_new(o, "consecutive_failures", json_integer((json_int_t) j->consecutive_failures));
	if (j->last_run)
	{
		json_object_set_new(o, "last_run_unix", json_real((double) j->last_run / PV_USEC_PER_SEC));
		json_object_set_new(o, "last_duration_seconds", json_real((double) j->last_duration_ms / 1000.0));
	}
	if (j->last_success)
	{
		json_object_set_new(o, "last_success", json_string(pv_time_format_utc(t, sizeof(t), j->last_success)));
		json_object_set_new(o, "last_success_unix", json_real((double) j->last_success / PV_USEC_PER_SEC));
	}
	json_object_set_new(o, "last", j->last_entry ? json_incref(j->last_entry) : json_null());
	json_object_set_new(o, "retired", json_boolean(j->retired));
	return o;
}
