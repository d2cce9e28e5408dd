//! The stored shape of one inference call.

use serde::{Deserialize, Serialize};

/// One inference call as the gateway saw it, written once when the call ends.
///
/// The record is flat on purpose: every field is a column, so the logs API can filter and sort on it
/// without parsing JSON. Optional fields are `None` when the call never got that far (no provider was
/// chosen, no usage was reported), never a made-up zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// UUID v7 made by the caller: time-ordered, so the unique index grows at its right edge.
    pub id: String,
    /// When the call started, in unix milliseconds.
    pub timestamp_ms: i64,
    /// The HTTP route the client called (`/v1/chat/completions`, `/anthropic/v1/messages`, ...).
    pub route: String,
    /// What kind of call it was (`chat_completion`, `embedding`, ...), Bifrost's `object`.
    pub request_type: String,
    /// The `model` string the client sent, before routing.
    pub model_requested: String,
    /// The provider that served (or last failed) the call; `None` when routing failed.
    pub provider: Option<String>,
    /// The model name sent upstream.
    pub model: Option<String>,
    /// The model the upstream says answered (its answer's `model`), when it says one: an endpoint may
    /// serve a retired id with its replacement.
    #[serde(default)]
    pub served_model: Option<String>,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub virtual_key_id: Option<String>,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    /// The HTTP status returned to the client. 2xx/3xx count as success, anything else as an error.
    pub status: u16,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub stream: bool,
    /// Upstream attempts made, retries and fallbacks included.
    pub attempts: u32,
    /// Which fallback served the call (`None`: the primary target, or nothing served).
    pub fallback_index: Option<u32>,
    /// The routing trail as JSON text, stored verbatim.
    pub trail: Option<String>,
    /// Total wall time of the call in milliseconds, as the client saw it.
    pub latency_ms: f64,
    pub upstream_latency_ms: Option<f64>,
    /// Time spent in the gateway itself (total minus time waiting on the provider).
    pub overhead_ms: Option<f64>,
    /// Time to first token of a stream.
    pub ttft_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    /// The call's price in USD, when it is known.
    pub cost_usd: Option<f64>,
    /// `false` when no price was known for the model: such calls are counted apart in the stats
    /// instead of being summed as free.
    pub cost_known: bool,
    /// `true` when the upstream reported no usage and the token counts (and cost) are the gateway's
    /// estimate: request bytes / 4 for the input, the answer's text bytes / 4 for the output.
    #[serde(default)]
    pub usage_estimated: bool,
    pub user_agent: Option<String>,
    /// The request body, only when content logging is on; the caller caps its size.
    pub request_body: Option<String>,
    /// The response body (or the stream's assembled text), only when content logging is on.
    pub response_body: Option<String>,
    /// Answered from the response cache: no upstream call, cost 0.
    #[serde(default)]
    pub cache_hit: bool,
    /// Which guardrails matched and what each decided (a JSON array); never the matched text.
    pub guardrails: Option<String>,
}

impl LogRecord {
    /// A record with the required fields set and everything optional empty, a starting point for
    /// callers and tests.
    pub fn new(
        id: impl Into<String>,
        timestamp_ms: i64,
        route: impl Into<String>,
        model_requested: impl Into<String>,
        status: u16,
        latency_ms: f64,
    ) -> LogRecord {
        LogRecord {
            id: id.into(),
            timestamp_ms,
            route: route.into(),
            request_type: "chat_completion".to_owned(),
            model_requested: model_requested.into(),
            provider: None,
            model: None,
            served_model: None,
            guardrails: None,
            key_id: None,
            key_name: None,
            virtual_key_id: None,
            team_id: None,
            customer_id: None,
            status,
            error_type: None,
            error_message: None,
            stream: false,
            attempts: 1,
            fallback_index: None,
            trail: None,
            latency_ms,
            upstream_latency_ms: None,
            overhead_ms: None,
            ttft_ms: None,
            input_tokens: None,
            output_tokens: None,
            cached_tokens: None,
            cost_usd: None,
            cost_known: false,
            usage_estimated: false,
            user_agent: None,
            request_body: None,
            response_body: None,
            cache_hit: false,
        }
    }

    /// Whether the call counts as a success in stats and the `success`/`error` status filter.
    pub fn is_success(&self) -> bool {
        is_success_status(self.status)
    }

    /// Input plus output tokens, unknown counts taken as 0: the value token filters and sorts use.
    pub fn total_tokens(&self) -> i64 {
        self.input_tokens
            .unwrap_or(0)
            .saturating_add(self.output_tokens.unwrap_or(0))
    }
}

/// 2xx and 3xx are successes; 1xx, 4xx, 5xx and anything odd (0 for "no response") are errors.
pub fn is_success_status(status: u16) -> bool {
    (200..400).contains(&status)
}
