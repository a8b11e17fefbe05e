/* sim-template.c: real printers as models.  A captured Device.xml (or a
 * snapshot mail carrying one) becomes a model; its virtual look-alikes are
 * written by rewriting a copy of the captured tree: the elements the
 * simulator models (identity, timestamps, counters, supplies, event logs)
 * get the device's values, every other element, attribute, comment and
 * namespace is kept as it is.  Elements are found by local name, never by
 * prefix or namespace URI, as FORMAT.md requires of readers.
 *
 * Security posture: templates come from the operator, but are parsed as if
 * hostile all the same: no network, no DTD loading, no entity expansion,
 * and a document with a DOCTYPE is refused.  Size limit: SIM_TEMPLATE_MAX. */
#include "config.h"

#include "sim/sim.h"

#include <gmime/gmime.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

#define SIM_TEMPLATE_MAX (64 * 1024 * 1024)

struct sim_template {
	xmlDocPtr doc;
	enum snapshot_dialect dialect;
};

void
sim_template_free(struct sim_template **tmpl)
{
	if (tmpl == NULL || *tmpl == NULL)
		return;
	xmlFreeDoc((*tmpl)->doc);
	g_free(*tmpl);
	*tmpl = NULL;
}

/* ---- tree helpers ------------------------------------------------------- */

static bool
is(const xmlNode *n, const char *local)
{
	return n != NULL && n->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)n->name, local) == 0;
}

static xmlNodePtr
child(xmlNodePtr parent, const char *local)
{
	if (parent == NULL)
		return NULL;
	for (xmlNodePtr c = parent->children; c != NULL; c = c->next)
		if (is(c, local))
			return c;
	return NULL;
}

/* First descendant element with this local name (depth first). */
static xmlNodePtr
find(xmlNodePtr node, const char *local)
{
	if (node == NULL)
		return NULL;
	for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, local))
			return c;
		xmlNodePtr r = find(c, local);
		if (r != NULL)
			return r;
	}
	return NULL;
}

static void
find_all(xmlNodePtr node, const char *local, GPtrArray *out)
{
	if (node == NULL)
		return;
	for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, local))
			g_ptr_array_add(out, c);
		else
			find_all(c, local, out);
	}
}

/* Text of an element, trimmed; g_free'd by the caller, NULL if none. */
static char *
text_of(xmlNodePtr n)
{
	if (n == NULL)
		return NULL;
	xmlChar *c = xmlNodeGetContent(n);
	if (c == NULL)
		return NULL;
	char *s = g_strstrip(g_strdup((const char *)c));
	xmlFree(c);
	return s;
}

static bool
text_is(xmlNodePtr n, const char *value)
{
	char *t = text_of(n);
	bool r = t != NULL && strcmp(t, value) == 0;
	g_free(t);
	return r;
}

static void
set_text(xmlNodePtr n, const char *text)
{
	if (n == NULL)
		return;
	xmlNodeSetContent(n, NULL);
	xmlNodeAddContent(n, BAD_CAST text);
}

static void
set_int(xmlNodePtr n, int64_t v)
{
	char buf[32];
	g_snprintf(buf, sizeof(buf), "%" G_GINT64_FORMAT, v);
	set_text(n, buf);
}

static void
remove_children(xmlNodePtr n)
{
	xmlNodePtr c = n->children;
	while (c != NULL) {
		xmlNodePtr next = c->next;
		xmlUnlinkNode(c);
		xmlFreeNode(c);
		c = next;
	}
}

static void
add_nl(xmlNodePtr parent)
{
	xmlAddChild(parent, xmlNewText(BAD_CAST "\n"));
}

/* A namespace for new elements: by customary prefix, else like `like`. */
static xmlNsPtr
ns_for(xmlDocPtr doc, xmlNodePtr scope, const char *prefix, xmlNodePtr like)
{
	xmlNsPtr ns = xmlSearchNs(doc, scope, BAD_CAST prefix);
	if (ns != NULL)
		return ns;
	if (like != NULL && like->ns != NULL)
		return like->ns;
	return scope->ns;
}

/* ---- loading ------------------------------------------------------------ */

