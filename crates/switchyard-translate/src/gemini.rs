//! Gemini (`generateContent` / `streamGenerateContent?alt=sse`) adapter.

use serde_json::Value;

use crate::json::Obj;

mod error;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use error::{parse_error, render_error};
pub(crate) use request::{parse_request, render_request};
pub(crate) use response::{parse_response, parse_usage, render_response};
pub(crate) use stream::{Decoder, Encoder};

/// The id given to the `n`-th function call that has none (Gemini calls historically carry no ids).
fn synthetic_id(n: usize) -> String {
    format!("call_{n}")
}

/// Reads a field by its camelCase name or, as the REST API also accepts, its snake_case name.
fn field<'a>(o: &'a Obj, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel).or_else(|| o.get(snake))
}
