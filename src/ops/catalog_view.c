/*
 * catalog_view.c: the backups of a repository for list and show, with
 * their evidence (verify, drill), pins and retention decisions, and each
 * source's recoverable window (see catalog_view.h).
 *
 * The window is computed from facts only (the physical backups' recorded
 * WAL ranges and one listing of the archive): a backup is restorable when
 * every segment from its start to its stop is archived, and recovery from
 * it can go on until the first missing segment after its stop.  Timelines
 * are judged one at a time: a backup reaches WAL of its own timeline.
 */
#include "ops/catalog_view.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "ops/retention.h"
#include "pg/wal/wal.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "storage/storage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text helpers ---- */

const char *
catalog_age_short(char *out, size_t outsz, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, outsz, "%llds", (long long) s);
	else if (s < 3600)
		snprintf(out, outsz, "%lldm", (long long) (s / 60));
	else if (s < 86400)
		snprintf(out, outsz, "%lldh", (long long) (s / 3600));
	else if (s < 365 * 86400)
		snprintf(out, outsz, "%lldd", (long long) (s / 86400));
	else
		snprintf(out, outsz, "%lldy", (long long) (s / (365 * 86400)));
	return out;
}

const char *
catalog_duration_short(char *out, size_t outsz, int64_t ms)
{
	int64_t s = ms < 0 ? 0 : ms / 1000;

	if (s < 60)
		snprintf(out, outsz, "%llds", (long long) s);
	else if (s < 3600)
		snprintf(out, outsz, "%lldm%02llds", (long long) (s / 60), (long long) (s % 60));
	else if (s < 86400)
		snprintf(out, outsz, "%lldh%02lldm", (long long) (s / 3600), (long long) (s % 3600 / 60));
	else
		snprintf(out, outsz, "%lldd%02lldh", (long long) (s / 86400), (long long) (s % 86400 / 3600));
	return out;
}

const char *
catalog_size_short(char *out, size_t outsz, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	double v = (double) bytes;
	int k = -1;

	if (bytes < 1024)
	{
		snprintf(out, outsz, "%" PRIu64, bytes);
		return out;
	}
	while (v >= 1024 && k < 5)
	{
		v /= 1024;
		k++;
	}
	/* 1.5K, 12K, 512K: at most 5 characters; round down so 1023.96 is not "1024K" */
	if (v < 10)
		snprintf(out, outsz, "%.1f%c", (double) ((int64_t) (v * 10)) / 10, units[k]);
	else
		snprintf(out, outsz, "%d%c", (int) v, units[k]);
	return out;
}

const char *
catalog_record_cell(char *out, size_t outsz, const json_t *summary, const char *bad, PvTime now)
{
	PvTime t;
	char age[16];

	if (!json_is_object(summary) ||
		pv_time_parse(&t, json_string_value(json_object_get(summary, "time")), "UTC") < 0)
	{
		pv_error_clear();
		snprintf(out, outsz, "-");
		return out;
	}
	snprintf(out, outsz, "%s %s ago", json_is_true(json_object_get(summary, "ok")) ? "ok" : bad,
			 catalog_age_short(age, sizeof(age), (now - t) / PV_USEC_PER_SEC));
	return out;
}

