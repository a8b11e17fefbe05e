/* metrics.c: /metrics in the Prometheus text exposition format (0.0.4) and
 * /healthz.
 *
 * The writer groups samples per metric family and writes each family's
 * HELP and TYPE once, before its samples, whatever order they are added in
 * (the format requires a family's samples to be contiguous).  Label values
 * are made valid UTF-8 and escaped (\\ \" \n); metric and label names are
 * checked against the format's grammar (a bad one is a programming error
 * and is dropped with a critical).
 *
 * Families:
 *   per device (labels serial, model): snapkeep_device_total_impressions,
 *     snapkeep_device_supply_level_percent (+ supply, color),
 *     snapkeep_device_last_snapshot_age_seconds; snapkeep_devices
 *   from the database: snapkeep_intake_messages (source, outcome: the
 *     intake log as it stands), snapkeep_database_size_bytes
 *   the web view's own: requests by status class, request duration
 *   the daemon's, through the hook: intake counters, open SMTP sessions, ... */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"
#include "web/internal.h"

struct family {
	char *name, *help, *type;
	GString *samples;
};

struct web_metrics {
	GPtrArray *order;    /* struct family *, in first-use order */
	GHashTable *by_name; /* name -> struct family * */
};

static void
family_free(gpointer p)
{
	struct family *f = p;
	g_free(f->name);
	g_free(f->help);
	g_free(f->type);
	g_string_free(f->samples, TRUE);
	g_free(f);
}

static bool
valid_name(const char *n, bool label)
{
	if (n == NULL || *n == '\0')
		return false;
	for (const char *p = n; *p != '\0'; p++) {
		bool ok = g_ascii_isalpha(*p) || *p == '_' || (!label && *p == ':') ||
			  (p != n && g_ascii_isdigit(*p));
		if (!ok)
			return false;
	}
	return !(label && g_str_has_prefix(n, "__"));
}

static struct family *
family_get(struct web_metrics *m, const char *name, const char *help, const char *type)
{
	struct family *f = g_hash_table_lookup(m->by_name, name);
	if (f != NULL)
		return f;
	f = g_new0(struct family, 1);
	f->name = g_strdup(name);
	f->help = g_strdup(help != NULL ? help : "");
	f->type = g_strdup(type);
	f->samples = g_string_new(NULL);
	g_ptr_array_add(m->order, f);
	g_hash_table_insert(m->by_name, f->name, f);
	return f;
}

