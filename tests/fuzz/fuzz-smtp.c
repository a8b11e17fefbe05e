/* fuzz-smtp.c: the SMTP session state machine fed arbitrary bytes, no
 * sockets.  The first byte chooses the options (TLS and AUTH offered and
 * their outcomes, the commit's outcome, whether the host reports output
 * flushed between pieces), the second the piece size; the rest is what the
 * client sends.  The host completes every suspension at once, as the real
 * server eventually does.
 *
 * Checked on every input (abort() makes the fuzzer report it):
 *  - every reply line is "DDD" followed by ' ' or '-', and ends in CRLF;
 *  - the body handed to the host never exceeds max_message_size and comes
 *    only between data_begin and message_end/data_abort;
 *  - a closed session outputs nothing more. */
#include "config.h"

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/session.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	struct smtp_session *s;
	GString *out;
	bool open;
	uint64_t body;
	uint64_t max;
	bool pending_message, pending_auth, pending_tls;
	bool closed_output;
	uint8_t opts;
};

static void
fz_output(void *ctx, const char *data, size_t len)
{
	struct fz *f = ctx;
	if (f->closed_output)
		abort();
	g_string_append_len(f->out, data, (gssize)len);
}

static int
fz_storage(void *ctx, uint64_t size)
{
	struct fz *f = ctx;
	return (f->opts & 0x40) != 0 ? -1 : 0;
}

static int
fz_begin(void *ctx)
{
	struct fz *f = ctx;
	if (f->open)
		abort();
	f->open = true;
	f->body = 0;
	return 0;
}

static int
fz_write(void *ctx, const void *data, size_t len)
{
	struct fz *f = ctx;
	if (!f->open)
		abort();
	f->body += len;
	if (f->body > f->max)
		abort();
	return 0;
}

static void
fz_abort(void *ctx)
{
	struct fz *f = ctx;
	f->open = false;
}

static void
fz_end(void *ctx, const struct smtp_envelope *env)
{
	struct fz *f = ctx;
	if (!f->open || env->size != f->body || env->rcpts->len == 0)
		abort();
	f->open = false;
	f->pending_message = true;
}

static void
fz_auth(void *ctx, const char *user, const char *password)
{
	struct fz *f = ctx;
	f->pending_auth = true;
}

static void
fz_starttls(void *ctx)
{
	struct fz *f = ctx;
	f->pending_tls = true;
}

static const struct smtp_session_host fz_host = {
    .output = fz_output,
    .storage_check = fz_storage,
    .data_begin = fz_begin,
    .data_write = fz_write,
    .data_abort = fz_abort,
    .message_end = fz_end,
    .auth_check = fz_auth,
    .starttls = fz_starttls,
};

static void
fz_complete(struct fz *f)
{
	if (f->pending_message) {
		f->pending_message = false;
		smtp_session_message_done(f->s, (f->opts & 0x08) == 0, "queued as 1");
	}
	if (f->pending_auth) {
		f->pending_auth = false;
		smtp_session_auth_done(f->s, (f->opts & 0x10) != 0);
	}
	if (f->pending_tls) {
		f->pending_tls = false;
		smtp_session_tls_done(f->s, (f->opts & 0x20) == 0);
	}
}

static void
fz_check_output(const GString *out)
{
	const char *p = out->str, *end = out->str + out->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL || nl - p < 5 || nl[-1] != '\r' || !g_ascii_isdigit(p[0]) ||
		    !g_ascii_isdigit(p[1]) || !g_ascii_isdigit(p[2]) ||
		    (p[3] != ' ' && p[3] != '-'))
			abort();
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *recipients[] = {"snap@fleet.test", "@print.test", NULL};
	struct smtp_session_settings set;
	struct fz f = {0};
	size_t piece;

	if (size < 2)
		return 0;
	log_init("fuzz-smtp", LOG_LEVEL_ERROR);
	f.opts = data[0];
	piece = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	smtp_session_settings_default(&set);
	set.hostname = "mx.test";
	set.max_message_size = 4096;
	set.line_length_limit = 128;
	set.max_errors = (f.opts & 0x80) != 0 ? 0 : 20;
	set.tls_available = (f.opts & 0x01) != 0;
	set.auth_available = (f.opts & 0x02) != 0;
	set.require_tls = (f.opts & 0x03) == 0x03;
	set.recipients = (f.opts & 0x04) != 0 ? recipients : NULL;
	f.max = set.max_message_size;
	f.out = g_string_new(NULL);
	f.s = smtp_session_new(&set, &fz_host, &f, "fz", "192.0.2.1");
	smtp_session_start(f.s, NULL);
	smtp_session_flushed(f.s);
	for (size_t pos = 0; pos < size; pos += piece) {
		size_t n = MIN(piece, size - pos);
		bool was_closed = smtp_session_closed(f.s);
		f.closed_output = was_closed;
		smtp_session_feed(f.s, data + pos, n);
		fz_complete(&f);
		if ((f.opts & 0x80) == 0 || (pos / piece) % 2 == 0)
			smtp_session_flushed(f.s);
	}
	if (!smtp_session_closed(f.s))
		smtp_session_timeout(f.s);
	fz_check_output(f.out);
	smtp_session_free(&f.s);
	g_string_free(f.out, TRUE);
	return 0;
}
