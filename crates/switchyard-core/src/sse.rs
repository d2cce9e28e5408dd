//! Server-sent-event framing for relayed streams.
//!
//! [`SseFramer`] cuts an upstream byte stream into whole events so the gateway forwards exactly one
//! event per write (never a half event, never several coalesced), and remembers whether the stream
//! ended properly with `data: [DONE]` or carried an error event. It does not decode the JSON inside.

use bytes::{Bytes, BytesMut};

/// Default cap on one SSE event (and on the unfinished event being buffered): 16 MiB. The largest
/// legitimate events are streamed image generations (a base64 PNG of a few MB per partial image).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct SseFramer {
    pending: BytesMut,
    /// How far `pending` has been searched for an event end (a terminator is at most 4 bytes long,
    /// so only its last 3 bytes are searched again): framing is linear in the bytes received.
    scanned: usize,
    max_event: usize,
    overflowed: bool,
    saw_done: bool,
    saw_error: bool,
    events: u64,
}

impl Default for SseFramer {
    fn default() -> Self {
        Self::with_max_event(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A framer that refuses any event longer than `max_event` bytes (see [`Self::overflowed`]).
    pub fn with_max_event(max_event: usize) -> Self {
        SseFramer {
            pending: BytesMut::new(),
            scanned: 0,
            max_event: max_event.max(1),
            overflowed: false,
            saw_done: false,
            saw_error: false,
            events: 0,
        }
    }

    /// Feeds a chunk; returns the complete events it finished, each with its terminating blank line.
    /// Once an event exceeds the cap, the framer drops what it buffered and ignores all further input.
    pub fn push(&mut self, chunk: Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.overflowed {
            return out;
        }
        if self.pending.is_empty() {
            // Fast path: slice events straight out of the chunk without copying.
            let mut start = 0;
            while let Some(end) = event_end(&chunk, start) {
                if end - start > self.max_event {
                    self.overflow();
                    return out;
                }
                let ev = chunk.slice(start..end);
                self.inspect(&ev);
                out.push(ev);
                start = end;
            }
            if start < chunk.len() {
                self.pending.extend_from_slice(&chunk[start..]);
                self.scanned = self.pending.len();
            }
        } else {
            self.pending.extend_from_slice(&chunk);
            let mut from = self.scanned.saturating_sub(3);
            while let Some(end) = event_end(&self.pending, from) {
                if end > self.max_event {
                    self.overflow();
                    return out;
                }
                let ev = self.pending.split_to(end).freeze();
                self.inspect(&ev);
                out.push(ev);
                from = 0;
            }
            self.scanned = self.pending.len();
        }
        if self.pending.len() > self.max_event {
            self.overflow();
        }
        out
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        self.pending = BytesMut::new();
        self.scanned = 0;
    }

    /// An event longer than the cap arrived: the stream cannot be relayed further.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The cap on one event, in bytes.
    pub fn max_event(&self) -> usize {
        self.max_event
    }

    /// Bytes left over when the upstream ended in the middle of an event.
    pub fn take_partial(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }

    /// The stream ended properly (`data: [DONE]`, Anthropic's `event: message_stop`, or the Responses
    /// API's `event: response.completed` / `response.incomplete`).
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    /// An event carried an `error` object (the upstream already reported a failure in-stream).
    pub fn saw_error(&self) -> bool {
        self.saw_error
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    fn inspect(&mut self, event: &[u8]) {
        self.events += 1;
        for line in lines(event) {
            // Anthropic streams end with `event: message_stop` and report failures as `event: error`.
            if let Some(name) = line.strip_prefix(b"event:") {
                // The Responses API names its events and ends with `response.completed` (or
                // `response.incomplete`); `response.failed` reports a failure.
                match name.trim_ascii() {
                    b"message_stop" | b"response.completed" | b"response.incomplete" => self.saw_done = true,
                    b"error" | b"response.failed" => self.saw_error = true,
                    _ => {}
                }
                continue;
            }
            let Some(payload) = line.strip_prefix(b"data:") else {
                continue;
            };
            let payload = payload.trim_ascii();
            if payload == b"[DONE]" {
                self.saw_done = true;
            } else if TRANSCRIPT_DONE.find(payload).is_some() {
                // Streamed transcriptions end with this data-only event and no `[DONE]`.
                self.saw_done = true;
            } else if payload.starts_with(b"{\"error\"") {
                self.saw_error = true;
            }
        }
    }
}

/// The end of a streamed transcription (built once: building a searcher costs more than a search).
static TRANSCRIPT_DONE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"type\":\"transcript.text.done\""));

/// The lines of an event (split at `\n`, found a machine word at a time).
pub fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', event);
    std::iter::from_fn(move || {
        if start > event.len() {
            return None;
        }
        let end = ends.next().unwrap_or(event.len());
        let line = &event[start..end];
        start = end + 1;
        Some(line)
    })
}

