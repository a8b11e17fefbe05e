/* migrate.c: `snapkeep migrate --from FILE.db --to postgresql://...`: copies
 * a SQLite installation, raw archive included, into an EMPTY PostgreSQL
 * database and verifies the copy.
 *
 * How:
 *  1. The source is opened read-only with store_open (it must have this
 *     snapkeep's schema: an older one is refused with the advice to run the
 *     current snapkeep on it once) and read inside ONE read transaction, so
 *     that the copy and the source counts it is checked against are the
 *     same snapshot of the file even if a daemon still writes to it.
 *  2. The target is opened with store_open (which creates and migrates the
 *     PostgreSQL schema), a session advisory lock keeps a second migrate
 *     out, and a target with a row in any table to be copied is refused
 *     (exit 73): migrate never merges into an installation.
 *  3. The tables are those of the source (sqlite_schema; columns from
 *     pragma_table_info) that the target has too, copied in the order of the
 *     target's foreign keys (pg_constraint), each row with its ids as they
 *     are: SELECT every column by name, INSERT with db_bind_* of the value's
 *     type (converted only where the target's column type asks: an integral
 *     REAL into a bigint, a number into a text column as SQLite prints it;
 *     text that is not UTF-8, which SQLite keeps and PostgreSQL refuses,
 *     goes in with U+FFFD for the bad bytes and is reported).
 *     Blobs stay the compressed bytes they are: the archive format does
 *     not depend on the engine.  Tables with an integer id are read in
 *     pages (WHERE id > ? ORDER BY id LIMIT batch); the others (WITHOUT
 *     ROWID tables) by one statement stepped a row at a time.  The rows go
 *     in by INSERTs of MIGRATE_INSERT_ROWS rows (multi-row VALUES, one
 *     round trip each), one row each for tables with a bytea column (the
 *     archive), on a second connection to the target; every transaction
 *     holds at most --batch rows and about --batch-mb megabytes.  A column
 *     referring to its own table (messages.base_id: a delta's base is
 *     usually older, but a reparse or a repack of the backlog makes a
 *     message the delta of the device's latest, newer one) is inserted as
 *     it is when the row it names is already copied, else NULL and set by
 *     an UPDATE once the whole table is there (the foreign keys of
 *     PostgreSQL's schema are not deferrable).
 *  4. Each identity sequence is set to the table's max(id), so that new
 *     rows continue after the copied ones; this last transaction commits
 *     with synchronous_commit on, so everything before it is on disk too.
 *  5. Verification: the rows of every table are counted on both sides; the
 *     messages are compared id by id (same ids, same SHA-256) and every
 *     message that has its bytes is read back FROM THE TARGET with
 *     store_message_get (delta chains decoded, SHA-256 checked).  Any
 *     difference is exit 1 with the first problems listed.
 *
 * Limits: memory holds one INSERT's rows (MIGRATE_INSERT_ROWS small rows,
 * or one message), one page of message ids during verification and the
 * target store's container cache (MIGRATE_CACHE_*), whatever the size of
 * the source.  A run that fails half way leaves a partial copy, which the
 * next run refuses as not empty: drop and create the database again.
 * Security: the target's password has its own ways (--password-file,
 * PGPASSWORD, ~/.pgpass) besides the URL, which other users see in ps;
 * messages name the target without it.  Values are bound, never spliced
 * into SQL; table and column names come from the two schemas and are
 * quoted.
 *
 * Exit status: 0 copied and verified; 1 a copy error or a verification
 * difference; 64 usage; 65 the source has not this snapkeep's schema; 66
 * no source file; 73 the target is not empty (or is busy with another
 * migrate); 75 the target cannot be opened. */
#include "config.h"

#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

/* Rows per transaction on the target, and their text and blob bytes. */
#define MIGRATE_BATCH_ROWS_DEFAULT 1000
#define MIGRATE_BATCH_MB_DEFAULT 32
/* Rows per INSERT (multi-row VALUES: one round trip for many small rows),
 * within PostgreSQL's 65535 parameters of a statement. */
#define MIGRATE_INSERT_ROWS 64
#define MIGRATE_PARAMS_MAX 65535u
/* Problems of the verification listed by name (all are counted). */
#define MIGRATE_PROBLEMS_LISTED 20
/* The target store's container cache while messages are read back: a
 * page of messages is read device by device, each delta right after its
 * base, so a few entries per device of the page avoid decoding a chain
 * again. */
#define MIGRATE_CACHE_ENTRIES 64
#define MIGRATE_CACHE_BYTES (64u << 20)
/* A session advisory lock on the target (the two-int4 key space, apart
 * from the store's bigint keys: message ids, mailboxes, migrations). */
#define MIGRATE_LOCK_SQL "SELECT pg_try_advisory_lock(1936419175, 1)"

enum migrate_kind {
	MIGRATE_KIND_INTEGER,
	MIGRATE_KIND_FLOAT,
	MIGRATE_KIND_TEXT,
	MIGRATE_KIND_BLOB,
};

struct migrate_column {
	char *name;
	enum migrate_kind kind;       /* the target column's type */
};

struct migrate_table {
	char *name;
	GArray *columns;              /* struct migrate_column, in the source's order */
	int id_col;                   /* the integer primary key "id", or -1 */
	int self_col;                 /* a column referring to this table's id, or -1 */
	GPtrArray *refs;              /* names of the other tables it refers to */
	int64_t source_rows, target_rows;
	bool placed;
};

struct migrate_forward {
	int64_t id, ref;
};

struct migrate {
	struct store *src, *dst;
	struct db *sdb, *ddb;
	struct db *cdb;               /* the target: the connection that copies */
	GPtrArray *tables;            /* struct migrate_table, in copy order */
	unsigned batch_rows;
	uint64_t batch_bytes;
	bool progress;
	gint64 last_progress;
	int64_t total_rows, done_rows;
	uint64_t bytes;               /* text and blob bytes copied */
	uint64_t repaired;            /* text values that were not UTF-8 */
	/* verification */
	int64_t messages, verified, pruned;
	uint64_t raw_bytes;
	uint64_t problem_count;
	GPtrArray *problems;
};

static void
migrate_table_free(gpointer data)
{
	struct migrate_table *t = data;

	for (guint i = 0; t->columns != NULL && i < t->columns->len; i++)
		g_free(g_array_index(t->columns, struct migrate_column, i).name);
	if (t->columns != NULL)
		g_array_free(t->columns, TRUE);
	if (t->refs != NULL)
		g_ptr_array_free(t->refs, TRUE);
	g_free(t->name);
	g_free(t);
}

