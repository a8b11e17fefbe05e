/* service-web.c: the [web] settings -> src/web/ (the web view), as a daemon
 * service, and the daemon's own figures for /metrics.
 *
 * prepare binds the listening socket and reads the certificate, key and
 * users file (as root); start opens the database read-only and serves.  The
 * web view is on by default on 127.0.0.1:8080; when that default address is
 * taken (another snapkeepd, a test), the daemon runs without it and says so,
 * while an address set in the file must be free.  This service is first in
 * the daemon's list so that it is freed first: its /metrics reads the other
 * services' states. */
#include "config.h"

#include <string.h>

#include "daemon/service.h"
#include "poll/poll.h"
#include "smtp/server.h"
#include "util/log.h"
#include "web/web.h"

#define WEB_DEFAULT_LISTEN "127.0.0.1:8080"

struct web_service {
	struct web_server *server;
	struct intake *intake;
};

struct web_settings_holder {
	struct web_settings set;
	char **hosts;
	char *hosts_text;
};

static void
web_settings_from_config(const struct config *config, struct web_settings_holder *h)
{
	struct web_settings *s = &h->set;
	web_settings_default(s);
	s->enabled = config_get_bool(config, "web", "enabled");
	s->listen = config_get(config, "web", "listen");
	s->db_path = config_store_target(config);
	s->tls_cert_file = config_get(config, "web", "tls_cert_file");
	s->tls_key_file = config_get(config, "web", "tls_key_file");
	s->users_file = config_get(config, "web", "users_file");
	s->display_timezone = config_get(config, "web", "display_timezone");
	s->allow_insecure_remote = config_get_bool(config, "web", "allow_insecure_remote");
	h->hosts = config_get_list(config, "web", "allowed_hosts");
	h->hosts_text = g_strjoinv(",", h->hosts);
	s->allowed_hosts = h->hosts_text;
	s->max_connections = config_get_uint(config, "web", "max_connections");
	s->max_connections_per_ip = config_get_uint(config, "web", "max_connections_per_ip");
	s->connection_timeout = (config_get_ms(config, "web", "connection_timeout") + 999) / 1000;
	s->threads = config_get_uint(config, "web", "threads");
	s->max_request_size = config_get_size(config, "web", "max_request_size");
	s->max_url_length = config_get_uint(config, "web", "max_url_length");
	s->max_query_params = config_get_uint(config, "web", "max_query_params");
	s->max_post_size = config_get_size(config, "web", "max_post_size");
	s->page_size = config_get_uint(config, "web", "page_size");
	s->max_page_size = config_get_uint(config, "web", "max_page_size");
	s->recent_days = config_get_uint(config, "web", "recent_days");
	s->overdue_factor = config_get_uint(config, "web", "overdue_percent") / 100.0;
	s->overdue_default_hours =
	    config_get_ms(config, "web", "overdue_default_interval") / 3600000u;
	s->attention_days = config_get_uint(config, "web", "attention_days");
	s->max_api_points = config_get_uint(config, "web", "max_api_points");
	s->auth_cache_seconds = config_get_ms(config, "web", "auth_cache_time") / 1000;
	s->db_cache_size = config_get_size(config, "web", "db_cache_size");
	s->db_mmap_size = config_get_size(config, "web", "db_mmap_size");
	s->assets_dir = config_get(config, "web", "assets_dir");
}

static void
web_settings_clear(struct web_settings_holder *h)
{
	g_strfreev(h->hosts);
	g_free(h->hosts_text);
}

static int
web_service_check(const struct config *config, char **error_r)
{
	struct web_settings_holder h;
	int rc = 0;
	web_settings_from_config(config, &h);
	if (h.set.enabled)
		rc = web_settings_check(&h.set, error_r);
	web_settings_clear(&h);
	return rc;
}

