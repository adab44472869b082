/*
 * crypto.c: ids, AES-256-GCM, key files and passphrase sources; see crypto.h.
 *
 * Per-thread contexts: the algorithms (SHA2-256, HMAC, AES-256-GCM) are
 * fetched from the default provider once per process; each thread keeps its
 * own EVP_MD_CTX, EVP_MAC_CTX and EVP_CIPHER_CTX and re-initialises them per
 * call, which costs no allocation.  The HMAC context also remembers the key
 * it was last keyed with, so hashing a stream of chunks with one repository
 * key does not redo the HMAC key setup each time (EVP_MAC_init with a NULL
 * key restarts with the previous key).  A pthread key destructor frees and
 * wipes a thread's contexts when it exits.
 *
 * Key file (JSON, version 1):
 *
 *   {"format": "pgvault-keyfile", "version": 1, "kdf": "scrypt",
 *    "n": 32768, "r": 8, "p": 1, "salt": BASE64(32 bytes),
 *    "cipher": "aes-256-gcm", "keys": BASE64(nonce || GCM(72 key bytes) || tag),
 *    "check": HEX(SHA-256(header " keys=" keys))}
 *
 * where header is "pgvault-keyfile v1 kdf=scrypt n=N r=R p=P salt=SALT
 * cipher=aes-256-gcm", also the AAD of the wrap, so no parameter can be
 * changed without the unwrap failing.  "check" is an unkeyed checksum: it
 * cannot stop a forger (the AAD does that) but tells a damaged file
 * (PV_ECORRUPT) apart from a wrong passphrase (PV_EAUTH), which the AEAD
 * alone cannot.
 */
#include "repo/crypto.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define KEYFILE_FORMAT "pgvault-keyfile"
#define KEYFILE_VERSION 1
#define KEYFILE_SALT_LEN 32
#define KEYS_RAW_LEN 72
#define KEYS_WRAPPED_LEN (KEYS_RAW_LEN + REPO_AEAD_OVERHEAD)
#define KDF_MAX_MEM (1ull << 30)
#define PASSPHRASE_MAX_LEN 65536

/* ---- per-thread OpenSSL state ---- */

typedef struct CryptoThread
{
	EVP_MD_CTX *md;
	EVP_MAC_CTX *mac;
	EVP_CIPHER_CTX *cipher;
	unsigned char mac_key[32];
	bool mac_keyed;
} CryptoThread;

static EVP_MD *alg_sha256;
static EVP_MAC *alg_hmac;
static EVP_CIPHER *alg_gcm;
static pthread_key_t crypto_key;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static _Thread_local CryptoThread *crypto_tls;

/* Only for a broken OpenSSL installation or no memory: like pv_oom. */
static _Noreturn void
crypto_fatal(const char *what)
{
	fprintf(stderr, "pgvault: fatal: openssl: %s failed\n", what);
	abort();
}

static void
crypto_thread_free(void *p)
{
	CryptoThread *t = p;

	EVP_MD_CTX_free(t->md);
	EVP_MAC_CTX_free(t->mac);
	EVP_CIPHER_CTX_free(t->cipher);
	OPENSSL_cleanse(t, sizeof(*t));
	pv_free(t);
	crypto_tls = NULL;
}

static void
crypto_init_once(void)
{
	alg_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	alg_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (alg_sha256 == NULL || alg_hmac == NULL || alg_gcm == NULL)
		crypto_fatal("fetching SHA2-256, HMAC and AES-256-GCM");	/* uncovered */
	if (pthread_key_create(&crypto_key, crypto_thread_free) != 0)
		crypto_fatal("pthread_key_create");	/* uncovered */
}

static CryptoThread *
crypto_thread(void)
{
	CryptoThread *t = crypto_tls;

	if (t == NULL)
	{
		pthread_once(&crypto_once, crypto_init_once);
		t = PV_NEW(CryptoThread);
		t->md = EVP_MD_CTX_new();
		t->mac = EVP_MAC_CTX_new(alg_hmac);
		t->cipher = EVP_CIPHER_CTX_new();
		if (t->md == NULL || t->mac == NULL || t->cipher == NULL)
			crypto_fatal("creating contexts");	/* uncovered: OOM */
		crypto_tls = t;
		pthread_setspecific(crypto_key, t);
	}
	return t;
}

