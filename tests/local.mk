# tests shared by several modules: the corpus replay driver for fuzz targets.
# A fuzz target tests/fuzz/fuzz-NAME.c with its corpus in tests/fuzz/corpus/NAME/ is
#   check_PROGRAMS += tests/fuzz/fuzz-X
#   tests_fuzz_fuzz_X_SOURCES = tests/fuzz/fuzz-X.c tests/fuzz/replay.c
#   TESTS += tests/fuzz/fuzz-X
# and built for libFuzzer with `make fuzz` (clang -fsanitize=fuzzer).
EXTRA_DIST += tests/fuzz/replay.c

# The whole extraction (MIME + Device.xml + the worker's JSON answer).
check_PROGRAMS += tests/fuzz/fuzz-extract
tests_fuzz_fuzz_extract_SOURCES = tests/fuzz/fuzz-extract.c tests/fuzz/replay.c
TESTS += tests/fuzz/fuzz-extract
EXTRA_DIST += tests/fuzz/corpus/extract

# Integration tests: the programs end to end, with real clients.
TESTS += \
	tests/integ/examples.py \
	tests/integ/funnel.py \
	tests/integ/check.py \
	tests/integ/maintenance.py \
	tests/integ/poll-metrics.py
EXTRA_DIST += \
	tests/integ/sklib.py tests/integ/mails.py \
	tests/integ/examples.py tests/integ/funnel.py tests/integ/check.py tests/integ/maintenance.py tests/integ/poll-metrics.py \
	tests/data/examples
# The same intake and view tests against PostgreSQL (the .pg variants).
include %reldir%/integ/local.mk

# libFuzzer builds of every target (clang): make fuzz; run e.g.
#   ./fuzz/fuzz-extract tests/fuzz/corpus/extract
FUZZ_CC = clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined
fuzz:
	@mkdir -p fuzz
	@for t in $(FUZZ_TARGETS); do \
	  echo "  FUZZ     fuzz/$$t"; \
	  $(FUZZ_CC) $(FUZZ_FLAGS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) \
	    $(GLIB_CFLAGS) $(GMIME_CFLAGS) $(XML_CFLAGS) $(SQLITE_CFLAGS) $(ZSTD_CFLAGS) \
	    $(JSONGLIB_CFLAGS) -I$(top_srcdir)/src -o fuzz/$$t $(top_srcdir)/tests/fuzz/$$t.c \
	    $(addprefix $(top_srcdir)/,$(FUZZ_LIB_GLOBS)) $(SK_LIBS) || exit 1; \
	done
FUZZ_TARGETS = fuzz-extract fuzz-devxml fuzz-mime fuzz-smtp
# Library sources compiled into every fuzz binary (shell globs, from top_srcdir).
FUZZ_LIB_GLOBS = src/util/*.c src/devxml/*.c src/mime/*.c src/intake/parse.c src/smtp/session.c
.PHONY: fuzz

# The browser test installs playwright-core into the build tree when the
# source tree has none (distcheck's source is read-only): remove it there,
# never in an in-tree build where tests/browser is the source.
clean-local: clean-local-browser
clean-local-browser:
	if test "$(abs_top_builddir)" != "$(abs_top_srcdir)"; then \
	  rm -rf tests/browser tests/browser-artifacts; \
	fi
.PHONY: clean-local-browser
