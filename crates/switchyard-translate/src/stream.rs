//! Stream translation: upstream SSE events in, client SSE frames out.

use bytes::Bytes;
use switchyard_core::sse::SseFramer;

use crate::canonical::{ErrorInfo, StreamEvent, Usage};
use crate::eventstream::EventStreamDecoder;
use crate::{anthropic, bedrock, gemini, openai, Protocol, ResponseContext};

/// One SSE event's fields, as parsed by [`parse_sse_event`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Parses one framed SSE event (as cut by [`SseFramer`]): `event:` and `data:` fields, one optional
/// space after the colon removed, comment lines ignored. `None` for an event with neither field (a
/// comment or keep-alive).
pub fn parse_sse_event(frame: &[u8]) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(frame);
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {} // comments (empty name), id, retry
        }
    }
    if event.is_none() && data.is_none() {
        return None;
    }
    Some(SseEvent {
        event,
        data: data.unwrap_or_default(),
    })
}

/// The error reported when the upstream closed before finishing the answer.
pub(crate) fn cut_error() -> ErrorInfo {
    let mut e = ErrorInfo::new(
        502,
        "server_error",
        "upstream stream ended before the response was complete",
    );
    e.detail.code = Some("upstream_stream_cut".to_owned());
    e
}

#[derive(Debug)]
enum Decoder {
    OpenAi(openai::Decoder),
    Anthropic(anthropic::Decoder),
    Gemini(gemini::Decoder),
    /// Bedrock streams are binary event-stream messages; the framer is unused for them.
    Bedrock(Box<(EventStreamDecoder, bedrock::Decoder)>),
}

