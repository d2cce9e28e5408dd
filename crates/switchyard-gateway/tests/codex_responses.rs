//! Codex CLI's requests (`POST /v1/responses`) through the real server: to an upstream that serves the
//! Responses API (passed through), to a chat-only upstream (learned from its 404, then translated:
//! plain, streamed, a tool loop with `exec_command`, a reasoning model) and to an Anthropic provider.

mod common;

use common::TestGateway;
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

const KEY: &str = "sk-codex-test-0001";

struct Setup {
    gw: TestGateway,
    /// Behind `chatonly`, chat completions only; `responder` serves `/v1/responses` too; `anthropic` is a
    /// third mock.
    chat_only: MockUpstream,
    native: MockUpstream,
    anthropic: MockUpstream,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let mock = || {
        start(MockOptions {
            api_key: Some(KEY.into()),
            ..Default::default()
        })
    };
    let (chat_only, native, anthropic) = (
        mock().await.unwrap(),
        mock().await.unwrap(),
        mock().await.unwrap(),
    );
    chat_only.set_chat_only(true);
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let openai = json!({"base_provider_type": "openai"});
    for (provider, url, custom) in [
        ("chatonly", chat_only.base_url(), openai.clone()),
        ("responder", native.base_url(), openai),
        ("anthropic", anthropic.base_url(), json!(null)),
    ] {
        let mut body = json!({"provider": provider, "network_config": {"base_url": url, "max_retries": 0}});
        if !custom.is_null() {
            body["custom_provider_config"] = custom;
        }
        assert_eq!(gw.post("/api/providers", body).await.0, 200);
        let key = json!({"name": "k", "value": KEY, "models": ["*"]});
        assert_eq!(
            gw.post(&format!("/api/providers/{provider}/keys"), key).await.0,
            200
        );
    }
    Setup {
        gw,
        chat_only,
        native,
        anthropic,
        _dir: dir,
    }
}

