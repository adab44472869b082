/*
 * test_sigv4.c: the SigV4 signer (src/storage/sigv4.c) against AWS's
 * published vectors: the generic "aws-sig-v4-test-suite" (credentials
 * AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1, service "service") and the
 * worked examples of the S3 API reference (AKIAIOSFODNN7EXAMPLE, 2013-05-24,
 * examplebucket).  Where the suite publishes intermediate strings the test
 * compares them too: a wrong signature then says which step is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/sigv4.h"

#include <string.h>

static const SigV4Credentials suite_cred = {
	.access_key = "AKIDEXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "service",
};

#define SUITE_DATE "20150830T123600Z"
#define SUITE_AUTH "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
check_auth(const SigV4Request *req, const SigV4Credentials *cred, const char *date, const char *want)
{
	Buf out = PV_BUF_INIT;

	sigv4_authorization(&out, req, cred, date);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
}

static void
check_canonical_hash(const SigV4Request *req, const char *want_hex)
{
	Buf out = PV_BUF_INIT;
	char hex[65];

	sigv4_canonical_request(&out, req);
	sigv4_sha256_hex(hex, out.data, out.len);
	assert_string_equal(hex, want_hex);
	buf_free(&out);
}


static void
test_get_vanilla(void **state)
{
	SigV4Header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
	SigV4Request req = {"GET", "/", NULL, h, 2, EMPTY_SHA256};
	Buf s = PV_BUF_INIT;

	sigv4_canonical_request(&s, &req);
	assert_string_equal(buf_cstr(&s), "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
						"host;x-amz-date\n" EMPTY_SHA256);
	check_canonical_hash(&req, "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
	sigv4_string_to_sign(&s, &req, &suite_cred, SUITE_DATE);
	assert_string_equal(buf_cstr(&s), "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
						"bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;x-amz-date, "
			   "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	buf_free(&s);
}

static void
test_query_sorted_and_encoded(void **state)
{
	SigV4Header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
	SigV4Request req = {"GET", "/", "Param2=value2&Param1=value1", h, 2, EMPTY_SHA256};
	Buf s = PV_BUF_INIT;

	/* get-vanilla-query-order-key-case */
	check_canonical_hash(&req, "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;x-amz-date, "
			   "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
	/* get-vanilla-query-order-value: equal names sort by value */
	req.query = "Param1=value2&Param1=value1";
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;x-amz-date, "
			   "Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694");
	/* get-vanilla-utf8-query: U+1234 as a raw and as an escaped name sign alike */
	req.query = "\xe1\x88\xb4=bar";
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;x-amz-date, "
			   "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
	req.query = "%e1%88%B4=bar";
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;x-amz-date, "
			   "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");

	/* The S3 forms this driver sends: a bare name, '/' in a value, '+' as itself, '=' in a value. */
	req.query = "uploads";
	sigv4_canonical_request(&s, &req);
	assert_non_null(strstr(buf_cstr(&s), "\n/\nuploads=\nhost:"));
	req.query = "prefix=a/&list-type=2&continuation-token=x+y%2Bz==";
	sigv4_canonical_request(&s, &req);
	assert_non_null(strstr(buf_cstr(&s), "\n/\ncontinuation-token=x%2By%2Bz%3D%3D&list-type=2&prefix=a%2F\nhost:"));
	req.query = "b&a=1&a=1";
	sigv4_canonical_request(&s, &req);
	assert_non_null(strstr(buf_cstr(&s), "\n/\na=1&a=1&b=\nhost:"));
	buf_free(&s);
}

static void
test_unreserved_path(void **state)
{
	SigV4Header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
	SigV4Request req = {"GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		NULL, h, 2, EMPTY_SHA256};
	Buf enc = PV_BUF_INIT;

	/* get-unreserved */
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;x-amz-date, "
			   "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");

	sigv4_uri_encode(&enc, "a b/\xe1\x88\xb4~+", 9, 1);
	assert_string_equal(buf_cstr(&enc), "a%20b/%E1%88%B4~%2B");
	buf_reset(&enc);
	sigv4_uri_encode(&enc, "a/b", 3, 0);
	assert_string_equal(buf_cstr(&enc), "a%2Fb");
	buf_free(&enc);
}

