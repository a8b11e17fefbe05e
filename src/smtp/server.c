/* server.c: the SMTP listener (see server.h for the design and the posture).
 *
 * One connection:
 *
 *   accept -> (policy: networks, limits) -> [greet_pause] -> greeting
 *   readable -> read (plain or GnuTLS) -> smtp_session_feed -> output queued
 *   -> written (then smtp_session_flushed) -> ... -> closed -> fd closed
 *
 * Jobs (a message's commit, a password check) run on the pool; their
 * completion comes back to the main context through g_main_context_invoke,
 * so connection state is only ever touched by the main context's thread.
 * A connection whose client went away while a job runs is closed at once
 * and freed when the job returns (the message is still committed: it arrived
 * whole, and a retry is recorded as a duplicate).
 *
 * Invariants:
 *  1. At most max_pending_commits jobs run, and the messages they read add
 *     up to at most max_pending_size bytes (one bigger message runs alone).
 *     Messages waiting for a slot stay in their unlinked spool file.
 *  2. Nothing is read from a client while its session does not want input
 *     or while more than SMTP_SERVER_OUTPUT_MAX bytes wait to be written
 *     to it, so a session's memory is bounded whatever the client sends.
 *  3. smtp_session_flushed is called only when every byte of output has
 *     been handed to the kernel (or to GnuTLS, which wrote it). */
#include "config.h"

#include "smtp/server.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "smtp/auth.h"
#include "smtp/tls.h"
#include "util/log.h"

#define SMTP_READ_CHUNK (64 * 1024)
#define SMTP_READS_PER_WAKEUP 8
#define SMTP_SPOOL_BUFFER (32 * 1024)
#define SMTP_LISTEN_BACKLOG 128

/* What a session started with; reference-counted so that a reload does not
 * change a session midway. */
struct smtp_config {
	gint refs;
	struct smtp_session_settings session;
	char *hostname;
	char **recipients;
	GPtrArray *networks; /* GInetAddressMask */
	unsigned max_connections, max_connections_per_ip;
	unsigned command_timeout_ms, data_timeout_ms, greet_pause_ms;
	uint64_t min_free_space;
	struct smtp_tls *tls;
	struct smtp_auth *auth;
	char **listen; /* as configured, to warn about changes on reload */
};

struct smtp_listener {
	int fd;
	GSource *source;
	char *address;
	bool paused;
};

enum smtp_job_kind { SMTP_JOB_MESSAGE, SMTP_JOB_AUTH };

struct smtp_job {
	enum smtp_job_kind kind;
	struct smtp_conn *conn;
	struct smtp_server *server;
	/* message */
	int spool_fd;        /* the message, read by intake_accept_fd */
	uint64_t size;
	char *helo, *mail_from, *rcpt_to, *peer;
	unsigned rcpts;
	int64_t received_us, started_us;
	int rc;
	struct store_receipt receipt;
	char *error;
	/* auth */
	char *user, *password;
	bool ok;
};

struct smtp_conn {
	struct smtp_server *server;
	struct smtp_config *config;
	struct smtp_session *session;
	int fd;
	char *id;
	char *peer;
	bool counted; /* in the total and per-address counts */
	GSource *source;
	gpointer tag;
	GSource *greet_timer;
	GSource *kick;
	GByteArray *out;
	size_t out_pos;
	gnutls_session_t tls;
	struct smtp_tls *tls_creds;
	bool tls_active, handshaking, starttls_requested;
	size_t tls_again_len; /* a gnutls_record_send to resume with NULL, 0 */
	int64_t connected_us, active_us;
	struct smtp_job *job; /* running or waiting */
	bool dead;	      /* closed; freed when the job returns */
	/* spool */
	int spool_fd;
	guint8 *spool_buf;
	size_t spool_len;
	uint64_t spool_size;
};

struct smtp_server {
	struct smtp_config *config;
	char *spool_dir;
	char *db_dir;
	GPtrArray *listeners;
	GPtrArray *addresses; /* char *, NULL-terminated */
	GMainContext *context;
	struct intake *intake;
	GHashTable *conns;  /* struct smtp_conn * set */
	GHashTable *per_ip; /* peer -> GUINT count */
	unsigned active;
	GThreadPool *pool;
	GQueue waiting; /* struct smtp_job * */
	unsigned pending_jobs;
	uint64_t pending_bytes;
	unsigned max_pending_commits;
	uint64_t max_pending_size;
	GSource *timer;
	bool started, stopping;
	uint64_t next_id;
	struct smtp_server_stats stats;
};

static void conn_pump(struct smtp_conn *c);
static void conn_close(struct smtp_conn *c, const char *reason);
static void server_dispatch(struct smtp_server *srv);

void
smtp_server_settings_default(struct smtp_server_settings *s)
{
	memset(s, 0, sizeof(*s));
	smtp_session_settings_default(&s->session);
	s->session.hostname = NULL;
	s->max_connections = 200;
	s->max_connections_per_ip = 50;
	s->command_timeout_ms = 300 * 1000;
	s->data_timeout_ms = 300 * 1000;
	s->greet_pause_ms = 0;
	s->shutdown_timeout_ms = 30 * 1000;
	s->spool_dir = ".";
	s->db_dir = ".";
	s->min_free_space = 64 * 1024 * 1024;
	s->max_pending_commits = 64;
	s->max_pending_size = 16 * 1024 * 1024;
}

/* ---- configuration ----------------------------------------------------- */

static void
config_unref(struct smtp_config **config)
{
	struct smtp_config *c = *config;
	if (c == NULL)
		return;
	*config = NULL;
	if (!g_atomic_int_dec_and_test(&c->refs))
		return;
	g_free(c->hostname);
	g_strfreev(c->recipients);
	g_strfreev(c->listen);
	g_ptr_array_free(c->networks, TRUE);
	smtp_tls_unref(&c->tls);
	smtp_auth_free(&c->auth);
	g_free(c);
}

