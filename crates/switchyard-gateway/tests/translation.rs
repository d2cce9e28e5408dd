//! Every client language to every provider language, through the real server: OpenAI clients to
//! Anthropic and Gemini providers, the Anthropic drop-in (`/anthropic/v1/messages`) to Anthropic
//! (pass-through) and to OpenAI-compatible providers (translated), and the Gemini drop-in.

mod common;

use common::{chat, TestGateway};
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

const KEY: &str = "sk-translate-test-0001";

struct Setup {
    gw: TestGateway,
    mock: MockUpstream,
    _dir: tempfile::TempDir,
}

/// One mock speaks all three wire APIs; three providers point at it: `anthropic`, `gemini` and the
/// OpenAI-compatible `mittwald-shared`. Retries are off so statuses show through.
async fn setup() -> Setup {
    let mock = start(MockOptions {
        api_key: Some(KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let nc = |url: String| json!({"base_url": url, "max_retries": 0});
    for (provider, url, extra) in [
        ("anthropic", mock.base_url(), json!(null)),
        ("gemini", format!("http://{}", mock.addr()), json!(null)),
        (
            "mittwald-shared",
            mock.base_url(),
            json!({"base_provider_type": "openai"}),
        ),
    ] {
        let mut body = json!({"provider": provider, "network_config": nc(url)});
        if !extra.is_null() {
            body["custom_provider_config"] = extra;
        }
        assert_eq!(gw.post("/api/providers", body).await.0, 200);
        gw.post(
            &format!("/api/providers/{provider}/keys"),
            json!({"name": "k", "value": KEY, "models": ["*"]}),
        )
        .await;
    }
    Setup { gw, mock, _dir: dir }
}

fn sse_events(text: &str) -> Vec<(Option<String>, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .map(str::to_owned);
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((
                name,
                serde_json::from_str(data).unwrap_or(Value::String(data.to_owned())),
            ))
        })
        .collect()
}

async fn anthropic_post(gw: &TestGateway, path: &str, body: Value) -> reqwest::Response {
    gw.http
        .post(gw.url(path))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "client-dummy")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn openai_client_to_anthropic_provider() {
    let s = setup().await;
    let mut body = chat("anthropic/claude-3-7-sonnet");
    body["messages"] =
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]);
    let (status, resp) = s.gw.post("/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["object"], "chat.completion");
    assert!(
        resp["created"].as_i64().unwrap() > 1_700_000_000,
        "created is a real time"
    );
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    assert_eq!(resp["choices"][0]["message"]["content"], "echo: Hello there");
    assert!(resp["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sent = s.mock.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert!(sent.header("authorization").is_none());
    let sent = sent.json();
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["model"], "claude-3-7-sonnet");
    assert!(
        sent["max_tokens"].as_u64().unwrap() > 0,
        "max_tokens is required by Anthropic"
    );
}

#[tokio::test]
async fn openai_client_streams_a_tool_call_from_anthropic() {
    let s = setup().await;
    let mut body = chat("anthropic/tool-weather");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body["tools"] =
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let r =
        s.gw.http
            .post(s.gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, Value::String("[DONE]".into()));
    let chunks: Vec<&Value> = events.iter().map(|(_, v)| v).filter(|v| v.is_object()).collect();
    let ids: std::collections::HashSet<&str> = chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one id for the whole stream");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Berlin"})
    );
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().is_some());
}

#[tokio::test]
async fn anthropic_errors_map_to_openai_statuses() {
    let s = setup().await;
    let (status, body) =
        s.gw.post("/v1/chat/completions", chat("anthropic/overloaded"))
            .await;
    assert_eq!(
        status, 503,
        "529 overloaded becomes 503 for OpenAI clients: {body}"
    );
    assert_eq!(body["error"]["code"], "overloaded_error");
    let (status, body) =
        s.gw.post("/v1/chat/completions", chat("anthropic/ratelimit"))
            .await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test]
async fn anthropic_sdk_route_passes_through_to_anthropic() {
    let s = setup().await;
    let body = json!({"model": "claude-3-7-sonnet", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi you"}]});
    let r = anthropic_post(&s.gw, "/anthropic/v1/messages", body.clone()).await;
    assert_eq!(r.status(), 200);
    let msg: Value = r.json().await.unwrap();
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["content"][0]["text"], "echo: Hi you");
    assert_eq!(msg["stop_reason"], "end_turn");
    // Pass-through: the upstream got the client's body (same model) with the stored key.
    let sent = s.mock.requests().pop().unwrap();
    assert_eq!(sent.json(), body);
    assert_eq!(sent.header("x-api-key"), Some(KEY));

    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let text = anthropic_post(&s.gw, "/anthropic/v1/messages", stream_body)
        .await
        .text()
        .await
        .unwrap();
    let names: Vec<String> = sse_events(&text).into_iter().filter_map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));

    // A cut Anthropic stream ends with an Anthropic error event.
    let mut cut = body.clone();
    cut["model"] = json!("cut-claude");
    cut["stream"] = json!(true);
    let text = anthropic_post(&s.gw, "/anthropic/v1/messages", cut)
        .await
        .text()
        .await
        .unwrap();
    let (name, data) = sse_events(&text).pop().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(data["type"], "error");
}

