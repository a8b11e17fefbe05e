/* mime.c: a raw message -> the Device.xml part and the header hints (GMime 3).
 *
 * What it does: GMime parses the message (RFC 5322 headers, RFC 2045-2049
 * MIME, RFC 2047 encoded words, RFC 2231 parameters); this file walks the
 * tree depth first (multiparts, message/rfc822 parts and their messages,
 * recursively) and takes the first leaf part whose filename -- the
 * Content-Disposition "filename" or the Content-Type "name", as GMime decodes
 * them -- is Device.xml in any case.  The declared Content-Type is ignored.
 * The content is decoded with GMime's own decoders for the declared
 * Content-Transfer-Encoding (base64, quoted-printable, uuencode; 7bit, 8bit,
 * binary and unknown encodings pass through); text encodings also go through
 * GMime's dos2unix filter, so a CRLF message yields the same XML bytes as its
 * LF twin.  The subject hints come from a GRegex (mime_subject_parse).
 *
 * Limits (struct mime_limits, defaults in mime_limits_default, a zero field
 * meaning its default): message size, header size per entity, header fields
 * in the whole message, nesting depth, part count, decoded XML size.  A
 * message over any of them gets -1 and a one-line reason "mime: ...".
 * GMime builds the whole tree before anyone can look at it, and holds about
 * six copies of a header while parsing it, so the check is in three layers:
 *   1. mime_prescan, a linear pass over the raw bytes with no allocation,
 *      refuses before GMime starts: a top-level header over max_header_size;
 *      more than 2 * max_parts + 2 lines that can be boundary delimiters
 *      (every part of a multipart starts with one); a run of header lines
 *      over max_header_size where a header can start (after a delimiter or
 *      a blank line, as in a forwarded message).
 *   2. While GMime parses, mime_guard_header sees every header field it
 *      reads; over max_header_fields, or one entity's header over
 *      max_header_size, it makes the input stream report end of input and
 *      GMime stops within one read buffer.  Nesting is capped by GMime itself
 *      at 1024 levels (GMIME_CRIT_NESTING_OVERFLOW, turned into an error).
 *   3. The walk over the finished tree checks the exact depth, part count
 *      and header size of every entity; the decoded XML is checked against
 *      max_xml_size after decoding (its memory is bounded by the message).
 * Measured on the 100 000-part and 100 000-deep messages of test-mime: a few
 * milliseconds and no GMime tree (layer 1), where GMime alone takes about a
 * second and 200 MB for the parts and 2 s for the nesting.
 *
 * Security posture: the input comes from the network and is hostile until
 * proven otherwise.  Nothing here writes outside GMime's and GLib's own
 * buffers; the message buffer is never copied (a read-only GMimeStream over
 * the caller's bytes).  A leading mbox "From " line is skipped before GMime
 * sees the message: GMime 3.2.13 crashes in its From-line code when such a
 * line (with a CR in it) arrives in pieces.
 *
 * Known hole: GMime 3.2.13 (Debian 12) loops forever on a Content-Type
 * parameter whose name is longer than a line (jstedfast/gmime#165, fixed in
 * 3.2.15), in g_mime_param_list_encode, which runs when GMime re-encodes the
 * header: g_mime_multipart_get_boundary on a multipart without boundary,
 * any setter, any serialisation.  This file only reads the tree and never
 * calls those (test-mime feeds it the #165 reproducer), but GMime may have
 * more such paths: callers must run mime_extract in the parse worker process
 * under CPU, memory and wall-clock limits.
 */
#include "config.h"

#include "mime/mime.h"

#include "util/sktime.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <string.h>

#define MIME_DEVICE_XML "Device.xml"
/* GMime's own nesting cap (MAX_LEVEL in gmime-parser.c). */
#define MIME_GMIME_MAX_LEVEL 1024

/* ---- a read-only GMimeStream over the caller's buffer ------------------ */

/* The bytes are borrowed: they must outlive every stream and substream made
 * from them, which holds because all GMime objects die inside mime_extract.
 * read_max bounds the bytes returned per read (0: no bound), so tests can
 * feed the parser one byte at a time. */
struct mime_slice_stream {
	GMimeStream parent;
	const char *data;
	gint64 len;
	size_t read_max;
	const gboolean *stop; /* when set, reads hit end of stream; may be NULL */
};

struct mime_slice_stream_class {
	GMimeStreamClass parent_class;
};

