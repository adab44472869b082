/*
 * archive.h: the WAL archive of a source inside a repository: what
 * archive-push stores and archive-get and physical backups read.
 *
 * Every archived file (segment, .partial, .history, .backup) is one object
 * wal/<source>/<timeline>/<name> (wal.h), written with no-overwrite
 * semantics and never modified.  Why not packs: a segment is unique data
 * (nothing to deduplicate), archive_command wants one durable store per
 * file with as few round trips as possible (one PUT here; a pack would also
 * need an index file), expiring old WAL must delete files one by one without
 * repacking, and listing a timeline's prefix shows what is archived (and
 * where the gaps are) without reading anything.
 *
 * Object contents (docs/repository-format.md, "WAL archive"): a blob (the
 * repository's codec, encrypted when the repository is) whose plaintext is a
 * 48-byte header (magic "PVWA", version 1, the file's length and SHA-256)
 * followed by the file.  In an encrypted repository the object key is the
 * AEAD's associated data, so an object cannot be passed off under another
 * name.  Every read checks the header, the length and the SHA-256.
 *
 * wal/<source>/archive.info (a metadata object, JSON) records the database
 * system the source's WAL belongs to: archive-push refuses a segment whose
 * header names another system, so two clusters cannot mix their WAL under
 * one source name.
 *
 * Thread safety: the functions share nothing but the Repo (thread-safe).
 * No repository lock is taken: WAL objects are independent, written once,
 * and not touched by prune (which only deletes packs and index files).
 */
#ifndef PV_PG_WAL_ARCHIVE_H
#define PV_PG_WAL_ARCHIVE_H

#include "common/buf.h"
#include "pg/wal/wal.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

#define PGWAL_OBJECT_MAGIC "PVWA"
#define PGWAL_OBJECT_HEADER_LEN 48

/* The database system a source's WAL belongs to. */
typedef struct PgWalSystem
{
	uint64_t system_identifier;
	uint64_t segment_size;
} PgWalSystem;

/*
 * Read the long page header at the start of a WAL segment's data: the
 * system identifier and segment size it records, checked against the
 * file's length and name (the first page's address must be the segment's
 * start).  PV_ECORRUPT "WAL segment '%s' ..." when it does not hold.
 */
int pgwal_segment_header_read(PgWalSystem *out, const char *name, const unsigned char *data,
							  size_t len);

/* The system recorded for source.  PV_ENOTFOUND when nothing was archived yet. */
int pgwal_system_read(Repo *repo, const char *source, PgWalSystem *out);

/*
 * Check that sys is the system of source's archive; when the archive has
 * no record yet and create is true, record sys (no-overwrite; a concurrent
 * creator's record is then checked instead).  PV_EREFUSED naming both
 * system identifiers when they differ.
 */
int pgwal_system_check(Repo *repo, const char *source, const PgWalSystem *sys, bool create);

typedef struct PgWalPushResult
{
	bool already_archived;		/* the same content was there: nothing written */
	uint64_t size;				/* bytes of the file */
	uint64_t stored;			/* bytes of the object written (0 if already archived) */
} PgWalPushResult;

/*
 * archive-push: store the WAL file at path (its base name must be a WAL
 * file name) under source.  Durable when it returns 0.  Pushing what is
 * already archived with the same content succeeds (already_archived);
 * different content is PV_EEXISTS and overwrites nothing.  out may be NULL.
 */
int pgwal_push(Repo *repo, const char *source, const char *path, PgWalPushResult *out);

/*
 * Fetch and check an archived file's contents, appended to out.
 * PV_ENOTFOUND "WAL file '%s' is not in the archive of source '%s'" when
 * absent; PV_ECORRUPT when the object fails any check.
 */
int pgwal_fetch(Repo *repo, const char *source, const char *name, Buf *out);

/* archive-get: fetch name and write it to dest atomically.  PV_ENOTFOUND as pgwal_fetch. */
int pgwal_get(Repo *repo, const char *source, const char *name, const char *dest);

/* Whether name is archived (no content check). */
int pgwal_exists(Repo *repo, const char *source, const char *name, bool *out);

/*
 * Every archived file name of source on timeline (0: all timelines), in no
 * promised order, with the stored object's size.  fn returns 0 to go on.
 */
typedef int (*PgWalListFn) (const char *name, uint64_t stored_size, void *payload);
int pgwal_list(Repo *repo, const char *source, uint32_t timeline, PgWalListFn fn, void *payload);

#endif
