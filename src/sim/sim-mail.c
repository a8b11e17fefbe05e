/* sim-mail.c: AutoSend mails built with GMime, exactly as the two printer
 * generations send them (FORMAT.md): FutureSmart multipart/mixed with a
 * text/plain body and Device.xml, legacy with the attachment alone and an
 * RFC 2047 encoded subject with en dashes; base64 at 76 columns, CRLF.
 * Variants: transfer encodings, declared types, forwarding as
 * message/rfc822, bare LF, non-ASCII text.  Faults: the document and mail
 * faults of sim-mail.h.  Also the manifest line (json-glib).
 *
 * No MIME or base64 is written by hand: GMime encodes, folds and encodes
 * headers.  Determinism: boundary and Message-ID derive from serial, time
 * and a per-device counter. */
#include "config.h"

#include "sim/sim-mail.h"
#include "util/sktime.h"

#include <gmime/gmime.h>
#include <string.h>

/* ---- variants and faults ------------------------------------------------ */

void
sim_variant_default(struct sim_variant *v)
{
	memset(v, 0, sizeof(*v));
	v->encoding = SIM_ENC_BASE64;
	v->content_type = "text/xml";
}

const char *
sim_encoding_name(enum sim_encoding e)
{
	switch (e) {
	case SIM_ENC_QP:
		return "quoted-printable";
	case SIM_ENC_7BIT:
		return "7bit";
	case SIM_ENC_BASE64:
	default:
		return "base64";
	}
}

int
sim_variant_parse(const char *list, struct sim_variant *v, char **error_r)
{
	char **items = g_strsplit(list, ",", -1);
	int ret = 0;
	sim_variant_default(v);
	for (char **p = items; *p != NULL; p++) {
		const char *s = g_strstrip(*p);
		if (*s == '\0' || strcmp(s, "default") == 0)
			continue;
		if (strcmp(s, "base64") == 0)
			v->encoding = SIM_ENC_BASE64;
		else if (strcmp(s, "qp") == 0 || strcmp(s, "quoted-printable") == 0)
			v->encoding = SIM_ENC_QP;
		else if (strcmp(s, "7bit") == 0 || strcmp(s, "8bit") == 0)
			v->encoding = SIM_ENC_7BIT;
		else if (strcmp(s, "text/xml") == 0)
			v->content_type = "text/xml";
		else if (strcmp(s, "application/xml") == 0)
			v->content_type = "application/xml";
		else if (strcmp(s, "application/octet-stream") == 0 ||
			 strcmp(s, "octet-stream") == 0)
			v->content_type = "application/octet-stream";
		else if (strcmp(s, "forward") == 0 || strcmp(s, "forwarded") == 0)
			v->forwarded = true;
		else if (strcmp(s, "lf") == 0)
			v->lf = true;
		else if (strcmp(s, "nonascii") == 0)
			v->nonascii = true;
		else {
			*error_r = g_strdup_printf("unknown variant '%s' (base64 qp 7bit text/xml "
						   "application/xml application/octet-stream "
						   "forward lf nonascii mix)",
						   s);
			ret = -1;
			break;
		}
	}
	g_strfreev(items);
	return ret;
}

void
sim_variant_random(GRand *r, struct sim_variant *v)
{
	static const char *const types[] = {"text/xml", "application/xml",
					    "application/octet-stream"};
	sim_variant_default(v);
	double u = g_rand_double(r);
	v->encoding = u < 0.7 ? SIM_ENC_BASE64 : u < 0.85 ? SIM_ENC_QP : SIM_ENC_7BIT;
	u = g_rand_double(r);
	v->content_type = u < 0.7 ? types[0] : u < 0.85 ? types[1] : types[2];
	v->forwarded = g_rand_double(r) < 0.1;
	v->lf = g_rand_double(r) < 0.1;
	v->nonascii = g_rand_double(r) < 0.1;
}

