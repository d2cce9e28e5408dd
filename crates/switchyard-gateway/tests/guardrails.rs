//! Guardrails through the real server against the mock upstream: each detector × action × stage,
//! streams with a match split across chunks (the mock streams its echo word by word), webhooks
//! (allow, block, redact, hanging and unreachable under both `on_error`s), scopes, `config.json`, the
//! Anthropic route, log rows and metrics that name the guardrail and never the matched text.

mod common;

use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use common::guard::{guardrail, setup, upstream_saw, Setup, IBAN};
use common::{assert_error_shape, create_vk, TestGateway};
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions};

fn say(text: &str) -> Value {
    json!({"model": "mittwald-shared/echo", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": text}]}]})
}

/// Waits for `n` log rows (the writer batches in the background).
async fn log_rows(gw: &TestGateway, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, page) = gw.get("/api/logs?limit=1000&sort_by=timestamp&order=asc").await;
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= n || Instant::now() > deadline {
            assert_eq!(logs.len(), n, "{page}");
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stream_text(gw: &TestGateway, body: Value) -> String {
    let mut body = body;
    body["stream"] = json!(true);
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The assistant text of an OpenAI stream, and its error event if any.
fn stream_content(sse: &str) -> (String, Option<Value>) {
    let mut text = String::new();
    let mut error = None;
    for data in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if v.get("error").is_some() {
            error = Some(v["error"].clone());
        }
        for c in v["choices"].as_array().into_iter().flatten() {
            text.push_str(c["delta"]["content"].as_str().unwrap_or(""));
        }
    }
    (text, error)
}

#[tokio::test]
async fn the_api_validates_names_fields_and_updates_in_part() {
    let s = setup().await;
    let gw = &s.gw;
    for (body, param) in [
        (json!({"name": "a", "type": "nope"}), "type"),
        (
            json!({"name": "a", "type": "pii", "entities": ["email"], "stage": "later"}),
            "stage",
        ),
        (
            json!({"name": "a", "type": "pii", "entities": ["email"], "action": "shout"}),
            "action",
        ),
        (
            json!({"name": "a", "type": "regex", "patterns": ["(unclosed"]}),
            "patterns[0]",
        ),
        (
            json!({"name": "a", "type": "pii", "entities": ["ssn"]}),
            "entities[0]",
        ),
        (
            json!({"name": "a", "type": "webhook", "url": "file:///etc/passwd"}),
            "url",
        ),
    ] {
        let (status, b) = gw.post("/api/guardrails", body.clone()).await;
        assert_eq!(status, 400, "{body} → {b}");
        assert_eq!(assert_error_shape(&b, 400)["param"], param, "{b}");
    }
    let id = guardrail(gw, json!({"name": "pii", "type": "pii", "entities": ["email"]})).await;
    let (status, b) = gw
        .post("/api/guardrails", json!({"name": "pii", "type": "secrets"}))
        .await;
    assert_eq!(status, 409, "{b}");
    let (status, b) = gw
        .put(&format!("/api/guardrails/{id}"), json!({"action": "redact"}))
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        (
            b["guardrail"]["action"].as_str(),
            b["guardrail"]["entities"][0].as_str()
        ),
        (Some("redact"), Some("email"))
    );
    assert_eq!(gw.get("/api/guardrails/nope").await.0, 404);
    assert_eq!(
        gw.put("/api/guardrails/nope", json!({"enabled": false})).await.0,
        404
    );
    let (_, list) = gw.get("/api/guardrails").await;
    assert_eq!(list["guardrails"].as_array().unwrap().len(), 1);
    let (status, b) = gw
        .post(
            &format!("/api/guardrails/{id}/test"),
            json!({"text": "mail a.b@example.org now"}),
        )
        .await;
    assert_eq!(
        (status, &b["decision"], &b["output"]),
        (200, &json!("redact"), &json!("mail [EMAIL_REDACTED] now"))
    );
    assert_eq!(gw.delete(&format!("/api/guardrails/{id}")).await.0, 200);
    assert_eq!(gw.delete(&format!("/api/guardrails/{id}")).await.0, 404);
}

/// Every detector on the request, with each action: block (400, nothing upstream), redact (the
/// upstream sees the placeholder, the rest of the body untouched), log (unchanged, recorded).
#[tokio::test]
async fn request_stage_detectors_block_redact_and_log() {
    let s = setup().await;
    let gw = &s.gw;
    let cases = [
        (
            json!({"type": "pii", "entities": ["email"]}),
            "max.mustermann@example.de",
            "[EMAIL_REDACTED]",
        ),
        (
            json!({"type": "pii", "entities": ["phone"]}),
            "+49 30 1234567",
            "[PHONE_REDACTED]",
        ),
        (
            json!({"type": "pii", "entities": ["iban"]}),
            IBAN,
            "[IBAN_REDACTED]",
        ),
        (
            json!({"type": "pii", "entities": ["credit_card"]}),
            "4111 1111 1111 1111",
            "[CREDIT_CARD_REDACTED]",
        ),
        (
            json!({"type": "secrets"}),
            "AKIAIOSFODNN7EXAMPLE",
            "[SECRET_REDACTED]",
        ),
        (
            json!({"type": "secrets"}),
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "[SECRET_REDACTED]",
        ),
        (
            json!({"type": "regex", "patterns": ["Projekt [A-Z][a-z]+"]}),
            "Projekt Falke",
            "[REDACTED]",
        ),
    ];
    let mut rows = 0;
    for (i, (kind, secret, placeholder)) in cases.iter().enumerate() {
        one_detector(&s, i, kind, secret, placeholder).await;
        rows += 3;
        let logs = log_rows(gw, rows).await;
        let decisions: Vec<Value> = logs[rows - 3..].iter().map(|r| r["guardrails"].clone()).collect();
        for (row, decision) in decisions.iter().zip(["block", "redact", "log"]) {
            let parsed: Value = serde_json::from_str(row.as_str().unwrap_or("null")).unwrap();
            let want = json!([{"guardrail": format!("g{i}"), "decision": decision}]);
            assert_eq!(parsed, want, "{row}");
        }
    }
    let all_logs = log_rows(gw, rows).await;
    for (_, secret, _) in &cases {
        assert!(
            !Value::Array(all_logs.clone()).to_string().contains(secret),
            "{secret} in the logs"
        );
    }
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"switchyard_guardrail_decisions_total{guardrail="g0",decision="block"} 1"#),
        "{metrics}"
    );
}

/// One guardrail through block, redact and log on a chat request.
async fn one_detector(s: &Setup, i: usize, kind: &Value, secret: &str, placeholder: &str) {
    let gw = &s.gw;
    let mut body = kind.clone();
    body["name"] = json!(format!("g{i}"));
    body["action"] = json!("block");
    let id = guardrail(gw, body).await;
    let text = format!("Bitte prüfen: {secret} danke");

    let calls = s.mock.call_count("chat");
    let (status, b) = gw.post("/v1/chat/completions", say(&text)).await;
    assert_eq!(status, 400, "{secret}: {b}");
    let err = assert_error_shape(&b, 400);
    assert_eq!(err["code"], "guardrail_blocked");
    assert!(
        err["message"].as_str().unwrap().contains(&format!("'g{i}'")),
        "{b}"
    );
    assert!(!b.to_string().contains(secret), "{b}");
    assert_eq!(
        s.mock.call_count("chat"),
        calls,
        "nothing went upstream for {secret}"
    );

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "redact"}))
        .await;
    let (status, b) = gw.post("/v1/chat/completions", say(&text)).await;
    assert_eq!(status, 200, "{b}");
    let sent = upstream_saw(&s.mock);
    assert!(!sent.contains(secret), "{secret} reached the upstream: {sent}");
    assert!(
        sent.contains(&format!("Bitte prüfen: {placeholder} danke")),
        "{sent}"
    );
    assert!(sent.contains("Be brief."), "{sent}");

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "log"}))
        .await;
    let (status, _) = gw.post("/v1/chat/completions", say(&text)).await;
    assert_eq!(status, 200);
    assert!(upstream_saw(&s.mock).contains(secret));
    gw.delete(&format!("/api/guardrails/{id}")).await;
}

