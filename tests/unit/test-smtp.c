/* test-smtp.c: exact transcripts of the SMTP session state machine.
 *
 * Each case is a script of client sends (and host events); the harness
 * plays it three ways (each send whole, one byte at a time, and split at
 * pseudo-random points) and every way must give the same transcript, the
 * same stored messages and the same final state.  The harness is a real
 * host of the machine: it spools bodies, completes commits, password checks
 * and TLS handshakes as soon as the machine asks (after the current feed
 * call), and reports the output flushed after each client send, as a
 * client that waits for the replies would see it. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "smtp/session.h"
#include "util/log.h"

enum step_kind {
	STEP_END = 0,
	STEP_SEND,
	STEP_TIMEOUT,
	STEP_SHUTDOWN,
	STEP_HOLD,    /* keep the next commit pending */
	STEP_RELEASE, /* complete a held commit */
};

struct step {
	enum step_kind kind;
	const char *data;
	size_t len;
};

/* clang-format off */
#define SEND(s) { STEP_SEND, s, sizeof(s) - 1 }
#define TIMEOUT { STEP_TIMEOUT, NULL, 0 }
#define SHUTDOWN { STEP_SHUTDOWN, NULL, 0 }
#define HOLD { STEP_HOLD, NULL, 0 }
#define RELEASE { STEP_RELEASE, NULL, 0 }

/* Case options. */
#define OPT_PREGREET 0x01     /* the first send comes before the greeting */
#define OPT_REQUIRE_TLS 0x02
#define OPT_REQUIRE_AUTH 0x04
#define OPT_NO_TLS 0x08
#define OPT_STORAGE_FULL 0x10
#define OPT_STORE_FAIL 0x20
#define OPT_SPOOL_FAIL 0x40
#define OPT_ANY_RCPT 0x80
#define OPT_NO_AUTH 0x100
#define OPT_REFUSE 0x200      /* the host refuses the connection */
#define OPT_TLS_FAIL 0x400

struct body {
	const char *data;
	size_t len;
};
#define BODY(s) { s, sizeof(s) - 1 }

struct tcase {
	const char *name;
	unsigned opts;
	struct step steps[16];
	const char *transcript;
	bool closed;
	struct body bodies[4];
};

#define GREET "220 mx.test ESMTP snapkeep\r\n"
#define EHLO_PLAIN                                                                                 \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"                       \
	"250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
#define EHLO_NOTLS                                                                                 \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"                       \
	"250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_TLS                                                                                   \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"                       \
	"250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n"
#define ENVELOPE "MAIL FROM:<printer@fleet.test>\r\nRCPT TO:<snap@fleet.test>\r\nDATA\r\n"
#define ENVELOPE_OK "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
#define TLS_START SEND("EHLO printer\r\n"), SEND("STARTTLS\r\n"), SEND("EHLO printer\r\n")
#define TLS_START_OK GREET EHLO_PLAIN "220 2.0.0 Ready to start TLS\r\n" EHLO_TLS
/* "\0alice\0secret" and "\0alice\0wrong" */
#define PLAIN_GOOD "AGFsaWNlAHNlY3JldA=="
#define PLAIN_BAD "AGFsaWNlAHdyb25n"

