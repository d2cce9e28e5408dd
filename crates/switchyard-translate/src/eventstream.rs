//! The AWS event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! `ConverseStream` sends it.
//!
//! One message is: a 12-byte prelude (total length, headers length, both big-endian `u32`, and the
//! CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it. A header is
//! a 1-byte name length, the name, a 1-byte value type and the value. Bedrock's messages carry
//! `:message-type` (`event` or `exception`), `:event-type` / `:exception-type` and `:content-type` as
//! string headers, and a JSON payload.
//!
//! [`EventStreamDecoder`] takes bytes in any chunking (a message may be split across reads or several
//! may arrive in one) and returns whole, CRC-checked messages. A CRC mismatch or an impossible length is
//! an error: the stream cannot be resynchronised after it.

use bytes::{Buf, Bytes, BytesMut};

const PRELUDE_LEN: usize = 12;
/// Prelude + message CRC: the smallest possible message.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + 4;
/// AWS's limit for one event-stream message (16 MiB of payload plus headers).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024 + 128 * 1024;

/// Why an event stream could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    /// The prelude's CRC does not match its first 8 bytes.
    #[error("event-stream prelude CRC mismatch (expected {expected:08x}, computed {computed:08x})")]
    PreludeCrc {
        /// The CRC the message carries.
        expected: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },
    /// The message's CRC does not match its bytes.
    #[error("event-stream message CRC mismatch (expected {expected:08x}, computed {computed:08x})")]
    MessageCrc {
        /// The CRC the message carries.
        expected: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },
    /// The prelude announces lengths that cannot be right.
    #[error("event-stream message has an invalid length: {0}")]
    Length(String),
    /// A header could not be read.
    #[error("event-stream header is malformed: {0}")]
    Header(String),
}

/// A header value. Bedrock uses strings; the other types are decoded so any valid stream is readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 and 1.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6.
    Bytes(Bytes),
    /// Type 7.
    String(String),
    /// Type 8: milliseconds since the epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The headers, in order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload (JSON for Bedrock).
    pub payload: Bytes,
}

impl Message {
    /// The value of a string header, e.g. `:event-type`.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Cuts a byte stream into event-stream messages.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    pending: BytesMut,
    failed: bool,
}

impl EventStreamDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the messages it completed. After an error every call returns the same
    /// error kind again is not guaranteed: the caller must stop (the stream cannot be resynchronised).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        if self.failed {
            return Err(EventStreamError::Length("the stream already failed".into()));
        }
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            match complete_message_len(&self.pending) {
                Ok(Some(len)) => {
                    let raw = self.pending.split_to(len).freeze();
                    match decode_message(raw) {
                        Ok(m) => out.push(m),
                        Err(e) => {
                            self.failed = true;
                            return Err(e);
                        }
                    }
                }
                Ok(None) => return Ok(out),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }

    /// Bytes of an unfinished message still buffered (non-zero at the end of a stream means it was cut).
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }
}

/// The length of the first message in `buf` once all of it has arrived; `None` while incomplete. The
/// prelude CRC is checked as soon as the prelude is there, so garbage fails fast.
pub fn complete_message_len(buf: &[u8]) -> Result<Option<usize>, EventStreamError> {
    if buf.len() < PRELUDE_LEN {
        return Ok(None);
    }
    let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let headers = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let expected = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let computed = crc32fast::hash(&buf[..8]);
    if expected != computed {
        return Err(EventStreamError::PreludeCrc { expected, computed });
    }
    if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&total) {
        return Err(EventStreamError::Length(format!("total length {total}")));
    }
    if headers > total - MIN_MESSAGE_LEN {
        return Err(EventStreamError::Length(format!(
            "headers length {headers} exceeds the message length {total}"
        )));
    }
    Ok((buf.len() >= total).then_some(total))
}

fn decode_message(raw: Bytes) -> Result<Message, EventStreamError> {
    let total = raw.len();
    let headers_len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
    let expected = u32::from_be_bytes([raw[total - 4], raw[total - 3], raw[total - 2], raw[total - 1]]);
    let computed = crc32fast::hash(&raw[..total - 4]);
    if expected != computed {
        return Err(EventStreamError::MessageCrc { expected, computed });
    }
    let mut headers_buf = raw.slice(PRELUDE_LEN..PRELUDE_LEN + headers_len);
    let payload = raw.slice(PRELUDE_LEN + headers_len..total - 4);
    let mut headers = Vec::new();
    while headers_buf.has_remaining() {
        headers.push(read_header(&mut headers_buf)?);
    }
    Ok(Message { headers, payload })
}

fn need(buf: &Bytes, n: usize, what: &str) -> Result<(), EventStreamError> {
    if buf.remaining() < n {
        return Err(EventStreamError::Header(format!("truncated {what}")));
    }
    Ok(())
}

