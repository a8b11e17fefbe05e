/* test-devxml.c: devxml_parse against the three example documents (every
 * field of their .expected.json, read with json-glib), the dialect variants
 * of FORMAT.md (small files in tests/data/xml/), and the hazards, each of
 * which must end in a one-line "xml: " reason in bounded time and memory.
 * Every accepted document is also fed in 1-byte and odd-sized chunks and must
 * give byte-identical JSON. */
#include "config.h"

#include <json-glib/json-glib.h>
#include <libxml/parser.h>
#include <string.h>

#include "devxml/devxml.h"

/* ---- helpers ---- */

static char *
data_path(const char *rel)
{
	const char *dir = g_getenv("SK_TESTDATA");
	if (dir == NULL)
		g_error("SK_TESTDATA is not set: run through `make check`");
	return g_build_filename(dir, rel, NULL);
}

static char *
read_data(const char *rel, size_t *len_r)
{
	char *path = data_path(rel);
	char *data = NULL;
	gsize len = 0;
	GError *err = NULL;
	if (!g_file_get_contents(path, &data, &len, &err))
		g_error("cannot read %s: %s", path, err->message);
	g_free(path);
	*len_r = len;
	return data;
}

/* Parses XML with the default chunking, then with 1-byte (small documents
 * only) and odd-sized chunks, and asserts the JSON is identical each time. */
static struct snapshot *
parse_ok(const char *xml, size_t len)
{
	static const size_t chunks[] = {1, 7, 13, 4093, 65537};
	struct snapshot *snap = NULL;
	char *error = NULL;
	char *json;

	if (devxml_parse(xml, len, NULL, &snap, &error) < 0)
		g_error("parse failed: %s", error);
	g_assert_null(error);
	g_assert_nonnull(snap);
	json = snapshot_to_json(snap);
	for (size_t i = 0; i < G_N_ELEMENTS(chunks); i++) {
		struct snapshot *again = NULL;
		char *json2;
		if (chunks[i] < 64 && len > 200000)
			continue; /* 1-byte feeding of megabytes only measures libxml2 */
		if (devxml_parse_chunked(xml, len, chunks[i], NULL, &again, &error) < 0)
			g_error("chunk %zu: parse failed: %s", chunks[i], error);
		json2 = snapshot_to_json(again);
		g_assert_cmpstr(json2, ==, json);
		g_free(json2);
		snapshot_free(&again);
	}
	g_free(json);
	return snap;
}

static struct snapshot *
parse_file_ok(const char *name)
{
	size_t len;
	char *rel = g_build_filename("xml", name, NULL);
	char *xml = read_data(rel, &len);
	struct snapshot *snap = parse_ok(xml, len);
	g_free(xml);
	g_free(rel);
	return snap;
}

/* Parses and expects failure: returns the reason (g_free it) after checking
 * it is one line starting "xml: ", and identical for several chunk sizes. */
static char *
parse_fail_limits(const char *xml, size_t len, const struct devxml_limits *limits)
{
	static const size_t chunks[] = {1, 4093, 65536};
	struct snapshot *snap = NULL;
	char *error = NULL;

	g_assert_cmpint(devxml_parse(xml, len, limits, &snap, &error), ==, -1);
	g_assert_null(snap);
	g_assert_nonnull(error);
	g_assert_true(g_str_has_prefix(error, "xml: "));
	g_assert_null(strchr(error, '\n'));
	g_assert_null(strchr(error, '\r'));
	g_assert_true(g_utf8_validate(error, -1, NULL));
	for (size_t i = 0; i < G_N_ELEMENTS(chunks); i++) {
		char *error2 = NULL;
		if (chunks[i] == 1 && len > 100000)
			continue;
		g_assert_cmpint(devxml_parse_chunked(xml, len, chunks[i], limits, &snap, &error2),
				==, -1);
		g_assert_null(snap);
		g_assert_true(g_str_has_prefix(error2, "xml: "));
		g_free(error2);
	}
	return error;
}

static char *
parse_fail(const char *xml, size_t len)
{
	return parse_fail_limits(xml, len, NULL);
}

static int64_t
counter(const struct snapshot *snap, const char *name)
{
	const struct snapshot_counter *c = snapshot_counter_find(snap, name);
	return c != NULL ? c->value : SNAPSHOT_ABSENT;
}

static int64_t
media(const struct snapshot *snap, const char *name, const char *size)
{
	const struct snapshot_counter *c = snapshot_media_counter_find(snap, name, size);
	return c != NULL ? c->value : SNAPSHOT_ABSENT;
}

static const struct snapshot_supply *
supply(const struct snapshot *snap, const char *key)
{
	for (guint i = 0; i < snap->supplies->len; i++) {
		const struct snapshot_supply *s = g_ptr_array_index(snap->supplies, i);
		if (strcmp(s->key, key) == 0)
			return s;
	}
	g_error("no supply %s", key);
	return NULL;
}

static const struct snapshot_event *
event_seq(const struct snapshot *snap, int64_t seq)
{
	const struct snapshot_event *found = NULL;
	for (guint i = 0; i < snap->events->len; i++) {
		const struct snapshot_event *e = g_ptr_array_index(snap->events, i);
		if (e->sequence == seq) {
			g_assert_null(found); /* sequences are unique within these documents */
			found = e;
		}
	}
	if (found == NULL)
		g_error("no event with sequence %" G_GINT64_FORMAT, seq);
	return found;
}

/* ---- the examples, field by field against *.expected.json ---- */

static const char *
exp_str(JsonNode *n)
{
	if (JSON_NODE_HOLDS_NULL(n))
		return NULL;
	g_assert_true(JSON_NODE_HOLDS_VALUE(n));
	return json_node_get_string(n);
}

