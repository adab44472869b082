/*
 * catalog.c: pins, verify records and drill reports under records/ (see
 * catalog.h for the layout and its invariants).
 *
 * Every object here is small JSON stored as a metadata object
 * (repo_meta_encode), written with no-overwrite semantics.  Listings parse
 * names only; a name that is not ours is skipped, never an error, so a
 * later version may add record types without breaking this one.
 */
#include "ops/catalog.h"

#include "common/sort.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "pv_build.h"
#include "repo/repo.h"
#include "repo/verify.h"
#include "storage/storage.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_FORMAT "pgvault-record"
#define RECORD_VERSION 1

const char *
catalog_type_name(CatalogType t)
{
	return t == CATALOG_VERIFY ? "verify" : t == CATALOG_DRILL ? "drill" : "restore";
}

static const char *
type_prefix(CatalogType t)
{
	return t == CATALOG_VERIFY ? "records/verify/" : t == CATALOG_DRILL ? "records/drills/" :
		"records/restores/";
}

void
catalog_record_id_new(char out[CATALOG_RECORD_ID_LEN + 1], PvTime t)
{
	PvCalendar c;
	unsigned char rnd[3];
	char buf[96];

	pv_time_calendar(&c, t, "UTC");
	pv_fs_random_fill(rnd, sizeof(rnd));
	/* years beyond 9999 do not happen; the buffer is big enough for any int anyway */
	snprintf(buf, sizeof(buf), "%04d%02d%02dT%02d%02d%02d.%03dZ-%02x%02x%02x", c.year, c.month, c.day, c.hour,
			 c.minute, c.second, c.usec / 1000, rnd[0], rnd[1], rnd[2]);
	memcpy(out, buf, CATALOG_RECORD_ID_LEN);
	out[CATALOG_RECORD_ID_LEN] = '\0';
}

bool
catalog_record_id_valid(const char *id)
{
	static const char shape[] = "ddddddddTdddddd.dddZ-xxxxxx";

	if (id == NULL || strlen(id) != CATALOG_RECORD_ID_LEN)
		return false;
	for (size_t i = 0; i < CATALOG_RECORD_ID_LEN; i++)
	{
		unsigned char c = (unsigned char) id[i];

		if (shape[i] == 'd' ? !isdigit(c) : shape[i] == 'x' ? !(isdigit(c) || (c >= 'a' && c <= 'f')) :
			c != (unsigned char) shape[i])
			return false;
	}
	return true;
}

/* A record id's time; 0 when the text is not one. */
static PvTime
id_time(const char *id)
{
	int v[7];

	if (!catalog_record_id_valid(id) ||
		sscanf(id, "%4d%2d%2dT%2d%2d%2d.%3dZ", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 7)
		return 0;
	return ((pv_days_from_civil(v[0], v[1], v[2]) * 24 + v[3]) * 3600 + (int64_t) v[4] * 60 + v[5]) *
		PV_USEC_PER_SEC + (int64_t) v[6] * PV_USEC_PER_MS;
}

static void
user_name(char *out, size_t outsz)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
		snprintf(out, outsz, "%s", pw.pw_name);
	else
		snprintf(out, outsz, "%u", (unsigned) getuid());
}

/* Encode doc and store it under key, no overwrite. */
static int
object_put(Repo *repo, const char *key, const json_t *doc)
{
	Buf text = PV_BUF_INIT;
	int rc;

	if ((rc = pv_json_to_buf(&text, doc, false)) >= 0)
		rc = repo_meta_put(repo, key, text.data, text.len, STORAGE_PUT_NO_OVERWRITE);
	buf_free(&text);
	return rc;
}

static int
object_get(Repo *repo, const char *key, json_t **out)
{
	Buf stored = PV_BUF_INIT, text = PV_BUF_INIT;
	json_t *doc = NULL;
	int rc;

	if ((rc = storage_get(repo_storage(repo), key, &stored)) < 0)
		goto done;
	if ((rc = repo_meta_decode(repo, stored.data, stored.len, &text)) < 0 ||
		(rc = pv_json_parse(&doc, (const char *) text.data, text.len, key)) < 0)
	{
		rc = pv_error_prefix(rc, "record '%s'", key);
		goto done;
	}
	if (!json_is_object(doc))
	{
		rc = pv_error_set(PV_ECORRUPT, "record '%s' is not a JSON object", key);
		goto done;
	}
	*out = doc;
	doc = NULL;
done:
	json_decref(doc);
	buf_free(&stored);
	buf_free(&text);
	return rc;
}

