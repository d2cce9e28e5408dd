//! Admin auth through the real server: every admin route refuses without credentials, bearer tokens,
//! the cookie login with CSRF, the open-on-loopback default, and inference staying outside admin auth.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{assert_error_shape, chat, TestGateway};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchyard_core::secret::Secret;
use switchyard_gateway::admin::auth::hash_password;
use switchyard_gateway::{SecurityConfig, ServerConfig};
use switchyard_mock::MockOptions;

const TOKEN: &str = "sy-admin-test-token-0123456789";
const PASSWORD: &str = "correct horse battery staple";

fn config(dir: &Path, security: SecurityConfig) -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.to_owned(),
        shutdown_grace: Duration::from_secs(5),
        max_request_body_bytes: 1024 * 1024,
        security,
        ..ServerConfig::default()
    }
}

fn secured() -> SecurityConfig {
    let mut s = SecurityConfig::default();
    s.admin.tokens.push(Secret::new(TOKEN));
    s.admin.password_hash = Some(hash_password(PASSWORD).unwrap());
    // This file sends many wrong credentials on purpose; throttling them is `hostile_clients.rs`'s.
    s.login_throttle.free_failures = 10_000;
    s.login_throttle.global_failures_per_minute = 10_000;
    s
}

async fn start_secured(dir: &Path) -> TestGateway {
    TestGateway::start_with(config(dir, secured())).await
}

/// Every route path registered in the server crates' source (`.route("/...", ...)`), with path parameters
/// filled in. Read from the source so routes added later are covered without editing this test.
fn registered_routes() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    // The server's crates: the routes are declared in the gateway (server wiring) and the admin crate.
    for krate in ["switchyard-gateway", "switchyard-admin", "switchyard-proxy"] {
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(krate)
                .join("src"),
            &mut files,
        );
    }
    let mut routes = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let squashed: String = text.split_whitespace().collect::<Vec<_>>().join("");
        for part in squashed.split(".route(\"").skip(1) {
            let path: String = part.chars().take_while(|c| *c != '"').collect();
            let filled: Vec<String> = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with("{*") {
                        "x/y".to_owned()
                    } else if seg.starts_with('{') {
                        "x".to_owned()
                    } else {
                        seg.to_owned()
                    }
                })
                .collect();
            routes.insert(filled.join("/"));
        }
    }
    routes
}

#[tokio::test]
async fn every_admin_route_refuses_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_secured(dir.path()).await;
    let routes = registered_routes();
    let admin: Vec<&String> = routes
        .iter()
        .filter(|p| switchyard_core::admin_auth::is_admin_path(p))
        .collect();
    // The enumeration found the management API, the logs API, the metrics and the UI shell.
    for known in [
        "/api/providers",
        "/api/providers/x/keys/x/check",
        "/api/logs/stats",
        "/metrics",
        "/",
    ] {
        assert!(
            admin.iter().any(|p| *p == known),
            "{known} not found in {admin:?}"
        );
    }
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    let mut reached_with_token = 0;
    for path in &admin {
        for m in &methods {
            let r = gw
                .http
                .request(m.clone(), gw.url(path))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            if path.as_str() == "/" && *m == Method::GET {
                assert_eq!(
                    status,
                    StatusCode::SEE_OTHER,
                    "GET / sends a browser to the login page"
                );
                assert_eq!(r.headers()["location"], "/login");
                continue;
            }
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{m} {path} without credentials");
            assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"switchyard\"");
            let body: Value = r.json().await.unwrap();
            let err = assert_error_shape(&body, 401);
            assert_eq!(err["type"], "authentication_error");
            assert_eq!(err["code"], "admin_auth_required");

            // A wrong token and a non-bearer scheme are refused the same way.
            for authz in [format!("Bearer {TOKEN}x"), "Basic YWRtaW46YWRtaW4=".to_owned()] {
                let r = gw
                    .http
                    .request(m.clone(), gw.url(path))
                    .header("authorization", authz)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{m} {path}");
            }
        }
        // With the token the route is reached: some method gets an answer other than 401/404-route.
        let mut reached = false;
        for m in &methods {
            let r = gw
                .http
                .request(m.clone(), gw.url(path))
                .bearer_auth(TOKEN)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_ne!(r.status(), StatusCode::UNAUTHORIZED, "{m} {path} with the token");
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if body["error"]["code"] != "route_not_found" {
                reached = true;
            }
        }
        assert!(reached, "{path} is not a route the router knows");
        reached_with_token += 1;
    }
    assert!(
        reached_with_token >= 12,
        "only {reached_with_token} admin routes found"
    );
    // Unknown paths under /api are admin paths too (default deny): no route discovery without a token.
    let (s, _) = gw.get("/api/not-yet-written").await;
    assert_eq!(s, 401);
    gw.stop().await;
}

