/* pages.c: the fleet page (/), the attention page (/attention), the intake
 * log (/intake) and the reprocess action (POST /intake/reprocess).
 *
 * Everything shown from a device or a mail goes through html()'s %s
 * (escaped); links carry serials URL-escaped.  The reprocess action is the
 * web side's only state change: a POST with a CSRF token bound to the user
 * (and an Origin / Sec-Fetch-Site check when the browser sends them); it
 * queues the message on the intake funnel and redirects (303) back. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "intake/intake.h"
#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

#define ATTENTION_ROWS_MAX 300
#define INTAKE_PAGE_ROWS 100

/* ---- fleet ---- */

static void
fleet_tile(GString *out, struct web_request *req, const char *label, uint64_t n, const char *state,
	   const char *cls)
{
	char *q = web_query_with(req, "state", state, "page", NULL, NULL);
	html(out,
	     "<a class=\"tile %R\" href=\"%s\"><span class=\"n\">%N</span><span "
	     "class=\"l\">%s</span></a>",
	     n > 0 ? cls : "quiet", q, (int64_t)n, label);
	g_free(q);
}

static void
fleet_supply_cell(GString *out, const struct web_fleet_row *r)
{
	if (r->low_supply == NULL) {
		g_string_append(out, "<td class=\"supply none\">\xe2\x80\x93</td>");
		return;
	}
	const char *cls =
	    html_level_class(r->low_supply_level, r->low_supply_state, r->low_supply_threshold);
	html(out, "<td class=\"supply %R\">", cls);
	html_level_bar(out, r->low_supply_level, r->low_supply_state, NULL);
	html(out, "<span class=\"lvl\">");
	html_supply_swatch(out, r->low_supply_color);
	char *name =
	    web_supply_name(r->low_supply, r->low_supply_color, NULL, r->low_supply_type, true);
	html(out, "%s ", name);
	g_free(name);
	if (r->low_supply_level != SNAPSHOT_ABSENT)
		html(out, "%L%%", r->low_supply_level);
	else if (r->low_supply_state != NULL)
		html(out, "%s", r->low_supply_state);
	g_string_append(out, "</span></td>");
}

