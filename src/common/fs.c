/*
 * fs.c: local filesystem helpers; see fs.h for the contract.
 *
 * Durability rules (numbered so that code comments can point at them):
 *   1. New file contents reach the disk (fsync) before the file gets its
 *      final name: readers see the old file or the complete new one.
 *   2. A rename, link, unlink or mkdir is durable only once the directory
 *      holding the entry is fsynced; every helper that changes a directory
 *      fsyncs it before returning success.
 *   3. Temp files are created with O_EXCL under a random name, so two writers
 *      of the same path never share (and corrupt) one temp file.
 *   4. A failing helper removes the temp file it created; only a crash can
 *      leave one behind, and the names make those easy to recognise.
 *
 * Every system call that can be interrupted is retried on EINTR.
 */
#include "common/fs.h"

#include "common/error.h"
#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ---- paths ---- */

char *
pv_fs_path_join(const char *a, const char *b)
{
	size_t alen = strlen(a);

	while (*b == '/')
		b++;
	if (alen == 0)
		return pv_strdup(b);
	while (alen > 1 && a[alen - 1] == '/')
		alen--;
	if (*b == '\0')
		return pv_strndup(a, alen);
	if (alen == 1 && a[0] == '/')
		return pv_asprintf("/%s", b);
	return pv_asprintf("%.*s/%s", (int) alen, a, b);
}

char *
pv_fs_path_dirname(const char *path)
{
	size_t len = strlen(path);

	/* dirname(1): drop trailing slashes, then the last segment, then the slashes before it. */
	while (len > 1 && path[len - 1] == '/')
		len--;
	while (len > 0 && path[len - 1] != '/')
		len--;
	if (len == 0)
		return pv_strdup(".");
	while (len > 1 && path[len - 1] == '/')
		len--;
	return pv_strndup(path, len);
}

int
pv_fs_path_absolute(char **out, const char *path)
{
	char *cwd = NULL;
	char *full = NULL;
	char *res = NULL;
	size_t rlen = 0;
	const char *p;
	int rc = 0;

	if (path == NULL || path[0] == '\0')
		return pv_error_set(PV_EUSAGE, "empty path");
	if (path[0] != '/')
	{
		cwd = getcwd(NULL, 0);
		if (cwd == NULL)
		{
			rc = pv_error_errno(PV_ERROR, errno, "cannot find the current directory to resolve '%s'", path);
			goto done;
		}
		full = pv_fs_path_join(cwd, path);
	}
	else
		full = pv_strdup(path);

	/* Rebuild segment by segment into res; it never grows longer than full. */
	res = pv_malloc(strlen(full) + 2);
	for (p = full; *p != '\0';)
	{
		const char *seg;
		size_t slen;

		while (*p == '/')
			p++;
		seg = p;
		while (*p != '\0' && *p != '/')
			p++;
		slen = (size_t) (p - seg);
		if (slen == 0 || (slen == 1 && seg[0] == '.'))
			continue;
		if (slen == 2 && seg[0] == '.' && seg[1] == '.')
		{
			while (rlen > 0 && res[rlen - 1] != '/')
				rlen--;
			if (rlen > 0)
				rlen--;			/* the '/' before the dropped segment */
			continue;
		}
		res[rlen++] = '/';
		memcpy(res + rlen, seg, slen);
		rlen += slen;
	}
	if (rlen == 0)
		res[rlen++] = '/';
	res[rlen] = '\0';
	*out = res;
	res = NULL;

done:
	free(cwd);					/* from getcwd: the C library's malloc */
	pv_free(full);
	pv_free(res);
	return rc;
}

/* ---- directories ---- */

int
pv_fs_fsync_dir(const char *dir)
{
	int fd;
	int rc = 0;

	do
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return pv_error_errno(errno == ENOENT ? PV_ENOTFOUND : PV_EIO, errno,
							  "cannot open directory '%s' to sync it", dir);
	/* Some filesystems cannot fsync a directory (EINVAL): nothing more can be done there. */
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = pv_error_errno(PV_EIO, errno, "cannot sync directory '%s'", dir);	/* uncovered: failing disk */
	close(fd);
	return rc;
}

int
pv_fs_fsync_parent(const char *path)
{
	char *dir = pv_fs_path_dirname(path);
	int rc = pv_fs_fsync_dir(dir);

	pv_free(dir);
	return rc;
}

