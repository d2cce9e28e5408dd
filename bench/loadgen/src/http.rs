//! A minimal HTTP/1.1 client over one loopback `TcpStream`: the request is written as prepared
//! bytes, the answer's status line and headers are parsed by hand, and the body (chunked,
//! `Content-Length` or read to the close) is decoded incrementally as the socket delivers it.
//! Every socket read is reported with its time, so a caller can see when each piece arrived.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The only host the load generator talks to.
pub const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
pub const PATH: &str = "/v1/chat/completions";

/// Read buffer per connection; also the largest response head accepted.
const READ_BUF: usize = 16 * 1024;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.into())
}

/// Parses `Name: value` (as loadgen.py's `--header`); no line breaks allowed.
pub fn parse_header(spec: &str) -> Result<(String, String), String> {
    let (name, value) = spec
        .split_once(':')
        .ok_or_else(|| format!("header {spec:?}: expected 'Name: value'"))?;
    let (name, value) = (name.trim(), value.trim());
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("header {spec:?}: invalid name"));
    }
    if value.contains(['\r', '\n']) {
        return Err(format!("header {spec:?}: line break in the value"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// The whole request: `POST /v1/chat/completions` with a JSON body, keep-alive.
pub fn request_bytes(port: u16, body: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: keep-alive\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// How the body of an answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    Length(u64),
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
}

/// Parses a response head (status line and headers, the blank line included or not).
pub fn parse_head(head: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(head).map_err(|_| invalid("response head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(invalid(format!("bad status line {status_line:?}")));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| invalid(format!("bad status line {status_line:?}")))?;
    if (100..200).contains(&status) {
        return Err(invalid(format!("interim response {status} not supported")));
    }
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            chunked = last.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| invalid(format!("bad content-length {value:?}")))?;
            if length.is_some_and(|old| old != n) {
                return Err(invalid("conflicting content-length headers"));
            }
            length = Some(n);
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    Ok(Head { status, framing })
}

/// Where the body decoder is. The chunked framing is parsed byte by byte (it is a few bytes per
/// chunk), the data itself is handed on in slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    UntilClose,
    ChunkSize { size: u64, digits: u8 },
    ChunkExt { size: u64 },
    ChunkSizeLf { size: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    Done,
}

/// Incremental body decoder: feed it what the socket delivered, it passes on the body's bytes.
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Chunked => State::ChunkSize { size: 0, digits: 0 },
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The body ends where the connection does: a close is its regular end.
    pub fn ends_at_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Decodes `input`, handing every piece of body data to `sink`.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut impl FnMut(&[u8])) -> io::Result<()> {
        while !input.is_empty() {
            match self.state {
                State::Length(left) | State::Data(left) => {
                    let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    sink(&input[..take]);
                    input = &input[take..];
                    let left = left - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), n) => State::Length(n),
                        (_, 0) => State::DataCr,
                        (_, n) => State::Data(n),
                    };
                }
                State::UntilClose => {
                    sink(input);
                    input = &[];
                }
                State::Done => return Err(invalid("bytes after the end of the answer")),
                _ => {
                    self.state = self.framing_byte(input[0])?;
                    input = &input[1..];
                }
            }
        }
        Ok(())
    }

    /// One byte of chunk framing (size line, the CRLF after the data, trailers).
    fn framing_byte(&self, b: u8) -> io::Result<State> {
        let bad = || invalid(format!("bad chunked framing at byte {b:#04x} ({:?})", self.state));
        let size_end = |size: u64| {
            if size == 0 {
                State::TrailerStart
            } else {
                State::Data(size)
            }
        };
        Ok(match (self.state, b) {
            (State::ChunkSize { size, digits }, _) if b.is_ascii_hexdigit() => {
                if digits >= 15 {
                    return Err(invalid("chunk size too large"));
                }
                let d = (b as char).to_digit(16).map_or(0, u64::from);
                State::ChunkSize {
                    size: (size << 4) | d,
                    digits: digits + 1,
                }
            }
            (State::ChunkSize { digits: 0, .. }, _) => return Err(bad()),
            (State::ChunkSize { size, .. }, b';' | b' ' | b'\t') => State::ChunkExt { size },
            (State::ChunkSize { size, .. }, b'\r') => State::ChunkSizeLf { size },
            (
                State::ChunkSize { size, .. } | State::ChunkExt { size } | State::ChunkSizeLf { size },
                b'\n',
            ) => size_end(size),
            (State::ChunkExt { size }, _) => State::ChunkExt { size },
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr | State::DataLf, b'\n') => State::ChunkSize { size: 0, digits: 0 },
            (State::TrailerStart, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::TrailerLf, b'\n') => State::Done,
            (State::TrailerLine, b'\n') => State::TrailerStart,
            (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
            _ => return Err(bad()),
        })
    }
}

/// What a caller sees of one answer while it arrives.
pub trait Observer {
    /// A socket read returned bytes of the answer (head or body) at `at`.
    fn on_read(&mut self, at: Instant);
    /// Decoded body data that arrived with the read at `at`.
    fn on_data(&mut self, at: Instant, data: &[u8]);
}

/// Sees nothing.
impl Observer for () {
    fn on_read(&mut self, _: Instant) {}
    fn on_data(&mut self, _: Instant, _: &[u8]) {}
}