/* ---- records ---- */

int
catalog_record_write(Repo *repo, CatalogType type, const char *backup_id, bool ok,
					 json_t *body, char out_id[CATALOG_RECORD_ID_LEN + 1])
{
	char id[CATALOG_RECORD_ID_LEN + 1], t[PV_TIME_FORMAT_MAX];
	char *key = NULL;
	json_t *own = NULL;
	PvTime now = pv_time_now();
	int rc;

	if (!repo_backup_id_valid(backup_id))
		return pv_error_set(PV_EUSAGE, "'%s' is not a backup id", backup_id);
	if (body != NULL && !json_is_object(body))
		return pv_error_set(PV_EUSAGE, "a record body must be a JSON object");
	if (body == NULL)
		body = own = json_object();
	catalog_record_id_new(id, now);
	key = pv_asprintf("%s%s/%s.%s", type_prefix(type), backup_id, id, ok ? "ok" : "failed");
	json_object_set_new(body, "record",
						json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:b}", "format", RECORD_FORMAT,
								  "version", RECORD_VERSION, "type", catalog_type_name(type), "id", id,
								  "backup", backup_id, "time", pv_time_format_utc(t, sizeof(t), now), "ok", ok));
	if ((rc = object_put(repo, key, body)) < 0)
	{
		json_object_del(body, "record");
		rc = pv_error_prefix(rc, "cannot record the %s of backup '%s'", catalog_type_name(type), backup_id);
		goto done;
	}
	if (out_id != NULL)
		memcpy(out_id, id, sizeof(id));
done:
	json_decref(own);
	pv_free(key);
	return rc;
}

typedef struct ListCtx
{
	CatalogType type;
	size_t prefix_len;
	CatalogRecordList *out;
	size_t cap;
} ListCtx;

/* "<backup id>/<record id>.<ok|failed>" after the prefix. */
static int
record_list_add(const char *key, const StorageInfo *info, void *payload)
{
	ListCtx *c = payload;
	const char *rest = key + c->prefix_len;
	const char *slash = strchr(rest, '/');
	char backup[REPO_BACKUP_ID_LEN + 1], rid[CATALOG_RECORD_ID_LEN + 1];
	const char *outcome;
	CatalogRecord *r;

	(void) info;
	if (slash == NULL || slash - rest != REPO_BACKUP_ID_LEN || strlen(slash + 1) < CATALOG_RECORD_ID_LEN + 3)
		goto skip;
	memcpy(backup, rest, REPO_BACKUP_ID_LEN);
	backup[REPO_BACKUP_ID_LEN] = '\0';
	memcpy(rid, slash + 1, CATALOG_RECORD_ID_LEN);
	rid[CATALOG_RECORD_ID_LEN] = '\0';
	outcome = slash + 1 + CATALOG_RECORD_ID_LEN;
	if (!repo_backup_id_valid(backup) || !catalog_record_id_valid(rid) ||
		(strcmp(outcome, ".ok") != 0 && strcmp(outcome, ".failed") != 0))
		goto skip;
	if (c->out->n == c->cap)
	{
		c->cap = c->cap ? 2 * c->cap : 16;
		c->out->items = pv_realloc(c->out->items, c->cap * sizeof(CatalogRecord));
	}
	r = &c->out->items[c->out->n++];
	memset(r, 0, sizeof(*r));
	r->type = c->type;
	memcpy(r->backup, backup, sizeof(backup));
	memcpy(r->id, rid, sizeof(rid));
	r->time = id_time(rid);
	r->ok = strcmp(outcome, ".ok") == 0;
	r->key = pv_strdup(key);
	return 0;
skip:
	pv_log_debug("ignoring '%s': not a record name", key);
	return 0;
}

static int
record_cmp(const void *a, const void *b)
{
	const CatalogRecord *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c != 0 ? c : strcmp(x->backup, y->backup);
}

