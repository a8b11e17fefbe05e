/* server.c: the HTTP server (libmicrohttpd 0.9.75) and the life of a request.
 *
 *   accept --(connection limits: total, per IP; idle timeout)--> request line
 *   URI callback: keep the raw request target (before libmicrohttpd decodes
 *     it: an encoded "/" stays inside its path segment), refuse it when it is
 *     longer than max_url_length
 *   headers (bounded by max_request_size) --> access handler:
 *     1. Host must be one of our names or an address literal   421
 *        (DNS rebinding: another site's page sends its own name)
 *     2. path split on "/", then each segment decoded; "." / ".." / NUL  400
 *     3. query: at most max_query_params, UTF-8, form-decoded  400
 *     4. method GET, HEAD or POST (POST bodies <= max_post_size)  405 / 413
 *     5. Basic authentication when a users file is set (not /healthz)  401
 *     6. the route table -> handler; no match 404, wrong method 405
 *   every answer carries CSP (no inline script), nosniff, frame and referrer
 *   policies, Cache-Control: no-store (static assets excepted).
 *
 * Threads: libmicrohttpd's thread pool (threads); a handler runs in one of
 * them and borrows one read-only DB connection from the pool.  Reload swaps
 * the refcounted web_config under a mutex; a changed certificate or limit
 * restarts libmicrohttpd on the same listening socket (quiesce, start the
 * new daemon on the socket, stop the old one), so the port never closes.
 *
 * Security posture: see web.h.  Requests are logged at debug level, errors
 * (5xx), refused hosts and failed logins at info/warning, never a password. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

#define WEB_SECRET_LEN 32
#define WEB_LISTEN_BACKLOG 128
#define WEB_LATENCY_BUCKETS 12

static const double latency_bounds[WEB_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

struct web_server {
	GMutex lock; /* config, mhd */
	struct web_config *config;
	struct MHD_Daemon *mhd;
	int listen_fd;
	unsigned port;
	struct intake *intake;
	struct web_hooks hooks;
	struct web_pool *pool;
	struct web_fleet_cache *fleet;
	guint8 secret[WEB_SECRET_LEN];

	GMutex stats_lock;
	uint64_t by_class[6]; /* 1xx .. 5xx (index 1..5) */
	uint64_t latency[WEB_LATENCY_BUCKETS];
	uint64_t latency_count;
	double latency_sum;
	uint64_t auth_failures, host_refusals;
};

/* ---- routes ---- */

struct route {
	const char *method;
	const char *pattern; /* segments; "*" is one non-empty segment */
	web_handler *fn;
};

static void web_static(struct web_request *req, struct web_response *resp);

static const struct route routes[] = {
    {"GET", "", web_page_fleet},
    {"GET", "devices/*", web_page_device},
    {"GET", "devices/*/counters.csv", web_csv_counters},
    {"GET", "snapshots/*", web_page_snapshot},
    {"GET", "snapshots/*/raw", web_raw_snapshot},
    {"GET", "attention", web_page_attention},
    {"GET", "intake", web_page_intake},
    {"POST", "intake/reprocess", web_post_reprocess},
    {"GET", "messages/*/raw", web_raw_message},
    {"GET", "export/meter-reads.csv", web_csv_meter_reads},
    {"GET", "api", web_api_index},
    {"GET", "api/devices", web_api_devices},
    {"GET", "api/devices/*", web_api_device},
    {"GET", "api/devices/*/counters", web_api_counters},
    {"GET", "api/devices/*/supplies", web_api_supplies},
    {"GET", "api/devices/*/events", web_api_events},
    {"GET", "api/devices/*/snapshots", web_api_snapshots},
    {"GET", "api/snapshots/*", web_api_snapshot},
    {"GET", "api/snapshots/*/xml", web_api_snapshot_xml},
    {"GET", "api/meter-reads", web_api_meter_reads},
    {"GET", "metrics", web_metrics_page},
    {"GET", "healthz", web_healthz},
    {"GET", "static/*", web_static},
    {"GET", "favicon.ico", web_static},
};

