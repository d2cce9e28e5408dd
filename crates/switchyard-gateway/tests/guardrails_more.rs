//! Guardrails on the remaining surfaces, through the real server against the mock upstream (which
//! streams its echo word by word, so a match arrives split across chunks): Gemini streams
//! (`:streamGenerateContent`), the Responses API (JSON and its named events) and legacy completions.

mod common;

use common::guard::{assert_no_iban, guardrail, setup, upstream_saw, IBAN};
use common::{assert_error_shape, TestGateway};
use serde_json::{json, Value};

/// POSTs `body` to `path`; the status and the raw answer text.
async fn post_text(gw: &TestGateway, path: &str, body: &Value) -> (u16, String) {
    let r = gw.http.post(gw.url(path)).json(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The JSON payloads of an SSE answer.
fn events(sse: &str) -> Vec<Value> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

/// Redacts, then blocks, the IBAN in a streamed Gemini answer: from a Gemini provider (relayed)
/// and from an OpenAI-compatible one (translated into Gemini events).
#[tokio::test]
async fn gemini_streams_are_redacted_and_blocked() {
    let s = setup().await;
    let gw = &s.gw;
    let id = guardrail(
        gw,
        json!({"name": "iban-out", "type": "pii", "entities": ["iban"], "stage": "response",
               "action": "redact"}),
    )
    .await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": format!("Konto {IBAN} bitte")}]}]});
    for model in ["gemini-2.5-flash", "mittwald-shared%2Fecho"] {
        let path = format!("/genai/v1beta/models/{model}:streamGenerateContent?alt=sse");
        let (status, sse) = post_text(gw, &path, &body).await;
        assert_eq!(status, 200, "{sse}");
        assert!(
            upstream_saw(&s.mock).contains(IBAN),
            "the request stage is not on"
        );
        let text: String = events(&sse)
            .iter()
            .flat_map(|e| e["candidates"].as_array().cloned().unwrap_or_default())
            .flat_map(|c| c["content"]["parts"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(text, "echo: Konto [IBAN_REDACTED] bitte", "{model}: {sse}");
        assert_no_iban(&sse);
    }

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "block"}))
        .await;
    for model in ["gemini-2.5-flash", "mittwald-shared%2Fecho"] {
        let path = format!("/genai/v1beta/models/{model}:streamGenerateContent?alt=sse");
        let (status, sse) = post_text(gw, &path, &body).await;
        assert_eq!(status, 200, "{sse}");
        let error = events(&sse)
            .into_iter()
            .find_map(|e| e.get("error").cloned())
            .unwrap_or_else(|| panic!("{model}: no error event: {sse}"));
        assert_eq!(error["code"], 400, "{sse}");
        assert_eq!(error["status"], "INVALID_ARGUMENT", "{sse}");
        assert_eq!(error["details"][0]["reason"], "guardrail_blocked", "{sse}");
        assert!(error["message"].as_str().unwrap().contains("iban-out"), "{sse}");
        assert_no_iban(&sse);
        assert!(!sse.contains("bitte"), "nothing after the block: {sse}");
    }
}

/// The answer text of a Responses API stream (its deltas), its error event if any, and the texts its
/// closing events repeat.
fn responses_stream(sse: &str) -> (String, Option<Value>, Vec<String>) {
    let (mut text, mut error, mut repeated) = (String::new(), None, Vec::new());
    for e in events(sse) {
        match e["type"].as_str().unwrap_or_default() {
            "response.output_text.delta" => text.push_str(e["delta"].as_str().unwrap()),
            "response.output_text.done" => repeated.push(e["text"].as_str().unwrap().to_owned()),
            "response.completed" => repeated.push(
                e["response"]["output"][0]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            "error" => error = Some(e),
            _ => {}
        }
    }
    (text, error, repeated)
}

/// The Responses API on both paths (served natively by an OpenAI-compatible provider, translated for
/// an Anthropic one): `instructions` and `input` on the request stage; the `output` text of the JSON
/// answer and of the stream (deltas split mid-IBAN and the closing events that repeat the text) on
/// the response stage.
#[tokio::test]
async fn the_responses_api_is_guarded_on_request_and_answer() {
    let s = setup().await;
    let gw = &s.gw;
    let id = guardrail(
        gw,
        json!({"name": "iban", "type": "pii", "entities": ["iban", "email"], "action": "block"}),
    )
    .await;
    let ask = |model: &str, stream: bool| {
        json!({"model": model, "instructions": "Mail to a@b.de", "stream": stream,
               "input": [{"role": "user", "content": [{"type": "input_text", "text": format!("Konto {IBAN} bitte")}]}]})
    };
    let before = s.mock.requests().len();
    let (status, b) = gw.post("/v1/responses", ask("mittwald-shared/echo", false)).await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(assert_error_shape(&b, 400)["code"], "guardrail_blocked");
    assert_eq!(s.mock.requests().len(), before, "nothing went upstream");

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "redact"}))
        .await;
    for model in ["mittwald-shared/echo", "anthropic/claude-echo"] {
        let (status, b) = gw.post("/v1/responses", ask(model, false)).await;
        assert_eq!(status, 200, "{b}");
        let sent = upstream_saw(&s.mock);
        assert!(
            sent.contains("Konto [IBAN_REDACTED] bitte") && sent.contains("Mail to [EMAIL_REDACTED]"),
            "{model}: {sent}"
        );
        assert!(!sent.contains("a@b.de") && !sent.contains("DE89"), "{sent}");
    }

    // The response stage: the upstream sees the IBAN, the client never does.
    gw.put(&format!("/api/guardrails/{id}"), json!({"stage": "response"}))
        .await;
    for model in ["mittwald-shared/echo", "anthropic/claude-echo"] {
        let (status, b) = gw.post("/v1/responses", ask(model, false)).await;
        assert_eq!(status, 200, "{b}");
        assert!(upstream_saw(&s.mock).contains(IBAN), "the request stage is off");
        assert_eq!(
            b["output"][0]["content"][0]["text"], "echo: Konto [IBAN_REDACTED] bitte",
            "{model}: {b}"
        );
        let (status, sse) = post_text(gw, "/v1/responses", &ask(model, true)).await;
        assert_eq!(status, 200, "{sse}");
        let (text, error, repeated) = responses_stream(&sse);
        assert!(error.is_none(), "{sse}");
        assert_eq!(text, "echo: Konto [IBAN_REDACTED] bitte", "{model}: {sse}");
        assert!(!repeated.is_empty(), "{sse}");
        assert!(repeated.iter().all(|t| *t == text), "{model}: {repeated:?}");
        assert_no_iban(&sse);
    }

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "block"}))
        .await;
    for model in ["mittwald-shared/echo", "anthropic/claude-echo"] {
        let (status, b) = gw.post("/v1/responses", ask(model, false)).await;
        assert_eq!(status, 400, "{b}");
        assert_eq!(assert_error_shape(&b, 400)["code"], "guardrail_blocked");
        let (status, sse) = post_text(gw, "/v1/responses", &ask(model, true)).await;
        assert_eq!(status, 200, "{sse}");
        let (text, error, _) = responses_stream(&sse);
        assert_eq!(
            error.expect("an error event")["code"],
            "guardrail_blocked",
            "{sse}"
        );
        assert_eq!(text, "echo: Konto ", "only the text before the match: {sse}");
        assert_no_iban(&sse);
    }
}