/* Record the first queued OpenSSL error as our message and clear the queue. */
static int
crypto_ossl_error(const char *what)
{
	char reason[256] = "unknown error";
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	return pv_error_set(PV_ERROR, "%s failed: %s", what, reason);
}

/* ---- randomness and keys ---- */

int
pv_random_bytes(void *out, size_t len)
{
	unsigned char *p = out;

	while (len > 0)
	{
		int n = len > INT_MAX ? INT_MAX : (int) len;

		if (RAND_bytes(p, n) != 1)
			return crypto_ossl_error("random number generator");	/* uncovered */
		p += n;
		len -= (size_t) n;
	}
	return PV_OK;
}

void
repo_keys_generate(RepoKeys *out)
{
	if (pv_random_bytes(out, sizeof(*out)) != PV_OK)
		crypto_fatal("RAND_bytes");	/* uncovered */
}

void
repo_keys_wipe(RepoKeys *k)
{
	if (k != NULL)
		OPENSSL_cleanse(k, sizeof(*k));
}

uint64_t
repo_keys_chunker_seed(const RepoKeys *k)
{
	return pv_read_u64le(k->chunker_seed);
}

/* ---- ids ---- */

void
repo_id_compute(unsigned char out[REPO_ID_LEN], const RepoKeys *keys, const void *data, size_t len)
{
	CryptoThread *t = crypto_thread();
	size_t outl = 0;

	if (keys == NULL)
	{
		unsigned int mdlen = 0;

		if (!EVP_DigestInit_ex2(t->md, alg_sha256, NULL) ||
			!EVP_DigestUpdate(t->md, data, len) ||
			!EVP_DigestFinal_ex(t->md, out, &mdlen) || mdlen != REPO_ID_LEN)
			crypto_fatal("SHA-256");	/* uncovered */
		return;
	}
	if (!t->mac_keyed || CRYPTO_memcmp(t->mac_key, keys->id_key, sizeof(t->mac_key)) != 0)
	{
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA2-256", 0),
			OSSL_PARAM_construct_end(),
		};

		if (!EVP_MAC_init(t->mac, keys->id_key, sizeof(keys->id_key), params))
			crypto_fatal("HMAC key setup");	/* uncovered */
		memcpy(t->mac_key, keys->id_key, sizeof(t->mac_key));
		t->mac_keyed = true;
	}
	else if (!EVP_MAC_init(t->mac, NULL, 0, NULL))
		crypto_fatal("HMAC restart");	/* uncovered */
	if (!EVP_MAC_update(t->mac, data, len) ||
		!EVP_MAC_final(t->mac, out, &outl, REPO_ID_LEN) || outl != REPO_ID_LEN)
		crypto_fatal("HMAC-SHA-256");	/* uncovered */
}

void
repo_id_hex(char out[2 * REPO_ID_LEN + 1], const unsigned char id[REPO_ID_LEN])
{
	pv_hex_encode(out, id, REPO_ID_LEN);
}

int
repo_id_parse(unsigned char out[REPO_ID_LEN], const char *hex)
{
	if (pv_hex_decode(out, REPO_ID_LEN, hex) != PV_OK)
		return pv_error_set(PV_EUSAGE, "invalid id '%.80s': expected %d hex digits",
							hex, 2 * REPO_ID_LEN);
	return PV_OK;
}

/* ---- AES-256-GCM ---- */

/* Feed in[0..len) to the cipher in pieces EVP's int lengths can take. */
static int
aead_update(EVP_CIPHER_CTX *ctx, bool enc, unsigned char *out, const unsigned char *in, size_t len)
{
	while (len > 0)
	{
		int n = len > (1u << 30) ? (1 << 30) : (int) len;
		int outl = 0;
		int ok = enc ? EVP_EncryptUpdate(ctx, out, &outl, in, n)
			: EVP_DecryptUpdate(ctx, out, &outl, in, n);

		if (!ok)
			return 0;	/* uncovered */
		if (out != NULL)
			out += outl;
		in += n;
		len -= (size_t) n;
	}
	return 1;
}

