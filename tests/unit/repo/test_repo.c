/*
 * test_repo.c: creating and opening repositories (config contents, refusal
 * to init over anything, wrong or missing passphrase, tampered config), key
 * management (add, list, remove, the last-key and current-key refusals),
 * metadata object checksums, and locks (shared+shared, exclusive blocked
 * both ways, stale locks broken by age and by dead pid, lost locks).
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/lock.h"
#include "repo/repo.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct Fixture
{
	char *dir;
} Fixture;

static int
setup(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->dir = rt_tmpdir();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	rt_tmpdir_free(f->dir);
	pv_free(f);
	return 0;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char *p = pv_fs_path_join(dir, name);

	assert_int_equal(pv_fs_write_atomic(p, text, strlen(text), 0600), 0);
	pv_free(p);
}

static void
test_init_plain_and_open(void **state)
{
	Fixture *f = *state;
	char *url = pv_fs_path_join(f->dir, "r");
	RepoChunkerParams cp = {64 * 1024, 256 * 1024, 1024 * 1024, 12345};
	RepoInitOpts opts = {.compression = "lz4:5", .pack_size = 8 * 1024 * 1024, .chunker = &cp};
	Repo *created = NULL, *repo = NULL;
	const json_t *cfg;
	RepoCompress c;
	int level;

	assert_int_equal(repo_init(&created, url, &opts), 0);
	assert_int_equal(strlen(repo_id(created)), 64);
	assert_int_equal(repo_open(&repo, url, NULL, NULL), 0);
	assert_string_equal(repo_id(repo), repo_id(created));
	assert_false(repo_is_encrypted(repo));
	assert_null(repo_keys(repo));
	repo_compression(repo, &c, &level);
	assert_int_equal(c, REPO_COMPRESS_LZ4);
	assert_int_equal(level, 5);
	assert_int_equal(repo_pack_size(repo), 8 * 1024 * 1024);
	assert_int_equal(repo_config_chunker(repo)->avg_size, 256 * 1024);
	assert_int_equal(repo_config_chunker(repo)->seed, 0);	/* plaintext repositories use seed 0 */
	cfg = repo_config_json(repo);
	assert_string_equal(json_string_value(json_object_get(cfg, "format")), "pgvault-repository");
	assert_int_equal(json_integer_value(json_object_get(cfg, "version")), 1);
	assert_string_equal(json_string_value(json_object_get(cfg, "encryption")), "none");
	assert_string_equal(json_string_value(json_object_get(cfg, "ids")), "sha256");
	assert_null(json_object_get(cfg, "sealed"));
	repo_free(repo);
	repo_free(created);
	pv_free(url);
}

static void
test_init_refuses_existing(void **state)
{
	Fixture *f = *state;
	char *url = pv_fs_path_join(f->dir, "r");
	char *other = pv_fs_path_join(f->dir, "other");
	RepoInitOpts opts = {0};
	char want[512];
	Repo *repo = NULL;

	assert_int_equal(repo_init(NULL, url, &opts), 0);
	assert_int_equal(repo_init(NULL, url, &opts), PV_EEXISTS);
	snprintf(want, sizeof(want), "a repository already exists at '%s'", url);
	assert_string_equal(pv_error_msg(), want);
	opts.encrypt = true;
	opts.passphrase = "x";
	assert_int_equal(repo_init(NULL, url, &opts), PV_EEXISTS);

	/* Anything else there: refused too, nothing written. */
	assert_int_equal(pv_fs_mkdir_p(other, 0700), 0);
	write_file(other, "PG_VERSION", "15\n");
	assert_int_equal(repo_init(NULL, other, &opts), PV_EEXISTS);
	snprintf(want, sizeof(want), "'%s' is not empty: refusing to create a repository there", other);
	assert_string_equal(pv_error_msg(), want);
	assert_int_equal(repo_open(&repo, other, NULL, NULL), PV_ENOTFOUND);
	snprintf(want, sizeof(want), "no repository at '%s'", other);
	assert_string_equal(pv_error_msg(), want);
	assert_null(repo);
	pv_free(url);
	pv_free(other);
}

