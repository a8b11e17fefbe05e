/* state.c: the pollers' checkpoints in the database (schema/003-poll.sql),
 * through the poller's own store connection (store_db).
 *
 * These rows only save work: a poller acts on a message after the funnel
 * committed it, so a checkpoint that is lost or behind means a message is
 * fetched again and answered "duplicate"; a checkpoint is never ahead of
 * the actions (it is written after them).  SQL is prepared with bound
 * parameters. */
#include "config.h"

#include "poll/poll-private.h"

#include <string.h>

#include "util/sktime.h"

static int
db_fail(struct store *store, const char *what, char **error_r)
{
	*error_r = g_strdup_printf("poll state: %s: %s", what, db_errmsg(store_db(store)));
	return -1;
}

static struct db_stmt *
prepare(struct store *store, const char *sql, char **error_r)
{
	struct db_stmt *stmt = NULL;

	if (db_prepare(store_db(store), sql, &stmt) != DB_OK) {
		db_fail(store, "prepare", error_r);
		return NULL;
	}
	return stmt;
}

static void
now_utc(char utc[SK_UTC_SIZE])
{
	sk_time_format_utc(sk_time_now(), utc);
}

int
poll_state_mailbox(struct store *store, const struct poll_settings *settings, int64_t *id_r,
		   char **error_r)
{
	char utc[SK_UTC_SIZE];
	struct db_stmt *stmt;
	int ret = -1;

	now_utc(utc);
	stmt =
	    prepare(store,
		    "INSERT INTO poll_mailboxes (mailbox, poller, updated_utc) VALUES (?1, ?2, ?3) "
		    "ON CONFLICT (mailbox) DO UPDATE SET poller = excluded.poller RETURNING id",
		    error_r);
	if (stmt == NULL)
		return -1;
	db_bind_text(stmt, 1, settings->key, -1, DB_TRANSIENT);
	db_bind_text(stmt, 2, settings->name, -1, DB_TRANSIENT);
	db_bind_text(stmt, 3, utc, -1, DB_TRANSIENT);
	if (db_step(stmt) != DB_ROW) {
		db_fail(store, "mailbox row", error_r);
		goto out;
	}
	*id_r = db_column_int64(stmt, 0);
	ret = 0;
out:
	db_finalize(stmt);
	return ret;
}

int
poll_state_imap_get(struct store *store, int64_t mailbox_id, uint64_t *uidvalidity_r,
		    uint64_t *last_uid_r, char **error_r)
{
	struct db_stmt *stmt = prepare(
	    store, "SELECT uidvalidity, last_uid FROM poll_mailboxes WHERE id = ?1", error_r);
	int ret = -1;

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, mailbox_id);
	if (db_step(stmt) != DB_ROW) {
		db_fail(store, "checkpoint", error_r);
		goto out;
	}
	*uidvalidity_r = (uint64_t)db_column_int64(stmt, 0);
	*last_uid_r = (uint64_t)db_column_int64(stmt, 1);
	ret = 0;
out:
	db_finalize(stmt);
	return ret;
}

int
poll_state_imap_set(struct store *store, int64_t mailbox_id, uint64_t uidvalidity,
		    uint64_t last_uid, char **error_r)
{
	char utc[SK_UTC_SIZE];
	struct db_stmt *stmt =
	    prepare(store,
		    "UPDATE poll_mailboxes SET uidvalidity = ?2, last_uid = ?3, updated_utc = ?4 "
		    "WHERE id = ?1",
		    error_r);
	int ret = 0;

	if (stmt == NULL)
		return -1;
	now_utc(utc);
	db_bind_int64(stmt, 1, mailbox_id);
	db_bind_int64(stmt, 2, (int64_t)uidvalidity);
	db_bind_int64(stmt, 3, (int64_t)last_uid);
	db_bind_text(stmt, 4, utc, -1, DB_TRANSIENT);
	if (db_step(stmt) != DB_DONE)
		ret = db_fail(store, "checkpoint update", error_r);
	db_finalize(stmt);
	return ret;
}

int
poll_state_seen_has(struct store *store, int64_t mailbox_id, const char *key, char **error_r)
{
	struct db_stmt *stmt =
	    prepare(store, "SELECT 1 FROM poll_seen WHERE mailbox_id = ?1 AND key = ?2", error_r);
	int r;

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, mailbox_id);
	db_bind_text(stmt, 2, key, -1, DB_TRANSIENT);
	r = db_step(stmt);
	db_finalize(stmt);
	if (r == DB_ROW)
		return 1;
	if (r == DB_DONE)
		return 0;
	return db_fail(store, "seen lookup", error_r);
}

