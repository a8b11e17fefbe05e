/* test-smtp-config.c: snapkeepd's settings table, its GKeyFile reader, and
 * the two documents that must list the same settings: snapkeep.conf(5) and
 * contrib/snapkeep.conf.sample (same sections, keys, types and defaults, in
 * the table's order). */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "daemon/config-table.h"
#include "util/log.h"

struct entry {
	char *section, *key, *type, *value;
};

static void
entry_free(gpointer p)
{
	struct entry *e = p;
	g_free(e->section);
	g_free(e->key);
	g_free(e->type);
	g_free(e->value);
	g_free(e);
}

static char *
source_path(const char *rel)
{
	const char *top = g_getenv("SK_TOP_SRCDIR");
	if (top == NULL)
		g_error("SK_TOP_SRCDIR is not set: run through make check");
	return g_build_filename(top, rel, NULL);
}

static char *
read_source(const char *rel)
{
	char *path = source_path(rel);
	char *text = NULL;
	GError *gerr = NULL;
	if (!g_file_get_contents(path, &text, NULL, &gerr))
		g_error("%s", gerr->message);
	g_free(path);
	return text;
}

/* The manual page: .SS "[section]", then .TP / .B key / "Type: T.  Default: \fBD\fR." */
static GPtrArray *
man_entries(void)
{
	char *text = read_source("man/snapkeep.conf.5");
	gchar **lines = g_strsplit(text, "\n", -1);
	GPtrArray *out = g_ptr_array_new_with_free_func(entry_free);
	char *section = NULL;
	GRegex *type_re = g_regex_new(
	    "^Type: ([a-z]+)\\.  Default: (?:\\\\fB(.*)\\\\fR|(empty))\\.$", 0, 0, NULL);
	bool in_settings = false;

	for (guint i = 0; lines[i] != NULL; i++) {
		const char *l = lines[i];
		if (g_str_has_prefix(l, ".SH ")) {
			in_settings = strcmp(l, ".SH SETTINGS") == 0;
			continue;
		}
		if (!in_settings)
			continue;
		if (g_str_has_prefix(l, ".SS \"[") && g_str_has_suffix(l, "]\"")) {
			g_free(section);
			section = g_strndup(l + 6, strlen(l) - 8);
			continue;
		}
		if (strcmp(l, ".TP") != 0 || lines[i + 1] == NULL ||
		    !g_str_has_prefix(lines[i + 1], ".B ") || lines[i + 2] == NULL)
			continue;
		GMatchInfo *m = NULL;
		if (!g_regex_match(type_re, lines[i + 2], 0, &m)) {
			g_match_info_free(m);
			g_test_message("man: no Type/Default line after %s", lines[i + 1]);
			g_test_fail();
			continue;
		}
		struct entry *e = g_new0(struct entry, 1);
		e->section = g_strdup(section);
		e->key = g_strdup(lines[i + 1] + 3);
		e->type = g_match_info_fetch(m, 1);
		char *def = g_match_info_fetch(m, 2);
		GString *unesc = g_string_new(NULL);
		for (const char *p = def; *p != '\0'; p++) {
			if (p[0] == '\\' && p[1] == 'e') {
				g_string_append_c(unesc, '\\');
				p++;
			} else {
				g_string_append_c(unesc, *p);
			}
		}
		e->value = g_string_free(unesc, FALSE);
		g_free(def);
		g_match_info_free(m);
		g_ptr_array_add(out, e);
		i += 2;
	}
	g_regex_unref(type_re);
	g_free(section);
	g_strfreev(lines);
	g_free(text);
	return out;
}

/* The sample: "[section]" and "#key = default" lines; the type is in the
 * comment paragraph above: "# key (type). ...". */
static GPtrArray *
sample_entries(void)
{
	char *text = read_source("contrib/snapkeep.conf.sample");
	gchar **lines = g_strsplit(text, "\n", -1);
	GPtrArray *out = g_ptr_array_new_with_free_func(entry_free);
	char *section = NULL, *type = NULL;
	GRegex *doc_re = g_regex_new("^# ([a-z_]+) \\(([a-z]+)\\)\\. ", 0, 0, NULL);
	GRegex *key_re = g_regex_new("^#([a-z_]+) =(?: (.*))?$", 0, 0, NULL);

	for (guint i = 0; lines[i] != NULL; i++) {
		const char *l = lines[i];
		GMatchInfo *m = NULL, *k = NULL;
		if (l[0] == '[') {
			g_free(section);
			section = g_strndup(l + 1, strlen(l) - 2);
		} else if (g_regex_match(doc_re, l, 0, &m)) {
			g_free(type);
			type = g_match_info_fetch(m, 2);
		} else if (g_regex_match(key_re, l, 0, &k)) {
			struct entry *e = g_new0(struct entry, 1);
			e->section = g_strdup(section);
			e->key = g_match_info_fetch(k, 1);
			e->value = g_match_info_fetch(k, 2);
			if (e->value == NULL)
				e->value = g_strdup("");
			e->type = g_strdup(type != NULL ? type : "?");
			g_ptr_array_add(out, e);
		}
		if (m != NULL)
			g_match_info_free(m);
		if (k != NULL)
			g_match_info_free(k);
	}
	g_regex_unref(doc_re);
	g_regex_unref(key_re);
	g_free(section);
	g_free(type);
	g_strfreev(lines);
	g_free(text);
	return out;
}

