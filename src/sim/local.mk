# src/sim: the device simulator snapkeep-sim (fleet model, Device.xml writer
# for both dialects, templates, GMime mails, faults, SMTP/Maildir/file sinks).
src_libsnapkeep_a_SOURCES += \
	%reldir%/sim.h \
	%reldir%/sim-model.c \
	%reldir%/sim-schedule.c \
	%reldir%/sim-fleet.c \
	%reldir%/sim-writer.c \
	%reldir%/sim-template.c \
	%reldir%/sim-mail.h \
	%reldir%/sim-mail.c \
	%reldir%/sim-send.h \
	%reldir%/sim-send.c

bin_PROGRAMS += snapkeep-sim
snapkeep_sim_SOURCES = %reldir%/sim-main.c

man_MANS += man/snapkeep-sim.1
EXTRA_DIST += man/snapkeep-sim.1

check_PROGRAMS += tests/unit/test-sim
TESTS += tests/unit/test-sim
tests_unit_test_sim_SOURCES = tests/unit/test-sim.c

TESTS += tests/integ/sim-smtp.py
EXTRA_DIST += tests/integ/sim-smtp.py

# The import benchmark (run by hand: SK_TOP_BUILDDIR=. bench/import 3000).
EXTRA_DIST += bench/import
TESTS += tests/integ/sim-snapkeepd.py
EXTRA_DIST += tests/integ/sim-snapkeepd.py
# snapkeep-sim over STARTTLS + AUTH against the real snapkeepd.
TESTS += tests/integ/sim-tls.py
EXTRA_DIST += tests/integ/sim-tls.py