const char *
catalog_retention_cell(char *out, size_t outsz, const json_t *retention, bool pinned, size_t width)
{
	Buf b = PV_BUF_INIT;
	const json_t *reasons = json_object_get(retention, "reasons");
	size_t i;
	json_t *v;

	if (!json_is_object(retention))
		buf_append_str(&b, pinned ? "pinned" : "unknown");
	else if (strcmp(json_string_value(json_object_get(retention, "action")) ?
					json_string_value(json_object_get(retention, "action")) : "", "expire") == 0)
		buf_append_str(&b, "EXPIRE");
	else
		json_array_foreach(reasons, i, v)
		{
			const char *r = json_string_value(v) ? json_string_value(v) : "?";

			/* "no policy" says it all: everything of the group is kept */
			if (strcmp(r, "no-policy") == 0)
			{
				buf_reset(&b);
				buf_append_str(&b, pinned ? "pinned,no policy" : "no policy");
				break;
			}
			buf_printf(&b, "%s%s", i ? "," : "", r);
		}
	if (width >= 2 && strlen(buf_cstr(&b)) > width)
		snprintf(out, outsz, "%.*s+", (int) (width - 1), buf_cstr(&b));
	else
		snprintf(out, outsz, "%s", buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* ---- the recoverable window ---- */

bool
catalog_window_has_segment(const PgWalArchiveSummary *s, uint32_t timeline, uint64_t segno)
{
	const PgWalTimelineInfo *t = pgwal_summary_timeline(s, timeline);

	if (t == NULL || t->segments == 0 || segno < t->first || segno > t->last)
		return false;
	for (size_t i = 0; i < t->ngaps; i++)
		if (segno >= t->gaps[i].first && segno <= t->gaps[i].last)
			return false;
	return true;
}

uint64_t
catalog_window_reach(const PgWalArchiveSummary *s, uint32_t timeline, uint64_t stop_segno)
{
	const PgWalTimelineInfo *t = pgwal_summary_timeline(s, timeline);
	const PgWalGap *g = pgwal_summary_gap_after(s, timeline, stop_segno + 1);

	if (t == NULL || t->segments == 0)
		return stop_segno;
	if (g != NULL && g->first > stop_segno)
		return g->first - 1;
	return t->last > stop_segno ? t->last : stop_segno;
}

static bool
restorable(const PgWalArchiveSummary *s, const CatalogWindowBackup *b)
{
	const PgWalTimelineInfo *t = pgwal_summary_timeline(s, b->timeline);

	if (t == NULL || t->segments == 0 || b->start_segno < t->first || b->stop_segno > t->last)
		return false;
	for (size_t i = 0; i < t->ngaps; i++)
		if (t->gaps[i].first <= b->stop_segno && t->gaps[i].last >= b->start_segno)
			return false;
	return true;
}

void
catalog_window_compute(CatalogWindow *out, const CatalogWindowBackup *b, size_t n, const PgWalArchiveSummary *s)
{
	memset(out, 0, sizeof(*out));
	out->from = SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		if (b[i].kept && restorable(s, &b[i]) &&
			(out->from == SIZE_MAX || b[i].stop_lsn < b[out->from].stop_lsn))
			out->from = i;
	for (size_t i = 0; i < s->ntimelines; i++)
	{
		const PgWalTimelineInfo *t = &s->timelines[i];

		if (t->segments > 0)
		{
			/* timelines ascend: the last with segments holds the newest WAL */
			out->has_newest = true;
			out->newest_timeline = t->timeline;
			out->newest_segno = t->last;
		}
		for (size_t k = 0; k < t->ngaps; k++)
		{
			CatalogWindowGap *g;

			out->gaps = pv_realloc(out->gaps, (out->ngaps + 1) * sizeof(CatalogWindowGap));
			g = &out->gaps[out->ngaps++];
			memset(g, 0, sizeof(*g));
			g->timeline = t->timeline;
			g->first = t->gaps[k].first;
			g->last = t->gaps[k].last;
			g->cut = pv_calloc(n ? n : 1, sizeof(size_t));
			g->broken = pv_calloc(n ? n : 1, sizeof(size_t));
			for (size_t j = 0; j < n; j++)
			{
				if (b[j].timeline != t->timeline)
					continue;
				if (b[j].stop_segno < g->first)
					g->cut[g->ncut++] = j;
				else if (b[j].start_segno <= g->last)
					g->broken[g->nbroken++] = j;
			}
		}
	}
}

void
catalog_window_free(CatalogWindow *w)
{
	for (size_t i = 0; i < w->ngaps; i++)
	{
		pv_free(w->gaps[i].cut);
		pv_free(w->gaps[i].broken);
	}
	pv_free(w->gaps);
	memset(w, 0, sizeof(*w));
	w->from = SIZE_MAX;
}

/* ---- collecting ---- */

static uint64_t
total(const RepoManifest *m, const char *key)
{
	json_t *v = json_object_get(repo_manifest_totals(m), key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t) json_integer_value(v) : 0;
}

static json_t *
wal_json(const json_t *md)
{
	const json_t *tl = json_object_get(md, "timeline");

	if (!json_is_integer(tl) || !json_is_string(json_object_get(md, "start_wal")))
		return json_null();
	return json_pack("{s:O, s:O, s:O, s:O, s:O}", "timeline", tl,
					 "start_lsn", json_object_get(md, "start_lsn") ? json_object_get(md, "start_lsn") : json_null(),
					 "stop_lsn", json_object_get(md, "stop_lsn") ? json_object_get(md, "stop_lsn") : json_null(),
					 "start_wal", json_object_get(md, "start_wal"),
					 "stop_wal", json_object_get(md, "stop_wal") ? json_object_get(md, "stop_wal") : json_null());
}

/* The old list's keys, then the new ones that do not need other objects. */
static json_t *
backup_json(const RepoManifest *m)
{
	const json_t *md = repo_manifest_metadata(m);
	json_t *j = json_object();
	char t[PV_TIME_FORMAT_MAX];
	const char *kind = repo_manifest_kind(m);

	json_object_set_new(j, "id", json_string(repo_manifest_id(m)));
	json_object_set_new(j, "kind", json_string(kind));
	json_object_set_new(j, "source", repo_manifest_source(m)[0] ? json_string(repo_manifest_source(m)) : json_null());
	json_object_set_new(j, "host", json_string(repo_manifest_host(m)));
	json_object_set_new(j, "start_time", json_string(pv_time_format_utc(t, sizeof(t), repo_manifest_start_time(m))));
	json_object_set_new(j, "stop_time", json_string(pv_time_format_utc(t, sizeof(t), repo_manifest_stop_time(m))));
	json_object_set_new(j, "items", json_integer((json_int_t) repo_manifest_item_count(m)));
	json_object_set_new(j, "size", json_integer((json_int_t) total(m, "logical_bytes")));
	json_object_set_new(j, "stored", json_integer((json_int_t) total(m, "stored_bytes")));
	json_object_set_new(j, "new", json_integer((json_int_t) total(m, "new_bytes")));
	json_object_set_new(j, "duration_ms",
						json_integer((json_int_t) ((repo_manifest_stop_time(m) - repo_manifest_start_time(m)) /
												   PV_USEC_PER_MS)));
	json_object_set_new(j, "database", json_is_string(json_object_get(md, "database")) ?
						json_deep_copy(json_object_get(md, "database")) : json_null());
	if (json_is_true(json_object_get(md, "all")))
	{
		json_t *names = json_array();
		size_t i;
		json_t *d;

		json_array_foreach(json_object_get(md, "databases"), i, d)
			if (json_is_string(json_object_get(d, "database")))
				json_array_append(names, json_object_get(d, "database"));
		json_object_set_new(j, "databases", names);
	}
	json_object_set_new(j, "wal", strcmp(kind, "physical") == 0 ? wal_json(md) : json_null());
	return j;
}

static json_t *
summary_with_age(const CatalogRecord *r, PvTime now)
{
	json_t *j = catalog_record_summary_json(r);

	if (r != NULL)
		json_object_set_new(j, "age_seconds", json_integer((json_int_t) ((now - r->time) / PV_USEC_PER_SEC)));
	return j;
}

static void
annotate(json_t *b, const CatalogState *st, const RetentionPlan *plan, PvTime now)
{
	const char *id = json_string_value(json_object_get(b, "id"));
	const RetentionItem *it = plan ? retention_plan_find(plan, id) : NULL;
	bool pinned = catalog_pins_has(&st->pins, id);
	char cell[64];

	json_object_set_new(b, "pinned", json_boolean(pinned));
	json_object_set_new(b, "verify", summary_with_age(catalog_state_last(st, CATALOG_VERIFY, id), now));
	json_object_set_new(b, "drill", summary_with_age(catalog_state_last(st, CATALOG_DRILL, id), now));
	if (it != NULL)
		json_object_set_new(b, "retention", json_pack("{s:s, s:o}", "action", it->reasons ? "keep" : "expire",
													  "reasons", retention_reasons_json(it->reasons)));
	else
		json_object_set_new(b, "retention", json_null());
	if (json_is_object(json_object_get(b, "retention")))
		json_object_set_new(json_object_get(b, "retention"), "text",
							json_string(catalog_retention_cell(cell, sizeof(cell), json_object_get(b, "retention"),
															   pinned, 0)));
}

static bool
holds_database(const json_t *b, const char *db)
{
	size_t i;
	json_t *v;

	if (json_is_string(json_object_get(b, "database")))
		return strcmp(json_string_value(json_object_get(b, "database")), db) == 0;
	json_array_foreach(json_object_get(b, "databases"), i, v)
		if (strcmp(json_string_value(v), db) == 0)
		return true;
	return false;
}

static bool
source_matches(const json_t *b, const char *source)
{
	const char *s = json_string_value(json_object_get(b, "source"));

	return source == NULL || strcmp(s ? s : "", source) == 0;
}

static bool
matches(const json_t *b, const CatalogFilter *f, PvTime start)
{
	const char *kind = json_string_value(json_object_get(b, "kind"));

	if (f->id != NULL && strcmp(json_string_value(json_object_get(b, "id")), f->id) != 0)
		return false;
	if (!source_matches(b, f->source))
		return false;
	if (f->kind != NULL && (kind == NULL || strcmp(kind, f->kind) != 0))
		return false;
	if (f->database != NULL && !holds_database(b, f->database))
		return false;
	/* at the second list shows, so "--until <a start time list printed>" includes that backup */
	start -= start % PV_USEC_PER_SEC;
	if ((f->since != 0 && start < f->since) || (f->until != 0 && start > f->until))
		return false;
	return true;
}

/* One backup's facts for the window, from its JSON ("wal"); false when it has none usable. */
static bool
window_backup(CatalogWindowBackup *out, const json_t *b, uint64_t seg)
{
	const json_t *w = json_object_get(b, "wal");
	const json_t *ret = json_object_get(b, "retention");
	uint32_t tl1, tl2;
	PvTime stop;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(w) ||
		pgwal_segment_parse(&tl1, &out->start_segno, json_string_value(json_object_get(w, "start_wal")), seg) < 0 ||
		pgwal_segment_parse(&tl2, &out->stop_segno, json_string_value(json_object_get(w, "stop_wal")), seg) < 0 ||
		pgwal_lsn_parse(&out->stop_lsn, json_string_value(json_object_get(w, "stop_lsn"))) < 0 ||
		pv_time_parse(&stop, json_string_value(json_object_get(b, "stop_time")), "UTC") < 0)
	{
		pv_error_clear();
		return false;
	}
	out->id = json_string_value(json_object_get(b, "id"));
	out->timeline = tl1;
	out->stop_time = stop;
	/* no plan: everything counts as kept (nothing was decided) */
	out->kept = !json_is_object(ret) ||
		strcmp(json_string_value(json_object_get(ret, "action")), "expire") != 0;
	return true;
}

static json_t *
ids_json(const CatalogWindowBackup *b, const size_t *idx, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(b[idx[i]].id));
	return a;
}

