//! The estimate reserved before a request goes upstream: prompt tokens from the body's size and the
//! output cap the client asked for, priced at the dearest target the request might be served by.

use serde::Deserialize;

use super::admission::{usd_to_nanos, Estimate};
use crate::pricing::{Prices, TokenUsage};

/// Output tokens assumed when the request sets no cap: generous, so the estimate errs high.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 4096;

/// Bytes per prompt token assumed. Real tokenizers average about four characters per token in
/// English; counting the whole JSON body (field names, punctuation) makes the estimate err high.
const BYTES_PER_TOKEN: u64 = 4;

#[derive(Deserialize, Default)]
struct Caps {
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(rename = "generationConfig")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Deserialize, Default)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens")]
    max_output_tokens: Option<u64>,
}

/// The output cap of an OpenAI, Anthropic, Responses or Gemini request body, if it sets one.
pub fn output_cap(body: &[u8]) -> Option<u64> {
    let caps: Caps = serde_json::from_slice(body).ok()?;
    caps.max_completion_tokens
        .or(caps.max_tokens)
        .or(caps.max_output_tokens)
        .or(caps.generation_config.and_then(|g| g.max_output_tokens))
}

/// The usage charged when an upstream answered without reporting any: the request body's bytes / 4
/// for the input (the same rule as the reservation) and the bytes of the text the answer relayed / 4
/// for the output, each rounded up. A request always has a body, so the estimate is never 0.
pub fn estimated_usage(request_bytes: usize, answer_text_bytes: usize) -> TokenUsage {
    TokenUsage {
        input: (request_bytes as u64).div_ceil(BYTES_PER_TOKEN).max(1),
        output: (answer_text_bytes as u64).div_ceil(BYTES_PER_TOKEN),
        cache_read: 0,
        cache_write: 0,
    }
}

/// The estimate for a body of `body_len` bytes asking for at most `output_cap` tokens. Without a price
/// the cost part is 0 (the real cost will be unknown too, and flagged as such).
pub fn estimate(body_len: usize, output_cap: Option<u64>, price: Option<&Prices>) -> Estimate {
    let prompt = (body_len as u64).div_ceil(BYTES_PER_TOKEN);
    let output = output_cap.unwrap_or(DEFAULT_OUTPUT_TOKENS);
    let cost = price.map_or(0.0, |p| prompt as f64 * p.input + output as f64 * p.output);
    Estimate {
        cost_nanos: usd_to_nanos(cost),
        tokens: (prompt + output) as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_read_from_every_protocol() {
        assert_eq!(output_cap(br#"{"model":"m","max_tokens":7}"#), Some(7));
        assert_eq!(
            output_cap(br#"{"max_tokens":7,"max_completion_tokens":9}"#),
            Some(9)
        );
        assert_eq!(output_cap(br#"{"max_output_tokens":11}"#), Some(11));
        assert_eq!(
            output_cap(br#"{"generationConfig":{"maxOutputTokens":13}}"#),
            Some(13)
        );
        assert_eq!(output_cap(br#"{"model":"m"}"#), None);
        assert_eq!(output_cap(b"not json"), None);
    }

    #[test]
    fn usage_without_a_report_is_estimated_from_bytes_and_never_zero() {
        let u = estimated_usage(401, 9);
        assert_eq!((u.input, u.output), (101, 3));
        assert_eq!(estimated_usage(0, 0).input, 1);
    }

    #[test]
    fn estimate_prices_prompt_and_output() {
        let p = Prices {
            input: 1e-6,
            output: 2e-6,
            cache_read: None,
            cache_write: None,
        };
        let e = estimate(400, Some(50), Some(&p));
        assert_eq!(e.tokens, 150);
        assert_eq!(e.cost_nanos, 100 * 1000 + 50 * 2000);
        assert_eq!(estimate(1, None, None).tokens, 1 + DEFAULT_OUTPUT_TOKENS as i64);
        assert_eq!(estimate(1, None, None).cost_nanos, 0);
    }
}