static const char *const fault_names[SIM_FAULT_COUNT] = {
    [SIM_FAULT_NONE] = "none",
    [SIM_FAULT_MISSING_ATTACHMENT] = "missing_attachment",
    [SIM_FAULT_TRUNCATED_XML] = "truncated_xml",
    [SIM_FAULT_ENTITY_BOMB] = "entity_bomb",
    [SIM_FAULT_EXTERNAL_ENTITY] = "external_entity",
    [SIM_FAULT_OVERSIZED] = "oversized",
    [SIM_FAULT_DUPLICATE_RESEND] = "duplicate_resend",
    [SIM_FAULT_SAME_SNAPSHOT_NEW_MAIL] = "same_snapshot_new_mail",
    [SIM_FAULT_ALERT_MAIL] = "alert_mail",
    [SIM_FAULT_CLOCK_SKEW] = "clock_skew",
    [SIM_FAULT_COUNTER_RESET] = "counter_reset",
    [SIM_FAULT_SLOW_SENDER] = "slow_sender",
    [SIM_FAULT_DROP_IN_DATA] = "drop_in_data",
};

static const char *const fault_expect[SIM_FAULT_COUNT] = {
    [SIM_FAULT_NONE] = "stored",
    [SIM_FAULT_MISSING_ATTACHMENT] = "not_snapshot",
    [SIM_FAULT_TRUNCATED_XML] = "failed",
    [SIM_FAULT_ENTITY_BOMB] = "failed",
    [SIM_FAULT_EXTERNAL_ENTITY] = "failed",
    [SIM_FAULT_OVERSIZED] = "rejected",
    [SIM_FAULT_DUPLICATE_RESEND] = "duplicate",
    [SIM_FAULT_SAME_SNAPSHOT_NEW_MAIL] = "duplicate_snapshot",
    [SIM_FAULT_ALERT_MAIL] = "not_snapshot",
    [SIM_FAULT_CLOCK_SKEW] = "stored",
    [SIM_FAULT_COUNTER_RESET] = "stored",
    [SIM_FAULT_SLOW_SENDER] = "stored",
    [SIM_FAULT_DROP_IN_DATA] = "not_received",
};

const char *
sim_fault_name(enum sim_fault f)
{
	return (unsigned)f < SIM_FAULT_COUNT ? fault_names[f] : "none";
}

const char *
sim_fault_expect(enum sim_fault f)
{
	return (unsigned)f < SIM_FAULT_COUNT ? fault_expect[f] : "stored";
}

bool
sim_fault_smtp_only(enum sim_fault f)
{
	return f == SIM_FAULT_SLOW_SENDER || f == SIM_FAULT_DROP_IN_DATA;
}

int
sim_fault_parse(const char *name, enum sim_fault *fault_r)
{
	for (unsigned i = 0; i < SIM_FAULT_COUNT; i++) {
		if (g_ascii_strcasecmp(name, fault_names[i]) == 0) {
			*fault_r = (enum sim_fault)i;
			return 0;
		}
	}
	/* Dashes as well as underscores. */
	char *alt = g_strdelimit(g_strdup(name), "-", '_');
	for (unsigned i = 0; i < SIM_FAULT_COUNT; i++) {
		if (g_ascii_strcasecmp(alt, fault_names[i]) == 0) {
			*fault_r = (enum sim_fault)i;
			g_free(alt);
			return 0;
		}
	}
	g_free(alt);
	return -1;
}

void
sim_mail_settings_default(struct sim_mail_settings *s)
{
	static const char *const to[] = {"fleet-intake@fleet.example", NULL};
	s->to = to;
	s->forward_from = "fleet-admin@fleet.example";
	s->oversize_bytes = 72 * 1024 * 1024;
}

void
sim_mail_free(struct sim_mail **mail)
{
	if (mail == NULL || *mail == NULL)
		return;
	if ((*mail)->raw != NULL)
		g_bytes_unref((*mail)->raw);
	g_free((*mail)->message_id);
	g_free((*mail)->from);
	g_free((*mail)->subject);
	g_free(*mail);
	*mail = NULL;
}

/* ---- document faults --------------------------------------------------- */

/* Inserts a DOCTYPE after the XML declaration and an entity reference
 * inside the first MakeAndModel. */
