/*
 * drill.c: restore drills (see drill.h for what a drill does and promises).
 *
 * Layout of this file: running programs (initdb, pg_ctl, pg_restore, as
 * another user when root), the scratch cluster (create, start, destroy),
 * picking the backup and reading its catalog, the checks, and drill_run
 * tying them together.
 *
 * Invariant: once scratch_create has made a directory, scratch_destroy
 * runs on every path out of drill_run (one "done:" label), so no server
 * and no directory outlive a drill that ended normally.
 */
#include "ops/drill.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/sort.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "pg/conn.h"
#include "pg/logical/archive.h"
#include "pg/logical/fingerprint.h"
#include "pg/logical/logical.h"
#include "pg/logical/util.h"
#include "pg/physical/restore.h"
#include "pg/tools.h"
#include "pg/wal/archive.h"
#include "pg/wal/wal.h"
#include "pv_build.h"
#include "repo/repo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DETAILS_MAX 20			/* problems listed per check; the count is always exact */

/* ---- running programs ---- */

/*
 * Run argv[0] (an absolute path) with argv, as user run_as (NULL: as we
 * are) through runuser, in cwd, with stdin from /dev/null and stdout and
 * stderr appended to log, and PG* variables removed from the environment
 * (they are the caller's, not the scratch cluster's).  Error: "NAME failed
 * (exit N): <last lines of the log>".
 */