#[tokio::test]
async fn bearer_tokens_open_the_management_api_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_secured(dir.path()).await;
    let r = gw
        .http
        .post(gw.url("/api/providers"))
        .bearer_auth(TOKEN)
        .json(&json!({"provider": "openai"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no CSRF token is needed with a bearer token");
    let r = gw
        .http
        .get(gw.url("/api/providers"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["providers"][0]["name"], "openai", "{body}");
    let r = gw
        .http
        .get(gw.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("switchyard_"));
    // Health and static UI assets stay public (probes, and the login page's stylesheet).
    assert_eq!(gw.get("/health").await.0, 200);
    let version = switchyard_gateway::admin::ui::asset_version();
    let r = gw
        .http
        .get(gw.url(&format!("/ui/{version}/app.css")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

fn session_cookie(headers: &HeaderMap) -> String {
    let set = headers["set-cookie"].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn cookie_login_needs_the_csrf_token_for_changes_and_logout_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_secured(dir.path()).await;
    bad_logins_are_refused(&gw).await;
    let (cookie, csrf) = log_in(&gw).await;
    the_cookie_reads_and_the_session_hands_out_the_csrf_token(&gw, &cookie, &csrf).await;
    changes_need_the_csrf_token_and_the_same_origin(&gw, &cookie, &csrf).await;
    tampered_or_logged_out_cookies_are_no_session(&gw, &cookie).await;

    // The login page is served to anonymous browsers, under the UI's security headers.
    let r = gw.http.get(gw.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert!(r.text().await.unwrap().contains("login.js"));
    gw.stop().await;
}

fn login_request(gw: &TestGateway, body: &Value) -> reqwest::RequestBuilder {
    gw.http.post(gw.url("/api/auth/login")).json(body)
}

fn with_cookie(gw: &TestGateway, cookie: &str, m: Method, path: &str) -> reqwest::RequestBuilder {
    gw.http.request(m, gw.url(path)).header("cookie", cookie)
}

/// Wrong password, wrong user, form posts and wrong types: no session.
async fn bad_logins_are_refused(gw: &TestGateway) {
    // Wrong password, wrong user: 401, no cookie.
    for body in [
        json!({"username": "admin", "password": "wrong"}),
        json!({"username": "root", "password": PASSWORD}),
        json!({"token": "sy-admin-not-the-token-000000"}),
    ] {
        let r = login_request(gw, &body).send().await.unwrap();
        assert_eq!(r.status(), 401, "{body}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    // A form post (what a cross-site page can send) is not accepted as a login.
    let r = gw
        .http
        .post(gw.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Wrong types name the field.
    let r = login_request(gw, &json!({"username": 1, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&body, 400)["param"], "username");
}

/// A good password login; returns the session cookie and the CSRF token.
async fn log_in(gw: &TestGateway) -> (String, String) {
    let r = login_request(gw, &json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(r.headers());
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(body["username"], "admin");
    (cookie, csrf)
}

async fn the_cookie_reads_and_the_session_hands_out_the_csrf_token(
    gw: &TestGateway,
    cookie: &str,
    csrf: &str,
) {
    // Reading works with the cookie alone; the UI shell is served.
    assert_eq!(
        with_cookie(gw, cookie, Method::GET, "/api/providers")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = with_cookie(gw, cookie, Method::GET, "/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("switchyard-meta"));
    // The session endpoint hands the UI its CSRF token.
    let s: Value = with_cookie(gw, cookie, Method::GET, "/api/auth/session")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        s,
        json!({"auth_required": true, "authenticated": true, "username": "admin", "csrf_token": csrf})
    );
}

async fn changes_need_the_csrf_token_and_the_same_origin(gw: &TestGateway, cookie: &str, csrf: &str) {
    // A change without the CSRF token, with a wrong one, or from another site: 403, nothing stored.
    let provider = json!({"provider": "openai"});
    for (token, origin) in [
        (None, None),
        (Some("wrong"), None),
        (Some(csrf), Some("http://evil.example")),
    ] {
        let mut req = with_cookie(gw, cookie, Method::POST, "/api/providers").json(&provider);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "token {token:?} origin {origin:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(assert_error_shape(&body, 403)["type"], "permission_error");
    }
    let list: Value = gw
        .http
        .get(gw.url("/api/providers"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["providers"], json!([]), "refused changes stored nothing");

    // With the token (and a same-origin Origin, as a browser sends) the change goes through.
    let r = with_cookie(gw, cookie, Method::POST, "/api/providers")
        .header("x-csrf-token", csrf)
        .header("origin", format!("http://{}", gw.addr))
        .json(&provider)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn tampered_or_logged_out_cookies_are_no_session(gw: &TestGateway, cookie: &str) {
    // A tampered cookie is no session.
    let tampered = format!("{}A", cookie);
    let r = gw
        .http
        .get(gw.url("/api/providers"))
        .header("cookie", tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Logging out clears the cookie and revokes it.
    let r = with_cookie(gw, cookie, Method::POST, "/api/auth/logout")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(
        with_cookie(gw, cookie, Method::GET, "/api/providers")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = with_cookie(gw, cookie, Method::GET, "/").send().await.unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn an_admin_token_can_be_exchanged_for_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SecurityConfig::default();
    s.admin.tokens.push(Secret::new(TOKEN));
    let gw = TestGateway::start_with(config(dir.path(), s)).await;
    let r = gw
        .http
        .post(gw.url("/api/auth/login"))
        .json(&json!({"token": TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(r.headers());
    let r = gw
        .http
        .get(gw.url("/api/providers"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No password is configured: password logins fail.
    let r = gw
        .http
        .post(gw.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn inference_routes_are_not_behind_admin_auth() {
    let dir = tempfile::tempdir().unwrap();
    let mock = switchyard_mock::start(MockOptions::default()).await.unwrap();
    let gw = start_secured(dir.path()).await;
    let mut auth = HeaderMap::new();
    auth.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .default_headers(auth)
        .build()
        .unwrap();
    let r = http
        .post(gw.url("/api/providers"))
        .json(
            &json!({"provider": "m", "network_config": {"base_url": mock.base_url()},
                      "custom_provider_config": {"base_provider_type": "openai"},
                      "keys": [{"name": "k", "value": "sk-upstream-000000000001", "models": ["*"]}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // No admin credentials on the inference call.
    let (s, body) = gw.post("/v1/chat/completions", chat("m/echo-model")).await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = gw.get("/v1/models").await;
    assert_eq!(s, 200);
    // A client's Authorization header on an inference route is not treated as an admin token.
    let r = gw
        .http
        .post(gw.url("/openai/v1/chat/completions"))
        .bearer_auth("client-key")
        .json(&chat("m/echo-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn loopback_without_credentials_stays_open_but_refuses_foreign_hosts_and_cross_site_posts() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    // The seed's commands work as written.
    let (s, _) = gw.post("/api/providers", json!({"provider": "openai"})).await;
    assert_eq!(s, 200);
    assert_eq!(gw.get("/api/providers").await.0, 200);
    assert_eq!(gw.http.get(gw.url("/")).send().await.unwrap().status(), 200);
    let r = gw
        .http
        .get(gw.url("/api/providers"))
        .header("host", format!("localhost:{}", gw.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // DNS rebinding: a page at evil.example whose name now points at 127.0.0.1.
    let r = gw
        .http
        .get(gw.url("/api/providers"))
        .header("host", "evil.example:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&body, 403)["code"], "foreign_host");
    // A cross-site page posting to localhost.
    let r = gw
        .http
        .post(gw.url("/api/providers"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"provider":"anthropic"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = gw
        .http
        .delete(gw.url("/api/providers/openai"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, list) = gw.get("/api/providers").await;
    assert_eq!(list["providers"].as_array().unwrap().len(), 1, "{list}");
    // The session endpoint tells the UI no login is needed; /login goes to the UI.
    let (_, s) = gw.get("/api/auth/session").await;
    assert_eq!(s, json!({"auth_required": false, "authenticated": true}));
    let r = gw.http.get(gw.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    gw.stop().await;
}
