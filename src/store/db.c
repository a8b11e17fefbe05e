/* db.c: the SQL interface of db.h over SQLite and libpq. */
#include "config.h"

#include "store/db.h"

#include <errno.h>
#include <glib.h>
#include <libpq-fe.h>
#include <string.h>

/* PostgreSQL type oids (catalog/pg_type_d.h, stable across releases). */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17
#define PG_TEXTOID 25
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_OIDOID 26
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701
#define PG_NUMERICOID 1700

struct db {
	enum db_engine engine;
	char *display_name;
	sqlite3 *lite;
	PGconn *pg;
	GList *stmts;                 /* struct db_stmt, open ones */
	/* PostgreSQL */
	char *errmsg;
	int errcode;
	int64_t changes, total_changes;
	GHashTable *prepared;         /* "types\nsql" -> statement name */
	unsigned prepared_serial;
	char *setup_sql;              /* the session's settings, again after a reconnect */
	int failure;                  /* the last failed statement's code (db_take_failure) */
	unsigned reconnects;
};

struct pg_param {
	Oid type;
	int format;                   /* 0 text, 1 binary */
	char *value;                  /* NULL: SQL NULL */
	int len;
};

struct db_stmt {
	struct db *db;
	GList *link;
	sqlite3_stmt *lite;
	/* PostgreSQL */
	char *sql;                    /* with $NNN parameters */
	int nparams;
	struct pg_param *params;
	bool *unused;                 /* numbers the SQL skips (?1 and ?3 only: 2) */
	PGresult *res;
	int row, nrows;
	bool busy;
	unsigned char **blobs;        /* unescaped bytea of the current row, per column */
	size_t *blob_lens;
};

static char *default_password;

void
db_set_default_password(const char *password)
{
	if (default_password != NULL)
		memset(default_password, 0, strlen(default_password));
	g_free(default_password);
	default_password = g_strdup(password);
}

bool
db_target_is_postgresql(const char *target)
{
	return target != NULL &&
	       (g_str_has_prefix(target, "postgresql://") || g_str_has_prefix(target, "postgres://"));
}

/* --- PostgreSQL helpers ---------------------------------------------------------------- */

static void
pg_set_error(struct db *db, int code, const char *msg)
{
	g_free(db->errmsg);
	db->errmsg = g_strdup(msg != NULL ? msg : "error");
	g_strchomp(db->errmsg);
	db->errcode = code;
}

/* Maps a failed result's SQLSTATE to a code. */
static int
pg_result_code(const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (state == NULL)
		return DB_ERROR;
	if (g_str_has_prefix(state, "23"))
		return DB_CONSTRAINT;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
		return DB_BUSY;
	return DB_ERROR;
}

static int
pg_check(struct db *db, PGresult *res)
{
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
		db->errcode = DB_OK;
		return DB_OK;
	}
	pg_set_error(db, pg_result_code(res),
		     res != NULL && PQresultErrorMessage(res)[0] != '\0' ? PQresultErrorMessage(res)
									  : PQerrorMessage(db->pg));
	return db->errcode;
}

/* SQLite's parameters (? and ?NNN) to PostgreSQL's ($NNN); quoted strings,
 * quoted identifiers and comments are copied as they are.  A bare ? takes
 * the largest number so far plus one, as in SQLite. */
static char *
pg_translate(const char *sql, int *nparams_r, GArray *used)
{
	GString *out = g_string_sized_new(strlen(sql) + 16);
	int max = 0;
	const char *p = sql;

	if (g_ascii_strncasecmp(p, "BEGIN IMMEDIATE", 15) == 0 && (p[15] == '\0' || p[15] == ';')) {
		g_string_append(out, "BEGIN");
		p += 15;
	}
	while (*p != '\0') {
		if (*p == '\'' || *p == '"') {
			char q = *p;
			g_string_append_c(out, *p++);
			while (*p != '\0') {
				g_string_append_c(out, *p);
				if (*p++ == q) {
					if (*p == q) {
						g_string_append_c(out, *p++);
						continue;
					}
					break;
				}
			}
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				g_string_append_c(out, *p++);
		} else if (*p == '?') {
			int n;
			p++;
			if (g_ascii_isdigit(*p)) {
				char *end = NULL;
				n = (int)g_ascii_strtoll(p, &end, 10);
				p = end;
			} else {
				n = max + 1;
			}
			if (n > max)
				max = n;
			if (used != NULL && n > 0) {
				if ((guint)n > used->len)
					g_array_set_size(used, (guint)n);
				g_array_index(used, gboolean, n - 1) = TRUE;
			}
			g_string_append_printf(out, "$%d", n);
		} else {
			g_string_append_c(out, *p++);
		}
	}
	*nparams_r = max;
	return g_string_free(out, FALSE);
}

