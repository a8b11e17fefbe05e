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
	size_t max_elements;     /* elements in the document; default 1000000 */
};

/* Fills *limits with the defaults. */
void devxml_limits_default(struct devxml_limits *limits);

/* Parses one Device.xml.  Returns 0 and a new snapshot in *snap_r (caller
 * frees with snapshot_free), or -1 with a one-line reason in *error_r
 * (g_free'd by the caller): "xml: DOCTYPE refused", "xml: not a Device.xml
 * (root element 'html')", "xml: truncated document at line 12", ...
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
