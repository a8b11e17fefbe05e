/* api.c: JSON under /api/, encoded with json-glib (never by hand).
 *
 * Field names are those of the public views (device_status, supply_status,
 * supply_history, counter_history, event_log, snapshot_list), taken from
 * the column names of the query, plus a few derived fields named in
 * snake_case.  Unknown serial or snapshot: 404; a malformed or unknown
 * parameter: 400; both as {"error": "...", "status": N}.  Times are UTC
 * text as stored.  Answers are bounded: pages (per_page <= max_page_size)
 * and max_api_points rows for the series. */
#include "config.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

static void
respond_json(struct web_response *resp, JsonBuilder *b)
{
	JsonNode *root = json_builder_get_root(b);
	JsonGenerator *g = json_generator_new();
	json_generator_set_root(g, root);
	gsize len = 0;
	char *text = json_generator_to_data(g, &len);
	GString *body = g_string_new_len(text, (gssize)len);
	g_string_append_c(body, '\n');
	g_free(text);
	g_object_unref(g);
	json_node_unref(root);
	g_object_unref(b);
	web_respond(resp, 200, "application/json", body);
}

static void
add_string(JsonBuilder *b, const char *s)
{
	if (s == NULL) {
		json_builder_add_null_value(b);
		return;
	}
	if (g_utf8_validate(s, -1, NULL)) {
		json_builder_add_string_value(b, s);
	} else {
		char *v = g_utf8_make_valid(s, -1);
		json_builder_add_string_value(b, v);
		g_free(v);
	}
}

static void
member_str(JsonBuilder *b, const char *name, const char *v)
{
	json_builder_set_member_name(b, name);
	add_string(b, v);
}

static void
member_int(JsonBuilder *b, const char *name, int64_t v)
{
	json_builder_set_member_name(b, name);
	if (v == SNAPSHOT_ABSENT)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, v);
}

static void
member_double(JsonBuilder *b, const char *name, double v)
{
	json_builder_set_member_name(b, name);
	if (isnan(v) || isinf(v))
		json_builder_add_null_value(b);
	else
		json_builder_add_double_value(b, round(v * 100) / 100);
}

/* The current row's columns as members (call inside an object). */
static void
row_members(JsonBuilder *b, struct db_stmt *st)
{
	int n = db_column_count(st);
	for (int i = 0; i < n; i++) {
		json_builder_set_member_name(b, db_column_name(st, i));
		switch (db_column_type(st, i)) {
		case DB_INTEGER:
			json_builder_add_int_value(b, db_column_int64(st, i));
			break;
		case DB_FLOAT:
			json_builder_add_double_value(b, db_column_double(st, i));
			break;
		case DB_TEXT:
			add_string(b, (const char *)db_column_text(st, i));
			break;
		default:
			json_builder_add_null_value(b);
			break;
		}
	}
}

/* Runs st (bound) and adds every row as an object to the open array.
 * Returns rows added or -1 (500 sent). */
static int64_t
rows_array(struct web_request *req, struct web_response *resp, struct db_stmt *st, JsonBuilder *b)
{
	int rc;
	int64_t n = 0;
	while ((rc = db_step(st)) == DB_ROW) {
		json_builder_begin_object(b);
		row_members(b, st);
		json_builder_end_object(b);
		n++;
	}
	if (rc != DB_DONE) {
		web_respond_db_error(req, resp, store_db(req->store), "rows");
		return -1;
	}
	return n;
}

static void
fleet_members(JsonBuilder *b, struct web_request *req, const struct web_fleet_row *r)
{
	member_double(b, "pages_per_day", r->pages_per_day);
	member_int(b, "sending_interval_s", r->interval_s > 0 ? r->interval_s : SNAPSHOT_ABSENT);
	json_builder_set_member_name(b, "overdue");
	json_builder_add_boolean_value(b, web_fleet_row_overdue(req, r));
	json_builder_set_member_name(b, "lowest_supply");
	if (r->low_supply == NULL) {
		json_builder_add_null_value(b);
	} else {
		json_builder_begin_object(b);
		member_str(b, "supply", r->low_supply);
		member_str(b, "color", r->low_supply_color);
		member_int(b, "level_percent", r->low_supply_level);
		member_str(b, "state", r->low_supply_state);
		json_builder_end_object(b);
	}
	member_int(b, "recent_errors", r->recent_errors);
}

