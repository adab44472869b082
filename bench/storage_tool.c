/*
 * storage_tool.c: drive one storage location through the storage API, for
 * end-to-end tests of the drivers (tests/e2e/test_storage_*.py) and for
 * poking at a bucket by hand.  A developer tool: not installed, not in
 * pgvault's help.
 *
 *   storage_tool [-v] [-o KEY=VALUE]... URL VERB [ARGS]
 *
 *   create                        make the location ready (bucket/container)
 *   put KEY [FILE] [--no-overwrite] [--single] [--chunk N]
 *                                 store FILE (default stdin) through the
 *                                 streaming writer in writes of N bytes
 *                                 (default 64 KiB), or with one storage_put
 *   fill KEY SIZE SEED [--no-overwrite]
 *                                 store SIZE deterministic bytes (xorshift of
 *                                 SEED, as tests/e2e regenerate them)
 *   abort KEY SIZE                write SIZE bytes to a writer, then abort it
 *   get KEY [OFFSET LEN]          the object (or a range) to stdout
 *   stat KEY                      "SIZE MTIME"
 *   exists KEY                    "yes" or "no"
 *   list [PREFIX]                 "KEY<TAB>SIZE" lines, sorted
 *   delete KEY
 *   put-many PREFIX N SIZE [JOBS] N objects PREFIX00000.. of SIZE bytes, in
 *                                 JOBS threads (default 8)
 *
 * -o passes a repository setting (s3-endpoint=..., storage-list-page-size=
 * 100); unset ones come from the environment as for pgvault itself.
 * Failures print "storage_tool: PV_EXXX: message" (and a HINT: line) and
 * exit with pgvault's exit status for the code.
 */
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "storage/storage.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL_MAX_OPTS 64

static const char *tool_keys[TOOL_MAX_OPTS];
static const char *tool_values[TOOL_MAX_OPTS];
static int tool_nopts;

static const char *
tool_lookup(const char *key, void *payload)
{
	for (int i = tool_nopts - 1; i >= 0; i--)
		if (strcmp(tool_keys[i], key) == 0)
			return tool_values[i];
	return NULL;
}

static void
tool_usage(void)
{
	fprintf(stderr, "usage: storage_tool [-v] [-o KEY=VALUE]... URL VERB [ARGS]\n"
			"verbs: create, put KEY [FILE] [--no-overwrite] [--single] [--chunk N], fill KEY SIZE SEED "
			"[--no-overwrite], abort KEY SIZE, get KEY [OFFSET LEN], stat KEY, exists KEY, list [PREFIX], "
			"delete KEY, put-many PREFIX N SIZE [JOBS]\n");
	exit(2);
}

/* The same xorshift64* as tests/unit/storage/storage_test.h and tests/e2e. */
static void
tool_fill(unsigned char *p, size_t n, uint64_t *x)
{
	for (size_t i = 0; i < n; i++)
	{
		*x ^= *x >> 12;
		*x ^= *x << 25;
		*x ^= *x >> 27;
		p[i] = (unsigned char) ((*x * 0x2545F4914F6CDD1Dull) >> 56);
	}
}

static int
tool_put(Storage *st, int argc, char **argv)
{
	const char *key = NULL, *file = NULL;
	int flags = 0;
	bool single = false;
	size_t chunk = 64 * 1024;
	FILE *in = stdin;
	Buf data = PV_BUF_INIT;
	StorageWriter *w = NULL;
	unsigned char *buf = NULL;
	int rc = 0;

	for (int i = 0; i < argc; i++)
	{
		if (strcmp(argv[i], "--no-overwrite") == 0)
			flags |= STORAGE_PUT_NO_OVERWRITE;
		else if (strcmp(argv[i], "--single") == 0)
			single = true;
		else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
			chunk = strtoull(argv[++i], NULL, 10);
		else if (key == NULL)
			key = argv[i];
		else if (file == NULL)
			file = argv[i];
		else
			tool_usage();
	}
	if (key == NULL || chunk == 0)
		tool_usage();
	if (file != NULL && strcmp(file, "-") != 0 && (in = fopen(file, "rb")) == NULL)
		return pv_error_errno(PV_EIO, errno, "cannot open '%s'", file);
	buf = pv_malloc(chunk);
	if (single)
	{
		size_t n;

		while ((n = fread(buf, 1, chunk, in)) > 0)
			buf_append(&data, buf, n);
		rc = storage_put(st, key, data.data ? data.data : (unsigned char *) "", data.len, flags);
		goto done;
	}
	if ((rc = storage_writer_open(&w, st, key, flags)) < 0)
		goto done;
	for (;;)
	{
		size_t n = fread(buf, 1, chunk, in);

		if (n == 0)
			break;
		if ((rc = storage_writer_write(w, buf, n)) < 0)
			goto done;
	}
	rc = storage_writer_commit(w);
	w = NULL;

done:
	storage_writer_abort(w);
	if (in != stdin)
		fclose(in);
	pv_free(buf);
	buf_free(&data);
	return rc;
}

