//! A child process speaking newline-delimited JSON-RPC on stdin/stdout. The child gets only the
//! variables `stdio_config.envs` names (plus `PATH`, `HOME` and `LANG` if the gateway has them), so the
//! gateway's own secrets stay out of it; its stderr is discarded; it is killed when the link goes.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::Value;
use switchyard_core::mcp::StdioConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use super::{Dead, LinkEnv};
use crate::jsonrpc::{self, LinkError, Waiters};

/// Variables every child gets when the gateway has them: a program cannot be found or run without.
const BASE_ENV: &[&str] = &["PATH", "HOME", "LANG"];

pub struct StdioLink {
    stdin: Arc<Mutex<ChildStdin>>,
    waiters: Arc<Waiters>,
    reader: tokio::task::JoinHandle<()>,
    _child: Child,
}

impl Drop for StdioLink {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl StdioLink {
    pub fn spawn(cfg: &StdioConfig, env: &LinkEnv, dead: Arc<Dead>) -> Result<StdioLink, LinkError> {
        let mut cmd = Command::new(&cfg.command);
        cmd.args(&cfg.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for name in BASE_ENV
            .iter()
            .copied()
            .chain(cfg.envs.iter().map(String::as_str))
        {
            if let Some(v) = (env.env)(name) {
                cmd.env(name, v);
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| LinkError::Transport(format!("could not start '{}': {e}", cfg.command)))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(LinkError::Transport("the child's pipes are missing".into()));
        };
        let stdin = Arc::new(Mutex::new(stdin));
        let waiters = Arc::new(Waiters::default());
        let reader = tokio::spawn(read_lines(stdout, stdin.clone(), waiters.clone(), dead));
        Ok(StdioLink {
            stdin,
            waiters,
            reader,
            _child: child,
        })
    }

    pub async fn send(&self, msg: &Value) -> Result<(), LinkError> {
        write_line(&self.stdin, msg).await
    }

    pub async fn request(&self, id: u64, msg: Value) -> Result<Value, LinkError> {
        self.waiters
            .exchange(id, self.send(&msg), "the server process exited")
            .await
    }
}

async fn write_line(stdin: &Mutex<ChildStdin>, msg: &Value) -> Result<(), LinkError> {
    let mut line = msg.to_string().into_bytes();
    line.push(b'\n');
    let mut w = stdin.lock().await;
    w.write_all(&line)
        .await
        .map_err(|e| LinkError::Transport(format!("the server process is gone: {e}")))?;
    w.flush()
        .await
        .map_err(|e| LinkError::Transport(format!("the server process is gone: {e}")))
}

async fn read_lines(
    stdout: ChildStdout,
    stdin: Arc<Mutex<ChildStdin>>,
    waiters: Arc<Waiters>,
    dead: Arc<Dead>,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(reply) = jsonrpc::reply_to_server_request(&msg) {
            let _ = write_line(&stdin, &reply).await;
        } else {
            waiters.deliver(msg);
        }
    }
    waiters.close("the server process exited");
    dead.mark();
}
