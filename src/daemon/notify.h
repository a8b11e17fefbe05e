/* notify.h: readiness and status reports to a service manager (systemd's
 * sd_notify protocol, written out in notify.c). */
#ifndef SK_DAEMON_NOTIFY_H
#define SK_DAEMON_NOTIFY_H

/* Reads and unsets $NOTIFY_SOCKET, so that child processes (the parse
 * workers) do not inherit it.  Call once, early, before any thread or child
 * starts.  Without the variable every report is a no-op. */
void daemon_notify_init(void);

/* Sends one datagram: state ("READY=1", "STOPPING=1", or NULL for a status
 * alone), then "STATUS=" and the formatted text with its newlines made
 * spaces and cut to NOTIFY_STATUS_MAX bytes.  1 sent, 0 no service manager,
 * -1 failed (logged).  Never blocks: a full socket drops the report. */
int daemon_notify(const char *state, const char *status_fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "RELOADING=1" with the MONOTONIC_USEC= that Type=notify-reload wants, and
 * a status. */
int daemon_notify_reloading(const char *status);

#endif
