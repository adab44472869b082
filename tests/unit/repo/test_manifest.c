/*
 * test_manifest.c: backup ids, item JSON lines (round trip, offsets and
 * gaps, malformed lines), and manifest objects in a repository: write,
 * load by id / prefix / latest (also per kind and source), list, delete,
 * no overwrite, and damage (a flipped byte, a wrong id, a newer format).
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

static void
test_backup_ids(void **state)
{
	char a[REPO_BACKUP_ID_LEN + 1], b[REPO_BACKUP_ID_LEN + 1];
	PvTime t;

	assert_int_equal(pv_time_parse(&t, "2026-11-22T02:39:00Z", NULL), 0);
	repo_backup_id_new(a, t);
	assert_int_equal(strlen(a), REPO_BACKUP_ID_LEN);
	assert_memory_equal(a, "20261122T023900Z-", 17);
	assert_true(repo_backup_id_valid(a));
	repo_backup_id_new(b, t + PV_USEC_PER_SEC);
	assert_true(strcmp(a, b) < 0);	/* sortable by time */
	assert_false(repo_backup_id_valid("20261122T023900Z-ABCDEF"));
	assert_false(repo_backup_id_valid("20261122T023900Z-abcde"));
	assert_false(repo_backup_id_valid("20261122-023900Z-abcdef"));
	assert_false(repo_backup_id_valid("../../etc/passwd"));
	assert_false(repo_backup_id_valid(NULL));
}

static void
test_item_roundtrip(void **state)
{
	RepoChunkRef chunks[3];
	RepoItem item = {0};
	RepoItem *back = NULL;
	Buf line = PV_BUF_INIT;

	memset(chunks, 0, sizeof(chunks));
	for (int i = 0; i < 3; i++)
		rt_fill_random(chunks[i].id, REPO_ID_LEN, (uint64_t) i);
	chunks[0] = (RepoChunkRef) {.raw_length = 8192, .offset = 0};
	chunks[1].raw_length = 8192;
	chunks[1].offset = 8192;
	chunks[2].raw_length = 100;
	chunks[2].offset = 65536;	/* a gap of zeros before it */
	item.name = "base/16384/2619 \"quoted\" é";
	item.type = "file";
	item.size = 70000;	/* a zero tail after the last chunk */
	item.has_mode = true;
	item.mode = 0600;
	item.mtime = 1763778000;
	item.has_sha256 = true;
	memset(item.sha256, 0xab, 32);
	item.chunk_size = 8192;
	item.chunks = chunks;
	item.nchunks = 3;
	item.meta = json_pack("{s:s}", "relation", "pg_statistic");

	repo_item_to_json(&item, &line);
	assert_int_equal(line.data[line.len - 1], '\n');
	assert_null(memchr(line.data, '\n', line.len - 1));
	/* Offsets only where a chunk does not follow its predecessor. */
	assert_non_null(strstr((const char *) line.data, ",100,65536]"));
	assert_null(strstr((const char *) line.data, ",8192,8192]"));
	assert_int_equal(repo_item_parse(&back, (const char *) line.data, line.len - 1), 0);
	assert_string_equal(back->name, item.name);
	assert_string_equal(back->type, "file");
	assert_int_equal(back->size, 70000);
	assert_true(back->has_mode);
	assert_int_equal(back->mode, 0600);
	assert_int_equal(back->mtime, 1763778000);
	assert_true(back->has_sha256);
	assert_memory_equal(back->sha256, item.sha256, 32);
	assert_int_equal(back->chunk_size, 8192);
	assert_int_equal(back->nchunks, 3);
	for (int i = 0; i < 3; i++)
	{
		assert_memory_equal(back->chunks[i].id, chunks[i].id, REPO_ID_LEN);
		assert_int_equal(back->chunks[i].offset, chunks[i].offset);
		assert_int_equal(back->chunks[i].raw_length, chunks[i].raw_length);
	}
	assert_string_equal(json_string_value(json_object_get(back->meta, "relation")), "pg_statistic");
	repo_item_free(back);
	json_decref(item.meta);
	buf_free(&line);
}