#[tokio::test]
async fn anthropic_sdk_route_reaches_openai_compatible_models() {
    let s = setup().await;
    let body = json!({"model": "mittwald-shared/gpt-oss-120b", "max_tokens": 64,
                      "system": "Be brief.", "messages": [{"role": "user", "content": "Hi you"}]});
    let r = anthropic_post(&s.gw, "/anthropic/v1/messages", body.clone()).await;
    assert_eq!(r.status(), 200);
    let msg: Value = r.json().await.unwrap();
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["content"][0]["type"], "text");
    assert_eq!(msg["content"][0]["text"], "echo: Hi you");
    assert_eq!(msg["stop_reason"], "end_turn");
    let sent = s.mock.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        sent.json()["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );

    let mut stream_body = body;
    stream_body["stream"] = json!(true);
    stream_body["model"] = json!("mittwald-shared/tool-weather");
    stream_body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let text = anthropic_post(&s.gw, "/anthropic/v1/messages", stream_body)
        .await
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().filter_map(|(n, _)| n.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let json_parts: String = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_parts).unwrap(),
        json!({"city": "Berlin"})
    );
    let delta = events
        .iter()
        .find(|(n, _)| n.as_deref() == Some("message_delta"))
        .unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn anthropic_route_errors_are_anthropic_shaped() {
    let s = setup().await;
    let r = anthropic_post(
        &s.gw,
        "/anthropic/v1/messages",
        json!({"model": "claude-3-7-sonnet", "messages": []}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("max_tokens"),
        "{e}"
    );

    let r = anthropic_post(
        &s.gw,
        "/anthropic/v1/messages",
        json!({"model": "vertex/gemini-x", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "error");

    let r = anthropic_post(
        &s.gw,
        "/anthropic/v1/messages",
        json!({"model": "anthropic/overloaded", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let status = r.status().as_u16();
    let e: Value = r.json().await.unwrap();
    assert!(status == 503 || status == 529, "{status}");
    assert_eq!(e["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn count_tokens_goes_to_anthropic() {
    let s = setup().await;
    let r = anthropic_post(
        &s.gw,
        "/anthropic/v1/messages/count_tokens",
        json!({"model": "claude-3-7-sonnet", "messages": [{"role": "user", "content": "one two three"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.unwrap()["input_tokens"].as_u64().unwrap() >= 3);
    assert_eq!(s.mock.call_count("count_tokens"), 1);
}

#[tokio::test]
async fn openai_client_to_gemini_provider() {
    let s = setup().await;
    let (status, resp) =
        s.gw.post("/v1/chat/completions", chat("gemini/gemini-2.5-flash"))
            .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["choices"][0]["message"]["content"], "echo: Hello there");
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    let sent = s.mock.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));

    let mut body = chat("gemini/gemini-2.5-flash");
    body["stream"] = json!(true);
    let text =
        s.gw.http
            .post(s.gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().unwrap().1, Value::String("[DONE]".into()));
    let content: String = events
        .iter()
        .filter_map(|(_, c)| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(content, "echo: Hello there");
    assert!(s
        .mock
        .requests()
        .pop()
        .unwrap()
        .path
        .ends_with(":streamGenerateContent?alt=sse"));
}

#[tokio::test]
async fn gemini_route_reaches_openai_compatible_models() {
    let s = setup().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi you"}]}]});
    let r =
        s.gw.http
            .post(s.gw.url("/genai/v1beta/models/mittwald-shared%2Fgpt-oss-120b:generateContent"))
            .json(&body)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let resp: Value = r.json().await.unwrap();
    assert_eq!(
        resp["candidates"][0]["content"]["parts"][0]["text"],
        "echo: Hi you"
    );
    assert_eq!(resp["candidates"][0]["finishReason"], "STOP");
    assert_eq!(s.mock.requests().pop().unwrap().json()["model"], "gpt-oss-120b");

    let r =
        s.gw.http
            .post(s.gw.url("/genai/v1beta/models/gemini-x:explode"))
            .json(&body)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"]["status"].is_string());
}
