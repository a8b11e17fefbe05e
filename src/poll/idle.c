/* idle.c: IMAP IDLE (RFC 2177) on a second connection, so new snapshots
 * are taken within seconds instead of at the next interval.
 *
 * libcurl has no IDLE: a transfer ends with the tagged answer of one
 * command, and IDLE's answer comes only after the client sends DONE.  So
 * this file asks libcurl for a connected, authenticated session
 * (CURLOPT_CONNECT_ONLY: for IMAP libcurl's connect phase includes the
 * greeting, CAPABILITY, STARTTLS and LOGIN/AUTHENTICATE, with the same TLS
 * settings as the poller's other handle) and then speaks four commands
 * itself over curl_easy_send / curl_easy_recv:
 *
 *   SKn CAPABILITY            is IDLE offered?  (else: interval polling)
 *   SKn EXAMINE mailbox       read-only: this connection never changes flags
 *   SKn IDLE  ...  DONE       wait for "* n EXISTS" / "* n RECENT"
 *
 * The connection only wakes the poller; every message is still fetched,
 * stored and moved by the pass on the libcurl handle (imap.c).  Nothing
 * this connection reads decides what is taken, so a confused or hostile
 * server can at worst cause extra passes.  IDLE is re-issued every
 * idle_restart seconds (servers drop idlers after 30 minutes).
 *
 * Limits: response lines up to POLL_LINE_MAX (longer ones are skipped),
 * literals in untagged responses up to 1 MiB are skipped, a command's
 * tagged answer must come within timeout seconds. */
#include "config.h"

#include "poll/poll-private.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "util/log.h"

#define LITERAL_SKIP_MAX (1u << 20)

struct poll_idle {
	struct poll_curl pc;
	curl_socket_t sock;
	GByteArray *in;
	unsigned tag;
	bool overflow;
	uint64_t skip; /* literal bytes still to skip */
	const struct poll_settings *settings;
};

/* 1 with a line, 0 on timeout or wake, -1 on error. */
static int
read_line(struct poll_idle *id, char **line_r, gint64 deadline, int wake_fd, char **error_r)
{
	for (;;) {
		/* Skip a literal, then look for a complete line. */
		if (id->skip > 0 && id->in->len > 0) {
			guint n = (guint)MIN(id->skip, id->in->len);
			g_byte_array_remove_range(id->in, 0, n);
			id->skip -= n;
		}
		if (id->skip == 0) {
			guint8 *nl =
			    id->in->len > 0 ? memchr(id->in->data, '\n', id->in->len) : NULL;
			if (nl != NULL) {
				guint n = (guint)(nl - id->in->data);
				char *line = g_strndup((const char *)id->in->data,
						       n > 0 && nl[-1] == '\r' ? n - 1 : n);
				g_byte_array_remove_range(id->in, 0, n + 1);
				if (id->overflow) {
					id->overflow = false;
					g_free(line);
					continue;
				}
				/* "... {123}": a literal follows; skip it. */
				size_t len = strlen(line);
				char *open =
				    len > 2 && line[len - 1] == '}' ? strrchr(line, '{') : NULL;
				if (open != NULL) {
					char *digits = g_strndup(
					    open + 1, (gsize)(line + len - 1 - (open + 1)));
					guint64 v = 0;
					bool numeric =
					    digits[0] != '\0' &&
					    strspn(digits, "0123456789") == strlen(digits);
					bool ok = numeric &&
						  g_ascii_string_to_unsigned(
						      digits, 10, 0, LITERAL_SKIP_MAX, &v, NULL);
					g_free(digits);
					if (numeric && !ok) {
						g_free(line);
						*error_r = g_strdup(
						    "IDLE: oversized literal from the server");
						return -1;
					}
					id->skip = v;
				}
				*line_r = line;
				return 1;
			}
			if (id->in->len > POLL_LINE_MAX) {
				id->overflow = true;
				g_byte_array_set_size(id->in, 0);
			}
		}
		/* More bytes: libcurl may hold decrypted TLS data, so try
		 * reading before waiting on the socket. */
		guint8 buf[4096];
		size_t got = 0;
		CURLcode code = curl_easy_recv(id->pc.curl, buf, sizeof(buf), &got);
		if (code == CURLE_OK) {
			if (got == 0) {
				*error_r = g_strdup("IDLE: the server closed the connection");
				return -1;
			}
			g_byte_array_append(id->in, buf, (guint)got);
			continue;
		}
		if (code != CURLE_AGAIN) {
			*error_r = g_strdup_printf("IDLE: %s", curl_easy_strerror(code));
			return -1;
		}
		gint64 now = g_get_monotonic_time();
		if (now >= deadline)
			return 0;
		struct pollfd fds[2] = {{.fd = id->sock, .events = POLLIN},
					{.fd = wake_fd, .events = POLLIN}};
		gint64 wait_ms = (deadline - now + 999) / 1000;
		int r = poll(fds, wake_fd >= 0 ? 2 : 1, (int)MIN(wait_ms, 60000));
		if (r < 0 && errno != EINTR) {
			*error_r = g_strdup_printf("IDLE: poll: %s", g_strerror(errno));
			return -1;
		}
		if (r > 0 && wake_fd >= 0 && (fds[1].revents & POLLIN) != 0)
			return 0;
		if (id->pc.stop != NULL && g_atomic_int_get(id->pc.stop) != 0)
			return 0;
	}
}