static GType mime_slice_stream_type;

static gint64
mime_slice_end(GMimeStream *stream)
{
	struct mime_slice_stream *s = (struct mime_slice_stream *)stream;
	if (stream->bound_end == -1 || stream->bound_end > s->len)
		return s->len;
	return stream->bound_end;
}

static ssize_t
mime_slice_read(GMimeStream *stream, char *buf, size_t len)
{
	struct mime_slice_stream *s = (struct mime_slice_stream *)stream;
	gint64 end = mime_slice_end(stream);
	size_t n;

	if (stream->position >= end || stream->position < stream->bound_start ||
	    (s->stop != NULL && *s->stop))
		return 0;
	n = (size_t)(end - stream->position);
	if (n > len)
		n = len;
	if (s->read_max > 0 && n > s->read_max)
		n = s->read_max;
	memcpy(buf, s->data + stream->position, n);
	stream->position += (gint64)n;
	return (ssize_t)n;
}

static ssize_t
mime_slice_write(GMimeStream *stream, const char *buf, size_t len)
{
	errno = EROFS;
	return -1;
}

static int
mime_slice_flush(GMimeStream *stream)
{
	return 0;
}

static int
mime_slice_close(GMimeStream *stream)
{
	return 0;
}

static gboolean
mime_slice_eos(GMimeStream *stream)
{
	return stream->position >= mime_slice_end(stream);
}

static int
mime_slice_reset(GMimeStream *stream)
{
	stream->position = stream->bound_start;
	return 0;
}

static gint64
mime_slice_seek(GMimeStream *stream, gint64 offset, GMimeSeekWhence whence)
{
	gint64 end = mime_slice_end(stream);
	gint64 real;

	switch (whence) {
	case GMIME_STREAM_SEEK_SET:
		real = stream->bound_start + offset;
		break;
	case GMIME_STREAM_SEEK_CUR:
		real = stream->position + offset;
		break;
	case GMIME_STREAM_SEEK_END:
		real = end + offset;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (real < stream->bound_start || real > end) {
		errno = EINVAL;
		return -1;
	}
	stream->position = real;
	return real;
}

static gint64
mime_slice_tell(GMimeStream *stream)
{
	return stream->position;
}

static gint64
mime_slice_length(GMimeStream *stream)
{
	return mime_slice_end(stream) - stream->bound_start;
}

static GMimeStream *mime_slice_new(const char *data, size_t len, size_t read_max,
				   const gboolean *stop, gint64 start, gint64 end);

static GMimeStream *
mime_slice_substream(GMimeStream *stream, gint64 start, gint64 end)
{
	struct mime_slice_stream *s = (struct mime_slice_stream *)stream;
	return mime_slice_new(s->data, (size_t)s->len, s->read_max, s->stop, start, end);
}

static void
mime_slice_class_init(gpointer klass, gpointer class_data)
{
	GMimeStreamClass *stream_class = klass;

	stream_class->read = mime_slice_read;
	stream_class->write = mime_slice_write;
	stream_class->flush = mime_slice_flush;
	stream_class->close = mime_slice_close;
	stream_class->eos = mime_slice_eos;
	stream_class->reset = mime_slice_reset;
	stream_class->seek = mime_slice_seek;
	stream_class->tell = mime_slice_tell;
	stream_class->length = mime_slice_length;
	stream_class->substream = mime_slice_substream;
}

static GMimeStream *
mime_slice_new(const char *data, size_t len, size_t read_max, const gboolean *stop, gint64 start,
	       gint64 end)
{
	struct mime_slice_stream *s = g_object_new(mime_slice_stream_type, NULL);

	s->data = data;
	s->len = (gint64)len;
	s->read_max = read_max;
	s->stop = stop;
	g_mime_stream_construct(&s->parent, start, end);
	return &s->parent;
}

/* ---- process-wide setup ------------------------------------------------ */

static gpointer
mime_global_init_once(gpointer data)
{
	static const GTypeInfo info = {
		.class_size = sizeof(struct mime_slice_stream_class),
		.class_init = mime_slice_class_init,
		.instance_size = sizeof(struct mime_slice_stream),
	};

	g_mime_init();
	mime_slice_stream_type =
		g_type_register_static(GMIME_TYPE_STREAM, "SkMimeSliceStream", &info, 0);
	return NULL;
}

void
mime_global_init(void)
{
	static GOnce once = G_ONCE_INIT;
	g_once(&once, mime_global_init_once, NULL);
}

void
mime_limits_default(struct mime_limits *limits)
{
	limits->max_message_size = 64u * 1024 * 1024;
	limits->max_header_size = 1024u * 1024;
	limits->max_depth = 100;
	limits->max_parts = 10000;
	limits->max_xml_size = 16u * 1024 * 1024;
	limits->max_header_fields = 50000;
}

void
mime_result_clear(struct mime_result *result)
{
	if (result == NULL)
		return;
	if (result->device_xml != NULL)
		g_bytes_unref(result->device_xml);
	g_free(result->subject);
	g_free(result->from);
	g_free(result->date);
	g_free(result->date_utc);
	g_free(result->message_id);
	g_free(result->subject_kind);
	g_free(result->subject_time_utc);
	g_free(result->subject_product);
	g_free(result->subject_serial);
	memset(result, 0, sizeof(*result));
}

/* ---- the subject hints ------------------------------------------------- */

/* "Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B" and
 * "Printer Snapshot (Nov 28,2007 5:44:18 PM) – C5958A – SG73CB1018":
 * hyphen, en or em dash; a space after the comma or not; a 12-hour clock
 * (or 24-hour without AM/PM); month names in English, full or abbreviated. */
static const char mime_subject_pattern[] =
	"^\\s*(Device|Printer)\\s+Snapshot\\s*"
	"\\(\\s*([A-Za-z]{3})[A-Za-z]*\\.?\\s*(\\d{1,2})\\s*,\\s*(\\d{4})\\s+"
	"(\\d{1,2}):(\\d{2}):(\\d{2})\\s*([AaPp]\\.?[Mm]\\.?)?\\s*\\)"
	"\\s*[-\\x{2013}\\x{2014}]\\s*([^\\s\\x{2013}\\x{2014}]+)"
	"\\s*[-\\x{2013}\\x{2014}]\\s*([^\\s\\x{2013}\\x{2014}]+)\\s*$";

static int
mime_month_from_name(const char *abbrev)
{
	static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun",
					      "jul", "aug", "sep", "oct", "nov", "dec" };
	for (int i = 0; i < 12; i++) {
		if (g_ascii_strncasecmp(abbrev, months[i], 3) == 0)
			return i + 1;
	}
	return 0;
}

