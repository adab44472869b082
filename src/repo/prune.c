/*
 * prune.c: remove what no backup needs; see prune.h for the steps and why
 * each order is safe.
 *
 * Data: every pack known from the index or the storage listing gets a PPack
 * (its index entries, and per entry whether it holds the kept copy of a live
 * blob).  The id set `live` maps each blob some manifest needs to 0 (no copy
 * chosen yet) or 1 + the number of the pack holding the copy we keep: the
 * first listing in an existing pack wins, so every live blob has exactly
 * one kept copy and the rest of the repository can go.
 *
 * Repacking builds its packs here (not with RepoPackWriter) so that the new
 * packs' ids and entries are known exactly: they must be indexed before
 * anything is deleted, and must never be deleted themselves even if one
 * comes out byte-identical to a pack that is being removed.
 */
#include "repo/prune.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "repo/blob.h"
#include "repo/lock.h"
#include "repo/maint.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/repo.h"

#include <dirent.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef enum PackFate
{
	FATE_KEEP,
	FATE_DELETE,				/* nothing live */
	FATE_REPACK,				/* too little live */
	FATE_UNINDEXED,				/* in no index file: garbage */
	FATE_MISSING,				/* indexed, not in storage: its listing goes */
} PackFate;

typedef struct PPack
{
	unsigned char id[REPO_ID_LEN];
	bool in_storage;
	uint64_t size;
	RepoPackEntry *entries;
	bool *keep;
	size_t n;
	size_t cap;
	uint64_t data_bytes;
	uint64_t live_bytes;
	size_t nlive;
	PackFate fate;
	bool covered;				/* listed by an index file that stays */
} PPack;

typedef struct Prune
{
	Repo *repo;
	const RepoPruneOpts *opts;
	RepoPruneResult *r;
	RepoIndex *idx;
	RepoIndexFiles files;
	bool *replace;				/* per index file: it goes (lists a pack that does not stay) */
	RepoIdSet *packset;			/* pack id -> number */
	PPack *packs;
	size_t npacks;
	size_t packs_cap;
	RepoIdSet *live;
	RepoIdSet *newpacks;		/* packs written by this prune */
	RepoPackRecord *newrecs;
	size_t nnew;
	RepoKeyList written;		/* index files written by this prune */
} Prune;

/* ---- step 1 ---- */

_Static_assert(offsetof(PPack, id) == 0, "repo_idtable_get needs the id first");

static PPack *
pack_get(Prune *p, const unsigned char id[REPO_ID_LEN])
{
	size_t num;

	p->packs = repo_idtable_get(p->packs, &p->npacks, &p->packs_cap, sizeof(PPack), p->packset, id, &num);
	return &p->packs[num];
}

static int
index_entry_cb(const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit, void *payload)
{
	PPack *pk = pack_get(payload, hit->pack_id);

	repo_pack_entry_append(&pk->entries, &pk->n, &pk->cap, id, hit);
	pk->data_bytes += hit->length;
	return 0;
}

static int
load(Prune *p)
{
	RepoKeyList l;
	unsigned char id[REPO_ID_LEN];
	int rc;

	if ((rc = repo_index_files_load(&p->files, p->repo, p->idx, false, true)) < 0)
		return pv_error_prefix(rc, "prune stopped before deleting anything");
	if ((rc = repo_index_foreach(p->idx, index_entry_cb, p)) < 0)
		return rc;
	if ((rc = repo_keylist_get(&l, repo_storage(p->repo), "data/")) < 0)
		return rc;
	for (size_t i = 0; i < l.n; i++)
	{
		PPack *pk;

		if (!repo_pack_key_parse(id, l.keys[i]))
			continue;			/* not ours: leave it alone */
		pk = pack_get(p, id);
		pk->in_storage = true;
		pk->size = l.info[i].size;
	}
	repo_keylist_free(&l);
	for (size_t i = 0; i < p->npacks; i++)
		p->packs[i].keep = pv_calloc(p->packs[i].n ? p->packs[i].n : 1, sizeof(bool));
	return 0;
}

/* ---- step 2: mark ---- */

static int
mark_tree_cb(const RepoTreeRef *ref, void *payload)
{
	repo_idset_add(((Prune *) payload)->live, ref->id, NULL);
	return 0;
}

