/* test-snapshot.c: struct snapshot and its JSON form.  to_json -> from_json
 * -> to_json must be exact (the worker pipe and `show --json` depend on it),
 * absent numbers must stay absent, and malformed JSON must be refused with a
 * reason, never crash. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "devxml/devxml.h"
#include "devxml/snapshot.h"

static struct snapshot *
full_snapshot(void)
{
	struct snapshot *snap = snapshot_new();
	struct snapshot_supply *s;
	struct snapshot_event *e;

	snap->dialect = SNAPSHOT_DIALECT_FUTURESMART;
	snap->serial = g_strdup("CNBXD9SP0B");
	snap->product_number = g_strdup("CD646A");
	snap->model = g_strdup("HP LaserJet <b>\"quoted\"</b> & more");
	snap->firmware = g_strdup("2302243_045526");
	snap->firmware_date = g_strdup("2023-06-01");
	snap->hostname = g_strdup("프린터-3층"); /* non-ASCII UTF-8 */
	snap->ip_address = g_strdup("10.0.0.1");
	snap->mac_address = g_strdup("00:11:22:33:44:55");
	snap->device_uuid = g_strdup("d0fb9e94-e79d-4ec8-b06d-909c7f9a2950");
	snap->locale = NULL;
	snap->taken_utc = g_strdup("2015-02-11T05:54:22Z");
	snap->taken_offset_min = 540;
	snap->taken_has_offset = true;
	g_ptr_array_add(snap->counters,
			snapshot_counter_new("TotalImpressions", NULL, 133275, 133275));
	g_ptr_array_add(snap->counters, snapshot_counter_new("Fractional", NULL, 123, 123.45));
	g_ptr_array_add(snap->counters, snapshot_counter_new("Negative", NULL, -5, -5.5));
	g_ptr_array_add(
	    snap->counters,
	    snapshot_counter_new("Huge", NULL, INT64_C(9007199254740993), 9007199254740992.0));
	g_ptr_array_add(snap->media_counters,
			snapshot_counter_new("TotalImpressions", "iso_a4_210x297mm", 100, 100));
	s = snapshot_supply_new();
	s->key = g_strdup("K");
	s->label = g_strdup("K");
	s->color = g_strdup("black");
	s->type = g_strdup("tonerCartridge");
	s->level_percent = 0; /* zero is a value, not absence */
	s->state = g_strdup("out");
	g_ptr_array_add(snap->supplies, s);
	s = snapshot_supply_new(); /* everything absent */
	s->key = g_strdup("maintenanceKit");
	g_ptr_array_add(snap->supplies, s);
	e = snapshot_event_new();
	e->log = g_strdup("error");
	e->sequence = 416;
	e->code = g_strdup("13.B2.D1");
	e->occurred_utc = g_strdup("2025-03-08T22:09:58Z");
	e->occurred_offset_min = -420;
	e->description = g_strdup("용지 걸림 \"tray\"\n2");
	e->page_count = 133275;
	e->payload_json =
	    g_strdup("{\"FirmwareVersion\":\"2302243_045526\",\"BootCycle\":\"00000197\"}");
	g_ptr_array_add(snap->events, e);
	e = snapshot_event_new();
	e->log = g_strdup("info");
	e->payload_json = g_strdup("{ \"not\" : \"compact\" }"); /* kept verbatim */
	g_ptr_array_add(snap->events, e);
	return snap;
}

static void
assert_same(const struct snapshot *a, const struct snapshot *b)
{
	char *ja = snapshot_to_json(a), *jb = snapshot_to_json(b);
	g_assert_cmpstr(ja, ==, jb);
	g_free(ja);
	g_free(jb);
}

static void
test_round_trip(void)
{
	struct snapshot *snap = full_snapshot(), *back = NULL;
	char *json = snapshot_to_json(snap), *error = NULL;
	const struct snapshot_supply *s;
	const struct snapshot_event *e;

	g_assert_cmpint(snapshot_from_json(json, strlen(json), &back, &error), ==, 0);
	g_assert_null(error);
	assert_same(snap, back);

	/* Field by field, not only through the JSON. */
	g_assert_cmpint(back->dialect, ==, SNAPSHOT_DIALECT_FUTURESMART);
	g_assert_cmpstr(back->model, ==, snap->model);
	g_assert_cmpstr(back->hostname, ==, "프린터-3층");
	g_assert_null(back->locale);
	g_assert_cmpint(back->taken_offset_min, ==, 540);
	g_assert_true(back->taken_has_offset);
	g_assert_cmpint(snapshot_counter_find(back, "TotalImpressions")->value, ==, 133275);
	g_assert_cmpfloat(snapshot_counter_find(back, "Fractional")->value_real, ==, 123.45);
	g_assert_cmpint(snapshot_counter_find(back, "Fractional")->value, ==, 123);
	g_assert_cmpfloat(snapshot_counter_find(back, "Negative")->value_real, ==, -5.5);
	g_assert_cmpint(snapshot_counter_find(back, "Huge")->value, ==, INT64_C(9007199254740993));
	g_assert_null(snapshot_counter_find(back, "ColorImpressions"));
	g_assert_cmpint(
	    snapshot_media_counter_find(back, "TotalImpressions", "iso_a4_210x297mm")->value, ==,
	    100);
	g_assert_null(snapshot_media_counter_find(back, "TotalImpressions", "na_letter_8.5x11in"));
	s = g_ptr_array_index(back->supplies, 0);
	g_assert_cmpint(s->level_percent, ==, 0);
	g_assert_cmpint(s->pages, ==, SNAPSHOT_ABSENT);
	s = g_ptr_array_index(back->supplies, 1);
	g_assert_cmpint(s->level_percent, ==, SNAPSHOT_ABSENT);
	g_assert_cmpint(s->low_threshold, ==, SNAPSHOT_ABSENT);
	g_assert_null(s->color);
	e = g_ptr_array_index(back->events, 0);
	g_assert_cmpstr(e->description, ==, "용지 걸림 \"tray\"\n2");
	g_assert_cmpstr(e->payload_json, ==,
			"{\"FirmwareVersion\":\"2302243_045526\",\"BootCycle\":\"00000197\"}");
	g_assert_cmpint(e->occurred_offset_min, ==, -420);
	e = g_ptr_array_index(back->events, 1);
	g_assert_cmpstr(e->payload_json, ==, "{ \"not\" : \"compact\" }");
	g_assert_cmpint(e->sequence, ==, SNAPSHOT_ABSENT);
	g_assert_cmpint(e->page_count, ==, SNAPSHOT_ABSENT);
	g_assert_null(e->occurred_utc);

	/* Absent numbers are omitted, not written as 0. */
	g_assert_null(strstr(json, "\"pages\""));
	g_assert_nonnull(strstr(json, "\"level_percent\" : 0"));
	/* The compact payload is embedded as an object. */
	g_assert_nonnull(strstr(json, "\"payload\" : {"));

	snapshot_free(&back);
	snapshot_free(&snap);
	g_assert_null(snap);
	snapshot_free(&snap); /* NULL is fine */
	g_free(json);
}

