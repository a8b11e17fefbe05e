/* output.c: tables and JSON for the read-only subcommands.  Strings from the
 * database (they came from devices and mails) are printed with control
 * characters replaced, so a hostile hostname cannot drive the terminal. */
#include "config.h"

#include "cli/cli.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

const char *
cli_default_db(void)
{
	const char *env = g_getenv("SNAPKEEP_DB");
	return env != NULL && *env != '\0' ? env : "snapkeep.db";
}

int
cli_open_readonly(const char *path, struct store **store_r)
{
	struct store_settings ss;
	char *error = NULL;

	if (!db_target_is_postgresql(path) && !g_file_test(path, G_FILE_TEST_EXISTS)) {
		fprintf(stderr, "snapkeep: %s: no such database (import something first, or --db)\n",
			path);
		return -1;
	}
	store_settings_default(&ss);
	ss.path = path;
	ss.readonly = true;
	if (store_open(&ss, store_r, &error) < 0) {
		fprintf(stderr, "snapkeep: %s\n", error);
		g_free(error);
		return -1;
	}
	return 0;
}

static char *
cli_sanitize(const char *s)
{
	char *out = g_strdup(s != NULL ? s : "");
	for (char *p = out; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return out;
}

static void
cli_json_add_column(JsonBuilder *b, struct db_stmt *stmt, int i)
{
	json_builder_set_member_name(b, db_column_name(stmt, i));
	switch (db_column_type(stmt, i)) {
	case DB_INTEGER:
		json_builder_add_int_value(b, db_column_int64(stmt, i));
		break;
	case DB_FLOAT:
		json_builder_add_double_value(b, db_column_double(stmt, i));
		break;
	case DB_NULL:
		json_builder_add_null_value(b);
		break;
	default:
		json_builder_add_string_value(b, (const char *)db_column_text(stmt, i));
		break;
	}
}

JsonNode *
cli_rows_to_json(struct db_stmt *stmt, int *rc_r)
{
	JsonBuilder *b = json_builder_new();
	int rc;

	json_builder_begin_array(b);
	while ((rc = db_step(stmt)) == DB_ROW) {
		json_builder_begin_object(b);
		for (int i = 0; i < db_column_count(stmt); i++)
			cli_json_add_column(b, stmt, i);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	JsonNode *root = json_builder_get_root(b);
	g_object_unref(b);
	*rc_r = rc;
	return root;
}

void
cli_print_json(JsonNode *root)
{
	JsonGenerator *gen = json_generator_new();
	json_generator_set_root(gen, root);
	json_generator_set_pretty(gen, TRUE);
	gchar *text = json_generator_to_data(gen, NULL);
	printf("%s\n", text);
	g_free(text);
	g_object_unref(gen);
}

int
cli_print_rows(struct db_stmt *stmt, bool json, const char *indent)
{
	int rc;
	int ncol = db_column_count(stmt);

	if (json) {
		JsonNode *root = cli_rows_to_json(stmt, &rc);
		cli_print_json(root);
		json_node_unref(root);
		return rc == DB_DONE ? 0 : -1;
	}

	GPtrArray *rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	gsize *width = g_new0(gsize, ncol);
	gchar **header = g_new0(gchar *, ncol + 1);
	for (int i = 0; i < ncol; i++) {
		header[i] = g_strdup(db_column_name(stmt, i));
		width[i] = g_utf8_strlen(header[i], -1);
	}
	g_ptr_array_add(rows, header);
	while ((rc = db_step(stmt)) == DB_ROW) {
		gchar **row = g_new0(gchar *, ncol + 1);
		for (int i = 0; i < ncol; i++) {
			const char *v = (const char *)db_column_text(stmt, i);
			row[i] = cli_sanitize(v != NULL ? v : "-");
			if (!g_utf8_validate(row[i], -1, NULL)) {
				g_free(row[i]);
				row[i] = g_strdup("?");
			}
			width[i] = MAX(width[i], (gsize)g_utf8_strlen(row[i], -1));
		}
		g_ptr_array_add(rows, row);
	}
	for (guint r = 0; r < rows->len; r++) {
		gchar **row = g_ptr_array_index(rows, r);
		GString *line = g_string_new(indent);
		for (int i = 0; i < ncol; i++) {
			g_string_append(line, row[i]);
			if (i + 1 < ncol) {
				gsize pad = width[i] - (gsize)g_utf8_strlen(row[i], -1) + 2;
				for (gsize k = 0; k < pad; k++)
					g_string_append_c(line, ' ');
			}
		}
		printf("%s\n", line->str);
		g_string_free(line, TRUE);
	}
	if (rows->len == 1)
		printf("%s(none)\n", indent);
	g_free(width);
	g_ptr_array_free(rows, TRUE);
	return rc == DB_DONE ? 0 : -1;
}
