//! `switchyard config validate FILE`, run as the real binary: exit codes and messages that point at
//! the exact place of the mistake.

use std::process::Command;

use serde_json::json;

fn validate(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["config", "validate"])
        .arg(&path)
        .env_remove("SWITCHYARD_TEST_UNSET")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Report paths relative to the temp dir, so assertions can name the file.
    let shown = path.display().to_string();
    (
        out.status.code().unwrap(),
        stdout.replace(&shown, "config.json"),
        stderr.replace(&shown, "config.json"),
    )
}

#[test]
fn a_valid_file_exits_zero_and_says_what_it_holds() {
    let file = json!({
        "version": 2,
        "client": {"drop_excess_requests": false},
        "providers": {
            "openai": {"keys": [{"name": "a", "value": "env.SWITCHYARD_TEST_UNSET", "models": ["*"]}]},
            "mittwald-shared": {
                "keys": [{"name": "s", "value": "sk-shared-000000001"}, {"name": "t", "value": "sk-shared-000000002"}],
                "network_config": {"base_url": "https://llm.aihosting.mittwald.de/v1"},
                "custom_provider_config": {"base_provider_type": "openai"}
            }
        },
        "mcp": {"client_configs": []}
    });
    let (code, stdout, stderr) = validate(&file.to_string());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "config.json: ok: 2 provider(s), 3 key(s); seed what the store lacks (source_of_truth: split); client block"
    );
    // `mcp` is applied (the MCP gateway reads its client configs), so no warning names it.
    assert!(!stderr.contains("mcp:"), "{stderr}");
    assert!(
        stderr.contains(
            "warning: providers.openai.keys[0].value: environment variable SWITCHYARD_TEST_UNSET is not set"
        ),
        "{stderr}"
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    let (code, stdout, stderr) = validate("{\n  \"providers\": {\n    \"openai\": {\"keys\": [}\n  }\n}\n");
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.trim(), "config.json:3:25: syntax error: expected value");
}

#[test]
fn field_errors_name_the_json_path() {
    let cases = [
        (
            json!({"providers": {"openai": {"keys": [{"name": "a", "value": "sk-1"}, {"name": "b", "value": "sk-2", "weight": "x"}]}}}),
            "config.json: error at providers.openai.keys[1].weight: invalid type: string \"x\", expected f64",
        ),
        (
            json!({"providers": {"local": {"network_config": {"base_url": "http://127.0.0.1:8000/v1"}}}}),
            "config.json: error at providers.local.custom_provider_config: 'local' is not a built-in provider; a custom provider needs custom_provider_config.base_provider_type (e.g. \"openai\" for an OpenAI-compatible endpoint)",
        ),
        (
            json!({"providers": {"openai": {"network_config": {"max_retries": 21}}}}),
            "config.json: error at providers.openai.network_config.max_retries: must be between 0 and 20",
        ),
        (
            json!({"governance": {"budgets": [{"max_limit": 5, "reset_duration": "1M", "virtual_key_id": "vk-9"}]}}),
            "config.json: error at governance.budgets[0].virtual_key_id: no entry with id 'vk-9' in governance.virtual_keys",
        ),
        (
            json!({"client": {"log_retention_days": -3}}),
            "config.json: error at client.log_retention_days: must be a whole number of at least 0",
        ),
    ];
    for (file, expected) in cases {
        let (code, _, stderr) = validate(&file.to_string());
        assert_eq!(code, 1, "{file}");
        assert_eq!(stderr.trim(), expected, "{file}");
    }
}

#[test]
fn an_unreadable_file_is_an_error_too() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["config", "validate", "/nonexistent/config.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.json: cannot read"));
}

#[test]
fn an_unknown_config_store_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--port", "0", "--config-store", "mysql://root:hunter2@db/x"])
        .arg("--app-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid --config-store: expected \"sqlite\" or a postgres:// URL"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the URL's password is not echoed: {stderr}"
    );
}

/// The same deep checks as start-up: each entry goes through the management API's validation.
#[test]
fn governance_entries_are_checked_like_at_start_up() {
    let vk = |extra: serde_json::Value| {
        let mut e = json!({"id": "vk-1", "name": "app", "value": "sk-bf-0123456789abcdef"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"governance": {"virtual_keys": [e]}})
    };
    let cases = [
        (
            vk(json!({"budgets": [{"max_limit": 5, "reset_duration": "monthly"}]})),
            "config.json: error at governance.virtual_keys[0].budgets[0].reset_duration:",
        ),
        (
            vk(json!({"rate_limit": {"request_max_limit": 10}})),
            "config.json: error at governance.virtual_keys[0].rate_limit.request_reset_duration: request_max_limit needs a request_reset_duration",
        ),
        (
            vk(json!({"max_concurrent_requests": 0})),
            "config.json: error at governance.virtual_keys[0].max_concurrent_requests: must be 1 or more",
        ),
        (
            json!({"governance": {"virtual_keys": [{"id": "vk-1", "name": "app"}]}}),
            "config.json: error at governance.virtual_keys[0].value: is required",
        ),
        (
            json!({"governance": {"virtual_keys": [{"id": "vk-1", "name": "app", "value": "env.SWITCHYARD_TEST_UNSET"}]}}),
            "config.json: error at governance.virtual_keys[0].value: environment variable SWITCHYARD_TEST_UNSET is not set",
        ),
    ];
    for (file, expected) in cases {
        let (code, _, stderr) = validate(&file.to_string());
        assert_eq!(code, 1, "{file}");
        assert!(stderr.trim().starts_with(expected), "{file}: {stderr}");
    }

    let (code, stdout, stderr) = validate(
        &json!({"governance": {
            "customers": [{"id": "c", "name": "Acme"}],
            "teams": [{"id": "t", "name": "Web", "customer_id": "c"}],
            "virtual_keys": [{"id": "vk-1", "name": "app", "value": "sk-bf-0123456789abcdef", "team_id": "t"}]
        }})
        .to_string(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("governance: 1 virtual key(s), 1 team(s), 1 customer(s)"),
        "{stdout}"
    );
}