void
web_page_fleet(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"q",     "model", "state",	  "sort",
					    "order", "page",  "per_page", NULL};
	static const char *const state_labels[] = {"Any state",	     "OK",	   "Overdue",
						   "Supply low",     "Supply out", "Recent errors",
						   "Needs attention"};
	struct web_fleet_query q;
	struct web_fleet *fleet = NULL;
	char *error = NULL;
	unsigned total = 0;

	if (web_params_check(req, resp, known) < 0 || web_fleet_query_parse(req, resp, &q) < 0)
		return;
	if (web_request_store(req, resp) == NULL)
		return;
	if (web_fleet_get(req, &fleet, &error) < 0) {
		log_warnx("web: event=fleet-failed error=\"%s\"", error);
		g_free(error);
		web_respond_db_error(req, resp, store_db(req->store), "the fleet");
		return;
	}
	GPtrArray *rows = web_fleet_select(req, fleet, &q, &total);

	uint64_t n_overdue = 0, n_low = 0, n_out = 0, n_err = 0;
	for (guint i = 0; i < fleet->rows->len; i++) {
		const struct web_fleet_row *r = fleet->rows->pdata[i];
		int flag = web_fleet_row_supply_flag(r);
		n_overdue += web_fleet_row_overdue(req, r);
		n_low += flag == 1;
		n_out += flag == 2;
		n_err += r->recent_errors > 0;
	}

	GString *b = g_string_sized_new(64 * 1024);
	html(b, "<section class=\"page-head\"><h1>Fleet</h1><div class=\"tiles\">");
	fleet_tile(b, req, "devices", fleet->rows->len, NULL, "all");
	fleet_tile(b, req, "overdue", n_overdue, "overdue", "warn");
	fleet_tile(b, req, "supply low", n_low, "low", "warn");
	fleet_tile(b, req, "supply out", n_out, "out", "bad");
	fleet_tile(b, req, "with recent errors", n_err, "errors", "info");
	html(b, "</div></section>");

	/* Filters: a plain GET form (the script only submits it on change). */
	html(b,
	     "<form class=\"filters\" method=\"get\" action=\"/\" role=\"search\">"
	     "<input type=\"search\" name=\"q\" value=\"%s\" placeholder=\"Serial, model, host, "
	     "IP\xe2\x80\xa6\" "
	     "aria-label=\"Filter text\" maxlength=\"200\" data-hotkey=\"/\">"
	     "<select name=\"model\" aria-label=\"Model\" data-autosubmit><option value=\"\">All "
	     "models</option>",
	     q.text != NULL ? q.text : "");
	for (guint i = 0; i < fleet->models->len; i++) {
		const char *m = fleet->models->pdata[i];
		html(b, "<option value=\"%s\"%R>%s</option>", m,
		     g_strcmp0(q.model, m) == 0 ? " selected" : "", m);
	}
	html(b, "</select><select name=\"state\" aria-label=\"State\" data-autosubmit>");
	for (int i = 0; web_fleet_state_names[i] != NULL; i++)
		html(b, "<option value=\"%s\"%R>%s</option>",
		     i == 0 ? "" : web_fleet_state_names[i], (int)q.state == i ? " selected" : "",
		     state_labels[i]);
	html(b, "</select>");
	if (web_param(req, "sort") != NULL)
		html(b, "<input type=\"hidden\" name=\"sort\" value=\"%s\">",
		     web_param(req, "sort"));
	if (web_param(req, "order") != NULL)
		html(b, "<input type=\"hidden\" name=\"order\" value=\"%s\">",
		     web_param(req, "order"));
	if (web_param(req, "per_page") != NULL)
		html(b, "<input type=\"hidden\" name=\"per_page\" value=\"%s\">",
		     web_param(req, "per_page"));
	char *api = web_query_with(req, "page", NULL, NULL);
	html(b,
	     "<button type=\"submit\">Filter</button><a class=\"reset\" href=\"/\">Reset</a>"
	     "<span class=\"spacer\"></span><a class=\"alt\" href=\"/api/devices%s\">JSON</a>"
	     "<a class=\"alt\" href=\"/export/meter-reads.csv\">Meter reads CSV</a></form>",
	     api);
	g_free(api);

	const char *sort = web_fleet_sort_names[q.sort];
	html(b, "<div class=\"table-wrap\"><table class=\"data fleet\"><thead><tr>");
	html_sort_th(b, req, "Model", "model", sort, q.desc, false);
	html_sort_th(b, req, "Serial", "serial", sort, q.desc, false);
	html_sort_th(b, req, "Host", "hostname", sort, q.desc, false);
	html_sort_th(b, req, "Last snapshot", "last", sort, q.desc, false);
	html_sort_th(b, req, "Total pages", "total", sort, q.desc, true);
	html_sort_th(b, req, "Pages/day", "ppd", sort, q.desc, true);
	html_sort_th(b, req, "Lowest supply", "supply", sort, q.desc, false);
	html_sort_th(b, req, "Errors", "errors", sort, q.desc, true);
	html(b, "</tr></thead><tbody>");
	for (guint i = 0; i < rows->len; i++) {
		const struct web_fleet_row *r = rows->pdata[i];
		char *path = web_device_path(r->serial);
		bool overdue = web_fleet_row_overdue(req, r);
		html(b, "<tr><td class=\"model\">%s<small>%s</small></td>",
		     r->model != NULL ? r->model : "\xe2\x80\x93", r->product_number);
		html(b, "<td class=\"serial\"><a href=\"%s\">%s</a></td>", path, r->serial);
		html(b, "<td class=\"host\">%s<small>%s</small></td>", r->hostname, r->ip_address);
		html(b, "<td class=\"last\">");
		html_time(b, req, r->last_snapshot_utc);
		html(b, "<span class=\"age\">");
		html_age(b, req->now - r->last_unix);
		html(b, "</span>");
		if (overdue) {
			html(b, "<span class=\"badge warn\" title=\"usually sends every ");
			html_age(b, r->interval_s > 0
					? r->interval_s
					: (int64_t)req->config->s.overdue_default_hours * 3600);
			html(b, "\">overdue</span>");
		}
		html(b, "</td><td class=\"num\">%N</td>", r->total);
		if (isnan(r->pages_per_day))
			html(b, "<td class=\"num muted\">\xe2\x80\x93</td>");
		else
			html(b, "<td class=\"num\">%N</td>", (int64_t)llround(r->pages_per_day));
		fleet_supply_cell(b, r);
		if (r->recent_errors > 0)
			html(b,
			     "<td class=\"num errs%R\"><a href=\"%s#events\" title=\"latest: %s "
			     "%s\">%L</a>"
			     "<small class=\"code\">%s</small></td>",
			     r->recent_errors >= 10 ? " many" : "", path, r->last_error_code,
			     r->last_error_text, r->recent_errors, r->last_error_code);
		else
			html(b, "<td class=\"num muted\">0</td>");
		html(b, "</tr>");
		g_free(path);
	}
	if (rows->len == 0)
		html(b, "<tr><td colspan=\"8\" class=\"empty\">No device matches these "
			"filters.</td></tr>");
	html(b, "</tbody></table></div>");
	unsigned pages = (total + q.per_page - 1) / q.per_page;
	html_pager(b, req, "page", q.page, pages, total, total == 1 ? "device" : "devices");
	g_ptr_array_unref(rows);
	web_fleet_unref(&fleet);
	html_page(req, resp, "Fleet", "fleet", b);
}

/* ---- attention ---- */

