/*
 * repo.c: creating and opening repositories (config object, key files,
 * sealed config), key management, loading and flushing the index, and the
 * encoding of standalone metadata objects.  Format: docs/repository-format.md
 * sections 1-3, 6 and 9.
 *
 * Invariants of an open Repo:
 *   - settings (compression, pack size, chunker parameters, keys) are fixed
 *     at open and read without locks;
 *   - index is NULL until the first repo_index_get, which loads every index
 *     file under index_mu; afterwards it never changes identity and only
 *     grows (repo_index_refresh adds files written by others since);
 *     index_files names the files it holds (sorted), also under index_mu;
 *   - flush_mu serialises repo_index_flush from start to end, so a flush
 *     that returns has seen every earlier flush's files become durable.
 */
#include "repo/repo.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "repo/blob.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/quarantine.h"
#include "pv_build.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_KEY "config"
#define CONFIG_AAD "pgvault-config"
#define META_ZSTD_LEVEL 3

struct Repo
{
	Storage *st;
	char id[REPO_HEX_ID_LEN + 1];
	bool encrypted;
	RepoKeys *keys;
	char key_id[REPO_HEX_ID_LEN + 1];
	RepoCompress compress;
	int level;
	uint64_t pack_size;
	RepoChunkerParams chunker;
	json_t *config;
	char hostname[256];

	pthread_mutex_t index_mu;
	RepoIndex *index;
	char **index_files;			/* sorted names of the index files in index */
	size_t nindex_files;
	pthread_mutex_t flush_mu;
	/* blobs verify found damaged, left out of every index load (quarantine.h) */
	pthread_mutex_t quarantine_mu;
	RepoQuarantine *quarantine;	/* NULL until loaded */
};

/* ---- small helpers ---- */

static Repo *
repo_alloc(Storage *st)
{
	Repo *repo = PV_NEW(Repo);

	repo->st = st;
	pthread_mutex_init(&repo->index_mu, NULL);
	pthread_mutex_init(&repo->flush_mu, NULL);
	pthread_mutex_init(&repo->quarantine_mu, NULL);
	if (gethostname(repo->hostname, sizeof(repo->hostname) - 1) != 0)
		strcpy(repo->hostname, "unknown");
	return repo;
}

void
repo_free(Repo *repo)
{
	if (repo == NULL)
		return;
	if (repo->keys != NULL)
	{
		repo_keys_wipe(repo->keys);
		pv_free_secret(repo->keys, sizeof(RepoKeys));
	}
	repo_index_free(repo->index);
	for (size_t i = 0; i < repo->nindex_files; i++)
		pv_free(repo->index_files[i]);
	pv_free(repo->index_files);
	json_decref(repo->config);
	storage_free(repo->st);
	pthread_mutex_destroy(&repo->index_mu);
	pthread_mutex_destroy(&repo->flush_mu);
	pthread_mutex_destroy(&repo->quarantine_mu);
	repo_quarantine_free(repo->quarantine);
	pv_free(repo);
}

static void
sha256_hex(char out[REPO_HEX_ID_LEN + 1], const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	repo_id_hex(out, md);
}

/* Stops a storage listing at its first key. */
static int
list_any(const char *key, const StorageInfo *info, void *payload)
{
	*(bool *) payload = true;
	return PV_ECANCEL;	/* stops the listing; storage_has_any knows it */
}

static int
storage_has_any(Storage *st, const char *prefix, bool *out)
{
	int rc;

	*out = false;
	rc = storage_list(st, prefix, list_any, out);
	if (rc == PV_ECANCEL && *out)
	{
		pv_error_clear();
		rc = 0;
	}
	return rc;
}

/* ---- config ---- */

