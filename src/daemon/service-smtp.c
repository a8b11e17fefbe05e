/* service-smtp.c: the [smtp] settings -> smtp/server.c, as a daemon
 * service.  The settings' strings live only during each call: the server
 * copies what it keeps. */
#include "config.h"

#include <string.h>

#include "daemon/service.h"
#include "smtp/server.h"

struct smtp_settings_holder {
	struct smtp_server_settings set;
	char **listen, **recipients, **networks;
	char *db_dir;
};

static void
smtp_settings_from_config(const struct config *config, struct smtp_settings_holder *h)
{
	struct smtp_server_settings *s = &h->set;
	const char *hostname = config_get(config, "smtp", "hostname");

	smtp_server_settings_default(s);
	h->listen = config_get_list(config, "smtp", "listen");
	h->recipients = config_get_list(config, "smtp", "recipients");
	h->networks = config_get_list(config, "smtp", "allowed_networks");
	/* The free space of the SQLite file's file system (PostgreSQL's is
	 * the server's business: only the spool's is checked then). */
	h->db_dir = strcmp(config_get(config, "store", "backend"), "sqlite") == 0
			    ? g_path_get_dirname(config_get(config, "store", "db"))
			    : NULL;
	s->listen = h->listen;
	s->session.hostname = hostname[0] != '\0' ? hostname : NULL;
	s->session.recipients = h->recipients[0] != NULL ? h->recipients : NULL;
	s->session.max_message_size = config_get_size(config, "smtp", "max_message_size");
	s->session.max_recipients = config_get_uint(config, "smtp", "max_recipients");
	s->session.line_length_limit = config_get_uint(config, "smtp", "line_length_limit");
	s->session.max_errors = config_get_uint(config, "smtp", "max_errors");
	s->session.max_auth_failures = config_get_uint(config, "smtp", "max_auth_failures");
	s->session.require_tls = config_get_bool(config, "smtp", "require_tls");
	s->session.require_auth = config_get_bool(config, "smtp", "require_auth");
	s->allowed_networks = h->networks;
	s->max_connections = config_get_uint(config, "smtp", "max_connections");
	s->max_connections_per_ip = config_get_uint(config, "smtp", "max_connections_per_ip");
	s->command_timeout_ms = config_get_ms(config, "smtp", "command_timeout");
	s->data_timeout_ms = config_get_ms(config, "smtp", "data_timeout");
	s->greet_pause_ms = config_get_ms(config, "smtp", "greet_pause");
	s->shutdown_timeout_ms = config_get_ms(config, "smtp", "shutdown_timeout");
	s->tls_cert_file = config_get(config, "smtp", "tls_cert_file");
	s->tls_key_file = config_get(config, "smtp", "tls_key_file");
	s->tls_priority = config_get(config, "smtp", "tls_priority");
	s->auth_users_file = config_get(config, "smtp", "auth_users_file");
	/* The daemon runs in state_dir: spool files go there. */
	s->spool_dir = ".";
	s->db_dir = h->db_dir;
	s->min_free_space = config_get_size(config, "store", "min_free_space");
	s->max_pending_commits = config_get_uint(config, "smtp", "max_pending_commits");
	s->max_pending_size = config_get_size(config, "smtp", "max_pending_size");
}

static void
smtp_settings_clear(struct smtp_settings_holder *h)
{
	g_strfreev(h->listen);
	g_strfreev(h->recipients);
	g_strfreev(h->networks);
	g_free(h->db_dir);
}

static int
smtp_service_check(const struct config *config, char **error_r)
{
	struct smtp_settings_holder h;
	smtp_settings_from_config(config, &h);
	int rc = smtp_server_check(&h.set, error_r);
	smtp_settings_clear(&h);
	return rc;
}

static int
smtp_service_prepare(const struct config *config, void **state_r, char **error_r)
{
	struct smtp_settings_holder h;
	struct smtp_server *server = NULL;
	smtp_settings_from_config(config, &h);
	int rc = smtp_server_new(&h.set, &server, error_r);
	smtp_settings_clear(&h);
	*state_r = server;
	return rc;
}

static int
smtp_service_start(void *state, struct intake *intake, GMainContext *context, char **error_r)
{
	return smtp_server_start(state, intake, context, error_r);
}

static int
smtp_service_reload(void *state, const struct config *config, char **error_r)
{
	struct smtp_settings_holder h;
	smtp_settings_from_config(config, &h);
	int rc = smtp_server_reload(state, &h.set, error_r);
	smtp_settings_clear(&h);
	return rc;
}

static void
smtp_service_stop(void *state)
{
	smtp_server_stop(state);
}

static bool
smtp_service_busy(void *state)
{
	return smtp_server_connections(state) > 0;
}

static unsigned
smtp_service_stop_timeout(const struct config *config)
{
	return config_get_ms(config, "smtp", "shutdown_timeout");
}

static void
smtp_service_free(void **state)
{
	struct smtp_server *server = *state;
	smtp_server_free(&server);
	*state = NULL;
}

const struct daemon_service_ops daemon_service_smtp = {
    .name = "smtp",
    .check = smtp_service_check,
    .prepare = smtp_service_prepare,
    .start = smtp_service_start,
    .reload = smtp_service_reload,
    .stop = smtp_service_stop,
    .busy = smtp_service_busy,
    .stop_timeout_ms = smtp_service_stop_timeout,
    .free = smtp_service_free,
};
