/* sim.h: the device simulator's library parts: printer models, the fleet of
 * virtual devices, AutoSend schedules, and the Device.xml writer for both
 * dialects (FutureSmart DeviceService and legacy XDM Device).
 *
 * Everything here is deterministic for a given seed: each device has its own
 * GRand seeded from (fleet seed, device index), and no function reads the
 * wall clock; time is always passed in (Unix seconds, UTC).  The simulator is
 * a test tool that writes documents, it reads only templates given by its
 * operator (parsed without network, DTD loading or entity expansion).
 *
 * Invariants kept by sim_device_advance (each checked by tests/unit/test-sim):
 *  1. Counters never decrease (except on the counter-reset fault).
 *  2. Per media size TotalImpressions = MonochromeImpressions + ColorImpressions;
 *     the device total is the sum over the media sizes;
 *     SimplexSheets + 2 x DuplexSheets = TotalImpressions.
 *  3. A supply's level falls with the pages printed on it (its yield); it is
 *     "low" at or below its threshold, "out" at 0, and a replaced supply has a
 *     new serial, a new install date, a level near 100 and its pages reset.
 *  4. Event sequence numbers grow by one per event across the device's logs;
 *     a log keeps the newest `capacity` entries, written newest first. */
#ifndef SK_SIM_H
#define SK_SIM_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devxml/snapshot.h"

/* ---- settings ---------------------------------------------------------- */

#define SIM_LOG_CAPACITY_DEFAULT 200	  /* entries per event log (HP: 200) */
#define SIM_JOB_LOG_CAPACITY_DEFAULT 1000 /* legacy colour-usage job log */
#define SIM_MEDIA_MAX 8			  /* media sizes per device */
#define SIM_SUPPLY_MAX 8		  /* supplies per device */

/* ---- models ------------------------------------------------------------ */

struct sim_supply_model {
	char *label;	   /* ConsumableLabelCode K C M Y; NULL for a kit */
	char *color;	   /* black cyan magenta yellow; NULL for a kit */
	char *type;	   /* tonerCartridge, maintenanceKit, imageDrum, ... */
	char *product;	   /* W2120A */
	char *legacy_id;   /* legacy component id without the i prefix: blackToner */
	char *description; /* Black Cartridge */
	int64_t yield;	   /* pages from full to empty */
};

struct sim_template;

struct sim_model {
	char *product_number; /* J8J70A */
	char *name;	      /* HP LaserJet Enterprise MFP M631 */
	enum snapshot_dialect dialect;
	bool color, mfp, fax, a3;
	bool legacy_iprefix;	   /* legacy component ids iSystem / iBlackToner */
	char *serial_prefix;	   /* country/plant part of serials: PHB, CNBX, JPB */
	char *firmware;		   /* Version/Revision */
	char *firmware_date;	   /* Version/Date */
	double ppd_min, ppd_max;   /* typical pages per working day */
	GPtrArray *supplies;	   /* struct sim_supply_model * */
	GPtrArray *media;	   /* char * PWG names fixed by a template; NULL: by region */
	struct sim_template *tmpl; /* NULL for built-in models (not owned) */
};

/* The built-in catalogue: a mix of FutureSmart and legacy, mono and colour,
 * printers and MFPs.  Returned array and models are owned by the module. */
const GPtrArray *sim_model_catalogue(void);
void sim_model_free(struct sim_model **model);
/* Frees a struct sim_supply_model (GDestroyNotify for model->supplies). */
void sim_supply_model_free(gpointer supply);

/* ---- schedules (AutoSend) ---------------------------------------------- */

enum sim_schedule_unit {
	SIM_SCHED_DAYS = 1,
	SIM_SCHED_WEEKS,
	SIM_SCHED_MONTHS,
	SIM_SCHED_PAGES,
};

#define SIM_SCHED_PAGES_MIN 50
#define SIM_SCHED_PAGES_MAX 30000

struct sim_schedule {
	enum sim_schedule_unit unit;
	unsigned every; /* N days / weeks / months / pages */
};

/* Parses "3d", "2w", "1m", "500p" (also "days:3", "pages:500").  0 or -1. */
int sim_schedule_parse(const char *text, struct sim_schedule *sched_r, char **error_r);
/* "every 3 days"; returned string is g_free'd. */
char *sim_schedule_describe(const struct sim_schedule *sched);
/* The k-th send time after anchor (k >= 0) of a time schedule, computed in
 * the local time of tz (NULL: UTC) from the anchor, so that months keep the
 * anchor's day of month, clamped to the month's end (Jan 31, Feb 28, Mar 31).
 * Returns -1 for a page schedule. */
int64_t sim_schedule_time_k(const struct sim_schedule *sched, GTimeZone *tz, int64_t anchor,
			    unsigned k);
/* The k-th page target of a page schedule: anchor_pages + k x every. */
int64_t sim_schedule_pages_k(const struct sim_schedule *sched, int64_t anchor_pages, unsigned k);

/* ---- devices ----------------------------------------------------------- */

