-- One row per MCP tool call through the gateway (`/api/mcp-logs`), beside the inference log.
CREATE TABLE IF NOT EXISTS mcp_calls (
    id TEXT PRIMARY KEY,
    timestamp_ms BIGINT NOT NULL,
    tool TEXT NOT NULL,
    server TEXT NOT NULL,
    virtual_key_id TEXT,
    latency_ms DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS mcp_calls_time ON mcp_calls (timestamp_ms DESC);