static void
test_init_bad_options(void **state)
{
	Fixture *f = *state;
	char *url = pv_fs_path_join(f->dir, "r");
	RepoInitOpts opts = {.compression = "brotli"};

	assert_int_equal(repo_init(NULL, url, &opts), PV_EUSAGE);
	opts.compression = NULL;
	opts.pack_size = 100;
	assert_int_equal(repo_init(NULL, url, &opts), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "pack size 100 is out of range (4 KiB to 1 GiB)");
	opts.pack_size = 0;
	opts.encrypt = true;
	assert_int_equal(repo_init(NULL, url, &opts), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "an encrypted repository needs a passphrase");
	/* Nothing was left behind by the refusals. */
	opts.encrypt = false;
	assert_int_equal(repo_init(NULL, url, &opts), 0);
	pv_free(url);
}

static void
test_encrypted_open(void **state)
{
	Fixture *f = *state;
	char *url = NULL;
	Repo *repo = rt_repo_new(f->dir, "r", true, NULL, 0, &url);
	Repo *again = (Repo *) 0x1;
	const json_t *cfg = repo_config_json(repo);
	char want[512];

	assert_true(repo_is_encrypted(repo));
	assert_non_null(repo_keys(repo));
	assert_int_equal(strlen(repo_key_id(repo)), 64);
	assert_string_equal(json_string_value(json_object_get(cfg, "ids")), "hmac-sha256");
	assert_non_null(json_object_get(cfg, "sealed"));
	/* The secret seed is not in the config. */
	assert_null(json_object_get(json_object_get(cfg, "chunker"), "seed"));
	assert_int_equal(repo_config_chunker(repo)->seed, repo_keys_chunker_seed(repo_keys(repo)));

	assert_int_equal(repo_open(&again, url, rt_passphrase, "wrong"), PV_EAUTH);
	assert_null(again);
	snprintf(want, sizeof(want), "wrong passphrase for repository '%s'", url);
	assert_string_equal(pv_error_msg(), want);
	assert_int_equal(repo_open(&again, url, rt_passphrase, NULL), PV_EUSAGE);
	snprintf(want, sizeof(want), "repository '%s' is encrypted and no passphrase was given", url);
	assert_string_equal(pv_error_msg(), want);
	assert_int_equal(repo_open(&again, url, rt_passphrase, RT_PASS), 0);
	assert_memory_equal(repo_keys(again), repo_keys(repo), sizeof(RepoKeys));
	repo_free(again);
	repo_free(repo);
	pv_free(url);
}

static void
test_config_tampering(void **state)
{
	Fixture *f = *state;
	char *url = NULL;
	Repo *repo = rt_repo_new(f->dir, "r", true, "zstd:3", 0, &url);
	Repo *again = NULL;
	json_t *cfg = json_deep_copy(repo_config_json(repo));
	char *text;
	char want[512];

	/* Downgrade the default compression in the plaintext: the seal notices. */
	json_object_set_new(cfg, "compression", json_string("none"));
	text = json_dumps(cfg, JSON_INDENT(2));
	write_file(url, "config", text);
	free(text);
	assert_int_equal(repo_open(&again, url, rt_passphrase, RT_PASS), PV_ECORRUPT);
	snprintf(want, sizeof(want), "the config of repository '%s' was modified: it differs from its "
			 "sealed copy", url);
	assert_string_equal(pv_error_msg(), want);

	/* Turn encryption off: the key files give it away. */
	json_object_set_new(cfg, "encryption", json_string("none"));
	json_object_set_new(cfg, "ids", json_string("sha256"));
	json_object_del(cfg, "sealed");
	text = json_dumps(cfg, JSON_INDENT(2));
	write_file(url, "config", text);
	free(text);
	assert_int_equal(repo_open(&again, url, NULL, NULL), PV_ECORRUPT);
	snprintf(want, sizeof(want), "config of repository '%s' says it is not encrypted, but it has key "
			 "files", url);
	assert_string_equal(pv_error_msg(), want);

	/* A newer format version is refused with a clear message. */
	json_object_set_new(cfg, "version", json_integer(2));
	text = json_dumps(cfg, JSON_INDENT(2));
	write_file(url, "config", text);
	free(text);
	assert_int_equal(repo_open(&again, url, NULL, NULL), PV_ECONFIG);
	snprintf(want, sizeof(want), "repository '%s' has format version 2, this pgvault reads version 1", url);
	assert_string_equal(pv_error_msg(), want);

	write_file(url, "config", "{not json");
	assert_int_equal(repo_open(&again, url, NULL, NULL), PV_ECORRUPT);
	json_decref(cfg);
	repo_free(repo);
	pv_free(url);
}

