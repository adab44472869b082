/*
 * error.c: thread-local error messages and the code tables of errors.def.
 *
 * Messages are kept in fixed buffers in thread-local storage: recording an
 * error never allocates, so it works even when memory is the problem.
 */
#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PV_ERROR_MSG_MAX 1024
#define PV_ERROR_HINT_MAX 512

static _Thread_local int err_code;
static _Thread_local char err_msg[PV_ERROR_MSG_MAX];
static _Thread_local char err_hint[PV_ERROR_HINT_MAX];

int
pv_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	err_code = code;
	err_hint[0] = '\0';
	return code;
}

int
pv_error_errno(int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	len = strlen(err_msg);
	snprintf(err_msg + len, sizeof(err_msg) - len, ": %s", strerror(errnum));
	err_code = code;
	err_hint[0] = '\0';
	return code;
}

int
pv_error_prefix(int code, const char *fmt, ...)
{
	char old[PV_ERROR_MSG_MAX];
	size_t len;
	va_list ap;

	memcpy(old, err_msg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	len = strlen(err_msg);
	if (old[0] != '\0')
		snprintf(err_msg + len, sizeof(err_msg) - len, ": %s", old);
	err_code = code;
	return code;
}

void
pv_error_hint(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_hint, sizeof(err_hint), fmt, ap);
	va_end(ap);
}

const char *
pv_error_msg(void)
{
	return err_msg;
}

const char *
pv_error_hint_msg(void)
{
	return err_hint;
}

int
pv_error_code(void)
{
	return err_code;
}

void
pv_error_clear(void)
{
	err_code = 0;
	err_msg[0] = '\0';
	err_hint[0] = '\0';
}

void
pv_error_save(PvErrorSave *out)
{
	out->code = err_code;
	snprintf(out->msg, sizeof(out->msg), "%s", err_msg);
	snprintf(out->hint, sizeof(out->hint), "%s", err_hint);
}

int
pv_error_restore(const PvErrorSave *e)
{
	err_code = e->code;
	snprintf(err_msg, sizeof(err_msg), "%s", e->msg);
	snprintf(err_hint, sizeof(err_hint), "%s", e->hint);
	return e->code;
}

const char *
pv_error_name(int code)
{
	switch (code)
	{
		case PV_OK:
			return "PV_OK";
#define PV_ERRDEF(name, value, exitcode, desc) case name: return #name;
#include "common/errors.def"
#undef PV_ERRDEF
	}
	return "PV_ERROR";
}

int
pv_error_exit_status(int code)
{
	switch (code)
	{
		case PV_OK:
			return 0;
#define PV_ERRDEF(name, value, exitcode, desc) case name: return exitcode;
#include "common/errors.def"
#undef PV_ERRDEF
	}
	return 1;
}
