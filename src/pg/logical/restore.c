/*
 * restore.c: `pgvault restore` of a logical backup (see logical.h): a whole
 * database, one database of an --all backup (renamed or not), every
 * database of one, selected tables, or the globals only.
 *
 * Steps for one database, in order; the name of the step that failed
 * prefixes the error:
 *   target    pick the database; refuse one in use (unless
 *             --terminate-connections); create it (source's encoding,
 *             locale, owner) when missing
 *   check     a database that is not empty needs --clean (whole database);
 *             selected tables that exist need --clean (or --data-only)
 *   safety backup  before --clean replaces data: a logical backup of what
 *             is about to be replaced (the tables, or the whole database),
 *             into the same repository, unless --no-safety-backup
 *   clean     with --clean: the DROP part of `pg_restore --clean --if-exists`
 *             (but for constraints partitions inherit, which go with their parent's)
 *             (for --data-only: TRUNCATE of the tables to load)
 *   pre-data  pg_restore --section=pre-data from the schema item (a temp file)
 *   data      COPY FROM STDIN of every data item in parallel (costliest
 *             first; COPY binary where copybin.h converts every column),
 *             each part's row count checked against the backup's; a big
 *             table's indexes and constraints right after its rows, the
 *             foreign keys between two such tables once both are done
 *             (early_fks_plan); then each table's ANALYZE
 *             (task_analyze_loaded)
 *   sequences setval of every sequence (a data-only restore never moves one
 *             backwards: rows added since the backup keep their keys free)
 *   large objects
 *   post-data pg_restore --section=post-data -j N
 *   matviews  REFRESH of the materialized views that were populated
 *   analyze   ANALYZE of what the data step did not analyze (unless
 *             --no-analyze)
 *   properties  the database's settings, grants, comment, connection limit
 *             (a database this restore created, or any with --all)
 *   event triggers  made last (whole database), as pg_dump orders them, so
 *             they do not fire on the restore's own DDL (matview refreshes)
 *   flush     the loading sessions commit with synchronous_commit=off; one
 *             commit that waits for the WAL flush makes it all durable
 * With --table every step keeps to the selected tables: a pg_restore -L
 * list (toc.h) names their entries, and the foreign keys of other tables
 * that point at them are dropped and made again around --clean.
 * An extension's configuration table (catalog "extension") is made by
 * CREATE EXTENSION, with the extension's own rows: it is never emptied
 * whole nor loaded with FREEZE, --clean removes only the rows of its
 * "filter" (the kind the backup has), and with --table it must exist.
 *
 * A database created by this restore is dropped again on failure; an
 * existing one is left as the failed step left it, and the error says so.
 */
#include "pg/logical/logical.h"

#include "common/sort.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/mem.h"
#include "common/pool.h"
#include "pg/logical/archive.h"
#include "pg/logical/copybin.h"
#include "pg/logical/globals.h"
#include "pg/logical/toc.h"
#include "pg/logical/util.h"
#include "pg/tools.h"
#include "repo/reader.h"
#include "repo/repo.h"

#include <libpq/libpq-fs.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct RPart
{
	char *item;
	char *qname, *cols;
	uint64_t rows;
	uint64_t bytes;
	uint64_t cost;				/* what orders the loads, largest first: see parts_order */
	int64_t copy_ms;			/* how long the backup's COPY took, or -1 (older backups) */
	size_t table;				/* index in Rst.tables */
	RepoItem *ri;				/* from the item list */
} RPart;

/* A foreign key between two tables with early post-data (early_fks_plan). */
typedef struct EarlyFk
{
	size_t from, to;			/* the referencing and the referenced table (index in Rst.tables) */
	char *list;					/* its pg_restore -L list */
	bool claimed;				/* a worker made it or is making it (under Rst.mu) */
} EarlyFk;

typedef struct RSeq
{
	char *qname, *last_value;
	bool is_called;
} RSeq;

typedef struct Rst
{
	const PgLogicalRestoreOpts *o;
	PgLogicalRestoreResult *res;
	RepoManifest *m;
	PgArchiveDb db;				/* which database of the backup */
	const char *target;			/* the target's name when decided by the caller, or NULL */
	bool all;					/* one database of an --all restore */
	const char *encoding;
	PGconn *maint;
	PGconn *coord;
	char *dbname;
	char *ci;					/* target conninfo with password */
	char *ci_nopw;
	char *password;
	char *schema_file;
	char *list_file;			/* pg_restore -L list (--table), or NULL */
	char *evt_list;				/* pg_restore -L list of the event triggers, made last; or NULL */
	PgTool pg_restore;
	PgCatalog cat;
	bool *sel;					/* --table: the selected catalog tables, else NULL */
	RPart *parts;
	size_t nparts;
	RSeq *seqs;
	size_t nseqs;
	char **matviews;			/* populated ones, qualified */
	size_t nmatviews;
	char **tables;				/* every (selected) table, for ANALYZE */
	size_t ntables;
	char **loaded;				/* the tables rows go into (TRUNCATE, triggers) */
	size_t nloaded;
	char *lo_item;				/* the large-objects item, or NULL */
	char **existing;			/* --table: selected tables that exist in the target (qualified) */
	size_t nexisting;
	bool triggers_disabled;
	bool fresh;					/* the tables were made by this restore: empty, nobody else's */
	atomic_int *parts_left;		/* per table: parts not loaded yet */
	size_t *table_parts;		/* per table: how many parts it has */
	bool *analyzed;				/* per table: ANALYZE ran after its rows were in */
	bool *table_done;			/* per table: rows and early indexes in (under mu, done_cv) */
	bool load_failed;			/* a load failed: nobody waits for table_done (under mu) */
	pthread_cond_t done_cv;
	json_t **entries;			/* per table: its catalog entry (lent by cat) */
	char **early;				/* per table: a pg_restore -L list of its own post-data, or NULL */
	struct EarlyFk *fks;		/* foreign keys made as soon as both their tables are done */
	size_t nfks;
	CopyBinKind **kinds;		/* per table: its columns' kinds when it loads as COPY binary, or NULL */
	size_t *ncols;				/* per table: how many kinds */
	atomic_int binary_parts;	/* data items whose rows went in as COPY binary */
	pthread_mutex_t mu;
	PGconn **idle;
	int nidle;
	PgProgress prog;
} Rst;

static void
strv_add(char ***v, size_t *n, char *s)
{
	*v = pv_realloc(*v, sizeof(char *) * (*n + 1));
	(*v)[(*n)++] = s;
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pv_free(v[i]);
	pv_free(v);
}

static ssize_t
strv_index(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return (ssize_t) i;
	return -1;
}

/* ---- catalog ---- */

/*
 * An extension's configuration table (pg_extension_config_dump): CREATE
 * EXTENSION makes it (with the extension's own rows); the backup holds its
 * rows the extension's condition names ("filter"), or all of them.
 */
static const char *
entry_extension(const json_t *e)
{
	return json_string_value(json_object_get(e, "extension"));
}

/*
 * Remove the rows of configuration table i that the backup holds (those its
 * filter names, leaving the extension's own), before loading them again.
 */
static int
extension_rows_delete(Rst *s, size_t i)
{
	const char *filter = json_string_value(json_object_get(s->entries[i], "filter"));
	char *sql = pv_asprintf("DELETE FROM ONLY %s %s", s->tables[i], filter ? filter : "");
	int rc = pgconn_exec(s->coord, sql);

	pv_free(sql);
	if (rc < 0)
		pv_error_prefix(rc, "%s (a table of extension %s)", s->tables[i], entry_extension(s->entries[i]));
	return rc;
}

static bool
matview_populated(Rst *s, const char *schema, const char *name)
{
	size_t i;
	json_t *e;

	json_array_foreach(s->cat.matviews, i, e)
		if (strcmp(json_string_value(json_object_get(e, "schema")), schema) == 0 &&
			strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
			return json_is_true(json_object_get(e, "populated")) && json_is_true(json_object_get(e, "data"));
	return false;
}

/* What this restore does with the catalog: data parts, sequences, matviews, tables. */
static int
catalog_plan(Rst *s)
{
	size_t i;
	json_t *e;

	json_array_foreach(s->cat.tables, i, e)
	{
		const char *schema = json_string_value(json_object_get(e, "schema"));
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *cols = json_string_value(json_object_get(e, "columns"));
		const json_t *parts = json_object_get(e, "parts");
		size_t k;
		json_t *p;
		int rc;

		if (schema == NULL || name == NULL)
			return pv_error_set(PV_ECORRUPT, "catalog entry of a table without a name");
		if (s->sel != NULL && !s->sel[i])
			continue;
		strv_add(&s->tables, &s->ntables, pglogical_qualify(schema, name));
		s->entries = pv_realloc(s->entries, sizeof(json_t *) * s->ntables);
		s->entries[s->ntables - 1] = e;
		if (!json_is_true(json_object_get(e, "data")))
			continue;
		strv_add(&s->loaded, &s->nloaded, pglogical_qualify(schema, name));
		s->res->tables++;
		json_array_foreach(parts, k, p)
		{
			const char *item;
			uint64_t rows = 0, bytes = 0, ms = 0;

			if ((rc = pv_json_get_str(&item, p, "item")) < 0 || (rc = pv_json_get_uint(&rows, p, "rows")) < 0)
				return rc;
			(void) pv_json_get_uint(&bytes, p, "bytes");
			s->parts = pv_realloc(s->parts, sizeof(RPart) * (s->nparts + 1));
			s->parts[s->nparts++] = (RPart) {.item = pv_strdup(item), .qname = pglogical_qualify(schema, name),
											 .cols = pv_strdup(cols ? cols : ""), .rows = rows, .bytes = bytes,
											 .copy_ms = pv_json_get_uint(&ms, p, "copy_ms") == PV_OK ? (int64_t) ms : -1,
											 .table = s->ntables - 1};
		}
	}
	s->parts_left = pv_calloc(s->ntables + 1, sizeof(atomic_int));
	s->analyzed = pv_calloc(s->ntables + 1, sizeof(bool));
	s->table_done = pv_calloc(s->ntables + 1, sizeof(bool));
	s->table_parts = pv_calloc(s->ntables + 1, sizeof(size_t));
	for (size_t k = 0; k < s->nparts; k++)
	{
		atomic_fetch_add(&s->parts_left[s->parts[k].table], 1);
		s->table_parts[s->parts[k].table]++;
	}
	json_array_foreach(s->cat.sequences, i, e)
	{
		const char *schema, *name, *lv;
		bool called;
		int rc;

		if (s->sel != NULL && !pgcatalog_seq_selected(&s->cat, s->sel, e))
			continue;
		if ((rc = pv_json_get_str(&schema, e, "schema")) < 0 || (rc = pv_json_get_str(&name, e, "name")) < 0 ||
			(rc = pv_json_get_str(&lv, e, "last_value")) < 0 || (rc = pv_json_get_bool(&called, e, "is_called")) < 0)
			return rc;
		s->seqs = pv_realloc(s->seqs, sizeof(RSeq) * (s->nseqs + 1));
		s->seqs[s->nseqs++] = (RSeq) {.qname = pglogical_qualify(schema, name), .last_value = pv_strdup(lv),
									  .is_called = called};
	}
	if (s->sel != NULL)
	{
		/* selected tables: no large objects; materialized views only those --clean makes again */
		if (s->o->clean && !s->o->data_only)
			json_array_foreach(s->cat.tables, i, e)
			{
				size_t k;
				json_t *v;

				if (!s->sel[i])
					continue;
				json_array_foreach(json_object_get(e, "dependents"), k, v)
				{
					const char *kind = json_string_value(json_object_get(v, "kind"));
					const char *schema = json_string_value(json_object_get(v, "schema"));
					const char *name = json_string_value(json_object_get(v, "name"));
					char *q;

					if (kind == NULL || strcmp(kind, "m") != 0 || schema == NULL || name == NULL ||
						!matview_populated(s, schema, name))
						continue;
					q = pglogical_qualify(schema, name);
					if (strv_index(s->matviews, s->nmatviews, q) >= 0)
						pv_free(q);
					else
						strv_add(&s->matviews, &s->nmatviews, q);
				}
			}
		return PV_OK;
	}
	json_array_foreach(s->cat.matviews, i, e)
	{
		const char *schema = json_string_value(json_object_get(e, "schema"));
		const char *name = json_string_value(json_object_get(e, "name"));

		if (schema && name && json_is_true(json_object_get(e, "populated")) && json_is_true(json_object_get(e, "data")))
			strv_add(&s->matviews, &s->nmatviews, pglogical_qualify(schema, name));
	}
	if (s->cat.large_objects != NULL)
	{
		const char *item = json_string_value(json_object_get(s->cat.large_objects, "item"));

		s->lo_item = pv_strdup(item ? item : "large-objects");
	}
	return PV_OK;
}

static int
part_cmp_name(const void *a, const void *b)
{
	return strcmp(((const RPart *) a)->item, ((const RPart *) b)->item);
}

static int
part_cmp_cost(const void *a, const void *b)
{
	const RPart *x = a, *y = b;

	if (x->cost != y->cost)
		return x->cost > y->cost ? -1 : 1;
	return strcmp(x->item, y->item);
}

/*
 * Order the loads largest first, so that the last to start are small and
 * the workers finish together. Largest by bytes is not largest by work:
 * jsonb, numeric and timestamps cost the server far more per byte than
 * integers and text, on the way in as on the way out, so when the backup
 * recorded how long each part's COPY took (copy_ms), that time is the
 * measure; bytes otherwise (older backups).
 */
static void
parts_order(Rst *s)
{
	bool timed = true;

	for (size_t i = 0; i < s->nparts; i++)
		timed = timed && s->parts[i].copy_ms >= 0;
	for (size_t i = 0; i < s->nparts; i++)
		s->parts[i].cost = timed ? (uint64_t) s->parts[i].copy_ms : s->parts[i].bytes;
	pv_qsort(s->parts, s->nparts, sizeof(RPart), part_cmp_cost);
}

static int
parts_attach(Rst *s, Repo *repo)
{
	RepoItemIter *it = NULL;
	const RepoItem *item;
	Buf line = PV_BUF_INIT;
	int rc;

	if (s->nparts > 0)
		pv_qsort(s->parts, s->nparts, sizeof(RPart), part_cmp_name);
	if ((rc = repo_item_iter_new(&it, repo, s->m)) < 0)
		return rc;
	while ((rc = repo_item_iter_next(it, &item)) == PV_OK && item != NULL)
	{
		RPart key = {.item = item->name};
		RPart *p = s->nparts ? pv_bsearch(&key, s->parts, s->nparts, sizeof(RPart), part_cmp_name) : NULL;

		if (p == NULL || p->ri != NULL)
			continue;
		buf_reset(&line);
		repo_item_to_json(item, &line);
		if ((rc = repo_item_parse(&p->ri, (const char *) line.data, line.len - 1)) < 0)
			break;
	}
	repo_item_iter_free(it);
	buf_free(&line);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s->nparts; i++)
		if (s->parts[i].ri == NULL)
			return pv_error_set(PV_ECORRUPT, "backup '%s' lists data item '%s' in its catalog but not in its items",
								repo_manifest_id(s->m), s->parts[i].item);
	parts_order(s);
	return PV_OK;
}