void
web_api_index(struct web_request *req, struct web_response *resp)
{
	static const char *const endpoints[] = {
	    "/api/devices",
	    "/api/devices/{serial}",
	    "/api/devices/{serial}/counters",
	    "/api/devices/{serial}/supplies",
	    "/api/devices/{serial}/events",
	    "/api/devices/{serial}/snapshots",
	    "/api/snapshots/{id}",
	    "/api/snapshots/{id}/xml",
	    "/api/meter-reads",
	    NULL,
	};
	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	member_str(b, "name", "snapkeep");
	member_str(b, "version", PACKAGE_VERSION);
	json_builder_set_member_name(b, "endpoints");
	json_builder_begin_array(b);
	for (int i = 0; endpoints[i] != NULL; i++)
		json_builder_add_string_value(b, endpoints[i]);
	json_builder_end_array(b);
	json_builder_end_object(b);
	respond_json(resp, b);
}

void
web_api_devices(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"q",     "model", "state",	  "sort",
					    "order", "page",  "per_page", NULL};
	struct web_fleet_query q;
	struct web_fleet *fleet = NULL;
	char *error = NULL;
	unsigned total = 0;

	if (web_params_check(req, resp, known) < 0 || web_fleet_query_parse(req, resp, &q) < 0 ||
	    web_request_store(req, resp) == NULL)
		return;
	if (web_fleet_get(req, &fleet, &error) < 0) {
		log_warnx("web: event=fleet-failed error=\"%s\"", error);
		g_free(error);
		web_respond_db_error(req, resp, store_db(req->store), "the fleet");
		return;
	}
	GPtrArray *rows = web_fleet_select(req, fleet, &q, &total);
	struct db_stmt *st =
	    web_prepare(req, resp, "SELECT * FROM device_status WHERE device_id = ?");
	if (st == NULL)
		goto out;
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	member_int(b, "total", total);
	member_int(b, "page", q.page);
	member_int(b, "per_page", q.per_page);
	json_builder_set_member_name(b, "devices");
	json_builder_begin_array(b);
	for (guint i = 0; i < rows->len; i++) {
		const struct web_fleet_row *r = rows->pdata[i];
		json_builder_begin_object(b);
		db_bind_int64(st, 1, r->device_id);
		if (db_step(st) == DB_ROW)
			row_members(b, st);
		db_reset(st);
		fleet_members(b, req, r);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	web_stmt_done(st);
	respond_json(resp, b);
out:
	g_ptr_array_unref(rows);
	web_fleet_unref(&fleet);
}

/* The device of /api/devices/SERIAL/...: its id, or -1 with 404/500 sent. */
static int64_t
api_device(struct web_request *req, struct web_response *resp)
{
	int64_t id = -1;
	char *error = NULL;
	if (web_request_store(req, resp) == NULL)
		return -1;
	int r = web_device_lookup(store_db(req->store), req->seg[2], &id, &error);
	if (r < 0) {
		log_warnx("web: event=db-error error=\"%s\"", error);
		g_free(error);
		web_respond_db_error(req, resp, store_db(req->store), "the device");
		return -1;
	}
	if (r == 0) {
		web_respond_error(req, resp, 404, "no device with serial %s", req->seg[2]);
		return -1;
	}
	return id;
}

