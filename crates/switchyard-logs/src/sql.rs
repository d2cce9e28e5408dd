//! SQL text shared by both stores.
//!
//! The two schemas are the same apart from column types, and every statement here is written in the
//! common subset of SQLite and PostgreSQL (`CAST(x AS BIGINT)` and `CAST(x AS DOUBLE PRECISION)` give
//! the same result types in both). The only differences are the placeholder syntax and the
//! case-insensitive match for content search, both handled by [`Dialect`]. Values are always bound,
//! never spliced into the text.

use crate::bucket::LATENCY_BUCKETS;
use crate::filter::{GroupBy, LogFilter, LogQuery, Order, SortBy, StatusClass};
use crate::SpendGroup;

/// The record's columns, in the order [`crate::decode`] reads them and [`record_values`] binds them.
macro_rules! record_columns {
    () => {
        "id, timestamp_ms, route, request_type, model_requested, provider, \
     model, key_id, key_name, virtual_key_id, team_id, customer_id, status, error_type, error_message, \
     stream, attempts, fallback_index, trail, latency_ms, upstream_latency_ms, overhead_ms, ttft_ms, \
     input_tokens, output_tokens, cached_tokens, cost_usd, cost_known, user_agent, request_body, \
     response_body, served_model, cache_hit, guardrails, usage_estimated"
    };
}
mod write;
use write::{bucket_columns, rollup_insert_head};
pub(crate) use write::{
    insert_log_row_sqlite, insert_logs, record_values, rollup_deltas, rollup_upserts, ValueRef,
};

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Rollup grains, coarsest first (the order [`plan_segments`] wants).
pub(crate) const GRAINS: [i64; 2] = [DAY_MS, HOUR_MS];
/// "No upper bound": far enough to be past every real timestamp, small enough not to overflow.
const FAR_FUTURE_MS: i64 = 1 << 53;

/// The row counts a multi-row statement may have (largest first). Both drivers cache a prepared
/// statement per distinct SQL text on every connection (sqlx keeps up to 100); with a free row count
/// every batch size was a new statement: prepared again, and cached at up to a few MB each (a
/// 500-row insert has 17,000 parameters). With these three shapes a batch of any size runs on at most
/// three cached statements per connection. 64 rows × 75 values stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
const SHAPES: [usize; 3] = [64, 8, 1];

/// `items` cut into slices whose lengths are all in [`SHAPES`], in order (greedy: as many of the
/// largest as fit, then the next).
pub(crate) fn shaped_chunks<T>(items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = items;
    for shape in SHAPES {
        while rest.len() >= shape {
            let (head, tail) = rest.split_at(shape);
            out.push(head);
            rest = tail;
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Param {
    I64(i64),
    F64(f64),
    Bool(bool),
    Text(String),
    OptI64(Option<i64>),
    OptF64(Option<f64>),
    OptText(Option<String>),
}

/// A statement and its bound values, built left to right.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub text: String,
    pub params: Vec<Param>,
    dialect: Dialect,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql {
            text: String::with_capacity(256),
            params: Vec::new(),
            dialect,
        }
    }

    pub fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }

    /// Appends a placeholder for `p`.
    pub fn bind(&mut self, p: Param) -> &mut Sql {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.params.len().to_string());
            }
        }
        self
    }

    fn bind_list<T: Clone>(&mut self, column: &str, items: &[T], to_param: fn(T) -> Param) {
        self.push(column).push(" IN (");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(to_param(item.clone()));
        }
        self.push(")");
    }
}

/// `sql` ready to run on either database, its values bound in order. The one place a [`Param`] meets
/// the driver.
pub(crate) fn query<'q, DB>(sql: &'q Sql) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::query(&sql.text);
    for p in &sql.params {
        q = match p {
            Param::I64(v) => q.bind(*v),
            Param::F64(v) => q.bind(*v),
            Param::Bool(v) => q.bind(*v),
            Param::Text(v) => q.bind(v.as_str()),
            Param::OptI64(v) => q.bind(*v),
            Param::OptF64(v) => q.bind(*v),
            Param::OptText(v) => q.bind(v.as_deref()),
        };
    }
    q
}

pub(crate) const RECORD_COLUMNS: &str = record_columns!();

/// Deletes up to `chunk` of the oldest rows before `cutoff_ms`; run repeatedly, each in its own short
/// transaction, so pruning a large backlog never holds the write lock for long.
pub(crate) fn prune_chunk(dialect: Dialect, cutoff_ms: i64, chunk: i64) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE timestamp_ms < ")
        .bind(Param::I64(cutoff_ms))
        .push(" ORDER BY timestamp_ms LIMIT ")
        .bind(Param::I64(chunk))
        .push(")");
    sql
}

