/*
 * verify.c: "pgvault verify", see verify.h for what is checked.
 *
 * The pass runs in four steps:
 *   1. load the index files one by one (a damaged one is a problem, the rest
 *      still count) and list the packs in storage; every pack known from
 *      either side gets a VPack, holding the entries the index gives it;
 *   2. walk the manifests of the chosen backups: count, mark the packs they
 *      need, and note chunks that no index lists;
 *   3. check the packs (all of them, or the ones the chosen backups need),
 *      in parallel on a pool: a full check reads each pack whole, a quick
 *      one compares sizes only.  In modes NEW and SAMPLE the pack-check
 *      record (packcheck.h) decides which packs are read; the others get
 *      the quick check.  The packs read are then written back to the record;
 *   4. if anything is damaged, walk the manifests again to name, for each
 *      damaged chunk or lost pack, the backups that need it.
 *
 * Problems are appended under v->mu (pool tasks report concurrently); each
 * VPack is written only by the task that checks it.  A chunk's problem is
 * found through the id set `bad` (id -> 1 + number of its first problem).
 */
#include "repo/verify.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "common/timeutil.h"
#include "repo/blob.h"
#include "repo/lock.h"
#include "repo/maint.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/packcheck.h"
#include "repo/quarantine.h"
#include "repo/repo.h"

#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct VPack
{
	unsigned char id[REPO_ID_LEN];
	bool in_storage;
	bool wanted;				/* checked in step 3 */
	bool lost;					/* none of its blobs can be read */
	bool missing;				/* lost for good: the storage does not have it */
	uint64_t size;
	RepoPackEntry *ientries;	/* what the index says it holds */
	size_t nient;
	size_t cap;
	size_t problem;				/* 1 + number of its first pack problem, 0 if none */
	bool chosen;				/* step 3 reads it (reason says why) */
	RepoVerifyReason reason;
	bool read;					/* set by its task: it was read whole */
	bool damaged;				/* set by its task: damage found in it */
} VPack;

typedef struct RepoVerifyRun Verify;

struct RepoVerifyRun
{
	Repo *repo;
	const RepoVerifyOpts *opts;
	RepoVerifyReport *r;
	RepoIndex *idx;
	RepoIdSet *packset;			/* pack id -> number in packs[] */
	VPack *packs;
	size_t npacks;
	size_t packs_cap;
	RepoIdSet *bad;				/* blob id -> 1 + number of its first chunk problem */
	RepoPackChecks *checks;		/* the pack-check record (NULL when quick) */
	const RepoQuarantine *q;	/* blobs found damaged before (left out of the index) */
	int64_t now;				/* unix seconds */
	size_t problems_cap;
	pthread_mutex_t mu;
	/* step 2 and 4: the backup being walked */
	RepoVerifyBackup *cur;
	bool attributing;
};

const char *
repo_verify_problem_type_name(RepoVerifyProblemType t)
{
	switch (t)
	{
		case REPO_VERIFY_INDEX:
			return "index";
		case REPO_VERIFY_PACK:
			return "pack";
		case REPO_VERIFY_CHUNK:
			return "chunk";
		case REPO_VERIFY_MANIFEST:
			return "manifest";
		case REPO_VERIFY_WAL:
			return "wal";
	}
	return "?";
}

const char *
repo_verify_mode_name(RepoVerifyMode m)
{
	switch (m)
	{
		case REPO_VERIFY_MODE_FULL:
			return "full";
		case REPO_VERIFY_MODE_NEW:
			return "new";
		case REPO_VERIFY_MODE_SAMPLE:
			return "sample";
	}
	return "?";
}

const char *
repo_verify_reason_name(RepoVerifyReason r)
{
	switch (r)
	{
		case REPO_VERIFY_READ_FULL:
			return "full";
		case REPO_VERIFY_READ_NEW:
			return "new";
		case REPO_VERIFY_READ_DAMAGED:
			return "damaged";
		case REPO_VERIFY_READ_PERIOD:
			return "period";
		case REPO_VERIFY_READ_SAMPLE:
			return "sample";
	}
	return "?";
}

/* Record a problem (thread-safe); returns its number. */
static size_t
problem_add(Verify *v, RepoVerifyProblemType type, const char *object, const unsigned char *pack,
			bool tree, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static size_t
problem_add(Verify *v, RepoVerifyProblemType type, const char *object, const unsigned char *pack,
			bool tree, const char *fmt, ...)
{
	RepoVerifyReport *r = v->r;
	RepoVerifyProblem *p;
	Buf msg = PV_BUF_INIT;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&v->mu);
	if (r->nproblems == v->problems_cap)
	{
		v->problems_cap = v->problems_cap ? v->problems_cap * 2 : 16;
		r->problems = pv_realloc(r->problems, v->problems_cap * sizeof(RepoVerifyProblem));
	}
	n = r->nproblems++;
	p = &r->problems[n];
	memset(p, 0, sizeof(*p));
	p->type = type;
	p->object = pv_strdup(object);
	if (pack != NULL)
	{
		p->pack = pv_malloc(2 * REPO_ID_LEN + 1);
		repo_id_hex(p->pack, pack);
	}
	p->tree = tree;
	p->message = buf_detach(&msg);
	if (type == REPO_VERIFY_CHUNK)
	{
		unsigned char id[REPO_ID_LEN];
		uint32_t *first;

		if (repo_id_parse(id, object) == 0)
		{
			first = repo_idset_add(v->bad, id, NULL);
			if (*first == 0)
				*first = (uint32_t) n + 1;
		}
	}
	pthread_mutex_unlock(&v->mu);
	pv_log_detail("verify: %s", r->problems[n].message);
	buf_free(&msg);
	return n;
}