int
catalog_records_list(Repo *repo, CatalogType type, const char *backup_id, CatalogRecordList *out)
{
	ListCtx c = {.type = type, .prefix_len = strlen(type_prefix(type)), .out = out};
	char *prefix;
	int rc;

	memset(out, 0, sizeof(*out));
	if (backup_id != NULL && !repo_backup_id_valid(backup_id))
		return pv_error_set(PV_EUSAGE, "'%s' is not a backup id", backup_id);
	prefix = backup_id ? pv_asprintf("%s%s/", type_prefix(type), backup_id) : pv_strdup(type_prefix(type));
	rc = storage_list(repo_storage(repo), prefix, record_list_add, &c);
	pv_free(prefix);
	if (rc < 0)
	{
		catalog_records_free(out);
		return pv_error_prefix(rc, "cannot list the %s records", catalog_type_name(type));
	}
	if (out->n > 1)
		pv_qsort(out->items, out->n, sizeof(CatalogRecord), record_cmp);
	return PV_OK;
}

void
catalog_records_free(CatalogRecordList *l)
{
	for (size_t i = 0; i < l->n; i++)
		pv_free(l->items[i].key);
	pv_free(l->items);
	memset(l, 0, sizeof(*l));
}

int
catalog_record_read(Repo *repo, const CatalogRecord *r, json_t **out)
{
	return object_get(repo, r->key, out);
}

int
catalog_backup_forget(Repo *repo, const char *backup_id)
{
	CatalogRecordList l;
	int rc;

	if ((rc = catalog_records_list(repo, CATALOG_VERIFY, backup_id, &l)) < 0)
		return rc;
	for (size_t i = 0; i < l.n && rc == 0; i++)
	{
		rc = storage_delete(repo_storage(repo), l.items[i].key);
		if (rc == PV_ENOTFOUND)	/* another expire got there first */
			rc = PV_OK;
	}
	catalog_records_free(&l);
	return rc;
}

/* Delete all but the newest keep verify records of a backup. */
static int
verify_trim(Repo *repo, const char *backup_id, size_t keep)
{
	CatalogRecordList l;
	int rc;

	if ((rc = catalog_records_list(repo, CATALOG_VERIFY, backup_id, &l)) < 0)
		return rc;
	for (size_t i = 0; i + keep < l.n && rc == 0; i++)
	{
		rc = storage_delete(repo_storage(repo), l.items[i].key);
		if (rc == PV_ENOTFOUND)
			rc = PV_OK;
	}
	catalog_records_free(&l);
	return rc;
}

int
catalog_verify_record(Repo *repo, const RepoVerifyReport *report, int64_t elapsed_ms)
{
	int rc = PV_OK;

	for (size_t i = 0; i < report->nbackups; i++)
	{
		const RepoVerifyBackup *b = &report->backups[i];
		json_t *body;
		json_t *problems = json_array();

		if (!repo_backup_id_valid(b->id))
			continue;
		/* The messages of the problems that affect this backup (a few suffice). */
		for (size_t k = 0; k < report->nproblems && json_array_size(problems) < 10; k++)
		{
			const RepoVerifyProblem *p = &report->problems[k];

			for (size_t j = 0; j < p->nbackups; j++)
				if (strcmp(p->backups[j], b->id) == 0)
				{
					json_array_append_new(problems, json_string(p->message));
					break;
				}
		}
		body = json_pack("{s:b, s:I, s:I, s:I, s:I, s:o}", "quick", report->quick,
						 "duration_ms", (json_int_t) elapsed_ms, "items", (json_int_t) b->items,
						 "chunks", (json_int_t) b->chunks, "bad_chunks", (json_int_t) b->bad_chunks,
						 "problems", problems);
		json_object_set_new(body, "mode", json_string(report->quick ? "quick" :
													  repo_verify_mode_name(report->mode)));
		if (b->error != NULL)
			json_object_set_new(body, "error", json_string(b->error));
		if (b->kind != NULL)
			json_object_set_new(body, "kind", json_string(b->kind));
		if (b->source != NULL)
			json_object_set_new(body, "source", json_string(b->source));
		rc = catalog_record_write(repo, CATALOG_VERIFY, b->id, !b->damaged, body, NULL);
		json_decref(body);
		if (rc == 0)
			rc = verify_trim(repo, b->id, CATALOG_VERIFY_KEEP);
		if (rc < 0)
		{
			pv_log_warn("%s", pv_error_msg());
			break;
		}
	}
	return rc;
}

int
catalog_verify_run(Repo *repo, const RepoVerifyOpts *opts, RepoVerifyReport *out)
{
	int64_t t0 = pv_time_monotonic_ms();
	int rc;

	if ((rc = repo_verify(repo, opts, out)) < 0)
		return rc;
	if (catalog_verify_record(repo, out, pv_time_monotonic_ms() - t0) < 0)
		pv_error_clear();		/* logged there; the verify's verdict is what counts */
	return PV_OK;
}

