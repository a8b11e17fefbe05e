/* request.c: what every handler uses: responses, errors in the request's
 * kind (JSON, HTML, text), query parameters with strict parsing (a
 * malformed or unknown parameter is a 400 with a message, never a guess),
 * links that keep the current query, and the pool of read-only database
 * connections (one per worker thread at most, opened lazily). */
#include "config.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <string.h>

#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

void
web_response_init(struct web_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->headers = g_ptr_array_new_with_free_func(g_free);
}

void
web_response_clear(struct web_response *resp)
{
	g_free(resp->content_type);
	if (resp->body != NULL)
		g_bytes_unref(resp->body);
	if (resp->headers != NULL)
		g_ptr_array_unref(resp->headers);
	memset(resp, 0, sizeof(*resp));
}

void
web_respond_bytes(struct web_response *resp, unsigned status, const char *content_type,
		  GBytes *body)
{
	resp->status = status;
	g_free(resp->content_type);
	resp->content_type = g_strdup(content_type);
	if (resp->body != NULL)
		g_bytes_unref(resp->body);
	resp->body = body;
}

void
web_respond(struct web_response *resp, unsigned status, const char *content_type, GString *body)
{
	web_respond_bytes(resp, status, content_type,
			  body != NULL ? g_string_free_to_bytes(body) : g_bytes_new(NULL, 0));
}

void
web_header_add(struct web_response *resp, const char *name, const char *value)
{
	g_ptr_array_add(resp->headers, g_strdup(name));
	g_ptr_array_add(resp->headers, g_strdup(value));
}

static const char *
status_text(unsigned status)
{
	switch (status) {
	case 400:
		return "Bad request";
	case 401:
		return "Authentication required";
	case 403:
		return "Forbidden";
	case 404:
		return "Not found";
	case 405:
		return "Method not allowed";
	case 413:
		return "Request too large";
	case 414:
		return "URL too long";
	case 421:
		return "Misdirected request";
	case 500:
		return "Internal error";
	case 503:
		return "Unavailable";
	default:
		return "Error";
	}
}

void
web_respond_error(struct web_request *req, struct web_response *resp, unsigned status,
		  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *raw = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	char *msg = web_text_clean(raw);
	g_free(raw);

	if (req->kind == WEB_KIND_JSON) {
		JsonBuilder *b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "error");
		json_builder_add_string_value(b, msg);
		json_builder_set_member_name(b, "status");
		json_builder_add_int_value(b, status);
		json_builder_end_object(b);
		JsonNode *root = json_builder_get_root(b);
		char *text = json_to_string(root, FALSE);
		json_node_unref(root);
		g_object_unref(b);
		GString *body = g_string_new(text);
		g_string_append_c(body, '\n');
		g_free(text);
		web_respond(resp, status, "application/json", body);
	} else if (req->kind == WEB_KIND_HTML && req->config != NULL) {
		GString *body = g_string_new(NULL);
		char code[16];
		g_snprintf(code, sizeof(code), "%u", status);
		const char *vars[] = {"status",	 code, "title", status_text(status),
				      "message", msg,  NULL};
		web_template_fill(body, web_assets_template(req->config->assets, "error.html"),
				  vars);
		html_page(req, resp, status_text(status), "", body);
		resp->status = status;
	} else {
		GString *body = g_string_new(msg);
		g_string_append_c(body, '\n');
		web_respond(resp, status, "text/plain; charset=utf-8", body);
	}
	g_free(msg);
}

/* Statements are compiled once per connection and kept (the set of SQL
 * texts is the code's, so bounded); web_stmt_done resets one for reuse. */
struct db_stmt *
web_prepare(struct web_request *req, struct web_response *resp, const char *sql)
{
	struct db_stmt *st = req->stmts != NULL ? g_hash_table_lookup(req->stmts, sql) : NULL;
	if (st != NULL) {
		/* Whatever an earlier user left: unbound parameters are NULL. */
		db_reset(st);
		db_clear_bindings(st);
		return st;
	}
	if (db_prepare(store_db(req->store), sql, &st) != DB_OK) {
		web_respond_db_error(req, resp, store_db(req->store), "prepare");
		return NULL;
	}
	if (req->stmts != NULL)
		g_hash_table_insert(req->stmts, g_strdup(sql), st);
	return st;
}

void
web_stmt_done(struct db_stmt *st)
{
	if (st == NULL)
		return;
	db_reset(st);
	db_clear_bindings(st);
}

void
web_respond_db_error(struct web_request *req, struct web_response *resp, struct db *db,
		     const char *what)
{
	log_warnx("web: event=db-error what=%s error=\"%s\"", what,
		  db != NULL ? db_errmsg(db) : "no connection");
	if (db != NULL &&
	    (db_errcode(db) == DB_BUSY || db_errcode(db) == DB_LOCKED))
		web_respond_error(req, resp, 503, "the database is busy, try again");
	else
		web_respond_error(req, resp, 500, "database error while reading %s", what);
}