/// The response stage on JSON answers and streams; the mock echoes the text word by word, so the
/// IBAN arrives split over several chunks.
#[tokio::test]
async fn response_stage_redacts_and_blocks_answers_and_split_streams() {
    let s = setup().await;
    let gw = &s.gw;
    let id = guardrail(
        gw,
        json!({"name": "iban-out", "type": "pii", "entities": ["iban", "email"],
        "stage": "response", "action": "redact"}),
    )
    .await;
    let text = format!("Konto {IBAN} und a@b.de, danke");
    let (status, b) = gw.post("/v1/chat/completions", say(&text)).await;
    assert_eq!(status, 200, "{b}");
    assert!(
        upstream_saw(&s.mock).contains(IBAN),
        "the request stage is not on"
    );
    assert_eq!(
        b["choices"][0]["message"]["content"],
        "echo: Konto [IBAN_REDACTED] und [EMAIL_REDACTED], danke"
    );

    let sse = stream_text(gw, say(&text)).await;
    let (content, error) = stream_content(&sse);
    assert_eq!(
        content, "echo: Konto [IBAN_REDACTED] und [EMAIL_REDACTED], danke",
        "{sse}"
    );
    assert!(error.is_none(), "{sse}");
    common::guard::assert_no_iban(&sse);

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "block"}))
        .await;
    let (status, b) = gw.post("/v1/chat/completions", say(&text)).await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(assert_error_shape(&b, 400)["code"], "guardrail_blocked");

    let sse = stream_text(gw, say(&text)).await;
    let (content, error) = stream_content(&sse);
    assert_eq!(
        error.expect("an error event")["code"],
        "guardrail_blocked",
        "{sse}"
    );
    assert_eq!(content, "echo: Konto ", "only the text before the match: {sse}");
    assert!(!sse.contains("DE89") && !sse.contains("[DONE]"), "{sse}");
}

