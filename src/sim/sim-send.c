/* sim-send.c: the simulator's sinks.
 *
 *  - out: one .eml file per mail, written to a temporary name and renamed.
 *  - maildir: written to tmp/, fsync'd, renamed into new/ (Maildir rules).
 *  - smtp: libcurl's multi interface, up to `connections` transfers at once
 *    (curl keeps and reuses the connections), SMTP (RFC 5321) with optional
 *    STARTTLS (RFC 3207) or implicit TLS and SASL AUTH (RFC 4954) done by
 *    curl.  A 4xx reply or a lost connection is retried with exponential
 *    backoff (retry_base_ms doubling up to retry_max_ms, at most
 *    max_attempts); 5xx is final.  The final reply line is kept.
 *  - the drop-in-DATA fault cannot be done through curl: it opens a plain
 *    socket, speaks EHLO/MAIL/RCPT/DATA itself, sends half the message and
 *    closes the connection.  Plain SMTP only.
 *
 * Limits: the queue of waiting mails is bounded (queue_max); every
 * transfer has a timeout; connections only go where --smtp says. */
#include "config.h"

#include "sim/sim-send.h"
#include "util/log.h"
#include "util/sktime.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct transfer {
	CURL *easy;
	struct curl_slist *rcpt;
	struct sim_outgoing *out;
	GString *last_reply;
	char errbuf[CURL_ERROR_SIZE];
};

struct sim_sink {
	struct sim_sink_settings s;
	char **rcpt; /* owned copy */
	sim_sink_done_fn done;
	gpointer data;
	CURLM *multi;
	GQueue waiting;	   /* struct sim_outgoing *, ready or backing off */
	GPtrArray *active; /* struct transfer * */
	GArray *latencies; /* double ms */
	struct sim_sink_stats stats;
	unsigned file_seq;
};

void
sim_sink_settings_default(struct sim_sink_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->connections = 4;
	s->max_attempts = 6;
	s->retry_base_ms = 500;
	s->retry_max_ms = 30000;
	s->timeout_s = 600;
	s->slow_bps = 256;
}

struct sim_outgoing *
sim_outgoing_new(GBytes *raw, const char *mail_from, const char *name)
{
	struct sim_outgoing *o = g_new0(struct sim_outgoing, 1);
	o->raw = g_bytes_ref(raw);
	o->mail_from = g_strdup(mail_from);
	o->name = g_strdup(name);
	return o;
}

void
sim_outgoing_free(struct sim_outgoing **out)
{
	struct sim_outgoing *o;
	if (out == NULL || *out == NULL)
		return;
	o = *out;
	if (o->raw != NULL)
		g_bytes_unref(o->raw);
	if (o->user != NULL && o->user_free != NULL)
		o->user_free(o->user);
	g_free(o->mail_from);
	g_free(o->name);
	g_free(o->reply);
	g_free(o->path);
	g_free(o);
	*out = NULL;
}

static void
finish_one(struct sim_sink *sink, struct sim_outgoing *out)
{
	switch (out->status) {
	case SIM_DELIVERY_SENT:
		sink->stats.sent++;
		sink->stats.bytes += g_bytes_get_size(out->raw);
		break;
	case SIM_DELIVERY_DROPPED:
		sink->stats.dropped++;
		break;
	default:
		sink->stats.failed++;
		break;
	}
	if (sink->s.kind == SIM_SINK_SMTP)
		g_array_append_val(sink->latencies, out->latency_ms);
	if (sink->done != NULL)
		sink->done(out, sink->data);
	sim_outgoing_free(&out);
}

/* ---- files -------------------------------------------------------------- */

