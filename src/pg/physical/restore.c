/*
 * restore.c: restore of a physical backup (see restore.h for the rules).
 *
 * Order: check the target directories; read the item list (names checked);
 * create the directory, tablespace links and directories (sorted, so parents
 * come first); write the files in parallel (one pool task per file, each
 * through its own repository reader); write backup_label, tablespace_map,
 * recovery.signal and the settings; make everything durable with one
 * syncfs() per filesystem (the data directory's and each tablespace's:
 * far cheaper than an fsync per file and per directory, and it covers the
 * directory entries too); finally pg_control (rule 3).
 *
 * Before anything is written: the directory (rule 1), the backup, the WAL
 * archive (rule 4), the items and the tablespaces; a dry run (rule 5)
 * stops there with the plan.  A delta restore (opts.delta) removes
 * pg_control and what the backup does not hold first, then writes the
 * tree as usual, except that each file is compared with the backup chunk
 * by chunk and only differing chunks are written (file_delta explains the
 * comparison, delta_prepare what is removed and what stays).
 */
#include "pg/physical/restore.h"
#include "pg/physical/extconf.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "pg/wal/window.h"
#include "repo/crypto.h"
#include "repo/reader.h"
#include "repo/repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRITE_SIZE (1024u * 1024)
#define PG_CONTROL_NAME "global/pg_control"

/* ---- choosing the backup ---- */

static int
manifest_fits(RepoManifest *m, const char *source, const PgPhysTarget *t, char **why)
{
	if (strcmp(repo_manifest_kind(m), "physical") != 0)
	{
		*why = pv_asprintf("it is a %s backup", repo_manifest_kind(m));
		return 0;
	}
	if (source != NULL && strcmp(repo_manifest_source(m), source) != 0)
	{
		*why = pv_asprintf("it is of source '%s'", repo_manifest_source(m));
		return 0;
	}
	return t == NULL || pgphys_target_reachable(t, repo_manifest_metadata(m), why);
}

int
pgphys_backup_pick(char out[REPO_BACKUP_ID_LEN + 1], Repo *repo, const char *spec,
				   const char *source, const PgPhysTarget *target)
{
	char **ids = NULL, *why = NULL, *what = NULL;
	size_t n = 0;
	RepoManifest *m = NULL;
	int rc;

	if (strcmp(spec, "latest") != 0)
	{
		if ((rc = repo_manifest_load(&m, repo, spec)) < 0)
			return rc;
		if (!manifest_fits(m, NULL, target, &why))
		{
			what = target ? pgphys_target_describe(target) : pv_strdup("");
			rc = pv_error_set(PV_EUSAGE, "backup %s cannot be restored to %s: %s",
							  repo_manifest_id(m), what, why);
			if (strcmp(repo_manifest_kind(m), "physical") == 0)
				pv_error_hint("choose an older backup, or 'latest' to let pgvault choose");
		}
		else
			snprintf(out, REPO_BACKUP_ID_LEN + 1, "%s", repo_manifest_id(m));
		goto done;
	}
	if ((rc = repo_manifest_ids(repo, &ids, &n)) < 0)
		return rc;
	rc = PV_ENOTFOUND;
	for (size_t i = n; i-- > 0;)
	{
		repo_manifest_free(m);
		m = NULL;
		pv_free(why);
		why = NULL;
		if ((rc = repo_manifest_load(&m, repo, ids[i])) == PV_ENOTFOUND)
			continue;			/* expired meanwhile */
		if (rc < 0)
			goto done;
		if (manifest_fits(m, source, target, &why))
		{
			snprintf(out, REPO_BACKUP_ID_LEN + 1, "%s", ids[i]);
			goto done;
		}
		rc = PV_ENOTFOUND;
	}
	what = target ? pgphys_target_describe(target) : NULL;
	rc = pv_error_set(PV_ENOTFOUND, "no physical backup%s%s%s in repository '%s'%s%s",
					  source ? " of source '" : "", source ? source : "", source ? "'" : "",
					  repo_url(repo), what ? " can reach " : "", what ? what : "");
	if (what != NULL)
		pv_error_hint("a backup can only recover to points after it ended; 'pgvault list' shows "
					  "when each ended");
done:
	repo_manifest_ids_free(ids, n);
	repo_manifest_free(m);
	pv_free(why);
	pv_free(what);
	return rc;
}

/* ---- the target directory ---- */

int
pgphys_pgdata_check_for(const char *dir, bool delta, bool pgdata, bool *out_empty)
{
	char *pidfile = pv_fs_path_join(dir, "postmaster.pid");
	char *version = pv_fs_path_join(dir, "PG_VERSION");
	Buf pid = PV_BUF_INIT;
	struct stat st;
	DIR *d = NULL;
	struct dirent *de;
	bool empty = true;
	int rc = 0;

	if (stat(dir, &st) < 0)
	{
		if (errno != ENOENT)
			rc = pv_error_errno(PV_EIO, errno, "cannot stat '%s'", dir);
		goto done;
	}
	if (!S_ISDIR(st.st_mode))
	{
		rc = pv_error_set(PV_EREFUSED, "'%s' exists and is not a directory", dir);
		goto done;
	}
	if (pv_fs_read_file(pidfile, &pid) == 0)
	{
		long p = strtol(buf_cstr(&pid), NULL, 10);

		if (p > 0 && (kill((pid_t) p, 0) == 0 || errno == EPERM))
		{
			rc = pv_error_set(PV_EREFUSED, "a server is running in '%s' (postmaster pid %ld)",
							  dir, p);
			pv_error_hint("stop it first: restore never writes into a running cluster");
			goto done;
		}
	}
	pv_error_clear();
	if ((d = opendir(dir)) == NULL)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot open directory '%s'", dir);
		goto done;
	}
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		empty = false;
		if (delta)
			break;
		rc = pv_error_set(PV_EREFUSED, "directory '%s' is not empty", dir);
		pv_error_hint("restore into a new or empty directory, or add --delta to rewrite only the "
					  "files that differ from the backup");
		break;
	}
	/* --delta rewrites a data directory, not whatever a mistyped path names */
	if (rc == 0 && delta && pgdata && !empty && access(version, F_OK) < 0)
	{
		rc = pv_error_set(PV_EREFUSED, "directory '%s' is not empty and holds no PostgreSQL data "
						  "directory (no PG_VERSION)", dir);
		pv_error_hint("--delta only rewrites a data directory; restore into a new or empty one");
	}
