/* imap.c: one pass over an IMAP mailbox with libcurl (RFC 3501 IMAP4rev1,
 * RFC 6851 MOVE, RFC 4315 UIDPLUS, RFC 5092 IMAP URLs as libcurl reads them).
 *
 * A pass:
 *   CAPABILITY                        MOVE? UIDPLUS? (IDLE: see idle.c)
 *   LIST "" ""                        the hierarchy separator ('/' in folder
 *                                     settings is translated to it)
 *   STATUS mailbox (MESSAGES UIDNEXT UIDVALIDITY)
 *   UID FETCH lo:* (UID FLAGS RFC822.SIZE)   the candidates, one short line
 *                                     each (lo = 1, or the checkpoint + 1
 *                                     for flag and keep)
 *   per batch of batch_size:
 *     URL mailbox;UIDVALIDITY=v/;UID=u  the body (libcurl's FETCH BODY[],
 *                                     which handles the literal; libcurl
 *                                     refuses it if UIDVALIDITY changed)
 *     intake_accept                   committed: only now act
 *     UID MOVE set folder | UID COPY + UID STORE +FLAGS (\Deleted) +
 *       UID EXPUNGE (EXPUNGE without UIDPLUS) | UID STORE +FLAGS (\Seen)
 *     checkpoint (UIDVALIDITY, last UID) written after the actions
 *
 * Folders that are missing are created (LIST, then CREATE and SUBSCRIBE).
 * Custom commands go through CURLOPT_CUSTOMREQUEST on the mailbox URL
 * (libcurl SELECTs it first, once per connection) and their untagged
 * answers come back as body lines.  Bodies are fetched through libcurl's
 * URL form rather than a custom UID FETCH because libcurl passes a custom
 * command's literal through line by line, where a line of the message
 * could be mistaken for a response.  That FETCH uses BODY[], which sets
 * \Seen: with after = keep the flag is taken off again for messages that
 * were unseen, and messages for failed_to get theirs back before the move.
 *
 * Memory: the candidate list costs 24 bytes a message (at most pass_max);
 * bodies are bounded by accept_jobs + 1 messages of max_message_size.
 *
 * Security posture: everything the server sends is parsed with bounds (lines
 * of POLL_LINE_MAX, numbers checked for overflow); names we send are quoted
 * (RFC 3501 quoted strings, modified UTF-7 for non-ASCII) and never contain
 * CR, LF or NUL. */
#include "config.h"

#include "poll/poll-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* UID sets in one command stay below this (servers accept 8000+ octets). */
#define UID_SET_MAX 1000
/* Messages named by one command, and FETCH lines asked for at once.  libcurl
 * passes every IMAP response line through its header accounting, which in
 * 7.88 (Debian 12) charges each line with the rest of the read buffer and
 * fails a transfer past 300 KB ("Too large response headers"): a response
 * must stay at a few hundred short lines, so listings are fetched in
 * windows of sequence numbers and actions go out in chunks. */
#define IMAP_CHUNK 50

/* --- strings ------------------------------------------------------------------------ */

char *
poll_imap_mutf7(const char *utf8)
{
	GString *out;
	const char *p = utf8;

	if (!g_utf8_validate(utf8, -1, NULL))
		return NULL;
	out = g_string_new(NULL);
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c <= 0x7e) {
			if (c == '&')
				g_string_append(out, "&-");
			else
				g_string_append_c(out, (char)c);
			p++;
			continue;
		}
		/* A run of characters outside printable ASCII: UTF-16BE in
		 * base64 with ',' for '/', no padding, between '&' and '-'. */
		const char *end = p;
		while (*end != '\0' &&
		       !((unsigned char)*end >= 0x20 && (unsigned char)*end <= 0x7e))
			end = g_utf8_next_char(end);
		glong n16 = 0;
		gunichar2 *u16 = g_utf8_to_utf16(p, end - p, NULL, &n16, NULL);
		if (u16 == NULL) {
			g_string_free(out, TRUE);
			return NULL;
		}
		guchar *be = g_malloc((gsize)n16 * 2);
		for (glong i = 0; i < n16; i++) {
			be[2 * i] = (guchar)(u16[i] >> 8);
			be[2 * i + 1] = (guchar)(u16[i] & 0xff);
		}
		char *b64 = g_base64_encode(be, (gsize)n16 * 2);
		for (char *q = b64; *q != '\0'; q++)
			if (*q == '/')
				*q = ',';
		char *eq = strchr(b64, '=');
		if (eq != NULL)
			*eq = '\0';
		g_string_append_c(out, '&');
		g_string_append(out, b64);
		g_string_append_c(out, '-');
		g_free(b64);
		g_free(be);
		g_free(u16);
		p = end;
	}
	return g_string_free(out, FALSE);
}