static int
web_service_prepare(const struct config *config, void **state_r, char **error_r)
{
	struct web_settings_holder h;
	struct web_server *server = NULL;
	int rc = 0;

	*state_r = NULL;
	web_settings_from_config(config, &h);
	if (!h.set.enabled)
		goto out;
	if (web_settings_check(&h.set, error_r) < 0) {
		rc = -1;
		goto out;
	}
	if (web_server_new(&h.set, &server, error_r) < 0) {
		/* Settings are fine, so binding failed. */
		if (strcmp(h.set.listen, WEB_DEFAULT_LISTEN) == 0) {
			log_warnx("web: event=disabled reason=\"%s\" (set [web] listen or enabled "
				  "= false)",
				  *error_r);
			g_free(*error_r);
			*error_r = NULL;
		} else {
			rc = -1;
		}
		goto out;
	}
	struct web_service *ws = g_new0(struct web_service, 1);
	ws->server = server;
	*state_r = ws;
out:
	web_settings_clear(&h);
	return rc;
}

/* The mailbox pollers ([poll.NAME]), one series per poller. */
static void
web_daemon_poll_metrics(struct web_metrics *m)
{
	GPtrArray *states = poll_get_states();
	const char *taken_help = "Messages taken from a mailbox since start, by result";
	for (guint i = 0; i < states->len; i++) {
		const struct poll_state *p = g_ptr_array_index(states, i);
		web_metrics_counter(m, "snapkeep_poll_messages_total", taken_help, (double)p->taken,
				    "poller", p->name, "result", "stored", NULL);
		web_metrics_counter(m, "snapkeep_poll_messages_total", taken_help,
				    (double)p->duplicates, "poller", p->name, "result", "duplicate",
				    NULL);
		web_metrics_counter(m, "snapkeep_poll_messages_total", taken_help,
				    (double)p->failed, "poller", p->name, "result", "failed", NULL);
		web_metrics_counter(m, "snapkeep_poll_messages_total", taken_help,
				    (double)p->skipped, "poller", p->name, "result", "skipped",
				    NULL);
		web_metrics_counter(m, "snapkeep_poll_passes_total", "Poller passes since start",
				    (double)p->passes, "poller", p->name, NULL);
		web_metrics_counter(m, "snapkeep_poll_errors_total",
				    "Failed poller passes since start", (double)p->errors, "poller",
				    p->name, NULL);
		web_metrics_gauge(m, "snapkeep_poll_last_success_timestamp_seconds",
				  "End of the poller's last successful pass (Unix time)",
				  (double)p->last_success_us / 1e6, "poller", p->name, NULL);
		web_metrics_gauge(m, "snapkeep_poll_up", "1 when the poller's last pass succeeded",
				  p->last_error == NULL ? 1.0 : 0.0, "poller", p->name, NULL);
	}
	g_ptr_array_unref(states);
}

/* The daemon's figures, for each /metrics request (a web worker thread).
 * The counters are read without a lock: a scrape may see them a moment
 * apart, never torn (aligned 64-bit words). */
