/*
 * restore_logical.c (cli): "pgvault restore ID --target-db NAME", the
 * restore of a logical backup into a database, of every database of an
 * --all backup, of selected tables, or of the globals (src/pg/logical).
 * Reached from cli_restore() when an option only logical restores have
 * (--target-db, --logical, --globals-only, --database, --table, --clean,
 * ...) is on the command line.
 */
#include "cli/cli.h"
#include "cli/logical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "ops/drill.h"
#include "pg/conn.h"
#include "pg/logical/archive.h"
#include "pg/logical/logical.h"
#include "pg/logical/util.h"
#include "repo/lock.h"
#include "repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault restore (logical): restore a logical backup into a database\n\n"
	"Usage:\n  pgvault restore ID --target-db NAME [OPTIONS]\n"
	"  pgvault restore ID --target-db NAME --table PATTERN [--clean | --data-only]\n"
	"  pgvault restore ID --logical                (every database of an --all backup)\n"
	"  pgvault restore ID --globals-only           (roles and tablespaces of one)\n\n"
	"ID is a backup id, a unique prefix of one, or 'latest': the newest logical\n"
	"backup of the database named by --database, else by --target-db or -d (with\n"
	"backups of other databases in the repository too, a new --target-db name\n"
	"needs --database); safety backups never count.  A missing target\n"
	"database is created with the source's encoding, locale, owner and settings;\n"
	"an existing one must be empty unless --clean.  Order: schema (pre-data), rows\n"
	"in parallel, sequences, large objects, indexes and constraints in parallel\n"
	"(post-data), materialized views, ANALYZE.  If anything fails the restore\n"
	"stops and says where; a database it created is dropped again.\n\n"
	"Before --clean replaces data, pgvault backs up what it replaces into the same\n"
	"repository (a safety backup; its id is printed) unless --no-safety-backup.\n\n"
	"Options:\n"
	"  --target-db=NAME         the database to restore into (default: -d's name,\n"
	"                           else the backed-up database's name)\n"
	"  -t, --table=PATTERN      only these tables (pg_dump patterns; repeatable):\n"
	"                           definitions, rows, indexes, constraints, triggers,\n"
	"                           owned sequences, comments, grants\n"
	"  --clean                  drop the backup's objects first (implies IF EXISTS);\n"
	"                           with --data-only: empty the tables first\n"
	"  --no-safety-backup       do not back up what --clean replaces\n"
	"  --disable-triggers       with --data-only: no triggers (nor foreign key\n"
	"                           checks) while loading\n"
	"  --database=NAME          the backed-up database: 'latest' is its newest\n"
	"                           backup; of a backup made with --all: only this\n"
	"                           database (--target-db then renames it)\n"
	"  --globals-only           of a backup made with --all: create the roles and\n"
	"                           tablespaces that do not exist (existing ones are\n"
	"                           left alone, and reported)\n"
	"  --if-exists              accepted for pg_restore compatibility\n"
	"  --terminate-connections  end other sessions on the target database\n"
	"  -O, --no-owner           do not restore ownership\n"
	"  -x, --no-privileges      do not restore grants\n"
	"  -s, --schema-only        definitions only\n"
	"  -a, --data-only          rows, sequences and large objects into existing tables\n"
	"  --no-analyze             skip the final ANALYZE\n"
	"  --text-copy              load rows as COPY text, as the backup stores them\n"
	"                           (default: COPY binary, which the server parses\n"
	"                           faster, for every table whose column types allow)\n"
	"  -j, --jobs=N             parallel connections (default 2, or 'jobs' setting)\n"
	"  --no-progress            no progress line on a terminal\n"
	"  --dry-run                check the target (exists, in use, empty) and print\n"
	"                           the plan and an estimate; change nothing\n\n"
	"Connection options say which server; the maintenance connection (to create\n"
	"or drop the database) goes to the 'postgres' database.\n\n"
	"Examples:\n"
	"  pgvault restore latest --target-db shop_copy -h db2\n"
	"  pgvault restore latest --database shop --target-db shop_test   (test restore)\n"
	"  pgvault restore 20261122T023900Z --target-db shop --clean --terminate-connections\n"
	"  pgvault restore latest --target-db shop_test -j 4 --no-owner --json\n"
	"  pgvault restore latest --target-db shop -t public.orders --data-only\n"
	"  pgvault restore latest --target-db shop -t 'public.order*' --clean\n"
	"  pgvault restore 20261122T023900Z --globals-only -h newhost\n"
	"  pgvault restore 20261122T023900Z --logical -h newhost   (every database)\n"
	"  pgvault restore latest --target-db shop --clean --dry-run --json\n";

