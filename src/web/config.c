/* config.c: [web] settings -> an immutable, refcounted web_config.
 *
 * Everything a request needs that can change on reload lives here: the
 * users, the display time zone, the allowed Host names, the assets, the
 * certificate.  A request takes a reference when it starts, so a reload
 * never changes the rules under a request in progress.  Reading the
 * certificate, key, users file and assets happens here, at start and on
 * reload, never in a request.  Limits: the certificate and key files are
 * read up to WEB_PEM_MAX bytes. */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "util/log.h"
#include "web/internal.h"

#define WEB_PEM_MAX (1024 * 1024)

void
web_settings_default(struct web_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->enabled = true;
	s->listen = "127.0.0.1:8080";
	s->max_connections = 64;
	s->max_connections_per_ip = 16;
	s->connection_timeout = 30;
	s->threads = 4;
	s->max_request_size = 32 * 1024;
	s->max_url_length = 2048;
	s->max_query_params = 32;
	s->max_post_size = 4096;
	s->page_size = 100;
	s->max_page_size = 1000;
	s->recent_days = 30;
	s->overdue_factor = 2.0;
	s->overdue_default_hours = 168;
	s->attention_days = 7;
	s->max_api_points = 100000;
	s->auth_cache_seconds = 300;
	s->db_cache_size = 32 * 1024 * 1024;
	s->db_mmap_size = (size_t)1024 * 1024 * 1024;
}

static char *
nonempty_dup(const char *s)
{
	return s != NULL && *s != '\0' ? g_strdup(s) : NULL;
}

static int
read_pem(const char *path, const char *what, char **pem_r, char **error_r)
{
	GError *gerr = NULL;
	gsize len = 0;
	char *data = NULL;

	if (!g_file_get_contents(path, &data, &len, &gerr)) {
		*error_r = g_strdup_printf("web: cannot read %s %s: %s", what, path, gerr->message);
		g_error_free(gerr);
		return -1;
	}
	if (len == 0 || len > WEB_PEM_MAX || memchr(data, '\0', len) != NULL) {
		*error_r = g_strdup_printf("web: %s %s is empty, too large or not PEM", what, path);
		g_free(data);
		return -1;
	}
	*pem_r = data;
	return 0;
}

/* Splits "host:port" / "[v6]:port" with GIO's parser. */
static int
parse_listen(struct web_config *c, char **error_r)
{
	GError *gerr = NULL;
	GSocketConnectable *addr = g_network_address_parse(c->listen, 0, &gerr);
	if (addr == NULL) {
		*error_r = g_strdup_printf("web: listen '%s': %s", c->listen, gerr->message);
		g_error_free(gerr);
		return -1;
	}
	const char *host = g_network_address_get_hostname(G_NETWORK_ADDRESS(addr));
	guint16 port = g_network_address_get_port(G_NETWORK_ADDRESS(addr));
	const char *colon = strrchr(c->listen, ':');
	if (colon == NULL || colon[1] == '\0' || (port == 0 && strcmp(colon + 1, "0") != 0)) {
		*error_r = g_strdup_printf("web: listen '%s' needs ADDR:PORT", c->listen);
		g_object_unref(addr);
		return -1;
	}
	c->listen_host = g_strdup(host != NULL && *host != '\0' ? host : "0.0.0.0");
	c->listen_port = port;
	g_object_unref(addr);

	GInetAddress *ia = g_inet_address_new_from_string(c->listen_host);
	if (ia != NULL) {
		c->loopback = g_inet_address_get_is_loopback(ia);
		g_object_unref(ia);
	} else {
		c->loopback = g_ascii_strcasecmp(c->listen_host, "localhost") == 0;
	}
	return 0;
}

static void
add_host(GPtrArray *hosts, const char *name)
{
	char *h = g_ascii_strdown(name, -1);
	size_t n = strlen(h);
	/* "[::1]" -> "::1"; a trailing dot of an FQDN is the same name. */
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		memmove(h, h + 1, n - 2);
		h[n - 2] = '\0';
	} else if (n > 1 && h[n - 1] == '.') {
		h[n - 1] = '\0';
	}
	for (guint i = 0; i < hosts->len; i++)
		if (strcmp(hosts->pdata[i], h) == 0) {
			g_free(h);
			return;
		}
	g_ptr_array_add(hosts, h);
}

static void
build_hosts(struct web_config *c)
{
	GPtrArray *hosts = g_ptr_array_new();
	add_host(hosts, "localhost");
	add_host(hosts, "127.0.0.1");
	add_host(hosts, "::1");
	if (strcmp(c->listen_host, "0.0.0.0") != 0 && strcmp(c->listen_host, "::") != 0)
		add_host(hosts, c->listen_host);
	add_host(hosts, g_get_host_name());
	if (c->allowed_hosts_text != NULL) {
		char **parts = g_strsplit_set(c->allowed_hosts_text, ", \t", -1);
		for (char **p = parts; *p != NULL; p++) {
			if (**p == '\0')
				continue;
			if (strcmp(*p, "*") == 0)
				c->any_host = true;
			else
				add_host(hosts, *p);
		}
		g_strfreev(parts);
	}
	g_ptr_array_add(hosts, NULL);
	c->allowed_hosts = (char **)g_ptr_array_free(hosts, FALSE);
}

