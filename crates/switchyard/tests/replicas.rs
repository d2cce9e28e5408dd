//! Several replicas on one PostgreSQL config store: two real `switchyard` processes, one schema.
//!
//! A change made through either replica must be applied by the other within a second. The safety-net
//! resync is set to an hour here, so only the change notices (LISTEN/NOTIFY) can make that happen.
//!
//! PostgreSQL is reached at `SWITCHYARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test uses its own schema, dropped at the end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;
use switchyard_testkit::{pg_connect, pg_url, SchemaGuard};

/// One `switchyard` process, killed when dropped.
struct Replica {
    child: Child,
    base: String,
    http: reqwest::Client,
    _app_dir: tempfile::TempDir,
}

impl Replica {
    fn start(schema: &str, extra: &[&str]) -> Replica {
        let app_dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--log-format",
                "json",
                "--log-level",
                "info",
            ])
            .arg("--app-dir")
            .arg(app_dir.path())
            .args(["--no-request-logs", "--config-resync-seconds", "3600"])
            .args(["--config-store", &pg_url(), "--config-store-schema", schema])
            .args(extra)
            .env_remove("SWITCHYARD_CONFIG_FILE")
            // Every replica encrypts keys at rest, as production would: the change feed then has to
            // pass through the sealing decorator, which must forward it.
            .env(
                "SWITCHYARD_ENCRYPTION_KEY",
                "replica-test-encryption-key-0123456789",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("switchyard starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the log until the process ends (a full pipe would block it), reporting the address.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if let Some(addr) = parsed["addr"].as_str() {
                    let _ = tx.send(addr.to_owned());
                }
                if parsed["level"] == "WARN" || parsed["level"] == "ERROR" || parsed.is_null() {
                    eprintln!("replica: {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the replica reports its address");
        Replica {
            child,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _app_dir: app_dir,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let key = resp
            .headers()
            .get("x-switchyard-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, resp.json().await.unwrap_or(Value::Null), key)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }

    /// A chat call; returns the status and the name of the key that served it.
    async fn chat(&self, model: &str) -> (u16, Option<String>) {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let (s, _, key) = self
            .send(reqwest::Method::POST, "/v1/chat/completions", Some(body))
            .await;
        (s, key)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds, and returns how long that took (`None`: not within `limit`).
async fn time_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn write_config(dir: &Path, upstream: &str) -> std::path::PathBuf {
    let path = dir.join("config.json");
    let file = json!({
        "providers": {
            "seeded": {
                "keys": [{"name": "seeded-key", "value": "sk-seeded-000000001", "models": ["*"], "weight": 1.0}],
                "network_config": {"base_url": upstream},
                "custom_provider_config": {"base_provider_type": "openai"}
            }
        }
    });
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_added_through_one_replica_serves_through_the_other_within_a_second() {
    let schema = SchemaGuard::new("syrep", "add");
    let mock = switchyard_mock::start(switchyard_mock::MockOptions::default())
        .await
        .unwrap();
    // Both replicas start from the same config.json at once: seeding the same provider twice must not
    // stop either of them.
    let files = tempfile::tempdir().unwrap();
    let config = write_config(files.path(), &mock.base_url());
    let config = config.to_str().unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Replica::start(schema.name(), &["--config-file", config]));
        let b = s.spawn(|| Replica::start(schema.name(), &["--config-file", config]));
        (a.join().unwrap(), b.join().unwrap())
    });
    for r in [&a, &b] {
        assert_eq!(
            r.chat("seeded/echo").await.0,
            200,
            "the seeded provider serves on every replica"
        );
    }
    let (_, providers, _) = a.send(reqwest::Method::GET, "/api/providers", None).await;
    assert_eq!(
        providers["providers"].as_array().map(Vec::len),
        Some(1),
        "{providers}"
    );

    // Before `fresh` exists, `fresh/echo` is a bare model name, which the seeded `*` key serves.
    assert_eq!(b.chat("fresh/echo").await, (200, Some("seeded-key".into())));
    let (s, body) = a
        .post(
            "/api/providers",
            json!({"provider": "fresh", "network_config": {"base_url": mock.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"},
                   "keys": [{"name": "fresh-key", "value": "sk-fresh-000000001", "models": ["*"], "weight": 1.0}]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let took = time_until(Duration::from_secs(1), || async {
        b.chat("fresh/echo").await == (200, Some("fresh-key".into()))
    })
    .await;
    assert!(
        took.is_some(),
        "replica B serves the provider added through A within a second"
    );

    // And the other way round: a provider deleted through B is gone from A.
    let (s, _, _) = b
        .send(reqwest::Method::DELETE, "/api/providers/fresh", None)
        .await;
    assert_eq!(s, 200);
    let took = time_until(Duration::from_secs(1), || async {
        a.chat("fresh/echo").await == (200, Some("seeded-key".into()))
    })
    .await;
    assert!(
        took.is_some(),
        "replica A drops the provider deleted through B within a second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_deleted_through_one_replica_stops_being_used_by_the_other() {
    let schema = SchemaGuard::new("syrep", "delkey");
    let mock = switchyard_mock::start(switchyard_mock::MockOptions::default())
        .await
        .unwrap();
    let a = Replica::start(schema.name(), &[]);
    let b = Replica::start(schema.name(), &[]);
    // `old` has all the weight; `new` (weight 0) is only drawn once `old` is gone.
    let (s, body) = a
        .post(
            "/api/providers",
            json!({"provider": "lane", "network_config": {"base_url": mock.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"},
                   "keys": [{"id": "old-key", "name": "old", "value": "sk-old-0000000001", "models": ["*"], "weight": 1.0},
                            {"id": "new-key", "name": "new", "value": "sk-new-0000000002", "models": ["*"], "weight": 0.0}]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let ready = time_until(Duration::from_secs(1), || async {
        b.chat("lane/echo").await.0 == 200
    })
    .await;
    assert!(ready.is_some(), "B has the provider");
    for _ in 0..5 {
        assert_eq!(b.chat("lane/echo").await, (200, Some("old".into())));
    }

    let (s, _, _) = a
        .send(reqwest::Method::DELETE, "/api/providers/lane/keys/old-key", None)
        .await;
    assert_eq!(s, 200);
    let took = time_until(Duration::from_secs(1), || async {
        b.chat("lane/echo").await == (200, Some("new".into()))
    })
    .await;
    assert!(took.is_some(), "B stops using the deleted key within a second");
    for _ in 0..10 {
        assert_eq!(
            b.chat("lane/echo").await,
            (200, Some("new".into())),
            "never the deleted key again"
        );
    }
    let (_, keys, _) = b
        .send(reqwest::Method::GET, "/api/providers/lane/keys", None)
        .await;
    assert!(!keys.to_string().contains("old-key"), "{keys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_its_listener_catches_up() {
    let schema = SchemaGuard::new("syrep", "relisten");
    let mock = switchyard_mock::start(switchyard_mock::MockOptions::default())
        .await
        .unwrap();
    let a = Replica::start(schema.name(), &[]);
    let b = Replica::start(schema.name(), &[]);
    // Cut B's listening session, as a database failover would.
    let mut admin = pg_connect().await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
    )
    .bind(format!("switchyard-config-listener:{}", schema.name()))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, 2, "both replicas were listening");
    admin.close().await.unwrap();
    let (s, body) = a
        .post(
            "/api/providers",
            json!({"provider": "late", "network_config": {"base_url": mock.base_url()},
                   "custom_provider_config": {"base_provider_type": "openai"},
                   "keys": [{"name": "late-key", "value": "sk-late-000000001", "models": ["*"], "weight": 1.0}]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // Whether the notice was sent before or after B re-listened, B reconnects, resyncs and serves it
    // (the hourly safety net cannot be what does it here).
    let took = time_until(Duration::from_secs(10), || async {
        b.chat("late/echo").await.0 == 200
    })
    .await;
    assert!(took.is_some(), "B catches up after losing its listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_applying_the_same_governance_file_at_once_all_start_and_agree() {
    let schema = SchemaGuard::new("syrep", "govfile");
    let mock = switchyard_mock::start(switchyard_mock::MockOptions::default())
        .await
        .unwrap();
    const VK: &str = "sk-bf-replicated-file-key-000000001";
    let files = tempfile::tempdir().unwrap();
    let path = write_config(files.path(), &mock.base_url());
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file["source_of_truth"] = json!("config.json");
    file["client"] = json!({"enforce_auth_on_inference": true});
    file["governance"] = json!({
        "customers": [{"id": "acme", "name": "Acme"}],
        "teams": [{"id": "web", "name": "Web", "customer_id": "acme"}],
        "virtual_keys": [{"id": "vk-web", "name": "web", "value": VK, "team_id": "web"}]
    });
    std::fs::write(&path, file.to_string()).unwrap();
    let config = path.to_str().unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Replica::start(schema.name(), &["--config-file", config]));
        let b = s.spawn(|| Replica::start(schema.name(), &["--config-file", config]));
        (a.join().unwrap(), b.join().unwrap())
    });
    let body = json!({"model": "seeded/echo", "messages": [{"role": "user", "content": "hi"}]});
    for r in [&a, &b] {
        let with_key = r
            .http
            .post(format!("{}/v1/chat/completions", r.base))
            .bearer_auth(VK)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(with_key.status().as_u16(), 200, "the file's key is admitted");
        assert_eq!(r.chat("seeded/echo").await.0, 401, "auth is enforced");
    }
    let (_, keys, _) = a
        .send(reqwest::Method::GET, "/api/governance/virtual-keys", None)
        .await;
    assert_eq!(keys["total_count"], 1, "{keys}");
}

/// The response cache's plugin (kept in the shared governance settings) set or removed through one
/// replica applies in the other, by change notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_plugin_set_through_one_replica_applies_in_the_other() {
    let schema = SchemaGuard::new("syrep", "cacheplugin");
    let a = Replica::start(schema.name(), &[]);
    let b = Replica::start(schema.name(), &[]);
    let stats = |r: &Replica| {
        let http = r.http.clone();
        let url = format!("{}/api/cache/stats", r.base);
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(stats(&b).await["configured"], false);
    let (s, body) = a
        .post(
            "/api/plugins",
            json!({"name": "semantic_cache", "enabled": true, "config": {"dimension": 1, "ttl": "42s"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let took = time_until(Duration::from_secs(1), || async {
        let s = stats(&b).await;
        s["enabled"] == true && s["ttl_seconds"] == 42.0
    })
    .await;
    assert!(
        took.is_some(),
        "B applies the plugin within a second: {}",
        stats(&b).await
    );
    let (s, _, _) = a
        .send(reqwest::Method::DELETE, "/api/plugins/semantic_cache", None)
        .await;
    assert_eq!(s, 200);
    let took = time_until(Duration::from_secs(1), || async {
        stats(&b).await["configured"] == false
    })
    .await;
    assert!(took.is_some(), "B drops the plugin within a second");
}

/// An MCP client registered through one replica is listed, with its config, and callable through the
/// other within a second (the clients are a shared governance setting, header values sealed); one
/// removed through the first is gone from the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_registered_through_one_replica_is_listed_and_callable_through_the_other() {
    let schema = SchemaGuard::new("syrep", "mcpclients");
    let a = Replica::start(schema.name(), &[]);
    let b = Replica::start(schema.name(), &[]);
    let clients = |r: &Replica| {
        let http = r.http.clone();
        let url = format!("{}/api/mcp/clients", r.base);
        async move {
            let page = http.get(url).send().await.unwrap().json::<Value>().await.unwrap();
            page["clients"].as_array().cloned().unwrap_or_default()
        }
    };
    assert!(clients(&b).await.is_empty());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../switchyard-gateway/tests/fixtures/mcp_stdio.py"
    );
    let tiny = json!({"name": "tiny", "connection_type": "stdio",
                      "stdio_config": {"command": "python3", "args": [script]}});
    let remote = json!({"name": "remote", "connection_type": "http",
                        "connection_string": "http://127.0.0.1:9/mcp",
                        "headers": {"Authorization": "Bearer replica-upstream-token"}});
    for body in [tiny, remote] {
        let (s, answer) = a.post("/api/mcp/client", body).await;
        assert_eq!(s, 200, "{answer}");
    }
    let took = time_until(Duration::from_secs(1), || async { clients(&b).await.len() == 2 }).await;
    assert!(
        took.is_some(),
        "B lists both clients within a second: {:?}",
        clients(&b).await
    );
    let listed = clients(&b).await;
    let remote = listed.iter().find(|c| c["config"]["name"] == "remote").unwrap();
    assert_eq!(remote["config"]["connection_string"], "http://127.0.0.1:9/mcp");
    assert_eq!(remote["config"]["headers"]["Authorization"], "<redacted>");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "tiny-echo", "arguments": {"text": "via b"}}});
    let answered = time_until(Duration::from_secs(20), || async {
        let (s, answer) = b.post("/mcp", call.clone()).await;
        s == 200 && answer["result"]["content"][0]["text"] == "echo: via b"
    })
    .await;
    assert!(
        answered.is_some(),
        "B calls tiny's tool: {:?}",
        b.post("/mcp", call.clone()).await
    );
    let id = listed.iter().find(|c| c["config"]["name"] == "tiny").unwrap()["config"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, _) = a
        .send(reqwest::Method::DELETE, &format!("/api/mcp/client/{id}"), None)
        .await;
    assert_eq!(s, 200);
    let took = time_until(Duration::from_secs(1), || async { clients(&b).await.len() == 1 }).await;
    assert!(took.is_some(), "B drops the removed client within a second");
}
