//! `/api/guardrails`: list, create, read, partial update, delete, and `POST /api/guardrails/{id}/test`
//! (a text checked against one guardrail, enabled or not). Writes go to the governance store and the
//! snapshot is reloaded, like every governance write; `config.json`'s `"guardrails"` goes through
//! the same functions ([`apply_file`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::config_file::{ConfigFile, SourceOfTruth};
use switchyard_core::ValidationError;
use switchyard_guardrails::webhook::{InputType, WebhookVerdict};
use switchyard_guardrails::{Guardrail, GuardrailInput, GuardrailSet, Kind, Stage};
use switchyard_runtime::body::{parse_json, read_limited};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::governance::Governance;
use switchyard_runtime::state::AppState;

const MAX_BODY: usize = 1024 * 1024;

type Answer = Result<Json<Value>, ApiError>;

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!("guardrail '{id}' not found"),
        code: Some("not_found"),
    }
}

fn name_taken(name: &str) -> GatewayError {
    GatewayError::Conflict(format!("a guardrail named '{name}' already exists"))
}

/// Inserts a guardrail and reloads the snapshot (`Conflict` for a taken id or name).
pub async fn insert_guardrail(gov: &Governance, g: &Guardrail) -> Result<(), GatewayError> {
    let _w = gov.lock_writes().await;
    let snap = gov.snapshot();
    if snap.guardrail_list.iter().any(|o| o.name == g.name) {
        return Err(name_taken(&g.name));
    }
    if snap.guardrail_list.iter().any(|o| o.id == g.id) {
        return Err(GatewayError::Conflict(format!(
            "a guardrail with id '{}' already exists",
            g.id
        )));
    }
    gov.store().insert_guardrail(g).await?;
    gov.reload().await
}

/// Changes a guardrail with `f` and reloads the snapshot.
pub async fn update_guardrail_with(
    gov: &Governance,
    id: &str,
    f: impl FnOnce(Guardrail) -> Result<Guardrail, GatewayError>,
) -> Result<Guardrail, GatewayError> {
    let _w = gov.lock_writes().await;
    let snap = gov.snapshot();
    let current = snap
        .guardrail_list
        .iter()
        .find(|g| g.id == id)
        .cloned()
        .ok_or_else(|| not_found(id))?;
    let updated = f(current)?;
    if snap
        .guardrail_list
        .iter()
        .any(|o| o.name == updated.name && o.id != id)
    {
        return Err(name_taken(&updated.name));
    }
    gov.store().update_guardrail(&updated).await?;
    gov.reload().await?;
    Ok(updated)
}

pub async fn list(State(state): State<Arc<AppState>>) -> Answer {
    let snap = state.governance.snapshot();
    Ok(Json(json!({"guardrails": snap.guardrail_list})))
}

pub async fn create(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: GuardrailInput = parse_json(&bytes)?;
    let g = input.create(|| uuid::Uuid::new_v4().to_string())?;
    insert_guardrail(&state.governance, &g).await?;
    Ok(Json(json!({"message": "guardrail created", "guardrail": g})))
}

pub async fn get(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let snap = state.governance.snapshot();
    let g = snap
        .guardrail_list
        .iter()
        .find(|g| g.id == id)
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({"guardrail": g})))
}

pub async fn update(State(state): State<Arc<AppState>>, Path(id): Path<String>, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: GuardrailInput = parse_json(&bytes)?;
    let g = update_guardrail_with(&state.governance, &id, |current| Ok(input.apply(current)?)).await?;
    Ok(Json(json!({"message": "guardrail updated", "guardrail": g})))
}