int
poll_state_seen_add(struct store *store, int64_t mailbox_id, const struct poll_item *items,
		    size_t count, char **error_r)
{
	char utc[SK_UTC_SIZE];
	struct db_stmt *stmt = NULL;

	if (store_begin(store, error_r) < 0)
		return -1;
	stmt = prepare(store,
		       "INSERT INTO poll_seen (mailbox_id, key, message_id, taken_utc) VALUES (?1, "
		       "?2, ?3, ?4) "
		       "ON CONFLICT DO NOTHING",
		       error_r);
	if (stmt == NULL)
		goto fail;
	now_utc(utc);
	for (size_t i = 0; i < count; i++) {
		if (items[i].fate == POLL_FATE_NONE || items[i].key == NULL)
			continue;
		db_reset(stmt);
		db_bind_int64(stmt, 1, mailbox_id);
		db_bind_text(stmt, 2, items[i].key, -1, DB_TRANSIENT);
		if (items[i].accept_result == 0)
			db_bind_int64(stmt, 3, items[i].receipt.message_id);
		else
			db_bind_null(stmt, 3);
		db_bind_text(stmt, 4, utc, -1, DB_TRANSIENT);
		if (db_step(stmt) != DB_DONE) {
			db_fail(store, "seen insert", error_r);
			goto fail;
		}
	}
	db_finalize(stmt);
	return store_commit(store, error_r);
fail:
	db_finalize(stmt);
	store_rollback(store);
	return -1;
}

int
poll_state_seen_sweep(struct store *store, int64_t mailbox_id, GHashTable *present, char **error_r)
{
	struct db_stmt *sel = NULL, *del = NULL;
	GPtrArray *gone = g_ptr_array_new_with_free_func(g_free);
	int ret = -1, r;

	sel = prepare(store, "SELECT key FROM poll_seen WHERE mailbox_id = ?1", error_r);
	if (sel == NULL)
		goto out;
	db_bind_int64(sel, 1, mailbox_id);
	while ((r = db_step(sel)) == DB_ROW) {
		const char *key = (const char *)db_column_text(sel, 0);
		if (key != NULL && !g_hash_table_contains(present, key))
			g_ptr_array_add(gone, g_strdup(key));
	}
	if (r != DB_DONE) {
		db_fail(store, "seen sweep", error_r);
		goto out;
	}
	if (gone->len == 0) {
		ret = 0;
		goto out;
	}
	if (store_begin(store, error_r) < 0)
		goto out;
	del = prepare(store, "DELETE FROM poll_seen WHERE mailbox_id = ?1 AND key = ?2", error_r);
	if (del == NULL) {
		store_rollback(store);
		goto out;
	}
	for (guint i = 0; i < gone->len; i++) {
		db_reset(del);
		db_bind_int64(del, 1, mailbox_id);
		db_bind_text(del, 2, g_ptr_array_index(gone, i), -1, DB_TRANSIENT);
		if (db_step(del) != DB_DONE) {
			db_fail(store, "seen delete", error_r);
			store_rollback(store);
			goto out;
		}
	}
	ret = store_commit(store, error_r);
out:
	db_finalize(sel);
	db_finalize(del);
	g_ptr_array_unref(gone);
	return ret;
}

int
poll_state_pass_done(struct store *store, int64_t mailbox_id, const struct poll_pass_stats *stats,
		     const char *error, char **error_r)
{
	char utc[SK_UTC_SIZE];
	struct db_stmt *stmt =
	    prepare(store,
		    "UPDATE poll_mailboxes SET taken = taken + ?2, duplicates = duplicates + ?3, "
		    "failed = failed + ?4, passes = passes + 1, updated_utc = ?5, "
		    "last_success_utc = CASE WHEN CAST(?6 AS TEXT) IS NULL THEN ?5 ELSE last_success_utc END, "
		    "last_error_utc = CASE WHEN CAST(?6 AS TEXT) IS NULL THEN last_error_utc ELSE ?5 END, "
		    "last_error = ?6 WHERE id = ?1",
		    error_r);
	int ret = 0;

	if (stmt == NULL)
		return -1;
	now_utc(utc);
	db_bind_int64(stmt, 1, mailbox_id);
	db_bind_int64(stmt, 2, stats->taken);
	db_bind_int64(stmt, 3, stats->duplicates);
	db_bind_int64(stmt, 4, stats->failed);
	db_bind_text(stmt, 5, utc, -1, DB_TRANSIENT);
	if (error != NULL)
		db_bind_text(stmt, 6, error, -1, DB_TRANSIENT);
	else
		db_bind_null(stmt, 6);
	if (db_step(stmt) != DB_DONE)
		ret = db_fail(store, "pass update", error_r);
	db_finalize(stmt);
	return ret;
}

int
poll_state_outcome(struct store *store, int64_t message_id, enum store_outcome *outcome_r,
		   char **error_r)
{
	static const struct {
		const char *name;
		enum store_outcome outcome;
	} names[] = {
	    {"pending", STORE_OUTCOME_PENDING},	    {"stored", STORE_OUTCOME_STORED},
	    {"duplicate", STORE_OUTCOME_DUPLICATE}, {"not-snapshot", STORE_OUTCOME_NOT_SNAPSHOT},
	    {"failed", STORE_OUTCOME_FAILED},
	};
	struct db_stmt *stmt = prepare(store, "SELECT outcome FROM messages WHERE id = ?1", error_r);
	int ret = -1;

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, message_id);
	if (db_step(stmt) != DB_ROW) {
		db_fail(store, "message outcome", error_r);
		goto out;
	}
	const char *text = (const char *)db_column_text(stmt, 0);
	*outcome_r = STORE_OUTCOME_PENDING;
	for (size_t i = 0; text != NULL && i < G_N_ELEMENTS(names); i++)
		if (strcmp(text, names[i].name) == 0)
			*outcome_r = names[i].outcome;
	ret = 0;
out:
	db_finalize(stmt);
	return ret;
}
