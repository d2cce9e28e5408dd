//! The web UI's admin pages in real headless Chromium (see `ui_browser.rs` for the set-up and the
//! skip switch): logging in through the login page with CSRF-protected changes and logging out, and
//! creating and pausing a virtual key; the MCP page; the Guardrails page; an EUR deployment showing euros.

mod common;

use std::time::{Duration, Instant};

use common::browser::{self, finish, shot, start_browser, HEIGHT, WIDTH};
use common::webdriver::Browser;
use common::TestGateway;
use serde_json::json;
use switchyard_gateway::ServerConfig;

/// Admin auth in the browser: the UI sends an anonymous visitor to the login page, a wrong password is
/// shown as an error, the right one opens the UI, changes made through the UI's own API helper carry
/// the CSRF token (a bare `fetch` without it is refused), and logging out ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_logs_in_through_the_login_page_changes_config_and_logs_out() {
    if browser::skipped() {
        return;
    }
    const PASSWORD: &str = "ui login password 7781";
    let dir = tempfile::tempdir().unwrap();
    let mut security = switchyard_gateway::SecurityConfig::default();
    security.admin.password_hash = Some(switchyard_gateway::admin::auth::hash_password(PASSWORD).unwrap());
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        security,
        ..ServerConfig::default()
    })
    .await;
    let b = start_browser().await;
    let result = login_flow(&b, &gw, PASSWORD).await;
    finish(b, result, "login-failure").await;
    gw.stop().await;
}

async fn login_flow(b: &Browser, gw: &TestGateway, password: &str) -> anyhow::Result<()> {
    let path_is = |p: &'static str| format!("return location.pathname === '{p}';");
    b.goto(&gw.url("/#/providers")).await?;
    b.wait_js("the login page", &path_is("/login"), json!([])).await?;
    b.fill("input[name=password]", "not the password").await?;
    b.click("button[type=submit]").await?;
    b.wait_contains("#login-error", "wrong").await?;
    shot(b, "login", WIDTH, HEIGHT).await?;
    b.fill("input[name=password]", password).await?;
    b.click("button[type=submit]").await?;
    b.wait_js("the UI after login", &path_is("/"), json!([])).await?;
    b.find("button.logout").await?;
    // A change through the UI's API helper (which adds the CSRF token) works...
    let created = b
        .js(
            "return import(arguments[0]).then((lib) => lib.api('/api/providers', {method: 'POST', body: {provider: 'openai'}}))\
               .then(() => 'ok', (e) => e.message);",
            json!([format!("/ui/{}/lib.js", switchyard_gateway::admin::ui::asset_version())]),
        )
        .await?;
    anyhow::ensure!(created == json!("ok"), "create through the UI failed: {created}");
    // ...a bare fetch with the cookie but without the token is refused.
    let bare = b
        .js(
            "return fetch('/api/providers', {method: 'POST', headers: {'content-type': 'application/json'}, \
               body: JSON.stringify({provider: 'anthropic'})}).then((r) => r.status);",
            json!([]),
        )
        .await?;
    anyhow::ensure!(bare == json!(403), "a POST without the CSRF token got {bare}");
    b.goto(&gw.url("/#/providers")).await?;
    b.wait_contains("#provider-list", "openai").await?;
    let list = b.wait_text("#provider-list", |_| true).await?;
    anyhow::ensure!(
        !list.contains("anthropic"),
        "the refused create was stored: {list}"
    );
    // The session cookie is HttpOnly: page scripts cannot read it.
    let cookies = b.js("return document.cookie;", json!([])).await?;
    anyhow::ensure!(cookies == json!(""), "cookie visible to scripts: {cookies}");
    b.click("button.logout").await?;
    b.wait_js("the login page after logout", &path_is("/login"), json!([]))
        .await?;
    let status = b
        .js("return fetch('/api/providers').then((r) => r.status);", json!([]))
        .await?;
    anyhow::ensure!(status == json!(401), "after logout the API answered {status}");
    Ok(())
}

