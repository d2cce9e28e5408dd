//! Hostile clients through the real server: admin credential guessing is throttled per source and in
//! total (and the lockout ends), and inference that is open without a virtual key on a loopback bind
//! answers local tools but not other sites' pages (cross-site requests, DNS rebinding).

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{assert_error_shape, chat, create_vk, test_config, TestGateway};
use serde_json::{json, Value};
use switchyard_core::secret::Secret;
use switchyard_gateway::admin::auth::hash_password;
use switchyard_gateway::security::LoginThrottle;
use switchyard_gateway::{SecurityConfig, ServerConfig};
use switchyard_mock::MockOptions;

const TOKEN: &str = "sy-admin-test-token-0123456789";
const PASSWORD: &str = "correct horse battery staple";

fn config(dir: &Path, host: &str, security: SecurityConfig) -> ServerConfig {
    ServerConfig {
        host: host.into(),
        security,
        ..test_config(dir)
    }
}

fn secured(throttle: LoginThrottle) -> SecurityConfig {
    let mut s = SecurityConfig::default();
    s.admin.tokens.push(Secret::new(TOKEN));
    s.admin.password_hash = Some(hash_password(PASSWORD).unwrap());
    s.login_throttle = throttle;
    s
}

/// A client whose connections come from `source` (any 127.x address reaches a 127.0.0.1 listener).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login(http: &reqwest::Client, gw: &TestGateway, password: &str) -> reqwest::Response {
    http.post(gw.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
}

async fn assert_throttled(r: reqwest::Response) -> u64 {
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = r.json().await.unwrap();
    let err = assert_error_shape(&body, 429);
    assert_eq!(err["code"], "login_throttled", "{body}");
    retry
}

#[tokio::test]
async fn password_guessing_is_locked_out_per_source_and_the_lockout_ends() {
    let dir = tempfile::tempdir().unwrap();
    let throttle = LoginThrottle {
        free_failures: 3,
        base_lockout: Duration::from_secs(2),
        max_lockout: Duration::from_secs(4),
        global_failures_per_minute: 1000,
    };
    let gw = TestGateway::start_with(config(dir.path(), "127.0.0.1", secured(throttle))).await;
    let attacker = client_from("127.0.0.1");
    for i in 0..3 {
        let r = login(&attacker, &gw, &format!("guess-{i}")).await;
        assert_eq!(r.status(), 401, "guess {i} is checked");
    }
    // Locked out: every further guess, a wrong token and even the right password are refused
    // before any credential is checked, so a burst is answered at once (within the 2 s lockout,
    // which refused attempts do not extend).
    let started = Instant::now();
    for i in 0..10 {
        let retry = assert_throttled(login(&attacker, &gw, &format!("burst-{i}")).await).await;
        assert!((1..=2).contains(&retry), "retry-after {retry}");
    }
    let r = attacker
        .get(gw.url("/api/providers"))
        .bearer_auth("sy-admin-wrong-token-000000000")
        .send()
        .await
        .unwrap();
    assert_throttled(r).await;
    assert_throttled(login(&attacker, &gw, PASSWORD).await).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the burst outlasted the lockout"
    );
    // Another source is not locked out: the operator still logs in.
    let operator = client_from("127.0.0.2");
    let r = login(&operator, &gw, PASSWORD).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The lockout ends: after retry-after the right password works from the guessing source too.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = login(&attacker, &gw, PASSWORD).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(r.headers().get("set-cookie").is_some());
    gw.stop().await;
}

