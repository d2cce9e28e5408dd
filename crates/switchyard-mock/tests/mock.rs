use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

async fn mock() -> MockUpstream {
    start(MockOptions::default()).await.expect("mock starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(m: &MockUpstream, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", m.base_url()))
        .json(&body)
        .send()
        .await
        .expect("request is answered")
}

/// Parses an SSE body into its `data:` payloads, checking the framing.
fn sse_events(text: &str) -> Vec<String> {
    assert!(
        text.ends_with("\n\n"),
        "body must end with a blank line: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|ev| {
            ev.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad event {ev:?}"))
                .to_owned()
        })
        .collect()
}

fn chunks(events: &[String]) -> Vec<Value> {
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test]
async fn echo_chat_completion() {
    let m = mock().await;
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "gpt-oss-120b", "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "hello there world"}
        ], "reasoning_effort": "low"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-oss-120b");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["system_fingerprint"], Value::Null);
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "echo: hello there world", "refusal": null},
                "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    );

    let recs = m.requests();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].method, "POST");
    assert_eq!(recs[0].path, "/v1/chat/completions");
    assert_eq!(recs[0].header("Content-Type"), Some("application/json"));
    assert_eq!(recs[0].json()["reasoning_effort"], "low");
    assert_eq!(m.call_count("chat"), 1);
}

#[tokio::test]
async fn echo_parts_thinking_and_max_tokens() {
    let m = mock().await;
    let v: Value = post(
        &m,
        "/chat/completions",
        json!({"model": "echo", "max_tokens": 2, "chat_template_kwargs": {"enable_thinking": true},
               "messages": [{"role": "user", "content": [{"type": "text", "text": "a b "}, {"type": "text", "text": "c"}]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["content"], "echo: a");
    assert_eq!(choice["message"]["reasoning_content"], "thinking");
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn streaming_framing_with_usage() {
    let m = mock().await;
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "echo", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "one two"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let events = sse_events(&resp.text().await.unwrap());
    let chunks = chunks(&events);
    // role, 3 words, finish, usage
    assert_eq!(chunks.len(), 6);
    let id = chunks[0]["id"].clone();
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "echo");
        assert_eq!(c["created"], chunks[0]["created"]);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "echo: one two");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "echo: ");
    for c in &chunks[..5] {
        assert_eq!(c["usage"], Value::Null);
        assert!(c.as_object().unwrap().contains_key("usage"));
        assert_eq!(c["choices"][0]["index"], 0);
        assert_eq!(c["choices"][0]["logprobs"], Value::Null);
    }
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(
        chunks[4]["choices"][0],
        json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"})
    );
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(
        chunks[5]["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
    );
}

#[tokio::test]
async fn streaming_without_usage_and_stream_options_validation() {
    let m = mock().await;
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let chunks = chunks(&sse_events(&resp.text().await.unwrap()));
    assert_eq!(chunks.len(), 4);
    assert!(chunks
        .iter()
        .all(|c| !c.as_object().unwrap().contains_key("usage")));

    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "echo", "stream_options": {"include_usage": true}, "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "error");
    assert_eq!(v["code"], 400);
    assert_eq!(v["param"], "stream_options");
}

#[tokio::test]
async fn tool_calls() {
    let m = mock().await;
    let msgs = json!([{"role": "user", "content": "weather?"}]);
    let v: Value = post(
        &m,
        "/chat/completions",
        json!({"model": "tool", "messages": msgs}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"],
        json!([{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Berlin\"}"}}])
    );

    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "tools-x", "stream": true, "messages": msgs}),
    )
    .await;
    let chunks = chunks(&sse_events(&resp.text().await.unwrap()));
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    assert_eq!(deltas.len(), 6);
    assert_eq!(
        deltas[1]["tool_calls"],
        json!([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    );
    let args: String = deltas[2..5]
        .iter()
        .map(|d| {
            assert_eq!(d["tool_calls"][0]["index"], 0);
            d["tool_calls"][0]["function"]["arguments"].as_str().unwrap()
        })
        .collect();
    assert_eq!(args, "{\"city\": \"Berlin\"}");
    assert_eq!(deltas[2]["tool_calls"][0]["function"]["arguments"], "{\"city\": ");
    assert_eq!(*deltas[5], json!({}));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn error_modes() {
    let m = mock().await;
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (
            "fail",
            500,
            json!({"error": {"message": "Internal server error", "type": "server_error", "param": null, "code": null}}),
        ),
        (
            "unavail-1",
            503,
            json!({"error": {"message": "Model is restarting", "type": "server_error", "param": null, "code": null}}),
        ),
        ("str401", 401, json!({"error": "Unauthorized"})),
        (
            "flat400",
            400,
            json!({"object": "error", "message": "This model's maximum context length is 4096 tokens",
                                "type": "invalid_request_error", "param": "messages", "code": 400}),
        ),
    ];
    for (model, status, body) in cases {
        let resp = post(&m, "/chat/completions", json!({"model": model, "messages": msgs})).await;
        assert_eq!(resp.status(), status, "{model}");
        assert_eq!(resp.json::<Value>().await.unwrap(), body, "{model}");
    }
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "ratelimit", "messages": msgs}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    assert!(!resp
        .headers()
        .keys()
        .any(|k| k.as_str().starts_with("x-ratelimit")));
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );

    // Validation.
    let resp = client()
        .post(format!("{}/chat/completions", m.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["object"], "error");
    let resp = post(&m, "/chat/completions", json!({"messages": msgs})).await;
    assert_eq!(resp.json::<Value>().await.unwrap()["param"], "model");
    let resp = post(&m, "/chat/completions", json!({"model": "echo"})).await;
    assert_eq!(resp.json::<Value>().await.unwrap()["param"], "messages");

    // Routing.
    let resp = client()
        .get(format!("{}/nope", m.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], Value::Null);
    let resp = client()
        .get(format!("{}/chat/completions", m.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);

    assert_eq!(m.call_count("chat"), 8);
}

#[tokio::test]
async fn reset_closes_the_connection() {
    let m = mock().await;
    let err = client()
        .post(format!("{}/chat/completions", m.base_url()))
        .json(&json!({"model": "reset", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .expect_err("no response expected");
    assert!(!err.is_status(), "{err:?}");
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert_eq!(m.call_count("chat"), 1);
    // The server keeps working.
    let resp = post(&m, "/chat/completions", json!({"model": "echo", "messages": []})).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        "echo: "
    );
}

#[tokio::test]
async fn cut_responses() {
    let m = mock().await;
    let msgs = json!([{"role": "user", "content": "a b c"}]);
    let resp = post(&m, "/chat/completions", json!({"model": "cut", "messages": msgs})).await;
    assert_eq!(resp.status(), 200);
    let promised: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(promised > 10);
    assert!(resp.bytes().await.is_err(), "body must be truncated");

    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "cut", "stream": true, "messages": msgs}),
    )
    .await;
    let text = resp.text().await.unwrap();
    let events = sse_events(&text);
    assert_eq!(events.len(), 2);
    assert!(!text.contains("[DONE]"));
    assert!(!text.contains("finish_reason\":\"stop"));
    let second: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(second["choices"][0]["delta"]["content"], "echo: ");
}

#[tokio::test]
async fn drip_cancellation_is_counted() {
    let m = mock().await;
    let mut resp = post(
        &m,
        "/chat/completions",
        json!({"model": "drip", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first)
        .unwrap()
        .contains("\"role\":\"assistant\""));
    let t = Instant::now();
    let second = resp.chunk().await.unwrap().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(60), "{:?}", t.elapsed());
    assert!(std::str::from_utf8(&second).unwrap().contains("tick1 "));
    assert_eq!(m.cancelled_streams(), 0);
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(2);
    while m.cancelled_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.cancelled_streams(), 1);
}

