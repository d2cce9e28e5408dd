//! Two Switchyard processes (the real binary) sharing the real Redis (`switchyard_testkit::RedisSpace`,
//! by default 127.0.0.1:6379): their combined traffic respects one virtual key's request limit and
//! budget. Each process has its own SQLite app dir; the key is created in both with the same id and
//! value (as when migrating keys), and counters are keyed by the id. The Redis key prefix is unique to this run, and every key it writes expires.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_testkit::RedisSpace;

const UPSTREAM_KEY: &str = "sk-upstream-redis-test-0123";
const VK_VALUE: &str = "sk-bf-shared-between-replicas-0001";
const PROVIDER: &str = "mittwald-shared";
const INPUT_PER_M: f64 = 1000.0;
const OUTPUT_PER_M: f64 = 2000.0;
/// 2 prompt tokens and 3 answer tokens at the mock.
const COST_PER_CALL: f64 = 2.0 * INPUT_PER_M / 1e6 + 3.0 * OUTPUT_PER_M / 1e6;

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn spawn_replica(app_dir: &std::path::Path, redis: &RedisSpace) -> Replica {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-level",
            "warn",
        ])
        .arg("--app-dir")
        .arg(app_dir)
        .args(["--redis-url", &redis.url, "--redis-key-prefix", &redis.prefix])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the switchyard binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http().get(format!("{base}/health")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "replica on {port} did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Replica { child, base }
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn configure(base: &str, mock_url: &str, vk: Value) {
    let (s, b) = post(
        base,
        "/api/providers",
        json!({"provider": PROVIDER, "network_config": {"base_url": mock_url, "max_retries": 0},
               "custom_provider_config": {"base_provider_type": "openai"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(
        base,
        &format!("/api/providers/{PROVIDER}/keys"),
        json!({"name": "k", "value": UPSTREAM_KEY, "models": ["*"]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(
        base,
        "/api/governance/pricing-overrides",
        json!({"provider": PROVIDER, "model": "m", "input_cost_per_million_tokens": INPUT_PER_M,
               "output_cost_per_million_tokens": OUTPUT_PER_M}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(base, "/api/governance/virtual-keys", vk).await;
    assert_eq!(s, 200, "{b}");
}

async fn chat(base: &str, vk: &str) -> u16 {
    http()
        .post(format!("{base}/v1/chat/completions"))
        .header("authorization", format!("Bearer {vk}"))
        .json(&json!({"model": format!("{PROVIDER}/m"), "max_tokens": 3,
                      "messages": [{"role": "user", "content": "Hello there"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn budget_usage(base: &str, id: &str) -> f64 {
    let r = http()
        .get(format!("{base}/api/governance/virtual-keys/{id}"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["virtual_key"]["budgets"][0]["current_usage"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_request_limit_and_one_budget() {
    let mock = switchyard_mock::start(switchyard_mock::MockOptions {
        api_key: Some(UPSTREAM_KEY.into()),
        record: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let redis = RedisSpace::new("replicas");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = spawn_replica(dirs[0].path(), &redis).await;
    let b = spawn_replica(dirs[1].path(), &redis).await;

    // Request limit: 10 per hour for the key, whichever process serves.
    let limited = json!({"id": "vk-limited", "name": "limited", "value": VK_VALUE,
                         "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1h"}});
    configure(&a.base, &mock.base_url(), limited.clone()).await;
    configure(&b.base, &mock.base_url(), limited).await;
    let calls = (0..16).map(|i| chat(if i % 2 == 0 { &a.base } else { &b.base }, VK_VALUE));
    let statuses = futures_util::future::join_all(calls).await;
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let limited_count = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((ok, limited_count), (10, 6), "{statuses:?}");

    // Budget: room for 5.5 calls, shared. Traffic alternates between the processes.
    let budget_value = "sk-bf-shared-budget-between-replicas-02";
    let budget = 5.5 * COST_PER_CALL;
    // Rolling budget windows start when the key was created; the same moment in both gateways.
    let budgeted = json!({"id": "vk-budget", "name": "budgeted", "value": budget_value,
                          "created_at": "2026-01-01T00:00:00Z",
                          "budgets": [{"max_limit": budget, "reset_duration": "1d"}]});
    for r in [&a, &b] {
        let (s, body) = post(&r.base, "/api/governance/virtual-keys", budgeted.clone()).await;
        assert_eq!(s, 200, "{body}");
    }
    let mut admitted = 0;
    let mut refused_by = [0, 0];
    for i in 0..20 {
        let replica = if i % 2 == 0 { &a } else { &b };
        match chat(&replica.base, budget_value).await {
            200 => admitted += 1,
            402 => refused_by[i % 2] += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    // Settlement runs right after each answer; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let charged = admitted as f64 * COST_PER_CALL;
    // The request body is ~120 bytes: its estimate is at most 40 prompt tokens + 3 output tokens.
    let max_estimate = 40.0 * INPUT_PER_M / 1e6 + 3.0 * OUTPUT_PER_M / 1e6;
    assert!(
        charged <= budget + max_estimate,
        "admitted {admitted}, charged ${charged} > ${budget} + ${max_estimate}"
    );
    assert!(
        admitted >= 4,
        "the budget fits five calls; admitted only {admitted}"
    );
    assert!(
        refused_by[0] > 0 && refused_by[1] > 0,
        "both processes enforce the shared budget: {refused_by:?}"
    );
    // Both processes see the same spend: one counter in Redis.
    let usage_a = budget_usage(&a.base, "vk-budget").await;
    let usage_b = budget_usage(&b.base, "vk-budget").await;
    assert!(
        (usage_a - charged).abs() < 1e-9 && (usage_b - charged).abs() < 1e-9,
        "{usage_a} {usage_b} vs {charged}"
    );
}
