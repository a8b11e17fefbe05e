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

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/* A base64 run shorter than this stays literal: not worth a segment. */
#define ARCHIVE_MIN_RUN_LINES 2
#define ARCHIVE_MIN_RUN_BYTES 64
/* Window log cap for prefix compression (128 MiB, zstd's default limit). */
#define ARCHIVE_WINDOW_LOG_MAX 27
/* Window log of archive_hash_compress_fd's streaming compression. */
#define ARCHIVE_STREAM_WINDOW_LOG 20

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

/* Base64 is handled in blocks of whole lines whose text is a whole number of
 * 4-character quanta (so each block decodes and encodes on its own), about
 * this many characters: the scratch memory stays small whatever the size of
 * the attachment. */
#define BASE64_BLOCK_CHARS 16384

/* Lines per block for lines of width characters. */
static size_t
base64_block_lines(size_t width)
{
	size_t quantum_lines = width % 4 == 0 ? 1 : width % 2 == 0 ? 2 : 4;
	size_t blocks = BASE64_BLOCK_CHARS / (quantum_lines * width);
	return quantum_lines * MAX(blocks, 1);
}

static void
eol_append(GByteArray *out, unsigned eol)
{
	static const guint8 crlf[2] = { '\r', '\n' };

	if (eol == 2)
		g_byte_array_append(out, crlf, 2);
	else
		g_byte_array_append(out, crlf + 1, 1);
}

/* Where the bytes of an unpacked container go: appended to a buffer, or
 * compared with the message they must equal.  false stops the walk. */
struct unpack_sink {
	GByteArray *out;        /* append here, or */
	const guint8 *expect;   /* compare with expect[0, expect_len) */
	size_t expect_len;
	size_t done;            /* bytes emitted so far */
};

static bool
sink_emit(struct unpack_sink *sink, const guint8 *p, size_t n)
{
	if (sink->out != NULL) {
		g_byte_array_append(sink->out, p, (guint)n);
	} else if (n > sink->expect_len - sink->done || memcmp(sink->expect + sink->done, p, n) != 0) {
		return false;
	}
	sink->done += n;
	return true;
}

/* Emits the base64 text of data, wrapped every width characters, each line
 * followed by the line ending, a block of lines at a time. */
static bool
base64_wrap_emit(struct unpack_sink *sink, const guint8 *data, size_t len, size_t width,
		 unsigned eol)
{
	size_t block_chars = base64_block_lines(width) * width;
	size_t block_bytes = block_chars / 4 * 3;
	gchar *text = g_malloc(block_chars + 8);
	GByteArray *lines = g_byte_array_sized_new((guint)(block_chars + block_chars / width * 2 + 8));
	bool ok = true;

	for (size_t done = 0; ok && done < len;) {
		size_t n = MIN(block_bytes, len - done);
		gint state = 0, save = 0;
		size_t text_len = g_base64_encode_step(data + done, n, FALSE, text, &state, &save);
		text_len += g_base64_encode_close(FALSE, text + text_len, &state, &save);
		g_byte_array_set_size(lines, 0);
		for (size_t i = 0; i < text_len; i += width) {
			g_byte_array_append(lines, (const guint8 *)text + i, (guint)MIN(width, text_len - i));
			eol_append(lines, eol);
		}
		ok = sink_emit(sink, lines->data, lines->len);
		done += n;
	}
	g_byte_array_unref(lines);
	g_free(text);
	return ok;
}

/* Tries to append span [p, p+span) of lines of width characters (the last
 * one may be shorter) to out as a decoded segment.  true when it reproduces
 * the span exactly; otherwise out is left as it was.  Block by block: the
 * lines' text is decoded straight into out, then encoded again and
 * compared with the text. */