enum
{
	OPT_TARGET_DB = CLI_OPT_FIRST_COMMAND + 50,
	OPT_LOGICAL,
	OPT_CLEAN,
	OPT_IF_EXISTS,
	OPT_TERMINATE,
	OPT_NO_ANALYZE,
	OPT_NO_PROGRESS,
	OPT_NO_SAFETY,
	OPT_DISABLE_TRIGGERS,
	OPT_DATABASE,
	OPT_GLOBALS_ONLY,
	OPT_DRY_RUN,
	OPT_TEXT_COPY,
};

bool
cli_restore_logical_wanted(int argc, char **argv)
{
	static const char *const opts[] = {"--logical", "--target-db", "--globals-only", "--database", "--table",
		"--clean", "--data-only", "--schema-only", "--terminate-connections", "--no-safety-backup",
		"--disable-triggers", "--no-analyze", "--text-copy", "--no-owner", "--no-privileges", "-t*", NULL};

	return cli_argv_has(argc, argv, opts, true);
}

static json_t *
result_json(const PgLogicalRestoreResult *r)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
						  "id", r->id, "database", r->database, "source_database", r->source_database,
						  "created", r->created,
						  "safety_backup", r->safety_backup[0] ? json_string(r->safety_backup) : json_null(),
						  "tables", (json_int_t) r->tables, "parts", (json_int_t) r->parts,
						  "binary_parts", (json_int_t) r->binary_parts,
						  "rows", (json_int_t) r->rows, "sequences", (json_int_t) r->sequences,
						  "large_objects", (json_int_t) r->large_objects, "bytes", (json_int_t) r->bytes,
						  "duration_ms", (json_int_t) r->elapsed_ms);

	return j;
}

static void
summary_print(bool json, const PgLogicalRestoreResult *r)
{
	char size[32], took[32];
	bool many = strcmp(r->database, "*") == 0;

	if (json)
	{
		json_t *j = result_json(r);

		if (many)
		{
			json_t *dbs = json_array();

			for (size_t i = 0; i < r->ndbs; i++)
				json_array_append_new(dbs, result_json(&r->dbs[i]));
			json_object_set_new(j, "databases", dbs);
			json_object_set_new(j, "globals", json_pack("{s:I, s:I, s:I, s:I}",
														"roles_created", (json_int_t) r->roles_created,
														"roles_skipped", (json_int_t) r->roles_skipped,
														"tablespaces_created", (json_int_t) r->tablespaces_created,
														"tablespaces_skipped", (json_int_t) r->tablespaces_skipped));
		}
		pv_json_dump(stdout, j);
		json_decref(j);
		return;
	}
	if (many)
	{
		printf("restored the globals of backup %s: %llu roles created, %llu existed; %llu tablespaces created,"
			   " %llu existed\n", r->id, (unsigned long long) r->roles_created, (unsigned long long) r->roles_skipped,
			   (unsigned long long) r->tablespaces_created, (unsigned long long) r->tablespaces_skipped);
		for (size_t i = 0; i < r->ndbs; i++)
			summary_print(false, &r->dbs[i]);
		if (r->ndbs > 0)
			printf("restored %llu databases in %s\n", (unsigned long long) r->databases,
				   pv_elapsed_format(took, sizeof(took), r->elapsed_ms));
		return;
	}
	if (r->safety_backup[0])
		printf("safety backup %s holds database '%s' as it was before this restore\n", r->safety_backup, r->database);
	printf("restored backup %s into %sdatabase '%s': %llu tables (%llu rows, %s), %llu sequences,"
		   " %llu large objects in %s\n", r->id, r->created ? "new " : "", r->database,
		   (unsigned long long) r->tables, (unsigned long long) r->rows,
		   pv_size_format(size, sizeof(size), r->bytes), (unsigned long long) r->sequences,
		   (unsigned long long) r->large_objects, pv_elapsed_format(took, sizeof(took), r->elapsed_ms));
}

