/*
 * test_writer.c: the backup pipeline and the restore side end to end on the
 * posix driver: round trips at chunk-boundary sizes (plain and encrypted,
 * each codec), a large streamed item, deduplication (same data twice, a few
 * inserted bytes, fixed-offset pages), concurrent items and writers (threads
 * and processes), abort, reuse of existing chunks, and every way a damaged
 * repository must fail: flipped byte, truncated pack, missing pack, missing
 * index, each with the exact message.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/reader.h"
#include "repo/repo.h"
#include "repo/writer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB 1024u
#define MiB (1024u * 1024u)

typedef struct Fixture
{
	char *dir;
	char *url;
	Repo *repo;
} Fixture;

static int
setup_plain(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->dir = rt_tmpdir();
	f->repo = rt_repo_new(f->dir, "repo", false, "zstd:3", 4 * MiB, &f->url);
	*state = f;
	return 0;
}

static int
setup_encrypted(void **state)
{
	Fixture *f = PV_NEW(Fixture);

	f->dir = rt_tmpdir();
	f->repo = rt_repo_new(f->dir, "repo", true, "lz4", 4 * MiB, &f->url);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	repo_free(f->repo);
	rt_tmpdir_free(f->dir);
	pv_free(f->url);
	pv_free(f);
	return 0;
}

/* Count objects under a prefix. */
static int
count_cb(const char *key, const StorageInfo *info, void *payload)
{
	(*(size_t *) payload)++;
	return 0;
}

static size_t
count_objects(Repo *repo, const char *prefix)
{
	size_t n = 0;

	assert_int_equal(storage_list(repo_storage(repo), prefix, count_cb, &n), 0);
	return n;
}

static void
check_roundtrip(Repo *repo, const unsigned char *data, size_t len, size_t step, int readahead)
{
	char id[REPO_BACKUP_ID_LEN + 1];
	Buf got = PV_BUF_INIT;

	rt_backup_one(repo, "item", data, len, step, 0, id, NULL);
	assert_int_equal(rt_read_item(repo, id, "item", &got, readahead), 0);
	assert_int_equal(got.len, len);
	if (len > 0)
		assert_memory_equal(got.data, data, len);
	buf_free(&got);
}

/* Sizes around the default chunker's min (256 KiB), avg (1 MiB) and max (4 MiB). */
static const size_t sizes[] = {0, 1, 4095, 256 * KiB - 1, 256 * KiB, 256 * KiB + 1, MiB,
	4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 17};

static void
roundtrip_all_sizes(Repo *repo)
{
	unsigned char *data = pv_malloc(10 * MiB);

	for (size_t i = 0; i < PV_ARRAY_LEN(sizes); i++)
	{
		rt_fill_random(data, sizes[i], i + 1);
		check_roundtrip(repo, data, sizes[i], 100000, i % 2 ? -1 : 0);
		rt_fill_text(data, sizes[i], i + 1);
		check_roundtrip(repo, data, sizes[i], 7 * MiB, 3);
	}
	pv_free(data);
}

static void
test_roundtrip_sizes_plain(void **state)
{
	roundtrip_all_sizes(((Fixture *) *state)->repo);
}

static void
test_roundtrip_sizes_encrypted(void **state)
{
	roundtrip_all_sizes(((Fixture *) *state)->repo);
}

static void
test_roundtrip_uncompressed(void **state)
{
	Fixture *f = *state;
	Repo *repo = rt_repo_new(f->dir, "none", false, "none", 0, NULL);
	unsigned char *data = pv_malloc(3 * MiB);

	rt_fill_text(data, 3 * MiB, 9);
	check_roundtrip(repo, data, 3 * MiB, 65536, 0);
	pv_free(data);
	repo_free(repo);
}

