/* settings.c: a poller's settings: defaults, the mailbox url, [poll.NAME]
 * sections of the configuration file (GKeyFile) and the password file.
 *
 * Security posture: a password is never taken from the url or the command
 * line, only from password_file (re-read at every connection, so it can be
 * rotated without a reload); the url is kept and logged without it.
 * Unknown keys are errors, so a misspelt "tls_verify" cannot silently
 * weaken anything.  TLS verification is on unless tls_verify = false, and
 * imap:// and pop3:// require STARTTLS except to a loopback address. */
#include "config.h"

#include "poll/poll-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* Bounds of the numeric settings. */
#define PASSWORD_MAX 1024

struct poll_settings *
poll_settings_new(const char *name)
{
	struct poll_settings *s = g_new0(struct poll_settings, 1);

	s->name = g_strdup(name != NULL ? name : "poll");
	s->interval_s = 60;
	s->after = POLL_AFTER_DEFAULT;
	s->move_to = g_strdup("snapkeep/processed");
	s->failed_to = g_strdup("snapkeep/failed");
	s->tls_verify = true;
	s->starttls = POLL_STARTTLS_AUTO;
	s->batch_size = 100;
	s->idle = true;
	s->idle_restart_s = 1500;
	s->timeout_s = 60;
	s->backoff_min_s = 5;
	s->backoff_max_s = 900;
	s->max_message_size = 64u * 1024 * 1024;
	s->parse_wait_s = 10;
	s->pass_max = 10000;
	s->accept_jobs = 8;
	return s;
}

static void
settings_clear_url(struct poll_settings *s)
{
	g_clear_pointer(&s->url, g_free);
	g_clear_pointer(&s->host, g_free);
	g_clear_pointer(&s->user, g_free);
	g_clear_pointer(&s->login_options, g_free);
	g_clear_pointer(&s->mailbox, g_free);
	g_clear_pointer(&s->path, g_free);
	g_clear_pointer(&s->key, g_free);
}

void
poll_settings_free(struct poll_settings **settings)
{
	struct poll_settings *s = *settings;

	if (s == NULL)
		return;
	settings_clear_url(s);
	g_free(s->name);
	g_free(s->password_file);
	g_free(s->move_to);
	g_free(s->failed_to);
	g_free(s->tls_ca_file);
	g_free(s);
	*settings = NULL;
}

struct poll_settings *
poll_settings_copy(const struct poll_settings *src)
{
	struct poll_settings *s = g_new0(struct poll_settings, 1);

	*s = *src;
	s->name = g_strdup(src->name);
	s->url = g_strdup(src->url);
	s->password_file = g_strdup(src->password_file);
	s->move_to = g_strdup(src->move_to);
	s->failed_to = g_strdup(src->failed_to);
	s->tls_ca_file = g_strdup(src->tls_ca_file);
	s->host = g_strdup(src->host);
	s->user = g_strdup(src->user);
	s->login_options = g_strdup(src->login_options);
	s->mailbox = g_strdup(src->mailbox);
	s->path = g_strdup(src->path);
	s->key = g_strdup(src->key);
	return s;
}

static const char *const after_names[] = {
    [POLL_AFTER_DEFAULT] = "default", [POLL_AFTER_MOVE] = "move", [POLL_AFTER_FLAG] = "flag",
    [POLL_AFTER_DELETE] = "delete",   [POLL_AFTER_KEEP] = "keep",
};

int
poll_after_parse(const char *text, enum poll_after *after_r)
{
	for (size_t i = POLL_AFTER_MOVE; i < G_N_ELEMENTS(after_names); i++) {
		if (g_ascii_strcasecmp(text, after_names[i]) == 0) {
			*after_r = (enum poll_after)i;
			return 0;
		}
	}
	return -1;
}

const char *
poll_after_name(enum poll_after after)
{
	return (size_t)after < G_N_ELEMENTS(after_names) ? after_names[after] : "?";
}

