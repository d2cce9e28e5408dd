//! `config.json` at start-up: seeding the store, reconciling it, and serving a file alone (read-only),
//! through the real server, a real SQLite store and a mock upstream.

mod common;

use std::path::Path;

use common::{assert_error_shape, chat, TestGateway};
use serde_json::{json, Value};
use switchyard_gateway::{Gateway, ServerConfig, StartError};
use switchyard_mock::{MockOptions, MockUpstream};

use common::test_config as server_config;

async fn mock() -> MockUpstream {
    switchyard_mock::start(MockOptions::default()).await.unwrap()
}

const DEDICATED_SECRET: &str = "sk-dedicated-file-0000000001";

/// The seed guide's two lanes, as a config file.
fn lanes(dedicated: &MockUpstream, shared: &MockUpstream) -> Value {
    json!({
        "providers": {
            "openai": {
                "keys": [{"name": "mittwald-dedicated", "value": DEDICATED_SECRET, "models": ["PREMIUM"], "weight": 1.0}],
                "network_config": {"base_url": dedicated.base_url(), "max_retries": 1}
            },
            "mittwald-shared": {
                "keys": [{"name": "mittwald-shared-key", "value": "env.SWITCHYARD_TEST_SHARED_KEY", "models": ["*"], "weight": 1.0}],
                "network_config": {"base_url": shared.base_url()},
                "custom_provider_config": {"base_provider_type": "openai"}
            }
        }
    })
}

fn write(app_dir: &Path, v: &Value) {
    std::fs::write(
        app_dir.join("config.json"),
        serde_json::to_string_pretty(v).unwrap(),
    )
    .unwrap();
}

async fn served_by(gw: &TestGateway, model: &str) -> (u16, String) {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&chat(model))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let key = r
        .headers()
        .get("x-switchyard-key")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, key)
}

