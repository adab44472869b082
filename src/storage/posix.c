/*
 * posix.c: the storage driver for a directory on a local (or mounted) filesystem.
 *
 * Object "a/b/c" is the file "<root>/a/b/c".  The driver keeps no state but
 * the root path, so any number of threads may share it; each writer is one
 * open temp file.
 *
 * Durability rules (see also common/fs.c):
 *   1. An object is written to "<root>/<key>.tmp.<16 random hex>", created
 *      O_EXCL with mode 0600 in the object's own directory (rename and link
 *      are atomic only within one filesystem).
 *   2. The temp file is fsynced before it gets its final name, so the name
 *      never points at contents that a crash could lose.
 *   3. The final name comes from rename() (replacing an existing object
 *      atomically) or, for STORAGE_PUT_NO_OVERWRITE, from link() followed by
 *      unlink() of the temp: link() fails with EEXIST rather than replace, so
 *      the existence check and the creation are one atomic step.  Where the
 *      filesystem has no hard links, renameat2(RENAME_NOREPLACE) does the same.
 *   4. The object's directory is fsynced before success is returned; so is
 *      the parent of every directory created (mode 0700) on the way.
 *   5. Directories are created only below the root, never the root itself
 *      (that is storage_create's job, at repository init): a repository on
 *      an unmounted disk fails instead of filling the mount point.  Directories are never removed (a concurrent put may be about
 *      to use them).
 *   6. A failed or aborted write unlinks its temp file.  Only a crash leaves
 *      one behind; list() never reports temp files, and keys cannot collide
 *      with them (storage.c rejects keys containing ".tmp.").
 */
#include "storage/storage_driver.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POSIX_FILE_MODE 0600
#define POSIX_DIR_MODE 0700
/* Small writes are gathered into this much before a write() call. */
#define POSIX_WRITE_BUFFER (256 * 1024)

typedef struct PosixStorage
{
	char *root;					/* absolute, tidy */
} PosixStorage;

typedef struct PosixWriter
{
	PosixStorage *ps;
	char *key;
	char *path;					/* final name */
	char *tmp;					/* temp name; NULL once renamed or removed */
	int fd;						/* -1 once closed */
	int flags;
	bool failed;				/* a write failed: the object can only be aborted */
	unsigned char *buf;			/* POSIX_WRITE_BUFFER bytes, allocated on first small write */
	size_t buflen;
} PosixWriter;

static char *
posix_path(const PosixStorage *ps, const char *key)
{
	return pv_fs_path_join(ps->root, key);
}

/* ---- writing ---- */

/* Create the temp file for key, creating missing directories below the root (rules 1, 5). */
static int
posix_tmp_create(PosixStorage *ps, const char *key, const char *path, char **out_tmp, int *out_fd)
{
	char *dir = NULL;
	int rc;

	rc = pv_fs_tmp_open(out_tmp, out_fd, path, POSIX_FILE_MODE);
	if (rc != PV_ENOTFOUND)
		goto done;
	dir = pv_fs_path_dirname(key);
	if ((rc = pv_fs_mkdir_under(ps->root, dir, POSIX_DIR_MODE)) < 0)
		goto done;
	rc = pv_fs_tmp_open(out_tmp, out_fd, path, POSIX_FILE_MODE);

done:
	pv_free(dir);
	if (rc < 0)
		return pv_error_prefix(rc, "cannot write object '%s'", key);
	return 0;
}

static void
posix_writer_free(PosixWriter *pw)
{
	if (pw->fd >= 0)
		close(pw->fd);
	if (pw->tmp != NULL && unlink(pw->tmp) < 0 && errno != ENOENT)	/* uncovered: as root never refused */
		pv_log_warn("cannot remove temporary file '%s': %s", pw->tmp, strerror(errno));
	pv_free(pw->tmp);
	pv_free(pw->path);
	pv_free(pw->key);
	pv_free(pw->buf);
	pv_free(pw);
}