/*
 * ---- --dry-run (restore logical plan) ----
 *
 * The plan of a logical restore, and the refusals its first two steps
 * ("target" and "check" in src/pg/logical/restore.c) would give, worded
 * the same, without writing: no database is created, no session ended, no
 * safety backup taken, no repository lock file made.  The checks are the
 * restore's own (pglogical_target_connect, _sessions, _relations in
 * src/pg/logical/restore.c), so both refuse in the same words.  Not done
 * here: with --table,
 * whether the selected tables exist and hold rows (restore.c resolves the
 * selection against the backup's catalog first); the plan says so.
 */

/* Append the suffix restore_one() adds to an error on an existing database. */
static int
plan_fail(int rc, const char *step, const char *dbname)
{
	PvErrorSave e;

	pv_error_prefix(rc, "%s", step);
	pv_error_save(&e);
	snprintf(e.msg + strlen(e.msg), sizeof(e.msg) - strlen(e.msg),
			 "; database '%s' is left as the failed step left it", dbname);
	return pv_error_restore(&e);
}

/* One database: where it would go and what the restore would find there. */
static int
plan_db(json_t *dbs, const PgLogicalRestoreOpts *o, const PgArchiveDb *db, const char *target)
{
	bool schema = !o->data_only && db->schema_item[0] != '\0';
	const char *src = NULL;
	char *dbname = NULL, *exists = NULL;
	PGconn *maint = NULL, *coord = NULL;
	const char *step = "target";
	bool there;
	long nrel = 0;
	int sessions = 0, rc;

	(void) pv_json_opt_str(&src, db->meta, "database", NULL);
	if ((rc = pglogical_target_connect(&dbname, &maint, o, target, src)) < 0)
	{
		rc = dbname == NULL ? pv_error_prefix(rc, "target") : plan_fail(rc, step, dbname);
		goto done;
	}
	if ((rc = pgconn_query_value(&exists, maint, "SELECT count(*)::text FROM pg_catalog.pg_database"
								 " WHERE datname OPERATOR(pg_catalog.=) $1", 1,
								 (const char *const *) &dbname)) < 0)
		goto fail;
	there = exists != NULL && strcmp(exists, "1") == 0;
	if (there)
	{
		if ((rc = pglogical_target_sessions(maint, dbname, o->terminate, true, &sessions)) < 0 ||
			(rc = pglogical_connect_like(&coord, maint, dbname, "pgvault restore")) < 0)
			goto fail;
		step = "check";
		if ((rc = pglogical_target_relations(coord, dbname, o->tables.n == 0 && schema && !o->clean,
											 &nrel)) < 0)
			goto fail;
	}
	{
		/* with --table, whether the selected tables hold rows is known only at restore time */
		bool safety = o->clean && there && nrel > 0 && !o->no_safety_backup;

		json_array_append_new(dbs, json_pack("{s:s, s:s?, s:b, s:I, s:i, s:b, s:s, s:s?}",
											 "database", dbname, "source_database", db->name,
											 "exists", there, "relations", (json_int_t) nrel,
											 "other_sessions", sessions,
											 "terminate_sessions", o->terminate && sessions > 0,
											 "action", !there ? "create the database"
											 : o->clean ? "drop the backup's objects, then restore"
											 : o->data_only ? "load rows into the existing tables"
											 : "restore into the empty database",
											 "safety_backup", !safety ? NULL : o->tables.n == 0
											 ? "of the whole database" : "of the selected tables, if "
											 "they exist and hold rows (known when the restore runs)"));
	}
	goto done;
fail:
	rc = plan_fail(rc, step, dbname);
done:
	if (coord != NULL)
		PQfinish(coord);
	if (maint != NULL)
		PQfinish(maint);
	pv_free(exists);
	pv_free(dbname);
	return rc;
}

