//! Request logs, metrics and traces: a mix of successful, failed, fallback and streamed requests
//! produces exactly the expected rows and metric values; content logging is off unless switched on;
//! secrets never appear; SIGTERM loses no answered request's row; traces reach an OTLP collector.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{chat, TestGateway};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use switchyard_gateway::ServerConfig;
use switchyard_mock::{start, MockOptions, MockUpstream};

const SECRET: &str = "sk-observed-secret-123456";

async fn setup_with(
    config: impl FnOnce(&mut ServerConfig),
) -> (TestGateway, MockUpstream, tempfile::TempDir) {
    let mock = start(MockOptions {
        api_key: Some(SECRET.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        ..ServerConfig::default()
    };
    config(&mut cfg);
    let gw = TestGateway::start_with(cfg).await;
    gw.add_openai_compatible("mittwald-shared", &mock.base_url(), SECRET)
        .await;
    gw.put(
        "/api/providers/mittwald-shared",
        json!({"network_config": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 1000}}),
    )
    .await;
    (gw, mock, dir)
}

/// Waits until the log API shows `n` rows (the writer batches in the background).
async fn rows(gw: &TestGateway, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, page) = gw.get("/api/logs?limit=1000&sort_by=timestamp&order=asc").await;
        assert_eq!(status, 200, "{page}");
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= n || Instant::now() > deadline {
            assert_eq!(logs.len(), n, "{page}");
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_call_gets_exactly_its_row_and_its_metrics() {
    let (gw, _mock, _dir) = setup_with(|_| {}).await;
    send_the_five_kinds_of_call(&gw).await;
    let logs = rows(&gw, 5).await;
    each_row_records_its_call(&logs);
    the_log_api_filters_and_aggregates(&gw, &logs).await;
    the_metrics_count_the_calls(&gw).await;
}

/// 1. success  2. upstream 429  3. fallback  4. stream with usage  5. caller error (400)
async fn send_the_five_kinds_of_call(gw: &TestGateway) {
    assert_eq!(
        gw.post("/v1/chat/completions", chat("mittwald-shared/echo"))
            .await
            .0,
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("mittwald-shared/ratelimit"))
            .await
            .0,
        429
    );
    let mut fb = chat("mittwald-shared/fail");
    fb["fallbacks"] = json!(["mittwald-shared/echo"]);
    assert_eq!(gw.post("/v1/chat/completions", fb).await.0, 200);
    let mut st = chat("mittwald-shared/echo");
    st["stream"] = json!(true);
    st["stream_options"] = json!({"include_usage": true});
    let text = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&st)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("[DONE]"));
    assert_eq!(
        gw.post("/v1/chat/completions", json!({"model": "x"})).await.0,
        400
    );
}

