/*
 * show.c (cli): "pgvault show ID", what a backup holds, for people.  For a
 * logical backup that is what `pg_restore --list` would tell, summarised:
 * the database and its snapshot, schemas, tables with rows and sizes,
 * sequences, materialized views, large objects; for a backup of every
 * database (--all), that for each database plus the globals (roles,
 * tablespaces).  Above that, for every kind, what 'pgvault list' says of it
 * (times, sizes, WAL range, last verify and drill, retention; for a
 * physical backup how far its recovery can reach and the gaps in its
 * source's WAL archive).  --json prints the same as one object.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "pg/logical/archive.h"
#include "pg/logical/logical.h"
#include "ops/catalog_view.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#include <stdio.h>
#include <string.h>

static const char help_text[] =
	"pgvault show: what a backup holds\n\n"
	"Usage:\n  pgvault show ID [OPTIONS]\n\n"
	"ID is a backup id, a unique prefix of one, or 'latest'.  For a logical backup:\n"
	"the database, the instant of its snapshot, every schema, every table with its\n"
	"rows, size and fingerprint, sequences with their values, materialized views\n"
	"and large objects (for a backup made with --all: each database's, and the\n"
	"roles and tablespaces).  For other kinds: the manifest's summary.\n\n"
	"Examples:\n"
	"  pgvault show latest --repo /srv/pgvault\n"
	"  pgvault show 20261122T023900Z-a1b2c3 --json | jq '.tables[] | select(.rows > 1000000)'\n";

typedef struct ShowCtx
{
	json_t *tables, *sequences, *matviews, *schemas, *large_objects;
} ShowCtx;

static int
collect(const json_t *e, void *payload)
{
	ShowCtx *c = payload;
	const char *kind = json_string_value(json_object_get(e, "kind"));
	const char *schema = json_string_value(json_object_get(e, "schema"));

	if (kind == NULL)
		return PV_OK;
	if (schema != NULL)
	{
		bool seen = false;
		size_t i;
		json_t *v;

		json_array_foreach(c->schemas, i, v)
			if (strcmp(json_string_value(v), schema) == 0)
				seen = true;
		if (!seen)
			json_array_append_new(c->schemas, json_string(schema));
	}
	if (strcmp(kind, "table") == 0)
	{
		json_t *t = json_deep_copy(e);

		json_object_del(t, "kind");
		json_object_set_new(t, "parts", json_integer((json_int_t) json_array_size(json_object_get(e, "parts"))));
		json_array_append_new(c->tables, t);
	}
	else if (strcmp(kind, "sequence") == 0)
	{
		json_t *t = json_deep_copy(e);

		json_object_del(t, "kind");
		json_array_append_new(c->sequences, t);
	}
	else if (strcmp(kind, "matview") == 0)
	{
		json_t *t = json_deep_copy(e);

		json_object_del(t, "kind");
		json_array_append_new(c->matviews, t);
	}
	else if (strcmp(kind, "large_objects") == 0)
	{
		json_decref(c->large_objects);
		c->large_objects = json_deep_copy(e);
		json_object_del(c->large_objects, "kind");
	}
	return PV_OK;
}

static json_int_t
jint(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *
jstr(const json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : def;
}

/* The logical part of one database: what the catalog says. */
static void
print_database(const json_t *meta, const json_t *doc)
{
	const json_t *snap = json_object_get(meta, "snapshot");
	char a[32], b[32];
	size_t i;
	json_t *v;

	printf("database   %s (PostgreSQL %s, encoding %s, collate %s, ctype %s, owner %s)\n",
		   jstr(meta, "database", "?"), jstr(meta, "server_version", "?"), jstr(meta, "encoding", "?"),
		   jstr(meta, "collate", "?"), jstr(meta, "ctype", "?"), jstr(meta, "owner", "?"));
	printf("snapshot   %s, LSN %s, txid snapshot %s\n", jstr(snap, "time", "?"), jstr(snap, "lsn", "?"),
		   jstr(snap, "txid_snapshot", "?"));
	if (json_is_true(json_object_get(meta, "schema_only")))
		printf("contents   schema only\n");
	else if (json_is_true(json_object_get(meta, "data_only")))
		printf("contents   data only\n");
	if (json_is_string(json_object_get(meta, "note")))
		printf("note       %s\n", jstr(meta, "note", ""));

	printf("\nschemas (%zu):", json_array_size(json_object_get(doc, "schemas")));
	json_array_foreach(json_object_get(doc, "schemas"), i, v)
		printf("%s %s", i ? "," : "", json_string_value(v));
	printf("\n\ntables (%zu):\n", json_array_size(json_object_get(doc, "tables")));
	printf("  %-40s %12s %10s %10s %5s  %s\n", "table", "rows", "data", "on disk", "parts", "fingerprint");
	json_array_foreach(json_object_get(doc, "tables"), i, v)
	{
		char name[512];
		bool data = json_is_true(json_object_get(v, "data"));

		snprintf(name, sizeof(name), "%s.%s", jstr(v, "schema", "?"), jstr(v, "name", "?"));
		if (data)
			printf("  %-40s %12lld %10s %10s %5lld  %s\n", name, (long long) jint(v, "rows"),
				   pv_size_format(a, sizeof(a), (uint64_t) jint(v, "bytes")),
				   pv_size_format(b, sizeof(b), (uint64_t) jint(v, "size")), (long long) jint(v, "parts"),
				   jstr(v, "fingerprint", ""));
		else
			printf("  %-40s %12s %10s %10s %5s  %s\n", name, "-", "-", "-", "-",
				   strcmp(jstr(v, "relkind", ""), "p") == 0 ? "(partitioned: rows in its partitions)" : "(no data)");
	}
	printf("\nsequences (%zu):\n", json_array_size(json_object_get(doc, "sequences")));
	json_array_foreach(json_object_get(doc, "sequences"), i, v)
		printf("  %s.%s = %s%s\n", jstr(v, "schema", "?"), jstr(v, "name", "?"), jstr(v, "last_value", "?"),
			   json_is_true(json_object_get(v, "is_called")) ? "" : " (not called)");
	if (json_array_size(json_object_get(doc, "matviews")) > 0)
	{
		printf("\nmaterialized views (%zu):\n", json_array_size(json_object_get(doc, "matviews")));
		json_array_foreach(json_object_get(doc, "matviews"), i, v)
			printf("  %s.%s%s\n", jstr(v, "schema", "?"), jstr(v, "name", "?"),
				   json_is_true(json_object_get(v, "populated")) ? "" : " (not populated)");
	}
	{
		const json_t *lo = json_object_get(doc, "large_objects");

		printf("\nlarge objects: %lld (%s)\n", (long long) jint(lo, "count"),
			   pv_size_format(a, sizeof(a), (uint64_t) jint(lo, "bytes")));
	}
}