static int64_t
exp_int(JsonNode *n)
{
	if (JSON_NODE_HOLDS_NULL(n))
		return SNAPSHOT_ABSENT;
	g_assert_true(JSON_NODE_HOLDS_VALUE(n));
	return json_node_get_int(n);
}

static void
check_supplies(const struct snapshot *snap, JsonArray *exp)
{
	g_assert_cmpuint(snap->supplies->len, ==, json_array_get_length(exp));
	for (guint i = 0; i < json_array_get_length(exp); i++) {
		JsonObject *o = json_array_get_object_element(exp, i);
		const struct snapshot_supply *s = g_ptr_array_index(snap->supplies, i);
		GList *members = json_object_get_members(o);
		for (GList *m = members; m != NULL; m = m->next) {
			const char *k = m->data;
			JsonNode *v = json_object_get_member(o, k);
			if (strcmp(k, "color") == 0)
				g_assert_cmpstr(s->color, ==, exp_str(v));
			else if (strcmp(k, "type") == 0)
				g_assert_cmpstr(s->type, ==, exp_str(v));
			else if (strcmp(k, "serial") == 0)
				g_assert_cmpstr(s->serial, ==, exp_str(v));
			else if (strcmp(k, "state") == 0)
				g_assert_cmpstr(s->state, ==, exp_str(v));
			else if (strcmp(k, "level_percent") == 0)
				g_assert_cmpint(s->level_percent, ==, exp_int(v));
			else
				g_error("supply field %s is not checked", k);
		}
		g_list_free(members);
	}
}

static void
check_events(const struct snapshot *snap, JsonArray *exp)
{
	g_assert_cmpuint(snap->events->len, ==, json_array_get_length(exp));
	for (guint i = 0; i < json_array_get_length(exp); i++) {
		JsonObject *o = json_array_get_object_element(exp, i);
		const struct snapshot_event *e =
		    event_seq(snap, json_object_get_int_member(o, "sequence"));
		GList *members = json_object_get_members(o);
		for (GList *m = members; m != NULL; m = m->next) {
			const char *k = m->data;
			JsonNode *v = json_object_get_member(o, k);
			if (strcmp(k, "sequence") == 0)
				g_assert_cmpint(e->sequence, ==, exp_int(v));
			else if (strcmp(k, "code") == 0)
				g_assert_cmpstr(e->code, ==, exp_str(v));
			else if (strcmp(k, "occurred_utc") == 0)
				g_assert_cmpstr(e->occurred_utc, ==, exp_str(v));
			else if (strcmp(k, "page_count") == 0)
				g_assert_cmpint(e->page_count, ==, exp_int(v));
			else
				g_error("event field %s is not checked", k);
		}
		g_list_free(members);
	}
}

static void
test_example(gconstpointer data)
{
	const char *name = data;
	char *xml_name = g_strconcat(name, ".xml", NULL);
	char *exp_rel = g_strconcat("examples/", name, ".expected.json", NULL);
	char *exp_path = data_path(exp_rel);
	struct snapshot *snap = parse_file_ok(xml_name);
	JsonParser *parser = json_parser_new();
	GError *err = NULL;
	JsonObject *exp;
	GList *members;
	unsigned checked = 0;

	if (!json_parser_load_from_file(parser, exp_path, &err))
		g_error("%s: %s", exp_path, err->message);
	exp = json_node_get_object(json_parser_get_root(parser));
	members = json_object_get_members(exp);
	for (GList *m = members; m != NULL; m = m->next) {
		const char *k = m->data;
		JsonNode *v = json_object_get_member(exp, k);
		checked++;
		if (strcmp(k, "kind") == 0) {
			g_assert_cmpstr(exp_str(v), ==, "snapshot"); /* devxml_parse succeeded */
		} else if (strcmp(k, "dialect") == 0) {
			g_assert_cmpstr(snapshot_dialect_name(snap->dialect), ==, exp_str(v));
		} else if (strcmp(k, "serial") == 0) {
			g_assert_cmpstr(snap->serial, ==, exp_str(v));
		} else if (strcmp(k, "product_number") == 0) {
			g_assert_cmpstr(snap->product_number, ==, exp_str(v));
		} else if (strcmp(k, "model") == 0) {
			g_assert_cmpstr(snap->model, ==, exp_str(v));
		} else if (strcmp(k, "hostname") == 0) {
			g_assert_cmpstr(snap->hostname, ==, exp_str(v));
		} else if (strcmp(k, "firmware") == 0) {
			g_assert_cmpstr(snap->firmware, ==, exp_str(v));
		} else if (strcmp(k, "taken_utc") == 0) {
			g_assert_cmpstr(snap->taken_utc, ==, exp_str(v));
		} else if (strcmp(k, "ip_address") == 0) {
			g_assert_cmpstr(snap->ip_address, ==, exp_str(v));
		} else if (strcmp(k, "counters") == 0) {
			JsonObject *c = json_node_get_object(v);
			GList *names = json_object_get_members(c);
			for (GList *n = names; n != NULL; n = n->next)
				g_assert_cmpint(counter(snap, n->data), ==,
						json_object_get_int_member(c, n->data));
			g_list_free(names);
		} else if (strcmp(k, "media_total_impressions") == 0) {
			JsonObject *c = json_node_get_object(v);
			GList *sizes = json_object_get_members(c);
			guint totals = 0;
			for (GList *n = sizes; n != NULL; n = n->next)
				g_assert_cmpint(media(snap, "TotalImpressions", n->data), ==,
						json_object_get_int_member(c, n->data));
			for (guint i = 0; i < snap->media_counters->len; i++)
				totals += strcmp(((struct snapshot_counter *)g_ptr_array_index(
						      snap->media_counters, i))
						     ->name,
						 "TotalImpressions") == 0;
			g_assert_cmpuint(totals, ==, g_list_length(sizes));
			g_list_free(sizes);
		} else if (strcmp(k, "supplies") == 0) {
			check_supplies(snap, json_node_get_array(v));
		} else if (strcmp(k, "events") == 0) {
			check_events(snap, json_node_get_array(v));
		} else {
			g_error("expected field %s is not checked", k);
		}
	}
	g_assert_cmpuint(checked, >=, 10);
	g_list_free(members);
	g_object_unref(parser);
	snapshot_free(&snap);
	g_free(exp_path);
	g_free(exp_rel);
	g_free(xml_name);
}

