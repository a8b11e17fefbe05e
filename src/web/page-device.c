/* page-device.c: /devices/SERIAL, one device's identity and history.
 *
 * Identity and network details; current supplies with level bars, state and
 * days to empty; three charts (total pages, pages per period, supply levels
 * with replacements marked) over a chosen range; the event log (newest
 * first, new-since-previous-snapshot marked) and the snapshots received,
 * each paged.  Every query is bounded by the device's index ranges
 * (snapshots by device and time, counters by snapshot, supply levels by
 * unit), so the page costs the same in a fleet of 10 or 10 000. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

#define DEVICE_EVENTS_PAGE 50
#define DEVICE_SNAPSHOTS_PAGE 25

static const char *const ranges[] = {"90d", "1y", "2y", "all", NULL};
static const int64_t range_days[] = {90, 365, 730, 0};
static const char *const periods[] = {"auto", "day", "week", "month", NULL};

struct device_info {
	int64_t id;
	char *serial, *model, *product_number, *hostname, *ip, *mac, *uuid, *firmware,
	    *firmware_date, *locale, *dialect, *first_seen, *last_snapshot, *first_received,
	    *last_received;
	int64_t snapshot_count, total, mono, color, last_snapshot_id;
};

static void
device_info_clear(struct device_info *d)
{
	g_free(d->serial);
	g_free(d->model);
	g_free(d->product_number);
	g_free(d->hostname);
	g_free(d->ip);
	g_free(d->mac);
	g_free(d->uuid);
	g_free(d->firmware);
	g_free(d->firmware_date);
	g_free(d->locale);
	g_free(d->dialect);
	g_free(d->first_seen);
	g_free(d->last_snapshot);
	g_free(d->first_received);
	g_free(d->last_received);
}

/* 1 found, 0 not (404 sent), -1 error (sent). */
static int
device_load(struct web_request *req, struct web_response *resp, const char *serial,
	    struct device_info *d)
{
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT device_id, serial, model, product_number, hostname, ip_address, mac_address,"
	    " device_uuid, firmware, firmware_date, locale, dialect, first_seen_utc,"
	    " last_snapshot_utc, first_received_utc, last_received_utc, snapshot_count,"
	    " total_impressions, mono_impressions, color_impressions, last_snapshot_id"
	    " FROM device_status WHERE serial = ?");
	if (st == NULL)
		return -1;
	db_bind_text(st, 1, serial, -1, DB_TRANSIENT);
	int rc = db_step(st);
	if (rc != DB_ROW) {
		web_stmt_done(st);
		if (rc == DB_DONE)
			web_respond_error(req, resp, 404, "no device with serial %s", serial);
		else
			web_respond_db_error(req, resp, store_db(req->store), "the device");
		return rc == DB_DONE ? 0 : -1;
	}
	memset(d, 0, sizeof(*d));
	d->id = db_column_int64(st, 0);
	d->serial = web_col_text(st, 1);
	d->model = web_col_text(st, 2);
	d->product_number = web_col_text(st, 3);
	d->hostname = web_col_text(st, 4);
	d->ip = web_col_text(st, 5);
	d->mac = web_col_text(st, 6);
	d->uuid = web_col_text(st, 7);
	d->firmware = web_col_text(st, 8);
	d->firmware_date = web_col_text(st, 9);
	d->locale = web_col_text(st, 10);
	d->dialect = web_col_text(st, 11);
	d->first_seen = web_col_text(st, 12);
	d->last_snapshot = web_col_text(st, 13);
	d->first_received = web_col_text(st, 14);
	d->last_received = web_col_text(st, 15);
	d->snapshot_count = db_column_int64(st, 16);
	d->total = web_col_int(st, 17);
	d->mono = web_col_int(st, 18);
	d->color = web_col_int(st, 19);
	d->last_snapshot_id = web_col_int(st, 20);
	web_stmt_done(st);
	return 1;
}

static void
dl_item(GString *b, const char *term, const char *value)
{
	html(b, "<dt>%s</dt><dd>%s</dd>", term, value != NULL ? value : "\xe2\x80\x93");
}

static const char *
supply_css(const char *color, guint index)
{
	static const char *const other[] = {"s0", "s1", "s2", "s3"};
	if (color != NULL) {
		if (g_ascii_strcasecmp(color, "black") == 0)
			return "c-black";
		if (g_ascii_strcasecmp(color, "cyan") == 0)
			return "c-cyan";
		if (g_ascii_strcasecmp(color, "magenta") == 0)
			return "c-magenta";
		if (g_ascii_strcasecmp(color, "yellow") == 0)
			return "c-yellow";
	}
	return other[index % G_N_ELEMENTS(other)];
}