static struct smtp_config *
config_ref(struct smtp_config *c)
{
	g_atomic_int_inc(&c->refs);
	return c;
}

static int
config_new(const struct smtp_server_settings *set, struct smtp_config **config_r, char **error_r)
{
	struct smtp_config *c = g_new0(struct smtp_config, 1);
	const char *hostname = set->session.hostname;

	c->refs = 1;
	c->networks = g_ptr_array_new_with_free_func(g_object_unref);
	c->session = set->session;
	c->hostname =
	    g_strdup(hostname != NULL && hostname[0] != '\0' ? hostname : g_get_host_name());
	c->session.hostname = c->hostname;
	c->recipients = g_strdupv(set->session.recipients);
	c->session.recipients = c->recipients;
	c->listen = g_strdupv(set->listen);
	c->max_connections = set->max_connections;
	c->max_connections_per_ip = set->max_connections_per_ip;
	c->command_timeout_ms = set->command_timeout_ms;
	c->data_timeout_ms = set->data_timeout_ms;
	c->greet_pause_ms = set->greet_pause_ms;
	c->min_free_space = set->min_free_space;
	for (char **n = set->allowed_networks; n != NULL && *n != NULL; n++) {
		GError *gerr = NULL;
		GInetAddressMask *mask = g_inet_address_mask_new_from_string(*n, &gerr);
		if (mask == NULL) {
			*error_r =
			    g_strdup_printf("allowed_networks: \"%s\": %s", *n, gerr->message);
			g_error_free(gerr);
			goto fail;
		}
		g_ptr_array_add(c->networks, mask);
	}
	if ((set->tls_cert_file != NULL && set->tls_cert_file[0] != '\0') !=
	    (set->tls_key_file != NULL && set->tls_key_file[0] != '\0')) {
		*error_r = g_strdup("tls_cert_file and tls_key_file go together");
		goto fail;
	}
	if (set->tls_cert_file != NULL && set->tls_cert_file[0] != '\0' &&
	    smtp_tls_load(set->tls_cert_file, set->tls_key_file, set->tls_priority, &c->tls,
			  error_r) < 0)
		goto fail;
	if (set->auth_users_file != NULL && set->auth_users_file[0] != '\0') {
		if (c->tls == NULL) {
			*error_r = g_strdup("auth_users_file needs tls_cert_file and tls_key_file: "
					    "AUTH is only offered over TLS");
			goto fail;
		}
		if (smtp_auth_load(set->auth_users_file, &c->auth, error_r) < 0)
			goto fail;
	}
	c->session.tls_available = c->tls != NULL;
	c->session.auth_available = c->auth != NULL;
	if (c->session.require_tls && c->tls == NULL) {
		*error_r = g_strdup("require_tls needs tls_cert_file and tls_key_file");
		goto fail;
	}
	if (c->session.require_auth && c->auth == NULL) {
		*error_r = g_strdup("require_auth needs auth_users_file");
		goto fail;
	}
	*config_r = c;
	return 0;
fail:
	config_unref(&c);
	return -1;
}

/* ---- addresses --------------------------------------------------------- */

/* Text of an address; IPv4-mapped IPv6 addresses as plain IPv4. */
static GInetAddress *
address_unmap(GInetAddress *addr)
{
	if (g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6) {
		const guint8 *b = g_inet_address_to_bytes(addr);
		static const guint8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(b, prefix, 12) == 0)
			return g_inet_address_new_from_bytes(b + 12, G_SOCKET_FAMILY_IPV4);
	}
	return g_object_ref(addr);
}

static char *
sockaddr_text(const struct sockaddr *sa, socklen_t len, bool with_port)
{
	GSocketAddress *gsa = g_socket_address_new_from_native((gpointer)sa, len);
	char *text = NULL;
	if (gsa == NULL || !G_IS_INET_SOCKET_ADDRESS(gsa)) {
		if (gsa != NULL)
			g_object_unref(gsa);
		return g_strdup("unknown");
	}
	GInetAddress *addr =
	    address_unmap(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(gsa)));
	char *host = g_inet_address_to_string(addr);
	guint16 port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(gsa));
	if (!with_port)
		text = g_strdup(host);
	else if (g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6)
		text = g_strdup_printf("[%s]:%u", host, port);
	else
		text = g_strdup_printf("%s:%u", host, port);
	g_free(host);
	g_object_unref(addr);
	g_object_unref(gsa);
	return text;
}

/* "ADDR:PORT", "[V6]:PORT" or "*:PORT" -> socket addresses. */
static int
listen_parse(const char *spec, GPtrArray *addrs, char **error_r)
{
	const char *colon = strrchr(spec, ':');
	char *host = NULL;
	guint64 port;

	if (colon == NULL || !g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &port, NULL))
		goto bad;
	if (spec[0] == '[') {
		if (colon == spec || colon[-1] != ']')
			goto bad;
		host = g_strndup(spec + 1, (gsize)(colon - spec - 2));
	} else {
		host = g_strndup(spec, (gsize)(colon - spec));
	}
	if (strcmp(host, "*") == 0) {
		GInetAddress *any4 = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
		GInetAddress *any6 = g_inet_address_new_any(G_SOCKET_FAMILY_IPV6);
		g_ptr_array_add(addrs, g_inet_socket_address_new(any4, (guint16)port));
		g_ptr_array_add(addrs, g_inet_socket_address_new(any6, (guint16)port));
		g_object_unref(any4);
		g_object_unref(any6);
	} else {
		GInetAddress *addr = g_inet_address_new_from_string(host);
		if (addr == NULL)
			goto bad;
		g_ptr_array_add(addrs, g_inet_socket_address_new(addr, (guint16)port));
		g_object_unref(addr);
	}
	g_free(host);
	return 0;
