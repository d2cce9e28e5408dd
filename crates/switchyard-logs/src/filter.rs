//! What the logs API asks for: filters, paging and sorting, parsed from Bifrost-style query params.

use serde::{Deserialize, Serialize};

use crate::time::parse_rfc3339_ms;

/// The page size when the client gives none (Bifrost's default).
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page served; larger requests are cut to this (the page reports the limit it used).
pub const MAX_LIMIT: u32 = 1000;
/// The histogram bucket when the client gives none: one hour.
pub const DEFAULT_BUCKET_SECONDS: u64 = 3_600;
/// The widest histogram bucket accepted: a year.
pub const MAX_BUCKET_SECONDS: u64 = 366 * 86_400;

/// A malformed query parameter; `param` is the name the client sent, so the API can report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query parameter `{param}`: {message}")]
pub struct QueryParamError {
    pub param: String,
    pub message: String,
}

impl QueryParamError {
    fn new(param: &str, message: impl Into<String>) -> Self {
        QueryParamError {
            param: param.to_owned(),
            message: message.into(),
        }
    }
}

/// Success means a 2xx/3xx answer to the client; error is everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    Success,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    #[default]
    Timestamp,
    Latency,
    /// Input plus output tokens.
    Tokens,
    /// Calls without a known cost come last in both directions.
    Cost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

/// What a histogram's buckets are split by, besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Provider,
    Model,
}

/// Which log rows a list, stats or histogram request covers. Every field narrows the set; an empty list
/// or `None` means "no constraint". Values within one list are alternatives (OR).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFilter {
    pub providers: Vec<String>,
    pub models: Vec<String>,
    /// Exact HTTP statuses.
    pub statuses: Vec<u16>,
    pub status_class: Option<StatusClass>,
    pub virtual_key_ids: Vec<String>,
    /// Inclusive lower bound on `timestamp_ms`.
    pub start_ms: Option<i64>,
    /// Inclusive upper bound on `timestamp_ms`.
    pub end_ms: Option<i64>,
    pub min_latency_ms: Option<f64>,
    pub max_latency_ms: Option<f64>,
    /// Bounds on input + output tokens.
    pub min_tokens: Option<i64>,
    pub max_tokens: Option<i64>,
    /// Bounds on the known cost; calls without a known cost never match a cost bound.
    pub min_cost_usd: Option<f64>,
    pub max_cost_usd: Option<f64>,
    /// Case-insensitive substring of the request or response body. Only finds calls whose content was
    /// logged, and scans rows instead of using an index: meant for narrowing, not for whole-table use.
    pub content_search: Option<String>,
    /// Only calls whose price was unknown (`cost_known == false`).
    pub missing_cost_only: bool,
}

/// A page request of the list view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogQuery {
    pub filter: LogFilter,
    /// 1..=[`MAX_LIMIT`]; the store cuts larger values down.
    pub limit: u32,
    pub offset: u64,
    pub sort_by: SortBy,
    pub order: Order,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            filter: LogFilter::default(),
            limit: DEFAULT_LIMIT,
            offset: 0,
            sort_by: SortBy::Timestamp,
            order: Order::Desc,
        }
    }
}

/// A histogram request: which rows, how wide each time bucket is, and an optional split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramQuery {
    pub filter: LogFilter,
    pub bucket_seconds: u64,
    pub group_by: Option<GroupBy>,
}

