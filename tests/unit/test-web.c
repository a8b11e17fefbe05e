/* test-web.c: the web module end to end, without the daemon: a database
 * made by the real `snapkeep import` from the three example mails and one
 * hostile mail (markup in host name and model), web_server_start on an
 * ephemeral loopback port, and libcurl as the client.
 *
 * Checks every page and API endpoint answers, filters and paging, the CSV
 * exports, /metrics' shape, escaping of device strings (text, attributes,
 * JSON), the Host check, path and size limits, 404/405/400 answers, the
 * CSRF refusal, Basic authentication from a crypt(3) users file, reload,
 * and the refusal to listen remotely without TLS and authentication. */
#include "config.h"

#include <crypt.h>
#include <curl/curl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "util/log.h"
#include "web/web.h"

static char *tmpdir, *db_path, *users_path;
static struct web_server *server;
static unsigned port;

#define XSS_HOST "<script>alert(1)</script>"
#define XSS_MODEL "Evil\"><img src=x onerror=alert(2)> 9000"
#define XSS_SERIAL "XSS0000001"

struct resp {
	long status;
	GString *body;
	GString *headers;
};

static size_t
collect(char *data, size_t size, size_t n, void *user)
{
	g_string_append_len(user, data, (gssize)(size * n));
	return size * n;
}

static void
resp_clear(struct resp *r)
{
	g_string_free(r->body, TRUE);
	g_string_free(r->headers, TRUE);
}

/* method NULL: GET.  host: a Host header to send instead of curl's. */
static void
http_full(unsigned p, const char *method, const char *path, const char *host, const char *userpwd,
	  const char *post, const char *content_type, struct resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char *url = g_strdup_printf("http://127.0.0.1:%u%s", p, path);

	r->body = g_string_new(NULL);
	r->headers = g_string_new(NULL);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r->headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (host != NULL) {
		char *h = g_strdup_printf("Host: %s", host);
		hdrs = curl_slist_append(hdrs, h);
		g_free(h);
	}
	if (content_type != NULL) {
		char *h = g_strdup_printf("Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, h);
		g_free(h);
	}
	if (hdrs != NULL)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (userpwd != NULL) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
	}
	if (post != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
	}
	if (method != NULL)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		g_error("curl %s: %s", url, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	g_free(url);
}

static void
get(const char *path, struct resp *r)
{
	http_full(port, NULL, path, NULL, NULL, NULL, NULL, r);
}

static bool
has_header(const struct resp *r, const char *needle)
{
	char *low = g_ascii_strdown(r->headers->str, -1);
	char *n = g_ascii_strdown(needle, -1);
	bool ok = strstr(low, n) != NULL;
	g_free(low);
	g_free(n);
	return ok;
}

static JsonNode *
parse_json(const struct resp *r)
{
	GError *gerr = NULL;
	JsonNode *n = json_from_string(r->body->str, &gerr);
	g_assert_no_error(gerr);
	g_assert_nonnull(n);
	return n;
}

static JsonObject *
obj(JsonNode *n)
{
	g_assert_true(JSON_NODE_HOLDS_OBJECT(n));
	return json_node_get_object(n);
}

/* ---- fixture ---- */

static char *
read_file(const char *path, gsize *len_r)
{
	char *text = NULL;
	GError *gerr = NULL;
	g_file_get_contents(path, &text, len_r, &gerr);
	g_assert_no_error(gerr);
	return text;
}

static void
write_mail(const char *path, const char *xml)
{
	char *mail = g_strdup_printf(
	    "From: evil@fleet.example\r\nTo: fleet-intake@fleet.example\r\n"
	    "Subject: Device Snapshot <b>bold</b>\r\nMessage-ID: <xss@fleet.example>\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
	    "--b1\r\nContent-Type: text/xml; name=\"Device.xml\"\r\n"
	    "Content-Disposition: attachment; filename=\"Device.xml\"\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--b1--\r\n",
	    xml);
	GError *gerr = NULL;
	g_file_set_contents(path, mail, -1, &gerr);
	g_assert_no_error(gerr);
	g_free(mail);
}

static char *
testdata_xml(const char *name)
{
	char *path = g_build_filename(g_getenv("SK_TESTDATA"), "xml", name, NULL);
	char *xml = read_file(path, NULL);
	g_free(path);
	return xml;
}

/* The hostile device: markup in host name and model.  host NULL: the
 * hostile one; time: the snapshot's TimeStamp. */
static void
write_xss_mail(const char *path, const char *host, const char *time)
{
	char *xml = testdata_xml("variant-fs-noprefix.xml");
	GString *doc = g_string_new(xml);
	g_string_replace(doc, "NOPFX00001", XSS_SERIAL, 0);
	char *h = g_markup_escape_text(host != NULL ? host : XSS_HOST, -1);
	char *model = g_markup_escape_text(XSS_MODEL, -1);
	g_string_replace(doc, "NPI000001", h, 0);
	g_string_replace(doc, "HP LaserJet Enterprise M609", model, 0);
	if (time != NULL)
		g_string_replace(
		    doc, "<TimeStamp>2025-03-09T04:57:47Z</TimeStamp></TicketMetaData>", time, 1);
	write_mail(path, doc->str);
	g_free(h);
	g_free(model);
	g_string_free(doc, TRUE);
	g_free(xml);
}

static void
import_files(const char *const *files)
{
	char *prog = g_build_filename(g_getenv("SK_TOP_BUILDDIR"), "snapkeep", NULL);
	GPtrArray *argv = g_ptr_array_new();
	g_ptr_array_add(argv, prog);
	g_ptr_array_add(argv, (gpointer) "import");
	g_ptr_array_add(argv, (gpointer) "--db");
	g_ptr_array_add(argv, db_path);
	for (const char *const *f = files; *f != NULL; f++)
		g_ptr_array_add(argv, (gpointer)*f);
	g_ptr_array_add(argv, NULL);
	char *out = NULL, *err = NULL;
	int status = 0;
	GError *gerr = NULL;
	if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
			  &status, &gerr))
		g_error("cannot run %s: %s", prog, gerr->message);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("snapkeep import failed: %s %s", out, err);
	g_free(out);
	g_free(err);
	g_ptr_array_unref(argv);
	g_free(prog);
}