fn read_header(buf: &mut Bytes) -> Result<(String, HeaderValue), EventStreamError> {
    need(buf, 1, "header name length")?;
    let name_len = buf.get_u8() as usize;
    need(buf, name_len + 1, "header name")?;
    let name = String::from_utf8(buf.split_to(name_len).to_vec())
        .map_err(|_| EventStreamError::Header("header name is not UTF-8".into()))?;
    let value = match buf.get_u8() {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => {
            need(buf, 1, "byte value")?;
            HeaderValue::Byte(buf.get_i8())
        }
        3 => {
            need(buf, 2, "short value")?;
            HeaderValue::Short(buf.get_i16())
        }
        4 => {
            need(buf, 4, "int value")?;
            HeaderValue::Int(buf.get_i32())
        }
        5 => {
            need(buf, 8, "long value")?;
            HeaderValue::Long(buf.get_i64())
        }
        t @ (6 | 7) => {
            need(buf, 2, "value length")?;
            let len = buf.get_u16() as usize;
            need(buf, len, "value")?;
            let bytes = buf.split_to(len);
            if t == 6 {
                HeaderValue::Bytes(bytes)
            } else {
                HeaderValue::String(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| EventStreamError::Header(format!("header '{name}' is not UTF-8")))?,
                )
            }
        }
        8 => {
            need(buf, 8, "timestamp value")?;
            HeaderValue::Timestamp(buf.get_i64())
        }
        9 => {
            need(buf, 16, "uuid value")?;
            let mut u = [0u8; 16];
            buf.copy_to_slice(&mut u);
            HeaderValue::Uuid(u)
        }
        t => {
            return Err(EventStreamError::Header(format!(
                "unknown value type {t} of '{name}'"
            )))
        }
    };
    Ok((name, value))
}

/// Encodes a message with string headers (what Bedrock sends). Used to answer Bedrock-speaking clients
/// and in tests.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = PRELUDE_LEN + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// A Bedrock event message: `:message-type: event`, `:event-type`, `:content-type: application/json`.
pub fn event_message(event_type: &str, payload: &[u8]) -> Bytes {
    encode_message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message written out by hand, byte by byte, from the format description (not by
    /// `encode_message`): one string header `:event-type: a`, payload `{}`.
    fn hand_made() -> Vec<u8> {
        let headers: &[u8] = &[
            11, b':', b'e', b'v', b'e', b'n', b't', b'-', b't', b'y', b'p', b'e', 7, 0, 1, b'a',
        ];
        let payload = b"{}";
        let total = 12 + headers.len() + payload.len() + 4;
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let c = crc32fast::hash(&m);
        m.extend_from_slice(&c.to_be_bytes());
        m.extend_from_slice(headers);
        m.extend_from_slice(payload);
        let c = crc32fast::hash(&m);
        m.extend_from_slice(&c.to_be_bytes());
        m
    }

    #[test]
    fn decodes_a_hand_made_message_and_the_encoder_agrees() {
        let raw = hand_made();
        let mut d = EventStreamDecoder::new();
        let msgs = d.push(&raw).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].header_str(":event-type"), Some("a"));
        assert_eq!(&msgs[0].payload[..], b"{}");
        assert_eq!(encode_message(&[(":event-type", "a")], b"{}").to_vec(), raw);
    }

    #[test]
    fn crc32_is_the_ieee_polynomial() {
        // The standard check value of CRC-32/ISO-HDLC, which the event-stream format uses.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn messages_split_at_every_byte_and_coalesced() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&event_message("messageStart", br#"{"role":"assistant"}"#));
        stream.extend_from_slice(&event_message(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ));
        stream.extend_from_slice(&event_message("messageStop", br#"{"stopReason":"end_turn"}"#));
        for split in 0..stream.len() {
            let mut d = EventStreamDecoder::new();
            let mut got = d.push(&stream[..split]).unwrap();
            got.extend(d.push(&stream[split..]).unwrap());
            let types: Vec<_> = got.iter().map(|m| m.header_str(":event-type").unwrap()).collect();
            assert_eq!(
                types,
                ["messageStart", "contentBlockDelta", "messageStop"],
                "split at {split}"
            );
            assert_eq!(d.buffered(), 0);
        }
        // One byte at a time.
        let mut d = EventStreamDecoder::new();
        let mut n = 0;
        for b in &stream {
            n += d.push(std::slice::from_ref(b)).unwrap().len();
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn a_flipped_payload_byte_is_a_message_crc_error() {
        let mut raw = event_message("messageStop", br#"{"stopReason":"end_turn"}"#).to_vec();
        let i = raw.len() - 6;
        raw[i] ^= 0x01;
        let err = EventStreamDecoder::new().push(&raw).unwrap_err();
        assert!(matches!(err, EventStreamError::MessageCrc { .. }), "{err}");
    }

    #[test]
    fn a_flipped_length_byte_is_a_prelude_crc_error() {
        let mut raw = event_message("x", b"{}").to_vec();
        raw[3] ^= 0x01;
        let mut d = EventStreamDecoder::new();
        assert!(matches!(
            d.push(&raw[..12]).unwrap_err(),
            EventStreamError::PreludeCrc { .. }
        ));
        assert!(d.push(&raw[12..]).is_err(), "a failed stream stays failed");
    }

    #[test]
    fn impossible_lengths_are_rejected_not_awaited() {
        let mut m = Vec::new();
        m.extend_from_slice(&(8u32).to_be_bytes()); // shorter than a prelude
        m.extend_from_slice(&0u32.to_be_bytes());
        let c = crc32fast::hash(&m);
        m.extend_from_slice(&c.to_be_bytes());
        assert!(matches!(
            complete_message_len(&m),
            Err(EventStreamError::Length(_))
        ));
    }

    #[test]
    fn truncated_headers_are_an_error_not_a_panic() {
        // Header claims a 200-byte name inside a 3-byte header block.
        let headers = [200u8, b'a', b'b'];
        let total = 12 + headers.len() + 4;
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let c = crc32fast::hash(&m);
        m.extend_from_slice(&c.to_be_bytes());
        m.extend_from_slice(&headers);
        let c = crc32fast::hash(&m);
        m.extend_from_slice(&c.to_be_bytes());
        assert!(matches!(
            EventStreamDecoder::new().push(&m),
            Err(EventStreamError::Header(_))
        ));
    }
}