/* Fields of the examples the expected files do not list. */
static void
test_example_extras(void)
{
	struct snapshot *snap = parse_file_ok("futuresmart-color-mfp.xml");
	const struct snapshot_event *e = event_seq(snap, 416);
	const struct snapshot_supply *k = supply(snap, "K");

	g_assert_cmpstr(snap->device_uuid, ==, "d0fb9e94-e79d-4ec8-b06d-909c7f9a2950");
	g_assert_cmpstr(snap->mac_address, ==, "05:68:46:73:e7:b8");
	g_assert_cmpstr(snap->locale, ==, "en-US");
	g_assert_cmpstr(snap->firmware_date, ==, "2023-06-01");
	g_assert_cmpint(snap->taken_offset_min, ==, -420);
	g_assert_true(snap->taken_has_offset);
	g_assert_cmpint(counter(snap, "AdfImages"), ==, 21783);
	g_assert_cmpint(counter(snap, "FlatbedImages"), ==, 976);
	g_assert_cmpint(counter(snap, "CopyImpressions"), ==, 13699);
	g_assert_cmpint(counter(snap, "BlankSides"), ==, 1199 + 135);
	g_assert_cmpint(counter(snap, "FaxImpressions"), ==, SNAPSHOT_ABSENT);
	g_assert_cmpint(media(snap, "ColorImpressions", "na_legal_8.5x14in"), ==, 5325);
	g_assert_cmpstr(e->log, ==, "error");
	g_assert_cmpstr(e->description, ==, "Jam in tray 2");
	g_assert_cmpint(e->occurred_offset_min, ==, -420);
	g_assert_cmpstr(e->payload_json, ==,
			"{\"FirmwareVersion\":\"2302243_045526\",\"BootCycle\":\"00000197\","
			"\"PrintCount\":\"133275\"}");
	g_assert_cmpstr(event_seq(snap, 417)->log, ==, "info");
	g_assert_cmpstr(k->label, ==, "K");
	g_assert_cmpstr(k->brand, ==, "HP");
	g_assert_cmpstr(k->product_number, ==, "W2062A");
	g_assert_cmpstr(k->installed_date, ==, "2024-06-01");
	g_assert_cmpint(k->low_threshold, ==, 10);
	g_assert_cmpint(k->pages, ==, 7691);
	g_assert_cmpstr(supply(snap, "maintenanceKit")->type, ==, "maintenanceKit");
	snapshot_free(&snap);

	snap = parse_file_ok("futuresmart-mfp.xml");
	g_assert_cmpint(counter(snap, "ColorImpressions"), ==,
			SNAPSHOT_ABSENT); /* never reported */
	g_assert_cmpint(counter(snap, "CopyImpressions"), ==, 14644);
	g_assert_cmpint(counter(snap, "TotalImpressions"), !=,
			14644 + 116606); /* copy not mixed in */
	snapshot_free(&snap);

	snap = parse_file_ok("legacy-color-mfp.xml");
	k = supply(snap, "blackToner");
	g_assert_cmpstr(k->description, ==, "Black Cartridge");
	g_assert_cmpstr(k->installed_date, ==, "2024-05-25");
	g_assert_cmpstr(snap->ip_address, ==, "10.147.20.129"); /* from BSIService/LocationURI */
	g_assert_cmpstr(event_seq(snap, 47)->log, ==, "system");
	g_assert_cmpstr(event_seq(snap, 47)->description, ==, "Jam in fuser area");
	g_assert_cmpint(snap->taken_offset_min, ==, 60);
	snapshot_free(&snap);
}

/* ---- variants (FORMAT.md) ---- */

/* The same FutureSmart content with no prefixes, other prefixes and URIs
 * (default namespace, prefixes declared on inner elements), and undeclared
 * prefixes: all must give identical snapshots. */
static void
test_variant_prefixes(void)
{
	static const char *const files[] = {"variant-fs-noprefix.xml", "variant-fs-otherprefix.xml",
					    "variant-fs-undeclared-prefix.xml"};
	char *first = NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		struct snapshot *snap = parse_file_ok(files[i]);
		char *json = snapshot_to_json(snap);
		const struct snapshot_event *e = event_seq(snap, 7);
		g_assert_cmpstr(snap->serial, ==, "NOPFX00001");
		g_assert_cmpstr(snap->product_number, ==, "K0Q21A");
		g_assert_cmpstr(snap->model, ==, "HP LaserJet Enterprise M609");
		g_assert_cmpstr(snap->firmware, ==, "2409081_000111");
		g_assert_cmpstr(snap->hostname, ==, "NPI000001");
		g_assert_cmpstr(snap->ip_address, ==, "192.0.2.10");
		g_assert_cmpstr(snap->taken_utc, ==, "2025-03-09T04:57:47Z");
		g_assert_cmpint(counter(snap, "TotalImpressions"), ==, 500);
		g_assert_cmpint(media(snap, "TotalImpressions", "na_letter_8.5x11in"), ==, 100);
		g_assert_cmpint(e->page_count, ==, 500);
		g_assert_cmpstr(supply(snap, "K")->color, ==, "black");
		g_assert_cmpint(supply(snap, "K")->level_percent, ==, 55);
		g_assert_cmpstr(supply(snap, "K")->state, ==, "ok");
		if (first == NULL)
			first = g_strdup(json);
		g_assert_cmpstr(json, ==, first);
		g_free(json);
		snapshot_free(&snap);
	}
	g_free(first);
}

