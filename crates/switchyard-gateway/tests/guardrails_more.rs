//! Guardrails on the remaining surfaces, through the real server against the mock upstream (which
//! streams its echo word by word, so a match arrives split across chunks): Gemini streams
//! (`:streamGenerateContent`), the Responses API (JSON and its named events) and legacy completions.

mod common;

use common::guard::{guardrail, setup, upstream_saw, IBAN};
use common::TestGateway;
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

/// No piece of the IBAN longer than two characters is anywhere in `text`.
fn assert_no_iban(text: &str) {
    for part in IBAN.split(' ').filter(|p| p.len() > 2) {
        assert!(
            !text.contains(part),
            "{part} of the IBAN reached the client: {text}"
        );
    }
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