static void
compare_with_table(const char *what, GPtrArray *entries)
{
	guint n = MAX(entries->len, (guint)config_keys_count);
	for (guint i = 0; i < n; i++) {
		const struct config_key *k = i < config_keys_count ? &config_keys[i] : NULL;
		const struct entry *e = i < entries->len ? g_ptr_array_index(entries, i) : NULL;
		if (k == NULL || e == NULL || g_strcmp0(k->section, e->section) != 0 ||
		    strcmp(k->key, e->key) != 0 ||
		    strcmp(config_type_name(k->type), e->type) != 0 ||
		    strcmp(k->default_value, e->value) != 0) {
			g_test_message(
			    "%s, setting %u: table [%s] %s (%s) = \"%s\"; %s has [%s] %s "
			    "(%s) = \"%s\"",
			    what, i + 1, k ? k->section : "-", k ? k->key : "-",
			    k ? config_type_name(k->type) : "-", k ? k->default_value : "-", what,
			    e ? e->section : "-", e ? e->key : "-", e ? e->type : "-",
			    e ? e->value : "-");
			g_test_fail();
			return;
		}
	}
}

static void
test_man_page(void)
{
	GPtrArray *entries = man_entries();
	g_assert_cmpuint(entries->len, >, 0);
	compare_with_table("snapkeep.conf.5", entries);
	g_ptr_array_free(entries, TRUE);
}

static void
test_sample(void)
{
	GPtrArray *entries = sample_entries();
	g_assert_cmpuint(entries->len, >, 0);
	compare_with_table("snapkeep.conf.sample", entries);
	g_ptr_array_free(entries, TRUE);
}

/* Every default is a valid value of its type, and the sample with every
 * line uncommented loads and gives the defaults back. */
static void
test_defaults_load(void)
{
	for (size_t i = 0; i < config_keys_count; i++) {
		char *why = NULL;
		if (config_value_check(config_keys[i].type, config_keys[i].default_value, &why) <
		    0) {
			g_test_message("[%s] %s: %s", config_keys[i].section, config_keys[i].key,
				       why);
			g_test_fail();
			g_free(why);
		}
	}
	char *text = read_source("contrib/snapkeep.conf.sample");
	GRegex *re = g_regex_new("^#([a-z_]+ =)", G_REGEX_MULTILINE, 0, NULL);
	char *uncommented = g_regex_replace(re, text, -1, 0, "\\1", 0, NULL);
	char *dir = g_dir_make_tmp("test-smtp-config-XXXXXX", NULL);
	char *path = g_build_filename(dir, "snapkeep.conf", NULL);
	struct config *config = NULL;
	char *error = NULL;

	g_assert_true(g_file_set_contents(path, uncommented, -1, NULL));
	if (config_load(path, &config, &error) < 0)
		g_error("the uncommented sample does not load: %s", error);
	for (size_t i = 0; i < config_keys_count; i++)
		g_assert_cmpstr(config_get(config, config_keys[i].section, config_keys[i].key), ==,
				config_keys[i].default_value);
	config_free(&config);
	g_unlink(path);
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
	g_free(uncommented);
	g_regex_unref(re);
	g_free(text);
}

static struct config *
load_text(const char *text, char **error_r)
{
	char *dir = g_dir_make_tmp("test-smtp-config-XXXXXX", NULL);
	char *path = g_build_filename(dir, "c.conf", NULL);
	struct config *config = NULL;
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	if (config_load(path, &config, error_r) < 0)
		config = NULL;
	g_unlink(path);
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
	return config;
}

