//! The web UI end to end in real headless Chromium: the gateway runs in-process on a loopback port
//! with mock upstreams, Chromium is driven over WebDriver (Debian's `chromedriver`, a small client over
//! reqwest below), and the test does what an operator would: registers the seed's providers and keys
//! through the forms, tests a model, watches a fallback, reads Routing, Dashboard and Logs, and changes
//! a key's models and weight to see the routing explanation change.
//!
//! Needs `chromium` and `chromedriver` (`bash scripts/ui-test-deps.sh`). Without them the test fails
//! and says so; `SWITCHYARD_SKIP_BROWSER_TESTS=1` skips it explicitly. Screenshots of every page go to
//! `tests/artifacts/ui/`; with `SWITCHYARD_UPDATE_SCREENSHOTS=1` the main ones are also copied to
//! `docs/screenshots/`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestGateway;
use serde_json::json;
use switchyard_gateway::{LogsConfig, ServerConfig};
use switchyard_logs::{LogRecord, LogStore, SqliteLogStore};
use switchyard_mock::{start, MockOptions};

mod webdriver {
    //! A minimal W3C WebDriver client: just the commands these tests use.

    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use anyhow::{anyhow, bail, Context, Result};
    use serde_json::{json, Value};

    const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

    pub struct Browser {
        http: reqwest::Client,
        base: String,
        session: String,
        driver: Child,
        _profile: tempfile::TempDir,
    }

    fn find_binary(names: &[&str]) -> Option<String> {
        let path = std::env::var("PATH").unwrap_or_default();
        for name in names {
            for dir in path.split(':').chain(["/usr/bin", "/usr/lib/chromium"]) {
                let candidate = std::path::Path::new(dir).join(name);
                if candidate.is_file() {
                    return Some(candidate.to_string_lossy().into_owned());
                }
            }
        }
        None
    }

    pub fn available() -> Result<(String, String)> {
        let driver = find_binary(&["chromedriver"])
            .ok_or_else(|| anyhow!("chromedriver not found; run: bash scripts/ui-test-deps.sh"))?;
        let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or_else(|| anyhow!("chromium not found; run: bash scripts/ui-test-deps.sh"))?;
        Ok((driver, chromium))
    }