/* mkdir that treats "already a directory" as success; 1 = created, 0 = existed. */
static int
fs_mkdir_one(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 1;
	if (errno == EEXIST)
	{
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		return pv_error_set(PV_ERROR, "cannot create directory '%s': a file of that name exists", path);
	}
	return pv_error_errno(errno == ENOENT ? PV_ENOTFOUND : PV_EIO, errno,
						  "cannot create directory '%s'", path);
}

/* mkdir -p that stops at stop (if not NULL): reaching a missing stop is PV_ENOTFOUND. */
static int
fs_mkdir_p(const char *path, mode_t mode, const char *stop)
{
	char *parent = NULL;
	int rc;

	/* Optimistic: usually only the last level (or none) is missing. */
	rc = fs_mkdir_one(path, mode);
	if (rc != PV_ENOTFOUND)
		goto created;

	parent = pv_fs_path_dirname(path);
	if (stop != NULL && strcmp(parent, stop) == 0)
	{
		rc = pv_error_set(PV_ENOTFOUND, "directory '%s' does not exist", stop);
		goto done;
	}
	if (strcmp(parent, path) == 0)	/* uncovered: "/" or "." missing, nothing to build on */
		goto done;
	if ((rc = fs_mkdir_p(parent, mode, stop)) < 0)
		goto done;
	rc = fs_mkdir_one(path, mode);

created:
	/* Rule 2: the new entry is durable only once its parent is synced. */
	if (rc == 1)
		rc = pv_fs_fsync_parent(path);

done:
	pv_free(parent);
	return rc < 0 ? rc : 0;
}

int
pv_fs_mkdir_p(const char *path, mode_t mode)
{
	if (path == NULL || path[0] == '\0')
		return pv_error_set(PV_EUSAGE, "empty directory path");
	return fs_mkdir_p(path, mode, NULL);
}

