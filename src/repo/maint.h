/*
 * maint.h: helpers shared by the whole-repository maintenance passes
 * (verify, prune, stats, rebuild-index): an id set, per-pack tables found
 * by id (repo_idtable_get) and their index-side entries, sorted key listings,
 * parsing of object names, and loading the index files one by one (so a
 * damaged one is named and the set of files is known, which prune and
 * rebuild-index need to delete exactly the files they replace).
 *
 * RepoIdSet remembers "which ids have I seen" for millions of chunks, each
 * with a u32 value.  Memory: one dense array of 36 bytes per id (id 32, value 4) plus a 4-byte
 * slot per table position, the table kept at most 70 % full: about 45 to
 * 60 bytes per id.  Ids are uniformly distributed (SHA-256 or HMAC), so the
 * hash is simply the id's first 8 bytes.
 *
 * Not thread-safe: callers that fill a set from several threads hold their
 * own mutex.  Ownership: the set owns its memory; lent id pointers stay
 * valid until the next add or repo_idset_free.
 */
#ifndef PV_REPO_MAINT_H
#define PV_REPO_MAINT_H

#include "repo/crypto.h"
#include "repo/index.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct RepoIdSet RepoIdSet;

RepoIdSet *repo_idset_new(void);
void repo_idset_free(RepoIdSet *s);		/* NULL ok */

/*
 * Add id (value 0 when new) and return a pointer to its value, which the
 * caller may change (a counter, flags, an index into its own table).  *added
 * (may be NULL) tells whether the id was new.  The pointer is lent until the
 * next add.
 */
uint32_t *repo_idset_add(RepoIdSet *s, const unsigned char id[REPO_ID_LEN], bool *added);

/* The value of id, or NULL when the set does not hold it (lent until the next add). */
uint32_t *repo_idset_find(const RepoIdSet *s, const unsigned char id[REPO_ID_LEN]);
bool repo_idset_contains(const RepoIdSet *s, const unsigned char id[REPO_ID_LEN]);

size_t repo_idset_count(const RepoIdSet *s);

/* Call fn for every id in the order added; fn returns 0 to go on or a negative code to stop. */
typedef int (*RepoIdSetFn) (const unsigned char id[REPO_ID_LEN], uint32_t *value, void *payload);
int repo_idset_foreach(RepoIdSet *s, RepoIdSetFn fn, void *payload);

/*
 * A caller's table of per-pack records found by id (prune's PPack, verify's
 * VPack): items is an array of *n records of elem_size bytes, each with its
 * id as first member, and set maps an id to its record's number.  Returns
 * the array, moved when it grew, and in *out_num the number of id's record,
 * added zeroed (but for its id) at the end when id was new.  Pointers into
 * the array are valid until the next call.
 */
void *repo_idtable_get(void *items, size_t *n, size_t *cap, size_t elem_size, RepoIdSet *set,
					   const unsigned char id[REPO_ID_LEN], size_t *out_num);

/* ---- listings ---- */

/* Keys under a prefix, sorted (strcmp), with their sizes and times. */
typedef struct RepoKeyList
{
	char **keys;
	StorageInfo *info;
	size_t n;
	size_t cap;
} RepoKeyList;

int repo_keylist_get(RepoKeyList *out, Storage *st, const char *prefix);
void repo_keylist_free(RepoKeyList *l);	/* leaves it empty; safe twice */

/* "data/ab/ab12..." (64 hex, directory = first two digits) -> the pack id; false otherwise. */
bool repo_pack_key_parse(unsigned char out[REPO_ID_LEN], const char *key);
/* "index/<64 hex>" -> the name; false otherwise. */
bool repo_index_key_parse(unsigned char out[REPO_ID_LEN], const char *key);

/* SHA-256 (plain, whatever the repository) of data, as 64 hex digits. */
void repo_sha256_hex(char out[2 * REPO_ID_LEN + 1], const void *data, size_t len);

/* ---- index files one by one ---- */

typedef struct Repo Repo;

