/* snapxml.c: the Device.xml of a stored snapshot, again.
 *
 * The raw message comes back byte-exact from the archive
 * (store_message_get); mime_extract finds the Device.xml part and
 * devxml_parse reads it into a struct snapshot, exactly as the parse worker
 * did.  These run inside the daemon, not in a worker, which is safe only
 * because the message already parsed in a worker under CPU and time limits
 * (a snapshot row exists only for such messages) and the parsers are
 * deterministic; callers must use this for stored snapshots only.
 *
 * Pretty-printing parses the XML with libxml2 under the same rules as
 * src/devxml/devxml.c: XML_PARSE_NONET, no entity substitution, no DTD
 * loading, the refusing entity loader (devxml_global_init), and any DOCTYPE
 * or entity declaration stops the parse.  At most WEB_PRETTY_MAX bytes. */
#include "config.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

#include "devxml/devxml.h"
#include "mime/mime.h"
#include "web/internal.h"

#define WEB_PRETTY_MAX (8u * 1024 * 1024)

int
web_snapdoc_load(struct store *store, int64_t message_id, bool parse, struct web_snapdoc *doc,
		 char **error_r)
{
	struct mime_result mr;
	char *err = NULL;

	memset(doc, 0, sizeof(*doc));
	if (store_message_get(store, message_id, &doc->raw, error_r) < 0)
		return -1;
	gsize len = 0;
	const void *data = g_bytes_get_data(doc->raw, &len);
	int r = mime_extract(data, len, NULL, &mr, &err);
	if (r == 1) {
		doc->xml = g_bytes_ref(mr.device_xml);
	} else {
		doc->parse_error =
		    err != NULL ? err : g_strdup("no Device.xml part in this message");
		err = NULL;
	}
	mime_result_clear(&mr);
	g_free(err);
	if (parse && doc->xml != NULL) {
		devxml_global_init();
		const char *x = g_bytes_get_data(doc->xml, &len);
		if (devxml_parse(x, len, NULL, &doc->snap, &doc->parse_error) < 0)
			doc->snap = NULL;
	}
	return 0;
}

void
web_snapdoc_clear(struct web_snapdoc *doc)
{
	if (doc->raw != NULL)
		g_bytes_unref(doc->raw);
	if (doc->xml != NULL)
		g_bytes_unref(doc->xml);
	snapshot_free(&doc->snap);
	g_free(doc->parse_error);
	memset(doc, 0, sizeof(*doc));
}

static void
refuse_subset(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;
	(void)name;
	(void)external_id;
	(void)system_id;
	ctxt->_private = (void *)ctxt;
	xmlStopParser(ctxt);
}

static void
refuse_entity(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
	      const xmlChar *system_id, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)public_id;
	(void)system_id;
	(void)content;
	refuse_subset(ctx, NULL, NULL, NULL);
}

/* Parses xml safely; NULL with *error_r. */
static xmlDocPtr
safe_parse(GBytes *xml, char **error_r)
{
	gsize len = 0;
	const char *data = g_bytes_get_data(xml, &len);
	if (len > WEB_PRETTY_MAX) {
		*error_r = g_strdup_printf("Device.xml is larger than %u bytes", WEB_PRETTY_MAX);
		return NULL;
	}
	devxml_global_init();
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	if (ctxt == NULL) {
		*error_r = g_strdup("xml: no memory");
		return NULL;
	}
	ctxt->sax->internalSubset = refuse_subset;
	ctxt->sax->externalSubset = refuse_subset;
	ctxt->sax->entityDecl = refuse_entity;
	xmlDocPtr doc = xmlCtxtReadMemory(ctxt, data, (int)len, "Device.xml", NULL,
					  XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
					      XML_PARSE_NOWARNING);
	bool refused = ctxt->_private != NULL;
	bool ok = doc != NULL && ctxt->wellFormed && !refused;
	xmlFreeParserCtxt(ctxt);
	if (!ok) {
		if (doc != NULL)
			xmlFreeDoc(doc);
		*error_r = g_strdup(refused ? "xml: DOCTYPE refused" : "xml: not well-formed");
		return NULL;
	}
	return doc;
}