static void
render_supplies(GString *b, struct web_request *req, GPtrArray *supplies)
{
	html(b, "<section class=\"card supplies\"><h2>Supplies</h2>");
	if (supplies->len == 0) {
		html(b, "<p class=\"empty\">This device reports no supplies.</p></section>");
		return;
	}
	html(b,
	     "<table class=\"data compact\"><thead><tr><th>Supply</th><th>Level</th><th>State</th>"
	     "<th class=\"num\">Days left</th><th>Installed</th></tr></thead><tbody>");
	for (guint i = 0; i < supplies->len; i++) {
		const struct web_supply *s = supplies->pdata[i];
		char *name = web_supply_name(s->key, s->color, s->description, s->type, false);
		const char *cls = html_level_class(s->level, s->state, s->low_threshold);
		html(b, "<tr><td>");
		html_supply_swatch(b, s->color);
		html(b, "%s<small>%s%s%s</small></td>", name, s->product_number,
		     s->product_number != NULL && s->serial != NULL ? " \xc2\xb7 " : "", s->serial);
		html(b, "<td class=\"supply %R\">", cls);
		html_level_bar(b, s->level, s->state, s->color);
		html(b, "<span class=\"lvl\">");
		if (s->level != SNAPSHOT_ABSENT)
			html(b, "%L%%", s->level);
		else
			html(b, "\xe2\x80\x93");
		html(b, "</span></td><td><span class=\"state %R\">%s</span></td>", cls,
		     s->state != NULL ? s->state : "\xe2\x80\x93");
		if (!isnan(s->days_left))
			html(b, "<td class=\"num\" title=\"%F points per day recently\">%N</td>",
			     s->per_day, (int64_t)llround(s->days_left));
		else
			html(b, "<td class=\"num muted\" title=\"no recent "
				"decline\">\xe2\x80\x93</td>");
		html(b, "<td>%s</td></tr>", s->installed_date);
		g_free(name);
	}
	html(b, "</tbody></table></section>");
}

/* The device's snapshots in the range (and the one before it), from the
 * covering index on (device_id, taken_utc), with their three totals: one
 * row per snapshot, each total a lookup by the key of counters (snapshot_id,
 * name_id).  Not a join of snapshots and counters: on a small fleet
 * PostgreSQL's planner hashed such a join over a scan of every device's
 * counters (seq scan, hash, sort of three rows per snapshot: 4-5 ms for a
 * year of daily snapshots of 10 devices, 1.3 ms this way); the lookups
 * leave it no join to choose, and the counter names are resolved once in
 * the statement, not in three statements before it. */
struct counter_points {
	GArray *t;		      /* int64 */
	GArray *total, *mono, *color; /* double, NAN when absent */
	GHashTable *time_of;	      /* snapshot id -> Unix time (int64 pointers) */
};

static int
load_counters(struct web_request *req, struct web_response *resp, int64_t device_id, int64_t since,
	      struct counter_points *cp)
{
	struct db *db = store_db(req->store);
	char since_utc[SK_UTC_SIZE];
	sk_time_format_utc(since, since_utc);
	/* From the last snapshot before the range on, for the first difference.
	 * That start is looked up first and bound as a value: as a subquery
	 * PostgreSQL's planner cannot tell how many snapshots follow it, and
	 * with statistics it read every device's counters. */
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT COALESCE((SELECT max(taken_utc) FROM snapshots WHERE device_id = ?1 AND taken_utc < ?2),"
	    " ?2)");
	if (st == NULL)
		return -1;
	db_bind_int64(st, 1, device_id);
	db_bind_text(st, 2, since_utc, -1, DB_TRANSIENT);
	char *start = db_step(st) == DB_ROW ? g_strdup((const char *)db_column_text(st, 0)) : NULL;
	web_stmt_done(st);
	if (start == NULL) {
		web_respond_db_error(req, resp, db, "counters");
		return -1;
	}
#define COUNTER_OF_S(NAME)                                                                         \
	" (SELECT c.value FROM counters c WHERE c.snapshot_id = s.id AND c.name_id ="              \
	"   (SELECT id FROM counter_names WHERE name = '" NAME "'))"
	st = web_prepare(req, resp,
			 "SELECT s.taken_utc, s.id," COUNTER_OF_S("TotalImpressions") ","
			 COUNTER_OF_S("MonochromeImpressions") "," COUNTER_OF_S("ColorImpressions")
			 " FROM snapshots s WHERE s.device_id = ?1 AND s.taken_utc >= ?2"
			 " ORDER BY s.taken_utc");
#undef COUNTER_OF_S
	if (st == NULL) {
		g_free(start);
		return -1;
	}
	db_bind_int64(st, 1, device_id);
	db_bind_text(st, 2, start, -1, DB_TRANSIENT);
	g_free(start);
	cp->t = g_array_new(FALSE, FALSE, sizeof(int64_t));
	cp->total = g_array_new(FALSE, FALSE, sizeof(double));
	cp->mono = g_array_new(FALSE, FALSE, sizeof(double));
	cp->color = g_array_new(FALSE, FALSE, sizeof(double));
	cp->time_of = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t t = web_utc_unix((const char *)db_column_text(st, 0));
		double v[3];
		for (int k = 0; k < 3; k++)
			v[k] = db_column_type(st, 2 + k) == DB_NULL
				   ? NAN
				   : (double)db_column_int64(st, 2 + k);
		g_array_append_val(cp->t, t);
		g_array_append_val(cp->total, v[0]);
		g_array_append_val(cp->mono, v[1]);
		g_array_append_val(cp->color, v[2]);
		int64_t *key = g_new(int64_t, 1), *val = g_new(int64_t, 1);
		*key = db_column_int64(st, 1);
		*val = t;
		g_hash_table_insert(cp->time_of, key, val);
	}
	web_stmt_done(st);
	if (rc != DB_DONE) {
		web_respond_db_error(req, resp, db, "counters");
		return -1;
	}
	return 0;
}

