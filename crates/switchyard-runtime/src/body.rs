//! Reading request bodies with a size limit that answers in the API's own error shape.

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use std::time::Duration;

use crate::error::GatewayError;

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::PayloadTooLarge { limit_bytes: limit })
        }
        Err(e) if timed_out(e.as_ref()).is_some() => Err(GatewayError::BodyTimeout {
            secs: timed_out(e.as_ref()).map_or(0, |t| t.0.as_secs()),
        }),
        Err(e) => Err(GatewayError::BadRequest {
            message: format!("could not read request body: {e}"),
            param: None,
        }),
    }
}

/// The body deadline's error, wherever it sits in the error's source chain.
fn timed_out<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimeout> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(t) = err.downcast_ref::<BodyTimeout>() {
            return Some(t);
        }
        current = err.source();
    }
    None
}

/// Parses a JSON body into `T`, naming the exact field path on a type error
/// (e.g. `network_config.max_retries`).
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let param = (path != ".").then_some(path);
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("request body is not valid JSON: {inner}")
        } else {
            match &param {
                Some(p) => format!("{p}: {inner}"),
                None => inner.to_string(),
            }
        };
        GatewayError::BadRequest { message, param }
    })
}

/// The error a request body's deadline (the server's `listen::GuardLayer`) ends with; `body::read_limited` turns it into a `408`.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {} s", .0.as_secs())]
pub struct BodyTimeout(pub Duration);
