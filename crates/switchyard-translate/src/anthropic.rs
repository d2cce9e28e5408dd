//! Anthropic Messages (`/v1/messages`) adapter.

mod error;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use error::{parse_error, render_error};
pub(crate) use request::{parse_request, render_request, tool_use_id};
pub(crate) use response::{merge_usage, parse_response, render_response};
pub(crate) use stream::{Decoder, Encoder};