bad:
	g_free(host);
	*error_r = g_strdup_printf("listen: \"%s\" is not ADDRESS:PORT (a literal IPv4 address, "
				   "[IPv6], or *)",
				   spec);
	return -1;
}

static int
listener_open(struct smtp_server *srv, GSocketAddress *gsa, char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len = (socklen_t)g_socket_address_get_native_size(gsa);
	int family = g_socket_address_get_family(gsa) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
	int one = 1;
	int fd = -1;

	memset(&ss, 0, sizeof(ss));
	if (!g_socket_address_to_native(gsa, &ss, sizeof(ss), NULL)) {
		errno = EINVAL;
		goto fail;
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, SMTP_LISTEN_BACKLOG) < 0)
		goto fail;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	struct smtp_listener *l = g_new0(struct smtp_listener, 1);
	l->fd = fd;
	l->address = sockaddr_text((struct sockaddr *)&ss, len, true);
	g_ptr_array_add(srv->listeners, l);
	return 0;
fail : {
	int err = errno;
	char *text = sockaddr_text((struct sockaddr *)&ss, len, true);
	*error_r = g_strdup_printf("listen: %s: %s", text, g_strerror(err));
	g_free(text);
	if (fd >= 0)
		close(fd);
	return -1;
}
}

/* ---- connections: output ----------------------------------------------- */

static void
conn_output(void *ctx, const char *data, size_t len)
{
	struct smtp_conn *c = ctx;
	g_byte_array_append(c->out, (const guint8 *)data, (guint)len);
}

static size_t
conn_out_pending(const struct smtp_conn *c)
{
	return c->out->len - c->out_pos;
}

/* Writes what it can.  -1 when the connection failed. */
static int
conn_flush(struct smtp_conn *c)
{
	while (conn_out_pending(c) > 0 || c->tls_again_len > 0) {
		ssize_t n;
		if (c->tls_active) {
			if (c->tls_again_len > 0)
				n = gnutls_record_send(c->tls, NULL, 0);
			else
				n = gnutls_record_send(c->tls, c->out->data + c->out_pos,
						       conn_out_pending(c));
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				if (c->tls_again_len == 0)
					c->tls_again_len = conn_out_pending(c);
				return 0;
			}
			c->tls_again_len = 0;
			if (n < 0) {
				log_info("smtp: event=write-failed session=%s peer=%s error=\"%s\"",
					 c->id, c->peer, gnutls_strerror((int)n));
				return -1;
			}
		} else {
			n = send(c->fd, c->out->data + c->out_pos, conn_out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return 0;
				log_info("smtp: event=write-failed session=%s peer=%s error=\"%s\"",
					 c->id, c->peer, g_strerror(errno));
				return -1;
			}
		}
		c->out_pos += (size_t)n;
		c->active_us = g_get_monotonic_time();
	}
	g_byte_array_set_size(c->out, 0);
	c->out_pos = 0;
	smtp_session_flushed(c->session);
	return 0;
}

/* ---- connections: the session's host ----------------------------------- */

static int
conn_storage_check(void *ctx, uint64_t declared)
{
	struct smtp_conn *c = ctx;
	const char *dirs[2] = {c->server->spool_dir, c->server->db_dir};
	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
		struct statvfs st;
		if (statvfs(dirs[i], &st) < 0)
			continue;
		uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize;
		if (avail < c->config->min_free_space + declared) {
			log_warnx(
			    "smtp: event=low-space session=%s dir=%s available=%" G_GUINT64_FORMAT
			    " needed=%" G_GUINT64_FORMAT,
			    c->id, dirs[i], avail, c->config->min_free_space + declared);
			return -1;
		}
	}
	return 0;
}

static int
conn_data_begin(void *ctx)
{
	struct smtp_conn *c = ctx;
	const char *dir = c->server->spool_dir;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* No O_TMPFILE on this file system: create and unlink at once. */
		char *path = g_build_filename(dir, ".snapkeep-spool-XXXXXX", NULL);
		fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
		g_free(path);
	}
	if (fd < 0) {
		log_warn("smtp: event=spool-failed session=%s dir=%s", c->id, dir);
		return -1;
	}
	c->spool_fd = fd;
	c->spool_buf = g_malloc(SMTP_SPOOL_BUFFER);
	c->spool_len = 0;
	c->spool_size = 0;
	return 0;
}

