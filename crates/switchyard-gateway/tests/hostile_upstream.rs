//! Hostile upstreams against the real server: an upstream on 127.0.0.1 that misbehaves on purpose
//! (a huge JSON answer, an SSE event that never ends, the key echoed in headers and in lower case in
//! an error body, 101 and 307 answers). Each case ends in a clear error for the client, nothing
//! partial is sent as success, and `/health` still answers afterwards.

mod common;

use std::time::Duration;

use common::{assert_error_shape, chat, endpoints::no_retries, TestGateway};
use serde_json::{json, Value};
use switchyard_gateway::{AnswerLimits, ServerConfig};
use switchyard_mock::hostile::{start_hostile, HostileSizes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "sk-Hostile-UpstreamKey-0123456789";
const MAX_JSON: usize = 256 * 1024;
const MAX_EVENT: usize = 32 * 1024;

async fn hostile_upstream() -> String {
    let sizes = HostileSizes {
        json: 4 * MAX_JSON,
        event: 8 * MAX_EVENT,
        hold: Duration::from_secs(10),
    };
    start_hostile(0, KEY, sizes).await.unwrap().base_url()
}

async fn setup() -> (TestGateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        max_request_body_bytes: 1024 * 1024,
        answer_limits: AnswerLimits {
            max_json_bytes: MAX_JSON,
            max_sse_event_bytes: MAX_EVENT,
        },
        ..ServerConfig::default()
    })
    .await;
    gw.add_openai_compatible("hostile", &hostile_upstream().await, KEY)
        .await;
    no_retries(&gw, "hostile").await;
    (gw, dir)
}

/// `/health` answers on a new connection (a pooled keep-alive connection may just have been closed
/// by the server's own head deadline, which is the behaviour under test, not a failure).
async fn healthy(gw: &TestGateway) {
    let fresh = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), fresh.get(gw.url("/health")).send())
        .await
        .expect("/health answers in time")
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn call(gw: &TestGateway, model: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let send = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&chat(&format!("hostile/{model}")))
        .send();
    let r = tokio::time::timeout(Duration::from_secs(20), send)
        .await
        .expect("answer in time")
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(20), r.text())
        .await
        .expect("body in time")
        .unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn a_huge_json_answer_is_a_502_naming_the_limit() {
    let (gw, _dir) = setup().await;
    for model in ["huge-chunked", "huge-length"] {
        let (status, _, body) = call(&gw, model).await;
        assert_eq!(status, 502, "{model}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let err = assert_error_shape(&v, 502);
        assert_eq!(err["code"], "upstream_answer_too_large", "{v}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(&MAX_JSON.to_string()), "{message}");
        assert!(!body.contains("aaaa"), "nothing of the answer is relayed");
        healthy(&gw).await;
    }
}

#[tokio::test]
async fn an_endless_sse_event_ends_the_stream_with_an_error_naming_the_limit() {
    let (gw, _dir) = setup().await;
    let started = std::time::Instant::now();
    let r = gw.post_stream("/v1/chat/completions", "hostile/endless").await;
    assert_eq!(r.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(20), r.text())
        .await
        .expect("stream ends")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut at the cap, not at the upstream's leisure"
    );
    assert!(
        text.contains("\"content\":\"hi\""),
        "the events before are relayed: {text}"
    );
    assert!(
        !text.contains("xxxx") && !text.contains("never"),
        "no part of the oversized event"
    );
    let last = common::endpoints::sse_payloads(&text).pop().unwrap();
    let v: Value = serde_json::from_str(&last).unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(&MAX_EVENT.to_string()), "{message}");
    healthy(&gw).await;
}

