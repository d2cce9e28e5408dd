//! `idle`: CONNS keep-alive connections, one request each with the whole answer read, then all held
//! open and idle for HOLD seconds; the server's VmRSS before they were opened and while they are held.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::http::Conn;

/// Connections being opened at the same time (clients arriving in waves).
const WAVE: usize = 64;

/// What `idle` prints (the same keys as loadgen.py).
#[derive(Debug, Serialize)]
pub struct Report {
    pub conns: usize,
    pub errors: usize,
    pub rss_before_kb: u64,
    pub rss_held_kb: u64,
    pub added_kb: i64,
}

pub struct Plan {
    pub port: u16,
    pub conns: usize,
    pub pid: u32,
    pub hold: Duration,
    pub timeout: Duration,
}

/// VmRSS of `pid` in kB, from /proc/PID/status.
pub fn rss_kb(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no VmRSS in /proc/{pid}/status"),
            )
        })
}

/// Opens one connection, makes one request and reads the whole answer; the connection and status.
async fn open_one(port: u16, req: &[u8]) -> io::Result<(TcpStream, u16)> {
    let mut conn = Conn::connect(port).await?;
    conn.write_all(req).await?;
    let answer = conn.read_response(&mut ()).await?;
    if !answer.open {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the server closed the connection after the answer",
        ));
    }
    Ok((conn.into_stream(), answer.status))
}

pub async fn run(plan: &Plan, req: Arc<[u8]>) -> io::Result<Report> {
    let before = rss_kb(plan.pid)?;
    let deadline = Instant::now() + plan.timeout;
    let wave = Arc::new(Semaphore::new(WAVE));
    let mut tasks = JoinSet::new();
    for _ in 0..plan.conns {
        let (wave, req, port) = (wave.clone(), req.clone(), plan.port);
        tasks.spawn(async move {
            let _turn = wave.acquire_owned().await.map_err(io::Error::other)?;
            tokio::time::timeout_at(deadline.into(), open_one(port, &req))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))?
        });
    }
    let mut held = Vec::with_capacity(plan.conns);
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(io::Error::other).and_then(|r| r) {
            Ok((stream, status)) => {
                // As loadgen.py: an answer other than 200 is an error, its connection is held anyway.
                if status != 200 {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("status {status}"));
                }
                held.push(stream);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if let Some(first) = first_error {
        eprintln!("switchyard-loadgen idle: {errors} errors; first: {first}");
    }
    tokio::time::sleep(plan.hold).await;
    let held_kb = rss_kb(plan.pid)?;
    let conns = held.len();
    drop(held);
    Ok(Report {
        conns,
        errors,
        rss_before_kb: before,
        rss_held_kb: held_kb,
        added_kb: held_kb as i64 - before as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss() {
        assert!(rss_kb(std::process::id()).unwrap() > 0);
        assert!(rss_kb(u32::MAX).is_err());
    }
}