static int
spool_write_all(int fd, const void *data, size_t len)
{
	const guint8 *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
conn_spool_flush(struct smtp_conn *c)
{
	if (c->spool_len == 0)
		return 0;
	int rc = spool_write_all(c->spool_fd, c->spool_buf, c->spool_len);
	c->spool_len = 0;
	if (rc < 0)
		log_warn("smtp: event=spool-failed session=%s", c->id);
	return rc;
}

static int
conn_data_write(void *ctx, const void *data, size_t len)
{
	struct smtp_conn *c = ctx;
	c->spool_size += len;
	if (c->spool_len + len > SMTP_SPOOL_BUFFER) {
		if (conn_spool_flush(c) < 0)
			return -1;
		if (len >= SMTP_SPOOL_BUFFER) {
			if (spool_write_all(c->spool_fd, data, len) < 0) {
				log_warn("smtp: event=spool-failed session=%s", c->id);
				return -1;
			}
			return 0;
		}
	}
	memcpy(c->spool_buf + c->spool_len, data, len);
	c->spool_len += len;
	return 0;
}

static void
conn_spool_close(struct smtp_conn *c)
{
	if (c->spool_fd >= 0)
		close(c->spool_fd);
	c->spool_fd = -1;
	g_clear_pointer(&c->spool_buf, g_free);
	c->spool_len = 0;
}

static void
conn_data_abort(void *ctx)
{
	conn_spool_close(ctx);
}

static void
job_free(struct smtp_job *job)
{
	if (job->spool_fd >= 0)
		close(job->spool_fd);
	g_free(job->helo);
	g_free(job->mail_from);
	g_free(job->rcpt_to);
	g_free(job->peer);
	g_free(job->error);
	g_free(job->user);
	if (job->password != NULL)
		explicit_bzero(job->password, strlen(job->password));
	g_free(job->password);
	g_free(job);
}

static void
server_queue_job(struct smtp_server *srv, struct smtp_job *job)
{
	job->conn->job = job;
	g_queue_push_tail(&srv->waiting, job);
	server_dispatch(srv);
}

static void
conn_message_end(void *ctx, const struct smtp_envelope *env)
{
	struct smtp_conn *c = ctx;
	struct smtp_job *job = g_new0(struct smtp_job, 1);
	GString *rcpts = g_string_new(NULL);

	job->kind = SMTP_JOB_MESSAGE;
	job->conn = c;
	job->server = c->server;
	job->spool_fd = -1;
	job->rc = -1;
	if (conn_spool_flush(c) < 0) {
		job->error = g_strdup("spool write failed");
	} else {
		job->spool_fd = c->spool_fd;
		c->spool_fd = -1;
	}
	conn_spool_close(c);
	job->size = env->size;
	job->helo = g_strdup(env->helo);
	job->mail_from = g_strdup(env->mail_from);
	for (guint i = 0; i < env->rcpts->len; i++) {
		if (i > 0)
			g_string_append_c(rcpts, ',');
		g_string_append(rcpts, g_ptr_array_index(env->rcpts, i));
	}
	job->rcpt_to = g_string_free(rcpts, FALSE);
	job->rcpts = env->rcpts->len;
	job->peer = g_strdup(c->peer);
	job->received_us = g_get_real_time();
	server_queue_job(c->server, job);
}

static void
conn_auth_check(void *ctx, const char *user, const char *password)
{
	struct smtp_conn *c = ctx;
	struct smtp_job *job = g_new0(struct smtp_job, 1);
	job->kind = SMTP_JOB_AUTH;
	job->conn = c;
	job->server = c->server;
	job->spool_fd = -1;
	job->user = g_strdup(user);
	job->password = g_strdup(password);
	server_queue_job(c->server, job);
}

static void
conn_starttls(void *ctx)
{
	struct smtp_conn *c = ctx;
	c->starttls_requested = true;
}

static const struct smtp_session_host conn_host = {
    .output = conn_output,
    .storage_check = conn_storage_check,
    .data_begin = conn_data_begin,
    .data_write = conn_data_write,
    .data_abort = conn_data_abort,
    .message_end = conn_message_end,
    .auth_check = conn_auth_check,
    .starttls = conn_starttls,
};

/* ---- jobs -------------------------------------------------------------- */

static gboolean job_done(gpointer data);

static void
job_run(gpointer data, gpointer user_data)
{
	struct smtp_job *job = data;
	struct smtp_server *srv = job->server;

	job->started_us = g_get_monotonic_time();
	if (job->kind == SMTP_JOB_AUTH) {
		job->ok = smtp_auth_verify(job->conn->config->auth, job->user, job->password);
	} else if (job->spool_fd >= 0) {
		struct stat st;
		struct store_arrival arrival = {
		    .source = "smtp",
		    .peer = job->peer,
		    .helo = job->helo,
		    .mail_from = job->mail_from,
		    .rcpt_to = job->rcpt_to,
		    .received_us = job->received_us,
		};
		if (fstat(job->spool_fd, &st) < 0)
			job->error = g_strdup_printf("spool: %s", g_strerror(errno));
		else
			job->rc = intake_accept_fd(srv->intake, &arrival, job->spool_fd,
						   (size_t)st.st_size, &job->receipt, &job->error);
	}
	g_main_context_invoke(srv->context, job_done, job);
}

static void
server_dispatch(struct smtp_server *srv)
{
	while (srv->waiting.length > 0 && srv->pool != NULL) {
		struct smtp_job *job = g_queue_peek_head(&srv->waiting);
		uint64_t size = job->kind == SMTP_JOB_MESSAGE ? job->size : 0;
		if (srv->pending_jobs >= srv->max_pending_commits)
			break;
		if (srv->pending_bytes > 0 && srv->pending_bytes + size > srv->max_pending_size)
			break;
		g_queue_pop_head(&srv->waiting);
		srv->pending_jobs++;
		srv->pending_bytes += size;
		g_thread_pool_push(srv->pool, job, NULL);
	}
}

static void
conn_free(struct smtp_conn *c)
{
	struct smtp_server *srv = c->server;
	g_hash_table_remove(srv->conns, c);
	smtp_session_free(&c->session);
	conn_spool_close(c);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	smtp_tls_unref(&c->tls_creds);
	config_unref(&c->config);
	g_byte_array_free(c->out, TRUE);
	g_free(c->id);
	g_free(c->peer);
	g_free(c);
}

static gboolean
job_done(gpointer data)
{
	struct smtp_job *job = data;
	struct smtp_conn *c = job->conn;
	struct smtp_server *srv = job->server;

	srv->pending_jobs--;
	if (job->kind == SMTP_JOB_MESSAGE)
		srv->pending_bytes -= job->size;
	if (job->spool_fd >= 0) {
		close(job->spool_fd);
		job->spool_fd = -1;
	}
	c->job = NULL;
	if (job->kind == SMTP_JOB_MESSAGE) {
		double ms = (double)(g_get_monotonic_time() - job->started_us) / 1000.0;
		if (job->rc == 0) {
			srv->stats.messages++;
			srv->stats.message_bytes += job->size;
			log_info("smtp: event=accepted session=%s peer=%s from=<%s> rcpts=%u "
				 "size=%" G_GUINT64_FORMAT " intake_id=%" G_GINT64_FORMAT
				 " message_id=%" G_GINT64_FORMAT " duplicate=%s commit_ms=%.1f%s",
				 c->id, c->peer, job->mail_from, job->rcpts, job->size,
				 job->receipt.intake_id, job->receipt.message_id,
				 job->receipt.duplicate ? "yes" : "no", ms,
				 c->dead ? " client=gone" : "");
		} else {
			srv->stats.temp_failures++;
			log_warnx(
			    "smtp: event=commit-failed session=%s peer=%s size=%" G_GUINT64_FORMAT
			    " error=\"%s\"",
			    c->id, c->peer, job->size, job->error != NULL ? job->error : "?");
		}
	}
	if (c->dead) {
		conn_free(c);
	} else if (job->kind == SMTP_JOB_MESSAGE) {
		char *text = g_strdup_printf("queued as %" G_GINT64_FORMAT, job->receipt.intake_id);
		smtp_session_message_done(c->session, job->rc == 0, text);
		g_free(text);
		conn_pump(c);
	} else {
		smtp_session_auth_done(c->session, job->ok);
		conn_pump(c);
	}
	job_free(job);
	server_dispatch(srv);
	return G_SOURCE_REMOVE;
}

/* ---- connections: I/O -------------------------------------------------- */

static void
conn_close(struct smtp_conn *c, const char *reason)
{
	struct smtp_server *srv = c->server;
	if (c->dead)
		return;
	c->dead = true;
	if (c->counted) {
		srv->active--;
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(srv->per_ip, c->peer));
		if (n <= 1)
			g_hash_table_remove(srv->per_ip, c->peer);
		else
			g_hash_table_insert(srv->per_ip, g_strdup(c->peer),
					    GUINT_TO_POINTER(n - 1));
	}
	log_info("smtp: event=disconnect session=%s peer=%s reason=%s messages=%u duration_ms=%lld",
		 c->id, c->peer, reason, smtp_session_messages(c->session),
		 (long long)((g_get_monotonic_time() - c->connected_us) / 1000));
	if (c->source != NULL) {
		g_source_destroy(c->source);
		g_source_unref(c->source);
		c->source = NULL;
	}
	if (c->greet_timer != NULL) {
		g_source_destroy(c->greet_timer);
		g_source_unref(c->greet_timer);
		c->greet_timer = NULL;
	}
	if (c->kick != NULL) {
		g_source_destroy(c->kick);
		g_source_unref(c->kick);
		c->kick = NULL;
	}
	if (c->tls_active)
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);
	close(c->fd);
	c->fd = -1;
	if (c->job != NULL && g_queue_remove(&srv->waiting, c->job)) {
		/* Not started: a message not yet committed is dropped (the
		 * client never got a 250). */
		job_free(c->job);
		c->job = NULL;
	}
	if (c->job == NULL)
		conn_free(c);
}

