# src/web: the web view served by snapkeepd (libmicrohttpd): HTML pages with
# server-drawn SVG charts, JSON under /api/, CSV exports, /metrics, /healthz.
#
# The templates, CSS and JavaScript in web/ are embedded in the binary as a
# GResource (src/web/web-resources.c, generated) and installed for admins
# under $(pkgdatadir)/web ([web] assets_dir can point at a copy).  Add a file
# to SK_WEB_FILES and to the table in src/web/assets.c.
SK_WEB_FILES = \
	web/templates/layout.html \
	web/templates/error.html \
	web/static/style.css \
	web/static/app.js \
	web/static/favicon.svg

# The indexes the web view needs, as a migration of its own.
SK_SCHEMA_FILES += schema/005-web-indexes.sql schema/007-web-supply-levels.sql

src_libsnapkeep_a_SOURCES += \
	%reldir%/web.h %reldir%/internal.h \
	%reldir%/config.c %reldir%/auth.c %reldir%/assets.c %reldir%/request.c \
	%reldir%/server.c %reldir%/html.c %reldir%/svg.c %reldir%/data.c \
	%reldir%/pages.c %reldir%/page-device.c %reldir%/page-snapshot.c \
	%reldir%/api.c %reldir%/export.c %reldir%/metrics.c %reldir%/snapxml.c
nodist_src_libsnapkeep_a_SOURCES += %reldir%/web-resources.c

nobase_dist_pkgdata_DATA += $(SK_WEB_FILES)

BUILT_SOURCES += %reldir%/web-resources.c
CLEANFILES += %reldir%/web-resources.c %reldir%/web.gresource.xml

%reldir%/web.gresource.xml: %reldir%/local.mk
	$(AM_V_GEN)$(MKDIR_P) %reldir% && { \
	  echo '<?xml version="1.0" encoding="UTF-8"?>'; \
	  echo '<gresources><gresource prefix="/org/snapkeep">'; \
	  for f in $(SK_WEB_FILES); do echo "<file>$$f</file>"; done; \
	  echo '</gresource></gresources>'; } > $@.tmp && mv $@.tmp $@

%reldir%/web-resources.c: %reldir%/web.gresource.xml $(SK_WEB_FILES:%=$(top_srcdir)/%)
	$(AM_V_GEN)gcr=`$(PKG_CONFIG) --variable=glib_compile_resources gio-2.0 2>/dev/null`; \
	test -n "$$gcr" || gcr=glib-compile-resources; \
	$$gcr --version >/dev/null 2>&1 || { \
	  echo "glib-compile-resources not found: install the Debian package libglib2.0-dev-bin" >&2; exit 1; }; \
	$$gcr --sourcedir=$(top_srcdir) --generate-source --c-name web_assets \
	  --target=$@ %reldir%/web.gresource.xml

check_PROGRAMS += tests/unit/test-web tests/unit/test-web-render
TESTS += tests/unit/test-web tests/unit/test-web-render
tests_unit_test_web_SOURCES = tests/unit/test-web.c
tests_unit_test_web_render_SOURCES = tests/unit/test-web-render.c
VALGRIND_TESTS += tests/unit/test-web-render

# Integration tests against the real snapkeepd (urllib, the Prometheus
# client's parser: python3-prometheus-client, certtool: gnutls-bin), and the
# real-browser test (chromium, node, `npm ci` in tests/browser).
TESTS += tests/integ/web-daemon.py tests/integ/web-browser.py
EXTRA_DIST += tests/integ/web-lib.py tests/integ/web-daemon.py tests/integ/web-browser.py \
	tests/browser/package.json tests/browser/package-lock.json tests/browser/web-browser.mjs

# The web benchmark (run by hand: make bench-web; about an hour for the full
# 1000 devices x 2 years; BENCH_WEB_ARGS="--devices 100 --days 90" for a quick one).
EXTRA_DIST += bench/web/bench.py
bench-web: snapkeepd snapkeep-parse snapkeep-sim
	SK_TOP_BUILDDIR='$(abs_top_builddir)' /usr/bin/python3 $(top_srcdir)/bench/web/bench.py $(BENCH_WEB_ARGS)
.PHONY: bench-web