const char *
poll_kind_name(enum poll_kind kind)
{
	switch (kind) {
	case POLL_KIND_IMAP:
		return "imap";
	case POLL_KIND_POP3:
		return "pop3";
	case POLL_KIND_MAILDIR:
		return "maildir";
	}
	return "?";
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int
set_maildir_url(struct poll_settings *s, const char *url, char **error_r)
{
	const char *p = url + strlen("maildir:");

	/* maildir:///var/mail/x is maildir:/var/mail/x. */
	if (g_str_has_prefix(p, "///"))
		p += 2;
	else if (g_str_has_prefix(p, "//")) {
		*error_r = g_strdup_printf("url %s: write maildir:/PATH (a local directory)", url);
		return -1;
	}
	if (*p == '\0' || has_control(p)) {
		*error_r = g_strdup_printf("url %s: no usable Maildir path", url);
		return -1;
	}
	s->kind = POLL_KIND_MAILDIR;
	s->path = g_canonicalize_filename(p, NULL);
	s->key = g_strconcat("maildir:", s->path, NULL);
	return 0;
}

int
poll_settings_set_url(struct poll_settings *s, const char *url, char **error_r)
{
	GError *gerr = NULL;
	GUri *uri = NULL;
	int ret = -1;

	settings_clear_url(s);
	if (url == NULL || *url == '\0') {
		*error_r = g_strdup("no url");
		return -1;
	}
	s->url = g_strdup(url);
	if (g_str_has_prefix(url, "maildir:"))
		return set_maildir_url(s, url, error_r);

	uri = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_HAS_AUTH_PARAMS, &gerr);
	if (uri == NULL) {
		*error_r = g_strdup_printf("url: %s", gerr->message);
		g_error_free(gerr);
		goto out;
	}
	const char *scheme = g_uri_get_scheme(uri);
	unsigned port = 0;
	if (g_ascii_strcasecmp(scheme, "imap") == 0) {
		s->kind = POLL_KIND_IMAP;
		port = 143;
	} else if (g_ascii_strcasecmp(scheme, "imaps") == 0) {
		s->kind = POLL_KIND_IMAP;
		s->tls = true;
		port = 993;
	} else if (g_ascii_strcasecmp(scheme, "pop3") == 0) {
		s->kind = POLL_KIND_POP3;
		port = 110;
	} else if (g_ascii_strcasecmp(scheme, "pop3s") == 0) {
		s->kind = POLL_KIND_POP3;
		s->tls = true;
		port = 995;
	} else {
		*error_r = g_strdup_printf(
		    "url: scheme %s is not imap, imaps, pop3, pop3s or maildir", scheme);
		goto out;
	}
	if (g_uri_get_password(uri) != NULL) {
		*error_r = g_strdup("url: contains a password; put it in password_file instead");
		goto out;
	}
	if (g_uri_get_query(uri) != NULL || g_uri_get_fragment(uri) != NULL) {
		*error_r = g_strdup("url: a query (?...) or fragment (#...) means nothing here");
		goto out;
	}
	const char *host = g_uri_get_host(uri);
	const char *user = g_uri_get_user(uri);
	if (host == NULL || *host == '\0' || has_control(host)) {
		*error_r = g_strdup_printf("url %s: no host", url);
		goto out;
	}
	if (user == NULL || *user == '\0' || has_control(user)) {
		*error_r =
		    g_strdup_printf("url %s: no user (write %s://USER@%s/...)", url, scheme, host);
		goto out;
	}
	if (g_uri_get_port(uri) > 0)
		port = (unsigned)g_uri_get_port(uri);
	s->host = g_strdup(host);
	s->user = g_strdup(user);
	s->port = port;
	if (g_uri_get_auth_params(uri) != NULL && *g_uri_get_auth_params(uri) != '\0')
		s->login_options = g_strdup(g_uri_get_auth_params(uri));

	const char *path = g_uri_get_path(uri);
	while (*path == '/')
		path++;
	if (s->kind == POLL_KIND_IMAP) {
		char *mailbox = g_strdup(*path != '\0' ? path : "INBOX");
		size_t n = strlen(mailbox);
		while (n > 0 && mailbox[n - 1] == '/')
			mailbox[--n] = '\0';
		if (has_control(mailbox) || strchr(mailbox, ';') != NULL ||
		    !g_utf8_validate(mailbox, -1, NULL)) {
			*error_r = g_strdup_printf(
			    "url %s: unusable mailbox name (';' parameters, control "
			    "characters or invalid UTF-8)",
			    url);
			g_free(mailbox);
			goto out;
		}
		s->mailbox = mailbox;
	} else if (*path != '\0') {
		*error_r = g_strdup_printf(
		    "url %s: a pop3 url names no mailbox (the user's maildrop is polled)", url);
		goto out;
	}
	char *user_esc =
	    g_uri_escape_string(s->user, G_URI_RESERVED_CHARS_SUBCOMPONENT_DELIMITERS, FALSE);
	bool v6 = strchr(s->host, ':') != NULL;
	s->key = g_strdup_printf(
	    "%s://%s@%s%s%s:%u%s%s",
	    s->tls ? (s->kind == POLL_KIND_IMAP ? "imaps" : "pop3s") : poll_kind_name(s->kind),
	    user_esc, v6 ? "[" : "", s->host, v6 ? "]" : "", s->port, s->mailbox != NULL ? "/" : "",
	    s->mailbox != NULL ? s->mailbox : "");
	g_free(user_esc);
	ret = 0;
out:
	if (uri != NULL)
		g_uri_unref(uri);
	return ret;
}

static bool
is_loopback(const char *host)
{
	return g_ascii_strcasecmp(host, "localhost") == 0 || g_str_has_prefix(host, "127.") ||
	       strcmp(host, "::1") == 0;
}

