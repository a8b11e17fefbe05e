/* poll.h: mailbox intake: IMAP, POP3 and Maildir pollers feeding the funnel.
 *
 * A poller takes the messages of one mailbox, hands each one to
 * intake_accept and only after it returned 0 (the raw bytes are committed)
 * moves, flags or deletes it.  A crash between the commit and the action
 * leaves the message in place; the next pass fetches it again, the funnel
 * answers "duplicate" (same bytes, nothing stored twice) and the action is
 * completed.  Nothing is lost and nothing is doubled.
 *
 * Configuration: any number of [poll.NAME] sections of the daemon's
 * configuration file (src/daemon/service-poll.c reads them from the
 * settings table into struct poll_settings; snapkeep.conf.5 documents
 * them), or `snapkeep import URL` for one pass from the command line.
 *
 * Threads: each configured poller runs in its own thread with its own
 * libcurl handles and its own store connection (for its checkpoints);
 * poll_get_states and poll_metrics_write may be called from any thread. */
#ifndef SK_POLL_H
#define SK_POLL_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct intake;

enum poll_kind { POLL_KIND_IMAP, POLL_KIND_POP3, POLL_KIND_MAILDIR };

/* What to do with a message once it is safely stored. */
enum poll_after {
	POLL_AFTER_DEFAULT = 0, /* IMAP move, POP3 delete, Maildir flag */
	POLL_AFTER_MOVE,	/* IMAP: to move_to; Maildir: to the move_to folder */
	POLL_AFTER_FLAG,	/* IMAP: \Seen; Maildir: new/ -> cur/ with :2,S */
	POLL_AFTER_DELETE,	/* IMAP: \Deleted + expunge; POP3: DELE; Maildir: unlink */
	POLL_AFTER_KEEP,	/* leave it; remember what was taken (UID, UIDL, name) */
};

/* STARTTLS on imap:// and pop3:// (imaps:// and pop3s:// are TLS from the start). */
enum poll_starttls {
	POLL_STARTTLS_AUTO = 0, /* required, except to a loopback address */
	POLL_STARTTLS_REQUIRED,
	POLL_STARTTLS_NO,
};

/* One poller's settings: the keys of a [poll.NAME] section.  Every limit
 * has a default (poll_settings_new); strings are owned. */
struct poll_settings {
	char *name;	     /* NAME of [poll.NAME]; "import" from the CLI */
	char *url;	     /* url: imap[s]://USER@HOST[:PORT]/MAILBOX, pop3[s]://USER@HOST[:PORT],
				maildir:/PATH */
	char *password_file; /* password_file: the password, one line (never in the url) */
	unsigned interval_s; /* interval: seconds between passes; default 60 */
	enum poll_after after; /* after: move | flag | delete | keep */
	char *move_to;	       /* move_to: default "snapkeep/processed" ('/' separates levels) */
	char *failed_to;       /* failed_to: not-snapshot, unparsable or too large; default
				  "snapkeep/failed"; "" = like the others */
	bool tls_verify;   /* tls_verify: verify the server's certificate and name; default true */
	char *tls_ca_file; /* tls_ca_file: PEM bundle of trusted CAs; default the system's */
	enum poll_starttls starttls; /* starttls: auto | required | no */
	unsigned batch_size; /* batch_size: messages fetched before acting on them; default 100 */
	bool idle;	     /* idle: IMAP IDLE / inotify on the Maildir; default true */
	unsigned idle_restart_s; /* idle_restart: re-issue IDLE after this; default 1500 (RFC 2177:
				    < 29 min) */
	unsigned timeout_s;	 /* timeout: connect and stall limit of one command; default 60 */
	unsigned backoff_min_s;	 /* backoff_min: first retry delay after an error; default 5 */
	unsigned backoff_max_s;	 /* backoff_max: longest retry delay; default 900 */
	size_t max_message_size; /* max_message_size: larger messages are not fetched; default 64
				    MiB */
	unsigned parse_wait_s;	 /* parse_wait: wait for parse outcomes before choosing
				    move_to/failed_to; default 10 */
	unsigned pass_max; /* pass_max: messages per pass (the next pass follows at once); default
			      10000 */
	unsigned accept_jobs; /* accept_jobs: messages handed to the funnel at once (group commit);
				 default 8 */

	/* Derived from url by poll_settings_set_url. */
	enum poll_kind kind;
	bool tls;   /* imaps / pop3s */
	char *host; /* without brackets */
	unsigned port;
	char *user;
	char *login_options; /* ";AUTH=..." of the url (CURLOPT_LOGIN_OPTIONS), or NULL */
	char *mailbox;	     /* IMAP: decoded mailbox name (UTF-8); default INBOX */
	char *path;	     /* Maildir: the directory */
	char *key;	     /* the mailbox without secrets: checkpoint key, logs, state */
};

