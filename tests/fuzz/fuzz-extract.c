/* fuzz-extract.c: libFuzzer target for the whole extraction a parse worker
 * runs on a raw message: MIME (GMime) to the Device.xml part, then Device.xml
 * (libxml2) to a snapshot, then the snapshot to JSON and back (the worker's
 * answer).  Any input must end in one of the three outcomes, never a crash
 * or a leak. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "intake/intake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct mime_limits mime;
	struct devxml_limits xml;
	struct mime_result hints;
	struct snapshot *snap = NULL;
	char *detail = NULL;

	if (!initialised) {
		mime_global_init();
		devxml_global_init();
		initialised = 1;
	}
	mime_limits_default(&mime);
	devxml_limits_default(&xml);
	enum store_outcome outcome =
	    intake_parse_message(data, size, &mime, &xml, &snap, &hints, &detail);
	if (outcome == STORE_OUTCOME_STORED) {
		char *json = snapshot_to_json(snap);
		struct snapshot *back = NULL;
		char *error = NULL;
		if (snapshot_from_json(json, strlen(json), &back, &error) < 0)
			__builtin_trap(); /* our own JSON must read back */
		char *again = snapshot_to_json(back);
		if (strcmp(json, again) != 0)
			__builtin_trap();
		g_free(again);
		snapshot_free(&back);
		g_free(json);
	} else if (detail == NULL) {
		__builtin_trap(); /* every other outcome carries a reason */
	}
	snapshot_free(&snap);
	mime_result_clear(&hints);
	g_free(detail);
	return 0;
}
