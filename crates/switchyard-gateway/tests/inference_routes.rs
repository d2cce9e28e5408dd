//! Every inference route is governed: read from the router's source, each route is called against the
//! real server with `enforce_auth_on_inference` on and two mock upstreams, and must show
//! - no virtual key: 401, and no upstream saw a request;
//! - a virtual key allowed only provider `alpha` (upstream A) asking for the route's provider (on
//!   upstream B): 403, and no upstream saw a request;
//! - a virtual key allowed everything: an answer, exactly one new log row carrying that key's id, and
//!   `switchyard_requests_total` in `/metrics` one higher.
//!
//! A route in the source without a row in [`cases`] fails the test by name, so a new route cannot skip
//! these checks. Every failure is collected and reported together (route, case, status, body).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{create_vk, TestGateway};
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_mock::{MockOptions, MockUpstream};

/// Every inference route the server registers, as axum patterns (`/v1/chat/completions`,
/// `/passthrough/{provider}/{*rest}`): the pipeline's route table (the inference router is built from
/// it alone), plus every `.route("...")` literal of the server's own router, read from its source, so
/// an inference route added there is found too. Every router the server merges must be the route table
/// or serve only the admin surface. The admin surface (`/api/*`, `/metrics`, `/`, UI assets,
/// `/login`) and `/health` are left out.
fn inference_routes_in_source() -> BTreeSet<String> {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let server = squash(include_str!("../src/server.rs"));
    let literals = |text: &str, marker: &str| -> Vec<String> {
        text.split(marker)
            .skip(1)
            .map(|p| p.split('"').next().unwrap_or_default().to_owned())
            .collect()
    };
    // Merged routers: the route table, routers that serve only the admin surface, LiteLLM's
    // management API (`switchyard_admin::litellm`: master-key guarded keys/teams/spend, no inference),
    // or the MCP gateway (`routes::mcp`: reaches no model provider; identified by the same step,
    // guarded by `tests/mcp_routes.rs`).
    for merged in server.split(".merge(").skip(1) {
        let callee = merged.split('(').next().unwrap_or_default();
        let local = !callee.contains("::") && server.contains(&format!("fn{callee}("));
        assert!(
            callee == "routes::router"
                || callee == "routes::mcp::router"
                || local
                || ["ui::router", "auth::router", "litellm::router"].contains(&callee),
            "the server merges `{callee}(...)`: inference routes belong in routes::table"
        );
    }
    assert!(
        !server.contains(".nest("),
        "the server nests a router: read its routes here too"
    );
    let mut found: BTreeSet<String> = switchyard_gateway::routes::patterns().into_iter().collect();
    found.extend(literals(&server, ".route(\""));
    found.retain(|r| {
        let admin = r == "/" || r == "/api" || r.starts_with("/api/") || r.starts_with("/ui/");
        !(admin || ["/metrics", "/login", "/health"].contains(&r.as_str()))
    });
    found
}

/// Provider A (on upstream A): the only one the restricted key may use.
const ALLOWED: &str = "alpha";
const MODEL_B: &str = "beta/m";

enum Body {
    Empty,
    Json(Value),
    /// A multipart audio upload with this `model` field.
    Audio(&'static str),
}

/// One row of the route table: a sample request for the route, aimed at a provider other than
/// [`ALLOWED`] (on upstream B).
struct Case {
    route: String,
    method: Method,
    path: String,
    body: Body,
    provider: &'static str,
}

fn case(route: &str, method: Method, path: &str, body: Body, provider: &'static str) -> Case {
    Case {
        route: route.to_owned(),
        method,
        path: path.to_owned(),
        body,
        provider,
    }
}

fn messages(model: &str) -> Value {
    json!({"model": model, "max_tokens": 3, "messages": [{"role": "user", "content": "Hello there"}]})
}

fn gemini_contents() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]})
}