static void
counter_points_clear(struct counter_points *cp)
{
	if (cp->t == NULL)
		return;
	g_array_unref(cp->t);
	g_array_unref(cp->total);
	g_array_unref(cp->mono);
	g_array_unref(cp->color);
	g_hash_table_destroy(cp->time_of);
}

static void
chart_total(GString *b, struct web_request *req, const struct counter_points *cp, int64_t since,
	    int64_t until)
{
	struct svg_chart c;
	svg_chart_init(&c, SVG_LINE, "chart-total", "Total pages", "pages", req);
	struct svg_series *s = svg_series_new("Total", "s-total");
	for (guint i = 0; i < cp->t->len; i++) {
		int64_t t = g_array_index(cp->t, int64_t, i);
		double v = g_array_index(cp->total, double, i);
		if (t >= since && !isnan(v))
			svg_series_add(s, t, v);
	}
	g_ptr_array_add(c.series, s);
	c.x_min = since;
	c.x_max = until;
	c.area = true;
	c.integer = true;
	svg_chart_render(b, &c);
	svg_chart_clear(&c);
}

/* Pages printed per bucket: positive differences between consecutive
 * snapshots, counted in the bucket of the later one (a counter that went
 * backwards contributes nothing). */
static void
chart_periods(GString *b, struct web_request *req, const struct counter_points *cp, int64_t since,
	      int64_t until, enum web_interval interval, bool color_device)
{
	static const char *const titles[] = {"", "Pages per day", "Pages per week",
					     "Pages per month"};
	struct svg_chart c;
	GTimeZone *tz = req->config->tz;
	svg_chart_init(&c, SVG_BARS, "chart-period", titles[interval], "pages", req);
	c.stacked = color_device;
	c.integer = true;
	struct svg_series *mono = svg_series_new(color_device ? "Mono" : "Pages", "s-mono");
	struct svg_series *colr = color_device ? svg_series_new("Colour", "s-color") : NULL;
	int64_t bucket = INT64_MIN;
	double sum_m = 0, sum_c = 0, sum_t = 0;
	bool have = false;

	int64_t first_bucket = web_bucket_start(tz, interval, since);
	int64_t bk_start = INT64_MIN, bk_next = INT64_MIN;
	for (guint i = 1; i <= cp->t->len; i++) {
		int64_t t = i < cp->t->len ? g_array_index(cp->t, int64_t, i) : INT64_MAX;
		/* Snapshots come in time order: a new bucket only past the last one's end. */
		if (i < cp->t->len && (t >= bk_next || t < bk_start)) {
			bk_start = web_bucket_start(tz, interval, t);
			bk_next = web_bucket_next(tz, interval, bk_start);
		}
		int64_t bk = i < cp->t->len ? bk_start : INT64_MAX;
		if (bk != bucket && have) {
			if (bucket >= first_bucket) {
				if (color_device) {
					svg_series_add(mono, bucket, sum_m);
					svg_series_add(colr, bucket, sum_c);
				} else {
					svg_series_add(mono, bucket, sum_t);
				}
			}
			sum_m = sum_c = sum_t = 0;
			have = false;
		}
		if (i == cp->t->len)
			break;
		bucket = bk;
		have = true;
		double d;
#define DELTA(arr)                                                                                 \
	(d = g_array_index(cp->arr, double, i) - g_array_index(cp->arr, double, i - 1),            \
	 isnan(d) || d < 0 ? 0 : d)
		sum_t += DELTA(total);
		sum_m += DELTA(mono);
		sum_c += DELTA(color);
#undef DELTA
	}
	g_ptr_array_add(c.series, mono);
	if (colr != NULL)
		g_ptr_array_add(c.series, colr);
	int64_t first = first_bucket;
	c.bar_width_s = interval == WEB_INTERVAL_MONTH	? 30 * 86400
			: interval == WEB_INTERVAL_WEEK ? 7 * 86400
							: 86400;
	c.x_min = first;
	c.x_max = MAX(until, first + c.bar_width_s);
	c.x_fmt = interval == WEB_INTERVAL_MONTH  ? "%B %Y"
		  : interval == WEB_INTERVAL_WEEK ? "week of %Y-%m-%d"
						  : "%a %Y-%m-%d";
	svg_chart_render(b, &c);
	svg_chart_clear(&c);
}

