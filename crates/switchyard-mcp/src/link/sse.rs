//! The HTTP+SSE transport (MCP 2024-11-05): a GET opens an event stream whose first `endpoint` event
//! names where to POST messages; answers come back on the stream as `message` events.

use std::sync::Arc;

use axum::body::Body;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::BodyExt;
use serde_json::Value;
use switchyard_core::sse::SseFramer;
use switchyard_runtime::upstream::UpstreamClient;
use tokio::sync::oneshot;

use super::http::{parse_uri, MAX_ANSWER_BYTES};
use super::Dead;
use crate::jsonrpc::{self, LinkError, Waiters};

pub struct SseLink {
    name: String,
    endpoint: Uri,
    headers: HeaderMap,
    client: UpstreamClient,
    waiters: Arc<Waiters>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseLink {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// `endpoint` resolved against the stream's URL (absolute, absolute path, or relative).
fn resolve(base: &Uri, endpoint: &str) -> Result<Uri, LinkError> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return parse_uri(endpoint);
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let path = if endpoint.starts_with('/') {
        endpoint.to_owned()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{endpoint}")
    };
    parse_uri(&format!("{scheme}://{authority}{path}"))
}

impl SseLink {
    pub async fn connect(
        name: &str,
        url: &str,
        headers: HeaderMap,
        client: UpstreamClient,
        dead: Arc<Dead>,
    ) -> Result<SseLink, LinkError> {
        let base = parse_uri(url)?;
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(base.clone())
            .body(Body::empty())
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        req.headers_mut().clone_from(&headers);
        req.headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let resp = client
            .send(name, req)
            .await
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(LinkError::Transport(format!(
                "the event stream answered HTTP {}",
                resp.status()
            )));
        }
        let waiters = Arc::new(Waiters::default());
        let (tx, rx) = oneshot::channel::<String>();
        let reader = tokio::spawn(read_stream(resp.into_body(), tx, waiters.clone(), dead));
        let endpoint = tokio::time::timeout(std::time::Duration::from_secs(10), rx)
            .await
            .map_err(|_| LinkError::Transport("the event stream sent no endpoint event".into()))?
            .map_err(|_| LinkError::Transport("the event stream ended before its endpoint event".into()))?;
        Ok(SseLink {
            name: name.to_owned(),
            endpoint: resolve(&base, &endpoint)?,
            headers,
            client,
            waiters,
            reader,
        })
    }

    async fn post(&self, msg: &Value) -> Result<(), LinkError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .body(Body::from(msg.to_string()))
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        req.headers_mut().clone_from(&self.headers);
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let resp = self
            .client
            .send(&self.name, req)
            .await
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(LinkError::Transport(format!(
                "the server answered HTTP {}",
                resp.status()
            )));
        }
        let _ = super::http::read_capped(&mut resp.into_body()).await;
        Ok(())
    }

    pub async fn notify(&self, msg: Value) -> Result<(), LinkError> {
        self.post(&msg).await
    }

    pub async fn request(&self, id: u64, msg: Value) -> Result<Value, LinkError> {
        self.waiters
            .exchange(id, self.post(&msg), "the event stream ended")
            .await
    }
}

async fn read_stream(
    mut body: hyper::body::Incoming,
    endpoint: oneshot::Sender<String>,
    waiters: Arc<Waiters>,
    dead: Arc<Dead>,
) {
    let mut endpoint = Some(endpoint);
    let mut framer = SseFramer::with_max_event(MAX_ANSWER_BYTES);
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(chunk) = frame.into_data() else { continue };
        for event in framer.push(chunk) {
            match jsonrpc::sse_fields(&event) {
                (Some(e), data) if e == "endpoint" => {
                    if let Some(tx) = endpoint.take() {
                        let _ = tx.send(data.trim().to_owned());
                    }
                }
                (_, data) if !data.is_empty() => {
                    if let Ok(msg) = serde_json::from_str::<Value>(&data) {
                        waiters.deliver(msg);
                    }
                }
                _ => {}
            }
        }
        if framer.overflowed() {
            break;
        }
    }
    waiters.close("the server's event stream ended");
    dead.mark();
}
