/* notify.c: snapkeepd's reports to a service manager, in systemd's sd_notify
 * protocol (sd_notify(3), "the datagram protocol"), written out here instead
 * of linking libsystemd for one sendto(): every report is one datagram of
 * newline-separated VAR=VALUE assignments sent to the AF_UNIX socket named
 * by $NOTIFY_SOCKET, a path ("/run/systemd/notify") or, with a leading '@',
 * a name in the abstract namespace.  Other address kinds (vsock:, systemd
 * 254) are refused with one warning; the daemon then runs without reports.
 *
 * What snapkeepd reports (main.c): READY=1 once every service's ports are
 * open and accepting and the intake funnel is open; RELOADING=1 +
 * MONOTONIC_USEC when SIGHUP arrives and READY=1 when the new settings are
 * in place (or were refused); STOPPING=1 on SIGTERM/SIGINT; STATUS= lines
 * with what it is doing, or why it failed to start.
 *
 * Limits: a report is at most NOTIFY_MAX bytes; the status text is cut to
 * NOTIFY_STATUS_MAX bytes (at a UTF-8 character boundary) and its newlines
 * become spaces, so text from a configuration error cannot add assignments.
 * Security posture: the socket address comes from the environment set by
 * the service manager (whoever starts the daemon chooses it anyway); the
 * daemon only sends, never reads, and never blocks on it (MSG_DONTWAIT). */
#include "config.h"

#include "daemon/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "util/log.h"

#define NOTIFY_MAX 4096
#define NOTIFY_STATUS_MAX 1024

static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len; /* 0: no service manager */
static gboolean notify_failed_logged;

void
daemon_notify_init(void)
{
	const char *path = g_getenv("NOTIFY_SOCKET");
	size_t len;

	notify_addr_len = 0;
	if (path == NULL || path[0] == '\0')
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify_addr.sun_path)) {
		log_warnx("daemon: event=notify-unsupported socket=\"%s\" reason=\"not an AF_UNIX "
			  "path or @name, or too long\"",
			  path);
		g_unsetenv("NOTIFY_SOCKET");
		return;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	if (path[0] == '@') /* abstract namespace: no terminating NUL counted */
		notify_addr.sun_path[0] = '\0';
	else
		len++;
	notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	g_unsetenv("NOTIFY_SOCKET");
}

static int
notify_send(const char *text, size_t len)
{
	int fd, ret = 1;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT,
			     (const struct sockaddr *)&notify_addr, notify_addr_len) < 0) {
		if (!notify_failed_logged)
			log_warn("daemon: event=notify-failed");
		notify_failed_logged = TRUE;
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* state, then STATUS=status (newlines made spaces, cut). */
static int
notify_report(const char *state, const char *status)
{
	GString *msg;
	int ret;

	if (notify_addr_len == 0)
		return 0;
	msg = g_string_sized_new(256);
	if (state != NULL)
		g_string_append_printf(msg, "%s\n", state);
	if (status != NULL) {
		size_t start = msg->len, cut = strlen(status);
		if (cut > NOTIFY_STATUS_MAX) {
			const char *end = g_utf8_find_prev_char(status, status + NOTIFY_STATUS_MAX + 1);
			cut = end != NULL ? (size_t)(end - status) : 0;
		}
		g_string_append(msg, "STATUS=");
		g_string_append_len(msg, status, (gssize)cut);
		for (size_t i = start; i < msg->len; i++)
			if (msg->str[i] == '\n' || msg->str[i] == '\r' || msg->str[i] == '\0')
				msg->str[i] = ' ';
	}
	ret = msg->len <= NOTIFY_MAX ? notify_send(msg->str, msg->len) : -1;
	g_string_free(msg, TRUE);
	return ret;
}

int
daemon_notify(const char *state, const char *status_fmt, ...)
{
	va_list ap;
	char *status;
	int ret;

	if (notify_addr_len == 0)
		return 0;
	va_start(ap, status_fmt);
	status = g_strdup_vprintf(status_fmt, ap);
	va_end(ap);
	ret = notify_report(state, status);
	g_free(status);
	return ret;
}

int
daemon_notify_reloading(const char *status)
{
	struct timespec ts;
	char *state;
	int ret;

	if (notify_addr_len == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	state = g_strdup_printf("RELOADING=1\nMONOTONIC_USEC=%llu",
				(unsigned long long)ts.tv_sec * 1000000ULL +
				    (unsigned long long)ts.tv_nsec / 1000ULL);
	ret = notify_report(state, status);
	g_free(state);
	return ret;
}