/* ---- connections to the target ---- */

static int
conn_get(Rst *s, PGconn **out)
{
	PGconn *c = NULL;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (s->nidle > 0)
		c = s->idle[--s->nidle];
	pthread_mutex_unlock(&s->mu);
	if (c != NULL)
	{
		*out = c;
		return PV_OK;
	}
	if ((rc = pgconn_connect(&c, &(PgConnOpts) {.conninfo = s->ci, .application_name = "pgvault restore"})) < 0)
		return pv_error_prefix(rc, "worker connection");
	if ((rc = pglogical_session_setup(c, s->encoding)) < 0)
	{
		PQfinish(c);
		return pv_error_prefix(rc, "worker connection");
	}
	*out = c;
	return PV_OK;
}

static void
conn_put(Rst *s, PGconn *c, bool ok)
{
	if (!ok)
	{
		PQfinish(c);
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->idle = pv_realloc(s->idle, sizeof(PGconn *) * (size_t) (s->nidle + 1));
	s->idle[s->nidle++] = c;
	pthread_mutex_unlock(&s->mu);
}

static void
conns_close(Rst *s)
{
	for (int i = 0; i < s->nidle; i++)
		PQfinish(s->idle[i]);
	s->nidle = 0;
	if (s->coord != NULL)
		PQfinish(s->coord);
	s->coord = NULL;
}

static int
copy_error(PGconn *c, PGresult *r, const char *what)
{
	char line[512];
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *ctx = r ? PQresultErrorField(r, PG_DIAG_CONTEXT) : NULL;

	if (msg == NULL)
		msg = pgconn_error_line(c, line, sizeof(line));
	if (ctx != NULL)
		return pv_error_set(PV_EPG, "%s: %s (%.*s)", what, msg, (int) strcspn(ctx, "\n"), ctx);
	return pv_error_set(PV_EPG, "%s: %s", what, msg);
}

/* ---- tasks ---- */

typedef struct PartTask
{
	Rst *s;
	RPart *p;
} PartTask;

/* pg_restore of the schema archive into the target with its own -L list (one job). */
static int
run_pg_restore_list(Rst *s, const char *section, const char *list)
{
	char *dbarg = pv_asprintf("--dbname=%s", s->ci_nopw);
	char *listarg = pv_asprintf("--use-list=%s", list);
	const char *args[10];
	int n = 0, rc;

	args[n++] = section;
	args[n++] = "--exit-on-error";
	args[n++] = listarg;
	args[n++] = dbarg;
	if (s->o->no_owner)
		args[n++] = "--no-owner";
	if (s->o->no_privileges)
		args[n++] = "--no-privileges";
	if (s->o->no_tablespaces)
		args[n++] = "--no-tablespaces";
	args[n] = NULL;
	rc = pgarchive_pg_restore(&s->pg_restore, args, s->schema_file, s->password, NULL);
	pv_free(dbarg);
	pv_free(listarg);
	return rc;
}

/* What one COPY statement's round trip sends per PQputCopyData. */
#define LOAD_READ_SIZE (256 * 1024)

/* Send a block of COPY data (or say why the server stopped taking it). */
static int
copy_put(PGconn *c, const void *data, size_t n)
{
	if (n > 0 && PQputCopyData(c, data, (int) n) != 1)
		return copy_error(c, NULL, "COPY failed");
	return PV_OK;
}

/*
 * One COPY FROM STDIN of part p's rows on c, converted to COPY binary when
 * kinds is not NULL (copybin.h: the server parses less). With freeze the
 * table is emptied in the same transaction so that COPY can FREEZE its
 * rows: pages written all-visible and frozen, so that the index builds,
 * ANALYZE and the first queries do not rewrite every page to set hint
 * bits, and no anti-wraparound VACUUM has to come later.
 *
 * A binary load that fails before its rows are committed (a row the
 * conversion cannot take, or one the server refuses in binary) sets
 * *out_text: the COPY is cancelled and its transaction undone (nothing of
 * the part stays in), c stays usable, and the caller loads the part again
 * as text, whose error, if any, is the one to report.
 */
static int
part_load(Rst *s, RPart *p, PGconn *c, bool freeze, const CopyBinKind *kinds, size_t ncols, bool *out_text)
{
	RepoReader *rd = NULL;
	CopyBin *cb = NULL;
	PGresult *r = NULL;
	char *buf = pv_malloc(LOAD_READ_SIZE);
	Buf sql = PV_BUF_INIT, bin = PV_BUF_INIT;
	uint64_t counted = 0;
	bool in_copy = false, committed = false;
	int rc;

	*out_text = false;
	if ((rc = repo_reader_open(&rd, s->o->repo, s->m, p->ri, NULL)) < 0)
		goto done;
	if (freeze)
	{
		char *q = pv_asprintf("BEGIN; TRUNCATE ONLY %s", p->qname);

		rc = pgconn_exec(c, q);
		pv_free(q);
		if (rc < 0)
			goto done;
	}
	if (kinds != NULL)
		cb = copybin_new(kinds, ncols);
	/* A table without columns has rows too ("COPY t ()" is not valid SQL). */
	buf_printf(&sql, p->cols[0] ? "COPY %s (%s) FROM STDIN" : "COPY %s %s FROM STDIN", p->qname, p->cols);
	if (cb != NULL || freeze)
		buf_printf(&sql, " WITH (%s%s%s)", cb != NULL ? "FORMAT binary" : "", cb != NULL && freeze ? ", " : "",
				   freeze ? "FREEZE" : "");
	r = PQexec(c, buf_cstr(&sql));
	if (PQresultStatus(r) != PGRES_COPY_IN)
	{
		rc = copy_error(c, r, "COPY failed");
		goto done;
	}
	PQclear(r);
	r = NULL;
	in_copy = true;
	for (;;)
	{
		size_t n;

		if ((rc = repo_reader_read(rd, buf, LOAD_READ_SIZE, &n)) < 0)
			goto done;
		if (cb != NULL)
		{
			buf_reset(&bin);
			if ((rc = n > 0 ? copybin_feed(cb, buf, n, &bin) : copybin_finish(cb, &bin)) < 0)
				goto done;
			rc = copy_put(c, bin.data, bin.len);
		}
		else
			rc = copy_put(c, buf, n);
		if (rc < 0)
			goto done;
		if (n == 0)
			break;
		atomic_fetch_add(&s->prog.bytes, n);
		counted += n;
	}
	in_copy = false;
	if (PQputCopyEnd(c, NULL) != 1)
	{
		rc = copy_error(c, NULL, "COPY failed");
		goto done;
	}
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		rc = copy_error(c, r, "COPY failed");
		goto done;
	}
	committed = !freeze;
	if (strtoull(PQcmdTuples(r), NULL, 10) != p->rows)
	{
		rc = pv_error_set(PV_ECORRUPT, "loaded %s rows where the backup has %llu", PQcmdTuples(r),
						  (unsigned long long) p->rows);
		goto done;
	}
	PQclear(r);
	r = PQgetResult(c);
	if (freeze && (rc = pgconn_exec(c, "COMMIT")) < 0)
		goto done;
	rc = PV_OK;
done:
	if (in_copy)
	{
		PGresult *x;

		PQputCopyEnd(c, cb != NULL ? "pgvault: loading this table as COPY text instead" : "restore failed");
		while ((x = PQgetResult(c)) != NULL)
			PQclear(x);
	}
	if (rc < 0 && cb != NULL && !committed && PQstatus(c) == CONNECTION_OK)
	{
		pv_log_detail("%s: loading as COPY text: %s", p->qname, pv_error_msg());
		pv_error_clear();
		atomic_fetch_sub(&s->prog.bytes, counted);
		rc = PQtransactionStatus(c) == PQTRANS_IDLE ? PV_OK : pgconn_exec(c, "ROLLBACK");
		*out_text = rc == PV_OK;
	}
	PQclear(r);
	copybin_free(cb);
	repo_reader_free(rd);
	buf_free(&sql);
	buf_free(&bin);
	pv_free(buf);
	return rc;
}

/* Say that table i is done (or that a load failed): wakes task_analyze_loaded. */
static void
table_done_signal(Rst *s, size_t i, bool failed)
{
	pthread_mutex_lock(&s->mu);
	if (failed)
		s->load_failed = true;
	else
		s->table_done[i] = true;
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);
}

/*
 * The early foreign keys of table i whose other table is done too, each
 * made by the one worker that claims it (the worker that finished the
 * second of its two tables).
 */
static int
early_fks_run(Rst *s, size_t i)
{
	for (size_t k = 0; k < s->nfks; k++)
	{
		EarlyFk *fk = &s->fks[k];
		bool mine = false;
		int64_t t0;
		int rc;

		if (fk->from != i && fk->to != i)
			continue;
		pthread_mutex_lock(&s->mu);
		if (!fk->claimed && s->table_done[fk->from] && s->table_done[fk->to])
			mine = fk->claimed = true;
		pthread_mutex_unlock(&s->mu);
		if (!mine)
			continue;
		t0 = pv_time_monotonic_ms();
		if ((rc = run_pg_restore_list(s, "--section=post-data", fk->list)) < 0)
			return pv_error_prefix(rc, "foreign key of %s to %s", s->tables[fk->from], s->tables[fk->to]);
		pv_log_detail("%s: its foreign key to %s in %.2f s", s->tables[fk->from], s->tables[fk->to],
					  (double) (pv_time_monotonic_ms() - t0) / 1000.0);
	}
	return PV_OK;
}

/*
 * Load one part; the table's last part in: build its indexes, constraints
 * and triggers now, while other tables load (its ANALYZE is a task of its
 * own: see task_analyze_loaded).
 */
static int
task_copy(void *arg)
{
	PartTask *t = arg;
	Rst *s = t->s;
	RPart *p = t->p;
	PGconn *c = NULL;
	const CopyBinKind *kinds = s->kinds != NULL ? s->kinds[p->table] : NULL;
	bool ok = false, text = false;
	bool freeze = s->fresh && s->table_parts[p->table] == 1 && entry_extension(s->entries[p->table]) == NULL;
	int64_t t0 = pv_time_monotonic_ms(), t1;
	int rc;

	if ((rc = conn_get(s, &c)) < 0)
		goto done;
	rc = part_load(s, p, c, freeze, kinds, kinds != NULL ? s->ncols[p->table] : 0, &text);
	if (text)
	{
		kinds = NULL;
		rc = part_load(s, p, c, freeze, NULL, 0, &text);
	}
	if (rc < 0)
		goto done;
	if (kinds != NULL)
		atomic_fetch_add(&s->binary_parts, 1);
	t1 = pv_time_monotonic_ms();
	pv_log_detail("%s: %llu rows loaded in %.2f s%s%s", p->qname, (unsigned long long) p->rows,
				  (double) (t1 - t0) / 1000.0, s->table_parts[p->table] > 1 ? " (one part)" : "",
				  kinds != NULL ? " (COPY binary)" : "");
	if (atomic_fetch_sub(&s->parts_left[p->table], 1) == 1)
	{
		if (s->early != NULL && s->early[p->table] != NULL)
		{
			if ((rc = run_pg_restore_list(s, "--section=post-data", s->early[p->table])) < 0)
				goto done;
			pv_log_detail("%s: its indexes and constraints in %.2f s", p->qname,
						  (double) (pv_time_monotonic_ms() - t1) / 1000.0);
		}
		table_done_signal(s, p->table, false);
		if ((rc = early_fks_run(s, p->table)) < 0)
			goto done;
	}
	atomic_fetch_add(&s->prog.rows, p->rows);
	atomic_fetch_add(&s->prog.items_done, 1);
	atomic_fetch_add(&s->prog.weight_done, p->bytes);
	ok = true;
	rc = PV_OK;
done:
	if (c != NULL)
		conn_put(s, c, ok);
	if (rc < 0)
	{
		table_done_signal(s, p->table, true);
		pv_error_prefix(rc, "%s (item %s)", p->qname, p->item);
	}
	return rc;
}