static void
section_head(GString *b, const char *id, const char *title, uint64_t n, const char *blurb)
{
	html(b,
	     "<section class=\"card attention\" id=\"%s\"><h2>%s <span "
	     "class=\"count%R\">%N</span></h2>"
	     "<p class=\"blurb\">%s</p>",
	     id, title, n > 0 ? " hot" : "", (int64_t)n, blurb);
}

static void
device_cells(GString *b, const char *serial, const char *hostname, const char *model)
{
	char *path = web_device_path(serial != NULL ? serial : "");
	html(b,
	     "<td class=\"serial\"><a href=\"%s\">%s</a></td><td "
	     "class=\"host\">%s<small>%s</small></td>",
	     path, serial, hostname, model);
	g_free(path);
}

/* One Attention section read from SQL: its rows (at most
 * ATTENTION_ROWS_MAX, with a note when there are more), or a sentence when
 * there are none.  The query's parameters are param (when not NULL) and
 * then the row limit. */
struct attention_query {
	const char *id, *title, *what; /* section id, heading, name in errors */
	const char *columns;           /* the header cells after Serial and Host */
	const char *empty;             /* the sentence when there is nothing */
	const char *sql[2];            /* by db_engine */
	void (*row)(GString *rows, struct web_request *req, struct db_stmt *st);
};

static int
attention_section(struct web_request *req, struct web_response *resp, GString *b,
		  const struct attention_query *q, const char *param, const char *blurb)
{
	struct db_stmt *st = web_prepare(req, resp, q->sql[db_engine(store_db(req->store))]);
	GString *rows = NULL;
	unsigned n = 0;
	int rc, limit_index = 1;

	if (st == NULL)
		return -1;
	if (param != NULL)
		db_bind_text(st, limit_index++, param, -1, DB_TRANSIENT);
	db_bind_int(st, limit_index, ATTENTION_ROWS_MAX + 1);
	rows = g_string_new(NULL);
	while ((rc = db_step(st)) == DB_ROW) {
		if (++n > ATTENTION_ROWS_MAX)
			break;
		html(rows, "<tr>");
		device_cells(rows, (const char *)db_column_text(st, 0),
			     (const char *)db_column_text(st, 1),
			     (const char *)db_column_text(st, 2));
		q->row(rows, req, st);
		html(rows, "</tr>");
	}
	web_stmt_done(st);
	if (rc != DB_ROW && rc != DB_DONE) {
		g_string_free(rows, TRUE);
		web_respond_db_error(req, resp, store_db(req->store), q->what);
		return -1;
	}
	section_head(b, q->id, q->title, MIN(n, ATTENTION_ROWS_MAX), blurb);
	if (rows->len > 0)
		html(b,
		     "<div class=\"table-wrap\"><table class=\"data\"><thead><tr><th>Serial</th>"
		     "<th>Host</th>%R</tr></thead><tbody>%R</tbody></table></div>",
		     q->columns, rows->str);
	else
		html(b, "<p class=\"empty\">%s</p>", q->empty);
	if (n > ATTENTION_ROWS_MAX)
		html(b, "<p class=\"more\">Only the first %u are shown.</p>", ATTENTION_ROWS_MAX);
	html(b, "</section>");
	g_string_free(rows, TRUE);
	return 0;
}

static void
supply_row(GString *rows, struct web_request *req, struct db_stmt *st)
{
	int64_t level = web_col_int(st, 5);
	const char *state = (const char *)db_column_text(st, 6);
	html(rows, "<td>");
	html_supply_swatch(rows, (const char *)db_column_text(st, 4));
	char *name = web_supply_name((const char *)db_column_text(st, 3),
				     (const char *)db_column_text(st, 4), NULL,
				     (const char *)db_column_text(st, 10), false);
	html(rows, "%s <small>%s</small></td><td class=\"supply %R\">", name,
	     (const char *)db_column_text(st, 9), html_level_class(level, state, web_col_int(st, 7)));
	g_free(name);
	html_level_bar(rows, level, state, NULL);
	html(rows, "<span class=\"lvl\">");
	if (level != SNAPSHOT_ABSENT)
		html(rows, "%L%%", level);
	html(rows, "</span></td><td>%s</td><td>", state != NULL ? state : "\xe2\x80\x93");
	html_time(rows, req, (const char *)db_column_text(st, 8));
	html(rows, "</td>");
}

static int
attention_supplies(struct web_request *req, struct web_response *resp, GString *b)
{
	static const struct attention_query q = {
		.id = "supplies",
		.title = "Supplies low or out",
		.what = "supplies",
		.columns = "<th>Supply</th><th>Level</th><th>State</th><th>Reported</th>",
		.empty = "All supplies are above their thresholds.",
		.sql = WEB_SQL_BOTH("SELECT d.serial, d.hostname, d.model, sc.supply_key, s.color,"
		       " l.level_percent, l.state, l.low_threshold, sc.reported_utc,"
		       " s.product_number, s.type"
		       WEB_SQL_SUPPLY_CURRENT " JOIN devices d ON d.id = sc.device_id"
		       " WHERE COALESCE(l.state IN ('low', 'out', 'empty')"
		       "  OR l.level_percent <= COALESCE(l.low_threshold, 10), FALSE)"
		       " ORDER BY CASE WHEN l.state IN ('out', 'empty') OR l.level_percent <= 0"
		       " THEN 0 ELSE 1 END, l.level_percent, d.serial LIMIT ?"),
		.row = supply_row,
	};
	return attention_section(req, resp, b, &q, NULL,
				 "Current supplies at or below their low threshold (10 % when the "
				 "device gives none), or reported low, out or empty.");
}