    impl Browser {
        pub async fn start(width: u32, height: u32) -> Result<Browser> {
            let (driver_bin, chromium) = available()?;
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                l.local_addr()?.port()
            };
            let driver = Command::new(&driver_bin)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {driver_bin}"))?;
            let profile = tempfile::tempdir()?;
            let http = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()?;
            let base = format!("http://127.0.0.1:{port}");
            let mut b = Browser {
                http,
                base,
                session: String::new(),
                driver,
                _profile: profile,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let ready = b
                    .http
                    .get(format!("{}/status", b.base))
                    .send()
                    .await
                    .ok()
                    .and_then(|r| r.status().is_success().then_some(()));
                if ready.is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("chromedriver did not come up on port {port}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let args = vec![
                "--headless".to_owned(),
                "--no-sandbox".to_owned(),
                "--disable-gpu".to_owned(),
                "--disable-quic".to_owned(),
                "--no-first-run".to_owned(),
                "--no-default-browser-check".to_owned(),
                "--disable-background-networking".to_owned(),
                "--disable-component-update".to_owned(),
                "--disable-sync".to_owned(),
                "--disable-extensions".to_owned(),
                "--disable-dev-shm-usage".to_owned(),
                "--no-proxy-server".to_owned(),
                "--hide-scrollbars".to_owned(),
                "--force-device-scale-factor=1".to_owned(),
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", b._profile.path().display()),
            ];
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
                "goog:loggingPrefs": {"browser": "ALL"},
                "pageLoadStrategy": "normal",
            }}});
            let r: Value = b
                .http
                .post(format!("{}/session", b.base))
                .json(&caps)
                .send()
                .await?
                .json()
                .await?;
            b.session = r["value"]["sessionId"]
                .as_str()
                .ok_or_else(|| anyhow!("chromedriver refused the session: {r}"))?
                .to_owned();
            Ok(b)
        }

        async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
            let url = format!("{}/session/{}{}", self.base, self.session, path);
            let mut req = self.http.request(method, &url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r: Value = req.send().await?.json().await?;
            if let Some(err) = r["value"].get("error") {
                bail!("webdriver {path}: {err}: {}", r["value"]["message"]);
            }
            Ok(r["value"].clone())
        }

        async fn post(&self, path: &str, body: Value) -> Result<Value> {
            self.cmd(reqwest::Method::POST, path, Some(body)).await
        }

        pub async fn goto(&self, url: &str) -> Result<()> {
            self.post("/url", json!({"url": url})).await.map(|_| ())
        }

        pub async fn js(&self, script: &str, args: Value) -> Result<Value> {
            self.post("/execute/sync", json!({"script": script, "args": args}))
                .await
        }

        /// Waits until `css` matches a displayed element and returns its WebDriver id.
        pub async fn find(&self, css: &str) -> Result<String> {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let visible = self
                    .js(
                        "let e = document.querySelector(arguments[0]); if (e && e.tagName === 'OPTION') e = e.closest('select'); \
                         return !!e && !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);",
                        json!([css]),
                    )
                    .await?;
                if visible == json!(true) {
                    let v = self
                        .post("/element", json!({"using": "css selector", "value": css}))
                        .await?;
                    return v[ELEMENT]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("no element id for {css}: {v}"));
                }
                if Instant::now() > deadline {
                    bail!("no visible element matches `{css}`");
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }

        pub async fn click(&self, css: &str) -> Result<()> {
            let id = self.find(css).await?;
            // Centre it first: chromedriver does not scroll an element that is "in view" but under the
            // sticky top bar.
            self.js(
                "const e = document.querySelector(arguments[0]); if (e && e.tagName !== 'OPTION') e.scrollIntoView({block: 'center'});",
                json!([css]),
            )
            .await?;
            self.post(&format!("/element/{id}/click"), json!({}))
                .await
                .with_context(|| format!("clicking {css}"))
                .map(|_| ())
        }

        /// Clears a field and types `text` into it with real key events.
        pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
            let id = self.find(css).await?;
            self.post(&format!("/element/{id}/clear"), json!({})).await?;
            self.post(&format!("/element/{id}/value"), json!({"text": text}))
                .await
                .with_context(|| format!("typing into {css}"))
                .map(|_| ())
        }

        /// Presses keys on whatever has focus (e.g. `\u{E004}` is Tab).
        pub async fn keys(&self, keys: &str) -> Result<()> {
            let mut actions = Vec::new();
            for k in keys.chars() {
                actions.push(json!({"type": "keyDown", "value": k.to_string()}));
                actions.push(json!({"type": "keyUp", "value": k.to_string()}));
            }
            self.post(
                "/actions",
                json!({"actions": [{"type": "key", "id": "kbd", "actions": actions}]}),
            )
            .await
            .map(|_| ())
        }

        /// Polls `document.querySelector(css).innerText` until `ok` accepts it.
        pub async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
            let deadline = Instant::now() + Duration::from_secs(12);
            let mut last = String::new();
            loop {
                let v = self
                    .js(
                        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                        json!([css]),
                    )
                    .await?;
                if let Some(t) = v.as_str() {
                    if ok(t) {
                        return Ok(t.to_owned());
                    }
                    last = t.to_owned();
                }
                if Instant::now() > deadline {
                    bail!("`{css}` never showed the expected text; last: {last:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        pub async fn wait_contains(&self, css: &str, needle: &str) -> Result<String> {
            self.wait_text(css, |t| t.contains(needle))
                .await
                .with_context(|| format!("waiting for {needle:?} in `{css}`"))
        }

        /// Polls a JS expression until it returns `true`.
        pub async fn wait_js(&self, what: &str, script: &str, args: Value) -> Result<()> {
            let deadline = Instant::now() + Duration::from_secs(12);
            loop {
                if self.js(script, args.clone()).await? == json!(true) {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("timed out waiting for {what}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        pub async fn set_size(&self, width: u32, height: u32) -> Result<()> {
            self.post("/window/rect", json!({"width": width, "height": height}))
                .await
                .map(|_| ())
        }

        /// A PNG of the whole page: the window is made as tall as the document for the shot.
        pub async fn screenshot(&self, path: &std::path::Path, width: u32, height: u32) -> Result<()> {
            let full = self
                .js(
                    "return Math.ceil(document.documentElement.scrollHeight);",
                    json!([]),
                )
                .await?
                .as_u64()
                .unwrap_or(u64::from(height)) as u32;
            self.set_size(width, full.clamp(height, 4000)).await?;
            // From the top, without the transient toasts of the steps before.
            self.js(
                "window.scrollTo(0, 0); const t = document.getElementById('toasts'); if (t) t.replaceChildren();",
                json!([]),
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
            let b64 = self
                .cmd(reqwest::Method::GET, "/screenshot", None)
                .await?
                .as_str()
                .ok_or_else(|| anyhow!("screenshot without data"))?
                .to_owned();
            std::fs::write(path, base64_decode(&b64)?)?;
            self.set_size(width, height).await
        }

        /// Console messages at level SEVERE (JS errors, CSP violations, failed loads).
        pub async fn severe_console_messages(&self) -> Result<Vec<String>> {
            let v = self.post("/se/log", json!({"type": "browser"})).await?;
            Ok(v.as_array()
                .map(|a| {
                    a.iter()
                        .filter(|m| m["level"] == "SEVERE")
                        .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default())
        }

        pub async fn quit(mut self) {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send()
                .await;
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            let _ = self.driver.kill();
            let _ = self.driver.wait();
            // A Chromium whose session was not closed (a failed test) outlives chromedriver: end the
            // processes started with this test's own profile directory, by pid.
            let marker = format!("--user-data-dir={}", self._profile.path().display());
            let Ok(procs) = std::fs::read_dir("/proc") else {
                return;
            };
            for entry in procs.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
                    continue;
                };
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let ours = cmdline.split(|b| *b == 0).any(|arg| arg == marker.as_bytes());
                if ours {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
        }
    }

    fn base64_decode(s: &str) -> Result<Vec<u8>> {
        fn val(c: u8) -> Option<u32> {
            match c {
                b'A'..=b'Z' => Some(u32::from(c - b'A')),
                b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
                b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
                b'+' => Some(62),
                b'/' => Some(63),
                _ => None,
            }
        }
        let clean: Vec<u8> = s
            .bytes()
            .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
            .collect();
        let mut out = Vec::with_capacity(clean.len() * 3 / 4);
        for chunk in clean.chunks(4) {
            let mut acc = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                acc |= val(*c).ok_or_else(|| anyhow!("bad base64"))? << (18 - 6 * i);
            }
            let bytes = acc.to_be_bytes();
            out.extend_from_slice(&bytes[1..chunk.len()]);
        }
        Ok(out)
    }
}

use webdriver::Browser;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 860;
const DEDICATED_SECRET: &str = "sk-dedicated-secret-0001";
const SHARED_SECRET: &str = "sk-shared-secret-0002";

fn redacted(s: &str) -> String {
    format!("{}{}{}", &s[..4], "*".repeat(24), &s[s.len() - 4..])
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/artifacts/ui");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port nothing listens on (bound, then released): the dedicated endpoint "going down".
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn shot(b: &Browser, name: &str, width: u32, height: u32) -> anyhow::Result<()> {
    b.screenshot(&artifacts().join(format!("{name}.png")), width, height)
        .await
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
    if std::env::var_os("SWITCHYARD_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("SKIPPED: SWITCHYARD_SKIP_BROWSER_TESTS is set");
        return;
    }
    if let Err(e) = webdriver::available() {
        panic!("{e} (or set SWITCHYARD_SKIP_BROWSER_TESTS=1 to skip the browser tests)");
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
    let b = Browser::start(WIDTH, HEIGHT)
        .await
        .expect("headless Chromium starts");
    let mut result = run(&b, &gw, &dedicated.base_url(), &shared.base_url()).await;
    if result.is_ok() {
        result = busy_gateway(&b).await;
    }
    let console = b.severe_console_messages().await.unwrap_or_default();
    if result.is_err() {
        let _ = shot(&b, "failure", WIDTH, HEIGHT).await;
    }
    b.quit().await;
    result.unwrap();
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

async fn run(b: &Browser, gw: &TestGateway, dedicated_url: &str, shared_url: &str) -> anyhow::Result<()> {
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
    let row = "section[data-provider=openai] tr[data-key-name=mittwald-dedicated]";
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

/// A day of made-up but plausible traffic: three lanes, a daily rhythm, ~2 % errors and a 20-minute
/// outage of the dedicated lane three hours ago that the shared lane absorbed.
fn synthetic_day(n: usize, now_ms: i64) -> Vec<LogRecord> {
    let mut seed: u64 = 0x5eed_1234_abcd;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let day = 86_400_000f64;
    let outage = (now_ms - 3 * 3_600_000, now_ms - 3 * 3_600_000 + 20 * 60_000);
    let lanes: [(&str, &str, &str, f64, f64); 5] = [
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
        let lane = lanes
            .iter()
            .find(|l| {
                pick -= l.3;
                pick <= 0.0
            })
            .unwrap_or(&lanes[1]);
        let (provider, model, key, _, base_latency) = *lane;
        let latency = base_latency * (0.4 + 1.8 * rnd() * rnd()) + 5.0;
        let input = (150.0 + 2500.0 * rnd() * rnd()) as i64;
        let output = (40.0 + 700.0 * rnd()) as i64;
        let mut r = LogRecord::new(
            format!("busy-{:06}", out.len()),
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
        let roll = rnd();
        if provider == "openai" && (outage.0..outage.1).contains(&t) {
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
        out.push(r);
    }
    out
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

/// Admin auth in the browser: the UI sends an anonymous visitor to the login page, a wrong password is
/// shown as an error, the right one opens the UI, changes made through the UI's own API helper carry
/// the CSRF token (a bare `fetch` without it is refused), and logging out ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_logs_in_through_the_login_page_changes_config_and_logs_out() {
    if std::env::var_os("SWITCHYARD_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("SKIPPED: SWITCHYARD_SKIP_BROWSER_TESTS is set");
        return;
    }
    if let Err(e) = webdriver::available() {
        panic!("{e} (or set SWITCHYARD_SKIP_BROWSER_TESTS=1 to skip the browser tests)");
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
    let b = Browser::start(WIDTH, HEIGHT)
        .await
        .expect("headless Chromium starts");
    let result = login_flow(&b, &gw, PASSWORD).await;
    if result.is_err() {
        let _ = shot(&b, "login-failure", WIDTH, HEIGHT).await;
    }
    b.quit().await;
    result.unwrap();
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
    if std::env::var_os("SWITCHYARD_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("SKIPPED: SWITCHYARD_SKIP_BROWSER_TESTS is set");
        return;
    }
    if let Err(e) = webdriver::available() {
        panic!("{e} (or set SWITCHYARD_SKIP_BROWSER_TESTS=1 to skip the browser tests)");
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let b = Browser::start(WIDTH, HEIGHT)
        .await
        .expect("headless Chromium starts");
    let result = virtual_keys_page(&b, &gw).await;
    let console = b.severe_console_messages().await.unwrap_or_default();
    if result.is_err() {
        let _ = shot(&b, "virtual-keys-failure", WIDTH, HEIGHT).await;
    }
    b.quit().await;
    result.unwrap();
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

/// Two `*` lanes with different discovered model lists and an aliased key: the Routing page says why
/// each model goes where it goes, and the provider page shows the discovered list.
#[tokio::test]
async fn routing_page_names_the_discovery_and_alias_reasons() {
    if std::env::var_os("SWITCHYARD_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("SKIPPED: SWITCHYARD_SKIP_BROWSER_TESTS is set");
        return;
    }
    if let Err(e) = webdriver::available() {
        panic!("{e} (or set SWITCHYARD_SKIP_BROWSER_TESTS=1 to skip the browser tests)");
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
    let b = Browser::start(WIDTH, HEIGHT)
        .await
        .expect("headless Chromium starts");
    let result = discovery_reasons(&b, &gw).await;
    let console = b.severe_console_messages().await.unwrap_or_default();
    if result.is_err() {
        let _ = shot(&b, "routing-discovery-failure", WIDTH, HEIGHT).await;
    }
    b.quit().await;
    result.unwrap();
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
