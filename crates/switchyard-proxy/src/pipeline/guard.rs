//! The guard phases: guardrails on the request (after admit and plan, before dispatch) and on the
//! answer (a JSON body here; streams in `guard_stream`). Detection and redaction are
//! `switchyard-guardrails`' (pure); this module finds what applies to the call (stage, scope),
//! calls webhooks (LiteLLM's Generic Guardrail API, bounded by `timeout_ms`, `on_error`), and records
//! each decision in the log row and `/metrics`, never the matched text.
//!
//! A block is a 400 `guardrail_blocked` in the client's own error shape, before anything went
//! upstream; a redaction rewrites only the text fields it changed (the body is re-encoded then).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::request_type::RequestType;
use switchyard_guardrails::webhook::{self, InputType, WebhookRequest, WebhookVerdict};
use switchyard_guardrails::{
    text_slots, Action, BodyShape, Findings, Guardrail, GuardrailSet, OnError, Scope, Stage,
};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::state::AppState;
use switchyard_translate::Protocol;

use super::dispatch::Served;
use super::{Admitted, GovernedPlan};
use crate::answer::ServedBody;

/// The largest webhook answer read.
const MAX_WEBHOOK_ANSWER: usize = 4 << 20;

/// The body shapes of a client protocol: (request, answer).
pub fn shapes(client: Protocol) -> (BodyShape, BodyShape) {
    match client {
        Protocol::Anthropic => (BodyShape::AnthropicMessages, BodyShape::AnthropicAnswer),
        Protocol::Gemini => (BodyShape::GeminiContents, BodyShape::GeminiAnswer),
        Protocol::OpenAi | Protocol::Bedrock => (BodyShape::OpenAiChat, BodyShape::OpenAiChatAnswer),
    }
}

/// The request body shape of a pass-through JSON endpoint, if guardrails read it.
pub fn request_shape(request_type: RequestType) -> Option<BodyShape> {
    match request_type {
        RequestType::Embedding => Some(BodyShape::Embeddings),
        RequestType::TextCompletion | RequestType::TextCompletionStream => Some(BodyShape::Completions),
        RequestType::Responses | RequestType::ResponsesStream => Some(BodyShape::ResponsesRequest),
        _ => None,
    }
}

/// The answer shape of a pass-through JSON endpoint, if guardrails read it (streams: `guard_stream`).
pub fn answer_shape(request_type: RequestType) -> Option<BodyShape> {
    match request_type {
        RequestType::TextCompletion | RequestType::TextCompletionStream => Some(BodyShape::CompletionsAnswer),
        RequestType::Responses | RequestType::ResponsesStream => Some(BodyShape::ResponsesAnswer),
        _ => None,
    }
}

/// The response stage on a served answer of `shape` when it is JSON (a stream is guarded in the
/// relay): the answer redacted, or the block.
pub async fn served(
    adm: &Admitted,
    mut served: Served,
    shape: Option<BodyShape>,
) -> Result<Served, ApiError> {
    let (Some(shape), ServedBody::Json(bytes)) = (shape, &served.body) else {
        return Ok(served);
    };
    let guarded = answer(adm, &served.provider, shape, bytes.clone()).await?;
    if guarded != *bytes {
        served.parts.headers.remove(http::header::CONTENT_ENCODING);
        served.parts.headers.remove(http::header::CONTENT_LENGTH);
        served.body = ServedBody::Json(guarded);
    }
    Ok(served)
}

/// The guardrails in force, or `None` when none is configured (the common case costs one load).
pub(crate) fn guardrails(adm: &Admitted) -> Option<Arc<GuardrailSet>> {
    let set = adm.state().governance.snapshot().guardrails.clone();
    (!set.is_empty()).then_some(set)
}

/// The caller's virtual key id, if any.
pub(crate) fn virtual_key_id(adm: &Admitted) -> Option<String> {
    let mut id = None;
    adm.observe(|d| id = d.governance_ids.as_ref().map(|g| g.0.clone()));
    id
}

/// Whether a request-stage guardrail may apply to the caller (on any provider). The cache does not
/// answer such calls: a stored answer must never let a request past a guardrail added since.
pub(crate) fn request_stage_may_apply(adm: &Admitted) -> bool {
    let Some(set) = guardrails(adm) else {
        return false;
    };
    let vk = virtual_key_id(adm);
    set.guardrails.iter().any(|g| {
        g.stage.covers(Stage::Request)
            && (g.scope.virtual_key_ids.is_empty()
                || vk
                    .as_deref()
                    .is_some_and(|id| g.scope.virtual_key_ids.iter().any(|v| v == id)))
    })
}

