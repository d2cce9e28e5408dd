//! State shared by all connections of one mock server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

use crate::RecordedRequest;

/// At most this many requests are kept by the recorder (the oldest are dropped first).
pub(crate) const MAX_RECORDS: usize = 10_000;

/// The endpoints that have call counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat = 0,
    Models = 1,
    Embeddings = 2,
    Completions = 3,
    /// Anthropic `POST /v1/messages`.
    Messages = 4,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens = 5,
    /// Gemini `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
    Generate = 6,
    Transcriptions = 7,
    Translations = 8,
    Rerank = 9,
    Responses = 10,
    /// `POST /v1/audio/speech`.
    Speech = 11,
}

/// Number of [`Endpoint`]s.
pub(crate) const ENDPOINTS: usize = 12;

impl Endpoint {
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        match key {
            "chat" => Some(Endpoint::Chat),
            "models" => Some(Endpoint::Models),
            "embeddings" => Some(Endpoint::Embeddings),
            "completions" => Some(Endpoint::Completions),
            "messages" => Some(Endpoint::Messages),
            "count_tokens" => Some(Endpoint::CountTokens),
            "generate" => Some(Endpoint::Generate),
            "transcriptions" => Some(Endpoint::Transcriptions),
            "translations" => Some(Endpoint::Translations),
            "rerank" => Some(Endpoint::Rerank),
            "responses" => Some(Endpoint::Responses),
            "speech" => Some(Endpoint::Speech),
            _ => None,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) latency: Duration,
    /// The complete expected `Authorization` header value (`Bearer <key>`).
    pub(crate) expected_auth: Option<Box<[u8]>>,
    /// The bare key (Anthropic `x-api-key`, Gemini `x-goog-api-key` / `?key=`).
    pub(crate) api_key: Option<Box<str>>,
    pub(crate) record: bool,
    pub(crate) records: Mutex<VecDeque<RecordedRequest>>,
    pub(crate) counters: [AtomicU64; ENDPOINTS],
    pub(crate) cancelled: AtomicU64,
    pub(crate) next_id: AtomicU64,
    /// Pre-serialized `GET /v1/models` answer.
    pub(crate) models_body: Bytes,
    /// Serve chat completions only: `POST /v1/responses` is 404, as on most vLLM deployments.
    pub(crate) chat_only: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub(crate) fn new(latency: Duration, api_key: Option<&str>, record: bool) -> Self {
        Shared {
            latency,
            expected_auth: api_key.map(|k| format!("Bearer {k}").into_bytes().into_boxed_slice()),
            api_key: api_key.map(Box::from),
            record,
            records: Mutex::new(VecDeque::new()),
            counters: Default::default(),
            cancelled: AtomicU64::new(0),
            chat_only: std::sync::atomic::AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            models_body: crate::openai::models_list_body(),
        }
    }

    pub(crate) fn count(&self, endpoint: Endpoint) {
        self.counters[endpoint as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn calls(&self, endpoint: Endpoint) -> u64 {
        self.counters[endpoint as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn push_record(&self, rec: RecordedRequest) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= MAX_RECORDS {
            records.pop_front();
        }
        records.push_back(rec);
    }

    pub(crate) fn reset(&self) {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for c in &self.counters {
            c.store(0, Ordering::Relaxed);
        }
        self.cancelled.store(0, Ordering::Relaxed);
    }
}
