/* test-sim.c: the device simulator against snapkeep's own parsers.
 *
 * Determinism (same seed, same bytes), schedule arithmetic, the counter and
 * supply invariants over a simulated year checked through devxml_parse of
 * the generated documents, the template round trip, and every mail variant
 * and fault through mime_extract + devxml_parse with its expected outcome. */
#include "config.h"

#include "devxml/devxml.h"
#include "mime/mime.h"
#include "sim/sim-mail.h"
#include "sim/sim.h"
#include "util/sktime.h"

#include <glib.h>
#include <string.h>

#define DAY 86400
#define START 1735689600 /* 2025-01-01T00:00:00Z */

static const char *
testdata(void)
{
	const char *d = g_getenv("SK_TESTDATA");
	return d != NULL ? d : "tests/data";
}

static struct sim_fleet *
small_fleet(guint32 seed, unsigned n, const char *dialect, unsigned log_cap)
{
	struct sim_fleet_settings s;
	sim_fleet_settings_default(&s);
	s.seed = seed;
	s.devices = n;
	s.start = START;
	s.dialect = dialect;
	s.log_capacity = log_cap;
	s.job_log_capacity =
	    log_cap < SIM_LOG_CAPACITY_DEFAULT ? log_cap : SIM_JOB_LOG_CAPACITY_DEFAULT;
	return sim_fleet_new(&s);
}

static struct snapshot *
parse_xml(GBytes *xml)
{
	struct snapshot *snap = NULL;
	char *error = NULL;
	gsize len;
	const char *x = g_bytes_get_data(xml, &len);
	int r = devxml_parse(x, len, NULL, &snap, &error);
	if (r != 0)
		g_test_message("devxml_parse: %s", error);
	g_assert_cmpint(r, ==, 0);
	g_assert_nonnull(snap);
	g_free(error);
	return snap;
}

static int64_t
counter(const struct snapshot *snap, const char *name)
{
	const struct snapshot_counter *c = snapshot_counter_find(snap, name);
	return c != NULL ? c->value : SNAPSHOT_ABSENT;
}

/* ---- schedules ---------------------------------------------------------- */

static int64_t
utc(const char *text)
{
	char buf[SK_UTC_SIZE];
	int64_t t;
	g_assert_cmpint(sk_time_parse_iso8601(text, buf, &t, NULL, NULL), ==, 0);
	return t;
}

static void
test_schedule(void)
{
	struct sim_schedule s;
	char *error = NULL;

	g_assert_cmpint(sim_schedule_parse("3d", &s, &error), ==, 0);
	g_assert_cmpint(s.unit, ==, SIM_SCHED_DAYS);
	g_assert_cmpuint(s.every, ==, 3);
	g_assert_cmpint(sim_schedule_parse("2w", &s, &error), ==, 0);
	g_assert_cmpint(s.unit, ==, SIM_SCHED_WEEKS);
	g_assert_cmpint(sim_schedule_parse("pages:500", &s, &error), ==, 0);
	g_assert_cmpint(s.unit, ==, SIM_SCHED_PAGES);
	g_assert_cmpuint(s.every, ==, 500);
	static const char *const bad[] = {"", "x", "0d", "49p", "30001p", "3y", "-1d", "1000d"};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_cmpint(sim_schedule_parse(bad[i], &s, &error), ==, -1);
		g_assert_nonnull(error);
		g_clear_pointer(&error, g_free);
	}

	/* Months keep the anchor's day, clamped to short months. */
	g_assert_cmpint(sim_schedule_parse("1m", &s, &error), ==, 0);
	int64_t a = utc("2024-01-31T10:00:00Z");
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, a, 0), ==, a);
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, a, 1), ==, utc("2024-02-29T10:00:00Z"));
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, a, 2), ==, utc("2024-03-31T10:00:00Z"));
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, a, 3), ==, utc("2024-04-30T10:00:00Z"));
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, a, 13), ==, utc("2025-02-28T10:00:00Z"));
	g_assert_cmpint(sim_schedule_parse("3m", &s, &error), ==, 0);
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, utc("2025-11-30T00:00:00Z"), 1), ==,
			utc("2026-02-28T00:00:00Z"));

	/* Weeks and days, also across a daylight-saving change in local time. */
	g_assert_cmpint(sim_schedule_parse("2w", &s, &error), ==, 0);
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, a, 3), ==, a + 42 * (int64_t)DAY);
	GTimeZone *ny = g_time_zone_new_identifier("America/New_York");
	if (ny != NULL) {
		g_assert_cmpint(sim_schedule_parse("1d", &s, &error), ==, 0);
		int64_t before = utc("2025-03-08T09:00:00-05:00");
		/* 2025-03-09 is the switch to EDT: 09:00 local is 13:00Z. */
		g_assert_cmpint(sim_schedule_time_k(&s, ny, before, 1), ==,
				utc("2025-03-09T13:00:00Z"));
		g_assert_cmpint(sim_schedule_time_k(&s, ny, before, 2), ==,
				utc("2025-03-10T13:00:00Z"));
		g_time_zone_unref(ny);
	} else {
		g_test_message("no tzdata: DST case skipped");
	}

	/* Pages. */
	g_assert_cmpint(sim_schedule_parse("500p", &s, &error), ==, 0);
	g_assert_cmpint(sim_schedule_pages_k(&s, 1000, 3), ==, 2500);
	g_assert_cmpint(sim_schedule_time_k(&s, NULL, a, 1), ==, -1);

	/* A page schedule fires when the counter crosses the target. */
	struct sim_fleet_settings fs;
	sim_fleet_settings_default(&fs);
	fs.devices = 3;
	fs.start = START;
	fs.schedule = &s;
	struct sim_fleet *fleet = sim_fleet_new(&fs);
	for (unsigned i = 0; i < fleet->devices->len; i++) {
		struct sim_device *dev = g_ptr_array_index(fleet->devices, i);
		for (unsigned k = 0; k < 4; k++) {
			int64_t target = sim_schedule_pages_k(&s, dev->sched_anchor, dev->sched_k);
			int64_t due = sim_device_next_due(dev, START + 365 * (int64_t)DAY);
			g_assert_cmpint(due, >=, 0);
			g_assert_cmpint(sim_device_total_impressions(dev), ==, target);
			sim_device_snapshot_taken(dev);
		}
	}
	sim_fleet_free(&fleet);
}

