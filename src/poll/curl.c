/* curl.c: the pollers' libcurl handles: TLS, STARTTLS, credentials,
 * timeouts, stop requests, and turning a transfer into either bounded
 * response lines or a bounded body.
 *
 * Limits: a response line longer than POLL_LINE_MAX is dropped (and the
 * request fails); a body longer than the sink's maximum aborts the
 * transfer.  A transfer that moves less than 1 byte/s for timeout seconds
 * is aborted; so is every transfer once the poller is asked to stop.
 *
 * Security posture: certificate and host name verification are on unless
 * tls_verify = false; imap:// and pop3:// use STARTTLS as the settings say
 * (CURLUSESSL_ALL: no silent downgrade); the password comes from
 * password_file and is wiped when the handle closes.  Server text that goes
 * into error messages is cut at 200 bytes and stripped of control
 * characters. */
#include "config.h"

#include "poll/poll-private.h"

#include <string.h>

#include "util/log.h"

static void
curl_global_once(void)
{
	static gsize done = 0;

	if (g_once_init_enter(&done)) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		g_once_init_leave(&done, 1);
	}
}

char *
poll_curl_base_url(const struct poll_settings *s)
{
	const char *scheme =
	    s->kind == POLL_KIND_IMAP ? (s->tls ? "imaps" : "imap") : (s->tls ? "pop3s" : "pop3");
	bool v6 = strchr(s->host, ':') != NULL;

	return g_strdup_printf("%s://%s%s%s:%u/", scheme, v6 ? "[" : "", s->host, v6 ? "]" : "",
			       s->port);
}

/* Server text for an error message: printable, bounded. */
static char *
clean_text(const char *text, size_t len)
{
	GString *out = g_string_sized_new(MIN(len, 200) + 4);

	for (size_t i = 0; i < len && out->len < 200; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\r' || c == '\n')
			break;
		g_string_append_c(out, c >= 0x20 && c < 0x7f ? (char)c : '?');
	}
	if (out->len >= 200)
		g_string_append(out, "...");
	return g_string_free(out, FALSE);
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct poll_curl *pc = userp;
	size_t len = size * nmemb;

	/* Every response line passes here; keep the last one that is not
	 * untagged data: the tagged or +OK/-ERR answer of the command. */
	if (len > 0 && !(len >= 2 && data[0] == '*' && data[1] == ' ')) {
		char *text = clean_text(data, len);
		/* A refusal ("A005 NO ...", "A005 BAD ...", "-ERR ...") is kept
		 * over what follows it (libcurl logs out after an error). */
		const char *sp = strchr(text, ' ');
		bool refusal = g_str_has_prefix(text, "-ERR") ||
			       (sp != NULL && (g_str_has_prefix(sp + 1, "NO") ||
					       g_str_has_prefix(sp + 1, "BAD")));
		if (*text != '\0' && (refusal || !pc->refused)) {
			g_string_assign(pc->last_reply, text);
			pc->refused = refusal;
		}
		g_free(text);
	}
	return len;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct poll_curl *pc = userp;
	size_t len = size * nmemb;

	if (pc->on_line == NULL) {
		if (pc->body == NULL)
			return len;
		if (pc->body->len + len > pc->body_max) {
			pc->body_too_large = true;
			return 0; /* aborts: CURLE_WRITE_ERROR */
		}
		g_byte_array_append(pc->body, (const guint8 *)data, (guint)len);
		return len;
	}
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\n') {
			size_t n = pc->line->len;
			if (n > 0 && pc->line->str[n - 1] == '\r')
				g_string_truncate(pc->line, n - 1);
			if (!pc->line_overflow &&
			    pc->on_line(pc->line_ctx, pc->line->str, pc->line->len) < 0)
				return 0;
			g_string_truncate(pc->line, 0);
			pc->line_overflow = false;
			continue;
		}
		if (pc->line->len >= POLL_LINE_MAX) {
			pc->line_overflow = true;
			continue;
		}
		g_string_append_c(pc->line, c);
	}
	return len;
}

static int
xferinfo_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct poll_curl *pc = userp;

	return pc->stop != NULL && g_atomic_int_get(pc->stop) != 0 ? 1 : 0;
}

/* POP3 message numbers are only valid within one session: once a session
 * has listed them, a new connection (curl reconnecting behind our back
 * after the server dropped us) must not be used for RETR or DELE. */
static curl_socket_t
opensocket_cb(void *userp, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct poll_curl *pc = userp;

	if (pc->forbid_new_connection)
		return CURL_SOCKET_BAD;
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

int
poll_curl_open(struct poll_curl *pc, const struct poll_settings *s, volatile gint *stop,
	       char **error_r)
{
	char *base;

	memset(pc, 0, sizeof(*pc));
	curl_global_once();
	pc->settings = s;
	pc->stop = stop;
	pc->password = poll_password_read(s->password_file, error_r);
	if (pc->password == NULL)
		return -1;
	pc->curl = curl_easy_init();
	if (pc->curl == NULL) {
		*error_r = g_strdup("curl_easy_init failed");
		poll_curl_close(pc);
		return -1;
	}
	pc->last_reply = g_string_new(NULL);
	pc->line = g_string_new(NULL);
	CURL *c = pc->curl;
	base = poll_curl_base_url(s);
	curl_easy_setopt(c, CURLOPT_URL, base);
	g_free(base);
	curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
	curl_easy_setopt(c, CURLOPT_PASSWORD, pc->password);
	if (s->login_options != NULL)
		curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, s->login_options);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "imap,imaps,pop3,pop3s");
#else
	curl_easy_setopt(
	    c, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_IMAP | CURLPROTO_IMAPS | CURLPROTO_POP3 | CURLPROTO_POP3S));
