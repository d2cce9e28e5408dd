//! What a crash can cost: the real binary under load is killed with SIGKILL (`kill -9`), started
//! again on the same app dir, and its budget counter and request log must cover every request that
//! was answered longer ago than the stated intervals: usage counters are written to the config store
//! every second (`counters_flush_every`), log rows in batches that wait at most 200 ms
//! (`switchyard_logs` `BATCH_WAIT`). Each gets `SLACK` on top for the one write in progress on a
//! busy machine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const UPSTREAM_KEY: &str = "sk-upstream-durability-0123";
const VK_VALUE: &str = "sk-bf-durability-under-kill-9-0001";
const PROVIDER: &str = "mittwald-shared";
const INPUT_PER_M: f64 = 1000.0;
const OUTPUT_PER_M: f64 = 2000.0;
/// 2 prompt tokens and 3 answer tokens at the mock.
const COST_PER_CALL: f64 = 2.0 * INPUT_PER_M / 1e6 + 3.0 * OUTPUT_PER_M / 1e6;
const COUNTERS_EVERY: Duration = Duration::from_secs(1);
const LOG_BATCH_WAIT: Duration = Duration::from_millis(200);
const SLACK: Duration = Duration::from_millis(300);

mod common;

use common::Proc;

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The gateway on `app_dir`, its log in `logs`.
fn spawn(app_dir: &std::path::Path, logs: &std::path::Path, name: &str) -> (Proc, String) {
    let p = common::start(app_dir, &logs.join(name), &[], &[]);
    let base = p.url("");
    (p, base)
}

async fn post(base: &str, path: &str, body: Value) {
    let r = http()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{path}: {}", r.text().await.unwrap_or_default());
}

async fn configure(base: &str, mock_url: &str) {
    post(
        base,
        "/api/providers",
        json!({"provider": PROVIDER, "network_config": {"base_url": mock_url, "max_retries": 0},
               "custom_provider_config": {"base_provider_type": "openai"}}),
    )
    .await;
    post(
        base,
        &format!("/api/providers/{PROVIDER}/keys"),
        json!({"name": "k", "value": UPSTREAM_KEY, "models": ["*"]}),
    )
    .await;
    post(
        base,
        "/api/governance/pricing-overrides",
        json!({"provider": PROVIDER, "model": "m", "input_cost_per_million_tokens": INPUT_PER_M,
               "output_cost_per_million_tokens": OUTPUT_PER_M}),
    )
    .await;
    post(
        base,
        "/api/governance/virtual-keys",
        json!({"id": "vk-load", "name": "load", "value": VK_VALUE,
               "budgets": [{"max_limit": 1000.0, "reset_duration": "1d"}]}),
    )
    .await;
}

/// Sends chat calls until the process is gone, noting when each answer was received in full.
async fn worker(base: String, answered: Arc<Mutex<Vec<Instant>>>) {
    let client = http();
    loop {
        let sent = client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(VK_VALUE)
            .json(&json!({"model": format!("{PROVIDER}/m"), "max_tokens": 3,
                          "messages": [{"role": "user", "content": "Hello there"}]}))
            .send()
            .await;
        let Ok(r) = sent else { return };
        let status = r.status();
        if r.bytes().await.is_err() {
            return;
        }
        assert_eq!(status, 200, "no call is refused under this budget");
        answered.lock().unwrap().push(Instant::now());
    }
}

async fn get(base: &str, path: &str) -> Value {
    http()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_at_most_the_stated_intervals() {
    let mock = switchyard_mock::start(switchyard_mock::MockOptions {
        api_key: Some(UPSTREAM_KEY.into()),
        record: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let (dir, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut gw, base) = spawn(dir.path(), logs.path(), "first.log");
    configure(&base, &mock.base_url()).await;

    let answered = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(worker(base.clone(), answered.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = Instant::now();
    gw.child.kill().expect("SIGKILL");
    gw.child.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }
    drop(gw);

    let answered = answered.lock().unwrap().clone();
    let older_than = |d: Duration| answered.iter().filter(|&&t| t + d < killed_at).count();
    let must_count = older_than(COUNTERS_EVERY + SLACK);
    let must_log = older_than(LOG_BATCH_WAIT + SLACK);
    assert!(
        must_count > 20,
        "too little load to judge: {} answers",
        answered.len()
    );

    let (_gw, base) = spawn(dir.path(), logs.path(), "second.log");
    let view = get(&base, "/api/governance/virtual-keys/vk-load").await;
    let usage = view["virtual_key"]["budgets"][0]["current_usage"]
        .as_f64()
        .unwrap();
    let page = get(&base, "/api/logs?limit=1&virtual_key_ids=vk-load").await;
    let rows = page["total"].as_u64().unwrap() as usize;
    let counted = (usage / COST_PER_CALL + 1e-6).floor() as usize;
    eprintln!(
        "answered {}, answered >{:?} before the kill {must_count}, counted after restart {counted}; \
         answered >{:?} before {must_log}, log rows {rows}",
        answered.len(),
        COUNTERS_EVERY + SLACK,
        LOG_BATCH_WAIT + SLACK,
    );
    assert!(
        counted >= must_count,
        "the budget counter lost calls answered more than {COUNTERS_EVERY:?} before the kill: \
         {counted} < {must_count}"
    );
    assert!(
        rows >= must_log,
        "the log lost rows answered more than {LOG_BATCH_WAIT:?} before the kill: {rows} < {must_log}"
    );
    assert!(rows <= answered.len() + 4, "no row for a call never made");
}
