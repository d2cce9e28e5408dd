//! Writes one million realistic log rows and times each query kind the logs API runs.
//!
//! ```text
//! cargo run --release -p switchyard-logs --example million_rows -- /tmp/logs.db [rows]
//! cargo run --release -p switchyard-logs --example million_rows -- postgres://postgres@127.0.0.1/test
//! ```
//!
//! A PostgreSQL URL uses the schema `sylogs_million_rows`. When the store already holds the rows (a
//! second run), generation is skipped and only the queries are timed. Each query runs once to warm the
//! caches and then `RUNS` times; the table gives the median and the slowest run.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_logs::{
    GroupBy, LogFilter, LogQuery, LogRecord, LogStore, Order, PostgresLogStore, SortBy, SqliteLogStore,
};
use uuid::{NoContext, Timestamp, Uuid};

const DEFAULT_ROWS: usize = 1_000_000;
const BATCH: usize = 512;
const RUNS: usize = 9;
const DAY_MS: i64 = 86_400_000;

/// xorshift64*: deterministic, so two runs generate the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// USD per 1M input and output tokens.
type Price = (f64, f64);

/// provider, model, median latency ms, price (`None`: price unknown).
const MODELS: &[(&str, &str, f64, Option<Price>)] = &[
    ("openai", "gpt-4o", 900.0, Some((2.5, 10.0))),
    ("openai", "gpt-4o-mini", 500.0, Some((0.15, 0.6))),
    ("openai", "o3-mini", 4_000.0, Some((1.1, 4.4))),
    ("anthropic", "claude-sonnet-4", 1_500.0, Some((3.0, 15.0))),
    ("anthropic", "claude-3-5-haiku", 700.0, Some((0.8, 4.0))),
    ("mittwald", "qwen3-coder-30b", 1_200.0, Some((0.2, 0.8))),
    ("mittwald", "mistral-small-3", 600.0, Some((0.1, 0.3))),
    ("mittwald", "gpt-oss-120b", 1_800.0, None),
    ("gemini", "gemini-2.5-pro", 2_500.0, Some((1.25, 10.0))),
    ("gemini", "gemini-2.5-flash", 450.0, Some((0.3, 2.5))),
];

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn record(rng: &mut Rng, ts: i64) -> LogRecord {
    let secs = (ts / 1000) as u64;
    let nanos = ((ts % 1000) * 1_000_000) as u32 + rng.below(1_000_000) as u32;
    let id = Uuid::new_v7(Timestamp::from_unix(NoContext, secs, nanos)).to_string();
    let routing_failure = rng.below(1_000) < 3;
    let (provider, model, median, price) = MODELS[rng.below(MODELS.len())];
    let stream = rng.below(100) < 60;
    let status: u16 = if routing_failure {
        if rng.below(2) == 0 {
            400
        } else {
            404
        }
    } else {
        match rng.below(1_000) {
            0..=939 => 200,
            940..=959 => 429,
            960..=969 => 400,
            970..=974 => 401,
            975..=984 => 500,
            985..=989 => 502,
            990..=994 => 503,
            _ => 504,
        }
    };
    let ok = status == 200;
    let mut latency = median * (0.8 * rng.normal()).exp();
    if !ok {
        latency *= 0.2;
    }
    if routing_failure {
        latency = 0.3 + rng.unit();
    }
    let mut r = LogRecord::new(
        id,
        ts,
        "/v1/chat/completions",
        format!("{provider}/{model}"),
        status,
        latency,
    );
    r.user_agent = Some(["openai-python/1.82.0", "OpenAI/JS 4.98.0", "curl/8.5.0"][rng.below(3)].into());
    r.virtual_key_id = (rng.below(10) < 8).then(|| format!("vk-{:02}", rng.below(40)));
    r.team_id = r
        .virtual_key_id
        .as_ref()
        .map(|_| format!("team-{}", rng.below(6)));
    if routing_failure {
        r.error_type = Some("invalid_request_error".into());
        r.error_message = Some("no provider serves this model".into());
        return r;
    }
    r.provider = Some(provider.into());
    r.model = Some(model.into());
    r.key_id = Some(format!("{provider}-key-{}", rng.below(3)));
    r.key_name = r.key_id.clone();
    r.stream = stream;
    r.attempts = 1 + u32::from(status == 429 || status >= 500) * rng.below(3) as u32;
    r.fallback_index = (rng.below(100) < 3).then_some(0);
    r.upstream_latency_ms = Some(latency * 0.995);
    r.overhead_ms = Some(0.2 + rng.unit() * 0.5);
    r.ttft_ms = (stream && ok).then(|| latency * (0.05 + 0.2 * rng.unit()));
    if ok {
        let input = (200.0 * (1.2 * rng.normal()).exp()).round().clamp(5.0, 120_000.0) as i64;
        let output = (150.0 * (1.0 * rng.normal()).exp()).round().clamp(1.0, 16_000.0) as i64;
        r.input_tokens = Some(input);
        r.output_tokens = Some(output);
        r.cached_tokens = (rng.below(4) == 0).then_some(input / 2);
        if let Some((pin, pout)) = price {
            r.cost_known = true;
            r.cost_usd = Some((input as f64 * pin + output as f64 * pout) / 1e6);
        }
    } else {
        r.error_type = Some(
            if status == 429 {
                "rate_limit_error"
            } else {
                "api_error"
            }
            .into(),
        );
        r.error_message = Some(format!("upstream answered {status}"));
        r.cost_known = price.is_some();
        r.cost_usd = price.map(|_| 0.0);
    }
    if rng.below(100) < 5 {
        r.request_body = Some(format!(
            "{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"question {}\"}}]}}",
            rng.next()
        ));
        r.response_body = Some("{\"choices\":[{\"message\":{\"content\":\"an answer\"}}]}".into());
    }
    r
}

