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

/// Whether an OpenAI streaming request asks for the usage chunk (`stream_options.include_usage`).
pub fn wants_usage(obj: &JsonObject<'_>) -> bool {
    obj.get_raw("stream_options").is_some_and(|raw| {
        serde_json::from_str::<serde_json::Value>(raw).is_ok_and(|v| v["include_usage"] == true)
    })
}

/// Sets `stream_options.include_usage: true` (other `stream_options` kept), so the upstream reports
/// the stream's usage: every stream is metered, whether or not the client asked.
pub fn ask_for_usage(obj: &mut JsonObject<'_>) {
    let mut options = obj
        .get_raw("stream_options")
        .and_then(|raw| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw).ok())
        .unwrap_or_default();
    options.insert("include_usage".into(), serde_json::Value::Bool(true));
    obj.set_raw("stream_options", serde_json::Value::Object(options).to_string());
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
    fn usage_is_asked_for_without_losing_other_stream_options() {
        let body = br#"{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":true}}"#;
        let mut obj = JsonObject::parse(body).unwrap();
        assert!(!wants_usage(&obj));
        ask_for_usage(&mut obj);
        assert!(wants_usage(&obj));
        let sent: serde_json::Value = serde_json::from_slice(&obj.to_vec()).unwrap();
        assert_eq!(sent["stream_options"]["continuous_usage_stats"], true);
        assert_eq!(sent["stream_options"]["include_usage"], true);
        let mut bare = JsonObject::parse(br#"{"model":"m"}"#).unwrap();
        ask_for_usage(&mut bare);
        assert!(wants_usage(&bare));
    }

    #[test]
    fn output_cap_prefers_the_newer_field() {
        let body = br#"{"max_tokens":7,"max_completion_tokens":9}"#;
        assert_eq!(output_cap(&JsonObject::parse(body).unwrap()), Some(9));
        let body = br#"{"max_output_tokens":5}"#;
        assert_eq!(output_cap(&JsonObject::parse(body).unwrap()), Some(5));
        assert_eq!(output_cap(&JsonObject::parse(b"{}").unwrap()), None);
    }
}
