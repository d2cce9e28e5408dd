//! Hostile peers against the real `switchyard` binary: an upstream that misbehaves on purpose (huge
//! answers, endless and never-finished event streams, the key echoed in other cases and encodings,
//! 1xx/3xx answers, connections closed mid-answer) and clients that do (sockets that stay silent,
//! megabyte fields, password guessing from many connections). Every case ends in a clear error,
//! `/health` answers throughout, and the process's memory (VmHWM, its peak RSS, read from
//! `/proc/<pid>/status`) and open descriptors stay bounded.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{read, start, Proc};
use serde_json::{json, Value};
use switchyard_mock::hostile::{start_hostile, HostileSizes};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const KEY: &str = "sk-Hostile-PeerKey-0123456789abcdef";
const ADMIN_TOKEN: &str = "sy-admin-hostile-peers-0123456789";
const PASSWORD: &str = "hostile peers password 0451";
/// What the hostile upstream sends in its oversized answers, against a 1 MiB cap.
const HUGE: usize = 256 << 20;
/// Generous (two Argon2 verifications alone take 38 MiB); buffering one huge answer would pass it.
const PEAK_RSS_BOUND_KB: u64 = 160 * 1024;

/// The flags under test: small answer caps, a short head deadline, the default login throttle
/// with a long lockout.
fn start_gateway(app_dir: &Path, log: &Path) -> Proc {
    let env = [
        ("SWITCHYARD_ADMIN_TOKENS", ADMIN_TOKEN),
        ("SWITCHYARD_ADMIN_PASSWORD", PASSWORD),
    ];
    let args = [
        "--max-upstream-answer-mb",
        "1",
        "--max-sse-event-mb",
        "1",
        "--header-read-timeout-seconds",
        "2",
        "--login-lockout-seconds",
        "30",
    ];
    start(app_dir, log, &args, &env)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Polls `/health` on fresh connections until stopped; counts the polls that failed or took over 5 s.
fn watch_health(url: String, stop: Arc<AtomicBool>) -> (tokio::task::JoinHandle<u64>, Arc<AtomicU64>) {
    let polls = Arc::new(AtomicU64::new(0));
    let counted = polls.clone();
    let task = tokio::spawn(async move {
        let fresh = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut failures = 0;
        while !stop.load(Ordering::Relaxed) {
            match fresh.get(&url).send().await {
                Ok(r) if r.status() == 200 => {}
                other => {
                    eprintln!("/health failed: {other:?}");
                    failures += 1;
                }
            }
            counted.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        failures
    });
    (task, polls)
}

async fn chat(http: &reqwest::Client, gw: &Proc, model: &str, stream: bool) -> (u16, String, String) {
    let body = json!({"model": format!("hostile/{model}"), "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = format!("{:?}", r.headers()).to_ascii_lowercase();
    (status, headers, r.text().await.unwrap_or_default())
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

async fn hostile_upstream_cases(http: &reqwest::Client, gw: &Proc) {
    for model in ["huge-chunked", "huge-length"] {
        let (status, _, body) = chat(http, gw, model, false).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (502, "upstream_answer_too_large"),
            "{model}: {body}"
        );
    }
    for model in ["s101", "s307"] {
        let (status, headers, body) = chat(http, gw, model, false).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (502, "upstream_unexpected_status"),
            "{model}"
        );
        assert!(!headers.contains("169.254"), "{headers}");
    }
    let (status, _, body) = chat(http, gw, "reset", false).await;
    assert_eq!(status, 502, "closed mid-head: {body}");
    // Streams: an event that never ends is cut at the cap; one that never finishes ends in an error.
    for model in ["endless", "flood"] {
        let started = Instant::now();
        let (status, _, text) = chat(http, gw, model, true).await;
        assert_eq!(status, 200, "{model}");
        let last = text.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.contains("\"error\""),
            "{model} ends in an error event: {last}"
        );
        assert!(!text.contains("[DONE]"), "{model} is not reported as complete");
        assert!(started.elapsed() < Duration::from_secs(25), "{model}");
    }
    // The key echoed in other cases and encodings never reaches the client.
    let (status, headers, _) = chat(http, gw, "echo", false).await;
    assert_eq!(status, 200);
    for needle in ["x-debug", "set-cookie", "x-api-key", &KEY.to_ascii_lowercase()] {
        assert!(!headers.contains(needle), "{needle} relayed: {headers}");
    }
    let (status, _, body) = chat(http, gw, "err403", false).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        !body.to_ascii_lowercase().contains(&KEY.to_ascii_lowercase()),
        "{body}"
    );
}

async fn hostile_client_cases(http: &reqwest::Client, gw: &Proc) {
    // 300 sockets that never send a byte are closed at the 2 s head deadline.
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap());
    }
    let mut closed = 0;
    for mut s in silent {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 300, "silent sockets closed by the gateway");
    // Megabyte fields: a model (400 naming it), a header (431), a key name (400 naming it).
    let mb = "m".repeat(1 << 20);
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": mb, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "model", "{v}");
    let r = http.get(gw.url("/health")).header("user-agent", &mb).send().await;
    assert!(r.is_err() || r.unwrap().status() == 431);
    // On the management API a megabyte body is over its limit (413); a long name is a 400 naming it.
    for (name, status, param) in [(mb.as_str(), 413, Value::Null), (&mb[..4096], 400, json!("name"))] {
        let r = http
            .post(gw.url("/api/providers/hostile/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": name, "value": "sk-x", "models": ["*"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    // Password guessing from 8 connections at once: locked out after the free failures, quickly.
    let started = Instant::now();
    let guesses = (0..8).map(|c| {
        let http = client();
        let url = gw.url("/api/auth/login");
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..25 {
                let r = http
                    .post(&url)
                    .json(&json!({"username": "admin", "password": format!("guess-{c}-{i}")}))
                    .send()
                    .await
                    .unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        })
    });
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.extend(g.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 200, "{statuses:?}");
    assert!(
        checked <= 5 + 2,
        "at most the free failures (and those already verifying) were checked: {checked}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn hostile_peers_get_clear_errors_and_the_gateway_stays_bounded_and_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("switchyard.log");
    let gw = start_gateway(&dir.path().join("app"), &log);
    let sizes = HostileSizes {
        json: HUGE,
        event: HUGE,
        hold: Duration::from_secs(3),
    };
    let upstream = start_hostile(0, KEY, sizes).await.unwrap();
    let http = client();
    let r = http
        .post(gw.url("/api/providers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"provider": "hostile",
                      "network_config": {"base_url": upstream.base_url(), "max_retries": 0},
                      "circuit_breaker": {"failure_threshold": 1000},
                      "custom_provider_config": {"base_provider_type": "openai"},
                      "keys": [{"name": "k", "value": KEY, "models": ["*"]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let fds_before = gw.open_fds();
    let stop = Arc::new(AtomicBool::new(false));
    let (health, polls) = watch_health(gw.url("/health"), stop.clone());

    hostile_upstream_cases(&http, &gw).await;
    hostile_client_cases(&http, &gw).await;

    stop.store(true, Ordering::Relaxed);
    assert_eq!(health.await.unwrap(), 0, "/health failed during the run");
    assert!(polls.load(Ordering::Relaxed) > 10);
    let peak = gw.status_kb("VmHWM");
    let now = gw.status_kb("VmRSS");
    eprintln!("switchyard peak RSS {peak} kB, now {now} kB");
    assert!(peak < PEAK_RSS_BOUND_KB, "peak RSS {peak} kB");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fds_after = gw.open_fds();
    assert!(
        fds_after <= fds_before + 16,
        "descriptors {fds_before} -> {fds_after}"
    );
    let text = read(&gw.log);
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains(&KEY.to_ascii_lowercase()),
        "the key in the log"
    );
    let warns = text
        .lines()
        .filter(|l| l.contains("admin credential guessing"))
        .count();
    assert!(warns <= 2, "one line per burst, not per guess: {warns}");
}