static json_t *
lsn_json(uint64_t lsn)
{
	char t[PGWAL_LSN_TEXT_MAX];

	return json_string(pgwal_lsn_format(t, sizeof(t), lsn));
}

static json_t *
segment_json(uint32_t tl, uint64_t segno, uint64_t seg)
{
	char name[PGWAL_SEGMENT_NAME_LEN + 1];

	pgwal_segment_name(name, tl, segno, seg);
	return json_string(name);
}

/* When the newest segment was archived (its object's mtime), or JSON null. */
static json_t *
archived_time_json(Repo *repo, const char *archive, uint32_t tl, uint64_t segno, uint64_t seg)
{
	char name[PGWAL_SEGMENT_NAME_LEN + 1], t[PV_TIME_FORMAT_MAX];
	StorageInfo info = {0};
	char *key;
	json_t *j = json_null();

	pgwal_segment_name(name, tl, segno, seg);
	key = pgwal_object_key(archive, name, tl);
	if (storage_stat(repo_storage(repo), key, &info) == 0 && info.mtime > 0)
	{
		json_decref(j);
		j = json_string(pv_time_format_utc(t, sizeof(t), (PvTime) info.mtime * PV_USEC_PER_SEC));
	}
	pv_error_clear();
	pv_free(key);
	return j;
}