/* ---- determinism -------------------------------------------------------- */

static GPtrArray *
run_mails(guint32 seed)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	struct sim_fleet *fleet = small_fleet(seed, 4, NULL, 40);
	struct sim_mail_settings ms;
	struct sim_variant v;
	sim_mail_settings_default(&ms);
	sim_variant_default(&v);
	for (unsigned round = 1; round <= 3; round++) {
		for (unsigned i = 0; i < fleet->devices->len; i++) {
			struct sim_device *dev = g_ptr_array_index(fleet->devices, i);
			int64_t t = START + round * 5 * (int64_t)DAY + i * 60;
			sim_device_advance(dev, t);
			GBytes *xml = sim_device_write_xml(dev, t * 1000 + 123, NULL);
			struct sim_mail *m = sim_mail_snapshot(dev, t * 1000 + 123, xml, &v,
							       SIM_FAULT_NONE, dev->mails++, &ms);
			g_ptr_array_add(out, g_bytes_ref(m->raw));
			sim_mail_free(&m);
			g_bytes_unref(xml);
		}
	}
	sim_fleet_free(&fleet);
	return out;
}

static void
test_determinism(void)
{
	GPtrArray *a = run_mails(7), *b = run_mails(7), *c = run_mails(8);
	g_assert_cmpuint(a->len, ==, b->len);
	unsigned differ = 0;
	for (unsigned i = 0; i < a->len; i++) {
		g_assert_true(g_bytes_equal(g_ptr_array_index(a, i), g_ptr_array_index(b, i)));
		if (!g_bytes_equal(g_ptr_array_index(a, i), g_ptr_array_index(c, i)))
			differ++;
	}
	g_assert_cmpuint(differ, ==, a->len);
	g_ptr_array_unref(a);
	g_ptr_array_unref(b);
	g_ptr_array_unref(c);
}

/* ---- a simulated year ---------------------------------------------------- */

struct seen_supply {
	char *serial;
	int64_t level, pages;
};

