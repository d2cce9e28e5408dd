-- Providers keep their whole configuration as one JSON document (validated by switchyard-core before
-- it is written); keys are rows of their own because they are edited, listed and selected one by one.
CREATE TABLE providers (
    name        TEXT PRIMARY KEY NOT NULL,
    config      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE provider_keys (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    provider            TEXT NOT NULL REFERENCES providers(name) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    value               TEXT NOT NULL,
    models              TEXT NOT NULL,
    blacklisted_models  TEXT NOT NULL,
    weight              REAL NOT NULL,
    enabled             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (provider, name)
);
