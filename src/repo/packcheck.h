/*
 * packcheck.h: the pack-check record, which packs a verify has read, when,
 * and with what outcome ("records/packcheck", docs/repository-format.md
 * section 13).  It lets "pgvault verify --new / --sample" read only what
 * no verify has read lately, while every byte is still read within the
 * configured verify-period.
 *
 * The record is one metadata object (repo_meta_encode: zstd, checksummed,
 * encrypted in an encrypted repository) holding JSON:
 *   {"format":"pgvault-packcheck","version":1,"written":"<ISO UTC>",
 *    "packs":[{"id":"<64 hex>","time":<unix seconds>,"size":N,"ok":true}]}
 * with packs sorted by id.
 *
 * Rules:
 *  1. It is a cache of evidence, never needed to restore: a missing record
 *     means "no pack was ever read"; a damaged one is reported by
 *     repo_packchecks_load (PV_ECORRUPT) and verify then starts a new one
 *     (so the next --new run reads everything: the safe direction).
 *  2. It is replaced whole with an atomic put (storage_put), never edited in
 *     place: a reader sees the old record or the new one.
 *  3. An entry counts only for a pack that still exists with the same size:
 *     packs removed by prune or repack are ignored by readers and dropped
 *     when the record is next written (repo_packchecks_save's keep filter).
 *  4. Two verifies running at once both write it: save merges what is
 *     stored (newest entry per pack wins), so neither loses the other's
 *     work except in a narrow race, which only makes a later run read a
 *     pack again.
 *
 * Ownership: the set owns its entries; pointers it lends stay valid until
 * the next repo_packchecks_set or _free.  Not thread-safe.
 */
#ifndef PV_REPO_PACKCHECK_H
#define PV_REPO_PACKCHECK_H

#include "repo/crypto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;

#define REPO_PACKCHECK_KEY "records/packcheck"
#define REPO_PACKCHECK_FORMAT "pgvault-packcheck"
#define REPO_PACKCHECK_VERSION 1

typedef struct RepoPackCheck
{
	unsigned char id[REPO_ID_LEN];	/* the pack */
	int64_t time;				/* when a verify last read it (unix seconds) */
	uint64_t size;				/* its size then */
	bool ok;					/* no damage was found in it */
} RepoPackCheck;

typedef struct RepoPackChecks RepoPackChecks;

RepoPackChecks *repo_packchecks_new(void);
void repo_packchecks_free(RepoPackChecks *c);	/* NULL ok */

/*
 * Read the record of repo (an empty set when there is none).  PV_ECORRUPT
 * "pack-check record 'records/packcheck' ...: <why>" when it cannot be
 * decoded or has the wrong shape; storage errors as they come.
 */
int repo_packchecks_load(RepoPackChecks **out, Repo *repo);

/* Decode / encode the JSON text (what load and save store, before repo_meta_encode). */
int repo_packchecks_decode(RepoPackChecks **out, const char *text, size_t len);
void repo_packchecks_encode(const RepoPackChecks *c, Buf *out);

size_t repo_packchecks_count(const RepoPackChecks *c);
const RepoPackCheck *repo_packchecks_at(const RepoPackChecks *c, size_t i);	/* i < count */
const RepoPackCheck *repo_packchecks_find(const RepoPackChecks *c, const unsigned char id[REPO_ID_LEN]);

/* Add or replace the entry of e->id. */
void repo_packchecks_set(RepoPackChecks *c, const RepoPackCheck *e);

/* Whether an entry still describes a pack in the repository (rule 3). */
typedef bool (*RepoPackCheckKeepFn) (const RepoPackCheck *e, void *payload);

/*
 * Merge the stored record into c (rule 4: an entry stored with a later time
 * wins; a damaged stored record is ignored), drop every entry keep rejects
 * (keep NULL: keep all), and replace the record atomically.  c ends as what
 * was written.
 */
int repo_packchecks_save(RepoPackChecks *c, Repo *repo, RepoPackCheckKeepFn keep, void *payload);

#endif