static GRegex *
mime_subject_regex(void)
{
	static gsize initialised;
	static GRegex *regex;

	if (g_once_init_enter(&initialised)) {
		regex = g_regex_new(mime_subject_pattern, 0, 0, NULL); /* no JIT: one match per message */
		g_assert(regex != NULL); /* a constant pattern: a broken invariant */
		g_once_init_leave(&initialised, 1);
	}
	return regex;
}

int
mime_subject_parse(const char *subject, char **kind_r, char **time_utc_r, char **product_r,
		   char **serial_r)
{
	GMatchInfo *match = NULL;
	GDateTime *dt = NULL;
	char utc[SK_UTC_SIZE];
	char *field[11] = { NULL };
	int month, day, year, hour, minute, second;
	int ret = -1;

	*kind_r = *time_utc_r = *product_r = *serial_r = NULL;
	if (subject == NULL || !g_utf8_validate(subject, -1, NULL))
		goto out;
	if (!g_regex_match(mime_subject_regex(), subject, 0, &match))
		goto out;
	for (int i = 1; i <= 10; i++)
		field[i] = g_match_info_fetch(match, i);

	month = mime_month_from_name(field[2]);
	day = (int)g_ascii_strtoll(field[3], NULL, 10);
	year = (int)g_ascii_strtoll(field[4], NULL, 10);
	hour = (int)g_ascii_strtoll(field[5], NULL, 10);
	minute = (int)g_ascii_strtoll(field[6], NULL, 10);
	second = (int)g_ascii_strtoll(field[7], NULL, 10);
	if (month == 0)
		goto out;
	if (field[8] != NULL && field[8][0] != '\0') {
		/* 12-hour clock: 12:xx AM is 00:xx, 12:xx PM is 12:xx. */
		if (hour < 1 || hour > 12)
			goto out;
		hour %= 12;
		if (g_ascii_tolower(field[8][0]) == 'p')
			hour += 12;
	}
	dt = g_date_time_new_utc(year, month, day, hour, minute, second);
	if (dt == NULL)
		goto out;
	sk_time_format_utc(g_date_time_to_unix(dt), utc);

	*kind_r = g_strdup_printf("%s Snapshot", field[1]);
	*time_utc_r = g_strdup(utc);
	*product_r = g_steal_pointer(&field[9]);
	*serial_r = g_steal_pointer(&field[10]);
	ret = 0;
out:
	for (int i = 0; i < 11; i++)
		g_free(field[i]);
	if (dt != NULL)
		g_date_time_unref(dt);
	g_match_info_free(match);
	return ret;
}

