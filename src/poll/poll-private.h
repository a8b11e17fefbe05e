/* poll-private.h: what the pollers' files share: a pass (the accept pool,
 * parse-outcome wait, counters), the checkpoint store, libcurl set-up and
 * the per-protocol pass functions. */
#ifndef SK_POLL_PRIVATE_H
#define SK_POLL_PRIVATE_H

#include <curl/curl.h>

#include "poll/poll.h"
#include "store/store.h"

/* --- a pass ------------------------------------------------------------------ */

/* What happens to one message after the funnel answered. */
enum poll_fate {
	POLL_FATE_NONE = 0, /* not accepted (yet): leave it */
	POLL_FATE_DONE,	    /* stored: the configured action (move_to, flag, delete, keep) */
	POLL_FATE_FAILED,   /* stored but not a snapshot / unparsable, or too large: failed_to */
};

/* One message of a batch. */
struct poll_item {
	uint64_t uid;  /* IMAP UID, POP3 message number, index */
	char *key;     /* POP3 UIDL, Maildir file name; NULL for IMAP */
	uint64_t size; /* as the server announced it (0: unknown) */
	bool was_seen; /* IMAP: \Seen before we fetched it */
	bool too_large;
	int accept_result; /* 2 not tried, 1 gone from the mailbox, 0 accepted, -1 not accepted */
	struct store_receipt receipt;
	enum poll_fate fate;
};

struct poll_pass {
	const struct poll_settings *settings;
	struct intake *intake;
	struct store *store; /* the poller's connection (checkpoints, outcomes) */
	int64_t mailbox_id;  /* poll_mailboxes.id */
	volatile gint *stop; /* non-zero: stop as soon as possible */
	struct poll_pass_stats stats;

	/* progress (CLI) */
	void (*progress)(void *ctx, const struct poll_pass_stats *stats, unsigned total);
	void *progress_ctx;
	unsigned total;

	/* the accept pool */
	GThreadPool *pool;
	GMutex lock;
	GCond cond;
	unsigned inflight;
	char *accept_error;	 /* first funnel error of the pass */
	GHashTable *warned;	 /* the poller's: names already warned about (unreadable) */
	char *imap_mailbox_wire; /* out: the mailbox as the server names it (for IDLE) */
};

void poll_pass_init(struct poll_pass *pass, const struct poll_settings *settings,
		    struct intake *intake, struct store *store, int64_t mailbox_id,
		    volatile gint *stop);
void poll_pass_deinit(struct poll_pass *pass);
bool poll_pass_stopping(const struct poll_pass *pass);
/* Hands raw (taken over) to the funnel in the background; blocks while
 * accept_jobs messages are in flight.  The result lands in item. */
void poll_pass_accept(struct poll_pass *pass, struct poll_item *item, GBytes *raw,
		      const char *source, const char *name);
/* Waits until every accept of the pass has returned. */
void poll_pass_wait(struct poll_pass *pass);
/* Sets each accepted item's fate from its parse outcome, waiting up to
 * parse_wait for outcomes still pending (then DONE).  Too-large items are
 * FAILED when failed_to is set.  Counts taken/duplicates/failed/skipped. */
void poll_pass_classify(struct poll_pass *pass, struct poll_item *items, size_t count,
			bool have_failed_to);
void poll_pass_report(struct poll_pass *pass);

void poll_item_clear(struct poll_item *item);

/* --- checkpoints (state.c) -------------------------------------------------------- */

/* The row of settings->key, created when missing; 0 or -1. */
int poll_state_mailbox(struct store *store, const struct poll_settings *settings, int64_t *id_r,
		       char **error_r);
/* IMAP checkpoint: 0 with *uidvalidity_r (0: none) and *last_uid_r, or -1. */
int poll_state_imap_get(struct store *store, int64_t mailbox_id, uint64_t *uidvalidity_r,
			uint64_t *last_uid_r, char **error_r);
int poll_state_imap_set(struct store *store, int64_t mailbox_id, uint64_t uidvalidity,
			uint64_t last_uid, char **error_r);
/* keep mode: 1 when key was taken already, 0 not, -1 error. */
int poll_state_seen_has(struct store *store, int64_t mailbox_id, const char *key, char **error_r);
/* Records the taken keys of items (those with fate != NONE), in one transaction. */
int poll_state_seen_add(struct store *store, int64_t mailbox_id, const struct poll_item *items,
			size_t count, char **error_r);
/* Forgets keys not in present (a complete listing: GHashTable of char *). */
int poll_state_seen_sweep(struct store *store, int64_t mailbox_id, GHashTable *present,
			  char **error_r);
/* Adds a pass's result: counters, last success or last error. */
int poll_state_pass_done(struct store *store, int64_t mailbox_id,
			 const struct poll_pass_stats *stats, const char *error, char **error_r);
/* The outcome of message_id (messages.outcome): 0 with *outcome_r, or -1. */
int poll_state_outcome(struct store *store, int64_t message_id, enum store_outcome *outcome_r,
		       char **error_r);

/* --- libcurl (curl.c) ---------------------------------------------------------------- */