static void
conn_set_events(struct smtp_conn *c)
{
	GIOCondition ev = 0;
	if (c->dead)
		return;
	if (c->handshaking) {
		ev = gnutls_record_get_direction(c->tls) ? G_IO_OUT : G_IO_IN;
	} else {
		if (smtp_session_wants_input(c->session) &&
		    conn_out_pending(c) < SMTP_SERVER_OUTPUT_MAX &&
		    !smtp_session_closed(c->session))
			ev |= G_IO_IN;
		if (conn_out_pending(c) > 0 || c->tls_again_len > 0)
			ev |= G_IO_OUT;
	}
	g_source_modify_unix_fd(c->source, c->tag, ev);
}

static void
conn_handshake(struct smtp_conn *c)
{
	int rc = gnutls_handshake(c->tls);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return;
	if (rc < 0 && !gnutls_error_is_fatal(rc))
		return;
	c->handshaking = false;
	c->active_us = g_get_monotonic_time();
	if (rc < 0) {
		log_info("smtp: event=tls-failed session=%s peer=%s error=\"%s\"", c->id, c->peer,
			 gnutls_strerror(rc));
		smtp_session_tls_done(c->session, false);
		return;
	}
	c->tls_active = true;
	char *desc = gnutls_session_get_desc(c->tls);
	log_info("smtp: event=tls session=%s peer=%s cipher=%s", c->id, c->peer,
		 desc != NULL ? desc : "?");
	gnutls_free(desc);
	smtp_session_tls_done(c->session, true);
}

static gboolean
conn_kick_cb(gpointer data)
{
	struct smtp_conn *c = data;
	g_source_unref(c->kick);
	c->kick = NULL;
	conn_pump(c);
	return G_SOURCE_REMOVE;
}

/* Reads and feeds while the session wants input.  Returns false when the
 * connection was closed. */
static bool
conn_read(struct smtp_conn *c)
{
	guint8 buf[SMTP_READ_CHUNK];

	for (int i = 0; i < SMTP_READS_PER_WAKEUP; i++) {
		ssize_t n;
		if (!smtp_session_wants_input(c->session) ||
		    conn_out_pending(c) >= SMTP_SERVER_OUTPUT_MAX)
			return true;
		if (c->tls_active) {
			n = gnutls_record_recv(c->tls, buf, sizeof(buf));
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				return true;
			if (n < 0 && !gnutls_error_is_fatal((int)n))
				continue;
			if (n < 0) {
				log_info("smtp: event=read-failed session=%s peer=%s error=\"%s\"",
					 c->id, c->peer, gnutls_strerror((int)n));
				conn_close(c, "tls-error");
				return false;
			}
		} else {
			n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return true;
				conn_close(c, "read-error");
				return false;
			}
		}
		if (n == 0) {
			conn_close(c, smtp_session_in_data(c->session) ? "lost-in-data" : "eof");
			return false;
		}
		c->active_us = g_get_monotonic_time();
		smtp_session_feed(c->session, buf, (size_t)n);
		if (conn_flush(c) < 0) {
			conn_close(c, "write-error");
			return false;
		}
	}
	/* Budget used up: come back after the others had their turn. */
	if (c->kick == NULL) {
		c->kick = g_idle_source_new();
		g_source_set_callback(c->kick, conn_kick_cb, c, NULL);
		g_source_attach(c->kick, c->server->context);
	}
	return true;
}

