/* log.h: one line per event on stderr, "prog: level: subsystem: key=value ...".
 *
 * journald reads stderr of services; when JOURNAL_STREAM says stderr is the
 * journal, each line is prefixed with its syslog priority ("<4>") so the
 * journal keeps the level.  Never log message bodies or passwords.
 * Thread-safe: each line is written with one write(2). */
#ifndef SK_LOG_H
#define SK_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warning", "info", "debug"; 0 on success, -1 otherwise. */
int log_level_parse(const char *name, enum log_level *level_r);

/* *_warn appends ": " and strerror(errno); *_warnx does not. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
