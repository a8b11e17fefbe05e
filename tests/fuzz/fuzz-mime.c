/* fuzz-mime.c: libFuzzer target for src/mime: a raw message to the Device.xml
 * part and the header hints.  Any input must give 1, 0 or -1 with a one-line
 * "mime: " reason, never a crash, a leak or a hang; and the same input read
 * by GMime in small pieces must give the same answer where GMime found
 * nothing malformed (a differential check: a difference aborts).  Seeds in tests/fuzz/corpus/mime/, replayed by
 * `make check` through replay.c. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_error(int ret, const char *error)
{
	if ((ret < 0) != (error != NULL))
		abort();
	if (error != NULL && (strncmp(error, "mime: ", 6) != 0 || strchr(error, '\n') != NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits limits;
	struct mime_result whole, pieces;
	char *error = NULL, *error_pieces = NULL;
	int ret, ret_pieces;

	mime_global_init();
	mime_limits_default(&limits);
	ret = mime_extract(data, size, &limits, &whole, &error);
	fuzz_check_error(ret, error);
	if (ret == 1 && whole.device_xml == NULL)
		abort();
	if (whole.subject != NULL && !g_utf8_validate(whole.subject, -1, NULL))
		abort();

	/* Pieces of 7 to 63 bytes: GMime 3.2.13 itself crashes on some inputs
	 * (a bare CR in a header line) read 1 to 5 bytes at a time, which no
	 * caller does (mime_extract hands GMime whole reads). */
	ret_pieces = mime_extract_chunked(data, size, 7 + size % 57, &limits, &pieces, &error_pieces);
	fuzz_check_error(ret_pieces, error_pieces);
	/* GMime's guess for malformed input depends on its buffering, so the
	 * two readings must agree only where GMime reported no issue. */
	if (whole.parser_warnings == 0 && pieces.parser_warnings == 0 &&
	    (ret_pieces != ret || (whole.device_xml == NULL) != (pieces.device_xml == NULL) ||
	    (whole.device_xml != NULL && !g_bytes_equal(whole.device_xml, pieces.device_xml)) ||
	    g_strcmp0(whole.subject, pieces.subject) != 0 || g_strcmp0(error, error_pieces) != 0))
		abort();

	mime_result_clear(&whole);
	mime_result_clear(&pieces);
	g_free(error);
	g_free(error_pieces);
	return 0;
}
