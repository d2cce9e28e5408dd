-- One row per inference call. `latency_bucket` and `total_tokens` are derived at insert time (the
-- log-scale bucket of `latency_ms`, and input + output tokens with unknown counts as 0) so that
-- percentiles and token filters/sorts need no per-row computation at query time.
CREATE TABLE logs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    timestamp_ms BIGINT NOT NULL,
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
    status BIGINT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    stream BOOLEAN NOT NULL,
    attempts BIGINT NOT NULL,
    fallback_index BIGINT,
    trail TEXT,
    latency_ms DOUBLE PRECISION NOT NULL,
    latency_bucket BIGINT NOT NULL,
    upstream_latency_ms DOUBLE PRECISION,
    overhead_ms DOUBLE PRECISION,
    ttft_ms DOUBLE PRECISION,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cached_tokens BIGINT,
    total_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION,
    cost_known BOOLEAN NOT NULL,
    user_agent TEXT,
    request_body TEXT,
    response_body TEXT
);

-- The list view: newest first, and the time-range scans under every other query. It also carries the
-- sort keys, so "time range, sorted by latency/tokens/cost" is answered from this index alone (the
-- page's `seq`s are picked here and only those rows are read).
CREATE INDEX logs_time_sort ON logs (timestamp_ms, latency_ms, total_tokens, cost_usd, seq);
-- Equality filters of the list view, each walked in time order.
CREATE INDEX logs_provider_time ON logs (provider, timestamp_ms, seq);
CREATE INDEX logs_model_time ON logs (model, timestamp_ms, seq);
CREATE INDEX logs_status_time ON logs (status, timestamp_ms, seq);
CREATE INDEX logs_virtual_key_time ON logs (virtual_key_id, timestamp_ms, seq);
-- No index on latency, tokens or cost alone: each is written at a random position per row, which cut
-- insert throughput threefold (7k instead of 20k rows/s on SQLite). A sort by one of them over the whole
-- table scans `logs_time_sort` instead (see QUERY_TIMES.md).

-- Pre-aggregated counters per hour and per day, so stats, histograms and page totals over weeks of
-- traffic read a few thousand rows instead of scanning every log row. Kept in step with `logs` in the
-- same transaction as each insert batch and each prune. `provider`/`model` are '' when the record had
-- none (a primary key cannot hold NULLs portably). `lbNN` counts the requests whose latency fell into
-- log-scale bucket NN (see `latency_bucket` in src/bucket.rs): percentiles come from these counts.
CREATE TABLE log_rollup (
    grain_ms BIGINT NOT NULL,
    bucket_start_ms BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status BIGINT NOT NULL,
    cost_known BOOLEAN NOT NULL,
    requests BIGINT NOT NULL,
    latency_sum_ms DOUBLE PRECISION NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    lb00 BIGINT NOT NULL DEFAULT 0,
    lb01 BIGINT NOT NULL DEFAULT 0,
    lb02 BIGINT NOT NULL DEFAULT 0,
    lb03 BIGINT NOT NULL DEFAULT 0,
    lb04 BIGINT NOT NULL DEFAULT 0,
    lb05 BIGINT NOT NULL DEFAULT 0,
    lb06 BIGINT NOT NULL DEFAULT 0,
    lb07 BIGINT NOT NULL DEFAULT 0,
    lb08 BIGINT NOT NULL DEFAULT 0,
    lb09 BIGINT NOT NULL DEFAULT 0,
    lb10 BIGINT NOT NULL DEFAULT 0,
    lb11 BIGINT NOT NULL DEFAULT 0,
    lb12 BIGINT NOT NULL DEFAULT 0,
    lb13 BIGINT NOT NULL DEFAULT 0,
    lb14 BIGINT NOT NULL DEFAULT 0,
    lb15 BIGINT NOT NULL DEFAULT 0,
    lb16 BIGINT NOT NULL DEFAULT 0,
    lb17 BIGINT NOT NULL DEFAULT 0,
    lb18 BIGINT NOT NULL DEFAULT 0,
    lb19 BIGINT NOT NULL DEFAULT 0,
    lb20 BIGINT NOT NULL DEFAULT 0,
    lb21 BIGINT NOT NULL DEFAULT 0,
    lb22 BIGINT NOT NULL DEFAULT 0,
    lb23 BIGINT NOT NULL DEFAULT 0,
    lb24 BIGINT NOT NULL DEFAULT 0,
    lb25 BIGINT NOT NULL DEFAULT 0,
    lb26 BIGINT NOT NULL DEFAULT 0,
    lb27 BIGINT NOT NULL DEFAULT 0,
    lb28 BIGINT NOT NULL DEFAULT 0,
    lb29 BIGINT NOT NULL DEFAULT 0,
    lb30 BIGINT NOT NULL DEFAULT 0,
    lb31 BIGINT NOT NULL DEFAULT 0,
    lb32 BIGINT NOT NULL DEFAULT 0,
    lb33 BIGINT NOT NULL DEFAULT 0,
    lb34 BIGINT NOT NULL DEFAULT 0,
    lb35 BIGINT NOT NULL DEFAULT 0,
    lb36 BIGINT NOT NULL DEFAULT 0,
    lb37 BIGINT NOT NULL DEFAULT 0,
    lb38 BIGINT NOT NULL DEFAULT 0,
    lb39 BIGINT NOT NULL DEFAULT 0,
    lb40 BIGINT NOT NULL DEFAULT 0,
    lb41 BIGINT NOT NULL DEFAULT 0,
    lb42 BIGINT NOT NULL DEFAULT 0,
    lb43 BIGINT NOT NULL DEFAULT 0,
    lb44 BIGINT NOT NULL DEFAULT 0,
    lb45 BIGINT NOT NULL DEFAULT 0,
    lb46 BIGINT NOT NULL DEFAULT 0,
    lb47 BIGINT NOT NULL DEFAULT 0,
    lb48 BIGINT NOT NULL DEFAULT 0,
    lb49 BIGINT NOT NULL DEFAULT 0,
    lb50 BIGINT NOT NULL DEFAULT 0,
    lb51 BIGINT NOT NULL DEFAULT 0,
    lb52 BIGINT NOT NULL DEFAULT 0,
    lb53 BIGINT NOT NULL DEFAULT 0,
    lb54 BIGINT NOT NULL DEFAULT 0,
    lb55 BIGINT NOT NULL DEFAULT 0,
    lb56 BIGINT NOT NULL DEFAULT 0,
    lb57 BIGINT NOT NULL DEFAULT 0,
    lb58 BIGINT NOT NULL DEFAULT 0,
    lb59 BIGINT NOT NULL DEFAULT 0,
    lb60 BIGINT NOT NULL DEFAULT 0,
    lb61 BIGINT NOT NULL DEFAULT 0,
    lb62 BIGINT NOT NULL DEFAULT 0,
    lb63 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grain_ms, bucket_start_ms, provider, model, status, cost_known)
);
