/* export.c: CSV exports and raw message downloads.
 *
 * CSV (RFC 4180: CRLF, fields quoted when needed, quotes doubled).  A text
 * cell that a spreadsheet would read as a formula (= + - @ tab CR at the
 * start) gets a leading apostrophe: device strings are not trusted.
 *   /devices/SERIAL/counters.csv  one row per snapshot (or per interval:
 *       the last snapshot of each), one column per counter
 *   /export/meter-reads.csv       per device and counter: the reading at
 *       the period start (latest snapshot at or before it, else the first
 *       in the period), at the end (latest before it) and the difference;
 *       default period: the previous calendar month (UTC)
 * Raw messages are returned byte-exact from the archive as attachments,
 * with a sandboxing CSP. */
#include "config.h"

#include <string.h>

#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

static void
csv_text(GString *out, const char *s)
{
	if (s == NULL)
		return;
	char *v = web_text_clean(s);
	bool formula = v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t';
	bool quote = formula || strpbrk(v, ",\"\r\n") != NULL || v[0] == ' ';
	if (quote)
		g_string_append_c(out, '"');
	if (formula)
		g_string_append_c(out, '\'');
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '"')
			g_string_append_c(out, '"');
		g_string_append_c(out, *p);
	}
	if (quote)
		g_string_append_c(out, '"');
	g_free(v);
}

static void
csv_int(GString *out, int64_t v)
{
	if (v != SNAPSHOT_ABSENT)
		g_string_append_printf(out, "%" G_GINT64_FORMAT, v);
}

static void
respond_csv(struct web_response *resp, GString *body, const char *filename)
{
	web_respond(resp, 200, "text/csv; charset=utf-8; header=present", body);
	char *disp = g_strdup_printf("attachment; filename=\"%s\"", filename);
	web_header_add(resp, "Content-Disposition", disp);
	g_free(disp);
}