static int
posix_writer_open(void **out, void *driver, const char *key, int flags)
{
	PosixStorage *ps = driver;
	PosixWriter *pw = PV_NEW(PosixWriter);
	int rc;

	pw->ps = ps;
	pw->key = pv_strdup(key);
	pw->path = posix_path(ps, key);
	pw->fd = -1;
	pw->flags = flags;
	if ((rc = posix_tmp_create(ps, key, pw->path, &pw->tmp, &pw->fd)) < 0)
	{
		posix_writer_free(pw);
		return rc;
	}
	*out = pw;
	return 0;
}

static int
posix_writer_flush(PosixWriter *pw)
{
	int rc;

	if (pw->buflen == 0)
		return 0;
	if ((rc = pv_fs_write_all(pw->fd, pw->buf, pw->buflen)) < 0)
	{
		pw->failed = true;
		return pv_error_prefix(rc, "cannot write object '%s'", pw->key);
	}
	pw->buflen = 0;
	return 0;
}

static int
posix_writer_write(void *writer, const void *data, size_t len)
{
	PosixWriter *pw = writer;
	int rc;

	if (pw->failed)
		return pv_error_set(PV_EIO, "cannot write object '%s': an earlier write failed", pw->key);
	if (pw->buflen + len <= POSIX_WRITE_BUFFER)
	{
		if (pw->buf == NULL)
			pw->buf = pv_malloc(POSIX_WRITE_BUFFER);
		memcpy(pw->buf + pw->buflen, data, len);
		pw->buflen += len;
		return 0;
	}
	if ((rc = posix_writer_flush(pw)) < 0)
		return rc;
	if (len < POSIX_WRITE_BUFFER)
		return posix_writer_write(pw, data, len);	/* fits the now empty buffer */
	if ((rc = pv_fs_write_all(pw->fd, data, len)) < 0)
	{
		pw->failed = true;
		return pv_error_prefix(rc, "cannot write object '%s'", pw->key);
	}
	return 0;
}

/* Give the synced temp file its final name (rule 3). */
static int
posix_writer_publish(PosixWriter *pw)
{
	if (!(pw->flags & STORAGE_PUT_NO_OVERWRITE))
	{
		if (rename(pw->tmp, pw->path) < 0)	/* uncovered: the temp file sits beside the target */
			return pv_error_errno(PV_EIO, errno, "cannot write object '%s': rename failed", pw->key);
		pv_free(pw->tmp);
		pw->tmp = NULL;
		return 0;
	}

	if (link(pw->tmp, pw->path) < 0)
	{
		int err = errno;

		if (err == EPERM || err == EOPNOTSUPP || err == ENOSYS)
		{
			/*
			 * No hard links here (some FUSE and SMB mounts): renameat2 gives the
			 * same guarantee.  uncovered: the test machines' filesystems have links.
			 */
			if (renameat2(AT_FDCWD, pw->tmp, AT_FDCWD, pw->path, RENAME_NOREPLACE) == 0)
			{
				pv_free(pw->tmp);
				pw->tmp = NULL;
				return 0;
			}
			if (errno != EINVAL && errno != ENOSYS)
				err = errno;
		}
		if (err == EEXIST)
			return pv_error_set(PV_EEXISTS, "object '%s' already exists", pw->key);
		return pv_error_errno(PV_EIO, err, "cannot write object '%s': link failed", pw->key);	/* uncovered */
	}
	/* The object is in place; a temp left behind by a failing unlink is only clutter. */
	if (unlink(pw->tmp) < 0)	/* uncovered: as root never refused */
		pv_log_warn("cannot remove temporary file '%s': %s", pw->tmp, strerror(errno));
	pv_free(pw->tmp);
	pw->tmp = NULL;
	return 0;
}

