/* svg.c: charts drawn by the server as inline SVG, readable without
 * JavaScript: axes with nice ticks (1-2-5 steps for values, calendar steps
 * in the display time zone for time), grid lines, labels, a legend, and
 * hover text in <title> elements: a column per time step listing every
 * series' value, and a <title> on every bar and marker.
 *
 * Limits: a line keeps every point in its path (one decimal), but at most
 * SVG_MAX_HOVER hover columns are drawn, and dots are drawn for every point
 * only when a series has at most SVG_DOTS_ALL points (else the last point
 * and the hover columns carry them).  No style attributes (CSP): classes
 * only; every text goes through html() and is escaped. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "web/internal.h"

#define SVG_W 960
#define SVG_H 260
#define SVG_ML 64
#define SVG_MR 18
#define SVG_MT 14
#define SVG_MB 30
#define SVG_MAX_HOVER 160
#define SVG_DOTS_ALL 60
#define SVG_MARKER_LINES_MAX 24

/* Appends fmt where each %n is a number with at most one decimal ("12.5",
 * "-3", "700"), %s a string as is; coordinates are written this way many
 * thousands of times per page, so without printf's floating point. */
static void
svgf(GString *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	for (const char *p = fmt; *p != '\0'; p++) {
		if (p[0] != '%' || (p[1] != 'n' && p[1] != 's')) {
			g_string_append_c(out, *p);
			continue;
		}
		p++;
		if (*p == 's') {
			g_string_append(out, va_arg(ap, const char *));
			continue;
		}
		double v = va_arg(ap, double);
		if (!isfinite(v))
			v = 0;
		long long tenths = llround(v * 10);
		char buf[32];
		int n = 0;
		bool neg = tenths < 0;
		unsigned long long u =
		    neg ? (unsigned long long)(-(tenths + 1)) + 1 : (unsigned long long)tenths;
		unsigned frac = (unsigned)(u % 10);
		u /= 10;
		if (frac != 0) {
			buf[n++] = (char)('0' + frac);
			buf[n++] = '.';
		}
		do {
			buf[n++] = (char)('0' + u % 10);
			u /= 10;
		} while (u > 0);
		if (neg)
			buf[n++] = '-';
		while (n > 0)
			g_string_append_c(out, buf[--n]);
	}
	va_end(ap);
}

struct svg_series *
svg_series_new(const char *name, const char *css)
{
	struct svg_series *s = g_new0(struct svg_series, 1);
	s->name = g_strdup(name);
	s->css = g_strdup(css);
	s->x = g_array_new(FALSE, FALSE, sizeof(int64_t));
	s->y = g_array_new(FALSE, FALSE, sizeof(double));
	s->breaks = g_array_new(FALSE, FALSE, sizeof(guint));
	return s;
}

static void
series_free(gpointer p)
{
	struct svg_series *s = p;
	g_free(s->name);
	g_free(s->css);
	g_array_unref(s->x);
	g_array_unref(s->y);
	g_array_unref(s->breaks);
	g_free(s);
}

static void
marker_free(gpointer p)
{
	struct svg_marker *m = p;
	g_free(m->css);
	g_free(m->title);
	g_free(m);
}

void
svg_series_add(struct svg_series *s, int64_t x, double y)
{
	g_array_append_val(s->x, x);
	g_array_append_val(s->y, y);
}

void
svg_chart_init(struct svg_chart *c, enum svg_kind kind, const char *id, const char *title,
	       const char *unit, struct web_request *req)
{
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->id = id;
	c->title = title;
	c->unit = unit;
	c->width = SVG_W;
	c->height = SVG_H;
	c->y_min = NAN;
	c->y_max = NAN;
	c->series = g_ptr_array_new_with_free_func(series_free);
	c->markers = g_ptr_array_new_with_free_func(marker_free);
	c->req = req;
	c->x_fmt = "%Y-%m-%d";
}

void
svg_chart_add_marker(struct svg_chart *c, int64_t x, const char *css, const char *title)
{
	struct svg_marker *m = g_new0(struct svg_marker, 1);
	m->x = x;
	m->css = g_strdup(css);
	m->title = g_strdup(title);
	g_ptr_array_add(c->markers, m);
}

void
svg_chart_clear(struct svg_chart *c)
{
	if (c->series != NULL)
		g_ptr_array_unref(c->series);
	if (c->markers != NULL)
		g_ptr_array_unref(c->markers);
	c->series = NULL;
	c->markers = NULL;
}