static int
task_analyze(void *arg)
{
	PartTask *t = arg;
	PGconn *c = NULL;
	char *sql;
	int rc;

	if ((rc = conn_get(t->s, &c)) < 0)
		return rc;
	sql = pv_asprintf("ANALYZE %s", t->p->qname);
	rc = pgconn_exec(c, sql);
	pv_free(sql);
	conn_put(t->s, c, rc == PV_OK);
	if (rc < 0)
		pv_error_prefix(rc, "%s", t->p->qname);
	return rc;
}

/*
 * ANALYZE of a table once its rows and early indexes are in. These tasks
 * are queued after every load, so a worker with no load left analyzes the
 * tables done so far while the others still load: the ANALYZEs fill the
 * idle end of the data step instead of lengthening each load. (After the
 * early indexes, never beside them: ANALYZE and CREATE INDEX lock each
 * other out, and the index build is the one on the critical path.)
 */
static int
task_analyze_loaded(void *arg)
{
	PartTask *t = arg;
	Rst *s = t->s;
	size_t i = t->p->table;
	bool failed;
	int64_t t0;
	int rc;

	pthread_mutex_lock(&s->mu);
	while (!s->table_done[i] && !s->load_failed)
		pthread_cond_wait(&s->done_cv, &s->mu);
	failed = s->load_failed;
	pthread_mutex_unlock(&s->mu);
	if (failed)
		return PV_OK;			/* the load's error is the one to report */
	t0 = pv_time_monotonic_ms();
	if ((rc = task_analyze(arg)) < 0)
		return rc;
	s->analyzed[i] = true;
	pv_log_detail("%s: ANALYZE %.2f s", s->tables[i], (double) (pv_time_monotonic_ms() - t0) / 1000.0);
	return PV_OK;
}

/* ---- steps ---- */

/*
 * The sessions on dbname other than ours: refused naming them ("pid 123
 * (user u, application a, client c)") unless terminate, which ends them.
 * With dry, never ends anything (restore --dry-run); *out_count (may be
 * NULL) gets how many there were.
 */
int
pglogical_target_sessions(PGconn *maint, const char *dbname, bool terminate, bool dry, int *out_count)
{
	const char *params[1] = {dbname};
	PGresult *r = NULL;
	Buf list = PV_BUF_INIT;
	int n, rc;

	if (out_count != NULL)
		*out_count = 0;
	if ((rc = pgconn_query(&r, maint, 4,
						   "SELECT pid::text, coalesce(usename::text, ''), coalesce(application_name, ''),"
						   " coalesce(host(client_addr), 'local') FROM pg_catalog.pg_stat_activity"
						   " WHERE datname OPERATOR(pg_catalog.=) $1 AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
						   " ORDER BY pid", 1, params)) < 0)
		return rc;
	n = PQntuples(r);
	if (out_count != NULL)
		*out_count = n;
	if (n == 0 || (terminate && dry))
	{
		PQclear(r);
		return PV_OK;
	}
	if (!terminate)
	{
		for (int i = 0; i < n; i++)
			buf_printf(&list, "%spid %s (user %s, application '%s', client %s)", i ? ", " : "",
					   PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
		rc = pv_error_set(PV_EREFUSED, "database '%s' is in use by %d other session%s: %s", dbname,
						  n, n == 1 ? "" : "s", buf_cstr(&list));
		pv_error_hint("end them, or add --terminate-connections to have pgvault end them");
		PQclear(r);
		buf_free(&list);
		return rc;
	}
	PQclear(r);
	pv_log_warn("terminating the other sessions on database '%s'", dbname);
	for (int tries = 0; tries < 100; tries++)
	{
		char *v = NULL;

		if ((rc = pgconn_query_value(&v, maint,
									 "SELECT count(pg_catalog.pg_terminate_backend(pid))::text FROM pg_catalog.pg_stat_activity"
									 " WHERE datname OPERATOR(pg_catalog.=) $1 AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()",
									 1, params)) < 0)
			return rc;
		if (v != NULL && strcmp(v, "0") == 0)
		{
			pv_free(v);
			return PV_OK;
		}
		pv_free(v);
		usleep(100 * 1000);
	}
	return pv_error_set(PV_EREFUSED, "sessions on database '%s' did not end after 10s", dbname);
}

/*
 * With create_missing_roles (drills): the roles the backup's objects refer
 * to (metadata "roles") that the target cluster lacks, made NOLOGIN, so
 * that policies, user mappings and grants naming them can be made.
 */
static int
roles_create_missing(Rst *s)
{
	const json_t *roles = json_object_get(s->db.meta, "roles");
	size_t i;
	json_t *v;
	int rc = PV_OK;

	json_array_foreach(roles, i, v)
	{
		const char *p[1] = {json_string_value(v)};
		char *n = NULL;

		if (p[0] == NULL)
			continue;
		if ((rc = pgconn_query_value(&n, s->maint,
									 "SELECT count(*)::text FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
									 1, p)) < 0)
			return rc;
		if (n != NULL && strcmp(n, "0") == 0)
		{
			char *q = pglogical_quote_ident(p[0]);
			char *sql = pv_asprintf("CREATE ROLE %s NOLOGIN", q);

			rc = pgconn_exec(s->maint, sql);
			pv_free(sql);
			pv_free(q);
			if (rc < 0)
			{
				pv_free(n);
				return pv_error_prefix(rc, "creating role '%s'", p[0]);
			}
			pv_log_info("created role '%s' (NOLOGIN): the backup's objects refer to it", p[0]);
		}
		pv_free(n);
	}
	return rc;
}

static int
database_create(Rst *s)
{
	Buf sql = PV_BUF_INIT;
	const char *enc = "UTF8", *coll = NULL, *ctype = NULL, *prov = "c", *icu = NULL, *owner = NULL;
	char *q = pglogical_quote_ident(s->dbname);
	char *lit;
	int rc;

	(void) pv_json_opt_str(&enc, s->db.meta, "encoding", "UTF8");
	(void) pv_json_opt_str(&coll, s->db.meta, "collate", NULL);
	(void) pv_json_opt_str(&ctype, s->db.meta, "ctype", NULL);
	(void) pv_json_opt_str(&prov, s->db.meta, "locale_provider", "c");
	(void) pv_json_opt_str(&icu, s->db.meta, "icu_locale", NULL);
	(void) pv_json_opt_str(&owner, s->db.meta, "owner", NULL);
	buf_printf(&sql, "CREATE DATABASE %s TEMPLATE template0", q);
#define LIT(kw, v) do { lit = PQescapeLiteral(s->maint, (v), strlen(v)); \
		buf_printf(&sql, " " kw " %s", lit ? lit : "''"); PQfreemem(lit); } while (0)
	LIT("ENCODING", enc);
	if (coll)
		LIT("LC_COLLATE", coll);
	if (ctype)
		LIT("LC_CTYPE", ctype);
	if (strcmp(prov, "i") == 0 && PQserverVersion(s->maint) >= 150000)
	{
		buf_append_str(&sql, " LOCALE_PROVIDER icu");
		if (icu)
			LIT("ICU_LOCALE", icu);
	}
#undef LIT
	if (owner != NULL && !s->o->no_owner)
	{
		char *exists = NULL;
		const char *p[1] = {owner};

		if ((rc = pgconn_query_value(&exists, s->maint,
									 "SELECT count(*)::text FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
									 1, p)) < 0)
			goto done;
		if (exists && strcmp(exists, "1") == 0)
		{
			char *qo = pglogical_quote_ident(owner);

			buf_printf(&sql, " OWNER %s", qo);
			pv_free(qo);
		}
		else
			pv_log_warn("role '%s' (the source database's owner) does not exist; the new database is owned by the restoring role",
						owner);
		pv_free(exists);
	}
	if ((rc = pgconn_exec(s->maint, buf_cstr(&sql))) < 0)
		goto done;
	s->res->created = true;
	pv_log_info("created database '%s'", s->dbname);
done:
	pv_free(q);
	buf_free(&sql);
	return rc;
}

/*
 * How many relations the connected database holds outside the system
 * schemas; with refuse, a database holding any is refused as not empty.
 */
int
pglogical_target_relations(PGconn *coord, const char *dbname, bool refuse, long *out_count)
{
	char *n = NULL;
	long count;
	int rc;

	if (out_count != NULL)
		*out_count = 0;
	if ((rc = pgconn_query_value(&n, coord,
								 "SELECT count(*)::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns"
								 " ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace"
								 " WHERE ns.nspname OPERATOR(pg_catalog.!~) '^pg_' AND ns.nspname OPERATOR(pg_catalog.<>) 'information_schema'",
								 0, NULL)) < 0)
		return rc;
	count = n != NULL ? strtol(n, NULL, 10) : 0;
	pv_free(n);
	if (out_count != NULL)
		*out_count = count;
	if (refuse && count > 0)
	{
		rc = pv_error_set(PV_EREFUSED, "database '%s' is not empty (%ld relations)", dbname, count);
		pv_error_hint("restore into a new database (--target-db), or add --clean to replace the backup's objects");
	}
	return rc;
}

/* pg_restore on the schema archive, with -L, --no-owner and --no-privileges as asked. */
static int
run_pg_restore(Rst *s, const char *const *extra, Buf *capture)
{
	const char *args[32];
	char *list = s->list_file ? pv_asprintf("--use-list=%s", s->list_file) : NULL;
	int n = 0, rc;

	for (int i = 0; extra[i] != NULL && n < 24; i++)
		args[n++] = extra[i];
	if (list != NULL)
		args[n++] = list;
	if (s->o->no_owner)
		args[n++] = "--no-owner";
	if (s->o->no_privileges)
		args[n++] = "--no-privileges";
	if (s->o->no_tablespaces)
		args[n++] = "--no-tablespaces";
	args[n] = NULL;
	rc = pgarchive_pg_restore(&s->pg_restore, args, s->schema_file, s->password, capture);
	pv_free(list);
	return rc;
}

/*
 * pg_restore --clean drops the constraints of partitions one by one, and
 * the server refuses to drop one that a partition inherited from its
 * parent ("cannot drop inherited constraint"): pg_restore reports that
 * and goes on, we run the drops as one transaction.  Such a constraint
 * goes with its parent's (or its table) anyway: blank its line.  pg_dump
 * names objects as quote_ident does.
 */