static gint
cmp_last_asc(gconstpointer a, gconstpointer b)
{
	const struct web_fleet_row *x = *(struct web_fleet_row *const *)a;
	const struct web_fleet_row *y = *(struct web_fleet_row *const *)b;
	return x->last_unix < y->last_unix ? -1 : x->last_unix > y->last_unix;
}

static int
attention_overdue(struct web_request *req, struct web_response *resp, GString *b)
{
	struct web_fleet *fleet = NULL;
	char *error = NULL;
	if (web_fleet_get(req, &fleet, &error) < 0) {
		log_warnx("web: event=fleet-failed error=\"%s\"", error);
		g_free(error);
		web_respond_db_error(req, resp, store_db(req->store), "the fleet");
		return -1;
	}
	GPtrArray *od = g_ptr_array_new();
	for (guint i = 0; i < fleet->rows->len; i++)
		if (web_fleet_row_overdue(req, fleet->rows->pdata[i]))
			g_ptr_array_add(od, fleet->rows->pdata[i]);
	g_ptr_array_sort(od, cmp_last_asc);
	char *blurb = g_strdup_printf(
	    "No snapshot for longer than %.0f %% of their usual sending interval"
	    " ([web] overdue_percent); a device with one snapshot is expected every %u h.",
	    req->config->s.overdue_factor * 100, req->config->s.overdue_default_hours);
	section_head(b, "overdue", "Devices overdue", od->len, blurb);
	g_free(blurb);
	if (od->len > 0) {
		html(b, "<div class=\"table-wrap\"><table "
			"class=\"data\"><thead><tr><th>Serial</th><th>Host</th>"
			"<th>Last snapshot</th><th>Silent for</th><th>Usually "
			"every</th></tr></thead><tbody>");
		for (guint i = 0; i < od->len && i < ATTENTION_ROWS_MAX; i++) {
			const struct web_fleet_row *r = od->pdata[i];
			html(b, "<tr>");
			device_cells(b, r->serial, r->hostname, r->model);
			html(b, "<td>");
			html_time(b, req, r->last_snapshot_utc);
			html(b, "</td><td><span class=\"badge warn\">");
			html_age(b, req->now - r->last_unix);
			html(b, "</span></td><td>");
			if (r->interval_s > 0)
				html_age(b, r->interval_s);
			else
				html(b, "unknown (one snapshot)");
			html(b, "</td></tr>");
		}
		html(b, "</tbody></table></div>");
		if (od->len > ATTENTION_ROWS_MAX)
			html(b, "<p class=\"more\">Only the first %u are shown.</p>",
			     ATTENTION_ROWS_MAX);
	} else {
		html(b, "<p class=\"empty\">Every device sent its snapshot on time.</p>");
	}
	html(b, "</section>");
	g_ptr_array_unref(od);
	web_fleet_unref(&fleet);
	return 0;
}

static void
event_row(GString *rows, struct web_request *req, struct db_stmt *st)
{
	html(rows, "<td>");
	html_time(rows, req, (const char *)db_column_text(st, 6));
	html(rows,
	     "</td><td><span class=\"log\">%s</span></td><td class=\"code\">%s</td><td>%s</td>"
	     "<td class=\"num\">%N</td>",
	     (const char *)db_column_text(st, 3), (const char *)db_column_text(st, 4),
	     (const char *)db_column_text(st, 5), web_col_int(st, 7));
}

static int
attention_events(struct web_request *req, struct web_response *resp, GString *b)
{
	static const struct attention_query q = {
		.id = "events",
		.title = "New error events",
		.what = "events",
		.columns = "<th>Time</th><th>Log</th><th>Code</th><th>Description</th>"
			   "<th class=\"num\">Pages</th>",
		.empty = "No new error events.",
#define NEW_EVENTS_SQL(SHIFT) \
	"SELECT d.serial, d.hostname, d.model, e.log, e.code, e.description," \
	" e.occurred_utc, e.page_count" \
	" FROM devices d JOIN events e ON e.first_snapshot_id = d.last_snapshot_id" \
	" WHERE COALESCE(e.log, '') <> 'info'" \
	"  AND e.occurred_utc >= " SHIFT("d.last_snapshot_utc", "?1") \
	" ORDER BY e.occurred_utc DESC NULLS LAST LIMIT ?2"
		.sql = { [DB_ENGINE_SQLITE] = NEW_EVENTS_SQL(WEB_SQL_SHIFT_SQLITE),
			 [DB_ENGINE_POSTGRESQL] = NEW_EVENTS_SQL(WEB_SQL_SHIFT_PG) },
		.row = event_row,
	};
	char window[32];
	g_snprintf(window, sizeof(window), "-%u days", req->config->s.attention_days);
	char *blurb = g_strdup_printf(
	    "Error events first reported in each device's latest snapshot, from its last %u days.",
	    req->config->s.attention_days);
	int rc = attention_section(req, resp, b, &q, window, blurb);
	g_free(blurb);
	return rc;
}