static int
mark_item_cb(const RepoItem *item, void *payload)
{
	Prune *p = payload;

	for (size_t i = 0; i < item->nchunks; i++)
		repo_idset_add(p->live, item->chunks[i].id, NULL);
	return 0;
}

static int
mark(Prune *p)
{
	char **ids = NULL;
	size_t n = 0;
	int rc;

	if ((rc = repo_manifest_ids(p->repo, &ids, &n)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
	{
		RepoManifest *m = NULL;

		if ((rc = repo_manifest_load(&m, p->repo, ids[i])) < 0 ||
			(rc = repo_manifest_walk(p->repo, p->idx, m, mark_tree_cb, mark_item_cb, p)) < 0)
		{
			repo_manifest_free(m);
			rc = pv_error_prefix(rc, "prune stopped before deleting anything: cannot read "
								 "backup '%s'", ids[i]);
			pv_error_hint("run 'pgvault verify %s' to see the damage; a backup that cannot be "
						  "repaired must be deleted before prune can run", ids[i]);
			goto done;
		}
		repo_manifest_free(m);
		p->r->backups++;
	}
done:
	repo_manifest_ids_free(ids, n);
	return rc;
}

/* ---- step 3: plan ---- */

static int
live_check_cb(const unsigned char id[REPO_ID_LEN], uint32_t *value, void *payload)
{
	Prune *p = payload;
	char hex[2 * REPO_ID_LEN + 1];

	if (*value != 0)
		return 0;
	repo_id_hex(hex, id);
	if (!repo_index_lookup(p->idx, id, NULL))
		pv_error_set(PV_ECORRUPT, "prune stopped before deleting anything: blob %s, which a "
					 "backup needs, is not in the index", hex);
	else
		pv_error_set(PV_ECORRUPT, "prune stopped before deleting anything: blob %s, which a "
					 "backup needs, is in no pack that exists", hex);
	pv_error_hint("run 'pgvault verify' to see which backups are damaged, and 'pgvault repo "
				  "rebuild-index' if index files were lost");
	return PV_ECORRUPT;
}

static int
plan(Prune *p)
{
	RepoPruneResult *r = p->r;
	int threshold = p->opts->repack_threshold;
	int rc;

	/* One kept copy per live blob: the first listing in a pack that exists. */
	for (size_t i = 0; i < p->npacks; i++)
	{
		PPack *pk = &p->packs[i];

		if (!pk->in_storage)
			continue;
		for (size_t k = 0; k < pk->n; k++)
		{
			uint32_t *v = repo_idset_find(p->live, pk->entries[k].id);

			if (v == NULL || *v != 0)
				continue;
			*v = (uint32_t) i + 1;
			pk->keep[k] = true;
			pk->nlive++;
			pk->live_bytes += pk->entries[k].length;
		}
	}
	if ((rc = repo_idset_foreach(p->live, live_check_cb, p)) < 0)
		return rc;

	r->blobs = repo_index_count(p->idx);
	r->live_blobs = repo_idset_count(p->live);
	for (size_t i = 0; i < p->npacks; i++)
	{
		PPack *pk = &p->packs[i];

		if (pk->in_storage)
		{
			r->packs++;
			r->pack_bytes += pk->size;
		}
		r->live_bytes += pk->live_bytes;
		if (!pk->in_storage)
			pk->fate = FATE_MISSING;
		else if (pk->n == 0)
			pk->fate = FATE_UNINDEXED;
		else if (pk->nlive == 0)
			pk->fate = FATE_DELETE;
		else if (pk->live_bytes * 100 < (uint64_t) threshold * pk->data_bytes)
			pk->fate = FATE_REPACK;
		else
			pk->fate = FATE_KEEP;
		switch (pk->fate)
		{
			case FATE_DELETE:
				r->packs_deleted++;
				r->bytes_freed += pk->size;
				break;
			case FATE_UNINDEXED:
				r->packs_unindexed++;
				r->bytes_freed += pk->size;
				break;
			case FATE_REPACK:
				r->packs_repacked++;
				r->bytes_repacked += pk->live_bytes;
				/* what the copies will take again, headers aside */
				r->bytes_freed += pk->size - pk->live_bytes;
				break;
			default:
				break;
		}
	}
	/* Which index files stay: those listing only packs that stay. */
	p->replace = pv_calloc(p->files.n + 1, sizeof(bool));
	for (size_t f = 0; f < p->files.n; f++)
	{
		RepoIndexFileStatus *fs = &p->files.files[f];
		bool stays = fs->npacks > 0;	/* an empty file is garbage too */

		for (size_t k = 0; k < fs->npacks && stays; k++)
		{
			uint32_t *num = repo_idset_find(p->packset, fs->packs[k]);

			stays = num != NULL && p->packs[*num].fate == FATE_KEEP;
		}
		p->replace[f] = !stays;
		if (stays)
			for (size_t k = 0; k < fs->npacks; k++)
				p->packs[*repo_idset_find(p->packset, fs->packs[k])].covered = true;
		else
			r->index_files_deleted++;
	}
	return 0;
}

/* ---- step 4: repack, index, delete ---- */

typedef struct NewPack
{
	Buf data;
	RepoPackEntry *entries;
	size_t n;
	size_t cap;
} NewPack;

/* Close the pack being built: header, name, durable put, record. */
static int
newpack_store(Prune *p, NewPack *np)
{
	Buf plain = PV_BUF_INIT;
	size_t hstart = np->data.len;
	unsigned char id[REPO_ID_LEN];
	char key[REPO_PACK_KEY_MAX];
	unsigned int mdlen;
	RepoPackRecord *rec;
	int rc;

	if (np->n == 0)
		return 0;
	repo_pack_header_build(&plain, np->entries, np->n);
	rc = repo_blob_encode(&np->data, repo_keys(p->repo), REPO_COMPRESS_NONE, 0, NULL, 0,
						  plain.data, plain.len);
	buf_free(&plain);
	if (rc < 0)
		return rc;
	buf_append_u32le(&np->data, (uint32_t) (np->data.len - hstart));
	EVP_Digest(np->data.data, np->data.len, id, &mdlen, EVP_sha256(), NULL);
	repo_pack_key(key, id);
	rc = storage_put(repo_storage(p->repo), key, np->data.data, np->data.len,
					 STORAGE_PUT_NO_OVERWRITE);
	if (rc == PV_EEXISTS)		/* same name, same bytes */
		rc = 0;
	if (rc < 0)
		return pv_error_prefix(rc, "cannot write pack to repository '%s'", repo_url(p->repo));
	p->newrecs = pv_realloc(p->newrecs, (p->nnew + 1) * sizeof(RepoPackRecord));
	rec = &p->newrecs[p->nnew++];
	memcpy(rec->id, id, REPO_ID_LEN);
	rec->entries = np->entries;
	rec->n = np->n;
	repo_idset_add(p->newpacks, id, NULL);
	p->r->packs_written++;
	np->entries = NULL;
	np->n = np->cap = 0;
	buf_reset(&np->data);
	return 0;
}

static int
newpack_add(Prune *p, NewPack *np, const RepoPackEntry *e, const unsigned char *blob)
{
	RepoPackEntry *ne;

	if (np->n > 0 && np->data.len + e->length > repo_pack_size(p->repo))
	{
		int rc = newpack_store(p, np);

		if (rc < 0)
			return rc;
	}
	if (np->n == np->cap)
	{
		np->cap = np->cap ? np->cap * 2 : 64;
		np->entries = pv_realloc(np->entries, np->cap * sizeof(RepoPackEntry));
	}
	ne = &np->entries[np->n++];
	*ne = *e;
	ne->offset = (uint32_t) np->data.len;
	buf_append(&np->data, blob, e->length);
	return 0;
}

/* Copy the kept blobs of every pack to repack into new packs, checking each. */
static int
repack(Prune *p)
{
	NewPack np = {PV_BUF_INIT, NULL, 0, 0};
	Buf data = PV_BUF_INIT, scratch = PV_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < p->npacks && rc == 0; i++)
	{
		PPack *pk = &p->packs[i];
		char key[REPO_PACK_KEY_MAX], phex[2 * REPO_ID_LEN + 1];

		if (pk->fate != FATE_REPACK)
			continue;
		repo_pack_key(key, pk->id);
		repo_id_hex(phex, pk->id);
		buf_reset(&data);
		if ((rc = storage_get(repo_storage(p->repo), key, &data)) < 0)
			break;
		for (size_t k = 0; k < pk->n && rc == 0; k++)
		{
			const RepoPackEntry *e = &pk->entries[k];
			char hex[2 * REPO_ID_LEN + 1];

			if (!pk->keep[k])
				continue;
			repo_id_hex(hex, e->id);
			buf_reset(&scratch);
			if ((uint64_t) e->offset + e->length > data.len)
				rc = pv_error_set(PV_ECORRUPT, "blob %s in pack %s is cut off", hex, phex);
			else if ((rc = repo_blob_check(p->repo, e->id, e->raw_length, data.data + e->offset,
										   e->length, &scratch)) < 0)
				rc = pv_error_prefix(PV_ECORRUPT, "blob %s in pack %s is corrupt", hex, phex);
			if (rc < 0)
			{
				pv_error_prefix(rc, "prune stopped before deleting anything");
				pv_error_hint("run 'pgvault verify' to see which backups are damaged");
				break;
			}
			rc = newpack_add(p, &np, e, data.data + e->offset);
		}
	}
	if (rc == 0)
		rc = newpack_store(p, &np);
	buf_free(&np.data);
	pv_free(np.entries);
	buf_free(&data);
	buf_free(&scratch);
	return rc;
}

/* New index files: the new packs, and the staying packs no staying file lists. */
static int
index_write(Prune *p)
{
	RepoPackRecord *recs = pv_calloc(p->nnew + p->npacks + 1, sizeof(RepoPackRecord));
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < p->nnew; i++)
		recs[n++] = p->newrecs[i];
	for (size_t i = 0; i < p->npacks; i++)
	{
		PPack *pk = &p->packs[i];

		if (pk->fate == FATE_KEEP && !pk->covered)
		{
			memcpy(recs[n].id, pk->id, REPO_ID_LEN);
			recs[n].entries = pk->entries;
			recs[n++].n = pk->n;
		}
	}
	rc = repo_index_files_write(p->repo, recs, n, &p->written);
	p->r->index_files_written = p->written.n;
	pv_free(recs);
	return rc;
}

