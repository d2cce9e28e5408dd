//! Bad input and hostile clients against the real server: oversized bodies and heads, malformed JSON,
//! wrong types, slowloris; upstream address policy; graceful shutdown draining streams. After each
//! abuse the gateway still serves and the stored config is intact.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{assert_error_shape, chat, TestGateway};
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard_core::upstream_policy::{IpBlock, UpstreamPolicy};
use switchyard_gateway::{SecurityConfig, ServerConfig};
use switchyard_mock::MockOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(dir: &Path, security: SecurityConfig) -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.to_owned(),
        shutdown_grace: Duration::from_secs(5),
        max_request_body_bytes: 64 * 1024,
        security,
        ..ServerConfig::default()
    }
}

/// The provider list as stored, to compare before and after abuse.
async fn snapshot(gw: &TestGateway) -> Value {
    let (s, v) = gw.get("/api/providers").await;
    assert_eq!(s, 200);
    v
}

async fn seed(gw: &TestGateway, base_url: &str) {
    gw.add_openai_compatible("m", base_url, "sk-upstream-key-0000000001")
        .await;
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_and_corrupt_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mock = switchyard_mock::start(MockOptions::default()).await.unwrap();
    let gw = TestGateway::start_with(config(dir.path(), SecurityConfig::default())).await;
    seed(&gw, &mock.base_url()).await;
    let before = snapshot(&gw).await;

    // Oversized bodies: 413 in the error shape, on the management API and on inference.
    let huge = "x".repeat(2 * 1024 * 1024);
    for path in ["/api/providers", "/api/providers/m/keys", "/v1/chat/completions"] {
        let body = json!({"provider": "big", "model": "m/x", "name": huge, "messages": []});
        let r = gw.http.post(gw.url(path)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 413, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(assert_error_shape(&body, 413)["code"], "request_too_large");
    }
    // Malformed JSON and wrong types: 400 naming the field.
    for (path, raw, param) in [
        ("/api/providers", "{\"provider\": ", None),
        ("/api/providers", "[1,2,3]", None),
        (
            "/api/providers/m",
            "{\"network_config\": {\"max_retries\": -1}}",
            Some("network_config.max_retries"),
        ),
        (
            "/api/providers/m/keys",
            "{\"name\": \"k2\", \"value\": 7}",
            Some("value"),
        ),
        (
            "/api/providers/m/keys",
            "{\"name\": \"k2\", \"value\": \"v\", \"weight\": \"heavy\"}",
            Some("weight"),
        ),
        (
            "/v1/chat/completions",
            "{\"model\": 5, \"messages\": []}",
            Some("model"),
        ),
        ("/v1/chat/completions", "\u{0}\u{1}binary", None),
    ] {
        let method = if path == "/api/providers/m" {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let r = gw
            .http
            .request(method, gw.url(path))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path} {raw}");
        let body: Value = r.json().await.unwrap();
        let err = assert_error_shape(&body, 400);
        if let Some(p) = param {
            assert_eq!(err["param"], p, "{body}");
        }
    }
    // A body that is cut off mid-way (declared longer than sent) does not hang or store anything.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(
        b"POST /api/providers HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"provider\":\"anth",
    )
    .await
    .unwrap();
    drop(tcp);

    assert_eq!(snapshot(&gw).await, before, "nothing stored changed");
    let (s, _) = gw.post("/v1/chat/completions", chat("m/echo")).await;
    assert_eq!(s, 200, "the gateway still serves");
    gw.stop().await;
}