/// The Virtual Keys page: create a key with a budget through the form, see its value once, find it in
/// the list with its usage, pause it, and make keys mandatory on inference.
#[tokio::test]
async fn operator_creates_and_pauses_a_virtual_key() {
    if browser::skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let b = start_browser().await;
    let result = virtual_keys_page(&b, &gw).await;
    let console = finish(b, result, "virtual-keys-failure").await;
    assert!(console.is_empty(), "browser console errors: {console:#?}");
}

async fn virtual_keys_page(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    b.goto(&gw.url("/#/keys")).await?;
    b.wait_contains("#main", "No virtual keys yet").await?;
    b.click("#vk-new").await?;
    b.fill("#vk-dialog input[name=name]", "ui-app").await?;
    b.fill("#vk-dialog input[name=budget]", "5").await?;
    b.fill("#vk-dialog input[name=requests]", "60").await?;
    b.click("#vk-dialog button[type=submit]").await?;
    b.wait_js(
        "the value dialog",
        "return !!document.getElementById('vk-value')",
        json!([]),
    )
    .await?;
    let value = b
        .js("return document.getElementById('vk-value').value", json!([]))
        .await?;
    let value = value.as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(
        value.starts_with("sk-bf-") && value.len() > 40,
        "value shown once: {value}"
    );
    shot(b, "virtual-key-created", WIDTH, HEIGHT).await?;
    b.click("#vk-value-dialog button[type=submit]").await?;
    let row = b.wait_contains("#vk-table", "ui-app").await?;
    anyhow::ensure!(row.contains("$0 of $5.00 / 1M"), "budget shown: {row}");
    anyhow::ensure!(row.contains("0 of 60 req / 1m"), "rate limit shown: {row}");
    anyhow::ensure!(!row.contains(&value), "the list never shows the value");
    b.click("#vk-table button.btn.small").await?;
    b.wait_contains("#vk-table", "inactive").await?;
    let (_, list) = gw.get("/api/governance/virtual-keys").await;
    anyhow::ensure!(list["virtual_keys"][0]["is_active"] == false, "{list}");
    b.click("#vk-enforce").await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, cfg) = gw.get("/api/config").await;
        if cfg["client_config"]["enforce_auth_on_inference"] == true {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "enforcement not saved: {cfg}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shot(b, "virtual-keys", WIDTH, HEIGHT).await?;
    Ok(())
}

