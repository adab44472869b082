/*
 * backup.c: a physical backup (the steps are listed in backup.h).
 *
 * Threads: the calling thread talks to the server, walks the directory,
 * submits one task per file to a pool of `jobs` readers, and at the end
 * copies pg_control and commits.  Each reader task streams its file into
 * its own writer item (the writer allows one open item per thread) in
 * 1 MiB reads, checking page checksums on the way.  Shared counters and the
 * list of checksum failures are guarded by Backup.mu.
 *
 * Reuse rule (why size + mtime is enough): a file is taken from the parent
 * backup unread only when its size and mtime (seconds) equal the parent's
 * record AND that mtime is older than the parent's start.  A write after the
 * parent read the file happens after the parent's start, so it would have
 * moved mtime past the recorded one; a write in the same second as the
 * recorded mtime cannot happen unnoticed because that second is before the
 * parent started.  Writes after our own scan are covered by WAL replay from
 * our start point, as for every file we read.
 */
#include "pg/physical/backup.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "pg/physical/checksum.h"
#include "pg/physical/datadir.h"
#include "pg/physical/extconf.h"
#include "pg/physical/server.h"
#include "pg/wal/archive.h"
#include "repo/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (1024u * 1024)
#define CHECKSUM_REPORT_MAX 5		/* per file, as PostgreSQL's base backup */
#define CHECKSUM_BLOCKS_KEPT 16		/* block numbers recorded per file in the manifest */
#define ARCHIVE_FAILURES_FATAL 3	/* one full round of the archiver's retries */
#define PG_CONTROL_NAME "global/pg_control"

/* ---- the previous backup's files ---- */

typedef struct ParentFile
{
	char *name;
	uint64_t size;
	int64_t mtime;
	unsigned char sha256[32];
	RepoChunkRef *chunks;
	size_t nchunks;
	uint32_t chunk_size;
} ParentFile;

typedef struct Parent
{
	char id[REPO_BACKUP_ID_LEN + 1];
	int64_t start_sec;
	ParentFile *v;
	size_t n;
} Parent;

static int
parent_cmp(const void *a, const void *b)
{
	return strcmp(((const ParentFile *) a)->name, ((const ParentFile *) b)->name);
}

static void
parent_free(Parent *p)
{
	for (size_t i = 0; i < p->n; i++)
	{
		pv_free(p->v[i].name);
		pv_free(p->v[i].chunks);
	}
	pv_free(p->v);
	memset(p, 0, sizeof(*p));
}

static const ParentFile *
parent_find(const Parent *p, const char *name)
{
	ParentFile key = {.name = (char *) name};

	return p->n ? pv_bsearch(&key, p->v, p->n, sizeof(ParentFile), parent_cmp) : NULL;
}

/*
 * The newest physical backup of source for this system: its files, sorted.
 * None is fine (the first backup, or another system's backups).
 */
static int
parent_load(Parent *out, Repo *repo, const char *source, uint64_t sysid)
{
	char id[REPO_BACKUP_ID_LEN + 1], want[32];
	RepoManifest *m = NULL;
	RepoItemIter *it = NULL;
	const RepoItem *item;
	const char *have = NULL;
	size_t cap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = repo_manifest_resolve(repo, "latest", "physical", source, id);
	if (rc == PV_ENOTFOUND)
	{
		pv_error_clear();
		return 0;
	}
	if (rc < 0 || (rc = repo_manifest_load(&m, repo, id)) < 0)
		return rc;
	snprintf(want, sizeof(want), "%" PRIu64, sysid);
	json_t *sys = json_object_get(repo_manifest_metadata(m), "system_identifier");

	have = json_is_string(sys) ? json_string_value(sys) : NULL;
	if (have == NULL || strcmp(have, want) != 0)
	{
		pv_log_info("the newest physical backup of source '%s' (%s) is of another database "
					"system: every file is read", source, id);
		goto done;
	}
	if ((rc = repo_item_iter_new(&it, repo, m)) < 0)
		goto done;
	while ((rc = repo_item_iter_next(it, &item)) == 0 && item != NULL)
	{
		ParentFile *pf;

		if (strcmp(item->type, "file") != 0 || !item->has_sha256 || !item->has_mode)
			continue;
		if (out->n == cap)
		{
			cap = cap ? cap * 2 : 1024;
			out->v = pv_realloc(out->v, cap * sizeof(ParentFile));
		}
		pf = &out->v[out->n++];
		pf->name = pv_strdup(item->name);
		pf->size = item->size;
		pf->mtime = item->mtime;
		memcpy(pf->sha256, item->sha256, 32);
		pf->nchunks = item->nchunks;
		pf->chunk_size = item->chunk_size;
		pf->chunks = pv_malloc((item->nchunks ? item->nchunks : 1) * sizeof(RepoChunkRef));
		memcpy(pf->chunks, item->chunks, item->nchunks * sizeof(RepoChunkRef));
	}
	if (rc < 0)
		goto done;
	pv_qsort(out->v, out->n, sizeof(ParentFile), parent_cmp);
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->start_sec = repo_manifest_start_time(m) / PV_USEC_PER_SEC;
done:
	repo_item_iter_free(it);
	repo_manifest_free(m);
	if (rc < 0)
		parent_free(out);
	return rc;
}