static void
supplies_array(JsonBuilder *b, GPtrArray *supplies)
{
	json_builder_begin_array(b);
	for (guint i = 0; i < supplies->len; i++) {
		const struct web_supply *s = supplies->pdata[i];
		json_builder_begin_object(b);
		member_str(b, "supply", s->key);
		member_str(b, "type", s->type);
		member_str(b, "color", s->color);
		member_int(b, "level_percent", s->level);
		member_str(b, "state", s->state);
		member_int(b, "low_threshold", s->low_threshold);
		member_str(b, "supply_serial", s->serial);
		member_str(b, "installed_date", s->installed_date);
		member_str(b, "reported_utc", s->reported_utc);
		member_str(b, "label", s->label);
		member_str(b, "description", s->description);
		member_str(b, "product_number", s->product_number);
		member_str(b, "brand", s->brand);
		member_int(b, "pages", s->pages);
		member_int(b, "supply_id", s->supply_id);
		member_double(b, "level_per_day", s->per_day);
		member_double(b, "days_left", s->days_left);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
}

void
web_api_device(struct web_request *req, struct web_response *resp)
{
	char *error = NULL;
	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	if (web_request_store(req, resp) == NULL)
		return;
	struct db *db = store_db(req->store);
	struct db_stmt *st = web_prepare(req, resp, "SELECT * FROM device_status WHERE serial = ?");
	if (st == NULL)
		return;
	db_bind_text(st, 1, req->seg[2], -1, DB_TRANSIENT);
	if (db_step(st) != DB_ROW) {
		web_stmt_done(st);
		web_respond_error(req, resp, 404, "no device with serial %s", req->seg[2]);
		return;
	}
	int64_t id = -1, first = 0, last = 0, count = 0;
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	row_members(b, st);
	for (int i = 0; i < db_column_count(st); i++) {
		const char *n = db_column_name(st, i);
		if (strcmp(n, "device_id") == 0)
			id = db_column_int64(st, i);
		else if (strcmp(n, "first_seen_utc") == 0)
			first = web_utc_unix((const char *)db_column_text(st, i));
		else if (strcmp(n, "last_snapshot_utc") == 0)
			last = web_utc_unix((const char *)db_column_text(st, i));
		else if (strcmp(n, "snapshot_count") == 0)
			count = db_column_int64(st, i);
	}
	web_stmt_done(st);

	struct web_fleet_row r = {0};
	r.device_id = id;
	r.last_unix = last;
	r.first_unix = first;
	r.snapshot_count = count;
	if (count >= 2 && last > first)
		r.interval_s = (last - first) / (count - 1);
	r.pages_per_day = web_device_ppd(db, id, req->config->s.recent_days);
	member_double(b, "pages_per_day", r.pages_per_day);
	member_int(b, "sending_interval_s", r.interval_s > 0 ? r.interval_s : SNAPSHOT_ABSENT);
	json_builder_set_member_name(b, "overdue");
	json_builder_add_boolean_value(b, web_fleet_row_overdue(req, &r));

	GPtrArray *supplies = g_ptr_array_new_with_free_func(web_supply_free);
	if (web_supplies_current(req, db, id, supplies, &error) < 0) {
		log_warnx("web: event=supplies-failed error=\"%s\"", error);
		g_free(error);
		g_ptr_array_unref(supplies);
		g_object_unref(b);
		web_respond_db_error(req, resp, db, "supplies");
		return;
	}
	json_builder_set_member_name(b, "supplies");
	supplies_array(b, supplies);
	g_ptr_array_unref(supplies);
	json_builder_end_object(b);
	respond_json(resp, b);
}

/* from/to as UTC text; defaults: all time. */
static int
range_params(struct web_request *req, struct web_response *resp, char from_r[SK_UTC_SIZE],
	     char to_r[SK_UTC_SIZE])
{
	int64_t from = 0, to = (int64_t)253402300799; /* 9999-12-31T23:59:59Z */
	if (web_param_time(req, resp, "from", false, &from) < 0 ||
	    web_param_time(req, resp, "to", true, &to) < 0)
		return -1;
	if (to <= from) {
		web_respond_error(req, resp, 400, "'to' must be after 'from'");
		return -1;
	}
	sk_time_format_utc(from, from_r);
	sk_time_format_utc(to, to_r);
	return 0;
}

/* One counter of a point of /api/devices/SERIAL/counters. */
struct api_counter {
	const char *name; /* in the request's name table */
	int64_t value;
	double real;      /* NAN: value is exact */
};

static gint
api_counter_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(((const struct api_counter *)a)->name, ((const struct api_counter *)b)->name);
}

/* Adds the counter names not yet in names (id -> g_strdup'd name; those
 * in it stay, as do pointers to them): all of counter_names, a few dozen
 * rows.  0, or -1 if the query failed (nothing sent). */