impl LogFilter {
    /// Parses the filter params of `GET /api/logs`, `/stats` and `/histogram` (Bifrost's names).
    /// Params this store does not filter on (paging, Bifrost filters it does not keep) are ignored, so
    /// one query string can be passed to all three routes.
    pub fn from_query_pairs(pairs: &[(String, String)]) -> Result<LogFilter, QueryParamError> {
        let mut f = LogFilter::default();
        let mut classes: Vec<StatusClass> = Vec::new();
        for (key, value) in pairs {
            let k = key.as_str();
            match k {
                "providers" => f.providers.extend(list(value)),
                "models" => f.models.extend(list(value)),
                "virtual_key_ids" => f.virtual_key_ids.extend(list(value)),
                "status" => {
                    for item in list(value) {
                        match item.to_ascii_lowercase().as_str() {
                            "success" => classes.push(StatusClass::Success),
                            "error" => classes.push(StatusClass::Error),
                            other => match other.parse::<u16>() {
                                Ok(code) if (100..=599).contains(&code) => f.statuses.push(code),
                                _ => {
                                    return Err(QueryParamError::new(
                                        k,
                                        format!(
                                            "'{item}' is neither `success`, `error` nor an HTTP status code"
                                        ),
                                    ))
                                }
                            },
                        }
                    }
                }
                "start_time" => f.start_ms = Some(parse_time(k, value)?),
                "end_time" => f.end_ms = Some(parse_time(k, value)?),
                "min_latency" => f.min_latency_ms = Some(parse_non_negative_f64(k, value)?),
                "max_latency" => f.max_latency_ms = Some(parse_non_negative_f64(k, value)?),
                "min_tokens" => f.min_tokens = Some(parse_non_negative_i64(k, value)?),
                "max_tokens" => f.max_tokens = Some(parse_non_negative_i64(k, value)?),
                "min_cost" => f.min_cost_usd = Some(parse_non_negative_f64(k, value)?),
                "max_cost" => f.max_cost_usd = Some(parse_non_negative_f64(k, value)?),
                "content_search" => {
                    let v = value.trim();
                    f.content_search = (!v.is_empty()).then(|| v.to_owned());
                }
                "missing_cost_only" => f.missing_cost_only = parse_bool(k, value)?,
                _ => {}
            }
        }
        classes.sort_by_key(|c| *c == StatusClass::Error);
        classes.dedup();
        if !classes.is_empty() && !f.statuses.is_empty() {
            return Err(QueryParamError::new(
                "status",
                "give either status classes (`success`, `error`) or HTTP status codes, not both",
            ));
        }
        // Both classes together cover everything, so they constrain nothing.
        f.status_class = match classes.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        check_order("start_time", "end_time", f.start_ms, f.end_ms)?;
        check_order("min_latency", "max_latency", f.min_latency_ms, f.max_latency_ms)?;
        check_order("min_tokens", "max_tokens", f.min_tokens, f.max_tokens)?;
        check_order("min_cost", "max_cost", f.min_cost_usd, f.max_cost_usd)?;
        Ok(f)
    }

    /// True when nothing narrows the rows.
    pub fn is_empty(&self) -> bool {
        *self == LogFilter::default()
    }
}