/* A file-name-safe version of a serial. */
static char *
safe_name(const char *s)
{
	char *r = g_strdup(s);
	for (char *p = r; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
			*p = '_';
	return r;
}

struct csv_point {
	int64_t snapshot_id;
	char *taken;
	GHashTable *values; /* name -> int64 as string */
};

static void
csv_point_free(gpointer p)
{
	struct csv_point *c = p;
	g_free(c->taken);
	g_hash_table_destroy(c->values);
	g_free(c);
}

void
web_csv_counters(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"from", "to", "interval", NULL};
	int64_t from = 0, to = (int64_t)253402300799;
	int interval;
	int64_t device_id;
	char *error = NULL;

	if (web_params_check(req, resp, known) < 0 ||
	    web_param_time(req, resp, "from", false, &from) < 0 ||
	    web_param_time(req, resp, "to", true, &to) < 0 ||
	    web_param_enum(req, resp, "interval", web_interval_names, WEB_INTERVAL_SNAPSHOT,
			   &interval) < 0)
		return;
	if (to <= from) {
		web_respond_error(req, resp, 400, "'to' must be after 'from'");
		return;
	}
	if (web_request_store(req, resp) == NULL)
		return;
	int r = web_device_lookup(store_db(req->store), req->seg[1], &device_id, &error);
	if (r <= 0) {
		if (r < 0) {
			log_warnx("web: event=db-error error=\"%s\"", error);
			g_free(error);
			web_respond_db_error(req, resp, store_db(req->store), "the device");
		} else {
			web_respond_error(req, resp, 404, "no device with serial %s", req->seg[1]);
		}
		return;
	}
	char f[SK_UTC_SIZE], t[SK_UTC_SIZE];
	sk_time_format_utc(from, f);
	sk_time_format_utc(to, t);
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT s.id, s.taken_utc, n.name, c.value, c.value_real FROM snapshots s"
	    " JOIN counters c ON c.snapshot_id = s.id JOIN counter_names n ON n.id = c.name_id"
	    " WHERE s.device_id = ?1 AND s.taken_utc >= ?2 AND s.taken_utc < ?3"
	    " ORDER BY s.taken_utc");
	if (st == NULL)
		return;
	db_bind_int64(st, 1, device_id);
	db_bind_text(st, 2, f, -1, DB_TRANSIENT);
	db_bind_text(st, 3, t, -1, DB_TRANSIENT);

	GTimeZone *utc = g_time_zone_new_utc();
	GPtrArray *points = g_ptr_array_new_with_free_func(csv_point_free);
	GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	struct csv_point *cur = NULL;
	int64_t cur_bucket = 0;
	int rc;
	bool too_many = false;
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t sid = db_column_int64(st, 0);
		const char *taken = (const char *)db_column_text(st, 1);
		if (cur == NULL || cur->snapshot_id != sid) {
			int64_t bucket = web_bucket_start(utc, interval, web_utc_unix(taken));
			if (cur != NULL && interval != WEB_INTERVAL_SNAPSHOT &&
			    bucket == cur_bucket) {
				/* A later snapshot in the same interval replaces it. */
				g_hash_table_remove_all(cur->values);
			} else {
				if (points->len >= req->config->s.max_api_points) {
					too_many = true;
					break;
				}
				cur = g_new0(struct csv_point, 1);
				cur->values =
				    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
				g_ptr_array_add(points, cur);
			}
			cur->snapshot_id = sid;
			g_free(cur->taken);
			cur->taken = g_strdup(taken);
			cur_bucket = bucket;
		}
		const char *name = (const char *)db_column_text(st, 2);
		char *v = db_column_type(st, 4) != DB_NULL
			      ? g_strdup_printf("%.17g", db_column_double(st, 4))
			      : g_strdup_printf("%" G_GINT64_FORMAT,
						(int64_t)db_column_int64(st, 3));
		g_hash_table_replace(cur->values, g_strdup(name), v);
		if (!g_hash_table_contains(names, name))
			g_hash_table_add(names, g_strdup(name));
	}
	web_stmt_done(st);
	g_time_zone_unref(utc);
	if (too_many || (rc != DB_ROW && rc != DB_DONE)) {
		if (too_many)
			web_respond_error(
			    req, resp, 400,
			    "more than %u rows: narrow from/to or choose a longer interval",
			    req->config->s.max_api_points);
		else
			web_respond_db_error(req, resp, store_db(req->store), "counters");
		g_ptr_array_unref(points);
		g_hash_table_destroy(names);
		return;
	}
	GList *cols = g_list_sort(g_hash_table_get_keys(names), (GCompareFunc)strcmp);
	GString *out = g_string_sized_new(points->len * 64 + 256);
	g_string_append(out, "serial,taken_utc,snapshot_id");
	for (GList *l = cols; l != NULL; l = l->next) {
		g_string_append_c(out, ',');
		csv_text(out, l->data);
	}
	g_string_append(out, "\r\n");
	for (guint i = 0; i < points->len; i++) {
		const struct csv_point *p = points->pdata[i];
		csv_text(out, req->seg[1]);
		g_string_append_printf(out, ",%s,%" G_GINT64_FORMAT, p->taken, p->snapshot_id);
		for (GList *l = cols; l != NULL; l = l->next) {
			const char *v = g_hash_table_lookup(p->values, l->data);
			g_string_append_c(out, ',');
			if (v != NULL)
				g_string_append(out, v);
		}
		g_string_append(out, "\r\n");
	}
	g_list_free(cols);
	g_ptr_array_unref(points);
	g_hash_table_destroy(names);
	char *safe = safe_name(req->seg[1]);
	char *file = g_strdup_printf("counters-%s.csv", safe);
	respond_csv(resp, out, file);
	g_free(file);
	g_free(safe);
}