/// A webhook speaking the Generic Guardrail API, by the text it gets.
async fn webhook_server() -> String {
    async fn decide(Json(body): Json<Value>) -> Json<Value> {
        let texts: Vec<String> = body["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        let all = texts.join(" ");
        assert!(body["input_type"] == "request" || body["input_type"] == "response");
        if all.contains("HANG") {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        Json(if all.contains("BLOCKME") {
            json!({"action": "BLOCKED", "blocked_reason": "policy says no"})
        } else if all.contains("REDACTME") {
            json!({"action": "GUARDRAIL_INTERVENED", "texts": texts.iter().map(|t| t.replace("REDACTME", "[gone]")).collect::<Vec<_>>()})
        } else {
            json!({"action": "NONE"})
        })
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/guard", post(decide)))
            .await
            .unwrap();
    });
    format!("http://{addr}/guard")
}

#[tokio::test]
async fn webhooks_allow_block_redact_and_fail_open_or_closed_in_time() {
    let s = setup().await;
    let gw = &s.gw;
    let url = webhook_server().await;
    let id = guardrail(
        gw,
        json!({"name": "hook", "type": "webhook", "url": url, "timeout_ms": 300, "on_error": "block"}),
    )
    .await;

    assert_eq!(gw.post("/v1/chat/completions", say("all fine")).await.0, 200);
    let (status, b) = gw.post("/v1/chat/completions", say("please BLOCKME")).await;
    assert_eq!(status, 400, "{b}");
    let err = assert_error_shape(&b, 400);
    assert_eq!(err["code"], "guardrail_blocked");
    assert!(err["message"].as_str().unwrap().contains("policy says no"), "{b}");
    let (status, _) = gw.post("/v1/chat/completions", say("keep REDACTME out")).await;
    assert_eq!(status, 200);
    let sent = upstream_saw(&s.mock);
    assert!(
        sent.contains("keep [gone] out") && sent.contains("Be brief."),
        "{sent}"
    );

    let started = Instant::now();
    let (status, b) = gw.post("/v1/chat/completions", say("HANG please")).await;
    assert_eq!(status, 503, "{b}");
    assert_eq!(assert_error_shape(&b, 503)["code"], "guardrail_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    gw.put(&format!("/api/guardrails/{id}"), json!({"on_error": "allow"}))
        .await;
    let started = Instant::now();
    assert_eq!(gw.post("/v1/chat/completions", say("HANG please")).await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(3));

    // Unreachable: a port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/guard", closed.local_addr().unwrap());
    drop(closed);
    gw.put(&format!("/api/guardrails/{id}"), json!({"url": dead}))
        .await;
    assert_eq!(gw.post("/v1/chat/completions", say("hello")).await.0, 200);
    gw.put(&format!("/api/guardrails/{id}"), json!({"on_error": "block"}))
        .await;
    let (status, b) = gw.post("/v1/chat/completions", say("hello")).await;
    assert_eq!(
        (status, &assert_error_shape(&b, 503)["code"]),
        (503, &json!("guardrail_unavailable"))
    );
}

#[tokio::test]
async fn scopes_limit_a_guardrail_to_a_virtual_key_and_a_provider() {
    let s = setup().await;
    let gw = &s.gw;
    let (vk_id, vk) = create_vk(gw, json!({"name": "scoped"})).await;
    let (_, other) = create_vk(gw, json!({"name": "other"})).await;
    guardrail(
        gw,
        json!({"name": "scoped", "type": "pii", "entities": ["email"],
        "scope": {"virtual_key_ids": [vk_id], "providers": ["mittwald-shared"]}}),
    )
    .await;
    let send = |key: String, model: &'static str| {
        let mut body = say("mail me: x@example.com");
        body["model"] = json!(model);
        gw.http
            .post(gw.url("/v1/chat/completions"))
            .header("x-bf-vk", key)
            .json(&body)
            .send()
    };
    assert_eq!(
        send(vk.clone(), "mittwald-shared/echo").await.unwrap().status(),
        400
    );
    assert_eq!(
        send(other.clone(), "mittwald-shared/echo")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(send(vk, "anthropic/claude-echo").await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_anthropic_route_is_guarded_in_its_own_shape() {
    let s = setup().await;
    let gw = &s.gw;
    let id = guardrail(
        gw,
        json!({"name": "cards", "type": "pii", "entities": ["credit_card"], "stage": "both"}),
    )
    .await;
    let body = json!({"model": "anthropic/claude-echo", "max_tokens": 50,
        "system": "Karte 4111 1111 1111 1111 im System",
        "messages": [{"role": "user", "content": "hi"}]});
    let post = |body: Value| {
        gw.http
            .post(gw.url("/anthropic/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", "client-dummy")
            .json(&body)
            .send()
    };
    let r = post(body.clone()).await.unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("'cards'"), "{b}");

    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "redact"}))
        .await;
    let r = post(body.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(upstream_saw(&s.mock).contains("Karte [CREDIT_CARD_REDACTED] im System"));

    // The answer echoes the user turn: redacted in the streamed text blocks too.
    let mut streamed = json!({"model": "anthropic/claude-echo", "max_tokens": 50, "stream": true,
        "messages": [{"role": "user", "content": "Nummer 5500 0000 0000 0004 ok"}]});
    gw.put(&format!("/api/guardrails/{id}"), json!({"stage": "response"}))
        .await;
    let text = post(streamed.clone()).await.unwrap().text().await.unwrap();
    assert!(!text.contains("5500") && !text.contains("0004"), "{text}");
    let joined: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(joined, "echo: Nummer [CREDIT_CARD_REDACTED] ok", "{text}");
    streamed["stream"] = json!(false);
}

#[tokio::test]
async fn config_json_guardrails_are_loaded_and_checked() {
    let mock = start(MockOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = json!({
        "providers": {"openai": {"keys": [{"name": "k", "value": "sk-file-0001", "models": ["*"], "weight": 1.0}],
            "network_config": {"base_url": mock.base_url()}}},
        "guardrails": [{"name": "no-iban", "type": "pii", "entities": ["iban"]}]
    });
    std::fs::write(dir.path().join("config.json"), file.to_string()).unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let (_, list) = gw.get("/api/guardrails").await;
    assert_eq!(list["guardrails"][0]["name"], "no-iban", "{list}");
    let mut body = say(&format!("IBAN {IBAN}"));
    body["model"] = json!("openai/gpt-4o-mini");
    let (status, b) = gw.post("/v1/chat/completions", body).await;
    assert_eq!(
        (status, &b["error"]["code"]),
        (400, &json!("guardrail_blocked")),
        "{b}"
    );
    gw.stop().await;

    let bad = tempfile::tempdir().unwrap();
    let file = json!({"guardrails": [{"name": "x", "type": "pii", "entities": ["shoe_size"]}]});
    std::fs::write(bad.path().join("config.json"), file.to_string()).unwrap();
    let err = switchyard_gateway::Gateway::bind(&switchyard_gateway::ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: bad.path().to_owned(),
        ..Default::default()
    })
    .await
    .err()
    .expect("a bad guardrail stops the start");
    assert!(err.to_string().contains("guardrails[0].entities[0]"), "{err}");
}

#[tokio::test]
async fn embeddings_input_is_guarded() {
    let s = setup().await;
    let gw = &s.gw;
    let id = guardrail(
        gw,
        json!({"name": "mail", "type": "pii", "entities": ["email"], "action": "redact"}),
    )
    .await;
    let body = json!({"model": "mittwald-shared/embed", "input": ["plain", "from a@example.com today"]});
    let (status, b) = gw.post("/v1/embeddings", body.clone()).await;
    assert_eq!(status, 200, "{b}");
    let sent = upstream_saw(&s.mock);
    assert!(
        sent.contains("from [EMAIL_REDACTED] today") && sent.contains("plain"),
        "{sent}"
    );
    assert!(!sent.contains("a@example.com"), "{sent}");
    gw.put(&format!("/api/guardrails/{id}"), json!({"action": "block"}))
        .await;
    let (status, b) = gw.post("/v1/embeddings", body).await;
    assert_eq!(
        (status, &b["error"]["code"]),
        (400, &json!("guardrail_blocked")),
        "{b}"
    );
}

/// With content logging on, a `log` guardrail lets the text go upstream, but the logged request and
/// answer hold the placeholder, never the match.
#[tokio::test]
async fn logged_content_never_holds_a_match() {
    let s = setup().await;
    let gw = &s.gw;
    gw.put(
        "/api/providers/mittwald-shared",
        json!({"store_raw_request_response": true}),
    )
    .await;
    guardrail(
        gw,
        json!({"name": "watch", "type": "pii", "entities": ["iban"], "stage": "both", "action": "log"}),
    )
    .await;
    let (status, b) = gw
        .post("/v1/chat/completions", say(&format!("Konto {IBAN} ok")))
        .await;
    assert_eq!(status, 200, "{b}");
    assert!(upstream_saw(&s.mock).contains(IBAN));
    let row = log_rows(gw, 1).await.remove(0);
    let (_, full) = gw
        .get(&format!("/api/logs/{}", row["id"].as_str().unwrap()))
        .await;
    let text = full.to_string();
    assert!(text.contains("[IBAN_REDACTED]"), "content logged: {text}");
    assert!(!text.contains(IBAN) && !text.contains("0532 0130"), "{text}");
}