int
poll_settings_check(struct poll_settings *s, char **error_r)
{
	if (s->url == NULL || s->key == NULL) {
		*error_r = g_strdup_printf("[poll.%s]: no url", s->name);
		return -1;
	}
	if (s->after == POLL_AFTER_DEFAULT) {
		s->after = s->kind == POLL_KIND_IMAP   ? POLL_AFTER_MOVE
			   : s->kind == POLL_KIND_POP3 ? POLL_AFTER_DELETE
						       : POLL_AFTER_FLAG;
	}
	if (s->kind == POLL_KIND_POP3 && s->after != POLL_AFTER_DELETE &&
	    s->after != POLL_AFTER_KEEP) {
		*error_r = g_strdup_printf(
		    "[poll.%s]: POP3 has no folders or flags: after = delete or keep", s->name);
		return -1;
	}
	if (s->kind != POLL_KIND_MAILDIR &&
	    (s->password_file == NULL || *s->password_file == '\0')) {
		*error_r = g_strdup_printf("[poll.%s]: %s needs password_file", s->name,
					   poll_kind_name(s->kind));
		return -1;
	}
	if (s->after == POLL_AFTER_MOVE && (s->move_to == NULL || *s->move_to == '\0')) {
		*error_r = g_strdup_printf("[poll.%s]: after = move needs move_to", s->name);
		return -1;
	}
	if (s->failed_to == NULL)
		s->failed_to = g_strdup("");
	if (s->move_to == NULL)
		s->move_to = g_strdup("");
	const char *folders[] = {s->move_to, s->failed_to};
	for (size_t i = 0; i < G_N_ELEMENTS(folders); i++) {
		if (has_control(folders[i]) || !g_utf8_validate(folders[i], -1, NULL)) {
			*error_r = g_strdup_printf("[poll.%s]: folder name with control characters",
						   s->name);
			return -1;
		}
		if (s->kind == POLL_KIND_MAILDIR && folders[i][0] != '/' &&
		    (strstr(folders[i], "..") != NULL || folders[i][0] == '.')) {
			*error_r =
			    g_strdup_printf("[poll.%s]: Maildir folder %s: no '..' or leading '.'",
					    s->name, folders[i]);
			return -1;
		}
	}
	if (s->kind == POLL_KIND_IMAP && s->mailbox != NULL &&
	    (strcmp(s->mailbox, s->move_to) == 0 || strcmp(s->mailbox, s->failed_to) == 0)) {
		*error_r = g_strdup_printf(
		    "[poll.%s]: move_to and failed_to must differ from the polled mailbox",
		    s->name);
		return -1;
	}
	if (s->starttls == POLL_STARTTLS_AUTO && s->host != NULL)
		s->starttls = is_loopback(s->host) ? POLL_STARTTLS_NO : POLL_STARTTLS_REQUIRED;
	if (s->interval_s == 0 || s->batch_size == 0 || s->pass_max == 0 || s->accept_jobs == 0 ||
	    s->timeout_s == 0 || s->backoff_min_s == 0 || s->backoff_max_s < s->backoff_min_s ||
	    s->idle_restart_s == 0 || s->max_message_size == 0) {
		*error_r = g_strdup_printf(
		    "[poll.%s]: interval, batch_size, pass_max, accept_jobs, timeout, "
		    "idle_restart, max_message_size and backoff_min must be positive, "
		    "backoff_max at least backoff_min",
		    s->name);
		return -1;
	}
	if (s->batch_size > s->pass_max)
		s->batch_size = s->pass_max;
	return 0;
}

int
poll_settings_check_set(GPtrArray *list, char **error_r)
{
	GHashTable *keys = g_hash_table_new(g_str_hash, g_str_equal);
	int ret = 0;

	/* Two pollers on one mailbox would race for the same messages:
	 * harmless for the data (the funnel deduplicates) but wasteful and
	 * confusing, so it is refused. */
	for (guint i = 0; i < list->len && ret == 0; i++) {
		struct poll_settings *s = g_ptr_array_index(list, i);
		if (g_hash_table_contains(keys, s->key)) {
			*error_r = g_strdup_printf(
			    "[poll.%s]: mailbox %s is polled by another section too", s->name,
			    s->key);
			ret = -1;
		}
		g_hash_table_add(keys, s->key);
	}
	g_hash_table_destroy(keys);
	return ret;
}

/* --- the password file ----------------------------------------------------------------- */

char *
poll_password_read(const char *path, char **error_r)
{
	char buf[PASSWORD_MAX + 2];
	struct stat st;
	ssize_t n;
	int fd;

	if (path == NULL || *path == '\0') {
		*error_r = g_strdup("no password_file");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*error_r = g_strdup_printf("password_file %s: %s", path, g_strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = g_strdup_printf("password_file %s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if ((st.st_mode & 0004) != 0)
		log_warnx(
		    "poll: event=password-file-readable path=%s detail=\"readable by every user\"",
		    path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		*error_r = g_strdup_printf("password_file %s: %s", path, g_strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	char *nl = strpbrk(buf, "\r\n");
	if (nl != NULL)
		*nl = '\0';
	else if (n > PASSWORD_MAX) {
		*error_r =
		    g_strdup_printf("password_file %s: longer than %d bytes", path, PASSWORD_MAX);
		return NULL;
	}
	if (buf[0] == '\0') {
		*error_r = g_strdup_printf("password_file %s: empty", path);
		return NULL;
	}
	char *pw = g_strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return pw;
}