static int
posix_writer_commit(void *writer)
{
	PosixWriter *pw = writer;
	int rc;

	if (pw->failed)
	{
		rc = pv_error_set(PV_EIO, "cannot write object '%s': an earlier write failed", pw->key);
		goto done;
	}
	if ((rc = posix_writer_flush(pw)) < 0)
		goto done;
	/* Rule 2: contents durable before the name. */
	if (fsync(pw->fd) < 0)
	{
		/* uncovered: fsync and close fail only on a failing disk or NFS */
		rc = pv_error_errno(PV_EIO, errno, "cannot write object '%s': fsync failed", pw->key);
		goto done;
	}
	if (close(pw->fd) < 0)
	{
		pw->fd = -1;
		rc = pv_error_errno(PV_EIO, errno, "cannot write object '%s': close failed", pw->key);
		goto done;
	}
	pw->fd = -1;
	if ((rc = posix_writer_publish(pw)) < 0)
		goto done;
	/* Rule 4: the new name is durable once its directory is. */
	if ((rc = pv_fs_fsync_parent(pw->path)) < 0)	/* uncovered: failing disk */
		rc = pv_error_prefix(rc, "cannot write object '%s'", pw->key);

done:
	posix_writer_free(pw);		/* rule 6: removes the temp file if it still exists */
	return rc;
}

static void
posix_writer_abort(void *writer)
{
	posix_writer_free(writer);
}

static int
posix_put(void *driver, const char *key, const void *data, size_t len, int flags)
{
	void *w = NULL;
	PosixWriter *pw;
	int rc;

	if ((rc = posix_writer_open(&w, driver, key, flags)) < 0)
		return rc;
	pw = w;
	/* Straight to the file: no point copying a whole object through the buffer. */
	if ((rc = pv_fs_write_all(pw->fd, data, len)) < 0)
	{
		rc = pv_error_prefix(rc, "cannot write object '%s'", key);
		posix_writer_abort(pw);
		return rc;
	}
	return posix_writer_commit(pw);
}

/* ---- reading ---- */

/* Open key for reading; PV_ENOTFOUND unless it is a regular file. */
static int
posix_open_read(PosixStorage *ps, const char *key, int *out_fd, uint64_t *out_size)
{
	char *path = posix_path(ps, key);
	struct stat st;
	int fd;
	int rc = 0;

	/* O_NONBLOCK: a FIFO placed in the repository must not hang us; it is no object anyway. */
	do
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			rc = pv_error_set(PV_ENOTFOUND, "object '%s' not found", key);
		else
			rc = pv_error_errno(PV_EIO, errno, "cannot open object '%s'", key);
		goto done;
	}
	if (fstat(fd, &st) < 0)
	{
		/* uncovered: fstat of an open descriptor does not fail */
		rc = pv_error_errno(PV_EIO, errno, "cannot stat object '%s'", key);
		goto done;
	}
	if (!S_ISREG(st.st_mode))
	{
		rc = pv_error_set(PV_ENOTFOUND, "object '%s' not found", key);
		goto done;
	}
	*out_fd = fd;
	*out_size = (uint64_t) st.st_size;
	fd = -1;

done:
	if (fd >= 0)
		close(fd);
	pv_free(path);
	return rc;
}

/* Append [offset, offset+len) of the open object to out; the caller checked it lies within size. */
static int
posix_read_into(int fd, const char *key, uint64_t size, uint64_t offset, uint64_t len, Buf *out)
{
	size_t got = 0;
	int rc;

	if (len > SIZE_MAX - out->len - 1)	/* uncovered: only on 32-bit systems */
		return pv_error_set(PV_ERROR, "object '%s': %" PRIu64 " bytes do not fit in memory", key, len);
	buf_reserve(out, (size_t) len);
	if ((rc = pv_fs_pread_all(fd, out->data + out->len, (size_t) len, offset, &got)) < 0)
		return pv_error_prefix(rc, "cannot read object '%s'", key);	/* uncovered: failing disk */
	if (got < len)				/* truncated while open (read handles) or between fstat and pread */
	{
		out->data[out->len] = '\0';	/* the pread overwrote the terminator */
		return pv_error_set(PV_ECORRUPT, "object '%s' is shorter than its size %" PRIu64 ": end of file at %" PRIu64,
							key, size, offset + got);
	}
	out->len += (size_t) len;
	out->data[out->len] = '\0';
	return 0;
}

