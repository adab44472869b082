/*
 * quarantine.h: blobs a verify found damaged, which the repository no
 * longer uses ("records/quarantine", docs/repository-format.md section 14).
 *
 * Why: blobs are content-addressed, so a backup stores a chunk only when the
 * index has no copy of it.  Without this record, a chunk that verify found
 * corrupt (a flipped bit in a pack, a pack lost from the bucket) would be
 * "already stored" for every later backup, and each new backup would be
 * damaged the same way: the runbooks' "take a new backup right after the
 * corruption" would not help.  Verify therefore records each damaged
 * (pack, blob) pair; every index load leaves those listings out, so
 *   - the next backup that meets the chunk stores it again, in a new pack,
 *     and with it every older backup that needs the chunk is whole again
 *     (same id, new place);
 *   - readers report the chunk missing instead of reading the bad copy;
 *   - prune counts the bad copy as garbage and repacks it away.
 *
 * The record is one metadata object (repo_meta_encode) holding JSON
 *   {"format":"pgvault-quarantine","version":1,
 *    "blobs":[{"pack":"<64 hex>","id":"<64 hex>","time":<unix seconds>}]}
 * sorted by (pack, id).  It is replaced whole with an atomic put; a save
 * merges what is stored (two verifies at once lose nothing but a narrow
 * race); entries of packs that no longer exist are dropped when saved.  A
 * record that cannot be decoded is ignored with a warning (the state before
 * this record existed) and replaced by the next verify that finds damage.
 *
 * Ownership: a set owns its entries.  Not thread-safe; the repository's
 * cached set (repo_quarantine) is only read once loaded.
 */
#ifndef PV_REPO_QUARANTINE_H
#define PV_REPO_QUARANTINE_H

#include "common/buf.h"
#include "repo/crypto.h"
#include "repo/pack.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;
typedef struct RepoIndex RepoIndex;

#define REPO_QUARANTINE_KEY "records/quarantine"
#define REPO_QUARANTINE_FORMAT "pgvault-quarantine"
#define REPO_QUARANTINE_VERSION 1

typedef struct RepoQuarantine RepoQuarantine;

RepoQuarantine *repo_quarantine_new(void);
void repo_quarantine_free(RepoQuarantine *q);	/* NULL ok */

/* Add (pack, id); a repeat keeps the earlier time. */
void repo_quarantine_add(RepoQuarantine *q, const unsigned char pack[REPO_ID_LEN],
						 const unsigned char id[REPO_ID_LEN], int64_t time);
bool repo_quarantine_has(const RepoQuarantine *q, const unsigned char pack[REPO_ID_LEN],
						 const unsigned char id[REPO_ID_LEN]);
/* Is id set aside in any pack?  (A linear look: for error messages.) */
bool repo_quarantine_has_id(const RepoQuarantine *q, const unsigned char id[REPO_ID_LEN]);
size_t repo_quarantine_count(const RepoQuarantine *q);	/* NULL: 0 */

/* Decode / encode the JSON text; decode fails with PV_ECORRUPT saying why. */
int repo_quarantine_decode(RepoQuarantine **out, const char *text, size_t len);
void repo_quarantine_encode(const RepoQuarantine *q, Buf *out);

/* Read the record of repo: an empty set when there is none. */
int repo_quarantine_load(RepoQuarantine **out, Repo *repo);

/*
 * Merge q into the stored record and write it, keeping only entries whose
 * pack keep() says still exists (keep NULL: all).  q becomes what was written.
 */
typedef bool (*RepoQuarantineKeepFn) (const unsigned char pack[REPO_ID_LEN], void *payload);
int repo_quarantine_save(RepoQuarantine *q, Repo *repo, RepoQuarantineKeepFn keep, void *payload);

/*
 * Add one pack's listing from an index file to idx (persisted), without the
 * blobs q holds for that pack.  Every loader of index files goes through
 * here, so no reader or writer ever sees a quarantined copy.
 */
void repo_quarantine_index_add(const RepoQuarantine *q, RepoIndex *idx,
							   const unsigned char pack[REPO_ID_LEN], const RepoPackEntry *entries,
							   size_t n);

#endif
