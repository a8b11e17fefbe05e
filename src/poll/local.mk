# src/poll: IMAP, POP3 and Maildir pollers feeding the funnel (see poll.h).

# The pollers' checkpoint tables: a migration of the store's embedded
# schema.  The extra prerequisites regenerate the resource in build
# directories configured before this migration existed.
SK_SCHEMA_FILES += schema/003-poll.sql
src/store/schema.gresource.xml: $(srcdir)/src/poll/local.mk
src/store/schema-resources.c: $(top_srcdir)/schema/003-poll.sql

src_libsnapkeep_a_SOURCES += \
	%reldir%/poll.h %reldir%/poll-private.h \
	%reldir%/settings.c %reldir%/state.c %reldir%/pass.c %reldir%/curl.c \
	%reldir%/imap.c %reldir%/idle.c %reldir%/pop3.c %reldir%/maildir.c \
	%reldir%/poller.c %reldir%/registry.c %reldir%/cli.c

# Integration tests against a real Dovecot (Debian: dovecot-imapd,
# dovecot-pop3d; certtool from gnutls-bin for the TLS variant).
TESTS += tests/integ/poll-imap.py tests/integ/poll-pop3.py tests/integ/poll-tls.py tests/integ/poll-daemon.py tests/integ/poll-maildir.py
EXTRA_DIST += tests/integ/poll-lib.py tests/integ/poll-imap.py tests/integ/poll-pop3.py tests/integ/poll-tls.py tests/integ/poll-daemon.py tests/integ/poll-maildir.py

check_PROGRAMS += tests/unit/test-poll
TESTS += tests/unit/test-poll
tests_unit_test_poll_SOURCES = tests/unit/test-poll.c
VALGRIND_TESTS += tests/unit/test-poll