static json_t *
config_build(const Repo *repo, PvTime created)
{
	char when[PV_TIME_FORMAT_MAX];
	char comp[32];
	json_t *chunker;
	json_t *cfg;

	if (repo->compress == REPO_COMPRESS_NONE)
		snprintf(comp, sizeof(comp), "none");
	else
		snprintf(comp, sizeof(comp), "%s:%d", repo_compress_name(repo->compress), repo->level);
	chunker = json_pack("{s:s, s:I, s:I, s:I}", "algorithm", "fastcdc-gear64",
						"min_size", (json_int_t) repo->chunker.min_size,
						"avg_size", (json_int_t) repo->chunker.avg_size,
						"max_size", (json_int_t) repo->chunker.max_size);
	if (!repo->encrypted)
	{
		char seed[17];

		snprintf(seed, sizeof(seed), "%016llx", (unsigned long long) repo->chunker.seed);
		json_object_set_new(chunker, "seed", json_string(seed));
	}
	cfg = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:o}",
					"format", REPO_FORMAT_NAME, "version", REPO_FORMAT_VERSION,
					"id", repo->id, "created", pv_time_format_utc(when, sizeof(when), created),
					"encryption", repo->encrypted ? "aes-256-gcm" : "none",
					"ids", repo->encrypted ? "hmac-sha256" : "sha256",
					"compression", comp, "pack_size", (json_int_t) repo->pack_size,
					"chunker", chunker);
	return cfg;
}

/* Canonical text of the config without "sealed": what the seal covers. */
static char *
config_canonical(const json_t *cfg)
{
	json_t *copy = json_deep_copy(cfg);
	char *text;

	json_object_del(copy, "sealed");
	text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	return text;
}

static int
config_seal(Repo *repo)
{
	char *text = config_canonical(repo->config);
	Buf sealed = PV_BUF_INIT;
	char *hex;
	int rc;

	if ((rc = repo_aead_seal(repo->keys, CONFIG_AAD, strlen(CONFIG_AAD), text, strlen(text),
							 &sealed)) < 0)
		goto done;
	hex = pv_malloc(2 * sealed.len + 1);
	pv_hex_encode(hex, sealed.data, sealed.len);
	json_object_set_new(repo->config, "sealed", json_string(hex));
	pv_free(hex);
done:
	free(text);
	buf_free(&sealed);
	return rc;
}

/* The sealed copy must open and equal the plaintext members (format section 2). */
static int
config_check_seal(Repo *repo)
{
	const char *hex = json_string_value(json_object_get(repo->config, "sealed"));
	char *text = NULL;
	unsigned char *raw = NULL;
	Buf plain = PV_BUF_INIT;
	size_t hexlen;
	int rc = 0;

	if (hex == NULL || (hexlen = strlen(hex)) % 2 != 0 || hexlen < 2)
	{
		rc = pv_error_set(PV_ECORRUPT, "config of repository '%s' has no valid sealed copy",
						  storage_url(repo->st));
		goto done;
	}
	raw = pv_malloc(hexlen / 2);
	if (pv_hex_decode(raw, hexlen / 2, hex) != 0 ||
		repo_aead_open(repo->keys, CONFIG_AAD, strlen(CONFIG_AAD), raw, hexlen / 2, &plain) < 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "the sealed copy of the config of repository '%s' "
						  "does not authenticate", storage_url(repo->st));
		goto done;
	}
	text = config_canonical(repo->config);
	if (plain.len != strlen(text) || memcmp(plain.data, text, plain.len) != 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "the config of repository '%s' was modified: it differs "
						  "from its sealed copy", storage_url(repo->st));
		pv_error_hint("someone with write access to the storage changed 'config'; restore it "
					  "from a copy, or compare it with the sealed copy");
	}
done:
	free(text);
	pv_free(raw);
	buf_free(&plain);
	return rc;
}

static int
config_bad(const Repo *repo, const char *what)
{
	return pv_error_set(PV_ECORRUPT, "config of repository '%s' is invalid: %s",
						storage_url(repo->st), what);
}

