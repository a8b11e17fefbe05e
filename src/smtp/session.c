/* session.c: the SMTP session state machine (see session.h for the host's
 * side of the contract).
 *
 * States and the function behind each transition:
 *
 *   NEW --smtp_session_start--> COMMAND (or CLOSED: refusal, pregreet)
 *   COMMAND --DATA (smtp_proceed_data)--> DATA --CRLF.CRLF (smtp_data_end)-->
 *       WAIT_MESSAGE --smtp_session_message_done--> COMMAND
 *   COMMAND --AUTH (smtp_proceed_auth)--> AUTH_PLAIN | AUTH_USER -> AUTH_PASS
 *       --(smtp_auth_response)--> WAIT_AUTH --smtp_session_auth_done--> COMMAND
 *   COMMAND --STARTTLS--> WAIT_TLS --smtp_session_tls_done--> COMMAND (reset)
 *   any --QUIT, errors, timeout, shutdown--> CLOSED
 *
 * The grammar is the table smtp_commands[]: {name, flags, check, proceed}.
 * check() validates the state and the arguments and replies with the
 * refusal; proceed() runs only when check() passed.
 *
 * Deliberate choices on hostile input (each has a transcript test):
 *  1. Command lines end at LF; one CR right before the LF is removed.  A
 *     NUL or any other CR in a command line is refused with 500.
 *  2. A command line longer than line_length_limit is refused with 500 and
 *     skipped up to its LF; it is never split into two commands.
 *  3. In DATA, lines end only at CRLF.  A bare LF or bare CR is message
 *     content, kept as received (counted and logged); it neither ends a line
 *     nor starts one, so a dot after it is neither unstuffed nor the end.
 *     Only <CR><LF>.<CR><LF> ends DATA (the <CR><LF> that ends the DATA
 *     command counts as the first one, RFC 5321 4.1.1.4).  A line that
 *     starts with a dot and has more characters loses that dot (4.5.2).
 *     NUL bytes in the body are content.  Body lines have no length limit:
 *     the body is never refused for its content, only for its size.
 *  4. Input before the greeting: 554 and close (Postfix's "pregreet").
 *  5. Input after a synchronisation point (the greeting, EHLO, HELO, DATA,
 *     AUTH and its challenges, NOOP, VRFY, EXPN: RFC 2920 3.1) arriving
 *     before its reply was flushed: 554 5.5.0 and close, as Postfix does
 *     with smtpd_forbid_unauth_pipelining.  Commands after the final dot
 *     may be pipelined; they are answered after the message's reply.
 *  6. Plaintext after STARTTLS is discarded, and the session is reset after
 *     the handshake (CVE-2011-0411).
 *  7. HTTP methods and header lines ("Host:") as commands: 521 and close.
 *  8. A message over max_message_size (with or without SIZE) is read to its
 *     end, discarded, and answered 552.
 *  9. After max_errors error replies, or max_auth_failures failed AUTH, 421
 *     and close. */
#include "config.h"

#include "smtp/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* An input buffer that grew beyond this is freed once empty. */
#define SMTP_SESSION_KEEP_BUFFER 4096

/* The longest path we accept (RFC 5321 4.5.3.1.3: 256 with the brackets). */
#define SMTP_PATH_MAX 254

enum smtp_state {
	SMTP_STATE_NEW,
	SMTP_STATE_COMMAND,
	SMTP_STATE_AUTH_PLAIN,
	SMTP_STATE_AUTH_USER,
	SMTP_STATE_AUTH_PASS,
	SMTP_STATE_DATA,
	SMTP_STATE_WAIT_MESSAGE,
	SMTP_STATE_WAIT_AUTH,
	SMTP_STATE_WAIT_TLS,
	SMTP_STATE_CLOSED,
};

/* Where DATA is within a line: see rule 3 above. */
enum smtp_data_state {
	SMTP_DATA_BOL,	  /* at the start of a line */
	SMTP_DATA_DOT,	  /* "." at the start of a line, withheld */
	SMTP_DATA_DOT_CR, /* ".<CR>" at the start of a line, withheld */
	SMTP_DATA_TEXT,	  /* inside a line */
	SMTP_DATA_CR,	  /* <CR> inside a line, withheld */
};

enum smtp_result {
	SMTP_RESULT_NONE,
	SMTP_RESULT_MESSAGE,
	SMTP_RESULT_AUTH,
	SMTP_RESULT_TLS,
};

struct smtp_session {
	const struct smtp_session_settings *set;
	const struct smtp_session_host *host;
	void *ctx;
	char *id;
	char *peer;

	enum smtp_state state;
	GByteArray *in; /* unprocessed input from in_pos on */
	size_t in_pos;
	bool discarding; /* skipping the rest of an over-long line */
	bool in_big;	 /* in grew beyond SMTP_SESSION_KEEP_BUFFER */
	bool pregreet;
	bool sync_pending; /* a sync point's reply is not flushed yet */
	bool in_process;
	bool shutting_down;
	bool tls;
	bool esmtp;
	char *helo;
	char *auth_user;
	char *login_user; /* AUTH LOGIN: the name, until the password */
	const char *verb; /* the command being handled, for logs */
	size_t tls_discarded;

	/* The transaction. */
	bool in_mail;
	char *mail_from;
	GPtrArray *rcpts;
	uint64_t declared_size;
	bool body_8bit;
	/* Parsed by check(), used by proceed(). */
	char *arg_path;
	uint64_t arg_size;
	bool arg_8bit;

	/* DATA. */
	enum smtp_data_state dstate;
	bool data_open; /* the host's spool is open */
	bool data_oversize;
	bool data_failed;
	uint64_t data_size;
	unsigned bare_lf, bare_cr, nul;
	struct smtp_envelope env;

	/* A result reported by the host, applied by smtp_process. */
	enum smtp_result result;
	bool result_ok;
	char *result_text;

	unsigned errors;
	unsigned auth_failures;
	unsigned messages;
};

struct smtp_command {
	const char *name;
	unsigned flags;
	/* 0: go on with proceed; -1: refused, the reply is sent. */
	int (*check)(struct smtp_session *s, const char *args);
	void (*proceed)(struct smtp_session *s, const char *args);
};

#define SMTP_CMD_SYNC 0x1 /* last in a pipelined group (RFC 2920 3.1) */

static void smtp_process(struct smtp_session *s);

