/* devxml.c: Device.xml (FutureSmart DeviceService, legacy XDM Device) ->
 * struct snapshot.  FORMAT.md describes both dialects.
 *
 * Security posture: the document comes from the network and is hostile until
 * proven otherwise.  libxml2 (2.9.14 on Debian 12) is driven as follows:
 *   1. The size is checked before anything is parsed (max_xml_size).
 *   2. Options: XML_PARSE_NONET only.  Never XML_PARSE_NOENT (entity
 *      substitution), XML_PARSE_DTDLOAD / DTDATTR / DTDVALID, XINCLUDE or
 *      HUGE, so libxml2's own limits (10 MB text node, depth 256) stay on.
 *   3. devxml_global_init() installs an external entity loader that refuses
 *      every URI: on 2.9.14 NONET does not stop file:// or relative paths.
 *   4. Any DOCTYPE is refused as soon as the parser reports it (SAX
 *      internalSubset/externalSubset, before an internal subset is read), so
 *      no entity or parameter entity is ever declared, let alone expanded
 *      (billion laughs, XXE, parameter-entity tricks).
 *   5. SAX callbacks wrap libxml2's tree builder and stop the parser when a
 *      limit is crossed: element depth (max_depth), element count
 *      (max_elements), text or attribute length (max_string_len).
 *   6. Success needs ALL of: no fatal error seen by the structured error
 *      handler, wellFormed, errNo, every xmlParseChunk return value, and a
 *      parser that reached the terminating call.  libxml2 2.9.14 truncates an
 *      oversized text node, stops, and still returns a tree; on an encoding
 *      conversion failure it halts and returns XML_ERR_INVALID_ENCODING with
 *      wellFormed and errNo untouched and no error reported (found by
 *      fuzzing).  Such a tree is never used.  Namespace errors
 *      (an undeclared prefix) are tolerated, since elements are matched by
 *      local name only.
 *   7. The push parser is fed in chunks, so the result cannot depend on where
 *      a network read happens to end (tests feed 1-byte chunks).
 * Errors are one line, "xml: ...", with control characters replaced.
 *
 * Extraction matches elements by LOCAL NAME only; prefixes and namespace URIs
 * are ignored (an undeclared prefix "a:B" counts as "B").  A value that is
 * not there stays NULL / SNAPSHOT_ABSENT: absent is not zero.  Strings are
 * UTF-8 (libxml2 converts declared encodings such as ISO-8859-1). */
#include "config.h"

#include "devxml/devxml.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "util/log.h"
#include "util/sktime.h"

#define DEVXML_DEFAULT_MAX_XML_SIZE (16u * 1024 * 1024)
#define DEVXML_DEFAULT_MAX_DEPTH 64
#define DEVXML_DEFAULT_MAX_STRING_LEN (64u * 1024)
#define DEVXML_DEFAULT_MAX_EVENTS 10000
#define DEVXML_DEFAULT_MAX_ELEMENTS 500000
#define DEVXML_DEFAULT_CHUNK (64u * 1024)
/* Longest libxml2 message quoted in an error line. */
#define DEVXML_MAX_ERROR_QUOTE 200

void
devxml_limits_default(struct devxml_limits *limits)
{
	limits->max_xml_size = DEVXML_DEFAULT_MAX_XML_SIZE;
	limits->max_depth = DEVXML_DEFAULT_MAX_DEPTH;
	limits->max_string_len = DEVXML_DEFAULT_MAX_STRING_LEN;
	limits->max_events = DEVXML_DEFAULT_MAX_EVENTS;
	limits->max_elements = DEVXML_DEFAULT_MAX_ELEMENTS;
}

/* ---- libxml2 set-up ---- */

static xmlParserInputPtr
refuse_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	return NULL;
}

static void
silent_generic_error(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static gpointer
global_init_once(gpointer data)
{
	(void)data;
	xmlInitParser();
	xmlSetExternalEntityLoader(refuse_entity_loader);
	/* Errors without a parser context would go to stderr; ours are
	 * collected per parse through the structured handler instead. */
	xmlSetGenericErrorFunc(NULL, silent_generic_error);
	xmlThrDefSetGenericErrorFunc(NULL, silent_generic_error);
	return NULL;
}

void
devxml_global_init(void)
{
	static GOnce once = G_ONCE_INIT;
	g_once(&once, global_init_once, NULL);
}

/* ---- the guarded push parse ---- */

struct parse_guard {
	const struct devxml_limits *limits;
	unsigned depth;
	size_t elements;
	size_t text_run; /* bytes of character data since the last tag */
	char *refusal;	 /* our own reason, first one wins */
	char *xml_error; /* first fatal libxml2 error, formatted */
	int xml_code;
	startElementNsSAX2Func start;
	endElementNsSAX2Func end;
	charactersSAXFunc characters;
	ignorableWhitespaceSAXFunc whitespace;
	cdataBlockSAXFunc cdata;
	startDocumentSAXFunc start_document;
};

/* Makes TEXT one printable line of at most DEVXML_MAX_ERROR_QUOTE bytes. */
static char *
one_line(const char *text)
{
	char *s = g_utf8_make_valid(text != NULL ? text : "", -1);
	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	g_strstrip(s);
	if (strlen(s) > DEVXML_MAX_ERROR_QUOTE) {
		const char *end = g_utf8_find_prev_char(s, s + DEVXML_MAX_ERROR_QUOTE + 1);
		s[end != NULL ? end - s : 0] = '\0';
	}
	return s;
}

static void G_GNUC_PRINTF(3, 4)
    guard_refuse(xmlParserCtxtPtr ctxt, struct parse_guard *g, const char *fmt, ...)
{
	va_list ap;
	if (g->refusal == NULL) {
		va_start(ap, fmt);
		g->refusal = g_strdup_vprintf(fmt, ap);
		va_end(ap);
	}
	xmlStopParser(ctxt);
}

static struct parse_guard *
guard_of(void *ctx)
{
	return ((xmlParserCtxtPtr)ctx)->_private;
}

static void
guard_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
	    int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
	    const xmlChar **attributes)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct parse_guard *g = guard_of(ctx);

	if (g->refusal != NULL)
		return;
	g->text_run = 0;
	if (g->depth >= g->limits->max_depth) {
		guard_refuse(ctxt, g, "xml: nesting deeper than %u elements at line %d",
			     g->limits->max_depth, xmlSAX2GetLineNumber(ctx));
		return;
	}
	if (++g->elements > g->limits->max_elements) {
		guard_refuse(ctxt, g, "xml: more than %zu elements", g->limits->max_elements);
		return;
	}
	/* attributes: (localname, prefix, URI, value, end) quintuples. */
	for (int i = 0; i < nb_attributes; i++) {
		const xmlChar *v = attributes[i * 5 + 3], *e = attributes[i * 5 + 4];
		if (v != NULL && e != NULL && (size_t)(e - v) > g->limits->max_string_len) {
			guard_refuse(ctxt, g, "xml: attribute longer than %zu bytes at line %d",
				     g->limits->max_string_len, xmlSAX2GetLineNumber(ctx));
			return;
		}
	}
	g->depth++;
	g->start(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
		 nb_defaulted, attributes);
}