static void
test_variant_legacy_iprefix(void)
{
	struct snapshot *snap = parse_file_ok("variant-legacy-iprefix.xml");
	const struct snapshot_supply *s;

	g_assert_cmpint(snap->dialect, ==, SNAPSHOT_DIALECT_LEGACY);
	g_assert_cmpstr(snap->serial, ==, "CNBXY12345");
	g_assert_cmpstr(snap->model, ==, "HP LaserJet 4250");
	g_assert_cmpstr(snap->firmware, ==, "20080419 08.012.0");
	g_assert_null(snap->ip_address); /* no IPAddress, no LocationURI */
	/* A TimeStamp without offset: UTC assumed, and said so. */
	g_assert_cmpstr(snap->taken_utc, ==, "2008-11-28T17:44:18Z");
	g_assert_false(snap->taken_has_offset);
	g_assert_cmpint(counter(snap, "TotalImpressions"), ==, 250112);
	g_assert_cmpint(counter(snap, "MonochromeImpressions"), ==, 250112);
	g_assert_cmpint(counter(snap, "ColorImpressions"), ==, SNAPSHOT_ABSENT);
	g_assert_cmpint(counter(snap, "DuplexSheets"), ==, 1200); /* ValueFloat 1.2e3 */
	g_assert_cmpint(counter(snap, "JamEvents"), ==, 17);
	g_assert_cmpuint(snap->supplies->len, ==, 4);
	s = supply(snap, "blackToner");
	g_assert_cmpstr(s->color, ==, "black");
	g_assert_cmpstr(s->type, ==, "tonerCartridge");
	g_assert_cmpint(s->level_percent, ==, 12);
	g_assert_cmpint(s->pages, ==, 4321);
	g_assert_cmpstr(s->serial, ==, "SN-TONER-1");
	s = supply(snap, "blackDrum");
	g_assert_cmpstr(s->type, ==, "imageDrum");
	g_assert_cmpint(s->level_percent, ==, 0); /* zero, not absent */
	s = supply(snap, "maintenanceKit");
	g_assert_cmpstr(s->type, ==, "maintenanceKit");
	g_assert_null(s->color);
	g_assert_cmpint(s->level_percent, ==, 88);
	s = supply(snap, "fuserKit");
	g_assert_cmpstr(s->type, ==, "maintenanceKit");
	g_assert_cmpint(s->level_percent, ==, SNAPSHOT_ABSENT);
	g_assert_cmpstr(event_seq(snap, 3)->log, ==, "system");
	g_assert_cmpint(event_seq(snap, 3)->page_count, ==, 250000);
	g_assert_cmpstr(event_seq(snap, 3)->occurred_utc, ==, "2008-11-27T08:00:00Z");
	snapshot_free(&snap);
}

static void
test_variant_exponent(void)
{
	struct snapshot *snap = parse_file_ok("variant-fs-exponent.xml");
	const struct snapshot_counter *c;

	g_assert_cmpint(media(snap, "TotalImpressions", "iso_a4_210x297mm"), ==, 12000); /* 12e3 */
	g_assert_cmpint(media(snap, "TotalImpressions", "na_letter_8.5x11in"), ==, 15); /* 150e-1 */
	g_assert_cmpint(media(snap, "MonochromeImpressions", "na_letter_8.5x11in"), ==,
			15); /* no Exponent */
	g_assert_cmpint(counter(snap, "TotalImpressions"), ==, 12015);
	c = snapshot_media_counter_find(snap, "CoverageSum", "iso_a4_210x297mm");
	g_assert_cmpint(c->value, ==, 123); /* 12345e-2 toward zero */
	g_assert_cmpfloat_with_epsilon(c->value_real, 123.45, 1e-9);
	c = snapshot_counter_find(snap, "CoverageSum");
	g_assert_cmpfloat_with_epsilon(c->value_real, 128.95, 1e-9);
	g_assert_cmpint(c->value, ==, 128);
	g_assert_cmpint(counter(snap, "DuplexSheets"), ==, 20000);
	/* Unusable values are not reported, never garbage or zero. */
	g_assert_null(snapshot_counter_find(snap, "Overflowing"));
	g_assert_null(snapshot_counter_find(snap, "HugeExponent"));
	g_assert_null(snapshot_counter_find(snap, "NotANumber"));
	g_assert_cmpint(event_seq(snap, 1)->page_count, ==, 12340);
	g_assert_null(event_seq(snap, 1)->occurred_utc);
	snapshot_free(&snap);
}

static void
test_variant_mono_color(void)
{
	struct snapshot *snap = parse_file_ok("variant-fs-mono-color-no-total.xml");

	g_assert_cmpint(media(snap, "TotalImpressions", "iso_a4_210x297mm"), ==,
			150); /* 100 + 50 */
	g_assert_cmpint(media(snap, "TotalImpressions", "na_letter_8.5x11in"), ==, 30);
	g_assert_cmpint(media(snap, "TotalImpressions", "na_legal_8.5x14in"), ==, SNAPSHOT_ABSENT);
	g_assert_cmpint(counter(snap, "TotalImpressions"), ==, 180);
	g_assert_cmpint(counter(snap, "MonochromeImpressions"), ==, 115);
	g_assert_cmpint(counter(snap, "ColorImpressions"), ==, 70);
	g_assert_cmpint(counter(snap, "FaxImpressions"), ==, 77);
	/* Absent from every size and group: absent, not 0. */
	g_assert_null(snapshot_counter_find(snap, "JamEvents"));
	g_assert_null(snapshot_counter_find(snap, "SimplexSheets"));
	g_assert_null(snapshot_counter_find(snap, "BlankSides"));
	g_assert_null(snapshot_counter_find(snap, "CopyImpressions"));
	/* Supplies: colour from the label; repeated types keyed by position. */
	g_assert_cmpstr(supply(snap, "C")->color, ==, "cyan");
	g_assert_cmpint(supply(snap, "C")->level_percent, ==, SNAPSHOT_ABSENT);
	g_assert_cmpint(supply(snap, "imageDrum")->level_percent, ==, 80);
	g_assert_cmpint(supply(snap, "imageDrum-2")->level_percent, ==, 70);
	snapshot_free(&snap);
}

