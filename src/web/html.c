/* html.c: building HTML safely.
 *
 * Every page is built with html(), a small formatter whose %s ALWAYS
 * escapes (& < > " ' as entities, after making the text valid UTF-8
 * without control characters), so a string from a device or a mail can go
 * into text and into attribute values alike.  Raw markup needs %R, used
 * only for markup this module built itself.  No inline style or script is
 * ever written (the CSP forbids both): sizes go into SVG attributes and
 * colours into CSS classes.
 *
 * Times: stored UTC, shown in the configured display time zone inside a
 * <time> element whose title gives UTC (hover). */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "util/sktime.h"
#include "web/internal.h"

#define NNBSP "\xe2\x80\xaf" /* U+202F narrow no-break space: digit groups */

char *
web_text_clean(const char *text)
{
	char *s = g_utf8_make_valid(text != NULL ? text : "", -1);
	bool dirty = false;
	for (const char *p = s; *p != '\0'; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f) {
			dirty = true;
			break;
		}
	if (!dirty)
		return s;
	GString *out = g_string_sized_new(strlen(s));
	for (const char *p = s; *p != '\0'; p++) {
		if (((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
			g_string_append(out, "\xef\xbf\xbd"); /* U+FFFD */
		else
			g_string_append_c(out, *p);
	}
	g_free(s);
	return g_string_free(out, FALSE);
}

/* One pass over valid UTF-8: the five markup characters become entities,
 * control characters (but tab and newline) U+FFFD; other bytes, multi-byte
 * sequences included, are copied.  Invalid UTF-8 is made valid first. */
void
html_escape(GString *out, const char *text)
{
	char *fixed = NULL;
	if (text == NULL)
		return;
	if (!g_utf8_validate(text, -1, NULL))
		text = fixed = g_utf8_make_valid(text, -1);
	const char *run = text;
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		const char *rep;
		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
				rep = "\xef\xbf\xbd";
			else
				continue;
		}
		g_string_append_len(out, run, p - run);
		g_string_append(out, rep);
		run = p + 1;
	}
	g_string_append(out, run);
	g_free(fixed);
}

static void
append_grouped(GString *out, int64_t v)
{
	char digits[32];
	if (v == SNAPSHOT_ABSENT) {
		g_string_append(out, "\xe2\x80\x93"); /* en dash: not reported */
		return;
	}
	uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
	g_snprintf(digits, sizeof(digits), "%" G_GUINT64_FORMAT, u);
	if (v < 0)
		g_string_append(out, "\xe2\x88\x92"); /* minus sign */
	size_t n = strlen(digits);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			g_string_append(out, NNBSP);
		g_string_append_c(out, digits[i]);
	}
}

void
html(GString *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	for (const char *p = fmt; *p != '\0'; p++) {
		if (*p != '%') {
			const char *next = strchr(p, '%');
			size_t n = next != NULL ? (size_t)(next - p) : strlen(p);
			g_string_append_len(out, p, (gssize)n);
			p += n - 1;
			continue;
		}
		p++;
		switch (*p) {
		case 's':
			html_escape(out, va_arg(ap, const char *));
			break;
		case 'R': {
			const char *raw = va_arg(ap, const char *);
			if (raw != NULL)
				g_string_append(out, raw);
			break;
		}
		case 'U': {
			const char *v = va_arg(ap, const char *);
			char *e = g_uri_escape_string(v != NULL ? v : "", NULL, FALSE);
			html_escape(out, e);
			g_free(e);
			break;
		}
		case 'd':
			g_string_append_printf(out, "%d", va_arg(ap, int));
			break;
		case 'u':
			g_string_append_printf(out, "%u", va_arg(ap, unsigned));
			break;
		case 'L':
			g_string_append_printf(out, "%" G_GINT64_FORMAT, va_arg(ap, int64_t));
			break;
		case 'N':
			append_grouped(out, va_arg(ap, int64_t));
			break;
		case 'F': {
			double d = va_arg(ap, double);
			if (isnan(d))
				g_string_append(out, "\xe2\x80\x93");
			else
				g_string_append_printf(out, "%.1f", d);
			break;
		}
		case '%':
			g_string_append_c(out, '%');
			break;
		default:
			g_error("html: bad directive %%%c in \"%s\"", *p, fmt);
		}
	}
	va_end(ap);
}

