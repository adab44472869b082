/*
 * error.h: the one error convention of pgvault.
 *
 * A fallible function returns int: 0 on success, a negative PV_E* code on
 * failure.  Before returning a failure it records a message with
 * pv_error_set(), which also returns the code, so the idiom is
 *
 *     return pv_error_set(PV_ENOTFOUND, "manifest '%s' not found", id);
 *
 * The message is thread-local: each worker thread has its own.  A caller
 * that wants to add context wraps it with pv_error_prefix(): the result reads
 * "pack 'ab12': short read".  An optional hint (advice for the user, printed
 * as a "HINT:" line) is set with pv_error_hint().
 *
 * Messages are lowercase, without a final period, and quote names as '%s'.
 * Only src/cli calls exit(); every other layer returns codes.
 */
#ifndef PV_COMMON_ERROR_H
#define PV_COMMON_ERROR_H

#include <stdarg.h>

enum
{
	PV_OK = 0,
#define PV_ERRDEF(name, value, exitcode, desc) name = value,
#include "common/errors.def"
#undef PV_ERRDEF
};

/* Record a message for the current thread; returns code. */
int pv_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Same as pv_error_set, appending ": strerror(errnum)". */
int pv_error_errno(int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context to the current message ("ctx: old message"); returns code. */
int pv_error_prefix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Attach advice for the user to the current error; replaces any earlier hint. */
void pv_error_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The current thread's last message and hint ("" when none); lent pointers. */
const char *pv_error_msg(void);
const char *pv_error_hint_msg(void);
int pv_error_code(void);

/* Forget the current thread's error. */
void pv_error_clear(void);

/* Copy another thread's error into this one (worker -> coordinator). */
typedef struct PvErrorSave
{
	int code;
	char msg[1024];
	char hint[512];
} PvErrorSave;
void pv_error_save(PvErrorSave *out);
int pv_error_restore(const PvErrorSave *e);

/* Name ("PV_ENOTFOUND") and exit status of a code. */
const char *pv_error_name(int code);
int pv_error_exit_status(int code);

#endif