/*
 * The window of one source over all its physical backups (in all, any
 * filter aside), and each such backup's "restorable" and "recovers_to".
 */
static json_t *
window_json(Repo *repo, const char *source, json_t *all)
{
	const char *archive = source[0] ? source : PGWAL_DEFAULT_SOURCE;
	PgWalArchiveSummary s = {0};
	CatalogWindow w;
	CatalogWindowBackup *b = NULL;
	json_t **bj = NULL;
	size_t n = 0, i;
	uint64_t seg = PGWAL_DEFAULT_SEGMENT_SIZE;
	json_t *v, *doc, *gaps;

	if (pgwal_source_check(archive) < 0 || pgwal_archive_summarize(&s, repo, archive) < 0)
	{
		pv_log_warn("WAL archive of source '%s': %s", archive, pv_error_msg());
		pv_error_clear();
		memset(&s, 0, sizeof(s));
	}
	if (s.has_system)
		seg = s.sys.segment_size;
	json_array_foreach(all, i, v)
	{
		const json_t *kind = json_object_get(v, "kind");

		if (!json_is_string(kind) || strcmp(json_string_value(kind), "physical") != 0 || !source_matches(v, source))
			continue;
		if (!s.has_system && json_is_integer(json_object_get(v, "wal_segment_size")))
			seg = (uint64_t) json_integer_value(json_object_get(v, "wal_segment_size"));
		b = pv_realloc(b, (n + 1) * sizeof(*b));
		bj = pv_realloc(bj, (n + 1) * sizeof(*bj));
		if (window_backup(&b[n], v, seg))
			bj[n++] = v;
	}
	catalog_window_compute(&w, b, n, &s);
	for (i = 0; i < n; i++)
	{
		bool ok = restorable(&s, &b[i]);
		uint64_t reach = catalog_window_reach(&s, b[i].timeline, b[i].stop_segno);

		json_object_set_new(bj[i], "restorable", json_boolean(ok));
		json_object_set_new(bj[i], "recovers_to", ok ?
							json_pack("{s:o, s:o}", "segment", segment_json(b[i].timeline, reach, seg),
									  "lsn", lsn_json((reach + 1) * seg)) : json_null());
	}
	doc = json_pack("{s:o, s:s}", "source", source[0] ? json_string(source) : json_null(), "archive_source", archive);
	if (w.from != SIZE_MAX)
	{
		char t[PV_TIME_FORMAT_MAX];

		json_object_set_new(doc, "from", json_pack("{s:s, s:s, s:o, s:i}", "backup", b[w.from].id, "time",
												   pv_time_format_utc(t, sizeof(t), b[w.from].stop_time),
												   "lsn", lsn_json(b[w.from].stop_lsn),
												   "timeline", (int) b[w.from].timeline));
	}
	else
		json_object_set_new(doc, "from", json_null());
	if (w.has_newest)
		json_object_set_new(doc, "to", json_pack("{s:o, s:o, s:o, s:i}", "segment",
												 segment_json(w.newest_timeline, w.newest_segno, seg),
												 "time", archived_time_json(repo, archive, w.newest_timeline,
																			w.newest_segno, seg),
												 "lsn", lsn_json((w.newest_segno + 1) * seg),
												 "timeline", (int) w.newest_timeline));
	else
		json_object_set_new(doc, "to", json_null());
	gaps = json_array();
	for (i = 0; i < w.ngaps; i++)
	{
		const CatalogWindowGap *g = &w.gaps[i];

		json_array_append_new(gaps, json_pack("{s:i, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "timeline",
											  (int) g->timeline, "first", segment_json(g->timeline, g->first, seg),
											  "last", segment_json(g->timeline, g->last, seg),
											  "segments", (json_int_t) (g->last - g->first + 1),
											  "from_lsn", lsn_json(g->first * seg),
											  "to_lsn", lsn_json((g->last + 1) * seg),
											  "backups_cut", ids_json(b, g->cut, g->ncut),
											  "backups_broken", ids_json(b, g->broken, g->nbroken)));
	}
	/*
	 * contiguous: no segment is missing after the oldest kept backup's end,
	 * on its timeline or a later one (a restore follows the switch through
	 * the history files), so recovery from it can reach the newest WAL.
	 */
	{
		bool contiguous = w.from != SIZE_MAX && w.has_newest;

		for (i = 0; contiguous && i < w.ngaps; i++)
			if (w.gaps[i].timeline > b[w.from].timeline ||
				(w.gaps[i].timeline == b[w.from].timeline && w.gaps[i].last > b[w.from].stop_segno))
				contiguous = false;
		json_object_set_new(doc, "contiguous", json_boolean(contiguous));
	}
	json_object_set_new(doc, "gaps", gaps);
	json_object_set_new(doc, "archive", pgwal_archive_summary_json(&s, archive));
	catalog_window_free(&w);
	pgwal_archive_summary_free(&s);
	pv_free(b);
	pv_free(bj);
	return doc;
}