/// What [`Conn::read_response`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// False when the body ended with the connection (no length, no chunks).
    pub open: bool,
}

/// One keep-alive connection to `127.0.0.1:port`.
pub struct Conn {
    stream: TcpStream,
    buf: Box<[u8]>,
}

impl Conn {
    pub async fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(SocketAddr::from((HOST, port))).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; READ_BUF].into_boxed_slice(),
        })
    }

    /// Writes what the socket takes right now without waiting; the count written (0 when full).
    pub fn write_now(&self, bytes: &[u8]) -> io::Result<usize> {
        match self.stream.try_write(bytes) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The connection without its read buffer (to hold it open idle).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Reads one whole answer.
    pub async fn read_response(&mut self, obs: &mut impl Observer) -> io::Result<Answer> {
        let (head, mut held, body_at, at) = self.read_head(obs).await?;
        let mut decoder = BodyDecoder::new(head.framing);
        decoder.feed(&self.buf[body_at..held], &mut |d| obs.on_data(at, d))?;
        while !decoder.is_done() {
            held = self.stream.read(&mut self.buf).await?;
            if held == 0 {
                if decoder.ends_at_close() {
                    return Ok(Answer {
                        status: head.status,
                        open: false,
                    });
                }
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed in the middle of the body",
                ));
            }
            let at = Instant::now();
            obs.on_read(at);
            decoder.feed(&self.buf[..held], &mut |d| obs.on_data(at, d))?;
        }
        Ok(Answer {
            status: head.status,
            open: true,
        })
    }

    /// Reads until the blank line; the head, the bytes held in the buffer, where the body starts
    /// and when the last read arrived.
    async fn read_head(&mut self, obs: &mut impl Observer) -> io::Result<(Head, usize, usize, Instant)> {
        let mut held = 0;
        loop {
            if held == self.buf.len() {
                return Err(invalid("response head too large"));
            }
            let n = self.stream.read(&mut self.buf[held..]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed before the response head",
                ));
            }
            let at = Instant::now();
            obs.on_read(at);
            let from = held.saturating_sub(3);
            held += n;
            if let Some(pos) = memmem::find(&self.buf[from..held], b"\r\n\r\n") {
                let end = from + pos + 4;
                return Ok((parse_head(&self.buf[..end])?, held, end, at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(framing: Framing, pieces: &[&[u8]]) -> io::Result<(Vec<u8>, bool)> {
        let mut d = BodyDecoder::new(framing);
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut |b| out.extend_from_slice(b))?;
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn chunked_in_one_piece() {
        let raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        assert_eq!(
            decode(Framing::Chunked, &[raw]).unwrap(),
            (b"hello, world".to_vec(), true)
        );
    }

    #[test]
    fn chunked_split_at_every_byte() {
        let raw = b"a\r\n0123456789\r\n10\r\nabcdefghijklmnop\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let pieces: Vec<&[u8]> = raw.chunks(1).collect();
        let (out, done) = decode(Framing::Chunked, &pieces).unwrap();
        assert_eq!(out, b"0123456789abcdefghijklmnop");
        assert!(done);
    }

    #[test]
    fn chunked_not_done_until_the_last_crlf() {
        let (_, done) = decode(Framing::Chunked, &[b"3\r\nabc\r\n0\r\n"]).unwrap();
        assert!(!done);
    }

    #[test]
    fn chunked_rejects_garbage() {
        assert!(decode(Framing::Chunked, &[b"zz\r\n"]).is_err());
        assert!(decode(Framing::Chunked, &[b"3\r\nabcX"]).is_err());
        assert!(decode(Framing::Chunked, &[b"\r\n"]).is_err());
        assert!(decode(Framing::Chunked, &[b"0\r\n\r\nextra"]).is_err());
        assert!(decode(Framing::Chunked, &[b"1234567890abcdef0\r\n"]).is_err());
    }

    #[test]
    fn content_length_and_until_close() {
        assert_eq!(
            decode(Framing::Length(5), &[b"he", b"llo"]).unwrap(),
            (b"hello".to_vec(), true)
        );
        assert!(decode(Framing::Length(2), &[b"abc"]).is_err());
        assert_eq!(decode(Framing::Length(0), &[]).unwrap(), (Vec::new(), true));
        assert_eq!(
            decode(Framing::UntilClose, &[b"ab", b"c"]).unwrap(),
            (b"abc".to_vec(), false)
        );
    }

    #[test]
    fn heads() {
        let h =
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-type: x\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                framing: Framing::Chunked
            }
        );
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 404,
                framing: Framing::Length(12)
            }
        );
        let h = parse_head(b"HTTP/1.0 200\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                framing: Framing::UntilClose
            }
        );
        let h = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        assert!(parse_head(b"HTTP/1.1 100 Continue\r\n\r\n").is_err());
        assert!(parse_head(b"SPDY 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
    }

    #[test]
    fn request_and_headers() {
        let h = vec![parse_header("x-bf-vk: sk-1").unwrap()];
        let req = request_bytes(8080, "{}", &h);
        let text = String::from_utf8(req).unwrap();
        assert_eq!(
            text,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: keep-alive\r\nx-bf-vk: sk-1\r\n\r\n{}"
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": empty").is_err());
        assert!(parse_header("a b: c").is_err());
    }
}