static void
guard_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	struct parse_guard *g = guard_of(ctx);
	if (g->refusal != NULL)
		return;
	g->text_run = 0;
	if (g->depth > 0)
		g->depth--;
	g->end(ctx, localname, prefix, uri);
}

static bool
guard_text(void *ctx, int len)
{
	struct parse_guard *g = guard_of(ctx);
	if (g->refusal != NULL || len < 0)
		return false;
	g->text_run += (size_t)len;
	if (g->text_run > g->limits->max_string_len) {
		guard_refuse(ctx, g, "xml: text longer than %zu bytes at line %d",
			     g->limits->max_string_len, xmlSAX2GetLineNumber(ctx));
		return false;
	}
	return true;
}

static void
guard_characters(void *ctx, const xmlChar *ch, int len)
{
	if (guard_text(ctx, len))
		guard_of(ctx)->characters(ctx, ch, len);
}

static void
guard_whitespace(void *ctx, const xmlChar *ch, int len)
{
	if (guard_text(ctx, len))
		guard_of(ctx)->whitespace(ctx, ch, len);
}

static void
guard_cdata(void *ctx, const xmlChar *ch, int len)
{
	if (guard_text(ctx, len))
		guard_of(ctx)->cdata(ctx, ch, len);
}

/* Declared encodings we accept: stateless ones, which libxml2 decodes the
 * same however the input is chunked.  Stateful iconv encodings (UTF-7,
 * ISO-2022-*, HZ) give chunk-dependent results in 2.9.14 (found by
 * fuzzing); printers send UTF-8, sometimes ISO-8859-1 or UTF-16. */
static bool
encoding_accepted(const char *declared)
{
	static const char *const exact[] = {
	    "UTF8",   "UTF16",	 "UTF16LE", "UTF16BE", "ASCII",	   "USASCII", "LATIN1",
	    "LATIN2", "LATIN9",	 "EUCKR",   "EUCJP",   "SHIFTJIS", "SJIS",    "GB2312",
	    "GBK",    "GB18030", "BIG5",    "KOI8R",   "KOI8U",	   "CP949",   "UHC",
	};
	static const char *const prefixes[] = {"ISO8859", "WINDOWS125", "CP125"};
	GString *norm = g_string_new(NULL);
	bool ok = false;

	for (const char *p = declared; *p != '\0'; p++)
		if (*p != '-' && *p != '_' && *p != ' ')
			g_string_append_c(norm, g_ascii_toupper(*p));
	for (size_t i = 0; i < G_N_ELEMENTS(exact) && !ok; i++)
		ok = strcmp(norm->str, exact[i]) == 0;
	for (size_t i = 0; i < G_N_ELEMENTS(prefixes) && !ok; i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(norm->str, prefixes[i], n) == 0 && norm->str[n] != '\0') {
			ok = true;
			for (const char *d = norm->str + n; *d != '\0'; d++)
				ok = ok && g_ascii_isdigit(*d);
		}
	}
	g_string_free(norm, TRUE);
	return ok;
}

/* The encoding the XML declaration named, or NULL (UTF-8 or detected). */
static const char *
declared_encoding(xmlParserCtxtPtr ctxt)
{
	if (ctxt->input != NULL && ctxt->input->encoding != NULL)
		return (const char *)ctxt->input->encoding;
	return (const char *)ctxt->encoding;
}

static char *
encoding_refusal(xmlParserCtxtPtr ctxt)
{
	const char *enc = declared_encoding(ctxt);
	char *name, *reason;
	if (enc == NULL || encoding_accepted(enc))
		return NULL;
	name = one_line(enc);
	reason = g_strdup_printf("xml: encoding '%s' not accepted", name);
	g_free(name);
	return reason;
}

static void
guard_start_document(void *ctx)
{
	struct parse_guard *g = guard_of(ctx);
	char *refusal = encoding_refusal(ctx);
	if (refusal != NULL) {
		guard_refuse(ctx, g, "%s", refusal);
		g_free(refusal);
		return;
	}
	g->start_document(ctx);
}

static void
guard_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	(void)name;
	(void)external_id;
	(void)system_id;
	guard_refuse(ctx, guard_of(ctx), "xml: DOCTYPE refused");
}

static void
guard_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
		  const xmlChar *system_id, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)public_id;
	(void)system_id;
	(void)content;
	guard_refuse(ctx, guard_of(ctx), "xml: DOCTYPE refused");
}

static void
guard_error(void *ctx, xmlErrorPtr err)
{
	struct parse_guard *g = guard_of(ctx);
	char *msg;

	if (err == NULL || err->level < XML_ERR_ERROR || g->xml_error != NULL)
		return;
	if (err->domain == XML_FROM_NAMESPACE)
		return; /* undeclared prefixes: we match local names anyway */
	msg = one_line(err->message);
	g->xml_code = err->code;
	switch (err->code) {
	case XML_ERR_DOCUMENT_EMPTY:
		/* libxml2's word for "no root element": also non-XML text. */
		g->xml_error = g_strdup_printf("xml: not XML or empty (no root element) at line %d",
					       err->line);
		break;
	case XML_ERR_TAG_NOT_FINISHED:
	case XML_ERR_DOCUMENT_END:
	case XML_ERR_LTSLASH_REQUIRED:
	case XML_ERR_GT_REQUIRED:
		g->xml_error = g_strdup_printf(
		    "xml: truncated or malformed document at line %d (%s)", err->line, msg);
		break;
	case XML_ERR_INVALID_CHAR:
	case XML_ERR_INVALID_ENCODING:
		g->xml_error =
		    g_strdup_printf("xml: invalid character data at line %d (%s)", err->line, msg);
		break;
	default:
		g->xml_error = g_strdup_printf("xml: %s at line %d", msg, err->line);
		break;
	}
	g_free(msg);
}

