/*
 * codec_bench.c: throughput of the backup hot path on one file, as JSON.
 *
 *   codec_bench [--threads N] [--compress zstd:3] [--encrypt] [--no-decode]
 *               [--min BYTES --avg BYTES --max BYTES] FILE
 *
 * The file is read into memory once and split into one contiguous segment
 * per thread; each thread runs its segment through the stages a backup
 * does: chunk (FastCDC), id (SHA-256, or HMAC-SHA-256 with --encrypt),
 * compress (repo_blob_encode without keys: the codec choice and raw fallback
 * included), encrypt (AES-256-GCM of that), and, unless --no-decode, decode
 * (repo_blob_decode, the restore path, checked against the original bytes).
 *
 * Each stage is timed on its own inside every thread; the report gives per
 * stage the MB/s of one core (bytes / time spent in the stage) and of all
 * threads together (times the thread count, which assumes the cores are not
 * shared), plus the measured wall-clock MB/s of the whole pipeline.  MB is
 * 10^6 bytes.  Not installed; a developer tool.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/blob.h"
#include "repo/chunker.h"
#include "repo/compress.h"
#include "repo/crypto.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum
{
	STAGE_CHUNK,
	STAGE_ID,
	STAGE_COMPRESS,
	STAGE_ENCRYPT,
	STAGE_DECODE,
	STAGE_COUNT,
};

static const char *const stage_names[STAGE_COUNT] = {"chunk", "id", "compress", "encrypt", "decode"};

typedef struct BenchOpts
{
	const char *path;
	int threads;
	RepoCompress codec;
	int level;
	const char *codec_text;
	bool encrypt;
	bool decode;
	RepoChunkerParams chunker;
} BenchOpts;

typedef struct Worker
{
	const BenchOpts *opts;
	const RepoKeys *keys;
	const unsigned char *data;
	size_t len;
	double seconds[STAGE_COUNT];
	uint64_t chunks;
	uint64_t stored;
	int rc;
	PvErrorSave err;
	pthread_t thread;
} Worker;

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* One chunk through id, compress, encrypt and decode. */
static int
bench_chunk(Worker *w, const unsigned char *chunk, size_t n, Buf *layout, Buf *sealed, Buf *back)
{
	unsigned char id[REPO_ID_LEN];
	double t0 = now_seconds();
	double t1;
	int rc;

	repo_id_compute(id, w->keys, chunk, n);
	t1 = now_seconds();
	w->seconds[STAGE_ID] += t1 - t0;
	buf_reset(layout);
	if ((rc = repo_blob_encode(layout, NULL, w->opts->codec, w->opts->level, NULL, 0, chunk, n)) != PV_OK)
		return rc;
	t0 = now_seconds();
	w->seconds[STAGE_COMPRESS] += t0 - t1;
	w->stored += layout->len;
	if (w->keys != NULL)
	{
		buf_reset(sealed);
		if ((rc = repo_aead_seal(w->keys, id, sizeof(id), layout->data, layout->len, sealed)) != PV_OK)
			return rc;
		t1 = now_seconds();
		w->seconds[STAGE_ENCRYPT] += t1 - t0;
		w->stored += REPO_AEAD_OVERHEAD;
		t0 = t1;
	}
	if (w->opts->decode)
	{
		const Buf *stored = w->keys != NULL ? sealed : layout;

		buf_reset(back);
		if ((rc = repo_blob_decode(back, w->keys, id, sizeof(id), stored->data, stored->len, n)) != PV_OK)
			return rc;
		w->seconds[STAGE_DECODE] += now_seconds() - t0;
		if (back->len != n || memcmp(back->data, chunk, n) != 0)
			return pv_error_set(PV_ECORRUPT, "decoded chunk differs from the original");
	}
	return PV_OK;
}

static void *
bench_worker(void *arg)
{
	Worker *w = arg;
	RepoChunker *c = repo_chunker_new(&w->opts->chunker);
	Buf layout = PV_BUF_INIT;
	Buf sealed = PV_BUF_INIT;
	Buf back = PV_BUF_INIT;
	size_t start = 0;
	int rc = PV_OK;

	while (start < w->len && rc == PV_OK)
	{
		double t0 = now_seconds();
		size_t n = repo_chunker_next(c, w->data + start, w->len - start);

		if (n == 0)
			n = w->len - start;	/* the last chunk */
		repo_chunker_reset(c);
		w->seconds[STAGE_CHUNK] += now_seconds() - t0;
		w->chunks++;
		rc = bench_chunk(w, w->data + start, n, &layout, &sealed, &back);
		start += n;
	}
	w->rc = rc;
	if (rc != PV_OK)
		pv_error_save(&w->err);
	repo_chunker_free(c);
	buf_free(&layout);
	buf_free(&sealed);
	buf_free(&back);
	return NULL;
}

