/*
 * prefetch.c: archive-get with read-ahead (see prefetch.h for the spool
 * layout and its rules).  Segment names of one timeline sort like their
 * numbers (fixed-width hex), which is all the foreground's clean-up needs;
 * the prefetcher computes the next names with the archive's segment size.
 */
#include "pg/wal/prefetch.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "pg/wal/archive.h"
#include "pg/wal/wal.h"
#include "repo/repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IDLE_SCANS 10
#define IDLE_SLEEP_MS 200

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Write data as dir/name, whole: temp file, rename (no fsync: a spool file is a cache). */
static int
spool_put(const char *dir, const char *name, const void *data, size_t len)
{
	char *path = pv_asprintf("%s/%s", dir, name);
	char *tmp = pv_asprintf("%s.tmp.%ld.%lx", path, (long) getpid(), (unsigned long) pthread_self());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		rc = pv_error_errno(PV_EIO, errno, "cannot create '%s'", tmp);
	else
	{
		rc = pv_fs_write_all(fd, data, len);
		if (close(fd) < 0 && rc == 0)
			rc = pv_error_errno(PV_EIO, errno, "cannot write '%s'", tmp);
		if (rc == 0 && rename(tmp, path) < 0)
			rc = pv_error_errno(PV_EIO, errno, "cannot rename '%s'", tmp);
		if (rc < 0)
			unlink(tmp);
	}
	pv_free(tmp);
	pv_free(path);
	return rc;
}

int
pgwal_prefetch_lock(const PgWalPrefetchOpts *o, int *out_fd)
{
	char *path = pv_asprintf("%s/prefetch.lock", o->spool);
	int rc = pv_fs_lock_try(path, out_fd);

	pv_free(path);
	return rc;
}

/* Rule 2: drop what recovery will not ask for any more. */
static void
spool_trim(const char *in, const char *want)
{
	DIR *d = opendir(in);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL)
	{
		PgWalFile f;
		char *path;

		if (pgwal_file_parse(&f, de->d_name) < 0 || f.kind != PGWAL_FILE_SEGMENT)
		{
			pv_error_clear();
			continue;
		}
		if (strncmp(de->d_name, want, 8) == 0 && strcmp(de->d_name, want) > 0)
			continue;			/* ahead of recovery on its timeline: keep */
		path = pv_asprintf("%s/%s", in, de->d_name);
		unlink(path);
		pv_free(path);
	}
	if (d != NULL)
		closedir(d);
}

