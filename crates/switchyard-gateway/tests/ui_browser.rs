//! The web UI end to end in real headless Chromium: the gateway runs in-process on a loopback port
//! with mock upstreams, Chromium is driven over WebDriver (Debian's `chromedriver`, a small client over
//! reqwest in `common/webdriver.rs`), and the test does what an operator would: registers the seed's
//! providers and keys through the forms, tests a model, watches a fallback, reads Routing, Dashboard
//! and Logs, and changes a key's models and weight to see the routing explanation change. The admin
//! pages (login, virtual keys) are in `ui_browser_admin.rs`.
//!
//! Needs `chromium` and `chromedriver` (`bash scripts/ui-test-deps.sh`). Without them the test fails
//! and says so; `SWITCHYARD_SKIP_BROWSER_TESTS=1` skips it explicitly. Screenshots of every page go to
//! `tests/artifacts/ui/`; with `SWITCHYARD_UPDATE_SCREENSHOTS=1` the main ones are also copied to
//! `docs/screenshots/`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::browser::{self, artifacts, finish, shot, start_browser, HEIGHT, WIDTH};
use common::webdriver::Browser;
use common::TestGateway;
use serde_json::json;
use switchyard_gateway::{LogsConfig, ServerConfig};
use switchyard_logs::{LogRecord, LogStore, SqliteLogStore};
use switchyard_mock::{start, MockOptions};

const DEDICATED_SECRET: &str = "sk-dedicated-secret-0001";
const SHARED_SECRET: &str = "sk-shared-secret-0002";
/// The dedicated key's row on the Providers page.
const DEDICATED_ROW: &str = "section[data-provider=openai] tr[data-key-name=mittwald-dedicated]";

fn redacted(s: &str) -> String {
    format!("{}{}{}", &s[..4], "*".repeat(24), &s[s.len() - 4..])
}

/// A port nothing listens on (bound, then released): the dedicated endpoint "going down".
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Number of elements matching `css`.
async fn count(b: &Browser, css: &str) -> anyhow::Result<u64> {
    Ok(b.js(
        "return document.querySelectorAll(arguments[0]).length;",
        json!([css]),
    )
    .await?
    .as_u64()
    .unwrap_or(0))
}