fn each_row_records_its_call(logs: &[Value]) {
    let by_status = |i: usize| (logs[i]["status"].as_u64().unwrap(), logs[i]["provider"].clone());
    assert_eq!(by_status(0), (200, json!("mittwald-shared")));
    assert_eq!(logs[0]["input_tokens"], 2);
    assert_eq!(logs[0]["output_tokens"], 3);
    assert_eq!(
        logs[0]["cost_known"], false,
        "a custom provider has no list price: flagged, not $0"
    );
    assert!(logs[0]["cost_usd"].is_null());
    assert_eq!(logs[0]["attempts"], 1);
    assert!(logs[0]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(logs[0]["overhead_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(by_status(1).0, 429);
    assert_eq!(logs[1]["error_type"], "requests");
    assert_eq!(logs[2]["status"], 200);
    assert_eq!(logs[2]["attempts"], 2);
    assert_eq!(logs[2]["fallback_index"], 1);
    assert_eq!(logs[2]["model"], "echo");
    assert_eq!(logs[3]["stream"], true);
    assert_eq!(
        logs[3]["output_tokens"], 3,
        "usage read from the stream's usage chunk"
    );
    assert!(logs[3]["ttft_ms"].as_f64().is_some());
    assert_eq!(logs[4]["status"], 400);
    assert!(
        logs.iter().all(|l| l["request_body"].is_null()),
        "content logging is off by default"
    );
    let all = serde_json::to_string(&logs).unwrap();
    assert!(!all.contains(SECRET), "no secret in any row");
}

/// Filters, one row by id, stats and histogram.
async fn the_log_api_filters_and_aggregates(gw: &TestGateway, logs: &[Value]) {
    let (_, errors) = gw.get("/api/logs?status=error").await;
    assert_eq!(errors["total"], 2, "{errors}");
    let (_, one) = gw
        .get(&format!("/api/logs/{}", logs[2]["id"].as_str().unwrap()))
        .await;
    assert_eq!(one["fallback_index"], 1);
    assert_eq!(gw.get("/api/logs/nope").await.0, 404);
    let (s, bad) = gw.get("/api/logs?limit=many").await;
    assert_eq!((s, bad["error"]["param"].as_str()), (400, Some("limit")));
    let (_, stats) = gw.get("/api/logs/stats").await;
    assert_eq!(stats["stats"]["requests"], 5, "{stats}");
    assert_eq!(stats["stats"]["errors"], 2, "{stats}");
    let (_, hist) = gw.get("/api/logs/histogram?bucket=60&group_by=provider").await;
    assert!(!hist["buckets"].as_array().unwrap().is_empty(), "{hist}");
}

async fn the_metrics_count_the_calls(gw: &TestGateway) {
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |needle: &str| assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    has(
        r#"switchyard_requests_total{route="/v1/chat/completions",provider="mittwald-shared",model="echo",status="200"} 3"#,
    );
    has(
        r#"switchyard_requests_total{route="/v1/chat/completions",provider="mittwald-shared",model="ratelimit",status="429"} 1"#,
    );
    has(r#"switchyard_tokens_total{provider="mittwald-shared",model="echo",kind="output"} 9"#);
    has(r#"switchyard_fallbacks_total{provider="mittwald-shared"} 1"#);
    has("switchyard_in_flight_requests 0");
    has(r#"switchyard_key_up{provider="mittwald-shared",key="mittwald-shared-key"} 1"#);
    has("switchyard_gateway_overhead_seconds_bucket");
    has(r#"switchyard_unknown_cost_requests_total{provider="mittwald-shared",model="echo"} 3"#);
}

#[tokio::test]
async fn content_is_logged_only_when_switched_on_and_capped() {
    let (gw, _mock, _dir) = setup_with(|_| {}).await;
    gw.put(
        "/api/providers/mittwald-shared",
        json!({"store_raw_request_response": true}),
    )
    .await;
    let mut body = chat("mittwald-shared/echo");
    body["messages"][0]["content"] = json!("find me later");
    gw.post("/v1/chat/completions", body).await;
    let logs = rows(&gw, 1).await;
    assert!(logs[0]["request_body"]
        .as_str()
        .unwrap()
        .contains("find me later"));
    assert!(logs[0]["response_body"]
        .as_str()
        .unwrap()
        .contains("echo: find me later"));
    let (_, found) = gw.get("/api/logs?content_search=find%20me").await;
    assert_eq!(found["total"], 1);

    let (gw2, _m2, _d2) = setup_with(|c| {
        c.logs.content = true;
        c.logs.content_max_bytes = 40;
    })
    .await;
    let mut long = chat("mittwald-shared/echo");
    long["messages"][0]["content"] = json!("x".repeat(500));
    gw2.post("/v1/chat/completions", long).await;
    let logs = rows(&gw2, 1).await;
    assert!(
        logs[0]["request_body"].as_str().unwrap().len() < 80,
        "{}",
        logs[0]["request_body"]
    );
}

#[tokio::test]
async fn sigterm_loses_no_answered_request() {
    let (mut gw, _mock, dir) = setup_with(|_| {}).await;
    let gw_http = gw.http.clone();
    let url = gw.url("/v1/chat/completions");
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url, answered) = (gw_http.clone(), url.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                let Ok(r) = http.post(&url).json(&chat("mittwald-shared/echo")).send().await else {
                    break;
                };
                if r.status() != 200 || r.bytes().await.is_err() {
                    break;
                }
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.begin_shutdown();
    for t in tasks {
        let _ = t.await;
    }
    gw.wait_stopped().await;
    let answered = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert!(answered > 50, "load ran: {answered}");
    use switchyard_logs::LogStore;
    let store = switchyard_logs::SqliteLogStore::open(&dir.path().join("logs.db"))
        .await
        .unwrap();
    let stats = store.stats(&switchyard_logs::LogFilter::default()).await.unwrap();
    assert!(
        stats.requests as usize >= answered,
        "rows {} < answered {answered}",
        stats.requests
    );
}

/// A minimal OTLP/HTTP collector: records every JSON body posted to /v1/traces.
async fn collector() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let store = store.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                            store.lock().unwrap().push(v);
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from_static(b"{}"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn traces_reach_an_otlp_collector_with_one_span_per_attempt() {
    let (addr, seen) = collector().await;
    let (gw, _mock, _dir) = setup_with(|c| {
        c.otlp_endpoint = Some(format!("http://{addr}"));
        c.otlp_flush_every = Duration::from_millis(100);
    })
    .await;
    let mut fb = chat("mittwald-shared/fail");
    fb["fallbacks"] = json!(["mittwald-shared/echo"]);
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&fb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let spans = loop {
        let spans: Vec<Value> = seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| {
                b["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        if spans.len() >= 3 || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = spans.iter().find(|s| s["kind"] == 2).unwrap();
    assert_eq!(
        server["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "joins the caller's trace"
    );
    assert_eq!(server["parentSpanId"], "00f067aa0ba902b7");
    let attr = |s: &Value, k: &str| {
        s["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == k)
            .map(|a| a["value"].clone())
    };
    assert_eq!(
        attr(server, "gen_ai.request.model").unwrap()["stringValue"],
        "mittwald-shared/fail"
    );
    assert_eq!(
        attr(server, "gen_ai.response.model").unwrap()["stringValue"],
        "echo"
    );
    assert_eq!(
        attr(server, "gen_ai.usage.output_tokens").unwrap()["intValue"],
        "3"
    );
    let children: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 3).collect();
    assert_eq!(children.len(), 2);
    assert!(children.iter().all(|c| c["parentSpanId"] == server["spanId"]));
    assert_eq!(
        children.iter().filter(|c| c["status"]["code"] == 2).count(),
        1,
        "the failed attempt is an error span"
    );
}