/* ---- the backup's shared state ---- */

typedef struct Backup
{
	const PgPhysBackupOpts *o;
	PgPhysServer srv;
	RepoWriter *w;
	Parent parent;
	uint64_t start_lsn;
	unsigned char empty_sha[32];

	pthread_mutex_t mu;			/* guards everything below */
	uint64_t files, files_reused, bytes_read, bytes_done, bytes_total;
	uint64_t checksum_failures, checksum_files;
	json_t *checksum_report;	/* [{file, count, blocks}] */
	int64_t t0, last_progress;
} Backup;

static void
progress_note(Backup *b, uint64_t bytes, bool reused)
{
	int64_t now = pv_time_monotonic_ms();
	int64_t every = b->o->progress_ms == 0 ? 10000 : b->o->progress_ms;

	pthread_mutex_lock(&b->mu);
	b->files++;
	b->bytes_done += bytes;
	if (reused)
		b->files_reused++;
	else
		b->bytes_read += bytes;
	if (every > 0 && now - b->last_progress >= every)
	{
		char done[32], total[32];

		b->last_progress = now;
		pv_log_info("backup %s: %s of %s (%d%%), %" PRIu64 " files", repo_writer_id(b->w),
					pv_size_format(done, sizeof(done), b->bytes_done),
					pv_size_format(total, sizeof(total), b->bytes_total),
					b->bytes_total ? (int) (b->bytes_done * 100 / b->bytes_total) : 100, b->files);
	}
	pthread_mutex_unlock(&b->mu);
}

/* Record one bad page (after its re-read failed too). */
static void
checksum_bad(Backup *b, const PgPhysEntry *e, json_t **file_report, uint32_t blkno,
			 const unsigned char *page)
{
	json_int_t count;

	pthread_mutex_lock(&b->mu);
	if (*file_report == NULL)
	{
		*file_report = json_pack("{s:s, s:I, s:[]}", "file", e->name, "count", (json_int_t) 0,
								 "blocks");
		json_array_append_new(b->checksum_report, *file_report);	/* the array owns it */
		b->checksum_files++;
	}
	count = json_integer_value(json_object_get(*file_report, "count")) + 1;
	json_object_set_new(*file_report, "count", json_integer(count));
	if (json_array_size(json_object_get(*file_report, "blocks")) < CHECKSUM_BLOCKS_KEPT)
		json_array_append_new(json_object_get(*file_report, "blocks"), json_integer(blkno));
	b->checksum_failures++;
	pthread_mutex_unlock(&b->mu);
	if (count <= CHECKSUM_REPORT_MAX)
		pv_log_warn("page checksum verification failed in file '%s', block %" PRIu32
					": calculated %04X but expected %04X", e->name, blkno,
					pgphys_page_checksum(page, b->srv.block_size, blkno),
					pgphys_page_stored_checksum(page));
	if (count == CHECKSUM_REPORT_MAX)
		pv_log_warn("further page checksum failures in file '%s' will not be reported", e->name);
}

/*
 * Check the whole pages of buf (read at offset off of the file).  A page that
 * fails is read again once, on its own, in case we caught it half-written
 * (base backup's rule); the re-read bytes replace it in buf.
 */