/* xmlParseChunk returns ctxt->errNo; namespace errors (an undeclared
 * prefix) leave the document usable, since we match local names only. */
static bool
rc_tolerable(int rc)
{
	return rc == XML_ERR_OK || (rc >= XML_NS_ERR_XML_NAMESPACE && rc <= XML_NS_ERR_COLON);
}

/* Feeds the document to a guarded push parser.  Returns the tree (caller
 * xmlFreeDoc's it) or NULL with *error_r set. */
static xmlDocPtr
parse_tree(const char *xml, size_t len, size_t chunk_size, const struct devxml_limits *limits,
	   char **error_r)
{
	xmlSAXHandler sax;
	struct parse_guard g;
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc = NULL;
	size_t off = 0;
	int rc = 0;
	bool terminated = false;
	char *encoding;

	memset(&g, 0, sizeof(g));
	g.limits = limits;
	memset(&sax, 0, sizeof(sax));
	xmlSAXVersion(&sax, 2);
	g.start = sax.startElementNs;
	g.end = sax.endElementNs;
	g.characters = sax.characters;
	g.whitespace = sax.ignorableWhitespace;
	g.cdata = sax.cdataBlock;
	g.start_document = sax.startDocument;
	sax.startDocument = guard_start_document;
	sax.startElementNs = guard_start;
	sax.endElementNs = guard_end;
	sax.characters = guard_characters;
	sax.ignorableWhitespace = guard_whitespace;
	sax.cdataBlock = guard_cdata;
	sax.internalSubset = guard_doctype;
	sax.externalSubset = guard_doctype;
	sax.entityDecl = guard_entity_decl;
	sax.comment = NULL; /* comments and PIs are not kept */
	sax.processingInstruction = NULL;
	sax.serror = guard_error;
	sax.error = NULL;
	sax.warning = NULL;

	ctxt = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, "Device.xml");
	if (ctxt == NULL) {
		*error_r = g_strdup("xml: cannot create parser");
		return NULL;
	}
	ctxt->_private = &g;
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET);

	/* Stop at the first sign of trouble: our refusal, a fatal error seen by
	 * the handler, a non-zero return (other than a namespace error), or a
	 * parser that halted by itself (instate EOF before the end). */
	while (off < len) {
		size_t n = MIN(chunk_size, len - off);
		rc = xmlParseChunk(ctxt, xml + off, (int)n, 0);
		off += n;
		if (g.refusal != NULL || g.xml_error != NULL || !rc_tolerable(rc) ||
		    ctxt->instate == XML_PARSER_EOF)
			break;
	}
	if (g.refusal == NULL && g.xml_error == NULL && rc_tolerable(rc) &&
	    ctxt->instate != XML_PARSER_EOF) {
		rc = xmlParseChunk(ctxt, NULL, 0, 1);
		terminated = true;
	}

	/* Checked again here: a parser that halted early never reached
	 * startDocument in some chunkings. */
	encoding = encoding_refusal(ctxt);
	if (encoding != NULL) {
		*error_r = encoding;
	} else if (g.refusal != NULL) {
		*error_r = g.refusal;
		g.refusal = NULL;
	} else if (g.xml_error != NULL) {
		*error_r = g.xml_error;
		g.xml_error = NULL;
	} else if (!rc_tolerable(rc) || !rc_tolerable(ctxt->errNo) || !ctxt->wellFormed ||
		   !terminated) {
		/* Errors that bypass the handler: libxml2 2.9.14 halts on an
		 * encoding conversion failure and returns XML_ERR_INVALID_ENCODING
		 * (or sets errNo to -1) with wellFormed still 1. */
		int code = !rc_tolerable(rc) ? rc : ctxt->errNo;
		if (code == XML_ERR_INVALID_ENCODING || code == -1)
			*error_r =
			    g_strdup("xml: invalid character data (not valid in the declared "
				     "encoding)");
		else
			*error_r = g_strdup_printf("xml: parser stopped (libxml2 error %d)", code);
	} else if (ctxt->myDoc == NULL || xmlDocGetRootElement(ctxt->myDoc) == NULL) {
		*error_r = g_strdup("xml: empty document");
	} else {
		doc = ctxt->myDoc;
		ctxt->myDoc = NULL;
	}
	if (ctxt->myDoc != NULL) {
		xmlFreeDoc(ctxt->myDoc);
		ctxt->myDoc = NULL;
	}
	ctxt->_private = NULL;
	xmlFreeParserCtxt(ctxt);
	g_free(g.refusal);
	g_free(g.xml_error);
	return doc;
}

/* ---- tree helpers: local names only ---- */

static const char *
lname(const xmlNode *n)
{
	const char *name = (const char *)n->name;
	const char *colon = strrchr(name, ':'); /* undeclared prefix kept in the name */
	return colon != NULL ? colon + 1 : name;
}

static bool
is_el(const xmlNode *n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && strcmp(lname(n), name) == 0;
}

static xmlNode *
first_child(const xmlNode *n, const char *name)
{
	if (n == NULL)
		return NULL;
	for (xmlNode *c = n->children; c != NULL; c = c->next)
		if (is_el(c, name))
			return c;
	return NULL;
}

static xmlNode *
next_named(const xmlNode *n, const char *name)
{
	for (xmlNode *c = n->next; c != NULL; c = c->next)
		if (is_el(c, name))
			return c;
	return NULL;
}

#define FOR_CHILDREN(var, parent, name)                                                            \
	for (xmlNode *var = first_child((parent), (name)); var != NULL;                            \
	     var = next_named(var, (name)))

/* First element named NAME below N (depth first, document order). */
static xmlNode *
find_desc(const xmlNode *n, const char *name)
{
	if (n == NULL)
		return NULL;
	for (xmlNode *c = n->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is_el(c, name))
			return c;
		xmlNode *d = find_desc(c, name);
		if (d != NULL)
			return d;
	}
	return NULL;
}

/* All elements named NAME below N, not looking inside a match. */
static void
collect_desc(const xmlNode *n, const char *name, GPtrArray *out)
{
	if (n == NULL)
		return;
	for (xmlNode *c = n->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is_el(c, name))
			g_ptr_array_add(out, c);
		else
			collect_desc(c, name, out);
	}
}