static void
problem_add_backup(RepoVerifyProblem *p, const char *backup)
{
	if (p->nbackups > 0 && strcmp(p->backups[p->nbackups - 1], backup) == 0)
		return;					/* walks go backup by backup: a repeat is the last one */
	p->backups = pv_realloc(p->backups, (p->nbackups + 1) * sizeof(char *));
	p->backups[p->nbackups++] = pv_strdup(backup);
}

void
repo_verify_backup_problem(RepoVerifyRun *run, RepoVerifyProblemType type, const char *object,
						   const char *fmt, ...)
{
	Buf msg = PV_BUF_INIT;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	n = problem_add(run, type, object, NULL, false, "%s", buf_cstr(&msg));
	problem_add_backup(&run->r->problems[n], run->cur->id);
	if (type == REPO_VERIFY_WAL)
		run->cur->bad_wal++;
	else if (run->cur->error == NULL)
		run->cur->error = pv_strdup(buf_cstr(&msg));
	buf_free(&msg);
}

/* ---- step 1: index files and packs ---- */

_Static_assert(offsetof(VPack, id) == 0, "repo_idtable_get needs the id first");

static VPack *
pack_get(Verify *v, const unsigned char id[REPO_ID_LEN])
{
	size_t num;

	v->packs = repo_idtable_get(v->packs, &v->npacks, &v->packs_cap, sizeof(VPack), v->packset, id, &num);
	return &v->packs[num];
}

static VPack *
pack_find(Verify *v, const unsigned char id[REPO_ID_LEN])
{
	uint32_t *num = repo_idset_find(v->packset, id);

	return num ? &v->packs[*num] : NULL;
}

static int
index_entry_cb(const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit, void *payload)
{
	VPack *p = pack_get(payload, hit->pack_id);

	repo_pack_entry_append(&p->ientries, &p->nient, &p->cap, id, hit);
	return 0;
}

static int
load_index_and_packs(Verify *v)
{
	RepoIndexFiles files;
	RepoKeyList l;
	unsigned char id[REPO_ID_LEN];
	int rc;

	if ((rc = repo_index_files_load(&files, v->repo, v->idx, true, false)) < 0)
		return rc;
	v->r->index_files = files.n;
	for (size_t i = 0; i < files.n; i++)
		if (files.files[i].rc < 0)
			problem_add(v, REPO_VERIFY_INDEX, files.files[i].key, NULL, false, "%s",
						files.files[i].error);
	repo_index_files_free(&files);
	if ((rc = repo_index_foreach(v->idx, index_entry_cb, v)) < 0)
		return rc;

	if ((rc = repo_keylist_get(&l, repo_storage(v->repo), "data/")) < 0)
		return rc;
	for (size_t i = 0; i < l.n; i++)
	{
		VPack *p;

		if (!repo_pack_key_parse(id, l.keys[i]))
		{
			pv_log_warn("verify: ignoring '%s' in repository '%s': not a pack name", l.keys[i],
						repo_url(v->repo));
			continue;
		}
		p = pack_get(v, id);
		p->in_storage = true;
		p->size = l.info[i].size;
	}
	repo_keylist_free(&l);
	return 0;
}

/* ---- steps 2 and 4: walking the backups ---- */

/* One blob a backup needs: steps 2 (presence, wanted packs) and 4 (attribution). */
static void
blob_ref(Verify *v, const unsigned char id[REPO_ID_LEN], bool tree)
{
	RepoIndexHit hit;
	bool found = repo_index_lookup(v->idx, id, &hit);
	VPack *p = found ? pack_find(v, hit.pack_id) : NULL;
	uint32_t *first;
	char hex[2 * REPO_ID_LEN + 1];

	if (!v->attributing)
	{
		if (p != NULL)
			p->wanted = true;
		if (!found && !repo_idset_contains(v->bad, id))
		{
			repo_id_hex(hex, id);
			if (repo_quarantine_has_id(v->q, id))
				problem_add(v, REPO_VERIFY_CHUNK, hex, NULL, tree,
							"%s %s is damaged (an earlier verify set it aside; the next backup of "
							"the same data stores it again)", tree ? "tree blob" : "chunk", hex);
			else
				problem_add(v, REPO_VERIFY_CHUNK, hex, NULL, tree,
							"%s %s is not in the index", tree ? "tree blob" : "chunk", hex);
		}
		return;
	}
	if (p != NULL && p->lost)
	{
		problem_add_backup(&v->r->problems[p->problem - 1], v->cur->id);
		v->cur->bad_chunks++;
		return;
	}
	if ((first = repo_idset_find(v->bad, id)) == NULL)
		return;
	for (size_t k = *first - 1; k < v->r->nproblems; k++)
	{
		RepoVerifyProblem *pr = &v->r->problems[k];
		char phex[2 * REPO_ID_LEN + 1];

		if (pr->type != REPO_VERIFY_CHUNK)
			continue;
		repo_id_hex(hex, id);
		if (strcmp(pr->object, hex) != 0)
			continue;
		if (found)
			repo_id_hex(phex, hit.pack_id);
		/* Only the copy a restore would read matters. */
		if (found ? (pr->pack != NULL && strcmp(pr->pack, phex) == 0) : pr->pack == NULL)
		{
			problem_add_backup(pr, v->cur->id);
			v->cur->bad_chunks++;
			return;
		}
	}
}

