/*
 * test_verify_incremental.c: the pack-check record (repo/packcheck.h) and
 * the incremental verify modes built on it (repo/verify.h: --new,
 * --sample, verify-period), on real repositories (posix driver in a
 * scratch directory, plain and encrypted).
 *
 * The record: a round trip through the repository keeps every entry; the
 * encoding is sorted by id; entries of packs that are gone are dropped when
 * it is saved with a keep filter, and verify drops them itself; a damaged
 * record is PV_ECORRUPT with a message naming it, and verify rebuilds it
 * (reading everything); save merges newer entries another verify stored.
 *
 * The modes: a full verify records every pack; --new reads exactly the
 * packs of a later backup; a flipped byte in a pack already read is not
 * found by --new (and the pack is counted as skipped), is found by
 * --sample 100 and by a full verify, and the damaged pack is read again by
 * the next --new; verify-period forces old packs back in; --sample reads
 * ceil(PERCENT of the other packs).
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "ops/catalog.h"
#include "repo/index.h"
#include "repo/maint.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/packcheck.h"
#include "repo/repo.h"
#include "repo/verify.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repo_test.h"

#define MiB (1024u * 1024u)
#define X_LEN (3 * MiB + 123)
#define Y_LEN (2 * MiB + 7)
#define MAX_PACKS 64

typedef struct Fixture
{
	char *dir;
	char *url;
	Repo *repo;
	bool encrypted;
	char ids[2][REPO_BACKUP_ID_LEN + 1];
	unsigned char *x;
	unsigned char *y;
} Fixture;

static int
setup_common(void **state, bool encrypted)
{
	Fixture *f = PV_NEW(Fixture);

	f->encrypted = encrypted;
	f->dir = rt_tmpdir();
	f->x = pv_malloc(X_LEN);
	f->y = pv_malloc(Y_LEN);
	rt_fill_random(f->x, X_LEN, 11);
	rt_fill_random(f->y, Y_LEN, 12);
	f->repo = rt_repo_new(f->dir, "repo", encrypted, "zstd:3", 1 * MiB, &f->url);
	rt_backup_one(f->repo, "x", f->x, X_LEN, 65536, 0, f->ids[0], NULL);
	*state = f;
	return 0;
}

static int
setup_plain(void **state)
{
	return setup_common(state, false);
}

static int
setup_encrypted(void **state)
{
	return setup_common(state, true);
}

static int
teardown(void **state)
{
	Fixture *f = *state;

	repo_free(f->repo);
	rt_tmpdir_free(f->dir);
	pv_free(f->url);
	pv_free(f->x);
	pv_free(f->y);
	pv_free(f);
	return 0;
}

/* Every pack in storage: ids (hex, sorted) and sizes. */
typedef struct PackList
{
	char id[MAX_PACKS][2 * REPO_ID_LEN + 1];
	uint64_t size[MAX_PACKS];
	size_t n;
} PackList;

static void
packs_list(Fixture *f, PackList *out)
{
	RepoKeyList l;
	unsigned char id[REPO_ID_LEN];

	memset(out, 0, sizeof(*out));
	assert_int_equal(repo_keylist_get(&l, repo_storage(f->repo), "data/"), 0);
	for (size_t i = 0; i < l.n; i++)
	{
		assert_true(repo_pack_key_parse(id, l.keys[i]));
		assert_true(out->n < MAX_PACKS);
		repo_id_hex(out->id[out->n], id);
		out->size[out->n++] = l.info[i].size;
	}
	repo_keylist_free(&l);
	/* keys are data/<2 hex>/<64 hex>, so key order is id order */
	for (size_t i = 1; i < out->n; i++)
		assert_true(strcmp(out->id[i - 1], out->id[i]) < 0);
}

static bool
packs_has(const PackList *l, const char *hex)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->id[i], hex) == 0)
			return true;
	return false;
}

static RepoVerifyReport
verify_mode(Fixture *f, RepoVerifyMode mode, double percent, int64_t period, int64_t now)
{
	RepoVerifyOpts opts = {.mode = mode, .sample_percent = percent, .period = period,
		.now = now, .seed = 42, .jobs = 2, .lock = true};
	RepoVerifyReport r;

	assert_int_equal(repo_verify(f->repo, &opts, &r), 0);
	return r;
}