static void
find_device_xml(GMimeObject *obj, GBytes **out, unsigned depth)
{
	if (*out != NULL || obj == NULL || depth > 32)
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n && *out == NULL; i++)
			find_device_xml(g_mime_multipart_get_part(mp, i), out, depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (m != NULL)
			find_device_xml(g_mime_message_get_mime_part(m), out, depth + 1);
	} else if (GMIME_IS_PART(obj)) {
		const char *fn = g_mime_part_get_filename(GMIME_PART(obj));
		GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(obj));
		if (fn == NULL || g_ascii_strcasecmp(fn, "Device.xml") != 0 || content == NULL)
			return;
		GMimeStream *mem = g_mime_stream_mem_new();
		if (g_mime_data_wrapper_write_to_stream(content, mem) >= 0) {
			GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
			*out = g_bytes_new(ba->data, ba->len);
		}
		g_object_unref(mem);
	}
}

static GBytes *
xml_from_mail(const char *data, size_t len)
{
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	GBytes *out = NULL;
	if (msg != NULL) {
		find_device_xml(g_mime_message_get_mime_part(msg), &out, 0);
		g_object_unref(msg);
	}
	g_object_unref(parser);
	g_object_unref(stream);
	return out;
}

static const char *
color_from_text(const char *s)
{
	static const char *const colors[] = {"black", "cyan", "magenta", "yellow"};
	if (s == NULL)
		return NULL;
	for (unsigned i = 0; i < G_N_ELEMENTS(colors); i++)
		if (g_ascii_strncasecmp(s, colors[i], strlen(colors[i])) == 0)
			return colors[i];
	return NULL;
}

static int64_t
guess_yield(const char *type, const char *color)
{
	if (type != NULL && strstr(type, "aintenance") != NULL)
		return 200000;
	if (type != NULL && (strstr(type, "Drum") != NULL || strstr(type, "drum") != NULL))
		return 120000;
	if (color != NULL && strcmp(color, "black") != 0)
		return 9000;
	return 11000;
}

static void
derive_futuresmart(xmlNodePtr root, struct sim_model *m)
{
	xmlNodePtr ident = find(root, "DeviceIdentification");
	xmlNodePtr usage = find(root, "DeviceUsageService");
	GPtrArray *a = g_ptr_array_new();

	m->name = text_of(find(ident, "MakeAndModel"));
	m->product_number = text_of(find(ident, "ProductNumber"));
	char *serial = text_of(find(ident, "SerialNumber"));
	m->serial_prefix = g_strndup(serial != NULL ? serial : "SIM", 3);
	g_free(serial);
	xmlNodePtr ver = find(ident, "Version");
	m->firmware = text_of(find(ver, "Revision"));
	m->firmware_date = text_of(find(ver, "Date"));
	m->mfp = find(usage, "ScannerEngineSubunit") != NULL;
	m->fax = find(usage, "FaxApplicationSubunit") != NULL;

	find_all(usage, "MediaSizeID", a);
	m->media = g_ptr_array_new_with_free_func(g_free);
	for (unsigned i = 0; i < a->len && m->media->len < SIM_MEDIA_MAX; i++) {
		char *name = text_of(g_ptr_array_index(a, i));
		if (name == NULL || strlen(name) >= 40) {
			g_free(name);
			continue;
		}
		if (strstr(name, "a3") != NULL || strstr(name, "ledger") != NULL)
			m->a3 = true;
		g_ptr_array_add(m->media, name);
	}
	g_ptr_array_set_size(a, 0);
	find_all(usage, "CounterName", a);
	for (unsigned i = 0; i < a->len; i++)
		if (text_is(g_ptr_array_index(a, i), "ColorImpressions"))
			m->color = true;

	g_ptr_array_set_size(a, 0);
	find_all(root, "ConsumableInfo", a);
	for (unsigned i = 0; i < a->len && m->supplies->len < SIM_SUPPLY_MAX; i++) {
		xmlNodePtr ci = g_ptr_array_index(a, i);
		struct sim_supply_model *s = g_new0(struct sim_supply_model, 1);
		char *mc = text_of(child(ci, "MarkerColor"));
		s->label = text_of(child(ci, "ConsumableLabelCode"));
		s->color = g_strdup(color_from_text(mc));
		s->type = text_of(child(ci, "ConsumableTypeEnum"));
		if (s->type == NULL)
			s->type = g_strdup("tonerCartridge");
		s->product = text_of(child(ci, "ProductNumber"));
		s->legacy_id = g_strdup_printf("%sToner", s->color != NULL ? s->color : "other");
		s->description =
		    mc != NULL ? g_strdup_printf("%s Cartridge", mc) : g_strdup(s->type);
		s->yield = guess_yield(s->type, s->color);
		if (s->color != NULL && strcmp(s->color, "black") != 0)
			m->color = true;
		g_free(mc);
		g_ptr_array_add(m->supplies, s);
	}
	g_ptr_array_unref(a);
}

