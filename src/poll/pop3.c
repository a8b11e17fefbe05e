/* pop3.c: one pass over a POP3 maildrop with libcurl (RFC 1939 POP3,
 * RFC 2449 capabilities, RFC 2595 STLS via libcurl).
 *
 * A pass is one POP3 session:
 *   UIDL                 unique ids (a custom request; libcurl reads the
 *                        multi-line answer and undoes the dot-stuffing)
 *   LIST                 sizes, so too large messages are never fetched
 *   per batch:  RETR n (the URL pop3://host/n) -> intake_accept, then
 *               DELE n (after = delete) or remember the UIDL (keep)
 *   QUIT                 when the handle closes: only now does the server
 *                        remove what was DELEted (RFC 1939 section 6).
 *
 * Invariants:
 *  1. DELE n is sent only after the message n was committed by the funnel,
 *     and only in the session whose UIDL listing named n: message numbers
 *     belong to one session, so once the listing is read the handle refuses
 *     to open a new connection (CURLOPT_OPENSOCKETFUNCTION) instead of
 *     letting libcurl reconnect and reuse numbers of another session.
 *  2. A session cut before QUIT deletes nothing; the next pass fetches the
 *     same messages again and the funnel answers "duplicate".
 *  3. With after = keep, a UIDL is remembered (poll_seen) only after its
 *     message was committed; UIDLs no longer in the maildrop are forgotten
 *     after a complete listing.
 *
 * Security posture: UIDL and LIST lines are parsed with bounds (RFC 1939:
 * a UIDL is 1 to 70 characters 0x21..0x7E; others are refused). */
#include "config.h"

#include "poll/poll-private.h"

#include <string.h>

#include "util/log.h"

struct pop3_entry {
	uint64_t number;
	uint64_t size;
	char *uidl;
};

struct pop3_session {
	const struct poll_settings *settings;
	GArray *entries;       /* struct pop3_entry, in UIDL order */
	GHashTable *by_number; /* number -> index + 1 */
	bool bad_line;
};

static int
parse_u64(const char **p, uint64_t *v_r)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!g_ascii_isdigit(*s))
		return -1;
	while (g_ascii_isdigit(*s)) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*p = s;
	*v_r = v;
	return 0;
}

static int
on_uidl(void *ctx, const char *line, size_t len)
{
	struct pop3_session *ps = ctx;
	const char *p = line;
	struct pop3_entry e = {0};

	if (len == 0)
		return 0;
	if (parse_u64(&p, &e.number) < 0 || *p != ' ' || e.number == 0 || e.number > UINT32_MAX) {
		ps->bad_line = true;
		return 0;
	}
	p++;
	size_t n = strlen(p);
	if (n == 0 || n > 70) {
		ps->bad_line = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e) {
			ps->bad_line = true;
			return 0;
		}
	if (g_hash_table_contains(ps->by_number, GUINT_TO_POINTER((guint)e.number))) {
		ps->bad_line = true;
		return 0;
	}
	e.uidl = g_strdup(p);
	g_array_append_val(ps->entries, e);
	g_hash_table_insert(ps->by_number, GUINT_TO_POINTER((guint)e.number),
			    GUINT_TO_POINTER(ps->entries->len));
	return 0;
}

static int
on_list(void *ctx, const char *line, size_t len)
{
	struct pop3_session *ps = ctx;
	const char *p = line;
	uint64_t number, size;

	if (parse_u64(&p, &number) < 0 || *p++ != ' ' || parse_u64(&p, &size) < 0 ||
	    number > UINT32_MAX)
		return 0;
	guint index =
	    GPOINTER_TO_UINT(g_hash_table_lookup(ps->by_number, GUINT_TO_POINTER((guint)number)));
	if (index > 0)
		g_array_index(ps->entries, struct pop3_entry, index - 1).size = size;
	return 0;
}

static void
session_free(struct pop3_session *ps)
{
	for (guint i = 0; ps->entries != NULL && i < ps->entries->len; i++)
		g_free(g_array_index(ps->entries, struct pop3_entry, i).uidl);
	if (ps->entries != NULL)
		g_array_free(ps->entries, TRUE);
	if (ps->by_number != NULL)
		g_hash_table_destroy(ps->by_number);
}

