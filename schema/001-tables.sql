-- 001-tables.sql: snapkeep's tables (SQLite).
--
-- Applied once, in a transaction, by store_open when PRAGMA user_version < 1.
-- The tables are private to snapkeep and may change in later migrations;
-- scripts use the public views (schema/README), which stay stable.
--
-- Times are UTC text 'YYYY-MM-DDTHH:MM:SSZ'; where the device gave an
-- offset it is kept beside in minutes east of UTC.  Portable SQL where it
-- costs nothing, so that a PostgreSQL backend can carry the same shape
-- (INTEGER PRIMARY KEY -> bigint identity, BLOB -> bytea).

-- One row per physical device, keyed by its serial.  The identity columns
-- and the latest_* columns are those of the device's most recent snapshot
-- (by snapshot time), maintained by store_result_commit so that the fleet
-- page (device_status) reads one row per device.
CREATE TABLE devices (
	id INTEGER PRIMARY KEY,
	serial TEXT NOT NULL UNIQUE,
	product_number TEXT,
	model TEXT,
	firmware TEXT,
	firmware_date TEXT,
	hostname TEXT,
	ip_address TEXT,
	mac_address TEXT,
	device_uuid TEXT,
	locale TEXT,
	dialect TEXT,
	first_seen_utc TEXT NOT NULL,      -- earliest snapshot time
	first_received_utc TEXT NOT NULL,  -- when snapkeep first received a snapshot of it
	last_snapshot_id INTEGER,          -- snapshots.id of the latest snapshot
	last_snapshot_utc TEXT,
	last_received_utc TEXT,            -- latest receive time of any of its snapshots
	snapshot_count INTEGER NOT NULL DEFAULT 0,
	total_impressions INTEGER,         -- counters of the latest snapshot
	mono_impressions INTEGER,
	color_impressions INTEGER
);

-- The raw archive: one row per distinct message (content address: SHA-256
-- of the raw bytes).  blob is the compressed form, see src/store/archive.h:
--   method 'zstd'  a zstd frame of the raw bytes (as accepted)
--   method 'skc1'  a zstd frame of the base64-unfolded container, compressed
--                  with the container of base_id (NULL: a keyframe) as prefix;
--                  chain_depth counts the links to the keyframe.
-- outcome/detail: the message's current parse result.
CREATE TABLE messages (
	id INTEGER PRIMARY KEY,
	sha256 TEXT NOT NULL UNIQUE,
	raw_size INTEGER NOT NULL,
	method TEXT NOT NULL CHECK (method IN ('zstd', 'skc1')),
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
	blob BLOB NOT NULL                 -- last: scans of the other columns skip it
);
CREATE INDEX messages_outcome ON messages(outcome, id);
CREATE INDEX messages_device ON messages(device_id, id);
CREATE INDEX messages_base ON messages(base_id);

-- One row per arrival (an SMTP transaction, a polled mail, a file), even
-- when the bytes were already archived (outcome 'duplicate').
CREATE TABLE intake (
	id INTEGER PRIMARY KEY,
	received_utc TEXT NOT NULL,
	received_us INTEGER NOT NULL,
	source TEXT NOT NULL,
	source_name TEXT,
	peer TEXT,
	helo TEXT,
	mail_from TEXT,
	rcpt_to TEXT,
	subject TEXT,
	outcome TEXT NOT NULL DEFAULT 'pending'
		CHECK (outcome IN ('pending', 'stored', 'duplicate', 'not-snapshot', 'failed')),
	detail TEXT,
	serial TEXT,                       -- as the snapshot (or, failing that, the subject) says
	message_id INTEGER NOT NULL REFERENCES messages(id),
	snapshot_id INTEGER REFERENCES snapshots(id)
);
CREATE INDEX intake_message ON intake(message_id);
CREATE INDEX intake_outcome ON intake(outcome, id);
CREATE INDEX intake_received ON intake(received_utc);

-- One row per (device, snapshot time), whichever message brought it first.
CREATE TABLE snapshots (
	id INTEGER PRIMARY KEY,
	device_id INTEGER NOT NULL REFERENCES devices(id),
	message_id INTEGER NOT NULL REFERENCES messages(id),
	taken_utc TEXT NOT NULL,
	taken_unix INTEGER NOT NULL,
	taken_offset_min INTEGER,          -- NULL: the document gave no offset
	taken_source TEXT NOT NULL         -- xml | subject | date | received
		CHECK (taken_source IN ('xml', 'subject', 'date', 'received')),
	received_utc TEXT NOT NULL,
	clock_skew_s INTEGER NOT NULL,     -- receive time minus snapshot time
	dialect TEXT,
	firmware TEXT,
	hostname TEXT,
	ip_address TEXT,
	UNIQUE (device_id, taken_utc)      -- also the latest-per-device index
);
CREATE INDEX snapshots_message ON snapshots(message_id);

