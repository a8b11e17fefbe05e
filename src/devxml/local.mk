# src/devxml: Device.xml -> struct snapshot (libxml2).
src_libsnapkeep_a_SOURCES += \
	%reldir%/snapshot.h %reldir%/snapshot.c \
	%reldir%/devxml.h %reldir%/devxml.c

check_PROGRAMS += tests/unit/test-devxml tests/unit/test-snapshot
TESTS += tests/unit/test-devxml tests/unit/test-snapshot
tests_unit_test_devxml_SOURCES = tests/unit/test-devxml.c
tests_unit_test_snapshot_SOURCES = tests/unit/test-snapshot.c
VALGRIND_TESTS += tests/unit/test-devxml tests/unit/test-snapshot tests/fuzz/fuzz-devxml
EXTRA_DIST += tests/data/xml

# libFuzzer target; make check replays tests/fuzz/corpus/devxml with it.
check_PROGRAMS += tests/fuzz/fuzz-devxml
tests_fuzz_fuzz_devxml_SOURCES = tests/fuzz/fuzz-devxml.c tests/fuzz/replay.c
TESTS += tests/fuzz/fuzz-devxml
EXTRA_DIST += tests/fuzz/corpus/devxml