int
poll_pop3_pass(struct poll_pass *pass, char **error_r)
{
	const struct poll_settings *s = pass->settings;
	struct pop3_session ps = {0};
	struct poll_curl pc;
	struct poll_item *items = NULL;
	GPtrArray *todo = g_ptr_array_new(); /* struct pop3_entry * */
	char *base = NULL, *error = NULL;
	bool keep = s->after == POLL_AFTER_KEEP;
	int ret = -1;

	ps.settings = s;
	ps.entries = g_array_new(FALSE, FALSE, sizeof(struct pop3_entry));
	ps.by_number = g_hash_table_new(g_direct_hash, g_direct_equal);
	if (poll_curl_open(&pc, s, pass->stop, error_r) < 0) {
		g_ptr_array_unref(todo);
		session_free(&ps);
		return -1;
	}
	base = poll_curl_base_url(s);
	if (poll_curl_perform(&pc, base, "UIDL", false, on_uidl, &ps, &error) < 0) {
		*error_r = g_strdup_printf("UIDL: %s", error);
		goto out;
	}
	/* From here on the message numbers are this session's. */
	pc.forbid_new_connection = true;
	if (ps.bad_line)
		log_warnx("poll: event=bad-uidl name=%s mailbox=%s detail=\"lines not of the form "
			  "'n uidl' ignored\"",
			  s->name, s->key);
	if (poll_curl_perform(&pc, base, NULL, false, on_list, &ps, error_r) < 0)
		goto out;

	GHashTable *present = keep ? g_hash_table_new(g_str_hash, g_str_equal) : NULL;
	for (guint i = 0; i < ps.entries->len; i++) {
		struct pop3_entry *e = &g_array_index(ps.entries, struct pop3_entry, i);
		if (present != NULL)
			g_hash_table_add(present, e->uidl);
		if (keep) {
			int r =
			    poll_state_seen_has(pass->store, pass->mailbox_id, e->uidl, error_r);
			if (r < 0) {
				g_hash_table_destroy(present);
				goto out;
			}
			if (r > 0)
				continue;
		}
		if (todo->len >= s->pass_max) {
			pass->stats.more = true;
			continue;
		}
		g_ptr_array_add(todo, e);
	}
	if (present != NULL) {
		if (!ps.bad_line &&
		    poll_state_seen_sweep(pass->store, pass->mailbox_id, present, &error) < 0) {
			log_warnx("poll: event=sweep-failed name=%s error=\"%s\"", s->name, error);
			g_clear_pointer(&error, g_free);
		}
		g_hash_table_destroy(present);
	}
	pass->stats.listed = todo->len;
	pass->total = todo->len;
	poll_pass_report(pass);

	items = g_new0(struct poll_item, s->batch_size);
	for (guint start = 0; start < todo->len; start += s->batch_size) {
		size_t n = MIN(s->batch_size, todo->len - start);
		bool fetch_failed = false;
		for (size_t i = 0; i < n; i++) {
			const struct pop3_entry *e = g_ptr_array_index(todo, start + i);
			items[i] = (struct poll_item){
			    .uid = e->number, .size = e->size, .accept_result = 2};
			items[i].key = g_strdup(e->uidl);
		}
		for (size_t i = 0; i < n && !fetch_failed; i++) {
			struct poll_item *it = &items[i];
			if (poll_pass_stopping(pass)) {
				error = g_strdup("stopped");
				fetch_failed = true;
				break;
			}
			if (it->size > s->max_message_size) {
				it->too_large = true;
				log_warnx("poll: event=too-large name=%s mailbox=%s uidl=%s "
					  "size=%" G_GUINT64_FORMAT
					  " max_message_size=%zu detail=\"left on the server\"",
					  s->name, s->key, it->key, (guint64)it->size,
					  s->max_message_size);
				continue;
			}
			char *url = g_strdup_printf("%s%" G_GUINT64_FORMAT, base, (guint64)it->uid);
			pc.body = g_byte_array_sized_new((guint)MIN(it->size + 16, 1u << 20));
			pc.body_max = s->max_message_size;
			int r = poll_curl_perform(&pc, url, NULL, false, NULL, NULL, &error);
			g_free(url);
			if (r < 0 || pc.body->len == 0) {
				bool large = pc.body_too_large;
				g_byte_array_free(pc.body, TRUE);
				pc.body = NULL;
				if (r == 0 || large) {
					it->too_large = large;
					g_clear_pointer(&error, g_free);
					continue;
				}
				fetch_failed = true;
				break;
			}
			GBytes *raw = g_byte_array_free_to_bytes(pc.body);
			pc.body = NULL;
			poll_pass_accept(pass, it, raw, "pop3", it->key);
			poll_pass_report(pass);
		}
		poll_pass_classify(pass, items, n, false);
		poll_pass_report(pass);
		if (keep) {
			if (poll_state_seen_add(pass->store, pass->mailbox_id, items, n, error_r) <
			    0)
				goto out_batch;
		} else {
			for (size_t i = 0; i < n; i++) {
				if (items[i].fate != POLL_FATE_DONE)
					continue;
				char *url = g_strdup_printf("%s%" G_GUINT64_FORMAT, base,
							    (guint64)items[i].uid);
				char *dele_error = NULL;
				int r = poll_curl_perform(&pc, url, "DELE", true, NULL, NULL,
							  &dele_error);
				g_free(url);
				if (r < 0) {
					*error_r = g_strdup_printf(
					    "DELE after storing: %s (the messages stay and are "
					    "completed next pass)",
					    dele_error);
					g_free(dele_error);
					goto out_batch;
				}
			}
		}
		if (fetch_failed) {
			*error_r = error;
			error = NULL;
			goto out_batch;
		}
		if (pass->accept_error != NULL) {
			*error_r = g_strdup_printf("the store did not take a message: %s",
						   pass->accept_error);
			goto out_batch;
		}
		for (size_t i = 0; i < n; i++)
			poll_item_clear(&items[i]);
		continue;
	out_batch:
		for (size_t i = 0; i < n; i++)
			poll_item_clear(&items[i]);
		goto out;
	}
	ret = 0;
out:
	if (pc.body != NULL)
		g_byte_array_free(pc.body, TRUE);
	pc.body = NULL;
	/* QUIT: the server removes the DELEted messages now. */
	poll_curl_close(&pc);
	g_free(items);
	g_free(base);
	g_free(error);
	g_ptr_array_unref(todo);
	session_free(&ps);
	return ret;
}
