//! Model discovery over the real server and two mock upstreams behind `*` keys: each bare model goes
//! straight to the endpoint whose `/v1/models` lists it (the other upstream sees nothing); an
//! endpoint still provisioning (empty list) falls back to the keys; `/v1/models` and the routing
//! explanation show the discovered models and the reason.

mod common;

use std::time::{Duration, Instant};

use common::{chat, TestGateway};
use serde_json::{json, Value};
use switchyard_gateway::ServerConfig;
use switchyard_mock::{start, MockOptions, MockUpstream};

const SECRET: &str = "sk-upstream-secret";

async fn mock(models: &[&str]) -> MockUpstream {
    start(MockOptions {
        api_key: Some(SECRET.into()),
        models: Some(models.iter().map(|m| m.to_string()).collect()),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn lane(gw: &TestGateway, name: &str, mock: &MockUpstream) {
    let (s, b) = gw
        .post(
            "/api/providers",
            json!({"provider": name, "network_config": {"base_url": mock.base_url(), "max_retries": 0},
                   "custom_provider_config": {"base_provider_type": "openai"}, "model_discovery": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = gw
        .post(
            &format!("/api/providers/{name}/keys"),
            json!({"name": format!("{name}-key"), "value": SECRET, "models": ["*"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

async fn setup(dedicated: &[&str]) -> (TestGateway, MockUpstream, MockUpstream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    })
    .await;
    let a = mock(dedicated).await;
    let b = mock(&["gpt-oss-120b", "Qwen3-Embedding-8B"]).await;
    lane(&gw, "dedicated", &a).await;
    lane(&gw, "shared", &b).await;
    for p in ["dedicated", "shared"] {
        let (s, r) = gw
            .post(&format!("/api/providers/{p}/refresh-models"), json!({}))
            .await;
        assert_eq!(s, 200, "{r}");
    }
    (gw, a, b, dir)
}

fn chats(m: &MockUpstream) -> usize {
    m.requests()
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .count()
}

#[tokio::test]
async fn each_bare_model_goes_straight_to_the_endpoint_that_lists_it() {
    let (gw, dedicated, shared, _dir) = setup(&["PREMIUM-MODEL"]).await;
    let (_, view) = gw.get("/api/providers/dedicated").await;
    assert_eq!(
        view["discovered_models"]["models"],
        json!(["PREMIUM-MODEL"]),
        "{view}"
    );
    assert!(view["discovered_models"]["read_at_ms"].as_i64().unwrap() > 0);
    for _ in 0..10 {
        let r = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .json(&chat("PREMIUM-MODEL"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-provider"], "dedicated");
        assert_eq!(r.headers()["x-switchyard-attempts"], "1");
        let r = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .json(&chat("gpt-oss-120b"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-provider"], "shared");
    }
    assert_eq!(
        chats(&dedicated),
        10,
        "only PREMIUM-MODEL reached the dedicated endpoint"
    );
    assert_eq!(
        chats(&shared),
        10,
        "only gpt-oss-120b reached the shared endpoint"
    );

    let (_, models) = gw.get("/v1/models").await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for id in [
        "dedicated/PREMIUM-MODEL",
        "shared/gpt-oss-120b",
        "shared/Qwen3-Embedding-8B",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }

    let (s, explain) = gw.get("/api/routing/explain?model=PREMIUM-MODEL").await;
    assert_eq!(s, 200, "{explain}");
    let plan = explain["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 1, "{explain}");
    assert_eq!(plan[0]["provider"], "dedicated");
    assert_eq!(plan[0]["reason"], "discovered", "{explain}");
}

#[tokio::test]
async fn an_endpoint_still_provisioning_routes_by_its_keys() {
    // The dedicated endpoint lists nothing yet: its `*` key serves as before (weighted with shared).
    let (gw, _dedicated, _shared, _dir) = setup(&[]).await;
    let (_, view) = gw.get("/api/providers/dedicated").await;
    assert_eq!(view["discovered_models"]["models"], json!([]), "{view}");
    let (_, explain) = gw.get("/api/routing/explain?model=PREMIUM-MODEL").await;
    let providers: Vec<&str> = explain["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["provider"].as_str())
        .collect();
    assert_eq!(
        providers,
        ["dedicated"],
        "shared's list lacks it; dedicated has no usable list: {explain}"
    );
    assert_eq!(explain["plan"][0]["reason"], "wildcard");
    let (_, explain) = gw.get("/api/routing/explain?model=gpt-oss-120b").await;
    let reasons: Vec<(&str, &str)> = explain["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["provider"].as_str().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons, [("shared", "discovered"), ("dedicated", "wildcard")]);
}

#[tokio::test]
async fn lists_are_read_in_the_background_and_refresh_needs_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let a = mock(&["only-here"]).await;
    lane(&gw, "dedicated", &a).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, view) = gw.get("/api/providers/dedicated").await;
        if view["discovered_models"]["models"] == json!(["only-here"]) {
            break;
        }
        assert!(Instant::now() < deadline, "the list was never read: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.add_openai_compatible("plain", &a.base_url(), SECRET).await;
    let (s, b): (u16, Value) = gw.post("/api/providers/plain/refresh-models", json!({})).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["param"], "model_discovery");
}
