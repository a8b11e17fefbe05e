-- 006-retention.sql: retention of raw messages (store_prune, `snapkeep prune`).
--
-- A message older than the retention period loses its raw bytes: its row
-- stays, with method 'pruned', blob NULL, stored_size 0 and pruned_utc, so
-- that intake_log keeps the arrival's history (sha256, raw_size) and the
-- snapshot rows parsed from it stay exactly as they are.  A pruned message is
-- never the base of a delta (store_prune re-encodes the kept messages that
-- depended on it as keyframes first).
--
-- SQLite cannot change a CHECK or NOT NULL constraint in place: the table is
-- rebuilt (the procedure of https://sqlite.org/lang_altertable.html, section
-- 7: store_migrate runs migrations with foreign keys off and checks them with
-- PRAGMA foreign_key_check before it commits).  The view intake_log reads
-- messages, so it is dropped and created again with the same text as in
-- 002-views.sql.

CREATE TABLE messages_new (
	id INTEGER PRIMARY KEY,
	sha256 TEXT NOT NULL UNIQUE,
	raw_size INTEGER NOT NULL,
	method TEXT NOT NULL CHECK (method IN ('zstd', 'skc1', 'pruned')),
	base_id INTEGER REFERENCES messages(id),
	chain_depth INTEGER NOT NULL DEFAULT 0,
	stored_size INTEGER NOT NULL,
	device_id INTEGER REFERENCES devices(id),
	first_received_utc TEXT NOT NULL,
	first_received_us INTEGER NOT NULL,
	outcome TEXT NOT NULL DEFAULT 'pending'
		CHECK (outcome IN ('pending', 'stored', 'duplicate', 'not-snapshot', 'failed')),
	detail TEXT,
	hint_subject TEXT,
	hint_from TEXT,
	hint_date_utc TEXT,
	hint_message_id TEXT,
	hint_serial TEXT,
	hint_time_utc TEXT,
	pruned_utc TEXT,                   -- when store_prune removed the raw bytes
	blob BLOB,                         -- last: scans of the other columns skip it
	CHECK ((method = 'pruned') = (blob IS NULL))
);

INSERT INTO messages_new (id, sha256, raw_size, method, base_id, chain_depth, stored_size, device_id,
	first_received_utc, first_received_us, outcome, detail, hint_subject, hint_from, hint_date_utc,
	hint_message_id, hint_serial, hint_time_utc, pruned_utc, blob)
SELECT id, sha256, raw_size, method, base_id, chain_depth, stored_size, device_id,
	first_received_utc, first_received_us, outcome, detail, hint_subject, hint_from, hint_date_utc,
	hint_message_id, hint_serial, hint_time_utc, NULL, blob
FROM messages;

DROP VIEW intake_log;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;

CREATE INDEX messages_outcome ON messages(outcome, id);
CREATE INDEX messages_device ON messages(device_id, id);
CREATE INDEX messages_base ON messages(base_id);
-- store_prune's daily pass: the messages old enough, without a scan of the
-- archive (the blobs share the table's pages).
CREATE INDEX messages_age ON messages(method, first_received_us);

-- One row per arrival (as in 002-views.sql).
CREATE VIEW intake_log AS
SELECT i.id, i.received_utc, i.source, i.peer, i.mail_from, i.subject, i.outcome, i.detail,
       i.serial, i.source_name, i.helo, i.rcpt_to, i.message_id, i.snapshot_id,
       m.sha256, m.raw_size
FROM intake i
JOIN messages m ON m.id = i.message_id;