static bool
base64_try_segment(GByteArray *out, const guint8 *p, size_t span, size_t width, unsigned eol)
{
	size_t block_lines = base64_block_lines(width);
	size_t chars = 0, pad = 0, pos = 0;
	guint mark = out->len;
	gchar *text = NULL, *again = NULL;
	bool ok = false;

	/* The shape first: full lines of width, the same line ending, a last
	 * line no longer; then the decoded size, written before the data. */
	while (pos < span) {
		struct line l;
		line_at(p, span, pos, &l);
		if (l.eol != eol || l.len == 0 || l.len > width)
			return false;
		chars += l.len;
		pos += l.len + l.eol;
		if (l.len < width && pos < span)
			return false;
	}
	while (pad < 2 && pad < chars && p[span - eol - 1 - pad] == '=')
		pad++;
	if (chars == 0 || chars % 4 != 0 || chars / 4 * 3 <= pad)
		return false;
	size_t decoded_len = chars / 4 * 3 - pad;

	guint8 tag = SEG_BASE64;
	guint8 eol_code = eol == 2 ? 1 : 0;
	g_byte_array_append(out, &tag, 1);
	varint_append(out, width);
	g_byte_array_append(out, &eol_code, 1);
	varint_append(out, decoded_len);

	text = g_malloc(block_lines * width + 8);
	again = g_malloc(block_lines * width + 8);
	size_t written = 0;
	for (pos = 0; pos < span;) {
		size_t text_len = 0;
		for (size_t i = 0; i < block_lines && pos < span; i++) {
			struct line l;
			line_at(p, span, pos, &l);
			memcpy(text + text_len, p + pos, l.len);
			text_len += l.len;
			pos += l.len + l.eol;
		}
		guint at = out->len;
		gint state = 0, esave = 0;
		guint dsave = 0;
		g_byte_array_set_size(out, at + (guint)(text_len / 4 * 3 + 3));
		size_t n = g_base64_decode_step(text, text_len, out->data + at, &state, &dsave);
		g_byte_array_set_size(out, at + (guint)n);
		written += n;
		state = 0;
		size_t again_len = g_base64_encode_step(out->data + at, n, FALSE, again, &state, &esave);
		again_len += g_base64_encode_close(FALSE, again + again_len, &state, &esave);
		if (again_len != text_len || memcmp(again, text, text_len) != 0)
			goto out;
	}
	ok = written == decoded_len;
out:
	if (!ok)
		g_byte_array_set_size(out, mark);
	g_free(text);
	g_free(again);
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
		size_t span = run_end - pos;
		guint mark = out->len;
		literal_append(out, p + literal_start, pos - literal_start);
		bool ok = base64_try_segment(out, p + pos, span, width, l.eol);
		if (!ok && short_last && lines - 1 >= ARCHIVE_MIN_RUN_LINES) {
			/* The "last line" may be a short word after the data. */
			span -= last_len;
			ok = base64_try_segment(out, p + pos, span, width, l.eol);
		}
		if (ok) {
			literal_start = pos + span;
			stats.base64_segments++;
			stats.base64_text_bytes += span;
		} else {
			g_byte_array_set_size(out, mark);
		}
		pos = run_end;
	}
	literal_append(out, p + literal_start, len - literal_start);
	if (stats_r != NULL)
		*stats_r = stats;
	/* Sized for the raw message; a container with base64 runs is about a
	 * quarter smaller, and it may be kept in a cache: give the rest back. */
	guint out_len = out->len;
	return g_bytes_new_take(g_realloc(g_byte_array_free(out, FALSE), MAX(out_len, 1)), out_len);
}

/* Walks a container, emitting its raw bytes to sink: at most max_len of
 * them.  0, or -1 with *error_r (damage, too large, or the sink refused). */
static int
container_walk(const guint8 *c, size_t len, size_t max_len, struct unpack_sink *sink,
	       char **error_r)
{
	size_t pos = sizeof(container_magic);

	if (len < sizeof(container_magic) || memcmp(c, container_magic, sizeof(container_magic)) != 0) {
		*error_r = g_strdup("archive: not a container (bad magic)");
		return -1;
	}
	while (pos < len) {
		guint8 tag = c[pos++];
		uint64_t n, width;
		bool same;
		if (tag == SEG_LITERAL) {
			if (varint_read(c, len, &pos, &n) < 0 || n > len - pos) {
				*error_r = g_strdup("archive: truncated literal segment");
				return -1;
			}
			if (n > max_len - sink->done) {
				*error_r = g_strdup("archive: container larger than the message");
				return -1;
			}
			same = sink_emit(sink, c + pos, (size_t)n);
			pos += n;
		} else if (tag == SEG_BASE64) {
			if (varint_read(c, len, &pos, &width) < 0 || width == 0 || width > max_len ||
			    pos >= len || c[pos] > 1) {
				*error_r = g_strdup("archive: bad base64 segment header");
				return -1;
			}
			unsigned eol = c[pos++] == 1 ? 2 : 1;
			if (varint_read(c, len, &pos, &n) < 0 || n == 0 || n > len - pos) {
				*error_r = g_strdup("archive: truncated base64 segment");
				return -1;
			}
			/* n <= len, so these cannot overflow. */
			uint64_t text = (n + 2) / 3 * 4;
			uint64_t total = text + (text + width - 1) / width * eol;
			if (total > max_len - sink->done) {
				*error_r = g_strdup("archive: container larger than the message");
				return -1;
			}
			same = base64_wrap_emit(sink, c + pos, (size_t)n, (size_t)width, eol);
			pos += n;
		} else {
			*error_r = g_strdup_printf("archive: unknown segment type %u", tag);
			return -1;
		}
		if (!same) {
			*error_r = g_strdup_printf("archive: container differs from the message at or "
						   "after byte %zu", sink->done);
			return -1;
		}
	}
	return 0;
}