pub async fn delete(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    let gov = &state.governance;
    let _w = gov.lock_writes().await;
    if !gov.snapshot().guardrail_list.iter().any(|g| g.id == id) {
        return Err(not_found(&id).into());
    }
    gov.store().delete_guardrail(&id).await?;
    gov.reload().await?;
    Ok(Json(json!({"message": "guardrail deleted"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestInput {
    text: String,
    /// `request` (default) or `response`: what a webhook is told the text is.
    #[serde(default)]
    stage: Option<String>,
}

/// `POST /api/guardrails/{id}/test` `{"text": ...}`: what the guardrail would decide, and the text it
/// would send on (redacted) unless it blocks.
pub async fn test(State(state): State<Arc<AppState>>, Path(id): Path<String>, body: Body) -> Answer {
    let bytes = read_limited(body, MAX_BODY).await?;
    let input: TestInput = parse_json(&bytes)?;
    let input_type = match input.stage.as_deref() {
        None | Some("request") => InputType::Request,
        Some("response") => InputType::Response,
        Some(_) => return Err(ValidationError::new("stage", "must be request or response").into()),
    };
    let snap = state.governance.snapshot();
    let mut g = snap
        .guardrail_list
        .iter()
        .find(|g| g.id == id)
        .cloned()
        .ok_or_else(|| not_found(&id))?;
    g.enabled = true;
    g.stage = Stage::Both;
    g.scope = switchyard_guardrails::Scope::default();
    if g.kind == Kind::Webhook {
        let texts = [input.text];
        let verdict =
            switchyard_proxy::pipeline::guard::call_webhook(&state, &g, &texts, input_type, None).await;
        let [text] = texts;
        return Ok(Json(match verdict {
            Ok(WebhookVerdict::Allow) => json!({"decision": "allow", "output": text}),
            Ok(WebhookVerdict::Blocked(reason)) => json!({"decision": "block", "reason": reason}),
            Ok(WebhookVerdict::Intervened(t)) => json!({"decision": "redact", "output": t.first()}),
            Err(reason) => json!({"decision": format!("{}_on_error", on_error_name(&g)), "reason": reason}),
        }));
    }
    let set = GuardrailSet::build(vec![g]);
    let applicable = set.applicable(Stage::Request, |_| true);
    let mut text = input.text;
    let findings = set.scan_texts(&applicable.off, [&mut text]);
    let decision = match (findings.blocked_by, findings.matched.first()) {
        (Some(_), _) => "block",
        (None, Some((_, a))) => switchyard_proxy::pipeline::guard::action_name(*a),
        (None, None) => "allow",
    };
    let output = findings.blocked_by.is_none().then_some(text);
    Ok(Json(json!({"decision": decision, "output": output})))
}

fn on_error_name(g: &Guardrail) -> &'static str {
    match g.on_error {
        switchyard_guardrails::OnError::Allow => "allow",
        switchyard_guardrails::OnError::Block => "block",
    }
}

/// `config.json`'s `"guardrails"`: each entry validated like an API body (errors name
/// `guardrails[i].field`), its id its `id` or else its `name`. Under `source_of_truth: "split"` only
/// guardrails the store lacks are created; under `"config.json"` stored ones are made equal to the
/// file. Guardrails not in the file are left alone. Returns how many changes were made.
pub async fn apply_file(gov: &Governance, file: &ConfigFile) -> Result<usize, GatewayError> {
    let mut applied = 0;
    for (i, entry) in file.guardrails.iter().enumerate() {
        let at = |e: ValidationError| ValidationError::new(format!("guardrails[{i}].{}", e.field), e.message);
        let mut input: GuardrailInput = serde_json::from_value(entry.clone())
            .map_err(|e| ValidationError::new(format!("guardrails[{i}]"), e.to_string()))?;
        let id = input
            .id
            .clone()
            .or_else(|| input.name.clone())
            .unwrap_or_default();
        input.id = Some(id.clone());
        let wanted = input.create(|| id.clone()).map_err(at)?;
        let stored = gov.snapshot().guardrail_list.iter().find(|g| g.id == id).cloned();
        match stored {
            None => insert_guardrail(gov, &wanted).await?,
            Some(s) if s != wanted && file.source_of_truth == SourceOfTruth::File => {
                update_guardrail_with(gov, &id, |_| Ok(wanted)).await?;
            }
            Some(_) => continue,
        }
        applied += 1;
    }
    Ok(applied)
}
