/*
 * log.h: leveled logging to stderr and an optional log file.
 *
 * Levels, most to least severe: error, warn, info, detail, debug, trace.
 * stderr shows messages at or above the console level (default "info");
 * the log file, when set, gets messages at or above its own level, each line
 * with an ISO 8601 timestamp, the pid and the level, so it can be read long
 * after the terminal is gone.  On a terminal stderr lines are short
 * ("pgvault: warning: ..."); elsewhere (cron, systemd) they carry the
 * timestamp too.  Logging is thread-safe: one line is written at a time.
 *
 * Never pass a secret to these functions; see config's masking helpers.
 */
#ifndef PV_COMMON_LOG_H
#define PV_COMMON_LOG_H

#include <stdbool.h>

typedef enum PvLogLevel
{
	PV_LOG_OFF = 0,
	PV_LOG_ERROR,
	PV_LOG_WARN,
	PV_LOG_INFO,
	PV_LOG_DETAIL,
	PV_LOG_DEBUG,
	PV_LOG_TRACE,
} PvLogLevel;

/* Parse "error".."trace" (or "off"); returns 0 or PV_EUSAGE with a message. */
int pv_log_level_parse(PvLogLevel *out, const char *name);
const char *pv_log_level_name(PvLogLevel level);

void pv_log_set_console_level(PvLogLevel level);
PvLogLevel pv_log_console_level(void);
/* Open (append) a log file; NULL closes it.  Returns 0 or PV_EIO. */
int pv_log_set_file(const char *path, PvLogLevel level);
/* Force or suppress timestamps on stderr (default: only when not a tty). */
void pv_log_set_console_timestamps(bool on);

void pv_log(PvLogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool pv_log_enabled(PvLogLevel level);

#define pv_log_error(...) pv_log(PV_LOG_ERROR, __VA_ARGS__)
#define pv_log_warn(...) pv_log(PV_LOG_WARN, __VA_ARGS__)
#define pv_log_info(...) pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_log_detail(...) pv_log(PV_LOG_DETAIL, __VA_ARGS__)
#define pv_log_debug(...) pv_log(PV_LOG_DEBUG, __VA_ARGS__)
#define pv_log_trace(...) pv_log(PV_LOG_TRACE, __VA_ARGS__)

#endif
