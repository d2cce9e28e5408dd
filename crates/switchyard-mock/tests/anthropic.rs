//! The Anthropic Messages upstream: `/v1/messages`, `/v1/messages/count_tokens`, Anthropic `/v1/models`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

async fn mock() -> MockUpstream {
    start(MockOptions::default()).await.expect("mock starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn request(m: &MockUpstream, path: &str, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}{path}", m.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

async fn messages(m: &MockUpstream, body: Value) -> reqwest::Response {
    request(m, "/messages", &body)
        .send()
        .await
        .expect("request is answered")
}

fn body(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": text}]})
}

fn streaming(model: &str, text: &str) -> Value {
    let mut b = body(model, text);
    b["stream"] = json!(true);
    b
}

/// Parses an Anthropic SSE body into `(event name, data)`, checking the framing: every event has an
/// `event:` line whose name repeats the `type` of its JSON.
fn events(text: &str) -> Vec<(String, Value)> {
    assert!(
        text.ends_with("\n\n"),
        "body must end with a blank line: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|ev| {
            let (event, data) = ev.split_once('\n').unwrap_or_else(|| panic!("bad event {ev:?}"));
            let name = event
                .strip_prefix("event: ")
                .unwrap_or_else(|| panic!("no event line in {ev:?}"));
            let data: Value = serde_json::from_str(
                data.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("no data line in {ev:?}")),
            )
            .unwrap();
            assert_eq!(data["type"], name, "{ev:?}");
            (name.to_owned(), data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

async fn error_of(resp: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn echo_message() {
    let m = mock().await;
    let resp = messages(
        &m,
        json!({"model": "claude-4-sonnet", "max_tokens": 100, "system": "be nice", "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [{"type": "text", "text": "hello "}, {"type": "image", "source": {}},
                                         {"type": "text", "text": "there world"}]}
        ]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("msg_mock_"), "{id}");
    assert_eq!(
        v,
        json!({"id": id, "type": "message", "role": "assistant", "model": "claude-4-sonnet",
               "content": [{"type": "text", "text": "echo: hello there world"}],
               "stop_reason": "end_turn", "stop_sequence": null,
               "usage": {"input_tokens": 9, "output_tokens": 4,
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
    );
    assert_eq!(m.call_count("messages"), 1);
    let recs = m.requests();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].path, "/v1/messages");
    assert_eq!(recs[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(recs[0].json()["system"], "be nice");
}

#[tokio::test]
async fn max_tokens_and_maxtok() {
    let m = mock().await;
    let v: Value = messages(
        &m,
        json!({"model": "x", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["content"][0]["text"], "echo: a");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 2);

    let v: Value = messages(&m, body("maxtok", "a b")).await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "echo: a b");
    assert_eq!(v["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn streaming_event_order() {
    let m = mock().await;
    let resp = messages(&m, streaming("claude-3-7-sonnet", "one two")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let ev = events(&resp.text().await.unwrap());
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let msg = &ev[0].1["message"];
    assert!(msg["id"].as_str().unwrap().starts_with("msg_mock_"));
    assert_eq!(msg["model"], "claude-3-7-sonnet");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["content"], json!([]));
    assert_eq!(msg["stop_reason"], Value::Null);
    assert_eq!(msg["usage"]["input_tokens"], 2);
    assert_eq!(
        ev[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(ev[2].1, json!({"type": "ping"}));
    let text: String = ev[3..6]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "echo: one two");
    assert_eq!(ev[6].1, json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        ev[7].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 3}})
    );
    assert_eq!(ev[8].1, json!({"type": "message_stop"}));
}

#[tokio::test]
async fn each_event_is_its_own_frame() {
    let m = mock().await;
    let mut resp = messages(&m, streaming("echo", "a b")).await;
    let mut frames = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        frames.push(String::from_utf8(chunk.to_vec()).unwrap());
    }
    // Chunks may coalesce on the way, but no event may be split across body frames.
    let joined: String = frames.concat();
    assert_eq!(events(&joined).len(), 9);
    assert!(frames.iter().all(|f| f.ends_with("\n\n")), "{frames:?}");
}

#[tokio::test]
async fn tool_use() {
    let m = mock().await;
    let v: Value = messages(&m, body("tool-x", "weather?"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Let me check."},
               {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Berlin"}}])
    );

    let resp = messages(&m, streaming("tool", "weather?")).await;
    let ev = events(&resp.text().await.unwrap());
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = ev[3..6]
        .iter()
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Let me check.");
    assert_eq!(
        ev[7].1,
        json!({"type": "content_block_start", "index": 1,
               "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}})
    );
    let fragments: Vec<&str> = ev[8..11]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["index"], 1);
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(fragments, ["{\"city\": ", "\"Ber", "lin\"}"]);
    assert_eq!(ev[11].1, json!({"type": "content_block_stop", "index": 1}));
    assert_eq!(ev[12].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn two_parallel_tools() {
    let m = mock().await;
    let v: Value = messages(&m, body("tools2", "weather?"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let content = v["content"].as_array().unwrap();
    assert_eq!(content.len(), 3);
    assert_eq!(
        content[2],
        json!({"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Hamburg"}})
    );

    let resp = messages(&m, streaming("tools2", "weather?")).await;
    let ev = events(&resp.text().await.unwrap());
    assert_eq!(ev.len(), 19);
    let starts: Vec<&Value> = ev
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(starts.len(), 3);
    assert_eq!(starts[2]["index"], 2);
    assert_eq!(starts[2]["content_block"]["id"], "toolu_02");
    let json2: String = ev
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["index"] == 2)
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json2).unwrap(),
        json!({"city": "Hamburg"})
    );
    assert_eq!(names(&ev)[17..], ["message_delta", "message_stop"]);
}

#[tokio::test]
async fn cache_usage() {
    let m = mock().await;
    let v: Value = messages(&m, body("cache", "x y")).await.json().await.unwrap();
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 2, "output_tokens": 3,
               "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100})
    );
    let resp = messages(&m, streaming("cache", "x y")).await;
    let ev = events(&resp.text().await.unwrap());
    assert_eq!(ev[0].1["message"]["usage"]["cache_read_input_tokens"], 100);
    assert_eq!(ev[0].1["message"]["usage"]["cache_creation_input_tokens"], 20);
}

#[tokio::test]
async fn error_modes() {
    let m = mock().await;
    let msg = error_of(messages(&m, body("fail", "x")).await, 500, "api_error").await;
    assert!(!msg.is_empty());
    error_of(
        messages(&m, body("overloaded-1", "x")).await,
        529,
        "overloaded_error",
    )
    .await;
    let resp = messages(&m, body("ratelimit", "x")).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    error_of(resp, 429, "rate_limit_error").await;
    // Errors come before any stream.
    error_of(messages(&m, streaming("fail", "x")).await, 500, "api_error").await;
    assert_eq!(m.call_count("messages"), 4);
}

#[tokio::test]
async fn validation() {
    let m = mock().await;
    let cases = [
        (json!({"max_tokens": 5, "messages": []}), "model"),
        (json!({"model": "x", "messages": []}), "max_tokens"),
        (
            json!({"model": "x", "max_tokens": "5", "messages": []}),
            "max_tokens",
        ),
        (
            json!({"model": "x", "max_tokens": 1.5, "messages": []}),
            "max_tokens",
        ),
        (json!({"model": "x", "max_tokens": 5}), "messages"),
    ];
    for (body, field) in cases {
        let msg = error_of(messages(&m, body.clone()).await, 400, "invalid_request_error").await;
        assert!(msg.starts_with(&format!("{field}: ")), "{body}: {msg}");
    }
    let resp = client()
        .post(format!("{}/messages", m.base_url()))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    error_of(resp, 400, "invalid_request_error").await;

    // anthropic-version is required (any value).
    let resp = client()
        .post(format!("{}/messages", m.base_url()))
        .json(&body("echo", "x"))
        .send()
        .await
        .unwrap();
    let msg = error_of(resp, 400, "invalid_request_error").await;
    assert!(msg.contains("anthropic-version"), "{msg}");
    let resp = client()
        .post(format!("{}/messages", m.base_url()))
        .header("anthropic-version", "2099-01-01")
        .json(&body("echo", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Routing.
    let resp = client()
        .get(format!("{}/messages", m.base_url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "POST");
    error_of(resp, 405, "invalid_request_error").await;
    let resp = request(&m, "/messages/batches", &json!({})).send().await.unwrap();
    error_of(resp, 404, "not_found_error").await;

    assert_eq!(m.call_count("messages"), 8, "405 and 404 are not counted");
}

#[tokio::test]
async fn auth_variants() {
    let m = start(MockOptions {
        api_key: Some("sekret".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("{}/messages", m.base_url());
    let b = body("echo", "hi");
    let send = |req: reqwest::RequestBuilder| req.header("anthropic-version", "2023-06-01").json(&b).send();
    let unauthorized =
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
    for req in [
        client().post(&url),
        client().post(&url).header("x-api-key", "wrong"),
        client().post(&url).bearer_auth("wrong"),
        client().post(&url).header("x-api-key", "Bearer sekret"),
    ] {
        let resp = send(req).await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized);
    }
    for req in [
        client().post(&url).header("x-api-key", "sekret"),
        client().post(&url).bearer_auth("sekret"),
        client()
            .post(&url)
            .header("x-api-key", "wrong")
            .bearer_auth("sekret"),
    ] {
        assert_eq!(send(req).await.unwrap().status(), 200);
    }
    // Auth is checked before anthropic-version.
    let resp = client().post(&url).json(&b).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Anthropic's model list takes x-api-key; the OpenAI one still only takes the bearer token.
    let models = format!("{}/models", m.base_url());
    let resp = client()
        .get(&models)
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "sekret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .get(&models)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized);
    let resp = client()
        .get(&models)
        .header("x-api-key", "sekret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "Unauthorized"})
    );
    assert_eq!(m.call_count("messages"), 8);
    assert_eq!(m.call_count("models"), 3);
}

#[tokio::test]
async fn count_tokens() {
    let m = mock().await;
    let resp = request(
        &m,
        "/messages/count_tokens",
        &json!({"model": "claude-4-sonnet", "system": [{"type": "text", "text": "sys tem"}],
                "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"input_tokens": 5}));
    let resp = request(&m, "/messages/count_tokens", &json!({"model": "x"}))
        .send()
        .await
        .unwrap();
    let msg = error_of(resp, 400, "invalid_request_error").await;
    assert!(msg.starts_with("messages:"), "{msg}");
    assert_eq!(m.call_count("count_tokens"), 2);
    assert_eq!(m.call_count("messages"), 0);
}

#[tokio::test]
async fn anthropic_models() {
    let m = mock().await;
    let get = |path: &str, anthropic: bool| {
        let mut req = client().get(format!("{}{path}", m.base_url()));
        if anthropic {
            req = req.header("anthropic-version", "2023-06-01");
        }
        req.send()
    };
    let v: Value = get("/models", true).await.unwrap().json().await.unwrap();
    assert_eq!(
        v,
        json!({"data": [
            {"type": "model", "id": "claude-3-7-sonnet", "display_name": "Claude 3.7 Sonnet",
             "created_at": "2025-02-19T00:00:00Z"},
            {"type": "model", "id": "claude-4-sonnet", "display_name": "Claude 4 Sonnet",
             "created_at": "2025-05-22T00:00:00Z"}],
         "has_more": false, "first_id": "claude-3-7-sonnet", "last_id": "claude-4-sonnet"})
    );
    let v: Value = get("/models", false).await.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
    let v: Value = get("/models/claude-4-sonnet", true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["display_name"], "Claude 4 Sonnet");
    let resp = get("/models/gpt-oss-120b", true).await.unwrap();
    error_of(resp, 404, "not_found_error").await;
    assert_eq!(m.call_count("models"), 4);
}

#[tokio::test]
async fn cut_stream_and_body() {
    let m = mock().await;
    let resp = messages(&m, streaming("cut", "a b c")).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let ev = events(&text);
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta"
        ]
    );
    assert_eq!(ev[3].1["delta"]["text"], "echo: ");
    assert!(!text.contains("message_stop"));

    let resp = messages(&m, body("cut", "a b c")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "body must be truncated");
}

#[tokio::test]
async fn stream_error_event() {
    let m = mock().await;
    let resp = messages(&m, streaming("streamerr", "a b")).await;
    assert_eq!(resp.status(), 200);
    let ev = events(&resp.text().await.unwrap());
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        ev[4].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    error_of(
        messages(&m, body("streamerr", "a")).await,
        529,
        "overloaded_error",
    )
    .await;
}

#[tokio::test]
async fn reset_and_slow() {
    let m = mock().await;
    let err = messages_err(&m, body("reset", "x")).await;
    assert!(!err.is_status(), "{err:?}");
    let t = Instant::now();
    let v: Value = messages(&m, body("slow-120", "x")).await.json().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(120), "{:?}", t.elapsed());
    assert_eq!(v["content"][0]["text"], "echo: x");
    assert_eq!(m.call_count("messages"), 2);
}

async fn messages_err(m: &MockUpstream, body: Value) -> reqwest::Error {
    request(m, "/messages", &body)
        .send()
        .await
        .expect_err("no response expected")
}

#[tokio::test]
async fn drip_cancellation_is_counted() {
    let m = mock().await;
    let mut resp = messages(&m, streaming("drip", "x")).await;
    let mut seen = String::new();
    while !seen.contains("\"ping\"") {
        let chunk = resp.chunk().await.unwrap().unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains("message_start"));
    let t = Instant::now();
    let next = resp.chunk().await.unwrap().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(60), "{:?}", t.elapsed());
    let next = std::str::from_utf8(&next).unwrap();
    assert!(next.starts_with("event: content_block_delta\n"), "{next}");
    assert!(next.contains("\"text\":\"tick1 \""), "{next}");
    assert_eq!(m.cancelled_streams(), 0);
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(2);
    while m.cancelled_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.cancelled_streams(), 1);
}

#[tokio::test]
async fn calls_endpoint_lists_new_counters() {
    let m = mock().await;
    messages(&m, body("echo", "x")).await;
    request(
        &m,
        "/messages/count_tokens",
        &json!({"model": "x", "messages": []}),
    )
    .send()
    .await
    .unwrap();
    let calls: Value = client()
        .get(format!("http://{}/__calls", m.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls["messages"], 1);
    assert_eq!(calls["count_tokens"], 1);
    assert_eq!(calls["generate"], 0);
    assert_eq!(calls["chat"], 0);
    m.reset();
    assert_eq!(m.call_count("messages"), 0);
    assert_eq!(m.call_count("count_tokens"), 0);
}