/* Every parsed example survives the round trip exactly. */
static void
test_round_trip_examples(void)
{
	static const char *const names[] = {"futuresmart-color-mfp.xml", "futuresmart-mfp.xml",
					    "legacy-color-mfp.xml"};
	const char *dir = g_getenv("SK_TESTDATA");
	if (dir == NULL)
		g_error("SK_TESTDATA is not set: run through `make check`");
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		char *path = g_build_filename(dir, "xml", names[i], NULL);
		char *xml = NULL, *json, *error = NULL;
		gsize len;
		struct snapshot *snap = NULL, *back = NULL;
		g_assert_true(g_file_get_contents(path, &xml, &len, NULL));
		g_assert_cmpint(devxml_parse(xml, len, NULL, &snap, &error), ==, 0);
		json = snapshot_to_json(snap);
		g_assert_cmpint(snapshot_from_json(json, strlen(json), &back, &error), ==, 0);
		assert_same(snap, back);
		g_assert_cmpuint(back->events->len, ==, snap->events->len);
		g_assert_cmpuint(back->counters->len, ==, snap->counters->len);
		g_free(json);
		snapshot_free(&snap);
		snapshot_free(&back);
		g_free(xml);
		g_free(path);
	}
}

static void
test_bad_json(void)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{",
	    "null",
	    "{\"serial\":\"x\"}",				     /* no dialect */
	    "{\"dialect\":\"laserjet\"}",			     /* unknown dialect */
	    "{\"dialect\":\"legacy\",\"serial\":5}",		     /* wrong type */
	    "{\"dialect\":\"legacy\",\"counters\":{}}",		     /* not an array */
	    "{\"dialect\":\"legacy\",\"counters\":[5]}",	     /* element not an object */
	    "{\"dialect\":\"legacy\",\"counters\":[{\"value\":1}]}", /* counter without name */
	    "{\"dialect\":\"legacy\",\"counters\":[{\"name\":\"a\",\"value\":\"1\"}]}",
	    "{\"dialect\":\"legacy\",\"supplies\":[{\"level_percent\":1.5}]}",
	    "{\"dialect\":\"legacy\",\"events\":[{\"payload\":[1]}]}",
	    "{\"dialect\":\"legacy\",\"taken_offset_min\":100000}",
	    "{\"dialect\":\"legacy\",\"taken_has_offset\":\"yes\"}",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct snapshot *snap = NULL;
		char *error = NULL;
		g_assert_cmpint(snapshot_from_json(bad[i], strlen(bad[i]), &snap, &error), ==, -1);
		g_assert_null(snap);
		g_assert_nonnull(error);
		g_assert_true(g_str_has_prefix(error, "json: "));
		g_free(error);
	}
}

static void
test_minimal_json(void)
{
	const char *json = "{\"dialect\":\"legacy\",\"serial\":\"S1\",\"unknown\":[1,2]}";
	struct snapshot *snap = NULL;
	char *error = NULL;
	g_assert_cmpint(snapshot_from_json(json, strlen(json), &snap, &error), ==, 0);
	g_assert_cmpint(snap->dialect, ==, SNAPSHOT_DIALECT_LEGACY);
	g_assert_cmpstr(snap->serial, ==, "S1");
	g_assert_null(snap->taken_utc);
	g_assert_cmpuint(snap->counters->len, ==, 0);
	g_assert_null(snapshot_counter_find(snap, "TotalImpressions"));
	snapshot_free(&snap);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	devxml_global_init();
	g_test_add_func("/snapshot/json/round-trip", test_round_trip);
	g_test_add_func("/snapshot/json/round-trip-examples", test_round_trip_examples);
	g_test_add_func("/snapshot/json/bad", test_bad_json);
	g_test_add_func("/snapshot/json/minimal", test_minimal_json);
	return g_test_run();
}
