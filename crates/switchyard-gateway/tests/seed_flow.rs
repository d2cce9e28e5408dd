//! The seed guide, replayed: every `curl` command in `fixtures/seed.txt` (a verbatim copy of the
//! Bifrost-on-mittwald setup guide) is run with the real `curl` binary against the real gateway, with only
//! the mittwald base URLs pointed at local mocks and `localhost:8080` at the test port.

mod common;

use std::process::Command;

use common::TestGateway;
use serde_json::Value;
use switchyard_mock::{start, MockOptions, MockUpstream};

const SEED: &str = include_str!("fixtures/seed.txt");
const DEDICATED_URL: &str = "https://your-company.llm.aihosting.mittwald.de/v1";
const SHARED_URL: &str = "https://llm.aihosting.mittwald.de/v1";

/// Extracts the shell commands that start with `curl` (after an optional `user@local $ ` prompt),
/// joining continuation lines (`\` at the end, or an open single-quoted string).
fn seed_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let stripped = line.strip_prefix("user@local $ ").unwrap_or(line);
        match current.as_mut() {
            None if stripped.starts_with("curl ") => current = Some(stripped.to_owned()),
            None => continue,
            Some(cmd) => {
                cmd.push('\n');
                cmd.push_str(line);
            }
        }
        let cmd = current.as_ref().unwrap();
        let open_quote = cmd.matches('\'').count() % 2 == 1;
        if !open_quote && !cmd.trim_end().ends_with('\\') {
            out.push(current.take().unwrap());
        }
    }
    out
}

struct Lanes {
    dedicated: MockUpstream,
    shared: MockUpstream,
    anthropic: MockUpstream,
}

impl Lanes {
    async fn start() -> Lanes {
        let dedicated = start(MockOptions {
            api_key: Some("YOUR_DEDICATED_API_KEY".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let shared = start(MockOptions {
            api_key: Some("YOUR_SHARED_API_KEY".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let anthropic = start(MockOptions {
            api_key: Some("YOUR_ANTHROPIC_API_KEY".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        Lanes {
            dedicated,
            shared,
            anthropic,
        }
    }

    fn rewrite(&self, cmd: &str, gw: &TestGateway) -> String {
        cmd.replace("http://localhost:8080", &format!("http://{}", gw.addr))
            .replace(DEDICATED_URL, &self.dedicated.base_url())
            .replace(SHARED_URL, &self.shared.base_url())
    }
}

/// Runs one seed command; returns the HTTP status and the body.
fn run_curl(cmd: &str) -> (u16, Value) {
    let script = format!("{cmd} --silent --show-error --write-out '\\n%{{http_code}}'");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl failed: {cmd}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn section<'a>(text: &'a str, from: &str, to: Option<&str>) -> &'a str {
    let start = text.find(from).expect("section start");
    let end = to
        .map(|t| text[start..].find(t).expect("section end") + start)
        .unwrap_or(text.len());
    &text[start..end]
}

#[test]
fn seed_contains_the_commands_we_replay() {
    let cmds = seed_commands(SEED);
    // 2 setup calls, 1 chat call, 2 shared-lane calls, 2 Anthropic calls, 6 multi-lane calls.
    assert_eq!(cmds.len(), 13, "{cmds:#?}");
    assert!(cmds.iter().all(|c| c.contains("http://localhost:8080/")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_to_z_walkthrough_works_as_written() {
    let lanes = Lanes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let walkthrough = section(SEED, "A-to-Z setup", Some("Complete multi-lane routing example"));
    let cmds = seed_commands(walkthrough);
    assert_eq!(cmds.len(), 7);
    for cmd in &cmds {
        let cmd = lanes.rewrite(cmd, &gw);
        let (status, body) = tokio::task::spawn_blocking(move || run_curl(&cmd)).await.unwrap();
        assert_eq!(status, 200, "{body}");
        if let Some(value) = body.get("value").and_then(Value::as_str) {
            assert!(
                !value.contains("API_KEY") || value.contains("****"),
                "key value not redacted: {body}"
            );
        }
    }

    // Step 4's chat call reached the dedicated endpoint with the stored key and the bare model id.
    let chats: Vec<_> = lanes
        .dedicated
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .collect();
    assert_eq!(chats.len(), 1);
    assert_eq!(
        chats[0].header("authorization"),
        Some("Bearer YOUR_DEDICATED_API_KEY")
    );
    assert_eq!(chats[0].json()["model"], "YOUR_MODEL_ID");
    assert_eq!(lanes.shared.call_count("chat"), 0);

    // The three providers are all there, keys redacted.
    let (_, list) = gw.get("/api/providers").await;
    let names: Vec<&str> = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anthropic", "mittwald-shared", "openai"]);
    assert!(!list.to_string().contains("YOUR_SHARED_API_KEY"));

    // Restart on the same app dir: everything is still there and still routes.
    gw.stop().await;
    let gw = TestGateway::start(dir.path()).await;
    let (_, list2) = gw.get("/api/providers").await;
    assert_eq!(list, list2);
    let (status, body) = gw
        .post(
            "/v1/chat/completions",
            common::chat("mittwald-shared/gpt-oss-120b"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["extra_fields"]["provider"], "mittwald-shared");
    assert_eq!(
        lanes.shared.requests().last().unwrap().header("authorization"),
        Some("Bearer YOUR_SHARED_API_KEY")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_lane_example_routes_by_model_name() {
    let lanes = Lanes::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    for cmd in seed_commands(section(SEED, "Complete multi-lane routing example", None)) {
        let cmd = lanes.rewrite(&cmd, &gw);
        let (status, body) = tokio::task::spawn_blocking(move || run_curl(&cmd)).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }

    // YOUR_PREMIUM_MODEL_ID -> dedicated lane, on both the unified and the OpenAI drop-in route.
    for path in ["/v1/chat/completions", "/openai/v1/chat/completions"] {
        let (status, body) = gw.post(path, common::chat("YOUR_PREMIUM_MODEL_ID")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["extra_fields"]["provider"], "openai");
        assert_eq!(body["model"], "YOUR_PREMIUM_MODEL_ID");
    }
    assert_eq!(lanes.dedicated.call_count("chat"), 2);

    // Any other model -> shared lane (matched by '*').
    for path in ["/v1/chat/completions", "/openai/v1/chat/completions"] {
        let (status, body) = gw.post(path, common::chat("gpt-oss-120b")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["extra_fields"]["provider"], "mittwald-shared");
    }
    assert_eq!(lanes.shared.call_count("chat"), 2);
    assert_eq!(lanes.dedicated.call_count("chat"), 2);

    // claude-3-7-sonnet -> the Anthropic lane. The guide registers Anthropic without a base URL (the
    // public API); only that URL is pointed at the local Anthropic-speaking mock.
    let (s, b) = gw
        .put(
            "/api/providers/anthropic",
            serde_json::json!({"network_config": {"base_url": lanes.anthropic.base_url()}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (status, body) = gw
        .post("/v1/chat/completions", common::chat("claude-3-7-sonnet"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["extra_fields"]["provider"], "anthropic");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: Hello there");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let call = lanes.anthropic.requests().pop().unwrap();
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.header("x-api-key"), Some("YOUR_ANTHROPIC_API_KEY"));
    assert_eq!(lanes.shared.call_count("chat"), 2);
}
