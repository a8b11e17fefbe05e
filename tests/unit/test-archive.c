/* test-archive.c: the raw archive.  The base64-unfolding container must
 * give back every input byte for byte (clean base64, CRLF and LF, odd
 * widths, trailing spaces, bad padding, no base64 at all, random damage);
 * damaged containers and frames must fail cleanly; and a daily series of
 * one device's snapshot mails, built from the FutureSmart example, must
 * cost at most 1/20 of its raw bytes once repacked as deltas (the figure is
 * printed as a TAP comment). */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "devxml/snapshot.h"
#include "store/archive.h"
#include "store/store.h"

/* --- helpers ------------------------------------------------------------------ */

static char *
read_example(const char *name, size_t *len_r)
{
	const char *dir = g_getenv("SK_TESTDATA");
	char *path, *data = NULL;
	GError *gerr = NULL;
	gsize len;

	if (dir == NULL)
		g_error("SK_TESTDATA is not set (run under make check)");
	path = g_build_filename(dir, "examples", name, NULL);
	if (!g_file_get_contents(path, &data, &len, &gerr))
		g_error("%s: %s", path, gerr->message);
	g_free(path);
	*len_r = len;
	return data;
}

/* base64 of data wrapped at width with eol after every line. */
static void
append_base64(GString *out, const void *data, size_t len, size_t width, const char *eol)
{
	char *b64 = g_base64_encode(data, len);
	size_t n = strlen(b64);

	for (size_t i = 0; i < n; i += width) {
		g_string_append_len(out, b64 + i, (gssize)MIN(width, n - i));
		g_string_append(out, eol);
	}
	g_free(b64);
}

static void
assert_round_trip(const void *raw, size_t len, struct archive_pack_stats *stats_r)
{
	GBytes *container = archive_container_pack(raw, len, stats_r);
	GBytes *back = NULL;
	char *error = NULL;
	gsize clen;
	const void *c = g_bytes_get_data(container, &clen);

	g_assert_cmpuint(clen, <=, archive_container_bound(len));
	if (archive_container_unpack(c, clen, len, &back, &error) < 0)
		g_error("unpack: %s", error);
	g_assert_cmpmem(g_bytes_get_data(back, NULL), g_bytes_get_size(back), raw, len);
	/* A bound one byte short is refused (when there is anything). */
	if (len > 0) {
		GBytes *none = NULL;
		g_assert_cmpint(archive_container_unpack(c, clen, len - 1, &none, &error), ==, -1);
		g_assert_null(none);
		g_clear_pointer(&error, g_free);
	}
	/* The in-place check accepts exactly raw: not one byte changed (at
	 * the start, the middle and the end, in literal or base64 text), not
	 * one byte less or more. */
	if (archive_container_check(c, clen, raw, len, &error) < 0)
		g_error("check: %s", error);
	if (len > 0) {
		guint8 *other = g_malloc(len + 1);
		memcpy(other, raw, len);
		const size_t at[] = { 0, len / 2, len - 1 };
		for (unsigned i = 0; i < G_N_ELEMENTS(at); i++) {
			other[at[i]] ^= 0x01;
			g_assert_cmpint(archive_container_check(c, clen, other, len, &error), ==, -1);
			g_clear_pointer(&error, g_free);
			other[at[i]] ^= 0x01;
		}
		g_assert_cmpint(archive_container_check(c, clen, other, len - 1, &error), ==, -1);
		g_clear_pointer(&error, g_free);
		other[len] = '\n';
		g_assert_cmpint(archive_container_check(c, clen, other, len + 1, &error), ==, -1);
		g_clear_pointer(&error, g_free);
		g_free(other);
	}
	g_bytes_unref(back);
	g_bytes_unref(container);
}

/* A mail with one base64 part of data, wrapped at width, with eol. */
static char *
make_mail(const void *data, size_t len, size_t width, const char *eol, const char *after)
{
	GString *m = g_string_new(NULL);

	g_string_append_printf(m, "From: printer@example.org%sSubject: Device Snapshot%s"
				  "Content-Type: multipart/mixed; boundary=\"b\"%s%s--b%s"
				  "Content-Transfer-Encoding: base64%s%s",
			       eol, eol, eol, eol, eol, eol, eol);
	append_base64(m, data, len, width, eol);
	g_string_append(m, after);
	return g_string_free(m, FALSE);
}

static GBytes *
pseudo_xml(unsigned size, guint32 seed)
{
	GString *x = g_string_new("<?xml version=\"1.0\"?>\n<dev:DeviceService>\n");
	GRand *r = g_rand_new_with_seed(seed);

	while (x->len < size)
		g_string_append_printf(x, "<dd:Counter><dd:Name>C%u</dd:Name><dd:Value>%u</dd:Value></dd:Counter>\n",
				       g_rand_int_range(r, 0, 50), g_rand_int(r));
	g_rand_free(r);
	char *data = g_string_free(x, FALSE);
	return g_bytes_new_take(data, size);
}