static int
clean_skip_inherited(Rst *s, char *script)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = pgconn_query(&r, s->coord, 1,
						   "SELECT 'ALTER TABLE IF EXISTS ONLY ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(n.nspname)"
						   " OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)"
						   " OPERATOR(pg_catalog.||) ' DROP CONSTRAINT IF EXISTS '"
						   " OPERATOR(pg_catalog.||) pg_catalog.quote_ident(co.conname) OPERATOR(pg_catalog.||) ';'"
						   " FROM pg_catalog.pg_constraint co"
						   " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) co.conrelid"
						   " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
						   " WHERE co.coninhcount OPERATOR(pg_catalog.>) 0 AND NOT co.conislocal", 0, NULL)) < 0)
		return pv_error_prefix(rc, "listing inherited constraints");
	for (int i = 0; i < PQntuples(r); i++)
	{
		const char *stmt = PQgetvalue(r, i, 0);
		size_t len = strlen(stmt);

		for (char *p = strstr(script, stmt); p != NULL; p = strstr(p + len, stmt))
			if ((p == script || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
				memset(p, ' ', len);
	}
	PQclear(r);
	return PV_OK;
}

/*
 * pg_dump writes no DROP for default privileges (ALTER DEFAULT PRIVILEGES),
 * so pg_restore --clean leaves the target's in force, and every object the
 * restore then makes gets their grants on top of the backup's.  A whole
 * database --clean resets them to the built-in defaults first: revoke
 * every grant an entry holds, give the built-in ones back (the owner's
 * all; PUBLIC's EXECUTE on functions and USAGE on types), and the server
 * drops the entry.  Entries of schemas the drops remove go with them.  An
 * entry of a role the restoring one may not act for stays, with a warning
 * (as before: its grants then land on the restored objects too).
 */
static const char clean_default_acls_sql[] =
	"DO $pgvault$ DECLARE r record; g record; pre text; k text; BEGIN"
	" FOR r IN SELECT d.defaclrole, d.defaclnamespace, d.defaclobjtype, d.defaclacl"
	"  FROM pg_catalog.pg_default_acl d LOOP"
	" BEGIN"
	"  k := CASE r.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'"
	"   WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' END;"
	"  CONTINUE WHEN k IS NULL;"
	"  pre := 'ALTER DEFAULT PRIVILEGES FOR ROLE ' OPERATOR(pg_catalog.||)"
	"   pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.defaclrole))"
	"   OPERATOR(pg_catalog.||) CASE WHEN r.defaclnamespace OPERATOR(pg_catalog.=) 0 THEN '' ELSE"
	"   ' IN SCHEMA ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident((SELECT n.nspname FROM pg_catalog.pg_namespace n"
	"    WHERE n.oid OPERATOR(pg_catalog.=) r.defaclnamespace)) END;"
	"  FOR g IN SELECT DISTINCT a.grantee FROM pg_catalog.aclexplode(r.defaclacl) a LOOP"
	"   EXECUTE pre OPERATOR(pg_catalog.||) ' REVOKE ALL ON ' OPERATOR(pg_catalog.||) k OPERATOR(pg_catalog.||) ' FROM '"
	"    OPERATOR(pg_catalog.||) CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'"
	"    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END;"
	"  END LOOP;"
	"  IF r.defaclnamespace OPERATOR(pg_catalog.=) 0 THEN"
	"   EXECUTE pre OPERATOR(pg_catalog.||) ' GRANT ALL ON ' OPERATOR(pg_catalog.||) k OPERATOR(pg_catalog.||) ' TO '"
	"    OPERATOR(pg_catalog.||) pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.defaclrole));"
	"   IF r.defaclobjtype OPERATOR(pg_catalog.=) ANY (ARRAY['f', 'T']::\"char\"[]) THEN"
	"    EXECUTE pre OPERATOR(pg_catalog.||) ' GRANT ALL ON ' OPERATOR(pg_catalog.||) k OPERATOR(pg_catalog.||) ' TO PUBLIC';"
	"   END IF;"
	"  END IF;"
	" EXCEPTION WHEN insufficient_privilege THEN"
	"  RAISE WARNING 'default privileges of role % left as they are: %',"
	"   pg_catalog.pg_get_userbyid(r.defaclrole), SQLERRM;"
	" END;"
	" END LOOP; END $pgvault$";

static int
step_clean(Rst *s)
{
	const char *args[] = {"--clean", "--if-exists", "--file=-", NULL};
	Buf script = PV_BUF_INIT;
	const char *start, *end;
	int rc;

	if ((rc = run_pg_restore(s, args, &script)) < 0)
		goto done;
	/*
	 * pg_restore prints its preamble (SETs), every DROP, and then the
	 * creations, each headed by a "-- Name: ..." comment block.  The first
	 * such block ends the drops.
	 */
	start = buf_cstr(&script);
	end = strstr(start, "\n--\n-- Name: ");
	if (end != NULL)
		script.data[end - start + 1] = '\0';
	/* psql meta-commands (pg_restore 15.14+ writes \restrict KEY) are not SQL: drop those lines. */
	for (char *ln = (char *) script.data; ln != NULL && *ln; ln = strchr(ln, '\n') ? strchr(ln, '\n') + 1 : NULL)
		if (*ln == '\\')
			for (char *p = ln; *p && *p != '\n'; p++)
				*p = ' ';
	if ((rc = clean_skip_inherited(s, (char *) script.data)) < 0 || (rc = pgconn_exec(s->coord, start)) < 0)
		goto done;
	if (s->sel == NULL && !s->o->no_privileges && (rc = pgconn_exec(s->coord, clean_default_acls_sql)) < 0)
	{
		pv_error_prefix(rc, "resetting the default privileges");
		goto done;
	}
	/* The preamble set search_path to ''; keep our session settings. */
	rc = pglogical_session_setup(s->coord, s->encoding);
done:
	buf_free(&script);
	return rc;
}

/*
 * Is every partition of the selected partitioned table entry p (at any
 * depth) one whose rows this restore loads?  Then p can be emptied whole.
 * The catalog must name them all: foreign partitions are not in it (their
 * rows are not in the backup), nor anything in catalogs older than
 * "partitions".
 */
static bool
partitions_all_loaded(const Rst *s, const json_t *p)
{
	const char *ps = json_string_value(json_object_get(p, "schema"));
	const char *pn = json_string_value(json_object_get(p, "name"));
	const json_t *want = json_object_get(p, "partitions");
	json_int_t found = 0;

	if (!json_is_integer(want) || ps == NULL || pn == NULL)
		return false;
	for (size_t i = 0; i < s->ntables; i++)
	{
		const json_t *e = s->entries[i];
		const json_t *of = json_object_get(e, "partition_of");
		const char *os = json_string_value(json_object_get(of, "schema"));
		const char *on = json_string_value(json_object_get(of, "name"));
		const char *kind = json_string_value(json_object_get(e, "relkind"));

		if (os == NULL || on == NULL || strcmp(os, ps) != 0 || strcmp(on, pn) != 0)
			continue;
		if (kind != NULL && strcmp(kind, "p") == 0 ? !partitions_all_loaded(s, e)
			: !json_is_true(json_object_get(e, "data")))
			return false;
		found++;
	}
	/* (the selection of a partitioned table holds its partitions: pgcatalog_select) */
	return found == json_integer_value(want);
}

/*
 * --clean with --data-only: empty the tables the rows go into (each ONLY:
 * an inheritance child not restored keeps its rows; an extension's
 * configuration table loses only the rows the backup has).  The partitioned
 * tables whose partitions are all loaded are named too: a foreign key of
 * (or to) a partitioned table is checked on the parent, and TRUNCATE
 * refuses to empty its partitions alone.
 */
static int
step_truncate(Rst *s)
{
	Buf sql = PV_BUF_INIT;
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < s->ntables; i++)
	{
		const char *kind = json_string_value(json_object_get(s->entries[i], "relkind"));

		if (!json_is_true(json_object_get(s->entries[i], "data")) &&
			!(kind != NULL && strcmp(kind, "p") == 0 && partitions_all_loaded(s, s->entries[i])))
			continue;
		/* an extension's configuration table keeps the rows CREATE EXTENSION made */
		if (entry_extension(s->entries[i]) != NULL)
		{
			if ((rc = extension_rows_delete(s, i)) < 0)
				goto done;
			continue;
		}
		buf_printf(&sql, "%s%s%s", n++ ? ", " : "TRUNCATE ",
				   kind != NULL && strcmp(kind, "p") == 0 ? "" : "ONLY ", s->tables[i]);
	}
	rc = n > 0 ? pgconn_exec(s->coord, buf_cstr(&sql)) : PV_OK;
	if (rc < 0)
		pv_error_hint("a table other tables' foreign keys point at cannot be emptied alone: restore those"
					  " tables too (--table), or empty them yourself first");
done:
	buf_free(&sql);
	return rc;
}

/* --disable-triggers (data only): ALTER TABLE ... DISABLE/ENABLE TRIGGER ALL, as pg_restore does. */
static int
triggers_set(Rst *s, bool enable)
{
	for (size_t i = 0; i < s->nloaded; i++)
	{
		char *sql = pv_asprintf("ALTER TABLE %s %s TRIGGER ALL", s->loaded[i], enable ? "ENABLE" : "DISABLE");
		int rc = pgconn_exec(s->coord, sql);

		pv_free(sql);
		if (rc < 0)
			return pv_error_prefix(rc, "%s", s->loaded[i]);
	}
	s->triggers_disabled = !enable;
	return PV_OK;
}

static int
step_sequences(Rst *s)
{
	for (size_t i = 0; i < s->nseqs; i++)
	{
		const char *p[3] = {s->seqs[i].qname, s->seqs[i].last_value, s->seqs[i].is_called ? "true" : "false"};
		PGresult *r = NULL;
		char *sql;
		int rc;

		if (s->o->data_only)
			/* only forward: the next value stays past every key rows got since the backup */
			sql = pv_asprintf("SELECT CASE WHEN ((CASE WHEN s.is_called THEN s.last_value::numeric OPERATOR(pg_catalog.+) q.seqincrement"
							  " ELSE s.last_value::numeric END) OPERATOR(pg_catalog.*) pg_catalog.sign(q.seqincrement::numeric))"
							  " OPERATOR(pg_catalog.>=) ((CASE WHEN $3::boolean THEN $2::numeric OPERATOR(pg_catalog.+) q.seqincrement"
							  " ELSE $2::numeric END) OPERATOR(pg_catalog.*) pg_catalog.sign(q.seqincrement::numeric))"
							  " THEN NULL ELSE pg_catalog.setval($1::pg_catalog.regclass, $2::bigint, $3::boolean) END"
							  " FROM %s s, pg_catalog.pg_sequence q WHERE q.seqrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
							  s->seqs[i].qname);
		else
			sql = pv_strdup("SELECT pg_catalog.setval($1::pg_catalog.regclass, $2::bigint, $3::boolean)");
		rc = pgconn_query(&r, s->coord, 1, sql, 3, p);
		pv_free(sql);
		if (rc < 0)
			return pv_error_prefix(rc, "sequence %s", s->seqs[i].qname);
		if (PQntuples(r) == 1 && PQgetisnull(r, 0, 0))
			pv_log_detail("sequence %s is already past the backup's value: left as it is", s->seqs[i].qname);
		PQclear(r);
		s->res->sequences++;
	}
	return PV_OK;
}

static int
reader_fill(RepoReader *rd, char *buf, size_t n, size_t *got)
{
	*got = 0;
	while (*got < n)
	{
		size_t k;
		int rc;

		if ((rc = repo_reader_read(rd, buf + *got, n - *got, &k)) < 0)
			return rc;
		if (k == 0)
			break;
		*got += k;
	}
	return PV_OK;
}

static int
step_large_objects(Rst *s)
{
	RepoItem *item = NULL;
	RepoReader *rd = NULL;
	char *buf = pv_malloc(256 * 1024);
	PGconn *c = s->coord;
	int rc;

	if ((rc = repo_manifest_find_item(&item, s->o->repo, s->m, s->lo_item)) < 0 ||
		(rc = repo_reader_open(&rd, s->o->repo, s->m, item, NULL)) < 0)
		goto done;
	for (;;)
	{
		Buf hdr = PV_BUF_INIT;
		size_t got = 0;
		unsigned long oid;
		long long len, left;
		int fd, pos = 0;

		/* "<oid> <length> <json>\n" */
		for (;;)
		{
			char ch;

			if ((rc = reader_fill(rd, &ch, 1, &got)) < 0)
			{
				buf_free(&hdr);
				goto done;
			}
			if (got == 0 || ch == '\n')
				break;
			buf_append_byte(&hdr, (unsigned char) ch);
		}
		if (hdr.len == 0 && got == 0)
		{
			buf_free(&hdr);
			break;
		}
		if (sscanf(buf_cstr(&hdr), "%lu %lld %n", &oid, &len, &pos) != 2 || len < 0)
		{
			rc = pv_error_set(PV_ECORRUPT, "item '%s' of backup '%s' is malformed near '%.60s'",
							  s->lo_item, repo_manifest_id(s->m), buf_cstr(&hdr));
			buf_free(&hdr);
			goto done;
		}
		if ((rc = pgconn_exec(c, "BEGIN")) < 0)
			goto done;
		{
			char sql[160];

			/* An existing one (--clean, --data-only) is replaced whole: contents, owner, grants. */
			snprintf(sql, sizeof(sql),
					 "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata"
					 " WHERE oid OPERATOR(pg_catalog.=) %lu; SELECT pg_catalog.lo_create(%lu)", oid, oid);
			if ((rc = pgconn_exec(c, sql)) < 0)
				goto done;
		}
		if ((fd = lo_open(c, (Oid) oid, INV_WRITE)) < 0)
		{
			rc = copy_error(c, NULL, "opening it");
			goto lo_fail;
		}
		for (left = len; left > 0;)
		{
			size_t want = left < 256 * 1024 ? (size_t) left : 256 * 1024;

			if ((rc = reader_fill(rd, buf, want, &got)) < 0)
				goto lo_fail;
			if (got != want)
			{
				rc = pv_error_set(PV_ECORRUPT, "item '%s' of backup '%s' is truncated", s->lo_item,
								  repo_manifest_id(s->m));
				goto lo_fail;
			}
			if (lo_write(c, fd, buf, got) != (int) got)
			{
				rc = copy_error(c, NULL, "writing it");
				goto lo_fail;
			}
			left -= (long long) got;
			atomic_fetch_add(&s->prog.bytes, got);
		}
		lo_close(c, fd);
		if (pos > 0 && (size_t) pos < hdr.len)
		{
			Buf sql = PV_BUF_INIT;

			rc = pgarchive_lo_meta_sql(&sql, oid, buf_cstr(&hdr) + pos, s->o->no_owner, s->o->no_privileges);
			if (rc == PV_OK && sql.len > 0)
				rc = pgconn_exec(c, buf_cstr(&sql));
			buf_free(&sql);
			if (rc < 0)
				goto lo_fail;
		}
		if ((rc = pgconn_exec(c, "COMMIT")) < 0)
			goto lo_fail;
		buf_free(&hdr);
		s->res->large_objects++;
		continue;
lo_fail:
		pv_error_prefix(rc, "large object %lu", oid);
		(void) PQclear(PQexec(c, "ROLLBACK"));
		buf_free(&hdr);
		goto done;
	}
	rc = PV_OK;
done:
	repo_reader_free(rd);
	repo_item_free(item);
	pv_free(buf);
	return rc;
}