static void
build_database(void)
{
	const char *builddir = g_getenv("SK_TOP_BUILDDIR");
	const char *testdata = g_getenv("SK_TESTDATA");
	if (builddir == NULL || testdata == NULL)
		g_error("SK_TOP_BUILDDIR and SK_TESTDATA must be set (make check sets them)");
	char *xss = g_build_filename(tmpdir, "xss.eml", NULL);
	write_xss_mail(xss, NULL, NULL);
	char *ex[3];
	const char *names[] = {"futuresmart-color-mfp.eml", "futuresmart-mfp.eml",
			       "legacy-color-mfp.eml"};
	for (int i = 0; i < 3; i++)
		ex[i] = g_build_filename(testdata, "examples", names[i], NULL);
	import_files((const char *const[]){ex[0], ex[1], ex[2], xss, NULL});
	for (int i = 0; i < 3; i++)
		g_free(ex[i]);
	g_free(xss);
}

static struct web_server *
start(const char *listen, const char *users, bool insecure, char **error_r)
{
	struct web_settings s;
	struct web_server *srv = NULL;
	web_settings_default(&s);
	s.listen = listen;
	s.db_path = db_path;
	s.users_file = users;
	s.display_timezone = "UTC";
	s.allow_insecure_remote = insecure;
	s.threads = 2;
	s.max_url_length = 1024;
	s.max_query_params = 8;
	if (web_server_start(&s, NULL, NULL, &srv, error_r) < 0)
		return NULL;
	return srv;
}

/* ---- tests ---- */

