/*
 * log.c: see log.h.
 *
 * One mutex guards both outputs so lines from worker threads never
 * interleave.  Each line is formatted into a stack buffer first and written
 * with a single write() to each output.
 */
#include "common/log.h"

#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {
	"off", "error", "warn", "info", "detail", "debug", "trace",
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static PvLogLevel console_level = PV_LOG_INFO;
static PvLogLevel file_level = PV_LOG_INFO;
static int file_fd = -1;
static int console_timestamps = -1;	/* -1: decide by isatty */

int
pv_log_level_parse(PvLogLevel *out, const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
	{
		if (strcasecmp(name, level_names[i]) == 0)
		{
			*out = (PvLogLevel) i;
			return PV_OK;
		}
	}
	if (strcasecmp(name, "warning") == 0)
	{
		*out = PV_LOG_WARN;
		return PV_OK;
	}
	pv_error_set(PV_EUSAGE, "invalid log level '%s'", name);
	pv_error_hint("use one of: off, error, warn, info, detail, debug, trace");
	return PV_EUSAGE;
}

const char *
pv_log_level_name(PvLogLevel level)
{
	if ((int) level < 0 || level > PV_LOG_TRACE)
		return "?";
	return level_names[level];
}

void
pv_log_set_console_level(PvLogLevel level)
{
	console_level = level;
}

PvLogLevel
pv_log_console_level(void)
{
	return console_level;
}

void
pv_log_set_console_timestamps(bool on)
{
	console_timestamps = on ? 1 : 0;
}

int
pv_log_set_file(const char *path, PvLogLevel level)
{
	int fd = -1;

	if (path != NULL)
	{
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return pv_error_errno(PV_EIO, errno, "could not open log file '%s'", path);
	}
	pthread_mutex_lock(&log_lock);
	if (file_fd >= 0)
		close(file_fd);
	file_fd = fd;
	file_level = level;
	pthread_mutex_unlock(&log_lock);
	return PV_OK;
}

bool
pv_log_enabled(PvLogLevel level)
{
	return level <= console_level || (file_fd >= 0 && level <= file_level);
}

static size_t
format_timestamp(char *out, size_t size)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t) snprintf(out + n, size - n, ".%03d", (int) (tv.tv_usec / 1000));
	n += strftime(out + n, size - n, "%z", &tm);
	return n;
}

static void
write_all(int fd, const char *s, size_t len)
{
	while (len > 0)
	{
		ssize_t w = write(fd, s, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		len -= (size_t) w;
	}
}

void
pv_log(PvLogLevel level, const char *fmt, ...)
{
	char msg[4096];
	char line[4400];
	char ts[64];
	const char *label;
	va_list ap;
	int saved_errno = errno;
	bool to_console = level <= console_level;
	bool to_file = file_fd >= 0 && level <= file_level;
	bool stamp;
	int n;

	if (level == PV_LOG_OFF || (!to_console && !to_file))
		return;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	format_timestamp(ts, sizeof(ts));
	label = level == PV_LOG_WARN ? "warning" : level_names[level];

	pthread_mutex_lock(&log_lock);
	if (to_console)
	{
		stamp = console_timestamps < 0 ? !isatty(STDERR_FILENO) : console_timestamps;
		if (stamp)
			n = snprintf(line, sizeof(line), "%s [%d] %s: %s\n", ts, (int) getpid(), label, msg);
		else if (level <= PV_LOG_WARN)
			n = snprintf(line, sizeof(line), "pgvault: %s: %s\n", label, msg);
		else
			n = snprintf(line, sizeof(line), "%s\n", msg);
		write_all(STDERR_FILENO, line, (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1);
	}
	if (to_file)
	{
		n = snprintf(line, sizeof(line), "%s [%d] %s: %s\n", ts, (int) getpid(), label, msg);
		write_all(file_fd, line, (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1);
	}
	pthread_mutex_unlock(&log_lock);
	errno = saved_errno;
}