/* A few hundred MiB through the whole pipeline and back, in bounded memory. */
static void
test_large_stream(void **state)
{
	Fixture *f = *state;
	const size_t total = 256 * MiB;
	const size_t block = 4 * MiB;
	unsigned char *buf = pv_malloc(block);
	RepoWriterOpts wo = {.kind = "file", .jobs = 2, .compression = "lz4"};
	RepoItemSpec spec = {.name = "big"};
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;
	RepoItemResult res;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char want[32], got_md[32];
	unsigned int mdlen;
	char id[REPO_BACKUP_ID_LEN + 1];
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	RepoReader *r = NULL;
	uint64_t got = 0;
	size_t n;

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	assert_int_equal(repo_writer_new(&w, f->repo, &wo), 0);
	assert_int_equal(repo_writer_item_begin(&it, w, &spec), 0);
	for (size_t off = 0; off < total; off += block)
	{
		/* Half random, half text: both codec paths. */
		if ((off / block) % 2)
			rt_fill_random(buf, block, off);
		else
			rt_fill_text(buf, block, off);
		EVP_DigestUpdate(md, buf, block);
		assert_int_equal(repo_writer_item_write(it, buf, block), 0);
	}
	assert_int_equal(repo_writer_item_end(it, &res), 0);
	EVP_DigestFinal_ex(md, want, &mdlen);
	assert_int_equal(res.size, total);
	assert_memory_equal(res.sha256, want, 32);
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	snprintf(id, sizeof(id), "%s", repo_writer_id(w));
	repo_writer_free(w);

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	assert_int_equal(repo_manifest_load(&m, f->repo, id), 0);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, "big"), 0);
	assert_true(item->nchunks > total / (4 * MiB));
	assert_int_equal(repo_reader_open(&r, f->repo, m, item, NULL), 0);
	while (repo_reader_read(r, buf, block, &n) == 0 && n > 0)
	{
		EVP_DigestUpdate(md, buf, n);
		got += n;
	}
	assert_int_equal(pv_error_code() == PV_ECORRUPT, 0);
	EVP_DigestFinal_ex(md, got_md, &mdlen);
	assert_int_equal(got, total);
	assert_memory_equal(got_md, want, 32);
	repo_reader_free(r);
	repo_item_free(item);
	repo_manifest_free(m);
	EVP_MD_CTX_free(md);
	pv_free(buf);
}

static void
test_same_data_twice_stores_nothing_new(void **state)
{
	Fixture *f = *state;
	size_t len = 12 * MiB;
	unsigned char *data = pv_malloc(len);
	RepoWriterStats s1, s2;
	size_t packs;

	rt_fill_random(data, len, 42);
	rt_backup_one(f->repo, "x", data, len, MiB, 0, NULL, &s1);
	assert_true(s1.new_chunks > 5);
	assert_int_equal(s1.logical_bytes, len);
	packs = count_objects(f->repo, "data/");
	rt_backup_one(f->repo, "x", data, len, 333333, 0, NULL, &s2);
	assert_int_equal(s2.new_chunks, 0);
	assert_int_equal(s2.new_bytes, 0);
	assert_int_equal(s2.logical_bytes, len);
	assert_int_equal(s2.stored_bytes, s1.stored_bytes);
	assert_int_equal(count_objects(f->repo, "data/"), packs);

	/* A fresh process (a new Repo) dedups against the index files too. */
	{
		Repo *again = NULL;
		RepoWriterStats s3;

		assert_int_equal(repo_open(&again, f->url, rt_passphrase, NULL), 0);
		rt_backup_one(again, "y", data, len, MiB, 0, NULL, &s3);
		/* Only the item list differs (another name): one new tree blob. */
		assert_int_equal(s3.new_chunks, 1);
		repo_free(again);
	}
	pv_free(data);
}

static void
test_inserted_bytes_reuse_chunks(void **state)
{
	Fixture *f = *state;
	size_t len = 24 * MiB;
	unsigned char *data = pv_malloc(len + 16);
	RepoWriterStats s1, s2;

	rt_fill_random(data, len, 7);
	rt_backup_one(f->repo, "x", data, len, MiB, 0, NULL, &s1);
	memmove(data + 1010, data + 1000, len - 1000);
	memcpy(data + 1000, "INSERTED!!", 10);
	rt_backup_one(f->repo, "x", data, len + 10, MiB, 0, NULL, &s2);
	/* First data chunk changes (and maybe the one after), plus the tree blob. */
	assert_true(s1.chunks >= 10);
	assert_true(s2.new_chunks <= 3);
	assert_true(s2.new_raw_bytes < 10 * MiB);
	pv_free(data);
}