static GBytes *
with_doctype(GBytes *xml, const char *internal_subset, const char *ref)
{
	gsize len;
	const char *x = g_bytes_get_data(xml, &len);
	char *doc = g_strndup(x, len);
	GString *out = g_string_sized_new(len + 2048);
	const char *decl_end = strstr(doc, "?>");
	const char *p = decl_end != NULL ? decl_end + 2 : doc;
	/* The root's qualified name. */
	const char *root = p;
	while ((root = strchr(root, '<')) != NULL && (root[1] == '!' || root[1] == '?'))
		root++;
	char *root_name = NULL;
	if (root != NULL) {
		size_t n = strcspn(root + 1, " \t\r\n/>");
		root_name = g_strndup(root + 1, n);
	}
	g_string_append_len(out, doc, p - doc);
	g_string_append_printf(out, "\n<!DOCTYPE %s [\n%s]>",
			       root_name != NULL ? root_name : "Device", internal_subset);
	const char *mm = strstr(p, "MakeAndModel>");
	if (mm != NULL) {
		mm += strlen("MakeAndModel>");
		g_string_append_len(out, p, mm - p);
		g_string_append(out, ref);
		g_string_append(out, mm);
	} else {
		g_string_append(out, p);
	}
	g_free(root_name);
	g_free(doc);
	return g_string_free_to_bytes(out);
}

GBytes *
sim_fault_apply_xml(GBytes *xml, enum sim_fault fault, GRand *rand)
{
	gsize len;
	const char *x = g_bytes_get_data(xml, &len);

	switch (fault) {
	case SIM_FAULT_TRUNCATED_XML: {
		gsize cut = (gsize)((double)len * g_rand_double_range(rand, 0.3, 0.9));
		return g_bytes_new(x, cut);
	}
	case SIM_FAULT_ENTITY_BOMB: {
		/* Billion laughs: each level refers ten times to the one below. */
		GString *subset = g_string_new(" <!ENTITY lol \"lol\">\n");
		for (int i = 1; i <= 9; i++) {
			g_string_append_printf(subset, " <!ENTITY lol%d \"", i);
			for (int j = 0; j < 10; j++) {
				if (i == 1)
					g_string_append(subset, "&lol;");
				else
					g_string_append_printf(subset, "&lol%d;", i - 1);
			}
			g_string_append(subset, "\">\n");
		}
		GBytes *b = with_doctype(xml, subset->str, "&lol9;");
		g_string_free(subset, TRUE);
		return b;
	}
	case SIM_FAULT_EXTERNAL_ENTITY:
		return with_doctype(xml, " <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n", "&xxe;");
	default:
		return g_bytes_ref(xml);
	}
}

/* ---- subjects and ids ---------------------------------------------------- */

char *
sim_mail_subject(const struct sim_device *dev, int64_t t)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	GDateTime *dt = g_date_time_new_from_unix_utc(t);
	if (dt == NULL)
		dt = g_date_time_new_from_unix_utc(0);
	int h = g_date_time_get_hour(dt);
	int h12 = h % 12 == 0 ? 12 : h % 12;
	const char *ampm = h < 12 ? "AM" : "PM";
	const char *mon = months[g_date_time_get_month(dt) - 1];
	char *s;
	if (dev->model->dialect == SNAPSHOT_DIALECT_LEGACY)
		s = g_strdup_printf(
		    "Printer Snapshot (%s %d,%d %d:%02d:%02d %s) \u2013 %s \u2013 %s", mon,
		    g_date_time_get_day_of_month(dt), g_date_time_get_year(dt), h12,
		    g_date_time_get_minute(dt), g_date_time_get_second(dt), ampm,
		    dev->model->product_number, dev->serial);
	else
		s = g_strdup_printf("Device Snapshot (%s %d, %d %d:%02d:%02d %s) - %s - %s", mon,
				    g_date_time_get_day_of_month(dt), g_date_time_get_year(dt), h12,
				    g_date_time_get_minute(dt), g_date_time_get_second(dt), ampm,
				    dev->model->product_number, dev->serial);
	g_date_time_unref(dt);
	return s;
}