static int
walk_tree_cb(const RepoTreeRef *ref, void *payload)
{
	blob_ref(payload, ref->id, true);
	return 0;
}

static int
walk_item_cb(const RepoItem *item, void *payload)
{
	Verify *v = payload;

	if (!v->attributing)
	{
		v->cur->items++;
		v->cur->chunks += item->nchunks;
	}
	for (size_t i = 0; i < item->nchunks; i++)
		blob_ref(v, item->chunks[i].id, false);
	return 0;
}

static int
backups_choose(Verify *v)
{
	RepoVerifyReport *r = v->r;
	char **ids = NULL;
	size_t n = 0;
	int rc = 0;

	if (v->opts->backups == NULL || v->opts->nbackups == 0)
	{
		if ((rc = repo_manifest_ids(v->repo, &ids, &n)) < 0)
			return rc;
	}
	else
	{
		ids = pv_calloc(v->opts->nbackups, sizeof(char *));
		for (size_t i = 0; i < v->opts->nbackups; i++)
		{
			char id[REPO_BACKUP_ID_LEN + 1];
			bool dup = false;

			char key[16 + REPO_BACKUP_ID_LEN];
			bool exists = false;

			if ((rc = repo_manifest_resolve(v->repo, v->opts->backups[i], NULL, NULL, id)) < 0)
				goto done;
			/* a full id resolves to itself: make sure there is such a backup */
			snprintf(key, sizeof(key), "snapshots/%s", id);
			if ((rc = storage_exists(repo_storage(v->repo), key, &exists)) < 0)
				goto done;
			if (!exists)
			{
				rc = pv_error_set(PV_ENOTFOUND, "no backup '%s' in repository '%s'", id,
								  repo_url(v->repo));
				goto done;
			}
			for (size_t k = 0; k < n; k++)
				dup = dup || strcmp(ids[k], id) == 0;
			if (!dup)
				ids[n++] = pv_strdup(id);
		}
	}
	r->backups = pv_calloc(n ? n : 1, sizeof(RepoVerifyBackup));
	for (size_t i = 0; i < n; i++)
		r->backups[r->nbackups++].id = pv_strdup(ids[i]);
done:
	repo_manifest_ids_free(ids, n);
	return rc;
}

/* Walk every chosen backup once (step 2, with opts->backup_check) or again (step 4). */
static int
backups_walk(Verify *v, bool attributing)
{
	v->attributing = attributing;
	for (size_t i = 0; i < v->r->nbackups; i++)
	{
		RepoVerifyBackup *b = &v->r->backups[i];
		RepoManifest *m = NULL;
		int rc;

		v->cur = b;
		if (attributing && b->error != NULL && b->kind == NULL)
			continue;			/* the manifest itself is unreadable */
		if ((rc = repo_manifest_load(&m, v->repo, b->id)) < 0)
		{
			if (!attributing)
			{
				b->error = pv_strdup(pv_error_msg());
				problem_add(v, REPO_VERIFY_MANIFEST, b->id, NULL, false, "%s", pv_error_msg());
			}
			continue;
		}
		if (!attributing)
		{
			b->kind = pv_strdup(repo_manifest_kind(m));
			b->source = pv_strdup(repo_manifest_source(m));
		}
		rc = repo_manifest_walk(v->repo, v->idx, m, walk_tree_cb, walk_item_cb, v);
		if (rc < 0 && !attributing)
		{
			b->error = pv_strdup(pv_error_msg());
			problem_add(v, REPO_VERIFY_MANIFEST, b->id, NULL, false, "%s", pv_error_msg());
		}
		if (!attributing && v->opts->backup_check != NULL &&
			(rc = v->opts->backup_check(v, v->repo, m, v->opts->backup_check_payload)) < 0)
		{
			repo_manifest_free(m);
			v->cur = NULL;
			return rc;
		}
		repo_manifest_free(m);
	}
	v->cur = NULL;
	return 0;
}

/* ---- step 3: packs ---- */