static void
test_fixed_offset_pages(void **state)
{
	Fixture *f = *state;
	const uint32_t seg = 128 * KiB;
	size_t len = 40 * seg + 8192;
	unsigned char *data = pv_malloc(len);
	char id[REPO_BACKUP_ID_LEN + 1];
	RepoWriterStats s1, s2;
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	Buf got = PV_BUF_INIT;

	rt_fill_random(data, len, 99);
	rt_backup_one(f->repo, "base/1/1259", data, len, 8192, seg, id, &s1);
	assert_int_equal(s1.chunks, 41);
	assert_int_equal(repo_manifest_load(&m, f->repo, id), 0);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, "base/1/1259"), 0);
	assert_int_equal(item->chunk_size, seg);
	for (size_t i = 0; i < item->nchunks; i++)
	{
		assert_int_equal(item->chunks[i].offset, i * seg);
		assert_int_equal(item->chunks[i].raw_length, i < 40 ? seg : 8192);
	}
	repo_item_free(item);
	repo_manifest_free(m);

	/* One page changes: one new chunk (and the new item list). */
	data[17 * seg + 100] ^= 0xff;
	rt_backup_one(f->repo, "base/1/1259", data, len, 8192, seg, id, &s2);
	assert_int_equal(s2.new_chunks, 2);
	assert_int_equal(rt_read_item(f->repo, id, "base/1/1259", &got, 0), 0);
	assert_int_equal(got.len, len);
	assert_memory_equal(got.data, data, len);
	buf_free(&got);
	pv_free(data);
}

/* ---- concurrency ---- */

typedef struct ItemJob
{
	RepoWriter *w;
	int n;
	size_t len;
	int rc;
} ItemJob;

static void *
item_thread(void *arg)
{
	ItemJob *j = arg;
	unsigned char *data = pv_malloc(j->len);
	char name[32];
	RepoItemSpec spec = {.name = name, .type = "file", .has_mode = true, .mode = 0600, .mtime = 1};
	RepoWriterItem *it = NULL;

	snprintf(name, sizeof(name), "file-%d", j->n);
	rt_fill_random(data, j->len, (uint64_t) j->n + 1000);
	j->rc = repo_writer_item_begin(&it, j->w, &spec);
	for (size_t off = 0; j->rc == 0 && off < j->len; off += 100000)
		j->rc = repo_writer_item_write(it, data + off, j->len - off < 100000 ? j->len - off : 100000);
	if (j->rc == 0)
		j->rc = repo_writer_item_end(it, NULL);
	else
		repo_writer_item_cancel(it);
	pv_free(data);
	return NULL;
}

static void
check_items(Repo *repo, const char *id, int nitems, size_t len)
{
	unsigned char *want = pv_malloc(len);

	for (int n = 0; n < nitems; n++)
	{
		char name[32];
		Buf got = PV_BUF_INIT;

		snprintf(name, sizeof(name), "file-%d", n);
		rt_fill_random(want, len, (uint64_t) n + 1000);
		assert_int_equal(rt_read_item(repo, id, name, &got, 0), 0);
		assert_int_equal(got.len, len);
		assert_memory_equal(got.data, want, len);
		buf_free(&got);
	}
	pv_free(want);
}

static void
test_concurrent_items(void **state)
{
	Fixture *f = *state;
	RepoWriterOpts wo = {.kind = "physical", .jobs = 3};
	RepoWriter *w = NULL;
	pthread_t th[6];
	ItemJob jobs[6];
	char id[REPO_BACKUP_ID_LEN + 1];
	RepoManifest *m = NULL;

	assert_int_equal(repo_writer_new(&w, f->repo, &wo), 0);
	for (int i = 0; i < 6; i++)
	{
		jobs[i] = (ItemJob) {w, i, 3 * MiB + (size_t) i * 1111, 0};
		assert_int_equal(pthread_create(&th[i], NULL, item_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 6; i++)
	{
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].rc, 0);
	}
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	snprintf(id, sizeof(id), "%s", repo_writer_id(w));
	repo_writer_free(w);
	assert_int_equal(repo_manifest_load(&m, f->repo, id), 0);
	assert_int_equal(repo_manifest_item_count(m), 6);
	assert_string_equal(repo_manifest_kind(m), "physical");
	repo_manifest_free(m);
	for (int i = 0; i < 6; i++)
	{
		Buf got = PV_BUF_INIT;
		unsigned char *want = pv_malloc(jobs[i].len);
		char name[32];

		snprintf(name, sizeof(name), "file-%d", i);
		rt_fill_random(want, jobs[i].len, (uint64_t) i + 1000);
		assert_int_equal(rt_read_item(f->repo, id, name, &got, 2), 0);
		assert_int_equal(got.len, jobs[i].len);
		assert_memory_equal(got.data, want, jobs[i].len);
		buf_free(&got);
		pv_free(want);
	}
}