int
catalog_view_collect(json_t **out, Repo *repo, const PvConfig *cfg, const CatalogViewOpts *opts,
					 size_t *out_damaged)
{
	CatalogState st = {0};
	RetentionPlan plan;
	bool have_plan = false;
	char **ids = NULL;
	size_t nids = 0, damaged = 0, i;
	PvTime now = opts->now ? opts->now : pv_time_now();
	const CatalogFilter *f = &opts->filter;
	const char *tz = cfg_str(cfg, NULL, "time-zone");
	json_t *all = json_array(), *shown = json_array(), *windows = json_array(), *sources = json_array();
	json_t *v;
	int rc;

	*out = NULL;
	if ((rc = repo_manifest_ids(repo, &ids, &nids)) < 0)
		goto done;
	if ((rc = catalog_state_load(&st, repo)) < 0)
	{
		pv_log_warn("cannot read the backups' records: %s", pv_error_msg());
		pv_error_clear();
		memset(&st, 0, sizeof(st));
	}
	if (retention_plan_build(&plan, repo, cfg, NULL) == 0)
		have_plan = true;
	else
	{
		pv_log_warn("retention: %s", pv_error_msg());
		pv_error_clear();
	}
	for (i = 0; i < nids; i++)
	{
		RepoManifest *m = NULL;
		json_t *b;

		if ((rc = repo_manifest_load(&m, repo, ids[i])) < 0)
		{
			if (rc != PV_ECORRUPT && rc != PV_ENOTFOUND)
				goto done;
			if (opts->filter.id == NULL || strcmp(opts->filter.id, ids[i]) == 0)
			{
				damaged++;
				json_array_append_new(shown, json_pack("{s:s, s:s}", "id", ids[i], "error", pv_error_msg()));
			}
			pv_error_clear();
			continue;
		}
		b = backup_json(m);
		if (strcmp(repo_manifest_kind(m), "physical") == 0 &&
			json_is_integer(json_object_get(repo_manifest_metadata(m), "wal_segment_size")))
			json_object_set(b, "wal_segment_size", json_object_get(repo_manifest_metadata(m), "wal_segment_size"));
		annotate(b, &st, have_plan ? &plan : NULL, now);
		json_array_append_new(all, b);
		if (matches(b, &opts->filter, repo_manifest_start_time(m)))
			json_array_append(shown, b);
		repo_manifest_free(m);
	}
	rc = PV_OK;
	if (opts->windows && (opts->filter.kind == NULL || strcmp(opts->filter.kind, "physical") == 0))
	{
		json_array_foreach(all, i, v)
		{
			const char *s = json_string_value(json_object_get(v, "source"));
			size_t k;
			json_t *x;
			bool seen = false;

			if (strcmp(json_string_value(json_object_get(v, "kind")), "physical") != 0 ||
				!source_matches(v, opts->filter.source))
				continue;
			json_array_foreach(sources, k, x)
				seen = seen || strcmp(json_string_value(x), s ? s : "") == 0;
			if (!seen)
				json_array_append_new(sources, json_string(s ? s : ""));
		}
		json_array_foreach(sources, i, v)
			json_array_append_new(windows, window_json(repo, json_string_value(v), all));
	}
	json_array_foreach(all, i, v)
		json_object_del(v, "wal_segment_size");
	*out = json_pack("{s:s, s:s, s:b, s:O, s:O}", "repository", repo_url(repo), "time_zone", tz ? tz : "UTC",
					 "filtered", f->id || f->source || f->kind || f->database || f->since || f->until,
					 "backups", shown, "windows", windows);
	if (out_damaged != NULL)
		*out_damaged = damaged;
done:
	json_decref(all);
	json_decref(shown);
	json_decref(windows);
	json_decref(sources);
	repo_manifest_ids_free(ids, nids);
	if (have_plan)
		retention_plan_free(&plan);
	catalog_state_free(&st);
	return rc;
}

/* Copy the members keys (NULL-ended) that doc has into dst. */
static void
members_copy(json_t *dst, const json_t *doc, const char *const *keys)
{
	for (; *keys != NULL; keys++)
		if (json_object_get(doc, *keys) != NULL)
			json_object_set(dst, *keys, json_object_get(doc, *keys));
}