static void
append_value(GString *out, double v)
{
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	if (isnan(v))
		g_string_append(out, "NaN");
	else if (isinf(v))
		g_string_append(out, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		g_string_append_printf(out, "%.0f", v);
	else
		g_string_append(out, g_ascii_dtostr(buf, sizeof(buf), v));
}

static void
append_label_value(GString *out, const char *v)
{
	char *valid = g_utf8_make_valid(v != NULL ? v : "", -1);
	for (const char *p = valid; *p != '\0'; p++) {
		if (*p == '\\')
			g_string_append(out, "\\\\");
		else if (*p == '"')
			g_string_append(out, "\\\"");
		else if (*p == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *p);
	}
	g_free(valid);
}

/* name{labels} value\n, labels from the va_list of name, value pairs. */
static bool
sample(GString *out, const char *name, const char *suffix, va_list ap, const char *extra_label,
       const char *extra_value, double v)
{
	GString *labels = g_string_new(NULL);
	for (;;) {
		const char *ln = va_arg(ap, const char *);
		if (ln == NULL)
			break;
		const char *lv = va_arg(ap, const char *);
		if (!valid_name(ln, true)) {
			g_critical("metrics: bad label name %s", ln);
			g_string_free(labels, TRUE);
			return false;
		}
		g_string_append_printf(labels, "%s%s=\"", labels->len ? "," : "", ln);
		append_label_value(labels, lv);
		g_string_append_c(labels, '"');
	}
	if (extra_label != NULL) {
		g_string_append_printf(labels, "%s%s=\"", labels->len ? "," : "", extra_label);
		append_label_value(labels, extra_value);
		g_string_append_c(labels, '"');
	}
	g_string_append_printf(out, "%s%s", name, suffix);
	if (labels->len > 0)
		g_string_append_printf(out, "{%s}", labels->str);
	g_string_append_c(out, ' ');
	append_value(out, v);
	g_string_append_c(out, '\n');
	g_string_free(labels, TRUE);
	return true;
}

static void
add_simple(struct web_metrics *m, const char *type, const char *name, const char *help,
	   double value, va_list ap)
{
	if (!valid_name(name, false)) {
		g_critical("metrics: bad metric name %s", name != NULL ? name : "(null)");
		return;
	}
	struct family *f = family_get(m, name, help, type);
	if (strcmp(f->type, type) != 0) {
		g_critical("metrics: %s used as %s and %s", name, f->type, type);
		return;
	}
	sample(f->samples, name, "", ap, NULL, NULL, value);
}

void
web_metrics_counter(struct web_metrics *m, const char *name, const char *help, double value, ...)
{
	va_list ap;
	va_start(ap, value);
	add_simple(m, "counter", name, help, value, ap);
	va_end(ap);
}

void
web_metrics_gauge(struct web_metrics *m, const char *name, const char *help, double value, ...)
{
	va_list ap;
	va_start(ap, value);
	add_simple(m, "gauge", name, help, value, ap);
	va_end(ap);
}

static bool
no_labels(GString *out, const char *name, const char *suffix, const char *l, const char *lv,
	  double v, ...)
{
	va_list ap;
	va_start(ap, v);
	bool ok = sample(out, name, suffix, ap, l, lv, v);
	va_end(ap);
	return ok;
}

void
web_metrics_histogram(struct web_metrics *m, const char *name, const char *help,
		      const double *bounds, const uint64_t *counts, size_t n, uint64_t count,
		      double sum)
{
	if (!valid_name(name, false)) {
		g_critical("metrics: bad metric name %s", name != NULL ? name : "(null)");
		return;
	}
	struct family *f = family_get(m, name, help, "histogram");
	if (strcmp(f->type, "histogram") != 0 || f->samples->len > 0) {
		g_critical("metrics: histogram %s added twice", name);
		return;
	}
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	for (size_t i = 0; i < n; i++)
		no_labels(f->samples, name, "_bucket", "le",
			  g_ascii_formatd(buf, sizeof(buf), "%.6g", bounds[i]), (double)counts[i],
			  NULL);
	no_labels(f->samples, name, "_bucket", "le", "+Inf", (double)count, NULL);
	no_labels(f->samples, name, "_sum", NULL, NULL, sum, NULL);
	no_labels(f->samples, name, "_count", NULL, NULL, (double)count, NULL);
}

static void
metrics_write(struct web_metrics *m, GString *out)
{
	for (guint i = 0; i < m->order->len; i++) {
		struct family *f = m->order->pdata[i];
		GString *help = g_string_new(NULL);
		for (const char *p = f->help; *p != '\0'; p++) {
			if (*p == '\\')
				g_string_append(help, "\\\\");
			else if (*p == '\n')
				g_string_append(help, "\\n");
			else
				g_string_append_c(help, *p);
		}
		g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, help->str,
				       f->name, f->type);
		g_string_free(help, TRUE);
		g_string_append(out, f->samples->str);
	}
}