/* Read the settings from repo->config into the Repo (the seed comes later for encrypted). */
static int
config_parse(Repo *repo)
{
	const char *format = NULL, *id = NULL, *enc = NULL, *comp = NULL, *seed = NULL;
	json_int_t version = 0, pack_size = 0, min = 0, avg = 0, max = 0;
	json_error_t err;

	if (json_unpack_ex(repo->config, &err, 0, "{s:s, s:I, s:s, s:s, s:s, s:I, s:{s:I, s:I, s:I}}",
					   "format", &format, "version", &version, "id", &id,
					   "encryption", &enc, "compression", &comp, "pack_size", &pack_size,
					   "chunker", "min_size", &min, "avg_size", &avg, "max_size", &max) != 0)
		return config_bad(repo, err.text);
	if (strcmp(format, REPO_FORMAT_NAME) != 0)
		return config_bad(repo, "not a pgvault repository");
	if (version > REPO_FORMAT_VERSION || version < 1)
		return pv_error_set(PV_ECONFIG, "repository '%s' has format version %lld, this pgvault "
							"reads version %d", storage_url(repo->st), (long long) version,
							REPO_FORMAT_VERSION);
	if (strlen(id) != REPO_HEX_ID_LEN)
		return config_bad(repo, "bad id");
	memcpy(repo->id, id, sizeof(repo->id));
	if (strcmp(enc, "aes-256-gcm") == 0)
		repo->encrypted = true;
	else if (strcmp(enc, "none") != 0)
		return config_bad(repo, "unknown encryption");
	if (repo_compress_parse(&repo->compress, &repo->level, comp) < 0)
		return config_bad(repo, "unknown compression");
	if (pack_size < REPO_PACK_SIZE_MIN || pack_size > REPO_PACK_SIZE_MAX)
		return config_bad(repo, "pack_size out of range");
	repo->pack_size = (uint64_t) pack_size;
	if (min <= 0 || avg <= 0 || max <= 0 || max > UINT32_MAX)
		return config_bad(repo, "bad chunker sizes");
	repo->chunker.min_size = (uint32_t) min;
	repo->chunker.avg_size = (uint32_t) avg;
	repo->chunker.max_size = (uint32_t) max;
	repo->chunker.seed = 0;
	if (!repo->encrypted)
	{
		seed = json_string_value(json_object_get(json_object_get(repo->config, "chunker"), "seed"));
		if (seed != NULL)
			repo->chunker.seed = strtoull(seed, NULL, 16);
	}
	if (repo_chunker_params_check(&repo->chunker) < 0)
		return config_bad(repo, "bad chunker sizes");
	return 0;
}

/* ---- init ---- */

int
repo_init(Repo **out, const char *url, const RepoInitOpts *opts)
{
	Repo *repo = NULL;
	Storage *st = NULL;
	char *text = NULL;
	unsigned char rid[REPO_ID_LEN];
	bool exists;
	int rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = storage_open_opts(&st, url, opts->storage)) < 0)
		return rc;
	repo = repo_alloc(st);
	if ((rc = storage_exists(st, CONFIG_KEY, &exists)) < 0)
		goto done;
	if (exists)
	{
		rc = pv_error_set(PV_EEXISTS, "a repository already exists at '%s'", storage_url(st));
		goto done;
	}
	if ((rc = storage_has_any(st, "", &exists)) < 0)
		goto done;
	if (exists)
	{
		rc = pv_error_set(PV_EEXISTS, "'%s' is not empty: refusing to create a repository there",
						  storage_url(st));
		pv_error_hint("choose an empty or new location");
		goto done;
	}

	/* Settings. */
	if ((rc = repo_compress_parse(&repo->compress, &repo->level,
								  opts->compression ? opts->compression : "zstd:3")) < 0)
		goto done;
	repo->pack_size = opts->pack_size ? opts->pack_size : REPO_PACK_SIZE_DEFAULT;
	if (repo->pack_size < REPO_PACK_SIZE_MIN || repo->pack_size > REPO_PACK_SIZE_MAX)
	{
		rc = pv_error_set(PV_EUSAGE, "pack size %llu is out of range (4 KiB to 1 GiB)",
						  (unsigned long long) repo->pack_size);
		goto done;
	}
	if (opts->chunker != NULL)
		repo->chunker = *opts->chunker;
	else
		repo_chunker_params_default(&repo->chunker);
	repo->chunker.seed = 0;
	if ((rc = repo_chunker_params_check(&repo->chunker)) < 0)
		goto done;
	if ((rc = pv_random_bytes(rid, sizeof(rid))) < 0)
		goto done;
	repo_id_hex(repo->id, rid);

	/* Only init creates the location itself (a directory): see storage_create. */
	if ((rc = storage_create(st)) < 0)
		goto done;

	/* Keys first: a crash before the config leaves nothing that opens. */
	if (opts->encrypt)
	{
		if (opts->passphrase == NULL || opts->passphrase[0] == '\0')
		{
			rc = pv_error_set(PV_EUSAGE, "an encrypted repository needs a passphrase");
			goto done;
		}
		repo->encrypted = true;
		repo->keys = pv_malloc(sizeof(RepoKeys));
		repo_keys_generate(repo->keys);
		repo->chunker.seed = repo_keys_chunker_seed(repo->keys);
		if ((rc = repo_key_add(repo, opts->passphrase, opts->kdf, repo->key_id)) < 0)
			goto done;
	}

	repo->config = config_build(repo, pv_time_now());
	if (repo->encrypted && (rc = config_seal(repo)) < 0)
		goto done;
	text = json_dumps(repo->config, JSON_INDENT(2));
	if ((rc = storage_put(st, CONFIG_KEY, text, strlen(text), STORAGE_PUT_NO_OVERWRITE)) < 0)
	{
		if (rc == PV_EEXISTS)
			rc = pv_error_set(PV_EEXISTS, "a repository already exists at '%s'", storage_url(st));
		goto done;
	}
	pv_log_detail("created repository %s at '%s'", repo->id, storage_url(st));
	if (out != NULL)
	{
		*out = repo;
		repo = NULL;
	}
