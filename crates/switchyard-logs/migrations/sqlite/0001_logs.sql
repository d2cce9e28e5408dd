-- One row per inference call. `latency_bucket` and `total_tokens` are derived at insert time (the
-- log-scale bucket of `latency_ms`, and input + output tokens with unknown counts as 0) so that
-- percentiles and token filters/sorts need no per-row computation at query time.
CREATE TABLE logs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    timestamp_ms INTEGER NOT NULL,
    route TEXT NOT NULL,
    request_type TEXT NOT NULL,
    model_requested TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    key_id TEXT,
    key_name TEXT,
    virtual_key_id TEXT,
    team_id TEXT,
    customer_id TEXT,
    status INTEGER NOT NULL,
    error_type TEXT,
    error_message TEXT,
    stream BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    fallback_index INTEGER,
    trail TEXT,
    latency_ms REAL NOT NULL,
    latency_bucket INTEGER NOT NULL,
    upstream_latency_ms REAL,
    overhead_ms REAL,
    ttft_ms REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cached_tokens INTEGER,
    total_tokens INTEGER NOT NULL,
    cost_usd REAL,
    cost_known BOOLEAN NOT NULL,
    user_agent TEXT,
    request_body TEXT,
    response_body TEXT
);

-- (SQLite appends the rowid, `seq`, to every index by itself: the tie-breaker of every sort.)
-- The list view: newest first, and the time-range scans under every other query. It also carries the
-- sort keys, so "time range, sorted by latency/tokens/cost" is answered from this index alone (the
-- page's `seq`s are picked here and only those rows are read).
CREATE INDEX logs_time_sort ON logs (timestamp_ms, latency_ms, total_tokens, cost_usd);
-- Equality filters of the list view, each walked in time order.
CREATE INDEX logs_provider_time ON logs (provider, timestamp_ms);
CREATE INDEX logs_model_time ON logs (model, timestamp_ms);
CREATE INDEX logs_status_time ON logs (status, timestamp_ms);
CREATE INDEX logs_virtual_key_time ON logs (virtual_key_id, timestamp_ms);
-- No index on latency, tokens or cost alone: each is written at a random position per row, which cut
-- insert throughput threefold (7k instead of 20k rows/s on SQLite). A sort by one of them over the whole
-- table scans `logs_time_sort` instead (see QUERY_TIMES.md).

-- Pre-aggregated counters per hour and per day, so stats, histograms and page totals over weeks of
-- traffic read a few thousand rows instead of scanning every log row. Kept in step with `logs` in the
-- same transaction as each insert batch and each prune. `provider`/`model` are '' when the record had
-- none (a primary key cannot hold NULLs portably). `lbNN` counts the requests whose latency fell into
-- log-scale bucket NN (see `latency_bucket` in src/bucket.rs): percentiles come from these counts.
CREATE TABLE log_rollup (
    grain_ms INTEGER NOT NULL,
    bucket_start_ms INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status INTEGER NOT NULL,
    cost_known BOOLEAN NOT NULL,
    requests INTEGER NOT NULL,
    latency_sum_ms REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    lb00 INTEGER NOT NULL DEFAULT 0,
    lb01 INTEGER NOT NULL DEFAULT 0,
    lb02 INTEGER NOT NULL DEFAULT 0,
    lb03 INTEGER NOT NULL DEFAULT 0,
    lb04 INTEGER NOT NULL DEFAULT 0,
    lb05 INTEGER NOT NULL DEFAULT 0,
    lb06 INTEGER NOT NULL DEFAULT 0,
    lb07 INTEGER NOT NULL DEFAULT 0,
    lb08 INTEGER NOT NULL DEFAULT 0,
    lb09 INTEGER NOT NULL DEFAULT 0,
    lb10 INTEGER NOT NULL DEFAULT 0,
    lb11 INTEGER NOT NULL DEFAULT 0,
    lb12 INTEGER NOT NULL DEFAULT 0,
    lb13 INTEGER NOT NULL DEFAULT 0,
    lb14 INTEGER NOT NULL DEFAULT 0,
    lb15 INTEGER NOT NULL DEFAULT 0,
    lb16 INTEGER NOT NULL DEFAULT 0,
    lb17 INTEGER NOT NULL DEFAULT 0,
    lb18 INTEGER NOT NULL DEFAULT 0,
    lb19 INTEGER NOT NULL DEFAULT 0,
    lb20 INTEGER NOT NULL DEFAULT 0,
    lb21 INTEGER NOT NULL DEFAULT 0,
    lb22 INTEGER NOT NULL DEFAULT 0,
    lb23 INTEGER NOT NULL DEFAULT 0,
    lb24 INTEGER NOT NULL DEFAULT 0,
    lb25 INTEGER NOT NULL DEFAULT 0,
    lb26 INTEGER NOT NULL DEFAULT 0,
    lb27 INTEGER NOT NULL DEFAULT 0,
    lb28 INTEGER NOT NULL DEFAULT 0,
    lb29 INTEGER NOT NULL DEFAULT 0,
    lb30 INTEGER NOT NULL DEFAULT 0,
    lb31 INTEGER NOT NULL DEFAULT 0,
    lb32 INTEGER NOT NULL DEFAULT 0,
    lb33 INTEGER NOT NULL DEFAULT 0,
    lb34 INTEGER NOT NULL DEFAULT 0,
    lb35 INTEGER NOT NULL DEFAULT 0,
    lb36 INTEGER NOT NULL DEFAULT 0,
    lb37 INTEGER NOT NULL DEFAULT 0,
    lb38 INTEGER NOT NULL DEFAULT 0,
    lb39 INTEGER NOT NULL DEFAULT 0,
    lb40 INTEGER NOT NULL DEFAULT 0,
    lb41 INTEGER NOT NULL DEFAULT 0,
    lb42 INTEGER NOT NULL DEFAULT 0,
    lb43 INTEGER NOT NULL DEFAULT 0,
    lb44 INTEGER NOT NULL DEFAULT 0,
    lb45 INTEGER NOT NULL DEFAULT 0,
    lb46 INTEGER NOT NULL DEFAULT 0,
    lb47 INTEGER NOT NULL DEFAULT 0,
    lb48 INTEGER NOT NULL DEFAULT 0,
    lb49 INTEGER NOT NULL DEFAULT 0,
    lb50 INTEGER NOT NULL DEFAULT 0,
    lb51 INTEGER NOT NULL DEFAULT 0,
    lb52 INTEGER NOT NULL DEFAULT 0,
    lb53 INTEGER NOT NULL DEFAULT 0,
    lb54 INTEGER NOT NULL DEFAULT 0,
    lb55 INTEGER NOT NULL DEFAULT 0,
    lb56 INTEGER NOT NULL DEFAULT 0,
    lb57 INTEGER NOT NULL DEFAULT 0,
    lb58 INTEGER NOT NULL DEFAULT 0,
    lb59 INTEGER NOT NULL DEFAULT 0,
    lb60 INTEGER NOT NULL DEFAULT 0,
    lb61 INTEGER NOT NULL DEFAULT 0,
    lb62 INTEGER NOT NULL DEFAULT 0,
    lb63 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (grain_ms, bucket_start_ms, provider, model, status, cost_known)
) WITHOUT ROWID;