static int
write_file_sync(const char *path, const void *data, size_t len, bool sync, char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	const char *p = data;
	if (fd < 0) {
		*error_r = g_strdup_printf("%s: %s", path, g_strerror(errno));
		return -1;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = g_strdup_printf("%s: %s", path, g_strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if ((sync && fsync(fd) < 0) || close(fd) < 0) {
		*error_r = g_strdup_printf("%s: %s", path, g_strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static void
deliver_file(struct sim_sink *sink, struct sim_outgoing *out)
{
	gsize len;
	const void *data = g_bytes_get_data(out->raw, &len);
	char *error = NULL;
	char *tmp = NULL, *final = NULL;

	sink->file_seq++;
	if (sink->s.kind == SIM_SINK_OUT) {
		final = g_strdup_printf("%s/%s.eml", sink->s.dir, out->name);
		tmp = g_strdup_printf("%s/.%s.eml.tmp", sink->s.dir, out->name);
	} else {
		char *base =
		    g_strdup_printf("%" G_GINT64_FORMAT ".M%uP%dQ%u.snapkeep-sim", sk_time_now(),
				    sink->file_seq, (int)getpid(), sink->file_seq);
		tmp = g_strdup_printf("%s/tmp/%s", sink->s.dir, base);
		final = g_strdup_printf("%s/new/%s", sink->s.dir, base);
		g_free(base);
	}
	out->attempts = 1;
	if (write_file_sync(tmp, data, len, sink->s.kind == SIM_SINK_MAILDIR, &error) == 0 &&
	    rename(tmp, final) == 0) {
		out->status = SIM_DELIVERY_SENT;
		out->path = final;
		final = NULL;
	} else {
		if (error == NULL)
			error = g_strdup_printf("rename %s: %s", final, g_strerror(errno));
		out->status = SIM_DELIVERY_FAILED;
		out->reply = error;
		error = NULL;
		unlink(tmp);
	}
	g_free(tmp);
	g_free(final);
	g_free(error);
	finish_one(sink, out);
}

/* ---- the drop-in-DATA fault (raw socket) --------------------------------- */

/* Reads one SMTP reply (all its lines); returns the code or -1. */
static int
raw_reply(int fd, GString *buf)
{
	char c;
	g_string_truncate(buf, 0);
	for (;;) {
		GString *line = g_string_new(NULL);
		for (;;) {
			ssize_t n = recv(fd, &c, 1, 0);
			if (n <= 0) {
				g_string_free(line, TRUE);
				return -1;
			}
			if (c == '\n')
				break;
			if (c != '\r')
				g_string_append_c(line, c);
			if (line->len > 4096) {
				g_string_free(line, TRUE);
				return -1;
			}
		}
		g_string_assign(buf, line->str);
		bool last = line->len < 4 || line->str[3] != '-';
		g_string_free(line, TRUE);
		if (last)
			break;
	}
	if (buf->len < 3 || !g_ascii_isdigit(buf->str[0]))
		return -1;
	return (buf->str[0] - '0') * 100 + (buf->str[1] - '0') * 10 + (buf->str[2] - '0');
}

static int
raw_send(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int raw_cmd(int fd, GString *reply, int expect, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static int
raw_cmd(int fd, GString *reply, int expect, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	int r = raw_send(fd, cmd, strlen(cmd));
	g_free(cmd);
	if (r < 0)
		return -1;
	int code = raw_reply(fd, reply);
	return code / 100 == expect / 100 ? 0 : -1;
}

static void
deliver_drop(struct sim_sink *sink, struct sim_outgoing *out)
{
	GUri *uri = g_uri_parse(sink->s.url, G_URI_FLAGS_NONE, NULL);
	GString *reply = g_string_new(NULL);
	struct addrinfo hints = {0}, *res = NULL;
	int fd = -1;
	char port[16];

	out->attempts = 1;
	out->status = SIM_DELIVERY_FAILED;
	if (uri == NULL || g_strcmp0(g_uri_get_scheme(uri), "smtp") != 0 || sink->s.starttls) {
		out->reply = g_strdup("drop_in_data needs a plain smtp:// server");
		goto out;
	}
	g_snprintf(port, sizeof(port), "%d", g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : 25);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(g_uri_get_host(uri), port, &hints, &res) != 0 || res == NULL) {
		out->reply = g_strdup("drop_in_data: cannot resolve the server");
		goto out;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	struct timeval tv = {.tv_sec = 30, .tv_usec = 0};
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	int64_t t0 = sk_time_now_us();
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    raw_reply(fd, reply) != 220 ||
	    raw_cmd(fd, reply, 250, "EHLO snapkeep-sim.example\r\n") < 0 ||
	    raw_cmd(fd, reply, 250, "MAIL FROM:<%s>\r\n", out->mail_from) < 0) {
		out->reply = g_strdup_printf("drop_in_data: session failed: %s", reply->str);
		goto out;
	}
	for (char **r = sink->rcpt; r != NULL && *r != NULL; r++) {
		if (raw_cmd(fd, reply, 250, "RCPT TO:<%s>\r\n", *r) < 0) {
			out->reply = g_strdup_printf("drop_in_data: RCPT refused: %s", reply->str);
			goto out;
		}
	}
	if (raw_cmd(fd, reply, 354, "DATA\r\n") < 0) {
		out->reply = g_strdup_printf("drop_in_data: DATA refused: %s", reply->str);
		goto out;
	}
	/* Half the message, dot-stuffed, then the connection goes away. */
	gsize len;
	const char *data = g_bytes_get_data(out->raw, &len);
	GString *half = g_string_sized_new(len / 2 + 64);
	bool bol = true;
	for (gsize i = 0; i < len / 2; i++) {
		if (bol && data[i] == '.')
			g_string_append_c(half, '.');
		g_string_append_c(half, data[i]);
		bol = data[i] == '\n';
	}
	raw_send(fd, half->str, half->len);
	g_string_free(half, TRUE);
	shutdown(fd, SHUT_RDWR);
	out->status = SIM_DELIVERY_DROPPED;
	out->reply = g_strdup("connection dropped in DATA");
	out->latency_ms = (double)(sk_time_now_us() - t0) / 1000.0;
out:
	if (fd >= 0)
		close(fd);
	if (res != NULL)
		freeaddrinfo(res);
	if (uri != NULL)
		g_uri_unref(uri);
	g_string_free(reply, TRUE);
	finish_one(sink, out);
}

/* ---- SMTP through libcurl ------------------------------------------------ */

static size_t
read_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	struct transfer *t = userdata;
	gsize len;
	const char *data = g_bytes_get_data(t->out->raw, &len);
	size_t room = size * nitems;
	size_t n = len - t->out->offset < room ? len - t->out->offset : room;
	if (t->out->slow && n > 64)
		n = 64; /* drip: small writes, paced by CURLOPT_MAX_SEND_SPEED_LARGE */
	memcpy(buffer, data + t->out->offset, n);
	t->out->offset += n;
	return n;
}

static int
debug_cb(CURL *handle, curl_infotype type, char *data, size_t size, void *userp)
{
	struct transfer *t = userp;
	(void)handle;
	if (type != CURLINFO_HEADER_IN || size == 0)
		return 0;
	g_string_truncate(t->last_reply, 0);
	g_string_append_len(t->last_reply, data, (gssize)(size < 512 ? size : 512));
	while (t->last_reply->len > 0 && (t->last_reply->str[t->last_reply->len - 1] == '\n' ||
					  t->last_reply->str[t->last_reply->len - 1] == '\r'))
		g_string_truncate(t->last_reply, t->last_reply->len - 1);
	return 0;
}

static void
transfer_free(struct transfer *t)
{
	if (t->easy != NULL)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->rcpt);
	g_string_free(t->last_reply, TRUE);
	g_free(t);
}

static void
start_transfer(struct sim_sink *sink, struct sim_outgoing *out)
{
	struct transfer *t = g_new0(struct transfer, 1);
	gsize len;
	g_bytes_get_data(out->raw, &len);

	t->out = out;
	t->last_reply = g_string_new(NULL);
	t->easy = curl_easy_init();
	for (char **r = sink->rcpt; r != NULL && *r != NULL; r++)
		t->rcpt = curl_slist_append(t->rcpt, *r);
	out->offset = 0;
	out->attempts++;
	out->started_us = sk_time_now_us();

	CURL *e = t->easy;
	curl_easy_setopt(e, CURLOPT_URL, sink->s.url);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, out->mail_from);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->rcpt);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(e, CURLOPT_READDATA, t);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(e, CURLOPT_DEBUGDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)sink->s.timeout_s);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	if (sink->s.user != NULL)
		curl_easy_setopt(e, CURLOPT_USERNAME, sink->s.user);
	if (sink->s.password != NULL)
		curl_easy_setopt(e, CURLOPT_PASSWORD, sink->s.password);
	if (sink->s.login_options != NULL)
		curl_easy_setopt(e, CURLOPT_LOGIN_OPTIONS, sink->s.login_options);
	if (sink->s.starttls)
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (sink->s.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (sink->s.ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, sink->s.ca_file);
	if (out->slow)
		curl_easy_setopt(e, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)sink->s.slow_bps);
	curl_multi_add_handle(sink->multi, e);
	g_ptr_array_add(sink->active, t);
}

static bool
retryable(CURLcode rc, long code)
{
	if (code >= 400 && code < 500)
		return true;
	if (code >= 500)
		return false;
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
		return true;
	default:
		return false;
	}
}