static char *
mail_token(const struct sim_device *dev, int64_t t, unsigned seq, const char *what)
{
	char *in = g_strdup_printf("%s/%" G_GINT64_FORMAT "/%u/%s", dev->serial, t, seq, what);
	char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA1, in, -1);
	char *out = g_strndup(sum, 8);
	g_free(sum);
	g_free(in);
	return out;
}

static GDateTime *
device_datetime(const struct sim_device *dev, int64_t t)
{
	GDateTime *utc = g_date_time_new_from_unix_utc(t);
	GDateTime *local = g_date_time_to_timezone(utc, dev->tz);
	g_date_time_unref(utc);
	return local;
}

static GMimeMessage *
message_new(const char *from, const char *const *to, const char *subject, GDateTime *date,
	    const char *message_id)
{
	GMimeMessage *msg = g_mime_message_new(FALSE);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, NULL, from);
	for (const char *const *p = to; p != NULL && *p != NULL; p++)
		g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, *p);
	g_mime_message_set_subject(msg, subject, "utf-8");
	g_mime_message_set_date(msg, date);
	g_mime_message_set_message_id(msg, message_id);
	return msg;
}

static GMimePart *
text_part(const char *text)
{
	GMimeTextPart *tp = g_mime_text_part_new_with_subtype("plain");
	g_mime_text_part_set_text(tp, text);
	g_mime_text_part_set_charset(tp, "UTF-8");
	g_mime_part_set_content_encoding(GMIME_PART(tp), GMIME_CONTENT_ENCODING_7BIT);
	return GMIME_PART(tp);
}

static bool
is_ascii_short_lines(const char *x, gsize len, bool *ascii_r)
{
	gsize line = 0;
	bool ascii = true, shortl = true;
	for (gsize i = 0; i < len; i++) {
		if ((guchar)x[i] >= 0x80)
			ascii = false;
		if (x[i] == '\n') {
			line = 0;
		} else if (++line > 990) {
			shortl = false;
		}
	}
	*ascii_r = ascii;
	return shortl;
}

static GMimePart *
binary_part(const char *type, const char *subtype, const char *filename, GBytes *data,
	    GMimeContentEncoding enc)
{
	GMimePart *part = g_mime_part_new_with_type(type, subtype);
	gsize len;
	const void *d = g_bytes_get_data(data, &len);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(d, len);
	GMimeDataWrapper *wrapper =
	    g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(part, wrapper);
	g_object_unref(wrapper);
	g_object_unref(stream);
	g_mime_part_set_filename(part, filename);
	g_mime_part_set_content_encoding(part, enc);
	return part;
}

static GBytes *
serialize(GMimeObject *obj, bool lf)
{
	GMimeFormatOptions *fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, lf ? GMIME_NEWLINE_FORMAT_UNIX
							: GMIME_NEWLINE_FORMAT_DOS);
	GMimeStream *mem = g_mime_stream_mem_new();
	g_mime_object_write_to_stream(obj, fo, mem);
	GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	GBytes *out = g_bytes_new(ba->data, ba->len);
	g_object_unref(mem);
	g_mime_format_options_free(fo);
	return out;
}

static struct sim_mail *
mail_finish(GBytes *raw, const char *message_id, const char *from, const char *subject)
{
	struct sim_mail *m = g_new0(struct sim_mail, 1);
	gsize len;
	const void *d = g_bytes_get_data(raw, &len);
	char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, d, len);
	g_strlcpy(m->sha256, sum, sizeof(m->sha256));
	g_free(sum);
	m->raw = raw;
	m->message_id = g_strdup(message_id);
	m->from = g_strdup(from);
	m->subject = g_strdup(subject);
	return m;
}

static GBytes *
oversize_blob(const struct sim_device *dev, size_t size)
{
	guint32 seed[2] = {dev->seed, 0x0b16b00bu};
	GRand *r = g_rand_new_with_seed_array(seed, 2);
	guint8 *buf = g_malloc(size + 4);
	for (size_t i = 0; i < size; i += 4) {
		guint32 v = g_rand_int(r);
		memcpy(buf + i, &v, 4);
	}
	g_rand_free(r);
	return g_bytes_new_take(buf, size);
}

