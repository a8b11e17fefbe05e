/* page-snapshot.c: /snapshots/ID, one Device.xml made readable.
 *
 * What the archive knows about the snapshot and its message (arrivals,
 * size, hash), then the document itself read again from the raw message
 * (see snapxml.c): identity, device totals, counters per media size as one
 * table, supplies, each event log, and the indented XML.  Downloads: the
 * raw message (/snapshots/ID/raw), the Device.xml (/api/snapshots/ID/xml)
 * and the parsed snapshot as JSON (/api/snapshots/ID). */
#include "config.h"

#include <math.h>
#include <string.h>

#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

#define SNAPSHOT_EVENTS_SHOWN 400

static void
dl(GString *b, const char *term, const char *value)
{
	html(b, "<dt>%s</dt><dd>%s</dd>", term, value != NULL ? value : "\xe2\x80\x93");
}

static void
counter_value(GString *b, const struct snapshot_counter *c)
{
	if (c->value_real != (double)c->value && isfinite(c->value_real))
		g_string_append_printf(b, "%g", c->value_real);
	else
		html(b, "%N", c->value);
}

static gint
cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
render_media(GString *b, const struct snapshot *s)
{
	GPtrArray *sizes = g_ptr_array_new(), *names = g_ptr_array_new();
	for (guint i = 0; i < s->media_counters->len; i++) {
		const struct snapshot_counter *c = s->media_counters->pdata[i];
		if (c->media_size != NULL &&
		    !g_ptr_array_find_with_equal_func(sizes, c->media_size, g_str_equal, NULL))
			g_ptr_array_add(sizes, c->media_size);
		if (c->name != NULL &&
		    !g_ptr_array_find_with_equal_func(names, c->name, g_str_equal, NULL))
			g_ptr_array_add(names, c->name);
	}
	g_ptr_array_sort(sizes, cmp_str);
	html(b, "<section class=\"card\"><h2>Counters per media size</h2>");
	if (sizes->len == 0) {
		html(b, "<p class=\"empty\">Not reported.</p></section>");
		goto out;
	}
	html(b, "<div class=\"table-wrap\"><table class=\"data compact\"><thead><tr><th>Media "
		"size</th>");
	for (guint j = 0; j < names->len; j++)
		html(b, "<th class=\"num name\">%s</th>", (const char *)names->pdata[j]);
	html(b, "</tr></thead><tbody>");
	for (guint i = 0; i < sizes->len; i++) {
		html(b, "<tr><td class=\"code\">%s</td>", (const char *)sizes->pdata[i]);
		for (guint j = 0; j < names->len; j++) {
			const struct snapshot_counter *c =
			    snapshot_media_counter_find(s, names->pdata[j], sizes->pdata[i]);
			html(b, "<td class=\"num\">");
			if (c != NULL)
				counter_value(b, c);
			html(b, "</td>");
		}
		html(b, "</tr>");
	}
	html(b, "</tbody></table></div></section>");
out:
	g_ptr_array_unref(sizes);
	g_ptr_array_unref(names);
}