#[tokio::test]
async fn a_config_file_seeds_an_empty_store_and_api_edits_survive_restarts() {
    std::env::set_var("SWITCHYARD_TEST_SHARED_KEY", "sk-shared-from-env-0002");
    let (dedicated, shared) = (mock().await, mock().await);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &lanes(&dedicated, &shared));

    let gw = TestGateway::start_with(server_config(dir.path())).await;
    assert_eq!(
        served_by(&gw, "PREMIUM").await,
        (200, "mittwald-dedicated".into())
    );
    assert_eq!(
        served_by(&gw, "gpt-oss-120b").await,
        (200, "mittwald-shared-key".into())
    );
    // The env reference reached the upstream resolved, and is stored and shown as the reference.
    let auth = shared
        .requests()
        .last()
        .unwrap()
        .header("authorization")
        .unwrap()
        .to_owned();
    assert_eq!(auth, "Bearer sk-shared-from-env-0002");
    let (_, keys) = gw.get("/api/providers/mittwald-shared/keys").await;
    assert_eq!(
        keys["keys"][0]["value"], "env.SWITCHYARD_TEST_SHARED_KEY",
        "{keys}"
    );
    let (_, keys) = gw.get("/api/providers/openai/keys").await;
    assert!(
        !keys.to_string().contains(DEDICATED_SECRET),
        "the literal secret is redacted: {keys}"
    );

    // Edits through the API: the dedicated lane now also serves `OTHER`; a provider is added.
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let (s, b) = gw
        .put(
            &format!("/api/providers/openai/keys/{key_id}"),
            json!({"models": ["PREMIUM", "OTHER"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    gw.add_openai_compatible("added-in-ui", &shared.base_url(), "sk-ui-00000000001")
        .await;
    // A file provider deleted through the API...
    assert_eq!(gw.delete("/api/providers/mittwald-shared").await.0, 200);
    gw.stop().await;

    // ...comes back at the next start ("split": the file fills in what the store lacks), while the
    // edits to what the store has are kept.
    let gw = TestGateway::start_with(server_config(dir.path())).await;
    let (_, providers) = gw.get("/api/providers").await;
    let mut names: Vec<&str> = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["added-in-ui", "mittwald-shared", "openai"], "{providers}");
    assert_eq!(served_by(&gw, "OTHER").await, (200, "mittwald-dedicated".into()));
    let (_, keys) = gw.get("/api/providers/openai/keys").await;
    assert_eq!(
        keys["keys"][0]["id"],
        key_id.as_str(),
        "the key was not recreated"
    );
    gw.stop().await;
}

#[tokio::test]
async fn source_of_truth_config_json_makes_the_store_equal_to_the_file() {
    std::env::set_var("SWITCHYARD_TEST_SHARED_KEY", "sk-shared-from-env-0002");
    let (dedicated, shared) = (mock().await, mock().await);
    let dir = tempfile::tempdir().unwrap();
    let mut file = lanes(&dedicated, &shared);
    file["source_of_truth"] = json!("config.json");
    write(dir.path(), &file);

    let gw = TestGateway::start_with(server_config(dir.path())).await;
    let (_, keys) = gw.get("/api/providers/openai/keys").await;
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    gw.put(
        &format!("/api/providers/openai/keys/{key_id}"),
        json!({"models": ["OTHER"]}),
    )
    .await;
    gw.put(
        "/api/providers/openai",
        json!({"network_config": {"max_retries": 5}}),
    )
    .await;
    let (s, _) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "extra", "value": "sk-extra-0000000001"}),
        )
        .await;
    assert_eq!(s, 200);
    gw.add_openai_compatible("added-in-ui", &shared.base_url(), "sk-ui-00000000001")
        .await;
    gw.stop().await;

    // The file changed meanwhile too: the shared lane now has a second key.
    file["providers"]["mittwald-shared"]["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "second", "value": "sk-second-0000000003", "models": ["*"], "weight": 0.0}));
    write(dir.path(), &file);
    let gw = TestGateway::start_with(server_config(dir.path())).await;
    let (_, providers) = gw.get("/api/providers").await;
    let names: Vec<&str> = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["mittwald-shared", "openai"],
        "providers not in the file are deleted"
    );
    let (_, openai) = gw.get("/api/providers/openai").await;
    assert_eq!(
        openai["network_config"]["max_retries"], 1,
        "the file's value wins: {openai}"
    );
    let (_, keys) = gw.get("/api/providers/openai/keys").await;
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        1,
        "the key added through the API is deleted: {keys:?}"
    );
    assert_eq!(keys[0]["id"], key_id.as_str(), "the matched key keeps its id");
    assert_eq!(keys[0]["models"], json!(["PREMIUM"]));
    assert_eq!(served_by(&gw, "OTHER").await, (200, "mittwald-shared-key".into()));
    let (_, shared_keys) = gw.get("/api/providers/mittwald-shared/keys").await;
    assert_eq!(shared_keys["keys"].as_array().unwrap().len(), 2, "{shared_keys}");
    gw.stop().await;
}

#[tokio::test]
async fn a_file_only_config_serves_traffic_and_refuses_every_management_write() {
    std::env::set_var("SWITCHYARD_TEST_SHARED_KEY", "sk-shared-from-env-0002");
    let (dedicated, shared) = (mock().await, mock().await);
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut file = lanes(&dedicated, &shared);
    file["config_store"] = json!({"enabled": false});
    let path = files.path().join("gateway.json");
    std::fs::write(&path, file.to_string()).unwrap();

    let gw = TestGateway::start_with(ServerConfig {
        config_file: Some(path),
        ..server_config(dir.path())
    })
    .await;
    assert_eq!(
        served_by(&gw, "PREMIUM").await,
        (200, "mittwald-dedicated".into())
    );
    let (s, providers) = gw.get("/api/providers").await;
    assert_eq!((s, providers["total"].as_u64()), (200, Some(2)));
    let (_, keys) = gw.get("/api/providers/openai/keys").await;
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();

    let writes = [
        (
            reqwest::Method::POST,
            "/api/providers".to_owned(),
            json!({"provider": "anthropic"}),
        ),
        (
            reqwest::Method::PUT,
            "/api/providers/openai".to_owned(),
            json!({"fallbacks": []}),
        ),
        (
            reqwest::Method::DELETE,
            "/api/providers/openai".to_owned(),
            Value::Null,
        ),
        (
            reqwest::Method::POST,
            "/api/providers/openai/keys".to_owned(),
            json!({"name": "k", "value": "sk-0000000000001"}),
        ),
        (
            reqwest::Method::PUT,
            format!("/api/providers/openai/keys/{key_id}"),
            json!({"weight": 2.0}),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/providers/openai/keys/{key_id}"),
            Value::Null,
        ),
        // Even a body that would be invalid is refused as a write first.
        (
            reqwest::Method::POST,
            "/api/providers".to_owned(),
            json!({"provider": 7}),
        ),
    ];
    for (method, path, body) in writes {
        let mut req = gw.http.request(method.clone(), gw.url(&path));
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 405, "{method} {path}: {body}");
        let err = assert_error_shape(&body, 405);
        assert_eq!(err["code"], "config_read_only", "{body}");
        assert!(err["message"].as_str().unwrap().contains("config.json"), "{body}");
    }
    assert_eq!(
        served_by(&gw, "PREMIUM").await,
        (200, "mittwald-dedicated".into()),
        "still serving"
    );
    // config.db exists in this mode too, but holds governance only (keys and usage change at run
    // time); the provider writes above were all refused.
    gw.stop().await;
}

