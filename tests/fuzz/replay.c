/* replay.c: runs a libFuzzer target's LLVMFuzzerTestOneInput over files and
 * directories given on the command line, so `make check` replays each
 * committed corpus with the ordinary (or sanitizer) build.  Prints TAP: one
 * line per corpus directory or file.  A crash or sanitizer report fails the
 * test; a return value is ignored, as libFuzzer does.  With no arguments,
 * a program named fuzz-NAME replays $SK_TOP_SRCDIR/tests/fuzz/corpus/NAME. */
#include "config.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned
replay_path(const char *path)
{
	unsigned count = 0;
	if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
		GDir *dir = g_dir_open(path, 0, NULL);
		const char *name;
		GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
		if (dir == NULL)
			return 0;
		while ((name = g_dir_read_name(dir)) != NULL)
			g_ptr_array_add(names, g_build_filename(path, name, NULL));
		g_dir_close(dir);
		for (guint i = 0; i < names->len; i++)
			count += replay_path(g_ptr_array_index(names, i));
		g_ptr_array_free(names, TRUE);
		return count;
	}
	gchar *data = NULL;
	gsize len = 0;
	if (!g_file_get_contents(path, &data, &len, NULL))
		return 0;
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	g_free(data);
	return 1;
}

int
main(int argc, char **argv)
{
	int n = 0;
	const char *corpus = g_getenv("SK_FUZZ_CORPUS");
	gchar **paths = NULL;

	/* The harness passes --tap; corpora come from SK_FUZZ_CORPUS
	 * (colon-separated) or the remaining arguments. */
	if (corpus != NULL) {
		paths = g_strsplit(corpus, ":", -1);
	} else if (argc > 1 && !g_str_has_prefix(argv[argc - 1], "--")) {
		paths = g_strdupv(argv + 1);
	} else {
		/* Default: tests/fuzz/corpus/NAME for a program named fuzz-NAME. */
		gchar *base = g_path_get_basename(argv[0]);
		const char *name = g_str_has_prefix(base, "fuzz-") ? base + 5 : base;
		const char *top = g_getenv("SK_TOP_SRCDIR");
		gchar *dir = g_build_filename(top != NULL ? top : ".", "tests", "fuzz", "corpus", name, NULL);
		paths = g_new0(gchar *, 2);
		paths[0] = dir;
		g_free(base);
	}
	for (gchar **p = paths; *p != NULL; p++) {
		if (g_str_has_prefix(*p, "--"))
			continue;
		unsigned count = replay_path(*p);
		printf("%s %d - replayed %u inputs from %s\n", count > 0 ? "ok" : "not ok", ++n, count, *p);
	}
	g_strfreev(paths);
	if (n == 0)
		printf("not ok 1 - no corpus given\n"), n = 1;
	printf("1..%d\n", n);
	return 0;
}