/* ---- the pre-scan ------------------------------------------------------ */

/* A boundary is 1 to 70 of these (RFC 2046 bchars); "-->" is no boundary. */
static gboolean
mime_is_bchar(unsigned char c)
{
	return c != '\0' && (g_ascii_isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL);
}

static gboolean
mime_line_is_blank(const char *p, size_t line_len)
{
	return line_len == 0 || p[0] == '\n' || (p[0] == '\r' && line_len >= 2 && p[1] == '\n');
}

/* A header field line ("Name:", the name of letters, digits and "-_.", an
 * optional space before the colon as GMime tolerates), or within a header a
 * folded continuation line (leading space or tab).  Names are narrower than
 * RFC 5322 allows so that XML content ("<dd:Foo>") never looks like one. */
static gboolean
mime_line_is_header(const char *p, size_t line_len, gboolean in_header)
{
	size_t i = 0;

	if (line_len == 0)
		return FALSE;
	if (p[0] == ' ' || p[0] == '\t')
		return in_header && !mime_line_is_blank(p, line_len);
	while (i < line_len && (g_ascii_isalnum(p[i]) || p[i] == '-' || p[i] == '_' || p[i] == '.'))
		i++;
	if (i == 0)
		return FALSE;
	while (i < line_len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < line_len && p[i] == ':';
}

/* One linear pass, no allocation: refuses what would make GMime build a huge
 * tree or a huge header before it starts.  The checks:
 *   - the top-level header block (up to the first blank line) is at most
 *     max_header_size;
 *   - lines that can be boundary delimiters ("--" and a bchar) number at most
 *     2 * max_parts + 2: every part inside a multipart starts with one and
 *     each multipart has one closing delimiter, so a message over this bound
 *     has more than max_parts parts;
 *   - a run of header lines that starts where a header can start (after such
 *     a delimiter line or after a blank line, as a message/rfc822 body's
 *     header does) is at most max_header_size.  GMime holds about six
 *     copies of a header while parsing it, so this is what bounds memory for
 *     a huge header in a nested entity.
 * It can over-count (content lines that look like delimiters or headers),
 * but only a hostile or absurd message trips it: base64 content never looks
 * like either.  Exact checks follow the parse. */
static int
mime_prescan(const char *raw, size_t len, const struct mime_limits *limits, char **error_r)
{
	const char *p = raw;
	const char *end = raw + len;
	gboolean in_top_header = TRUE;
	gboolean at_block_start = FALSE; /* a header may start on this line */
	gboolean in_header = FALSE;      /* inside a run of header lines */
	size_t header_size = 0;
	guint64 delimiters = 0;
	guint64 max_delimiters = 2 * (guint64)limits->max_parts + 2;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		size_t line_len = (size_t)(next - p);
		gboolean blank = mime_line_is_blank(p, line_len);

		if (in_top_header) {
			if (blank) {
				in_top_header = FALSE;
				at_block_start = TRUE;
			} else {
				header_size += line_len;
			}
		} else {
			if ((in_header || at_block_start) && mime_line_is_header(p, line_len, in_header)) {
				if (!in_header)
					header_size = 0;
				in_header = TRUE;
				header_size += line_len;
			} else {
				in_header = FALSE;
			}
			at_block_start = blank;
		}
		if (header_size > limits->max_header_size) {
			*error_r = g_strdup_printf("mime: header larger than %zu bytes",
						   limits->max_header_size);
			return -1;
		}
		if (line_len >= 3 && p[0] == '-' && p[1] == '-' && mime_is_bchar((unsigned char)p[2])) {
			if (++delimiters > max_delimiters) {
				*error_r = g_strdup_printf("mime: more than %u parts (over %" G_GUINT64_FORMAT
							   " boundary lines)",
							   limits->max_parts, max_delimiters);
				return -1;
			}
			if (!in_top_header) {
				at_block_start = TRUE;
				in_header = FALSE;
			}
		}
		p = next;
	}
	return 0;
}

