//! Coding agents through the real server: the requests Claude Code sends to `/anthropic/v1/messages`
//! (mid-conversation system messages under an `anthropic-beta` header, tool loops, streams) against an
//! OpenAI-compatible mock upstream (`mittwald-shared`) and an Anthropic one, reasoning models, and the
//! Anthropic model listing (`GET /anthropic/v1/models`).

mod common;

use common::TestGateway;
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

const KEY: &str = "sk-agents-test-0001";
/// The beta Claude Code sends for models it does not know (it puts system messages in `messages`).
const BETA: &str = "claude-code-20250219,mid-conversation-system-2026-09-01";

struct Setup {
    gw: TestGateway,
    mock: MockUpstream,
    _dir: tempfile::TempDir,
}

/// One mock behind `anthropic` (its Anthropic API, two Claude models) and `mittwald-shared`
/// (OpenAI-compatible, any model).
async fn setup() -> Setup {
    let mock = start(MockOptions {
        api_key: Some(KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    // Bare Claude model names go to `anthropic`, every other bare name to `mittwald-shared`.
    for (provider, custom, models) in [
        (
            "anthropic",
            json!(null),
            json!(["claude-4-sonnet", "claude-sonnet-4-5"]),
        ),
        (
            "mittwald-shared",
            json!({"base_provider_type": "openai"}),
            json!(["*"]),
        ),
    ] {
        let mut body = json!({"provider": provider,
            "network_config": {"base_url": mock.base_url(), "max_retries": 0}});
        if !custom.is_null() {
            body["custom_provider_config"] = custom;
        }
        assert_eq!(gw.post("/api/providers", body).await.0, 200);
        let key = json!({"name": "k", "value": KEY, "models": models});
        assert_eq!(
            gw.post(&format!("/api/providers/{provider}/keys"), key).await.0,
            200
        );
    }
    Setup { gw, mock, _dir: dir }
}

async fn messages(gw: &TestGateway, body: &Value) -> (u16, String) {
    let r = gw
        .http
        .post(gw.url("/anthropic/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", BETA)
        .header("x-api-key", "dummy")
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `(event name, data)` of every SSE frame.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// A streamed Anthropic answer folded into its blocks (`type` and accumulated text/input), checking
/// the event order the SDK's accumulator insists on.
fn blocks(text: &str) -> Vec<(String, String)> {
    let evs = events(text);
    assert_eq!(evs.first().map(|e| e.0.as_str()), Some("message_start"), "{text}");
    assert_eq!(evs.last().map(|e| e.0.as_str()), Some("message_stop"), "{text}");
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, v) in &evs {
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(v["index"].as_u64(), Some(out.len() as u64));
                let b = &v["content_block"];
                let kind = b["type"].as_str().unwrap().to_owned();
                let id = b["id"].as_str().map(|i| format!("{i}:")).unwrap_or_default();
                out.push((kind, id));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                let piece = ["text", "thinking", "partial_json"]
                    .iter()
                    .find_map(|k| d[*k].as_str())
                    .unwrap();
                out.last_mut().unwrap().1.push_str(piece);
            }
            "error" => panic!("error event: {v}"),
            _ => {}
        }
    }
    out
}

fn claude_code_request(model: &str, stream: bool) -> Value {
    json!({
        "model": model, "max_tokens": 32000, "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
            {"role": "system", "content": "The current date is 2026-12-07."},
        ],
        "tools": [{"name": "Read", "description": "Reads a file",
                   "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}],
        "metadata": {"user_id": "user_1"},
    })
}

fn last_upstream_body(mock: &MockUpstream, path: &str) -> Value {
    let r = mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.starts_with(path))
        .unwrap_or_else(|| panic!("no upstream request to {path}"));
    serde_json::from_slice(&r.body).unwrap()
}

#[tokio::test]
async fn claude_code_first_request_with_a_mid_conversation_system_message() {
    let s = setup().await;
    for (model, stream) in [("gpt-oss-120b", false), ("mittwald-shared/gpt-oss-120b", true)] {
        let (status, body) = messages(&s.gw, &claude_code_request(model, stream)).await;
        assert_eq!(status, 200, "{model}: {body}");
        let sent = last_upstream_body(&s.mock, "/v1/chat/completions");
        let roles: Vec<&str> = sent["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "system"], "{sent}");
        assert_eq!(sent["messages"][2]["content"], "The current date is 2026-12-07.");
        let text: String = if stream {
            blocks(&body).into_iter().map(|b| b.1).collect()
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["stop_reason"], "end_turn");
            v["content"][0]["text"].as_str().unwrap().to_owned()
        };
        assert!(text.contains("Say hello"), "{text}");
    }
}

#[tokio::test]
async fn an_anthropic_served_model_passes_through_with_its_beta_header() {
    let s = setup().await;
    let req = claude_code_request("anthropic/claude-sonnet-4-5", true);
    let (status, body) = messages(&s.gw, &req).await;
    assert_eq!(status, 200, "{body}");
    assert!(blocks(&body).iter().any(|b| b.0 == "text"));
    let r = s
        .mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/v1/messages")
        .unwrap();
    let sent: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(sent["messages"], req["messages"], "the body is passed through");
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert!(r.headers.iter().any(|(k, v)| k == "anthropic-beta" && v == BETA));
}

#[tokio::test]
async fn reasoning_becomes_thinking_blocks_never_answer_text() {
    let s = setup().await;
    let req = |stream| {
        json!({"model": "mittwald-shared/reason-qwen3", "max_tokens": 64, "stream": stream,
               "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
    };
    let (status, body) = messages(&s.gw, &req(true)).await;
    assert_eq!(status, 200, "{body}");
    let b = blocks(&body);
    assert_eq!(b[0], ("thinking".to_owned(), "thinking".to_owned()), "{body}");
    assert_eq!(b[1].0, "text");
    assert!(!b[1].1.contains("thinking") && b[1].1.contains("sky"), "{body}");

    let (status, body) = messages(&s.gw, &req(false)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["content"][0],
        json!({"type": "thinking", "thinking": "thinking", "signature": ""})
    );
    assert_eq!(v["content"][1]["type"], "text");
    assert!(!v["content"][1]["text"].as_str().unwrap().contains("thinking"));
}

#[tokio::test]
async fn a_tool_loop_round_trips_its_ids_streamed_and_not() {
    let s = setup().await;
    for stream in [false, true] {
        let user = json!({"role": "user", "content": "Weather in Berlin?"});
        let mut req = json!({"model": "mittwald-shared/tool-reason-m", "max_tokens": 64, "stream": stream,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object",
                       "properties": {"city": {"type": "string"}}}}],
            "messages": [user]});
        let (status, body) = messages(&s.gw, &req).await;
        assert_eq!(status, 200, "{body}");
        let (id, input) = if stream {
            let b = blocks(&body);
            let tool = b.iter().find(|b| b.0 == "tool_use").expect("a tool_use block");
            let (id, args) = tool.1.split_once(':').unwrap();
            (id.to_owned(), serde_json::from_str::<Value>(args).unwrap())
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["stop_reason"], "tool_use", "{v}");
            let tool = v["content"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["type"] == "tool_use")
                .unwrap();
            (tool["id"].as_str().unwrap().to_owned(), tool["input"].clone())
        };
        assert_eq!(input, json!({"city": "Berlin"}));

        // The client runs the tool and sends the result back with the same id (and its thinking).
        let assistant = json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "thinking", "signature": ""},
            {"type": "tool_use", "id": id, "name": "get_weather", "input": input}]});
        let result = json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "Sunny, 21 degrees"}]}]});
        req["messages"] = json!([user, assistant, result]);
        let (status, body) = messages(&s.gw, &req).await;
        assert_eq!(status, 200, "{body}");
        let sent = last_upstream_body(&s.mock, "/v1/chat/completions");
        let m = sent["messages"].as_array().unwrap();
        assert_eq!(m[1]["tool_calls"][0]["id"], id.as_str(), "{sent}");
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": id, "content": "Sunny, 21 degrees"})
        );
        let text: String = if stream {
            blocks(&body)
                .into_iter()
                .filter(|b| b.0 == "text")
                .map(|b| b.1)
                .collect()
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["stop_reason"], "end_turn");
            v["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect()
        };
        assert!(text.contains("Sunny"), "{text}");
    }
}

