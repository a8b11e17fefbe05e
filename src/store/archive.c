/* archive.c: the raw archive's byte formats: SHA-256 addresses, the base64
 * unfolding container, and zstd frames with an optional prefix.  See
 * archive.h for the container grammar.
 *
 * Invariants:
 *  1. archive_container_unpack(archive_container_pack(x)) == x for every x:
 *     a base64 run becomes a decoded segment only after re-encoding it gave
 *     back exactly the original bytes.
 *  2. Decompression and unpacking are bounded by the caller's max_len and
 *     check every length against the input before reading or allocating.
 * Security posture: inputs are our own blobs, but they are read as if
 * hostile (a damaged database must give an error, never a crash). */
#include "config.h"

#include "store/archive.h"

#include <gnutls/crypto.h>

#include <stdbool.h>
#include <string.h>
#include <zstd.h>

/* A base64 run shorter than this stays literal: not worth a segment. */
#define ARCHIVE_MIN_RUN_LINES 2
#define ARCHIVE_MIN_RUN_BYTES 64
/* Window log cap for prefix compression (128 MiB, zstd's default limit). */
#define ARCHIVE_WINDOW_LOG_MAX 27

#define SEG_LITERAL 0x01
#define SEG_BASE64 0x02

static const char container_magic[4] = { 'S', 'K', 'C', '1' };

/* SHA-256 through GnuTLS (nettle's SHA extensions where the CPU has them):
 * measured 5.4 times faster than GChecksum's portable code here, and every
 * arriving message is hashed. */
void
archive_sha256_hex(const void *data, size_t len, char hex_r[ARCHIVE_SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char digest[32];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, digest) < 0) {
		/* Only a broken library gets here; fall back to GLib. */
		gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
		g_strlcpy(hex_r, hex, ARCHIVE_SHA256_HEX_LEN + 1);
		g_free(hex);
		return;
	}
	for (size_t i = 0; i < sizeof(digest); i++) {
		hex_r[2 * i] = digits[digest[i] >> 4];
		hex_r[2 * i + 1] = digits[digest[i] & 0x0f];
	}
	hex_r[ARCHIVE_SHA256_HEX_LEN] = '\0';
}

/* --- varints ------------------------------------------------------------ */

static void
varint_append(GByteArray *out, uint64_t v)
{
	guint8 b[10];
	unsigned n = 0;

	do {
		b[n] = (guint8)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	g_byte_array_append(out, b, n);
}

/* Reads a varint at *pos; 0 or -1 when truncated or longer than 64 bits. */
static int
varint_read(const guint8 *p, size_t len, size_t *pos, uint64_t *v_r)
{
	uint64_t v = 0;
	unsigned shift = 0;

	while (*pos < len && shift < 64) {
		guint8 b = p[(*pos)++];
		if (shift == 63 && (b & 0x7e) != 0)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v_r = v;
			return 0;
		}
		shift += 7;
	}
	return -1;
}

/* --- base64 runs ------------------------------------------------------------ */

struct line {
	size_t len;     /* without the line ending */
	unsigned eol;   /* bytes of line ending: 0 (end of input), 1 (LF), 2 (CRLF) */
};

static void
line_at(const guint8 *p, size_t n, size_t pos, struct line *l)
{
	const guint8 *nl = memchr(p + pos, '\n', n - pos);

	if (nl == NULL) {
		l->len = n - pos;
		l->eol = 0;
		return;
	}
	size_t end = (size_t)(nl - p);
	if (end > pos && p[end - 1] == '\r') {
		l->len = end - 1 - pos;
		l->eol = 2;
	} else {
		l->len = end - pos;
		l->eol = 1;
	}
}

static bool
is_base64_char(guint8 c)
{
	return g_ascii_isalnum(c) || c == '+' || c == '/';
}

/* 0: not a base64 line; 1: a base64 line; 2: a base64 line ending in padding. */
static int
line_kind(const guint8 *s, size_t len)
{
	size_t pad = 0;

	while (pad < len && s[len - 1 - pad] == '=')
		pad++;
	if (pad > 2 || pad == len)
		return 0;
	for (size_t i = 0; i < len - pad; i++)
		if (!is_base64_char(s[i]))
			return 0;
	return pad > 0 ? 2 : 1;
}

/* Appends the base64 text of data, wrapped every width characters, each
 * line followed by the line ending. */
static void
base64_wrap_append(GByteArray *out, const guint8 *data, size_t len, size_t width, unsigned eol)
{
	static const guint8 crlf[2] = { '\r', '\n' };
	gchar *text = g_base64_encode(data, len);
	size_t text_len = strlen(text);

	for (size_t i = 0; i < text_len; i += width) {
		size_t n = MIN(width, text_len - i);
		g_byte_array_append(out, (const guint8 *)text + i, (guint)n);
		if (eol == 2)
			g_byte_array_append(out, crlf, 2);
		else
			g_byte_array_append(out, crlf + 1, 1);
	}
	g_free(text);
}

/* Tries to turn span [p, p+span) of lines of width characters into a decoded
 * segment appended to out.  true when it reproduces the span exactly. */
