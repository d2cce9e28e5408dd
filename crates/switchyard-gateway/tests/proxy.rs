//! The inference proxy against mock upstreams that behave like mittwald/vLLM and OpenAI.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error_shape, chat, TestGateway};
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

async fn setup() -> (TestGateway, MockUpstream, tempfile::TempDir) {
    let mock = start(MockOptions {
        api_key: Some("sk-upstream-secret".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    gw.add_openai_compatible("mittwald", &mock.base_url(), "sk-upstream-secret")
        .await;
    (gw, mock, dir)
}

async fn no_retries(gw: &TestGateway, provider: &str) {
    let (s, b) = gw
        .put(
            &format!("/api/providers/{provider}"),
            json!({"network_config": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 1000}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// Reads an SSE body into its `data:` payloads.
fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn body_is_forwarded_with_only_the_model_rewritten() {
    let (gw, mock, _dir) = setup().await;
    let body = json!({
        "model": "mittwald/gpt-oss-120b",
        "messages": [{"role": "user", "content": "Hi there"}],
        "chat_template_kwargs": {"enable_thinking": true},
        "top_k": 20,
        "reasoning_effort": "high",
        "fallbacks": ["mittwald/gpt-4o"]
    });
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("authorization", "Bearer client-credential")
        .header("x-api-key", "client-credential")
        .header("x-bf-eh-x-campaign", "spring-sale")
        .header("x-bf-eh-authorization", "Bearer smuggled")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "mittwald");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "echo: Hi there");
    assert_eq!(
        answer["choices"][0]["message"]["reasoning_content"], "thinking",
        "unknown response fields pass"
    );
    assert_eq!(answer["extra_fields"]["provider"], "mittwald");
    assert_eq!(answer["extra_fields"]["model_requested"], "mittwald/gpt-oss-120b");

    let seen = mock.requests().pop().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream-secret"));
    assert_eq!(
        seen.header("x-api-key"),
        None,
        "client credentials never reach the upstream"
    );
    assert_eq!(seen.header("x-campaign"), Some("spring-sale"));
    let sent = seen.json();
    let mut expected = body.clone();
    expected["model"] = json!("gpt-oss-120b");
    expected.as_object_mut().unwrap().remove("fallbacks");
    assert_eq!(sent, expected);
}

#[tokio::test]
async fn streams_pass_through_with_usage_and_done() {
    let (gw, _mock, _dir) = setup().await;
    let mut body = chat("mittwald/echo");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = gw
        .http
        .post(gw.url("/openai/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    let payloads = sse_payloads(&text);
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(content, "echo: Hello there");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event_not_a_clean_finish() {
    let (gw, _mock, _dir) = setup().await;
    let text = gw
        .post_stream("/v1/chat/completions", "mittwald/cut")
        .await
        .text()
        .await
        .unwrap();
    let payloads = sse_payloads(&text);
    assert!(!payloads.iter().any(|p| p == "[DONE]"));
    let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed the stream"),
        "{last}"
    );
}

#[tokio::test]
async fn upstream_errors_keep_their_status_in_the_standard_shape() {
    let (gw, _mock, _dir) = setup().await;
    // Status mapping only: no retries, and no ejection by the circuit breaker across the cases.
    no_retries(&gw, "mittwald").await;
    let cases = [
        ("mittwald/fail", 500, None),
        ("mittwald/unavail", 503, None),
        ("mittwald/ratelimit", 429, Some("rate_limit_exceeded")),
        ("mittwald/flat400", 400, Some("context_length_exceeded")),
        ("mittwald/str401", 401, None),
    ];
    for (model, status, code) in cases {
        let (s, body) = gw.post("/v1/chat/completions", chat(model)).await;
        assert_eq!(s, status, "{model}: {body}");
        let err = assert_error_shape(&body, status);
        assert_eq!(body["is_bifrost_error"], false, "relayed from upstream: {body}");
        if let Some(code) = code {
            assert_eq!(err["code"], code, "{body}");
        }
        assert_eq!(body["extra_fields"]["provider"], "mittwald");
    }
    let (_, body) = gw.post("/v1/chat/completions", chat("mittwald/str401")).await;
    assert_eq!(body["error"]["message"], "Unauthorized");
    assert_eq!(body["error"]["type"], "authentication_error");
    let (_, body) = gw.post("/v1/chat/completions", chat("mittwald/flat400")).await;
    assert_eq!(body["error"]["param"], "messages");

    // A connection reset with no HTTP status (mittwald dedicated under overload) is a 502.
    let (s, body) = gw.post("/v1/chat/completions", chat("mittwald/reset")).await;
    assert_eq!(s, 502, "{body}");
    assert_eq!(assert_error_shape(&body, 502)["code"], "upstream_unreachable");
}

#[tokio::test]
async fn caller_mistakes_are_4xx_with_a_helpful_message() {
    let (gw, mock, _dir) = setup().await;
    let raw = |body: &'static str| {
        let gw = &gw;
        async move {
            let r = gw
                .http
                .post(gw.url("/v1/chat/completions"))
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = raw("{not json").await;
    assert_eq!(s, 400);
    assert!(b["error"]["message"].as_str().unwrap().contains("not valid JSON"));
    let (s, b) = raw(r#"{"messages":[]}"#).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("model")));
    let (s, b) = raw(r#"{"model":"mittwald/echo"}"#).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("messages")));
    let (s, b) = raw(r#"{"model":"mittwald/echo","messages":[],"stream":"yes"}"#).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("stream")));

    let (s, b) = gw
        .post("/v1/chat/completions", chat("gemini/gemini-2.5-pro"))
        .await;
    assert_eq!(s, 404);
    assert_eq!(b["error"]["code"], "provider_not_configured");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("POST /api/providers"));

    // Bare models are served by '*' keys; a key limited to other models explains itself.
    gw.post(
        "/api/providers",
        json!({"provider": "openai", "network_config": {"base_url": mock.base_url()}}),
    )
    .await;
    gw.post(
        "/api/providers/openai/keys",
        json!({"name": "premium-only", "value": "k", "models": ["PREMIUM"]}),
    )
    .await;
    let (s, b) = gw.post("/v1/chat/completions", chat("openai/gpt-4o")).await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("premium-only"),
        "{b}"
    );

    let big = format!(
        r#"{{"model":"mittwald/echo","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2 << 20)
    );
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_error_shape(&r.json().await.unwrap(), 413);
    assert_eq!(mock.call_count("chat"), 0, "none of these reached the upstream");
}

#[tokio::test]
async fn slow_upstreams_time_out_with_504() {
    let (gw, _mock, _dir) = setup().await;
    no_retries(&gw, "mittwald").await;
    gw.put(
        "/api/providers/mittwald",
        json!({"network_config": {"default_request_timeout_in_seconds": 1}}),
    )
    .await;
    for stream in [false, true] {
        let mut body = chat("mittwald/slow-3000");
        body["stream"] = json!(stream);
        let started = Instant::now();
        let (s, b) = gw.post("/v1/chat/completions", body).await;
        assert_eq!(s, 504, "{b}");
        assert_eq!(b["error"]["code"], "request_timed_out");
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("default_request_timeout_in_seconds"));
        assert!(started.elapsed() < Duration::from_millis(2500));
    }
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_stream() {
    let (gw, mock, _dir) = setup().await;
    let r = gw.post_stream("/v1/chat/completions", "mittwald/drip").await;
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(3);
    while mock.cancelled_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        mock.cancelled_streams(),
        1,
        "the upstream stream must end when the client goes away"
    );
}

#[tokio::test]
async fn base_url_works_with_and_without_v1() {
    let mock = start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    gw.add_openai_compatible("with-v1", &format!("{}/", mock.base_url()), "k")
        .await;
    gw.add_openai_compatible("without-v1", &format!("http://{}", mock.addr()), "k")
        .await;
    for p in ["with-v1", "without-v1"] {
        let (s, b) = gw.post("/v1/chat/completions", chat(&format!("{p}/echo"))).await;
        assert_eq!(s, 200, "{p}: {b}");
    }
    assert!(mock.requests().iter().all(|r| r.path == "/v1/chat/completions"));
}

#[tokio::test]
async fn models_are_listed_per_provider_within_key_allowlists() {
    let (gw, mock, _dir) = setup().await;
    gw.post(
        "/api/providers",
        json!({"provider": "openai", "network_config": {"base_url": mock.base_url()}}),
    )
    .await;
    gw.post(
        "/api/providers/openai/keys",
        json!({"name": "ded", "value": "sk-upstream-secret", "models": ["gpt-oss-120b", "PREMIUM"]}),
    )
    .await;
    for path in ["/v1/models", "/openai/v1/models"] {
        let (s, b) = gw.get(path).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["object"], "list");
        let ids: Vec<&str> = b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"mittwald/Qwen3-Embedding-8B"), "{ids:?}");
        assert!(
            ids.contains(&"openai/gpt-oss-120b") && ids.contains(&"openai/PREMIUM"),
            "{ids:?}"
        );
        assert!(
            !ids.contains(&"openai/echo"),
            "outside the key's allowlist: {ids:?}"
        );
        let m = b["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "mittwald/gpt-oss-120b")
            .unwrap();
        assert_eq!(m["max_model_len"], 131072, "upstream extras pass through");
        assert_eq!(m["owned_by"], "mittwald");
    }
    let (_, b) = gw.get("/v1/models?provider=openai").await;
    assert!(b["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["owned_by"] == "openai"));
}

#[tokio::test]
async fn weights_split_traffic_and_changes_apply_to_the_next_request() {
    let mock = start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    gw.post(
        "/api/providers",
        json!({"provider": "openai", "network_config": {"base_url": mock.base_url()}}),
    )
    .await;
    gw.post(
        "/api/providers/openai/keys",
        json!({"name": "a", "value": "key-a", "models": ["*"], "weight": 3.0}),
    )
    .await;
    let (_, kb) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "b", "value": "key-b", "models": ["*"], "weight": 1.0}),
        )
        .await;
    let n = 200;
    for _ in 0..n {
        assert_eq!(gw.post("/v1/chat/completions", chat("openai/echo")).await.0, 200);
    }
    let a = mock
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer key-a"))
        .count();
    assert!(
        (120..=180).contains(&a),
        "weight 3:1 should give ~150 of 200 to key a, got {a}"
    );

    // Disable key a: from the next request on, every call uses key b, without a restart.
    mock.reset();
    let id_a = gw.get("/api/providers/openai/keys").await.1["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    gw.put(
        &format!("/api/providers/openai/keys/{id_a}"),
        json!({"enabled": false}),
    )
    .await;
    for _ in 0..20 {
        gw.post("/v1/chat/completions", chat("openai/echo")).await;
    }
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer key-b")));
    assert!(kb["id"].is_string());
}

#[tokio::test]
async fn allowed_requests_gate_what_a_custom_provider_accepts() {
    let mock = start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    gw.post(
        "/api/providers",
        json!({"provider": "emb-only", "network_config": {"base_url": mock.base_url()},
               "custom_provider_config": {"base_provider_type": "openai", "allowed_requests": {"embedding": true}}}),
    )
    .await;
    gw.post(
        "/api/providers/emb-only/keys",
        json!({"name": "k", "value": "k", "models": ["*"]}),
    )
    .await;
    let (s, b) = gw.post("/v1/chat/completions", chat("emb-only/echo")).await;
    assert_eq!(s, 403, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed_requests"));
    assert_eq!(mock.call_count("chat"), 0);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (mut gw, _mock, _dir) = setup().await;
    let http = gw.http.clone();
    let url = gw.url("/v1/chat/completions");
    let in_flight = tokio::spawn(async move { http.post(url).json(&chat("mittwald/slow-700")).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = gw.addr;
    gw.begin_shutdown();
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    gw.wait_stopped().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}