/* Delete keys (absent ones are fine: an interrupted prune got them), in batches where the store has them. */
static int
delete_keys(Prune *p, const char *const *keys, size_t n)
{
	int rc = storage_delete_many(repo_storage(p->repo), keys, n);

	if (rc < 0)
		rc = pv_error_prefix(rc, "prune could not finish (the repository is consistent; run it "
							 "again)");
	return rc;
}

static int
remove_old(Prune *p)
{
	const char **keys = pv_calloc(p->files.n + p->npacks + 1, sizeof(char *));
	char (*packkeys)[REPO_PACK_KEY_MAX] = pv_calloc(p->npacks + 1, REPO_PACK_KEY_MAX);
	size_t n = 0, npk = 0;
	int rc;

	/* Rule 4: the old index files first ... */
	for (size_t f = 0; f < p->files.n; f++)
	{
		const char *key = p->files.files[f].key;

		if (p->replace[f] && !repo_keylist_has(&p->written, key))
			keys[n++] = key;
	}
	if ((rc = delete_keys(p, keys, n)) < 0)
		goto done;
	/* ... then the packs. */
	n = 0;
	for (size_t i = 0; i < p->npacks; i++)
	{
		PPack *pk = &p->packs[i];

		if (pk->fate != FATE_DELETE && pk->fate != FATE_REPACK && pk->fate != FATE_UNINDEXED)
			continue;
		if (repo_idset_contains(p->newpacks, pk->id))
			continue;			/* a repacked pack came out identical to it */
		repo_pack_key(packkeys[npk], pk->id);
		keys[n++] = packkeys[npk++];
	}
	rc = delete_keys(p, keys, n);

done:
	pv_free(packkeys);
	pv_free(keys);
	return rc;
}