static RepoPackChecks *
checks_load(Fixture *f)
{
	RepoPackChecks *c = NULL;

	assert_int_equal(repo_packchecks_load(&c, f->repo), 0);
	assert_non_null(c);
	return c;
}

static void
unhex(unsigned char out[REPO_ID_LEN], const char *hex)
{
	assert_int_equal(repo_id_parse(out, hex), 0);
}

static char *
pack_path(Fixture *f, const char *hex)
{
	unsigned char id[REPO_ID_LEN];
	char key[REPO_PACK_KEY_MAX];

	unhex(id, hex);
	repo_pack_key(key, id);
	return pv_fs_path_join(f->url, key);
}

static void
flip_byte(const char *path, uint64_t offset)
{
	Buf b = PV_BUF_INIT;

	assert_int_equal(pv_fs_read_file(path, &b), 0);
	assert_true(offset < b.len);
	b.data[offset] ^= 0x40;
	assert_int_equal(pv_fs_write_atomic(path, b.data, b.len, 0600), 0);
	buf_free(&b);
}

/*
 * The pack holding the first data chunk of item "x" of backup 0, and the
 * chunk's offset there (a data pack: walking the manifests does not read it,
 * unlike the packs of tree blobs).
 */
static void
first_data_pack(Fixture *f, char pack_hex[2 * REPO_ID_LEN + 1], char chunk_hex[2 * REPO_ID_LEN + 1],
				uint64_t *offset)
{
	RepoManifest *m = NULL;
	RepoItem *item = NULL;
	RepoIndex *idx = NULL;
	RepoIndexHit hit;

	assert_int_equal(repo_manifest_load(&m, f->repo, f->ids[0]), 0);
	assert_int_equal(repo_manifest_find_item(&item, f->repo, m, "x"), 0);
	assert_true(item->nchunks > 0);
	assert_int_equal(repo_index_get(f->repo, &idx), 0);
	assert_true(repo_index_lookup(idx, item->chunks[0].id, &hit));
	repo_id_hex(pack_hex, hit.pack_id);
	repo_id_hex(chunk_hex, item->chunks[0].id);
	*offset = hit.offset;
	repo_item_free(item);
	repo_manifest_free(m);
}

/* ---- the record ---- */

static void
test_record_absent_is_empty(void **state)
{
	Fixture *f = *state;
	RepoPackChecks *c = checks_load(f);

	assert_int_equal(repo_packchecks_count(c), 0);
	repo_packchecks_free(c);
}

static void
test_record_round_trip(void **state)
{
	Fixture *f = *state;
	RepoPackChecks *c = repo_packchecks_new(), *back;
	RepoPackCheck e[3];
	Buf text = PV_BUF_INIT;
	const char *p0, *p1, *p2;

	for (int i = 0; i < 3; i++)
	{
		memset(&e[i], 0, sizeof(e[i]));
		memset(e[i].id, 0xc0 - 0x40 * i, REPO_ID_LEN);	/* added in descending id order */
		e[i].time = 1795000000 + i;
		e[i].size = 1000u * (i + 1);
		e[i].ok = i != 1;
		repo_packchecks_set(c, &e[i]);
	}
	e[2].time = 1795000099;		/* replace, not add */
	repo_packchecks_set(c, &e[2]);
	assert_int_equal(repo_packchecks_count(c), 3);
	assert_int_equal(repo_packchecks_save(c, f->repo, NULL, NULL), 0);
	back = checks_load(f);
	assert_int_equal(repo_packchecks_count(back), 3);
	for (int i = 0; i < 3; i++)
	{
		const RepoPackCheck *g = repo_packchecks_find(back, e[i].id);

		assert_non_null(g);
		assert_memory_equal(g->id, e[i].id, REPO_ID_LEN);
		assert_int_equal(g->time, e[i].time);
		assert_int_equal(g->size, e[i].size);
		assert_int_equal(g->ok, e[i].ok);
	}
	/* The stored text is sorted by id, whatever the order of the sets. */
	repo_packchecks_encode(back, &text);
	p0 = strstr(buf_cstr(&text), "\"id\":\"4040");
	p1 = strstr(buf_cstr(&text), "\"id\":\"8080");
	p2 = strstr(buf_cstr(&text), "\"id\":\"c0c0");
	assert_non_null(p0);
	assert_true(p0 < p1 && p1 < p2);
	assert_non_null(strstr(buf_cstr(&text), "\"format\":\"pgvault-packcheck\""));
	buf_free(&text);
	repo_packchecks_free(back);
	repo_packchecks_free(c);
}

