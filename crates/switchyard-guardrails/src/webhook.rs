//! LiteLLM's Generic Guardrail API, the bodies only: what the gateway POSTs, and how it reads the
//! answer. The call itself (bounded by `timeout_ms`, `on_error`) is the pipeline's.

use serde::Serialize;
use serde_json::Value;

/// `request` or `response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    Request,
    Response,
}

#[derive(Debug, Serialize)]
pub struct WebhookRequest<'a> {
    pub texts: &'a [String],
    pub input_type: InputType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_messages: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_data: Option<Value>,
}

/// What the webhook decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookVerdict {
    Allow,
    Blocked(String),
    /// Replacements for the texts sent, in order.
    Intervened(Vec<String>),
}

/// Reads an answer; `Err` says why it cannot be used (treated like an unreachable webhook).
pub fn parse_answer(body: &[u8], sent: usize) -> Result<WebhookVerdict, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    match v.get("action").and_then(Value::as_str) {
        Some("NONE") => Ok(WebhookVerdict::Allow),
        Some("BLOCKED") => Ok(WebhookVerdict::Blocked(
            v.get("blocked_reason")
                .and_then(Value::as_str)
                .unwrap_or("blocked by the guardrail webhook")
                .to_owned(),
        )),
        Some("GUARDRAIL_INTERVENED") => {
            let texts: Vec<String> = v
                .get("texts")
                .and_then(Value::as_array)
                .ok_or("GUARDRAIL_INTERVENED without texts")?
                .iter()
                .map(|t| t.as_str().map(str::to_owned).ok_or("texts must be strings"))
                .collect::<Result<_, _>>()?;
            if texts.len() != sent {
                return Err(format!("{} texts sent, {} returned", sent, texts.len()));
            }
            Ok(WebhookVerdict::Intervened(texts))
        }
        _ => Err("answer has no known action".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        assert_eq!(
            parse_answer(br#"{"action":"NONE"}"#, 1),
            Ok(WebhookVerdict::Allow)
        );
        assert_eq!(
            parse_answer(br#"{"action":"BLOCKED","blocked_reason":"no"}"#, 1),
            Ok(WebhookVerdict::Blocked("no".into()))
        );
        assert_eq!(
            parse_answer(br#"{"action":"GUARDRAIL_INTERVENED","texts":["x"]}"#, 1),
            Ok(WebhookVerdict::Intervened(vec!["x".into()]))
        );
        assert!(parse_answer(br#"{"action":"GUARDRAIL_INTERVENED","texts":[]}"#, 1).is_err());
        assert!(parse_answer(b"<html>", 1).is_err());
    }
}
