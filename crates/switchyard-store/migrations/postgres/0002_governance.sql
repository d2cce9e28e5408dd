-- Governance: customers, teams, virtual keys (each one JSON document validated by switchyard-core,
-- plus the columns that need indexes or integrity rules), operator price overrides, client settings,
-- and the usage counters persisted across restarts.
CREATE TABLE governance_customers (
    id          TEXT PRIMARY KEY NOT NULL,
    doc         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE governance_teams (
    id          TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT REFERENCES governance_customers(id) ON DELETE RESTRICT,
    doc         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE governance_virtual_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    -- SHA-256 of the key value; the value itself is never stored.
    value_hash  TEXT NOT NULL UNIQUE,
    team_id     TEXT REFERENCES governance_teams(id) ON DELETE RESTRICT,
    customer_id TEXT REFERENCES governance_customers(id) ON DELETE RESTRICT,
    doc         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE governance_price_overrides (
    provider    TEXT NOT NULL,
    model       TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (provider, model)
);

CREATE TABLE governance_settings (
    name        TEXT PRIMARY KEY NOT NULL,
    doc         TEXT NOT NULL
);

CREATE TABLE governance_counters (
    name          TEXT PRIMARY KEY NOT NULL,
    value         BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