static int
checksum_verify(Backup *b, const PgPhysEntry *e, int fd, unsigned char *buf, size_t len,
				uint64_t off, json_t **file_report)
{
	size_t bs = b->srv.block_size;

	for (size_t i = 0; i + bs <= len; i += bs)
	{
		uint32_t blkno = (uint32_t) (e->segno * b->srv.segment_blocks + (off + i) / bs);
		size_t got;
		int rc;

		if (pgphys_page_verify(buf + i, bs, blkno, b->start_lsn) != PGPHYS_PAGE_BAD)
			continue;
		if ((rc = pv_fs_pread_all(fd, buf + i, bs, off + i, &got)) < 0)
			return pv_error_prefix(rc, "cannot read '%s'", e->path);
		if (got < bs)
			return 0;			/* truncated meanwhile: the rest is WAL's business */
		if (pgphys_page_verify(buf + i, bs, blkno, b->start_lsn) == PGPHYS_PAGE_BAD)
			checksum_bad(b, e, file_report, blkno, buf + i);
	}
	return 0;
}

static int
file_copy(Backup *b, const PgPhysEntry *e)
{
	RepoItemSpec spec = {.name = e->name, .type = "file", .has_mode = true};
	RepoWriterItem *item = NULL;
	unsigned char *buf = NULL;
	json_t *file_report = NULL;
	bool verify = e->relation && b->srv.data_checksums;
	uint64_t off = 0;
	struct stat st;
	int fd, rc = 0;

	fd = open(e->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return 0;			/* dropped since the scan: WAL replay agrees */
		return pv_error_errno(PV_EIO, errno, "cannot open '%s'", e->path);
	}
	if (fstat(fd, &st) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot stat '%s'", e->path);	/* uncovered */
		goto done;
	}
	spec.mode = (uint32_t) (st.st_mode & 07777);
	spec.mtime = (int64_t) st.st_mtime;
	spec.chunk_size = e->relation ? PGPHYS_REL_CHUNK_SIZE : 0;
	if ((rc = repo_writer_item_begin(&item, b->w, &spec)) < 0)
		goto done;
	buf = pv_malloc(READ_SIZE);
	/* Up to the size at open: growth after that is in the WAL, as for base backup. */
	while (off < (uint64_t) st.st_size)
	{
		size_t want = (uint64_t) st.st_size - off < READ_SIZE ? (size_t) ((uint64_t) st.st_size - off)
			: READ_SIZE;
		size_t got;

		if ((rc = pv_fs_pread_all(fd, buf, want, off, &got)) < 0)
		{
			rc = pv_error_prefix(rc, "cannot read '%s'", e->path);
			break;
		}
		if (got == 0)
			break;				/* truncated meanwhile */
		if (verify && (rc = checksum_verify(b, e, fd, buf, got, off, &file_report)) < 0)
			break;
		if ((rc = repo_writer_item_write(item, buf, got)) < 0)
			break;
		off += got;
		if (got < want)
			break;
	}
	if (rc < 0)
		repo_writer_item_cancel(item);
	else
		rc = repo_writer_item_end(item, NULL);
	if (rc == 0)
		progress_note(b, off, false);
done:
	pv_free(buf);
	close(fd);
	return rc;
}

/* Take an unchanged file from the parent; 1 when it was not usable (read it instead). */
static int
file_reuse(Backup *b, const PgPhysEntry *e)
{
	const ParentFile *pf;
	RepoItemSpec spec = {.name = e->name, .type = "file", .has_mode = true, .mode = e->mode,
		.mtime = e->mtime};
	int rc;

	if (b->o->full || (pf = parent_find(&b->parent, e->name)) == NULL || pf->size != e->size ||
		pf->mtime != e->mtime || pf->mtime >= b->parent.start_sec)
		return 1;
	spec.chunk_size = pf->chunk_size;
	rc = repo_writer_item_add_existing(b->w, &spec, pf->size, pf->sha256, pf->chunks, pf->nchunks);
	if (rc == PV_ENOTFOUND)
	{
		pv_log_debug("'%s': %s; reading it again", e->name, pv_error_msg());
		pv_error_clear();
		return 1;
	}
	if (rc == 0)
		progress_note(b, pf->size, true);
	return rc;
}

typedef struct FileTask
{
	Backup *b;
	const PgPhysEntry *e;
} FileTask;

static int
file_task(void *arg)
{
	FileTask *t = arg;
	int rc = file_reuse(t->b, t->e);

	if (rc == 1)
		rc = file_copy(t->b, t->e);
	return rc;
}