typedef struct WriterJob
{
	Repo *repo;
	int base;
	char id[REPO_BACKUP_ID_LEN + 1];
	int rc;
} WriterJob;

static void *
writer_thread(void *arg)
{
	WriterJob *j = arg;
	RepoWriterOpts wo = {.kind = "logical", .jobs = 2};
	RepoWriter *w = NULL;
	ItemJob ij;

	if ((j->rc = repo_writer_new(&w, j->repo, &wo)) < 0)
		return NULL;
	for (int n = 0; n < 3 && j->rc == 0; n++)
	{
		ij = (ItemJob) {w, n, 2 * MiB, 0};
		item_thread(&ij);
		j->rc = ij.rc;
	}
	if (j->rc == 0)
		j->rc = repo_writer_commit(w, NULL);
	snprintf(j->id, sizeof(j->id), "%s", repo_writer_id(w));
	repo_writer_free(w);
	return NULL;
}

static void
test_two_writers_threads(void **state)
{
	Fixture *f = *state;
	WriterJob a = {f->repo, 0, "", 0}, b = {f->repo, 1, "", 0};
	pthread_t ta, tb;

	pthread_create(&ta, NULL, writer_thread, &a);
	pthread_create(&tb, NULL, writer_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_string_not_equal(a.id, b.id);
	check_items(f->repo, a.id, 3, 2 * MiB);
	check_items(f->repo, b.id, 3, 2 * MiB);
	/* And from a fresh process view, through the index files alone. */
	{
		Repo *again = NULL;

		assert_int_equal(repo_open(&again, f->url, rt_passphrase, NULL), 0);
		check_items(again, a.id, 3, 2 * MiB);
		check_items(again, b.id, 3, 2 * MiB);
		repo_free(again);
	}
}

static void
test_two_writers_processes(void **state)
{
	Fixture *f = *state;
	pid_t pids[2];
	int fds[2][2];
	char ids[2][REPO_BACKUP_ID_LEN + 1];
	Repo *again = NULL;

	for (int p = 0; p < 2; p++)
	{
		assert_int_equal(pipe(fds[p]), 0);
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0)
		{
			WriterJob j = {NULL, p, "", 0};

			close(fds[p][0]);
			if (repo_open(&j.repo, f->url, rt_passphrase, NULL) < 0)
				_exit(10);
			writer_thread(&j);
			if (j.rc < 0)
			{
				fprintf(stderr, "child %d: %s\n", p, pv_error_msg());
				_exit(11);
			}
			if (write(fds[p][1], j.id, REPO_BACKUP_ID_LEN) != REPO_BACKUP_ID_LEN)
				_exit(12);
			repo_free(j.repo);
			_exit(0);
		}
		close(fds[p][1]);
	}
	for (int p = 0; p < 2; p++)
	{
		int status;

		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_int_equal(read(fds[p][0], ids[p], REPO_BACKUP_ID_LEN), REPO_BACKUP_ID_LEN);
		ids[p][REPO_BACKUP_ID_LEN] = '\0';
		close(fds[p][0]);
	}
	assert_int_equal(repo_open(&again, f->url, rt_passphrase, NULL), 0);
	check_items(again, ids[0], 3, 2 * MiB);
	check_items(again, ids[1], 3, 2 * MiB);
	assert_int_equal(count_objects(again, "locks/"), 0);
	repo_free(again);
}

/* ---- abort, commit rules, reuse ---- */