/* ---- the connection pool ---- */

struct web_pool {
	GMutex lock;
	GCond cond;
	GPtrArray *idle;
	unsigned open, max;
	char *db_path;
	GHashTable *caches; /* struct store * -> GHashTable (SQL text -> struct db_stmt *) */
	int64_t cache_kib, mmap_size;
};

int
web_pool_new(const char *db_path, unsigned max, size_t cache_size, size_t mmap_size,
	     struct web_pool **pool_r)
{
	struct web_pool *p = g_new0(struct web_pool, 1);
	p->cache_kib = (int64_t)(cache_size / 1024);
	p->mmap_size = (int64_t)mmap_size;
	g_mutex_init(&p->lock);
	g_cond_init(&p->cond);
	p->idle = g_ptr_array_new();
	p->max = max > 0 ? max : 1;
	p->db_path = g_strdup(db_path);
	p->caches = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					  (GDestroyNotify)g_hash_table_destroy);
	*pool_r = p;
	return 0;
}

struct store *
web_pool_get(struct web_pool *p, char **error_r)
{
	struct store *s = NULL;
	g_mutex_lock(&p->lock);
	while (p->idle->len == 0 && p->open >= p->max)
		g_cond_wait(&p->cond, &p->lock);
	if (p->idle->len > 0) {
		s = g_ptr_array_steal_index(p->idle, p->idle->len - 1);
		g_mutex_unlock(&p->lock);
		return s;
	}
	p->open++;
	g_mutex_unlock(&p->lock);

	struct store_settings settings;
	store_settings_default(&settings);
	settings.path = p->db_path;
	settings.readonly = true;
	settings.busy_timeout_ms = 5000;
	settings.archive_cache_entries = 2;
	if (store_open(&settings, &s, error_r) < 0) {
		g_mutex_lock(&p->lock);
		p->open--;
		g_cond_signal(&p->cond);
		g_mutex_unlock(&p->lock);
		return NULL;
	}
	/* Belt and braces: this connection never writes.  A larger page cache
	 * and a memory map: a device page reads a few thousand pages spread
	 * over the file. */
	char *pragmas =
	    g_strdup_printf("PRAGMA query_only = 1; PRAGMA cache_size = -%" G_GINT64_FORMAT
			    "; PRAGMA mmap_size = %" G_GINT64_FORMAT,
			    p->cache_kib, p->mmap_size);
	if (db_engine(store_db(s)) == DB_ENGINE_SQLITE)
		db_exec(store_db(s), pragmas, NULL);
	g_free(pragmas);
	g_mutex_lock(&p->lock);
	g_hash_table_insert(p->caches, s,
			    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL));
	g_mutex_unlock(&p->lock);
	return s;
}

GHashTable *
web_pool_stmts(struct web_pool *p, struct store *s)
{
	g_mutex_lock(&p->lock);
	GHashTable *c = g_hash_table_lookup(p->caches, s);
	g_mutex_unlock(&p->lock);
	return c;
}

void
web_pool_put(struct web_pool *p, struct store *s)
{
	if (s == NULL)
		return;
	/* No statement may keep a read transaction (it would pin the WAL):
	 * reset any a handler left running. */
	db_reset_all(store_db(s));
	if (!db_get_autocommit(store_db(s)))
		db_exec(store_db(s), "ROLLBACK", NULL);
	g_mutex_lock(&p->lock);
	g_ptr_array_add(p->idle, s);
	g_cond_signal(&p->cond);
	g_mutex_unlock(&p->lock);
}

void
web_pool_free(struct web_pool **poolp)
{
	struct web_pool *p = *poolp;
	if (p == NULL)
		return;
	*poolp = NULL;
	for (guint i = 0; i < p->idle->len; i++) {
		struct store *s = p->idle->pdata[i];
		/* Ours only: the store finalizes its own statements. */
		GHashTable *cache = g_hash_table_lookup(p->caches, s);
		if (cache != NULL) {
			GHashTableIter it;
			gpointer st;
			g_hash_table_iter_init(&it, cache);
			while (g_hash_table_iter_next(&it, NULL, &st))
				db_finalize(st);
		}
		g_hash_table_remove(p->caches, s);
		store_free(&s);
	}
	g_ptr_array_unref(p->idle);
	g_hash_table_destroy(p->caches);
	g_mutex_clear(&p->lock);
	g_cond_clear(&p->cond);
	g_free(p->db_path);
	g_free(p);
}

struct store *
web_request_store(struct web_request *req, struct web_response *resp)
{
	char *error = NULL;
	if (req->store != NULL)
		return req->store;
	req->store = web_pool_get(web_server_pool(req->server), &error);
	if (req->store != NULL)
		req->stmts = web_pool_stmts(web_server_pool(req->server), req->store);
	if (req->store == NULL) {
		log_warnx("web: event=db-open-failed error=\"%s\"", error);
		web_respond_error(req, resp, 503, "the database is not available");
		g_free(error);
	}
	return req->store;
}