done:
	if (out_empty != NULL)
		*out_empty = empty;
	if (d != NULL)
		closedir(d);
	buf_free(&pid);
	pv_free(pidfile);
	pv_free(version);
	return rc;
}

int
pgphys_pgdata_check(const char *dir)
{
	return pgphys_pgdata_check_for(dir, false, true, NULL);
}

/* ---- items ---- */

typedef struct ItemList
{
	RepoItem **v;
	size_t n, cap;
} ItemList;

static RepoItem *
item_copy(const RepoItem *it)
{
	RepoItem *c = PV_NEW(RepoItem);

	*c = *it;
	c->name = pv_strdup(it->name);
	c->type = pv_strdup(it->type);
	c->link = it->link ? pv_strdup(it->link) : NULL;
	c->chunks = pv_malloc((it->nchunks ? it->nchunks : 1) * sizeof(RepoChunkRef));
	memcpy(c->chunks, it->chunks, it->nchunks * sizeof(RepoChunkRef));
	c->meta = it->meta ? json_incref(it->meta) : NULL;
	return c;
}

static void
items_free(ItemList *l)
{
	for (size_t i = 0; i < l->n; i++)
		repo_item_free(l->v[i]);
	pv_free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Names come from the repository: nothing may escape the target directory. */
static bool
name_safe(const char *name)
{
	const char *p = name;

	if (name[0] == '\0' || name[0] == '/')
		return false;
	while (*p)
	{
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return p[-1] != '/';
}

static int
items_load(ItemList *out, Repo *repo, const RepoManifest *m)
{
	RepoItemIter *it = NULL;
	const RepoItem *item;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = repo_item_iter_new(&it, repo, m)) < 0)
		return rc;
	while ((rc = repo_item_iter_next(it, &item)) == 0 && item != NULL)
	{
		if (!name_safe(item->name))
		{
			rc = pv_error_set(PV_ECORRUPT, "backup %s has an item named '%s', which would be "
							  "written outside the data directory", repo_manifest_id(m), item->name);
			break;
		}
		if (out->n == out->cap)
		{
			out->cap = out->cap ? out->cap * 2 : 1024;
			out->v = pv_realloc(out->v, out->cap * sizeof(RepoItem *));
		}
		out->v[out->n++] = item_copy(item);
	}
	repo_item_iter_free(it);
	if (rc < 0)
		items_free(out);
	return rc;
}

static int
item_cmp(const void *a, const void *b)
{
	return strcmp((*(RepoItem *const *) a)->name, (*(RepoItem *const *) b)->name);
}

/* ---- the WAL the backup needs (rule 4) ---- */

/*
 * Which timeline recovery follows after the backup's: "current" stays on
 * it, a number names one, and "latest" (the server's default) the highest
 * archived.  0 when that is the backup's own.
 */
static uint32_t
wal_followed_timeline(const PgWalArchiveSummary *sum, const PgPhysTarget *t, uint32_t tli)
{
	const char *want = t != NULL ? t->timeline : NULL;
	uint32_t best = 0;

	if (want != NULL && strcmp(want, "current") == 0)
		return 0;
	if (want != NULL && strcmp(want, "latest") != 0)
	{
		unsigned long v = strtoul(want, NULL, 0);

		return v > tli ? (uint32_t) v : 0;
	}
	for (size_t i = 0; i < sum->ntimelines; i++)
		if (sum->timelines[i].timeline > tli && sum->timelines[i].segments > 0)
			best = sum->timelines[i].timeline;
	return best;
}

/*
 * Rule 4.  The segments from the backup's start to its stop must be
 * archived, else it cannot even become consistent.  After them, every
 * segment up to the target must be too: a hole there is where recovery
 * would stop short of the target without saying so.  Only an LSN target
 * names a segment; a time, transaction or restore point could lie anywhere
 * in the WAL, so for those (and for no target) the check runs to the
 * archive's end, and any hole before the end is a gap.  The archive ending
 * before the target is no gap: recovery stops at its end, as asked for
 * WAL nobody has written yet.  When recovery follows a later timeline, its
 * archived segments must be contiguous too (from its first; where it
 * branched is the history file's business, which the server reads).
 */
