# tests shared by several modules: the corpus replay driver for fuzz targets.
# A fuzz target tests/fuzz/fuzz-X.c is replayed by make check as
#   check_PROGRAMS += tests/fuzz/fuzz-X
#   tests_fuzz_fuzz_X_SOURCES = tests/fuzz/fuzz-X.c tests/fuzz/replay.c
#   TESTS += tests/fuzz/fuzz-X   (with SK_FUZZ_CORPUS set in AM_TESTS_ENVIRONMENT
#   through a wrapper, or the corpus path given by the target's own main)
# and built for libFuzzer with `make fuzz` (clang -fsanitize=fuzzer).
EXTRA_DIST += tests/fuzz/replay.c