#[tokio::test]
async fn a_bad_config_file_stops_the_start_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &json!({"providers": {"openai": {"keys": [{"name": "a", "value": "sk-1", "weight": -1}]}}}),
    );
    let err = Gateway::bind(&server_config(dir.path()))
        .await
        .err()
        .expect("refused");
    let StartError::ConfigFile(message) = &err else {
        panic!("{err}")
    };
    assert!(
        message.contains("config.json: error at providers.openai.keys[0].weight"),
        "{message}"
    );

    std::fs::write(dir.path().join("config.json"), "{\n  \"providers\": [1,]\n}").unwrap();
    let err = Gateway::bind(&server_config(dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("config.json:2:19: syntax error: trailing comma"),
        "{err}"
    );

    let missing = ServerConfig {
        config_file: Some(dir.path().join("nope.json")),
        ..server_config(dir.path())
    };
    let err = Gateway::bind(&missing).await.err().expect("refused");
    assert!(err.to_string().contains("nope.json: no such file"), "{err}");
}

const FILE_VK: &str = "sk-bf-from-config-file-0000000001";

/// The lanes plus Bifrost-shaped governance: a customer, a team under it, a key of that team whose
/// value comes from the environment, a budget and a rate limit in their own arrays, and auth enforced.
fn governed(dedicated: &MockUpstream, shared: &MockUpstream, mode: &str) -> Value {
    let mut file = lanes(dedicated, shared);
    file["source_of_truth"] = json!(mode);
    file["client"] = json!({"enforce_governance_header": true, "drop_excess_requests": false});
    file["governance"] = json!({
        "customers": [{"id": "acme", "name": "Acme"}],
        "teams": [{"id": "acme-web", "name": "Acme web", "customer_id": "acme"}],
        "rate_limits": [{"id": "rl-web", "request_max_limit": 1000, "request_reset_duration": "1h"}],
        "budgets": [{"id": "b-web", "max_limit": 20.0, "reset_duration": "1M", "virtual_key_id": "vk-web"}],
        "virtual_keys": [{
            "id": "vk-web", "name": "web app", "value": "env.SWITCHYARD_TEST_FILE_VK",
            "team_id": "acme-web", "rate_limit_id": "rl-web",
            "provider_configs": [{"provider": "mittwald-shared", "allowed_models": ["*"]}]
        }],
        // The key has a budget, and a budget never passes a call it cannot price: the file prices
        // the shared model its key calls.
        "pricing_overrides": [{"provider": "mittwald-shared", "model": "gpt-oss-120b",
                               "input_cost_per_million_tokens": 100.0, "output_cost_per_million_tokens": 200.0}]
    });
    file
}

/// What the file's key has spent of its budget, from its virtual-key view.
async fn spent(gw: &TestGateway) -> f64 {
    let (_, vk) = gw.get("/api/governance/virtual-keys/vk-web").await;
    vk["virtual_key"]["budgets"][0]["current_usage"].as_f64().unwrap()
}