typedef struct RepoIndexFileStatus
{
	char *key;					/* "index/<hex>" */
	uint64_t size;
	size_t npacks;
	unsigned char (*packs)[REPO_ID_LEN];	/* the packs it lists (npacks), when sound */
	size_t nentries;
	int rc;						/* 0, or the error reading / checking it */
	char *error;				/* message when rc < 0 */
} RepoIndexFileStatus;

typedef struct RepoIndexFiles
{
	RepoIndexFileStatus *files;	/* sorted by key */
	size_t n;
	size_t nbad;
} RepoIndexFiles;

/*
 * Read every index file of repo into idx (a fresh repo_index_new, entries
 * marked persisted).  check_names: also require each object's name to be
 * the SHA-256 of its bytes.  A damaged file is recorded in out (rc, error)
 * and skipped; it fails the call (PV_ECORRUPT naming it) only when
 * stop_on_error.  Storage errors always fail the call.
 */
int repo_index_files_load(RepoIndexFiles *out, Repo *repo, RepoIndex *idx, bool check_names,
						  bool stop_on_error);
void repo_index_files_free(RepoIndexFiles *f);	/* leaves it empty */

/*
 * Append to a growing array of pack entries (*n used of *cap) the entry of
 * blob id that an index lookup or walk (hit) describes: the index-side view
 * of a pack that prune, verify and rebuild-index compare with the pack.
 */
void repo_pack_entry_append(RepoPackEntry **entries, size_t *n, size_t *cap,
							const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit);

/* One pack and its entries, for writing index files. */
typedef struct RepoPackRecord
{
	unsigned char id[REPO_ID_LEN];
	RepoPackEntry *entries;
	size_t n;
} RepoPackRecord;

/*
 * Write index files listing packs[0..n) (about REPO_INDEX_FILE_MAX_ENTRIES
 * entries each), durably, before returning.  The keys written are appended
 * to *written (may be NULL) so a caller replacing older files never deletes
 * one that came out with the same name (same bytes).
 */
int repo_index_files_write(Repo *repo, const RepoPackRecord *packs, size_t n,
						   RepoKeyList *written);

/* Store one index file plaintext (encode, name it, put); appends its key to written. */
int repo_index_file_store(Repo *repo, const void *plain, size_t len, RepoKeyList *written);

/* True if key is one of l's keys (l sorted or not: a linear look). */
bool repo_keylist_has(const RepoKeyList *l, const char *key);
void repo_keylist_add(RepoKeyList *l, const char *key, uint64_t size);

/* ---- blobs and manifests through a given index ---- */

/*
 * Decode the stored bytes of blob id and check them: the blob decodes (tag
 * verified when encrypted, aad = id), holds raw_length bytes, and its
 * recomputed id is id.  Appends the plaintext to out (unchanged on failure).
 * PV_ECORRUPT with a message naming no object (callers say which).
 */
int repo_blob_check(Repo *repo, const unsigned char id[REPO_ID_LEN], uint32_t raw_length,
					const void *stored, size_t len, Buf *out);

/*
 * Fetch blob id from the pack idx says holds it and check it as above.
 * PV_ECORRUPT "blob <id> is not in the index" / "blob <id> in pack <pack> is
 * corrupt: ..." / "pack <pack> holding blob <id> is missing".
 */
int repo_blob_fetch(Repo *repo, RepoIndex *idx, const unsigned char id[REPO_ID_LEN], Buf *out);

/*
 * Walk the item list of manifest m, fetching its tree blobs through idx
 * (not the repository's own index, so a pass that loaded the index files
 * itself sees exactly what it loaded).  tree_fn (may be NULL) is called for
 * each tree blob reference before it is fetched, item_fn (may be NULL) for
 * each item (lent until it returns).  Checks that the list holds exactly
 * the manifest's item count of well-formed lines.  Errors name the backup.
 */
struct RepoManifest;
struct RepoItem;
struct RepoTreeRef;
typedef int (*RepoWalkTreeFn) (const struct RepoTreeRef *ref, void *payload);
typedef int (*RepoWalkItemFn) (const struct RepoItem *item, void *payload);
int repo_manifest_walk(Repo *repo, RepoIndex *idx, const struct RepoManifest *m,
					   RepoWalkTreeFn tree_fn, RepoWalkItemFn item_fn, void *payload);

#endif
