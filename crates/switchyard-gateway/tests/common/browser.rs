//! What the browser tests share: the skip switch, the window size, screenshots, and starting and
//! ending a headless Chromium session.

use std::path::{Path, PathBuf};

use super::webdriver::{self, Browser};

pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 860;

/// True when `SWITCHYARD_SKIP_BROWSER_TESTS` asks to skip the browser tests; panics, saying how to
/// install or skip them, when Chromium or chromedriver is missing.
pub fn skipped() -> bool {
    if std::env::var_os("SWITCHYARD_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("SKIPPED: SWITCHYARD_SKIP_BROWSER_TESTS is set");
        return true;
    }
    if let Err(e) = webdriver::available() {
        panic!("{e} (or set SWITCHYARD_SKIP_BROWSER_TESTS=1 to skip the browser tests)");
    }
    false
}

/// Where screenshots go: `tests/artifacts/ui/` at the repository root.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/artifacts/ui");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn shot(b: &Browser, name: &str, width: u32, height: u32) -> anyhow::Result<()> {
    b.screenshot(&artifacts().join(format!("{name}.png")), width, height)
        .await
}

/// Headless Chromium at the default window size.
pub async fn start_browser() -> Browser {
    Browser::start(WIDTH, HEIGHT)
        .await
        .expect("headless Chromium starts")
}

/// Ends a browser session: reads the console's severe messages, takes the `failure_shot` screenshot
/// if the steps failed, quits, then fails the test with the steps' error. Returns the console
/// messages.
pub async fn finish(b: Browser, result: anyhow::Result<()>, failure_shot: &str) -> Vec<String> {
    let console = b.severe_console_messages().await.unwrap_or_default();
    if result.is_err() {
        let _ = shot(&b, failure_shot, WIDTH, HEIGHT).await;
    }
    b.quit().await;
    result.unwrap();
    console
}