static int
api_counter_names(struct db *db, GHashTable *names)
{
	struct db_stmt *st = NULL;
	int rc;
	if (db_prepare(db, "SELECT id, name FROM counter_names", &st) != DB_OK)
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t id = db_column_int64(st, 0);
		if (g_hash_table_contains(names, &id))
			continue;
		int64_t *key = g_new(int64_t, 1);
		*key = id;
		g_hash_table_insert(names, key, g_strdup((const char *)db_column_text(st, 1)));
	}
	db_finalize(st);
	return rc == DB_DONE ? 0 : -1;
}

/* The device's counters, by snapshot time; each point's counters in name
 * order (bytes, as ORDER BY name on both engines).  The names come from
 * counter_names, read once, not joined: with the name in the join (and
 * the counter filter on it) PostgreSQL's generic plan for the prepared
 * statement scanned the device's snapshots once per counter name (7-8 ms
 * for a year of one device's daily snapshots, 3 ms this way). */
void
web_api_counters(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"from", "to", "interval", "counter", NULL};
	char from[SK_UTC_SIZE], to[SK_UTC_SIZE];
	int interval;
	const char *counter = web_param(req, "counter");
	GTimeZone *utc = NULL;

	if (web_params_check(req, resp, known) < 0 || range_params(req, resp, from, to) < 0 ||
	    web_param_enum(req, resp, "interval", web_interval_names, WEB_INTERVAL_SNAPSHOT,
			   &interval) < 0)
		return;
	if (counter != NULL && strlen(counter) > 128) {
		web_respond_error(req, resp, 400, "parameter counter: at most 128 bytes");
		return;
	}
	int64_t id = api_device(req, resp);
	if (id < 0)
		return;
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT s.id, s.taken_utc, c.name_id, c.value, c.value_real FROM snapshots s"
	    " JOIN counters c ON c.snapshot_id = s.id"
	    " WHERE s.device_id = ?1 AND s.taken_utc >= ?2 AND s.taken_utc < ?3"
	    "  AND (CAST(?4 AS TEXT) IS NULL"
	    "   OR c.name_id = (SELECT n.id FROM counter_names n WHERE n.name = ?4))"
	    " ORDER BY s.taken_utc");
	if (st == NULL)
		return;
	db_bind_int64(st, 1, id);
	db_bind_text(st, 2, from, -1, DB_TRANSIENT);
	db_bind_text(st, 3, to, -1, DB_TRANSIENT);
	if (counter != NULL)
		db_bind_text(st, 4, counter, -1, DB_TRANSIENT);

	/* Each point is the last snapshot of its interval (UTC buckets). */
	utc = g_time_zone_new_utc();
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	member_str(b, "serial", req->seg[2]);
	member_str(b, "interval", web_interval_names[interval]);
	member_str(b, "from", web_param(req, "from"));
	member_str(b, "to", web_param(req, "to"));
	json_builder_set_member_name(b, "points");
	json_builder_begin_array(b);

	/* Read after the first row, so that every name the rows use is in it
	 * (a counter's name is committed before or with its first row); read
	 * again should one be missing all the same. */
	GHashTable *names = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	struct point {
		int64_t snap, bucket;
		char *taken;
		GArray *counters; /* struct api_counter */
	} cur = {0};
	uint64_t points = 0;
	bool too_many = false, names_failed = false;
	int rc;
