//! What the cache keeps for an answer: the body as the client got it (a JSON document, or a
//! stream's SSE events in order), with who served it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CachedBody {
    Json {
        body: String,
    },
    /// The stream's events as sent, each a whole SSE event (`data: ...\n\n`), `[DONE]` included.
    Stream {
        chunks: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    /// This entry's id (`cache_debug.cache_id`).
    pub id: String,
    pub status: u16,
    pub content_type: String,
    pub body: CachedBody,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub created_ms: i64,
}

impl CachedAnswer {
    /// The entry's size for the memory bound, in bytes (roughly).
    pub fn weight(&self) -> u32 {
        let body = match &self.body {
            CachedBody::Json { body } => body.len(),
            CachedBody::Stream { chunks } => chunks.iter().map(|c| c.len() + 24).sum(),
        };
        u32::try_from(body + self.content_type.len() + self.id.len() + 128).unwrap_or(u32::MAX)
    }
}
