# Integration tests against PostgreSQL (included by tests/local.mk).
#
# Each %reldir%/pg/NAME.pg names one script of %reldir% (one line, NAME.py);
# %reldir%/with-postgresql runs it with a private PostgreSQL 15 server of its
# own and SK_TEST_BACKEND=postgresql, so every store the script asks sklib
# for is a new database there instead of a SQLite file.  The .py tests run
# on SQLite as before; these run the same scripts on PostgreSQL.
# A .pg file may instead name a test program by its path in the build tree
# (tests/unit/pg/test-store.pg: tests/unit/test-store, which then gives each
# test case a new database on the server); the wrapper runs it with --tap.
#   make check TESTS=tests/integ/pg/funnel.pg     one of them
#   make check-postgresql                         all of them
# pg-fixture.py checks the server fixture and the wrapper themselves.
TEST_EXTENSIONS += .pg
PG_LOG_DRIVER = $(TAP_DRIVER)
PG_LOG_COMPILER = /usr/bin/python3 $(top_srcdir)/%reldir%/with-postgresql
SK_PG_TESTS = \
	%reldir%/pg/examples.pg \
	%reldir%/pg/funnel.pg \
	%reldir%/pg/check.pg \
	%reldir%/pg/maintenance.pg \
	%reldir%/pg/sim-snapkeepd.pg \
	%reldir%/pg/smtp-clients.pg \
	%reldir%/pg/smtp-daemon.pg \
	%reldir%/pg/smtp-refusals.pg \
	%reldir%/pg/smtp-load.pg \
	%reldir%/pg/smtp-memory.pg \
	%reldir%/pg/store-maint.pg \
	%reldir%/pg/poll-imap.pg \
	%reldir%/pg/poll-pop3.pg \
	%reldir%/pg/poll-maildir.pg \
	%reldir%/pg/poll-daemon.pg \
	%reldir%/pg/poll-metrics.pg \
	%reldir%/pg/poll-tls.pg \
	%reldir%/pg/web-daemon.pg \
	%reldir%/pg/web-browser.pg \
	tests/unit/pg/test-store.pg
TESTS += %reldir%/pg-fixture.py $(SK_PG_TESTS)
EXTRA_DIST += %reldir%/with-postgresql %reldir%/pg-fixture.py $(SK_PG_TESTS)

check-postgresql:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(SK_PG_TESTS)'
.PHONY: check-postgresql

# Two snapkeepd nodes on one PostgreSQL, one killed with SIGKILL under load
# (the test starts a PostgreSQL of its own, so it runs in plain make check).
TESTS += %reldir%/multinode.py
EXTRA_DIST += %reldir%/multinode.py

# PostgreSQL restarted under an idle and a busy snapkeepd: no 451 after an
# idle restart, a restart inside a group commit, every acknowledged mail
# stored once, the web view back
# (starts a PostgreSQL of its own, so it runs in plain make check).
TESTS += %reldir%/pg-restart.py
EXTRA_DIST += %reldir%/pg-restart.py
