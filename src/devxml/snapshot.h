/* snapshot.h: what one Device.xml says, in the project's own terms.
 *
 * devxml/ fills it from either dialect, sim/ writes documents from the same
 * values, store/ turns it into rows.  All strings are UTF-8, owned by the
 * struct (g_free'd by snapshot_free), NULL when the document did not say.
 * Numbers that were not reported are SNAPSHOT_ABSENT: absent is not zero.
 * Times are UTC text (util/sktime.h); *_offset_min keeps the device's offset. */
#ifndef SK_SNAPSHOT_H
#define SK_SNAPSHOT_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define SNAPSHOT_ABSENT INT64_MIN

enum snapshot_dialect {
	SNAPSHOT_DIALECT_FUTURESMART = 1, /* root DeviceService */
	SNAPSHOT_DIALECT_LEGACY = 2,      /* root Device (XDM) */
};

/* A counter: device total (media_size NULL) or per media size.  HP's names:
 * TotalImpressions, MonochromeImpressions, ColorImpressions, SimplexSheets,
 * DuplexSheets, JamEvents, AdfImages, FlatbedImages, BlankSides, ...; the
 * copy and fax subunits' totals are CopyImpressions and FaxImpressions.
 * value = significand x 10^exponent; a fractional value is rounded toward
 * zero into value and kept exactly in value_real. */
struct snapshot_counter {
	char *name;
	char *media_size;
	int64_t value;
	double value_real;
};

struct snapshot_supply {
	char *key;            /* stable per device: "K", "C", "blackToner", "maintenanceKit" */
	char *label;          /* ConsumableLabelCode (K C M Y) or component id */
	char *color;          /* lower case: black cyan magenta yellow; NULL if none */
	char *type;           /* tonerCartridge, toner, imageDrum, maintenanceKit, ... */
	char *description;
	char *product_number;
	char *serial;
	char *state;          /* ok low out empty missing unknown; NULL when not said */
	char *brand;
	char *installed_date; /* YYYY-MM-DD as given */
	int64_t level_percent;
	int64_t low_threshold;
	int64_t pages;
};

struct snapshot_event {
	char *log;             /* "error", "info", "system", ... */
	int64_t sequence;
	char *code;            /* "44.A0.4B" */
	char *occurred_utc;    /* NULL when unparsable/absent */
	int occurred_offset_min;
	char *description;
	int64_t page_count;
	char *payload_json;    /* Payload key/values as a JSON object text, or NULL */
};

struct snapshot {
	enum snapshot_dialect dialect;
	char *serial;
	char *product_number;
	char *model;
	char *firmware;
	char *firmware_date;
	char *hostname;
	char *ip_address;
	char *mac_address;
	char *device_uuid;
	char *locale;

	char *taken_utc;         /* NULL when the document has no TimeStamp */
	int taken_offset_min;
	bool taken_has_offset;

	GPtrArray *counters;       /* struct snapshot_counter *, device totals (media_size NULL) */
	GPtrArray *media_counters; /* struct snapshot_counter *, per media size */
	GPtrArray *supplies;       /* struct snapshot_supply * */
	GPtrArray *events;         /* struct snapshot_event * */
};

/* Allocates an empty snapshot with the arrays created. */
struct snapshot *snapshot_new(void);
void snapshot_free(struct snapshot **snap);

/* Returns the device-total counter NAME, or NULL when not reported. */
const struct snapshot_counter *snapshot_counter_find(const struct snapshot *snap, const char *name);

/* Returns the per-media-size counter NAME for MEDIA_SIZE, or NULL. */
const struct snapshot_counter *snapshot_media_counter_find(const struct snapshot *snap, const char *name,
							    const char *media_size);

/* Constructors for the array elements (freed by snapshot_free once added):
 * numbers start as SNAPSHOT_ABSENT, strings as NULL. */
struct snapshot_supply *snapshot_supply_new(void);
struct snapshot_event *snapshot_event_new(void);
struct snapshot_counter *snapshot_counter_new(const char *name, const char *media_size, int64_t value,
					      double value_real);

/* "futuresmart" or "legacy" (static string). */
const char *snapshot_dialect_name(enum snapshot_dialect dialect);

/* Serialise to / from JSON text (json-glib), for the parse worker's pipe,
 * the command line's --json and tests.  Returned string is g_free'd. */
char *snapshot_to_json(const struct snapshot *snap);
int snapshot_from_json(const char *json, size_t len, struct snapshot **snap_r, char **error_r);

#endif