/* --- hashes --------------------------------------------------------------------- */

static void
test_sha256(void)
{
	char hex[ARCHIVE_SHA256_HEX_LEN + 1];

	archive_sha256_hex("abc", 3, hex);
	g_assert_cmpstr(hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	archive_sha256_hex("", 0, hex);
	g_assert_cmpstr(hex, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* --- the container ---------------------------------------------------------------- */

static void
test_container_variants(void)
{
	GBytes *xml = pseudo_xml(5000, 1);
	gsize xlen;
	const void *x = g_bytes_get_data(xml, &xlen);
	static const char *const afters[] = { "\r\n--b--\r\n", "" };
	struct archive_pack_stats st;

	/* Clean base64: CRLF and LF, common widths and an odd one. */
	static const size_t widths[] = { 76, 64, 72, 75, 4, 997 };
	for (unsigned w = 0; w < G_N_ELEMENTS(widths); w++) {
		for (unsigned e = 0; e < 2; e++) {
			char *m = make_mail(x, xlen, widths[w], e ? "\n" : "\r\n", afters[0]);
			assert_round_trip(m, strlen(m), &st);
			g_assert_cmpuint(st.base64_segments, ==, 1);
			g_free(m);
		}
	}

	/* Attachments many times the conversion's block size (whole lines of
	 * whole quanta, about 16 KB): every width parity, both line endings,
	 * every padding; the segment covers the whole text. */
	{
		GBytes *big = pseudo_xml(200000, 2);
		gsize blen;
		const guint8 *b = g_bytes_get_data(big, &blen);
		static const size_t big_widths[] = { 76, 75, 74, 4, 997 };
		for (unsigned w = 0; w < G_N_ELEMENTS(big_widths); w++) {
			for (size_t cut = 0; cut < 3; cut++) {
				const char *eol = (w + cut) % 2 ? "\n" : "\r\n";
				char *m = make_mail(b, blen - cut, big_widths[w], eol, afters[0]);
				size_t chars = (blen - cut + 2) / 3 * 4;
				size_t lines = (chars + big_widths[w] - 1) / big_widths[w];
				assert_round_trip(m, strlen(m), &st);
				g_assert_cmpuint(st.base64_segments, ==, 1);
				g_assert_cmpuint(st.base64_text_bytes, ==, chars + lines * strlen(eol));
				g_free(m);
			}
		}
		/* Non-canonical bits in the last quantum ("xB=" decodes like
		 * "xA="), many blocks after the start: the conversion fails
		 * there, and is retried without the short last line. */
		char *m = make_mail(b, blen, 76, "\r\n", afters[0]);
		char *pad = strstr(m, "=\r\n");
		size_t full_lines = (blen + 2) / 3 * 4 / 76;
		g_assert_nonnull(pad);
		static const char alphabet[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *at = strchr(alphabet, pad[-1]);
		g_assert_true(pad[-1] != '\0' && at != NULL && (at - alphabet) % 4 == 0);
		pad[-1] = at[1];
		assert_round_trip(m, strlen(m), &st);
		g_assert_cmpuint(st.base64_segments, ==, 1);
		g_assert_cmpuint(st.base64_text_bytes, ==, full_lines * 78);
		g_free(m);
		g_bytes_unref(big);
	}

	/* Data lengths that need 0, 1 and 2 padding characters. */
	for (size_t cut = 0; cut < 3; cut++) {
		char *m = make_mail(x, xlen - cut, 76, "\r\n", afters[0]);
		assert_round_trip(m, strlen(m), &st);
		g_assert_cmpuint(st.base64_segments, ==, 1);
		g_free(m);
	}

	/* No line ending after the last line: that line stays literal. */
	{
		char *m = make_mail(x, xlen, 76, "\r\n", afters[1]);
		m[strlen(m) - 2] = '\0';
		assert_round_trip(m, strlen(m), &st);
		g_free(m);
	}

	/* A short word right after the base64 (no blank line): the run is
	 * retried without it. */
	{
		char *m = make_mail(x, xlen, 76, "\r\n", "Thanks\r\n");
		assert_round_trip(m, strlen(m), &st);
		g_assert_cmpuint(st.base64_segments, ==, 1);
		g_free(m);
	}

	/* Trailing spaces on every line: transform refused, bytes exact. */
	{
		char *m = make_mail(x, xlen, 76, "\r\n", afters[0]);
		GString *s = g_string_new(m);
		g_string_replace(s, "\r\n", " \r\n", 0);
		assert_round_trip(s->str, s->len, &st);
		g_assert_cmpuint(st.base64_segments, ==, 0);
		g_string_free(s, TRUE);
		g_free(m);
	}

	/* Non-canonical padding bits ("QR==" decodes like "QQ=="): that line is refused. */
	{
		GString *s = g_string_new("Subject: x\r\n\r\n");
		for (int i = 0; i < 10; i++)
			g_string_append(s, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n");
		g_string_append(s, "QR==\r\n");
		assert_round_trip(s->str, s->len, &st);
		/* The ten clean lines (72 + CRLF each) are unfolded, "QR==" stays literal. */
		g_assert_cmpuint(st.base64_segments, ==, 1);
		g_assert_cmpuint(st.base64_text_bytes, ==, 740);
		g_string_free(s, TRUE);
	}

	/* One LF inside a CRLF run, and padding in a middle line. */
	{
		char *m = make_mail(x, xlen, 76, "\r\n", afters[0]);
		GString *s = g_string_new(m);
		char *mid = strstr(s->str + s->len / 2, "\r\n");
		g_string_erase(s, mid - s->str, 1);
		assert_round_trip(s->str, s->len, &st);
		g_assert_cmpuint(st.base64_segments, >=, 1);
		mid = strstr(s->str + s->len / 3, "\r\n");
		mid[-1] = '=';
		assert_round_trip(s->str, s->len, &st);
		g_string_free(s, TRUE);
		g_free(m);
	}

	/* Not base64 at all; empty; lines of letters only; binary. */
	{
		static const char text[] = "From: a\nSubject: b\n\nHello printer fleet\nABCDEFGH\nABCDEFGH\nABCD\n";
		assert_round_trip(text, sizeof(text) - 1, &st);
		assert_round_trip("", 0, &st);
		assert_round_trip("\n\n\r\n\r", 5, &st);
		guint8 bin[4096];
		GRand *r = g_rand_new_with_seed(7);
		for (size_t i = 0; i < sizeof(bin); i++)
			bin[i] = (guint8)g_rand_int(r);
		g_rand_free(r);
		assert_round_trip(bin, sizeof(bin), &st);
	}

	/* The real example mails. */
	static const char *const examples[] = { "futuresmart-color-mfp.eml", "futuresmart-mfp.eml",
						"legacy-color-mfp.eml" };
	for (unsigned i = 0; i < G_N_ELEMENTS(examples); i++) {
		size_t len;
		char *eml = read_example(examples[i], &len);
		assert_round_trip(eml, len, &st);
		g_assert_cmpuint(st.base64_segments, >=, 1);
		g_free(eml);
	}
	g_bytes_unref(xml);
}

/* Random damage to a mail (deleted, inserted, replaced bytes; spaces and
 * line ends) never breaks the round trip. */
static void
test_container_random(void)
{
	size_t len;
	char *eml = read_example("futuresmart-color-mfp.eml", &len);
	GRand *r = g_rand_new_with_seed(20250309);
	static const char alphabet[] = "AZaz09+/= \r\n-\t";

	for (int iter = 0; iter < 300; iter++) {
		GString *s = g_string_new_len(eml, (gssize)len);
		int edits = g_rand_int_range(r, 1, 20);
		for (int e = 0; e < edits; e++) {
			gsize pos = (gsize)g_rand_int_range(r, 0, (gint32)s->len);
			switch (g_rand_int_range(r, 0, 3)) {
			case 0:
				g_string_erase(s, (gssize)pos, 1);
				break;
			case 1:
				g_string_insert_c(s, (gssize)pos, alphabet[g_rand_int_range(r, 0, sizeof(alphabet) - 1)]);
				break;
			default:
				s->str[pos] = alphabet[g_rand_int_range(r, 0, sizeof(alphabet) - 1)];
			}
		}
		assert_round_trip(s->str, s->len, NULL);
		g_string_free(s, TRUE);
	}
	g_rand_free(r);
	g_free(eml);
}

/* Damaged containers fail (or yield bounded output), never crash. */
static void
test_container_damaged(void)
{
	size_t len;
	char *eml = read_example("futuresmart-mfp.eml", &len);
	GBytes *container = archive_container_pack(eml, len, NULL);
	gsize clen;
	const guint8 *c = g_bytes_get_data(container, &clen);
	char *error = NULL;
	GBytes *out = NULL;
	GRand *r = g_rand_new_with_seed(99);

	/* Every truncation: an error, or the exact prefix it still encodes. */
	for (gsize cut = 0; cut < clen; cut++) {
		int rc = archive_container_unpack(c, cut, len, &out, &error);
		if (rc == 0) {
			g_assert_cmpuint(g_bytes_get_size(out), <=, len);
			g_bytes_unref(out);
			out = NULL;
		} else {
			g_assert_nonnull(error);
			g_clear_pointer(&error, g_free);
		}
	}
	/* Random byte flips. */
	for (int iter = 0; iter < 2000; iter++) {
		guint8 *copy = g_memdup2(c, clen);
		for (int k = 0; k < 3; k++)
			copy[g_rand_int_range(r, 0, (gint32)clen)] = (guint8)g_rand_int(r);
		if (archive_container_unpack(copy, clen, len, &out, &error) == 0) {
			g_assert_cmpuint(g_bytes_get_size(out), <=, len);
			g_bytes_unref(out);
			out = NULL;
		} else {
			g_clear_pointer(&error, g_free);
		}
		g_free(copy);
	}
	/* Hand-made hostile headers. */
	static const guint8 bad1[] = { 'S', 'K', 'C', '1', 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0x01 };
	static const guint8 bad2[] = { 'S', 'K', 'C', '1', 0x02, 0x00, 0x00, 0x01, 'x' };
	static const guint8 bad3[] = { 'S', 'K', 'C', '1', 0x02, 0x01, 0x00, 0xff, 0xff, 0x03, 'a' };
	static const guint8 bad4[] = { 'S', 'K', 'C', '1', 0x07 };
	static const guint8 bad5[] = { 'S', 'K', 'C', '2' };
	const struct {
		const guint8 *p;
		size_t n;
	} bads[] = { { bad1, sizeof(bad1) }, { bad2, sizeof(bad2) }, { bad3, sizeof(bad3) },
		     { bad4, sizeof(bad4) }, { bad5, sizeof(bad5) } };
	for (unsigned i = 0; i < G_N_ELEMENTS(bads); i++) {
		g_assert_cmpint(archive_container_unpack(bads[i].p, bads[i].n, 1 << 20, &out, &error), ==, -1);
		g_clear_pointer(&error, g_free);
	}
	/* A segment that expands past the bound. */
	static const guint8 big[] = { 'S', 'K', 'C', '1', 0x02, 0x01, 0x00, 0x03, 'a', 'b', 'c' };
	g_assert_cmpint(archive_container_unpack(big, sizeof(big), 4, &out, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(archive_container_unpack(big, sizeof(big), 8, &out, &error), ==, 0);
	g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), "Y\nW\nJ\nj\n", 8);
	g_bytes_unref(out);

	g_rand_free(r);
	g_bytes_unref(container);
	g_free(eml);
}

/* --- zstd frames ---------------------------------------------------------------------- */

/* Hash and frame streamed from a file equal those of the bytes in memory,
 * for empty, small, chunk-straddling and multi-megabyte files; a file
 * shorter than announced is an error. */
static void
test_hash_compress_fd(void)
{
	static const size_t sizes[] = { 0, 1, 1000, 131072, 131073, 262145, 3000001 };
	GError *gerr = NULL;

	for (unsigned i = 0; i < G_N_ELEMENTS(sizes); i++) {
		GBytes *data = pseudo_xml((unsigned)sizes[i], 3 + i);
		gsize len;
		const void *p = g_bytes_get_data(data, &len);
		char *path = NULL;
		int fd = g_file_open_tmp("test-archive-XXXXXX", &path, &gerr);
		g_assert_no_error(gerr);
		for (gsize off = 0; off < len;) {
			ssize_t n = write(fd, (const char *)p + off, len - off);
			g_assert_cmpint(n, >, 0);
			off += (gsize)n;
		}

		char want[ARCHIVE_SHA256_HEX_LEN + 1], got[ARCHIVE_SHA256_HEX_LEN + 1];
		GBytes *frame = NULL, *back = NULL;
		char *error = NULL;
		archive_sha256_hex(len ? p : "", len, want);
		if (archive_hash_compress_fd(fd, len, 3, got, &frame, &error) < 0)
			g_error("hash_compress_fd(%zu): %s", len, error);
		g_assert_cmpstr(got, ==, want);
		gsize flen;
		const void *f = g_bytes_get_data(frame, &flen);
		if (archive_decompress(f, flen, NULL, 0, len, &back, &error) < 0)
			g_error("decompress(%zu): %s", len, error);
		g_assert_cmpmem(g_bytes_get_data(back, NULL), g_bytes_get_size(back), len ? p : "", len);
		g_bytes_unref(back);
		g_bytes_unref(frame);

		/* One byte more than the file holds. */
		frame = NULL;
		g_assert_cmpint(archive_hash_compress_fd(fd, len + 1, 3, got, &frame, &error), ==, -1);
		g_assert_null(frame);
		g_assert_nonnull(strstr(error, "ends at"));
		g_clear_pointer(&error, g_free);

		close(fd);
		g_unlink(path);
		g_free(path);
		g_bytes_unref(data);
	}
}

static void
test_zstd_prefix(void)
{
	GBytes *a = pseudo_xml(200000, 5), *b = NULL;
	gsize alen;
	const guint8 *ad = g_bytes_get_data(a, &alen);
	GString *bs = g_string_new_len((const char *)ad, (gssize)alen);
	GBytes *plain = NULL, *delta = NULL, *out = NULL;
	char *error = NULL;

	/* b: a with a few small edits, as the next day's document. */
	g_string_insert(bs, 1000, "<dd:New>1</dd:New>");
	g_string_insert(bs, 90000, "<dd:New>2</dd:New>");
	memcpy(bs->str + 150000, "99999", 5);
	b = g_bytes_new(bs->str, bs->len);

	g_assert_cmpint(archive_compress(bs->str, bs->len, NULL, 0, 3, &plain, &error), ==, 0);
	g_assert_cmpint(archive_compress(bs->str, bs->len, ad, alen, 9, &delta, &error), ==, 0);
	g_test_message("zstd 200 KB: plain %zu bytes, delta %zu bytes", g_bytes_get_size(plain),
		       g_bytes_get_size(delta));
	g_assert_cmpuint(g_bytes_get_size(delta) * 20, <, g_bytes_get_size(plain));

	g_assert_cmpint(archive_decompress(g_bytes_get_data(delta, NULL), g_bytes_get_size(delta), ad, alen,
					   bs->len, &out, &error), ==, 0);
	g_assert_true(g_bytes_equal(out, b));
	g_bytes_unref(out);
	out = NULL;
	/* Without, or with the wrong prefix: an error, never wrong bytes. */
	g_assert_cmpint(archive_decompress(g_bytes_get_data(delta, NULL), g_bytes_get_size(delta), NULL, 0,
					   bs->len, &out, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(archive_decompress(g_bytes_get_data(delta, NULL), g_bytes_get_size(delta), bs->str,
					   alen, bs->len, &out, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	/* A bound below the content size is refused before decompressing. */
	g_assert_cmpint(archive_decompress(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain), NULL, 0,
					   bs->len - 1, &out, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	/* Garbage and truncated frames. */
	g_assert_cmpint(archive_decompress("garbage!", 8, NULL, 0, 100, &out, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	g_assert_cmpint(archive_decompress(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain) / 2, NULL,
					   0, bs->len, &out, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	g_assert_null(out);

	g_bytes_unref(plain);
	g_bytes_unref(delta);
	g_bytes_unref(a);
	g_bytes_unref(b);
	g_string_free(bs, TRUE);
}

/* --- a daily series through the store -------------------------------------------------- */

/* The example's parts: everything before the base64 body, the decoded
 * Device.xml, everything after. */
struct example {
	char *head;
	char *xml;
	char *tail;
};

static void
example_split(struct example *ex)
{
	size_t len;
	char *eml = read_example("futuresmart-color-mfp.eml", &len);
	const char *part = strstr(eml, "filename=\"Device.xml\"");
	const char *body, *end;

	g_assert_nonnull(part);
	body = strstr(part, "\r\n\r\n");
	g_assert_nonnull(body);
	body += 4;
	end = strstr(body, "\r\n\r\n--");
	g_assert_nonnull(end);
	ex->head = g_strndup(eml, (gsize)(body - eml));
	ex->tail = g_strdup(end + 2);
	char *b64 = g_strndup(body, (gsize)(end - body));
	gsize xlen;
	guchar *x = g_base64_decode(b64, &xlen);
	ex->xml = g_strndup((const char *)x, xlen);
	g_free(x);
	g_free(b64);
	g_free(eml);
}

static void
example_clear(struct example *ex)
{
	g_free(ex->head);
	g_free(ex->xml);
	g_free(ex->tail);
}

/* Replaces every "<tag>N</tag>" after from with N + f(N, day). */
static void
bump_numbers(GString *x, gsize from, const char *open, const char *close, int day)
{
	gsize pos = from;
	char *p;

	while ((p = strstr(x->str + pos, open)) != NULL) {
		gsize start = (gsize)(p - x->str) + strlen(open);
		char *q = strstr(x->str + start, close);
		if (q == NULL)
			break;
		gsize end = (gsize)(q - x->str);
		guint64 n = g_ascii_strtoull(x->str + start, NULL, 10);
		char *v = g_strdup_printf("%" G_GUINT64_FORMAT, n + (guint64)day * (17 + n % 41));
		g_string_erase(x, (gssize)start, (gssize)(end - start));
		g_string_insert(x, (gssize)start, v);
		pos = start + strlen(v);
		g_free(v);
	}
}

/* The first <log:Entry>...</log:Entry> of the document as a template. */
static char *
entry_template(const char *xml)
{
	const char *a = strstr(xml, "<log:Entry>");
	const char *b = a != NULL ? strstr(a, "</log:Entry>") : NULL;

	g_assert_nonnull(b);
	return g_strndup(a, (gsize)(b - a) + strlen("</log:Entry>"));
}

/* The series' day `day` (0: the example's 2025-03-09, 06:00 UTC) plus
 * seconds, formatted. */
static char *
day_time(int day, int seconds, const char *format)
{
	GDateTime *base = g_date_time_new_utc(2025, 3, 9, 6, 0, 0);
	GDateTime *t = g_date_time_add_seconds(base, (gdouble)day * 86400 + seconds);
	char *s = g_date_time_format(t, format);

	g_date_time_unref(t);
	g_date_time_unref(base);
	return s;
}

static const char *const codes[] = { "13.B2.D1", "44.A0.4B", "49.38.07", "17.00.00", "13.A3.D3" };
static const char *const descriptions[] = { "Jam in tray 2", "Scan job failed", "Firmware error, restart",
					    "Toner collection unit full", "Jam in fuser area" };

static char *
make_entry(const char *tmpl, int seq, int day, int k)
{
	GString *e = g_string_new(tmpl);
	char *s;

	/* Sequence, code, time, description, page count. */
	s = g_strdup_printf("<dd:SequenceNumber>%d</dd:SequenceNumber>", seq);
	g_string_replace(e, "<dd:SequenceNumber>416</dd:SequenceNumber>", s, 1);
	g_free(s);
	g_string_replace(e, "13.B2.D1", codes[seq % 5], 1);
	char *t = day_time(day, -((seq * 7919) % 86400), "%Y-%m-%dT%H:%M:%S");
	s = g_strdup_printf("%s.%03d-07:00", t, (seq * 37) % 1000);
	g_free(t);
	g_string_replace(e, "2025-03-08T15:09:58.266-07:00", s, 1);
	g_free(s);
	g_string_replace(e, "Jam in tray 2", descriptions[seq % 5], 1);
	s = g_strdup_printf("%d", 133275 + day * 120 + k);
	g_string_replace(e, "133275", s, 0);
	g_free(s);
	return g_string_free(e, FALSE);
}

/* Day `day` of the series: counters bumped, the ticket time moved, new
 * log entries on top (newest first); with capacity > 0 the error log is
 * first filled to that many entries and keeps only the newest. */
static char *
series_xml(const struct example *ex, int day, int per_day, int capacity)
{
	GString *x = g_string_new(ex->xml);
	char *tmpl = entry_template(ex->xml);
	char *s;
	gsize logs_end;

	char *t = day_time(day, -7 * 3600, "%Y-%m-%dT%H:%M:%S");
	s = g_strdup_printf("<dd:TimeStamp>%s.%03d-07:00</dd:TimeStamp></dev:TicketMetaData>", t,
			    (day * 151) % 1000);
	g_free(t);
	g_string_replace(x, "<dd:TimeStamp>2025-03-08T23:00:00.752-07:00</dd:TimeStamp></dev:TicketMetaData>", s, 1);
	g_free(s);

	/* New entries after the first log's <log:Entries>, newest first. */
	char *entries_at = strstr(x->str, "<log:Entries>");
	g_assert_nonnull(entries_at);
	gsize ins = (gsize)(entries_at - x->str) + strlen("<log:Entries>\n");
	GString *fresh = g_string_new(NULL);
	int total_new = (capacity > 0 ? capacity : 0) + day * per_day;
	int keep = capacity > 0 ? capacity : total_new;
	for (int k = total_new - 1; k >= 0 && keep > 0; k--, keep--) {
		char *e = make_entry(tmpl, 417 + k, k / MAX(per_day, 1) - capacity / MAX(per_day, 1), k);
		g_string_append(fresh, e);
		g_string_append_c(fresh, '\n');
		g_free(e);
	}
	if (capacity > 0) {
		/* Drop the example's own entries of that log: the generated ones fill it. */
		char *end = strstr(x->str + ins, "</log:Entries>");
		g_assert_nonnull(end);
		g_string_erase(x, (gssize)ins, (gssize)((gsize)(end - x->str) - ins));
	}
	g_string_insert(x, (gssize)ins, fresh->str);
	g_string_free(fresh, TRUE);

	/* Counters after the logs move every day. */
	char *le = strstr(x->str, "</log:Logs>");
	g_assert_nonnull(le);
	logs_end = (gsize)(le - x->str);
	bump_numbers(x, logs_end, "<dd:Significand>", "</dd:Significand>", day);
	g_free(tmpl);
	return g_string_free(x, FALSE);
}

static char *
series_mail(const struct example *ex, int day, const char *xml)
{
	GString *m = g_string_new(ex->head);
	char *s;

	char *t = day_time(day, 0, "%b %-d, %Y");
	s = g_strdup_printf("Subject: Device Snapshot (%s 6:00:00 AM) - 3GY25A - PHB6820301", t);
	g_free(t);
	g_string_replace(m, "Subject: Device Snapshot (Mar 9, 2025 6:00:00 AM) - 3GY25A - PHB6820301", s, 1);
	g_free(s);
	s = g_strdup_printf("<PHB6820301.%d@npie3e62a>", 1741500000 + day * 86400);
	g_string_replace(m, "<PHB6820301.1741500000@npie3e62a>", s, 1);
	g_free(s);
	append_base64(m, xml, strlen(xml), 76, "\r\n");
	g_string_append(m, ex->tail);
	return g_string_free(m, FALSE);
}

struct series_result {
	guint64 raw_bytes;
	guint64 accept_bytes;   /* as accepted: standalone zstd */
	guint64 archive_bytes;  /* after the repack */
	guint64 raw_delta_bytes;/* for comparison: zstd of the raw mail with the previous raw mail as prefix */
	gint64 commit_us;       /* time in store_result_commit (incl. the repack) */
	gint64 max_depth;
	gint64 keyframes;
};

static void
remove_dir(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		char *p = g_build_filename(dir, name, NULL);
		g_unlink(p);
		g_free(p);
	}
	if (d != NULL)
		g_dir_close(d);
	g_rmdir(dir);
}

static gint64
query_int(struct store *store, const char *sql)
{
	struct db_stmt *stmt = NULL;
	gint64 v;

	g_assert_cmpint(db_prepare(store_db(store), sql, &stmt), ==, DB_OK);
	g_assert_cmpint(db_step(stmt), ==, DB_ROW);
	v = db_column_int64(stmt, 0);
	db_finalize(stmt);
	return v;
}

/* Archives `days` daily mails of one device and commits each (which
 * repacks it); checks every message byte for byte from a fresh connection. */
static void
run_series(int days, int per_day, int capacity, unsigned keyframe_interval, unsigned cache_entries,
	   size_t cache_bytes, struct series_result *res)
{
	struct example ex;
	struct store_settings set;
	struct store *store = NULL;
	char *error = NULL;
	GError *gerr = NULL;
	char *dir = g_dir_make_tmp("test-archive-XXXXXX", &gerr);
	char *path = g_build_filename(dir, "snapkeep.db", NULL);
	GPtrArray *mails = g_ptr_array_new_with_free_func(g_free);
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));

	g_assert_no_error(gerr);
	memset(res, 0, sizeof(*res));
	example_split(&ex);
	store_settings_default(&set);
	set.path = path;
	set.archive_keyframe_interval = keyframe_interval;
	set.archive_cache_entries = cache_entries;
	set.archive_cache_bytes = cache_bytes;
	g_assert_cmpint(store_open(&set, &store, &error), ==, 0);

	for (int day = 0; day < days; day++) {
		const char *prev = day > 0 ? g_ptr_array_index(mails, mails->len - 1) : NULL;
		char *xml = series_xml(&ex, day, per_day, capacity);
		char *mail = series_mail(&ex, day, xml);
		struct store_arrival a = { .source = "smtp", .peer = "10.120.196.170" };
		struct store_receipt r;
		struct snapshot *snap = snapshot_new();
		enum store_outcome rec;
		size_t len = strlen(mail);

		g_assert_cmpint(store_message_add(store, &a, mail, len, &r, &error), ==, 0);
		g_assert_false(r.duplicate);
		res->raw_bytes += len;
		res->accept_bytes += (guint64)query_int(store, "SELECT stored_size FROM messages"
							       " ORDER BY id DESC LIMIT 1");
		snap->serial = g_strdup("PHB6820301");
		snap->taken_utc = day_time(day, 0, "%Y-%m-%dT%H:%M:%SZ");
		gint64 t0 = g_get_monotonic_time();
		if (store_result_commit(store, r.message_id, STORE_OUTCOME_STORED, NULL, snap, NULL, &rec,
					&error) < 0)
			g_error("commit: %s", error);
		res->commit_us += g_get_monotonic_time() - t0;
		GBytes *rd = NULL;
		g_assert_cmpint(archive_compress(mail, len, prev, prev != NULL ? strlen(prev) : 0,
						 set.archive_repack_level, &rd, &error), ==, 0);
		res->raw_delta_bytes += g_bytes_get_size(rd);
		g_bytes_unref(rd);
		g_assert_cmpint(rec, ==, STORE_OUTCOME_STORED);
		g_array_append_val(ids, r.message_id);
		g_ptr_array_add(mails, mail);
		snapshot_free(&snap);
		g_free(xml);
	}
	g_assert_cmpint(query_int(store, "SELECT count(*) FROM messages WHERE method <> 'skc1'"), ==, 0);
	res->archive_bytes = (guint64)query_int(store, "SELECT sum(length(blob)) FROM messages");
	g_assert_cmpint((gint64)res->archive_bytes, ==, query_int(store, "SELECT sum(stored_size) FROM messages"));
	res->max_depth = query_int(store, "SELECT max(chain_depth) FROM messages");
	res->keyframes = query_int(store, "SELECT count(*) FROM messages WHERE base_id IS NULL");
	store_free(&store);

	/* A fresh connection (empty cache) reads every message exactly, newest first. */
	g_assert_cmpint(store_open(&set, &store, &error), ==, 0);
	for (guint i = ids->len; i-- > 0;) {
		GBytes *got = NULL;
		const char *want = g_ptr_array_index(mails, i);
		if (store_message_get(store, g_array_index(ids, int64_t, i), &got, &error) < 0)
			g_error("get: %s", error);
		g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), want, strlen(want));
		g_bytes_unref(got);
	}
	store_free(&store);

	example_clear(&ex);
	g_ptr_array_unref(mails);
	g_array_free(ids, TRUE);
	remove_dir(dir);
	g_free(path);
	g_free(dir);
}

static void
report(const char *what, int days, const struct series_result *r)
{
	/* Printed as TAP comments so that `make check` logs keep the figures. */
	printf("# archive %s: %d mails, raw %" G_GUINT64_FORMAT " bytes (%.1f KB each), accepted (plain zstd)"
	       " %" G_GUINT64_FORMAT " = 1/%.1f, archive after repack %" G_GUINT64_FORMAT " = 1/%.1f,"
	       " keyframes %" G_GINT64_FORMAT ", max chain depth %" G_GINT64_FORMAT
	       "; for comparison zstd on the raw mail with the previous one as prefix %" G_GUINT64_FORMAT
	       " = 1/%.1f; result commit with repack %.1f ms per mail\n",
	       what, days, r->raw_bytes, (double)r->raw_bytes / days / 1024.0, r->accept_bytes,
	       (double)r->raw_bytes / (double)r->accept_bytes, r->archive_bytes,
	       (double)r->raw_bytes / (double)r->archive_bytes, r->keyframes, r->max_depth,
	       r->raw_delta_bytes, (double)r->raw_bytes / (double)r->raw_delta_bytes,
	       (double)r->commit_us / days / 1000.0);
	fflush(stdout);
}

/* The budget: a daily series of one device costs at most 1/20 of its raw bytes. */
static void
test_series_ratio(void)
{
	struct series_result r;

	run_series(30, 3, 0, 32, 8, 8u << 20, &r);
	report("example-sized (futuresmart-color-mfp.eml, +3 log entries a day)", 30, &r);
	g_assert_cmpint(r.keyframes, ==, 1);
	g_assert_cmpuint(r.archive_bytes * 20, <=, r.raw_bytes);
}

/* A document of realistic size: the error log full to its capacity of 200
 * entries, 5 new ones a day pushing the oldest out. */
static void
test_series_ratio_full_log(void)
{
	struct series_result r;

	run_series(30, 5, 200, 32, 8, 8u << 20, &r);
	report("full log (200 entries, +5 a day)", 30, &r);
	g_assert_cmpuint(r.archive_bytes * 20, <=, r.raw_bytes);
}

/* A legacy-sized document (about 2.5 MB of mail), 8 days. */
static void
test_series_ratio_large(void)
{
	struct series_result r;

	run_series(8, 10, 2500, 32, 8, 8u << 20, &r);
	report("large (2500-entry log, +10 a day)", 8, &r);
	g_assert_cmpuint(r.archive_bytes * 8, <=, r.raw_bytes);
	g_assert_cmpuint(r.archive_bytes * 2, <=, r.raw_delta_bytes);
}

/* The keyframe interval bounds every chain (run without the cache). */
static void
test_series_keyframes(void)
{
	struct series_result r;

	/* Without a container cache: every repack reads its base's chain. */
	run_series(20, 2, 0, 6, 0, 8u << 20, &r);
	report("keyframe interval 6, no cache", 20, &r);
	g_assert_cmpint(r.keyframes, ==, 4);
	g_assert_cmpint(r.max_depth, ==, 5);

	/* Entries to spare but a byte budget every container exceeds an
	 * eighth of: nothing is kept, the same result. */
	struct series_result t;
	run_series(20, 2, 0, 6, 8, 1024, &t);
	report("keyframe interval 6, 1 KiB cache", 20, &t);
	g_assert_cmpint(t.keyframes, ==, 4);
	g_assert_cmpint(t.max_depth, ==, 5);
	g_assert_cmpuint(t.archive_bytes, ==, r.archive_bytes);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/archive/sha256", test_sha256);
	g_test_add_func("/archive/container-variants", test_container_variants);
	g_test_add_func("/archive/container-random", test_container_random);
	g_test_add_func("/archive/container-damaged", test_container_damaged);
	g_test_add_func("/archive/hash-compress-fd", test_hash_compress_fd);
	g_test_add_func("/archive/zstd-prefix", test_zstd_prefix);
	g_test_add_func("/archive/series-ratio", test_series_ratio);
	g_test_add_func("/archive/series-ratio-full-log", test_series_ratio_full_log);
	g_test_add_func("/archive/series-ratio-large", test_series_ratio_large);
	g_test_add_func("/archive/series-keyframes", test_series_keyframes);
	return g_test_run();
}
