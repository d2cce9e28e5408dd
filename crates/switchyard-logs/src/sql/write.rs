//! The write side: one log row's values and the statements that insert rows and add them to the
//! rollup.

use std::collections::BTreeMap;

use super::{shaped_chunks, Dialect, Param, Sql, GRAINS};
use crate::bucket::{latency_bucket, Agg, LATENCY_BUCKETS};
use crate::record::{is_success_status, LogRecord};

/// A latency that is not a finite, non-negative number is stored as 0 rather than failing the whole
/// batch over one caller's bad clock reading.
pub(crate) fn clean_latency(ms: f64) -> f64 {
    if ms.is_finite() && ms >= 0.0 {
        ms
    } else {
        0.0
    }
}

/// Optional measurements that are not finite are stored as unknown (SQLite would turn NaN into NULL
/// anyway; PostgreSQL would keep it and poison every sum).
fn clean_opt(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// One multi-row insert. Rows whose id is already stored are skipped, and the ids actually inserted
/// come back, so a batch retried after an ambiguous commit neither fails nor double-counts.
pub(crate) fn insert_logs(dialect: Dialect, rows: &[LogRecord]) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(INSERT_LOGS_HEAD);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(");
        for (j, v) in record_values(r).into_iter().enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            sql.bind(v.to_param());
        }
        sql.push(")");
    }
    sql.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
    sql
}

const INSERT_LOGS_HEAD: &str = concat!(
    "INSERT INTO logs (",
    record_columns!(),
    ", latency_bucket, total_tokens) VALUES "
);

/// How many values one log row binds: [`RECORD_COLUMNS`] plus `latency_bucket` and `total_tokens`.
pub(crate) const ROW_VALUES: usize = 37;

/// The single-row insert of the SQLite writer (`sqlite_rows`): skips an id already stored and says
/// so by changing no row.
pub(crate) fn insert_log_row_sqlite() -> String {
    let mut text = String::from(INSERT_LOGS_HEAD);
    text.push('(');
    for j in 0..ROW_VALUES {
        text.push_str(if j > 0 { ", ?" } else { "?" });
    }
    text.push_str(") ON CONFLICT (id) DO NOTHING");
    text
}

/// A value bound to a statement, borrowed from the record it comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    I64(i64),
    F64(f64),
    Bool(bool),
    Text(&'a str),
    OptI64(Option<i64>),
    OptF64(Option<f64>),
    OptText(Option<&'a str>),
}

impl ValueRef<'_> {
    fn to_param(self) -> Param {
        match self {
            ValueRef::I64(v) => Param::I64(v),
            ValueRef::F64(v) => Param::F64(v),
            ValueRef::Bool(v) => Param::Bool(v),
            ValueRef::Text(v) => Param::Text(v.to_owned()),
            ValueRef::OptI64(v) => Param::OptI64(v),
            ValueRef::OptF64(v) => Param::OptF64(v),
            ValueRef::OptText(v) => Param::OptText(v.map(str::to_owned)),
        }
    }
}

impl Param {
    pub(crate) fn as_value(&self) -> ValueRef<'_> {
        match self {
            Param::I64(v) => ValueRef::I64(*v),
            Param::F64(v) => ValueRef::F64(*v),
            Param::Bool(v) => ValueRef::Bool(*v),
            Param::Text(v) => ValueRef::Text(v),
            Param::OptI64(v) => ValueRef::OptI64(*v),
            Param::OptF64(v) => ValueRef::OptF64(*v),
            Param::OptText(v) => ValueRef::OptText(v.as_deref()),
        }
    }
}

/// One log row's values, in the order of [`INSERT_LOGS_HEAD`]'s columns: the one list both the
/// multi-row statements and the SQLite writer bind.
pub(crate) fn record_values(r: &LogRecord) -> [ValueRef<'_>; ROW_VALUES] {
    let latency = clean_latency(r.latency_ms);
    fn text(v: &Option<String>) -> ValueRef<'_> {
        ValueRef::OptText(v.as_deref())
    }
    [
        ValueRef::Text(&r.id),
        ValueRef::I64(r.timestamp_ms),
        ValueRef::Text(&r.route),
        ValueRef::Text(&r.request_type),
        ValueRef::Text(&r.model_requested),
        text(&r.provider),
        text(&r.model),
        text(&r.key_id),
        text(&r.key_name),
        text(&r.virtual_key_id),
        text(&r.team_id),
        text(&r.customer_id),
        ValueRef::I64(i64::from(r.status)),
        text(&r.error_type),
        text(&r.error_message),
        ValueRef::Bool(r.stream),
        ValueRef::I64(i64::from(r.attempts)),
        ValueRef::OptI64(r.fallback_index.map(i64::from)),
        text(&r.trail),
        ValueRef::F64(latency),
        ValueRef::OptF64(clean_opt(r.upstream_latency_ms)),
        ValueRef::OptF64(clean_opt(r.overhead_ms)),
        ValueRef::OptF64(clean_opt(r.ttft_ms)),
        ValueRef::OptI64(r.input_tokens),
        ValueRef::OptI64(r.output_tokens),
        ValueRef::OptI64(r.cached_tokens),
        ValueRef::OptF64(clean_opt(r.cost_usd)),
        ValueRef::Bool(r.cost_known),
        text(&r.user_agent),
        text(&r.request_body),
        text(&r.response_body),
        text(&r.served_model),
        ValueRef::Bool(r.cache_hit),
        text(&r.guardrails),
        ValueRef::Bool(r.usage_estimated),
        ValueRef::I64(latency_bucket(latency) as i64),
        ValueRef::I64(r.total_tokens()),
    ]
}