static void
test_abort_leaves_no_manifest(void **state)
{
	Fixture *f = *state;
	unsigned char *data = pv_malloc(6 * MiB);
	RepoWriterOpts wo = {.kind = "file", .jobs = 2};
	RepoItemSpec spec = {.name = "x"};
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;
	RepoWriterItem *open_item = NULL;

	rt_fill_random(data, 6 * MiB, 5);
	assert_int_equal(repo_writer_new(&w, f->repo, &wo), 0);
	assert_int_equal(count_objects(f->repo, "locks/"), 1);
	assert_int_equal(repo_writer_item_begin(&it, w, &spec), 0);
	assert_int_equal(repo_writer_item_write(it, data, 6 * MiB), 0);
	assert_int_equal(repo_writer_item_end(it, NULL), 0);
	/* Commit refuses while an item is open. */
	spec.name = "y";
	assert_int_equal(repo_writer_item_begin(&open_item, w, &spec), 0);
	assert_int_equal(repo_writer_commit(w, NULL), PV_EUSAGE);
	{
		char want[128];

		snprintf(want, sizeof(want), "backup %s still has 1 open items", repo_writer_id(w));
		assert_string_equal(pv_error_msg(), want);
	}
	repo_writer_abort(w);
	assert_int_equal(count_objects(f->repo, "snapshots/"), 0);
	assert_int_equal(count_objects(f->repo, "locks/"), 0);
	assert_int_equal(repo_writer_item_write(open_item, data, 10), PV_EUSAGE);
	repo_writer_free(w);	/* frees the item left open too */
	assert_int_equal(count_objects(f->repo, "snapshots/"), 0);
	pv_free(data);
}

static void
test_commit_metadata_and_totals(void **state)
{
	Fixture *f = *state;
	RepoWriterOpts wo = {.kind = "logical", .source = "main", .parent = "20260101T000000Z-abcdef"};
	json_t *meta = json_pack("{s:s, s:i}", "pg_version", "15.4", "tables", 3);
	json_t *imeta = json_pack("{s:s, s:I}", "table", "public.orders", "rows", (json_int_t) 12);
	RepoItemSpec spec = {.name = "data/public.orders/0", .meta = imeta};
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	const json_t *totals;
	char id[REPO_BACKUP_ID_LEN + 1];

	assert_int_equal(repo_writer_new(&w, f->repo, &wo), 0);
	assert_int_equal(repo_writer_item_begin(&it, w, &spec), 0);
	assert_int_equal(repo_writer_item_write(it, "1\talice\n2\tbob\n", 14), 0);
	assert_int_equal(repo_writer_item_end(it, NULL), 0);
	assert_int_equal(repo_writer_commit(w, meta), 0);
	snprintf(id, sizeof(id), "%s", repo_writer_id(w));
	assert_true(repo_backup_id_valid(id));
	assert_int_equal(repo_writer_commit(w, meta), PV_EUSAGE);	/* once only */
	repo_writer_free(w);

	assert_int_equal(repo_manifest_load(&m, f->repo, "latest"), 0);
	assert_string_equal(repo_manifest_id(m), id);
	assert_string_equal(repo_manifest_source(m), "main");
	assert_string_equal(repo_manifest_parent(m), "20260101T000000Z-abcdef");
	assert_string_equal(json_string_value(json_object_get(repo_manifest_metadata(m), "pg_version")),
						"15.4");
	totals = repo_manifest_totals(m);
	assert_int_equal(json_integer_value(json_object_get(totals, "items")), 1);
	assert_int_equal(json_integer_value(json_object_get(totals, "logical_bytes")), 14);
	assert_int_equal(json_integer_value(json_object_get(totals, "chunks")), 1);
	assert_int_equal(json_integer_value(json_object_get(totals, "new_chunks")), 2);
	assert_true(repo_manifest_stop_time(m) >= repo_manifest_start_time(m));
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, "data/public.orders/0"), 0);
	assert_int_equal(json_integer_value(json_object_get(item->meta, "rows")), 12);
	assert_int_equal(item->size, 14);
	repo_item_free(item);
	repo_manifest_free(m);
	json_decref(meta);
	json_decref(imeta);
}

