/* internal.h: what the files of src/web/ share; not for other modules.
 *
 *   server.c   libmicrohttpd set-up, the request life cycle, limits, Host
 *              check, authentication, routing, security headers, reload
 *   config.c   settings copied into an immutable, refcounted web_config
 *   auth.c     users file (crypt(3) hashes), verified-credential cache, CSRF
 *   assets.c   templates, CSS and JavaScript (GResource or assets_dir)
 *   request.c  query parameters, response helpers, the DB connection pool
 *   html.c     HTML building: the escaping formatter, times, numbers, bars
 *   svg.c      server-drawn SVG charts
 *   data.c     queries shared by pages and API: the fleet table and its cache,
 *              supply estimates, counter series, meter reads
 *   pages.c    the HTML pages; api.c the JSON; export.c CSV and raw
 *   snapxml.c  Device.xml of a stored snapshot, readable and pretty-printed
 *   metrics.c  /metrics (Prometheus text) and /healthz
 *
 * Threads: libmicrohttpd's worker threads call the handlers; a request holds
 * a reference to the web_config it started with and one DB connection from
 * the pool at most. */
#ifndef SK_WEB_INTERNAL_H
#define SK_WEB_INTERNAL_H

#include <glib.h>
#include <microhttpd.h>
#include "store/db.h"
#include <stdbool.h>
#include <stdint.h>

#include "devxml/snapshot.h"
#include "store/store.h"
#include "web/web.h"

/* ---- config.c ---- */

struct web_users;
struct web_assets;

struct web_config {
	gint refs;
	struct web_settings s; /* strings point into the members below */
	char *listen, *db_path, *tls_cert_file, *tls_key_file, *users_file, *display_timezone,
	    *allowed_hosts_text, *assets_dir;
	GTimeZone *tz;
	char **allowed_hosts; /* lower case host names, no port */
	bool any_host;
	struct web_users *users; /* NULL: authentication off */
	struct web_assets *assets;
	char *cert_pem, *key_pem; /* NULL: plain HTTP */
	char *listen_host;	  /* host part of listen, without brackets */
	unsigned listen_port;
	bool loopback; /* listen address is loopback */
};

int web_config_new(const struct web_settings *settings, struct web_config **config_r,
		   char **error_r);
struct web_config *web_config_ref(struct web_config *config);
void web_config_unref(struct web_config **config);

/* ---- auth.c ---- */

/* Reads "name:hash" lines ('#' comments, blank lines); at most
 * WEB_USERS_MAX users.  0 or -1 with *error_r. */
int web_users_load(const char *path, unsigned cache_seconds, struct web_users **users_r,
		   char **error_r);
void web_users_free(struct web_users **users);
/* true when name/password match (crypt(3); successful checks are cached). */
bool web_users_check(struct web_users *users, const char *name, const char *password);
unsigned web_users_count(const struct web_users *users);

/* CSRF tokens: "EXPIRY.HMAC(secret, user|EXPIRY)"; valid for a day. */
char *web_csrf_token(const guint8 *secret, size_t secret_len, const char *user);
bool web_csrf_check(const guint8 *secret, size_t secret_len, const char *user, const char *token);

/* ---- assets.c ---- */

enum web_asset_kind { WEB_ASSET_STATIC, WEB_ASSET_TEMPLATE };

int web_assets_load(const char *dir, struct web_assets **assets_r, char **error_r);
void web_assets_free(struct web_assets **assets);
/* A static file by its exact public name ("style.css"); NULL if none. */
GBytes *web_assets_static(struct web_assets *assets, const char *name, const char **type_r);
/* A template by name ("layout.html"). */
const char *web_assets_template(struct web_assets *assets, const char *name);
/* Fills a template: {{name}} is replaced by the value HTML-escaped, {{{name}}}
 * by the value as is (already HTML); unknown names become "". vars are
 * NULL-terminated name, value pairs. */
void web_template_fill(GString *out, const char *tmpl, const char *const *vars);

/* ---- request.c ---- */

enum web_kind { WEB_KIND_HTML, WEB_KIND_JSON, WEB_KIND_TEXT };

