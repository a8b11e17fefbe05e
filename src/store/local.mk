# src/store: SQLite store, schema migrations, raw archive.
#
# The migrations in schema/ are embedded in the binary as a GResource
# (src/store/schema-resources.c, generated) and installed for admins under
# $(pkgdatadir)/schema.  Add a new migration to SK_SCHEMA_FILES.
# The PostgreSQL versions of the same migrations, numbered alike, are in
# schema/postgresql/ (SK_SCHEMA_PG_FILES), embedded beside them (resource
# paths /org/snapkeep/schema/postgresql/NNN-*.sql) and installed under
# $(pkgdatadir)/schema/postgresql.
SK_SCHEMA_FILES = \
	schema/001-tables.sql \
	schema/002-views.sql \
	schema/004-new-events.sql \
	schema/006-retention.sql \
	schema/008-supply-status-plan.sql \
	schema/009-events-time.sql
SK_SCHEMA_PG_FILES = \
	schema/postgresql/001-tables.sql \
	schema/postgresql/002-views.sql \
	schema/postgresql/003-poll.sql \
	schema/postgresql/004-new-events.sql \
	schema/postgresql/005-web-indexes.sql \
	schema/postgresql/006-retention.sql \
	schema/postgresql/007-web-supply-levels.sql \
	schema/postgresql/008-supply-status-plan.sql \
	schema/postgresql/009-events-time.sql

src_libsnapkeep_a_SOURCES += \
	%reldir%/store.h %reldir%/store.c \
	%reldir%/db.h %reldir%/db.c \
	%reldir%/archive.h %reldir%/archive.c
nodist_src_libsnapkeep_a_SOURCES = %reldir%/schema-resources.c

schemadir = $(pkgdatadir)/schema
dist_schema_DATA = $(SK_SCHEMA_FILES) schema/README
schemapgdir = $(pkgdatadir)/schema/postgresql
dist_schemapg_DATA = $(SK_SCHEMA_PG_FILES)

BUILT_SOURCES = %reldir%/schema-resources.c
CLEANFILES += %reldir%/schema-resources.c %reldir%/schema.gresource.xml

# The resource list is generated from SK_SCHEMA_FILES and SK_SCHEMA_PG_FILES
# (one place to add a migration; other folders' fragments may add theirs
# with +=, as poll/ does).
# It depends on the Makefile, which changes whenever any fragment does, and
# is only replaced when its text changes.  glib-compile-resources comes with
# libglib2.0-dev-bin.
%reldir%/schema.gresource.xml: Makefile
	$(AM_V_GEN)$(MKDIR_P) %reldir% && { \
	  echo '<?xml version="1.0" encoding="UTF-8"?>'; \
	  echo '<gresources><gresource prefix="/org/snapkeep">'; \
	  for f in $(SK_SCHEMA_FILES) $(SK_SCHEMA_PG_FILES); do echo "<file>$$f</file>"; done; \
	  echo '</gresource></gresources>'; } > $@.tmp && \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

%reldir%/schema-resources.c: %reldir%/schema.gresource.xml $(SK_SCHEMA_FILES:%=$(top_srcdir)/%) \
		$(SK_SCHEMA_PG_FILES:%=$(top_srcdir)/%)
	$(AM_V_GEN)gcr=`$(PKG_CONFIG) --variable=glib_compile_resources gio-2.0 2>/dev/null`; \
	test -n "$$gcr" || gcr=glib-compile-resources; \
	$$gcr --version >/dev/null 2>&1 || { \
	  echo "glib-compile-resources not found: install the Debian package libglib2.0-dev-bin" >&2; exit 1; }; \
	$$gcr --sourcedir=$(top_srcdir) --generate-source --c-name store_schema \
	  --target=$@ %reldir%/schema.gresource.xml

check_PROGRAMS += tests/unit/test-store tests/unit/test-archive
TESTS += tests/unit/test-store tests/unit/test-archive
tests_unit_test_store_SOURCES = tests/unit/test-store.c
tests_unit_test_archive_SOURCES = tests/unit/test-archive.c
VALGRIND_TESTS += tests/unit/test-archive tests/unit/test-store

# Keeping it for years: stats, verify, prune, backup through the command line.
TESTS += tests/integ/store-maint.py tests/integ/store-backup.py
EXTRA_DIST += tests/integ/store-maint.py tests/integ/store-backup.py

# The PostgreSQL migrations against the SQLite ones, on a PostgreSQL 15 the
# test starts itself (Debian package postgresql-15).
TESTS += tests/integ/schema-postgresql.py
EXTRA_DIST += tests/integ/schema-postgresql.py

# The storage benchmark (run by hand: make bench-backends; needs
# postgresql-15): durable msg/s on SQLite, one and two nodes on PostgreSQL,
# and the device page on both; BENCH_BACKENDS_ARGS=--quick for a short one.
EXTRA_DIST += bench/backends/bench.py bench/backends/README
bench-backends: snapkeepd snapkeep snapkeep-parse snapkeep-sim
	SK_TOP_BUILDDIR='$(abs_top_builddir)' /usr/bin/python3 $(top_srcdir)/bench/backends/bench.py $(BENCH_BACKENDS_ARGS)
.PHONY: bench-backends
