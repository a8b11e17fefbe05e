-- 004-new-events.sql: the view behind "new since the previous snapshot"
-- (PostgreSQL; the same text as schema/004-new-events.sql).
--
-- event_log.is_new says the same per row, but filtering on it scans every
-- event of the fleet; this view starts from each device's latest snapshot
-- (index events_first_snapshot), so it costs O(devices + new events).

-- Event log entries first reported by their device's latest snapshot.
CREATE VIEW new_events AS
SELECT d.serial, e.log, e.sequence, e.code, e.occurred_utc, e.description, e.page_count,
       e.first_reported_utc, e.occurred_offset_min, e.payload_json, e.first_snapshot_id,
       e.id AS event_id
FROM devices d
JOIN events e ON e.first_snapshot_id = d.last_snapshot_id AND e.device_id = d.id;