static int
wal_check(PgPhysRestoreResult *res, Repo *repo, const RepoManifest *m, const PgPhysTarget *target)
{
	const json_t *md = repo_manifest_metadata(m);
	const char *src = repo_manifest_source(m);
	const char *start = json_string_value(json_object_get(md, "start_wal"));
	const char *stop = json_string_value(json_object_get(md, "stop_wal"));
	json_t *segv = json_object_get(md, "wal_segment_size");
	uint64_t seg = json_is_integer(segv) ? (uint64_t) json_integer_value(segv) : 0;
	PgPhysTargetKind kind = target != NULL ? target->kind : PGPHYS_TARGET_NONE;
	PgWalArchiveSummary sum;
	const PgWalTimelineInfo *t;
	const PgWalGap *gap;
	uint32_t tli, tli2, follow;
	uint64_t first, last, end;
	char a[PGWAL_SEGMENT_NAME_LEN + 1], lsn[PGWAL_LSN_TEXT_MAX];
	char *what = NULL;
	int rc;

	if (start == NULL || stop == NULL || !pgwal_segment_size_valid(seg) ||
		pgwal_segment_parse(&tli, &first, start, seg) < 0 ||
		pgwal_segment_parse(&tli2, &last, stop, seg) < 0)
		return pv_error_set(PV_ECORRUPT, "backup %s does not say which WAL it needs",
							repo_manifest_id(m));
	snprintf(res->wal_first, sizeof(res->wal_first), "%s", start);
	snprintf(res->wal_stop, sizeof(res->wal_stop), "%s", stop);
	/* backup --with-wal: its pg_wal/ items make it consistent without the archive */
	if (json_is_true(json_object_get(md, "wal_included")))
		return 0;
	if ((rc = pgwal_archive_summarize(&sum, repo, src[0] ? src : PGWAL_DEFAULT_SOURCE)) < 0)
		return pv_error_prefix(rc, "cannot list the WAL archive");
	t = pgwal_summary_timeline(&sum, tli);
	gap = pgwal_summary_gap_after(&sum, tli, first);
	if (t == NULL || t->segments == 0 || t->first > first || t->last < last ||
		(gap != NULL && gap->first <= last))
	{
		uint64_t miss = t == NULL || t->segments == 0 || t->first > first ? first
			: gap != NULL && gap->first <= last ? gap->first : t->last + 1;

		pgwal_segment_name(a, tli, miss, seg);
		rc = pv_error_set(PV_ECORRUPT, "WAL segment %s, which backup %s needs to become "
						  "consistent (%s..%s), is missing from the archive of source '%s'", a,
						  repo_manifest_id(m), start, stop, src);
		pv_error_hint("the WAL was deleted from the repository; restore another backup");
		goto done;
	}
	/* where the WAL recovery needs ends: the target's segment, or the archive's end */
	end = kind == PGPHYS_TARGET_IMMEDIATE ? last
		: kind == PGPHYS_TARGET_LSN ? pgwal_lsn_segno(target->lsn, seg) : UINT64_MAX;
	follow = kind == PGPHYS_TARGET_IMMEDIATE ? 0 : wal_followed_timeline(&sum, target, tli);
	for (int pass = 0; pass < 2; pass++)
	{
		uint32_t tl = pass == 0 ? tli : follow;
		const PgWalTimelineInfo *ti = pgwal_summary_timeline(&sum, tl);

		if (pass == 1 && (follow == 0 || ti == NULL || ti->segments == 0))
			break;
		gap = pgwal_summary_gap_after(&sum, tl, pass == 0 ? first : ti->first);
		if (gap != NULL && gap->first <= end)
		{
			pgwal_segment_name(a, tl, gap->first, seg);
			pgwal_lsn_format(lsn, sizeof(lsn), gap->first * seg);
			what = target != NULL ? pgphys_target_describe(target)
				: pv_strdup("the end of the archived WAL");
			rc = pv_error_set(PV_ECORRUPT, "WAL segment %s is missing from the archive of source "
							  "'%s' (a gap of %" PRIu64 " segment%s): recovery from backup %s "
							  "cannot reach %s", a, src, gap->last - gap->first + 1,
							  gap->last == gap->first ? "" : "s", repo_manifest_id(m), what);
			pv_error_hint("recover to a point before the gap (--target-lsn below %s), or put the "
						  "missing segments back into the archive", lsn);
			goto done;
		}
		/* what the plan reports: the range on the timeline recovery ends on */
		if (pass == 0 || ti != NULL)
		{
			const PgWalTimelineInfo *tt = pass == 0 ? t : ti;
			uint64_t from = pass == 0 ? first : tt->first;
			uint64_t upto = end < tt->last ? end : tt->last;

			pgwal_segment_name(res->wal_last, tl, upto, seg);
			res->wal_to_archive_end = end >= tt->last;
			res->wal_segments += upto >= from ? upto - from + 1 : 0;
		}
	}
done:
	pv_free(what);
	pgwal_archive_summary_free(&sum);
	return rc;
}

/* ---- the restore ---- */

typedef struct Restore
{
	const PgPhysRestoreOpts *o;
	RepoManifest *m;
	pthread_mutex_t mu;
	uint64_t files, bytes, bytes_total;
	int64_t last_progress;
	PgPhysRestoreResult *res;	/* delta counters (under mu) */
	RepoPackCache *packs;		/* pack handles shared by every file's reads */
} Restore;

static void
progress_note(Restore *r, uint64_t bytes)
{
	int64_t now = pv_time_monotonic_ms();
	int64_t every = r->o->progress_ms == 0 ? 10000 : r->o->progress_ms;

	pthread_mutex_lock(&r->mu);
	r->files++;
	r->bytes += bytes;
	if (every > 0 && now - r->last_progress >= every)
	{
		char done[32], total[32];

		r->last_progress = now;
		pv_log_info("restore of %s: %s of %s (%d%%)", r->o->backup_id,
					pv_size_format(done, sizeof(done), r->bytes),
					pv_size_format(total, sizeof(total), r->bytes_total),
					r->bytes_total ? (int) (r->bytes * 100 / r->bytes_total) : 100);
	}
	pthread_mutex_unlock(&r->mu);
}

/* Stream an item's checked bytes into fd (or into mem when fd < 0). */
static int
item_read_into(Restore *r, const RepoItem *item, int fd, const char *path, Buf *mem)
{
	RepoReaderOpts ro = {.readahead = item->nchunks > 1 ? 0 : -1, .packs = r->packs};
	RepoReader *rd = NULL;
	unsigned char *buf = pv_malloc(WRITE_SIZE);
	uint64_t total = 0;
	int rc;

	if ((rc = repo_reader_open(&rd, r->o->repo, r->m, item, &ro)) < 0)
		goto done;
	for (;;)
	{
		size_t n;

		if ((rc = repo_reader_read(rd, buf, WRITE_SIZE, &n)) < 0 || n == 0)
			break;
		total += n;
		if (fd < 0)
			buf_append(mem, buf, n);
		else if ((rc = pv_fs_write_all(fd, buf, n)) < 0)
		{
			rc = pv_error_prefix(rc, "cannot write '%s'", path);
			break;
		}
	}
	if (rc == 0 && total != item->size)
		rc = pv_error_set(PV_ECORRUPT, "item '%s' of backup %s gave %" PRIu64 " bytes instead of "
						  "%" PRIu64, item->name, r->o->backup_id, total, item->size);
done:
	repo_reader_free(rd);
	pv_free(buf);
	return rc;
}

