/*
 * test_log.c: levels, console and log-file output (common/log.h).
 *
 * stderr is redirected into a temporary file while a test logs, so the
 * console lines can be compared; cmocka itself reports on stdout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "2026-11-22T14:30:05.123+0100 [1234] warning: message" */
#define STAMP_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{4} \\[[0-9]+\\] "

static char tmpdir[256];
static int saved_stderr = -1;
static char stderr_path[300];

static int
setup(void **state)
{
	(void) state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pv_test_log_XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[400];

	(void) state;
	pv_log_set_file(NULL, PV_LOG_INFO);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
capture_stderr_begin(void)
{
	int fd;

	snprintf(stderr_path, sizeof(stderr_path), "%s/stderr", tmpdir);
	fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* Restore stderr and return what was written to it (pv_free it). */
static char *
capture_stderr_end(void)
{
	FILE *f;
	char *data = pv_calloc(1, 65536);

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	f = fopen(stderr_path, "r");
	assert_non_null(f);
	assert_true(fread(data, 1, 65535, f) < 65535);
	fclose(f);
	return data;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *data = pv_calloc(1, 1 << 20);

	assert_non_null(f);
	assert_true(fread(data, 1, (1 << 20) - 1, f) < (1 << 20) - 1);
	fclose(f);
	return data;
}

static bool
matches(const char *line, const char *re)
{
	regex_t rx;
	bool ok;

	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&rx, line, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

static void
test_level_parse_and_names(void **state)
{
	PvLogLevel l = PV_LOG_OFF;

	(void) state;
	assert_int_equal(pv_log_level_parse(&l, "error"), PV_OK);
	assert_int_equal(l, PV_LOG_ERROR);
	assert_int_equal(pv_log_level_parse(&l, "WARN"), PV_OK);
	assert_int_equal(l, PV_LOG_WARN);
	assert_int_equal(pv_log_level_parse(&l, "warning"), PV_OK);
	assert_int_equal(l, PV_LOG_WARN);
	assert_int_equal(pv_log_level_parse(&l, "Info"), PV_OK);
	assert_int_equal(l, PV_LOG_INFO);
	assert_int_equal(pv_log_level_parse(&l, "detail"), PV_OK);
	assert_int_equal(l, PV_LOG_DETAIL);
	assert_int_equal(pv_log_level_parse(&l, "debug"), PV_OK);
	assert_int_equal(l, PV_LOG_DEBUG);
	assert_int_equal(pv_log_level_parse(&l, "trace"), PV_OK);
	assert_int_equal(l, PV_LOG_TRACE);
	assert_int_equal(pv_log_level_parse(&l, "off"), PV_OK);
	assert_int_equal(l, PV_LOG_OFF);

	l = PV_LOG_DEBUG;
	assert_int_equal(pv_log_level_parse(&l, "loud"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "invalid log level 'loud'");
	assert_string_equal(pv_error_hint_msg(), "use one of: off, error, warn, info, detail, debug, trace");
	assert_int_equal(l, PV_LOG_DEBUG);
	assert_int_equal(pv_log_level_parse(&l, ""), PV_EUSAGE);

	assert_string_equal(pv_log_level_name(PV_LOG_OFF), "off");
	assert_string_equal(pv_log_level_name(PV_LOG_WARN), "warn");
	assert_string_equal(pv_log_level_name(PV_LOG_TRACE), "trace");
	assert_string_equal(pv_log_level_name((PvLogLevel) 99), "?");
	assert_string_equal(pv_log_level_name((PvLogLevel) -1), "?");
}

static void
test_file_lines_have_timestamp_and_level(void **state)
{
	char path[300];
	char *data, *line, *save = NULL;
	char re[512];
	int n = 0;

	(void) state;
	snprintf(path, sizeof(path), "%s/pgvault.log", tmpdir);
	pv_log_set_console_level(PV_LOG_OFF);
	assert_int_equal(pv_log_set_file(path, PV_LOG_DEBUG), PV_OK);
	pv_log_error("backup '%s' failed", "b1");
	pv_log_warn("disk almost full");
	pv_log_info("backup started");
	pv_log_detail("reading table %d", 7);
	pv_log_debug("chunk %s", "ab12");
	pv_log_trace("never in the file");	/* below the file level */
	assert_int_equal(pv_log_set_file(NULL, PV_LOG_INFO), PV_OK);
	pv_log_error("after close: not in the file");

	data = read_file(path);
	static const char *const expect[] = {
		"error: backup 'b1' failed", "warning: disk almost full", "info: backup started",
		"detail: reading table 7", "debug: chunk ab12",
	};
	for (line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
	{
		assert_true(n < 5);
		snprintf(re, sizeof(re), STAMP_RE "%s$", expect[n]);
		if (!matches(line, re))
			fail_msg("line '%s' does not match '%s'", line, re);
		n++;
	}
	assert_int_equal(n, 5);
	pv_free(data);

	/* the file is appended to, not truncated */
	assert_int_equal(pv_log_set_file(path, PV_LOG_WARN), PV_OK);
	pv_log_warn("second run");
	pv_log_info("filtered by the file level");
	pv_log_set_file(NULL, PV_LOG_INFO);
	data = read_file(path);
	assert_non_null(strstr(data, "error: backup 'b1' failed"));
	assert_non_null(strstr(data, "warning: second run\n"));
	assert_null(strstr(data, "filtered"));
	assert_null(strstr(data, "never in the file"));
	assert_null(strstr(data, "after close"));
	pv_free(data);
	pv_log_set_console_level(PV_LOG_INFO);
}

static void
test_set_file_error(void **state)
{
	char path[300];

	(void) state;
	snprintf(path, sizeof(path), "%s/no/such/dir/x.log", tmpdir);
	assert_int_equal(pv_log_set_file(path, PV_LOG_INFO), PV_EIO);
	assert_non_null(strstr(pv_error_msg(), "could not open log file '"));
	assert_non_null(strstr(pv_error_msg(), "x.log': No such file or directory"));
}

static void
test_console_levels_and_format(void **state)
{
	char *out;

	(void) state;
	pv_log_set_console_timestamps(false);
	pv_log_set_console_level(PV_LOG_INFO);
	capture_stderr_begin();
	pv_log_error("it broke");
	pv_log_warn("careful");
	pv_log_info("plain progress");
	pv_log_detail("hidden detail");
	pv_log_debug("hidden debug");
	out = capture_stderr_end();
	assert_string_equal(out, "pgvault: error: it broke\npgvault: warning: careful\nplain progress\n");
	pv_free(out);

	/* raise and lower the console level */
	pv_log_set_console_level(PV_LOG_DEBUG);
	assert_int_equal(pv_log_console_level(), PV_LOG_DEBUG);
	capture_stderr_begin();
	pv_log_debug("now visible");
	pv_log_trace("still hidden");
	pv_log_set_console_level(PV_LOG_ERROR);
	pv_log_warn("hidden warning");
	pv_log_error("only errors");
	pv_log_set_console_level(PV_LOG_OFF);
	pv_log_error("nothing at all");
	pv_log(PV_LOG_OFF, "off is never a message level");
	out = capture_stderr_end();
	assert_string_equal(out, "now visible\npgvault: error: only errors\n");
	pv_free(out);

	/* with timestamps (cron, systemd) the console lines look like the file's */
	pv_log_set_console_level(PV_LOG_INFO);
	pv_log_set_console_timestamps(true);
	capture_stderr_begin();
	pv_log_info("stamped");
	out = capture_stderr_end();
	assert_true(matches(out, STAMP_RE "info: stamped\n$"));
	pv_free(out);
	pv_log_set_console_timestamps(false);
}

static void
test_enabled_and_errno(void **state)
{
	char path[300];

	(void) state;
	pv_log_set_console_level(PV_LOG_WARN);
	assert_true(pv_log_enabled(PV_LOG_ERROR));
	assert_true(pv_log_enabled(PV_LOG_WARN));
	assert_false(pv_log_enabled(PV_LOG_INFO));
	snprintf(path, sizeof(path), "%s/enabled.log", tmpdir);
	assert_int_equal(pv_log_set_file(path, PV_LOG_DEBUG), PV_OK);
	assert_true(pv_log_enabled(PV_LOG_DEBUG));	/* the file wants it */
	assert_false(pv_log_enabled(PV_LOG_TRACE));
	/* logging does not disturb errno (callers log, then report errno) */
	errno = ENOSPC;
	pv_log_debug("x");
	assert_int_equal(errno, ENOSPC);
	pv_log_set_file(NULL, PV_LOG_INFO);
	pv_log_set_console_level(PV_LOG_INFO);
}

static void
test_long_message_truncated(void **state)
{
	char path[300];
	char *big = pv_malloc(10000);
	char *data;

	(void) state;
	memset(big, 'q', 9999);
	big[9999] = '\0';
	snprintf(path, sizeof(path), "%s/long.log", tmpdir);
	pv_log_set_console_level(PV_LOG_OFF);
	assert_int_equal(pv_log_set_file(path, PV_LOG_INFO), PV_OK);
	pv_log_info("%s", big);
	pv_log_info("next");
	pv_log_set_file(NULL, PV_LOG_INFO);
	data = read_file(path);
	/* one bounded line, still terminated, and the next line intact */
	assert_non_null(strchr(data, '\n'));
	assert_true(strchr(data, '\n') - data < 4400);
	assert_true(matches(strchr(data, '\n') + 1, STAMP_RE "info: next\n$"));
	pv_free(data);
	pv_free(big);
	pv_log_set_console_level(PV_LOG_INFO);
}

static void *
log_thread(void *p)
{
	int id = *(int *) p;

	for (int i = 0; i < 300; i++)
		pv_log_info("thread %d line %d %s", id, i, "padding-padding-padding-padding-padding-padding");
	return NULL;
}

static void
test_threads_do_not_interleave(void **state)
{
	char path[300];
	pthread_t th[4];
	int ids[4] = {0, 1, 2, 3};
	int counts[4] = {0};
	char *data, *line, *save = NULL;

	(void) state;
	snprintf(path, sizeof(path), "%s/threads.log", tmpdir);
	pv_log_set_console_level(PV_LOG_OFF);
	assert_int_equal(pv_log_set_file(path, PV_LOG_INFO), PV_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_thread, &ids[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	pv_log_set_file(NULL, PV_LOG_INFO);
	data = read_file(path);
	for (line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
	{
		int id, n;

		if (!matches(line, STAMP_RE "info: thread [0-3] line [0-9]+ padding-padding-padding-padding-padding-padding$"))
			fail_msg("garbled line '%s'", line);
		assert_int_equal(sscanf(strstr(line, "thread "), "thread %d line %d", &id, &n), 2);
		assert_int_equal(n, counts[id]);	/* each thread's lines in order */
		counts[id]++;
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(counts[i], 300);
	pv_free(data);
	pv_log_set_console_level(PV_LOG_INFO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse_and_names),
		cmocka_unit_test(test_file_lines_have_timestamp_and_level),
		cmocka_unit_test(test_set_file_error),
		cmocka_unit_test(test_console_levels_and_format),
		cmocka_unit_test(test_enabled_and_errno),
		cmocka_unit_test(test_long_message_truncated),
		cmocka_unit_test(test_threads_do_not_interleave),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
