//! The page at `/` and the key check behind it.

mod common;

use common::TestGateway;
use serde_json::json;
use switchyard_mock::{start, MockOptions};

#[tokio::test]
async fn page_lists_providers_with_redacted_keys_and_checks_tell_good_from_bad() {
    let mock = start(MockOptions {
        api_key: Some("sk-good-key-123456".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;

    let empty = gw
        .http
        .get(gw.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(empty.contains("No providers yet"));

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

    let r = gw.http.get(gw.url("/")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains(&mock.base_url()), "base URL shown");
    assert!(
        page.contains("sk-g************************3456"),
        "redacted value shown"
    );
    assert!(!page.contains("sk-good-key-123456") && !page.contains("sk-wrong-key-654321"));

    let check = |id: String| {
        let gw = &gw;
        async move {
            gw.post(&format!("/api/providers/openai/keys/{id}/check"), json!({}))
                .await
        }
    };
    let (status, ok) = check(good["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 200);
    assert_eq!(ok["ok"], true, "{ok}");
    let (_, not_ok) = check(bad["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(not_ok["ok"], false, "{not_ok}");
    assert_eq!(not_ok["status"], 401);
    assert!(!not_ok.to_string().contains("sk-wrong-key-654321"));
}