struct sim_mail *
sim_mail_snapshot(const struct sim_device *dev, int64_t t_ms, GBytes *xml,
		  const struct sim_variant *variant, enum sim_fault fault, unsigned seq,
		  const struct sim_mail_settings *settings)
{
	int64_t t = t_ms / 1000;
	char *subject = sim_mail_subject(dev, t);
	char *host = g_ascii_strdown(dev->hostname, -1);
	char *message_id =
	    seq == 0 ? g_strdup_printf("%s.%" G_GINT64_FORMAT "@%s", dev->serial, t, host)
		     : g_strdup_printf("%s.%" G_GINT64_FORMAT ".%u@%s", dev->serial, t, seq, host);
	char *tok = mail_token(dev, t, seq, "boundary");
	char *boundary = g_strdup_printf("=_snap_%s", tok);
	GDateTime *date = device_datetime(dev, t);
	GMimeMessage *msg = message_new(dev->from, settings->to, subject, date, message_id);
	GMimeMultipart *mp = g_mime_multipart_new_with_subtype("mixed");
	GMimeObject *top;
	GBytes *raw;
	bool legacy = dev->model->dialect == SNAPSHOT_DIALECT_LEGACY;

	g_mime_multipart_set_boundary(mp, boundary);
	if (!legacy) {
		GMimePart *body = text_part("See the attachments for the information.\n");
		g_mime_multipart_add(mp, GMIME_OBJECT(body));
		g_object_unref(body);
	} else if (fault == SIM_FAULT_MISSING_ATTACHMENT) {
		GMimePart *body = text_part("");
		g_mime_multipart_add(mp, GMIME_OBJECT(body));
		g_object_unref(body);
	}
	if (fault != SIM_FAULT_MISSING_ATTACHMENT && xml != NULL) {
		gsize len;
		const char *x = g_bytes_get_data(xml, &len);
		GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_BASE64;
		if (variant->encoding == SIM_ENC_QP) {
			enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
		} else if (variant->encoding == SIM_ENC_7BIT) {
			bool ascii;
			/* Long lines cannot travel as 7bit/8bit (RFC 5322 998). */
			if (is_ascii_short_lines(x, len, &ascii))
				enc = ascii ? GMIME_CONTENT_ENCODING_7BIT
					    : GMIME_CONTENT_ENCODING_8BIT;
		}
		const char *ct = variant->content_type != NULL ? variant->content_type : "text/xml";
		const char *slash = strchr(ct, '/');
		char *type = g_strndup(ct, slash != NULL ? (gsize)(slash - ct) : strlen(ct));
		GMimePart *att =
		    binary_part(type, slash != NULL ? slash + 1 : "xml", "Device.xml", xml, enc);
		g_mime_multipart_add(mp, GMIME_OBJECT(att));
		g_object_unref(att);
		g_free(type);
	}
	if (fault == SIM_FAULT_OVERSIZED) {
		GBytes *blob = oversize_blob(dev, settings->oversize_bytes);
		GMimePart *big = binary_part("application", "octet-stream", "EngineDump.bin", blob,
					     GMIME_CONTENT_ENCODING_BASE64);
		g_mime_multipart_add(mp, GMIME_OBJECT(big));
		g_object_unref(big);
		g_bytes_unref(blob);
	}
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(mp));
	g_object_unref(mp);
	top = GMIME_OBJECT(msg);

	struct sim_mail *mail;
	if (variant->forwarded) {
		/* An administrator forwards the printer's mail as an attachment. */
		char *fsubject = g_strdup_printf("Fwd: %s", subject);
		char *fid = g_strdup_printf("fwd.%s.%" G_GINT64_FORMAT ".%u@fleet.example",
					    dev->serial, t, seq);
		GDateTime *fdate = g_date_time_add_minutes(date, 7);
		GMimeMessage *outer =
		    message_new(settings->forward_from, settings->to, fsubject, fdate, fid);
		GMimeMultipart *omp = g_mime_multipart_new_with_subtype("mixed");
		char *otok = mail_token(dev, t, seq, "forward");
		char *ob = g_strdup_printf("=_fwd_%s", otok);
		g_mime_multipart_set_boundary(omp, ob);
		GMimePart *note = text_part("Forwarding the printer's snapshot, see attached.\n");
		g_mime_multipart_add(omp, GMIME_OBJECT(note));
		g_object_unref(note);
		GMimeMessagePart *mpart = g_mime_message_part_new_with_message("rfc822", msg);
		g_mime_multipart_add(omp, GMIME_OBJECT(mpart));
		g_object_unref(mpart);
		g_mime_message_set_mime_part(outer, GMIME_OBJECT(omp));
		g_object_unref(omp);
		raw = serialize(GMIME_OBJECT(outer), variant->lf);
		mail = mail_finish(raw, fid, settings->forward_from, fsubject);
		g_object_unref(outer);
		g_date_time_unref(fdate);
		g_free(fsubject);
		g_free(fid);
		g_free(otok);
		g_free(ob);
	} else {
		raw = serialize(top, variant->lf);
		mail = mail_finish(raw, message_id, dev->from, subject);
	}
	g_object_unref(msg);
	g_date_time_unref(date);
	g_free(subject);
	g_free(host);
	g_free(message_id);
	g_free(tok);
	g_free(boundary);
	return mail;
}

