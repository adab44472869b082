/*
 * test_objstore_ops.c: the operations objstore.c does for every object-store
 * driver (ranged reads, listing with paging, mapping answers to error
 * codes, URL parsing), driven through a fake dialect whose send answers
 * from a script instead of the network, so each rule is checked exactly:
 * the requests sent and the data and messages returned.  The drivers'
 * real traffic is tested against emulators in tests/e2e/test_storage_*.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/objstore.h"
#include "storage_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* One scripted answer. */
typedef struct Answer
{
	long status;
	const char *body;
} Answer;

/* A driver: the ObjStore first, then the script and what was asked. */
typedef struct Fake
{
	ObjStore os;
	const Answer *script;
	int next;
	char sent[4][256];			/* "METHOD okey?query range" of each request */
} Fake;

static int
fake_send(ObjStore *os, const ObjReq *r, HttpResponse *resp)
{
	Fake *f = (Fake *) os;
	const Answer *a = &f->script[f->next];
	const char *range = r->headers ? http_headers_get(r->headers, os->d->range_header, NULL) : NULL;
	Buf *to;

	assert_true(f->next < 4);
	snprintf(f->sent[f->next], sizeof(f->sent[0]), "%s %s?%s %s", r->method, r->okey ? r->okey : "",
			 r->query ? r->query : "", range ? range : "-");
	f->next++;
	resp->status = a->status;
	buf_reset(&resp->body);
	to = a->status >= 200 && a->status < 300 && r->sink != NULL ? r->sink : &resp->body;
	buf_append_str(to, a->body);
	return 0;
}

static void
fake_list_query(Buf *query, const ObjStore *os, const Buf *token, const char *okey_prefix)
{
	buf_printf(query, "prefix=%s&token=%s", okey_prefix, token->len ? buf_cstr(token) : "");
}

static int
fake_list_next(const HttpResponse *resp, Buf *token)
{
	const char *pos = (const char *) resp->body.data;
	const char *v;
	size_t vlen;

	buf_reset(token);
	if (http_xml_next(&pos, pos + resp->body.len, "Next", &v, &vlen))
		http_xml_decode(token, v, vlen);
	return 0;
}

static const ObjDialect fake_dialect = {
	.setting = "s3",
	.container = "bucket",
	.missing_code = "NoSuchBucket",
	.exists_code = "BlobAlreadyExists",
	.auth_hint = "check the keys",
	.notimpl_hint = "turn it off",
	.range_header = "Range",
	.list_item = "Item",
	.list_name = "Name",
	.list_size = "Size",
	.list_mtime = "When",
	.list_query = fake_list_query,
	.list_next = fake_list_next,
	.send = fake_send,
};

static void
fake_init(Fake *f, const Answer *script)
{
	memset(f, 0, sizeof(*f));
	f->os.d = &fake_dialect;
	f->os.type = "s3";
	assert_int_equal(objstore_url_parse(&f->os, "bkt//pre//fix/", "s3://bkt//pre//fix/"), 0);
	f->script = script;
}

