//! The Bifrost-compatible management API: status codes, field-naming errors, redaction, updates.

mod common;

use common::{assert_error_shape, TestGateway};
use serde_json::{json, Value};

async fn gateway() -> (TestGateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (TestGateway::start(dir.path()).await, dir)
}

#[tokio::test]
async fn bad_bodies_get_400_naming_the_field() {
    let (gw, _dir) = gateway().await;
    let cases = [
        (
            json!({"provider": "mittwald-shared", "network_config": {"base_url": "https://x/v1"}}),
            "custom_provider_config",
        ),
        (
            json!({"provider": "openai", "network_config": {"max_retries": "three"}}),
            "network_config.max_retries",
        ),
        (
            json!({"provider": "openai", "network_config": {"base_url": "not a url"}}),
            "network_config.base_url",
        ),
        (
            json!({"provider": "openai", "network_config": {"timeout": 5}}),
            "network_config.timeout",
        ),
        (json!({"provider": "a/b"}), "provider"),
        (json!({"network_config": {}}), "provider"),
    ];
    for (body, field) in cases {
        let (status, resp) = gw.post("/api/providers", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {resp}");
        let err = assert_error_shape(&resp, 400);
        assert_eq!(err["param"], field, "{body} -> {resp}");
    }
    // Not JSON at all.
    let r = gw
        .http
        .post(gw.url("/api/providers"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{body}"
    );
    // Empty body.
    let r = gw.http.post(gw.url("/api/providers")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(gw.get("/api/providers").await.1["providers"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn duplicates_conflict_and_unknown_names_are_404() {
    let (gw, _dir) = gateway().await;
    assert_eq!(
        gw.post("/api/providers", json!({"provider": "openai"})).await.0,
        200
    );
    let (status, body) = gw.post("/api/providers", json!({"provider": "openai"})).await;
    assert_eq!(status, 409, "{body}");
    assert_error_shape(&body, 409);

    let key = json!({"name": "k", "value": "sk-aaaaaaaaaaaa", "models": ["*"]});
    assert_eq!(gw.post("/api/providers/openai/keys", key.clone()).await.0, 200);
    let (status, body) = gw.post("/api/providers/openai/keys", key).await;
    assert_eq!(status, 409, "same key name twice in one provider: {body}");

    for path in [
        "/api/providers/nope",
        "/api/providers/nope/keys",
        "/api/providers/openai/keys/nope",
    ] {
        let (status, body) = gw.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error_shape(&body, 404);
    }
    assert_eq!(
        gw.post("/api/providers/nope/keys", json!({"name": "k", "value": "v"}))
            .await
            .0,
        404
    );
    assert_eq!(gw.delete("/api/providers/nope").await.0, 404);
    assert_eq!(gw.put("/api/providers/nope", json!({})).await.0, 404);
}

#[tokio::test]
async fn key_values_are_redacted_everywhere_and_survive_round_trips() {
    let (gw, _dir) = gateway().await;
    let secret = "sk-live-0123456789abcdefghij";
    gw.post("/api/providers", json!({"provider": "openai"})).await;
    let (_, key) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "main", "value": secret, "models": ["gpt-4o"], "weight": 0.7}),
        )
        .await;
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(key["value"], format!("sk-l{}ghij", "*".repeat(24)));

    for path in [
        "/api/providers".to_owned(),
        "/api/providers/openai".to_owned(),
        "/api/providers/openai/keys".to_owned(),
        format!("/api/providers/openai/keys/{id}"),
    ] {
        let (_, body) = gw.get(&path).await;
        assert!(
            !body.to_string().contains("0123456789"),
            "{path} leaks the key: {body}"
        );
    }
    let page = gw
        .http
        .get(gw.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("main") && !page.contains("0123456789"),
        "status page leaks the key"
    );

    // Sending the GET answer back unchanged keeps the secret and changes what was edited.
    let mut edited = gw.get(&format!("/api/providers/openai/keys/{id}")).await.1;
    edited["weight"] = json!(2.5);
    let (status, body) = gw.put(&format!("/api/providers/openai/keys/{id}"), edited).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["weight"], 2.5);
    assert_eq!(body["name"], "main");

    // A partial PUT keeps the omitted fields (Bifrost clears an omitted name).
    let (_, body) = gw
        .put(
            &format!("/api/providers/openai/keys/{id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(body["name"], "main");
    assert_eq!(body["status"], "disabled");
    assert_eq!(body["models"], json!(["gpt-4o"]));
}

#[tokio::test]
async fn env_references_are_stored_as_references() {
    let (gw, dir) = gateway().await;
    gw.post("/api/providers", json!({"provider": "openai"})).await;
    let (status, key) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "from-env", "value": "env.SWITCHYARD_TEST_UNSET_VAR", "models": ["*"]}),
        )
        .await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["value"], "env.SWITCHYARD_TEST_UNSET_VAR");
    assert_eq!(key["status"], "error");
    assert!(key["status_reason"]
        .as_str()
        .unwrap()
        .contains("SWITCHYARD_TEST_UNSET_VAR"));
    gw.stop().await;
    // The store holds the reference, not a resolved value.
    use switchyard_store::ConfigStore;
    let store = switchyard_store::SqliteConfigStore::open(&dir.path().join("config.db"))
        .await
        .unwrap();
    let stored = store.load().await.unwrap();
    assert_eq!(stored[0].1[0].value, "env.SWITCHYARD_TEST_UNSET_VAR");
}

