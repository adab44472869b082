/*
 * datadir.c: the walk of a data directory with base backup's exclusions
 * (see datadir.h for the rules).  Directories are read whole (names only)
 * before their entries are looked at, because deciding about an unlogged
 * relation's main fork needs to know whether an init fork exists beside it.
 */
#include "pg/physical/datadir.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Top-level files base backup leaves out. */
static const char *const excluded_top_files[] = {
	"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "backup_manifest",
	"postgresql.auto.conf.tmp", "current_logfiles.tmp",
};

/* Top-level directories copied empty. */
static const char *const empty_top_dirs[] = {
	"pg_wal", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp",
	"pg_subtrans", "pg_replslot",
};

static bool
in_list(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool
pgphys_relation_name(const char *name, uint32_t *segno, bool *fork_init)
{
	size_t n = strspn(name, "0123456789");
	const char *p = name + n;
	bool init = false;
	unsigned long seg = 0;

	if (n == 0 || n > 10)
		return false;
	if (strncmp(p, "_fsm", 4) == 0)
		p += 4;
	else if (strncmp(p, "_vm", 3) == 0)
		p += 3;
	else if (strncmp(p, "_init", 5) == 0)
	{
		p += 5;
		init = true;
	}
	if (*p == '.')
	{
		size_t k = strspn(p + 1, "0123456789");

		if (k == 0 || k > 9 || p[1 + k] != '\0')
			return false;
		seg = strtoul(p + 1, NULL, 10);
		p += 1 + k;
	}
	if (*p != '\0')
		return false;
	if (segno != NULL)
		*segno = (uint32_t) seg;
	if (fork_init != NULL)
		*fork_init = init;
	return true;
}

/* t<backend>_<relfilenode>[_fork][.seg]: a temporary relation (looks_like_temp_rel_name). */
static bool
temp_relation_name(const char *name)
{
	size_t n;

	if (name[0] != 't')
		return false;
	n = strspn(name + 1, "0123456789");
	if (n == 0 || name[1 + n] != '_')
		return false;
	return pgphys_relation_name(name + 2 + n, NULL, NULL);
}

/* "base/<oid>" or "pg_tblspc/<oid>/<version dir>/<oid>": a database's directory. */
static bool
database_dir(const char *rel)
{
	const char *s;

	if (strncmp(rel, "base/", 5) == 0)
		return all_digits(rel + 5, strlen(rel + 5));
	if (strncmp(rel, "pg_tblspc/", 10) != 0)
		return false;
	s = strrchr(rel, '/');
	if (!all_digits(s + 1, strlen(s + 1)))
		return false;
	/* exactly three segments after pg_tblspc */
	{
		int slashes = 0;

		for (const char *p = rel + 10; *p; p++)
			slashes += *p == '/';
		return slashes == 2;
	}
}

static PgPhysEntry *
entry_add(PgPhysDirList *l, const char *rel, const char *abs, PgPhysEntryType type,
		  const struct stat *st)
{
	PgPhysEntry *e;

	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = pv_realloc(l->v, l->cap * sizeof(PgPhysEntry));
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	e->name = pv_strdup(rel);
	e->path = pv_strdup(abs);
	e->type = type;
	e->mode = (uint32_t) (st->st_mode & 07777);
	e->mtime = (int64_t) st->st_mtime;
	if (type == PGPHYS_ENTRY_FILE)
	{
		e->size = (uint64_t) st->st_size;
		l->file_bytes += e->size;
	}
	return e;
}

typedef struct Names
{
	char **v;
	size_t n;
} Names;

static void
names_free(Names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		pv_free(nm->v[i]);
	pv_free(nm->v);
}

/* Read a directory's names.  PV_ENOTFOUND when it vanished. */
static int
names_read(Names *out, const char *abs)
{
	DIR *d = opendir(abs);
	struct dirent *de;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (d == NULL)
	{
		if (errno == ENOENT)
			return PV_ENOTFOUND;
		return pv_error_errno(PV_EIO, errno, "cannot open directory '%s'", abs);
	}
	errno = 0;
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (out->n == cap)
		{
			cap = cap ? cap * 2 : 64;
			out->v = pv_realloc(out->v, cap * sizeof(char *));
		}
		out->v[out->n++] = pv_strdup(de->d_name);
	}
	if (errno != 0)
	{
		int e = errno;

		closedir(d);
		names_free(out);
		return pv_error_errno(PV_EIO, e, "cannot read directory '%s'", abs);
	}
	closedir(d);
	return 0;
}

