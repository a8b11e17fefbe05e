/* prune.c: `snapkeep prune [--db FILE] [--days N] [--failed-days N]
 * [--dry-run]`: applies the retention of raw messages (store_prune): the raw
 * bytes of messages received more than N days ago are removed, the rows
 * parsed from them (devices, snapshots, counters, supplies, events) and
 * their intake_log history stay.  Failed and not-snapshot messages are kept
 * --failed-days (default 365; 0: forever), never less than N.  Delta chains
 * stay decodable (store.h).  Afterwards, messages left in plain form by an
 * interrupted repack are repacked.  Safe while snapkeepd runs: the work is
 * done in short transactions.  The database file does not shrink (SQLite
 * reuses the freed pages); `snapkeep backup` writes a compacted copy. */
#include "config.h"

#include "cli/cli.h"

#include <stdio.h>

#include "store/store.h"
#include "util/sktime.h"

int
cli_prune(int argc, char **argv)
{
	g_autofree gchar *db = NULL, *now_text = NULL;
	gint days = -1, failed_days = -1;
	gboolean dry_run = FALSE, quiet = FALSE;
	GOptionEntry entries[] = {
	    {"db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file or postgresql:// URL", "FILE|URL"},
	    {"days", 0, 0, G_OPTION_ARG_INT, &days,
	     "keep raw messages N days (0: forever, the default)", "N"},
	    {"failed-days", 0, 0, G_OPTION_ARG_INT, &failed_days,
	     "keep failed and not-snapshot messages N days (default 365; 0: forever)", "N"},
	    {"dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "only say what would be pruned", NULL},
	    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no summary line", NULL},
	    {"now", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &now_text,
	     "the current time (tests)", "UTC"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionContext *octx = g_option_context_new("- remove raw messages past their retention");
	GError *gerr = NULL;
	struct store_settings ss;
	struct store *store = NULL;
	struct store_prune_stats ps;
	char *error = NULL;
	char *raw = NULL, *stored = NULL;
	int64_t now = sk_time_now();
	int ret = CLI_EX_OK;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep prune: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		return CLI_EX_USAGE;
	}
	g_option_context_free(octx);
	if (argc > 1 || days < -1 || failed_days < -1) {
		fprintf(stderr,
			"snapkeep prune: no arguments; --days and --failed-days take N >= 0\n");
		return CLI_EX_USAGE;
	}
	if (now_text != NULL && sk_time_parse_utc(now_text, &now) < 0) {
		fprintf(stderr, "snapkeep prune: --now: not a UTC time: %s\n", now_text);
		return CLI_EX_USAGE;
	}
	store_settings_default(&ss);
	ss.path = db != NULL ? db : cli_default_db();
	if (days >= 0)
		ss.retention_days = (unsigned)days;
	if (failed_days >= 0)
		ss.retention_failed_days = (unsigned)failed_days;
	if (ss.retention_days == 0) {
		if (!quiet)
			printf("prune: retention is off (--days N); nothing to do\n");
		return CLI_EX_OK;
	}
	if (!db_target_is_postgresql(ss.path) && !g_file_test(ss.path, G_FILE_TEST_EXISTS)) {
		fprintf(stderr, "snapkeep prune: %s: no such database\n", ss.path);
		return CLI_EX_NOINPUT;
	}
	if (store_open(&ss, &store, &error) < 0) {
		fprintf(stderr, "snapkeep prune: %s\n", error);
		g_free(error);
		return CLI_EX_TEMPFAIL;
	}

	gint64 started = g_get_monotonic_time();
	if (store_prune(store, now, dry_run, &ps, &error) < 0) {
		fprintf(stderr, "snapkeep prune: %s (what was pruned so far stays pruned)\n",
			error);
		g_clear_pointer(&error, g_free);
		ret = CLI_EX_TEMPFAIL;
		goto out;
	}
	double secs = (double)(g_get_monotonic_time() - started) / 1e6;
	char failed_text[32];
	raw = g_format_size(ps.pruned_raw_bytes);
	stored = g_format_size(ps.pruned_stored_bytes);
	if (ss.retention_failed_days == 0)
		g_strlcpy(failed_text, "forever", sizeof(failed_text));
	else
		g_snprintf(failed_text, sizeof(failed_text), "%u days",
			   MAX(ss.retention_days, ss.retention_failed_days));
	if (dry_run) {
		if (!quiet)
			printf(
			    "prune (dry run): retention %u days (failed and not-snapshot: %s): "
			    "would prune %" G_GUINT64_FORMAT
			    " messages (%s raw, %s in the archive) and re-encode %" G_GUINT64_FORMAT
			    " as keyframes\n",
			    ss.retention_days, failed_text, ps.pruned, raw, stored, ps.reencoded);
		goto out;
	}
	unsigned repacked = 0;
	if (store_repack_backlog(store, 0, &repacked, &error) < 0) {
		fprintf(stderr, "snapkeep prune: repacking: %s\n", error);
		g_clear_pointer(&error, g_free);
		ret = CLI_EX_TEMPFAIL;
	}
	if (!quiet)
		printf("prune: retention %u days (failed and not-snapshot: %s): %" G_GUINT64_FORMAT
		       " messages pruned (%s raw, %s in the archive), %" G_GUINT64_FORMAT
		       " re-encoded as keyframes, %" G_GUINT64_FORMAT
		       " kept as bases, %u repacked; %.2f s\n",
		       ss.retention_days, failed_text, ps.pruned, raw, stored, ps.reencoded,
		       ps.kept_as_base, repacked, secs);
out:
	g_free(raw);
	g_free(stored);
	store_free(&store);
	return ret;
}