static void
test_add_existing_chunks(void **state)
{
	Fixture *f = *state;
	size_t len = 5 * MiB;
	unsigned char *data = pv_malloc(len);
	char id1[REPO_BACKUP_ID_LEN + 1];
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	RepoWriter *w = NULL;
	RepoWriterOpts wo = {.kind = "physical"};
	RepoItemSpec spec = {.name = "reused", .type = "file", .has_mode = true, .mode = 0600, .mtime = 5};
	RepoWriterStats st;
	RepoChunkRef bogus;
	Buf got = PV_BUF_INIT;

	rt_fill_random(data, len, 3);
	rt_backup_one(f->repo, "orig", data, len, MiB, 0, id1, NULL);
	assert_int_equal(repo_manifest_load(&m, f->repo, id1), 0);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, "orig"), 0);

	assert_int_equal(repo_writer_new(&w, f->repo, &wo), 0);
	memset(&bogus, 0x5a, sizeof(bogus));
	bogus.offset = 0;
	bogus.raw_length = 10;
	assert_int_equal(repo_writer_item_add_existing(w, &spec, 10, item->sha256, &bogus, 1), PV_ENOTFOUND);
	assert_int_equal(repo_writer_item_add_existing(w, &spec, item->size, item->sha256, item->chunks,
												   item->nchunks), 0);
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	repo_writer_stats(w, &st);
	assert_int_equal(st.new_chunks, 1);	/* the item list only */
	assert_int_equal(st.logical_bytes, len);
	assert_int_equal(rt_read_item(f->repo, repo_writer_id(w), "reused", &got, 0), 0);
	assert_int_equal(got.len, len);
	assert_memory_equal(got.data, data, len);
	repo_writer_free(w);
	buf_free(&got);
	repo_item_free(item);
	repo_manifest_free(m);
	pv_free(data);
}

static void
test_many_items_list(void **state)
{
	Fixture *f = *state;
	RepoWriterOpts wo = {.kind = "physical", .jobs = 2};
	RepoWriter *w = NULL;
	RepoManifest *m = NULL;
	RepoItemIter *iter = NULL;
	const RepoItem *item;
	size_t ntree;
	int seen = 0;
	char id[REPO_BACKUP_ID_LEN + 1];

	assert_int_equal(repo_writer_new(&w, f->repo, &wo), 0);
	for (int i = 0; i < 20000; i++)
	{
		char name[64], content[32];
		RepoItemSpec spec = {.name = name, .type = "file", .has_mode = true, .mode = 0600, .mtime = i};
		RepoWriterItem *it = NULL;

		snprintf(name, sizeof(name), "base/16384/%d", 10000 + i);
		snprintf(content, sizeof(content), "file %d", i % 100);
		assert_int_equal(repo_writer_item_begin(&it, w, &spec), 0);
		assert_int_equal(repo_writer_item_write(it, content, strlen(content)), 0);
		assert_int_equal(repo_writer_item_end(it, NULL), 0);
	}
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	snprintf(id, sizeof(id), "%s", repo_writer_id(w));
	repo_writer_free(w);

	assert_int_equal(repo_manifest_load(&m, f->repo, id), 0);
	repo_manifest_tree(m, &ntree);
	assert_true(ntree >= 3);	/* > 3 MiB of lines in <= 1 MiB blobs */
	assert_int_equal(repo_item_iter_new(&iter, f->repo, m), 0);
	while (repo_item_iter_next(iter, &item) == 0 && item != NULL)
	{
		assert_int_equal(item->mtime, atoi(item->name + strlen("base/16384/")) - 10000);
		assert_int_equal(item->nchunks, 1);
		seen++;
	}
	assert_int_equal(pv_error_code() == PV_ECORRUPT, 0);
	assert_int_equal(seen, 20000);
	repo_item_iter_free(iter);
	repo_manifest_free(m);
}

/* ---- damage ---- */

static char *
first_pack_path(Fixture *f, RepoIndexHit *hit_out, const char *id, const char *item_name,
				char chunk_hex[65], char pack_hex[65])
{
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	RepoIndex *idx;
	RepoIndexHit hit;
	char key[REPO_PACK_KEY_MAX];
	char *path;

	assert_int_equal(repo_manifest_load(&m, f->repo, id), 0);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, item_name), 0);
	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	assert_true(repo_index_lookup(idx, item->chunks[0].id, &hit));
	repo_id_hex(chunk_hex, item->chunks[0].id);
	repo_id_hex(pack_hex, hit.pack_id);
	repo_pack_key(key, hit.pack_id);
	path = pv_fs_path_join(f->url, key);
	*hit_out = hit;
	repo_item_free(item);
	repo_manifest_free(m);
	return path;
}

static void
flip_byte(const char *path, uint64_t offset)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, (off_t) offset), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, (off_t) offset), 1);
	close(fd);
}