static int
step_matviews(Rst *s)
{
	size_t left = s->nmatviews;
	bool *done = pv_calloc(s->nmatviews + 1, sizeof(bool));
	int rc = PV_OK;

	/* Dependencies among them are unknown here: retry until no progress. */
	while (left > 0)
	{
		size_t before = left;
		PvErrorSave last;

		for (size_t i = 0; i < s->nmatviews; i++)
		{
			char *sql;

			if (done[i])
				continue;
			sql = pv_asprintf("REFRESH MATERIALIZED VIEW %s", s->matviews[i]);
			rc = pgconn_exec(s->coord, sql);
			pv_free(sql);
			if (rc == PV_OK)
			{
				done[i] = true;
				left--;
			}
			else
			{
				pv_error_prefix(rc, "materialized view %s", s->matviews[i]);
				pv_error_save(&last);
			}
		}
		if (left == before)
		{
			rc = pv_error_restore(&last);
			break;
		}
		rc = PV_OK;
	}
	pv_free(done);
	return rc;
}

static int
pool_run(Rst *s, PvPool *pool, PartTask *tasks, size_t n, PvPoolFn fn)
{
	int rc;

	for (size_t i = 0; i < n; i++)
		if ((rc = pv_pool_submit(pool, fn, &tasks[i])) < 0)
			return rc;
	(void) s;
	return pv_pool_wait(pool);
}

/*
 * The data step's tasks: every part's load (in parts_order's order), then,
 * unless --no-analyze, one ANALYZE per loaded table in the order their
 * loads start, each waiting for its table (task_analyze_loaded). tasks has
 * room for nparts + ntables.
 */
static int
data_run(Rst *s, PvPool *pool, PartTask *tasks)
{
	bool *queued = pv_calloc(s->ntables + 1, sizeof(bool));
	size_t n = 0;
	int rc = PV_OK;

	for (size_t i = 0; i < s->nparts && rc == PV_OK; i++)
		rc = pv_pool_submit(pool, task_copy, &tasks[i]);
	for (size_t i = 0; !s->o->no_analyze && i < s->nparts && rc == PV_OK; i++)
	{
		if (queued[s->parts[i].table])
			continue;
		queued[s->parts[i].table] = true;
		tasks[s->nparts + n] = (PartTask) {.s = s, .p = &s->parts[i]};
		rc = pv_pool_submit(pool, task_analyze_loaded, &tasks[s->nparts + n++]);
	}
	pv_free(queued);
	return rc < 0 ? rc : pv_pool_wait(pool);
}

/*
 * The database a restore goes to (target, else --target-db, else -d's
 * database name, else the source's name) and a maintenance connection for
 * creating it: to "postgres" (or template1) unless -d is a whole conninfo.
 */
int
pglogical_target_connect(char **out_dbname, PGconn **out_maint, const PgLogicalRestoreOpts *o,
						 const char *target, const char *source_db)
{
	const char *d = o->conn.dbname;
	bool d_is_conninfo = d != NULL && (strchr(d, '=') != NULL || strstr(d, "://") != NULL);
	PgConnOpts mc = o->conn;
	int rc;

	*out_dbname = NULL;
	*out_maint = NULL;
	if (target != NULL)
		*out_dbname = pv_strdup(target);
	else if (o->target_db != NULL)
		*out_dbname = pv_strdup(o->target_db);
	else if (d != NULL && !d_is_conninfo)
		*out_dbname = pv_strdup(d);
	else if (source_db != NULL)
		*out_dbname = pv_strdup(source_db);
	else
		return pv_error_set(PV_EUSAGE, "no target database: use --target-db");
	if (!d_is_conninfo)
		mc.dbname = "postgres";
	if ((rc = pgconn_connect(out_maint, &mc)) < 0 && !d_is_conninfo)
	{
		mc.dbname = "template1";
		rc = pgconn_connect(out_maint, &mc);
	}
	return rc;
}

static int
target_pick(Rst *s)
{
	const char *src = NULL;

	(void) pv_json_opt_str(&src, s->db.meta, "database", NULL);
	return pglogical_target_connect(&s->dbname, &s->maint, s->o, s->target, src);
}

/*
 * --table selecting an extension's configuration table i: the extension
 * must have made it (the schema has no table of its own to restore), and
 * rows of the backup's kind (those its filter names) already there are
 * replaced only with --clean (or added to with --data-only).
 */
static int
extension_table_check(Rst *s, size_t i, bool exists, bool *out_rows)
{
	const char *ext = entry_extension(s->entries[i]);
	const char *filter = json_string_value(json_object_get(s->entries[i], "filter"));
	char *sql, *rows = NULL;
	int rc;

	if (s->o->schema_only)
		return PV_OK;			/* no rows to load: the extension's business */
	if (!exists)
	{
		rc = pv_error_set(PV_EREFUSED, "table %s belongs to extension %s, which database '%s' does not have",
						  s->tables[i], ext, s->dbname);
		pv_error_hint("run CREATE EXTENSION %s in database '%s' first: it makes the table", ext, s->dbname);
		return rc;
	}
	sql = pv_asprintf("SELECT EXISTS (SELECT 1 FROM ONLY %s %s)::text", s->tables[i], filter ? filter : "");
	rc = pgconn_query_value(&rows, s->coord, sql, 0, NULL);
	pv_free(sql);
	if (rc == PV_OK && rows != NULL && strcmp(rows, "true") == 0)
	{
		*out_rows = true;
		strv_add(&s->existing, &s->nexisting, pv_strdup(s->tables[i]));
		if (!s->o->clean && !s->o->data_only)
		{
			rc = pv_error_set(PV_EREFUSED, "table %s of extension %s already holds rows of the kind the backup has"
							  " in database '%s'", s->tables[i], ext, s->dbname);
			pv_error_hint("add --clean to replace them, or --data-only to load the backup's rows next to them");
		}
	}
	pv_free(rows);
	return rc;
}

/* --table: which selected tables exist in the target, and do they hold rows? */
static int
tables_existing(Rst *s, bool *out_rows)
{
	*out_rows = false;
	for (size_t i = 0; i < s->ntables; i++)
	{
		const char *p[1] = {s->tables[i]};
		char *v = NULL;
		int rc;

		if ((rc = pgconn_query_value(&v, s->coord, "SELECT (pg_catalog.to_regclass($1) IS NOT NULL)::text", 1, p)) < 0)
			return rc;
		if (entry_extension(s->entries[i]) != NULL)
			rc = extension_table_check(s, i, v != NULL && strcmp(v, "true") == 0, out_rows);
		else if (v != NULL && strcmp(v, "true") == 0)
		{
			char *sql = pv_asprintf("SELECT EXISTS (SELECT 1 FROM %s)::text", s->tables[i]);
			char *rows = NULL;

			strv_add(&s->existing, &s->nexisting, pv_strdup(s->tables[i]));
			rc = pgconn_query_value(&rows, s->coord, sql, 0, NULL);
			pv_free(sql);
			if (rc == PV_OK && rows != NULL && strcmp(rows, "true") == 0)
				*out_rows = true;
			pv_free(rows);
		}
		pv_free(v);
		if (rc < 0)
			return rc;
	}
	return PV_OK;
}

/*
 * Before --clean replaces data: a logical backup of what it replaces (the
 * selected tables that exist, or the whole database) into the same
 * repository.  Its id goes into the result.
 */
static int
safety_backup(Rst *s)
{
	const PgLogicalRestoreOpts *o = s->o;
	PgLogicalBackupOpts b = {.conn = {.conninfo = s->ci, .application_name = "pgvault safety backup"},
							 .bindir = o->bindir, .repo = o->repo, .source = o->source, .jobs = o->jobs,
							 .progress = o->progress};
	PgLogicalBackupResult r;
	char *note;
	int rc;

	for (size_t i = 0; i < s->nexisting; i++)
		pgfilter_patterns_add(&b.filter.tables, s->existing[i]);	/* "s"."t": a literal pattern */
	b.filter.strict_names = true;
	note = pv_asprintf("safety backup of database '%s' taken before restoring backup %s into it",
					   s->dbname, repo_manifest_id(s->m));
	b.note = note;
	pv_log_info("taking a safety backup of %s of database '%s' before --clean replaces %s",
				s->sel ? "the tables" : "everything", s->dbname, s->sel ? "them" : "it");
	rc = pglogical_backup(&r, &b);
	pgfilter_clear(&b.filter);
	pv_free(note);
	if (rc < 0)
	{
		pv_error_hint("--no-safety-backup restores without one");
		return rc;
	}
	snprintf(s->res->safety_backup, sizeof(s->res->safety_backup), "%s", r.id);
	pv_log_info("safety backup %s holds database '%s' as it was before this restore (%llu tables, %llu rows)",
				r.id, s->dbname, (unsigned long long) r.tables, (unsigned long long) r.rows);
	return PV_OK;
}

static bool
role_exists(PGconn *c, const char *role)
{
	const char *p[1] = {role};
	char *v = NULL;
	bool ok = pgconn_query_value(&v, c, "SELECT count(*)::text FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
								 1, p) == PV_OK && v != NULL && strcmp(v, "1") == 0;

	pv_free(v);
	pv_error_clear();
	return ok;
}

/* Run one property statement; a failure is a warning (the data is restored already). */
static void
property_exec(Rst *s, const char *sql)
{
	if (pgconn_exec(s->maint, sql) < 0)
	{
		pv_log_warn("database '%s': %s: %s", s->dbname, sql, pv_error_msg());
		pv_error_clear();
	}
}