/// Status of a chat call made with `vk` (or none).
async fn chat_with_key(gw: &TestGateway, vk: Option<&str>) -> u16 {
    let mut req = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&chat("gpt-oss-120b"));
    if let Some(vk) = vk {
        req = req.bearer_auth(vk);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn vk_ids(gw: &TestGateway) -> Vec<String> {
    let (_, list) = gw.get("/api/governance/virtual-keys").await;
    let mut ids: Vec<String> = list["virtual_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn file_governance_admits_its_key_enforces_auth_and_seeds_in_split_mode() {
    std::env::set_var("SWITCHYARD_TEST_SHARED_KEY", "sk-shared-from-env-0002");
    std::env::set_var("SWITCHYARD_TEST_FILE_VK", FILE_VK);
    let (dedicated, shared) = (mock().await, mock().await);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &governed(&dedicated, &shared, "split"));

    let gw = TestGateway::start_with(server_config(dir.path())).await;
    assert_eq!(chat_with_key(&gw, Some(FILE_VK)).await, 200);
    // Charged at the file's price: "Hello there" is 2 prompt tokens, the echo's answer 3.
    let expected = 2.0 * 100.0 / 1e6 + 3.0 * 200.0 / 1e6;
    assert!(
        (spent(&gw).await - expected).abs() < 1e-12,
        "{}",
        spent(&gw).await
    );
    let (_, prices) = gw.get("/api/governance/pricing-overrides").await;
    assert_eq!(
        prices["pricing_overrides"][0]["model"], "gpt-oss-120b",
        "{prices}"
    );
    assert_eq!(chat_with_key(&gw, None).await, 401, "the file enforces auth");
    assert_eq!(
        chat_with_key(&gw, Some("sk-bf-not-a-known-key-000000000")).await,
        401
    );
    let (_, cfg) = gw.get("/api/config").await;
    assert_eq!(cfg["client_config"]["enforce_auth_on_inference"], true, "{cfg}");

    let (s, vk) = gw.get("/api/governance/virtual-keys/vk-web").await;
    assert_eq!(s, 200, "{vk}");
    let vk = &vk["virtual_key"];
    assert!(
        !vk.to_string().contains(FILE_VK),
        "the value is stored hashed: {vk}"
    );
    assert_eq!(vk["team_id"], "acme-web");
    assert_eq!(vk["budgets"][0]["max_limit"], 20.0, "{vk}");
    assert_eq!(vk["budgets"][0]["reset_duration"], "1M", "{vk}");
    assert_eq!(vk["rate_limit"]["request_max_limit"], 1000, "{vk}");
    let (_, team) = gw.get("/api/governance/teams/acme-web").await;
    assert_eq!(team["team"]["customer_id"], "acme", "{team}");

    // Made through the API: a second key, a renamed file key, auth switched off.
    let (s, made) = gw
        .post(
            "/api/governance/virtual-keys",
            json!({"id": "vk-api", "name": "made in the UI"}),
        )
        .await;
    assert_eq!(s, 200, "{made}");
    let api_value = made["virtual_key"]["value"].as_str().unwrap().to_owned();
    let (s, _) = gw
        .put("/api/governance/virtual-keys/vk-web", json!({"name": "renamed"}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = gw
        .put(
            "/api/config",
            json!({"client_config": {"enforce_auth_on_inference": false}}),
        )
        .await;
    assert_eq!(s, 200);
    gw.stop().await;

    // "split": what the store has is left alone; nothing the file lacks is deleted.
    let gw = TestGateway::start_with(server_config(dir.path())).await;
    assert_eq!(vk_ids(&gw).await, ["vk-api", "vk-web"]);
    let (_, vk) = gw.get("/api/governance/virtual-keys/vk-web").await;
    assert_eq!(vk["virtual_key"]["name"], "renamed");
    assert_eq!(chat_with_key(&gw, Some(&api_value)).await, 200);
    assert_eq!(
        chat_with_key(&gw, None).await,
        200,
        "the API's later setting is kept"
    );
    gw.stop().await;
}

#[tokio::test]
async fn source_of_truth_config_json_makes_governance_equal_to_the_file() {
    std::env::set_var("SWITCHYARD_TEST_SHARED_KEY", "sk-shared-from-env-0002");
    std::env::set_var("SWITCHYARD_TEST_FILE_VK", FILE_VK);
    let (dedicated, shared) = (mock().await, mock().await);
    let dir = tempfile::tempdir().unwrap();
    let mut file = governed(&dedicated, &shared, "config.json");
    write(dir.path(), &file);

    let gw = TestGateway::start_with(server_config(dir.path())).await;
    let (s, _) = gw
        .post(
            "/api/governance/virtual-keys",
            json!({"id": "vk-api", "name": "made in the UI"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = gw
        .post(
            "/api/governance/teams",
            json!({"id": "team-api", "name": "made in the UI"}),
        )
        .await;
    assert_eq!(s, 200);
    gw.put("/api/governance/virtual-keys/vk-web", json!({"name": "renamed"}))
        .await;
    gw.put(
        "/api/config",
        json!({"client_config": {"enforce_auth_on_inference": false}}),
    )
    .await;
    gw.stop().await;

    // The file's key gets a new value meanwhile.
    const NEW_VALUE: &str = "sk-bf-rotated-in-the-file-00000002";
    file["governance"]["virtual_keys"][0]["value"] = json!(NEW_VALUE);
    write(dir.path(), &file);
    let gw = TestGateway::start_with(server_config(dir.path())).await;
    assert_eq!(vk_ids(&gw).await, ["vk-web"], "keys not in the file are deleted");
    let (_, teams) = gw.get("/api/governance/teams").await;
    assert_eq!(teams["count"], 1, "{teams}");
    let (_, vk) = gw.get("/api/governance/virtual-keys/vk-web").await;
    assert_eq!(vk["virtual_key"]["name"], "web app", "the file's content wins");
    assert_eq!(chat_with_key(&gw, None).await, 401, "the file's setting wins");
    assert_eq!(chat_with_key(&gw, Some(FILE_VK)).await, 401, "old value gone");
    assert_eq!(chat_with_key(&gw, Some(NEW_VALUE)).await, 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_file_only_config_applies_its_governance_too() {
    std::env::set_var("SWITCHYARD_TEST_SHARED_KEY", "sk-shared-from-env-0002");
    std::env::set_var("SWITCHYARD_TEST_FILE_VK", FILE_VK);
    let (dedicated, shared) = (mock().await, mock().await);
    let dir = tempfile::tempdir().unwrap();
    let mut file = governed(&dedicated, &shared, "config.json");
    file["config_store"] = json!({"enabled": false});
    write(dir.path(), &file);

    let gw = TestGateway::start_with(server_config(dir.path())).await;
    assert_eq!(chat_with_key(&gw, Some(FILE_VK)).await, 200);
    assert_eq!(chat_with_key(&gw, None).await, 401);
    gw.stop().await;
}

#[tokio::test]
async fn a_bad_governance_field_stops_the_start_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &json!({"governance": {"virtual_keys": [{
            "id": "vk-1", "name": "app", "value": "sk-bf-0123456789abcdef",
            "budgets": [{"max_limit": 5, "reset_duration": "monthly"}]
        }]}}),
    );
    let err = Gateway::bind(&server_config(dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("config.json: error at governance.virtual_keys[0].budgets[0].reset_duration"),
        "{err}"
    );

    write(
        dir.path(),
        &json!({"governance": {"pricing_overrides": [{"provider": "p", "model": "m",
            "input_cost_per_million_tokens": -1, "output_cost_per_million_tokens": 1}]}}),
    );
    let err = Gateway::bind(&server_config(dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("error at governance.pricing_overrides[0].input_cost_per_million_tokens"),
        "{err}"
    );

    write(
        dir.path(),
        &json!({"governance": {"virtual_keys": [{"id": "vk-1", "name": "app"}]}}),
    );
    let err = Gateway::bind(&server_config(dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("error at governance.virtual_keys[0].value: is required"),
        "{err}"
    );
}