void
web_csv_meter_reads(struct web_request *req, struct web_response *resp)
{
	static const char *const known[] = {"start", "end", "counter", "serial", NULL};
	int64_t start = -1, end = -1;
	char *error = NULL;

	if (web_params_check(req, resp, known) < 0 ||
	    web_param_time(req, resp, "start", false, &start) < 0 ||
	    web_param_time(req, resp, "end", true, &end) < 0)
		return;
	if ((start < 0) != (end < 0)) {
		web_respond_error(
		    req, resp, 400,
		    "give both start and end (YYYY-MM-DD), or neither for last month");
		return;
	}
	if (start < 0) {
		GDateTime *now = g_date_time_new_from_unix_utc(req->now);
		GDateTime *this_month = g_date_time_new_utc(g_date_time_get_year(now),
							    g_date_time_get_month(now), 1, 0, 0, 0);
		GDateTime *last_month = g_date_time_add_months(this_month, -1);
		start = g_date_time_to_unix(last_month);
		end = g_date_time_to_unix(this_month);
		g_date_time_unref(now);
		g_date_time_unref(this_month);
		g_date_time_unref(last_month);
	}
	if (end <= start) {
		web_respond_error(req, resp, 400, "end must not be before start");
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
	GString *out = g_string_sized_new(reads->len * 96 + 256);
	g_string_append(out, "serial,model,hostname,counter,start_taken_utc,start_value,"
			     "end_taken_utc,end_value,difference\r\n");
	for (guint i = 0; i < reads->len; i++) {
		const struct web_meter_read *m = reads->pdata[i];
		csv_text(out, m->serial);
		g_string_append_c(out, ',');
		csv_text(out, m->model);
		g_string_append_c(out, ',');
		csv_text(out, m->hostname);
		g_string_append_c(out, ',');
		csv_text(out, m->counter);
		g_string_append_printf(out, ",%s,", m->start_utc);
		csv_int(out, m->start_value);
		g_string_append_printf(out, ",%s,", m->end_utc);
		csv_int(out, m->end_value);
		g_string_append_c(out, ',');
		if (m->start_value != SNAPSHOT_ABSENT)
			csv_int(out, m->end_value - m->start_value);
		g_string_append(out, "\r\n");
	}
	g_ptr_array_unref(reads);
	char d0[SK_UTC_SIZE], d1[SK_UTC_SIZE];
	sk_time_format_utc(start, d0);
	sk_time_format_utc(end - 1, d1);
	d0[10] = d1[10] = '\0';
	char *file = g_strdup_printf("meter-reads-%s-to-%s.csv", d0, d1);
	respond_csv(resp, out, file);
	g_free(file);
}

static void
raw_download(struct web_request *req, struct web_response *resp, int64_t message_id,
	     const char *filename)
{
	GBytes *raw = NULL;
	char *error = NULL;
	if (store_message_get(req->store, message_id, &raw, &error) < 0) {
		log_warnx("web: event=raw-failed message=%" G_GINT64_FORMAT " error=\"%s\"",
			  message_id, error);
		g_free(error);
		web_respond_error(req, resp, 500, "the archived message cannot be read");
		return;
	}
	web_respond_bytes(resp, 200, "message/rfc822", raw);
	resp->sandbox = true;
	char *disp = g_strdup_printf("attachment; filename=\"%s\"", filename);
	web_header_add(resp, "Content-Disposition", disp);
	g_free(disp);
}

void
web_raw_snapshot(struct web_request *req, struct web_response *resp)
{
	guint64 id;
	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	if (!g_ascii_string_to_unsigned(req->seg[1], 10, 1, G_MAXINT64, &id, NULL)) {
		web_respond_error(req, resp, 404, "no snapshot '%s'", req->seg[1]);
		return;
	}
	if (web_request_store(req, resp) == NULL)
		return;
	struct db_stmt *st =
	    web_prepare(req, resp, "SELECT message_id FROM snapshot_list WHERE snapshot_id = ?");
	if (st == NULL)
		return;
	db_bind_int64(st, 1, (int64_t)id);
	int64_t mid = db_step(st) == DB_ROW ? db_column_int64(st, 0) : -1;
	web_stmt_done(st);
	if (mid < 0) {
		web_respond_error(req, resp, 404, "no snapshot #%" G_GUINT64_FORMAT, id);
		return;
	}
	char *file = g_strdup_printf("snapshot-%" G_GUINT64_FORMAT ".eml", id);
	raw_download(req, resp, mid, file);
	g_free(file);
}

void
web_raw_message(struct web_request *req, struct web_response *resp)
{
	guint64 id;
	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	if (!g_ascii_string_to_unsigned(req->seg[1], 10, 1, G_MAXINT64, &id, NULL)) {
		web_respond_error(req, resp, 404, "no message '%s'", req->seg[1]);
		return;
	}
	if (web_request_store(req, resp) == NULL)
		return;
	struct db_stmt *st =
	    web_prepare(req, resp, "SELECT 1 FROM intake_log WHERE message_id = ? LIMIT 1");
	if (st == NULL)
		return;
	db_bind_int64(st, 1, (int64_t)id);
	bool found = db_step(st) == DB_ROW;
	web_stmt_done(st);
	if (!found) {
		web_respond_error(req, resp, 404, "no message #%" G_GUINT64_FORMAT, id);
		return;
	}
	char *file = g_strdup_printf("message-%" G_GUINT64_FORMAT ".eml", id);
	raw_download(req, resp, (int64_t)id, file);
	g_free(file);
}
