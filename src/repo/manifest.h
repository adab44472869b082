/*
 * manifest.h: backups as the repository records them
 * (docs/repository-format.md section 7): backup ids, the manifest object
 * (snapshots/<id>), and its item list, stored as content-defined tree blobs
 * of JSON lines and read back one item at a time.
 *
 * Ownership: repo_manifest_load hands out a RepoManifest (free with
 * repo_manifest_free); its getters lend strings and JSON valid until then.
 * RepoItem values from repo_item_parse are the caller's (repo_item_free);
 * those from an iterator are lent until the next call.
 *
 * A manifest is immutable once written.  Loading checks its format, that
 * its id equals its name, and the shape of every member pgvault relies on;
 * iterating checks that the tree blobs hold exactly `count` well-formed
 * items.  Errors are PV_ECORRUPT naming the backup.
 */
#ifndef PV_REPO_MANIFEST_H
#define PV_REPO_MANIFEST_H

#include "common/buf.h"
#include "common/timeutil.h"
#include "repo/crypto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;
struct json_t;

#define REPO_MANIFEST_FORMAT 1

/* ---- backup ids: "20261122T023900Z-a1b2c3" ---- */

#define REPO_BACKUP_ID_LEN 23
void repo_backup_id_new(char out[REPO_BACKUP_ID_LEN + 1], PvTime start);
bool repo_backup_id_valid(const char *id);

/* ---- items ---- */

typedef struct RepoChunkRef
{
	unsigned char id[REPO_ID_LEN];
	uint32_t raw_length;
	uint64_t offset;			/* where the chunk starts in the item */
} RepoChunkRef;

typedef struct RepoItem
{
	char *name;
	char *type;					/* "file", "dir", "symlink", "stream" */
	uint64_t size;
	bool has_mode;				/* mode and mtime are set (files, dirs, symlinks) */
	uint32_t mode;
	int64_t mtime;
	char *link;					/* symlinks, else NULL */
	bool has_sha256;
	unsigned char sha256[32];
	uint32_t chunk_size;		/* fixed-offset chunking, 0 for content-defined */
	RepoChunkRef *chunks;
	size_t nchunks;
	struct json_t *meta;		/* object or NULL; owned by the item */
} RepoItem;

void repo_item_free(RepoItem *item);	/* NULL ok */

/* Append the item's JSON line (with its "\n") to out. */
void repo_item_to_json(const RepoItem *item, Buf *out);

/* Parse one line (without "\n").  PV_ECORRUPT with a message on bad input. */
int repo_item_parse(RepoItem **out, const char *line, size_t len);

/* ---- manifests ---- */

typedef struct RepoManifest RepoManifest;

typedef struct RepoTreeRef
{
	unsigned char id[REPO_ID_LEN];
	uint32_t raw_length;
} RepoTreeRef;

/*
 * All backup ids in the repository, sorted oldest first.  *out is an array
 * of *out_n strings (caller frees with repo_manifest_ids_free).
 */
int repo_manifest_ids(Repo *repo, char ***out, size_t *out_n);
void repo_manifest_ids_free(char **ids, size_t n);

/*
 * Turn what a user typed into a backup id: a full id, a unique prefix of
 * one (at least 8 characters), or "latest" (the newest; with kind and/or
 * source not NULL, the newest of that kind and source, which reads
 * manifests newest first until one matches).  PV_ENOTFOUND "no backup
 * '%s' in repository '%s'"; PV_EUSAGE for an ambiguous prefix.
 */
int repo_manifest_resolve(Repo *repo, const char *spec, const char *kind, const char *source,
						  char out[REPO_BACKUP_ID_LEN + 1]);

/* Load a manifest by id, unique prefix or "latest" (see resolve). */
int repo_manifest_load(RepoManifest **out, Repo *repo, const char *spec);
void repo_manifest_free(RepoManifest *m);	/* NULL ok */

const char *repo_manifest_id(const RepoManifest *m);
const char *repo_manifest_kind(const RepoManifest *m);
const char *repo_manifest_source(const RepoManifest *m);	/* "" if none */
const char *repo_manifest_host(const RepoManifest *m);
const char *repo_manifest_parent(const RepoManifest *m);	/* NULL if none */
PvTime repo_manifest_start_time(const RepoManifest *m);
PvTime repo_manifest_stop_time(const RepoManifest *m);
uint64_t repo_manifest_item_count(const RepoManifest *m);
/* The whole document, its "metadata" object and its "totals" object (lent). */
const struct json_t *repo_manifest_json(const RepoManifest *m);
const struct json_t *repo_manifest_metadata(const RepoManifest *m);
const struct json_t *repo_manifest_totals(const RepoManifest *m);
/* The tree blobs holding the item list, in order (lent). */
const RepoTreeRef *repo_manifest_tree(const RepoManifest *m, size_t *out_n);

/*
 * Store a manifest document (no overwrite: PV_EEXISTS if the id is taken).
 * The document must have a valid "id"; it is checked like a loaded one.
 */
int repo_manifest_write(Repo *repo, const struct json_t *doc);

/* Delete a backup's manifest (what expire does; the data goes with prune). */
int repo_manifest_delete(Repo *repo, const char *id);

/* ---- reading the item list ---- */

typedef struct RepoItemIter RepoItemIter;

int repo_item_iter_new(RepoItemIter **out, Repo *repo, const RepoManifest *m);
/* *out gets the next item (lent until the next call), or NULL at the end. */
int repo_item_iter_next(RepoItemIter *it, const RepoItem **out);
void repo_item_iter_free(RepoItemIter *it);	/* NULL ok */

/* Find an item by name (a scan of the list).  PV_ENOTFOUND. Caller frees *out. */
int repo_manifest_find_item(RepoItem **out, Repo *repo, const RepoManifest *m, const char *name);

#endif
