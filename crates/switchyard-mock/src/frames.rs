//! A buffer of streamed body frames: every event is appended to one buffer and becomes its own body
//! frame (a slice of it), so a client sees exactly one event per frame.

use bytes::Bytes;
use serde::Serialize;

pub(crate) struct Frames {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Frames {
    pub(crate) fn new() -> Self {
        Frames {
            buf: Vec::with_capacity(2048),
            ends: Vec::with_capacity(16),
        }
    }

    /// Number of frames so far.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// `event: <name>\ndata: <json>\n\n` (Anthropic style).
    pub(crate) fn event<T: Serialize>(&mut self, name: &str, value: &T) {
        self.buf.extend_from_slice(b"event: ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'\n');
        self.data(value);
    }

    /// `data: <json>\n\n`
    pub(crate) fn data<T: Serialize>(&mut self, value: &T) {
        self.buf.extend_from_slice(b"data: ");
        self.json(value);
        self.buf.extend_from_slice(b"\n\n");
        self.ends.push(self.buf.len());
    }

    /// `<prefix><json>` as one frame (the elements of a streamed JSON array).
    pub(crate) fn prefixed_json<T: Serialize>(&mut self, prefix: &[u8], value: &T) {
        self.buf.extend_from_slice(prefix);
        self.json(value);
        self.ends.push(self.buf.len());
    }

    /// Raw bytes as one frame.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.ends.push(self.buf.len());
    }

    fn json<T: Serialize>(&mut self, value: &T) {
        serde_json::to_writer(&mut self.buf, value).expect("serializing an event cannot fail");
    }

    pub(crate) fn into_frames(self) -> Vec<Bytes> {
        let all = Bytes::from(self.buf);
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let frame = all.slice(start..end);
                start = end;
                frame
            })
            .collect()
    }
}