/* ---- parameters ---- */

int
web_params_check(struct web_request *req, struct web_response *resp, const char *const *known)
{
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, req->query);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		bool ok = false;
		for (const char *const *n = known; *n != NULL && !ok; n++)
			ok = strcmp(*n, k) == 0;
		if (!ok) {
			GString *list = g_string_new(NULL);
			for (const char *const *n = known; *n != NULL; n++)
				g_string_append_printf(list, "%s%s", list->len ? ", " : "", *n);
			web_respond_error(req, resp, 400, "unknown parameter '%s' (known: %s)",
					  (const char *)k, list->len ? list->str : "none");
			g_string_free(list, TRUE);
			return -1;
		}
	}
	return 0;
}

const char *
web_param(struct web_request *req, const char *name)
{
	const char *v = g_hash_table_lookup(req->query, name);
	return v != NULL && *v != '\0' ? v : NULL;
}

int
web_param_uint(struct web_request *req, struct web_response *resp, const char *name, unsigned min,
	       unsigned max, unsigned def, unsigned *value_r)
{
	const char *v = web_param(req, name);
	guint64 n;
	GError *gerr = NULL;

	if (v == NULL) {
		*value_r = def;
		return 0;
	}
	if (!g_ascii_string_to_unsigned(v, 10, min, max, &n, &gerr)) {
		web_respond_error(req, resp, 400, "parameter %s: want a whole number from %u to %u",
				  name, min, max);
		g_error_free(gerr);
		return -1;
	}
	*value_r = (unsigned)n;
	return 0;
}

int
web_param_enum(struct web_request *req, struct web_response *resp, const char *name,
	       const char *const *allowed, int def, int *index_r)
{
	const char *v = web_param(req, name);
	if (v == NULL) {
		*index_r = def;
		return 0;
	}
	for (int i = 0; allowed[i] != NULL; i++)
		if (strcmp(allowed[i], v) == 0) {
			*index_r = i;
			return 0;
		}
	GString *list = g_string_new(NULL);
	for (int i = 0; allowed[i] != NULL; i++)
		g_string_append_printf(list, "%s%s", i ? ", " : "", allowed[i]);
	web_respond_error(req, resp, 400, "parameter %s: want one of %s", name, list->str);
	g_string_free(list, TRUE);
	return -1;
}

int
web_param_time(struct web_request *req, struct web_response *resp, const char *name,
	       bool end_of_day, int64_t *unix_r)
{
	const char *v = web_param(req, name);
	char utc[SK_UTC_SIZE];
	int off = 0, has_off = 0;
	int64_t t;

	if (v == NULL)
		return 0;
	if (strlen(v) == 10) {
		/* A date: midnight UTC. */
		char *full = g_strconcat(v, "T00:00:00Z", NULL);
		int r = sk_time_parse_iso8601(full, utc, &t, &off, &has_off);
		g_free(full);
		if (r == 0 && v[4] == '-' && v[7] == '-') {
			*unix_r = end_of_day ? t + 86400 : t;
			return 0;
		}
	} else if (strlen(v) <= 40 && sk_time_parse_iso8601(v, utc, &t, &off, &has_off) == 0) {
		*unix_r = t;
		return 0;
	}
	web_respond_error(req, resp, 400,
			  "parameter %s: want a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM:SSZ",
			  name);
	return -1;
}

char *
web_query_with(struct web_request *req, ...)
{
	GHashTable *q = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter it;
	gpointer k, v;
	va_list ap;

	g_hash_table_iter_init(&it, req->query);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (v != NULL && *(const char *)v != '\0')
			g_hash_table_insert(q, k, v);
	va_start(ap, req);
	for (;;) {
		const char *name = va_arg(ap, const char *);
		if (name == NULL)
			break;
		const char *value = va_arg(ap, const char *);
		if (value == NULL || *value == '\0')
			g_hash_table_remove(q, name);
		else
			g_hash_table_insert(q, (gpointer)name, (gpointer)value);
	}
	va_end(ap);

	/* Sorted, so the same query gives the same link. */
	GList *keys = g_list_sort(g_hash_table_get_keys(q), (GCompareFunc)strcmp);
	GString *out = g_string_new(NULL);
	for (GList *l = keys; l != NULL; l = l->next) {
		char *ek = g_uri_escape_string(l->data, NULL, FALSE);
		char *ev = g_uri_escape_string(g_hash_table_lookup(q, l->data), NULL, FALSE);
		g_string_append_printf(out, "%c%s=%s", out->len ? '&' : '?', ek, ev);
		g_free(ek);
		g_free(ev);
	}
	g_list_free(keys);
	g_hash_table_destroy(q);
	if (out->len == 0)
		g_string_append_c(out, '?');
	return g_string_free(out, FALSE);
}

char *
web_device_path(const char *serial)
{
	char *e = g_uri_escape_string(serial, NULL, FALSE);
	char *p = g_strconcat("/devices/", e, NULL);
	g_free(e);
	return p;
}
