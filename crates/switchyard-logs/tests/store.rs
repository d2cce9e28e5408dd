//! One behavioural suite, run against a real SQLite file and a real PostgreSQL schema.
//!
//! PostgreSQL is reached at `SWITCHYARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test gets its own schema, dropped at the end.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use switchyard_logs::{
    GroupBy, LogFilter, LogQuery, LogRecord, LogStore, LogWriter, McpCallQuery, McpCallRecord, Order,
    PostgresLogStore, SortBy, SqliteLogStore, StatusClass,
};
use switchyard_testkit::{pg_url, SchemaGuard};

mod oracle;

use oracle::{
    all_ids, assert_percentile, check_histogram, check_stats, dataset, filters, full_record, matches, DAY,
    HOUR, T0,
};

// ---------------------------------------------------------------------------------------------------
// Harness

struct Harness {
    store: Arc<dyn LogStore>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<SchemaGuard>,
}

impl Harness {
    async fn sqlite(_name: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteLogStore::open(&dir.path().join("logs.db")).await.unwrap();
        Harness {
            store: Arc::new(store),
            _dir: Some(dir),
            _schema: None,
        }
    }

    async fn postgres(name: &str) -> Harness {
        let guard = SchemaGuard::new("sylogs", name);
        let store = PostgresLogStore::connect_in_schema(&pg_url(), guard.name())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is needed for this test: {e}", pg_url()));
        Harness {
            store: Arc::new(store),
            _dir: None,
            _schema: Some(guard),
        }
    }
}

/// Runs each named test fn (taking the store) against both databases.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = super::Harness::sqlite(stringify!($name)).await;
                    super::$name(h.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = super::Harness::postgres(stringify!($name)).await;
                    super::$name(h.store.clone()).await;
                }
            )*
        }
    };
}

suite!(
    round_trips_every_field,
    inserting_an_id_twice_keeps_one_row,
    filters_match_an_oracle,
    sorts_and_pages,
    stats_on_a_hand_made_dataset,
    histogram_on_a_hand_made_dataset,
    stats_and_histograms_match_an_oracle,
    prune_deletes_old_rows_and_keeps_totals_right,
    writer_flushes_everything_on_shutdown,
    writer_drops_instead_of_blocking_when_full,
    retention_prunes_at_start,
    invalid_histogram_bucket_is_an_error,
    spend_groups_known_costs_and_counts_unknown_ones,
    mcp_calls_round_trip_filter_and_prune,
);

// ---------------------------------------------------------------------------------------------------
// The suite

async fn round_trips_every_field(store: Arc<dyn LogStore>) {
    let full = full_record();
    let mut sparse = LogRecord::new(
        "0195f0c2-0000-7000-8000-000000000002",
        T0 - 1,
        "/v1/embeddings",
        "m",
        200,
        0.0,
    );
    sparse.request_type = "embedding".into();
    store.insert_batch(&[full.clone(), sparse.clone()]).await.unwrap();
    assert_eq!(store.get(&full.id).await.unwrap(), Some(full.clone()));
    assert_eq!(store.get(&sparse.id).await.unwrap(), Some(sparse.clone()));
    assert_eq!(store.get("missing").await.unwrap(), None);
    let page = store.query(&LogQuery::default()).await.unwrap();
    assert_eq!(page.logs, vec![full, sparse]);
    assert_eq!((page.total, page.limit, page.offset), (2, 50, 0));
    store.ping().await.unwrap();
    // JSON round trip of the API shape too.
    let json = serde_json::to_string(&page).unwrap();
    assert_eq!(
        serde_json::from_str::<switchyard_logs::LogPage>(&json).unwrap(),
        page
    );
}

async fn inserting_an_id_twice_keeps_one_row(store: Arc<dyn LogStore>) {
    let data = dataset();
    store.insert_batch(&data[..100]).await.unwrap();
    // A retried batch (some rows already in) and a row repeated within one batch.
    let mut again = data[50..150].to_vec();
    again.push(data[149].clone());
    store.insert_batch(&again).await.unwrap();
    let (ids, total) = all_ids(&store, &LogFilter::default()).await;
    assert_eq!((ids.len(), total), (150, 150));
    check_stats(&store, &data[..150], &LogFilter::default()).await;
}

