/*
 * fs.h: local filesystem helpers with the durability rules built in.
 *
 * Everything here that writes follows one rule: a file becomes visible under
 * its final name only after its contents are on disk, and the directory
 * entry that names it is on disk before the function returns.  Concretely:
 * write "<path>.tmp.<16 hex>" (created O_EXCL), fsync it, rename it over
 * <path>, fsync the directory.  pv_fs_mkdir_p fsyncs the parent of every
 * directory it creates, so a new path survives a crash too.
 *
 * All functions return 0 or a negative PV_E* code with a message naming the
 * path (see error.h).  Paths are plain C strings; nothing here interprets
 * URLs.  Results returned through char ** or as char * are owned by the
 * caller (pv_free).
 */
#ifndef PV_COMMON_FS_H
#define PV_COMMON_FS_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Temporary files are "<final name>.tmp.<PV_FS_TMP_HEX_LEN lowercase hex digits>". */
#define PV_FS_TMP_MARK ".tmp."
#define PV_FS_TMP_HEX_LEN 16

/*
 * Create path and any missing parents with mode (like mkdir -p), fsyncing
 * the parent of each directory created.  An existing directory is fine (also
 * when another thread or process creates it at the same moment); an existing
 * non-directory is PV_ERROR.
 */
int pv_fs_mkdir_p(const char *path, mode_t mode);

/*
 * Create base/rel and the missing directories between, like pv_fs_mkdir_p,
 * but never base itself: if base does not exist the result is PV_ENOTFOUND
 * "directory '<base>' does not exist".  This is how a repository on an
 * unmounted disk fails, instead of quietly filling the mount point.  base
 * must be tidy (no trailing or repeated slashes), rel relative.
 */
int pv_fs_mkdir_under(const char *base, const char *rel, mode_t mode);

/* fsync a directory, so the entries created or removed in it are durable. */
int pv_fs_fsync_dir(const char *dir);

/* fsync the directory that holds path ("." for a bare name). */
int pv_fs_fsync_parent(const char *path);

/*
 * Replace path with data atomically and durably: temp file in the same
 * directory, fsync, rename, fsync of the directory.  The directory must
 * exist (PV_ENOTFOUND otherwise).  On failure path is unchanged and no temp
 * file is left behind.
 */
int pv_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Append the whole file to out.  PV_ENOTFOUND when absent.  On failure out is unchanged. */
int pv_fs_read_file(const char *path, Buf *out);

/*
 * Remove path and, if it is a directory, everything below it (like rm -rf;
 * symbolic links are removed, never followed).  An absent path is not an error.
 */
int pv_fs_remove_tree(const char *path);

/* Bytes available to an unprivileged user on the filesystem holding path (or its nearest existing parent). */
int pv_fs_free_space(const char *path, uint64_t *out_bytes);

/* ---- path strings ---- */

/* "a" + "b" -> "a/b" (one separator, whatever trailing/leading slashes); "" + "b" -> "b". Caller frees. */
char *pv_fs_path_join(const char *a, const char *b);

/* The directory part of path, as dirname(1) does: "a/b" -> "a", "b" -> ".", "/b" -> "/". Caller frees. */
char *pv_fs_path_dirname(const char *path);

/*
 * Make path absolute (relative to the current directory) and tidy it:
 * repeated and trailing slashes and "." segments go, ".." removes the
 * segment before it (lexically: symbolic links are not resolved and the path
 * need not exist).  PV_EUSAGE for an empty path, PV_ERROR if the current
 * directory cannot be found.
 */
int pv_fs_path_absolute(char **out, const char *path);

/* ---- temp files and whole-buffer I/O ---- */

/* True if name (a path or its last segment) is one of our temp files: ends in ".tmp.<16 hex>". */
bool pv_fs_is_tmp_name(const char *name);

/*
 * Create a new temp file "<path>.tmp.<random hex>" for the final path, with
 * O_EXCL|O_CLOEXEC and mode, open for writing.  *out_tmp (caller frees) and
 * *out_fd are set only on success.  PV_ENOTFOUND if the directory does not
 * exist (callers may create it and try again), PV_EIO otherwise.
 */
int pv_fs_tmp_open(char **out_tmp, int *out_fd, const char *path, mode_t mode);

/*
 * Take the exclusive flock() of the lock file path (created, mode 0600,
 * when missing) without waiting, for "at most one of these processes"
 * (the WAL pusher, the prefetcher): 1 with *out_fd, which the holder keeps
 * open for as long as it holds the lock; 0 when another process holds it;
 * PV_EIO when the file cannot be opened.
 */
int pv_fs_lock_try(const char *path, int *out_fd);

/* Does another process hold the lock of path now?  (A lock that cannot be checked counts as free.) */
bool pv_fs_lock_held(const char *path);

/* Fill out with len random bytes from getrandom(); for unique names, not for keys. */
void pv_fs_random_fill(void *out, size_t len);

/*
 * write() all of data, retrying short writes and EINTR.  On failure returns
 * PV_EIO and the message is only the system's error text ("No space left on
 * device"), for the caller to prefix: pv_error_prefix(rc, "cannot write '%s'", p).
 */
int pv_fs_write_all(int fd, const void *data, size_t len);

/*
 * pread() up to len bytes at offset, retrying short reads and EINTR, stopping
 * only at end of file; *out_got is the number of bytes read.  Errors as for
 * pv_fs_write_all.
 */
int pv_fs_pread_all(int fd, void *data, size_t len, uint64_t offset, size_t *out_got);

#endif
