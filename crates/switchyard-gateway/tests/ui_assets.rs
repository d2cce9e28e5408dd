//! The web UI over plain HTTP (no browser): the page and its assets (content types, caching, security
//! headers, no secrets), `GET /api/routing/explain`, and the key check the Providers page calls.

mod common;

use common::TestGateway;
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions};

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn page_and_assets_are_served_with_types_caching_and_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;

    let started = std::time::Instant::now();
    let r = gw.http.get(gw.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    let csp = header(&r, "content-security-policy").to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let html = r.text().await.unwrap();
    assert!(html.contains("<nav aria-label=\"Main\">"), "{html}");
    for page in ["#/providers", "#/routing", "#/dashboard", "#/logs"] {
        assert!(html.contains(&format!("href=\"{page}\"")), "nav link {page}");
    }
    // The embedded meta block names the built-in providers and says logs are on.
    let meta_start = html.find("id=\"switchyard-meta\">").unwrap() + "id=\"switchyard-meta\">".len();
    let meta_end = html[meta_start..].find("</script>").unwrap() + meta_start;
    let meta: Value = serde_json::from_str(&html[meta_start..meta_end]).unwrap();
    assert_eq!(meta["logs_enabled"], true);
    assert!(meta["builtins"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["name"] == "openai"));
    assert!(meta["base_types"].as_array().unwrap().contains(&json!("openai")));

    // Every asset the page names is served with its type and cached as immutable under the versioned
    // path; the whole page with its modules is small.
    let version = switchyard_gateway::admin::ui::asset_version();
    let mut total = html.len();
    for (file, ctype) in [
        ("app.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("lib.js", "text/javascript; charset=utf-8"),
        ("charts.js", "text/javascript; charset=utf-8"),
        ("providers.js", "text/javascript; charset=utf-8"),
        ("routing.js", "text/javascript; charset=utf-8"),
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("logs.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let r = gw
            .http
            .get(gw.url(&format!("/ui/{version}/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(header(&r, "content-type"), ctype, "{file}");
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable",
            "{file}"
        );
        total += r.bytes().await.unwrap().len();
    }
    assert!(total < 150 * 1024, "UI weighs {total} bytes");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "UI took {:?}",
        started.elapsed()
    );

    // An old version's URL still works but is not cached; unknown files are a JSON 404.
    let r = gw
        .http
        .get(gw.url("/ui/0123456789ab/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    let (status, body) = gw.get(&format!("/ui/{version}/nope.js")).await;
    assert_eq!(status, 404);
    common::assert_error_shape(&body, 404);
}

#[tokio::test]
async fn page_never_carries_secrets_and_key_checks_tell_good_from_bad() {
    let mock = start(MockOptions {
        api_key: Some("sk-good-key-123456".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    gw.post(
        "/api/providers",
        json!({"provider": "openai", "network_config": {"base_url": mock.base_url()}}),
    )
    .await;
    let (_, good) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "good", "value": "sk-good-key-123456", "models": ["*"]}),
        )
        .await;
    let (_, bad) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "bad", "value": "sk-wrong-key-654321", "models": ["*"]}),
        )
        .await;

    // The shell is static: whatever is configured, no key value (clear or redacted) is in it.
    let page = gw
        .http
        .get(gw.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("sk-good-key-123456") && !page.contains("sk-wrong-key-654321"));
    assert!(!page.contains("sk-g************************3456"));
    // What the Providers page shows comes from the API, which redacts.
    let (_, providers) = gw.get("/api/providers").await;
    let text = providers.to_string();
    assert!(text.contains("sk-g************************3456"), "{text}");
    assert!(!text.contains("sk-good-key-123456") && !text.contains("sk-wrong-key-654321"));

    let check = |id: &Value| {
        let path = format!("/api/providers/openai/keys/{}/check", id.as_str().unwrap());
        let gw = &gw;
        async move { gw.post(&path, json!({})).await }
    };
    let (status, ok) = check(&good["id"]).await;
    assert_eq!(status, 200);
    assert_eq!(ok["ok"], true, "{ok}");
    let (_, not_ok) = check(&bad["id"]).await;
    assert_eq!(not_ok["ok"], false, "{not_ok}");
    assert_eq!(not_ok["status"], 401);
    assert!(!not_ok.to_string().contains("sk-wrong-key-654321"));
}

/// The seed's lanes: dedicated `openai` (key lists `PREMIUM`) falling back to custom `mittwald-shared`
/// (`*`).
async fn seed_lanes(gw: &TestGateway) -> (String, String) {
    let (s, b) = gw
        .post(
            "/api/providers",
            json!({"provider": "openai", "network_config": {"base_url": "http://127.0.0.1:9/v1"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, dedicated) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "mittwald-dedicated", "value": "sk-dedicated-0001", "models": ["PREMIUM"]}),
        )
        .await;
    gw.add_openai_compatible("mittwald-shared", "http://127.0.0.1:9/v1", "sk-shared-0002")
        .await;
    let (s, b) = gw
        .put("/api/providers/openai", json!({"fallbacks": ["mittwald-shared"]}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, shared) = gw.get("/api/providers/mittwald-shared/keys").await;
    (
        dedicated["id"].as_str().unwrap().to_owned(),
        shared["keys"][0]["id"].as_str().unwrap().to_owned(),
    )
}

fn steps(explained: &Value) -> Vec<(String, String, String)> {
    explained["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["provider"].as_str().unwrap().to_owned(),
                s["model"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn step(p: &str, m: &str, r: &str) -> (String, String, String) {
    (p.to_owned(), m.to_owned(), r.to_owned())
}

#[tokio::test]
async fn explain_shows_the_planners_order_reasons_weights_and_changes_with_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let (dedicated, _) = seed_lanes(&gw).await;

    // The premium model: listed on the dedicated key first, then the shared lane through `*`.
    let (s, e) = gw.get("/api/routing/explain?model=PREMIUM").await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["routable"], true);
    assert_eq!(e["route"], "v1");
    assert_eq!(
        steps(&e),
        vec![
            step("openai", "PREMIUM", "listed"),
            step("mittwald-shared", "PREMIUM", "wildcard")
        ]
    );
    assert_eq!(e["varies"], false);
    assert_eq!(e["plan"][0]["primary_share"], 1.0);
    assert_eq!(e["plan"][0]["keys"][0]["name"], "mittwald-dedicated");
    assert_eq!(e["plan"][0]["keys"][0]["share"], 1.0);
    assert_eq!(e["plan"][0]["keys"][0]["matches"], "listed");
    assert_eq!(e["plan"][0]["health"]["state"], "healthy");
    assert!(!e.to_string().contains("sk-dedicated-0001"));

    // Named explicitly: that provider, then its configured chain with the same model name.
    let (_, e) = gw.get("/api/routing/explain?model=openai/PREMIUM").await;
    assert_eq!(
        steps(&e),
        vec![
            step("openai", "PREMIUM", "named"),
            step("mittwald-shared", "PREMIUM", "configured_fallback")
        ]
    );
    assert_eq!(e["plan"][1]["fallback_of"], "openai");

    // Any other model: only the shared lane serves it.
    let (_, e) = gw.get("/api/routing/explain?model=gpt-oss-120b").await;
    assert_eq!(
        steps(&e),
        vec![step("mittwald-shared", "gpt-oss-120b", "wildcard")]
    );

    // The dedicated key also takes `*`: both lanes serve other models, shares follow the weights.
    let (s, b) = gw
        .put(
            &format!("/api/providers/openai/keys/{dedicated}"),
            json!({"models": ["PREMIUM", "*"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let share_of = |e: &Value, p: &str| {
        e["plan"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["provider"] == p)
            .and_then(|s| s["primary_share"].as_f64())
            .unwrap()
    };
    let (_, e) = gw.get("/api/routing/explain?model=gpt-oss-120b").await;
    assert_eq!(e["varies"], true);
    assert!((share_of(&e, "openai") - 0.5).abs() < 0.06, "{e}");
    gw.put(
        &format!("/api/providers/openai/keys/{dedicated}"),
        json!({"weight": 3.0}),
    )
    .await;
    let (_, e) = gw.get("/api/routing/explain?model=gpt-oss-120b").await;
    assert!((share_of(&e, "openai") - 0.75).abs() < 0.06, "{e}");
    assert!((share_of(&e, "mittwald-shared") - 0.25).abs() < 0.06, "{e}");
    // Same config, same answer.
    let (_, again) = gw.get("/api/routing/explain?model=gpt-oss-120b").await;
    assert_eq!(e, again);

    // On /openai/v1 the openai provider goes first among equals.
    let (_, e) = gw
        .get("/api/routing/explain?model=gpt-oss-120b&route=openai")
        .await;
    assert_eq!(e["route"], "openai");
    assert_eq!(e["native_provider"], "openai");
    assert_eq!(e["plan"][0]["provider"], "openai");
    assert_eq!(e["varies"], false);

    // A disabled key takes its lane out.
    gw.put(
        &format!("/api/providers/openai/keys/{dedicated}"),
        json!({"enabled": false}),
    )
    .await;
    let (_, e) = gw.get("/api/routing/explain?model=PREMIUM").await;
    assert_eq!(steps(&e), vec![step("mittwald-shared", "PREMIUM", "wildcard")]);

    // The request's own fallbacks come after the resolved targets.
    let (_, e) = gw
        .get("/api/routing/explain?model=PREMIUM&fallbacks=openai/other-model")
        .await;
    assert_eq!(e["plan"][1]["reason"], "request_fallback");
    assert_eq!(e["plan"][1]["model"], "other-model");
    assert!(e["plan"][1]["note"].as_str().unwrap().contains("no enabled key"));
}

#[tokio::test]
async fn explain_reports_unroutable_models_and_rejects_bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let (s, e) = gw.get("/api/routing/explain?model=nothing-serves-this").await;
    assert_eq!(s, 200);
    assert_eq!(e["routable"], false);
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no provider serves model 'nothing-serves-this'"));
    assert_eq!(e["plan"], json!([]));

    let (s, e) = gw.get("/api/routing/explain?model=mittwald-shared/x").await;
    assert_eq!(s, 200);
    assert_eq!(e["routable"], false, "{e}");

    let (s, e) = gw.get("/api/routing/explain").await;
    assert_eq!(s, 400);
    assert_eq!(common::assert_error_shape(&e, 400)["param"], "model");
    let (s, e) = gw.get("/api/routing/explain?model=x&route=bedrock").await;
    assert_eq!(s, 400);
    assert_eq!(common::assert_error_shape(&e, 400)["param"], "route");
    let (s, e) = gw.get("/api/routing/explain?model=x&fallbacks=not-a-pair").await;
    assert_eq!(s, 200);
    assert_eq!(e["routable"], false);
}
