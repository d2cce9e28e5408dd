//! The read side, written once over a minimal [`Backend`] that runs a statement and decodes its rows.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::bucket::Agg;
use crate::filter::{GroupBy, LogFilter, LogQuery, MAX_BUCKET_SECONDS, MAX_LIMIT};
use crate::record::LogRecord;
use crate::sql::{self, Dialect, Source, Sql, DAY_MS, GRAINS, HOUR_MS};
use crate::{HistogramBucket, LogPage, LogStats, LogStoreError, SpendGroup, SpendRow};

/// Rows deleted per transaction while pruning.
pub(crate) const PRUNE_CHUNK: i64 = 20_000;

/// What a store must provide for the shared query code.
#[async_trait]
pub(crate) trait Backend: Send + Sync {
    fn dialect(&self) -> Dialect;
    async fn fetch_records(&self, sql: &Sql) -> Result<Vec<LogRecord>, LogStoreError>;
    async fn fetch_aggs(
        &self,
        sql: &Sql,
        from_rollup: bool,
    ) -> Result<Vec<(i64, String, Agg)>, LogStoreError>;
    async fn fetch_count(&self, sql: &Sql) -> Result<i64, LogStoreError>;
    async fn fetch_spend(&self, sql: &Sql, group: SpendGroup) -> Result<Vec<SpendRow>, LogStoreError>;
    /// Runs a statement on its own; returns the rows it affected.
    async fn execute(&self, sql: &Sql) -> Result<u64, LogStoreError>;
}

pub(crate) async fn query<B: Backend + ?Sized>(b: &B, q: &LogQuery) -> Result<LogPage, LogStoreError> {
    let limit = q.limit.clamp(1, MAX_LIMIT);
    let logs = b
        .fetch_records(&sql::page(b.dialect(), q, i64::from(limit)))
        .await?;
    let total = count(b, &q.filter).await?;
    Ok(LogPage {
        logs,
        total,
        limit,
        offset: q.offset,
    })
}

pub(crate) async fn get<B: Backend + ?Sized>(b: &B, id: &str) -> Result<Option<LogRecord>, LogStoreError> {
    Ok(b.fetch_records(&sql::get(b.dialect(), id))
        .await?
        .into_iter()
        .next())
}

/// The rollup grains usable for a filter and (optional) histogram bucket width: a rollup bucket must lie
/// inside a single histogram bucket.
fn grains_for(f: &LogFilter, bucket_ms: Option<i64>) -> Vec<i64> {
    if !sql::rollup_capable(f) {
        return Vec::new();
    }
    GRAINS
        .into_iter()
        .filter(|g| bucket_ms.is_none_or(|b| b % g == 0))
        .collect()
}

async fn count<B: Backend + ?Sized>(b: &B, f: &LogFilter) -> Result<u64, LogStoreError> {
    let grains = grains_for(f, None);
    let mut total = 0i64;
    if grains.is_empty() {
        total = b
            .fetch_count(&sql::count(b.dialect(), f, sql::Source::Raw, None))
            .await?;
    } else {
        let (start, end) = sql::time_range(f);
        for (source, s, e) in sql::plan_segments(start, end, &grains) {
            total += b
                .fetch_count(&sql::count(b.dialect(), f, source, Some((s, e))))
                .await?;
        }
    }
    Ok(total.max(0) as u64)
}

/// Aggregates per (time bucket, group) over the filter's range, each segment read from the cheapest
/// source that can answer it.
async fn aggregate<B: Backend + ?Sized>(
    b: &B,
    f: &LogFilter,
    bucket_ms: Option<i64>,
    group_by: Option<GroupBy>,
) -> Result<BTreeMap<(i64, String), Agg>, LogStoreError> {
    let grains = grains_for(f, bucket_ms);
    let (start, end) = sql::time_range(f);
    let mut out: BTreeMap<(i64, String), Agg> = BTreeMap::new();
    for (source, s, e) in sql::plan_segments(start, end, &grains) {
        let stmt = sql::aggregate(b.dialect(), f, source, (s, e), bucket_ms, group_by);
        for (tkey, gkey, agg) in b.fetch_aggs(&stmt, source != Source::Raw).await? {
            if agg.requests > 0 {
                out.entry((tkey, gkey)).or_default().merge(&agg);
            }
        }
    }
    Ok(out)
}