static void
check_damage_message(Fixture *f, const char *id, const char *fmt_expected)
{
	Buf got = PV_BUF_INIT;
	Repo *fresh = NULL;

	/* Through a fresh Repo, as a restore in another process would see it. */
	assert_int_equal(repo_open(&fresh, f->url, rt_passphrase,
							   repo_is_encrypted(f->repo) ? (void *) RT_PASS : NULL), 0);
	assert_int_equal(rt_read_item(fresh, id, "item", &got, 2), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), fmt_expected);
	buf_free(&got);
	buf_reset(&got);
	assert_int_equal(rt_read_item(fresh, id, "item", &got, -1), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), fmt_expected);
	buf_free(&got);
	repo_free(fresh);
}

static void
damage_flipped_byte(void **state)
{
	Fixture *f = *state;
	unsigned char *data = pv_malloc(3 * MiB);
	char id[REPO_BACKUP_ID_LEN + 1], chunk[65], pack[65], want[512];
	RepoIndexHit hit;
	char *path;

	rt_fill_random(data, 3 * MiB, 11);
	rt_backup_one(f->repo, "item", data, 3 * MiB, MiB, 0, id, NULL);
	path = first_pack_path(f, &hit, id, "item", chunk, pack);
	flip_byte(path, hit.offset + hit.length / 2);
	snprintf(want, sizeof(want), "chunk %s in pack %s is corrupt (backup %s, item item)", chunk, pack, id);
	check_damage_message(f, id, want);
	pv_free(path);
	pv_free(data);
}

static void
test_flipped_byte_plain(void **state)
{
	damage_flipped_byte(state);
}

static void
test_flipped_byte_encrypted(void **state)
{
	damage_flipped_byte(state);
}

static void
test_truncated_pack(void **state)
{
	Fixture *f = *state;
	unsigned char *data = pv_malloc(3 * MiB);
	char id[REPO_BACKUP_ID_LEN + 1], chunk[65], pack[65], want[512];
	RepoIndexHit hit;
	char *path;

	rt_fill_random(data, 3 * MiB, 12);
	rt_backup_one(f->repo, "item", data, 3 * MiB, MiB, 0, id, NULL);
	path = first_pack_path(f, &hit, id, "item", chunk, pack);
	assert_int_equal(truncate(path, hit.offset + 10), 0);
	snprintf(want, sizeof(want), "pack %s is truncated: chunk %s is past its end (backup %s, item item)",
			 pack, chunk, id);
	check_damage_message(f, id, want);
	pv_free(path);
	pv_free(data);
}

static void
test_missing_pack(void **state)
{
	Fixture *f = *state;
	unsigned char *data = pv_malloc(3 * MiB);
	char id[REPO_BACKUP_ID_LEN + 1], chunk[65], pack[65], want[512];
	RepoIndexHit hit;
	char *path;

	rt_fill_random(data, 3 * MiB, 13);
	rt_backup_one(f->repo, "item", data, 3 * MiB, MiB, 0, id, NULL);
	path = first_pack_path(f, &hit, id, "item", chunk, pack);
	assert_int_equal(unlink(path), 0);
	snprintf(want, sizeof(want), "pack %s holding chunk %s is missing (backup %s, item item)",
			 pack, chunk, id);
	check_damage_message(f, id, want);
	pv_free(path);
	pv_free(data);
}

static int
unlink_cb(const char *key, const StorageInfo *info, void *payload)
{
	return storage_delete(payload, key);
}

static void
test_missing_index(void **state)
{
	Fixture *f = *state;
	unsigned char data[1000];
	char id[REPO_BACKUP_ID_LEN + 1];
	char want[512];
	Repo *fresh = NULL;
	RepoManifest *m = NULL;
	RepoItemIter *it = NULL;
	const RepoItem *item;
	char tree_hex[65];
	size_t ntree;

	rt_fill_random(data, sizeof(data), 14);
	rt_backup_one(f->repo, "item", data, sizeof(data), 100, 0, id, NULL);
	assert_int_equal(storage_list(repo_storage(f->repo), "index/", unlink_cb, repo_storage(f->repo)), 0);
	assert_int_equal(repo_open(&fresh, f->url, rt_passphrase, NULL), 0);
	assert_int_equal(repo_manifest_load(&m, fresh, id), 0);
	repo_id_hex(tree_hex, repo_manifest_tree(m, &ntree)[0].id);
	assert_int_equal(repo_item_iter_new(&it, fresh, m), 0);
	assert_int_equal(repo_item_iter_next(it, &item), PV_ECORRUPT);
	snprintf(want, sizeof(want), "chunk %s is not in the index of repository '%s' (backup %s, item list)",
			 tree_hex, repo_url(fresh), id);
	assert_string_equal(pv_error_msg(), want);
	assert_string_equal(pv_error_hint_msg(),
						"if its pack still exists, 'pgvault repo rebuild-index' finds it again");
	repo_item_iter_free(it);
	repo_manifest_free(m);
	repo_free(fresh);
}