/* Moves a connection on as far as it can go without waiting. */
static void
conn_pump(struct smtp_conn *c)
{
	if (c->dead)
		return;
	if (conn_flush(c) < 0) {
		conn_close(c, "write-error");
		return;
	}
	if (smtp_session_closed(c->session)) {
		if (conn_out_pending(c) == 0 && c->tls_again_len == 0) {
			conn_close(c, "closed");
			return;
		}
	} else if (c->starttls_requested && conn_out_pending(c) == 0) {
		char *error = NULL;
		c->starttls_requested = false;
		c->tls_creds = smtp_tls_ref(c->config->tls);
		if (smtp_tls_session_new(c->tls_creds, c->fd, &c->tls, &error) < 0) {
			log_warnx("smtp: event=tls-failed session=%s error=\"%s\"", c->id, error);
			g_free(error);
			smtp_session_tls_done(c->session, false);
			conn_close(c, "tls-error");
			return;
		}
		c->handshaking = true;
		conn_handshake(c);
		if (smtp_session_closed(c->session)) {
			conn_close(c, "tls-failed");
			return;
		}
	}
	/* GnuTLS may hold decrypted input that poll() cannot see. */
	if (c->tls_active && !c->handshaking && smtp_session_wants_input(c->session) &&
	    gnutls_record_check_pending(c->tls) > 0 && c->kick == NULL) {
		c->kick = g_idle_source_new();
		g_source_set_callback(c->kick, conn_kick_cb, c, NULL);
		g_source_attach(c->kick, c->server->context);
	}
	conn_set_events(c);
}

static void
conn_io(struct smtp_conn *c, GIOCondition cond)
{
	if (c->handshaking) {
		conn_handshake(c);
		if (smtp_session_closed(c->session)) {
			conn_close(c, "tls-failed");
			return;
		}
		conn_pump(c);
		return;
	}
	if ((cond & G_IO_OUT) != 0 && conn_flush(c) < 0) {
		conn_close(c, "write-error");
		return;
	}
	if ((cond & (G_IO_IN | G_IO_HUP | G_IO_ERR)) != 0) {
		if (smtp_session_wants_input(c->session)) {
			if (!conn_read(c))
				return;
		} else if ((cond & (G_IO_HUP | G_IO_ERR)) != 0) {
			conn_close(c, "hangup");
			return;
		}
	}
	conn_pump(c);
}

struct conn_source {
	GSource base;
	struct smtp_conn *conn;
};

static gboolean
conn_source_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
	struct conn_source *cs = (struct conn_source *)source;
	struct smtp_conn *c = cs->conn;
	conn_io(c, g_source_query_unix_fd(source, c->tag));
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = {NULL, NULL, conn_source_dispatch, NULL, NULL, NULL};

static void
conn_start(struct smtp_conn *c, const char *refusal)
{
	smtp_session_start(c->session, refusal);
	conn_pump(c);
}

static gboolean
conn_greet_cb(gpointer data)
{
	struct smtp_conn *c = data;
	g_source_unref(c->greet_timer);
	c->greet_timer = NULL;
	conn_start(c, NULL);
	return G_SOURCE_REMOVE;
}

static bool
config_network_allowed(const struct smtp_config *config, const struct sockaddr *sa, socklen_t len)
{
	if (config->networks->len == 0)
		return true;
	GSocketAddress *gsa = g_socket_address_new_from_native((gpointer)sa, len);
	bool ok = false;
	if (gsa != NULL && G_IS_INET_SOCKET_ADDRESS(gsa)) {
		GInetAddress *addr =
		    address_unmap(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(gsa)));
		for (guint i = 0; i < config->networks->len && !ok; i++) {
			GInetAddressMask *mask = g_ptr_array_index(config->networks, i);
			ok = g_inet_address_mask_get_family(mask) ==
				 g_inet_address_get_family(addr) &&
			     g_inet_address_mask_matches(mask, addr);
		}
		g_object_unref(addr);
	}
	if (gsa != NULL)
		g_object_unref(gsa);
	return ok;
}

static void
server_accept_one(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct smtp_conn *c = g_new0(struct smtp_conn, 1);
	struct smtp_config *config = srv->config;
	char *refusal = NULL;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->server = srv;
	c->config = config_ref(config);
	c->fd = fd;
	c->spool_fd = -1;
	c->id = g_strdup_printf("%" G_GINT64_MODIFIER "x", ++srv->next_id);
	c->peer = sockaddr_text(sa, len, false);
	c->out = g_byte_array_new();
	c->connected_us = c->active_us = g_get_monotonic_time();
	c->session = smtp_session_new(&config->session, &conn_host, c, c->id, c->peer);
	g_hash_table_add(srv->conns, c);
	srv->stats.connections++;

	guint per_ip = GPOINTER_TO_UINT(g_hash_table_lookup(srv->per_ip, c->peer));
	if (!config_network_allowed(config, sa, len))
		refusal = g_strdup_printf("554 5.7.1 %s Error: access denied for %s",
					  config->hostname, c->peer);
	else if (config->max_connections > 0 && srv->active >= config->max_connections)
		refusal =
		    g_strdup_printf("421 4.7.0 %s Error: too many connections", config->hostname);
	else if (config->max_connections_per_ip > 0 && per_ip >= config->max_connections_per_ip)
		refusal = g_strdup_printf("421 4.7.0 %s Error: too many connections from %s",
					  config->hostname, c->peer);
	if (refusal == NULL) {
		c->counted = true;
		srv->active++;
		g_hash_table_insert(srv->per_ip, g_strdup(c->peer), GUINT_TO_POINTER(per_ip + 1));
		log_info("smtp: event=connect session=%s peer=%s", c->id, c->peer);
	} else {
		srv->stats.refused_connections++;
	}

	c->source = g_source_new(&conn_source_funcs, sizeof(struct conn_source));
	((struct conn_source *)c->source)->conn = c;
	c->tag = g_source_add_unix_fd(c->source, fd, 0);
	g_source_attach(c->source, srv->context);

	if (refusal != NULL) {
		conn_start(c, refusal);
	} else if (config->greet_pause_ms > 0) {
		c->greet_timer = g_timeout_source_new(config->greet_pause_ms);
		g_source_set_callback(c->greet_timer, conn_greet_cb, c, NULL);
		g_source_attach(c->greet_timer, srv->context);
		conn_set_events(c);
	} else {
		/* Input already waiting at connect is pregreet too. */
		if (conn_read(c))
			conn_start(c, NULL);
	}
	g_free(refusal);
}