char *
poll_imap_quote(const char *text)
{
	GString *out = g_string_new("\"");

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n') {
			g_string_free(out, TRUE);
			return NULL;
		}
		if (*p == '"' || *p == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
	return g_string_free(out, FALSE);
}

char *
poll_imap_uid_set(const uint64_t *uids, size_t count, size_t max_len, size_t *used_r)
{
	GString *out = g_string_new(NULL);
	size_t i = 0;

	while (i < count) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		char part[48];
		if (j > i)
			g_snprintf(part, sizeof(part), "%s%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT,
				   out->len ? "," : "", (guint64)uids[i], (guint64)uids[j]);
		else
			g_snprintf(part, sizeof(part), "%s%" G_GUINT64_FORMAT, out->len ? "," : "",
				   (guint64)uids[i]);
		if (out->len > 0 && out->len + strlen(part) > max_len)
			break;
		g_string_append(out, part);
		i = j + 1;
	}
	*used_r = i;
	return g_string_free(out, FALSE);
}

/* A number of at most 20 digits; advances *p.  0 or -1. */
static int
parse_number(const char **p, uint64_t *v_r)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!g_ascii_isdigit(*s))
		return -1;
	while (g_ascii_isdigit(*s)) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*v_r = v;
	return 0;
}

/* Case-insensitive "word" followed by a space, at *p; advances. */
static bool
skip_word(const char **p, const char *word)
{
	size_t n = strlen(word);

	if (g_ascii_strncasecmp(*p, word, n) != 0 || (*p)[n] != ' ')
		return false;
	*p += n + 1;
	return true;
}

int
poll_imap_parse_fetch(const char *line, uint64_t *seq_r, uint64_t *uid_r, uint64_t *size_r,
		      bool *seen_r, bool *deleted_r)
{
	const char *p = line;
	uint64_t seq, v;
	bool have_uid = false;

	*size_r = 0;
	*seen_r = *deleted_r = false;
	if (!skip_word(&p, "*") || parse_number(&p, &seq) < 0 || *p++ != ' ' ||
	    !skip_word(&p, "FETCH") || *p++ != '(')
		return -1;
	while (*p != '\0' && *p != ')') {
		const char *name = p;
		while (*p != '\0' && *p != ' ' && *p != '(' && *p != ')')
			p++;
		size_t name_len = (size_t)(p - name);
		if (*p != ' ')
			return -1;
		p++;
		if (*p == '(') {
			const char *close = strchr(p, ')');
			if (close == NULL)
				return -1;
			if (name_len == 5 && g_ascii_strncasecmp(name, "FLAGS", 5) == 0) {
				char *flags = g_strndup(p + 1, (gsize)(close - p - 1));
				char **list = g_strsplit(flags, " ", -1);
				for (char **f = list; *f != NULL; f++) {
					if (g_ascii_strcasecmp(*f, "\\Seen") == 0)
						*seen_r = true;
					else if (g_ascii_strcasecmp(*f, "\\Deleted") == 0)
						*deleted_r = true;
				}
				g_strfreev(list);
				g_free(flags);
			}
			p = close + 1;
		} else if (g_ascii_isdigit(*p)) {
			if (parse_number(&p, &v) < 0)
				return -1;
			if (name_len == 3 && g_ascii_strncasecmp(name, "UID", 3) == 0) {
				*uid_r = v;
				have_uid = true;
			} else if (name_len == 11 &&
				   g_ascii_strncasecmp(name, "RFC822.SIZE", 11) == 0) {
				*size_r = v;
			}
		} else {
			/* Another item (an atom, NIL, a quoted string): skip it. */
			if (*p == '"') {
				p++;
				while (*p != '\0' && *p != '"')
					p += (*p == '\\' && p[1] != '\0') ? 2 : 1;
				if (*p == '"')
					p++;
			} else {
				while (*p != '\0' && *p != ' ' && *p != ')')
					p++;
			}
		}
		if (*p == ' ')
			p++;
	}
	*seq_r = seq;
	return have_uid && *uid_r > 0 && *uid_r <= UINT32_MAX && seq > 0 ? 0 : -1;
}