void
smtp_session_settings_default(struct smtp_session_settings *settings)
{
	memset(settings, 0, sizeof(*settings));
	settings->hostname = "localhost";
	settings->max_message_size = 32 * 1024 * 1024;
	settings->max_recipients = 100;
	settings->line_length_limit = 2048;
	settings->max_errors = 10;
	settings->max_auth_failures = 3;
}

/* ---- replies ----------------------------------------------------------- */

static void G_GNUC_PRINTF(2, 3) smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	GString *line = g_string_new(NULL);
	g_string_vprintf(line, fmt, ap);
	va_end(ap);
	g_string_append(line, "\r\n");
	s->host->output(s->ctx, line->str, line->len);
	g_string_free(line, TRUE);
}

static void
smtp_close(struct smtp_session *s)
{
	if (s->data_open) {
		s->data_open = false;
		if (s->host->data_abort != NULL)
			s->host->data_abort(s->ctx);
	}
	s->state = SMTP_STATE_CLOSED;
}

/* Logs a refusal or a closing reply: "CODE X.Y.Z text" -> code=, status=. */
static void
smtp_log_reply(struct smtp_session *s, const char *event, const char *reason, const char *text)
{
	const char *status = strlen(text) > 4 ? text + 4 : "";
	int status_len = (int)strcspn(status, " ");
	log_info("smtp: event=%s session=%s peer=%s cmd=%s reason=%s code=%.3s status=%.*s", event,
		 s->id, s->peer, s->verb != NULL ? s->verb : "-", reason, text, status_len, status);
}

/* Sends a refusal (a whole reply "CODE X.Y.Z text"), logs it with reason,
 * and counts it against max_errors when counted. */
static void G_GNUC_PRINTF(4, 5)
    smtp_refuse(struct smtp_session *s, bool counted, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	smtp_reply(s, "%s", text);
	smtp_log_reply(s, "refused", reason, text);
	g_free(text);
	if (counted && s->state != SMTP_STATE_CLOSED) {
		s->errors++;
		if (s->set->max_errors > 0 && s->errors >= s->set->max_errors) {
			smtp_reply(s, "421 4.7.0 %s Error: too many errors", s->set->hostname);
			log_info("smtp: event=closed session=%s peer=%s reason=too-many-errors "
				 "errors=%u",
				 s->id, s->peer, s->errors);
			smtp_close(s);
		}
	}
}

/* A refusal that ends the session. */
static void G_GNUC_PRINTF(3, 4)
    smtp_refuse_close(struct smtp_session *s, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	smtp_reply(s, "%s", text);
	smtp_log_reply(s, "closed", reason, text);
	g_free(text);
	smtp_close(s);
}

/* ---- the transaction --------------------------------------------------- */

static void
smtp_transaction_reset(struct smtp_session *s)
{
	s->in_mail = false;
	g_clear_pointer(&s->mail_from, g_free);
	g_ptr_array_set_size(s->rcpts, 0);
	s->declared_size = 0;
	s->body_8bit = false;
	if (s->data_open) {
		s->data_open = false;
		if (s->host->data_abort != NULL)
			s->host->data_abort(s->ctx);
	}
}

/* ---- paths and parameters ---------------------------------------------- */

/* Parses a reverse-path or forward-path at *p: "<addr>", "<@a,@b:addr>",
 * "<>", or (leniently, as Postfix does) a bare address up to a space.
 * Returns the address without brackets or source route (g_free), "" for
 * "<>", or NULL on a syntax error; *p is moved past the path. */
static char *
smtp_path_parse(const char **p)
{
	const char *s = *p;
	const char *start, *end;
	bool bracket = *s == '<';
	bool quoted = false;

	if (bracket)
		s++;
	start = s;
	for (;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\0') {
			if (bracket || quoted)
				return NULL;
			break;
		}
		if (quoted) {
			if (c == '\\' && s[1] != '\0')
				s++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (c == '"') {
			quoted = true;
			continue;
		}
		if (bracket && c == '>')
			break;
		if (c == ' ') {
			if (bracket)
				return NULL;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			return NULL;
	}
	end = s;
	if (bracket)
		s++;
	*p = s;
	/* A source route (RFC 5321 4.1.2, obsolete) is ignored. */
	if (start < end && *start == '@') {
		const char *colon = memchr(start, ':', (size_t)(end - start));
		if (colon == NULL)
			return NULL;
		start = colon + 1;
		if (start == end)
			return NULL;
	}
	if ((size_t)(end - start) > SMTP_PATH_MAX)
		return NULL;
	return g_strndup(start, (size_t)(end - start));
}

/* Splits "KEY=VALUE KEY2" parameters; returns NULL when there are none. */
static gchar **
smtp_params_split(const char *p)
{
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return NULL;
	gchar **params = g_strsplit(p, " ", -1);
	guint j = 0;
	for (guint i = 0; params[i] != NULL; i++) {
		if (params[i][0] == '\0')
			g_free(params[i]);
		else
			params[j++] = params[i];
	}
	params[j] = NULL;
	return params;
}

/* "FROM:" / "TO:" prefix, case-insensitive, spaces after the colon allowed. */
static const char *
smtp_args_after(const char *args, const char *prefix)
{
	size_t n = strlen(prefix);
	if (g_ascii_strncasecmp(args, prefix, n) != 0)
		return NULL;
	args += n;
	while (*args == ' ')
		args++;
	return args;
}

enum smtp_rcpt_verdict { SMTP_RCPT_OK, SMTP_RCPT_UNKNOWN, SMTP_RCPT_RELAY };

static enum smtp_rcpt_verdict
smtp_rcpt_policy(const struct smtp_session_settings *set, const char *addr)
{
	const char *at = strrchr(addr, '@');
	const char *domain = at != NULL ? at + 1 : NULL;
	bool our_domain = false;

	if (set->recipients == NULL || set->recipients[0] == NULL)
		return SMTP_RCPT_OK;
	if (g_ascii_strcasecmp(addr, "postmaster") == 0)
		return SMTP_RCPT_OK;
	for (char **r = set->recipients; *r != NULL; r++) {
		const char *entry = *r;
		if (entry[0] == '@') {
			if (domain != NULL && g_ascii_strcasecmp(entry + 1, domain) == 0)
				return SMTP_RCPT_OK;
			continue;
		}
		if (g_ascii_strcasecmp(entry, addr) == 0)
			return SMTP_RCPT_OK;
		const char *eat = strrchr(entry, '@');
		if (domain != NULL && eat != NULL && g_ascii_strcasecmp(eat + 1, domain) == 0)
			our_domain = true;
	}
	if (our_domain && at != NULL && (size_t)(at - addr) == strlen("postmaster") &&
	    g_ascii_strncasecmp(addr, "postmaster", (size_t)(at - addr)) == 0)
		return SMTP_RCPT_OK;
	if (domain == NULL || our_domain)
		return SMTP_RCPT_UNKNOWN;
	return SMTP_RCPT_RELAY;
}

/* ---- commands: {check, proceed} ---------------------------------------- */

static int
smtp_check_helo(struct smtp_session *s, const char *args)
{
	/* Any non-empty argument: printers send odd names, nothing trusts it. */
	if (*args == '\0') {
		smtp_refuse(s, true, "syntax", "501 5.5.4 Syntax: %s hostname", s->verb);
		return -1;
	}
	return 0;
}

static void
smtp_proceed_helo(struct smtp_session *s, const char *args)
{
	smtp_transaction_reset(s);
	g_free(s->helo);
	s->helo = g_strdup(args);
	s->esmtp = false;
	smtp_reply(s, "250 %s", s->set->hostname);
}

static void
smtp_proceed_ehlo(struct smtp_session *s, const char *args)
{
	GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);

	smtp_transaction_reset(s);
	g_free(s->helo);
	s->helo = g_strdup(args);
	s->esmtp = true;
	g_ptr_array_add(lines, g_strdup(s->set->hostname));
	g_ptr_array_add(lines, g_strdup("PIPELINING"));
	g_ptr_array_add(lines,
			g_strdup_printf("SIZE %" G_GUINT64_FORMAT, s->set->max_message_size));
	g_ptr_array_add(lines, g_strdup("8BITMIME"));
	g_ptr_array_add(lines, g_strdup("ENHANCEDSTATUSCODES"));
	if (s->set->tls_available && !s->tls)
		g_ptr_array_add(lines, g_strdup("STARTTLS"));
	if (s->set->auth_available && s->tls)
		g_ptr_array_add(lines, g_strdup("AUTH PLAIN LOGIN"));
	for (guint i = 0; i < lines->len; i++)
		smtp_reply(s, "250%c%s", i + 1 < lines->len ? '-' : ' ',
			   (const char *)g_ptr_array_index(lines, i));
	g_ptr_array_free(lines, TRUE);
}

