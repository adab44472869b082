/*
 * retention.c: the retention engine and the expire plan (see retention.h
 * for the rules; this file only says how).
 *
 * The engine sorts a group newest first (an index array, the caller's array
 * stays as it is), then runs each period rule over it: a backup is kept for
 * a rule when its period was not seen yet and fewer than N periods are kept.
 * "Seen" is a set, not "the previous backup's period", because local
 * periods are not monotonic in UTC order everywhere (zones whose clocks go
 * back across midnight revisit the previous day).
 */
#include "ops/retention.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/units.h"
#include "ops/catalog.h"
#include "pg/wal/archive.h"
#include "pg/wal/wal.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[RETENTION_NREASONS] = {
	"newest", "pinned", "hourly", "daily", "weekly", "monthly", "yearly", "within", "min",
	"no-policy", "unreadable",
};

const char *
retention_reason_name(uint32_t bit)
{
	for (int i = 0; i < RETENTION_NREASONS; i++)
		if (bit == (1u << i))
			return reason_names[i];
	return "?";
}

void
retention_reasons_format(uint32_t reasons, Buf *out)
{
	bool first = true;

	for (int i = 0; i < RETENTION_NREASONS; i++)
		if (reasons & (1u << i))
		{
			if (!first)
				buf_append_byte(out, ',');
			buf_append_str(out, reason_names[i]);
			first = false;
		}
}

json_t *
retention_reasons_json(uint32_t reasons)
{
	json_t *a = json_array();

	for (int i = 0; i < RETENTION_NREASONS; i++)
		if (reasons & (1u << i))
			json_array_append_new(a, json_string(reason_names[i]));
	return a;
}

/* ---- policies ---- */

bool
retention_policy_empty(const RetentionPolicy *p)
{
	return p->hourly == 0 && p->daily == 0 && p->weekly == 0 && p->monthly == 0 && p->yearly == 0 &&
		p->within_secs == 0;
}

static int64_t *
policy_field(RetentionPolicy *p, const char *name, size_t len)
{
	static const struct
	{
		const char *name;
		size_t off;
	} fields[] = {
		{"hourly", offsetof(RetentionPolicy, hourly)},
		{"daily", offsetof(RetentionPolicy, daily)},
		{"weekly", offsetof(RetentionPolicy, weekly)},
		{"monthly", offsetof(RetentionPolicy, monthly)},
		{"yearly", offsetof(RetentionPolicy, yearly)},
		{"within", offsetof(RetentionPolicy, within_secs)},
		{"min", offsetof(RetentionPolicy, min)},
	};

	for (size_t i = 0; i < PV_ARRAY_LEN(fields); i++)
		if (strlen(fields[i].name) == len && strncmp(fields[i].name, name, len) == 0)
			return (int64_t *) ((char *) p + fields[i].off);
	return NULL;
}

/* PV_ECONFIG naming the spec, the item (len bytes at item; may be empty) and the problem. */
static int
policy_bad(const char *spec, const char *item, size_t len, const char *problem)
{
	if (len > 0)
		pv_error_set(PV_ECONFIG, "invalid retention policy '%s': '%.*s' %s", spec, (int) len, item, problem);
	else
		pv_error_set(PV_ECONFIG, "invalid retention policy '%s': %s", spec, problem);
	pv_error_hint("write it as 'hourly=24,daily=7,weekly=4,monthly=12,yearly=5,within=2d,min=3' "
				  "(any of them), or 'none'");
	return PV_ECONFIG;
}

