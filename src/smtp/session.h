/* session.h: the SMTP session state machine, with no sockets in it.
 *
 * The host (smtp/server.c, or a test harness, or the fuzz target) feeds the
 * bytes it read with smtp_session_feed() and writes out whatever the session
 * hands to host->output.  Anything that takes time or needs the outside world
 * suspends the session until the host reports the result:
 *
 *   end of DATA  -> host->message_end    ... smtp_session_message_done()
 *   AUTH         -> host->auth_check     ... smtp_session_auth_done()
 *   STARTTLS     -> host->starttls       ... smtp_session_tls_done()
 *
 * While suspended, input is buffered (not processed), so pipelined commands
 * after the final dot are answered only after the 250/451 for the message.
 * The host must not call the *_done functions from inside a callback (it may:
 * the result is then applied when the callback returns).
 *
 * Protocol: RFC 5321 (SMTP), 1870 (SIZE), 2920 (PIPELINING), 3207 (STARTTLS),
 * 2034 (ENHANCEDSTATUSCODES), 6152 (8BITMIME), 4954 (AUTH PLAIN and LOGIN).
 *
 * Security posture: every byte comes from an untrusted client.  Command
 * lines are bounded by line_length_limit, the buffer held while suspended
 * by SMTP_SESSION_BUFFER_MAX, the message by max_message_size (the body is
 * streamed to the host, never held here).  Only <CR><LF>.<CR><LF> ends DATA;
 * see session.c for the exact rules on bare CR, bare LF, NUL and dots.
 * The session never sees a socket, a file or a clock: the host enforces
 * timeouts and connection limits and tells the session (smtp_session_timeout,
 * smtp_session_start with a refusal). */
#ifndef SK_SMTP_SESSION_H
#define SK_SMTP_SESSION_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Input buffered while the session waits for the host; more closes the
 * session with 421 (a real host stops reading while suspended). */
#define SMTP_SESSION_BUFFER_MAX (1024 * 1024)

/* The limits and policy one session runs with; the host keeps it alive (and
 * unchanged) for the session's lifetime. */
struct smtp_session_settings {
	const char *hostname;	    /* in the greeting and replies */
	uint64_t max_message_size;  /* bytes after dot-unstuffing; SIZE announces it */
	unsigned max_recipients;    /* RCPT per transaction */
	size_t line_length_limit;   /* command line, without CRLF */
	unsigned max_errors;	    /* error replies before 421 */
	unsigned max_auth_failures; /* failed AUTH before 421 */
	bool require_tls;	    /* MAIL needs STARTTLS first */
	bool require_auth;	    /* MAIL needs AUTH first */
	bool tls_available;	    /* offer STARTTLS */
	bool auth_available;	    /* offer AUTH (only ever over TLS) */
	/* Accepted recipients: "user@domain" or "@domain", compared without
	 * case.  NULL or empty: any recipient.  "postmaster" is always taken. */
	char **recipients;
};

/* Fills in the defaults documented in snapkeep.conf(5); hostname "localhost". */
void smtp_session_settings_default(struct smtp_session_settings *settings);

/* One transaction, as handed to host->message_end. */
struct smtp_envelope {
	const char *helo;
	const char *mail_from; /* "" for the null sender <> */
	GPtrArray *rcpts;      /* char *, accepted recipients */
	uint64_t size;	       /* bytes given to host->data_write */
	bool body_8bit;	       /* BODY=8BITMIME */
	bool tls;
	const char *auth_user;		/* NULL unless authenticated */
	unsigned bare_lf, bare_cr, nul; /* counts in the body (kept as content) */
};

struct smtp_session_host {
	/* Bytes to send to the client (whole reply lines). */
	void (*output)(void *ctx, const char *data, size_t len);
	/* MAIL FROM: is there room for a message of declared_size (0 if not
	 * declared)?  0 yes, -1 no (452).  NULL: always. */
	int (*storage_check)(void *ctx, uint64_t declared_size);
	/* DATA accepted: prepare the spool.  0 or -1 (451). */
	int (*data_begin)(void *ctx);
	/* Message bytes, dot-unstuffed, in order.  0 or -1 (451 at the end). */
	int (*data_write)(void *ctx, const void *data, size_t len);
	/* The message was discarded (too big, spool error, session closed). */
	void (*data_abort)(void *ctx);
	/* The whole message arrived: make it durable, then call
	 * smtp_session_message_done().  The envelope is valid until then. */
	void (*message_end)(void *ctx, const struct smtp_envelope *envelope);
	/* Verify a password, then call smtp_session_auth_done().  The strings
	 * are wiped when the callback returns: copy what you need. */
	void (*auth_check)(void *ctx, const char *user, const char *password);
	/* The 220 for STARTTLS has been output: flush it, run the handshake,
	 * then call smtp_session_tls_done(). */
	void (*starttls)(void *ctx);
};

struct smtp_session;

/* A new session for the client at peer (text, for logs).  id names the
 * session in log lines.  Nothing is output until smtp_session_start. */
struct smtp_session *smtp_session_new(const struct smtp_session_settings *settings,
				      const struct smtp_session_host *host, void *ctx,
				      const char *id, const char *peer);
/* Frees; calls host->data_abort if a message was open.  Accepts NULL. */
void smtp_session_free(struct smtp_session **session);

/* Sends the greeting, or, when refusal is not NULL (a whole reply such as
 * "421 4.7.0 Error: too many connections"), that refusal and closes.  Input
 * fed before this call is "pregreet": it is answered with 554 and the
 * session closes. */
void smtp_session_start(struct smtp_session *session, const char *refusal);

/* Processes client bytes.  Returns when all input is consumed or the
 * session is suspended or closed. */
void smtp_session_feed(struct smtp_session *session, const void *data, size_t len);

/* The host has written every byte of output to the client: commands
 * received after this point do not violate pipelining synchronisation. */
void smtp_session_flushed(struct smtp_session *session);

/* Results of the suspending callbacks.  text is put after "250 2.0.0 Ok: "
 * (e.g. "queued as 42") when ok, and is logged when not. */
void smtp_session_message_done(struct smtp_session *session, bool ok, const char *text);
void smtp_session_auth_done(struct smtp_session *session, bool ok);
void smtp_session_tls_done(struct smtp_session *session, bool ok);

/* No input within the host's timeout: 421 and close. */
void smtp_session_timeout(struct smtp_session *session);
/* The daemon is stopping: 421 and close now unless a message is being
 * received or committed, in which case after its reply. */
void smtp_session_shutdown(struct smtp_session *session);

/* The host may read more input (false while suspended or closed). */
bool smtp_session_wants_input(const struct smtp_session *session);
/* Closed: flush the output, then close the connection. */
bool smtp_session_closed(const struct smtp_session *session);
/* Receiving DATA or waiting for a message's commit (the host applies the
 * DATA timeout rather than the command timeout, and lets it finish on
 * shutdown). */
bool smtp_session_in_data(const struct smtp_session *session);
/* Messages answered 250 in this session. */
unsigned smtp_session_messages(const struct smtp_session *session);

#endif