/// The final transaction of a prune at `cutoff_ms`: first a delete of any row still before the cutoff
/// (rows that arrived late, after the chunked deletes), then the statements that bring the rollup in
/// line: rollup rows wholly before the cutoff go, and the rows of each bucket the cutoff falls inside
/// are recomputed from the raw rows that remain.
pub(crate) fn prune_final(dialect: Dialect, cutoff_ms: i64) -> (Sql, Vec<Sql>) {
    let mut stragglers = Sql::new(dialect);
    stragglers
        .push("DELETE FROM logs WHERE timestamp_ms < ")
        .bind(Param::I64(cutoff_ms));
    let mut out = Vec::new();
    let mut sql = Sql::new(dialect);
    sql.push("DELETE FROM log_rollup WHERE bucket_start_ms + grain_ms <= ")
        .bind(Param::I64(cutoff_ms));
    out.push(sql);
    for grain in GRAINS {
        let start = cutoff_ms.div_euclid(grain) * grain;
        if start == cutoff_ms {
            continue;
        }
        let mut sql = Sql::new(dialect);
        sql.push("DELETE FROM log_rollup WHERE grain_ms = ")
            .bind(Param::I64(grain))
            .push(" AND bucket_start_ms = ")
            .bind(Param::I64(start));
        out.push(sql);
        let mut sql = Sql::new(dialect);
        rollup_insert_head(&mut sql);
        sql.push(" SELECT ")
            .bind(Param::I64(grain))
            .push(", ")
            .bind(Param::I64(start))
            .push(
                ", COALESCE(provider, ''), COALESCE(model, ''), status, cost_known, COUNT(*), \
                 SUM(latency_ms), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), \
                 COALESCE(SUM(cost_usd), 0)",
            );
        for i in 0..LATENCY_BUCKETS {
            sql.push(&format!(
                ", SUM(CASE WHEN latency_bucket = {i} THEN 1 ELSE 0 END)"
            ));
        }
        sql.push(" FROM logs WHERE timestamp_ms >= ")
            .bind(Param::I64(start))
            .push(" AND timestamp_ms < ")
            .bind(Param::I64(start + grain))
            .push(" GROUP BY COALESCE(provider, ''), COALESCE(model, ''), status, cost_known");
        out.push(sql);
    }
    (stragglers, out)
}

/// Where an aggregate reads from: raw rows, or rollup rows of one grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Raw,
    Rollup(i64),
}

/// Whether the rollup can answer this filter: it only keeps time, provider, model, status and
/// cost_known, so any other constraint sends the query to the raw rows.
pub(crate) fn rollup_capable(f: &LogFilter) -> bool {
    f.virtual_key_ids.is_empty()
        && f.min_latency_ms.is_none()
        && f.max_latency_ms.is_none()
        && f.min_tokens.is_none()
        && f.max_tokens.is_none()
        && f.min_cost_usd.is_none()
        && f.max_cost_usd.is_none()
        && f.content_search.is_none()
}

/// The filter's time range as `[start, end)`.
pub(crate) fn time_range(f: &LogFilter) -> (i64, i64) {
    let start = f.start_ms.unwrap_or(0);
    let end = f
        .end_ms
        .map_or(FAR_FUTURE_MS, |e| e.saturating_add(1).min(FAR_FUTURE_MS));
    (start, end)
}

/// Splits `[start, end)` into pieces each answered by one source: whole days from the daily rollup,
/// whole hours at the edges from the hourly one, and the partial hours at the very ends from raw rows.
/// `grains` (coarsest first) are the rollup grains allowed; none means one raw piece.
pub(crate) fn plan_segments(start: i64, end: i64, grains: &[i64]) -> Vec<(Source, i64, i64)> {
    if start >= end {
        return Vec::new();
    }
    let Some((&grain, finer)) = grains.split_first() else {
        return vec![(Source::Raw, start, end)];
    };
    let inner_start = start.div_euclid(grain) * grain + if start.rem_euclid(grain) == 0 { 0 } else { grain };
    let inner_end = end.div_euclid(grain) * grain;
    if inner_start >= inner_end {
        return plan_segments(start, end, finer);
    }
    let mut out = plan_segments(start, inner_start, finer);
    out.push((Source::Rollup(grain), inner_start, inner_end));
    out.extend(plan_segments(inner_end, end, finer));
    out
}