/* The index entries of p that the header does not list exactly. */
static bool
entry_in_header(const RepoPackEntry *e, const RepoPackEntry *hdr, size_t nhdr)
{
	size_t lo = 0, hi = nhdr;

	while (lo < hi)				/* header entries are sorted by offset */
	{
		size_t mid = lo + (hi - lo) / 2;

		if (hdr[mid].offset < e->offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nhdr && hdr[lo].offset == e->offset && hdr[lo].length == e->length &&
		hdr[lo].raw_length == e->raw_length && hdr[lo].type == e->type &&
		memcmp(hdr[lo].id, e->id, REPO_ID_LEN) == 0;
}

static void
pack_problem(Verify *v, VPack *p, const char *hex, const char *what)
{
	size_t n = problem_add(v, REPO_VERIFY_PACK, hex, NULL, false, "pack %s %s", hex, what);

	p->damaged = true;
	if (p->problem == 0)
		p->problem = n + 1;
}

/* Check one blob of a pack read whole; data_end: where blobs may end. */
static uint64_t
pack_check_blob(Verify *v, VPack *p, const char *phex, const Buf *data, uint64_t data_end,
				const RepoPackEntry *e, Buf *scratch)
{
	char hex[2 * REPO_ID_LEN + 1];
	const char *what = e->type == REPO_BLOB_TREE ? "tree blob" : "chunk";

	repo_id_hex(hex, e->id);
	if ((uint64_t) e->offset + e->length > data_end)
	{
		problem_add(v, REPO_VERIFY_CHUNK, hex, p->id, e->type == REPO_BLOB_TREE,
					"%s %s in pack %s is cut off: the pack ends at %llu, the blob at %llu",
					what, hex, phex, (unsigned long long) data_end,
					(unsigned long long) e->offset + e->length);
		return 0;
	}
	buf_reset(scratch);
	if (repo_blob_check(v->repo, e->id, e->raw_length, data->data + e->offset, e->length,
						scratch) < 0)
	{
		problem_add(v, REPO_VERIFY_CHUNK, hex, p->id, e->type == REPO_BLOB_TREE,
					"%s %s in pack %s is corrupt: %s", what, hex, phex, pv_error_msg());
		return 0;
	}
	return 1;
}

/* Parse the header of a pack held whole in data; *out NULL when it is damaged. */
static void
pack_header(Verify *v, VPack *p, const char *phex, const Buf *data, RepoPackEntry **out,
			size_t *out_n, uint64_t *data_end)
{
	Buf plain = PV_BUF_INIT;
	uint32_t hlen;

	*out = NULL;
	*out_n = 0;
	*data_end = data->len;
	if (data->len < 4)
	{
		pack_problem(v, p, phex, "is truncated: it has no header");
		return;
	}
	hlen = pv_read_u32le(data->data + data->len - 4);
	if (hlen == 0 || hlen > data->len - 4)
	{
		pack_problem(v, p, phex, "is truncated or damaged: its header length does not fit");
		return;
	}
	if (repo_blob_decode(&plain, repo_keys(v->repo), NULL, 0, data->data + data->len - 4 - hlen,
						 hlen, 0) < 0 ||
		repo_pack_header_parse(out, out_n, plain.data, plain.len, data->len - 4 - hlen) < 0)
	{
		Buf what = PV_BUF_INIT;

		buf_printf(&what, "has a damaged header: %s", pv_error_msg());
		pack_problem(v, p, phex, buf_cstr(&what));
		buf_free(&what);
	}
	else
		*data_end = data->len - 4 - hlen;
	buf_free(&plain);
}

typedef struct PackTask
{
	Verify *v;
	VPack *p;
} PackTask;

static int
pack_task(void *arg)
{
	PackTask *t = arg;
	Verify *v = t->v;
	VPack *p = t->p;
	Buf data = PV_BUF_INIT, scratch = PV_BUF_INIT;
	char phex[2 * REPO_ID_LEN + 1], sum[2 * REPO_ID_LEN + 1];
	char key[REPO_PACK_KEY_MAX];
	RepoPackEntry *hdr = NULL;
	size_t nhdr = 0;
	uint64_t data_end, good = 0, quarantined = 0;
	int rc;

	repo_id_hex(phex, p->id);
	repo_pack_key(key, p->id);
	if ((rc = storage_get(repo_storage(v->repo), key, &data)) < 0)
	{
		Buf what = PV_BUF_INIT;

		buf_printf(&what, rc == PV_ENOTFOUND ? "is missing" : "cannot be read: %s", pv_error_msg());
		pack_problem(v, p, phex, buf_cstr(&what));
		p->lost = true;
		p->missing = rc == PV_ENOTFOUND;
		buf_free(&what);
		goto done;
	}
	repo_sha256_hex(sum, data.data, data.len);
	pack_header(v, p, phex, &data, &hdr, &nhdr, &data_end);
	p->read = true;
	for (size_t k = 0; k < nhdr; k++)
	{
		/* found damaged before: no index lists it any more, nothing reads it */
		if (repo_quarantine_has(v->q, p->id, hdr[k].id))
			quarantined++;
		else
			good += pack_check_blob(v, p, phex, &data, data_end, &hdr[k], &scratch);
	}
	if (good + quarantined < nhdr)
		p->damaged = true;
	/*
	 * A changed pack whose every other blob checks out: the change is in the
	 * blobs set aside before, which nothing reads, and which prune removes.
	 */
	if (strcmp(sum, phex) != 0 && !(quarantined > 0 && good + quarantined == nhdr))
		pack_problem(v, p, phex, "does not match its name: its content has been changed");
	/* What the index says must hold too (a restore reads through it). */
	for (size_t k = 0; k < p->nient; k++)
	{
		const RepoPackEntry *e = &p->ientries[k];

		if (hdr != NULL && entry_in_header(e, hdr, nhdr))
			continue;
		if (hdr != NULL)
		{
			char hex[2 * REPO_ID_LEN + 1];

			repo_id_hex(hex, e->id);
			problem_add(v, REPO_VERIFY_CHUNK, hex, p->id, e->type == REPO_BLOB_TREE,
						"the index places blob %s at offset %u of pack %s, the pack header "
						"does not", hex, e->offset, phex);
			p->damaged = true;
			continue;
		}
		if (pack_check_blob(v, p, phex, &data, data_end, e, &scratch) == 0)
			p->damaged = true;
		else
			good++;
	}
	pthread_mutex_lock(&v->mu);
	v->r->packs++;
	v->r->pack_bytes += data.len;
	v->r->blobs += good;
	v->r->quarantined_seen += quarantined;
	pthread_mutex_unlock(&v->mu);
done:
	pv_free(hdr);
	buf_free(&data);
	buf_free(&scratch);
	return 0;
}

/*
 * Quick: the pack exists and is long enough for every blob the index puts in
 * it.  count: a quick verify's pack (counted in the report), else a pack an
 * incremental verify skips (counted there).
 */
static void
pack_verify_quick(Verify *v, VPack *p, bool count)
{
	char phex[2 * REPO_ID_LEN + 1];
	uint64_t end = 0;

	repo_id_hex(phex, p->id);
	for (size_t k = 0; k < p->nient; k++)
		if ((uint64_t) p->ientries[k].offset + p->ientries[k].length > end)
			end = (uint64_t) p->ientries[k].offset + p->ientries[k].length;
	if (count)
	{
		v->r->packs++;
		v->r->pack_bytes += p->size;
		v->r->blobs += p->nient;
	}
	if (p->size < end + 4 + 1)
	{
		Buf what = PV_BUF_INIT;

		buf_printf(&what, "is truncated: %llu bytes, its blobs alone need %llu",
				   (unsigned long long) p->size, (unsigned long long) end);
		pack_problem(v, p, phex, buf_cstr(&what));
		buf_free(&what);
		for (size_t k = 0; k < p->nient; k++)
		{
			const RepoPackEntry *e = &p->ientries[k];
			char hex[2 * REPO_ID_LEN + 1];

			if ((uint64_t) e->offset + e->length <= p->size)
				continue;
			repo_id_hex(hex, e->id);
			problem_add(v, REPO_VERIFY_CHUNK, hex, p->id, e->type == REPO_BLOB_TREE,
						"%s %s in pack %s is cut off", e->type == REPO_BLOB_TREE ?
						"tree blob" : "chunk", hex, phex);
		}
	}
}

/* ---- step 3a: which packs an incremental verify reads ---- */

static void
count_add(RepoVerifyCount *c, const VPack *p)
{
	c->packs++;
	c->bytes += p->size;
}

/* Must p be read (and why)?  False: it may be sampled or skipped. */
static bool
pack_must_read(Verify *v, const VPack *p, RepoVerifyReason *why)
{
	const RepoPackCheck *e;

	if (v->opts->mode == REPO_VERIFY_MODE_FULL)
	{
		*why = REPO_VERIFY_READ_FULL;
		return true;
	}
	e = repo_packchecks_find(v->checks, p->id);
	if (e == NULL || e->size != p->size)	/* a record of another pack of that name is stale */
		*why = REPO_VERIFY_READ_NEW;
	else if (!e->ok)
		*why = REPO_VERIFY_READ_DAMAGED;
	else if (v->opts->period > 0 && e->time < v->now - v->opts->period)
		*why = REPO_VERIFY_READ_PERIOD;
	else
		return false;
	return true;
}

static uint64_t
rand_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Choose sample_percent of the n packs rest[] (by count, rounded up) at random. */
static void
packs_sample(Verify *v, size_t *rest, size_t n)
{
	size_t k = (size_t) ceil((double) n * v->opts->sample_percent / 100.0);
	uint64_t x = v->opts->seed;

	if (k > n)
		k = n;
	if (x == 0 && RAND_bytes((unsigned char *) &x, sizeof(x)) != 1)
		x = (uint64_t) v->now;	/* uncovered: the OpenSSL RNG does not fail on Linux */
	x |= 1;
	for (size_t i = 0; i < k; i++)	/* a partial Fisher-Yates shuffle */
	{
		size_t j = i + (size_t) (rand_next(&x) % (n - i));
		size_t t = rest[i];

		rest[i] = rest[j];
		rest[j] = t;
		v->packs[rest[i]].chosen = true;
		v->packs[rest[i]].reason = REPO_VERIFY_READ_SAMPLE;
	}
}

/* Mark the packs to read (chosen) among the candidates; quick-check the others. */
static void
packs_choose(Verify *v)
{
	bool all = v->opts->backups == NULL || v->opts->nbackups == 0;
	RepoVerifyReport *r = v->r;
	size_t *rest = pv_calloc(v->npacks ? v->npacks : 1, sizeof(size_t));
	size_t nrest = 0;

	for (size_t i = 0; i < v->npacks; i++)
	{
		VPack *p = &v->packs[i];

		if ((!all && !p->wanted) || !p->in_storage)
			continue;
		if (pack_must_read(v, p, &p->reason))
			p->chosen = true;
		else
			rest[nrest++] = i;
	}
	if (v->opts->mode == REPO_VERIFY_MODE_SAMPLE && nrest > 0)
		packs_sample(v, rest, nrest);
	for (size_t i = 0; i < v->npacks; i++)
	{
		VPack *p = &v->packs[i];

		if ((!all && !p->wanted) || !p->in_storage)
			continue;
		if (!p->chosen)
		{
			count_add(&r->skipped, p);
			pack_verify_quick(v, p, false);
			continue;
		}
		switch (p->reason)
		{
			case REPO_VERIFY_READ_FULL:
				count_add(&r->read_full, p);
				break;
			case REPO_VERIFY_READ_NEW:
			case REPO_VERIFY_READ_DAMAGED:
				count_add(&r->read_new, p);
				break;
			case REPO_VERIFY_READ_PERIOD:
				count_add(&r->read_forced, p);
				break;
			case REPO_VERIFY_READ_SAMPLE:
				count_add(&r->read_sampled, p);
				break;
		}
	}
	pv_free(rest);
}

static int
packs_verify(Verify *v)
{
	bool all = v->opts->backups == NULL || v->opts->nbackups == 0;
	PvPool *pool = NULL;
	PackTask *tasks = pv_calloc(v->npacks ? v->npacks : 1, sizeof(PackTask));
	int rc = 0;

	if (!v->opts->quick)
		packs_choose(v);
	for (size_t i = 0; i < v->npacks; i++)
	{
		VPack *p = &v->packs[i];
		char phex[2 * REPO_ID_LEN + 1];

		if (p->nient == 0 && p->in_storage)
			v->r->unindexed_packs++;
		if (!all && !p->wanted)
			continue;
		if (!p->in_storage)
		{
			repo_id_hex(phex, p->id);
			pack_problem(v, p, phex, "is missing: the index lists it, the storage does not have it");
			p->lost = true;
			p->missing = true;
			continue;
		}
		if (v->opts->quick)
		{
			pack_verify_quick(v, p, true);
			continue;
		}
		if (!p->chosen)
			continue;
		if (pool == NULL)
			pool = pv_pool_new(v->opts->jobs, 0);
		tasks[i] = (PackTask) {v, p};
		if ((rc = pv_pool_submit(pool, pack_task, &tasks[i])) < 0)
			break;
	}
	if (pool != NULL)
	{
		int wrc = pv_pool_wait(pool);

		if (rc == 0)
			rc = wrc;
		pv_pool_free(pool);
	}
	pv_free(tasks);
	return rc;
}

/* ---- step 3b: the pack-check record ---- */

static void
packcheck_warn(Verify *v, const char *what)
{
	Buf w = PV_BUF_INIT;

	buf_printf(&w, "%s: %s", what, pv_error_msg());
	pv_log_warn("verify: %s", buf_cstr(&w));
	pv_free(v->r->packcheck_warning);
	v->r->packcheck_warning = buf_detach(&w);
	pv_error_clear();
}

static int
packcheck_load(Verify *v)
{
	int rc;

	if (v->opts->quick)
		return 0;
	rc = repo_packchecks_load(&v->checks, v->repo);
	if (rc == PV_ECORRUPT)
	{
		packcheck_warn(v, "every pack counts as never read, this verify writes a new record");
		v->checks = repo_packchecks_new();
		rc = 0;
	}
	return rc;
}

static int
read_cmp(const void *a, const void *b)
{
	return strcmp(((const RepoVerifyPackRead *) a)->id, ((const RepoVerifyPackRead *) b)->id);
}

static bool
packcheck_keep(const RepoPackCheck *e, void *payload)
{
	VPack *p = pack_find(payload, e->id);

	return p != NULL && p->in_storage && p->size == e->size;
}

/* The packs read go to the report and the record (rule 3 drops the gone ones). */
static void
packcheck_update(Verify *v)
{
	RepoVerifyReport *r = v->r;

	if (v->checks == NULL)
		return;
	r->read = pv_calloc(v->npacks ? v->npacks : 1, sizeof(RepoVerifyPackRead));
	for (size_t i = 0; i < v->npacks; i++)
	{
		VPack *p = &v->packs[i];
		RepoVerifyPackRead *pr;
		RepoPackCheck e;

		if (!p->read)
			continue;
		pr = &r->read[r->nread++];
		repo_id_hex(pr->id, p->id);
		pr->bytes = p->size;
		pr->reason = p->reason;
		pr->ok = !p->damaged;
		e.time = v->now;
		e.size = p->size;
		e.ok = !p->damaged;
		memcpy(e.id, p->id, REPO_ID_LEN);
		repo_packchecks_set(v->checks, &e);
	}
	qsort(r->read, r->nread, sizeof(RepoVerifyPackRead), read_cmp);
	if (repo_packchecks_save(v->checks, v->repo, packcheck_keep, v) < 0)
		packcheck_warn(v, "the packs read are not recorded, the next --new verify reads them again");
}

/*
 * Damage found by this run goes into the quarantine record, so that the
 * next backup stores those chunks again instead of counting on the damaged
 * copies (quarantine.h).  Only what is damaged for good: blobs that failed
 * their check or that the index places wrongly, and the blobs of packs the
 * storage does not have; a pack that could not be read now is not.  The
 * record keeps its entries (keep NULL): they are few, and an entry dropped
 * too early would let a damaged copy back in.
 */
static void
quarantine_update(Verify *v)
{
	RepoVerifyReport *r = v->r;
	RepoQuarantine *add = repo_quarantine_new();
	unsigned char pack[REPO_ID_LEN], id[REPO_ID_LEN];

	for (size_t i = 0; i < r->nproblems; i++)
	{
		const RepoVerifyProblem *pr = &r->problems[i];

		if (pr->type == REPO_VERIFY_CHUNK && pr->pack != NULL && repo_id_parse(pack, pr->pack) == 0 &&
			repo_id_parse(id, pr->object) == 0)
			repo_quarantine_add(add, pack, id, v->now);
	}
	for (size_t i = 0; i < v->npacks; i++)
		for (size_t k = 0; v->packs[i].missing && k < v->packs[i].nient; k++)
			repo_quarantine_add(add, v->packs[i].id, v->packs[i].ientries[k].id, v->now);
	r->quarantined = repo_quarantine_count(add);
	if (r->quarantined == 0)
	{
		repo_quarantine_free(add);
		return;
	}
	if (repo_quarantine_save(add, v->repo, NULL, NULL) < 0)
	{
		r->quarantine_warning = pv_strdup(pv_error_msg());
		pv_error_clear();
		repo_quarantine_free(add);
		return;
	}
	repo_quarantine_replace(v->repo, add);	/* later index loads of this process leave them out */
}

/* ---- the pass ---- */

int
repo_verify(Repo *repo, const RepoVerifyOpts *opts, RepoVerifyReport *out)
{
	Verify v = {0};
	RepoLock *lock = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (opts->quick && opts->mode != REPO_VERIFY_MODE_FULL)
		return pv_error_set(PV_EUSAGE, "a quick verify reads no pack data: it cannot also "
							"choose packs to read (%s)", repo_verify_mode_name(opts->mode));
	if (opts->mode == REPO_VERIFY_MODE_SAMPLE &&
		!(opts->sample_percent >= 0.0 && opts->sample_percent <= 100.0))
		return pv_error_set(PV_EUSAGE, "invalid sample percentage %g (0 to 100)",
							opts->sample_percent);
	if (opts->period < 0)
		return pv_error_set(PV_EUSAGE, "invalid verify period %lld seconds",
							(long long) opts->period);
	out->quick = opts->quick;
	out->mode = opts->mode;
	out->sample_percent = opts->mode == REPO_VERIFY_MODE_SAMPLE ? opts->sample_percent : 0.0;
	out->period = opts->period;
	v.now = opts->now ? opts->now : pv_time_now() / PV_USEC_PER_SEC;
	v.repo = repo;
	v.opts = opts;
	v.r = out;
	v.idx = repo_index_new();
	v.packset = repo_idset_new();
	v.bad = repo_idset_new();
	pthread_mutex_init(&v.mu, NULL);

	if (opts->lock &&
		(rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {.command = "verify"})) < 0)
		goto done;
	if ((rc = load_index_and_packs(&v)) < 0 || (rc = backups_choose(&v)) < 0 ||
		(rc = packcheck_load(&v)) < 0 || (rc = repo_quarantine_get(repo, &v.q)) < 0)
		goto done;
	pv_log_detail("verify: %zu index files, %zu packs known, %zu backups to check",
				  (size_t) out->index_files, v.npacks, out->nbackups);
	if ((rc = backups_walk(&v, false)) < 0)
		goto done;
	if ((rc = packs_verify(&v)) < 0)
		goto done;
	packcheck_update(&v);
	if (opts->quarantine)
		quarantine_update(&v);
	if (repo_idset_count(v.bad) > 0 || out->nproblems > 0)
		(void) backups_walk(&v, true);	/* no check runs: it cannot fail */
	for (size_t i = 0; i < out->nbackups; i++)
	{
		RepoVerifyBackup *b = &out->backups[i];

		b->damaged = b->error != NULL || b->bad_chunks > 0 || b->bad_wal > 0;
		out->ndamaged += b->damaged;
	}
	rc = 0;
done:
	repo_lock_release(lock);
	for (size_t i = 0; i < v.npacks; i++)
		pv_free(v.packs[i].ientries);
	pv_free(v.packs);
	repo_idset_free(v.packset);
	repo_idset_free(v.bad);
	repo_index_free(v.idx);
	repo_packchecks_free(v.checks);
	pthread_mutex_destroy(&v.mu);
	if (rc < 0)
		repo_verify_report_free(out);
	return rc;
}

bool
repo_verify_report_ok(const RepoVerifyReport *r)
{
	return r->nproblems == 0 && r->ndamaged == 0;
}

static json_t *
count_json(const RepoVerifyCount *c)
{
	return json_pack("{s:I, s:I}", "packs", (json_int_t) c->packs, "bytes", (json_int_t) c->bytes);
}

/* How the packs read were chosen, and which they are. */
static json_t *
selection_json(const RepoVerifyReport *r)
{
	json_t *read = json_array();
	json_t *doc;

	for (size_t i = 0; i < r->nread; i++)
		json_array_append_new(read, json_pack("{s:s, s:I, s:s, s:b}", "id", r->read[i].id,
											  "bytes", (json_int_t) r->read[i].bytes,
											  "reason", repo_verify_reason_name(r->read[i].reason),
											  "ok", r->read[i].ok));
	doc = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}",
					"read", json_pack("{s:I, s:I}", "packs", (json_int_t) r->packs,
									  "bytes", (json_int_t) r->pack_bytes),
					"full", count_json(&r->read_full), "new", count_json(&r->read_new),
					"forced_by_period", count_json(&r->read_forced),
					"sampled", count_json(&r->read_sampled), "skipped", count_json(&r->skipped),
					"verify_period_s", (json_int_t) r->period, "read_packs", read);
	json_object_set_new(doc, "sample_percent", r->mode == REPO_VERIFY_MODE_SAMPLE ?
						json_real(r->sample_percent) : json_null());
	json_object_set_new(doc, "packcheck_warning", r->packcheck_warning ?
						json_string(r->packcheck_warning) : json_null());
	return doc;
}

