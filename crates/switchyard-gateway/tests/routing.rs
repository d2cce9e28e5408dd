//! Routing lanes: retries, key rotation, fallbacks, timeouts, circuit breakers and concurrency limits,
//! against fault-injecting mock upstreams. Each test asserts who served, how many attempts each
//! upstream saw, the status and body, and time bounds.

mod common;

use std::time::{Duration, Instant};

use common::{chat, TestGateway};
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

const DEDICATED_KEY: &str = "sk-dedicated-0000000001";
const SHARED_KEY: &str = "sk-shared-0000000002";

/// The seed's lanes: `openai` = dedicated (premium model), `mittwald-shared` = `*`. Backoff is shortened
/// so the tests stay fast; retries stay at the default of 2.
struct Lanes {
    gw: TestGateway,
    dedicated: MockUpstream,
    shared: MockUpstream,
    _dir: tempfile::TempDir,
}

async fn lanes() -> Lanes {
    let dedicated = start(MockOptions {
        api_key: Some(DEDICATED_KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let shared = start(MockOptions {
        api_key: Some(SHARED_KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let fast = json!({"retry_backoff_initial": 50, "retry_backoff_max": 200});
    let mut nc = fast.clone();
    nc["base_url"] = json!(dedicated.base_url());
    assert_eq!(
        gw.post(
            "/api/providers",
            json!({"provider": "openai", "network_config": nc})
        )
        .await
        .0,
        200
    );
    gw.post(
        "/api/providers/openai/keys",
        json!({"name": "mittwald-dedicated", "value": DEDICATED_KEY,
               "models": ["PREMIUM", "fail", "slow-3000", "flat400", "ratelimit", "ratelimit-after-1", "stall"]}),
    )
    .await;
    let mut nc = fast;
    nc["base_url"] = json!(shared.base_url());
    gw.post(
        "/api/providers",
        json!({"provider": "mittwald-shared", "network_config": nc, "custom_provider_config": {"base_provider_type": "openai"}}),
    )
    .await;
    gw.post(
        "/api/providers/mittwald-shared/keys",
        json!({"name": "mittwald-shared-key", "value": SHARED_KEY, "models": ["*"]}),
    )
    .await;
    Lanes {
        gw,
        dedicated,
        shared,
        _dir: dir,
    }
}

async fn post_full(gw: &TestGateway, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn outcomes(body: &Value) -> Vec<String> {
    body["extra_fields"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}={}",
                a["provider"].as_str().unwrap(),
                a["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn dedicated_down_falls_through_to_shared_automatically() {
    let l = lanes().await;
    // The dedicated endpoint refuses connections.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    l.gw.put(
        "/api/providers/openai",
        json!({"network_config": {"base_url": format!("http://{closed}/v1")}}),
    )
    .await;
    let started = Instant::now();
    let (status, headers, body) = post_full(&l.gw, chat("PREMIUM")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        outcomes(&body),
        [
            "openai=connection_error",
            "openai=connection_error",
            "openai=connection_error",
            "mittwald-shared=200"
        ]
    );
    assert_eq!(headers["x-switchyard-provider"], "mittwald-shared");
    assert_eq!(headers["x-switchyard-fallback-index"], "1");
    assert_eq!(headers["x-switchyard-attempts"], "4");
    assert_eq!(body["extra_fields"]["provider"], "mittwald-shared");
    // Two backoffs of ~50 and ~100 ms, nothing like a default 500 ms ladder.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(l.shared.call_count("chat"), 1);
}

#[tokio::test]
async fn server_errors_retry_then_follow_the_configured_chain() {
    let l = lanes().await;
    // openai/X falls back to mittwald-shared/echo without any change in the client.
    let (s, b) =
        l.gw.put(
            "/api/providers/openai",
            json!({"fallbacks": ["mittwald-shared/echo"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["fallbacks"], json!(["mittwald-shared/echo"]));
    let (status, headers, body) = post_full(&l.gw, chat("openai/fail")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        outcomes(&body),
        ["openai=500", "openai=500", "openai=500", "mittwald-shared=200"]
    );
    assert_eq!(l.dedicated.call_count("chat"), 3, "1 try + max_retries 2");
    assert_eq!(body["model"], "echo");
    assert_eq!(body["extra_fields"]["resolved_model_used"], "echo");
    assert!(headers["x-switchyard-trail"]
        .to_str()
        .unwrap()
        .contains("openai/fail:mittwald-dedicated=500"));
}

#[tokio::test]
async fn request_fallbacks_are_tried_in_order() {
    let l = lanes().await;
    let mut body = chat("openai/fail");
    body["fallbacks"] = json!(["mittwald-shared/unavail", "mittwald-shared/echo"]);
    let (status, _, resp) = post_full(&l.gw, body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["extra_fields"]["fallback_index"], 2);
    // `fallbacks` is a gateway field: the upstream never sees it.
    assert!(l
        .shared
        .requests()
        .iter()
        .all(|r| r.json().get("fallbacks").is_none()));

    let mut bad = chat("openai/fail");
    bad["fallbacks"] = json!(["nowhere/echo"]);
    let (status, _, resp) = post_full(&l.gw, bad).await;
    assert_eq!(status, 400);
    assert_eq!(resp["error"]["param"], "fallbacks[0]");
}

#[tokio::test]
async fn caller_errors_neither_retry_nor_fall_back() {
    let l = lanes().await;
    l.gw.put(
        "/api/providers/openai",
        json!({"fallbacks": ["mittwald-shared/echo"]}),
    )
    .await;
    let (status, headers, body) = post_full(&l.gw, chat("openai/flat400")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(l.dedicated.call_count("chat"), 1);
    assert_eq!(l.shared.call_count("chat"), 0);
    assert!(headers.get("x-should-retry").is_none());
}

#[tokio::test]
async fn exhausted_failures_tell_sdks_not_to_retry() {
    let l = lanes().await;
    let started = Instant::now();
    let (status, headers, body) = post_full(&l.gw, chat("openai/fail")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(headers["x-should-retry"], "false");
    assert_eq!(body["extra_fields"]["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(l.dedicated.call_count("chat"), 3);
    assert!(started.elapsed() >= Duration::from_millis(80), "backoff waited");
}

#[tokio::test]
async fn rate_limits_rotate_keys_with_backoff() {
    let l = lanes().await;
    l.gw.post(
        "/api/providers/openai/keys",
        json!({"name": "second", "value": DEDICATED_KEY, "models": ["ratelimit"]}),
    )
    .await;
    l.gw.put(
        "/api/providers/openai",
        json!({"fallbacks": ["mittwald-shared/echo"]}),
    )
    .await;
    let started = Instant::now();
    let (status, _, body) = post_full(&l.gw, chat("openai/ratelimit")).await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body["extra_fields"]["attempts"].as_array().unwrap()[..3]
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert!(
        keys[0] != keys[1] && keys[1] != keys[2],
        "429 rotates to the other key: {keys:?}"
    );
    // mittwald's 429 has no Retry-After, so the gateway's own backoff applies (~50 + ~100 ms).
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_rejected_key_rotates_at_once_and_is_ejected_after_repeated_failures() {
    let l = lanes().await;
    l.gw.put(
        "/api/providers/openai",
        json!({"network_config": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 2, "cooldown_in_seconds": 1}}),
    )
    .await;
    let (_, bad) =
        l.gw.post(
            "/api/providers/openai/keys",
            json!({"name": "revoked", "value": "sk-revoked-key-999", "models": ["PREMIUM"], "weight": 1000}),
        )
        .await;
    let bad_id = bad["id"].as_str().unwrap().to_owned();
    let revoked_calls = |m: &MockUpstream| {
        m.requests()
            .iter()
            .filter(|r| r.header("authorization") == Some("Bearer sk-revoked-key-999"))
            .count()
    };
    for i in 0..6 {
        let started = Instant::now();
        let (status, _, body) = post_full(&l.gw, chat("openai/PREMIUM")).await;
        assert_eq!(status, 200, "request {i}: {body}");
        assert_eq!(body["extra_fields"]["provider"], "openai");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "401 rotates without waiting"
        );
    }
    // The revoked key got at most 2 tries before its breaker opened (weight 1000 makes it first choice).
    assert_eq!(revoked_calls(&l.dedicated), 2);
    let (_, key) = l.gw.get(&format!("/api/providers/openai/keys/{bad_id}")).await;
    assert_eq!(key["health"]["state"], "ejected", "{key}");
    assert!(key["health"]["last_error"]
        .as_str()
        .unwrap()
        .contains("Unauthorized"));

    // After the cooldown one probe goes to the key again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    post_full(&l.gw, chat("openai/PREMIUM")).await;
    assert_eq!(revoked_calls(&l.dedicated), 3);
}

#[tokio::test]
async fn breaker_state_follows_the_key_across_config_changes() {
    let l = lanes().await;
    let (gw, dedicated) = (&l.gw, &l.dedicated);
    // A long cooldown: no probe happens during the test.
    gw.put(
        "/api/providers/openai",
        json!({"network_config": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 2, "cooldown_in_seconds": 600}}),
    )
    .await;
    let add_revoked = || async move {
        let (status, key) =
            gw.post(
                "/api/providers/openai/keys",
                json!({"name": "revoked", "value": "sk-revoked-key-999", "models": ["PREMIUM"], "weight": 1000}),
            )
            .await;
        assert_eq!(status, 200, "{key}");
        key["id"].as_str().unwrap().to_owned()
    };
    let revoked_calls = || {
        dedicated
            .requests()
            .iter()
            .filter(|r| r.header("authorization") == Some("Bearer sk-revoked-key-999"))
            .count()
    };
    let health = |id: String| async move {
        let (status, key) = gw.get(&format!("/api/providers/openai/keys/{id}")).await;
        assert_eq!(status, 200, "{key}");
        key["health"].clone()
    };
    let serve = |n: usize| async move {
        for i in 0..n {
            let (status, _, body) = post_full(gw, chat("openai/PREMIUM")).await;
            assert_eq!(status, 200, "request {i}: {body}");
        }
    };

    let first_id = add_revoked().await;
    serve(6).await;
    assert_eq!(revoked_calls(), 2, "ejected after two 401s");
    assert_eq!(health(first_id.clone()).await["state"], "ejected");

    // Unrelated changes: another provider added, and this provider's concurrency raised.
    let (status, body) = gw
        .post(
            "/api/providers",
            json!({"provider": "unrelated", "network_config": {"base_url": l.shared.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = gw
        .put(
            "/api/providers/openai",
            json!({"concurrency_and_buffer_size": {"concurrency": 100, "buffer_size": 100}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let h = health(first_id.clone()).await;
    assert_eq!(h["state"], "ejected", "{h}");
    assert_eq!(h["consecutive_failures"], 2, "{h}");
    serve(4).await;
    assert_eq!(revoked_calls(), 2, "still ejected: no new call reached the key");

    // Deleted and re-added under the same name: a new key with fresh state.
    assert_eq!(
        gw.delete(&format!("/api/providers/openai/keys/{first_id}"))
            .await
            .0,
        200
    );
    assert_eq!(
        gw.get(&format!("/api/providers/openai/keys/{first_id}")).await.0,
        404
    );
    let second_id = add_revoked().await;
    assert_ne!(second_id, first_id);
    let h = health(second_id.clone()).await;
    assert_eq!(h["state"], "healthy", "{h}");
    assert_eq!(h["consecutive_failures"], 0, "{h}");
    assert!(h.get("last_error").is_none(), "{h}");
    serve(4).await;
    assert_eq!(
        revoked_calls(),
        4,
        "the new key is tried again until its own breaker opens"
    );
    assert_eq!(health(second_id).await["state"], "ejected");
}

#[tokio::test]
async fn a_deleted_provider_drops_its_breaker_and_comes_back_fresh() {
    let l = lanes().await;
    let gw = &l.gw;
    // Nothing listens on port 1: every call is a connection failure, which counts against the provider.
    let dead = json!({"provider": "dead", "network_config": {"base_url": "http://127.0.0.1:1/v1", "max_retries": 0},
                      "custom_provider_config": {"base_provider_type": "openai"},
                      "circuit_breaker": {"failure_threshold": 2, "cooldown_in_seconds": 600},
                      "keys": [{"name": "dead-key", "value": "sk-dead-0000000003", "models": ["*"]}]});
    let first_outcome = || async move {
        let body = json!({"model": "dead/echo", "messages": [{"role": "user", "content": "hi"}],
                          "fallbacks": ["mittwald-shared/echo"]});
        let (status, _, body) = post_full(gw, body).await;
        assert_eq!(status, 200, "{body}");
        body["extra_fields"]["attempts"][0]["outcome"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let provider_health = || async move {
        let (status, p) = gw.get("/api/providers/dead").await;
        assert_eq!(status, 200, "{p}");
        p["health"].clone()
    };

    assert_eq!(gw.post("/api/providers", dead.clone()).await.0, 200);
    for _ in 0..2 {
        assert!(!first_outcome().await.starts_with("skipped"));
    }
    assert_eq!(provider_health().await["state"], "ejected");

    // An unrelated change keeps it ejected.
    let (status, body) = gw
        .post(
            "/api/providers",
            json!({"provider": "unrelated", "network_config": {"base_url": l.shared.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(provider_health().await["state"], "ejected");
    assert!(first_outcome().await.starts_with("skipped: provider ejected"));

    // Deleted and created again under the same name: its state went with it.
    assert_eq!(gw.delete("/api/providers/dead").await.0, 200);
    assert_eq!(gw.post("/api/providers", dead).await.0, 200);
    let h = provider_health().await;
    assert_eq!(h["state"], "healthy", "{h}");
    assert_eq!(h["consecutive_failures"], 0, "{h}");
    assert!(!first_outcome().await.starts_with("skipped"));
}

#[tokio::test]
async fn a_slow_first_byte_times_out_and_falls_back() {
    let l = lanes().await;
    l.gw.put(
        "/api/providers/openai",
        json!({"network_config": {"first_byte_timeout_in_seconds": 1, "max_retries": 0}, "fallbacks": ["mittwald-shared/echo"]}),
    )
    .await;
    for stream in [false, true] {
        let mut body = chat("openai/slow-3000");
        body["stream"] = json!(stream);
        let started = Instant::now();
        let r =
            l.gw.http
                .post(l.gw.url("/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-provider"], "mittwald-shared");
        assert!(r.headers()["x-switchyard-trail"]
            .to_str()
            .unwrap()
            .contains("=timeout"));
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2500),
            "{elapsed:?}"
        );
    }
}

#[tokio::test]
async fn the_timeout_header_overrides_the_provider_timeout() {
    let l = lanes().await;
    l.gw.put(
        "/api/providers/openai",
        json!({"network_config": {"max_retries": 0}}),
    )
    .await;
    let started = Instant::now();
    let r =
        l.gw.http
            .post(l.gw.url("/v1/chat/completions"))
            .header("x-switchyard-timeout", "0.5")
            .json(&chat("openai/slow-3000"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_millis(1500));
    let r =
        l.gw.http
            .post(l.gw.url("/v1/chat/completions"))
            .header("x-switchyard-timeout", "soon")
            .json(&chat("openai/PREMIUM"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn concurrency_and_buffer_bound_each_provider() {
    let l = lanes().await;
    l.gw.put(
        "/api/providers/openai",
        json!({"concurrency_and_buffer_size": {"concurrency": 1, "buffer_size": 0}}),
    )
    .await;
    let body = chat("openai/slow-3000");
    let (a, b) = tokio::join!(post_full(&l.gw, body.clone()), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        post_full(&l.gw, chat("openai/PREMIUM")).await
    });
    assert_eq!(a.0, 200, "{}", a.2);
    assert_eq!(b.0, 503, "{}", b.2);
    assert!(
        b.2["error"]["message"].as_str().unwrap().contains("at capacity"),
        "{}",
        b.2
    );

    // With room to wait, the second request queues instead.
    l.gw.put(
        "/api/providers/openai",
        json!({"concurrency_and_buffer_size": {"concurrency": 1, "buffer_size": 1}}),
    )
    .await;
    let (a, b) = tokio::join!(post_full(&l.gw, body), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        post_full(&l.gw, chat("openai/PREMIUM")).await
    });
    assert_eq!((a.0, b.0), (200, 200));
}

#[tokio::test]
async fn dedicated_taken_down_mid_run_loses_no_request() {
    let l = lanes().await;
    let Lanes {
        gw,
        dedicated,
        shared,
        _dir,
    } = l;
    let gw = std::sync::Arc::new(gw);
    let mut served_by = std::collections::HashMap::<String, usize>::new();
    let mut dedicated = Some(dedicated);
    for i in 0..60 {
        if i == 20 {
            dedicated.take().unwrap().shutdown().await;
        }
        let (status, _, body) = post_full(&gw, chat("PREMIUM")).await;
        assert_eq!(status, 200, "request {i} failed: {body}");
        *served_by
            .entry(body["extra_fields"]["provider"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(served_by["openai"], 20, "{served_by:?}");
    assert_eq!(served_by["mittwald-shared"], 40, "{served_by:?}");
    assert_eq!(shared.call_count("chat"), 40);
    // The dedicated lane's breaker opened, so later requests skip it instead of waiting on retries.
    let (_, p) = gw.get("/api/providers/openai").await;
    assert_eq!(p["health"]["state"], "ejected", "{p}");
}

#[tokio::test]
async fn retry_after_is_honoured_or_skipped_when_too_long() {
    let l = lanes().await;
    l.gw.put(
        "/api/providers/openai",
        json!({"network_config": {"max_retries": 1, "retry_backoff_max": 2000}, "fallbacks": ["mittwald-shared/echo"]}),
    )
    .await;
    let started = Instant::now();
    let (status, _, body) = post_full(&l.gw, chat("openai/ratelimit-after-1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        outcomes(&body),
        ["openai=429", "openai=429", "mittwald-shared=200"]
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );

    // A server-directed wait longer than retry_backoff_max is not slept through: fall back at once.
    l.gw.put(
        "/api/providers/openai",
        json!({"network_config": {"retry_backoff_max": 200}}),
    )
    .await;
    let started = Instant::now();
    let (status, _, body) = post_full(&l.gw, chat("openai/ratelimit-after-1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outcomes(&body), ["openai=429", "mittwald-shared=200"]);
    assert!(started.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn a_stream_that_stalls_mid_way_ends_with_an_error_event() {
    let l = lanes().await;
    l.gw.put(
        "/api/providers/openai",
        json!({"network_config": {"stream_idle_timeout_in_seconds": 1}}),
    )
    .await;
    let started = Instant::now();
    let r = l.gw.post_stream("/v1/chat/completions", "openai/stall").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(!text.contains("[DONE]"));
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        last.contains("\"error\"") && last.contains("stream_idle_timeout_in_seconds"),
        "{last}"
    );
}