/* ---- temp leftovers (local repositories only: object stores have none) ---- */

static void
tmp_clean_dir(Prune *p, const char *dir, int depth, time_t before)
{
	DIR *d;
	struct dirent *de;

	if (depth > 3 || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		char *path;
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path = pv_fs_path_join(dir, de->d_name);
		if (lstat(path, &sb) == 0)
		{
			if (S_ISDIR(sb.st_mode))
				tmp_clean_dir(p, path, depth + 1, before);
			else if (S_ISREG(sb.st_mode) && pv_fs_is_tmp_name(de->d_name) && sb.st_mtime < before)
			{
				if (p->opts->dry_run || unlink(path) == 0)
				{
					p->r->tmp_deleted++;
					pv_log_detail("prune: %s temp file '%s'",
								  p->opts->dry_run ? "would remove" : "removed", path);
				}
			}
		}
		pv_free(path);
	}
	closedir(d);
}

static void
tmp_clean(Prune *p)
{
	const char *url = repo_url(p->repo);
	int64_t age = p->opts->tmp_age_seconds ? p->opts->tmp_age_seconds : REPO_PRUNE_TMP_AGE_DEFAULT;

	if (age < 0 || url[0] != '/')
		return;
	tmp_clean_dir(p, url, 0, time(NULL) - (time_t) age);
}

