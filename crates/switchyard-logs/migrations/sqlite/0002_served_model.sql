-- The model the upstream says answered (its answer's `model`), beside the requested and the routed
-- one: an endpoint may serve a retired id with its replacement.
ALTER TABLE logs ADD COLUMN served_model TEXT;
