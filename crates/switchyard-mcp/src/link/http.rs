//! Streamable HTTP: every message is a POST; an answer comes back as a JSON body or as an SSE stream
//! that carries it. The session id the server hands out at `initialize` goes on every later request.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use serde_json::Value;
use switchyard_core::sse::SseFramer;
use switchyard_runtime::upstream::UpstreamClient;

use super::Dead;
use crate::jsonrpc::{self, LinkError};

/// Largest answer read from an MCP server.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

pub struct HttpLink {
    name: String,
    url: Uri,
    headers: HeaderMap,
    client: UpstreamClient,
    session: Mutex<Option<HeaderValue>>,
    protocol: Mutex<Option<HeaderValue>>,
    dead: Arc<Dead>,
}

pub(super) fn parse_uri(url: &str) -> Result<Uri, LinkError> {
    url.parse()
        .map_err(|e| LinkError::Transport(format!("invalid URL '{url}': {e}")))
}

impl HttpLink {
    pub fn new(
        name: &str,
        url: &str,
        headers: HeaderMap,
        client: UpstreamClient,
        dead: Arc<Dead>,
    ) -> Result<HttpLink, LinkError> {
        Ok(HttpLink {
            name: name.to_owned(),
            url: parse_uri(url)?,
            headers,
            client,
            session: Mutex::new(None),
            protocol: Mutex::new(None),
            dead,
        })
    }

    pub fn set_protocol_version(&self, v: &str) {
        *self.protocol.lock().unwrap_or_else(|p| p.into_inner()) = HeaderValue::from_str(v).ok();
    }

    async fn post(&self, msg: &Value) -> Result<http::Response<hyper::body::Incoming>, LinkError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .body(Body::from(msg.to_string()))
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        let h = req.headers_mut();
        h.clone_from(&self.headers);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(s) = self.session.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            h.insert("mcp-session-id", s);
        }
        if let Some(v) = self.protocol.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            h.insert("mcp-protocol-version", v);
        }
        let resp = self
            .client
            .send(&self.name, req)
            .await
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        if resp.status() == StatusCode::NOT_FOUND
            && self.session.lock().unwrap_or_else(|p| p.into_inner()).is_some()
        {
            self.dead.mark();
            return Err(LinkError::Transport(
                "the server no longer knows this session".into(),
            ));
        }
        if !resp.status().is_success() {
            let status = resp.status();
            return Err(LinkError::Transport(format!("the server answered HTTP {status}")));
        }
        if let Some(s) = resp.headers().get("mcp-session-id") {
            *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
        }
        Ok(resp)
    }

    pub async fn notify(&self, msg: Value) -> Result<(), LinkError> {
        self.post(&msg).await.map(drop)
    }

    pub async fn request(&self, id: u64, msg: Value) -> Result<Value, LinkError> {
        let resp = self.post(&msg).await?;
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = resp.into_body();
        if !sse {
            let bytes = read_capped(&mut body).await?;
            let answer: Value = serde_json::from_slice(&bytes)
                .map_err(|e| LinkError::Transport(format!("the answer is not JSON: {e}")))?;
            return find_answer(answer, id)
                .ok_or_else(|| LinkError::Transport("the answer does not carry the request's id".into()))
                .and_then(jsonrpc::outcome);
        }
        let mut framer = SseFramer::with_max_event(MAX_ANSWER_BYTES);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| LinkError::Transport(format!("the answer stream broke: {e}")))?;
            let Ok(chunk) = frame.into_data() else { continue };
            for event in framer.push(chunk) {
                let (_, data) = jsonrpc::sse_fields(&event);
                let Ok(msg) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                if let Some(answer) = find_answer(msg, id) {
                    return jsonrpc::outcome(answer);
                }
            }
            if framer.overflowed() {
                return Err(LinkError::Transport("an answer event is too large".into()));
            }
        }
        Err(LinkError::Transport(
            "the answer stream ended without the answer".into(),
        ))
    }
}

fn find_answer(msg: Value, id: u64) -> Option<Value> {
    match msg {
        Value::Array(batch) => batch.into_iter().find(|m| jsonrpc::answer_id(m) == Some(id)),
        m if jsonrpc::answer_id(&m) == Some(id) => Some(m),
        _ => None,
    }
}

pub(super) async fn read_capped(body: &mut hyper::body::Incoming) -> Result<Bytes, LinkError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| LinkError::Transport(format!("the answer broke: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_ANSWER_BYTES {
                return Err(LinkError::Transport("the answer is too large".into()));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.into())
}