/// A request shaped like Codex `exec`'s: instructions, a developer message, the fields a chat
/// upstream cannot take.
fn codex(model: &str, stream: bool, input: Value) -> Value {
    json!({
        "model": model, "instructions": "You are Codex.", "stream": stream, "store": false,
        "input": input,
        "tools": [{"type": "function", "name": "exec_command", "description": "Runs a command",
                   "strict": false, "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
                  {"type": "web_search"}],
        "tool_choice": "auto", "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "session-1",
        "client_metadata": {"originator": "codex_exec"},
    })
}

fn user(text: &str) -> Value {
    json!([
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: read-only"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    ])
}

async fn post(gw: &TestGateway, body: &Value) -> (u16, String) {
    let r = gw
        .http
        .post(gw.url("/v1/responses"))
        .bearer_auth("dummy")
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn paths(mock: &MockUpstream) -> Vec<String> {
    mock.requests().into_iter().map(|r| r.path).collect()
}

/// `(event, data)` of a Responses stream, checking names, sequence numbers and the terminal event.
fn events(text: &str) -> Vec<(String, Value)> {
    let evs: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .expect("named events");
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect();
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i, "{text}");
    }
    assert_eq!(evs[0].0, "response.created", "{text}");
    assert_eq!(evs.last().unwrap().0, "response.completed", "{text}");
    evs
}

fn completed(evs: &[(String, Value)]) -> &Value {
    &evs.last().unwrap().1["response"]
}

#[tokio::test]
async fn a_responses_native_upstream_gets_the_body_as_sent() {
    let s = setup().await;
    let (status, body) = post(&s.gw, &codex("responder/gpt-oss-120b", false, user("hello"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(paths(&s.native), ["/v1/responses"]);
    let sent: Value = serde_json::from_slice(&s.native.requests()[0].body).unwrap();
    assert_eq!(sent["prompt_cache_key"], "session-1", "passed through untouched");
    assert_eq!(sent["model"], "gpt-oss-120b");
}

#[tokio::test]
async fn a_chat_only_upstream_is_learned_from_its_404_and_translated() {
    let s = setup().await;
    let (status, body) = post(&s.gw, &codex("chatonly/gpt-oss-120b", false, user("hello there"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(paths(&s.chat_only), ["/v1/responses", "/v1/chat/completions"]);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    let msg = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "message")
        .unwrap();
    assert!(
        msg["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("hello there"),
        "{v}"
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sent: Value = serde_json::from_slice(&s.chat_only.requests()[1].body).unwrap();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You are Codex.\nsandbox: read-only"})
    );
    assert_eq!(sent["reasoning_effort"], "medium");
    for dropped in [
        "store",
        "include",
        "prompt_cache_key",
        "client_metadata",
        "input",
        "instructions",
    ] {
        assert!(sent.get(dropped).is_none(), "{dropped}: {sent}");
    }
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "only function tools");

    // Remembered: the next request goes straight to chat completions, streamed this time.
    let (status, body) = post(&s.gw, &codex("chatonly/gpt-oss-120b", true, user("again please"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(paths(&s.chat_only).len(), 3);
    assert_eq!(paths(&s.chat_only)[2], "/v1/chat/completions");
    let evs = events(&body);
    let text: String = evs
        .iter()
        .filter(|e| e.0 == "response.output_text.delta")
        .map(|e| e.1["delta"].as_str().unwrap().to_owned())
        .collect();
    assert!(text.contains("again please"), "{text}");
    assert_eq!(completed(&evs)["output"][0]["content"][0]["text"], text.as_str());
}

#[tokio::test]
async fn a_tool_loop_with_exec_command_streamed_and_not() {
    let s = setup().await;
    s.gw.http
        .post(s.gw.url("/v1/responses"))
        .json(&codex("chatonly/m", false, user("x")))
        .send()
        .await
        .unwrap();
    for stream in [false, true] {
        let (status, body) = post(&s.gw, &codex("chatonly/tool-m", stream, user("list files"))).await;
        assert_eq!(status, 200, "{body}");
        let output = if stream {
            let evs = events(&body);
            assert!(evs
                .iter()
                .any(|e| e.0 == "response.function_call_arguments.delta"));
            completed(&evs)["output"].clone()
        } else {
            serde_json::from_str::<Value>(&body).unwrap()["output"].clone()
        };
        let call = output
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap()
            .clone();
        let call_id = call["call_id"].as_str().unwrap().to_owned();
        assert_eq!(call["arguments"], r#"{"city": "Berlin"}"#);

        let mut input = user("list files");
        let items = input.as_array_mut().unwrap();
        items.push(json!({"type": "function_call", "name": call["name"], "arguments": call["arguments"], "call_id": call_id}));
        items.push(json!({"type": "function_call_output", "call_id": call_id, "output": "a.txt b.txt"}));
        let (status, body) = post(&s.gw, &codex("chatonly/tool-m", stream, input)).await;
        assert_eq!(status, 200, "{body}");
        let sent: Value = serde_json::from_slice(&s.chat_only.requests().last().unwrap().body).unwrap();
        let m = sent["messages"].as_array().unwrap();
        assert_eq!(m[2]["tool_calls"][0]["id"], call_id.as_str());
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": call_id, "content": "a.txt b.txt"})
        );
        assert!(
            body.contains("a.txt b.txt"),
            "the answer echoes the tool result: {body}"
        );
    }
}

#[tokio::test]
async fn a_reasoning_model_reasons_in_reasoning_items_only() {
    let s = setup().await;
    s.chat_only.set_chat_only(true);
    let (status, body) = post(&s.gw, &codex("chatonly/reason-qwen3", true, user("why"))).await;
    assert_eq!(status, 200, "{body}");
    let evs = events(&body);
    let out = &completed(&evs)["output"];
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[0]["content"][0]["text"], "thinking");
    assert_eq!(out[1]["type"], "message");
    assert!(!out[1]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("thinking"));
}

#[tokio::test]
async fn an_anthropic_served_model_is_translated_to_messages() {
    let s = setup().await;
    for stream in [false, true] {
        let (status, body) = post(
            &s.gw,
            &codex("anthropic/claude-4-sonnet", stream, user("hi claude")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let r = s.anthropic.requests().into_iter().last().unwrap();
        assert_eq!(r.path, "/v1/messages");
        let sent: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(sent["system"], "You are Codex.\nsandbox: read-only");
        let output = if stream {
            completed(&events(&body))["output"].clone()
        } else {
            serde_json::from_str::<Value>(&body).unwrap()["output"].clone()
        };
        let text = output[0]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("hi claude"), "{output}");
    }
}
