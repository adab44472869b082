/*
 * repo.h: a repository as one handle: create it (init), open it (config,
 * keys), and what every other repository module needs from it (storage,
 * keys, settings, the in-memory index, metadata object encoding).
 *
 * The format is docs/repository-format.md.  A Repo is safe to share between
 * threads once opened: its settings never change, the index has its own
 * lock, and the storage is thread-safe.
 *
 * Ownership: repo_open/repo_init hand out a Repo that the caller frees with
 * repo_free (which wipes the keys).  Getters lend pointers valid until then.
 * The index is loaded on first use (repo_index_get), once per Repo.
 */
#ifndef PV_REPO_REPO_H
#define PV_REPO_REPO_H

#include "common/buf.h"
#include "repo/chunker.h"
#include "repo/compress.h"
#include "repo/crypto.h"
#include "repo/index.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Repo Repo;

#define REPO_FORMAT_NAME "pgvault-repository"
#define REPO_FORMAT_VERSION 1
#define REPO_HEX_ID_LEN (2 * REPO_ID_LEN)

typedef struct RepoInitOpts
{
	const char *compression;	/* "zstd:3" (NULL = default), "lz4", "none" */
	bool encrypt;
	const char *passphrase;		/* required when encrypt; borrowed */
	const RepoChunkerParams *chunker;	/* NULL = defaults (seed ignored: 0, or the secret one) */
	uint64_t pack_size;			/* 0 = 16 MiB */
	const RepoKdfParams *kdf;	/* NULL = default scrypt cost (tests pass a small one) */
	const StorageOpenOpts *storage;	/* driver settings ([repo:NAME] keys); NULL = environment only */
} RepoInitOpts;

/*
 * Create a repository at url.  Refuses (PV_EEXISTS) when the location holds
 * a repository or any other object.  Writes the key file first and the
 * config last, so a crash leaves no half repository that opens.  If out is
 * not NULL it gets the new repository, opened.
 */
int repo_init(Repo **out, const char *url, const RepoInitOpts *opts);

/*
 * Where the passphrase comes from, asked only for encrypted repositories:
 * return 0 and a string the repository frees with pv_free_secret_str, or a
 * negative code (PV_ENOTFOUND: none configured).
 */
typedef int (*RepoPassphraseFn) (char **out, void *payload);

/* The usual provider: repo_passphrase_get(file, command) with payload a
   RepoPassphraseSource * (or NULL for the environment only). */
typedef struct RepoPassphraseSource
{
	const char *file;
	const char *command;
} RepoPassphraseSource;
int repo_passphrase_default(char **out, void *payload);

/*
 * Open the repository at url: read config, unlock the keys with the
 * passphrase (trying every key file), check the sealed config.
 * PV_ENOTFOUND "no repository at '%s'"; PV_EAUTH "wrong passphrase for
 * repository '%s'"; PV_EUSAGE when a passphrase is needed and none is
 * configured; PV_ECORRUPT for a damaged or tampered config.
 */
int repo_open(Repo **out, const char *url, RepoPassphraseFn get_passphrase, void *payload);
/* The same, with the storage driver's settings (NULL = environment only). */
int repo_open_opts(Repo **out, const char *url, const StorageOpenOpts *storage,
				   RepoPassphraseFn get_passphrase, void *payload);
void repo_free(Repo *repo);		/* NULL ok */

/* ---- what the other modules use ---- */

Storage *repo_storage(const Repo *repo);
const char *repo_url(const Repo *repo);		/* the storage's canonical form */
const char *repo_id(const Repo *repo);		/* 64 hex */
bool repo_is_encrypted(const Repo *repo);
const RepoKeys *repo_keys(const Repo *repo);	/* NULL when not encrypted */
const char *repo_key_id(const Repo *repo);	/* the key file that opened it ("" when plain) */
const RepoChunkerParams *repo_config_chunker(const Repo *repo);	/* seed included */
void repo_compression(const Repo *repo, RepoCompress *out, int *level_out);
uint64_t repo_pack_size(const Repo *repo);
/* The parsed config object (jansson json_t *, lent). */
struct json_t;
const struct json_t *repo_config_json(const Repo *repo);
/* This host's name (for locks and manifests). */
const char *repo_hostname(const Repo *repo);

/*
 * The in-memory index, loading every index file on first call (once per
 * Repo, thread-safe).  PV_ECORRUPT naming the file when one is damaged.
 */
int repo_index_get(Repo *repo, RepoIndex **out);

/*
 * Load index files written since the index was loaded (other processes'
 * backups), so dedup sees their chunks.  Call it holding a repository lock:
 * if an index file loaded earlier has disappeared, a prune ran and the
 * in-memory index may name deleted packs; that is PV_ERETRY ("open the
 * repository again").  A long-lived process (the daemon) must not write a
 * backup without this check.  Loads the index if it was not loaded yet.
 */
int repo_index_refresh(Repo *repo);

/*
 * Write every pack this process added to the index but no index file lists
 * yet into new index files (format rule 2).  Serialised: when it returns 0,
 * every pack flushed before the call is in a durable index file, whichever
 * thread flushed it.
 */
int repo_index_flush(Repo *repo);

/*
 * The quarantine record (quarantine.h), read once per Repo (thread-safe);
 * a damaged record counts as empty, with a warning.  Every index load
 * leaves its blobs out.  _replace hands repo a new set (verify, after it
 * saved one) for the loads that follow.
 */
typedef struct RepoQuarantine RepoQuarantine;
int repo_quarantine_get(Repo *repo, const RepoQuarantine **out);
void repo_quarantine_replace(Repo *repo, RepoQuarantine *q);

/* Encode / decode a standalone metadata object (zstd, empty aad). */
int repo_meta_encode(const Repo *repo, const void *data, size_t len, Buf *out);
int repo_meta_decode(const Repo *repo, const void *stored, size_t len, Buf *out);
/*
 * repo_meta_encode data and storage_put it under key (flags as storage_put:
 * 0 replaces, STORAGE_PUT_NO_OVERWRITE refuses with PV_EEXISTS).  Errors are
 * the encoder's or the storage's, unprefixed.
 */
int repo_meta_put(Repo *repo, const char *key, const void *data, size_t len, int flags);

/* ---- keys ---- */

typedef struct RepoKeyInfo
{
	const char *id;				/* 64 hex */
	int64_t mtime;				/* when it was written (storage time, 0 if unknown) */
	bool current;				/* the key that opened this Repo */
} RepoKeyInfo;
typedef int (*RepoKeyFn) (const RepoKeyInfo *info, void *payload);

/* Calls fn per key file, sorted by id.  PV_EUSAGE when not encrypted. */
int repo_key_list(Repo *repo, RepoKeyFn fn, void *payload);
/* Wrap the master keys with a new passphrase; out_id (may be NULL) gets its id. */
int repo_key_add(Repo *repo, const char *passphrase, const RepoKdfParams *kdf,
				 char out_id[REPO_HEX_ID_LEN + 1]);
/*
 * Remove the key file whose id starts with id_prefix (at least 4 hex).
 * PV_ENOTFOUND, PV_EUSAGE when the prefix is ambiguous, PV_EREFUSED for the
 * last key or the key in use.
 */
int repo_key_remove(Repo *repo, const char *id_prefix);

#endif