pub(crate) async fn stats<B: Backend + ?Sized>(b: &B, f: &LogFilter) -> Result<LogStats, LogStoreError> {
    let mut all = Agg::default();
    for agg in aggregate(b, f, None, None).await?.values() {
        all.merge(agg);
    }
    let requests = all.requests.max(0) as u64;
    let errors = all.errors.max(0) as u64;
    Ok(LogStats {
        requests,
        errors,
        success_rate: if requests > 0 {
            (requests - errors) as f64 * 100.0 / requests as f64
        } else {
            0.0
        },
        latency_avg_ms: all.latency_avg_ms(),
        latency_p50_ms: all.percentile(0.50),
        latency_p95_ms: all.percentile(0.95),
        latency_p99_ms: all.percentile(0.99),
        input_tokens: all.input_tokens.max(0) as u64,
        output_tokens: all.output_tokens.max(0) as u64,
        cost_usd: all.cost_usd,
        unknown_cost_requests: all.unknown_cost.max(0) as u64,
    })
}

pub(crate) async fn histogram<B: Backend + ?Sized>(
    b: &B,
    f: &LogFilter,
    bucket_seconds: u64,
    group_by: Option<GroupBy>,
) -> Result<Vec<HistogramBucket>, LogStoreError> {
    if !(1..=MAX_BUCKET_SECONDS).contains(&bucket_seconds) {
        return Err(LogStoreError::Invalid(format!(
            "histogram bucket must be between 1 and {MAX_BUCKET_SECONDS} seconds, not {bucket_seconds}"
        )));
    }
    let bucket_ms = bucket_seconds as i64 * 1_000;
    let rows = aggregate(b, f, Some(bucket_ms), group_by).await?;
    Ok(rows
        .into_iter()
        .map(|((start_ms, group), a)| HistogramBucket {
            start_ms,
            group: (!group.is_empty()).then_some(group),
            requests: a.requests.max(0) as u64,
            errors: a.errors.max(0) as u64,
            latency_p50_ms: a.percentile(0.50),
            latency_p95_ms: a.percentile(0.95),
            input_tokens: a.input_tokens.max(0) as u64,
            output_tokens: a.output_tokens.max(0) as u64,
            cost_usd: a.cost_usd,
        })
        .collect())
}

pub(crate) async fn spend<B: Backend + ?Sized>(
    b: &B,
    from_ms: i64,
    to_ms: i64,
    group: SpendGroup,
    virtual_key_id: Option<&str>,
) -> Result<Vec<SpendRow>, LogStoreError> {
    let stmt = sql::spend(b.dialect(), from_ms, to_ms, group, virtual_key_id);
    let mut out = b.fetch_spend(&stmt, group).await?;
    // One order on every database: calls without a group first (NULL sorts differently in each).
    out.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(out)
}

/// The first part of a prune: deletes rows before `older_than_ms` in chunks of [`PRUNE_CHUNK`], each in
/// its own transaction; returns how many went. The store then runs [`sql::prune_final`].
pub(crate) async fn prune_chunks<B: Backend + ?Sized>(
    b: &B,
    older_than_ms: i64,
) -> Result<u64, LogStoreError> {
    let mut deleted = 0u64;
    loop {
        let n = b
            .execute(&sql::prune_chunk(b.dialect(), older_than_ms, PRUNE_CHUNK))
            .await?;
        deleted += n;
        if n < PRUNE_CHUNK as u64 {
            break;
        }
    }
    Ok(deleted)
}

// Keep the grain constants and their use in one place: a daily bucket must hold whole hours.
const _: () = assert!(DAY_MS % HOUR_MS == 0);