static int
aead_seal_key(const unsigned char key[32], const void *aad, size_t aadlen,
			  const void *in, size_t inlen, Buf *out)
{
	CryptoThread *t = crypto_thread();
	unsigned char *nonce;
	unsigned char *ct;
	int outl = 0;
	int rc;

	buf_reserve(out, inlen + REPO_AEAD_OVERHEAD);
	nonce = out->data + out->len;
	ct = nonce + REPO_AEAD_NONCE_LEN;
	if ((rc = pv_random_bytes(nonce, REPO_AEAD_NONCE_LEN)) != PV_OK)
		return rc;	/* uncovered */
	if (!EVP_EncryptInit_ex2(t->cipher, alg_gcm, key, nonce, NULL) ||
		(aadlen > 0 && !aead_update(t->cipher, true, NULL, aad, aadlen)) ||
		!aead_update(t->cipher, true, ct, in, inlen) ||
		!EVP_EncryptFinal_ex(t->cipher, ct + inlen, &outl) ||
		!EVP_CIPHER_CTX_ctrl(t->cipher, EVP_CTRL_AEAD_GET_TAG, REPO_AEAD_TAG_LEN, ct + inlen))
		return crypto_ossl_error("aes-256-gcm encryption");	/* uncovered */
	out->len += inlen + REPO_AEAD_OVERHEAD;
	out->data[out->len] = '\0';
	return PV_OK;
}

static int
aead_open_key(const unsigned char key[32], const void *aad, size_t aadlen,
			  const void *in, size_t inlen, Buf *out)
{
	CryptoThread *t = crypto_thread();
	const unsigned char *nonce = in;
	const unsigned char *ct = nonce + REPO_AEAD_NONCE_LEN;
	unsigned char tag[REPO_AEAD_TAG_LEN];
	unsigned char *pt;
	size_t ctlen;
	int outl = 0;

	if (inlen < REPO_AEAD_OVERHEAD)
		return pv_error_set(PV_ECORRUPT, "encrypted data too short (%zu bytes)", inlen);
	ctlen = inlen - REPO_AEAD_OVERHEAD;
	memcpy(tag, ct + ctlen, sizeof(tag));
	buf_reserve(out, ctlen);
	pt = out->data + out->len;
	if (!EVP_DecryptInit_ex2(t->cipher, alg_gcm, key, nonce, NULL) ||
		(aadlen > 0 && !aead_update(t->cipher, false, NULL, aad, aadlen)) ||
		!aead_update(t->cipher, false, pt, ct, ctlen) ||
		!EVP_CIPHER_CTX_ctrl(t->cipher, EVP_CTRL_AEAD_SET_TAG, REPO_AEAD_TAG_LEN, tag))
		return crypto_ossl_error("aes-256-gcm decryption");	/* uncovered */
	if (EVP_DecryptFinal_ex(t->cipher, pt + ctlen, &outl) <= 0)
	{
		/* never leave unauthenticated plaintext behind */
		OPENSSL_cleanse(pt, ctlen);
		out->data[out->len] = '\0';
		ERR_clear_error();
		return pv_error_set(PV_ECORRUPT, "authentication failed");
	}
	out->len += ctlen;
	out->data[out->len] = '\0';
	return PV_OK;
}

int
repo_aead_seal(const RepoKeys *k, const void *aad, size_t aadlen,
			   const void *in, size_t inlen, Buf *out)
{
	return aead_seal_key(k->enc_key, aad, aadlen, in, inlen, out);
}

int
repo_aead_open(const RepoKeys *k, const void *aad, size_t aadlen,
			   const void *in, size_t inlen, Buf *out)
{
	return aead_open_key(k->enc_key, aad, aadlen, in, inlen, out);
}

/* ---- key file ---- */

void
repo_kdf_params_default(RepoKdfParams *out)
{
	out->n = 1u << 15;
	out->r = 8;
	out->p = 1;
}