#[tokio::test]
async fn provider_updates_replace_only_what_is_sent() {
    let (gw, _dir) = gateway().await;
    gw.post(
        "/api/providers",
        json!({"provider": "openai", "network_config": {"base_url": "https://a.example/v1", "max_retries": 2,
               "extra_headers": {"X-Team": "web"}}}),
    )
    .await;
    let (status, body) = gw
        .put(
            "/api/providers/openai",
            json!({"network_config": {"default_request_timeout_in_seconds": 900}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let nc = &body["network_config"];
    assert_eq!(nc["base_url"], "https://a.example/v1");
    assert_eq!(nc["max_retries"], 2);
    assert_eq!(nc["default_request_timeout_in_seconds"], 900);
    assert_eq!(nc["extra_headers"]["X-Team"], "web");

    // A GET answer sent back as a PUT body is accepted.
    let current = gw.get("/api/providers/openai").await.1;
    assert_eq!(gw.put("/api/providers/openai", current).await.0, 200);

    // Deleting the provider removes its keys too.
    gw.post(
        "/api/providers/openai/keys",
        json!({"name": "k", "value": "sk-x", "models": ["*"]}),
    )
    .await;
    assert_eq!(gw.delete("/api/providers/openai").await.0, 200);
    assert_eq!(gw.get("/api/providers/openai").await.0, 404);
    assert_eq!(
        gw.post("/api/providers", json!({"provider": "openai"})).await.0,
        200
    );
    assert_eq!(gw.get("/api/providers/openai/keys").await.1["total"], 0);
}

#[tokio::test]
async fn pre_v15_bodies_create_keys_with_the_provider_atomically() {
    let (gw, _dir) = gateway().await;
    let (status, body) = gw
        .post(
            "/api/providers",
            json!({"provider": "openai", "keys": [{"name": "a", "value": "sk-1", "models": ["*"]},
                                                   {"name": "b", "value": "sk-2", "weight": -1}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "keys[1].weight");
    assert_eq!(
        gw.get("/api/providers/openai").await.0,
        404,
        "nothing half-created"
    );
    let (status, body) = gw
        .post(
            "/api/providers",
            json!({"provider": "openai", "keys": [{"name": "a", "value": "sk-1", "models": ["*"]}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let (gw, _dir) = gateway().await;
    let (status, body) = gw.get("/api/nothing-here").await;
    assert_eq!(status, 404);
    assert_error_shape(&body, 404);
    let r = gw.http.get(gw.url("/v1/chat/completions")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_error_shape(&r.json().await.unwrap(), 405);
    let (status, body) = gw.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}