static void
test_item_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"type\":\"file\",\"size\":1,\"chunks\":[]}",
		"{\"name\":\"a\",\"size\":1,\"chunks\":[]}",
		"{\"name\":\"a\",\"type\":\"file\",\"chunks\":[]}",
		"{\"name\":\"a\",\"type\":\"file\",\"size\":-1,\"chunks\":[]}",
		"{\"name\":\"a\",\"type\":\"file\",\"size\":1}",
		"{\"name\":\"a\",\"type\":\"file\",\"size\":1,\"chunks\":[[\"zz\",1]]}",
		"{\"name\":\"a\",\"type\":\"file\",\"size\":1,\"sha256\":\"12\",\"chunks\":[]}",
		"{\"name\":\"a\",\"type\":\"file\",\"size\":1,\"mode\":1,\"chunks\":[]}",
		"{\"name\":\"a\",\"name\":\"b\",\"type\":\"file\",\"size\":1,\"chunks\":[]}",
	};
	char line[512];
	char id[65];
	RepoItem *item = NULL;

	for (size_t i = 0; i < PV_ARRAY_LEN(bad); i++)
	{
		assert_int_equal(repo_item_parse(&item, bad[i], strlen(bad[i])), PV_ECORRUPT);
		assert_null(item);
	}
	memset(id, 'a', 64);
	id[64] = '\0';
	/* Chunks past the size, overlapping, of length 0. */
	snprintf(line, sizeof(line), "{\"name\":\"a\",\"type\":\"file\",\"size\":5,\"chunks\":[[\"%s\",6]]}", id);
	assert_int_equal(repo_item_parse(&item, line, strlen(line)), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "item 'a' is malformed: chunks extend past the item's size");
	snprintf(line, sizeof(line), "{\"name\":\"a\",\"type\":\"file\",\"size\":50,\"chunks\":[[\"%s\",6],"
			 "[\"%s\",6,3]]}", id, id);
	assert_int_equal(repo_item_parse(&item, line, strlen(line)), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "item 'a' is malformed: chunks overlap");
	snprintf(line, sizeof(line), "{\"name\":\"a\",\"type\":\"file\",\"size\":50,\"chunks\":[[\"%s\",0]]}", id);
	assert_int_equal(repo_item_parse(&item, line, strlen(line)), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "item 'a' is malformed: bad chunk reference");
	/* A valid minimal one. */
	snprintf(line, sizeof(line), "{\"name\":\"a\",\"type\":\"stream\",\"size\":0,\"chunks\":[]}");
	assert_int_equal(repo_item_parse(&item, line, strlen(line)), 0);
	assert_false(item->has_mode);
	assert_false(item->has_sha256);
	repo_item_free(item);
}

/* A minimal manifest document with no items. */
static json_t *
doc_new(const char *id, const char *kind, const char *source)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:n, s:{}, s:{}, s:{s:s, s:i, s:[]}}",
					 "format", 1, "id", id, "kind", kind, "source", source, "host", "h",
					 "start_time", "2026-11-22T02:39:00Z", "parent", "metadata", "totals",
					 "items", "encoding", "jsonl", "count", 0, "blobs");
}