/* fill KEY SIZE SEED: deterministic content through the writer, in 1 MiB writes. */
static int
tool_fill_put(Storage *st, const char *key, uint64_t size, uint64_t seed, int flags, bool abort_it)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	size_t bufsz = 1024 * 1024;
	unsigned char *buf = pv_malloc(bufsz);
	StorageWriter *w = NULL;
	int rc;

	if ((rc = storage_writer_open(&w, st, key, flags)) < 0)
		goto done;
	while (size > 0)
	{
		size_t n = size < bufsz ? (size_t) size : bufsz;

		tool_fill(buf, n, &x);
		if ((rc = storage_writer_write(w, buf, n)) < 0)
			goto done;
		size -= n;
	}
	if (!abort_it)
	{
		rc = storage_writer_commit(w);
		w = NULL;
	}

done:
	storage_writer_abort(w);
	pv_free(buf);
	return rc;
}

static int
tool_write_out(const Buf *b)
{
	if (b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len)
		return pv_error_errno(PV_EIO, errno, "cannot write to stdout");
	return 0;
}

typedef struct ToolList
{
	char **lines;
	size_t n;
	size_t cap;
} ToolList;

static int
tool_list_one(const char *key, const StorageInfo *info, void *payload)
{
	ToolList *l = payload;

	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 256;
		l->lines = pv_realloc(l->lines, l->cap * sizeof(*l->lines));
	}
	l->lines[l->n++] = pv_asprintf("%s\t%" PRIu64, key, info->size);
	return 0;
}

static int
tool_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

typedef struct ToolMany
{
	Storage *st;
	const char *prefix;
	long n;
	size_t size;
	long next;					/* next index to write, under lock */
	pthread_mutex_t lock;
	int rc;
	PvErrorSave err;
} ToolMany;

static void *
tool_many_worker(void *arg)
{
	ToolMany *m = arg;
	unsigned char *data = pv_malloc(m->size + 1);

	for (;;)
	{
		long i;
		char key[1100];
		uint64_t x;
		int rc;

		pthread_mutex_lock(&m->lock);
		i = m->rc < 0 ? m->n : m->next++;
		pthread_mutex_unlock(&m->lock);
		if (i >= m->n)
			break;
		snprintf(key, sizeof(key), "%s%05ld", m->prefix, i);
		x = (uint64_t) i + 1;
		tool_fill(data, m->size, &x);
		if ((rc = storage_put(m->st, key, data, m->size, 0)) < 0)
		{
			pthread_mutex_lock(&m->lock);
			if (m->rc == 0)
			{
				m->rc = rc;
				pv_error_save(&m->err);
			}
			pthread_mutex_unlock(&m->lock);
		}
	}
	pv_free(data);
	return NULL;
}

static int
tool_put_many(Storage *st, const char *prefix, long n, size_t size, int jobs)
{
	ToolMany m = {.st = st, .prefix = prefix, .n = n, .size = size};
	pthread_t *t = pv_calloc((size_t) jobs, sizeof(*t));

	pthread_mutex_init(&m.lock, NULL);
	for (int i = 0; i < jobs; i++)
		pthread_create(&t[i], NULL, tool_many_worker, &m);
	for (int i = 0; i < jobs; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&m.lock);
	pv_free(t);
	if (m.rc < 0)
		return pv_error_restore(&m.err);
	return 0;
}

