/* test-store.c: the store against real databases: migrations, the public
 * views' columns, the archive's exact round trip, duplicate arrivals,
 * idempotent result commits, events stored once, counters that go
 * backwards, read-only access while a writer holds a transaction, foreign
 * keys, the delta repack, retention, verification and statistics.
 *
 * By default each test case gets a SQLite file in a temporary directory.
 * With SK_TEST_BACKEND=postgresql (tests/integ/with-postgresql sets it, with
 * SK_TEST_PG_URL the admin URL of its private server) each test case gets a
 * new database on that server instead (CREATE DATABASE through libpq, a
 * name unique to the process and the case, dropped after the case), and
 * its postgresql:// URL is the store's path.  The cases about SQLite files
 * themselves check PostgreSQL's equivalent there (the snapkeep_schema row
 * instead of PRAGMA user_version, synchronous_commit instead of PRAGMA
 * synchronous, a database built from schema/postgresql's migrations 1-5);
 * the rest run unchanged, with the few test queries that differ in dialect
 * written for each engine (sql_of). */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <string.h>
#include <unistd.h>

#include "devxml/snapshot.h"
#include "store/archive.h"
#include "store/store.h"

struct fixture {
	char *dir;          /* temporary directory (files of SQLite cases) */
	char *path;         /* the store: a file in dir, or a database's URL */
	struct store *store;
	bool pg;            /* SK_TEST_BACKEND=postgresql */
	GPtrArray *pg_dbs;  /* databases this case created, dropped in teardown */
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

/* --- PostgreSQL: one database per test case -------------------------------- */

static bool
backend_is_pg(void)
{
	const char *b = g_getenv("SK_TEST_BACKEND");

	if (b == NULL || b[0] == '\0' || strcmp(b, "sqlite") == 0)
		return false;
	if (strcmp(b, "postgresql") != 0)
		g_error("SK_TEST_BACKEND=%s: expected sqlite or postgresql", b);
	return true;
}

static const char *
pg_admin_url(void)
{
	const char *url = g_getenv("SK_TEST_PG_URL");

	if (url == NULL || url[0] == '\0')
		g_error("SK_TEST_BACKEND=postgresql needs SK_TEST_PG_URL, the admin URL of a running"
			" server (tests/integ/with-postgresql sets both)");
	return url;
}

/* Runs one statement on the admin database (its own connection, not the
 * store's code under test). */
static void
pg_admin_exec(const char *sql)
{
	PGconn *conn = PQconnectdb(pg_admin_url());
	PGresult *res;

	if (PQstatus(conn) != CONNECTION_OK)
		g_error("PostgreSQL at %s: %s", pg_admin_url(), PQerrorMessage(conn));
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		g_error("%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(conn);
}

/* One integer from a query on the admin database. */
static int64_t
pg_admin_int(const char *sql)
{
	PGconn *conn = PQconnectdb(pg_admin_url());
	PGresult *res;
	int64_t v;

	if (PQstatus(conn) != CONNECTION_OK)
		g_error("PostgreSQL at %s: %s", pg_admin_url(), PQerrorMessage(conn));
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		g_error("%s: %s", sql, PQresultErrorMessage(res));
	v = g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	PQfinish(conn);
	return v;
}

/* The admin URL with its database replaced by dbname. */
static char *
pg_url(const char *dbname)
{
	GError *gerr = NULL;
	GUri *admin = g_uri_parse(pg_admin_url(), G_URI_FLAGS_ENCODED, &gerr);
	char *path = g_strconcat("/", dbname, NULL);

	if (admin == NULL)
		g_error("SK_TEST_PG_URL: %s", gerr->message);
	GUri *uri = g_uri_build(G_URI_FLAGS_ENCODED, g_uri_get_scheme(admin), g_uri_get_userinfo(admin),
				g_uri_get_host(admin), g_uri_get_port(admin), path, g_uri_get_query(admin), NULL);
	char *url = g_uri_to_string(uri);
	g_uri_unref(uri);
	g_uri_unref(admin);
	g_free(path);
	return url;
}

/* A database name unique to this process and case: sk_unit_PID_N. */
static char *
pg_name_new(void)
{
	static unsigned n;

	return g_strdup_printf("sk_unit_%ld_%u", (long)getpid(), ++n);
}

/* Creates a new, empty database for this case; returns its URL.  Dropped
 * in teardown. */
static char *
pg_database_new(struct fixture *f)
{
	char *name = pg_name_new();
	char *sql = g_strdup_printf("CREATE DATABASE %s", name);

	pg_admin_exec(sql);
	g_free(sql);
	g_ptr_array_add(f->pg_dbs, name);
	return pg_url(name);
}

static bool
pg_database_exists(const char *name)
{
	char *sql = g_strdup_printf("SELECT count(*) FROM pg_database WHERE datname = '%s'", name);
	int64_t n = pg_admin_int(sql);

	g_free(sql);
	return n != 0;
}

/* The SQL of a test query in the store's engine (the same text for both
 * where none is given for PostgreSQL). */
static const char *
sql_of(struct store *store, const char *sqlite, const char *pg)
{
	return db_engine(store_db(store)) == DB_ENGINE_POSTGRESQL && pg != NULL ? pg : sqlite;
}

/* --- fixture -------------------------------------------------------------- */

static void
fixture_setup(struct fixture *f, gconstpointer data)
{
	GError *gerr = NULL;

	f->dir = g_dir_make_tmp("test-store-XXXXXX", &gerr);
	g_assert_no_error(gerr);
	f->pg = backend_is_pg();
	f->pg_dbs = g_ptr_array_new_with_free_func(g_free);
	if (f->pg)
		f->path = pg_database_new(f);
	else
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
	/* Every connection of the case is closed by now: DROP DATABASE
	 * refuses a database still in use. */
	for (guint i = 0; i < f->pg_dbs->len; i++) {
		char *sql = g_strdup_printf("DROP DATABASE %s", (const char *)g_ptr_array_index(f->pg_dbs, i));
		pg_admin_exec(sql);
		g_free(sql);
	}
	g_ptr_array_unref(f->pg_dbs);
	remove_dir(f->dir);
	g_free(f->path);
	g_free(f->dir);
}

/* One integer from a query with an optional text parameter. */
static int64_t
query_int(struct store *store, const char *sql, const char *param)
{
	struct db_stmt *stmt = NULL;
	int64_t v;

	if (db_prepare(store_db(store), sql, &stmt) != DB_OK)
		g_error("prepare %s: %s", sql, db_errmsg(store_db(store)));
	if (param != NULL)
		db_bind_text(stmt, 1, param, -1, DB_TRANSIENT);
	g_assert_cmpint(db_step(stmt), ==, DB_ROW);
	v = db_column_int64(stmt, 0);
	db_finalize(stmt);
	return v;
}

/* One text from a query (g_free'd by the caller; NULL for SQL NULL). */
static char *
query_text(struct store *store, const char *sql, const char *param)
{
	struct db_stmt *stmt = NULL;
	char *v;

	if (db_prepare(store_db(store), sql, &stmt) != DB_OK)
		g_error("prepare %s: %s", sql, db_errmsg(store_db(store)));
	if (param != NULL)
		db_bind_text(stmt, 1, param, -1, DB_TRANSIENT);
	g_assert_cmpint(db_step(stmt), ==, DB_ROW);
	v = g_strdup((const char *)db_column_text(stmt, 0));
	db_finalize(stmt);
	return v;
}

/* supply_status gives the rows of its first definition (schema/002-views.sql,
 * an inner join of supply_levels on its key), column for column: the
 * later definition (008-supply-status-plan.sql on PostgreSQL) changes the
 * plan only. */
static void
assert_supply_status_as_002(struct store *store)
{
#define SUPPLY_STATUS_002 \
	"SELECT d.serial, sc.supply_key AS supply, s.type, s.color, l.level_percent, l.state," \
	" l.low_threshold, NULLIF(s.supply_serial, '') AS supply_serial, s.installed_date," \
	" sc.reported_utc, s.label, s.description, s.product_number, s.brand, l.pages," \
	" sc.snapshot_id, s.id AS supply_id, d.id AS device_id" \
	" FROM supply_current sc JOIN devices d ON d.id = sc.device_id" \
	" JOIN supplies s ON s.id = sc.supply_id" \
	" JOIN supply_levels l ON l.snapshot_id = sc.snapshot_id AND l.supply_id = sc.supply_id"
	int64_t rows = query_int(store, "SELECT count(*) FROM supply_status", NULL);

	g_assert_cmpint(rows, >, 0);
	g_assert_cmpint(query_int(store, "SELECT count(*) FROM (" SUPPLY_STATUS_002 ") x", NULL), ==, rows);
	g_assert_cmpint(query_int(store, "SELECT count(*) FROM (SELECT * FROM supply_status EXCEPT "
					 SUPPLY_STATUS_002 ") x", NULL), ==, 0);
	g_assert_cmpint(query_int(store, "SELECT count(*) FROM (" SUPPLY_STATUS_002
					 " EXCEPT SELECT * FROM supply_status) x", NULL), ==, 0);
#undef SUPPLY_STATUS_002
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

/* The schema's version as the engine keeps it: SQLite's PRAGMA
 * user_version, PostgreSQL's row of snapkeep_schema. */
static int64_t
schema_version_stored(struct store *store)
{
	if (db_engine(store_db(store)) == DB_ENGINE_POSTGRESQL) {
		g_assert_cmpint(query_int(store, "SELECT count(*) FROM snapkeep_schema", NULL), ==, 1);
		return query_int(store, "SELECT version FROM snapkeep_schema", NULL);
	}
	return query_int(store, "PRAGMA user_version", NULL);
}

static void
test_migrations(struct fixture *f, gconstpointer data)
{
	int version = store_schema_version(f->store);

	g_assert_cmpint(version, >=, 2);
	g_assert_cmpint(schema_version_stored(f->store), ==, version);
	if (!f->pg) {
		g_assert_cmpint(query_int(f->store, "PRAGMA foreign_keys", NULL), ==, 1);
		char *mode = query_text(f->store, "PRAGMA journal_mode", NULL);
		g_assert_cmpstr(mode, ==, "wal");
		g_free(mode);
		/* NORMAL (1) without durable. */
		g_assert_cmpint(query_int(f->store, "PRAGMA synchronous", NULL), ==, 1);
	} else {
		/* PostgreSQL: commits without durable do not wait for the WAL
		 * flush (foreign keys are always on; test_foreign_keys). */
		char *sync = query_text(f->store, "SELECT current_setting('synchronous_commit')", NULL);
		g_assert_cmpstr(sync, ==, "off");
		g_free(sync);
	}

	/* Re-open: nothing to apply, same version, data kept. */
	static const char raw[] = "Subject: x\r\n\r\nhello\r\n";
	int64_t id = add_message(f->store, "file", raw, sizeof(raw) - 1, NULL);
	store_free(&f->store);
	f->store = open_store(f->path, false);
	g_assert_cmpint(store_schema_version(f->store), ==, version);
	g_assert_cmpint(schema_version_stored(f->store), ==, version);
	assert_get_equals(f->store, id, raw, sizeof(raw) - 1);

	/* A durable connection runs synchronous=FULL (2); on PostgreSQL
	 * synchronous_commit on. */
	struct store_settings s;
	struct store *durable = NULL;
	char *error = NULL;
	store_settings_default(&s);
	s.path = f->path;
	s.durable = true;
	g_assert_cmpint(store_open(&s, &durable, &error), ==, 0);
	if (!f->pg) {
		g_assert_cmpint(query_int(durable, "PRAGMA synchronous", NULL), ==, 2);
	} else {
		char *sync = query_text(durable, "SELECT current_setting('synchronous_commit')", NULL);
		g_assert_cmpstr(sync, ==, "on");
		g_free(sync);
	}
	store_free(&durable);
	store_free(&durable); /* NULL is fine */
}

/* The version checks on PostgreSQL: a database that does not exist or has
 * no schema, the snapkeep_schema row older or newer than the program. */
static void
version_checks_pg(struct fixture *f)
{
	struct store_settings s;
	struct store *other = NULL;
	char *error = NULL;
	int version = store_schema_version(f->store);

	/* Read-only on a database that does not exist fails and creates
	 * nothing. */
	char *name = pg_name_new();
	char *missing = pg_url(name);
	store_settings_default(&s);
	s.path = missing;
	s.readonly = true;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(error);
	g_assert_null(other);
	g_assert_false(pg_database_exists(name));
	g_clear_pointer(&error, g_free);
	g_free(missing);
	g_free(name);

	/* Read-only on an empty database fails and creates no table. */
	char *empty = pg_database_new(f);
	s.path = empty;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(strstr(error, "no snapkeep schema"));
	g_assert_null(other);
	g_clear_pointer(&error, g_free);
	struct db *db = NULL;
	struct db_open_settings dbs = { .target = empty };
	g_assert_cmpint(db_open(&dbs, &db, &error), ==, 0);
	struct db_stmt *stmt = NULL;
	g_assert_cmpint(db_prepare(db, "SELECT count(*) FROM information_schema.tables"
				       " WHERE table_schema = current_schema()", &stmt), ==, DB_OK);
	g_assert_cmpint(db_step(stmt), ==, DB_ROW);
	g_assert_cmpint(db_column_int64(stmt, 0), ==, 0);
	db_finalize(stmt);
	db_close(&db);
	g_free(empty);

	/* Read-only on an older schema fails clearly and does not migrate. */
	g_assert_cmpint(db_exec(store_db(f->store), "UPDATE snapkeep_schema SET version = 1", NULL), ==, DB_OK);
	s.path = f->path;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(strstr(error, "older"));
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(schema_version_stored(f->store), ==, 1);

	/* A newer schema than the program knows: writers refuse. */
	char *sql = g_strdup_printf("UPDATE snapkeep_schema SET version = %d", version + 1);
	g_assert_cmpint(db_exec(store_db(f->store), sql, NULL), ==, DB_OK);
	g_free(sql);
	s.readonly = false;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(strstr(error, "newer"));
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(schema_version_stored(f->store), ==, version + 1);
	/* (SQLite's "a file that is not a database" has no PostgreSQL
	 * counterpart: a URL names a database or fails to connect, as the
	 * missing database above.) */
}

static void
test_version_checks(struct fixture *f, gconstpointer data)
{
	struct store_settings s;
	struct store *other = NULL;
	char *error = NULL;
	int version = store_schema_version(f->store);

	if (f->pg) {
		version_checks_pg(f);
		return;
	}

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
	g_assert_cmpint(db_exec(store_db(f->store), "PRAGMA user_version = 1", NULL), ==,
			DB_OK);
	s.path = f->path;
	g_assert_cmpint(store_open(&s, &other, &error), ==, -1);
	g_assert_nonnull(strstr(error, "older"));
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(query_int(f->store, "PRAGMA user_version", NULL), ==, 1);

	/* A newer schema than the program knows: writers refuse. */
	char *pragma = g_strdup_printf("PRAGMA user_version = %d", version + 1);
	g_assert_cmpint(db_exec(store_db(f->store), pragma, NULL), ==, DB_OK);
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
		{ "new_events", "serial,log,sequence,code,occurred_utc,description,page_count,first_reported_utc" },
	};

	for (unsigned i = 0; i < G_N_ELEMENTS(views); i++) {
		char *sql = g_strdup_printf("SELECT * FROM %s", views[i].view);
		struct db_stmt *stmt = NULL;
		GString *cols = g_string_new(NULL);
		char **want = g_strsplit(views[i].columns, ",", -1);

		g_assert_cmpint(db_prepare(store_db(f->store), sql, &stmt), ==, DB_OK);
		g_assert_cmpint(db_column_count(stmt), >=, (int)g_strv_length(want));
		for (int c = 0; c < (int)g_strv_length(want); c++)
			g_assert_cmpstr(db_column_name(stmt, c), ==, want[c]);
		db_finalize(stmt);
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
	struct db_stmt *stmt = NULL;
	g_assert_cmpint(db_prepare(store_db(f->store),
					   "UPDATE messages SET sha256 = ?1 WHERE id = ?2", &stmt),
			==, DB_OK);
	db_bind_text(stmt, 1, "0000000000000000000000000000000000000000000000000000000000000000", -1,
			  DB_STATIC);
	db_bind_int64(stmt, 2, id3);
	g_assert_cmpint(db_step(stmt), ==, DB_DONE);
	db_finalize(stmt);
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
	int rc = db_exec(store_db(f->store),
			      "INSERT INTO intake (received_utc, received_us, source, message_id)"
			      " VALUES ('2025-01-01T00:00:00Z', 0, 'file', 4242)", &msg);
	g_assert_cmpint(rc & 0xff, ==, SQLITE_CONSTRAINT);
	g_free(msg);
	msg = NULL;
	rc = db_exec(store_db(f->store),
			  "INSERT INTO snapshots (device_id, message_id, taken_utc, taken_unix, taken_source,"
			  " received_utc, clock_skew_s) VALUES (77, 88, '2025-01-01T00:00:00Z', 0, 'xml',"
			  " '2025-01-01T00:00:00Z', 0)", &msg);
	g_assert_cmpint(rc & 0xff, ==, SQLITE_CONSTRAINT);
	g_free(msg);
}

/* --- parse results ---------------------------------------------------------- */

static void
add_event(struct snapshot *snap, const char *log, int64_t seq, const char *code, const char *when)
{
	struct snapshot_event *e = snapshot_event_new();

	e->log = g_strdup(log);
	e->sequence = seq;
	e->code = g_strdup(code);
	e->occurred_utc = g_strdup(when);
	e->occurred_offset_min = -420;
	e->description = g_strdup("Jam in tray 2");
	e->page_count = 1000 + seq;
	e->payload_json = g_strdup("{\"BootCycle\":\"00000197\"}");
	g_ptr_array_add(snap->events, e);
}

static void
add_supply(struct snapshot *snap, const char *key, const char *color, const char *serial, int64_t level)
{
	struct snapshot_supply *s = snapshot_supply_new();

	s->key = g_strdup(key);
	s->label = g_strdup(key);
	s->color = g_strdup(color);
	s->type = g_strdup("tonerCartridge");
	s->serial = g_strdup(serial);
	s->state = g_strdup(level < 10 ? "low" : "ok");
	s->installed_date = g_strdup("2024-11-02");
	s->level_percent = level;
	s->low_threshold = 10;
	s->pages = 5000;
	g_ptr_array_add(snap->supplies, s);
}

/* A FutureSmart-like snapshot of serial at day (March 2025), with events
 * first_seq .. first_seq + n_events - 1 (the log is cumulative). */
static struct snapshot *
make_snapshot(const char *serial, int day, int64_t total, int64_t first_seq, int n_events)
{
	struct snapshot *snap = snapshot_new();

	snap->dialect = SNAPSHOT_DIALECT_FUTURESMART;
	snap->serial = g_strdup(serial);
	snap->product_number = g_strdup("3GY25A");
	snap->model = g_strdup("HP Color LaserJet Enterprise MFP M578");
	snap->firmware = g_strdup(day < 20 ? "2302243_045526" : "2405011_000001");
	snap->hostname = g_strdup_printf("NPI%s", serial);
	snap->ip_address = g_strdup("10.120.196.170");
	snap->taken_utc = g_strdup_printf("2025-03-%02dT06:00:00Z", day);
	snap->taken_offset_min = -420;
	snap->taken_has_offset = true;
	g_ptr_array_add(snap->counters, snapshot_counter_new("TotalImpressions", NULL, total, (double)total));
	g_ptr_array_add(snap->counters, snapshot_counter_new("MonochromeImpressions", NULL, total - total / 3,
							     (double)(total - total / 3)));
	g_ptr_array_add(snap->counters, snapshot_counter_new("ColorImpressions", NULL, total / 3,
							     (double)(total / 3)));
	g_ptr_array_add(snap->counters, snapshot_counter_new("JamEvents", NULL, 29, 29.0));
	g_ptr_array_add(snap->counters, snapshot_counter_new("AdfImages", NULL, 12, 12.5));
	g_ptr_array_add(snap->media_counters,
			snapshot_counter_new("TotalImpressions", "na_letter_8.5x11in", total - 1000,
					     (double)(total - 1000)));
	g_ptr_array_add(snap->media_counters,
			snapshot_counter_new("TotalImpressions", "na_legal_8.5x14in", 1000, 1000.0));
	add_supply(snap, "K", "black", "CAT12631673", 80 - day);
	add_supply(snap, "C", "cyan", "CAT87124101", 49);
	for (int64_t seq = first_seq; seq < first_seq + n_events; seq++) {
		char *when = g_strdup_printf("2025-02-%02dT%02d:09:58Z", 1 + (int)(seq % 28), (int)(seq % 24));
		add_event(snap, "error", seq, seq % 2 ? "13.B2.D1" : "44.A0.4B", when);
		g_free(when);
	}
	return snap;
}

static int64_t
add_unique_message(struct store *store, const char *tag)
{
	char *raw = g_strdup_printf("Subject: Device Snapshot %s\r\n\r\nbody %s\r\n", tag, tag);
	int64_t id = add_message(store, "smtp", raw, strlen(raw), NULL);
	g_free(raw);
	return id;
}

static enum store_outcome
commit(struct store *store, int64_t message_id, enum store_outcome outcome, const char *detail,
       const struct snapshot *snap)
{
	struct store_hints hints = { .subject = "Device Snapshot", .subject_serial = "SUBJ0001" };
	enum store_outcome recorded = STORE_OUTCOME_PENDING;
	char *error = NULL;

	if (store_result_commit(store, message_id, outcome, detail, snap, &hints, &recorded, &error) < 0)
		g_error("store_result_commit: %s", error);
	return recorded;
}

/* Every row of every table as text, for "nothing changed" comparisons;
 * tables whose query starts with skip (NULL: none) are left out. */
static char *
dump_tables_but(struct store *store, const char *skip)
{
	/* The blob as hex: SQLite's hex(), PostgreSQL's encode(). */
	const char *messages = sql_of(store,
		"SELECT id, sha256, raw_size, method, base_id, chain_depth, stored_size, device_id, outcome,"
		" detail, hex(blob) FROM messages ORDER BY id",
		"SELECT id, sha256, raw_size, method, base_id, chain_depth, stored_size, device_id, outcome,"
		" detail, encode(blob, 'hex') FROM messages ORDER BY id");
	const char *const queries[] = {
		"SELECT * FROM devices ORDER BY id",
		messages,
		"SELECT * FROM intake ORDER BY id",
		"SELECT * FROM snapshots ORDER BY id",
		"SELECT * FROM counter_names ORDER BY id",
		"SELECT * FROM counters ORDER BY 1, 2",
		"SELECT * FROM media_counters ORDER BY 1, 2, 3",
		"SELECT * FROM counter_drops ORDER BY 1, 2",
		"SELECT * FROM supplies ORDER BY id",
		"SELECT * FROM supply_levels ORDER BY 1, 2",
		"SELECT * FROM supply_current ORDER BY 1, 2",
		"SELECT * FROM events ORDER BY id",
	};
	GString *out = g_string_new(NULL);

	for (unsigned i = 0; i < G_N_ELEMENTS(queries); i++) {
		struct db_stmt *stmt = NULL;
		if (skip != NULL && g_str_has_prefix(queries[i], skip))
			continue;
		g_assert_cmpint(db_prepare(store_db(store), queries[i], &stmt), ==, DB_OK);
		g_string_append_printf(out, "%s\n", queries[i]);
		while (db_step(stmt) == DB_ROW) {
			for (int c = 0; c < db_column_count(stmt); c++) {
				const char *v = (const char *)db_column_text(stmt, c);
				g_string_append_printf(out, "%s|", v != NULL ? v : "NULL");
			}
			g_string_append_c(out, '\n');
		}
		db_finalize(stmt);
	}
	return g_string_free(out, FALSE);
}

static char *
dump_tables(struct store *store)
{
	return dump_tables_but(store, NULL);
}

static void
test_result_stored(struct fixture *f, gconstpointer data)
{
	struct snapshot *snap = make_snapshot("PHB6820301", 9, 133275, 409, 9);
	int64_t id = add_unique_message(f->store, "one");
	char *s;

	g_assert_cmpint(commit(f->store, id, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_STORED);

	/* device_status */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM device_status", NULL), ==, 1);
	s = query_text(f->store, "SELECT serial || ' ' || product_number || ' ' || hostname || ' ' || ip_address"
				 " || ' ' || firmware || ' ' || first_seen_utc || ' ' || last_snapshot_utc"
				 " FROM device_status", NULL);
	g_assert_cmpstr(s, ==, "PHB6820301 3GY25A NPIPHB6820301 10.120.196.170 2302243_045526"
			       " 2025-03-09T06:00:00Z 2025-03-09T06:00:00Z");
	g_free(s);
	g_assert_cmpint(query_int(f->store, "SELECT total_impressions FROM device_status", NULL), ==, 133275);
	g_assert_cmpint(query_int(f->store, "SELECT mono_impressions + color_impressions FROM device_status",
				  NULL), ==, 133275);
	g_assert_cmpint(query_int(f->store, "SELECT snapshot_count FROM device_status", NULL), ==, 1);
	g_assert_cmpint(query_int(f->store, "SELECT last_received_utc IS NOT NULL FROM device_status", NULL), ==, 1);

	/* counter_history: one row per counter, HP's names; fractional kept. */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counter_history WHERE serial = ?1",
				  "PHB6820301"), ==, 5);
	g_assert_cmpint(query_int(f->store, "SELECT value FROM counter_history WHERE counter = ?1",
				  "JamEvents"), ==, 29);
	g_assert_cmpint(query_int(f->store, "SELECT value_real * 10 FROM counter_history WHERE counter = ?1",
				  "AdfImages"), ==, 125);
	g_assert_cmpint(query_int(f->store, "SELECT value_real IS NULL FROM counter_history WHERE counter = ?1",
				  "JamEvents"), ==, 1);
	g_assert_cmpint(query_int(f->store, "SELECT value FROM media_counter_history WHERE media_size = ?1",
				  "na_legal_8.5x14in"), ==, 1000);

	/* supply_status */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM supply_status", NULL), ==, 2);
	s = query_text(f->store, "SELECT supply || ' ' || type || ' ' || color || ' ' || level_percent || ' '"
				 " || state || ' ' || low_threshold || ' ' || supply_serial || ' ' || installed_date"
				 " || ' ' || reported_utc FROM supply_status WHERE supply = ?1", "K");
	g_assert_cmpstr(s, ==, "K tonerCartridge black 71 ok 10 CAT12631673 2024-11-02 2025-03-09T06:00:00Z");
	g_free(s);
	assert_supply_status_as_002(f->store);

	/* event_log */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM event_log WHERE serial = ?1", "PHB6820301"),
			==, 9);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM event_log WHERE is_new = 1", NULL), ==, 9);
	g_assert_cmpint(query_int(f->store, "SELECT page_count FROM event_log WHERE sequence = 416", NULL), ==,
			1416);

	/* snapshots: offset and clock skew kept */
	g_assert_cmpint(query_int(f->store, "SELECT taken_offset_min FROM snapshot_list", NULL), ==, -420);
	s = query_text(f->store, "SELECT taken_source FROM snapshot_list", NULL);
	g_assert_cmpstr(s, ==, "xml");
	g_free(s);

	/* intake_log */
	s = query_text(f->store, "SELECT outcome || ' ' || serial FROM intake_log", NULL);
	g_assert_cmpstr(s, ==, "stored PHB6820301");
	g_free(s);
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	char *error = NULL;
	g_assert_cmpint(store_pending_list(f->store, 10, ids, &error), ==, 0);
	g_assert_cmpuint(ids->len, ==, 0);
	g_array_free(ids, TRUE);
	snapshot_free(&snap);
}

/* Committing the same result twice changes nothing. */
static void
test_result_reparse(struct fixture *f, gconstpointer data)
{
	struct snapshot *a = make_snapshot("PHB6820301", 9, 133275, 409, 9);
	struct snapshot *b = make_snapshot("PHB6820301", 10, 133400, 412, 9);
	int64_t id1 = add_unique_message(f->store, "one");
	int64_t id2 = add_unique_message(f->store, "two");

	commit(f->store, id1, STORE_OUTCOME_STORED, NULL, a);
	commit(f->store, id2, STORE_OUTCOME_STORED, NULL, b);
	char *before = dump_tables(f->store);
	g_assert_cmpint(commit(f->store, id1, STORE_OUTCOME_STORED, NULL, a), ==, STORE_OUTCOME_STORED);
	g_assert_cmpint(commit(f->store, id2, STORE_OUTCOME_STORED, NULL, b), ==, STORE_OUTCOME_STORED);
	char *after = dump_tables(f->store);
	g_assert_cmpstr(before, ==, after);
	g_free(after);

	/* Also inside one outer transaction, as the funnel does it. */
	char *error = NULL;
	g_assert_cmpint(store_begin(f->store, &error), ==, 0);
	commit(f->store, id2, STORE_OUTCOME_STORED, NULL, b);
	commit(f->store, id1, STORE_OUTCOME_STORED, NULL, a);
	g_assert_cmpint(store_commit(f->store, &error), ==, 0);
	after = dump_tables(f->store);
	g_assert_cmpstr(before, ==, after);
	g_free(after);
	g_free(before);

	/* A reparse that now fails leaves the stored rows and outcome. */
	g_assert_cmpint(commit(f->store, id1, STORE_OUTCOME_FAILED, "parser broke", NULL), ==,
			STORE_OUTCOME_STORED);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM snapshots", NULL), ==, 2);
	snapshot_free(&a);
	snapshot_free(&b);
}

/* A supply of snap by key, to change what a new parse says. */
static struct snapshot_supply *
find_supply(struct snapshot *snap, const char *key)
{
	for (guint i = 0; i < snap->supplies->len; i++) {
		struct snapshot_supply *s = g_ptr_array_index(snap->supplies, i);
		if (strcmp(s->key, key) == 0)
			return s;
	}
	g_assert_not_reached();
	return NULL;
}

/* A reparse of a snapshot's own message after a parser upgrade replaces
 * what the snapshot says (counters, supplies, identity) and recomputes
 * what derives from it; committing it again changes nothing; another
 * message carrying the same snapshot stays a duplicate and changes nothing. */
static void
test_result_refresh(struct fixture *f, gconstpointer data)
{
	struct snapshot *a = make_snapshot("PHB6820301", 9, 133275, 409, 3);
	struct snapshot *b = make_snapshot("PHB6820301", 10, 133400, 410, 3);
	int64_t id_a = add_unique_message(f->store, "a");
	int64_t id_b = add_unique_message(f->store, "b");
	int64_t id_fwd = add_unique_message(f->store, "b forwarded");
	char *s;

	commit(f->store, id_a, STORE_OUTCOME_STORED, NULL, a);
	commit(f->store, id_b, STORE_OUTCOME_STORED, NULL, b);
	g_assert_cmpint(commit(f->store, id_fwd, STORE_OUTCOME_STORED, NULL, b), ==, STORE_OUTCOME_DUPLICATE);
	char *with_dup = dump_tables_but(f->store, "SELECT * FROM intake");
	int64_t snap_b = query_int(f->store, "SELECT id FROM snapshots WHERE taken_utc = ?1", "2025-03-10T06:00:00Z");

	/* The upgraded parser finds one more counter, reads K differently,
	 * sees C replaced by a new cartridge, a new host name and one more
	 * event. */
	struct snapshot *b2 = make_snapshot("PHB6820301", 10, 133400, 410, 4);
	g_ptr_array_add(b2->counters, snapshot_counter_new("DuplexSheets", NULL, 777, 777.0));
	find_supply(b2, "K")->level_percent = 33;
	struct snapshot_supply *c = find_supply(b2, "C");
	g_free(c->serial);
	c->serial = g_strdup("CATNEW00001");
	c->level_percent = 99;
	g_free(b2->hostname);
	b2->hostname = g_strdup("renamed");

	g_assert_cmpint(commit(f->store, id_b, STORE_OUTCOME_STORED, NULL, b2), ==, STORE_OUTCOME_STORED);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM snapshots", NULL), ==, 2);
	g_assert_cmpint(query_int(f->store, "SELECT snapshot_count FROM device_status", NULL), ==, 2);
	g_assert_cmpint(query_int(f->store, "SELECT value FROM counter_history WHERE counter = ?1",
				  "DuplexSheets"), ==, 777);
	char *snap_b_text = g_strdup_printf("%" G_GINT64_FORMAT, snap_b);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counters WHERE snapshot_id = ?1", snap_b_text),
			==, 6);
	g_free(snap_b_text);
	g_assert_cmpint(query_int(f->store, "SELECT level_percent FROM supply_status WHERE supply = ?1", "K"), ==, 33);
	s = query_text(f->store, "SELECT supply_serial || ' ' || level_percent || ' ' || reported_utc"
				 " FROM supply_status WHERE supply = ?1", "C");
	g_assert_cmpstr(s, ==, "CATNEW00001 99 2025-03-10T06:00:00Z");
	g_free(s);
	assert_supply_status_as_002(f->store);
	/* The replaced cartridge was last reported by snapshot a now. */
	s = query_text(f->store, "SELECT last_reported_utc FROM supplies WHERE supply_serial = ?1", "CAT87124101");
	g_assert_cmpstr(s, ==, "2025-03-09T06:00:00Z");
	g_free(s);
	s = query_text(f->store, "SELECT hostname FROM device_status", NULL);
	g_assert_cmpstr(s, ==, "renamed");
	g_free(s);
	s = query_text(f->store, "SELECT hostname FROM snapshot_list WHERE taken_utc = ?1", "2025-03-10T06:00:00Z");
	g_assert_cmpstr(s, ==, "renamed");
	g_free(s);
	s = query_text(f->store, "SELECT hostname FROM snapshot_list WHERE taken_utc = ?1", "2025-03-09T06:00:00Z");
	g_assert_cmpstr(s, ==, "NPIPHB6820301");
	g_free(s);
	/* Events 409..413: the new one added, the known ones still once. */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM event_log", NULL), ==, 5);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM new_events", NULL), ==, 2);

	/* Again with the same parse: nothing changes. */
	char *refreshed = dump_tables(f->store);
	g_assert_cmpint(commit(f->store, id_b, STORE_OUTCOME_STORED, NULL, b2), ==, STORE_OUTCOME_STORED);
	s = dump_tables(f->store);
	g_assert_cmpstr(s, ==, refreshed);
	g_free(s);
	/* The forwarded copy is still a duplicate and changes nothing. */
	g_assert_cmpint(commit(f->store, id_fwd, STORE_OUTCOME_STORED, NULL, b), ==, STORE_OUTCOME_DUPLICATE);
	s = dump_tables(f->store);
	g_assert_cmpstr(s, ==, refreshed);
	g_free(s);
	g_free(refreshed);

	/* Back to the old parse: every row as it was, but for the event and
	 * the counter name, which are kept (events are never removed). */
	g_assert_cmpint(commit(f->store, id_b, STORE_OUTCOME_STORED, NULL, b), ==, STORE_OUTCOME_STORED);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM supplies WHERE supply_serial = ?1", "CATNEW00001"),
			==, 0);
	s = dump_tables_but(f->store, "SELECT * FROM intake");
	char *want = g_strdup(with_dup);
	/* Compare all but counter_names and events. */
	char *cut_s = strstr(s, "SELECT * FROM counter_names"), *cut_w = strstr(want, "SELECT * FROM counter_names");
	g_assert_nonnull(cut_s);
	g_assert_nonnull(cut_w);
	char *tail_s = strstr(cut_s, "SELECT * FROM counters"), *tail_w = strstr(cut_w, "SELECT * FROM counters");
	char *ev_s = strstr(s, "SELECT * FROM events"), *ev_w = strstr(want, "SELECT * FROM events");
	*ev_s = *ev_w = '\0';
	*cut_s = *cut_w = '\0';
	g_assert_cmpstr(s, ==, want);
	g_assert_cmpstr(tail_s, ==, tail_w);
	g_free(s);
	g_free(want);

	/* A refresh that raises a's total above b's flags b against a; the
	 * old parse again removes the flag. */
	struct snapshot *a2 = make_snapshot("PHB6820301", 9, 200000, 409, 3);
	commit(f->store, id_a, STORE_OUTCOME_STORED, NULL, a2);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counter_regressions WHERE counter = ?1",
				  "TotalImpressions"), ==, 1);
	s = query_text(f->store, "SELECT taken_utc || ' ' || previous_value FROM counter_regressions"
				 " WHERE counter = ?1", "TotalImpressions");
	g_assert_cmpstr(s, ==, "2025-03-10T06:00:00Z 200000");
	g_free(s);
	commit(f->store, id_a, STORE_OUTCOME_STORED, NULL, a);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counter_regressions", NULL), ==, 0);
	g_free(with_dup);
	snapshot_free(&a);
	snapshot_free(&a2);
	snapshot_free(&b);
	snapshot_free(&b2);
}