static int
smtp_check_mail(struct smtp_session *s, const char *args)
{
	const char *p;
	gchar **params = NULL;
	int ret = -1;

	if (s->helo == NULL) {
		smtp_refuse(s, true, "no-helo", "503 5.5.1 Error: send HELO/EHLO first");
		goto out;
	}
	if (s->set->require_tls && !s->tls) {
		smtp_refuse(s, true, "tls-required",
			    "530 5.7.0 Must issue a STARTTLS command first");
		goto out;
	}
	if (s->set->require_auth && s->auth_user == NULL) {
		smtp_refuse(s, true, "auth-required", "530 5.7.0 Authentication required");
		goto out;
	}
	if (s->in_mail) {
		smtp_refuse(s, true, "nested-mail", "503 5.5.1 Error: nested MAIL command");
		goto out;
	}
	p = smtp_args_after(args, "FROM:");
	g_clear_pointer(&s->arg_path, g_free);
	if (p == NULL || (s->arg_path = smtp_path_parse(&p)) == NULL || (*p != '\0' && *p != ' ')) {
		smtp_refuse(s, true, "syntax", "501 5.5.4 Syntax: MAIL FROM:<address>");
		goto out;
	}
	s->arg_size = 0;
	s->arg_8bit = false;
	params = smtp_params_split(p);
	for (guint i = 0; params != NULL && params[i] != NULL; i++) {
		const char *param = params[i];
		if (g_ascii_strncasecmp(param, "SIZE=", 5) == 0) {
			guint64 size;
			if (!g_ascii_string_to_unsigned(param + 5, 10, 0, G_MAXUINT64, &size,
							NULL)) {
				smtp_refuse(s, true, "syntax", "501 5.5.4 Bad message size syntax");
				goto out;
			}
			s->arg_size = size;
		} else if (g_ascii_strncasecmp(param, "BODY=", 5) == 0) {
			if (g_ascii_strcasecmp(param + 5, "8BITMIME") == 0)
				s->arg_8bit = true;
			else if (g_ascii_strcasecmp(param + 5, "7BIT") == 0)
				s->arg_8bit = false;
			else {
				smtp_refuse(s, true, "syntax", "501 5.5.4 Bad BODY keyword syntax");
				goto out;
			}
		} else if (g_ascii_strncasecmp(param, "AUTH=", 5) == 0 && s->set->auth_available) {
			/* RFC 4954 5: accepted, not trusted, not used. */
		} else {
			smtp_refuse(s, true, "syntax", "555 5.5.4 Unsupported option: %.64s",
				    param);
			goto out;
		}
	}
	if (s->arg_size > s->set->max_message_size) {
		smtp_refuse(s, true, "too-big", "552 5.3.4 Message size exceeds fixed limit");
		goto out;
	}
	if (s->host->storage_check != NULL && s->host->storage_check(s->ctx, s->arg_size) < 0) {
		smtp_refuse(s, false, "no-storage", "452 4.3.1 Insufficient system storage");
		goto out;
	}
	ret = 0;
out:
	g_strfreev(params);
	return ret;
}

static void
smtp_proceed_mail(struct smtp_session *s, const char *args)
{
	smtp_transaction_reset(s);
	s->in_mail = true;
	s->mail_from = g_steal_pointer(&s->arg_path);
	s->declared_size = s->arg_size;
	s->body_8bit = s->arg_8bit;
	smtp_reply(s, "250 2.1.0 Ok");
}

static int
smtp_check_rcpt(struct smtp_session *s, const char *args)
{
	const char *p;
	gchar **params = NULL;
	int ret = -1;

	if (!s->in_mail) {
		smtp_refuse(s, true, "no-mail", "503 5.5.1 Error: need MAIL command");
		goto out;
	}
	p = smtp_args_after(args, "TO:");
	g_clear_pointer(&s->arg_path, g_free);
	if (p == NULL || (s->arg_path = smtp_path_parse(&p)) == NULL || (*p != '\0' && *p != ' ')) {
		smtp_refuse(s, true, "syntax", "501 5.5.4 Syntax: RCPT TO:<address>");
		goto out;
	}
	if (s->arg_path[0] == '\0') {
		smtp_refuse(s, true, "syntax", "501 5.1.3 Bad recipient address syntax");
		goto out;
	}
	params = smtp_params_split(p);
	if (params != NULL) {
		smtp_refuse(s, true, "syntax", "555 5.5.4 Unsupported option: %.64s", params[0]);
		goto out;
	}
	if (s->rcpts->len >= s->set->max_recipients) {
		smtp_refuse(s, true, "too-many-recipients", "452 4.5.3 Error: too many recipients");
		goto out;
	}
	switch (smtp_rcpt_policy(s->set, s->arg_path)) {
	case SMTP_RCPT_OK:
		ret = 0;
		break;
	case SMTP_RCPT_UNKNOWN:
		smtp_refuse(s, true, "unknown-recipient",
			    "550 5.1.1 <%s>: Recipient address rejected: User unknown",
			    s->arg_path);
		break;
	case SMTP_RCPT_RELAY:
		smtp_refuse(s, true, "relay-denied", "554 5.7.1 <%s>: Relay access denied",
			    s->arg_path);
		break;
	}
out:
	g_strfreev(params);
	return ret;
}

