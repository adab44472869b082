/*
 * test_objstore.c: opening s3://, gs:// and azure:// locations (s3.c,
 * azure.c): URL checks, where settings and credentials come from
 * (storage_open_opts lookup, then the cloud CLIs' environment, then
 * ~/.aws/credentials), and the exact messages for bad settings.  Opening
 * sends no request, so no server is needed; the drivers' traffic is
 * tested against real emulators in tests/e2e/test_storage_*.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/storage.h"
#include "storage_test.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const cloud_env[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
	"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
	"SSL_CERT_FILE",
};

static char *home;

static int
setup(void **state)
{
	for (size_t i = 0; i < PV_ARRAY_LEN(cloud_env); i++)
		unsetenv(cloud_env[i]);
	home = test_tmpdir_new();
	setenv("HOME", home, 1);	/* no ~/.aws/credentials */
	return 0;
}

static int
teardown(void **state)
{
	test_tmpdir_free(home);
	return 0;
}

/* Settings as "key=value" pairs, NULL-terminated. */
static const char *
lookup(const char *key, void *payload)
{
	const char *const *kv = payload;
	size_t klen = strlen(key);

	for (; *kv != NULL; kv++)
		if (strncmp(*kv, key, klen) == 0 && (*kv)[klen] == '=')
			return *kv + klen + 1;
	return NULL;
}

static int
open_with(Storage **st, const char *url, const char *const *kv)
{
	StorageOpenOpts o = {.lookup = lookup, .payload = (void *) kv};

	*st = NULL;
	return storage_open_opts(st, url, &o);
}

#define KV(...) ((const char *const[]) {__VA_ARGS__, NULL})

static void
test_s3_urls_and_credentials(void **state)
{
	Storage *st = NULL;
	char *creds;
	FILE *f;

	assert_pv_error(open_with(&st, "s3://", KV("x=y")), PV_EUSAGE, "invalid s3 URL 's3://': no bucket");
	assert_pv_error(open_with(&st, "s3://b/a//./c", KV("x=y")), PV_EUSAGE,
					"invalid s3 URL 's3://b/a//./c': invalid object key 'a/./c': it has a '.' segment");
	assert_pv_error(storage_open(&st, "s3://bucket/p"), PV_ECONFIG, "no credentials for 's3://bucket'");
	assert_non_null(strstr(pv_error_hint_msg(), "AWS_ACCESS_KEY_ID"));
	/* a key alone is not a pair */
	assert_pv_error(open_with(&st, "s3://bucket/p", KV("s3-key=AK")), PV_ECONFIG, "no credentials for 's3://bucket'");

	assert_int_equal(open_with(&st, "s3://bucket//pre/fix/", KV("s3-key=AK", "s3-key-secret=SK")), 0);
	assert_string_equal(storage_url(st), "s3://bucket//pre/fix/");
	storage_free(st);

	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	assert_int_equal(storage_open(&st, "s3://bucket"), 0);
	storage_free(st);
	assert_int_equal(storage_open(&st, "gs://bucket/x"), 0);
	storage_free(st);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");

	/* the shared credentials file and AWS_PROFILE */
	creds = pv_asprintf("%s/.aws", home);
	assert_int_equal(mkdir(creds, 0700), 0);
	pv_free(creds);
	creds = pv_asprintf("%s/.aws/credentials", home);
	f = fopen(creds, "w");
	assert_non_null(f);
	fputs("[default]\naws_access_key_id = AK\n[other]\naws_access_key_id = AK2\naws_secret_access_key = SK2\n", f);
	fclose(f);
	assert_pv_error(storage_open(&st, "s3://bucket"), PV_ECONFIG, "no credentials for 's3://bucket'");
	setenv("AWS_PROFILE", "other", 1);
	assert_int_equal(storage_open(&st, "s3://bucket"), 0);
	storage_free(st);
	unsetenv("AWS_PROFILE");
	pv_free(creds);
}