typedef struct FileTask
{
	Restore *r;
	const RepoItem *item;
} FileTask;

/* A new file: created, the item's bytes streamed in. */
static int
file_create(Restore *r, const RepoItem *item, const char *path)
{
	mode_t mode = item->has_mode ? (mode_t) (item->mode & 07777) : 0600;
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return pv_error_errno(PV_EIO, errno, "cannot create '%s'", path);
	rc = item_read_into(r, item, fd, path, NULL);
	if (rc == 0 && item->has_mode)
	{
		struct timespec ts[2] = {{item->mtime, 0}, {item->mtime, 0}};

		(void) futimens(fd, ts);	/* only informational: a failure changes nothing */
	}
	close(fd);
	return rc;
}

static void delta_note(Restore *r, uint64_t checked_bytes, bool rewritten, uint64_t written);
static int file_delta(Restore *r, const RepoItem *item, const char *path);

static int
file_task(void *arg)
{
	FileTask *t = arg;
	const RepoItem *item = t->item;
	char *path = pv_fs_path_join(t->r->o->pgdata, item->name);
	int rc;

	if (t->r->o->delta)
		rc = file_delta(t->r, item, path);
	else
		rc = file_create(t->r, item, path);
	if (rc == 0)
		progress_note(t->r, item->size);
	pv_free(path);
	return rc;
}

/* Where tablespace oid goes: mapped, else its original location. */
static const char *
tablespace_dir(const PgPhysRestoreOpts *o, const char *oid, const char *orig)
{
	for (size_t i = 0; i < o->nts_map; i++)
		if (strcmp(o->ts_map[i].oid, oid) == 0)
			return o->ts_map[i].dir;
	return orig;
}

/* A tablespace link pg_tblspc/<oid> -> its directory (rule 1 for it). */
static int
tablespace_create(const PgPhysRestoreOpts *o, const RepoItem *item)
{
	char *link = pv_fs_path_join(o->pgdata, item->name);
	const char *dir;
	int rc;

	if (item->link == NULL || item->link[0] != '/')
	{
		rc = pv_error_set(PV_ECORRUPT, "tablespace link '%s' has no absolute target", item->name);
		goto done;
	}
	dir = tablespace_dir(o, item->name + 10, item->link);
	if ((rc = pgphys_pgdata_check_for(dir, o->delta, false, NULL)) < 0)
	{
		rc = pv_error_prefix(rc, "tablespace %s", item->name + 10);
		if (dir == item->link)
			pv_error_hint("restore it elsewhere with --tablespace-map %s=DIR", item->name + 10);
		goto done;
	}
	if ((rc = pv_fs_mkdir_p(dir, 0700)) < 0)
		goto done;
	/* delta: a link still there was found to point at dir (delta_clean) */
	if (symlink(dir, link) < 0 && !(o->delta && errno == EEXIST))
		rc = pv_error_errno(PV_EIO, errno, "cannot create link '%s'", link);
done:
	pv_free(link);
	return rc;
}

/*
 * Every --tablespace-map OID must be one of the backup's tablespaces, and
 * every tablespace directory must be usable (rule 1), before anything is
 * written.
 */
static int
tablespace_map_check(const PgPhysRestoreOpts *o, const ItemList *items)
{
	for (size_t k = 0; k < o->nts_map; k++)
	{
		bool found = false;

		for (size_t i = 0; i < items->n && !found; i++)
			found = strcmp(items->v[i]->type, "symlink") == 0 &&
				strncmp(items->v[i]->name, "pg_tblspc/", 10) == 0 &&
				strcmp(items->v[i]->name + 10, o->ts_map[k].oid) == 0;
		if (!found)
			return pv_error_set(PV_EUSAGE, "backup %s has no tablespace with oid %s",
								o->backup_id, o->ts_map[k].oid);
		if (strpbrk(o->ts_map[k].dir, "\n\r") != NULL)
			return pv_error_set(PV_EUSAGE, "tablespace directory names cannot hold line breaks");
	}
	for (size_t i = 0; i < items->n; i++)
	{
		const RepoItem *it = items->v[i];
		const char *dir;
		int rc;

		if (strcmp(it->type, "symlink") != 0 || strncmp(it->name, "pg_tblspc/", 10) != 0 ||
			it->link == NULL)
			continue;
		dir = tablespace_dir(o, it->name + 10, it->link);
		if ((rc = pgphys_pgdata_check_for(dir, o->delta, false, NULL)) < 0)
		{
			rc = pv_error_prefix(rc, "tablespace %s", it->name + 10);
			if (dir == it->link)
				pv_error_hint("restore it elsewhere with --tablespace-map %s=DIR", it->name + 10);
			return rc;
		}
	}
	return 0;
}

/* tablespace_map with the mapped tablespaces' new directories ("<oid> <dir>" lines). */
char *
pgphys_tablespace_map_rewrite(const PgPhysRestoreOpts *o, const char *map)
{
	Buf out = PV_BUF_INIT;
	const char *p = map;

	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t) (nl - p) : strlen(p);
		size_t oidlen = strcspn(p, " ");
		const char *dir = NULL;

		for (size_t i = 0; i < o->nts_map && oidlen < len; i++)
			if (strlen(o->ts_map[i].oid) == oidlen && strncmp(p, o->ts_map[i].oid, oidlen) == 0)
				dir = o->ts_map[i].dir;
		if (dir != NULL)
			buf_printf(&out, "%.*s %s\n", (int) oidlen, p, dir);
		else
		{
			buf_append(&out, p, len);
			buf_append_byte(&out, '\n');
		}
		p += len + (nl ? 1 : 0);
	}
	return buf_detach(&out);
}

/* ---- delta: rewrite only what differs (opts.delta) ---- */

