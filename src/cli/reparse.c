/* reparse.c: `snapkeep reparse [--all | --failed | --id N]`: runs the
 * current parser over archived raw messages through the funnel's workers
 * and commits the results idempotently: a snapshot already stored stays one
 * snapshot, known events are not stored again.  Use after a parser upgrade
 * (--all) or to retry messages kept as failed (--failed, the default). */
#include "config.h"

#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "intake/intake.h"

int
cli_reparse(int argc, char **argv)
{
	g_autofree gchar *db = NULL;
	gboolean all = FALSE, failed = FALSE, quiet = FALSE;
	gint64 one = 0;
	gint workers = 0;
	GOptionEntry entries[] = {
		{ "db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file or postgresql:// URL", "FILE|URL" },
		{ "all", 'a', 0, G_OPTION_ARG_NONE, &all, "every archived message", NULL },
		{ "failed", 'f', 0, G_OPTION_ARG_NONE, &failed, "messages that failed to parse (default)", NULL },
		{ "id", 'i', 0, G_OPTION_ARG_INT64, &one, "one message, by its id", "ID" },
		{ "parse-workers", 0, 0, G_OPTION_ARG_INT, &workers, "parse worker processes (default: CPUs)", "N" },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no summary line", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	GOptionContext *octx = g_option_context_new("- parse archived messages again");
	GError *gerr = NULL;
	struct intake_settings is;
	struct intake *intake = NULL;
	char *error = NULL;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep reparse: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		return CLI_EX_USAGE;
	}
	g_option_context_free(octx);
	if ((all ? 1 : 0) + (failed ? 1 : 0) + (one > 0 ? 1 : 0) > 1 || argc > 1) {
		fprintf(stderr, "snapkeep reparse: choose one of --all, --failed, --id N\n");
		return CLI_EX_USAGE;
	}
	intake_settings_default(&is);
	is.db_path = db != NULL ? db : cli_default_db();
	if (!db_target_is_postgresql(is.db_path) && !g_file_test(is.db_path, G_FILE_TEST_EXISTS)) {
		fprintf(stderr, "snapkeep reparse: %s: no such database\n", is.db_path);
		return CLI_EX_NOINPUT;
	}
	is.parse_workers = workers > 0 ? (unsigned)workers : MAX(1u, g_get_num_processors());
	if (intake_open(&is, &intake, &error) < 0) {
		fprintf(stderr, "snapkeep reparse: %s\n", error);
		g_free(error);
		return CLI_EX_TEMPFAIL;
	}
	gint64 started = g_get_monotonic_time();
	struct intake_stats before, after;
	intake_get_stats(intake, &before);

	/* Read the ids through a separate read-only connection, in pages. */
	struct store *reader = NULL;
	struct store_settings ss;
	store_settings_default(&ss);
	ss.path = is.db_path;
	ss.readonly = true;
	int ret = CLI_EX_OK;
	unsigned queued = 0;
	if (store_open(&ss, &reader, &error) < 0) {
		fprintf(stderr, "snapkeep reparse: %s\n", error);
		g_free(error);
		intake_free(&intake);
		return CLI_EX_TEMPFAIL;
	}
	if (one > 0) {
		GBytes *raw = NULL;
		if (store_message_get(reader, one, &raw, &error) < 0) {
			fprintf(stderr, "snapkeep reparse: message %lld: %s\n", (long long)one, error);
			g_free(error);
			ret = 1;
		} else {
			g_bytes_unref(raw);
			intake_queue_reparse(intake, &one, 1);
			queued = 1;
		}
	} else {
		GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
		int64_t last = 0;
		for (;;) {
			g_array_set_size(ids, 0);
			if (store_message_list(reader, all ? STORE_SELECT_ALL : STORE_SELECT_FAILED, last,
					       1000, ids, &error) < 0) {
				fprintf(stderr, "snapkeep reparse: %s\n", error);
				g_clear_pointer(&error, g_free);
				ret = CLI_EX_SOFTWARE;
				break;
			}
			if (ids->len == 0)
				break;
			intake_queue_reparse(intake, (const int64_t *)(void *)ids->data, ids->len);
			queued += ids->len;
			last = g_array_index(ids, int64_t, ids->len - 1);
			/* Bound the queue: let the workers catch up every page. */
			intake_drain(intake, 0);
		}
		g_array_free(ids, TRUE);
	}
	store_free(&reader);
	intake_drain(intake, 0);
	intake_get_stats(intake, &after);
	intake_free(&intake);
	double secs = (g_get_monotonic_time() - started) / 1e6;
	if (!quiet)
		printf("reparse: %u messages in %.2f s: %llu stored, %llu duplicate, "
		       "%llu not-snapshot, %llu failed\n",
		       queued, secs, (unsigned long long)(after.parsed_stored - before.parsed_stored),
		       (unsigned long long)(after.parsed_duplicate - before.parsed_duplicate),
		       (unsigned long long)(after.parsed_not_snapshot - before.parsed_not_snapshot),
		       (unsigned long long)(after.parsed_failed - before.parsed_failed));
	return ret;
}
