//! `streams`: CONNS streaming requests started at once, every stream read to its end.
//!
//! All connections are opened first (64 at a time, with a 1 ms pause between waves so that a server
//! sharing the CPU can accept them); then the requests are written one right after the other
//! (each stream's clock starts just before its request is written), and only then are the streams
//! read. Time to first token (TTFT) is the time from writing the request to the socket read that
//! brought the first non-empty `"content":"…"`; a stream's longest gap is the longest silence
//! between two reads, counted from the request (so a stream waiting long for its first byte counts
//! too, as in loadgen.py); a stream is complete when the answer is a 200 whose body ends with
//! `data: [DONE]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::memmem;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::http::{Conn, Observer};

/// What `streams` prints (the same keys as loadgen.py).
#[derive(Debug, Serialize)]
pub struct Report {
    pub streams: usize,
    pub completed: usize,
    pub errors: usize,
    pub wall_s: f64,
    pub ttft_p50_us: u64,
    pub ttft_p99_us: u64,
    pub ttft_max_us: u64,
    pub max_gap_ms: f64,
    pub stalled: usize,
}

pub struct Plan {
    pub port: u16,
    pub conns: usize,
    pub stall: Duration,
    pub timeout: Duration,
}

/// The outcome of one stream.
#[derive(Debug, Default)]
struct Outcome {
    completed: bool,
    ttft: Option<Duration>,
    max_gap: Duration,
    error: Option<String>,
}

impl Outcome {
    fn failed(error: impl ToString) -> Self {
        Outcome {
            error: Some(error.to_string()),
            ..Outcome::default()
        }
    }
}

const CONTENT: &[u8] = br#""content":""#;
const DONE: &[u8] = b"data: [DONE]";
/// How much of the body's end is kept to check for `data: [DONE]`.
const TAIL: usize = 64;

/// Finds the first `"content":"` that is not `"content":""` in a body fed piece by piece; an
/// occurrence split between two pieces (or whose next byte has not arrived yet) is found when
/// the piece that completes it arrives.
#[derive(Debug, Default)]
struct ContentScan {
    window: Vec<u8>,
}

impl ContentScan {
    /// Whether the body up to and including `data` holds non-empty content.
    fn push(&mut self, data: &[u8]) -> bool {
        self.window.extend_from_slice(data);
        let w = &self.window;
        let found =
            memmem::find_iter(w, CONTENT).any(|at| w.get(at + CONTENT.len()).is_some_and(|&b| b != b'"'));
        if !found {
            // An occurrence not yet decided lies within the last CONTENT.len() bytes.
            let undecided = w.len().saturating_sub(CONTENT.len());
            self.window.drain(..undecided);
        }
        found
    }
}

/// Watches one stream's answer arrive.
struct Probe {
    t0: Instant,
    last: Instant,
    max_gap: Duration,
    ttft: Option<Duration>,
    scan: ContentScan,
    tail: Vec<u8>,
}

impl Probe {
    fn new(t0: Instant) -> Self {
        Probe {
            t0,
            last: t0,
            max_gap: Duration::ZERO,
            ttft: None,
            scan: ContentScan::default(),
            tail: Vec::with_capacity(2 * TAIL),
        }
    }

    fn ends_with_done(&self) -> bool {
        self.tail.trim_ascii_end().ends_with(DONE)
    }
}

impl Observer for Probe {
    fn on_read(&mut self, at: Instant) {
        self.max_gap = self.max_gap.max(at.saturating_duration_since(self.last));
        self.last = at;
    }

    fn on_data(&mut self, at: Instant, data: &[u8]) {
        if self.ttft.is_none() && self.scan.push(data) {
            self.ttft = Some(at.saturating_duration_since(self.t0));
        }
        if data.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - TAIL..]);
        } else {
            self.tail.extend_from_slice(data);
            let extra = self.tail.len().saturating_sub(TAIL);
            self.tail.drain(..extra);
        }
    }
}