static void
test_manifest_store(void **state)
{
	char *dir = rt_tmpdir();
	char *url = NULL;
	Repo *repo = rt_repo_new(dir, "r", true, NULL, 0, &url);
	const char *ids[] = {"20261120T010000Z-000001", "20261121T010000Z-000002",
		"20261121T020000Z-000003", "20261122T010000Z-000004"};
	const char *kinds[] = {"logical", "physical", "logical", "physical"};
	const char *sources[] = {"a", "a", "b", "b"};
	RepoManifest *m = NULL;
	char **list = NULL;
	size_t n = 0;
	char got[REPO_BACKUP_ID_LEN + 1];
	char want[256];
	json_t *doc;

	for (int i = 3; i >= 0; i--)
	{
		doc = doc_new(ids[i], kinds[i], sources[i]);
		assert_int_equal(repo_manifest_write(repo, doc), 0);
		json_decref(doc);
	}
	doc = doc_new(ids[1], "logical", "x");
	assert_int_equal(repo_manifest_write(repo, doc), PV_EEXISTS);
	snprintf(want, sizeof(want), "backup '%s' already exists in repository '%s'", ids[1], url);
	assert_string_equal(pv_error_msg(), want);
	json_decref(doc);
	doc = doc_new("not-an-id", "logical", "x");
	assert_int_equal(repo_manifest_write(repo, doc), PV_ECORRUPT);
	json_decref(doc);

	assert_int_equal(repo_manifest_ids(repo, &list, &n), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(list[i], ids[i]);
	repo_manifest_ids_free(list, n);

	assert_int_equal(repo_manifest_resolve(repo, "latest", NULL, NULL, got), 0);
	assert_string_equal(got, ids[3]);
	assert_int_equal(repo_manifest_resolve(repo, "latest", "logical", NULL, got), 0);
	assert_string_equal(got, ids[2]);
	assert_int_equal(repo_manifest_resolve(repo, "latest", "physical", "a", got), 0);
	assert_string_equal(got, ids[1]);
	assert_int_equal(repo_manifest_resolve(repo, "latest", "wal", NULL, got), PV_ENOTFOUND);
	assert_int_equal(repo_manifest_resolve(repo, "20261122", NULL, NULL, got), 0);
	assert_string_equal(got, ids[3]);
	assert_int_equal(repo_manifest_resolve(repo, "20261121", NULL, NULL, got), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "backup id '20261121' is ambiguous: it matches "
						"'20261121T010000Z-000002' and '20261121T020000Z-000003'");
	assert_int_equal(repo_manifest_resolve(repo, "2019", NULL, NULL, got), PV_ENOTFOUND);

	assert_int_equal(repo_manifest_load(&m, repo, ids[2]), 0);
	assert_string_equal(repo_manifest_id(m), ids[2]);
	assert_string_equal(repo_manifest_kind(m), "logical");
	assert_string_equal(repo_manifest_source(m), "b");
	assert_string_equal(repo_manifest_host(m), "h");
	assert_null(repo_manifest_parent(m));
	assert_int_equal(repo_manifest_item_count(m), 0);
	repo_manifest_free(m);

	assert_int_equal(repo_manifest_delete(repo, ids[3]), 0);
	assert_int_equal(repo_manifest_delete(repo, ids[3]), PV_ENOTFOUND);
	assert_int_equal(repo_manifest_load(&m, repo, ids[3]), PV_ENOTFOUND);
	snprintf(want, sizeof(want), "no backup '%s' in repository '%s'", ids[3], url);
	assert_string_equal(pv_error_msg(), want);
	assert_int_equal(repo_manifest_load(&m, repo, "latest"), 0);
	assert_string_equal(repo_manifest_id(m), ids[2]);
	repo_manifest_free(m);

	/* A flipped byte in the stored manifest. */
	{
		char *path = pv_asprintf("%s/snapshots/%s", url, ids[0]);
		int fd = open(path, O_RDWR);
		unsigned char c;

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &c, 1, 30), 1);
		c ^= 0x20;
		assert_int_equal(pwrite(fd, &c, 1, 30), 1);
		close(fd);
		assert_int_equal(repo_manifest_load(&m, repo, ids[0]), PV_ECORRUPT);
		snprintf(want, sizeof(want), "manifest of backup '%s' is corrupt: ", ids[0]);
		assert_memory_equal(pv_error_msg(), want, strlen(want));
		pv_free(path);
	}
	/* A manifest stored under another backup's name. */
	{
		Buf stored = PV_BUF_INIT;
		char key[64];

		snprintf(key, sizeof(key), "snapshots/%s", ids[1]);
		assert_int_equal(storage_get(repo_storage(repo), key, &stored), 0);
		snprintf(key, sizeof(key), "snapshots/%s", "20261123T000000Z-aaaaaa");
		assert_int_equal(storage_put(repo_storage(repo), key, stored.data, stored.len, 0), 0);
		assert_int_equal(repo_manifest_load(&m, repo, "20261123T000000Z-aaaaaa"), PV_ECORRUPT);
		assert_string_equal(pv_error_msg(), "manifest of backup '20261123T000000Z-aaaaaa' is malformed: "
							"its id does not match its name");
		buf_free(&stored);
	}
	repo_free(repo);
	pv_free(url);
	rt_tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backup_ids),
		cmocka_unit_test(test_item_roundtrip),
		cmocka_unit_test(test_item_malformed),
		cmocka_unit_test(test_manifest_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