/// Whether a scope covers this call: its virtual key, and any of `providers` (the plan's targets on
/// the request stage, the provider that answered on the response stage).
pub(crate) fn in_scope<'a>(vk: Option<&'a str>, providers: &'a [&'a str]) -> impl Fn(&Scope) -> bool + 'a {
    move |scope: &Scope| {
        if providers.is_empty() {
            scope.applies(vk, None)
        } else {
            providers.iter().any(|p| scope.applies(vk, Some(p)))
        }
    }
}

/// The request stage: `Ok(Some(body))` when a guardrail rewrote the body, `Ok(None)` to send it as
/// it is, `Err` for a block (or an unreachable webhook whose `on_error` is `block`).
pub async fn request(
    adm: &Admitted,
    plan: &GovernedPlan<'_>,
    shape: BodyShape,
    body: impl FnOnce() -> Vec<u8>,
) -> Result<Option<Bytes>, ApiError> {
    let Some(set) = guardrails(adm) else {
        return Ok(None);
    };
    let vk = virtual_key_id(adm);
    let providers: Vec<&str> = plan
        .targets()
        .iter()
        .map(|t| t.provider.config.name.as_str())
        .collect();
    if adm.spec().stream {
        if let Some(refused) = stream_webhooks(adm, &set, in_scope(vk.as_deref(), &providers)) {
            return Err(adm.fail(refused));
        }
    }
    let applicable = set.applicable(Stage::Request, in_scope(vk.as_deref(), &providers));
    if applicable.is_empty() {
        return Ok(None);
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(&body()) else {
        return Ok(None);
    };
    let changed = check(adm, &set, &applicable, shape, &mut doc, InputType::Request).await?;
    Ok(changed.then(|| Bytes::from(serde_json::to_vec(&doc).expect("a JSON value serialises"))))
}

/// A webhook checks whole answers, never a stream as it is sent: on a streamed request a webhook of
/// the response stage (in scope for a provider of the plan) is a check that cannot be made, so its
/// `on_error` decides before anything goes upstream: `block` refuses the request (400
/// `guardrail_blocked`, the message says to send it without `stream`), `allow` lets the stream go
/// on unchecked by it (recorded as `allow_on_error`). `Some`: the refusal.
fn stream_webhooks(
    adm: &Admitted,
    set: &GuardrailSet,
    in_scope: impl Fn(&Scope) -> bool,
) -> Option<GatewayError> {
    for w in set.applicable(Stage::Response, in_scope).webhooks {
        let g = &set.guardrails[w];
        if g.on_error == OnError::Allow {
            note(adm.state(), adm, &g.name, "allow_on_error");
            continue;
        }
        note(adm.state(), adm, &g.name, "block_on_error");
        return Some(GatewayError::GuardrailBlocked {
            message: format!(
                "guardrail '{}' is a webhook that checks whole answers and blocks when it cannot check; \
                 a streamed answer cannot be checked by it: send the request without stream",
                g.name
            ),
        });
    }
    None
}

/// The request stage of chat on every surface: the client's body (`fast`: its top-level fields, with
/// `fallbacks` already taken out) in the client's protocol.
pub async fn chat_request(
    adm: &Admitted,
    plan: &GovernedPlan<'_>,
    fast: Option<&JsonObject<'_>>,
    raw: &Bytes,
) -> Result<Option<Bytes>, ApiError> {
    let shape = shapes(adm.spec().shape).0;
    request(adm, plan, shape, || {
        fast.map_or_else(|| raw.to_vec(), JsonObject::to_vec)
    })
    .await
}

/// The body to send after the request stage: the redacted one (re-read into its fields when the
/// route had them) or the client's.
pub fn rebind<'a>(
    redacted: Option<&'a Bytes>,
    raw: &'a Bytes,
    fast: Option<JsonObject<'a>>,
) -> (&'a Bytes, Option<JsonObject<'a>>) {
    match redacted {
        Some(body) => (body, fast.and_then(|_| JsonObject::parse(body).ok())),
        None => (raw, fast),
    }
}

/// The response stage on a whole JSON answer in the client's protocol: the answer, redacted if a
/// guardrail said so, or the block.
pub async fn answer(
    adm: &Admitted,
    provider: &str,
    shape: BodyShape,
    bytes: Bytes,
) -> Result<Bytes, ApiError> {
    let Some(set) = guardrails(adm) else {
        return Ok(bytes);
    };
    let vk = virtual_key_id(adm);
    let providers = [provider];
    let applicable = set.applicable(Stage::Response, in_scope(vk.as_deref(), &providers));
    if applicable.is_empty() {
        return Ok(bytes);
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(bytes);
    };
    let changed = check(adm, &set, &applicable, shape, &mut doc, InputType::Response).await?;
    Ok(if changed {
        Bytes::from(serde_json::to_vec(&doc).expect("a JSON value serialises"))
    } else {
        bytes
    })
}

