//! Caps on text the gateway copies from callers and upstreams into its own logs, log rows, metrics
//! labels and answer headers, so neither side can make one request cost megabytes of log (a caller's
//! `User-Agent`, an upstream's error message or the model name an answer claims).

use std::borrow::Cow;

/// A caller's `User-Agent` as logged.
pub const MAX_USER_AGENT: usize = 512;
/// An error message in a log line or a log row (the client still gets the whole message).
pub const MAX_LOGGED_ERROR: usize = 4 * 1024;
/// A model name from an upstream answer (the requested model is refused over the same length).
pub const MAX_MODEL_NAME: usize = 256;
/// A route label (the matched pattern; an unmatched path is cut).
pub const MAX_ROUTE: usize = 256;

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[truncated]", &text[..end]))
}

/// [`clip`] for an owned string, without copying one that fits.
pub fn clip_owned(text: String, max: usize) -> String {
    match clip(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_character_boundaries() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 3), "abc…[truncated]");
        assert_eq!(clip("ééé", 3), "é…[truncated]", "never inside a character");
        assert_eq!(clip_owned("x".repeat(5), 5), "xxxxx");
    }
}