static int
posix_get(void *driver, const char *key, Buf *out)
{
	uint64_t size;
	int fd;
	int rc;

	if ((rc = posix_open_read(driver, key, &fd, &size)) < 0)
		return rc;
	rc = posix_read_into(fd, key, size, 0, size, out);
	close(fd);
	return rc;
}

static int
posix_get_range(void *driver, const char *key, uint64_t offset, uint64_t len, Buf *out)
{
	uint64_t size;
	int fd;
	int rc;

	if ((rc = posix_open_read(driver, key, &fd, &size)) < 0)
		return rc;
	if (offset > size || len > size - offset)
	{
		rc = pv_error_set(PV_ECORRUPT, "object '%s' has %" PRIu64 " bytes, too few for %" PRIu64
						  " bytes at offset %" PRIu64, key, size, len, offset);
		goto done;
	}
	rc = posix_read_into(fd, key, size, offset, len, out);

done:
	close(fd);
	return rc;
}

/*
 * A read handle (storage_reader_*): the descriptor stays open, so a restore
 * pays one open and fstat per pack instead of one per chunk.  size is from
 * the open; a range past it is checked against a fresh fstat (the object
 * may have grown), and a file truncated since reads short, which
 * posix_read_into reports as PV_ECORRUPT.  pread keeps it thread-safe.
 */
typedef struct PosixReadHandle
{
	int fd;
	uint64_t size;
	char *key;
} PosixReadHandle;

static int
posix_read_open(void **out, void *driver, const char *key)
{
	PosixReadHandle *h;
	uint64_t size;
	int fd;
	int rc;

	if ((rc = posix_open_read(driver, key, &fd, &size)) < 0)
		return rc;
	h = PV_NEW(PosixReadHandle);
	h->fd = fd;
	h->size = size;
	h->key = pv_strdup(key);
	*out = h;
	return 0;
}

static int
posix_read_range(void *handle, uint64_t offset, uint64_t len, Buf *out)
{
	PosixReadHandle *h = handle;
	uint64_t size = h->size;
	struct stat st;

	if ((offset > size || len > size - offset) && fstat(h->fd, &st) == 0)
		size = (uint64_t) st.st_size;
	if (offset > size || len > size - offset)
		return pv_error_set(PV_ECORRUPT, "object '%s' has %" PRIu64 " bytes, too few for %" PRIu64
							" bytes at offset %" PRIu64, h->key, size, len, offset);
	return posix_read_into(h->fd, h->key, size, offset, len, out);
}

static void
posix_read_close(void *handle)
{
	PosixReadHandle *h = handle;

	close(h->fd);
	pv_free(h->key);
	pv_free(h);
}

static int
posix_stat(void *driver, const char *key, StorageInfo *out)
{
	char *path = posix_path(driver, key);
	struct stat st;
	int rc = 0;

	if (stat(path, &st) < 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			rc = pv_error_set(PV_ENOTFOUND, "object '%s' not found", key);
		else
			rc = pv_error_errno(PV_EIO, errno, "cannot stat object '%s'", key);
		goto done;
	}
	if (!S_ISREG(st.st_mode))
	{
		rc = pv_error_set(PV_ENOTFOUND, "object '%s' not found", key);
		goto done;
	}
	out->size = (uint64_t) st.st_size;
	out->mtime = (int64_t) st.st_mtim.tv_sec;

done:
	pv_free(path);
	return rc;
}

static int
posix_exists(void *driver, const char *key, bool *out)
{
	StorageInfo info;
	int rc = posix_stat(driver, key, &info);

	if (rc == PV_ENOTFOUND)
	{
		pv_error_clear();
		*out = false;
		return 0;
	}
	if (rc == 0)
		*out = true;
	return rc;
}