done:
	free(text);
	repo_free(repo);	/* owns st once allocated */
	return rc;
}

/* ---- open ---- */

int
repo_passphrase_default(char **out, void *payload)
{
	const RepoPassphraseSource *src = payload;

	return repo_passphrase_get(out, src ? src->file : NULL, src ? src->command : NULL);
}

typedef struct KeyNames
{
	char **names;
	size_t n;
} KeyNames;

static int
key_names_add(const char *key, const StorageInfo *info, void *payload)
{
	KeyNames *k = payload;

	k->names = pv_realloc(k->names, (k->n + 1) * sizeof(char *));
	k->names[k->n++] = pv_strdup(key);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
key_names_free(KeyNames *k)
{
	for (size_t i = 0; i < k->n; i++)
		pv_free(k->names[i]);
	pv_free(k->names);
	k->names = NULL;
	k->n = 0;
}

static int
key_names_list(Storage *st, KeyNames *out)
{
	int rc;

	out->names = NULL;
	out->n = 0;
	if ((rc = storage_list(st, "keys/", key_names_add, out)) < 0)
		key_names_free(out);
	else if (out->n > 1)
		pv_qsort(out->names, out->n, sizeof(char *), cmp_str);
	return rc;
}

/* Try the passphrase on every key file; the first that opens wins. */
static int
repo_unlock(Repo *repo, RepoPassphraseFn get_passphrase, void *payload)
{
	KeyNames names = {NULL, 0};
	char *pass = NULL;
	Buf file = PV_BUF_INIT;
	int rc;

	if ((rc = key_names_list(repo->st, &names)) < 0)
		goto done;
	if (names.n == 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "encrypted repository '%s' has no key files",
						  storage_url(repo->st));
		goto done;
	}
	rc = get_passphrase ? get_passphrase(&pass, payload) : PV_ENOTFOUND;
	if (rc == PV_ENOTFOUND)
	{
		rc = pv_error_set(PV_EUSAGE, "repository '%s' is encrypted and no passphrase was given",
						  storage_url(repo->st));
		pv_error_hint("set PGVAULT_PASSPHRASE, PGVAULT_PASSPHRASE_FILE or "
					  "PGVAULT_PASSPHRASE_COMMAND, or passphrase-file in the configuration");
		goto done;
	}
	if (rc < 0)
		goto done;
	repo->keys = pv_malloc(sizeof(RepoKeys));
	rc = PV_EAUTH;
	for (size_t i = 0; i < names.n && rc == PV_EAUTH; i++)
	{
		buf_reset(&file);
		if ((rc = storage_get(repo->st, names.names[i], &file)) < 0)
		{
			if (rc == PV_ENOTFOUND)	/* removed meanwhile by key remove */
				rc = PV_EAUTH;
			continue;
		}
		rc = repo_keyfile_open(repo->keys, (const char *) file.data, file.len, pass);
		if (rc == PV_ECORRUPT)
		{
			pv_log_warn("key file '%s' of repository '%s' is damaged: %s", names.names[i],
						storage_url(repo->st), pv_error_msg());
			rc = PV_EAUTH;
		}
		else if (rc == 0)
			snprintf(repo->key_id, sizeof(repo->key_id), "%s", names.names[i] + strlen("keys/"));
	}
	if (rc == PV_EAUTH)
		rc = pv_error_set(PV_EAUTH, "wrong passphrase for repository '%s'", storage_url(repo->st));
	if (rc < 0)
		goto done;
	repo->chunker.seed = repo_keys_chunker_seed(repo->keys);
	rc = config_check_seal(repo);
done:
	if (pass != NULL)
		pv_free_secret_str(pass);
	key_names_free(&names);
	buf_free(&file);
	return rc;
}