/* Does this database directory hold an init fork for the relfilenode of name? */
static bool
has_init_fork(const Names *nm, const char *name)
{
	size_t n = strspn(name, "0123456789");

	for (size_t i = 0; i < nm->n; i++)
		if (strncmp(nm->v[i], name, n) == 0 && strcmp(nm->v[i] + n, "_init") == 0)
			return true;
	return false;
}

typedef struct Scan
{
	PgPhysDirList *list;
	int pg_major;
} Scan;

static int walk(Scan *s, const char *abs, const char *rel);

/* pg_tblspc/<oid> as a symbolic link: record it, walk its version directory. */
static int
tablespace_add(Scan *s, const char *abs, const char *rel, const struct stat *st)
{
	char target[PATH_MAX];
	char prefix[32];
	ssize_t k = readlink(abs, target, sizeof(target) - 1);
	Names nm;
	PgPhysEntry *e;
	int rc;

	if (k < 0)
		return errno == ENOENT ? 0 : pv_error_errno(PV_EIO, errno, "cannot read link '%s'", abs);
	target[k] = '\0';
	e = entry_add(s->list, rel, abs, PGPHYS_ENTRY_SYMLINK, st);
	e->link = pv_strdup(target);
	if ((rc = names_read(&nm, abs)) == PV_ENOTFOUND)
		return pv_error_set(PV_ERROR, "tablespace '%s' points to '%s', which does not exist",
							rel, target);
	if (rc < 0)
		return rc;
	snprintf(prefix, sizeof(prefix), "PG_%d_", s->pg_major);
	for (size_t i = 0; i < nm.n && rc == 0; i++)
	{
		char *cabs, *crel;
		struct stat cst;

		if (strncmp(nm.v[i], prefix, strlen(prefix)) != 0)
			continue;			/* another major version's directory (pg_upgrade leftovers) */
		cabs = pv_fs_path_join(target[0] == '/' ? target : abs, nm.v[i]);
		crel = pv_fs_path_join(rel, nm.v[i]);
		if (lstat(cabs, &cst) == 0 && S_ISDIR(cst.st_mode))
		{
			entry_add(s->list, crel, cabs, PGPHYS_ENTRY_DIR, &cst);
			rc = walk(s, cabs, crel);
		}
		pv_free(cabs);
		pv_free(crel);
	}
	names_free(&nm);
	return rc;
}