int
catalog_restore_record(Repo *repo, const CatalogRestoreInfo *info, char out_id[CATALOG_RECORD_ID_LEN + 1])
{
	RepoManifest *m = NULL;
	const char *source = info->source, *kind = info->kind;
	uint64_t size = info->size;
	json_t *body;
	int rc;

	/* what the caller did not say, the manifest does (it was just read: cheap) */
	if ((source == NULL || kind == NULL || size == 0) && repo_manifest_load(&m, repo, info->backup_id) < 0)
		pv_error_clear();		/* the record is still worth having without them */
	if (m != NULL)
	{
		const json_t *lb = json_object_get(repo_manifest_totals(m), "logical_bytes");

		if (source == NULL)
			source = repo_manifest_source(m);
		if (kind == NULL)
			kind = repo_manifest_kind(m);
		if (size == 0 && json_is_integer(lb) && json_integer_value(lb) > 0)
			size = (uint64_t) json_integer_value(lb);
	}
	body = json_pack("{s:s?, s:s?, s:I, s:I, s:I, s:i, s:s?, s:s?, s:b, s:s, s:s, s:s}",
					 "source", source, "kind", kind, "duration_ms", (json_int_t) info->duration_ms,
					 "bytes", (json_int_t) info->bytes, "size", (json_int_t) size, "jobs", info->jobs,
					 "target_kind", info->target_kind, "target", info->target, "partial", info->partial,
					 "outcome", info->ok ? "restored" : "failed", "host", repo_hostname(repo),
					 "tool_version", PV_VERSION);
	json_object_set_new(body, "recovery_ms", info->recovery_ms >= 0 ?
						json_integer(info->recovery_ms) : json_null());
	rc = catalog_record_write(repo, CATALOG_RESTORE, info->backup_id, info->ok, body, out_id);
	json_decref(body);
	repo_manifest_free(m);
	return rc;
}

/* ---- pins ---- */

static char *
pin_key(const char *id)
{
	return pv_asprintf("records/pins/%s", id);
}

int
catalog_pin(Repo *repo, const char *backup_id, const char *note)
{
	char user[256], t[PV_TIME_FORMAT_MAX], *key = NULL, *snap = NULL;
	json_t *doc = NULL;
	bool exists = false;
	int rc;

	if (!repo_backup_id_valid(backup_id))
		return pv_error_set(PV_EUSAGE, "'%s' is not a backup id", backup_id);
	snap = pv_asprintf("snapshots/%s", backup_id);
	if ((rc = storage_exists(repo_storage(repo), snap, &exists)) < 0)
		goto done;
	if (!exists)
	{
		rc = pv_error_set(PV_ENOTFOUND, "no backup '%s' in repository '%s'", backup_id, repo_url(repo));
		goto done;
	}
	user_name(user, sizeof(user));
	doc = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "format", RECORD_FORMAT, "version", RECORD_VERSION,
					"type", "pin", "backup", backup_id,
					"time", pv_time_format_utc(t, sizeof(t), pv_time_now()),
					"user", user, "host", repo_hostname(repo));
	json_object_set_new(doc, "note", json_string(note ? note : ""));
	json_object_set_new(doc, "tool_version", json_string(PV_VERSION));
	key = pin_key(backup_id);
	rc = object_put(repo, key, doc);
	if (rc == PV_EEXISTS)
	{
		rc = pv_error_set(PV_EEXISTS, "backup '%s' is already pinned", backup_id);
		pv_error_hint("'pgvault pin --list' shows who pinned it and why");
	}
done:
	json_decref(doc);
	pv_free(key);
	pv_free(snap);
	return rc;
}

int
catalog_unpin(Repo *repo, const char *backup_id)
{
	char *key;
	int rc;

	if (!repo_backup_id_valid(backup_id))
		return pv_error_set(PV_EUSAGE, "'%s' is not a backup id", backup_id);
	key = pin_key(backup_id);
	rc = storage_delete(repo_storage(repo), key);
	pv_free(key);
	if (rc == PV_ENOTFOUND)
		return pv_error_set(PV_ENOTFOUND, "backup '%s' is not pinned", backup_id);
	return rc;
}

typedef struct PinCtx
{
	CatalogPinList *out;
	size_t cap;
} PinCtx;