#endif
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, pc->errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)s->timeout_s);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)s->timeout_s);
	curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)s->timeout_s);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, pc);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, pc);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, pc);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, pc);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, s->tls_verify ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, s->tls_verify ? 2L : 0L);
	if (s->tls_ca_file != NULL && *s->tls_ca_file != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, s->tls_ca_file);
	if (!s->tls)
		curl_easy_setopt(c, CURLOPT_USE_SSL,
				 s->starttls == POLL_STARTTLS_NO ? (long)CURLUSESSL_NONE
								 : (long)CURLUSESSL_ALL);
	if (g_getenv("SNAPKEEP_CURL_VERBOSE") != NULL)
		curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	return 0;
}

void
poll_curl_close(struct poll_curl *pc)
{
	if (pc->curl != NULL)
		curl_easy_cleanup(pc->curl);
	pc->curl = NULL;
	if (pc->password != NULL) {
		explicit_bzero(pc->password, strlen(pc->password));
		g_free(pc->password);
		pc->password = NULL;
	}
	if (pc->last_reply != NULL)
		g_string_free(pc->last_reply, TRUE);
	if (pc->line != NULL)
		g_string_free(pc->line, TRUE);
	pc->last_reply = NULL;
	pc->line = NULL;
}

/* A clear reason for a failed request. */
static char *
describe(struct poll_curl *pc, CURLcode code, const char *custom)
{
	const struct poll_settings *s = pc->settings;
	const char *what = custom != NULL ? custom : "fetch";
	const char *server = pc->last_reply->len > 0 ? pc->last_reply->str : NULL;

	if (pc->forbid_new_connection && code == CURLE_COULDNT_CONNECT)
		return g_strdup_printf("connection to %s:%u lost during the session", s->host,
				       s->port);
	/* libcurl reports a refused SELECT as a denied login. */
	if (code == CURLE_LOGIN_DENIED && strstr(pc->errbuf, "Select") != NULL)
		return g_strdup_printf("cannot open the mailbox%s%s",
				       server ? ": server said: " : "", server ? server : "");
	switch (code) {
	case CURLE_LOGIN_DENIED:
		return g_strdup_printf(
		    "login denied for user %s at %s:%u (check password_file)%s%s", s->user, s->host,
		    s->port, server ? ": server said: " : "", server ? server : "");
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
		return g_strdup_printf("cannot reach %s:%u: %s", s->host, s->port,
				       pc->errbuf[0] ? pc->errbuf : curl_easy_strerror(code));
	case CURLE_USE_SSL_FAILED:
		return g_strdup_printf(
		    "%s:%u does not offer STARTTLS (use %ss://, or starttls = no on a trusted "
		    "network)",
		    s->host, s->port, poll_kind_name(s->kind));
	case CURLE_SSL_CONNECT_ERROR:
		return g_strdup_printf("TLS handshake with %s:%u failed (is it a TLS port?): %s",
				       s->host, s->port,
				       pc->errbuf[0] ? pc->errbuf : curl_easy_strerror(code));
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return g_strdup_printf("TLS certificate of %s:%u not trusted: %s (set tls_ca_file)",
				       s->host, s->port,
				       pc->errbuf[0] ? pc->errbuf : curl_easy_strerror(code));
	case CURLE_REMOTE_FILE_NOT_FOUND:
		return g_strdup_printf("%s: not found or UIDVALIDITY changed%s%s", what,
				       server ? ": server said: " : "", server ? server : "");
	case CURLE_ABORTED_BY_CALLBACK:
		return g_strdup("stopped");
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_WEIRD_SERVER_REPLY:
		return g_strdup_printf("connection to %s:%u lost: %s", s->host, s->port,
				       pc->errbuf[0] ? pc->errbuf : curl_easy_strerror(code));
	default:
		return g_strdup_printf("%s: %s%s%s", what,
				       pc->errbuf[0] ? pc->errbuf : curl_easy_strerror(code),
				       server ? ": server said: " : "", server ? server : "");
	}
}

int
poll_curl_perform(struct poll_curl *pc, const char *url, const char *custom, bool nobody,
		  int (*on_line)(void *ctx, const char *line, size_t len), void *ctx,
		  char **error_r)
{
	CURLcode code;

	pc->errbuf[0] = '\0';
	g_string_truncate(pc->last_reply, 0);
	pc->refused = false;
	g_string_truncate(pc->line, 0);
	pc->line_overflow = false;
	pc->on_line = on_line;
	pc->line_ctx = ctx;
	pc->body_too_large = false;
	curl_easy_setopt(pc->curl, CURLOPT_URL, url);
	curl_easy_setopt(pc->curl, CURLOPT_CUSTOMREQUEST, custom);
	curl_easy_setopt(pc->curl, CURLOPT_NOBODY, nobody ? 1L : 0L);
	code = curl_easy_perform(pc->curl);
	pc->on_line = NULL;
	if (code == CURLE_OK && on_line != NULL && pc->line->len > 0 && !pc->line_overflow)
		if (on_line(ctx, pc->line->str, pc->line->len) < 0)
			code = CURLE_WRITE_ERROR;
	if (code == CURLE_OK && pc->line_overflow) {
		*error_r = g_strdup_printf("%s: a response line longer than %d bytes",
					   custom ? custom : "fetch", POLL_LINE_MAX);
		return -1;
	}
	if (code == CURLE_WRITE_ERROR && pc->body_too_large) {
		*error_r = g_strdup_printf("message larger than max_message_size (%zu bytes)",
					   pc->body_max);
		return -1;
	}
	if (code != CURLE_OK) {
		*error_r = describe(pc, code, custom);
		return -1;
	}
	pc->connected = true;
	return 0;
}