static void
render_document(GString *b, struct web_request *req, const struct snapshot *s)
{
	html(b, "<div class=\"grid2\"><section class=\"card\"><h2>Identity</h2><dl>");
	dl(b, "Model", s->model);
	dl(b, "Product number", s->product_number);
	dl(b, "Serial number", s->serial);
	dl(b, "Host name", s->hostname);
	dl(b, "IP address", s->ip_address);
	dl(b, "MAC address", s->mac_address);
	dl(b, "Device UUID", s->device_uuid);
	dl(b, "Firmware", s->firmware);
	dl(b, "Firmware date", s->firmware_date);
	dl(b, "Locale", s->locale);
	dl(b, "Format", snapshot_dialect_name(s->dialect));
	html(b, "<dt>Time stamp</dt><dd>");
	html_time(b, req, s->taken_utc);
	if (s->taken_has_offset) {
		char *off =
		    g_strdup_printf("%s%02d:%02d", s->taken_offset_min < 0 ? "\xe2\x88\x92" : "+",
				    abs(s->taken_offset_min) / 60, abs(s->taken_offset_min) % 60);
		html(b, " <small>(device clock UTC%s)</small>", off);
		g_free(off);
	}
	html(b, "</dd></dl></section>");

	html(b, "<section class=\"card\"><h2>Device totals</h2>");
	if (s->counters->len == 0) {
		html(b, "<p class=\"empty\">Not reported.</p>");
	} else {
		html(b, "<table class=\"data compact\"><tbody>");
		for (guint i = 0; i < s->counters->len; i++) {
			const struct snapshot_counter *c = s->counters->pdata[i];
			html(b, "<tr><td>%s</td><td class=\"num\">", c->name);
			counter_value(b, c);
			html(b, "</td></tr>");
		}
		html(b, "</tbody></table>");
	}
	html(b, "</section></div>");
	render_media(b, s);

	html(b, "<section class=\"card\"><h2>Supplies</h2>");
	if (s->supplies->len == 0) {
		html(b, "<p class=\"empty\">Not reported.</p>");
	} else {
		html(b, "<div class=\"table-wrap\"><table class=\"data "
			"compact\"><thead><tr><th>Supply</th><th>Type</th>"
			"<th>Level</th><th>State</th><th class=\"num\">Low at</th><th "
			"class=\"num\">Pages</th>"
			"<th>Product</th><th>Serial</th><th>Installed</th><th>Brand</th></tr></"
			"thead><tbody>");
		for (guint i = 0; i < s->supplies->len; i++) {
			const struct snapshot_supply *p = s->supplies->pdata[i];
			html(b, "<tr><td>");
			html_supply_swatch(b, p->color);
			html(b, "%s<small>%s</small></td><td>%s</td><td class=\"supply %R\">",
			     p->key, p->description, p->type,
			     html_level_class(p->level_percent, p->state, p->low_threshold));
			html_level_bar(b, p->level_percent, p->state, p->color);
			html(b, "<span class=\"lvl\">");
			if (p->level_percent != SNAPSHOT_ABSENT)
				html(b, "%L%%", p->level_percent);
			html(b, "</span></td><td>%s</td><td class=\"num\">", p->state);
			if (p->low_threshold != SNAPSHOT_ABSENT)
				html(b, "%L%%", p->low_threshold);
			html(b,
			     "</td><td "
			     "class=\"num\">%N</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></"
			     "tr>",
			     p->pages, p->product_number, p->serial, p->installed_date, p->brand);
		}
		html(b, "</tbody></table></div>");
	}
	html(b, "</section>");

	/* One table per log, in document order. */
	GPtrArray *logs = g_ptr_array_new();
	for (guint i = 0; i < s->events->len; i++) {
		const struct snapshot_event *e = s->events->pdata[i];
		const char *log = e->log != NULL ? e->log : "";
		if (!g_ptr_array_find_with_equal_func(logs, log, g_str_equal, NULL))
			g_ptr_array_add(logs, (gpointer)log);
	}
	for (guint l = 0; l < logs->len; l++) {
		const char *log = logs->pdata[l];
		unsigned n = 0, shown = 0;
		for (guint i = 0; i < s->events->len; i++)
			n += g_strcmp0(((struct snapshot_event *)s->events->pdata[i])->log != NULL
					   ? ((struct snapshot_event *)s->events->pdata[i])->log
					   : "",
				       log) == 0;
		/* Long logs start folded: the page stays readable. */
		html(b,
		     "<section class=\"card\"><details class=\"log\"%R><summary><h2>Log: %s "
		     "<span class=\"count\">%u</span></h2></summary>"
		     "<div class=\"table-wrap\"><table class=\"data compact\"><thead><tr><th "
		     "class=\"num\">Seq.</th>"
		     "<th>Time</th><th>Code</th><th>Description</th><th class=\"num\">Page "
		     "count</th><th>Details</th>"
		     "</tr></thead><tbody>",
		     n <= 25 ? " open" : "", *log != '\0' ? log : "(unnamed)", n);
		for (guint i = 0; i < s->events->len && shown < SNAPSHOT_EVENTS_SHOWN; i++) {
			const struct snapshot_event *e = s->events->pdata[i];
			if (g_strcmp0(e->log != NULL ? e->log : "", log) != 0)
				continue;
			shown++;
			html(b, "<tr><td class=\"num muted\">%N</td><td>", e->sequence);
			html_time(b, req, e->occurred_utc);
			html(b,
			     "</td><td class=\"code\">%s</td><td>%s</td><td class=\"num\">%N</td>"
			     "<td class=\"payload\">%s</td></tr>",
			     e->code, e->description, e->page_count, e->payload_json);
		}
		html(b, "</tbody></table></div>");
		if (n > shown)
			html(b, "<p class=\"more\">%u more entries are in the XML below.</p>",
			     n - shown);
		html(b, "</details></section>");
	}
	g_ptr_array_unref(logs);
}