static int
pin_list_add(const char *key, const StorageInfo *info, void *payload)
{
	PinCtx *c = payload;
	const char *id = key + strlen("records/pins/");
	CatalogPin *p;

	(void) info;
	if (!repo_backup_id_valid(id))
	{
		pv_log_debug("ignoring '%s': not a pin", key);
		return 0;
	}
	if (c->out->n == c->cap)
	{
		c->cap = c->cap ? 2 * c->cap : 8;
		c->out->items = pv_realloc(c->out->items, c->cap * sizeof(CatalogPin));
	}
	p = &c->out->items[c->out->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	return 0;
}

static int
pin_cmp(const void *a, const void *b)
{
	return strcmp(((const CatalogPin *) a)->id, ((const CatalogPin *) b)->id);
}

/* A string member, or "" when missing or not a string. */
static char *
opt_strdup(const json_t *doc, const char *key)
{
	const json_t *v = json_object_get(doc, key);

	return pv_strdup(json_is_string(v) ? json_string_value(v) : "");
}

/* Fill a pin's details from its object; a damaged pin still counts as a pin. */
static void
pin_read(Repo *repo, CatalogPin *p)
{
	char *key = pin_key(p->id);
	json_t *doc = NULL;
	const json_t *t;

	if (object_get(repo, key, &doc) < 0)
	{
		pv_log_warn("%s (the pin still holds)", pv_error_msg());
		pv_error_clear();
		doc = json_object();
	}
	t = json_object_get(doc, "time");
	if (!json_is_string(t) || pv_time_parse(&p->time, json_string_value(t), "UTC") < 0)
		p->time = 0;
	pv_error_clear();
	p->user = opt_strdup(doc, "user");
	p->host = opt_strdup(doc, "host");
	p->note = opt_strdup(doc, "note");
	json_decref(doc);
	pv_free(key);
}

int
catalog_pins(Repo *repo, bool details, CatalogPinList *out)
{
	PinCtx c = {.out = out};
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = storage_list(repo_storage(repo), "records/pins/", pin_list_add, &c)) < 0)
	{
		catalog_pins_free(out);
		return pv_error_prefix(rc, "cannot list the pins");
	}
	if (out->n > 1)
		pv_qsort(out->items, out->n, sizeof(CatalogPin), pin_cmp);
	for (size_t i = 0; details && i < out->n; i++)
		pin_read(repo, &out->items[i]);
	return PV_OK;
}

void
catalog_pins_free(CatalogPinList *l)
{
	for (size_t i = 0; i < l->n; i++)
	{
		pv_free(l->items[i].user);
		pv_free(l->items[i].host);
		pv_free(l->items[i].note);
	}
	pv_free(l->items);
	memset(l, 0, sizeof(*l));
}

bool
catalog_pins_has(const CatalogPinList *l, const char *backup_id)
{
	CatalogPin key;

	if (l->n == 0 || strlen(backup_id) >= sizeof(key.id))
		return false;
	snprintf(key.id, sizeof(key.id), "%s", backup_id);
	return pv_bsearch(&key, l->items, l->n, sizeof(CatalogPin), pin_cmp) != NULL;
}

/* ---- state ---- */

int
catalog_state_load(CatalogState *out, Repo *repo)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = catalog_pins(repo, false, &out->pins)) < 0 ||
		(rc = catalog_records_list(repo, CATALOG_VERIFY, NULL, &out->verify)) < 0 ||
		(rc = catalog_records_list(repo, CATALOG_DRILL, NULL, &out->drills)) < 0)
		catalog_state_free(out);
	return rc;
}

void
catalog_state_free(CatalogState *st)
{
	catalog_pins_free(&st->pins);
	catalog_records_free(&st->verify);
	catalog_records_free(&st->drills);
}

const CatalogRecord *
catalog_state_last(const CatalogState *st, CatalogType type, const char *backup_id)
{
	const CatalogRecordList *l = type == CATALOG_VERIFY ? &st->verify : &st->drills;

	/* Sorted by record id: the last match is the newest. */
	for (size_t i = l->n; i > 0; i--)
		if (strcmp(l->items[i - 1].backup, backup_id) == 0)
			return &l->items[i - 1];
	return NULL;
}

json_t *
catalog_record_summary_json(const CatalogRecord *r)
{
	char t[PV_TIME_FORMAT_MAX];

	if (r == NULL)
		return json_null();
	return json_pack("{s:s, s:b, s:s}", "time", pv_time_format_utc(t, sizeof(t), r->time), "ok", r->ok,
					 "record", r->id);
}
