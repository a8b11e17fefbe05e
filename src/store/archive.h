/* archive.h: the raw archive's byte formats, without SQL.
 *
 * A message is archived in one of two forms (messages.method):
 *
 *   'zstd'  one zstd frame of the raw bytes.  Written at accept time: fast,
 *           needs nothing but the message.
 *   'skc1'  one zstd frame of the message's *container*, compressed with the
 *           container of an earlier message of the same device as a prefix
 *           (a delta), or without one (a keyframe).  Written by the repack
 *           in store_result_commit once the device is known.
 *
 * Why a container: a snapshot mail carries Device.xml base64-encoded in
 * 76-column lines, so one inserted byte in the XML shifts all following
 * base64 text, and consecutive mails of a device share almost no long
 * byte runs although their XML is nearly identical.  The container undoes
 * the base64 where that is exactly reversible:
 *
 *   container = "SKC1" segment*
 *   segment   = 0x01 varint(len) bytes[len]                literal bytes
 *             | 0x02 varint(width) eol varint(len) bytes[len]
 *                 decoded base64: re-encoding bytes with g_base64_encode and
 *                 wrapping every `width` characters, each line (the last
 *                 one included) followed by eol (0: LF, 1: CRLF), gives the
 *                 original text
 *   varint    = unsigned LEB128, at most 10 bytes
 *
 * archive_container_pack only emits a base64 segment after checking that
 * unpacking it reproduces the original bytes, so pack then unpack is the
 * identity for every input (odd widths, trailing spaces, non-canonical
 * padding and the like simply stay literal).  The store verifies the
 * SHA-256 of every message it returns, so a damaged blob is an error, never
 * wrong bytes.  Limits: unpack stops at the caller's max_len; decompression
 * refuses frames whose declared size exceeds the caller's bound. */
#ifndef SK_ARCHIVE_H
#define SK_ARCHIVE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define ARCHIVE_SHA256_HEX_LEN 64

/* Writes the lower-case hex SHA-256 of data (65 bytes with the NUL). */
void archive_sha256_hex(const void *data, size_t len, char hex_r[ARCHIVE_SHA256_HEX_LEN + 1]);

struct archive_pack_stats {
	unsigned base64_runs;       /* runs found */
	unsigned base64_segments;   /* runs kept as decoded segments */
	size_t base64_text_bytes;   /* raw bytes replaced by decoded segments */
};

/* The container of raw (never fails; a message without usable base64 is one
 * literal segment).  Returns a new GBytes (g_bytes_unref by the caller). */
GBytes *archive_container_pack(const void *raw, size_t len, struct archive_pack_stats *stats_r);

/* The raw bytes of a container, at most max_len of them.  0 with *raw_r
 * (g_bytes_unref by the caller) or -1 with *error_r. */
int archive_container_unpack(const void *container, size_t len, size_t max_len, GBytes **raw_r,
			     char **error_r);

/* Checks that the container unpacks to exactly raw, without building the
 * raw bytes.  0, or -1 with *error_r. */
int archive_container_check(const void *container, size_t len, const void *raw, size_t raw_len,
			    char **error_r);

/* An upper bound of the container size of a raw message of raw_len bytes. */
size_t archive_container_bound(size_t raw_len);

/* One zstd frame of src at level, with prefix (NULL/0: none) as the
 * reference.  0 with *frame_r (g_bytes_unref by the caller) or -1. */
int archive_compress(const void *src, size_t len, const void *prefix, size_t prefix_len, int level,
		     GBytes **frame_r, char **error_r);

/* The SHA-256 (hex) and the archive_compress frame (no prefix) of the len
 * bytes of file fd from offset 0, in one streaming pass: memory stays a
 * small buffer plus the frame, whatever len is.  0, or -1 with *error_r. */
int archive_hash_compress_fd(int fd, size_t len, int level, char sha_r[ARCHIVE_SHA256_HEX_LEN + 1],
			     GBytes **frame_r, char **error_r);

/* Decompresses one frame made by archive_compress with the same prefix;
 * refuses a frame whose content exceeds max_len.  0 with *out_r or -1. */
int archive_decompress(const void *frame, size_t len, const void *prefix, size_t prefix_len,
		       size_t max_len, GBytes **out_r, char **error_r);

#endif
