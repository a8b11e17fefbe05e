/* store.h: the store: migrations from schema/, the raw archive, the
 * intake log and the snapshot rows.  store/ knows SQL, not MIME or XML.
 *
 * Two engines (db.h): a SQLite file (the default; embedded) or a
 * PostgreSQL database (settings.path a postgresql:// URL) that several
 * intake nodes share.  One struct store is one connection: use it from one
 * thread at a time; every thread or process that needs the database opens
 * its own.  SQLite runs in WAL mode with a busy timeout, so readers (web,
 * CLI, admins' sqlite3) query while the daemon writes; PostgreSQL's
 * readers never wait for writers.
 *
 * Invariants (each has a test):
 *  1. A raw message is stored once (content address: SHA-256 of its bytes);
 *     every arrival has its own intake_log row.
 *  2. store_message_get returns the exact bytes, verified against the hash.
 *  3. One snapshot per (serial, snapshot time); one event row per device and
 *     (log, sequence, code, time) however many snapshots repeat it.
 *  4. Committing a parsed snapshot twice (reparse) changes nothing; a
 *     reparse of a snapshot's own message with a newer parser replaces what
 *     the snapshot says (counters, supplies, identity).
 *  5. A message's archive blob is replaced (delta repack) only after the new
 *     blob has been read back and its hash checked; delta chains are at
 *     most archive_keyframe_interval long.  The compression runs before the
 *     write transaction (store_repack_prepare); inside it only a re-check
 *     that the base is unchanged and one UPDATE.
 * The tables and the public views are in schema/ (documented in
 * schema/README); the byte formats of the archive in archive.h. */
#ifndef SK_STORE_H
#define SK_STORE_H

#include <glib.h>
#include "store/db.h"
#include <stdbool.h>
#include <stdint.h>

#include "devxml/snapshot.h"

struct store;

struct store_settings {
	const char *path;            /* database file, or a postgresql:// URL */
	const char *password_file;   /* PostgreSQL: the password's file (NULL: libpq's defaults) */
	bool readonly;               /* open read-only (web view, show) */
	bool durable;                /* synchronous=FULL on this connection (accept path) */
	int busy_timeout_ms;         /* default 10000 */
	unsigned archive_keyframe_interval; /* delta chain length; default 32 */
	int archive_level;           /* zstd level at accept time; default 1 */
	int archive_repack_level;    /* zstd level of the delta repack; default 6 */
	unsigned archive_cache_entries; /* decompressed containers kept; default 16 */
	size_t archive_cache_bytes;  /* ... and their total size at most; default 8 MiB */
	/* Retention (store_prune): raw messages are kept retention_days days
	 * after their first arrival (0, the default: forever); the rows parsed
	 * from them stay.  Messages that failed to parse or were not snapshots
	 * are kept retention_failed_days (default 365; 0: forever), so that a
	 * fixed parser can still read them.  Pending messages are never pruned. */
	unsigned retention_days;
	unsigned retention_failed_days;
	unsigned prune_batch;        /* messages pruned per transaction; default 256 */
};

void store_settings_default(struct store_settings *settings);

/* Opens (creating and migrating when writable) the database.  0 or -1 with
 * *error_r (g_free'd by the caller). */
int store_open(const struct store_settings *settings, struct store **store_r, char **error_r);
void store_free(struct store **store);
/* The connection, for read queries over the public views. */
struct db *store_db(struct store *store);
/* Schema version after migrations (PRAGMA user_version). */
int store_schema_version(struct store *store);

int store_begin(struct store *store, char **error_r);   /* BEGIN IMMEDIATE */
int store_commit(struct store *store, char **error_r);
void store_rollback(struct store *store);

/* Where an arrival came from; every field may be NULL except source. */
struct store_arrival {
	const char *source;     /* smtp, imap, pop3, maildir, file, stdin, reparse */
	const char *source_name;/* poller name, file path, ... */
	const char *peer;       /* client address, server, ... */
	const char *helo;
	const char *mail_from;
	const char *rcpt_to;    /* comma separated */
	const char *subject;    /* decoded subject if known at arrival */
	int64_t received_us;    /* 0: now */
};

struct store_receipt {
	int64_t intake_id;   /* the new intake_log row */
	int64_t message_id;  /* the archived message (new or existing) */
	bool duplicate;      /* the same bytes were already archived: outcome 'duplicate' */
};

/* Archives the raw bytes (compressed, content-addressed) and records the
 * arrival, inside the caller's transaction (or its own).  A new message's intake row is
 * 'pending'; the same bytes again give a 'duplicate' row pointing at the
 * existing message.  0 or -1. */
int store_message_add(struct store *store, const struct store_arrival *arrival,
		      const void *raw, size_t len, struct store_receipt *receipt_r,
		      char **error_r);

/* The slow half of store_message_add (SHA-256 and compression), without the
 * database: thread-safe, for callers that archive many messages in one
 * transaction (the funnel's group commit hashes and compresses in the
 * arriving threads, and only inserts in the transaction).  level is the
 * zstd level (store_settings.archive_level).  Free with store_prepared_free. */
