//! Switchyard's request-log store: one row per inference call, and the queries behind the logs API.
//!
//! The request path never touches the database: it hands each finished call to a [`LogWriter`], which
//! only puts it on a bounded channel (dropping and counting when the channel is full). A background
//! task writes batches through a [`LogStore`]: [`SqliteLogStore`] (`logs.db` in the app dir, the
//! default) or [`PostgresLogStore`] (shared by several gateways). Both implement the same trait and
//! pass the same behavioural tests.
//!
//! Query design, so that every API query stays fast on millions of rows:
//! - list pages pick their rows' `seq`s from an index first and read only those rows;
//! - stats, histograms and page totals read a rollup table of per-hour and per-day counters (by
//!   provider, model, status and whether the cost was known), falling back to the raw rows only for
//!   the partial hours at the ends of a range and for filters the rollup does not keep;
//! - latency percentiles come from per-bucket counts on a log scale (see [`bucket`]), within 25 % of
//!   the exact value, instead of sorting every matching latency.
#![forbid(unsafe_code)]

pub mod bucket;
mod decode;
mod engine;
mod filter;
pub mod mcp_calls;
mod postgres;
mod record;
mod sql;
mod sqlite;
mod sqlite_rows;
mod time;
mod writer;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use filter::{
    GroupBy, HistogramQuery, LogFilter, LogQuery, Order, QueryParamError, SortBy, StatusClass,
    DEFAULT_BUCKET_SECONDS, DEFAULT_LIMIT, MAX_BUCKET_SECONDS, MAX_LIMIT,
};
pub use mcp_calls::{McpCallQuery, McpCallRecord};
pub use postgres::PostgresLogStore;
pub use record::{is_success_status, LogRecord};
pub use sqlite::SqliteLogStore;
pub use time::parse_rfc3339_ms;
pub use writer::LogWriter;

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// The request itself cannot be answered (for example a zero-second histogram bucket).
    #[error("invalid log query: {0}")]
    Invalid(String),
    /// A stored value does not fit its Rust type; only a hand-edited database gets here.
    #[error("log store is corrupt: {0}")]
    Corrupt(String),
    #[error("log store error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite store's writer connection (`sqlite_rows`).
    #[error("log store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread that writes the SQLite store's rows stopped (panicked or was cancelled).
    #[error("log writer failed: {0}")]
    Writer(String),
    #[error("log store migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// One page of the list view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    pub logs: Vec<LogRecord>,
    /// How many rows match the filter in all.
    pub total: u64,
    /// The page size actually used (the request's, cut to [`MAX_LIMIT`]).
    pub limit: u32,
    pub offset: u64,
}

/// Totals over the rows a filter matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogStats {
    pub requests: u64,
    pub errors: u64,
    /// Percentage (0–100) of requests that succeeded; 0 when there were none.
    pub success_rate: f64,
    /// Exact mean.
    pub latency_avg_ms: f64,
    /// Percentiles estimated from log-scale buckets: within 25 % of the exact nearest-rank value.
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The sum of the known costs; see `unknown_cost_requests` for calls whose price was unknown.
    pub cost_usd: f64,
    /// Calls whose cost was unknown and are therefore missing from `cost_usd`.
    pub unknown_cost_requests: u64,
}

/// One time bucket of a histogram (one per group when grouped). Buckets without requests are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramBucket {
    /// Start of the bucket in unix ms; buckets are aligned to multiples of their width since the epoch
    /// (so daily buckets are UTC days).
    pub start_ms: i64,
    /// The provider or model of this series when grouped; `None` for calls that had none (and for every
    /// bucket of an ungrouped histogram).
    pub group: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

/// How the spend view groups calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGroup {
    VirtualKey,
    Team,
    Customer,
    Provider,
    Model,
    /// UTC day (`YYYY-MM-DD`).
    Day,
}

impl SpendGroup {
    /// The grouping expression; a fixed whitelist, never caller text.
    pub(crate) fn column(self) -> &'static str {
        match self {
            SpendGroup::VirtualKey => "virtual_key_id",
            SpendGroup::Team => "team_id",
            SpendGroup::Customer => "customer_id",
            SpendGroup::Provider => "provider",
            SpendGroup::Model => "model",
            SpendGroup::Day => "CAST(timestamp_ms / 86400000 AS BIGINT)",
        }
    }
}

/// Spend of one group (a key, team, customer, provider, model or day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRow {
    /// The group's value; `None` for calls without one (e.g. made without a virtual key).
    pub group: Option<String>,
    pub requests: u64,
    /// The sum of the known costs.
    pub cost_usd: f64,
    /// Calls whose cost is unknown (no price), missing from `cost_usd`.
    pub unknown_cost_requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn spend_row(
    group: SpendGroup,
    text: Option<String>,
    day: Option<i64>,
    n: i64,
    cost: f64,
    unknown: i64,
    input: i64,
    output: i64,
) -> SpendRow {
    let group_value = match group {
        SpendGroup::Day => day.map(|d| {
            let (y, m, dd) = crate::time::civil_from_days(d);
            format!("{y:04}-{m:02}-{dd:02}")
        }),
        _ => text,
    };
    SpendRow {
        group: group_value,
        requests: n as u64,
        cost_usd: cost,
        unknown_cost_requests: unknown as u64,
        input_tokens: input as u64,
        output_tokens: output as u64,
    }
}

/// Where request logs are kept. All methods are safe to call concurrently.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Writes the records in one transaction. A record whose id is already stored is skipped, so a
    /// retried batch is not counted twice.
    async fn insert_batch(&self, records: &[LogRecord]) -> Result<(), LogStoreError>;
    /// [`insert_batch`](Self::insert_batch) for the [`LogWriter`], which hands its batch over whole, so
    /// a store may move the work to a thread of its own without copying the records.
    async fn insert_shared(&self, records: std::sync::Arc<[LogRecord]>) -> Result<(), LogStoreError> {
        self.insert_batch(&records).await
    }
    async fn query(&self, query: &LogQuery) -> Result<LogPage, LogStoreError>;
    async fn get(&self, id: &str) -> Result<Option<LogRecord>, LogStoreError>;
    async fn stats(&self, filter: &LogFilter) -> Result<LogStats, LogStoreError>;
    /// Per-time-bucket aggregates, sorted by start then group. Bucket widths that are whole hours are
    /// served from the rollup; others scan the matching rows.
    async fn histogram(
        &self,
        filter: &LogFilter,
        bucket_seconds: u64,
        group_by: Option<GroupBy>,
    ) -> Result<Vec<HistogramBucket>, LogStoreError>;
    /// Cost, calls and tokens per group over `[from_ms, to_ms)`, optionally for one virtual key.
    async fn spend(
        &self,
        from_ms: i64,
        to_ms: i64,
        group: SpendGroup,
        virtual_key_id: Option<&str>,
    ) -> Result<Vec<SpendRow>, LogStoreError>;
    /// Deletes every record with `timestamp_ms < older_than_ms`; returns how many went.
    async fn prune(&self, older_than_ms: i64) -> Result<u64, LogStoreError>;
    /// Cheap liveness check for `/health`.
    async fn ping(&self) -> Result<(), LogStoreError>;
    /// Writes one MCP tool-call row (an id already stored is skipped).
    async fn insert_mcp_call(&self, record: &McpCallRecord) -> Result<(), LogStoreError>;
    /// MCP tool calls, newest first, and how many match.
    async fn mcp_calls(&self, query: &McpCallQuery) -> Result<(Vec<McpCallRecord>, u64), LogStoreError>;
}
