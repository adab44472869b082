/*
 * rebuild.c: rebuild the index from the pack headers; see rebuild.h.
 *
 * Each pack gets an RPack slot filled by exactly one pool task (its header
 * entries or its error), so the tasks share nothing but the read-only Repo.
 * The slots are in key order, so the new index files come out the same for
 * the same packs.
 */
#include "repo/rebuild.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/pool.h"
#include "repo/lock.h"
#include "repo/maint.h"
#include "repo/pack.h"
#include "repo/repo.h"

#include <string.h>

typedef struct RPack
{
	Repo *repo;
	RepoPackRecord rec;
	int rc;
	char *error;
	size_t cap;					/* of rec.entries, when carried over */
} RPack;

static int
header_task(void *arg)
{
	RPack *p = arg;
	int rc;

	rc = repo_pack_read_header(&p->rec.entries, &p->rec.n, NULL, repo_storage(p->repo),
							   repo_keys(p->repo), p->rec.id);
	if (rc == PV_ECORRUPT || rc == PV_ENOTFOUND)
	{
		/* damaged (or deleted since the listing): recorded, not fatal */
		p->rc = rc;
		p->error = pv_strdup(pv_error_msg());
		return 0;
	}
	return rc;
}

typedef struct Carry
{
	RepoIdSet *bad;				/* pack id -> 1 + slot */
	RPack *packs;
} Carry;

static int
carry_cb(const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit, void *payload)
{
	Carry *c = payload;
	uint32_t *slot = repo_idset_find(c->bad, hit->pack_id);
	RPack *p;

	if (slot == NULL)
		return 0;
	p = &c->packs[*slot - 1];
	repo_pack_entry_append(&p->rec.entries, &p->rec.n, &p->cap, id, hit);
	return 0;
}

/* Entries for damaged packs from the old index files that can still be read. */
static int
carry_over(RPack *packs, size_t n, RepoIndex *old)
{
	Carry c = {repo_idset_new(), packs};
	int rc;

	for (size_t i = 0; i < n; i++)
		if (packs[i].rc == PV_ECORRUPT)
			*repo_idset_add(c.bad, packs[i].rec.id, NULL) = (uint32_t) i + 1;
	rc = repo_index_foreach(old, carry_cb, &c);
	repo_idset_free(c.bad);
	return rc;
}

/* Read every header (parallel); fills packs[], counts into out. */
static int
headers_read(Repo *repo, const RepoRebuildOpts *opts, RPack *packs, size_t n)
{
	PvPool *pool = pv_pool_new(opts->jobs, 0);
	int rc = 0, wrc;

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = pv_pool_submit(pool, header_task, &packs[i]);
	wrc = pv_pool_wait(pool);
	pv_pool_free(pool);
	return rc < 0 ? rc : wrc;
}

int
repo_rebuild_index(Repo *repo, const RepoRebuildOpts *opts, RepoRebuildResult *out)
{
	RepoLock *lock = NULL;
	RepoIndexFiles files = {0};
	RepoIndex *old = repo_index_new();
	RepoKeyList l = {0}, written = {0};
	RPack *packs = NULL;
	RepoPackRecord *recs = NULL;
	size_t n = 0, nrecs = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (opts->lock &&
		(rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {
			.exclusive = true, .command = "rebuild-index",
			.wait_seconds = opts->lock_wait_seconds})) < 0)
		goto done;
	/* The old files first: they are what we replace, and what we carry over from. */
	if ((rc = repo_index_files_load(&files, repo, old, false, false)) < 0 ||
		(rc = repo_keylist_get(&l, repo_storage(repo), "data/")) < 0)
		goto done;
	packs = pv_calloc(l.n ? l.n : 1, sizeof(RPack));
	for (size_t i = 0; i < l.n; i++)
	{
		if (!repo_pack_key_parse(packs[n].rec.id, l.keys[i]))
		{
			pv_log_warn("rebuild-index: ignoring '%s': not a pack name", l.keys[i]);
			continue;
		}
		packs[n++].repo = repo;
	}
	pv_log_detail("rebuild-index: reading the headers of %zu packs", n);
	if ((rc = headers_read(repo, opts, packs, n)) < 0)
		goto done;
	if ((rc = carry_over(packs, n, old)) < 0)
		goto done;

	recs = pv_calloc(n ? n : 1, sizeof(RepoPackRecord));
	out->bad = pv_calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
	{
		RPack *p = &packs[i];

		if (p->rc == PV_ENOTFOUND)
			continue;			/* deleted since the listing (cannot happen under the lock) */
		if (p->rc < 0)
		{
			out->bad[out->bad_packs++] = pv_strdup(p->error);
			pv_log_warn("%s%s", p->error, p->rec.n ? " (its entries from the old index are kept)"
						: "");
			if (p->rec.n > 0)
				out->carried_packs++;
			else
				continue;
		}
		else
			out->packs++;
		out->blobs += p->rec.n;
		recs[nrecs++] = p->rec;
	}
	/* Rule 4: the new files are durable before any old one goes. */
	if ((rc = repo_index_files_write(repo, recs, nrecs, &written)) < 0)
		goto done;
	out->new_files = written.n;
	for (size_t i = 0; i < files.n; i++)
	{
		if (repo_keylist_has(&written, files.files[i].key))
			continue;			/* came out the same: it is one of ours now */
		rc = storage_delete(repo_storage(repo), files.files[i].key);
		if (rc < 0 && rc != PV_ENOTFOUND)
		{
			rc = pv_error_prefix(rc, "cannot remove old index file");
			goto done;
		}
		out->old_files++;
	}
	rc = 0;
	pv_log_detail("rebuild-index: %llu packs, %llu blobs in %llu new index files; %llu old "
				"files removed", (unsigned long long) out->packs, (unsigned long long) out->blobs,
				(unsigned long long) out->new_files, (unsigned long long) out->old_files);
done:
	for (size_t i = 0; i < n; i++)
	{
		pv_free(packs[i].rec.entries);
		pv_free(packs[i].error);
	}
	pv_free(packs);
	pv_free(recs);
	repo_keylist_free(&l);
	repo_keylist_free(&written);
	repo_index_files_free(&files);
	repo_index_free(old);
	repo_lock_release(lock);
	if (rc < 0)
		repo_rebuild_result_free(out);
	return rc;
}

json_t *
repo_rebuild_result_json(const RepoRebuildResult *r)
{
	json_t *doc = json_object();
	json_t *bad = json_array();

	json_object_set_new(doc, "packs", json_integer((json_int_t) r->packs));
	json_object_set_new(doc, "blobs", json_integer((json_int_t) r->blobs));
	json_object_set_new(doc, "bad_packs", json_integer((json_int_t) r->bad_packs));
	json_object_set_new(doc, "carried_packs", json_integer((json_int_t) r->carried_packs));
	json_object_set_new(doc, "old_index_files", json_integer((json_int_t) r->old_files));
	json_object_set_new(doc, "new_index_files", json_integer((json_int_t) r->new_files));
	for (uint64_t i = 0; i < r->bad_packs; i++)
		json_array_append_new(bad, json_string(r->bad[i]));
	json_object_set_new(doc, "problems", bad);
	return doc;
}

void
repo_rebuild_result_free(RepoRebuildResult *r)
{
	for (uint64_t i = 0; i < r->bad_packs; i++)
		pv_free(r->bad[i]);
	pv_free(r->bad);
	memset(r, 0, sizeof(*r));
}