static bool
keep_not_0x80(const RepoPackCheck *e, void *payload)
{
	(*(int *) payload)++;
	return e->id[0] != 0x80;
}

static void
test_record_stale_dropped_on_save(void **state)
{
	Fixture *f = *state;
	RepoPackChecks *c = repo_packchecks_new(), *back;
	RepoPackCheck e = {.time = 1, .size = 10, .ok = true};
	int calls = 0;

	memset(e.id, 0x40, REPO_ID_LEN);
	repo_packchecks_set(c, &e);
	memset(e.id, 0x80, REPO_ID_LEN);
	repo_packchecks_set(c, &e);
	assert_int_equal(repo_packchecks_save(c, f->repo, keep_not_0x80, &calls), 0);
	assert_int_equal(calls, 2);
	assert_int_equal(repo_packchecks_count(c), 1);	/* c is what was written */
	back = checks_load(f);
	assert_int_equal(repo_packchecks_count(back), 1);
	assert_int_equal(repo_packchecks_at(back, 0)->id[0], 0x40);
	repo_packchecks_free(back);
	repo_packchecks_free(c);
}

static void
test_record_save_merges_newer(void **state)
{
	Fixture *f = *state;
	RepoPackChecks *a = repo_packchecks_new(), *b = repo_packchecks_new(), *back;
	RepoPackCheck e = {.size = 10, .ok = true};

	/* verify A read packs 0x11 (t=100) and 0x22 (t=100) and saved */
	memset(e.id, 0x11, REPO_ID_LEN);
	e.time = 100;
	repo_packchecks_set(a, &e);
	memset(e.id, 0x22, REPO_ID_LEN);
	repo_packchecks_set(a, &e);
	/* verify B, started before A saved, read 0x22 earlier (t=50) and 0x33 */
	e.time = 50;
	repo_packchecks_set(b, &e);
	memset(e.id, 0x33, REPO_ID_LEN);
	repo_packchecks_set(b, &e);
	assert_int_equal(repo_packchecks_save(a, f->repo, NULL, NULL), 0);
	assert_int_equal(repo_packchecks_save(b, f->repo, NULL, NULL), 0);
	back = checks_load(f);
	assert_int_equal(repo_packchecks_count(back), 3);
	memset(e.id, 0x22, REPO_ID_LEN);
	assert_int_equal(repo_packchecks_find(back, e.id)->time, 100);	/* the newer read wins */
	memset(e.id, 0x11, REPO_ID_LEN);
	assert_non_null(repo_packchecks_find(back, e.id));
	repo_packchecks_free(back);
	repo_packchecks_free(a);
	repo_packchecks_free(b);
}