static void
derive_legacy(xmlNodePtr root, struct sim_model *m)
{
	GPtrArray *a = g_ptr_array_new();
	xmlNodePtr sys = NULL;

	find_all(root, "Component", a);
	for (unsigned i = 0; i < a->len; i++) {
		xmlNodePtr c = g_ptr_array_index(a, i);
		xmlChar *type = xmlGetProp(c, BAD_CAST "componentType");
		xmlChar *id = xmlGetProp(c, BAD_CAST "id");
		if (type != NULL && strcmp((const char *)type, "system") == 0 && sys == NULL) {
			sys = c;
			m->legacy_iprefix = id != NULL && id[0] == 'i';
		} else if (type != NULL && strcmp((const char *)type, "consumable") == 0 &&
			   id != NULL && m->supplies->len < SIM_SUPPLY_MAX) {
			struct sim_supply_model *s = g_new0(struct sim_supply_model, 1);
			const char *bare = (const char *)id;
			if (bare[0] == 'i' && g_ascii_isupper(bare[1])) {
				s->legacy_id =
				    g_strdup_printf("%c%s", g_ascii_tolower(bare[1]), bare + 2);
			} else {
				s->legacy_id = g_strdup(bare);
			}
			s->description = text_of(child(c, "Description"));
			if (s->description == NULL)
				s->description = g_strdup(s->legacy_id);
			s->product = text_of(child(c, "ProductNumber"));
			s->color = g_strdup(color_from_text(s->legacy_id));
			if (strstr(s->legacy_id, "aintenance") != NULL)
				s->type = g_strdup("maintenanceKit");
			else if (strstr(s->legacy_id, "Drum") != NULL)
				s->type = g_strdup("imageDrum");
			else
				s->type = g_strdup("tonerCartridge");
			if (s->color != NULL) {
				char lab[2] = {strcmp(s->color, "black") == 0
						   ? 'K'
						   : g_ascii_toupper(s->color[0]),
					       '\0'};
				s->label = g_strdup(lab);
			}
			s->yield = guess_yield(s->type, s->color);
			if (s->color != NULL && strcmp(s->color, "black") != 0)
				m->color = true;
			g_ptr_array_add(m->supplies, s);
		}
		if (type != NULL)
			xmlFree(type);
		if (id != NULL)
			xmlFree(id);
	}
	m->name = text_of(child(sys, "MakeAndModel"));
	m->product_number = text_of(child(sys, "ProductNumber"));
	char *serial = text_of(child(sys, "SerialNumber"));
	m->serial_prefix = g_strndup(serial != NULL ? serial : "SIM", 3);
	g_free(serial);
	xmlNodePtr ver = child(sys, "Version");
	m->firmware = text_of(child(ver, "Revision"));
	m->firmware_date = text_of(child(ver, "Date"));
	/* Colour shows in the data items too. */
	g_ptr_array_set_size(a, 0);
	find_all(root, "ChromaticMode", a);
	for (unsigned i = 0; i < a->len; i++)
		if (text_is(g_ptr_array_index(a, i), "color"))
			m->color = true;
	m->mfp = find(root, "AdfImages") != NULL || find(root, "FlatbedImages") != NULL;
	g_ptr_array_unref(a);
}