#[tokio::test]
async fn huge_headers_get_431_and_the_gateway_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let sec = SecurityConfig {
        max_header_bytes: 8 * 1024,
        ..SecurityConfig::default()
    };
    let gw = TestGateway::start_with(config(dir.path(), sec)).await;
    // Over the limit but under hyper's hard cap: the API's own error shape.
    let r = gw
        .http
        .get(gw.url("/api/providers"))
        .header("x-padding", "a".repeat(12 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let body: Value = r.json().await.unwrap();
    let err = assert_error_shape(&body, 431);
    assert_eq!(err["code"], "request_headers_too_large");
    // Many small headers add up the same way.
    let mut req = gw.http.post(gw.url("/v1/chat/completions")).json(&chat("x"));
    for i in 0..300 {
        req = req.header(format!("x-h{i}"), "b".repeat(40));
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 431);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        assert_error_shape(&body, 431)["code"],
        "request_headers_too_large"
    );
    // More than 100 headers, however small (hyper's own limit, a bare 431, sits higher).
    let mut req = gw.http.post(gw.url("/v1/chat/completions")).json(&chat("x"));
    for i in 0..150 {
        req = req.header(format!("x-h{i}"), "b");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 431);
    let body: Value = r.json().await.unwrap();
    let err = assert_error_shape(&body, 431);
    assert_eq!(err["code"], "too_many_request_headers");
    assert!(err["message"].as_str().unwrap().contains("100"), "{body}");
    // Far beyond: hyper refuses the head itself (431, or the connection is closed) without buffering it.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let mut head = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ".to_vec();
    head.extend(std::iter::repeat_n(b'c', 1024 * 1024));
    let _ = tcp.write_all(&head).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 431"), "{text}");
    // And still serving.
    assert_eq!(gw.get("/health").await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn slowloris_clients_are_cut_off_and_others_are_served_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let sec = SecurityConfig {
        header_read_timeout: Duration::from_secs(1),
        ..SecurityConfig::default()
    };
    let gw = TestGateway::start_with(config(dir.path(), sec)).await;
    let (s, _) = gw.post("/api/providers", json!({"provider": "openai"})).await;
    assert_eq!(s, 200);
    let before = snapshot(&gw).await;

    // 50 connections that send their request head one byte every 200 ms and never finish it.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let addr = gw.addr;
        slow.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let head = b"POST /api/providers HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            let started = Instant::now();
            for b in head.iter() {
                if tcp.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // The server closes the connection: reading yields EOF (or a reset), never a served request.
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
            (started.elapsed(), String::from_utf8_lossy(&buf).into_owned())
        }));
    }
    // Meanwhile normal clients are served.
    for _ in 0..5 {
        assert_eq!(gw.get("/health").await.0, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in slow {
        let (elapsed, answer) = task.await.unwrap();
        // The head would take ~14 s to send; the server hangs up long before.
        assert!(elapsed < Duration::from_secs(12), "held for {elapsed:?}");
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    assert_eq!(snapshot(&gw).await, before);
    assert_eq!(gw.get("/health").await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_body_sent_too_slowly_gets_408_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sec = SecurityConfig {
        body_read_timeout: Duration::from_secs(1),
        ..SecurityConfig::default()
    };
    let gw = TestGateway::start_with(config(dir.path(), sec)).await;
    let before = snapshot(&gw).await;
    for path in ["/api/providers", "/v1/chat/completions"] {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        tcp.write_all(
            format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let started = Instant::now();
        let trickle = async {
            for b in br#"{"provider":"openai","#.iter() {
                if tcp.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        // The answer comes while the client is still trickling.
        let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("request_body_timeout"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(snapshot(&gw).await, before);
    assert_eq!(gw.get("/health").await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn metadata_upstreams_are_refused_at_config_time_and_denied_blocks_at_connect_time() {
    let dir = tempfile::tempdir().unwrap();
    let mock = switchyard_mock::start(MockOptions::default()).await.unwrap();
    let sec = SecurityConfig {
        upstream_policy: UpstreamPolicy {
            deny: vec![
                IpBlock::parse("127.0.0.0/8").unwrap(),
                IpBlock::parse("::1").unwrap(),
            ],
        },
        ..SecurityConfig::default()
    };
    let gw = TestGateway::start_with(config(dir.path(), sec)).await;
    for url in [
        "http://169.254.169.254/latest",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://[fd00:ec2::254]/",
        "http://0xa9fea9fe/",
    ] {
        let (s, body) = gw
            .post(
                "/api/providers",
                json!({"provider": "meta", "network_config": {"base_url": url},
                       "custom_provider_config": {"base_provider_type": "openai"}}),
            )
            .await;
        assert_eq!(s, 400, "{url}");
        assert_eq!(assert_error_shape(&body, 400)["param"], "network_config.base_url");
    }
    // `localhost` passes the config-time check (it is a name) but resolves into a denied block.
    let by_name = format!("http://localhost:{}/v1", mock.addr().port());
    seed(&gw, &by_name).await;
    let (s, body) = gw.post("/v1/chat/completions", chat("m/echo")).await;
    assert_eq!(s, 502, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("refused by policy"), "{msg}");
    // An IP literal in a denied block is refused before connecting, too.
    let (s, _) = gw
        .put(
            "/api/providers/m",
            json!({"network_config": {"base_url": mock.base_url(), "max_retries": 0}}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = gw.post("/v1/chat/completions", chat("m/echo")).await;
    assert_eq!(s, 502, "{body}");
    assert_eq!(
        mock.call_count("chat"),
        0,
        "no request reached the denied address"
    );

    // The same setup without the extra deny list serves (private and loopback upstreams are allowed).
    gw.stop().await;
    let gw = TestGateway::start_with(config(dir.path(), SecurityConfig::default())).await;
    let (s, body) = gw.post("/v1/chat/completions", chat("m/echo")).await;
    assert_eq!(s, 200, "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_drains_streams_and_cuts_them_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mock = switchyard_mock::start(MockOptions::default()).await.unwrap();
    let mut cfg = config(dir.path(), SecurityConfig::default());
    cfg.shutdown_grace = Duration::from_secs(30);
    let mut gw = TestGateway::start_with(cfg.clone()).await;
    seed(&gw, &mock.base_url()).await;

    // A paced stream is in flight when the shutdown signal arrives: it finishes completely.
    let resp = gw.post_stream("/v1/chat/completions", "m/drip").await;
    assert_eq!(resp.status(), 200);
    let addr = gw.addr;
    gw.begin_shutdown();
    let mut body = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.push_str(&String::from_utf8_lossy(&chunk.expect("the stream is not cut")));
    }
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    gw.wait_stopped().await;
    // Stopped: new connections are refused.
    assert!(TcpStream::connect(addr).await.is_err());

    // With a short grace period, a stream that outlives it is cut at the deadline and the server stops.
    cfg.shutdown_grace = Duration::from_millis(300);
    let mut gw = TestGateway::start_with(cfg).await;
    let resp = gw.post_stream("/v1/chat/completions", "m/drip").await;
    assert_eq!(resp.status(), 200);
    gw.begin_shutdown();
    let started = Instant::now();
    gw.wait_stopped().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !text.contains("data: [DONE]"),
        "the stream was cut, not completed: {text}"
    );
}

#[tokio::test]
async fn h2c_clients_and_http1_clients_that_send_a_byte_at_a_time_are_both_served() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(config(dir.path(), SecurityConfig::default())).await;

    // HTTP/2 with prior knowledge (no TLS, no upgrade): the connection opens with h2's preface.
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let r = h2
        .get(gw.url("/health").parse().unwrap())
        .await
        .expect("an h2c request is answered");
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), http::Version::HTTP_2);

    // HTTP/1.1 whose first bytes trickle in: `P` could still start h2's preface (`PRI * HTTP/2.0`),
    // so the server reads on until the bytes tell.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    for part in [
        &b"P"[..],
        b"A",
        b"TCH /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
    ] {
        tcp.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    gw.stop().await;
}