typedef struct KeyList
{
	char ids[8][65];
	bool current[8];
	int n;
} KeyList;

static int
key_collect(const RepoKeyInfo *info, void *payload)
{
	KeyList *l = payload;

	snprintf(l->ids[l->n], 65, "%s", info->id);
	l->current[l->n] = info->current;
	l->n++;
	return 0;
}

static void
test_keys(void **state)
{
	Fixture *f = *state;
	char *url = NULL;
	Repo *repo = rt_repo_new(f->dir, "r", true, NULL, 0, &url);
	Repo *other = NULL;
	char added[65];
	char prefix[9];
	KeyList l = {0};

	assert_int_equal(repo_key_list(repo, key_collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_true(l.current[0]);
	assert_string_equal(l.ids[0], repo_key_id(repo));

	/* The last key cannot go. */
	assert_int_equal(repo_key_remove(repo, l.ids[0]), PV_EREFUSED);
	assert_non_null(strstr(pv_error_msg(), "is the last key of repository"));

	assert_int_equal(repo_key_add(repo, "second passphrase", rt_kdf(), added), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(repo_key_list(repo, key_collect, &l), 0);
	assert_int_equal(l.n, 2);

	/* The key in use cannot go either. */
	assert_int_equal(repo_key_remove(repo, repo_key_id(repo)), PV_EREFUSED);
	assert_non_null(strstr(pv_error_msg(), "is the one this command opened the repository with"));

	/* Open with the new passphrase: same master keys; remove the old key by prefix. */
	assert_int_equal(repo_open(&other, url, rt_passphrase, "second passphrase"), 0);
	assert_string_equal(repo_key_id(other), added);
	assert_memory_equal(repo_keys(other), repo_keys(repo), sizeof(RepoKeys));
	assert_int_equal(repo_key_remove(other, "zz"), PV_EUSAGE);
	assert_int_equal(repo_key_remove(other, "ffffffffffff"), PV_ENOTFOUND);
	snprintf(prefix, sizeof(prefix), "%.8s", repo_key_id(repo));
	assert_int_equal(repo_key_remove(other, prefix), 0);
	repo_free(other);
	other = NULL;
	assert_int_equal(repo_open(&other, url, rt_passphrase, RT_PASS), PV_EAUTH);
	assert_int_equal(repo_open(&other, url, rt_passphrase, "second passphrase"), 0);
	repo_free(other);
	repo_free(repo);

	/* Plain repositories have no keys. */
	repo = rt_repo_new(f->dir, "plain", false, NULL, 0, NULL);
	assert_int_equal(repo_key_list(repo, key_collect, &l), PV_EUSAGE);
	assert_int_equal(repo_key_add(repo, "x", rt_kdf(), NULL), PV_EUSAGE);
	repo_free(repo);
	pv_free(url);
}

static void
test_meta_checksum(void **state)
{
	Fixture *f = *state;
	Repo *repo = rt_repo_new(f->dir, "r", false, NULL, 0, NULL);
	const char doc[] = "{\"hello\": \"world\", \"n\": 12345678901234}";
	Buf stored = PV_BUF_INIT, plain = PV_BUF_INIT;
	size_t bad = 0;

	assert_int_equal(repo_meta_encode(repo, doc, strlen(doc), &stored), 0);
	assert_int_equal(repo_meta_decode(repo, stored.data, stored.len, &plain), 0);
	assert_int_equal(plain.len, strlen(doc));
	assert_memory_equal(plain.data, doc, strlen(doc));
	/* Every single-bit flip anywhere is caught. */
	for (size_t i = 0; i < stored.len; i++)
	{
		stored.data[i] ^= 0x10;
		buf_reset(&plain);
		if (repo_meta_decode(repo, stored.data, stored.len, &plain) == PV_ECORRUPT)
			bad++;
		stored.data[i] ^= 0x10;
	}
	assert_int_equal(bad, stored.len);
	buf_free(&stored);
	buf_free(&plain);
	repo_free(repo);
}

/* ---- locks ---- */

static int
lock_info_count(const RepoLockInfo *info, void *payload)
{
	(*(int *) payload)++;
	return 0;
}

static int
locks_now(Repo *repo)
{
	int n = 0;

	assert_int_equal(repo_lock_list(repo, 0, lock_info_count, &n), 0);
	return n;
}

static void
test_lock_shared_and_exclusive(void **state)
{
	Fixture *f = *state;
	Repo *repo = rt_repo_new(f->dir, "r", false, NULL, 0, NULL);
	RepoLock *a = NULL, *b = NULL, *x = NULL;
	char want[256];

	assert_int_equal(repo_lock_acquire(&a, repo, false), 0);
	assert_int_equal(repo_lock_acquire(&b, repo, false), 0);
	assert_int_equal(locks_now(repo), 2);
	assert_int_equal(repo_lock_check(a), 0);

	assert_int_equal(repo_lock_acquire(&x, repo, true), PV_ELOCKED);
	assert_null(x);
	snprintf(want, sizeof(want), "repository '%s' is locked: a shared lock held by pid %d on host '%s'",
			 repo_url(repo), (int) getpid(), repo_hostname(repo));
	assert_memory_equal(pv_error_msg(), want, strlen(want));
	assert_int_equal(locks_now(repo), 2);	/* ours was taken back */

	repo_lock_release(a);
	repo_lock_release(b);
	assert_int_equal(locks_now(repo), 0);

	assert_int_equal(repo_lock_acquire(&x, repo, true), 0);
	assert_int_equal(repo_lock_acquire(&a, repo, false), PV_ELOCKED);
	assert_non_null(strstr(pv_error_msg(), "an exclusive lock held by pid"));
	assert_int_equal(repo_lock_acquire(&b, repo, true), PV_ELOCKED);
	repo_lock_release(x);
	assert_int_equal(repo_lock_acquire(&a, repo, false), 0);
	repo_lock_release(a);
	assert_int_equal(locks_now(repo), 0);
	repo_free(repo);
}

static void
test_lock_stale_broken(void **state)
{
	Fixture *f = *state;
	char *url = NULL;
	Repo *repo = rt_repo_new(f->dir, "r", false, NULL, 0, &url);
	RepoLock *x = NULL;
	int64_t now = pv_time_now() / PV_USEC_PER_SEC;
	char text[512];
	pid_t child;
	int status;

	/* An exclusive lock from another host, not refreshed for an hour. */
	snprintf(text, sizeof(text), "{\"version\":1,\"host\":\"elsewhere\",\"pid\":1,\"user\":\"u\","
			 "\"command\":\"prune\",\"exclusive\":true,\"time\":\"x\",\"time_unix\":%lld,"
			 "\"refresh_time\":\"x\",\"refresh_time_unix\":%lld}", (long long) now - 7200,
			 (long long) now - 3600);
	assert_int_equal(storage_put(repo_storage(repo), "locks/00000000000000000000000000000001", text,
								 strlen(text), 0), 0);
	/* An exclusive lock of this host whose process is gone. */
	child = fork();
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, &status, 0), child);
	snprintf(text, sizeof(text), "{\"version\":1,\"host\":\"%s\",\"pid\":%d,\"user\":\"u\","
			 "\"command\":\"prune\",\"exclusive\":true,\"time\":\"x\",\"time_unix\":%lld,"
			 "\"refresh_time\":\"x\",\"refresh_time_unix\":%lld}", repo_hostname(repo), (int) child,
			 (long long) now, (long long) now);
	assert_int_equal(storage_put(repo_storage(repo), "locks/00000000000000000000000000000002", text,
								 strlen(text), 0), 0);
	assert_int_equal(locks_now(repo), 2);

	/* A fresh exclusive lock from another host is respected. */
	snprintf(text, sizeof(text), "{\"version\":1,\"host\":\"elsewhere\",\"pid\":1,\"user\":\"u\","
			 "\"command\":\"prune\",\"exclusive\":true,\"time\":\"x\",\"time_unix\":%lld,"
			 "\"refresh_time\":\"x\",\"refresh_time_unix\":%lld}", (long long) now, (long long) now);
	assert_int_equal(storage_put(repo_storage(repo), "locks/00000000000000000000000000000003", text,
								 strlen(text), 0), 0);
	assert_int_equal(repo_lock_acquire(&x, repo, false), PV_ELOCKED);
	assert_non_null(strstr(pv_error_msg(), "an exclusive lock held by pid 1 on host 'elsewhere' (prune)"));
	/* The two stale ones were broken on the way. */
	assert_int_equal(locks_now(repo), 1);
	assert_int_equal(storage_delete(repo_storage(repo), "locks/00000000000000000000000000000003"), 0);
	assert_int_equal(repo_lock_acquire(&x, repo, false), 0);
	repo_lock_release(x);

	/* repo_lock_break removes stale ones only, unless asked for all. */
	{
		int n = -1;

		assert_int_equal(storage_put(repo_storage(repo), "locks/00000000000000000000000000000004", text,
									 strlen(text), 0), 0);
		assert_int_equal(repo_lock_break(repo, 0, false, &n), 0);
		assert_int_equal(n, 0);
		assert_int_equal(repo_lock_break(repo, 0, true, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(locks_now(repo), 0);
	}
	repo_free(repo);
	pv_free(url);
}

static void
test_lock_refresh_and_loss(void **state)
{
	Fixture *f = *state;
	Repo *repo = rt_repo_new(f->dir, "r", false, NULL, 0, NULL);
	RepoLockOpts opts = {.exclusive = false, .command = "backup", .stale_seconds = 60, .refresh_seconds = 1};
	RepoLock *l = NULL;
	Buf before = PV_BUF_INIT, after = PV_BUF_INIT;

	assert_int_equal(repo_lock_acquire_opts(&l, repo, &opts), 0);
	assert_int_equal(storage_get(repo_storage(repo), repo_lock_key(l), &before), 0);
	assert_non_null(strstr((const char *) before.data, "\"command\":\"backup\""));
	/*
	 * Refreshed: the object is rewritten with a later refresh time.  Poll (the
	 * refresh thread may be late on a loaded machine or under ASan) for up to
	 * a minute, well short of the 60 s stale timeout mattering here.
	 */
	for (int i = 0; i < 600; i++)
	{
		usleep(100 * 1000);
		buf_reset(&after);
		assert_int_equal(storage_get(repo_storage(repo), repo_lock_key(l), &after), 0);
		if (after.len != before.len || memcmp(after.data, before.data, before.len) != 0)
			break;
	}
	assert_string_not_equal((const char *) before.data, (const char *) after.data);
	assert_int_equal(repo_lock_check(l), 0);

	/* Someone breaks it: the holder notices at the next refresh. */
	assert_int_equal(storage_delete(repo_storage(repo), repo_lock_key(l)), 0);
	for (int i = 0; i < 600 && repo_lock_check(l) == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(repo_lock_check(l), PV_ELOCKED);
	assert_non_null(strstr(pv_error_msg(), "was lost"));
	repo_lock_release(l);
	buf_free(&before);
	buf_free(&after);
	repo_free(repo);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_plain_and_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_refuses_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_bad_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encrypted_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_tampering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_shared_and_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_stale_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_refresh_and_loss, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