/// The route table: route pattern → a sample request and the provider it targets.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for prefix in ["/v1", "/openai/v1"] {
        let post = |route: &str, body: Value| {
            let path = format!("{prefix}{route}");
            case(&path, Method::POST, &path, Body::Json(body), "beta")
        };
        cases.push(post("/chat/completions", messages(MODEL_B)));
        cases.push(post("/embeddings", json!({"model": "beta/e", "input": "hello"})));
        cases.push(post(
            "/completions",
            json!({"model": MODEL_B, "prompt": "Hello", "max_tokens": 3}),
        ));
        cases.push(post(
            "/responses",
            json!({"model": MODEL_B, "input": "Hello there"}),
        ));
        cases.push(post(
            "/rerank",
            json!({"model": "beta/r", "query": "q", "documents": ["a", "b"]}),
        ));
        cases.push(post(
            "/audio/speech",
            json!({"model": "beta/tts", "input": "Hallo", "voice": "Vivian"}),
        ));
        for audio in ["/audio/transcriptions", "/audio/translations"] {
            let path = format!("{prefix}{audio}");
            cases.push(case(
                &path,
                Method::POST,
                &path,
                Body::Audio("beta/whisper"),
                "beta",
            ));
        }
        let models = format!("{prefix}/models");
        let listing = format!("{models}?provider=beta");
        cases.push(case(&models, Method::GET, &listing, Body::Empty, "beta"));
    }
    let post = Method::POST; // the rows below name their provider in the path or the body
    cases.extend([
        case(
            "/anthropic/v1/messages",
            post.clone(),
            "/anthropic/v1/messages",
            Body::Json(messages(MODEL_B)),
            "beta",
        ),
        case(
            "/anthropic/v1/models",
            Method::GET,
            "/anthropic/v1/models?provider=beta",
            Body::Empty,
            "beta",
        ),
        case(
            "/anthropic/v1/messages/count_tokens",
            post.clone(),
            "/anthropic/v1/messages/count_tokens",
            Body::Json(messages("anthropic/claude-3-7-sonnet")),
            "anthropic",
        ),
        case(
            "/genai/v1beta/models/{*model_action}",
            post.clone(),
            "/genai/v1beta/models/beta/m:generateContent",
            Body::Json(gemini_contents()),
            "beta",
        ),
        case(
            "/openai_passthrough/{*rest}",
            post.clone(),
            "/openai_passthrough/v1/embeddings",
            Body::Json(json!({"model": "e", "input": "hello"})),
            "openai",
        ),
        case(
            "/anthropic_passthrough/{*rest}",
            post.clone(),
            "/anthropic_passthrough/v1/messages",
            Body::Json(messages("claude-3-7-sonnet")),
            "anthropic",
        ),
        case(
            "/genai_passthrough/{*rest}",
            post.clone(),
            "/genai_passthrough/v1beta/models/gemini-2.5-flash:generateContent",
            Body::Json(gemini_contents()),
            "gemini",
        ),
        case(
            "/passthrough/{provider}/{*rest}",
            post,
            "/passthrough/beta/v1/chat/completions",
            Body::Json(messages("m")),
            "beta",
        ),
    ]);
    cases
}

/// A fresh gateway with enforcement on, upstream A behind `alpha` and upstream B behind `beta` and the
/// built-in `openai`, `anthropic` and `gemini`; two virtual keys.
struct Env {
    gw: TestGateway,
    upstreams: [MockUpstream; 2],
    open_id: String,
    open_key: String,
    alpha_only_key: String,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let a = switchyard_mock::start(MockOptions::default()).await.unwrap();
        let b = switchyard_mock::start(MockOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let gw = TestGateway::start(dir.path()).await;
        let gemini_url = format!("http://{}", b.addr());
        for (provider, url, custom) in [
            (ALLOWED, a.base_url(), true),
            ("beta", b.base_url(), true),
            ("openai", b.base_url(), false),
            ("anthropic", b.base_url(), false),
            ("gemini", gemini_url, false),
        ] {
            let mut body =
                json!({"provider": provider, "network_config": {"base_url": url, "max_retries": 0}});
            if custom {
                body["custom_provider_config"] = json!({"base_provider_type": "openai"});
            }
            let (s, answer) = gw.post("/api/providers", body).await;
            assert_eq!(s, 200, "{provider}: {answer}");
            let key = json!({"name": "k", "value": "sk-upstream-0123456789", "models": ["*"]});
            let (s, answer) = gw.post(&format!("/api/providers/{provider}/keys"), key).await;
            assert_eq!(s, 200, "{provider} key: {answer}");
        }
        let enforce = json!({"client_config": {"enforce_auth_on_inference": true}});
        let (s, answer) = gw.put("/api/config", enforce).await;
        assert_eq!(s, 200, "{answer}");
        let (open_id, open_key) = create_vk(&gw, json!({"name": "open"})).await;
        let restricted = json!({"name": "alpha-only", "provider_configs": [{"provider": ALLOWED}]});
        let (_, alpha_only_key) = create_vk(&gw, restricted).await;
        Env {
            gw,
            upstreams: [a, b],
            open_id,
            open_key,
            alpha_only_key,
            _dir: dir,
        }
    }

    fn upstream_calls(&self) -> usize {
        self.upstreams.iter().map(|u| u.requests().len()).sum()
    }