async fn generate(store: &dyn LogStore, now: i64, rows: usize) -> Duration {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let start = now - 30 * DAY_MS;
    let mut stamps: Vec<i64> = (0..rows)
        .map(|_| start + (rng.unit() * (30 * DAY_MS) as f64) as i64)
        .collect();
    stamps.sort_unstable();
    let began = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for (i, ts) in stamps.into_iter().enumerate() {
        batch.push(record(&mut rng, ts));
        if batch.len() == BATCH {
            store.insert_batch(&batch).await.expect("insert");
            batch.clear();
        }
        if (i + 1) % 100_000 == 0 {
            eprintln!("  {} rows, {:.1} s", i + 1, began.elapsed().as_secs_f64());
        }
    }
    store.insert_batch(&batch).await.expect("insert");
    began.elapsed()
}

struct Timing {
    name: &'static str,
    median_ms: f64,
    max_ms: f64,
    rows: String,
}

async fn time<F, Fut>(name: &'static str, mut f: F) -> Timing
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let rows = f().await;
    let mut ms: Vec<f64> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        f().await;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Timing {
        name,
        median_ms: ms[RUNS / 2],
        max_ms: ms[RUNS - 1],
        rows,
    }
}

#[tokio::main]
async fn main() {
    let target = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: million_rows <sqlite-path | postgres-url>");
        std::process::exit(2);
    });
    let rows: usize = std::env::args()
        .nth(2)
        .map_or(DEFAULT_ROWS, |n| n.parse().expect("row count"));
    let store = open(&target).await;
    let now = fill(store.as_ref(), rows).await;
    // Reopen a SQLite store, as a restarted gateway would (this also refreshes planner statistics).
    let store = if target.starts_with("postgres://") {
        store
    } else {
        drop(store);
        open(&target).await
    };
    let s = store.as_ref();
    let mut out = time_lists(s, now).await;
    out.extend(time_aggregates(s, now, rows).await);
    println!("| query | median ms | slowest of {RUNS} ms | result |");
    println!("|---|---:|---:|---|");
    for t in out {
        println!(
            "| {} | {:.2} | {:.2} | {} |",
            t.name, t.median_ms, t.max_ms, t.rows
        );
    }
}

async fn open(target: &str) -> Arc<dyn LogStore> {
    if target.starts_with("postgres://") {
        Arc::new(
            PostgresLogStore::connect_in_schema(target, "sylogs_million_rows")
                .await
                .expect("connect"),
        )
    } else {
        Arc::new(
            SqliteLogStore::open(std::path::Path::new(target))
                .await
                .expect("open"),
        )
    }
}

/// Writes `rows` rows unless the store already holds them; the "now" the rows end at.
async fn fill(store: &dyn LogStore, rows: usize) -> i64 {
    let existing = store
        .query(&LogQuery {
            limit: 1,
            ..LogQuery::default()
        })
        .await
        .expect("count");
    match existing.logs.first() {
        Some(newest) if existing.total >= rows as u64 => {
            eprintln!("{} rows already there; timing queries only", existing.total);
            newest.timestamp_ms + 1
        }
        _ => {
            eprintln!("writing {rows} rows in batches of {BATCH}...");
            let now = now_ms();
            let took = generate(store, now, rows).await;
            eprintln!(
                "wrote {rows} rows in {:.1} s ({:.0} rows/s)",
                took.as_secs_f64(),
                rows as f64 / took.as_secs_f64()
            );
            now
        }
    }
}