void
catalog_view_details(json_t *backup, Repo *repo)
{
	static const char *const vkeys[] = {"mode", "duration_ms", "bad_chunks", "chunks", NULL};
	static const char *const dkeys[] = {"times_ms", "rto_seconds", "rto_ok", "integrity_ok", NULL};
	const char *id = json_string_value(json_object_get(backup, "id"));

	for (int k = 0; k < 2 && id != NULL; k++)
	{
		CatalogType type = k == 0 ? CATALOG_VERIFY : CATALOG_DRILL;
		json_t *summary = json_object_get(backup, k == 0 ? "verify" : "drill");
		CatalogRecordList l = {0};
		json_t *doc = NULL;

		if (!json_is_object(summary))
			continue;
		if (catalog_records_list(repo, type, id, &l) == 0 && l.n > 0 &&
			catalog_record_read(repo, &l.items[l.n - 1], &doc) == 0 && json_is_object(doc))
		{
			members_copy(summary, doc, k == 0 ? vkeys : dkeys);
			/* records of verify before modes: "quick" is all they say */
			if (k == 0 && json_object_get(summary, "mode") == NULL && json_is_boolean(json_object_get(doc, "quick")))
				json_object_set_new(summary, "mode", json_string(json_is_true(json_object_get(doc, "quick")) ?
																  "quick" : "full"));
		}
		else
		{
			pv_log_debug("%s record of backup '%s': %s", catalog_type_name(type), id, pv_error_msg());
			pv_error_clear();
		}
		json_decref(doc);
		catalog_records_free(&l);
	}
}

/* ---- text ---- */

/* An ISO 8601 UTC text ("...Z") in zone tz: full, or cut to minutes ("2026-11-22T14:30"). */
static const char *
time_cell(char *out, size_t outsz, const json_t *iso, const char *tz, bool minutes)
{
	PvTime t;

	if (pv_time_parse(&t, json_string_value(iso), "UTC") < 0)
	{
		pv_error_clear();
		snprintf(out, outsz, "-");
		return out;
	}
	if (pv_time_format(out, outsz, t, tz ? tz : "UTC") < 0)
		pv_error_clear();
	if (minutes && strlen(out) >= 16)
		out[16] = '\0';
	return out;
}

/* END: "14:31", or "14:31+2d" when it ends on another day than it started. */
static const char *
end_cell(char *out, size_t outsz, const json_t *b, const char *tz)
{
	char s[PV_TIME_FORMAT_MAX], e[PV_TIME_FORMAT_MAX];
	PvTime ts, te;

	time_cell(s, sizeof(s), json_object_get(b, "start_time"), tz, true);
	time_cell(e, sizeof(e), json_object_get(b, "stop_time"), tz, true);
	if (strlen(e) < 16 || strlen(s) < 16)
	{
		snprintf(out, outsz, "-");
		return out;
	}
	if (memcmp(s, e, 10) == 0 ||
		pv_time_parse(&ts, json_string_value(json_object_get(b, "start_time")), "UTC") < 0 ||
		pv_time_parse(&te, json_string_value(json_object_get(b, "stop_time")), "UTC") < 0)
		snprintf(out, outsz, "%.5s", e + 11);
	else
		snprintf(out, outsz, "%.5s+%lldd", e + 11, (long long) ((te - ts) / (86400 * PV_USEC_PER_SEC) + 1));
	pv_error_clear();
	return out;
}

static const char *
jstr(const json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : def;
}

static uint64_t
juint(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t) json_integer_value(v) : 0;
}

/* A group's label: "source prod, logical, database app" ("-" for no source). */
static void
group_key(Buf *out, const json_t *b)
{
	const char *kind = jstr(b, "kind", "?");

	buf_printf(out, "source %s, %s", jstr(b, "source", "-"), kind);
	if (strcmp(kind, "logical") == 0)
	{
		if (json_is_string(json_object_get(b, "database")))
			buf_printf(out, ", database %s", jstr(b, "database", ""));
		else
			buf_append_str(out, ", every database");
	}
}

/* 105 columns, then the retention cell: 120 in all */
#define ROW_FMT "%-23s  %-16s  %-8s %6s %5s %6s %5s  %-12s %-12s %s\n"
#define RETENTION_WIDTH 15

static void
print_row(FILE *out, const json_t *b, const char *tz, PvTime now)
{
	char start[PV_TIME_FORMAT_MAX], end[PV_TIME_FORMAT_MAX], dur[16], sz[16], st[16], nw[16];
	char ver[32], dri[32], ret[64];
	const json_t *w = json_object_get(b, "wal");

	fprintf(out, ROW_FMT, jstr(b, "id", "?"), time_cell(start, sizeof(start), json_object_get(b, "start_time"), tz, true),
			end_cell(end, sizeof(end), b, tz),
			catalog_duration_short(dur, sizeof(dur), json_integer_value(json_object_get(b, "duration_ms"))),
			catalog_size_short(sz, sizeof(sz), juint(b, "size")), catalog_size_short(st, sizeof(st), juint(b, "stored")),
			catalog_size_short(nw, sizeof(nw), juint(b, "new")),
			catalog_record_cell(ver, sizeof(ver), json_object_get(b, "verify"), "BAD", now),
			catalog_record_cell(dri, sizeof(dri), json_object_get(b, "drill"), "FAIL", now),
			catalog_retention_cell(ret, sizeof(ret), json_object_get(b, "retention"),
								   json_is_true(json_object_get(b, "pinned")), RETENTION_WIDTH));
	if (json_is_object(w))
		fprintf(out, "%-23s  WAL %s..%s  %s..%s%s\n", "", jstr(w, "start_lsn", "?"), jstr(w, "stop_lsn", "?"),
				jstr(w, "start_wal", "?"), jstr(w, "stop_wal", "?"),
				json_is_false(json_object_get(b, "restorable")) ? "  NOT RESTORABLE: WAL missing" : "");
}