static void
print_names(const char *label, const json_t *a)
{
	size_t i;
	json_t *v;

	printf("%s (%zu):", label, json_array_size(a));
	json_array_foreach(a, i, v)
		printf("%s %s", i ? "," : "", json_string_value(v));
	printf("\n");
}

static void
print_text(const RepoManifest *m, const json_t *doc, const char *tz)
{
	const json_t *meta = repo_manifest_metadata(m);
	size_t i;
	json_t *v;

	/* the same facts as a row of 'pgvault list': times, sizes, WAL, evidence, retention */
	catalog_view_print_backup(stdout, doc, tz, pv_time_now());
	if (json_is_object(json_object_get(doc, "window")))
	{
		const json_t *w = json_object_get(doc, "window"), *g;
		size_t k;

		json_array_foreach(json_object_get(w, "gaps"), k, g)
			printf("WAL gap    %s..%s missing (timeline %lld)\n", json_string_value(json_object_get(g, "first")),
				   json_string_value(json_object_get(g, "last")),
				   (long long) json_integer_value(json_object_get(g, "timeline")));
	}
	if (strcmp(repo_manifest_kind(m), "logical") != 0)
		return;
	if (!pgarchive_is_all(m))
	{
		print_database(meta, doc);
		return;
	}
	{
		const json_t *g = json_object_get(meta, "globals");

		printf("contents   every database (%zu) and the globals (PostgreSQL %s)\n",
			   json_array_size(json_object_get(doc, "databases")), jstr(meta, "server_version", "?"));
		print_names("roles", json_object_get(g, "roles"));
		print_names("tablespaces", json_object_get(g, "tablespaces"));
		printf("role passwords: %s\n", json_is_true(json_object_get(g, "with_passwords")) ? "kept" : "not kept");
	}
	json_array_foreach(json_object_get(doc, "databases"), i, v)
	{
		printf("\n==== database %s ====\n", jstr(v, "database", "?"));
		print_database(json_object_get(v, "metadata"), v);
	}
}

static void
ctx_init(ShowCtx *c)
{
	c->tables = json_array();
	c->sequences = json_array();
	c->matviews = json_array();
	c->schemas = json_array();
	c->large_objects = json_pack("{s:i, s:i}", "count", 0, "bytes", 0);
}

static void
ctx_clear(ShowCtx *c)
{
	json_decref(c->tables);
	json_decref(c->sequences);
	json_decref(c->matviews);
	json_decref(c->schemas);
	json_decref(c->large_objects);
	memset(c, 0, sizeof(*c));
}

