//! Key-level model aliases and case-insensitive model ids over the real server and the mock: the
//! upstream receives the alias's target, the log row names both, the aliases survive a restart and
//! are listed by `/v1/models`; a provider with `case_insensitive_model_ids` is sent the listed spelling.

mod common;

use std::time::{Duration, Instant};

use common::{chat, TestGateway};
use serde_json::{json, Value};
use switchyard_gateway::ServerConfig;
use switchyard_mock::{start, MockOptions, MockUpstream};

const SECRET: &str = "sk-upstream-secret";

async fn gateway(dir: &tempfile::TempDir) -> TestGateway {
    TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    })
    .await
}

async fn mock() -> MockUpstream {
    start(MockOptions {
        api_key: Some(SECRET.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn sent_model(mock: &MockUpstream) -> String {
    let seen = mock.requests().pop().expect("the upstream saw a request");
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    body["model"].as_str().unwrap().to_owned()
}

async fn rows(gw: &TestGateway, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, page) = gw.get("/api/logs?limit=100&sort_by=timestamp&order=asc").await;
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= at_least || Instant::now() > deadline {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_alias_reaches_the_upstream_as_its_target_and_survives_a_restart() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir).await;
    gw.add_openai_compatible("lane", &mock.base_url(), SECRET).await;
    let (s, key) = gw
        .post(
            "/api/providers/lane/keys",
            json!({"name": "aliased", "value": SECRET, "models": ["gpt-oss-120b"],
                   "aliases": {"house-model": "gpt-oss-120b"}}),
        )
        .await;
    assert_eq!(s, 200, "{key}");
    assert_eq!(key["aliases"], json!({"house-model": "gpt-oss-120b"}));
    let key_id = key["id"].as_str().unwrap().to_owned();
    // A partial PUT replaces the map and keeps everything else.
    let (s, b) = gw
        .put(
            &format!("/api/providers/lane/keys/{key_id}"),
            json!({"aliases": {"house-model": "gpt-oss-120b", "old-model": "gpt-oss-120b"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["models"], json!(["gpt-oss-120b"]));
    // An invalid map is refused, naming the alias.
    let (s, b) = gw
        .put(
            &format!("/api/providers/lane/keys/{key_id}"),
            json!({"aliases": {"a": "*"}}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["param"], "aliases.a", "{b}");

    gw.stop().await;
    let gw = gateway(&dir).await;
    let (_, provider) = gw.get("/api/providers/lane").await;
    let k = provider["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        k["aliases"],
        json!({"house-model": "gpt-oss-120b", "old-model": "gpt-oss-120b"})
    );

    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&chat("house-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "lane");
    assert_eq!(sent_model(&mock), "gpt-oss-120b");
    let row = rows(&gw, 1).await.pop().expect("a log row");
    assert_eq!(row["model_requested"], "house-model", "{row}");
    assert_eq!(row["model"], "gpt-oss-120b", "{row}");

    let (_, models) = gw.get("/v1/models?provider=lane").await;
    let alias = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "lane/old-model")
        .cloned()
        .unwrap_or_else(|| panic!("the alias is listed: {models}"));
    assert_eq!(alias["alias_of"], "gpt-oss-120b");
}

#[tokio::test]
async fn case_insensitive_ids_reach_the_upstream_in_the_listed_spelling() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir).await;
    let (s, b) = gw
        .post(
            "/api/providers",
            json!({"provider": "mittwald", "network_config": {"base_url": mock.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"},
                   "case_insensitive_model_ids": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["case_insensitive_model_ids"], true);
    let (s, b) = gw
        .post(
            "/api/providers/mittwald/keys",
            json!({"name": "k", "value": SECRET, "models": ["Whisper-Large-V3-Turbo", "gpt-oss-120b"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for asked in ["GPT-OSS-120B", "mittwald/Gpt-Oss-120b"] {
        let r = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .json(&chat(asked))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asked}");
        assert_eq!(sent_model(&mock), "gpt-oss-120b", "{asked}");
    }
}