static int
send_text(struct poll_idle *id, const char *text, char **error_r)
{
	size_t len = strlen(text), off = 0;
	gint64 deadline = g_get_monotonic_time() + (gint64)id->settings->timeout_s * G_USEC_PER_SEC;

	while (off < len) {
		size_t sent = 0;
		CURLcode code = curl_easy_send(id->pc.curl, text + off, len - off, &sent);
		if (code == CURLE_OK) {
			off += sent;
			continue;
		}
		if (code != CURLE_AGAIN || g_get_monotonic_time() >= deadline) {
			*error_r = g_strdup_printf("IDLE: send: %s", curl_easy_strerror(code));
			return -1;
		}
		struct pollfd pfd = {.fd = id->sock, .events = POLLOUT};
		poll(&pfd, 1, 1000);
	}
	return 0;
}

static bool
is_new_mail(const char *line)
{
	/* "* 12 EXISTS" or "* 3 RECENT" (RECENT 0 is not news). */
	const char *p = line;
	if (p[0] != '*' || p[1] != ' ')
		return false;
	p += 2;
	const char *digits = p;
	while (g_ascii_isdigit(*p))
		p++;
	if (p == digits || *p != ' ')
		return false;
	if (g_ascii_strcasecmp(p + 1, "EXISTS") == 0)
		return true;
	return g_ascii_strcasecmp(p + 1, "RECENT") == 0 && !(p - digits == 1 && digits[0] == '0');
}

/* Sends "SKn <command>" and reads to its tagged answer.  0 on OK, -1.
 * *new_mail_r is set when an EXISTS/RECENT went by.  For IDLE, returns at
 * the continuation "+". */
static int
run(struct poll_idle *id, const char *command, bool *new_mail_r, bool *offers_idle_r,
    char **error_r)
{
	char tag[16];
	gint64 deadline = g_get_monotonic_time() + (gint64)id->settings->timeout_s * G_USEC_PER_SEC;
	bool idle = strcmp(command, "IDLE") == 0;

	g_snprintf(tag, sizeof(tag), "SK%u", ++id->tag);
	char *text = g_strdup_printf("%s %s\r\n", tag, command);
	int r = send_text(id, text, error_r);
	g_free(text);
	if (r < 0)
		return -1;
	for (;;) {
		char *line = NULL;
		r = read_line(id, &line, deadline, -1, error_r);
		if (r <= 0) {
			if (r == 0)
				*error_r = g_strdup_printf("IDLE: no answer to %s within %us",
							   command, id->settings->timeout_s);
			return -1;
		}
		if (is_new_mail(line) && new_mail_r != NULL)
			*new_mail_r = true;
		if (offers_idle_r != NULL && g_ascii_strncasecmp(line, "* CAPABILITY ", 13) == 0) {
			char **caps = g_strsplit(line + 13, " ", -1);
			for (char **c = caps; *c != NULL; c++)
				if (g_ascii_strcasecmp(*c, "IDLE") == 0)
					*offers_idle_r = true;
			g_strfreev(caps);
		}
		if (g_ascii_strncasecmp(line, "* BYE", 5) == 0) {
			*error_r = g_strdup("IDLE: the server said BYE");
			g_free(line);
			return -1;
		}
		if (idle && line[0] == '+') {
			g_free(line);
			return 0;
		}
		size_t tl = strlen(tag);
		if (strncmp(line, tag, tl) == 0 && line[tl] == ' ') {
			bool ok = g_ascii_strncasecmp(line + tl + 1, "OK", 2) == 0;
			if (!ok) {
				char *why = g_strndup(line + tl + 1, 200);
				for (char *q = why; *q != '\0'; q++)
					if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
						*q = '?';
				*error_r = g_strdup_printf("IDLE: %s: %s", command, why);
				g_free(why);
			}
			g_free(line);
			return ok ? 0 : -1;
		}
		g_free(line);
	}
}