/* ---- the guard during the parse ----------------------------------------- */

/* GMime reports every header field it parses, in any entity, with its
 * offset; fields of one entity are contiguous.  When a limit is exceeded the
 * guard sets stop, the input stream then reports end of stream, and GMime
 * finishes at once with what it has read (at most one read buffer more). */
struct mime_guard {
	const struct mime_limits *limits;
	gboolean stop;
	char *error;
	guint64 fields;
	gint64 block_end;  /* offset just past the previous field */
	guint64 block_size; /* bytes of the current entity's header so far */
	gboolean nesting_overflow;
	unsigned warnings;
};

static void
mime_guard_header(GMimeParser *parser, const char *name, const char *raw_value, gint64 offset,
		  gpointer user_data)
{
	struct mime_guard *guard = user_data;
	guint64 size = strlen(name) + 1 + (raw_value != NULL ? strlen(raw_value) : 0);

	if (guard->stop)
		return;
	if (offset != guard->block_end)
		guard->block_size = 0;
	guard->block_size += size;
	guard->block_end = offset + (gint64)size;
	if (++guard->fields > guard->limits->max_header_fields) {
		guard->error = g_strdup_printf("mime: more than %u header fields",
					       guard->limits->max_header_fields);
		guard->stop = TRUE;
	} else if (guard->block_size > guard->limits->max_header_size) {
		guard->error = g_strdup_printf("mime: header larger than %zu bytes",
					       guard->limits->max_header_size);
		guard->stop = TRUE;
	}
}

static void
mime_guard_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer user_data)
{
	struct mime_guard *guard = user_data;

	guard->warnings++;
	if (code == GMIME_CRIT_NESTING_OVERFLOW)
		guard->nesting_overflow = TRUE;
}

/* ---- the tree walk ----------------------------------------------------- */

struct mime_walk {
	const struct mime_limits *limits;
	unsigned parts;
	GMimePart *device_part; /* borrowed from the tree */
	char *error;
};

static int
mime_check_headers(struct mime_walk *walk, GMimeObject *object)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(object);
	size_t total = 0;
	int count;

	if (headers == NULL)
		return 0;
	count = g_mime_header_list_get_count(headers);
	for (int i = 0; i < count; i++) {
		GMimeHeader *header = g_mime_header_list_get_header_at(headers, i);
		const char *name = g_mime_header_get_name(header);
		const char *value = g_mime_header_get_raw_value(header);

		total += (name != NULL ? strlen(name) : 0) + (value != NULL ? strlen(value) : 0) + 2;
		if (total > walk->limits->max_header_size) {
			walk->error = g_strdup_printf("mime: header larger than %zu bytes",
						      walk->limits->max_header_size);
			return -1;
		}
	}
	return 0;
}

/* Compares the last path component, trimmed, case-insensitively. */
static gboolean
mime_is_device_xml(const char *filename)
{
	const char *base;
	char *copy;
	gboolean match;

	if (filename == NULL)
		return FALSE;
	base = filename;
	for (const char *p = filename; *p != '\0'; p++) {
		if (*p == '/' || *p == '\\')
			base = p + 1;
	}
	copy = g_strstrip(g_strdup(base));
	match = g_ascii_strcasecmp(copy, MIME_DEVICE_XML) == 0;
	g_free(copy);
	return match;
}

static int
mime_walk_object(struct mime_walk *walk, GMimeObject *object, unsigned depth)
{
	if (++walk->parts > walk->limits->max_parts) {
		walk->error = g_strdup_printf("mime: more than %u parts", walk->limits->max_parts);
		return -1;
	}
	if (depth > walk->limits->max_depth) {
		walk->error = g_strdup_printf("mime: nested deeper than %u levels", walk->limits->max_depth);
		return -1;
	}
	if (mime_check_headers(walk, object) < 0)
		return -1;

	if (GMIME_IS_MULTIPART(object)) {
		GMimeMultipart *multipart = GMIME_MULTIPART(object);
		int count = g_mime_multipart_get_count(multipart);

		for (int i = 0; i < count; i++) {
			if (mime_walk_object(walk, g_mime_multipart_get_part(multipart, i), depth + 1) < 0)
				return -1;
		}
	} else if (GMIME_IS_MESSAGE_PART(object)) {
		GMimeMessage *message = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
		GMimeObject *body;

		if (message == NULL)
			return 0;
		if (mime_check_headers(walk, GMIME_OBJECT(message)) < 0)
			return -1;
		body = g_mime_message_get_mime_part(message);
		if (body != NULL && mime_walk_object(walk, body, depth + 1) < 0)
			return -1;
	} else if (GMIME_IS_PART(object) && walk->device_part == NULL) {
		if (mime_is_device_xml(g_mime_object_get_content_disposition_parameter(object, "filename")) ||
		    mime_is_device_xml(g_mime_object_get_content_type_parameter(object, "name")) ||
		    mime_is_device_xml(g_mime_part_get_filename(GMIME_PART(object))))
			walk->device_part = GMIME_PART(object);
	}
	return 0;
}