static void
transfer_done(struct sim_sink *sink, struct transfer *t, CURLcode rc)
{
	struct sim_outgoing *out = t->out;
	long code = 0;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	out->reply_code = code;
	out->latency_ms = (double)(sk_time_now_us() - out->started_us) / 1000.0;
	g_free(out->reply);
	if (t->last_reply->len > 0)
		out->reply = g_strdup(t->last_reply->str);
	else
		out->reply = g_strdup(t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(rc));

	curl_multi_remove_handle(sink->multi, t->easy);
	g_ptr_array_remove_fast(sink->active, t);
	t->out = NULL;
	transfer_free(t);

	if (rc == CURLE_OK) {
		out->status = SIM_DELIVERY_SENT;
		finish_one(sink, out);
		return;
	}
	if (retryable(rc, code) && out->attempts < sink->s.max_attempts) {
		double backoff =
		    (double)sink->s.retry_base_ms * pow(2.0, (double)(out->attempts - 1));
		if (backoff > sink->s.retry_max_ms)
			backoff = sink->s.retry_max_ms;
		out->not_before_us = sk_time_now_us() + (int64_t)(backoff * 1000.0);
		sink->stats.retried++;
		log_info("sim: event=retry attempt=%u code=%ld reason=\"%s\" backoff_ms=%.0f",
			 out->attempts, code, out->reply, backoff);
		g_queue_push_tail(&sink->waiting, out);
		return;
	}
	out->status = SIM_DELIVERY_FAILED;
	log_warnx("sim: event=failed attempts=%u code=%ld reason=\"%s\"", out->attempts, code,
		  out->reply);
	finish_one(sink, out);
}