/* Civil date of a day number (H. Hinnant's civil_from_days). */
static void
civil_from_days(int64_t z, int *y_r, unsigned *m_r, unsigned *d_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d_r = doy - (153 * mp + 2) / 5 + 1;
	*m_r = mp < 10 ? mp + 3 : mp - 9;
	*y_r = (int)(y + (*m_r <= 2));
}

char *
web_format_local(struct web_request *req, int64_t unix_time, const char *fmt)
{
	/* The two formats of every table and hover text, by arithmetic: the
	 * zone's offset at that instant, then the civil date. */
	bool date = strcmp(fmt, "%Y-%m-%d") == 0, minute = strcmp(fmt, "%Y-%m-%d %H:%M") == 0;
	if (date || minute) {
		GTimeZone *tz = req->config->tz;
		gint iv = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, unix_time);
		int64_t local = unix_time + (iv >= 0 ? g_time_zone_get_offset(tz, iv) : 0);
		int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
		int64_t sod = local - days * 86400;
		int y;
		unsigned m, d;
		civil_from_days(days, &y, &m, &d);
		if (date)
			return g_strdup_printf("%04d-%02u-%02u", y, m, d);
		return g_strdup_printf("%04d-%02u-%02u %02d:%02d", y, m, d, (int)(sod / 3600),
				       (int)(sod % 3600 / 60));
	}
	GDateTime *utc = g_date_time_new_from_unix_utc(unix_time);
	if (utc == NULL)
		return g_strdup("?");
	GDateTime *loc = g_date_time_to_timezone(utc, req->config->tz);
	char *s = g_date_time_format(loc != NULL ? loc : utc, fmt);
	if (loc != NULL)
		g_date_time_unref(loc);
	g_date_time_unref(utc);
	return s != NULL ? s : g_strdup("?");
}

void
html_time_unix(GString *out, struct web_request *req, int64_t t)
{
	char utc[SK_UTC_SIZE];
	sk_time_format_utc(t, utc);
	char *local = web_format_local(req, t, "%Y-%m-%d %H:%M");
	char *human_utc = g_strndup(utc, 19);
	human_utc[10] = ' ';
	html(out, "<time datetime=\"%s\" title=\"%s UTC\">%s</time>", utc, human_utc, local);
	g_free(human_utc);
	g_free(local);
}

void
html_time(GString *out, struct web_request *req, const char *utc)
{
	if (utc == NULL) {
		g_string_append(out, "\xe2\x80\x93");
		return;
	}
	int64_t t = web_utc_unix(utc);
	if (t == 0 || strlen(utc) != SK_UTC_LEN) {
		html_escape(out, utc);
		return;
	}
	char *local = web_format_local(req, t, "%Y-%m-%d %H:%M");
	char human[SK_UTC_SIZE];
	memcpy(human, utc, SK_UTC_LEN - 1);
	human[10] = ' ';
	human[SK_UTC_LEN - 1] = '\0';
	html(out, "<time datetime=\"%s\" title=\"%s UTC\">%s</time>", utc, human, local);
	g_free(local);
}

void
html_age(GString *out, int64_t s)
{
	if (s < 0)
		g_string_append(out, "in the future");
	else if (s < 120)
		g_string_append_printf(out, "%" G_GINT64_FORMAT " s", s);
	else if (s < 120 * 60)
		g_string_append_printf(out, "%" G_GINT64_FORMAT " min", s / 60);
	else if (s < 48 * 3600)
		g_string_append_printf(out, "%" G_GINT64_FORMAT " h", s / 3600);
	else if (s < 2 * 365 * 86400)
		g_string_append_printf(out, "%" G_GINT64_FORMAT " d", s / 86400);
	else
		g_string_append_printf(out, "%.1f y", (double)s / (365.25 * 86400));
}