static void
plan_text(const json_t *plan)
{
	const json_t *est = json_object_get(plan, "estimate");
	const json_t *db;
	size_t i;
	char size[32], took[32];

	printf("dry run: nothing was written\n");
	printf("backup:        %s (%s)\n", json_string_value(json_object_get(plan, "id")),
		   json_string_value(json_object_get(plan, "choice")));
	printf("to fetch:      %s\n", pv_size_format(size, sizeof(size), (uint64_t) json_integer_value(
												 json_object_get(plan, "bytes"))));
	json_array_foreach(json_object_get(plan, "databases"), i, db)
	{
		const char *sb = json_string_value(json_object_get(db, "safety_backup"));

		printf("database:      '%s' (from '%s'): %s; %s, %lld relations, %lld other sessions%s\n",
			   json_string_value(json_object_get(db, "database")),
			   json_string_value(json_object_get(db, "source_database")),
			   json_string_value(json_object_get(db, "action")),
			   json_is_true(json_object_get(db, "exists")) ? "exists" : "does not exist",
			   (long long) json_integer_value(json_object_get(db, "relations")),
			   (long long) json_integer_value(json_object_get(db, "other_sessions")),
			   json_is_true(json_object_get(db, "terminate_sessions")) ? " (would be ended)" : "");
		printf("safety backup: %s%s\n", sb ? "one would be taken " : "none", sb ? sb : "");
	}
	if (est != NULL && !json_is_null(est))
		printf("estimate:      about %s, from %zu earlier %s of this source\n",
			   pv_elapsed_format(took, sizeof(took),
								 json_integer_value(json_object_get(est, "estimate_ms"))),
			   json_array_size(json_object_get(est, "basis")),
			   json_array_size(json_object_get(est, "basis")) == 1 ? "drill or restore"
			   : "drills and restores");
	else
		printf("estimate:      none: no earlier drill or restore of this source to measure from "
			   "('pgvault drill' records one)\n");
}

