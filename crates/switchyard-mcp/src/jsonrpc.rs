//! JSON-RPC 2.0 as MCP uses it: message builders, and [`Waiters`], the answers awaited on a link whose
//! replies arrive on a separate stream (stdio, SSE).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The protocol version the gateway speaks to upstreams and offers to its own clients.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Versions the gateway accepts from its clients (it answers with the client's if listed here).
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Why a request on a link failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LinkError {
    /// The connection failed or broke; the link is no longer usable.
    #[error("{0}")]
    Transport(String),
    /// The server answered with a JSON-RPC error.
    #[error("{message} (JSON-RPC error {code})")]
    Rpc { code: i64, message: String },
}

pub fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

pub fn notification(method: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": method})
}

pub fn notification_with(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// The `result` of an answer, or its error.
pub fn outcome(answer: Value) -> Result<Value, LinkError> {
    if let Some(e) = answer.get("error") {
        return Err(LinkError::Rpc {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error without a message")
                .to_owned(),
        });
    }
    answer
        .get("result")
        .cloned()
        .ok_or_else(|| LinkError::Transport("an answer without result or error".into()))
}

/// The numeric id of an answer (`result` or `error`, no `method`).
pub fn answer_id(msg: &Value) -> Option<u64> {
    if msg.get("method").is_some() {
        return None;
    }
    msg.get("id").and_then(Value::as_u64)
}

/// A reply to a request the server sent us: `ping` answered, anything else refused.
pub fn reply_to_server_request(msg: &Value) -> Option<Value> {
    let id = msg.get("id")?.clone();
    let method = msg.get("method")?.as_str()?;
    Some(if method == "ping" {
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
    } else {
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "not supported by the gateway"}})
    })
}

/// Requests waiting for their answers, by id. Once closed, every waiter (and every later one) fails.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<u64, oneshot::Sender<Result<Value, LinkError>>>>,
    closed: Mutex<Option<String>>,
    is_closed: AtomicBool,
}

impl Waiters {
    pub fn register(&self, id: u64) -> oneshot::Receiver<Result<Value, LinkError>> {
        let (tx, rx) = oneshot::channel();
        let closed = self.closed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match closed {
            Some(reason) => {
                let _ = tx.send(Err(LinkError::Transport(reason)));
            }
            None => {
                self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
            }
        }
        rx
    }

    pub fn forget(&self, id: u64) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Hands an answer to its waiter; false if nobody waits for it.
    pub fn deliver(&self, msg: Value) -> bool {
        let Some(id) = answer_id(&msg) else {
            return false;
        };
        let tx = self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        tx.is_some_and(|tx| tx.send(outcome(msg)).is_ok())
    }

    pub fn close(&self, reason: &str) {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_owned());
        self.is_closed.store(true, Ordering::SeqCst);
        let all: Vec<_> = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, tx) in all {
            let _ = tx.send(Err(LinkError::Transport(reason.to_owned())));
        }
    }

    /// Registers `id`, sends the request with `send`, and waits for its answer. The waiter goes when
    /// this future ends or is dropped (a call that timed out). `gone`: the error if the link closes.
    pub async fn exchange(
        &self,
        id: u64,
        send: impl std::future::Future<Output = Result<(), LinkError>>,
        gone: &str,
    ) -> Result<Value, LinkError> {
        let rx = self.register(id);
        let _forget = Forget(self, id);
        send.await?;
        rx.await
            .unwrap_or_else(|_| Err(LinkError::Transport(gone.to_owned())))
    }

    pub fn is_closed(&self) -> bool {
        self.is_closed.load(Ordering::SeqCst)
    }
}

/// Drops a waiter whose request was abandoned (a call that timed out and was dropped).
struct Forget<'a>(&'a Waiters, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// Reads an SSE event's `event` name and its `data` lines joined by newlines.
pub fn sse_fields(raw: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(raw);
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    (event, data.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_fields_join_data_lines() {
        let (e, d) = sse_fields(b"event: message\ndata: {\"a\":\ndata: 1}\n\n");
        assert_eq!(e.as_deref(), Some("message"));
        assert_eq!(d, "{\"a\":\n1}");
        assert_eq!(sse_fields(b": keep-alive\n\n"), (None, String::new()));
    }

    #[tokio::test]
    async fn waiters_deliver_by_id_and_fail_on_close() {
        let w = Waiters::default();
        let a = w.register(1);
        let b = w.register(2);
        assert!(w.deliver(json!({"jsonrpc": "2.0", "id": 1, "result": {"x": 1}})));
        assert!(!w.deliver(json!({"jsonrpc": "2.0", "id": 9, "result": {}})));
        assert_eq!(a.await.unwrap(), Ok(json!({"x": 1})));
        w.close("gone");
        assert_eq!(b.await.unwrap(), Err(LinkError::Transport("gone".into())));
        assert!(w.register(3).await.unwrap().is_err());
    }
}
