//! The response guard on a relayed stream, in the client's protocol (OpenAI chat chunks, Anthropic
//! message events). Each choice (OpenAI) or content block (Anthropic) has its own `StreamScan`, which
//! holds back only text that could still become a match; held text is sent when the choice or block
//! ends. A block ends the stream with an error event (`guardrail_blocked`) and no part of the match.
//! Other stream formats (Gemini, the Responses API) pass unguarded; webhooks see JSON answers only.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use switchyard_guardrails::{GuardrailSet, StreamScan};
use switchyard_runtime::state::AppState;
use switchyard_translate::Protocol;

use super::finish::ObsHandle;
use super::guard;

pub struct StreamGuard {
    set: Arc<GuardrailSet>,
    off: Vec<bool>,
    client: Protocol,
    /// One scanner per choice / content block index.
    scans: Vec<(u64, StreamScan)>,
    /// Guardrail indexes already recorded.
    recorded: Vec<usize>,
    state: Arc<AppState>,
    obs: ObsHandle,
}

impl StreamGuard {
    /// The guard for a stream answered by `provider`, or `None` when no response guardrail applies.
    pub fn new(adm: &super::Admitted, provider: &str) -> Option<StreamGuard> {
        let client = adm.spec().shape;
        if !matches!(client, Protocol::OpenAi | Protocol::Anthropic) {
            return None;
        }
        let set = guard::guardrails(adm)?;
        let vk = guard::virtual_key_id(adm);
        let providers = [provider];
        let applicable = set.applicable(
            switchyard_guardrails::Stage::Response,
            guard::in_scope(vk.as_deref(), &providers),
        );
        if applicable.off.iter().all(|o| *o) {
            return None;
        }
        Some(StreamGuard {
            set,
            off: applicable.off,
            client,
            scans: Vec::new(),
            recorded: Vec::new(),
            state: adm.state().clone(),
            obs: adm.obs().clone(),
        })
    }

    /// The frames to send for one client frame; `Err(frame)`: the stream is blocked, send this error
    /// event and end.
    pub fn filter(&mut self, frame: Bytes) -> Result<Vec<Bytes>, Bytes> {
        let Some(payload) = data_of(&frame) else {
            return Ok(vec![frame]);
        };
        if payload == b"[DONE]" {
            let mut out = self.flush_all()?;
            out.push(frame);
            return Ok(out);
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(payload) else {
            return Ok(vec![frame]);
        };
        match self.client {
            Protocol::Anthropic => self.anthropic(frame, &mut v),
            _ => self.openai(frame, &mut v),
        }
    }

    fn scan(&mut self, index: u64) -> &mut StreamScan {
        let pos = match self.scans.iter().position(|(i, _)| *i == index) {
            Some(p) => p,
            None => {
                self.scans.push((index, self.set.stream(&self.off)));
                self.scans.len() - 1
            }
        };
        &mut self.scans[pos].1
    }

    /// Pushes text (and ends the scan when `end`); `Err` when a guardrail blocked.
    fn push(&mut self, index: u64, text: &str, end: bool) -> Result<String, Bytes> {
        let set = self.set.clone();
        let scan = self.scan(index);
        let mut out = scan.push(set.rules(), text);
        if end {
            out.push_str(&scan.finish(set.rules()));
        }
        let findings = scan.findings.clone();
        if end {
            self.scans.retain(|(i, _)| *i != index);
        }
        for (g, action) in &findings.matched {
            if !self.recorded.contains(g) {
                self.recorded.push(*g);
                let name = &self.set.guardrails[*g].name;
                let decision = guard::action_name(*action);
                self.state.metrics.guardrail(name, decision);
                self.obs.update(|d| d.guardrails.push((name.clone(), decision)));
            }
        }
        match findings.blocked_by {
            Some(g) => Err(self.block_frame(g)),
            None => Ok(out),
        }
    }

    fn openai(&mut self, frame: Bytes, v: &mut Value) -> Result<Vec<Bytes>, Bytes> {
        let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else {
            return Ok(vec![frame]);
        };
        let mut changed = false;
        for c in choices.iter_mut() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let end = c.get("finish_reason").is_some_and(|f| !f.is_null());
            let content = c
                .pointer("/delta/content")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if content.is_none() && !end {
                continue;
            }
            let out = self.push(index, content.as_deref().unwrap_or(""), end)?;
            if content.is_some() || !out.is_empty() {
                if let Some(delta) = c.get_mut("delta").and_then(Value::as_object_mut) {
                    delta.insert("content".into(), Value::String(out));
                    changed = true;
                }
            }
        }
        Ok(vec![if changed { sse(None, v) } else { frame }])
    }

    fn anthropic(&mut self, frame: Bytes, v: &mut Value) -> Result<Vec<Bytes>, Bytes> {
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str) {
            Some("content_block_delta") => {
                let Some(text) = v
                    .pointer("/delta/text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                else {
                    return Ok(vec![frame]);
                };
                let out = self.push(index, &text, false)?;
                v["delta"]["text"] = Value::String(out);
                Ok(vec![sse(Some("content_block_delta"), v)])
            }
            Some("content_block_stop") if self.scans.iter().any(|(i, _)| *i == index) => {
                let rest = self.push(index, "", true)?;
                let mut out = Vec::new();
                if !rest.is_empty() {
                    let delta = json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": rest}});
                    out.push(sse(Some("content_block_delta"), &delta));
                }
                out.push(frame);
                Ok(out)
            }
            _ => Ok(vec![frame]),
        }
    }

    /// Everything still held, at the end of the stream (OpenAI: a chunk per choice before `[DONE]`).
    fn flush_all(&mut self) -> Result<Vec<Bytes>, Bytes> {
        let indexes: Vec<u64> = self.scans.iter().map(|(i, _)| *i).collect();
        let mut out = Vec::new();
        for index in indexes {
            let rest = self.push(index, "", true)?;
            if !rest.is_empty() {
                let chunk = json!({"object": "chat.completion.chunk",
                    "choices": [{"index": index, "delta": {"content": rest}, "finish_reason": null}]});
                out.push(sse(None, &chunk));
            }
        }
        Ok(out)
    }

    fn block_frame(&self, g: usize) -> Bytes {
        let message = guard::blocked(
            &self.set.guardrails[g],
            switchyard_guardrails::webhook::InputType::Response,
            None,
        )
        .to_string();
        self.obs.update(|d| d.stream_error = Some(message.clone()));
        match self.client {
            Protocol::Anthropic => sse(
                Some("error"),
                &json!({"type": "error", "error": {"type": "invalid_request_error",
                    "code": "guardrail_blocked", "message": message}}),
            ),
            _ => sse(
                None,
                &json!({"error": {"message": message, "type": "invalid_request_error",
                    "param": null, "code": "guardrail_blocked"}}),
            ),
        }
    }
}

fn sse(event: Option<&str>, v: &Value) -> Bytes {
    match event {
        Some(e) => Bytes::from(format!("event: {e}\ndata: {v}\n\n")),
        None => Bytes::from(format!("data: {v}\n\n")),
    }
}

/// The `data:` payload of one SSE event.
fn data_of(frame: &[u8]) -> Option<&[u8]> {
    frame
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"data:"))
        .map(<[u8]>::trim_ascii)
}