/* Directories and symbolic links: items without data. */
static int
entry_add_plain(Backup *b, const PgPhysEntry *e)
{
	RepoItemSpec spec = {.name = e->name, .has_mode = true, .mode = e->mode, .mtime = e->mtime,
		.type = e->type == PGPHYS_ENTRY_DIR ? "dir" : "symlink", .link = e->link};

	return repo_writer_item_add_existing(b->w, &spec, 0, b->empty_sha, NULL, 0);
}

/* Step 3: everything of the scan, pg_control last. */
static int
files_copy(Backup *b, const PgPhysDirList *list)
{
	PvPool *pool = pv_pool_new(b->o->jobs, 0);
	FileTask *tasks = pv_calloc(list->n ? list->n : 1, sizeof(FileTask));
	const PgPhysEntry *control = NULL;
	int rc = 0;

	for (size_t i = 0; i < list->n && rc == 0; i++)
	{
		const PgPhysEntry *e = &list->v[i];

		if (e->type != PGPHYS_ENTRY_FILE)
			rc = entry_add_plain(b, e);
		else if (strcmp(e->name, PG_CONTROL_NAME) == 0)
			control = e;
		else
		{
			tasks[i] = (FileTask) {b, e};
			rc = pv_pool_submit(pool, file_task, &tasks[i]);
		}
	}
	{
		int wrc = pv_pool_wait(pool);

		if (rc == 0)
			rc = wrc;
	}
	pv_pool_free(pool);
	pv_free(tasks);
	if (rc == 0 && control == NULL)
		rc = pv_error_set(PV_ERROR, "'%s' is missing from the data directory", PG_CONTROL_NAME);
	/* pg_control last, as base backup sends it, and always read: it changes at every checkpoint */
	if (rc == 0)
		rc = file_copy(b, control);
	return rc;
}

/* ---- checks before starting ---- */

static int
pg_control_sysid(uint64_t *out, const char *pgdata)
{
	char *path = pv_fs_path_join(pgdata, PG_CONTROL_NAME);
	Buf data = PV_BUF_INIT;
	int rc;

	if ((rc = pv_fs_read_file(path, &data)) < 0)
		rc = pv_error_prefix(rc, "'%s' is not a readable PostgreSQL data directory", pgdata);
	else if (data.len < 16)
		rc = pv_error_set(PV_ERROR, "'%s' is too short to be pg_control", path);
	else
		*out = pv_read_u64le(data.data);
	buf_free(&data);
	pv_free(path);
	return rc;
}

static int
preflight(Backup *b, const char *pgdata)
{
	const PgPhysServer *s = &b->srv;
	PgWalSystem sys = {s->system_identifier, s->wal_segment_size};
	uint64_t local = 0;
	int rc;

	if (s->in_recovery)
	{
		pv_error_set(PV_EUSAGE, "the server is a standby: physical backups are taken from the "
					 "primary (for now)");
		return PV_EUSAGE;
	}
	if ((rc = pgphys_server_check_archiving(s)) < 0)
		return rc;
	if ((rc = pg_control_sysid(&local, pgdata)) < 0)
		return rc;
	if (local != s->system_identifier)
	{
		pv_error_set(PV_EUSAGE, "data directory '%s' belongs to database system %" PRIu64
					 ", not to the server backed up (system %" PRIu64 ")", pgdata, local,
					 s->system_identifier);
		pv_error_hint("physical backups run on the database host, with the server's own data "
					  "directory (--pgdata or the source's pgdata)");
		return PV_EUSAGE;
	}
	/* Refuse before copying anything if the source's archive is another system's. */
	return pgwal_system_check(b->o->repo, b->o->source, &sys, false);
}

/* ---- step 5: the WAL the backup needs ---- */

static int
archive_failure(Backup *b, const char *missing, const PgPhysArchiver *a, bool timed_out)
{
	char wait[32];

	pv_duration_format(wait, sizeof(wait), b->o->archive_wait_ms / 1000);
	if (a->failing || !timed_out)
		pv_error_set(PV_ERROR, "WAL archiving is failing: the server could not archive WAL "
					 "segment %s (%" PRId64 " failed attempts so far); backup needs %s, which is "
					 "not in repository '%s'", a->last_failed_wal[0] ? a->last_failed_wal : "?",
					 a->failed_count, missing, repo_url(b->o->repo));
	else
		pv_error_set(PV_ERROR, "WAL segment %s did not reach repository '%s' (source '%s') "
					 "within %s; the server last archived %s", missing, repo_url(b->o->repo),
					 b->o->source, wait, a->last_archived_wal[0] ? a->last_archived_wal : "nothing");
	pv_error_hint("check archive_command (now '%s') and the server log: it must run 'pgvault "
				  "archive-push' into this repository with --source %s; 'pgvault check' tests "
				  "archiving", b->srv.archive_command, b->o->source);
	return PV_ERROR;
}