static int
kdf_params_check(const RepoKdfParams *kdf, int code)
{
	if (kdf->n < 2 || kdf->n > (1u << 24) || (kdf->n & (kdf->n - 1)) != 0 ||
		kdf->r < 1 || kdf->r > 64 || kdf->p < 1 || kdf->p > 16 ||
		128ull * kdf->r * kdf->n > KDF_MAX_MEM)
		return pv_error_set(code, "scrypt parameters out of range (N=%llu, r=%u, p=%u)",
							(unsigned long long) kdf->n, kdf->r, kdf->p);
	return PV_OK;
}

static int
kdf_derive(unsigned char kek[32], const char *passphrase, const unsigned char *salt,
		   const RepoKdfParams *kdf)
{
	/* what OpenSSL counts: V is 128*r*(N+2) bytes, B is 128*r*p */
	uint64_t maxmem = 128ull * kdf->r * (kdf->n + 2) + 128ull * kdf->r * kdf->p + 4096;

	if (!EVP_PBE_scrypt(passphrase, strlen(passphrase), salt, KEYFILE_SALT_LEN,
						kdf->n, kdf->r, kdf->p, maxmem, kek, 32))
		return crypto_ossl_error("scrypt key derivation");	/* uncovered */
	return PV_OK;
}

static char *
b64_encode(const unsigned char *data, size_t len)
{
	char *s = pv_malloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *) s, data, (int) len);
	return s;
}

/* Decode exactly len bytes from canonical (padded, no whitespace) base64. */
static bool
b64_decode_exact(unsigned char *out, size_t len, const char *s)
{
	size_t slen = strlen(s);
	size_t cap = slen / 4 * 3;
	unsigned char *tmp;
	char *again;
	bool ok;

	if (slen != 4 * ((len + 2) / 3))
		return false;
	tmp = pv_malloc(cap + 1);
	ok = EVP_DecodeBlock(tmp, (const unsigned char *) s, (int) slen) == (int) cap;
	if (ok)
	{
		memcpy(out, tmp, len);
		again = b64_encode(out, len);
		ok = strcmp(again, s) == 0;
		pv_free(again);
	}
	pv_free_secret(tmp, cap + 1);
	return ok;
}

/* The wrap's AAD; the checksum covers it plus the wrapped keys. */
static void
keyfile_header(Buf *out, const RepoKdfParams *kdf, const char *salt_b64)
{
	buf_printf(out, "%s v%d kdf=scrypt n=%llu r=%u p=%u salt=%s cipher=aes-256-gcm",
			   KEYFILE_FORMAT, KEYFILE_VERSION, (unsigned long long) kdf->n,
			   kdf->r, kdf->p, salt_b64);
}

static void
keyfile_check(char out[2 * REPO_ID_LEN + 1], const char *header, const char *keys_b64)
{
	Buf text = PV_BUF_INIT;
	unsigned char sum[REPO_ID_LEN];

	buf_printf(&text, "%s keys=%s", header, keys_b64);
	repo_id_compute(sum, NULL, text.data, text.len);
	repo_id_hex(out, sum);
	buf_free(&text);
}

static void
keys_serialize(unsigned char out[KEYS_RAW_LEN], const RepoKeys *k)
{
	memcpy(out, k->enc_key, 32);
	memcpy(out + 32, k->id_key, 32);
	memcpy(out + 64, k->chunker_seed, 8);
}

static void
keys_deserialize(RepoKeys *k, const unsigned char in[KEYS_RAW_LEN])
{
	memcpy(k->enc_key, in, 32);
	memcpy(k->id_key, in + 32, 32);
	memcpy(k->chunker_seed, in + 64, 8);
}

int
repo_keyfile_create(Buf *out_json, const RepoKeys *keys, const char *passphrase)
{
	RepoKdfParams kdf;

	repo_kdf_params_default(&kdf);
	return repo_keyfile_create_with(out_json, keys, passphrase, &kdf);
}