struct store_prepared;
int store_message_prepare(const void *raw, size_t len, int level,
			  struct store_prepared **prepared_r, char **error_r);
/* The same for the len bytes of file fd (from offset 0), read in one
 * streaming pass instead of mapped or loaded: a spool file of any size
 * costs a small buffer and its compressed frame. */
int store_message_prepare_fd(int fd, size_t len, int level,
			     struct store_prepared **prepared_r, char **error_r);
void store_prepared_free(struct store_prepared **prepared);
/* store_message_add for a prepared message. */
int store_message_add_prepared(struct store *store, const struct store_arrival *arrival,
			       const struct store_prepared *prepared,
			       struct store_receipt *receipt_r, char **error_r);

/* The exact raw bytes of message_id, verified against its SHA-256.  Returns
 * 0 and *raw_r (g_bytes_unref by the caller), or -1. */
int store_message_get(struct store *store, int64_t message_id, GBytes **raw_r, char **error_r);

/* Looks up a message by the hex SHA-256 of its bytes: 1 found, 0 not, -1 error. */
int store_message_find(struct store *store, const char *sha256_hex, int64_t *message_id_r,
		       char **error_r);

/* Message ids whose first arrival is still 'pending' (oldest first), at most
 * max.  Used by the funnel and on start-up recovery. */
int store_pending_list(struct store *store, unsigned max, GArray *message_ids, char **error_r);
/* Several nodes on one PostgreSQL: before parsing message_id a node claims
 * it (a session advisory lock on the message id, which ends with the
 * connection if the node dies); pending_only also requires the message to
 * be still pending once claimed (another node may have parsed it between
 * the listing and the claim).  1 claimed, 0 not (taken by another node, or
 * no longer pending), -1 error.  SQLite (one node): always 1 with no lock. */
int store_parse_claim(struct store *store, int64_t message_id, bool pending_only, char **error_r);
/* Ends a claim (after the result's commit, or on failure). */
void store_parse_release(struct store *store, int64_t message_id);
/* Likewise for a polled mailbox (key: its poll_mailboxes id), so that two
 * nodes polling the same mailbox take turns: 1, 0 (another node is polling
 * it now), -1. */
int store_mailbox_claim(struct store *store, int64_t mailbox_id, char **error_r);
void store_mailbox_release(struct store *store, int64_t mailbox_id);

/* Message ids to reparse: all, failed only, or one. */
enum store_select { STORE_SELECT_ALL, STORE_SELECT_FAILED, STORE_SELECT_PENDING };
int store_message_list(struct store *store, enum store_select which, int64_t after_id,
		       unsigned max, GArray *message_ids, char **error_r);

/* Outcomes of parsing one message, as in intake_log.outcome. */
enum store_outcome {
	STORE_OUTCOME_PENDING = 0,
	STORE_OUTCOME_STORED,
	STORE_OUTCOME_DUPLICATE,
	STORE_OUTCOME_NOT_SNAPSHOT,
	STORE_OUTCOME_FAILED,
};
const char *store_outcome_name(enum store_outcome outcome);

/* Hints from the mail headers, kept with the message. */
struct store_hints {
	const char *subject;
	const char *header_from;
	const char *date_utc;
	const char *message_id_header;
	const char *subject_serial;
	const char *subject_time_utc;
};

/* Commits the parse result of message_id inside the caller's transaction
 * (or its own when there is none):
 * the snapshot's device, snapshot, counters, supplies and new events, the
 * message's outcome and detail on its pending/failed intake rows, and the
 * archive repacked against the device's previous message (delta).  Idempotent:
 * a snapshot already stored (same serial and time) from another message
 * gives STORE_OUTCOME_DUPLICATE and leaves the rows as they are.  The same
 * message again (reparse, perhaps by an upgraded parser) refreshes its
 * snapshot: counters, media counters, supply readings and the snapshot's
 * identity columns are replaced by snap, events new to the device are
 * added (none is removed), and what derives from them (counter_drops,
 * supply_current, the device's latest columns) is recomputed; committing
 * the same snap again leaves identical rows.  snap may be NULL for not-snapshot/failed outcomes,
 * with the reason in detail.  *outcome_r tells what was recorded.
 * Details: the serial falls back to hints->subject_serial (none at all:
 * FAILED); the snapshot time to hints->subject_time_utc, hints->date_utc,
 * then the message's receive time.  A failure committed for a message that
 * already has its snapshot stored (a reparse gone worse) changes nothing and
 * reports STORED.  Counters lower than in the device's previous snapshot
 * are flagged (view counter_regressions).  The repack applies the one
 * prepared by store_repack_prepare for this message (cheap); without one it
 * runs here, inside the transaction (3-9 ms per mail, ~90 ms for a 2.7 MB
 * legacy mail, holding the write lock). */