/// Appends ` WHERE ...` for `f` against `source`. `range` (`[start, end)`) replaces the filter's own
/// time bounds; without it the filter's inclusive bounds apply (list queries).
pub(crate) fn push_where(sql: &mut Sql, f: &LogFilter, source: Source, range: Option<(i64, i64)>) {
    let mut first = true;
    let mut and = |sql: &mut Sql| {
        sql.push(if first { " WHERE " } else { " AND " });
        first = false;
    };
    match (source, range) {
        (Source::Rollup(grain), Some((s, e))) => {
            and(sql);
            sql.push("grain_ms = ").bind(Param::I64(grain));
            sql.push(" AND bucket_start_ms >= ").bind(Param::I64(s));
            sql.push(" AND bucket_start_ms < ").bind(Param::I64(e));
        }
        (Source::Raw, Some((s, e))) => {
            and(sql);
            sql.push("timestamp_ms >= ").bind(Param::I64(s));
            sql.push(" AND timestamp_ms < ").bind(Param::I64(e));
        }
        (_, None) => {
            if let Some(s) = f.start_ms {
                and(sql);
                sql.push("timestamp_ms >= ").bind(Param::I64(s));
            }
            if let Some(e) = f.end_ms {
                and(sql);
                sql.push("timestamp_ms <= ").bind(Param::I64(e));
            }
        }
    }
    if !f.providers.is_empty() {
        and(sql);
        sql.bind_list("provider", &f.providers, Param::Text);
    }
    if !f.models.is_empty() {
        and(sql);
        sql.bind_list("model", &f.models, Param::Text);
    }
    if !f.statuses.is_empty() {
        and(sql);
        sql.bind_list("status", &f.statuses, |s| Param::I64(i64::from(s)));
    }
    match f.status_class {
        Some(StatusClass::Success) => {
            and(sql);
            sql.push("(status >= 200 AND status < 400)");
        }
        Some(StatusClass::Error) => {
            and(sql);
            sql.push("(status < 200 OR status >= 400)");
        }
        None => {}
    }
    if f.missing_cost_only {
        and(sql);
        sql.push("NOT cost_known");
    }
    if source != Source::Raw {
        return;
    }
    if !f.virtual_key_ids.is_empty() {
        and(sql);
        sql.bind_list("virtual_key_id", &f.virtual_key_ids, Param::Text);
    }
    let bounds: [(&str, &str, Option<Param>); 6] = [
        ("latency_ms", ">=", f.min_latency_ms.map(Param::F64)),
        ("latency_ms", "<=", f.max_latency_ms.map(Param::F64)),
        ("total_tokens", ">=", f.min_tokens.map(Param::I64)),
        ("total_tokens", "<=", f.max_tokens.map(Param::I64)),
        ("cost_usd", ">=", f.min_cost_usd.map(Param::F64)),
        ("cost_usd", "<=", f.max_cost_usd.map(Param::F64)),
    ];
    for (column, op, value) in bounds {
        if let Some(v) = value {
            and(sql);
            sql.push(column).push(" ").push(op).push(" ").bind(v);
        }
    }
    if let Some(needle) = &f.content_search {
        let pattern = format!("%{}%", escape_like(needle));
        let op = match sql.dialect {
            Dialect::Sqlite => " LIKE ",
            Dialect::Postgres => " ILIKE ",
        };
        and(sql);
        sql.push("(request_body")
            .push(op)
            .bind(Param::Text(pattern.clone()))
            .push(" ESCAPE '\\'");
        sql.push(" OR response_body")
            .push(op)
            .bind(Param::Text(pattern))
            .push(" ESCAPE '\\')");
    }
}

/// Makes `%`, `_` and `\` in a search string match themselves.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn sort_parts(q: &LogQuery) -> (&'static str, &'static str, &'static str) {
    let dir = match q.order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    match q.sort_by {
        SortBy::Timestamp => ("timestamp_ms", dir, ""),
        SortBy::Latency => ("latency_ms", dir, ""),
        SortBy::Tokens => ("total_tokens", dir, ""),
        // The two databases disagree on where NULLs sort; say it explicitly.
        SortBy::Cost => ("cost_usd", dir, " NULLS LAST"),
    }
}