int
repo_keyfile_create_with(Buf *out_json, const RepoKeys *keys, const char *passphrase,
						 const RepoKdfParams *kdf)
{
	unsigned char salt[KEYFILE_SALT_LEN];
	unsigned char kek[32];
	unsigned char raw[KEYS_RAW_LEN];
	char check[2 * REPO_ID_LEN + 1];
	Buf header = PV_BUF_INIT;
	Buf wrapped = PV_BUF_INIT;
	char *salt_b64 = NULL;
	char *keys_b64 = NULL;
	char *text = NULL;
	json_t *obj = NULL;
	int rc;

	if (passphrase == NULL || passphrase[0] == '\0')
		return pv_error_set(PV_EUSAGE, "empty passphrase");
	if ((rc = kdf_params_check(kdf, PV_EUSAGE)) != PV_OK)
		return rc;
	if ((rc = pv_random_bytes(salt, sizeof(salt))) != PV_OK)
		goto done;	/* uncovered */
	if ((rc = kdf_derive(kek, passphrase, salt, kdf)) != PV_OK)
		goto done;	/* uncovered */
	salt_b64 = b64_encode(salt, sizeof(salt));
	keyfile_header(&header, kdf, salt_b64);
	keys_serialize(raw, keys);
	if ((rc = aead_seal_key(kek, header.data, header.len, raw, sizeof(raw), &wrapped)) != PV_OK)
		goto done;	/* uncovered */
	keys_b64 = b64_encode(wrapped.data, wrapped.len);
	keyfile_check(check, (const char *) header.data, keys_b64);

	obj = json_pack("{s:s, s:i, s:s, s:I, s:i, s:i, s:s, s:s, s:s, s:s}",
					"format", KEYFILE_FORMAT, "version", KEYFILE_VERSION, "kdf", "scrypt",
					"n", (json_int_t) kdf->n, "r", (int) kdf->r, "p", (int) kdf->p,
					"salt", salt_b64, "cipher", "aes-256-gcm", "keys", keys_b64,
					"check", check);
	if (obj == NULL || (text = json_dumps(obj, JSON_INDENT(2))) == NULL)
		crypto_fatal("building key file json");	/* uncovered: jansson OOM */
	buf_append_str(out_json, text);
	buf_append_byte(out_json, '\n');
	rc = PV_OK;
done:
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(raw, sizeof(raw));
	buf_free_secret(&wrapped);
	buf_free(&header);
	pv_free(salt_b64);
	pv_free(keys_b64);
	free(text);
	json_decref(obj);
	return rc;
}

/* Fields of a parsed key file; strings are lent by the json object. */
typedef struct KeyfileFields
{
	RepoKdfParams kdf;
	const char *salt_b64;
	const char *keys_b64;
	const char *check;
	unsigned char salt[KEYFILE_SALT_LEN];
	unsigned char wrapped[KEYS_WRAPPED_LEN];
} KeyfileFields;

static int
keyfile_parse(KeyfileFields *f, json_t *obj)
{
	const char *format = NULL;
	const char *kdfname = NULL;
	const char *cipher = NULL;
	json_int_t version = 0;
	json_int_t n = 0;
	json_int_t r = 0;
	json_int_t p = 0;
	json_error_t err;

	if (json_unpack_ex(obj, &err, 0, "{s:s, s:I, s:s}", "format", &format,
					   "version", &version, "kdf", &kdfname) != 0)
		return pv_error_set(PV_ECORRUPT, "key file is malformed: %s", err.text);
	if (strcmp(format, KEYFILE_FORMAT) != 0)
		return pv_error_set(PV_ECORRUPT, "not a pgvault key file (format '%.40s')", format);
	if (version != KEYFILE_VERSION)
	{
		pv_error_set(PV_ECORRUPT, "unsupported key file version %lld", (long long) version);
		pv_error_hint("a newer pgvault may have written it");
		return PV_ECORRUPT;
	}
	if (strcmp(kdfname, "scrypt") != 0)
		return pv_error_set(PV_ECORRUPT, "unsupported key derivation '%.40s' in key file", kdfname);
	if (json_unpack_ex(obj, &err, 0, "{s:I, s:I, s:I, s:s, s:s, s:s, s:s}",
					   "n", &n, "r", &r, "p", &p, "salt", &f->salt_b64, "cipher", &cipher,
					   "keys", &f->keys_b64, "check", &f->check) != 0)
		return pv_error_set(PV_ECORRUPT, "key file is malformed: %s", err.text);
	if (strcmp(cipher, "aes-256-gcm") != 0)
		return pv_error_set(PV_ECORRUPT, "unsupported cipher '%.40s' in key file", cipher);
	if (n < 0 || r < 0 || r > UINT32_MAX || p < 0 || p > UINT32_MAX)
		return pv_error_set(PV_ECORRUPT, "scrypt parameters out of range in key file");
	f->kdf.n = (uint64_t) n;
	f->kdf.r = (uint32_t) r;
	f->kdf.p = (uint32_t) p;
	if (kdf_params_check(&f->kdf, PV_ECORRUPT) != PV_OK)
		return pv_error_prefix(PV_ECORRUPT, "key file");
	if (!b64_decode_exact(f->salt, sizeof(f->salt), f->salt_b64))
		return pv_error_set(PV_ECORRUPT, "key file is malformed: bad salt");
	if (!b64_decode_exact(f->wrapped, sizeof(f->wrapped), f->keys_b64))
		return pv_error_set(PV_ECORRUPT, "key file is malformed: bad wrapped keys");
	return PV_OK;
}