static void
test_record_decode_errors(void **state)
{
	RepoPackChecks *c = NULL;
	static const char bad_id[] =
		"{\"format\":\"pgvault-packcheck\",\"version\":1,\"packs\":[{\"id\":\"zz\",\"time\":1,"
		"\"size\":2,\"ok\":true}]}";
	static const char no_time[] =
		"{\"format\":\"pgvault-packcheck\",\"version\":1,\"packs\":[{\"id\":\"00\",\"size\":2,"
		"\"ok\":true}]}";
	static const char v2[] = "{\"format\":\"pgvault-packcheck\",\"version\":2,\"packs\":[]}";
	static const char other[] = "{\"format\":\"pgvault-record\",\"version\":1}";

	(void) state;
	assert_int_equal(repo_packchecks_decode(&c, bad_id, strlen(bad_id)), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack-check record 'records/packcheck' is damaged: "
						"entry 0: 'zz' is not a pack id");
	assert_null(c);
	assert_int_equal(repo_packchecks_decode(&c, no_time, strlen(no_time)), PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "pack-check record 'records/packcheck' is damaged: "
						   "entry 0: "));
	assert_non_null(strstr(pv_error_msg(), "time"));
	assert_int_equal(repo_packchecks_decode(&c, v2, strlen(v2)), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack-check record 'records/packcheck' has version 2, "
						"this pgvault reads version 1");
	assert_int_equal(repo_packchecks_decode(&c, other, strlen(other)), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack-check record 'records/packcheck' is damaged: it is "
						"not a pack-check record (no \"format\": \"pgvault-packcheck\")");
	assert_int_equal(repo_packchecks_decode(&c, "{\"fo", 4), PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "pack-check record 'records/packcheck' is damaged: "
						   "invalid JSON"));
	assert_null(c);
}

/* A damaged record: load names it; verify --new rebuilds it by reading everything. */
static void
test_record_corrupt_rebuilt(void **state)
{
	Fixture *f = *state;
	char *path = pv_fs_path_join(f->url, REPO_PACKCHECK_KEY);
	RepoPackChecks *c = NULL;
	RepoVerifyReport r;
	PackList all;

	r = verify_mode(f, REPO_VERIFY_MODE_FULL, 0, 0, 0);
	repo_verify_report_free(&r);
	flip_byte(path, 20);
	assert_int_equal(repo_packchecks_load(&c, f->repo), PV_ECORRUPT);
	assert_non_null(strstr(pv_error_msg(), "pack-check record 'records/packcheck' is damaged: "));
	assert_null(c);

	packs_list(f, &all);
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 0, 0);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.read_new.packs, all.n);	/* every pack counts as never read */
	assert_int_equal(r.skipped.packs, 0);
	assert_non_null(r.packcheck_warning);
	assert_non_null(strstr(r.packcheck_warning, "every pack counts as never read, this verify "
						   "writes a new record: pack-check record 'records/packcheck' is "
						   "damaged: "));
	repo_verify_report_free(&r);
	c = checks_load(f);			/* rewritten */
	assert_int_equal(repo_packchecks_count(c), all.n);
	repo_packchecks_free(c);
	pv_free(path);
}

/* ---- the modes ---- */

static void
test_full_then_new_reads_only_new_packs(void **state)
{
	Fixture *f = *state;
	RepoVerifyReport r;
	RepoPackChecks *c;
	PackList before, after;
	size_t k = 0;

	packs_list(f, &before);
	assert_true(before.n >= 3);
	r = verify_mode(f, REPO_VERIFY_MODE_FULL, 0, 0, 0);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.mode, REPO_VERIFY_MODE_FULL);
	assert_int_equal(r.read_full.packs, before.n);
	assert_int_equal(r.nread, before.n);
	assert_int_equal(r.skipped.packs, 0);
	for (size_t i = 0; i < before.n; i++)
	{
		assert_string_equal(r.read[i].id, before.id[i]);
		assert_int_equal(r.read[i].bytes, before.size[i]);
		assert_int_equal(r.read[i].reason, REPO_VERIFY_READ_FULL);
	}
	repo_verify_report_free(&r);
	c = checks_load(f);
	assert_int_equal(repo_packchecks_count(c), before.n);
	for (size_t i = 0; i < repo_packchecks_count(c); i++)
		assert_true(repo_packchecks_at(c, i)->ok);
	repo_packchecks_free(c);

	/* Nothing new: --new reads nothing but still walks every backup. */
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 0, 0);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.packs, 0);
	assert_int_equal(r.nread, 0);
	assert_int_equal(r.skipped.packs, before.n);
	assert_int_equal(r.nbackups, 1);
	assert_true(r.backups[0].chunks > 0);
	repo_verify_report_free(&r);

	rt_backup_one(f->repo, "y", f->y, Y_LEN, 65536, 0, f->ids[1], NULL);
	packs_list(f, &after);
	assert_true(after.n > before.n);
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 0, 0);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.nread, after.n - before.n);
	assert_int_equal(r.read_new.packs, after.n - before.n);
	assert_int_equal(r.skipped.packs, before.n);
	assert_int_equal(r.nbackups, 2);
	for (size_t i = 0; i < after.n; i++)
	{
		if (packs_has(&before, after.id[i]))
			continue;
		assert_string_equal(r.read[k].id, after.id[i]);	/* exactly the new packs */
		assert_int_equal(r.read[k].bytes, after.size[i]);
		assert_int_equal(r.read[k].reason, REPO_VERIFY_READ_NEW);
		assert_int_equal(r.read_new.bytes >= after.size[i], true);
		k++;
	}
	assert_int_equal(k, r.nread);
	repo_verify_report_free(&r);
}