static void
test_year(void)
{
	struct sim_fleet *fleet = small_fleet(45, 6, NULL, 30);
	unsigned replacements = 0, low_seen = 0, docs = 0, events_total = 0;

	for (unsigned i = 0; i < fleet->devices->len; i++) {
		struct sim_device *dev = g_ptr_array_index(fleet->devices, i);
		struct snapshot *prev = NULL;
		struct seen_supply seen[SIM_SUPPLY_MAX] = {0};
		GHashTable *seqs = g_hash_table_new(g_int64_hash, g_int64_equal);
		/* Heavy use so that supplies go round within the year. */
		dev->ppd *= 2;
		for (int64_t t = START + 7 * DAY; t <= START + 365 * (int64_t)DAY; t += 7 * DAY) {
			sim_device_advance(dev, t);
			GBytes *xml = sim_device_write_xml(dev, t * 1000, NULL);
			struct snapshot *snap = parse_xml(xml);
			docs++;
			g_assert_cmpstr(snap->serial, ==, dev->serial);
			int64_t total = counter(snap, "TotalImpressions");
			int64_t mono = counter(snap, "MonochromeImpressions");
			int64_t color = counter(snap, "ColorImpressions");
			g_assert_cmpint(total, ==, sim_device_total_impressions(dev));
			g_assert_cmpint(total, ==, mono + (color == SNAPSHOT_ABSENT ? 0 : color));
			/* Sheets vs impressions. */
			int64_t simplex = counter(snap, "SimplexSheets"),
				duplex = counter(snap, "DuplexSheets");
			if (simplex != SNAPSHOT_ABSENT && duplex != SNAPSHOT_ABSENT)
				g_assert_cmpint(simplex + 2 * duplex, ==, total);
			/* Per media size (FutureSmart). */
			int64_t media_sum = 0;
			for (unsigned k = 0; k < snap->media_counters->len; k++) {
				const struct snapshot_counter *c =
				    g_ptr_array_index(snap->media_counters, k);
				if (strcmp(c->name, "TotalImpressions") == 0)
					media_sum += c->value;
			}
			if (snap->dialect == SNAPSHOT_DIALECT_FUTURESMART)
				g_assert_cmpint(media_sum, ==, total);
			if (dev->model->mfp && snap->dialect == SNAPSHOT_DIALECT_FUTURESMART) {
				g_assert_cmpint(counter(snap, "AdfImages"), >, 0);
				g_assert_cmpint(counter(snap, "CopyImpressions"), <=, total);
			}
			/* Counters never decrease. */
			if (prev != NULL) {
				static const char *const names[] = {
				    "TotalImpressions", "MonochromeImpressions",
				    "ColorImpressions", "DuplexSheets",
				    "JamEvents",	"AdfImages"};
				for (unsigned k = 0; k < G_N_ELEMENTS(names); k++) {
					int64_t a = counter(prev, names[k]),
						b = counter(snap, names[k]);
					if (a != SNAPSHOT_ABSENT && b != SNAPSHOT_ABSENT)
						g_assert_cmpint(b, >=, a);
				}
			}
			/* Supplies: levels fall; a new serial means a replaced supply. */
			g_assert_cmpuint(snap->supplies->len, ==, dev->n_supplies);
			for (unsigned k = 0; k < snap->supplies->len; k++) {
				const struct snapshot_supply *s =
				    g_ptr_array_index(snap->supplies, k);
				g_assert_cmpint(s->level_percent, >=, 0);
				g_assert_cmpint(s->level_percent, <=, 100);
				g_assert_cmpint(s->level_percent, ==,
						sim_supply_level(&dev->supplies[k]));
				if (s->state != NULL && strcmp(s->state, "low") == 0) {
					low_seen++;
					g_assert_cmpint(s->level_percent, <=, s->low_threshold);
				}
				if (s->state != NULL && strcmp(s->state, "out") == 0)
					g_assert_cmpint(s->level_percent, ==, 0);
				if (s->serial == NULL)
					continue;
				if (seen[k].serial != NULL &&
				    strcmp(seen[k].serial, s->serial) == 0) {
					g_assert_cmpint(s->level_percent, <=, seen[k].level);
					if (s->pages != SNAPSHOT_ABSENT)
						g_assert_cmpint(s->pages, >=, seen[k].pages);
				} else if (seen[k].serial != NULL) {
					replacements++;
					/* New serial: installed near 100 % with its page count
					 * restarted inside this interval; the level is what is
					 * left after the pages printed on it since. */
					int64_t interval =
					    total - counter(prev, "TotalImpressions");
					double cap = 0.95 * (double)dev->supplies[k].m->yield;
					if (s->pages != SNAPSHOT_ABSENT) {
						g_assert_cmpint(s->pages, <=, interval);
						g_assert_cmpfloat(
						    (double)s->level_percent, >=,
						    97.0 - 110.0 * (double)s->pages / cap - 1.0);
					} else {
						/* Legacy documents carry no per-supply pages. */
						g_assert_cmpint(dev->supplies[k].pages, <=,
								interval);
					}
				}
				g_free(seen[k].serial);
				seen[k].serial = g_strdup(s->serial);
				seen[k].level = s->level_percent;
				seen[k].pages = s->pages != SNAPSHOT_ABSENT ? s->pages : 0;
			}
			/* Events: at most capacity per log, unique sequence numbers. */
			g_assert_cmpuint(snap->events->len, <=, 2 * 30);
			int64_t prev_pages = G_MAXINT64;
			for (unsigned k = 0; k < snap->events->len; k++) {
				const struct snapshot_event *e = g_ptr_array_index(snap->events, k);
				g_assert_nonnull(e->code);
				g_assert_nonnull(e->occurred_utc);
				g_assert_cmpint(e->page_count, <=, total);
				if (!g_hash_table_contains(seqs, &e->sequence)) {
					int64_t *key = g_new(int64_t, 1);
					*key = e->sequence;
					g_hash_table_add(seqs, key);
				}
				(void)prev_pages;
			}
			g_bytes_unref(xml);
			snapshot_free(&prev);
			prev = snap;
		}
		events_total += g_hash_table_size(seqs);
		GList *keys = g_hash_table_get_keys(seqs);
		g_list_free_full(keys, g_free);
		g_hash_table_unref(seqs);
		for (unsigned k = 0; k < SIM_SUPPLY_MAX; k++)
			g_free(seen[k].serial);
		snapshot_free(&prev);
	}
	g_test_message("year: %u documents, %u replacements, %u low, %u events", docs, replacements,
		       low_seen, events_total);
	g_assert_cmpuint(replacements, >, 0);
	g_assert_cmpuint(low_seen, >, 0);
	g_assert_cmpuint(events_total, >, 100);
	sim_fleet_free(&fleet);
}

