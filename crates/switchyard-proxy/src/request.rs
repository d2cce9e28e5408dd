//! Reading the fields every inference route shares, naming the field in each refusal.

use std::time::Duration;

use http::HeaderMap;
use switchyard_core::json_fields::JsonObject;

use switchyard_runtime::error::GatewayError;

/// A 400 naming the offending field.
pub fn bad_field(message: &str, field: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: message.to_owned(),
        param: Some(field.to_owned()),
    }
}

/// Bifrost's `fallbacks` field: read, then removed from what goes upstream.
pub fn take_fallbacks(obj: &mut JsonObject<'_>) -> Result<Vec<String>, GatewayError> {
    let list = match obj.get_raw("fallbacks") {
        None | Some("null") => Vec::new(),
        Some(raw) => serde_json::from_str(raw).map_err(|_| {
            bad_field(
                "fallbacks must be an array of \"provider/model\" strings",
                "fallbacks",
            )
        })?,
    };
    obj.remove("fallbacks");
    Ok(list)
}

/// The output cap a top-level JSON body sets (`max_completion_tokens`, `max_tokens`,
/// `max_output_tokens`), read from the fields already parsed.
pub fn output_cap(obj: &JsonObject<'_>) -> Option<u64> {
    ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| obj.get_raw(k).and_then(|raw| raw.trim().parse::<u64>().ok()))
}

/// Parses the per-request timeout header (`x-switchyard-timeout`: seconds, fractions allowed).
pub fn timeout_override(headers: &HeaderMap) -> Result<Option<Duration>, GatewayError> {
    let Some(v) = headers.get("x-switchyard-timeout") else {
        return Ok(None);
    };
    let secs = v.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok());
    match secs {
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(GatewayError::BadRequest {
            message: "x-switchyard-timeout must be a number of seconds between 0 and 86400".into(),
            param: Some("x-switchyard-timeout".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_cap_prefers_the_newer_field() {
        let body = br#"{"max_tokens":7,"max_completion_tokens":9}"#;
        assert_eq!(output_cap(&JsonObject::parse(body).unwrap()), Some(9));
        let body = br#"{"max_output_tokens":5}"#;
        assert_eq!(output_cap(&JsonObject::parse(body).unwrap()), Some(5));
        assert_eq!(output_cap(&JsonObject::parse(b"{}").unwrap()), None);
    }
}