static void
delta_note(Restore *r, uint64_t checked_bytes, bool rewritten, uint64_t written)
{
	pthread_mutex_lock(&r->mu);
	r->res->checked_files++;
	r->res->checked_bytes += checked_bytes;
	r->res->rewritten_files += rewritten ? 1 : 0;
	r->res->rewritten_bytes += written;
	pthread_mutex_unlock(&r->mu);
}

/* Chunk c of item into fd at its offset (fetched and checked against its id). */
static int
chunk_put(Restore *r, const RepoItem *item, const RepoChunkRef *c, int fd, const char *path,
		  Buf *tmp)
{
	char context[512];
	int rc;

	snprintf(context, sizeof(context), "backup %s, item %s", r->o->backup_id, item->name);
	buf_reset(tmp);
	if ((rc = repo_chunk_fetch_cached(r->o->repo, r->packs, c->id, tmp, context)) < 0)
		return rc;
	if (tmp->len != c->raw_length)
		return pv_error_set(PV_ECORRUPT, "a chunk of item '%s' of backup %s has %zu bytes instead "
							"of %" PRIu32, item->name, r->o->backup_id, tmp->len, c->raw_length);
	if (pwrite(fd, tmp->data, tmp->len, (off_t) c->offset) != (ssize_t) tmp->len)
		return pv_error_errno(PV_EIO, errno ? errno : ENOSPC, "cannot write '%s'", path);
	return 0;
}

/*
 * Make the file at path equal to item, writing only what differs.
 *
 * How it compares: the size first, then the region of every chunk (its
 * offset in the item, its raw length) read from disk, hashed as the
 * repository names chunks (SHA-256, or the repository's HMAC when it is
 * encrypted) and compared with the chunk's id.  Equal ids mean equal bytes;
 * a region that differs is replaced by that one chunk (fetched and checked),
 * so a relation file (fixed 256 KiB regions) in which a few pages changed
 * costs a few chunks, not the file.  Hashing every region reads and hashes
 * what a whole-file SHA-256 would, but that could only say "differs" and
 * force a fetch of every chunk.  Size and mtime are no proof of equality:
 * a restore sets mtimes back to the backup's, and a file changes within a
 * second.  A file of content-defined chunks whose size differs is rewritten
 * whole: an insertion moves every later chunk.  A missing file is created.
 *
 * A dry run (opts.dry_run) opens the file read-only and counts what would
 * be written (the bytes to fetch) instead of writing it.
 */
static int
file_delta(Restore *r, const RepoItem *item, const char *path)
{
	bool dry = r->o->dry_run;
	int fd = open(path, (dry ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW);
	mode_t mode = item->has_mode ? (mode_t) (item->mode & 07777) : 0600;
	unsigned char *disk = NULL, id[REPO_ID_LEN];
	size_t cap = 0;
	Buf tmp = PV_BUF_INIT;
	uint64_t checked = 0, written = 0;
	bool changed = false;
	struct stat st;
	int rc = 0;

	/* dry: what the removal pass would have taken away (a directory, a link) */
	if (dry && (fd < 0 ? errno == ENOENT || errno == ELOOP || errno == ENOTDIR
				: fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)))
	{
		delta_note(r, 0, true, item->size);
		goto done;
	}
	if (fd < 0 && errno == ENOENT)
	{
		if ((rc = file_create(r, item, path)) == 0)
			delta_note(r, 0, true, item->size);
		return rc;
	}
	if (fd < 0 || fstat(fd, &st) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot open '%s'", path);
		goto done;
	}
	if ((uint64_t) st.st_size != item->size && item->chunk_size == 0 && dry)
	{
		changed = true;
		written = item->size;
	}
	else if ((uint64_t) st.st_size != item->size && item->chunk_size == 0)
	{
		if (ftruncate(fd, 0) < 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "cannot truncate '%s'", path);
			goto done;
		}
		if ((rc = item_read_into(r, item, fd, path, NULL)) < 0)
			goto done;
		changed = true;
		written = item->size;
	}
	else
		for (size_t i = 0; i < item->nchunks; i++)
		{
			const RepoChunkRef *c = &item->chunks[i];
			size_t got = 0;

			if (c->raw_length > cap)
			{
				cap = c->raw_length;
				disk = pv_realloc(disk, cap);
			}
			if (c->offset < (uint64_t) st.st_size &&
				(rc = pv_fs_pread_all(fd, disk, c->raw_length, c->offset, &got)) < 0)
			{
				rc = pv_error_prefix(rc, "cannot read '%s'", path);
				goto done;
			}
			checked += got;
			if (got == c->raw_length)
			{
				repo_id_compute(id, repo_keys(r->o->repo), disk, got);
				if (memcmp(id, c->id, REPO_ID_LEN) == 0)
					continue;
			}
			if (!dry && (rc = chunk_put(r, item, c, fd, path, &tmp)) < 0)
				goto done;
			changed = true;
			written += c->raw_length;
		}
	if ((uint64_t) st.st_size != item->size && dry)
		changed = true;
	else if ((uint64_t) st.st_size != item->size)
	{
		if (ftruncate(fd, (off_t) item->size) < 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "cannot truncate '%s'", path);
			goto done;
		}
		changed = true;
	}
	if (!dry && (st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot chmod '%s'", path);
		goto done;
	}
	if (!dry && item->has_mode)
	{
		struct timespec ts[2] = {{item->mtime, 0}, {item->mtime, 0}};

		(void) futimens(fd, ts);	/* only informational */
	}
	delta_note(r, checked, changed, written);
done:
	if (fd >= 0)
		close(fd);
	pv_free(disk);
	buf_free(&tmp);
	return rc;
}

/* An item by name (items sorted by name). */
static const RepoItem *
item_find(const ItemList *items, const char *name)
{
	size_t lo = 0, hi = items->n;

	while (lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(items->v[mid]->name, name);

		if (c == 0)
			return items->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Files and bytes below path (lstat: links are not followed). */
static void
tree_measure(const char *path, uint64_t *files, uint64_t *bytes)
{
	struct stat st;
	struct dirent *de;
	DIR *d;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode))
	{
		(*files)++;
		*bytes += S_ISREG(st.st_mode) ? (uint64_t) st.st_size : 0;
		return;
	}
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		char *p;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		p = pv_fs_path_join(path, de->d_name);
		tree_measure(p, files, bytes);
		pv_free(p);
	}
	closedir(d);
}

