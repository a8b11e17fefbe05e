-- 002-views.sql: the public views (PostgreSQL), the stable interface for the
-- web view, the command line and admins' scripts (documented in
-- schema/README).  Columns may be added at the end in later migrations,
-- never removed or renamed.  Times are UTC text 'YYYY-MM-DDTHH:MM:SSZ'.
--
-- The same text as schema/002-views.sql: plain SQL that both engines accept,
-- so that a script moves from sqlite3 to psql by changing its connection
-- only.  Column types follow the tables (bigint, text, double precision);
-- event_log.is_new (CASE ... THEN 1 ELSE 0 END) is an integer, 1 or 0 as on
-- SQLite.

-- One row per device: identity and counters of its latest snapshot.
CREATE VIEW device_status AS
SELECT d.serial, d.product_number, d.model, d.hostname, d.ip_address, d.firmware,
       d.first_seen_utc, d.last_snapshot_utc, d.last_received_utc, d.snapshot_count,
       d.total_impressions, d.mono_impressions, d.color_impressions,
       d.id AS device_id, d.last_snapshot_id, d.first_received_utc, d.mac_address,
       d.device_uuid, d.firmware_date, d.locale, d.dialect
FROM devices d;

-- The latest report per device and supply.
CREATE VIEW supply_status AS
SELECT d.serial, sc.supply_key AS supply, s.type, s.color, l.level_percent, l.state,
       l.low_threshold, NULLIF(s.supply_serial, '') AS supply_serial, s.installed_date,
       sc.reported_utc,
       s.label, s.description, s.product_number, s.brand, l.pages,
       sc.snapshot_id, s.id AS supply_id, d.id AS device_id
FROM supply_current sc
JOIN devices d ON d.id = sc.device_id
JOIN supplies s ON s.id = sc.supply_id
JOIN supply_levels l ON l.snapshot_id = sc.snapshot_id AND l.supply_id = sc.supply_id;

-- Every supply report of every snapshot (levels over time, replacements).
CREATE VIEW supply_history AS
SELECT d.serial, sn.taken_utc, s.supply_key AS supply, s.type, s.color, l.level_percent,
       l.state, l.low_threshold, NULLIF(s.supply_serial, '') AS supply_serial,
       s.installed_date, l.pages, sn.id AS snapshot_id, s.id AS supply_id
FROM supply_levels l
JOIN snapshots sn ON sn.id = l.snapshot_id
JOIN devices d ON d.id = sn.device_id
JOIN supplies s ON s.id = l.supply_id;

-- Device totals: one row per snapshot and counter.
CREATE VIEW counter_history AS
SELECT d.serial, s.taken_utc, n.name AS counter, c.value,
       c.value_real, s.id AS snapshot_id
FROM counters c
JOIN snapshots s ON s.id = c.snapshot_id
JOIN devices d ON d.id = s.device_id
JOIN counter_names n ON n.id = c.name_id;

-- Counters per media size: one row per snapshot, media size and counter.
CREATE VIEW media_counter_history AS
SELECT d.serial, s.taken_utc, m.media_size, n.name AS counter, m.value,
       m.value_real, s.id AS snapshot_id
FROM media_counters m
JOIN snapshots s ON s.id = m.snapshot_id
JOIN devices d ON d.id = s.device_id
JOIN counter_names n ON n.id = m.name_id;

-- Device totals lower than in the device's previous snapshot.
CREATE VIEW counter_regressions AS
SELECT d.serial, s.taken_utc, n.name AS counter, r.value, p.taken_utc AS previous_taken_utc,
       r.previous_value, s.id AS snapshot_id, p.id AS previous_snapshot_id
FROM counter_drops r
JOIN snapshots s ON s.id = r.snapshot_id
JOIN snapshots p ON p.id = r.previous_snapshot_id
JOIN devices d ON d.id = s.device_id
JOIN counter_names n ON n.id = r.name_id;

-- Event log entries, each once.
CREATE VIEW event_log AS
SELECT d.serial, e.log, e.sequence, e.code, e.occurred_utc, e.description, e.page_count,
       e.occurred_offset_min, e.payload_json, e.first_snapshot_id, e.first_reported_utc,
       e.last_snapshot_id, e.last_reported_utc,
       CASE WHEN e.first_snapshot_id = d.last_snapshot_id THEN 1 ELSE 0 END AS is_new,
       e.id AS event_id
FROM events e
JOIN devices d ON d.id = e.device_id;

-- Snapshots received, one row each.
CREATE VIEW snapshot_list AS
SELECT d.serial, s.id AS snapshot_id, s.taken_utc, s.taken_offset_min, s.taken_source,
       s.received_utc, s.clock_skew_s, s.message_id, s.firmware, s.hostname, s.ip_address
FROM snapshots s
JOIN devices d ON d.id = s.device_id;

-- One row per arrival.
CREATE VIEW intake_log AS
SELECT i.id, i.received_utc, i.source, i.peer, i.mail_from, i.subject, i.outcome, i.detail,
       i.serial, i.source_name, i.helo, i.rcpt_to, i.message_id, i.snapshot_id,
       m.sha256, m.raw_size
FROM intake i
JOIN messages m ON m.id = i.message_id;
