/* stats.c: `snapkeep stats [--db FILE] [--json]`: the database's size
 * (file, pages, free pages, WAL), rows per table, the raw archive (messages
 * by form, raw and stored bytes, compression ratio, pruned), and the oldest
 * and newest snapshot.  Read-only, one read transaction. */
#include "config.h"

#include "cli/cli.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "store/store.h"

static void
stats_json_add_text(JsonBuilder *b, const char *name, const char *text)
{
	json_builder_set_member_name(b, name);
	if (text == NULL)
		json_builder_add_null_value(b);
	else
		json_builder_add_string_value(b, text);
}

static void
stats_json_add_int(JsonBuilder *b, const char *name, int64_t v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

/* raw / stored, or 0 when nothing is stored. */
static double
stats_ratio(const struct store_stats *st)
{
	return st->stored_bytes > 0 ? (double)st->raw_bytes / (double)st->stored_bytes : 0.0;
}

static void
stats_print_json(const char *path, const struct store_stats *st)
{
	JsonBuilder *b = json_builder_new();
	JsonNode *root;

	json_builder_begin_object(b);
	stats_json_add_text(b, "database", path);
	stats_json_add_int(b, "file_bytes", st->file_bytes);
	stats_json_add_int(b, "wal_bytes", st->wal_bytes);
	stats_json_add_int(b, "page_size", st->page_size);
	stats_json_add_int(b, "page_count", st->page_count);
	stats_json_add_int(b, "free_pages", st->freelist_count);
	json_builder_set_member_name(b, "tables");
	json_builder_begin_object(b);
	for (guint i = 0; i < st->tables->len; i++) {
		const struct store_table_rows *t =
		    &g_array_index(st->tables, struct store_table_rows, i);
		stats_json_add_int(b, t->name, t->rows);
	}
	json_builder_end_object(b);
	json_builder_set_member_name(b, "archive");
	json_builder_begin_object(b);
	stats_json_add_int(b, "messages", st->messages);
	stats_json_add_int(b, "delta", st->messages_delta);
	stats_json_add_int(b, "plain", st->messages_plain);
	stats_json_add_int(b, "pruned", st->messages_pruned);
	stats_json_add_int(b, "raw_bytes", st->raw_bytes);
	stats_json_add_int(b, "stored_bytes", st->stored_bytes);
	json_builder_set_member_name(b, "compression_ratio");
	json_builder_add_double_value(b, stats_ratio(st));
	stats_json_add_int(b, "pruned_raw_bytes", st->pruned_raw_bytes);
	json_builder_end_object(b);
	stats_json_add_text(b, "oldest_snapshot_utc", st->oldest_snapshot_utc);
	stats_json_add_text(b, "newest_snapshot_utc", st->newest_snapshot_utc);
	stats_json_add_text(b, "oldest_received_utc", st->oldest_received_utc);
	stats_json_add_text(b, "newest_received_utc", st->newest_received_utc);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	cli_print_json(root);
	json_node_unref(root);
	g_object_unref(b);
}

static void
stats_print_text(const char *path, const struct store_stats *st)
{
	g_autofree char *file = g_format_size((guint64)st->file_bytes);
	g_autofree char *wal = g_format_size((guint64)st->wal_bytes);
	g_autofree char *free_bytes = g_format_size((guint64)(st->freelist_count * st->page_size));
	g_autofree char *raw = g_format_size((guint64)st->raw_bytes);
	g_autofree char *stored = g_format_size((guint64)st->stored_bytes);
	g_autofree char *pruned = g_format_size((guint64)st->pruned_raw_bytes);

	if (db_target_is_postgresql(path))
		/* The server's own figure (pg_database_size); free space and
		 * the WAL are the server's business. */
		printf("database   %s: %s (%" G_GINT64_FORMAT " blocks of %" G_GINT64_FORMAT " bytes)\n",
		       path, file, st->page_count, st->page_size);
	else
		printf("database   %s: %s (%" G_GINT64_FORMAT " pages of %" G_GINT64_FORMAT
		       " bytes, %s free), WAL %s\n",
		       path, file, st->page_count, st->page_size, free_bytes, wal);
	printf("archive    %" G_GINT64_FORMAT " messages: %" G_GINT64_FORMAT
	       " delta, %" G_GINT64_FORMAT " plain, %" G_GINT64_FORMAT " pruned (%s raw)\n",
	       st->messages, st->messages_delta, st->messages_plain, st->messages_pruned, pruned);
	if (st->stored_bytes > 0)
		printf("           %s raw stored in %s: compression ratio 1/%.1f\n", raw, stored,
		       stats_ratio(st));
	printf("snapshots  oldest %s, newest %s\n",
	       st->oldest_snapshot_utc ? st->oldest_snapshot_utc : "-",
	       st->newest_snapshot_utc ? st->newest_snapshot_utc : "-");
	printf("received   oldest %s, newest %s\n",
	       st->oldest_received_utc ? st->oldest_received_utc : "-",
	       st->newest_received_utc ? st->newest_received_utc : "-");
	printf("rows\n");
	for (guint i = 0; i < st->tables->len; i++) {
		const struct store_table_rows *t =
		    &g_array_index(st->tables, struct store_table_rows, i);
		printf("  %-22s %12" G_GINT64_FORMAT "\n", t->name, t->rows);
	}
}

int
cli_stats(int argc, char **argv)
{
	g_autofree gchar *db = NULL;
	gboolean json = FALSE;
	GOptionEntry entries[] = {
	    {"db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file or postgresql:// URL", "FILE|URL"},
	    {"json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON instead of text", NULL},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionContext *octx =
	    g_option_context_new("- database size, rows, archive and compression");
	GError *gerr = NULL;
	struct store *store = NULL;
	struct store_stats st;
	char *error = NULL;
	const char *path;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep stats: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		return CLI_EX_USAGE;
	}
	g_option_context_free(octx);
	if (argc > 1) {
		fprintf(stderr, "snapkeep stats: no arguments expected\n");
		return CLI_EX_USAGE;
	}
	path = db != NULL ? db : cli_default_db();
	if (cli_open_readonly(path, &store) < 0)
		return CLI_EX_NOINPUT;
	if (store_stats_get(store, &st, &error) < 0) {
		fprintf(stderr, "snapkeep stats: %s\n", error);
		g_free(error);
		store_free(&store);
		return CLI_EX_SOFTWARE;
	}
	/* The URL as shown: without a password given in it. */
	path = db_display_name(store_db(store));
	if (json)
		stats_print_json(path, &st);
	else
		stats_print_text(path, &st);
	store_stats_clear(&st);
	store_free(&store);
	return CLI_EX_OK;
}
