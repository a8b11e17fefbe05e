# src/smtp: the SMTP session state machine, the listener (GLib main loop,
# GnuTLS STARTTLS, AUTH) that feeds it, and its tests, fuzz target and bench.
src_libsnapkeep_a_SOURCES += \
	%reldir%/session.h %reldir%/session.c \
	%reldir%/server.h %reldir%/server.c \
	%reldir%/tls.h %reldir%/tls.c \
	%reldir%/auth.h %reldir%/auth.c

check_PROGRAMS += tests/unit/test-smtp
TESTS += tests/unit/test-smtp
tests_unit_test_smtp_SOURCES = tests/unit/test-smtp.c
VALGRIND_TESTS += tests/unit/test-smtp

check_PROGRAMS += tests/unit/test-smtp-config
TESTS += tests/unit/test-smtp-config
tests_unit_test_smtp_config_SOURCES = tests/unit/test-smtp-config.c

# Integration tests: the real daemon on an ephemeral loopback port.
EXTRA_DIST += tests/integ/smtp-lib.py
TESTS += tests/integ/smtp-clients.py
EXTRA_DIST += tests/integ/smtp-clients.py
TESTS += tests/integ/smtp-refusals.py
EXTRA_DIST += tests/integ/smtp-refusals.py
TESTS += tests/integ/smtp-daemon.py
EXTRA_DIST += tests/integ/smtp-daemon.py
TESTS += tests/integ/smtp-load.py
EXTRA_DIST += tests/integ/smtp-load.py

# libFuzzer target for the session machine; make check replays its corpus.
check_PROGRAMS += tests/fuzz/fuzz-smtp
tests_fuzz_fuzz_smtp_SOURCES = tests/fuzz/fuzz-smtp.c tests/fuzz/replay.c
TESTS += tests/fuzz/fuzz-smtp
VALGRIND_TESTS += tests/fuzz/fuzz-smtp
EXTRA_DIST += tests/fuzz/corpus/smtp
TESTS += tests/integ/smtp-memory.py
EXTRA_DIST += tests/integ/smtp-memory.py

# The SMTP benchmark (run by hand: make bench-smtp; needs postfix for
# smtp-sink and smtp-source, and python3-aiosmtpd).
EXTRA_DIST += bench/smtp/bench.py bench/smtp/baseline-aiosmtpd.py bench/smtp/README bench/smtpload.py
bench-smtp: snapkeepd snapkeep-parse snapkeep-sim
	SK_TOP_BUILDDIR='$(abs_top_builddir)' /usr/bin/python3 $(top_srcdir)/bench/smtp/bench.py
.PHONY: bench-smtp