/* Put what the catalog of one database says into obj. */
static int
database_collect(json_t *obj, Repo *repo, const RepoManifest *m, const PgArchiveDb *db)
{
	ShowCtx c;
	int rc;

	ctx_init(&c);
	if ((rc = pglogical_catalog_foreach_item(repo, m, db->catalog_item, collect, &c)) == PV_OK)
	{
		json_object_set(obj, "schemas", c.schemas);
		json_object_set(obj, "tables", c.tables);
		json_object_set(obj, "sequences", c.sequences);
		json_object_set(obj, "matviews", c.matviews);
		json_object_set(obj, "large_objects", c.large_objects);
	}
	ctx_clear(&c);
	return rc;
}

/*
 * Add what list says of the backup (times, WAL, pin, verify, drill,
 * retention; for a physical backup its source's recoverable window as
 * "window") to doc, keeping doc's own keys.  Best effort: a failure is a
 * warning, the backup's contents are still shown.
 */
static void
show_annotate(json_t *doc, Repo *repo, const PvConfig *cfg, const RepoManifest *m)
{
	bool physical = strcmp(repo_manifest_kind(m), "physical") == 0;
	CatalogViewOpts vo = {.filter = {.id = repo_manifest_id(m)}, .windows = physical};
	json_t *view = NULL, *b, *w;

	if (physical)
		vo.filter.source = repo_manifest_source(m);
	if (catalog_view_collect(&view, repo, cfg, &vo, NULL) < 0)
	{
		pv_log_warn("cannot read the backup's records: %s", pv_error_msg());
		pv_error_clear();
		return;
	}
	b = json_array_get(json_object_get(view, "backups"), 0);
	if (json_is_object(b))
	{
		catalog_view_details(b, repo);
		json_object_update_missing(doc, b);
	}
	if (physical && json_is_object(w = json_array_get(json_object_get(view, "windows"), 0)))
		json_object_set(doc, "window", w);
	json_decref(view);
}

int
cli_show(int argc, char **argv)
{
	static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	CliCommon common = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoLock *lock = NULL;
	RepoManifest *m = NULL;
	json_t *doc = NULL;
	const char *spec;
	int opt, rc, status;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		if (!cli_common_option(&common, opt, optarg))
			return cli_bad_option("show", argv, opt);
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if ((rc = cli_backup_arg(&spec, "show", argc, argv)) >= 0)
		return rc;
	if ((rc = cli_setup(&common, &cfg)) < 0 || (rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {.command = "show"})) < 0 ||
		(rc = repo_manifest_load(&m, repo, spec)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	{
		char t1[PV_TIME_FORMAT_MAX], t2[PV_TIME_FORMAT_MAX];

		doc = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:O, s:O, s:I}",
						"id", repo_manifest_id(m), "kind", repo_manifest_kind(m),
						"source", repo_manifest_source(m)[0] ? json_string(repo_manifest_source(m)) : json_null(),
						"host", repo_manifest_host(m),
						"start_time", pv_time_format_utc(t1, sizeof(t1), repo_manifest_start_time(m)),
						"stop_time", pv_time_format_utc(t2, sizeof(t2), repo_manifest_stop_time(m)),
						"metadata", (json_t *) repo_manifest_metadata(m),
						"totals", (json_t *) repo_manifest_totals(m),
						"items", (json_int_t) repo_manifest_item_count(m));
	}
	if (doc == NULL)
	{
		status = cli_fail(pv_error_set(PV_ECORRUPT, "backup '%s' has an unreadable manifest", spec));
		goto done;
	}
	if (strcmp(repo_manifest_kind(m), "logical") == 0)
	{
		PgArchiveDb db;

		if (!pgarchive_is_all(m))
		{
			if ((rc = pgarchive_db(&db, m, NULL)) < 0 || (rc = database_collect(doc, repo, m, &db)) < 0)
			{
				status = cli_fail(rc);
				goto done;
			}
		}
		else
		{
			const json_t *dbs = json_object_get(repo_manifest_metadata(m), "databases");
			json_t *out = json_array();
			size_t i;
			json_t *d;

			json_object_set_new(doc, "databases", out);
			json_array_foreach(dbs, i, d)
			{
				const char *name = json_string_value(json_object_get(d, "database"));
				json_t *o = json_pack("{s:s, s:O}", "database", name ? name : "", "metadata", d);

				json_array_append_new(out, o);
				if ((rc = pgarchive_db(&db, m, name)) < 0 || (rc = database_collect(o, repo, m, &db)) < 0)
				{
					status = cli_fail(rc);
					goto done;
				}
			}
		}
	}
	show_annotate(doc, repo, cfg, m);
	if (common.json)
		pv_json_dump(stdout, doc);
	else
		print_text(m, doc, cfg_str(cfg, NULL, "time-zone"));
	status = 0;
done:
	json_decref(doc);
	repo_manifest_free(m);
	repo_lock_release(lock);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
