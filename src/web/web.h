/* web.h: the web view served by snapkeepd (libmicrohttpd): the fleet, each
 * device's history, snapshots made readable, what needs attention, the
 * intake log; JSON under /api/, CSV exports, /metrics, /healthz.
 *
 * The web side only reads: it opens the database read-only (one SQLite
 * connection per worker thread) and changes state in one way only, the
 * reprocess action, which goes through the intake funnel.
 *
 * Security posture: every request comes from the network.  Listens on
 * 127.0.0.1:8080 by default; a non-loopback address needs TLS and
 * authentication, or allow_insecure_remote (logged as a warning).  The Host
 * header must name this server (DNS rebinding); every string from a device
 * or a mail is escaped (attributes too); a Content-Security-Policy forbids
 * inline script; static assets come from a fixed in-memory table (no
 * file-system path is ever derived from a URL); connections have a timeout,
 * a per-IP and a total limit; the URL, the query and POST bodies are
 * bounded; state changes are POSTs with a CSRF token and, with
 * authentication on, a logged-in user. */
#ifndef SK_WEB_H
#define SK_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct intake;
struct web_server;
struct web_metrics;

/* [web] settings; every one has a default (web_settings_default).  Strings
 * are borrowed during web_server_start / web_server_reload (copied). */
struct web_settings {
	bool enabled;		   /* enabled; default true */
	const char *listen;	   /* ADDR:PORT ([v6]:PORT); default 127.0.0.1:8080; port 0: any */
	const char *db_path;	   /* the database (opened read-only); required */
	const char *tls_cert_file; /* PEM; HTTPS when both are set */
	const char *tls_key_file;
	const char *users_file;		 /* "name:crypt(3) hash" lines; Basic auth when set */
	const char *display_timezone;	 /* IANA name ("Europe/Berlin"), "UTC", or NULL/"": local */
	bool allow_insecure_remote;	 /* non-loopback without TLS+auth; default false */
	const char *allowed_hosts;	 /* extra Host names (comma/space separated); "*": any */
	const char *assets_dir;		 /* NULL: embedded templates/CSS/JS; else read from here */
	unsigned max_connections;	 /* total; default 64 */
	unsigned max_connections_per_ip; /* default 16 */
	unsigned connection_timeout;	 /* idle seconds; default 30 */
	unsigned threads;		 /* worker threads (and DB connections); default 4 */
	size_t
	    max_request_size;  /* request line + headers (per-connection memory); default 32 KiB */
	size_t max_url_length; /* default 2048 */
	unsigned max_query_params; /* default 32 */
	size_t max_post_size;	   /* form body; default 4096 */
	unsigned page_size;	   /* rows per page by default; default 100 */
	unsigned max_page_size;	   /* per_page upper bound; default 1000 */
	unsigned recent_days;	   /* window of "recent" pages/day and errors; default 30 */
	double overdue_factor;	   /* overdue when age > factor x sending interval; default 2 */
	unsigned
	    overdue_default_hours;   /* sending interval assumed with one snapshot; default 168 */
	unsigned attention_days;     /* attention page: new devices and events; default 7 */
	unsigned max_api_points;     /* rows in one counters/supplies answer; default 100000 */
	unsigned auth_cache_seconds; /* verified Basic credentials kept; default 300 */
	size_t db_cache_size;	     /* SQLite page cache per connection; default 32 MiB */
	size_t db_mmap_size;	     /* SQLite memory map per connection; default 1 GiB */
};

void web_settings_default(struct web_settings *settings);

/* ---- metrics: the daemon reports its own counters ------------------------
 * The hook runs for each /metrics request, in a web worker thread; it adds
 * samples with the functions below, which group samples per family and
 * write HELP/TYPE once, so the output stays valid Prometheus text.  Label
 * arguments are NULL-terminated name, value pairs (values are escaped). */
typedef void web_metrics_hook(struct web_metrics *metrics, void *context);

void web_metrics_counter(struct web_metrics *metrics, const char *name, const char *help,
			 double value, ...) __attribute__((sentinel));
void web_metrics_gauge(struct web_metrics *metrics, const char *name, const char *help,
		       double value, ...) __attribute__((sentinel));
/* bounds[i] are the upper bounds (le) in increasing order, counts[i] the
 * number of observations <= bounds[i] (cumulative, as Prometheus wants);
 * count and sum over all observations (+Inf bucket = count). */
void web_metrics_histogram(struct web_metrics *metrics, const char *name, const char *help,
			   const double *bounds, const uint64_t *counts, size_t n, uint64_t count,
			   double sum);

struct web_hooks {
	web_metrics_hook *metrics; /* NULL: no daemon metrics */
	void *context;
};

/* Checks the settings as web_server_new would (users file, certificate,
 * time zone, assets, the remote-listen rule) without binding.  0 or -1. */
int web_settings_check(const struct web_settings *settings, char **error_r);

/* In two steps, for a daemon that drops privileges in between:
 * web_server_new checks the settings, reads the certificate, key, users
 * file and assets, and binds the listening socket (as root, for a port
 * below 1024); web_server_run opens the database (read-only; it must exist
 * by then) and starts serving.  web_server_start does both. */
int web_server_new(const struct web_settings *settings, struct web_server **server_r,
		   char **error_r);
int web_server_run(struct web_server *server, struct intake *intake, const struct web_hooks *hooks,
		   char **error_r);

/* Starts the server: checks the settings (a non-loopback listen without
 * TLS and users refuses to start unless allow_insecure_remote), binds,
 * loads users, certificate and assets, and starts the worker threads.
 * intake may be NULL (no reprocess action).  hooks may be NULL.
 * 0 with *server_r (free with web_server_free), or -1 with *error_r. */
int web_server_start(const struct web_settings *settings, struct intake *intake,
		     const struct web_hooks *hooks, struct web_server **server_r, char **error_r);

/* Applies new settings (SIGHUP): users file, time zone, allowed hosts,
 * assets and limits are swapped in for new requests; a new certificate,
 * listen address or connection limit restarts the listener (connections in
 * progress finish on the old one).  On error the old settings stay. */
int web_server_reload(struct web_server *server, const struct web_settings *settings,
		      char **error_r);

/* The bound port (useful with port 0). */
unsigned web_server_port(const struct web_server *server);

/* Stops listening, finishes requests in progress, frees.  Accepts NULL. */
void web_server_free(struct web_server **server);

#endif
