/* test-store.c: the SQLite store against real database files in a
 * temporary directory: migrations, the public views' columns, the archive's
 * exact round trip, duplicate arrivals, idempotent result commits, events
 * stored once, counters that go backwards, read-only access while a writer
 * holds a transaction (WAL), and foreign keys. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "devxml/snapshot.h"
#include "store/archive.h"
#include "store/store.h"

struct fixture {
	char *dir;
	char *path;
	struct store *store;
};

static struct store *
open_store(const char *path, bool readonly)
{
	struct store_settings s;
	struct store *store = NULL;
	char *error = NULL;

	store_settings_default(&s);
	s.path = path;
	s.readonly = readonly;
	s.busy_timeout_ms = 200;
	if (store_open(&s, &store, &error) < 0)
		g_error("store_open %s: %s", path, error);
	return store;
}

static void
fixture_setup(struct fixture *f, gconstpointer data)
{
	GError *gerr = NULL;

	f->dir = g_dir_make_tmp("test-store-XXXXXX", &gerr);
	g_assert_no_error(gerr);
	f->path = g_build_filename(f->dir, "snapkeep.db", NULL);
	f->store = open_store(f->path, false);
}

static void
remove_dir(const char *dir)
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

static void
fixture_teardown(struct fixture *f, gconstpointer data)
{
	store_free(&f->store);
	remove_dir(f->dir);
	g_free(f->path);
	g_free(f->dir);
}

/* One integer from a query with an optional text parameter. */
static int64_t
query_int(struct store *store, const char *sql, const char *param)
{
	sqlite3_stmt *stmt = NULL;
	int64_t v;

	if (sqlite3_prepare_v2(store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
		g_error("prepare %s: %s", sql, sqlite3_errmsg(store_db(store)));
	if (param != NULL)
		sqlite3_bind_text(stmt, 1, param, -1, SQLITE_TRANSIENT);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/* One text from a query (g_free'd by the caller; NULL for SQL NULL). */
static char *
query_text(struct store *store, const char *sql, const char *param)
{
	sqlite3_stmt *stmt = NULL;
	char *v;

	if (sqlite3_prepare_v2(store_db(store), sql, -1, &stmt, NULL) != SQLITE_OK)
		g_error("prepare %s: %s", sql, sqlite3_errmsg(store_db(store)));
	if (param != NULL)
		sqlite3_bind_text(stmt, 1, param, -1, SQLITE_TRANSIENT);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	v = g_strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return v;
}

static int64_t
add_message(struct store *store, const char *source, const void *raw, size_t len, bool *dup_r)
{
	struct store_arrival a = { .source = source, .peer = "192.0.2.7", .mail_from = "printer@example.org",
				   .subject = "Device Snapshot" };
	struct store_receipt r;
	char *error = NULL;

	if (store_message_add(store, &a, raw, len, &r, &error) < 0)
		g_error("store_message_add: %s", error);
	g_assert_cmpint(r.intake_id, >, 0);
	g_assert_cmpint(r.message_id, >, 0);
	if (dup_r != NULL)
		*dup_r = r.duplicate;
	return r.message_id;
}

static void
assert_get_equals(struct store *store, int64_t id, const void *raw, size_t len)
{
	GBytes *got = NULL;
	char *error = NULL;

	if (store_message_get(store, id, &got, &error) < 0)
		g_error("store_message_get %" G_GINT64_FORMAT ": %s", id, error);
	g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), raw, len);
	g_bytes_unref(got);
}

static char *
read_example(const char *name, size_t *len_r)
{
	const char *dir = g_getenv("SK_TESTDATA");
	char *path, *data = NULL;
	GError *gerr = NULL;
	gsize len;

	if (dir == NULL)
		g_error("SK_TESTDATA is not set (run under make check)");
	path = g_build_filename(dir, "examples", name, NULL);
	if (!g_file_get_contents(path, &data, &len, &gerr))
		g_error("%s: %s", path, gerr->message);
	g_free(path);
	*len_r = len;
	return data;
}

/* --- migrations and views ------------------------------------------------ */

static void
test_migrations(struct fixture *f, gconstpointer data)
{
	int version = store_schema_version(f->store);

	g_assert_cmpint(version, >=, 2);
	g_assert_cmpint(query_int(f->store, "PRAGMA user_version", NULL), ==, version);
	g_assert_cmpint(query_int(f->store, "PRAGMA foreign_keys", NULL), ==, 1);
	char *mode = query_text(f->store, "PRAGMA journal_mode", NULL);
	g_assert_cmpstr(mode, ==, "wal");
	g_free(mode);
	/* NORMAL (1) without durable. */
	g_assert_cmpint(query_int(f->store, "PRAGMA synchronous", NULL), ==, 1);

	/* Re-open: nothing to apply, same version, data kept. */
	static const char raw[] = "Subject: x\r\n\r\nhello\r\n";
	int64_t id = add_message(f->store, "file", raw, sizeof(raw) - 1, NULL);
	store_free(&f->store);
	f->store = open_store(f->path, false);
	g_assert_cmpint(store_schema_version(f->store), ==, version);
	assert_get_equals(f->store, id, raw, sizeof(raw) - 1);

	/* A durable connection runs synchronous=FULL (2). */
	struct store_settings s;
	struct store *durable = NULL;
	char *error = NULL;
	store_settings_default(&s);
	s.path = f->path;
	s.durable = true;
	g_assert_cmpint(store_open(&s, &durable, &error), ==, 0);
	g_assert_cmpint(query_int(durable, "PRAGMA synchronous", NULL), ==, 2);
	store_free(&durable);
	store_free(&durable); /* NULL is fine */
}

static void
test_version_checks(struct fixture *f, gconstpointer data)
{
	struct store_settings s;
	struct store *other = NULL;
	char *error = NULL;
	int version = store_schema_version(f->store);

	/* Read-only on a missing file fails and creates nothing. */
	char *missing = g_build_filename(f->dir, "missing.db", NULL);
	store_settings_default(&s);
	s.path = missing;
	s.readonly = true;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(error);
	g_assert_null(other);
	g_assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
	g_clear_pointer(&error, g_free);
	g_free(missing);

	/* Read-only on an older schema fails clearly and does not migrate. */
	g_assert_cmpint(sqlite3_exec(store_db(f->store), "PRAGMA user_version = 1", NULL, NULL, NULL), ==,
			SQLITE_OK);
	s.path = f->path;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(strstr(error, "older"));
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(query_int(f->store, "PRAGMA user_version", NULL), ==, 1);

	/* A newer schema than the program knows: writers refuse. */
	char *pragma = g_strdup_printf("PRAGMA user_version = %d", version + 1);
	g_assert_cmpint(sqlite3_exec(store_db(f->store), pragma, NULL, NULL, NULL), ==, SQLITE_OK);
	g_free(pragma);
	s.readonly = false;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(strstr(error, "newer"));
	g_clear_pointer(&error, g_free);

	/* A file that is not a database. */
	char *junk = g_build_filename(f->dir, "junk.db", NULL);
	g_assert_true(g_file_set_contents(junk, "this is not sqlite, just text that is long enough to"
					  " look like a header of a file.............................",
					  -1, NULL));
	s.path = junk;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(error);
	g_clear_pointer(&error, g_free);
	g_free(junk);
}

/* Each public view exists with its documented columns first, in order. */
static void
test_view_columns(struct fixture *f, gconstpointer data)
{
	static const struct {
		const char *view;
		const char *columns;
	} views[] = {
		{ "device_status", "serial,product_number,model,hostname,ip_address,firmware,first_seen_utc,"
				   "last_snapshot_utc,last_received_utc,snapshot_count,total_impressions,"
				   "mono_impressions,color_impressions" },
		{ "supply_status", "serial,supply,type,color,level_percent,state,low_threshold,supply_serial,"
				   "installed_date,reported_utc" },
		{ "counter_history", "serial,taken_utc,counter,value" },
		{ "event_log", "serial,log,sequence,code,occurred_utc,description,page_count" },
		{ "intake_log", "id,received_utc,source,peer,mail_from,subject,outcome,detail,serial" },
		{ "media_counter_history", "serial,taken_utc,media_size,counter,value" },
		{ "supply_history", "serial,taken_utc,supply,type,color,level_percent,state" },
		{ "counter_regressions", "serial,taken_utc,counter,value,previous_taken_utc,previous_value" },
		{ "snapshot_list", "serial,snapshot_id,taken_utc" },
	};

	for (unsigned i = 0; i < G_N_ELEMENTS(views); i++) {
		char *sql = g_strdup_printf("SELECT * FROM %s", views[i].view);
		sqlite3_stmt *stmt = NULL;
		GString *cols = g_string_new(NULL);
		char **want = g_strsplit(views[i].columns, ",", -1);

		g_assert_cmpint(sqlite3_prepare_v2(store_db(f->store), sql, -1, &stmt, NULL), ==, SQLITE_OK);
		g_assert_cmpint(sqlite3_column_count(stmt), >=, (int)g_strv_length(want));
		for (int c = 0; c < (int)g_strv_length(want); c++)
			g_assert_cmpstr(sqlite3_column_name(stmt, c), ==, want[c]);
		sqlite3_finalize(stmt);
		g_strfreev(want);
		g_string_free(cols, TRUE);
		g_free(sql);
	}
}

/* --- the archive through the store --------------------------------------- */

static void
test_round_trip(struct fixture *f, gconstpointer data)
{
	size_t len;
	char *eml = read_example("futuresmart-color-mfp.eml", &len);
	char *lf = NULL;
	GString *s;

	/* The example (CRLF), and the same with bare LF line ends. */
	int64_t id1 = add_message(f->store, "file", eml, len, NULL);
	s = g_string_new_len(eml, (gssize)len);
	g_string_replace(s, "\r\n", "\n", 0);
	lf = g_string_free(s, FALSE);
	int64_t id2 = add_message(f->store, "file", lf, strlen(lf), NULL);
	g_assert_cmpint(id1, !=, id2);
	assert_get_equals(f->store, id1, eml, len);
	assert_get_equals(f->store, id2, lf, strlen(lf));

	/* Empty, binary and NUL-containing messages. */
	static const guint8 binary[] = { 0, 1, 2, 0xff, 0xfe, '\r', '\n', 0, '=', '\r' };
	int64_t id3 = add_message(f->store, "stdin", binary, sizeof(binary), NULL);
	int64_t id4 = add_message(f->store, "stdin", "", 0, NULL);
	assert_get_equals(f->store, id3, binary, sizeof(binary));
	assert_get_equals(f->store, id4, "", 0);

	/* Lookup by hash. */
	char sha[ARCHIVE_SHA256_HEX_LEN + 1];
	int64_t found = 0;
	char *error = NULL;
	archive_sha256_hex(eml, len, sha);
	g_assert_cmpint(store_message_find(f->store, sha, &found, &error), ==, 1);
	g_assert_cmpint(found, ==, id1);
	g_assert_cmpint(store_message_find(f->store, "00", &found, &error), ==, 0);

	/* Unknown id. */
	GBytes *none = NULL;
	g_assert_cmpint(store_message_get(f->store, 9999, &none, &error), ==, -1);
	g_assert_null(none);
	g_clear_pointer(&error, g_free);

	/* A damaged blob is an error, never wrong bytes. */
	sqlite3_stmt *stmt = NULL;
	g_assert_cmpint(sqlite3_prepare_v2(store_db(f->store),
					   "UPDATE messages SET sha256 = ?1 WHERE id = ?2", -1, &stmt, NULL),
			==, SQLITE_OK);
	sqlite3_bind_text(stmt, 1, "0000000000000000000000000000000000000000000000000000000000000000", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, id3);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_DONE);
	sqlite3_finalize(stmt);
	g_assert_cmpint(store_message_get(f->store, id3, &none, &error), ==, -1);
	g_assert_nonnull(strstr(error, "SHA-256"));
	g_clear_pointer(&error, g_free);

	g_free(lf);
	g_free(eml);
}

