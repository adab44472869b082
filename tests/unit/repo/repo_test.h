/*
 * repo_test.h: helpers shared by the repository-core unit tests (repo,
 * pack, index, manifest, writer): scratch directories, deterministic data,
 * repositories with a cheap key derivation, writing a backup of buffers and
 * reading an item back whole.
 *
 * Include after <cmocka.h>.  Everything is static inline.
 */
#ifndef PV_TEST_REPO_TEST_H
#define PV_TEST_REPO_TEST_H

#include "common/error.h"
#include "common/fs.h"
#include "common/mem.h"
#include "repo/crypto.h"
#include "repo/manifest.h"
#include "repo/reader.h"
#include "repo/repo.h"
#include "repo/writer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_PASS "correct horse battery staple"

static inline char *
rt_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = pv_asprintf("%s/pgvault-repo-test-XXXXXX", base && base[0] ? base : "/tmp");

	assert_non_null(mkdtemp(dir));
	return dir;
}

static inline void
rt_tmpdir_free(char *dir)
{
	if (dir == NULL)
		return;
	assert_int_equal(pv_fs_remove_tree(dir), 0);
	pv_free(dir);
}

/* Random-looking deterministic bytes. */
static inline void
rt_fill_random(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i++)
	{
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p[i] = (unsigned char) ((x * 0x2545F4914F6CDD1Dull) >> 56);
	}
}

/* Compressible text like COPY output, with a varying number per line. */
static inline void
rt_fill_text(unsigned char *p, size_t n, uint64_t seed)
{
	size_t i = 0;
	uint64_t row = seed * 1000;

	while (i < n)
	{
		char line[96];
		int len = snprintf(line, sizeof(line), "%llu\tcustomer %llu\t2026-11-22 02:39:%02llu\tactive\n",
						   (unsigned long long) row, (unsigned long long) (row * 7919 % 100003),
						   (unsigned long long) (row % 60));

		for (int k = 0; k < len && i < n; k++)
			p[i++] = (unsigned char) line[k];
		row++;
	}
}

static inline int
rt_passphrase(char **out, void *payload)
{
	if (payload == NULL)
		return PV_ENOTFOUND;
	*out = pv_strdup(payload);
	return 0;
}

/* A cheap scrypt cost so tests do not spend their time deriving keys. */
static inline const RepoKdfParams *
rt_kdf(void)
{
	static const RepoKdfParams kdf = {16, 1, 1};

	return &kdf;
}

/* Create a repository under dir/name and open it.  Caller frees url and repo. */
static inline Repo *
rt_repo_new(const char *dir, const char *name, bool encrypt, const char *compression,
			uint64_t pack_size, char **url_out)
{
	char *url = pv_fs_path_join(dir, name);
	RepoInitOpts opts = {.compression = compression, .encrypt = encrypt,
		.passphrase = encrypt ? RT_PASS : NULL, .pack_size = pack_size, .kdf = rt_kdf()};
	Repo *repo = NULL;

	assert_int_equal(repo_init(NULL, url, &opts), 0);
	assert_int_equal(repo_open(&repo, url, rt_passphrase, encrypt ? (void *) RT_PASS : NULL), 0);
	if (url_out != NULL)
		*url_out = url;
	else
		pv_free(url);
	return repo;
}

/* Write one backup with one stream item of data[0..len), in writes of step bytes. */
static inline void
rt_backup_one(Repo *repo, const char *item_name, const unsigned char *data, size_t len,
			  size_t step, uint32_t chunk_size, char id_out[REPO_BACKUP_ID_LEN + 1],
			  RepoWriterStats *stats_out)
{
	RepoWriterOpts wo = {.kind = "file", .source = "test", .jobs = 2};
	RepoItemSpec spec = {.name = item_name, .type = "stream", .chunk_size = chunk_size};
	RepoWriter *w = NULL;
	RepoWriterItem *it = NULL;

	assert_int_equal(repo_writer_new(&w, repo, &wo), 0);
	assert_int_equal(repo_writer_item_begin(&it, w, &spec), 0);
	for (size_t off = 0; off < len; off += step)
		assert_int_equal(repo_writer_item_write(it, data + off, len - off < step ? len - off : step), 0);
	assert_int_equal(repo_writer_item_end(it, NULL), 0);
	assert_int_equal(repo_writer_commit(w, NULL), 0);
	if (id_out != NULL)
		snprintf(id_out, REPO_BACKUP_ID_LEN + 1, "%s", repo_writer_id(w));
	if (stats_out != NULL)
		repo_writer_stats(w, stats_out);
	repo_writer_free(w);
}

/* Read item name of backup id whole into out; returns the reader's result code. */
static inline int
rt_read_item(Repo *repo, const char *id, const char *name, Buf *out, int readahead)
{
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	RepoReader *r = NULL;
	RepoReaderOpts ro = {.readahead = readahead};
	unsigned char buf[65536];
	size_t n;
	int rc;

	if ((rc = repo_manifest_load(&m, repo, id)) < 0)
		return rc;
	if ((rc = repo_manifest_find_item(&item, repo, m, name)) < 0)
		goto done;
	if ((rc = repo_reader_open(&r, repo, m, item, &ro)) < 0)
		goto done;
	while ((rc = repo_reader_read(r, buf, sizeof(buf), &n)) == 0 && n > 0)
		buf_append(out, buf, n);
done:
	repo_reader_free(r);
	repo_item_free(item);
	repo_manifest_free(m);
	return rc;
}

#endif