int
repo_keyfile_open(RepoKeys *out, const char *json, size_t len, const char *passphrase)
{
	KeyfileFields f;
	unsigned char kek[32];
	char check[2 * REPO_ID_LEN + 1];
	Buf header = PV_BUF_INIT;
	Buf raw = PV_BUF_INIT;
	json_error_t err;
	json_t *obj = NULL;
	int rc;

	memset(&f, 0, sizeof(f));
	if (passphrase == NULL || passphrase[0] == '\0')
		return pv_error_set(PV_EUSAGE, "empty passphrase");
	obj = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
	if (obj == NULL)
	{
		rc = pv_error_set(PV_ECORRUPT, "key file is not valid json: %s (line %d)",
						  err.text, err.line);
		goto done;
	}
	if ((rc = keyfile_parse(&f, obj)) != PV_OK)
		goto done;
	keyfile_header(&header, &f.kdf, f.salt_b64);
	keyfile_check(check, (const char *) header.data, f.keys_b64);
	if (strcmp(check, f.check) != 0)
	{
		rc = pv_error_set(PV_ECORRUPT, "key file is damaged: checksum mismatch");
		goto done;
	}
	if ((rc = kdf_derive(kek, passphrase, f.salt, &f.kdf)) != PV_OK)
		goto done;	/* uncovered */
	rc = aead_open_key(kek, header.data, header.len, f.wrapped, sizeof(f.wrapped), &raw);
	OPENSSL_cleanse(kek, sizeof(kek));
	if (rc != PV_OK)
	{
		rc = pv_error_set(PV_EAUTH, "wrong passphrase");
		goto done;
	}
	keys_deserialize(out, raw.data);
done:
	buf_free_secret(&raw);
	buf_free(&header);
	OPENSSL_cleanse(&f, sizeof(f));
	json_decref(obj);
	return rc;
}

/* ---- passphrase sources ---- */

/* Strip one trailing newline, check for emptiness and NUL bytes, hand over. */
static int
passphrase_finish(char **out, Buf *b, const char *source)
{
	if (b->len > 0 && b->data[b->len - 1] == '\n')
		b->len--;
	if (b->len > 0 && b->data[b->len - 1] == '\r')
		b->len--;
	if (b->len == 0)
		return pv_error_set(PV_ECONFIG, "passphrase from %s is empty", source);
	if (memchr(b->data, '\0', b->len) != NULL)
		return pv_error_set(PV_ECONFIG, "passphrase from %s contains a NUL byte", source);
	*out = pv_strndup((const char *) b->data, b->len);
	return PV_OK;
}

/* Read all of fd into b, at most PASSPHRASE_MAX_LEN bytes. */
static int
passphrase_read_fd(Buf *b, int fd, const char *source)
{
	for (;;)
	{
		ssize_t n;

		buf_reserve(b, 4096);
		n = read(fd, b->data + b->len, 4096);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pv_error_errno(PV_ECONFIG, errno, "cannot read passphrase from %s", source);
		if (n == 0)
			return PV_OK;
		b->len += (size_t) n;
		if (b->len > PASSPHRASE_MAX_LEN)
			return pv_error_set(PV_ECONFIG, "passphrase from %s is longer than %d bytes",
								source, PASSPHRASE_MAX_LEN);
	}
}