static void
pg_row_clear(struct db_stmt *st)
{
	if (st->blobs == NULL || st->res == NULL)
		return;
	for (int i = 0; i < PQnfields(st->res); i++) {
		PQfreemem(st->blobs[i]);
		st->blobs[i] = NULL;
	}
}

static void
pg_result_clear(struct db_stmt *st)
{
	pg_row_clear(st);
	g_free(st->blobs);
	g_free(st->blob_lens);
	st->blobs = NULL;
	st->blob_lens = NULL;
	PQclear(st->res);
	st->res = NULL;
	st->row = -1;
	st->nrows = 0;
}

static void
pg_param_clear(struct pg_param *p)
{
	g_free(p->value);
	memset(p, 0, sizeof(*p));
}

/* The statement's parameter types as a key prefix: a server-side prepared
 * statement has fixed parameter types. */
static char *
pg_prepared_key(struct db_stmt *st)
{
	GString *key = g_string_new(NULL);
	for (int i = 0; i < st->nparams; i++)
		g_string_append_printf(key, "%u,", (unsigned)st->params[i].type);
	g_string_append_c(key, '\n');
	g_string_append(key, st->sql);
	return g_string_free(key, FALSE);
}

/* A connection the server dropped (a restart, a failover to the standby,
 * an idle timeout) is opened again before the next statement: the
 * statement that found it broken failed (and with it the transaction it
 * was in, which the caller rolls back); session state goes with the old
 * connection (prepared statements, advisory locks: claims end, as they
 * should when their holder's session is gone). */
static int
pg_ensure(struct db *db)
{
	if (PQstatus(db->pg) == CONNECTION_OK)
		return 0;
	PQreset(db->pg);
	if (PQstatus(db->pg) != CONNECTION_OK) {
		pg_set_error(db, DB_ERROR, PQerrorMessage(db->pg));
		return -1;
	}
	g_hash_table_remove_all(db->prepared);
	db->reconnects++;
	PGresult *res = PQexec(db->pg, db->setup_sql);
	int rc = pg_check(db, res);
	PQclear(res);
	return rc == DB_OK ? 0 : -1;
}

/* Whether a statement may run again after its connection dropped: a
 * BEGIN or a query (a write outside a transaction may have committed just
 * before the drop, and is not repeated). */
static bool
pg_retryable(const char *sql)
{
	while (g_ascii_isspace(*sql))
		sql++;
	return g_ascii_strncasecmp(sql, "BEGIN", 5) == 0 || g_ascii_strncasecmp(sql, "SELECT", 6) == 0;
}

