-- Rows without a virtual key (all rows of a gateway that requires none) are never looked up by key:
-- every query that uses this index names keys (`virtual_key_id = $n` or `IN (...)`), which implies
-- `IS NOT NULL`, so a partial index answers the same queries and leaves those rows out (one B-tree
-- insert fewer per such row).
DROP INDEX logs_virtual_key_time;
CREATE INDEX logs_virtual_key_time ON logs (virtual_key_id, timestamp_ms, seq) WHERE virtual_key_id IS NOT NULL;
