-- Guardrails (issue #20): one JSON document each, validated by switchyard-guardrails; the name is
-- unique because the API and config.json address guardrails by it too.
CREATE TABLE guardrails (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    doc         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