/* --dry-run: the checks of pglogical_restore's first steps, then the plan. */
static int
restore_logical_plan(char id[REPO_BACKUP_ID_LEN + 1], const PgLogicalRestoreOpts *o, const char *why,
					 bool json)
{
	RepoManifest *m = NULL;
	json_t *plan = NULL, *dbs = json_array(), *est = NULL;
	const json_t *list;
	PgArchiveDb db;
	bool all;
	int rc;

	if ((rc = repo_manifest_load(&m, o->repo, o->backup)) < 0)
		goto done;
	snprintf(id, REPO_BACKUP_ID_LEN + 1, "%s", repo_manifest_id(m));
	if (strcmp(repo_manifest_kind(m), "logical") != 0)
	{
		rc = pv_error_set(PV_EUSAGE, "backup '%s' is a %s backup, not a logical one",
						  repo_manifest_id(m), repo_manifest_kind(m));
		goto done;
	}
	all = pgarchive_is_all(m);
	list = json_object_get(repo_manifest_metadata(m), "databases");
	if (o->globals_only && !all)
	{
		rc = pv_error_set(PV_EUSAGE, "backup '%s' holds no globals: it is a backup of one database",
						  repo_manifest_id(m));
		pv_error_hint("globals (roles, tablespaces) are in backups made with 'pgvault backup "
					  "--logical --all'");
		goto done;
	}
	if (o->globals_only)
		;						/* roles and tablespaces: existing ones are skipped, nothing to refuse */
	else if (all && o->database == NULL)
	{
		if (o->target_db != NULL)
			rc = pv_error_set(PV_EUSAGE, "--target-db renames one database: pick it with --database");
		else if (o->tables.n > 0)
			rc = pv_error_set(PV_EUSAGE, "--table needs --database with a backup of several databases");
		for (size_t i = 0; rc == 0 && i < json_array_size(list); i++)
		{
			const char *name = json_string_value(json_object_get(json_array_get(list, i), "database"));

			if (name == NULL)
				rc = pv_error_set(PV_ECORRUPT, "backup '%s' lists a database without a name",
								  repo_manifest_id(m));
			else if ((rc = pgarchive_db(&db, m, name)) == 0 && (rc = plan_db(dbs, o, &db, name)) < 0)
				rc = pv_error_prefix(rc, "database '%s'", name);
		}
	}
	else if ((rc = pgarchive_db(&db, m, o->database)) == 0)
		rc = plan_db(dbs, o, &db, all ? (o->target_db ? o->target_db : db.name) : NULL);
	if (rc < 0 || (rc = drill_restore_estimate(o->repo, m, &est)) < 0)
		goto done;
	{
		char *choice = why != NULL ? pv_strdup(why) : pv_asprintf("as given ('%s')", o->backup);
		const json_t *bytes = json_object_get(repo_manifest_totals(m), "logical_bytes");

		plan = json_pack("{s:b, s:s, s:s, s:s, s:s?, s:b, s:I, s:O, s:b, s:o}", "dry_run", 1,
						 "kind", "logical", "id", repo_manifest_id(m), "choice", choice,
						 "source", repo_manifest_source(m)[0] ? repo_manifest_source(m) : NULL,
						 "globals_only", o->globals_only,
						 "bytes", (json_int_t) (json_is_integer(bytes) ? json_integer_value(bytes) : 0),
						 "databases", dbs, "clean", o->clean,
						 "estimate", est ? json_incref(est) : json_null());
		pv_free(choice);
	}
	if (json)
		pv_json_dump(stdout, plan);
	else
		plan_text(plan);
done:
	json_decref(plan);
	json_decref(dbs);
	json_decref(est);
	repo_manifest_free(m);
	return rc;
}

/*
 * ---- 'latest' ----
 *
 * A repository often holds backups of several databases (and physical
 * ones): "restore latest --target-db telehealth_db" must not take the newest
 * backup of billing_db.  'latest' is the newest logical backup (of --source,
 * if given) holding the database the restore is about: --database, else the
 * target (--target-db, else -d's name).  Safety backups (taken by --clean)
 * never count: they hold what a restore replaced, not a chosen state.  When
 * no backup holds that name, the restore goes to a new name ("restore the
 * newest backup into shop_test"): that is unambiguous only when every
 * logical backup is of one and the same database.
 */

/* Add name to the list of databases for the error message, once each. */
static void
latest_name_add(json_t *seen, const char *name, Buf *names)
{
	if (json_object_get(seen, name) != NULL)
		return;
	json_object_set_new(seen, name, json_true());
	buf_printf(names, "%s%s", names->len ? ", " : "", name);
}

static bool
latest_is_safety(const RepoManifest *m)
{
	const char *note = json_string_value(json_object_get(repo_manifest_metadata(m), "note"));

	return note != NULL && strncmp(note, "safety backup ", 14) == 0;
}