    async fn send(&self, case: &Case, vk: Option<&str>) -> (u16, String) {
        let mut req = self.gw.http.request(case.method.clone(), self.gw.url(&case.path));
        if let Some(vk) = vk {
            req = req.header("x-bf-vk", vk);
        }
        if case.path.starts_with("/anthropic") {
            req = req.header("anthropic-version", "2023-06-01");
        }
        req = match &case.body {
            Body::Empty => req,
            Body::Json(v) => req.json(v),
            Body::Audio(model) => req
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(audio_form(model)),
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    async fn log_rows(&self) -> Vec<Value> {
        let (s, page) = self.gw.get("/api/logs?limit=1000").await;
        assert_eq!(s, 200, "{page}");
        page["logs"].as_array().cloned().unwrap_or_default()
    }

    /// The sum of `switchyard_requests_total` over all its label sets.
    async fn requests_total(&self) -> u64 {
        let r = self.gw.http.get(self.gw.url("/metrics")).send().await.unwrap();
        let text = r.text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("switchyard_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

const BOUNDARY: &str = "----switchyardRouteTableBoundary";

/// A multipart upload of a tenth of a second of silence (a valid 8 kHz mono WAV) and `model`.
fn audio_form(model: &str) -> Vec<u8> {
    let samples = 800u32;
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for (value, width) in [(16u32, 4), (1, 2), (1, 2), (8000, 4), (16000, 4), (2, 2), (16, 2)] {
        wav.extend_from_slice(&value.to_le_bytes()[..width]);
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples * 2).to_le_bytes());
    wav.resize(wav.len() + samples as usize * 2, 0);
    let mut out = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"quiet.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&wav);
    out.extend_from_slice(
        format!(
            "\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n--{BOUNDARY}--\r\n"
        )
        .as_bytes(),
    );
    out
}

fn short(body: &str) -> &str {
    let end = body.char_indices().nth(300).map_or(body.len(), |(i, _)| i);
    &body[..end]
}

/// Runs the three cases of one route on a fresh gateway; returns what failed.
async fn check(case: &Case) -> Vec<String> {
    let env = Env::start().await;
    let mut failed = Vec::new();
    let what = |name: &str| {
        format!(
            "{} {} ({name}, provider {})",
            case.method, case.path, case.provider
        )
    };

    // Admitted first, on a gateway that has served nothing yet, so every log row and count is its own.
    let (rows_before, total_before) = (env.log_rows().await.len(), env.requests_total().await);
    let (status, body) = env.send(case, Some(&env.open_key)).await;
    if !(200..300).contains(&status) {
        failed.push(format!(
            "{}: expected an answer, got {status}: {}",
            what("admitted"),
            short(&body)
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let (rows, total) = loop {
        let rows = env.log_rows().await;
        let total = env.requests_total().await;
        if (rows.len() > rows_before && total > total_before) || Instant::now() > deadline {
            // A second row would be written within one more batch of the log writer (200 ms).
            tokio::time::sleep(Duration::from_millis(300)).await;
            break (env.log_rows().await, env.requests_total().await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let new_rows = rows.len() - rows_before;
    let carries_key = rows.iter().any(|r| r["virtual_key_id"] == env.open_id.as_str());
    if new_rows != 1 || !carries_key {
        failed.push(format!(
            "{}: expected exactly one new log row with virtual_key_id {}, found {new_rows} new row(s): {}",
            what("admitted"),
            env.open_id,
            short(&Value::from(rows).to_string())
        ));
    }
    if total != total_before + 1 {
        failed.push(format!(
            "{}: expected switchyard_requests_total to grow by 1 (from {total_before}), it is {total}",
            what("admitted")
        ));
    }

    for (name, vk, expected) in [
        ("no virtual key", None, 401),
        (
            "key allowed only provider alpha",
            Some(env.alpha_only_key.as_str()),
            403,
        ),
    ] {
        let calls_before = env.upstream_calls();
        let (status, body) = env.send(case, vk).await;
        if status != expected {
            failed.push(format!(
                "{}: expected {expected}, got {status}: {}",
                what(name),
                short(&body)
            ));
        }
        let calls = env.upstream_calls() - calls_before;
        if calls != 0 {
            failed.push(format!(
                "{}: expected no upstream call, the upstreams saw {calls}",
                what(name)
            ));
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inference_route_is_governed() {
    let routes = inference_routes_in_source();
    let cases = cases();
    // The extraction found the routes it must (a guard against it silently finding nothing).
    for known in [
        "/v1/chat/completions",
        "/openai/v1/embeddings",
        "/anthropic/v1/messages",
    ] {
        assert!(routes.contains(known), "{known} not found in {routes:?}");
    }
    let mut failed = Vec::new();
    for route in &routes {
        match cases.iter().find(|c| &c.route == route) {
            Some(case) => failed.extend(check(case).await),
            None => failed.push(format!(
                "{route}: registered in the router but has no row in this test's route table (`cases`)"
            )),
        }
    }
    for c in cases.iter().filter(|c| !routes.contains(&c.route)) {
        failed.push(format!(
            "{}: in the route table but not found in the router's source",
            c.route
        ));
    }
    assert!(
        failed.is_empty(),
        "{} check(s) failed over {} inference routes:\n- {}",
        failed.len(),
        routes.len(),
        failed.join("\n- ")
    );
}