struct sim_mail *
sim_mail_alert(const struct sim_device *dev, int64_t t_ms, unsigned seq,
	       const struct sim_mail_settings *settings)
{
	int64_t t = t_ms / 1000;
	char *subject = g_strdup_printf("[Alert Message - Test] - %s", dev->model->name);
	char *host = g_ascii_strdown(dev->hostname, -1);
	char *message_id =
	    g_strdup_printf("alert.%s.%" G_GINT64_FORMAT ".%u@%s", dev->serial, t, seq, host);
	GDateTime *date = device_datetime(dev, t);
	GMimeMessage *msg = message_new(dev->from, settings->to, subject, date, message_id);
	char *body = g_strdup_printf("Alert Message - Test\n\nDevice: %s\nProduct Number: %s\n"
				     "Serial Number: %s\nHost Name: %s\nIP Address: %s\n\n"
				     "This is a test alert message sent by the device.\n",
				     dev->model->name, dev->model->product_number, dev->serial,
				     dev->hostname, dev->ip);
	GMimePart *part = text_part(body);
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(part));
	g_object_unref(part);
	GBytes *raw = serialize(GMIME_OBJECT(msg), false);
	struct sim_mail *mail = mail_finish(raw, message_id, dev->from, subject);
	g_object_unref(msg);
	g_date_time_unref(date);
	g_free(body);
	g_free(subject);
	g_free(host);
	g_free(message_id);
	return mail;
}

/* ---- manifest ----------------------------------------------------------- */