static int
delta_remove(Restore *r, const char *path, const char *name)
{
	uint64_t files = 0, bytes = 0;
	int rc;

	tree_measure(path, &files, &bytes);
	if (!r->o->dry_run && (rc = pv_fs_remove_tree(path)) < 0)
		return rc;
	pv_log_detail("restore of %s: %s '%s' (not in the backup)", r->o->backup_id,
				  r->o->dry_run ? "would remove" : "removed", name);
	pthread_mutex_lock(&r->mu);
	r->res->removed_files += files;
	r->res->removed_bytes += bytes;
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* Whether link path points at want. */
static bool
link_points_at(const char *path, const char *want)
{
	char buf[4096];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0)
		return false;
	buf[n] = '\0';
	return strcmp(buf, want) == 0;
}

static int delta_clean(Restore *r, const ItemList *items, const char *dir, const char *rel,
					   bool ts_root);

/* One entry found on disk: keep it, descend into it, or remove it. */
static int
delta_clean_entry(Restore *r, const ItemList *items, const char *path, const char *name,
				  const char *rel, const char *base, bool ts_root)
{
	const RepoItem *it = item_find(items, name);
	bool in_wal = strcmp(rel, "pg_wal") == 0 || strncmp(rel, "pg_wal/", 7) == 0;
	struct stat st, target;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : pv_error_errno(PV_EIO, errno, "cannot stat '%s'", path);
	if (it == NULL)
	{
		if (ts_root || in_wal)
			return 0;			/* another cluster's version directory; WAL (see delta_run) */
		if (strcmp(rel, "pg_tblspc") == 0 && S_ISLNK(st.st_mode))
		{
			char buf[4096];
			ssize_t n = readlink(path, buf, sizeof(buf) - 1);

			buf[n > 0 ? n : 0] = '\0';
			pv_log_warn("tablespace %s is not in backup %s: its link %s removed, its directory "
						"'%s' is left as it is", base, r->o->backup_id,
						r->o->dry_run ? "would be" : "was", buf);
			return delta_remove(r, path, name);
		}
		return delta_remove(r, path, name);
	}
	if (strcmp(it->type, "dir") == 0)
	{
		/* pg_wal may be a link to another disk (initdb --waldir): it stays one */
		if (S_ISDIR(st.st_mode) || (S_ISLNK(st.st_mode) && strcmp(name, "pg_wal") == 0 &&
									stat(path, &target) == 0 && S_ISDIR(target.st_mode)))
			return delta_clean(r, items, path, name, false);
		return delta_remove(r, path, name);
	}
	if (strcmp(it->type, "symlink") == 0)
	{
		const char *want = strcmp(rel, "pg_tblspc") == 0 && it->link != NULL
			? tablespace_dir(r->o, base, it->link) : it->link;

		/* a tablespace's own directory is cleaned once its link is right (delta_run) */
		if (S_ISLNK(st.st_mode) && want != NULL && link_points_at(path, want))
			return 0;
		return delta_remove(r, path, name);	/* a link is removed, never followed */
	}
	return S_ISREG(st.st_mode) ? 0 : delta_remove(r, path, name);
}

/*
 * Remove what the backup does not hold below dir, which is the backup's
 * entry rel ("" for the data directory).  In a tablespace's directory
 * (ts_root) only the backup's own entries are looked at: other
 * PG_<major>_<catalog version> directories there belong to other clusters.
 */
static int
delta_clean(Restore *r, const ItemList *items, const char *dir, const char *rel, bool ts_root)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : pv_error_errno(PV_EIO, errno, "cannot open directory '%s'", dir);
	while (rc == 0 && (de = readdir(d)) != NULL)
	{
		char *name, *path;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		name = rel[0] ? pv_asprintf("%s/%s", rel, de->d_name) : pv_strdup(de->d_name);
		path = pv_fs_path_join(dir, de->d_name);
		rc = delta_clean_entry(r, items, path, name, rel, de->d_name, ts_root);
		pv_free(name);
		pv_free(path);
	}
	closedir(d);
	return rc;
}

/*
 * Before the tree is made: pg_control goes first (rule 3), then everything
 * the backup does not hold.  That is everything, including what base backup
 * leaves out (stale postmaster.pid, temporary files, replication slots,
 * relcache init files, unlogged relations' main forks, old backup_label),
 * which a restore from the backup would not have either, with one
 * exception: the contents of pg_wal stay.  Base backup never copies them
 * and a restore never writes them, and, as PostgreSQL's recovery procedure
 * says, unarchived segments there may be the only copy of the newest WAL;
 * recovery reads a segment from pg_wal only when the archive lacks it.
 */
static int
delta_prepare(Restore *r, ItemList *items)
{
	char *control = pv_fs_path_join(r->o->pgdata, PG_CONTROL_NAME);
	int rc = 0;

	pv_qsort(items->v, items->n, sizeof(RepoItem *), item_cmp);
	if (!r->o->dry_run && unlink(control) < 0 && errno != ENOENT)
		rc = pv_error_errno(PV_EIO, errno, "cannot remove '%s'", control);
	else
		rc = delta_clean(r, items, r->o->pgdata, "", false);
	pv_free(control);
	return rc;
}

/* After the tree is made: each tablespace directory (its links now right) cleaned. */
static int
delta_clean_tablespaces(Restore *r, const ItemList *items)
{
	int rc = 0;

	for (size_t i = 0; i < items->n && rc == 0; i++)
	{
		const RepoItem *it = items->v[i];

		if (strcmp(it->type, "symlink") == 0 && strncmp(it->name, "pg_tblspc/", 10) == 0 &&
			strchr(it->name + 10, '/') == NULL && it->link != NULL)
			rc = delta_clean(r, items, tablespace_dir(r->o, it->name + 10, it->link), it->name,
							 true);
	}
	return rc;
}

