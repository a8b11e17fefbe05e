# src/mime: raw message -> Device.xml part and header hints (GMime).
src_libsnapkeep_a_SOURCES += %reldir%/mime.h %reldir%/mime.c

check_PROGRAMS += tests/unit/test-mime
TESTS += tests/unit/test-mime
tests_unit_test_mime_SOURCES = tests/unit/test-mime.c
VALGRIND_TESTS += tests/unit/test-mime

# libFuzzer target (tests/fuzz/fuzz-mime.c); make check replays its corpus.
check_PROGRAMS += tests/fuzz/fuzz-mime
tests_fuzz_fuzz_mime_SOURCES = tests/fuzz/fuzz-mime.c tests/fuzz/replay.c
TESTS += tests/fuzz/fuzz-mime
EXTRA_DIST += tests/fuzz/corpus/mime tests/data/mime
