//! Behaviour selected by the model name: failures, rate limits, slowness, cut and stalled streams.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;

use crate::handlers::{bad_request, json, unauthorized, Reply};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Fail,
    Unavail,
    RateLimit,
    /// `ratelimit-after-<secs>`: a 429 that says when to come back (`retry-after`), unlike mittwald's.
    RateLimitAfter(u64),
    Flat400,
    Str401,
    Reset,
    Slow(u64),
    Cut,
    Tool,
    Drip,
    /// `stall*`: a stream that sends its first chunks and then goes silent without closing.
    Stall,
    Echo,
}

pub(crate) fn mode_of(model: &str) -> Mode {
    if let Some(rest) = model.strip_prefix("ratelimit-after-") {
        return Mode::RateLimitAfter(slow_millis(rest).unwrap_or(1));
    }
    mode_by_prefix(
        model,
        &[
            ("fail", Mode::Fail),
            ("unavail", Mode::Unavail),
            ("ratelimit", Mode::RateLimit),
            ("flat400", Mode::Flat400),
            ("str401", Mode::Str401),
            ("reset", Mode::Reset),
            ("cut", Mode::Cut),
            ("tool", Mode::Tool),
            ("drip", Mode::Drip),
            ("stall", Mode::Stall),
        ],
        Mode::Slow,
        Mode::Echo,
    )
}

/// The mode a model name selects, for each API's own mode set: `slow-<ms>*` is `slow(ms)`, else the
/// first `table` entry whose prefix starts the name (longer prefixes go first), else `echo`.
pub(crate) fn mode_by_prefix<M: Copy>(model: &str, table: &[(&str, M)], slow: fn(u64) -> M, echo: M) -> M {
    if let Some(rest) = model.strip_prefix("slow-") {
        return slow_millis(rest).map_or(echo, slow);
    }
    table
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map_or(echo, |&(_, mode)| mode)
}

/// The milliseconds of a `slow-<ms>*` model name (`rest` follows `slow-`); `None` without digits.
pub(crate) fn slow_millis(rest: &str) -> Option<u64> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// Handles the modes shared by all POST endpoints. `None` means: produce a normal answer.
pub(crate) async fn common_mode(mode: Mode) -> Option<Reply> {
    Some(match mode {
        Mode::Fail => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(
                br#"{"error":{"message":"Internal server error","type":"server_error","param":null,"code":null}}"#,
            ),
        )
        .into(),
        Mode::Unavail => json(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(
                br#"{"error":{"message":"Model is restarting","type":"server_error","param":null,"code":null}}"#,
            ),
        )
        .into(),
        Mode::RateLimit => json(
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(
                br#"{"error":{"message":"Rate limit exceeded","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            ),
        )
        .into(),
        Mode::RateLimitAfter(secs) => {
            let mut resp = json(
                StatusCode::TOO_MANY_REQUESTS,
                Bytes::from_static(
                    br#"{"error":{"message":"Rate limit exceeded","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                ),
            );
            resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
            resp.into()
        }
        Mode::Flat400 => json(
            StatusCode::BAD_REQUEST,
            Bytes::from_static(
                br#"{"object":"error","message":"This model's maximum context length is 4096 tokens","type":"invalid_request_error","param":"messages","code":400}"#,
            ),
        )
        .into(),
        Mode::Str401 => unauthorized().into(),
        Mode::Reset => Reply::Reset,
        Mode::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return None;
        }
        Mode::Cut | Mode::Tool | Mode::Drip | Mode::Stall | Mode::Echo => return None,
    })
}

/// The behaviour modes of `model` for endpoints without streaming quirks; `None`: answer normally.
pub(crate) async fn common_mode_for(model: &str) -> Option<Reply> {
    common_mode(mode_of(model)).await
}

/// The checks shared by chat and legacy completions: vLLM's `stream_options` rule, then the
/// model's behaviour mode. `Err` is the answer to send instead.
pub(crate) async fn checked_mode(
    model: &str,
    stream: Option<bool>,
    has_stream_options: bool,
) -> Result<(bool, Mode), Reply> {
    let stream = stream == Some(true);
    if has_stream_options && !stream {
        return Err(bad_request(
            "Stream options can only be defined when `stream=True`.",
            Some("stream_options"),
        ));
    }
    let mode = mode_of(model);
    match common_mode(mode).await {
        Some(reply) => Err(reply),
        None => Ok((stream, mode)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_of("fail-x"), Mode::Fail);
        assert_eq!(mode_of("slow-300"), Mode::Slow(300));
        assert_eq!(mode_of("slow-25ms"), Mode::Slow(25));
        assert_eq!(mode_of("slow-"), Mode::Echo);
        assert_eq!(mode_of("slowpoke"), Mode::Echo);
        assert_eq!(mode_of("tool-call"), Mode::Tool);
        assert_eq!(mode_of("gpt-oss-120b"), Mode::Echo);
        assert_eq!(mode_of("resetting"), Mode::Reset);
    }
}