/* An SQL identifier in double quotes. */
static char *
migrate_quote(const char *name)
{
	GString *s = g_string_new("\"");

	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '"')
			g_string_append_c(s, '"');
		g_string_append_c(s, *p);
	}
	g_string_append_c(s, '"');
	return g_string_free(s, FALSE);
}

static void
migrate_problem(struct migrate *m, char *line)
{
	m->problem_count++;
	if (m->problems->len < MIGRATE_PROBLEMS_LISTED)
		g_ptr_array_add(m->problems, line);
	else
		g_free(line);
}

static void
migrate_progress(struct migrate *m, const char *what, int64_t done, int64_t total, bool final)
{
	if (!m->progress)
		return;
	gint64 now = g_get_monotonic_time();
	if (!final && now - m->last_progress < 100000)
		return;
	m->last_progress = now;
	total = MAX(total, done);
	unsigned width = 30, fill = total > 0 ? (unsigned)(done * width / total) : width;
	char bar[64];
	for (unsigned i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';
	if (strcmp(what, "verify") == 0)
		fprintf(stderr, "\rverify: [%s] %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " messages, %.1f MB raw   ",
			bar, done, total, m->raw_bytes / 1e6);
	else
		fprintf(stderr, "\rmigrate: [%s] %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " rows, %.1f MB (%s)   ",
			bar, done, total, m->bytes / 1e6, what);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* One integer from SQL without parameters; 0 or -1. */
static int
migrate_query_int64(struct db *db, const char *sql, int64_t *v_r, char **error_r)
{
	struct db_stmt *stmt = NULL;
	int rc;

	if (db_prepare(db, sql, &stmt) != DB_OK) {
		*error_r = g_strdup_printf("%s: %s", db_display_name(db), db_errmsg(db));
		return -1;
	}
	rc = db_step(stmt);
	if (rc == DB_ROW)
		*v_r = db_column_int64(stmt, 0);
	else
		*error_r = g_strdup_printf("%s: %s", db_display_name(db), db_errmsg(db));
	db_finalize(stmt);
	return rc == DB_ROW ? 0 : -1;
}

static int
migrate_exec(struct db *db, const char *sql, char **error_r)
{
	char *msg = NULL;

	if (db_exec(db, sql, &msg) == DB_OK)
		return 0;
	*error_r = g_strdup_printf("%s: %s: %s", db_display_name(db), sql, msg != NULL ? msg : "error");
	g_free(msg);
	return -1;
}

static void
migrate_rollback(struct db *db)
{
	if (!db_get_autocommit(db))
		(void)db_exec(db, "ROLLBACK", NULL);
}

/* --- the schema on both sides ------------------------------------------------------- */

static enum migrate_kind
migrate_kind_of(const char *pg_type)
{
	if (strcmp(pg_type, "bigint") == 0 || strcmp(pg_type, "integer") == 0 ||
	    strcmp(pg_type, "smallint") == 0)
		return MIGRATE_KIND_INTEGER;
	if (strcmp(pg_type, "double precision") == 0 || strcmp(pg_type, "real") == 0 ||
	    strcmp(pg_type, "numeric") == 0)
		return MIGRATE_KIND_FLOAT;
	if (strcmp(pg_type, "bytea") == 0)
		return MIGRATE_KIND_BLOB;
	return MIGRATE_KIND_TEXT;
}

/* The target's base tables: name -> (column -> kind as GINT_TO_POINTER(kind + 1)). */
static GHashTable *
migrate_target_columns(struct migrate *m, char **error_r)
{
	struct db_stmt *stmt = NULL;
	GHashTable *tables = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						   (GDestroyNotify)g_hash_table_unref);
	int rc;

	if (db_prepare(m->ddb,
		       "SELECT c.table_name::text, c.column_name::text, c.data_type::text"
		       " FROM information_schema.columns c"
		       " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
		       " AND t.table_name = c.table_name"
		       " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
		       &stmt) != DB_OK)
		goto fail;
	while ((rc = db_step(stmt)) == DB_ROW) {
		const char *table = (const char *)db_column_text(stmt, 0);
		const char *column = (const char *)db_column_text(stmt, 1);
		const char *type = (const char *)db_column_text(stmt, 2);
		if (table == NULL || column == NULL || type == NULL)
			continue;
		GHashTable *cols = g_hash_table_lookup(tables, table);
		if (cols == NULL) {
			cols = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			g_hash_table_insert(tables, g_strdup(table), cols);
		}
		g_hash_table_insert(cols, g_strdup(column), GINT_TO_POINTER(migrate_kind_of(type) + 1));
	}
	if (rc != DB_DONE)
		goto fail;
	db_finalize(stmt);
	return tables;
fail:
	*error_r = g_strdup_printf("%s: reading the schema: %s", db_display_name(m->ddb), db_errmsg(m->ddb));
	db_finalize(stmt);
	g_hash_table_unref(tables);
	return NULL;
}

/* The source's tables that the target has too, with their columns; the
 * source's other tables are named in *skipped_r. */
static int
migrate_source_tables(struct migrate *m, GHashTable *target, GString *skipped, char **error_r)
{
	struct db_stmt *list = NULL, *info = NULL;
	int rc, ret = -1;

	if (db_prepare(m->sdb,
		       "SELECT name FROM sqlite_schema WHERE type = 'table'"
		       " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
		       &list) != DB_OK ||
	    db_prepare(m->sdb, "SELECT name, upper(type), pk FROM pragma_table_info(?1) ORDER BY cid",
		       &info) != DB_OK) {
		*error_r = g_strdup_printf("%s: reading the schema: %s", db_display_name(m->sdb),
					   db_errmsg(m->sdb));
		goto out;
	}
	while ((rc = db_step(list)) == DB_ROW) {
		const char *name = (const char *)db_column_text(list, 0);
		GHashTable *cols = name != NULL ? g_hash_table_lookup(target, name) : NULL;
		if (cols == NULL) {
			g_string_append_printf(skipped, "%s%s", skipped->len > 0 ? ", " : "", name);
			continue;
		}
		struct migrate_table *t = g_new0(struct migrate_table, 1);
		t->name = g_strdup(name);
		t->columns = g_array_new(FALSE, TRUE, sizeof(struct migrate_column));
		t->refs = g_ptr_array_new_with_free_func(g_free);
		t->id_col = -1;
		t->self_col = -1;
		g_ptr_array_add(m->tables, t);
		db_reset(info);
		db_bind_text(info, 1, name, -1, DB_TRANSIENT);
		while ((rc = db_step(info)) == DB_ROW) {
			const char *col = (const char *)db_column_text(info, 0);
			const char *type = (const char *)db_column_text(info, 1);
			gpointer kind = g_hash_table_lookup(cols, col);
			if (kind == NULL) {
				*error_r = g_strdup_printf("table %s: the target has no column %s (the two"
							   " schemas differ: a bug of snapkeep)", name, col);
				goto out;
			}
			struct migrate_column c = { g_strdup(col), (enum migrate_kind)(GPOINTER_TO_INT(kind) - 1) };
			if (strcmp(col, "id") == 0 && type != NULL && strcmp(type, "INTEGER") == 0 &&
			    db_column_int(info, 2) == 1 && c.kind == MIGRATE_KIND_INTEGER)
				t->id_col = (int)t->columns->len;
			g_array_append_val(t->columns, c);
		}
		if (rc != DB_DONE || t->columns->len == 0) {
			*error_r = g_strdup_printf("%s: reading the columns of %s: %s", db_display_name(m->sdb),
						   name, db_errmsg(m->sdb));
			goto out;
		}
	}
	if (rc != DB_DONE) {
		*error_r = g_strdup_printf("%s: reading the schema: %s", db_display_name(m->sdb), db_errmsg(m->sdb));
		goto out;
	}
	ret = 0;
out:
	db_finalize(list);
	db_finalize(info);
	return ret;
}

static struct migrate_table *
migrate_table_find(struct migrate *m, const char *name)
{
	for (guint i = 0; i < m->tables->len; i++) {
		struct migrate_table *t = g_ptr_array_index(m->tables, i);
		if (strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

/* The target's foreign keys between the tables copied: each table's
 * references, and a column referring to the table's own id. */
static int
migrate_target_refs(struct migrate *m, char **error_r)
{
	struct db_stmt *stmt = NULL;
	int rc;

	if (db_prepare(m->ddb,
		       "SELECT cl.relname::text, fl.relname::text, a.attname::text, fa.attname::text"
		       " FROM pg_constraint c"
		       " JOIN pg_class cl ON cl.oid = c.conrelid"
		       " JOIN pg_class fl ON fl.oid = c.confrelid"
		       " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
		       " JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]"
		       " WHERE c.contype = 'f' AND cl.relnamespace = (SELECT oid FROM pg_namespace"
		       " WHERE nspname = current_schema())",
		       &stmt) != DB_OK)
		goto fail;
	while ((rc = db_step(stmt)) == DB_ROW) {
		const char *from = (const char *)db_column_text(stmt, 0);
		const char *to = (const char *)db_column_text(stmt, 1);
		const char *col = (const char *)db_column_text(stmt, 2);
		const char *to_col = (const char *)db_column_text(stmt, 3);
		struct migrate_table *t = from != NULL ? migrate_table_find(m, from) : NULL;
		if (t == NULL || to == NULL || col == NULL || to_col == NULL)
			continue;
		if (strcmp(from, to) != 0) {
			g_ptr_array_add(t->refs, g_strdup(to));
			continue;
		}
		/* A reference within the table: rows go in id order, later
		 * ones are fixed up (migrate_copy_table). */
		int ci = -1;
		for (guint i = 0; i < t->columns->len; i++)
			if (strcmp(g_array_index(t->columns, struct migrate_column, i).name, col) == 0)
				ci = (int)i;
		if (t->id_col < 0 || strcmp(to_col, "id") != 0 || ci < 0 || t->self_col >= 0) {
			*error_r = g_strdup_printf("table %s: its reference %s -> %s is not one this"
						   " migration can order", t->name, col, to_col);
			db_finalize(stmt);
			return -1;
		}
		t->self_col = ci;
	}
	if (rc != DB_DONE)
		goto fail;
	db_finalize(stmt);
	return 0;
fail:
	*error_r = g_strdup_printf("%s: reading the foreign keys: %s", db_display_name(m->ddb),
				   db_errmsg(m->ddb));
	db_finalize(stmt);
	return -1;
}

/* Sorts m->tables so that every table comes after those it refers to. */
static int
migrate_order(struct migrate *m, char **error_r)
{
	GPtrArray *order = g_ptr_array_new_with_free_func(migrate_table_free);

	while (order->len < m->tables->len) {
		bool progress = false;
		for (guint i = 0; i < m->tables->len; i++) {
			struct migrate_table *t = g_ptr_array_index(m->tables, i);
			bool ready = !t->placed;
			for (guint r = 0; ready && r < t->refs->len; r++) {
				struct migrate_table *dep = migrate_table_find(m, g_ptr_array_index(t->refs, r));
				if (dep != NULL && !dep->placed)
					ready = false;
			}
			if (ready) {
				t->placed = true;
				g_ptr_array_add(order, t);
				progress = true;
			}
		}
		if (!progress) {
			*error_r = g_strdup("the target's foreign keys form a cycle between tables:"
					    " no order to copy them in");
			/* The tables stay owned by m->tables. */
			g_ptr_array_set_free_func(order, NULL);
			g_ptr_array_free(order, TRUE);
			return -1;
		}
	}
	g_ptr_array_set_free_func(m->tables, NULL);
	g_ptr_array_free(m->tables, TRUE);
	m->tables = order;
	return 0;
}

/* Rows of every table on one side. */
static int
migrate_count(struct migrate *m, struct db *db, bool source, char **error_r)
{
	for (guint i = 0; i < m->tables->len; i++) {
		struct migrate_table *t = g_ptr_array_index(m->tables, i);
		char *q = migrate_quote(t->name);
		char *sql = g_strdup_printf("SELECT count(*) FROM %s", q);
		int64_t n = 0;
		int r = migrate_query_int64(db, sql, &n, error_r);
		g_free(sql);
		g_free(q);
		if (r < 0)
			return -1;
		if (source)
			t->source_rows = n;
		else
			t->target_rows = n;
	}
	return 0;
}

/* --- the copy ------------------------------------------------------------------------ */

/* Binds len bytes as text.  PostgreSQL refuses text that is not UTF-8
 * (or holds a NUL), which SQLite keeps as it was given (an SMTP client's
 * HELO, a file name): such a value goes in with U+FFFD in place of each
 * bad byte, and *repaired_r is set. */
static int
migrate_bind_text(struct db_stmt *ins, int p, const char *text, int len, bool *repaired_r)
{
	if (text == NULL)
		return db_bind_text(ins, p, "", 0, DB_STATIC);
	if (g_utf8_validate_len(text, (gsize)len, NULL))
		return db_bind_text(ins, p, text, len, DB_TRANSIENT);
	*repaired_r = true;
	return db_bind_text(ins, p, g_utf8_make_valid(text, len), -1, g_free);
}

/* Binds column i of the source row to parameter p of the insert. */
static int
migrate_bind(struct db_stmt *sel, struct db_stmt *ins, int i, int p, const struct migrate_column *c,
	     uint64_t *bytes, bool *repaired_r, char **why_r)
{
	switch (db_column_type(sel, i)) {
	case DB_NULL:
		return db_bind_null(ins, p);
	case DB_INTEGER:
		if (c->kind == MIGRATE_KIND_TEXT)
			break; /* as SQLite prints it, below */
		if (c->kind == MIGRATE_KIND_BLOB) {
			*why_r = g_strdup_printf("column %s: an integer for a bytea column", c->name);
			return DB_ERROR;
		}
		return db_bind_int64(ins, p, db_column_int64(sel, i));
	case DB_FLOAT: {
		double d = db_column_double(sel, i);
		if (c->kind == MIGRATE_KIND_TEXT)
			break;
		if (c->kind == MIGRATE_KIND_INTEGER) {
			if (!isfinite(d) || d != floor(d) || d < -9.2e18 || d > 9.2e18) {
				*why_r = g_strdup_printf("column %s: %g is not an integer", c->name, d);
				return DB_ERROR;
			}
			return db_bind_int64(ins, p, (int64_t)d);
		}
		if (c->kind == MIGRATE_KIND_BLOB) {
			*why_r = g_strdup_printf("column %s: a number for a bytea column", c->name);
			return DB_ERROR;
		}
		return db_bind_double(ins, p, d);
	}
	case DB_BLOB: {
		const void *data = db_column_blob(sel, i);
		int len = db_column_bytes(sel, i);
		*bytes += (uint64_t)len;
		if (c->kind == MIGRATE_KIND_BLOB)
			return db_bind_blob64(ins, p, data != NULL ? data : "", (uint64_t)len, DB_TRANSIENT);
		return migrate_bind_text(ins, p, data, len, repaired_r);
	}
	default:
		break;
	}
	const char *text = (const char *)db_column_text(sel, i);
	int len = db_column_bytes(sel, i);
	*bytes += (uint64_t)len;
	if (c->kind == MIGRATE_KIND_BLOB)
		return db_bind_blob64(ins, p, text != NULL ? text : "", (uint64_t)len, DB_TRANSIENT);
	return migrate_bind_text(ins, p, text, len, repaired_r);
}

/* Sets the references to rows that came later (migrate_copy_table). */
static int
migrate_fix_forward(struct migrate *m, struct migrate_table *t, GArray *forward, char **error_r)
{
	const struct migrate_column *c = &g_array_index(t->columns, struct migrate_column, t->self_col);
	char *tq = migrate_quote(t->name), *cq = migrate_quote(c->name);
	char *sql = g_strdup_printf("UPDATE %s SET %s = ?2 WHERE id = ?1", tq, cq);
	struct db_stmt *upd = NULL;
	int ret = -1;

	if (db_prepare(m->cdb, sql, &upd) != DB_OK) {
		*error_r = g_strdup_printf("%s: %s", sql, db_errmsg(m->cdb));
		goto out;
	}
	for (guint i = 0; i < forward->len;) {
		if (migrate_exec(m->cdb, "BEGIN", error_r) < 0)
			goto out;
		for (unsigned n = 0; n < m->batch_rows && i < forward->len; n++, i++) {
			const struct migrate_forward *f = &g_array_index(forward, struct migrate_forward, i);
			db_reset(upd);
			db_bind_int64(upd, 1, f->id);
			db_bind_int64(upd, 2, f->ref);
			if (db_step(upd) != DB_DONE || db_changes(m->cdb) != 1) {
				*error_r = g_strdup_printf("table %s, row id %" G_GINT64_FORMAT ": setting %s to %"
							   G_GINT64_FORMAT ": %s", t->name, f->id, c->name, f->ref,
							   db_errmsg(m->cdb));
				goto out;
			}
		}
		if (migrate_exec(m->cdb, "COMMIT", error_r) < 0)
			goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		migrate_rollback(m->cdb);
	db_finalize(upd);
	g_free(sql);
	g_free(cq);
	g_free(tq);
	return ret;
}

/* The rows of a source table, page by page (keyset on id) or from one
 * stepped statement (tables without an integer id). */
struct migrate_cursor {
	struct db_stmt *sel;
	bool keyset, started, done;
	int64_t last_id;
	unsigned limit, page_rows;
};

/* 1 a row, 0 the end of the table, -1 an error of the source. */
static int
migrate_cursor_next(struct migrate_cursor *c)
{
	while (!c->done) {
		if (c->keyset && !c->started) {
			db_reset(c->sel);
			db_bind_int64(c->sel, 1, c->last_id);
			db_bind_int64(c->sel, 2, c->limit);
			c->started = true;
			c->page_rows = 0;
		}
		int rc = db_step(c->sel);
		if (rc == DB_ROW) {
			c->page_rows++;
			return 1;
		}
		if (rc != DB_DONE)
			return -1;
		if (c->keyset && c->page_rows == c->limit)
			c->started = false; /* a full page: the next one */
		else
			c->done = true;
	}
	return 0;
}

/* An INSERT of rows rows of the table (multi-row VALUES). */
static char *
migrate_insert_sql(const char *table_q, const char *cols, unsigned ncols, unsigned rows)
{
	GString *s = g_string_new(NULL);

	g_string_append_printf(s, "INSERT INTO %s (%s) VALUES ", table_q, cols);
	for (unsigned r = 0; r < rows; r++) {
		g_string_append(s, r > 0 ? ", (" : "(");
		for (unsigned i = 0; i < ncols; i++)
			g_string_append_printf(s, "%s?%u", i > 0 ? ", " : "", r * ncols + i + 1);
		g_string_append_c(s, ')');
	}
	return g_string_free(s, FALSE);
}

/* Copies one table: transactions of at most batch_rows rows and about
 * batch_bytes bytes, made of INSERTs of up to MIGRATE_INSERT_ROWS rows
 * each (one row per INSERT in tables with a bytea column: their rows are
 * the archive's blobs, and a group is held in memory until it is sent). */
static int
migrate_copy_table(struct migrate *m, struct migrate_table *t, char **error_r)
{
	GString *cols = g_string_new(NULL);
	struct migrate_cursor cur = { .keyset = t->id_col >= 0, .last_id = G_MININT64, .limit = m->batch_rows };
	struct db_stmt *full = NULL, *ins = NULL;
	GArray *forward = g_array_new(FALSE, FALSE, sizeof(struct migrate_forward));
	char *tq = migrate_quote(t->name), *sel_sql = NULL, *sql = NULL;
	unsigned ncols = t->columns->len, group_max = MIGRATE_INSERT_ROWS, group = 0, pending = 0;
	int64_t remaining = t->source_rows, row_no = 0, group_first_id = 0, group_first_row = 0;
	bool in_tx = false;
	int ret = -1;

	for (guint i = 0; i < ncols; i++) {
		const struct migrate_column *c = &g_array_index(t->columns, struct migrate_column, i);
		char *q = migrate_quote(c->name);
		g_string_append_printf(cols, "%s%s", i > 0 ? ", " : "", q);
		g_free(q);
		if (c->kind == MIGRATE_KIND_BLOB)
			group_max = 1;
	}
	group_max = MAX(1u, MIN(group_max, MIGRATE_PARAMS_MAX / ncols));
	if (cur.keyset)
		sel_sql = g_strdup_printf("SELECT %s FROM %s WHERE id > ?1 ORDER BY id LIMIT ?2", cols->str, tq);
	else
		sel_sql = g_strdup_printf("SELECT %s FROM %s", cols->str, tq);
	if (db_prepare(m->sdb, sel_sql, &cur.sel) != DB_OK) {
		*error_r = g_strdup_printf("%s: %s: %s", db_display_name(m->sdb), sel_sql, db_errmsg(m->sdb));
		goto out;
	}
	sql = migrate_insert_sql(tq, cols->str, ncols, group_max);
	if (db_prepare(m->cdb, sql, &full) != DB_OK) {
		*error_r = g_strdup_printf("%s: %s: %s", db_display_name(m->cdb), sql, db_errmsg(m->cdb));
		goto out;
	}
	for (;;) {
		unsigned n = 0;
		uint64_t bytes = 0;
		if (migrate_exec(m->cdb, "BEGIN", error_r) < 0)
			goto out;
		in_tx = true;
		/* A transaction ends between groups only. */
		while (pending > 0 || (n < m->batch_rows && bytes < m->batch_bytes)) {
			int r = migrate_cursor_next(&cur);
			if (r < 0) {
				*error_r = g_strdup_printf("%s: reading %s: %s", db_display_name(m->sdb), t->name,
							   db_errmsg(m->sdb));
				goto out;
			}
			if (r == 0 && pending == 0)
				break;
			if (r == 0 || remaining <= 0) {
				/* Not within one read transaction. */
				*error_r = g_strdup_printf("table %s: the source changed during the copy (%"
							   G_GINT64_FORMAT " rows counted)", t->name, t->source_rows);
				goto out;
			}
			int64_t id = cur.keyset ? db_column_int64(cur.sel, t->id_col) : 0;
			row_no++;
			if (pending == 0) {
				group = (unsigned)MIN((int64_t)group_max, remaining);
				group_first_id = id;
				group_first_row = row_no;
				if (group == group_max) {
					ins = full;
				} else {
					/* The table's last, shorter group. */
					char *tail = migrate_insert_sql(tq, cols->str, ncols, group);
					int prc = db_prepare(m->cdb, tail, &ins);
					g_free(tail);
					if (prc != DB_OK) {
						*error_r = g_strdup_printf("%s: %s", db_display_name(m->cdb),
									   db_errmsg(m->cdb));
						goto out;
					}
				}
			}
			char *why = NULL;
			for (guint i = 0; i < ncols; i++) {
				const struct migrate_column *c = &g_array_index(t->columns, struct migrate_column, i);
				int p = (int)(pending * ncols + i + 1), brc;
				if ((int)i == t->self_col && db_column_type(cur.sel, (int)i) == DB_INTEGER &&
				    db_column_int64(cur.sel, (int)i) > id) {
					/* Refers to a row not copied yet. */
					struct migrate_forward f = { id, db_column_int64(cur.sel, (int)i) };
					g_array_append_val(forward, f);
					brc = db_bind_null(ins, p);
				} else {
					bool repaired = false;
					brc = migrate_bind(cur.sel, ins, (int)i, p, c, &bytes, &repaired, &why);
					if (repaired && m->repaired++ < MIGRATE_PROBLEMS_LISTED)
						fprintf(stderr, "%ssnapkeep migrate: table %s, row %s%" G_GINT64_FORMAT
							", column %s: not valid UTF-8, copied with U+FFFD for the"
							" bad bytes\n", m->progress ? "\n" : "", t->name,
							cur.keyset ? "id " : "", cur.keyset ? id : row_no, c->name);
				}
				if (brc != DB_OK) {
					if (why == NULL)
						why = g_strdup_printf("column %s: %s", c->name, db_errmsg(m->cdb));
					break;
				}
			}
			if (why != NULL) {
				if (cur.keyset)
					*error_r = g_strdup_printf("table %s, row id %" G_GINT64_FORMAT ": %s", t->name,
								   id, why);
				else
					*error_r = g_strdup_printf("table %s, row %" G_GINT64_FORMAT ": %s", t->name,
								   row_no, why);
				g_free(why);
				goto out;
			}
			cur.last_id = id;
			pending++;
			remaining--;
			n++;
			if (pending < group)
				continue;
			if (db_step(ins) != DB_DONE) {
				if (cur.keyset)
					*error_r = g_strdup_printf("table %s, rows with ids %" G_GINT64_FORMAT " to %"
								   G_GINT64_FORMAT ": %s", t->name, group_first_id,
								   id, db_errmsg(m->cdb));
				else
					*error_r = g_strdup_printf("table %s, rows %" G_GINT64_FORMAT " to %"
								   G_GINT64_FORMAT ": %s", t->name, group_first_row,
								   row_no, db_errmsg(m->cdb));
				goto out;
			}
			db_reset(ins);
			db_clear_bindings(ins);
			if (ins != full)
				db_finalize(ins);
			ins = NULL;
			pending = 0;
		}
		if (migrate_exec(m->cdb, "COMMIT", error_r) < 0)
			goto out;
		in_tx = false;
		m->done_rows += n;
		m->bytes += bytes;
		migrate_progress(m, t->name, m->done_rows, m->total_rows, false);
		if (n == 0)
			break;
	}
	db_reset(cur.sel);
	if (forward->len > 0 && migrate_fix_forward(m, t, forward, error_r) < 0)
		goto out;
	ret = 0;
out:
	if (in_tx)
		migrate_rollback(m->cdb);
	if (ins != NULL && ins != full)
		db_finalize(ins);
	db_finalize(full);
	db_finalize(cur.sel);
	g_array_free(forward, TRUE);
	g_string_free(cols, TRUE);
	g_free(sel_sql);
	g_free(sql);
	g_free(tq);
	return ret;
}

/* Every identity sequence continues after the table's largest id; commits
 * with synchronous_commit on, so the whole copy is durable when it returns. */
static int
migrate_sequences(struct migrate *m, char **error_r)
{
	if (migrate_exec(m->cdb, "SET synchronous_commit = on", error_r) < 0 ||
	    migrate_exec(m->cdb, "BEGIN", error_r) < 0)
		return -1;
	for (guint i = 0; i < m->tables->len; i++) {
		struct migrate_table *t = g_ptr_array_index(m->tables, i);
		if (t->id_col < 0)
			continue;
		char *tq = migrate_quote(t->name);
		char *sql = g_strdup_printf("SELECT setval(pg_get_serial_sequence(?1, 'id'), max(id)) FROM %s", tq);
		struct db_stmt *stmt = NULL;
		int rc = db_prepare(m->cdb, sql, &stmt);
		if (rc == DB_OK) {
			db_bind_text(stmt, 1, tq, -1, DB_STATIC);
			rc = db_step(stmt);
		}
		if (rc != DB_ROW)
			*error_r = g_strdup_printf("table %s: resetting its id sequence: %s", t->name,
						   db_errmsg(m->cdb));
		db_finalize(stmt);
		g_free(sql);
		g_free(tq);
		if (rc != DB_ROW) {
			migrate_rollback(m->cdb);
			return -1;
		}
	}
	return migrate_exec(m->cdb, "COMMIT", error_r);
}

/* Refuses a target with rows in any table to be copied. */
static int
migrate_check_empty(struct migrate *m, GString *busy, char **error_r)
{
	for (guint i = 0; i < m->tables->len; i++) {
		struct migrate_table *t = g_ptr_array_index(m->tables, i);
		char *tq = migrate_quote(t->name);
		char *sql = g_strdup_printf("SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) AS x", tq);
		int64_t n = 0;
		int r = migrate_query_int64(m->ddb, sql, &n, error_r);
		g_free(sql);
		g_free(tq);
		if (r < 0)
			return -1;
		if (n > 0)
			g_string_append_printf(busy, "%s%s", busy->len > 0 ? ", " : "", t->name);
	}
	return 0;
}

/* --- verification ---------------------------------------------------------------------- */

struct migrate_msg {
	int64_t id, device_id;
	bool pruned;
	char sha256[65];
};

static gint
migrate_msg_device_cmp(gconstpointer a, gconstpointer b)
{
	const struct migrate_msg *x = a, *y = b;

	if (x->device_id != y->device_id)
		return x->device_id < y->device_id ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* The source's messages in id order against one page of the target's. */
static int
migrate_compare_page(struct migrate *m, struct db_stmt *src, bool *src_more, GArray *page, char **error_r)
{
	for (guint i = 0; i < page->len; i++) {
		const struct migrate_msg *t = &g_array_index(page, struct migrate_msg, i);
		for (;;) {
			if (!*src_more) {
				migrate_problem(m, g_strdup_printf("message %" G_GINT64_FORMAT ": in the target, not in"
								   " the source", t->id));
				break;
			}
			int64_t sid = db_column_int64(src, 0);
			if (sid == t->id) {
				const char *sha = (const char *)db_column_text(src, 1);
				if (sha == NULL || strcmp(sha, t->sha256) != 0)
					migrate_problem(m, g_strdup_printf("message %" G_GINT64_FORMAT ": SHA-256 %s in"
									   " the target, %s in the source", t->id,
									   t->sha256, sha != NULL ? sha : "none"));
			} else if (sid < t->id) {
				migrate_problem(m, g_strdup_printf("message %" G_GINT64_FORMAT ": missing from the"
								   " target", sid));
			} else {
				migrate_problem(m, g_strdup_printf("message %" G_GINT64_FORMAT ": in the target, not in"
								   " the source", t->id));
				break;
			}
			int rc = db_step(src);
			if (rc != DB_ROW && rc != DB_DONE) {
				*error_r = g_strdup_printf("%s: reading messages: %s", db_display_name(m->sdb),
							   db_errmsg(m->sdb));
				return -1;
			}
			*src_more = rc == DB_ROW;
			if (sid == t->id)
				break;
		}
	}
	return 0;
}

static int
migrate_verify_messages(struct migrate *m, int64_t total, char **error_r)
{
	struct db_stmt *src = NULL, *tgt = NULL;
	GArray *page = g_array_new(FALSE, TRUE, sizeof(struct migrate_msg));
	int64_t last_id = G_MININT64;
	bool src_more;
	int rc, ret = -1;

	if (db_prepare(m->sdb, "SELECT id, sha256 FROM messages ORDER BY id", &src) != DB_OK) {
		*error_r = g_strdup_printf("%s: reading messages: %s", db_display_name(m->sdb), db_errmsg(m->sdb));
		goto out;
	}
	if (db_prepare(m->ddb,
		       "SELECT id, sha256, CASE WHEN method = 'pruned' THEN 1 ELSE 0 END, coalesce(device_id, 0)"
		       " FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
		       &tgt) != DB_OK) {
		*error_r = g_strdup_printf("%s: reading messages: %s", db_display_name(m->ddb), db_errmsg(m->ddb));
		goto out;
	}
	rc = db_step(src);
	if (rc != DB_ROW && rc != DB_DONE) {
		*error_r = g_strdup_printf("%s: reading messages: %s", db_display_name(m->sdb), db_errmsg(m->sdb));
		goto out;
	}
	src_more = rc == DB_ROW;
	for (;;) {
		g_array_set_size(page, 0);
		db_reset(tgt);
		db_bind_int64(tgt, 1, last_id);
		db_bind_int64(tgt, 2, m->batch_rows);
		while ((rc = db_step(tgt)) == DB_ROW) {
			struct migrate_msg msg = { 0 };
			const char *sha = (const char *)db_column_text(tgt, 1);
			msg.id = db_column_int64(tgt, 0);
			msg.pruned = db_column_int(tgt, 2) != 0;
			msg.device_id = db_column_int64(tgt, 3);
			g_strlcpy(msg.sha256, sha != NULL ? sha : "", sizeof(msg.sha256));
			g_array_append_val(page, msg);
		}
		if (rc != DB_DONE) {
			*error_r = g_strdup_printf("%s: reading messages: %s", db_display_name(m->ddb),
						   db_errmsg(m->ddb));
			goto out;
		}
		db_reset(tgt);
		if (page->len == 0)
			break;
		last_id = g_array_index(page, struct migrate_msg, page->len - 1).id;
		if (migrate_compare_page(m, src, &src_more, page, error_r) < 0)
			goto out;
		/* Device by device, each delta after its base: the chains
		 * are decoded from the container cache. */
		g_array_sort(page, migrate_msg_device_cmp);
		for (guint i = 0; i < page->len; i++) {
			const struct migrate_msg *msg = &g_array_index(page, struct migrate_msg, i);
			GBytes *raw = NULL;
			char *why = NULL;
			m->messages++;
			if (msg->pruned) {
				m->pruned++;
				continue;
			}
			if (store_message_get(m->dst, msg->id, &raw, &why) < 0) {
				migrate_problem(m, g_strdup_printf("message %" G_GINT64_FORMAT ": reading it back from"
								   " the target: %s", msg->id, why));
				g_free(why);
				continue;
			}
			m->verified++;
			m->raw_bytes += g_bytes_get_size(raw);
			g_bytes_unref(raw);
		}
		migrate_progress(m, "verify", m->messages, total, false);
	}
	while (src_more) {
		migrate_problem(m, g_strdup_printf("message %" G_GINT64_FORMAT ": missing from the target",
						   db_column_int64(src, 0)));
		rc = db_step(src);
		if (rc != DB_ROW && rc != DB_DONE) {
			*error_r = g_strdup_printf("%s: reading messages: %s", db_display_name(m->sdb),
						   db_errmsg(m->sdb));
			goto out;
		}
		src_more = rc == DB_ROW;
	}
	ret = 0;
out:
	db_finalize(src);
	db_finalize(tgt);
	g_array_free(page, TRUE);
	return ret;
}

/* --- the command ------------------------------------------------------------------------- */

int
cli_migrate(int argc, char **argv)
{
	g_autofree gchar *from = NULL, *to = NULL, *password_file = NULL;
	gint batch = MIGRATE_BATCH_ROWS_DEFAULT, batch_mb = MIGRATE_BATCH_MB_DEFAULT;
	gboolean quiet = FALSE, no_progress = FALSE;
	GOptionEntry entries[] = {
	    {"from", 0, 0, G_OPTION_ARG_FILENAME, &from, "the SQLite database to copy", "FILE"},
	    {"to", 0, 0, G_OPTION_ARG_STRING, &to, "the empty PostgreSQL database to copy into", "URL"},
	    {"password-file", 0, 0, G_OPTION_ARG_FILENAME, &password_file,
	     "the target's password (first line; default: PGPASSWORD, ~/.pgpass)", "FILE"},
	    {"batch", 0, 0, G_OPTION_ARG_INT, &batch, "rows per transaction (default 1000)", "N"},
	    {"batch-mb", 0, 0, G_OPTION_ARG_INT, &batch_mb,
	     "text and blob megabytes per transaction (default 32)", "MB"},
	    {"no-progress", 0, 0, G_OPTION_ARG_NONE, &no_progress, "no progress line", NULL},
	    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no summary line", NULL},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionContext *octx = g_option_context_new(
	    "- copy a SQLite installation into an empty PostgreSQL database and verify it");
	GError *gerr = NULL;
	struct migrate m = { 0 };
	struct store_settings ss;
	GHashTable *target_cols = NULL;
	GString *skipped = g_string_new(NULL), *busy = g_string_new(NULL);
	char *error = NULL;
	int ret = 1, ntables = 0;
	int64_t lock = 0, messages_total = 0;
	bool src_tx = false;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep migrate: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		ret = CLI_EX_USAGE;
		goto out;
	}
	g_option_context_free(octx);
	if (argc > 1 || from == NULL || to == NULL) {
		fprintf(stderr, "snapkeep migrate: give --from FILE.db and --to postgresql://... (no arguments)\n");
		ret = CLI_EX_USAGE;
		goto out;
	}
	if (db_target_is_postgresql(from)) {
		fprintf(stderr, "snapkeep migrate: --from is a SQLite file; to copy between PostgreSQL"
				" databases use pg_dump\n");
		ret = CLI_EX_USAGE;
		goto out;
	}
	if (!db_target_is_postgresql(to)) {
		fprintf(stderr, "snapkeep migrate: --to must be a postgresql:// URL\n");
		ret = CLI_EX_USAGE;
		goto out;
	}
	if (batch < 1 || batch_mb < 1) {
		fprintf(stderr, "snapkeep migrate: --batch and --batch-mb must be at least 1\n");
		ret = CLI_EX_USAGE;
		goto out;
	}
	m.batch_rows = (unsigned)batch;
	m.batch_bytes = (uint64_t)batch_mb << 20;
	m.progress = !no_progress && isatty(STDERR_FILENO);
	m.tables = g_ptr_array_new_with_free_func(migrate_table_free);
	m.problems = g_ptr_array_new_with_free_func(g_free);

	/* The source, read-only, at this snapkeep's schema. */
	if (!g_file_test(from, G_FILE_TEST_IS_REGULAR)) {
		fprintf(stderr, "snapkeep migrate: %s: no such database file\n", from);
		ret = CLI_EX_NOINPUT;
		goto out;
	}
	store_settings_default(&ss);
	ss.path = from;
	ss.readonly = true;
	if (store_open(&ss, &m.src, &error) < 0) {
		fprintf(stderr, "snapkeep migrate: %s\nsnapkeep migrate: the source must have this snapkeep's"
				" schema: run the current snapkeep on it once (start snapkeepd, or"
				" snapkeep prune --db %s --dry-run --days 36500) and migrate again\n",
			error, from);
		ret = CLI_EX_DATAERR;
		goto out;
	}
	m.sdb = store_db(m.src);

	/* The target: its schema created, locked against a second migrate. */
	store_settings_default(&ss);
	ss.path = to;
	ss.password_file = password_file;
	ss.archive_cache_entries = MIGRATE_CACHE_ENTRIES;
	ss.archive_cache_bytes = MIGRATE_CACHE_BYTES;
	if (store_open(&ss, &m.dst, &error) < 0) {
		fprintf(stderr, "snapkeep migrate: %s\n", error);
		ret = CLI_EX_TEMPFAIL;
		goto out;
	}
	m.ddb = store_db(m.dst);
	struct db_open_settings dos = {
		.target = to,
		.password_file = password_file,
		.application_name = "snapkeep migrate",
	};
	if (db_open(&dos, &m.cdb, &error) < 0) {
		fprintf(stderr, "snapkeep migrate: %s: %s\n", db_display_name(m.ddb), error);
		ret = CLI_EX_TEMPFAIL;
		goto out;
	}
	/* Durable at the end (migrate_sequences), not at every batch. */
	if (migrate_exec(m.cdb, "SET synchronous_commit = off", &error) < 0)
		goto fail;
	if (store_schema_version(m.src) != store_schema_version(m.dst)) {
		fprintf(stderr, "snapkeep migrate: %s has schema version %d, the target %d: use the snapkeep"
				" that wrote the source\n", from, store_schema_version(m.src),
			store_schema_version(m.dst));
		ret = CLI_EX_DATAERR;
		goto out;
	}
	if (migrate_query_int64(m.ddb, MIGRATE_LOCK_SQL, &lock, &error) < 0)
		goto fail;
	if (lock == 0) {
		fprintf(stderr, "snapkeep migrate: %s: another snapkeep migrate is copying into it\n",
			db_display_name(m.ddb));
		ret = CLI_EX_CANTCREAT;
		goto out;
	}

	/* One read transaction on the source for the copy and its counts. */
	if (migrate_exec(m.sdb, "BEGIN", &error) < 0)
		goto fail;
	src_tx = true;
	if ((target_cols = migrate_target_columns(&m, &error)) == NULL ||
	    migrate_source_tables(&m, target_cols, skipped, &error) < 0 ||
	    migrate_target_refs(&m, &error) < 0 || migrate_order(&m, &error) < 0)
		goto fail;
	if (migrate_table_find(&m, "messages") == NULL || migrate_table_find(&m, "devices") == NULL) {
		fprintf(stderr, "snapkeep migrate: %s is not a snapkeep database (no messages or devices"
				" table)\n", from);
		ret = CLI_EX_DATAERR;
		goto out;
	}
	if (migrate_check_empty(&m, busy, &error) < 0)
		goto fail;
	if (busy->len > 0) {
		fprintf(stderr, "snapkeep migrate: %s is not empty (rows in %s): migrate copies into an empty"
				" database only; create a new one (or drop and create this one after a"
				" failed run)\n", db_display_name(m.ddb), busy->str);
		ret = CLI_EX_CANTCREAT;
		goto out;
	}
	if (skipped->len > 0 && !quiet)
		fprintf(stderr, "snapkeep migrate: not copied (the target has no such table): %s\n", skipped->str);
	if (migrate_count(&m, m.sdb, true, &error) < 0)
		goto fail;
	for (guint i = 0; i < m.tables->len; i++)
		m.total_rows += ((struct migrate_table *)g_ptr_array_index(m.tables, i))->source_rows;
	ntables = (int)m.tables->len;

	/* The copy. */
	gint64 started = g_get_monotonic_time();
	for (guint i = 0; i < m.tables->len; i++)
		if (migrate_copy_table(&m, g_ptr_array_index(m.tables, i), &error) < 0) {
			migrate_progress(&m, "failed", m.done_rows, m.total_rows, true);
			fprintf(stderr, "snapkeep migrate: %s\nsnapkeep migrate: the target holds part of the"
					" copy: drop and create the database again before another run\n", error);
			ret = 1;
			goto out;
		}
	if (migrate_sequences(&m, &error) < 0)
		goto fail;
	migrate_progress(&m, "done", m.done_rows, m.total_rows, true);
	gint64 copied = g_get_monotonic_time();

	/* Verification. */
	if (migrate_count(&m, m.ddb, false, &error) < 0)
		goto fail;
	for (guint i = 0; i < m.tables->len; i++) {
		struct migrate_table *t = g_ptr_array_index(m.tables, i);
		if (t->source_rows != t->target_rows)
			migrate_problem(&m, g_strdup_printf("table %s: %" G_GINT64_FORMAT " rows in the source, %"
							    G_GINT64_FORMAT " in the target", t->name,
							    t->source_rows, t->target_rows));
		if (strcmp(t->name, "messages") == 0)
			messages_total = t->source_rows;
	}
	if (migrate_verify_messages(&m, messages_total, &error) < 0)
		goto fail;
	migrate_progress(&m, "verify", m.messages, messages_total, true);
	gint64 verified = g_get_monotonic_time();
	(void)migrate_exec(m.sdb, "COMMIT", &error);
	g_clear_pointer(&error, g_free);
	src_tx = false;

	for (guint i = 0; i < m.problems->len; i++)
		printf("mismatch: %s\n", (const char *)g_ptr_array_index(m.problems, i));
	if (m.problem_count > m.problems->len)
		printf("mismatch: ... and %" G_GUINT64_FORMAT " more\n", m.problem_count - m.problems->len);
	ret = m.problem_count > 0 ? 1 : CLI_EX_OK;
	if (!quiet) {
		double copy_s = (double)(copied - started) / 1e6, verify_s = (double)(verified - copied) / 1e6;
		printf("migrate: %s: %d tables, %" G_GINT64_FORMAT " rows, %.1f MB copied in %.2f s"
		       " (%.0f rows/s, %.1f MB/s); %" G_GINT64_FORMAT " messages verified (%.1f MB raw, %"
		       G_GINT64_FORMAT " pruned) in %.2f s; %" G_GUINT64_FORMAT " problems\n",
		       ret == 0 ? "ok" : "FAILED", ntables, m.done_rows, m.bytes / 1e6, copy_s,
		       copy_s > 0 ? m.done_rows / copy_s : 0.0, copy_s > 0 ? m.bytes / 1e6 / copy_s : 0.0,
		       m.verified, m.raw_bytes / 1e6, m.pruned, verify_s, m.problem_count);
		if (m.repaired > 0)
			printf("migrate: %" G_GUINT64_FORMAT " text values were not valid UTF-8: copied with"
			       " U+FFFD for the bad bytes\n", m.repaired);
	}
	goto out;
fail:
	fprintf(stderr, "snapkeep migrate: %s\n", error);
	ret = 1;
out:
	if (src_tx)
		migrate_rollback(m.sdb);
	g_free(error);
	if (target_cols != NULL)
		g_hash_table_unref(target_cols);
	if (m.tables != NULL)
		g_ptr_array_free(m.tables, TRUE);
	if (m.problems != NULL)
		g_ptr_array_free(m.problems, TRUE);
	g_string_free(skipped, TRUE);
	g_string_free(busy, TRUE);
	db_close(&m.cdb);
	store_free(&m.dst);
	store_free(&m.src);
	return ret;
}