static void
test_duplicate_bytes(struct fixture *f, gconstpointer data)
{
	static const char raw[] = "From: a@b\r\nSubject: t\r\n\r\nbody\r\n";
	bool dup = true;
	char *error = NULL;

	int64_t id1 = add_message(f->store, "smtp", raw, sizeof(raw) - 1, &dup);
	g_assert_false(dup);
	int64_t id2 = add_message(f->store, "imap", raw, sizeof(raw) - 1, &dup);
	g_assert_true(dup);
	g_assert_cmpint(id1, ==, id2);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM messages", NULL), ==, 1);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM intake_log", NULL), ==, 2);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM intake_log WHERE outcome = 'pending'"
					    " AND source = 'smtp'", NULL), ==, 1);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM intake_log WHERE outcome = 'duplicate'"
					    " AND source = 'imap' AND detail IS NOT NULL", NULL), ==, 1);

	/* Only the first arrival makes the message pending. */
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	g_assert_cmpint(store_pending_list(f->store, 10, ids, &error), ==, 0);
	g_assert_cmpuint(ids->len, ==, 1);
	g_assert_cmpint(g_array_index(ids, int64_t, 0), ==, id1);
	g_array_free(ids, TRUE);

	/* Inside a caller's transaction that rolls back, nothing remains. */
	static const char other[] = "Subject: other\r\n\r\nx\r\n";
	g_assert_cmpint(store_begin(f->store, &error), ==, 0);
	add_message(f->store, "smtp", other, sizeof(other) - 1, NULL);
	store_rollback(f->store);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM messages", NULL), ==, 1);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM intake", NULL), ==, 2);
}