static gboolean
listener_cb(gint fd, GIOCondition cond, gpointer data)
{
	struct smtp_server *srv = data;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_warn("smtp: event=accept-failed action=pause");
				for (guint j = 0; j < srv->listeners->len; j++) {
					struct smtp_listener *l =
					    g_ptr_array_index(srv->listeners, j);
					if (l->fd == fd && l->source != NULL) {
						l->paused = true;
						g_source_destroy(l->source);
						g_source_unref(l->source);
						l->source = NULL;
						return G_SOURCE_REMOVE;
					}
				}
			}
			break;
		}
		server_accept_one(srv, cfd, (struct sockaddr *)&ss, len);
	}
	return G_SOURCE_CONTINUE;
}

static void
listener_watch(struct smtp_server *srv, struct smtp_listener *l)
{
	l->paused = false;
	l->source = g_unix_fd_source_new(l->fd, G_IO_IN);
	g_source_set_callback(l->source, G_SOURCE_FUNC(listener_cb), srv, NULL);
	g_source_attach(l->source, srv->context);
}

/* Once a second: timeouts, and listeners paused for lack of descriptors. */
static gboolean
server_tick(gpointer data)
{
	struct smtp_server *srv = data;
	int64_t now = g_get_monotonic_time();
	GList *conns = g_hash_table_get_keys(srv->conns);

	for (GList *it = conns; it != NULL; it = it->next) {
		struct smtp_conn *c = it->data;
		if (c->dead || c->job != NULL || c->greet_timer != NULL)
			continue;
		unsigned ms = smtp_session_in_data(c->session) ? c->config->data_timeout_ms
							       : c->config->command_timeout_ms;
		if (ms == 0 || now - c->active_us < (int64_t)ms * 1000)
			continue;
		if (smtp_session_closed(c->session) || c->handshaking) {
			conn_close(c, "timeout");
			continue;
		}
		log_info("smtp: event=timeout session=%s peer=%s in_data=%s", c->id, c->peer,
			 smtp_session_in_data(c->session) ? "yes" : "no");
		smtp_session_timeout(c->session);
		c->active_us = now;
		conn_pump(c);
	}
	g_list_free(conns);
	if (!srv->stopping)
		for (guint i = 0; i < srv->listeners->len; i++) {
			struct smtp_listener *l = g_ptr_array_index(srv->listeners, i);
			if (l->paused)
				listener_watch(srv, l);
		}
	return G_SOURCE_CONTINUE;
}

/* ---- the public side --------------------------------------------------- */

int
smtp_server_new(const struct smtp_server_settings *settings, struct smtp_server **server_r,
		char **error_r)
{
	struct smtp_server *srv = g_new0(struct smtp_server, 1);
	GPtrArray *addrs = g_ptr_array_new_with_free_func(g_object_unref);

	srv->listeners = g_ptr_array_new();
	srv->addresses = g_ptr_array_new_with_free_func(g_free);
	srv->conns = g_hash_table_new(g_direct_hash, g_direct_equal);
	srv->per_ip = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_queue_init(&srv->waiting);
	srv->spool_dir = g_strdup(settings->spool_dir != NULL ? settings->spool_dir : ".");
	srv->db_dir = g_strdup(settings->db_dir != NULL ? settings->db_dir : srv->spool_dir);
	srv->max_pending_commits = MAX(1, settings->max_pending_commits);
	srv->max_pending_size = settings->max_pending_size;

	if (config_new(settings, &srv->config, error_r) < 0)
		goto fail;
	if (settings->listen == NULL || settings->listen[0] == NULL) {
		*error_r = g_strdup("listen: no address");
		goto fail;
	}
	for (char **l = settings->listen; *l != NULL; l++)
		if (listen_parse(*l, addrs, error_r) < 0)
			goto fail;
	for (guint i = 0; i < addrs->len; i++)
		if (listener_open(srv, g_ptr_array_index(addrs, i), error_r) < 0)
			goto fail;
	for (guint i = 0; i < srv->listeners->len; i++) {
		struct smtp_listener *l = g_ptr_array_index(srv->listeners, i);
		g_ptr_array_add(srv->addresses, g_strdup(l->address));
	}
	g_ptr_array_add(srv->addresses, NULL);
	g_ptr_array_free(addrs, TRUE);
	*server_r = srv;
	return 0;
fail:
	g_ptr_array_free(addrs, TRUE);
	smtp_server_free(&srv);
	return -1;
}

int
smtp_server_check(const struct smtp_server_settings *settings, char **error_r)
{
	struct smtp_config *config = NULL;
	GPtrArray *addrs = g_ptr_array_new_with_free_func(g_object_unref);
	int ret = -1;

	if (config_new(settings, &config, error_r) < 0)
		goto out;
	if (settings->listen == NULL || settings->listen[0] == NULL) {
		*error_r = g_strdup("listen: no address");
		goto out;
	}
	for (char **l = settings->listen; *l != NULL; l++)
		if (listen_parse(*l, addrs, error_r) < 0)
			goto out;
	ret = 0;
out:
	config_unref(&config);
	g_ptr_array_free(addrs, TRUE);
	return ret;
}