const char *
html_level_class(int64_t level, const char *state, int64_t low_threshold)
{
	if (state != NULL && (strcmp(state, "out") == 0 || strcmp(state, "empty") == 0))
		return "lvl-out";
	if (level == SNAPSHOT_ABSENT)
		return state != NULL && strcmp(state, "low") == 0 ? "lvl-low" : "lvl-unknown";
	if (level <= 0)
		return "lvl-out";
	if ((state != NULL && strcmp(state, "low") == 0) ||
	    (low_threshold != SNAPSHOT_ABSENT ? level <= low_threshold : level <= 10))
		return "lvl-low";
	return "lvl-ok";
}

static const char *
color_class(const char *color)
{
	static const char *const known[] = {"black", "cyan", "magenta", "yellow", NULL};
	if (color == NULL)
		return "c-other";
	for (int i = 0; known[i] != NULL; i++)
		if (g_ascii_strcasecmp(color, known[i]) == 0) {
			static const char *const cls[] = {"c-black", "c-cyan", "c-magenta",
							  "c-yellow"};
			return cls[i];
		}
	return "c-other";
}

/* "imageDrum" -> "Image drum". */
static char *
humanize(const char *key)
{
	GString *out = g_string_new(NULL);
	for (const char *p = key; *p != '\0'; p++) {
		if (g_ascii_isupper(*p) && p != key && !g_ascii_isupper(p[-1])) {
			g_string_append_c(out, ' ');
			g_string_append_c(out, g_ascii_tolower(*p));
		} else {
			g_string_append_c(out, p == key ? g_ascii_toupper(*p) : *p);
		}
	}
	return g_string_free(out, FALSE);
}

char *
web_supply_name(const char *key, const char *color, const char *description, const char *type,
		bool brief)
{
	if (!brief && description != NULL && *description != '\0')
		return g_strdup(description);
	if (color != NULL && *color != '\0' && strcmp(color_class(color), "c-other") != 0) {
		char *c = humanize(color);
		if (brief)
			return c;
		const char *what = type != NULL && strstr(type, "rum") != NULL ? "drum" : "toner";
		char *r = g_strdup_printf("%s %s", c, what);
		g_free(c);
		return r;
	}
	if (type != NULL && *type != '\0' && strcmp(type, "tonerCartridge") != 0)
		return humanize(type);
	return humanize(key != NULL && *key != '\0' ? key : "supply");
}

void
html_supply_swatch(GString *out, const char *color)
{
	html(out, "<span class=\"swatch %R\"></span>", color_class(color));
}

void
html_level_bar(GString *out, int64_t level, const char *state, const char *color)
{
	const char *lvl = html_level_class(level, state, SNAPSHOT_ABSENT);
	int64_t w = level == SNAPSHOT_ABSENT ? 0 : CLAMP(level, 0, 100);
	html(out,
	     "<svg class=\"bar %R%R%R\" viewBox=\"0 0 100 10\" width=\"100\" height=\"10\" "
	     "role=\"img\" aria-label=\"",
	     lvl, color != NULL ? " " : "", color != NULL ? color_class(color) : "");
	if (level == SNAPSHOT_ABSENT)
		g_string_append(out, "level not reported");
	else
		html(out, "%L%%", level);
	html(out,
	     "\"><rect class=\"bar-bg\" width=\"100\" height=\"10\" rx=\"2\"/>"
	     "<rect class=\"bar-fg\" width=\"%L\" height=\"10\" rx=\"2\"/></svg>",
	     w);
}