static bool
route_match(const struct route *r, struct web_request *req)
{
	char **pat = g_strsplit(r->pattern, "/", -1);
	unsigned n = r->pattern[0] == '\0' ? 0 : g_strv_length(pat);
	bool ok = n == req->nseg;
	for (unsigned i = 0; ok && i < n; i++)
		ok = strcmp(pat[i], "*") == 0 ? req->seg[i][0] != '\0'
					      : strcmp(pat[i], req->seg[i]) == 0;
	g_strfreev(pat);
	return ok;
}

static void
web_static(struct web_request *req, struct web_response *resp)
{
	const char *type = NULL;
	GBytes *b;

	if (web_params_check(req, resp, (const char *const[]){"v", NULL}) < 0)
		return;
	b = web_assets_static(req->config->assets, req->nseg == 1 ? "favicon.svg" : req->seg[1],
			      &type);
	if (b == NULL) {
		web_respond_error(req, resp, 404, "no such file");
		return;
	}
	web_respond_bytes(resp, 200, type, b);
	resp->cacheable = true;
}

/* ---- accessors for the handlers ---- */

struct intake *
web_server_intake(struct web_server *server)
{
	return server->intake;
}

const guint8 *
web_server_secret(struct web_server *server, size_t *len_r)
{
	*len_r = sizeof(server->secret);
	return server->secret;
}

struct web_fleet_cache *
web_server_fleet_cache(struct web_server *server)
{
	return server->fleet;
}

struct web_pool *
web_server_pool(struct web_server *server)
{
	return server->pool;
}

void
web_server_run_hook(struct web_server *server, struct web_metrics *m)
{
	if (server->hooks.metrics != NULL)
		server->hooks.metrics(m, server->hooks.context);
}

void
web_server_metrics(struct web_server *s, struct web_metrics *m)
{
	static const char *const classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
	uint64_t by_class[6], lat[WEB_LATENCY_BUCKETS], count, auth, host;
	double sum;

	g_mutex_lock(&s->stats_lock);
	memcpy(by_class, s->by_class, sizeof(by_class));
	memcpy(lat, s->latency, sizeof(lat));
	count = s->latency_count;
	sum = s->latency_sum;
	auth = s->auth_failures;
	host = s->host_refusals;
	g_mutex_unlock(&s->stats_lock);

	for (int i = 1; i <= 5; i++)
		web_metrics_counter(m, "snapkeep_web_requests_total",
				    "HTTP requests answered by the web view, by status class",
				    (double)by_class[i], "code", classes[i], NULL);
	web_metrics_histogram(m, "snapkeep_web_request_duration_seconds",
			      "Time from request to answer queued (server side)", latency_bounds,
			      lat, WEB_LATENCY_BUCKETS, count, sum);
	web_metrics_counter(m, "snapkeep_web_auth_failures_total",
			    "Requests refused for missing or wrong credentials", (double)auth,
			    NULL);
	web_metrics_counter(m, "snapkeep_web_host_refusals_total",
			    "Requests refused because the Host header is not ours", (double)host,
			    NULL);
}

static void
stats_record(struct web_server *s, unsigned status, int64_t elapsed_us)
{
	double secs = (double)elapsed_us / 1e6;
	g_mutex_lock(&s->stats_lock);
	if (status >= 100 && status < 600)
		s->by_class[status / 100]++;
	for (int i = 0; i < WEB_LATENCY_BUCKETS; i++)
		if (secs <= latency_bounds[i])
			s->latency[i]++;
	s->latency_count++;
	s->latency_sum += secs;
	g_mutex_unlock(&s->stats_lock);
}

/* ---- request life cycle ---- */

static struct web_config *
current_config(struct web_server *s)
{
	g_mutex_lock(&s->lock);
	struct web_config *c = web_config_ref(s->config);
	g_mutex_unlock(&s->lock);
	return c;
}

static void *
uri_callback(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct web_server *s = cls;
	struct web_request *req = g_new0(struct web_request, 1);
	req->server = s;
	req->conn = conn;
	req->config = current_config(s);
	req->started_us = sk_time_now_us();
	req->now = req->started_us / 1000000;
	req->kind = WEB_KIND_HTML;
	if (uri == NULL || strlen(uri) > req->config->s.max_url_length)
		req->uri_too_long = true;
	else
		req->raw_uri = g_strdup(uri);
	req->query = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return req;
}