struct supply_unit {
	int64_t id;
	char *key, *color, *type, *serial, *installed;
	GArray *t; /* int64 */
	GArray *v; /* double */
};

static void
supply_unit_free(gpointer p)
{
	struct supply_unit *u = p;
	g_free(u->key);
	g_free(u->color);
	g_free(u->type);
	g_free(u->serial);
	g_free(u->installed);
	g_array_unref(u->t);
	g_array_unref(u->v);
	g_free(u);
}

static int
color_rank(const char *color)
{
	static const char *const order[] = {"black", "cyan", "magenta", "yellow"};
	for (int i = 0; color != NULL && i < 4; i++)
		if (g_ascii_strcasecmp(color, order[i]) == 0)
			return i;
	return 4;
}

static gint
unit_cmp(gconstpointer a, gconstpointer b)
{
	const struct supply_unit *x = *(struct supply_unit *const *)a;
	const struct supply_unit *y = *(struct supply_unit *const *)b;
	int c = color_rank(x->color) - color_rank(y->color);
	if (c == 0)
		c = g_strcmp0(x->key, y->key);
	if (c == 0) {
		int64_t tx = x->t->len ? g_array_index(x->t, int64_t, 0) : 0;
		int64_t ty = y->t->len ? g_array_index(y->t, int64_t, 0) : 0;
		c = tx < ty ? -1 : tx > ty;
	}
	return c;
}

/* Sorts a unit's points by time (they come in snapshot id order). */
static void
unit_sort(struct supply_unit *u)
{
	for (guint i = 1; i < u->t->len; i++)
		for (guint j = i;
		     j > 0 && g_array_index(u->t, int64_t, j - 1) > g_array_index(u->t, int64_t, j);
		     j--) {
			int64_t tt = g_array_index(u->t, int64_t, j);
			double vv = g_array_index(u->v, double, j);
			g_array_index(u->t, int64_t, j) = g_array_index(u->t, int64_t, j - 1);
			g_array_index(u->v, double, j) = g_array_index(u->v, double, j - 1);
			g_array_index(u->t, int64_t, j - 1) = tt;
			g_array_index(u->v, double, j - 1) = vv;
		}
}

/* Supply levels over the range: one line per supply (key), broken and
 * marked where a new unit replaced the old one.  Levels come from the
 * covering index on supply_levels (supply_id, snapshot_id, level_percent)
 * and their times from the device's snapshot timeline (cp->time_of), so
 * no snapshot row is read. */
