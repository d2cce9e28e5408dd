//! An upstream that misbehaves on purpose, over raw TCP so it can break HTTP's rules: what a
//! request's `"model"` names decides how it answers. Used by the gateway's hostile-upstream tests,
//! the process-level hostile-peer suite and the soak (`switchyard-mock --hostile`).
//!
//! | model | answer |
//! |---|---|
//! | `huge-chunked` / `huge-length` | a JSON answer of `sizes.json` bytes (chunked / with a `Content-Length`) |
//! | `endless` | one SSE event, then an event of `sizes.event` bytes that never ends, held open |
//! | `flood` | small SSE events forever, never `[DONE]` |
//! | `echo` | a normal answer whose headers echo the key (lower case, `Basic` base64, percent-encoded, hex, `set-cookie`) |
//! | `err403` | a 403 whose message echoes the key in lower case |
//! | `s101` / `s307` | `101 Switching Protocols` / a redirect to the metadata address |
//! | `reset` | half an answer head, then the connection is closed |
//! | anything else | a normal chat completion |

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How much the oversized answers send.
#[derive(Clone, Copy, Debug)]
pub struct HostileSizes {
    /// Bytes of the huge JSON answers.
    pub json: usize,
    /// Bytes of the never-ending SSE event.
    pub event: usize,
    /// How long `endless` and `flood` keep their connection open.
    pub hold: Duration,
}

pub struct HostileUpstream {
    addr: SocketAddr,
}

impl HostileUpstream {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts the hostile upstream on 127.0.0.1 (`port` 0: any free port); `key` is the key it echoes.
pub async fn start_hostile(port: u16, key: &str, sizes: HostileSizes) -> std::io::Result<HostileUpstream> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let key = key.to_owned();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            tokio::spawn(misbehave(sock, key.clone(), sizes));
        }
    });
    Ok(HostileUpstream { addr })
}

/// Reads one request (head and `Content-Length` body); returns its text. Bounded in size and time.
async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                return String::from_utf8_lossy(&buf).into_owned();
            }
        }
        let n = match tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 && buf.len() < 1 << 20 => n,
            _ => return String::from_utf8_lossy(&buf).into_owned(),
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn completion() -> String {
    json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    .to_string()
}

const CHUNK_EVENT: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
const CLOSE: &str = "Connection: close\r\n";
const MODES: [&str; 9] = [
    "huge-chunked",
    "huge-length",
    "endless",
    "flood",
    "echo",
    "err403",
    "s101",
    "s307",
    "reset",
];

/// Writes `total` bytes of `byte` in 16 KiB pieces; stops when the reader goes away.
async fn filler(sock: &mut TcpStream, byte: u8, total: usize) {
    let piece = vec![byte; 16 * 1024];
    for _ in 0..total.div_ceil(piece.len()) {
        if sock.write_all(&piece).await.is_err() {
            return;
        }
    }
}

fn answer(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}{CLOSE}\r\n{body}",
        body.len()
    )
}

/// Answers one request according to the model it names; every write is bounded.
async fn misbehave(mut sock: TcpStream, key: String, sizes: HostileSizes) {
    let request = read_request(&mut sock).await;
    let mode = MODES
        .into_iter()
        .find(|m| request.contains(&format!("\"model\":\"{m}\"")))
        .unwrap_or("ok");
    match mode {
        "huge-chunked" | "huge-length" => {
            let length = if mode == "huge-length" {
                format!("Content-Length: {}\r\n", sizes.json)
            } else {
                String::new()
            };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}{CLOSE}\r\n");
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(b"{\"id\":\"").await;
            filler(&mut sock, b'a', sizes.json).await;
        }
        "endless" | "flood" => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{CLOSE}\r\n");
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(CHUNK_EVENT.as_bytes()).await;
            let until = tokio::time::Instant::now() + sizes.hold;
            if mode == "endless" {
                let _ = sock.write_all(b"data: {\"never\":\"").await;
                filler(&mut sock, b'x', sizes.event).await;
                // Then hold the event open (the gateway must not wait for it).
                tokio::time::sleep_until(until).await;
            } else {
                while tokio::time::Instant::now() < until {
                    if sock.write_all(CHUNK_EVENT.as_bytes()).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        "echo" => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let basic = b64.encode(format!("user:{key}"));
            let percent: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
            let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
            let headers = format!(
                "x-debug-auth: Bearer {}\r\nx-debug-basic: Basic {basic}\r\nx-debug-pct: {percent}\r\n\
                 x-debug-hex: {hex}\r\nset-cookie: s={key}\r\nx-api-key: {key}\r\nx-request-id: req-42\r\n",
                key.to_ascii_lowercase()
            );
            let _ = sock
                .write_all(answer("200 OK", &headers, &completion()).as_bytes())
                .await;
        }
        "err403" => {
            let body = json!({"error": {"message": format!("Incorrect API key provided: {}", key.to_ascii_lowercase()),
                                        "type": "invalid_request_error"}})
            .to_string();
            let _ = sock
                .write_all(answer("403 Forbidden", "", &body).as_bytes())
                .await;
        }
        "s101" => {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                )
                .await;
        }
        "s307" => {
            let _ = sock
                .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
        "reset" => {
            let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
            // Closed mid-head: the gateway sees the connection end before an answer.
            drop(sock);
            return;
        }
        _ => {
            let _ = sock
                .write_all(answer("200 OK", "", &completion()).as_bytes())
                .await;
        }
    }
    let _ = sock.shutdown().await;
}