static int
first_key_cb(const char *key, const StorageInfo *info, void *payload)
{
	snprintf(payload, 128, "%s", key);
	return 0;
}

static void
test_corrupt_index_file(void **state)
{
	Fixture *f = *state;
	unsigned char data[100] = {1};
	Repo *fresh = NULL;
	RepoIndex *idx;
	char key[128] = "";
	char want[512];
	char *path;

	rt_backup_one(f->repo, "item", data, sizeof(data), 100, 0, NULL, NULL);
	assert_int_equal(count_objects(f->repo, "index/"), 1);
	assert_int_equal(storage_list(repo_storage(f->repo), "index/", first_key_cb, key), 0);
	path = pv_fs_path_join(f->url, key);
	flip_byte(path, 20);
	assert_int_equal(repo_open(&fresh, f->url, rt_passphrase, NULL), 0);
	assert_int_equal(repo_index_get(fresh, &idx), PV_ECORRUPT);
	snprintf(want, sizeof(want), "index file '%s' of repository '%s' is corrupt: ", key,
			 repo_url(fresh));
	assert_memory_equal(pv_error_msg(), want, strlen(want));
	assert_string_equal(pv_error_hint_msg(),
						"run 'pgvault repo rebuild-index' to rebuild the index from the packs");
	repo_free(fresh);
	pv_free(path);
}

/* A Repo opened before another process's backup sees its chunks; one opened before a prune refuses to write. */
static void
test_index_refresh(void **state)
{
	Fixture *f = *state;
	size_t len = 6 * MiB;
	unsigned char *data = pv_malloc(len);
	Repo *other = NULL;
	RepoIndex *idx;
	RepoWriterStats st;
	RepoWriter *w = NULL;
	RepoWriterOpts wo = {.kind = "file"};
	char key[128] = "";

	assert_int_equal(repo_open(&other, f->url, rt_passphrase, NULL), 0);
	assert_int_equal(repo_index_get(other, &idx), 0);	/* loaded now: empty */
	rt_fill_random(data, len, 77);
	rt_backup_one(f->repo, "x", data, len, MiB, 0, NULL, NULL);
	/* The other Repo's writer refreshes under its lock: nothing new stored. */
	rt_backup_one(other, "x", data, len, MiB, 0, NULL, &st);
	assert_int_equal(st.new_chunks, 0);

	/* An index file it had loaded disappears (as prune would replace it). */
	assert_int_equal(storage_list(repo_storage(f->repo), "index/", first_key_cb, key), 0);
	assert_int_equal(storage_delete(repo_storage(f->repo), key), 0);
	assert_int_equal(repo_writer_new(&w, other, &wo), PV_ERETRY);
	assert_null(w);
	assert_non_null(strstr(pv_error_msg(), "were replaced since this process read them (a prune ran)"));
	assert_int_equal(count_objects(f->repo, "locks/"), 0);
	repo_free(other);
	pv_free(data);
}

static void
test_wrong_passphrase_no_output(void **state)
{
	Fixture *f = *state;
	Repo *r = (Repo *) 0x1;
	char want[512];

	assert_int_equal(repo_open(&r, f->url, rt_passphrase, "not it"), PV_EAUTH);
	assert_null(r);
	snprintf(want, sizeof(want), "wrong passphrase for repository '%s'", repo_url(f->repo));
	assert_string_equal(pv_error_msg(), want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_sizes_plain, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_sizes_encrypted, setup_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_uncompressed, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_large_stream, setup_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_same_data_twice_stores_nothing_new, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_inserted_bytes_reuse_chunks, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_fixed_offset_pages, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_items, setup_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_two_writers_threads, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_two_writers_processes, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_abort_leaves_no_manifest, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_commit_metadata_and_totals, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_add_existing_chunks, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_many_items_list, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_plain, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_encrypted, setup_encrypted, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_pack, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_missing_pack, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_missing_index, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_index_file, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_index_refresh, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_passphrase_no_output, setup_encrypted, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
