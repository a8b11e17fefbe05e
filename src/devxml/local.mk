# src/devxml: Device.xml -> struct snapshot (libxml2).
src_libsnapkeep_a_SOURCES += \
	%reldir%/snapshot.h %reldir%/snapshot.c \
	%reldir%/devxml.h %reldir%/devxml.c

check_PROGRAMS += tests/unit/test-devxml tests/unit/test-snapshot
TESTS += tests/unit/test-devxml tests/unit/test-snapshot
tests_unit_test_devxml_SOURCES = tests/unit/test-devxml.c
tests_unit_test_snapshot_SOURCES = tests/unit/test-snapshot.c
VALGRIND_TESTS += tests/unit/test-devxml tests/unit/test-snapshot
EXTRA_DIST += tests/data/xml