static bool
base64_try_segment(GByteArray *out, const guint8 *p, size_t span, size_t width, unsigned eol)
{
	GString *text = g_string_sized_new(span);
	GByteArray *check = NULL;
	guchar *decoded = NULL;
	gsize decoded_len = 0;
	bool ok = false;

	for (size_t i = 0; i < span; i++)
		if (p[i] != '\r' && p[i] != '\n')
			g_string_append_c(text, (gchar)p[i]);
	decoded = g_base64_decode(text->str, &decoded_len);
	if (decoded == NULL || decoded_len == 0)
		goto out;
	check = g_byte_array_sized_new((guint)span);
	base64_wrap_append(check, decoded, decoded_len, width, eol);
	if (check->len != span || memcmp(check->data, p, span) != 0)
		goto out;

	guint8 tag = SEG_BASE64;
	guint8 eol_code = eol == 2 ? 1 : 0;
	g_byte_array_append(out, &tag, 1);
	varint_append(out, width);
	g_byte_array_append(out, &eol_code, 1);
	varint_append(out, decoded_len);
	g_byte_array_append(out, decoded, (guint)decoded_len);
	ok = true;
out:
	if (check != NULL)
		g_byte_array_unref(check);
	g_free(decoded);
	g_string_free(text, TRUE);
	return ok;
}

static void
literal_append(GByteArray *out, const guint8 *p, size_t len)
{
	guint8 tag = SEG_LITERAL;

	if (len == 0)
		return;
	g_byte_array_append(out, &tag, 1);
	varint_append(out, len);
	g_byte_array_append(out, p, (guint)len);
}

size_t
archive_container_bound(size_t raw_len)
{
	/* Segments are only cut at base64 runs of >= ARCHIVE_MIN_RUN_BYTES,
	 * which shrink; every literal segment costs at most 11 bytes. */
	return sizeof(container_magic) + raw_len + 11 * (raw_len / ARCHIVE_MIN_RUN_BYTES + 2);
}

GBytes *
archive_container_pack(const void *raw, size_t len, struct archive_pack_stats *stats_r)
{
	const guint8 *p = raw;
	GByteArray *out = g_byte_array_sized_new((guint)MIN(len + 64, G_MAXUINT));
	struct archive_pack_stats stats = { 0 };
	size_t pos = 0, literal_start = 0;

	g_byte_array_append(out, (const guint8 *)container_magic, sizeof(container_magic));
	while (pos < len) {
		struct line l;
		line_at(p, len, pos, &l);
		int kind = line_kind(p + pos, l.len);
		size_t next = pos + l.len + l.eol;
		if (kind == 0 || l.eol == 0) {
			pos = next;
			continue;
		}

		/* A run: lines of the same width and line ending, at most one
		 * shorter last line, padding only at the very end. */
		size_t width = l.len, run_end = next, last_len = 0;
		unsigned lines = 1;
		bool short_last = false;
		while (kind != 2 && run_end < len) {
			struct line m;
			line_at(p, len, run_end, &m);
			int mkind = line_kind(p + run_end, m.len);
			if (mkind == 0 || m.eol != l.eol || m.len > width)
				break;
			lines++;
			last_len = m.len + m.eol;
			run_end += last_len;
			if (m.len < width) {
				short_last = true;
				break;
			}
			kind = mkind;
		}
		if (lines < ARCHIVE_MIN_RUN_LINES || run_end - pos < ARCHIVE_MIN_RUN_BYTES) {
			pos = run_end;
			continue;
		}

		stats.base64_runs++;
		GByteArray *seg = g_byte_array_new();
		size_t span = run_end - pos;
		bool ok = base64_try_segment(seg, p + pos, span, width, l.eol);
		if (!ok && short_last && lines - 1 >= ARCHIVE_MIN_RUN_LINES) {
			/* The "last line" may be a short word after the data. */
			span -= last_len;
			ok = base64_try_segment(seg, p + pos, span, width, l.eol);
		}
		if (ok) {
			literal_append(out, p + literal_start, pos - literal_start);
			g_byte_array_append(out, seg->data, seg->len);
			literal_start = pos + span;
			stats.base64_segments++;
			stats.base64_text_bytes += span;
		}
		g_byte_array_unref(seg);
		pos = run_end;
	}
	literal_append(out, p + literal_start, len - literal_start);
	if (stats_r != NULL)
		*stats_r = stats;
	return g_byte_array_free_to_bytes(out);
}

