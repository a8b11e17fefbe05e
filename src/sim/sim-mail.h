/* sim-mail.h: snapshot mails as printers send them (GMime), their variants,
 * the faults the simulator can inject, and the JSON-lines manifest.
 *
 * Mails are deterministic: boundaries and Message-IDs derive from the
 * device, the snapshot time and a per-device mail counter, never from the
 * clock or a random source. */
#ifndef SK_SIM_MAIL_H
#define SK_SIM_MAIL_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "sim/sim.h"

enum sim_encoding {
	SIM_ENC_BASE64 = 0,
	SIM_ENC_QP,
	SIM_ENC_7BIT, /* declared 8bit when the XML is not ASCII */
};

struct sim_variant {
	enum sim_encoding encoding;
	const char *content_type; /* text/xml, application/xml, application/octet-stream */
	bool forwarded;		  /* wrapped as message/rfc822 in an admin's mail */
	bool lf;		  /* bare LF line endings */
	bool nonascii;		  /* Korean descriptions whatever the locale */
};

/* Parses a comma list: base64 qp 7bit text/xml application/xml
 * application/octet-stream forward lf nonascii ("mix" is handled by the
 * caller).  0 or -1. */
int sim_variant_parse(const char *list, struct sim_variant *variant_r, char **error_r);
/* A random variant drawn from rand (mostly the plain one). */
void sim_variant_random(GRand *rand, struct sim_variant *variant_r);
/* Default: base64, text/xml, CRLF. */
void sim_variant_default(struct sim_variant *variant_r);
const char *sim_encoding_name(enum sim_encoding encoding);

enum sim_fault {
	SIM_FAULT_NONE = 0,
	SIM_FAULT_MISSING_ATTACHMENT,
	SIM_FAULT_TRUNCATED_XML,
	SIM_FAULT_ENTITY_BOMB,
	SIM_FAULT_EXTERNAL_ENTITY,
	SIM_FAULT_OVERSIZED,
	SIM_FAULT_DUPLICATE_RESEND,
	SIM_FAULT_SAME_SNAPSHOT_NEW_MAIL,
	SIM_FAULT_ALERT_MAIL,
	SIM_FAULT_CLOCK_SKEW,
	SIM_FAULT_COUNTER_RESET,
	SIM_FAULT_SLOW_SENDER,	/* SMTP only */
	SIM_FAULT_DROP_IN_DATA, /* SMTP only */
	SIM_FAULT_COUNT
};

const char *sim_fault_name(enum sim_fault fault);
/* What a correct receiver does with it: stored, not_snapshot, failed,
 * rejected, duplicate, duplicate_snapshot, not_received. */
const char *sim_fault_expect(enum sim_fault fault);
int sim_fault_parse(const char *name, enum sim_fault *fault_r);
bool sim_fault_smtp_only(enum sim_fault fault);

struct sim_mail_settings {
	const char *const *to;	  /* NULL-terminated recipients */
	const char *forward_from; /* the admin who forwards: fleet-admin@... */
	size_t oversize_bytes;	  /* size of the oversized-message fault */
};

void sim_mail_settings_default(struct sim_mail_settings *settings);

struct sim_mail {
	GBytes *raw;	  /* the message bytes */
	char *message_id; /* without angle brackets */
	char *from;	  /* envelope sender */
	char *subject;	  /* decoded */
	char sha256[65];
};

void sim_mail_free(struct sim_mail **mail);

/* The subject of a snapshot taken at t (UTC seconds, device clock):
 * "Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B" or the
 * legacy "Printer Snapshot (Nov 28,2007 5:44:18 PM) – C5958A – SG73CB1018".
 * g_free'd by the caller. */
char *sim_mail_subject(const struct sim_device *dev, int64_t t);

/* A snapshot mail carrying xml as Device.xml (or, with the
 * missing-attachment fault, not carrying it).  seq makes the Message-ID and
 * boundary unique per mail of the device.  t_ms is when the device sends
 * (its own clock). */
struct sim_mail *sim_mail_snapshot(const struct sim_device *dev, int64_t t_ms, GBytes *xml,
				   const struct sim_variant *variant, enum sim_fault fault,
				   unsigned seq, const struct sim_mail_settings *settings);

/* A non-snapshot alert mail from the printer's address. */
struct sim_mail *sim_mail_alert(const struct sim_device *dev, int64_t t_ms, unsigned seq,
				const struct sim_mail_settings *settings);

/* Applies a document fault to xml: truncation, entity bomb, external
 * entity.  Returns a new GBytes (the same one referenced for other faults). */
GBytes *sim_fault_apply_xml(GBytes *xml, enum sim_fault fault, GRand *rand);

/* The manifest line for one snapshot (without the delivery result): serial,
 * times, counters, supplies, new events, fault and expectation, message
 * SHA-256 and Message-ID.  new_events_since: newest sequence already sent.
 * Returns a new JsonObject. */
JsonObject *sim_manifest_object(const struct sim_device *dev, int64_t taken_ms, int64_t clock_skew,
				const struct sim_variant *variant, enum sim_fault fault,
				const struct sim_mail *mail, size_t xml_len,
				int64_t new_events_since);
/* One compact JSON line (with "\n"); g_free'd by the caller. */
char *sim_manifest_line(JsonObject *obj);

#endif
