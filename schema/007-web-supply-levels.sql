-- 007-web-supply-levels.sql: a covering index for the web view's supply
-- charts and days-to-empty estimates (src/web/).
--
-- A device page draws every level report of each of the device's supply
-- units; with the level in the index these come from consecutive index
-- entries per unit instead of one table lookup each (the rows of one device
-- are spread over the file, since snapshots of the whole fleet arrive
-- interleaved).
CREATE INDEX web_supply_levels_cover ON supply_levels(supply_id, snapshot_id, level_percent);
