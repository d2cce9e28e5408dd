-- Guardrails (issue #20): one JSON document each, validated by switchyard-guardrails; the name is
-- unique because the API and config.json address guardrails by it too. Changes notify replicas like
-- the governance tables (0003).
CREATE TABLE guardrails (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    doc         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TRIGGER guardrails_changed AFTER INSERT OR UPDATE OR DELETE ON guardrails
    FOR EACH STATEMENT EXECUTE FUNCTION governance_changed();
