/*
 * test_http.c: the HTTP layer (src/storage/http.c) against a scripted
 * server on 127.0.0.1 in a thread of the test: retries and what is and is
 * not retried, the one-line service errors, sinks put back, the sign
 * callback run per attempt, response headers; and the XML and date
 * helpers the drivers parse answers with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/http.h"
#include "storage_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * ---- a scripted server: one answer per request, "CLOSE" drops the connection ----
 * (A drop on a reused keep-alive connection is re-sent by libcurl itself,
 * so the answer before a CLOSE says "Connection: close": the drop then
 * hits a fresh connection and reaches our retry logic.)
 */

typedef struct Script
{
	int lfd;
	int port;
	const char *answers[16];
	int nanswers;
	int served;					/* requests seen */
	char last_request[4096];
	pthread_t thread;
} Script;

static int
script_read_request(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	char *end;
	long clen = 0;
	char *cl;

	for (;;)
	{
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);

		if (n <= 0)
			return -1;
		len += (size_t) n;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	if ((cl = strcasestr(buf, "\r\nContent-Length:")) != NULL)
		clen = strtol(cl + 17, NULL, 10);
	/* Drain the body (we only keep the head). */
	for (long have = (long) (len - (size_t) (end + 4 - buf)); have < clen;)
	{
		char tmp[4096];
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);

		if (n <= 0)
			return -1;
		have += n;
	}
	return 0;
}

static void *
script_serve(void *arg)
{
	Script *s = arg;

	while (s->served < s->nanswers)
	{
		int fd = accept(s->lfd, NULL, NULL);

		if (fd < 0)
			break;
		while (s->served < s->nanswers)
		{
			const char *a;

			if (script_read_request(fd, s->last_request, sizeof(s->last_request)) < 0)
				break;
			a = s->answers[s->served++];
			if (strcmp(a, "CLOSE") == 0)
				break;
			if (send(fd, a, strlen(a), MSG_NOSIGNAL) < 0)
				break;
		}
		close(fd);
	}
	return NULL;
}

static void
script_start(Script *s)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sa);

	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *) &sa, &slen), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, script_serve, s), 0);
}

static void
script_stop(Script *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	close(s->lfd);
	pthread_join(s->thread, NULL);
}

#define OK_HELLO "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"\r\nX-Thing:  spaced  \r\n\r\nhello"
#define ERR_503 "HTTP/1.1 503 Slow Down\r\nContent-Length: 96\r\nConnection: close\r\n\r\n" \
	"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>         "
#define ERR_403 "HTTP/1.1 403 Forbidden\r\nContent-Length: 124\r\n\r\n" \
	"<?xml version=\"1.0\"?><Error><Code>AuthorizationFailure</Code><Message>Server failed\n" \
	"RequestId:1\nTime:2026</Message></Error>\n"
#define HEAD_404 "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nx-ms-error-code: BlobNotFound\r\n\r\n"

static HttpClient *
test_client(void)
{
	HttpClient *c = NULL;

	assert_int_equal(http_client_new(&c, &(HttpClientOpts) {.service = "test", .retries = 2,
										 .retry_base_ms = 1, .retry_max_ms = 4, .timeout_ms = 30000}), 0);
	return c;
}

static int sign_calls;

static int
count_sign(HttpHeaders *h, const HttpRequest *req, void *payload)
{
	sign_calls++;
	http_headers_add(h, "X-Attempt", "%d", sign_calls);
	return 0;
}