/* The same snapshot (serial + time) in two different messages is one
 * snapshot; the second message is a duplicate that names the first. */
static void
test_result_same_snapshot(struct fixture *f, gconstpointer data)
{
	struct snapshot *snap = make_snapshot("PHB6820301", 9, 133275, 409, 9);
	int64_t id1 = add_unique_message(f->store, "original");
	int64_t id2 = add_unique_message(f->store, "forwarded");
	char *s, *want;

	g_assert_cmpint(commit(f->store, id1, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_STORED);
	g_assert_cmpint(commit(f->store, id2, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_DUPLICATE);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM snapshots", NULL), ==, 1);
	g_assert_cmpint(query_int(f->store, "SELECT snapshot_count FROM device_status", NULL), ==, 1);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM events", NULL), ==, 9);
	int64_t snap_id = query_int(f->store, "SELECT id FROM snapshots", NULL);
	s = query_text(f->store, "SELECT outcome || ': ' || detail FROM intake_log WHERE message_id = 2", NULL);
	want = g_strdup_printf("duplicate: snapshot %" G_GINT64_FORMAT " (PHB6820301 at 2025-03-09T06:00:00Z)"
			       " already stored from message %" G_GINT64_FORMAT, snap_id, id1);
	g_assert_cmpstr(s, ==, want);
	g_free(s);
	g_free(want);
	g_assert_cmpint(query_int(f->store, "SELECT snapshot_id FROM intake_log WHERE message_id = 2", NULL), ==,
			snap_id);
	/* Again: still a duplicate, still one snapshot. */
	g_assert_cmpint(commit(f->store, id2, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_DUPLICATE);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM snapshots", NULL), ==, 1);
	snapshot_free(&snap);
}

/* Cumulative logs: entries repeated by later snapshots are stored once,
 * and each is marked new in the snapshot that first reported it. */
static void
test_result_events_once(struct fixture *f, gconstpointer data)
{
	for (int day = 1; day <= 5; day++) {
		/* Each day repeats the last 6 entries and adds 2. */
		struct snapshot *snap = make_snapshot("PHB6820301", day, 1000 + day * 100, 2 * day, 6);
		char *tag = g_strdup_printf("day%d", day);
		int64_t id = add_unique_message(f->store, tag);
		commit(f->store, id, STORE_OUTCOME_STORED, NULL, snap);
		g_free(tag);
		snapshot_free(&snap);
	}
	/* Sequences 2..15 */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM event_log", NULL), ==, 14);
	g_assert_cmpint(query_int(f->store, "SELECT count(DISTINCT sequence) FROM event_log", NULL), ==, 14);
	/* New in the latest snapshot (day 5): sequences 14 and 15. */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM event_log WHERE is_new = 1", NULL), ==, 2);
	g_assert_cmpint(query_int(f->store, "SELECT min(sequence) FROM event_log WHERE is_new = 1", NULL), ==, 14);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM new_events", NULL), ==, 2);
	g_assert_cmpint(query_int(f->store, "SELECT sum(sequence) FROM new_events WHERE serial = ?1", "PHB6820301"),
			==, 14 + 15);
	char *s = query_text(f->store, "SELECT first_reported_utc || ' ' || last_reported_utc FROM event_log"
				       " WHERE sequence = 7", NULL);
	g_assert_cmpstr(s, ==, "2025-03-01T06:00:00Z 2025-03-03T06:00:00Z");
	g_free(s);

	/* A late snapshot from before day 1 that reports entry 7 too: the
	 * entry's first report moves back, no new row. */
	struct snapshot *late = make_snapshot("PHB6820301", 1, 900, 7, 1);
	g_free(late->taken_utc);
	late->taken_utc = g_strdup("2025-02-28T06:00:00Z");
	int64_t id = add_unique_message(f->store, "late");
	commit(f->store, id, STORE_OUTCOME_STORED, NULL, late);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM event_log", NULL), ==, 14);
	s = query_text(f->store, "SELECT first_reported_utc FROM event_log WHERE sequence = 7", NULL);
	g_assert_cmpstr(s, ==, "2025-02-28T06:00:00Z");
	g_free(s);
	/* The device's latest state is still day 5's. */
	s = query_text(f->store, "SELECT last_snapshot_utc || ' ' || first_seen_utc FROM device_status", NULL);
	g_assert_cmpstr(s, ==, "2025-03-05T06:00:00Z 2025-02-28T06:00:00Z");
	g_free(s);
	g_assert_cmpint(query_int(f->store, "SELECT total_impressions FROM device_status", NULL), ==, 1500);
	g_assert_cmpint(query_int(f->store, "SELECT snapshot_count FROM device_status", NULL), ==, 6);
	snapshot_free(&late);
}

static void
test_result_counter_backwards(struct fixture *f, gconstpointer data)
{
	struct snapshot *a = make_snapshot("PHB6820301", 9, 133275, 409, 2);
	struct snapshot *b = make_snapshot("PHB6820301", 10, 500, 409, 2); /* swapped formatter? */
	struct snapshot *c = make_snapshot("PHB6820301", 11, 600, 409, 2);

	commit(f->store, add_unique_message(f->store, "a"), STORE_OUTCOME_STORED, NULL, a);
	commit(f->store, add_unique_message(f->store, "b"), STORE_OUTCOME_STORED, NULL, b);
	commit(f->store, add_unique_message(f->store, "c"), STORE_OUTCOME_STORED, NULL, c);
	/* Flagged (Total, Mono, Color went down), not hidden. */
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counter_regressions", NULL), ==, 3);
	char *s = query_text(f->store, "SELECT taken_utc || ' ' || value || ' ' || previous_taken_utc || ' '"
				       " || previous_value FROM counter_regressions WHERE counter = ?1",
			     "TotalImpressions");
	g_assert_cmpstr(s, ==, "2025-03-10T06:00:00Z 500 2025-03-09T06:00:00Z 133275");
	g_free(s);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counter_history WHERE counter = ?1",
				  "TotalImpressions"), ==, 3);
	g_assert_cmpint(query_int(f->store, "SELECT total_impressions FROM device_status", NULL), ==, 600);

	/* A late snapshot between b and c with a higher total flags c against it. */
	struct snapshot *late = make_snapshot("PHB6820301", 10, 700, 409, 2);
	g_free(late->taken_utc);
	late->taken_utc = g_strdup("2025-03-10T18:00:00Z");
	commit(f->store, add_unique_message(f->store, "late"), STORE_OUTCOME_STORED, NULL, late);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counter_regressions WHERE taken_utc = ?1"
					    " AND counter = 'TotalImpressions'", "2025-03-11T06:00:00Z"), ==, 1);
	snapshot_free(&a);
	snapshot_free(&b);
	snapshot_free(&c);
	snapshot_free(&late);
}

