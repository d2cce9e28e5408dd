use super::*;
use serde_json::json;

fn input(v: serde_json::Value) -> McpClientInput {
    serde_json::from_value(v).unwrap()
}

fn http_client(name: &str) -> McpClientConfig {
    input(json!({"name": name, "connection_type": "http", "connection_string": "http://127.0.0.1:1/mcp"}))
        .into_new("id1".into())
        .unwrap()
}

#[test]
fn names_follow_bifrosts_rules() {
    for ok in ["files", "Files_2", "_x"] {
        assert!(validate_client_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "2fs", "my-fs", "my fs", "fé", &"a".repeat(65)] {
        assert_eq!(validate_client_name(bad).unwrap_err().field, "name", "{bad}");
    }
}

#[test]
fn every_rejection_names_its_field() {
    let cases = [
        (json!({"name": "a"}), "connection_type"),
        (
            json!({"connection_type": "http", "connection_string": "http://h/mcp"}),
            "name",
        ),
        (
            json!({"name": "a", "connection_type": "http"}),
            "connection_string",
        ),
        (
            json!({"name": "a", "connection_type": "sse", "connection_string": "ftp://h"}),
            "connection_string",
        ),
        (json!({"name": "a", "connection_type": "stdio"}), "stdio_config"),
        (
            json!({"name": "a", "connection_type": "stdio", "stdio_config": {"command": " "}}),
            "stdio_config.command",
        ),
        (
            json!({"name": "a", "connection_type": "stdio", "stdio_config": {"command": "x", "envs": ["A=B"]}}),
            "stdio_config.envs[0]",
        ),
        (
            json!({"name": "a-b", "connection_type": "stdio", "stdio_config": {"command": "x"}}),
            "name",
        ),
        (
            json!({"name": "a", "connection_type": "http", "connection_string": "http://h", "tools_to_execute": [""]}),
            "tools_to_execute[0]",
        ),
        (
            json!({"name": "a", "connection_type": "http", "connection_string": "http://h", "headers": {"a b": "x"}}),
            "headers.a b",
        ),
        (
            json!({"name": "a", "connection_type": "http", "connection_string": "http://h", "tool_sync_interval": "5 parsecs"}),
            "tool_sync_interval",
        ),
    ];
    for (body, field) in cases {
        let e = input(body.clone()).into_new("id".into()).unwrap_err();
        assert_eq!(e.field, field, "{body}: {}", e.message);
    }
}

#[test]
fn redacted_headers_round_trip_on_update() {
    let mut c = http_client("a");
    c.headers.insert("Authorization".into(), "Bearer s3cret".into());
    let shown = c.redacted();
    assert_eq!(shown.headers["Authorization"], REDACTED);
    let back = input(json!({"headers": shown.headers})).apply_update(&c).unwrap();
    assert_eq!(back.headers["Authorization"], "Bearer s3cret");
    let e = input(json!({"headers": {"X-New": REDACTED}}))
        .apply_update(&c)
        .unwrap_err();
    assert_eq!(e.field, "headers.X-New");
    let e = input(json!({"client_id": "other"})).apply_update(&c).unwrap_err();
    assert_eq!(e.field, "client_id");
}

#[test]
fn allow_lists_of_client_and_key() {
    let mut c = http_client("fs");
    let keyed = [McpKeyConfig {
        mcp_client_name: "fs".into(),
        tools_to_execute: vec!["read".into()],
    }];
    assert_eq!(may_call(&c, McpCaller::Anonymous, "write"), Ok(()));
    assert_eq!(may_call(&c, McpCaller::Key(&keyed), "read"), Ok(()));
    assert_eq!(
        may_call(&c, McpCaller::Key(&keyed), "write"),
        Err(Refusal::NotForKey)
    );
    assert_eq!(may_call(&c, McpCaller::Key(&[]), "read"), Err(Refusal::NotForKey));
    c.allow_on_all_virtual_keys = true;
    assert_eq!(may_call(&c, McpCaller::Key(&[]), "read"), Ok(()));
    // A key entry still narrows a client open to all keys.
    assert_eq!(
        may_call(&c, McpCaller::Key(&keyed), "write"),
        Err(Refusal::NotForKey)
    );
    c.tools_to_execute = vec![];
    assert_eq!(
        may_call(&c, McpCaller::Anonymous, "read"),
        Err(Refusal::NotExecuted)
    );
    c.tools_to_execute = vec!["*".into()];
    c.disabled = true;
    assert_eq!(may_call(&c, McpCaller::Anonymous, "read"), Err(Refusal::Disabled));
}

#[test]
fn key_configs_are_checked() {
    let dup = [
        McpKeyConfig {
            mcp_client_name: "a".into(),
            tools_to_execute: vec![],
        },
        McpKeyConfig {
            mcp_client_name: "a".into(),
            tools_to_execute: vec![],
        },
    ];
    assert_eq!(
        validate_key_configs(&dup).unwrap_err().field,
        "mcp_configs[1].mcp_client_name"
    );
    let bad = [McpKeyConfig {
        mcp_client_name: "a-b".into(),
        tools_to_execute: vec![],
    }];
    assert_eq!(
        validate_key_configs(&bad).unwrap_err().field,
        "mcp_configs[0].mcp_client_name"
    );
}

#[test]
fn tool_names_and_durations() {
    assert_eq!(split_tool_name("fs-read-file"), Some(("fs", "read-file")));
    assert_eq!(split_tool_name("fs"), None);
    assert_eq!(split_tool_name("-x"), None);
    assert_eq!(gateway_tool_name("fs", "read"), "fs-read");
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
    for bad in ["", "0s", "-1s", "1d", "abc", "1e400"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn file_section() {
    let f = parse_file_section(&json!({
        "client_configs": [{"name": "a", "connection_type": "http", "connection_string": "http://h/mcp", "is_code_mode_client": false}],
        "tool_manager_config": {"tool_execution_timeout": "2s", "max_agent_depth": 10},
        "tool_sync_interval": "10m"
    }))
    .unwrap();
    assert_eq!(f.clients.len(), 1);
    assert_eq!(f.tool_execution_timeout, Some(Duration::from_secs(2)));
    assert_eq!(f.tool_sync_interval, Some(Duration::from_secs(600)));
    let e =
        parse_file_section(&json!({"tool_manager_config": {"tool_execution_timeout": true}})).unwrap_err();
    assert_eq!(e.field, "mcp.tool_manager_config.tool_execution_timeout");
    let e = parse_file_section(&json!({"client_configs": [{"connection_type": "ws"}]})).unwrap_err();
    assert_eq!(e.field, "mcp.client_configs[0]");
}