/* Decodes the part's content with GMime's decoders into memory; text
 * encodings also get CRLF -> LF. */
static int
mime_decode_part(GMimePart *part, const struct mime_limits *limits, GBytes **xml_r, char **error_r)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GByteArray *array = g_byte_array_new();
	GMimeStream *mem = NULL;
	GMimeStream *out = NULL;
	GMimeContentEncoding encoding;
	int ret = -1;

	if (content == NULL) {
		*xml_r = g_byte_array_free_to_bytes(array);
		return 0;
	}
	mem = g_mime_stream_mem_new_with_byte_array(array);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	encoding = g_mime_data_wrapper_get_encoding(content);
	if (encoding == GMIME_CONTENT_ENCODING_BASE64 || encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
		out = g_object_ref(mem);
	} else {
		GMimeFilter *filter = g_mime_filter_dos2unix_new(FALSE);

		out = g_mime_stream_filter_new(mem);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(out), filter);
		g_object_unref(filter);
	}
	if (g_mime_data_wrapper_write_to_stream(content, out) < 0 || g_mime_stream_flush(out) < 0) {
		*error_r = g_strdup("mime: cannot decode the Device.xml part");
		goto out;
	}
	if (array->len > limits->max_xml_size) {
		*error_r = g_strdup_printf("mime: Device.xml larger than %zu bytes", limits->max_xml_size);
		goto out;
	}
	*xml_r = g_byte_array_free_to_bytes(g_steal_pointer(&array));
	ret = 0;
out:
	if (out != NULL)
		g_object_unref(out);
	if (mem != NULL)
		g_object_unref(mem);
	if (array != NULL)
		g_byte_array_unref(array);
	return ret;
}

/* ---- the header hints -------------------------------------------------- */

static char *
mime_strdup_trimmed(const char *text)
{
	return text != NULL ? g_strstrip(g_strdup(text)) : NULL;
}

static void
mime_fill_hints(GMimeMessage *message, struct mime_result *result)
{
	GMimeObject *object = GMIME_OBJECT(message);
	InternetAddressList *from = g_mime_message_get_from(message);
	GDateTime *date = g_mime_message_get_date(message);
	const char *subject = g_mime_message_get_subject(message);

	if (subject != NULL && g_utf8_validate(subject, -1, NULL))
		result->subject = mime_strdup_trimmed(subject);
	if (from != NULL && internet_address_list_length(from) > 0)
		result->from = internet_address_list_to_string(from, NULL, FALSE);
	else
		result->from = mime_strdup_trimmed(g_mime_object_get_header(object, "From"));
	result->date = mime_strdup_trimmed(g_mime_object_get_header(object, "Date"));
	if (date != NULL) {
		char utc[SK_UTC_SIZE];

		sk_time_format_utc(g_date_time_to_unix(date), utc);
		result->date_utc = g_strdup(utc);
	}
	result->message_id = mime_strdup_trimmed(g_mime_message_get_message_id(message));
	if (result->subject != NULL)
		(void)mime_subject_parse(result->subject, &result->subject_kind, &result->subject_time_utc,
					 &result->subject_product, &result->subject_serial);
}

/* ---- the entry point --------------------------------------------------- */