/// Writes the rest of the request (if the socket did not take it at once) and reads the answer.
async fn one_stream(
    mut conn: Conn,
    req: Arc<[u8]>,
    written: usize,
    t0: Instant,
    deadline: Instant,
) -> Outcome {
    let mut probe = Probe::new(t0);
    let answer = tokio::time::timeout_at(deadline.into(), async {
        if written < req.len() {
            conn.write_all(&req[written..]).await?;
        }
        conn.read_response(&mut probe).await
    })
    .await;
    let mut out = Outcome::default();
    match answer {
        Ok(Ok(a)) if a.status == 200 => {
            out.completed = probe.ends_with_done();
            if !out.completed {
                out.error = Some("the stream did not end with data: [DONE]".into());
            }
        }
        Ok(Ok(a)) => out.error = Some(format!("status {}", a.status)),
        Ok(Err(e)) => out.error = Some(e.to_string()),
        Err(_) => {
            // Silent until the deadline: that silence is a gap too.
            probe.on_read(deadline);
            out.error = Some("timed out".into());
        }
    }
    out.ttft = probe.ttft;
    out.max_gap = probe.max_gap;
    out
}

/// Connections opened together before the server gets a moment to accept them. Servers on a std
/// listener have a backlog of 128; a burst beyond it, while the server shares a CPU with the load
/// generator, drops SYNs that are retried only after 1 s. The requests still all go out together.
const CONNECT_WAVE: usize = 64;
const CONNECT_PAUSE: Duration = Duration::from_millis(1);
/// A connect slower than this was most likely a dropped SYN (the listen queue overflowed).
const SLOW_CONNECT: Duration = Duration::from_millis(500);

async fn connect_one(port: u16, deadline: Instant) -> (Result<Conn, String>, Duration) {
    let start = Instant::now();
    let conn = match tokio::time::timeout_at(deadline.into(), Conn::connect(port)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        Err(_) => Err("connect: timed out".to_owned()),
    };
    (conn, start.elapsed())
}

/// Opens `n` connections, [`CONNECT_WAVE`] at a time.
async fn connect_all(port: u16, n: usize, deadline: Instant) -> Vec<Result<Conn, String>> {
    let mut conns = Vec::with_capacity(n);
    let mut slow = 0;
    while conns.len() < n {
        let mut wave = JoinSet::new();
        for _ in 0..(n - conns.len()).min(CONNECT_WAVE) {
            wave.spawn(connect_one(port, deadline));
        }
        while let Some(joined) = wave.join_next().await {
            let (conn, took) = joined.unwrap_or_else(|e| (Err(format!("connect task: {e}")), Duration::ZERO));
            slow += usize::from(took > SLOW_CONNECT);
            conns.push(conn);
        }
        tokio::time::sleep(CONNECT_PAUSE).await;
    }
    if slow > 0 {
        eprintln!(
            "switchyard-loadgen streams: {slow} connects took over {SLOW_CONNECT:?} (listen queue overflow?)"
        );
    }
    conns
}

pub async fn run(plan: &Plan, req: Arc<[u8]>) -> Report {
    let start = Instant::now();
    let deadline = start + plan.timeout;
    let conns = connect_all(plan.port, plan.conns, deadline).await;
    let mut outcomes = Vec::with_capacity(plan.conns);
    // Every request goes out before any stream is read; nothing else happens between two writes.
    let mut started = Vec::with_capacity(plan.conns);
    for conn in conns {
        match conn {
            Ok(conn) => {
                let t0 = Instant::now();
                match conn.write_now(&req) {
                    Ok(written) => started.push((conn, written, t0)),
                    Err(e) => outcomes.push(Outcome::failed(format!("write: {e}"))),
                }
            }
            Err(e) => outcomes.push(Outcome::failed(e)),
        }
    }
    let mut tasks = JoinSet::new();
    for (conn, written, t0) in started {
        tasks.spawn(one_stream(conn, req.clone(), written, t0, deadline));
    }
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined.unwrap_or_else(|e| Outcome::failed(format!("stream task: {e}"))));
    }
    let wall = start.elapsed();
    report_errors(&outcomes);
    summarize(&outcomes, wall, plan.stall)
}

/// To stderr (stdout carries only the JSON line): how many streams failed and why.
fn report_errors(outcomes: &[Outcome]) {
    let mut failed = outcomes.iter().filter_map(|o| o.error.as_deref());
    if let Some(first) = failed.next() {
        eprintln!(
            "switchyard-loadgen streams: {} of {} streams failed; first: {first}",
            1 + failed.count(),
            outcomes.len()
        );
    }
}

/// loadgen.py's percentile: the sorted value at index round(p/100 * (n-1)), ties to even as
/// Python's `round`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let Some(last) = sorted.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    let at = (p / 100.0 * last as f64).round_ties_even() as usize;
    sorted[at.min(last)]
}

fn micros(d: Duration) -> u64 {
    (d.as_secs_f64() * 1e6).round() as u64
}