/* A reader opened read-only queries while a writer holds a write
 * transaction; it sees the last committed state. */
static void
test_readonly_during_write(struct fixture *f, gconstpointer data)
{
	static const char raw1[] = "Subject: one\r\n\r\n1\r\n";
	static const char raw2[] = "Subject: two\r\n\r\n2\r\n";
	struct store *reader;
	char *error = NULL;

	int64_t id1 = add_message(f->store, "file", raw1, sizeof(raw1) - 1, NULL);
	g_assert_cmpint(store_begin(f->store, &error), ==, 0);
	add_message(f->store, "file", raw2, sizeof(raw2) - 1, NULL);

	reader = open_store(f->path, true);
	g_assert_cmpint(store_schema_version(reader), ==, store_schema_version(f->store));
	g_assert_cmpint(query_int(reader, "SELECT count(*) FROM intake_log", NULL), ==, 1);
	assert_get_equals(reader, id1, raw1, sizeof(raw1) - 1);
	/* It cannot write. */
	struct store_arrival a = { .source = "file" };
	struct store_receipt r;
	g_assert_cmpint(store_message_add(reader, &a, "x", 1, &r, &error), ==, -1);
	g_clear_pointer(&error, g_free);

	g_assert_cmpint(store_commit(f->store, &error), ==, 0);
	g_assert_cmpint(query_int(reader, "SELECT count(*) FROM intake_log", NULL), ==, 2);
	store_free(&reader);
}

