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
		g_assert_cmpint(devxml_parse_chunked(xml, len, chunks[i], limits, &snap, &error2), ==, -1);
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
		const struct snapshot_event *e = event_seq(snap, json_object_get_int_member(o, "sequence"));
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
	g_assert_cmpint(counter(snap, "ColorImpressions"), ==, SNAPSHOT_ABSENT); /* never reported */
	g_assert_cmpint(counter(snap, "CopyImpressions"), ==, 14644);
	g_assert_cmpint(counter(snap, "TotalImpressions"), !=, 14644 + 116606); /* copy not mixed in */
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

/* ---- refusals ---- */

static void
test_not_device_xml(void)
{
	static const char html[] = "<html><body><p>hello</p></body></html>";
	static const char noserial[] = "<DeviceService><TicketMetaData/></DeviceService>";
	char *error = parse_fail(html, strlen(html));
	g_assert_cmpstr(error, ==, "xml: not a Device.xml (root element 'html')");
	g_free(error);
	error = parse_fail(noserial, strlen(noserial));
	g_assert_cmpstr(error, ==, "xml: no SerialNumber");
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
	g_test_add_func("/devxml/refuse/not-device-xml", test_not_device_xml);
	return g_test_run();
}
