-- The upstream reported no usage, so the row's token counts (and its cost) are the gateway's estimate:
-- request bytes / 4 for the input, the answer's text bytes / 4 for the output.
ALTER TABLE logs ADD COLUMN usage_estimated BOOLEAN NOT NULL DEFAULT FALSE;
