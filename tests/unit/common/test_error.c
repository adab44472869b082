/*
 * test_error.c: error codes, thread-local messages, prefixes, hints and exit
 * statuses (common/error.h, common/errors.def).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void
test_codes_are_distinct_and_negative(void **state)
{
	static const int codes[] = {
#define PV_ERRDEF(name, value, exitcode, desc) name,
#include "common/errors.def"
#undef PV_ERRDEF
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	(void) state;
	assert_true(n >= 13);
	for (size_t i = 0; i < n; i++)
	{
		assert_true(codes[i] < 0);
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
	/* values are stable: they appear in JSON output and logs */
	assert_int_equal(PV_OK, 0);
	assert_int_equal(PV_ERROR, -1);
	assert_int_equal(PV_EUSAGE, -2);
	assert_int_equal(PV_ENOTFOUND, -4);
	assert_int_equal(PV_ECORRUPT, -7);
	assert_int_equal(PV_EREFUSED, -13);
}

static void
test_names_and_exit_statuses(void **state)
{
	(void) state;
	assert_string_equal(pv_error_name(PV_OK), "PV_OK");
	assert_string_equal(pv_error_name(PV_ERROR), "PV_ERROR");
	assert_string_equal(pv_error_name(PV_EUSAGE), "PV_EUSAGE");
	assert_string_equal(pv_error_name(PV_ENOTFOUND), "PV_ENOTFOUND");
	assert_string_equal(pv_error_name(PV_ECORRUPT), "PV_ECORRUPT");
	assert_string_equal(pv_error_name(PV_EREFUSED), "PV_EREFUSED");
	assert_string_equal(pv_error_name(-999), "PV_ERROR");	/* unknown codes read as generic */

	assert_int_equal(pv_error_exit_status(PV_OK), 0);
	assert_int_equal(pv_error_exit_status(PV_ERROR), 1);
	assert_int_equal(pv_error_exit_status(PV_EUSAGE), 2);
	assert_int_equal(pv_error_exit_status(PV_ECONFIG), 2);
	assert_int_equal(pv_error_exit_status(PV_ENOTFOUND), 1);
	assert_int_equal(pv_error_exit_status(PV_EEXISTS), 5);
	assert_int_equal(pv_error_exit_status(PV_ELOCKED), 4);
	assert_int_equal(pv_error_exit_status(PV_ECORRUPT), 3);
	assert_int_equal(pv_error_exit_status(PV_EAUTH), 1);
	assert_int_equal(pv_error_exit_status(PV_ERETRY), 1);
	assert_int_equal(pv_error_exit_status(PV_ECANCEL), 1);
	assert_int_equal(pv_error_exit_status(PV_EIO), 1);
	assert_int_equal(pv_error_exit_status(PV_EPG), 1);
	assert_int_equal(pv_error_exit_status(PV_EREFUSED), 5);
	assert_int_equal(pv_error_exit_status(-999), 1);
}

static void
test_set_and_clear(void **state)
{
	(void) state;
	pv_error_clear();
	assert_int_equal(pv_error_code(), 0);
	assert_string_equal(pv_error_msg(), "");
	assert_string_equal(pv_error_hint_msg(), "");

	assert_int_equal(pv_error_set(PV_ENOTFOUND, "manifest '%s' not found", "ab12"), PV_ENOTFOUND);
	assert_int_equal(pv_error_code(), PV_ENOTFOUND);
	assert_string_equal(pv_error_msg(), "manifest 'ab12' not found");

	pv_error_hint("run 'pgvault list' to see backups");
	assert_string_equal(pv_error_hint_msg(), "run 'pgvault list' to see backups");
	pv_error_hint("second %s", "hint");	/* replaces */
	assert_string_equal(pv_error_hint_msg(), "second hint");

	/* a new error drops the old hint */
	pv_error_set(PV_EIO, "disk on fire");
	assert_string_equal(pv_error_hint_msg(), "");
	assert_string_equal(pv_error_msg(), "disk on fire");

	pv_error_clear();
	assert_int_equal(pv_error_code(), 0);
	assert_string_equal(pv_error_msg(), "");
}

static void
test_errno(void **state)
{
	char expect[256];

	(void) state;
	snprintf(expect, sizeof(expect), "could not open '/x': %s", strerror(ENOENT));
	assert_int_equal(pv_error_errno(PV_EIO, ENOENT, "could not open '%s'", "/x"), PV_EIO);
	assert_string_equal(pv_error_msg(), expect);
	assert_int_equal(pv_error_code(), PV_EIO);
	pv_error_hint("h");
	pv_error_errno(PV_ERROR, EACCES, "again");
	assert_string_equal(pv_error_hint_msg(), "");
}