int
pv_fs_mkdir_under(const char *base, const char *rel, mode_t mode)
{
	struct stat st;
	char *path;
	int rc;

	if (rel[0] == '\0' || strcmp(rel, ".") == 0)
	{
		if (stat(base, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		return pv_error_set(PV_ENOTFOUND, "directory '%s' does not exist", base);
	}
	path = pv_fs_path_join(base, rel);
	rc = fs_mkdir_p(path, mode, base);
	pv_free(path);
	return rc;
}

/* Remove everything inside the open directory dfd (consumed); path is for messages. */
static int
fs_remove_contents(int dfd, const char *path)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	char *child = NULL;
	int rc = 0;

	if (d == NULL)
	{
		/* uncovered: fdopendir fails only on a bad descriptor or out of memory */
		rc = pv_error_errno(PV_EIO, errno, "cannot read directory '%s'", path);
		close(dfd);
		return rc;
	}
	for (;;)
	{
		struct stat st;
		bool isdir;

		errno = 0;
		de = readdir(d);
		if (de == NULL)
		{
			if (errno != 0)		/* uncovered: failing disk */
				rc = pv_error_errno(PV_EIO, errno, "cannot read directory '%s'", path);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		pv_free(child);
		child = pv_fs_path_join(path, de->d_name);

		/* lstat, not d_type: some filesystems leave d_type unknown, and links must not be followed. */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		{
			if (errno == ENOENT)	/* uncovered: removed by someone else meanwhile */
				continue;
			rc = pv_error_errno(PV_EIO, errno, "cannot stat '%s'", child);	/* uncovered: needs a failing disk */
			break;
		}
		isdir = S_ISDIR(st.st_mode);
		if (isdir)
		{
			int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (cfd < 0)
			{
				/* uncovered: removed meanwhile (ENOENT), or a failing disk */
				if (errno == ENOENT)
					continue;
				rc = pv_error_errno(PV_EIO, errno, "cannot open directory '%s'", child);
				break;
			}
			if ((rc = fs_remove_contents(cfd, child)) < 0)
				break;
		}
		if (unlinkat(dirfd(d), de->d_name, isdir ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
		{
			/* uncovered: as root (the tests) permissions never refuse */
			rc = pv_error_errno(PV_EIO, errno, "cannot remove '%s'", child);
			break;
		}
	}
	pv_free(child);
	closedir(d);
	return rc;
}

int
pv_fs_remove_tree(const char *path)
{
	struct stat st;
	int fd;
	int rc;

	if (lstat(path, &st) < 0)
	{
		if (errno == ENOENT)
			return 0;
		return pv_error_errno(PV_EIO, errno, "cannot stat '%s'", path);
	}
	if (!S_ISDIR(st.st_mode))
	{
		if (unlink(path) < 0 && errno != ENOENT)	/* uncovered: as root permissions never refuse */
			return pv_error_errno(PV_EIO, errno, "cannot remove '%s'", path);
		return 0;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)					/* uncovered: replaced by a link between lstat and open */
		return pv_error_errno(PV_EIO, errno, "cannot open directory '%s'", path);
	if ((rc = fs_remove_contents(fd, path)) < 0)
		return rc;
	if (rmdir(path) < 0 && errno != ENOENT)	/* uncovered: as root permissions never refuse */
		return pv_error_errno(PV_EIO, errno, "cannot remove directory '%s'", path);
	return 0;
}

int
pv_fs_free_space(const char *path, uint64_t *out_bytes)
{
	struct statvfs sv;
	char *cur = pv_strdup(path[0] != '\0' ? path : ".");
	int rc = 0;

	/* Walk up to the nearest existing ancestor: a repository may not exist yet. */
	while (statvfs(cur, &sv) < 0)
	{
		char *up;

		if ((errno != ENOENT && errno != ENOTDIR) || strcmp(cur, "/") == 0 || strcmp(cur, ".") == 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "cannot find the free space of '%s'", path);
			goto done;
		}
		up = pv_fs_path_dirname(cur);
		pv_free(cur);
		cur = up;
	}
	*out_bytes = (uint64_t) sv.f_bavail * (uint64_t) sv.f_frsize;

done:
	pv_free(cur);
	return rc;
}

/* ---- temp files ---- */

static bool
fs_is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool
pv_fs_is_tmp_name(const char *name)
{
	size_t len = strlen(name);
	size_t marklen = strlen(PV_FS_TMP_MARK);
	const char *hex;

	if (len < marklen + PV_FS_TMP_HEX_LEN)
		return false;
	hex = name + len - PV_FS_TMP_HEX_LEN;
	if (memcmp(hex - marklen, PV_FS_TMP_MARK, marklen) != 0)
		return false;
	for (size_t i = 0; i < PV_FS_TMP_HEX_LEN; i++)
		if (!fs_is_lower_hex(hex[i]))
			return false;
	return true;
}

void
pv_fs_random_fill(void *out, size_t len)
{
	static _Atomic uint64_t counter;
	unsigned char *p = out;
	size_t got = 0;

	while (got < len)
	{
		ssize_t n = getrandom(p + got, len - got, 0);

		if (n < 0 && errno == EINTR)
			continue;			/* uncovered: needs a signal at the right moment */
		if (n <= 0)
			break;
		got += (size_t) n;
	}
	if (got == len)
		return;

	/*
	 * uncovered: getrandom() fails only on kernels older than 3.17.  Names
	 * still must differ between threads and processes; O_EXCL catches the rest.
	 */
	{
		struct timespec ts;
		uint64_t x;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 30) ^ ((uint64_t) getpid() << 16) ^
			(atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull);
		for (; got < len; got++)
		{
			/* splitmix64 step per byte: cheap and well mixed */
			uint64_t z = (x += 0x9E3779B97F4A7C15ull);

			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
			z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
			p[got] = (unsigned char) (z ^ (z >> 31));
		}
	}
}

int
pv_fs_tmp_open(char **out_tmp, int *out_fd, const char *path, mode_t mode)
{
	unsigned char rnd[PV_FS_TMP_HEX_LEN / 2];
	char hex[PV_FS_TMP_HEX_LEN + 1];
	char *tmp = NULL;
	int fd = -1;
	int rc = 0;

	/* Rule 3: a fresh random name per attempt; a collision (EEXIST) just draws again. */
	for (int attempt = 0; attempt < 16; attempt++)
	{
		pv_fs_random_fill(rnd, sizeof(rnd));
		pv_hex_encode(hex, rnd, sizeof(rnd));
		pv_free(tmp);
		tmp = pv_asprintf("%s%s%s", path, PV_FS_TMP_MARK, hex);
		do
			fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		while (fd < 0 && errno == EINTR);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
	{
		rc = pv_error_errno(errno == ENOENT ? PV_ENOTFOUND : PV_EIO, errno,
							"cannot create temporary file '%s'", tmp);
		goto done;
	}
	*out_tmp = tmp;
	*out_fd = fd;
	tmp = NULL;

done:
	pv_free(tmp);
	return rc;
}

/* ---- whole-buffer I/O ---- */

int
pv_fs_write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0)
	{
		ssize_t n = write(fd, p, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;		/* uncovered: needs a signal at the right moment */
			return pv_error_set(PV_EIO, "%s", strerror(errno));
		}
		if (n == 0)				/* uncovered: write() never returns 0 for len > 0 on Linux files */
			return pv_error_set(PV_EIO, "%s", strerror(ENOSPC));
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

int
pv_fs_pread_all(int fd, void *data, size_t len, uint64_t offset, size_t *out_got)
{
	unsigned char *p = data;
	size_t got = 0;

	while (got < len)
	{
		ssize_t n = pread(fd, p + got, len - got, (off_t) (offset + got));

		if (n < 0)
		{
			if (errno == EINTR)
				continue;		/* uncovered: needs a signal at the right moment */
			*out_got = got;
			return pv_error_set(PV_EIO, "%s", strerror(errno));
		}
		if (n == 0)
			break;
		got += (size_t) n;
	}
	*out_got = got;
	return 0;
}

/* ---- whole files ---- */

int
pv_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = NULL;
	int fd = -1;
	int rc;

	if ((rc = pv_fs_tmp_open(&tmp, &fd, path, mode)) < 0)
		return rc;
	if ((rc = pv_fs_write_all(fd, data, len)) < 0)
	{
		rc = pv_error_prefix(rc, "cannot write '%s'", tmp);
		goto done;
	}
	/* Rule 1: contents on disk before the name. */
	if (fsync(fd) < 0)
	{
		/* uncovered: fsync and close fail only on a failing disk or NFS */
		rc = pv_error_errno(PV_EIO, errno, "cannot sync '%s'", tmp);
		goto done;
	}
	if (close(fd) < 0)
	{
		fd = -1;
		rc = pv_error_errno(PV_EIO, errno, "cannot close '%s'", tmp);
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot rename '%s' to '%s'", tmp, path);
		goto done;
	}
	pv_free(tmp);
	tmp = NULL;
	/* Rule 2: the rename is durable once the directory is. */
	rc = pv_fs_fsync_parent(path);

done:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
	{
		unlink(tmp);			/* rule 4 */
		pv_free(tmp);
	}
	return rc;
}

int
pv_fs_read_file(const char *path, Buf *out)
{
	size_t oldlen = out->len;
	struct stat st;
	int fd;
	int rc = 0;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return pv_error_set(PV_ENOTFOUND, "file '%s' not found", path);
		return pv_error_errno(PV_EIO, errno, "cannot open '%s'", path);
	}
	if (fstat(fd, &st) < 0)
	{
		/* uncovered: fstat of an open descriptor does not fail */
		rc = pv_error_errno(PV_EIO, errno, "cannot stat '%s'", path);
		goto done;
	}
	if (S_ISDIR(st.st_mode))
	{
		rc = pv_error_set(PV_ERROR, "cannot read '%s': it is a directory", path);
		goto done;
	}
	/* Read until end of file, not just st_size bytes: /proc files report a size of 0. */
	for (uint64_t off = 0;;)
	{
		size_t want = st.st_size > 0 && (uint64_t) st.st_size > off ? (size_t) ((uint64_t) st.st_size - off) : 65536;
		size_t got;

		buf_reserve(out, want);
		if ((rc = pv_fs_pread_all(fd, out->data + out->len, want, off, &got)) < 0)
		{
			/* uncovered: failing disk */
			rc = pv_error_prefix(rc, "cannot read '%s'", path);
			goto done;
		}
		out->len += got;
		out->data[out->len] = '\0';
		off += got;
		if (got < want)
			break;
	}

done:
	if (rc < 0)
	{
		out->len = oldlen;
		if (out->data != NULL)
			out->data[oldlen] = '\0';
	}
	close(fd);
	return rc;
}

int
pv_fs_lock_try(const char *path, int *out_fd)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return pv_error_errno(PV_EIO, errno, "cannot open '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
	{
		*out_fd = fd;
		return 1;
	}
	close(fd);
	return 0;
}

bool
pv_fs_lock_held(const char *path)
{
	int fd;
	int got = pv_fs_lock_try(path, &fd);

	if (got == 1)
	{
		close(fd);				/* releases the lock */
		return false;
	}
	pv_error_clear();
	return got == 0;
}
