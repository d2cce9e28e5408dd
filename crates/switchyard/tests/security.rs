//! The real `switchyard` binary: the refuse-to-start rule for public addresses, admin credentials from
//! the environment, keys encrypted at rest (and refused with a missing or wrong key), and no secret in
//! any answer or log line.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{base_command, read, start, Proc};
use serde_json::{json, Value};
use switchyard_mock::MockOptions;

const ADMIN_TOKEN: &str = "sy-admin-binary-test-0123456789";
const ADMIN_PASSWORD: &str = "binary test password 0451";
const ENCRYPTION_KEY: &str = "enc-key-binary-test-ABCDEFGHIJKLMNOP";

/// Runs the gateway expecting it to refuse to start; returns its log.
fn refuses(app_dir: &Path, log: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = base_command(app_dir, log, args, env).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "expected a refusal:\n{}", read(log));
            return read(log);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("switchyard kept running:\n{}", read(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_public_address_needs_admin_credentials_or_the_loud_insecure_flag() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gw.log");
    let app = dir.path().join("data");

    missing_or_bad_credentials_are_refused(&app, &log);
    the_insecure_flag_starts_open_with_a_warning(&app, &log).await;
    tokens_from_the_environment_guard_the_admin_api(&app, &log).await;
    loopback_without_credentials_is_open(&app, &log).await;
    a_hashed_password_is_accepted_for_login(&app, &log).await;
}

fn missing_or_bad_credentials_are_refused(app: &Path, log: &Path) {
    let out = refuses(app, log, &["--host", "0.0.0.0"], &[]);
    assert!(
        out.contains("refusing to listen on 0.0.0.0 without admin credentials"),
        "{out}"
    );
    assert!(
        out.contains("--insecure-no-admin-auth"),
        "the message says how: {out}"
    );

    // Bad credentials are refused with a clear message too.
    let out = refuses(
        app,
        log,
        &["--host", "0.0.0.0"],
        &[("SWITCHYARD_ADMIN_TOKENS", "short")],
    );
    assert!(out.contains("admin token #1 is refused"), "{out}");
    assert!(!out.contains("short\""), "the token itself is not echoed: {out}");
    let out = refuses(
        app,
        log,
        &["--host", "0.0.0.0", "--admin-password-hash", "not-a-hash"],
        &[],
    );
    assert!(out.contains("PHC"), "{out}");
    let out = refuses(app, log, &[], &[("SWITCHYARD_ENCRYPTION_KEY", "too-short")]);
    assert!(out.contains("SWITCHYARD_ENCRYPTION_KEY"), "{out}");
}

/// The insecure flag starts, open, with a warning in the log.
async fn the_insecure_flag_starts_open_with_a_warning(app: &Path, log: &Path) {
    let gw = start(app, log, &["--host", "0.0.0.0", "--insecure-no-admin-auth"], &[]);
    let r = client().get(gw.url("/api/providers")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let out = gw.stop();
    let warning = out
        .lines()
        .find(|l| l.contains("INSECURE"))
        .unwrap_or_else(|| panic!("no warning in {out}"));
    assert!(warning.contains("\"level\":\"WARN\""), "{warning}");
}

/// Tokens from the environment: starts on 0.0.0.0 and guards the admin API.
async fn tokens_from_the_environment_guard_the_admin_api(app: &Path, log: &Path) {
    let gw = start(
        app,
        log,
        &["--host", "0.0.0.0"],
        &[(
            "SWITCHYARD_ADMIN_TOKENS",
            &format!("other-token-000000000000,{ADMIN_TOKEN}"),
        )],
    );
    let http = client();
    assert_eq!(
        http.get(gw.url("/api/providers")).send().await.unwrap().status(),
        401
    );
    let r = http
        .get(gw.url("/api/providers"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(http.get(gw.url("/health")).send().await.unwrap().status(), 200);
    gw.stop();
}

/// Loopback without credentials: open, as the seed guide expects.
async fn loopback_without_credentials_is_open(app: &Path, log: &Path) {
    let gw = start(app, log, &[], &[]);
    assert_eq!(
        client()
            .get(gw.url("/api/providers"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    gw.stop();
}

/// `--hash-password` prints a hash that the gateway then accepts for login.
async fn a_hashed_password_is_accepted_for_login(app: &Path, log: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{ADMIN_PASSWORD}\n").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let gw = start(
        app,
        log,
        &["--host", "0.0.0.0", "--admin-password-hash", &hash],
        &[],
    );
    let r = client()
        .post(gw.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop();
}

fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn files_bytes(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with(prefix) {
            out.extend(std::fs::read(p).unwrap());
        }
    }
    out
}

const GOOD: &str = "sk-mittwald-GOOD-4f1c9e77d2a0b6";
const WRONG: &str = "sk-mittwald-WRONG-8d33ab01c5e9f2";
const ROTATED: &str = "sk-mittwald-ROTATED-1a2b3c4d5e6f7";

#[tokio::test]
async fn secrets_never_appear_in_answers_logs_or_the_store() {
    let secrets = [GOOD, WRONG, ROTATED, ADMIN_TOKEN, ADMIN_PASSWORD, ENCRYPTION_KEY];

    let mock = switchyard_mock::start(MockOptions {
        api_key: Some(GOOD.into()),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("data");
    let log = dir.path().join("gw.log");
    let gw = start(
        &app,
        &log,
        &["--log-level", "debug", "--log-content"],
        &[
            ("SWITCHYARD_ADMIN_TOKENS", ADMIN_TOKEN),
            ("SWITCHYARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHYARD_ENCRYPTION_KEY", ENCRYPTION_KEY),
        ],
    );
    let http = client();
    let mut seen = String::new();
    seen.push_str(&provider_and_key_management_answers(&http, &gw, &mock.base_url()).await);
    seen.push_str(&key_by_id_answers(&http, &gw).await);
    seen.push_str(&inference_answers(&http, &gw).await);
    seen.push_str(&logs_metrics_and_login_answers(&http, &gw).await);
    assert!(
        seen.contains("good") && seen.contains("sk-m"),
        "the answers were collected (redacted prefixes show)"
    );
    let logs = gw.stop();
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug logging was on");
    assert!(logs.lines().count() > 5, "{logs}");
    for s in secrets {
        assert!(!seen.contains(s), "{s} appears in an answer");
        assert!(!logs.contains(s), "{s} appears in the log");
    }
    // The mock saw the good key, so it did travel upstream.
    assert!(mock
        .requests()
        .iter()
        .any(|r| r.header("authorization") == Some(&format!("Bearer {GOOD}"))));
    no_key_value_in_clear_on_disk(&app);
}

/// One admin-authenticated call; returns the status and the answer's headers and body as text.
async fn admin_call(
    http: &reqwest::Client,
    gw: &Proc,
    m: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = http.request(m, gw.url(path)).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = answer_text(r).await;
    (status, text)
}

/// An answer's headers and body as text.
async fn answer_text(r: reqwest::Response) -> String {
    let headers = format!("{:?}", r.headers());
    format!("{headers}\n{}\n", r.text().await.unwrap())
}

/// Creates providers and keys (one rejected update carrying a secret), then reads them back.
async fn provider_and_key_management_answers(http: &reqwest::Client, gw: &Proc, base: &str) -> String {
    use reqwest::Method as M;
    let steps: Vec<(M, String, Option<Value>)> = vec![
        (
            M::POST,
            "/api/providers".into(),
            Some(json!({"provider": "good", "network_config": {"base_url": base},
            "custom_provider_config": {"base_provider_type": "openai"},
            "keys": [{"name": "g", "value": GOOD, "models": ["*"]}]})),
        ),
        (
            M::POST,
            "/api/providers".into(),
            Some(
                json!({"provider": "bad", "network_config": {"base_url": base, "max_retries": 0},
            "custom_provider_config": {"base_provider_type": "openai"}}),
            ),
        ),
        (
            M::POST,
            "/api/providers/bad/keys".into(),
            Some(json!({"name": "w", "value": WRONG, "models": ["*"]})),
        ),
        // A rejected update that carries a secret: the error must not echo it.
        (
            M::POST,
            "/api/providers/bad/keys".into(),
            Some(json!({"name": "w2", "value": ROTATED, "weight": -1})),
        ),
        (
            M::POST,
            "/api/providers/bad/keys".into(),
            Some(json!({"name": "w", "value": ROTATED})),
        ),
        (M::GET, "/api/providers".into(), None),
        (M::GET, "/api/providers/good".into(), None),
        (M::GET, "/api/providers/bad/keys".into(), None),
        (M::GET, "/api/routing/explain?model=echo".into(), None),
        (M::GET, "/".into(), None),
    ];
    let mut seen = String::new();
    for (m, path, body) in steps {
        let (status, text) = admin_call(http, gw, m, &path, body).await;
        assert!(status < 500, "{path}: {status} {text}");
        seen.push_str(&text);
    }
    seen
}

/// The id of `provider`'s first key.
async fn first_key_id(http: &reqwest::Client, gw: &Proc, provider: &str) -> String {
    let keys: Value = http
        .get(gw.url(&format!("/api/providers/{provider}/keys")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    keys["keys"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{keys}"))
        .to_owned()
}

/// Keys by id: check each, read each, rotate one.
async fn key_by_id_answers(http: &reqwest::Client, gw: &Proc) -> String {
    use reqwest::Method as M;
    let bad_id = first_key_id(http, gw, "bad").await;
    let good_id = first_key_id(http, gw, "good").await;
    let mut seen = String::new();
    for (m, path, body) in [
        (M::POST, format!("/api/providers/bad/keys/{bad_id}/check"), None),
        (M::POST, format!("/api/providers/good/keys/{good_id}/check"), None),
        (M::GET, format!("/api/providers/bad/keys/{bad_id}"), None),
        (
            M::PUT,
            format!("/api/providers/bad/keys/{bad_id}"),
            Some(json!({"weight": "x", "value": ROTATED})),
        ),
    ] {
        let (_, text) = admin_call(http, gw, m, &path, body).await;
        seen.push_str(&text);
    }
    seen
}

/// Inference: one served by the good key, one failing upstream with the wrong key (401 echoed).
async fn inference_answers(http: &reqwest::Client, gw: &Proc) -> String {
    let mut seen = String::new();
    for model in ["good/echo", "bad/echo"] {
        let r = http
            .post(gw.url("/v1/chat/completions"))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        seen.push_str(&answer_text(r).await);
    }
    let (_, text) = admin_call(http, gw, reqwest::Method::GET, "/v1/models", None).await;
    seen.push_str(&text);
    seen
}

/// The logs API and the metrics (after the log writer's batch interval), then a password login
/// and a failed one.
async fn logs_metrics_and_login_answers(http: &reqwest::Client, gw: &Proc) -> String {
    let mut seen = String::new();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for path in ["/api/logs", "/api/logs/stats", "/metrics"] {
        let (status, text) = admin_call(http, gw, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}");
        seen.push_str(&text);
    }
    for pw in [ADMIN_PASSWORD, "wrong"] {
        let r = http
            .post(gw.url("/api/auth/login"))
            .json(&json!({"username": "admin", "password": pw}))
            .send()
            .await
            .unwrap();
        seen.push_str(&answer_text(r).await);
    }
    seen
}

/// On disk: neither the config store nor the request log holds a key value in clear.
fn no_key_value_in_clear_on_disk(app: &Path) {
    let config_db = files_bytes(app, "config.db");
    let logs_db = files_bytes(app, "logs.db");
    assert!(!config_db.is_empty() && !logs_db.is_empty());
    for s in [GOOD, WRONG, ROTATED] {
        assert!(!contains_bytes(&config_db, s), "{s} in config.db");
        assert!(!contains_bytes(&logs_db, s), "{s} in logs.db");
    }
}

#[tokio::test]
async fn the_encrypted_store_migrates_clear_rows_and_refuses_a_missing_or_wrong_key() {
    const KEY: &str = "sk-mittwald-ATREST-77aa88bb99cc00";
    let mock = switchyard_mock::start(MockOptions {
        api_key: Some(KEY.into()),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("data");
    let log = dir.path().join("gw.log");
    let http = client();
    let chat = json!({"model": "m/echo", "messages": [{"role": "user", "content": "hi"}]});

    // Before encryption: the key is stored in clear.
    let gw = start(&app, &log, &[], &[]);
    let r = http
        .post(gw.url("/api/providers"))
        .json(
            &json!({"provider": "m", "network_config": {"base_url": mock.base_url()},
                      "custom_provider_config": {"base_provider_type": "openai"},
                      "keys": [{"name": "k", "value": KEY, "models": ["*"]}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = gw.stop();
    assert!(
        out.contains("SWITCHYARD_ENCRYPTION_KEY"),
        "the clear store is warned about"
    );
    assert!(contains_bytes(&files_bytes(&app, "config.db"), KEY));

    // With a key: migrated on start-up, gone from the file, still served.
    let env = [("SWITCHYARD_ENCRYPTION_KEY", ENCRYPTION_KEY)];
    let gw = start(&app, &log, &[], &env);
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let out = gw.stop();
    assert!(
        out.contains("encrypted provider keys that were stored in clear"),
        "{out}"
    );
    assert!(!contains_bytes(&files_bytes(&app, "config.db"), KEY));

    // Without the key, or with another one: a clear refusal (and the right key still opens it after).
    let out = refuses(&app, &log, &[], &[]);
    assert!(
        out.contains("encrypted provider keys") && out.contains("SWITCHYARD_ENCRYPTION_KEY"),
        "{out}"
    );
    let out = refuses(
        &app,
        &log,
        &[],
        &[("SWITCHYARD_ENCRYPTION_KEY", "another-key-0123456789abcdef")],
    );
    assert!(out.contains("wrong key"), "{out}");
    assert!(!out.contains(KEY));

    // The right key still opens it and traffic carries the decrypted key upstream.
    mock.reset();
    let gw = start(&app, &log, &[], &env);
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    gw.stop();
}