json_t *
repo_verify_report_json(const RepoVerifyReport *r)
{
	json_t *doc = json_object();
	json_t *backups = json_array();
	json_t *problems = json_array();

	json_object_set_new(doc, "status", json_string(repo_verify_report_ok(r) ? "ok" : "corrupt"));
	json_object_set_new(doc, "quick", json_boolean(r->quick));
	json_object_set_new(doc, "mode", json_string(r->quick ? "quick" : repo_verify_mode_name(r->mode)));
	if (!r->quick)
		json_object_set_new(doc, "selection", selection_json(r));
	json_object_set_new(doc, "packs", json_integer((json_int_t) r->packs));
	json_object_set_new(doc, "pack_bytes", json_integer((json_int_t) r->pack_bytes));
	json_object_set_new(doc, "blobs", json_integer((json_int_t) r->blobs));
	json_object_set_new(doc, "unindexed_packs", json_integer((json_int_t) r->unindexed_packs));
	json_object_set_new(doc, "index_files", json_integer((json_int_t) r->index_files));
	json_object_set_new(doc, "damaged_backups", json_integer((json_int_t) r->ndamaged));
	json_object_set_new(doc, "quarantine", json_pack("{s:I, s:I, s:o}", "new", (json_int_t) r->quarantined,
													  "seen", (json_int_t) r->quarantined_seen,
													  "warning", r->quarantine_warning ?
													  json_string(r->quarantine_warning) : json_null()));
	for (size_t i = 0; i < r->nbackups; i++)
	{
		const RepoVerifyBackup *b = &r->backups[i];
		json_t *jb = json_object();

		json_object_set_new(jb, "id", json_string(b->id));
		json_object_set_new(jb, "kind", b->kind ? json_string(b->kind) : json_null());
		json_object_set_new(jb, "source", b->source && b->source[0] ? json_string(b->source)
							: json_null());
		json_object_set_new(jb, "status", json_string(b->damaged ? "damaged" : "ok"));
		json_object_set_new(jb, "items", json_integer((json_int_t) b->items));
		json_object_set_new(jb, "chunks", json_integer((json_int_t) b->chunks));
		json_object_set_new(jb, "bad_chunks", json_integer((json_int_t) b->bad_chunks));
		json_object_set_new(jb, "missing_wal", json_integer((json_int_t) b->bad_wal));
		json_object_set_new(jb, "error", b->error ? json_string(b->error) : json_null());
		json_array_append_new(backups, jb);
	}
	for (size_t i = 0; i < r->nproblems; i++)
	{
		const RepoVerifyProblem *p = &r->problems[i];
		json_t *jp = json_object();
		json_t *jb = json_array();

		json_object_set_new(jp, "type", json_string(repo_verify_problem_type_name(p->type)));
		json_object_set_new(jp, "object", json_string(p->object));
		if (p->type == REPO_VERIFY_CHUNK)
		{
			json_object_set_new(jp, "pack", p->pack ? json_string(p->pack) : json_null());
			json_object_set_new(jp, "blob_type", json_string(p->tree ? "tree" : "data"));
		}
		json_object_set_new(jp, "message", json_string(p->message));
		for (size_t k = 0; k < p->nbackups; k++)
			json_array_append_new(jb, json_string(p->backups[k]));
		json_object_set_new(jp, "backups", jb);
		json_array_append_new(problems, jp);
	}
	json_object_set_new(doc, "backups", backups);
	json_object_set_new(doc, "problems", problems);
	return doc;
}

void
repo_verify_report_free(RepoVerifyReport *r)
{
	for (size_t i = 0; i < r->nbackups; i++)
	{
		pv_free(r->backups[i].id);
		pv_free(r->backups[i].kind);
		pv_free(r->backups[i].source);
		pv_free(r->backups[i].error);
	}
	pv_free(r->backups);
	for (size_t i = 0; i < r->nproblems; i++)
	{
		RepoVerifyProblem *p = &r->problems[i];

		pv_free(p->object);
		pv_free(p->pack);
		pv_free(p->message);
		for (size_t k = 0; k < p->nbackups; k++)
			pv_free(p->backups[k]);
		pv_free(p->backups);
	}
	pv_free(r->problems);
	pv_free(r->read);
	pv_free(r->packcheck_warning);
	pv_free(r->quarantine_warning);
	memset(r, 0, sizeof(*r));
}
