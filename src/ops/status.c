/*
 * status.c: the health of a repository's backups, judged against the
 * configured thresholds (see status.h).  (The per-backup state list and
 * show print is src/ops/catalog_view.c's.)
 *
 * Cost: one LIST of snapshots/ plus one GET per manifest (the item lists are
 * not read), three LISTs under records/, one GET per group for its last
 * drill report, and for each source with a WAL archive one LIST of its WAL
 * and one STAT.  Nothing is written.
 */
#include "ops/status.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "pg/wal/archive.h"
#include "pg/wal/wal.h"
#include "repo/copy.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

/* Drill reports of expired backups read at most, to find groups' last drills. */
#define DRILL_READS_MAX 50

const char *
status_level_name(StatusLevel l)
{
	static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

	return l <= STATUS_UNKNOWN ? names[l] : "UNKNOWN";
}

const char *
status_age_format(char *out, size_t outsz, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, outsz, "%llds", (long long) s);
	else if (s < 3600)
		snprintf(out, outsz, "%lldmin", (long long) (s / 60));
	else if (s < 86400)
		snprintf(out, outsz, "%lldh %lldmin", (long long) (s / 3600), (long long) (s % 3600 / 60));
	else
		snprintf(out, outsz, "%lldd %lldh", (long long) (s / 86400), (long long) (s % 86400 / 3600));
	return out;
}

typedef struct Group
{
	char *source, *kind, *database;
	char newest[REPO_BACKUP_ID_LEN + 1];
	PvTime newest_start;
	size_t nbackups;
	const CatalogRecord *verify;	/* lent from the catalog state */
	const CatalogRecord *drill;
	json_t *drill_doc;			/* the last drill's report, when read */
	StatusLevel level;
	json_t *problems;			/* strings */
} Group;

typedef struct Collect
{
	Repo *repo;
	const PvConfig *cfg;
	PvTime now;
	Group *groups;
	size_t ngroups, gcap;
	char **ids;					/* every backup id, sorted */
	size_t *id_group;			/* its group, or (size_t) -1 */
	PvTime *id_stop;			/* its stop time (0 when unreadable) */
	size_t nids;
	size_t unreadable;
	CatalogState cat;
	StatusLevel level;
	json_t *problems;			/* "source kind db: message" strings, for the summary */
} Collect;

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static size_t
group_get(Collect *c, const char *source, const char *kind, const char *database)
{
	Group *g;

	for (size_t i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].source, source) == 0 && strcmp(c->groups[i].kind, kind) == 0 &&
			str_eq(c->groups[i].database, database))
			return i;
	if (c->ngroups == c->gcap)
	{
		c->gcap = c->gcap ? 2 * c->gcap : 8;
		c->groups = pv_realloc(c->groups, c->gcap * sizeof(Group));
	}
	g = &c->groups[c->ngroups];
	memset(g, 0, sizeof(*g));
	g->source = pv_strdup(source);
	g->kind = pv_strdup(kind);
	g->database = database ? pv_strdup(database) : NULL;
	g->problems = json_array();
	return c->ngroups++;
}

static void
group_label(const Group *g, Buf *out)
{
	buf_printf(out, "%s %s", g->source[0] ? g->source : "-", g->kind);
	if (g->database != NULL)
		buf_printf(out, " %s", g->database);
}

