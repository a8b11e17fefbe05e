/* test-web-render.c: the web view's building blocks, table-driven and
 * against GLib as the reference: html()'s escaping of every directive,
 * text cleaning, the fast UTC parser and local-time formatter against
 * GDateTime (random instants over four centuries, zones with DST), the
 * time buckets, level classes, supply names, the Prometheus writer's
 * escaping, and an SVG chart's shape. */
#include "config.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "util/sktime.h"
#include "web/internal.h"

static struct web_config *
config_with_tz(const char *tz)
{
	struct web_config *c = g_new0(struct web_config, 1);
	c->refs = 1;
	c->tz = g_time_zone_new_identifier(tz);
	g_assert_nonnull(c->tz);
	return c;
}

static void
config_free(struct web_config *c)
{
	g_time_zone_unref(c->tz);
	g_free(c);
}

static void
test_escape(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"plain", "plain"},
	    {"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
	    {"a\"b'c&d", "a&quot;b&apos;c&amp;d"},
	    {"tab\tnew\nline", "tab\tnew\nline"},
	    {"bell\x07nul", "bell\xef\xbf\xbdnul"},
	    {"bad \xff utf8", "bad \xef\xbf\xbd utf8"},
	    {"\xe2\x82\xac ok", "\xe2\x82\xac ok"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		GString *out = g_string_new(NULL);
		html_escape(out, cases[i].in);
		/* g_markup_escape_text writes ' as &apos; (valid HTML5) */
		g_assert_cmpstr(out->str, ==, cases[i].want);
		g_string_free(out, TRUE);
	}
	GString *out = g_string_new(NULL);
	html(out, "<a href=\"/devices/%U\" title=\"%s\">%s %R %d %u %L %N %F %%</a>", "a/b c\"",
	     "q\"><x", NULL, "<b>", -3, 7u, (int64_t)-12, (int64_t)1234567, 2.25);
	g_assert_cmpstr(
	    out->str, ==,
	    "<a href=\"/devices/a%2Fb%20c%22\" title=\"q&quot;&gt;&lt;x\"> <b> -3 7 -12 "
	    "1\xe2\x80\xaf"
	    "234\xe2\x80\xaf"
	    "567 2.2 %</a>");
	g_string_truncate(out, 0);
	html(out, "%N|%N|%F", (int64_t)SNAPSHOT_ABSENT, (int64_t)-1000, NAN);
	g_assert_cmpstr(out->str, ==,
			"\xe2\x80\x93|\xe2\x88\x92"
			"1\xe2\x80\xaf"
			"000|\xe2\x80\x93");
	g_string_free(out, TRUE);
}

static void
test_utc_parse(void)
{
	GRand *r = g_rand_new_with_seed(42);
	for (int i = 0; i < 20000; i++) {
		/* 1600 .. 2400 */
		int64_t t = (int64_t)g_rand_double_range(r, -11676096000.0, 13569465600.0);
		char utc[SK_UTC_SIZE];
		sk_time_format_utc(t, utc);
		g_assert_cmpint(web_utc_unix(utc), ==, t);
	}
	g_rand_free(r);
	/* Not our form: the general parser decides. */
	g_assert_cmpint(web_utc_unix("2025-03-09T11:57:47+01:00"), ==,
			web_utc_unix("2025-03-09T10:57:47Z"));
	g_assert_cmpint(web_utc_unix("2025-13-09T11:57:47Z"), ==, 0);
	g_assert_cmpint(web_utc_unix("garbage"), ==, 0);
	g_assert_cmpint(web_utc_unix(NULL), ==, 0);
}

