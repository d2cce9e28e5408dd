//! Reading rows back, the same code for both databases (columns are read by position, in the order
//! the statements in `sql` select them).

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::bucket::{Agg, LATENCY_BUCKETS};
use crate::record::LogRecord;
use crate::{LogStoreError, SpendGroup, SpendRow};

fn get<'r, T, R>(row: &'r R, i: usize) -> Result<T, LogStoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(row.try_get::<T, usize>(i)?)
}

fn narrow<T: TryFrom<i64>>(value: i64, what: &str, id: &str) -> Result<T, LogStoreError> {
    T::try_from(value)
        .map_err(|_| LogStoreError::Corrupt(format!("log '{id}': {what} {value} is out of range")))
}

/// Decodes a row selected with [`crate::sql::RECORD_COLUMNS`].
pub(crate) fn record<'r, R>(row: &'r R) -> Result<LogRecord, LogStoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let id: String = get(row, 0)?;
    let status: i64 = get(row, 12)?;
    let attempts: i64 = get(row, 16)?;
    let fallback_index: Option<i64> = get(row, 17)?;
    Ok(LogRecord {
        timestamp_ms: get(row, 1)?,
        route: get(row, 2)?,
        request_type: get(row, 3)?,
        model_requested: get(row, 4)?,
        provider: get(row, 5)?,
        model: get(row, 6)?,
        key_id: get(row, 7)?,
        key_name: get(row, 8)?,
        virtual_key_id: get(row, 9)?,
        team_id: get(row, 10)?,
        customer_id: get(row, 11)?,
        status: narrow(status, "status", &id)?,
        error_type: get(row, 13)?,
        error_message: get(row, 14)?,
        stream: get(row, 15)?,
        attempts: narrow(attempts, "attempts", &id)?,
        fallback_index: fallback_index
            .map(|v| narrow(v, "fallback_index", &id))
            .transpose()?,
        trail: get(row, 18)?,
        latency_ms: get(row, 19)?,
        upstream_latency_ms: get(row, 20)?,
        overhead_ms: get(row, 21)?,
        ttft_ms: get(row, 22)?,
        input_tokens: get(row, 23)?,
        output_tokens: get(row, 24)?,
        cached_tokens: get(row, 25)?,
        cost_usd: get(row, 26)?,
        cost_known: get(row, 27)?,
        user_agent: get(row, 28)?,
        request_body: get(row, 29)?,
        response_body: get(row, 30)?,
        served_model: get(row, 31)?,
        cache_hit: get(row, 32)?,
        guardrails: get(row, 33)?,
        usage_estimated: get(row, 34)?,
        id,
    })
}

/// Decodes a row of [`crate::sql::aggregate`]: `(time bucket, group, aggregate)`.
pub(crate) fn agg<'r, R>(row: &'r R, from_rollup: bool) -> Result<(i64, String, Agg), LogStoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    let tkey: i64 = get(row, 0)?;
    let gkey: String = get(row, 1)?;
    let base = if from_rollup { 2 } else { 3 };
    let mut a = Agg {
        requests: get(row, base)?,
        errors: get(row, base + 1)?,
        latency_sum_ms: get::<Option<f64>, _>(row, base + 2)?.unwrap_or(0.0),
        input_tokens: get(row, base + 3)?,
        output_tokens: get(row, base + 4)?,
        cost_usd: get(row, base + 5)?,
        unknown_cost: get(row, base + 6)?,
        ..Agg::default()
    };
    if from_rollup {
        for i in 0..LATENCY_BUCKETS {
            a.buckets[i] = get(row, base + 7 + i)?;
        }
    } else {
        let lb: i64 = get(row, 2)?;
        let lb = usize::try_from(lb).unwrap_or(0).min(LATENCY_BUCKETS - 1);
        a.buckets[lb] = a.requests;
    }
    Ok((tkey, gkey, a))
}

/// Decodes a row of [`crate::sql::spend`]; a day group comes back as the day number.
pub(crate) fn spend<'r, R>(row: &'r R, group: SpendGroup) -> Result<SpendRow, LogStoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    let (label, day) = if group == SpendGroup::Day {
        (None, get::<Option<i64>, _>(row, 0)?)
    } else {
        (get::<Option<String>, _>(row, 0)?, None)
    };
    Ok(crate::spend_row(
        group,
        label,
        day,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
        get(row, 5)?,
    ))
}