static void
test_result_failures(struct fixture *f, gconstpointer data)
{
	static const char raw[] = "Subject: [Alert Message - Test]\r\n\r\nalert\r\n";
	int64_t alert = add_message(f->store, "smtp", raw, sizeof(raw) - 1, NULL);
	add_message(f->store, "imap", raw, sizeof(raw) - 1, NULL); /* same bytes again */
	int64_t broken = add_unique_message(f->store, "broken");
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	char *error = NULL, *s;

	g_assert_cmpint(commit(f->store, alert, STORE_OUTCOME_NOT_SNAPSHOT, "no Device.xml part", NULL), ==,
			STORE_OUTCOME_NOT_SNAPSHOT);
	g_assert_cmpint(commit(f->store, broken, STORE_OUTCOME_FAILED, "xml: truncated", NULL), ==,
			STORE_OUTCOME_FAILED);
	s = query_text(f->store, sql_of(f->store, "SELECT group_concat(outcome, ',') FROM (SELECT outcome"
						  " FROM intake_log ORDER BY id)",
					"SELECT string_agg(outcome, ',' ORDER BY id) FROM intake_log"), NULL);
	g_assert_cmpstr(s, ==, "not-snapshot,duplicate,failed");
	g_free(s);
	s = query_text(f->store, "SELECT detail || ' ' || serial FROM intake_log WHERE outcome = 'failed'", NULL);
	g_assert_cmpstr(s, ==, "xml: truncated SUBJ0001");
	g_free(s);

	g_assert_cmpint(store_message_list(f->store, STORE_SELECT_FAILED, 0, 10, ids, &error), ==, 0);
	g_assert_cmpuint(ids->len, ==, 1);
	g_assert_cmpint(g_array_index(ids, int64_t, 0), ==, broken);
	g_array_set_size(ids, 0);
	g_assert_cmpint(store_message_list(f->store, STORE_SELECT_ALL, 0, 10, ids, &error), ==, 0);
	g_assert_cmpuint(ids->len, ==, 2);
	g_array_set_size(ids, 0);
	g_assert_cmpint(store_message_list(f->store, STORE_SELECT_ALL, alert, 10, ids, &error), ==, 0);
	g_assert_cmpuint(ids->len, ==, 1);
	g_array_set_size(ids, 0);

	/* A reparse that now succeeds turns the failed arrival into stored. */
	struct snapshot *snap = make_snapshot("PHB6820301", 9, 133275, 409, 2);
	g_assert_cmpint(commit(f->store, broken, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_STORED);
	char *sql = g_strdup_printf("SELECT outcome || ' ' || serial FROM intake_log WHERE message_id = %"
				    G_GINT64_FORMAT, broken);
	s = query_text(f->store, sql, NULL);
	g_free(sql);
	g_assert_cmpstr(s, ==, "stored PHB6820301");
	g_free(s);
	g_assert_cmpint(store_message_list(f->store, STORE_SELECT_FAILED, 0, 10, ids, &error), ==, 0);
	g_assert_cmpuint(ids->len, ==, 0);

	/* A snapshot without any serial is a failure, not a device. */
	struct snapshot *anon = make_snapshot("X", 9, 1, 1, 1);
	g_clear_pointer(&anon->serial, g_free);
	int64_t id = add_unique_message(f->store, "anon");
	struct store_hints no_hints = { 0 };
	enum store_outcome rec;
	g_assert_cmpint(store_result_commit(f->store, id, STORE_OUTCOME_STORED, NULL, anon, &no_hints, &rec,
					    &error), ==, 0);
	g_assert_cmpint(rec, ==, STORE_OUTCOME_FAILED);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM devices", NULL), ==, 1);

	/* Bad calls are refused without changing anything. */
	g_assert_cmpint(store_result_commit(f->store, id, STORE_OUTCOME_PENDING, NULL, NULL, NULL, &rec, &error),
			==, -1);
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(store_result_commit(f->store, id, STORE_OUTCOME_STORED, NULL, NULL, NULL, &rec, &error),
			==, -1);
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(store_result_commit(f->store, 4242, STORE_OUTCOME_FAILED, "x", NULL, NULL, &rec, &error),
			==, -1);
	g_clear_pointer(&error, g_free);
	g_array_free(ids, TRUE);
	snapshot_free(&snap);
	snapshot_free(&anon);
}

/* No XML time: the subject's time, then the Date header, then the receive time. */
static void
test_result_time_fallback(struct fixture *f, gconstpointer data)
{
	struct snapshot *snap = make_snapshot("PHB6820301", 9, 100, 1, 1);
	struct store_hints hints = { .subject_time_utc = "2025-03-09T06:00:05Z",
				     .date_utc = "2025-03-09T06:00:07Z" };
	enum store_outcome rec;
	char *error = NULL, *s;

	g_clear_pointer(&snap->taken_utc, g_free);
	int64_t id1 = add_unique_message(f->store, "1");
	g_assert_cmpint(store_result_commit(f->store, id1, STORE_OUTCOME_STORED, NULL, snap, &hints, &rec, &error),
			==, 0);
	hints.subject_time_utc = NULL;
	int64_t id2 = add_unique_message(f->store, "2");
	g_assert_cmpint(store_result_commit(f->store, id2, STORE_OUTCOME_STORED, NULL, snap, &hints, &rec, &error),
			==, 0);
	s = query_text(f->store, sql_of(f->store, "SELECT group_concat(taken_utc || ' ' || taken_source || ' '"
						  " || coalesce(taken_offset_min, 'none'), ',') FROM snapshot_list",
					"SELECT string_agg(taken_utc || ' ' || taken_source || ' '"
					" || coalesce(CAST(taken_offset_min AS text), 'none'), ',' ORDER BY taken_utc)"
					" FROM snapshot_list"), NULL);
	g_assert_cmpstr(s, ==, "2025-03-09T06:00:05Z subject none,2025-03-09T06:00:07Z date none");
	g_free(s);
	snapshot_free(&snap);
}

/* Odd mails keep their exact bytes through the delta repack: LF, other
 * widths, trailing spaces (transform refused), no base64, binary. */
static void
test_repack_odd_mails(struct fixture *f, gconstpointer data)
{
	size_t len;
	char *eml = read_example("futuresmart-color-mfp.eml", &len);
	GPtrArray *mails = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	GString *s;

	g_ptr_array_add(mails, g_bytes_new(eml, len));
	s = g_string_new_len(eml, (gssize)len);
	g_string_replace(s, "\r\n", "\n", 0);
	g_ptr_array_add(mails, g_bytes_new(s->str, s->len));
	g_string_replace(s, "\n", " \n", 0);
	g_ptr_array_add(mails, g_bytes_new(s->str, s->len));
	g_string_free(s, TRUE);
	/* The attachment re-wrapped at 64 columns with a short word after it. */
	s = g_string_new_len(eml, (gssize)len);
	char *body = strstr(s->str, "base64\r\n\r\n") + strlen("base64\r\n\r\n");
	char *end = strstr(body, "\r\n\r\n--");
	gsize blen = (gsize)(end - body);
	char *b64 = g_strndup(body, blen);
	g_string_erase(s, (gssize)(body - s->str), (gssize)blen + 2);
	gsize dlen;
	guchar *dec = g_base64_decode(b64, &dlen);
	char *enc = g_base64_encode(dec, dlen);
	GString *wrapped = g_string_new(NULL);
	for (size_t i = 0; i < strlen(enc); i += 64) {
		g_string_append_len(wrapped, enc + i, (gssize)MIN(64, strlen(enc) - i));
		g_string_append(wrapped, "\r\n");
	}
	g_string_append(wrapped, "end\r\n");
	g_string_insert(s, (gssize)(strstr(s->str, "base64\r\n\r\n") - s->str) + 10, wrapped->str);
	g_ptr_array_add(mails, g_bytes_new(s->str, s->len));
	g_string_free(wrapped, TRUE);
	g_string_free(s, TRUE);
	g_free(enc);
	g_free(dec);
	g_free(b64);
	static const char plain[] = "Subject: Device Snapshot\n\n<xml>not encoded</xml>\n";
	g_ptr_array_add(mails, g_bytes_new(plain, sizeof(plain) - 1));
	static const guint8 binary[] = { 0, 1, 2, 0xff, '\r', '\n', 'Q', 'Q', '=', '=', '\n' };
	g_ptr_array_add(mails, g_bytes_new(binary, sizeof(binary)));

	for (guint i = 0; i < mails->len; i++) {
		GBytes *m = g_ptr_array_index(mails, i);
		int64_t id = add_message(f->store, "file", g_bytes_get_data(m, NULL), g_bytes_get_size(m), NULL);
		struct snapshot *snap = make_snapshot("PHB6820301", 1 + (int)i, 100 + i, 1, 1);
		g_assert_cmpint(commit(f->store, id, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_STORED);
		g_array_append_val(ids, id);
		snapshot_free(&snap);
	}
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM messages WHERE method = 'skc1'", NULL), ==,
			mails->len);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM messages WHERE base_id IS NOT NULL", NULL), ==,
			mails->len - 1);
	/* From a fresh connection (no cached containers), newest first. */
	store_free(&f->store);
	f->store = open_store(f->path, true);
	for (guint i = mails->len; i-- > 0;) {
		GBytes *m = g_ptr_array_index(mails, i);
		assert_get_equals(f->store, g_array_index(ids, int64_t, i), g_bytes_get_data(m, NULL),
				  g_bytes_get_size(m));
	}
	g_array_free(ids, TRUE);
	g_ptr_array_unref(mails);
	g_free(eml);
}

