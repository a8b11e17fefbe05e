/* verify.c: `snapkeep verify [--db FILE|URL]`: reads every archived message
 * back (delta chains decoded, SHA-256 compared with the hash it was stored
 * under) and runs SQLite's PRAGMA quick_check over the database file, all
 * in one read transaction (safe while snapkeepd writes).  PostgreSQL checks
 * its own pages (data checksums): the summary says whether they are on.
 * One line per damaged message, a summary line, exit 1 on any damage (0:
 * all good, 66: no database).  Messages pruned by retention are counted,
 * not read. */
#include "config.h"

#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"

/* Problems listed by name; the count covers all of them. */
#define VERIFY_MAX_LISTED 1000

/* PRAGMA quick_check: NULL when "ok", else the first problem (g_free). */
static char *
verify_quick_check(struct db *db)
{
	struct db_stmt *stmt = NULL;
	char *problem = NULL;
	int rc;

	/* PostgreSQL checks its pages itself (data checksums, amcheck). */
	if (db_engine(db) == DB_ENGINE_POSTGRESQL)
		return NULL;
	if (db_prepare(db, "PRAGMA quick_check", &stmt) != DB_OK)
		return g_strdup(db_errmsg(db));
	rc = db_step(stmt);
	if (rc == DB_ROW) {
		const char *text = (const char *)db_column_text(stmt, 0);
		if (text == NULL || strcmp(text, "ok") != 0)
			problem = g_strdup(text != NULL ? text : "unknown");
	} else {
		problem = g_strdup(db_errmsg(db));
	}
	db_finalize(stmt);
	return problem;
}

/* What stands for quick_check on PostgreSQL: the server verifies each page
 * it reads when the cluster has data checksums (initdb -k). */
static char *
verify_pg_checksums(struct db *db)
{
	struct db_stmt *stmt = NULL;
	char *what = NULL;

	if (db_prepare(db, "SHOW data_checksums", &stmt) == DB_OK && db_step(stmt) == DB_ROW) {
		const char *v = (const char *)db_column_text(stmt, 0);
		what = g_strdup_printf("PostgreSQL data_checksums %s%s", v != NULL ? v : "unknown",
				       v != NULL && strcmp(v, "on") == 0 ? " (pages checked by the server)"
									: " (pages not checked)");
	} else {
		what = g_strdup_printf("PostgreSQL data_checksums unknown (%s)", db_errmsg(db));
	}
	db_finalize(stmt);
	return what;
}

int
cli_verify(int argc, char **argv)
{
	g_autofree gchar *db = NULL;
	gboolean quiet = FALSE;
	GOptionEntry entries[] = {
	    {"db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file or postgresql:// URL", "FILE|URL"},
	    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "only problems, no summary line", NULL},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionContext *octx =
	    g_option_context_new("- check every archived message and the database file");
	GError *gerr = NULL;
	struct store_settings ss;
	struct store *store = NULL;
	struct store_verify_stats vs;
	GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
	char *error = NULL, *sql_problem = NULL;
	char *db_check = NULL;
	int ret = CLI_EX_OK;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep verify: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		g_ptr_array_unref(problems);
		return CLI_EX_USAGE;
	}
	g_option_context_free(octx);
	if (argc > 1) {
		fprintf(stderr, "snapkeep verify: no arguments expected\n");
		g_ptr_array_unref(problems);
		return CLI_EX_USAGE;
	}
	store_settings_default(&ss);
	ss.path = db != NULL ? db : cli_default_db();
	ss.readonly = true;
	/* Chains are read device by device, each message right after its
	 * base: a few entries, but room for the largest containers. */
	ss.archive_cache_entries = 4;
	ss.archive_cache_bytes = 256u << 20;
	if (!db_target_is_postgresql(ss.path) && !g_file_test(ss.path, G_FILE_TEST_EXISTS)) {
		fprintf(stderr, "snapkeep verify: %s: no such database\n", ss.path);
		g_ptr_array_unref(problems);
		return CLI_EX_NOINPUT;
	}
	if (store_open(&ss, &store, &error) < 0) {
		fprintf(stderr, "snapkeep verify: %s\n", error);
		g_free(error);
		g_ptr_array_unref(problems);
		return 1;
	}

	gint64 started = g_get_monotonic_time();
	sql_problem = verify_quick_check(store_db(store));
	if (db_engine(store_db(store)) == DB_ENGINE_POSTGRESQL)
		db_check = verify_pg_checksums(store_db(store));
	else
		db_check = g_strdup(sql_problem == NULL ? "quick_check ok" : "quick_check FAILED");
	if (store_archive_verify(store, &vs, problems, VERIFY_MAX_LISTED, &error) < 0) {
		fprintf(stderr, "snapkeep verify: %s\n", error);
		g_free(error);
		ret = 1;
		goto out;
	}
	for (guint i = 0; i < problems->len; i++)
		printf("damaged: %s\n", (const char *)g_ptr_array_index(problems, i));
	if (vs.damaged > problems->len)
		printf("damaged: ... and %" G_GUINT64_FORMAT " more\n", vs.damaged - problems->len);
	if (sql_problem != NULL)
		printf("database: PRAGMA quick_check: %s\n", sql_problem);
	if (vs.damaged > 0 || sql_problem != NULL)
		ret = 1;
	if (!quiet) {
		g_autofree char *raw = g_format_size(vs.raw_bytes);
		printf("verify: %s: %" G_GUINT64_FORMAT " messages: %" G_GUINT64_FORMAT
		       " verified (%s raw), %" G_GUINT64_FORMAT " pruned, %" G_GUINT64_FORMAT
		       " damaged; database %s; %.2f s\n",
		       ret == 0 ? "ok" : "DAMAGED", vs.messages, vs.verified, raw, vs.pruned,
		       vs.damaged, db_check,
		       (double)(g_get_monotonic_time() - started) / 1e6);
		if (vs.plain_parsed > 0)
			printf("verify: %" G_GUINT64_FORMAT
			       " parsed messages are still in plain form"
			       " (snapkeep prune repacks them)\n",
			       vs.plain_parsed);
	}
out:
	g_free(db_check);
	g_free(sql_problem);
	g_ptr_array_unref(problems);
	store_free(&store);
	return ret;
}