static void
test_headers_canonical(void **state)
{
	/* get-header-value-trim: leading blanks trimmed, inner runs collapsed (even inside quotes) */
	SigV4Header trim[] = {{"Host", "example.amazonaws.com"}, {"My-Header1", " value1"},
		{"My-Header2", "\"a   b   c\""}, {"X-Amz-Date", SUITE_DATE}};
	SigV4Request req = {"GET", "/", NULL, trim, 4, EMPTY_SHA256};
	/* get-header-key-duplicate: repeated names joined in order */
	SigV4Header dup[] = {{"Host", "example.amazonaws.com"}, {"My-Header1", "value2"},
		{"My-Header1", "value2"}, {"My-Header1", "value1"}, {"X-Amz-Date", SUITE_DATE}};
	Buf s = PV_BUF_INIT;

	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
			   "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
	sigv4_canonical_request(&s, &req);
	assert_non_null(strstr(buf_cstr(&s), "\nmy-header1:value1\nmy-header2:\"a b c\"\n"));

	req.headers = dup;
	req.nheaders = 5;
	sigv4_canonical_request(&s, &req);
	assert_non_null(strstr(buf_cstr(&s), "\nmy-header1:value2,value2,value1\nx-amz-date:"));
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;my-header1;x-amz-date, "
			   "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
	buf_free(&s);
}

static void
test_post_with_body(void **state)
{
	/* post-x-www-form-urlencoded: the payload hash and content-type are signed */
	SigV4Header h[] = {{"Content-Type", "application/x-www-form-urlencoded"},
		{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
	char hash[65];
	SigV4Request req = {"POST", "/", "", h, 3, hash};
	Buf s = PV_BUF_INIT;

	sigv4_sha256_hex(hash, "Param1=value1", 13);
	assert_string_equal(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
	sigv4_string_to_sign(&s, &req, &suite_cred, SUITE_DATE);
	assert_string_equal(buf_cstr(&s), "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
						"42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=content-type;host;x-amz-date, "
			   "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
	buf_free(&s);
}

static void
test_session_token(void **state)
{
	/* get-vanilla-with-session-token: the token header is signed like any other */
	SigV4Header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE},
		{"X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"}};
	SigV4Request req = {"GET", "/", NULL, h, 3, EMPTY_SHA256};

	check_auth(&req, &suite_cred, SUITE_DATE, SUITE_AUTH "SignedHeaders=host;x-amz-date;x-amz-security-token, "
			   "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

/* ---- the S3 API reference's examples (service "s3", x-amz-content-sha256 signed) ---- */

static const SigV4Credentials s3_cred = {
	.access_key = "AKIAIOSFODNN7EXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "s3",
};

#define S3_AUTH "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "

static void
test_s3_examples(void **state)
{
	SigV4Header get[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"},
		{"x-amz-content-sha256", EMPTY_SHA256}, {"x-amz-date", "20130524T000000Z"}};
	SigV4Request req = {"GET", "/test.txt", NULL, get, 4, EMPTY_SHA256};
	char hash[65];
	SigV4Header put[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
		{"x-amz-date", "20130524T000000Z"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"x-amz-content-sha256", hash}};
	SigV4Header bucket[] = {{"Host", "examplebucket.s3.amazonaws.com"},
		{"x-amz-content-sha256", EMPTY_SHA256}, {"x-amz-date", "20130524T000000Z"}};
	Buf path = PV_BUF_INIT;

	/* GET Object with a range */
	check_auth(&req, &s3_cred, "20130524T000000Z", S3_AUTH "SignedHeaders=host;range;x-amz-content-sha256;"
			   "x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

	/* PUT Object "test$file.text": the key is encoded once, '$' as %24 */
	sigv4_sha256_hex(hash, "Welcome to Amazon S3.", 21);
	assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	buf_append_byte(&path, '/');
	sigv4_uri_encode(&path, "test$file.text", 14, 1);
	assert_string_equal(buf_cstr(&path), "/test%24file.text");
	req = (SigV4Request) {"PUT", buf_cstr(&path), NULL, put, 5, hash};
	check_auth(&req, &s3_cred, "20130524T000000Z", S3_AUTH "SignedHeaders=date;host;x-amz-content-sha256;"
			   "x-amz-date;x-amz-storage-class, "
			   "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");

	/* GET Bucket lifecycle: a bare sub-resource name */
	req = (SigV4Request) {"GET", "/", "lifecycle", bucket, 3, EMPTY_SHA256};
	check_auth(&req, &s3_cred, "20130524T000000Z", S3_AUTH "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
			   "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");

	/* GET Bucket (list objects), parameters given out of order */
	req.query = "prefix=J&max-keys=2";
	check_auth(&req, &s3_cred, "20130524T000000Z", S3_AUTH "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
			   "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	buf_free(&path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_vanilla),
		cmocka_unit_test(test_query_sorted_and_encoded),
		cmocka_unit_test(test_unreserved_path),
		cmocka_unit_test(test_headers_canonical),
		cmocka_unit_test(test_post_with_body),
		cmocka_unit_test(test_session_token),
		cmocka_unit_test(test_s3_examples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
