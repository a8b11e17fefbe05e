/* log.c: see log.h.  Lines longer than LOG_LINE_MAX are cut, never split. */
#include "config.h"

#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static const char *log_progname = "snapkeep";
static enum log_level log_level_current = LOG_LEVEL_INFO;
static int log_journal = -1;

static const char *const log_level_names[] = { "error", "warning", "info", "debug" };
static const int log_syslog_prio[] = { 3, 4, 6, 7 };

void
log_init(const char *progname, enum log_level level)
{
	log_progname = progname;
	log_level_current = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_level(enum log_level level)
{
	log_level_current = level;
}

enum log_level
log_get_level(void)
{
	return log_level_current;
}

int
log_level_parse(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
		if (strcmp(name, log_level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "warn") == 0) {
		*level_r = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

static void
log_vemit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len = 0;
	int n;

	if (level > log_level_current)
		return;
	if (log_journal < 0)
		log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ", log_syslog_prio[level], log_progname);
	else
		n = snprintf(line, sizeof(line), "%s[%ld]: %s: ", log_progname, (long)getpid(),
			     log_level_names[level]);
	if (n > 0)
		len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	if (errnum != 0 && len < sizeof(line) - 1) {
		n = snprintf(line + len, sizeof(line) - len, ": %s", strerror(errnum));
		if (n > 0)
			len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	}
	/* Control characters from the network never reach the log verbatim. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

#define LOG_DEFINE(name, level, with_errno)                                   \
	void name(const char *fmt, ...)                                       \
	{                                                                     \
		int saved = errno;                                            \
		va_list ap;                                                   \
		va_start(ap, fmt);                                            \
		log_vemit(level, with_errno ? saved : 0, fmt, ap);            \
		va_end(ap);                                                   \
		errno = saved;                                                \
	}

LOG_DEFINE(log_error, LOG_LEVEL_ERROR, 1)
LOG_DEFINE(log_errorx, LOG_LEVEL_ERROR, 0)
LOG_DEFINE(log_warn, LOG_LEVEL_WARN, 1)
LOG_DEFINE(log_warnx, LOG_LEVEL_WARN, 0)
LOG_DEFINE(log_info, LOG_LEVEL_INFO, 0)
LOG_DEFINE(log_debug, LOG_LEVEL_DEBUG, 0)
