//! The governance tests' set-up: a gateway with one priced OpenAI-compatible provider in front of a
//! mock, calls carrying a virtual key, and the request log's rows.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_gateway::ServerConfig;
use switchyard_mock::{start, MockOptions, MockUpstream};

use super::TestGateway;

pub const UPSTREAM_KEY: &str = "sk-upstream-secret-0123456789";
pub const PROVIDER: &str = "mittwald-shared";
/// Operator prices for the mock's model, USD per million tokens (the mock is not in the price table).
pub const INPUT_PER_M: f64 = 1000.0;
pub const OUTPUT_PER_M: f64 = 2000.0;
/// "Hello there" is 2 prompt tokens at the mock; with max_tokens 3 the answer "echo: Hello there" is 3.
pub const COST_PER_CALL: f64 = 2.0 * INPUT_PER_M / 1e6 + 3.0 * OUTPUT_PER_M / 1e6;

pub async fn setup() -> (TestGateway, MockUpstream, tempfile::TempDir) {
    setup_in(tempfile::tempdir().unwrap()).await
}

pub async fn setup_in(dir: tempfile::TempDir) -> (TestGateway, MockUpstream, tempfile::TempDir) {
    let gw = start_gateway(&dir).await;
    let mock = serve_priced_provider(&gw).await;
    (gw, mock, dir)
}

/// A mock behind `PROVIDER` (no retries), its model `m` priced at the operator rates.
pub async fn serve_priced_provider(gw: &TestGateway) -> MockUpstream {
    let mock = start(MockOptions {
        api_key: Some(UPSTREAM_KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    gw.add_openai_compatible(PROVIDER, &mock.base_url(), UPSTREAM_KEY)
        .await;
    gw.put(
        &format!("/api/providers/{PROVIDER}"),
        json!({"network_config": {"max_retries": 0}}),
    )
    .await;
    price_at_the_operator_rates(gw, "m").await;
    mock
}

/// A pricing override for `PROVIDER`'s `model` at `INPUT_PER_M` and `OUTPUT_PER_M`.
pub async fn price_at_the_operator_rates(gw: &TestGateway, model: &str) {
    let (s, b) = gw
        .post(
            "/api/governance/pricing-overrides",
            json!({"provider": PROVIDER, "model": model, "input_cost_per_million_tokens": INPUT_PER_M,
                   "output_cost_per_million_tokens": OUTPUT_PER_M}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

pub async fn start_gateway(dir: &tempfile::TempDir) -> TestGateway {
    TestGateway::start_with(ServerConfig {
        max_request_body_bytes: ServerConfig::default().max_request_body_bytes,
        ..super::test_config(dir.path())
    })
    .await
}

/// A chat call for `model` carrying the virtual key `vk`.
pub async fn chat_model(gw: &TestGateway, vk: &str, model: &str) -> Answer {
    call_with(gw, ("x-bf-vk", vk), "/v1/chat/completions", chat_body(model)).await
}

pub fn chat_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 3, "messages": [{"role": "user", "content": "Hello there"}]})
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn call_with(gw: &TestGateway, header: (&str, &str), path: &str, body: Value) -> Answer {
    let r = gw
        .http
        .post(gw.url(path))
        .header(header.0, header.1)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        headers,
        body: r.json().await.unwrap_or(Value::Null),
    }
}

pub async fn chat(gw: &TestGateway, vk: &str) -> Answer {
    chat_model(gw, vk, &format!("{PROVIDER}/m")).await
}

pub fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} missing: {:?}", a.headers))
}

/// Waits until the request log holds `n` rows and returns them.
pub async fn log_rows(gw: &TestGateway, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = gw.get("/api/logs?limit=1000&sort_by=timestamp&order=asc").await;
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= n || Instant::now() > deadline {
            assert_eq!(logs.len(), n, "{page}");
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
