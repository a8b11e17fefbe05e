/* devxml.h: Device.xml (FutureSmart DeviceService and legacy XDM Device) ->
 * struct snapshot.
 *
 * Elements are matched by local name only, never by namespace URI or prefix.
 * Security posture: the document comes from the network.  libxml2 runs with
 * no entity expansion, no DTD loading, no network, an external entity loader
 * that refuses everything, and a document with a DOCTYPE is refused outright.
 * Size, depth and string-length limits below bound time and memory. */
#ifndef SK_DEVXML_H
#define SK_DEVXML_H

#include <stddef.h>

#include "devxml/snapshot.h"

struct devxml_limits {
	size_t max_xml_size;     /* bytes of XML; default 16 MiB */
	unsigned max_depth;      /* element nesting; default 64 */
	size_t max_string_len;   /* one text node or attribute; default 64 KiB */
	unsigned max_events;     /* event entries kept per document; default 10000 */
	size_t max_elements;     /* elements in the document; default 500000 */
};
/* Measured cost (x86-64, libxml2 2.9.14): a 3 MB document with 4000 log
 * entries parses in ~50 ms and ~33 MB RSS; 15 MB with 20000 entries peaks at
 * ~130 MB before max_events refuses it; 16 MB of empty elements is refused at
 * max_elements after ~80 MB.  Give the parse worker at least 256 MB. */

/* Fills *limits with the defaults. */
void devxml_limits_default(struct devxml_limits *limits);

/* Parses one Device.xml.  Returns 0 and a new snapshot in *snap_r (caller
 * frees with snapshot_free), or -1 with a one-line reason in *error_r
 * (g_free'd by the caller): "xml: DOCTYPE refused", "xml: not a Device.xml
 * (root element 'html')", "xml: truncated or malformed document at line 12
 * (...)", "xml: no SerialNumber", "xml: encoding 'UTF-7' not accepted",
 * "xml: more than 10000 event entries", ...  The reason is one line of
 * valid UTF-8 that may quote document text: escape it where shown.
 * Declared encodings: UTF-8/16, ISO-8859-n, windows-125n, ASCII, EUC-KR/JP,
 * Shift_JIS, GB2312/GBK/GB18030, Big5, KOI8 (stateless ones only).
 * limits may be NULL for the defaults. */
int devxml_parse(const char *xml, size_t len, const struct devxml_limits *limits,
		 struct snapshot **snap_r, char **error_r);

/* The same, feeding libxml2's push parser CHUNK_SIZE bytes at a time
 * (devxml_parse uses 64 KiB); the result does not depend on the chunk size. */
int devxml_parse_chunked(const char *xml, size_t len, size_t chunk_size,
			 const struct devxml_limits *limits, struct snapshot **snap_r, char **error_r);

/* Call once per process before any parse (sets the refusing entity loader). */
void devxml_global_init(void);

#endif
