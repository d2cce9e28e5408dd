//! Both modes end to end against a small in-process server on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{http, idle, streams};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Answer {
    /// 200, chunked SSE: an empty-content role event, then `ticks` events `pace` apart, then [DONE].
    Sse { ticks: u32, pace: Duration },
    /// 500 with a JSON body (Content-Length).
    Error,
}

fn chunk(out: &mut Vec<u8>, data: &str) {
    out.extend_from_slice(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes());
}

/// Reads one request (head and Content-Length body); false at EOF.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = memmem::find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
        match s.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

async fn serve_one(mut s: TcpStream, answer: Answer) {
    let mut buf = Vec::new();
    while read_request(&mut s, &mut buf).await {
        let result = match answer {
            Answer::Error => {
                let body = r#"{"error":"no"}"#;
                let head = format!(
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                s.write_all(format!("{head}{body}").as_bytes()).await
            }
            Answer::Sse { ticks, pace } => sse(&mut s, ticks, pace).await,
        };
        if result.is_err() {
            return;
        }
    }
}

async fn sse(s: &mut TcpStream, ticks: u32, pace: Duration) -> std::io::Result<()> {
    let mut out =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    chunk(
        &mut out,
        "data: {\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}\n\n",
    );
    s.write_all(&out).await?;
    for i in 0..ticks {
        tokio::time::sleep(pace).await;
        let mut out = Vec::new();
        chunk(
            &mut out,
            &format!("data: {{\"delta\":{{\"content\":\"tick{i} \"}}}}\n\n"),
        );
        s.write_all(&out).await?;
    }
    let mut out = Vec::new();
    chunk(&mut out, "data: [DONE]\n\n");
    out.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&out).await
}

async fn server(answer: Answer) -> u16 {
    let listener = TcpListener::bind((http::HOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve_one(s, answer));
        }
    });
    port
}

fn request(port: u16) -> Arc<[u8]> {
    http::request_bytes(port, crate::DEFAULT_BODY, &[]).into()
}

#[tokio::test]
async fn streams_complete_with_ttft_after_the_first_tick() {
    let pace = Duration::from_millis(10);
    let port = server(Answer::Sse { ticks: 5, pace }).await;
    let plan = streams::Plan {
        port,
        conns: 50,
        stall: Duration::from_secs(1),
        timeout: Duration::from_secs(20),
    };
    let r = streams::run(&plan, request(port)).await;
    assert_eq!(
        (r.streams, r.completed, r.errors, r.stalled),
        (50, 50, 0, 0),
        "{r:?}"
    );
    assert!(r.ttft_p50_us >= 10_000 && r.ttft_p50_us <= r.ttft_p99_us, "{r:?}");
    assert!(r.ttft_max_us < 1_000_000, "{r:?}");
    assert!(r.max_gap_ms >= 10.0 && r.max_gap_ms < 1000.0, "{r:?}");
}

#[tokio::test]
async fn streams_count_errors_and_stalls() {
    let port = server(Answer::Error).await;
    let plan = streams::Plan {
        port,
        conns: 3,
        stall: Duration::from_secs(1),
        timeout: Duration::from_secs(20),
    };
    let r = streams::run(&plan, request(port)).await;
    assert_eq!((r.completed, r.errors, r.ttft_max_us), (0, 3, 0), "{r:?}");

    let port = server(Answer::Sse {
        ticks: 2,
        pace: Duration::from_millis(300),
    })
    .await;
    let plan = streams::Plan {
        port,
        conns: 4,
        stall: Duration::from_millis(100),
        timeout: Duration::from_secs(20),
    };
    let r = streams::run(&plan, request(port)).await;
    assert_eq!((r.completed, r.stalled), (4, 4), "{r:?}");

    // A stream cut by the deadline: an error, and its silence until then is a gap.
    let plan = streams::Plan {
        timeout: Duration::from_millis(450),
        ..plan
    };
    let r = streams::run(&plan, request(port)).await;
    assert_eq!((r.completed, r.errors, r.stalled), (0, 4, 4), "{r:?}");
}

#[tokio::test]
async fn idle_holds_every_connection() {
    let port = server(Answer::Sse {
        ticks: 1,
        pace: Duration::from_millis(1),
    })
    .await;
    let plan = idle::Plan {
        port,
        conns: 100,
        pid: std::process::id(),
        hold: Duration::ZERO,
        timeout: Duration::from_secs(20),
    };
    let r = idle::run(&plan, request(port)).await.unwrap();
    assert_eq!((r.conns, r.errors), (100, 0), "{r:?}");
    assert!(r.rss_before_kb > 0 && r.rss_held_kb > 0);

    let port = server(Answer::Error).await;
    let r = idle::run(&idle::Plan { port, ..plan }, request(port))
        .await
        .unwrap();
    assert_eq!((r.conns, r.errors), (100, 100), "{r:?}");
}

#[test]
fn refuses_bad_arguments() {
    use clap::Parser;
    let run = |argv: &[&str]| crate::run(crate::Args::try_parse_from(argv).unwrap());
    assert!(run(&["lg", "idle", "--port", "1", "--conns", "1"])
        .unwrap_err()
        .contains("--pid"));
    assert!(run(&["lg", "streams", "--port", "0"]).is_err());
    assert!(run(&["lg", "streams", "--port", "1", "--hold=-1"]).is_err());
    assert!(run(&["lg", "streams", "--port", "1", "--header", "bad"]).is_err());
    assert!(crate::Args::try_parse_from(["lg", "other", "--port", "1"]).is_err());
    assert!(crate::check_open_files(usize::MAX / 2).is_err() || crate::open_file_limit().is_none());
}