static void
test_variant_no_timestamp(void)
{
	struct snapshot *snap = parse_file_ok("variant-fs-no-timestamp.xml");
	g_assert_null(snap->taken_utc);
	g_assert_false(snap->taken_has_offset);
	g_assert_cmpuint(snap->events->len, ==, 2);
	g_assert_null(event_seq(snap, 1)->occurred_utc);
	g_assert_null(event_seq(snap, 2)->occurred_utc); /* unparsable */
	g_assert_cmpint(event_seq(snap, 1)->page_count, ==, SNAPSHOT_ABSENT);
	g_assert_null(event_seq(snap, 1)->payload_json);
	snapshot_free(&snap);
}

static void
test_variant_korean(void)
{
	struct snapshot *snap = parse_file_ok("variant-fs-korean.xml");
	const struct snapshot_event *e = event_seq(snap, 99);
	JsonParser *parser = json_parser_new();
	JsonObject *payload;

	g_assert_cmpstr(snap->model, ==, "HP LaserJet 프린터");
	g_assert_cmpstr(snap->hostname, ==, "서울-3층");
	g_assert_cmpstr(snap->locale, ==, "ko-KR");
	g_assert_cmpstr(snap->taken_utc, ==, "2025-03-09T06:00:00Z");
	g_assert_cmpint(snap->taken_offset_min, ==, 540);
	/* Markup in text arrives as text (escaping is the displayer's job). */
	g_assert_cmpstr(e->description, ==, "용지 걸림: 트레이 2 <b>&");
	g_assert_cmpstr(e->occurred_utc, ==, "2025-03-09T05:00:00Z");
	g_assert_true(json_parser_load_from_data(parser, e->payload_json, -1, NULL));
	payload = json_node_get_object(json_parser_get_root(parser));
	g_assert_cmpstr(json_object_get_string_member(payload, "메모"), ==,
			"\"따옴표\" \\ 역슬래시");
	g_assert_true(json_object_get_null_member(payload, "Empty"));
	g_object_unref(parser);
	snapshot_free(&snap);
}

static void
test_variant_latin1(void)
{
	struct snapshot *snap = parse_file_ok("variant-legacy-latin1.xml");
	g_assert_cmpstr(snap->serial, ==, "LAT1000001");
	g_assert_cmpstr(snap->hostname, ==, "imprimante-\xc3\xa9tage");
	g_assert_cmpstr(supply(snap, "blackToner")->description, ==,
			"Cartouche noire \xc3\xa0 r\xc3\xa9"
			"cup\xc3\xa9rer \xc2\xa9");
	g_assert_cmpint(snap->taken_offset_min, ==, 60);
	g_assert_cmpstr(snap->taken_utc, ==, "2008-01-02T02:04:05Z");
	snapshot_free(&snap);
}

/* The same documents in UTF-16 (BOM) and EUC-KR give the same snapshot. */
static void
test_variant_other_encodings(void)
{
	struct snapshot *a = parse_file_ok("variant-fs-noprefix.xml");
	struct snapshot *b = parse_file_ok("variant-fs-utf16.xml");
	char *ja = snapshot_to_json(a), *jb = snapshot_to_json(b);
	g_assert_cmpstr(ja, ==, jb);
	g_free(ja);
	g_free(jb);
	snapshot_free(&a);
	snapshot_free(&b);

	a = parse_file_ok("variant-fs-korean.xml");
	b = parse_file_ok("variant-fs-euckr.xml");
	ja = snapshot_to_json(a);
	jb = snapshot_to_json(b);
	g_assert_cmpstr(ja, ==, jb);
	g_assert_cmpstr(event_seq(b, 99)->description, ==, "용지 걸림: 트레이 2 <b>&");
	g_free(ja);
	g_free(jb);
	snapshot_free(&a);
	snapshot_free(&b);
}

static void
test_variant_offsets(void)
{
	static const struct {
		int64_t seq;
		const char *utc;
		int offset;
	} cases[] = {
	    {1, "2025-01-01T00:00:00Z", 0},    /* Z */
	    {2, "2024-12-31T23:30:00Z", -210}, /* -03:30 */
	    {3, "2024-12-31T20:00:00Z", 0},    /* none: UTC assumed */
	    {4, "2025-01-01T00:00:00Z", 60},   /* +0100 */
	    {5, "2024-12-31T22:00:00Z", 840},  /* +14:00, microseconds, blanks */
	};
	struct snapshot *snap = parse_file_ok("variant-fs-offsets.xml");
	g_assert_cmpstr(snap->taken_utc, ==, "2024-12-31T19:00:00Z");
	g_assert_cmpint(snap->taken_offset_min, ==, 330);
	g_assert_true(snap->taken_has_offset);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct snapshot_event *e = event_seq(snap, cases[i].seq);
		g_assert_cmpstr(e->occurred_utc, ==, cases[i].utc);
		g_assert_cmpint(e->occurred_offset_min, ==, cases[i].offset);
	}
	snapshot_free(&snap);
}