static void
regression_row(GString *rows, struct web_request *req, struct db_stmt *st)
{
	html(rows, "<td>%s</td><td>", (const char *)db_column_text(st, 3));
	html_time(rows, req, (const char *)db_column_text(st, 4));
	html(rows, "</td><td class=\"num\">%N</td><td><a href=\"/snapshots/%L\">", web_col_int(st, 5),
	     db_column_int64(st, 8));
	html_time(rows, req, (const char *)db_column_text(st, 6));
	html(rows, "</a></td><td class=\"num\">%N</td><td class=\"num bad\">%N</td>",
	     web_col_int(st, 7), web_col_int(st, 7) - web_col_int(st, 5));
}

static int
attention_regressions(struct web_request *req, struct web_response *resp, GString *b)
{
	static const struct attention_query q = {
		.id = "regressions",
		.title = "Counters that went backwards",
		.what = "regressions",
		.columns = "<th>Counter</th><th>Before</th><th class=\"num\">Value</th><th>After</th>"
			   "<th class=\"num\">Value</th><th class=\"num\">Change</th>",
		.empty = "No counter ever went backwards.",
		.sql = WEB_SQL_BOTH("SELECT r.serial, d.hostname, d.model, r.counter, r.previous_taken_utc,"
		       " r.previous_value, r.taken_utc, r.value, r.snapshot_id"
		       " FROM counter_regressions r JOIN device_status d ON d.serial = r.serial"
		       " ORDER BY r.taken_utc DESC LIMIT ?"),
		.row = regression_row,
	};
	return attention_section(req, resp, b, &q, NULL,
				 "A device total lower than in the device's previous snapshot: a "
				 "formatter swap, a reset, or mail from a different device with the "
				 "same serial.");
}

static void
new_device_row(GString *rows, struct web_request *req, struct db_stmt *st)
{
	html(rows, "<td>%s</td><td>", (const char *)db_column_text(st, 5));
	html_time(rows, req, (const char *)db_column_text(st, 3));
	html(rows, "</td><td>");
	html_time(rows, req, (const char *)db_column_text(st, 4));
	html(rows, "</td>");
}

static int
attention_new_devices(struct web_request *req, struct web_response *resp, GString *b)
{
	static const struct attention_query q = {
		.id = "new",
		.title = "New devices",
		.what = "new devices",
		.columns = "<th>IP address</th><th>First received</th><th>First snapshot</th>",
		.empty = "No new devices.",
		.sql = WEB_SQL_BOTH("SELECT serial, hostname, model, first_received_utc, first_seen_utc, ip_address"
		       " FROM device_status WHERE first_received_utc >= ?"
		       " ORDER BY first_received_utc DESC LIMIT ?"),
		.row = new_device_row,
	};
	char since[SK_UTC_SIZE];
	sk_time_format_utc(req->now - (int64_t)req->config->s.attention_days * 86400, since);
	char *blurb = g_strdup_printf("Devices whose first snapshot arrived in the last %u days.",
				      req->config->s.attention_days);
	int rc = attention_section(req, resp, b, &q, since, blurb);
	g_free(blurb);
	return rc;
}

void
web_page_attention(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {NULL};
	if (web_params_check(req, resp, known) < 0 || web_request_store(req, resp) == NULL)
		return;
	GString *b = g_string_sized_new(32 * 1024);
	html(
	    b,
	    "<section class=\"page-head\"><h1>Needs attention</h1>"
	    "<nav class=\"jump\"><a href=\"#supplies\">Supplies</a><a href=\"#overdue\">Overdue</a>"
	    "<a href=\"#events\">New errors</a><a href=\"#regressions\">Counters backwards</a>"
	    "<a href=\"#new\">New devices</a></nav></section>");
	if (attention_supplies(req, resp, b) < 0 || attention_overdue(req, resp, b) < 0 ||
	    attention_events(req, resp, b) < 0 || attention_regressions(req, resp, b) < 0 ||
	    attention_new_devices(req, resp, b) < 0) {
		g_string_free(b, TRUE);
		return;
	}
	html_page(req, resp, "Needs attention", "attention", b);
}

/* ---- intake ---- */