void
web_page_snapshot(struct web_request *req, struct web_response *resp)
{
	guint64 id;
	struct web_snapdoc doc = {0};
	char *error = NULL;

	if (web_params_check(req, resp, (const char *const[]){NULL}) < 0)
		return;
	if (!g_ascii_string_to_unsigned(req->seg[1], 10, 1, G_MAXINT64, &id, NULL)) {
		web_respond_error(req, resp, 404, "snapshots are numbered: no snapshot '%s'",
				  req->seg[1]);
		return;
	}
	if (web_request_store(req, resp) == NULL)
		return;
	struct db_stmt *st = web_prepare(
	    req, resp,
	    "SELECT serial, taken_utc, taken_offset_min, taken_source, received_utc, clock_skew_s,"
	    " message_id, hostname FROM snapshot_list WHERE snapshot_id = ?");
	if (st == NULL)
		return;
	db_bind_int64(st, 1, (int64_t)id);
	if (db_step(st) != DB_ROW) {
		web_stmt_done(st);
		web_respond_error(req, resp, 404, "no snapshot #%" G_GUINT64_FORMAT, id);
		return;
	}
	char *serial = web_col_text(st, 0), *taken = web_col_text(st, 1),
	     *source = web_col_text(st, 3), *received = web_col_text(st, 4),
	     *hostname = web_col_text(st, 7);
	int64_t skew = db_column_int64(st, 5), message_id = db_column_int64(st, 6);
	web_stmt_done(st);

	GString *b = g_string_sized_new(128 * 1024);
	char *path = web_device_path(serial != NULL ? serial : "");
	html(b,
	     "<nav class=\"crumbs\"><a href=\"/\">Fleet</a><a href=\"%s\">%s</a><span>snapshot "
	     "#%L</span></nav>",
	     path, serial, (int64_t)id);
	html(b, "<section class=\"page-head\"><div><h1>Snapshot of %s</h1><p class=\"sub\">taken ",
	     hostname != NULL ? hostname : serial);
	html_time(b, req, taken);
	html(b, " \xc2\xb7 received ");
	html_time(b, req, received);
	html(b, "</p></div><div class=\"links\">");

	/* Previous and next snapshot of the same device. */
	static const char *const nav_sql[2] = {
	    "SELECT snapshot_id FROM snapshot_list WHERE serial = ?1 AND taken_utc < ?2 ORDER BY "
	    "taken_utc DESC LIMIT 1",
	    "SELECT snapshot_id FROM snapshot_list WHERE serial = ?1 AND taken_utc > ?2 ORDER BY "
	    "taken_utc LIMIT 1",
	};
	for (int k = 0; k < 2; k++) {
		st = web_prepare(req, resp, nav_sql[k]);
		if (st == NULL)
			goto out;
		db_bind_text(st, 1, serial, -1, DB_TRANSIENT);
		db_bind_text(st, 2, taken, -1, DB_TRANSIENT);
		if (db_step(st) == DB_ROW)
			html(b, "<a href=\"/snapshots/%L\" rel=\"%R\">%R</a>",
			     db_column_int64(st, 0), k == 0 ? "prev" : "next",
			     k == 0 ? "\xe2\x80\xb9 Previous" : "Next \xe2\x80\xba");
		web_stmt_done(st);
	}
	html(b, "</div></section>");

	html(b, "<div class=\"grid2\"><section class=\"card\"><h2>Archive</h2><dl>");
	html(b, "<dt>Time from</dt><dd>%s</dd><dt>Clock skew</dt><dd>", source);
	if (skew < 0)
		html(b, "\xe2\x88\x92");
	html_age(b, llabs(skew));
	html(b, " <small>(received minus snapshot time)</small></dd>");
	st = web_prepare(req, resp,
			 "SELECT id, received_utc, source, source_name, peer, mail_from, subject, "
			 "outcome, sha256, raw_size"
			 " FROM intake_log WHERE message_id = ? ORDER BY id LIMIT 20");
	if (st == NULL)
		goto out;
	db_bind_int64(st, 1, message_id);
	unsigned arrivals = 0;
	GString *arr = g_string_new(NULL);
	while (db_step(st) == DB_ROW) {
		if (arrivals++ == 0)
			html(b,
			     "<dt>Message</dt><dd>#%L \xc2\xb7 %N bytes<small "
			     "class=\"hash\">SHA-256 %s</small></dd>",
			     message_id, web_col_int(st, 9),
			     (const char *)db_column_text(st, 8));
		html(arr, "<li>");
		html_time(arr, req, (const char *)db_column_text(st, 1));
		html(arr, " via %s", (const char *)db_column_text(st, 2));
		if (db_column_text(st, 4) != NULL)
			html(arr, " from %s", (const char *)db_column_text(st, 4));
		if (db_column_text(st, 5) != NULL)
			html(arr, " \xc2\xb7 %s", (const char *)db_column_text(st, 5));
		if (db_column_text(st, 3) != NULL)
			html(arr, " <small>%s</small>", (const char *)db_column_text(st, 3));
		html(arr, " <span class=\"badge o-%s\">%s</span></li>",
		     (const char *)db_column_text(st, 7),
		     (const char *)db_column_text(st, 7));
	}
	web_stmt_done(st);
	html(b, "<dt>Arrivals</dt><dd><ul class=\"plain\">%R</ul></dd></dl>", arr->str);
	g_string_free(arr, TRUE);
	html(b,
	     "<p class=\"links\"><a href=\"/snapshots/%L/raw\" download>Raw message (.eml)</a>"
	     "<a href=\"/api/snapshots/%L/xml\">Device.xml</a><a "
	     "href=\"/api/snapshots/%L\">JSON</a></p></section>",
	     (int64_t)id, (int64_t)id, (int64_t)id);

	if (web_snapdoc_load(req->store, message_id, true, &doc, &error) < 0) {
		log_warnx("web: event=snapshot-load-failed snapshot=%" G_GUINT64_FORMAT
			  " error=\"%s\"",
			  id, error);
		html(b,
		     "<section class=\"card warnbox\"><h2>Document</h2><p>The archived message "
		     "cannot be read: %s</p></section></div>",
		     error);
		g_free(error);
		html_page(req, resp, "Snapshot", "fleet", b);
		b = NULL;
		goto out;
	}
	if (doc.snap == NULL)
		html(b,
		     "<section class=\"card warnbox\"><h2>Document</h2><p>%s</p></section></div>",
		     doc.parse_error);
	else
		html(b,
		     "<section "
		     "class=\"card\"><h2>Document</h2><dl><dt>Format</dt><dd>%s</dd><dt>Counters</"
		     "dt>"
		     "<dd>%u totals, %u per media size</dd><dt>Supplies</dt><dd>%u</dd><dt>Log "
		     "entries</dt><dd>%u</dd>"
		     "</dl></section></div>",
		     snapshot_dialect_name(doc.snap->dialect), doc.snap->counters->len,
		     doc.snap->media_counters->len, doc.snap->supplies->len, doc.snap->events->len);
	if (doc.snap != NULL)
		render_document(b, req, doc.snap);

	if (doc.xml != NULL) {
		GString *pre = g_string_new(NULL);
		char *perr = NULL;
		html(b,
		     "<section class=\"card\"><details class=\"xml\"><summary>Device.xml <small>%N "
		     "bytes, indented</small></summary>",
		     (int64_t)g_bytes_get_size(doc.xml));
		if (web_xml_html(pre, doc.xml, &perr) == 0)
			html(b, "<pre class=\"xml\">%R</pre>", pre->str);
		else
			html(b, "<p class=\"empty\">%s</p>", perr);
		html(b, "</details></section>");
		g_free(perr);
		g_string_free(pre, TRUE);
	}
	char *title = g_strdup_printf("Snapshot #%" G_GUINT64_FORMAT, id);
	html_page(req, resp, title, "fleet", b);
	g_free(title);
	b = NULL;
out:
	if (b != NULL)
		g_string_free(b, TRUE);
	web_snapdoc_clear(&doc);
	g_free(path);
	g_free(serial);
	g_free(taken);
	g_free(source);
	g_free(received);
	g_free(hostname);
}