int
sim_template_load(const char *path, struct sim_model **model_r, char **error_r)
{
	char *data = NULL;
	gsize len = 0;
	GError *gerr = NULL;
	GBytes *xml = NULL;
	xmlDocPtr doc = NULL;
	struct sim_model *m = NULL;
	int ret = -1;

	*model_r = NULL;
	if (!g_file_get_contents(path, &data, &len, &gerr)) {
		*error_r = g_strdup_printf("template %s: %s", path, gerr->message);
		g_error_free(gerr);
		goto out;
	}
	if (len > SIM_TEMPLATE_MAX) {
		*error_r =
		    g_strdup_printf("template %s: larger than %d bytes", path, SIM_TEMPLATE_MAX);
		goto out;
	}
	const char *p = data;
	while (p < data + len && g_ascii_isspace(*p))
		p++;
	if (len >= 3 && (guchar)p[0] == 0xEF && (guchar)p[1] == 0xBB && (guchar)p[2] == 0xBF)
		p += 3;
	if (p < data + len && *p == '<') {
		xml = g_bytes_new(data, len);
	} else {
		xml = xml_from_mail(data, len);
		if (xml == NULL) {
			*error_r = g_strdup_printf("template %s: neither XML nor a mail with a "
						   "Device.xml part",
						   path);
			goto out;
		}
	}
	gsize xlen;
	const char *x = g_bytes_get_data(xml, &xlen);
	doc = xmlReadMemory(x, (int)xlen, "Device.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL) {
		*error_r = g_strdup_printf("template %s: not well-formed XML", path);
		goto out;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		*error_r = g_strdup_printf("template %s: DOCTYPE refused", path);
		goto out;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	m = g_new0(struct sim_model, 1);
	m->supplies = g_ptr_array_new_with_free_func(sim_supply_model_free);
	if (is(root, "DeviceService")) {
		m->dialect = SNAPSHOT_DIALECT_FUTURESMART;
		derive_futuresmart(root, m);
	} else if (is(root, "Device")) {
		m->dialect = SNAPSHOT_DIALECT_LEGACY;
		derive_legacy(root, m);
	} else {
		*error_r = g_strdup_printf("template %s: root element '%s' is not a Device.xml",
					   path, root != NULL ? (const char *)root->name : "");
		goto out;
	}
	if (m->name == NULL || m->product_number == NULL) {
		*error_r = g_strdup_printf("template %s: no model name or product number", path);
		goto out;
	}
	if (m->firmware == NULL)
		m->firmware = g_strdup("unknown");
	if (m->firmware_date == NULL)
		m->firmware_date = g_strdup("2020-01-01");
	m->ppd_min = 100;
	m->ppd_max = m->a3 ? 2000 : 800;
	m->tmpl = g_new0(struct sim_template, 1);
	m->tmpl->doc = doc;
	m->tmpl->dialect = m->dialect;
	doc = NULL;
	*model_r = m;
	m = NULL;
	ret = 0;
out:
	sim_model_free(&m);
	if (doc != NULL)
		xmlFreeDoc(doc);
	if (xml != NULL)
		g_bytes_unref(xml);
	g_free(data);
	return ret;
}

/* ---- rewriting ---------------------------------------------------------- */

/* Sets the value of the FixedPointNumber (or plain text) of a counter. */
static void
set_counter_value(xmlNodePtr counter, int64_t v)
{
	xmlNodePtr fp = child(counter, "FixedPointNumber");
	if (fp != NULL) {
		set_int(child(fp, "Significand"), v);
		xmlNodePtr e = child(fp, "Exponent");
		if (e != NULL)
			set_text(e, "0");
		return;
	}
	xmlNodePtr vf = child(counter, "ValueFloat");
	if (vf != NULL)
		set_int(vf, v);
}

/* Counter children (not inside nested media groups) named `name`. */
static xmlNodePtr
counter_named(xmlNodePtr scope, const char *name)
{
	if (scope == NULL)
		return NULL;
	for (xmlNodePtr c = scope->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, "Counter") && text_is(child(c, "CounterName"), name))
			return c;
		if (is(c, "CounterGroup") && child(c, "MediaSizeID") != NULL)
			continue;
		xmlNodePtr r = counter_named(c, name);
		if (r != NULL)
			return r;
	}
	return NULL;
}