/// The `first in N %` share the explanation shows for `provider`.
async fn first_share(b: &Browser, provider: &str) -> anyhow::Result<u32> {
    let css = format!("#plan li[data-provider=\"{provider}\"] .share-first");
    let text = b.wait_contains(&css, "first in").await?;
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    Ok(digits.parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_registers_the_seed_tests_models_and_reads_routing_dashboard_and_logs() {
    if browser::skipped() {
        return;
    }
    let started = Instant::now();
    let _ = std::fs::remove_file(artifacts().join("failure.png"));
    let dedicated = start(MockOptions {
        api_key: Some(DEDICATED_SECRET.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let shared = start(MockOptions {
        api_key: Some(SHARED_SECRET.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        max_request_body_bytes: 1024 * 1024,
        logs: LogsConfig {
            content: true,
            ..LogsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let b = start_browser().await;
    let mut result = run(&b, &gw, &dedicated.base_url(), &shared.base_url()).await;
    if result.is_ok() {
        result = busy_gateway(&b).await;
    }
    let console = finish(b, result, "failure").await;
    assert!(console.is_empty(), "browser console errors: {console:#?}");
    eprintln!("browser test took {:?}", started.elapsed());
    if std::env::var_os("SWITCHYARD_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        for name in [
            "providers",
            "routing",
            "dashboard",
            "dashboard-busy",
            "logs",
            "log-detail",
            "providers-phone",
        ] {
            std::fs::copy(
                artifacts().join(format!("{name}.png")),
                docs.join(format!("{name}.png")),
            )
            .unwrap();
        }
    }
}

/// The operator's walk through the UI, page by page.
async fn run(b: &Browser, gw: &TestGateway, dedicated_url: &str, shared_url: &str) -> anyhow::Result<()> {
    an_empty_gateway_and_the_first_tab_stop(b, gw).await?;
    register_the_seed_through_the_forms(b, dedicated_url, shared_url).await?;
    the_forms_stored_what_they_said_and_the_page_is_clean(b, gw).await?;
    check_the_key_and_test_the_model(b).await?;
    the_dedicated_endpoint_goes_down(b).await?;
    routing_explains_premium(b).await?;
    routing_follows_the_key_models_and_weight(b, gw).await?;
    the_dashboard_shows_live_traffic(b, gw).await?;
    logs_filter_search_and_detail(b).await?;
    no_sideways_scrolling_on_a_phone(b, gw).await?;
    delete_a_provider(b, gw).await?;
    Ok(())
}

/// An empty gateway, and the keyboard: the first Tab stop is the skip link.
async fn an_empty_gateway_and_the_first_tab_stop(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    // --- an empty gateway ---
    b.goto(&gw.url("/")).await?;
    b.wait_contains("#main", "No requests").await?;
    b.click("a[data-nav=providers]").await?;
    b.wait_contains("#provider-list", "No providers yet").await?;

    // Keyboard: the first Tab stop is the skip link; every control has an accessible name.
    b.goto("about:blank").await?;
    b.goto(&gw.url("/#/providers")).await?;
    b.find("#provider-list").await?;
    b.keys("\u{E004}").await?;
    let focused = b
        .js("return document.activeElement.className;", json!([]))
        .await?;
    assert_eq!(focused, "skip", "first Tab stop");
    Ok(())
}

/// The seed's two lanes and their keys, registered through the forms.
async fn register_the_seed_through_the_forms(
    b: &Browser,
    dedicated_url: &str,
    shared_url: &str,
) -> anyhow::Result<()> {
    let row = DEDICATED_ROW;
    // --- the seed, through the forms: dedicated `openai` (retries 0 so a dead endpoint fails fast) ---
    b.click("#add-provider").await?;
    b.click("#provider-dialog select[name=builtin] option[value=openai]")
        .await?;
    b.fill("#provider-dialog input[name=base_url]", dedicated_url)
        .await?;
    b.fill("#provider-dialog input[name=retries]", "0").await?;
    b.click("#provider-dialog button[type=submit]").await?;
    b.wait_contains("section[data-provider=openai] .base-url", dedicated_url)
        .await?;
    b.click("section[data-provider=openai] [data-action=add-key]")
        .await?;
    b.fill("#key-dialog input[name=name]", "mittwald-dedicated")
        .await?;
    b.fill("#key-dialog input[name=value]", DEDICATED_SECRET).await?;
    b.fill("#key-dialog input[name=models]", "PREMIUM").await?;
    b.click("#key-dialog button[type=submit]").await?;
    b.wait_contains(row, &redacted(DEDICATED_SECRET)).await?;
    b.wait_contains(&format!("{row} .models"), "PREMIUM").await?;

    // Custom `mittwald-shared` (OpenAI-compatible) with a `*` key.
    b.click("#add-provider").await?;
    b.click("#provider-dialog input[name=kind][value=custom]").await?;
    b.fill("#provider-dialog input[name=name]", "mittwald-shared")
        .await?;
    b.click("#provider-dialog select[name=base_provider_type] option[value=openai]")
        .await?;
    b.fill("#provider-dialog input[name=base_url]", shared_url)
        .await?;
    b.click("#provider-dialog button[type=submit]").await?;
    b.wait_contains("section[data-provider=mittwald-shared] h2", "custom · openai")
        .await?;
    b.click("section[data-provider=mittwald-shared] [data-action=add-key]")
        .await?;
    b.fill("#key-dialog input[name=name]", "mittwald-shared-key")
        .await?;
    b.fill("#key-dialog input[name=value]", SHARED_SECRET).await?;
    b.click("#key-dialog button[type=submit]").await?;
    b.wait_contains(
        "section[data-provider=mittwald-shared] tr[data-key-name=mittwald-shared-key]",
        &redacted(SHARED_SECRET),
    )
    .await?;

    // Dedicated falls back to shared (the seed's multi-lane setup), set in the edit form.
    b.click("section[data-provider=openai] [data-action=edit-provider]")
        .await?;
    b.fill("#provider-dialog input[name=fallbacks]", "mittwald-shared")
        .await?;
    b.click("#provider-dialog button[type=submit]").await?;
    b.wait_contains("section[data-provider=openai] .chain", "mittwald-shared")
        .await?;
    Ok(())
}

/// What the API stored, no secret in the page, an accessible name on every control.
async fn the_forms_stored_what_they_said_and_the_page_is_clean(
    b: &Browser,
    gw: &TestGateway,
) -> anyhow::Result<()> {
    // What the API stored is what the forms said.
    let (_, openai) = gw.get("/api/providers/openai").await;
    assert_eq!(openai["network_config"]["max_retries"], 0, "{openai}");
    assert_eq!(openai["fallbacks"], json!(["mittwald-shared"]));
    assert_eq!(openai["keys"][0]["models"], json!(["PREMIUM"]));
    let (_, custom) = gw.get("/api/providers/mittwald-shared").await;
    assert_eq!(custom["custom_provider_config"]["base_provider_type"], "openai");
    assert_eq!(custom["keys"][0]["models"], json!(["*"]));

    // Secrets: only the redacted form is anywhere in the page, markup or field values.
    let leaked = b
        .js(
            "const s = arguments; const html = document.documentElement.outerHTML; \
             const vals = [...document.querySelectorAll('input,textarea')].map(i => i.value).join(' '); \
             return [...s].some(x => html.includes(x) || vals.includes(x));",
            json!([DEDICATED_SECRET, SHARED_SECRET]),
        )
        .await?;
    assert_eq!(leaked, json!(false), "a secret is in the page");

    // Every button, input and select has an accessible name.
    let unnamed = b
        .js(
            "return [...document.querySelectorAll('button, input:not([type=hidden]), select, textarea, a[href]')]\
               .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length) || e.textContent.trim() || e.getAttribute('aria-labelledby')))\
               .map(e => e.outerHTML.slice(0, 80));",
            json!([]),
        )
        .await?;
    assert_eq!(unnamed, json!([]), "controls without accessible names");
    Ok(())
}

/// Check the dedicated key, then test a model on each lane.
async fn check_the_key_and_test_the_model(b: &Browser) -> anyhow::Result<()> {
    let row = DEDICATED_ROW;
    // Check the key: the upstream accepts it.
    b.click(&format!("{row} [data-action=check]")).await?;
    b.wait_contains(&format!("{row} .check-result"), "✔").await?;

    // --- test this model: a bare premium model goes to the dedicated lane ---
    b.fill("#test-model input[name=model]", "PREMIUM").await?;
    b.fill("#test-model textarea[name=message]", "Hello from the UI test")
        .await?;
    b.click("#test-send").await?;
    b.wait_contains("#test-result .answer", "echo: Hello from the UI test")
        .await?;
    assert_eq!(
        b.wait_contains("#test-result .served-provider", "").await?,
        "openai"
    );
    b.wait_contains("#test-result .status", "200").await?;
    b.wait_contains("#test-result .latency", "ms").await?;
    b.wait_contains("#test-result .trail", "openai/PREMIUM:mittwald-dedicated=200")
        .await?;

    // Named explicitly: the shared lane.
    b.fill("#test-model input[name=model]", "mittwald-shared/gpt-oss-120b")
        .await?;
    b.click("#test-send").await?;
    b.wait_contains("#test-result .served-provider", "mittwald-shared")
        .await?;
    b.wait_contains("#test-result .answer", "echo: Hello from the UI test")
        .await?;
    shot(b, "providers", WIDTH, HEIGHT).await?;
    Ok(())
}

/// The dedicated endpoint goes down: the shared lane serves, the key shows its error.
async fn the_dedicated_endpoint_goes_down(b: &Browser) -> anyhow::Result<()> {
    let row = DEDICATED_ROW;
    // --- the dedicated endpoint goes down: the same request is served by the shared lane ---
    b.click("section[data-provider=openai] [data-action=edit-provider]")
        .await?;
    let down = format!("http://127.0.0.1:{}/v1", dead_port());
    b.fill("#provider-dialog input[name=base_url]", &down).await?;
    b.click("#provider-dialog button[type=submit]").await?;
    b.wait_contains("section[data-provider=openai] .base-url", &down)
        .await?;
    b.fill("#test-model input[name=model]", "PREMIUM").await?;
    b.click("#test-send").await?;
    b.wait_contains("#test-result .served-provider", "mittwald-shared")
        .await?;
    let trail = b.wait_contains("#test-result .trail", "connection_error").await?;
    assert!(
        trail.contains("mittwald-shared/PREMIUM:mittwald-shared-key=200"),
        "{trail}"
    );
    // The failed key now shows its last error.
    b.click("button[aria-label='Refresh providers']").await?;
    b.wait_contains(row, "last error").await?;
    b.wait_contains(row, "1 consecutive failure").await?;
    Ok(())
}

/// Routing explains where PREMIUM goes.
async fn routing_explains_premium(b: &Browser) -> anyhow::Result<()> {
    // --- routing: where does PREMIUM go? ---
    b.click("a[data-nav=routing]").await?;
    b.fill("#explain-model", "PREMIUM").await?;
    b.click("#explain-go").await?;
    b.wait_js(
        "a two-step plan",
        "return document.querySelectorAll('#plan > li').length === 2;",
        json!([]),
    )
    .await?;
    let order = b
        .js(
            "return [...document.querySelectorAll('#plan > li')].map(l => l.dataset.provider + ' ' + l.querySelector('.tag').textContent);",
            json!([]),
        )
        .await?;
    assert_eq!(
        order,
        json!([
            "openai a key lists this model",
            "mittwald-shared served through a \"*\" key"
        ])
    );
    b.wait_contains("#model-map tr[data-model=PREMIUM]", "openai")
        .await?;
    b.wait_contains("#model-map tr[data-model='*']", "mittwald-shared")
        .await?;
    b.wait_contains(".lane-card[data-provider=openai]", "mittwald-shared")
        .await?;
    shot(b, "routing-premium", WIDTH, HEIGHT).await?;
    Ok(())
}

/// Routing for any other model follows the dedicated key's models and weight.
async fn routing_follows_the_key_models_and_weight(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    let row = DEDICATED_ROW;
    // Any other model only goes to the shared lane...
    b.fill("#explain-model", "gpt-oss-120b").await?;
    b.click("#explain-go").await?;
    b.wait_js(
        "a one-step plan",
        "return document.querySelectorAll('#plan > li').length === 1 && document.querySelector('#plan > li').dataset.provider === 'mittwald-shared';",
        json!([]),
    )
    .await?;
    // ...until the dedicated key takes `*` too (edit models): then both lanes share it by weight...
    b.click("a[data-nav=providers]").await?;
    b.click(&format!("{row} [data-action=edit-key]")).await?;
    b.fill("#key-dialog input[name=models]", "PREMIUM, *").await?;
    b.click("#key-dialog button[type=submit]").await?;
    b.wait_contains(&format!("{row} .models"), "*").await?;
    b.goto(&gw.url("/#/routing?model=gpt-oss-120b")).await?;
    let even = first_share(b, "openai").await?;
    assert!((44..=56).contains(&even), "openai first in {even} %");
    // ...and a weight of 3 makes it the first lane for about three requests in four.
    b.click("a[data-nav=providers]").await?;
    b.click(&format!("{row} [data-action=edit-key]")).await?;
    b.fill("#key-dialog input[name=weight]", "3").await?;
    b.click("#key-dialog button[type=submit]").await?;
    b.wait_contains(&format!("{row} .weight"), "3").await?;
    b.goto(&gw.url("/#/routing?model=gpt-oss-120b")).await?;
    let weighted = first_share(b, "openai").await?;
    assert!((70..=80).contains(&weighted), "openai first in {weighted} %");
    let shared_share = first_share(b, "mittwald-shared").await?;
    assert!(
        (20..=30).contains(&shared_share),
        "shared first in {shared_share} %"
    );
    b.wait_contains(".lane-card[data-provider=openai]", "weight 3")
        .await?;
    shot(b, "routing", WIDTH, HEIGHT).await?;
    Ok(())
}

/// The dashboard: the requests so far, by provider, then live as traffic arrives.
async fn the_dashboard_shows_live_traffic(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    // --- dashboard: the three requests, by provider, then live as traffic arrives ---
    b.click("a[data-nav=dashboard]").await?;
    b.wait_text("#tile-requests .tile-value", |t| t == "3").await?;
    b.wait_contains("#dash-body .legend", "openai").await?;
    b.wait_contains("#dash-body .legend", "mittwald-shared").await?;
    assert!(count(b, "#chart-requests rect.bar").await? >= 2);
    assert!(count(b, "#chart-latency circle.dot").await? >= 1);
    b.wait_contains("#tile-cost", "no known price").await?;
    b.wait_text("#tile-errors .tile-value", |t| t == "0").await?;
    // Traffic from an app (outside the browser), one of it a caller error, shows up without reloading
    // the page.
    for (model, status) in [
        ("mittwald-shared/gpt-oss-120b", 200),
        ("gpt-oss-120b", 200),
        ("mittwald-shared/flat400-bad-request", 400),
        ("PREMIUM", 200),
    ] {
        let r = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "from an app"}]}))
            .send()
            .await?;
        assert_eq!(r.status(), status, "{model}");
    }
    b.wait_text("#tile-requests .tile-value", |t| t == "7").await?;
    b.wait_text("#tile-errors .tile-value", |t| t == "1").await?;
    assert!(count(b, "#chart-errors rect.bar").await? >= 1);
    // The last 15 minutes in 30 s buckets.
    let before = b
        .js(
            "return document.getElementById('main').dataset.updated;",
            json!([]),
        )
        .await?;
    b.click("#dash-range option[value='15m']").await?;
    b.wait_js(
        "the dashboard to redraw",
        "return document.getElementById('main').dataset.updated !== arguments[0];",
        json!([before]),
    )
    .await?;
    b.wait_text("#tile-requests .tile-value", |t| t == "7").await?;
    shot(b, "dashboard", WIDTH, HEIGHT).await?;
    b.click("#dash-group option[value=model]").await?;
    b.wait_contains("#dash-body .legend", "gpt-oss-120b").await?;
    Ok(())
}

/// Logs: filter, search, and the fallback request in detail.
async fn logs_filter_search_and_detail(b: &Browser) -> anyhow::Result<()> {
    // --- logs: filter, search, detail ---
    b.click("a[data-nav=logs]").await?;
    b.wait_js(
        "seven log rows",
        "return document.querySelectorAll('#log-table tbody tr').length === 7;",
        json!([]),
    )
    .await?;
    shot(b, "logs", WIDTH, HEIGHT).await?;
    b.click("#f-provider option[value=openai]").await?;
    b.click("#f-apply").await?;
    b.wait_contains("#log-count", "of 1").await?;
    b.wait_contains("#log-table tbody", "openai/PREMIUM").await?;
    b.click("#f-reset").await?;
    b.wait_contains("#log-count", "of 7").await?;
    b.fill("#f-search", "Hello from the UI").await?;
    b.click("#f-apply").await?;
    b.wait_contains("#log-count", "of 3").await?;
    b.click("#f-reset").await?;
    b.wait_contains("#log-count", "of 7").await?;
    b.click("#f-status option[value=error]").await?;
    b.click("#f-apply").await?;
    b.wait_contains("#log-count", "of 1").await?;
    b.wait_contains("#log-table tbody", "flat400-bad-request").await?;
    b.fill("#f-model", "no-such-model").await?;
    b.click("#f-apply").await?;
    b.wait_contains("#log-results", "No requests match").await?;
    b.click("#f-reset").await?;
    b.wait_contains("#log-count", "of 7").await?;
    // The fallback request: PREMIUM, served by the shared lane after the dedicated one failed.
    let fallback_row = b
        .js(
            "const r = [...document.querySelectorAll('#log-table tbody tr')].reverse().find(r => r.innerText.includes('PREMIUM') && r.innerText.includes('mittwald-shared/PREMIUM')); return r ? r.dataset.logId : null;",
            json!([]),
        )
        .await?;
    let id = fallback_row.as_str().expect("fallback request listed").to_owned();
    b.click(&format!("#log-table tr[data-log-id='{id}'] a.row-link"))
        .await?;
    b.wait_contains("#detail-trail", "connection_error").await?;
    let trail = b
        .wait_contains("#detail-trail ol", "mittwald-shared/PREMIUM")
        .await?;
    assert!(trail.contains("openai/PREMIUM"), "{trail}");
    b.wait_contains("#detail-served", "mittwald-shared").await?;
    b.wait_contains("#detail-cost", "unknown price").await?;
    b.wait_contains("#detail-timings", "Total").await?;
    b.wait_contains(".content.req pre", "Hello from the UI test")
        .await?;
    b.wait_contains(".content.resp pre", "echo: Hello from the UI test")
        .await?;
    shot(b, "log-detail", WIDTH, HEIGHT).await?;
    b.click("#back-to-logs").await?;
    b.find("#log-table").await?;
    Ok(())
}

/// A phone: the same pages, no sideways scrolling.
async fn no_sideways_scrolling_on_a_phone(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    // --- a phone: same pages, no sideways scrolling ---
    b.set_size(390, 844).await?;
    for (page, ready) in [
        ("providers", "#provider-list section"),
        ("dashboard", "#tile-requests"),
        ("logs", "#log-table"),
        ("routing", "#model-map table"),
    ] {
        b.goto(&gw.url(&format!("/#/{page}"))).await?;
        b.find(ready).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let overflow = b
            .js(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                json!([]),
            )
            .await?;
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{page} scrolls sideways on a phone by {overflow}px"
        );
        shot(b, &format!("{page}-phone"), 390, 844).await?;
    }
    b.set_size(WIDTH, HEIGHT).await?;
    Ok(())
}

/// Delete a provider (confirmation dialog).
async fn delete_a_provider(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    // --- delete a key and a provider (confirmation dialog) ---
    b.goto(&gw.url("/#/providers")).await?;
    b.click("section[data-provider=mittwald-shared] button[aria-label='Delete provider mittwald-shared']")
        .await?;
    b.click("dialog.confirm .btn.danger").await?;
    b.wait_js(
        "mittwald-shared gone",
        "return !document.querySelector('section[data-provider=mittwald-shared]');",
        json!([]),
    )
    .await?;
    let (status, _) = gw.get("/api/providers/mittwald-shared").await;
    assert_eq!(status, 404);
    let (_, p) = gw.get("/api/providers").await;
    assert_eq!(p["total"], 1, "{p}");
    Ok(())
}

/// A lane of the synthetic traffic: provider, model, key, share of the requests, base latency (ms).
type Lane = (&'static str, &'static str, &'static str, f64, f64);

const LANES: [Lane; 5] = [
    ("openai", "PREMIUM", "mittwald-dedicated", 0.30, 900.0),
    (
        "mittwald-shared",
        "gpt-oss-120b",
        "mittwald-shared-key",
        0.35,
        1400.0,
    ),
    (
        "mittwald-shared",
        "Qwen3-Coder-30B-Instruct",
        "mittwald-shared-key",
        0.15,
        700.0,
    ),
    (
        "mittwald-shared",
        "Mistral-Small-3.2-24B-Instruct",
        "mittwald-shared-key",
        0.08,
        500.0,
    ),
    ("anthropic", "claude-3-7-sonnet", "anthropic-key", 0.12, 2200.0),
];

/// A deterministic xorshift generator of numbers in [0, 1).
fn xorshift(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A day of made-up but plausible traffic: three lanes, a daily rhythm, ~2 % errors and a 20-minute
/// outage of the dedicated lane three hours ago that the shared lane absorbed.
fn synthetic_day(n: usize, now_ms: i64) -> Vec<LogRecord> {
    let mut rnd = xorshift(0x5eed_1234_abcd);
    let day = 86_400_000f64;
    let outage = (now_ms - 3 * 3_600_000, now_ms - 3 * 3_600_000 + 20 * 60_000);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let t = now_ms - (rnd() * day) as i64;
        // Busier in the (UTC) working day.
        let hour = ((t / 3_600_000) % 24) as f64;
        let rhythm = 0.25 + 0.75 * (((hour - 4.0) / 24.0 * std::f64::consts::TAU).sin().max(0.0));
        if rnd() > rhythm {
            continue;
        }
        let mut pick = rnd();
        let lane = LANES
            .iter()
            .find(|l| {
                pick -= l.3;
                pick <= 0.0
            })
            .unwrap_or(&LANES[1]);
        let (mut r, latency) = successful_call(out.len(), t, lane, &mut rnd);
        let roll = rnd();
        let in_outage = (outage.0..outage.1).contains(&t);
        apply_outcome(&mut r, lane, latency, in_outage, roll);
        out.push(r);
    }
    out
}

/// The `i`th synthetic row at `t`: a successful call on `lane` with made-up latency and tokens.
/// Returns the row and its latency.
fn successful_call(i: usize, t: i64, lane: &Lane, rnd: &mut impl FnMut() -> f64) -> (LogRecord, f64) {
    let (provider, model, key, _, base_latency) = *lane;
    let latency = base_latency * (0.4 + 1.8 * rnd() * rnd()) + 5.0;
    let input = (150.0 + 2500.0 * rnd() * rnd()) as i64;
    let output = (40.0 + 700.0 * rnd()) as i64;
    let mut r = LogRecord::new(
        format!("busy-{i:06}"),
        t,
        "/v1/chat/completions",
        model,
        200,
        latency,
    );
    r.provider = Some(provider.to_owned());
    r.model = Some(model.to_owned());
    r.key_name = Some(key.to_owned());
    r.upstream_latency_ms = Some(latency - 1.5);
    r.overhead_ms = Some(1.5);
    r.input_tokens = Some(input);
    r.output_tokens = Some(output);
    r.cached_tokens = Some(0);
    if provider == "anthropic" {
        r.cost_known = true;
        r.cost_usd = Some(input as f64 * 3e-6 + output as f64 * 15e-6);
    }
    (r, latency)
}

/// Turns a successful row into the outage's fallback (a dedicated call during the outage) or, by
/// `roll`, into an upstream rate limit or an unreachable provider.
fn apply_outcome(r: &mut LogRecord, lane: &Lane, latency: f64, in_outage: bool, roll: f64) {
    let (provider, model, ..) = *lane;
    if provider == "openai" && in_outage {
        // The dedicated endpoint is down: the shared lane serves.
        r.provider = Some("mittwald-shared".into());
        r.key_name = Some("mittwald-shared-key".into());
        r.attempts = 2;
        r.fallback_index = Some(1);
        r.trail = Some(
            json!([
                {"provider": "openai", "model": model, "key": "mittwald-dedicated", "outcome": "connection_error", "latency_ms": 3},
                {"provider": "mittwald-shared", "model": model, "key": "mittwald-shared-key", "outcome": "200", "latency_ms": latency as u64}
            ])
            .to_string(),
        );
    } else if roll < 0.012 {
        r.status = 429;
        r.error_type = Some("rate_limit_error".into());
        r.error_message = Some("upstream rate limit".into());
        r.output_tokens = None;
    } else if roll < 0.02 {
        r.status = 502;
        r.error_type = Some("api_error".into());
        r.error_message = Some("could not reach provider".into());
        r.output_tokens = None;
    }
}

/// The UI on a gateway whose log already holds a day of traffic: it still loads in well under a
/// second, and the dashboard looks like a real one.
async fn busy_gateway(b: &Browser) -> anyhow::Result<()> {
    const ROWS: usize = 20_000;
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    {
        let store = SqliteLogStore::open(&dir.path().join("logs.db")).await?;
        for chunk in synthetic_day(ROWS, now_ms).chunks(2_000) {
            store.insert_batch(chunk).await?;
        }
    }
    eprintln!("{ROWS} log rows written in {:?}", t0.elapsed());
    let gw = TestGateway::start(dir.path()).await;
    let (_, stats) = gw.get("/api/logs/stats").await;
    assert_eq!(stats["stats"]["requests"], ROWS as u64, "{stats}");
    for (page, ready) in [
        ("dashboard?range=24h", "#chart-requests rect.bar"),
        ("logs", "#log-table tbody tr"),
        ("providers", "#provider-list .empty"),
        ("routing", "#model-map"),
    ] {
        b.goto("about:blank").await?;
        b.goto(&gw.url(&format!("/#/{page}"))).await?;
        b.find(ready).await?;
        let ms = b
            .js(
                "const m = performance.getEntriesByName('switchyard:ready')[0]; return m ? m.startTime : -1;",
                json!([]),
            )
            .await?
            .as_f64()
            .unwrap_or(-1.0);
        eprintln!("{page}: ready {ms:.0} ms after navigation ({ROWS} log rows)");
        assert!((0.0..1000.0).contains(&ms), "{page} took {ms} ms to show");
    }
    b.goto(&gw.url("/#/dashboard?range=24h")).await?;
    // Most of the day is in range (the oldest, partial hour is not).
    b.wait_text("#tile-requests .tile-value", |t| {
        t.replace(',', "").parse::<usize>().is_ok_and(|n| n > ROWS / 2)
    })
    .await?;
    b.find("#chart-requests rect.bar").await?;
    shot(b, "dashboard-busy", WIDTH, HEIGHT).await?;
    b.goto(&gw.url("/#/logs?status=error&limit=25")).await?;
    b.find("#log-table tbody tr").await?;
    shot(b, "logs-busy", WIDTH, HEIGHT).await?;
    gw.stop().await;
    Ok(())
}

#[tokio::test]
async fn routing_page_names_the_discovery_and_alias_reasons() {
    if browser::skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let mut mocks = Vec::new();
    for (name, models) in [("dedicated", ["PREMIUM-MODEL"]), ("shared", ["gpt-oss-120b"])] {
        let mock = start(MockOptions {
            api_key: Some(SHARED_SECRET.into()),
            models: Some(models.iter().map(|m| m.to_string()).collect()),
            ..Default::default()
        })
        .await
        .unwrap();
        gw.post(
            "/api/providers",
            json!({"provider": name, "network_config": {"base_url": mock.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"}, "model_discovery": true}),
        )
        .await;
        let aliases = if name == "shared" {
            json!({"house-model": "gpt-oss-120b"})
        } else {
            json!({})
        };
        gw.post(
            &format!("/api/providers/{name}/keys"),
            json!({"name": format!("{name}-key"), "value": SHARED_SECRET, "models": ["*"], "aliases": aliases}),
        )
        .await;
        let (s, r) = gw
            .post(&format!("/api/providers/{name}/refresh-models"), json!({}))
            .await;
        assert_eq!(s, 200, "{r}");
        mocks.push(mock);
    }
    let b = start_browser().await;
    let result = discovery_reasons(&b, &gw).await;
    let console = finish(b, result, "routing-discovery-failure").await;
    assert!(console.is_empty(), "browser console errors: {console:#?}");
}

async fn discovery_reasons(b: &Browser, gw: &TestGateway) -> anyhow::Result<()> {
    b.goto(&gw.url("/#/providers")).await?;
    b.wait_contains("section.provider[data-provider=dedicated]", "PREMIUM-MODEL")
        .await?;
    b.click("a[data-nav=routing]").await?;
    for (model, provider, reason) in [
        (
            "PREMIUM-MODEL",
            "dedicated",
            "the provider’s /v1/models list has it",
        ),
        // An alias's target counts as a model the key lists.
        ("gpt-oss-120b", "shared", "a key lists this model"),
        ("house-model", "shared", "a key alias maps this name"),
    ] {
        b.fill("#explain-model", model).await?;
        b.click("#explain-go").await?;
        b.wait_js(
            "a one-step plan with its reason",
            "const li = document.querySelectorAll('#plan > li'); return li.length === 1 && li[0].dataset.provider === arguments[0] && li[0].querySelector('.tag').textContent.includes(arguments[1]);",
            json!([provider, reason]),
        )
        .await?;
    }
    Ok(())
}