int
archive_container_unpack(const void *container, size_t len, size_t max_len, GBytes **raw_r,
			 char **error_r)
{
	/* Sized for the usual case (base64 runs expand by about 4/3) so that
	 * the buffer does not double past the message. */
	struct unpack_sink sink = {
		.out = g_byte_array_sized_new((guint)MIN(MIN(max_len, len / 2 * 3 + 64), G_MAXUINT)),
	};

	if (container_walk(container, len, max_len, &sink, error_r) < 0) {
		g_byte_array_unref(sink.out);
		return -1;
	}
	*raw_r = g_byte_array_free_to_bytes(sink.out);
	return 0;
}

int
archive_container_check(const void *container, size_t len, const void *raw, size_t raw_len,
			char **error_r)
{
	struct unpack_sink sink = { .expect = raw, .expect_len = raw_len };

	if (container_walk(container, len, raw_len, &sink, error_r) < 0)
		return -1;
	if (sink.done != raw_len) {
		*error_r = g_strdup_printf("archive: container gives %zu of the message's %zu bytes",
					   sink.done, raw_len);
		return -1;
	}
	return 0;
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
archive_hash_compress_fd(int fd, size_t len, int level, char sha_r[ARCHIVE_SHA256_HEX_LEN + 1],
			 GBytes **frame_r, char **error_r)
{
	static const char digits[] = "0123456789abcdef";
	size_t chunk = ZSTD_CStreamInSize(); /* below the mmap threshold: reused heap memory */
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	gnutls_hash_hd_t hash = NULL;
	guint8 *in = g_malloc(chunk);
	GByteArray *out = g_byte_array_new();
	size_t done = 0, r;
	unsigned char digest[32];

	if (cctx == NULL || gnutls_hash_init(&hash, GNUTLS_DIG_SHA256) < 0) {
		*error_r = g_strdup("archive: out of memory for a zstd or hash context");
		goto fail;
	}
	r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	/* Streaming keeps a window of input: 1 MiB, not the level's default
	 * (up to 8 MiB for large inputs), since many arrive at once. */
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, ARCHIVE_STREAM_WINDOW_LOG);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setPledgedSrcSize(cctx, len); /* the size goes in the header */
	if (ZSTD_isError(r)) {
		*error_r = g_strdup_printf("archive: zstd setup: %s", ZSTD_getErrorName(r));
		goto fail;
	}
	for (;;) {
		ssize_t n = 0;
		if (done < len) {
			n = pread(fd, in, MIN(chunk, len - done), (off_t)done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				*error_r = n < 0 ? g_strdup_printf("archive: read: %s", g_strerror(errno))
						 : g_strdup_printf("archive: file ends at %zu of %zu bytes",
								   done, len);
				goto fail;
			}
			if (gnutls_hash(hash, in, (size_t)n) < 0) {
				*error_r = g_strdup("archive: SHA-256 failed");
				goto fail;
			}
			done += (size_t)n;
		}
		ZSTD_EndDirective mode = done < len ? ZSTD_e_continue : ZSTD_e_end;
		ZSTD_inBuffer ib = { in, (size_t)n, 0 };
		size_t left;
		do {
			guint at = out->len;
			g_byte_array_set_size(out, at + (guint)ZSTD_CStreamOutSize());
			ZSTD_outBuffer ob = { out->data + at, ZSTD_CStreamOutSize(), 0 };
			left = ZSTD_compressStream2(cctx, &ob, &ib, mode);
			g_byte_array_set_size(out, at + (guint)ob.pos);
			if (ZSTD_isError(left)) {
				*error_r = g_strdup_printf("archive: zstd: %s", ZSTD_getErrorName(left));
				goto fail;
			}
		} while (mode == ZSTD_e_end ? left != 0 : ib.pos < ib.size);
		if (mode == ZSTD_e_end)
			break;
	}
	gnutls_hash_deinit(hash, digest);
	hash = NULL;
	for (size_t i = 0; i < sizeof(digest); i++) {
		sha_r[2 * i] = digits[digest[i] >> 4];
		sha_r[2 * i + 1] = digits[digest[i] & 0x0f];
	}
	sha_r[ARCHIVE_SHA256_HEX_LEN] = '\0';
	ZSTD_freeCCtx(cctx);
	g_free(in);
	guint out_len = out->len;
	*frame_r = g_bytes_new_take(g_realloc(g_byte_array_free(out, FALSE), MAX(out_len, 1)), out_len);
	return 0;
fail:
	if (hash != NULL)
		gnutls_hash_deinit(hash, NULL);
	ZSTD_freeCCtx(cctx);
	g_free(in);
	g_byte_array_unref(out);
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