int
retention_policy_parse(RetentionPolicy *out, const char *spec)
{
	RetentionPolicy p = {0};
	const char *s = spec;

	while (isspace((unsigned char) *s))
		s++;
	if (strncmp(s, "none", 4) == 0)
	{
		const char *e = s + 4;

		while (isspace((unsigned char) *e))
			e++;
		if (*e == '\0')
		{
			*out = p;
			return PV_OK;
		}
	}
	if (*s == '\0')
		return policy_bad(spec, "", 0, "it is empty");
	while (*s)
	{
		const char *item, *eq, *end, *name_end;
		int64_t *field;
		char value[64];
		size_t vlen;

		while (isspace((unsigned char) *s))
			s++;
		item = s;
		end = strchr(s, ',');
		if (end == NULL)
			end = s + strlen(s);
		eq = memchr(item, '=', (size_t) (end - item));
		if (eq == NULL)
			return policy_bad(spec, item, (size_t) (end - item), "is not NAME=VALUE");
		name_end = eq;
		while (name_end > item && isspace((unsigned char) name_end[-1]))
			name_end--;
		field = policy_field(&p, item, (size_t) (name_end - item));
		if (field == NULL)
			return policy_bad(spec, item, (size_t) (name_end - item), "is not a rule (hourly, daily, weekly, monthly, yearly, within, min)");
		eq++;
		while (eq < end && isspace((unsigned char) *eq))
			eq++;
		vlen = (size_t) (end - eq);
		while (vlen > 0 && isspace((unsigned char) eq[vlen - 1]))
			vlen--;
		if (vlen == 0 || vlen >= sizeof(value))
			return policy_bad(spec, item, (size_t) (end - item), "has no usable value");
		memcpy(value, eq, vlen);
		value[vlen] = '\0';
		if (field == &p.within_secs)
		{
			if (pv_duration_parse(field, value) < 0)
				return policy_bad(spec, item, (size_t) (end - item), "is not a duration (e.g. 36h, 14d)");
		}
		else
		{
			char *e;
			long long v = strtoll(value, &e, 10);

			if (*e != '\0' || v < 0 || v > 1000000000)
				return policy_bad(spec, item, (size_t) (end - item), "is not a count (0 or more)");
			*field = v;
		}
		s = *end ? end + 1 : end;
		if (*end == ',' && *s == '\0')
			return policy_bad(spec, "", 0, "it ends with a comma");
	}
	pv_error_clear();
	*out = p;
	return PV_OK;
}

void
retention_policy_format(const RetentionPolicy *p, Buf *out)
{
	static const char *const names[] = {"hourly", "daily", "weekly", "monthly", "yearly"};
	const int64_t vals[] = {p->hourly, p->daily, p->weekly, p->monthly, p->yearly};
	size_t start = out->len;

	for (size_t i = 0; i < PV_ARRAY_LEN(names); i++)
		if (vals[i] > 0)
			buf_printf(out, "%s%s=%lld", out->len > start ? "," : "", names[i], (long long) vals[i]);
	if (p->within_secs > 0)
	{
		char d[64];

		pv_duration_format(d, sizeof(d), p->within_secs);
		/* "1d 12h" -> "1d12h": a value without blanks reads back in one piece */
		for (char *r = d, *w = d;; r++)
			if (*r != ' ' && (*w++ = *r) == '\0')
				break;
		buf_printf(out, "%swithin=%s", out->len > start ? "," : "", d);
	}
	if (p->min > 0)
		buf_printf(out, "%smin=%lld", out->len > start ? "," : "", (long long) p->min);
	if (out->len == start)
		buf_append_str(out, "none");
}

json_t *
retention_policy_json(const RetentionPolicy *p)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "hourly", (json_int_t) p->hourly,
					 "daily", (json_int_t) p->daily, "weekly", (json_int_t) p->weekly,
					 "monthly", (json_int_t) p->monthly, "yearly", (json_int_t) p->yearly,
					 "within_seconds", (json_int_t) p->within_secs, "min", (json_int_t) p->min);
}

/* The current error (a bad zone name from the configuration) as PV_ECONFIG. */
static int
as_config_error(void)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", pv_error_msg());
	return pv_error_set(PV_ECONFIG, "%s", msg);
}