static void
rewrite_counter(xmlNodePtr scope, const char *name, int64_t v)
{
	xmlNodePtr c = counter_named(scope, name);
	if (c != NULL)
		set_counter_value(c, v);
}

/* In one media group: set name to v, adding the counter (a copy of the
 * TotalImpressions counter) when the template lacks it and v > 0. */
static void
media_counter(xmlNodePtr group, const char *name, int64_t v)
{
	xmlNodePtr c = NULL;
	for (xmlNodePtr k = group->children; k != NULL; k = k->next)
		if (is(k, "Counter") && text_is(child(k, "CounterName"), name))
			c = k;
	if (c == NULL) {
		if (v <= 0)
			return;
		xmlNodePtr total = NULL;
		for (xmlNodePtr k = group->children; k != NULL; k = k->next)
			if (is(k, "Counter") &&
			    text_is(child(k, "CounterName"), "TotalImpressions"))
				total = k;
		if (total == NULL)
			return;
		c = xmlCopyNode(total, 1);
		set_text(child(c, "CounterName"), name);
		xmlAddPrevSibling(total, c);
		xmlAddPrevSibling(total, xmlNewText(BAD_CAST "\n"));
	}
	set_counter_value(c, v);
}

static void
fs_usage(xmlNodePtr root, const struct sim_device *dev)
{
	xmlNodePtr usage = find(root, "DeviceUsageService");
	GPtrArray *groups = g_ptr_array_new();
	if (usage == NULL)
		goto out;
	find_all(usage, "CounterGroup", groups);
	for (unsigned g = 0; g < groups->len; g++) {
		xmlNodePtr grp = g_ptr_array_index(groups, g);
		if (!text_is(child(grp, "CounterGroupName"), "ImpressionsByMediaSizeID"))
			continue;
		for (xmlNodePtr mg = grp->children; mg != NULL; mg = mg->next) {
			if (!is(mg, "CounterGroup"))
				continue;
			char *size = text_of(child(mg, "MediaSizeID"));
			for (unsigned i = 0; size != NULL && i < dev->n_media; i++) {
				if (strcmp(size, dev->media_name[i]) != 0)
					continue;
				media_counter(mg, "MonochromeImpressions", dev->mono[i]);
				if (dev->model->color)
					media_counter(mg, "ColorImpressions", dev->color[i]);
				media_counter(mg, "TotalImpressions", dev->mono[i] + dev->color[i]);
			}
			g_free(size);
		}
	}
	xmlNodePtr printer = find(usage, "PrinterSubunit");
	rewrite_counter(printer, "SimplexSheets", dev->simplex);
	rewrite_counter(printer, "DuplexSheets", dev->duplex);
	rewrite_counter(printer, "JamEvents", dev->jams);
	xmlNodePtr scanner = find(usage, "ScannerEngineSubunit");
	rewrite_counter(scanner, "AdfImages", dev->adf);
	rewrite_counter(scanner, "FlatbedImages", dev->flatbed);
	rewrite_counter(find(usage, "CopyApplicationSubunit"), "TotalImpressions", dev->copies);
	rewrite_counter(find(usage, "FaxApplicationSubunit"), "TotalImpressions", dev->faxes);
out:
	g_ptr_array_unref(groups);
}

static char *
local_date(const struct sim_device *dev, int64_t t)
{
	int off = sim_device_offset_min(dev, t);
	GDateTime *dt = g_date_time_new_from_unix_utc(t + (int64_t)off * 60);
	if (dt == NULL)
		return g_strdup("1970-01-01");
	char *s = g_date_time_format(dt, "%Y-%m-%d");
	g_date_time_unref(dt);
	return s;
}

static void
fs_consumables(xmlNodePtr root, const struct sim_device *dev)
{
	GPtrArray *a = g_ptr_array_new();
	find_all(root, "ConsumableInfo", a);
	for (unsigned i = 0; i < a->len && i < dev->n_supplies; i++) {
		xmlNodePtr ci = g_ptr_array_index(a, i);
		const struct sim_supply *s = &dev->supplies[i];
		if (s->serial[0] != '\0')
			set_text(child(ci, "SerialNumber"), s->serial);
		xmlNodePtr life = child(ci, "ConsumableLifeState");
		set_text(child(life, "ConsumableState"), sim_supply_state_name(s->state));
		set_text(child(life, "Brand"), s->clone ? "clone" : "HP");
		set_int(child(ci, "ConsumablePercentageLevelRemaining"), sim_supply_level(s));
		char *date = local_date(dev, s->installed);
		set_text(child(child(ci, "Installation"), "Date"), date);
		g_free(date);
		set_int(child(ci, "TotalImpressions"), s->pages);
	}
	g_ptr_array_unref(a);
}