/// The identity of one rollup row. Ordered, so that upserts always touch rows in the same order and
/// concurrent writers (several gateways on one PostgreSQL) cannot deadlock on each other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RollupKey {
    grain_ms: i64,
    bucket_start_ms: i64,
    provider: String,
    model: String,
    status: i64,
    cost_known: bool,
}

/// Folds records into the rollup rows they add to, at every grain.
pub(crate) fn rollup_deltas<'a>(records: impl Iterator<Item = &'a LogRecord>) -> BTreeMap<RollupKey, Agg> {
    let mut out: BTreeMap<RollupKey, Agg> = BTreeMap::new();
    for r in records {
        let latency = clean_latency(r.latency_ms);
        for grain in GRAINS {
            let key = RollupKey {
                grain_ms: grain,
                bucket_start_ms: r.timestamp_ms.div_euclid(grain) * grain,
                provider: r.provider.clone().unwrap_or_default(),
                model: r.model.clone().unwrap_or_default(),
                status: i64::from(r.status),
                cost_known: r.cost_known,
            };
            let agg = out.entry(key).or_default();
            agg.requests += 1;
            agg.errors += i64::from(!is_success_status(r.status));
            agg.latency_sum_ms += latency;
            agg.input_tokens += r.input_tokens.unwrap_or(0);
            agg.output_tokens += r.output_tokens.unwrap_or(0);
            agg.cost_usd += clean_opt(r.cost_usd).unwrap_or(0.0);
            agg.unknown_cost += i64::from(!r.cost_known);
            agg.buckets[latency_bucket(latency)] += 1;
        }
    }
    out
}

pub(super) fn bucket_columns() -> impl Iterator<Item = String> {
    (0..LATENCY_BUCKETS).map(|i| format!("lb{i:02}"))
}

const ROLLUP_KEY_COLUMNS: &str = "grain_ms, bucket_start_ms, provider, model, status, cost_known";
const ROLLUP_SUM_COLUMNS: [&str; 5] = [
    "requests",
    "latency_sum_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
];

pub(super) fn rollup_insert_head(sql: &mut Sql) {
    sql.push("INSERT INTO log_rollup (").push(ROLLUP_KEY_COLUMNS);
    for c in ROLLUP_SUM_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(bucket_columns())
    {
        sql.push(", ").push(&c);
    }
    sql.push(")");
}

/// Upserts that add the deltas to the rollup (creating rows as needed).
pub(crate) fn rollup_upserts(dialect: Dialect, deltas: &BTreeMap<RollupKey, Agg>) -> Vec<Sql> {
    let entries: Vec<(&RollupKey, &Agg)> = deltas.iter().collect();
    let mut update = String::new();
    for c in ROLLUP_SUM_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(bucket_columns())
    {
        if !update.is_empty() {
            update.push_str(", ");
        }
        update.push_str(&format!("{c} = log_rollup.{c} + excluded.{c}"));
    }
    shaped_chunks(&entries)
        .into_iter()
        .map(|chunk| {
            let mut sql = Sql::new(dialect);
            rollup_insert_head(&mut sql);
            sql.push(" VALUES ");
            for (i, (k, a)) in chunk.iter().enumerate() {
                sql.push(if i > 0 { ", (" } else { "(" });
                sql.bind(Param::I64(k.grain_ms)).push(", ");
                sql.bind(Param::I64(k.bucket_start_ms)).push(", ");
                sql.bind(Param::Text(k.provider.clone())).push(", ");
                sql.bind(Param::Text(k.model.clone())).push(", ");
                sql.bind(Param::I64(k.status)).push(", ");
                sql.bind(Param::Bool(k.cost_known)).push(", ");
                sql.bind(Param::I64(a.requests)).push(", ");
                sql.bind(Param::F64(a.latency_sum_ms)).push(", ");
                sql.bind(Param::I64(a.input_tokens)).push(", ");
                sql.bind(Param::I64(a.output_tokens)).push(", ");
                sql.bind(Param::F64(a.cost_usd));
                for b in a.buckets {
                    sql.push(", ").bind(Param::I64(b));
                }
                sql.push(")");
            }
            sql.push(" ON CONFLICT (")
                .push(ROLLUP_KEY_COLUMNS)
                .push(") DO UPDATE SET ")
                .push(&update);
            sql
        })
        .collect()
}