static int64_t
count_outcome(struct db *db, const char *outcome)
{
	struct db_stmt *st = NULL;
	int64_t n = -1;
	if (db_prepare(db, "SELECT count(*) FROM intake_log WHERE outcome = ?", &st) != DB_OK)
		return -1;
	db_bind_text(st, 1, outcome, -1, DB_STATIC);
	if (db_step(st) == DB_ROW)
		n = db_column_int64(st, 0);
	db_finalize(st);
	return n;
}

/* The mailbox pollers ([poll.NAME]), as they recorded themselves in the
 * poll_status view: nothing when the daemon polls no mailbox. */
static void
intake_pollers(GString *b, struct web_request *req, struct db *db)
{
	struct db_stmt *st = NULL;
	unsigned n = 0;

	if (db_prepare(db,
			       "SELECT poller, mailbox, last_success_utc, last_error_utc, last_error,"
			       " taken, duplicates, failed, passes FROM poll_status"
			       " ORDER BY poller NULLS FIRST, mailbox", &st) != DB_OK)
		return;
	while (db_step(st) == DB_ROW) {
		const char *last_ok = (const char *)db_column_text(st, 2);
		const char *last_err = (const char *)db_column_text(st, 3);
		/* Failing now: the last error is newer than the last success. */
		bool failing = last_err != NULL && (last_ok == NULL || strcmp(last_err, last_ok) > 0);
		if (n++ == 0)
			html(b, "<h2>Mailboxes</h2><div class=\"table-wrap\"><table class=\"data "
				"pollers\"><thead><tr><th>Poller</th><th>Mailbox</th><th>Last success</th>"
				"<th>Last error</th><th class=\"num\">Taken</th><th class=\"num\">"
				"Duplicates</th><th class=\"num\">Failed</th><th class=\"num\">Passes"
				"</th></tr></thead><tbody>");
		html(b, "<tr class=\"%R\"><td>%s</td><td><code>%s</code></td><td>",
		     failing ? "o-failed" : "", (const char *)db_column_text(st, 0),
		     (const char *)db_column_text(st, 1));
		if (last_ok != NULL)
			html_time(b, req, last_ok);
		else
			html(b, "never");
		html(b, "</td><td>");
		if (last_err != NULL) {
			html_time(b, req, last_err);
			html(b, "<small class=\"detail\">%s</small>",
			     (const char *)db_column_text(st, 4));
		}
		html(b, "</td><td class=\"num\">%N</td><td class=\"num\">%N</td>"
			"<td class=\"num\">%N</td><td class=\"num\">%N</td></tr>",
		     web_col_int(st, 5), web_col_int(st, 6), web_col_int(st, 7), web_col_int(st, 8));
	}
	db_finalize(st);
	if (n > 0)
		html(b, "</tbody></table></div>");
}

