-- 008-supply-status-plan.sql: supply_status reads each current supply's
-- report by its key, one lookup per supply (PostgreSQL).
--
-- 002-views.sql joins supply_levels on its two key columns (snapshot_id,
-- supply_id) to supply_current's.  PostgreSQL takes the two equalities as
-- independent and estimated one row for the whole fleet; it then planned
-- nested loops that read every report of each current supply and scanned
-- devices once per supply: SELECT * FROM supply_status read 3 200 buffers on
-- 10 devices x 365 daily snapshots and 71 000 on 150, and so did `snapkeep
-- check` and every filter on the view over the fleet.
--
-- The report is now a LATERAL subquery on the key with LIMIT 1: it cannot
-- be merged into the join (so there is nothing to misestimate), it is one
-- index lookup per current supply, and a filter on its columns (state,
-- level_percent) applies to the row it gave.  The key is the primary key,
-- so LIMIT 1 drops nothing, and the inner join keeps the rows as before: a
-- supply_current row whose report is missing gives no row.  Same columns,
-- order, types and collations: CREATE OR REPLACE keeps the view's grants.
--
-- SQLite has no LATERAL and needs none: its planner already looks each
-- report up by the primary key (schema/008-supply-status-plan.sql changes
-- nothing there).
CREATE OR REPLACE VIEW supply_status AS
SELECT d.serial, sc.supply_key AS supply, s.type, s.color, l.level_percent, l.state,
       l.low_threshold, NULLIF(s.supply_serial, '') AS supply_serial, s.installed_date,
       sc.reported_utc,
       s.label, s.description, s.product_number, s.brand, l.pages,
       sc.snapshot_id, s.id AS supply_id, d.id AS device_id
FROM supply_current sc
JOIN devices d ON d.id = sc.device_id
JOIN supplies s ON s.id = sc.supply_id
CROSS JOIN LATERAL (
	SELECT r.level_percent, r.state, r.low_threshold, r.pages
	FROM supply_levels r
	WHERE r.snapshot_id = sc.snapshot_id AND r.supply_id = sc.supply_id
	LIMIT 1) l;