enum sim_supply_state {
	SIM_SUPPLY_OK = 0,
	SIM_SUPPLY_LOW,
	SIM_SUPPLY_OUT,
};

struct sim_supply {
	const struct sim_supply_model *m;
	char serial[24];   /* empty for kits without one */
	int64_t installed; /* Unix time of installation */
	double remaining;  /* pages left at the nominal yield */
	double capacity;   /* pages when new (yield with +-5 % spread) */
	int64_t pages;	   /* pages printed on this supply */
	int low_threshold; /* percent */
	enum sim_supply_state state;
	int64_t out_since;  /* when it went out; 0 if not out */
	int64_t replace_at; /* when the operator will replace it; 0: not planned */
	unsigned replacements;
	bool clone; /* non-HP brand (10.00.33 "used supply in use") */
};

struct sim_event {
	int64_t seq;
	int64_t t_ms;  /* Unix milliseconds */
	int64_t pages; /* TotalImpressions at the event */
	int64_t scans;
	uint32_t boot; /* boot cycle */
	uint16_t code; /* index into the event table */
	uint8_t log;   /* 0 error, 1 info (FutureSmart); legacy has one log */
	int8_t supply; /* supply index for supply events, -1 otherwise */
};

struct sim_job {
	int64_t t;
	uint32_t id;
	uint32_t mono, color;
	uint16_t name, user, app;
	uint8_t media;
	uint8_t duplex;
};

struct sim_ring {
	void *v;
	size_t elem_size;
	unsigned cap, len, head; /* head: next slot to write */
};

struct sim_site {
	const char *locale;	 /* en-US ko-KR ... */
	const char *tz_id;	 /* IANA zone */
	int fallback_offset_min; /* when tzdata lacks tz_id */
	bool letter;		 /* Letter region (else A4) */
	const char *net;	 /* first two octets of the site's network */
};

/* The sites a fleet spreads over (locale, zone, paper region). */
unsigned sim_site_count(void);
const struct sim_site *sim_site_get(unsigned i);

struct sim_device {
	unsigned index;
	GRand *rand;
	guint32 seed; /* this device's seed (for per-event detail) */
	const struct sim_model *model;
	const struct sim_site *site;
	GTimeZone *tz;

	char serial[16];
	char hostname[16];
	char ip[20];
	char mac[20];
	char uuid[40];
	char from[128];

	/* printing pattern */
	double ppd;	/* pages per working day */
	double weekend; /* weekend factor */
	double color_share, duplex_share, scan_share, copy_share, fax_share;
	double jam_per_page;
	double ldap_per_day, email_per_day; /* misconfiguration noise in the info log */
	unsigned n_media;
	char media_name[SIM_MEDIA_MAX][40];
	double media_weight[SIM_MEDIA_MAX];
	double day_noise;
	int64_t day_noise_day;

	/* counters */
	int64_t mono[SIM_MEDIA_MAX], color[SIM_MEDIA_MAX], blank[SIM_MEDIA_MAX];
	int64_t simplex, duplex, jams, adf, flatbed, copies, faxes;
	double carry_pages, carry_color[SIM_MEDIA_MAX], carry_media[SIM_MEDIA_MAX];
	double carry_duplex, carry_scan;
	uint32_t boot;

	unsigned n_supplies;
	struct sim_supply supplies[SIM_SUPPLY_MAX];

	struct sim_ring logs[2]; /* struct sim_event; legacy uses logs[0] */
	struct sim_ring jobs;	 /* struct sim_job; legacy only */
	uint32_t next_job;
	int64_t next_seq;
	unsigned formatter_resets;

	int64_t now; /* simulated time the state is at */

	/* AutoSend */
	struct sim_schedule sched;
	int64_t sched_anchor;  /* time or page anchor */
	unsigned sched_k;      /* next k to fire */
	int64_t last_sent_seq; /* newest event sequence already sent */
	unsigned snapshots;    /* snapshots taken */
	unsigned mails;	       /* mails made (for unique Message-IDs) */
	int64_t clock_skew;    /* seconds; 0 normally */
};

struct sim_fleet_settings {
	guint32 seed;
	unsigned devices;
	int64_t start;			     /* Unix time the fleet starts at */
	unsigned log_capacity;		     /* SIM_LOG_CAPACITY_DEFAULT */
	unsigned job_log_capacity;	     /* SIM_JOB_LOG_CAPACITY_DEFAULT */
	bool detailed_errors;		     /* "detailed error information": 2-3 MB docs */
	const struct sim_schedule *schedule; /* NULL: a mix per device */
	GPtrArray *models;		     /* struct sim_model *; NULL: the catalogue */
	const char *from_domain;	     /* From: hostname@from_domain */
	const char *dialect;		     /* "futuresmart", "legacy" or NULL for both */
};

void sim_fleet_settings_default(struct sim_fleet_settings *settings);

struct sim_fleet {
	struct sim_fleet_settings settings;
	GPtrArray *devices; /* struct sim_device * */
};