static void
test_values(void)
{
	char *error = NULL;
	struct config *c = load_text("# comment\n[smtp]\nmax_message_size = 4M\n"
				     "command_timeout = 5m\ndata_timeout = 1500ms\n"
				     "greet_pause = 2\nrequire_tls = yes\n"
				     "recipients = a@b.test , @c.test,,\nmax_errors=7\n"
				     "[store]\nmin_free_space = 1G\n",
				     &error);
	g_assert_nonnull(c);
	g_assert_cmpuint(config_get_size(c, "smtp", "max_message_size"), ==, 4 * 1024 * 1024);
	g_assert_cmpuint(config_get_size(c, "store", "min_free_space"), ==, 1024 * 1024 * 1024);
	g_assert_cmpuint(config_get_ms(c, "smtp", "command_timeout"), ==, 300000);
	g_assert_cmpuint(config_get_ms(c, "smtp", "data_timeout"), ==, 1500);
	g_assert_cmpuint(config_get_ms(c, "smtp", "greet_pause"), ==, 2000);
	g_assert_true(config_get_bool(c, "smtp", "require_tls"));
	g_assert_false(config_get_bool(c, "smtp", "require_auth"));
	g_assert_cmpuint(config_get_uint(c, "smtp", "max_errors"), ==, 7);
	g_assert_cmpuint(config_get_uint(c, "smtp", "max_recipients"), ==, 100);
	char **r = config_get_list(c, "smtp", "recipients");
	g_assert_cmpuint(g_strv_length(r), ==, 2);
	g_assert_cmpstr(r[0], ==, "a@b.test");
	g_assert_cmpstr(r[1], ==, "@c.test");
	g_strfreev(r);
	char **l = config_get_list(c, "smtp", "listen");
	g_assert_cmpuint(g_strv_length(l), ==, 1);
	g_assert_cmpstr(l[0], ==, "127.0.0.1:2525");
	g_strfreev(l);
	/* Overrides win over the file, and are checked. */
	g_assert_cmpint(config_set(c, "smtp", "max_errors", "3", &error), ==, 0);
	g_assert_cmpuint(config_get_uint(c, "smtp", "max_errors"), ==, 3);
	g_assert_cmpint(config_set(c, "smtp", "max_errors", "many", &error), ==, -1);
	g_assert_nonnull(strstr(error, "not a valid integer"));
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(config_set(c, "smtp", "nosuch", "1", &error), ==, -1);
	g_clear_pointer(&error, g_free);
	char **polls = config_sections(c, "poll");
	g_assert_cmpuint(g_strv_length(polls), ==, 0);
	g_strfreev(polls);
	config_free(&c);

	/* No file: every default. */
	g_assert_cmpint(config_load(NULL, &c, &error), ==, 0);
	g_assert_cmpstr(config_get(c, "store", "db"), ==, "snapkeep.db");
	config_free(&c);
}

static void
test_errors(void)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
	    {"[smpt]\nlisten = x\n", "unknown section [smpt]"},
	    {"[smtp]\nlisen = 127.0.0.1:25\n", "[smtp] unknown key \"lisen\""},
	    {"[smtp]\nmax_message_size = 10MB\n",
	     "[smtp] max_message_size: \"10MB\" is not a valid size"},
	    {"[smtp]\nmax_message_size = -1\n", "is not a valid size"},
	    {"[smtp]\ncommand_timeout = 5 minutes\n", "is not a valid duration"},
	    {"[smtp]\nrequire_tls = maybe\n", "is not a valid boolean"},
	    {"[smtp]\nmax_connections = 99999999999\n", "is not a valid integer"},
	    {"[daemon]\nlog_level = loud\n", "is not a valid level"},
	    {"[smtp\n", "c.conf"},
	    {"listen = 1\n", "c.conf"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *error = NULL;
		struct config *c = load_text(cases[i].text, &error);
		g_assert_null(c);
		g_assert_nonnull(error);
		if (strstr(error, cases[i].error) == NULL) {
			g_test_message("case %zu: error \"%s\" lacks \"%s\"", i, error,
				       cases[i].error);
			g_test_fail();
		}
		g_free(error);
	}
	char *error = NULL;
	struct config *c = NULL;
	g_assert_cmpint(config_load("/nonexistent/snapkeep.conf", &c, &error), ==, -1);
	g_assert_nonnull(strstr(error, "/nonexistent/snapkeep.conf"));
	g_free(error);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	log_init("test-smtp-config", LOG_LEVEL_ERROR);
	g_test_add_func("/config/man-page", test_man_page);
	g_test_add_func("/config/sample", test_sample);
	g_test_add_func("/config/defaults-load", test_defaults_load);
	g_test_add_func("/config/values", test_values);
	g_test_add_func("/config/errors", test_errors);
	return g_test_run();
}