static void
test_local_format(void)
{
	const char *zones[] = {"UTC",	       "Europe/Berlin",	      "America/New_York",
			       "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"};
	GRand *r = g_rand_new_with_seed(7);
	for (size_t z = 0; z < G_N_ELEMENTS(zones); z++) {
		struct web_config *c = config_with_tz(zones[z]);
		struct web_request req = {.config = c};
		for (int i = 0; i < 3000; i++) {
			int64_t t = (int64_t)g_rand_double_range(r, 0.0, 4102444800.0);
			for (int f = 0; f < 2; f++) {
				const char *fmt = f ? "%Y-%m-%d %H:%M" : "%Y-%m-%d";
				GDateTime *u = g_date_time_new_from_unix_utc(t);
				GDateTime *l = g_date_time_to_timezone(u, c->tz);
				char *want = g_date_time_format(l, fmt);
				char *got = web_format_local(&req, t, fmt);
				g_assert_cmpstr(got, ==, want);
				g_free(got);
				g_free(want);
				g_date_time_unref(l);
				g_date_time_unref(u);
			}
		}
		config_free(c);
	}
	g_rand_free(r);
}

static void
test_buckets(void)
{
	struct web_config *c = config_with_tz("Europe/Berlin");
	GTimeZone *tz = c->tz;
	/* 2025-03-30 is the DST change in Berlin; a Sunday. */
	int64_t t = web_utc_unix("2025-03-30T12:00:00Z");
	int64_t day = web_bucket_start(tz, WEB_INTERVAL_DAY, t);
	g_assert_cmpint(day, ==, web_utc_unix("2025-03-29T23:00:00Z"));
	g_assert_cmpint(web_bucket_next(tz, WEB_INTERVAL_DAY, day), ==,
			web_utc_unix("2025-03-30T22:00:00Z"));
	g_assert_cmpint(web_bucket_start(tz, WEB_INTERVAL_WEEK, t), ==,
			web_utc_unix("2025-03-23T23:00:00Z"));
	g_assert_cmpint(web_bucket_start(tz, WEB_INTERVAL_MONTH, t), ==,
			web_utc_unix("2025-02-28T23:00:00Z"));
	g_assert_cmpint(
	    web_bucket_next(tz, WEB_INTERVAL_MONTH, web_bucket_start(tz, WEB_INTERVAL_MONTH, t)),
	    ==, web_utc_unix("2025-03-31T22:00:00Z"));
	g_assert_cmpint(web_bucket_start(tz, WEB_INTERVAL_SNAPSHOT, t), ==, t);
	/* Every instant lies in [start, next) of its bucket. */
	for (int64_t x = t - 40 * 86400; x < t + 40 * 86400; x += 3607)
		for (int k = WEB_INTERVAL_DAY; k <= WEB_INTERVAL_MONTH; k++) {
			int64_t s = web_bucket_start(tz, k, x);
			g_assert_cmpint(s, <=, x);
			g_assert_cmpint(web_bucket_next(tz, k, s), >, x);
		}
	config_free(c);
}