/* A URL's container and tidy prefix; a URL without a container is refused. */
static void
test_url_parse(void **state)
{
	Fake f;

	fake_init(&f, NULL);
	assert_string_equal(f.os.container, "bkt");
	assert_string_equal(f.os.prefix, "pre/fix/");
	objstore_fini(&f.os);

	memset(&f, 0, sizeof(f));
	f.os.d = &fake_dialect;
	f.os.type = "s3";
	assert_int_equal(objstore_url_parse(&f.os, "", "s3://"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "invalid s3 URL 's3://': no bucket");
	assert_string_equal(pv_error_hint_msg(), "write s3://bucket/prefix");
	objstore_fini(&f.os);
}

/* Rule 2: exactly the bytes asked for, also from a store that ignores Range. */
static void
test_get_range(void **state)
{
	static const Answer script[] = {
		{206, "cdef"}, {200, "abcdefgh"}, {206, "cde"}, {416, ""},
	};
	Fake f;
	Buf out = PV_BUF_INIT;

	fake_init(&f, script);
	assert_int_equal(objstore_get_range(&f, "k", 2, 4, &out), 0);
	assert_string_equal(buf_cstr(&out), "cdef");
	assert_string_equal(f.sent[0], "GET pre/fix/k? bytes=2-5");

	buf_reset(&out);
	assert_int_equal(objstore_get_range(&f, "k", 2, 4, &out), 0);
	assert_string_equal(buf_cstr(&out), "cdef");

	buf_reset(&out);
	assert_int_equal(objstore_get_range(&f, "k", 2, 4, &out), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "object 'k' is too short for 4 bytes at offset 2: got 3");

	assert_int_equal(objstore_get_range(&f, "k", 9, 4, &out), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "object 'k' is too short for 4 bytes at offset 9");
	buf_free(&out);
	objstore_fini(&f.os);
}

static int
collect(const char *key, const StorageInfo *info, void *payload)
{
	buf_printf(payload, "%s:%" PRIu64 ";", key, info->size);
	return 0;
}

/* Pages follow the dialect's token; names outside the prefix or not pgvault's are skipped (rule 3). */
static void
test_list_pages(void **state)
{
	static const Answer script[] = {
		{200, "<R><Item><Name>pre/fix/a</Name><Size>3</Size></Item>"
			"<Item><Name>pre/fix/x//y</Name><Size>1</Size></Item><Next>t&amp;2</Next></R>"},
		{200, "<R><Item><Name>pre/fix/b/c</Name><Size>5</Size></Item>"
			"<Item><Name>other/d</Name><Size>7</Size></Item></R>"},
	};
	Fake f;
	Buf got = PV_BUF_INIT;

	fake_init(&f, script);
	assert_int_equal(objstore_list(&f, "", collect, &got), 0);
	assert_string_equal(buf_cstr(&got), "a:3;b/c:5;");
	assert_int_equal(f.next, 2);
	assert_string_equal(f.sent[0], "GET ?prefix=pre/fix/&token= -");
	assert_string_equal(f.sent[1], "GET ?prefix=pre/fix/&token=t&2 -");
	buf_free(&got);
	objstore_fini(&f.os);
}

/* Rule 1 and the error codes: each answer becomes one code and one line. */
static void
test_answers_to_errors(void **state)
{
	static const Answer script[] = {
		{404, "<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>"},
		{404, "<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>"},
		{404, "<Error><Code>NoSuchKey</Code><Message>no key</Message></Error>"},
		{403, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>"},
	};
	static const Answer more[] = {
		{409, "<Error><Code>BlobAlreadyExists</Code></Error>"},
		{501, "<Error><Code>NotImplemented</Code><Message>nope</Message></Error>"},
	};
	Fake f;
	Buf got = PV_BUF_INIT;
	HttpResponse resp;

	fake_init(&f, script);
	/* a listing in a missing bucket finds nothing; a read of a key in one finds no key */
	assert_int_equal(objstore_list(&f, "", collect, &got), 0);
	assert_int_equal(got.len, 0);
	assert_int_equal(objstore_get(&f, "k", &got), PV_ENOTFOUND);
	assert_string_equal(pv_error_msg(), "object 'k' not found");
	assert_int_equal(objstore_delete(&f, "k"), PV_ENOTFOUND);
	assert_string_equal(f.sent[2], "DELETE pre/fix/k? -");
	assert_int_equal(objstore_stat(&f, "k", &(StorageInfo) {0}), PV_EAUTH);
	assert_string_equal(pv_error_msg(), "cannot stat object 'k': HTTP 403 AccessDenied: no");
	assert_string_equal(pv_error_hint_msg(), "check the keys");

	/* writes in a missing bucket fail with a hint */
	http_response_init(&resp);
	resp.status = 404;
	buf_append_str(&resp.body, "<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>");
	assert_int_equal(objstore_fail(&f.os, &resp, "cannot write object 'k'", "k", false), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "cannot write object 'k': HTTP 404 NoSuchBucket: gone");
	assert_string_equal(pv_error_hint_msg(),
						"bucket 'bkt' does not exist: 'pgvault init' creates it, or check the URL and s3-endpoint");
	for (int i = 0; i < 2; i++)
	{
		resp.status = more[i].status;
		buf_reset(&resp.body);
		buf_append_str(&resp.body, more[i].body);
		if (i == 0)
		{
			assert_int_equal(objstore_fail(&f.os, &resp, "w", "k", false), PV_EEXISTS);
			assert_string_equal(pv_error_msg(), "object 'k' already exists");
		}
		else
		{
			assert_int_equal(objstore_fail(&f.os, &resp, "w", "k", false), PV_ERROR);
			assert_string_equal(pv_error_msg(), "w: HTTP 501 NotImplemented: nope");
			assert_string_equal(pv_error_hint_msg(), "turn it off");
		}
	}
	http_response_free(&resp);
	buf_free(&got);
	objstore_fini(&f.os);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_get_range),
		cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_answers_to_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