int
repo_open(Repo **out, const char *url, RepoPassphraseFn get_passphrase, void *payload)
{
	return repo_open_opts(out, url, NULL, get_passphrase, payload);
}

int
repo_open_opts(Repo **out, const char *url, const StorageOpenOpts *storage,
			   RepoPassphraseFn get_passphrase, void *payload)
{
	Storage *st = NULL;
	Repo *repo = NULL;
	Buf text = PV_BUF_INIT;
	json_error_t err;
	int rc;

	*out = NULL;
	if ((rc = storage_open_opts(&st, url, storage)) < 0)
		return rc;
	repo = repo_alloc(st);
	if ((rc = storage_get(st, CONFIG_KEY, &text)) < 0)
	{
		if (rc == PV_ENOTFOUND)
		{
			rc = pv_error_set(PV_ENOTFOUND, "no repository at '%s'", storage_url(st));
			pv_error_hint("create one with 'pgvault init --repo %s'", url);
		}
		goto done;
	}
	repo->config = json_loadb((const char *) text.data, text.len, 0, &err);
	if (repo->config == NULL || !json_is_object(repo->config))
	{
		rc = config_bad(repo, repo->config ? "not a JSON object" : err.text);
		goto done;
	}
	if ((rc = config_parse(repo)) < 0)
		goto done;
	if (repo->encrypted)
		rc = repo_unlock(repo, get_passphrase, payload);
	else
	{
		bool any;

		/* Keys beside a plaintext config: someone turned encryption off. */
		if ((rc = storage_has_any(st, "keys/", &any)) == 0 && any)
			rc = pv_error_set(PV_ECORRUPT, "config of repository '%s' says it is not encrypted, "
							  "but it has key files", storage_url(st));
	}
	if (rc < 0)
		goto done;
	*out = repo;
	repo = NULL;
done:
	buf_free(&text);
	repo_free(repo);	/* frees st too */
	return rc;
}

/* ---- getters ---- */

Storage *
repo_storage(const Repo *repo)
{
	return repo->st;
}

const char *
repo_url(const Repo *repo)
{
	return storage_url(repo->st);
}

const char *
repo_id(const Repo *repo)
{
	return repo->id;
}

bool
repo_is_encrypted(const Repo *repo)
{
	return repo->encrypted;
}

const RepoKeys *
repo_keys(const Repo *repo)
{
	return repo->keys;
}

const char *
repo_key_id(const Repo *repo)
{
	return repo->key_id;
}

const RepoChunkerParams *
repo_config_chunker(const Repo *repo)
{
	return &repo->chunker;
}

void
repo_compression(const Repo *repo, RepoCompress *out, int *level_out)
{
	*out = repo->compress;
	*level_out = repo->level;
}

uint64_t
repo_pack_size(const Repo *repo)
{
	return repo->pack_size;
}

const json_t *
repo_config_json(const Repo *repo)
{
	return repo->config;
}

const char *
repo_hostname(const Repo *repo)
{
	return repo->hostname;
}

/* ---- metadata objects ---- */

/*
 * Standalone metadata objects carry their own checksum (format section 4):
 * the blob's plaintext is D || SHA-256(D).  Data blobs are checked by their
 * id; without this a flipped bit inside a zstd frame of a plaintext
 * repository's manifest could go unnoticed.
 */
int
repo_meta_encode(const Repo *repo, const void *data, size_t len, Buf *out)
{
	Buf framed = PV_BUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	int rc;

	buf_reserve(&framed, len + 32);
	buf_append(&framed, data, len);
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	buf_append(&framed, md, 32);
	rc = repo_blob_encode(out, repo->keys, REPO_COMPRESS_ZSTD, META_ZSTD_LEVEL, NULL, 0,
						  framed.data, framed.len);
	buf_free(&framed);
	return rc;
}

