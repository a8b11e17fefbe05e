-- 005-web-indexes.sql: indexes for the web view (src/web/), PostgreSQL; the
-- same indexes as schema/005-web-indexes.sql.  PostgreSQL answers from an
-- index alone (an index-only scan) for the pages that autovacuum has marked
-- all-visible; the rest still visit the table.
--
-- The fleet page counts each device's recent error events (log other than
-- 'info' in a time window): with log in the index the count is answered
-- from the index alone, without reading the event rows.
CREATE INDEX web_events_device_time_log ON events(device_id, occurred_utc, log);

-- /metrics reports the intake log by source and outcome: a covering index
-- turns the GROUP BY into a scan of small index entries.
CREATE INDEX web_intake_source_outcome ON intake(source, outcome);