/* --- the session ---------------------------------------------------------------------------- */

struct imap_entry {
	uint64_t uid;
	uint64_t size;
	bool seen;
};

struct imap_session {
	struct poll_pass *pass;
	struct poll_curl *pc;
	const struct poll_settings *settings;
	char *base;	/* imap://host:port/ */
	char *box_url;	/* base + escaped mailbox + ;UIDVALIDITY=v */
	char *box_wire; /* the mailbox as the server names it (mUTF-7, separator) */
	char sep;	/* hierarchy separator, 0: none */
	bool cap_move, cap_uidplus, cap_idle;
	uint64_t messages, uidnext, uidvalidity;
	GArray *entries; /* struct imap_entry */
	uint64_t list_lo;
	bool list_more;
	GHashTable *folders_ok; /* wire names known to exist */
};

static int
on_capability(void *ctx, const char *line, size_t len)
{
	struct imap_session *is = ctx;
	const char *p = line;

	if (!skip_word(&p, "*") || !skip_word(&p, "CAPABILITY"))
		return 0;
	char **caps = g_strsplit(p, " ", -1);
	for (char **c = caps; *c != NULL; c++) {
		if (g_ascii_strcasecmp(*c, "MOVE") == 0)
			is->cap_move = true;
		else if (g_ascii_strcasecmp(*c, "UIDPLUS") == 0)
			is->cap_uidplus = true;
		else if (g_ascii_strcasecmp(*c, "IDLE") == 0)
			is->cap_idle = true;
	}
	g_strfreev(caps);
	return 0;
}

static int
on_list_root(void *ctx, const char *line, size_t len)
{
	struct imap_session *is = ctx;
	const char *p = line;

	if (!skip_word(&p, "*") || !skip_word(&p, "LIST") || *p != '(')
		return 0;
	p = strchr(p, ')');
	if (p == NULL || p[1] != ' ')
		return 0;
	p += 2;
	if (p[0] == '"' && p[1] == '\\' && p[2] != '\0' && p[3] == '"')
		is->sep = p[2];
	else if (p[0] == '"' && p[1] != '\0' && p[2] == '"')
		is->sep = p[1];
	else
		is->sep = 0; /* NIL: a flat namespace */
	return 0;
}

static int
on_status(void *ctx, const char *line, size_t len)
{
	struct imap_session *is = ctx;
	const char *p = line;

	if (!skip_word(&p, "*") || !skip_word(&p, "STATUS"))
		return 0;
	p = strrchr(p, '(');
	if (p == NULL)
		return 0;
	p++;
	while (*p != '\0' && *p != ')') {
		const char *name = p;
		uint64_t v;
		while (*p != '\0' && *p != ' ' && *p != ')')
			p++;
		size_t n = (size_t)(p - name);
		if (*p != ' ')
			break;
		p++;
		if (parse_number(&p, &v) < 0)
			break;
		if (n == 8 && g_ascii_strncasecmp(name, "MESSAGES", 8) == 0)
			is->messages = v;
		else if (n == 7 && g_ascii_strncasecmp(name, "UIDNEXT", 7) == 0)
			is->uidnext = v;
		else if (n == 11 && g_ascii_strncasecmp(name, "UIDVALIDITY", 11) == 0)
			is->uidvalidity = v;
		if (*p == ' ')
			p++;
	}
	return 0;
}

struct list_window {
	struct imap_session *is;
	uint64_t overlap_seq; /* the previous window's last message, asked for again */
	uint64_t overlap_uid; /* ... and the UID it had then */
	bool overlap_ok;
	uint64_t last_seq, last_uid;
	unsigned lines;
};