/* Directories and links, parents first. */
static int
tree_create(Restore *r, ItemList *items)
{
	const char *pgdata = r->o->pgdata;
	int rc;

	if ((rc = pv_fs_mkdir_p(pgdata, 0700)) < 0)
		return rc;
	if (chmod(pgdata, 0700) < 0)
		return pv_error_errno(PV_EIO, errno, "cannot chmod '%s'", pgdata);
	pv_qsort(items->v, items->n, sizeof(RepoItem *), item_cmp);
	for (size_t i = 0; i < items->n && rc == 0; i++)
	{
		const RepoItem *it = items->v[i];
		char *path;

		if (strcmp(it->type, "dir") != 0 && strcmp(it->type, "symlink") != 0)
			continue;
		if (strcmp(it->type, "symlink") == 0 && strncmp(it->name, "pg_tblspc/", 10) == 0 &&
			strchr(it->name + 10, '/') == NULL)
		{
			rc = tablespace_create(r->o, it);
			continue;
		}
		path = pv_fs_path_join(pgdata, it->name);
		if (strcmp(it->type, "dir") == 0)
		{
			if (mkdir(path, it->has_mode ? (mode_t) (it->mode & 07777) | 0700 : 0700) < 0 &&
				errno != EEXIST)
				rc = pv_error_errno(PV_EIO, errno, "cannot create directory '%s'", path);
		}
		else if (it->link == NULL ||
				 (symlink(it->link, path) < 0 && !(r->o->delta && errno == EEXIST)))
			rc = pv_error_errno(PV_EIO, it->link ? errno : EINVAL, "cannot create link '%s'", path);
		pv_free(path);
	}
	return rc;
}

static int
files_write(Restore *r, ItemList *items, const RepoItem **control)
{
	PvPool *pool = pv_pool_new(r->o->jobs, 0);
	FileTask *tasks = pv_calloc(items->n ? items->n : 1, sizeof(FileTask));
	int rc = 0, wrc;

	*control = NULL;
	for (size_t i = 0; i < items->n; i++)
		if (strcmp(items->v[i]->type, "file") == 0)
			r->bytes_total += items->v[i]->size;
	for (size_t i = 0; i < items->n && rc == 0; i++)
	{
		if (strcmp(items->v[i]->type, "file") != 0)
			continue;
		if (strcmp(items->v[i]->name, PG_CONTROL_NAME) == 0)
		{
			*control = items->v[i];
			continue;
		}
		tasks[i] = (FileTask) {r, items->v[i]};
		rc = pv_pool_submit(pool, file_task, &tasks[i]);
	}
	wrc = pv_pool_wait(pool);
	pv_pool_free(pool);
	pv_free(tasks);
	if (rc == 0)
		rc = wrc;
	if (rc == 0 && *control == NULL)
		rc = pv_error_set(PV_ECORRUPT, "backup %s has no %s", r->o->backup_id, PG_CONTROL_NAME);
	return rc;
}

static int
file_put(const char *pgdata, const char *name, const char *text)
{
	char *path = pv_fs_path_join(pgdata, name);
	int rc = pv_fs_write_atomic(path, text, strlen(text), 0600);

	pv_free(path);
	return rc;
}

/* backup_label, tablespace_map, recovery.signal, postgresql.auto.conf. */
static int
recovery_files_write(Restore *r)
{
	const json_t *md = repo_manifest_metadata(r->m);
	const char *label = json_string_value(json_object_get(md, "backup_label"));
	const char *map = json_string_value(json_object_get(md, "tablespace_map"));
	const char *src = repo_manifest_source(r->m);
	PgPhysTarget none = {0};
	char *auto_path = pv_fs_path_join(r->o->pgdata, "postgresql.auto.conf");
	char *qsrc = pgphys_shell_quote(src[0] ? src : "default");
	char *cmd = pv_asprintf("%s --source %s %%f %%p", r->o->archive_get_command, qsrc);
	char *newmap = NULL;
	Buf old = PV_BUF_INIT, block = PV_BUF_INIT, merged = PV_BUF_INIT;
	int rc;

	if (label == NULL || label[0] == '\0')
	{
		rc = pv_error_set(PV_ECORRUPT, "backup %s has no backup_label in its manifest",
						  r->o->backup_id);
		goto done;
	}
	if (map != NULL && map[0] != '\0')
		map = newmap = pgphys_tablespace_map_rewrite(r->o, map);
	if ((rc = file_put(r->o->pgdata, "backup_label", label)) < 0 ||
		(map != NULL && map[0] != '\0' && (rc = file_put(r->o->pgdata, "tablespace_map", map)) < 0) ||
		(rc = file_put(r->o->pgdata, "recovery.signal", "")) < 0)
		goto done;
	rc = pv_fs_read_file(auto_path, &old);
	if (rc < 0 && rc != PV_ENOTFOUND)
		goto done;
	pv_error_clear();
	pgphys_recovery_settings(&block, r->o->target ? r->o->target : &none, cmd, r->o->archive_off,
							 r->o->backup_id);
	pgphys_auto_conf_merge(&merged, buf_cstr(&old), buf_cstr(&block));
	rc = pv_fs_write_atomic(auto_path, merged.data, merged.len, 0600);
done:
	buf_free(&old);
	buf_free(&block);
	buf_free(&merged);
	pv_free(auto_path);
	pv_free(qsrc);
	pv_free(cmd);
	pv_free(newmap);
	return rc;
}

/* syncfs() the filesystem holding dir, unless one in devs[] (n of them) already was. */
static int
filesystem_sync(const char *dir, dev_t *devs, size_t *n)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return pv_error_errno(PV_EIO, errno, "cannot open '%s'", dir);
	if (fstat(fd, &st) < 0)
		rc = pv_error_errno(PV_EIO, errno, "cannot stat '%s'", dir);	/* uncovered */
	for (size_t i = 0; rc == 0 && i < *n; i++)
		if (devs[i] == st.st_dev)
			goto done;
	if (rc == 0 && syncfs(fd) < 0)
		rc = pv_error_errno(PV_EIO, errno, "cannot make the files under '%s' durable", dir);
	if (rc == 0)
		devs[(*n)++] = st.st_dev;