const char *const *
smtp_server_addresses(struct smtp_server *srv)
{
	return (const char *const *)srv->addresses->pdata;
}

int
smtp_server_start(struct smtp_server *srv, struct intake *intake, GMainContext *context,
		  char **error_r)
{
	GError *gerr = NULL;

	srv->intake = intake;
	srv->context = context != NULL ? g_main_context_ref(context)
				       : g_main_context_ref(g_main_context_default());
	srv->pool = g_thread_pool_new(job_run, srv, (gint)srv->max_pending_commits, FALSE, &gerr);
	if (srv->pool == NULL) {
		*error_r = g_strdup_printf("smtp: %s", gerr->message);
		g_error_free(gerr);
		return -1;
	}
	srv->timer = g_timeout_source_new_seconds(1);
	g_source_set_callback(srv->timer, server_tick, srv, NULL);
	g_source_attach(srv->timer, srv->context);
	for (guint i = 0; i < srv->listeners->len; i++) {
		struct smtp_listener *l = g_ptr_array_index(srv->listeners, i);
		listener_watch(srv, l);
		log_info("smtp: event=listening address=%s tls=%s auth=%s", l->address,
			 srv->config->tls != NULL ? "yes" : "no",
			 srv->config->auth != NULL ? "yes" : "no");
	}
	srv->started = true;
	return 0;
}

int
smtp_server_reload(struct smtp_server *srv, const struct smtp_server_settings *settings,
		   char **error_r)
{
	struct smtp_config *config = NULL;
	if (config_new(settings, &config, error_r) < 0)
		return -1;
	bool same_listen = g_strv_length(config->listen) == g_strv_length(srv->config->listen);
	for (guint i = 0; same_listen && config->listen[i] != NULL; i++)
		same_listen = strcmp(config->listen[i], srv->config->listen[i]) == 0;
	if (!same_listen)
		log_warnx("smtp: event=reload-ignored key=listen reason=\"restart to change\"");
	if (g_strcmp0(settings->spool_dir, srv->spool_dir) != 0 && settings->spool_dir != NULL)
		log_warnx("smtp: event=reload-ignored key=spool_dir reason=\"restart to change\"");
	g_strfreev(config->listen);
	config->listen = g_strdupv(srv->config->listen);
	config_unref(&srv->config);
	srv->config = config;
	srv->max_pending_commits = MAX(1, settings->max_pending_commits);
	srv->max_pending_size = settings->max_pending_size;
	if (srv->pool != NULL)
		g_thread_pool_set_max_threads(srv->pool, (gint)srv->max_pending_commits, NULL);
	log_info("smtp: event=reloaded tls=%s auth=%s networks=%u",
		 config->tls != NULL ? "yes" : "no", config->auth != NULL ? "yes" : "no",
		 config->networks->len);
	server_dispatch(srv);
	return 0;
}

void
smtp_server_stop(struct smtp_server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	for (guint i = 0; i < srv->listeners->len; i++) {
		struct smtp_listener *l = g_ptr_array_index(srv->listeners, i);
		if (l->source != NULL) {
			g_source_destroy(l->source);
			g_source_unref(l->source);
			l->source = NULL;
		}
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
	GList *conns = g_hash_table_get_keys(srv->conns);
	unsigned in_data = 0;
	for (GList *it = conns; it != NULL; it = it->next) {
		struct smtp_conn *c = it->data;
		if (c->dead)
			continue;
		if (c->greet_timer != NULL) {
			g_source_destroy(c->greet_timer);
			g_source_unref(c->greet_timer);
			c->greet_timer = NULL;
		}
		if (smtp_session_in_data(c->session))
			in_data++;
		smtp_session_shutdown(c->session);
		conn_pump(c);
	}
	g_list_free(conns);
	log_info("smtp: event=stopping open=%u in_data=%u", g_hash_table_size(srv->conns), in_data);
}

unsigned
smtp_server_connections(struct smtp_server *srv)
{
	return g_hash_table_size(srv->conns);
}

void
smtp_server_get_stats(struct smtp_server *srv, struct smtp_server_stats *stats_r)
{
	*stats_r = srv->stats;
	stats_r->open = srv->active;
}

void
smtp_server_free(struct smtp_server **server)
{
	struct smtp_server *srv = *server;
	if (srv == NULL)
		return;
	*server = NULL;
	smtp_server_stop(srv);
	GList *conns = g_hash_table_get_keys(srv->conns);
	for (GList *it = conns; it != NULL; it = it->next)
		conn_close(it->data, "shutdown");
	g_list_free(conns);
	/* Jobs in flight come back through the context. */
	while (srv->pending_jobs > 0)
		g_main_context_iteration(srv->context, TRUE);
	if (srv->pool != NULL)
		g_thread_pool_free(srv->pool, FALSE, TRUE);
	if (srv->timer != NULL) {
		g_source_destroy(srv->timer);
		g_source_unref(srv->timer);
	}
	for (guint i = 0; i < srv->listeners->len; i++) {
		struct smtp_listener *l = g_ptr_array_index(srv->listeners, i);
		if (l->fd >= 0)
			close(l->fd);
		g_free(l->address);
		g_free(l);
	}
	g_ptr_array_free(srv->listeners, TRUE);
	g_ptr_array_free(srv->addresses, TRUE);
	g_hash_table_destroy(srv->conns);
	g_hash_table_destroy(srv->per_ip);
	config_unref(&srv->config);
	if (srv->context != NULL)
		g_main_context_unref(srv->context);
	g_free(srv->spool_dir);
	g_free(srv->db_dir);
	g_free(srv);
}