int
cli_logical_latest(char id[REPO_BACKUP_ID_LEN + 1], char **out_why, Repo *repo, const char *source,
				   const char *want, bool all_only)
{
	char **ids = NULL, *newest = NULL, *first_db = NULL;
	size_t n = 0;
	bool several = false;
	Buf names = PV_BUF_INIT;
	json_t *seen = json_object();
	int rc;

	*out_why = NULL;
	if ((rc = repo_manifest_ids(repo, &ids, &n)) < 0)
		return rc;
	for (size_t i = n; i-- > 0;)
	{
		RepoManifest *m = NULL;
		const char *db;

		if ((rc = repo_manifest_load(&m, repo, ids[i])) < 0)
		{
			if (rc == PV_ENOTFOUND)		/* expired meanwhile */
			{
				pv_error_clear();
				continue;
			}
			goto done;
		}
		if (strcmp(repo_manifest_kind(m), "logical") != 0 || latest_is_safety(m) ||
			(source != NULL && strcmp(source, repo_manifest_source(m)) != 0) ||
			(all_only && !pgarchive_is_all(m)))
		{
			repo_manifest_free(m);
			continue;
		}
		if (want == NULL || pgarchive_holds_database(m, want))
		{
			snprintf(id, REPO_BACKUP_ID_LEN + 1, "%s", ids[i]);
			*out_why = want ? pv_asprintf("latest: the newest logical backup of database '%s'", want)
				: pv_strdup("latest: the newest logical backup");
			repo_manifest_free(m);
			rc = PV_OK;
			goto done;
		}
		if (newest == NULL)
			newest = pv_strdup(ids[i]);
		db = pgarchive_is_all(m) ? "(all databases)"
			: json_string_value(json_object_get(repo_manifest_metadata(m), "database"));
		db = db ? db : "?";
		if (first_db == NULL)
			first_db = pv_strdup(db);
		else if (strcmp(first_db, db) != 0)
			several = true;
		latest_name_add(seen, db, &names);
		repo_manifest_free(m);
	}
	if (newest != NULL && !several && strcmp(first_db, "(all databases)") != 0)
	{
		/* one database only: restoring it under a new name */
		snprintf(id, REPO_BACKUP_ID_LEN + 1, "%s", newest);
		*out_why = pv_asprintf("latest: the newest logical backup (of database '%s')", first_db);
		rc = PV_OK;
	}
	else if (newest == NULL)
		rc = pv_error_set(PV_ENOTFOUND, "no logical backup%s%s%s%s in repository '%s' for 'latest'",
						  all_only ? " made with --all" : "", source ? " of source '" : "",
						  source ? source : "", source ? "'" : "", repo_url(repo));
	else
	{
		rc = pv_error_set(PV_ENOTFOUND, "'latest' is ambiguous: no logical backup holds database '%s', "
						  "and the repository holds backups of several databases (%s)", want, buf_cstr(&names));
		pv_error_hint("say which database to restore with --database NAME (--target-db then names the "
					  "new database), or give a backup id ('pgvault list --kind logical')");
	}
done:
	pv_free(newest);
	pv_free(first_db);
	buf_free(&names);
	json_decref(seen);
	repo_manifest_ids_free(ids, n);
	return rc;
}

/*
 * pg_restore's "role "x" does not exist" (ALTER ... OWNER TO, GRANT): the
 * runbooks' "restore fails with permission errors".  Say both ways out.
 */
static void
restore_hint_missing_roles(const PgLogicalRestoreOpts *o)
{
	const char *msg = pv_error_msg();

	if (pv_error_hint_msg()[0] != '\0' || strstr(msg, "role \"") == NULL || strstr(msg, "\" does not exist") == NULL)
		return;
	if (o->no_owner && o->no_privileges)
		return;
	pv_error_hint("the backup's roles do not exist on this server: create them first ('pgvault restore ID "
				  "--globals-only' of a 'backup --logical --all', or CREATE ROLE), or restore without "
				  "ownership and grants: --no-owner --no-privileges");
}

