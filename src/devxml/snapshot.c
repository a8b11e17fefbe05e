/* snapshot.c: struct snapshot lifetime, lookups, and its JSON form.
 *
 * The JSON form crosses the pipe between the parse worker and the daemon and
 * is what `snapkeep show --json` prints, so snapshot_to_json() followed by
 * snapshot_from_json() gives back exactly the same struct:
 *   - strings: JSON strings, or null when the document did not say;
 *   - numbers that are SNAPSHOT_ABSENT are omitted (absent is not zero);
 *   - a counter's value_real is written only when it differs from value;
 *   - an event's payload_json is embedded as the object "payload" when it is
 *     a JSON object in json-glib's compact form (what devxml produces),
 *     otherwise kept verbatim as the string "payload_json".
 * snapshot_from_json() trusts nothing: every member is type-checked, unknown
 * members are ignored, and a wrong type is an error with a reason.  Its input
 * is bounded by the caller (the worker pipe has its own limit). */
#include "config.h"

#include "devxml/snapshot.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static void
counter_free(gpointer p)
{
	struct snapshot_counter *c = p;
	if (c == NULL)
		return;
	g_free(c->name);
	g_free(c->media_size);
	g_free(c);
}

static void
supply_free(gpointer p)
{
	struct snapshot_supply *s = p;
	if (s == NULL)
		return;
	g_free(s->key);
	g_free(s->label);
	g_free(s->color);
	g_free(s->type);
	g_free(s->description);
	g_free(s->product_number);
	g_free(s->serial);
	g_free(s->state);
	g_free(s->brand);
	g_free(s->installed_date);
	g_free(s);
}

static void
event_free(gpointer p)
{
	struct snapshot_event *e = p;
	if (e == NULL)
		return;
	g_free(e->log);
	g_free(e->code);
	g_free(e->occurred_utc);
	g_free(e->description);
	g_free(e->payload_json);
	g_free(e);
}

struct snapshot *
snapshot_new(void)
{
	struct snapshot *snap = g_new0(struct snapshot, 1);
	snap->counters = g_ptr_array_new_with_free_func(counter_free);
	snap->media_counters = g_ptr_array_new_with_free_func(counter_free);
	snap->supplies = g_ptr_array_new_with_free_func(supply_free);
	snap->events = g_ptr_array_new_with_free_func(event_free);
	return snap;
}

void
snapshot_free(struct snapshot **snapp)
{
	struct snapshot *snap;
	if (snapp == NULL || *snapp == NULL)
		return;
	snap = *snapp;
	*snapp = NULL;
	g_free(snap->serial);
	g_free(snap->product_number);
	g_free(snap->model);
	g_free(snap->firmware);
	g_free(snap->firmware_date);
	g_free(snap->hostname);
	g_free(snap->ip_address);
	g_free(snap->mac_address);
	g_free(snap->device_uuid);
	g_free(snap->locale);
	g_free(snap->taken_utc);
	g_ptr_array_free(snap->counters, TRUE);
	g_ptr_array_free(snap->media_counters, TRUE);
	g_ptr_array_free(snap->supplies, TRUE);
	g_ptr_array_free(snap->events, TRUE);
	g_free(snap);
}

struct snapshot_supply *
snapshot_supply_new(void)
{
	struct snapshot_supply *s = g_new0(struct snapshot_supply, 1);
	s->level_percent = SNAPSHOT_ABSENT;
	s->low_threshold = SNAPSHOT_ABSENT;
	s->pages = SNAPSHOT_ABSENT;
	return s;
}

struct snapshot_event *
snapshot_event_new(void)
{
	struct snapshot_event *e = g_new0(struct snapshot_event, 1);
	e->sequence = SNAPSHOT_ABSENT;
	e->page_count = SNAPSHOT_ABSENT;
	return e;
}

struct snapshot_counter *
snapshot_counter_new(const char *name, const char *media_size, int64_t value, double value_real)
{
	struct snapshot_counter *c = g_new0(struct snapshot_counter, 1);
	c->name = g_strdup(name);
	c->media_size = g_strdup(media_size);
	c->value = value;
	c->value_real = value_real;
	return c;
}

