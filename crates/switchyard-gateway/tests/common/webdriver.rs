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

/// Starts chromedriver on a free port and waits until it answers. The port is free when picked but
/// may be taken before the driver binds it (tests run side by side), and a loaded machine may be slow
/// to start it: a driver that exits or stays silent is replaced on a new port, three times at most.
async fn start_driver(driver_bin: &str) -> Result<(Child, u16)> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut last = String::new();
    for _ in 0..3 {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let mut driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {driver_bin}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok((driver, port));
            }
            if let Ok(Some(status)) = driver.try_wait() {
                last = format!("chromedriver exited ({status}) on port {port}");
                break;
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                last = format!("chromedriver did not come up on port {port}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    bail!("{last} (three attempts)")
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
        let (driver, port) = start_driver(&driver_bin).await?;
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