static int
bench_read_file(Buf *out, const char *path)
{
	FILE *f = fopen(path, "rb");
	int rc = PV_OK;

	if (f == NULL)
		return pv_error_errno(PV_ERROR, errno, "cannot open '%s'", path);
	for (;;)
	{
		size_t n;

		buf_reserve(out, 1 << 20);
		n = fread(out->data + out->len, 1, 1 << 20, f);
		out->len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		rc = pv_error_errno(PV_ERROR, errno, "cannot read '%s'", path);
	fclose(f);
	return rc;
}

static json_t *
bench_report(const BenchOpts *o, const Worker *w, size_t total, double wall)
{
	json_t *stages = json_object();
	uint64_t chunks = 0;
	uint64_t stored = 0;

	for (int i = 0; i < o->threads; i++)
	{
		chunks += w[i].chunks;
		stored += w[i].stored;
	}
	for (int s = 0; s < STAGE_COUNT; s++)
	{
		double secs = 0;

		if ((s == STAGE_ENCRYPT && !o->encrypt) || (s == STAGE_DECODE && !o->decode))
			continue;
		for (int i = 0; i < o->threads; i++)
			secs += w[i].seconds[s];
		/* per core: bytes over the summed time all threads spent in the stage */
		json_object_set_new(stages, stage_names[s],
							json_pack("{s:f, s:f, s:f}", "seconds_cpu", secs,
									  "mb_per_s_per_core", secs > 0 ? total / secs / 1e6 : 0.0,
									  "mb_per_s_all_threads",
									  secs > 0 ? total / secs / 1e6 * o->threads : 0.0));
	}
	return json_pack("{s:s, s:I, s:i, s:s, s:b, s:{s:I, s:I, s:I}, s:I, s:I, s:f, s:o, s:f, s:f}",
					 "file", o->path, "bytes", (json_int_t) total, "threads", o->threads,
					 "compress", o->codec_text, "encrypt", o->encrypt,
					 "chunker", "min", (json_int_t) o->chunker.min_size,
					 "avg", (json_int_t) o->chunker.avg_size, "max", (json_int_t) o->chunker.max_size,
					 "chunks", (json_int_t) chunks, "stored_bytes", (json_int_t) stored,
					 "ratio", stored > 0 ? (double) total / (double) stored : 0.0,
					 "stages", stages, "wall_seconds", wall,
					 "pipeline_mb_per_s", wall > 0 ? total / wall / 1e6 : 0.0);
}

static void
bench_usage(FILE *f)
{
	fprintf(f, "usage: codec_bench [--threads N] [--compress zstd|zstd:L|lz4|lz4:L|none] [--encrypt]\n"
			"                   [--no-decode] [--min BYTES] [--avg BYTES] [--max BYTES] FILE\n");
}

static int
bench_parse_args(BenchOpts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"threads", required_argument, NULL, 't'},
		{"compress", required_argument, NULL, 'c'},
		{"encrypt", no_argument, NULL, 'e'},
		{"no-decode", no_argument, NULL, 'D'},
		{"min", required_argument, NULL, 'm'},
		{"avg", required_argument, NULL, 'a'},
		{"max", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	o->threads = (int) sysconf(_SC_NPROCESSORS_ONLN);
	if (o->threads < 1)
		o->threads = 1;
	o->codec_text = "zstd:3";
	o->decode = true;
	repo_chunker_params_default(&o->chunker);
	while ((ch = getopt_long(argc, argv, "t:c:eh", longopts, NULL)) != -1)
	{
		switch (ch)
		{
			case 't':
				o->threads = atoi(optarg);
				if (o->threads < 1 || o->threads > 1024)
					return pv_error_set(PV_EUSAGE, "invalid thread count '%s'", optarg);
				break;
			case 'c':
				o->codec_text = optarg;
				break;
			case 'e':
				o->encrypt = true;
				break;
			case 'D':
				o->decode = false;
				break;
			case 'm':
				o->chunker.min_size = (uint32_t) strtoul(optarg, NULL, 10);
				break;
			case 'a':
				o->chunker.avg_size = (uint32_t) strtoul(optarg, NULL, 10);
				break;
			case 'M':
				o->chunker.max_size = (uint32_t) strtoul(optarg, NULL, 10);
				break;
			case 'h':
				bench_usage(stdout);
				exit(0);
			default:
				return pv_error_set(PV_EUSAGE, "bad option");
		}
	}
	if (optind != argc - 1)
		return pv_error_set(PV_EUSAGE, "expected exactly one FILE");
	o->path = argv[optind];
	if (repo_compress_parse(&o->codec, &o->level, o->codec_text) != PV_OK)
		return PV_EUSAGE;
	return repo_chunker_params_check(&o->chunker);
}

int
main(int argc, char **argv)
{
	BenchOpts o = {0};
	RepoKeys keys;
	Buf data = PV_BUF_INIT;
	Worker *w = NULL;
	json_t *report;
	double t0;
	int rc;

	if ((rc = bench_parse_args(&o, argc, argv)) != PV_OK)
	{
		fprintf(stderr, "codec_bench: %s\n", pv_error_msg());
		bench_usage(stderr);
		return 2;
	}
	if ((rc = bench_read_file(&data, o.path)) != PV_OK)
		goto done;
	repo_keys_generate(&keys);
	if (o.encrypt)
		o.chunker.seed = repo_keys_chunker_seed(&keys);
	w = pv_calloc((size_t) o.threads, sizeof(*w));
	t0 = now_seconds();
	for (int i = 0; i < o.threads; i++)
	{
		size_t from = data.len * (size_t) i / (size_t) o.threads;
		size_t to = data.len * (size_t) (i + 1) / (size_t) o.threads;

		w[i] = (Worker) {.opts = &o, .keys = o.encrypt ? &keys : NULL,
						 .data = data.data + from, .len = to - from};
		if (pthread_create(&w[i].thread, NULL, bench_worker, &w[i]) != 0)
		{
			fprintf(stderr, "codec_bench: cannot start thread\n");
			abort();
		}
	}
	for (int i = 0; i < o.threads; i++)
		pthread_join(w[i].thread, NULL);
	for (int i = 0; i < o.threads && rc == PV_OK; i++)
		if (w[i].rc != PV_OK)
			rc = pv_error_restore(&w[i].err);
	if (rc == PV_OK)
	{
		report = bench_report(&o, w, data.len, now_seconds() - t0);
		json_dumpf(report, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		json_decref(report);
	}
	repo_keys_wipe(&keys);
done:
	if (rc != PV_OK)
		fprintf(stderr, "codec_bench: %s\n", pv_error_msg());
	pv_free(w);
	buf_free(&data);
	return rc == PV_OK ? 0 : 1;
}