static const struct tcase cases[] = {
	{ "plain delivery",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE), SEND("Subject: x\r\n\r\nhello\r\n.\r\n"),
	    SEND("QUIT\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n221 2.0.0 Bye\r\n",
	  true,
	  { BODY("Subject: x\r\n\r\nhello\r\n") } },
	{ "HELO, lower case, spaces after the colon, null sender",
	  0,
	  { SEND("helo printer\r\n"), SEND("mail from: <>\r\n"), SEND("rcpt to: <SNAP@FLEET.TEST>\r\n"),
	    SEND("data\r\n"), SEND("x\r\n.\r\n") },
	  GREET "250 mx.test\r\n" ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n",
	  false,
	  { BODY("x\r\n") } },
	{ "pipelined envelope, then commands pipelined after the final dot",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE), SEND("a\r\n.\r\n" ENVELOPE), SEND("b\r\n.\r\nQUIT\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n" ENVELOPE_OK
				       "250 2.0.0 Ok: queued as 2\r\n221 2.0.0 Bye\r\n",
	  true,
	  { BODY("a\r\n"), BODY("b\r\n") } },
	{ "empty body, source route, bare address, parameters",
	  0,
	  { SEND("EHLO printer\r\n"),
	    SEND("MAIL FROM:printer@fleet.test SIZE=100 BODY=8BITMIME\r\n"),
	    SEND("RCPT TO:<@relay.test,@other.test:snap@fleet.test>\r\n"), SEND("DATA\r\n"),
	    SEND(".\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n",
	  false,
	  { BODY("") } },
	{ "dot-unstuffing is exact",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE),
	    SEND("..\r\n...x\r\n.y\r\n. \r\nz.\r\n..\r\n.\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n",
	  false,
	  { BODY(".\r\n..x\r\ny\r\n \r\nz.\r\n.\r\n") } },
	{ "smuggling: no other dot form ends DATA",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE),
	    SEND("a\n.\nMAIL FROM:<x@y>\n"), SEND("b\r.\rRCPT TO:<z@w>\r"),
	    SEND("c\n.\r\nd\r\n.\ne\r.\r\nf\r\n.\r.\r\n.\rg\r\n"), SEND(".\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n",
	  false,
	  { BODY("a\n.\nMAIL FROM:<x@y>\nb\r.\rRCPT TO:<z@w>\r"
		 "c\n.\r\nd\r\n\ne\r.\r\nf\r\n\r.\r\n\rg\r\n") } },
	{ "bare LF, bare CR and NUL in the body are content",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE), SEND("a\nb\rc\0d\r\r\n\n.\r\n"),
	    SEND("\r\n.\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n",
	  false,
	  { BODY("a\nb\rc\0d\r\r\n\n.\r\n\r\n") } },
	{ "commands may end in a bare LF",
	  0,
	  { SEND("EHLO printer\n"), SEND("NOOP\n") },
	  GREET EHLO_PLAIN "250 2.0.0 Ok\r\n",
	  false },
	{ "over-long command line, NUL and bare CR in commands",
	  0,
	  { SEND("EHLO printer\r\n"),
	    SEND("NOOP 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"),
	    SEND("NOOP 0123456789012345678901234567890123456789012345678901234567\r\n"),
	    SEND("NO\0OP\r\n"), SEND("NOOP\rRSET\r\n"), SEND("RSET\r\n") },
	  GREET EHLO_PLAIN "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"
			   "500 5.5.2 Error: NUL character in command\r\n"
			   "500 5.5.2 Error: bare CR in command\r\n250 2.0.0 Ok\r\n",
	  false },
	{ "input before the greeting",
	  OPT_PREGREET,
	  { SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b>\r\n") },
	  "554 5.5.0 mx.test Error: input before greeting\r\n",
	  true },
	{ "pipelining past NOOP",
	  0,
	  { SEND("EHLO printer\r\n"), SEND("RSET\r\nNOOP\r\nMAIL FROM:<a@b>\r\n") },
	  GREET EHLO_PLAIN "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
			   "554 5.5.0 Error: SMTP protocol synchronization\r\n",
	  true },
	{ "pipelining past EHLO",
	  0,
	  { SEND("EHLO printer\r\nMAIL FROM:<a@b>\r\n") },
	  GREET EHLO_PLAIN "554 5.5.0 Error: SMTP protocol synchronization\r\n",
	  true },
	{ "message content pipelined with DATA",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE "hello\r\n.\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "554 5.5.0 Error: SMTP protocol synchronization\r\n",
	  true },
	{ "HTTP request",
	  0,
	  { SEND("GET / HTTP/1.1\r\nHost: mx.test\r\n\r\n") },
	  GREET "521 5.7.0 Error: this is an SMTP server\r\n",
	  true },
	{ "HTTP proxy CONNECT",
	  0,
	  { SEND("CONNECT mx.test:25 HTTP/1.1\r\n") },
	  GREET "521 5.7.0 Error: this is an SMTP server\r\n",
	  true },
	{ "HTTP header line",
	  0,
	  { SEND("EHLO printer\r\n"), SEND("User-Agent: curl\r\n") },
	  GREET EHLO_PLAIN "521 5.7.0 Error: this is an SMTP server\r\n",
	  true },
	{ "POST with a body",
	  0,
	  { SEND("POST /x HTTP/1.0\r\nContent-Length: 4\r\n\r\nQUIT") },
	  GREET "521 5.7.0 Error: this is an SMTP server\r\n",
	  true },
	{ "oversized without SIZE is read to the end, then 552",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE),
	    SEND("0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
		 ".\r\n"),
	    SEND(ENVELOPE), SEND("small\r\n.\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK "552 5.3.4 Error: message file too big\r\n" ENVELOPE_OK
				       "250 2.0.0 Ok: queued as 1\r\n",
	  false,
	  { BODY("small\r\n") } },
	{ "declared SIZE over the limit, bad SIZE, bad BODY, unknown option",
	  0,
	  { SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b> SIZE=1001\r\n"),
	    SEND("MAIL FROM:<a@b> SIZE=12x\r\n"), SEND("MAIL FROM:<a@b> BODY=BINARYMIME\r\n"),
	    SEND("MAIL FROM:<a@b> SMTPUTF8\r\n"), SEND("MAIL FROM:<a@b> SIZE=1000\r\n") },
	  GREET EHLO_PLAIN "552 5.3.4 Message size exceeds fixed limit\r\n"
			   "501 5.5.4 Bad message size syntax\r\n"
			   "501 5.5.4 Bad BODY keyword syntax\r\n"
			   "555 5.5.4 Unsupported option: SMTPUTF8\r\n250 2.1.0 Ok\r\n",
	  false },
	{ "bad sequences",
	  0,
	  { SEND("MAIL FROM:<a@b>\r\n"), SEND("EHLO printer\r\n"), SEND("RCPT TO:<snap@fleet.test>\r\n"),
	    SEND("MAIL FROM:<a@b>\r\n"), SEND("MAIL FROM:<a@b>\r\n"), SEND("DATA\r\n") },
	  GREET "503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_PLAIN
		"503 5.5.1 Error: need MAIL command\r\n"
		"250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n"
		"503 5.5.1 Error: need RCPT command\r\n",
	  false },
	{ "syntax errors",
	  0,
	  { SEND("EHLO\r\n"), SEND("HELO printer\r\n"), SEND("MAIL TO:<a@b>\r\n"),
	    SEND("MAIL FROM:<a@b\r\n"), SEND("MAIL FROM:<a@b>x\r\n"), SEND("RSET now\r\n"),
	    SEND("NOOP\r\n") },
	  GREET "501 5.5.4 Syntax: EHLO hostname\r\n250 mx.test\r\n"
		"501 5.5.4 Syntax: MAIL FROM:<address>\r\n501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
		"501 5.5.4 Syntax: MAIL FROM:<address>\r\n501 5.5.4 Syntax: RSET\r\n"
		"421 4.7.0 mx.test Error: too many errors\r\n",
	  true },
	{ "empty line and unknown command",
	  0,
	  { SEND("\r\n"), SEND("XYZZY\r\n"), SEND("NOOP\r\n") },
	  GREET "500 5.5.2 Error: bad syntax\r\n502 5.5.2 Error: command not recognized\r\n"
		"250 2.0.0 Ok\r\n",
	  false },
	{ "recipients: addresses, domains, postmaster, relay, unknown, limit",
	  0,
	  { SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b>\r\n"), SEND("RCPT TO:<x@print.test>\r\n"),
	    SEND("RCPT TO:<other@fleet.test>\r\n"), SEND("RCPT TO:<victim@elsewhere.test>\r\n"),
	    SEND("RCPT TO:<Postmaster>\r\n"), SEND("RCPT TO:<postmaster@fleet.test>\r\n"),
	    SEND("RCPT TO:<snap@fleet.test>\r\n"), SEND("RCPT TO:<>\r\n"),
	    SEND("RCPT TO:<snap@fleet.test> NOTIFY=NEVER\r\n") },
	  GREET EHLO_PLAIN "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
			   "550 5.1.1 <other@fleet.test>: Recipient address rejected: User unknown\r\n"
			   "554 5.7.1 <victim@elsewhere.test>: Relay access denied\r\n"
			   "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Error: too many recipients\r\n"
			   "501 5.1.3 Bad recipient address syntax\r\n"
			   "555 5.5.4 Unsupported option: NOTIFY=NEVER\r\n421 4.7.0 mx.test Error: too many errors\r\n",
	  true },
	{ "any recipient when none are configured",
	  OPT_ANY_RCPT,
	  { SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b>\r\n"), SEND("RCPT TO:<x@anywhere.test>\r\n"),
	    SEND("RCPT TO:<local>\r\n") },
	  GREET EHLO_PLAIN "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n",
	  false },
	{ "VRFY, HELP, NOOP, RSET, EXPN",
	  0,
	  { SEND("VRFY root\r\n"), SEND("VRFY\r\n"), SEND("HELP\r\n"), SEND("NOOP\r\n"), SEND("RSET\r\n"),
	    SEND("EXPN staff\r\n") },
	  GREET "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
		"501 5.5.4 Syntax: VRFY address\r\n"
		"214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY STARTTLS\r\n"
		"250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n502 5.5.1 Error: command not implemented\r\n",
	  false },
	{ "STARTTLS: plaintext injected after the command is discarded, state reset",
	  0,
	  { SEND("EHLO printer\r\n"), SEND("STARTTLS\r\nRSET\r\nMAIL FROM:<a@b>\r\n"),
	    SEND("MAIL FROM:<a@b>\r\n"), SEND("EHLO printer\r\n"), SEND("STARTTLS\r\n") },
	  GREET EHLO_PLAIN "220 2.0.0 Ready to start TLS\r\n503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_TLS
			   "554 5.5.1 Error: TLS already active\r\n",
	  false },
	{ "STARTTLS refused: before EHLO, in a transaction, with arguments",
	  0,
	  { SEND("STARTTLS\r\n"), SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b>\r\n"),
	    SEND("STARTTLS\r\n"), SEND("RSET\r\n"), SEND("STARTTLS now\r\n") },
	  GREET "503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_PLAIN
		"250 2.1.0 Ok\r\n503 5.5.1 Error: MAIL transaction in progress\r\n250 2.0.0 Ok\r\n"
		"501 5.5.4 Syntax: STARTTLS\r\n",
	  false },
	{ "STARTTLS not offered",
	  OPT_NO_TLS,
	  { SEND("EHLO printer\r\n"), SEND("STARTTLS\r\n") },
	  GREET EHLO_NOTLS "502 5.5.1 Error: command not implemented\r\n",
	  false },
	{ "a failed handshake closes",
	  OPT_TLS_FAIL,
	  { SEND("EHLO printer\r\n"), SEND("STARTTLS\r\n"), SEND("EHLO printer\r\n") },
	  GREET EHLO_PLAIN "220 2.0.0 Ready to start TLS\r\n",
	  true },
	{ "AUTH is refused without TLS and when not configured",
	  0,
	  { SEND("EHLO printer\r\n"), SEND("AUTH PLAIN " PLAIN_GOOD "\r\n") },
	  GREET EHLO_PLAIN "538 5.7.11 Encryption required for requested authentication mechanism\r\n",
	  false },
	{ "AUTH not enabled",
	  OPT_NO_AUTH,
	  { TLS_START, SEND("AUTH PLAIN " PLAIN_GOOD "\r\n") },
	  GREET EHLO_PLAIN "220 2.0.0 Ready to start TLS\r\n" EHLO_NOTLS
			   "503 5.5.1 Error: authentication not enabled\r\n",
	  false },
	{ "AUTH PLAIN with an initial response, then a delivery",
	  OPT_REQUIRE_AUTH,
	  { TLS_START, SEND("MAIL FROM:<a@b>\r\n"), SEND("AUTH PLAIN " PLAIN_GOOD "\r\n"),
	    SEND("AUTH PLAIN " PLAIN_GOOD "\r\n"), SEND(ENVELOPE), SEND("x\r\n.\r\n") },
	  TLS_START_OK "530 5.7.0 Authentication required\r\n235 2.7.0 Authentication successful\r\n"
		       "503 5.5.1 Error: already authenticated\r\n" ENVELOPE_OK
		       "250 2.0.0 Ok: queued as 1\r\n",
	  false,
	  { BODY("x\r\n") } },
	{ "AUTH PLAIN with a challenge; failures end the session",
	  0,
	  { TLS_START, SEND("AUTH PLAIN\r\n"), SEND(PLAIN_BAD "\r\n"), SEND("AUTH PLAIN " PLAIN_BAD "\r\n") },
	  TLS_START_OK "334 \r\n535 5.7.8 Error: authentication failed\r\n"
		       "535 5.7.8 Error: authentication failed\r\n"
		       "421 4.7.0 mx.test Error: too many failed authentication attempts\r\n",
	  true },
	{ "AUTH LOGIN, cancel, bad base64, unknown mechanism, authzid",
	  0,
	  { TLS_START, SEND("AUTH CRAM-MD5\r\n"), SEND("AUTH LOGIN\r\n"), SEND("*\r\n"),
	    SEND("AUTH PLAIN not*base64\r\n"),
	    /* "bob\0alice\0secret" */
	    SEND("AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n"), SEND("AUTH LOGIN\r\n"), SEND("YWxpY2U=\r\n"),
	    SEND("c2VjcmV0\r\n") },
	  TLS_START_OK "504 5.5.4 Unrecognized authentication type\r\n334 VXNlcm5hbWU6\r\n"
		       "501 5.7.0 Authentication cancelled\r\n501 5.5.2 Cannot decode response\r\n"
		       "535 5.7.8 Error: authentication failed\r\n334 VXNlcm5hbWU6\r\n"
		       "334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n",
	  false },
	{ "AUTH response pipelined without waiting for 334",
	  0,
	  { TLS_START, SEND("AUTH LOGIN\r\nYWxpY2U=\r\n") },
	  TLS_START_OK "334 VXNlcm5hbWU6\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n",
	  true },
	{ "require_tls",
	  OPT_REQUIRE_TLS,
	  { SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b>\r\n"), SEND("STARTTLS\r\n"),
	    SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b>\r\n") },
	  GREET EHLO_PLAIN "530 5.7.0 Must issue a STARTTLS command first\r\n"
			   "220 2.0.0 Ready to start TLS\r\n" EHLO_TLS "250 2.1.0 Ok\r\n",
	  false },
	{ "full disk is refused at MAIL with 452",
	  OPT_STORAGE_FULL,
	  { SEND("EHLO printer\r\n"), SEND("MAIL FROM:<a@b> SIZE=10\r\n") },
	  GREET EHLO_PLAIN "452 4.3.1 Insufficient system storage\r\n",
	  false },
	{ "a failed commit gives 451, the next transaction works",
	  OPT_STORE_FAIL,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE), SEND("x\r\n.\r\n"), SEND("RSET\r\n") },
	  GREET EHLO_PLAIN ENVELOPE_OK
	  "451 4.3.0 Error: temporary failure storing the message, try again later\r\n250 2.0.0 Ok\r\n",
	  false,
	  { BODY("x\r\n") } },
	{ "a spool that cannot open gives 451 to DATA",
	  OPT_SPOOL_FAIL,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE) },
	  GREET EHLO_PLAIN "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n451 4.3.0 Error: cannot spool message\r\n",
	  false },
	{ "timeout",
	  0,
	  { SEND("EHLO printer\r\n"), TIMEOUT, SEND("NOOP\r\n") },
	  GREET EHLO_PLAIN "421 4.4.2 mx.test Error: timeout exceeded\r\n",
	  true },
	{ "shutdown between commands",
	  0,
	  { SEND("EHLO printer\r\n"), SHUTDOWN, SEND("NOOP\r\n") },
	  GREET EHLO_PLAIN "421 4.3.2 mx.test Service shutting down\r\n",
	  true },
	{ "shutdown during DATA lets the message finish",
	  0,
	  { SEND("EHLO printer\r\n"), SEND(ENVELOPE), SEND("x\r\n"), SHUTDOWN, HOLD, SEND(".\r\nNOOP\r\n"),
	    RELEASE },
	  GREET EHLO_PLAIN ENVELOPE_OK "250 2.0.0 Ok: queued as 1\r\n"
				       "421 4.3.2 mx.test Service shutting down\r\n",
	  true,
	  { BODY("x\r\n") } },
	{ "a refused connection",
	  OPT_REFUSE,
	  { SEND("EHLO printer\r\n") },
	  "421 4.7.0 mx.test Error: too many connections\r\n",
	  true },
};
/* clang-format on */

