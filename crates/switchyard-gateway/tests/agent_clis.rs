//! The real coding-agent CLIs against the real server and mock upstreams: Claude Code (`claude -p`) on
//! an OpenAI-compatible model, and Codex CLI (`codex exec`) on a chat-only upstream. Both are installed
//! from npm at pinned versions into the target directory (once), run offline with `HOME` in a temp dir
//! and their telemetry and update checks off. When npm cannot install them the tests are skipped and
//! say why.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::TestGateway;
use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

const CLAUDE_CODE: &str = "@anthropic-ai/claude-code@2.1.332";
const CODEX: &str = "@openai/codex@0.171.0";
const KEY: &str = "sk-cli-test-0001";

/// The CLIs' install prefix, installing them if needed; `Err(reason)` when that is impossible.
fn clis() -> Result<PathBuf, String> {
    // The tests run in parallel: one installs while the others wait. (Two installs into one prefix
    // rewrite the executables while a test spawns them: "Text file busy".)
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("agent-clis");
    let bin = prefix.join("node_modules/.bin");
    if bin.join("claude").exists() && bin.join("codex").exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .args([CLAUDE_CODE, CODEX])
        .output()
        .map_err(|e| format!("npm is not available: {e}"))?;
    if !out.status.success() || !bin.join("claude").exists() {
        return Err(format!(
            "npm could not install {CLAUDE_CODE} and {CODEX}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(bin)
}

struct Setup {
    gw: TestGateway,
    mock: MockUpstream,
    home: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

/// `mittwald-shared` (OpenAI-compatible, chat completions only) serving every model, and `anthropic`
/// serving `claude-4-sonnet` (the same mock's Anthropic API).
async fn setup() -> Setup {
    let mock = start(MockOptions {
        api_key: Some(KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    mock.set_chat_only(true);
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let body = json!({"provider": "mittwald-shared", "custom_provider_config": {"base_provider_type": "openai"},
                      "network_config": {"base_url": mock.base_url(), "max_retries": 0}});
    assert_eq!(gw.post("/api/providers", body).await.0, 200);
    let key = json!({"name": "k", "value": KEY, "models": ["*"]});
    assert_eq!(gw.post("/api/providers/mittwald-shared/keys", key).await.0, 200);
    // The same mock's Anthropic API behind `anthropic`, for Claude models.
    let body =
        json!({"provider": "anthropic", "network_config": {"base_url": mock.base_url(), "max_retries": 0}});
    assert_eq!(gw.post("/api/providers", body).await.0, 200);
    let key = json!({"name": "k", "value": KEY, "models": ["claude-4-sonnet"]});
    assert_eq!(gw.post("/api/providers/anthropic/keys", key).await.0, 200);
    Setup {
        gw,
        mock,
        home: tempfile::tempdir().unwrap(),
        _dir: dir,
    }
}

/// Runs a CLI with a clean environment (HOME in a temp dir, nothing of the caller's); whether it
/// succeeded, and its output. Output goes to files, so a chatty CLI never blocks on a full pipe.
async fn run(bin: &Path, args: &[&str], home: &Path, env: &[(&str, String)]) -> (bool, String) {
    let (out_path, err_path) = (home.join("cli.out"), home.join("cli.err"));
    let mut cmd = std::process::Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("{} did not finish within 2 minutes", bin.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = format!(
        "{}\n--- stderr ---\n{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    (status.success(), text)
}

fn chat_requests(mock: &MockUpstream) -> Vec<Value> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_on_an_openai_compatible_model() {
    let bin = match clis() {
        Ok(b) => b,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let s = setup().await;
    let env = claude_env(&s);
    for model in ["gpt-oss-120b", "mittwald-shared/gpt-oss-120b"] {
        let args = ["-p", "Say hello", "--model", model];
        let (ok, out) = run(&bin.join("claude"), &args, s.home.path(), &env).await;
        assert!(ok, "{model}: {out}");
        assert!(
            out.contains("Say hello"),
            "{model}: the mock's echo is the answer: {out}"
        );
    }
    let sent = chat_requests(&s.mock);
    assert!(
        !sent.is_empty(),
        "Claude Code's requests reached the chat upstream"
    );
    for body in &sent {
        let messages = body["messages"].as_array().unwrap();
        assert!(messages.iter().all(|m| m["role"] != "developer"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_on_a_chat_only_upstream() {
    let bin = match clis() {
        Ok(b) => b,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let s = setup().await;
    let (ok, out) = codex(&bin, &s, "mittwald-shared/gpt-oss-120b", "List the files").await;
    assert!(ok, "{out}");
    assert!(
        out.contains("List the files"),
        "the mock's echo is the answer: {out}"
    );
    let paths: Vec<String> = s.mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths.first().map(String::as_str),
        Some("/v1/responses"),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p == "/v1/chat/completions"), "{paths:?}");
}

/// The `tool` message that answers call `id` in a chat request, if any.
fn tool_result<'a>(body: &'a Value, id: &str) -> Option<&'a Value> {
    body["messages"]
        .as_array()?
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_tool_loop_with_read() {
    let bin = match clis() {
        Ok(b) => b,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let s = setup().await;
    let env = claude_env(&s);
    // The mock's `*read*` model asks for `Read` of /etc/hostname, then answers the result's echo.
    let args = [
        "-p",
        "Read /etc/hostname",
        "--model",
        "mittwald-shared/tool-read-qwen3",
        "--allowedTools",
        "Read",
    ];
    let (ok, out) = run(&bin.join("claude"), &args, s.home.path(), &env).await;
    assert!(ok, "{out}");
    let sent = chat_requests(&s.mock);
    let first = &sent[0];
    assert_eq!(first["stream"], true, "Claude Code streams");
    assert!(
        first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "Read"),
        "Claude Code's tools reach the upstream"
    );
    let with_result = sent
        .iter()
        .find_map(|b| tool_result(b, "call_1"))
        .unwrap_or_else(|| panic!("no upstream request carried the Read result: {sent:?}\n{out}"));
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let content = with_result["content"].as_str().unwrap();
    assert!(content.contains(hostname.trim()), "{content}");
    assert!(
        out.contains(hostname.trim()),
        "the final answer echoes the result: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_tool_loop_on_a_chat_only_upstream() {
    let bin = match clis() {
        Ok(b) => b,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let s = setup().await;
    let (ok, out) = codex(
        &bin,
        &s,
        "mittwald-shared/tool-exec-gpt-oss",
        "Say switchyard in a shell",
    )
    .await;
    assert!(ok, "{out}");
    let sent = chat_requests(&s.mock);
    let names: Vec<&str> = sent[0]["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["function"]["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"exec_command"), "{names:?}");
    let result = sent
        .iter()
        .find_map(|b| tool_result(b, "call_1"))
        .unwrap_or_else(|| panic!("no upstream request carried the exec_command output: {out}"));
    let content = result["content"].as_str().unwrap();
    assert!(content.contains("switchyard"), "the command ran: {content}");
    assert!(out.contains("echo: "), "the final answer: {out}");
}

fn claude_env(s: &Setup) -> [(&'static str, String); 4] {
    [
        ("ANTHROPIC_BASE_URL", s.gw.url("/anthropic")),
        ("ANTHROPIC_API_KEY", "dummy".to_owned()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
        ("DISABLE_AUTOUPDATER", "1".to_owned()),
    ]
}

/// `codex exec <prompt>` with `model` through the gateway.
async fn codex(bin: &Path, s: &Setup, model: &str, prompt: &str) -> (bool, String) {
    let codex_home = s.home.path().join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    let config = format!(
        "model = \"{model}\"\nmodel_provider = \"switchyard\"\n\
         [model_providers.switchyard]\nname = \"Switchyard\"\nbase_url = \"{}\"\n\
         env_key = \"SWITCHYARD_API_KEY\"\nwire_api = \"responses\"\n",
        s.gw.url("/v1")
    );
    std::fs::write(codex_home.join("config.toml"), config).unwrap();
    let env = [
        ("CODEX_HOME", codex_home.display().to_string()),
        ("SWITCHYARD_API_KEY", "dummy".to_owned()),
    ];
    let args = ["exec", "--skip-git-repo-check", prompt];
    run(&bin.join("codex"), &args, s.home.path(), &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_on_a_reasoning_model_and_on_an_anthropic_model() {
    let bin = match clis() {
        Ok(b) => b,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let s = setup().await;
    let claude = bin.join("claude");
    let args = ["-p", "Say hello", "--model", "mittwald-shared/reason-qwen3"];
    let (ok, out) = run(&claude, &args, s.home.path(), &claude_env(&s)).await;
    assert!(ok, "{out}");
    let answer = out.split("--- stderr ---").next().unwrap();
    assert!(
        answer.trim_start().starts_with("echo:"),
        "reasoning is not answer text: {out}"
    );

    // A Claude model on the Anthropic provider: passed through, body and all.
    let args = ["-p", "Say hello", "--model", "claude-4-sonnet"];
    let (ok, out) = run(&claude, &args, s.home.path(), &claude_env(&s)).await;
    assert!(ok, "{out}");
    assert!(out.contains("Say hello"), "{out}");
    let messages: Vec<_> = s
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/messages")
        .collect();
    assert!(!messages.is_empty(), "Claude Code reached the Anthropic API");
    let body: Value = serde_json::from_slice(&messages[0].body).unwrap();
    assert_eq!(body["model"], "claude-4-sonnet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_on_a_responses_native_upstream_and_on_an_anthropic_model() {
    let bin = match clis() {
        Ok(b) => b,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let s = setup().await;
    s.mock.set_chat_only(false);
    let (ok, out) = codex(&bin, &s, "mittwald-shared/gpt-oss-120b", "List the files").await;
    assert!(ok, "{out}");
    let paths: Vec<String> = s.mock.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().all(|p| p == "/v1/responses"),
        "served natively: {paths:?}"
    );

    let (ok, out) = codex(&bin, &s, "anthropic/claude-4-sonnet", "List the files").await;
    assert!(ok, "{out}");
    assert!(out.contains("echo: "), "{out}");
    let last = s.mock.requests().into_iter().last().unwrap();
    assert_eq!(last.path, "/v1/messages", "translated to the Anthropic API");
}
