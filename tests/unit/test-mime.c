/* test-mime.c: src/mime against the example mails, the variants in
 * tests/data/mime/ and generated hostile messages (limits, timing).
 * Table-driven; every message is also parsed through a stream that returns
 * 1 byte and 7 bytes per read, and must give the same result. */
#include "config.h"

#include "mime/mime.h"

#include <json-glib/json-glib.h>
#include <string.h>

static char *
test_data_path(const char *dir, const char *name)
{
	const char *top = g_getenv("SK_TESTDATA");
	if (top == NULL)
		g_error("SK_TESTDATA is not set (run through make check)");
	return g_build_filename(top, dir, name, NULL);
}

static GBytes *
test_read(const char *dir, const char *name)
{
	char *path = test_data_path(dir, name);
	char *data = NULL;
	gsize len = 0;
	GError *error = NULL;

	if (!g_file_get_contents(path, &data, &len, &error))
		g_error("%s: %s", path, error->message);
	g_free(path);
	return g_bytes_new_take(data, len);
}

/* Two results are the same when every field is. */
static void
test_assert_same(const struct mime_result *a, const struct mime_result *b)
{
	g_assert_cmpint(a->device_xml == NULL, ==, b->device_xml == NULL);
	if (a->device_xml != NULL)
		g_assert_true(g_bytes_equal(a->device_xml, b->device_xml));
	g_assert_cmpstr(a->subject, ==, b->subject);
	g_assert_cmpstr(a->from, ==, b->from);
	g_assert_cmpstr(a->date, ==, b->date);
	g_assert_cmpstr(a->date_utc, ==, b->date_utc);
	g_assert_cmpstr(a->message_id, ==, b->message_id);
	g_assert_cmpstr(a->subject_kind, ==, b->subject_kind);
	g_assert_cmpstr(a->subject_time_utc, ==, b->subject_time_utc);
	g_assert_cmpstr(a->subject_product, ==, b->subject_product);
	g_assert_cmpstr(a->subject_serial, ==, b->subject_serial);
}

/* Runs mime_extract and the 1- and 7-byte stream variants; all must agree. */
static int
test_extract(GBytes *raw, const struct mime_limits *limits, struct mime_result *result, char **error_r)
{
	static const size_t pieces[] = { 1, 7 };
	gsize len = 0;
	const void *data = g_bytes_get_data(raw, &len);
	int ret = mime_extract(data, len, limits, result, error_r);

	for (size_t i = 0; i < G_N_ELEMENTS(pieces); i++) {
		struct mime_result other;
		char *error = NULL;
		int other_ret = mime_extract_chunked(data, len, pieces[i], limits, &other, &error);

		g_assert_cmpint(other_ret, ==, ret);
		test_assert_same(result, &other);
		g_assert_cmpstr(error, ==, error_r != NULL ? *error_r : NULL);
		g_free(error);
		mime_result_clear(&other);
	}
	return ret;
}

static gboolean
test_bytes_contain(GBytes *bytes, const char *needle)
{
	gsize len = 0;
	const char *data = g_bytes_get_data(bytes, &len);
	return g_strstr_len(data, (gssize)len, needle) != NULL;
}

static gboolean
test_bytes_start_with(GBytes *bytes, const char *prefix)
{
	gsize len = 0;
	const char *data = g_bytes_get_data(bytes, &len);
	return len >= strlen(prefix) && memcmp(data, prefix, strlen(prefix)) == 0;
}

/* ---- the three examples ------------------------------------------------- */

static void
test_example(gconstpointer data)
{
	const char *name = data;
	char *eml = g_strconcat(name, ".eml", NULL);
	char *json = g_strconcat(name, ".expected.json", NULL);
	char *json_path = test_data_path("examples", json);
	GBytes *raw = test_read("examples", eml);
	JsonParser *parser = json_parser_new();
	JsonObject *expected;
	struct mime_result result;
	char *error = NULL;
	GError *gerror = NULL;

	if (!json_parser_load_from_file(parser, json_path, &gerror))
		g_error("%s: %s", json_path, gerror->message);
	expected = json_node_get_object(json_parser_get_root(parser));

	g_assert_cmpint(test_extract(raw, NULL, &result, &error), ==, 1);
	g_assert_null(error);
	g_assert_nonnull(result.device_xml);
	g_assert_true(test_bytes_start_with(result.device_xml, "<?xml"));
	g_assert_true(test_bytes_contain(result.device_xml, json_object_get_string_member(expected, "serial")));
	g_assert_false(test_bytes_contain(result.device_xml, "\r\n"));

	g_assert_cmpstr(result.subject_serial, ==, json_object_get_string_member(expected, "serial"));
	g_assert_cmpstr(result.subject_product, ==, json_object_get_string_member(expected, "product_number"));
	g_assert_cmpstr(result.subject_time_utc, ==, json_object_get_string_member(expected, "taken_utc"));
	g_assert_cmpstr(result.subject_kind, ==,
			g_str_has_prefix(name, "legacy") ? "Printer Snapshot" : "Device Snapshot");
	g_assert_nonnull(result.from);
	g_assert_true(g_str_has_suffix(result.from, "@fleet.example"));
	g_assert_nonnull(result.date);
	g_assert_nonnull(result.date_utc);
	g_assert_nonnull(result.message_id);
	g_assert_true(strchr(result.message_id, '<') == NULL);
	g_assert_true(g_str_has_prefix(result.message_id, json_object_get_string_member(expected, "serial")));

	mime_result_clear(&result);
	g_object_unref(parser);
	g_bytes_unref(raw);
	g_free(json_path);
	g_free(json);
	g_free(eml);
}