/* ---- the host ---------------------------------------------------------- */

struct harness {
	const struct tcase *tc;
	struct smtp_session *session;
	GString *out;
	GByteArray *body;    /* spool of the open message */
	GPtrArray *messages; /* GBytes bodies handed to message_end */
	bool pending_message, pending_auth, pending_tls;
	bool auth_ok;
	bool hold;
	unsigned aborts;
};

static void
h_output(void *ctx, const char *data, size_t len)
{
	struct harness *h = ctx;
	g_string_append_len(h->out, data, (gssize)len);
}

static int
h_storage_check(void *ctx, uint64_t size)
{
	struct harness *h = ctx;
	return (h->tc->opts & OPT_STORAGE_FULL) != 0 ? -1 : 0;
}

static int
h_data_begin(void *ctx)
{
	struct harness *h = ctx;
	g_assert_null(h->body);
	if ((h->tc->opts & OPT_SPOOL_FAIL) != 0)
		return -1;
	h->body = g_byte_array_new();
	return 0;
}

static int
h_data_write(void *ctx, const void *data, size_t len)
{
	struct harness *h = ctx;
	g_assert_nonnull(h->body);
	g_byte_array_append(h->body, data, (guint)len);
	return 0;
}

static void
h_data_abort(void *ctx)
{
	struct harness *h = ctx;
	if (h->body != NULL)
		g_byte_array_free(h->body, TRUE);
	h->body = NULL;
	h->aborts++;
}