static int
chart_supplies(GString *b, struct web_request *req, struct web_response *resp, int64_t device_id,
	       int64_t since, int64_t until, const struct counter_points *cp)
{
	GHashTable *units =
	    g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, supply_unit_free);
	struct svg_chart c;
	int rc;
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT id, supply_key, color, type, supply_serial, installed_date FROM supplies"
	    " WHERE device_id = ?");
	if (st == NULL)
		goto fail;
	db_bind_int64(st, 1, device_id);
	while ((rc = db_step(st)) == DB_ROW) {
		struct supply_unit *u = g_new0(struct supply_unit, 1);
		u->id = db_column_int64(st, 0);
		u->key = web_col_text(st, 1);
		u->color = web_col_text(st, 2);
		u->type = web_col_text(st, 3);
		u->serial = web_col_text(st, 4);
		u->installed = web_col_text(st, 5);
		u->t = g_array_new(FALSE, FALSE, sizeof(int64_t));
		u->v = g_array_new(FALSE, FALSE, sizeof(double));
		g_hash_table_insert(units, &u->id, u);
	}
	web_stmt_done(st);
	if (rc != DB_DONE)
		goto db_fail;
	st = web_prepare(req, resp,
			 "SELECT supply_id, snapshot_id, level_percent FROM supply_levels"
			 " WHERE supply_id IN (SELECT id FROM supplies WHERE device_id = ?)"
			 " AND level_percent IS NOT NULL");
	if (st == NULL)
		goto fail;
	db_bind_int64(st, 1, device_id);
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t sid = db_column_int64(st, 0), snap = db_column_int64(st, 1);
		struct supply_unit *u = g_hash_table_lookup(units, &sid);
		const int64_t *t = g_hash_table_lookup(cp->time_of, &snap);
		if (u == NULL || t == NULL || *t < since)
			continue;
		double v = (double)db_column_int64(st, 2);
		g_array_append_val(u->t, *t);
		g_array_append_val(u->v, v);
	}
	web_stmt_done(st);
	if (rc != DB_DONE)
		goto db_fail;

	GPtrArray *list = g_ptr_array_new();
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, units);
	while (g_hash_table_iter_next(&it, NULL, &val))
		if (((struct supply_unit *)val)->t->len > 0) {
			unit_sort(val);
			g_ptr_array_add(list, val);
		}
	g_ptr_array_sort(list, unit_cmp);

	svg_chart_init(&c, SVG_LINE, "chart-supplies", "Supply levels", "%", req);
	c.y_min = 0;
	c.y_max = 100;
	c.x_min = since;
	c.x_max = until;
	struct svg_series *cur = NULL;
	const char *cur_key = NULL;
	for (guint i = 0; i < list->len; i++) {
		const struct supply_unit *u = list->pdata[i];
		if (cur == NULL || g_strcmp0(u->key, cur_key) != 0) {
			char *name = web_supply_name(u->key, u->color, NULL, u->type, false);
			cur = svg_series_new(name, supply_css(u->color, c.series->len));
			g_free(name);
			g_ptr_array_add(c.series, cur);
			cur_key = u->key;
		} else {
			/* A replacement: a new unit of the same supply. */
			guint at = cur->x->len;
			int64_t t = g_array_index(u->t, int64_t, 0);
			g_array_append_val(cur->breaks, at);
			GString *title = g_string_new(NULL);
			char *when = web_format_local(req, t, "%Y-%m-%d");
			g_string_append_printf(title, "%s replaced (first reported %s", cur->name,
					       when);
			if (u->serial != NULL && *u->serial != '\0')
				g_string_append_printf(title, ", serial %s", u->serial);
			if (u->installed != NULL)
				g_string_append_printf(title, ", installed %s", u->installed);
			g_string_append(title, ")");
			svg_chart_add_marker(&c, t, supply_css(u->color, c.series->len - 1),
					     title->str);
			g_string_free(title, TRUE);
			g_free(when);
		}
		for (guint j = 0; j < u->t->len; j++)
			svg_series_add(cur, g_array_index(u->t, int64_t, j),
				       g_array_index(u->v, double, j));
	}
	g_ptr_array_unref(list);
	svg_chart_render(b, &c);
	svg_chart_clear(&c);
	g_hash_table_destroy(units);
	return 0;
db_fail:
	web_respond_db_error(req, resp, store_db(req->store), "supply levels");
fail:
	g_hash_table_destroy(units);
	return -1;
}

static int
render_events(GString *b, struct web_request *req, struct web_response *resp,
	      const struct device_info *d, unsigned page)
{
	struct db *db = store_db(req->store);
	struct db_stmt *st =
	    web_prepare(req, resp, "SELECT count(*) FROM events WHERE device_id = ?");
	int64_t total = 0;
	if (st == NULL)
		return -1;
	db_bind_int64(st, 1, d->id);
	if (db_step(st) == DB_ROW)
		total = db_column_int64(st, 0);
	web_stmt_done(st);

	st = web_prepare(req, resp,
			 "SELECT log, sequence, code, occurred_utc, description, page_count, is_new"
			 " FROM event_log WHERE serial = ?1"
			 " ORDER BY occurred_utc DESC NULLS LAST, sequence DESC NULLS LAST, event_id DESC"
			 " LIMIT ?2 OFFSET ?3");
	if (st == NULL)
		return -1;
	db_bind_text(st, 1, d->serial, -1, DB_TRANSIENT);
	db_bind_int(st, 2, DEVICE_EVENTS_PAGE);
	db_bind_int64(st, 3, (int64_t)(page - 1) * DEVICE_EVENTS_PAGE);
	html(b, "<section class=\"card events\" id=\"events\"><h2>Event log</h2>");
	html(b, "<div class=\"table-wrap\"><table "
		"class=\"data\"><thead><tr><th>Time</th><th>Log</th><th>Code</th>"
		"<th>Description</th><th class=\"num\">Page count</th><th "
		"class=\"num\">Seq.</th></tr></thead><tbody>");
	int rc;
	unsigned n = 0;
	while ((rc = db_step(st)) == DB_ROW) {
		bool is_new = db_column_int(st, 6) != 0;
		const char *log = (const char *)db_column_text(st, 0);
		n++;
		html(b, "<tr class=\"%R%R\"><td>", is_new ? "new" : "",
		     log != NULL && strcmp(log, "info") != 0 ? " err" : "");
		html_time(b, req, (const char *)db_column_text(st, 3));
		if (is_new)
			html(b, " <span class=\"badge new\" title=\"first reported in the latest "
				"snapshot\">new</span>");
		html(b,
		     "</td><td><span class=\"log\">%s</span></td><td "
		     "class=\"code\">%s</td><td>%s</td>"
		     "<td class=\"num\">%N</td><td class=\"num muted\">%N</td></tr>",
		     log, (const char *)db_column_text(st, 2),
		     (const char *)db_column_text(st, 4), web_col_int(st, 5),
		     web_col_int(st, 1));
	}
	web_stmt_done(st);
	if (rc != DB_DONE) {
		web_respond_db_error(req, resp, db, "events");
		return -1;
	}
	if (n == 0)
		html(b, "<tr><td colspan=\"6\" class=\"empty\">No events.</td></tr>");
	html(b, "</tbody></table></div>");
	html_pager(b, req, "events_page", page,
		   (unsigned)((total + DEVICE_EVENTS_PAGE - 1) / DEVICE_EVENTS_PAGE),
		   (uint64_t)total, total == 1 ? "event" : "events");
	html(b, "</section>");
	return 0;
}