/// Legacy completions: `prompt` on the request stage, `choices[].text` of the JSON answer and of
/// the stream on the response stage.
#[tokio::test]
async fn legacy_completions_are_guarded_on_request_and_answer() {
    let s = setup().await;
    let gw = &s.gw;
    let id = guardrail(
        gw,
        json!({"name": "iban", "type": "pii", "entities": ["iban"], "action": "block"}),
    )
    .await;
    let ask = |stream: bool| json!({"model": "mittwald-shared/echo", "prompt": format!("Konto {IBAN} bitte"), "stream": stream});
    let before = s.mock.requests().len();
    let (status, b) = gw.post("/v1/completions", ask(false)).await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(assert_error_shape(&b, 400)["code"], "guardrail_blocked");
    assert_eq!(s.mock.requests().len(), before, "nothing went upstream");

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "redact"}))
        .await;
    let (status, b) = gw.post("/v1/completions", ask(false)).await;
    assert_eq!(status, 200, "{b}");
    assert!(
        upstream_saw(&s.mock).contains("Konto [IBAN_REDACTED] bitte"),
        "{}",
        upstream_saw(&s.mock)
    );

    gw.put(&format!("/api/guardrails/{id}"), json!({"stage": "response"}))
        .await;
    let (status, b) = gw.post("/v1/completions", ask(false)).await;
    assert_eq!(status, 200, "{b}");
    assert!(upstream_saw(&s.mock).contains(IBAN));
    assert_eq!(
        b["choices"][0]["text"], "echo: Konto [IBAN_REDACTED] bitte",
        "{b}"
    );
    let (status, sse) = post_text(gw, "/v1/completions", &ask(true)).await;
    assert_eq!(status, 200, "{sse}");
    let text: String = events(&sse)
        .iter()
        .flat_map(|e| e["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "echo: Konto [IBAN_REDACTED] bitte", "{sse}");
    assert_no_iban(&sse);

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "block"}))
        .await;
    let (status, b) = gw.post("/v1/completions", ask(false)).await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(assert_error_shape(&b, 400)["code"], "guardrail_blocked");
    let (_, sse) = post_text(gw, "/v1/completions", &ask(true)).await;
    let error = events(&sse)
        .into_iter()
        .find_map(|e| e.get("error").cloned())
        .unwrap_or_else(|| panic!("no error event: {sse}"));
    assert_eq!(error["code"], "guardrail_blocked", "{sse}");
    assert_no_iban(&sse);
    assert!(!sse.contains("[DONE]"), "{sse}");
}