int
poll_idle_open(const struct poll_settings *settings, const char *mailbox_wire, volatile gint *stop,
	       struct poll_idle **idle_r, char **error_r)
{
	struct poll_idle *id = g_new0(struct poll_idle, 1);
	char *base = NULL, *cmd = NULL, *quoted = NULL;
	bool offers_idle = false;
	int ret = -1;

	id->settings = settings;
	id->in = g_byte_array_new();
	id->sock = CURL_SOCKET_BAD;
	if (poll_curl_open(&id->pc, settings, stop, error_r) < 0)
		goto out;
	base = poll_curl_base_url(settings);
	curl_easy_setopt(id->pc.curl, CURLOPT_URL, base);
	curl_easy_setopt(id->pc.curl, CURLOPT_CONNECT_ONLY, 1L);
	CURLcode code = curl_easy_perform(id->pc.curl);
	if (code != CURLE_OK) {
		*error_r =
		    g_strdup_printf("IDLE connection: %s",
				    id->pc.errbuf[0] ? id->pc.errbuf : curl_easy_strerror(code));
		goto out;
	}
	curl_socket_t s = CURL_SOCKET_BAD;
	if (curl_easy_getinfo(id->pc.curl, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK ||
	    s == CURL_SOCKET_BAD) {
		*error_r = g_strdup("IDLE connection: no socket");
		goto out;
	}
	id->sock = s;
	if (run(id, "CAPABILITY", NULL, &offers_idle, error_r) < 0)
		goto out;
	if (!offers_idle) {
		ret = 1;
		goto out;
	}
	/* The mailbox as the pass named it to the server (separator, mUTF-7). */
	quoted = poll_imap_quote(mailbox_wire);
	if (quoted == NULL) {
		*error_r = g_strdup("IDLE: unusable mailbox name");
		goto out;
	}
	cmd = g_strdup_printf("EXAMINE %s", quoted);
	if (run(id, cmd, NULL, NULL, error_r) < 0)
		goto out;
	*idle_r = id;
	id = NULL;
	ret = 0;
out:
	g_free(base);
	g_free(cmd);
	g_free(quoted);
	poll_idle_free(&id);
	return ret;
}

int
poll_idle_wait(struct poll_idle *id, unsigned timeout_ms, int wake_fd, char **error_r)
{
	bool new_mail = false;
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	if (run(id, "IDLE", &new_mail, NULL, error_r) < 0)
		return -1;
	while (!new_mail) {
		char *line = NULL;
		int r = read_line(id, &line, deadline, wake_fd, error_r);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (is_new_mail(line))
			new_mail = true;
		else if (g_ascii_strncasecmp(line, "* BYE", 5) == 0) {
			*error_r = g_strdup("IDLE: the server said BYE");
			g_free(line);
			return -1;
		}
		g_free(line);
	}
	/* DONE ends the IDLE command; its tagged OK follows. */
	if (send_text(id, "DONE\r\n", error_r) < 0)
		return -1;
	char tag[16];
	g_snprintf(tag, sizeof(tag), "SK%u ", id->tag);
	gint64 done_deadline =
	    g_get_monotonic_time() + (gint64)id->settings->timeout_s * G_USEC_PER_SEC;
	for (;;) {
		char *line = NULL;
		int r = read_line(id, &line, done_deadline, -1, error_r);
		if (r <= 0) {
			if (r == 0)
				*error_r = g_strdup("IDLE: no answer to DONE");
			return -1;
		}
		if (is_new_mail(line))
			new_mail = true;
		bool tagged = strncmp(line, tag, strlen(tag)) == 0;
		bool ok = tagged && g_ascii_strncasecmp(line + strlen(tag), "OK", 2) == 0;
		g_free(line);
		if (tagged) {
			if (!ok) {
				*error_r = g_strdup("IDLE: the server refused DONE");
				return -1;
			}
			break;
		}
	}
	return new_mail ? 1 : 0;
}

void
poll_idle_free(struct poll_idle **idp)
{
	struct poll_idle *id = *idp;

	if (id == NULL)
		return;
	if (id->sock != CURL_SOCKET_BAD && id->pc.curl != NULL) {
		/* A polite LOGOUT; errors do not matter any more. */
		size_t sent;
		curl_easy_send(id->pc.curl, "SK0 LOGOUT\r\n", 12, &sent);
	}
	poll_curl_close(&id->pc);
	g_byte_array_free(id->in, TRUE);
	g_free(id);
	*idp = NULL;
}