static int
wal_wait(Backup *b, uint32_t tli, uint64_t first, uint64_t last, int64_t failed_before)
{
	int64_t deadline = pv_time_monotonic_ms() + b->o->archive_wait_ms;
	int64_t sleep_ms = 50;
	uint64_t next = first;
	PgPhysArchiver a;
	int rc;

	for (;;)
	{
		char name[PGWAL_SEGMENT_NAME_LEN + 1];
		bool have = true;

		while (next <= last && have)
		{
			pgwal_segment_name(name, tli, next, b->srv.wal_segment_size);
			if ((rc = pgwal_exists(b->o->repo, b->o->source, name, &have)) < 0)
				return rc;
			if (have)
				next++;
		}
		if (next > last)
			return 0;
		if ((rc = pgphys_archiver_read(&a, b->o->conn)) < 0)
			return rc;
		if (a.failing && a.failed_count - failed_before >= ARCHIVE_FAILURES_FATAL)
			return archive_failure(b, name, &a, false);
		if (pv_time_monotonic_ms() >= deadline)
			return archive_failure(b, name, &a, true);
		{
			struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000};

			nanosleep(&ts, NULL);
		}
		if (sleep_ms < 1000)
			sleep_ms *= 2;
	}
}

/* ---- step 5b: the WAL carried in the backup (--with-wal) ---- */

/*
 * One archived file into the backup as pg_wal/<name>.  The archive hands
 * out a whole checked file (pgwal_fetch): one segment at a time is held in
 * memory (wal_segment_size, 16 MiB by default).  Absent history files are
 * fine (absent = 1); absent segments are not (wal_wait saw them).
 */
static int
wal_item_add(Backup *b, const char *name, bool optional, json_t *names)
{
	RepoItemSpec spec = {.type = "file", .has_mode = true, .mode = 0600,
		.mtime = (int64_t) time(NULL)};
	RepoWriterItem *item = NULL;
	Buf data = PV_BUF_INIT;
	char *iname = pv_asprintf("pg_wal/%s", name);
	int rc;

	rc = pgwal_fetch(b->o->repo, b->o->source, name, &data);
	if (rc == PV_ENOTFOUND && optional)
	{
		pv_error_clear();
		rc = 0;
		goto done;
	}
	if (rc < 0)
	{
		rc = pv_error_prefix(rc, "cannot copy WAL file %s into the backup", name);
		goto done;
	}
	spec.name = iname;
	if ((rc = repo_writer_item_begin(&item, b->w, &spec)) < 0)
		goto done;
	if ((rc = repo_writer_item_write(item, data.data, data.len)) < 0)
	{
		repo_writer_item_cancel(item);
		goto done;
	}
	if ((rc = repo_writer_item_end(item, NULL)) < 0)
		goto done;
	json_array_append_new(names, json_string(name));
done:
	buf_free(&data);
	pv_free(iname);
	return rc;
}

/* Segments first..last of timeline tli (and tli's history file) into the backup. */
static int
wal_include(Backup *b, uint32_t tli, uint64_t first, uint64_t last, json_t *names)
{
	char name[PGWAL_SEGMENT_NAME_LEN + 1];
	int rc = 0;

	if (tli > 1)
	{
		char hist[32];

		snprintf(hist, sizeof(hist), "%08X.history", tli);
		rc = wal_item_add(b, hist, true, names);
	}
	for (uint64_t segno = first; segno <= last && rc == 0; segno++)
	{
		pgwal_segment_name(name, tli, segno, b->srv.wal_segment_size);
		rc = wal_item_add(b, name, false, names);
	}
	return rc;
}

/* ---- the manifest's metadata ---- */