static int
pg_execute(struct db_stmt *st)
{
	struct db *db = st->db;
	const char **values = g_newa(const char *, st->nparams + 1);
	int *lengths = g_newa(int, st->nparams + 1);
	int *formats = g_newa(int, st->nparams + 1);
	Oid *types = g_newa(Oid, st->nparams + 1);
	const char *name = NULL;
	PGresult *res;
	int rc;
	bool retried = false;

retry:
	if (pg_ensure(db) < 0)
		return db->errcode;
	/* Outside a transaction a statement that finds the connection dropped
	 * runs again, once, on a new one. */
	bool idle = PQtransactionStatus(db->pg) == PQTRANS_IDLE && pg_retryable(st->sql);
	for (int i = 0; i < st->nparams; i++) {
		values[i] = st->params[i].value;
		lengths[i] = st->params[i].len;
		formats[i] = st->params[i].format;
		/* PostgreSQL must know the type of every parameter, even of
		 * one the SQL never mentions. */
		types[i] = st->params[i].type == 0 && st->unused[i] ? PG_TEXTOID : st->params[i].type;
		st->params[i].type = types[i];
	}
	char *key = pg_prepared_key(st);
	name = g_hash_table_lookup(db->prepared, key);
	if (name == NULL && g_hash_table_size(db->prepared) < DB_PG_PREPARED_MAX) {
		char *new_name = g_strdup_printf("sk%u", ++db->prepared_serial);
		res = PQprepare(db->pg, new_name, st->sql, st->nparams, types);
		if (pg_check(db, res) != DB_OK) {
			PQclear(res);
			g_free(new_name);
			g_free(key);
			if (idle && !retried && PQstatus(db->pg) == CONNECTION_BAD) {
				retried = true;
				goto retry;
			}
			return db->errcode;
		}
		PQclear(res);
		g_hash_table_insert(db->prepared, key, new_name);
		key = NULL;
		name = new_name;
	}
	g_free(key);
	if (name != NULL)
		res = PQexecPrepared(db->pg, name, st->nparams, values, lengths, formats, 0);
	else
		res = PQexecParams(db->pg, st->sql, st->nparams, types, values, lengths, formats, 0);
	rc = pg_check(db, res);
	if (rc != DB_OK) {
		PQclear(res);
		if (idle && !retried && PQstatus(db->pg) == CONNECTION_BAD) {
			retried = true;
			goto retry;
		}
		return rc;
	}
	st->res = res;
	st->nrows = PQntuples(res);
	st->row = -1;
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		const char *n = PQcmdTuples(res);
		if (n[0] != '\0') {
			db->changes = g_ascii_strtoll(n, NULL, 10);
			db->total_changes += db->changes;
		}
	} else {
		/* INSERT/UPDATE/DELETE ... RETURNING */
		const char *status = PQcmdStatus(res);
		if (g_str_has_prefix(status, "INSERT") || g_str_has_prefix(status, "UPDATE") ||
		    g_str_has_prefix(status, "DELETE")) {
			db->changes = g_ascii_strtoll(PQcmdTuples(res), NULL, 10);
			db->total_changes += db->changes;
		}
	}
	st->blobs = g_new0(unsigned char *, PQnfields(res) + 1);
	st->blob_lens = g_new0(size_t, PQnfields(res) + 1);
	return DB_OK;
}

static struct pg_param *
pg_param(struct db_stmt *st, int i)
{
	if (i < 1 || i > st->nparams)
		return NULL;
	pg_param_clear(&st->params[i - 1]);
	return &st->params[i - 1];
}

static bool
pg_in_row(struct db_stmt *st, int i)
{
	return st->res != NULL && st->row >= 0 && st->row < st->nrows && i >= 0 && i < PQnfields(st->res);
}

/* --- connections ---------------------------------------------------------------------- */

char *
db_target_display(const char *target)
{
	if (!db_target_is_postgresql(target))
		return g_strdup(target != NULL ? target : "");
	PQconninfoOption *opts = PQconninfoParse(target, NULL);
	if (opts == NULL)
		return g_strdup("postgresql://(not a valid URL)");
	GString *shown = g_string_new("postgresql://");
	const char *user = NULL, *host = NULL, *port = NULL, *dbname = NULL;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			dbname = o->val;
	}
	if (user != NULL)
		g_string_append_printf(shown, "%s@", user);
	g_string_append(shown, host != NULL ? host : "");
	if (port != NULL)
		g_string_append_printf(shown, ":%s", port);
	g_string_append_printf(shown, "/%s", dbname != NULL ? dbname : "");
	PQconninfoFree(opts);
	return g_string_free(shown, FALSE);
}