static const RepoVerifyProblem *
chunk_problem(const RepoVerifyReport *r)
{
	for (size_t i = 0; i < r->nproblems; i++)
		if (r->problems[i].type == REPO_VERIFY_CHUNK)
			return &r->problems[i];
	return NULL;
}

static void
test_damage_in_verified_pack(void **state)
{
	Fixture *f = *state;
	RepoVerifyReport r;
	RepoPackChecks *c;
	PackList all;
	unsigned char id[REPO_ID_LEN];
	char pack[2 * REPO_ID_LEN + 1], chunk[2 * REPO_ID_LEN + 1];
	uint64_t offset;
	char *path;
	const RepoVerifyProblem *p;

	r = verify_mode(f, REPO_VERIFY_MODE_FULL, 0, 0, 0);
	repo_verify_report_free(&r);
	packs_list(f, &all);
	first_data_pack(f, pack, chunk, &offset);
	path = pack_path(f, pack);
	flip_byte(path, offset + 10);	/* inside the chunk */

	/* --new does not read it: no damage seen, the pack is counted as skipped. */
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 0, 0);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.nread, 0);
	assert_int_equal(r.skipped.packs, all.n);
	repo_verify_report_free(&r);

	/* --sample 100 reads it and names the chunk, its pack and the backup. */
	r = verify_mode(f, REPO_VERIFY_MODE_SAMPLE, 100, 0, 0);
	assert_false(repo_verify_report_ok(&r));
	assert_int_equal(r.read_sampled.packs, all.n);
	p = chunk_problem(&r);
	assert_non_null(p);
	assert_string_equal(p->pack, pack);
	assert_string_equal(p->object, chunk);
	assert_int_equal(p->nbackups, 1);
	assert_string_equal(p->backups[0], f->ids[0]);
	assert_non_null(strstr(p->message, "is corrupt"));
	assert_int_equal(r.ndamaged, 1);
	repo_verify_report_free(&r);

	/* The record says so, and the next --new reads the damaged pack again. */
	c = checks_load(f);
	unhex(id, pack);
	assert_false(repo_packchecks_find(c, id)->ok);
	repo_packchecks_free(c);
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 0, 0);
	assert_false(repo_verify_report_ok(&r));
	assert_int_equal(r.nread, 1);
	assert_string_equal(r.read[0].id, pack);
	assert_int_equal(r.read[0].reason, REPO_VERIFY_READ_DAMAGED);
	assert_false(r.read[0].ok);
	repo_verify_report_free(&r);

	/* A full verify finds it too. */
	r = verify_mode(f, REPO_VERIFY_MODE_FULL, 0, 0, 0);
	assert_false(repo_verify_report_ok(&r));
	assert_string_equal(chunk_problem(&r)->pack, pack);
	assert_string_equal(chunk_problem(&r)->object, chunk);
	repo_verify_report_free(&r);
	pv_free(path);
}