static xmlNodePtr
new_text_el(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
	return xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text);
}

static xmlNodePtr
new_int_el(xmlNodePtr parent, xmlNsPtr ns, const char *name, int64_t v)
{
	char buf[32];
	g_snprintf(buf, sizeof(buf), "%" G_GINT64_FORMAT, v);
	return new_text_el(parent, ns, name, buf);
}

static void
fs_logs(xmlDocPtr doc, xmlNodePtr root, const struct sim_device *dev,
	const struct sim_doc_options *o)
{
	GPtrArray *logs = g_ptr_array_new();
	find_all(root, "Log", logs);
	xmlNodePtr any_counter = find(root, "Counter");
	for (unsigned l = 0; l < logs->len; l++) {
		xmlNodePtr log = g_ptr_array_index(logs, l);
		xmlNodePtr entries = child(log, "Entries");
		char *type = text_of(child(log, "Type"));
		unsigned which = type != NULL && strcmp(type, "info") == 0 ? 1 : 0;
		g_free(type);
		if (entries == NULL)
			continue;
		xmlNodePtr proto = child(entries, "Entry");
		xmlNsPtr ns_log = proto != NULL && proto->ns != NULL ? proto->ns : entries->ns;
		xmlNsPtr ns_dd =
		    ns_for(doc, log, "dd", proto != NULL ? child(proto, "SequenceNumber") : NULL);
		xmlNsPtr ns_ct = ns_for(doc, log, "ct", any_counter);
		remove_children(entries);
		add_nl(entries);
		const struct sim_ring *ring = &dev->logs[which];
		for (unsigned i = 0; i < sim_ring_len(ring); i++) {
			const struct sim_event *ev = sim_ring_get(ring, i);
			char code[16], buf[32];
			char *ts = sim_device_format_time(dev, ev->t_ms + o->clock_skew * 1000);
			sim_event_code_string(ev, code);
			xmlNodePtr e = xmlNewChild(entries, ns_log, BAD_CAST "Entry", NULL);
			new_int_el(e, ns_dd, "SequenceNumber", ev->seq);
			new_text_el(e, ns_dd, "EventCode", code);
			new_text_el(e, ns_dd, "TimeStamp", ts);
			new_text_el(e, ns_dd, "Description",
				    sim_event_description(dev, ev, o->force_korean));
			new_text_el(e, ns_log, "EventId", sim_event_id(ev));
			add_nl(e);
			xmlNodePtr c = xmlNewChild(e, ns_ct, BAD_CAST "Counter", NULL);
			new_text_el(c, ns_dd, "CounterName", "TotalImpressions");
			xmlNodePtr fp = xmlNewChild(c, ns_dd, BAD_CAST "FixedPointNumber", NULL);
			new_int_el(fp, ns_dd, "Significand", ev->pages);
			new_text_el(fp, ns_dd, "Exponent", "0");
			add_nl(e);
			xmlNodePtr pl = xmlNewChild(e, ns_log, BAD_CAST "Payload", NULL);
			xmlNodePtr kv = xmlNewChild(pl, ns_log, BAD_CAST "KeyValuePair", NULL);
			new_text_el(kv, ns_log, "Key", "FirmwareVersion");
			new_text_el(kv, ns_log, "ValueString", dev->model->firmware);
			kv = xmlNewChild(pl, ns_log, BAD_CAST "KeyValuePair", NULL);
			new_text_el(kv, ns_log, "Key", "BootCycle");
			g_snprintf(buf, sizeof(buf), "%08u", ev->boot);
			new_text_el(kv, ns_log, "ValueString", buf);
			kv = xmlNewChild(pl, ns_log, BAD_CAST "KeyValuePair", NULL);
			new_text_el(kv, ns_log, "Key", "PrintCount");
			new_int_el(kv, ns_log, "ValueString", ev->pages);
			add_nl(entries);
			g_free(ts);
		}
	}
	g_ptr_array_unref(logs);
}