struct web_request {
	struct web_server *server;
	struct web_config *config;
	struct MHD_Connection *conn;
	char *raw_uri;
	bool uri_too_long;
	const char *method;
	bool head, post;
	char **seg; /* decoded path segments, NULL-terminated */
	unsigned nseg;
	GHashTable *query; /* decoded name -> value */
	GString *body;
	bool body_too_large;
	char *user;	     /* authenticated user, NULL when auth is off */
	struct store *store; /* from the pool, lazily */
	GHashTable *stmts;   /* its statement cache */
	int64_t started_us;
	enum web_kind kind; /* how errors are answered */
	int64_t now;	    /* request time, Unix seconds */
	bool tls;
};

struct web_response {
	unsigned status;
	char *content_type;
	GBytes *body;
	GPtrArray *headers; /* name, value, name, value, ... (g_strdup'd) */
	bool sandbox;	    /* CSP sandbox: raw device content */
	bool cacheable;	    /* static asset */
};

void web_response_init(struct web_response *resp);
void web_response_clear(struct web_response *resp);
/* Takes body (may be NULL). */
void web_respond(struct web_response *resp, unsigned status, const char *content_type,
		 GString *body);
void web_respond_bytes(struct web_response *resp, unsigned status, const char *content_type,
		       GBytes *body);
void web_header_add(struct web_response *resp, const char *name, const char *value);
/* Answers an error in the request's kind (JSON {"error":...}, an HTML page,
 * or text), with the message shown escaped. */
void web_respond_error(struct web_request *req, struct web_response *resp, unsigned status,
		       const char *fmt, ...) G_GNUC_PRINTF(4, 5);

/* The request's read-only DB connection (from the pool); NULL after
 * answering 503 when the database cannot be opened. */
struct store *web_request_store(struct web_request *req, struct web_response *resp);

/* Parameters.  An empty value counts as absent.  The parsers answer 400
 * and return -1 on a malformed value. */
int web_params_check(struct web_request *req, struct web_response *resp, const char *const *known);
const char *web_param(struct web_request *req, const char *name);
int web_param_uint(struct web_request *req, struct web_response *resp, const char *name,
		   unsigned min, unsigned max, unsigned def, unsigned *value_r);
int web_param_enum(struct web_request *req, struct web_response *resp, const char *name,
		   const char *const *allowed, int def, int *index_r);
/* YYYY-MM-DD (start of that day in UTC; with end_of_day the next midnight)
 * or an ISO 8601 time.  *unix_r untouched when absent. */
int web_param_time(struct web_request *req, struct web_response *resp, const char *name,
		   bool end_of_day, int64_t *unix_r);
/* "?a=1&b=2" from the current query with name set to value (NULL removes;
 * pairs NULL-terminated), URL-escaped, not HTML-escaped. */
char *web_query_with(struct web_request *req, ...) G_GNUC_NULL_TERMINATED;
/* A statement on the request's connection, compiled once per connection
 * and cached; NULL after answering 500.  Give it back with web_stmt_done
 * (reset, never finalize). */
struct db_stmt *web_prepare(struct web_request *req, struct web_response *resp, const char *sql);
void web_stmt_done(struct db_stmt *st);
/* A DB error: log it, answer 500. */
void web_respond_db_error(struct web_request *req, struct web_response *resp, struct db *db,
			  const char *what);

/* Per-serial path: "/devices/" + escaped serial (g_free). */
char *web_device_path(const char *serial);

struct web_pool;
int web_pool_new(const char *db_path, unsigned max, size_t cache_size, size_t mmap_size,
		 struct web_pool **pool_r);
struct store *web_pool_get(struct web_pool *pool, char **error_r);
void web_pool_put(struct web_pool *pool, struct store *store);
GHashTable *web_pool_stmts(struct web_pool *pool, struct store *store);
void web_pool_free(struct web_pool **pool);

/* ---- server.c: what handlers need from the server ---- */

struct intake *web_server_intake(struct web_server *server);
const guint8 *web_server_secret(struct web_server *server, size_t *len_r);
struct web_fleet_cache *web_server_fleet_cache(struct web_server *server);
void web_server_metrics(struct web_server *server, struct web_metrics *m);
void web_server_run_hook(struct web_server *server, struct web_metrics *m);
struct web_pool *web_server_pool(struct web_server *server);

