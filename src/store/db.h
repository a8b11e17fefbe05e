/* db.h: one SQL interface over the two engines snapkeep stores in:
 * SQLite (embedded, the default) and PostgreSQL (libpq, for several intake
 * nodes sharing one store).
 *
 * The calls mirror SQLite's C interface (prepare, bind, step, column,
 * reset, finalize; the same result and type codes), so that the code above
 * reads as it always did and the SQLite engine is a thin pass-through.
 * On PostgreSQL:
 *  - parameters are written as in SQLite (? and ?NNN) and become $NNN;
 *    "BEGIN IMMEDIATE" becomes "BEGIN"; everything else in the SQL text is
 *    taken as it is: dialect differences are chosen by the caller with
 *    db_engine() (two-argument MIN/MAX, strftime, ...);
 *  - integers are sent as int8, doubles as float8, blobs as binary bytea;
 *    text and NULL as untyped literals, typed by their context (write
 *    CAST(?1 AS TEXT) IS NULL where nothing else types one), a number the
 *    SQL skips as text; text that is not UTF-8 (PostgreSQL refuses it, SQLite
 *    keeps any bytes) goes with U+FFFD in place of the bad bytes;
 *  - a statement's first step runs it and fetches all of its rows (several
 *    statements of one connection may be stepped interleaved, as in
 *    SQLite); a query that could return many large rows must be paged by
 *    the caller (keyset: WHERE id > ? ORDER BY id LIMIT ?);
 *  - statements are prepared on the server once per connection and SQL
 *    text (at most DB_PG_PREPARED_MAX of them; the rest run unnamed);
 *  - error classes map to codes: integrity violations DB_CONSTRAINT,
 *    serialization failures, deadlocks and lock timeouts DB_BUSY; after an
 *    error inside a transaction PostgreSQL refuses everything until
 *    ROLLBACK, so callers roll back on any error (as snapkeep's do on
 *    SQLite too);
 *  - a connection the server dropped is opened again before the next
 *    statement (session state, advisory locks included, is gone with it),
 *    and a BEGIN or query that found it dropped outside a transaction runs
 *    once more. */
#ifndef SK_STORE_DB_H
#define SK_STORE_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum db_engine {
	DB_ENGINE_SQLITE,
	DB_ENGINE_POSTGRESQL,
};

/* Result codes: SQLite's values. */
enum {
	DB_OK = SQLITE_OK,
	DB_ERROR = SQLITE_ERROR,
	DB_BUSY = SQLITE_BUSY,
	DB_LOCKED = SQLITE_LOCKED,
	DB_CONSTRAINT = SQLITE_CONSTRAINT,
	DB_ROW = SQLITE_ROW,
	DB_DONE = SQLITE_DONE,
};

/* Column types: SQLite's values. */
enum {
	DB_INTEGER = SQLITE_INTEGER,
	DB_FLOAT = SQLITE_FLOAT,
	DB_TEXT = SQLITE_TEXT,
	DB_BLOB = SQLITE_BLOB,
	DB_NULL = SQLITE_NULL,
};

#define DB_STATIC SQLITE_STATIC
#define DB_TRANSIENT SQLITE_TRANSIENT

/* Server-side prepared statements kept per PostgreSQL connection. */
#define DB_PG_PREPARED_MAX 256

struct db;
struct db_stmt;

/* A store location: a PostgreSQL URL (postgresql:// or postgres://, the
 * libpq connection URI) or else a SQLite file path. */
bool db_target_is_postgresql(const char *target);
/* The target as logs and messages show it: a URL without its password
 * (and other options); a file path as it is.  g_free. */
char *db_target_display(const char *target);

struct db_open_settings {
	const char *target;          /* file path or postgresql:// URL */
	bool readonly;
	bool create;                 /* SQLite: create the file if missing */
	int busy_timeout_ms;         /* SQLite: busy timeout; PostgreSQL: lock_timeout (0: none) */
	const char *password_file;   /* PostgreSQL: a file whose first line is the password (NULL: libpq's PGPASSWORD, ~/.pgpass) */
	const char *application_name;/* PostgreSQL: shown in pg_stat_activity (NULL: "snapkeep") */
};

/* The PostgreSQL password of connections whose settings name no
 * password_file (the daemon reads its [store] password_file once at start,
 * before it drops privileges).  NULL: libpq's own ways. */
void db_set_default_password(const char *password);

/* Opens a connection.  0, or -1 with *error_r. */
int db_open(const struct db_open_settings *settings, struct db **db_r, char **error_r);
/* Finalizes the statements still open and closes the connection. */
void db_close(struct db **db);

enum db_engine db_engine(struct db *db);
/* The target without a password (for logs and messages). */
const char *db_display_name(struct db *db);
/* The underlying handles (engine-specific code only: backups, PRAGMAs). */
sqlite3 *db_sqlite(struct db *db);
struct pg_conn *db_pg(struct db *db);

const char *db_errmsg(struct db *db);
int db_errcode(struct db *db);
/* The code of the last statement that failed (step or exec) since the
 * previous call, then DB_OK: what a caller decides a retry on, after its
 * ROLLBACK has succeeded (and set db_errcode back to DB_OK). */
int db_take_failure(struct db *db);

/* Runs one or more statements without parameters or results.  errmsg_r
 * (may be NULL) receives the error, g_free'd by the caller. */
int db_exec(struct db *db, const char *sql, char **errmsg_r);

int db_prepare(struct db *db, const char *sql, struct db_stmt **stmt_r);
int db_finalize(struct db_stmt *stmt);       /* accepts NULL */
int db_reset(struct db_stmt *stmt);
int db_clear_bindings(struct db_stmt *stmt);
int db_step(struct db_stmt *stmt);
struct db *db_stmt_db(struct db_stmt *stmt);
/* Whether the statement has been stepped and not yet reset or run to the end. */
bool db_stmt_busy(struct db_stmt *stmt);
/* Resets every statement of the connection that is busy. */
void db_reset_all(struct db *db);

int db_bind_parameter_count(struct db_stmt *stmt);
int db_bind_int64(struct db_stmt *stmt, int i, int64_t value);
int db_bind_int(struct db_stmt *stmt, int i, int value);
int db_bind_double(struct db_stmt *stmt, int i, double value);
int db_bind_text(struct db_stmt *stmt, int i, const char *text, int len, void (*destroy)(void *));
int db_bind_blob64(struct db_stmt *stmt, int i, const void *data, uint64_t len, void (*destroy)(void *));
int db_bind_null(struct db_stmt *stmt, int i);

int db_column_count(struct db_stmt *stmt);
const char *db_column_name(struct db_stmt *stmt, int i);
int db_column_type(struct db_stmt *stmt, int i);
int64_t db_column_int64(struct db_stmt *stmt, int i);
int db_column_int(struct db_stmt *stmt, int i);
double db_column_double(struct db_stmt *stmt, int i);
const unsigned char *db_column_text(struct db_stmt *stmt, int i);
const void *db_column_blob(struct db_stmt *stmt, int i);
int db_column_bytes(struct db_stmt *stmt, int i);

/* Rows changed by the last INSERT, UPDATE or DELETE; all since opening. */
int64_t db_changes(struct db *db);
int64_t db_total_changes(struct db *db);
/* No transaction open. */
bool db_get_autocommit(struct db *db);

#endif
