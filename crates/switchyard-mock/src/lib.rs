//! `switchyard-mock`: a deterministic mock LLM upstream that behaves like mittwald AI Hosting (a vLLM
//! backend) / OpenAI.
//!
//! Used in-process by Switchyard's integration tests ([`start`]), as a binary by the Python SDK tests
//! and as the upstream in benchmarks. It never generates random content and only binds `127.0.0.1`.
//!
//! The behaviour of `POST /v1/chat/completions` (and, where it makes sense, of `/v1/completions` and
//! `/v1/embeddings`) is chosen by a prefix of the requested model name: `fail*`, `unavail*`,
//! `ratelimit*`, `flat400*`, `str401*`, `reset*`, `slow-<ms>*`, `cut*`, `tool*`, `drip*`
//! (a chat `drip-<ms>*` stream sends its 100 ticks `ms` apart, plain `drip*` 100 ms apart); anything
//! else echoes the last user message (`"echo: <text>"`).
//!
//! It also serves `POST /v1/audio/transcriptions` and `/v1/audio/translations` (multipart; `json`,
//! `verbose_json`, `text`), `POST /v1/audio/speech` (always `audio/mpeg`, like mittwald's TTS; the bytes
//! are [`speech_audio`], sent in chunks), `POST /v1/rerank` (vLLM's shape) and `POST /v1/responses` (JSON, or SSE with
//! named `event:` lines ending in `response.completed`). `floatonly*` embedding models ignore
//! `encoding_format: base64`; `bow*` embedding models answer a bag-of-words vector (content words
//! hashed into 512 buckets), so paraphrases are close and unrelated texts far apart. `GET /__requests/last` returns the last recorded request as JSON (path,
//! headers, and the body as JSON, form parts or text) for tests that run the mock as a binary.
//!
//! The same server also speaks two other wire APIs, with their own auth, error shapes and model-prefix
//! modes (see the `anthropic` and `gemini` modules):
//! - Anthropic Messages: `POST /v1/messages` (JSON and SSE with `event:` lines),
//!   `POST /v1/messages/count_tokens`, and `GET /v1/models[/{id}]` in Anthropic's shape when the
//!   request carries `anthropic-version`;
//! - Gemini: `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`
//!   (`?alt=sse` for SSE, otherwise an incrementally sent JSON array);
//! - Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions?api-version=...` with the
//!   `api-key` header (see the `azure` module);
//! - AWS Bedrock: `POST /model/{modelId}/converse` and `/converse-stream` (event-stream frames), with
//!   SigV4 verified independently (see the `bedrock` and [`sigv4`] modules).

pub use bedrock::frame as eventstream_frame;

mod anthropic;
mod azure;
mod bedrock;
mod body;
mod completions;
mod extra;
mod frames;
mod gemini;
mod handlers;
pub mod hostile;
mod modes;
mod openai;
mod server;
pub mod sigv4;
mod speech;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::extra::{parse_form, FormField};
pub use crate::speech::speech_audio;
use crate::state::{Endpoint, Shared};

/// Options of a mock server.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Port on 127.0.0.1; 0 picks an ephemeral port.
    pub port: u16,
    /// Delay added before every response (before the headers), except for `/__calls`.
    pub latency: Duration,
    /// If set, every OpenAI `/v1` request must carry `Authorization: Bearer <key>`, otherwise it gets
    /// 401 `{"error":"Unauthorized"}` (like mittwald dedicated). Anthropic routes accept `x-api-key:
    /// <key>` or the bearer token (else 401 `authentication_error`); Gemini routes take
    /// `x-goog-api-key: <key>` or `?key=<key>` (else 403 `PERMISSION_DENIED` without a key, 400
    /// `INVALID_ARGUMENT`/`API_KEY_INVALID` with a wrong one, as Google answers).
    pub api_key: Option<String>,
    /// Record request details (see [`MockUpstream::requests`]); benchmarks turn this off.
    pub record: bool,
    /// The ids `GET /v1/models` lists instead of the built-in ones (an empty list: a dedicated
    /// endpoint still provisioning).
    pub models: Option<Vec<String>>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            port: 0,
            latency: Duration::ZERO,
            api_key: None,
            record: true,
            models: None,
        }
    }
}

/// A request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Path including the query string.
    pub path: String,
    /// Header names are lowercase; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, `Null` if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The parts of a `multipart/form-data` body (`None` if it is not a complete form).
    pub fn form(&self) -> Option<Vec<FormField>> {
        parse_form(self.header("content-type")?, &self.body)
    }

    /// The request as JSON, for `GET /__requests/last`: method, path, headers, and the body as JSON,
    /// as form parts (text fields' values; files' name, type, size and first bytes), or as text.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let headers: serde_json::Map<String, serde_json::Value> =
            self.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let mut out = json!({"method": self.method, "path": self.path, "headers": headers});
        if let Some(form) = self.form() {
            let parts: Vec<serde_json::Value> = form
                .iter()
                .map(|f| match &f.filename {
                    Some(name) => json!({"name": f.name, "filename": name, "content_type": f.content_type,
                                         "size": f.data.len(),
                                         "head_hex": f.data.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>()}),
                    None => json!({"name": f.name, "value": f.text()}),
                })
                .collect();
            out["parts"] = json!(parts);
        } else if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            out["json"] = v;
        } else {
            out["text"] = json!(String::from_utf8_lossy(&self.body));
        }
        out
    }
}

/// A running mock server. Dropping it or calling [`MockUpstream::shutdown`] stops it.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Binds `127.0.0.1:<port>` and starts serving on the current Tokio runtime.
pub async fn start(opts: MockOptions) -> std::io::Result<MockUpstream> {
    // A deep accept queue (tokio's `bind` asks for 128): the benchmark opens 512 streams at once.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind((Ipv4Addr::LOCALHOST, opts.port).into())?;
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    let mut shared = Shared::new(opts.latency, opts.api_key.as_deref(), opts.record);
    if let Some(models) = &opts.models {
        shared.models_body = crate::openai::models_list_body_of(models);
    }
    let shared = Arc::new(shared);
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(server::serve(listener, shared.clone(), rx));
    Ok(MockUpstream {
        addr,
        shared,
        shutdown: tx,
        task: Some(task),
    })
}

impl MockUpstream {
    /// Serve chat completions only from now on (`true`): `POST /v1/responses` answers 404 like a vLLM
    /// deployment without the Responses API (and is counted and recorded all the same).
    pub fn set_chat_only(&self, on: bool) {
        self.shared
            .chat_only
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The recorded requests in arrival order (at most the last 10 000; empty if recording is off).
    /// Requests to `/__calls` are not recorded.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Requests that reached `endpoint` (`"chat"`, `"models"`, `"embeddings"`, `"completions"`,
    /// `"messages"`, `"count_tokens"`, `"generate"`, `"transcriptions"`, `"translations"`, `"rerank"`,
    /// `"responses"`, `"speech"`), including failing ones; 0 for unknown keys.
    pub fn call_count(&self, endpoint: &str) -> u64 {
        Endpoint::from_key(endpoint).map_or(0, |ep| self.shared.calls(ep))
    }

    /// Clears the recorded requests, the call counters and the cancelled-stream counter.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Streamed responses that ended because the client went away before the mock finished.
    pub fn cancelled_streams(&self) -> u64 {
        self.shared.cancelled.load(Ordering::Relaxed)
    }

    /// Stops accepting, closes all connections and waits until the server task has ended.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