static void
rewrite_futuresmart(xmlDocPtr doc, xmlNodePtr root, const struct sim_device *dev, int64_t taken_ms,
		    const struct sim_doc_options *o)
{
	char *ts = sim_device_format_time(dev, taken_ms + o->clock_skew * 1000);
	set_text(find(child(root, "TicketMetaData"), "TimeStamp"), ts);
	g_free(ts);
	xmlNodePtr ident = find(root, "DeviceIdentification");
	set_text(child(ident, "SerialNumber"), dev->serial);
	set_text(child(ident, "DeviceID"), dev->uuid);
	xmlNodePtr info = find(root, "DeviceInformation");
	set_text(child(info, "HostName"), dev->hostname);
	set_text(child(info, "IPAddress"), dev->ip);
	set_text(child(info, "HardwareAddress"), dev->mac);
	fs_logs(doc, root, dev, o);
	fs_usage(root, dev);
	fs_consumables(root, dev);
}

static void
rewrite_legacy(xmlDocPtr doc, xmlNodePtr root, const struct sim_device *dev, int64_t taken_ms,
	       const struct sim_doc_options *o)
{
	GPtrArray *a = g_ptr_array_new();
	char *ts = sim_device_format_time(dev, taken_ms + o->clock_skew * 1000);
	xmlNodePtr stamp = child(root, "TimeStamp");
	if (stamp != NULL)
		set_text(stamp, ts);
	g_free(ts);

	find_all(root, "Component", a);
	unsigned si = 0;
	for (unsigned i = 0; i < a->len; i++) {
		xmlNodePtr c = g_ptr_array_index(a, i);
		xmlChar *type = xmlGetProp(c, BAD_CAST "componentType");
		if (type != NULL && strcmp((const char *)type, "system") == 0) {
			set_text(child(c, "SerialNumber"), dev->serial);
			set_text(child(c, "HostName"), dev->hostname);
		} else if (type != NULL && strcmp((const char *)type, "consumable") == 0 &&
			   si < dev->n_supplies) {
			const struct sim_supply *s = &dev->supplies[si++];
			if (s->serial[0] != '\0')
				set_text(child(c, "SerialNumber"), s->serial);
			char *date = local_date(dev, s->installed);
			set_text(child(child(c, "Installation"), "Date"), date);
			g_free(date);
			xmlNodePtr cap = child(c, "Capacity");
			xmlChar *cap_id = cap != NULL ? xmlGetProp(cap, BAD_CAST "id") : NULL;
			if (cap_id != NULL) {
				GPtrArray *sc = g_ptr_array_new();
				find_all(root, "StatusCollection", sc);
				for (unsigned k = 0; k < sc->len; k++) {
					xmlNodePtr n = g_ptr_array_index(sc, k);
					xmlChar *ref = xmlGetProp(n, BAD_CAST "idRef");
					if (ref != NULL &&
					    strcmp((const char *)ref, (const char *)cap_id) == 0)
						set_int(child(n, "Level"), sim_supply_level(s));
					if (ref != NULL)
						xmlFree(ref);
				}
				g_ptr_array_unref(sc);
				xmlFree(cap_id);
			}
		}
		if (type != NULL)
			xmlFree(type);
	}

	g_ptr_array_set_size(a, 0);
	find_all(root, "DataItem", a);
	for (unsigned i = 0; i < a->len; i++) {
		xmlNodePtr item = g_ptr_array_index(a, i);
		xmlChar *ref = xmlGetProp(item, BAD_CAST "idRef");
		bool system = ref != NULL && (strcmp((const char *)ref, "system") == 0 ||
					      strcmp((const char *)ref, "iSystem") == 0);
		if (ref != NULL)
			xmlFree(ref);
		if (!system)
			continue;
		for (xmlNodePtr c = item->children; c != NULL; c = c->next) {
			if (c->type != XML_ELEMENT_NODE)
				continue;
			int64_t v = -1;
			if (is(c, "TotalImpressions")) {
				char *mode = text_of(child(c, "ChromaticMode"));
				if (mode == NULL)
					v = sim_device_total_impressions(dev);
				else if (strcmp(mode, "color") == 0)
					v = sim_device_color_impressions(dev);
				else if (strcmp(mode, "monochrome") == 0)
					v = sim_device_mono_impressions(dev);
				g_free(mode);
			} else if (is(c, "DuplexSheets")) {
				v = dev->duplex;
			} else if (is(c, "SimplexSheets")) {
				v = dev->simplex;
			} else if (is(c, "JamEvents")) {
				v = dev->jams;
			} else if (is(c, "AdfImages")) {
				v = dev->adf;
			} else if (is(c, "FlatbedImages")) {
				v = dev->flatbed;
			}
			if (v >= 0)
				set_int(child(c, "ValueFloat"), v);
		}
	}

	g_ptr_array_set_size(a, 0);
	find_all(root, "Log", a);
	for (unsigned i = 0; i < a->len; i++) {
		xmlNodePtr log = g_ptr_array_index(a, i);
		xmlChar *ref = xmlGetProp(log, BAD_CAST "idRef");
		bool system = ref != NULL && (strcmp((const char *)ref, "system") == 0 ||
					      strcmp((const char *)ref, "iSystem") == 0);
		if (ref != NULL)
			xmlFree(ref);
		if (!system)
			continue;
		xmlNodePtr proto = child(log, "Event");
		xmlNsPtr ns_dd = ns_for(doc, log, "dd", proto);
		xmlNsPtr ns_count =
		    ns_for(doc, log, "count", proto != NULL ? child(proto, "Counter") : NULL);
		remove_children(log);
		add_nl(log);
		const struct sim_ring *ring = &dev->logs[0];
		for (unsigned k = 0; k < sim_ring_len(ring); k++) {
			const struct sim_event *ev = sim_ring_get(ring, k);
			char code[16];
			char *ets = sim_device_format_time(dev, ev->t_ms + o->clock_skew * 1000);
			sim_event_code_string(ev, code);
			xmlNodePtr e = xmlNewChild(log, ns_dd, BAD_CAST "Event", NULL);
			new_int_el(e, ns_dd, "SequenceNumber", ev->seq);
			new_text_el(e, ns_dd, "EventCode", code);
			new_text_el(e, ns_dd, "Description",
				    sim_event_description(dev, ev, o->force_korean));
			new_text_el(e, ns_dd, "TimeStamp", ets);
			xmlNodePtr c = xmlNewChild(e, ns_count, BAD_CAST "Counter", NULL);
			new_int_el(c, ns_dd, "ValueFloat", ev->pages);
			add_nl(log);
			g_free(ets);
		}
	}
	xmlNodePtr uri = find(child(root, "BSIService"), "LocationURI");
	char *old = text_of(uri);
	if (old != NULL && g_str_has_prefix(old, "http://")) {
		const char *path = strchr(old + 7, '/');
		char *nu = g_strdup_printf("http://%s%s", dev->ip, path != NULL ? path : "/");
		set_text(uri, nu);
		g_free(nu);
	}
	g_free(old);
	g_ptr_array_unref(a);
}

GBytes *
sim_template_write(const struct sim_device *dev, int64_t taken_ms, const struct sim_doc_options *o)
{
	const struct sim_template *tmpl = dev->model->tmpl;
	xmlDocPtr doc = xmlCopyDoc(tmpl->doc, 1);
	xmlChar *mem = NULL;
	int len = 0;
	GBytes *out = NULL;

	if (doc == NULL)
		return NULL;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (tmpl->dialect == SNAPSHOT_DIALECT_LEGACY)
		rewrite_legacy(doc, root, dev, taken_ms, o);
	else
		rewrite_futuresmart(doc, root, dev, taken_ms, o);
	xmlDocDumpMemoryEnc(doc, &mem, &len, "UTF-8");
	if (mem != NULL && len > 0)
		out = g_bytes_new(mem, (size_t)len);
	xmlFree(mem);
	xmlFreeDoc(doc);
	return out;
}