/* The database's settings, owner (--all), comment, connection limit and grants. */
static int
step_properties(Rst *s)
{
	const json_t *p = json_object_get(s->db.meta, "properties");
	const char *owner = json_string_value(json_object_get(s->db.meta, "owner"));
	const char *comment = json_string_value(json_object_get(p, "comment"));
	const json_t *acl = json_object_get(p, "acl");
	json_int_t limit = json_integer_value(json_object_get(p, "connlimit"));
	char *q = pglogical_quote_ident(s->dbname);
	Buf sql = PV_BUF_INIT;
	size_t i, k;
	json_t *e, *c;

	if (s->all && !s->res->created && owner != NULL && !s->o->no_owner && role_exists(s->maint, owner))
	{
		char *qo = pglogical_quote_ident(owner);

		buf_printf(&sql, "ALTER DATABASE %s OWNER TO %s", q, qo);
		property_exec(s, buf_cstr(&sql));
		pv_free(qo);
	}
	json_array_foreach(json_object_get(p, "settings"), i, e)
	{
		const char *role = json_string_value(json_object_get(e, "role"));

		if (role != NULL && !role_exists(s->maint, role))
		{
			pv_log_warn("database '%s': role '%s' does not exist: its settings in this database are not restored",
						s->dbname, role);
			continue;
		}
		json_array_foreach(json_object_get(e, "config"), k, c)
		{
			if (!json_is_string(c))
				continue;
			buf_reset(&sql);
			if (role != NULL)
			{
				char *qr = pglogical_quote_ident(role);

				buf_printf(&sql, "ALTER ROLE %s IN DATABASE %s ", qr, q);
				pv_free(qr);
			}
			else
				buf_printf(&sql, "ALTER DATABASE %s ", q);
			pgglobals_set_clause(&sql, json_string_value(c));
			property_exec(s, buf_cstr(&sql));
		}
	}
	if (comment != NULL)
	{
		buf_reset(&sql);
		buf_printf(&sql, "COMMENT ON DATABASE %s IS ", q);
		pgarchive_literal(&sql, comment);
		property_exec(s, buf_cstr(&sql));
	}
	if (json_is_integer(json_object_get(p, "connlimit")) && limit != -1)
	{
		buf_reset(&sql);
		buf_printf(&sql, "ALTER DATABASE %s CONNECTION LIMIT %lld", q, (long long) limit);
		property_exec(s, buf_cstr(&sql));
	}
	if (json_is_array(acl) && !s->o->no_privileges)
	{
		buf_reset(&sql);
		buf_printf(&sql, "REVOKE ALL ON DATABASE %s FROM PUBLIC", q);
		property_exec(s, buf_cstr(&sql));
		json_array_foreach(acl, i, e)
		{
			const char *grantee = json_string_value(json_object_get(e, "grantee"));
			const char *priv = json_string_value(json_object_get(e, "privilege"));

			/* grantee is quoted already (or PUBLIC); the privileges of a database are words */
			if (grantee == NULL || priv == NULL || strspn(priv, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(priv))
				continue;
			buf_reset(&sql);
			buf_printf(&sql, "GRANT %s ON DATABASE %s TO %s%s", priv, q, grantee,
					   json_is_true(json_object_get(e, "grantable")) ? " WITH GRANT OPTION" : "");
			property_exec(s, buf_cstr(&sql));
		}
	}
	buf_free(&sql);
	pv_free(q);
	return PV_OK;
}

#define EARLY_MIN_BYTES (256 * 1024)
#define EARLY_MAX_TABLES 64

/*
 * The foreign keys between two tables that both get early post-data (so
 * the referenced one has its key index as soon as its rows are in): each
 * is made as soon as both tables are done (early_fks_run) instead of in
 * the last post-data step, where it would run alone while the other
 * workers idle. Their lines are appended to early (taken out of the
 * final list). Keys from or to partitioned tables are left to post-data:
 * they need every partition's index attached.
 */
static int
early_fks_plan(Rst *s, const char *toc, Buf *early)
{
	for (size_t r = 0; r < s->ntables; r++)
	{
		size_t k;
		json_t *v;

		if (s->early[r] == NULL)
			continue;
		json_array_foreach(json_object_get(s->entries[r], "referenced_by"), k, v)
		{
			PgTocFk fk = {.schema = json_string_value(json_object_get(v, "schema")),
						  .table = json_string_value(json_object_get(v, "table")),
						  .name = json_string_value(json_object_get(v, "name")),
						  .owner = json_string_value(json_object_get(v, "owner"))};
			Buf list = PV_BUF_INIT;
			ssize_t t;
			char *q;
			int rc = PV_OK;

			if (fk.schema == NULL || fk.table == NULL || fk.name == NULL)
				continue;
			q = pglogical_qualify(fk.schema, fk.table);
			t = strv_index(s->tables, s->ntables, q);
			pv_free(q);
			if (t < 0 || (size_t) t == r || s->early[t] == NULL)
				continue;
			if (pgtoc_filter(&list, toc, NULL, 0, &fk, 1) > 0)
			{
				s->fks = pv_realloc(s->fks, sizeof(EarlyFk) * (s->nfks + 1));
				s->fks[s->nfks] = (EarlyFk) {.from = (size_t) t, .to = r};
				if ((rc = pglogical_temp_write(&s->fks[s->nfks].list, &list)) == PV_OK)
				{
					buf_append(early, list.data, list.len);
					s->nfks++;
				}
			}
			buf_free(&list);
			if (rc < 0)
				return rc;
		}
	}
	if (s->nfks > 0)
		pv_log_detail("%zu foreign keys are made as soon as both their tables are done", s->nfks);
	return PV_OK;
}


/*
 * Whole-database restores: the indexes, constraints and triggers of the
 * big tables are built by the worker that loaded the table, as soon as its
 * rows are in, overlapping the other tables' loads (as pg_restore -j
 * does); the rest of post-data (foreign keys, small tables, attachments)
 * follows in one pg_restore -j run with a list that leaves those out.
 * "Big" is a share of the whole (at least 1/(8 jobs) of the rows' bytes),
 * so that few tables qualify whatever their number (each costs a
 * pg_restore process), but a table of an eighth of the data does (on the
 * 150 MB bench dataset with -j2, 1/(4 jobs) left the orders table's two
 * indexes to the final post-data run: the tail after the last row went
 * from 0.5-0.7 s to 0.2-0.35 s with 1/(8 jobs)).
 */
static int
early_post_data_plan(Rst *s)
{
	const char *args[] = {"--list", NULL};
	Buf toc = PV_BUF_INIT, early = PV_BUF_INIT, rest = PV_BUF_INIT;
	uint64_t *bytes = pv_calloc(s->ntables + 1, sizeof(uint64_t));
	size_t chosen = 0;
	uint64_t total = 0, min_bytes;
	int jobs = s->o->jobs > 0 ? s->o->jobs : 2;
	int rc;

	s->early = pv_calloc(s->ntables + 1, sizeof(char *));
	for (size_t i = 0; i < s->nparts; i++)
	{
		bytes[s->parts[i].table] += s->parts[i].bytes;
		total += s->parts[i].bytes;
	}
	min_bytes = total / (uint64_t) (8 * jobs);
	if (min_bytes < EARLY_MIN_BYTES)
		min_bytes = EARLY_MIN_BYTES;
	if ((rc = pgarchive_pg_restore(&s->pg_restore, args, s->schema_file, NULL, &toc)) < 0)
		goto done;
	while (chosen < EARLY_MAX_TABLES)
	{
		size_t best = s->ntables;
		Buf own = PV_BUF_INIT;
		const json_t *e;
		const json_t *idx;
		const char **names;
		size_t nnames = 0, k;
		json_t *v;

		for (size_t i = 0; i < s->ntables; i++)
			if (bytes[i] >= min_bytes && s->early[i] == NULL && (best == s->ntables || bytes[i] > bytes[best]))
				best = i;
		if (best == s->ntables)
			break;
		bytes[best] = 0;		/* considered */
		e = s->entries[best];
		idx = json_object_get(e, "indexes");
		names = pv_calloc(json_array_size(idx) + 1, sizeof(char *));
		json_array_foreach(idx, k, v)
			if (json_is_string(v))
				names[nnames++] = json_string_value(v);
		{
			PgTocTable t = {.schema = json_string_value(json_object_get(e, "schema")),
							.name = json_string_value(json_object_get(e, "name")),
							.owner = json_string_value(json_object_get(e, "owner")),
							.indexes = names, .nindexes = nnames};

			if (t.schema != NULL && t.name != NULL && pgtoc_table_post_data(&own, buf_cstr(&toc), &t) > 0)
			{
				rc = pglogical_temp_write(&s->early[best], &own);
				buf_append(&early, own.data, own.len);
				chosen++;
			}
		}
		pv_free(names);
		buf_free(&own);
		if (rc < 0)
			goto done;
		if (s->early[best] == NULL)
			s->early[best] = pv_strdup("");	/* nothing of its own: mark as considered */
	}
	for (size_t i = 0; i < s->ntables; i++)
		if (s->early[i] != NULL && s->early[i][0] == '\0')
		{
			pv_free(s->early[i]);
			s->early[i] = NULL;
		}
	if (chosen > 0 && (rc = early_fks_plan(s, buf_cstr(&toc), &early)) < 0)
		goto done;
	if (chosen > 0)
	{
		pgtoc_subtract(&rest, buf_cstr(&toc), buf_cstr(&early));
		rc = pglogical_temp_write(&s->list_file, &rest);
		pv_log_detail("indexes and constraints of %zu tables are built as soon as their rows are in", chosen);
	}
done:
	pv_free(bytes);
	buf_free(&toc);
	buf_free(&early);
	buf_free(&rest);
	return rc;
}

/*
 * Take the event triggers out of the post-data list (s->list_file, made
 * here when there is none) into s->evt_list, for step_event_triggers.
 * Made in post-data they would fire on what the restore still does: the
 * REFRESH of materialized views is DDL to them, and a trigger that logs
 * DDL into a table would add rows the backup does not have.
 */
static int
event_triggers_defer(Rst *s)
{
	const char *args[] = {"--list", NULL};
	Buf toc = PV_BUF_INIT, evt = PV_BUF_INIT, rest = PV_BUF_INIT;
	char *old = s->list_file;
	int rc;

	if ((rc = s->list_file ? pv_fs_read_file(s->list_file, &toc)
		 : pgarchive_pg_restore(&s->pg_restore, args, s->schema_file, NULL, &toc)) < 0)
		goto done;
	if (pgtoc_event_triggers(&evt, buf_cstr(&toc)) == 0)
		goto done;
	pgtoc_subtract(&rest, buf_cstr(&toc), buf_cstr(&evt));
	if ((rc = pglogical_temp_write(&s->evt_list, &evt)) < 0 || (rc = pglogical_temp_write(&s->list_file, &rest)) < 0)
	{
		s->list_file = old;
		goto done;
	}
	if (old != NULL)
	{
		unlink(old);
		pv_free(old);
	}
done:
	buf_free(&toc);
	buf_free(&evt);
	buf_free(&rest);
	return rc;
}

/* pg_restore post-data with list file path instead of s->list_file. */
static int
post_data_with(Rst *s, const char *const *args, const char *path)
{
	char *saved = s->list_file;
	int rc;

	s->list_file = (char *) path;
	rc = run_pg_restore(s, args, NULL);
	s->list_file = saved;
	return rc;
}

/*
 * pg_restore --section=post-data -j N (args), but for INDEX ATTACH entries,
 * which pg_restore 15 runs in parallel without lock ordering and which can
 * deadlock each other (toc.h): with any, the rest goes first in parallel,
 * then the attachments one at a time, then the foreign keys (which may need
 * them) in parallel.
 */
static int
step_post_data(Rst *s, const char *const *args)
{
	const char *list_args[] = {"--list", NULL};
	const char *serial[8];
	Buf toc = PV_BUF_INIT, attach = PV_BUF_INIT, after = PV_BUF_INIT, both = PV_BUF_INIT, rest = PV_BUF_INIT;
	char *files[3] = {NULL, NULL, NULL};	/* lists: the rest, the attachments, what comes after */
	size_t nattach;
	int n = 0, rc;

	if ((rc = s->list_file ? pv_fs_read_file(s->list_file, &toc)
		 : pgarchive_pg_restore(&s->pg_restore, list_args, s->schema_file, NULL, &toc)) < 0)
		goto done;
	if ((nattach = pgtoc_index_attach_split(&attach, &after, buf_cstr(&toc))) == 0)
	{
		rc = run_pg_restore(s, args, NULL);
		goto done;
	}
	pv_log_detail("post-data: %zu index attachments one at a time", nattach);
	buf_append(&both, attach.data, attach.len);
	buf_append(&both, after.data, after.len);
	pgtoc_subtract(&rest, buf_cstr(&toc), buf_cstr(&both));
	for (int i = 0; args[i] != NULL && n < 7; i++)
		if (strncmp(args[i], "--jobs=", 7) != 0)
			serial[n++] = args[i];
	serial[n] = NULL;
	if ((rc = pglogical_temp_write(&files[0], &rest)) < 0 || (rc = pglogical_temp_write(&files[1], &attach)) < 0 ||
		(rc = pglogical_temp_write(&files[2], &after)) < 0)
		goto done;
	if ((rc = post_data_with(s, args, files[0])) < 0 || (rc = post_data_with(s, serial, files[1])) < 0)
		goto done;
	rc = post_data_with(s, args, files[2]);
done:
	for (int i = 0; i < 3; i++)
		if (files[i] != NULL)
		{
			unlink(files[i]);
			pv_free(files[i]);
		}
	buf_free(&toc);
	buf_free(&attach);
	buf_free(&after);
	buf_free(&both);
	buf_free(&rest);
	return rc;
}

static int
step_event_triggers(Rst *s)
{
	char *dbarg = pv_asprintf("--dbname=%s", s->ci_nopw);
	const char *args[] = {"--section=post-data", "--exit-on-error", dbarg, NULL};
	int rc = post_data_with(s, args, s->evt_list);

	pv_free(dbarg);
	return rc;
}

/* Tables analyzed before their indexes existed that have expression indexes: analyze them again. */
static int
analyze_again(Rst *s)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = pgconn_query(&r, s->coord, 1,
						   "SELECT DISTINCT '\"' OPERATOR(pg_catalog.||) pg_catalog.replace(n.nspname, '\"', '\"\"')"
						   " OPERATOR(pg_catalog.||) '\".\"' OPERATOR(pg_catalog.||) pg_catalog.replace(c.relname, '\"', '\"\"')"
						   " OPERATOR(pg_catalog.||) '\"' FROM pg_catalog.pg_index i"
						   " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid"
						   " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
						   " WHERE i.indexprs IS NOT NULL", 0, NULL)) < 0)
		return rc;
	for (int k = 0; k < PQntuples(r); k++)
	{
		const char *q = PQgetvalue(r, k, 0);

		for (size_t i = 0; i < s->ntables; i++)
			if (s->analyzed[i] && (s->early == NULL || s->early[i] == NULL) && strcmp(s->tables[i], q) == 0)
				s->analyzed[i] = false;	/* analyzed before its indexes were made */
	}
	PQclear(r);
	return PV_OK;
}

/*
 * The restoring sessions (our workers and the pg_restore runs) commit
 * without waiting for their WAL to reach the disk: synchronous_commit=off
 * in the connection options.  pg_restore commits every statement of the
 * schema on its own, and a fresh table's COPY commits too, so a schema of
 * many objects otherwise waits for one WAL flush each.  Nothing is lost:
 * the last step commits with synchronous_commit on, which flushes the WAL
 * of everything before it (step "flush"), and a restore that did not get
 * there is a failed restore anyway.  Servers (or poolers) that refuse
 * options at connection time get the plain conninfo; the first connection
 * with the options is kept as a worker.
 */
static void
async_commit_setup(Rst *s)
{
	const char *prev = PQoptions(s->coord);
	Buf opt = PV_BUF_INIT, ci = PV_BUF_INIT, ci_nopw = PV_BUF_INIT;
	PGconn *c = NULL;

	buf_printf(&opt, "%s%s-c synchronous_commit=off", prev ? prev : "", prev && prev[0] ? " " : "");
	buf_append_str(&ci, s->ci);
	pglogical_conninfo_append(&ci, "options", buf_cstr(&opt));
	buf_append_str(&ci_nopw, s->ci_nopw);
	pglogical_conninfo_append(&ci_nopw, "options", buf_cstr(&opt));
	if (pgconn_connect(&c, &(PgConnOpts) {.conninfo = buf_cstr(&ci), .application_name = "pgvault restore"}) < 0 ||
		pglogical_session_setup(c, s->encoding) < 0)
	{
		pv_log_detail("the server does not take connection options (%s): commits wait for their WAL flush",
					  pv_error_msg());
		pv_error_clear();
		if (c != NULL)
			PQfinish(c);
		buf_free_secret(&ci);
		buf_free(&ci_nopw);
		buf_free(&opt);
		return;
	}
	conn_put(s, c, true);
	pv_free_secret_str(s->ci);
	pv_free(s->ci_nopw);
	s->ci = buf_detach(&ci);
	s->ci_nopw = buf_detach(&ci_nopw);
	buf_free(&opt);
}