static int
spawn_wait(char *const argv[], const char *run_as, const char *cwd, const char *log)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	char **env = NULL, **args = NULL;
	size_t nenv = 0, nargs = 0, k = 0;
	int logfd = -1, status = 0, rc = PV_OK;
	off_t start;
	pid_t pid;

	for (char **e = environ; *e; e++)
		nenv++;
	env = pv_calloc(nenv + 2, sizeof(char *));
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "PG", 2) != 0)
			env[k++] = *e;
	while (argv[nargs])
		nargs++;
	args = pv_calloc(nargs + 5, sizeof(char *));
	k = 0;
	if (run_as != NULL)
	{
		args[k++] = access("/usr/sbin/runuser", X_OK) == 0 ? (char *) "/usr/sbin/runuser" :
			access("/sbin/runuser", X_OK) == 0 ? (char *) "/sbin/runuser" : (char *) "runuser";
		args[k++] = (char *) "-u";
		args[k++] = (char *) run_as;
		args[k++] = (char *) "--";
	}
	for (size_t i = 0; i < nargs; i++)
		args[k++] = argv[i];
	if ((logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot open '%s'", log);
		goto done;
	}
	start = lseek(logfd, 0, SEEK_END);
	pid = fork();
	if (pid < 0)
	{
		rc = pv_error_errno(PV_ERROR, errno, "cannot start '%s'", name);
		goto done;
	}
	if (pid == 0)
	{
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (cwd != NULL && chdir(cwd) != 0)
			_exit(126);
		execve(args[0], args, env);
		if (strchr(args[0], '/') == NULL)
		{
			environ = env;
			execvp(args[0], args);
		}
		dprintf(2, "cannot execute '%s': %s\n", args[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
		{
			rc = pv_error_errno(PV_ERROR, errno, "cannot wait for '%s'", name);
			goto done;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
	{
		char tail[601] = "";
		off_t end = lseek(logfd, 0, SEEK_END);
		off_t from = end - start > 600 ? end - 600 : start;
		int rfd = open(log, O_RDONLY | O_CLOEXEC);
		ssize_t n = rfd >= 0 ? pread(rfd, tail, (size_t) (end - from), from) : -1;

		if (rfd >= 0)
			close(rfd);
		tail[n > 0 ? n : 0] = '\0';
		for (char *p = tail; *p; p++)
			if (*p == '\n')
				*p = ' ';
		rc = pv_error_set(PV_ERROR, "%s failed (%s %d): %s", name,
						  WIFEXITED(status) ? "exit" : "signal",
						  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
	}
done:
	if (logfd >= 0)
		close(logfd);
	pv_free(env);
	pv_free(args);
	return rc;
}

/* ---- the scratch cluster ---- */

typedef struct Scratch
{
	char *dir;					/* the drill's directory (mkdtemp) */
	char *datadir, *sockdir, *serverlog, *cmdlog;
	char port[16];
	const char *run_as;			/* NULL unless root */
	char *bindir;
	char *initdb, *pg_ctl;
	int version_num;
	bool started;
} Scratch;

/* The postmaster to stop if a signal ends pgvault mid-drill. */
static volatile sig_atomic_t scratch_pid;

static void
scratch_on_signal(int sig)
{
	if (scratch_pid > 0)
		kill((pid_t) scratch_pid, SIGQUIT);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
scratch_signals(bool on)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on ? scratch_on_signal : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < PV_ARRAY_LEN(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* A TCP port nobody listens on: the number also names the socket and keys shared memory. */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0 &&
		getsockname(fd, (struct sockaddr *) &a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port > 0 ? port : 54329;
}

static int
chown_to(const char *path, const char *user)
{
	struct passwd pw, *res = NULL;
	char buf[2048];

	if (user == NULL)
		return PV_OK;
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
	{
		pv_error_set(PV_ECONFIG, "user '%s' (drill-user) does not exist", user);
		pv_error_hint("PostgreSQL refuses to run as root: set drill-user to an unprivileged user");
		return PV_ECONFIG;
	}
	if (chown(path, pw.pw_uid, pw.pw_gid) != 0)
		return pv_error_errno(PV_EIO, errno, "cannot hand '%s' to user '%s'", path, user);
	return PV_OK;
}

static uid_t tree_uid;
static gid_t tree_gid;

static int
chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return lchown(path, tree_uid, tree_gid) == 0 ? 0 : errno;
}

/* Hand a whole tree to user (root only: what pgvault restored as root, the server must own). */
static int
chown_tree(const char *path, const char *user)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct passwd pw, *res = NULL;
	char buf[2048];
	int e;

	if (user == NULL)
		return PV_OK;
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return pv_error_set(PV_ECONFIG, "user '%s' (drill-user) does not exist", user);
	pthread_mutex_lock(&mu);	/* nftw has no payload: the ids travel in statics */
	tree_uid = pw.pw_uid;
	tree_gid = pw.pw_gid;
	e = nftw(path, chown_one, 32, FTW_PHYS);
	pthread_mutex_unlock(&mu);
	if (e != 0)
		return pv_error_errno(PV_EIO, e > 0 ? e : errno, "cannot hand '%s' to user '%s'", path, user);
	return PV_OK;
}

static int
scratch_conf_write(Scratch *s, int jobs)
{
	char *path = pv_fs_path_join(s->datadir, "postgresql.conf");
	Buf conf = PV_BUF_INIT;
	int fd, rc = PV_OK;

	/* Speed over durability: the cluster is thrown away after the drill. */
	buf_printf(&conf,
			   "\n# pgvault drill\n"
			   "listen_addresses = ''\n"
			   "port = %s\n"
			   "unix_socket_directories = '%s'\n"
			   "unix_socket_permissions = 0700\n"
			   "max_connections = %d\n"
			   "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
			   "wal_level = minimal\nmax_wal_senders = 0\narchive_mode = off\n"
			   "autovacuum = off\nmaintenance_work_mem = '256MB'\n"
			   "max_wal_size = '4GB'\ncheckpoint_timeout = '30min'\n"
			   "logging_collector = off\nlc_messages = 'C'\n",
			   s->port, s->sockdir, 2 * jobs + 20);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
		rc = pv_error_errno(PV_EIO, errno, "cannot open '%s'", path);
	else
	{
		if ((rc = pv_fs_write_all(fd, conf.data, conf.len)) < 0)
			rc = pv_error_prefix(rc, "cannot write '%s'", path);
		close(fd);
	}
	buf_free(&conf);
	pv_free(path);
	return rc;
}

static int
read_postmaster_pid(const char *datadir)
{
	char *path = pv_fs_path_join(datadir, "postmaster.pid");
	Buf b = PV_BUF_INIT;
	int pid = 0;

	if (pv_fs_read_file(path, &b) == 0)
		pid = atoi(buf_cstr(&b));
	buf_free(&b);
	pv_free(path);
	return pid;
}

/*
 * Find the programs and make the directory (with its socket directory),
 * handed to the server's user when root.  initdb is needed for a new
 * cluster only; a physical backup needs pg_ctl of exactly its major version.
 */
static int
scratch_prepare(Scratch *s, const DrillOpts *o, int server_major, bool physical)
{
	const char *base = o->work_dir ? o->work_dir : getenv("TMPDIR");
	PgTool tool = {0};
	char *tmpl = NULL;
	int rc;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	s->run_as = geteuid() == 0 ? (o->run_as ? o->run_as : "postgres") : NULL;
	if ((rc = pgtools_find(&tool, physical ? "pg_ctl" : "initdb", o->bindir, server_major)) < 0)
	{
		pv_error_hint("a drill starts a scratch server: install the PostgreSQL %d server package (e.g. "
					  "postgresql-%d) or set bindir", server_major, server_major);
		goto done;
	}
	if (physical && tool.version_num / 10000 != server_major)
	{
		rc = pv_error_set(PV_ENOTFOUND, "a physical backup of PostgreSQL %d needs PostgreSQL %d's server, "
						  "found %d.%d ('%s')", server_major, server_major, tool.version_num / 10000,
						  tool.version_num % 10000, tool.path);
		pv_error_hint("install postgresql-%d or set bindir", server_major);
		goto done;
	}
	s->bindir = pv_fs_path_dirname(tool.path);
	s->version_num = tool.version_num;
	s->initdb = pv_fs_path_join(s->bindir, "initdb");
	s->pg_ctl = pv_fs_path_join(s->bindir, "pg_ctl");
	if (access(s->pg_ctl, X_OK) != 0)
	{
		rc = pv_error_set(PV_ENOTFOUND, "no pg_ctl next to '%s'", tool.path);
		goto done;
	}
	tmpl = pv_fs_path_join(base, "pgvault-drill-XXXXXX");
	if (strlen(tmpl) > 80)
	{
		rc = pv_error_set(PV_ECONFIG, "drill-dir '%s' is too long for a Unix socket path", base);
		goto done;
	}
	if (mkdtemp(tmpl) == NULL)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot create a scratch directory under '%s'", base);
		goto done;
	}
	s->dir = tmpl;
	tmpl = NULL;
	s->datadir = pv_fs_path_join(s->dir, "data");
	s->sockdir = pv_fs_path_join(s->dir, "s");
	s->serverlog = pv_fs_path_join(s->dir, "server.log");
	s->cmdlog = pv_fs_path_join(s->dir, "commands.log");
	snprintf(s->port, sizeof(s->port), "%d", free_port());
	if (mkdir(s->sockdir, 0700) != 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot create '%s'", s->sockdir);
		goto done;
	}
	if ((rc = chown_to(s->dir, s->run_as)) < 0 || (rc = chown_to(s->sockdir, s->run_as)) < 0)
		goto done;
done:
	pgtools_clear(&tool);
	pv_free(tmpl);
	return rc;
}

/* The end of the server's log on one line (and the whole log at warning level: the file goes with the drill). */
static void
server_log_tail(const Scratch *s, char *out, size_t outsz)
{
	Buf log = PV_BUF_INIT;

	out[0] = '\0';
	if (pv_fs_read_file(s->serverlog, &log) == 0 && log.len > 0)
	{
		size_t keep = outsz - 1;

		snprintf(out, outsz, "%s", (const char *) log.data + (log.len > keep ? log.len - keep : 0));
		pv_log_warn("scratch server log:\n%s", buf_cstr(&log));
	}
	pv_error_clear();
	buf_free(&log);
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* Start the server (extra: more options for postgres, or NULL) and wait until it takes connections. */
static int
scratch_start(Scratch *s, const char *extra, int timeout_secs)
{
	char t[16];
	char *argv[16];
	int n = 0, rc;

	snprintf(t, sizeof(t), "%d", timeout_secs);
	argv[n++] = s->pg_ctl;
	argv[n++] = (char *) "-D";
	argv[n++] = s->datadir;
	argv[n++] = (char *) "-l";
	argv[n++] = s->serverlog;
	if (extra != NULL)
	{
		argv[n++] = (char *) "-o";
		argv[n++] = (char *) extra;
	}
	argv[n++] = (char *) "-w";
	argv[n++] = (char *) "-t";
	argv[n++] = t;
	argv[n++] = (char *) "start";
	argv[n] = NULL;
	scratch_signals(true);
	s->started = true;			/* from here on, destroy stops it (also after a failed start) */
	rc = spawn_wait(argv, s->run_as, s->dir, s->cmdlog);
	scratch_pid = read_postmaster_pid(s->datadir);
	if (rc < 0)
	{
		char tail[1001];

		server_log_tail(s, tail, sizeof(tail));
		rc = pv_error_set(PV_ERROR, "the scratch server did not start%s%s", tail[0] ? ": " : "", tail);
	}
	return rc;
}

/* A new cluster: initdb, our settings, start. */
static int
scratch_create(Scratch *s, const DrillOpts *o, int server_major)
{
	char *argv[] = {NULL, (char *) "-D", NULL, (char *) "-U", (char *) "postgres", (char *) "-A",
		(char *) "trust", (char *) "-E", (char *) "UTF8", (char *) "--locale=C", (char *) "-N", NULL};
	int rc;

	if ((rc = scratch_prepare(s, o, server_major, false)) < 0)
		return rc;
	argv[0] = s->initdb;
	argv[2] = s->datadir;
	if ((rc = spawn_wait(argv, s->run_as, s->dir, s->cmdlog)) < 0 || (rc = scratch_conf_write(s, o->jobs)) < 0 ||
		(rc = scratch_start(s, NULL, 120)) < 0)
		return rc;
	pv_log_detail("drill: scratch server PostgreSQL %d.%d in '%s' (socket %s, port %s)",
				  s->version_num / 10000, s->version_num % 10000, s->dir, s->sockdir, s->port);
	return PV_OK;
}

/* Stop the server (immediate: nothing in it is worth a checkpoint), remove the directory. */
static void
scratch_destroy(Scratch *s)
{
	PvErrorSave saved;

	/* Cleaning up must not replace the error that ended the drill. */
	pv_error_save(&saved);
	if (s->started)
	{
		char *argv[] = {s->pg_ctl, (char *) "-D", s->datadir, (char *) "-m", (char *) "immediate",
			(char *) "-w", (char *) "-t", (char *) "30", (char *) "stop", NULL};
		int pid = read_postmaster_pid(s->datadir);

		if (pid > 0 && spawn_wait(argv, s->run_as, s->dir, s->cmdlog) < 0)
		{
			pv_log_warn("drill: stopping the scratch server: %s", pv_error_msg());
			pv_error_clear();
			if (kill(pid, 0) == 0)
			{
				kill(pid, SIGKILL);
				usleep(200 * 1000);
			}
		}
		scratch_pid = 0;
		scratch_signals(false);
	}
	if (s->dir != NULL && pv_fs_remove_tree(s->dir) < 0)
	{
		pv_log_warn("drill: cannot remove '%s': %s", s->dir, pv_error_msg());
		pv_error_clear();
	}
	pv_free(s->dir);
	pv_free(s->datadir);
	pv_free(s->sockdir);
	pv_free(s->serverlog);
	pv_free(s->cmdlog);
	pv_free(s->bindir);
	pv_free(s->initdb);
	pv_free(s->pg_ctl);
	memset(s, 0, sizeof(*s));
	pv_error_restore(&saved);
}

static void
scratch_conn(const Scratch *s, PgConnOpts *out, const char *dbname)
{
	memset(out, 0, sizeof(*out));
	out->host = s->sockdir;
	out->port = s->port;
	out->username = "postgres";
	out->dbname = dbname;
	out->application_name = "pgvault drill";
}

/* Our own connections' NOTICEs ("database ... does not exist, skipping") are noise. */
static void
notice_ignore(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/* ---- the backup and its catalog ---- */

typedef struct DrillTable
{
	char *schema, *name, *qname, *cols;
	char *filter;				/* an extension's configuration table: the rows backed up ("WHERE ..."), or NULL */
	char *label;				/* schema.name for people: quoted only where SQL needs it */
	uint64_t rows;
	uint64_t fp;
	json_t *indexes;			/* names, or NULL */
	uint64_t got_rows, got_fp;
	char *error;				/* why it could not be read back */
} DrillTable;

typedef struct DrillSeq
{
	char *schema, *name, *last_value;
	bool is_called;
} DrillSeq;

typedef struct DrillCatalog
{
	DrillTable *tables;
	size_t ntables, tcap;
	DrillSeq *seqs;
	size_t nseqs, scap;
	json_t *matviews;			/* [{"schema","name","populated"}] */
	int64_t large_objects;		/* -1: none recorded */
	char *error;				/* the first malformed entry */
} DrillCatalog;

/* One identifier as people write it: bare when it is plainly lowercase, else quoted. */
static void
label_ident(Buf *b, const char *id)
{
	bool plain = id[0] != '\0' && !(id[0] >= '0' && id[0] <= '9');

	for (const char *p = id; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
	if (plain)
	{
		buf_append_str(b, id);
		return;
	}
	buf_append_byte(b, '"');
	for (const char *p = id; *p; p++)
	{
		if (*p == '"')
			buf_append_byte(b, '"');
		buf_append_byte(b, (unsigned char) *p);
	}
	buf_append_byte(b, '"');
}

static char *
label_new(const char *schema, const char *name)
{
	Buf b = PV_BUF_INIT;

	label_ident(&b, schema);
	buf_append_byte(&b, '.');
	label_ident(&b, name);
	return buf_detach(&b);
}

static int
catalog_entry(const json_t *e, void *payload)
{
	DrillCatalog *c = payload;
	const char *kind = json_string_value(json_object_get(e, "kind"));
	const char *schema = json_string_value(json_object_get(e, "schema"));
	const char *name = json_string_value(json_object_get(e, "name"));

	if (kind == NULL)
		return 0;
	if (strcmp(kind, "large_objects") == 0)
	{
		c->large_objects = json_integer_value(json_object_get(e, "count"));
		return 0;
	}
	if (schema == NULL || name == NULL)
		return 0;
	if (strcmp(kind, "table") == 0 && json_is_true(json_object_get(e, "data")))
	{
		DrillTable *t;
		const char *fp = json_string_value(json_object_get(e, "fingerprint"));
		const char *cols = json_string_value(json_object_get(e, "columns"));
		const json_t *rows = json_object_get(e, "rows");

		if (c->ntables == c->tcap)
		{
			c->tcap = c->tcap ? 2 * c->tcap : 32;
			c->tables = pv_realloc(c->tables, c->tcap * sizeof(DrillTable));
		}
		t = &c->tables[c->ntables++];
		memset(t, 0, sizeof(*t));
		t->schema = pv_strdup(schema);
		t->name = pv_strdup(name);
		t->qname = pglogical_qualify(schema, name);
		t->label = label_new(schema, name);
		t->cols = pv_strdup(cols ? cols : "");
		if (json_is_string(json_object_get(e, "filter")))
			t->filter = pv_strdup(json_string_value(json_object_get(e, "filter")));
		if (!json_is_integer(rows) || fp == NULL || pgfp_parse(&t->fp, fp) < 0)
		{
			if (c->error == NULL)
				c->error = pv_asprintf("the catalog entry of table %s has no usable row count or fingerprint",
									   t->label);
			pv_error_clear();
		}
		t->rows = (uint64_t) json_integer_value(rows);
		if (json_is_array(json_object_get(e, "indexes")))
			t->indexes = json_incref(json_object_get(e, "indexes"));
	}
	else if (strcmp(kind, "sequence") == 0)
	{
		DrillSeq *s;
		const char *lv = json_string_value(json_object_get(e, "last_value"));

		if (c->nseqs == c->scap)
		{
			c->scap = c->scap ? 2 * c->scap : 16;
			c->seqs = pv_realloc(c->seqs, c->scap * sizeof(DrillSeq));
		}
		s = &c->seqs[c->nseqs++];
		s->schema = pv_strdup(schema);
		s->name = pv_strdup(name);
		s->last_value = pv_strdup(lv ? lv : "");
		s->is_called = json_is_true(json_object_get(e, "is_called"));
	}
	else if (strcmp(kind, "matview") == 0)
		json_array_append_new(c->matviews, json_pack("{s:s, s:s, s:b}", "schema", schema, "name", name,
													 "populated", json_is_true(json_object_get(e, "populated"))));
	return 0;
}

static void
catalog_free(DrillCatalog *c)
{
	for (size_t i = 0; i < c->ntables; i++)
	{
		DrillTable *t = &c->tables[i];

		pv_free(t->schema);
		pv_free(t->name);
		pv_free(t->qname);
		pv_free(t->label);
		pv_free(t->cols);
		pv_free(t->filter);
		pv_free(t->error);
		json_decref(t->indexes);
	}
	for (size_t i = 0; i < c->nseqs; i++)
	{
		pv_free(c->seqs[i].schema);
		pv_free(c->seqs[i].name);
		pv_free(c->seqs[i].last_value);
	}
	pv_free(c->tables);
	pv_free(c->seqs);
	json_decref(c->matviews);
	pv_free(c->error);
	memset(c, 0, sizeof(*c));
}

/* Can a drill restore m (of kind, when kind is not NULL; holding database, when not NULL)? */
static bool
drillable(const RepoManifest *m, const char *kind, const char *database)
{
	const char *k = repo_manifest_kind(m);
	const json_t *meta = repo_manifest_metadata(m);

	if (kind != NULL && strcmp(k, kind) != 0)
		return false;
	if (database != NULL && (strcmp(k, "logical") != 0 || !pgarchive_holds_database(m, database)))
		return false;
	if (strcmp(k, "physical") == 0)
		return true;
	return strcmp(k, "logical") == 0 && !json_is_true(json_object_get(meta, "schema_only"));
}

int
drill_backup_pick(const DrillOpts *o, char out[REPO_BACKUP_ID_LEN + 1])
{
	char **ids = NULL;
	size_t n = 0, ncand = 0;
	size_t *cand = NULL;
	bool latest = !o->random && (o->backup == NULL || strcmp(o->backup, "latest") == 0);
	PvTime since = o->random_days > 0 ? pv_time_now() - o->random_days * 86400 * PV_USEC_PER_SEC : 0;
	int rc;

	if (!o->random && !latest)
		return repo_manifest_resolve(o->repo, o->backup, NULL, NULL, out);
	if ((rc = repo_manifest_ids(o->repo, &ids, &n)) < 0)
		return rc;
	cand = pv_calloc(n ? n : 1, sizeof(size_t));
	/* newest first: "latest" stops at the first drillable one */
	for (size_t i = n; i > 0 && !(latest && ncand > 0); i--)
	{
		RepoManifest *m = NULL;

		if (repo_manifest_load(&m, o->repo, ids[i - 1]) < 0)
		{
			pv_error_clear();	/* verify reports damaged manifests; a drill picks among good ones */
			continue;
		}
		if (drillable(m, o->kind, o->database) && repo_manifest_start_time(m) >= since &&
			(o->source == NULL || strcmp(repo_manifest_source(m), o->source) == 0))
			cand[ncand++] = i - 1;
		repo_manifest_free(m);
	}
	if (ncand == 0)
		rc = pv_error_set(PV_ENOTFOUND, "no backup%s%s%s%s%s%s%s%s to drill in repository '%s'%s",
						  o->kind ? " of kind " : "", o->kind ? o->kind : "",
						  o->source ? " of source '" : "", o->source ? o->source : "", o->source ? "'" : "",
						  o->database ? " of database '" : "", o->database ? o->database : "",
						  o->database ? "'" : "",
						  repo_url(o->repo), o->random_days > 0 ? " started in that many days" : "");
	else
	{
		uint64_t r = 0;

		if (!latest)
			pv_fs_random_fill(&r, sizeof(r));
		snprintf(out, REPO_BACKUP_ID_LEN + 1, "%s", ids[cand[r % ncand]]);
		rc = PV_OK;
	}
	pv_free(cand);
	repo_manifest_ids_free(ids, n);
	return rc;
}

/* ---- user checks ---- */

typedef struct UserCheck
{
	char *query;
	char *expected;
	int line;
} UserCheck;

static void
user_checks_free(UserCheck *c, int n)
{
	for (int i = 0; i < n; i++)
	{
		pv_free(c[i].query);
		pv_free(c[i].expected);
	}
	pv_free(c);
}

static char *
trim_dup(const char *s, size_t len)
{
	while (len > 0 && (*s == ' ' || *s == '\t'))
	{
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		len--;
	return pv_strndup(s, len);
}

static int
user_checks_load(const char *path, UserCheck **out, int *out_n)
{
	Buf b = PV_BUF_INIT;
	UserCheck *c = NULL;
	int n = 0, line = 0, rc;
	char *p, *next;

	*out = NULL;
	*out_n = 0;
	if ((rc = pv_fs_read_file(path, &b)) < 0)
		return pv_error_prefix(rc, "drill checks");
	for (p = (char *) b.data; p != NULL && *p; p = next)
	{
		char *nl = strchr(p, '\n'), *arrow = NULL, *q;
		size_t len = nl ? (size_t) (nl - p) : strlen(p);
		char *text;

		next = nl ? nl + 1 : NULL;
		line++;
		text = trim_dup(p, len);
		if (text[0] == '\0' || text[0] == '#')
		{
			pv_free(text);
			continue;
		}
		for (q = strstr(text, " => "); q != NULL; q = strstr(q + 1, " => "))
			arrow = q;
		if (arrow == NULL || arrow == text || arrow[4] == '\0')
		{
			pv_free(text);
			user_checks_free(c, n);
			buf_free(&b);
			pv_error_set(PV_ECONFIG, "%s:%d: a check is 'QUERY => EXPECTED'", path, line);
			pv_error_hint("for example: SELECT count(*) > 0 FROM orders => t");
			return PV_ECONFIG;
		}
		c = pv_realloc(c, (size_t) (n + 1) * sizeof(UserCheck));
		c[n].query = trim_dup(text, (size_t) (arrow - text));
		c[n].expected = trim_dup(arrow + 4, strlen(arrow + 4));
		c[n].line = line;
		n++;
		pv_free(text);
	}
	buf_free(&b);
	*out = c;
	*out_n = n;
	return PV_OK;
}

int
drill_checks_validate(const char *path, int *out_n)
{
	UserCheck *c = NULL;
	int n = 0, rc = user_checks_load(path, &c, &n);

	user_checks_free(c, n);
	if (rc == 0 && out_n != NULL)
		*out_n = n;
	return rc;
}

/* query with :backup_time and :backup_id replaced (literals). */
static char *
user_query_expand(const char *q, const char *time_lit, const char *id_lit)
{
	Buf b = PV_BUF_INIT;

	while (*q)
	{
		if (strncmp(q, ":backup_time", 12) == 0)
		{
			buf_append_str(&b, time_lit);
			q += 12;
		}
		else if (strncmp(q, ":backup_id", 10) == 0)
		{
			buf_append_str(&b, id_lit);
			q += 10;
		}
		else
			buf_append_byte(&b, (unsigned char) *q++);
	}
	return buf_detach(&b);
}

/* ---- the run ---- */

typedef struct DrillRun
{
	const DrillOpts *o;
	Scratch scratch;
	RepoManifest *m;
	const json_t *meta;
	const char *encoding;
	char *dbname;
	DrillCatalog cat;
	json_t *checks;				/* the report's array */
	bool integrity_ok;
	PgConnOpts conn;			/* to the restored database */
	const char *scope;			/* physical drills: the database the checks are about, or NULL */
} DrillRun;

/* Add a check to the report: status "ok", "warning", "failed" or "skipped"; returns its details. */
static json_t *
check_add(DrillRun *r, const char *name, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static json_t *
check_add(DrillRun *r, const char *name, const char *status, const char *fmt, ...)
{
	json_t *c = json_object(), *details = json_object();
	Buf msg = PV_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (r->scope != NULL)
	{
		json_object_set_new(c, "name", json_sprintf("%s:%s", r->scope, name));
		json_object_set_new(c, "database", json_string(r->scope));
	}
	else
		json_object_set_new(c, "name", json_string(name));
	json_object_set_new(c, "status", json_string(status));
	json_object_set_new(c, "message", json_string(buf_cstr(&msg)));
	json_object_set_new(c, "details", details);
	json_array_append_new(r->checks, c);
	if (strcmp(status, "failed") == 0 && strcmp(name, "rto") != 0)
		r->integrity_ok = false;
	buf_free(&msg);
	return details;
}

/* Append a problem to a check's details["problems"], keeping at most DETAILS_MAX. */
static void
problem_add(json_t *details, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem_add(json_t *details, const char *fmt, ...)
{
	json_t *a = json_object_get(details, "problems");
	Buf msg = PV_BUF_INIT;
	va_list ap;

	if (a == NULL)
	{
		a = json_array();
		json_object_set_new(details, "problems", a);
	}
	if (json_array_size(a) >= DETAILS_MAX)
		return;
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	json_array_append_new(a, json_string(buf_cstr(&msg)));
	buf_free(&msg);
}

/* Create the target database: the source's encoding and locale, or C when the locale is missing here. */
static int
target_create(DrillRun *r, json_t *warnings)
{
	PGconn *c = NULL;
	PgConnOpts co;
	const char *enc = json_string_value(json_object_get(r->meta, "encoding"));
	const char *coll = json_string_value(json_object_get(r->meta, "collate"));
	const char *ctype = json_string_value(json_object_get(r->meta, "ctype"));
	char *q = pglogical_quote_ident(r->dbname), *l_enc = NULL, *l_coll = NULL, *l_ctype = NULL;
	Buf sql = PV_BUF_INIT;
	int rc;

	if (strcmp(r->dbname, "template0") == 0 || strcmp(r->dbname, "template1") == 0)
	{
		rc = pv_error_set(PV_EUSAGE, "drills of a backup of '%s' are not supported", r->dbname);
		goto done;
	}
	scratch_conn(&r->scratch, &co, "template1");
	if ((rc = pgconn_connect(&c, &co)) < 0)
		goto done;
	PQsetNoticeProcessor(c, notice_ignore, NULL);
	/* "postgres" exists in a new cluster: replace it, so it gets the source's encoding and locale. */
	buf_printf(&sql, "DROP DATABASE IF EXISTS %s", q);
	if ((rc = pgconn_exec(c, buf_cstr(&sql))) < 0)
		goto done;
	l_enc = PQescapeLiteral(c, enc ? enc : "UTF8", strlen(enc ? enc : "UTF8"));
	if (coll && ctype)
	{
		l_coll = PQescapeLiteral(c, coll, strlen(coll));
		l_ctype = PQescapeLiteral(c, ctype, strlen(ctype));
		buf_reset(&sql);
		buf_printf(&sql, "CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s", q, l_enc,
				   l_coll, l_ctype);
		if (pgconn_exec(c, buf_cstr(&sql)) == 0)
			goto done;
		json_array_append_new(warnings, json_sprintf("the source's locale (%s) cannot be used here (%s): "
													 "restored with locale C", coll, pv_error_msg()));
		pv_log_warn("drill: locale '%s' is not available here; the database uses locale C", coll);
		pv_error_clear();
	}
	buf_reset(&sql);
	buf_printf(&sql, "CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE 'C' LC_CTYPE 'C'", q, l_enc);
	rc = pgconn_exec(c, buf_cstr(&sql));
done:
	PQfreemem(l_enc);
	PQfreemem(l_coll);
	PQfreemem(l_ctype);
	PQfinish(c);
	buf_free(&sql);
	pv_free(q);
	return rc;
}

/* ---- checks: tables ---- */

typedef struct TableWork
{
	DrillRun *r;
	atomic_size_t next;
} TableWork;

static void
table_read(PGconn *c, DrillTable *t)
{
	Buf sql = PV_BUF_INIT;
	PGresult *res;
	uint64_t rows = 0, fp = 0;
	char line[512];

	if (t->filter != NULL)		/* CREATE EXTENSION made the other rows: the backup has only these */
		buf_printf(&sql, "COPY (SELECT %s FROM %s %s) TO STDOUT", t->cols, t->qname, t->filter);
	else
		buf_printf(&sql, t->cols[0] ? "COPY %s (%s) TO STDOUT" : "COPY %s TO STDOUT", t->qname, t->cols);
	res = PQexec(c, buf_cstr(&sql));
	buf_free(&sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		t->error = pv_strdup(msg ? msg : pgconn_error_line(c, line, sizeof(line)));
		PQclear(res);
		return;
	}
	PQclear(res);
	for (;;)
	{
		char *row = NULL;
		int n = PQgetCopyData(c, &row, 0);

		if (n == -1)
			break;
		if (n < 0)
		{
			t->error = pv_strdup(pgconn_error_line(c, line, sizeof(line)));
			return;
		}
		fp = pgfp_add_line(fp, row, (size_t) n);
		rows++;
		PQfreemem(row);
	}
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		t->error = pv_strdup(msg ? msg : pgconn_error_line(c, line, sizeof(line)));
	}
	PQclear(res);
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	t->got_rows = rows;
	t->got_fp = fp;
}

static void *
table_worker(void *arg)
{
	TableWork *w = arg;
	DrillRun *r = w->r;
	PGconn *c = NULL;
	size_t i;

	while ((i = atomic_fetch_add(&w->next, 1)) < r->cat.ntables)
	{
		DrillTable *t = &r->cat.tables[i];

		if (c == NULL || PQstatus(c) != CONNECTION_OK)
		{
			PQfinish(c);
			c = NULL;
			if (pgconn_connect(&c, &r->conn) < 0 || pglogical_session_setup(c, r->encoding) < 0)
			{
				t->error = pv_strdup(pv_error_msg());
				pv_error_clear();
				PQfinish(c);
				c = NULL;
				continue;
			}
		}
		table_read(c, t);
	}
	PQfinish(c);
	return NULL;
}

static void
check_tables(DrillRun *r, int jobs)
{
	TableWork w = {.r = r};
	pthread_t th[64];
	int n = jobs < 1 ? 1 : jobs > 64 ? 64 : jobs, started = 0;
	size_t bad = 0;
	uint64_t rows = 0;
	json_t *d;

	atomic_init(&w.next, 0);
	if ((size_t) n > r->cat.ntables)
		n = r->cat.ntables ? (int) r->cat.ntables : 1;
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[started], NULL, table_worker, &w) == 0)
			started++;
	if (started == 0)
		table_worker(&w);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < r->cat.ntables; i++)
	{
		const DrillTable *t = &r->cat.tables[i];

		rows += t->got_rows;
		bad += t->error != NULL || t->got_rows != t->rows || t->got_fp != t->fp;
	}
	if (bad == 0)
		d = check_add(r, "tables", "ok", "%zu tables, %llu rows: row counts and fingerprints match the backup",
					  r->cat.ntables, (unsigned long long) rows);
	else
		d = check_add(r, "tables", "failed", "%zu of %zu tables differ from the backup", bad, r->cat.ntables);
	json_object_set_new(d, "tables", json_integer((json_int_t) r->cat.ntables));
	json_object_set_new(d, "rows", json_integer((json_int_t) rows));
	for (size_t i = 0; i < r->cat.ntables; i++)
	{
		const DrillTable *t = &r->cat.tables[i];
		char a[17], b[17];

		if (t->error != NULL)
			problem_add(d, "%s cannot be read: %s", t->label, t->error);
		else if (t->got_rows != t->rows)
			problem_add(d, "%s has %llu rows, the backup %llu", t->label, (unsigned long long) t->got_rows,
						(unsigned long long) t->rows);
		else if (t->got_fp != t->fp)
		{
			pgfp_format(a, t->got_fp);
			pgfp_format(b, t->fp);
			problem_add(d, "%s has %llu rows as it should, but their contents differ (fingerprint %s, the "
						"backup %s)", t->label, (unsigned long long) t->rows, a, b);
		}
	}
}

/* ---- checks: the rest, on one connection to the restored database ---- */

static void
check_sequences(DrillRun *r, PGconn *c)
{
	size_t bad = 0;
	json_t *d = json_object();

	for (size_t i = 0; i < r->cat.nseqs; i++)
	{
		const DrillSeq *s = &r->cat.seqs[i];
		char *q = pglogical_qualify(s->schema, s->name);
		char *sql = pv_asprintf("SELECT last_value::text, is_called FROM %s", q);
		PGresult *res = NULL;

		if (pgconn_query(&res, c, 2, sql, 0, NULL) < 0 || PQntuples(res) != 1)
		{
			problem_add(d, "sequence %s cannot be read: %s", q, pv_error_msg());
			pv_error_clear();
			bad++;
		}
		else if (strcmp(PQgetvalue(res, 0, 0), s->last_value) != 0 ||
				 (strcmp(PQgetvalue(res, 0, 1), "t") == 0) != s->is_called)
		{
			problem_add(d, "sequence %s is at %s (is_called %s), the backup at %s (is_called %s)", q,
						PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), s->last_value, s->is_called ? "t" : "f");
			bad++;
		}
		PQclear(res);
		pv_free(sql);
		pv_free(q);
	}
	if (bad == 0)
		json_object_update(check_add(r, "sequences", "ok", "%zu sequences as recorded", r->cat.nseqs), d);
	else
		json_object_update(check_add(r, "sequences", "failed", "%zu of %zu sequences differ", bad, r->cat.nseqs), d);
	json_decref(d);
}

static void
check_matviews(DrillRun *r, PGconn *c)
{
	size_t i, n = json_array_size(r->cat.matviews), bad = 0;
	json_t *mv, *d = json_object();

	json_array_foreach(r->cat.matviews, i, mv)
	{
		const char *p[2] = {json_string_value(json_object_get(mv, "schema")),
			json_string_value(json_object_get(mv, "name"))};
		char *v = NULL;

		if (!json_is_true(json_object_get(mv, "populated")))
			continue;
		if (pgconn_query_value(&v, c, "SELECT c.relispopulated::text FROM pg_catalog.pg_class c JOIN "
							   "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND "
							   "c.relname = $2", 2, p) < 0 || v == NULL || strcmp(v, "true") != 0)
		{
			problem_add(d, "materialized view %s.%s is %s", p[0], p[1], v ? "not populated" : "missing");
			pv_error_clear();
			bad++;
		}
		pv_free(v);
	}
	if (bad == 0)
		json_object_update(check_add(r, "matviews", "ok", "%zu materialized views as recorded", n), d);
	else
		json_object_update(check_add(r, "matviews", "failed", "%zu materialized views are not as recorded", bad), d);
	json_decref(d);
}

static void
check_large_objects(DrillRun *r, PGconn *c)
{
	char *v = NULL;
	int64_t want = r->cat.large_objects < 0 ? 0 : r->cat.large_objects;

	if (pgconn_query_value(&v, c, "SELECT count(*)::text FROM pg_catalog.pg_largeobject_metadata", 0, NULL) < 0)
	{
		check_add(r, "large_objects", "failed", "cannot count large objects: %s", pv_error_msg());
		pv_error_clear();
	}
	else if (v == NULL || strtoll(v, NULL, 10) != want)
		check_add(r, "large_objects", "failed", "%s large objects, the backup has %lld", v ? v : "?",
				  (long long) want);
	else
		check_add(r, "large_objects", "ok", "%lld large objects as recorded", (long long) want);
	pv_free(v);
}

static void
check_indexes(DrillRun *r, PGconn *c)
{
	PGresult *res = NULL;
	json_t *d = json_object();
	size_t bad = 0, named = 0;

	if (pgconn_query(&res, c, 2, "SELECT format('%s', i.indexrelid::pg_catalog.regclass), "
					 "format('%s', i.indrelid::pg_catalog.regclass) FROM pg_catalog.pg_index i "
					 "WHERE NOT (i.indisvalid AND i.indisready AND i.indislive) ORDER BY 1", 0, NULL) < 0)
	{
		problem_add(d, "cannot list indexes: %s", pv_error_msg());
		pv_error_clear();
		bad++;
	}
	else
		for (int i = 0; i < PQntuples(res); i++, bad++)
			problem_add(d, "index %s of %s is not valid", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	/* Every index the backup's catalog names must exist (primary keys, unique constraints, ...). */
	for (size_t t = 0; t < r->cat.ntables; t++)
	{
		const DrillTable *tb = &r->cat.tables[t];
		size_t k;
		json_t *ix;

		json_array_foreach(tb->indexes, k, ix)
		{
			const char *p[2] = {tb->schema, json_string_value(ix)};
			char *v = NULL;

			if (p[1] == NULL)
				continue;
			named++;
			if (pgconn_query_value(&v, c, "SELECT count(*)::text FROM pg_catalog.pg_class c JOIN "
								   "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
								   "AND c.relname = $2 AND c.relkind IN ('i', 'I')", 2, p) < 0 ||
				v == NULL || strcmp(v, "1") != 0)
			{
				problem_add(d, "index %s of table %s is missing", p[1], tb->label);
				pv_error_clear();
				bad++;
			}
			pv_free(v);
		}
	}
	json_object_set_new(d, "recorded", json_integer((json_int_t) named));
	if (bad == 0)
		json_object_update(check_add(r, "indexes", "ok", "every index is valid%s",
									 named ? ", every recorded index exists" : ""), d);
	else
		json_object_update(check_add(r, "indexes", "failed", "%zu index problems", bad), d);
	json_decref(d);
}

/*
 * One anti-join per foreign key, built on the server from the catalog: the
 * referencing columns (all non-null for MATCH SIMPLE, any non-null for MATCH
 * FULL) must match a referenced row with the constraint's own equality
 * operators.  ONLY unless the table is partitioned (a partitioned table's
 * constraint covers its partitions).
 */
static const char fk_sql[] =
	"SELECT format('%s', c.conrelid::pg_catalog.regclass), quote_ident(c.conname), c.convalidated::text, "
	"  format('SELECT count(*) FROM %s %s AS c WHERE (%s) AND NOT EXISTS (SELECT 1 FROM %s %s AS p WHERE %s)', "
	"    CASE WHEN r.relkind = 'p' THEN '' ELSE 'ONLY' END, c.conrelid::pg_catalog.regclass, "
	"    (SELECT string_agg(format('c.%I IS NOT NULL', a.attname), "
	"            CASE WHEN c.confmatchtype = 'f' THEN ' OR ' ELSE ' AND ' END ORDER BY k.i) "
	"       FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, i) "
	"       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum), "
	"    CASE WHEN fr.relkind = 'p' THEN '' ELSE 'ONLY' END, c.confrelid::pg_catalog.regclass, "
	"    (SELECT string_agg(format('p.%I OPERATOR(%I.%s) c.%I', pa.attname, ons.nspname, o.oprname, a.attname), "
	"            ' AND ' ORDER BY k.i) "
	"       FROM unnest(c.conkey, c.confkey, c.conpfeqop) WITH ORDINALITY AS k(attnum, fattnum, op, i) "
	"       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
	"       JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.fattnum "
	"       JOIN pg_catalog.pg_operator o ON o.oid = k.op "
	"       JOIN pg_catalog.pg_namespace ons ON ons.oid = o.oprnamespace)) "
	"FROM pg_catalog.pg_constraint c "
	"JOIN pg_catalog.pg_class r ON r.oid = c.conrelid JOIN pg_catalog.pg_class fr ON fr.oid = c.confrelid "
	"WHERE c.contype = 'f' AND c.conparentid = 0 ORDER BY 1, 2";

static void
check_foreign_keys(DrillRun *r, PGconn *c)
{
	PGresult *res = NULL;
	json_t *d = json_object();
	size_t bad = 0, warn = 0;
	int n = 0;

	if (pgconn_query(&res, c, 4, fk_sql, 0, NULL) < 0)
	{
		problem_add(d, "cannot list foreign keys: %s", pv_error_msg());
		pv_error_clear();
		bad++;
	}
	else
		n = PQntuples(res);
	for (int i = 0; i < n; i++)
	{
		const char *tbl = PQgetvalue(res, i, 0), *name = PQgetvalue(res, i, 1);
		bool valid = strcmp(PQgetvalue(res, i, 2), "true") == 0;
		char *v = NULL;

		if (pgconn_query_value(&v, c, PQgetvalue(res, i, 3), 0, NULL) < 0)
		{
			problem_add(d, "foreign key %s of %s cannot be checked: %s", name, tbl, pv_error_msg());
			pv_error_clear();
			bad++;
		}
		else if (v != NULL && strcmp(v, "0") != 0)
		{
			/* A NOT VALID constraint never promised anything about old rows (not_valid says whether it was). */
			problem_add(d, "%s rows of %s reference no row (foreign key %s%s)", v, tbl, name,
						valid ? "" : ", NOT VALID");
			if (valid)
				bad++;
			else
				warn++;
		}
		pv_free(v);
	}
	PQclear(res);
	json_object_set_new(d, "constraints", json_integer(n));
	if (bad > 0)
		json_object_update(check_add(r, "foreign_keys", "failed", "%zu of %d foreign keys have orphans", bad, n), d);
	else if (warn > 0)
		json_object_update(check_add(r, "foreign_keys", "warning", "%zu NOT VALID foreign keys have orphans "
									 "(as they may)", warn), d);
	else
		json_object_update(check_add(r, "foreign_keys", "ok", "%d foreign keys, no orphans", n), d);
	json_decref(d);
}

/* Names of the constraints the backup's schema adds NOT VALID, from pg_restore's SQL. */
static int
dump_not_valid_names(DrillRun *r, json_t *names)
{
	const char *item = json_string_value(json_object_get(r->meta, "schema_item"));
	char *schema_file = pv_fs_path_join(r->scratch.dir, "schema.dump");
	char *sql_file = pv_fs_path_join(r->scratch.dir, "schema.sql");
	char *pg_restore = pv_fs_path_join(r->scratch.bindir, "pg_restore");
	Buf b = PV_BUF_INIT;
	int rc;

	if ((rc = pglogical_item_read_all(r->o->repo, r->m, item ? item : "schema", &b)) < 0 ||
		(rc = pv_fs_write_atomic(schema_file, b.data, b.len, 0644)) < 0)
		goto done;
	{
		char *f = pv_asprintf("--file=%s", sql_file);
		char *argv[] = {pg_restore, (char *) "--schema-only", f, schema_file, NULL};

		/* pg_restore runs as us: it only reads schema_file and writes sql_file. */
		rc = spawn_wait(argv, NULL, r->scratch.dir, r->scratch.cmdlog);
		pv_free(f);
		if (rc < 0)
			goto done;
	}
	buf_reset(&b);
	if ((rc = pv_fs_read_file(sql_file, &b)) < 0)
		goto done;
	for (char *p = (char *) b.data, *nl; p && *p; p = nl ? nl + 1 : NULL)
	{
		static const char add[] = "    ADD CONSTRAINT ";
		size_t len;

		nl = strchr(p, '\n');
		len = nl ? (size_t) (nl - p) : strlen(p);
		if (len > sizeof(add) + 11 && strncmp(p, add, sizeof(add) - 1) == 0 &&
			strncmp(p + len - 11, " NOT VALID;", 11) == 0)
		{
			/* the name: a quoted identifier ("" inside) or a bare word */
			const char *s = p + sizeof(add) - 1, *e = s;

			if (*e == '"')
				for (e++; e < p + len && !(*e == '"' && e[1] != '"'); e += (*e == '"') ? 2 : 1)
					;
			else
				while (e < p + len && *e != ' ')
					e++;
			if (*s == '"' && e < p + len)
				e++;
			json_array_append_new(names, json_stringn(s, (size_t) (e - s)));
		}
	}
done:
	buf_free(&b);
	pv_free(schema_file);
	pv_free(sql_file);
	pv_free(pg_restore);
	return rc;
}

static void
check_not_valid(DrillRun *r, PGconn *c)
{
	PGresult *res = NULL;
	json_t *d = json_object(), *dump = json_array();
	size_t bad = 0;
	int n = 0;

	if (pgconn_query(&res, c, 2, "SELECT format('%s', conrelid::pg_catalog.regclass), quote_ident(conname) "
					 "FROM pg_catalog.pg_constraint WHERE NOT convalidated AND conparentid = 0 ORDER BY 1, 2",
					 0, NULL) < 0)
	{
		problem_add(d, "cannot list constraints: %s", pv_error_msg());
		pv_error_clear();
		bad++;
	}
	else if ((n = PQntuples(res)) > 0 && dump_not_valid_names(r, dump) < 0)
	{
		problem_add(d, "cannot read the backup's schema: %s", pv_error_msg());
		pv_error_clear();
		bad++;
		n = 0;
	}
	for (int i = 0; i < n; i++)
	{
		const char *name = PQgetvalue(res, i, 1);
		bool in_dump = false;
		size_t k;
		json_t *v;

		json_array_foreach(dump, k, v)
			in_dump |= strcmp(json_string_value(v), name) == 0;
		if (!in_dump)
		{
			problem_add(d, "constraint %s of %s is NOT VALID, but was valid in the backup", name,
						PQgetvalue(res, i, 0));
			bad++;
		}
	}
	PQclear(res);
	json_object_set_new(d, "not_valid", json_integer(n));
	if (bad > 0)
		json_object_update(check_add(r, "not_valid", "failed", "%zu constraints are NOT VALID that were valid",
									 bad), d);
	else if (n > 0)
		json_object_update(check_add(r, "not_valid", "ok", "%d constraints are NOT VALID, as in the backup", n), d);
	else
		json_object_update(check_add(r, "not_valid", "ok", "no constraint is NOT VALID"), d);
	json_decref(d);
	json_decref(dump);
}

static void
check_user(DrillRun *r, PGconn *c, const UserCheck *uc, int n)
{
	char t[PV_TIME_FORMAT_MAX], name[32];
	char *time_lit, *id_lit;

	pv_time_format_utc(t, sizeof(t), repo_manifest_start_time(r->m));
	time_lit = pv_asprintf("'%s'::timestamptz", t);
	id_lit = pv_asprintf("'%s'", repo_manifest_id(r->m));
	for (int i = 0; i < n; i++)
	{
		char *q = user_query_expand(uc[i].query, time_lit, id_lit);
		PGresult *res = NULL;
		json_t *d;

		snprintf(name, sizeof(name), "sql:%d", uc[i].line);
		if (pgconn_query(&res, c, 1, q, 0, NULL) < 0 || PQntuples(res) != 1)
		{
			d = check_add(r, name, "failed", "%s", res ? "the query did not return exactly one row" : pv_error_msg());
			pv_error_clear();
		}
		else
		{
			const char *got = PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0);

			if (strcmp(got, uc[i].expected) == 0)
				d = check_add(r, name, "ok", "%s", got);
			else
				d = check_add(r, name, "failed", "got '%s', expected '%s'", got, uc[i].expected);
		}
		json_object_set_new(d, "query", json_string(uc[i].query));
		json_object_set_new(d, "expected", json_string(uc[i].expected));
		PQclear(res);
		pv_free(q);
	}
	pv_free(time_lit);
	pv_free(id_lit);
}

/* ---- drill_run ---- */

static json_t *
report_new(DrillRun *r, PvTime started)
{
	char t[PV_TIME_FORMAT_MAX];
	const json_t *totals = repo_manifest_totals(r->m);
	json_t *b = json_object();
	bool logical = strcmp(repo_manifest_kind(r->m), "logical") == 0;

	json_object_set_new(b, "id", json_string(repo_manifest_id(r->m)));
	json_object_set_new(b, "kind", json_string(repo_manifest_kind(r->m)));
	json_object_set_new(b, "source", json_string(repo_manifest_source(r->m)));
	json_object_set_new(b, "database", logical && r->dbname ? json_string(r->dbname) : json_null());
	if (logical && json_is_true(json_object_get(r->meta, "all")))
	{
		size_t i;
		json_t *d, *names = json_array();

		json_array_foreach(json_object_get(r->meta, "databases"), i, d)
			json_array_append(names, json_object_get(d, "database"));
		json_object_set_new(b, "database", json_string("*"));
		json_object_set_new(b, "databases", names);
	}
	json_object_set_new(b, "start_time", json_string(pv_time_format_utc(t, sizeof(t),
																		 repo_manifest_start_time(r->m))));
	json_object_set_new(b, "size", json_incref(json_object_get(totals, "logical_bytes")));
	if (json_object_get(b, "size") == NULL)
		json_object_set_new(b, "size", json_null());
	return json_pack("{s:o, s:s, s:s, s:s, s:s}", "backup", b, "started",
					 pv_time_format_utc(t, sizeof(t), started), "host", repo_hostname(r->o->repo),
					 "tool_version", PV_VERSION, "target", "scratch cluster");
}

static int
run_checks(DrillRun *r, const UserCheck *uc, int nuc)
{
	PGconn *c = NULL;
	int rc;

	check_tables(r, r->o->jobs);
	if ((rc = pgconn_connect(&c, &r->conn)) < 0)
	{
		check_add(r, "connect", "failed", "cannot connect to the restored database: %s", pv_error_msg());
		pv_error_clear();
		return PV_OK;
	}
	PQsetNoticeProcessor(c, notice_ignore, NULL);
	/* Qualified names in every regclass output, whatever the restored search_path. */
	if ((rc = pgconn_exec(c, "SET search_path = pg_catalog; SET statement_timeout = 0")) < 0)
		goto done;
	check_sequences(r, c);
	check_matviews(r, c);
	check_large_objects(r, c);
	check_indexes(r, c);
	check_foreign_keys(r, c);
	check_not_valid(r, c);
	if (nuc > 0)
	{
		/* the user's queries see the database as its applications do */
		if ((rc = pgconn_exec(c, "RESET search_path")) < 0)
			goto done;
		check_user(r, c, uc, nuc);
	}
done:
	if (rc < 0)
	{
		check_add(r, "connect", "failed", "%s", pv_error_msg());
		pv_error_clear();
	}
	PQfinish(c);
	return PV_OK;
}

/*
 * The fault hook runs in the restored database; with an --all backup, a
 * first line "\connect NAME" (or "\c NAME", as in psql) picks the
 * database, else it runs in the first one.
 */
static int
fault_inject(DrillRun *r)
{
	PGconn *c = NULL;
	PgConnOpts co = r->conn;
	const char *sql = r->o->fault_sql;
	char *db = NULL;
	int rc;

	if (strncmp(sql, "\\connect ", 9) == 0 || strncmp(sql, "\\c ", 3) == 0)
	{
		const char *p = sql + (sql[2] == ' ' ? 3 : 9);
		size_t len = strcspn(p, "\n");

		db = pv_strndup(p, len);
		sql = p + len;
		scratch_conn(&r->scratch, &co, db);
	}
	pv_log_warn("drill: running the fault hook in database '%s' before the checks", co.dbname);
	/* pgconn_connect empties search_path; the hook, like the user's checks, sees the usual one */
	if ((rc = pgconn_connect(&c, &co)) == 0 && (rc = pgconn_exec(c, "RESET search_path")) == 0)
		rc = pgconn_exec(c, sql);
	PQfinish(c);
	pv_free(db);
	return rc < 0 ? pv_error_prefix(rc, "fault hook") : rc;
}

void
drill_result_clear(DrillResult *r)
{
	json_decref(r->report);
	memset(r, 0, sizeof(*r));
}

/* Times of the phases, in milliseconds (0: the phase did not run). */
typedef struct DrillTimes
{
	int64_t setup, restore, recovery, checks;
} DrillTimes;

/* ---- logical ---- */

static int
drill_logical(DrillRun *r, const char *backup_id, const UserCheck *uc, int nuc, json_t *warnings, DrillTimes *tm,
			  int64_t t0)
{
	const DrillOpts *o = r->o;
	PgLogicalRestoreResult rres;
	const char *db;
	int rc;

	db = json_string_value(json_object_get(r->meta, "database"));
	r->dbname = pv_strdup(db && db[0] ? db : "drill");
	r->encoding = json_string_value(json_object_get(r->meta, "encoding"));
	if (r->encoding == NULL)
		r->encoding = "UTF8";
	pv_log_info("drill: backup %s (logical, source '%s', database '%s')", backup_id,
				repo_manifest_source(r->m), r->dbname);

	/* The catalog is read before anything starts: a backup whose catalog is damaged fails right here. */
	if ((rc = pglogical_catalog_foreach(o->repo, r->m, catalog_entry, &r->cat)) < 0)
	{
		check_add(r, "restore", "failed", "the backup's catalog cannot be read: %s", pv_error_msg());
		pv_error_clear();
		return PV_OK;
	}
	if (r->cat.error != NULL)
		json_array_append_new(warnings, json_string(r->cat.error));
	if ((rc = scratch_create(&r->scratch, o,
							 (int) (json_integer_value(json_object_get(r->meta, "server_version_num")) / 10000))) < 0 ||
		(rc = target_create(r, warnings)) < 0)
		return rc;
	tm->setup = pv_time_monotonic_ms() - t0;
	scratch_conn(&r->scratch, &r->conn, r->dbname);
	{
		PgLogicalRestoreOpts ro = {.bindir = r->scratch.bindir, .repo = o->repo, .backup = backup_id,
			.target_db = r->dbname, .no_owner = true, .no_privileges = true, .jobs = o->jobs,
			/* a scratch cluster has no tablespaces, nor the roles policies and user mappings name */
			.no_tablespaces = true, .create_missing_roles = true};
		int64_t t1 = pv_time_monotonic_ms();

		scratch_conn(&r->scratch, &ro.conn, "template1");
		rc = pglogical_restore(&rres, &ro);
		tm->restore = pv_time_monotonic_ms() - t1;
		if (rc < 0)
		{
			json_t *d = check_add(r, "restore", "failed", "%s", pv_error_msg());

			json_object_set_new(d, "error", json_string(pv_error_name(rc)));
			pv_error_clear();
			return PV_OK;
		}
		json_object_set_new(check_add(r, "restore", "ok", "%llu tables, %llu rows, %llu sequences, %llu large "
									  "objects restored", (unsigned long long) rres.tables,
									  (unsigned long long) rres.rows, (unsigned long long) rres.sequences,
									  (unsigned long long) rres.large_objects),
							"bytes", json_integer((json_int_t) rres.bytes));
	}
	if (o->fault_sql != NULL && o->fault_sql[0] != '\0' && (rc = fault_inject(r)) < 0)
		return rc;
	{
		int64_t t1 = pv_time_monotonic_ms();

		run_checks(r, uc, nuc);
		tm->checks = pv_time_monotonic_ms() - t1;
	}
	return PV_OK;
}

/* ---- logical, every database of an --all backup ---- */

/* Forget one database's catalog before reading the next one's. */
static void
catalog_reset(DrillCatalog *c)
{
	catalog_free(c);
	c->matviews = json_array();
	c->large_objects = -1;
}

/* The globals: every role the backup names exists in the scratch cluster. */
static void
check_roles(DrillRun *r, const PgLogicalRestoreResult *rres)
{
	const json_t *names = json_object_get(json_object_get(r->meta, "globals"), "roles");
	PGconn *c = NULL;
	PgConnOpts co;
	json_t *d = json_object(), *v;
	size_t i, bad = 0;

	scratch_conn(&r->scratch, &co, "postgres");
	if (pgconn_connect(&c, &co) < 0)
	{
		problem_add(d, "cannot connect: %s", pv_error_msg());
		pv_error_clear();
		bad++;
	}
	json_array_foreach(names, i, v)
	{
		const char *p[1] = {json_string_value(v)};
		char *n = NULL;

		if (c == NULL || p[0] == NULL)
			continue;
		if (pgconn_query_value(&n, c, "SELECT count(*)::text FROM pg_catalog.pg_roles WHERE rolname = $1", 1,
							   p) < 0 || n == NULL || strcmp(n, "1") != 0)
		{
			problem_add(d, "role %s is missing", p[0]);
			pv_error_clear();
			bad++;
		}
		pv_free(n);
	}
	PQfinish(c);
	json_object_set_new(d, "roles", json_integer((json_int_t) json_array_size(names)));
	json_object_set_new(d, "created", json_integer((json_int_t) rres->roles_created));
	json_object_set_new(d, "tablespaces_skipped", json_integer((json_int_t) rres->tablespaces_skipped));
	if (bad == 0)
		json_object_update(check_add(r, "globals", "ok", "%zu roles as recorded (%llu created, the others existed)",
									 json_array_size(names), (unsigned long long) rres->roles_created), d);
	else
		json_object_update(check_add(r, "globals", "failed", "%zu of %zu roles are missing", bad,
									 json_array_size(names)), d);
	json_decref(d);
}

/* The user's checks of an --all drill: in database postgres (as physical drills), the usual search_path. */
static void
check_user_postgres(DrillRun *r, const UserCheck *uc, int nuc)
{
	PGconn *c = NULL;
	PgConnOpts co;

	scratch_conn(&r->scratch, &co, "postgres");
	if (pgconn_connect(&c, &co) == 0 && pgconn_exec(c, "RESET search_path") == 0)
		check_user(r, c, uc, nuc);
	else
	{
		check_add(r, "sql", "failed", "%s", pv_error_msg());
		pv_error_clear();
	}
	PQfinish(c);
}

/*
 * An --all backup: every database is created in the scratch cluster first
 * (the source's encoding and locale, or C: target_create), then the whole
 * backup is restored as `pgvault restore` does it (globals, then every
 * database, owners and grants kept since the roles come along; tablespaces
 * are not made: their directories belong to the source's host), then each
 * database is checked as a one-database drill checks it, its checks named
 * "DATABASE:CHECK".
 */
static int
drill_logical_all(DrillRun *r, const char *backup_id, const UserCheck *uc, int nuc, json_t *warnings,
				  DrillTimes *tm, int64_t t0)
{
	const DrillOpts *o = r->o;
	const json_t *all_meta = r->meta, *dbs = json_object_get(all_meta, "databases"), *dm;
	PgLogicalRestoreResult rres;
	size_t i;
	int rc = PV_OK;

	memset(&rres, 0, sizeof(rres));
	pv_log_info("drill: backup %s (logical, source '%s', %zu databases and the globals)", backup_id,
				repo_manifest_source(r->m), json_array_size(dbs));
	if (json_array_size(dbs) == 0)
	{
		check_add(r, "restore", "failed", "the backup lists no database");
		return PV_OK;
	}
	/* Every catalog is read before anything starts: a damaged one fails right here. */
	json_array_foreach(dbs, i, dm)
	{
		const char *name = json_string_value(json_object_get(dm, "database"));
		const char *item = json_string_value(json_object_get(dm, "catalog_item"));

		catalog_reset(&r->cat);
		if (name == NULL || item == NULL ||
			pglogical_catalog_foreach_item(o->repo, r->m, item, catalog_entry, &r->cat) < 0)
		{
			check_add(r, "restore", "failed", "the catalog of database '%s' cannot be read: %s",
					  name ? name : "?", name && item ? pv_error_msg() : "the backup does not name it");
			pv_error_clear();
			return PV_OK;
		}
		if (r->cat.error != NULL)
			json_array_append_new(warnings, json_sprintf("database '%s': %s", name, r->cat.error));
	}
	if ((rc = scratch_create(&r->scratch, o,
							 (int) (json_integer_value(json_object_get(all_meta, "server_version_num")) / 10000))) < 0)
		return rc;
	json_array_foreach(dbs, i, dm)
	{
		const char *name = json_string_value(json_object_get(dm, "database"));

		if (strcmp(name, "template1") == 0)
			continue;			/* it exists, empty: the restore goes into it */
		pv_free(r->dbname);
		r->dbname = pv_strdup(name);
		r->meta = dm;
		rc = target_create(r, warnings);
		r->meta = all_meta;
		if (rc < 0)
			return pv_error_prefix(rc, "database '%s'", name);
	}
	tm->setup = pv_time_monotonic_ms() - t0;
	{
		PgLogicalRestoreOpts ro = {.bindir = r->scratch.bindir, .repo = o->repo, .backup = backup_id,
			.no_tablespaces = true, .jobs = o->jobs};
		int64_t t1 = pv_time_monotonic_ms();

		scratch_conn(&r->scratch, &ro.conn, "postgres");
		rc = pglogical_restore(&rres, &ro);
		tm->restore = pv_time_monotonic_ms() - t1;
		if (rc < 0)
		{
			json_t *d = check_add(r, "restore", "failed", "%s", pv_error_msg());

			json_object_set_new(d, "error", json_string(pv_error_name(rc)));
			pv_error_clear();
			pglogical_restore_result_clear(&rres);
			return PV_OK;
		}
		json_object_set_new(check_add(r, "restore", "ok", "%llu databases: %llu tables, %llu rows, %llu "
									  "sequences, %llu large objects restored",
									  (unsigned long long) rres.databases, (unsigned long long) rres.tables,
									  (unsigned long long) rres.rows, (unsigned long long) rres.sequences,
									  (unsigned long long) rres.large_objects),
							"bytes", json_integer((json_int_t) rres.bytes));
	}
	check_roles(r, &rres);
	pglogical_restore_result_clear(&rres);
	if (o->fault_sql != NULL && o->fault_sql[0] != '\0')
	{
		scratch_conn(&r->scratch, &r->conn,
					 json_string_value(json_object_get(json_array_get(dbs, 0), "database")));
		if ((rc = fault_inject(r)) < 0)
			return rc;
	}
	{
		int64_t t1 = pv_time_monotonic_ms();

		json_array_foreach(dbs, i, dm)
		{
			const char *name = json_string_value(json_object_get(dm, "database"));
			const char *enc = json_string_value(json_object_get(dm, "encoding"));

			catalog_reset(&r->cat);
			if (pglogical_catalog_foreach_item(o->repo, r->m, json_string_value(json_object_get(dm, "catalog_item")),
											   catalog_entry, &r->cat) < 0)
			{
				r->scope = name;
				check_add(r, "catalog", "failed", "%s", pv_error_msg());
				pv_error_clear();
				r->scope = NULL;
				continue;
			}
			pv_free(r->dbname);
			r->dbname = pv_strdup(name);
			r->encoding = enc ? enc : "UTF8";
			r->meta = dm;
			r->scope = name;
			scratch_conn(&r->scratch, &r->conn, r->dbname);
			run_checks(r, NULL, 0);
			r->scope = NULL;
			r->meta = all_meta;
		}
		pv_free(r->dbname);
		r->dbname = pv_strdup("*");
		if (nuc > 0)
			check_user_postgres(r, uc, nuc);
		tm->checks = pv_time_monotonic_ms() - t1;
	}
	return PV_OK;
}

/* ---- physical ---- */

/*
 * The WAL from the backup's start to its end (what recovery to consistency
 * needs), fetched and checked into dir, so the scratch server's
 * restore_command is a plain copy that needs no access to the repository.
 */
static int
physical_wal_fetch(DrillRun *r, const char *dir, size_t *out_n)
{
	const char *start = json_string_value(json_object_get(r->meta, "start_wal"));
	const char *stop = json_string_value(json_object_get(r->meta, "stop_wal"));
	const json_t *sz = json_object_get(r->meta, "wal_segment_size");
	const char *source = repo_manifest_source(r->m)[0] ? repo_manifest_source(r->m) : PGWAL_DEFAULT_SOURCE;
	uint64_t seg_size = json_is_integer(sz) ? (uint64_t) json_integer_value(sz) : 0, a, b;
	uint32_t tla, tlb;
	int rc;

	*out_n = 0;
	if (start == NULL || stop == NULL || seg_size == 0 || pgwal_segment_parse(&tla, &a, start, seg_size) < 0 ||
		pgwal_segment_parse(&tlb, &b, stop, seg_size) < 0 || tla != tlb || b < a)
		return pv_error_set(PV_ECORRUPT, "backup '%s' does not record a usable WAL range", repo_manifest_id(r->m));
	for (uint64_t segno = a; segno <= b; segno++)
	{
		char name[64], *dest;

		pgwal_segment_name(name, tla, segno, seg_size);
		dest = pv_fs_path_join(dir, name);
		rc = pgwal_get(r->o->repo, source, name, dest);
		pv_free(dest);
		if (rc < 0)
			return rc;
		(*out_n)++;
	}
	if (tla > 1)
	{
		/* the timeline's history, so recovery knows how it got there (absent: recovery says so) */
		char name[32], *dest;

		snprintf(name, sizeof(name), "%08X.history", tla);
		dest = pv_fs_path_join(dir, name);
		if (pgwal_get(r->o->repo, source, name, dest) < 0)
			pv_error_clear();
		pv_free(dest);
	}
	return PV_OK;
}

/*
 * Our settings, appended to postgresql.auto.conf (read last: they win over
 * whatever the source had there), and our own postgresql.conf, hba and
 * ident files in the scratch directory: the source's postgresql.conf is not
 * read at all, because it may set data_directory (a scratch server started
 * on the source's data directory is the one thing a drill must never do),
 * include files that are not here, or ask for more memory than we have.
 */
static int
physical_conf_write(Scratch *s, const char *waldir, char **out_config_file)
{
	char *auto_conf = pv_fs_path_join(s->datadir, "postgresql.auto.conf");
	char *conf = pv_fs_path_join(s->dir, "postgresql.conf");
	char *hba = pv_fs_path_join(s->dir, "pg_hba.conf");
	char *ident = pv_fs_path_join(s->dir, "pg_ident.conf");
	Buf b = PV_BUF_INIT, old = PV_BUF_INIT;
	int rc;

	buf_printf(&b,
			   "\n# pgvault drill: a scratch server (these lines win over everything above)\n"
			   "listen_addresses = ''\nport = %s\nunix_socket_directories = '%s'\n"
			   "unix_socket_permissions = 0700\nhba_file = '%s'\nident_file = '%s'\n"
			   "ssl = off\nshared_buffers = '128MB'\nhuge_pages = off\n"
			   "hot_standby = off\narchive_mode = off\nfsync = off\nsynchronous_commit = off\n"
			   "synchronous_standby_names = ''\nprimary_conninfo = ''\nlogging_collector = off\n"
			   "log_destination = 'stderr'\nlc_messages = 'C'\n"
			   "restore_command = 'cp \"%s/%%f\" \"%%p\"'\n",
			   s->port, s->sockdir, hba, ident, waldir);
	if ((rc = pv_fs_read_file(auto_conf, &old)) < 0 && rc != PV_ENOTFOUND)
		goto done;
	pv_error_clear();
	buf_append(&old, b.data, b.len);
	if ((rc = pv_fs_write_atomic(auto_conf, old.data, old.len, 0600)) < 0 ||
		(rc = pv_fs_write_atomic(conf, "# pgvault drill: see postgresql.auto.conf\n", 42, 0644)) < 0 ||
		(rc = pv_fs_write_atomic(hba, "local all all trust\n", 20, 0600)) < 0 ||
		(rc = pv_fs_write_atomic(ident, "", 0, 0600)) < 0)
		goto done;
	*out_config_file = conf;
	conf = NULL;
done:
	buf_free(&b);
	buf_free(&old);
	pv_free(auto_conf);
	pv_free(conf);
	pv_free(hba);
	pv_free(ident);
	return rc;
}

/* pg_amcheck over every database, when this installation has it (heap and B-tree checks). */
static void
check_amcheck(DrillRun *r)
{
	char *prog = pv_fs_path_join(r->scratch.bindir, "pg_amcheck");
	char *log = pv_fs_path_join(r->scratch.dir, "amcheck.log");
	char *h = pv_asprintf("--host=%s", r->scratch.sockdir), *p = pv_asprintf("--port=%s", r->scratch.port);
	char *argv[] = {prog, h, p, (char *) "--username=postgres", (char *) "--all", (char *) "--install-missing",
		(char *) "--no-strict-names", NULL};

	if (access(prog, X_OK) != 0)
		check_add(r, "amcheck", "skipped", "pg_amcheck is not installed in '%s'", r->scratch.bindir);
	else if (spawn_wait(argv, NULL, r->scratch.dir, log) < 0)
	{
		check_add(r, "amcheck", "failed", "%s", pv_error_msg());
		pv_error_clear();
	}
	else
		check_add(r, "amcheck", "ok", "pg_amcheck found no corruption in tables and B-tree indexes");
	pv_free(prog);
	pv_free(log);
	pv_free(h);
	pv_free(p);
}

/* Every database: it takes connections, its indexes are valid, its foreign keys have no orphans. */
static void
physical_checks(DrillRun *r, const UserCheck *uc, int nuc)
{
	PGconn *c = NULL;
	PGresult *res = NULL;
	PgConnOpts co;
	json_t *names = json_array(), *d;

	scratch_conn(&r->scratch, &co, "postgres");
	if (pgconn_connect(&c, &co) < 0 ||
		pgconn_query(&res, c, 1, "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND "
					 "datname <> 'template0' ORDER BY 1", 0, NULL) < 0)
	{
		check_add(r, "databases", "failed", "cannot list the databases: %s", pv_error_msg());
		pv_error_clear();
		goto done;
	}
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(names, json_string(PQgetvalue(res, i, 0)));
	d = check_add(r, "databases", "ok", "%d databases take connections", PQntuples(res));
	json_object_set(d, "databases", names);
	for (int i = 0; i < PQntuples(res); i++)
	{
		PGconn *dc = NULL;

		r->scope = PQgetvalue(res, i, 0);
		scratch_conn(&r->scratch, &co, r->scope);
		if (pgconn_connect(&dc, &co) < 0 ||
			pgconn_exec(dc, "SET search_path = pg_catalog; SET statement_timeout = 0") < 0)
		{
			check_add(r, "connect", "failed", "%s", pv_error_msg());
			pv_error_clear();
		}
		else
		{
			PQsetNoticeProcessor(dc, notice_ignore, NULL);
			check_indexes(r, dc);
			check_foreign_keys(r, dc);
		}
		PQfinish(dc);
	}
	r->scope = NULL;
	check_amcheck(r);
	if (nuc > 0)
	{
		/* the user's checks run in database postgres, with the usual search_path */
		if (pgconn_exec(c, "RESET search_path") == 0)
			check_user(r, c, uc, nuc);
		else
		{
			check_add(r, "sql", "failed", "%s", pv_error_msg());
			pv_error_clear();
		}
	}
done:
	r->scope = NULL;
	PQclear(res);
	PQfinish(c);
	json_decref(names);
}

/*
 * pg_ctl -w returns once recovery is consistent; without hot standby the
 * server takes connections only when recovery has ended and it promoted.
 */
static int
scratch_wait_promoted(Scratch *s, int timeout_secs)
{
	PgConnOpts co;
	int64_t deadline = pv_time_monotonic_ms() + (int64_t) timeout_secs * 1000;
	int rc;

	scratch_conn(s, &co, "postgres");
	for (;;)
	{
		PGconn *c = NULL;
		char *v = NULL;

		rc = pgconn_connect(&c, &co);
		if (rc == 0)
			rc = pgconn_query_value(&v, c, "SELECT pg_catalog.pg_is_in_recovery()::text", 0, NULL);
		PQfinish(c);
		if (rc == 0 && v != NULL && strcmp(v, "false") == 0)
		{
			pv_free(v);
			return PV_OK;
		}
		pv_free(v);
		if (kill((pid_t) scratch_pid, 0) != 0)
		{
			char tail[1001];

			server_log_tail(s, tail, sizeof(tail));
			return pv_error_set(PV_ERROR, "the scratch server stopped during recovery: %s", tail);
		}
		if (pv_time_monotonic_ms() > deadline)
			return pv_error_prefix(rc < 0 ? rc : PV_ERROR, "recovery did not end within %ds", timeout_secs);
		pv_error_clear();
		usleep(100 * 1000);
	}
}

static int
drill_physical(DrillRun *r, const char *backup_id, const UserCheck *uc, int nuc, json_t *warnings, DrillTimes *tm,
			   int64_t t0)
{
	const DrillOpts *o = r->o;
	PgPhysTarget target = {.kind = PGPHYS_TARGET_IMMEDIATE, .action = "promote"};
	PgPhysRestoreResult pres;
	char *waldir = NULL, *config_file = NULL, *extra = NULL;
	size_t nwal = 0;
	int64_t t1;
	int rc;

	(void) warnings;
	r->dbname = pv_strdup("postgres");
	r->encoding = "UTF8";
	pv_log_info("drill: backup %s (physical, source '%s')", backup_id, repo_manifest_source(r->m));
	if ((rc = scratch_prepare(&r->scratch, o,
							  (int) (json_integer_value(json_object_get(r->meta, "pg_version")) / 10000), true)) < 0)
		goto done;
	tm->setup = pv_time_monotonic_ms() - t0;

	/* restore: the files, then the WAL to consistency */
	t1 = pv_time_monotonic_ms();
	waldir = pv_fs_path_join(r->scratch.dir, "wal");
	if (mkdir(waldir, 0700) != 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot create '%s'", waldir);
		goto done;
	}
	rc = pgphys_restore(&pres, &(PgPhysRestoreOpts) {.repo = o->repo, .backup_id = backup_id,
						.pgdata = r->scratch.datadir, .jobs = o->jobs, .target = &target,
						.archive_get_command = "false", .archive_off = true, .progress_ms = -1});
	if (rc == 0)
		rc = physical_wal_fetch(r, waldir, &nwal);
	tm->restore = pv_time_monotonic_ms() - t1;
	if (rc < 0)
	{
		json_t *d = check_add(r, "restore", "failed", "%s", pv_error_msg());

		json_object_set_new(d, "error", json_string(pv_error_name(rc)));
		pv_error_clear();
		rc = PV_OK;
		goto done;
	}
	json_object_set_new(check_add(r, "restore", "ok", "%llu files (%llu bytes) and %zu WAL segments restored",
								  (unsigned long long) pres.files, (unsigned long long) pres.bytes, nwal),
						"bytes", json_integer((json_int_t) pres.bytes));
	if ((rc = physical_conf_write(&r->scratch, waldir, &config_file)) < 0 ||
		(rc = chown_tree(r->scratch.dir, r->scratch.run_as)) < 0)
		goto done;

	/* recovery: start, replay to the backup's end, promote (pg_ctl waits: hot_standby is off) */
	t1 = pv_time_monotonic_ms();
	extra = pv_asprintf("-c config_file='%s'", config_file);
	if ((rc = scratch_start(&r->scratch, extra, 3600)) == 0)
		rc = scratch_wait_promoted(&r->scratch, 3600);
	tm->recovery = pv_time_monotonic_ms() - t1;
	if (rc < 0)
	{
		check_add(r, "recovery", "failed", "%s", pv_error_msg());
		pv_error_clear();
		rc = PV_OK;
		goto done;
	}
	check_add(r, "recovery", "ok", "consistent and promoted after replaying the backup's WAL");
	scratch_conn(&r->scratch, &r->conn, "postgres");
	if (o->fault_sql != NULL && o->fault_sql[0] != '\0' && (rc = fault_inject(r)) < 0)
		goto done;
	t1 = pv_time_monotonic_ms();
	physical_checks(r, uc, nuc);
	tm->checks = pv_time_monotonic_ms() - t1;
done:
	pv_free(waldir);
	pv_free(config_file);
	pv_free(extra);
	return rc;
}

/* ---- drill_run ---- */

/* The verdict: RTO, the report's summary members, the record. */
static void
drill_judge(DrillRun *r, DrillResult *out, json_t *report, json_t *warnings, const DrillTimes *tm, int64_t t0)
{
	const DrillOpts *o = r->o;
	int64_t total = pv_time_monotonic_ms() - t0;
	char a[64], b[64];

	out->rto_ok = true;
	if (o->rto_secs > 0)
	{
		out->rto_ok = total <= o->rto_secs * 1000;
		check_add(r, "rto", out->rto_ok ? "ok" : "failed", "total %s %s the RTO of %s",
				  pv_elapsed_format(a, sizeof(a), total), out->rto_ok ? "is within" : "exceeds",
				  pv_duration_format(b, sizeof(b), o->rto_secs));
	}
	out->integrity_ok = r->integrity_ok;
	out->ok = r->integrity_ok && out->rto_ok;
	json_object_set_new(report, "times_ms", json_pack("{s:I, s:I, s:I, s:I, s:I}", "setup", (json_int_t) tm->setup,
													  "restore", (json_int_t) tm->restore,
													  "recovery", (json_int_t) tm->recovery,
													  "checks", (json_int_t) tm->checks, "total", (json_int_t) total));
	json_object_set_new(report, "rto_seconds", o->rto_secs > 0 ? json_integer((json_int_t) o->rto_secs) : json_null());
	json_object_set_new(report, "rto_ok", o->rto_secs > 0 ? json_boolean(out->rto_ok) : json_null());
	json_object_set_new(report, "integrity_ok", json_boolean(out->integrity_ok));
	json_object_set_new(report, "ok", json_boolean(out->ok));
	json_object_set_new(report, "outcome", json_string(out->ok ? "passed" : "failed"));
	json_object_set_new(report, "checks", json_incref(r->checks));
	json_object_set_new(report, "warnings", json_incref(warnings));
	if (r->scratch.version_num > 0)
		json_object_set_new(report, "server", json_pack("{s:i, s:s}", "version_num", r->scratch.version_num,
														"bindir", r->scratch.bindir));
	if (o->fault_sql != NULL && o->fault_sql[0] != '\0')
		json_object_set_new(report, "fault_injected", json_string(o->fault_sql));
	if (o->record &&
		catalog_record_write(o->repo, CATALOG_DRILL, out->backup, out->ok, report, out->record) < 0)
	{
		/* The verdict stands; not being able to file it is worth a loud warning, not a lost result. */
		pv_log_warn("drill: %s", pv_error_msg());
		json_object_set_new(report, "record_error", json_string(pv_error_msg()));
		pv_error_clear();
		out->record[0] = '\0';
	}
}

int
drill_run(DrillResult *out, const DrillOpts *o)
{
	DrillRun r = {.o = o, .integrity_ok = true};
	UserCheck *uc = NULL;
	int nuc = 0, rc;
	int64_t t0 = pv_time_monotonic_ms();
	PvTime started = pv_time_now();
	DrillTimes tm = {0};
	json_t *report = NULL, *warnings = json_array();
	DrillOpts local = *o;
	bool physical;

	memset(out, 0, sizeof(*out));
	local.jobs = o->jobs > 0 ? o->jobs : 2;
	r.o = &local;
	r.checks = json_array();
	r.cat.matviews = json_array();
	r.cat.large_objects = -1;
	if (o->checks_file != NULL && (rc = user_checks_load(o->checks_file, &uc, &nuc)) < 0)
		goto done;
	if ((rc = drill_backup_pick(o, out->backup)) < 0 || (rc = repo_manifest_load(&r.m, o->repo, out->backup)) < 0)
		goto done;
	r.meta = repo_manifest_metadata(r.m);
	physical = strcmp(repo_manifest_kind(r.m), "physical") == 0;
	if (!physical && strcmp(repo_manifest_kind(r.m), "logical") != 0)
	{
		rc = pv_error_set(PV_EUSAGE, "backup '%s' is a %s backup: drills restore logical and physical backups",
						  out->backup, repo_manifest_kind(r.m));
		goto done;
	}
	if (!physical && json_is_true(json_object_get(r.meta, "schema_only")))
	{
		rc = pv_error_set(PV_EUSAGE, "backup '%s' is schema-only: there is no data to drill", out->backup);
		goto done;
	}
	if (physical)
		rc = drill_physical(&r, out->backup, uc, nuc, warnings, &tm, t0);
	else if (json_is_true(json_object_get(r.meta, "all")))
		rc = drill_logical_all(&r, out->backup, uc, nuc, warnings, &tm, t0);
	else
		rc = drill_logical(&r, out->backup, uc, nuc, warnings, &tm, t0);
	if (rc < 0)
		goto done;
	report = report_new(&r, started);
	drill_judge(&r, out, report, warnings, &tm, t0);
	out->report = report;
	report = NULL;
	rc = PV_OK;
done:
	if (rc < 0 && r.scratch.dir != NULL && r.scratch.started)
		pv_log_detail("drill: scratch server log is in '%s' (removed now)", r.scratch.serverlog);
	scratch_destroy(&r.scratch);
	json_decref(report);
	json_decref(warnings);
	json_decref(r.checks);
	catalog_free(&r.cat);
	repo_manifest_free(r.m);
	user_checks_free(uc, nuc);
	pv_free(r.dbname);
	return rc;
}

/* ---- estimates from earlier drills and restores ---- */

/* One measured restore of the same source and kind, from a drill report or a restore record. */
typedef struct EstimateSample
{
	int64_t size;				/* the backup's logical bytes */
	int64_t restore_ms;
	int64_t recovery_ms;		/* 0 when not measured */
} EstimateSample;

static bool
estimate_same(const json_t *kind, const json_t *source, const RepoManifest *m)
{
	return json_is_string(kind) && json_is_string(source) &&
		strcmp(json_string_value(kind), repo_manifest_kind(m)) == 0 &&
		strcmp(json_string_value(source), repo_manifest_source(m)) == 0;
}

/* The longest restore or recovery an estimate takes from a record: a year. */
#define ESTIMATE_MAX_MS ((int64_t) 366 * 24 * 3600 * 1000)

/* Does this drill report or restore record measure a whole restore of m's source and kind? */
static bool
estimate_sample(const CatalogRecord *r, const json_t *doc, const RepoManifest *m, EstimateSample *out)
{
	if (r->type == CATALOG_DRILL)
	{
		const json_t *b = json_object_get(doc, "backup"), *t = json_object_get(doc, "times_ms");

		/* only drills whose restore went through say something */
		if (!estimate_same(json_object_get(b, "kind"), json_object_get(b, "source"), m) ||
			json_is_false(json_object_get(doc, "integrity_ok")))
			return false;
		out->size = json_integer_value(json_object_get(b, "size"));
		out->restore_ms = json_integer_value(json_object_get(t, "restore"));
		out->recovery_ms = json_integer_value(json_object_get(t, "recovery"));
	}
	else
	{
		/* a partial restore (some tables, a delta) says little about a whole one */
		if (!r->ok || !estimate_same(json_object_get(doc, "kind"), json_object_get(doc, "source"), m) ||
			json_is_true(json_object_get(doc, "partial")))
			return false;
		out->size = json_integer_value(json_object_get(doc, "size"));
		out->restore_ms = json_integer_value(json_object_get(doc, "duration_ms"));
		out->recovery_ms = json_integer_value(json_object_get(doc, "recovery_ms"));	/* null: 0 */
	}
	/*
	 * Records are repository data: a damaged or hand-made one must not
	 * overflow the sums below.  A restore or recovery longer than a year,
	 * or a size over 1 EiB, is no measurement.
	 */
	return out->size > 0 && out->size <= ((int64_t) 1 << 60) &&
		out->restore_ms > 0 && out->restore_ms <= ESTIMATE_MAX_MS &&
		out->recovery_ms >= 0 && out->recovery_ms <= ESTIMATE_MAX_MS;
}

static int
estimate_record_cmp(const void *a, const void *b)
{
	const CatalogRecord *x = a, *y = b;

	return strcmp(x->id, y->id);
}

/* Drill reports and restore records together, oldest first. */
static int
estimate_records(Repo *repo, CatalogRecordList *out)
{
	CatalogRecordList r;
	int rc;

	if ((rc = catalog_records_list(repo, CATALOG_DRILL, NULL, out)) < 0)
		return rc;
	if ((rc = catalog_records_list(repo, CATALOG_RESTORE, NULL, &r)) < 0)
	{
		catalog_records_free(out);
		return rc;
	}
	if (r.n > 0)
	{
		out->items = pv_realloc(out->items, (out->n + r.n) * sizeof(CatalogRecord));
		memcpy(out->items + out->n, r.items, r.n * sizeof(CatalogRecord));
		out->n += r.n;
		pv_free(r.items);		/* the keys moved to out */
		pv_qsort(out->items, out->n, sizeof(CatalogRecord), estimate_record_cmp);
	}
	return PV_OK;
}

int
drill_restore_estimate(Repo *repo, const RepoManifest *m, json_t **out)
{
	CatalogRecordList l;
	json_t *basis = json_array();
	uint64_t bytes = 0;
	int64_t ms = 0, rec_ms = 0;
	size_t reads = 0, nrec = 0;
	const json_t *sz = json_object_get(repo_manifest_totals(m), "logical_bytes");
	int rc;

	*out = NULL;
	if ((rc = estimate_records(repo, &l)) < 0)
	{
		json_decref(basis);
		return rc;
	}
	for (size_t i = l.n; i > 0 && json_array_size(basis) < DRILL_ESTIMATE_SAMPLES &&
		 reads < 4 * DRILL_ESTIMATE_SAMPLES; i--)
	{
		const CatalogRecord *r = &l.items[i - 1];
		json_t *doc = NULL;
		EstimateSample e = {0};

		if (r->type == CATALOG_RESTORE && !r->ok)
			continue;			/* the name says it: no read */
		reads++;
		if (catalog_record_read(repo, r, &doc) < 0)
		{
			pv_error_clear();
			continue;
		}
		if (estimate_sample(r, doc, m, &e))
		{
			bytes += (uint64_t) e.size;
			ms += e.restore_ms;
			if (e.recovery_ms > 0)
			{
				rec_ms += e.recovery_ms;
				nrec++;
			}
			json_array_append_new(basis, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}",
												   "kind", catalog_type_name(r->type), "record", r->id,
												   "backup", r->backup, "size", (json_int_t) e.size,
												   "restore_ms", (json_int_t) e.restore_ms,
												   "recovery_ms", (json_int_t) e.recovery_ms));
		}
		json_decref(doc);
	}
	catalog_records_free(&l);
	if (json_array_size(basis) == 0 || ms <= 0)
	{
		json_decref(basis);
		return PV_OK;
	}
	{
		double bps = (double) bytes * 1000.0 / (double) ms;
		uint64_t size_m = json_is_integer(sz) && json_integer_value(sz) > 0 ? (uint64_t) json_integer_value(sz) : 0;
		int64_t recovery = nrec ? rec_ms / (int64_t) nrec : 0;
		double est_d = (double) size_m * 1000.0 / bps + (double) recovery;
		int64_t est = est_d < (double) INT64_MAX / 2 ? (int64_t) est_d : INT64_MAX / 2;

		*out = json_pack("{s:I, s:I, s:I, s:o}", "estimate_ms", (json_int_t) est,
						 "bytes_per_second", (json_int_t) bps, "recovery_ms", (json_int_t) recovery, "basis", basis);
	}
	return PV_OK;
}