/* Creates the fleet at settings->start, every device with a past. */
struct sim_fleet *sim_fleet_new(const struct sim_fleet_settings *settings);
void sim_fleet_free(struct sim_fleet **fleet);

/* Advances one device's state to time `until` (>= dev->now). */
void sim_device_advance(struct sim_device *dev, int64_t until);
/* The device prints exactly `pages` more pages over [dev->now, until). */
void sim_device_print(struct sim_device *dev, int64_t pages, int64_t until);

/* When is the device's next AutoSend due, looking at most up to `horizon`?
 * For time schedules this is exact.  For page schedules the device state is
 * advanced (in hourly steps) up to the crossing, which is then returned;
 * when nothing is due before horizon, returns -1 (state then at horizon). */
int64_t sim_device_next_due(struct sim_device *dev, int64_t horizon);
/* Marks the due snapshot as taken (moves the schedule on). */
void sim_device_snapshot_taken(struct sim_device *dev);

/* Formatter replaced: all counters and logs start again from zero. */
void sim_device_counter_reset(struct sim_device *dev, int64_t when);

/* Device totals as the parser reports them. */
int64_t sim_device_total_impressions(const struct sim_device *dev);
int64_t sim_device_mono_impressions(const struct sim_device *dev);
int64_t sim_device_color_impressions(const struct sim_device *dev);
/* Level of a supply in percent, 0..100. */
int sim_supply_level(const struct sim_supply *supply);
const char *sim_supply_state_name(enum sim_supply_state state);

/* Events: ring iteration, newest first (i = 0 newest). */
unsigned sim_ring_len(const struct sim_ring *ring);
const void *sim_ring_get(const struct sim_ring *ring, unsigned i);

/* ---- event table -------------------------------------------------------- */

enum sim_event_code {
	SIM_EV_JAM_TRAY2 = 0,
	SIM_EV_JAM_TRAY3,
	SIM_EV_JAM_FUSER,
	SIM_EV_JAM_OUTPUT,
	SIM_EV_JAM_DUPLEX,
	SIM_EV_ADF_MISPICK,
	SIM_EV_FW_ERROR,
	SIM_EV_FUSER_ERROR,
	SIM_EV_SCANNER_ERROR,
	SIM_EV_WASTE_FULL,
	SIM_EV_SIZE_MISMATCH,
	SIM_EV_LDAP,
	SIM_EV_EMAIL_FAIL,
	SIM_EV_USED_SUPPLY,
	SIM_EV_SUPPLY_LOW, /* code and text depend on the supply */
	SIM_EV_SUPPLY_OUT,
	SIM_EV_SUPPLY_REPLACED,
	SIM_EV_COUNT
};

struct sim_event_kind {
	const char *code;    /* 13.B2.D1 */
	const char *id;	     /* cELJamTray2 */
	uint8_t log;	     /* 0 error, 1 info */
	const char *text[5]; /* en de fr ja ko */
};
const struct sim_event_kind *sim_event_kind(unsigned code);
/* The event's code as written ("13.B2.D1"; supply events "10.02.60"). */
void sim_event_code_string(const struct sim_event *ev, char buf[16]);
/* HP-style event id (cELJamTray2). */
const char *sim_event_id(const struct sim_event *ev);
/* Description in the device's locale (UTF-8). */
const char *sim_event_description(const struct sim_device *dev, const struct sim_event *ev,
				  bool force_korean);

/* ---- Device.xml ------------------------------------------------------- */

struct sim_doc_options {
	bool detailed_errors; /* large per-error detail blocks */
	bool force_korean;    /* non-ASCII descriptions regardless of locale */
	int64_t clock_skew;   /* seconds added to the device's clock */
};

/* Writes the device's current state, taken at taken_ms (Unix ms), as Device.xml in its model's
 * dialect (or by rewriting its model's template).  Returns a new GBytes (unref by the caller); the
 * document is well-formed UTF-8. */
GBytes *sim_device_write_xml(const struct sim_device *dev, int64_t taken_ms,
			     const struct sim_doc_options *options);

/* Local time of the device as ISO 8601 with milliseconds and offset:
 * "2015-02-11T14:54:22.729+09:00".  g_free'd by the caller. */
char *sim_device_format_time(const struct sim_device *dev, int64_t t_ms);
/* Offset of the device's zone at t, in minutes east of UTC. */
int sim_device_offset_min(const struct sim_device *dev, int64_t t);

/* ---- templates --------------------------------------------------------- */

/* Loads a real Device.xml, or a snapshot mail carrying one, and derives a
 * model from it.  0 with *model_r (free with sim_model_free, which frees the
 * template) or -1 with *error_r. */
int sim_template_load(const char *path, struct sim_model **model_r, char **error_r);
/* Rewrites a copy of the template with the device's state (sim-template.c). */
GBytes *sim_template_write(const struct sim_device *dev, int64_t taken_ms,
			   const struct sim_doc_options *options);
void sim_template_free(struct sim_template **tmpl);

#endif
