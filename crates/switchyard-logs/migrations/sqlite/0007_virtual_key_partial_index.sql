-- Rows without a virtual key (all rows of a gateway that requires none) are never looked up by key:
-- every query that uses this index names keys (`virtual_key_id = ?` or `IN (...)`), which implies
-- `IS NOT NULL`, so a partial index answers the same queries and leaves those rows out. It saves one
-- B-tree insert per such row, about 3 % of a proxied request's instructions (BENCHMARKS.md, issue 22).
DROP INDEX logs_virtual_key_time;
CREATE INDEX logs_virtual_key_time ON logs (virtual_key_id, timestamp_ms) WHERE virtual_key_id IS NOT NULL;