const struct snapshot_counter *
snapshot_counter_find(const struct snapshot *snap, const char *name)
{
	if (snap == NULL || name == NULL)
		return NULL;
	for (guint i = 0; i < snap->counters->len; i++) {
		const struct snapshot_counter *c = g_ptr_array_index(snap->counters, i);
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

const struct snapshot_counter *
snapshot_media_counter_find(const struct snapshot *snap, const char *name, const char *media_size)
{
	if (snap == NULL || name == NULL || media_size == NULL)
		return NULL;
	for (guint i = 0; i < snap->media_counters->len; i++) {
		const struct snapshot_counter *c = g_ptr_array_index(snap->media_counters, i);
		if (strcmp(c->name, name) == 0 && c->media_size != NULL &&
		    strcmp(c->media_size, media_size) == 0)
			return c;
	}
	return NULL;
}

const char *
snapshot_dialect_name(enum snapshot_dialect dialect)
{
	switch (dialect) {
	case SNAPSHOT_DIALECT_FUTURESMART:
		return "futuresmart";
	case SNAPSHOT_DIALECT_LEGACY:
		return "legacy";
	}
	return "unknown";
}

/* ---- to JSON ---- */

static void
add_str(JsonBuilder *b, const char *key, const char *value)
{
	json_builder_set_member_name(b, key);
	if (value != NULL)
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

static void
add_num(JsonBuilder *b, const char *key, int64_t value)
{
	if (value == SNAPSHOT_ABSENT)
		return;
	json_builder_set_member_name(b, key);
	json_builder_add_int_value(b, value);
}

static void
add_counters(JsonBuilder *b, const char *key, const GPtrArray *counters)
{
	json_builder_set_member_name(b, key);
	json_builder_begin_array(b);
	for (guint i = 0; i < counters->len; i++) {
		const struct snapshot_counter *c = g_ptr_array_index(counters, i);
		json_builder_begin_object(b);
		add_str(b, "name", c->name);
		if (c->media_size != NULL)
			add_str(b, "media_size", c->media_size);
		json_builder_set_member_name(b, "value");
		json_builder_add_int_value(b, c->value);
		if (c->value_real != (double)c->value && isfinite(c->value_real)) {
			json_builder_set_member_name(b, "value_real");
			json_builder_add_double_value(b, c->value_real);
		}
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
}

/* Returns the payload as a JSON node when payload_json is an object that
 * json-glib writes back byte for byte, else NULL. */
static JsonNode *
payload_node(const char *payload_json)
{
	JsonParser *parser = json_parser_new();
	JsonNode *node = NULL;

	if (json_parser_load_from_data(parser, payload_json, -1, NULL)) {
		JsonNode *root = json_parser_get_root(parser);
		if (root != NULL && JSON_NODE_HOLDS_OBJECT(root)) {
			char *again = json_to_string(root, FALSE);
			if (strcmp(again, payload_json) == 0)
				node = json_node_copy(root);
			g_free(again);
		}
	}
	g_object_unref(parser);
	return node;
}

char *
snapshot_to_json(const struct snapshot *snap)
{
	JsonBuilder *b = json_builder_new();
	JsonNode *root;
	char *text;

	json_builder_begin_object(b);
	add_str(b, "dialect", snapshot_dialect_name(snap->dialect));
	add_str(b, "serial", snap->serial);
	add_str(b, "product_number", snap->product_number);
	add_str(b, "model", snap->model);
	add_str(b, "firmware", snap->firmware);
	add_str(b, "firmware_date", snap->firmware_date);
	add_str(b, "hostname", snap->hostname);
	add_str(b, "ip_address", snap->ip_address);
	add_str(b, "mac_address", snap->mac_address);
	add_str(b, "device_uuid", snap->device_uuid);
	add_str(b, "locale", snap->locale);
	add_str(b, "taken_utc", snap->taken_utc);
	json_builder_set_member_name(b, "taken_offset_min");
	json_builder_add_int_value(b, snap->taken_offset_min);
	json_builder_set_member_name(b, "taken_has_offset");
	json_builder_add_boolean_value(b, snap->taken_has_offset);

	add_counters(b, "counters", snap->counters);
	add_counters(b, "media_counters", snap->media_counters);

	json_builder_set_member_name(b, "supplies");
	json_builder_begin_array(b);
	for (guint i = 0; i < snap->supplies->len; i++) {
		const struct snapshot_supply *s = g_ptr_array_index(snap->supplies, i);
		json_builder_begin_object(b);
		add_str(b, "key", s->key);
		add_str(b, "label", s->label);
		add_str(b, "color", s->color);
		add_str(b, "type", s->type);
		add_str(b, "description", s->description);
		add_str(b, "product_number", s->product_number);
		add_str(b, "serial", s->serial);
		add_str(b, "state", s->state);
		add_str(b, "brand", s->brand);
		add_str(b, "installed_date", s->installed_date);
		add_num(b, "level_percent", s->level_percent);
		add_num(b, "low_threshold", s->low_threshold);
		add_num(b, "pages", s->pages);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);

	json_builder_set_member_name(b, "events");
	json_builder_begin_array(b);
	for (guint i = 0; i < snap->events->len; i++) {
		const struct snapshot_event *e = g_ptr_array_index(snap->events, i);
		json_builder_begin_object(b);
		add_str(b, "log", e->log);
		add_num(b, "sequence", e->sequence);
		add_str(b, "code", e->code);
		add_str(b, "occurred_utc", e->occurred_utc);
		json_builder_set_member_name(b, "occurred_offset_min");
		json_builder_add_int_value(b, e->occurred_offset_min);
		add_str(b, "description", e->description);
		add_num(b, "page_count", e->page_count);
		if (e->payload_json != NULL) {
			JsonNode *p = payload_node(e->payload_json);
			if (p != NULL) {
				json_builder_set_member_name(b, "payload");
				json_builder_add_value(b, p); /* takes ownership */
			} else {
				add_str(b, "payload_json", e->payload_json);
			}
		}
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);

	root = json_builder_get_root(b);
	text = json_to_string(root, TRUE);
	json_node_unref(root);
	g_object_unref(b);
	return text;
}

/* ---- from JSON ---- */

/* Each getter returns 0 (absent or null leaves the default), or -1 with
 * *error_r set when the member has the wrong type. */
static int
get_str(JsonObject *o, const char *key, char **out_r, char **error_r)
{
	JsonNode *n = json_object_get_member(o, key);
	if (n == NULL || JSON_NODE_HOLDS_NULL(n))
		return 0;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
		*error_r = g_strdup_printf("json: member '%s' is not a string", key);
		return -1;
	}
	g_free(*out_r);
	*out_r = g_strdup(json_node_get_string(n));
	return 0;
}

static int
get_int(JsonObject *o, const char *key, int64_t *out_r, char **error_r)
{
	JsonNode *n = json_object_get_member(o, key);
	if (n == NULL || JSON_NODE_HOLDS_NULL(n))
		return 0;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
		*error_r = g_strdup_printf("json: member '%s' is not an integer", key);
		return -1;
	}
	*out_r = json_node_get_int(n);
	return 0;
}

static int
get_double(JsonObject *o, const char *key, double *out_r, char **error_r)
{
	JsonNode *n = json_object_get_member(o, key);
	if (n == NULL || JSON_NODE_HOLDS_NULL(n))
		return 0;
	if (!JSON_NODE_HOLDS_VALUE(n) || (json_node_get_value_type(n) != G_TYPE_DOUBLE &&
					  json_node_get_value_type(n) != G_TYPE_INT64)) {
		*error_r = g_strdup_printf("json: member '%s' is not a number", key);
		return -1;
	}
	*out_r = json_node_get_double(n);
	return 0;
}

static int
get_offset(JsonObject *o, const char *key, int *out_r, char **error_r)
{
	int64_t v = 0;
	if (get_int(o, key, &v, error_r) < 0)
		return -1;
	if (v < -24 * 60 || v > 24 * 60) {
		*error_r = g_strdup_printf("json: member '%s' out of range", key);
		return -1;
	}
	*out_r = (int)v;
	return 0;
}

static JsonArray *
get_array(JsonObject *o, const char *key, char **error_r)
{
	JsonNode *n = json_object_get_member(o, key);
	if (n == NULL || JSON_NODE_HOLDS_NULL(n))
		return NULL;
	if (!JSON_NODE_HOLDS_ARRAY(n)) {
		*error_r = g_strdup_printf("json: member '%s' is not an array", key);
		return NULL;
	}
	return json_node_get_array(n);
}

static JsonObject *
array_object(JsonArray *a, guint i, const char *what, char **error_r)
{
	JsonNode *n = json_array_get_element(a, i);
	if (!JSON_NODE_HOLDS_OBJECT(n)) {
		*error_r = g_strdup_printf("json: %s[%u] is not an object", what, i);
		return NULL;
	}
	return json_node_get_object(n);
}

static int
counters_from_json(JsonObject *root, const char *key, GPtrArray *out, char **error_r)
{
	JsonArray *a = get_array(root, key, error_r);
	if (a == NULL)
		return *error_r != NULL ? -1 : 0;
	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonObject *o = array_object(a, i, key, error_r);
		struct snapshot_counter *c;
		if (o == NULL)
			return -1;
		c = g_new0(struct snapshot_counter, 1);
		g_ptr_array_add(out, c);
		if (get_str(o, "name", &c->name, error_r) < 0 ||
		    get_str(o, "media_size", &c->media_size, error_r) < 0 ||
		    get_int(o, "value", &c->value, error_r) < 0)
			return -1;
		c->value_real = (double)c->value;
		if (get_double(o, "value_real", &c->value_real, error_r) < 0)
			return -1;
		if (c->name == NULL) {
			*error_r = g_strdup_printf("json: %s[%u] has no name", key, i);
			return -1;
		}
	}
	return 0;
}

int
snapshot_from_json(const char *json, size_t len, struct snapshot **snap_r, char **error_r)
{
	JsonParser *parser = json_parser_new();
	GError *gerr = NULL;
	struct snapshot *snap = NULL;
	JsonObject *root;
	JsonNode *node;
	JsonArray *a;
	char *dialect = NULL;
	int ret = -1;

	*snap_r = NULL;
	*error_r = NULL;
	if (len > G_MAXSSIZE) {
		*error_r = g_strdup("json: input too large");
		goto out;
	}
	if (!json_parser_load_from_data(parser, json, (gssize)len, &gerr)) {
		*error_r = g_strdup_printf("json: %s", gerr->message);
		g_error_free(gerr);
		goto out;
	}
	node = json_parser_get_root(parser);
	if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
		*error_r = g_strdup("json: snapshot is not an object");
		goto out;
	}
	root = json_node_get_object(node);
	snap = snapshot_new();

	if (get_str(root, "dialect", &dialect, error_r) < 0)
		goto out;
	if (g_strcmp0(dialect, "futuresmart") == 0) {
		snap->dialect = SNAPSHOT_DIALECT_FUTURESMART;
	} else if (g_strcmp0(dialect, "legacy") == 0) {
		snap->dialect = SNAPSHOT_DIALECT_LEGACY;
	} else {
		*error_r = g_strdup("json: unknown or missing dialect");
		goto out;
	}

	if (get_str(root, "serial", &snap->serial, error_r) < 0 ||
	    get_str(root, "product_number", &snap->product_number, error_r) < 0 ||
	    get_str(root, "model", &snap->model, error_r) < 0 ||
	    get_str(root, "firmware", &snap->firmware, error_r) < 0 ||
	    get_str(root, "firmware_date", &snap->firmware_date, error_r) < 0 ||
	    get_str(root, "hostname", &snap->hostname, error_r) < 0 ||
	    get_str(root, "ip_address", &snap->ip_address, error_r) < 0 ||
	    get_str(root, "mac_address", &snap->mac_address, error_r) < 0 ||
	    get_str(root, "device_uuid", &snap->device_uuid, error_r) < 0 ||
	    get_str(root, "locale", &snap->locale, error_r) < 0 ||
	    get_str(root, "taken_utc", &snap->taken_utc, error_r) < 0 ||
	    get_offset(root, "taken_offset_min", &snap->taken_offset_min, error_r) < 0)
		goto out;
	node = json_object_get_member(root, "taken_has_offset");
	if (node != NULL && !JSON_NODE_HOLDS_NULL(node)) {
		if (!JSON_NODE_HOLDS_VALUE(node) ||
		    json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
			*error_r = g_strdup("json: member 'taken_has_offset' is not a boolean");
			goto out;
		}
		snap->taken_has_offset = json_node_get_boolean(node);
	}

	if (counters_from_json(root, "counters", snap->counters, error_r) < 0 ||
	    counters_from_json(root, "media_counters", snap->media_counters, error_r) < 0)
		goto out;

	a = get_array(root, "supplies", error_r);
	if (*error_r != NULL)
		goto out;
	for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
		JsonObject *o = array_object(a, i, "supplies", error_r);
		struct snapshot_supply *s;
		if (o == NULL)
			goto out;
		s = snapshot_supply_new();
		g_ptr_array_add(snap->supplies, s);
		if (get_str(o, "key", &s->key, error_r) < 0 ||
		    get_str(o, "label", &s->label, error_r) < 0 ||
		    get_str(o, "color", &s->color, error_r) < 0 ||
		    get_str(o, "type", &s->type, error_r) < 0 ||
		    get_str(o, "description", &s->description, error_r) < 0 ||
		    get_str(o, "product_number", &s->product_number, error_r) < 0 ||
		    get_str(o, "serial", &s->serial, error_r) < 0 ||
		    get_str(o, "state", &s->state, error_r) < 0 ||
		    get_str(o, "brand", &s->brand, error_r) < 0 ||
		    get_str(o, "installed_date", &s->installed_date, error_r) < 0 ||
		    get_int(o, "level_percent", &s->level_percent, error_r) < 0 ||
		    get_int(o, "low_threshold", &s->low_threshold, error_r) < 0 ||
		    get_int(o, "pages", &s->pages, error_r) < 0)
			goto out;
	}

	a = get_array(root, "events", error_r);
	if (*error_r != NULL)
		goto out;
	for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
		JsonObject *o = array_object(a, i, "events", error_r);
		struct snapshot_event *e;
		JsonNode *p;
		if (o == NULL)
			goto out;
		e = snapshot_event_new();
		g_ptr_array_add(snap->events, e);
		if (get_str(o, "log", &e->log, error_r) < 0 ||
		    get_int(o, "sequence", &e->sequence, error_r) < 0 ||
		    get_str(o, "code", &e->code, error_r) < 0 ||
		    get_str(o, "occurred_utc", &e->occurred_utc, error_r) < 0 ||
		    get_offset(o, "occurred_offset_min", &e->occurred_offset_min, error_r) < 0 ||
		    get_str(o, "description", &e->description, error_r) < 0 ||
		    get_int(o, "page_count", &e->page_count, error_r) < 0 ||
		    get_str(o, "payload_json", &e->payload_json, error_r) < 0)
			goto out;
		p = json_object_get_member(o, "payload");
		if (p != NULL && !JSON_NODE_HOLDS_NULL(p)) {
			if (!JSON_NODE_HOLDS_OBJECT(p)) {
				*error_r =
				    g_strdup_printf("json: events[%u].payload is not an object", i);
				goto out;
			}
			g_free(e->payload_json);
			e->payload_json = json_to_string(p, FALSE);
		}
	}

	*snap_r = snap;
	snap = NULL;
	ret = 0;
out:
	g_free(dialect);
	snapshot_free(&snap);
	g_object_unref(parser);
	return ret;
}