/* The counter-reset fault starts the counters again. */
static void
test_counter_reset(void)
{
	struct sim_fleet *fleet = small_fleet(3, 1, "futuresmart", 20);
	struct sim_device *dev = g_ptr_array_index(fleet->devices, 0);
	int64_t before = sim_device_total_impressions(dev);
	g_assert_cmpint(before, >, 0);
	sim_device_counter_reset(dev, START + DAY);
	sim_device_advance(dev, START + 3 * DAY);
	GBytes *xml = sim_device_write_xml(dev, (START + 3 * DAY) * 1000LL, NULL);
	struct snapshot *snap = parse_xml(xml);
	g_assert_cmpint(counter(snap, "TotalImpressions"), <, before);
	for (unsigned k = 0; k < snap->events->len; k++) {
		const struct snapshot_event *e = g_ptr_array_index(snap->events, k);
		g_assert_cmpint(e->sequence, <, 1000);
	}
	snapshot_free(&snap);
	g_bytes_unref(xml);
	sim_fleet_free(&fleet);
}

/* ---- templates ---------------------------------------------------------- */

static struct sim_fleet *
template_fleet(const char *file, struct sim_model **model_r)
{
	char *path = g_build_filename(testdata(), "examples", file, NULL);
	char *error = NULL;
	struct sim_model *model = NULL;
	int r = sim_template_load(path, &model, &error);
	if (r != 0)
		g_test_message("%s", error);
	g_assert_cmpint(r, ==, 0);
	g_free(path);
	struct sim_fleet_settings s;
	sim_fleet_settings_default(&s);
	s.devices = 3;
	s.start = START;
	s.log_capacity = 50;
	s.models = g_ptr_array_new();
	g_ptr_array_add(s.models, model);
	struct sim_fleet *fleet = sim_fleet_new(&s);
	g_ptr_array_unref(s.models);
	fleet->settings.models = NULL;
	*model_r = model;
	return fleet;
}