static void
test_retry_then_success(void **state)
{
	Script s = {.answers = {ERR_503, "CLOSE", OK_HELLO}, .nanswers = 3};
	HttpClient *c;
	HttpResponse resp;
	Buf sink = PV_BUF_INIT;
	char url[64];
	char *etag;

	script_start(&s);
	c = test_client();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", s.port);
	buf_append_str(&sink, "old:");
	http_response_init(&resp);
	sign_calls = 0;
	assert_int_equal(http_request(c, &(HttpRequest) {.method = "PUT", .url = url, .body = "data", .body_len = 4,
										 .sink = &sink, .sign = count_sign, .what = "put 'x'"}, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(buf_cstr(&sink), "old:hello");
	assert_int_equal(sign_calls, 3);
	assert_non_null(strstr(s.last_request, "X-Attempt: 3\r\n"));
	assert_null(strcasestr(s.last_request, "Expect:"));
	etag = http_response_header_dup(&resp, "etag");
	assert_string_equal(etag, "\"abc\"");
	pv_free(etag);
	etag = http_response_header_dup(&resp, "X-THING");
	assert_string_equal(etag, "spaced");
	pv_free(etag);
	assert_int_equal(http_client_requests(c), 3);
	assert_int_equal(http_client_retries(c), 2);
	http_response_free(&resp);
	buf_free(&sink);
	http_client_free(c);
	script_stop(&s);
}

static void
test_persistent_failure_and_final_answers(void **state)
{
	Script s = {.answers = {ERR_503, ERR_503, ERR_503, ERR_403, HEAD_404}, .nanswers = 5};
	HttpClient *c;
	HttpResponse resp;
	Buf sink = PV_BUF_INIT;
	char url[64];
	char code[64];

	script_start(&s);
	c = test_client();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/y", s.port);
	http_response_init(&resp);
	buf_append_str(&sink, "keep");
	assert_pv_error(http_request(c, &(HttpRequest) {.method = "GET", .url = url, .sink = &sink,
										 .what = "cannot read object 'y'"}, &resp), PV_ERETRY,
					"cannot read object 'y': HTTP 503 SlowDown: Please reduce your request rate. "
					"(gave up after 3 attempts)");
	assert_string_equal(buf_cstr(&sink), "keep");

	/* A final answer is not an error of this layer: the caller reads it (once). */
	assert_int_equal(http_request(c, &(HttpRequest) {.method = "GET", .url = url, .sink = &sink,
										 .what = "w"}, &resp), 0);
	assert_int_equal(resp.status, 403);
	assert_string_equal(buf_cstr(&sink), "keep");	/* error bodies never reach the sink */
	assert_pv_error(http_response_error(&resp, PV_EAUTH, "cannot read object 'y'"), PV_EAUTH,
					"cannot read object 'y': HTTP 403 AuthorizationFailure: Server failed");
	assert_int_equal(http_request(c, &(HttpRequest) {.method = "HEAD", .url = url, .what = "w"}, &resp), 0);
	assert_int_equal(resp.status, 404);
	http_response_error_code(&resp, code, sizeof(code));
	assert_string_equal(code, "BlobNotFound");
	assert_int_equal(http_client_requests(c), 5);
	http_response_free(&resp);
	buf_free(&sink);
	http_client_free(c);
	script_stop(&s);
}

static void
test_transport_errors(void **state)
{
	HttpClient *c = test_client();
	HttpResponse resp;
	int rc;

	http_response_init(&resp);
	/* Nothing listens on port 1: refused, retried, then one clear line. */
	rc = http_request(c, &(HttpRequest) {.method = "GET", .url = "http://127.0.0.1:1/z", .what = "cannot read 'z'"},
					  &resp);
	assert_int_equal(rc, PV_ERETRY);
	assert_non_null(strstr(pv_error_msg(), "cannot read 'z': "));
	assert_non_null(strstr(pv_error_msg(), "(gave up after 3 attempts)"));
	/* A malformed URL is not worth retrying. */
	rc = http_request(c, &(HttpRequest) {.method = "GET", .url = "nope://x", .what = "w"}, &resp);
	assert_int_equal(rc, PV_ERROR);
	assert_int_equal(http_client_requests(c), 4);
	http_response_free(&resp);
	http_client_free(c);
}

/* ---- helpers ---- */

static void
test_xml(void **state)
{
	const char *doc = "<?xml version=\"1.0\"?><R><Contents><Key>a&amp;b &lt;&#x41;&#233;&gt;</Key>"
		"<Size>12</Size></Contents><Contents><Key>second</Key><Empty/></Contents>"
		"<NextMarker/><IsTruncated>true</IsTruncated><KeyCount>2</KeyCount></R>";
	const char *pos = doc, *end = doc + strlen(doc), *v;
	size_t len;
	Buf b = PV_BUF_INIT;

	assert_true(http_xml_next(&pos, end, "Contents", &v, &len));
	http_xml_decode(&b, v, len);
	assert_string_equal(buf_cstr(&b), "<Key>a&b <A\xc3\xa9></Key><Size>12</Size>");
	assert_true(http_xml_next(&pos, end, "Contents", &v, &len));
	assert_int_equal(len, strlen("<Key>second</Key><Empty/>"));
	assert_false(http_xml_next(&pos, end, "Contents", &v, &len));
	pos = doc;
	assert_true(http_xml_next(&pos, end, "NextMarker", &v, &len));
	assert_int_equal(len, 0);
	pos = doc;
	/* "Key" must not match "KeyCount", nor "IsTruncated" a prefix of it */
	assert_true(http_xml_next(&pos, end, "KeyCount", &v, &len));
	assert_memory_equal(v, "2", 1);
	pos = doc;
	assert_false(http_xml_next(&pos, end, "Missing", &v, &len));
	buf_reset(&b);
	http_xml_decode(&b, "&bogus; & &#0; &#x110000;", 25);
	assert_string_equal(buf_cstr(&b), "&bogus; & &#0; &#x110000;");
	buf_reset(&b);
	http_xml_escape(&b, "a<b>&\"'");
	assert_string_equal(buf_cstr(&b), "a&lt;b&gt;&amp;&quot;&apos;");
	buf_free(&b);

	assert_int_equal(http_date_parse("Sun, 22 Nov 2026 10:00:00 GMT"), 1795341600);
	assert_int_equal(http_date_parse("2026-11-22T10:00:00.000Z"), 1795341600);
	assert_int_equal(http_date_parse("garbage"), 0);
	assert_int_equal(http_date_parse(NULL), 0);
}

static void
test_headers(void **state)
{
	HttpHeaders h = {0};
	size_t len;
	const char *v;

	for (int i = 0; i < 40; i++)
		http_headers_add(&h, "X-N", "%d", i);
	http_headers_add(&h, "Range", "bytes=%d-%d", 0, 9);
	v = http_headers_get(&h, "range", &len);
	assert_non_null(v);
	assert_int_equal(len, 9);
	assert_memory_equal(v, "bytes=0-9", 9);
	v = http_headers_get(&h, "x-n", &len);
	assert_memory_equal(v, "0", 1);
	assert_null(http_headers_get(&h, "X", NULL));
	http_headers_free(&h);
	http_headers_free(&h);		/* twice is fine */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_then_success),
		cmocka_unit_test(test_persistent_failure_and_final_answers),
		cmocka_unit_test(test_transport_errors),
		cmocka_unit_test(test_xml),
		cmocka_unit_test(test_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