static int
pg_open(struct db *db, const struct db_open_settings *s, char **error_r)
{
	char *password = NULL;
	GError *gerr = NULL;
	PQconninfoOption *opts = PQconninfoParse(s->target, NULL);

	if (opts == NULL) {
		*error_r = g_strdup("not a valid postgresql:// URL");
		return -1;
	}
	PQconninfoFree(opts);
	db->display_name = db_target_display(s->target);

	if (s->password_file != NULL && s->password_file[0] != '\0') {
		if (!g_file_get_contents(s->password_file, &password, NULL, &gerr)) {
			*error_r = g_strdup_printf("password_file: %s", gerr->message);
			g_error_free(gerr);
			return -1;
		}
		password[strcspn(password, "\r\n")] = '\0';
	} else if (default_password != NULL) {
		password = g_strdup(default_password);
	}
	const char *keys[] = { "dbname", "application_name", "password", NULL };
	const char *vals[] = { s->target, s->application_name != NULL ? s->application_name : "snapkeep",
			       password, NULL };
	if (password == NULL)
		keys[2] = NULL;
	db->pg = PQconnectdbParams(keys, vals, 1);
	if (password != NULL) {
		memset(password, 0, strlen(password));
		g_free(password);
	}
	if (db->pg == NULL || PQstatus(db->pg) != CONNECTION_OK) {
		*error_r = g_strdup(db->pg != NULL ? PQerrorMessage(db->pg) : "out of memory");
		g_strchomp(*error_r);
		return -1;
	}
	GString *setup = g_string_new("SET client_min_messages = warning; SET TIME ZONE 'UTC';");
	if (s->busy_timeout_ms > 0)
		g_string_append_printf(setup, " SET lock_timeout = %d;", s->busy_timeout_ms);
	if (s->readonly)
		g_string_append(setup, " SET default_transaction_read_only = on;");
	PGresult *res = PQexec(db->pg, setup->str);
	db->setup_sql = g_string_free(setup, FALSE);
	if (pg_check(db, res) != DB_OK) {
		*error_r = g_strdup(db->errmsg);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	db->prepared = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return 0;
}

int
db_open(const struct db_open_settings *s, struct db **db_r, char **error_r)
{
	struct db *db = g_new0(struct db, 1);

	*db_r = NULL;
	if (db_target_is_postgresql(s->target)) {
		db->engine = DB_ENGINE_POSTGRESQL;
		if (pg_open(db, s, error_r) < 0)
			goto fail;
	} else {
		int flags = s->readonly ? SQLITE_OPEN_READONLY
					: (SQLITE_OPEN_READWRITE | (s->create ? SQLITE_OPEN_CREATE : 0));
		db->engine = DB_ENGINE_SQLITE;
		db->display_name = g_strdup(s->target);
		if (sqlite3_open_v2(s->target, &db->lite, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
			*error_r = g_strdup(db->lite != NULL ? sqlite3_errmsg(db->lite) : "out of memory");
			goto fail;
		}
		sqlite3_extended_result_codes(db->lite, 1);
		sqlite3_busy_timeout(db->lite, s->busy_timeout_ms);
	}
	*db_r = db;
	return 0;
fail:
	db_close(&db);
	return -1;
}

void
db_close(struct db **dbp)
{
	struct db *db = *dbp;

	if (db == NULL)
		return;
	*dbp = NULL;
	while (db->stmts != NULL)
		db_finalize(db->stmts->data);
	if (db->lite != NULL)
		sqlite3_close(db->lite);
	if (db->pg != NULL)
		PQfinish(db->pg);
	if (db->prepared != NULL)
		g_hash_table_destroy(db->prepared);
	g_free(db->errmsg);
	g_free(db->setup_sql);
	g_free(db->display_name);
	g_free(db);
}

enum db_engine
db_engine(struct db *db)
{
	return db->engine;
}

const char *
db_display_name(struct db *db)
{
	return db->display_name;
}

sqlite3 *
db_sqlite(struct db *db)
{
	return db->lite;
}

struct pg_conn *
db_pg(struct db *db)
{
	return db->pg;
}

const char *
db_errmsg(struct db *db)
{
	if (db->lite != NULL)
		return sqlite3_errmsg(db->lite);
	if (db->errmsg == NULL && db->pg != NULL && PQstatus(db->pg) != CONNECTION_OK)
		return PQerrorMessage(db->pg);
	return db->errmsg != NULL ? db->errmsg : "not an error";
}

int
db_errcode(struct db *db)
{
	if (db->lite != NULL)
		return sqlite3_errcode(db->lite) & 0xff;
	return db->errcode;
}

static int
exec_inner(struct db *db, const char *sql, char **errmsg_r)
{
	if (errmsg_r != NULL)
		*errmsg_r = NULL;
	if (db->lite != NULL) {
		char *msg = NULL;
		int rc = sqlite3_exec(db->lite, sql, NULL, NULL, &msg);
		if (rc != SQLITE_OK && errmsg_r != NULL)
			*errmsg_r = g_strdup(msg != NULL ? msg : sqlite3_errmsg(db->lite));
		sqlite3_free(msg);
		return rc == SQLITE_OK ? DB_OK : (rc & 0xff);
	}
	if (pg_ensure(db) < 0) {
		if (errmsg_r != NULL)
			*errmsg_r = g_strdup(db->errmsg);
		return db->errcode;
	}
	int nparams = 0;
	char *text = pg_translate(sql, &nparams, NULL);
	bool idle = PQtransactionStatus(db->pg) == PQTRANS_IDLE && pg_retryable(text);
	PGresult *res = PQexec(db->pg, text);
	int rc = pg_check(db, res);
	if (rc != DB_OK && idle && PQstatus(db->pg) == CONNECTION_BAD && pg_ensure(db) == 0) {
		/* Outside a transaction: once more on a new connection. */
		PQclear(res);
		res = PQexec(db->pg, text);
		rc = pg_check(db, res);
	}
	if (rc == DB_OK && PQresultStatus(res) == PGRES_COMMAND_OK && PQcmdTuples(res)[0] != '\0') {
		db->changes = g_ascii_strtoll(PQcmdTuples(res), NULL, 10);
		db->total_changes += db->changes;
	}
	PQclear(res);
	g_free(text);
	if (rc != DB_OK && errmsg_r != NULL)
		*errmsg_r = g_strdup(db->errmsg);
	return rc;
}

/* --- statements ----------------------------------------------------------------------- */

int
db_prepare(struct db *db, const char *sql, struct db_stmt **stmt_r)
{
	struct db_stmt *st = g_new0(struct db_stmt, 1);

	*stmt_r = NULL;
	st->db = db;
	st->row = -1;
	if (db->lite != NULL) {
		int rc = sqlite3_prepare_v2(db->lite, sql, -1, &st->lite, NULL);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(st->lite);
			g_free(st);
			return rc & 0xff;
		}
	} else {
		GArray *used = g_array_new(FALSE, TRUE, sizeof(gboolean));
		st->sql = pg_translate(sql, &st->nparams, used);
		st->params = g_new0(struct pg_param, st->nparams + 1);
		st->unused = g_new0(bool, st->nparams + 1);
		for (int i = 0; i < st->nparams; i++)
			st->unused[i] = (guint)i >= used->len || !g_array_index(used, gboolean, i);
		g_array_free(used, TRUE);
	}
	db->stmts = g_list_prepend(db->stmts, st);
	st->link = db->stmts;
	*stmt_r = st;
	return DB_OK;
}

int
db_finalize(struct db_stmt *st)
{
	if (st == NULL)
		return DB_OK;
	st->db->stmts = g_list_delete_link(st->db->stmts, st->link);
	if (st->lite != NULL)
		sqlite3_finalize(st->lite);
	pg_result_clear(st);
	for (int i = 0; i < st->nparams; i++)
		pg_param_clear(&st->params[i]);
	g_free(st->params);
	g_free(st->unused);
	g_free(st->sql);
	g_free(st);
	return DB_OK;
}

int
db_reset(struct db_stmt *st)
{
	st->busy = false;
	if (st->lite != NULL)
		return sqlite3_reset(st->lite) & 0xff;
	pg_result_clear(st);
	return DB_OK;
}

int
db_clear_bindings(struct db_stmt *st)
{
	if (st->lite != NULL)
		return sqlite3_clear_bindings(st->lite);
	for (int i = 0; i < st->nparams; i++)
		pg_param_clear(&st->params[i]);
	return DB_OK;
}

static int
step_inner(struct db_stmt *st)
{
	if (st->lite != NULL) {
		int rc = sqlite3_step(st->lite);
		st->busy = rc == SQLITE_ROW;
		return rc == SQLITE_ROW || rc == SQLITE_DONE ? rc : (rc & 0xff);
	}
	if (st->res == NULL) {
		int rc = pg_execute(st);
		if (rc != DB_OK)
			return rc;
	}
	pg_row_clear(st);
	if (st->row < st->nrows)
		st->row++;
	st->busy = st->row < st->nrows;
	return st->row < st->nrows ? DB_ROW : DB_DONE;
}

int
db_step(struct db_stmt *st)
{
	int rc = step_inner(st);

	if (rc != DB_ROW && rc != DB_DONE)
		st->db->failure = rc;
	return rc;
}

int
db_exec(struct db *db, const char *sql, char **errmsg_r)
{
	int rc = exec_inner(db, sql, errmsg_r);

	if (rc != DB_OK)
		db->failure = rc;
	return rc;
}

int
db_take_failure(struct db *db)
{
	int rc = db->failure;

	db->failure = DB_OK;
	return rc;
}

struct db *
db_stmt_db(struct db_stmt *st)
{
	return st->db;
}

bool
db_stmt_busy(struct db_stmt *st)
{
	return st->busy;
}

void
db_reset_all(struct db *db)
{
	for (GList *l = db->stmts; l != NULL; l = l->next)
		if (db_stmt_busy(l->data))
			db_reset(l->data);
}

int
db_bind_parameter_count(struct db_stmt *st)
{
	return st->lite != NULL ? sqlite3_bind_parameter_count(st->lite) : st->nparams;
}

int
db_bind_int64(struct db_stmt *st, int i, int64_t value)
{
	if (st->lite != NULL)
		return sqlite3_bind_int64(st->lite, i, value);
	struct pg_param *p = pg_param(st, i);
	if (p == NULL)
		return SQLITE_RANGE;
	p->type = PG_INT8OID;
	p->value = g_strdup_printf("%" G_GINT64_FORMAT, (gint64)value);
	p->len = (int)strlen(p->value);
	return DB_OK;
}

int
db_bind_int(struct db_stmt *st, int i, int value)
{
	return st->lite != NULL ? sqlite3_bind_int(st->lite, i, value) : db_bind_int64(st, i, value);
}

int
db_bind_double(struct db_stmt *st, int i, double value)
{
	if (st->lite != NULL)
		return sqlite3_bind_double(st->lite, i, value);
	struct pg_param *p = pg_param(st, i);
	if (p == NULL)
		return SQLITE_RANGE;
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	p->type = PG_FLOAT8OID;
	p->value = g_strdup(g_ascii_dtostr(buf, sizeof(buf), value));
	p->len = (int)strlen(p->value);
	return DB_OK;
}

int
db_bind_text(struct db_stmt *st, int i, const char *text, int len, void (*destroy)(void *))
{
	if (st->lite != NULL)
		return sqlite3_bind_text(st->lite, i, text, len, destroy);
	struct pg_param *p = pg_param(st, i);
	if (p == NULL)
		return SQLITE_RANGE;
	if (text != NULL) {
		size_t n = len < 0 ? strlen(text) : (size_t)len;
		if (g_utf8_validate(text, (gssize)n, NULL)) {
			p->value = g_strndup(text, n);
		} else {
			/* PostgreSQL's text is UTF-8 without NUL (SQLite keeps any
			 * bytes): what is not, a HELO or header in some 8-bit
			 * charset, is stored with U+FFFD in its place rather than
			 * refused; the raw message keeps the original bytes. */
			GString *fixed = g_string_sized_new(n + 8);
			const char *p_in = text, *end = text + n;
			while (p_in < end) {
				const char *bad = NULL;
				g_utf8_validate(p_in, end - p_in, &bad);
				g_string_append_len(fixed, p_in, bad - p_in);
				if (bad < end) {
					g_string_append(fixed, "\xef\xbf\xbd");
					bad++;
				}
				p_in = bad;
			}
			p->value = g_string_free(fixed, FALSE);
		}
		p->len = (int)strlen(p->value);
	}
	if (destroy != DB_STATIC && destroy != DB_TRANSIENT && destroy != NULL)
		destroy((void *)text);
	return DB_OK;
}

int
db_bind_blob64(struct db_stmt *st, int i, const void *data, uint64_t len, void (*destroy)(void *))
{
	if (st->lite != NULL)
		return sqlite3_bind_blob64(st->lite, i, data, len, destroy);
	struct pg_param *p = pg_param(st, i);
	if (p == NULL)
		return SQLITE_RANGE;
	if (len > G_MAXINT)
		return SQLITE_TOOBIG;
	p->type = PG_BYTEAOID;
	p->format = 1;
	p->value = g_malloc(len + 1);
	if (len > 0)
		memcpy(p->value, data, len);
	p->len = (int)len;
	if (destroy != DB_STATIC && destroy != DB_TRANSIENT && destroy != NULL)
		destroy((void *)data);
	return DB_OK;
}

int
db_bind_null(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_bind_null(st->lite, i);
	return pg_param(st, i) != NULL ? DB_OK : SQLITE_RANGE;
}

int
db_column_count(struct db_stmt *st)
{
	if (st->lite != NULL)
		return sqlite3_column_count(st->lite);
	if (st->res == NULL && pg_execute(st) != DB_OK)
		return 0;
	return PQnfields(st->res);
}

const char *
db_column_name(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_column_name(st->lite, i);
	if (st->res == NULL && pg_execute(st) != DB_OK)
		return NULL;
	return i >= 0 && i < PQnfields(st->res) ? PQfname(st->res, i) : NULL;
}

int
db_column_type(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_column_type(st->lite, i);
	if (!pg_in_row(st, i) || PQgetisnull(st->res, st->row, i))
		return DB_NULL;
	switch (PQftype(st->res, i)) {
	case PG_BOOLOID:
	case PG_INT2OID:
	case PG_INT4OID:
	case PG_INT8OID:
	case PG_OIDOID:
		return DB_INTEGER;
	case PG_NUMERICOID:
		/* sum() and the like of integers: integral values stay integers */
		return strpbrk(PQgetvalue(st->res, st->row, i), ".eEN") == NULL ? DB_INTEGER : DB_FLOAT;
	case PG_FLOAT4OID:
	case PG_FLOAT8OID:
		return DB_FLOAT;
	case PG_BYTEAOID:
		return DB_BLOB;
	default:
		return DB_TEXT;
	}
}

int64_t
db_column_int64(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_column_int64(st->lite, i);
	if (!pg_in_row(st, i) || PQgetisnull(st->res, st->row, i))
		return 0;
	const char *v = PQgetvalue(st->res, st->row, i);
	if (PQftype(st->res, i) == PG_BOOLOID)
		return v[0] == 't';
	if (PQftype(st->res, i) == PG_FLOAT4OID || PQftype(st->res, i) == PG_FLOAT8OID ||
	    PQftype(st->res, i) == PG_NUMERICOID) {
		double d = g_ascii_strtod(v, NULL);
		return d >= (double)G_MININT64 && d < (double)G_MAXINT64 ? (int64_t)d : 0;
	}
	return g_ascii_strtoll(v, NULL, 10);
}

int
db_column_int(struct db_stmt *st, int i)
{
	return st->lite != NULL ? sqlite3_column_int(st->lite, i) : (int)db_column_int64(st, i);
}

double
db_column_double(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_column_double(st->lite, i);
	if (!pg_in_row(st, i) || PQgetisnull(st->res, st->row, i))
		return 0.0;
	return g_ascii_strtod(PQgetvalue(st->res, st->row, i), NULL);
}

const unsigned char *
db_column_text(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_column_text(st->lite, i);
	if (!pg_in_row(st, i) || PQgetisnull(st->res, st->row, i))
		return NULL;
	if (PQftype(st->res, i) == PG_BOOLOID)
		return (const unsigned char *)(PQgetvalue(st->res, st->row, i)[0] == 't' ? "1" : "0");
	return (const unsigned char *)PQgetvalue(st->res, st->row, i);
}

static bool
pg_unescape(struct db_stmt *st, int i)
{
	if (st->blobs[i] != NULL)
		return true;
	st->blobs[i] = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, i),
				       &st->blob_lens[i]);
	return st->blobs[i] != NULL;
}

