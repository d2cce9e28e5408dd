//! Spend that holds: every stream is metered whether or not the client asked for usage (and the
//! client still sees only what it asked for), a body cannot name a field twice to pick a cheaper
//! reading, a stream cut after its headers is an error in the request log, and an upstream that
//! reports no usage is charged an estimate (flagged in the row), never 0.

mod common;

use std::time::{Duration, Instant};

use common::{chat, TestGateway};
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

const PROVIDER: &str = "mittwald";
const PER_M: f64 = 1000.0;
/// The mock's model that never reports usage, in a JSON answer or a stream.
const NO_USAGE: &str = "nousage-echo";

async fn setup() -> (TestGateway, MockUpstream, tempfile::TempDir) {
    let mock = start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    gw.add_openai_compatible(PROVIDER, &mock.base_url(), "sk-upstream-123456")
        .await;
    gw.put(
        &format!("/api/providers/{PROVIDER}"),
        json!({"network_config": {"max_retries": 0}}),
    )
    .await;
    for model in ["m", "cut", NO_USAGE] {
        let (s, b) = gw
            .post(
                "/api/governance/pricing-overrides",
                json!({"provider": PROVIDER, "model": model, "input_cost_per_million_tokens": PER_M,
                       "output_cost_per_million_tokens": PER_M}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    (gw, mock, dir)
}

/// The newest `n` log rows, waiting for the background writer.
async fn rows(gw: &TestGateway, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, page) = gw.get(&format!("/api/logs?limit=100&{query}")).await;
        assert_eq!(status, 200, "{page}");
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= n || Instant::now() > deadline {
            assert_eq!(logs.len(), n, "{page}");
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `data:` payloads of an SSE body.
fn events(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("data:")))
        .map(str::trim)
        .collect()
}

fn usage_chunks(text: &str) -> Vec<Value> {
    events(text)
        .into_iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["choices"] == json!([]) && v["usage"].is_object())
        .collect()
}

async fn stream_text(gw: &TestGateway, path: &str, body: Value) -> String {
    let r = gw.http.post(gw.url(path)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_stream_is_charged_although_the_client_did_not_ask_for_usage() {
    let (gw, mock, _dir) = setup().await;
    let mut body = chat(&format!("{PROVIDER}/m"));
    body["stream"] = json!(true);
    let text = stream_text(&gw, "/v1/chat/completions", body).await;
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(
        usage_chunks(&text).is_empty(),
        "the client did not ask for usage: {text}"
    );
    // The upstream was asked for it.
    let sent = mock.requests().last().unwrap().json();
    assert_eq!(sent["stream_options"]["include_usage"], true, "{sent}");

    let row = &rows(&gw, "", 1).await[0];
    let (input, output) = (
        row["input_tokens"].as_i64().unwrap(),
        row["output_tokens"].as_i64().unwrap(),
    );
    assert!(input > 0 && output > 0, "{row}");
    let cost = row["cost_usd"].as_f64().unwrap();
    let expected = (input + output) as f64 * PER_M / 1e6;
    assert!(
        (cost - expected).abs() < 1e-9,
        "cost {cost}, expected {expected}: {row}"
    );
}

#[tokio::test]
async fn a_client_that_asked_for_usage_still_gets_its_chunk() {
    let (gw, mock, _dir) = setup().await;
    let mut body = chat(&format!("{PROVIDER}/m"));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = stream_text(&gw, "/v1/chat/completions", body).await;
    let chunks = usage_chunks(&text);
    assert_eq!(chunks.len(), 1, "{text}");
    let row = &rows(&gw, "", 1).await[0];
    assert_eq!(
        row["output_tokens"], chunks[0]["usage"]["completion_tokens"],
        "{row}"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_streamed_completion_is_charged_too() {
    let (gw, mock, _dir) = setup().await;
    let body = json!({"model": format!("{PROVIDER}/m"), "prompt": "Hello there", "stream": true});
    let text = stream_text(&gw, "/v1/completions", body).await;
    assert!(usage_chunks(&text).is_empty(), "{text}");
    assert_eq!(
        mock.requests().last().unwrap().json()["stream_options"]["include_usage"],
        true
    );
    let row = &rows(&gw, "", 1).await[0];
    assert!(row["output_tokens"].as_i64().unwrap() > 0, "{row}");
    assert!(row["cost_usd"].as_f64().unwrap() > 0.0, "{row}");
}

#[tokio::test]
async fn a_body_naming_a_field_twice_is_refused_before_any_upstream_call() {
    let (gw, mock, _dir) = setup().await;
    let body = format!(
        r#"{{"model":"{PROVIDER}/m","messages":[{{"role":"user","content":"hi"}}],"model":"{PROVIDER}/cheap"}}"#
    );
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["param"], "model", "{err}");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_stream_cut_after_its_headers_is_an_error_in_the_log() {
    let (gw, _mock, _dir) = setup().await;
    let r = gw
        .post_stream("/v1/chat/completions", &format!("{PROVIDER}/cut"))
        .await;
    assert_eq!(r.status(), 200, "the headers were already sent");
    let text = r.text().await.unwrap();
    assert!(text.contains("\"error\""), "the client is told: {text}");
    let row = &rows(&gw, "status=error", 1).await[0];
    assert_eq!(row["status"], 502, "{row}");
    assert_eq!(row["error_type"], "stream_error", "{row}");
    assert!(rows(&gw, "status=success", 0).await.is_empty());
}

async fn chat_with_key(gw: &TestGateway, key: &str, model: &str) -> (u16, Value) {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat(model))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_budget_never_passes_a_call_it_cannot_price() {
    let (gw, mock, _dir) = setup().await;
    let budget = json!([{"max_limit": 5.0, "reset_duration": "1d"}]);
    let (_, on_key) = common::create_vk(&gw, json!({"name": "budgeted", "budgets": budget})).await;
    let (_, on_provider) = common::create_vk(
        &gw,
        json!({"name": "provider-budget", "provider_configs": [{"provider": PROVIDER, "budgets": budget}]}),
    )
    .await;
    let (_, free) = common::create_vk(&gw, json!({"name": "no-budget"})).await;
    let unpriced = format!("{PROVIDER}/unpriced-model");

    for key in [&on_key, &on_provider] {
        let (status, body) = chat_with_key(&gw, key, &unpriced).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "price_unknown", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("unpriced-model") && message.contains("/api/governance/pricing-overrides"),
            "{message}"
        );
    }
    assert!(
        mock.requests().is_empty(),
        "no upstream call for a call that cannot be priced"
    );

    // A priced model under the same budgets goes through; without a budget, an unpriced one does too.
    assert_eq!(chat_with_key(&gw, &on_key, &format!("{PROVIDER}/m")).await.0, 200);
    assert_eq!(
        chat_with_key(&gw, &on_provider, &format!("{PROVIDER}/m")).await.0,
        200
    );
    assert_eq!(chat_with_key(&gw, &free, &unpriced).await.0, 200);
    let rows = rows(&gw, "status=success", 3).await;
    let unknown: Vec<&Value> = rows.iter().filter(|r| r["cost_known"] == false).collect();
    assert_eq!(
        unknown.len(),
        1,
        "only the unbudgeted call has an unknown cost: {rows:?}"
    );
}

#[tokio::test]
async fn the_log_row_names_the_model_that_answered() {
    let (gw, _mock, _dir) = setup().await;
    let model = format!("{PROVIDER}/retired-llama");
    let (s, _) = gw.post("/v1/chat/completions", chat(&model)).await;
    assert_eq!(s, 200);
    let r = gw.post_stream("/v1/chat/completions", &model).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let rows = rows(&gw, "", 2).await;
    for row in &rows {
        assert_eq!(row["model"], "retired-llama", "the routed model: {row}");
        assert_eq!(row["served_model"], "successor-of-llama", "what answered: {row}");
    }
    let id = rows[0]["id"].as_str().unwrap();
    let (_, one) = gw.get(&format!("/api/logs/{id}")).await;
    assert_eq!(one["served_model"], "successor-of-llama", "{one}");
}

/// The answer text a client got: a JSON answer's message, or a stream's content deltas.
fn answer_text(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    events(body)
        .into_iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_upstream_without_usage_is_charged_an_estimate_never_zero() {
    let (gw, mock, _dir) = setup().await;
    let budget = json!([{"max_limit": 100.0, "reset_duration": "1d"}]);
    let (vk_id, key) = common::create_vk(&gw, json!({"name": "estimated", "budgets": budget})).await;
    let mut charged = 0.0;
    for stream in [false, true] {
        let mut body = chat(&format!("{PROVIDER}/{NO_USAGE}"));
        body["stream"] = json!(stream);
        let raw = serde_json::to_vec(&body).unwrap();
        let r = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = answer_text(&r.text().await.unwrap());
        assert!(!text.is_empty());
        assert_eq!(mock.requests().len(), if stream { 2 } else { 1 });

        // The rule: request bytes / 4 in, answer text bytes / 4 out, rounded up.
        let (input, output) = (raw.len().div_ceil(4) as i64, text.len().div_ceil(4) as i64);
        let row = &rows(
            &gw,
            &format!("virtual_key_ids={vk_id}"),
            if stream { 2 } else { 1 },
        )
        .await[0];
        assert_eq!(row["stream"], stream, "{row}");
        assert_eq!(row["usage_estimated"], true, "{row}");
        assert_eq!(
            (row["input_tokens"].as_i64(), row["output_tokens"].as_i64()),
            (Some(input), Some(output)),
            "{row}"
        );
        let cost = row["cost_usd"].as_f64().unwrap();
        assert!(
            (cost - (input + output) as f64 * PER_M / 1e6).abs() < 1e-9,
            "{row}"
        );
        charged += cost;
    }
    let (_, view) = gw.get(&format!("/api/governance/virtual-keys/{vk_id}")).await;
    let used = view["virtual_key"]["budgets"][0]["current_usage"]
        .as_f64()
        .unwrap();
    assert!(
        (used - charged).abs() < 1e-9,
        "the budget is charged the estimates: {view}"
    );

    // A reporting upstream's row is not flagged.
    assert_eq!(
        gw.post("/v1/chat/completions", chat(&format!("{PROVIDER}/m")))
            .await
            .0,
        200
    );
    let row = &rows(&gw, "", 3).await[0];
    assert_eq!(row["usage_estimated"], false, "{row}");
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_charged_for_the_text_it_got() {
    let (gw, mock, _dir) = setup().await;
    // 100 ticks 20 ms apart; the usage chunk would come after the last one.
    let mut body = chat(&format!("{PROVIDER}/drip-20"));
    body["stream"] = json!(true);
    let mut r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut got = String::new();
    while got.matches("tick").count() < 5 {
        let chunk = r.chunk().await.unwrap().expect("the stream ended early");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(r);
    assert_eq!(mock.requests().len(), 1);
    let row = &rows(&gw, "", 1).await[0];
    assert_eq!(row["usage_estimated"], true, "{row}");
    // Each tick is `tickN ` (6 bytes); the gateway relayed at least the five the client read, and the
    // client left long before the hundredth.
    let output = row["output_tokens"].as_i64().unwrap();
    assert!((5 * 6 / 4..100 * 6 / 4).contains(&output), "{row}");
}