/* ---- listing ---- */

typedef struct PosixList
{
	const char *prefix;
	size_t prefixlen;
	StorageListFn fn;
	void *payload;
	Buf key;					/* the relative path being visited */
	struct
	{
		dev_t dev;
		ino_t ino;
	}		   *open;			/* the directories being visited, root first: for loop detection */
	size_t depth;
	size_t cap;
} PosixList;

/* Could a key below directory rel (as "rel/") start with the prefix? */
static bool
posix_list_dir_matches(const PosixList *pl, const char *rel, size_t rellen)
{
	size_t n = rellen < pl->prefixlen ? rellen : pl->prefixlen;

	if (memcmp(rel, pl->prefix, n) != 0)
		return false;
	return rellen >= pl->prefixlen || pl->prefix[rellen] == '/';
}

/* Is the directory st one we are inside already (a symbolic link pointing up)? */
static bool
posix_list_is_loop(const PosixList *pl, const struct stat *st)
{
	for (size_t i = 0; i < pl->depth; i++)
		if (pl->open[i].dev == st->st_dev && pl->open[i].ino == st->st_ino)
			return true;
	return false;
}

/* Visit the directory dfd (consumed; st describes it), whose relative path is pl->key. */
static int
posix_list_dir(PosixList *pl, int dfd, const struct stat *dst)
{
	DIR *d = fdopendir(dfd);
	size_t baselen = pl->key.len;
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
	{
		/* uncovered: fdopendir fails only on a bad fd or out of memory */
		rc = pv_error_errno(PV_EIO, errno, "cannot list '%s'", buf_cstr(&pl->key));
		close(dfd);
		return rc;
	}
	if (pl->depth == pl->cap)
	{
		pl->cap = pl->cap ? pl->cap * 2 : 16;
		pl->open = pv_realloc(pl->open, pl->cap * sizeof(pl->open[0]));
	}
	pl->open[pl->depth].dev = dst->st_dev;
	pl->open[pl->depth].ino = dst->st_ino;
	pl->depth++;
	for (;;)
	{
		struct stat st;

		errno = 0;
		if ((de = readdir(d)) == NULL)
		{
			if (errno != 0)		/* uncovered: failing disk */
				rc = pv_error_errno(PV_EIO, errno, "cannot list '%s'", buf_cstr(&pl->key));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || pv_fs_is_tmp_name(de->d_name))
			continue;

		pl->key.len = baselen;
		if (baselen > 0)
			buf_append_byte(&pl->key, '/');
		buf_append_str(&pl->key, de->d_name);

		/* Follow symbolic links: a repository may keep data/ on another disk. */
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
		{
			/* Deleted while we looked, or a link to nothing or to itself: not an object. */
			if (errno == ENOENT || errno == ELOOP)
				continue;
			/* uncovered: failing disk */
			rc = pv_error_errno(PV_EIO, errno, "cannot list '%s'", buf_cstr(&pl->key));
			break;
		}
		if (S_ISDIR(st.st_mode))
		{
			int cfd;

			if (!posix_list_dir_matches(pl, (const char *) pl->key.data, pl->key.len))
				continue;
			if (posix_list_is_loop(pl, &st))
			{
				pv_log_warn("storage: not listing '%s': a symbolic link loop", buf_cstr(&pl->key));
				continue;
			}
			cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (cfd < 0)
			{
				/* uncovered: removed meanwhile (ENOENT), or a failing disk */
				if (errno == ENOENT)
					continue;
				rc = pv_error_errno(PV_EIO, errno, "cannot list '%s'", buf_cstr(&pl->key));
				break;
			}
			if ((rc = posix_list_dir(pl, cfd, &st)) < 0)
				break;
		}
		else if (S_ISREG(st.st_mode) && strncmp(buf_cstr(&pl->key), pl->prefix, pl->prefixlen) == 0)
		{
			StorageInfo info = {.size = (uint64_t) st.st_size, .mtime = (int64_t) st.st_mtim.tv_sec};

			if ((rc = pl->fn(buf_cstr(&pl->key), &info, pl->payload)) < 0)
				break;
			rc = 0;
		}
	}
	pl->depth--;
	pl->key.len = baselen;
	if (pl->key.data != NULL)
		pl->key.data[baselen] = '\0';
	closedir(d);
	return rc;
}