/// The MCP page: a connected stdio server with its tools, a dead HTTP server in `error`, and the tool
/// call just made through `/mcp` in the recent calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_page_shows_servers_state_tools_and_recent_calls() {
    if browser::skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mcp_stdio.py");
    let tiny = json!({"name": "tiny", "connection_type": "stdio",
                      "stdio_config": {"command": "python3", "args": [script]}});
    let dead =
        json!({"name": "dead", "connection_type": "http", "connection_string": "http://127.0.0.1:9/mcp"});
    for body in [tiny, dead] {
        let (s, answer) = gw.post("/api/mcp/client", body).await;
        assert_eq!(s, 200, "{answer}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = gw.get("/api/mcp/clients").await;
        if page["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["state"] == "connected")
        {
            break;
        }
        assert!(Instant::now() < deadline, "tiny never connected: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "tiny-echo", "arguments": {"text": "hi"}}});
    let (s, answer) = gw.post("/mcp", call).await;
    assert_eq!(
        (s, answer["result"]["content"][0]["text"].clone()),
        (200, json!("echo: hi")),
        "{answer}"
    );
    let b = start_browser().await;
    let result = async {
        b.goto(&gw.url("/#/mcp")).await?;
        b.wait_contains("#mcp-servers", "tiny-echo").await?;
        let state_is = "return document.querySelector(`tr[data-mcp=${arguments[0]}] [data-state]`)?.dataset.state === arguments[1];";
        b.wait_js("tiny connected", state_is, json!(["tiny", "connected"])).await?;
        b.wait_js("dead in error", state_is, json!(["dead", "error"])).await?;
        b.wait_contains("#mcp-calls", "tiny-echo").await?;
        b.wait_contains("#mcp-calls", "success").await?;
        shot(&b, "mcp", WIDTH, HEIGHT).await?;
        b.click("tr[data-mcp=dead] button").await?;
        Ok(())
    }
    .await;
    let console = finish(b, result, "mcp-failure").await;
    assert!(console.is_empty(), "console errors: {console:?}");
    gw.stop().await;
}

/// The Guardrails page: create a PII guardrail through the form, find it in the list, edit its action,
/// and test a text against it.
#[tokio::test]
async fn operator_creates_edits_and_tests_a_guardrail() {
    if browser::skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let b = start_browser().await;
    let result = guardrails_page(&b, &gw).await;
    let console = finish(b, result, "guardrails-failure").await;
    assert!(console.is_empty(), "browser console errors: {console:#?}");
}

async fn guardrails_page(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    b.goto(&gw.url("/#/guardrails")).await?;
    b.wait_contains("#main", "No guardrails yet").await?;
    b.click("#gr-new").await?;
    b.fill("#gr-dialog input[name=name]", "no-iban").await?;
    b.click("#gr-dialog input[name=entity-iban]").await?;
    b.click("#gr-dialog button[type=submit]").await?;
    let row = b.wait_contains("#gr-table", "no-iban").await?;
    anyhow::ensure!(
        row.contains("email, iban") && row.contains("block"),
        "listed: {row}"
    );
    let (_, list) = gw.get("/api/guardrails").await;
    anyhow::ensure!(
        list["guardrails"][0]["entities"] == json!(["email", "iban"]),
        "{list}"
    );
    b.click("#gr-table button.gr-edit").await?;
    b.wait_js(
        "the edit dialog",
        "return !!document.querySelector('#gr-dialog select[name=action]')",
        json!([]),
    )
    .await?;
    b.js(
        "const s = document.querySelector('#gr-dialog select[name=action]'); s.value = 'redact'; return true;",
        json!([]),
    )
    .await?;
    b.click("#gr-dialog button[type=submit]").await?;
    b.wait_contains("#gr-table", "redact").await?;
    b.fill("#gr-test-text", "Konto DE89 3704 0044 0532 0130 00 bitte")
        .await?;
    b.click("#gr-test-run").await?;
    let result = b.wait_contains("#gr-test-result", "redact").await?;
    anyhow::ensure!(
        result.contains("Konto [IBAN_REDACTED] bitte"),
        "test result: {result}"
    );
    shot(b, "guardrails", WIDTH, HEIGHT).await?;
    Ok(())
}

/// An EUR deployment (`--currency EUR`): the Virtual Keys page shows budgets in euros and asks for a
/// new key's budget in EUR.
#[tokio::test]
async fn an_eur_deployment_shows_euros() {
    if browser::skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        currency: switchyard_core::pricing::Currency::parse("EUR").unwrap(),
        ..common::test_config(dir.path())
    })
    .await;
    common::create_vk(
        &gw,
        json!({"name": "eur-app", "budgets": [{"max_limit": 5.0, "reset_duration": "1d"}]}),
    )
    .await;
    let b = start_browser().await;
    let result = async {
        b.goto(&gw.url("/#/keys")).await?;
        let row = b.wait_contains("#vk-table", "eur-app").await?;
        anyhow::ensure!(row.contains("€0 of €5.00 / 1d"), "budget in euros: {row}");
        anyhow::ensure!(!row.contains('$'), "no dollars: {row}");
        b.click("#vk-new").await?;
        b.wait_contains("#vk-dialog", "Budget (EUR)").await?;
        Ok(())
    }
    .await;
    let console = finish(b, result, "eur-failure").await;
    assert!(console.is_empty(), "browser console errors: {console:#?}");
}