static int
on_fetch_window(void *ctx, const char *line, size_t len)
{
	struct list_window *w = ctx;
	struct imap_session *is = w->is;
	struct imap_entry e = {0};
	uint64_t seq;
	bool deleted;

	if (poll_imap_parse_fetch(line, &seq, &e.uid, &e.size, &e.seen, &deleted) < 0)
		return 0; /* EXISTS, EXPUNGE, a FETCH of flags only: not ours */
	w->lines++;
	if (seq > w->last_seq) {
		w->last_seq = seq;
		w->last_uid = e.uid;
	}
	if (w->overlap_seq != 0 && seq == w->overlap_seq) {
		w->overlap_ok = e.uid == w->overlap_uid;
		return 0;
	}
	if (e.uid < is->list_lo)
		return 0;
	if (is->entries->len >= is->settings->pass_max) {
		is->list_more = true;
		return 0;
	}
	g_array_append_val(is->entries, e);
	return 0;
}

struct uid_probe {
	uint64_t seq, uid;
};

static int
on_uid_probe(void *ctx, const char *line, size_t len)
{
	struct uid_probe *pr = ctx;
	uint64_t seq, uid, size;
	bool seen, deleted;

	if (poll_imap_parse_fetch(line, &seq, &uid, &size, &seen, &deleted) == 0 && seq == pr->seq)
		pr->uid = uid;
	return 0;
}