impl Decoder {
    fn event(&mut self, name: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        match self {
            Decoder::OpenAi(d) => d.event(data, out),
            Decoder::Anthropic(d) => d.event(name, data, out),
            Decoder::Gemini(d) => d.event(data, out),
            // Reached only through `push_event` with an already-decoded message's type and payload.
            Decoder::Bedrock(d) => {
                let headers = vec![
                    (
                        ":message-type".to_owned(),
                        crate::eventstream::HeaderValue::String("event".into()),
                    ),
                    (
                        ":event-type".to_owned(),
                        crate::eventstream::HeaderValue::String(name.unwrap_or_default().to_owned()),
                    ),
                ];
                let m = crate::eventstream::Message {
                    headers,
                    payload: Bytes::copy_from_slice(data.as_bytes()),
                };
                d.1.message(&m, out)
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        match self {
            Decoder::OpenAi(d) => d.finish(out),
            Decoder::Anthropic(d) => d.finish(out),
            Decoder::Gemini(d) => d.finish(out),
            Decoder::Bedrock(d) => {
                if d.0.buffered() > 0 {
                    out.push(StreamEvent::Error(cut_error()));
                } else {
                    d.1.finish(out)
                }
            }
        }
    }
}

#[derive(Debug)]
enum Encoder {
    OpenAi(openai::Encoder),
    Anthropic(anthropic::Encoder),
    Gemini(gemini::Encoder),
    Bedrock(bedrock::Encoder),
    Responses(Box<crate::responses::Encoder>),
}

impl Encoder {
    /// Writes the frames for `ev`; `true` when the stream is now over.
    fn encode(&mut self, ev: StreamEvent, out: &mut Vec<Bytes>) -> bool {
        let terminal = matches!(ev, StreamEvent::Done | StreamEvent::Error(_));
        match self {
            Encoder::OpenAi(e) => e.encode(ev, out),
            Encoder::Anthropic(e) => e.encode(ev, out),
            Encoder::Gemini(e) => return e.encode(ev, out) || terminal,
            Encoder::Bedrock(e) => e.encode(ev, out),
            Encoder::Responses(e) => e.encode(ev, out),
        }
        terminal
    }
}

/// Translates one streamed answer from the upstream's protocol to the client's.
///
/// Feed it the upstream's bytes ([`StreamTranslator::push_bytes`]) or already-framed events
/// ([`StreamTranslator::push_event`]); each call returns the client frames to write, in order, one SSE
/// event per `Bytes`. When the upstream's body ends call [`StreamTranslator::finish`]; on a transport
/// error call [`StreamTranslator::fail`]. Once the stream is over (properly ended, or ended with an error
/// frame) every further call returns nothing.
///
/// Completion rules: an OpenAI upstream is complete at `[DONE]`, or at EOF after a `finish_reason`; an
/// Anthropic upstream at `message_stop`; a Gemini upstream at EOF after a `finishReason`. Anything else
/// ends with an error frame, never with the client protocol's clean terminator.
#[derive(Debug)]
pub struct StreamTranslator {
    framer: SseFramer,
    decoder: Decoder,
    encoder: Encoder,
    over: bool,
    usage: Option<Usage>,
    events: Vec<StreamEvent>,
}

impl StreamTranslator {
    /// A translator for an answer streamed by a `from` upstream to a `to` client.
    pub fn new(from: Protocol, to: Protocol, ctx: &ResponseContext) -> StreamTranslator {
        StreamTranslator {
            framer: SseFramer::new(),
            decoder: match from {
                Protocol::OpenAi => Decoder::OpenAi(openai::Decoder::default()),
                Protocol::Anthropic => Decoder::Anthropic(anthropic::Decoder::default()),
                Protocol::Gemini => Decoder::Gemini(gemini::Decoder::default()),
                Protocol::Bedrock => Decoder::Bedrock(Box::default()),
            },
            encoder: match to {
                Protocol::OpenAi => Encoder::OpenAi(openai::Encoder::new(ctx)),
                Protocol::Anthropic => Encoder::Anthropic(anthropic::Encoder::new(ctx)),
                Protocol::Gemini => Encoder::Gemini(gemini::Encoder::new(ctx)),
                Protocol::Bedrock => Encoder::Bedrock(bedrock::Encoder::default()),
            },
            over: false,
            usage: None,
            events: Vec::new(),
        }
    }

    /// A translator for an answer streamed by a `from` upstream to a Responses API client (named
    /// `response.*` events, see [`translate_responses_request`](crate::translate_responses_request)).
    pub fn to_responses(from: Protocol, ctx: &ResponseContext) -> StreamTranslator {
        let mut t = StreamTranslator::new(from, Protocol::OpenAi, ctx);
        t.encoder = Encoder::Responses(Box::new(crate::responses::Encoder::new(ctx)));
        t
    }

    /// Feeds raw upstream bytes (any chunking); returns the client frames they complete.
    pub fn push_bytes(&mut self, chunk: Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Decoder::Bedrock(d) = &mut self.decoder {
            if self.over {
                return out;
            }
            let mut events = std::mem::take(&mut self.events);
            match d.0.push(&chunk) {
                Ok(messages) => {
                    for m in &messages {
                        d.1.message(m, &mut events);
                    }
                }
                Err(e) => {
                    let mut info =
                        ErrorInfo::new(502, "server_error", format!("upstream stream is corrupt: {e}"));
                    info.detail.code = Some("upstream_stream_error".to_owned());
                    events.push(StreamEvent::Error(info));
                }
            }
            self.emit(&mut events, &mut out);
            self.events = events;
            return out;
        }
        for frame in self.framer.push(chunk) {
            if let Some(ev) = parse_sse_event(&frame) {
                self.process(ev.event.as_deref(), &ev.data, &mut out);
            }
        }
        out
    }

    /// Feeds one upstream event: its `event:` name (if any) and its `data:` payload.
    pub fn push_event(&mut self, event: Option<&str>, data: &str) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.process(event, data, &mut out);
        out
    }

    /// The upstream's body ended: returns the terminal frames, or an error frame when the upstream
    /// stopped before completing the answer.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        // An event not followed by a blank line before EOF still counts.
        if let Some(partial) = self.framer.take_partial() {
            if let Some(ev) = parse_sse_event(&partial) {
                self.process(ev.event.as_deref(), &ev.data, &mut out);
            }
        }
        if !self.over {
            let mut events = std::mem::take(&mut self.events);
            self.decoder.finish(&mut events);
            self.emit(&mut events, &mut out);
            self.events = events;
        }
        out
    }

    /// The upstream connection failed mid-stream: returns the error frame (nothing if already over).
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        let mut out = Vec::new();
        if !self.over {
            let mut e = ErrorInfo::new(502, "server_error", message);
            e.detail.code = Some("upstream_stream_error".to_owned());
            self.over = self.encoder.encode(StreamEvent::Error(e), &mut out);
        }
        out
    }

    /// The stream has ended (cleanly or with an error frame).
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The latest usage the upstream reported (for accounting); `None` when it reported none.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn process(&mut self, name: Option<&str>, data: &str, out: &mut Vec<Bytes>) {
        if self.over {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        self.decoder.event(name, data, &mut events);
        self.emit(&mut events, out);
        self.events = events;
    }

    fn emit(&mut self, events: &mut Vec<StreamEvent>, out: &mut Vec<Bytes>) {
        for ev in events.drain(..) {
            if self.over {
                continue;
            }
            if let StreamEvent::Usage(u) = &ev {
                self.usage = Some(*u);
            }
            self.over = self.encoder.encode(ev, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_fields() {
        assert_eq!(
            parse_sse_event(b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n"),
            Some(SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":1}".into()
            })
        );
        assert_eq!(
            parse_sse_event(b"data:x\ndata: y\n\n").map(|e| e.data),
            Some("x\ny".into())
        );
        assert_eq!(parse_sse_event(b": ping\n\n"), None);
    }
}
