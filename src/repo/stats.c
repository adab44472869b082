/*
 * stats.c: repository statistics from the index and the manifests' totals;
 * see stats.h for the definitions.  The distinct blobs are counted with an
 * id set (about 50 bytes per blob), the only memory that grows.
 */
#include "repo/stats.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "repo/maint.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/repo.h"

#include <string.h>

typedef struct StatsWalk
{
	RepoStats *s;
	RepoIdSet *seen;
	RepoIdSet *packs;
} StatsWalk;

static int
stats_entry_cb(const unsigned char id[REPO_ID_LEN], const RepoIndexHit *hit, void *payload)
{
	StatsWalk *w = payload;
	bool added;

	repo_idset_add(w->packs, hit->pack_id, NULL);
	repo_idset_add(w->seen, id, &added);
	if (!added)
	{
		w->s->duplicate_blobs++;
		return 0;
	}
	if (hit->type == REPO_BLOB_TREE)
	{
		w->s->tree_blobs++;
		return 0;
	}
	w->s->data_chunks++;
	w->s->unique_raw_bytes += hit->raw_length;
	w->s->unique_stored_bytes += hit->length;
	if (hit->codec < 3)
		w->s->codec_chunks[hit->codec]++;
	return 0;
}

static double
ratio(uint64_t a, uint64_t b)
{
	return b == 0 ? 0.0 : (double) a / (double) b;
}

static int
stats_manifests(Repo *repo, RepoStats *s)
{
	char **ids = NULL;
	size_t n = 0;
	int rc;

	if ((rc = repo_manifest_ids(repo, &ids, &n)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
	{
		RepoManifest *m = NULL;
		uint64_t bytes = 0;

		if ((rc = repo_manifest_load(&m, repo, ids[i])) < 0)
			break;
		if (json_is_integer(json_object_get(repo_manifest_totals(m), "logical_bytes")))
			pv_json_get_uint(&bytes, repo_manifest_totals(m), "logical_bytes");
		s->logical_bytes += bytes;
		s->backups++;
		repo_manifest_free(m);
	}
	repo_manifest_ids_free(ids, n);
	return rc;
}

int
repo_stats_compute(Repo *repo, RepoStats *out)
{
	StatsWalk w = {out, repo_idset_new(), repo_idset_new()};
	RepoIndex *idx;
	RepoKeyList l = {0};
	unsigned char id[REPO_ID_LEN];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = repo_index_get(repo, &idx)) < 0 ||
		(rc = repo_index_foreach(idx, stats_entry_cb, &w)) < 0)
		goto done;
	if ((rc = repo_keylist_get(&l, repo_storage(repo), "index/")) < 0)
		goto done;
	out->index_files = l.n;
	for (size_t i = 0; i < l.n; i++)
		out->index_bytes += l.info[i].size;
	repo_keylist_free(&l);
	if ((rc = repo_keylist_get(&l, repo_storage(repo), "data/")) < 0)
		goto done;
	for (size_t i = 0; i < l.n; i++)
	{
		if (!repo_pack_key_parse(id, l.keys[i]))
			continue;
		out->packs++;
		out->pack_bytes += l.info[i].size;
		if (!repo_idset_contains(w.packs, id))
			out->unindexed_packs++;
	}
	if ((rc = stats_manifests(repo, out)) < 0)
		goto done;
	out->dedup_ratio = ratio(out->logical_bytes, out->unique_raw_bytes);
	out->compression_ratio = ratio(out->unique_raw_bytes, out->unique_stored_bytes);
	out->total_ratio = ratio(out->logical_bytes, out->pack_bytes);
done:
	repo_keylist_free(&l);
	repo_idset_free(w.seen);
	repo_idset_free(w.packs);
	return rc;
}

json_t *
repo_stats_json(const RepoStats *s)
{
	json_t *doc = json_object();
	json_t *codecs = json_object();

#define SET(name, v) json_object_set_new(doc, name, json_integer((json_int_t) (v)))
	SET("backups", s->backups);
	SET("logical_bytes", s->logical_bytes);
	SET("stored_bytes", s->pack_bytes);
	SET("packs", s->packs);
	SET("unindexed_packs", s->unindexed_packs);
	SET("index_files", s->index_files);
	SET("index_bytes", s->index_bytes);
	SET("chunks", s->data_chunks);
	SET("tree_blobs", s->tree_blobs);
	SET("unique_raw_bytes", s->unique_raw_bytes);
	SET("unique_stored_bytes", s->unique_stored_bytes);
	SET("duplicate_blobs", s->duplicate_blobs);
#undef SET
	json_object_set_new(doc, "dedup_ratio", json_real(s->dedup_ratio));
	json_object_set_new(doc, "compression_ratio", json_real(s->compression_ratio));
	json_object_set_new(doc, "total_ratio", json_real(s->total_ratio));
	json_object_set_new(codecs, "none", json_integer((json_int_t) s->codec_chunks[0]));
	json_object_set_new(codecs, "zstd", json_integer((json_int_t) s->codec_chunks[1]));
	json_object_set_new(codecs, "lz4", json_integer((json_int_t) s->codec_chunks[2]));
	json_object_set_new(doc, "chunks_by_codec", codecs);
	return doc;
}