static int
render_snapshots(GString *b, struct web_request *req, struct web_response *resp,
		 const struct device_info *d, unsigned page)
{
	/* snapshot_list's rows, from the table by device id: by serial, through
	 * the view's join with devices, PostgreSQL sorted all of the device's
	 * snapshots for the page instead of reading the index backwards. */
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT id, taken_utc, taken_source, received_utc, clock_skew_s, firmware,"
	    " hostname, ip_address FROM snapshots WHERE device_id = ?1"
	    " ORDER BY taken_utc DESC LIMIT ?2 OFFSET ?3");
	if (st == NULL)
		return -1;
	db_bind_int64(st, 1, d->id);
	db_bind_int(st, 2, DEVICE_SNAPSHOTS_PAGE);
	db_bind_int64(st, 3, (int64_t)(page - 1) * DEVICE_SNAPSHOTS_PAGE);
	html(b, "<section class=\"card snapshots\" id=\"snapshots\"><h2>Snapshots received</h2>"
		"<div class=\"table-wrap\"><table "
		"class=\"data\"><thead><tr><th>Taken</th><th>Received</th>"
		"<th class=\"num\">Clock skew</th><th>Time "
		"from</th><th>Firmware</th><th>Host</th><th>IP address</th>"
		"</tr></thead><tbody>");
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t skew = db_column_int64(st, 4);
		html(b, "<tr><td><a href=\"/snapshots/%L\">", db_column_int64(st, 0));
		html_time(b, req, (const char *)db_column_text(st, 1));
		html(b, "</a></td><td>");
		html_time(b, req, (const char *)db_column_text(st, 3));
		html(b, "</td><td class=\"num%R\">", llabs(skew) > 600 ? " warn" : " muted");
		if (skew < 0)
			html(b, "\xe2\x88\x92");
		html_age(b, llabs(skew));
		html(b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
		     (const char *)db_column_text(st, 2),
		     (const char *)db_column_text(st, 5),
		     (const char *)db_column_text(st, 6),
		     (const char *)db_column_text(st, 7));
	}
	web_stmt_done(st);
	if (rc != DB_DONE) {
		web_respond_db_error(req, resp, store_db(req->store), "snapshots");
		return -1;
	}
	html(b, "</tbody></table></div>");
	html_pager(
	    b, req, "snapshots_page", page,
	    (unsigned)((d->snapshot_count + DEVICE_SNAPSHOTS_PAGE - 1) / DEVICE_SNAPSHOTS_PAGE),
	    (uint64_t)d->snapshot_count, d->snapshot_count == 1 ? "snapshot" : "snapshots");
	html(b, "</section>");
	return 0;
}