/*
 * Which tables load as COPY binary (copybin.h): those whose columns, as
 * the target has them, are the backup's columns in the backup's order and
 * all of a type whose binary form copybin produces. Only receive
 * functions of pg_catalog count (an extension's type could reuse a name);
 * a domain counts as its base type. One query for every table (a JSON
 * array of their names), not one per table.
 */
static int
binary_plan(Rst *s)
{
	static const char sql[] =
		"SELECT x.ord::pg_catalog.int4,"
		" pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum),"
		" pg_catalog.string_agg(CASE WHEN f.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace"
		"   THEN f.proname::pg_catalog.text ELSE '-' END, ' ' ORDER BY a.attnum),"
		" pg_catalog.count(*)::pg_catalog.int4"
		" FROM pg_catalog.json_array_elements_text($1::pg_catalog.json) WITH ORDINALITY AS x(name, ord)"
		" JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.name::pg_catalog.regclass"
		" JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid"
		" LEFT JOIN pg_catalog.pg_type b ON t.typtype OPERATOR(pg_catalog.=) 'd'"
		"   AND b.oid OPERATOR(pg_catalog.=) t.typbasetype"
		" JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) COALESCE(b.typreceive, t.typreceive)"
		" WHERE a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) ''"
		" GROUP BY x.ord";
	const char **cols = pv_calloc(s->ntables + 1, sizeof(char *));	/* per table: the backup's columns */
	size_t *which = pv_calloc(s->ntables + 1, sizeof(size_t));		/* array position -> table */
	json_t *names = json_array();
	const char *params[1] = {NULL};
	char *arg = NULL;
	PGresult *r = NULL;
	size_t n = 0;
	int rc = PV_OK;

	s->kinds = pv_calloc(s->ntables + 1, sizeof(CopyBinKind *));
	s->ncols = pv_calloc(s->ntables + 1, sizeof(size_t));
	for (size_t i = 0; i < s->nparts; i++)
		if (cols[s->parts[i].table] == NULL && s->parts[i].cols[0] != '\0')
		{
			cols[s->parts[i].table] = s->parts[i].cols;
			which[n++] = s->parts[i].table;
			json_array_append_new(names, json_string(s->tables[s->parts[i].table]));
		}
	if (n == 0)
		goto done;
	params[0] = arg = json_dumps(names, JSON_COMPACT);
	if ((rc = pgconn_query(&r, s->coord, 4, sql, 1, params)) < 0)
		goto done;
	for (int k = 0; k < PQntuples(r); k++)
	{
		long ord = strtol(PQgetvalue(r, k, 0), NULL, 10);
		size_t i = ord >= 1 && (size_t) ord <= n ? which[ord - 1] : s->ntables;
		size_t ncols = (size_t) strtol(PQgetvalue(r, k, 3), NULL, 10);
		char *words, *save = NULL;
		CopyBinKind *kinds;
		size_t got = 0;

		if (i == s->ntables || strcmp(PQgetvalue(r, k, 1), cols[i]) != 0)
			continue;			/* not the backup's columns: text */
		words = pv_strdup(PQgetvalue(r, k, 2));
		kinds = pv_calloc(ncols + 1, sizeof(CopyBinKind));
		for (char *w = strtok_r(words, " ", &save); w != NULL && kinds != NULL; w = strtok_r(NULL, " ", &save))
		{
			int kind = copybin_kind_for_receive(w);

			if (kind < 0 || got == ncols)
			{
				pv_free(kinds);
				kinds = NULL;
			}
			else
				kinds[got++] = (CopyBinKind) kind;
		}
		s->kinds[i] = kinds;
		s->ncols[i] = got;
		pv_free(words);
	}
done:
	PQclear(r);
	free(arg);					/* jansson's, from malloc */
	json_decref(names);
	pv_free(cols);
	pv_free(which);
	return rc;
}

/* Load the catalog, select tables, and decide the plan. */
static int
plan_load(Rst *s)
{
	const PgLogicalRestoreOpts *o = s->o;
	int rc;

	if ((rc = pgcatalog_load(&s->cat, o->repo, s->m, &s->db)) < 0)
		return rc;
	if (o->tables.n > 0 && (rc = pgcatalog_select(&s->sel, &s->cat, &s->db, &o->tables)) < 0)
		return rc;
	return catalog_plan(s);
}

static int
restore_run(Rst *s)
{
	const PgLogicalRestoreOpts *o = s->o;
	int jobs = o->jobs > 0 ? o->jobs : 2;
	const char *params[1];
	char *exists = NULL;
	char jobs_arg[32];
	PvPool *pool = NULL;
	PartTask *tasks = NULL;
	bool schema = !o->data_only && s->db.schema_item[0] != '\0';
	bool data = !o->schema_only;
	bool has_data = false;
	const char *step = "reading the catalog";
	int64_t t = pglogical_now_ms();
	int rc;

#define STEP(name) do { pv_log_detail("%s: %lld ms", step, (long long) (pglogical_now_ms() - t)); \
		t = pglogical_now_ms(); step = (name); } while (0)
	if ((rc = plan_load(s)) < 0)
		goto done;
	if (data && (rc = parts_attach(s, o->repo)) < 0)
		goto done;
	if (schema && (rc = pgtools_find(&s->pg_restore, "pg_restore", o->bindir, 0)) < 0)
		goto done;
	STEP("target");
	if ((rc = target_pick(s)) < 0)
		goto done;
	snprintf(s->res->database, sizeof(s->res->database), "%s", s->dbname);
	if (o->create_missing_roles && (rc = roles_create_missing(s)) < 0)
		goto done;
	params[0] = s->dbname;
	if ((rc = pgconn_query_value(&exists, s->maint,
								 "SELECT count(*)::text FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1",
								 1, params)) < 0)
		goto done;
	if (exists != NULL && strcmp(exists, "1") == 0)
	{
		if ((rc = pglogical_target_sessions(s->maint, s->dbname, s->o->terminate, false, NULL)) < 0)
			goto done;
	}
	else if ((rc = database_create(s)) < 0)
		goto done;
	if ((rc = pglogical_connect_like(&s->coord, s->maint, s->dbname, "pgvault restore")) < 0 ||
		(rc = pglogical_session_setup(s->coord, s->encoding)) < 0)
		goto done;
	s->ci = pglogical_conninfo(s->coord, NULL, true);
	s->ci_nopw = pglogical_conninfo(s->coord, NULL, false);
	async_commit_setup(s);
	if (PQconnectionUsedPassword(s->coord) && PQpass(s->coord) != NULL)
		s->password = pv_strdup(PQpass(s->coord));

	STEP("check");
	if (s->sel != NULL)
	{
		if ((rc = tables_existing(s, &has_data)) < 0)
			goto done;
		if (schema && !o->clean && s->nexisting > 0)
		{
			rc = pv_error_set(PV_EREFUSED, "table %s%s already exist%s in database '%s'", s->existing[0],
							  s->nexisting > 1 ? " (and others)" : "", s->nexisting > 1 ? "" : "s", s->dbname);
			pv_error_hint("add --clean to replace %s, or --data-only to load the rows into %s",
						  s->nexisting > 1 ? "them" : "it", s->nexisting > 1 ? "them" : "it");
			goto done;
		}
	}
	else if (!s->res->created)
	{
		long nrel = 0;

		if ((rc = pglogical_target_relations(s->coord, s->dbname, schema && !o->clean, &nrel)) < 0)
			goto done;
		has_data = nrel > 0;
	}
	if (o->clean && has_data && !s->res->created)
	{
		STEP("safety backup");
		if (!o->no_safety_backup && (rc = safety_backup(s)) < 0)
			goto done;
		if (o->no_safety_backup)
			pv_log_warn("no safety backup (--no-safety-backup): what --clean replaces in database '%s' is gone for good",
						s->dbname);
	}

	if (schema)
	{
		char *dbarg = pv_asprintf("--dbname=%s", s->ci_nopw);
		const char *pre[] = {"--section=pre-data", "--exit-on-error", dbarg, NULL};

		STEP("reading the schema");
		if ((rc = pgarchive_item_to_file(&s->schema_file, o->repo, s->m, s->db.schema_item)) < 0 ||
			(s->sel != NULL &&
			 (rc = pgarchive_toc_list(&s->list_file, NULL, &s->pg_restore, s->schema_file, &s->cat, s->sel, true)) < 0))
		{
			pv_free(dbarg);
			goto done;
		}
		STEP("clean");
		if (o->clean && !s->res->created && (rc = step_clean(s)) < 0)
		{
			pv_free(dbarg);
			goto done;
		}
		/* --table: the extensions' configuration tables are not dropped, only their rows the backup has */
		for (size_t i = 0; o->clean && s->sel != NULL && data && i < s->ntables; i++)
			if (entry_extension(s->entries[i]) != NULL && strv_index(s->existing, s->nexisting, s->tables[i]) >= 0 &&
				(rc = extension_rows_delete(s, i)) < 0)
			{
				pv_free(dbarg);
				goto done;
			}
		STEP("pre-data");
		rc = run_pg_restore(s, pre, NULL);
		pv_free(dbarg);
		if (rc < 0)
			goto done;
		s->fresh = true;
		if (s->sel == NULL && data && (rc = early_post_data_plan(s)) < 0)
			goto done;
		if (s->sel == NULL && (rc = event_triggers_defer(s)) < 0)
			goto done;
	}
	else if (o->clean && data)
	{
		STEP("clean");
		if ((rc = step_truncate(s)) < 0)
			goto done;
	}

	pool = pv_pool_new(jobs, 0);
	if (data)
	{
		if (o->data_only && o->disable_triggers)
		{
			STEP("disabling triggers");
			if ((rc = triggers_set(s, false)) < 0)
				goto done;
		}
		if (!o->text_copy && (rc = binary_plan(s)) < 0)
			goto done;
		STEP("data");
		tasks = pv_calloc(s->nparts + s->ntables + 1, sizeof(PartTask));
		s->prog.items_total = s->nparts;
		for (size_t i = 0; i < s->nparts; i++)
		{
			tasks[i] = (PartTask) {.s = s, .p = &s->parts[i]};
			s->prog.weight_total += s->parts[i].bytes;
		}
		pglogical_progress_start(&s->prog, "restore", o->progress);
		rc = data_run(s, pool, tasks);
		pglogical_progress_stop(&s->prog);
		if (rc < 0)
			goto done;
		s->res->parts = s->nparts;
		s->res->binary_parts = (uint64_t) atomic_load(&s->binary_parts);
		s->res->rows = atomic_load(&s->prog.rows);
		s->res->bytes = atomic_load(&s->prog.bytes);
		STEP("sequences");
		if ((rc = step_sequences(s)) < 0)
			goto done;
		STEP("large objects");
		if (s->lo_item != NULL && (rc = step_large_objects(s)) < 0)
			goto done;
		if (s->triggers_disabled)
		{
			STEP("enabling triggers");
			if ((rc = triggers_set(s, true)) < 0)
				goto done;
		}
	}
	if (schema)
	{
		char *dbarg = pv_asprintf("--dbname=%s", s->ci_nopw);
		const char *post[] = {"--section=post-data", "--exit-on-error", jobs_arg, dbarg, NULL};

		snprintf(jobs_arg, sizeof(jobs_arg), "--jobs=%d", jobs);
		STEP("post-data");
		rc = step_post_data(s, post);
		pv_free(dbarg);
		if (rc < 0)
			goto done;
	}
	if (data)
	{
		STEP("materialized views");
		if ((rc = step_matviews(s)) < 0)
			goto done;
		if (!o->no_analyze)
		{
			PartTask *at = pv_calloc(s->ntables + 1, sizeof(PartTask));
			RPart *ap = pv_calloc(s->ntables + 1, sizeof(RPart));
			size_t n = 0;

			STEP("analyze");
			/* what the data step did not analyze, and tables whose expression indexes need statistics */
			if ((rc = analyze_again(s)) == PV_OK)
			{
				for (size_t i = 0; i < s->ntables; i++)
					if (!s->analyzed[i])
					{
						ap[n].qname = s->tables[i];
						at[n] = (PartTask) {.s = s, .p = &ap[n]};
						n++;
					}
				rc = pool_run(s, pool, at, n, task_analyze);
			}
			pv_free(at);
			pv_free(ap);
			if (rc < 0)
				goto done;
		}
	}
	if (s->sel == NULL && !o->data_only && (s->res->created || s->all))
	{
		STEP("properties");
		if ((rc = step_properties(s)) < 0)
			goto done;
	}
	if (s->evt_list != NULL)
	{
		STEP("event triggers");
		if ((rc = step_event_triggers(s)) < 0)
			goto done;
	}
	STEP("flush");
	/*
	 * The loading sessions commit without waiting for the WAL to reach disk
	 * (synchronous_commit = off): one transaction with an xid here, whose
	 * commit waits for its WAL flush, makes everything before it durable.
	 */
	if ((rc = pgconn_exec(s->coord, "SET synchronous_commit = on; SELECT pg_catalog.txid_current()")) < 0)
		goto done;
	STEP("done");
	rc = PV_OK;