static int
posix_list(void *driver, const char *prefix, StorageListFn fn, void *payload)
{
	PosixStorage *ps = driver;
	PosixList pl = {.prefix = prefix, .prefixlen = strlen(prefix), .fn = fn, .payload = payload};
	const char *slash = strrchr(prefix, '/');
	char *start = NULL;
	struct stat st;
	int fd;
	int rc = 0;

	/* Start in the deepest directory the prefix names in full: "data/ab" walks "data". */
	buf_init(&pl.key);
	if (slash != NULL)
		buf_append(&pl.key, prefix, (size_t) (slash - prefix));
	start = pv_fs_path_join(ps->root, buf_cstr(&pl.key));
	do
		fd = open(start, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
	{
		if (errno != ENOENT && errno != ENOTDIR)
			rc = pv_error_errno(PV_EIO, errno, "cannot list objects under '%s'", prefix);
		goto done;				/* nothing there: nothing to list */
	}
	if (fstat(fd, &st) < 0)
	{
		/* uncovered: fstat of an open descriptor does not fail */
		rc = pv_error_errno(PV_EIO, errno, "cannot list objects under '%s'", prefix);
		close(fd);
		goto done;
	}
	rc = posix_list_dir(&pl, fd, &st);

done:
	pv_free(start);
	pv_free(pl.open);
	buf_free(&pl.key);
	return rc;
}

/* ---- deleting ---- */

static int
posix_delete(void *driver, const char *key)
{
	char *path = posix_path(driver, key);
	int rc = 0;

	if (unlink(path) < 0)
	{
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			rc = pv_error_set(PV_ENOTFOUND, "object '%s' not found", key);
		else
			rc = pv_error_errno(PV_EIO, errno, "cannot delete object '%s'", key);
		goto done;
	}
	/* A delete that a crash could undo would resurrect locks and expired data. */
	if ((rc = pv_fs_fsync_parent(path)) < 0)	/* uncovered: failing disk */
		rc = pv_error_prefix(rc, "cannot delete object '%s'", key);

done:
	pv_free(path);
	return rc;
}

/* ---- the driver ---- */

static int
posix_create(void *driver)
{
	PosixStorage *ps = driver;
	int rc = pv_fs_mkdir_p(ps->root, POSIX_DIR_MODE);

	if (rc < 0)
		return pv_error_prefix(rc, "cannot create storage directory '%s'", ps->root);
	return 0;
}

static void
posix_free(void *driver)
{
	PosixStorage *ps = driver;

	pv_free(ps->root);
	pv_free(ps);
}

static const StorageOps posix_ops = {
	.name = "posix",
	.put = posix_put,
	.writer_open = posix_writer_open,
	.writer_write = posix_writer_write,
	.writer_commit = posix_writer_commit,
	.writer_abort = posix_writer_abort,
	.get = posix_get,
	.get_range = posix_get_range,
	.stat = posix_stat,
	.list = posix_list,
	.delete = posix_delete,
	.exists = posix_exists,
	.create = posix_create,
	.free = posix_free,
	.read_open = posix_read_open,
	.read_range = posix_read_range,
	.read_close = posix_read_close,
};

int
storage_posix_new(Storage **out, const char *root)
{
	PosixStorage *ps;

	if (root == NULL || root[0] != '/')
		return pv_error_set(PV_EUSAGE, "storage directory '%s' is not an absolute path", root ? root : "");
	ps = PV_NEW(PosixStorage);
	ps->root = pv_strdup(root);
	*out = storage_new(&posix_ops, ps, root);
	return 0;
}
