//! The cache panel and cache hits in the logs view, in real headless Chromium (see `ui_browser.rs`
//! for the set-up and the skip switch): the panel shows the hit rate and entries of real traffic,
//! turns the cache off and changes its TTL through the plugin API, and clears it; the logs view
//! marks the hit's row.

mod common;

use common::browser::{self, finish, shot, start_browser, HEIGHT, WIDTH};
use common::governance::{chat_body, setup};
use common::webdriver::Browser;
use common::TestGateway;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_panel_shows_and_changes_the_cache_and_logs_mark_hits() {
    if browser::skipped() {
        return;
    }
    let (gw, mock, _dir) = setup().await;
    let (s, b) = gw
        .post(
            "/api/plugins",
            json!({"name": "semantic_cache", "enabled": true, "config": {"dimension": 1, "ttl": "5m", "default_cache_key": "ui"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    for _ in 0..2 {
        let (s, b) = gw
            .post("/v1/chat/completions", chat_body("mittwald-shared/m"))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    assert_eq!(mock.call_count("chat"), 1);
    let b = start_browser().await;
    let result = panel_flow(&b, &gw).await;
    let console = finish(b, result, "cache-failure").await;
    assert!(console.is_empty(), "console errors: {console:?}");
    let (_, plugin) = gw.get("/api/plugins/semantic_cache").await;
    assert_eq!(plugin["enabled"], false, "{plugin}");
    assert_eq!(plugin["config"]["ttl"], "90s", "{plugin}");
    gw.stop().await;
}

async fn panel_flow(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    b.goto(&gw.url("/#/cache")).await?;
    b.wait_contains("#cache-hit-rate", "50.0 %").await?;
    b.wait_contains("#cache-entries", "1").await?;
    b.wait_contains("#cache-state", "on (direct)").await?;
    shot(b, "cache-panel", WIDTH, HEIGHT).await?;
    // Turn it off and change the TTL.
    b.click("#cache-enabled").await?;
    b.fill("#cache-ttl", "90s").await?;
    b.click("#cache-save").await?;
    b.wait_contains("#cache-state", "off").await?;
    b.wait_contains("#cache-ttl-tile", "90s").await?;
    // Clear it.
    b.click("#cache-clear").await?;
    b.click("dialog.confirm .btn.danger").await?;
    b.wait_text("#cache-entries", |t| t.contains('0')).await?;
    // The logs view marks the hit.
    b.goto(&gw.url("/#/logs")).await?;
    let badges = b.wait_text("body", |t| t.contains("cache hit")).await?;
    anyhow::ensure!(
        badges.matches("cache hit").count() == 1,
        "one hit row expected: {badges}"
    );
    shot(b, "cache-logs", WIDTH, HEIGHT).await?;
    Ok(())
}