void
svg_format_value(GString *out, double v)
{
	double a = fabs(v);
	if (a >= 1e9)
		g_string_append_printf(out, "%.3g\xe2\x80\xafG", v / 1e9);
	else if (a >= 1e6)
		g_string_append_printf(out, "%.3g\xe2\x80\xafM", v / 1e6);
	else if (a >= 1e4)
		g_string_append_printf(out, "%.3g\xe2\x80\xafk", v / 1e3);
	else if (a == floor(a))
		g_string_append_printf(out, "%.0f", v);
	else
		g_string_append_printf(out, "%.1f", v);
}

static double
nice_step(double range, int target)
{
	double raw = range / target;
	double mag = pow(10, floor(log10(raw)));
	double f = raw / mag;
	double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
	return nice * mag;
}

struct scale {
	int64_t x0, x1;
	double y0, y1;
	double px0, px1, py0, py1; /* plot area */
};

static double
sx(const struct scale *s, int64_t x)
{
	if (s->x1 == s->x0)
		return (s->px0 + s->px1) / 2;
	return s->px0 + (double)(x - s->x0) * (s->px1 - s->px0) / (double)(s->x1 - s->x0);
}

static double
sy(const struct scale *s, double y)
{
	if (s->y1 == s->y0)
		return (s->py0 + s->py1) / 2;
	return s->py1 - (y - s->y0) * (s->py1 - s->py0) / (s->y1 - s->y0);
}

static void
data_range(const struct svg_chart *c, int64_t *x0, int64_t *x1, double *y0, double *y1)
{
	bool any = false;
	*x0 = INT64_MAX;
	*x1 = INT64_MIN;
	*y0 = INFINITY;
	*y1 = -INFINITY;
	GArray *stack = NULL;
	if (c->kind == SVG_BARS && c->stacked)
		stack = g_array_new(FALSE, TRUE, sizeof(double));
	for (guint i = 0; i < c->series->len; i++) {
		const struct svg_series *s = c->series->pdata[i];
		for (guint j = 0; j < s->x->len; j++) {
			int64_t x = g_array_index(s->x, int64_t, j);
			double y = g_array_index(s->y, double, j);
			any = true;
			*x0 = MIN(*x0, x);
			*x1 = MAX(*x1, x);
			if (stack != NULL) {
				if (stack->len <= j)
					g_array_set_size(stack, j + 1);
				g_array_index(stack, double, j) += y;
				y = g_array_index(stack, double, j);
			}
			*y0 = MIN(*y0, y);
			*y1 = MAX(*y1, y);
		}
	}
	if (stack != NULL)
		g_array_unref(stack);
	if (!any) {
		*x0 = *x1 = 0;
		*y0 = 0;
		*y1 = 1;
	}
	if (c->kind == SVG_BARS)
		*x1 += c->bar_width_s;
}

/* Calendar ticks in the display zone: hours, days, months or years. */
static void
draw_x_axis(GString *out, const struct svg_chart *c, const struct scale *sc)
{
	int64_t span = sc->x1 - sc->x0;
	GTimeZone *tz = c->req->config->tz;
	GDateTime *start;
	GDateTime *t0u = g_date_time_new_from_unix_utc(sc->x0);
	GDateTime *t0 = g_date_time_to_timezone(t0u, tz);
	int step_h = 0, step_d = 0, step_m = 0;
	const char *fmt;

	if (span <= 2 * 86400) {
		step_h = span <= 12 * 3600 ? 1 : 3;
		fmt = "%H:%M";
		start = g_date_time_new(tz, g_date_time_get_year(t0), g_date_time_get_month(t0),
					g_date_time_get_day_of_month(t0), g_date_time_get_hour(t0),
					0, 0);
	} else if (span <= 75 * 86400) {
		step_d = span <= 12 * 86400 ? 1 : span <= 31 * 86400 ? 7 : 14;
		fmt = "%b %-d";
		start = g_date_time_new(tz, g_date_time_get_year(t0), g_date_time_get_month(t0),
					g_date_time_get_day_of_month(t0), 0, 0, 0);
	} else if (span <= 3 * 366 * 86400) {
		step_m = span <= 250 * 86400 ? 1 : span <= 500 * 86400 ? 2 : 3;
		fmt = "%b %Y";
		start = g_date_time_new(tz, g_date_time_get_year(t0), g_date_time_get_month(t0), 1,
					0, 0, 0);
	} else {
		step_m = 12 * MAX(1, (int)(span / (6 * 366 * 86400)));
		fmt = "%Y";
		start = g_date_time_new(tz, g_date_time_get_year(t0), 1, 1, 0, 0, 0);
	}
	g_date_time_unref(t0);
	g_date_time_unref(t0u);

	html(out, "<g class=\"axis x\">");
	GDateTime *t = start;
	double last_label = -1e9;
	for (int guard = 0; t != NULL && guard < 400; guard++) {
		int64_t u = g_date_time_to_unix(t);
		if (u > sc->x1)
			break;
		if (u >= sc->x0 && (step_m == 0 || step_m < 12 || g_date_time_get_month(t) == 1)) {
			double x = sx(sc, u);
			svgf(out,
			     "<line class=\"grid\" x1=\"%n\" x2=\"%n\" y1=\"%n\" "
			     "y2=\"%n\"/>",
			     x, x, sc->py0, sc->py1);
			if (x - last_label > 56) {
				char *label = g_date_time_format(t, fmt);
				svgf(out, "<text x=\"%n\" y=\"%n\">", x, sc->py1 + 18);
				html_escape(out, label);
				g_string_append(out, "</text>");
				g_free(label);
				last_label = x;
			}
		}
		GDateTime *n = step_h	? g_date_time_add_hours(t, step_h)
			       : step_d ? g_date_time_add_days(t, step_d)
					: g_date_time_add_months(t, step_m);
		g_date_time_unref(t);
		t = n;
	}
	if (t != NULL)
		g_date_time_unref(t);
	html(out, "</g>");
}