#[tokio::test]
async fn token_guessing_from_many_sources_locks_everyone_out_for_the_minute() {
    let dir = tempfile::tempdir().unwrap();
    let throttle = LoginThrottle {
        free_failures: 100,
        global_failures_per_minute: 6,
        ..LoginThrottle::default()
    };
    let gw = TestGateway::start_with(config(dir.path(), "127.0.0.1", secured(throttle))).await;
    for i in 0..6 {
        let r = client_from(&format!("127.0.1.{}", i + 1))
            .get(gw.url("/api/providers"))
            .bearer_auth(format!("sy-admin-guess-{i:020}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = client_from("127.0.2.1")
        .get(gw.url("/api/providers"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let retry = assert_throttled(r).await;
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    gw.stop().await;
}

async fn post(gw: &TestGateway, path: &str, headers: &[(&str, String)], body: Value) -> (u16, Value) {
    let mut req = gw.http.post(gw.url(path)).body(body.to_string());
    if !headers.iter().any(|(name, _)| *name == "content-type") {
        req = req.header("content-type", "application/json");
    }
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn anthropic_body() -> Value {
    json!({"model": "m/echo-model", "max_tokens": 16,
           "messages": [{"role": "user", "content": "Hello there"}]})
}

#[tokio::test]
async fn open_loopback_inference_answers_local_tools_and_refuses_other_sites() {
    let dir = tempfile::tempdir().unwrap();
    let mock = switchyard_mock::start(MockOptions::default()).await.unwrap();
    let gw = TestGateway::start(dir.path()).await;
    gw.add_openai_compatible("m", &mock.base_url(), "sk-upstream-000000000001")
        .await;
    let port = gw.addr.port();
    // What SDKs, curl and coding agents send: no Origin, a loopback Host, any Authorization.
    for headers in [
        vec![],
        vec![("host", format!("localhost:{port}"))],
        vec![("authorization", "Bearer sk-local-anything".to_owned())],
        vec![
            ("x-stainless-lang", "python".to_owned()),
            ("user-agent", "OpenAI/Python 1.0".to_owned()),
        ],
        // The gateway's own web UI (same origin).
        vec![
            ("origin", format!("http://127.0.0.1:{port}")),
            ("sec-fetch-site", "same-origin".to_owned()),
        ],
    ] {
        let (s, b) = post(&gw, "/v1/chat/completions", &headers, chat("m/echo-model")).await;
        assert_eq!(s, 200, "{headers:?}: {b}");
    }
    let claude_code = [("x-api-key", "sk-ant-local".to_owned())];
    let (s, b) = post(&gw, "/anthropic/v1/messages", &claude_code, anthropic_body()).await;
    assert_eq!(s, 200, "{b}");
    // Other sites' pages: DNS rebinding, cross-site fetches and the text/plain simple request.
    for (headers, code) in [
        (vec![("host", "evil.example".to_owned())], "foreign_host"),
        (
            vec![("origin", "https://evil.example".to_owned())],
            "cross_site_request",
        ),
        (vec![("origin", "null".to_owned())], "cross_site_request"),
        (
            vec![("sec-fetch-site", "cross-site".to_owned())],
            "cross_site_request",
        ),
        (
            vec![("content-type", "text/plain;charset=UTF-8".to_owned())],
            "cross_site_request",
        ),
    ] {
        let (s, b) = post(&gw, "/v1/chat/completions", &headers, chat("m/echo-model")).await;
        assert_eq!(assert_error_shape(&b, 403)["code"], code, "{headers:?}");
        assert_eq!(s, 403);
        // The message tells the caller what to change, in one readable sentence.
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("answers only local tools addressed to localhost (require virtual keys"),
            "{message}"
        );
    }
    // In the caller's own shape on the Anthropic surface.
    let evil = [("origin", "https://evil.example".to_owned())];
    let (s, b) = post(&gw, "/anthropic/v1/messages", &evil, anthropic_body()).await;
    assert_eq!((s, b["type"].as_str()), (403, Some("error")), "{b}");
    assert_eq!(b["error"]["type"], "permission_error", "{b}");
    assert_eq!(
        mock.call_count("chat"),
        6,
        "refused requests never reached the upstream"
    );
    // With virtual keys required, the key is the guard: a keyed request under any name passes.
    let (s, _) = gw
        .put(
            "/api/config",
            json!({"client_config": {"enforce_auth_on_inference": true}}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, vk) = create_vk(&gw, json!({"name": "k"})).await;
    let keyed = [("host", "gateway.internal".to_owned()), ("x-bf-vk", vk.clone())];
    let (s, b) = post(&gw, "/v1/chat/completions", &keyed, chat("m/echo-model")).await;
    assert_eq!(s, 200, "{b}");
    gw.stop().await;
}

#[tokio::test]
async fn a_gateway_bound_to_the_network_is_not_limited_to_localhost_names() {
    let dir = tempfile::tempdir().unwrap();
    let mock = switchyard_mock::start(MockOptions::default()).await.unwrap();
    let security = SecurityConfig {
        insecure_no_admin_auth: true,
        ..SecurityConfig::default()
    };
    let gw = TestGateway::start_with(config(dir.path(), "0.0.0.0", security)).await;
    gw.add_openai_compatible("m", &mock.base_url(), "sk-upstream-000000000001")
        .await;
    let named = [("host", "gateway.internal:8080".to_owned())];
    let (s, b) = post(&gw, "/v1/chat/completions", &named, chat("m/echo-model")).await;
    assert_eq!(s, 200, "{b}");
    gw.stop().await;
}

/// The README's quickstart with its environment variable not set: the caller is told the gateway is
/// misconfigured (a 5xx naming the variable), not that the model does not exist.
#[tokio::test]
async fn a_key_whose_variable_is_unset_is_a_5xx_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mock = switchyard_mock::start(MockOptions::default()).await.unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let (s, b) = gw
        .post(
            "/api/providers",
            json!({"provider": "mittwald-shared", "network_config": {"base_url": mock.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let key = json!({"name": "mittwald-shared-key", "value": "env.SWITCHYARD_TEST_NEVER_SET_KEY",
                     "models": ["*"], "weight": 1.0});
    let (s, b) = gw.post("/api/providers/mittwald-shared/keys", key).await;
    assert_eq!(s, 200, "{b}");
    for model in ["any-model", "mittwald-shared/any-model"] {
        let (s, b) = gw.post("/v1/chat/completions", chat(model)).await;
        let err = assert_error_shape(&b, 500);
        assert_eq!(s, 500, "{model}: {b}");
        assert_eq!(err["code"], "provider_key_misconfigured", "{b}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("SWITCHYARD_TEST_NEVER_SET_KEY"), "{message}");
    }
    // A provider that is not configured is still the caller's 404.
    let (s, _) = gw.post("/v1/chat/completions", chat("openai/gpt-4o")).await;
    assert_eq!(s, 404);
    assert_eq!(mock.call_count("chat"), 0);
    gw.stop().await;
}