static void
judge(Collect *c, Group *g, StatusLevel level, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Record a problem of a group (g may be NULL: the repository as a whole). */
static void
judge(Collect *c, Group *g, StatusLevel level, const char *fmt, ...)
{
	Buf msg = PV_BUF_INIT, full = PV_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (g != NULL)
	{
		json_array_append_new(g->problems, json_pack("{s:s, s:s}", "level", status_level_name(level),
													 "message", buf_cstr(&msg)));
		if (level > g->level)
			g->level = level;
		group_label(g, &full);
		buf_append_str(&full, ": ");
	}
	buf_append_str(&full, buf_cstr(&msg));
	json_array_append_new(c->problems, json_pack("{s:s, s:s}", "level", status_level_name(level),
												 "message", buf_cstr(&full)));
	if (level > c->level)
		c->level = level;
	buf_free(&msg);
	buf_free(&full);
}

static const CfgSection *
source_section(const PvConfig *cfg, const char *name)
{
	for (int i = 0; name && name[0] && i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

/* A duration setting of the source, else the global one; -1 when unset. */
static int64_t
threshold(const PvConfig *cfg, const char *source, const char *key)
{
	const CfgSection *sec = source_section(cfg, source);

	for (int pass = 0; pass < 2; pass++, sec = NULL)
	{
		if (pass == 0 && sec == NULL)
			continue;
		/* only some keys exist in [source:NAME] */
		if (sec != NULL && strcmp(key, "backup-age-warning") != 0 && strcmp(key, "backup-age-critical") != 0)
			continue;
		if (cfg_str(cfg, sec, key) != NULL)
			return cfg_duration(cfg, sec, key);
	}
	return -1;
}

/* ---- gathering ---- */

static size_t
id_index(const Collect *c, const char *id)
{
	size_t lo = 0, hi = c->nids;

	while (lo < hi)
	{
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(c->ids[mid], id);

		if (cmp == 0)
			return mid;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (size_t) -1;
}

static int
load_backups(Collect *c, const char *only_source)
{
	int rc;

	if ((rc = repo_manifest_ids(c->repo, &c->ids, &c->nids)) < 0)
		return rc;
	c->id_group = pv_calloc(c->nids ? c->nids : 1, sizeof(size_t));
	c->id_stop = pv_calloc(c->nids ? c->nids : 1, sizeof(PvTime));
	for (size_t i = 0; i < c->nids; i++)
	{
		RepoManifest *m = NULL;
		const json_t *db;
		const char *kind;
		size_t g;

		c->id_group[i] = (size_t) -1;
		if ((rc = repo_manifest_load(&m, c->repo, c->ids[i])) < 0)
		{
			if (rc != PV_ECORRUPT && rc != PV_ENOTFOUND)
				return rc;
			c->unreadable++;
			pv_error_clear();
			continue;
		}
		kind = repo_manifest_kind(m);
		db = json_object_get(repo_manifest_metadata(m), "database");
		if (only_source == NULL || strcmp(only_source, repo_manifest_source(m)) == 0)
		{
			g = group_get(c, repo_manifest_source(m), kind,
						  strcmp(kind, "logical") == 0 ? (json_is_string(db) ? json_string_value(db) : "") : NULL);
			c->id_group[i] = g;
			c->id_stop[i] = repo_manifest_stop_time(m);
			c->groups[g].nbackups++;
			/* ids sort by start time: the last one seen is the newest */
			snprintf(c->groups[g].newest, sizeof(c->groups[g].newest), "%s", c->ids[i]);
			c->groups[g].newest_start = repo_manifest_start_time(m);
		}
		repo_manifest_free(m);
	}
	return PV_OK;
}

/* The newest verify record of each group (records sort oldest first). */
static void
find_verifies(Collect *c)
{
	for (size_t i = 0; i < c->cat.verify.n; i++)
	{
		size_t k = id_index(c, c->cat.verify.items[i].backup);

		if (k != (size_t) -1 && c->id_group[k] != (size_t) -1)
			c->groups[c->id_group[k]].verify = &c->cat.verify.items[i];
	}
}

/*
 * The newest drill of each group.  A drill of a backup expired since is
 * placed by the backup its report names (reading at most DRILL_READS_MAX
 * such reports, newest first).
 */
static void
find_drills(Collect *c)
{
	int reads = 0;

	for (size_t i = c->cat.drills.n; i > 0; i--)
	{
		const CatalogRecord *r = &c->cat.drills.items[i - 1];
		size_t k = id_index(c, r->backup), g = (size_t) -1;

		if (k != (size_t) -1)
			g = c->id_group[k];
		else if (reads < DRILL_READS_MAX)
		{
			json_t *doc = NULL, *b;

			reads++;
			if (catalog_record_read(c->repo, r, &doc) == 0 && json_is_object(b = json_object_get(doc, "backup")))
			{
				const char *src = json_string_value(json_object_get(b, "source"));
				const char *kind = json_string_value(json_object_get(b, "kind"));
				const char *db = json_string_value(json_object_get(b, "database"));

				for (size_t j = 0; src && kind && j < c->ngroups; j++)
					if (strcmp(c->groups[j].source, src) == 0 && strcmp(c->groups[j].kind, kind) == 0 &&
						(c->groups[j].database == NULL || (db && strcmp(c->groups[j].database, db) == 0)))
						g = j;
			}
			pv_error_clear();
			json_decref(doc);
		}
		if (g != (size_t) -1 && c->groups[g].drill == NULL)
			c->groups[g].drill = r;
	}
}

/* ---- judging ---- */

static void
judge_group(Collect *c, Group *g)
{
	char a[32], b[32];
	int64_t age = (c->now - g->newest_start) / PV_USEC_PER_SEC;
	int64_t warn = threshold(c->cfg, g->source, "backup-age-warning");
	int64_t crit = threshold(c->cfg, g->source, "backup-age-critical");
	int64_t vwarn = threshold(c->cfg, g->source, "verify-age-warning");
	int64_t dwarn = threshold(c->cfg, g->source, "drill-age-warning");

	if (crit >= 0 && age > crit)
		judge(c, g, STATUS_CRITICAL, "newest backup %s is %s old (critical after %s)", g->newest,
			  status_age_format(a, sizeof(a), age), pv_duration_format(b, sizeof(b), crit));
	else if (warn >= 0 && age > warn)
		judge(c, g, STATUS_WARNING, "newest backup %s is %s old (warning after %s)", g->newest,
			  status_age_format(a, sizeof(a), age), pv_duration_format(b, sizeof(b), warn));

	if (g->verify != NULL && !g->verify->ok)
		judge(c, g, STATUS_CRITICAL, "the last verify (%s ago) found backup %s damaged",
			  status_age_format(a, sizeof(a), (c->now - g->verify->time) / PV_USEC_PER_SEC), g->verify->backup);
	else if (vwarn >= 0 && g->verify == NULL)
		judge(c, g, STATUS_WARNING, "never verified");
	else if (vwarn >= 0 && (c->now - g->verify->time) / PV_USEC_PER_SEC > vwarn)
		judge(c, g, STATUS_WARNING, "last verify %s ago (warning after %s)",
			  status_age_format(a, sizeof(a), (c->now - g->verify->time) / PV_USEC_PER_SEC),
			  pv_duration_format(b, sizeof(b), vwarn));

	if (g->drill != NULL && !g->drill->ok)
	{
		const json_t *integrity;

		/* The report says whether data was wrong or only the RTO missed. */
		if (catalog_record_read(c->repo, g->drill, &g->drill_doc) < 0)
			pv_error_clear();
		integrity = json_object_get(g->drill_doc, "integrity_ok");
		if (json_is_true(integrity))
			judge(c, g, STATUS_WARNING, "the last drill (%s ago, backup %s) exceeded the RTO",
				  status_age_format(a, sizeof(a), (c->now - g->drill->time) / PV_USEC_PER_SEC), g->drill->backup);
		else
			judge(c, g, STATUS_CRITICAL, "the last drill (%s ago, backup %s) failed",
				  status_age_format(a, sizeof(a), (c->now - g->drill->time) / PV_USEC_PER_SEC), g->drill->backup);
	}
	else if (dwarn >= 0 && g->drill == NULL)
		judge(c, g, STATUS_WARNING, "never drilled");
	else if (dwarn >= 0 && (c->now - g->drill->time) / PV_USEC_PER_SEC > dwarn)
		judge(c, g, STATUS_WARNING, "last drill %s ago (warning after %s)",
			  status_age_format(a, sizeof(a), (c->now - g->drill->time) / PV_USEC_PER_SEC),
			  pv_duration_format(b, sizeof(b), dwarn));
}

static json_t *
group_json(const Collect *c, const Group *g)
{
	char t[PV_TIME_FORMAT_MAX];
	json_t *j = json_object();

	json_object_set_new(j, "source", g->source[0] ? json_string(g->source) : json_null());
	json_object_set_new(j, "kind", json_string(g->kind));
	json_object_set_new(j, "database", g->database ? json_string(g->database) : json_null());
	json_object_set_new(j, "status", json_string(status_level_name(g->level)));
	json_object_set_new(j, "backups", json_integer((json_int_t) g->nbackups));
	json_object_set_new(j, "newest", json_pack("{s:s, s:s, s:I}", "id", g->newest, "start_time",
											   pv_time_format_utc(t, sizeof(t), g->newest_start), "age_seconds",
											   (json_int_t) ((c->now - g->newest_start) / PV_USEC_PER_SEC)));
	json_object_set_new(j, "verify", catalog_record_summary_json(g->verify));
	json_object_set_new(j, "drill", catalog_record_summary_json(g->drill));
	if (g->drill_doc != NULL)
	{
		json_t *d = json_object_get(j, "drill");

		json_object_set(d, "times_ms", json_object_get(g->drill_doc, "times_ms"));
		json_object_set(d, "integrity_ok", json_object_get(g->drill_doc, "integrity_ok"));
	}
	json_object_set_new(j, "problems", json_incref(g->problems));
	return j;
}

/* ---- WAL archives ---- */

typedef struct WalNewest
{
	char name[64];
	uint32_t timeline;
	uint64_t segments;
} WalNewest;

static int
wal_newest_cb(const char *name, uint64_t stored, void *payload)
{
	WalNewest *w = payload;
	uint32_t tl;
	uint64_t segno;

	(void) stored;
	if (strlen(name) != 24 || pgwal_segment_parse(&tl, &segno, name, UINT64_C(1) << 20) < 0)
	{
		pv_error_clear();
		return 0;				/* history, backup label, partial: not the newest segment */
	}
	w->segments++;
	/* Names order by timeline, then segment: the greatest is the newest. */
	if (strcmp(name, w->name) > 0)
	{
		snprintf(w->name, sizeof(w->name), "%s", name);
		w->timeline = tl;
	}
	return 0;
}

static void
judge_archive(Collect *c, const char *source, json_t *archives)
{
	WalNewest w = {0};
	StorageInfo info = {0};
	char *key;
	char a[32], b[32];
	int64_t age, warn = threshold(c->cfg, source, "archive-lag-warning");
	int64_t crit = threshold(c->cfg, source, "archive-lag-critical");
	StatusLevel level = STATUS_OK;
	json_t *j;

	if (pgwal_source_check(source) < 0 || pgwal_list(c->repo, source, 0, wal_newest_cb, &w) < 0 || w.segments == 0)
	{
		pv_error_clear();
		return;
	}
	key = pgwal_object_key(source, w.name, w.timeline);
	if (storage_stat(repo_storage(c->repo), key, &info) < 0 || info.mtime <= 0)
	{
		pv_error_clear();
		info.mtime = 0;
	}
	pv_free(key);
	age = info.mtime > 0 ? c->now / PV_USEC_PER_SEC - info.mtime : -1;
	if (age >= 0 && crit >= 0 && age > crit)
		level = STATUS_CRITICAL;
	else if (age >= 0 && warn >= 0 && age > warn)
		level = STATUS_WARNING;
	if (level != STATUS_OK)
		judge(c, NULL, level, "%s WAL archive: newest segment %s archived %s ago (%s after %s)", source, w.name,
			  status_age_format(a, sizeof(a), age), level == STATUS_CRITICAL ? "critical" : "warning",
			  pv_duration_format(b, sizeof(b), level == STATUS_CRITICAL ? crit : warn));
	j = json_pack("{s:s, s:s, s:s, s:I}", "source", source, "status", status_level_name(level),
				  "newest_segment", w.name, "segments", (json_int_t) w.segments);
	json_object_set_new(j, "age_seconds", age >= 0 ? json_integer(age) : json_null());
	json_array_append_new(archives, j);
}

/* Every source name worth a look for WAL: the groups', the configured ones, the default. */
static void
judge_archives(Collect *c, const char *only, json_t *archives)
{
	json_t *seen = json_object();

	for (size_t i = 0; i < c->ngroups; i++)
		json_object_set_new(seen, c->groups[i].source, json_true());
	for (int i = 0; i < c->cfg->nsources; i++)
		json_object_set_new(seen, c->cfg->sources[i].name, json_true());
	json_object_set_new(seen, PGWAL_DEFAULT_SOURCE, json_true());
	{
		const char *name;
		json_t *v;

		json_object_foreach(seen, name, v)
			if (name[0] != '\0' && (only == NULL || strcmp(only, name) == 0))
				judge_archive(c, name, archives);
	}
	json_decref(seen);
}

/* ---- secondary repositories (copy lag) ---- */

/* First archived segment name greater than after (names sort by timeline, then segment). */
typedef struct WalAfter
{
	const char *after;
	char first[64];
} WalAfter;

static int
wal_after_cb(const char *name, uint64_t stored, void *payload)
{
	WalAfter *w = payload;

	(void) stored;
	if (strlen(name) == 24 && strspn(name, "0123456789ABCDEF") == 24 && strcmp(name, w->after) > 0 &&
		(w->first[0] == '\0' || strcmp(name, w->first) < 0))
		snprintf(w->first, sizeof(w->first), "%s", name);
	return 0;
}

/* The newest archived segment of source in repo ("" when none). */
static void
wal_newest(Repo *repo, const char *source, WalNewest *out)
{
	memset(out, 0, sizeof(*out));
	if (pgwal_source_check(source) < 0 || pgwal_list(repo, source, 0, wal_newest_cb, out) < 0)
	{
		pv_error_clear();
		memset(out, 0, sizeof(*out));
	}
}

/* When the object of an archived segment was written (0 unknown). */
static PvTime
wal_mtime(Repo *repo, const char *source, const char *name)
{
	StorageInfo info = {0};
	unsigned int tl = 0;
	char *key;
	PvTime t = 0;

	if (sscanf(name, "%8x", &tl) != 1)
		return 0;
	key = pgwal_object_key(source, name, (uint32_t) tl);

	if (storage_stat(repo_storage(repo), key, &info) == 0 && info.mtime > 0)
		t = (PvTime) info.mtime * PV_USEC_PER_SEC;
	pv_error_clear();
	pv_free(key);
	return t;
}

/* A configured location in a comparable form: no "file://", no trailing '/', real path when local. */
static char *
url_norm(const char *url)
{
	char real[PATH_MAX];
	char *u;
	size_t n;

	if (strncmp(url, "file://", 7) == 0)
		url += 7;
	if (url[0] == '/' && realpath(url, real) != NULL)
		url = real;
	u = pv_strdup(url);
	n = strlen(u);
	while (n > 1 && u[n - 1] == '/')
		u[--n] = '\0';
	return u;
}

static bool
url_same(const char *a, const char *b)
{
	char *x = url_norm(a), *y = url_norm(b);
	bool same = strcmp(x, y) == 0;

	pv_free(x);
	pv_free(y);
	return same;
}

/* Does lag record r concern source (a WAL record of it, or a backup of it)? */
static bool
lag_of_source(const Collect *c, const RepoCopyLag *r, const char *source)
{
	size_t k;

	if (r->what == NULL || r->id == NULL)
		return false;
	if (strcmp(r->what, "wal") == 0)
		return strcmp(r->id, source) == 0;
	k = id_index(c, r->id);
	return k != (size_t) -1 && c->id_group[k] != (size_t) -1 &&
		strcmp(c->groups[c->id_group[k]].source, source) == 0;
}

static void
since_min(PvTime *since, PvTime t)
{
	if (t > 0 && (*since == 0 || t < *since))
		*since = t;
}

/*
 * Compare secondary sr (NULL: not opened) with this repository for source:
 * backups it lacks and WAL it lacks into j; *since gets the time the oldest
 * lacking thing appeared.
 */
static void
secondary_compare(Collect *c, Repo *sr, const char *source, json_t *j, PvTime *since)
{
	json_t *missing = json_array();
	char **ids = NULL;
	size_t n = 0;
	WalNewest p, q;

	if (repo_manifest_ids(sr, &ids, &n) < 0)
	{
		json_object_set_new(j, "error", json_string(pv_error_msg()));
		pv_error_clear();
	}
	else
		for (size_t i = 0; i < c->nids; i++)
		{
			bool have = false;

			if (c->id_group[i] == (size_t) -1 || strcmp(c->groups[c->id_group[i]].source, source) != 0)
				continue;
			for (size_t k = 0; k < n && !have; k++)
				have = strcmp(ids[k], c->ids[i]) == 0;
			if (!have)
			{
				json_array_append_new(missing, json_string(c->ids[i]));
				since_min(since, c->id_stop[i]);
			}
		}
	repo_manifest_ids_free(ids, n);
	json_object_set_new(j, "backups_missing", missing);
	wal_newest(c->repo, source, &p);
	wal_newest(sr, source, &q);
	if (p.segments > 0)
	{
		bool behind = strcmp(p.name, q.name) > 0;

		json_object_set_new(j, "wal", json_pack("{s:s, s:o, s:b}", "newest", p.name, "secondary_newest",
												q.segments ? json_string(q.name) : json_null(), "behind", behind));
		if (behind)
		{
			WalAfter a = {q.name, ""};

			/* the first segment it lacks tells since when it lags */
			if (pgwal_list(c->repo, source, 0, wal_after_cb, &a) == 0 && a.first[0])
				since_min(since, wal_mtime(c->repo, source, a.first));
			pv_error_clear();
		}
	}
	else
		json_object_set_new(j, "wal", json_null());
}

/* One secondary of a source: its JSON (appended to out) and its judgement. */
static void
judge_secondary(Collect *c, const char *source, const char *name, const char *url, Repo *sr, const char *open_error,
				const RepoCopyLagList *lags, json_t *out)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "source", source, "repository", name, "url", url ? url : "");
	json_t *failures = json_array();
	PvTime since = 0;
	int64_t warn = threshold(c->cfg, source, "copy-lag-warning"), lag;
	char a[32], b[32];
	bool in_step;

	for (size_t i = 0; i < lags->n; i++)
	{
		const RepoCopyLag *r = &lags->items[i];
		char t1[PV_TIME_FORMAT_MAX], t2[PV_TIME_FORMAT_MAX];

		if (r->secondary == NULL || strcmp(r->secondary, name) != 0 || !lag_of_source(c, r, source))
			continue;
		json_array_append_new(failures, json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "what", r->what, "id", r->id,
												  "since", pv_time_format_utc(t1, sizeof(t1), r->since),
												  "last_attempt", pv_time_format_utc(t2, sizeof(t2), r->last_attempt),
												  "attempts", (json_int_t) r->attempts,
												  "error", r->error ? r->error : ""));
		since_min(&since, r->since);
	}
	json_object_set_new(j, "failures", failures);
	json_object_set_new(j, "error", open_error ? json_string(open_error) : json_null());
	if (sr != NULL)
		secondary_compare(c, sr, source, j, &since);
	else
	{
		json_object_set_new(j, "backups_missing", json_null());
		json_object_set_new(j, "wal", json_null());
	}
	lag = since > 0 ? (c->now - since) / PV_USEC_PER_SEC : 0;
	if (lag < 0)
		lag = 0;
	in_step = since == 0 && open_error == NULL && !json_is_string(json_object_get(j, "error"));
	json_object_set_new(j, "in_step", json_boolean(in_step));
	json_object_set_new(j, "lag_seconds", json_integer(lag));
	json_object_set_new(j, "compared", json_boolean(sr != NULL));
	if (open_error != NULL)
	{
		judge(c, NULL, STATUS_WARNING, "%s: secondary repository '%s' cannot be read: %s", source, name, open_error);
		json_object_set_new(j, "status", json_string("WARNING"));
	}
	else if (!in_step && warn >= 0 && lag > warn)
	{
		judge(c, NULL, STATUS_WARNING, "%s: secondary repository '%s' is %s behind (%zu backup%s missing%s; "
			  "warning after %s)", source, name, status_age_format(a, sizeof(a), lag),
			  json_array_size(json_object_get(j, "backups_missing")) + (sr ? 0 : json_array_size(failures)),
			  json_array_size(json_object_get(j, "backups_missing")) == 1 ? "" : "s",
			  json_is_true(json_object_get(json_object_get(j, "wal"), "behind")) ? ", WAL behind" : "",
			  pv_duration_format(b, sizeof(b), warn));
		json_object_set_new(j, "status", json_string("WARNING"));
	}
	else
		json_object_set_new(j, "status", json_string("OK"));
	json_array_append_new(out, j);
}

/*
 * Every configured source whose "repos" name this repository and others:
 * each other one is judged.  Sources that do not name this repository are
 * not this repository's to judge (their primary keeps the lag records).
 */
static void
judge_secondaries(Collect *c, const StatusOpts *opts, json_t *out)
{
	RepoCopyLagList lags = {0};

	if (repo_copy_lag_list(c->repo, NULL, &lags) < 0)
	{
		pv_log_warn("cannot read the copy lag records: %s", pv_error_msg());
		pv_error_clear();
		memset(&lags, 0, sizeof(lags));
	}
	for (int i = 0; i < c->cfg->nsources; i++)
	{
		const CfgSection *src = &c->cfg->sources[i];
		const char *list = cfg_str(c->cfg, src, "repos");
		Repo **repos = NULL;
		char **names = NULL, **errors = NULL;
		const char **urls = NULL;
		size_t n = 0;
		bool member = false;

		if (list == NULL || (opts->source != NULL && strcmp(opts->source, src->name) != 0))
			continue;
		while (*list != '\0')
		{
			size_t len;
			const CfgSection *rs = NULL;
			char *name;

			list += strspn(list, ", ");
			if ((len = strcspn(list, ", ")) == 0)
				break;
			name = pv_strndup(list, len);
			list += len;
			for (int k = 0; k < c->cfg->nrepos; k++)
				if (strcmp(c->cfg->repos[k].name, name) == 0)
					rs = &c->cfg->repos[k];
			names = pv_realloc(names, (n + 1) * sizeof(char *));
			urls = pv_realloc(urls, (n + 1) * sizeof(char *));
			repos = pv_realloc(repos, (n + 1) * sizeof(Repo *));
			errors = pv_realloc(errors, (n + 1) * sizeof(char *));
			names[n] = name;
			urls[n] = rs ? cfg_str(c->cfg, rs, "url") : NULL;
			repos[n] = NULL;
			errors[n] = NULL;
			if (urls[n] != NULL && url_same(urls[n], repo_url(c->repo)))
			{
				member = true;
				pv_free(name);
				continue;
			}
			if (urls[n] == NULL)
				errors[n] = pv_strdup("not configured (no [repo:NAME] with a url)");
			else if (opts->secondary_open != NULL && opts->secondary_open(&repos[n], c->cfg, name, opts->payload) < 0)
			{
				errors[n] = pv_strdup(pv_error_msg());
				pv_error_clear();
			}
			if (repos[n] != NULL && strcmp(repo_url(repos[n]), repo_url(c->repo)) == 0)
			{
				member = true;
				repo_free(repos[n]);
				pv_free(name);
				pv_free(errors[n]);
				continue;
			}
			n++;
		}
		for (size_t k = 0; k < n; k++)
		{
			if (member)
				judge_secondary(c, src->name, names[k], urls[k], repos[k], errors[k], &lags, out);
			repo_free(repos[k]);
			pv_free(names[k]);
			pv_free(errors[k]);
		}
		pv_free(names);
		pv_free(urls);
		pv_free(repos);
		pv_free(errors);
	}
	repo_copy_lag_list_free(&lags);
}

/* ---- the report ---- */

static void
collect_free(Collect *c)
{
	for (size_t i = 0; i < c->ngroups; i++)
	{
		pv_free(c->groups[i].source);
		pv_free(c->groups[i].kind);
		pv_free(c->groups[i].database);
		json_decref(c->groups[i].drill_doc);
		json_decref(c->groups[i].problems);
	}
	pv_free(c->groups);
	repo_manifest_ids_free(c->ids, c->nids);
	pv_free(c->id_group);
	pv_free(c->id_stop);
	catalog_state_free(&c->cat);
	json_decref(c->problems);
}

static char *
summary_new(const Collect *c)
{
	Buf b = PV_BUF_INIT;
	size_t i, shown = 0;
	json_t *p;

	if (c->level == STATUS_OK)
	{
		buf_printf(&b, "%zu backup group%s OK", c->ngroups, c->ngroups == 1 ? "" : "s");
		return buf_detach(&b);
	}
	/* worst first: criticals, then warnings */
	for (int want = STATUS_CRITICAL; want >= STATUS_WARNING; want--)
		json_array_foreach(c->problems, i, p)
			if (strcmp(json_string_value(json_object_get(p, "level")), status_level_name((StatusLevel) want)) == 0)
			{
				if (shown++ > 0)
					buf_append_str(&b, "; ");
				buf_append_str(&b, json_string_value(json_object_get(p, "message")));
			}
	return buf_detach(&b);
}

int
status_collect(StatusReport *out, Repo *repo, const PvConfig *cfg, const StatusOpts *opts)
{
	Collect c = {.repo = repo, .cfg = cfg};
	StatusOpts none = {0};
	json_t *groups = json_array(), *archives = json_array(), *secondaries = json_array();
	char t[PV_TIME_FORMAT_MAX];
	int rc;

	memset(out, 0, sizeof(*out));
	if (opts == NULL)
		opts = &none;
	c.now = opts->now ? opts->now : pv_time_now();
	c.problems = json_array();
	if ((rc = load_backups(&c, opts->source)) < 0 || (rc = catalog_state_load(&c.cat, repo)) < 0)
		goto done;
	find_verifies(&c);
	find_drills(&c);
	for (size_t i = 0; i < c.ngroups; i++)
		judge_group(&c, &c.groups[i]);
	for (int i = 0; i < cfg->nsources; i++)
	{
		const char *name = cfg->sources[i].name;
		bool has = false;

		if (opts->source != NULL && strcmp(opts->source, name) != 0)
			continue;
		for (size_t g = 0; g < c.ngroups && !has; g++)
			has = strcmp(c.groups[g].source, name) == 0;
		if (!has)
			judge(&c, NULL, STATUS_CRITICAL, "source '%s' has no backup in this repository", name);
	}
	if (c.unreadable > 0)
		judge(&c, NULL, STATUS_WARNING, "%zu backup%s cannot be read (run 'pgvault verify')", c.unreadable,
			  c.unreadable == 1 ? "" : "s");
	if (c.ngroups == 0 && cfg->nsources == 0)
		judge(&c, NULL, STATUS_CRITICAL, "no backups in repository '%s'", repo_url(repo));
	judge_archives(&c, opts->source, archives);
	judge_secondaries(&c, opts, secondaries);
	for (size_t i = 0; i < c.ngroups; i++)
		json_array_append_new(groups, group_json(&c, &c.groups[i]));
	out->level = c.level;
	out->summary = summary_new(&c);
	out->doc = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:O}", "repository", repo_url(repo), "status",
						 status_level_name(c.level), "summary", out->summary, "time",
						 pv_time_format_utc(t, sizeof(t), c.now), "groups", groups, "archives", archives,
						 "problems", c.problems);
	json_object_set_new(out->doc, "secondaries", secondaries);
	groups = archives = secondaries = NULL;
done:
	json_decref(groups);
	json_decref(archives);
	json_decref(secondaries);
	collect_free(&c);
	return rc;
}

void
status_report_free(StatusReport *r)
{
	pv_free(r->summary);
	json_decref(r->doc);
	memset(r, 0, sizeof(*r));
}