static int64_t
msg_int(struct store *store, const char *column, int64_t id)
{
	char *sql = g_strdup_printf("SELECT coalesce(%s, -1) FROM messages WHERE id = %" G_GINT64_FORMAT, column, id);
	int64_t v = query_int(store, sql, NULL);
	g_free(sql);
	return v;
}

static bool
msg_is(struct store *store, int64_t id, const char *method)
{
	char *sql = g_strdup_printf("SELECT method = ?1 FROM messages WHERE id = %" G_GINT64_FORMAT, id);
	int64_t v = query_int(store, sql, method);
	g_free(sql);
	return v == 1;
}

/* The repack prepared outside the transaction (store_repack_prepare, which
 * takes over a reference to the bytes) is what the commit applies; a base
 * that changed in between leaves the message plain, and
 * store_repack_backlog repacks it later. */
static void
test_repack_prepared(struct fixture *f, gconstpointer data)
{
	size_t len;
	char *eml = read_example("futuresmart-color-mfp.eml", &len);
	struct store_hints hints = { .subject = "Device Snapshot" };
	GPtrArray *mails = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	char *error = NULL;
	unsigned repacked = 0;

	for (int i = 0; i < 9; i++) {
		char *m = g_strdup_printf("X-Seq: %d\r\n%s", i, eml);
		g_ptr_array_add(mails, g_bytes_new_take(m, strlen(m)));
	}
	/* A series of one device, each prepared before its commit. */
	for (int i = 0; i < 5; i++) {
		GBytes *m = g_ptr_array_index(mails, i);
		int64_t id = add_message(f->store, "smtp", g_bytes_get_data(m, NULL), g_bytes_get_size(m), NULL);
		struct snapshot *snap = make_snapshot("PHB6820301", 1 + i, 100 + i, 1, 1);
		/* The third one gets the wrong bytes: they are ignored, the
		 * archive's are used. */
		GBytes *given = i == 2 ? g_ptr_array_index(mails, 0) : m;
		g_assert_true(store_repack_prepare(f->store, id, g_bytes_ref(given), STORE_OUTCOME_STORED, snap, &hints));
		g_assert_true(msg_is(f->store, id, "zstd"));
		g_assert_cmpint(commit(f->store, id, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_STORED);
		g_assert_true(msg_is(f->store, id, "skc1"));
		g_assert_cmpint(msg_int(f->store, "chain_depth", id), ==, i);
		if (i > 0)
			g_assert_cmpint(msg_int(f->store, "base_id", id), ==, g_array_index(ids, int64_t, i - 1));
		else
			g_assert_cmpint(msg_int(f->store, "base_id", id), ==, -1);
		g_array_append_val(ids, id);
		/* Already repacked: nothing to prepare. */
		g_assert_false(store_repack_prepare(f->store, id, g_bytes_ref(m), STORE_OUTCOME_STORED, snap, &hints));
		snapshot_free(&snap);
	}

	/* The base changes between prepare and commit (prune re-encodes a
	 * chain): the message stays plain zstd and readable. */
	GBytes *m5 = g_ptr_array_index(mails, 5);
	int64_t id5 = add_message(f->store, "smtp", g_bytes_get_data(m5, NULL), g_bytes_get_size(m5), NULL);
	struct snapshot *snap5 = make_snapshot("PHB6820301", 6, 105, 1, 1);
	g_assert_true(store_repack_prepare(f->store, id5, g_bytes_ref(m5), STORE_OUTCOME_STORED, snap5, &hints));
	int64_t base = g_array_index(ids, int64_t, 4);
	char *sql = g_strdup_printf("UPDATE messages SET chain_depth = chain_depth + 1 WHERE id = %" G_GINT64_FORMAT, base);
	g_assert_cmpint(db_exec(store_db(f->store), sql, NULL), ==, DB_OK);
	g_free(sql);
	g_assert_cmpint(commit(f->store, id5, STORE_OUTCOME_STORED, NULL, snap5), ==, STORE_OUTCOME_STORED);
	g_assert_true(msg_is(f->store, id5, "zstd"));
	assert_get_equals(f->store, id5, g_bytes_get_data(m5, NULL), g_bytes_get_size(m5));
	/* The later pass repacks it (outside a transaction, short ones). */
	g_assert_cmpint(store_repack_backlog(f->store, 0, &repacked, &error), ==, 0);
	g_assert_cmpuint(repacked, ==, 1);
	g_assert_true(msg_is(f->store, id5, "skc1"));
	g_assert_cmpint(msg_int(f->store, "base_id", id5), ==, base);
	g_assert_cmpint(store_repack_backlog(f->store, 0, &repacked, &error), ==, 0);
	g_assert_cmpuint(repacked, ==, 0);
	g_array_append_val(ids, id5);
	snapshot_free(&snap5);

	/* A device seen for the first time gets a keyframe. */
	GBytes *m6 = g_ptr_array_index(mails, 6);
	int64_t id6 = add_message(f->store, "smtp", g_bytes_get_data(m6, NULL), g_bytes_get_size(m6), NULL);
	struct snapshot *other = make_snapshot("NEWDEV0001", 1, 5, 1, 1);
	g_assert_true(store_repack_prepare(f->store, id6, g_bytes_ref(m6), STORE_OUTCOME_STORED, other, &hints));
	g_assert_cmpint(commit(f->store, id6, STORE_OUTCOME_STORED, NULL, other), ==, STORE_OUTCOME_STORED);
	g_assert_true(msg_is(f->store, id6, "skc1"));
	g_assert_cmpint(msg_int(f->store, "base_id", id6), ==, -1);
	g_array_append_val(ids, id6);
	snapshot_free(&other);

	/* A prepared repack of one message is not used for another: m8 is
	 * committed without one (repacked inside its transaction), then m7
	 * with its own. */
	GBytes *m7 = g_ptr_array_index(mails, 7), *m8 = g_ptr_array_index(mails, 8);
	int64_t id7 = add_message(f->store, "smtp", g_bytes_get_data(m7, NULL), g_bytes_get_size(m7), NULL);
	int64_t id8 = add_message(f->store, "smtp", g_bytes_get_data(m8, NULL), g_bytes_get_size(m8), NULL);
	struct snapshot *s7 = make_snapshot("PHB6820301", 7, 107, 1, 1), *s8 = make_snapshot("PHB6820301", 8, 108, 1, 1);
	g_assert_true(store_repack_prepare(f->store, id7, g_bytes_ref(m7), STORE_OUTCOME_STORED, s7, &hints));
	g_assert_cmpint(commit(f->store, id8, STORE_OUTCOME_STORED, NULL, s8), ==, STORE_OUTCOME_STORED);
	g_assert_cmpint(commit(f->store, id7, STORE_OUTCOME_STORED, NULL, s7), ==, STORE_OUTCOME_STORED);
	g_assert_true(msg_is(f->store, id7, "skc1"));
	g_assert_true(msg_is(f->store, id8, "skc1"));
	g_array_append_val(ids, id7);
	g_array_append_val(ids, id8);
	snapshot_free(&s7);
	snapshot_free(&s8);

	/* Nothing to prepare for results that are not snapshots. */
	g_assert_false(store_repack_prepare(f->store, id7, g_bytes_ref(m7), STORE_OUTCOME_FAILED, NULL, &hints));
	struct snapshot *x = make_snapshot("X", 1, 1, 1, 1);
	g_assert_false(store_repack_prepare(f->store, 4242, g_bytes_ref(m7), STORE_OUTCOME_STORED, x, &hints));
	snapshot_free(&x);

	/* Every message exact from a fresh connection. */
	store_free(&f->store);
	f->store = open_store(f->path, true);
	for (guint i = 0; i < ids->len; i++) {
		int64_t id = g_array_index(ids, int64_t, i);
		GBytes *m = g_ptr_array_index(mails, i);   /* ids in the order of mails */
		assert_get_equals(f->store, id, g_bytes_get_data(m, NULL), g_bytes_get_size(m));
	}
	g_array_free(ids, TRUE);
	g_ptr_array_unref(mails);
	g_free(eml);
}

/* --- retention ------------------------------------------------------------------ */

#define DAY_S INT64_C(86400)
#define T0 INT64_C(1735689600) /* 2025-01-01T00:00:00Z */

struct series {
	GPtrArray *mails;   /* GBytes, by day */
	GArray *ids;        /* message ids, by day */
};

static struct store *
open_store_retention(const char *path, unsigned days, unsigned failed_days)
{
	struct store_settings s;
	struct store *store = NULL;
	char *error = NULL;

	store_settings_default(&s);
	s.path = path;
	s.busy_timeout_ms = 200;
	s.archive_keyframe_interval = 4;
	s.retention_days = days;
	s.retention_failed_days = failed_days;
	s.prune_batch = 3;
	if (store_open(&s, &store, &error) < 0)
		g_error("store_open %s: %s", path, error);
	return store;
}

static int64_t
add_message_at(struct store *store, const void *raw, size_t len, int64_t received)
{
	struct store_arrival a = { .source = "smtp", .received_us = received * G_USEC_PER_SEC };
	struct store_receipt r;
	char *error = NULL;

	if (store_message_add(store, &a, raw, len, &r, &error) < 0)
		g_error("store_message_add: %s", error);
	return r.message_id;
}

/* days daily snapshots of one device, received at T0 + day, committed. */
static void
series_add(struct store *store, struct series *sr, int days)
{
	size_t len;
	char *eml = read_example("futuresmart-color-mfp.eml", &len);

	sr->mails = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	sr->ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	for (int d = 0; d < days; d++) {
		char *m = g_strdup_printf("X-Day: %d\r\n%s", d, eml);
		GBytes *b = g_bytes_new_take(m, strlen(m));
		int64_t id = add_message_at(store, g_bytes_get_data(b, NULL), g_bytes_get_size(b), T0 + d * DAY_S);
		struct snapshot *snap = make_snapshot("PHB6820301", 1 + d, 1000 + d, 1 + d, 3);
		g_assert_cmpint(commit(store, id, STORE_OUTCOME_STORED, NULL, snap), ==, STORE_OUTCOME_STORED);
		snapshot_free(&snap);
		g_ptr_array_add(sr->mails, b);
		g_array_append_val(sr->ids, id);
	}
	g_free(eml);
}

static void
series_free(struct series *sr)
{
	g_ptr_array_unref(sr->mails);
	g_array_free(sr->ids, TRUE);
}

#define SERIES_ID(sr, d) g_array_index((sr)->ids, int64_t, (d))

static void
series_assert_exact(struct store *store, struct series *sr, int from, int to)
{
	for (int d = from; d <= to; d++) {
		GBytes *m = g_ptr_array_index(sr->mails, d);
		assert_get_equals(store, SERIES_ID(sr, d), g_bytes_get_data(m, NULL), g_bytes_get_size(m));
	}
}

/* Retention prunes old raw messages, keeps every parsed row, re-encodes the
 * kept message whose base goes, and leaves failed and pending messages for
 * longer. */
static void
test_prune(struct fixture *f, gconstpointer data)
{
	struct series sr;
	struct store_prune_stats ps;
	char *error = NULL, *s;

	store_free(&f->store);
	f->store = open_store_retention(f->path, 30, 60);
	series_add(f->store, &sr, 12);
	static const char failed[] = "Subject: broken\r\n\r\n<Device";
	static const char alert[] = "Subject: [Alert]\r\n\r\nalert\r\n";
	static const char pending[] = "Subject: not yet\r\n\r\nwait\r\n";
	int64_t id_failed = add_message_at(f->store, failed, sizeof(failed) - 1, T0);
	int64_t id_alert = add_message_at(f->store, alert, sizeof(alert) - 1, T0 + DAY_S);
	int64_t id_pending = add_message_at(f->store, pending, sizeof(pending) - 1, T0);
	commit(f->store, id_failed, STORE_OUTCOME_FAILED, "xml: truncated", NULL);
	commit(f->store, id_alert, STORE_OUTCOME_NOT_SNAPSHOT, "no Device.xml part", NULL);
	/* Keyframes every 4: days 0, 4, 8; day 5 builds on day 4. */
	g_assert_cmpint(msg_int(f->store, "base_id", SERIES_ID(&sr, 5)), ==, SERIES_ID(&sr, 4));
	g_assert_cmpint(msg_int(f->store, "chain_depth", SERIES_ID(&sr, 7)), ==, 3);

	char *rows_before = dump_tables_but(f->store, "SELECT id, sha256");
	char *all_before = dump_tables(f->store);
	int64_t now = T0 + 35 * DAY_S - 60;   /* days 0..4 are older than 30 days */

	/* A dry run counts and changes nothing. */
	g_assert_cmpint(store_prune(f->store, now, true, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.candidates, ==, 5);
	g_assert_cmpuint(ps.pruned, ==, 5);
	g_assert_cmpuint(ps.reencoded, ==, 1);
	g_assert_cmpuint(ps.pruned_raw_bytes, ==,
			 query_int(f->store, "SELECT sum(raw_size) FROM messages WHERE id <= 5", NULL));
	s = dump_tables(f->store);
	g_assert_cmpstr(s, ==, all_before);
	g_free(s);

	g_assert_cmpint(store_prune(f->store, now, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.candidates, ==, 5);
	g_assert_cmpuint(ps.pruned, ==, 5);
	g_assert_cmpuint(ps.reencoded, ==, 1);
	g_assert_cmpuint(ps.kept_as_base, ==, 0);
	for (int d = 0; d < 5; d++)
		g_assert_true(msg_is(f->store, SERIES_ID(&sr, d), "pruned"));
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM messages WHERE method = 'pruned'"
					    " AND blob IS NULL AND stored_size = 0 AND pruned_utc = ?1",
				  "2025-02-04T23:59:00Z"), ==, 5);
	/* Day 5 is a keyframe now, the days built on it one link shorter. */
	g_assert_cmpint(msg_int(f->store, "base_id", SERIES_ID(&sr, 5)), ==, -1);
	g_assert_cmpint(msg_int(f->store, "chain_depth", SERIES_ID(&sr, 5)), ==, 0);
	g_assert_cmpint(msg_int(f->store, "chain_depth", SERIES_ID(&sr, 6)), ==, 1);
	g_assert_cmpint(msg_int(f->store, "chain_depth", SERIES_ID(&sr, 7)), ==, 2);

	/* Parsed rows and the views are untouched, intake_log keeps every arrival. */
	s = dump_tables_but(f->store, "SELECT id, sha256");
	g_assert_cmpstr(s, ==, rows_before);
	g_free(s);
	g_assert_cmpint(query_int(f->store, "SELECT snapshot_count FROM device_status", NULL), ==, 12);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM snapshot_list", NULL), ==, 12);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM intake_log WHERE sha256 IS NOT NULL", NULL), ==,
			15);

	/* Old raw messages are gone, with a clear reason; the newer all exact
	 * from a fresh connection (no cached containers). */
	store_free(&f->store);
	f->store = open_store_retention(f->path, 30, 60);
	GBytes *raw = NULL;
	g_assert_cmpint(store_message_get(f->store, SERIES_ID(&sr, 2), &raw, &error), ==, -1);
	g_assert_nonnull(strstr(error, "pruned by retention on 2025-02-04T23:59:00Z"));
	g_clear_pointer(&error, g_free);
	series_assert_exact(f->store, &sr, 5, 11);
	assert_get_equals(f->store, id_failed, failed, sizeof(failed) - 1);
	/* Pruned messages are not offered to reparse. */
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	g_assert_cmpint(store_message_list(f->store, STORE_SELECT_ALL, 0, 100, ids, &error), ==, 0);
	g_assert_cmpuint(ids->len, ==, 10);
	g_array_free(ids, TRUE);

	struct store_verify_stats vs;
	g_assert_cmpint(store_archive_verify(f->store, &vs, NULL, 0, &error), ==, 0);
	g_assert_cmpuint(vs.messages, ==, 15);
	g_assert_cmpuint(vs.pruned, ==, 5);
	g_assert_cmpuint(vs.verified, ==, 10);
	g_assert_cmpuint(vs.damaged, ==, 0);

	/* Again at the same time: nothing left to do. */
	g_assert_cmpint(store_prune(f->store, now, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.candidates, ==, 0);

	/* 100 days on: every parsed message and the failed ones (60 days) go;
	 * the pending one stays. */
	g_assert_cmpint(store_prune(f->store, T0 + 100 * DAY_S, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.pruned, ==, 9);
	g_assert_true(msg_is(f->store, id_failed, "pruned"));
	g_assert_true(msg_is(f->store, id_alert, "pruned"));
	g_assert_true(msg_is(f->store, id_pending, "zstd"));
	assert_get_equals(f->store, id_pending, pending, sizeof(pending) - 1);
	g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM counter_history", NULL), ==, 12 * 5);
	g_assert_cmpint(store_archive_verify(f->store, &vs, NULL, 0, &error), ==, 0);
	g_assert_cmpuint(vs.damaged, ==, 0);
	g_assert_cmpuint(vs.verified, ==, 1);

	/* Retention off: nothing at all. */
	store_free(&f->store);
	f->store = open_store_retention(f->path, 0, 60);
	g_assert_cmpint(store_prune(f->store, T0 + 1000 * DAY_S, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.candidates, ==, 0);
	g_free(rows_before);
	g_free(all_before);
	series_free(&sr);
}

/* Failed messages are kept longer, and 0 keeps them forever. */
static void
test_prune_failed_forever(struct fixture *f, gconstpointer data)
{
	struct store_prune_stats ps;
	char *error = NULL;
	static const char failed[] = "Subject: broken\r\n\r\n<Device";

	store_free(&f->store);
	f->store = open_store_retention(f->path, 10, 0);
	int64_t id = add_message_at(f->store, failed, sizeof(failed) - 1, T0);
	commit(f->store, id, STORE_OUTCOME_FAILED, "xml: truncated", NULL);
	g_assert_cmpint(store_prune(f->store, T0 + 5000 * DAY_S, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.candidates, ==, 0);
	assert_get_equals(f->store, id, failed, sizeof(failed) - 1);
	/* A failed limit below the parsed one is raised to it. */
	store_free(&f->store);
	f->store = open_store_retention(f->path, 10, 3);
	g_assert_cmpint(store_prune(f->store, T0 + 5 * DAY_S, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.candidates, ==, 0);
	g_assert_cmpint(store_prune(f->store, T0 + 11 * DAY_S, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.pruned, ==, 1);
}

/* A base that a kept message still needs is never pruned: here the kept
 * message cannot be re-encoded (its base is damaged), so the base stays. */
static void
test_prune_keeps_needed_base(struct fixture *f, gconstpointer data)
{
	struct series sr;
	struct store_prune_stats ps;
	char *error = NULL;

	store_free(&f->store);
	f->store = open_store_retention(f->path, 30, 60);
	series_add(f->store, &sr, 7);
	/* Day 4 (keyframe, candidate) damaged: day 5 cannot be rebuilt. */
	char *sql = f->pg ? g_strdup_printf("UPDATE messages SET blob = decode(repeat('00', length(blob)), 'hex')"
					    " WHERE id = %" G_GINT64_FORMAT, SERIES_ID(&sr, 4))
			  : g_strdup_printf("UPDATE messages SET blob = zeroblob(length(blob)) WHERE id = %" G_GINT64_FORMAT,
					    SERIES_ID(&sr, 4));
	g_assert_cmpint(db_exec(store_db(f->store), sql, NULL), ==, DB_OK);
	g_free(sql);
	store_free(&f->store);
	f->store = open_store_retention(f->path, 30, 60);   /* no cached container */
	g_assert_cmpint(store_prune(f->store, T0 + 35 * DAY_S - 60, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.candidates, ==, 5);
	g_assert_cmpuint(ps.reencoded, ==, 0);
	g_assert_cmpuint(ps.kept_as_base, ==, 1);
	g_assert_cmpuint(ps.pruned, ==, 4);
	g_assert_true(msg_is(f->store, SERIES_ID(&sr, 4), "skc1"));
	g_assert_cmpint(msg_int(f->store, "base_id", SERIES_ID(&sr, 5)), ==, SERIES_ID(&sr, 4));
	/* verify names the damage: day 4 and the days built on it. */
	struct store_verify_stats vs;
	GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
	g_assert_cmpint(store_archive_verify(f->store, &vs, problems, 10, &error), ==, 0);
	g_assert_cmpuint(vs.damaged, ==, 3);
	g_assert_cmpuint(problems->len, ==, 3);
	g_ptr_array_unref(problems);
	series_free(&sr);
}

static int64_t
stats_table_rows(const struct store_stats *st, const char *name)
{
	for (guint i = 0; i < st->tables->len; i++) {
		const struct store_table_rows *t = &g_array_index(st->tables, struct store_table_rows, i);
		if (strcmp(t->name, name) == 0)
			return t->rows;
	}
	g_error("store_stats_get lists no table %s", name);
	return -1;
}

/* The store's figures against what the test put in: 12 daily messages of
 * one device, the 5 oldest pruned. */
static void
test_stats(struct fixture *f, gconstpointer data)
{
	struct series sr;
	struct store_prune_stats ps;
	struct store_stats st;
	char *error = NULL;
	int64_t kept_raw = 0, pruned_raw = 0;

	store_free(&f->store);
	f->store = open_store_retention(f->path, 30, 60);
	series_add(f->store, &sr, 12);
	g_assert_cmpint(store_prune(f->store, T0 + 35 * DAY_S - 60, false, &ps, &error), ==, 0);
	g_assert_cmpuint(ps.pruned, ==, 5);
	for (int d = 0; d < 12; d++) {
		gsize size = g_bytes_get_size(g_ptr_array_index(sr.mails, d));
		if (d < 5)
			pruned_raw += (int64_t)size;
		else
			kept_raw += (int64_t)size;
	}

	g_assert_cmpint(store_stats_get(f->store, &st, &error), ==, 0);
	g_assert_cmpint(st.messages, ==, 12);
	g_assert_cmpint(st.messages_pruned, ==, 5);
	g_assert_cmpint(st.messages_delta, ==, 7);   /* every kept one repacked */
	g_assert_cmpint(st.messages_plain, ==, 0);
	g_assert_cmpint(st.raw_bytes, ==, kept_raw);
	g_assert_cmpint(st.pruned_raw_bytes, ==, pruned_raw);
	g_assert_cmpint(st.stored_bytes, ==, query_int(f->store, "SELECT sum(stored_size) FROM messages", NULL));
	g_assert_cmpint(st.stored_bytes, >, 0);
	g_assert_cmpint(st.stored_bytes, <, st.raw_bytes);
	g_assert_cmpstr(st.oldest_snapshot_utc, ==, "2025-03-01T06:00:00Z");
	g_assert_cmpstr(st.newest_snapshot_utc, ==, "2025-03-12T06:00:00Z");
	g_assert_cmpstr(st.oldest_received_utc, ==, "2025-01-01T00:00:00Z");
	g_assert_cmpstr(st.newest_received_utc, ==, "2025-01-12T00:00:00Z");
	g_assert_cmpint(stats_table_rows(&st, "messages"), ==, 12);
	g_assert_cmpint(stats_table_rows(&st, "intake"), ==, 12);
	g_assert_cmpint(stats_table_rows(&st, "snapshots"), ==, 12);
	g_assert_cmpint(stats_table_rows(&st, "counters"), ==, 12 * 5);
	g_assert_cmpint(stats_table_rows(&st, "devices"), ==, 1);
	g_assert_cmpint(st.page_size, >, 0);
	g_assert_cmpint(st.file_bytes, >=, st.page_size);
	store_stats_clear(&st);

	/* An empty store: zeros and no times. */
	store_free(&f->store);
	char *empty = f->pg ? pg_database_new(f) : g_build_filename(f->dir, "empty.db", NULL);
	f->store = open_store(empty, false);
	g_assert_cmpint(store_stats_get(f->store, &st, &error), ==, 0);
	g_assert_cmpint(st.messages, ==, 0);
	g_assert_cmpint(st.raw_bytes, ==, 0);
	g_assert_null(st.oldest_snapshot_utc);
	g_assert_null(st.newest_received_utc);
	g_assert_cmpint(stats_table_rows(&st, "messages"), ==, 0);
	store_stats_clear(&st);
	g_free(empty);
	series_free(&sr);
}

/* A database at schema 5 (before retention) migrates: messages rebuilt with
 * 'pruned' allowed, rows, foreign keys and views kept.  On PostgreSQL the
 * same from schema/postgresql's migrations 1-5 (the table altered in
 * place): rows and foreign keys kept, the indexes those of a new store. */
static void
test_migrate_retention(struct fixture *f, gconstpointer data)
{
	const char *srcdir = g_getenv("SK_TOP_SRCDIR");
	char *dir, *path, *error = NULL;
	GError *gerr = NULL;
	struct db *db = NULL;
	static const char raw[] = "Subject: Device Snapshot\r\n\r\nold\r\n";
	char sha[ARCHIVE_SHA256_HEX_LEN + 1];
	GBytes *frame = NULL;

	if (srcdir == NULL)
		g_error("SK_TOP_SRCDIR is not set (run under make check)");
	if (f->pg) {
		dir = g_build_filename(srcdir, "schema", "postgresql", NULL);
		path = pg_database_new(f);
	} else {
		dir = g_build_filename(srcdir, "schema", NULL);
		path = g_build_filename(f->dir, "old.db", NULL);
	}
	struct db_open_settings dbs = { .target = path, .create = true };
	g_assert_cmpint(db_open(&dbs, &db, &error), ==, 0);
	for (int v = 1; v <= 5; v++) {
		GDir *d = g_dir_open(dir, 0, &gerr);
		const char *name;
		char *prefix = g_strdup_printf("%03d-", v);
		bool found = false;
		g_assert_no_error(gerr);
		while ((name = g_dir_read_name(d)) != NULL) {
			if (g_str_has_prefix(name, prefix) && g_str_has_suffix(name, ".sql")) {
				char *file = g_build_filename(dir, name, NULL), *sql = NULL;
				g_assert_true(g_file_get_contents(file, &sql, NULL, NULL));
				g_assert_cmpint(db_exec(db, sql, NULL), ==, DB_OK);
				g_free(sql);
				g_free(file);
				found = true;
			}
		}
		g_dir_close(d);
		g_free(prefix);
		g_assert_true(found);
	}
	archive_sha256_hex(raw, sizeof(raw) - 1, sha);
	g_assert_cmpint(archive_compress(raw, sizeof(raw) - 1, NULL, 0, 3, &frame, &error), ==, 0);
	struct db_stmt *stmt;
	g_assert_cmpint(db_prepare(db, "INSERT INTO messages (sha256, raw_size, method, stored_size,"
					       " first_received_utc, first_received_us, blob)"
					       " VALUES (?1, ?2, 'zstd', ?3, '2025-01-01T00:00:00Z', 1, ?4)", &stmt), ==, DB_OK);
	db_bind_text(stmt, 1, sha, -1, DB_STATIC);
	db_bind_int64(stmt, 2, sizeof(raw) - 1);
	db_bind_int64(stmt, 3, (int64_t)g_bytes_get_size(frame));
	db_bind_blob64(stmt, 4, g_bytes_get_data(frame, NULL), g_bytes_get_size(frame), DB_STATIC);
	g_assert_cmpint(db_step(stmt), ==, DB_DONE);
	db_finalize(stmt);
	g_assert_cmpint(db_exec(db, "INSERT INTO intake (received_utc, received_us, source, message_id)"
					 " VALUES ('2025-01-01T00:00:00Z', 1, 'file', 1)", NULL), ==, DB_OK);
	/* The version as store_open keeps it on each engine. */
	g_assert_cmpint(db_exec(db, f->pg ? "CREATE TABLE snapkeep_schema (version integer NOT NULL);"
					    " INSERT INTO snapkeep_schema (version) VALUES (5)"
					  : "PRAGMA user_version = 5;", NULL), ==, DB_OK);
	db_close(&db);
	g_bytes_unref(frame);

	struct store *store = open_store(path, false);
	g_assert_cmpint(store_schema_version(store), >=, 6);
	assert_get_equals(store, 1, raw, sizeof(raw) - 1);
	g_assert_cmpint(query_int(store, "SELECT count(*) FROM intake_log WHERE sha256 = ?1", sha), ==, 1);
	/* The later migrations ran too: supply_status as 008 leaves it. */
	g_assert_cmpint(store_schema_version(store), >=, 8);
	g_assert_cmpint(query_int(store, "SELECT count(*) FROM supply_status", NULL), ==, 0);
	if (!f->pg) {
		g_assert_cmpint(query_int(store, "PRAGMA foreign_keys", NULL), ==, 1);
		g_assert_cmpint(query_int(store, "SELECT count(*) FROM pragma_foreign_key_check", NULL), ==, 0);
		g_assert_cmpint(query_int(store, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
						 " AND tbl_name = 'messages' AND name NOT LIKE 'sqlite_%'", NULL), ==, 4);
	} else {
		/* The migrated table has the indexes and constraints of the
		 * fixture's new store, by name and definition. */
		static const char indexes[] =
		    "SELECT string_agg(indexdef, ';' ORDER BY indexname) FROM pg_indexes"
		    " WHERE schemaname = current_schema() AND tablename = 'messages'";
		static const char checks[] =
		    "SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ';' ORDER BY conname)"
		    " FROM pg_constraint WHERE conrelid = CAST('messages' AS regclass)";
		char *got = query_text(store, indexes, NULL), *want = query_text(f->store, indexes, NULL);
		g_assert_cmpstr(got, ==, want);
		g_assert_nonnull(strstr(got, "messages_age"));
		g_free(got);
		g_free(want);
		got = query_text(store, checks, NULL);
		want = query_text(f->store, checks, NULL);
		g_assert_cmpstr(got, ==, want);
		g_assert_nonnull(strstr(got, "'pruned'"));
		g_free(got);
		g_free(want);
	}
	/* 'pruned' goes with a NULL blob only. */
	g_assert_cmpint(db_exec(store_db(store), "UPDATE messages SET method = 'pruned' WHERE id = 1", NULL), ==, DB_CONSTRAINT);
	g_assert_cmpint(db_exec(store_db(store), "UPDATE messages SET method = 'pruned', blob = NULL,"
				     " stored_size = 0 WHERE id = 1", NULL), ==, DB_OK);
	/* Foreign keys are on again after the migration. */
	g_assert_cmpint(db_exec(store_db(store), "DELETE FROM messages WHERE id = 1", NULL), ==,
			DB_CONSTRAINT);
	store_free(&store);
	if (!f->pg) {
		g_unlink(path);
		char *side = g_strconcat(path, "-wal", NULL);
		g_unlink(side);
		g_free(side);
		side = g_strconcat(path, "-shm", NULL);
		g_unlink(side);
		g_free(side);
	}
	g_free(path);
	g_free(dir);
}


/* What logs and messages show of a store: a URL without its password. */
static void
test_target_display(void)
{
	static const struct {
		const char *target, *shown;
	} cases[] = {
		{ "postgresql://snap:s3cret@db.example.net:5433/fleet?sslmode=verify-full",
		  "postgresql://snap@db.example.net:5433/fleet" },
		{ "postgres://db.example.net/fleet", "postgresql://db.example.net/fleet" },
		{ "/var/lib/snapkeep/snapkeep.db", "/var/lib/snapkeep/snapkeep.db" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *shown = db_target_display(cases[i].target);
		g_assert_cmpstr(shown, ==, cases[i].shown);
		g_free(shown);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/store/target-display", test_target_display);
#define ADD(name, fn) g_test_add("/store/" name, struct fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("migrations", test_migrations);
	ADD("version-checks", test_version_checks);
	ADD("view-columns", test_view_columns);
	ADD("round-trip", test_round_trip);
	ADD("duplicate-bytes", test_duplicate_bytes);
	ADD("readonly-during-write", test_readonly_during_write);
	ADD("foreign-keys", test_foreign_keys);
	ADD("result-stored", test_result_stored);
	ADD("result-reparse", test_result_reparse);
	ADD("result-same-snapshot", test_result_same_snapshot);
	ADD("result-refresh", test_result_refresh);
	ADD("result-events-once", test_result_events_once);
	ADD("result-counter-backwards", test_result_counter_backwards);
	ADD("result-failures", test_result_failures);
	ADD("result-time-fallback", test_result_time_fallback);
	ADD("repack-odd-mails", test_repack_odd_mails);
	ADD("repack-prepared", test_repack_prepared);
	ADD("prune", test_prune);
	ADD("prune-failed-forever", test_prune_failed_forever);
	ADD("prune-keeps-needed-base", test_prune_keeps_needed_base);
	ADD("stats", test_stats);
	ADD("migrate-retention", test_migrate_retention);
#undef ADD
	return g_test_run();
}