fn last(now: i64, days: i64) -> LogFilter {
    LogFilter {
        start_ms: Some(now - days * DAY_MS),
        ..LogFilter::default()
    }
}

/// The list queries: filters, time windows, sort orders, a later page.
async fn time_lists(s: &dyn LogStore, now: i64) -> Vec<Timing> {
    let last = |days: i64| last(now, days);
    let page = |q: LogQuery| async move {
        let p = s.query(&q).await.unwrap();
        format!("{} of {}", p.logs.len(), p.total)
    };
    let mut out = Vec::new();
    out.push(time("list, first page, unfiltered", || page(LogQuery::default())).await);
    out.push(
        time("list, provider=openai & status=429", || {
            let f = LogFilter {
                providers: vec!["openai".into()],
                statuses: vec![429],
                ..LogFilter::default()
            };
            page(LogQuery {
                filter: f,
                ..LogQuery::default()
            })
        })
        .await,
    );
    out.push(
        time("list, last 24 h, sorted by latency desc", || {
            page(LogQuery {
                filter: last(1),
                sort_by: SortBy::Latency,
                order: Order::Desc,
                ..LogQuery::default()
            })
        })
        .await,
    );
    out.push(
        time("list, last 7 days, sorted by cost desc", || {
            page(LogQuery {
                filter: last(7),
                sort_by: SortBy::Cost,
                order: Order::Desc,
                ..LogQuery::default()
            })
        })
        .await,
    );
    out.push(
        time("list, unfiltered, sorted by latency desc", || {
            page(LogQuery {
                sort_by: SortBy::Latency,
                ..LogQuery::default()
            })
        })
        .await,
    );
    out.push(
        time("list, virtual key vk-07, page 3", || {
            let f = LogFilter {
                virtual_key_ids: vec!["vk-07".into()],
                ..LogFilter::default()
            };
            page(LogQuery {
                filter: f,
                offset: 100,
                ..LogQuery::default()
            })
        })
        .await,
    );
    out
}

/// Stats, histograms and the lookup of one row.
async fn time_aggregates(s: &dyn LogStore, now: i64, rows: usize) -> Vec<Timing> {
    let last = |days: i64| last(now, days);
    let some_id = s
        .query(&LogQuery {
            offset: (rows / 8) as u64,
            limit: 1,
            ..LogQuery::default()
        })
        .await
        .unwrap()
        .logs[0]
        .id
        .clone();
    let mut out = Vec::new();
    out.push(
        time("stats, last 30 days", || async {
            let st = s.stats(&last(30)).await.unwrap();
            format!("{} requests, p95 {:.0} ms", st.requests, st.latency_p95_ms)
        })
        .await,
    );
    out.push(
        time("stats, last 30 days, provider=anthropic & errors", || async {
            let f = LogFilter {
                providers: vec!["anthropic".into()],
                status_class: Some(switchyard_logs::StatusClass::Error),
                ..last(30)
            };
            let st = s.stats(&f).await.unwrap();
            format!("{} requests", st.requests)
        })
        .await,
    );
    out.push(
        time("stats, last 7 days, virtual key (raw rows)", || async {
            let f = LogFilter {
                virtual_key_ids: vec!["vk-07".into()],
                ..last(7)
            };
            let st = s.stats(&f).await.unwrap();
            format!("{} requests", st.requests)
        })
        .await,
    );
    out.push(
        time("histogram, hourly, last 7 days", || async {
            format!(
                "{} buckets",
                s.histogram(&last(7), 3_600, None).await.unwrap().len()
            )
        })
        .await,
    );
    out.push(
        time("histogram, daily by provider, last 30 days", || async {
            format!(
                "{} buckets",
                s.histogram(&last(30), 86_400, Some(GroupBy::Provider))
                    .await
                    .unwrap()
                    .len()
            )
        })
        .await,
    );
    out.push(
        time("histogram, 5-minute, last 24 h (raw rows)", || async {
            format!(
                "{} buckets",
                s.histogram(&last(1), 300, None).await.unwrap().len()
            )
        })
        .await,
    );
    out.push(
        time("get by id", || async {
            let r = s.get(&some_id).await.unwrap();
            format!("{}", u8::from(r.is_some()))
        })
        .await,
    );
    out
}
