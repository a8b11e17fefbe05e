/* mime.h: a raw message -> the Device.xml part and the header hints.
 *
 * A snapshot mail is one with a part whose filename is Device.xml (any case),
 * anywhere in the MIME tree, including forwarded message/rfc822 parts.  The
 * declared Content-Type is not trusted; the declared transfer encoding is
 * decoded (base64, quoted-printable, 7bit, 8bit).  CRLF and LF both work.
 * Security posture: the message comes from the network; header size, MIME
 * depth, part count and decoded size are bounded (mime_limits).  GMime
 * 3.2.13 can loop on a crafted Content-Type: callers run this in the parse
 * worker, under CPU and wall-clock limits. */
#ifndef SK_MIME_H
#define SK_MIME_H

#include <glib.h>
#include <stddef.h>

struct mime_limits {
	size_t max_message_size; /* default 64 MiB */
	size_t max_header_size;  /* all header lines of one entity; default 1 MiB */
	unsigned max_depth;      /* nesting of multiparts and message/rfc822; default 100 */
	unsigned max_parts;      /* parts in the whole tree; default 10000 */
	size_t max_xml_size;     /* decoded Device.xml; default 16 MiB */
	unsigned max_header_fields; /* header fields in the whole message, all
				     * entities together; default 50000 */
};

/* Fills in the defaults.  mime_extract treats a field left 0 as its default. */
void mime_limits_default(struct mime_limits *limits);

struct mime_result {
	GBytes *device_xml;     /* decoded Device.xml bytes; NULL if none */
	char *subject;          /* decoded (RFC 2047) UTF-8 subject, or NULL */
	char *from;             /* From address as text */
	char *date;             /* Date header as given */
	char *date_utc;         /* Date header as UTC text, or NULL */
	char *message_id;
	/* From a subject of the form "Device Snapshot (Feb 11, 2015 5:54:22 AM)
	 * - CD646A - CNBXD9SP0B" or "Printer Snapshot (...) - ... - ...": */
	char *subject_kind;     /* "Device Snapshot" / "Printer Snapshot" or NULL */
	char *subject_time_utc; /* the time in the subject (it is UTC) */
	char *subject_product;
	char *subject_serial;
	/* Issues GMime's parser reported (GMimeParserWarning: malformed
	 * headers, multiparts without boundary, truncation ...).  Nonzero means
	 * the tree is GMime's best guess, and the guess can depend on how the
	 * input was buffered (GMime 3.2.13). */
	unsigned parser_warnings;
};

/* Returns 1 when a Device.xml part was found (result->device_xml set),
 * 0 when the message is well-formed enough but carries none ("not a
 * snapshot": header hints are still filled), -1 when a limit was hit or the
 * message cannot be read, with a one-line reason "mime: ..." in *error_r
 * (g_free'd by the caller; error_r may be NULL).  *result is always
 * initialised; on -1 it holds no device_xml but keeps whatever header hints
 * were read before the failure.  Free with mime_result_clear.  limits NULL
 * means the defaults.  raw is only read, never copied, and need not be
 * NUL-terminated.  A leading mbox "From " line is skipped.  Calls
 * mime_global_init itself.
 * GMime 3.2.13 can loop on one crafted Content-Type header: run this in the
 * parse worker under CPU and wall-clock limits (see mime.c). */
int mime_extract(const void *raw, size_t len, const struct mime_limits *limits,
		 struct mime_result *result, char **error_r);
/* As mime_extract, but GMime's parser gets at most read_max bytes per read
 * (0: no bound); the result must not depend on it.  For tests and fuzzing
 * only: GMime 3.2.13 crashes (g_strndup of -1) on some hostile inputs -- a
 * bare CR in a header line -- when they arrive a few bytes at a time
 * (read_max 1 to 5); whole reads, as mime_extract does, are not affected. */
int mime_extract_chunked(const void *raw, size_t len, size_t read_max,
			 const struct mime_limits *limits, struct mime_result *result,
			 char **error_r);
/* Frees the members and zeroes *result; accepts NULL. */
void mime_result_clear(struct mime_result *result);

/* Parses just the subject forms above (the decoded subject): hyphen, en or
 * em dash, with or without a space after the comma, 12-hour clock (24-hour
 * without AM/PM), English month names; the time is taken as UTC and written
 * as "YYYY-MM-DDTHH:MM:SSZ".  0 with all four g_strdup'd, or -1 with all
 * four NULL. */
int mime_subject_parse(const char *subject, char **kind_r, char **time_utc_r,
		       char **product_r, char **serial_r);

/* Initialises GMime once per process (g_once: thread-safe, idempotent). */
void mime_global_init(void);

#endif