/* Copies limits (NULL: the defaults), a field left 0 taking its default. */
static void
mime_limits_effective(const struct mime_limits *limits, struct mime_limits *effective_r)
{
	struct mime_limits defaults;

	mime_limits_default(&defaults);
	if (limits == NULL) {
		*effective_r = defaults;
		return;
	}
	*effective_r = *limits;
	if (effective_r->max_message_size == 0)
		effective_r->max_message_size = defaults.max_message_size;
	if (effective_r->max_header_size == 0)
		effective_r->max_header_size = defaults.max_header_size;
	if (effective_r->max_depth == 0)
		effective_r->max_depth = defaults.max_depth;
	if (effective_r->max_parts == 0)
		effective_r->max_parts = defaults.max_parts;
	if (effective_r->max_xml_size == 0)
		effective_r->max_xml_size = defaults.max_xml_size;
	if (effective_r->max_header_fields == 0)
		effective_r->max_header_fields = defaults.max_header_fields;
}

int
mime_extract_chunked(const void *raw, size_t len, size_t read_max, const struct mime_limits *limits_in,
		     struct mime_result *result, char **error_r)
{
	struct mime_limits limits;
	struct mime_guard guard = { 0 };
	struct mime_walk walk = { 0 };
	GMimeParserOptions *options = NULL;
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *message = NULL;
	GMimeObject *body;
	char *error = NULL;
	int ret = -1;

	memset(result, 0, sizeof(*result));
	mime_global_init();
	mime_limits_effective(limits_in, &limits);
	if (raw == NULL || len == 0) {
		error = g_strdup("mime: empty message");
		goto out;
	}
	if (len > limits.max_message_size) {
		error = g_strdup_printf("mime: message larger than %zu bytes", limits.max_message_size);
		goto out;
	}
	/* An mbox separator line left in front ("From sender date") is not
	 * part of the message.  Skipping it also keeps GMime 3.2.13 out of its
	 * From-line code, which crashes when that line arrives in pieces
	 * ("From \rCxxxxF\nF" read 2 bytes at a time: a g_strndup of -1). */
	if (len >= 5 && memcmp(raw, "From ", 5) == 0) {
		const char *nl = memchr(raw, '\n', len);
		size_t skip = nl != NULL ? (size_t)(nl - (const char *)raw) + 1 : len;

		raw = (const char *)raw + skip;
		len -= skip;
		if (len == 0) {
			error = g_strdup("mime: empty message (only an mbox From line)");
			goto out;
		}
	}
	if (mime_prescan(raw, len, &limits, &error) < 0)
		goto out;

	guard.limits = &limits;
	guard.block_end = -1;
	options = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(options, mime_guard_warning, &guard);
	stream = mime_slice_new(raw, len, read_max, &guard.stop, 0, (gint64)len);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	g_mime_parser_set_header_regex(parser, "^", mime_guard_header, &guard);
	message = g_mime_parser_construct_message(parser, options);
	result->parser_warnings = guard.warnings;
	if (guard.error != NULL) {
		error = g_steal_pointer(&guard.error);
		goto out;
	}
	if (message == NULL) {
		error = g_strdup("mime: not a mail message (no header could be parsed)");
		goto out;
	}
	if (guard.nesting_overflow) {
		error = g_strdup_printf("mime: nested deeper than %u levels",
					MIN(limits.max_depth, MIME_GMIME_MAX_LEVEL));
		goto out;
	}
	mime_fill_hints(message, result);

	walk.limits = &limits;
	if (mime_check_headers(&walk, GMIME_OBJECT(message)) < 0) {
		error = g_steal_pointer(&walk.error);
		goto out;
	}
	body = g_mime_message_get_mime_part(message);
	if (body != NULL && mime_walk_object(&walk, body, 0) < 0) {
		error = g_steal_pointer(&walk.error);
		goto out;
	}
	if (walk.device_part == NULL) {
		ret = 0;
		goto out;
	}
	if (mime_decode_part(walk.device_part, &limits, &result->device_xml, &error) < 0)
		goto out;
	ret = 1;
out:
	if (ret < 0 && error_r != NULL)
		*error_r = g_steal_pointer(&error);
	g_free(error);
	g_free(guard.error);
	if (message != NULL)
		g_object_unref(message);
	if (parser != NULL)
		g_object_unref(parser);
	if (stream != NULL)
		g_object_unref(stream);
	if (options != NULL)
		g_mime_parser_options_free(options);
	return ret;
}

int
mime_extract(const void *raw, size_t len, const struct mime_limits *limits, struct mime_result *result,
	     char **error_r)
{
	return mime_extract_chunked(raw, len, 0, limits, result, error_r);
}