static json_t *
metadata_build(Backup *b, const PgPhysStop *stop, const char *pgdata, const PgPhysDirList *list)
{
	char sysid[32], xid[32], lsn1[PGWAL_LSN_TEXT_MAX], lsn2[PGWAL_LSN_TEXT_MAX];
	char w1[PGWAL_SEGMENT_NAME_LEN + 1], w2[PGWAL_SEGMENT_NAME_LEN + 1], end[PV_TIME_FORMAT_MAX];
	uint64_t seg = b->srv.wal_segment_size;
	json_t *tbs = json_array();
	json_t *md;

	for (size_t i = 0; i < list->n; i++)
		if (list->v[i].type == PGPHYS_ENTRY_SYMLINK && strncmp(list->v[i].name, "pg_tblspc/", 10) == 0)
			json_array_append_new(tbs, json_pack("{s:s, s:s}", "oid", list->v[i].name + 10,
												 "location", list->v[i].link));
	snprintf(sysid, sizeof(sysid), "%" PRIu64, b->srv.system_identifier);
	snprintf(xid, sizeof(xid), "%" PRIu64, stop->next_xid);
	pgwal_segment_name(w1, stop->timeline, pgwal_lsn_segno(stop->start_lsn, seg), seg);
	pgwal_segment_name(w2, stop->timeline, pgwal_lsn_prev_segno(stop->stop_lsn, seg), seg);
	md = json_pack("{s:i, s:s, s:s, s:s, s:i, s:I, s:i, s:I, s:b, s:s, s:s, s:s, s:s, s:s, s:I,"
				   " s:s, s:s, s:s, s:o, s:O}",
				   "pg_version", b->srv.version_num,
				   "pg_version_text", b->srv.version_text,
				   "system_identifier", sysid,
				   "data_directory", pgdata,
				   "timeline", (int) stop->timeline,
				   "wal_segment_size", (json_int_t) seg,
				   "block_size", (int) b->srv.block_size,
				   "segment_blocks", (json_int_t) b->srv.segment_blocks,
				   "data_checksums", b->srv.data_checksums,
				   "start_lsn", pgwal_lsn_format(lsn1, sizeof(lsn1), stop->start_lsn),
				   "stop_lsn", pgwal_lsn_format(lsn2, sizeof(lsn2), stop->stop_lsn),
				   "start_wal", w1,
				   "stop_wal", w2,
				   "backup_end_time", pv_time_format_utc(end, sizeof(end), stop->end_time_us),
				   "backup_end_time_us", (json_int_t) stop->end_time_us,
				   "next_xid", xid,
				   "backup_label", stop->backup_label,
				   "tablespace_map", stop->tablespace_map,
				   "tablespaces", tbs,
				   "checksum_failures", b->checksum_report);
	json_object_set_new(md, "files_reused", json_integer((json_int_t) b->files_reused));
	json_object_set_new(md, "bytes_read", json_integer((json_int_t) b->bytes_read));
	return md;
}

/* ---- the whole backup ---- */

static void
result_fill(PgPhysBackupResult *out, Backup *b, const PgPhysStop *stop)
{
	uint64_t seg = b->srv.wal_segment_size;

	out->files = b->files;
	out->files_reused = b->files_reused;
	out->bytes_read = b->bytes_read;
	out->checksum_failures = b->checksum_failures;
	out->checksum_files = b->checksum_files;
	out->checksums_verified = b->srv.data_checksums;
	out->timeline = stop->timeline;
	pgwal_lsn_format(out->start_lsn, sizeof(out->start_lsn), stop->start_lsn);
	pgwal_lsn_format(out->stop_lsn, sizeof(out->stop_lsn), stop->stop_lsn);
	pgwal_segment_name(out->start_wal, stop->timeline, pgwal_lsn_segno(stop->start_lsn, seg), seg);
	pgwal_segment_name(out->stop_wal, stop->timeline, pgwal_lsn_prev_segno(stop->stop_lsn, seg), seg);
	snprintf(out->parent, sizeof(out->parent), "%s", b->parent.id);
}