static void
smtp_proceed_rcpt(struct smtp_session *s, const char *args)
{
	g_ptr_array_add(s->rcpts, g_steal_pointer(&s->arg_path));
	smtp_reply(s, "250 2.1.5 Ok");
}

static int
smtp_check_data(struct smtp_session *s, const char *args)
{
	if (*args != '\0') {
		smtp_refuse(s, true, "syntax", "501 5.5.4 Syntax: DATA");
		return -1;
	}
	if (!s->in_mail) {
		smtp_refuse(s, true, "no-mail", "503 5.5.1 Error: need MAIL command");
		return -1;
	}
	if (s->rcpts->len == 0) {
		smtp_refuse(s, true, "no-rcpt", "503 5.5.1 Error: need RCPT command");
		return -1;
	}
	if (s->host->data_begin != NULL && s->host->data_begin(s->ctx) < 0) {
		smtp_refuse(s, false, "spool-failed", "451 4.3.0 Error: cannot spool message");
		return -1;
	}
	s->data_open = true;
	return 0;
}

static void
smtp_proceed_data(struct smtp_session *s, const char *args)
{
	s->state = SMTP_STATE_DATA;
	/* The CRLF that ended "DATA" is the first CRLF of CRLF.CRLF. */
	s->dstate = SMTP_DATA_BOL;
	s->data_size = 0;
	s->data_oversize = false;
	s->data_failed = false;
	s->bare_lf = s->bare_cr = s->nul = 0;
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static int
smtp_check_noargs(struct smtp_session *s, const char *args)
{
	if (*args != '\0') {
		smtp_refuse(s, true, "syntax", "501 5.5.4 Syntax: %s", s->verb);
		return -1;
	}
	return 0;
}

static void
smtp_proceed_rset(struct smtp_session *s, const char *args)
{
	smtp_transaction_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static int
smtp_check_any(struct smtp_session *s, const char *args)
{
	return 0;
}

static void
smtp_proceed_noop(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_proceed_quit(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_close(s);
}

static void
smtp_proceed_help(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY%s%s",
		   s->set->tls_available && !s->tls ? " STARTTLS" : "",
		   s->set->auth_available && s->tls ? " AUTH" : "");
}

static int
smtp_check_vrfy(struct smtp_session *s, const char *args)
{
	if (*args == '\0') {
		smtp_refuse(s, true, "syntax", "501 5.5.4 Syntax: VRFY address");
		return -1;
	}
	return 0;
}

static void
smtp_proceed_vrfy(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static int
smtp_check_expn(struct smtp_session *s, const char *args)
{
	smtp_refuse(s, true, "not-implemented", "502 5.5.1 Error: command not implemented");
	return -1;
}

static int
smtp_check_starttls(struct smtp_session *s, const char *args)
{
	if (!s->set->tls_available) {
		smtp_refuse(s, true, "not-implemented", "502 5.5.1 Error: command not implemented");
		return -1;
	}
	if (s->tls) {
		smtp_refuse(s, true, "tls-active", "554 5.5.1 Error: TLS already active");
		return -1;
	}
	if (*args != '\0') {
		smtp_refuse(s, true, "syntax", "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	if (s->helo == NULL) {
		smtp_refuse(s, true, "no-helo", "503 5.5.1 Error: send HELO/EHLO first");
		return -1;
	}
	if (s->in_mail) {
		smtp_refuse(s, true, "in-transaction",
			    "503 5.5.1 Error: MAIL transaction in progress");
		return -1;
	}
	return 0;
}

static void
smtp_proceed_starttls(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	s->state = SMTP_STATE_WAIT_TLS;
	/* Rule 6: whatever follows in plaintext is never processed. */
	s->tls_discarded = s->in->len - s->in_pos;
	s->in_pos = s->in->len;
	s->host->starttls(s->ctx);
}

/* Validates strict base64 (RFC 4648, padded) before g_base64_decode, which
 * skips invalid characters silently. */
static bool
smtp_base64_valid(const char *text)
{
	size_t len = strlen(text), pad = 0;
	if (len == 0 || len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/'))
			return false;
	}
	return pad <= 2;
}

/* Decodes a client response: NULL (and a 501 reply) when it is not base64.
 * "=" alone is the empty response. */
static guchar *
smtp_base64_take(struct smtp_session *s, const char *text, gsize *len_r)
{
	if (strcmp(text, "=") == 0) {
		*len_r = 0;
		return (guchar *)g_strdup("");
	}
	if (!smtp_base64_valid(text)) {
		smtp_refuse(s, true, "auth-syntax", "501 5.5.2 Cannot decode response");
		return NULL;
	}
	return g_base64_decode(text, len_r);
}

static void
smtp_wipe_free(void *p, size_t len)
{
	if (p != NULL)
		explicit_bzero(p, len);
	g_free(p);
}

static void
smtp_auth_submit(struct smtp_session *s, const char *user, const char *password)
{
	s->state = SMTP_STATE_WAIT_AUTH;
	g_free(s->login_user);
	s->login_user = g_strdup(user);
	s->host->auth_check(s->ctx, user, password);
}

static void
smtp_auth_plain(struct smtp_session *s, const char *response)
{
	gsize len = 0;
	guchar *raw = smtp_base64_take(s, response, &len);
	if (raw == NULL) {
		if (s->state != SMTP_STATE_CLOSED)
			s->state = SMTP_STATE_COMMAND;
		return;
	}
	/* authzid NUL authcid NUL passwd (RFC 4616). */
	const char *authz = (const char *)raw;
	const char *nul1 = memchr(raw, '\0', len);
	const char *nul2 =
	    nul1 != NULL ? memchr(nul1 + 1, '\0', len - (gsize)(nul1 + 1 - authz)) : NULL;
	if (nul1 == NULL || nul2 == NULL ||
	    memchr(nul2 + 1, '\0', len - (gsize)(nul2 + 1 - authz)) != NULL || nul2 == nul1 + 1) {
		s->state = SMTP_STATE_COMMAND;
		smtp_refuse(s, true, "auth-syntax", "501 5.5.2 Cannot decode response");
		smtp_wipe_free(raw, len);
		return;
	}
	char *user = g_strndup(nul1 + 1, (gsize)(nul2 - nul1 - 1));
	char *password = g_strndup(nul2 + 1, len - (gsize)(nul2 + 1 - authz));
	if (nul1 != authz && strcmp(authz, user) != 0) {
		/* Acting as another user is never allowed: a failed attempt,
		 * decided here without asking the host. */
		s->state = SMTP_STATE_WAIT_AUTH;
		g_free(s->login_user);
		s->login_user = g_strdup(user);
		s->result = SMTP_RESULT_AUTH;
		s->result_ok = false;
	} else {
		smtp_auth_submit(s, user, password);
	}
	smtp_wipe_free(password, strlen(password));
	g_free(user);
	smtp_wipe_free(raw, len);
}

static void
smtp_auth_response(struct smtp_session *s, const char *line)
{
	if (strcmp(line, "*") == 0) {
		s->state = SMTP_STATE_COMMAND;
		g_clear_pointer(&s->login_user, g_free);
		smtp_refuse(s, true, "auth-cancelled", "501 5.7.0 Authentication cancelled");
		return;
	}
	if (s->state == SMTP_STATE_AUTH_PLAIN) {
		smtp_auth_plain(s, line);
		return;
	}
	gsize len = 0;
	guchar *raw = smtp_base64_take(s, line, &len);
	if (raw == NULL) {
		if (s->state != SMTP_STATE_CLOSED)
			s->state = SMTP_STATE_COMMAND;
		g_clear_pointer(&s->login_user, g_free);
		return;
	}
	if (memchr(raw, '\0', len) != NULL) {
		s->state = SMTP_STATE_COMMAND;
		g_clear_pointer(&s->login_user, g_free);
		smtp_refuse(s, true, "auth-syntax", "501 5.5.2 Cannot decode response");
		smtp_wipe_free(raw, len);
		return;
	}
	if (s->state == SMTP_STATE_AUTH_USER) {
		g_free(s->login_user);
		s->login_user = g_strndup((const char *)raw, len);
		s->state = SMTP_STATE_AUTH_PASS;
		smtp_reply(s, "334 UGFzc3dvcmQ6");
		s->sync_pending = true;
	} else {
		char *user = g_steal_pointer(&s->login_user);
		smtp_auth_submit(s, user, (const char *)raw);
		g_free(user);
	}
	smtp_wipe_free(raw, len);
}

static int
smtp_check_auth(struct smtp_session *s, const char *args)
{
	if (!s->set->auth_available) {
		smtp_refuse(s, true, "auth-disabled",
			    "503 5.5.1 Error: authentication not enabled");
		return -1;
	}
	if (!s->tls) {
		smtp_refuse(
		    s, true, "auth-needs-tls",
		    "538 5.7.11 Encryption required for requested authentication mechanism");
		return -1;
	}
	if (s->helo == NULL) {
		smtp_refuse(s, true, "no-helo", "503 5.5.1 Error: send HELO/EHLO first");
		return -1;
	}
	if (s->auth_user != NULL) {
		smtp_refuse(s, true, "auth-again", "503 5.5.1 Error: already authenticated");
		return -1;
	}
	if (s->in_mail) {
		smtp_refuse(s, true, "in-transaction",
			    "503 5.5.1 Error: MAIL transaction in progress");
		return -1;
	}
	gchar **words = g_strsplit(args, " ", -1);
	guint n = g_strv_length(words);
	int ret = 0;
	if (n < 1 || n > 2 || words[0][0] == '\0' ||
	    (g_ascii_strcasecmp(words[0], "PLAIN") != 0 &&
	     g_ascii_strcasecmp(words[0], "LOGIN") != 0)) {
		smtp_refuse(s, true, "auth-mechanism",
			    "504 5.5.4 Unrecognized authentication type");
		ret = -1;
	}
	g_strfreev(words);
	return ret;
}

static void
smtp_proceed_auth(struct smtp_session *s, const char *args)
{
	const char *sp = strchr(args, ' ');
	const char *initial = sp != NULL ? sp + 1 : NULL;

	if (g_ascii_strncasecmp(args, "PLAIN", 5) == 0) {
		if (initial != NULL) {
			s->state = SMTP_STATE_AUTH_PLAIN;
			smtp_auth_response(s, initial);
			return;
		}
		s->state = SMTP_STATE_AUTH_PLAIN;
		smtp_reply(s, "334 ");
	} else {
		s->state = SMTP_STATE_AUTH_USER;
		if (initial != NULL) {
			smtp_auth_response(s, initial);
			return;
		}
		smtp_reply(s, "334 VXNlcm5hbWU6");
	}
	s->sync_pending = true;
}

static const struct smtp_command smtp_commands[] = {
    {"HELO", SMTP_CMD_SYNC, smtp_check_helo, smtp_proceed_helo},
    {"EHLO", SMTP_CMD_SYNC, smtp_check_helo, smtp_proceed_ehlo},
    {"MAIL", 0, smtp_check_mail, smtp_proceed_mail},
    {"RCPT", 0, smtp_check_rcpt, smtp_proceed_rcpt},
    {"DATA", SMTP_CMD_SYNC, smtp_check_data, smtp_proceed_data},
    {"RSET", 0, smtp_check_noargs, smtp_proceed_rset},
    {"NOOP", SMTP_CMD_SYNC, smtp_check_any, smtp_proceed_noop},
    {"QUIT", 0, smtp_check_any, smtp_proceed_quit},
    {"HELP", 0, smtp_check_any, smtp_proceed_help},
    {"VRFY", SMTP_CMD_SYNC, smtp_check_vrfy, smtp_proceed_vrfy},
    {"EXPN", SMTP_CMD_SYNC, smtp_check_expn, NULL},
    {"STARTTLS", 0, smtp_check_starttls, smtp_proceed_starttls},
    {"AUTH", 0, smtp_check_auth, smtp_proceed_auth},
};

/* Rule 7: what a web client sends (Postfix's smtpd_forbidden_commands). */
static bool
smtp_forbidden_verb(const char *verb)
{
	static const char *const http[] = {"GET",     "POST",	"HEAD",	 "PUT",	 "CONNECT",
					   "OPTIONS", "DELETE", "PATCH", "TRACE"};
	size_t len = strlen(verb);
	if (len > 0 && verb[len - 1] == ':')
		return true;
	for (size_t i = 0; i < G_N_ELEMENTS(http); i++)
		if (strcmp(verb, http[i]) == 0)
			return true;
	return false;
}

static void
smtp_command(struct smtp_session *s, char *line)
{
	char *sp = strchr(line, ' ');
	char *args;
	char verb_upper[16];
	const struct smtp_command *cmd = NULL;

	if (sp != NULL) {
		*sp = '\0';
		args = sp + 1;
		while (*args == ' ')
			args++;
		/* Trailing spaces are tolerated. */
		size_t alen = strlen(args);
		while (alen > 0 && args[alen - 1] == ' ')
			args[--alen] = '\0';
	} else {
		args = line + strlen(line);
	}
	if (smtp_forbidden_verb(line)) {
		s->verb = "forbidden";
		smtp_refuse_close(s, "http-request", "521 5.7.0 Error: this is an SMTP server");
		return;
	}
	if (line[0] == '\0') {
		s->verb = "-";
		smtp_refuse(s, true, "syntax", "500 5.5.2 Error: bad syntax");
		return;
	}
	if (strlen(line) < sizeof(verb_upper)) {
		for (size_t i = 0;; i++) {
			verb_upper[i] = g_ascii_toupper(line[i]);
			if (line[i] == '\0')
				break;
		}
		for (size_t i = 0; i < G_N_ELEMENTS(smtp_commands); i++)
			if (strcmp(verb_upper, smtp_commands[i].name) == 0)
				cmd = &smtp_commands[i];
	}
	if (cmd == NULL) {
		s->verb = "unknown";
		smtp_refuse(s, true, "unknown-command", "502 5.5.2 Error: command not recognized");
		return;
	}
	s->verb = cmd->name;
	if (cmd->check(s, args) < 0 || cmd->proceed == NULL)
		return;
	cmd->proceed(s, args);
	if ((cmd->flags & SMTP_CMD_SYNC) != 0)
		s->sync_pending = true;
}

/* ---- line input -------------------------------------------------------- */

/* Takes one line from the input.  Returns 1 when a line was handled (or
 * skipped), 0 when more input is needed. */
static int
smtp_line_next(struct smtp_session *s)
{
	guint8 *start = s->in->data + s->in_pos;
	size_t avail = s->in->len - s->in_pos;
	guint8 *lf = memchr(start, '\n', avail);
	size_t len;

	if (lf == NULL) {
		if (avail > s->set->line_length_limit + 1 && !s->discarding) {
			/* Rule 2: refuse once, skip to the end of the line. */
			s->discarding = true;
			s->verb = "-";
			smtp_refuse(s, true, "line-too-long", "500 5.5.2 Error: line too long");
		}
		if (s->discarding)
			s->in_pos = s->in->len;
		return 0;
	}
	len = (size_t)(lf - start);
	s->in_pos += len + 1;
	if (s->discarding) {
		s->discarding = false;
		return 1;
	}
	if (len > 0 && start[len - 1] == '\r')
		len--;
	if (len > s->set->line_length_limit) {
		s->verb = "-";
		smtp_refuse(s, true, "line-too-long", "500 5.5.2 Error: line too long");
		return 1;
	}
	if (memchr(start, '\0', len) != NULL) {
		s->verb = "-";
		smtp_refuse(s, true, "nul-in-command", "500 5.5.2 Error: NUL character in command");
		return 1;
	}
	if (memchr(start, '\r', len) != NULL) {
		s->verb = "-";
		smtp_refuse(s, true, "bare-cr-in-command", "500 5.5.2 Error: bare CR in command");
		return 1;
	}
	char *line = g_strndup((const char *)start, len);
	if (s->state == SMTP_STATE_COMMAND) {
		smtp_command(s, line);
	} else {
		s->verb = "AUTH";
		smtp_auth_response(s, line);
	}
	smtp_wipe_free(line, len);
	return 1;
}

/* ---- DATA -------------------------------------------------------------- */

static void
smtp_data_emit(struct smtp_session *s, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (!s->data_oversize && s->data_size + len > s->set->max_message_size) {
		s->data_oversize = true;
		if (s->data_open) {
			s->data_open = false;
			if (s->host->data_abort != NULL)
				s->host->data_abort(s->ctx);
		}
	}
	s->data_size += len;
	if (s->data_oversize || s->data_failed)
		return;
	if (s->host->data_write(s->ctx, data, len) < 0)
		s->data_failed = true;
}

static void
smtp_data_end(struct smtp_session *s)
{
	s->verb = "DATA";
	if (s->data_oversize) {
		smtp_transaction_reset(s);
		s->state = SMTP_STATE_COMMAND;
		log_info("smtp: event=oversize session=%s peer=%s size=%" G_GUINT64_FORMAT
			 " limit=%" G_GUINT64_FORMAT,
			 s->id, s->peer, s->data_size, s->set->max_message_size);
		smtp_refuse(s, true, "too-big", "552 5.3.4 Error: message file too big");
		return;
	}
	if (s->data_failed) {
		smtp_transaction_reset(s);
		s->state = SMTP_STATE_COMMAND;
		smtp_refuse(s, false, "spool-failed", "451 4.3.0 Error: local storage error");
		return;
	}
	if (s->bare_lf > 0 || s->bare_cr > 0 || s->nul > 0)
		log_info("smtp: event=body-anomaly session=%s peer=%s bare_lf=%u bare_cr=%u nul=%u",
			 s->id, s->peer, s->bare_lf, s->bare_cr, s->nul);
	s->data_open = false;
	s->env.helo = s->helo;
	s->env.mail_from = s->mail_from;
	s->env.rcpts = s->rcpts;
	s->env.size = s->data_size;
	s->env.body_8bit = s->body_8bit;
	s->env.tls = s->tls;
	s->env.auth_user = s->auth_user;
	s->env.bare_lf = s->bare_lf;
	s->env.bare_cr = s->bare_cr;
	s->env.nul = s->nul;
	s->state = SMTP_STATE_WAIT_MESSAGE;
	s->host->message_end(s->ctx, &s->env);
}

/* Counts the bare LFs and NULs of a run of content (for the log). */
static void
smtp_data_count(struct smtp_session *s, const guint8 *p, size_t len)
{
	const guint8 *end = p + len, *q = p;
	while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		s->bare_lf++;
		q++;
	}
	q = p;
	while ((q = memchr(q, '\0', (size_t)(end - q))) != NULL) {
		s->nul++;
		q++;
	}
}

/* Consumes DATA bytes from p up to the end of data (rule 3) or end.
 * Returns where it stopped: after the final dot's LF, or end. */
static const guint8 *
smtp_data_scan(struct smtp_session *s, const guint8 *p, const guint8 *end)
{
	while (p < end) {
		guint8 c = *p;
		switch (s->dstate) {
		case SMTP_DATA_BOL:
			if (c == '.') {
				s->dstate = SMTP_DATA_DOT;
				p++;
				continue;
			}
			s->dstate = SMTP_DATA_TEXT;
			continue;
		case SMTP_DATA_DOT:
			if (c == '\r') {
				s->dstate = SMTP_DATA_DOT_CR;
				p++;
				continue;
			}
			/* ".x": the dot is removed, x is content. */
			s->dstate = SMTP_DATA_TEXT;
			continue;
		case SMTP_DATA_DOT_CR:
			p++;
			if (c == '\n') {
				smtp_data_end(s);
				return p;
			}
			/* ".<CR>x": the dot goes, the CR was bare, x is content. */
			smtp_data_emit(s, "\r", 1);
			s->bare_cr++;
			s->dstate = SMTP_DATA_TEXT;
			p--;
			continue;
		case SMTP_DATA_TEXT: {
			const guint8 *cr = memchr(p, '\r', (size_t)(end - p));
			const guint8 *stop = cr != NULL ? cr : end;
			smtp_data_count(s, p, (size_t)(stop - p));
			smtp_data_emit(s, p, (size_t)(stop - p));
			p = stop;
			if (cr != NULL) {
				s->dstate = SMTP_DATA_CR;
				p++;
			}
			continue;
		}
		case SMTP_DATA_CR:
			if (c == '\n') {
				smtp_data_emit(s, "\r\n", 2);
				s->dstate = SMTP_DATA_BOL;
				p++;
				continue;
			}
			smtp_data_emit(s, "\r", 1);
			s->bare_cr++;
			if (c == '\r') {
				p++;
				continue;
			}
			s->dstate = SMTP_DATA_TEXT;
			continue;
		}
	}
	return end;
}

static void
smtp_data_consume(struct smtp_session *s)
{
	const guint8 *start = s->in->data;
	const guint8 *p = smtp_data_scan(s, start + s->in_pos, start + s->in->len);
	s->in_pos = (size_t)(p - start);
}

/* ---- driving ----------------------------------------------------------- */

static void
smtp_apply_result(struct smtp_session *s)
{
	enum smtp_result result = s->result;
	bool ok = s->result_ok;
	char *text = g_steal_pointer(&s->result_text);

	s->result = SMTP_RESULT_NONE;
	switch (result) {
	case SMTP_RESULT_NONE:
		break;
	case SMTP_RESULT_MESSAGE:
		if (s->state != SMTP_STATE_WAIT_MESSAGE)
			break;
		s->verb = "DATA";
		if (ok) {
			s->messages++;
			smtp_reply(s, "250 2.0.0 Ok: %s", text != NULL ? text : "stored");
		} else {
			smtp_refuse(s, false, "store-failed",
				    "451 4.3.0 Error: temporary failure storing the message, "
				    "try again later");
		}
		smtp_transaction_reset(s);
		if (s->state == SMTP_STATE_WAIT_MESSAGE)
			s->state = SMTP_STATE_COMMAND;
		break;
	case SMTP_RESULT_AUTH:
		if (s->state != SMTP_STATE_WAIT_AUTH)
			break;
		s->verb = "AUTH";
		s->state = SMTP_STATE_COMMAND;
		if (ok) {
			s->auth_user = g_steal_pointer(&s->login_user);
			log_info("smtp: event=auth session=%s peer=%s user=%s", s->id, s->peer,
				 s->auth_user);
			smtp_reply(s, "235 2.7.0 Authentication successful");
		} else {
			s->auth_failures++;
			smtp_refuse(s, false, "auth-failed",
				    "535 5.7.8 Error: authentication failed");
			if (s->set->max_auth_failures > 0 &&
			    s->auth_failures >= s->set->max_auth_failures)
				smtp_refuse_close(s, "too-many-auth-failures",
						  "421 4.7.0 %s Error: too many failed "
						  "authentication attempts",
						  s->set->hostname);
		}
		g_clear_pointer(&s->login_user, g_free);
		s->sync_pending = true;
		break;
	case SMTP_RESULT_TLS:
		if (s->state != SMTP_STATE_WAIT_TLS)
			break;
		if (s->tls_discarded > 0)
			log_info("smtp: event=starttls-injection session=%s peer=%s discarded=%zu",
				 s->id, s->peer, s->tls_discarded);
		if (!ok) {
			log_info("smtp: event=closed session=%s peer=%s reason=tls-failed", s->id,
				 s->peer);
			smtp_close(s);
			break;
		}
		/* RFC 3207 4.2: forget everything learnt before TLS. */
		s->tls = true;
		s->state = SMTP_STATE_COMMAND;
		g_clear_pointer(&s->helo, g_free);
		g_clear_pointer(&s->auth_user, g_free);
		s->esmtp = false;
		smtp_transaction_reset(s);
		s->in_pos = s->in->len;
		s->sync_pending = false;
		s->discarding = false;
		break;
	}
	g_free(text);
	if (s->shutting_down && s->state == SMTP_STATE_COMMAND) {
		s->verb = "-";
		smtp_refuse_close(s, "shutdown", "421 4.3.2 %s Service shutting down",
				  s->set->hostname);
	}
}

static bool
smtp_waiting(const struct smtp_session *s)
{
	return s->state == SMTP_STATE_WAIT_MESSAGE || s->state == SMTP_STATE_WAIT_AUTH ||
	       s->state == SMTP_STATE_WAIT_TLS;
}

static void
smtp_process(struct smtp_session *s)
{
	if (s->in_process)
		return;
	s->in_process = true;
	for (;;) {
		if (s->result != SMTP_RESULT_NONE)
			smtp_apply_result(s);
		if (s->state == SMTP_STATE_NEW || s->state == SMTP_STATE_CLOSED ||
		    s->state == SMTP_STATE_WAIT_TLS) {
			s->in_pos = s->in->len;
			break;
		}
		if (smtp_waiting(s) && s->result == SMTP_RESULT_NONE)
			break;
		if (smtp_waiting(s))
			continue;
		if (s->in_pos >= s->in->len)
			break;
		if (s->sync_pending) {
			/* Rule 5. */
			s->verb = "-";
			smtp_refuse_close(s, "pipelining",
					  "554 5.5.0 Error: SMTP protocol synchronization");
			continue;
		}
		if (s->state == SMTP_STATE_DATA)
			smtp_data_consume(s);
		else if (smtp_line_next(s) == 0)
			break;
	}
	/* Drop what was consumed. */
	if (s->in_pos > 0) {
		if (s->in_pos < s->in->len)
			explicit_bzero(s->in->data, s->in_pos);
		g_byte_array_remove_range(s->in, 0, (guint)s->in_pos);
		s->in_pos = 0;
	}
	s->in_process = false;
}

/* ---- the public side --------------------------------------------------- */

struct smtp_session *
smtp_session_new(const struct smtp_session_settings *settings, const struct smtp_session_host *host,
		 void *ctx, const char *id, const char *peer)
{
	struct smtp_session *s = g_new0(struct smtp_session, 1);
	s->set = settings;
	s->host = host;
	s->ctx = ctx;
	s->id = g_strdup(id);
	s->peer = g_strdup(peer);
	s->state = SMTP_STATE_NEW;
	s->in = g_byte_array_new();
	s->rcpts = g_ptr_array_new_with_free_func(g_free);
	return s;
}

void
smtp_session_free(struct smtp_session **session)
{
	struct smtp_session *s = *session;
	if (s == NULL)
		return;
	*session = NULL;
	if (s->data_open && s->host->data_abort != NULL)
		s->host->data_abort(s->ctx);
	if (s->in->len > 0)
		explicit_bzero(s->in->data, s->in->len);
	g_byte_array_free(s->in, TRUE);
	g_ptr_array_free(s->rcpts, TRUE);
	g_free(s->mail_from);
	g_free(s->arg_path);
	g_free(s->helo);
	g_free(s->auth_user);
	g_free(s->login_user);
	g_free(s->result_text);
	g_free(s->id);
	g_free(s->peer);
	g_free(s);
}

void
smtp_session_start(struct smtp_session *s, const char *refusal)
{
	if (s->state != SMTP_STATE_NEW)
		return;
	s->state = SMTP_STATE_COMMAND;
	if (refusal != NULL) {
		smtp_refuse_close(s, "connection-refused", "%s", refusal);
		return;
	}
	if (s->pregreet) {
		smtp_refuse_close(s, "pregreet", "554 5.5.0 %s Error: input before greeting",
				  s->set->hostname);
		return;
	}
	smtp_reply(s, "220 %s ESMTP snapkeep", s->set->hostname);
	/* The greeting is a synchronisation point. */
	s->sync_pending = true;
}

void
smtp_session_feed(struct smtp_session *s, const void *data, size_t len)
{
	if (len == 0)
		return;
	switch (s->state) {
	case SMTP_STATE_NEW:
		s->pregreet = true;
		return;
	case SMTP_STATE_CLOSED:
		return;
	case SMTP_STATE_WAIT_TLS:
		s->tls_discarded += len;
		return;
	default:
		break;
	}
	/* The message body streams from the caller's buffer to the host
	 * without a copy here; only what follows the final dot is kept. */
	if (s->state == SMTP_STATE_DATA && s->in->len == 0 && !s->in_process && !s->sync_pending &&
	    s->result == SMTP_RESULT_NONE) {
		const guint8 *p = smtp_data_scan(s, data, (const guint8 *)data + len);
		len -= (size_t)(p - (const guint8 *)data);
		data = p;
	}
	if (len > 0) {
		if (s->in->len + len > SMTP_SESSION_BUFFER_MAX + s->set->line_length_limit + 2 &&
		    s->state != SMTP_STATE_DATA) {
			s->verb = "-";
			smtp_refuse_close(s, "input-overflow",
					  "421 4.7.0 %s Error: too much pipelined input",
					  s->set->hostname);
			return;
		}
		g_byte_array_append(s->in, data, (guint)len);
		if (s->in->len > SMTP_SESSION_KEEP_BUFFER)
			s->in_big = true;
	}
	smtp_process(s);
	/* Give back a buffer grown by a big read once it is empty. */
	if (s->in_big && s->in->len == 0) {
		g_byte_array_free(s->in, TRUE);
		s->in = g_byte_array_new();
		s->in_big = false;
	}
}

void
smtp_session_flushed(struct smtp_session *s)
{
	if (!smtp_waiting(s))
		s->sync_pending = false;
}

static void
smtp_session_result(struct smtp_session *s, enum smtp_result result, bool ok, const char *text)
{
	s->result = result;
	s->result_ok = ok;
	g_free(s->result_text);
	s->result_text = g_strdup(text);
	smtp_process(s);
}

void
smtp_session_message_done(struct smtp_session *s, bool ok, const char *text)
{
	smtp_session_result(s, SMTP_RESULT_MESSAGE, ok, text);
}

void
smtp_session_auth_done(struct smtp_session *s, bool ok)
{
	smtp_session_result(s, SMTP_RESULT_AUTH, ok, NULL);
}

void
smtp_session_tls_done(struct smtp_session *s, bool ok)
{
	smtp_session_result(s, SMTP_RESULT_TLS, ok, NULL);
}

void
smtp_session_timeout(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CLOSED)
		return;
	s->verb = "-";
	smtp_refuse_close(s, "timeout", "421 4.4.2 %s Error: timeout exceeded", s->set->hostname);
}

void
smtp_session_shutdown(struct smtp_session *s)
{
	s->shutting_down = true;
	if (s->state == SMTP_STATE_CLOSED || smtp_session_in_data(s))
		return;
	if (s->state == SMTP_STATE_NEW)
		s->state = SMTP_STATE_COMMAND;
	s->verb = "-";
	smtp_refuse_close(s, "shutdown", "421 4.3.2 %s Service shutting down", s->set->hostname);
}

bool
smtp_session_wants_input(const struct smtp_session *s)
{
	return s->state != SMTP_STATE_CLOSED && !smtp_waiting(s);
}

bool
smtp_session_closed(const struct smtp_session *s)
{
	return s->state == SMTP_STATE_CLOSED;
}

bool
smtp_session_in_data(const struct smtp_session *s)
{
	return s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_WAIT_MESSAGE;
}

unsigned
smtp_session_messages(const struct smtp_session *s)
{
	return s->messages;
}