static void
test_prefix(void **state)
{
	(void) state;
	pv_error_set(PV_ECORRUPT, "short read");
	pv_error_hint("run 'pgvault verify'");
	assert_int_equal(pv_error_prefix(PV_ECORRUPT, "pack '%s'", "ab12"), PV_ECORRUPT);
	assert_string_equal(pv_error_msg(), "pack 'ab12': short read");
	assert_string_equal(pv_error_hint_msg(), "run 'pgvault verify'");	/* the hint survives */
	pv_error_prefix(PV_ECORRUPT, "backup '%s'", "20260101");
	assert_string_equal(pv_error_msg(), "backup '20260101': pack 'ab12': short read");

	/* the prefix may change the code */
	assert_int_equal(pv_error_prefix(PV_ERROR, "restore"), PV_ERROR);
	assert_int_equal(pv_error_code(), PV_ERROR);

	/* no message yet: the prefix alone, without a dangling ": " */
	pv_error_clear();
	pv_error_prefix(PV_ERROR, "context only");
	assert_string_equal(pv_error_msg(), "context only");
}

static void
test_long_messages_truncate(void **state)
{
	char longtext[3000];

	(void) state;
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	pv_error_set(PV_ERROR, "%s", longtext);
	assert_int_equal(strlen(pv_error_msg()), sizeof(((PvErrorSave *) 0)->msg) - 1);
	pv_error_prefix(PV_ERROR, "ctx");
	assert_int_equal(strncmp(pv_error_msg(), "ctx: xxx", 8), 0);
	assert_int_equal(strlen(pv_error_msg()), sizeof(((PvErrorSave *) 0)->msg) - 1);
	pv_error_hint("%s", longtext);
	assert_int_equal(strlen(pv_error_hint_msg()), sizeof(((PvErrorSave *) 0)->hint) - 1);
}

static void
test_save_restore(void **state)
{
	PvErrorSave s;

	(void) state;
	pv_error_set(PV_ELOCKED, "repository '%s' is locked", "/r");
	pv_error_hint("wait for the other backup");
	pv_error_save(&s);
	pv_error_clear();
	assert_string_equal(pv_error_msg(), "");
	assert_int_equal(pv_error_restore(&s), PV_ELOCKED);
	assert_int_equal(pv_error_code(), PV_ELOCKED);
	assert_string_equal(pv_error_msg(), "repository '/r' is locked");
	assert_string_equal(pv_error_hint_msg(), "wait for the other backup");
}

typedef struct ThreadResult
{
	int id;
	int code_seen_at_start;
	char msg_seen_at_start[64];
	PvErrorSave saved;
	int mismatches;
} ThreadResult;

static void *
thread_main(void *p)
{
	ThreadResult *r = p;
	char expect[64];

	/* a new thread starts with no error, whatever the creator had */
	r->code_seen_at_start = pv_error_code();
	snprintf(r->msg_seen_at_start, sizeof(r->msg_seen_at_start), "%s", pv_error_msg());
	for (int i = 0; i < 10000; i++)
	{
		pv_error_set(PV_EIO, "thread %d round %d", r->id, i);
		snprintf(expect, sizeof(expect), "thread %d round %d", r->id, i);
		if (strcmp(pv_error_msg(), expect) != 0 || pv_error_code() != PV_EIO)
			r->mismatches++;
	}
	pv_error_hint("hint of thread %d", r->id);
	pv_error_save(&r->saved);
	return NULL;
}

static void
test_thread_local(void **state)
{
	ThreadResult res[4];
	pthread_t th[4];

	(void) state;
	pv_error_set(PV_ECONFIG, "main thread message");
	pv_error_hint("main hint");
	for (int i = 0; i < 4; i++)
	{
		memset(&res[i], 0, sizeof(res[i]));
		res[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &res[i]), 0);
	}
	for (int i = 0; i < 4; i++)
	{
		pthread_join(th[i], NULL);
		assert_int_equal(res[i].code_seen_at_start, 0);
		assert_string_equal(res[i].msg_seen_at_start, "");
		assert_int_equal(res[i].mismatches, 0);
	}
	/* the workers never touched the main thread's error */
	assert_int_equal(pv_error_code(), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "main thread message");
	assert_string_equal(pv_error_hint_msg(), "main hint");
	/* but a worker's error can be carried over */
	assert_int_equal(pv_error_restore(&res[2].saved), PV_EIO);
	assert_string_equal(pv_error_msg(), "thread 2 round 9999");
	assert_string_equal(pv_error_hint_msg(), "hint of thread 2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_are_distinct_and_negative),
		cmocka_unit_test(test_names_and_exit_statuses),
		cmocka_unit_test(test_set_and_clear),
		cmocka_unit_test(test_errno),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_long_messages_truncate),
		cmocka_unit_test(test_save_restore),
		cmocka_unit_test(test_thread_local),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