static void
h_message_end(void *ctx, const struct smtp_envelope *env)
{
	struct harness *h = ctx;
	g_assert_nonnull(h->body);
	g_assert_cmpuint(env->size, ==, h->body->len);
	g_assert_cmpuint(env->rcpts->len, >, 0);
	g_ptr_array_add(h->messages, g_byte_array_free_to_bytes(h->body));
	h->body = NULL;
	h->pending_message = true;
}

static void
h_auth_check(void *ctx, const char *user, const char *password)
{
	struct harness *h = ctx;
	h->pending_auth = true;
	h->auth_ok = strcmp(user, "alice") == 0 && strcmp(password, "secret") == 0;
}

static void
h_starttls(void *ctx)
{
	struct harness *h = ctx;
	h->pending_tls = true;
}

static const struct smtp_session_host harness_host = {
    .output = h_output,
    .storage_check = h_storage_check,
    .data_begin = h_data_begin,
    .data_write = h_data_write,
    .data_abort = h_data_abort,
    .message_end = h_message_end,
    .auth_check = h_auth_check,
    .starttls = h_starttls,
};

/* Completes what the machine asked for.  A TLS handshake is completed
 * only between client sends: bytes the client sent in the same send as
 * STARTTLS were sent in plaintext, before any handshake. */