static int
render_regressions(GString *b, struct web_request *req, struct web_response *resp,
		   const struct device_info *d)
{
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT counter, previous_taken_utc, previous_value, taken_utc, value, snapshot_id"
	    " FROM counter_regressions WHERE serial = ? ORDER BY taken_utc DESC LIMIT 20");
	if (st == NULL)
		return -1;
	db_bind_text(st, 1, d->serial, -1, DB_TRANSIENT);
	int rc;
	unsigned n = 0;
	while ((rc = db_step(st)) == DB_ROW) {
		if (n++ == 0)
			html(b,
			     "<section class=\"card warnbox\"><h2>Counters that went backwards</h2>"
			     "<table class=\"data "
			     "compact\"><thead><tr><th>Counter</th><th>Before</th>"
			     "<th class=\"num\">Value</th><th>After</th><th "
			     "class=\"num\">Value</th></tr></thead><tbody>");
		html(b, "<tr><td>%s</td><td>", (const char *)db_column_text(st, 0));
		html_time(b, req, (const char *)db_column_text(st, 1));
		html(b, "</td><td class=\"num\">%N</td><td><a href=\"/snapshots/%L\">",
		     web_col_int(st, 2), db_column_int64(st, 5));
		html_time(b, req, (const char *)db_column_text(st, 3));
		html(b, "</a></td><td class=\"num bad\">%N</td></tr>", web_col_int(st, 4));
	}
	web_stmt_done(st);
	if (rc != DB_DONE) {
		web_respond_db_error(req, resp, store_db(req->store), "regressions");
		return -1;
	}
	if (n > 0)
		html(b, "</tbody></table></section>");
	return 0;
}