/* ---- the pass ---- */

int
repo_prune(Repo *repo, const RepoPruneOpts *opts, RepoPruneResult *out)
{
	Prune p = {0};
	RepoLock *lock = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->dry_run = opts->dry_run;
	if (opts->repack_threshold < 0 || opts->repack_threshold > 100)
		return pv_error_set(PV_EUSAGE, "repack threshold %d%% is not between 0%% and 100%%",
							opts->repack_threshold);
	p.repo = repo;
	p.opts = opts;
	p.r = out;
	p.idx = repo_index_new();
	p.packset = repo_idset_new();
	p.live = repo_idset_new();
	p.newpacks = repo_idset_new();

	if (opts->lock &&
		(rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {
			.exclusive = true, .command = "prune",
			.wait_seconds = opts->lock_wait_seconds})) < 0)
	{
		if (rc == PV_ELOCKED)
			pv_error_hint("prune needs the repository to itself; wait for the backups (or the "
						  "other command) holding it to finish, or see 'pgvault repo unlock' "
						  "if the holder is gone");
		goto done;
	}
	if ((rc = load(&p)) < 0 || (rc = mark(&p)) < 0 || (rc = plan(&p)) < 0)
		goto done;
	if (!opts->dry_run && out->packs_repacked + out->packs_deleted + out->packs_unindexed +
		out->index_files_deleted > 0)
	{
		/* Each step durable before the next (rule 4); the lock is checked before deleting. */
		if ((rc = repack(&p)) < 0 || (rc = index_write(&p)) < 0)
			goto done;
		if (lock != NULL && (rc = repo_lock_check(lock)) < 0)
			goto done;
		if ((rc = remove_old(&p)) < 0)
			goto done;
	}
	tmp_clean(&p);
	rc = 0;
done:
	repo_lock_release(lock);
	for (size_t i = 0; i < p.npacks; i++)
	{
		pv_free(p.packs[i].entries);
		pv_free(p.packs[i].keep);
	}
	pv_free(p.packs);
	for (size_t i = 0; i < p.nnew; i++)
		pv_free(p.newrecs[i].entries);
	pv_free(p.newrecs);
	repo_keylist_free(&p.written);
	repo_index_files_free(&p.files);
	pv_free(p.replace);
	repo_idset_free(p.packset);
	repo_idset_free(p.live);
	repo_idset_free(p.newpacks);
	repo_index_free(p.idx);
	return rc;
}

json_t *
repo_prune_result_json(const RepoPruneResult *r)
{
	json_t *doc = json_object();

#define SET(name, v) json_object_set_new(doc, name, json_integer((json_int_t) (v)))
	json_object_set_new(doc, "dry_run", json_boolean(r->dry_run));
	SET("backups", r->backups);
	SET("packs", r->packs);
	SET("pack_bytes", r->pack_bytes);
	SET("blobs", r->blobs);
	SET("live_blobs", r->live_blobs);
	SET("live_bytes", r->live_bytes);
	SET("packs_deleted", r->packs_deleted);
	SET("packs_unindexed", r->packs_unindexed);
	SET("packs_repacked", r->packs_repacked);
	SET("packs_written", r->packs_written);
	SET("bytes_repacked", r->bytes_repacked);
	SET("bytes_freed", r->bytes_freed);
	SET("index_files_deleted", r->index_files_deleted);
	SET("index_files_written", r->index_files_written);
	SET("tmp_files_deleted", r->tmp_deleted);
#undef SET
	return doc;
}