static void
harness_complete(struct harness *h, bool with_tls)
{
	if (h->pending_message && !h->hold) {
		h->pending_message = false;
		char *text = g_strdup_printf("queued as %u", h->messages->len);
		smtp_session_message_done(h->session, (h->tc->opts & OPT_STORE_FAIL) == 0, text);
		g_free(text);
	}
	if (h->pending_auth) {
		h->pending_auth = false;
		smtp_session_auth_done(h->session, h->auth_ok);
	}
	if (h->pending_tls && with_tls) {
		h->pending_tls = false;
		smtp_session_tls_done(h->session, (h->tc->opts & OPT_TLS_FAIL) == 0);
	}
}

enum feed_mode { FEED_WHOLE, FEED_BYTES, FEED_RANDOM };

static char *recipients[] = {"snap@fleet.test", "@print.test", NULL};

static void
settings_for(const struct tcase *tc, struct smtp_session_settings *set)
{
	smtp_session_settings_default(set);
	set->hostname = "mx.test";
	set->max_message_size = 1000;
	set->max_recipients = 3;
	set->line_length_limit = 64;
	set->max_errors = 5;
	set->max_auth_failures = 2;
	set->tls_available = (tc->opts & OPT_NO_TLS) == 0;
	set->auth_available = (tc->opts & OPT_NO_AUTH) == 0;
	set->require_tls = (tc->opts & OPT_REQUIRE_TLS) != 0;
	set->require_auth = (tc->opts & OPT_REQUIRE_AUTH) != 0;
	set->recipients = (tc->opts & OPT_ANY_RCPT) != 0 ? NULL : recipients;
}