/// The payloads of an event's `data:` lines, trimmed.
pub fn data_payloads(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    lines(event).filter_map(|line| line.strip_prefix(b"data:").map(<[u8]>::trim_ascii))
}

/// The payload of an event's first `data:` line, trimmed.
pub fn data_payload(event: &[u8]) -> Option<&[u8]> {
    data_payloads(event).next()
}

/// Index just past the blank line that ends the event starting at or after `from`.
fn event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(pos) = memchr::memchr2(b'\n', b'\r', &buf[i..]) {
        let p = i + pos;
        let rest = &buf[p..];
        if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            return Some(p + 2);
        }
        if rest.starts_with(b"\r\n\r\n") {
            return Some(p + 4);
        }
        if rest.starts_with(b"\n\r\n") {
            return Some(p + 3);
        }
        i = p + 1;
    }
    None
}

/// An in-stream error event in the OpenAI shape (openai-python raises `APIError` on it).
pub fn error_event(message: &str, error_type: &str) -> Bytes {
    let body =
        serde_json::json!({"error": {"message": message, "type": error_type, "param": null, "code": null}});
    Bytes::from(format!("data: {body}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_all(f: &mut SseFramer, chunks: &[&str]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| f.push(Bytes::copy_from_slice(c.as_bytes())))
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn splits_coalesced_events_and_joins_split_ones() {
        let mut f = SseFramer::new();
        let evs = push_all(
            &mut f,
            &["data: {\"a\":1}\n\ndata: {\"b\"", ":2}\n", "\ndata: [DONE]\n\n"],
        );
        assert_eq!(
            evs,
            ["data: {\"a\":1}\n\n", "data: {\"b\":2}\n\n", "data: [DONE]\n\n"]
        );
        assert!(f.saw_done());
        assert_eq!(f.events(), 3);
        assert!(f.take_partial().is_none());
    }

    #[test]
    fn responses_api_streams_end_with_named_events() {
        let mut f = SseFramer::new();
        let evs = push_all(
            &mut f,
            &["event: response.output_text.delta\ndata: {\"delta\":\"hi\"}\n\n"],
        );
        assert_eq!(evs.len(), 1);
        assert!(!f.saw_done());
        push_all(
            &mut f,
            &["event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n"],
        );
        assert!(f.saw_done());

        let mut f = SseFramer::new();
        push_all(&mut f, &["event: response.failed\ndata: {}\n\n"]);
        assert!(f.saw_error() && !f.saw_done());
    }

    #[test]
    fn streamed_transcriptions_end_with_their_done_event() {
        let mut f = SseFramer::new();
        push_all(
            &mut f,
            &["data: {\"type\":\"transcript.text.delta\",\"delta\":\"hi\"}\n\n"],
        );
        assert!(!f.saw_done());
        push_all(
            &mut f,
            &["data: {\"type\":\"transcript.text.done\",\"text\":\"hi\"}\n\n"],
        );
        assert!(f.saw_done());
    }

    #[test]
    fn crlf_framing_and_comments() {
        let mut f = SseFramer::new();
        let evs = push_all(&mut f, &[": ping\r\n\r\nevent: x\r\ndata: {}\r\n\r\n"]);
        assert_eq!(evs, [": ping\r\n\r\n", "event: x\r\ndata: {}\r\n\r\n"]);
        assert!(!f.saw_done());
    }

    #[test]
    fn cut_stream_leaves_partial_and_no_done() {
        let mut f = SseFramer::new();
        let evs = push_all(&mut f, &["data: {\"a\":1}\n\ndata: {\"tru"]);
        assert_eq!(evs.len(), 1);
        assert!(!f.saw_done());
        assert_eq!(f.take_partial().unwrap(), Bytes::from_static(b"data: {\"tru"));
    }

    #[test]
    fn anthropic_end_and_error_events() {
        let mut f = SseFramer::new();
        push_all(
            &mut f,
            &["event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"],
        );
        assert!(f.saw_done());
        let mut f = SseFramer::new();
        push_all(&mut f, &["event: error\ndata: {\"type\":\"error\"}\n\n"]);
        assert!(f.saw_error());
    }

    #[test]
    fn upstream_error_events_are_noticed() {
        let mut f = SseFramer::new();
        push_all(&mut f, &["data: {\"error\":{\"message\":\"boom\"}}\n\n"]);
        assert!(f.saw_error());
    }

    #[test]
    fn error_event_shape() {
        let ev = error_event("upstream closed", "upstream_stream_cut");
        let s = std::str::from_utf8(&ev).unwrap();
        let v: serde_json::Value = serde_json::from_str(s.strip_prefix("data: ").unwrap().trim()).unwrap();
        assert_eq!(v["error"]["message"], "upstream closed");
        assert!(v["error"]["param"].is_null() && v["error"]["code"].is_null());
    }

    #[test]
    fn an_event_over_the_cap_overflows_and_drops_its_bytes() {
        let mut f = SseFramer::with_max_event(16);
        assert_eq!(push_all(&mut f, &["data: ok\n\n"]).len(), 1);
        assert!(push_all(&mut f, &["data: 0123456789", "abcdef"]).is_empty());
        assert!(f.overflowed());
        assert!(f.take_partial().is_none());
        assert!(push_all(&mut f, &["\n\ndata: later\n\n"]).is_empty());
        // A whole oversized event in one chunk overflows too; the events before it still count.
        let mut f = SseFramer::with_max_event(16);
        let evs = push_all(&mut f, &["data: a\n\ndata: 0123456789abcdef\n\n"]);
        assert_eq!(evs, ["data: a\n\n"]);
        assert!(f.overflowed());
    }

    #[test]
    fn an_endless_event_fed_byte_by_byte_is_scanned_linearly() {
        // 200 KB one byte at a time: quadratic rescanning would take ~2e10 steps; linear is instant.
        let mut f = SseFramer::with_max_event(1 << 20);
        let started = std::time::Instant::now();
        for _ in 0..200_000 {
            assert!(f.push(Bytes::from_static(b"x")).is_empty());
        }
        assert_eq!(f.push(Bytes::from_static(b"\n\n")).len(), 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// The framing of the whole input at once, by the definition (first terminator wins).
    fn reference(input: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(end) = event_end(input, start) {
            out.push(input[start..end].to_vec());
            start = end;
        }
        (out, input[start..].to_vec())
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_frames_like_the_whole_input(
            input in proptest::collection::vec(proptest::sample::select(b"ab:\n\r ".to_vec()), 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..12),
        ) {
            let (expected, rest) = reference(&input);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.push(0);
            cuts.push(input.len());
            cuts.sort_unstable();
            let mut f = SseFramer::new();
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                got.extend(f.push(Bytes::copy_from_slice(&input[w[0]..w[1]])).into_iter().map(|b| b.to_vec()));
            }
            proptest::prop_assert_eq!(got, expected);
            proptest::prop_assert_eq!(f.take_partial().map(|b| b.to_vec()).unwrap_or_default(), rest);
        }

        #[test]
        fn the_cap_is_met_whatever_the_chunking(
            input in proptest::collection::vec(proptest::sample::select(b"ab\n".to_vec()), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..8),
            cap in 1usize..40,
        ) {
            let (events, rest) = reference(&input);
            let too_long = events.iter().any(|e| e.len() > cap) || rest.len() > cap;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.push(0);
            cuts.push(input.len());
            cuts.sort_unstable();
            let mut f = SseFramer::with_max_event(cap);
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                got.extend(f.push(Bytes::copy_from_slice(&input[w[0]..w[1]])).into_iter().map(|b| b.to_vec()));
            }
            let before: Vec<Vec<u8>> = events.iter().take_while(|e| e.len() <= cap).cloned().collect();
            proptest::prop_assert_eq!(f.overflowed(), too_long);
            proptest::prop_assert_eq!(got, before);
        }
    }
}