/* The header hints of the legacy example, exactly. */
static void
test_legacy_hints(void)
{
	GBytes *raw = test_read("examples", "legacy-color-mfp.eml");
	struct mime_result result;

	g_assert_cmpint(test_extract(raw, NULL, &result, NULL), ==, 1);
	g_assert_cmpstr(result.subject, ==,
			"Printer Snapshot (Mar 9,2025 9:49:32 AM) \u2013 3GY25A \u2013 PHB0336102");
	g_assert_cmpstr(result.from, ==, "mfp-npia33209@fleet.example");
	g_assert_cmpstr(result.date, ==, "Sun, 09 Mar 2025 10:49:32 +0100");
	g_assert_cmpstr(result.date_utc, ==, "2025-03-09T09:49:32Z");
	g_assert_cmpstr(result.message_id, ==, "PHB0336102.1741513772@npia33209");
	mime_result_clear(&result);
	g_bytes_unref(raw);
}

/* ---- the subject parser ----------------------------------------------- */

struct subject_case {
	const char *subject;
	const char *kind; /* NULL: must not parse */
	const char *time_utc;
	const char *product;
	const char *serial;
};

static const struct subject_case subject_cases[] = {
	{ "Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B", "Device Snapshot",
	  "2015-02-11T05:54:22Z", "CD646A", "CNBXD9SP0B" },
	{ "Printer Snapshot (Nov 28,2007 5:44:18 PM) \u2013 C5958A \u2013 SG73CB1018", "Printer Snapshot",
	  "2007-11-28T17:44:18Z", "C5958A", "SG73CB1018" },
	{ "Printer Snapshot (Nov 28, 2007 5:44:18 PM) - C5958A - SG73CB1018", "Printer Snapshot",
	  "2007-11-28T17:44:18Z", "C5958A", "SG73CB1018" },
	{ "Device Snapshot (Jan 1, 2020 12:00:01 AM) - X1 - S1", "Device Snapshot", "2020-01-01T00:00:01Z",
	  "X1", "S1" },
	{ "Device Snapshot (Jan 1, 2020 12:30:00 PM) - X1 - S1", "Device Snapshot", "2020-01-01T12:30:00Z",
	  "X1", "S1" },
	{ "Device Snapshot (Dec 31, 2019 11:59:59 PM) - X1 - S1", "Device Snapshot", "2019-12-31T23:59:59Z",
	  "X1", "S1" },
	{ "Device Snapshot (February 29, 2024 1:02:03 pm) - CD646A - CNBX", "Device Snapshot",
	  "2024-02-29T13:02:03Z", "CD646A", "CNBX" },
	{ "  Device Snapshot (Mar 9, 2025 17:05:00) - 3GY25A - PHB6820301  ", "Device Snapshot",
	  "2025-03-09T17:05:00Z", "3GY25A", "PHB6820301" },
	{ "Device Snapshot (Feb 30, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B", NULL },
	{ "Device Snapshot (Feb 11, 2015 13:54:22 PM) - CD646A - CNBXD9SP0B", NULL },
	{ "Device Snapshot (Foo 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B", NULL },
	{ "Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A", NULL },
	{ "[Alert Message - Test] - HP LaserJet color flow MFP M575", NULL },
	{ "Re: Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B", NULL },
	{ "", NULL },
	{ "\xff\xfe", NULL },
};

static void
test_subject(gconstpointer data)
{
	const struct subject_case *c = data;
	char *kind = NULL, *time_utc = NULL, *product = NULL, *serial = NULL;
	int ret = mime_subject_parse(c->subject, &kind, &time_utc, &product, &serial);

	g_assert_cmpint(ret, ==, c->kind != NULL ? 0 : -1);
	g_assert_cmpstr(kind, ==, c->kind);
	g_assert_cmpstr(time_utc, ==, c->time_utc);
	g_assert_cmpstr(product, ==, c->product);
	g_assert_cmpstr(serial, ==, c->serial);
	g_free(kind);
	g_free(time_utc);
	g_free(product);
	g_free(serial);
}

int
main(int argc, char **argv)
{
	static const char *const examples[] = { "futuresmart-color-mfp", "futuresmart-mfp",
						"legacy-color-mfp" };

	g_test_init(&argc, &argv, NULL);
	mime_global_init();
	for (size_t i = 0; i < G_N_ELEMENTS(examples); i++) {
		char *path = g_strdup_printf("/mime/example/%s", examples[i]);
		g_test_add_data_func(path, examples[i], test_example);
		g_free(path);
	}
	g_test_add_func("/mime/example/legacy-hints", test_legacy_hints);
	for (size_t i = 0; i < G_N_ELEMENTS(subject_cases); i++) {
		char *path = g_strdup_printf("/mime/subject/%zu", i);
		g_test_add_data_func(path, &subject_cases[i], test_subject);
		g_free(path);
	}
	return g_test_run();
}
