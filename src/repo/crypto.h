/*
 * crypto.h: chunk ids, authenticated encryption, the passphrase-wrapped key
 * file, and where passphrases come from.  All OpenSSL 3 (libcrypto).
 *
 * - Ids: SHA-256 of the plaintext in a plain repository; HMAC-SHA-256 keyed
 *   with RepoKeys.id_key in an encrypted one, so ids reveal nothing about the
 *   content to whoever can list the storage.
 * - AEAD: AES-256-GCM with a fresh random 12-byte nonce per seal, laid out as
 *   nonce || ciphertext || tag.  Random nonces are safe for far more than
 *   the 2^32 messages per key NIST allows (that is 4 PiB of 1 MiB chunks).
 * - Key file: JSON text; a key derived from the passphrase with scrypt
 *   wraps the 72 bytes of RepoKeys with AES-256-GCM.  The scrypt parameters
 *   and salt are stored beside the wrapped keys and bound to them as AAD.
 *
 * Every function is thread-safe.  Per-thread OpenSSL contexts (digest, MAC,
 * cipher) are created on first use, reused, and freed when the thread exits.
 * Key material is wiped with OPENSSL_cleanse; passphrases never appear in a
 * message.
 */
#ifndef PV_REPO_CRYPTO_H
#define PV_REPO_CRYPTO_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

#define REPO_ID_LEN 32

typedef struct RepoKeys
{								/* the master key material, 72 bytes, wiped on free */
	unsigned char enc_key[32];	/* AES-256-GCM */
	unsigned char id_key[32];	/* HMAC-SHA-256 for chunk ids */
	unsigned char chunker_seed[8];	/* little-endian u64 for RepoChunkerParams.seed */
} RepoKeys;

/* Cryptographically secure random bytes.  PV_ERROR if the generator fails. */
int pv_random_bytes(void *out, size_t len);

/* Fresh random keys.  Aborts the process if the system has no randomness
   (nothing sensible can be done without it). */
void repo_keys_generate(RepoKeys *out);
void repo_keys_wipe(RepoKeys *k);	/* NULL ok */

/* The chunker seed of k as a number (for RepoChunkerParams.seed). */
uint64_t repo_keys_chunker_seed(const RepoKeys *k);

/* id = SHA-256(data) when keys == NULL, else HMAC-SHA-256(id_key, data). */
void repo_id_compute(unsigned char out[REPO_ID_LEN], const RepoKeys *keys,
					 const void *data, size_t len);
/* Lowercase hex. */
void repo_id_hex(char out[2 * REPO_ID_LEN + 1], const unsigned char id[REPO_ID_LEN]);
/* Exactly 64 hex digits (either case); PV_EUSAGE "invalid id '...'" otherwise. */
int repo_id_parse(unsigned char out[REPO_ID_LEN], const char *hex);

/* AES-256-GCM: nonce(12) || ciphertext || tag(16) appended to out.  aad may be NULL. */
#define REPO_AEAD_NONCE_LEN 12
#define REPO_AEAD_TAG_LEN 16
#define REPO_AEAD_OVERHEAD 28
int repo_aead_seal(const RepoKeys *k, const void *aad, size_t aadlen,
				   const void *in, size_t inlen, Buf *out);
/* Appends the plaintext to out.  PV_ECORRUPT "authentication failed" when
   anything (nonce, ciphertext, tag, aad, key) differs; out->len is then
   unchanged and no unauthenticated byte is left in out's memory. */
int repo_aead_open(const RepoKeys *k, const void *aad, size_t aadlen,
				   const void *in, size_t inlen, Buf *out);

/* scrypt cost parameters of a new key file. */
typedef struct RepoKdfParams
{
	uint64_t n;					/* CPU/memory cost, a power of 2 */
	uint32_t r;					/* block size */
	uint32_t p;					/* parallelism */
} RepoKdfParams;

/* N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s). */
void repo_kdf_params_default(RepoKdfParams *out);

/*
 * Passphrase-wrapped key file (JSON text, appended to out_json).  The
 * passphrase must not be empty (PV_EUSAGE).  _with takes explicit scrypt
 * parameters (tests use a small N; PV_EUSAGE when out of the accepted range:
 * N a power of 2 in 2..2^24, r 1..64, p 1..16, 128*r*N <= 1 GiB).
 */
int repo_keyfile_create(Buf *out_json, const RepoKeys *keys, const char *passphrase);
int repo_keyfile_create_with(Buf *out_json, const RepoKeys *keys, const char *passphrase,
							 const RepoKdfParams *kdf);
/*
 * Unwraps a key file.  PV_EAUTH "wrong passphrase" when the passphrase does
 * not open it; PV_ECORRUPT when the file is malformed or damaged (its
 * checksum does not match); PV_EUSAGE for an empty passphrase.
 */
int repo_keyfile_open(RepoKeys *out, const char *json, size_t len, const char *passphrase);

/*
 * The passphrase, from the first source configured, in this order:
 *   1. $PGVAULT_PASSPHRASE
 *   2. the file named by $PGVAULT_PASSPHRASE_FILE, else by file (if not NULL)
 *   3. the stdout of /bin/sh -c "$PGVAULT_PASSPHRASE_COMMAND", else of command
 * One trailing newline ("\n" or "\r\n") is stripped.  Caller frees *out with
 * pv_free_secret_str.  PV_ENOTFOUND if no source is configured; PV_ECONFIG
 * if the source is empty, unreadable, or holds a NUL byte; PV_ERROR if the
 * command fails (non-zero exit or signal).  Messages name the source, never
 * the passphrase.
 */
int repo_passphrase_get(char **out, const char *file, const char *command);

/* One source only, with no environment lookup (a second repository's own
   passphrase, e.g. the destination of copy).  Errors as above. */
int repo_passphrase_from_file(char **out, const char *path);
int repo_passphrase_from_command(char **out, const char *command);

#endif