/* Trimmed text content of N, g_strdup'd; NULL when absent or empty. */
static char *
text_of(const xmlNode *n)
{
	xmlChar *content;
	char *s;
	if (n == NULL)
		return NULL;
	content = xmlNodeGetContent(n);
	if (content == NULL)
		return NULL;
	s = g_strdup((const char *)content);
	xmlFree(content);
	g_strstrip(s);
	if (*s == '\0') {
		g_free(s);
		return NULL;
	}
	return s;
}

static char *
child_text(const xmlNode *n, const char *name)
{
	return text_of(first_child(n, name));
}

/* Value of the attribute with local name NAME, g_strdup'd, or NULL. */
static char *
attr_of(const xmlNode *n, const char *name)
{
	if (n == NULL)
		return NULL;
	for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
		if (strcmp((const char *)a->name, name) != 0)
			continue;
		xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);
		char *s = g_strdup(v != NULL ? (const char *)v : "");
		xmlFree(v);
		g_strstrip(s);
		return s;
	}
	return NULL;
}

/* Stores TEXT into *field unless it is already set (first value wins). */
static void
take(char **field, char *text)
{
	if (*field == NULL)
		*field = text;
	else
		g_free(text);
}

/* ---- numbers ---- */

static bool
parse_int(const char *text, int64_t *out_r)
{
	gint64 v;
	if (text == NULL)
		return false;
	if (!g_ascii_string_to_signed(text, 10, G_MININT64 + 1, G_MAXINT64, &v, NULL))
		return false;
	*out_r = v;
	return true;
}

/* An integer or a decimal/exponent number; value truncated toward zero. */
static bool
parse_number(const char *text, int64_t *value_r, double *real_r)
{
	char *end = NULL;
	double d;
	if (text == NULL)
		return false;
	if (parse_int(text, value_r)) {
		*real_r = (double)*value_r;
		return true;
	}
	d = g_ascii_strtod(text, &end);
	if (end == text || *end != '\0' || !isfinite(d) || fabs(d) >= 9.2e18)
		return false;
	*value_r = (int64_t)d;
	*real_r = d;
	return true;
}

/* FixedPointNumber: Significand x 10^Exponent (Exponent absent = 0). */
static bool
parse_fixed_point(const xmlNode *fpn, int64_t *value_r, double *real_r)
{
	char *sig_text = child_text(fpn, "Significand");
	char *exp_text = child_text(fpn, "Exponent");
	int64_t sig, exp = 0, pow10 = 1;
	bool ok = false;

	if (!parse_int(sig_text, &sig))
		goto out;
	if (exp_text != NULL && !parse_int(exp_text, &exp))
		goto out;
	if (exp < -18 || exp > 18)
		goto out;
	for (int64_t i = 0; i < (exp < 0 ? -exp : exp); i++)
		pow10 *= 10;
	if (exp >= 0) {
		int64_t v;
		if (__builtin_mul_overflow(sig, pow10, &v))
			goto out;
		*value_r = v;
		*real_r = (double)v;
	} else {
		*value_r = sig / pow10; /* C division truncates toward zero */
		*real_r = sig % pow10 == 0 ? (double)*value_r : (double)sig / (double)pow10;
	}
	ok = true;
out:
	g_free(sig_text);
	g_free(exp_text);
	return ok;
}

/* A counter's value: FixedPointNumber, else ValueFloat / Value / own text. */
static bool
counter_value(const xmlNode *n, int64_t *value_r, double *real_r)
{
	xmlNode *fpn = first_child(n, "FixedPointNumber");
	char *text;
	bool ok;
	if (fpn != NULL)
		return parse_fixed_point(fpn, value_r, real_r);
	if (first_child(n, "ValueFloat") != NULL)
		text = child_text(n, "ValueFloat");
	else if (first_child(n, "Value") != NULL)
		text = child_text(n, "Value");
	else if (n->children != NULL && n->children->type == XML_TEXT_NODE &&
		 n->children->next == NULL)
		text = text_of(n);
	else
		text = NULL;
	ok = parse_number(text, value_r, real_r);
	g_free(text);
	return ok;
}

/* Integer from an element's text (decimals truncated); SNAPSHOT_ABSENT. */
static int64_t
int_of(const xmlNode *n)
{
	int64_t v;
	double real;
	if (n == NULL)
		return SNAPSHOT_ABSENT;
	if (first_child(n, "FixedPointNumber") != NULL || first_child(n, "ValueFloat") != NULL)
		return counter_value(n, &v, &real) ? v : SNAPSHOT_ABSENT;
	char *text = text_of(n);
	bool ok = parse_number(text, &v, &real);
	g_free(text);
	return ok ? v : SNAPSHOT_ABSENT;
}

/* ---- counters ---- */

struct counter_set {
	GPtrArray *arr;	     /* owned by the snapshot */
	GHashTable *by_name; /* name -> struct snapshot_counter * */
};

static struct snapshot_counter *
set_lookup(struct counter_set *set, const char *name)
{
	return g_hash_table_lookup(set->by_name, name);
}

static struct snapshot_counter *
set_add(struct counter_set *set, const char *name, int64_t value, double real)
{
	struct snapshot_counter *c = snapshot_counter_new(name, NULL, value, real);
	g_ptr_array_add(set->arr, c);
	g_hash_table_insert(set->by_name, c->name, c);
	return c;
}

/* Device total NAME += value (the media-size sums). */
static void
set_sum(struct counter_set *set, const char *name, int64_t value, double real)
{
	struct snapshot_counter *c = set_lookup(set, name);
	if (c == NULL) {
		set_add(set, name, value, real);
		return;
	}
	if (__builtin_add_overflow(c->value, value, &c->value)) {
		log_warnx("devxml: event=counter-overflow counter=%s", name);
		c->value = G_MAXINT64;
	}
	c->value_real += real;
}

/* Device total NAME = value unless already reported. */
static void
set_fill(struct counter_set *set, const char *name, int64_t value, double real)
{
	if (set_lookup(set, name) == NULL)
		set_add(set, name, value, real);
}

/* A sum of fractional values: value is the sum, truncated toward zero. */
static void
set_finish(struct counter_set *set)
{
	for (guint i = 0; i < set->arr->len; i++) {
		struct snapshot_counter *c = g_ptr_array_index(set->arr, i);
		if (c->value_real != (double)c->value && fabs(c->value_real) < 9.0e15)
			c->value = (int64_t)c->value_real;
	}
}

