/* query.c: `snapkeep devices` and `snapkeep show SERIAL`: readable tables
 * (or --json) over the public views, so what the command line shows is what
 * admins' scripts see.  The database is opened read-only. */
#include "config.h"

#include "cli/cli.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"

static int
query_parse(int *argc, char ***argv, GOptionEntry *entries, const char *summary)
{
	GOptionContext *octx = g_option_context_new(summary);
	GError *gerr = NULL;
	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, argc, argv, &gerr)) {
		fprintf(stderr, "snapkeep: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		return -1;
	}
	g_option_context_free(octx);
	return 0;
}

static struct db_stmt *
query_prepare(struct store *store, const char *sql)
{
	struct db_stmt *stmt = NULL;
	if (db_prepare(store_db(store), sql, &stmt) != DB_OK) {
		fprintf(stderr, "snapkeep: query failed: %s\n", db_errmsg(store_db(store)));
		return NULL;
	}
	return stmt;
}

int
cli_devices(int argc, char **argv)
{
	g_autofree gchar *db = NULL;
	gboolean json = FALSE;
	GOptionEntry entries[] = {
		{ "db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file or postgresql:// URL", "FILE|URL" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON instead of a table", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	struct store *store = NULL;
	int ret = CLI_EX_SOFTWARE;

	if (query_parse(&argc, &argv, entries, "- list the devices (view device_status)") < 0)
		return CLI_EX_USAGE;
	if (cli_open_readonly(db != NULL ? db : cli_default_db(), &store) < 0)
		return CLI_EX_NOINPUT;
	struct db_stmt *stmt = query_prepare(
	    store, json ? "SELECT * FROM device_status ORDER BY serial"
			: "SELECT serial, model, hostname, ip_address, last_snapshot_utc AS last_snapshot,"
			  " snapshot_count AS snapshots, total_impressions AS total_pages"
			  " FROM device_status ORDER BY serial");
	if (stmt != NULL && cli_print_rows(stmt, json, "") == 0)
		ret = CLI_EX_OK;
	db_finalize(stmt);
	store_free(&store);
	return ret;
}

struct show_section {
	const char *title;
	const char *json_name;
	const char *sql;
};

int
cli_show(int argc, char **argv)
{
	g_autofree gchar *db = NULL;
	gboolean json = FALSE;
	gint events = 20;
	GOptionEntry entries[] = {
		{ "db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file or postgresql:// URL", "FILE|URL" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON instead of tables", NULL },
		{ "events", 'e', 0, G_OPTION_ARG_INT, &events, "event log entries shown (default 20)", "N" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	const struct show_section sections[] = {
		{ "Device", "device", "SELECT * FROM device_status WHERE serial = ?1" },
		{ "Counters (latest snapshot)", "counters",
		  "SELECT counter, value, taken_utc FROM counter_history WHERE serial = ?1"
		  " AND taken_utc = (SELECT last_snapshot_utc FROM device_status WHERE serial = ?1)"
		  " ORDER BY counter" },
		{ "Supplies", "supplies",
		  "SELECT supply, type, color, level_percent, state, low_threshold, supply_serial,"
		  " installed_date, reported_utc FROM supply_status WHERE serial = ?1 ORDER BY supply" },
		{ "Event log (newest first)", "events",
		  "SELECT log, sequence, code, occurred_utc, page_count, description FROM event_log"
		  " WHERE serial = ?1"
		  " ORDER BY occurred_utc DESC NULLS LAST, sequence DESC NULLS LAST, event_id DESC LIMIT ?2" },
	};
	struct store *store = NULL;
	int ret = CLI_EX_OK;

	if (query_parse(&argc, &argv, entries, "SERIAL - show one device") < 0)
		return CLI_EX_USAGE;
	if (argc != 2) {
		fprintf(stderr, "snapkeep show: give exactly one SERIAL\n");
		return CLI_EX_USAGE;
	}
	if (cli_open_readonly(db != NULL ? db : cli_default_db(), &store) < 0)
		return CLI_EX_NOINPUT;

	struct db_stmt *exists = query_prepare(store, "SELECT 1 FROM device_status WHERE serial = ?1");
	if (exists == NULL) {
		store_free(&store);
		return CLI_EX_SOFTWARE;
	}
	db_bind_text(exists, 1, argv[1], -1, DB_TRANSIENT);
	int found = db_step(exists) == DB_ROW;
	db_finalize(exists);
	if (!found) {
		fprintf(stderr, "snapkeep show: no device with serial %s\n", argv[1]);
		store_free(&store);
		return 1;
	}

	JsonObject *obj = json_object_new();
	for (size_t i = 0; i < G_N_ELEMENTS(sections); i++) {
		struct db_stmt *stmt = query_prepare(store, sections[i].sql);
		if (stmt == NULL) {
			ret = CLI_EX_SOFTWARE;
			break;
		}
		db_bind_text(stmt, 1, argv[1], -1, DB_TRANSIENT);
		if (db_bind_parameter_count(stmt) >= 2)
			db_bind_int(stmt, 2, events);
		if (json) {
			int rc;
			JsonNode *rows = cli_rows_to_json(stmt, &rc);
			if (rc != DB_DONE)
				ret = CLI_EX_SOFTWARE;
			if (i == 0) {
				/* The device itself is one object, not a list. */
				JsonArray *arr = json_node_get_array(rows);
				json_object_set_member(obj, sections[i].json_name,
						       json_node_copy(json_array_get_element(arr, 0)));
				json_node_unref(rows);
			} else {
				json_object_set_member(obj, sections[i].json_name, rows);
			}
		} else if (i == 0) {
			/* One device: a field per line reads better than a wide table. */
			if (db_step(stmt) == DB_ROW) {
				for (int c = 0; c < db_column_count(stmt); c++) {
					const char *v = (const char *)db_column_text(stmt, c);
					char *clean = g_strdup(v != NULL ? v : "-");
					g_strdelimit(clean, "\x01\x02\x03\x04\x05\x06\x07\x08\t\n\v\f\r\x1b\x7f", '?');
					printf("%-20s %s\n", db_column_name(stmt, c), clean);
					g_free(clean);
				}
			}
		} else {
			printf("\n%s\n", sections[i].title);
			if (cli_print_rows(stmt, false, "  ") < 0)
				ret = CLI_EX_SOFTWARE;
		}
		db_finalize(stmt);
	}
	if (json) {
		JsonNode *root = json_node_new(JSON_NODE_OBJECT);
		json_node_set_object(root, obj);
		cli_print_json(root);
		json_node_unref(root);
	}
	json_object_unref(obj);
	store_free(&store);
	return ret;
}