static void
harness_run(const struct tcase *tc, enum feed_mode mode, GString *transcript_r, GPtrArray *bodies_r,
	    bool *closed_r)
{
	struct smtp_session_settings set;
	struct harness h = {.tc = tc};
	GRand *rand = g_rand_new_with_seed(42);
	size_t first = 0;

	settings_for(tc, &set);
	h.out = transcript_r;
	h.messages = bodies_r;
	h.session = smtp_session_new(&set, &harness_host, &h, "t1", "192.0.2.1");
	if ((tc->opts & OPT_PREGREET) != 0) {
		smtp_session_feed(h.session, tc->steps[0].data, tc->steps[0].len);
		first = 1;
	}
	smtp_session_start(h.session, (tc->opts & OPT_REFUSE) != 0
					  ? "421 4.7.0 mx.test Error: too many connections"
					  : NULL);
	smtp_session_flushed(h.session);
	for (size_t i = first; i < G_N_ELEMENTS(tc->steps) && tc->steps[i].kind != STEP_END; i++) {
		const struct step *st = &tc->steps[i];
		switch (st->kind) {
		case STEP_SEND: {
			size_t pos = 0;
			while (pos < st->len) {
				size_t n = st->len - pos;
				if (mode == FEED_BYTES)
					n = 1;
				else if (mode == FEED_RANDOM) {
					size_t r = (size_t)g_rand_int_range(rand, 1, 8);
					n = MIN(n, r);
				}
				smtp_session_feed(h.session, st->data + pos, n);
				harness_complete(&h, false);
				pos += n;
			}
			harness_complete(&h, true);
			smtp_session_flushed(h.session);
			break;
		}
		case STEP_TIMEOUT:
			smtp_session_timeout(h.session);
			break;
		case STEP_SHUTDOWN:
			smtp_session_shutdown(h.session);
			break;
		case STEP_HOLD:
			h.hold = true;
			break;
		case STEP_RELEASE:
			h.hold = false;
			harness_complete(&h, true);
			smtp_session_flushed(h.session);
			break;
		case STEP_END:
			break;
		}
	}
	*closed_r = smtp_session_closed(h.session);
	smtp_session_free(&h.session);
	if (h.body != NULL)
		g_byte_array_free(h.body, TRUE);
	g_rand_free(rand);
}