/* ---- hazards: each refused with a reason, in bounded time ---- */

static bool
under_valgrind(void)
{
	const char *preload = g_getenv("LD_PRELOAD");
	return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* First line of /etc/passwd, which must never show up in any output. */
static char *
passwd_marker(void)
{
	char *text = NULL;
	if (!g_file_get_contents("/etc/passwd", &text, NULL, NULL))
		return g_strdup("root:x:0:0:");
	char *nl = strchr(text, '\n');
	if (nl != NULL)
		*nl = '\0';
	return text;
}

static const struct hazard_file {
	const char *file;
	const char *error; /* exact reason, or a prefix when ending in '*' */
} hazard_files[] = {
    {"hazard-billion-laughs.xml", "xml: DOCTYPE refused"},
    {"hazard-xxe-file.xml", "xml: DOCTYPE refused"},
    {"hazard-xxe-parameter.xml", "xml: DOCTYPE refused"},
    {"hazard-doctype-external.xml", "xml: DOCTYPE refused"},
    {"hazard-undefined-entity.xml", "xml: Entity 'xxe' not defined*"},
    {"hazard-truncated.xml", "xml: truncated or malformed document*"},
    {"hazard-not-xml.txt", "xml: not XML or empty (no root element) at line 1"},
    {"hazard-invalid-utf8.xml", "xml: invalid character data*"},
    {"hazard-html.xml", "xml: not a Device.xml (root element 'html')"},
    /* Found by fuzzing: a stateful encoding decodes differently per chunking. */
    {"hazard-utf7-invalid.xml", "xml: encoding 'UTF-7' not accepted"},
    /* libxml2 2.9.14 halts on the undefined bytes with wellFormed=1 and
     * errNo=0; only xmlParseChunk's return value tells. */
    {"hazard-cp1252-undefined.xml",
     "xml: invalid character data (not valid in the declared encoding)"},
};

static void
test_hazard_file(gconstpointer data)
{
	const struct hazard_file *h = data;
	char *rel = g_build_filename("xml", h->file, NULL);
	size_t len, n = strlen(h->error);
	char *xml = read_data(rel, &len);
	char *marker = passwd_marker();
	gint64 start = g_get_monotonic_time();
	char *error = parse_fail(xml, len);

	g_test_message("%s: %s", h->file, error);
	if (h->error[n - 1] == '*')
		g_assert_true(strncmp(error, h->error, n - 1) == 0);
	else
		g_assert_cmpstr(error, ==, h->error);
	g_assert_null(strstr(error, marker));
	if (!under_valgrind())
		g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
	g_free(error);
	g_free(marker);
	g_free(xml);
	g_free(rel);
}

/* XInclude is never processed: the include stays an (ignored) element. */
static void
test_hazard_xinclude(void)
{
	struct snapshot *snap = parse_file_ok("hazard-xinclude.xml");
	char *json = snapshot_to_json(snap);
	char *marker = passwd_marker();
	g_assert_null(strstr(json, marker));
	g_assert_null(snap->model);
	g_free(marker);
	g_free(json);
	snapshot_free(&snap);
}

/* The refusing entity loader on its own: even a parse that asks libxml2 to
 * load the DTD and substitute entities gets nothing from file://. */
static void
test_hazard_entity_loader(void)
{
	static const char xxe[] = "<?xml version=\"1.0\"?>\n"
				  "<!DOCTYPE r [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n"
				  "<r>&xxe;</r>\n";
	char *marker = passwd_marker();
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	xmlDocPtr doc;
	xmlChar *content = NULL;

	doc = xmlCtxtReadMemory(ctxt, xxe, (int)strlen(xxe), "t.xml", NULL,
				XML_PARSE_NOENT | XML_PARSE_DTDLOAD | XML_PARSE_NOERROR |
				    XML_PARSE_NOWARNING);
	if (doc != NULL) {
		content = xmlNodeGetContent(xmlDocGetRootElement(doc));
		g_assert_null(strstr((const char *)content, marker));
		xmlFree(content);
		xmlFreeDoc(doc);
	}
	xmlFreeParserCtxt(ctxt);
	g_free(marker);
}

static void
test_hazard_empty(void)
{
	struct snapshot *snap = NULL;
	char *error = NULL;
	g_assert_cmpint(devxml_parse("", 0, NULL, &snap, &error), ==, -1);
	g_assert_cmpstr(error, ==, "xml: empty document");
	g_free(error);
	g_assert_cmpint(devxml_parse(NULL, 0, NULL, &snap, &error), ==, -1);
	g_assert_cmpstr(error, ==, "xml: empty document");
	g_free(error);
	/* Only a declaration and blanks. */
	error = parse_fail("<?xml version=\"1.0\"?>\n  \n", 25);
	g_free(error);
	error = parse_fail("   ", 3);
	g_free(error);
}

/* Every prefix of a real document is refused, never half-parsed. */
static void
test_hazard_truncated(void)
{
	size_t len;
	char *xml = read_data("xml/legacy-color-mfp.xml", &len);
	size_t step = under_valgrind() ? 997 : 97;
	/* The last real byte is the newline after the root's end tag. */
	for (size_t cut = 0; cut + 1 < len; cut += step) {
		struct snapshot *snap = NULL;
		char *error = NULL;
		size_t at = cut + 1 < len - 1 ? cut : len - 2;
		g_assert_cmpint(devxml_parse(xml, at, NULL, &snap, &error), ==, -1);
		g_assert_null(snap);
		g_assert_true(g_str_has_prefix(error, "xml: "));
		g_free(error);
	}
	g_free(xml);
}

static void
test_hazard_malformed(void)
{
	static const char *const bad[] = {
	    "<DeviceService><SerialNumber>X</SerialNumber></DeviceService><DeviceService/>",
	    "<DeviceService><SerialNumber>X</SerialNumber></DeviceService>trailing",
	    "<DeviceService><SerialNumber>X</Serial></DeviceService>",
	    "<DeviceService a='1' a='2'><SerialNumber>X</SerialNumber></DeviceService>",
	    "<DeviceService><SerialNumber>X\x01</SerialNumber></DeviceService>",
	    "<?xml version=\"1.0\" encoding=\"x-no-such-charset\"?><DeviceService/>",
	    "\xef\xbb\xbf\xef\xbb\xbf<DeviceService/>",
	    "<DeviceService><![CDATA[ unterminated </DeviceService>",
	    "<!-- comment only -->",
	    "<DeviceService><SerialNumber>&#0;</SerialNumber></DeviceService>",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *error = parse_fail(bad[i], strlen(bad[i]));
		g_test_message("%zu: %s", i, error);
		g_free(error);
	}
}

static void
test_hazard_deep(void)
{
	const size_t levels = 100000;
	GString *s = g_string_sized_new(levels * 7 + 64);
	struct devxml_limits limits;
	gint64 start = g_get_monotonic_time();
	char *error;

	g_string_append(s, "<DeviceService>");
	for (size_t i = 0; i < levels; i++)
		g_string_append(s, "<a>");
	for (size_t i = 0; i < levels; i++)
		g_string_append(s, "</a>");
	g_string_append(s, "</DeviceService>");
	error = parse_fail(s->str, s->len);
	g_assert_true(g_str_has_prefix(error, "xml: nesting deeper than 64 elements"));
	g_free(error);

	/* With our limit lifted, libxml2's own (256 without HUGE) still holds. */
	devxml_limits_default(&limits);
	limits.max_depth = 1000000;
	error = parse_fail_limits(s->str, s->len, &limits);
	g_test_message("%s", error);
	g_free(error);
	if (!under_valgrind())
		g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
	g_string_free(s, TRUE);
}

/* A legitimate document of about 3 MB (a legacy-sized snapshot with many
 * log entries) parses, completely, in well under a second. */
static void
test_large_document(void)
{
	size_t len;
	char *xml = read_data("xml/futuresmart-color-mfp.xml", &len);
	const char *open = strstr(xml, "<log:Entry>");
	const char *close = strstr(xml, "</log:Entry>");
	const char *entries_end = strstr(xml, "</log:Entries>");
	GString *doc = g_string_sized_new(3500000);
	struct snapshot *snap = NULL;
	char *error = NULL;
	gint64 start, took;
	unsigned n = 0;

	g_assert_nonnull(open);
	g_assert_nonnull(close);
	close += strlen("</log:Entry>");
	g_string_append_len(doc, xml, entries_end - xml);
	while (doc->len < 3 * 1024 * 1024) {
		/* Same entry, fresh sequence number each time. */
		char *entry = g_strndup(open, close - open);
		char *seq = strstr(entry, "<dd:SequenceNumber>416<");
		g_assert_nonnull(seq);
		g_string_append_len(doc, entry, seq - entry);
		g_string_append_printf(doc, "<dd:SequenceNumber>%u<", 100000 + n++);
		g_string_append(doc, seq + strlen("<dd:SequenceNumber>416<"));
		g_string_append_c(doc, '\n');
		g_free(entry);
	}
	g_string_append(doc, entries_end);

	start = g_get_monotonic_time();
	g_assert_cmpint(devxml_parse(doc->str, doc->len, NULL, &snap, &error), ==, 0);
	took = g_get_monotonic_time() - start;
	g_test_message("%zu bytes, %u added entries, parsed in %" G_GINT64_FORMAT " ms", doc->len,
		       n, took / 1000);
	g_assert_cmpuint(snap->events->len, ==, 9 + n);
	g_assert_cmpint(event_seq(snap, 100000 + n - 1)->page_count, ==, 133275);
	g_assert_cmpint(counter(snap, "TotalImpressions"), ==, 133275);
	if (!under_valgrind())
		g_assert_cmpint(took, <, G_USEC_PER_SEC);
	snapshot_free(&snap);

	/* Odd chunking gives the same result for a large document too. */
	{
		struct snapshot *a = parse_ok(doc->str, doc->len);
		snapshot_free(&a);
	}
	g_string_free(doc, TRUE);
	g_free(xml);
}

/* A 20 MB text node: refused by size by default; with the size limit raised,
 * by our string limit; with that lifted too, libxml2 truncates the node and
 * stops without an error return, and we must still refuse. */
static void
test_hazard_huge_text(void)
{
	const size_t text = 20 * 1024 * 1024;
	GString *s = g_string_sized_new(text + 256);
	struct devxml_limits limits;
	char *error;

	g_string_append(s, "<DeviceService><SystemConfigurationService><DeviceIdentification>"
			   "<SerialNumber>HUGE</SerialNumber><Description>");
	for (size_t i = 0; i < text / 64; i++)
		g_string_append(s,
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789..");
	g_string_append(s, "</Description></DeviceIdentification></SystemConfigurationService>"
			   "</DeviceService>");

	error = parse_fail(s->str, s->len);
	g_assert_true(g_str_has_prefix(error, "xml: document of "));
	g_free(error);

	devxml_limits_default(&limits);
	limits.max_xml_size = 64 * 1024 * 1024;
	error = parse_fail_limits(s->str, s->len, &limits);
	g_assert_cmpstr(error, ==, "xml: text longer than 65536 bytes at line 1");
	g_free(error);

	limits.max_string_len = SIZE_MAX;
	error = parse_fail_limits(s->str, s->len, &limits);
	g_test_message("%s", error);
	g_free(error);
	g_string_free(s, TRUE);
}

static void
test_hazard_limits(void)
{
	struct devxml_limits limits;
	size_t len;
	char *xml, *error;
	GString *s;

	/* More events than max_events, both dialects. */
	devxml_limits_default(&limits);
	limits.max_events = 5;
	xml = read_data("xml/futuresmart-color-mfp.xml", &len);
	error = parse_fail_limits(xml, len, &limits);
	g_assert_cmpstr(error, ==, "xml: more than 5 event entries");
	g_free(error);
	g_free(xml);
	xml = read_data("xml/legacy-color-mfp.xml", &len);
	error = parse_fail_limits(xml, len, &limits);
	g_assert_cmpstr(error, ==, "xml: more than 5 event entries");
	g_free(error);
	limits.max_events = 7; /* exactly as many as the document has */
	{
		struct snapshot *snap = NULL;
		g_assert_cmpint(devxml_parse(xml, len, &limits, &snap, &error), ==, 0);
		g_assert_cmpuint(snap->events->len, ==, 7);
		snapshot_free(&snap);
	}

	/* Size limit, checked before parsing. */
	devxml_limits_default(&limits);
	limits.max_xml_size = len - 1;
	error = parse_fail_limits(xml, len, &limits);
	g_assert_true(g_str_has_prefix(error, "xml: document of "));
	g_free(error);
	g_free(xml);

	/* Element count. */
	devxml_limits_default(&limits);
	limits.max_elements = 1000;
	s = g_string_new("<DeviceService>");
	for (int i = 0; i < 2000; i++)
		g_string_append(s, "<x/>");
	g_string_append(s, "</DeviceService>");
	error = parse_fail_limits(s->str, s->len, &limits);
	g_assert_cmpstr(error, ==, "xml: more than 1000 elements");
	g_free(error);
	g_string_free(s, TRUE);

	/* A long attribute value. */
	s = g_string_new("<DeviceService id='");
	for (int i = 0; i < 70000; i++)
		g_string_append_c(s, 'a');
	g_string_append(s, "'/>");
	error = parse_fail(s->str, s->len);
	g_assert_true(g_str_has_prefix(error, "xml: attribute longer than 65536 bytes"));
	g_free(error);
	g_string_free(s, TRUE);
}

static void
test_not_device_xml(void)
{
	static const char html[] = "<html><body><p>hello</p></body></html>";
	static const char noserial[] = "<DeviceService><TicketMetaData/></DeviceService>";
	static const char nasty[] = "<x:a\xc3\xa9"
				    "b xmlns:x='u'/>";
	char *error = parse_fail(html, strlen(html));
	g_assert_cmpstr(error, ==, "xml: not a Device.xml (root element 'html')");
	g_free(error);
	error = parse_fail(noserial, strlen(noserial));
	g_assert_cmpstr(error, ==, "xml: no SerialNumber");
	g_free(error);
	/* A serial elsewhere (a supply's) is not the device's. */
	error = parse_fail("<Device><SerialNumber>S</SerialNumber></Device>", 47);
	g_assert_cmpstr(error, ==, "xml: no SerialNumber");
	g_free(error);
	error = parse_fail(nasty, strlen(nasty));
	g_assert_cmpstr(error, ==,
			"xml: not a Device.xml (root element 'a\xc3\xa9"
			"b')");
	g_free(error);
}

int
main(int argc, char **argv)
{
	static const char *const examples[] = {"futuresmart-color-mfp", "futuresmart-mfp",
					       "legacy-color-mfp"};

	g_test_init(&argc, &argv, NULL);
	devxml_global_init();
	for (size_t i = 0; i < G_N_ELEMENTS(examples); i++) {
		char *path = g_strdup_printf("/devxml/example/%s", examples[i]);
		g_test_add_data_func(path, examples[i], test_example);
		g_free(path);
	}
	g_test_add_func("/devxml/example/extras", test_example_extras);
	g_test_add_func("/devxml/variant/prefixes", test_variant_prefixes);
	g_test_add_func("/devxml/variant/legacy-iprefix", test_variant_legacy_iprefix);
	g_test_add_func("/devxml/variant/exponent", test_variant_exponent);
	g_test_add_func("/devxml/variant/mono-color-no-total", test_variant_mono_color);
	g_test_add_func("/devxml/variant/no-timestamp", test_variant_no_timestamp);
	g_test_add_func("/devxml/variant/korean-utf8", test_variant_korean);
	g_test_add_func("/devxml/variant/iso-8859-1", test_variant_latin1);
	g_test_add_func("/devxml/variant/offsets", test_variant_offsets);
	g_test_add_func("/devxml/variant/utf16-euckr", test_variant_other_encodings);
	g_test_add_func("/devxml/large/3mb", test_large_document);
	for (size_t i = 0; i < G_N_ELEMENTS(hazard_files); i++) {
		char *path = g_strdup_printf("/devxml/hazard/file/%s", hazard_files[i].file);
		g_test_add_data_func(path, &hazard_files[i], test_hazard_file);
		g_free(path);
	}
	g_test_add_func("/devxml/hazard/xinclude", test_hazard_xinclude);
	g_test_add_func("/devxml/hazard/entity-loader", test_hazard_entity_loader);
	g_test_add_func("/devxml/hazard/empty", test_hazard_empty);
	g_test_add_func("/devxml/hazard/truncated", test_hazard_truncated);
	g_test_add_func("/devxml/hazard/malformed", test_hazard_malformed);
	g_test_add_func("/devxml/hazard/deep", test_hazard_deep);
	g_test_add_func("/devxml/hazard/huge-text", test_hazard_huge_text);
	g_test_add_func("/devxml/hazard/limits", test_hazard_limits);
	g_test_add_func("/devxml/refuse/not-device-xml", test_not_device_xml);
	return g_test_run();
}
