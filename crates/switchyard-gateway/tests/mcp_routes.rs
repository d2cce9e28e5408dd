//! The MCP gateway on the real server: the management API's validation and error shapes
//! (`/api/mcp/*`, Bifrost's dialect), persistence across a restart, and the MCP routes (`/mcp`,
//! `/v1/mcp/tool/execute`), which are not in the inference route table (they reach no model
//! provider): no key → 401, a refused tool → 403 `mcp_tool_blocked` that reaches no upstream and still
//! leaves a record and a metric sample. Calls to real MCP servers (SDK-built, over HTTP, SSE and
//! stdio) are `tests/sdk/test_mcp.py`.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error_shape, create_vk, TestGateway};
use serde_json::{json, Value};

/// An MCP server address where nothing listens.
const DEAD_URL: &str = "http://127.0.0.1:9/mcp";

fn http_client(name: &str) -> Value {
    json!({"name": name, "connection_type": "http", "connection_string": DEAD_URL,
           "headers": {"Authorization": "Bearer upstream-secret-token"}})
}

async fn listed(gw: &TestGateway) -> Value {
    let (s, page) = gw.get("/api/mcp/clients").await;
    assert_eq!(s, 200, "{page}");
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let cases = [
        (
            json!({"name": "my-fs", "connection_type": "stdio", "stdio_config": {"command": "x"}}),
            "name",
        ),
        (
            json!({"name": "my fs", "connection_type": "http", "connection_string": DEAD_URL}),
            "name",
        ),
        (
            json!({"name": "1fs", "connection_type": "http", "connection_string": DEAD_URL}),
            "name",
        ),
        (
            json!({"connection_type": "http", "connection_string": DEAD_URL}),
            "name",
        ),
        (json!({"name": "fs"}), "connection_type"),
        (
            json!({"name": "fs", "connection_type": "websocket"}),
            "connection_type",
        ),
        (
            json!({"name": "fs", "connection_type": "http"}),
            "connection_string",
        ),
        (
            json!({"name": "fs", "connection_type": "sse", "connection_string": "file:///etc"}),
            "connection_string",
        ),
        (json!({"name": "fs", "connection_type": "stdio"}), "stdio_config"),
        (
            json!({"name": "fs", "connection_type": "stdio", "stdio_config": {"command": ""}}),
            "stdio_config.command",
        ),
        (
            json!({"name": "fs", "connection_type": "http", "connection_string": DEAD_URL, "tools_to_execute": "*"}),
            "tools_to_execute",
        ),
        (
            json!({"name": "fs", "connection_type": "http", "connection_string": DEAD_URL, "tool_sync_interval": "soon"}),
            "tool_sync_interval",
        ),
    ];
    for (body, param) in cases {
        let (s, answer) = gw.post("/api/mcp/client", body.clone()).await;
        assert_eq!(s, 400, "{body}: {answer}");
        let err = assert_error_shape(&answer, 400);
        assert_eq!(err["param"], param, "{body}: {answer}");
    }
    let r = gw
        .http
        .post(gw.url("/api/mcp/client"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_error_shape(&r.json::<Value>().await.unwrap(), 400);
    assert_eq!(listed(&gw).await["count"], 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_registered_listed_changed_and_removed_in_bifrosts_shape() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let (s, answer) = gw.post("/api/mcp/client", http_client("files")).await;
    assert_eq!(s, 200, "{answer}");
    let id = answer["client"]["config"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, answer) = gw.post("/api/mcp/client", http_client("files")).await;
    assert_eq!(s, 409, "{answer}");
    assert_error_shape(&answer, 409);

    // The list: Bifrost's shape, header values redacted, and the dead server's state is an error.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = listed(&gw).await;
        if page["clients"][0]["state"] == "error" || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (page["count"].clone(), page["total_count"].clone()),
        (json!(1), json!(1))
    );
    let c = &page["clients"][0];
    assert_eq!(c["state"], "error", "{page}");
    assert_eq!(c["tools"], json!([]));
    assert_eq!(c["config"]["name"], "files");
    assert_eq!(c["config"]["tools_to_execute"], json!(["*"]));
    assert_eq!(c["config"]["headers"]["Authorization"], "<redacted>");
    assert!(!page.to_string().contains("upstream-secret-token"));

    for (path, method) in [
        ("/api/mcp/client/nope", "PUT"),
        ("/api/mcp/client/nope", "DELETE"),
        ("/api/mcp/client/nope/reconnect", "POST"),
    ] {
        let r = gw
            .http
            .request(method.parse().unwrap(), gw.url(path))
            .json(&json!({"disabled": true}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_error_shape(&body, 404);
    }
    let (s, _) = gw.post("/api/mcp/client", http_client("other")).await;
    assert_eq!(s, 200);
    let (s, answer) = gw
        .put(&format!("/api/mcp/client/{id}"), json!({"name": "other"}))
        .await;
    assert_eq!(s, 409, "{answer}");
    let (s, answer) = gw
        .put(&format!("/api/mcp/client/{id}"), json!({"name": "bad-name"}))
        .await;
    assert_eq!(
        (s, answer["error"]["param"].clone()),
        (400, json!("name")),
        "{answer}"
    );
    // A redacted header sent back keeps its value; `disabled` stops the connection attempts.
    let headers = json!({"Authorization": "<redacted>"});
    let (s, answer) = gw
        .put(
            &format!("/api/mcp/client/{id}"),
            json!({"headers": headers, "disabled": true, "tools_to_execute": ["read"]}),
        )
        .await;
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["client"]["state"], "disconnected", "{answer}");
    let (s, _) = gw
        .post(&format!("/api/mcp/client/{id}/reconnect"), json!({}))
        .await;
    assert_eq!(s, 200);

    // Persisted: a restart on the same app dir serves the same clients.
    gw.stop().await;
    let gw = TestGateway::start(dir.path()).await;
    let page = listed(&gw).await;
    assert_eq!(page["count"], 2, "{page}");
    let files = page["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["config"]["client_id"] == id.as_str())
        .unwrap();
    assert_eq!(files["config"]["tools_to_execute"], json!(["read"]));
    assert_eq!(files["config"]["disabled"], true);
    let (s, _) = gw.delete(&format!("/api/mcp/client/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(listed(&gw).await["count"], 1);
    gw.stop().await;
}

async fn post_with(gw: &TestGateway, path: &str, body: &Value, vk: Option<&str>) -> (u16, Value) {
    let mut req = gw.http.post(gw.url(path)).json(body);
    if let Some(vk) = vk {
        req = req.header("x-bf-vk", vk);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_routes_identify_the_caller_and_record_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    let (s, _) = gw.post("/api/mcp/client", http_client("files")).await;
    assert_eq!(s, 200);
    let (s, answer) = gw
        .put(
            "/api/config",
            json!({"client_config": {"enforce_auth_on_inference": true}}),
        )
        .await;
    assert_eq!(s, 200, "{answer}");
    let (key_id, key) = create_vk(&gw, json!({"name": "no-tools"})).await;
    let (_, answer) = gw
        .post(
            "/api/governance/virtual-keys",
            json!({"name": "bad", "mcp_configs": [{"mcp_client_name": "a-b"}]}),
        )
        .await;
    assert_eq!(
        answer["error"]["param"], "mcp_configs[0].mcp_client_name",
        "{answer}"
    );

    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let call =
        json!({"id": "call_1", "type": "function", "function": {"name": "files-read", "arguments": "{}"}});
    let (s, answer) = post_with(&gw, "/mcp", &list, None).await;
    assert_eq!(s, 401, "{answer}");
    assert_error_shape(&answer, 401);
    let (s, answer) = post_with(&gw, "/v1/mcp/tool/execute", &call, None).await;
    assert_eq!(s, 401, "{answer}");

    let (s, answer) = post_with(&gw, "/mcp", &list, Some(&key)).await;
    assert_eq!(
        (s, answer["result"]["tools"].clone()),
        (200, json!([])),
        "{answer}"
    );
    let (s, answer) = post_with(
        &gw,
        "/mcp",
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(&key),
    )
    .await;
    assert_eq!(s, 202, "{answer}");
    let (s, answer) = post_with(
        &gw,
        "/mcp",
        &json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
        Some(&key),
    )
    .await;
    assert_eq!(
        (s, answer["error"]["code"].clone()),
        (200, json!(-32601)),
        "{answer}"
    );

    // The key lists no MCP client: refused before any upstream, recorded, counted.
    let (s, answer) = post_with(&gw, "/v1/mcp/tool/execute", &call, Some(&key)).await;
    assert_eq!(s, 403, "{answer}");
    assert_eq!(assert_error_shape(&answer, 403)["code"], "mcp_tool_blocked");
    let rpc_call =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "files-read"}});
    let (s, answer) = post_with(&gw, "/mcp", &rpc_call, Some(&key)).await;
    assert_eq!(
        (s, answer["error"]["code"].clone()),
        (200, json!(-32602)),
        "{answer}"
    );
    let unknown = json!({"function": {"name": "nosuch-read"}});
    let (s, answer) = post_with(&gw, "/v1/mcp/tool/execute", &unknown, Some(&key)).await;
    assert_eq!(
        (s, answer["error"]["code"].clone()),
        (404, json!("mcp_tool_not_found")),
        "{answer}"
    );

    assert_refusals_recorded(&gw, &key_id).await;
    gw.stop().await;
}

/// Two refusals of `files-read` for `key_id`: rows in `/api/mcp-logs`, a counter of 2 on `/metrics`.
async fn assert_refusals_recorded(gw: &TestGateway, key_id: &str) {
    // Rows are written to the log database off the calls' path.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let (s, page) = gw.get(&format!("/api/mcp-logs?virtual_key_id={key_id}")).await;
        assert_eq!(s, 200, "{page}");
        if page["total_count"] == 2 || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(page["total_count"], 2, "{page}");
    let (s, bad) = gw.get("/api/mcp-logs?limit=abc").await;
    assert_eq!(s, 400, "{bad}");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("limit"),
        "{bad}"
    );
    let row = &page["logs"][0];
    assert_eq!(
        (row["tool"].clone(), row["server"].clone(), row["status"].clone()),
        (json!("read"), json!("files"), json!("blocked"))
    );
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"switchyard_mcp_tool_calls_total{tool="read",server="files",status="blocked"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.trim_end().ends_with("# EOF") && !metrics.contains("\n\n"),
        "{metrics}"
    );
}