struct poll_curl {
	CURL *curl;
	const struct poll_settings *settings;
	volatile gint *stop;
	char errbuf[CURL_ERROR_SIZE];
	GString *last_reply; /* the last refusal, else the last line that was not untagged data */
	bool refused;
	/* body sink: either lines to a callback, or bytes to a buffer */
	GByteArray *body;
	size_t body_max;
	bool body_too_large;
	GString *line; /* partial line of a line sink */
	bool line_overflow;
	int (*on_line)(void *ctx, const char *line, size_t len);
	void *line_ctx;
	char *password;
	bool forbid_new_connection; /* POP3: message numbers belong to one session */
	bool connected;
};

/* Longest response line the line parsers take (longer lines are dropped
 * with an error). */
#define POLL_LINE_MAX (64 * 1024)

/* A handle with the settings' TLS, timeout, credentials (from
 * password_file).  0 or -1. */
int poll_curl_open(struct poll_curl *pc, const struct poll_settings *settings, volatile gint *stop,
		   char **error_r);
void poll_curl_close(struct poll_curl *pc);
/* Runs one request: custom (NULL: none) on url, response lines to on_line
 * (or the body to pc->body when on_line is NULL).  nobody: the command has
 * a one-line answer (POP3 DELE).  0 or -1 with a clear *error_r. */
int poll_curl_perform(struct poll_curl *pc, const char *url, const char *custom, bool nobody,
		      int (*on_line)(void *ctx, const char *line, size_t len), void *ctx,
		      char **error_r);
/* A base URL "scheme://host:port/" for the settings. */
char *poll_curl_base_url(const struct poll_settings *settings);
/* The password from password_file (first line), or NULL with *error_r. */
char *poll_password_read(const char *path, char **error_r);

/* --- the protocols -------------------------------------------------------------------- */

/* One pass of each kind.  0 or -1 with *error_r. */
int poll_imap_pass(struct poll_pass *pass, struct poll_curl *pc, char **error_r);
int poll_pop3_pass(struct poll_pass *pass, char **error_r);
int poll_maildir_pass(struct poll_pass *pass, char **error_r);

/* IMAP IDLE on its own connection (idle.c). */
struct poll_idle;
/* Connects, logs in and EXAMINEs the mailbox; 0, -1 with *error_r, or 1
 * when the server does not offer IDLE (then poll by interval). */
int poll_idle_open(const struct poll_settings *settings, const char *mailbox_wire,
		   volatile gint *stop, struct poll_idle **idle_r, char **error_r);
/* Waits up to timeout_ms for new mail or wake_fd: 1 new mail, 0 timeout
 * or woken, -1 error (the connection is unusable: free it). */
int poll_idle_wait(struct poll_idle *idle, unsigned timeout_ms, int wake_fd, char **error_r);
void poll_idle_free(struct poll_idle **idle);

/* IMAP string helpers (imap.c; tested in test-poll). */
/* Modified UTF-7 (RFC 3501 5.1.3) of a UTF-8 mailbox name; NULL when invalid. */
char *poll_imap_mutf7(const char *utf8);
/* A quoted string (RFC 3501 astring) or NULL for CR, LF or NUL. */
char *poll_imap_quote(const char *text);
/* "1:3,7,9:10" of sorted uids, at most max_len characters: *used_r tells
 * how many uids it covers. */
char *poll_imap_uid_set(const uint64_t *uids, size_t count, size_t max_len, size_t *used_r);
/* Parses an untagged FETCH line "* N FETCH (UID u FLAGS (..) RFC822.SIZE s)"
 * (N in *seq_r):
 * 0 with the values, -1 when it is not one. */
int poll_imap_parse_fetch(const char *line, uint64_t *seq_r, uint64_t *uid_r, uint64_t *size_r,
			  bool *seen_r, bool *deleted_r);

/* Maildir (maildir.c): the name with the S flag added ("x:2,FS"), and
 * whether a name carries S.  Exposed for the unit test. */
char *poll_maildir_seen_name(const char *name);
bool poll_maildir_has_seen(const char *name);
/* inotify on new/ and cur/: an fd that becomes readable on arrivals, or -1. */
int poll_maildir_watch_open(const char *path);
void poll_maildir_watch_drain(int fd);

/* --- the progress bar of `snapkeep import URL` (cli.c) ------------------------------------ */

struct poll_progress {
	const char *label;
	gint64 last_us;
	bool drawn;
};
void poll_progress_draw(void *ctx, const struct poll_pass_stats *stats, unsigned total);
void poll_progress_end(struct poll_progress *bar);

/* --- registry (state of running pollers) ------------------------------------------------- */

struct poll_state_entry;
struct poll_state_entry *poll_registry_add(const struct poll_settings *settings);
void poll_registry_remove(struct poll_state_entry **entry);
void poll_registry_pass(struct poll_state_entry *entry, const struct poll_pass_stats *stats,
			const char *error, int64_t next_pass_us);
void poll_registry_idle(struct poll_state_entry *entry, bool idle, int64_t next_pass_us);

#endif
