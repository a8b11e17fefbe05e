-- 006-retention.sql: retention of raw messages (store_prune, `snapkeep prune`),
-- PostgreSQL.
--
-- A message older than the retention period loses its raw bytes: its row
-- stays, with method 'pruned', blob NULL, stored_size 0 and pruned_utc, so
-- that intake_log keeps the arrival's history (sha256, raw_size) and the
-- snapshot rows parsed from it stay exactly as they are.  A pruned message is
-- never the base of a delta (store_prune re-encodes the kept messages that
-- depended on it as keyframes first).
--
-- schema/006-retention.sql rebuilds the table, since SQLite cannot change a
-- CHECK or NOT NULL constraint in place.  PostgreSQL can: the table is
-- altered where it stands (constraint names from 001-tables.sql), its
-- indexes and foreign keys stay, and the view intake_log, which reads only
-- sha256 and raw_size of messages, is untouched (no need to recreate it).
-- One difference from SQLite: pruned_utc is added as the last column, after
-- blob, where SQLite's rebuilt table has it before blob.  The table is
-- private and the store names its columns, so the order does not matter;
-- large blobs live out of line (TOAST) in PostgreSQL anyway.
--
-- Existing rows all have method 'zstd' or 'skc1' and a blob, so the new
-- checks hold for them when they are added.

ALTER TABLE messages
	ALTER COLUMN blob DROP NOT NULL,
	DROP CONSTRAINT messages_method_check,
	ADD CONSTRAINT messages_method_check CHECK (method IN ('zstd', 'skc1', 'pruned')),
	ADD COLUMN pruned_utc text COLLATE "C",   -- when store_prune removed the raw bytes
	ADD CONSTRAINT messages_pruned_blob_check CHECK ((method = 'pruned') = (blob IS NULL));

-- store_prune's daily pass: the messages old enough, without a scan of the
-- archive.
CREATE INDEX messages_age ON messages(method, first_received_us);