static void
request_free(struct web_request *req)
{
	if (req == NULL)
		return;
	if (req->store != NULL)
		web_pool_put(web_server_pool(req->server), req->store);
	web_config_unref(&req->config);
	g_free(req->raw_uri);
	g_strfreev(req->seg);
	g_hash_table_destroy(req->query);
	if (req->body != NULL)
		g_string_free(req->body, TRUE);
	g_free(req->user);
	g_free(req);
}

static void
completed_callback(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	request_free(*con_cls);
	*con_cls = NULL;
}

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char *msg = g_strdup_vprintf(fmt, ap);
	g_strstrip(msg);
	log_debug("web: event=mhd message=\"%s\"", msg);
	g_free(msg);
}

/* Host header: a name of ours, with or without a port. */
static bool
host_allowed(struct web_config *c, const char *host)
{
	if (c->any_host)
		return true;
	if (host == NULL || *host == '\0' || strlen(host) > 255)
		return false;
	char *h = g_ascii_strdown(host, -1);
	char *end;
	if (h[0] == '[') {
		end = strchr(h, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
			g_free(h);
			return false;
		}
		memmove(h, h + 1, (size_t)(end - h - 1));
		h[end - h - 1] = '\0';
	} else if ((end = strchr(h, ':')) != NULL) {
		*end = '\0';
	}
	size_t n = strlen(h);
	if (n > 1 && h[n - 1] == '.')
		h[n - 1] = '\0';
	/* An address literal cannot be rebound: a page from another name
	 * never sends it, so any of ours is fine (http://10.0.0.5:8080/). */
	bool ok = g_hostname_is_ip_address(h);
	for (char **a = c->allowed_hosts; *a != NULL && !ok; a++)
		ok = strcmp(*a, h) == 0;
	g_free(h);
	return ok;
}

static bool
all_utf8(GHashTable *q)
{
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, q);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (!g_utf8_validate(k, -1, NULL) || !g_utf8_validate(v, -1, NULL))
			return false;
	return true;
}

/* Splits the raw target into decoded segments and query; 0 or -1 (400 sent). */
static int
parse_target(struct web_request *req, struct web_response *resp)
{
	char *target = g_strdup(req->raw_uri);
	char *query = strchr(target, '?');
	char **parts = NULL;
	GPtrArray *segs = g_ptr_array_new_with_free_func(g_free);
	int ret = -1;

	if (query != NULL)
		*query++ = '\0';
	char *hash = strchr(target, '#');
	if (hash != NULL)
		*hash = '\0';
	if (target[0] != '/') {
		web_respond_error(req, resp, 400, "the request target must be a path");
		goto out;
	}
	if (strcmp(target, "/") != 0) {
		parts = g_strsplit(target + 1, "/", -1);
		for (char **p = parts; *p != NULL; p++) {
			char *d = g_uri_unescape_segment(*p, NULL, NULL);
			if (d == NULL || !g_utf8_validate(d, -1, NULL)) {
				g_free(d);
				web_respond_error(req, resp, 400,
						  "bad escape or encoding in the path");
				goto out;
			}
			if (strcmp(d, ".") == 0 || strcmp(d, "..") == 0) {
				g_free(d);
				web_respond_error(req, resp, 400,
						  "'.' and '..' are not allowed in paths");
				goto out;
			}
			g_ptr_array_add(segs, d);
		}
	}
	req->nseg = segs->len;
	g_ptr_array_add(segs, NULL);
	req->seg = (char **)g_ptr_array_free(segs, FALSE);
	segs = NULL;
	if (req->nseg > 0 && strcmp(req->seg[0], "api") == 0)
		req->kind = WEB_KIND_JSON;
	else if (req->nseg > 0 &&
		 (strcmp(req->seg[0], "metrics") == 0 || strcmp(req->seg[0], "healthz") == 0 ||
		  strcmp(req->seg[0], "static") == 0 || strcmp(req->seg[0], "favicon.ico") == 0 ||
		  g_str_has_suffix(req->seg[req->nseg - 1], ".csv") ||
		  (req->nseg == 3 && strcmp(req->seg[2], "raw") == 0)))
		req->kind = WEB_KIND_TEXT;

	if (query != NULL && *query != '\0') {
		unsigned n = 1;
		for (const char *c = query; *c != '\0'; c++)
			n += *c == '&';
		if (n > req->config->s.max_query_params) {
			web_respond_error(req, resp, 400, "more than %u query parameters",
					  req->config->s.max_query_params);
			goto out;
		}
		GError *gerr = NULL;
		GHashTable *q = g_uri_parse_params(query, -1, "&", G_URI_PARAMS_WWW_FORM, &gerr);
		if (q == NULL) {
			web_respond_error(req, resp, 400, "malformed query: %s", gerr->message);
			g_error_free(gerr);
			goto out;
		}
		if (!all_utf8(q)) {
			g_hash_table_destroy(q);
			web_respond_error(req, resp, 400, "the query is not UTF-8");
			goto out;
		}
		g_hash_table_destroy(req->query);
		req->query = q;
	}
	ret = 0;
out:
	if (segs != NULL)
		g_ptr_array_unref(segs);
	g_strfreev(parts);
	g_free(target);
	return ret;
}