static int
tool_run(Storage *st, const char *verb, int argc, char **argv)
{
	Buf out = PV_BUF_INIT;
	StorageInfo info;
	int rc = 0;

	if (strcmp(verb, "create") == 0)
		rc = storage_create(st);
	else if (strcmp(verb, "put") == 0)
		rc = tool_put(st, argc, argv);
	else if (strcmp(verb, "fill") == 0 && (argc == 3 || argc == 4))
		rc = tool_fill_put(st, argv[0], strtoull(argv[1], NULL, 10), strtoull(argv[2], NULL, 10),
						   argc == 4 && strcmp(argv[3], "--no-overwrite") == 0 ? STORAGE_PUT_NO_OVERWRITE : 0,
						   false);
	else if (strcmp(verb, "abort") == 0 && argc == 2)
		rc = tool_fill_put(st, argv[0], strtoull(argv[1], NULL, 10), 1, 0, true);
	else if (strcmp(verb, "get") == 0 && (argc == 1 || argc == 3))
	{
		if (argc == 1)
			rc = storage_get(st, argv[0], &out);
		else
			rc = storage_get_range(st, argv[0], strtoull(argv[1], NULL, 10), strtoull(argv[2], NULL, 10), &out);
		if (rc == 0)
			rc = tool_write_out(&out);
	}
	else if (strcmp(verb, "stat") == 0 && argc == 1)
	{
		if ((rc = storage_stat(st, argv[0], &info)) == 0)
			printf("%" PRIu64 " %" PRId64 "\n", info.size, info.mtime);
	}
	else if (strcmp(verb, "exists") == 0 && argc == 1)
	{
		bool e = false;

		if ((rc = storage_exists(st, argv[0], &e)) == 0)
			printf("%s\n", e ? "yes" : "no");
	}
	else if (strcmp(verb, "list") == 0 && argc <= 1)
	{
		ToolList l = {0};

		rc = storage_list(st, argc ? argv[0] : "", tool_list_one, &l);
		if (l.n > 1)
			qsort(l.lines, l.n, sizeof(*l.lines), tool_strcmp);
		for (size_t i = 0; i < l.n; i++)
		{
			if (rc == 0)
				printf("%s\n", l.lines[i]);
			pv_free(l.lines[i]);
		}
		pv_free(l.lines);
	}
	else if (strcmp(verb, "delete") == 0 && argc == 1)
		rc = storage_delete(st, argv[0]);
	else if (strcmp(verb, "put-many") == 0 && (argc == 3 || argc == 4))
		rc = tool_put_many(st, argv[0], strtol(argv[1], NULL, 10), strtoull(argv[2], NULL, 10),
						   argc == 4 ? atoi(argv[3]) : 8);
	else
		tool_usage();
	buf_free(&out);
	return rc;
}

int
main(int argc, char **argv)
{
	Storage *st = NULL;
	StorageOpenOpts opts = {.lookup = tool_lookup};
	int i = 1;
	int rc;

	pv_log_set_console_level(PV_LOG_WARN);
	for (; i < argc && argv[i][0] == '-'; i++)
	{
		if (strcmp(argv[i], "-v") == 0)
			pv_log_set_console_level(PV_LOG_DEBUG);
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && strchr(argv[i + 1], '=') != NULL &&
				 tool_nopts < TOOL_MAX_OPTS)
		{
			char *kv = argv[++i];
			char *eq = strchr(kv, '=');

			*eq = '\0';
			tool_keys[tool_nopts] = kv;
			tool_values[tool_nopts++] = eq + 1;
		}
		else
			tool_usage();
	}
	if (argc - i < 2)
		tool_usage();
	if ((rc = storage_open_opts(&st, argv[i], &opts)) == 0)
		rc = tool_run(st, argv[i + 1], argc - i - 2, argv + i + 2);
	storage_free(st);
	fflush(stdout);
	if (rc < 0)
	{
		fprintf(stderr, "storage_tool: %s: %s\n", pv_error_name(rc), pv_error_msg());
		if (pv_error_hint_msg()[0] != '\0')
			fprintf(stderr, "HINT: %s\n", pv_error_hint_msg());
		return pv_error_exit_status(rc);
	}
	return 0;
}