/* ---- html.c ---- */

/* Appends fmt with: %s a string HTML-escaped (NULL: nothing), %R a string
 * as is (trusted markup only), %U a string URL-escaped as a path segment
 * or query value and then HTML-escaped, %d int, %u unsigned, %L int64,
 * %N int64 grouped by thousands ("116 606"), %F double with one decimal,
 * %%.  Nothing else is accepted (a bad directive is a programming error). */
void html(GString *out, const char *fmt, ...);
void html_escape(GString *out, const char *text);
/* Makes text valid UTF-8 without control characters (g_free). */
char *web_text_clean(const char *text);
void html_time(GString *out, struct web_request *req, const char *utc);
void html_time_unix(GString *out, struct web_request *req, int64_t unix_time);
/* "3 h", "2 d" */
void html_age(GString *out, int64_t seconds);
/* Inline SVG bar, CSS class by level and state. */
void html_level_bar(GString *out, int64_t level, const char *state, const char *color);
/* class="lvl-ok|lvl-low|lvl-out" */
const char *html_level_class(int64_t level, const char *state, int64_t low_threshold);
void html_pager(GString *out, struct web_request *req, const char *param, unsigned page,
		unsigned pages, uint64_t total, const char *what);
void html_sort_th(GString *out, struct web_request *req, const char *label, const char *key,
		  const char *cur, bool desc, bool numeric);
/* Renders the layout template around body (taken) and answers 200. */
void html_page(struct web_request *req, struct web_response *resp, const char *title,
	       const char *nav, GString *body);
/* Local display time of a Unix time, "%Y-%m-%d %H:%M" (g_free). */
char *web_format_local(struct web_request *req, int64_t unix_time, const char *fmt);
void html_supply_swatch(GString *out, const char *color);
/* A readable supply name: "Black toner" ("Black" when brief), the
 * device's description, or the type or key in words ("Maintenance kit"). */
char *web_supply_name(const char *key, const char *color, const char *description, const char *type,
		      bool brief);

/* ---- svg.c ---- */

struct svg_series {
	char *name;	/* legend text */
	char *css;	/* CSS class of the line or bars: c-black, c-cyan, s0..s7 */
	GArray *x;	/* int64_t Unix times */
	GArray *y;	/* double */
	GArray *breaks; /* guint indexes where a new segment starts (replacements) */
};

struct svg_marker {
	int64_t x;
	char *css;
	char *title;
};

enum svg_kind { SVG_LINE, SVG_BARS };

struct svg_chart {
	enum svg_kind kind;
	const char *id;
	const char *title;
	const char *unit; /* "pages", "%" */
	int width, height;
	int64_t x_min, x_max;
	double y_min, y_max; /* NAN: from the data (y_min 0 for bars) */
	int64_t bar_width_s; /* SVG_BARS: seconds each bar spans */
	bool stacked;	     /* SVG_BARS: series stack */
	bool area;	     /* SVG_LINE: shade below each line */
	bool integer;	     /* whole numbers: no fractional ticks */
	GPtrArray *series;   /* struct svg_series * */
	GPtrArray *markers;  /* struct svg_marker * */
	struct web_request *req;
	const char *x_fmt; /* hover time format; default "%Y-%m-%d" */
};

struct svg_series *svg_series_new(const char *name, const char *css);
void svg_series_add(struct svg_series *s, int64_t x, double y);
void svg_chart_init(struct svg_chart *c, enum svg_kind kind, const char *id, const char *title,
		    const char *unit, struct web_request *req);
void svg_chart_add_marker(struct svg_chart *c, int64_t x, const char *css, const char *title);
void svg_chart_clear(struct svg_chart *c);
void svg_chart_render(GString *out, const struct svg_chart *c);
/* "1.2 k", "35", "1.5 M" */
void svg_format_value(GString *out, double v);

/* ---- data.c ---- */

enum web_fleet_sort {
	FLEET_SORT_SERIAL,
	FLEET_SORT_MODEL,
	FLEET_SORT_HOSTNAME,
	FLEET_SORT_LAST,
	FLEET_SORT_TOTAL,
	FLEET_SORT_PPD,
	FLEET_SORT_SUPPLY,
	FLEET_SORT_ERRORS,
};
extern const char *const web_fleet_sort_names[];