static void
web_daemon_metrics(struct web_metrics *m, void *context)
{
	struct web_service *ws = context;
	struct intake_stats st;

	if (ws->intake != NULL) {
		intake_get_stats(ws->intake, &st);
		web_metrics_counter(m, "snapkeep_intake_accepted_total",
				    "Messages made durable by the funnel since start",
				    (double)st.accepted, NULL);
		web_metrics_counter(m, "snapkeep_intake_duplicates_total",
				    "Arrivals whose bytes were already archived, since start",
				    (double)st.duplicates, NULL);
		web_metrics_counter(m, "snapkeep_intake_commits_total",
				    "Group commits of the funnel since start", (double)st.commits,
				    NULL);
		web_metrics_counter(m, "snapkeep_intake_commit_errors_total",
				    "Failed group commits since start", (double)st.commit_errors,
				    NULL);
		const char *help = "Parse results since start, by outcome";
		web_metrics_counter(m, "snapkeep_intake_parsed_total", help,
				    (double)st.parsed_stored, "outcome", "stored", NULL);
		web_metrics_counter(m, "snapkeep_intake_parsed_total", help,
				    (double)st.parsed_duplicate, "outcome", "duplicate", NULL);
		web_metrics_counter(m, "snapkeep_intake_parsed_total", help,
				    (double)st.parsed_not_snapshot, "outcome", "not-snapshot",
				    NULL);
		web_metrics_counter(m, "snapkeep_intake_parsed_total", help,
				    (double)st.parsed_failed, "outcome", "failed", NULL);
		web_metrics_counter(m, "snapkeep_intake_worker_restarts_total",
				    "Parse workers restarted (crash, limit, hang) since start",
				    (double)st.worker_restarts, NULL);
		web_metrics_gauge(m, "snapkeep_intake_parse_queue", "Messages waiting to be parsed",
				  (double)st.queued, NULL);
		web_metrics_histogram(m, "snapkeep_intake_accept_duration_seconds",
				      "From a message's arrival at the funnel to its durable commit "
				      "(what a sender waits for its acknowledgement)",
				      intake_latency_bounds, st.accept.buckets,
				      INTAKE_LATENCY_BUCKETS, st.accept.count,
				      st.accept.sum_seconds);
		web_metrics_histogram(m, "snapkeep_intake_parse_duration_seconds",
				      "From a message's durable commit to its parse result committed "
				      "(queue wait, worker, rows)",
				      intake_latency_bounds, st.parse.buckets, INTAKE_LATENCY_BUCKETS,
				      st.parse.count, st.parse.sum_seconds);
	}
	struct smtp_server *smtp = daemon_service_state("smtp");
	if (smtp != NULL) {
		struct smtp_server_stats ss;
		smtp_server_get_stats(smtp, &ss);
		web_metrics_gauge(m, "snapkeep_smtp_sessions_open", "Open SMTP sessions",
				  (double)ss.open, NULL);
		web_metrics_counter(m, "snapkeep_smtp_connections_total",
				    "SMTP connections accepted since start", (double)ss.connections,
				    NULL);
		web_metrics_counter(m, "snapkeep_smtp_refused_connections_total",
				    "SMTP connections refused (limits, networks) since start",
				    (double)ss.refused_connections, NULL);
		web_metrics_counter(m, "snapkeep_smtp_messages_total",
				    "Messages acknowledged with 250 since start",
				    (double)ss.messages, NULL);
		web_metrics_counter(m, "snapkeep_smtp_message_bytes_total",
				    "Bytes of messages acknowledged since start",
				    (double)ss.message_bytes, NULL);
		web_metrics_counter(m, "snapkeep_smtp_temp_failures_total",
				    "4xx answers to DATA (storage trouble) since start",
				    (double)ss.temp_failures, NULL);
	}
	web_daemon_poll_metrics(m);
}

static int
web_service_start(void *state, struct intake *intake, GMainContext *context, char **error_r)
{
	struct web_service *ws = state;
	(void)context;
	ws->intake = intake;
	struct web_hooks hooks = {web_daemon_metrics, ws};
	return web_server_run(ws->server, intake, &hooks, error_r);
}

static int
web_service_reload(void *state, const struct config *config, char **error_r)
{
	struct web_service *ws = state;
	struct web_settings_holder h;
	int rc = 0;

	web_settings_from_config(config, &h);
	if (ws == NULL) {
		if (h.set.enabled)
			log_warnx(
			    "web: event=reload-ignored reason=\"the web view starts on restart\"");
	} else if (!h.set.enabled) {
		log_warnx("web: event=reload-ignored reason=\"the web view stops on restart\"");
	} else {
		rc = web_server_reload(ws->server, &h.set, error_r);
	}
	web_settings_clear(&h);
	return rc;
}

static void
web_service_stop(void *state)
{
	(void)state; /* requests are short; free ends them */
}

static bool
web_service_busy(void *state)
{
	(void)state;
	return false;
}

static unsigned
web_service_stop_timeout(const struct config *config)
{
	(void)config;
	return 0;
}

static void
web_service_free(void **state)
{
	struct web_service *ws = *state;
	if (ws == NULL)
		return;
	web_server_free(&ws->server);
	g_free(ws);
	*state = NULL;
}

const struct daemon_service_ops daemon_service_web = {
    .name = "web",
    .check = web_service_check,
    .prepare = web_service_prepare,
    .start = web_service_start,
    .reload = web_service_reload,
    .stop = web_service_stop,
    .busy = web_service_busy,
    .stop_timeout_ms = web_service_stop_timeout,
    .free = web_service_free,
};
