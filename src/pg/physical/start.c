/*
 * start.c: start a restored cluster and follow its recovery (see start.h).
 * Programs run through posix_spawn with argument vectors (no shell), their
 * output captured through a pipe when needed.
 */
#include "pg/physical/start.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "pg/tools.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Run argv, stdout (and stderr) into out when not NULL; *status gets the exit status. */
static int
run(char *const argv[], Buf *out, int *status)
{
	posix_spawn_file_actions_t fa;
	int fds[2] = {-1, -1};
	pid_t pid;
	int rc, ws;

	if (out != NULL && pipe2(fds, O_CLOEXEC) < 0)
		return pv_error_errno(PV_EIO, errno, "cannot create a pipe");
	posix_spawn_file_actions_init(&fa);
	if (out != NULL)
	{
		posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
		posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
	}
	else
		posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (fds[1] >= 0)
		close(fds[1]);
	if (rc != 0)
	{
		if (fds[0] >= 0)
			close(fds[0]);
		return pv_error_errno(PV_ERROR, rc, "cannot run '%s'", argv[0]);
	}
	if (out != NULL)
	{
		char buf[4096];
		ssize_t n;

		while ((n = read(fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
			if (n > 0)
				buf_append(out, buf, (size_t) n);
		close(fds[0]);
	}
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return pv_error_errno(PV_ERROR, errno, "cannot wait for '%s'", argv[0]);
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
	return 0;
}

/* "Database cluster state" from pg_controldata. */
static int
cluster_state(char *out, size_t outsz, const char *controldata, const char *pgdata)
{
	char *argv[] = {(char *) controldata, (char *) "-D", (char *) pgdata, NULL};
	Buf text = PV_BUF_INIT;
	const char *p;
	int status, rc;

	if ((rc = run(argv, &text, &status)) < 0)
		goto done;
	p = strstr(buf_cstr(&text), "Database cluster state:");
	if (status != 0 || p == NULL)
	{
		rc = pv_error_set(PV_ERROR, "pg_controldata failed on '%s': %s", pgdata, buf_cstr(&text));
		goto done;
	}
	p += strlen("Database cluster state:");
	p += strspn(p, " ");
	snprintf(out, outsz, "%.*s", (int) strcspn(p, "\n"), p);
done:
	buf_free(&text);
	return rc;
}

static bool
postmaster_alive(const char *pgdata)
{
	char *pidfile = pv_fs_path_join(pgdata, "postmaster.pid");
	Buf b = PV_BUF_INIT;
	bool alive = false;

	if (pv_fs_read_file(pidfile, &b) == 0)
	{
		long pid = strtol(buf_cstr(&b), NULL, 10);

		alive = pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM);
	}
	pv_error_clear();
	buf_free(&b);
	pv_free(pidfile);
	return alive;
}

/* The server's last FATAL or PANIC line (the reason), then the log's last three lines. */
static void
log_tail(char *out, size_t outsz, const char *path)
{
	Buf b = PV_BUF_INIT;
	const char *s, *fatal = NULL;
	size_t n, fatal_len = 0;

	out[0] = '\0';
	if (pv_fs_read_file(path, &b) < 0)
	{
		pv_error_clear();
		return;
	}
	for (const char *p = buf_cstr(&b); *p;)
	{
		size_t len = strcspn(p, "\n");

		if (memmem(p, len, "FATAL:", 6) != NULL || memmem(p, len, "PANIC:", 6) != NULL)
		{
			fatal = p;
			fatal_len = len;
		}
		p += len + (p[len] == '\n');
	}
	n = b.len;
	for (int lines = 0; n > 0 && lines < 4; n--)
		if (b.data[n - 1] == '\n')
			lines++;
	s = buf_cstr(&b) + n;
	s += *s == '\n';
	if (fatal != NULL && fatal < s)
		snprintf(out, outsz, "%.*s\n...\n%s", (int) fatal_len, fatal, s);
	else
		snprintf(out, outsz, "%s", s);
	buf_free(&b);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

int
pgphys_start(PgPhysStartResult *out, const PgPhysStartOpts *o)
{
	PgTool ctl = {0};
	char *logdir = NULL, *controldata = NULL, *bindir = NULL;
	char tail[2048];
	int64_t t0 = pv_time_monotonic_ms();
	const char *action = o->action ? o->action : "promote";
	int status, rc, n = 0;
	char *argv[12];

	memset(out, 0, sizeof(*out));
	if (geteuid() == 0)
	{
		pv_error_set(PV_EREFUSED, "--start cannot start the server as root");
		pv_error_hint("run the restore as the server's user (e.g. sudo -u postgres pgvault ...)");
		return PV_EREFUSED;
	}
	if ((rc = pgtools_find(&ctl, "pg_ctl", o->bindir, o->pg_major)) < 0)
		return rc;
	if (ctl.version_num / 10000 != o->pg_major)
	{
		rc = pv_error_set(PV_ENOTFOUND, "'%s' is PostgreSQL %d, the backup is of %d", ctl.path,
						  ctl.version_num / 10000, o->pg_major);
		pv_error_hint("install postgresql-%d, or set bindir in the source's configuration",
					  o->pg_major);
		goto done;
	}
	bindir = pv_fs_path_dirname(ctl.path);
	controldata = pv_fs_path_join(bindir, "pg_controldata");
	logdir = pv_fs_path_join(o->pgdata, "log");
	if ((rc = pv_fs_mkdir_p(logdir, 0700)) < 0)
		goto done;
	snprintf(out->log, sizeof(out->log), "%s/pgvault-start.log", logdir);
	argv[n++] = ctl.path;
	argv[n++] = (char *) "-D";
	argv[n++] = (char *) o->pgdata;
	argv[n++] = (char *) "-l";
	argv[n++] = out->log;
	argv[n++] = (char *) "-w";
	argv[n++] = (char *) "-t";
	argv[n++] = (char *) "31536000";	/* recovery may take long: we keep our own clock */
	if (o->options != NULL)
	{
		argv[n++] = (char *) "-o";
		argv[n++] = (char *) o->options;
	}
	argv[n++] = (char *) "start";
	argv[n] = NULL;
	pv_log_info("starting the server on '%s' (log: %s)", o->pgdata, out->log);
	if ((rc = run(argv, NULL, &status)) < 0)
		goto done;
	out->start_ms = pv_time_monotonic_ms() - t0;
	/* shutdown at the target: pg_ctl -w may fail as the server stops by itself */
	if (status != 0 && strcmp(action, "shutdown") != 0)
	{
		log_tail(tail, sizeof(tail), out->log);
		rc = pv_error_set(PV_ERROR, "the server did not start (pg_ctl exit status %d); the end "
						  "of its log:\n%s", status, tail);
		goto done;
	}
	if (strcmp(action, "pause") == 0)
	{
		rc = cluster_state(out->state, sizeof(out->state), controldata, o->pgdata);
		goto done;
	}
	for (int64_t last_log = pv_time_monotonic_ms();;)
	{
		int64_t now = pv_time_monotonic_ms();
		bool alive = postmaster_alive(o->pgdata);

		if ((rc = cluster_state(out->state, sizeof(out->state), controldata, o->pgdata)) < 0)
			goto done;
		if (strcmp(out->state, "in production") == 0 && strcmp(action, "promote") == 0)
			break;
		if (!alive)
		{
			if (strcmp(action, "shutdown") == 0 && strcmp(out->state, "shut down in recovery") == 0)
				break;
			log_tail(tail, sizeof(tail), out->log);
			rc = pv_error_set(PV_ERROR, "the server stopped during recovery (%s); the end of its "
							  "log:\n%s", out->state, tail);
			goto done;
		}
		if (o->timeout_ms > 0 && now - t0 > o->timeout_ms)
		{
			rc = pv_error_set(PV_ECANCEL, "recovery did not end within the timeout (the server "
							  "is still running and recovering: %s)", out->state);
			goto done;
		}
		if (now - last_log >= 10000)
		{
			last_log = now;
			pv_log_info("recovery of '%s' going on (%s)", o->pgdata, out->state);
		}
		sleep_ms(100);
	}
	out->recovery_ms = pv_time_monotonic_ms() - t0;
done:
	pgtools_clear(&ctl);
	pv_free(bindir);
	pv_free(controldata);
	pv_free(logdir);
	return rc;
}