/* A settings object with every default; url unset.  Never NULL. */
struct poll_settings *poll_settings_new(const char *name);
void poll_settings_free(struct poll_settings **settings);
struct poll_settings *poll_settings_copy(const struct poll_settings *settings);
/* Parses url into the derived fields (kind, host, ...).  0 or -1. */
int poll_settings_set_url(struct poll_settings *settings, const char *url, char **error_r);
/* Fills defaults that depend on the kind and checks the combination
 * (after=move with POP3 is an error, ...).  0 or -1. */
int poll_settings_check(struct poll_settings *settings, char **error_r);
/* Parses "move", "flag", ...; 0 or -1. */
int poll_after_parse(const char *text, enum poll_after *after_r);
const char *poll_after_name(enum poll_after after);
const char *poll_kind_name(enum poll_kind kind);

/* Refuses two settings on the same mailbox.  0 or -1. */
int poll_settings_check_set(GPtrArray *list, char **error_r);

/* Counts of one pass. */
struct poll_pass_stats {
	unsigned listed;     /* messages seen in the mailbox (to take) */
	unsigned taken;	     /* accepted by the funnel, new */
	unsigned duplicates; /* accepted, already stored */
	unsigned failed;     /* sent to failed_to: not-snapshot, unparsable, too large */
	unsigned skipped; /* left in place: unreadable, not accepted, too large without failed_to */
	uint64_t bytes;
	bool more; /* pass_max reached: more is waiting */
};

/* One pass over a mailbox (snapkeep import URL): take everything there is,
 * with the same semantics as the daemon's pollers.  db_path is the
 * database intake uses (for the checkpoints).  With progress set, a
 * progress bar goes to stderr.  0, or -1 with *error_r. */
int poll_run_once(struct intake *intake, const char *db_path, const struct poll_settings *settings,
		  bool progress, struct poll_pass_stats *stats_r, char **error_r);

/* For `snapkeep import`: true for "imap://", "maildir:", ... arguments. */
bool poll_cli_is_url(const char *arg);
/* The import command's options for mailbox URLs (--password-file, --after,
 * ...); add it to the command's GOptionContext (which takes ownership). */
GOptionGroup *poll_cli_option_group(void);
/* One pass over url with the options of poll_cli_option_group; prints a
 * summary line on stdout unless quiet.  0 or -1 with *error_r. */
int poll_cli_import(struct intake *intake, const char *db_path, const char *url, bool progress,
		    bool quiet, char **error_r);

/* The running pollers of the daemon. */
struct poll_set;

/* Starts one thread per settings (struct poll_settings *, copied).  db_path:
 * the database for the checkpoints.  0 or -1. */
int poll_set_start(struct intake *intake, const char *db_path, GPtrArray *settings,
		   struct poll_set **set_r, char **error_r);
/* SIGHUP: stops pollers whose section disappeared or changed, starts new
 * and changed ones, leaves the others running. */
int poll_set_reload(struct poll_set *set, GPtrArray *settings, char **error_r);
/* Asks every poller to stop, without waiting (SIGTERM). */
void poll_set_stop(struct poll_set *set);
/* True while a poller thread is still winding down after poll_set_stop. */
bool poll_set_busy(struct poll_set *set);
/* Stops every poller (a message being accepted is finished, the rest is
 * taken by the next run), waits for the threads and frees.  Accepts NULL. */
void poll_set_free(struct poll_set **set);
/* Wakes every poller for an immediate pass. */
void poll_set_wake(struct poll_set *set);

/* The state of one poller, for the log, /metrics and the intake page. */
struct poll_state {
	char *name;
	char *kind;    /* imap, pop3, maildir */
	char *mailbox; /* the url without secrets */
	char *after;
	bool running;
	bool idle;	      /* waiting in IMAP IDLE or on inotify */
	int64_t last_pass_us; /* end of the last pass (wall clock, us), 0: none yet */
	int64_t last_success_us;
	int64_t last_error_us;
	char *last_error;     /* NULL when the last pass succeeded */
	int64_t next_pass_us; /* when the next pass is due at the latest */
	uint64_t passes, errors;
	uint64_t taken, duplicates, failed, skipped;
	unsigned consecutive_errors;
};

/* Copies of every registered poller's state, sorted by name.  Caller owns
 * the array (g_ptr_array_unref frees the states).  Never NULL. */
GPtrArray *poll_get_states(void);
void poll_state_free(struct poll_state **state);
/* Appends the pollers' metrics in the Prometheus text format:
 * snapkeep_poll_messages_total{poller,result}, snapkeep_poll_errors_total,
 * snapkeep_poll_passes_total, snapkeep_poll_last_success_timestamp_seconds,
 * snapkeep_poll_up (1 when the last pass succeeded). */
void poll_metrics_write(GString *out);

#endif
