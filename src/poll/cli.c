/* cli.c: `snapkeep import imaps://USER@HOST/MAILBOX` (and imap, pop3,
 * pop3s, maildir:/PATH): the pollers' pass from the command line, with the
 * same semantics as the daemon (store, then move/flag/delete) and a
 * progress bar on a terminal.  Passes repeat while pass_max cut one short,
 * so one run takes everything the mailbox holds.
 *
 * The password comes from --password-file only, never from the command
 * line or the url.  Options are kept in file-scope variables that
 * GOptionContext fills (one command per process). */
#include "config.h"

#include "poll/poll-private.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char *opt_password_file;
static char *opt_after;
static char *opt_move_to;
static char *opt_failed_to;
static char *opt_tls_ca_file;
static char *opt_starttls;
static gboolean opt_no_tls_verify;
static gint opt_batch_size;
static gint opt_parse_wait = -1;
static gint opt_timeout;

bool
poll_cli_is_url(const char *arg)
{
	return strstr(arg, "://") != NULL || g_str_has_prefix(arg, "maildir:");
}

GOptionGroup *
poll_cli_option_group(void)
{
	static GOptionEntry entries[] = {
	    {"password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_password_file,
	     "mailbox urls: file holding the password", "FILE"},
	    {"after", 0, 0, G_OPTION_ARG_STRING, &opt_after,
	     "mailbox urls: move, flag, delete or keep once stored (default: IMAP move, POP3 "
	     "delete, "
	     "Maildir flag)",
	     "ACTION"},
	    {"move-to", 0, 0, G_OPTION_ARG_STRING, &opt_move_to,
	     "mailbox urls: folder for stored messages (default snapkeep/processed)", "FOLDER"},
	    {"failed-to", 0, 0, G_OPTION_ARG_STRING, &opt_failed_to,
	     "mailbox urls: folder for messages that are not snapshots (default snapkeep/failed, "
	     "\"\" none)",
	     "FOLDER"},
	    {"tls-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_tls_ca_file,
	     "mailbox urls: trusted CA certificates (PEM)", "FILE"},
	    {"no-tls-verify", 0, 0, G_OPTION_ARG_NONE, &opt_no_tls_verify,
	     "mailbox urls: do not verify the server's certificate (insecure)", NULL},
	    {"starttls", 0, 0, G_OPTION_ARG_STRING, &opt_starttls,
	     "mailbox urls: STARTTLS on imap:// and pop3://: auto (required except to loopback), "
	     "required, no",
	     "MODE"},
	    {"batch-size", 0, 0, G_OPTION_ARG_INT, &opt_batch_size,
	     "mailbox urls: messages fetched before acting on them (default 100)", "N"},
	    {"parse-wait", 0, 0, G_OPTION_ARG_INT, &opt_parse_wait,
	     "mailbox urls: seconds to wait for parse results to pick move-to or failed-to "
	     "(default 10)",
	     "S"},
	    {"timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout,
	     "mailbox urls: connect and stall timeout in seconds (default 60)", "S"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionGroup *group = g_option_group_new("mailbox",
						 "Mailbox url options (imap://, imaps://, pop3://, "
						 "pop3s://, maildir:)",
						 "Show the mailbox url options", NULL, NULL);
	g_option_group_add_entries(group, entries);
	return group;
}

static int
settings_from_options(const char *url, struct poll_settings **settings_r, char **error_r)
{
	struct poll_settings *s = poll_settings_new("import");

	if (poll_settings_set_url(s, url, error_r) < 0)
		goto fail;
	if (opt_password_file != NULL)
		s->password_file = g_strdup(opt_password_file);
	if (opt_after != NULL && poll_after_parse(opt_after, &s->after) < 0) {
		*error_r = g_strdup_printf("--after %s: use move, flag, delete or keep", opt_after);
		goto fail;
	}
	if (opt_move_to != NULL) {
		g_free(s->move_to);
		s->move_to = g_strdup(opt_move_to);
	}
	if (opt_failed_to != NULL) {
		g_free(s->failed_to);
		s->failed_to = g_strdup(opt_failed_to);
	}
	if (opt_tls_ca_file != NULL)
		s->tls_ca_file = g_strdup(opt_tls_ca_file);
	if (opt_no_tls_verify)
		s->tls_verify = false;
	if (opt_starttls != NULL) {
		if (strcmp(opt_starttls, "auto") == 0)
			s->starttls = POLL_STARTTLS_AUTO;
		else if (strcmp(opt_starttls, "required") == 0)
			s->starttls = POLL_STARTTLS_REQUIRED;
		else if (strcmp(opt_starttls, "no") == 0)
			s->starttls = POLL_STARTTLS_NO;
		else {
			*error_r = g_strdup_printf("--starttls %s: use auto, required or no",
						   opt_starttls);
			goto fail;
		}
	}
	if (opt_batch_size > 0)
		s->batch_size = (unsigned)opt_batch_size;
	if (opt_parse_wait >= 0)
		s->parse_wait_s = (unsigned)opt_parse_wait;
	if (opt_timeout > 0)
		s->timeout_s = (unsigned)opt_timeout;
	if (s->kind != POLL_KIND_MAILDIR && s->password_file == NULL) {
		*error_r = g_strdup_printf(
		    "%s: give --password-file FILE (the password is never taken from the "
		    "command line)",
		    s->key);
		goto fail;
	}
	if (poll_settings_check(s, error_r) < 0)
		goto fail;
	*settings_r = s;
	return 0;
fail:
	poll_settings_free(&s);
	return -1;
}

void
poll_progress_draw(void *ctx, const struct poll_pass_stats *st, unsigned total)
{
	struct poll_progress *bar = ctx;
	gint64 now = g_get_monotonic_time();
	unsigned done = st->taken + st->duplicates + st->skipped;
	unsigned width = 30, fill;
	char cells[64];

	if (bar->drawn && now - bar->last_us < 100000 && done < total)
		return;
	bar->last_us = now;
	bar->drawn = true;
	total = MAX(total, done);
	fill = total > 0 ? (unsigned)((guint64)done * width / total) : width;
	for (unsigned i = 0; i < width; i++)
		cells[i] = i < fill ? '#' : '.';
	cells[width] = '\0';
	fprintf(stderr, "\r%s: [%s] %u/%u messages, %.1f MB", bar->label, cells, done, total,
		st->bytes / 1e6);
	fflush(stderr);
}

void
poll_progress_end(struct poll_progress *bar)
{
	if (bar->drawn)
		fputc('\n', stderr);
	bar->drawn = false;
}

int
poll_cli_import(struct intake *intake, const char *db_path, const char *url, bool progress,
		bool quiet, char **error_r)
{
	struct poll_settings *s = NULL;
	struct poll_pass_stats total = {0}, st;
	gint64 started = g_get_monotonic_time();
	int r = 0;

	if (settings_from_options(url, &s, error_r) < 0)
		return -1;
	progress = progress && isatty(STDERR_FILENO);
	for (unsigned passes = 0;; passes++) {
		r = poll_run_once(intake, db_path, s, progress, &st, error_r);
		total.listed += st.listed;
		total.taken += st.taken;
		total.duplicates += st.duplicates;
		total.failed += st.failed;
		total.skipped += st.skipped;
		total.bytes += st.bytes;
		/* Only a full pass_max pass means more is waiting. */
		if (r < 0 || !st.more)
			break;
	}
	if (!quiet)
		printf("import: %s: %u messages, %.1f MB in %.2f s: %u new, %u duplicate, %u to "
		       "%s, %u left in "
		       "place%s\n",
		       s->key, total.listed, total.bytes / 1e6,
		       (g_get_monotonic_time() - started) / 1e6, total.taken, total.duplicates,
		       total.failed, s->failed_to[0] != '\0' ? s->failed_to : "failed_to",
		       total.skipped, r < 0 ? " (stopped by an error)" : "");
	poll_settings_free(&s);
	return r;
}