done:
	close(fd);
	return rc;
}

/* Everything written so far made durable, then pg_control (rule 3). */
static int
finish(Restore *r, ItemList *items, const RepoItem *control)
{
	dev_t *devs = pv_calloc(items->n + 1, sizeof(dev_t));
	size_t ndevs = 0;
	Buf data = PV_BUF_INIT;
	char *path = NULL;
	int rc;

	rc = filesystem_sync(r->o->pgdata, devs, &ndevs);
	for (size_t i = 0; i < items->n && rc == 0; i++)
	{
		const RepoItem *it = items->v[i];

		if (strcmp(it->type, "symlink") == 0 && strncmp(it->name, "pg_tblspc/", 10) == 0 &&
			strchr(it->name + 10, '/') == NULL && it->link != NULL)
			rc = filesystem_sync(tablespace_dir(r->o, it->name + 10, it->link), devs, &ndevs);
	}
	if (rc < 0)
		goto done;
	if ((rc = item_read_into(r, control, -1, NULL, &data)) < 0)
		goto done;
	path = pv_fs_path_join(r->o->pgdata, PG_CONTROL_NAME);
	rc = pv_fs_write_atomic(path, data.data, data.len, 0600);
	if (rc == 0)
		progress_note(r, control->size);
done:
	buf_free(&data);
	pv_free(path);
	pv_free(devs);
	return rc;
}

/* What the backup holds, for the plan. */
static void
plan_fill(PgPhysRestoreResult *out, const ItemList *items)
{
	for (size_t i = 0; i < items->n; i++)
	{
		const RepoItem *it = items->v[i];

		if (strcmp(it->type, "file") == 0)
		{
			out->plan_files++;
			out->plan_bytes += it->size;
		}
		else if (strcmp(it->type, "symlink") == 0 && strncmp(it->name, "pg_tblspc/", 10) == 0 &&
				 strchr(it->name + 10, '/') == NULL)
			out->tablespaces++;
	}
}

int
pgphys_restore(PgPhysRestoreResult *out, const PgPhysRestoreOpts *opts)
{
	PgPhysRestoreOpts o = *opts;
	Restore r = {.o = &o, .res = out};
	ItemList items = {0};
	const RepoItem *control = NULL;
	int64_t t0 = pv_time_monotonic_ms();
	const char *v;
	int rc;

	memset(out, 0, sizeof(*out));
	if (o.jobs <= 0)
		o.jobs = pv_cpu_count();
	pthread_mutex_init(&r.mu, NULL);
	r.last_progress = t0;
	/*
	 * One cache of open pack handles for the whole restore: most files are a
	 * single chunk, and the small files of one pack would otherwise each open
	 * it (posix) or start a new ranged GET window (object stores).  Enough
	 * handles that every job keeps its pack open.
	 */
	r.packs = repo_pack_cache_new(o.repo, o.jobs * 2 + 4);
	if ((rc = pgphys_pgdata_check_for(o.pgdata, o.delta, true, &out->pgdata_empty)) < 0)
		goto done;
	if ((rc = repo_manifest_load(&r.m, o.repo, o.backup_id)) < 0)
		goto done;
	if (strcmp(repo_manifest_kind(r.m), "physical") != 0)
	{
		rc = pv_error_set(PV_EUSAGE, "backup %s is a %s backup, not a physical one", o.backup_id,
						  repo_manifest_kind(r.m));
		goto done;
	}
	if ((rc = wal_check(out, o.repo, r.m, o.target)) < 0)
		goto done;
	snprintf(out->source, sizeof(out->source), "%s", repo_manifest_source(r.m));
	if ((v = json_string_value(json_object_get(repo_manifest_metadata(r.m), "pg_version_text"))))
		snprintf(out->pg_version_text, sizeof(out->pg_version_text), "%s", v);
	out->pg_version_num = (int) json_integer_value(json_object_get(repo_manifest_metadata(r.m),
																   "pg_version"));
	if ((rc = items_load(&items, o.repo, r.m)) < 0 || (rc = tablespace_map_check(&o, &items)) < 0)
		goto done;
	plan_fill(out, &items);
	if (o.dry_run && o.delta && !out->pgdata_empty)
	{
		/* what a delta would do, measured read-only: compare, count, write nothing */
		o.progress_ms = -1;
		if ((rc = delta_prepare(&r, &items)) < 0 ||
			(rc = delta_clean_tablespaces(&r, &items)) < 0 ||
			(rc = files_write(&r, &items, &control)) < 0)
			goto done;
		delta_note(&r, 0, true, control->size);	/* pg_control: always rewritten */
	}
	if (o.dry_run)
		goto done;				/* rule 5: checked, nothing written */
	pv_log_detail("restore of %s: %zu items into '%s'%s", o.backup_id, items.n, o.pgdata,
				  o.delta ? " (delta)" : "");
	if (o.delta && !out->pgdata_empty && (rc = delta_prepare(&r, &items)) < 0)
		goto done;
	if ((rc = tree_create(&r, &items)) < 0 ||
		(o.delta && (rc = delta_clean_tablespaces(&r, &items)) < 0) ||
		(rc = files_write(&r, &items, &control)) < 0 ||
		(rc = pgphys_extconf_restore(o.repo, r.m, o.pgdata, o.config_dir)) < 0 ||
		(rc = recovery_files_write(&r)) < 0 || (rc = finish(&r, &items, control)) < 0)
		goto done;
	if (o.delta)
		delta_note(&r, 0, true, control->size);	/* pg_control: always rewritten, last */
	out->files = r.files;
	out->bytes = r.bytes;
	out->duration_ms = pv_time_monotonic_ms() - t0;
done:
	items_free(&items);
	repo_pack_cache_free(r.packs);
	repo_manifest_free(r.m);
	pthread_mutex_destroy(&r.mu);
	return rc;
}