static void
add_counter(JsonBuilder *b, const char *name, int64_t v, bool present)
{
	if (!present)
		return;
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

static char *
utc_text(int64_t t)
{
	char buf[SK_UTC_SIZE];
	sk_time_format_utc(t, buf);
	return g_strdup(buf);
}

static gint
event_seq_cmp(gconstpointer a, gconstpointer b)
{
	const struct sim_event *x = *(const struct sim_event *const *)a;
	const struct sim_event *y = *(const struct sim_event *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

JsonObject *
sim_manifest_object(const struct sim_device *dev, int64_t taken_ms, int64_t clock_skew,
		    const struct sim_variant *variant, enum sim_fault fault,
		    const struct sim_mail *mail, size_t xml_len, int64_t since)
{
	JsonBuilder *b = json_builder_new();
	const struct sim_model *m = dev->model;
	bool legacy = m->dialect == SNAPSHOT_DIALECT_LEGACY;
	int64_t taken = taken_ms / 1000;
	char *s;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "device");
	json_builder_add_int_value(b, dev->index);
	json_builder_set_member_name(b, "serial");
	json_builder_add_string_value(b, dev->serial);
	json_builder_set_member_name(b, "product_number");
	json_builder_add_string_value(b, m->product_number);
	json_builder_set_member_name(b, "model");
	json_builder_add_string_value(b, m->name);
	json_builder_set_member_name(b, "dialect");
	json_builder_add_string_value(b, legacy ? "legacy" : "futuresmart");
	json_builder_set_member_name(b, "hostname");
	json_builder_add_string_value(b, dev->hostname);
	json_builder_set_member_name(b, "ip_address");
	json_builder_add_string_value(b, dev->ip);
	json_builder_set_member_name(b, "firmware");
	json_builder_add_string_value(b, m->firmware);
	json_builder_set_member_name(b, "locale");
	json_builder_add_string_value(b, dev->site->locale);
	json_builder_set_member_name(b, "template");
	json_builder_add_boolean_value(b, m->tmpl != NULL);

	s = utc_text(taken + clock_skew);
	json_builder_set_member_name(b, "taken_utc");
	json_builder_add_string_value(b, s);
	g_free(s);
	json_builder_set_member_name(b, "taken_offset_min");
	json_builder_add_int_value(b, sim_device_offset_min(dev, taken + clock_skew));
	s = utc_text(taken);
	json_builder_set_member_name(b, "true_utc");
	json_builder_add_string_value(b, s);
	g_free(s);
	json_builder_set_member_name(b, "clock_skew_s");
	json_builder_add_int_value(b, clock_skew);

	if (mail != NULL) {
		json_builder_set_member_name(b, "message_id");
		json_builder_add_string_value(b, mail->message_id);
		json_builder_set_member_name(b, "sha256");
		json_builder_add_string_value(b, mail->sha256);
		json_builder_set_member_name(b, "bytes");
		json_builder_add_int_value(b, (gint64)g_bytes_get_size(mail->raw));
		json_builder_set_member_name(b, "from");
		json_builder_add_string_value(b, mail->from);
		json_builder_set_member_name(b, "subject");
		json_builder_add_string_value(b, mail->subject);
	}
	json_builder_set_member_name(b, "xml_bytes");
	json_builder_add_int_value(b, (gint64)xml_len);

	json_builder_set_member_name(b, "variant");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "encoding");
	json_builder_add_string_value(b, sim_encoding_name(variant->encoding));
	json_builder_set_member_name(b, "content_type");
	json_builder_add_string_value(b, variant->content_type);
	json_builder_set_member_name(b, "forwarded");
	json_builder_add_boolean_value(b, variant->forwarded);
	json_builder_set_member_name(b, "lf");
	json_builder_add_boolean_value(b, variant->lf);
	json_builder_set_member_name(b, "nonascii");
	json_builder_add_boolean_value(b, variant->nonascii);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "fault");
	if (fault == SIM_FAULT_NONE)
		json_builder_add_null_value(b);
	else
		json_builder_add_string_value(b, sim_fault_name(fault));
	json_builder_set_member_name(b, "expect");
	json_builder_add_string_value(b, sim_fault_expect(fault));

	/* Device totals, as the document reports them (zero is omitted where
	 * the document omits it). */
	int64_t mono = sim_device_mono_impressions(dev), color = sim_device_color_impressions(dev);
	json_builder_set_member_name(b, "counters");
	json_builder_begin_object(b);
	add_counter(b, "TotalImpressions", mono + color, legacy || mono + color > 0);
	add_counter(b, "MonochromeImpressions", mono, legacy || mono > 0);
	add_counter(b, "ColorImpressions", color, m->color && (legacy || color > 0));
	add_counter(b, "SimplexSheets", dev->simplex, dev->simplex > 0);
	add_counter(b, "DuplexSheets", dev->duplex, dev->duplex > 0);
	add_counter(b, "JamEvents", dev->jams, dev->jams > 0);
	add_counter(b, "AdfImages", dev->adf, m->mfp && dev->adf > 0);
	add_counter(b, "FlatbedImages", dev->flatbed, m->mfp && dev->flatbed > 0);
	add_counter(b, "CopyImpressions", dev->copies, !legacy && m->mfp && dev->copies > 0);
	add_counter(b, "FaxImpressions", dev->faxes, !legacy && m->fax && dev->faxes > 0);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "media_counters");
	json_builder_begin_object(b);
	for (unsigned i = 0; i < dev->n_media; i++) {
		if (dev->mono[i] + dev->color[i] == 0)
			continue;
		json_builder_set_member_name(b, dev->media_name[i]);
		json_builder_begin_object(b);
		add_counter(b, "TotalImpressions", dev->mono[i] + dev->color[i], true);
		add_counter(b, "MonochromeImpressions", dev->mono[i], dev->mono[i] > 0);
		add_counter(b, "ColorImpressions", dev->color[i], m->color && dev->color[i] > 0);
		json_builder_end_object(b);
	}
	json_builder_end_object(b);

	json_builder_set_member_name(b, "supplies");
	json_builder_begin_array(b);
	for (unsigned i = 0; i < dev->n_supplies; i++) {
		const struct sim_supply *sp = &dev->supplies[i];
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "key");
		json_builder_add_string_value(b, legacy			? sp->m->legacy_id
						 : sp->m->label != NULL ? sp->m->label
									: sp->m->type);
		json_builder_set_member_name(b, "color");
		if (sp->m->color != NULL)
			json_builder_add_string_value(b, sp->m->color);
		else
			json_builder_add_null_value(b);
		json_builder_set_member_name(b, "type");
		json_builder_add_string_value(b, sp->m->type);
		json_builder_set_member_name(b, "product_number");
		json_builder_add_string_value(b, sp->m->product);
		json_builder_set_member_name(b, "serial");
		if (sp->serial[0] != '\0')
			json_builder_add_string_value(b, sp->serial);
		else
			json_builder_add_null_value(b);
		json_builder_set_member_name(b, "state");
		json_builder_add_string_value(b, sim_supply_state_name(sp->state));
		json_builder_set_member_name(b, "level_percent");
		json_builder_add_int_value(b, sim_supply_level(sp));
		json_builder_set_member_name(b, "pages");
		json_builder_add_int_value(b, sp->pages);
		json_builder_set_member_name(b, "brand");
		json_builder_add_string_value(b, sp->clone ? "clone" : "HP");
		json_builder_set_member_name(b, "replacements");
		json_builder_add_int_value(b, sp->replacements);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);

	GPtrArray *evs = g_ptr_array_new();
	for (unsigned l = 0; l < 2; l++)
		for (unsigned i = 0; i < sim_ring_len(&dev->logs[l]); i++) {
			const struct sim_event *ev = sim_ring_get(&dev->logs[l], i);
			if (ev->seq > since)
				g_ptr_array_add(evs, (gpointer)ev);
		}
	g_ptr_array_sort(evs, event_seq_cmp);
	json_builder_set_member_name(b, "new_events");
	json_builder_begin_array(b);
	for (unsigned i = 0; i < evs->len; i++) {
		const struct sim_event *ev = g_ptr_array_index(evs, i);
		char code[16];
		sim_event_code_string(ev, code);
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "log");
		json_builder_add_string_value(b, legacy		? "system"
						 : ev->log == 0 ? "error"
								: "info");
		json_builder_set_member_name(b, "sequence");
		json_builder_add_int_value(b, ev->seq);
		json_builder_set_member_name(b, "code");
		json_builder_add_string_value(b, code);
		s = utc_text(ev->t_ms / 1000 + clock_skew);
		json_builder_set_member_name(b, "occurred_utc");
		json_builder_add_string_value(b, s);
		g_free(s);
		json_builder_set_member_name(b, "page_count");
		json_builder_add_int_value(b, ev->pages);
		json_builder_set_member_name(b, "description");
		json_builder_add_string_value(b, sim_event_description(dev, ev, variant->nonascii));
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	g_ptr_array_unref(evs);

	json_builder_end_object(b);
	JsonNode *root = json_builder_get_root(b);
	JsonObject *obj = json_object_ref(json_node_get_object(root));
	json_node_unref(root);
	g_object_unref(b);
	return obj;
}

char *
sim_manifest_line(JsonObject *obj)
{
	JsonNode *node = json_node_new(JSON_NODE_OBJECT);
	json_node_set_object(node, obj);
	JsonGenerator *gen = json_generator_new();
	json_generator_set_root(gen, node);
	char *text = json_generator_to_data(gen, NULL);
	char *line = g_strconcat(text, "\n", NULL);
	g_free(text);
	g_object_unref(gen);
	json_node_unref(node);
	return line;
}