static int
db_metrics(struct web_request *req, struct web_metrics *m)
{
	struct db *db = store_db(req->store);
	struct db_stmt *st = NULL;
	int rc;

	db_exec(db, "BEGIN", NULL);
	/* Per device. */
	if (db_prepare(
		db,
		"SELECT serial, model, total_impressions, last_snapshot_utc FROM device_status"
		" ORDER BY serial", &st) != DB_OK)
		goto fail;
	uint64_t devices = 0;
	while ((rc = db_step(st)) == DB_ROW) {
		const char *serial = (const char *)db_column_text(st, 0);
		const char *model = (const char *)db_column_text(st, 1);
		devices++;
		if (db_column_type(st, 2) != DB_NULL)
			web_metrics_gauge(m, "snapkeep_device_total_impressions",
					  "Total impressions of the device's latest snapshot",
					  (double)db_column_int64(st, 2), "serial", serial,
					  "model", model != NULL ? model : "", NULL);
		int64_t last = web_utc_unix((const char *)db_column_text(st, 3));
		if (last > 0)
			web_metrics_gauge(m, "snapkeep_device_last_snapshot_age_seconds",
					  "Seconds since the device's latest snapshot was taken",
					  (double)(req->now - last), "serial", serial, "model",
					  model != NULL ? model : "", NULL);
	}
	db_finalize(st);
	if (rc != DB_DONE)
		goto fail;
	web_metrics_gauge(m, "snapkeep_devices", "Devices known", (double)devices, NULL);

	if (db_prepare(
		db,
		"SELECT d.serial, d.model, sc.supply_key, s.color, l.level_percent"
		WEB_SQL_SUPPLY_CURRENT " JOIN devices d ON d.id = sc.device_id"
		" WHERE COALESCE(l.level_percent IS NOT NULL, FALSE)"
		" ORDER BY d.serial, sc.supply_key",
		&st) != DB_OK)
		goto fail;
	while ((rc = db_step(st)) == DB_ROW) {
		const char *model = (const char *)db_column_text(st, 1);
		const char *color = (const char *)db_column_text(st, 3);
		web_metrics_gauge(m, "snapkeep_device_supply_level_percent",
				  "Level of each current supply in the device's latest report",
				  (double)db_column_int64(st, 4), "serial",
				  (const char *)db_column_text(st, 0), "model",
				  model != NULL ? model : "", "supply",
				  (const char *)db_column_text(st, 2), "color",
				  color != NULL ? color : "", NULL);
	}
	db_finalize(st);
	if (rc != DB_DONE)
		goto fail;

	if (db_prepare(
		db, "SELECT source, outcome, count(*) FROM intake GROUP BY source, outcome", &st) != DB_OK)
		goto fail;
	while ((rc = db_step(st)) == DB_ROW)
		web_metrics_gauge(m, "snapkeep_intake_messages",
				  "Arrivals in the intake log by source and current outcome",
				  (double)db_column_int64(st, 2), "source",
				  (const char *)db_column_text(st, 0), "outcome",
				  (const char *)db_column_text(st, 1), NULL);
	db_finalize(st);
	if (rc != DB_DONE)
		goto fail;
	db_exec(db, "COMMIT", NULL);

	/* Size: the main file and its write-ahead log; PostgreSQL's own figure
	 * of the database. */
	const char *path = db_engine(db) == DB_ENGINE_SQLITE ? sqlite3_db_filename(db_sqlite(db), "main") : NULL;
	double size = 0;
	struct stat sb;
	if (db_engine(db) == DB_ENGINE_POSTGRESQL &&
	    db_prepare(db, "SELECT pg_database_size(current_database())", &st) == DB_OK) {
		if (db_step(st) == DB_ROW)
			size = (double)db_column_int64(st, 0);
		db_finalize(st);
	}
	if (path != NULL && stat(path, &sb) == 0) {
		size += (double)sb.st_size;
		char *wal = g_strconcat(path, "-wal", NULL);
		if (stat(wal, &sb) == 0)
			size += (double)sb.st_size;
		g_free(wal);
	}
	web_metrics_gauge(m, "snapkeep_database_size_bytes",
			  "Size of the database file and its write-ahead log", size, NULL);
	return 0;
fail:
	log_warnx("web: event=metrics-db-error error=\"%s\"", db_errmsg(db));
	db_exec(db, "ROLLBACK", NULL);
	return -1;
}

void
web_metrics_page(struct web_request *req, struct web_response *resp)
{
	req->kind = WEB_KIND_TEXT;
	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	if (web_request_store(req, resp) == NULL)
		return;
	struct web_metrics m;
	m.order = g_ptr_array_new_with_free_func(family_free);
	m.by_name = g_hash_table_new(g_str_hash, g_str_equal);
	int ok = db_metrics(req, &m);
	web_metrics_gauge(&m, "snapkeep_web_database_readable",
			  "1 when the web view could read the database for this scrape",
			  ok == 0 ? 1 : 0, NULL);
	web_server_run_hook(req->server, &m);
	web_server_metrics(req->server, &m);
	GString *out = g_string_sized_new(64 * 1024);
	metrics_write(&m, out);
	g_hash_table_destroy(m.by_name);
	g_ptr_array_unref(m.order);
	web_respond(resp, 200, "text/plain; version=0.0.4; charset=utf-8", out);
}

void
web_healthz(struct web_request *req, struct web_response *resp)
{
	req->kind = WEB_KIND_TEXT;
	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	if (web_request_store(req, resp) == NULL)
		return;
	struct db_stmt *st = NULL;
	struct db *db = store_db(req->store);
	int rc = DB_ERROR;
	if (db_prepare(db, "SELECT count(*) FROM (SELECT 1 FROM device_status LIMIT 1) AS any_device", &st) == DB_OK)
		rc = db_step(st);
	db_finalize(st);
	if (rc != DB_ROW) {
		web_respond_error(req, resp, 503, "database: %s", db_errmsg(db));
		return;
	}
	web_respond(resp, 200, "text/plain; charset=utf-8", g_string_new("ok\n"));
}