done:
#undef STEP
	pv_pool_free(pool);
	pv_free(tasks);
	pv_free(exists);
	if (rc < 0 && s->triggers_disabled)
	{
		PvErrorSave e;

		pv_error_save(&e);
		(void) triggers_set(s, true);
		pv_error_restore(&e);
	}
	if (rc < 0)
		pv_error_prefix(rc, "%s", step);
	return rc;
}

static void
rst_clear(Rst *s)
{
	conns_close(s);
	if (s->maint != NULL)
		PQfinish(s->maint);
	if (s->schema_file != NULL)
	{
		unlink(s->schema_file);
		pv_free(s->schema_file);
	}
	if (s->evt_list != NULL)
	{
		unlink(s->evt_list);
		pv_free(s->evt_list);
	}
	if (s->list_file != NULL)
	{
		unlink(s->list_file);
		pv_free(s->list_file);
	}
	for (size_t i = 0; i < s->nparts; i++)
	{
		pv_free(s->parts[i].item);
		pv_free(s->parts[i].qname);
		pv_free(s->parts[i].cols);
		repo_item_free(s->parts[i].ri);
	}
	pv_free(s->parts);
	for (size_t i = 0; i < s->nseqs; i++)
	{
		pv_free(s->seqs[i].qname);
		pv_free(s->seqs[i].last_value);
	}
	pv_free(s->seqs);
	strv_free(s->matviews, s->nmatviews);
	strv_free(s->tables, s->ntables);
	strv_free(s->loaded, s->nloaded);
	strv_free(s->existing, s->nexisting);
	pv_free(s->lo_item);
	pv_free(s->sel);
	pv_free(s->parts_left);
	pv_free(s->table_parts);
	pv_free(s->analyzed);
	pv_free(s->table_done);
	pv_free(s->entries);
	for (size_t i = 0; s->early != NULL && i < s->ntables; i++)
		if (s->early[i] != NULL)
		{
			unlink(s->early[i]);
			pv_free(s->early[i]);
		}
	pv_free(s->early);
	for (size_t i = 0; i < s->nfks; i++)
	{
		unlink(s->fks[i].list);
		pv_free(s->fks[i].list);
	}
	pv_free(s->fks);
	for (size_t i = 0; s->kinds != NULL && i < s->ntables; i++)
		pv_free(s->kinds[i]);
	pv_free(s->kinds);
	pv_free(s->ncols);
	pgcatalog_clear(&s->cat);
	pv_free(s->idle);
	pgtools_clear(&s->pg_restore);
	if (s->ci)
		pv_free_secret_str(s->ci);
	pv_free(s->ci_nopw);
	if (s->password)
		pv_free_secret_str(s->password);
	pv_free(s->dbname);
	pthread_cond_destroy(&s->done_cv);
	pthread_mutex_destroy(&s->mu);
}

/* Restore one database of the backup into target (NULL: decided by the options). */
static int
restore_one(const PgLogicalRestoreOpts *o, RepoManifest *m, const PgArchiveDb *db, const char *target, bool all,
			PgLogicalRestoreResult *out)
{
	Rst s = {.o = o, .res = out, .m = m, .db = *db, .target = target, .all = all};
	int64_t t0 = pglogical_now_ms();
	int rc;

	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.done_cv, NULL);
	snprintf(out->id, sizeof(out->id), "%s", repo_manifest_id(m));
	snprintf(out->source_database, sizeof(out->source_database), "%s", db->name);
	if ((rc = pv_json_opt_str(&s.encoding, db->meta, "encoding", "UTF8")) < 0)
		goto done;
	rc = restore_run(&s);
	if (rc < 0 && s.maint != NULL && s.dbname != NULL)
	{
		PvErrorSave e;

		pv_error_save(&e);
		conns_close(&s);
		if (out->created)
		{
			char *q = pglogical_quote_ident(s.dbname);
			char *sql = pv_asprintf("DROP DATABASE IF EXISTS %s%s", q,
									PQserverVersion(s.maint) >= 130000 ? " WITH (FORCE)" : "");

			if (pgconn_exec(s.maint, sql) == PV_OK)
				snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
						 "; database '%s', created by this restore, was dropped again", s.dbname);
			else
				snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
						 "; database '%s' was created by this restore but could not be dropped: %s",
						 s.dbname, pv_error_msg());
			out->created = false;
			pv_free(q);
			pv_free(sql);
		}
		else
			snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
					 "; database '%s' is left as the failed step left it", s.dbname);
		if (out->safety_backup[0])
			snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
					 " (safety backup %s holds it as it was before)", out->safety_backup);
		pv_error_restore(&e);
	}
done:
	{
		PvErrorSave e;

		pv_error_save(&e);
		rst_clear(&s);
		pv_error_restore(&e);
	}
	out->elapsed_ms = pglogical_now_ms() - t0;
	return rc;
}

/* ---- globals ---- */

static bool
strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static int
names_load(PGconn *c, const char *sql, char ***v, size_t *n)
{
	PGresult *r = NULL;
	int rc;

	if ((rc = pgconn_query(&r, c, 1, sql, 0, NULL)) < 0)
		return rc;
	for (int i = 0; i < PQntuples(r); i++)
		strv_add(v, n, pv_strdup(PQgetvalue(r, i, 0)));
	PQclear(r);
	return PV_OK;
}

/*
 * The globals of an --all backup: roles and tablespaces that do not exist
 * are created (with their settings, comments, memberships, grants); those
 * that exist are left alone, and the log says so.
 */
static int
globals_restore(const PgLogicalRestoreOpts *o, RepoManifest *m, PgLogicalRestoreResult *out)
{
	const json_t *g = json_object_get(repo_manifest_metadata(m), "globals");
	const char *item = json_string_value(json_object_get(g, "item"));
	const char *d = o->conn.dbname;
	bool d_is_conninfo = d != NULL && (strchr(d, '=') != NULL || strstr(d, "://") != NULL);
	PgConnOpts mc = o->conn;
	Buf script = PV_BUF_INIT;
	PgGlobalStmt *st = NULL;
	size_t n = 0, nroles = 0, nspc = 0;
	char **roles = NULL, **spcs = NULL;
	PGconn *c = NULL;
	int rc;

	if (item == NULL)
		return pv_error_set(PV_ECORRUPT, "backup '%s' names no globals item", repo_manifest_id(m));
	if ((rc = pglogical_item_read_all(o->repo, m, item, &script)) < 0)
		goto done;
	pgglobals_parse(&st, &n, (const char *) script.data, script.len);
	if (!d_is_conninfo)
		mc.dbname = "postgres";
	if ((rc = pgconn_connect(&c, &mc)) < 0 && !d_is_conninfo)
	{
		mc.dbname = "template1";
		rc = pgconn_connect(&c, &mc);
	}
	if (rc < 0 ||
		(rc = names_load(c, "SELECT rolname FROM pg_catalog.pg_roles", &roles, &nroles)) < 0 ||
		(rc = names_load(c, "SELECT spcname FROM pg_catalog.pg_tablespace", &spcs, &nspc)) < 0)
		goto done;
	for (size_t i = 0; i < n; i++)
	{
		PgGlobalStmt *x = &st[i];
		bool pre = false;

		if (x->kind == PGG_TABLESPACE && o->no_tablespaces)
		{
			if (x->create)
			{
				pv_log_info("tablespace '%s': not created (no tablespaces)", x->object);
				out->tablespaces_skipped++;
			}
			continue;
		}
		if (x->kind == PGG_ROLE || x->kind == PGG_TABLESPACE)
		{
			bool role = x->kind == PGG_ROLE;

			pre = role ? strv_has(roles, nroles, x->object) : strv_has(spcs, nspc, x->object);
			if (pre)
			{
				if (x->create)
				{
					pv_log_info("%s '%s' exists: skipped", role ? "role" : "tablespace", x->object);
					if (role)
						out->roles_skipped++;
					else
						out->tablespaces_skipped++;
				}
				continue;
			}
		}
		else if (x->kind == PGG_MEMBERSHIP && strv_has(roles, nroles, x->object) &&
				 strv_has(roles, nroles, x->member))
			continue;			/* between roles that existed: left alone too */
		if ((rc = pgconn_exec(c, x->sql)) < 0)
		{
			pv_error_prefix(rc, "globals: %.100s%s", x->sql, strlen(x->sql) > 100 ? "..." : "");
			goto done;
		}
		if (x->create)
		{
			pv_log_info("created %s '%s'", x->kind == PGG_ROLE ? "role" : "tablespace", x->object);
			if (x->kind == PGG_ROLE)
				out->roles_created++;
			else
				out->tablespaces_created++;
		}
	}
	rc = PV_OK;
done:
	if (c != NULL)
		PQfinish(c);
	pgglobals_free(st, n);
	strv_free(roles, nroles);
	strv_free(spcs, nspc);
	buf_free(&script);
	return rc;
}

/* ---- the entry point ---- */

static void
result_add(PgLogicalRestoreResult *acc, const PgLogicalRestoreResult *r)
{
	acc->tables += r->tables;
	acc->parts += r->parts;
	acc->binary_parts += r->binary_parts;
	acc->rows += r->rows;
	acc->sequences += r->sequences;
	acc->large_objects += r->large_objects;
	acc->bytes += r->bytes;
}

static int
restore_all(const PgLogicalRestoreOpts *o, RepoManifest *m, PgLogicalRestoreResult *out)
{
	const json_t *dbs = json_object_get(repo_manifest_metadata(m), "databases");
	size_t n = json_array_size(dbs);
	int rc;

	snprintf(out->database, sizeof(out->database), "*");
	if (!o->data_only && (rc = globals_restore(o, m, out)) < 0)
		return rc;
	out->dbs = pv_calloc(n + 1, sizeof(PgLogicalRestoreResult));
	for (size_t i = 0; i < n; i++)
	{
		PgArchiveDb db;
		const char *name = json_string_value(json_object_get(json_array_get(dbs, i), "database"));

		if (name == NULL)
			return pv_error_set(PV_ECORRUPT, "backup '%s' lists a database without a name", repo_manifest_id(m));
		if ((rc = pgarchive_db(&db, m, name)) < 0)
			return rc;
		pv_log_info("restoring database '%s'", name);
		rc = restore_one(o, m, &db, name, true, &out->dbs[i]);
		out->ndbs = i + 1;
		result_add(out, &out->dbs[i]);
		if (rc < 0)
			return pv_error_prefix(rc, "database '%s'", name);
		out->databases++;
	}
	return PV_OK;
}

int
pglogical_restore(PgLogicalRestoreResult *out, const PgLogicalRestoreOpts *o)
{
	RepoManifest *m = NULL;
	int64_t t0 = pglogical_now_ms();
	bool all;
	int rc;

	memset(out, 0, sizeof(*out));
	if (o->schema_only && o->data_only)
		return pv_error_set(PV_EUSAGE, "options --schema-only and --data-only cannot be used together");
	if (o->disable_triggers && !o->data_only)
		return pv_error_set(PV_EUSAGE, "--disable-triggers needs --data-only");
	if ((rc = repo_manifest_load(&m, o->repo, o->backup)) < 0)
		goto done;
	snprintf(out->id, sizeof(out->id), "%s", repo_manifest_id(m));
	if (strcmp(repo_manifest_kind(m), "logical") != 0)
	{
		rc = pv_error_set(PV_EUSAGE, "backup '%s' is a %s backup, not a logical one", out->id, repo_manifest_kind(m));
		goto done;
	}
	all = pgarchive_is_all(m);
	if (o->globals_only)
	{
		if (!all)
		{
			rc = pv_error_set(PV_EUSAGE, "backup '%s' holds no globals: it is a backup of one database", out->id);
			pv_error_hint("globals (roles, tablespaces) are in backups made with 'pgvault backup --logical --all'");
			goto done;
		}
		snprintf(out->database, sizeof(out->database), "*");
		rc = globals_restore(o, m, out);
	}
	else if (all && o->database == NULL)
	{
		if (o->target_db != NULL)
			rc = pv_error_set(PV_EUSAGE, "--target-db renames one database: pick it with --database");
		else if (o->tables.n > 0)
			rc = pv_error_set(PV_EUSAGE, "--table needs --database with a backup of several databases");
		else
			rc = restore_all(o, m, out);
	}
	else
	{
		PgArchiveDb db;

		if ((rc = pgarchive_db(&db, m, o->database)) < 0)
			goto done;
		out->databases = 1;
		rc = restore_one(o, m, &db, all ? (o->target_db ? o->target_db : db.name) : NULL, false, out);
	}
done:
	repo_manifest_free(m);
	out->elapsed_ms = pglogical_now_ms() - t0;
	return rc;
}

void
pglogical_restore_result_clear(PgLogicalRestoreResult *r)
{
	pv_free(r->dbs);
	r->dbs = NULL;
	r->ndbs = 0;
}
