/*
 * stats.h: "pgvault repo stats": what the repository holds and what it
 * costs.
 *
 *   logical bytes      sum of every backup's item sizes (what a restore of
 *                      every backup would write)
 *   unique raw bytes   plaintext of the distinct data chunks
 *   stored bytes       size of the pack files (what the storage bills)
 *   dedup ratio        logical / unique raw
 *   compression ratio  unique raw / stored size of the distinct data chunks
 *   total ratio        logical / stored bytes
 *
 * Read from the index and the manifests' totals only: no pack is read.
 */
#ifndef PV_REPO_STATS_H
#define PV_REPO_STATS_H

#include <jansson.h>
#include <stdint.h>

typedef struct Repo Repo;

typedef struct RepoStats
{
	uint64_t backups;
	uint64_t logical_bytes;
	uint64_t packs;
	uint64_t pack_bytes;		/* stored bytes */
	uint64_t unindexed_packs;	/* in storage, in no index */
	uint64_t index_files;
	uint64_t index_bytes;
	uint64_t data_chunks;		/* distinct data chunks */
	uint64_t tree_blobs;		/* distinct tree blobs */
	uint64_t unique_raw_bytes;	/* plaintext of the distinct data chunks */
	uint64_t unique_stored_bytes;	/* their stored size */
	uint64_t duplicate_blobs;	/* extra copies of blobs (left by interrupted runs) */
	uint64_t codec_chunks[3];	/* distinct data chunks per codec: none, zstd, lz4 */
	double dedup_ratio;			/* 0 when there is nothing to divide */
	double compression_ratio;
	double total_ratio;
} RepoStats;

int repo_stats_compute(Repo *repo, RepoStats *out);
json_t *repo_stats_json(const RepoStats *s);

#endif
