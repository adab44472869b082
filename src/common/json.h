/*
 * json.h: thin helpers over jansson for pgvault's JSON (output of --json
 * commands, and repository files such as manifests and index headers).
 *
 * Output is deterministic: keys sorted, so the same data always gives the
 * same bytes (manifests are hashed and compared).
 *
 * Input may be corrupt or hostile (it comes from object stores), so the
 * typed getters check presence and type of every member and turn problems
 * into PV_ECORRUPT errors instead of crashes; a parser reads like
 *
 *     if ((rc = pv_json_get_str(&id, root, "id")) < 0 ||
 *         (rc = pv_json_get_int(&size, root, "size")) < 0)
 *         return pv_error_prefix(rc, "manifest '%s'", name);
 *
 * Getter messages: "missing member 'size'", "member 'size' is not an
 * integer", "member 'size' is out of range (0..100)"; "expected a JSON
 * object" when obj itself is not one.  Strings from pv_json_get_str() are
 * lent: they live as long as the json_t they came from.  Outputs are written
 * only on success.  JSON null counts as missing for the pv_json_opt_*
 * getters and as the wrong type for the pv_json_get_* ones.
 */
#ifndef PV_COMMON_JSON_H
#define PV_COMMON_JSON_H

#include "common/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Make jansson allocate through pv_malloc (abort on out-of-memory, so
 * json_object() and friends never return NULL).  Call once at startup,
 * before any other thread exists and before any jansson call; later calls
 * do nothing.
 */
void pv_json_init(void);

/* Pretty (2-space indent), sorted keys, final newline.  0 or PV_EIO. */
int pv_json_dump(FILE *f, const json_t *v);

/* Append v to out: compact on one line, or pretty with a final newline; sorted keys.  0 or PV_ERROR. */
int pv_json_to_buf(Buf *out, const json_t *v, bool pretty);

/*
 * Parse len bytes of text (an object or an array; duplicate keys refused).
 * *out is a new reference owned by the caller (json_decref).  On failure:
 * PV_ECORRUPT "invalid JSON in '<what>' at line N: <reason>".
 */
int pv_json_parse(json_t **out, const char *text, size_t len, const char *what);

/* Required members. */
int pv_json_get_str(const char **out, const json_t *obj, const char *key);
int pv_json_get_strdup(char **out, const json_t *obj, const char *key);	/* pv_free() it */
int pv_json_get_int(int64_t *out, const json_t *obj, const char *key);
int pv_json_get_int_range(int64_t *out, const json_t *obj, const char *key, int64_t min, int64_t max);
int pv_json_get_uint(uint64_t *out, const json_t *obj, const char *key);	/* integer >= 0 */
int pv_json_get_bool(bool *out, const json_t *obj, const char *key);
int pv_json_get_real(double *out, const json_t *obj, const char *key);	/* integer or real */
int pv_json_get_object(const json_t **out, const json_t *obj, const char *key);
int pv_json_get_array(const json_t **out, const json_t *obj, const char *key);

/* Optional members: a missing (or null) member gives the default. */
int pv_json_opt_str(const char **out, const json_t *obj, const char *key, const char *def);
int pv_json_opt_int(int64_t *out, const json_t *obj, const char *key, int64_t def);
int pv_json_opt_bool(bool *out, const json_t *obj, const char *key, bool def);

#endif
