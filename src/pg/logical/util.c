/*
 * util.c: see util.h.
 */
#include "pg/logical/util.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "pg/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int64_t
pglogical_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
pglogical_conninfo_append(Buf *b, const char *key, const char *val)
{
	if (b->len > 0)
		buf_append_byte(b, ' ');
	buf_printf(b, "%s='", key);
	for (const char *p = val; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf_append_byte(b, '\\');
		buf_append_byte(b, (unsigned char) *p);
	}
	buf_append_byte(b, '\'');
}

char *
pglogical_conninfo(PGconn *conn, const char *dbname, bool with_password)
{
	PQconninfoOption *opts = PQconninfo(conn);
	Buf b = PV_BUF_INIT;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0 && !with_password)
			continue;
		if (strcmp(o->keyword, "dbname") == 0 && dbname != NULL)
			continue;
		if (strcmp(o->keyword, "replication") == 0 || strcmp(o->keyword, "fallback_application_name") == 0 ||
			strcmp(o->keyword, "application_name") == 0)
			continue;
		pglogical_conninfo_append(&b, o->keyword, o->val);
	}
	if (dbname != NULL)
		pglogical_conninfo_append(&b, "dbname", dbname);
	PQconninfoFree(opts);
	return buf_detach(&b);
}

int
pglogical_connect_like(PGconn **out, PGconn *model, const char *dbname, const char *appname)
{
	char *ci = pglogical_conninfo(model, dbname, true);
	int rc = pgconn_connect(out, &(PgConnOpts) {.conninfo = ci, .application_name = appname});

	pv_free_secret_str(ci);
	return rc;
}

int
pglogical_session_setup(PGconn *conn, const char *encoding)
{
	Buf sql = PV_BUF_INIT;
	char *enc = NULL;
	int rc;

	/* Escape the encoding name even though it comes from the catalog or our manifest. */
	enc = PQescapeLiteral(conn, encoding, strlen(encoding));
	if (enc == NULL)
		return pv_error_set(PV_EPG, "cannot quote encoding name '%s'", encoding);
	buf_printf(&sql,
			   "SET client_encoding = %s; SET datestyle = 'ISO'; SET intervalstyle = 'postgres';"
			   " SET timezone = 'UTC'; SET extra_float_digits = 3; SET bytea_output = 'hex';"
			   " SET row_security = off; SET statement_timeout = 0; SET lock_timeout = 0;"
			   " SET idle_in_transaction_session_timeout = 0; SET standard_conforming_strings = on;"
			   " SET xmloption = content",
			   enc);
	PQfreemem(enc);
	rc = pgconn_exec(conn, buf_cstr(&sql));
	buf_free(&sql);
	return rc;
}

char *
pglogical_quote_ident(const char *name)
{
	Buf b = PV_BUF_INIT;

	buf_append_byte(&b, '"');
	for (const char *p = name; *p; p++)
	{
		if (*p == '"')
			buf_append_byte(&b, '"');
		buf_append_byte(&b, (unsigned char) *p);
	}
	buf_append_byte(&b, '"');
	return buf_detach(&b);
}

char *
pglogical_qualify(const char *schema, const char *name)
{
	char *s = pglogical_quote_ident(schema), *n = pglogical_quote_ident(name);
	char *q = pv_asprintf("%s.%s", s, n);

	pv_free(s);
	pv_free(n);
	return q;
}

/* ---- child processes ---- */

