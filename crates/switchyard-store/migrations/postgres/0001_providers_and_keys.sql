-- The PostgreSQL config store: the same model as the SQLite store. Every table, the sqlx migration
-- ledger included, lives in the store's own schema (`switchyard` unless configured), which the
-- connection's search_path selects; nothing here names a schema.
CREATE TABLE providers (
    name        TEXT PRIMARY KEY,
    config      JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE provider_keys (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    provider            TEXT NOT NULL REFERENCES providers(name) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    value               TEXT NOT NULL,
    models              JSONB NOT NULL,
    blacklisted_models  JSONB NOT NULL,
    weight              DOUBLE PRECISION NOT NULL,
    enabled             BOOLEAN NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider, name)
);
