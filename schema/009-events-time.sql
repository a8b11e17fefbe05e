-- 009-events-time.sql: the fleet's events by time.
--
-- events_device_time serves one device's events by time; over the whole
-- fleet (event_log WHERE occurred_utc >= ..., as `snapkeep check` without
-- --serial asks on every run and as alerting scripts ask) every event of
-- every device was read.  With this index such a range reads the events in
-- it (150 devices x 365 days, 44 000 events, the last 30 days: 15 ms, now
-- 4 ms; the last day: under 1 ms); the cost otherwise grows with the history.
CREATE INDEX events_occurred ON events(occurred_utc);
