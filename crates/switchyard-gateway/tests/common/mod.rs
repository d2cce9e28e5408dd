//! Test harness: the real gateway on an ephemeral loopback port, over a real app dir.
#![allow(dead_code)] // each test binary uses a different subset

pub mod browser;
pub mod endpoints;
pub mod governance;
pub mod guard;
pub mod webdriver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_gateway::{Gateway, ServerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The configuration `TestGateway::start` uses: 127.0.0.1 on an ephemeral port, a 1 MiB body limit.
pub fn test_config(app_dir: &Path) -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: app_dir.to_owned(),
        shutdown_grace: Duration::from_secs(5),
        max_request_body_bytes: 1024 * 1024,
        ..ServerConfig::default()
    }
}

pub struct TestGateway {
    pub addr: SocketAddr,
    pub app_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    pub http: reqwest::Client,
}

impl TestGateway {
    pub async fn start(app_dir: &Path) -> TestGateway {
        Self::start_with(test_config(app_dir)).await
    }

    pub async fn start_with(config: ServerConfig) -> TestGateway {
        let gateway = Gateway::bind(&config).await.expect("gateway starts");
        let addr = gateway.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(async move {
            let _ = rx.await;
        }));
        TestGateway {
            addr,
            app_dir: config.app_dir,
            shutdown: Some(tx),
            task: Some(task),
            // Redirects are not followed, so tests see them (the admin UI redirects to /login).
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM's equivalent and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn wait_stopped(mut self) {
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.put(self.url(path)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.http.delete(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Posts a streaming chat request for `model` and returns the response unread.
    pub async fn post_stream(&self, path: &str, model: &str) -> reqwest::Response {
        let mut body = chat(model);
        body["stream"] = json!(true);
        self.http.post(self.url(path)).json(&body).send().await.unwrap()
    }

    /// Registers an OpenAI-compatible custom provider pointing at `base_url` with one `*` key.
    pub async fn add_openai_compatible(&self, name: &str, base_url: &str, key: &str) {
        let (s, b) = self
            .post(
                "/api/providers",
                json!({"provider": name, "network_config": {"base_url": base_url},
                       "custom_provider_config": {"base_provider_type": "openai"}}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = self
            .post(
                &format!("/api/providers/{name}/keys"),
                json!({"name": format!("{name}-key"), "value": key, "models": ["*"], "weight": 1.0}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Creates a virtual key through the management API; returns its (id, value).
pub async fn create_vk(gw: &TestGateway, body: Value) -> (String, String) {
    let (s, b) = gw.post("/api/governance/virtual-keys", body).await;
    assert_eq!(s, 200, "{b}");
    let vk = &b["virtual_key"];
    (
        vk["id"].as_str().unwrap().to_owned(),
        vk["value"].as_str().unwrap().to_owned(),
    )
}

pub fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hello there"}]})
}

/// Asserts the Bifrost/OpenAI error shape and returns the inner error object.
pub fn assert_error_shape(body: &Value, status: u16) -> &Value {
    assert_eq!(body["status_code"], status, "{body}");
    let err = &body["error"];
    for k in ["message", "type", "param", "code"] {
        assert!(err.get(k).is_some(), "error.{k} missing in {body}");
    }
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    err
}
