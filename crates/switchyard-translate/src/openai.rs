//! OpenAI Chat Completions (`/v1/chat/completions`) adapter.

mod error;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use error::{default_type_for_status, normalize_upstream_error};
pub(crate) use error::{parse_error, render_error};
pub(crate) use request::{parse_request, render_request};
pub(crate) use response::{parse_response, parse_usage, parse_usage_json, render_response};
pub(crate) use stream::{data_frame, malformed_event, Decoder, Encoder};
