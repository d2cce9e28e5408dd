//! The web UI: a small no-build front end (plain HTML, CSS and ES modules) embedded in the binary and
//! served at `/`, plus the one read-only endpoint it needs beyond the management and logs APIs,
//! `GET /api/routing/explain` (see [`explain`]).
//!
//! Why no build step: the pages are four views over JSON APIs that already exist, so a framework would
//! add a JavaScript toolchain to `cargo build` and hundreds of kilobytes for nothing. The browser loads
//! modules directly; `include_bytes!` puts every file into the binary.
//!
//! Caching: `/` (the HTML shell) is `no-cache`. Every other file lives under `/ui/{version}/`, where
//! `version` is a hash of all embedded files, so asset URLs change whenever any file changes and can be
//! cached as immutable; relative `import`s between modules stay inside the versioned folder.

pub mod explain;

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use switchyard_core::provider::BUILTIN_PROVIDERS;
use switchyard_core::WireApi;

use switchyard_runtime::error::GatewayError;
use switchyard_runtime::state::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:literal) => {
        Asset {
            name: $name,
            content_type: $ct,
            bytes: include_bytes!(concat!("assets/", $name)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("lib.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("providers.js", "text/javascript; charset=utf-8"),
    asset!("routing.js", "text/javascript; charset=utf-8"),
    asset!("dashboard.js", "text/javascript; charset=utf-8"),
    asset!("logs.js", "text/javascript; charset=utf-8"),
    asset!("login.js", "text/javascript; charset=utf-8"),
    asset!("keys.js", "text/javascript; charset=utf-8"),
    asset!("cache.js", "text/javascript; charset=utf-8"),
    asset!("mcp.js", "text/javascript; charset=utf-8"),
    asset!("guardrails.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX_HTML: &str = include_str!("assets/index.html");

/// The content security policy of every UI response: only this origin's scripts, styles and data, no
/// inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// A short hash (FNV-1a, 64 bit) over every embedded file: the version in asset URLs.
pub fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(INDEX_HTML.as_bytes());
        eat(include_bytes!("assets/login.html"));
        for a in ASSETS {
            eat(a.name.as_bytes());
            eat(a.bytes);
        }
        format!("{:012x}", h >> 16)
    })
}

/// The UI's routes, to be merged into the gateway's router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{version}/{file}", get(asset))
        .route("/api/routing/explain", get(explain::explain))
}

pub(crate) fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// What the front end needs to know about this gateway that no API says: the built-in provider table,
/// the accepted custom base types, and whether request logs are on. Embedded in the page as a JSON data
/// block (not executed, so the CSP needs no exception).
fn meta_json(state: &AppState) -> String {
    let builtins: Vec<_> = BUILTIN_PROVIDERS
        .iter()
        .map(|b| json!({"name": b.name, "wire": b.wire.as_str(), "default_base_url": b.default_base_url}))
        .collect();
    let base_types: Vec<&str> = ["openai", "anthropic", "gemini", "bedrock", "cohere"]
        .into_iter()
        .filter(|t| WireApi::from_base_provider_type(t).is_some())
        .collect();
    let meta = json!({
        "builtins": builtins,
        "base_types": base_types,
        "logs_enabled": state.log_store.is_some(),
        "version": asset_version(),
    });
    // `</` cannot end the data block early once escaped.
    meta.to_string().replace("</", "<\\/")
}

async fn index(State(state): State<Arc<AppState>>) -> Response {
    let html = INDEX_HTML
        .replace("{{VERSION}}", asset_version())
        .replace("{{META}}", &meta_json(&state));
    let mut resp = html.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(&mut resp);
    resp
}

async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return GatewayError::NotFound {
            message: format!("no UI file '{file}'"),
            code: Some("ui_asset_not_found"),
        }
        .into_response();
    };
    // A page loaded from an older binary may still ask for its version: serve the current file, but
    // do not let it be cached under the old URL.
    let cache = if version == asset_version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = a.bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    security_headers(&mut resp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";

    #[test]
    fn every_asset_has_a_content_type_and_the_version_is_stable() {
        for a in ASSETS {
            let ext = a.name.rsplit('.').next().unwrap();
            let expected = match ext {
                "js" => JS,
                "css" => "text/css; charset=utf-8",
                "svg" => "image/svg+xml",
                other => panic!("unexpected asset type {other}"),
            };
            assert_eq!(a.content_type, expected, "{}", a.name);
            assert!(!a.bytes.is_empty(), "{} is empty", a.name);
        }
        assert_eq!(asset_version(), asset_version());
        assert_eq!(asset_version().len(), 12);
    }

    #[test]
    fn index_references_only_embedded_assets() {
        for part in INDEX_HTML.split("/ui/{{VERSION}}/").skip(1) {
            let name: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "index.html names missing asset {name}"
            );
        }
        let login = include_str!("assets/login.html");
        for part in login.split("/ui/{{VERSION}}/").skip(1) {
            let name: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "login.html names missing asset {name}"
            );
        }
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.bytes).unwrap();
            for part in text.split(" from './").skip(1) {
                let file: String = part.chars().take_while(|c| *c != '\'').collect();
                assert!(
                    ASSETS.iter().any(|x| x.name == file),
                    "{} imports missing module {file}",
                    a.name
                );
            }
        }
    }
}
