//! The Gemini upstream: `/v1beta/models/{model}:generateContent` and `:streamGenerateContent`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

async fn mock() -> MockUpstream {
    start(MockOptions::default()).await.expect("mock starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn url(m: &MockUpstream, model: &str, action: &str) -> String {
    format!("http://{}/v1beta/models/{model}:{action}", m.addr())
}

async fn generate(m: &MockUpstream, model: &str, body: Value) -> reqwest::Response {
    client()
        .post(url(m, model, "generateContent"))
        .json(&body)
        .send()
        .await
        .expect("request is answered")
}

async fn stream_sse(m: &MockUpstream, model: &str, body: Value) -> reqwest::Response {
    client()
        .post(url(m, model, "streamGenerateContent") + "?alt=sse")
        .json(&body)
        .send()
        .await
        .expect("request is answered")
}

fn body(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

/// `data: <json>\n\n` events, no `[DONE]`.
fn sse_chunks(text: &str) -> Vec<Value> {
    assert!(
        text.ends_with("\n\n"),
        "body must end with a blank line: {text:?}"
    );
    assert!(!text.contains("[DONE]"));
    text.split_terminator("\n\n")
        .map(|ev| {
            serde_json::from_str(
                ev.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("bad event {ev:?}")),
            )
            .unwrap()
        })
        .collect()
}

async fn error_of(resp: reqwest::Response, status: u16, google_status: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], status, "{v}");
    assert_eq!(v["error"]["status"], google_status, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn echo_generate_content() {
    let m = mock().await;
    let resp = generate(
        &m,
        "gemini-2.5-flash",
        json!({"systemInstruction": {"parts": [{"text": "be nice"}]},
               "contents": [{"role": "user", "parts": [{"text": "first"}]},
                            {"role": "model", "parts": [{"text": "answer"}]},
                            {"role": "user", "parts": [{"text": "hello "}, {"text": "there"}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "echo: hello there"}]},
                               "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 3, "totalTokenCount": 9},
               "modelVersion": "gemini-2.5-flash"})
    );
    assert_eq!(m.call_count("generate"), 1);
    let recs = m.requests();
    assert_eq!(recs[0].path, "/v1beta/models/gemini-2.5-flash:generateContent");
}

#[tokio::test]
async fn max_output_tokens() {
    let m = mock().await;
    let v: Value = generate(
        &m,
        "g",
        json!({"contents": [{"parts": [{"text": "a b c"}]}], "generationConfig": {"maxOutputTokens": 2}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], "echo: a");
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    let v: Value = generate(&m, "maxtok", body("a")).await.json().await.unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
}

#[tokio::test]
async fn sse_stream() {
    let m = mock().await;
    let resp = stream_sse(&m, "gemini-2.5-pro", body("one two")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let chunks = sse_chunks(&resp.text().await.unwrap());
    assert_eq!(chunks.len(), 3);
    let text: String = chunks
        .iter()
        .map(|c| {
            assert_eq!(c["modelVersion"], "gemini-2.5-pro");
            assert_eq!(c["candidates"][0]["content"]["role"], "model");
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "echo: one two");
    for c in &chunks[..2] {
        assert!(c["candidates"][0].get("finishReason").is_none(), "{c}");
        assert!(c.get("usageMetadata").is_none(), "{c}");
    }
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        chunks[2]["usageMetadata"],
        json!({"promptTokenCount": 2, "candidatesTokenCount": 3, "totalTokenCount": 5})
    );
}

#[tokio::test]
async fn json_array_stream_without_alt_sse() {
    let m = mock().await;
    let resp = client()
        .post(url(&m, "g", "streamGenerateContent"))
        .json(&body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn function_calls() {
    let m = mock().await;
    let v: Value = generate(&m, "tool", body("weather?")).await.json().await.unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(
        cand["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"city": "Berlin"}}}])
    );
    let v: Value = generate(&m, "tools2", body("weather?"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][1],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Hamburg"}}})
    );

    let chunks = sse_chunks(
        &stream_sse(&m, "tool", body("weather?"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        json!({"city": "Berlin"})
    );
    assert_eq!(chunks[0]["candidates"][0]["finishReason"], "STOP");
    assert!(chunks[0]["usageMetadata"].is_object());
}

#[tokio::test]
async fn error_modes_and_validation() {
    let m = mock().await;
    error_of(generate(&m, "fail", body("x")).await, 500, "INTERNAL").await;
    error_of(generate(&m, "unavail", body("x")).await, 503, "UNAVAILABLE").await;
    error_of(
        generate(&m, "ratelimit", body("x")).await,
        429,
        "RESOURCE_EXHAUSTED",
    )
    .await;
    error_of(stream_sse(&m, "fail", body("x")).await, 500, "INTERNAL").await;
    error_of(generate(&m, "g", json!({})).await, 400, "INVALID_ARGUMENT").await;
    error_of(
        generate(&m, "g", json!({"contents": []})).await,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    let resp = client()
        .post(url(&m, "g", "generateContent"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    error_of(resp, 400, "INVALID_ARGUMENT").await;
    assert_eq!(m.call_count("generate"), 7);

    // Routing: unknown actions and paths are 404, other methods 405; none of them are counted.
    let resp = client()
        .post(url(&m, "g", "countTokens"))
        .json(&body("x"))
        .send()
        .await
        .unwrap();
    error_of(resp, 404, "NOT_FOUND").await;
    let resp = client()
        .get(format!("http://{}/v1beta/nope", m.addr()))
        .send()
        .await
        .unwrap();
    error_of(resp, 404, "NOT_FOUND").await;
    let resp = client()
        .get(url(&m, "g", "generateContent"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "POST");
    assert_eq!(resp.status(), 405);
    assert_eq!(m.call_count("generate"), 7);
}

#[tokio::test]
async fn auth_variants() {
    let m = start(MockOptions {
        api_key: Some("gkey".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let u = url(&m, "g", "generateContent");
    let b = body("x");

    // No key: 403 PERMISSION_DENIED.
    let resp = client().post(&u).json(&b).send().await.unwrap();
    error_of(resp, 403, "PERMISSION_DENIED").await;
    // A bearer token is not a Gemini API key.
    let resp = client()
        .post(&u)
        .bearer_auth("gkey")
        .json(&b)
        .send()
        .await
        .unwrap();
    error_of(resp, 403, "PERMISSION_DENIED").await;
    // Wrong key: 400 INVALID_ARGUMENT with reason API_KEY_INVALID, as Google does.
    for req in [
        client().post(&u).header("x-goog-api-key", "nope"),
        client().post(format!("{u}?key=nope")),
    ] {
        let v = error_of(req.json(&b).send().await.unwrap(), 400, "INVALID_ARGUMENT").await;
        assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
    }
    for req in [
        client().post(&u).header("x-goog-api-key", "gkey"),
        client().post(format!("{u}?key=gkey")),
        client().post(url(&m, "g", "streamGenerateContent") + "?alt=sse&key=gkey"),
    ] {
        assert_eq!(req.json(&b).send().await.unwrap().status(), 200);
    }
    assert_eq!(m.call_count("generate"), 7);
}

#[tokio::test]
async fn cut_reset_slow() {
    let m = mock().await;
    let text = stream_sse(&m, "cut", body("a b c")).await.text().await.unwrap();
    let chunks = sse_chunks(&text);
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["text"],
        "echo: "
    );
    assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
    let resp = generate(&m, "cut", body("a b c")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "body must be truncated");

    let err = client()
        .post(url(&m, "reset", "generateContent"))
        .json(&body("x"))
        .send()
        .await
        .expect_err("no response expected");
    assert!(!err.is_status(), "{err:?}");

    let t = Instant::now();
    let resp = generate(&m, "slow-100", body("x")).await;
    assert_eq!(resp.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(100), "{:?}", t.elapsed());
    assert_eq!(m.call_count("generate"), 4);
}

#[tokio::test]
async fn drip_cancellation_is_counted() {
    let m = mock().await;
    let mut resp = stream_sse(&m, "drip", body("x")).await;
    let t = Instant::now();
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(60), "{:?}", t.elapsed());
    assert!(std::str::from_utf8(&first).unwrap().contains("tick1 "));
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(2);
    while m.cancelled_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.cancelled_streams(), 1);
}