static void
test_template_futuresmart(void)
{
	struct sim_model *model;
	struct sim_fleet *fleet = template_fleet("futuresmart-color-mfp.eml", &model);
	g_assert_cmpstr(model->product_number, ==, "3GY25A");
	g_assert_true(model->color);
	g_assert_true(model->mfp);
	g_assert_cmpuint(model->supplies->len, ==, 5);
	for (unsigned i = 0; i < fleet->devices->len; i++) {
		struct sim_device *dev = g_ptr_array_index(fleet->devices, i);
		int64_t t = START + 10 * (int64_t)DAY;
		sim_device_advance(dev, t);
		GBytes *xml = sim_device_write_xml(dev, t * 1000 + 500, NULL);
		gsize len;
		const char *x = g_bytes_get_data(xml, &len);
		char *doc = g_strndup(x, len);
		/* Unmodelled elements, comments and prefixes are kept as they were. */
		g_assert_nonnull(strstr(doc, "<!-- THIS DATA SUBJECT TO DISCLAIMER(S)"));
		g_assert_nonnull(strstr(doc, "<dd:ServiceID>23101</dd:ServiceID>"));
		g_assert_nonnull(
		    strstr(doc, "<dd:CounterName>BlankSides</dd:CounterName><dd:FixedPointNumber>"
				"<dd:Significand>1199</dd:Significand>"));
		g_assert_nonnull(strstr(doc, "<print:PrintService/>"));
		g_assert_nonnull(strstr(doc, "xmlns:cons=\"urn:x-sim:hp:consumables\""));
		char *mac =
		    g_strdup_printf("<dd:HardwareAddress>%s</dd:HardwareAddress>", dev->mac);
		g_assert_nonnull(strstr(doc, mac));
		g_free(mac);
		g_assert_null(strstr(doc, "PHB6820301")); /* the template's serial is gone */

		struct snapshot *snap = parse_xml(xml);
		g_assert_cmpint(snap->dialect, ==, SNAPSHOT_DIALECT_FUTURESMART);
		g_assert_cmpstr(snap->serial, ==, dev->serial);
		g_assert_cmpstr(snap->product_number, ==, "3GY25A");
		g_assert_cmpstr(snap->model, ==, "HP Color LaserJet Enterprise MFP M578");
		g_assert_cmpstr(snap->hostname, ==, dev->hostname);
		g_assert_cmpstr(snap->ip_address, ==, dev->ip);
		g_assert_cmpint(counter(snap, "TotalImpressions"), ==,
				sim_device_total_impressions(dev));
		g_assert_cmpint(counter(snap, "ColorImpressions"), ==,
				sim_device_color_impressions(dev));
		g_assert_cmpint(counter(snap, "DuplexSheets"), ==, dev->duplex);
		g_assert_cmpint(counter(snap, "AdfImages"), ==, dev->adf);
		char expect_utc[SK_UTC_SIZE];
		sk_time_format_utc(t, expect_utc);
		g_assert_cmpstr(snap->taken_utc, ==, expect_utc);
		g_assert_cmpuint(snap->supplies->len, ==, 5);
		for (unsigned k = 0; k < 4; k++) {
			const struct snapshot_supply *s = g_ptr_array_index(snap->supplies, k);
			g_assert_cmpstr(s->serial, ==, dev->supplies[k].serial);
			g_assert_cmpint(s->level_percent, ==, sim_supply_level(&dev->supplies[k]));
		}
		unsigned n_events = sim_ring_len(&dev->logs[0]) + sim_ring_len(&dev->logs[1]);
		g_assert_cmpuint(snap->events->len, ==, n_events);
		const struct sim_event *newest = sim_ring_get(&dev->logs[0], 0);
		bool found = false;
		for (unsigned k = 0; k < snap->events->len; k++) {
			const struct snapshot_event *e = g_ptr_array_index(snap->events, k);
			if (e->sequence == newest->seq) {
				g_assert_cmpint(e->page_count, ==, newest->pages);
				found = true;
			}
		}
		g_assert_true(found);
		snapshot_free(&snap);
		g_free(doc);
		g_bytes_unref(xml);
	}
	sim_fleet_free(&fleet);
	sim_model_free(&model);
}

static void
test_template_legacy(void)
{
	struct sim_model *model;
	struct sim_fleet *fleet = template_fleet("legacy-color-mfp.eml", &model);
	g_assert_cmpint(model->dialect, ==, SNAPSHOT_DIALECT_LEGACY);
	g_assert_cmpuint(model->supplies->len, ==, 4);
	struct sim_device *dev = g_ptr_array_index(fleet->devices, 0);
	int64_t t = START + 4 * (int64_t)DAY;
	sim_device_advance(dev, t);
	GBytes *xml = sim_device_write_xml(dev, t * 1000, NULL);
	gsize len;
	const char *xp = g_bytes_get_data(xml, &len);
	char *doc = g_strndup(xp, len);
	g_assert_nonnull(strstr(doc, "<dd:CounterScale>normalized</dd:CounterScale>"));
	char *uri = g_strdup_printf("http://%s/hp/device/this.LCDispatcher", dev->ip);
	g_assert_nonnull(strstr(doc, uri));
	g_free(uri);
	struct snapshot *snap = parse_xml(xml);
	g_assert_cmpint(snap->dialect, ==, SNAPSHOT_DIALECT_LEGACY);
	g_assert_cmpstr(snap->serial, ==, dev->serial);
	g_assert_cmpint(counter(snap, "TotalImpressions"), ==, sim_device_total_impressions(dev));
	g_assert_cmpint(counter(snap, "MonochromeImpressions"), ==,
			sim_device_mono_impressions(dev));
	g_assert_cmpint(counter(snap, "DuplexSheets"), ==, dev->duplex);
	for (unsigned k = 0; k < snap->supplies->len; k++) {
		const struct snapshot_supply *s = g_ptr_array_index(snap->supplies, k);
		g_assert_cmpint(s->level_percent, ==, sim_supply_level(&dev->supplies[k]));
		g_assert_cmpstr(s->serial, ==, dev->supplies[k].serial);
	}
	g_assert_cmpuint(snap->events->len, ==, sim_ring_len(&dev->logs[0]));
	snapshot_free(&snap);
	g_free(doc);
	g_bytes_unref(xml);
	sim_fleet_free(&fleet);
	sim_model_free(&model);
}