int
repo_meta_decode(const Repo *repo, const void *stored, size_t len, Buf *out)
{
	Buf framed = PV_BUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	int rc;

	if ((rc = repo_blob_decode(&framed, repo->keys, NULL, 0, stored, len, 0)) < 0)
		goto done;
	if (framed.len < 32)
	{
		rc = pv_error_set(PV_ECORRUPT, "object too short for its checksum (%zu bytes)", framed.len);
		goto done;
	}
	EVP_Digest(framed.data, framed.len - 32, md, &mdlen, EVP_sha256(), NULL);
	if (memcmp(md, framed.data + framed.len - 32, 32) != 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "checksum mismatch");
		goto done;
	}
	buf_append(out, framed.data, framed.len - 32);
done:
	buf_free(&framed);
	return rc;
}

int
repo_meta_put(Repo *repo, const char *key, const void *data, size_t len, int flags)
{
	Buf stored = PV_BUF_INIT;
	int rc;

	if ((rc = repo_meta_encode(repo, data, len, &stored)) >= 0)
		rc = storage_put(repo->st, key, stored.data, stored.len, flags);
	buf_free(&stored);
	return rc;
}

/* ---- index ---- */

/* Sorted names of the index files loaded into repo->index; index_mu held. */
static bool
index_file_known(const Repo *repo, const char *key, size_t *pos)
{
	size_t lo = 0, hi = repo->nindex_files;

	while (lo < hi)
	{
		size_t mid = (lo + hi) / 2;
		int c = strcmp(repo->index_files[mid], key);

		if (c == 0)
		{
			*pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return false;
}

static void
index_file_remember(Repo *repo, const char *key)
{
	size_t pos;

	if (index_file_known(repo, key, &pos))
		return;
	repo->index_files = pv_realloc(repo->index_files, (repo->nindex_files + 1) * sizeof(char *));
	memmove(repo->index_files + pos + 1, repo->index_files + pos,
			(repo->nindex_files - pos) * sizeof(char *));
	repo->index_files[pos] = pv_strdup(key);
	repo->nindex_files++;
}

typedef struct IndexNames
{
	char **keys;
	size_t n;
} IndexNames;

static int
index_names_add(const char *key, const StorageInfo *info, void *payload)
{
	IndexNames *l = payload;

	l->keys = pv_realloc(l->keys, (l->n + 1) * sizeof(char *));
	l->keys[l->n++] = pv_strdup(key);
	return 0;
}

typedef struct IndexLoad
{
	RepoIndex *idx;
	const RepoQuarantine *q;
} IndexLoad;

static int
index_add_pack_cb(const unsigned char pack_id[REPO_ID_LEN], const RepoPackEntry *entries,
				  size_t n, void *payload)
{
	IndexLoad *l = payload;

	repo_quarantine_index_add(l->q, l->idx, pack_id, entries, n);
	return 0;
}

int
repo_quarantine_get(Repo *repo, const RepoQuarantine **out)
{
	int rc = PV_OK;

	pthread_mutex_lock(&repo->quarantine_mu);
	if (repo->quarantine == NULL)
	{
		rc = repo_quarantine_load(&repo->quarantine, repo);
		if (rc == PV_ECORRUPT)
		{
			/* the state before the record existed: damaged copies may be reused */
			pv_log_warn("%s: damaged blobs are not left out of this run; the next verify that "
						   "finds damage writes a new record", pv_error_msg());
			pv_error_clear();
			repo->quarantine = repo_quarantine_new();
			rc = PV_OK;
		}
	}
	*out = repo->quarantine;
	pthread_mutex_unlock(&repo->quarantine_mu);
	return rc;
}

void
repo_quarantine_replace(Repo *repo, RepoQuarantine *q)
{
	pthread_mutex_lock(&repo->quarantine_mu);
	repo_quarantine_free(repo->quarantine);
	repo->quarantine = q;
	pthread_mutex_unlock(&repo->quarantine_mu);
}

/*
 * Load the index files not loaded yet into idx (index_mu held).  *vanished
 * tells whether a file loaded earlier is gone (a prune rewrote the index).
 */
static int
index_load_new(Repo *repo, RepoIndex *idx, bool *vanished)
{
	IndexNames l = {NULL, 0};
	IndexLoad load = {idx, NULL};
	Buf stored = PV_BUF_INIT;
	Buf plain = PV_BUF_INIT;
	size_t still = 0, loaded = 0, pos;
	int rc;

	*vanished = false;
	if ((rc = repo_quarantine_get(repo, &load.q)) < 0 ||
		(rc = storage_list(repo->st, "index/", index_names_add, &l)) < 0)
		goto done;
	for (size_t i = 0; i < l.n; i++)
	{
		if (index_file_known(repo, l.keys[i], &pos))
		{
			still++;
			continue;
		}
		buf_reset(&stored);
		buf_reset(&plain);
		if ((rc = storage_get(repo->st, l.keys[i], &stored)) < 0)
		{
			if (rc == PV_ENOTFOUND)	/* replaced by a prune meanwhile */
			{
				rc = 0;
				continue;
			}
			goto done;
		}
		if ((rc = repo_meta_decode(repo, stored.data, stored.len, &plain)) < 0 ||
			(rc = repo_index_file_parse(plain.data, plain.len, index_add_pack_cb, &load)) < 0)
		{
			rc = pv_error_prefix(PV_ECORRUPT, "index file '%s' of repository '%s' is corrupt",
								 l.keys[i], storage_url(repo->st));
			pv_error_hint("run 'pgvault repo rebuild-index' to rebuild the index from the packs");
			goto done;
		}
		index_file_remember(repo, l.keys[i]);
		loaded++;
	}
	*vanished = still < repo->nindex_files - loaded;
	pv_log_debug("loaded %zu index files: %zu blobs in %zu packs", loaded, repo_index_count(idx),
				 repo_index_pack_count(idx));
done:
	for (size_t i = 0; i < l.n; i++)
		pv_free(l.keys[i]);
	pv_free(l.keys);
	buf_free(&stored);
	buf_free(&plain);
	return rc;
}

int
repo_index_get(Repo *repo, RepoIndex **out)
{
	bool vanished;
	int rc = 0;

	pthread_mutex_lock(&repo->index_mu);
	if (repo->index == NULL)
	{
		RepoIndex *idx = repo_index_new();

		if ((rc = index_load_new(repo, idx, &vanished)) < 0)
		{
			repo_index_free(idx);
			for (size_t i = 0; i < repo->nindex_files; i++)
				pv_free(repo->index_files[i]);
			repo->nindex_files = 0;
		}
		else
			repo->index = idx;
	}
	*out = repo->index;
	pthread_mutex_unlock(&repo->index_mu);
	return rc;
}

int
repo_index_refresh(Repo *repo)
{
	RepoIndex *idx;
	bool vanished = false;
	bool fresh;
	int rc;

	pthread_mutex_lock(&repo->index_mu);
	fresh = repo->index == NULL;
	pthread_mutex_unlock(&repo->index_mu);
	if ((rc = repo_index_get(repo, &idx)) < 0 || fresh)
		return rc;
	pthread_mutex_lock(&repo->index_mu);
	rc = index_load_new(repo, idx, &vanished);
	pthread_mutex_unlock(&repo->index_mu);
	if (rc == 0 && vanished)
	{
		rc = pv_error_set(PV_ERETRY, "index files of repository '%s' were replaced since this process "
						  "read them (a prune ran)", storage_url(repo->st));
		pv_error_hint("open the repository again to see the current index");
	}
	return rc;
}

int
repo_index_flush(Repo *repo)
{
	RepoIndex *idx;
	RepoIndexFlush *f;
	Buf stored = PV_BUF_INIT;
	int rc;

	if ((rc = repo_index_get(repo, &idx)) < 0)
		return rc;
	pthread_mutex_lock(&repo->flush_mu);
	f = repo_index_flush_begin(idx);
	for (size_t i = 0; i < f->nfiles; i++)
	{
		char key[6 + REPO_HEX_ID_LEN + 1];

		buf_reset(&stored);
		if ((rc = repo_meta_encode(repo, f->files[i].data, f->files[i].len, &stored)) < 0)
			break;
		memcpy(key, "index/", 6);
		sha256_hex(key + 6, stored.data, stored.len);
		rc = storage_put(repo->st, key, stored.data, stored.len, STORAGE_PUT_NO_OVERWRITE);
		if (rc == PV_EEXISTS)	/* same name, same bytes */
			rc = 0;
		if (rc < 0)
		{
			rc = pv_error_prefix(rc, "cannot write index file to repository '%s'",
								 storage_url(repo->st));
			break;
		}
		pthread_mutex_lock(&repo->index_mu);
		index_file_remember(repo, key);	/* its entries are in memory already */
		pthread_mutex_unlock(&repo->index_mu);
	}
	/* A partly written set is handed back whole: rewriting an entry twice is harmless. */
	repo_index_flush_end(idx, f, rc == 0);
	pthread_mutex_unlock(&repo->flush_mu);
	buf_free(&stored);
	return rc;
}

/* ---- keys ---- */

int
repo_key_add(Repo *repo, const char *passphrase, const RepoKdfParams *kdf,
			 char out_id[REPO_HEX_ID_LEN + 1])
{
	Buf file = PV_BUF_INIT;
	char key[5 + REPO_HEX_ID_LEN + 1];
	int rc;

	if (!repo->encrypted)
		return pv_error_set(PV_EUSAGE, "repository '%s' is not encrypted: it has no keys",
							storage_url(repo->st));
	rc = kdf ? repo_keyfile_create_with(&file, repo->keys, passphrase, kdf)
		: repo_keyfile_create(&file, repo->keys, passphrase);
	if (rc < 0)
		goto done;
	memcpy(key, "keys/", 5);
	sha256_hex(key + 5, file.data, file.len);
	if ((rc = storage_put(repo->st, key, file.data, file.len, STORAGE_PUT_NO_OVERWRITE)) < 0)
		goto done;
	if (out_id != NULL)
		memcpy(out_id, key + 5, REPO_HEX_ID_LEN + 1);
done:
	buf_free(&file);
	return rc;
}

int
repo_key_list(Repo *repo, RepoKeyFn fn, void *payload)
{
	KeyNames names = {NULL, 0};
	int rc;

	if (!repo->encrypted)
		return pv_error_set(PV_EUSAGE, "repository '%s' is not encrypted: it has no keys",
							storage_url(repo->st));
	if ((rc = key_names_list(repo->st, &names)) < 0)
		return rc;
	for (size_t i = 0; i < names.n && rc == 0; i++)
	{
		StorageInfo info = {0, 0};
		RepoKeyInfo ki;

		if (storage_stat(repo->st, names.names[i], &info) == PV_ENOTFOUND)
			continue;
		ki.id = names.names[i] + strlen("keys/");
		ki.mtime = info.mtime;
		ki.current = strcmp(ki.id, repo->key_id) == 0;
		rc = fn(&ki, payload);
	}
	key_names_free(&names);
	return rc;
}

int
repo_key_remove(Repo *repo, const char *id_prefix)
{
	KeyNames names = {NULL, 0};
	const char *match = NULL;
	size_t plen = strlen(id_prefix);
	int rc;

	if (!repo->encrypted)
		return pv_error_set(PV_EUSAGE, "repository '%s' is not encrypted: it has no keys",
							storage_url(repo->st));
	if (plen < 4 || plen > REPO_HEX_ID_LEN)
		return pv_error_set(PV_EUSAGE, "key id '%s' is too short: give at least 4 hex digits",
							id_prefix);
	if ((rc = key_names_list(repo->st, &names)) < 0)
		return rc;
	for (size_t i = 0; i < names.n; i++)
	{
		const char *id = names.names[i] + strlen("keys/");

		if (strncmp(id, id_prefix, plen) != 0)
			continue;
		if (match != NULL)
		{
			rc = pv_error_set(PV_EUSAGE, "key id '%s' is ambiguous: it matches '%s' and '%s'",
							  id_prefix, match, id);
			goto done;
		}
		match = id;
	}
	if (match == NULL)
	{
		rc = pv_error_set(PV_ENOTFOUND, "no key '%s' in repository '%s'", id_prefix,
						  storage_url(repo->st));
		goto done;
	}
	if (names.n == 1)
	{
		rc = pv_error_set(PV_EREFUSED, "key '%s' is the last key of repository '%s': removing it "
						  "would make every backup unreadable", match, storage_url(repo->st));
		pv_error_hint("add another key first with 'pgvault key add'");
		goto done;
	}
	if (strcmp(match, repo->key_id) == 0)
	{
		rc = pv_error_set(PV_EREFUSED, "key '%s' is the one this command opened the repository "
						  "with", match);
		pv_error_hint("run 'pgvault key remove' with another key's passphrase");
		goto done;
	}
	{
		char key[5 + REPO_HEX_ID_LEN + 1];

		snprintf(key, sizeof(key), "keys/%s", match);
		rc = storage_delete(repo->st, key);
	}
done:
	key_names_free(&names);
	return rc;
}