int
pgphys_backup(PgPhysBackupResult *out, const PgPhysBackupOpts *opts)
{
	PgPhysBackupOpts o = *opts;
	Backup b = {.o = &o};
	PgPhysDirList list = {0};
	PgPhysStop stop = {0};
	PgPhysArchiver arch;
	json_t *md = NULL;
	char *pgdata = NULL, *label = NULL;
	int64_t t0 = pv_time_monotonic_ms(), tw;
	int rc;

	memset(out, 0, sizeof(*out));
	if (o.archive_wait_ms <= 0)
		o.archive_wait_ms = PGPHYS_ARCHIVE_WAIT_DEFAULT_MS;
	if (o.jobs <= 0)
		o.jobs = pv_cpu_count();
	pthread_mutex_init(&b.mu, NULL);
	b.checksum_report = json_array();
	b.t0 = b.last_progress = t0;
	EVP_Digest("", 0, b.empty_sha, NULL, EVP_sha256(), NULL);

	if ((rc = pgwal_source_check(o.source)) < 0 || (rc = pgphys_server_read(&b.srv, o.conn)) < 0)
		goto done;
	if ((rc = pv_fs_path_absolute(&pgdata, o.pgdata ? o.pgdata : b.srv.data_directory)) < 0 ||
		(rc = preflight(&b, pgdata)) < 0)
		goto done;
	if ((rc = parent_load(&b.parent, o.repo, o.source, b.srv.system_identifier)) < 0)
		goto done;
	if ((rc = repo_writer_new(&b.w, o.repo, &(RepoWriterOpts) {
		.kind = "physical", .source = o.source, .parent = b.parent.id[0] ? b.parent.id : NULL,
		.jobs = o.jobs, .compression = o.compression, .command = "backup"})) < 0)
		goto done;
	snprintf(out->id, sizeof(out->id), "%s", repo_writer_id(b.w));
	if ((rc = pgphys_archiver_read(&arch, o.conn)) < 0)
		goto done;
	if (arch.failing)
		pv_log_warn("WAL archiving is failing (last failure: %s); this backup will fail unless "
					"it recovers", arch.last_failed_wal);

	label = pv_asprintf("pgvault backup %s", out->id);
	pv_log_detail("backup %s: starting (%s checkpoint) on %s", out->id,
				  o.spread_checkpoint ? "spread" : "immediate", pgdata);
	if ((rc = pgphys_backup_start(&b.start_lsn, o.conn, b.srv.version_num, label,
								  !o.spread_checkpoint)) < 0)
		goto done;
	if ((rc = pgphys_datadir_scan(&list, pgdata, b.srv.version_num / 10000)) < 0)
		goto done;
	b.bytes_total = list.file_bytes;
	if ((rc = files_copy(&b, &list)) < 0)
		goto done;
	if ((rc = pgphys_backup_stop(&stop, o.conn, b.srv.version_num)) < 0)
		goto done;
	result_fill(out, &b, &stop);
	pv_log_detail("backup %s: files copied; waiting for WAL %s..%s to be archived", out->id,
				  out->start_wal, out->stop_wal);
	tw = pv_time_monotonic_ms();
	if ((rc = wal_wait(&b, stop.timeline, pgwal_lsn_segno(stop.start_lsn, b.srv.wal_segment_size),
					   pgwal_lsn_prev_segno(stop.stop_lsn, b.srv.wal_segment_size),
					   arch.failed_count)) < 0)
		goto done;
	out->wal_wait_ms = pv_time_monotonic_ms() - tw;
	md = metadata_build(&b, &stop, pgdata, &list);
	if (o.with_wal)
	{
		json_t *names = json_array();

		rc = wal_include(&b, stop.timeline, pgwal_lsn_segno(stop.start_lsn, b.srv.wal_segment_size),
						 pgwal_lsn_prev_segno(stop.stop_lsn, b.srv.wal_segment_size), names);
		out->wal_files = (uint32_t) json_array_size(names);
		json_object_set_new(md, "wal_included", json_true());
		json_object_set_new(md, "wal_files", names);
		if (rc < 0)
			goto done;
		pv_log_detail("backup %s: %u WAL files stored in the backup", out->id, out->wal_files);
	}
	else
		json_object_set_new(md, "wal_included", json_false());
	if (!o.no_extconf)
	{
		json_t *ext = NULL;

		if ((rc = pgphys_extconf_backup(&ext, &out->extconf_files, o.conn, pgdata, b.w)) < 0)
			goto done;
		if (ext != NULL)
			json_object_set_new(md, "external_config", ext);
	}
	if ((rc = repo_writer_commit(b.w, md)) < 0)
		goto done;
	repo_writer_stats(b.w, &out->stats);
	out->duration_ms = pv_time_monotonic_ms() - t0;
done:
	json_decref(md);
	json_decref(b.checksum_report);
	repo_writer_free(b.w);
	pgphys_stop_clear(&stop);
	pgphys_datadir_free(&list);
	parent_free(&b.parent);
	pgphys_server_clear(&b.srv);
	pthread_mutex_destroy(&b.mu);
	pv_free(pgdata);
	pv_free(label);
	return rc;
}