/// Runs the detectors, then each webhook, over the body's texts; `true` when the texts changed.
async fn check(
    adm: &Admitted,
    set: &GuardrailSet,
    applicable: &switchyard_guardrails::Applicable,
    shape: BodyShape,
    doc: &mut Value,
    input_type: InputType,
) -> Result<bool, ApiError> {
    let findings = set.scan_texts(&applicable.off, text_slots(shape, doc));
    record(adm.state(), adm, set, &findings);
    if let Some(g) = findings.blocked_by {
        return Err(adm.fail(blocked(&set.guardrails[g], input_type, None)));
    }
    let mut changed = findings.redacted();
    for &w in &applicable.webhooks {
        let g = &set.guardrails[w];
        let texts: Vec<String> = text_slots(shape, doc).into_iter().map(|s| s.clone()).collect();
        if texts.is_empty() {
            continue;
        }
        let verdict = call_webhook(adm.state(), g, &texts, input_type, adm.spec().model.as_deref()).await;
        match verdict {
            Ok(WebhookVerdict::Allow) => {}
            Ok(WebhookVerdict::Blocked(reason)) => {
                note(adm.state(), adm, &g.name, "block");
                return Err(adm.fail(blocked(g, input_type, Some(&reason))));
            }
            Ok(WebhookVerdict::Intervened(new_texts)) => {
                note(adm.state(), adm, &g.name, "redact");
                for (slot, t) in text_slots(shape, doc).into_iter().zip(new_texts) {
                    *slot = t;
                }
                changed = true;
            }
            Err(reason) => {
                tracing::warn!(guardrail = %g.name, %reason, "guardrail webhook failed");
                if g.on_error == OnError::Allow {
                    note(adm.state(), adm, &g.name, "allow_on_error");
                    continue;
                }
                note(adm.state(), adm, &g.name, "block_on_error");
                return Err(adm.fail(GatewayError::GuardrailUnavailable {
                    message: format!(
                        "guardrail '{}' could not be checked ({reason}) and is set to block on errors",
                        g.name
                    ),
                }));
            }
        }
    }
    Ok(changed)
}

/// The block error: names the guardrail, never the text.
pub(crate) fn blocked(g: &Guardrail, input_type: InputType, reason: Option<&str>) -> GatewayError {
    let what = match input_type {
        InputType::Request => "request",
        InputType::Response => "answer",
    };
    let mut message = format!("The {what} was blocked by guardrail '{}'", g.name);
    if let Some(r) = reason {
        message.push_str(": ");
        message.push_str(r);
    }
    GatewayError::GuardrailBlocked { message }
}

/// Writes the findings to the call's log row and the metrics.
pub(crate) fn record(state: &AppState, adm: &Admitted, set: &GuardrailSet, findings: &Findings) {
    for (g, action) in &findings.matched {
        note(state, adm, &set.guardrails[*g].name, action_name(*action));
    }
}

pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Block => "block",
        Action::Redact => "redact",
        Action::Log => "log",
    }
}

fn note(state: &AppState, adm: &Admitted, name: &str, decision: &'static str) {
    state.metrics.guardrail(name, decision);
    adm.observe(|d| d.guardrails.push((name.to_owned(), decision)));
}

/// One webhook call, bounded by the guardrail's `timeout_ms` from connect to the last byte.
pub async fn call_webhook(
    state: &AppState,
    g: &Guardrail,
    texts: &[String],
    input_type: InputType,
    model: Option<&str>,
) -> Result<WebhookVerdict, String> {
    let url = g.url.as_deref().ok_or("no url")?;
    let body = WebhookRequest {
        texts,
        input_type,
        structured_messages: None,
        request_data: model.map(|m| serde_json::json!({"model": m})),
    };
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?))
        .map_err(|e| format!("bad url: {e}"))?;
    let call = async {
        let resp = state
            .upstream
            .send(&format!("guardrail {}", g.name), req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = http_body_util::Limited::new(resp.into_body(), MAX_WEBHOOK_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("it answered {status}"));
        }
        webhook::parse_answer(&bytes, texts.len())
    };
    tokio::time::timeout(Duration::from_millis(g.timeout_ms), call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", g.timeout_ms)))
}
