/*
 * test_crypto.c: ids (known answers for SHA-256 and HMAC-SHA-256), hex ids,
 * AES-256-GCM round trips and tamper detection, key files (round trip,
 * wrong passphrase, damaged and forged files), and passphrase sources.
 *
 * Key files use a small scrypt N (2^10) except one test of the defaults.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/crypto.h"

#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static const RepoKdfParams fast_kdf = {.n = 1024, .r = 8, .p = 1};

static void
check_id_hex(const unsigned char id[REPO_ID_LEN], const char *want)
{
	char hex[2 * REPO_ID_LEN + 1];

	repo_id_hex(hex, id);
	assert_string_equal(hex, want);
}

/* RepoKeys whose id_key is key (shorter keys are zero-padded, which HMAC does anyway). */
static void
keys_with_id_key(RepoKeys *k, const void *key, size_t keylen)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->id_key, key, keylen);
}

static void
test_crypto_id_known_answers(void **state)
{
	unsigned char id[REPO_ID_LEN];
	unsigned char key1[20];
	RepoKeys k1, k2;

	(void) state;
	repo_id_compute(id, NULL, "abc", 3);
	check_id_hex(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	repo_id_compute(id, NULL, "", 0);
	check_id_hex(id, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	/* RFC 4231 test case 1 (key 0x0b x 20, "Hi There") and 2 ("Jefe") */
	memset(key1, 0x0b, sizeof(key1));
	keys_with_id_key(&k1, key1, sizeof(key1));
	keys_with_id_key(&k2, "Jefe", 4);
	for (int round = 0; round < 2; round++)
	{
		/* twice, and alternating keys: the per-thread HMAC key cache must follow */
		repo_id_compute(id, &k1, "Hi There", 8);
		check_id_hex(id, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
		repo_id_compute(id, &k1, "Hi There", 8);
		check_id_hex(id, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
		repo_id_compute(id, &k2, "what do ya want for nothing?", 28);
		check_id_hex(id, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
		repo_id_compute(id, NULL, "abc", 3);
		check_id_hex(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	}
	repo_keys_wipe(&k1);
	repo_keys_wipe(&k2);
	repo_keys_wipe(NULL);
}

static void
test_crypto_id_parse(void **state)
{
	const char *hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	unsigned char id[REPO_ID_LEN];

	(void) state;
	assert_int_equal(repo_id_parse(id, hex), PV_OK);
	check_id_hex(id, hex);
	assert_int_equal(repo_id_parse(id, "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"), PV_OK);
	check_id_hex(id, hex);

	assert_int_equal(repo_id_parse(id, "5bdc"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "invalid id '5bdc': expected 64 hex digits");
	assert_int_equal(repo_id_parse(id, ""), PV_EUSAGE);
	assert_int_equal(repo_id_parse(id, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec38430"), PV_EUSAGE);
	assert_int_equal(repo_id_parse(id, "zbdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"), PV_EUSAGE);
}

static void
test_crypto_random_and_keys(void **state)
{
	RepoKeys a, b;
	unsigned char zero[sizeof(RepoKeys)] = {0};

	(void) state;
	repo_keys_generate(&a);
	repo_keys_generate(&b);
	assert_true(memcmp(&a, &b, sizeof(a)) != 0);
	assert_true(memcmp(&a, zero, sizeof(a)) != 0);
	memset(a.chunker_seed, 0, 8);
	a.chunker_seed[0] = 0x01;
	a.chunker_seed[7] = 0x80;
	assert_true(repo_keys_chunker_seed(&a) == 0x8000000000000001ull);
	repo_keys_wipe(&a);
	assert_memory_equal(&a, zero, sizeof(a));
	assert_int_equal(pv_random_bytes(zero, 0), PV_OK);
}

static void
test_crypto_aead_roundtrip(void **state)
{
	static const size_t sizes[] = {0, 1, 15, 16, 17, 4096, 1 << 20};
	unsigned char *data = pv_malloc(1 << 20);
	RepoKeys k;
	Buf a = PV_BUF_INIT;
	Buf b = PV_BUF_INIT;
	Buf pt = PV_BUF_INIT;

	(void) state;
	repo_keys_generate(&k);
	assert_int_equal(pv_random_bytes(data, 1 << 20), PV_OK);
	for (size_t i = 0; i < PV_ARRAY_LEN(sizes); i++)
	{
		size_t len = sizes[i];

		buf_reset(&a);
		buf_reset(&b);
		buf_reset(&pt);
		buf_append_str(&a, "pre");
		assert_int_equal(repo_aead_seal(&k, "aad", 3, data, len, &a), PV_OK);
		assert_int_equal(a.len, 3 + len + REPO_AEAD_OVERHEAD);
		assert_memory_equal(a.data, "pre", 3);
		/* same input, fresh nonce: different output */
		assert_int_equal(repo_aead_seal(&k, "aad", 3, data, len, &b), PV_OK);
		assert_true(memcmp(a.data + 3, b.data, REPO_AEAD_NONCE_LEN) != 0);
		buf_append_str(&pt, "p");
		assert_int_equal(repo_aead_open(&k, "aad", 3, a.data + 3, a.len - 3, &pt), PV_OK);
		assert_int_equal(pt.len, 1 + len);
		assert_memory_equal(pt.data + 1, data, len);
		if (len >= 16)
			assert_true(memcmp(a.data + 3 + REPO_AEAD_NONCE_LEN, data, 16) != 0);
	}
	/* NULL aad is the same as an empty one */
	buf_reset(&a);
	buf_reset(&pt);
	assert_int_equal(repo_aead_seal(&k, NULL, 0, "hello", 5, &a), PV_OK);
	assert_int_equal(repo_aead_open(&k, "", 0, a.data, a.len, &pt), PV_OK);
	assert_string_equal(buf_cstr(&pt), "hello");
	buf_free(&a);
	buf_free(&b);
	buf_free(&pt);
	repo_keys_wipe(&k);
	pv_free(data);
}

static void
check_open_fails(const RepoKeys *k, const void *aad, size_t aadlen, const void *in, size_t inlen,
				 const char *msg)
{
	Buf pt = PV_BUF_INIT;

	buf_append_str(&pt, "keep");
	assert_int_equal(repo_aead_open(k, aad, aadlen, in, inlen, &pt), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), msg);
	assert_int_equal(pt.len, 4);
	assert_string_equal(buf_cstr(&pt), "keep");
	buf_free(&pt);
}

/* Every single flipped bit position class (nonce, ciphertext, tag, aad, key) is caught. */
static void
test_crypto_aead_tamper(void **state)
{
	const char *msg = "the quick brown fox jumps over the lazy dog";
	unsigned char aad[32];
	RepoKeys k, other;
	Buf s = PV_BUF_INIT;

	(void) state;
	repo_keys_generate(&k);
	repo_keys_generate(&other);
	memset(aad, 0xa5, sizeof(aad));
	assert_int_equal(repo_aead_seal(&k, aad, sizeof(aad), msg, strlen(msg), &s), PV_OK);
	for (size_t i = 0; i < s.len; i++)
	{
		s.data[i] ^= 0x01;
		check_open_fails(&k, aad, sizeof(aad), s.data, s.len, "authentication failed");
		s.data[i] ^= 0x01;
	}
	for (size_t i = 0; i < sizeof(aad); i++)
	{
		aad[i] ^= 0x80;
		check_open_fails(&k, aad, sizeof(aad), s.data, s.len, "authentication failed");
		aad[i] ^= 0x80;
	}
	check_open_fails(&k, aad, sizeof(aad) - 1, s.data, s.len, "authentication failed");
	check_open_fails(&k, NULL, 0, s.data, s.len, "authentication failed");
	check_open_fails(&other, aad, sizeof(aad), s.data, s.len, "authentication failed");
	check_open_fails(&k, aad, sizeof(aad), s.data, s.len - 1, "authentication failed");
	check_open_fails(&k, aad, sizeof(aad), s.data, REPO_AEAD_OVERHEAD - 1,
					 "encrypted data too short (27 bytes)");
	check_open_fails(&k, aad, sizeof(aad), s.data, 0, "encrypted data too short (0 bytes)");
	/* untouched, it still opens */
	{
		Buf pt = PV_BUF_INIT;

		assert_int_equal(repo_aead_open(&k, aad, sizeof(aad), s.data, s.len, &pt), PV_OK);
		assert_string_equal(buf_cstr(&pt), msg);
		buf_free(&pt);
	}
	buf_free(&s);
}

/* ---- key files ---- */

static void
keyfile_new(Buf *json, RepoKeys *k, const char *pass)
{
	repo_keys_generate(k);
	assert_int_equal(repo_keyfile_create_with(json, k, pass, &fast_kdf), PV_OK);
}

static void
test_crypto_keyfile_roundtrip(void **state)
{
	RepoKeys k, got;
	Buf json = PV_BUF_INIT;
	json_t *obj;

	(void) state;
	keyfile_new(&json, &k, "correct horse battery staple");
	obj = json_loads(buf_cstr(&json), 0, NULL);
	assert_non_null(obj);
	assert_string_equal(json_string_value(json_object_get(obj, "kdf")), "scrypt");
	assert_int_equal(json_integer_value(json_object_get(obj, "n")), 1024);
	assert_int_equal(json_integer_value(json_object_get(obj, "r")), 8);
	assert_int_equal(json_integer_value(json_object_get(obj, "p")), 1);
	assert_int_equal(json_integer_value(json_object_get(obj, "version")), 1);
	assert_string_equal(json_string_value(json_object_get(obj, "cipher")), "aes-256-gcm");
	assert_int_equal(strlen(json_string_value(json_object_get(obj, "salt"))), 44);
	json_decref(obj);
	/* the key material is not in the file in the clear */
	{
		char hex[65];

		pv_hex_encode(hex, k.enc_key, 32);
		assert_null(strstr(buf_cstr(&json), hex));
	}

	memset(&got, 0, sizeof(got));
	assert_int_equal(repo_keyfile_open(&got, (const char *) json.data, json.len,
									   "correct horse battery staple"), PV_OK);
	assert_memory_equal(&got, &k, sizeof(k));

	assert_int_equal(repo_keyfile_open(&got, (const char *) json.data, json.len,
									   "correct horse battery stapl"), PV_EAUTH);
	assert_string_equal(pv_error_msg(), "wrong passphrase");
	assert_int_equal(repo_keyfile_open(&got, (const char *) json.data, json.len, ""), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "empty passphrase");
	buf_free(&json);
	repo_keys_wipe(&k);
	repo_keys_wipe(&got);
}

static void
test_crypto_keyfile_default_params(void **state)
{
	RepoKeys k, got;
	Buf json = PV_BUF_INIT;
	RepoKdfParams d;

	(void) state;
	repo_kdf_params_default(&d);
	assert_int_equal(d.n, 32768);
	assert_int_equal(d.r, 8);
	assert_int_equal(d.p, 1);
	repo_keys_generate(&k);
	assert_int_equal(repo_keyfile_create(&json, &k, "pw"), PV_OK);
	assert_non_null(strstr(buf_cstr(&json), "\"n\": 32768"));
	assert_int_equal(repo_keyfile_open(&got, (const char *) json.data, json.len, "pw"), PV_OK);
	assert_memory_equal(&got, &k, sizeof(k));
	buf_free(&json);

	assert_int_equal(repo_keyfile_create(&json, &k, ""), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "empty passphrase");
	assert_int_equal(repo_keyfile_create(&json, &k, NULL), PV_EUSAGE);
	assert_int_equal(repo_keyfile_create_with(&json, &k, "pw", &(RepoKdfParams) {.n = 1000, .r = 8, .p = 1}),
					 PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "scrypt parameters out of range (N=1000, r=8, p=1)");
	assert_int_equal(repo_keyfile_create_with(&json, &k, "pw", &(RepoKdfParams) {.n = 1 << 24, .r = 64, .p = 1}),
					 PV_EUSAGE);
	assert_int_equal(json.len, 0);
	buf_free(&json);
}

/* Serialise obj, try to open it with "pw", check code and message. */
static void
check_keyfile_open(json_t *obj, int code, const char *msg)
{
	char *text = json_dumps(obj, 0);
	RepoKeys got;

	assert_int_equal(repo_keyfile_open(&got, text, strlen(text), "pw"), code);
	if (msg != NULL)
		assert_string_equal(pv_error_msg(), msg);
	free(text);
}

/* Recompute "check" the way a forger who knows the format would. */
static void
forge_check(json_t *obj)
{
	Buf text = PV_BUF_INIT;
	unsigned char sum[REPO_ID_LEN];
	char hex[2 * REPO_ID_LEN + 1];

	buf_printf(&text, "pgvault-keyfile v1 kdf=scrypt n=%lld r=%lld p=%lld salt=%s cipher=aes-256-gcm keys=%s",
			   (long long) json_integer_value(json_object_get(obj, "n")),
			   (long long) json_integer_value(json_object_get(obj, "r")),
			   (long long) json_integer_value(json_object_get(obj, "p")),
			   json_string_value(json_object_get(obj, "salt")),
			   json_string_value(json_object_get(obj, "keys")));
	repo_id_compute(sum, NULL, text.data, text.len);
	repo_id_hex(hex, sum);
	json_object_set_new(obj, "check", json_string(hex));
	buf_free(&text);
}

static void
test_crypto_keyfile_tampered(void **state)
{
	RepoKeys k;
	Buf json = PV_BUF_INIT;
	json_t *orig;
	json_t *obj;
	char *s;

	(void) state;
	keyfile_new(&json, &k, "pw");
	orig = json_loads(buf_cstr(&json), 0, NULL);
	assert_non_null(orig);

	/* the untouched object re-serialised still opens */
	check_keyfile_open(orig, PV_OK, NULL);
	/* our forge_check reproduces the real checksum */
	obj = json_deep_copy(orig);
	forge_check(obj);
	assert_true(json_equal(obj, orig));
	json_decref(obj);

	/* a changed byte in the wrapped keys: damaged */
	obj = json_deep_copy(orig);
	s = pv_strdup(json_string_value(json_object_get(obj, "keys")));
	s[10] = s[10] == 'A' ? 'B' : 'A';
	json_object_set_new(obj, "keys", json_string(s));
	check_keyfile_open(obj, PV_ECORRUPT, "key file is damaged: checksum mismatch");
	/* ... and with the checksum forged to match, the AEAD still refuses */
	forge_check(obj);
	check_keyfile_open(obj, PV_EAUTH, "wrong passphrase");
	json_decref(obj);
	pv_free(s);

	/* weaker scrypt parameters, forged checksum: the AAD binds them */
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "n", json_integer(512));
	check_keyfile_open(obj, PV_ECORRUPT, "key file is damaged: checksum mismatch");
	forge_check(obj);
	check_keyfile_open(obj, PV_EAUTH, "wrong passphrase");
	json_decref(obj);

	/* a different salt */
	obj = json_deep_copy(orig);
	s = pv_strdup(json_string_value(json_object_get(obj, "salt")));
	s[0] = s[0] == 'A' ? 'B' : 'A';
	json_object_set_new(obj, "salt", json_string(s));
	forge_check(obj);
	check_keyfile_open(obj, PV_EAUTH, "wrong passphrase");
	json_decref(obj);
	pv_free(s);

	/* malformed files */
	obj = json_deep_copy(orig);
	json_object_del(obj, "keys");
	check_keyfile_open(obj, PV_ECORRUPT, "key file is malformed: Object item not found: keys");
	json_decref(obj);
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "kdf", json_string("argon2id"));
	check_keyfile_open(obj, PV_ECORRUPT, "unsupported key derivation 'argon2id' in key file");
	json_decref(obj);
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "version", json_integer(2));
	check_keyfile_open(obj, PV_ECORRUPT, "unsupported key file version 2");
	assert_string_equal(pv_error_hint_msg(), "a newer pgvault may have written it");
	json_decref(obj);
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "format", json_string("other"));
	check_keyfile_open(obj, PV_ECORRUPT, "not a pgvault key file (format 'other')");
	json_decref(obj);
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "cipher", json_string("aes-128-cbc"));
	check_keyfile_open(obj, PV_ECORRUPT, "unsupported cipher 'aes-128-cbc' in key file");
	json_decref(obj);
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "n", json_integer(1LL << 40));
	check_keyfile_open(obj, PV_ECORRUPT,
					   "key file: scrypt parameters out of range (N=1099511627776, r=8, p=1)");
	json_decref(obj);
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "r", json_integer(-1));
	check_keyfile_open(obj, PV_ECORRUPT, "scrypt parameters out of range in key file");
	json_decref(obj);
	obj = json_deep_copy(orig);
	json_object_set_new(obj, "salt", json_string("AAAA"));
	check_keyfile_open(obj, PV_ECORRUPT, "key file is malformed: bad salt");
	json_decref(obj);
	obj = json_deep_copy(orig);
	s = pv_strdup(json_string_value(json_object_get(obj, "keys")));
	s[strlen(s) - 1] = '!';
	json_object_set_new(obj, "keys", json_string(s));
	check_keyfile_open(obj, PV_ECORRUPT, "key file is malformed: bad wrapped keys");
	json_decref(obj);
	pv_free(s);

	{
		RepoKeys got;

		assert_int_equal(repo_keyfile_open(&got, "{\"format\": ", 11, "pw"), PV_ECORRUPT);
		assert_non_null(strstr(pv_error_msg(), "key file is not valid json: "));
		assert_int_equal(repo_keyfile_open(&got, "[]", 2, "pw"), PV_ECORRUPT);
		assert_int_equal(repo_keyfile_open(&got, "", 0, "pw"), PV_ECORRUPT);
		/* duplicate keys are refused, so no reader can be fooled about which one counts */
		assert_int_equal(repo_keyfile_open(&got, "{\"n\": 1, \"n\": 2}", 16, "pw"), PV_ECORRUPT);
	}
	json_decref(orig);
	buf_free(&json);
	repo_keys_wipe(&k);
}

/* ---- passphrase sources ---- */

static char tmpdir[64];

static void
clear_env(void)
{
	unsetenv("PGVAULT_PASSPHRASE");
	unsetenv("PGVAULT_PASSPHRASE_FILE");
	unsetenv("PGVAULT_PASSPHRASE_COMMAND");
}

static char *
write_file(const char *name, const char *content, size_t len)
{
	char *path = pv_asprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	fclose(f);
	chmod(path, 0600);
	return path;
}

static void
check_pass(const char *file, const char *command, const char *want)
{
	char *got = NULL;

	assert_int_equal(repo_passphrase_get(&got, file, command), PV_OK);
	assert_string_equal(got, want);
	pv_free_secret_str(got);
}

static void
check_pass_fails(const char *file, const char *command, int code, const char *msg)
{
	char *got = (char *) "unset";

	assert_int_equal(repo_passphrase_get(&got, file, command), code);
	assert_null(got);
	if (msg != NULL)
		assert_string_equal(pv_error_msg(), msg);
	/* a passphrase never leaks into a message */
	assert_null(strstr(pv_error_msg(), "s3cret"));
}

static void
test_crypto_passphrase_sources(void **state)
{
	char *f1, *f2, *crlf, *twonl, *empty, *nul, *big, *missing, *msg;
	char *bigtext;

	(void) state;
	clear_env();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgvault-test-crypto-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	f1 = write_file("f1", "from-file\n", 10);
	f2 = write_file("f2", "from-env-file", 13);
	crlf = write_file("crlf", "windows\r\n", 9);
	twonl = write_file("twonl", "two\n\n", 5);
	empty = write_file("empty", "\n", 1);
	nul = write_file("nul", "a\0b", 3);
	bigtext = pv_malloc(70000);
	memset(bigtext, 'x', 70000);
	big = write_file("big", bigtext, 70000);
	pv_free(bigtext);
	missing = pv_asprintf("%s/missing", tmpdir);

	check_pass_fails(NULL, NULL, PV_ENOTFOUND, "no passphrase configured");
	check_pass_fails("", "", PV_ENOTFOUND, "no passphrase configured");

	/* files */
	check_pass(f1, NULL, "from-file");
	check_pass(crlf, NULL, "windows");
	check_pass(twonl, NULL, "two\n");
	check_pass_fails(empty, NULL, PV_ECONFIG, NULL);
	msg = pv_asprintf("passphrase from file '%s' is empty", empty);
	assert_string_equal(pv_error_msg(), msg);
	pv_free(msg);
	check_pass_fails(nul, NULL, PV_ECONFIG, NULL);
	assert_non_null(strstr(pv_error_msg(), "contains a NUL byte"));
	check_pass_fails(big, NULL, PV_ECONFIG, NULL);
	assert_non_null(strstr(pv_error_msg(), "is longer than 65536 bytes"));
	check_pass_fails(missing, NULL, PV_ECONFIG, NULL);
	msg = pv_asprintf("cannot open passphrase file '%s': No such file or directory", missing);
	assert_string_equal(pv_error_msg(), msg);
	pv_free(msg);

	/* commands */
	check_pass(NULL, "printf 's3cret\\n'", "s3cret");
	check_pass(NULL, "echo from-command", "from-command");
	check_pass_fails(NULL, "echo s3cret; exit 3", PV_ERROR, "passphrase command exited with status 3");
	check_pass_fails(NULL, "kill -9 $$", PV_ERROR, "passphrase command was killed by signal 9");
	check_pass_fails(NULL, "true", PV_ECONFIG, "passphrase from passphrase command is empty");
	check_pass_fails(NULL, "head -c 100000 /dev/zero | tr '\\0' x", PV_ECONFIG,
					 "passphrase from passphrase command is longer than 65536 bytes");
	check_pass_fails(NULL, "exec /nonexistent/cmd 2>/dev/null", PV_ERROR, "passphrase command exited with status 127");

	/* precedence: env value, then file (env, then argument), then command (env, then argument) */
	setenv("PGVAULT_PASSPHRASE_COMMAND", "echo env-command", 1);
	check_pass(NULL, "echo arg-command", "env-command");
	check_pass(f1, "echo arg-command", "from-file");
	setenv("PGVAULT_PASSPHRASE_COMMAND", "exit 1", 1);
	check_pass_fails(NULL, NULL, PV_ERROR,
					 "passphrase command ($PGVAULT_PASSPHRASE_COMMAND) exited with status 1");
	setenv("PGVAULT_PASSPHRASE_FILE", f2, 1);
	check_pass(f1, "echo arg-command", "from-env-file");
	setenv("PGVAULT_PASSPHRASE", "from-env", 1);
	check_pass(f1, "echo arg-command", "from-env");
	setenv("PGVAULT_PASSPHRASE", "", 1);
	check_pass_fails(f1, NULL, PV_ECONFIG, "passphrase from $PGVAULT_PASSPHRASE is empty");
	clear_env();
	/* an empty variable for a file or command counts as unset */
	setenv("PGVAULT_PASSPHRASE_FILE", "", 1);
	setenv("PGVAULT_PASSPHRASE_COMMAND", "", 1);
	check_pass(NULL, "echo arg-command", "arg-command");
	clear_env();

	for (char **p = (char *[]) {f1, f2, crlf, twonl, empty, nul, big, NULL}; *p != NULL; p++)
	{
		unlink(*p);
		pv_free(*p);
	}
	pv_free(missing);
	rmdir(tmpdir);
}

/* ids from several threads at once, each with its own key, match a single-threaded run. */
typedef struct IdJob
{
	RepoKeys keys;
	unsigned char want[REPO_ID_LEN];
	int ok;
} IdJob;

static void *
id_worker(void *arg)
{
	IdJob *job = arg;
	unsigned char id[REPO_ID_LEN];

	job->ok = 1;
	for (int i = 0; i < 2000; i++)
	{
		repo_id_compute(id, &job->keys, "payload", 7);
		if (memcmp(id, job->want, REPO_ID_LEN) != 0)
			job->ok = 0;
	}
	return NULL;
}

static void
test_crypto_threads(void **state)
{
	IdJob jobs[4];
	pthread_t th[4];

	(void) state;
	for (size_t i = 0; i < 4; i++)
	{
		repo_keys_generate(&jobs[i].keys);
		repo_id_compute(jobs[i].want, &jobs[i].keys, "payload", 7);
	}
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, id_worker, &jobs[i]), 0);
	for (size_t i = 0; i < 4; i++)
	{
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].ok, 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crypto_id_known_answers),
		cmocka_unit_test(test_crypto_id_parse),
		cmocka_unit_test(test_crypto_random_and_keys),
		cmocka_unit_test(test_crypto_aead_roundtrip),
		cmocka_unit_test(test_crypto_aead_tamper),
		cmocka_unit_test(test_crypto_keyfile_roundtrip),
		cmocka_unit_test(test_crypto_keyfile_default_params),
		cmocka_unit_test(test_crypto_keyfile_tampered),
		cmocka_unit_test(test_crypto_passphrase_sources),
		cmocka_unit_test(test_crypto_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