static void
print_window(FILE *out, const json_t *win, const char *tz)
{
	const json_t *from = json_object_get(win, "from"), *to = json_object_get(win, "to");
	char t[PV_TIME_FORMAT_MAX];
	size_t i, k;
	json_t *g, *id;

	fprintf(out, "\nrecoverable window, source %s (WAL archive '%s'):\n", jstr(win, "source", "-"),
			jstr(win, "archive_source", "?"));
	if (json_is_object(from))
		fprintf(out, "  from  %-25s  %-17s  end of backup %s (timeline %lld)\n",
				time_cell(t, sizeof(t), json_object_get(from, "time"), tz, false), jstr(from, "lsn", "?"),
				jstr(from, "backup", "?"), (long long) json_integer_value(json_object_get(from, "timeline")));
	else
		fprintf(out, "  from  -  (no kept physical backup has all its WAL archived)\n");
	if (json_is_object(to))
		fprintf(out, "  to    %-25s  %-17s  newest archived segment %s\n",
				json_is_string(json_object_get(to, "time")) ?
				time_cell(t, sizeof(t), json_object_get(to, "time"), tz, false) : "(time unknown)",
				jstr(to, "lsn", "?"), jstr(to, "segment", "?"));
	else
		fprintf(out, "  to    -  (no WAL archived)\n");
	json_array_foreach(json_object_get(win, "gaps"), i, g)
	{
		long long nseg = (long long) json_integer_value(json_object_get(g, "segments"));
		const json_t *cut = json_object_get(g, "backups_cut"), *broken = json_object_get(g, "backups_broken");

		if (nseg == 1)
			fprintf(out, "  GAP   %s missing (timeline %lld, %s..%s)\n", jstr(g, "first", "?"),
					(long long) json_integer_value(json_object_get(g, "timeline")), jstr(g, "from_lsn", "?"),
					jstr(g, "to_lsn", "?"));
		else
			fprintf(out, "  GAP   %s..%s missing (%lld segments, timeline %lld, %s..%s)\n", jstr(g, "first", "?"),
					jstr(g, "last", "?"), nseg, (long long) json_integer_value(json_object_get(g, "timeline")),
					jstr(g, "from_lsn", "?"), jstr(g, "to_lsn", "?"));
		if (json_array_size(cut) > 0)
		{
			fprintf(out, "        cannot recover past it:");
			json_array_foreach(cut, k, id)
				fprintf(out, "%s %s", k ? "," : "", json_string_value(id));
			fprintf(out, "\n");
		}
		if (json_array_size(broken) > 0)
		{
			fprintf(out, "        not restorable (their own WAL is missing):");
			json_array_foreach(broken, k, id)
				fprintf(out, "%s %s", k ? "," : "", json_string_value(id));
			fprintf(out, "\n");
		}
	}
	if (json_array_size(json_object_get(win, "gaps")) == 0 && json_is_object(to))
		fprintf(out, "  no gap in the archived WAL\n");
}

void
catalog_view_print(FILE *out, const json_t *doc, const char *tz, PvTime now)
{
	const json_t *backups = json_object_get(doc, "backups");
	json_t *groups = json_object(), *order = json_array();
	size_t i, k, damaged = 0;
	json_t *b, *key;

	if (json_array_size(backups) == 0)
	{
		/* one line, also when the archive has WAL: nothing to recover from */
		fprintf(out, "no backups %sin repository '%s'\n",
				json_is_true(json_object_get(doc, "filtered")) ? "match the filters " : "",
				jstr(doc, "repository", "?"));
		json_decref(groups);
		json_decref(order);
		return;
	}
	json_array_foreach(backups, i, b)
	{
		Buf label = PV_BUF_INIT;

		if (json_object_get(b, "error") != NULL)
		{
			damaged++;
			continue;
		}
		group_key(&label, b);
		if (json_object_get(groups, buf_cstr(&label)) == NULL)
		{
			json_object_set_new(groups, buf_cstr(&label), json_array());
			json_array_append_new(order, json_string(buf_cstr(&label)));
		}
		json_array_append(json_object_get(groups, buf_cstr(&label)), b);
		buf_free(&label);
	}
	json_array_foreach(order, k, key)
	{
		fprintf(out, "%s%s (times %s):\n", k ? "\n" : "", json_string_value(key), tz ? tz : "UTC");
		fprintf(out, ROW_FMT, "ID", "START", "END", "DUR", "SIZE", "STORED", "NEW", "VERIFY", "DRILL", "RETENTION");
		json_array_foreach(json_object_get(groups, json_string_value(key)), i, b)
			print_row(out, b, tz, now);
	}
	if (damaged > 0)
	{
		fprintf(out, "\n");
		json_array_foreach(backups, i, b)
			if (json_object_get(b, "error") != NULL)
				fprintf(out, "%-23s  DAMAGED: %s\n", jstr(b, "id", "?"), jstr(b, "error", "?"));
	}
	json_array_foreach(json_object_get(doc, "windows"), i, b)
		print_window(out, b, tz);
	json_decref(groups);
	json_decref(order);
}