char *
web_xml_pretty(GBytes *xml, size_t *len_r, char **error_r)
{
	xmlDocPtr doc = safe_parse(xml, error_r);
	xmlChar *out = NULL;
	int n = 0;
	if (doc == NULL)
		return NULL;
	xmlDocDumpFormatMemoryEnc(doc, &out, &n, "UTF-8", 1);
	xmlFreeDoc(doc);
	if (out == NULL) {
		*error_r = g_strdup("xml: cannot serialise");
		return NULL;
	}
	char *r = g_strndup((const char *)out, (gsize)n);
	xmlFree(out);
	*len_r = (size_t)n;
	return r;
}

/* ---- highlighted, indented HTML of the tree ---- */

static void
name_of(GString *out, const xmlNode *n)
{
	if (n->ns != NULL && n->ns->prefix != NULL)
		html(out, "<span class=\"xp\">%s:</span>", (const char *)n->ns->prefix);
	html(out, "%s", (const char *)n->name);
}

static void
indent(GString *out, unsigned depth)
{
	for (unsigned i = 0; i < depth; i++)
		g_string_append(out, "  ");
}

static bool
only_text(const xmlNode *n)
{
	for (const xmlNode *c = n->children; c != NULL; c = c->next)
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
			return false;
	return true;
}

static void
emit_node(GString *out, const xmlNode *n, unsigned depth)
{
	for (; n != NULL; n = n->next) {
		if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
			char *t = g_strstrip(g_strdup((const char *)n->content));
			if (*t != '\0') {
				indent(out, depth);
				html(out, "<span class=\"xt\">%s</span>\n", t);
			}
			g_free(t);
			continue;
		}
		if (n->type == XML_COMMENT_NODE) {
			indent(out, depth);
			html(out, "<span class=\"xc\">&lt;!--%s--&gt;</span>\n",
			     (const char *)n->content);
			continue;
		}
		if (n->type != XML_ELEMENT_NODE)
			continue;
		indent(out, depth);
		g_string_append(out, "<span class=\"xe\">&lt;");
		name_of(out, n);
		g_string_append(out, "</span>");
		for (const xmlNs *ns = n->nsDef; ns != NULL; ns = ns->next)
			html(
			    out,
			    " <span class=\"xa\">xmlns%R%s</span>=<span class=\"xv\">\"%s\"</span>",
			    ns->prefix != NULL ? ":" : "", (const char *)ns->prefix,
			    (const char *)ns->href);
		for (const xmlAttr *a = n->properties; a != NULL; a = a->next) {
			xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);
			html(out,
			     " <span class=\"xa\">%s%R%s</span>=<span class=\"xv\">\"%s\"</span>",
			     a->ns != NULL ? (const char *)a->ns->prefix : NULL,
			     a->ns != NULL && a->ns->prefix != NULL ? ":" : "",
			     (const char *)a->name, (const char *)v);
			xmlFree(v);
		}
		if (n->children == NULL) {
			g_string_append(out, "<span class=\"xe\">/&gt;</span>\n");
		} else if (only_text(n)) {
			xmlChar *v = xmlNodeGetContent(n);
			g_string_append(out, "<span class=\"xe\">&gt;</span>");
			html(out, "<span class=\"xt\">%s</span><span class=\"xe\">&lt;/",
			     (const char *)v);
			xmlFree(v);
			name_of(out, n);
			g_string_append(out, "&gt;</span>\n");
		} else {
			g_string_append(out, "<span class=\"xe\">&gt;</span>\n");
			emit_node(out, n->children, depth + 1);
			indent(out, depth);
			g_string_append(out, "<span class=\"xe\">&lt;/");
			name_of(out, n);
			g_string_append(out, "&gt;</span>\n");
		}
	}
}

int
web_xml_html(GString *out, GBytes *xml, char **error_r)
{
	xmlDocPtr doc = safe_parse(xml, error_r);
	if (doc == NULL)
		return -1;
	emit_node(out, xmlDocGetRootElement(doc), 0);
	xmlFreeDoc(doc);
	return 0;
}
