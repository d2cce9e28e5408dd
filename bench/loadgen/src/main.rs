//! The benchmark's load shapes wrk cannot make, on 127.0.0.1 only (bench/scale.py runs it):
//!
//! `switchyard-loadgen idle --port P --conns 2000 --pid PID [--body JSON] [--hold S] [--header 'N: v']...`
//!     opens CONNS keep-alive connections (64 at a time), sends one request on each and reads the whole
//!     answer, keeps them all open and idle for HOLD seconds, and prints one JSON line with the
//!     server's VmRSS before and while they are held (from /proc/PID/status).
//!
//! `switchyard-loadgen streams --port P --conns 512 [--body JSON] [--stall-ms 1000] [--header 'N: v']...`
//!     starts CONNS streaming requests at once and reads every stream to its end; prints one JSON line
//!     with how many completed (a 200 ending with `data: [DONE]`), time to first token p50/p99/max, the
//!     longest gap between two reads and how many streams had a gap over STALL_MS.
//!
//! The HTTP/1.1 client is a few hundred lines over a plain `TcpStream` on a current-thread runtime,
//! so the load generator costs far less CPU than the proxies it measures (it shares a CPU with the
//! mock upstream when the benchmark pins processes).

mod http;
mod idle;
mod streams;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

const DEFAULT_BODY: &str =
    r#"{"model":"echo","messages":[{"role":"user","content":"Hello there, how are you"}],"max_tokens":16}"#;

/// File descriptors the process needs besides the connections (stdio, epoll, eventfd, ...).
const SPARE_FDS: u64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Many keep-alive connections held idle: the RSS they add to PID.
    Idle,
    /// Many SSE streams at once: completion, time to first token, stalls.
    Streams,
}

#[derive(Parser, Debug)]
#[command(
    name = "switchyard-loadgen",
    about = "Load shapes wrk cannot make (127.0.0.1 only): many idle keep-alive connections, many concurrent SSE streams",
    long_about = None
)]
struct Args {
    mode: Mode,
    /// Port on 127.0.0.1 (the only host the load generator talks to).
    #[arg(long)]
    port: u16,
    /// Connections (idle) or concurrent streams (streams).
    #[arg(long, default_value_t = 512)]
    conns: usize,
    /// idle: the server process whose VmRSS is read.
    #[arg(long, default_value_t = 0)]
    pid: u32,
    /// idle: seconds to hold the connections open before reading the RSS.
    #[arg(long, default_value_t = 2.0)]
    hold: f64,
    /// streams: a gap longer than this (ms) makes a stream stalled.
    #[arg(long, default_value_t = 1000.0)]
    stall_ms: f64,
    /// The JSON body POSTed to /v1/chat/completions.
    #[arg(long, default_value = DEFAULT_BODY)]
    body: String,
    /// An extra request header, 'Name: value' (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Give up after this many seconds: unfinished streams or connections count as errors.
    #[arg(long, default_value_t = 100.0)]
    timeout_s: f64,
}

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{name} must be a non-negative number"))
}

/// The soft limit on open files, from /proc/self/limits (None when unknown or unlimited).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails early, and says what to do, when the connections cannot all be opened. The limit is not
/// raised here (that takes `unsafe` or another dependency): bench/run.sh and bench/profile.sh raise
/// the soft limit to the hard one with `ulimit -n` for everything they start.
fn check_open_files(conns: usize) -> Result<(), String> {
    let need = conns as u64 + SPARE_FDS;
    match open_file_limit() {
        Some(limit) if limit < need => Err(format!(
            "{conns} connections need about {need} open files, the limit is {limit}: raise it (ulimit -n {need})"
        )),
        _ => Ok(()),
    }
}

fn run(args: Args) -> Result<String, String> {
    if args.port == 0 {
        return Err("--port must not be 0".into());
    }
    if args.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    if args.mode == Mode::Idle && args.pid == 0 {
        return Err("idle needs --pid (the server whose RSS is read)".into());
    }
    let hold = seconds("hold", args.hold)?;
    let stall = seconds("stall-ms", args.stall_ms / 1000.0)?;
    let timeout = seconds("timeout-s", args.timeout_s)?;
    let headers = args
        .headers
        .iter()
        .map(|h| http::parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    check_open_files(args.conns)?;
    let req: Arc<[u8]> = http::request_bytes(args.port, &args.body, &headers).into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let json = match args.mode {
        Mode::Idle => {
            let plan = idle::Plan {
                port: args.port,
                conns: args.conns,
                pid: args.pid,
                hold,
                timeout,
            };
            let report = rt
                .block_on(idle::run(&plan, req))
                .map_err(|e| format!("idle: {e}"))?;
            serde_json::to_string(&report)
        }
        Mode::Streams => {
            let plan = streams::Plan {
                port: args.port,
                conns: args.conns,
                stall,
                timeout,
            };
            serde_json::to_string(&rt.block_on(streams::run(&plan, req)))
        }
    };
    json.map_err(|e| format!("json: {e}"))
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
