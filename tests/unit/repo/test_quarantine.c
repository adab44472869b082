/*
 * test_quarantine.c: the quarantine record (src/repo/quarantine.c): pairs
 * kept sorted and found again, the JSON round trip, exact errors for
 * damaged records, the index filter (only the (pack, id) pairs set aside,
 * the same blob in another pack stays), and save merging what is stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "repo/index.h"
#include "repo/quarantine.h"
#include "repo_test.h"
#include "storage/storage.h"

#include <string.h>

static void
fill(unsigned char id[REPO_ID_LEN], int v)
{
	memset(id, v, REPO_ID_LEN);
}

static void
test_add_has_roundtrip(void **state)
{
	RepoQuarantine *q = repo_quarantine_new(), *back = NULL;
	unsigned char p1[REPO_ID_LEN], p2[REPO_ID_LEN], a[REPO_ID_LEN], b[REPO_ID_LEN];
	Buf text = PV_BUF_INIT;

	(void) state;
	fill(p1, 0x11);
	fill(p2, 0x22);
	fill(a, 0xaa);
	fill(b, 0xbb);
	repo_quarantine_add(q, p2, b, 20);
	repo_quarantine_add(q, p1, a, 10);
	repo_quarantine_add(q, p1, a, 5);	/* a repeat keeps one entry, the earlier time */
	assert_int_equal(repo_quarantine_count(q), 2);
	assert_true(repo_quarantine_has(q, p1, a));
	assert_true(repo_quarantine_has(q, p2, b));
	assert_false(repo_quarantine_has(q, p1, b));	/* pairs, not ids */
	assert_true(repo_quarantine_has_id(q, b));
	assert_false(repo_quarantine_has_id(q, p1));
	assert_int_equal(repo_quarantine_count(NULL), 0);
	assert_false(repo_quarantine_has(NULL, p1, a));

	repo_quarantine_encode(q, &text);
	/* sorted by (pack, id), keys sorted: the same pairs always give the same bytes */
	assert_string_equal(buf_cstr(&text),
						"{\"blobs\":[{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
						"\"pack\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"time\":5},"
						"{\"id\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
						"\"pack\":\"2222222222222222222222222222222222222222222222222222222222222222\",\"time\":20}],"
						"\"format\":\"pgvault-quarantine\",\"version\":1}");
	assert_int_equal(repo_quarantine_decode(&back, (const char *) text.data, text.len), 0);
	assert_int_equal(repo_quarantine_count(back), 2);
	assert_true(repo_quarantine_has(back, p1, a) && repo_quarantine_has(back, p2, b));
	repo_quarantine_free(back);
	repo_quarantine_free(q);
	buf_free(&text);
}

static void
test_decode_errors(void **state)
{
	static const struct
	{
		const char *text;
		const char *msg;
	} bad[] = {
		{"{\"format\":\"pgvault-packcheck\",\"version\":1,\"blobs\":[]}",
		 "quarantine record 'records/quarantine' is damaged: it is not a quarantine record (no \"format\": "
		 "\"pgvault-quarantine\")"},
		{"{\"format\":\"pgvault-quarantine\",\"version\":2,\"blobs\":[]}",
		 "quarantine record 'records/quarantine' has version 2, this pgvault reads version 1"},
		{"{\"format\":\"pgvault-quarantine\",\"version\":1,\"blobs\":[{\"pack\":\"ab\",\"id\":\"cd\",\"time\":1}]}",
		 "quarantine record 'records/quarantine' is damaged: entry 0: 'ab' / 'cd' is not a pack and blob id"},
		{"{\"format\":\"pgvault-quarantine\",\"version\":1,\"blobs\":[7]}",
		 "quarantine record 'records/quarantine' is damaged: entry 0 is not an object"},
	};
	RepoQuarantine *q = NULL;

	(void) state;
	for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++)
	{
		assert_int_equal(repo_quarantine_decode(&q, bad[i].text, strlen(bad[i].text)), PV_ECORRUPT);
		assert_null(q);
		assert_string_equal(pv_error_msg(), bad[i].msg);
		pv_error_clear();
	}
}

static void
test_index_filter(void **state)
{
	RepoQuarantine *q = repo_quarantine_new();
	RepoIndex *idx = repo_index_new();
	unsigned char bad_pack[REPO_ID_LEN], good_pack[REPO_ID_LEN];
	RepoPackEntry e[2];
	RepoIndexHit hit;

	(void) state;
	memset(e, 0, sizeof(e));
	fill(bad_pack, 0x01);
	fill(good_pack, 0x02);
	fill(e[0].id, 0xaa);
	fill(e[1].id, 0xbb);
	e[0].length = e[1].length = 10;
	e[1].offset = 10;
	repo_quarantine_add(q, bad_pack, e[0].id, 1);
	repo_quarantine_index_add(q, idx, bad_pack, e, 2);
	assert_false(repo_index_lookup(idx, e[0].id, &hit));	/* set aside */
	assert_true(repo_index_lookup(idx, e[1].id, &hit));		/* its neighbour stays */
	assert_memory_equal(hit.pack_id, bad_pack, REPO_ID_LEN);
	/* the same blob stored again in another pack (the next backup) is found there */
	repo_quarantine_index_add(q, idx, good_pack, e, 1);
	assert_true(repo_index_lookup(idx, e[0].id, &hit));
	assert_memory_equal(hit.pack_id, good_pack, REPO_ID_LEN);
	repo_index_free(idx);
	repo_quarantine_free(q);
}

static void
test_save_merges_and_load(void **state)
{
	char *dir = rt_tmpdir();
	Repo *repo = rt_repo_new(dir, "r", true, "none", 0, NULL);
	RepoQuarantine *one = repo_quarantine_new(), *two = repo_quarantine_new(), *got = NULL;
	unsigned char p[REPO_ID_LEN], a[REPO_ID_LEN], b[REPO_ID_LEN];

	(void) state;
	assert_int_equal(repo_quarantine_load(&got, repo), 0);	/* none yet: empty */
	assert_int_equal(repo_quarantine_count(got), 0);
	repo_quarantine_free(got);
	fill(p, 0x01);
	fill(a, 0xaa);
	fill(b, 0xbb);
	repo_quarantine_add(one, p, a, 1);
	assert_int_equal(repo_quarantine_save(one, repo, NULL, NULL), 0);
	repo_quarantine_add(two, p, b, 2);	/* a second verify that did not see the first's */
	assert_int_equal(repo_quarantine_save(two, repo, NULL, NULL), 0);
	assert_int_equal(repo_quarantine_count(two), 2);
	assert_int_equal(repo_quarantine_load(&got, repo), 0);
	assert_true(repo_quarantine_has(got, p, a) && repo_quarantine_has(got, p, b));
	repo_quarantine_free(got);
	/* a damaged record: load says so; the repository's own copy counts it as empty */
	assert_int_equal(storage_put(repo_storage(repo), REPO_QUARANTINE_KEY, "junk", 4, 0), 0);
	assert_int_equal(repo_quarantine_load(&got, repo), PV_ECORRUPT);
	pv_error_clear();
	{
		const RepoQuarantine *cached = NULL;

		assert_int_equal(repo_quarantine_get(repo, &cached), 0);
		assert_int_equal(repo_quarantine_count(cached), 0);
	}
	repo_quarantine_free(one);
	repo_quarantine_free(two);
	repo_free(repo);
	rt_tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_has_roundtrip),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_index_filter),
		cmocka_unit_test(test_save_merges_and_load),
	};

	pv_json_init();
	pv_log_set_console_level(PV_LOG_OFF);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
