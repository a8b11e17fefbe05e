/* fuzz-devxml.c: libFuzzer target for devxml_parse.  Any input must end in a
 * snapshot or a one-line "xml: " reason, never a crash, hang or leak.  A
 * snapshot must survive the JSON round trip exactly (the worker pipe), and
 * the first byte also picks a chunk size, so chunked feeding is fuzzed too:
 * the same input fed in 64 KiB and in small chunks must agree. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devxml/devxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
parse_to_json(const char *xml, size_t len, size_t chunk, char **error_r)
{
	struct snapshot *snap = NULL;
	char *json;

	if (devxml_parse_chunked(xml, len, chunk, NULL, &snap, error_r) < 0) {
		if (*error_r == NULL || strncmp(*error_r, "xml: ", 5) != 0 ||
		    strchr(*error_r, '\n') != NULL)
			abort();
		return NULL;
	}
	json = snapshot_to_json(snap);
	snapshot_free(&snap);
	return json;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data;
	size_t small = size > 0 ? 1 + data[0] % 61 : 1;
	char *error = NULL, *error2 = NULL;
	char *json, *json2;

	devxml_global_init();
	json = parse_to_json(xml, size, 64 * 1024, &error);
	json2 = parse_to_json(xml, size, small, &error2);
	if ((json == NULL) != (json2 == NULL) || (json != NULL && strcmp(json, json2) != 0))
		abort();
	if (json != NULL) {
		struct snapshot *back = NULL;
		char *again;
		if (snapshot_from_json(json, strlen(json), &back, &error) < 0)
			abort();
		again = snapshot_to_json(back);
		if (strcmp(again, json) != 0)
			abort();
		g_free(again);
		snapshot_free(&back);
	}
	g_free(json);
	g_free(json2);
	g_free(error);
	g_free(error2);
	return 0;
}