#define FLUSH()                                                                                    \
	do {                                                                                       \
		if (cur.taken != NULL) {                                                           \
			g_array_sort(cur.counters, api_counter_cmp);                               \
			json_builder_begin_object(b);                                              \
			member_str(b, "taken_utc", cur.taken);                                     \
			member_int(b, "snapshot_id", cur.snap);                                    \
			json_builder_set_member_name(b, "counters");                               \
			json_builder_begin_object(b);                                              \
			for (guint k = 0; k < cur.counters->len; k++) {                            \
				const struct api_counter *ac =                                     \
				    &g_array_index(cur.counters, struct api_counter, k);           \
				json_builder_set_member_name(b, ac->name);                         \
				if (!isnan(ac->real))                                              \
					json_builder_add_double_value(b, ac->real);                \
				else                                                               \
					json_builder_add_int_value(b, ac->value);                  \
			}                                                                          \
			json_builder_end_object(b);                                                \
			json_builder_end_object(b);                                                \
			points++;                                                                  \
			g_free(cur.taken);                                                         \
			cur.taken = NULL;                                                          \
			g_array_set_size(cur.counters, 0);                                         \
		}                                                                                  \
	} while (0)
	cur.counters = g_array_new(FALSE, FALSE, sizeof(struct api_counter));
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t snap = db_column_int64(st, 0);
		const char *taken = (const char *)db_column_text(st, 1);
		if (snap != cur.snap || cur.taken == NULL) {
			int64_t bucket = web_bucket_start(utc, interval, web_utc_unix(taken));
			if (cur.taken != NULL &&
			    (interval == WEB_INTERVAL_SNAPSHOT || bucket != cur.bucket))
				FLUSH();
			if (points >= req->config->s.max_api_points) {
				too_many = true;
				break;
			}
			/* Same bucket: a later snapshot replaces the earlier one. */
			g_free(cur.taken);
			cur.taken = g_strdup(taken);
			cur.snap = snap;
			cur.bucket = bucket;
			g_array_set_size(cur.counters, 0);
		}
		int64_t name_id = db_column_int64(st, 2);
		struct api_counter ac = {
		    g_hash_table_lookup(names, &name_id), db_column_int64(st, 3),
		    db_column_type(st, 4) == DB_NULL ? NAN : db_column_double(st, 4)};
		if (ac.name == NULL) {
			if (api_counter_names(store_db(req->store), names) < 0) {
				names_failed = true;
				break;
			}
			ac.name = g_hash_table_lookup(names, &name_id);
		}
		if (ac.name != NULL)
			g_array_append_val(cur.counters, ac);
	}
	if (!too_many && !names_failed && rc == DB_DONE)
		FLUSH();
#undef FLUSH
	web_stmt_done(st);
	g_free(cur.taken);
	g_array_unref(cur.counters);
	g_hash_table_destroy(names);
	g_time_zone_unref(utc);
	if (too_many) {
		g_object_unref(b);
		web_respond_error(req, resp, 400,
				  "more than %u points: narrow from/to or choose a longer interval",
				  req->config->s.max_api_points);
		return;
	}
	if (names_failed || (rc != DB_ROW && rc != DB_DONE)) {
		g_object_unref(b);
		web_respond_db_error(req, resp, store_db(req->store), "counters");
		return;
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	respond_json(resp, b);
}

void
web_api_supplies(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"from", "to", NULL};
	char from[SK_UTC_SIZE], to[SK_UTC_SIZE];
	char *error = NULL;
	if (web_params_check(req, resp, known) < 0 || range_params(req, resp, from, to) < 0)
		return;
	int64_t id = api_device(req, resp);
	if (id < 0)
		return;
	struct db *db = store_db(req->store);
	GPtrArray *supplies = g_ptr_array_new_with_free_func(web_supply_free);
	if (web_supplies_current(req, db, id, supplies, &error) < 0) {
		log_warnx("web: event=supplies-failed error=\"%s\"", error);
		g_free(error);
		g_ptr_array_unref(supplies);
		web_respond_db_error(req, resp, db, "supplies");
		return;
	}
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT * FROM supply_history WHERE serial = ?1 AND taken_utc >= ?2 AND taken_utc < ?3"
	    " ORDER BY supply, taken_utc LIMIT ?4");
	if (st == NULL) {
		g_ptr_array_unref(supplies);
		return;
	}
	db_bind_text(st, 1, req->seg[2], -1, DB_TRANSIENT);
	db_bind_text(st, 2, from, -1, DB_TRANSIENT);
	db_bind_text(st, 3, to, -1, DB_TRANSIENT);
	db_bind_int64(st, 4, (int64_t)req->config->s.max_api_points + 1);
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	member_str(b, "serial", req->seg[2]);
	json_builder_set_member_name(b, "supplies");
	supplies_array(b, supplies);
	g_ptr_array_unref(supplies);
	json_builder_set_member_name(b, "history");
	json_builder_begin_array(b);
	int64_t n = rows_array(req, resp, st, b);
	web_stmt_done(st);
	if (n < 0) {
		g_object_unref(b);
		return;
	}
	if (n > req->config->s.max_api_points) {
		g_object_unref(b);
		web_respond_error(req, resp, 400, "more than %u history rows: narrow from/to",
				  req->config->s.max_api_points);
		return;
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	respond_json(resp, b);
}