/* The database a restore is about, for 'latest': --database, else the target's name. */
static const char *
restore_latest_database(const PgLogicalRestoreOpts *o)
{
	const char *d = o->conn.dbname;

	if (o->globals_only)
		return NULL;			/* roles and tablespaces: the newest --all backup */
	if (o->database != NULL)
		return o->database;
	if (o->target_db != NULL)
		return o->target_db;
	if (d != NULL && strchr(d, '=') == NULL && strstr(d, "://") == NULL)
		return d;
	return NULL;
}

int
cli_restore_logical(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS, CLI_CONN_LONGOPTS,
		{"target-db", required_argument, NULL, OPT_TARGET_DB},
		{"logical", no_argument, NULL, OPT_LOGICAL},
		{"clean", no_argument, NULL, OPT_CLEAN},
		{"if-exists", no_argument, NULL, OPT_IF_EXISTS},
		{"terminate-connections", no_argument, NULL, OPT_TERMINATE},
		{"no-owner", no_argument, NULL, 'O'},
		{"no-privileges", no_argument, NULL, 'x'},
		{"schema-only", no_argument, NULL, 's'},
		{"data-only", no_argument, NULL, 'a'},
		{"no-analyze", no_argument, NULL, OPT_NO_ANALYZE},
		{"jobs", required_argument, NULL, 'j'},
		{"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
		{"table", required_argument, NULL, 't'},
		{"no-safety-backup", no_argument, NULL, OPT_NO_SAFETY},
		{"disable-triggers", no_argument, NULL, OPT_DISABLE_TRIGGERS},
		{"database", required_argument, NULL, OPT_DATABASE},
		{"globals-only", no_argument, NULL, OPT_GLOBALS_ONLY},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"text-copy", no_argument, NULL, OPT_TEXT_COPY},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	PgLogicalRestoreOpts o = {.progress = true};
	PgLogicalRestoreResult res = {0};
	CfgSection *source = NULL;
	const char *jobs = NULL;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoLock *lock = NULL;
	bool dry_run = false;
	char latest_id[REPO_BACKUP_ID_LEN + 1] = "";
	char *latest_why = NULL;
	int opt, rc, status;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":" CLI_CONN_SHORTOPTS "j:Oxsat:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_TARGET_DB:
				o.target_db = optarg;
				break;
			case OPT_LOGICAL:
				break;
			case OPT_CLEAN:
				o.clean = true;
				break;
			case OPT_IF_EXISTS:
				o.if_exists = true;
				break;
			case OPT_TERMINATE:
				o.terminate = true;
				break;
			case 'O':
				o.no_owner = true;
				break;
			case 'x':
				o.no_privileges = true;
				break;
			case 's':
				o.schema_only = true;
				break;
			case 'a':
				o.data_only = true;
				break;
			case OPT_NO_ANALYZE:
				o.no_analyze = true;
				break;
			case OPT_TEXT_COPY:
				o.text_copy = true;
				break;
			case 'j':
				jobs = optarg;
				break;
			case OPT_NO_PROGRESS:
				o.progress = false;
				break;
			case 't':
				pgfilter_patterns_add(&o.tables, optarg);
				break;
			case OPT_NO_SAFETY:
				o.no_safety_backup = true;
				break;
			case OPT_DISABLE_TRIGGERS:
				o.disable_triggers = true;
				break;
			case OPT_DATABASE:
				o.database = optarg;
				break;
			case OPT_GLOBALS_ONLY:
				o.globals_only = true;
				break;
			case OPT_DRY_RUN:
				dry_run = true;
				break;
			default:
				status = cli_bad_option("restore", argv, opt);
				goto done;
		}
	}
	if (common.help)
	{
		cli_print_help(help_text, true);
		status = 0;
		goto done;
	}
	status = -1;				/* no usage error yet */
	if (optind >= argc)
	{
		status = cli_usage_error("restore", "which backup? give its id, or 'latest'");
		goto done;
	}
	o.backup = argv[optind++];
	if (optind < argc)
		status = cli_usage_error("restore", "unexpected argument '%s'", argv[optind]);
	else if (o.schema_only && o.data_only)
		status = cli_usage_error("restore", "options --schema-only and --data-only cannot be used together");
	else if (o.target_db != NULL && o.target_db[0] == '\0')
		status = cli_usage_error("restore", "--target-db must not be empty");
	else if (o.disable_triggers && !o.data_only)
		status = cli_usage_error("restore", "--disable-triggers needs --data-only");
	else if (o.globals_only && (o.tables.n > 0 || o.database != NULL || o.target_db != NULL || o.clean ||
								o.schema_only || o.data_only))
		status = cli_usage_error("restore", "--globals-only restores roles and tablespaces only: no --table,"
								 " --database, --target-db, --clean, --schema-only or --data-only");
	if (status >= 0)
		goto done;
	if (jobs != NULL && !cli_int_parse(&o.jobs, jobs, 1, 256))
	{
		status = cli_usage_error("restore", "invalid number of jobs '%s' (1 to 256)", jobs);
		goto done;
	}
	if ((rc = cli_setup(&common, &cfg)) < 0 || (rc = cli_conn_opts(&o.conn, &source, &common, cfg)) < 0 ||
		(rc = cli_repo_open(&repo, cfg, &common)) < 0 ||
		(!dry_run &&
		 (rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {.command = "restore"})) < 0))
	{
		status = cli_fail(rc);
		goto done;
	}
	if (o.jobs == 0)
		o.jobs = cfg_int(cfg, NULL, "jobs") > 0 ? (int) cfg_int(cfg, NULL, "jobs") : 2;
	o.conn.application_name = "pgvault restore";
	o.bindir = source ? cfg_str(cfg, source, "bindir") : NULL;
	o.source = source ? source->name : common.source;
	o.repo = repo;
	if (strcmp(o.backup, "latest") == 0)
	{
		if ((rc = cli_logical_latest(latest_id, &latest_why, repo, o.source, restore_latest_database(&o),
									  o.globals_only)) < 0)
		{
			status = cli_fail(rc);
			goto done;
		}
		o.backup = latest_id;
		pv_log_detail("%s: %s", latest_why, latest_id);
	}
	if (dry_run)
	{
		/* restore_logical_plan: the checks and the plan, nothing written */
		char id[REPO_BACKUP_ID_LEN + 1] = "";

		if ((rc = restore_logical_plan(id, &o, latest_why, common.json)) < 0)
		{
			pv_error_prefix(rc, "restore of backup %s failed", id[0] ? id : o.backup);
			status = cli_fail(rc);
		}
		else
			status = 0;
		goto done;
	}
	if ((rc = pglogical_restore(&res, &o)) < 0)
	{
		pv_error_prefix(rc, "restore of backup %s failed", res.id[0] ? res.id : o.backup);
		restore_hint_missing_roles(&o);
		status = cli_fail(rc);
		goto done;
	}
	summary_print(common.json, &res);
	{
		/* evidence for restore --dry-run's estimates; never turns this restore into a failure */
		CatalogRestoreInfo ri = {
			.backup_id = res.id, .kind = "logical", .target_kind = "database", .target = res.database,
			.duration_ms = res.elapsed_ms, .recovery_ms = -1, .bytes = res.bytes, .jobs = o.jobs,
			.partial = o.tables.n > 0 || o.schema_only || o.data_only || o.globals_only || o.database != NULL,
			.ok = true,
		};

		if (catalog_restore_record(repo, &ri, NULL) < 0)
		{
			pv_log_warn("the restore succeeded but was not recorded for later estimates: %s", pv_error_msg());
			pv_error_clear();
		}
	}
	status = 0;
done:
	pv_free(latest_why);
	pglogical_restore_result_clear(&res);
	pgfilter_patterns_clear(&o.tables);
	repo_lock_release(lock);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