fn summarize(outcomes: &[Outcome], wall: Duration, stall: Duration) -> Report {
    let mut ttft: Vec<Duration> = outcomes.iter().filter_map(|o| o.ttft).collect();
    ttft.sort_unstable();
    let completed = outcomes.iter().filter(|o| o.completed).count();
    let max_gap = outcomes.iter().map(|o| o.max_gap).max().unwrap_or_default();
    Report {
        streams: outcomes.len(),
        completed,
        errors: outcomes.len() - completed,
        wall_s: (wall.as_secs_f64() * 1000.0).round() / 1000.0,
        ttft_p50_us: micros(percentile(&ttft, 50.0)),
        ttft_p99_us: micros(percentile(&ttft, 99.0)),
        ttft_max_us: micros(ttft.last().copied().unwrap_or_default()),
        max_gap_ms: (max_gap.as_secs_f64() * 10_000.0).round() / 10.0,
        stalled: outcomes.iter().filter(|o| o.max_gap > stall).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_scan_skips_empty_content() {
        let mut s = ContentScan::default();
        assert!(!s.push(br#"data: {"delta":{"role":"assistant","content":""}}"#));
        assert!(s.push(br#"data: {"delta":{"content":""}} data: {"delta":{"content":"tick1 "}}"#));
    }

    #[test]
    fn content_scan_across_pieces() {
        let body = br#"data: {"delta":{"content":""}}\n\ndata: {"delta":{"content":"hi"}}"#;
        // Decided by the piece that brings the byte after the second `"content":"` (the `h`).
        let decisive = body.len() - 5;
        assert_eq!(body[decisive], b'h');
        for cut in 0..=body.len() {
            let mut s = ContentScan::default();
            let found_in = if s.push(&body[..cut]) {
                1
            } else if s.push(&body[cut..]) {
                2
            } else {
                0
            };
            assert_eq!(found_in, if cut > decisive { 1 } else { 2 }, "cut at {cut}");
        }
    }

    #[test]
    fn content_scan_waits_for_the_next_byte() {
        let mut s = ContentScan::default();
        assert!(!s.push(b"{\"content\":\""));
        assert!(!s.push(b"\""));
        let mut s = ContentScan::default();
        assert!(!s.push(b"{\"content\":\""));
        assert!(s.push(b"x"));
    }

    #[test]
    fn probe_tail_and_gaps() {
        let t0 = Instant::now();
        let mut p = Probe::new(t0);
        p.on_read(t0 + Duration::from_millis(5));
        p.on_data(t0 + Duration::from_millis(5), br#"data: {"content":"a"}"#);
        p.on_read(t0 + Duration::from_millis(30));
        p.on_data(t0 + Duration::from_millis(30), &[b'x'; 100]);
        p.on_data(t0 + Duration::from_millis(30), b"data: [DONE]\n\n");
        assert_eq!(p.ttft, Some(Duration::from_millis(5)));
        assert_eq!(p.max_gap, Duration::from_millis(25));
        assert!(p.ends_with_done());
        assert_eq!(p.tail.len(), TAIL);
        p.on_data(t0, b"data: [DONE]x");
        assert!(!p.ends_with_done());
    }

    #[test]
    fn percentiles_as_python() {
        let xs: Vec<Duration> = (0..512).map(Duration::from_micros).collect();
        // round(0.5 * 511) = round(255.5) = 256, round(0.99 * 511) = round(505.89) = 506
        assert_eq!(percentile(&xs, 50.0), Duration::from_micros(256));
        assert_eq!(percentile(&xs, 99.0), Duration::from_micros(506));
        assert_eq!(percentile(&xs[..4], 50.0), Duration::from_micros(2)); // round(1.5) = 2
        assert_eq!(percentile(&xs[..6], 50.0), Duration::from_micros(2)); // round(2.5) = 2
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn summary() {
        let ok = |ms| Outcome {
            completed: true,
            ttft: Some(Duration::from_millis(ms)),
            max_gap: Duration::from_millis(ms + 1),
            error: None,
        };
        let out = [ok(20), ok(21), Outcome::failed("x"), ok(1500)];
        let r = summarize(&out, Duration::from_millis(2345), Duration::from_secs(1));
        assert_eq!((r.streams, r.completed, r.errors, r.stalled), (4, 3, 1, 1));
        assert_eq!((r.ttft_p50_us, r.ttft_max_us), (21_000, 1_500_000));
        assert_eq!(r.max_gap_ms, 1501.0);
        assert_eq!(r.wall_s, 2.345);
    }
}
