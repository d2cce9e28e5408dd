//! The data and the oracle of the store suite: deterministic records, and the filter, stats and
//! histogram semantics restated over plain records, to compare each store's answers against.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchyard_logs::bucket::{latency_bucket, LATENCY_BUCKET_RATIO};
use switchyard_logs::{GroupBy, LogFilter, LogQuery, LogRecord, LogStore, StatusClass};

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;
/// A UTC midnight, so tests can place records on hour and day boundaries on purpose.
pub const T0: i64 = 20_000 * DAY;

pub fn full_record() -> LogRecord {
    LogRecord {
        id: "0195f0c2-0000-7000-8000-000000000001".into(),
        timestamp_ms: T0 + 1_234,
        route: "/v1/chat/completions".into(),
        request_type: "chat_completion".into(),
        model_requested: "openai/gpt-4o".into(),
        provider: Some("openai".into()),
        model: Some("gpt-4o".into()),
        served_model: Some("gpt-4o-2024-08-06".into()),
        guardrails: Some(r#"[{"guardrail":"pii","decision":"redact"}]"#.into()),
        key_id: Some("key-1".into()),
        key_name: Some("primary".into()),
        virtual_key_id: Some("vk-1".into()),
        team_id: Some("team-1".into()),
        customer_id: Some("cust-1".into()),
        status: 429,
        error_type: Some("rate_limit".into()),
        error_message: Some("slow down — ünïcode ✓".into()),
        stream: true,
        attempts: 3,
        fallback_index: Some(2),
        trail: Some(r#"[{"provider":"openai","status":429}]"#.into()),
        latency_ms: 1234.5678,
        upstream_latency_ms: Some(1200.25),
        overhead_ms: Some(0.375),
        ttft_ms: Some(321.5),
        input_tokens: Some(12_345_678_901),
        output_tokens: Some(42),
        cached_tokens: Some(7),
        cost_usd: Some(0.000_123_456_789),
        cost_known: true,
        usage_estimated: true,
        user_agent: Some("openai-python/1.0".into()),
        request_body: Some(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi 'there' %_\\"}]}"#.into(),
        ),
        response_body: Some("{}".into()),
        cache_hit: true,
    }
}

/// A small deterministic generator, so the oracle tests need no RNG crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
}

/// About 400 varied records over three and a half days starting at `T0 - 5h`.
pub fn dataset() -> Vec<LogRecord> {
    let mut rng = Lcg(42);
    let providers: [(Option<&str>, &[&str]); 4] = [
        (Some("openai"), &["gpt-4o", "gpt-4o-mini"]),
        (Some("anthropic"), &["claude-sonnet"]),
        (Some("mittwald"), &["qwen3", "gpt-oss"]),
        (None, &[]),
    ];
    let statuses = [200, 200, 200, 200, 200, 200, 201, 400, 429, 500, 503];
    (0..400)
        .map(|i| {
            let ts = T0 - 5 * HOUR + rng.below((3 * DAY + 12 * HOUR) as u64) as i64;
            let (provider, models) = providers[rng.below(4) as usize];
            let model = if models.is_empty() {
                None
            } else {
                Some(models[rng.below(models.len() as u64) as usize])
            };
            let status = if provider.is_none() {
                400
            } else {
                statuses[rng.below(statuses.len() as u64) as usize]
            };
            let latency = (2.0 + rng.unit() * 7.0).exp();
            let input = (rng.below(5) > 0).then(|| rng.below(5_000) as i64);
            let output = input.map(|_| rng.below(2_000) as i64);
            let cost_known = provider.is_some() && model != Some("gpt-oss");
            let mut r = LogRecord::new(
                format!("00000000-0000-7000-8000-{i:012}"),
                ts,
                "/v1/chat/completions",
                model.unwrap_or("nope"),
                status,
                latency,
            );
            r.provider = provider.map(str::to_owned);
            r.model = model.map(str::to_owned);
            r.virtual_key_id = (rng.below(3) > 0).then(|| format!("vk-{}", rng.below(3)));
            r.input_tokens = input;
            r.output_tokens = output;
            r.cost_known = cost_known;
            r.cost_usd =
                cost_known.then(|| (input.unwrap_or(0) as f64) * 2e-6 + rng.below(100) as f64 * 1e-5);
            if i % 10 == 0 {
                r.request_body = Some(format!("{{\"messages\":\"needle-{} Hello\"}}", i % 30));
                r.response_body = Some("ok".into());
            }
            r
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// The oracle: the filter semantics restated over plain records.

pub fn matches(f: &LogFilter, r: &LogRecord) -> bool {
    let in_list =
        |list: &[String], v: &Option<String>| list.is_empty() || v.as_ref().is_some_and(|v| list.contains(v));
    let total = r.total_tokens();
    in_list(&f.providers, &r.provider)
        && in_list(&f.models, &r.model)
        && in_list(&f.virtual_key_ids, &r.virtual_key_id)
        && (f.statuses.is_empty() || f.statuses.contains(&r.status))
        && match f.status_class {
            Some(StatusClass::Success) => r.is_success(),
            Some(StatusClass::Error) => !r.is_success(),
            None => true,
        }
        && f.start_ms.is_none_or(|s| r.timestamp_ms >= s)
        && f.end_ms.is_none_or(|e| r.timestamp_ms <= e)
        && f.min_latency_ms.is_none_or(|m| r.latency_ms >= m)
        && f.max_latency_ms.is_none_or(|m| r.latency_ms <= m)
        && f.min_tokens.is_none_or(|m| total >= m)
        && f.max_tokens.is_none_or(|m| total <= m)
        && f.min_cost_usd.is_none_or(|m| r.cost_usd.is_some_and(|c| c >= m))
        && f.max_cost_usd.is_none_or(|m| r.cost_usd.is_some_and(|c| c <= m))
        && f.content_search.as_ref().is_none_or(|needle| {
            let n = needle.to_lowercase();
            [&r.request_body, &r.response_body]
                .iter()
                .any(|b| b.as_ref().is_some_and(|b| b.to_lowercase().contains(&n)))
        })
        && (!f.missing_cost_only || !r.cost_known)
}

#[derive(Debug, Default)]
struct Expected {
    requests: u64,
    errors: u64,
    latencies: Vec<f64>,
    input: u64,
    output: u64,
    cost: f64,
    unknown: u64,
}

impl Expected {
    fn add(&mut self, r: &LogRecord) {
        self.requests += 1;
        self.errors += u64::from(!r.is_success());
        self.latencies.push(r.latency_ms);
        self.input += r.input_tokens.unwrap_or(0) as u64;
        self.output += r.output_tokens.unwrap_or(0) as u64;
        self.cost += r.cost_usd.unwrap_or(0.0);
        self.unknown += u64::from(!r.cost_known);
    }

    /// The exact nearest-rank percentile.
    fn percentile(&mut self, q: f64) -> f64 {
        self.latencies.sort_by(f64::total_cmp);
        let n = self.latencies.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies[rank - 1]
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-9)
}

/// The estimate must sit in the exact value's bucket, hence within the bucket ratio of it.
pub fn assert_percentile(what: &str, estimate: f64, exact: f64) {
    assert_eq!(
        latency_bucket(estimate),
        latency_bucket(exact),
        "{what}: estimate {estimate} is not in the bucket of {exact}"
    );
    let ratio = estimate / exact;
    assert!(
        ratio > 1.0 / LATENCY_BUCKET_RATIO && ratio < LATENCY_BUCKET_RATIO,
        "{what}: estimate {estimate} vs exact {exact}"
    );
}

pub async fn check_stats(store: &Arc<dyn LogStore>, data: &[LogRecord], f: &LogFilter) {
    let mut e = Expected::default();
    data.iter().filter(|r| matches(f, r)).for_each(|r| e.add(r));
    let s = store.stats(f).await.unwrap();
    let ctx = format!("{f:?}");
    assert_eq!(s.requests, e.requests, "requests for {ctx}");
    assert_eq!(s.errors, e.errors, "errors for {ctx}");
    assert_eq!(s.input_tokens, e.input, "input tokens for {ctx}");
    assert_eq!(s.output_tokens, e.output, "output tokens for {ctx}");
    assert_eq!(s.unknown_cost_requests, e.unknown, "unknown cost for {ctx}");
    assert!(
        close(s.cost_usd, e.cost),
        "cost {} vs {} for {ctx}",
        s.cost_usd,
        e.cost
    );
    if e.requests == 0 {
        assert_eq!(
            (s.success_rate, s.latency_avg_ms, s.latency_p50_ms),
            (0.0, 0.0, 0.0)
        );
        return;
    }
    let avg = e.latencies.iter().sum::<f64>() / e.requests as f64;
    assert!(
        close(s.latency_avg_ms, avg),
        "avg {} vs {avg} for {ctx}",
        s.latency_avg_ms
    );
    let rate = (e.requests - e.errors) as f64 * 100.0 / e.requests as f64;
    assert!(close(s.success_rate, rate), "success rate for {ctx}");
    assert_percentile(&format!("p50 {ctx}"), s.latency_p50_ms, e.percentile(0.5));
    assert_percentile(&format!("p95 {ctx}"), s.latency_p95_ms, e.percentile(0.95));
    assert_percentile(&format!("p99 {ctx}"), s.latency_p99_ms, e.percentile(0.99));
}

pub async fn check_histogram(
    store: &Arc<dyn LogStore>,
    data: &[LogRecord],
    f: &LogFilter,
    bucket_seconds: u64,
    group_by: Option<GroupBy>,
) {
    let b = bucket_seconds as i64 * 1000;
    let mut want: BTreeMap<(i64, Option<String>), Expected> = BTreeMap::new();
    for r in data.iter().filter(|r| matches(f, r)) {
        let group = match group_by {
            Some(GroupBy::Provider) => r.provider.clone(),
            Some(GroupBy::Model) => r.model.clone(),
            None => None,
        };
        want.entry((r.timestamp_ms.div_euclid(b) * b, group))
            .or_default()
            .add(r);
    }
    let got = store.histogram(f, bucket_seconds, group_by).await.unwrap();
    let ctx = format!("bucket {bucket_seconds}s, {group_by:?}, {f:?}");
    let got_keys: Vec<_> = got.iter().map(|h| (h.start_ms, h.group.clone())).collect();
    let want_keys: Vec<_> = want.keys().cloned().collect();
    assert_eq!(got_keys, want_keys, "bucket keys for {ctx}");
    for (h, e) in got.iter().zip(want.values_mut()) {
        assert_eq!(h.requests, e.requests, "{ctx} at {}", h.start_ms);
        assert_eq!(h.errors, e.errors, "{ctx} at {}", h.start_ms);
        assert_eq!((h.input_tokens, h.output_tokens), (e.input, e.output), "{ctx}");
        assert!(
            close(h.cost_usd, e.cost),
            "{ctx}: cost {} vs {}",
            h.cost_usd,
            e.cost
        );
        assert_percentile(&ctx, h.latency_p50_ms, e.percentile(0.5));
        assert_percentile(&ctx, h.latency_p95_ms, e.percentile(0.95));
    }
}

pub async fn all_ids(store: &Arc<dyn LogStore>, f: &LogFilter) -> (Vec<String>, u64) {
    let q = LogQuery {
        filter: f.clone(),
        limit: 1000,
        ..LogQuery::default()
    };
    let page = store.query(&q).await.unwrap();
    (page.logs.into_iter().map(|r| r.id).collect(), page.total)
}

/// A varied set of filters: each field alone, and combinations that take the rollup and raw paths.
pub fn filters() -> Vec<LogFilter> {
    let mut all = vec![LogFilter::default()];
    all.extend(field_filters());
    all.extend(time_filters());
    all.extend(measure_filters());
    all.extend(combined_filters());
    all
}

/// Each identity field alone: provider, model, status, status class, virtual key.
fn field_filters() -> Vec<LogFilter> {
    let f = LogFilter::default;
    vec![
        LogFilter {
            providers: vec!["openai".into(), "mittwald".into()],
            ..f()
        },
        LogFilter {
            models: vec!["gpt-4o-mini".into()],
            ..f()
        },
        LogFilter {
            statuses: vec![429, 500],
            ..f()
        },
        LogFilter {
            status_class: Some(StatusClass::Success),
            ..f()
        },
        LogFilter {
            status_class: Some(StatusClass::Error),
            ..f()
        },
        LogFilter {
            virtual_key_ids: vec!["vk-1".into()],
            ..f()
        },
    ]
}

/// Time windows: open at either end, whole days (the rollup path), inside one hour (the raw path).
fn time_filters() -> Vec<LogFilter> {
    let f = LogFilter::default;
    let s = T0 + 2 * HOUR + 17;
    let e = T0 + 2 * DAY + 5 * HOUR + 3_000;
    vec![
        LogFilter {
            start_ms: Some(s),
            ..f()
        },
        LogFilter {
            end_ms: Some(e),
            ..f()
        },
        LogFilter {
            start_ms: Some(s),
            end_ms: Some(e),
            ..f()
        },
        LogFilter {
            start_ms: Some(T0),
            end_ms: Some(T0 + 2 * DAY - 1),
            ..f()
        },
        LogFilter {
            start_ms: Some(T0 + 7),
            end_ms: Some(T0 + HOUR - 8),
            ..f()
        },
    ]
}

/// Each measured value alone: latency, tokens, cost, content, unknown cost.
fn measure_filters() -> Vec<LogFilter> {
    let f = LogFilter::default;
    vec![
        LogFilter {
            min_latency_ms: Some(100.0),
            ..f()
        },
        LogFilter {
            max_latency_ms: Some(100.0),
            ..f()
        },
        LogFilter {
            min_tokens: Some(1_000),
            max_tokens: Some(4_000),
            ..f()
        },
        LogFilter {
            min_cost_usd: Some(0.001),
            ..f()
        },
        LogFilter {
            max_cost_usd: Some(0.001),
            ..f()
        },
        LogFilter {
            content_search: Some("NEEDLE-1".into()),
            ..f()
        },
        LogFilter {
            content_search: Some("%".into()),
            ..f()
        },
        LogFilter {
            missing_cost_only: true,
            ..f()
        },
    ]
}

/// Combinations, one matching nothing.
fn combined_filters() -> Vec<LogFilter> {
    let f = LogFilter::default;
    let s = T0 + 2 * HOUR + 17;
    let e = T0 + 2 * DAY + 5 * HOUR + 3_000;
    vec![
        LogFilter {
            providers: vec!["openai".into()],
            status_class: Some(StatusClass::Success),
            start_ms: Some(s),
            end_ms: Some(e),
            ..f()
        },
        LogFilter {
            providers: vec!["anthropic".into()],
            statuses: vec![200],
            min_latency_ms: Some(50.0),
            ..f()
        },
        LogFilter {
            providers: vec!["nobody".into()],
            ..f()
        },
    ]
}