void
web_page_intake(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"outcome", "source", "before", "reprocessed", NULL};
	static const char *const outcomes[] = {"any",	       "pending", "stored", "duplicate",
					       "not-snapshot", "failed",  NULL};
	int outcome;
	unsigned before = 0, reprocessed = 0;
	const char *source = web_param(req, "source");

	if (web_params_check(req, resp, known) < 0 ||
	    web_param_enum(req, resp, "outcome", outcomes, 0, &outcome) < 0 ||
	    web_param_uint(req, resp, "before", 1, G_MAXINT32, 0, &before) < 0 ||
	    web_param_uint(req, resp, "reprocessed", 1, G_MAXINT32, 0, &reprocessed) < 0)
		return;
	if (source != NULL && strlen(source) > 64) {
		web_respond_error(req, resp, 400, "parameter source: at most 64 bytes");
		return;
	}
	if (web_request_store(req, resp) == NULL)
		return;
	struct db *db = store_db(req->store);
	/* Only the conditions in use, so that SQLite walks the index that fits
	 * (outcome, id) or the rowid backwards; values are bound, never pasted. */
	GString *sql = g_string_new(
	    "SELECT i.id, i.received_utc, i.source, i.source_name, i.peer, i.helo, i.mail_from,"
	    " COALESCE(i.subject, m.hint_subject), i.outcome, i.detail, i.serial, i.message_id,"
	    " i.snapshot_id, i.raw_size, m.hint_from"
	    " FROM intake_log i LEFT JOIN messages m ON m.id = i.message_id WHERE TRUE");
	if (outcome > 0)
		g_string_append(sql, " AND i.outcome = ?1");
	if (source != NULL)
		g_string_append(sql, " AND i.source = ?2");
	if (before > 0)
		g_string_append(sql, " AND i.id < ?3");
	g_string_append(sql, " ORDER BY i.id DESC LIMIT ?4");
	struct db_stmt *st = web_prepare(req, resp, sql->str);
	g_string_free(sql, TRUE);
	if (st == NULL)
		return;
	if (outcome > 0)
		db_bind_text(st, 1, outcomes[outcome], -1, DB_STATIC);
	if (source != NULL)
		db_bind_text(st, 2, source, -1, DB_TRANSIENT);
	if (before > 0)
		db_bind_int64(st, 3, before);
	db_bind_int(st, 4, INTAKE_PAGE_ROWS);

	bool can_reprocess = web_server_intake(req->server) != NULL;
	size_t slen;
	const guint8 *secret = web_server_secret(req->server, &slen);
	char *token = web_csrf_token(secret, slen, req->user);
	GString *b = g_string_sized_new(64 * 1024);
	int64_t n_failed = count_outcome(db, "failed"), n_pending = count_outcome(db, "pending"),
		n_not = count_outcome(db, "not-snapshot");

	html(b, "<section class=\"page-head\"><h1>Intake</h1><div class=\"tiles\">");
	struct {
		const char *label, *outcome, *cls;
		int64_t n;
	} tiles[] = {
	    {"failed", "failed", "bad", n_failed},
	    {"not a snapshot", "not-snapshot", "info", n_not},
	    {"waiting to be parsed", "pending", "warn", n_pending},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(tiles); i++) {
		char *q = web_query_with(req, "outcome", tiles[i].outcome, "before", NULL,
					 "reprocessed", NULL, NULL);
		html(b,
		     "<a class=\"tile %R\" href=\"%s\"><span class=\"n\">%N</span><span "
		     "class=\"l\">%s</span></a>",
		     tiles[i].n > 0 ? tiles[i].cls : "quiet", q, MAX(tiles[i].n, 0),
		     tiles[i].label);
		g_free(q);
	}
	html(b, "</div></section>");
	intake_pollers(b, req, db);
	if (reprocessed > 0)
		html(
		    b,
		    "<p class=\"notice\" role=\"status\">Message #%u was queued for parsing again. "
		    "Its new outcome appears here once the worker is done.</p>",
		    reprocessed);

	html(b, "<form class=\"filters\" method=\"get\" action=\"/intake\">"
		"<select name=\"outcome\" aria-label=\"Outcome\" data-autosubmit>");
	for (int i = 0; outcomes[i] != NULL; i++)
		html(b, "<option value=\"%s\"%R>%s</option>", i == 0 ? "" : outcomes[i],
		     outcome == i ? " selected" : "", i == 0 ? "Any outcome" : outcomes[i]);
	html(b,
	     "</select><input type=\"text\" name=\"source\" value=\"%s\" placeholder=\"Source "
	     "(smtp, imap, file\xe2\x80\xa6)\" "
	     "aria-label=\"Source\" maxlength=\"64\"><button type=\"submit\">Filter</button>"
	     "<a class=\"reset\" href=\"/intake\">Reset</a></form>",
	     source != NULL ? source : "");

	html(b, "<div class=\"table-wrap\"><table class=\"data "
		"intake\"><thead><tr><th>#</th><th>Received</th>"
		"<th>Source</th><th>Sender</th><th>Subject</th><th>Outcome</th><th>Device</"
		"th><th></th></tr></thead><tbody>");
	int rc;
	unsigned n = 0;
	int64_t last_id = 0;
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t id = db_column_int64(st, 0);
		const char *oc = (const char *)db_column_text(st, 8);
		const char *serial = (const char *)db_column_text(st, 10);
		int64_t message_id = db_column_int64(st, 11);
		const char *sender = (const char *)db_column_text(st, 6);
		if (sender == NULL)
			sender = (const char *)db_column_text(st, 14);
		n++;
		last_id = id;
		html(b, "<tr class=\"o-%s\"><td class=\"num muted\">%L</td><td>", oc, id);
		html_time(b, req, (const char *)db_column_text(st, 1));
		html(b, "</td><td>%s<small>%s%s%s</small></td>",
		     (const char *)db_column_text(st, 2),
		     (const char *)db_column_text(st, 4),
		     db_column_text(st, 4) != NULL && db_column_text(st, 3) != NULL ? " "
											      : "",
		     (const char *)db_column_text(st, 3));
		html(b, "<td class=\"sender\">%s</td><td class=\"subject\">%s</td>", sender,
		     (const char *)db_column_text(st, 7));
		html(b, "<td><span class=\"badge o-%s\">%s</span>", oc, oc);
		if (db_column_text(st, 9) != NULL)
			html(b, "<small class=\"detail\">%s</small>",
			     (const char *)db_column_text(st, 9));
		html(b, "</td><td>");
		if (serial != NULL) {
			char *path = web_device_path(serial);
			html(b, "<a href=\"%s\">%s</a>", path, serial);
			g_free(path);
		}
		if (db_column_type(st, 12) != DB_NULL)
			html(b, "<small><a href=\"/snapshots/%L\">snapshot</a></small>",
			     db_column_int64(st, 12));
		html(b,
		     "</td><td class=\"actions\"><a href=\"/messages/%L/raw\" title=\"%N "
		     "bytes\">raw</a>",
		     message_id, web_col_int(st, 13));
		if (can_reprocess && oc != NULL &&
		    (strcmp(oc, "failed") == 0 || strcmp(oc, "not-snapshot") == 0))
			html(b,
			     "<form method=\"post\" action=\"/intake/reprocess\" "
			     "data-confirm=\"Parse message #%L again?\">"
			     "<input type=\"hidden\" name=\"message_id\" value=\"%L\">"
			     "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
			     "<button type=\"submit\" class=\"small\">Reprocess</button></form>",
			     message_id, message_id, token);
		html(b, "</td></tr>");
	}
	web_stmt_done(st);
	g_free(token);
	if (rc != DB_DONE) {
		g_string_free(b, TRUE);
		web_respond_db_error(req, resp, db, "the intake log");
		return;
	}
	if (n == 0)
		html(b, "<tr><td colspan=\"8\" class=\"empty\">Nothing here.</td></tr>");
	html(b, "</tbody></table></div><nav class=\"pager\">");
	if (before > 0) {
		char *q = web_query_with(req, "before", NULL, "reprocessed", NULL, NULL);
		html(b, "<a href=\"%s\">\xe2\x80\xb9 Newest</a>", q);
		g_free(q);
	}
	if (n == INTAKE_PAGE_ROWS) {
		char num[32];
		g_snprintf(num, sizeof(num), "%" G_GINT64_FORMAT, last_id);
		char *q = web_query_with(req, "before", num, "reprocessed", NULL, NULL);
		html(b, "<a rel=\"next\" href=\"%s\">Older \xe2\x80\xba</a>", q);
		g_free(q);
	}
	html(b, "</nav>");
	html_page(req, resp, "Intake", "intake", b);
}

