/* assets.c: the web view's templates, CSS and JavaScript.
 *
 * They are embedded in the binary as a GResource (web/, compiled by
 * glib-compile-resources; see src/web/local.mk) and installed under
 * $(pkgdatadir)/web for admins to read or copy.  With [web] assets_dir set,
 * the same names are read from that directory instead (at start and on
 * reload, never during a request).
 *
 * Security posture: the set of files is the fixed table below; a request
 * names a static file by its exact public name and never reaches the file
 * system, so there is no path to traverse.  Limit: WEB_ASSET_MAX bytes each. */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "web/internal.h"

#define WEB_ASSET_MAX (1024 * 1024)
#define WEB_RESOURCE_ROOT "/org/snapkeep/web/"

/* From the generated web-resources.c. */
GResource *web_assets_get_resource(void);

struct asset_def {
	const char *name; /* public name for static files, template name otherwise */
	const char *path; /* relative to web/ */
	const char *type;
	enum web_asset_kind kind;
};

static const struct asset_def asset_table[] = {
    {"style.css", "static/style.css", "text/css; charset=utf-8", WEB_ASSET_STATIC},
    {"app.js", "static/app.js", "text/javascript; charset=utf-8", WEB_ASSET_STATIC},
    {"favicon.svg", "static/favicon.svg", "image/svg+xml", WEB_ASSET_STATIC},
    {"layout.html", "templates/layout.html", "text/html; charset=utf-8", WEB_ASSET_TEMPLATE},
    {"error.html", "templates/error.html", "text/html; charset=utf-8", WEB_ASSET_TEMPLATE},
};
#define ASSET_COUNT G_N_ELEMENTS(asset_table)

struct web_assets {
	GBytes *data[ASSET_COUNT];
};

int
web_assets_load(const char *dir, struct web_assets **assets_r, char **error_r)
{
	struct web_assets *a = g_new0(struct web_assets, 1);
	for (size_t i = 0; i < ASSET_COUNT; i++) {
		GError *gerr = NULL;
		GBytes *b = NULL;
		if (dir != NULL) {
			char *path = g_build_filename(dir, asset_table[i].path, NULL);
			char *text = NULL;
			gsize len = 0;
			if (g_file_get_contents(path, &text, &len, &gerr))
				b = g_bytes_new_take(text, len);
			g_free(path);
		} else {
			char *res = g_strconcat(WEB_RESOURCE_ROOT, asset_table[i].path, NULL);
			b = g_resource_lookup_data(web_assets_get_resource(), res,
						   G_RESOURCE_LOOKUP_FLAGS_NONE, &gerr);
			g_free(res);
		}
		if (b == NULL) {
			*error_r = g_strdup_printf("web: asset %s: %s", asset_table[i].path,
						   gerr != NULL ? gerr->message : "missing");
			if (gerr != NULL)
				g_error_free(gerr);
			goto fail;
		}
		if (g_bytes_get_size(b) > WEB_ASSET_MAX) {
			*error_r = g_strdup_printf("web: asset %s is larger than %d bytes",
						   asset_table[i].path, WEB_ASSET_MAX);
			g_bytes_unref(b);
			goto fail;
		}
		if (asset_table[i].kind == WEB_ASSET_TEMPLATE) {
			/* Templates are used as C strings: make sure of the NUL. */
			gsize len = 0;
			const char *d = g_bytes_get_data(b, &len);
			char *copy = g_strndup(d, len);
			g_bytes_unref(b);
			b = g_bytes_new_take(copy, strlen(copy) + 1);
		}
		a->data[i] = b;
	}
	*assets_r = a;
	return 0;
fail:
	web_assets_free(&a);
	return -1;
}

void
web_assets_free(struct web_assets **assetsp)
{
	struct web_assets *a = *assetsp;
	if (a == NULL)
		return;
	*assetsp = NULL;
	for (size_t i = 0; i < ASSET_COUNT; i++)
		if (a->data[i] != NULL)
			g_bytes_unref(a->data[i]);
	g_free(a);
}

GBytes *
web_assets_static(struct web_assets *a, const char *name, const char **type_r)
{
	for (size_t i = 0; i < ASSET_COUNT; i++)
		if (asset_table[i].kind == WEB_ASSET_STATIC &&
		    strcmp(asset_table[i].name, name) == 0) {
			*type_r = asset_table[i].type;
			return g_bytes_ref(a->data[i]);
		}
	return NULL;
}

const char *
web_assets_template(struct web_assets *a, const char *name)
{
	for (size_t i = 0; i < ASSET_COUNT; i++)
		if (asset_table[i].kind == WEB_ASSET_TEMPLATE &&
		    strcmp(asset_table[i].name, name) == 0)
			return g_bytes_get_data(a->data[i], NULL);
	return "";
}

static const char *
var_lookup(const char *const *vars, const char *name, size_t len)
{
	for (size_t i = 0; vars[i] != NULL && vars[i + 1] != NULL; i += 2)
		if (strlen(vars[i]) == len && strncmp(vars[i], name, len) == 0)
			return vars[i + 1];
	return NULL;
}

void
web_template_fill(GString *out, const char *tmpl, const char *const *vars)
{
	const char *p = tmpl;
	while (*p != '\0') {
		const char *open = strstr(p, "{{");
		if (open == NULL) {
			g_string_append(out, p);
			return;
		}
		g_string_append_len(out, p, open - p);
		bool raw = open[2] == '{';
		const char *name = open + (raw ? 3 : 2);
		const char *close = strstr(name, raw ? "}}}" : "}}");
		if (close == NULL) {
			g_string_append(out, open);
			return;
		}
		const char *v = var_lookup(vars, name, (size_t)(close - name));
		if (v != NULL) {
			if (raw)
				g_string_append(out, v);
			else
				html_escape(out, v);
		}
		p = close + (raw ? 3 : 2);
	}
}
