/*
 * json.c: see json.h.
 *
 * jansson's API takes non-const json_t pointers even for reads; the casts
 * below only serve lookups and never modify a value.
 */
#include "common/json.h"

#include "common/error.h"
#include "common/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t json_once = PTHREAD_ONCE_INIT;

static void
json_alloc_setup(void)
{
	json_set_alloc_funcs(pv_malloc, pv_free);
}

void
pv_json_init(void)
{
	pthread_once(&json_once, json_alloc_setup);
}

int
pv_json_dump(FILE *f, const json_t *v)
{
	errno = 0;
	if (json_dumpf(v, f, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY) != 0 ||
		fputc('\n', f) == EOF || ferror(f))
		return pv_error_errno(PV_EIO, errno != 0 ? errno : EIO, "could not write JSON output");
	return PV_OK;
}

static int
buf_dump_cb(const char *data, size_t len, void *payload)
{
	buf_append(payload, data, len);
	return 0;
}

int
pv_json_to_buf(Buf *out, const json_t *v, bool pretty)
{
	size_t flags = JSON_SORT_KEYS | JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) : JSON_COMPACT);

	if (json_dump_callback(v, buf_dump_cb, out, flags) != 0)
		return pv_error_set(PV_ERROR, "could not encode JSON");	/* uncovered: only for NULL values */
	if (pretty)
		buf_append_byte(out, '\n');
	return PV_OK;
}

int
pv_json_parse(json_t **out, const char *text, size_t len, const char *what)
{
	json_error_t err;
	json_t *v;

	v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	if (v == NULL)
		return pv_error_set(PV_ECORRUPT, "invalid JSON in '%s' at line %d: %s", what, err.line, err.text);
	*out = v;
	return PV_OK;
}

/* ----- getters ----- */

/* The member (NULL when optional and missing or null), or PV_ECORRUPT. */
static int
member(const json_t **out, const json_t *obj, const char *key, bool optional)
{
	const json_t *m = NULL;

	if (!json_is_object(obj))
		return pv_error_set(PV_ECORRUPT, "expected a JSON object");
	m = json_object_get((json_t *) obj, key);
	if (optional && json_is_null(m))
		m = NULL;
	if (m == NULL && !optional)
		return pv_error_set(PV_ECORRUPT, "missing member '%s'", key);
	*out = m;
	return PV_OK;
}

static int
wrong_type(const char *key, const char *type)
{
	return pv_error_set(PV_ECORRUPT, "member '%s' is not %s", key, type);
}

int
pv_json_get_str(const char **out, const json_t *obj, const char *key)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, false)) < 0)
		return rc;
	if (!json_is_string(m))
		return wrong_type(key, "a string");
	*out = json_string_value(m);
	return PV_OK;
}

int
pv_json_get_strdup(char **out, const json_t *obj, const char *key)
{
	const char *s;
	int rc;

	if ((rc = pv_json_get_str(&s, obj, key)) < 0)
		return rc;
	*out = pv_strdup(s);
	return PV_OK;
}

int
pv_json_get_int(int64_t *out, const json_t *obj, const char *key)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, false)) < 0)
		return rc;
	if (!json_is_integer(m))
		return wrong_type(key, "an integer");
	*out = (int64_t) json_integer_value(m);
	return PV_OK;
}

int
pv_json_get_int_range(int64_t *out, const json_t *obj, const char *key, int64_t min, int64_t max)
{
	int64_t v;
	int rc;

	if ((rc = pv_json_get_int(&v, obj, key)) < 0)
		return rc;
	if (v < min || v > max)
		return pv_error_set(PV_ECORRUPT, "member '%s' is out of range (%" PRId64 "..%" PRId64 ")",
							key, min, max);
	*out = v;
	return PV_OK;
}

int
pv_json_get_uint(uint64_t *out, const json_t *obj, const char *key)
{
	int64_t v;
	int rc;

	if ((rc = pv_json_get_int(&v, obj, key)) < 0)
		return rc;
	if (v < 0)
		return pv_error_set(PV_ECORRUPT, "member '%s' is negative", key);
	*out = (uint64_t) v;
	return PV_OK;
}

int
pv_json_get_bool(bool *out, const json_t *obj, const char *key)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, false)) < 0)
		return rc;
	if (!json_is_boolean(m))
		return wrong_type(key, "a boolean");
	*out = json_is_true(m);
	return PV_OK;
}

int
pv_json_get_real(double *out, const json_t *obj, const char *key)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, false)) < 0)
		return rc;
	if (!json_is_number(m))
		return wrong_type(key, "a number");
	*out = json_number_value(m);
	return PV_OK;
}

int
pv_json_get_object(const json_t **out, const json_t *obj, const char *key)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, false)) < 0)
		return rc;
	if (!json_is_object(m))
		return wrong_type(key, "an object");
	*out = m;
	return PV_OK;
}

int
pv_json_get_array(const json_t **out, const json_t *obj, const char *key)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, false)) < 0)
		return rc;
	if (!json_is_array(m))
		return wrong_type(key, "an array");
	*out = m;
	return PV_OK;
}

int
pv_json_opt_str(const char **out, const json_t *obj, const char *key, const char *def)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, true)) < 0)
		return rc;
	if (m != NULL && !json_is_string(m))
		return wrong_type(key, "a string");
	*out = m != NULL ? json_string_value(m) : def;
	return PV_OK;
}

int
pv_json_opt_int(int64_t *out, const json_t *obj, const char *key, int64_t def)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, true)) < 0)
		return rc;
	if (m != NULL && !json_is_integer(m))
		return wrong_type(key, "an integer");
	*out = m != NULL ? (int64_t) json_integer_value(m) : def;
	return PV_OK;
}

int
pv_json_opt_bool(bool *out, const json_t *obj, const char *key, bool def)
{
	const json_t *m = NULL;
	int rc;

	if ((rc = member(&m, obj, key, true)) < 0)
		return rc;
	if (m != NULL && !json_is_boolean(m))
		return wrong_type(key, "a boolean");
	*out = m != NULL ? json_is_true(m) : def;
	return PV_OK;
}