impl LogQuery {
    /// Parses `GET /api/logs` params: the filter plus `limit`, `offset`, `sort_by` and `order`.
    pub fn from_query_pairs(pairs: &[(String, String)]) -> Result<LogQuery, QueryParamError> {
        let mut q = LogQuery {
            filter: LogFilter::from_query_pairs(pairs)?,
            ..LogQuery::default()
        };
        for (key, value) in pairs {
            let k = key.as_str();
            let v = value.trim();
            match k {
                "limit" => {
                    let n: u64 = v
                        .parse()
                        .map_err(|_| QueryParamError::new(k, format!("'{value}' is not a whole number")))?;
                    if n == 0 {
                        return Err(QueryParamError::new(k, "must be at least 1"));
                    }
                    q.limit = n.min(u64::from(MAX_LIMIT)) as u32;
                }
                "offset" => {
                    q.offset = v
                        .parse()
                        .map_err(|_| QueryParamError::new(k, format!("'{value}' is not a whole number")))?;
                }
                "sort_by" => {
                    q.sort_by = match v {
                        "timestamp" => SortBy::Timestamp,
                        "latency" => SortBy::Latency,
                        "tokens" => SortBy::Tokens,
                        "cost" => SortBy::Cost,
                        _ => {
                            return Err(QueryParamError::new(
                                k,
                                format!("'{value}' is not one of timestamp, latency, tokens, cost"),
                            ))
                        }
                    }
                }
                "order" => {
                    q.order = match v.to_ascii_lowercase().as_str() {
                        "asc" => Order::Asc,
                        "desc" => Order::Desc,
                        _ => return Err(QueryParamError::new(k, format!("'{value}' is not asc or desc"))),
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

impl HistogramQuery {
    /// Parses `GET /api/logs/histogram` params: the filter plus `bucket` (seconds, default one hour)
    /// and `group_by` (`provider` or `model`).
    pub fn from_query_pairs(pairs: &[(String, String)]) -> Result<HistogramQuery, QueryParamError> {
        let mut h = HistogramQuery {
            filter: LogFilter::from_query_pairs(pairs)?,
            bucket_seconds: DEFAULT_BUCKET_SECONDS,
            group_by: None,
        };
        for (key, value) in pairs {
            let k = key.as_str();
            let v = value.trim();
            match k {
                "bucket" => {
                    let n: u64 = v.parse().map_err(|_| {
                        QueryParamError::new(k, format!("'{value}' is not a whole number of seconds"))
                    })?;
                    if !(1..=MAX_BUCKET_SECONDS).contains(&n) {
                        return Err(QueryParamError::new(
                            k,
                            format!("must be between 1 and {MAX_BUCKET_SECONDS} seconds"),
                        ));
                    }
                    h.bucket_seconds = n;
                }
                "group_by" => {
                    h.group_by = match v {
                        "" => None,
                        "provider" => Some(GroupBy::Provider),
                        "model" => Some(GroupBy::Model),
                        _ => {
                            return Err(QueryParamError::new(
                                k,
                                format!("'{value}' is not provider or model"),
                            ))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(h)
    }
}

/// Comma-separated list items, trimmed, empties dropped (`providers=` means no constraint).
fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// RFC 3339 (what Bifrost sends) or unix milliseconds (handy for scripts).
fn parse_time(param: &str, value: &str) -> Result<i64, QueryParamError> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse()
            .map_err(|_| QueryParamError::new(param, format!("'{value}' is out of range")));
    }
    parse_rfc3339_ms(v).map_err(|m| QueryParamError::new(param, format!("{m}, or unix milliseconds")))
}

fn parse_non_negative_f64(param: &str, value: &str) -> Result<f64, QueryParamError> {
    match value.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(QueryParamError::new(
            param,
            format!("'{value}' is not a non-negative number"),
        )),
    }
}

fn parse_non_negative_i64(param: &str, value: &str) -> Result<i64, QueryParamError> {
    match value.trim().parse::<i64>() {
        Ok(x) if x >= 0 => Ok(x),
        _ => Err(QueryParamError::new(
            param,
            format!("'{value}' is not a non-negative whole number"),
        )),
    }
}

fn parse_bool(param: &str, value: &str) -> Result<bool, QueryParamError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(QueryParamError::new(
            param,
            format!("'{value}' is not true or false"),
        )),
    }
}

/// A range whose lower bound exceeds its upper bound would silently match nothing; say so instead,
/// naming the upper bound's param.
fn check_order<T: PartialOrd>(
    min_param: &str,
    max_param: &str,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), QueryParamError> {
    match (min, max) {
        (Some(lo), Some(hi)) if lo > hi => Err(QueryParamError::new(
            max_param,
            format!("must not be below `{min_param}`"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_param() {
        let q = LogQuery::from_query_pairs(&pairs(&[
            ("providers", "openai, anthropic"),
            ("providers", "mittwald"),
            ("models", "gpt-4o"),
            ("status", "429,500"),
            ("virtual_key_ids", "vk-1"),
            ("start_time", "2025-01-01T00:00:00Z"),
            ("end_time", "1735776000000"),
            ("min_latency", "10"),
            ("max_latency", "2500.5"),
            ("min_tokens", "1"),
            ("max_tokens", "99"),
            ("min_cost", "0"),
            ("max_cost", "0.5"),
            ("content_search", " hello "),
            ("missing_cost_only", "true"),
            ("limit", "5000"),
            ("offset", "100"),
            ("sort_by", "latency"),
            ("order", "asc"),
            ("aliases", "ignored"),
        ]))
        .unwrap();
        let f = &q.filter;
        assert_eq!(f.providers, ["openai", "anthropic", "mittwald"]);
        assert_eq!(f.models, ["gpt-4o"]);
        assert_eq!(f.statuses, [429, 500]);
        assert_eq!(f.status_class, None);
        assert_eq!(f.virtual_key_ids, ["vk-1"]);
        assert_eq!(f.start_ms, Some(1_735_689_600_000));
        assert_eq!(f.end_ms, Some(1_735_776_000_000));
        assert_eq!((f.min_latency_ms, f.max_latency_ms), (Some(10.0), Some(2500.5)));
        assert_eq!((f.min_tokens, f.max_tokens), (Some(1), Some(99)));
        assert_eq!((f.min_cost_usd, f.max_cost_usd), (Some(0.0), Some(0.5)));
        assert_eq!(f.content_search.as_deref(), Some("hello"));
        assert!(f.missing_cost_only);
        assert_eq!(q.limit, MAX_LIMIT);
        assert_eq!(q.offset, 100);
        assert_eq!(q.sort_by, SortBy::Latency);
        assert_eq!(q.order, Order::Asc);
    }

    #[test]
    fn defaults_and_status_classes() {
        let q = LogQuery::from_query_pairs(&[]).unwrap();
        assert_eq!(q, LogQuery::default());
        assert!(q.filter.is_empty());
        let f = LogFilter::from_query_pairs(&pairs(&[("status", "error")])).unwrap();
        assert_eq!(f.status_class, Some(StatusClass::Error));
        let f =
            LogFilter::from_query_pairs(&pairs(&[("status", "success,error"), ("providers", "")])).unwrap();
        assert!(f.is_empty());
        let h =
            HistogramQuery::from_query_pairs(&pairs(&[("bucket", "300"), ("group_by", "model")])).unwrap();
        assert_eq!((h.bucket_seconds, h.group_by), (300, Some(GroupBy::Model)));
        let h = HistogramQuery::from_query_pairs(&[]).unwrap();
        assert_eq!((h.bucket_seconds, h.group_by), (DEFAULT_BUCKET_SECONDS, None));
    }

    #[test]
    fn errors_name_the_param() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("status", "teapot")], "status"),
            (&[("status", "success,500")], "status"),
            (&[("start_time", "yesterday")], "start_time"),
            (&[("end_time", "2025-01-01")], "end_time"),
            (
                &[
                    ("start_time", "2025-01-02T00:00:00Z"),
                    ("end_time", "2025-01-01T00:00:00Z"),
                ],
                "end_time",
            ),
            (&[("min_latency", "-1")], "min_latency"),
            (&[("max_latency", "NaN")], "max_latency"),
            (&[("min_latency", "5"), ("max_latency", "4")], "max_latency"),
            (&[("min_tokens", "1.5")], "min_tokens"),
            (&[("max_tokens", "x")], "max_tokens"),
            (&[("min_cost", "free")], "min_cost"),
            (&[("max_cost", "-0.1")], "max_cost"),
            (&[("missing_cost_only", "perhaps")], "missing_cost_only"),
            (&[("limit", "0")], "limit"),
            (&[("limit", "ten")], "limit"),
            (&[("offset", "-5")], "offset"),
            (&[("sort_by", "name")], "sort_by"),
            (&[("order", "up")], "order"),
        ];
        for (input, param) in cases {
            let err = LogQuery::from_query_pairs(&pairs(input)).unwrap_err();
            assert_eq!(err.param, *param, "{input:?} -> {err}");
            assert!(err.to_string().contains(param));
        }
        for (input, param) in [
            (vec![("bucket", "0")], "bucket"),
            (vec![("bucket", "hourly")], "bucket"),
            (vec![("group_by", "team")], "group_by"),
            (vec![("status", "999")], "status"),
        ] {
            let err = HistogramQuery::from_query_pairs(&pairs(&input)).unwrap_err();
            assert_eq!(err.param, param);
        }
    }
}