static void
test_case(gconstpointer data)
{
	const struct tcase *tc = data;
	static const char *const mode_names[] = {"whole", "bytes", "random"};

	for (int mode = FEED_WHOLE; mode <= FEED_RANDOM; mode++) {
		GString *transcript = g_string_new(NULL);
		GPtrArray *bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
		bool closed = false;

		harness_run(tc, (enum feed_mode)mode, transcript, bodies, &closed);
		if (strcmp(transcript->str, tc->transcript) != 0) {
			char *got = g_strescape(transcript->str, NULL);
			char *want = g_strescape(tc->transcript, NULL);
			g_test_message("feeding %s\n got: %s\nwant: %s", mode_names[mode], got,
				       want);
			g_free(got);
			g_free(want);
			g_test_fail();
		}
		g_assert_cmpint(closed, ==, tc->closed);
		size_t nbodies = 0;
		while (nbodies < G_N_ELEMENTS(tc->bodies) && tc->bodies[nbodies].data != NULL)
			nbodies++;
		g_assert_cmpuint(bodies->len, ==, nbodies);
		for (size_t i = 0; i < nbodies; i++) {
			gsize len;
			const char *got = g_bytes_get_data(g_ptr_array_index(bodies, i), &len);
			if (len != tc->bodies[i].len ||
			    (len > 0 && memcmp(got, tc->bodies[i].data, len) != 0)) {
				char *raw = g_strndup(got, len);
				char *esc = g_strescape(raw, NULL);
				g_test_message("feeding %s, body %zu: got \"%s\"", mode_names[mode],
					       i, esc);
				g_free(esc);
				g_free(raw);
				g_test_fail();
			}
		}
		g_ptr_array_free(bodies, TRUE);
		g_string_free(transcript, TRUE);
	}
}