static void
draw_y_axis(GString *out, const struct scale *sc, double step)
{
	html(out, "<g class=\"axis y\">");
	double first = ceil(sc->y0 / step - 1e-9) * step;
	for (double v = first; v <= sc->y1 + step * 1e-6; v += step) {
		double y = sy(sc, v);
		svgf(out,
		     "<line class=\"grid\" x1=\"%n\" x2=\"%n\" y1=\"%n\" "
		     "y2=\"%n\"/><text x=\"%n\" y=\"%n\">",
		     sc->px0, sc->px1, y, y, sc->px0 - 8, y + 4);
		/* One unit for the whole axis: 0, 5 k, 10 k, 15 k. */
		double top = MAX(fabs(sc->y0), fabs(sc->y1));
		if (fabs(v) < step * 1e-6)
			g_string_append_c(out, '0');
		else if (step < 1 && top < 1e4)
			g_string_append_printf(out, "%.*f", step >= 0.1 ? 1 : 2, v);
		else if (top >= 1e6)
			g_string_append_printf(out, "%g\xe2\x80\xafM", v / 1e6);
		else if (top >= 1e4)
			g_string_append_printf(out, "%g\xe2\x80\xafk", v / 1e3);
		else
			svg_format_value(out, v);
		g_string_append(out, "</text>");
	}
	html(out, "</g>");
}