/* Move a prefetched file into place (rule 1).  1 when there was one. */
static int
spool_take(const char *src, const char *dest)
{
	Buf data = PV_BUF_INIT;
	int rc;

	if (rename(src, dest) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	if (errno != EXDEV)
		return pv_error_errno(PV_EIO, errno, "cannot move '%s' to '%s'", src, dest);
	if ((rc = pv_fs_read_file(src, &data)) == 0 &&
		(rc = pv_fs_write_atomic(dest, data.data, data.len, 0600)) == 0)
	{
		unlink(src);
		rc = 1;
	}
	else if (rc == PV_ENOTFOUND)
	{
		pv_error_clear();
		rc = 0;					/* the prefetcher's clean-up raced us: fetch it */
	}
	buf_free(&data);
	return rc;
}

static bool
prefetcher_running(const PgWalPrefetchOpts *o)
{
	char *path = pv_asprintf("%s/prefetch.lock", o->spool);
	bool held = pv_fs_lock_held(path);

	pv_free(path);
	return held;
}

int
pgwal_prefetch_get(const PgWalPrefetchOpts *o, const char *name, const char *dest,
				   PgWalRepoOpenFn open_repo, PgWalPrefetcherStartFn start, void *payload)
{
	char *in = pv_asprintf("%s/in", o->spool);
	char *src = pv_asprintf("%s/%s", in, name);
	Repo *repo = NULL;
	PgWalFile f;
	int rc, hit = 0;

	if ((rc = pgwal_file_parse(&f, name)) < 0)
		goto done;
	if ((rc = pv_fs_mkdir_p(in, 0700)) < 0)
	{
		pv_error_hint("spool-path must be a local directory the server's user can write");
		goto done;
	}
	if (f.kind == PGWAL_FILE_SEGMENT && (hit = spool_take(src, dest)) < 0)
	{
		rc = hit;
		goto done;
	}
	if (hit)
		pv_log_detail("WAL file '%s' was prefetched", name);
	else if ((rc = open_repo(&repo, payload)) < 0 ||
			 (rc = pgwal_get(repo, o->source, name, dest)) < 0)
		goto done;				/* absent: recovery is ending, nothing to prefetch */
	if (f.kind != PGWAL_FILE_SEGMENT)
		goto done;
	if ((rc = spool_put(in, "want", name, strlen(name))) < 0)
		goto done;
	spool_trim(in, name);
	if (!prefetcher_running(o))
		rc = start(payload);
done:
	repo_free(repo);
	pv_free(in);
	pv_free(src);
	return rc;
}

/* ---- the prefetcher ---- */

typedef struct FetchTask
{
	Repo *repo;
	const PgWalPrefetchOpts *o;
	const char *in;
	char name[PGWAL_SEGMENT_NAME_LEN + 1];
	atomic_bool *absent;
} FetchTask;

static int
fetch_task(void *arg)
{
	FetchTask *t = arg;
	Buf data = PV_BUF_INIT;
	int rc = pgwal_fetch(t->repo, t->o->source, t->name, &data);

	if (rc == 0)
		rc = spool_put(t->in, t->name, data.data, data.len);
	if (rc == PV_ENOTFOUND)
		atomic_store(t->absent, true);	/* the end of the archive (for now) */
	else if (rc < 0)
		pv_log_warn("archive-get prefetcher: %s", pv_error_msg());	/* the foreground will fetch it */
	pv_error_clear();
	buf_free(&data);
	return 0;
}

int
pgwal_prefetch_run(Repo *repo, const PgWalPrefetchOpts *o)
{
	int jobs = o->jobs > 0 ? o->jobs : 4;
	char *in = pv_asprintf("%s/in", o->spool);
	char *want_path = pv_asprintf("%s/want", in);
	PgWalSystem sys = {0, PGWAL_DEFAULT_SEGMENT_SIZE};
	PvPool *pool = pv_pool_new(jobs, jobs * 2);
	FetchTask *tasks = pv_calloc((size_t) o->count, sizeof(FetchTask));
	int idle = 0;

	if (pgwal_system_read(repo, o->source, &sys) < 0)
		pv_error_clear();
	while (idle < IDLE_SCANS)
	{
		Buf want = PV_BUF_INIT;
		atomic_bool absent = false;
		uint32_t tli;
		uint64_t segno;
		int n = 0;

		if (pv_fs_read_file(want_path, &want) < 0 ||
			pgwal_segment_parse(&tli, &segno, buf_cstr(&want), sys.segment_size) < 0)
		{
			pv_error_clear();
			buf_free(&want);
			break;
		}
		buf_free(&want);
		for (int i = 1; i <= o->count; i++)
		{
			char *path;

			pgwal_segment_name(tasks[n].name, tli, segno + (uint64_t) i, sys.segment_size);
			path = pv_asprintf("%s/%s", in, tasks[n].name);
			if (access(path, F_OK) != 0)
			{
				tasks[n].repo = repo;
				tasks[n].o = o;
				tasks[n].in = in;
				tasks[n].absent = &absent;
				pv_pool_submit(pool, fetch_task, &tasks[n]);
				n++;
			}
			pv_free(path);
		}
		pv_pool_wait(pool);
		if (n == 0 || atomic_load(&absent))
		{
			idle++;
			sleep_ms(IDLE_SLEEP_MS);
		}
		else
			idle = 0;
	}
	pv_pool_free(pool);
	pv_free(tasks);
	pv_free(in);
	pv_free(want_path);
	return 0;
}