#[tokio::test]
async fn the_key_echoed_in_headers_or_in_lower_case_never_reaches_the_client() {
    let (gw, _dir) = setup().await;
    let (status, headers, body) = call(&gw, "echo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-request-id"], "req-42", "harmless headers are relayed");
    for name in [
        "x-debug-auth",
        "x-debug-basic",
        "x-debug-pct",
        "x-debug-hex",
        "set-cookie",
        "x-api-key",
    ] {
        assert!(headers.get(name).is_none(), "{name} relayed: {headers:?}");
    }
    let all = format!("{headers:?}").to_ascii_lowercase();
    assert!(!all.contains(&KEY.to_ascii_lowercase()), "{all}");

    let (status, _, body) = call(&gw, "err403").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        !body.to_ascii_lowercase().contains(&KEY.to_ascii_lowercase()),
        "{body}"
    );
    assert!(body.contains("Incorrect API key provided"), "{body}");
    healthy(&gw).await;
}

#[tokio::test]
async fn upstream_1xx_and_3xx_answers_are_a_clear_502() {
    let (gw, _dir) = setup().await;
    for (model, code) in [("s101", "101"), ("s307", "307")] {
        let (status, headers, body) = call(&gw, model).await;
        assert_eq!(status, 502, "{model}: {body}");
        assert!(headers.get("location").is_none() && headers.get("upgrade").is_none());
        let v: Value = serde_json::from_str(&body).unwrap();
        let err = assert_error_shape(&v, 502);
        assert_eq!(err["code"], "upstream_unexpected_status", "{v}");
        assert!(err["message"].as_str().unwrap().contains(code), "{v}");
        healthy(&gw).await;
    }
}

async fn post_raw(gw: &TestGateway, path: &str, body: &Value) -> (u16, Value) {
    let r = gw.http.post(gw.url(path)).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn caller_mistakes_are_400s_naming_the_field_and_never_reach_the_upstream_or_the_log() {
    let (gw, _dir) = setup().await;
    let long = format!("hostile/{}", "m".repeat(300));
    for (model, needle) in [(long.as_str(), "limit of 256 bytes"), ("", "model")] {
        for path in ["/v1/chat/completions", "/v1/embeddings"] {
            let (status, v) =
                post_raw(&gw, path, &json!({"model": model, "messages": [], "input": "x"})).await;
            assert_eq!(status, 400, "{path} {v}");
            let err = assert_error_shape(&v, 400);
            assert_eq!(err["param"], "model", "{v}");
            assert!(err["message"].as_str().unwrap().contains(needle), "{v}");
            assert!(
                !v.to_string().contains("mmmmmmmmmm"),
                "the name is not echoed: {v}"
            );
        }
    }
    let (status, v) = post_raw(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "hostile/echo", "fallbacks": [long], "messages": []}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "fallbacks[0]", "{v}");

    for path in [
        "/passthrough/hostile/v1/chat%3Fkey=stolen",
        "/passthrough/hostile/v1/chat%20completions",
        "/passthrough/hostile/v1/chat%0d%0aHost:%20evil",
    ] {
        let (status, v) = post_raw(&gw, path, &json!({"model": "echo"})).await;
        assert_eq!(status, 400, "{path} {v}");
        assert_eq!(assert_error_shape(&v, 400)["param"], "path", "{v}");
    }
    // The log holds no oversized name (give the batch writer a moment).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, logs) = gw.get("/api/logs?limit=100").await;
    assert_eq!(s, 200, "{logs}");
    assert!(!logs.to_string().contains("mmmmmmmmmm"), "{logs}");
    healthy(&gw).await;
}

#[tokio::test]
async fn silent_connections_and_bare_h2_prefaces_are_closed_at_the_head_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        security: switchyard_gateway::SecurityConfig {
            header_read_timeout: Duration::from_secs(1),
            ..switchyard_gateway::SecurityConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let mut silent = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        }
        silent.push(s);
    }
    healthy(&gw).await;
    for mut s in silent {
        let mut buf = [0u8; 256];
        // Closed by the gateway: EOF (after any h2 frames it sent) or a reset, well within 5 s.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a silent connection was still open after 5 s");
    }
    healthy(&gw).await;
}