static gint
entry_cmp(gconstpointer a, gconstpointer b)
{
	const struct imap_entry *x = a, *y = b;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static int
on_list_folder(void *ctx, const char *line, size_t len)
{
	bool *found = ctx;
	const char *p = line;

	if (skip_word(&p, "*") && skip_word(&p, "LIST"))
		*found = true;
	return 0;
}

static int
on_ignore(void *ctx, const char *line, size_t len)
{
	return 0;
}

/* A folder setting ('/' separates levels) as the server names it. */
static char *
folder_wire(struct imap_session *is, const char *folder, char **error_r)
{
	char *name = g_strdup(folder);
	char *wire;

	if (is->sep != '/') {
		for (char *p = name; *p != '\0'; p++) {
			if (*p != '/')
				continue;
			if (is->sep == 0) {
				*error_r = g_strdup_printf(
				    "folder %s: the server has no folder hierarchy", folder);
				g_free(name);
				return NULL;
			}
			*p = is->sep;
		}
	}
	wire = poll_imap_mutf7(name);
	g_free(name);
	if (wire == NULL)
		*error_r = g_strdup_printf("folder %s: not valid UTF-8", folder);
	return wire;
}

static int
command(struct imap_session *is, const char *url, const char *cmd,
	int (*on_line)(void *ctx, const char *line, size_t len), void *ctx, char **error_r)
{
	return poll_curl_perform(is->pc, url, cmd, false, on_line, ctx, error_r);
}

/* Makes sure folder (wire name) exists: LIST, else CREATE + SUBSCRIBE. */
static int
folder_ensure(struct imap_session *is, const char *wire, char **error_r)
{
	char *quoted = poll_imap_quote(wire);
	char *cmd = NULL;
	bool found = false;
	int ret = -1;

	if (g_hash_table_contains(is->folders_ok, wire)) {
		g_free(quoted);
		return 0;
	}
	cmd = g_strdup_printf("LIST \"\" %s", quoted);
	if (command(is, is->base, cmd, on_list_folder, &found, error_r) < 0)
		goto out;
	if (!found) {
		char *error = NULL;
		g_free(cmd);
		cmd = g_strdup_printf("CREATE %s", quoted);
		if (command(is, is->base, cmd, on_ignore, NULL, &error) < 0) {
			*error_r = g_strdup_printf("cannot create folder %s: %s", wire, error);
			g_free(error);
			goto out;
		}
		log_info("poll: event=folder-created name=%s folder=%s", is->settings->name, wire);
		g_free(cmd);
		cmd = g_strdup_printf("SUBSCRIBE %s", quoted);
		if (command(is, is->base, cmd, on_ignore, NULL, &error) < 0) {
			log_debug("poll: event=subscribe-failed name=%s folder=%s error=\"%s\"",
				  is->settings->name, wire, error);
			g_free(error);
		}
	}
	g_hash_table_add(is->folders_ok, g_strdup(wire));
	ret = 0;
out:
	g_free(cmd);
	g_free(quoted);
	return ret;
}

/* Runs "UID <verb> <set> <tail>" over uids in chunks. */
static int
uid_command(struct imap_session *is, const char *verb, const uint64_t *uids, size_t count,
	    const char *tail, char **error_r)
{
	size_t done = 0;

	while (done < count) {
		size_t used = 0;
		char *set = poll_imap_uid_set(uids + done, MIN(count - done, IMAP_CHUNK),
					      UID_SET_MAX, &used);
		char *cmd =
		    g_strdup_printf("UID %s %s%s%s", verb, set, tail ? " " : "", tail ? tail : "");
		int r = command(is, is->box_url, cmd, on_ignore, NULL, error_r);
		g_free(cmd);
		g_free(set);
		if (r < 0)
			return -1;
		done += used;
	}
	return 0;
}

static int
expunge(struct imap_session *is, const uint64_t *uids, size_t count, char **error_r)
{
	if (uid_command(is, "STORE", uids, count, "+FLAGS.SILENT (\\Deleted)", error_r) < 0)
		return -1;
	if (is->cap_uidplus)
		return uid_command(is, "EXPUNGE", uids, count, NULL, error_r);
	/* Without UIDPLUS, EXPUNGE also removes messages others marked
	 * \Deleted in this mailbox: the server offers nothing narrower. */
	return command(is, is->box_url, "EXPUNGE", on_ignore, NULL, error_r);
}

static int
move_to(struct imap_session *is, const uint64_t *uids, size_t count, const char *folder,
	char **error_r)
{
	char *wire = folder_wire(is, folder, error_r);
	char *quoted = NULL;
	int ret = -1;

	if (wire == NULL)
		return -1;
	if (folder_ensure(is, wire, error_r) < 0)
		goto out;
	quoted = poll_imap_quote(wire);
	if (is->cap_move) {
		ret = uid_command(is, "MOVE", uids, count, quoted, error_r);
		goto out;
	}
	if (uid_command(is, "COPY", uids, count, quoted, error_r) < 0)
		goto out;
	ret = expunge(is, uids, count, error_r);
out:
	if (ret < 0)
		g_hash_table_remove(is->folders_ok, wire); /* TRYCREATE: check again next time */
	g_free(quoted);
	g_free(wire);
	return ret;
}

/* Acts on a fetched batch; 0 or -1. */
static int
batch_act(struct imap_session *is, struct poll_item *items, size_t count, char **error_r)
{
	const struct poll_settings *s = is->settings;
	GArray *done = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	GArray *failed = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	GArray *unseen = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	int ret = -1;

	for (size_t i = 0; i < count; i++) {
		const struct poll_item *it = &items[i];
		if (it->fate == POLL_FATE_DONE)
			g_array_append_val(done, it->uid);
		else if (it->fate == POLL_FATE_FAILED)
			g_array_append_val(failed, it->uid);
		/* BODY[] set \Seen: take it back where it was not set, for
		 * keep (nothing else changes) and for failed_to (people
		 * should notice those). */
		if (!it->was_seen && it->accept_result == 0 &&
		    (s->after == POLL_AFTER_KEEP || it->fate == POLL_FATE_FAILED))
			g_array_append_val(unseen, it->uid);
	}
	if (unseen->len > 0 && uid_command(is, "STORE", (uint64_t *)(void *)unseen->data,
					   unseen->len, "-FLAGS.SILENT (\\Seen)", error_r) < 0)
		goto out;
	if (failed->len > 0 &&
	    move_to(is, (uint64_t *)(void *)failed->data, failed->len, s->failed_to, error_r) < 0)
		goto out;
	if (done->len > 0) {
		const uint64_t *uids = (const uint64_t *)(void *)done->data;
		switch (s->after) {
		case POLL_AFTER_MOVE:
			if (move_to(is, uids, done->len, s->move_to, error_r) < 0)
				goto out;
			break;
		case POLL_AFTER_FLAG:
			if (uid_command(is, "STORE", uids, done->len, "+FLAGS.SILENT (\\Seen)",
					error_r) < 0)
				goto out;
			break;
		case POLL_AFTER_DELETE:
			if (expunge(is, uids, done->len, error_r) < 0)
				goto out;
			break;
		default:
			break;
		}
	}
	ret = 0;
out:
	g_array_free(done, TRUE);
	g_array_free(failed, TRUE);
	g_array_free(unseen, TRUE);
	return ret;
}

/* The highest UID the checkpoint may name after this batch: every item up
 * to it is acted on, passed over (too large) or gone. */
static uint64_t
batch_checkpoint(const struct poll_item *items, size_t count, uint64_t last_uid, bool *blocked)
{
	for (size_t i = 0; i < count && !*blocked; i++) {
		const struct poll_item *it = &items[i];
		if (it->fate != POLL_FATE_NONE || it->too_large || it->accept_result == 1)
			last_uid = MAX(last_uid, it->uid);
		else
			*blocked = true;
	}
	return last_uid;
}

/* Fetches one message into pc->body; 0 fetched, 1 gone or too large
 * (item marked), -1 error. */
static int
fetch_one(struct imap_session *is, struct poll_item *it, char **error_r)
{
	char *url = g_strdup_printf("%s/;UID=%" G_GUINT64_FORMAT, is->box_url, (guint64)it->uid);
	char *error = NULL;
	int r;

	is->pc->body = g_byte_array_sized_new((guint)MIN(it->size + 16, 1u << 20));
	is->pc->body_max = is->settings->max_message_size;
	r = poll_curl_perform(is->pc, url, NULL, false, NULL, NULL, &error);
	g_free(url);
	if (r == 0 && is->pc->body->len > 0)
		return 0;
	g_byte_array_free(is->pc->body, TRUE);
	is->pc->body = NULL;
	if (r == 0) {
		/* No FETCH data: expunged by someone else meanwhile. */
		it->accept_result = 1;
		return 1;
	}
	if (is->pc->body_too_large) {
		it->too_large = true;
		log_warnx("poll: event=too-large name=%s mailbox=%s uid=%" G_GUINT64_FORMAT
			  " max_message_size=%zu",
			  is->settings->name, is->settings->key, (guint64)it->uid,
			  is->settings->max_message_size);
		g_free(error);
		return 1;
	}
	*error_r = error;
	return -1;
}

/* The UID of message number seq: 0 with *uid_r, -1. */
static int
uid_at(struct imap_session *is, uint64_t seq, uint64_t *uid_r, char **error_r)
{
	struct uid_probe pr = {.seq = seq};
	char cmd[64];

	g_snprintf(cmd, sizeof(cmd), "FETCH %" G_GUINT64_FORMAT " (UID)", (guint64)seq);
	if (command(is, is->box_url, cmd, on_uid_probe, &pr, error_r) < 0)
		return -1;
	if (pr.uid == 0) {
		*error_r = g_strdup_printf(
		    "no UID for message %" G_GUINT64_FORMAT " (mailbox changed?)", (guint64)seq);
		return -1;
	}
	*uid_r = pr.uid;
	return 0;
}

/* The candidates (UID >= list_lo, at most pass_max) in windows of message
 * numbers.  Each window asks again for the previous window's last message:
 * if its UID changed, someone expunged meanwhile and the numbers shifted,
 * so the listing starts over (a message must not slip through: with flag
 * and keep the checkpoint would pass it).  0 or -1. */
static int
list_entries(struct imap_session *is, char **error_r)
{
	uint64_t m = is->messages, start = 1, uid;

	for (unsigned attempt = 0;; attempt++) {
		g_array_set_size(is->entries, 0);
		is->list_more = false;
		if (is->list_lo > 1) {
			/* The first message with UID >= list_lo, by bisection. */
			if (uid_at(is, m, &uid, error_r) < 0)
				return -1;
			if (uid < is->list_lo)
				return 0;
			uint64_t lo = 1, hi = m;
			while (lo < hi) {
				uint64_t mid = lo + (hi - lo) / 2;
				if (uid_at(is, mid, &uid, error_r) < 0)
					return -1;
				if (uid < is->list_lo)
					lo = mid + 1;
				else
					hi = mid;
			}
			start = lo;
		}
		struct list_window w = {.is = is};
		bool shifted = false;
		for (uint64_t s = start; s <= m && !is->list_more;) {
			uint64_t e = MIN(s + IMAP_CHUNK - 1, m);
			uint64_t from = w.overlap_seq != 0 ? w.overlap_seq : s;
			char cmd[96];
			g_snprintf(cmd, sizeof(cmd),
				   "FETCH %" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT
				   " (UID FLAGS RFC822.SIZE)",
				   (guint64)from, (guint64)e);
			w.overlap_ok = w.overlap_seq == 0;
			w.lines = 0;
			if (command(is, is->box_url, cmd, on_fetch_window, &w, error_r) < 0)
				return -1;
			if (!w.overlap_ok) {
				shifted = true;
				break;
			}
			if (w.lines == 0 || w.last_seq < e)
				break; /* the mailbox shrank: what is left is listed */
			w.overlap_seq = w.last_seq;
			w.overlap_uid = w.last_uid;
			s = e + 1;
		}
		if (!shifted)
			return 0;
		if (attempt >= 2) {
			*error_r = g_strdup(
			    "the mailbox kept changing while it was listed; trying again later");
			return -1;
		}
		log_info(
		    "poll: event=relist name=%s mailbox=%s detail=\"messages expunged meanwhile\"",
		    is->settings->name, is->settings->key);
	}
}

static void
session_free(struct imap_session *is)
{
	g_free(is->base);
	g_free(is->box_url);
	g_free(is->box_wire);
	if (is->entries != NULL)
		g_array_free(is->entries, TRUE);
	if (is->folders_ok != NULL)
		g_hash_table_destroy(is->folders_ok);
}

int
poll_imap_pass(struct poll_pass *pass, struct poll_curl *pc, char **error_r)
{
	const struct poll_settings *s = pass->settings;
	struct imap_session is = {0};
	uint64_t cp_validity = 0, cp_last = 0;
	struct poll_item *items = NULL;
	char *cmd = NULL, *error = NULL;
	int ret = -1;

	is.pass = pass;
	is.pc = pc;
	is.settings = s;
	is.base = poll_curl_base_url(s);
	is.entries = g_array_new(FALSE, FALSE, sizeof(struct imap_entry));
	is.folders_ok = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	if (command(&is, is.base, "CAPABILITY", on_capability, &is, error_r) < 0)
		goto out;
	if (command(&is, is.base, "LIST \"\" \"\"", on_list_root, &is, error_r) < 0)
		goto out;
	is.box_wire = folder_wire(&is, s->mailbox, error_r);
	if (is.box_wire == NULL)
		goto out;
	g_free(pass->imap_mailbox_wire);
	pass->imap_mailbox_wire = g_strdup(is.box_wire);
	/* NOOP in the mailbox first: it selects it (or syncs the selection
	 * kept from the last pass), so the STATUS that follows is not the
	 * stale view a server may give of the selected mailbox. */
	char *escaped = g_uri_escape_string(is.box_wire, NULL, FALSE);
	char *plain_url = g_strconcat(is.base, escaped, NULL);
	int noop = command(&is, plain_url, "NOOP", on_ignore, NULL, &error);
	g_free(plain_url);
	if (noop < 0) {
		*error_r = g_strdup_printf("mailbox %s: %s", s->mailbox, error);
		g_free(escaped);
		goto out;
	}
	char *quoted = poll_imap_quote(is.box_wire);
	cmd = g_strdup_printf("STATUS %s (MESSAGES UIDNEXT UIDVALIDITY)", quoted);
	g_free(quoted);
	if (command(&is, is.base, cmd, on_status, &is, &error) < 0) {
		*error_r = g_strdup_printf("mailbox %s: %s", s->mailbox, error);
		g_free(escaped);
		goto out;
	}
	if (is.uidvalidity == 0) {
		g_free(escaped);
		*error_r =
		    g_strdup_printf("mailbox %s: the server gave no UIDVALIDITY", s->mailbox);
		goto out;
	}
	is.box_url = g_strdup_printf("%s%s;UIDVALIDITY=%" G_GUINT64_FORMAT, is.base, escaped,
				     (guint64)is.uidvalidity);
	g_free(escaped);

	if (poll_state_imap_get(pass->store, pass->mailbox_id, &cp_validity, &cp_last, error_r) < 0)
		goto out;
	if (cp_validity != is.uidvalidity) {
		if (cp_validity != 0)
			log_warnx("poll: event=uidvalidity-changed name=%s mailbox=%s "
				  "old=%" G_GUINT64_FORMAT " new=%" G_GUINT64_FORMAT
				  " detail=\"checkpoint reset; duplicates are recognised\"",
				  s->name, s->key, (guint64)cp_validity, (guint64)is.uidvalidity);
		cp_last = 0;
		if (poll_state_imap_set(pass->store, pass->mailbox_id, is.uidvalidity, 0, error_r) <
		    0)
			goto out;
	}
	bool by_checkpoint = s->after == POLL_AFTER_FLAG || s->after == POLL_AFTER_KEEP;
	is.list_lo = by_checkpoint ? cp_last + 1 : 1;
	if (is.messages == 0 || (by_checkpoint && is.uidnext != 0 && is.uidnext <= is.list_lo)) {
		ret = 0;
		goto out;
	}
	if (list_entries(&is, error_r) < 0)
		goto out;
	g_array_sort(is.entries, entry_cmp);
	pass->stats.listed = is.entries->len;
	pass->stats.more = is.list_more;
	pass->total = is.entries->len;
	poll_pass_report(pass);
	bool have_failed_to = s->failed_to[0] != '\0' && s->after != POLL_AFTER_KEEP;
	bool blocked = false;
	items = g_new0(struct poll_item, s->batch_size);

	for (guint start = 0; start < is.entries->len; start += s->batch_size) {
		size_t n = MIN(s->batch_size, is.entries->len - start);
		int fetch_failed = 0;
		memset(items, 0, sizeof(*items) * s->batch_size);
		for (size_t i = 0; i < n; i++) {
			const struct imap_entry *e =
			    &g_array_index(is.entries, struct imap_entry, start + i);
			struct poll_item *it = &items[i];
			it->uid = e->uid;
			it->size = e->size;
			it->was_seen = e->seen;
			it->accept_result = 2; /* not tried */
		}
		for (size_t i = 0; i < n && !fetch_failed; i++) {
			struct poll_item *it = &items[i];
			if (poll_pass_stopping(pass)) {
				error = g_strdup("stopped");
				fetch_failed = 1;
				break;
			}
			if (it->size > s->max_message_size) {
				it->too_large = true;
				log_warnx("poll: event=too-large name=%s mailbox=%s "
					  "uid=%" G_GUINT64_FORMAT " size=%" G_GUINT64_FORMAT
					  " max_message_size=%zu",
					  s->name, s->key, (guint64)it->uid, (guint64)it->size,
					  s->max_message_size);
				continue;
			}
			int r = fetch_one(&is, it, &error);
			if (r < 0) {
				fetch_failed = 1;
				break;
			}
			if (r > 0)
				continue;
			GBytes *raw = g_byte_array_free_to_bytes(pc->body);
			pc->body = NULL;
			char name[32];
			g_snprintf(name, sizeof(name), "uid %" G_GUINT64_FORMAT, (guint64)it->uid);
			poll_pass_accept(pass, it, raw, "imap", name);
			poll_pass_report(pass);
		}
		poll_pass_classify(pass, items, n, have_failed_to);
		poll_pass_report(pass);
		char *act_error = NULL;
		if (batch_act(&is, items, n, &act_error) < 0) {
			*error_r = g_strdup_printf(
			    "after storing: %s (the messages stay and are completed next pass)",
			    act_error);
			g_free(act_error);
			g_free(error);
			error = NULL;
			goto out;
		}
		uint64_t new_last = by_checkpoint ? batch_checkpoint(items, n, cp_last, &blocked)
						  : MAX(cp_last, items[n - 1].uid);
		if (new_last != cp_last) {
			cp_last = new_last;
			if (poll_state_imap_set(pass->store, pass->mailbox_id, is.uidvalidity,
						cp_last, error_r) < 0)
				goto out;
		}
		if (fetch_failed) {
			*error_r = error;
			error = NULL;
			goto out;
		}
		if (pass->accept_error != NULL) {
			*error_r = g_strdup_printf("the store did not take a message: %s",
						   pass->accept_error);
			goto out;
		}
	}
	ret = 0;
out:
	g_free(items);
	g_free(cmd);
	g_free(error);
	if (pc->body != NULL) {
		g_byte_array_free(pc->body, TRUE);
		pc->body = NULL;
	}
	session_free(&is);
	return ret;
}