void
web_api_events(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"from", "to", "log", "new", "page", "per_page", NULL};
	char from[SK_UTC_SIZE], to[SK_UTC_SIZE];
	unsigned page, per_page, is_new;
	const char *log = web_param(req, "log");
	if (web_params_check(req, resp, known) < 0 || range_params(req, resp, from, to) < 0 ||
	    web_param_uint(req, resp, "new", 0, 1, 0, &is_new) < 0 ||
	    web_param_uint(req, resp, "page", 1, 1000000, 1, &page) < 0 ||
	    web_param_uint(req, resp, "per_page", 1, req->config->s.max_page_size,
			   req->config->s.page_size, &per_page) < 0)
		return;
	if (log != NULL && strlen(log) > 64) {
		web_respond_error(req, resp, 400, "parameter log: at most 64 bytes");
		return;
	}
	if (api_device(req, resp) < 0)
		return;
	static const char *const where =
	    " FROM event_log WHERE serial = ?1 AND COALESCE(occurred_utc, first_reported_utc) >= ?2"
	    " AND COALESCE(occurred_utc, first_reported_utc) < ?3 AND (CAST(?4 AS TEXT) IS NULL OR log = ?4)"
	    " AND (?5 = 0 OR is_new = 1)";
	char *count_sql = g_strconcat("SELECT count(*)", where, NULL);
	char *rows_sql =
	    g_strconcat("SELECT *", where,
			" ORDER BY occurred_utc DESC NULLS LAST, sequence DESC NULLS LAST, event_id DESC"
			" LIMIT ?6 OFFSET ?7", NULL);
	struct db_stmt *cs = web_prepare(req, resp, count_sql);
	struct db_stmt *st = cs != NULL ? web_prepare(req, resp, rows_sql) : NULL;
	g_free(count_sql);
	g_free(rows_sql);
	if (st == NULL) {
		web_stmt_done(cs);
		return;
	}
	struct db_stmt *both[2] = {cs, st};
	for (int k = 0; k < 2; k++) {
		db_bind_text(both[k], 1, req->seg[2], -1, DB_TRANSIENT);
		db_bind_text(both[k], 2, from, -1, DB_TRANSIENT);
		db_bind_text(both[k], 3, to, -1, DB_TRANSIENT);
		if (log != NULL)
			db_bind_text(both[k], 4, log, -1, DB_TRANSIENT);
		db_bind_int(both[k], 5, (int)is_new);
	}
	db_bind_int(st, 6, (int)per_page);
	db_bind_int64(st, 7, (int64_t)(page - 1) * per_page);
	int64_t total = db_step(cs) == DB_ROW ? db_column_int64(cs, 0) : 0;
	web_stmt_done(cs);
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	member_str(b, "serial", req->seg[2]);
	member_int(b, "total", total);
	member_int(b, "page", page);
	member_int(b, "per_page", per_page);
	json_builder_set_member_name(b, "events");
	json_builder_begin_array(b);
	int64_t n = rows_array(req, resp, st, b);
	web_stmt_done(st);
	if (n < 0) {
		g_object_unref(b);
		return;
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	respond_json(resp, b);
}