/* Decide about one entry of directory rel (absolute abs). */
static int
visit(Scan *s, const Names *siblings, const char *dir_rel, const char *name, const char *abs,
	  const char *rel)
{
	bool top = dir_rel[0] == '\0';
	bool in_db = database_dir(dir_rel);
	struct stat st;
	PgPhysEntry *e;

	if (lstat(abs, &st) < 0)
	{
		if (errno == ENOENT)
			return 0;			/* vanished: a dropped relation */
		return pv_error_errno(PV_EIO, errno, "cannot stat '%s'", abs);
	}
	if (top && in_list(name, excluded_top_files, PV_ARRAY_LEN(excluded_top_files)))
		return 0;
	if (strncmp(name, "pg_internal.init", 16) == 0 || strncmp(name, "pgsql_tmp", 9) == 0)
		return 0;
	if (in_db && temp_relation_name(name))
		return 0;
	if (S_ISLNK(st.st_mode))
	{
		if (strcmp(dir_rel, "pg_tblspc") == 0)
			return tablespace_add(s, abs, rel, &st);
		if (top && strcmp(name, "pg_wal") == 0)
		{
			/* pg_wal elsewhere (initdb -X): restore makes it a plain directory */
			if (stat(abs, &st) < 0)
				return pv_error_errno(PV_EIO, errno, "cannot stat '%s'", abs);
		}
		else
		{
			char target[PATH_MAX];
			ssize_t k = readlink(abs, target, sizeof(target) - 1);

			if (k < 0)
				return errno == ENOENT ? 0 : pv_error_errno(PV_EIO, errno,
															"cannot read link '%s'", abs);
			target[k] = '\0';
			e = entry_add(s->list, rel, abs, PGPHYS_ENTRY_SYMLINK, &st);
			e->link = pv_strdup(target);
			return 0;
		}
	}
	if (S_ISDIR(st.st_mode))
	{
		entry_add(s->list, rel, abs, PGPHYS_ENTRY_DIR, &st);
		if (top && in_list(name, empty_top_dirs, PV_ARRAY_LEN(empty_top_dirs)))
		{
			if (strcmp(name, "pg_wal") == 0)
			{
				char *sub = pv_fs_path_join(rel, "archive_status");

				entry_add(s->list, sub, abs, PGPHYS_ENTRY_DIR, &st);
				pv_free(sub);
			}
			return 0;
		}
		return walk(s, abs, rel);
	}
	if (!S_ISREG(st.st_mode))
		return 0;				/* sockets, FIFOs, devices */
	if (in_db || strcmp(dir_rel, "global") == 0)
	{
		uint32_t segno;
		bool init;

		if (pgphys_relation_name(name, &segno, &init))
		{
			if (in_db && !init && has_init_fork(siblings, name))
				return 0;		/* unlogged relation: only its init fork is kept */
			e = entry_add(s->list, rel, abs, PGPHYS_ENTRY_FILE, &st);
			e->relation = true;
			e->segno = segno;
			return 0;
		}
	}
	entry_add(s->list, rel, abs, PGPHYS_ENTRY_FILE, &st);
	return 0;
}

static int
walk(Scan *s, const char *abs, const char *rel)
{
	Names nm;
	int rc;

	if ((rc = names_read(&nm, abs)) == PV_ENOTFOUND)
		return 0;				/* vanished: a dropped database */
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nm.n && rc == 0; i++)
	{
		char *cabs = pv_fs_path_join(abs, nm.v[i]);
		char *crel = rel[0] ? pv_fs_path_join(rel, nm.v[i]) : pv_strdup(nm.v[i]);

		rc = visit(s, &nm, rel, nm.v[i], cabs, crel);
		pv_free(cabs);
		pv_free(crel);
	}
	names_free(&nm);
	return rc;
}

int
pgphys_datadir_scan(PgPhysDirList *out, const char *pgdata, int pg_major)
{
	Scan s = {out, pg_major};
	struct stat st;
	int rc;

	memset(out, 0, sizeof(*out));
	if (stat(pgdata, &st) < 0)
	{
		if (errno == ENOENT)
			return pv_error_set(PV_ENOTFOUND, "data directory '%s' does not exist", pgdata);
		return pv_error_errno(PV_EIO, errno, "cannot stat data directory '%s'", pgdata);
	}
	if (!S_ISDIR(st.st_mode))
		return pv_error_set(PV_ERROR, "'%s' is not a directory", pgdata);
	if ((rc = walk(&s, pgdata, "")) < 0)
		pgphys_datadir_free(out);
	return rc;
}

void
pgphys_datadir_free(PgPhysDirList *list)
{
	for (size_t i = 0; i < list->n; i++)
	{
		pv_free(list->v[i].name);
		pv_free(list->v[i].path);
		pv_free(list->v[i].link);
	}
	pv_free(list->v);
	memset(list, 0, sizeof(*list));
}