-- Counter names (HP's spelling), shared by all devices.
CREATE TABLE counter_names (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);

-- Device totals per snapshot.  value_real only when the value is fractional.
CREATE TABLE counters (
	snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	name_id INTEGER NOT NULL REFERENCES counter_names(id),
	value INTEGER NOT NULL,
	value_real REAL,
	PRIMARY KEY (snapshot_id, name_id)
) WITHOUT ROWID;

-- Counters per media size (PWG names) per snapshot.
CREATE TABLE media_counters (
	snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	media_size TEXT NOT NULL,
	name_id INTEGER NOT NULL REFERENCES counter_names(id),
	value INTEGER NOT NULL,
	value_real REAL,
	PRIMARY KEY (snapshot_id, media_size, name_id)
) WITHOUT ROWID;

-- A device total that is lower than in the device's previous snapshot (by
-- snapshot time): flagged, not hidden (formatter swap, wrong device, reset).
CREATE TABLE counter_drops (
	snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	name_id INTEGER NOT NULL REFERENCES counter_names(id),
	previous_snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	previous_value INTEGER NOT NULL,
	value INTEGER NOT NULL,
	PRIMARY KEY (snapshot_id, name_id)
) WITHOUT ROWID;
CREATE INDEX counter_drops_previous ON counter_drops(previous_snapshot_id);

-- A supply unit: one per device, supply key (K, C, maintenanceKit, ...)
-- and supply serial ('' when the device gives none); a replacement is a new
-- unit.  Descriptive columns are those of the latest report.
CREATE TABLE supplies (
	id INTEGER PRIMARY KEY,
	device_id INTEGER NOT NULL REFERENCES devices(id),
	supply_key TEXT NOT NULL,
	supply_serial TEXT NOT NULL DEFAULT '',
	label TEXT,
	color TEXT,
	type TEXT,
	description TEXT,
	product_number TEXT,
	brand TEXT,
	installed_date TEXT,
	first_snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	first_reported_utc TEXT NOT NULL,
	last_reported_utc TEXT NOT NULL,
	UNIQUE (device_id, supply_key, supply_serial)
);

-- What each snapshot said about each supply unit.
CREATE TABLE supply_levels (
	snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	supply_id INTEGER NOT NULL REFERENCES supplies(id),
	level_percent INTEGER,
	low_threshold INTEGER,
	pages INTEGER,
	state TEXT,
	PRIMARY KEY (snapshot_id, supply_id)
) WITHOUT ROWID;
CREATE INDEX supply_levels_supply ON supply_levels(supply_id, snapshot_id);

-- The latest report per device and supply key (by snapshot time),
-- maintained by store_result_commit: supply_status reads it directly.
CREATE TABLE supply_current (
	device_id INTEGER NOT NULL REFERENCES devices(id),
	supply_key TEXT NOT NULL,
	supply_id INTEGER NOT NULL REFERENCES supplies(id),
	snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	reported_utc TEXT NOT NULL,
	PRIMARY KEY (device_id, supply_key)
) WITHOUT ROWID;

-- Event log entries, stored once per device and (log, sequence, code,
-- time) however many snapshots repeat them.  first_snapshot_id is the
-- earliest snapshot (by snapshot time) that reported the entry: an entry is
-- new in snapshot S when first_snapshot_id = S.
CREATE TABLE events (
	id INTEGER PRIMARY KEY,
	device_id INTEGER NOT NULL REFERENCES devices(id),
	log TEXT,
	sequence INTEGER,
	code TEXT,
	occurred_utc TEXT,
	occurred_offset_min INTEGER,
	description TEXT,
	page_count INTEGER,
	payload_json TEXT,
	first_snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	first_reported_utc TEXT NOT NULL,  -- snapshot time of first_snapshot_id
	last_snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
	last_reported_utc TEXT NOT NULL
);
CREATE UNIQUE INDEX events_key ON events(device_id, COALESCE(log, ''), COALESCE(sequence, -1),
	COALESCE(code, ''), COALESCE(occurred_utc, ''));
CREATE INDEX events_device_time ON events(device_id, occurred_utc);
CREATE INDEX events_first_snapshot ON events(first_snapshot_id);
CREATE INDEX events_first_reported ON events(first_reported_utc);
CREATE INDEX events_last_snapshot ON events(last_snapshot_id);