int
pglogical_child_start(PgChild *out, char *const argv[], const char *password, bool pipe_stdout)
{
	char tmpl[] = "/tmp/pgvault-stderr-XXXXXX";
	int pfd[2] = {-1, -1};
	int errfd;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->out_fd = out->err_fd = -1;
	if ((errfd = mkstemp(tmpl)) < 0)
		return pv_error_errno(PV_EIO, errno, "cannot create a temporary file for %s's messages", argv[0]);
	unlink(tmpl);
	if (pipe_stdout && pipe(pfd) != 0)
	{
		close(errfd);
		return pv_error_errno(PV_EIO, errno, "cannot create a pipe");
	}
	pid = fork();
	if (pid < 0)
	{
		int e = errno;

		close(errfd);
		if (pfd[0] >= 0)
		{
			close(pfd[0]);
			close(pfd[1]);
		}
		return pv_error_errno(PV_ERROR, e, "cannot start '%s'", argv[0]);
	}
	if (pid == 0)
	{
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(errfd, 2);
		if (pipe_stdout)
		{
			dup2(pfd[1], 1);
			close(pfd[0]);
			close(pfd[1]);
		}
		else
			dup2(errfd, 1);
		if (password != NULL)
			setenv("PGPASSWORD", password, 1);
		execv(argv[0], argv);
		if (strchr(argv[0], '/') == NULL)
			execvp(argv[0], argv);
		fprintf(stderr, "cannot execute '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	out->pid = pid;
	out->err_fd = errfd;
	out->name = pv_strdup(strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]);
	if (pipe_stdout)
	{
		close(pfd[1]);
		out->out_fd = pfd[0];
	}
	return PV_OK;
}

/* The last lines of the child's stderr (at most ~800 bytes), one line. */
static void
child_stderr_tail(PgChild *c, Buf *out)
{
	char buf[801];
	off_t end = lseek(c->err_fd, 0, SEEK_END);
	off_t from = end > 800 ? end - 800 : 0;
	ssize_t n;

	if (end <= 0 || lseek(c->err_fd, from, SEEK_SET) < 0)
		return;
	n = read(c->err_fd, buf, 800);
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	buf_append_str(out, buf);
}

static void
child_close(PgChild *c)
{
	if (c->out_fd >= 0)
		close(c->out_fd);
	if (c->err_fd >= 0)
		close(c->err_fd);
	c->out_fd = c->err_fd = -1;
	pv_free(c->name);
	c->name = NULL;
	c->pid = 0;
}

int
pglogical_child_wait(PgChild *c)
{
	int status = 0;
	int rc = PV_OK;
	Buf msg = PV_BUF_INIT;

	if (c->out_fd >= 0)
	{
		close(c->out_fd);
		c->out_fd = -1;
	}
	while (waitpid(c->pid, &status, 0) < 0)
		if (errno != EINTR)
		{
			rc = pv_error_errno(PV_ERROR, errno, "cannot wait for %s", c->name);
			goto done;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		goto done;
	child_stderr_tail(c, &msg);
	if (WIFEXITED(status))
		rc = pv_error_set(PV_ERROR, "%s failed (exit %d): %s", c->name, WEXITSTATUS(status), buf_cstr(&msg));
	else
		rc = pv_error_set(PV_ERROR, "%s was killed by signal %d: %s", c->name,
						  WIFSIGNALED(status) ? WTERMSIG(status) : 0, buf_cstr(&msg));
done:
	buf_free(&msg);
	child_close(c);
	return rc;
}

void
pglogical_child_kill(PgChild *c)
{
	int status;

	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	if (c->out_fd >= 0)
	{
		close(c->out_fd);
		c->out_fd = -1;
	}
	while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	child_close(c);
}

/* ---- progress ---- */

static void
progress_print(PgProgress *p, bool final)
{
	char sz[32], rate[32], eta[32] = "";
	int64_t ms = pglogical_now_ms() - p->start_ms;
	uint64_t bytes = atomic_load(&p->bytes);
	uint64_t wd = atomic_load(&p->weight_done);

	pv_size_format(sz, sizeof(sz), bytes);
	pv_size_format(rate, sizeof(rate), ms > 0 ? bytes * 1000 / (uint64_t) ms : 0);
	if (!final && wd > 0 && p->weight_total > wd)
	{
		int64_t left = (int64_t) ((double) ms * (double) (p->weight_total - wd) / (double) wd / 1000.0);

		snprintf(eta, sizeof(eta), ", ETA %llds", (long long) left);
	}
	fprintf(stderr, "\r%s: %llu/%llu items, %s, %llu rows, %s/s%s\033[K%s", p->verb,
			(unsigned long long) atomic_load(&p->items_done), (unsigned long long) p->items_total,
			sz, (unsigned long long) atomic_load(&p->rows), rate, eta, final ? "\n" : "");
	fflush(stderr);
}

static void *
progress_main(void *arg)
{
	PgProgress *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->stop)
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		if (!p->stop)
			progress_print(p, false);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void
pglogical_progress_start(PgProgress *p, const char *verb, bool enabled)
{
	p->verb = verb;
	p->start_ms = pglogical_now_ms();
	p->stop = false;
	p->on = enabled && isatty(2) && pv_log_console_level() >= PV_LOG_INFO;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (p->on && pthread_create(&p->thread, NULL, progress_main, p) != 0)
		p->on = false;
}

void
pglogical_progress_stop(PgProgress *p)
{
	if (p->on)
	{
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
		progress_print(p, true);
		p->on = false;
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

/* ---- temporary files ---- */

int
pglogical_temp_write(char **out_path, const Buf *b)
{
	const char *tmp = getenv("TMPDIR");
	char *path = pv_asprintf("%s/pgvault-list-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	int fd = mkstemp(path);
	int rc = PV_OK;

	*out_path = NULL;
	if (fd < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot create a temporary file in '%s'", tmp && tmp[0] ? tmp : "/tmp");
		pv_free(path);
		return rc;
	}
	for (size_t off = 0; off < b->len;)
	{
		ssize_t w = write(fd, b->data + off, b->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "writing '%s'", path);
			break;
		}
		off += (size_t) w;
	}
	close(fd);
	if (rc < 0)
	{
		unlink(path);
		pv_free(path);
		return rc;
	}
	*out_path = path;
	return PV_OK;
}