static int
authenticate(struct web_request *req, struct web_response *resp)
{
	struct web_config *c = req->config;
	char *pass = NULL;
	char *user;

	if (c->users == NULL)
		return 0;
	user = MHD_basic_auth_get_username_password(req->conn, &pass);
	if (user != NULL && pass != NULL && web_users_check(c->users, user, pass)) {
		req->user = g_strdup(user);
		MHD_free(user);
		memset(pass, 0, strlen(pass));
		MHD_free(pass);
		return 0;
	}
	if (user != NULL) {
		char *clean = web_text_clean(user);
		log_warnx("web: event=auth-failed user=\"%s\"", clean);
		g_free(clean);
		g_mutex_lock(&req->server->stats_lock);
		req->server->auth_failures++;
		g_mutex_unlock(&req->server->stats_lock);
	}
	if (user != NULL)
		MHD_free(user);
	if (pass != NULL) {
		memset(pass, 0, strlen(pass));
		MHD_free(pass);
	}
	web_respond_error(req, resp, 401, "log in to see this page");
	web_header_add(resp, "WWW-Authenticate", "Basic realm=\"snapkeep\", charset=\"UTF-8\"");
	return -1;
}

static void
dispatch(struct web_request *req, struct web_response *resp)
{
	struct web_config *c = req->config;
	const char *host = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Host");

	if (req->uri_too_long) {
		web_respond_error(req, resp, 414, "the URL is longer than %zu bytes",
				  c->s.max_url_length);
		return;
	}
	if (!host_allowed(c, host)) {
		char *clean = web_text_clean(host != NULL ? host : "");
		log_info("web: event=host-refused host=\"%s\"", clean);
		g_mutex_lock(&req->server->stats_lock);
		req->server->host_refusals++;
		g_mutex_unlock(&req->server->stats_lock);
		web_respond_error(
		    req, resp, 421,
		    "Host '%s' is not a name of this server (see [web] allowed_hosts)", clean);
		g_free(clean);
		return;
	}
	if (parse_target(req, resp) < 0)
		return;
	if (req->body_too_large) {
		web_respond_error(req, resp, 413, "the request body is larger than %zu bytes",
				  c->s.max_post_size);
		return;
	}
	bool healthz = req->nseg == 1 && strcmp(req->seg[0], "healthz") == 0;
	if (!healthz && authenticate(req, resp) < 0)
		return;

	const char *method = req->head ? "GET" : req->method;
	GString *allow = NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
		if (!route_match(&routes[i], req))
			continue;
		if (strcmp(routes[i].method, method) == 0) {
			if (allow != NULL)
				g_string_free(allow, TRUE);
			routes[i].fn(req, resp);
			return;
		}
		if (allow == NULL)
			allow = g_string_new(NULL);
		g_string_append_printf(allow, "%s%s", allow->len ? ", " : "", routes[i].method);
		if (strcmp(routes[i].method, "GET") == 0)
			g_string_append(allow, ", HEAD");
	}
	if (allow != NULL) {
		web_respond_error(req, resp, 405, "method %s is not allowed here", req->method);
		web_header_add(resp, "Allow", allow->str);
		g_string_free(allow, TRUE);
		return;
	}
	web_respond_error(req, resp, 404, "there is nothing at this address");
}

static void
free_bytes(void *cls)
{
	g_bytes_unref(cls);
}