static int
passphrase_from_file(char **out, const char *path)
{
	char *source = pv_asprintf("file '%s'", path);
	Buf b = PV_BUF_INIT;
	struct stat st;
	int fd;
	int rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		rc = pv_error_errno(PV_ECONFIG, errno, "cannot open passphrase file '%s'", path);
		goto done;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
		pv_log_warn("passphrase file '%s' can be read by other users; chmod 600 it", path);
	if ((rc = passphrase_read_fd(&b, fd, source)) != PV_OK)
		goto done;
	rc = passphrase_finish(out, &b, source);
done:
	if (fd >= 0)
		close(fd);
	buf_free_secret(&b);
	pv_free(source);
	return rc;
}

static int
passphrase_command_wait(pid_t pid, const char *source)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
	{
		if (errno != EINTR)
			return pv_error_errno(PV_ERROR, errno, "waiting for %s", source);	/* uncovered */
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return PV_OK;
	if (WIFEXITED(status))
		return pv_error_set(PV_ERROR, "%s exited with status %d", source, WEXITSTATUS(status));
	return pv_error_set(PV_ERROR, "%s was killed by signal %d", source,
						WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/*
 * Run /bin/sh -c command with its stdout on a pipe (stdin and stderr are
 * inherited, so a command can prompt on the terminal and report its own
 * errors).  posix_spawn rather than fork: safe in a threaded process.
 */
static int
passphrase_from_command(char **out, const char *command, const char *source)
{
	char *argv[] = {(char *) "sh", (char *) "-c", (char *) command, NULL};
	posix_spawn_file_actions_t fa;
	Buf b = PV_BUF_INIT;
	int fds[2] = {-1, -1};
	pid_t pid;
	int rc;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return pv_error_errno(PV_ERROR, errno, "cannot create a pipe for %s", source);	/* uncovered */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0)
	{
		close(fds[0]);
		return pv_error_errno(PV_ERROR, rc, "cannot run %s", source);	/* uncovered */
	}
	rc = passphrase_read_fd(&b, fds[0], source);
	close(fds[0]);
	if (rc != PV_OK)
	{
		/* reap the child (likely killed by SIGPIPE now) but report the read error */
		PvErrorSave saved;

		pv_error_save(&saved);
		passphrase_command_wait(pid, source);
		rc = pv_error_restore(&saved);
	}
	else if ((rc = passphrase_command_wait(pid, source)) == PV_OK)
		rc = passphrase_finish(out, &b, source);
	buf_free_secret(&b);
	return rc;
}

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
repo_passphrase_get(char **out, const char *file, const char *command)
{
	const char *v;

	*out = NULL;
	if ((v = getenv("PGVAULT_PASSPHRASE")) != NULL)
	{
		if (v[0] == '\0')
			return pv_error_set(PV_ECONFIG, "passphrase from $PGVAULT_PASSPHRASE is empty");
		*out = pv_strdup(v);
		return PV_OK;
	}
	if ((v = env_nonempty("PGVAULT_PASSPHRASE_FILE")) != NULL)
		return passphrase_from_file(out, v);
	if (file != NULL && file[0] != '\0')
		return passphrase_from_file(out, file);
	if ((v = env_nonempty("PGVAULT_PASSPHRASE_COMMAND")) != NULL)
		return passphrase_from_command(out, v, "passphrase command ($PGVAULT_PASSPHRASE_COMMAND)");
	if (command != NULL && command[0] != '\0')
		return passphrase_from_command(out, command, "passphrase command");
	pv_error_set(PV_ENOTFOUND, "no passphrase configured");
	pv_error_hint("set PGVAULT_PASSPHRASE, PGVAULT_PASSPHRASE_FILE or PGVAULT_PASSPHRASE_COMMAND");
	return PV_ENOTFOUND;
}

int
repo_passphrase_from_file(char **out, const char *path)
{
	*out = NULL;
	return passphrase_from_file(out, path);
}

int
repo_passphrase_from_command(char **out, const char *command)
{
	*out = NULL;
	return passphrase_from_command(out, command, "passphrase command");
}
