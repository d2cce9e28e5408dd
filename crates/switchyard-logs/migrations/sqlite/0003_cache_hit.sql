-- Whether the call was answered from the response cache (no upstream call, cost 0).
ALTER TABLE logs ADD COLUMN cache_hit BOOLEAN NOT NULL DEFAULT FALSE;