/* Starts what may start; returns ms until the next backoff expires (or -1). */
static int
start_ready(struct sim_sink *sink)
{
	int64_t now = sk_time_now_us();
	int64_t soonest = -1;
	GList *l = sink->waiting.head;
	while (l != NULL && sink->active->len < sink->s.connections) {
		GList *next = l->next;
		struct sim_outgoing *out = l->data;
		if (out->not_before_us <= now) {
			g_queue_delete_link(&sink->waiting, l);
			if (out->drop)
				deliver_drop(sink, out);
			else
				start_transfer(sink, out);
		} else if (soonest < 0 || out->not_before_us < soonest) {
			soonest = out->not_before_us;
		}
		l = next;
	}
	if (soonest < 0)
		return -1;
	return (int)((soonest - now) / 1000) + 1;
}

void
sim_sink_pump(struct sim_sink *sink, int timeout_ms)
{
	int64_t deadline = sk_time_now_us() + (int64_t)timeout_ms * 1000;
	if (sink->s.kind != SIM_SINK_SMTP)
		return;
	for (;;) {
		int wait = start_ready(sink);
		int running = 0;
		curl_multi_perform(sink->multi, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(sink->multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct transfer *t = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
			transfer_done(sink, t, msg->data.result);
		}
		int64_t now = sk_time_now_us();
		if (now >= deadline)
			break;
		int remain = (int)((deadline - now) / 1000);
		if (wait < 0 || wait > remain)
			wait = remain;
		if (wait > 100)
			wait = 100;
		if (sink->active->len == 0 && g_queue_is_empty(&sink->waiting))
			break;
		curl_multi_poll(sink->multi, NULL, 0, wait > 0 ? wait : 1, NULL);
	}
}

int
sim_sink_new(const struct sim_sink_settings *settings, sim_sink_done_fn done, gpointer data,
	     struct sim_sink **sink_r, char **error_r)
{
	struct sim_sink *sink = g_new0(struct sim_sink, 1);
	sink->s = *settings;
	if (sink->s.connections == 0)
		sink->s.connections = 1;
	if (sink->s.max_attempts == 0)
		sink->s.max_attempts = 1;
	if (sink->s.queue_max == 0)
		sink->s.queue_max = 4 * sink->s.connections;
	sink->done = done;
	sink->data = data;
	sink->active = g_ptr_array_new();
	sink->latencies = g_array_new(FALSE, FALSE, sizeof(double));
	g_queue_init(&sink->waiting);
	sink->stats.started_us = sk_time_now_us();
	if (settings->rcpt != NULL)
		sink->rcpt = g_strdupv((char **)settings->rcpt);

	switch (settings->kind) {
	case SIM_SINK_OUT:
		if (g_mkdir_with_parents(settings->dir, 0755) < 0)
			goto dir_error;
		break;
	case SIM_SINK_MAILDIR: {
		static const char *const subs[] = {"tmp", "new", "cur"};
		for (unsigned i = 0; i < 3; i++) {
			char *p = g_build_filename(settings->dir, subs[i], NULL);
			int r = g_mkdir_with_parents(p, 0700);
			g_free(p);
			if (r < 0)
				goto dir_error;
		}
		break;
	}
	case SIM_SINK_SMTP:
		if (settings->url == NULL || sink->rcpt == NULL || sink->rcpt[0] == NULL) {
			*error_r =
			    g_strdup("smtp: a server URL and at least one recipient are needed");
			sim_sink_free(&sink);
			return -1;
		}
		curl_global_init(CURL_GLOBAL_DEFAULT);
		sink->multi = curl_multi_init();
		curl_multi_setopt(sink->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				  (long)sink->s.connections);
		break;
	case SIM_SINK_NONE:
	default:
		break;
	}
	*sink_r = sink;
	return 0;
dir_error:
	*error_r = g_strdup_printf("%s: %s", settings->dir, g_strerror(errno));
	sim_sink_free(&sink);
	return -1;
}

void
sim_sink_submit(struct sim_sink *sink, struct sim_outgoing *out)
{
	sink->stats.submitted++;
	switch (sink->s.kind) {
	case SIM_SINK_OUT:
	case SIM_SINK_MAILDIR:
		deliver_file(sink, out);
		return;
	case SIM_SINK_SMTP:
		g_queue_push_tail(&sink->waiting, out);
		while (g_queue_get_length(&sink->waiting) + sink->active->len >= sink->s.queue_max)
			sim_sink_pump(sink, 100);
		sim_sink_pump(sink, 0);
		return;
	case SIM_SINK_NONE:
	default:
		out->status = SIM_DELIVERY_SENT;
		finish_one(sink, out);
		return;
	}
}

void
sim_sink_finish(struct sim_sink *sink)
{
	if (sink->s.kind == SIM_SINK_SMTP)
		while (sink->active->len > 0 || !g_queue_is_empty(&sink->waiting))
			sim_sink_pump(sink, 200);
	sink->stats.finished_us = sk_time_now_us();
}

static gint
double_cmp(gconstpointer a, gconstpointer b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

void
sim_sink_get_stats(struct sim_sink *sink, struct sim_sink_stats *st)
{
	*st = sink->stats;
	if (st->finished_us == 0)
		st->finished_us = sk_time_now_us();
	GArray *l = sink->latencies;
	if (l->len > 0) {
		g_array_sort(l, double_cmp);
		const double *v = (const double *)l->data;
		st->p50_ms = v[(l->len - 1) * 50 / 100];
		st->p90_ms = v[(l->len - 1) * 90 / 100];
		st->p99_ms = v[(l->len - 1) * 99 / 100];
		st->max_ms = v[l->len - 1];
	}
}

void
sim_sink_free(struct sim_sink **sinkp)
{
	struct sim_sink *sink;
	if (sinkp == NULL || *sinkp == NULL)
		return;
	sink = *sinkp;
	for (unsigned i = 0; i < sink->active->len; i++) {
		struct transfer *t = g_ptr_array_index(sink->active, i);
		curl_multi_remove_handle(sink->multi, t->easy);
		sim_outgoing_free(&t->out);
		transfer_free(t);
	}
	struct sim_outgoing *o;
	while ((o = g_queue_pop_head(&sink->waiting)) != NULL)
		sim_outgoing_free(&o);
	if (sink->multi != NULL) {
		curl_multi_cleanup(sink->multi);
		curl_global_cleanup();
	}
	g_ptr_array_unref(sink->active);
	g_array_unref(sink->latencies);
	g_strfreev(sink->rcpt);
	g_free(sink);
	*sinkp = NULL;
}