#[tokio::test]
async fn slow_and_latency() {
    let m = start(MockOptions {
        latency: Duration::from_millis(150),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = Instant::now();
    let resp = post(
        &m,
        "/chat/completions",
        json!({"model": "slow-100", "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
    // /__calls is not delayed.
    let t = Instant::now();
    let calls: Value = client()
        .get(format!("http://{}/__calls", m.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(150));
    assert_eq!(calls["chat"], 1);
}

#[tokio::test]
async fn auth_and_call_counting() {
    let m = start(MockOptions {
        api_key: Some("sekret".into()),
        record: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("{}/models", m.base_url());
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "Unauthorized"})
    );
    let resp = client().get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client().get(&url).bearer_auth("sekret").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["gpt-oss-120b", "Qwen3.5-0.8B", "Qwen3-Embedding-8B", "echo"]
    );
    assert_eq!(
        v["data"][0],
        json!({"id": "gpt-oss-120b", "object": "model", "created": 1767225600, "owned_by": "mittwald", "max_model_len": 131072})
    );

    assert_eq!(m.call_count("models"), 3);
    assert!(m.requests().is_empty(), "record=false");
    let calls_url = format!("http://{}/__calls", m.addr());
    let calls: Value = client()
        .get(&calls_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        calls,
        json!({"chat": 0, "models": 3, "embeddings": 0, "completions": 0,
               "messages": 0, "count_tokens": 0, "generate": 0, "transcriptions": 0,
               "translations": 0, "rerank": 0, "responses": 0, "speech": 0})
    );
    let resp = client().delete(&calls_url).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(m.call_count("models"), 0);
}

#[tokio::test]
async fn embeddings() {
    let m = mock().await;
    let v: Value = post(
        &m,
        "/embeddings",
        json!({"model": "Qwen3-Embedding-8B", "input": ["hello world", "x"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "Qwen3-Embedding-8B");
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let floats: Vec<f32> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(floats.len(), 8);

    let v: Value = post(
        &m,
        "/embeddings",
        json!({"model": "Qwen3-Embedding-8B", "input": "hello world", "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(b64.len(), 44); // 32 bytes
    assert_eq!(m.call_count("embeddings"), 2);
}

#[tokio::test]
async fn legacy_completions() {
    let m = mock().await;
    let v: Value = post(&m, "/completions", json!({"model": "echo", "prompt": "say this"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "echo: say this");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let resp = post(
        &m,
        "/completions",
        json!({"model": "echo", "prompt": "say this", "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    let chunks = chunks(&sse_events(&resp.text().await.unwrap()));
    assert_eq!(chunks.len(), 5);
    let text: String = chunks[..3]
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "echo: say this");
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[4]["usage"]["completion_tokens"], 3);
    assert_eq!(m.call_count("completions"), 2);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let m = mock().await;
    let addr = m.addr();
    m.shutdown().await;
    assert!(client()
        .get(format!("http://{addr}/v1/models"))
        .send()
        .await
        .is_err());
}

#[test]
fn binary_prints_its_address() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard-mock"))
        .args(["--port", "0", "--no-record"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // SIGTERM ends it cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let port: u16 = line
        .trim_end()
        .strip_prefix("switchyard-mock listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap();
    assert_ne!(port, 0);
}