async fn filters_match_an_oracle(store: Arc<dyn LogStore>) {
    let data = dataset();
    store.insert_batch(&data).await.unwrap();
    for f in filters() {
        let mut want: Vec<&LogRecord> = data.iter().filter(|r| matches(&f, r)).collect();
        want.sort_by_key(|r| std::cmp::Reverse(r.timestamp_ms));
        let want: Vec<String> = want.iter().map(|r| r.id.clone()).collect();
        let (got, total) = all_ids(&store, &f).await;
        assert_eq!(got, want, "rows for {f:?}");
        assert_eq!(total, want.len() as u64, "total for {f:?}");
    }
    // Content search found what it should, and `%` only matched a literal percent sign.
    let (hits, _) = all_ids(
        &store,
        &LogFilter {
            content_search: Some("NEEDLE-10 hello".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(!hits.is_empty());
    let (hits, _) = all_ids(
        &store,
        &LogFilter {
            content_search: Some("%".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(hits.is_empty());
}

async fn sorts_and_pages(store: Arc<dyn LogStore>) {
    let data = dataset();
    store.insert_batch(&data).await.unwrap();
    let by_id: BTreeMap<String, LogRecord> = data.iter().map(|r| (r.id.clone(), r.clone())).collect();
    for sort_by in [SortBy::Timestamp, SortBy::Latency, SortBy::Tokens, SortBy::Cost] {
        for order in [Order::Asc, Order::Desc] {
            let q = LogQuery {
                limit: 1000,
                sort_by,
                order,
                ..LogQuery::default()
            };
            let full = store.query(&q).await.unwrap();
            assert_eq!(full.logs.len(), data.len());
            let key = |r: &LogRecord| -> Option<f64> {
                match sort_by {
                    SortBy::Timestamp => Some(r.timestamp_ms as f64),
                    SortBy::Latency => Some(r.latency_ms),
                    SortBy::Tokens => Some(r.total_tokens() as f64),
                    SortBy::Cost => r.cost_usd,
                }
            };
            for w in full.logs.windows(2) {
                let (a, b) = (key(&w[0]), key(&w[1]));
                let ok = match (a, b, order) {
                    (Some(a), Some(b), Order::Asc) => a <= b,
                    (Some(a), Some(b), Order::Desc) => a >= b,
                    // Unknown costs come last in both directions.
                    (_, None, _) => true,
                    (None, Some(_), _) => false,
                };
                assert!(ok, "{sort_by:?} {order:?}: {a:?} before {b:?}");
                assert_eq!(by_id[&w[0].id], w[0]);
            }
            // Pages of 7 put together are the full list.
            let mut paged = Vec::new();
            let mut offset = 0;
            loop {
                let page = store
                    .query(&LogQuery {
                        limit: 7,
                        offset,
                        ..q.clone()
                    })
                    .await
                    .unwrap();
                assert_eq!(page.total, data.len() as u64);
                if page.logs.is_empty() {
                    break;
                }
                assert!(page.logs.len() <= 7);
                paged.extend(page.logs.into_iter().map(|r| r.id));
                offset += 7;
            }
            let full_ids: Vec<String> = full.logs.iter().map(|r| r.id.clone()).collect();
            assert_eq!(paged, full_ids, "{sort_by:?} {order:?}");
        }
    }
    // Limits are cut to the maximum; the page says so.
    let page = store
        .query(&LogQuery {
            limit: 5_000,
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.limit, 1000);
    // A filtered sort over a time range.
    let f = LogFilter {
        start_ms: Some(T0),
        end_ms: Some(T0 + DAY),
        ..Default::default()
    };
    let q = LogQuery {
        filter: f.clone(),
        limit: 5,
        sort_by: SortBy::Latency,
        order: Order::Desc,
        offset: 0,
    };
    let got: Vec<f64> = store
        .query(&q)
        .await
        .unwrap()
        .logs
        .iter()
        .map(|r| r.latency_ms)
        .collect();
    let mut want: Vec<f64> = data
        .iter()
        .filter(|r| matches(&f, r))
        .map(|r| r.latency_ms)
        .collect();
    want.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(got, want[..5]);
}

/// Ten calls whose answers are worked out by hand.
fn hand_made() -> Vec<LogRecord> {
    let mut out = Vec::new();
    for i in 0..10i64 {
        // 100, 200, ..., 1000 ms; two per hour over five hours starting at T0 + 30 min.
        let mut r = LogRecord::new(
            format!("hand-{i}"),
            T0 + HOUR / 2 + (i / 2) * HOUR + (i % 2) * 1_000,
            "/v1/chat/completions",
            "m",
            if i == 3 {
                500
            } else if i == 7 {
                429
            } else {
                200
            },
            (i + 1) as f64 * 100.0,
        );
        r.provider = Some(if i < 6 { "openai" } else { "anthropic" }.into());
        r.model = Some(if i < 6 { "gpt-4o" } else { "claude" }.into());
        r.input_tokens = Some(10 * (i + 1));
        r.output_tokens = Some(i + 1);
        r.cost_known = i != 9;
        r.cost_usd = (i != 9).then_some(0.25);
        out.push(r);
    }
    out
}

async fn stats_on_a_hand_made_dataset(store: Arc<dyn LogStore>) {
    store.insert_batch(&hand_made()).await.unwrap();
    let s = store.stats(&LogFilter::default()).await.unwrap();
    assert_eq!((s.requests, s.errors), (10, 2));
    assert_eq!(s.success_rate, 80.0);
    assert_eq!(s.latency_avg_ms, 550.0);
    assert_eq!((s.input_tokens, s.output_tokens), (550, 55));
    assert_eq!((s.cost_usd, s.unknown_cost_requests), (2.25, 1));
    assert_percentile("p50", s.latency_p50_ms, 500.0);
    assert_percentile("p95", s.latency_p95_ms, 1000.0);
    assert_percentile("p99", s.latency_p99_ms, 1000.0);

    let errors = LogFilter {
        status_class: Some(StatusClass::Error),
        ..Default::default()
    };
    let s = store.stats(&errors).await.unwrap();
    assert_eq!(
        (s.requests, s.errors, s.success_rate, s.latency_avg_ms),
        (2, 2, 0.0, 600.0)
    );

    let anthropic = LogFilter {
        providers: vec!["anthropic".into()],
        ..Default::default()
    };
    let s = store.stats(&anthropic).await.unwrap();
    assert_eq!(
        (s.requests, s.input_tokens, s.cost_usd, s.unknown_cost_requests),
        (4, 340, 0.75, 1)
    );
    assert_percentile("p50 anthropic", s.latency_p50_ms, 800.0);

    // 02:30 to 03:30 holds calls 4, 5 (02:30) and 6, 7 (03:30): a range cut mid-hour on both ends.
    let window = LogFilter {
        start_ms: Some(T0 + 2 * HOUR + HOUR / 2),
        end_ms: Some(T0 + 3 * HOUR + HOUR / 2),
        ..Default::default()
    };
    let s = store.stats(&window).await.unwrap();
    assert_eq!((s.requests, s.errors, s.latency_avg_ms), (3, 0, 600.0));

    let empty = LogFilter {
        providers: vec!["none".into()],
        ..Default::default()
    };
    let s = store.stats(&empty).await.unwrap();
    assert_eq!((s.requests, s.latency_p50_ms, s.success_rate), (0, 0.0, 0.0));
}

async fn histogram_on_a_hand_made_dataset(store: Arc<dyn LogStore>) {
    store.insert_batch(&hand_made()).await.unwrap();
    let h = store.histogram(&LogFilter::default(), 3_600, None).await.unwrap();
    let starts: Vec<i64> = h.iter().map(|b| b.start_ms).collect();
    assert_eq!(starts, (0..5).map(|i| T0 + i * HOUR).collect::<Vec<_>>());
    assert!(h.iter().all(|b| b.requests == 2 && b.group.is_none()));
    assert_eq!(h.iter().map(|b| b.errors).collect::<Vec<_>>(), [0, 1, 0, 1, 0]);
    assert_eq!(h[1].input_tokens, 30 + 40);
    assert_eq!(h[4].cost_usd, 0.25);
    assert_percentile("first hour p50", h[0].latency_p50_ms, 100.0);
    assert_percentile("first hour p95", h[0].latency_p95_ms, 200.0);

    let h = store
        .histogram(&LogFilter::default(), 86_400, Some(GroupBy::Provider))
        .await
        .unwrap();
    let rows: Vec<(i64, Option<&str>, u64)> = h
        .iter()
        .map(|b| (b.start_ms, b.group.as_deref(), b.requests))
        .collect();
    assert_eq!(rows, [(T0, Some("anthropic"), 4), (T0, Some("openai"), 6)]);

    let h = store
        .histogram(&LogFilter::default(), 7_200, Some(GroupBy::Model))
        .await
        .unwrap();
    let rows: Vec<(i64, Option<&str>, u64)> = h
        .iter()
        .map(|b| (b.start_ms, b.group.as_deref(), b.requests))
        .collect();
    assert_eq!(
        rows,
        [
            (T0, Some("gpt-4o"), 4),
            (T0 + 2 * HOUR, Some("claude"), 2),
            (T0 + 2 * HOUR, Some("gpt-4o"), 2),
            (T0 + 4 * HOUR, Some("claude"), 2),
        ]
    );
}

async fn stats_and_histograms_match_an_oracle(store: Arc<dyn LogStore>) {
    let data = dataset();
    // Several batches, so rollup rows are created and then added to.
    for chunk in data.chunks(64) {
        store.insert_batch(chunk).await.unwrap();
    }
    for f in filters() {
        check_stats(&store, &data, &f).await;
    }
    let ranged = LogFilter {
        start_ms: Some(T0 - 3 * HOUR - 5),
        end_ms: Some(T0 + 2 * DAY + 90_000),
        ..Default::default()
    };
    let openai_ok = LogFilter {
        providers: vec!["openai".into()],
        status_class: Some(StatusClass::Success),
        ..ranged.clone()
    };
    let raw_only = LogFilter {
        virtual_key_ids: vec!["vk-0".into(), "vk-2".into()],
        ..ranged.clone()
    };
    for f in [LogFilter::default(), ranged, openai_ok, raw_only] {
        for bucket in [3_600, 86_400, 300, 5_400, 7 * 86_400] {
            check_histogram(&store, &data, &f, bucket, None).await;
        }
        check_histogram(&store, &data, &f, 3_600, Some(GroupBy::Provider)).await;
        check_histogram(&store, &data, &f, 86_400, Some(GroupBy::Model)).await;
        check_histogram(&store, &data, &f, 900, Some(GroupBy::Model)).await;
    }
}

async fn prune_deletes_old_rows_and_keeps_totals_right(store: Arc<dyn LogStore>) {
    let data = dataset();
    store.insert_batch(&data).await.unwrap();
    // Mid-hour and mid-day, so both rollup grains have a bucket cut in two.
    let cutoff = T0 + DAY + 7 * HOUR + 1_234;
    let expected = data.iter().filter(|r| r.timestamp_ms < cutoff).count() as u64;
    assert!(expected > 0);
    assert_eq!(store.prune(cutoff).await.unwrap(), expected);
    assert_eq!(store.prune(cutoff).await.unwrap(), 0);
    let kept: Vec<LogRecord> = data
        .iter()
        .filter(|r| r.timestamp_ms >= cutoff)
        .cloned()
        .collect();
    let gone = data.iter().find(|r| r.timestamp_ms < cutoff).unwrap();
    assert_eq!(store.get(&gone.id).await.unwrap(), None);
    let (ids, total) = all_ids(&store, &LogFilter::default()).await;
    assert_eq!((ids.len() as u64, total), (kept.len() as u64, kept.len() as u64));
    check_stats(&store, &kept, &LogFilter::default()).await;
    check_stats(
        &store,
        &kept,
        &LogFilter {
            providers: vec!["openai".into()],
            ..Default::default()
        },
    )
    .await;
    check_histogram(&store, &kept, &LogFilter::default(), 3_600, None).await;
    check_histogram(
        &store,
        &kept,
        &LogFilter::default(),
        86_400,
        Some(GroupBy::Provider),
    )
    .await;
    // New rows in the cut buckets still add up.
    let mut late = data[0].clone();
    late.id = "late".into();
    late.timestamp_ms = cutoff + 1;
    store.insert_batch(std::slice::from_ref(&late)).await.unwrap();
    let mut kept = kept;
    kept.push(late);
    check_stats(&store, &kept, &LogFilter::default()).await;
    check_histogram(&store, &kept, &LogFilter::default(), 86_400, None).await;
}

async fn writer_flushes_everything_on_shutdown(store: Arc<dyn LogStore>) {
    let writer = LogWriter::spawn(store.clone(), 5_000);
    for i in 0..5_000 {
        writer.log(LogRecord::new(
            format!("w-{i:05}"),
            T0 + i,
            "/v1/chat/completions",
            "m",
            200,
            12.0,
        ));
    }
    assert!(writer.queued() > 0);
    let probe = writer.clone();
    writer.shutdown().await;
    assert_eq!((probe.written(), probe.dropped(), probe.queued()), (5_000, 0, 0));
    let (_, total) = all_ids(&store, &LogFilter::default()).await;
    assert_eq!(total, 5_000);
    // After shutdown, records are refused and counted, not lost silently.
    probe.log(LogRecord::new("late", T0, "/v1/chat/completions", "m", 200, 1.0));
    assert_eq!(probe.dropped(), 1);
}

/// `#[tokio::test]` runs on one thread: the writer task cannot run while this loop logs without
/// awaiting, so a one-slot channel stays full.
async fn writer_drops_instead_of_blocking_when_full(store: Arc<dyn LogStore>) {
    let writer = LogWriter::spawn(store.clone(), 1);
    let started = std::time::Instant::now();
    for i in 0..1_000 {
        writer.log(LogRecord::new(
            format!("d-{i}"),
            T0 + i,
            "/v1/chat/completions",
            "m",
            200,
            5.0,
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "logging must not wait"
    );
    assert_eq!((writer.dropped(), writer.queued()), (999, 1));
    let probe = writer.clone();
    writer.shutdown().await;
    assert_eq!((probe.written(), probe.dropped()), (1, 999));
    let (ids, _) = all_ids(&store, &LogFilter::default()).await;
    assert_eq!(ids, ["d-0"]);
}

async fn retention_prunes_at_start(store: Arc<dyn LogStore>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old = LogRecord::new("old", now - 3 * DAY, "/v1/chat/completions", "m", 200, 5.0);
    let fresh = LogRecord::new("fresh", now - HOUR, "/v1/chat/completions", "m", 200, 5.0);
    store.insert_batch(&[old, fresh]).await.unwrap();
    let writer = LogWriter::spawn_with_retention(store.clone(), 16, 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (ids, _) = all_ids(&store, &LogFilter::default()).await;
        if ids == ["fresh"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "old record still there: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.shutdown().await;
}

async fn invalid_histogram_bucket_is_an_error(store: Arc<dyn LogStore>) {
    let err = store.histogram(&LogFilter::default(), 0, None).await.unwrap_err();
    assert!(err.to_string().contains("bucket"), "{err}");
}

// ---------------------------------------------------------------------------------------------------
// SQLite-only: what happens when the database refuses writes.

#[tokio::test]
async fn writer_counts_a_batch_the_database_refuses_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteLogStore::open(&dir.path().join("logs.db")).await.unwrap());
    store.close().await;
    let writer = LogWriter::spawn(store.clone(), 16);
    for i in 0..3 {
        writer.log(LogRecord::new(
            format!("x-{i}"),
            T0,
            "/v1/chat/completions",
            "m",
            200,
            5.0,
        ));
    }
    let probe = writer.clone();
    // Retries with backoff, then gives up on the batch; shutdown still returns.
    tokio::time::timeout(Duration::from_secs(10), writer.shutdown())
        .await
        .unwrap();
    assert_eq!((probe.written(), probe.dropped()), (0, 3));
}

#[tokio::test]
async fn reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let store = SqliteLogStore::open(&path).await.unwrap();
    store.insert_batch(&[full_record()]).await.unwrap();
    store.close().await;
    let store = SqliteLogStore::open(&path).await.unwrap();
    assert_eq!(store.get(&full_record().id).await.unwrap(), Some(full_record()));
    let ids: HashSet<String> = store
        .query(&LogQuery::default())
        .await
        .unwrap()
        .logs
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    for bad in ["", "Upper", "semi;colon", "quote\"", "1starts_with_digit"] {
        let err = PostgresLogStore::connect_in_schema(&pg_url(), bad)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("schema name"), "{bad}: {err}");
    }
}

/// Spend per virtual key, team, model and UTC day: known costs summed, unknown ones counted apart.
async fn spend_groups_known_costs_and_counts_unknown_ones(store: Arc<dyn LogStore>) {
    use switchyard_logs::SpendGroup;
    let day = 86_400_000;
    let base = full_record();
    let mk =
        |i: u32, vk: Option<&str>, team: Option<&str>, model: &str, cost: Option<f64>, ts: i64| LogRecord {
            id: format!("0195f0c2-0000-7000-8000-1000000000{i:02}"),
            timestamp_ms: ts,
            virtual_key_id: vk.map(str::to_owned),
            team_id: team.map(str::to_owned),
            customer_id: None,
            model: Some(model.to_owned()),
            served_model: None,
            guardrails: None,
            cost_usd: cost,
            cost_known: cost.is_some(),
            input_tokens: Some(10),
            output_tokens: Some(5),
            ..base.clone()
        };
    let t = (T0 / day) * day + 1000;
    store
        .insert_batch(&[
            mk(1, Some("vk-a"), Some("t1"), "m1", Some(0.25), t),
            mk(2, Some("vk-a"), Some("t1"), "m2", Some(0.5), t + day),
            mk(3, Some("vk-b"), None, "m1", None, t + day),
            mk(4, None, None, "m1", Some(1.0), t + 2 * day),
        ])
        .await
        .unwrap();
    let rows = store
        .spend(t - 1, t + 3 * day, SpendGroup::VirtualKey, None)
        .await
        .unwrap();
    let by: Vec<(Option<&str>, u64, f64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r.group.as_deref(),
                r.requests,
                r.cost_usd,
                r.unknown_cost_requests,
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            (None, 1, 1.0, 0),
            (Some("vk-a"), 2, 0.75, 0),
            (Some("vk-b"), 1, 0.0, 1)
        ]
    );
    let days = store
        .spend(t - 1, t + 3 * day, SpendGroup::Day, None)
        .await
        .unwrap();
    assert_eq!(days.len(), 3);
    assert!(days[0].group.as_deref().unwrap().len() == 10, "{days:?}");
    assert_eq!(days[1].requests, 2);
    assert_eq!(days[1].input_tokens, 20);
    let one_key = store
        .spend(t - 1, t + 3 * day, SpendGroup::Model, Some("vk-a"))
        .await
        .unwrap();
    let models: Vec<(Option<&str>, f64)> = one_key.iter().map(|r| (r.group.as_deref(), r.cost_usd)).collect();
    assert_eq!(models, [(Some("m1"), 0.25), (Some("m2"), 0.5)]);
    // The range is half-open and excludes everything outside it.
    let none = store
        .spend(t + 3 * day, t + 4 * day, SpendGroup::Team, None)
        .await
        .unwrap();
    assert!(none.is_empty());
}

fn mcp_call(id: &str, ts: i64, server: &str, key: Option<&str>, status: &str) -> McpCallRecord {
    McpCallRecord {
        id: id.into(),
        timestamp_ms: ts,
        tool: "read".into(),
        server: server.into(),
        virtual_key_id: key.map(str::to_owned),
        latency_ms: 12.5,
        status: status.into(),
        error: (status != "success").then(|| "refused".to_owned()),
    }
}

async fn mcp_calls_round_trip_filter_and_prune(store: Arc<dyn LogStore>) {
    let rows = [
        mcp_call("a", 1_000, "files", Some("vk1"), "success"),
        mcp_call("b", 2_000, "files", None, "blocked"),
        mcp_call("c", 3_000, "web", Some("vk1"), "timeout"),
    ];
    for r in &rows {
        store.insert_mcp_call(r).await.unwrap();
    }
    store.insert_mcp_call(&rows[0]).await.unwrap();
    let all = |server: Option<&str>, key: Option<&str>| McpCallQuery {
        server: server.map(str::to_owned),
        virtual_key_id: key.map(str::to_owned),
        limit: 10,
    };
    let (got, total) = store.mcp_calls(&all(None, None)).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(got, vec![rows[2].clone(), rows[1].clone(), rows[0].clone()]);
    let (got, total) = store.mcp_calls(&all(Some("files"), Some("vk1"))).await.unwrap();
    assert_eq!((got, total), (vec![rows[0].clone()], 1));
    let (got, total) = store
        .mcp_calls(&McpCallQuery {
            limit: 1,
            ..all(Some("files"), None)
        })
        .await
        .unwrap();
    assert_eq!((got.len(), total), (1, 2));
    store.prune(2_500).await.unwrap();
    let (got, total) = store.mcp_calls(&all(None, None)).await.unwrap();
    assert_eq!((got, total), (vec![rows[2].clone()], 1));
}