void
web_api_snapshots(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"from", "to", "page", "per_page", NULL};
	char from[SK_UTC_SIZE], to[SK_UTC_SIZE];
	unsigned page, per_page;
	if (web_params_check(req, resp, known) < 0 || range_params(req, resp, from, to) < 0 ||
	    web_param_uint(req, resp, "page", 1, 1000000, 1, &page) < 0 ||
	    web_param_uint(req, resp, "per_page", 1, req->config->s.max_page_size,
			   req->config->s.page_size, &per_page) < 0)
		return;
	if (api_device(req, resp) < 0)
		return;
	struct db_stmt *cs = web_prepare(req, resp,
				       "SELECT count(*) FROM snapshot_list WHERE serial = ?1 AND "
				       "taken_utc >= ?2 AND taken_utc < ?3");
	struct db_stmt *st = cs != NULL ? web_prepare(req, resp,
						    "SELECT * FROM snapshot_list WHERE serial = ?1 "
						    "AND taken_utc >= ?2 AND taken_utc < ?3"
						    " ORDER BY taken_utc DESC LIMIT ?4 OFFSET ?5")
				      : NULL;
	if (st == NULL) {
		web_stmt_done(cs);
		return;
	}
	struct db_stmt *both[2] = {cs, st};
	for (int k = 0; k < 2; k++) {
		db_bind_text(both[k], 1, req->seg[2], -1, DB_TRANSIENT);
		db_bind_text(both[k], 2, from, -1, DB_TRANSIENT);
		db_bind_text(both[k], 3, to, -1, DB_TRANSIENT);
	}
	db_bind_int(st, 4, (int)per_page);
	db_bind_int64(st, 5, (int64_t)(page - 1) * per_page);
	int64_t total = db_step(cs) == DB_ROW ? db_column_int64(cs, 0) : 0;
	web_stmt_done(cs);
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	member_str(b, "serial", req->seg[2]);
	member_int(b, "total", total);
	member_int(b, "page", page);
	member_int(b, "per_page", per_page);
	json_builder_set_member_name(b, "snapshots");
	json_builder_begin_array(b);
	int64_t n = rows_array(req, resp, st, b);
	web_stmt_done(st);
	if (n < 0) {
		g_object_unref(b);
		return;
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	respond_json(resp, b);
}

/* The snapshot_list row of /api/snapshots/ID; message id or -1 (sent). */
static int64_t
api_snapshot(struct web_request *req, struct web_response *resp, JsonBuilder *b)
{
	guint64 id;
	int64_t message_id = -1;
	if (!g_ascii_string_to_unsigned(req->seg[2], 10, 1, G_MAXINT64, &id, NULL)) {
		web_respond_error(req, resp, 404, "snapshots are numbered: no snapshot '%s'",
				  req->seg[2]);
		return -1;
	}
	if (web_request_store(req, resp) == NULL)
		return -1;
	struct db_stmt *st =
	    web_prepare(req, resp, "SELECT * FROM snapshot_list WHERE snapshot_id = ?");
	if (st == NULL)
		return -1;
	db_bind_int64(st, 1, (int64_t)id);
	if (db_step(st) == DB_ROW) {
		for (int i = 0; i < db_column_count(st); i++)
			if (strcmp(db_column_name(st, i), "message_id") == 0)
				message_id = db_column_int64(st, i);
		if (b != NULL)
			row_members(b, st);
	}
	web_stmt_done(st);
	if (message_id < 0)
		web_respond_error(req, resp, 404, "no snapshot #%" G_GUINT64_FORMAT, id);
	return message_id;
}

void
web_api_snapshot(struct web_request *req, struct web_response *resp)
{
	struct web_snapdoc doc;
	char *error = NULL;
	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	int64_t message_id = api_snapshot(req, resp, b);
	if (message_id < 0) {
		g_object_unref(b);
		return;
	}
	if (web_snapdoc_load(req->store, message_id, true, &doc, &error) < 0) {
		log_warnx("web: event=snapshot-load-failed message=%" G_GINT64_FORMAT
			  " error=\"%s\"",
			  message_id, error);
		g_free(error);
		g_object_unref(b);
		web_respond_error(req, resp, 500, "the archived message cannot be read");
		return;
	}
	json_builder_set_member_name(b, "document");
	if (doc.snap != NULL) {
		char *text = snapshot_to_json(doc.snap);
		JsonNode *node = json_from_string(text, NULL);
		g_free(text);
		if (node != NULL)
			json_builder_add_value(b, node);
		else
			json_builder_add_null_value(b);
	} else {
		json_builder_add_null_value(b);
	}
	member_str(b, "document_error", doc.parse_error);
	web_snapdoc_clear(&doc);
	json_builder_end_object(b);
	respond_json(resp, b);
}