static void
test_period_forces_old_packs(void **state)
{
	Fixture *f = *state;
	int64_t t0 = 1795000000;
	RepoVerifyReport r;
	PackList all;

	packs_list(f, &all);
	r = verify_mode(f, REPO_VERIFY_MODE_FULL, 0, 0, t0);
	repo_verify_report_free(&r);
	/* Within the period: nothing read. */
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 3600, t0 + 3599);
	assert_int_equal(r.nread, 0);
	assert_int_equal(r.skipped.packs, all.n);
	assert_int_equal(r.period, 3600);
	repo_verify_report_free(&r);
	/* Past it: every pack is read again, as forced by the period. */
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 3600, t0 + 3601);
	assert_int_equal(r.nread, all.n);
	assert_int_equal(r.read_forced.packs, all.n);
	assert_int_equal(r.skipped.packs, 0);
	for (size_t i = 0; i < r.nread; i++)
		assert_int_equal(r.read[i].reason, REPO_VERIFY_READ_PERIOD);
	repo_verify_report_free(&r);
	/* ...which refreshed their time: an hour later nothing is due. */
	r = verify_mode(f, REPO_VERIFY_MODE_SAMPLE, 0, 3600, t0 + 3601 + 3000);
	assert_int_equal(r.nread, 0);
	repo_verify_report_free(&r);
}

static void
test_sample_count(void **state)
{
	Fixture *f = *state;
	RepoVerifyReport r;
	PackList all;
	static const double percents[] = {0, 1, 34, 50, 99, 100};

	rt_backup_one(f->repo, "y", f->y, Y_LEN, 65536, 0, f->ids[1], NULL);
	packs_list(f, &all);
	r = verify_mode(f, REPO_VERIFY_MODE_FULL, 0, 0, 0);
	repo_verify_report_free(&r);
	for (size_t i = 0; i < sizeof(percents) / sizeof(percents[0]); i++)
	{
		size_t want = (size_t) ceil(all.n * percents[i] / 100.0);

		r = verify_mode(f, REPO_VERIFY_MODE_SAMPLE, percents[i], 0, 0);
		assert_int_equal(r.read_sampled.packs, want);
		assert_int_equal(r.nread, want);
		assert_int_equal(r.skipped.packs, all.n - want);
		assert_int_equal(r.read_new.packs, 0);
		for (size_t k = 0; k < r.nread; k++)
			assert_int_equal(r.read[k].reason, REPO_VERIFY_READ_SAMPLE);
		repo_verify_report_free(&r);
	}
}

/* Entries of packs no longer in the repository are ignored, then dropped. */
static void
test_stale_entries_after_pack_removed(void **state)
{
	Fixture *f = *state;
	RepoVerifyReport r;
	RepoPackChecks *c = repo_packchecks_new();
	RepoPackCheck ghost = {.time = 1, .size = 4096, .ok = true};
	PackList all;

	memset(ghost.id, 0x5a, REPO_ID_LEN);	/* a pack a prune removed */
	repo_packchecks_set(c, &ghost);
	assert_int_equal(repo_packchecks_save(c, f->repo, NULL, NULL), 0);
	repo_packchecks_free(c);
	packs_list(f, &all);
	r = verify_mode(f, REPO_VERIFY_MODE_NEW, 0, 0, 0);
	assert_true(repo_verify_report_ok(&r));
	assert_int_equal(r.nread, all.n);	/* the ghost entry vouches for nothing */
	repo_verify_report_free(&r);
	c = checks_load(f);
	assert_int_equal(repo_packchecks_count(c), all.n);
	assert_null(repo_packchecks_find(c, ghost.id));
	repo_packchecks_free(c);
}

/* The verify record (ops/catalog.c) says which mode ran; old readers ignore it. */
static void
test_verify_record_mode(void **state)
{
	Fixture *f = *state;
	static const RepoVerifyMode modes[] = {REPO_VERIFY_MODE_FULL, REPO_VERIFY_MODE_NEW,
		REPO_VERIFY_MODE_SAMPLE};
	static const char *const names[] = {"full", "new", "sample"};

	for (size_t i = 0; i < 3; i++)
	{
		RepoVerifyOpts opts = {.mode = modes[i], .sample_percent = 50, .jobs = 1};
		RepoVerifyReport r;
		CatalogRecordList l;
		json_t *body = NULL;
		const char *mode;

		assert_int_equal(catalog_verify_run(f->repo, &opts, &r), 0);
		assert_true(repo_verify_report_ok(&r));
		repo_verify_report_free(&r);
		assert_int_equal(catalog_records_list(f->repo, CATALOG_VERIFY, f->ids[0], &l), 0);
		assert_int_equal(l.n, i + 1);
		assert_true(l.items[i].ok);
		assert_int_equal(catalog_record_read(f->repo, &l.items[i], &body), 0);
		assert_int_equal(pv_json_get_str(&mode, body, "mode"), 0);
		assert_string_equal(mode, names[i]);
		assert_true(json_is_false(json_object_get(body, "quick")));
		assert_true(json_is_integer(json_object_get(body, "duration_ms")));
		json_decref(body);
		catalog_records_free(&l);
	}
}

