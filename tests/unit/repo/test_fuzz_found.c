/*
 * test_fuzz_found.c: the inputs the libFuzzer targets (tests/fuzz/) found
 * to break repository parsers, replayed so they stay fixed:
 *   fuzz_lock:     a lock object with times (or a pid) out of range made
 *                  repo_lock_list overflow int64 (UB); such a lock is now
 *                  unreadable, so it is judged by the storage's clock;
 *   fuzz_copy_lag: a lag record with a huge "since_unix" overflowed to
 *                  microseconds (UB); such a time is now unknown (0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/json.h"
#include "common/log.h"
#include "repo/copy.h"
#include "repo/lock.h"
#include "repo_test.h"
#include "storage/storage.h"

typedef struct Seen
{
	int n;
	char host[64];
	bool stale;
	int64_t time;
} Seen;

static int
lock_seen(const RepoLockInfo *info, void *payload)
{
	Seen *s = payload;

	s->n++;
	snprintf(s->host, sizeof(s->host), "%s", info->host);
	s->stale = info->stale;
	s->time = info->time;
	return 0;
}

static void
test_lock_times_out_of_range(void **state)
{
	static const char *const docs[] = {
		/* found by fuzz_lock (reduced) */
		("{\"host\":\"x\",\"pid\":1,\"exclusive\":true,\"time_unix\":9223372036854775807,"
		 "\"refresh_time_unix\":-9223372036854775807}"),
		"{\"host\":\"x\",\"pid\":1,\"exclusive\":false,\"time_unix\":1,\"refresh_time_unix\":9223372036854775}",
		"{\"host\":\"x\",\"pid\":4294967297,\"exclusive\":false,\"time_unix\":1,\"refresh_time_unix\":2}",
	};
	char *dir = rt_tmpdir();
	Repo *repo = rt_repo_new(dir, "r", false, "none", 0, NULL);

	(void) state;
	for (size_t i = 0; i < PV_ARRAY_LEN(docs); i++)
	{
		Seen s = {0};
		StorageInfo si;

		assert_int_equal(storage_put(repo_storage(repo), "locks/0123456789abcdef0123456789abcdef", docs[i],
									 strlen(docs[i]), 0), 0);
		assert_int_equal(storage_stat(repo_storage(repo), "locks/0123456789abcdef0123456789abcdef", &si), 0);
		assert_int_equal(repo_lock_list(repo, 300, lock_seen, &s), 0);
		assert_int_equal(s.n, 1);
		/* unreadable: host "?", times from the storage (just written: not stale) */
		assert_string_equal(s.host, "?");
		assert_int_equal(s.time, si.mtime);
		assert_false(s.stale);
	}
	repo_free(repo);
	rt_tmpdir_free(dir);
}

static void
put_meta(Repo *repo, const char *key, const char *text)
{
	Buf stored = PV_BUF_INIT;

	assert_int_equal(repo_meta_encode(repo, text, strlen(text), &stored), 0);
	assert_int_equal(storage_put(repo_storage(repo), key, stored.data, stored.len, 0), 0);
	buf_free(&stored);
}

static void
test_lag_time_out_of_range(void **state)
{
	char *dir = rt_tmpdir();
	Repo *repo = rt_repo_new(dir, "r", false, "none", 0, NULL);
	RepoCopyLag l;
	RepoCopyLagList list;

	(void) state;
	/* found by fuzz_copy_lag */
	put_meta(repo, "records/lag/offsite/backup-20260101T000000Z-000000",
			 "{\"url\":\"s3://offsite/pgvault\",\"since_unix\":17950079500000000,\"las\":1795000600,"
			 "\"attempts\":3,\"error\":\"cnot connect\"}");
	assert_int_equal(repo_copy_lag_get(repo, "offsite", "backup", "20260101T000000Z-000000", &l), 0);
	assert_int_equal(l.since, 0);
	assert_int_equal(l.last_attempt, 0);
	assert_int_equal(l.attempts, 3);
	assert_string_equal(l.url, "s3://offsite/pgvault");
	assert_string_equal(l.error, "cnot connect");
	repo_copy_lag_free(&l);

	put_meta(repo, "records/lag/offsite/backup-20260101T000000Z-000000",
			 "{\"since_unix\":-9223372036854775807,\"last_attempt_unix\":1795000600,\"attempts\":1}");
	assert_int_equal(repo_copy_lag_list(repo, "offsite", &list), 0);
	assert_int_equal(list.n, 1);
	assert_int_equal(list.items[0].since, 0);
	assert_int_equal(list.items[0].last_attempt, INT64_C(1795000600) * PV_USEC_PER_SEC);
	repo_copy_lag_list_free(&list);
	repo_free(repo);
	rt_tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_times_out_of_range),
		cmocka_unit_test(test_lag_time_out_of_range),
	};

	pv_json_init();
	pv_log_set_console_level(PV_LOG_OFF);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