static const CfgSection *
source_section(const PvConfig *cfg, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return NULL;
	for (int i = 0; i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

/* The keep-* keys of one section; false when none is set. */
static bool
policy_from_keys(RetentionPolicy *out, const PvConfig *cfg, const CfgSection *sec)
{
	static const char *const keys[] = {"keep-hourly", "keep-daily", "keep-weekly", "keep-monthly",
		"keep-yearly", "keep-within", "keep-min"};
	bool any = false;

	for (size_t i = 0; i < PV_ARRAY_LEN(keys); i++)
		any |= cfg_str(cfg, sec, keys[i]) != NULL;
	if (!any)
		return false;
	out->hourly = cfg_int(cfg, sec, "keep-hourly");
	out->daily = cfg_int(cfg, sec, "keep-daily");
	out->weekly = cfg_int(cfg, sec, "keep-weekly");
	out->monthly = cfg_int(cfg, sec, "keep-monthly");
	out->yearly = cfg_int(cfg, sec, "keep-yearly");
	out->within_secs = cfg_str(cfg, sec, "keep-within") ? cfg_duration(cfg, sec, "keep-within") : 0;
	out->min = cfg_int(cfg, sec, "keep-min");
	return true;
}

/* retention-KIND of one section: 1 found, 0 not set, < 0 error. */
static int
policy_from_kind_key(RetentionPolicy *out, const PvConfig *cfg, const CfgSection *sec, const char *kind,
					 const char *where)
{
	char key[64];
	const char *v;
	int rc;

	if (kind == NULL || strlen(kind) > 40)
		return 0;
	snprintf(key, sizeof(key), "retention-%s", kind);
	/* Only the kinds options.def knows have a key. */
	if (strcmp(kind, "logical") != 0 && strcmp(kind, "physical") != 0 && strcmp(kind, "file") != 0)
		return 0;
	if ((v = cfg_str(cfg, sec, key)) == NULL)
		return 0;
	if ((rc = retention_policy_parse(out, v)) < 0)
		return pv_error_prefix(rc, "%s %s", where, key);
	return 1;
}

int
retention_policy_for(RetentionPolicy *out, const char **out_tz, char **out_origin,
					 const PvConfig *cfg, const char *source, const char *kind)
{
	const CfgSection *sec = source_section(cfg, source);
	RetentionPolicy p = {0};
	char *origin = NULL;
	const char *tz = NULL;
	char where[300];
	int rc;

	if (sec != NULL)
	{
		snprintf(where, sizeof(where), "[source:%s]", sec->name);
		if ((rc = policy_from_kind_key(&p, cfg, sec, kind, where)) < 0)
			return rc;
		if (rc == 1)
			origin = pv_asprintf("%s retention-%s", where, kind);
		else if (policy_from_keys(&p, cfg, sec))
			origin = pv_asprintf("%s keep-*", where);
		tz = cfg_str(cfg, sec, "time-zone");
	}
	if (origin == NULL)
	{
		if ((rc = policy_from_kind_key(&p, cfg, NULL, kind, "[global]")) < 0)
			return rc;
		if (rc == 1)
			origin = pv_asprintf("[global] retention-%s", kind);
		else if (policy_from_keys(&p, cfg, NULL))
			origin = pv_strdup("[global] keep-*");
		else
			origin = pv_strdup("none");
	}
	if (tz == NULL)
		tz = cfg_str(cfg, NULL, "time-zone");
	if (tz != NULL && (rc = pv_time_zone_check(tz)) < 0)
	{
		pv_free(origin);
		return as_config_error();
	}
	*out = p;
	if (out_tz != NULL)
		*out_tz = tz;
	if (out_origin != NULL)
		*out_origin = origin;
	else
		pv_free(origin);
	return PV_OK;
}

/* ---- the engine ---- */

/* A small open-addressing set of period keys (never holds INT64_MIN). */
typedef struct KeySet
{
	int64_t *slots;
	size_t cap;
} KeySet;

#define KEYSET_EMPTY INT64_MIN

static void
keyset_init(KeySet *s, size_t n)
{
	s->cap = 16;
	while (s->cap < 2 * n + 2)
		s->cap *= 2;
	s->slots = pv_malloc(s->cap * sizeof(int64_t));
	for (size_t i = 0; i < s->cap; i++)
		s->slots[i] = KEYSET_EMPTY;
}

/* Adds key; returns true if it was new. */
static bool
keyset_add(KeySet *s, int64_t key)
{
	size_t i = (size_t) ((uint64_t) key * 0x9E3779B97F4A7C15ull >> 7) & (s->cap - 1);

	while (s->slots[i] != KEYSET_EMPTY)
	{
		if (s->slots[i] == key)
			return false;
		i = (i + 1) & (s->cap - 1);
	}
	s->slots[i] = key;
	return true;
}

/* The period key of a calendar for one rule. */
static int64_t
period_key(const PvCalendar *c, uint32_t rule)
{
	int64_t day = pv_days_from_civil(c->year, c->month, c->day);

	switch (rule)
	{
		case RETENTION_HOURLY:
			/* the repeated hour of a fall-back differs in its offset */
			return ((day * 24 + c->hour) << 18) | (int64_t) (c->utc_offset + 86400);
		case RETENTION_DAILY:
			return day;
		case RETENTION_WEEKLY:
			return (int64_t) c->iso_year * 100 + c->iso_week;
		case RETENTION_MONTHLY:
			return (int64_t) c->year * 12 + (c->month - 1);
		default:
			return c->year;
	}
}

static int
newest_first(const void *a, const void *b, void *payload)
{
	const RetentionEntry *base = payload;
	const RetentionEntry *x = &base[*(const size_t *) a], *y = &base[*(const size_t *) b];

	if (x->start != y->start)
		return x->start > y->start ? -1 : 1;
	return -strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

int
retention_apply(RetentionEntry *entries, size_t n, const RetentionPolicy *p, const char *tz)
{
	static const uint32_t rules[] = {RETENTION_HOURLY, RETENTION_DAILY, RETENTION_WEEKLY,
		RETENTION_MONTHLY, RETENTION_YEARLY};
	const int64_t counts[] = {p->hourly, p->daily, p->weekly, p->monthly, p->yearly};
	PvCalendar *cal = NULL;
	size_t *order = NULL;
	size_t kept = 0;
	int rc = PV_OK;

	if (n == 0)
		return tz ? pv_time_zone_check(tz) : PV_OK;
	order = pv_malloc(n * sizeof(size_t));
	cal = pv_malloc(n * sizeof(PvCalendar));
	for (size_t i = 0; i < n; i++)
	{
		order[i] = i;
		entries[i].reasons = 0;
	}
	qsort_r(order, n, sizeof(size_t), newest_first, entries);
	for (size_t i = 0; i < n; i++)
		if ((rc = pv_time_calendar(&cal[i], entries[order[i]].start, tz)) < 0)
			goto done;

	entries[order[0]].reasons |= RETENTION_NEWEST;
	for (size_t i = 0; i < n; i++)
		if (entries[i].pinned)
			entries[i].reasons |= RETENTION_PINNED;
	if (retention_policy_empty(p))
	{
		for (size_t i = 0; i < n; i++)
			entries[i].reasons |= RETENTION_NO_POLICY;
		goto done;
	}
	for (size_t r = 0; r < PV_ARRAY_LEN(rules); r++)
	{
		KeySet seen;
		int64_t left = counts[r];

		if (left <= 0)
			continue;
		keyset_init(&seen, n < (size_t) left ? n : (size_t) left);
		for (size_t i = 0; i < n && left > 0; i++)
		{
			int64_t key = period_key(&cal[i], rules[r]);

			if (!keyset_add(&seen, key))
				continue;
			entries[order[i]].reasons |= rules[r];
			left--;
		}
		pv_free(seen.slots);
	}
	if (p->within_secs > 0)
	{
		PvTime newest = entries[order[0]].start;

		for (size_t i = 0; i < n; i++)
			if (entries[order[i]].start >= newest - p->within_secs * PV_USEC_PER_SEC)
				entries[order[i]].reasons |= RETENTION_WITHIN;
	}
	/* The floor counts what the policy keeps; a pin is a hold outside the policy. */
	for (size_t i = 0; i < n; i++)
		kept += (entries[i].reasons & ~RETENTION_PINNED) != 0;
	for (size_t i = 0; i < n && kept < (size_t) p->min; i++)
		if ((entries[order[i]].reasons & ~RETENTION_PINNED) == 0)
		{
			entries[order[i]].reasons |= RETENTION_MIN;
			kept++;
		}
done:
	if (rc < 0)
		for (size_t i = 0; i < n; i++)
			entries[i].reasons = 0;
	pv_free(order);
	pv_free(cal);
	return rc;
}

void
retention_period_label(char *out, size_t outsz, uint32_t rule, PvTime t, const char *tz)
{
	PvCalendar c;

	out[0] = '\0';
	if (pv_time_calendar(&c, t, tz) < 0)
	{
		pv_error_clear();
		return;
	}
	switch (rule)
	{
		case RETENTION_HOURLY:
			snprintf(out, outsz, "%04d-%02d-%02d %02dh (%c%02d:%02d)", c.year, c.month, c.day, c.hour,
					 c.utc_offset < 0 ? '-' : '+', abs(c.utc_offset) / 3600, abs(c.utc_offset) % 3600 / 60);
			break;
		case RETENTION_DAILY:
			snprintf(out, outsz, "%04d-%02d-%02d", c.year, c.month, c.day);
			break;
		case RETENTION_WEEKLY:
			snprintf(out, outsz, "%04d-W%02d", c.iso_year, c.iso_week);
			break;
		case RETENTION_MONTHLY:
			snprintf(out, outsz, "%04d-%02d", c.year, c.month);
			break;
		case RETENTION_YEARLY:
			snprintf(out, outsz, "%04d", c.year);
			break;
	}
}

/* ---- the plan ---- */

/* Start time from a backup id (for unreadable manifests). */
static PvTime
id_start(const char *id)
{
	int v[6];

	if (sscanf(id, "%4d%2d%2dT%2d%2d%2dZ", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return 0;
	return ((pv_days_from_civil(v[0], v[1], v[2]) * 24 + v[3]) * 3600 + (int64_t) v[4] * 60 + v[5]) *
		PV_USEC_PER_SEC;
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static size_t
group_find_or_add(RetentionPlan *plan, const RetentionItem *it, size_t *cap)
{
	for (size_t g = 0; g < plan->ngroups; g++)
	{
		RetentionGroup *gr = &plan->groups[g];

		if (strcmp(gr->source, it->source) == 0 && strcmp(gr->kind, it->kind) == 0 &&
			str_eq(gr->database, it->database))
			return g;
	}
	if (plan->ngroups == *cap)
	{
		*cap = *cap ? 2 * *cap : 8;
		plan->groups = pv_realloc(plan->groups, *cap * sizeof(RetentionGroup));
	}
	memset(&plan->groups[plan->ngroups], 0, sizeof(RetentionGroup));
	plan->groups[plan->ngroups].source = pv_strdup(it->source);
	plan->groups[plan->ngroups].kind = pv_strdup(it->kind);
	plan->groups[plan->ngroups].database = it->database ? pv_strdup(it->database) : NULL;
	return plan->ngroups++;
}

/* Load one manifest into an item; an unreadable one is kept with its error. */
static int
item_load(RetentionItem *it, Repo *repo, const char *id)
{
	RepoManifest *m = NULL;
	const json_t *db;
	int rc;

	it->id = pv_strdup(id);
	it->group = (size_t) -1;
	if ((rc = repo_manifest_load(&m, repo, id)) < 0)
	{
		if (rc != PV_ECORRUPT && rc != PV_ENOTFOUND)
			return rc;			/* the storage failed: stop, deciding on a partial view is wrong */
		it->error = pv_strdup(pv_error_msg());
		it->source = pv_strdup("");
		it->start = it->stop = id_start(id);
		it->reasons = RETENTION_UNREADABLE;
		pv_error_clear();
		return PV_OK;
	}
	it->source = pv_strdup(repo_manifest_source(m));
	it->kind = pv_strdup(repo_manifest_kind(m));
	it->start = repo_manifest_start_time(m);
	it->stop = repo_manifest_stop_time(m);
	db = json_object_get(repo_manifest_metadata(m), "database");
	if (strcmp(it->kind, "logical") == 0)
		it->database = pv_strdup(json_is_string(db) ? json_string_value(db) : "");
	if (strcmp(it->kind, "physical") == 0)
	{
		const json_t *sw = json_object_get(repo_manifest_metadata(m), "start_wal");
		const json_t *sz = json_object_get(repo_manifest_metadata(m), "wal_segment_size");

		it->start_wal = json_is_string(sw) ? pv_strdup(json_string_value(sw)) : NULL;
		it->wal_segment_size = json_is_integer(sz) && json_integer_value(sz) > 0 ? (uint64_t) json_integer_value(sz) : 0;
	}
	repo_manifest_free(m);
	return PV_OK;
}

static int
plan_decide(RetentionPlan *plan, const PvConfig *cfg, const RetentionPolicy *override)
{
	RetentionEntry *e = pv_calloc(plan->nitems ? plan->nitems : 1, sizeof(RetentionEntry));
	size_t *map = pv_calloc(plan->nitems ? plan->nitems : 1, sizeof(size_t));
	int rc = PV_OK;

	for (size_t g = 0; g < plan->ngroups && rc == 0; g++)
	{
		RetentionGroup *gr = &plan->groups[g];
		const char *tz = NULL;
		size_t n = 0;

		if ((rc = retention_policy_for(&gr->policy, &tz, &gr->origin, cfg, gr->source, gr->kind)) < 0)
			break;
		if (override != NULL)
		{
			/* the command line's policy replaces every configured one; the zone stays */
			gr->policy = *override;
			pv_free(gr->origin);
			gr->origin = pv_strdup("--policy");
		}
		gr->time_zone = tz ? pv_strdup(tz) : NULL;
		for (size_t i = 0; i < plan->nitems; i++)
			if (plan->items[i].group == g)
			{
				e[n] = (RetentionEntry) {.id = plan->items[i].id, .start = plan->items[i].start,
					.pinned = plan->items[i].pinned};
				map[n++] = i;
			}
		if ((rc = retention_apply(e, n, &gr->policy, gr->time_zone)) < 0)
		{
			rc = as_config_error();
			break;
		}
		gr->nitems = n;
		for (size_t k = 0; k < n; k++)
		{
			plan->items[map[k]].reasons = e[k].reasons;
			if (e[k].reasons == 0)
			{
				gr->nexpire++;
				plan->nexpire++;
			}
		}
	}
	pv_free(e);
	pv_free(map);
	return rc;
}

int
retention_plan_build(RetentionPlan *out, Repo *repo, const PvConfig *cfg, const RetentionPlanOpts *opts)
{
	RetentionPlanOpts none = {0};
	CatalogPinList pins = {0};
	char **ids = NULL;
	size_t nids = 0, gcap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (opts == NULL)
		opts = &none;
	if ((rc = repo_manifest_ids(repo, &ids, &nids)) < 0 || (rc = catalog_pins(repo, false, &pins)) < 0)
		goto done;
	out->items = pv_calloc(nids ? nids : 1, sizeof(RetentionItem));
	for (size_t i = 0; i < nids; i++)
	{
		RetentionItem *it = &out->items[out->nitems];

		if ((rc = item_load(it, repo, ids[i])) < 0)
		{
			out->nitems++;		/* freed with the plan */
			goto done;
		}
		out->nitems++;
		it->pinned = catalog_pins_has(&pins, it->id);
		if (it->kind == NULL)
		{
			/* Unreadable: shown (it cannot be filtered by what it does not say) and kept. */
			if (it->pinned)
				it->reasons |= RETENTION_PINNED;
			out->nunreadable++;
			continue;
		}
		if ((opts->source != NULL && strcmp(opts->source, it->source) != 0) ||
			(opts->kind != NULL && strcmp(opts->kind, it->kind) != 0))
		{
			out->nitems--;
			pv_free(it->id);
			pv_free(it->source);
			pv_free(it->kind);
			pv_free(it->database);
			memset(it, 0, sizeof(*it));
			continue;
		}
		it->group = group_find_or_add(out, it, &gcap);
	}
	rc = plan_decide(out, cfg, opts->policy);
done:
	if (rc < 0)
		retention_plan_free(out);
	catalog_pins_free(&pins);
	repo_manifest_ids_free(ids, nids);
	return rc;
}

void
retention_plan_free(RetentionPlan *plan)
{
	for (size_t i = 0; i < plan->nitems; i++)
	{
		RetentionItem *it = &plan->items[i];

		pv_free(it->id);
		pv_free(it->source);
		pv_free(it->kind);
		pv_free(it->database);
		pv_free(it->error);
		pv_free(it->start_wal);
	}
	for (size_t g = 0; g < plan->ngroups; g++)
	{
		RetentionGroup *gr = &plan->groups[g];

		pv_free(gr->source);
		pv_free(gr->kind);
		pv_free(gr->database);
		pv_free(gr->time_zone);
		pv_free(gr->origin);
	}
	pv_free(plan->items);
	pv_free(plan->groups);
	memset(plan, 0, sizeof(*plan));
}

void
retention_group_label(const RetentionGroup *g, Buf *out)
{
	buf_printf(out, "%s %s", g->source[0] ? g->source : "-", g->kind);
	if (g->database != NULL)
		buf_printf(out, " %s", g->database);
}

const RetentionItem *
retention_plan_find(const RetentionPlan *plan, const char *id)
{
	for (size_t i = 0; i < plan->nitems; i++)
		if (strcmp(plan->items[i].id, id) == 0)
			return &plan->items[i];
	return NULL;
}

static json_t *
item_json(const RetentionPlan *plan, const RetentionItem *it)
{
	const RetentionGroup *g = it->group != (size_t) -1 ? &plan->groups[it->group] : NULL;
	json_t *j = json_object(), *periods = json_object();
	char t[PV_TIME_FORMAT_MAX], label[64];

	json_object_set_new(j, "id", json_string(it->id));
	json_object_set_new(j, "source", it->source[0] ? json_string(it->source) : json_null());
	json_object_set_new(j, "kind", it->kind ? json_string(it->kind) : json_null());
	if (it->database != NULL)
		json_object_set_new(j, "database", json_string(it->database));
	json_object_set_new(j, "start_time", json_string(pv_time_format_utc(t, sizeof(t), it->start)));
	json_object_set_new(j, "action", json_string(it->reasons ? "keep" : "expire"));
	json_object_set_new(j, "reasons", retention_reasons_json(it->reasons));
	json_object_set_new(j, "pinned", json_boolean(it->pinned));
	for (uint32_t bit = RETENTION_HOURLY; bit <= RETENTION_YEARLY && g != NULL; bit <<= 1)
		if (it->reasons & bit)
		{
			retention_period_label(label, sizeof(label), bit, it->start, g->time_zone);
			json_object_set_new(periods, retention_reason_name(bit), json_string(label));
		}
	json_object_set_new(j, "periods", periods);
	if (it->error != NULL)
		json_object_set_new(j, "error", json_string(it->error));
	return j;
}

json_t *
retention_plan_json(const RetentionPlan *plan)
{
	json_t *groups = json_array(), *backups = json_array();

	for (size_t g = 0; g < plan->ngroups; g++)
	{
		const RetentionGroup *gr = &plan->groups[g];
		Buf pol = PV_BUF_INIT;

		retention_policy_format(&gr->policy, &pol);
		json_array_append_new(groups, json_pack("{s:o, s:s, s:o, s:s, s:o, s:s, s:o, s:I, s:I}",
												"source", gr->source[0] ? json_string(gr->source) : json_null(),
												"kind", gr->kind,
												"database", gr->database ? json_string(gr->database) : json_null(),
												"policy", buf_cstr(&pol),
												"rules", retention_policy_json(&gr->policy),
												"policy_from", gr->origin ? gr->origin : "none",
												"time_zone", gr->time_zone ? json_string(gr->time_zone) : json_null(),
												"backups", (json_int_t) gr->nitems,
												"expire", (json_int_t) gr->nexpire));
		buf_free(&pol);
	}
	for (size_t i = 0; i < plan->nitems; i++)
		json_array_append_new(backups, item_json(plan, &plan->items[i]));
	return json_pack("{s:o, s:o, s:I, s:I, s:I}", "groups", groups, "backups", backups,
					 "expire", (json_int_t) plan->nexpire,
					 "keep", (json_int_t) (plan->nitems - plan->nexpire),
					 "unreadable", (json_int_t) plan->nunreadable);
}

/* ---- WAL ---- */

typedef struct WalScan
{
	RetentionWal *w;
	uint64_t seg_size;
	uint64_t keep_segno;
	size_t cap;
} WalScan;

static int
wal_scan_cb(const char *name, uint64_t stored, void *payload)
{
	WalScan *sc = payload;
	uint32_t tl;
	uint64_t segno;
	RetentionWalFile *f;

	/* history files (no segment number) always stay */
	if (strlen(name) < 24 || pgwal_segment_parse(&tl, &segno, name, sc->seg_size) < 0 || segno >= sc->keep_segno)
	{
		pv_error_clear();
		sc->w->kept++;
		return 0;
	}
	if (sc->w->nfiles == sc->cap)
	{
		sc->cap = sc->cap ? 2 * sc->cap : 64;
		sc->w->files = pv_realloc(sc->w->files, sc->cap * sizeof(RetentionWalFile));
	}
	f = &sc->w->files[sc->w->nfiles++];
	f->name = pv_strdup(name);
	f->timeline = tl;
	f->segno = segno;
	f->stored = stored;
	sc->w->bytes += stored;
	return 0;
}

static int
wal_file_cmp(const void *a, const void *b)
{
	const RetentionWalFile *x = a, *y = b;

	if (x->segno != y->segno)
		return x->segno < y->segno ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Judge one source's archive against its kept physical backups (group g). */
static int
wal_judge(RetentionWal *w, Repo *repo, const RetentionPlan *plan, const char *plan_source)
{
	WalScan sc = {.w = w};
	const char *oldest = NULL;
	int rc;

	for (size_t i = 0; i < plan->nitems; i++)
	{
		const RetentionItem *it = &plan->items[i];
		uint32_t tl;
		uint64_t segno;

		if (it->kind == NULL || strcmp(it->kind, "physical") != 0 || strcmp(it->source, plan_source) != 0 ||
			it->reasons == 0)
			continue;
		if (it->start_wal == NULL || it->wal_segment_size == 0 ||
			(sc.seg_size != 0 && sc.seg_size != it->wal_segment_size))
		{
			w->reason = pv_asprintf("kept backup %s does not record its first WAL segment and segment size",
									it->id);
			return PV_OK;
		}
		sc.seg_size = it->wal_segment_size;
		if (pgwal_segment_parse(&tl, &segno, it->start_wal, sc.seg_size) < 0)
		{
			pv_error_clear();
			w->reason = pv_asprintf("kept backup %s records an invalid first WAL segment '%s'", it->id,
									it->start_wal);
			return PV_OK;
		}
		if (oldest == NULL || segno < sc.keep_segno)
		{
			sc.keep_segno = segno;
			oldest = it->start_wal;
		}
	}
	if (oldest == NULL)
	{
		w->reason = pv_strdup("no physical backup of this source is kept");
		return PV_OK;
	}
	w->keep_from = pv_strdup(oldest);
	if ((rc = pgwal_list(repo, w->source, 0, wal_scan_cb, &sc)) < 0)
		return pv_error_prefix(rc, "WAL archive of source '%s'", w->source);
	if (w->nfiles > 1)
		pv_qsort(w->files, w->nfiles, sizeof(RetentionWalFile), wal_file_cmp);
	return PV_OK;
}

int
retention_wal_plan(RetentionWalPlan *out, Repo *repo, const RetentionPlan *plan)
{
	int rc = PV_OK;

	memset(out, 0, sizeof(*out));
	for (size_t g = 0; g < plan->ngroups && rc == 0; g++)
	{
		const RetentionGroup *gr = &plan->groups[g];
		const char *source = gr->source[0] ? gr->source : PGWAL_DEFAULT_SOURCE;
		RetentionWal *w;

		if (strcmp(gr->kind, "physical") != 0)
			continue;
		out->sources = pv_realloc(out->sources, (out->n + 1) * sizeof(RetentionWal));
		w = &out->sources[out->n++];
		memset(w, 0, sizeof(*w));
		w->source = pv_strdup(source);
		if (pgwal_source_check(source) < 0)
		{
			w->reason = pv_strdup(pv_error_msg());
			pv_error_clear();
			continue;
		}
		rc = wal_judge(w, repo, plan, gr->source);
	}
	if (rc < 0)
		retention_wal_plan_free(out);
	return rc;
}

int
retention_wal_expire(Repo *repo, const RetentionWalPlan *wp, size_t *out_deleted)
{
	size_t n = 0;
	int rc = PV_OK;

	for (size_t s = 0; s < wp->n && rc == 0; s++)
	{
		const RetentionWal *w = &wp->sources[s];

		for (size_t i = 0; i < w->nfiles && rc == 0; i++)
		{
			char *key = pgwal_object_key(w->source, w->files[i].name, w->files[i].timeline);

			rc = storage_delete(repo_storage(repo), key);
			if (rc == PV_ENOTFOUND)		/* an earlier, interrupted expire got it */
				rc = PV_OK;
			else if (rc == PV_OK)
				n++;
			else
				rc = pv_error_prefix(rc, "cannot delete WAL file '%s' of source '%s'", w->files[i].name,
									 w->source);
			pv_free(key);
		}
	}
	if (out_deleted != NULL)
		*out_deleted = n;
	return rc;
}

void
retention_wal_plan_free(RetentionWalPlan *wp)
{
	for (size_t s = 0; s < wp->n; s++)
	{
		RetentionWal *w = &wp->sources[s];

		for (size_t i = 0; i < w->nfiles; i++)
			pv_free(w->files[i].name);
		pv_free(w->files);
		pv_free(w->source);
		pv_free(w->keep_from);
		pv_free(w->reason);
	}
	pv_free(wp->sources);
	memset(wp, 0, sizeof(*wp));
}

json_t *
retention_wal_plan_json(const RetentionWalPlan *wp)
{
	json_t *a = json_array();

	for (size_t s = 0; s < wp->n; s++)
	{
		const RetentionWal *w = &wp->sources[s];

		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "source", w->source,
										   "keep_from", w->keep_from ? json_string(w->keep_from) : json_null(),
										   "reason", w->reason ? json_string(w->reason) : json_null(),
										   "delete", (json_int_t) w->nfiles, "bytes", (json_int_t) w->bytes,
										   "kept", (json_int_t) w->kept,
										   "first", w->nfiles ? json_string(w->files[0].name) : json_null(),
										   "last", w->nfiles ? json_string(w->files[w->nfiles - 1].name) : json_null()));
	}
	return a;
}