enum web_fleet_state {
	FLEET_STATE_ANY,
	FLEET_STATE_OK,
	FLEET_STATE_OVERDUE,
	FLEET_STATE_LOW,
	FLEET_STATE_OUT,
	FLEET_STATE_ERRORS,
	FLEET_STATE_ATTENTION,
};
extern const char *const web_fleet_state_names[];

struct web_fleet_row {
	gint refs; /* shared by successive fleet tables */
	int64_t device_id;
	char *serial, *model, *product_number, *hostname, *ip_address, *firmware;
	char *last_snapshot_utc;
	int64_t last_unix, first_unix, snapshot_count, last_snapshot_id;
	int64_t total;	      /* SNAPSHOT_ABSENT when not reported */
	double pages_per_day; /* NAN: unknown */
	int64_t interval_s;   /* estimated sending interval; 0 unknown */
	char *low_supply, *low_supply_color, *low_supply_state, *low_supply_type;
	int64_t low_supply_level; /* SNAPSHOT_ABSENT: no supply */
	int64_t low_supply_threshold;
	int64_t recent_errors;
	char *last_error_code, *last_error_text;
	char *haystack; /* casefolded text for the filter */
};

struct web_fleet {
	gint refs;
	GPtrArray *rows;   /* struct web_fleet_row * */
	GPtrArray *models; /* char *, sorted, distinct */
	int64_t built_us;  /* how long the build took */
};

struct web_fleet_cache;
struct web_fleet_cache *web_fleet_cache_new(void);
void web_fleet_cache_free(struct web_fleet_cache **cache);
/* The fleet table as of now (rebuilt when a snapshot arrived). */
int web_fleet_get(struct web_request *req, struct web_fleet **fleet_r, char **error_r);
void web_fleet_unref(struct web_fleet **fleet);

bool web_fleet_row_overdue(struct web_request *req, const struct web_fleet_row *r);
/* Level class: 0 ok, 1 low, 2 out. */
int web_fleet_row_supply_flag(const struct web_fleet_row *r);

struct web_fleet_query {
	const char *text, *model;
	enum web_fleet_state state;
	enum web_fleet_sort sort;
	bool desc;
	unsigned page, per_page;
};
/* Parses q, model, state, sort, order, page, per_page (400 on error). */
int web_fleet_query_parse(struct web_request *req, struct web_response *resp,
			  struct web_fleet_query *q);
/* The matching rows (borrowed from fleet), sorted; *total_r before paging. */
GPtrArray *web_fleet_select(struct web_request *req, struct web_fleet *fleet,
			    const struct web_fleet_query *q, unsigned *total_r);

/* One supply unit's current state with its estimate. */
struct web_supply {
	int64_t supply_id;
	char *key, *label, *color, *type, *description, *product_number, *serial, *state,
	    *installed_date, *reported_utc, *brand;
	int64_t level, low_threshold, pages;
	double days_left; /* NAN: unknown (no decline) */
	double per_day;	  /* level points per day, negative when falling */
};
void web_supply_free(gpointer p);
/* Current supplies of device_id with days-to-empty from the recent slope. */
int web_supplies_current(struct web_request *req, struct db *db, int64_t device_id, GPtrArray *out,
			 char **error_r);

/* Time buckets for counter series. */
enum web_interval {
	WEB_INTERVAL_SNAPSHOT,
	WEB_INTERVAL_DAY,
	WEB_INTERVAL_WEEK,
	WEB_INTERVAL_MONTH
};
extern const char *const web_interval_names[];
/* Start of the bucket holding t in zone tz (days, weeks from Monday,
 * months); WEB_INTERVAL_SNAPSHOT: t itself. */
int64_t web_bucket_start(GTimeZone *tz, enum web_interval interval, int64_t t);
int64_t web_bucket_next(GTimeZone *tz, enum web_interval interval, int64_t start);