void
html_pager(GString *out, struct web_request *req, const char *param, unsigned page, unsigned pages,
	   uint64_t total, const char *what)
{
	html(out, "<nav class=\"pager\" aria-label=\"pages\"><span class=\"count\">");
	append_grouped(out, (int64_t)total);
	html(out, " %s</span>", what);
	if (pages <= 1) {
		g_string_append(out, "</nav>");
		return;
	}
	char num[16];
	if (page > 1) {
		g_snprintf(num, sizeof(num), "%u", page - 1);
		char *q = web_query_with(req, param, num, NULL);
		html(out, "<a rel=\"prev\" href=\"%s\">\xe2\x80\xb9 Previous</a>", q);
		g_free(q);
	}
	unsigned last_shown = 0;
	for (unsigned p = 1; p <= pages; p++) {
		bool show = p == 1 || p == pages || (p + 2 >= page && p <= page + 2);
		if (!show)
			continue;
		if (last_shown != 0 && p > last_shown + 1)
			g_string_append(out, "<span class=\"gap\">\xe2\x80\xa6</span>");
		g_snprintf(num, sizeof(num), "%u", p);
		if (p == page) {
			html(out, "<span class=\"current\" aria-current=\"page\">%u</span>", p);
		} else {
			char *q = web_query_with(req, param, p == 1 ? NULL : num, NULL);
			html(out, "<a href=\"%s\">%u</a>", q, p);
			g_free(q);
		}
		last_shown = p;
	}
	if (page < pages) {
		g_snprintf(num, sizeof(num), "%u", page + 1);
		char *q = web_query_with(req, param, num, NULL);
		html(out, "<a rel=\"next\" href=\"%s\">Next \xe2\x80\xba</a>", q);
		g_free(q);
	}
	g_string_append(out, "</nav>");
}

void
html_sort_th(GString *out, struct web_request *req, const char *label, const char *key,
	     const char *cur, bool desc, bool numeric)
{
	bool active = g_strcmp0(cur, key) == 0;
	/* Clicking the active column flips it; another column starts with
	 * the natural order (numbers: largest first). */
	bool next_desc = active ? !desc : numeric;
	char *q = web_query_with(req, "sort", key, "order", next_desc ? "desc" : "asc", "page",
				 NULL, NULL);
	html(out, "<th class=\"%R%R\"%R><a href=\"%s\">%s<span class=\"arrow\">%R</span></a></th>",
	     numeric ? "num" : "", active ? " sorted" : "",
	     active ? (desc ? " aria-sort=\"descending\"" : " aria-sort=\"ascending\"") : "", q,
	     label, active ? (desc ? "\xe2\x96\xbe" : "\xe2\x96\xb4") : "");
	g_free(q);
}

void
html_page(struct web_request *req, struct web_response *resp, const char *title, const char *nav,
	  GString *body)
{
	GString *out = g_string_sized_new(body->len + 2048);
	const char *tzname =
	    req->config->display_timezone != NULL ? req->config->display_timezone : "local time";
	char *gen = g_strdup_printf("%.1f", (double)(sk_time_now_us() - req->started_us) / 1000.0);
	const char *vars[] = {
	    "title",
	    title,
	    "content",
	    body->str,
	    "version",
	    PACKAGE_VERSION,
	    "tz",
	    tzname,
	    "user",
	    req->user != NULL ? req->user : "",
	    "nav_fleet",
	    g_strcmp0(nav, "fleet") == 0 ? "active" : "",
	    "nav_attention",
	    g_strcmp0(nav, "attention") == 0 ? "active" : "",
	    "nav_intake",
	    g_strcmp0(nav, "intake") == 0 ? "active" : "",
	    "generated_ms",
	    gen,
	    NULL,
	};
	web_template_fill(out, web_assets_template(req->config->assets, "layout.html"), vars);
	g_free(gen);
	g_string_free(body, TRUE);
	web_respond(resp, 200, "text/html; charset=utf-8", out);
}