/* "verify     ok 2h ago (full, took 1.2s)", "drill      FAILED 1d ago (total 40.1s, RTO exceeded)" */
static void
record_line(FILE *out, const char *label, const json_t *r, const char *bad, PvTime now)
{
	const json_t *times = json_object_get(r, "times_ms");
	const json_t *dur = json_object_get(r, "duration_ms");
	char cell[32], d[32];
	Buf extra = PV_BUF_INIT;

	if (json_is_string(json_object_get(r, "mode")))
		buf_printf(&extra, "%s", json_string_value(json_object_get(r, "mode")));
	if (json_is_integer(dur))
		buf_printf(&extra, "%stook %s", extra.len ? ", " : "", pv_elapsed_format(d, sizeof(d), json_integer_value(dur)));
	if (json_is_integer(json_object_get(r, "bad_chunks")) && json_integer_value(json_object_get(r, "bad_chunks")) > 0)
		buf_printf(&extra, "%s%lld bad chunks", extra.len ? ", " : "",
				   (long long) json_integer_value(json_object_get(r, "bad_chunks")));
	if (json_is_integer(json_object_get(times, "total")))
		buf_printf(&extra, "%stotal %s", extra.len ? ", " : "",
				   pv_elapsed_format(d, sizeof(d), json_integer_value(json_object_get(times, "total"))));
	if (json_is_false(json_object_get(r, "integrity_ok")))
		buf_printf(&extra, "%schecks failed", extra.len ? ", " : "");
	else if (json_is_false(json_object_get(r, "rto_ok")))
		buf_printf(&extra, "%sRTO exceeded", extra.len ? ", " : "");
	fprintf(out, "%-10s %s", label, catalog_record_cell(cell, sizeof(cell), r, bad, now));
	if (extra.len > 0)
		fprintf(out, " (%s)", buf_cstr(&extra));
	fprintf(out, "\n");
	buf_free(&extra);
}

void
catalog_view_print_backup(FILE *out, const json_t *b, const char *tz, PvTime now)
{
	char t1[PV_TIME_FORMAT_MAX], t2[PV_TIME_FORMAT_MAX], d[16], a[32], c[32], e[32], ret[128];
	const json_t *w = json_object_get(b, "wal"), *rt = json_object_get(b, "recovers_to");

	fprintf(out, "backup     %s (%s)\n", jstr(b, "id", "?"), jstr(b, "kind", "?"));
	if (json_is_string(json_object_get(b, "source")))
		fprintf(out, "source     %s\n", jstr(b, "source", ""));
	fprintf(out, "host       %s\n", jstr(b, "host", "?"));
	fprintf(out, "started    %s\n", time_cell(t1, sizeof(t1), json_object_get(b, "start_time"), tz, false));
	fprintf(out, "finished   %s (took %s)\n", time_cell(t2, sizeof(t2), json_object_get(b, "stop_time"), tz, false),
			catalog_duration_short(d, sizeof(d), json_integer_value(json_object_get(b, "duration_ms"))));
	fprintf(out, "size       %s, stored %s, new %s, %llu items\n", pv_size_format(a, sizeof(a), juint(b, "size")),
			pv_size_format(c, sizeof(c), juint(b, "stored")), pv_size_format(e, sizeof(e), juint(b, "new")),
			(unsigned long long) juint(b, "items"));
	if (json_is_object(w))
	{
		fprintf(out, "WAL        %s..%s, segments %s..%s (timeline %lld)\n", jstr(w, "start_lsn", "?"),
				jstr(w, "stop_lsn", "?"), jstr(w, "start_wal", "?"), jstr(w, "stop_wal", "?"),
				(long long) json_integer_value(json_object_get(w, "timeline")));
		if (json_is_object(rt))
			fprintf(out, "recovery   can reach %s (segment %s)\n", jstr(rt, "lsn", "?"), jstr(rt, "segment", "?"));
		else if (json_is_false(json_object_get(b, "restorable")))
			fprintf(out, "recovery   NOT RESTORABLE: WAL it needs is missing from the archive\n");
	}
	record_line(out, "verify", json_object_get(b, "verify"), "DAMAGED", now);
	record_line(out, "drill", json_object_get(b, "drill"), "FAILED", now);
	fprintf(out, "retention  %s\n", catalog_retention_cell(ret, sizeof(ret), json_object_get(b, "retention"),
														  json_is_true(json_object_get(b, "pinned")), 0));
}
