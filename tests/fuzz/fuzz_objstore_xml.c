/*
 * fuzz_objstore_xml.c: the XML answers of S3 and Azure (storage/http.h's
 * small XML readers and the drivers' use of them): the input is a response
 * body, read as
 *   a ListObjectsV2 page (objstore_list_page with S3's element names,
 *   s3_list_next), a List Blobs page (Azure's names, az_list_next), a
 *   DeleteObjects answer (s3_delete_errors), and an error answer
 *   (http_response_error_code, http_response_error), plus each
 *   LastModified text through http_date_parse.
 * The body is copied to an allocation of exactly its length, so a read past
 * the end is caught.
 */
#include "fuzz_common.h"

#include "storage/azure.h"
#include "storage/http.h"
#include "storage/objstore.h"
#include "storage/s3.h"

static const ObjDialect s3_names = {.list_item = "Contents", .list_name = "Key", .list_size = "Size",
.list_mtime = "LastModified"};
static const ObjDialect az_names = {.list_item = "Blob", .list_name = "Name", .list_size = "Content-Length",
.list_mtime = "Last-Modified"};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

static int
seen(const char *key, const StorageInfo *info, void *payload)
{
	size_t *n = payload;

	*n += strlen(key) + (info->size & 1);
	return 0;
}

static void
page(const ObjDialect *d, const HttpResponse *resp, const char *prefix)
{
	ObjStore os = {.d = d, .type = "fuzz", .prefix = (char *) prefix};
	size_t n = 0;

	(void) objstore_list_page(&os, resp, seen, &n);
	pv_error_clear();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	HttpResponse resp;
	Buf token = PV_BUF_INIT;
	ObjStore os = {.d = &s3_names, .type = "fuzz", .prefix = "pre/"};
	char code[128];
	char *copy = pv_malloc(size ? size : 1);
	const char *pos, *v;
	size_t vlen;

	memcpy(copy, data, size);
	http_response_init(&resp);
	buf_free(&resp.body);
	/* lend the exact-size copy as the body: no terminator, no slack */
	resp.body.data = (unsigned char *) copy;
	resp.body.len = size;
	resp.body.cap = size;
	resp.status = 500;

	page(&s3_names, &resp, "");
	page(&s3_names, &resp, "pre/");
	page(&az_names, &resp, "");
	(void) s3_list_next(&resp, &token);
	(void) az_list_next(&resp, &token);
	(void) s3_delete_errors(&os, &resp);
	http_response_error_code(&resp, code, sizeof(code));
	(void) http_response_error(&resp, PV_ERROR, "fuzz");
	pos = copy;
	while (http_xml_next(&pos, copy + size, "LastModified", &v, &vlen))
	{
		char *text = pv_strndup(v, vlen);

		(void) http_date_parse(text);
		pv_free(text);
	}
	pv_error_clear();
	resp.body.data = NULL;
	resp.body.len = resp.body.cap = 0;
	http_response_free(&resp);
	pv_free(copy);
	buf_free(&token);
	return 0;
}