static void
test_fleet(void)
{
	struct resp r;
	get("/", &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_true(has_header(&r, "content-type: text/html"));
	g_assert_true(has_header(&r, "script-src 'self'"));
	g_assert_false(has_header(&r, "unsafe-inline"));
	g_assert_true(has_header(&r, "x-content-type-options: nosniff"));
	g_assert_true(has_header(&r, "server-timing: app;dur="));
	for (const char *const *s =
		 (const char *const[]){"PHB4165700", "PHB0336102", "PHB6820301", XSS_SERIAL, NULL};
	     *s != NULL; s++)
		g_assert_nonnull(strstr(r.body->str, *s));
	g_assert_nonnull(strstr(r.body->str, "116\xe2\x80\xaf"
					     "606"));
	resp_clear(&r);

	/* Filters, sorting and paging. */
	get("/?q=phb68", &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_nonnull(strstr(r.body->str, "PHB6820301"));
	g_assert_null(strstr(r.body->str, "PHB4165700"));
	resp_clear(&r);
	get("/?model=HP+Color+LaserJet+Enterprise+MFP+M578&sort=total&order=desc&per_page=1&page=2",
	    &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_nonnull(strstr(r.body->str, "PHB0336102"));
	g_assert_null(strstr(r.body->str, "/devices/PHB6820301\""));
	g_assert_nonnull(strstr(r.body->str, "aria-current=\"page\">2<"));
	resp_clear(&r);
	get("/?state=out", &r);
	g_assert_nonnull(strstr(r.body->str, "PHB4165700"));
	g_assert_null(strstr(r.body->str, "/devices/PHB6820301\""));
	resp_clear(&r);
	get("/?sort=nonsense", &r);
	g_assert_cmpint(r.status, ==, 400);
	g_assert_nonnull(strstr(r.body->str, "parameter sort"));
	resp_clear(&r);
	get("/?bogus=1", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
	get("/?page=0", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
}

static void
test_escaping(void)
{
	struct resp r;
	const char *paths[] = {"/", "/devices/" XSS_SERIAL, "/attention", "/intake", NULL};
	for (int i = 0; paths[i] != NULL; i++) {
		get(paths[i], &r);
		g_assert_cmpint(r.status, ==, 200);
		g_assert_null(strstr(r.body->str, XSS_HOST));
		g_assert_null(strstr(r.body->str, "<img src=x"));
		g_assert_null(strstr(r.body->str, "<b>bold</b>"));
		if (i < 2) {
			g_assert_nonnull(
			    strstr(r.body->str, "&lt;script&gt;alert(1)&lt;/script&gt;"));
			g_assert_nonnull(strstr(r.body->str, "Evil&quot;&gt;&lt;img src=x"));
		}
		resp_clear(&r);
	}
	/* JSON keeps the text as text. */
	get("/api/devices/" XSS_SERIAL, &r);
	g_assert_cmpint(r.status, ==, 200);
	JsonNode *n = parse_json(&r);
	g_assert_cmpstr(json_object_get_string_member(obj(n), "hostname"), ==, XSS_HOST);
	g_assert_cmpstr(json_object_get_string_member(obj(n), "model"), ==, XSS_MODEL);
	json_node_unref(n);
	resp_clear(&r);
}

static int64_t
first_snapshot_id(const char *serial)
{
	struct resp r;
	char *path = g_strdup_printf("/api/devices/%s/snapshots", serial);
	get(path, &r);
	g_assert_cmpint(r.status, ==, 200);
	JsonNode *n = parse_json(&r);
	JsonArray *a = json_object_get_array_member(obj(n), "snapshots");
	g_assert_cmpint(json_array_get_length(a), ==, 1);
	g_assert_cmpint(json_object_get_int_member(obj(n), "total"), ==, 1);
	int64_t id = json_object_get_int_member(json_array_get_object_element(a, 0), "snapshot_id");
	json_node_unref(n);
	resp_clear(&r);
	g_free(path);
	return id;
}

static void
test_device(void)
{
	struct resp r;
	get("/devices/PHB6820301", &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_nonnull(strstr(r.body->str, "<svg class=\"plot\""));
	g_assert_nonnull(strstr(r.body->str, "id=\"chart-total\""));
	g_assert_nonnull(strstr(r.body->str, "id=\"chart-supplies\""));
	g_assert_nonnull(strstr(r.body->str, "class=\"pt\""));
	g_assert_nonnull(strstr(r.body->str, "Jam in tray 2"));
	g_assert_nonnull(strstr(r.body->str, "badge new"));
	resp_clear(&r);
	get("/devices/PHB6820301?range=all&period=month&events_page=2", &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
	get("/devices/PHB6820301?range=forever", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
	get("/devices/NOSUCHSERIAL", &r);
	g_assert_cmpint(r.status, ==, 404);
	g_assert_true(has_header(&r, "content-type: text/html"));
	resp_clear(&r);
}

static void
test_snapshot(void)
{
	struct resp r;
	int64_t id = first_snapshot_id("PHB4165700");
	char *path = g_strdup_printf("/snapshots/%" G_GINT64_FORMAT, id);
	get(path, &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_nonnull(strstr(r.body->str, "<pre class=\"xml\">"));
	g_assert_nonnull(strstr(r.body->str, "iso_a4_210x297mm"));
	g_assert_nonnull(strstr(r.body->str, "W2053A"));
	resp_clear(&r);
	g_free(path);

	/* The raw message, byte for byte. */
	path = g_strdup_printf("/snapshots/%" G_GINT64_FORMAT "/raw", id);
	get(path, &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_true(has_header(&r, "sandbox"));
	g_assert_true(has_header(&r, "attachment"));
	char *ex =
	    g_build_filename(g_getenv("SK_TESTDATA"), "examples", "futuresmart-mfp.eml", NULL);
	gsize len = 0;
	char *want = read_file(ex, &len);
	g_assert_cmpuint(r.body->len, ==, len);
	g_assert_true(memcmp(r.body->str, want, len) == 0);
	g_free(want);
	g_free(ex);
	resp_clear(&r);
	g_free(path);

	path = g_strdup_printf("/api/snapshots/%" G_GINT64_FORMAT "/xml?pretty=1", id);
	get(path, &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_true(g_str_has_prefix(r.body->str, "<?xml"));
	g_assert_nonnull(strstr(r.body->str, "\n  <"));
	g_assert_true(has_header(&r, "sandbox"));
	resp_clear(&r);
	g_free(path);

	path = g_strdup_printf("/api/snapshots/%" G_GINT64_FORMAT, id);
	get(path, &r);
	g_assert_cmpint(r.status, ==, 200);
	JsonNode *n = parse_json(&r);
	JsonObject *doc = json_object_get_object_member(obj(n), "document");
	g_assert_nonnull(doc);
	g_assert_cmpstr(json_object_get_string_member(doc, "serial"), ==, "PHB4165700");
	json_node_unref(n);
	resp_clear(&r);
	g_free(path);

	get("/snapshots/999999", &r);
	g_assert_cmpint(r.status, ==, 404);
	resp_clear(&r);
	get("/api/snapshots/abc", &r);
	g_assert_cmpint(r.status, ==, 404);
	g_assert_true(has_header(&r, "application/json"));
	resp_clear(&r);
}

static void
test_api(void)
{
	struct resp r;
	get("/api/devices", &r);
	g_assert_cmpint(r.status, ==, 200);
	JsonNode *n = parse_json(&r);
	g_assert_cmpint(json_object_get_int_member(obj(n), "total"), ==, 4);
	JsonArray *a = json_object_get_array_member(obj(n), "devices");
	g_assert_cmpint(json_array_get_length(a), ==, 4);
	JsonObject *d0 = json_array_get_object_element(a, 0);
	g_assert_true(json_object_has_member(d0, "serial"));
	g_assert_true(json_object_has_member(d0, "last_snapshot_utc"));
	g_assert_true(json_object_has_member(d0, "total_impressions"));
	g_assert_true(json_object_has_member(d0, "lowest_supply"));
	json_node_unref(n);
	resp_clear(&r);

	get("/api/devices?sort=total&order=desc&per_page=2", &r);
	n = parse_json(&r);
	a = json_object_get_array_member(obj(n), "devices");
	g_assert_cmpint(json_array_get_length(a), ==, 2);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(a, 0), "serial"), ==,
	    "PHB6820301");
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(a, 1), "serial"), ==,
	    "PHB4165700");
	json_node_unref(n);
	resp_clear(&r);

	get("/api/devices?state=bogus", &r);
	g_assert_cmpint(r.status, ==, 400);
	n = parse_json(&r);
	g_assert_nonnull(strstr(json_object_get_string_member(obj(n), "error"), "state"));
	json_node_unref(n);
	resp_clear(&r);

	get("/api/devices/PHB4165700", &r);
	n = parse_json(&r);
	g_assert_cmpint(json_object_get_int_member(obj(n), "total_impressions"), ==, 116606);
	a = json_object_get_array_member(obj(n), "supplies");
	g_assert_cmpint(json_array_get_length(a), ==, 2);
	json_node_unref(n);
	resp_clear(&r);

	get("/api/devices/NOPE", &r);
	g_assert_cmpint(r.status, ==, 404);
	resp_clear(&r);

	get("/api/devices/PHB4165700/counters?from=2025-03-01&to=2025-03-31&interval=week", &r);
	g_assert_cmpint(r.status, ==, 200);
	n = parse_json(&r);
	a = json_object_get_array_member(obj(n), "points");
	g_assert_cmpint(json_array_get_length(a), ==, 1);
	JsonObject *c =
	    json_object_get_object_member(json_array_get_object_element(a, 0), "counters");
	g_assert_cmpint(json_object_get_int_member(c, "TotalImpressions"), ==, 116606);
	json_node_unref(n);
	resp_clear(&r);
	get("/api/devices/PHB4165700/counters?from=2025-04-01", &r);
	n = parse_json(&r);
	g_assert_cmpint(json_array_get_length(json_object_get_array_member(obj(n), "points")), ==,
			0);
	json_node_unref(n);
	resp_clear(&r);
	get("/api/devices/PHB4165700/counters?from=yesterday", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
	get("/api/devices/PHB4165700/counters?interval=hour", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
	get("/api/devices/PHB4165700/counters?from=2025-03-10&to=2025-03-01", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);

	get("/api/devices/PHB4165700/supplies", &r);
	n = parse_json(&r);
	g_assert_cmpint(json_array_get_length(json_object_get_array_member(obj(n), "supplies")), ==,
			2);
	g_assert_cmpint(json_array_get_length(json_object_get_array_member(obj(n), "history")), ==,
			2);
	json_node_unref(n);
	resp_clear(&r);

	get("/api/devices/PHB6820301/events?per_page=3&page=2", &r);
	n = parse_json(&r);
	g_assert_cmpint(json_object_get_int_member(obj(n), "total"), ==, 9);
	g_assert_cmpint(json_array_get_length(json_object_get_array_member(obj(n), "events")), ==,
			3);
	json_node_unref(n);
	resp_clear(&r);
	get("/api/devices/PHB6820301/events?log=info", &r);
	n = parse_json(&r);
	g_assert_cmpint(json_object_get_int_member(obj(n), "total"), ==, 2);
	json_node_unref(n);
	resp_clear(&r);

	get("/api/meter-reads?start=2025-01-01&end=2025-03-31&counter=TotalImpressions", &r);
	n = parse_json(&r);
	a = json_object_get_array_member(obj(n), "reads");
	g_assert_cmpint(json_array_get_length(a), ==, 4);
	json_node_unref(n);
	resp_clear(&r);

	get("/api", &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
}

static void
test_csv(void)
{
	struct resp r;
	get("/devices/PHB4165700/counters.csv", &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_true(has_header(&r, "content-type: text/csv"));
	char **lines = g_strsplit(r.body->str, "\r\n", -1);
	g_assert_true(g_str_has_prefix(lines[0], "serial,taken_utc,snapshot_id,"));
	g_assert_nonnull(strstr(lines[0], "TotalImpressions"));
	g_assert_true(g_str_has_prefix(lines[1], "PHB4165700,2025-03-09T11:57:47Z,"));
	g_assert_nonnull(strstr(lines[1], "116606"));
	g_assert_cmpstr(lines[2], ==, "");
	g_strfreev(lines);
	resp_clear(&r);

	get("/export/meter-reads.csv?start=2025-01-01&end=2025-03-31&counter=TotalImpressions", &r);
	g_assert_cmpint(r.status, ==, 200);
	lines = g_strsplit(r.body->str, "\r\n", -1);
	g_assert_cmpstr(lines[0], ==,
			"serial,model,hostname,counter,start_taken_utc,start_value,end_taken_utc,"
			"end_value,difference");
	g_assert_cmpuint(g_strv_length(lines), ==, 6);
	bool found = false;
	for (char **l = lines; *l != NULL; l++)
		if (g_str_has_prefix(*l, "PHB4165700,")) {
			g_assert_true(g_str_has_suffix(*l, ",116606,0"));
			found = true;
		}
	g_assert_true(found);
	/* A device string never starts a spreadsheet formula, quotes doubled. */
	g_assert_nonnull(strstr(r.body->str, "\"Evil\"\"><img src=x onerror=alert(2)> 9000\""));
	g_strfreev(lines);
	resp_clear(&r);

	get("/export/meter-reads.csv?start=2025-01-01", &r);
	g_assert_cmpint(r.status, ==, 400);
	g_assert_true(has_header(&r, "text/plain"));
	resp_clear(&r);
	get("/export/meter-reads.csv", &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
}

static void
test_metrics(void)
{
	struct resp r;
	get("/metrics", &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_true(has_header(&r, "text/plain; version=0.0.4"));
	g_assert_nonnull(strstr(r.body->str,
				"snapkeep_device_total_impressions{serial=\"PHB4165700\",model="
				"\"HP LaserJet Enterprise MFP M631\"} 116606\n"));
	g_assert_nonnull(strstr(r.body->str, "snapkeep_devices 4\n"));
	g_assert_nonnull(
	    strstr(r.body->str, "model=\"Evil\\\"><img src=x onerror=alert(2)> 9000\""));
	/* Every sample's family was announced just before, once. */
	GRegex *sample = g_regex_new(
	    "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{.*\\})? (-?[0-9.e+]+|NaN|[+-]Inf)$", 0, 0, NULL);
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	char **lines = g_strsplit(r.body->str, "\n", -1);
	char *family = NULL;
	for (char **l = lines; *l != NULL && **l != '\0'; l++) {
		if (g_str_has_prefix(*l, "# TYPE ")) {
			char **p = g_strsplit(*l + 7, " ", 2);
			g_assert_false(g_hash_table_contains(seen, p[0]));
			g_hash_table_add(seen, g_strdup(p[0]));
			g_free(family);
			family = g_strdup(p[0]);
			g_strfreev(p);
			continue;
		}
		if (g_str_has_prefix(*l, "# HELP "))
			continue;
		GMatchInfo *mi = NULL;
		g_assert_true(g_regex_match(sample, *l, 0, &mi));
		char *name = g_match_info_fetch(mi, 1);
		g_assert_nonnull(family);
		g_assert_true(g_str_has_prefix(name, family));
		g_free(name);
		g_match_info_free(mi);
	}
	g_free(family);
	g_strfreev(lines);
	g_hash_table_destroy(seen);
	g_regex_unref(sample);
	resp_clear(&r);

	get("/healthz", &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_cmpstr(r.body->str, ==, "ok\n");
	resp_clear(&r);
}

static void
test_safety(void)
{
	struct resp r;
	/* DNS rebinding: a foreign Host is refused, ours are fine. */
	http_full(port, NULL, "/", "evil.example", NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 421);
	resp_clear(&r);
	http_full(port, NULL, "/", "localhost:1234", NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
	http_full(port, NULL, "/", "[::1]:80", NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
	/* An address literal cannot be rebound; a name that starts like one can. */
	http_full(port, NULL, "/", "10.1.2.3:8080", NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
	http_full(port, NULL, "/", "127.0.0.1.evil.example", NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 421);
	resp_clear(&r);
	http_full(port, NULL, "/", "", NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 421);
	resp_clear(&r);

	/* Static files come from a fixed table: no path reaches the disk. */
	get("/static/style.css", &r);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_true(has_header(&r, "text/css"));
	resp_clear(&r);
	get("/static/..%2f..%2fconfig.h", &r);
	g_assert_cmpint(r.status, ==, 404);
	resp_clear(&r);
	get("/static/../../etc/passwd", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
	get("/static/%00", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
	get("/nothing/here", &r);
	g_assert_cmpint(r.status, ==, 404);
	resp_clear(&r);
	get("/devices/", &r);
	g_assert_cmpint(r.status, ==, 404);
	resp_clear(&r);

	/* Limits. */
	GString *longpath = g_string_new("/?q=");
	while (longpath->len < 1100)
		g_string_append_c(longpath, 'a');
	get(longpath->str, &r);
	g_assert_cmpint(r.status, ==, 414);
	resp_clear(&r);
	g_string_free(longpath, TRUE);
	get("/?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);
	get("/?q=%ff", &r);
	g_assert_cmpint(r.status, ==, 400);
	resp_clear(&r);

	/* Methods. */
	http_full(port, "DELETE", "/", NULL, NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 405);
	g_assert_true(has_header(&r, "allow: GET, HEAD"));
	resp_clear(&r);
	http_full(port, "POST", "/api/devices", NULL, NULL, "x=1", NULL, &r);
	g_assert_cmpint(r.status, ==, 405);
	resp_clear(&r);

	/* Reprocess: a POST with a CSRF token; without one it is refused. */
	http_full(port, NULL, "/intake/reprocess", NULL, NULL, "message_id=1",
		  "application/x-www-form-urlencoded", &r);
	g_assert_cmpint(r.status, ==, 403);
	resp_clear(&r);
	http_full(port, NULL, "/intake/reprocess", NULL, NULL, "message_id=1&csrf=1999999999.00",
		  "application/x-www-form-urlencoded", &r);
	g_assert_cmpint(r.status, ==, 403);
	resp_clear(&r);
	GString *big = g_string_new("message_id=1&csrf=");
	while (big->len < 10000)
		g_string_append_c(big, 'x');
	http_full(port, NULL, "/intake/reprocess", NULL, NULL, big->str,
		  "application/x-www-form-urlencoded", &r);
	g_assert_cmpint(r.status, ==, 413);
	resp_clear(&r);
	g_string_free(big, TRUE);
	get("/intake/reprocess", &r);
	g_assert_cmpint(r.status, ==, 405);
	resp_clear(&r);
}

static void
test_auth(void)
{
	char *error = NULL;
	struct web_server *srv = start("127.0.0.1:0", users_path, false, &error);
	if (srv == NULL)
		g_error("start: %s", error);
	unsigned p = web_server_port(srv);
	struct resp r;

	http_full(p, NULL, "/", NULL, NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 401);
	g_assert_true(has_header(&r, "www-authenticate: basic realm=\"snapkeep\""));
	resp_clear(&r);
	http_full(p, NULL, "/api/devices", NULL, "admin:wrong", NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 401);
	resp_clear(&r);
	http_full(p, NULL, "/api/devices", NULL, "nobody:s3cret pass", NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 401);
	resp_clear(&r);
	for (int i = 0; i < 2; i++) { /* second time from the verified cache */
		http_full(p, NULL, "/", NULL, "admin:s3cret pass", NULL, NULL, &r);
		g_assert_cmpint(r.status, ==, 200);
		g_assert_nonnull(strstr(r.body->str, "class=\"who\">admin<"));
		resp_clear(&r);
	}
	http_full(p, NULL, "/healthz", NULL, NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
	http_full(p, NULL, "/metrics", NULL, NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 401);
	resp_clear(&r);
	/* A logged-in user still needs the form token. */
	http_full(p, NULL, "/intake/reprocess", NULL, "admin:s3cret pass", "message_id=1",
		  "application/x-www-form-urlencoded", &r);
	g_assert_cmpint(r.status, ==, 403);
	resp_clear(&r);
	web_server_free(&srv);
	g_assert_null(srv);
}

static void
test_reload(void)
{
	char *error = NULL;
	struct web_server *srv = start("127.0.0.1:0", NULL, false, &error);
	g_assert_nonnull(srv);
	unsigned p = web_server_port(srv);
	struct resp r;
	http_full(p, NULL, "/", NULL, NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);

	struct web_settings s;
	web_settings_default(&s);
	s.listen = "127.0.0.1:0";
	s.db_path = db_path;
	s.users_file = users_path;
	s.max_connections = 10; /* a changed limit restarts on the same socket */
	g_assert_cmpint(web_server_reload(srv, &s, &error), ==, 0);
	g_assert_cmpuint(web_server_port(srv), ==, p);
	http_full(p, NULL, "/", NULL, NULL, NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 401);
	resp_clear(&r);
	http_full(p, NULL, "/", NULL, "admin:s3cret pass", NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);

	/* A bad reload keeps the running settings. */
	s.display_timezone = "Mars/Olympus_Mons";
	g_assert_cmpint(web_server_reload(srv, &s, &error), ==, -1);
	g_assert_nonnull(strstr(error, "display_timezone"));
	g_free(error);
	error = NULL;
	http_full(p, NULL, "/", NULL, "admin:s3cret pass", NULL, NULL, &r);
	g_assert_cmpint(r.status, ==, 200);
	resp_clear(&r);
	web_server_free(&srv);
}

static void
test_refuse_remote(void)
{
	char *error = NULL;
	struct web_server *srv = start("0.0.0.0:0", NULL, false, &error);
	g_assert_null(srv);
	g_assert_nonnull(strstr(error, "without TLS and authentication"));
	g_free(error);
	error = NULL;
	srv = start("0.0.0.0:0", NULL, true, &error);
	g_assert_nonnull(srv);
	web_server_free(&srv);

	struct web_settings s;
	web_settings_default(&s);
	s.db_path = "/nonexistent/dir/x.db";
	s.listen = "127.0.0.1:0";
	g_assert_cmpint(web_server_start(&s, NULL, NULL, &srv, &error), ==, -1);
	g_free(error);
	error = NULL;
	s.db_path = db_path;
	s.listen = "127.0.0.1";
	g_assert_cmpint(web_server_start(&s, NULL, NULL, &srv, &error), ==, -1);
	g_free(error);
	error = NULL;
	s.listen = "127.0.0.1:0";
	s.users_file = db_path; /* not a users file */
	g_assert_cmpint(web_server_start(&s, NULL, NULL, &srv, &error), ==, -1);
	g_free(error);
}

/* The templates, CSS and script from a directory instead of the binary;
 * a directory missing one refuses to start. */
static void
test_assets_dir(void)
{
	struct web_settings s;
	struct web_server *srv = NULL;
	char *error = NULL;
	char *dir = g_build_filename(g_getenv("SK_TOP_SRCDIR"), "web", NULL);
	web_settings_default(&s);
	s.listen = "127.0.0.1:0";
	s.db_path = db_path;
	s.assets_dir = dir;
	g_assert_cmpint(web_server_start(&s, NULL, NULL, &srv, &error), ==, 0);
	struct resp r;
	http_full(web_server_port(srv), NULL, "/static/app.js", NULL, NULL, NULL, NULL, &r);
	char *path = g_build_filename(dir, "static", "app.js", NULL);
	gsize len = 0;
	char *want = read_file(path, &len);
	g_assert_cmpint(r.status, ==, 200);
	g_assert_true(has_header(&r, "text/javascript"));
	g_assert_cmpuint(r.body->len, ==, len);
	g_assert_true(memcmp(r.body->str, want, len) == 0);
	resp_clear(&r);
	g_free(want);
	g_free(path);
	web_server_free(&srv);
	s.assets_dir = tmpdir; /* no templates there */
	g_assert_cmpint(web_server_start(&s, NULL, NULL, &srv, &error), ==, -1);
	g_assert_nonnull(strstr(error, "asset"));
	g_free(error);
	g_free(dir);
}

/* Snapshots arriving while the server runs: the fleet table takes them in
 * (only the devices concerned are read again), the others stay as they were. */
static void
test_fleet_update(void)
{
	struct resp r;
	get("/api/devices?per_page=10", &r);
	JsonNode *n = parse_json(&r);
	g_assert_cmpint(json_object_get_int_member(obj(n), "total"), ==, 4);
	json_node_unref(n);
	resp_clear(&r);

	char *a = g_build_filename(tmpdir, "xss-2.eml", NULL);
	char *b = g_build_filename(tmpdir, "new-device.eml", NULL);
	write_xss_mail(a, "UPDATED-HOST",
		       "<TimeStamp>2025-03-10T04:57:47Z</TimeStamp></TicketMetaData>");
	char *xml = testdata_xml("variant-fs-offsets.xml");
	write_mail(b, xml);
	g_free(xml);
	import_files((const char *const[]){a, b, NULL});

	get("/api/devices?per_page=10&sort=serial", &r);
	n = parse_json(&r);
	g_assert_cmpint(json_object_get_int_member(obj(n), "total"), ==, 5);
	JsonArray *devs = json_object_get_array_member(obj(n), "devices");
	bool seen_new = false, seen_xss = false, seen_old = false;
	for (guint i = 0; i < json_array_get_length(devs); i++) {
		JsonObject *d = json_array_get_object_element(devs, i);
		const char *serial = json_object_get_string_member(d, "serial");
		if (strcmp(serial, "OFS0000001") == 0)
			seen_new = true;
		if (strcmp(serial, XSS_SERIAL) == 0) {
			seen_xss = true;
			g_assert_cmpstr(json_object_get_string_member(d, "hostname"), ==,
					"UPDATED-HOST");
			g_assert_cmpint(json_object_get_int_member(d, "snapshot_count"), ==, 2);
			g_assert_cmpint(json_object_get_int_member(d, "sending_interval_s"), ==,
					86400);
		}
		if (strcmp(serial, "PHB4165700") == 0) {
			seen_old = true;
			g_assert_cmpint(json_object_get_int_member(d, "total_impressions"), ==,
					116606);
			JsonObject *low = json_object_get_object_member(d, "lowest_supply");
			g_assert_cmpstr(json_object_get_string_member(low, "supply"), ==, "K");
		}
	}
	g_assert_true(seen_new && seen_xss && seen_old);
	json_node_unref(n);
	resp_clear(&r);
	get("/?q=ofs0", &r);
	g_assert_nonnull(strstr(r.body->str, "/devices/OFS0000001\""));
	resp_clear(&r);
	g_free(a);
	g_free(b);
}

static void
write_users(void)
{
	struct crypt_data *cd = g_new0(struct crypt_data, 1);
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	g_assert_nonnull(crypt_gensalt_rn("$6$", 5000, NULL, 0, salt, sizeof(salt)));
	const char *hash = crypt_rn("s3cret pass", salt, cd, (int)sizeof(*cd));
	g_assert_nonnull(hash);
	char *text = g_strdup_printf("# test users\nadmin:%s\n", hash);
	users_path = g_build_filename(tmpdir, "users", NULL);
	g_assert_true(g_file_set_contents(users_path, text, -1, NULL));
	g_free(text);
	g_free(cd);
}

static void
remove_tree(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		char *p = g_build_filename(dir, name, NULL);
		g_unlink(p);
		g_free(p);
	}
	if (d != NULL)
		g_dir_close(d);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	char *error = NULL;
	GError *gerr = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	log_init("test-web", LOG_LEVEL_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tmpdir = g_dir_make_tmp("test-web-XXXXXX", &gerr);
	g_assert_no_error(gerr);
	db_path = g_build_filename(tmpdir, "web.db", NULL);
	build_database();
	write_users();
	server = start("127.0.0.1:0", NULL, false, &error);
	if (server == NULL)
		g_error("web_server_start: %s", error);
	port = web_server_port(server);

	g_test_add_func("/web/fleet", test_fleet);
	g_test_add_func("/web/escaping", test_escaping);
	g_test_add_func("/web/device", test_device);
	g_test_add_func("/web/snapshot", test_snapshot);
	g_test_add_func("/web/api", test_api);
	g_test_add_func("/web/csv", test_csv);
	g_test_add_func("/web/metrics", test_metrics);
	g_test_add_func("/web/safety", test_safety);
	g_test_add_func("/web/auth", test_auth);
	g_test_add_func("/web/reload", test_reload);
	g_test_add_func("/web/refuse-remote", test_refuse_remote);
	g_test_add_func("/web/assets-dir", test_assets_dir);
	g_test_add_func("/web/fleet-update", test_fleet_update); /* last: adds snapshots */
	ret = g_test_run();

	web_server_free(&server);
	remove_tree(tmpdir);
	g_free(db_path);
	g_free(users_path);
	g_free(tmpdir);
	curl_global_cleanup();
	return ret;
}