const void *
db_column_blob(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_column_blob(st->lite, i);
	if (!pg_in_row(st, i) || PQgetisnull(st->res, st->row, i))
		return NULL;
	if (PQftype(st->res, i) != PG_BYTEAOID)
		return PQgetvalue(st->res, st->row, i);
	return pg_unescape(st, i) ? st->blobs[i] : NULL;
}

int
db_column_bytes(struct db_stmt *st, int i)
{
	if (st->lite != NULL)
		return sqlite3_column_bytes(st->lite, i);
	if (!pg_in_row(st, i) || PQgetisnull(st->res, st->row, i))
		return 0;
	if (PQftype(st->res, i) != PG_BYTEAOID)
		return PQgetlength(st->res, st->row, i);
	return pg_unescape(st, i) && st->blob_lens[i] <= G_MAXINT ? (int)st->blob_lens[i] : 0;
}

int64_t
db_changes(struct db *db)
{
	return db->lite != NULL ? sqlite3_changes64(db->lite) : db->changes;
}

int64_t
db_total_changes(struct db *db)
{
	return db->lite != NULL ? sqlite3_total_changes64(db->lite) : db->total_changes;
}

bool
db_get_autocommit(struct db *db)
{
	if (db->lite != NULL)
		return sqlite3_get_autocommit(db->lite) != 0;
	return PQtransactionStatus(db->pg) == PQTRANS_IDLE;
}