static void
test_levels_and_names(void)
{
	g_assert_cmpstr(html_level_class(50, "ok", 10), ==, "lvl-ok");
	g_assert_cmpstr(html_level_class(10, "ok", 10), ==, "lvl-low");
	g_assert_cmpstr(html_level_class(11, NULL, SNAPSHOT_ABSENT), ==, "lvl-ok");
	g_assert_cmpstr(html_level_class(9, NULL, SNAPSHOT_ABSENT), ==, "lvl-low");
	g_assert_cmpstr(html_level_class(40, "low", 10), ==, "lvl-low");
	g_assert_cmpstr(html_level_class(3, "out", 10), ==, "lvl-out");
	g_assert_cmpstr(html_level_class(0, NULL, 10), ==, "lvl-out");
	g_assert_cmpstr(html_level_class(SNAPSHOT_ABSENT, NULL, 10), ==, "lvl-unknown");
	static const struct {
		const char *key, *color, *desc, *type;
		bool brief;
		const char *want;
	} names[] = {
	    {"K", "black", NULL, "tonerCartridge", true, "Black"},
	    {"K", "black", NULL, "tonerCartridge", false, "Black toner"},
	    {"cyanDrum", "cyan", NULL, "imageDrum", false, "Cyan drum"},
	    {"maintenanceKit", NULL, NULL, "maintenanceKit", true, "Maintenance kit"},
	    {"fuser", NULL, "Fuser Kit", "fuser", false, "Fuser Kit"},
	    {"blackToner", "black", "Black Cartridge", NULL, false, "Black Cartridge"},
	    {"transferKit", NULL, NULL, NULL, false, "Transfer kit"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		char *n = web_supply_name(names[i].key, names[i].color, names[i].desc,
					  names[i].type, names[i].brief);
		g_assert_cmpstr(n, ==, names[i].want);
		g_free(n);
	}
}

static void
test_chart(void)
{
	struct web_config *c = config_with_tz("UTC");
	struct web_request req = {.config = c};
	struct svg_chart ch;
	svg_chart_init(&ch, SVG_LINE, "t", "Title <x>", "pages", &req);
	struct svg_series *s = svg_series_new("Total \"all\"", "s-total");
	int64_t t0 = web_utc_unix("2025-01-01T00:00:00Z");
	for (int i = 0; i < 400; i++)
		svg_series_add(s, t0 + (int64_t)i * 86400, 1000.0 + i * 10.5);
	g_ptr_array_add(ch.series, s);
	svg_chart_add_marker(&ch, t0 + 100 * 86400, "c-black", "replaced <now>");
	GString *out = g_string_new(NULL);
	svg_chart_render(out, &ch);
	g_assert_nonnull(strstr(out->str, "<figcaption>Title &lt;x&gt;</figcaption>"));
	g_assert_nonnull(strstr(out->str, "<path class=\"line\" d=\"M64 "));
	g_assert_null(strstr(out->str, "<x>"));
	g_assert_nonnull(strstr(out->str, "replaced &lt;now&gt;"));
	/* Hover columns are thinned, every one has a title. */
	guint hov = 0;
	for (const char *p = out->str; (p = strstr(p, "class=\"hov\"")) != NULL; p++)
		hov++;
	g_assert_cmpuint(hov, >, 100);
	g_assert_cmpuint(hov, <=, 160);
	GRegex *hover = g_regex_new(
	    "<title>2025-01-0[1-3]\nTotal &quot;all&quot;: 10[0-9.]+ pages</title>", 0, 0, NULL);
	g_assert_true(g_regex_match(hover, out->str, 0, NULL));
	g_regex_unref(hover);
	g_assert_nonnull(
	    strstr(out->str, "<title>2026-02-04\nTotal &quot;all&quot;: 5189.5 pages</title>"));
	/* Every other month as ticks over 400 days; ASCII numbers with at most one decimal. */
	g_assert_nonnull(strstr(out->str, ">Mar 2025</text>"));
	GRegex *num = g_regex_new("=\"-?[0-9]+(\\.[0-9])?\"", 0, 0, NULL);
	g_assert_true(g_regex_match(num, out->str, 0, NULL));
	g_regex_unref(num);
	g_string_free(out, TRUE);
	svg_chart_clear(&ch);

	/* Empty: a message, no SVG. */
	svg_chart_init(&ch, SVG_BARS, "e", "Empty", "pages", &req);
	out = g_string_new(NULL);
	svg_chart_render(out, &ch);
	g_assert_nonnull(strstr(out->str, "No data in this period."));
	g_assert_null(strstr(out->str, "<svg"));
	g_string_free(out, TRUE);
	svg_chart_clear(&ch);
	config_free(c);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/web-render/escape", test_escape);
	g_test_add_func("/web-render/utc-parse", test_utc_parse);
	g_test_add_func("/web-render/local-format", test_local_format);
	g_test_add_func("/web-render/buckets", test_buckets);
	g_test_add_func("/web-render/levels-and-names", test_levels_and_names);
	g_test_add_func("/web-render/chart", test_chart);
	return g_test_run();
}