/* ---- variants and faults through mime_extract + devxml_parse ------------ */

struct outcome {
	int mime; /* mime_extract's return */
	int xml;  /* devxml_parse's return, or 2 when not reached */
	struct snapshot *snap;
	struct mime_result hints;
	char *error;
};

static void
outcome_clear(struct outcome *o)
{
	snapshot_free(&o->snap);
	mime_result_clear(&o->hints);
	g_free(o->error);
	memset(o, 0, sizeof(*o));
}

static void
run_parsers(const struct sim_mail *mail, const struct mime_limits *limits, struct outcome *o)
{
	gsize len;
	const void *raw = g_bytes_get_data(mail->raw, &len);
	memset(o, 0, sizeof(*o));
	o->xml = 2;
	o->mime = mime_extract(raw, len, limits, &o->hints, &o->error);
	if (o->mime != 1)
		return;
	gsize xlen;
	const char *x = g_bytes_get_data(o->hints.device_xml, &xlen);
	g_clear_pointer(&o->error, g_free);
	o->xml = devxml_parse(x, xlen, NULL, &o->snap, &o->error);
}

static void
test_variants(void)
{
	static const char *const lists[] = {
	    "base64",
	    "qp",
	    "7bit",
	    "application/xml",
	    "application/octet-stream",
	    "forward",
	    "lf",
	    "nonascii",
	    "qp,forward,lf",
	    "7bit,nonascii,application/octet-stream",
	};
	struct sim_fleet *fleet = small_fleet(11, 4, NULL, 20);
	struct sim_mail_settings ms;
	sim_mail_settings_default(&ms);
	unsigned legacy = 0, fs = 0;

	for (unsigned d = 0; d < fleet->devices->len; d++) {
		struct sim_device *dev = g_ptr_array_index(fleet->devices, d);
		int64_t t = START + DAY + d;
		sim_device_advance(dev, t);
		if (dev->model->dialect == SNAPSHOT_DIALECT_LEGACY)
			legacy++;
		else
			fs++;
		for (unsigned i = 0; i < G_N_ELEMENTS(lists); i++) {
			struct sim_variant v;
			char *error = NULL;
			g_assert_cmpint(sim_variant_parse(lists[i], &v, &error), ==, 0);
			struct sim_doc_options doc = {.force_korean = v.nonascii};
			GBytes *xml = sim_device_write_xml(dev, t * 1000, &doc);
			struct sim_mail *m = sim_mail_snapshot(dev, t * 1000, xml, &v,
							       SIM_FAULT_NONE, dev->mails++, &ms);
			gsize len;
			const char *raw = g_bytes_get_data(m->raw, &len);
			bool has_cr = memchr(raw, '\r', len) != NULL;
			g_assert_true(has_cr == !v.lf);
			struct outcome o;
			run_parsers(m, NULL, &o);
			if (o.mime != 1)
				g_test_message("variant %s: %s", lists[i], o.error);
			g_assert_cmpint(o.mime, ==, 1);
			g_assert_cmpint(o.xml, ==, 0);
			/* The decoded attachment is the document, byte for byte. */
			g_assert_true(g_bytes_equal(o.hints.device_xml, xml));
			g_assert_cmpstr(o.snap->serial, ==, dev->serial);
			g_assert_cmpint(counter(o.snap, "TotalImpressions"), ==,
					sim_device_total_impressions(dev));
			if (!v.forwarded) {
				g_assert_cmpstr(o.hints.subject_serial, ==, dev->serial);
				g_assert_cmpstr(o.hints.subject_product, ==,
						dev->model->product_number);
				char utc_text[SK_UTC_SIZE];
				sk_time_format_utc(t, utc_text);
				g_assert_cmpstr(o.hints.subject_time_utc, ==, utc_text);
				g_assert_cmpstr(o.hints.subject, ==, m->subject);
			}
			if (v.nonascii && o.snap->events->len > 0) {
				bool korean = false;
				for (unsigned k = 0; k < o.snap->events->len; k++) {
					const struct snapshot_event *e =
					    g_ptr_array_index(o.snap->events, k);
					if (e->description != NULL &&
					    !g_str_is_ascii(e->description))
						korean = true;
				}
				g_assert_true(korean);
			}
			outcome_clear(&o);
			sim_mail_free(&m);
			g_bytes_unref(xml);
		}
	}
	g_assert_cmpuint(legacy, >, 0);
	g_assert_cmpuint(fs, >, 0);
	sim_fleet_free(&fleet);
}