/// One page of records. The page's `seq`s are chosen first by a query that can be answered from an
/// index alone, and only those rows are then read, so a large offset or a sort over a wide time range
/// never drags whole rows (bodies included) through the sorter. Ties break on insertion order.
pub(crate) fn page(dialect: Dialect, q: &LogQuery, limit: i64) -> Sql {
    let (column, dir, nulls) = sort_parts(q);
    let order = format!(" ORDER BY {column} {dir}{nulls}, seq {dir}");
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ")
        .push(RECORD_COLUMNS)
        .push(" FROM logs WHERE seq IN (SELECT seq FROM logs");
    push_where(&mut sql, &q.filter, Source::Raw, None);
    sql.push(&order).push(" LIMIT ").bind(Param::I64(limit));
    sql.push(" OFFSET ")
        .bind(Param::I64(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    sql.push(")").push(&order);
    sql
}

pub(crate) fn get(dialect: Dialect, id: &str) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ")
        .push(RECORD_COLUMNS)
        .push(" FROM logs WHERE id = ")
        .bind(Param::Text(id.to_owned()));
    sql
}

/// How many rows of one segment match.
pub(crate) fn count(dialect: Dialect, f: &LogFilter, source: Source, range: Option<(i64, i64)>) -> Sql {
    let mut sql = Sql::new(dialect);
    match source {
        Source::Raw => sql.push("SELECT COUNT(*) FROM logs"),
        Source::Rollup(_) => sql.push("SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM log_rollup"),
    };
    push_where(&mut sql, f, source, range);
    sql
}

/// The aggregate of one segment, split by time bucket (`bucket_ms`) and group when asked.
///
/// Raw rows come back as `tkey, gkey, lb, requests, errors, latency_sum, input, output, cost, unknown`
/// per latency bucket; rollup rows as `tkey, gkey, requests, ..., unknown, lb00..lb63`. Both fold into
/// the same [`Agg`].
pub(crate) fn aggregate(
    dialect: Dialect,
    f: &LogFilter,
    source: Source,
    range: (i64, i64),
    bucket_ms: Option<i64>,
    group_by: Option<GroupBy>,
) -> Sql {
    let mut sql = Sql::new(dialect);
    let time_col = match source {
        Source::Raw => "timestamp_ms",
        Source::Rollup(_) => "bucket_start_ms",
    };
    let mut group_cols: Vec<&str> = Vec::new();
    sql.push("SELECT ");
    match bucket_ms {
        Some(b) => {
            sql.push(&format!("CAST(({time_col} / "))
                .bind(Param::I64(b))
                .push(") * ")
                .bind(Param::I64(b))
                .push(" AS BIGINT)");
            group_cols.push("1");
        }
        None => {
            sql.push("CAST(0 AS BIGINT)");
        }
    }
    let group_col = match group_by {
        Some(GroupBy::Provider) => Some("provider"),
        Some(GroupBy::Model) => Some("model"),
        None => None,
    };
    match (group_col, source) {
        (Some(c), Source::Raw) => {
            sql.push(&format!(", COALESCE({c}, '')"));
            group_cols.push("2");
        }
        (Some(c), Source::Rollup(_)) => {
            sql.push(&format!(", {c}"));
            group_cols.push("2");
        }
        (None, _) => {
            sql.push(", CAST('' AS TEXT)");
        }
    }
    match source {
        Source::Raw => {
            sql.push(
                ", latency_bucket, COUNT(*), \
                 CAST(SUM(CASE WHEN status < 200 OR status >= 400 THEN 1 ELSE 0 END) AS BIGINT), \
                 CAST(SUM(latency_ms) AS DOUBLE PRECISION), \
                 CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION), \
                 CAST(SUM(CASE WHEN cost_known THEN 0 ELSE 1 END) AS BIGINT) FROM logs",
            );
            group_cols.push("3");
        }
        Source::Rollup(_) => {
            sql.push(
                ", CAST(COALESCE(SUM(requests), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN status < 200 OR status >= 400 THEN requests ELSE 0 END), 0) \
                 AS BIGINT), \
                 CAST(COALESCE(SUM(latency_sum_ms), 0) AS DOUBLE PRECISION), \
                 CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION), \
                 CAST(COALESCE(SUM(CASE WHEN cost_known THEN 0 ELSE requests END), 0) AS BIGINT)",
            );
            for c in bucket_columns() {
                sql.push(&format!(", CAST(COALESCE(SUM({c}), 0) AS BIGINT)"));
            }
            sql.push(" FROM log_rollup");
        }
    }
    push_where(&mut sql, f, source, Some(range));
    if !group_cols.is_empty() {
        sql.push(" GROUP BY ").push(&group_cols.join(", "));
    }
    sql
}

/// Cost, calls and tokens per `group` over `[from_ms, to_ms)`, optionally of one virtual key. Rows are
/// `group, requests, cost, unknown-cost requests, input tokens, output tokens`
/// ([`crate::decode::spend`]).
pub(crate) fn spend(
    dialect: Dialect,
    from_ms: i64,
    to_ms: i64,
    group: SpendGroup,
    virtual_key_id: Option<&str>,
) -> Sql {
    let g = group.column();
    // SQLite keeps the flag as an integer.
    let known = match dialect {
        Dialect::Sqlite => "cost_known <> 0",
        Dialect::Postgres => "cost_known",
    };
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT {g} AS g, COUNT(*) AS n, \
         CAST(COALESCE(SUM(CASE WHEN {known} THEN COALESCE(cost_usd, 0) ELSE 0 END), 0) AS DOUBLE PRECISION), \
         CAST(COALESCE(SUM(CASE WHEN {known} THEN 0 ELSE 1 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(COALESCE(input_tokens, 0)), 0) AS BIGINT), \
         CAST(COALESCE(SUM(COALESCE(output_tokens, 0)), 0) AS BIGINT) \
         FROM logs WHERE timestamp_ms >= "
    ))
    .bind(Param::I64(from_ms))
    .push(" AND timestamp_ms < ")
    .bind(Param::I64(to_ms));
    if let Some(key) = virtual_key_id {
        sql.push(" AND virtual_key_id = ")
            .bind(Param::Text(key.to_owned()));
    }
    sql.push(&format!(" GROUP BY {g} ORDER BY {g}"));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_run_on_three_statement_shapes() {
        let rows: Vec<u32> = (0..587).collect();
        let chunks = shaped_chunks(&rows);
        assert!(chunks.iter().all(|c| SHAPES.contains(&c.len())));
        assert_eq!(chunks.concat(), rows, "every row once, in order");
        assert_eq!(chunks.len(), 9 + 1 + 3, "587 = 9×64 + 1×8 + 3×1");
        assert!(shaped_chunks::<u32>(&[]).is_empty());
    }

    #[test]
    fn segments_cover_the_range_exactly_once() {
        let h = HOUR_MS;
        let d = DAY_MS;
        // Aligned whole days only.
        assert_eq!(
            plan_segments(0, 2 * d, &GRAINS),
            vec![(Source::Rollup(d), 0, 2 * d)]
        );
        // Ragged on both ends.
        let s = d - h - 5;
        let e = 3 * d + 2 * h + 7;
        assert_eq!(
            plan_segments(s, e, &GRAINS),
            vec![
                (Source::Raw, s, d - h),
                (Source::Rollup(h), d - h, d),
                (Source::Rollup(d), d, 3 * d),
                (Source::Rollup(h), 3 * d, 3 * d + 2 * h),
                (Source::Raw, 3 * d + 2 * h, e),
            ]
        );
        // Inside one hour: raw only; no grains: raw only; empty range: nothing.
        assert_eq!(plan_segments(10, 20, &GRAINS), vec![(Source::Raw, 10, 20)]);
        assert_eq!(plan_segments(0, 5 * d, &[]), vec![(Source::Raw, 0, 5 * d)]);
        assert!(plan_segments(5, 5, &GRAINS).is_empty());
        // Hour grain only (hourly histogram).
        assert_eq!(
            plan_segments(h / 2, 3 * h, &[HOUR_MS]),
            vec![(Source::Raw, h / 2, h), (Source::Rollup(h), h, 3 * h)]
        );
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        let f = LogFilter {
            providers: vec!["a".into(), "b".into()],
            ..LogFilter::default()
        };
        let s = count(Dialect::Postgres, &f, Source::Raw, Some((1, 2)));
        assert!(s
            .text
            .ends_with("timestamp_ms >= $1 AND timestamp_ms < $2 AND provider IN ($3, $4)"));
        let s = count(Dialect::Sqlite, &f, Source::Raw, Some((1, 2)));
        assert!(s
            .text
            .ends_with("timestamp_ms >= ? AND timestamp_ms < ? AND provider IN (?, ?)"));
        assert_eq!(s.params.len(), 4);
    }

    #[test]
    fn spend_filters_by_key_only_when_asked() {
        let s = spend(Dialect::Postgres, 1, 2, SpendGroup::Model, Some("vk-1"));
        assert!(s.text.contains(
            "WHERE timestamp_ms >= $1 AND timestamp_ms < $2 AND virtual_key_id = $3 GROUP BY model"
        ));
        assert_eq!(s.params.len(), 3);
        let s = spend(Dialect::Sqlite, 1, 2, SpendGroup::Model, None);
        assert!(s
            .text
            .contains("WHERE timestamp_ms >= ? AND timestamp_ms < ? GROUP BY model ORDER BY model"));
        assert!(s.text.contains("CASE WHEN cost_known <> 0 THEN"));
        assert_eq!(s.params.len(), 2);
    }

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