static void
test_s3_bad_settings(void **state)
{
	Storage *st = NULL;

#define S3KV(...) KV("s3-key=AK", "s3-key-secret=SK", __VA_ARGS__)
	assert_pv_error(open_with(&st, "s3://b", S3KV("s3-bucket-style=odd")), PV_ECONFIG,
					"invalid value 'odd' for 's3-bucket-style': expected path, virtual or auto");
	assert_pv_error(open_with(&st, "s3://b", S3KV("s3-part-size=1MiB")), PV_ECONFIG,
					"invalid value '1MiB' for 's3-part-size': must be between 5.0 MiB and 5.0 GiB");
	assert_pv_error(open_with(&st, "s3://b", S3KV("s3-sse=rot13")), PV_ECONFIG,
					"invalid value 'rot13' for 's3-sse': expected AES256 or aws:kms");
	assert_pv_error(open_with(&st, "s3://b", S3KV("s3-endpoint=https://host/bucket")), PV_ECONFIG,
					"invalid s3-endpoint 'https://host/bucket': expected https://host[:port]");
	assert_non_null(strstr(pv_error_hint_msg(), "the bucket goes in the repository URL"));
	assert_pv_error(open_with(&st, "s3://b", S3KV("s3-verify-tls=maybe")), PV_ECONFIG,
					"invalid value 'maybe' for 's3-verify-tls': expected on or off");
	assert_pv_error(open_with(&st, "s3://b", S3KV("http-retries=-1")), PV_ECONFIG,
					"invalid value '-1' for 'http-retries': expected an integer from 0 to 100");
	assert_pv_error(open_with(&st, "s3://b", S3KV("http-timeout=10ms")), PV_ECONFIG,
					"invalid value '10ms' for 'http-timeout': expected a duration of at least 1s");
	assert_pv_error(open_with(&st, "s3://b", S3KV("storage-upload-jobs=0")), PV_ECONFIG,
					"invalid value '0' for 'storage-upload-jobs': expected an integer from 1 to 64");
	/* good ones, including the defaults the configuration layer hands over */
	assert_int_equal(open_with(&st, "s3://b", S3KV("s3-endpoint=http://127.0.0.1:9000/", "s3-bucket-style=auto",
												   "s3-part-size=16MiB", "s3-verify-tls=on", "http-timeout=60s",
												   "s3-sse=aws:kms", "s3-storage-class=STANDARD_IA")), 0);
	storage_free(st);
#undef S3KV
}

static void
test_azure_settings(void **state)
{
	Storage *st = NULL;

	assert_pv_error(storage_open(&st, "azure://"), PV_EUSAGE, "invalid azure URL 'azure://': no container");
	assert_pv_error(storage_open(&st, "azure://c/p"), PV_ECONFIG, "no storage account for 'azure://c'");
	assert_pv_error(open_with(&st, "azure://c/p", KV("azure-account=acct")), PV_ECONFIG,
					"no credentials for 'azure://c'");
	assert_non_null(strstr(pv_error_hint_msg(), "AZURE_STORAGE_KEY"));
	assert_pv_error(open_with(&st, "azure://c/p", KV("azure-account=acct", "azure-key=not base64!")), PV_ECONFIG,
					"invalid Azure storage key for account 'acct': it is not base64");
	assert_pv_error(open_with(&st, "azure://c/p", KV("azure-account=acct", "azure-key=a2V5",
													 "azure-endpoint=ftp://x")), PV_ECONFIG,
					"invalid azure-endpoint 'ftp://x': expected https://host[:port][/path]");
	assert_pv_error(open_with(&st, "azure://c/p", KV("azure-account=acct", "azure-sas=sv=1&sig=x",
													 "azure-block-size=1KiB")), PV_ECONFIG,
					"invalid value '1KiB' for 'azure-block-size': must be between 1.0 MiB and 3.9 GiB");
	assert_int_equal(open_with(&st, "azure://c/p", KV("azure-account=acct", "azure-sas=?sv=1&sig=x")), 0);
	storage_free(st);

	/* the environment, and connection strings */
	setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
	assert_int_equal(storage_open(&st, "azure://c"), 0);
	storage_free(st);
	setenv("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;"
		   "EndpointSuffix=core.chinacloudapi.cn", 1);
	assert_int_equal(storage_open(&st, "azure://c"), 0);
	storage_free(st);
	setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=a", 1);
	assert_pv_error(storage_open(&st, "azure://c"), PV_ECONFIG, "no credentials for 'azure://c'");
	unsetenv("AZURE_STORAGE_CONNECTION_STRING");
	setenv("AZURE_STORAGE_ACCOUNT", "a", 1);
	setenv("AZURE_STORAGE_KEY", "a2V5", 1);
	assert_int_equal(storage_open(&st, "azure://c"), 0);
	storage_free(st);
	unsetenv("AZURE_STORAGE_ACCOUNT");
	unsetenv("AZURE_STORAGE_KEY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3_urls_and_credentials),
		cmocka_unit_test(test_s3_bad_settings),
		cmocka_unit_test(test_azure_settings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