/* CPU time of the calling thread, microseconds. */
static int64_t
thread_cpu_us(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static enum MHD_Result
queue(struct web_request *req, struct web_response *resp, int64_t elapsed_us, int64_t cpu_us)
{
	struct MHD_Response *r;
	gsize len = 0;
	GBytes *body = resp->body != NULL ? g_bytes_ref(resp->body) : g_bytes_new(NULL, 0);
	const void *data = g_bytes_get_data(body, &len);
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)data, free_bytes,
								   body);
	if (r == NULL) {
		g_bytes_unref(body);
		return MHD_NO;
	}
	if (resp->content_type != NULL)
		MHD_add_response_header(r, "Content-Type", resp->content_type);
	if (resp->sandbox)
		MHD_add_response_header(r, "Content-Security-Policy",
					"default-src 'none'; sandbox");
	else
		MHD_add_response_header(r, "Content-Security-Policy",
					"default-src 'none'; style-src 'self'; img-src 'self'; "
					"script-src 'self'; form-action 'self'; "
					"frame-ancestors 'none'; base-uri 'none'");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "same-origin");
	MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	if (resp->cacheable)
		MHD_add_response_header(r, "Cache-Control", "private, max-age=3600");
	else
		MHD_add_response_header(r, "Cache-Control", "no-store");
	if (req->config->cert_pem != NULL)
		MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
	for (guint i = 0; i + 1 < resp->headers->len; i += 2)
		MHD_add_response_header(r, resp->headers->pdata[i], resp->headers->pdata[i + 1]);
	/* The server's own time for this answer (bench/web reads it). */
	char timing[96];
	g_snprintf(timing, sizeof(timing), "app;dur=%.2f, cpu;dur=%.2f",
		   (double)elapsed_us / 1000.0, (double)cpu_us / 1000.0);
	MHD_add_response_header(r, "Server-Timing", timing);
	ret = MHD_queue_response(req->conn, resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	       const char *version, const char *upload_data, size_t *upload_data_size,
	       void **con_cls)
{
	struct web_server *s = cls;
	struct web_request *req = *con_cls;
	struct web_response resp;
	enum MHD_Result ret;
	(void)url;
	(void)version;

	if (req == NULL) /* not through the URI callback: cannot happen */
		return MHD_NO;
	if (req->method == NULL) {
		req->method = method;
		req->head = strcmp(method, "HEAD") == 0;
		req->post = strcmp(method, "POST") == 0;
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		guint64 n = 0;
		if (cl != NULL && (!g_ascii_string_to_unsigned(cl, 10, 0, G_MAXUINT64, &n, NULL) ||
				   n > req->config->s.max_post_size))
			req->body_too_large = true;
		if (!req->body_too_large)
			return MHD_YES;
		/* Too large: answer now, without reading the body. */
	} else if (*upload_data_size > 0) {
		if (req->body == NULL)
			req->body = g_string_new(NULL);
		if (req->body->len + *upload_data_size > req->config->s.max_post_size) {
			/* A body without Content-Length grew past the limit.
			 * libmicrohttpd cannot answer in the middle of a body:
			 * close the connection rather than read the rest. */
			log_info("web: event=body-too-large action=close");
			return MHD_NO;
		}
		g_string_append_len(req->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}

	web_response_init(&resp);
	int64_t cpu0 = thread_cpu_us();
	dispatch(req, &resp);
	if (resp.status == 0)
		web_respond_error(req, &resp, 500, "no answer");
	if (req->store != NULL) {
		web_pool_put(web_server_pool(s), req->store);
		req->store = NULL;
		req->stmts = NULL;
	}
	int64_t elapsed = sk_time_now_us() - req->started_us;
	ret = queue(req, &resp, elapsed, thread_cpu_us() - cpu0);
	stats_record(s, resp.status, elapsed);
	if (resp.status >= 500)
		log_info("web: event=request method=%s status=%u us=%" G_GINT64_FORMAT, req->method,
			 resp.status, elapsed);
	else
		log_debug("web: event=request method=%s status=%u us=%" G_GINT64_FORMAT,
			  req->method, resp.status, elapsed);
	web_response_clear(&resp);
	return ret;
}

/* ---- listening ---- */

static int
listen_socket(struct web_config *c, int *fd_r, unsigned *port_r, char **error_r)
{
	struct addrinfo hints, *res = NULL;
	char port[16];
	int fd = -1, err;
	int saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	g_snprintf(port, sizeof(port), "%u", c->listen_port);
	err = getaddrinfo(c->listen_host, port, &hints, &res);
	if (err != 0) {
		*error_r = g_strdup_printf("web: listen %s: %s", c->listen, gai_strerror(err));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int one = 1;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, WEB_LISTEN_BACKLOG) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		*error_r =
		    g_strdup_printf("web: cannot listen on %s: %s", c->listen, g_strerror(saved));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	*port_r = c->listen_port;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			*port_r = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			*port_r = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	*fd_r = fd;
	return 0;
}

static struct MHD_Daemon *
mhd_start(struct web_server *s, struct web_config *c, int fd, char **error_r)
{
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls[4];
	int nt = 0;
	struct MHD_Daemon *d;

	if (c->cert_pem != NULL) {
		flags |= MHD_USE_TLS;
		tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, c->cert_pem};
		tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, c->key_pem};
		tls[nt++] =
		    (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
					    (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
	}
	tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	d = MHD_start_daemon(
	    flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)c->s.threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)c->s.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)c->s.max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)c->s.connection_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)c->s.max_request_size,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_callback, s, MHD_OPTION_NOTIFY_COMPLETED,
	    completed_callback, s, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (d == NULL)
		*error_r =
		    g_strdup_printf("web: cannot start the HTTP server on %s%s", c->listen,
				    c->cert_pem != NULL ? " (check the certificate and key)" : "");
	return d;
}