/* ---- reprocess ---- */

static bool
same_origin(struct web_request *req)
{
	const char *site =
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
	if (site != NULL && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return false;
	const char *origin = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Host");
	if (origin == NULL)
		return true;
	if (host == NULL)
		return false;
	const char *p = strstr(origin, "://");
	return p != NULL && g_ascii_strcasecmp(p + 3, host) == 0;
}

void
web_post_reprocess(struct web_request *req, struct web_response *resp)
{
	GHashTable *form = NULL;
	GError *gerr = NULL;
	size_t slen;
	const guint8 *secret = web_server_secret(req->server, &slen);
	guint64 id = 0;

	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	if (req->config->users != NULL && req->user == NULL) {
		web_respond_error(req, resp, 401, "log in to reprocess messages");
		return;
	}
	if (!same_origin(req)) {
		web_respond_error(req, resp, 403, "cross-site request refused");
		return;
	}
	const char *ctype = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Type");
	if (ctype == NULL ||
	    g_ascii_strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
		web_respond_error(req, resp, 400,
				  "want a form (application/x-www-form-urlencoded)");
		return;
	}
	form = g_uri_parse_params(req->body != NULL ? req->body->str : "", -1, "&",
				  G_URI_PARAMS_WWW_FORM, &gerr);
	if (form == NULL) {
		web_respond_error(req, resp, 400, "malformed form: %s", gerr->message);
		g_error_free(gerr);
		return;
	}
	const char *token = g_hash_table_lookup(form, "csrf");
	if (!web_csrf_check(secret, slen, req->user, token)) {
		log_warnx("web: event=csrf-refused");
		web_respond_error(req, resp, 403,
				  "missing or expired form token: reload the page and try again");
		goto out;
	}
	const char *mid = g_hash_table_lookup(form, "message_id");
	if (mid == NULL || !g_ascii_string_to_unsigned(mid, 10, 1, G_MAXINT64, &id, NULL)) {
		web_respond_error(req, resp, 400, "message_id: want a message number");
		goto out;
	}
	if (web_server_intake(req->server) == NULL) {
		web_respond_error(req, resp, 503,
				  "reprocessing needs the daemon's intake (not available here)");
		goto out;
	}
	if (web_request_store(req, resp) == NULL)
		goto out;
	struct db_stmt *st =
	    web_prepare(req, resp, "SELECT 1 FROM intake_log WHERE message_id = ? LIMIT 1");
	if (st == NULL)
		goto out;
	db_bind_int64(st, 1, (int64_t)id);
	int rc = db_step(st);
	web_stmt_done(st);
	if (rc != DB_ROW) {
		web_respond_error(req, resp, 404, "no message #%" G_GUINT64_FORMAT, id);
		goto out;
	}
	int64_t ids[1] = {(int64_t)id};
	intake_queue_reparse(web_server_intake(req->server), ids, 1);
	log_info("web: event=reprocess message=%" G_GUINT64_FORMAT " user=%s", id,
		 req->user != NULL ? req->user : "-");
	char *loc = g_strdup_printf("/intake?reprocessed=%" G_GUINT64_FORMAT, id);
	GString *b = g_string_new(NULL);
	html(b, "<p>Queued. <a href=\"%s\">Back to the intake log</a></p>", loc);
	web_respond(resp, 303, "text/html; charset=utf-8", b);
	web_header_add(resp, "Location", loc);
	g_free(loc);
out:
	g_hash_table_destroy(form);
}