/* Never more than line_length_limit (plus CRLF) of a command is buffered,
 * and a body of any size streams through. */
static void
test_streaming(void)
{
	struct tcase tc = {.name = "stream"};
	struct smtp_session_settings set;
	struct harness h = {.tc = &tc};
	GPtrArray *bodies = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	const char *env = "EHLO p\r\n";

	settings_for(&tc, &set);
	set.max_message_size = 8 * 1024 * 1024;
	h.out = g_string_new(NULL);
	h.messages = bodies;
	h.session = smtp_session_new(&set, &harness_host, &h, "t2", "192.0.2.1");
	smtp_session_start(h.session, NULL);
	smtp_session_flushed(h.session);
	smtp_session_feed(h.session, env, strlen(env));
	smtp_session_flushed(h.session);
	env = ENVELOPE;
	smtp_session_feed(h.session, env, strlen(env));
	smtp_session_flushed(h.session);
	/* 4 MiB of base64-like lines. */
	char line[78];
	memset(line, 'A', 76);
	line[76] = '\r';
	line[77] = '\n';
	size_t total = 0;
	while (total < 4 * 1024 * 1024) {
		smtp_session_feed(h.session, line, sizeof(line));
		total += sizeof(line);
	}
	smtp_session_feed(h.session, ".\r\n", 3);
	harness_complete(&h, true);
	g_assert_cmpuint(bodies->len, ==, 1);
	g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(bodies, 0)), ==, total);
	g_assert_true(g_str_has_suffix(h.out->str, "250 2.0.0 Ok: queued as 1\r\n"));
	smtp_session_free(&h.session);
	g_string_free(h.out, TRUE);
	g_ptr_array_free(bodies, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	log_init("test-smtp", g_test_verbose() ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *path = g_strdup_printf("/smtp/transcript/%02zu", i);
		g_test_add_data_func(path, &cases[i], test_case);
		g_free(path);
	}
	g_test_add_func("/smtp/streaming", test_streaming);
	return g_test_run();
}