static void
log_listen(struct web_server *s, struct web_config *c)
{
	log_info("web: event=listen address=%s port=%u tls=%s auth=%s users=%u", c->listen_host,
		 s->port, c->cert_pem != NULL ? "yes" : "no", c->users != NULL ? "yes" : "no",
		 web_users_count(c->users));
	if (!c->loopback && (c->cert_pem == NULL || c->users == NULL))
		log_warnx("web: event=insecure-remote listen=%s tls=%s auth=%s"
			  " (allow_insecure_remote is set: anyone who can reach this address"
			  " sees the fleet)",
			  c->listen, c->cert_pem != NULL ? "yes" : "no",
			  c->users != NULL ? "yes" : "no");
	if (c->any_host)
		log_warnx(
		    "web: event=any-host (allowed_hosts has '*': no DNS rebinding protection)");
}

int
web_server_new(const struct web_settings *settings, struct web_server **server_r, char **error_r)
{
	struct web_server *s = g_new0(struct web_server, 1);
	g_mutex_init(&s->lock);
	g_mutex_init(&s->stats_lock);
	s->listen_fd = -1;

	if (web_config_new(settings, &s->config, error_r) < 0)
		goto fail;
	if (getrandom(s->secret, sizeof(s->secret), 0) != (ssize_t)sizeof(s->secret)) {
		*error_r = g_strdup_printf("web: getrandom: %s", g_strerror(errno));
		goto fail;
	}
	web_pool_new(s->config->db_path, s->config->s.threads, s->config->s.db_cache_size,
		     s->config->s.db_mmap_size, &s->pool);
	s->fleet = web_fleet_cache_new();
	if (listen_socket(s->config, &s->listen_fd, &s->port, error_r) < 0)
		goto fail;
	*server_r = s;
	return 0;
fail:
	web_server_free(&s);
	return -1;
}

int
web_server_run(struct web_server *s, struct intake *intake, const struct web_hooks *hooks,
	       char **error_r)
{
	s->intake = intake;
	if (hooks != NULL)
		s->hooks = *hooks;
	/* Fail early and clearly when the database cannot be read. */
	char *dberr = NULL;
	struct store *probe = web_pool_get(s->pool, &dberr);
	if (probe == NULL) {
		*error_r = g_strdup_printf("web: %s", dberr);
		g_free(dberr);
		return -1;
	}
	web_pool_put(s->pool, probe);
	g_mutex_lock(&s->lock);
	s->mhd = mhd_start(s, s->config, s->listen_fd, error_r);
	g_mutex_unlock(&s->lock);
	if (s->mhd == NULL)
		return -1;
	log_listen(s, s->config);
	return 0;
}