/* Name and value of one Counter element; false when unusable. */
static bool
read_counter(const xmlNode *n, char **name_r, int64_t *value_r, double *real_r)
{
	char *name = child_text(n, "CounterName");
	if (name == NULL)
		return false;
	if (!counter_value(n, value_r, real_r)) {
		log_debug("devxml: event=counter-unreadable counter=%s", name);
		g_free(name);
		return false;
	}
	*name_r = name;
	return true;
}

/* One CounterGroup per media size: its counters into media_counters and
 * summed into the device totals. */
static void
media_group(struct snapshot *snap, struct counter_set *totals, const xmlNode *group)
{
	char *size = child_text(group, "MediaSizeID");
	GPtrArray *counters = g_ptr_array_new();
	GPtrArray *local = g_ptr_array_new();
	struct snapshot_counter *mono = NULL, *color = NULL, *total = NULL;

	if (size == NULL)
		size = g_strdup("unknown");
	collect_desc(group, "Counter", counters);
	for (guint i = 0; i < counters->len; i++) {
		char *name;
		int64_t v;
		double real;
		bool dup = false;
		if (!read_counter(g_ptr_array_index(counters, i), &name, &v, &real))
			continue;
		for (guint j = 0; j < local->len && !dup; j++)
			dup = strcmp(((struct snapshot_counter *)g_ptr_array_index(local, j))->name,
				     name) == 0;
		if (!dup)
			g_ptr_array_add(local, snapshot_counter_new(name, size, v, real));
		g_free(name);
	}
	for (guint j = 0; j < local->len; j++) {
		struct snapshot_counter *c = g_ptr_array_index(local, j);
		if (strcmp(c->name, "MonochromeImpressions") == 0)
			mono = c;
		else if (strcmp(c->name, "ColorImpressions") == 0)
			color = c;
		else if (strcmp(c->name, "TotalImpressions") == 0)
			total = c;
	}
	if (total == NULL && mono != NULL && color != NULL) {
		int64_t v;
		if (!__builtin_add_overflow(mono->value, color->value, &v))
			g_ptr_array_add(local,
					snapshot_counter_new("TotalImpressions", size, v,
							     mono->value_real + color->value_real));
	}
	for (guint j = 0; j < local->len; j++) {
		struct snapshot_counter *c = g_ptr_array_index(local, j);
		set_sum(totals, c->name, c->value, c->value_real);
		g_ptr_array_add(snap->media_counters, c);
	}
	g_ptr_array_free(local, TRUE);
	g_ptr_array_free(counters, TRUE);
	g_free(size);
}

static bool
is_media_group(const xmlNode *n)
{
	return is_el(n, "CounterGroup") && first_child(n, "MediaSizeID") != NULL;
}

/* Pass 1: every media-size group anywhere below N. */
static void
printer_media(struct snapshot *snap, struct counter_set *totals, const xmlNode *n)
{
	for (xmlNode *c = n->children; c != NULL; c = c->next) {
		if (is_media_group(c))
			media_group(snap, totals, c);
		else if (is_el(c, "CounterGroup"))
			printer_media(snap, totals, c);
	}
}

/* Pass 2: counters outside media-size groups, as device totals under their
 * own names, never overriding a media-size sum.  PREFIX renames (Copy, Fax). */
static void
plain_counters(struct counter_set *totals, const xmlNode *n, const char *prefix)
{
	for (xmlNode *c = n->children; c != NULL; c = c->next) {
		char *name;
		int64_t v;
		double real;
		if (c->type != XML_ELEMENT_NODE || is_media_group(c))
			continue;
		if (!is_el(c, "Counter")) {
			plain_counters(totals, c, prefix);
			continue;
		}
		if (!read_counter(c, &name, &v, &real))
			continue;
		if (prefix != NULL) {
			char *renamed = strcmp(name, "TotalImpressions") == 0
					    ? g_strconcat(prefix, "Impressions", NULL)
					    : g_strconcat(prefix, name, NULL);
			g_free(name);
			name = renamed;
		}
		set_fill(totals, name, v, real);
		g_free(name);
	}
}

/* ---- events ---- */

/* Refuses one entry more than max_events: 0 or -1 with *error_r. */
static int
event_room(const struct snapshot *snap, const struct devxml_limits *limits, char **error_r)
{
	if (snap->events->len >= limits->max_events) {
		*error_r = g_strdup_printf("xml: more than %u event entries", limits->max_events);
		return -1;
	}
	return 0;
}

static void
event_time(struct snapshot_event *e, const xmlNode *entry)
{
	char *ts = child_text(entry, "TimeStamp");
	char utc[SK_UTC_SIZE];
	int offset = 0, has_offset = 0;
	if (ts != NULL && sk_time_parse_iso8601(ts, utc, NULL, &offset, &has_offset) == 0) {
		e->occurred_utc = g_strdup(utc);
		e->occurred_offset_min = offset;
	}
	g_free(ts);
}

/* Page count at the event: a Counter named TotalImpressions (or unnamed). */
static void
event_page_count(struct snapshot_event *e, const xmlNode *entry)
{
	FOR_CHILDREN(c, entry, "Counter")
	{
		char *name = child_text(c, "CounterName");
		int64_t v;
		double real;
		bool fits = name == NULL || strcmp(name, "TotalImpressions") == 0;
		g_free(name);
		if (fits && counter_value(c, &v, &real)) {
			e->page_count = v;
			return;
		}
	}
}

