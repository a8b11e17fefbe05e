/* parse.c: the worker side of the funnel: one raw message -> outcome,
 * snapshot and header hints.  Runs inside the snapkeep-parse process, under
 * the CPU, memory and wall-clock limits the parent imposes, because both
 * GMime and libxml2 read hostile input here.
 *
 * Outcomes: STORED (a snapshot was parsed; the store decides later whether it
 * is new or a duplicate), NOT_SNAPSHOT (no Device.xml part), FAILED (a
 * Device.xml that cannot be used, or a message beyond the MIME limits). */
#include "config.h"

#include "intake/intake.h"

#include <string.h>

#include "util/sktime.h"

enum store_outcome
intake_parse_message(const void *raw, size_t len, const struct mime_limits *mime,
		     const struct devxml_limits *xml, struct snapshot **snap_r,
		     struct mime_result *hints_r, char **detail_r)
{
	char *error = NULL;
	struct snapshot *snap = NULL;
	int r;

	*snap_r = NULL;
	*detail_r = NULL;
	r = mime_extract(raw, len, mime, hints_r, &error);
	if (r < 0) {
		*detail_r = error != NULL ? error : g_strdup("mime: unreadable message");
		return STORE_OUTCOME_FAILED;
	}
	if (r == 0) {
		g_free(error);
		*detail_r = g_strdup("no Device.xml part");
		return STORE_OUTCOME_NOT_SNAPSHOT;
	}

	gsize xml_len = 0;
	const char *xml_data = g_bytes_get_data(hints_r->device_xml, &xml_len);
	if (devxml_parse(xml_data, xml_len, xml, &snap, &error) < 0) {
		*detail_r = error != NULL ? error : g_strdup("xml: unparsable");
		return STORE_OUTCOME_FAILED;
	}

	/* The subject is a fallback for the serial and the snapshot time. */
	if ((snap->serial == NULL || *snap->serial == '\0') && hints_r->subject_serial != NULL) {
		g_free(snap->serial);
		snap->serial = g_strdup(hints_r->subject_serial);
	}
	if (snap->product_number == NULL && hints_r->subject_product != NULL)
		snap->product_number = g_strdup(hints_r->subject_product);
	if (snap->taken_utc == NULL && hints_r->subject_time_utc != NULL) {
		snap->taken_utc = g_strdup(hints_r->subject_time_utc);
		snap->taken_offset_min = 0;
		snap->taken_has_offset = false;
	}
	if (snap->serial == NULL || *snap->serial == '\0') {
		snapshot_free(&snap);
		*detail_r = g_strdup("xml: no serial number in Device.xml or subject");
		return STORE_OUTCOME_FAILED;
	}
	if (snap->taken_utc == NULL) {
		snapshot_free(&snap);
		*detail_r = g_strdup("xml: no snapshot time in Device.xml or subject");
		return STORE_OUTCOME_FAILED;
	}
	*snap_r = snap;
	return STORE_OUTCOME_STORED;
}