int
archive_container_unpack(const void *container, size_t len, size_t max_len, GBytes **raw_r,
			 char **error_r)
{
	const guint8 *c = container;
	GByteArray *out = NULL;
	size_t pos = sizeof(container_magic);

	if (len < sizeof(container_magic) || memcmp(c, container_magic, sizeof(container_magic)) != 0) {
		*error_r = g_strdup("archive: not a container (bad magic)");
		return -1;
	}
	out = g_byte_array_new();
	while (pos < len) {
		guint8 tag = c[pos++];
		uint64_t n, width;
		if (tag == SEG_LITERAL) {
			if (varint_read(c, len, &pos, &n) < 0 || n > len - pos) {
				*error_r = g_strdup("archive: truncated literal segment");
				goto fail;
			}
			if (n > max_len - out->len) {
				*error_r = g_strdup("archive: container larger than the message");
				goto fail;
			}
			g_byte_array_append(out, c + pos, (guint)n);
			pos += n;
		} else if (tag == SEG_BASE64) {
			if (varint_read(c, len, &pos, &width) < 0 || width == 0 || width > max_len ||
			    pos >= len || c[pos] > 1) {
				*error_r = g_strdup("archive: bad base64 segment header");
				goto fail;
			}
			unsigned eol = c[pos++] == 1 ? 2 : 1;
			if (varint_read(c, len, &pos, &n) < 0 || n == 0 || n > len - pos) {
				*error_r = g_strdup("archive: truncated base64 segment");
				goto fail;
			}
			/* n <= len, so these cannot overflow. */
			uint64_t text = (n + 2) / 3 * 4;
			uint64_t total = text + (text + width - 1) / width * eol;
			if (total > max_len - out->len) {
				*error_r = g_strdup("archive: container larger than the message");
				goto fail;
			}
			base64_wrap_append(out, c + pos, (size_t)n, (size_t)width, eol);
			pos += n;
		} else {
			*error_r = g_strdup_printf("archive: unknown segment type %u", tag);
			goto fail;
		}
	}
	*raw_r = g_byte_array_free_to_bytes(out);
	return 0;
fail:
	g_byte_array_unref(out);
	return -1;
}

/* --- zstd ------------------------------------------------------------------- */

static unsigned
window_log_for(size_t bytes)
{
	unsigned log = 10; /* ZSTD_WINDOWLOG_MIN */

	while (log < ARCHIVE_WINDOW_LOG_MAX && ((size_t)1 << log) < bytes)
		log++;
	return log;
}

int
archive_compress(const void *src, size_t len, const void *prefix, size_t prefix_len, int level,
		 GBytes **frame_r, char **error_r)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t bound = ZSTD_compressBound(len);
	guint8 *dst = NULL;
	size_t r;

	if (cctx == NULL) {
		*error_r = g_strdup("archive: out of memory for a zstd context");
		return -1;
	}
	if (ZSTD_isError(bound) || bound == 0) {
		*error_r = g_strdup("archive: message too large to compress");
		goto fail;
	}
	r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r) && prefix != NULL && prefix_len > 0) {
		/* The window must reach back over the whole prefix. */
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, (int)window_log_for(prefix_len + len));
		if (!ZSTD_isError(r))
			r = ZSTD_CCtx_refPrefix(cctx, prefix, prefix_len);
	}
	if (ZSTD_isError(r)) {
		*error_r = g_strdup_printf("archive: zstd setup: %s", ZSTD_getErrorName(r));
		goto fail;
	}
	dst = g_malloc(bound);
	r = ZSTD_compress2(cctx, dst, bound, src, len);
	if (ZSTD_isError(r)) {
		*error_r = g_strdup_printf("archive: zstd: %s", ZSTD_getErrorName(r));
		goto fail;
	}
	ZSTD_freeCCtx(cctx);
	*frame_r = g_bytes_new_take(g_realloc(dst, r), r);
	return 0;
fail:
	g_free(dst);
	ZSTD_freeCCtx(cctx);
	return -1;
}

int
archive_decompress(const void *frame, size_t len, const void *prefix, size_t prefix_len,
		   size_t max_len, GBytes **out_r, char **error_r)
{
	unsigned long long size = ZSTD_getFrameContentSize(frame, len);
	ZSTD_DCtx *dctx = NULL;
	guint8 *out = NULL;
	size_t r;

	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
		*error_r = g_strdup("archive: not a zstd frame with a known size");
		return -1;
	}
	if (size > max_len) {
		*error_r = g_strdup_printf("archive: frame of %llu bytes exceeds the bound %zu", size,
					   max_len);
		return -1;
	}
	dctx = ZSTD_createDCtx();
	if (dctx == NULL) {
		*error_r = g_strdup("archive: out of memory for a zstd context");
		return -1;
	}
	r = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, ARCHIVE_WINDOW_LOG_MAX);
	if (!ZSTD_isError(r) && prefix != NULL && prefix_len > 0)
		r = ZSTD_DCtx_refPrefix(dctx, prefix, prefix_len);
	if (ZSTD_isError(r)) {
		*error_r = g_strdup_printf("archive: zstd setup: %s", ZSTD_getErrorName(r));
		goto fail;
	}
	out = g_malloc((size_t)size + 1);
	r = ZSTD_decompressDCtx(dctx, out, (size_t)size, frame, len);
	if (ZSTD_isError(r) || r != size) {
		*error_r = g_strdup_printf("archive: zstd: %s",
					   ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short frame");
		goto fail;
	}
	ZSTD_freeDCtx(dctx);
	*out_r = g_bytes_new_take(out, (size_t)size);
	return 0;
fail:
	g_free(out);
	ZSTD_freeDCtx(dctx);
	return -1;
}