void
web_page_device(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"range", "period", "events_page", "snapshots_page",
					    NULL};
	struct device_info d;
	int range, period;
	unsigned events_page, snapshots_page;
	GPtrArray *supplies = NULL;
	struct counter_points cp = {0};
	char *error = NULL;
	GString *b = NULL;

	if (web_params_check(req, resp, known) < 0 ||
	    web_param_enum(req, resp, "range", ranges, 1, &range) < 0 ||
	    web_param_enum(req, resp, "period", periods, 0, &period) < 0 ||
	    web_param_uint(req, resp, "events_page", 1, 100000, 1, &events_page) < 0 ||
	    web_param_uint(req, resp, "snapshots_page", 1, 100000, 1, &snapshots_page) < 0)
		return;
	if (web_request_store(req, resp) == NULL)
		return;
	struct db *db = store_db(req->store);
	if (device_load(req, resp, req->seg[1], &d) <= 0)
		return;
	/* One read transaction: the page shows one state of the database. */
	db_exec(db, "BEGIN", NULL);

	int64_t last = web_utc_unix(d.last_snapshot);
	int64_t first = web_utc_unix(d.first_seen);
	int64_t until = MAX(last, first + 86400);
	int64_t since = range_days[range] > 0 ? until - range_days[range] * 86400 : first;
	if (since < first)
		since = first;
	enum web_interval interval;
	if (period == 0) {
		int64_t span = until - since;
		interval = span <= 62 * 86400	 ? WEB_INTERVAL_DAY
			   : span <= 550 * 86400 ? WEB_INTERVAL_WEEK
						 : WEB_INTERVAL_MONTH;
	} else {
		interval = (enum web_interval)period;
	}

	supplies = g_ptr_array_new_with_free_func(web_supply_free);
	if (web_supplies_current(req, db, d.id, supplies, &error) < 0) {
		log_warnx("web: event=supplies-failed error=\"%s\"", error);
		g_free(error);
		web_respond_db_error(req, resp, db, "supplies");
		goto out;
	}
	if (load_counters(req, resp, d.id, since, &cp) < 0)
		goto out;

	int64_t interval_s =
	    d.snapshot_count >= 2 && last > first ? (last - first) / (d.snapshot_count - 1) : 0;
	int64_t expect =
	    interval_s > 0 ? interval_s : (int64_t)req->config->s.overdue_default_hours * 3600;
	bool overdue =
	    last > 0 && (double)(req->now - last) > req->config->s.overdue_factor * (double)expect;
	double ppd = web_device_ppd(db, d.id, req->config->s.recent_days);
	const char *title = d.hostname != NULL ? d.hostname : d.serial;
	char *path = web_device_path(d.serial);

	b = g_string_sized_new(128 * 1024);
	html(b, "<nav class=\"crumbs\"><a href=\"/\">Fleet</a><span>%s</span></nav>", d.serial);
	html(b,
	     "<section class=\"page-head device\"><div><h1>%s</h1><p class=\"sub\">%s \xc2\xb7 %s",
	     title, d.model, d.serial);
	if (d.ip != NULL)
		html(b, " \xc2\xb7 %s", d.ip);
	html(b, "</p></div><div class=\"badges\">");
	if (overdue) {
		html(b, "<span class=\"badge warn big\">overdue: silent for ");
		html_age(b, req->now - last);
		html(b, "</span>");
	}
	for (guint i = 0; i < supplies->len; i++) {
		const struct web_supply *s = supplies->pdata[i];
		const char *cls = html_level_class(s->level, s->state, s->low_threshold);
		if (strcmp(cls, "lvl-ok") != 0 && strcmp(cls, "lvl-unknown") != 0) {
			char *name =
			    web_supply_name(s->key, s->color, s->description, s->type, false);
			html(b, "<span class=\"badge big %R\">%s %s</span>",
			     strcmp(cls, "lvl-out") == 0 ? "bad" : "warn", name,
			     strcmp(cls, "lvl-out") == 0 ? "out" : "low");
			g_free(name);
		}
	}
	html(b, "</div></section>");

	/* Key figures. */
	html(b,
	     "<section class=\"figures\"><div class=\"figure\"><span class=\"n\">%N</span>"
	     "<span class=\"l\">total pages</span></div>",
	     d.total);
	if (d.color != SNAPSHOT_ABSENT)
		html(b,
		     "<div class=\"figure\"><span class=\"n\">%N</span><span "
		     "class=\"l\">mono</span></div>"
		     "<div class=\"figure\"><span class=\"n\">%N</span><span "
		     "class=\"l\">colour</span></div>",
		     d.mono, d.color);
	html(b, "<div class=\"figure\"><span class=\"n\">");
	if (isnan(ppd))
		html(b, "\xe2\x80\x93");
	else
		html(b, "%N", (int64_t)llround(ppd));
	html(b, "</span><span class=\"l\">pages/day (last %u days)</span></div>",
	     req->config->s.recent_days);
	html(b, "<div class=\"figure\"><span class=\"n\">");
	html_age(b, req->now - last);
	html(b, "</span><span class=\"l\">since the last snapshot</span></div></section>");

	html(b, "<div class=\"grid2\"><section class=\"card identity\"><h2>Device</h2><dl>");
	dl_item(b, "Model", d.model);
	dl_item(b, "Product number", d.product_number);
	dl_item(b, "Serial number", d.serial);
	dl_item(b, "Host name", d.hostname);
	dl_item(b, "IP address", d.ip);
	dl_item(b, "MAC address", d.mac);
	dl_item(b, "Device UUID", d.uuid);
	html(b, "<dt>Firmware</dt><dd>%s%R%s%R</dd>", d.firmware,
	     d.firmware_date != NULL ? " <small>(" : "", d.firmware_date,
	     d.firmware_date != NULL ? ")</small>" : "");
	dl_item(b, "Locale", d.locale);
	dl_item(b, "Format", d.dialect);
	html(b, "<dt>First snapshot</dt><dd>");
	html_time(b, req, d.first_seen);
	html(b, "</dd><dt>Last snapshot</dt><dd>");
	html_time(b, req, d.last_snapshot);
	html(b, "</dd><dt>Snapshots</dt><dd>%N", d.snapshot_count);
	if (interval_s > 0) {
		html(b, " <small>(about every ");
		html_age(b, interval_s);
		html(b, ")</small>");
	}
	html(b,
	     "</dd></dl><p class=\"links\"><a href=\"/api/devices/%U\">JSON</a>"
	     "<a href=\"%s/counters.csv\">Counter history CSV</a></p></section>",
	     d.serial, path);
	render_supplies(b, req, supplies);
	html(b, "</div>");

	/* Charts with their range and period selectors. */
	html(b, "<section class=\"charts card\" id=\"charts\"><div "
		"class=\"chart-controls\"><span>Range</span>");
	static const char *const range_labels[] = {"90 days", "1 year", "2 years", "All"};
	for (int i = 0; ranges[i] != NULL; i++) {
		char *q = web_query_with(req, "range", i == 1 ? NULL : ranges[i], NULL);
		html(b, "<a href=\"%s#charts\"%R>%s</a>", q, i == range ? " class=\"on\"" : "",
		     range_labels[i]);
		g_free(q);
	}
	html(b, "<span>Per</span>");
	static const char *const period_labels[] = {"auto", "day", "week", "month"};
	for (int i = 0; periods[i] != NULL; i++) {
		char *q = web_query_with(req, "period", i == 0 ? NULL : periods[i], NULL);
		html(b, "<a href=\"%s#charts\"%R>%s</a>", q, i == period ? " class=\"on\"" : "",
		     period_labels[i]);
		g_free(q);
	}
	html(b, "</div>");
	chart_total(b, req, &cp, since, until);
	chart_periods(b, req, &cp, since, until, interval, d.color != SNAPSHOT_ABSENT);
	if (chart_supplies(b, req, resp, d.id, since, until, &cp) < 0)
		goto out_path;
	html(b, "</section>");

	if (render_regressions(b, req, resp, &d) < 0 ||
	    render_events(b, req, resp, &d, events_page) < 0 ||
	    render_snapshots(b, req, resp, &d, snapshots_page) < 0)
		goto out_path;
	html_page(req, resp, title, "fleet", b);
	b = NULL;
out_path:
	g_free(path);
out:
	db_exec(db, "COMMIT", NULL);
	if (b != NULL)
		g_string_free(b, TRUE);
	counter_points_clear(&cp);
	if (supplies != NULL)
		g_ptr_array_unref(supplies);
	device_info_clear(&d);
}