/* Looks up a device by serial: 1 found, 0 not, -1 error. */
int web_device_lookup(struct db *db, const char *serial, int64_t *device_id_r, char **error_r);
/* Pages per day over the recent window for one device (NAN unknown). */
double web_device_ppd(struct db *db, int64_t device_id, unsigned recent_days);
/* Column helpers: NULL / SNAPSHOT_ABSENT for SQL NULL. */
char *web_col_text(struct db_stmt *st, int i);
int64_t web_col_int(struct db_stmt *st, int i);
int64_t web_utc_unix(const char *utc);
int64_t web_days_from_civil(int64_t y, unsigned m, unsigned d);

/* ---- pages.c, api.c, export.c, metrics.c ---- */

typedef void web_handler(struct web_request *req, struct web_response *resp);

web_handler web_page_fleet, web_page_device, web_page_snapshot, web_page_attention, web_page_intake,
    web_post_reprocess;
web_handler web_api_devices, web_api_device, web_api_counters, web_api_supplies, web_api_events,
    web_api_snapshots, web_api_snapshot, web_api_snapshot_xml, web_api_meter_reads, web_api_index;
web_handler web_csv_counters, web_csv_meter_reads, web_raw_snapshot, web_raw_message;
web_handler web_metrics_page, web_healthz;

/* ---- snapxml.c ---- */

/* The raw message of a stored snapshot's message, its Device.xml, the
 * parsed snapshot (either may be NULL), or -1 with *error_r. */
struct web_snapdoc {
	GBytes *raw;
	GBytes *xml;
	struct snapshot *snap;
	char *parse_error;
};
int web_snapdoc_load(struct store *store, int64_t message_id, bool parse, struct web_snapdoc *doc,
		     char **error_r);
void web_snapdoc_clear(struct web_snapdoc *doc);
/* Indented XML (UTF-8, g_free), or NULL with *error_r. */
char *web_xml_pretty(GBytes *xml, size_t *len_r, char **error_r);
/* The XML as indented, highlighted, escaped HTML (for a <pre>). */
int web_xml_html(GString *out, GBytes *xml, char **error_r);

/* ---- meter reads (data.c), shared by CSV and JSON ---- */

struct web_meter_read {
	char *serial, *model, *hostname, *counter;
	int64_t start_snapshot_id, end_snapshot_id;
	char *start_utc, *end_utc;
	int64_t start_value, end_value; /* SNAPSHOT_ABSENT: no reading */
};
void web_meter_read_free(gpointer p);
int web_meter_reads(struct db *db, int64_t start, int64_t end, const char *counter,
		    const char *serial, GPtrArray *out, char **error_r);

/* The fleet's current supplies with their latest report (the rows of
 * supply_status, read from its tables: sc, s and l as in the view), for the
 * statements over every device.  The report is a LEFT JOIN on
 * supply_levels' key, and the statement keeps only rows that have one with
 * a condition inside COALESCE(..., FALSE), which PostgreSQL does not turn
 * back into an inner join: joined inner, as in the view, it estimated one
 * row for the whole fleet (the two key columns taken as independent) and
 * planned nested loops that read every report of each unit and scanned
 * devices once per supply (71 000 buffers for the attention page's
 * supplies on 150 devices, 2 400 this way).  The same rows on both engines
 * (supply_current always names a stored report). */
#define WEB_SQL_SUPPLY_CURRENT \
	" FROM supply_current sc JOIN supplies s ON s.id = sc.supply_id" \
	" LEFT JOIN supply_levels l" \
	"  ON l.snapshot_id = sc.snapshot_id AND l.supply_id = sc.supply_id"

/* A UTC time column shifted by a bound modifier ("-14 days"), as UTC text
 * again, in each engine's SQL: queries that need it are written once as a
 * macro of SHIFT and instantiated for both (indexed by db_engine). */
/* One text for both engines, where the SQL is the same. */
#define WEB_SQL_BOTH(sql) { [DB_ENGINE_SQLITE] = sql, [DB_ENGINE_POSTGRESQL] = sql }
#define WEB_SQL_SHIFT_SQLITE(ts, mod) "strftime('%Y-%m-%dT%H:%M:%SZ', " ts ", " mod ")"
#define WEB_SQL_SHIFT_PG(ts, mod) \
	"to_char(CAST(" ts " AS timestamp) + CAST(" mod " AS interval), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#endif