static void
test_base64_layout(void)
{
	struct sim_fleet *fleet = small_fleet(5, 1, "legacy", 20);
	struct sim_device *dev = g_ptr_array_index(fleet->devices, 0);
	struct sim_mail_settings ms;
	struct sim_variant v;
	sim_mail_settings_default(&ms);
	sim_variant_default(&v);
	GBytes *xml = sim_device_write_xml(dev, START * 1000LL, NULL);
	struct sim_mail *m =
	    sim_mail_snapshot(dev, START * 1000LL, xml, &v, SIM_FAULT_NONE, 0, &ms);
	gsize len;
	const char *rawp = g_bytes_get_data(m->raw, &len);
	char *text = g_strndup(rawp, len);
	/* Legacy: en dashes, RFC 2047 encoded; no text part; base64 at 76. */
	g_assert_null(strstr(text, "\xe2\x80\x93"));
	g_assert_nonnull(strstr(text, "=?UTF-8?"));
	g_assert_null(strstr(text, "text/plain"));
	g_assert_nonnull(strstr(text, "filename=Device.xml"));
	char **lines = g_strsplit(strstr(text, "base64\r\n\r\n") + 10, "\r\n", -1);
	g_assert_cmpuint(strlen(lines[0]), ==, 76);
	g_assert_cmpuint(strlen(lines[1]), ==, 76);
	g_strfreev(lines);
	g_free(text);
	sim_mail_free(&m);
	g_bytes_unref(xml);
	sim_fleet_free(&fleet);
}