int
web_server_start(const struct web_settings *settings, struct intake *intake,
		 const struct web_hooks *hooks, struct web_server **server_r, char **error_r)
{
	struct web_server *s = NULL;
	if (web_server_new(settings, &s, error_r) < 0)
		return -1;
	if (web_server_run(s, intake, hooks, error_r) < 0) {
		web_server_free(&s);
		return -1;
	}
	*server_r = s;
	return 0;
}

int
web_settings_check(const struct web_settings *settings, char **error_r)
{
	struct web_config *c = NULL;
	if (web_config_new(settings, &c, error_r) < 0)
		return -1;
	web_config_unref(&c);
	return 0;
}

unsigned
web_server_port(const struct web_server *server)
{
	return server->port;
}

static bool
str_eq(const char *a, const char *b)
{
	return g_strcmp0(a, b) == 0;
}

int
web_server_reload(struct web_server *s, const struct web_settings *settings, char **error_r)
{
	struct web_config *nc = NULL, *old;
	if (web_config_new(settings, &nc, error_r) < 0)
		return -1;
	if (!str_eq(nc->db_path, s->config->db_path))
		log_warnx("web: event=reload-ignored setting=db (the database changes on restart)");

	g_mutex_lock(&s->lock);
	old = s->config;
	bool relisten = !str_eq(nc->listen, old->listen);
	bool restart = relisten || !str_eq(nc->cert_pem, old->cert_pem) ||
		       !str_eq(nc->key_pem, old->key_pem) || nc->s.threads != old->s.threads ||
		       nc->s.max_connections != old->s.max_connections ||
		       nc->s.max_connections_per_ip != old->s.max_connections_per_ip ||
		       nc->s.connection_timeout != old->s.connection_timeout ||
		       nc->s.max_request_size != old->s.max_request_size;
	if (restart && s->mhd == NULL) {
		/* Not serving yet (between new and run): only a new socket. */
		int fd = -1;
		unsigned port = s->port;
		if (relisten) {
			if (listen_socket(nc, &fd, &port, error_r) < 0) {
				g_mutex_unlock(&s->lock);
				web_config_unref(&nc);
				return -1;
			}
			close(s->listen_fd);
			s->listen_fd = fd;
			s->port = port;
		}
	} else if (restart) {
		int fd = s->listen_fd;
		unsigned port = s->port;
		if (relisten && listen_socket(nc, &fd, &port, error_r) < 0) {
			g_mutex_unlock(&s->lock);
			web_config_unref(&nc);
			return -1;
		}
		/* The old daemon stops accepting; the socket stays open. */
		MHD_socket quiesced = MHD_quiesce_daemon(s->mhd);
		struct MHD_Daemon *nd = mhd_start(s, nc, fd, error_r);
		if (nd == NULL) {
			/* Keep serving the old settings on the old socket. */
			char *again = NULL;
			struct MHD_Daemon *back = mhd_start(s, old, quiesced, &again);
			MHD_stop_daemon(s->mhd);
			s->mhd = back;
			if (back == NULL)
				log_errorx("web: event=restart-failed error=\"%s\"", again);
			g_free(again);
			if (relisten)
				close(fd);
			g_mutex_unlock(&s->lock);
			web_config_unref(&nc);
			return -1;
		}
		MHD_stop_daemon(s->mhd);
		if (relisten && quiesced != MHD_INVALID_SOCKET)
			close(quiesced);
		s->mhd = nd;
		s->listen_fd = fd;
		s->port = port;
	}
	s->config = nc;
	g_mutex_unlock(&s->lock);
	log_info("web: event=reload restart=%s", restart ? "yes" : "no");
	if (restart)
		log_listen(s, nc);
	web_config_unref(&old);
	return 0;
}

void
web_server_free(struct web_server **serverp)
{
	struct web_server *s = *serverp;
	if (s == NULL)
		return;
	*serverp = NULL;
	if (s->mhd != NULL) {
		MHD_stop_daemon(s->mhd); /* closes the listening socket */
		s->listen_fd = -1;
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	web_fleet_cache_free(&s->fleet);
	web_pool_free(&s->pool);
	web_config_unref(&s->config);
	g_mutex_clear(&s->lock);
	g_mutex_clear(&s->stats_lock);
	memset(s->secret, 0, sizeof(s->secret));
	g_free(s);
}
