//! Azure OpenAI, AWS Bedrock and the OpenAI-compatible presets, through the real server against the
//! mock's Azure and Bedrock routes (which check api-version / api-key, and verify SigV4 signatures with
//! their own signer).

mod common;

use common::{assert_error_shape, chat, TestGateway};
use serde_json::{json, Value};
use switchyard_mock::sigv4::{
    MOCK_AWS_ACCESS_KEY_ID, MOCK_AWS_SECRET_ACCESS_KEY, MOCK_AWS_SESSION_TOKEN, MOCK_AWS_TEMP_ACCESS_KEY_ID,
};
use switchyard_mock::{start, MockOptions, MockUpstream};

const AZURE_KEY: &str = "azure-key-0123456789abcdef";
const CLAUDE_ID: &str = "anthropic.claude-3-haiku-20240307-v1:0";

struct Setup {
    gw: TestGateway,
    mock: MockUpstream,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let mock = start(MockOptions {
        api_key: Some(AZURE_KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    Setup { gw, mock, _dir: dir }
}

fn origin(mock: &MockUpstream) -> String {
    format!("http://{}", mock.addr())
}

async fn add_azure(s: &Setup) {
    let (st, b) =
        s.gw.post(
            "/api/providers",
            json!({"provider": "azure", "network_config": {"max_retries": 0}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) =
        s.gw.post(
            "/api/providers/azure/keys",
            json!({"name": "azure-eu", "value": AZURE_KEY, "models": ["*"],
                   "azure_key_config": {"endpoint": origin(&s.mock),
                                        "deployments": {"gpt-4o": "prod-gpt4o"},
                                        "api_version": "2024-10-21"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
}

async fn add_bedrock(s: &Setup, access_key: &str, secret_key: &str, session_token: Option<&str>) {
    let (st, b) =
        s.gw.post(
            "/api/providers",
            json!({"provider": "bedrock", "network_config": {"base_url": origin(&s.mock), "max_retries": 0}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let mut cfg = json!({"access_key": access_key, "secret_key": secret_key, "region": "eu-central-1",
                         "deployments": {"claude": CLAUDE_ID}});
    if let Some(t) = session_token {
        cfg["session_token"] = json!(t);
    }
    let (st, b) =
        s.gw.post(
            "/api/providers/bedrock/keys",
            json!({"name": "aws-main", "models": ["*"], "bedrock_key_config": cfg}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
}

fn sse_data(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn streamed_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn azure_chat_goes_to_the_deployment_url_with_api_key_and_api_version() {
    let s = setup().await;
    add_azure(&s).await;
    let (st, body) = s.gw.post("/v1/chat/completions", chat("azure/gpt-4o")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: Hello there");
    assert_eq!(body["extra_fields"]["provider"], "azure");
    let req = &s.mock.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path,
        "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(req.header("api-key"), Some(AZURE_KEY));
    assert_eq!(
        req.header("authorization"),
        None,
        "Azure takes api-key, not a bearer token"
    );

    // Azure's own error shape comes back normalised, status kept.
    s.mock.reset();
    let (st, body) = s.gw.post("/v1/chat/completions", chat("azure/missing")).await;
    assert_eq!(st, 404, "{body}");
    assert!(
        assert_error_shape(&body, 404)["message"]
            .as_str()
            .unwrap()
            .contains("deployment for this resource does not exist"),
        "{body}"
    );

    // A model without a deployment entry is used as the deployment name.
    s.mock.reset();
    let (st, _) = s.gw.post("/v1/chat/completions", chat("azure/gpt-4o-mini")).await;
    assert_eq!(st, 200);
    assert!(s.mock.requests()[0]
        .path
        .starts_with("/openai/deployments/gpt-4o-mini/chat/completions?"));
}

#[tokio::test]
async fn azure_embeddings_go_to_the_deployment_url() {
    let s = setup().await;
    add_azure(&s).await;
    let (st, body) =
        s.gw.post(
            "/v1/embeddings",
            json!({"model": "azure/gpt-4o", "input": ["one", "two"]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2), "{body}");
    let req = &s.mock.requests()[0];
    assert_eq!(
        req.path,
        "/openai/deployments/prod-gpt4o/embeddings?api-version=2024-10-21"
    );
    assert_eq!(req.header("api-key"), Some(AZURE_KEY));
    assert_eq!(req.header("authorization"), None);
}

#[tokio::test]
async fn azure_streams_like_openai() {
    let s = setup().await;
    add_azure(&s).await;
    let mut body = chat("azure/gpt-4o");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r =
        s.gw.http
            .post(s.gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(streamed_text(&sse_data(&text)), "echo: Hello there");
    let req = &s.mock.requests()[0];
    assert_eq!(
        req.path,
        "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(req.header("api-key"), Some(AZURE_KEY));
    assert_eq!(req.json()["stream"], true);
}

#[tokio::test]
async fn azure_key_config_is_validated_and_shown() {
    let s = setup().await;
    let (st, _) = s.gw.post("/api/providers", json!({"provider": "azure"})).await;
    assert_eq!(st, 200, "azure needs no provider base_url: endpoints are per key");
    let (st, b) =
        s.gw.post(
            "/api/providers/azure/keys",
            json!({"name": "k", "value": AZURE_KEY, "models": ["*"]}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(assert_error_shape(&b, 400)["param"], "azure_key_config.endpoint");
    let (st, b) =
        s.gw.post(
            "/api/providers/azure/keys",
            json!({"name": "k", "value": AZURE_KEY, "azure_key_config": {"endpoint": "ftp://x"}}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error"]["param"], "azure_key_config.endpoint");
    let (st, b) = s
        .gw
        .post(
            "/api/providers/azure/keys",
            json!({"name": "k", "value": AZURE_KEY, "models": ["*"],
                   "azure_key_config": {"endpoint": "https://r.openai.azure.com", "deployments": {"gpt-4o": "d1"}}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["azure_key_config"]["deployments"]["gpt-4o"], "d1");
    assert!(!b.to_string().contains(AZURE_KEY), "{b}");
}

#[tokio::test]
async fn bedrock_chat_is_signed_translated_and_answered_in_openai_shape() {
    let s = setup().await;
    add_bedrock(&s, MOCK_AWS_ACCESS_KEY_ID, MOCK_AWS_SECRET_ACCESS_KEY, None).await;
    let (st, body) = s.gw.post("/v1/chat/completions", chat("bedrock/claude")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: Hello there");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 2);
    assert_eq!(body["model"], "claude");
    let req = &s.mock.requests()[0];
    assert_eq!(
        req.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    let auth = req.header("authorization").unwrap();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={MOCK_AWS_ACCESS_KEY_ID}/")),
        "{auth}"
    );
    assert!(auth.contains("/eu-central-1/bedrock/aws4_request"), "{auth}");
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date"),
        "{auth}"
    );
    assert_eq!(req.header("x-amz-date").map(str::len), Some(16));
    assert_eq!(req.header("x-amz-security-token"), None);
    let sent = req.json();
    assert_eq!(sent.get("model"), None, "Bedrock takes the model in the URL only");
    assert_eq!(sent["messages"][0]["content"][0]["text"], "Hello there");
}

#[tokio::test]
async fn bedrock_temporary_credentials_sign_the_session_token() {
    let s = setup().await;
    add_bedrock(
        &s,
        MOCK_AWS_TEMP_ACCESS_KEY_ID,
        MOCK_AWS_SECRET_ACCESS_KEY,
        Some(MOCK_AWS_SESSION_TOKEN),
    )
    .await;
    let (st, body) = s.gw.post("/v1/chat/completions", chat("bedrock/claude")).await;
    assert_eq!(st, 200, "{body}");
    let req = &s.mock.requests()[0];
    assert_eq!(req.header("x-amz-security-token"), Some(MOCK_AWS_SESSION_TOKEN));
    assert!(req
        .header("authorization")
        .unwrap()
        .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_by_the_upstream_signature_check() {
    let s = setup().await;
    add_bedrock(
        &s,
        MOCK_AWS_ACCESS_KEY_ID,
        "not-the-right-secret-key-0000000000000",
        None,
    )
    .await;
    let (st, body) = s.gw.post("/v1/chat/completions", chat("bedrock/claude")).await;
    assert_eq!(st, 403, "{body}");
    let err = assert_error_shape(&body, 403);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("signature we calculated does not match"),
        "{body}"
    );
    assert!(!body.to_string().contains("not-the-right-secret"), "{body}");
}

#[tokio::test]
async fn bedrock_stream_reaches_an_openai_client_as_chunks() {
    let s = setup().await;
    add_bedrock(&s, MOCK_AWS_ACCESS_KEY_ID, MOCK_AWS_SECRET_ACCESS_KEY, None).await;
    let mut body = chat("bedrock/claude");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r =
        s.gw.http
            .post(s.gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-switchyard-provider"], "bedrock");
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let chunks = sse_data(&text);
    assert_eq!(streamed_text(&chunks), "echo: Hello there");
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let usage = chunks
        .iter()
        .find(|c| c["usage"].is_object())
        .expect("usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    let req = &s.mock.requests()[0];
    assert_eq!(
        req.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    );
    assert_eq!(req.header("accept"), Some("application/vnd.amazon.eventstream"));
}

#[tokio::test]
async fn bedrock_tool_calls_reach_openai_clients() {
    let s = setup().await;
    add_bedrock(&s, MOCK_AWS_ACCESS_KEY_ID, MOCK_AWS_SECRET_ACCESS_KEY, None).await;
    let mut body = chat("bedrock/tool-model");
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let (st, out) = s.gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    let call = &out["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_mock01");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Berlin\"}");
    let sent = s.mock.requests()[0].json();
    assert_eq!(sent["toolConfig"]["tools"][0]["toolSpec"]["name"], "get_weather");

    body["stream"] = json!(true);
    let r =
        s.gw.http
            .post(s.gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
    let chunks = sse_data(&r.text().await.unwrap());
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"Berlin\"}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn bedrock_reaches_anthropic_clients_json_and_stream() {
    let s = setup().await;
    add_bedrock(&s, MOCK_AWS_ACCESS_KEY_ID, MOCK_AWS_SECRET_ACCESS_KEY, None).await;
    let req = json!({"model": "bedrock/claude", "max_tokens": 100,
                     "messages": [{"role": "user", "content": "Hello there"}]});
    let r =
        s.gw.http
            .post(s.gw.url("/anthropic/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(&req)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "echo: Hello there");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(s.mock.requests()[0].json()["inferenceConfig"]["maxTokens"], 100);

    let mut stream_req = req.clone();
    stream_req["stream"] = json!(true);
    let r =
        s.gw.http
            .post(s.gw.url("/anthropic/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(&stream_req)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    let streamed: String = sse_data(&text)
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(streamed, "echo: Hello there");
}

#[tokio::test]
async fn bedrock_errors_keep_their_meaning() {
    let s = setup().await;
    add_bedrock(&s, MOCK_AWS_ACCESS_KEY_ID, MOCK_AWS_SECRET_ACCESS_KEY, None).await;
    let (st, body) =
        s.gw.post("/v1/chat/completions", chat("bedrock/throttle-model"))
            .await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(assert_error_shape(&body, 429)["type"], "rate_limit_error");

    // An exception after the stream started: the client sees the text, then an error, never [DONE].
    let r =
        s.gw.post_stream("/v1/chat/completions", "bedrock/midthrottle-model")
            .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(text.contains("Too many tokens"), "{text}");
}

#[tokio::test]
async fn an_exception_as_the_first_stream_event_is_a_real_status_and_falls_back() {
    let s = setup().await;
    add_bedrock(&s, MOCK_AWS_ACCESS_KEY_ID, MOCK_AWS_SECRET_ACCESS_KEY, None).await;
    let r =
        s.gw.post_stream("/v1/chat/completions", "bedrock/startthrottle-model")
            .await;
    assert_eq!(r.status(), 429, "nothing was committed, so the status is real");
    let body: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&body, 429)["type"], "rate_limit_error");

    // With a configured fallback the stream is served elsewhere instead.
    s.gw.add_openai_compatible("backup", &s.mock.base_url(), AZURE_KEY)
        .await;
    let (st, b) =
        s.gw.put("/api/providers/bedrock", json!({"fallbacks": ["backup"]}))
            .await;
    assert_eq!(st, 200, "{b}");
    let r =
        s.gw.post_stream("/v1/chat/completions", "bedrock/startthrottle-model")
            .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "backup");
    let trail = r.headers()["x-switchyard-trail"].to_str().unwrap().to_owned();
    assert!(
        trail.starts_with("bedrock/startthrottle-model:aws-main=429"),
        "{trail}"
    );
    assert_eq!(
        streamed_text(&sse_data(&r.text().await.unwrap())),
        "echo: Hello there"
    );
}

#[tokio::test]
async fn a_bedrock_api_key_is_sent_as_a_bearer_token() {
    let s = setup().await;
    let (st, _) =
        s.gw.post(
            "/api/providers",
            json!({"provider": "bedrock", "network_config": {"base_url": origin(&s.mock)}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, b) =
        s.gw.post(
            "/api/providers/bedrock/keys",
            json!({"name": "api-key", "value": AZURE_KEY, "models": ["*"]}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, body) =
        s.gw.post("/v1/chat/completions", chat("bedrock/amazon.nova-lite-v1:0"))
            .await;
    assert_eq!(st, 200, "{body}");
    let req = &s.mock.requests()[0];
    assert_eq!(req.path, "/model/amazon.nova-lite-v1%3A0/converse");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {AZURE_KEY}").as_str())
    );
    assert_eq!(req.header("x-amz-date"), None);
}

#[tokio::test]
async fn bedrock_key_config_is_validated_and_redacted() {
    let s = setup().await;
    let (st, _) = s.gw.post("/api/providers", json!({"provider": "bedrock"})).await;
    assert_eq!(
        st, 200,
        "bedrock needs no base_url: the region decides the endpoint"
    );
    let (st, b) =
        s.gw.post(
            "/api/providers/bedrock/keys",
            json!({"name": "k", "bedrock_key_config": {"access_key": MOCK_AWS_ACCESS_KEY_ID}}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(
        assert_error_shape(&b, 400)["param"],
        "bedrock_key_config.secret_key"
    );
    let (st, b) =
        s.gw.post(
            "/api/providers/bedrock/keys",
            json!({"name": "k", "models": ["*"], "bedrock_key_config": {
                "access_key": MOCK_AWS_ACCESS_KEY_ID, "secret_key": MOCK_AWS_SECRET_ACCESS_KEY,
                "session_token": MOCK_AWS_SESSION_TOKEN, "region": "us-west-2"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let text = b.to_string();
    assert!(
        !text.contains(MOCK_AWS_SECRET_ACCESS_KEY) && !text.contains(MOCK_AWS_SESSION_TOKEN),
        "{b}"
    );
    assert_eq!(b["bedrock_key_config"]["region"], "us-west-2");
    // Sending the redacted view back keeps the stored secret.
    let id = b["id"].as_str().unwrap().to_owned();
    let (st, b2) =
        s.gw.put(
            &format!("/api/providers/bedrock/keys/{id}"),
            json!({"bedrock_key_config": b["bedrock_key_config"]}),
        )
        .await;
    assert_eq!(st, 200, "{b2}");
    assert_eq!(b2["bedrock_key_config"], b["bedrock_key_config"]);
    // azure_key_config on a Bedrock provider is a clear 400.
    let (st, b) =
        s.gw.post(
            "/api/providers/bedrock/keys",
            json!({"name": "k2", "value": "x", "azure_key_config": {"endpoint": "https://r"}}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error"]["param"], "azure_key_config");
}

#[tokio::test]
async fn groq_preset_needs_only_a_key() {
    let s = setup().await;
    let (st, b) = s.gw.post("/api/providers", json!({"provider": "groq"})).await;
    assert_eq!(st, 200, "{b}");
    let (st, b) =
        s.gw.post(
            "/api/providers/groq/keys",
            json!({"name": "g", "value": "gsk_test_0123456789", "models": ["*"]}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, p) = s.gw.get("/api/providers/groq").await;
    assert_eq!(p["network_config"]["base_url"], "https://api.groq.com/openai/v1");
    // The same preset pointed at a local endpoint answers through the plain OpenAI path.
    let (st, _) =
        s.gw.put(
            "/api/providers/groq",
            json!({"network_config": {"base_url": s.mock.base_url()}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) =
        s.gw.put(
            &format!(
                "/api/providers/groq/keys/{}",
                s.gw.get("/api/providers/groq/keys").await.1["keys"][0]["id"]
                    .as_str()
                    .unwrap_or_default()
            ),
            json!({"value": AZURE_KEY}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) =
        s.gw.post("/v1/chat/completions", chat("groq/llama-3.3-70b"))
            .await;
    assert_eq!(st, 200, "{body}");
    let req = &s.mock.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {AZURE_KEY}").as_str())
    );
    assert_eq!(req.json()["model"], "llama-3.3-70b");
}

#[tokio::test]
async fn mistral_gets_nine_character_tool_call_ids_paired_consistently() {
    let s = setup().await;
    let (st, _) =
        s.gw.post(
            "/api/providers",
            json!({"provider": "mistral", "network_config": {"base_url": s.mock.base_url()}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) =
        s.gw.post(
            "/api/providers/mistral/keys",
            json!({"name": "m", "value": AZURE_KEY, "models": ["*"]}),
        )
        .await;
    assert_eq!(st, 200);
    let body = json!({"model": "mistral/mistral-large-latest", "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a1b2c3d4e5f6g7h8", "type": "function", "function": {"name": "w", "arguments": "{}"}},
            {"id": "Xy7Kp2Qr9", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_a1b2c3d4e5f6g7h8", "content": "sunny"},
        {"role": "tool", "tool_call_id": "Xy7Kp2Qr9", "content": "rainy"},
        {"role": "user", "content": "Thanks"}
    ]});
    let (st, out) = s.gw.post("/v1/chat/completions", body).await;
    assert_eq!(st, 200, "{out}");
    let sent = s.mock.requests()[0].json();
    let first = sent["messages"][1]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.len(), 9);
    assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()), "{first}");
    assert_eq!(sent["messages"][2]["tool_call_id"], first.as_str());
    assert_eq!(sent["messages"][1]["tool_calls"][1]["id"], "Xy7Kp2Qr9");
    assert_eq!(sent["messages"][3]["tool_call_id"], "Xy7Kp2Qr9");

    // The same history sent again maps to the same id (deterministic across requests).
    s.mock.reset();
    let again = json!({"model": "mistral/m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "call_a1b2c3d4e5f6g7h8", "type": "function",
            "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_a1b2c3d4e5f6g7h8", "content": "sunny"}
    ]});
    s.gw.post("/v1/chat/completions", again).await;
    assert_eq!(
        s.mock.requests()[0].json()["messages"][2]["tool_call_id"],
        first.as_str()
    );

    // Other OpenAI-compatible providers get the ids untouched.
    s.mock.reset();
    s.gw.add_openai_compatible("plain", &s.mock.base_url(), AZURE_KEY)
        .await;
    let plain = json!({"model": "plain/m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "call_a1b2c3d4e5f6g7h8", "type": "function",
            "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_a1b2c3d4e5f6g7h8", "content": "sunny"}
    ]});
    s.gw.post("/v1/chat/completions", plain).await;
    assert_eq!(
        s.mock.requests()[0].json()["messages"][2]["tool_call_id"],
        "call_a1b2c3d4e5f6g7h8"
    );
}
