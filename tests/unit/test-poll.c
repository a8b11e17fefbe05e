/* test-poll.c: the pollers' pieces that need no server: mailbox urls and
 * settings, the IMAP strings (modified UTF-7, quoting, UID sets, FETCH
 * lines, also fed random bytes), Maildir flag names, the password file,
 * the state registry and its metrics, and a Maildir pass through a real
 * funnel with files that cannot be taken (too large, a FIFO, a symlink, a
 * directory, a file still in tmp/). */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "intake/intake.h"
#include "poll/poll-private.h"
#include "util/log.h"

/* --- urls and settings ---------------------------------------------------------------------- */

static struct poll_settings *
parse_ok(const char *url)
{
	struct poll_settings *s = poll_settings_new("t");
	char *error = NULL;

	if (poll_settings_set_url(s, url, &error) < 0)
		g_error("%s: %s", url, error);
	return s;
}

static void
test_urls(void)
{
	static const struct {
		const char *url, *key, *host, *user, *mailbox;
		enum poll_kind kind;
		bool tls;
		unsigned port;
	} good[] = {
	    {"imap://u@h/INBOX", "imap://u@h:143/INBOX", "h", "u", "INBOX", POLL_KIND_IMAP, false,
	     143},
	    {"imaps://u@h", "imaps://u@h:993/INBOX", "h", "u", "INBOX", POLL_KIND_IMAP, true, 993},
	    {"IMAPS://u@h:1993/Snap%20shots/", "imaps://u@h:1993/Snap shots", "h", "u",
	     "Snap shots", POLL_KIND_IMAP, true, 1993},
	    {"imap://fleet%40example.com@[::1]:10143/a/b",
	     "imap://fleet%40example.com@[::1]:10143/a/b", "::1", "fleet@example.com", "a/b",
	     POLL_KIND_IMAP, false, 10143},
	    {"pop3://u@h", "pop3://u@h:110", "h", "u", NULL, POLL_KIND_POP3, false, 110},
	    {"pop3s://u@h:2995/", "pop3s://u@h:2995", "h", "u", NULL, POLL_KIND_POP3, true, 2995},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		struct poll_settings *s = parse_ok(good[i].url);
		g_assert_cmpstr(s->key, ==, good[i].key);
		g_assert_cmpstr(s->host, ==, good[i].host);
		g_assert_cmpstr(s->user, ==, good[i].user);
		g_assert_cmpstr(s->mailbox, ==, good[i].mailbox);
		g_assert_cmpint(s->kind, ==, good[i].kind);
		g_assert_cmpint(s->tls, ==, good[i].tls);
		g_assert_cmpuint(s->port, ==, good[i].port);
		poll_settings_free(&s);
	}
	struct poll_settings *s = parse_ok("maildir:/var/mail/x/");
	g_assert_cmpint(s->kind, ==, POLL_KIND_MAILDIR);
	g_assert_cmpstr(s->path, ==, "/var/mail/x");
	g_assert_cmpstr(s->key, ==, "maildir:/var/mail/x");
	poll_settings_free(&s);
	s = parse_ok("maildir:///srv/md");
	g_assert_cmpstr(s->path, ==, "/srv/md");
	poll_settings_free(&s);

	static const struct {
		const char *url, *why;
	} bad[] = {
	    {"imap://u:secret@h/INBOX", "password_file"},
	    {"imap://h/INBOX", "no user"},
	    {"imap://u@/INBOX", "host"},
	    {"http://u@h/", "scheme"},
	    {"imap://u@h/INBOX?x=1", "query"},
	    {"imap://u@h/INBOX;UIDVALIDITY=5", "mailbox"},
	    {"imap://u@h/IN%0ABOX", "mailbox"},
	    {"pop3://u@h/INBOX", "names no mailbox"},
	    {"maildir://host/x", "maildir:/PATH"},
	    {"maildir:", "Maildir path"},
	    {"", "no url"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *error = NULL;
		s = poll_settings_new("t");
		g_assert_cmpint(poll_settings_set_url(s, bad[i].url, &error), ==, -1);
		if (strstr(error, bad[i].why) == NULL)
			g_error("%s: \"%s\" does not mention %s", bad[i].url, error, bad[i].why);
		g_free(error);
		poll_settings_free(&s);
	}
}

static void
test_settings_check(void)
{
	char *error = NULL;
	struct poll_settings *s = parse_ok("imap://u@127.0.0.1/INBOX");

	g_assert_cmpint(poll_settings_check(s, &error), ==, -1); /* no password_file */
	g_assert_nonnull(strstr(error, "password_file"));
	g_clear_pointer(&error, g_free);
	s->password_file = g_strdup("/x");
	g_assert_cmpint(poll_settings_check(s, &error), ==, 0);
	g_assert_cmpint(s->after, ==, POLL_AFTER_MOVE);
	g_assert_cmpint(s->starttls, ==, POLL_STARTTLS_NO); /* loopback */
	g_assert_true(s->tls_verify);
	poll_settings_free(&s);

	s = parse_ok("imap://u@mail.example.com/INBOX");
	s->password_file = g_strdup("/x");
	g_assert_cmpint(poll_settings_check(s, &error), ==, 0);
	g_assert_cmpint(s->starttls, ==, POLL_STARTTLS_REQUIRED);
	poll_settings_free(&s);

	s = parse_ok("imap://u@h/snapkeep/processed");
	s->password_file = g_strdup("/x");
	g_assert_cmpint(poll_settings_check(s, &error), ==, -1); /* source = move_to */
	g_clear_pointer(&error, g_free);
	poll_settings_free(&s);

	s = parse_ok("pop3://u@h");
	s->password_file = g_strdup("/x");
	g_assert_cmpint(poll_settings_check(s, &error), ==, 0);
	g_assert_cmpint(s->after, ==, POLL_AFTER_DELETE);
	s->after = POLL_AFTER_FLAG;
	g_assert_cmpint(poll_settings_check(s, &error), ==, -1);
	g_assert_nonnull(strstr(error, "delete or keep"));
	g_clear_pointer(&error, g_free);
	poll_settings_free(&s);

	s = parse_ok("maildir:/m");
	g_assert_cmpint(poll_settings_check(s, &error), ==, 0); /* no password needed */
	g_assert_cmpint(s->after, ==, POLL_AFTER_FLAG);
	g_free(s->move_to);
	s->move_to = g_strdup("../escape");
	g_assert_cmpint(poll_settings_check(s, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	poll_settings_free(&s);

	/* Two settings on one mailbox. */
	GPtrArray *list = g_ptr_array_new();
	struct poll_settings *a = parse_ok("imap://u@h/INBOX"),
			     *b = parse_ok("imap://u@h:143/INBOX");
	g_ptr_array_add(list, a);
	g_ptr_array_add(list, b);
	g_assert_cmpint(poll_settings_check_set(list, &error), ==, -1);
	g_clear_pointer(&error, g_free);
	g_ptr_array_unref(list);
	poll_settings_free(&a);
	poll_settings_free(&b);

	enum poll_after after;
	g_assert_cmpint(poll_after_parse("KEEP", &after), ==, 0);
	g_assert_cmpint(after, ==, POLL_AFTER_KEEP);
	g_assert_cmpint(poll_after_parse("default", &after), ==, -1);
	g_assert_cmpint(poll_after_parse("", &after), ==, -1);
}

/* --- IMAP strings ------------------------------------------------------------------------- */

static void
test_mutf7(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"INBOX", "INBOX"},
	    {"a&b", "a&-b"},
	    {"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
	    /* RFC 3501 5.1.3: ~peter/mail/台北/日本語 */
	    {"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	     "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	    {"\xf0\x9f\x93\xa0", "&2D3c4A-"}, /* a fax machine: a surrogate pair */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *out = poll_imap_mutf7(cases[i].in);
		g_assert_cmpstr(out, ==, cases[i].out);
		g_free(out);
	}
	g_assert_null(poll_imap_mutf7("bad \xff utf-8"));
}

static void
test_quote(void)
{
	char *q = poll_imap_quote("a \"b\" \\c");
	g_assert_cmpstr(q, ==, "\"a \\\"b\\\" \\\\c\"");
	g_free(q);
	g_assert_null(poll_imap_quote("a\r\nb"));
	g_assert_null(poll_imap_quote("a\nb"));
}

static void
test_uid_set(void)
{
	const uint64_t uids[] = {1, 2, 3, 5, 7, 8, 100, 4294967295u};
	size_t used;
	char *set = poll_imap_uid_set(uids, G_N_ELEMENTS(uids), 1000, &used);

	g_assert_cmpstr(set, ==, "1:3,5,7:8,100,4294967295");
	g_assert_cmpuint(used, ==, G_N_ELEMENTS(uids));
	g_free(set);
	/* A length limit covers a prefix; the rest goes into the next set. */
	set = poll_imap_uid_set(uids, G_N_ELEMENTS(uids), 8, &used);
	g_assert_cmpstr(set, ==, "1:3,5");
	g_assert_cmpuint(used, ==, 4);
	g_free(set);
	set = poll_imap_uid_set(uids + used, G_N_ELEMENTS(uids) - used, 8, &used);
	g_assert_cmpstr(set, ==, "7:8,100");
	g_free(set);
}

static void
test_parse_fetch(void)
{
	uint64_t seq, uid, size;
	bool seen, deleted;

	g_assert_cmpint(
	    poll_imap_parse_fetch("* 12 FETCH (UID 345 FLAGS (\\Seen \\Recent) RFC822.SIZE 6789)",
				  &seq, &uid, &size, &seen, &deleted),
	    ==, 0);
	g_assert_cmpuint(seq, ==, 12);
	g_assert_cmpuint(uid, ==, 345);
	g_assert_cmpuint(size, ==, 6789);
	g_assert_true(seen);
	g_assert_false(deleted);
	/* Another order, other items, lower case. */
	g_assert_cmpint(poll_imap_parse_fetch(
			    "* 1 fetch (MODSEQ (5) rfc822.size 10 flags (\\Deleted $Label1 \\seen) "
			    "X-GM-MSGID \"a b\" uid 9)",
			    &seq, &uid, &size, &seen, &deleted),
			==, 0);
	g_assert_cmpuint(uid, ==, 9);
	g_assert_cmpuint(size, ==, 10);
	g_assert_true(seen);
	g_assert_true(deleted);
	/* Flags that only look like ours. */
	g_assert_cmpint(poll_imap_parse_fetch("* 2 FETCH (FLAGS ($Seen \\Seenx) UID 3)", &seq, &uid,
					      &size, &seen, &deleted),
			==, 0);
	g_assert_false(seen);

	static const char *const bad[] = {
	    "* 3 FETCH (FLAGS (\\Seen))",	       /* no UID */
	    "* 3 EXISTS",			       /* not a FETCH */
	    "* FETCH (UID 3)",			       /* no number */
	    "* 3 FETCH (UID 0)",		       /* UID 0 */
	    "* 0 FETCH (UID 4)",		       /* message 0 */
	    "* 3 FETCH (UID 99999999999999999999999)", /* overflow */
	    "* 3 FETCH (UID 4294967296)",	       /* beyond 32 bits */
	    "* 3 FETCH (UID",			       /* truncated */
	    "* 3 FETCH (FLAGS (\\Seen UID 4",	       /* unclosed */
	    "A001 OK FETCH completed",
	    "",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		if (poll_imap_parse_fetch(bad[i], &seq, &uid, &size, &seen, &deleted) != -1)
			g_error("accepted: %s", bad[i]);

	/* Random bytes and random FETCH-like lines never crash or overrun. */
	static const char alphabet[] = "* 0123456789FETCHUIDLAGSRFC822.SIZE()\\\" ";
	for (unsigned n = 0; n < 20000; n++) {
		char line[96];
		unsigned len = (unsigned)g_test_rand_int_range(0, sizeof(line) - 1);
		bool structured = n % 2 == 0;
		for (unsigned i = 0; i < len; i++)
			line[i] = structured
				      ? alphabet[g_test_rand_int_range(0, sizeof(alphabet) - 1)]
				      : (char)g_test_rand_int_range(1, 256);
		line[len] = '\0';
		if (structured && len > 12)
			memcpy(line, "* 1 FETCH (", 11);
		poll_imap_parse_fetch(line, &seq, &uid, &size, &seen, &deleted);
	}
}

/* --- Maildir names, password file ----------------------------------------------------------- */

static void
test_maildir_names(void)
{
	static const struct {
		const char *in, *out;
		bool seen;
	} cases[] = {
	    {"1700000000.M1P2.host", "1700000000.M1P2.host:2,S", false},
	    {"x:2,", "x:2,S", false},
	    {"x:2,F", "x:2,FS", false},
	    {"x:2,FT", "x:2,FST", false},
	    {"x:2,DFPRT", "x:2,DFPRST", false},
	    {"x:2,S", "x:2,S", true},
	    {"x:2,FS", "x:2,FS", true},
	    {"x:1,experimental", "x:2,S", false},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *out = poll_maildir_seen_name(cases[i].in);
		g_assert_cmpstr(out, ==, cases[i].out);
		g_assert_cmpint(poll_maildir_has_seen(cases[i].in), ==, cases[i].seen);
		g_assert_true(poll_maildir_has_seen(out));
		g_free(out);
	}
}

static void
test_password_file(void)
{
	char *dir = g_dir_make_tmp("test-poll-XXXXXX", NULL);
	char *path = g_build_filename(dir, "pw", NULL);
	char *error = NULL, *pw;

	g_assert_true(g_file_set_contents(path, "s3cret\r\nignored\n", -1, NULL));
	g_chmod(path, 0600);
	pw = poll_password_read(path, &error);
	g_assert_cmpstr(pw, ==, "s3cret");
	g_free(pw);
	g_assert_true(g_file_set_contents(path, "no-newline", -1, NULL));
	pw = poll_password_read(path, &error);
	g_assert_cmpstr(pw, ==, "no-newline");
	g_free(pw);
	g_assert_true(g_file_set_contents(path, "\n", -1, NULL));
	g_assert_null(poll_password_read(path, &error));
	g_assert_nonnull(strstr(error, "empty"));
	g_clear_pointer(&error, g_free);
	char *big = g_strnfill(5000, 'x');
	g_assert_true(g_file_set_contents(path, big, -1, NULL));
	g_assert_null(poll_password_read(path, &error));
	g_clear_pointer(&error, g_free);
	g_free(big);
	g_assert_null(poll_password_read(dir, &error)); /* a directory */
	g_clear_pointer(&error, g_free);
	g_unlink(path);
	g_assert_null(poll_password_read(path, &error));
	g_assert_nonnull(strstr(error, "No such file"));
	g_clear_pointer(&error, g_free);
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
}

/* --- registry and metrics -------------------------------------------------------------------- */

static void
test_registry(void)
{
	struct poll_settings *a = parse_ok("imap://u@h/INBOX"), *b = parse_ok("maildir:/m");
	g_free(b->name);
	b->name = g_strdup("a \"quoted\"\\name");
	a->after = POLL_AFTER_FLAG;
	struct poll_state_entry *ea = poll_registry_add(a), *eb = poll_registry_add(b);
	struct poll_pass_stats st = {.taken = 5, .duplicates = 2, .failed = 1};

	poll_registry_pass(ea, &st, NULL, 0);
	poll_registry_pass(ea, &st, NULL, 0);
	poll_registry_pass(eb, &st, "cannot reach h:143", 0);

	GPtrArray *states = poll_get_states();
	g_assert_cmpuint(states->len, >=, 2);
	const struct poll_state *sa = NULL, *sb = NULL;
	for (guint i = 0; i < states->len; i++) {
		const struct poll_state *x = g_ptr_array_index(states, i);
		if (strcmp(x->name, "t") == 0)
			sa = x;
		else if (strcmp(x->name, b->name) == 0)
			sb = x;
	}
	g_assert_nonnull(sa);
	g_assert_nonnull(sb);
	g_assert_cmpuint(sa->taken, ==, 10);
	g_assert_cmpuint(sa->duplicates, ==, 4);
	g_assert_cmpuint(sa->passes, ==, 2);
	g_assert_cmpstr(sa->after, ==, "flag");
	g_assert_cmpstr(sa->kind, ==, "imap");
	g_assert_null(sa->last_error);
	g_assert_cmpint(sa->last_success_us, >, 0);
	g_assert_cmpstr(sb->last_error, ==, "cannot reach h:143");
	g_assert_cmpuint(sb->errors, ==, 1);
	g_assert_cmpuint(sb->consecutive_errors, ==, 1);

	GString *m = g_string_new(NULL);
	poll_metrics_write(m);
	g_assert_nonnull(
	    strstr(m->str, "snapkeep_poll_messages_total{poller=\"t\",result=\"stored\"} 10\n"));
	g_assert_nonnull(strstr(m->str, "snapkeep_poll_up{poller=\"t\"} 1\n"));
	g_assert_nonnull(
	    strstr(m->str, "snapkeep_poll_up{poller=\"a \\\"quoted\\\"\\\\name\"} 0\n"));
	g_assert_nonnull(strstr(m->str, "# TYPE snapkeep_poll_errors_total counter\n"));
	g_string_free(m, TRUE);
	g_ptr_array_unref(states);

	poll_registry_remove(&ea);
	poll_registry_remove(&eb);
	g_assert_null(ea);
	states = poll_get_states();
	g_assert_cmpuint(states->len, ==, 0);
	g_ptr_array_unref(states);
	poll_settings_free(&a);
	poll_settings_free(&b);
}

/* --- a Maildir pass through the funnel ----------------------------------------------------------
 */

static void
write_file(const char *dir, const char *sub, const char *name, const char *text)
{
	char *path = g_build_filename(dir, sub, name, NULL);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_free(path);
}

static unsigned
count_dir(const char *dir, const char *sub)
{
	char *path = g_build_filename(dir, sub, NULL);
	GDir *d = g_dir_open(path, 0, NULL);
	unsigned n = 0;
	if (d != NULL) {
		while (g_dir_read_name(d) != NULL)
			n++;
		g_dir_close(d);
	}
	g_free(path);
	return n;
}

static void
test_maildir_pass(void)
{
	char *dir = g_dir_make_tmp("test-poll-md-XXXXXX", NULL);
	char *md = g_build_filename(dir, "Maildir", NULL);
	char *db = g_build_filename(dir, "t.db", NULL);
	struct intake_settings is;
	struct intake *intake = NULL;
	char *error = NULL;
	static const char *const subs[] = {"cur", "new", "tmp"};

	for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
		char *p = g_build_filename(md, subs[i], NULL);
		g_assert_cmpint(g_mkdir_with_parents(p, 0700), ==, 0);
		g_free(p);
	}
	write_file(md, "new", "1.a.host", "From: a@b\r\nSubject: one\r\n\r\nbody one\r\n");
	write_file(md, "new", "2.b.host", "From: a@b\r\nSubject: two\r\n\r\nbody two\r\n");
	write_file(md, "cur", "3.c.host:2,F", "From: a@b\r\nSubject: three\r\n\r\nbody three\r\n");
	write_file(md, "cur", "4.d.host:2,S",
		   "From: a@b\r\nSubject: seen\r\n\r\nalready taken\r\n");
	write_file(md, "new", "5.big.host",
		   "From: a@b\r\nSubject: big\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
	write_file(md, "tmp", "6.partial.host", "From: a@b\r\nSubject: being written\r\n");
	char *fifo = g_build_filename(md, "new", "7.fifo.host", NULL);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	char *link = g_build_filename(md, "new", "8.link.host", NULL);
	g_assert_cmpint(symlink("/etc/passwd", link), ==, 0);
	char *sub = g_build_filename(md, "new", "9.dir.host", NULL);
	g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);

	intake_settings_default(&is);
	is.db_path = db;
	is.parse = false;
	g_assert_cmpint(intake_open(&is, &intake, &error), ==, 0);

	char *url = g_strconcat("maildir:", md, NULL);
	struct poll_settings *s = parse_ok(url);
	g_free(url);
	s->max_message_size = 60; /* 5.big is larger */
	s->parse_wait_s = 0;
	g_assert_cmpint(poll_settings_check(s, &error), ==, 0);

	struct poll_pass_stats st;
	int r = poll_run_once(intake, db, s, false, &st, &error);
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpuint(st.listed, ==, 7); /* 1, 2, 3, 5, 7, 8, 9; not 4 (seen), not tmp/ */
	g_assert_cmpuint(st.taken, ==, 3);
	g_assert_cmpuint(st.failed, ==, 1);  /* too large: to failed_to */
	g_assert_cmpuint(st.skipped, ==, 3); /* the FIFO, the symlink, the directory */
	/* new/ keeps what could not be taken; cur/ has the seen ones. */
	g_assert_cmpuint(count_dir(md, "new"), ==, 3);
	g_assert_cmpuint(count_dir(md, "cur"), ==, 4);
	g_assert_true(g_file_test(fifo, G_FILE_TEST_EXISTS));
	char *p = g_build_filename(md, "cur", "1.a.host:2,S", NULL);
	g_assert_true(g_file_test(p, G_FILE_TEST_IS_REGULAR));
	g_free(p);
	p = g_build_filename(md, "cur", "3.c.host:2,FS", NULL);
	g_assert_true(g_file_test(p, G_FILE_TEST_IS_REGULAR));
	g_free(p);
	p = g_build_filename(md, ".snapkeep.failed", "cur", "5.big.host:2,", NULL);
	g_assert_true(g_file_test(p, G_FILE_TEST_IS_REGULAR));
	g_free(p);
	g_assert_cmpuint(count_dir(md, "tmp"), ==, 1);

	/* The delivery completes: the next pass takes it, nothing twice. */
	char *from = g_build_filename(md, "tmp", "6.partial.host", NULL);
	char *to = g_build_filename(md, "new", "6.partial.host", NULL);
	g_assert_true(g_file_set_contents(
	    from, "From: a@b\r\nSubject: being written\r\n\r\ndone\r\n", -1, NULL));
	g_assert_cmpint(g_rename(from, to), ==, 0);
	r = poll_run_once(intake, db, s, false, &st, &error);
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpuint(st.taken, ==, 1);
	g_assert_cmpuint(st.duplicates, ==, 0);

	/* keep: taken once, remembered, nothing moves. */
	s->after = POLL_AFTER_KEEP;
	write_file(md, "new", "10.keep.host", "From: a@b\r\nSubject: keep\r\n\r\nkept\r\n");
	r = poll_run_once(intake, db, s, false, &st, &error);
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpuint(st.taken, ==, 2); /* the new one, and 4.d (seen, so flag passed it over) */
	g_assert_cmpuint(st.duplicates, ==, 4); /* the others in cur/, stored before */
	r = poll_run_once(intake, db, s, false, &st, &error);
	g_assert_cmpuint(st.taken + st.duplicates, ==, 0);
	p = g_build_filename(md, "new", "10.keep.host", NULL);
	g_assert_true(g_file_test(p, G_FILE_TEST_IS_REGULAR));
	g_free(p);

	/* Not a Maildir: an error, not a crash. */
	struct poll_settings *none = parse_ok("maildir:/nonexistent/snapkeep-test");
	g_assert_cmpint(poll_settings_check(none, &error), ==, 0);
	g_assert_cmpint(poll_run_once(intake, db, none, false, &st, &error), ==, -1);
	g_assert_nonnull(strstr(error, "no such directory"));
	g_clear_pointer(&error, g_free);
	poll_settings_free(&none);

	intake_free(&intake);
	poll_settings_free(&s);
	char *argv[] = {"rm", "-rf", dir, NULL};
	g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
	g_free(from);
	g_free(to);
	g_free(fifo);
	g_free(link);
	g_free(sub);
	g_free(md);
	g_free(db);
	g_free(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	log_init("test-poll", LOG_LEVEL_ERROR);
	g_test_add_func("/poll/urls", test_urls);
	g_test_add_func("/poll/settings-check", test_settings_check);
	g_test_add_func("/poll/mutf7", test_mutf7);
	g_test_add_func("/poll/quote", test_quote);
	g_test_add_func("/poll/uid-set", test_uid_set);
	g_test_add_func("/poll/parse-fetch", test_parse_fetch);
	g_test_add_func("/poll/maildir-names", test_maildir_names);
	g_test_add_func("/poll/password-file", test_password_file);
	g_test_add_func("/poll/registry", test_registry);
	g_test_add_func("/poll/maildir-pass", test_maildir_pass);
	return g_test_run();
}