int
web_config_new(const struct web_settings *settings, struct web_config **config_r, char **error_r)
{
	struct web_config *c = g_new0(struct web_config, 1);
	c->refs = 1;
	c->s = *settings;
	c->listen = g_strdup(settings->listen != NULL ? settings->listen : "127.0.0.1:8080");
	c->db_path = nonempty_dup(settings->db_path);
	c->tls_cert_file = nonempty_dup(settings->tls_cert_file);
	c->tls_key_file = nonempty_dup(settings->tls_key_file);
	c->users_file = nonempty_dup(settings->users_file);
	c->display_timezone = nonempty_dup(settings->display_timezone);
	c->allowed_hosts_text = nonempty_dup(settings->allowed_hosts);
	c->assets_dir = nonempty_dup(settings->assets_dir);
	c->s.listen = c->listen;
	c->s.db_path = c->db_path;
	c->s.tls_cert_file = c->tls_cert_file;
	c->s.tls_key_file = c->tls_key_file;
	c->s.users_file = c->users_file;
	c->s.display_timezone = c->display_timezone;
	c->s.allowed_hosts = c->allowed_hosts_text;
	c->s.assets_dir = c->assets_dir;

	/* Zero means "the default" for every limit. */
	struct web_settings def;
	web_settings_default(&def);
#define WEB_DEF(f)                                                                                 \
	if (c->s.f == 0)                                                                           \
	c->s.f = def.f
	WEB_DEF(max_connections);
	WEB_DEF(max_connections_per_ip);
	WEB_DEF(connection_timeout);
	WEB_DEF(threads);
	WEB_DEF(max_request_size);
	WEB_DEF(max_url_length);
	WEB_DEF(max_query_params);
	WEB_DEF(max_post_size);
	WEB_DEF(page_size);
	WEB_DEF(max_page_size);
	WEB_DEF(recent_days);
	WEB_DEF(overdue_default_hours);
	WEB_DEF(attention_days);
	WEB_DEF(max_api_points);
	WEB_DEF(db_cache_size);
#undef WEB_DEF
	if (!(c->s.overdue_factor > 0))
		c->s.overdue_factor = def.overdue_factor;
	if (c->s.page_size > c->s.max_page_size)
		c->s.page_size = c->s.max_page_size;
	if (c->s.max_request_size < 4096) {
		*error_r = g_strdup("web: max_request_size must be at least 4096");
		goto fail;
	}

	if (c->db_path == NULL) {
		*error_r = g_strdup("web: no database path");
		goto fail;
	}
	if (parse_listen(c, error_r) < 0)
		goto fail;
	build_hosts(c);

	if ((c->tls_cert_file == NULL) != (c->tls_key_file == NULL)) {
		*error_r = g_strdup("web: tls_cert_file and tls_key_file go together");
		goto fail;
	}
	if (c->tls_cert_file != NULL &&
	    (read_pem(c->tls_cert_file, "certificate", &c->cert_pem, error_r) < 0 ||
	     read_pem(c->tls_key_file, "key", &c->key_pem, error_r) < 0))
		goto fail;

	if (c->users_file != NULL &&
	    web_users_load(c->users_file, c->s.auth_cache_seconds, &c->users, error_r) < 0)
		goto fail;

	if (c->display_timezone == NULL) {
		c->tz = g_time_zone_new_local();
	} else {
		c->tz = g_time_zone_new_identifier(c->display_timezone);
		if (c->tz == NULL) {
			*error_r = g_strdup_printf("web: unknown display_timezone '%s'",
						   c->display_timezone);
			goto fail;
		}
	}

	if (web_assets_load(c->assets_dir, &c->assets, error_r) < 0)
		goto fail;

	if (!c->loopback && (c->cert_pem == NULL || c->users == NULL)) {
		if (!c->s.allow_insecure_remote) {
			*error_r = g_strdup_printf(
			    "web: refusing to listen on %s without TLS and authentication"
			    " (set tls_cert_file, tls_key_file and users_file, or"
			    " allow_insecure_remote = true)",
			    c->listen);
			goto fail;
		}
	}
	*config_r = c;
	return 0;
fail:
	web_config_unref(&c);
	return -1;
}

struct web_config *
web_config_ref(struct web_config *config)
{
	g_atomic_int_inc(&config->refs);
	return config;
}

void
web_config_unref(struct web_config **configp)
{
	struct web_config *c = *configp;
	if (c == NULL)
		return;
	*configp = NULL;
	if (!g_atomic_int_dec_and_test(&c->refs))
		return;
	g_free(c->listen);
	g_free(c->db_path);
	g_free(c->tls_cert_file);
	g_free(c->tls_key_file);
	g_free(c->users_file);
	g_free(c->display_timezone);
	g_free(c->allowed_hosts_text);
	g_free(c->assets_dir);
	if (c->tz != NULL)
		g_time_zone_unref(c->tz);
	g_strfreev(c->allowed_hosts);
	web_users_free(&c->users);
	web_assets_free(&c->assets);
	if (c->key_pem != NULL)
		memset(c->key_pem, 0, strlen(c->key_pem));
	g_free(c->cert_pem);
	g_free(c->key_pem);
	g_free(c->listen_host);
	g_free(c);
}