/* Index of the last point with x <= t, or -1. */
static gssize
find_at(const struct svg_series *s, int64_t t)
{
	gssize lo = 0, hi = (gssize)s->x->len - 1, ans = -1;
	while (lo <= hi) {
		gssize mid = (lo + hi) / 2;
		if (g_array_index(s->x, int64_t, mid) <= t) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

static void
hover_text(GString *t, const struct svg_chart *c, int64_t x)
{
	char *when = web_format_local(c->req, x, c->x_fmt);
	g_string_append(t, when);
	g_free(when);
	for (guint i = 0; i < c->series->len; i++) {
		const struct svg_series *s = c->series->pdata[i];
		gssize j = find_at(s, x);
		if (j < 0)
			continue;
		g_string_append_printf(t, "\n%s: ", s->name);
		svg_format_value(t, g_array_index(s->y, double, j));
		if (c->unit != NULL && strcmp(c->unit, "%") == 0)
			g_string_append(t, "%");
		else if (c->unit != NULL)
			g_string_append_printf(t, " %s", c->unit);
	}
}

static gint
cmp_int64(gconstpointer a, gconstpointer b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void
draw_lines(GString *out, const struct svg_chart *c, const struct scale *sc)
{
	GArray *xs = g_array_new(FALSE, FALSE, sizeof(int64_t));
	for (guint i = 0; i < c->series->len; i++) {
		const struct svg_series *s = c->series->pdata[i];
		if (s->x->len == 0)
			continue;
		html(out, "<g class=\"series %s\">", s->css);
		if (c->area) {
			svgf(out, "<path class=\"area\" d=\"M%n %n",
			     sx(sc, g_array_index(s->x, int64_t, 0)), sc->py1);
			for (guint j = 0; j < s->x->len; j++)
				svgf(out, " L%n %n", sx(sc, g_array_index(s->x, int64_t, j)),
				     sy(sc, g_array_index(s->y, double, j)));
			svgf(out, " L%n %n Z\"/>",
			     sx(sc, g_array_index(s->x, int64_t, s->x->len - 1)), sc->py1);
		}
		g_string_append(out, "<path class=\"line\" d=\"");
		guint b = 0;
		for (guint j = 0; j < s->x->len; j++) {
			bool brk = j == 0;
			while (b < s->breaks->len && g_array_index(s->breaks, guint, b) <= j) {
				brk |= g_array_index(s->breaks, guint, b) == j;
				b++;
			}
			svgf(out, "%s%n %n", brk ? (j ? " M" : "M") : " L",
			     sx(sc, g_array_index(s->x, int64_t, j)),
			     sy(sc, g_array_index(s->y, double, j)));
			g_array_append_val(xs, g_array_index(s->x, int64_t, j));
		}
		g_string_append(out, "\"/>");
		/* Dots: all when few, otherwise the last one; each with its title. */
		for (guint j = 0; j < s->x->len; j++) {
			if (s->x->len > SVG_DOTS_ALL && j + 1 != s->x->len)
				continue;
			int64_t x = g_array_index(s->x, int64_t, j);
			double y = g_array_index(s->y, double, j);
			svgf(out, "<circle class=\"pt\" cx=\"%n\" cy=\"%n\" r=\"3\">", sx(sc, x),
			     sy(sc, y));
			GString *t = g_string_new(NULL);
			char *when = web_format_local(c->req, x, c->x_fmt);
			g_string_append_printf(t, "%s \xc2\xb7 %s: ", when, s->name);
			g_free(when);
			svg_format_value(t, y);
			if (c->unit != NULL)
				g_string_append_printf(t, strcmp(c->unit, "%") == 0 ? "%s" : " %s",
						       c->unit);
			html(out, "<title>%s</title></circle>", t->str);
			g_string_free(t, TRUE);
		}
		g_string_append(out, "</g>");
	}

	/* Hover columns over the distinct times, thinned to SVG_MAX_HOVER. */
	g_array_sort(xs, cmp_int64);
	int64_t *v = (int64_t *)(void *)xs->data;
	guint n = xs->len;
	guint m = 0;
	for (guint i = 0; i < n; i++)
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	guint stride = m > SVG_MAX_HOVER ? (m + SVG_MAX_HOVER - 1) / SVG_MAX_HOVER : 1;
	g_string_append(out, "<g class=\"hover\">");
	for (guint i = 0; i < m; i += stride) {
		guint last = MIN(i + stride, m) - 1;
		double xa = i == 0 ? sc->px0 : (sx(sc, v[i - 1]) + sx(sc, v[i])) / 2;
		double xb = last + 1 >= m ? sc->px1 : (sx(sc, v[last]) + sx(sc, v[last + 1])) / 2;
		if (xb - xa < 0.5)
			continue;
		GString *t = g_string_new(NULL);
		hover_text(t, c, v[last]);
		svgf(out,
		     "<rect class=\"hov\" x=\"%n\" y=\"%n\" width=\"%n\" "
		     "height=\"%n\">",
		     xa, sc->py0, xb - xa, sc->py1 - sc->py0);
		html(out, "<title>%s</title></rect>", t->str);
		g_string_free(t, TRUE);
	}
	g_string_append(out, "</g>");
	g_array_unref(xs);
}

static void
draw_bars(GString *out, const struct svg_chart *c, const struct scale *sc)
{
	/* Stacked: series share the x positions (same buckets, same order). */
	GArray *base = g_array_new(FALSE, TRUE, sizeof(double));
	for (guint i = 0; i < c->series->len; i++) {
		const struct svg_series *s = c->series->pdata[i];
		html(out, "<g class=\"series %s\">", s->css);
		for (guint j = 0; j < s->x->len; j++) {
			int64_t x = g_array_index(s->x, int64_t, j);
			double y = g_array_index(s->y, double, j);
			if (base->len <= j)
				g_array_set_size(base, j + 1);
			double b = c->stacked ? g_array_index(base, double, j) : 0;
			double xa = sx(sc, x), xb = sx(sc, x + c->bar_width_s);
			double w = xb - xa;
			double gap = w > 4 ? MIN(w * 0.2, 6) : 0;
			double ya = sy(sc, b + y), yb = sy(sc, b);
			if (c->stacked)
				g_array_index(base, double, j) += y;
			svgf(out,
			     "<rect class=\"pt bar\" x=\"%n\" y=\"%n\" width=\"%n\" "
			     "height=\"%n\">",
			     xa + gap / 2, ya, MAX(w - gap, 0.6), MAX(yb - ya, 0));
			GString *t = g_string_new(NULL);
			char *when = web_format_local(c->req, x, c->x_fmt);
			g_string_append_printf(t, "%s \xc2\xb7 %s: ", when, s->name);
			g_free(when);
			svg_format_value(t, y);
			if (c->unit != NULL)
				g_string_append_printf(t, " %s", c->unit);
			html(out, "<title>%s</title></rect>", t->str);
			g_string_free(t, TRUE);
		}
		g_string_append(out, "</g>");
	}
	g_array_unref(base);
}

void
svg_chart_render(GString *out, const struct svg_chart *c)
{
	struct scale sc;
	int64_t x0, x1;
	double y0, y1;
	bool empty = true;

	for (guint i = 0; i < c->series->len; i++)
		if (((struct svg_series *)c->series->pdata[i])->x->len > 0)
			empty = false;

	html(out, "<figure class=\"chart\" id=\"%s\"><figcaption>%s</figcaption>", c->id, c->title);
	if (empty) {
		html(out, "<p class=\"empty\">No data in this period.</p></figure>");
		return;
	}
	data_range(c, &x0, &x1, &y0, &y1);
	if (c->x_min != 0 || c->x_max != 0) {
		x0 = c->x_min;
		x1 = c->x_max;
	}
	if (x1 <= x0)
		x1 = x0 + 86400;
	if (c->kind == SVG_BARS)
		y0 = 0;
	if (!isnan(c->y_min))
		y0 = c->y_min;
	if (!isnan(c->y_max))
		y1 = c->y_max;
	if (y1 - y0 < 1e-9) {
		/* One value (one snapshot, a flat line): a band around it. */
		double pad = MAX(1.0, fabs(y0) * 0.02);
		if (isnan(c->y_min))
			y0 -= pad;
		if (isnan(c->y_max))
			y1 += pad;
	}
	if (y1 <= y0)
		y1 = y0 + 1;
	double step = nice_step(y1 - y0, 4);
	if (c->integer && step < 1)
		step = 1;
	if (isnan(c->y_min))
		y0 = floor(y0 / step) * step;
	if (isnan(c->y_max))
		y1 = ceil(y1 / step) * step;
	if (y1 <= y0)
		y1 = y0 + step;

	sc.x0 = x0;
	sc.x1 = x1;
	sc.y0 = y0;
	sc.y1 = y1;
	sc.px0 = SVG_ML;
	sc.px1 = c->width - SVG_MR;
	sc.py0 = SVG_MT;
	sc.py1 = c->height - SVG_MB;

	html(out,
	     "<svg class=\"plot\" viewBox=\"0 0 %d %d\" preserveAspectRatio=\"xMidYMid meet\" "
	     "role=\"img\" aria-label=\"%s\">",
	     c->width, c->height, c->title);
	draw_y_axis(out, &sc, step);
	draw_x_axis(out, c, &sc);
	svgf(out,
	     "<rect class=\"frame\" x=\"%n\" y=\"%n\" width=\"%n\" "
	     "height=\"%n\"/>",
	     sc.px0, sc.py0, sc.px1 - sc.px0, sc.py1 - sc.py0);
	if (c->kind == SVG_BARS)
		draw_bars(out, c, &sc);
	else
		draw_lines(out, c, &sc);
	/* Replacement markers: a triangle on top and a faint line; with many
	 * of them (a busy colour device over two years) the triangles only. */
	bool lines = c->markers->len <= SVG_MARKER_LINES_MAX;
	for (guint i = 0; i < c->markers->len; i++) {
		const struct svg_marker *m = c->markers->pdata[i];
		if (m->x < x0 || m->x > x1)
			continue;
		double x = sx(&sc, m->x);
		html(out, "<g class=\"marker %s\">", m->css);
		if (lines)
			svgf(out, "<line x1=\"%n\" x2=\"%n\" y1=\"%n\" y2=\"%n\"/>", x, x, sc.py0,
			     sc.py1);
		svgf(out, "<path class=\"pt\" d=\"M%n %n l-4 -7 h8 z\"/>", x, sc.py0 - 1);
		html(out, "<title>%s</title></g>", m->title);
	}
	g_string_append(out, "</svg>");

	/* Legend (HTML, so it wraps on narrow screens). */
	if (c->series->len > 1 || c->markers->len > 0) {
		g_string_append(out, "<ul class=\"legend\">");
		for (guint i = 0; i < c->series->len; i++) {
			const struct svg_series *s = c->series->pdata[i];
			html(out, "<li><span class=\"key %s\"></span>%s</li>", s->css, s->name);
		}
		if (c->markers->len > 0)
			html(out, "<li><span class=\"key marker\"></span>replacement</li>");
		g_string_append(out, "</ul>");
	}
	g_string_append(out, "</figure>");
}