static void
test_faults(void)
{
	struct sim_fleet *fleet = small_fleet(21, 2, NULL, 20);
	struct sim_mail_settings ms;
	struct sim_variant v;
	struct mime_limits small;
	GRand *r = g_rand_new_with_seed(9);
	sim_mail_settings_default(&ms);
	ms.oversize_bytes = 3 * 1024 * 1024;
	sim_variant_default(&v);
	mime_limits_default(&small);
	small.max_message_size = 2 * 1024 * 1024;

	for (unsigned d = 0; d < fleet->devices->len; d++) {
		struct sim_device *dev = g_ptr_array_index(fleet->devices, d);
		int64_t t = START + 2 * DAY;
		sim_device_advance(dev, t);
		for (unsigned f = SIM_FAULT_NONE; f < SIM_FAULT_COUNT; f++) {
			enum sim_fault fault = (enum sim_fault)f;
			struct sim_doc_options doc = {0};
			if (fault == SIM_FAULT_CLOCK_SKEW)
				doc.clock_skew = -40 * DAY;
			GBytes *xml = sim_device_write_xml(dev, t * 1000, &doc);
			GBytes *bad = sim_fault_apply_xml(xml, fault, r);
			struct sim_mail *m;
			if (fault == SIM_FAULT_ALERT_MAIL)
				m = sim_mail_alert(dev, t * 1000, dev->mails++, &ms);
			else
				m = sim_mail_snapshot(dev, (t + doc.clock_skew) * 1000, bad, &v,
						      fault, dev->mails++, &ms);
			struct outcome o;
			run_parsers(m, fault == SIM_FAULT_OVERSIZED ? &small : NULL, &o);
			const char *expect = sim_fault_expect(fault);
			g_test_message("fault %s: mime=%d xml=%d %s", sim_fault_name(fault), o.mime,
				       o.xml, o.error != NULL ? o.error : "");
			if (strcmp(expect, "not_snapshot") == 0) {
				g_assert_cmpint(o.mime, ==, 0);
				g_assert_null(o.hints.device_xml);
			} else if (strcmp(expect, "failed") == 0) {
				g_assert_cmpint(o.mime, ==, 1);
				g_assert_cmpint(o.xml, ==, -1);
				g_assert_nonnull(o.error);
				if (fault != SIM_FAULT_TRUNCATED_XML)
					g_assert_nonnull(strstr(o.error, "DOCTYPE"));
			} else if (strcmp(expect, "rejected") == 0) {
				g_assert_cmpint(o.mime, ==, -1);
				g_assert_cmpuint(g_bytes_get_size(m->raw), >,
						 small.max_message_size);
			} else {
				/* stored, and the mail-level faults whose mail is a good snapshot
				 */
				g_assert_cmpint(o.mime, ==, 1);
				g_assert_cmpint(o.xml, ==, 0);
				g_assert_cmpstr(o.snap->serial, ==, dev->serial);
				char expect_utc[SK_UTC_SIZE];
				sk_time_format_utc(t + doc.clock_skew, expect_utc);
				g_assert_cmpstr(o.snap->taken_utc, ==, expect_utc);
			}
			outcome_clear(&o);
			sim_mail_free(&m);
			g_bytes_unref(bad);
			g_bytes_unref(xml);
		}
	}
	/* Same snapshot in a new mail: different bytes, same document. */
	struct sim_device *dev = g_ptr_array_index(fleet->devices, 0);
	GBytes *xml = sim_device_write_xml(dev, (START + 2 * DAY) * 1000LL, NULL);
	struct sim_mail *a =
	    sim_mail_snapshot(dev, (START + 2 * DAY) * 1000LL, xml, &v, SIM_FAULT_NONE, 100, &ms);
	struct sim_mail *b = sim_mail_snapshot(dev, (START + 2 * DAY + 3600) * 1000LL, xml, &v,
					       SIM_FAULT_NONE, 101, &ms);
	g_assert_cmpstr(a->sha256, !=, b->sha256);
	g_assert_cmpstr(a->message_id, !=, b->message_id);
	sim_mail_free(&a);
	sim_mail_free(&b);
	g_bytes_unref(xml);

	enum sim_fault f;
	g_assert_cmpint(sim_fault_parse("drop-in-data", &f), ==, 0);
	g_assert_cmpint(f, ==, SIM_FAULT_DROP_IN_DATA);
	g_assert_cmpint(sim_fault_parse("nonsense", &f), ==, -1);
	g_rand_free(r);
	sim_fleet_free(&fleet);
}

/* Documents have realistic sizes from the first snapshot. */
static void
test_sizes(void)
{
	struct sim_fleet *fleet = small_fleet(1, 24, NULL, SIM_LOG_CAPACITY_DEFAULT);
	uint64_t fs = 0, legacy = 0;
	unsigned nfs = 0, nlegacy = 0;
	for (unsigned i = 0; i < fleet->devices->len; i++) {
		struct sim_device *dev = g_ptr_array_index(fleet->devices, i);
		GBytes *xml = sim_device_write_xml(dev, START * 1000LL, NULL);
		if (dev->model->dialect == SNAPSHOT_DIALECT_LEGACY) {
			legacy += g_bytes_get_size(xml);
			nlegacy++;
			g_assert_cmpuint(g_bytes_get_size(xml), >=, 450 * 1000);
		} else {
			fs += g_bytes_get_size(xml);
			nfs++;
		}
		g_bytes_unref(xml);
	}
	g_assert_cmpuint(nfs, >, 0);
	g_assert_cmpuint(nlegacy, >, 0);
	g_test_message("average FutureSmart %" G_GUINT64_FORMAT " KB, legacy %" G_GUINT64_FORMAT
		       " KB",
		       fs / nfs / 1024, legacy / nlegacy / 1024);
	g_assert_cmpuint(fs / nfs, >=, 150 * 1000);
	g_assert_cmpuint(fs / nfs, <=, 400 * 1000);
	g_assert_cmpuint(legacy / nlegacy, >=, 500 * 1000);
	sim_fleet_free(&fleet);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	devxml_global_init();
	mime_global_init();
	g_test_add_func("/sim/schedule", test_schedule);
	g_test_add_func("/sim/determinism", test_determinism);
	g_test_add_func("/sim/year", test_year);
	g_test_add_func("/sim/counter-reset", test_counter_reset);
	g_test_add_func("/sim/template/futuresmart", test_template_futuresmart);
	g_test_add_func("/sim/template/legacy", test_template_legacy);
	g_test_add_func("/sim/variants", test_variants);
	g_test_add_func("/sim/base64-layout", test_base64_layout);
	g_test_add_func("/sim/faults", test_faults);
	g_test_add_func("/sim/sizes", test_sizes);
	return g_test_run();
}
