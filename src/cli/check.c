/* check.c: `snapkeep check`, a monitoring plugin in the Nagios / Icinga /
 * Zabbix convention: one status line with performance data, then one line
 * per problem; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * Problems, each with thresholds as options:
 *  - supplies at or below --warning-level / --critical-level percent, or
 *    whose device says low (warning) or out/empty (critical);
 *  - devices overdue: no snapshot for --overdue-factor times their own usual
 *    interval (from their snapshot history), or --stale-hours when the
 *    history is too short to tell;
 *  - new error events: entries of a device's error (or legacy system) log
 *    that occurred in the last --errors-hours hours.
 * Everything is read from the public views, read-only. */
#include "config.h"

#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "util/sktime.h"

enum check_state { CHECK_OK = 0, CHECK_WARNING = 1, CHECK_CRITICAL = 2, CHECK_UNKNOWN = 3 };

static const char *const check_state_names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

struct check_ctx {
	enum check_state state;
	GString *details;
	unsigned devices, supplies_low, supplies_out, overdue, new_errors;
};

static void
check_raise(struct check_ctx *c, enum check_state s)
{
	if (s > c->state)
		c->state = s;
}

static void
check_detail(struct check_ctx *c, enum check_state s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
check_detail(struct check_ctx *c, enum check_state s, const char *fmt, ...)
{
	va_list ap;
	char *line;
	va_start(ap, fmt);
	line = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* Device strings never break the one-line-per-problem format. */
	g_strdelimit(line, "\r\n|", ' ');
	g_string_append_printf(c->details, "%s: %s\n", check_state_names[s], line);
	g_free(line);
	check_raise(c, s);
}

static int
check_prepare(struct store *store, const char *sql, struct db_stmt **stmt_r)
{
	if (db_prepare(store_db(store), sql, stmt_r) != DB_OK) {
		printf("SNAPKEEP UNKNOWN - query failed: %s\n", db_errmsg(store_db(store)));
		return -1;
	}
	return 0;
}

static const char *
check_text(struct db_stmt *stmt, int col)
{
	const char *v = (const char *)db_column_text(stmt, col);
	return v != NULL ? v : "-";
}

int
cli_check(int argc, char **argv)
{
	g_autofree gchar *db = NULL, *serial = NULL, *now_text = NULL;
	gint warn_level = 20, crit_level = 5, errors_hours = 24;
	gdouble overdue_factor = 2.0;
	gint stale_hours = 192;
	gboolean no_supplies = FALSE, no_overdue = FALSE, no_errors = FALSE;
	GOptionEntry entries[] = {
		{ "db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file or postgresql:// URL", "FILE|URL" },
		{ "serial", 's', 0, G_OPTION_ARG_STRING, &serial, "check one device only", "SERIAL" },
		{ "warning-level", 'w', 0, G_OPTION_ARG_INT, &warn_level, "supply level for WARNING, percent (default 20)", "PCT" },
		{ "critical-level", 'c', 0, G_OPTION_ARG_INT, &crit_level, "supply level for CRITICAL, percent (default 5)", "PCT" },
		{ "overdue-factor", 0, 0, G_OPTION_ARG_DOUBLE, &overdue_factor, "overdue after this many usual intervals (default 2)", "F" },
		{ "stale-hours", 0, 0, G_OPTION_ARG_INT, &stale_hours, "overdue after this long when the interval is unknown (default 192)", "H" },
		{ "errors-hours", 0, 0, G_OPTION_ARG_INT, &errors_hours, "error events this recent are new (default 24)", "H" },
		{ "no-supplies", 0, 0, G_OPTION_ARG_NONE, &no_supplies, "do not check supplies", NULL },
		{ "no-overdue", 0, 0, G_OPTION_ARG_NONE, &no_overdue, "do not check for overdue devices", NULL },
		{ "no-errors", 0, 0, G_OPTION_ARG_NONE, &no_errors, "do not check error events", NULL },
		{ "now", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &now_text, "the current time (tests)", "UTC" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	GOptionContext *octx = g_option_context_new("- monitoring plugin: low supplies, overdue devices, new errors");
	GError *gerr = NULL;
	struct store *store = NULL;
	struct store_settings ss;
	char *error = NULL;
	struct check_ctx c = { .state = CHECK_OK };
	struct db_stmt *stmt = NULL;
	int64_t now;

	g_option_context_set_description(octx, "Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.");
	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		printf("SNAPKEEP UNKNOWN - %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		return CHECK_UNKNOWN;
	}
	g_option_context_free(octx);
	if (argc > 1 || crit_level > warn_level || overdue_factor <= 0 || stale_hours <= 0 ||
	    errors_hours < 0) {
		printf("SNAPKEEP UNKNOWN - bad arguments (see snapkeep check --help)\n");
		return CHECK_UNKNOWN;
	}
	now = sk_time_now();
	if (now_text != NULL && sk_time_parse_utc(now_text, &now) < 0) {
		printf("SNAPKEEP UNKNOWN - --now: not a time: %s\n", now_text);
		return CHECK_UNKNOWN;
	}
	const char *path = db != NULL ? db : cli_default_db();
	if (!db_target_is_postgresql(path) && !g_file_test(path, G_FILE_TEST_EXISTS)) {
		printf("SNAPKEEP UNKNOWN - %s: no such database\n", path);
		return CHECK_UNKNOWN;
	}
	store_settings_default(&ss);
	ss.path = path;
	ss.readonly = true;
	if (store_open(&ss, &store, &error) < 0) {
		printf("SNAPKEEP UNKNOWN - %s\n", error);
		g_free(error);
		return CHECK_UNKNOWN;
	}
	c.details = g_string_new(NULL);

	if (check_prepare(store, "SELECT count(*) FROM device_status WHERE CAST(?1 AS TEXT) IS NULL OR serial = ?1", &stmt) < 0)
		goto unknown;
	db_bind_text(stmt, 1, serial, -1, DB_TRANSIENT);
	if (db_step(stmt) == DB_ROW)
		c.devices = (unsigned)db_column_int(stmt, 0);
	db_finalize(stmt);
	if (serial != NULL && c.devices == 0) {
		printf("SNAPKEEP UNKNOWN - no device with serial %s\n", serial);
		goto unknown;
	}

	if (!no_supplies) {
		if (check_prepare(store,
				  "SELECT serial, supply, type, color, level_percent, state FROM supply_status"
				  " WHERE (CAST(?1 AS TEXT) IS NULL OR serial = ?1)"
				  " AND (level_percent <= ?2 OR state IN ('low', 'out', 'empty'))"
				  " ORDER BY level_percent NULLS FIRST, serial, supply", &stmt) < 0)
			goto unknown;
		db_bind_text(stmt, 1, serial, -1, DB_TRANSIENT);
		db_bind_int(stmt, 2, warn_level);
		while (db_step(stmt) == DB_ROW) {
			bool has_level = db_column_type(stmt, 4) != DB_NULL;
			int level = db_column_int(stmt, 4);
			const char *state = check_text(stmt, 5);
			bool critical = (has_level && level <= crit_level) || strcmp(state, "out") == 0 ||
					strcmp(state, "empty") == 0;
			if (critical)
				c.supplies_out++;
			else
				c.supplies_low++;
			check_detail(&c, critical ? CHECK_CRITICAL : CHECK_WARNING,
				     "%s supply %s (%s %s) at %s%% state %s", check_text(stmt, 0),
				     check_text(stmt, 1), check_text(stmt, 3), check_text(stmt, 2),
				     has_level ? check_text(stmt, 4) : "?", state);
		}
		db_finalize(stmt);
	}

	if (!no_overdue) {
		/* Usual interval: the mean gap between the device's snapshots,
		 * (last - first) / (count - 1).  The first and the last are
		 * each one step along snapshots' (device_id, taken_utc) index
		 * and the count is read from that index alone: min() and
		 * max() of taken_unix read every snapshot row of the fleet,
		 * and one device's rows lie on as many pages as it has
		 * snapshots once a fleet's mail interleaves (PostgreSQL, 150
		 * devices x 365 days: 55 700 buffers a run; 2 100 so). */
		if (check_prepare(store,
				  "SELECT d.serial, d.last_snapshot_utc, d.last_received_utc,"
				  " ((SELECT s.taken_unix FROM snapshots s WHERE s.device_id = d.device_id"
				  "   ORDER BY s.taken_utc DESC LIMIT 1)"
				  "  - (SELECT s.taken_unix FROM snapshots s WHERE s.device_id = d.device_id"
				  "   ORDER BY s.taken_utc LIMIT 1))"
				  " / NULLIF((SELECT count(*) FROM snapshots s WHERE s.device_id = d.device_id) - 1, 0)"
				  " AS interval_s"
				  " FROM device_status d WHERE CAST(?1 AS TEXT) IS NULL OR d.serial = ?1 ORDER BY d.serial",
				  &stmt) < 0)
			goto unknown;
		db_bind_text(stmt, 1, serial, -1, DB_TRANSIENT);
		while (db_step(stmt) == DB_ROW) {
			int64_t last = 0;
			if (sk_time_parse_utc(check_text(stmt, 1), &last) < 0)
				continue;
			bool known = db_column_type(stmt, 3) != DB_NULL &&
				     db_column_int64(stmt, 3) > 0;
			double interval = known ? (double)db_column_int64(stmt, 3) : 0;
			double limit = known ? overdue_factor * interval : stale_hours * 3600.0;
			double age = (double)(now - last);
			if (age <= limit)
				continue;
			c.overdue++;
			if (known)
				check_detail(&c, CHECK_WARNING,
					     "%s overdue: last snapshot %s, %.1f days ago (usually every %.1f days)",
					     check_text(stmt, 0), check_text(stmt, 1), age / 86400.0,
					     interval / 86400.0);
			else
				check_detail(&c, CHECK_WARNING,
					     "%s overdue: last snapshot %s, %.1f days ago (more than %d hours)",
					     check_text(stmt, 0), check_text(stmt, 1), age / 86400.0, stale_hours);
		}
		db_finalize(stmt);
	}

	if (!no_errors) {
		char since[SK_UTC_SIZE];
		sk_time_format_utc(now - (int64_t)errors_hours * 3600, since);
		/* One device's events by (device_id, occurred_utc), the
		 * fleet's by occurred_utc alone (events_occurred): a
		 * statement for either case, so that each gets its index. */
#define CHECK_ERRORS_SQL(WHERE) \
	"SELECT serial, code, occurred_utc, description FROM event_log WHERE " WHERE \
	" log IN ('error', 'system') AND occurred_utc >= ?1 ORDER BY occurred_utc DESC NULLS LAST"
		if (check_prepare(store, serial != NULL ? CHECK_ERRORS_SQL("serial = ?2 AND")
							: CHECK_ERRORS_SQL(""), &stmt) < 0)
			goto unknown;
#undef CHECK_ERRORS_SQL
		db_bind_text(stmt, 1, since, -1, DB_TRANSIENT);
		if (serial != NULL)
			db_bind_text(stmt, 2, serial, -1, DB_TRANSIENT);
		while (db_step(stmt) == DB_ROW) {
			c.new_errors++;
			check_detail(&c, CHECK_WARNING, "%s error %s at %s: %s", check_text(stmt, 0),
				     check_text(stmt, 1), check_text(stmt, 2), check_text(stmt, 3));
		}
		db_finalize(stmt);
	}

	printf("SNAPKEEP %s - %u devices, %u supplies low, %u out, %u overdue, %u new errors"
	       " | devices=%u supplies_low=%u;;;0 supplies_out=%u;;;0 overdue=%u;;;0 new_errors=%u;;;0\n",
	       check_state_names[c.state], c.devices, c.supplies_low, c.supplies_out, c.overdue,
	       c.new_errors, c.devices, c.supplies_low, c.supplies_out, c.overdue, c.new_errors);
	fputs(c.details->str, stdout);
	g_string_free(c.details, TRUE);
	store_free(&store);
	return c.state;
unknown:
	g_string_free(c.details, TRUE);
	store_free(&store);
	return CHECK_UNKNOWN;
}
