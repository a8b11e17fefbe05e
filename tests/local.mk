# tests shared by several modules: the corpus replay driver for fuzz targets.
# A fuzz target tests/fuzz/fuzz-NAME.c with its corpus in tests/fuzz/corpus/NAME/ is
#   check_PROGRAMS += tests/fuzz/fuzz-X
#   tests_fuzz_fuzz_X_SOURCES = tests/fuzz/fuzz-X.c tests/fuzz/replay.c
#   TESTS += tests/fuzz/fuzz-X
# and built for libFuzzer with `make fuzz` (clang -fsanitize=fuzzer).
EXTRA_DIST += tests/fuzz/replay.c