int store_result_commit(struct store *store, int64_t message_id, enum store_outcome outcome,
			const char *detail, const struct snapshot *snap,
			const struct store_hints *hints, enum store_outcome *outcome_r,
			char **error_r);

/* The expensive half of the delta repack, to run BEFORE store_begin (no
 * write lock held; reads only): packs message_id's container, decompresses
 * its base (the latest 'skc1' message of the device the result names, found
 * by serial; an unknown device gets a keyframe), compresses and reads the
 * frame back.  raw: the message's bytes if the caller has them (checked by
 * hash; NULL: read from the archive), a reference the call takes over and
 * releases as soon as it can, so that a large message is not held twice
 * while its frame is compressed.  The arguments after raw are those
 * the caller will pass to store_result_commit.  The result is kept on the
 * connection (one at a time; a new call replaces it) and used by the next
 * store_result_commit of message_id, which re-checks inside its transaction
 * that the base is still the same 'skc1' message (same hash and depth):
 * otherwise the message stays plain 'zstd', correct but bigger, and
 * store_repack_backlog may repack it later.  Returns true when a repack was
 * prepared; failures are logged, never fatal (the message stays plain). */
bool store_repack_prepare(struct store *store, int64_t message_id, GBytes *raw, enum store_outcome outcome,
			  const struct snapshot *snap, const struct store_hints *hints);

/* Repacks parsed messages still in plain 'zstd' form (a stale prepared
 * repack, an interrupted daemon), each built outside any transaction and
 * applied in its own short one; at most max messages looked at (0: all).
 * Not inside a caller's transaction.  0 with *repacked_r, or -1. */
int store_repack_backlog(struct store *store, unsigned max, unsigned *repacked_r, char **error_r);

/* --- keeping it for years: retention, verification, statistics --- */

struct store_prune_stats {
	uint64_t candidates;         /* messages past their retention */
	uint64_t pruned;             /* raw bytes removed (method 'pruned') */
	uint64_t pruned_raw_bytes;   /* their raw size */
	uint64_t pruned_stored_bytes;/* archive bytes freed (reused by SQLite, the file does not shrink) */
	uint64_t reencoded;          /* kept messages re-encoded as keyframes: their base was pruned */
	uint64_t kept_as_base;       /* old messages kept because a kept message still needs them */
};

/* Prunes the raw bytes of messages past the retention of the store's
 * settings at now (unix seconds).  Delta chains stay decodable: a kept
 * message whose base is to be pruned is first re-encoded as a keyframe (read
 * and compressed outside any transaction, replaced in a short one after a
 * re-check, hash verified), and a message that a kept message still uses as
 * its base is never pruned (checked inside each pruning transaction).
 * Works in transactions of settings.prune_batch messages, so the daemon's
 * writers wait at most one batch.  dry_run: only counts (candidates,
 * pruned = what would be, reencoded = keyframes needed).  Not inside a
 * caller's transaction.  0 with *stats_r, or -1 with *error_r (what was
 * done so far stays done and consistent). */
int store_prune(struct store *store, int64_t now, bool dry_run, struct store_prune_stats *stats_r,
		char **error_r);

struct store_verify_stats {
	uint64_t messages;           /* rows in the archive */
	uint64_t verified;           /* decompressed, hash checked */
	uint64_t pruned;             /* no bytes kept (retention) */
	uint64_t damaged;            /* fail to decompress or to match their hash */
	uint64_t raw_bytes;          /* of the verified messages */
	uint64_t plain_parsed;       /* parsed messages still in plain 'zstd' form (repack backlog) */
};

/* Reads every archived message back (chains decoded, SHA-256 checked)
 * inside one read transaction.  problems (may be NULL) receives one
 * g_strdup'd line per damaged message, at most max_problems.  0 with
 * *stats_r (damage is counted, not an error), -1 if the database cannot be
 * read at all. */
int store_archive_verify(struct store *store, struct store_verify_stats *stats_r, GPtrArray *problems,
			 unsigned max_problems, char **error_r);

struct store_table_rows {
	char *name;
	int64_t rows;
};

struct store_stats {
	int64_t page_size, page_count, freelist_count; /* the main database file */
	int64_t file_bytes;          /* size of the database file */
	int64_t wal_bytes;           /* size of its -wal file (0: none) */
	GArray *tables;              /* struct store_table_rows, by name */
	int64_t messages, messages_plain, messages_delta, messages_pruned;
	int64_t raw_bytes;           /* raw size of the messages whose bytes are kept */
	int64_t stored_bytes;        /* their compressed size in the archive */
	int64_t pruned_raw_bytes;
	char *oldest_snapshot_utc, *newest_snapshot_utc;   /* NULL: no snapshot */
	char *oldest_received_utc, *newest_received_utc;   /* first arrivals of messages */
};

/* Figures of the database, read in one read transaction.  0 or -1;
 * store_stats_clear frees the members. */
int store_stats_get(struct store *store, struct store_stats *stats_r, char **error_r);
void store_stats_clear(struct store_stats *stats);

#endif