/// A webhook that answers `NONE` and counts its calls.
async fn counting_webhook() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/guard",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let counter = counter.clone();
            async move {
                assert_eq!(body["input_type"], "response");
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"action": "NONE"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/guard"), calls)
}

/// A response-stage webhook checks whole answers; a stream it cannot check follows its `on_error`:
/// `block` (the default) refuses the streamed request before anything goes upstream, `allow` lets
/// the stream on without calling it. JSON answers are checked either way.
#[tokio::test]
async fn response_webhooks_on_streams_follow_on_error() {
    use std::sync::atomic::Ordering;
    let s = setup().await;
    let gw = &s.gw;
    let (url, calls) = counting_webhook().await;
    let id = guardrail(
        gw,
        json!({"name": "dlp", "type": "webhook", "url": url, "stage": "response", "timeout_ms": 2000}),
    )
    .await;
    let chat = |stream: bool| {
        json!({"model": "mittwald-shared/echo", "stream": stream,
               "messages": [{"role": "user", "content": "Hallo"}]})
    };
    let (status, b) = gw.post("/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the JSON answer was checked");

    let before = s.mock.requests().len();
    for (path, body) in [
        ("/v1/chat/completions", chat(true)),
        (
            "/v1/responses",
            json!({"model": "mittwald-shared/echo", "input": "Hallo", "stream": true}),
        ),
        (
            "/genai/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json!({"contents": [{"role": "user", "parts": [{"text": "Hallo"}]}]}),
        ),
    ] {
        let (status, text) = post_text(gw, path, &body).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(
            text.contains("'dlp'") && text.contains("without stream"),
            "{path}: {text}"
        );
    }
    let (_, b) = gw.post("/v1/chat/completions", chat(true)).await;
    assert_eq!(assert_error_shape(&b, 400)["code"], "guardrail_blocked");
    assert_eq!(s.mock.requests().len(), before, "nothing went upstream");

    gw.put(&format!("/api/guardrails/{id}"), json!({"on_error": "allow"}))
        .await;
    let (status, sse) = post_text(gw, "/v1/chat/completions", &chat(true)).await;
    assert_eq!(status, 200, "{sse}");
    assert!(sse.contains("Hallo") && sse.contains("[DONE]"), "{sse}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not called on the stream");
}