#[tokio::test]
async fn anthropic_model_listing_in_anthropic_shape_with_usable_ids() {
    let s = setup().await;
    let get = |path: &str| {
        s.gw.http
            .get(s.gw.url(path))
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", "dummy")
            .send()
    };
    let page: Value = get("/anthropic/v1/models?limit=1000")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = page["data"].as_array().unwrap();
    assert!(data.len() >= 2, "{page}");
    assert_eq!(page["has_more"], false);
    assert_eq!(page["first_id"], data[0]["id"]);
    assert_eq!(page["last_id"], data[data.len() - 1]["id"]);
    for m in data {
        assert_eq!(m["type"], "model", "{m}");
        assert_eq!(m["lifecycle"], "active");
        assert!(m["display_name"].is_string());
        let created = m["created_at"].as_str().unwrap();
        assert!(created.ends_with('Z') && created.len() >= 20, "{created}");
    }
    // Pages follow `after_id`, and every id is a model the messages route takes.
    let first: Value = get("/anthropic/v1/models?limit=1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["has_more"], true);
    let after = first["last_id"].as_str().unwrap();
    let second: Value = get(&format!("/anthropic/v1/models?limit=1&after_id={after}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["data"][0]["id"], data[1]["id"]);
    for m in data.iter().take(3) {
        let id = m["id"].as_str().unwrap();
        let req = json!({"model": id, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
        let (status, body) = messages(&s.gw, &req).await;
        assert_eq!(status, 200, "{id}: {body}");
    }
}

#[tokio::test]
async fn count_tokens_is_estimated_for_a_model_no_anthropic_provider_serves() {
    let s = setup().await;
    let req = claude_code_request("mittwald-shared/gpt-oss-120b", false);
    let r =
        s.gw.http
            .post(s.gw.url("/anthropic/v1/messages/count_tokens"))
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", "dummy")
            .json(&req)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-token-count"], "estimated");
    let v: Value = r.json().await.unwrap();
    let n = v["input_tokens"].as_u64().unwrap();
    assert!((20..200).contains(&n), "{v}");
    assert!(
        s.mock.requests().is_empty(),
        "no upstream can count, none was asked"
    );
}