void
web_api_snapshot_xml(struct web_request *req, struct web_response *resp)
{
	struct web_snapdoc doc;
	char *error = NULL;
	unsigned pretty;
	if (web_params_check(req, resp, (const char *const[]){"pretty", NULL}) < 0 ||
	    web_param_uint(req, resp, "pretty", 0, 1, 0, &pretty) < 0)
		return;
	int64_t message_id = api_snapshot(req, resp, NULL);
	if (message_id < 0)
		return;
	if (web_snapdoc_load(req->store, message_id, false, &doc, &error) < 0) {
		log_warnx("web: event=snapshot-load-failed message=%" G_GINT64_FORMAT
			  " error=\"%s\"",
			  message_id, error);
		g_free(error);
		web_respond_error(req, resp, 500, "the archived message cannot be read");
		return;
	}
	if (doc.xml == NULL) {
		web_respond_error(req, resp, 404, "this message has no Device.xml: %s",
				  doc.parse_error);
		web_snapdoc_clear(&doc);
		return;
	}
	if (pretty) {
		size_t len = 0;
		char *text = web_xml_pretty(doc.xml, &len, &error);
		if (text == NULL) {
			web_respond_error(req, resp, 500, "%s", error);
			g_free(error);
			web_snapdoc_clear(&doc);
			return;
		}
		web_respond_bytes(resp, 200, "application/xml; charset=utf-8",
				  g_bytes_new_take(text, len));
	} else {
		web_respond_bytes(resp, 200, "application/xml", g_bytes_ref(doc.xml));
	}
	/* Device content: never let a browser run anything in it. */
	resp->sandbox = true;
	char *disp = g_strdup_printf("inline; filename=\"snapshot-%s.xml\"", req->seg[2]);
	web_header_add(resp, "Content-Disposition", disp);
	g_free(disp);
	web_snapdoc_clear(&doc);
}

void
web_api_meter_reads(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"start", "end", "counter", "serial", NULL};
	int64_t start = -1, end = -1;
	char *error = NULL;
	if (web_params_check(req, resp, known) < 0 ||
	    web_param_time(req, resp, "start", false, &start) < 0 ||
	    web_param_time(req, resp, "end", true, &end) < 0)
		return;
	if (start < 0 || end < 0 || end <= start) {
		web_respond_error(req, resp, 400,
				  "want start and end dates (YYYY-MM-DD), end not before start");
		return;
	}
	if (web_request_store(req, resp) == NULL)
		return;
	GPtrArray *reads = g_ptr_array_new_with_free_func(web_meter_read_free);
	if (web_meter_reads(store_db(req->store), start, end, web_param(req, "counter"),
			    web_param(req, "serial"), reads, &error) < 0) {
		log_warnx("web: event=meter-reads-failed error=\"%s\"", error);
		g_free(error);
		g_ptr_array_unref(reads);
		web_respond_db_error(req, resp, store_db(req->store), "meter reads");
		return;
	}
	char s0[SK_UTC_SIZE], s1[SK_UTC_SIZE];
	sk_time_format_utc(start, s0);
	sk_time_format_utc(end, s1);
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	member_str(b, "period_start_utc", s0);
	member_str(b, "period_end_utc", s1);
	json_builder_set_member_name(b, "reads");
	json_builder_begin_array(b);
	for (guint i = 0; i < reads->len; i++) {
		const struct web_meter_read *m = reads->pdata[i];
		json_builder_begin_object(b);
		member_str(b, "serial", m->serial);
		member_str(b, "model", m->model);
		member_str(b, "hostname", m->hostname);
		member_str(b, "counter", m->counter);
		member_str(b, "start_taken_utc", m->start_utc);
		member_int(b, "start_snapshot_id", m->start_snapshot_id);
		member_int(b, "start_value", m->start_value);
		member_str(b, "end_taken_utc", m->end_utc);
		member_int(b, "end_snapshot_id", m->end_snapshot_id);
		member_int(b, "end_value", m->end_value);
		member_int(b, "difference",
			   m->start_value == SNAPSHOT_ABSENT ? SNAPSHOT_ABSENT
							     : m->end_value - m->start_value);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	g_ptr_array_unref(reads);
	respond_json(resp, b);
}