/* backup_check: what it reports damages its backup; its failure stops the verify. */
static int
check_wal_missing(RepoVerifyRun *run, Repo *repo, const RepoManifest *m, void *payload)
{
	(*(int *) payload)++;
	repo_verify_backup_problem(run, REPO_VERIFY_WAL, "000000010000000000000003",
							   "WAL segment %s is missing", "000000010000000000000003");
	return 0;
}

static int
check_fails(RepoVerifyRun *run, Repo *repo, const RepoManifest *m, void *payload)
{
	return pv_error_set(PV_ERROR, "cannot list the WAL archive of source 'x'");
}

static void
test_backup_check_hook(void **state)
{
	Fixture *f = *state;
	int calls = 0;
	RepoVerifyOpts opts = {.mode = REPO_VERIFY_MODE_NEW, .jobs = 1,
		.backup_check = check_wal_missing, .backup_check_payload = &calls};
	RepoVerifyReport r;
	json_t *j;

	assert_int_equal(repo_verify(f->repo, &opts, &r), 0);
	assert_int_equal(calls, 1);
	assert_false(repo_verify_report_ok(&r));
	assert_int_equal(r.nproblems, 1);
	assert_int_equal(r.problems[0].type, REPO_VERIFY_WAL);
	assert_string_equal(r.problems[0].object, "000000010000000000000003");
	assert_string_equal(r.problems[0].message, "WAL segment 000000010000000000000003 is missing");
	assert_int_equal(r.problems[0].nbackups, 1);
	assert_string_equal(r.problems[0].backups[0], f->ids[0]);
	assert_true(r.backups[0].damaged);
	assert_int_equal(r.backups[0].bad_wal, 1);
	assert_int_equal(r.backups[0].bad_chunks, 0);
	j = repo_verify_report_json(&r);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j,
										  "problems"), 0), "type")), "wal");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(j,
										  "backups"), 0), "missing_wal")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "new");
	json_decref(j);
	repo_verify_report_free(&r);

	opts.backup_check = check_fails;
	assert_int_equal(repo_verify(f->repo, &opts, &r), PV_ERROR);
	assert_string_equal(pv_error_msg(), "cannot list the WAL archive of source 'x'");
}

static void
test_usage_errors(void **state)
{
	Fixture *f = *state;
	RepoVerifyReport r;

	assert_int_equal(repo_verify(f->repo, &(RepoVerifyOpts) {.quick = true,
										 .mode = REPO_VERIFY_MODE_NEW}, &r), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "a quick verify reads no pack data: it cannot also "
						"choose packs to read (new)");
	assert_int_equal(repo_verify(f->repo, &(RepoVerifyOpts) {.mode = REPO_VERIFY_MODE_SAMPLE,
										 .sample_percent = 101}, &r), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "invalid sample percentage 101 (0 to 100)");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_plain, teardown)
#define TE(fn) cmocka_unit_test_setup_teardown(fn, setup_encrypted, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_record_absent_is_empty),
		T(test_record_round_trip),
		TE(test_record_round_trip),
		T(test_record_stale_dropped_on_save),
		T(test_record_save_merges_newer),
		cmocka_unit_test(test_record_decode_errors),
		T(test_record_corrupt_rebuilt),
		TE(test_record_corrupt_rebuilt),
		T(test_full_then_new_reads_only_new_packs),
		TE(test_full_then_new_reads_only_new_packs),
		T(test_damage_in_verified_pack),
		T(test_period_forces_old_packs),
		T(test_sample_count),
		T(test_stale_entries_after_pack_removed),
		T(test_verify_record_mode),
		T(test_backup_check_hook),
		T(test_usage_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