static void
test_foreign_keys(struct fixture *f, gconstpointer data)
{
	char *msg = NULL;

	/* An intake row for a message that does not exist is refused. */
	int rc = sqlite3_exec(store_db(f->store),
			      "INSERT INTO intake (received_utc, received_us, source, message_id)"
			      " VALUES ('2025-01-01T00:00:00Z', 0, 'file', 4242)",
			      NULL, NULL, &msg);
	g_assert_cmpint(rc & 0xff, ==, SQLITE_CONSTRAINT);
	sqlite3_free(msg);
	msg = NULL;
	rc = sqlite3_exec(store_db(f->store),
			  "INSERT INTO snapshots (device_id, message_id, taken_utc, taken_unix, taken_source,"
			  " received_utc, clock_skew_s) VALUES (77, 88, '2025-01-01T00:00:00Z', 0, 'xml',"
			  " '2025-01-01T00:00:00Z', 0)",
			  NULL, NULL, &msg);
	g_assert_cmpint(rc & 0xff, ==, SQLITE_CONSTRAINT);
	sqlite3_free(msg);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/store/" name, struct fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("migrations", test_migrations);
	ADD("version-checks", test_version_checks);
	ADD("view-columns", test_view_columns);
	ADD("round-trip", test_round_trip);
	ADD("duplicate-bytes", test_duplicate_bytes);
	ADD("readonly-during-write", test_readonly_during_write);
	ADD("foreign-keys", test_foreign_keys);
#undef ADD
	return g_test_run();
}