static char *
payload_json(const xmlNode *payload)
{
	JsonBuilder *b;
	JsonNode *root;
	char *text;
	unsigned n = 0;

	if (payload == NULL)
		return NULL;
	b = json_builder_new();
	json_builder_begin_object(b);
	FOR_CHILDREN(kv, payload, "KeyValuePair")
	{
		char *key = child_text(kv, "Key");
		char *value;
		if (key == NULL)
			continue;
		value = child_text(kv, "ValueString");
		if (value == NULL)
			value = child_text(kv, "Value");
		json_builder_set_member_name(b, key);
		if (value != NULL)
			json_builder_add_string_value(b, value);
		else
			json_builder_add_null_value(b);
		n++;
		g_free(key);
		g_free(value);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	text = n > 0 ? json_to_string(root, FALSE) : NULL;
	json_node_unref(root);
	g_object_unref(b);
	return text;
}

/* ---- supplies ---- */

static const char *
color_from_label(const char *label)
{
	static const struct {
		const char *label, *color;
	} map[] = {{"K", "black"}, {"C", "cyan"}, {"M", "magenta"}, {"Y", "yellow"}};
	if (label == NULL)
		return NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
		if (g_ascii_strcasecmp(label, map[i].label) == 0)
			return map[i].color;
	return NULL;
}

static const char *
color_from_id(const char *id)
{
	static const char *const colors[] = {"black", "cyan", "magenta", "yellow"};
	for (size_t i = 0; i < G_N_ELEMENTS(colors); i++)
		if (g_ascii_strncasecmp(id, colors[i], strlen(colors[i])) == 0)
			return colors[i];
	return NULL;
}

/* Gives the supply a key unique within the snapshot: the base, then base-2,
 * base-3 ... in document order, so it is stable across snapshots. */
static void
supply_key(struct snapshot *snap, struct snapshot_supply *s, const char *base)
{
	char *key = g_strdup(base);
	for (unsigned n = 2;; n++) {
		bool used = false;
		for (guint i = 0; i < snap->supplies->len && !used; i++)
			used = g_strcmp0(
				   ((struct snapshot_supply *)g_ptr_array_index(snap->supplies, i))
				       ->key,
				   key) == 0;
		if (!used)
			break;
		g_free(key);
		key = g_strdup_printf("%s-%u", base, n);
	}
	s->key = key;
}

/* "iBlackToner" -> "blackToner", "iSystem" -> "system"; g_strdup'd. */
static char *
normalise_id(const char *id)
{
	if (id == NULL)
		return NULL;
	if (id[0] == 'i' && g_ascii_isupper(id[1])) {
		char *s = g_strdup(id + 1);
		s[0] = g_ascii_tolower(s[0]);
		return s;
	}
	return g_strdup(id);
}

/* ---- FutureSmart ---- */

static void
fs_supply(struct snapshot *snap, const xmlNode *info)
{
	struct snapshot_supply *s = snapshot_supply_new();
	xmlNode *life = first_child(info, "ConsumableLifeState");
	const char *base;

	s->label = child_text(info, "ConsumableLabelCode");
	s->color = child_text(info, "MarkerColor");
	if (s->color != NULL) {
		char *lower = g_utf8_strdown(s->color, -1);
		g_free(s->color);
		s->color = lower;
	} else {
		s->color = g_strdup(color_from_label(s->label));
	}
	s->type = child_text(info, "ConsumableTypeEnum");
	s->description = child_text(info, "Description");
	take(&s->description, child_text(info, "ConsumableDescription"));
	s->product_number = child_text(info, "ProductNumber");
	s->serial = child_text(info, "SerialNumber");
	s->state = child_text(life, "ConsumableState");
	take(&s->state, child_text(info, "ConsumableState"));
	s->brand = child_text(life, "Brand");
	take(&s->brand, child_text(info, "Brand"));
	s->installed_date = child_text(first_child(info, "Installation"), "Date");
	s->level_percent = int_of(first_child(info, "ConsumablePercentageLevelRemaining"));
	s->low_threshold = int_of(first_child(info, "ConsumableLowThreshold"));
	s->pages = int_of(first_child(info, "TotalImpressions"));
	base = s->label != NULL ? s->label : s->type != NULL ? s->type : "supply";
	supply_key(snap, s, base);
	g_ptr_array_add(snap->supplies, s);
}

static int
fs_log(struct snapshot *snap, const struct devxml_limits *limits, const xmlNode *log,
       char **error_r)
{
	char *type = child_text(log, "Type");
	GPtrArray *entries = g_ptr_array_new();
	int ret = 0;

	FOR_CHILDREN(list, log, "Entries")
	{
		FOR_CHILDREN(entry, list, "Entry")
		{
			g_ptr_array_add(entries, entry);
		}
	}
	FOR_CHILDREN(entry, log, "Entry")
	{
		g_ptr_array_add(entries, entry);
	}

	for (guint i = 0; i < entries->len; i++) {
		const xmlNode *entry = g_ptr_array_index(entries, i);
		struct snapshot_event *e;
		int64_t seq;
		if (event_room(snap, limits, error_r) < 0) {
			ret = -1;
			break;
		}
		e = snapshot_event_new();
		g_ptr_array_add(snap->events, e);
		e->log = g_strdup(type != NULL ? type : "unknown");
		char *seq_text = child_text(entry, "SequenceNumber");
		if (parse_int(seq_text, &seq))
			e->sequence = seq;
		g_free(seq_text);
		e->code = child_text(entry, "EventCode");
		event_time(e, entry);
		e->description = child_text(entry, "Description");
		event_page_count(e, entry);
		e->payload_json = payload_json(first_child(entry, "Payload"));
	}
	g_ptr_array_free(entries, TRUE);
	g_free(type);
	return ret;
}

static int
parse_futuresmart(struct snapshot *snap, const xmlNode *root, const struct devxml_limits *limits,
		  char **error_r)
{
	xmlNode *ident = find_desc(root, "DeviceIdentification");
	xmlNode *info = find_desc(root, "DeviceInformation");
	xmlNode *usage = find_desc(root, "DeviceUsageService");
	GPtrArray *list;
	int ret = 0;

	snap->dialect = SNAPSHOT_DIALECT_FUTURESMART;

	snap->serial = child_text(ident, "SerialNumber");
	take(&snap->serial, child_text(info, "SerialNumber"));
	snap->product_number = child_text(ident, "ProductNumber");
	take(&snap->product_number, child_text(info, "ProductNumber"));
	snap->model = child_text(ident, "MakeAndModel");
	take(&snap->model, child_text(ident, "Description"));
	snap->firmware = child_text(first_child(ident, "Version"), "Revision");
	snap->firmware_date = child_text(first_child(ident, "Version"), "Date");
	snap->device_uuid = child_text(ident, "DeviceID");
	take(&snap->device_uuid, child_text(info, "DeviceID"));
	snap->hostname = child_text(info, "HostName");
	snap->ip_address = child_text(info, "IPAddress");
	snap->mac_address = child_text(info, "HardwareAddress");
	snap->locale = child_text(info, "Locale");

	/* Counters. */
	if (usage != NULL) {
		struct counter_set totals = {
		    .arr = snap->counters,
		    .by_name = g_hash_table_new(g_str_hash, g_str_equal),
		};
		FOR_CHILDREN(sub, usage, "PrinterSubunit")
		{
			printer_media(snap, &totals, sub);
		}
		for (xmlNode *sub = usage->children; sub != NULL; sub = sub->next) {
			if (is_el(sub, "PrinterSubunit") || is_el(sub, "ScannerEngineSubunit"))
				plain_counters(&totals, sub, NULL);
			else if (is_el(sub, "CopyApplicationSubunit"))
				plain_counters(&totals, sub, "Copy");
			else if (is_el(sub, "FaxApplicationSubunit"))
				plain_counters(&totals, sub, "Fax");
		}
		set_finish(&totals);
		g_hash_table_destroy(totals.by_name);
	}

	/* Supplies. */
	list = g_ptr_array_new();
	collect_desc(root, "ConsumableInfo", list);
	for (guint i = 0; i < list->len; i++)
		fs_supply(snap, g_ptr_array_index(list, i));
	g_ptr_array_set_size(list, 0);

	/* Event logs. */
	collect_desc(root, "Log", list);
	for (guint i = 0; i < list->len && ret == 0; i++)
		ret = fs_log(snap, limits, g_ptr_array_index(list, i), error_r);
	g_ptr_array_free(list, TRUE);
	return ret;
}

/* ---- legacy XDM ---- */

static const char *
legacy_type(const char *id)
{
	char *lower = g_ascii_strdown(id, -1);
	const char *type = NULL;
	if (g_str_has_suffix(lower, "toner"))
		type = "tonerCartridge";
	else if (g_str_has_suffix(lower, "drum"))
		type = "imageDrum";
	else if (strstr(lower, "maintenance") != NULL || strstr(lower, "fuser") != NULL ||
		 g_str_has_suffix(lower, "kit"))
		type = "maintenanceKit";
	g_free(lower);
	return type;
}

static void
legacy_supply(struct snapshot *snap, const xmlNode *comp, GHashTable *levels)
{
	struct snapshot_supply *s = snapshot_supply_new();
	char *raw_id = attr_of(comp, "id");
	char *id = normalise_id(raw_id);
	GPtrArray *caps = g_ptr_array_new();

	if (id == NULL || *id == '\0') {
		g_free(id);
		id = g_strdup("supply");
	}
	s->label = g_strdup(id);
	s->color = g_strdup(color_from_id(id));
	s->type = g_strdup(legacy_type(id));
	s->description = child_text(comp, "Description");
	s->product_number = child_text(comp, "ProductNumber");
	s->serial = child_text(comp, "SerialNumber");
	s->installed_date = child_text(first_child(comp, "Installation"), "Date");
	collect_desc(comp, "Capacity", caps);
	for (guint i = 0; i < caps->len && s->level_percent == SNAPSHOT_ABSENT; i++) {
		char *cap_id = attr_of(g_ptr_array_index(caps, i), "id");
		const xmlNode *coll = cap_id != NULL ? g_hash_table_lookup(levels, cap_id) : NULL;
		if (coll != NULL)
			s->level_percent = int_of(first_child(coll, "Level"));
		g_free(cap_id);
	}
	supply_key(snap, s, id);
	g_ptr_array_add(snap->supplies, s);
	g_ptr_array_free(caps, TRUE);
	g_free(raw_id);
	g_free(id);
}

/* Data/DataItem children: TotalImpressions by ChromaticMode, others under
 * their element name.  For a supply's DataItem, TotalImpressions = pages. */
static void
legacy_data_item(struct snapshot *snap, struct counter_set *totals, const xmlNode *item,
		 const char *id)
{
	bool system = strcmp(id, "system") == 0;
	struct snapshot_supply *supply = NULL;

	if (!system) {
		for (guint i = 0; i < snap->supplies->len && supply == NULL; i++) {
			struct snapshot_supply *s = g_ptr_array_index(snap->supplies, i);
			if (g_strcmp0(s->label, id) == 0)
				supply = s;
		}
		if (supply == NULL)
			return;
	}
	for (xmlNode *c = item->children; c != NULL; c = c->next) {
		const char *name;
		char *mode;
		int64_t v;
		double real;
		if (c->type != XML_ELEMENT_NODE || first_child(c, "ValueFloat") == NULL)
			continue;
		if (!counter_value(c, &v, &real))
			continue;
		name = lname(c);
		mode = child_text(c, "ChromaticMode");
		if (!system) {
			if (strcmp(name, "TotalImpressions") == 0 && mode == NULL &&
			    supply->pages == SNAPSHOT_ABSENT)
				supply->pages = v;
		} else if (mode == NULL) {
			set_fill(totals, name, v, real);
		} else if (strcmp(name, "TotalImpressions") == 0) {
			if (g_ascii_strcasecmp(mode, "monochrome") == 0)
				set_fill(totals, "MonochromeImpressions", v, real);
			else if (g_ascii_strcasecmp(mode, "color") == 0)
				set_fill(totals, "ColorImpressions", v, real);
		}
		/* Other items qualified by a ChromaticMode have no agreed name. */
		g_free(mode);
	}
}

static int
legacy_logs(struct snapshot *snap, const xmlNode *root, const struct devxml_limits *limits,
	    char **error_r)
{
	GPtrArray *logs = g_ptr_array_new();
	int ret = 0;

	collect_desc(first_child(root, "Logs"), "Log", logs);
	for (guint i = 0; i < logs->len && ret == 0; i++) {
		const xmlNode *log = g_ptr_array_index(logs, i);
		char *raw = attr_of(log, "idRef");
		char *name = normalise_id(raw);
		if (name == NULL || *name == '\0') {
			g_free(name);
			name = g_strdup("unknown");
		}
		FOR_CHILDREN(ev, log, "Event")
		{
			struct snapshot_event *e;
			char *seq_text;
			int64_t seq;
			if (event_room(snap, limits, error_r) < 0) {
				ret = -1;
				break;
			}
			e = snapshot_event_new();
			g_ptr_array_add(snap->events, e);
			seq_text = child_text(ev, "SequenceNumber");
			e->log = g_strdup(name);
			if (parse_int(seq_text, &seq))
				e->sequence = seq;
			g_free(seq_text);
			e->code = child_text(ev, "EventCode");
			event_time(e, ev);
			e->description = child_text(ev, "Description");
			event_page_count(e, ev);
			e->payload_json = payload_json(first_child(ev, "Payload"));
		}
		g_free(raw);
		g_free(name);
	}
	g_ptr_array_free(logs, TRUE);
	return ret;
}

static void
legacy_ip_from_uri(struct snapshot *snap, const xmlNode *root)
{
	char *uri_text = child_text(first_child(root, "BSIService"), "LocationURI");
	GUri *uri;
	if (uri_text == NULL)
		return;
	uri = g_uri_parse(uri_text, G_URI_FLAGS_NONE, NULL);
	if (uri != NULL) {
		const char *host = g_uri_get_host(uri);
		if (host != NULL && g_hostname_is_ip_address(host))
			snap->ip_address = g_strdup(host);
		g_uri_unref(uri);
	}
	g_free(uri_text);
}

static int
parse_legacy(struct snapshot *snap, const xmlNode *root, const struct devxml_limits *limits,
	     char **error_r)
{
	xmlNode *info = first_child(root, "Information");
	GPtrArray *list = g_ptr_array_new();
	GHashTable *levels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	struct counter_set totals = {
	    .arr = snap->counters,
	    .by_name = g_hash_table_new(g_str_hash, g_str_equal),
	};
	int ret;

	snap->dialect = SNAPSHOT_DIALECT_LEGACY;

	/* Status collections by idRef, for supply levels. */
	collect_desc(first_child(root, "Status"), "StatusCollection", list);
	for (guint i = 0; i < list->len; i++) {
		char *ref = attr_of(g_ptr_array_index(list, i), "idRef");
		if (ref != NULL && !g_hash_table_contains(levels, ref))
			g_hash_table_insert(levels, ref, g_ptr_array_index(list, i));
		else
			g_free(ref);
	}
	g_ptr_array_set_size(list, 0);

	collect_desc(info, "Component", list);
	for (guint i = 0; i < list->len; i++) {
		const xmlNode *comp = g_ptr_array_index(list, i);
		char *ctype = attr_of(comp, "componentType");
		char *raw_id = attr_of(comp, "id");
		char *id = normalise_id(raw_id);
		if (g_strcmp0(ctype, "system") == 0 ||
		    (ctype == NULL && g_strcmp0(id, "system") == 0)) {
			if (snap->serial == NULL) {
				snap->serial = child_text(comp, "SerialNumber");
				snap->product_number = child_text(comp, "ProductNumber");
				snap->model = child_text(comp, "MakeAndModel");
				snap->firmware =
				    child_text(first_child(comp, "Version"), "Revision");
				snap->firmware_date =
				    child_text(first_child(comp, "Version"), "Date");
				snap->hostname = child_text(comp, "HostName");
				snap->ip_address = child_text(comp, "IPAddress");
				snap->mac_address = child_text(comp, "HardwareAddress");
				snap->device_uuid = child_text(comp, "DeviceID");
				snap->locale = child_text(comp, "Locale");
			}
		} else if (g_strcmp0(ctype, "consumable") == 0) {
			legacy_supply(snap, comp, levels);
		}
		g_free(ctype);
		g_free(raw_id);
		g_free(id);
	}
	g_ptr_array_set_size(list, 0);
	if (snap->ip_address == NULL)
		legacy_ip_from_uri(snap, root);

	collect_desc(first_child(root, "Data"), "DataItem", list);
	for (guint i = 0; i < list->len; i++) {
		const xmlNode *item = g_ptr_array_index(list, i);
		char *raw_id = attr_of(item, "idRef");
		char *id = normalise_id(raw_id);
		if (id != NULL)
			legacy_data_item(snap, &totals, item, id);
		g_free(raw_id);
		g_free(id);
	}
	set_finish(&totals);
	g_hash_table_destroy(totals.by_name);

	ret = legacy_logs(snap, root, limits, error_r);
	g_ptr_array_free(list, TRUE);
	g_hash_table_destroy(levels);
	return ret;
}

/* ---- entry points ---- */

int
devxml_parse_chunked(const char *xml, size_t len, size_t chunk_size,
		     const struct devxml_limits *limits, struct snapshot **snap_r, char **error_r)
{
	struct devxml_limits defaults;
	struct snapshot *snap = NULL;
	xmlDocPtr doc = NULL;
	xmlNode *root;
	char *ts = NULL;
	int ret = -1;

	*snap_r = NULL;
	*error_r = NULL;
	devxml_global_init();
	if (limits == NULL) {
		devxml_limits_default(&defaults);
		limits = &defaults;
	}
	if (chunk_size == 0 || chunk_size > INT_MAX)
		chunk_size = DEVXML_DEFAULT_CHUNK;
	if (xml == NULL || len == 0) {
		*error_r = g_strdup("xml: empty document");
		goto out;
	}
	if (len > limits->max_xml_size) {
		*error_r = g_strdup_printf("xml: document of %zu bytes exceeds the limit of %zu",
					   len, limits->max_xml_size);
		goto out;
	}
	doc = parse_tree(xml, len, chunk_size, limits, error_r);
	if (doc == NULL)
		goto out;
	root = xmlDocGetRootElement(doc);

	snap = snapshot_new();
	if (is_el(root, "DeviceService")) {
		if (parse_futuresmart(snap, root, limits, error_r) < 0)
			goto out;
		ts = child_text(first_child(root, "TicketMetaData"), "TimeStamp");
		take(&ts, child_text(root, "TimeStamp"));
	} else if (is_el(root, "Device")) {
		if (parse_legacy(snap, root, limits, error_r) < 0)
			goto out;
		ts = child_text(root, "TimeStamp");
	} else {
		char *name = one_line(lname(root));
		*error_r = g_strdup_printf("xml: not a Device.xml (root element '%s')", name);
		g_free(name);
		goto out;
	}
	if (ts != NULL) {
		char utc[SK_UTC_SIZE];
		int offset = 0, has_offset = 0;
		if (sk_time_parse_iso8601(ts, utc, NULL, &offset, &has_offset) == 0) {
			snap->taken_utc = g_strdup(utc);
			snap->taken_offset_min = offset;
			snap->taken_has_offset = has_offset != 0;
		} else {
			log_debug("devxml: event=timestamp-unparsable");
		}
	}
	if (snap->serial == NULL) {
		*error_r = g_strdup("xml: no SerialNumber");
		goto out;
	}
	*snap_r = snap;
	snap = NULL;
	ret = 0;
out:
	g_free(ts);
	snapshot_free(&snap);
	if (doc != NULL)
		xmlFreeDoc(doc);
	return ret;
}

int
devxml_parse(const char *xml, size_t len, const struct devxml_limits *limits,
	     struct snapshot **snap_r, char **error_r)
{
	return devxml_parse_chunked(xml, len, DEVXML_DEFAULT_CHUNK, limits, snap_r, error_r);
}
