//! The OpenAI Responses API (`POST /v1/responses`) as a client protocol, for providers that do not
//! serve it themselves: requests are read into the canonical form (and so reach chat completions,
//! Anthropic, Gemini and Bedrock upstreams), answers and stream events are written back as Responses
//! JSON and Responses SSE events. Upstreams are never spoken to in this protocol: those that serve it
//! natively get the client's body unchanged (the gateway's pass-through).

mod request;
mod response;
mod stream;

pub(crate) use request::parse_request;
pub(crate) use response::render_response;
pub(crate) use stream::Encoder;
