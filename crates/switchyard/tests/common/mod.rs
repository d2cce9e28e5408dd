//! The real `switchyard` binary as a child process: started on an ephemeral port with its log (stderr)
//! in a file, found by its "listening" line, stopped with SIGTERM, and looked at from `/proc`.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running gateway process whose stderr (the log) goes to a file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub port: u16,
}

pub fn base_command(app_dir: &Path, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHYARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["--port", "0", "--log-format", "json", "--app-dir"])
        .arg(app_dir)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

pub fn read(path: &Path) -> String {
    let mut s = String::new();
    std::fs::File::open(path).unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Starts the gateway and waits for its "listening" line.
pub fn start(app_dir: &Path, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut child = base_command(app_dir, log, args, env).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = read(log);
        if let Some(line) = text.lines().find(|l| l.contains("switchyard listening")) {
            let v: Value = serde_json::from_str(line).unwrap();
            let addr = v["addr"].as_str().unwrap();
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            return Proc {
                child,
                log: log.to_owned(),
                port,
            };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("switchyard exited ({status}) before listening:\n{text}");
        }
        assert!(Instant::now() < deadline, "switchyard did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Proc {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// SIGTERM, wait for a clean exit, return the whole log.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        read(&self.log)
    }
}

impl Proc {
    /// A line of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`: the peak RSS).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
