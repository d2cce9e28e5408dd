//! `GET /api/routing/explain?model=X[&route=v1|openai|anthropic|genai][&fallbacks=p/m,...]` (Switchyard
//! extension, read-only): where a request for `model` would go, as the gateway's own planner sees it
//! right now.
//!
//! The answer is the ordered plan of [`RuntimeConfig::plan`](switchyard_core::routing::RuntimeConfig::plan)
//! with each step explained: why it is there (`named` for `provider/model`, `alias` when a key maps the
//! name to another upstream id, `listed` when a key lists the model, `discovered` for a `*` key of a
//! provider whose discovered model list has it, `wildcard` for a `*` key, `request_fallback`, `configured_fallback` with the provider
//! whose chain added it), the keys that could serve it with their weights and the share of traffic each
//! gets, and the health of provider and keys. Bare models served by several providers of one tier are
//! ordered by a weighted draw per request, so the planner is run [`DRAWS`] times with a fixed seed: the
//! plan shown is the most frequent order, and `primary_share` says how often each provider came first.
//! A model that cannot be routed answers `200` with `routable: false` and the routing error's message
//! (which says what to configure); only a missing `model` or an unknown `route` is a `400`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchyard_core::discovery::ModelLists;
use switchyard_core::model_ref::{parse_model, ModelRef};
use switchyard_core::routing::{RuntimeKey, RuntimeProvider, Specificity, Target};

use switchyard_proxy::ingress::Ingress;
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::runtime_state::health::{HealthView, Scope};
use switchyard_runtime::state::AppState;

/// How often the planner is run to measure how weighted draws order the targets.
pub const DRAWS: usize = 4000;
/// Fixed, so the same config always gets the same explanation.
const SEED: u64 = 0x5717_c4a2_d000_0001;

#[derive(Deserialize)]
pub struct ExplainQuery {
    model: Option<String>,
    route: Option<String>,
    /// Comma-separated `provider/model` entries, as a request's `fallbacks` field.
    fallbacks: Option<String>,
}

#[derive(Serialize)]
struct KeyStep {
    id: String,
    name: String,
    weight: f64,
    /// `listed` or `wildcard`.
    matches: &'static str,
    /// Whether the key takes traffic now (enabled, resolvable secret, breaker not open).
    available: bool,
    /// Share of this step's requests the key gets by weight among the available keys.
    share: f64,
    health: HealthView,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

#[derive(Serialize)]
struct Step {
    provider: String,
    model: String,
    /// `named`, `listed`, `wildcard`, `request_fallback` or `configured_fallback`.
    reason: &'static str,
    /// For `configured_fallback`: the provider whose fallback chain added this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_of: Option<String>,
    /// How often (0..1) this step was the first target over all draws; only for the first step of each
    /// provider that can be first.
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_share: Option<f64>,
    wire: &'static str,
    base_url: String,
    health: HealthView,
    /// Keys that could serve this step (serving the model and enabled); empty means the step will be
    /// skipped with "no usable key".
    keys: Vec<KeyStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

fn ingress_of(route: Option<&str>) -> Result<(Ingress, &'static str), GatewayError> {
    match route.unwrap_or("v1").trim_matches('/') {
        "" | "v1" => Ok((Ingress::Unified, "v1")),
        "openai" | "openai/v1" => Ok((Ingress::OpenAi, "openai")),
        "anthropic" | "anthropic/v1" => Ok((Ingress::Anthropic, "anthropic")),
        "genai" | "genai/v1beta" => Ok((Ingress::Gemini, "genai")),
        other => Err(GatewayError::BadRequest {
            message: format!("route '{other}' is not one of v1, openai, anthropic, genai"),
            param: Some("route".into()),
        }),
    }
}

pub async fn explain(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| GatewayError::BadRequest {
        message: e.body_text(),
        param: None,
    })?;
    let model = q.model.as_deref().map(str::trim).unwrap_or_default();
    if model.is_empty() {
        return Err(GatewayError::BadRequest {
            message: "give the model to explain: /api/routing/explain?model=gpt-oss-120b".into(),
            param: Some("model".into()),
        }
        .into());
    }
    let (ingress, route) = ingress_of(q.route.as_deref())?;
    let fallbacks: Vec<String> = q
        .fallbacks
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let snap = state.config.snapshot();
    let lists = state.model_lists.load();
    let native = ingress.native_provider();
    let head = json!({
        "model": model,
        "route": route,
        "native_provider": native,
        "request_fallbacks": fallbacks,
        "draws": DRAWS,
    });
    let mut rng = fastrand::Rng::with_seed(SEED);
    // Draw the plan repeatedly; remember each distinct order and how often providers came first.
    let mut orders: Vec<(Vec<Target<'_>>, usize)> = Vec::new();
    let mut first: HashMap<String, usize> = HashMap::new();
    for _ in 0..DRAWS {
        let plan = match snap.plan_in(model, native, &fallbacks, &lists, &mut rng) {
            Ok(p) => p,
            Err(e) => {
                let mut body = head;
                body["routable"] = json!(false);
                body["error"] = json!({"message": e.to_string()});
                body["plan"] = json!([]);
                return Ok(Json(body).into_response());
            }
        };
        if let Some(f) = plan.first() {
            *first.entry(f.provider.config.name.to_string()).or_default() += 1;
        }
        let same = |o: &Vec<Target<'_>>| {
            o.len() == plan.len() && o.iter().zip(&plan).all(|(a, b)| same_target(a, b))
        };
        match orders.iter_mut().find(|(o, _)| same(o)) {
            Some((_, n)) => *n += 1,
            None => orders.push((plan, 1)),
        }
    }
    // The most frequent order (the first seen among equals).
    let best = orders
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, n))| (*n, std::cmp::Reverse(*i)))
        .map(|(i, _)| i)
        .unwrap_or_default();
    let plan = &orders[best].0;
    let resolved = snap.resolve_in(model, native, &lists, &mut fastrand::Rng::with_seed(SEED));
    let resolved: Vec<Target<'_>> = resolved.unwrap_or_default();
    let asked = match parse_model(model, |p| snap.is_known_provider(p)) {
        ModelRef::Qualified { .. } => None,
        ModelRef::Bare(m) => Some(m),
    };
    let why = Why {
        resolved: &resolved,
        asked,
        lists: &lists,
        request_fallbacks: &fallbacks,
    };
    let mut steps: Vec<Step> = Vec::with_capacity(plan.len());
    let mut seen: Vec<String> = Vec::new();
    for (i, t) in plan.iter().enumerate() {
        let name = t.provider.config.name.to_string();
        let (reason, fallback_of) = reason_of(&plan[..i], t, &why);
        let primary_share = (!seen.contains(&name))
            .then(|| first.get(&name).map(|n| *n as f64 / DRAWS as f64))
            .flatten();
        seen.push(name.clone());
        steps.push(step(&state, t, reason, fallback_of, primary_share));
    }
    let mut body = head;
    body["routable"] = json!(true);
    body["varies"] = json!(orders.len() > 1);
    body["orders_seen"] = json!(orders.len());
    body["plan"] = serde_json::to_value(&steps).unwrap_or_default();
    Ok(Json(body).into_response())
}

fn same_target(a: &Target<'_>, b: &Target<'_>) -> bool {
    std::ptr::eq(a.provider, b.provider) && a.model == b.model
}

/// What a step's reason is judged by.
struct Why<'a> {
    resolved: &'a [Target<'a>],
    /// The bare model asked for; `None` for `provider/model`.
    asked: Option<&'a str>,
    lists: &'a ModelLists,
    request_fallbacks: &'a [String],
}

/// Why a plan step is there. Steps are matched against the resolved targets first, then the request's
/// fallbacks, and otherwise come from a configured chain of an earlier step.
fn reason_of(before: &[Target<'_>], t: &Target<'_>, why: &Why<'_>) -> (&'static str, Option<String>) {
    if why.resolved.iter().any(|r| same_target(r, t)) {
        let Some(asked) = why.asked else {
            return ("named", None);
        };
        let aliased = t.provider.keys.iter().filter(|k| k.usable()).any(|k| {
            k.config
                .aliases
                .iter()
                .any(|(a, target)| target == t.model && a.eq_ignore_ascii_case(asked))
        });
        let by_keys = t.provider.serving(asked).map(|(s, _)| s);
        return match by_keys.and_then(|s| t.provider.discovered(s, asked, why.lists)) {
            _ if aliased && t.model != asked => ("alias", None),
            Some(Specificity::Exact) => ("listed", None),
            Some(Specificity::Discovered) => ("discovered", None),
            _ => ("wildcard", None),
        };
    }
    let request_fallbacks = why.request_fallbacks;
    let name = t.provider.config.name.as_str();
    if request_fallbacks
        .iter()
        .any(|f| f.split_once('/') == Some((name, t.model)))
    {
        return ("request_fallback", None);
    }
    let chain_of = before.iter().rev().find(|b| {
        b.provider
            .config
            .fallbacks
            .iter()
            .any(|f| match f.split_once('/') {
                Some((p, m)) => p == name && m == t.model,
                None => f == name && b.model == t.model,
            })
    });
    (
        "configured_fallback",
        chain_of.map(|b| b.provider.config.name.to_string()),
    )
}

fn key_available(state: &AppState, p: &RuntimeProvider, k: &RuntimeKey) -> bool {
    k.usable()
        && state
            .health
            .is_available(Scope::Key(&k.config.id), &p.config.circuit_breaker)
}

fn step(
    state: &AppState,
    t: &Target<'_>,
    reason: &'static str,
    fallback_of: Option<String>,
    primary_share: Option<f64>,
) -> Step {
    let p = t.provider;
    let serving: Vec<(&RuntimeKey, Specificity)> = p
        .keys
        .iter()
        .filter(|k| k.config.enabled)
        .filter_map(|k| k.serves(t.model).map(|s| (k, s)))
        .collect();
    let available: Vec<bool> = serving.iter().map(|(k, _)| key_available(state, p, k)).collect();
    let weights: Vec<f64> = serving
        .iter()
        .zip(&available)
        .map(|((k, _), a)| if *a { k.config.weight.max(0.0) } else { 0.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    let n_available = available.iter().filter(|a| **a).count();
    let keys: Vec<KeyStep> = serving
        .iter()
        .zip(&available)
        .zip(&weights)
        .map(|(((k, s), a), w)| KeyStep {
            id: k.config.id.clone(),
            name: k.config.name.clone(),
            weight: k.config.weight,
            matches: match s {
                Specificity::Exact => "listed",
                Specificity::Discovered => "discovered",
                Specificity::Wildcard => "wildcard",
            },
            available: *a,
            // Weighted draw over the available keys; all-zero weights mean a uniform choice.
            share: match (*a, total > 0.0) {
                (false, _) => 0.0,
                (true, true) => w / total,
                (true, false) => 1.0 / n_available as f64,
            },
            health: state.health.view(Scope::Key(&k.config.id)),
            problem: k.problem.clone(),
        })
        .collect();
    let note = if keys.is_empty() {
        Some(format!(
            "no enabled key of '{}' serves '{}': this step is skipped",
            p.config.name, t.model
        ))
    } else if n_available == 0 {
        Some("every key serving this model is unusable or ejected right now: this step is skipped".into())
    } else if !state
        .health
        .is_available(Scope::Provider(p.config.name.as_str()), &p.config.circuit_breaker)
    {
        Some("the provider is ejected by its circuit breaker right now: this step is skipped".into())
    } else {
        None
    };
    Step {
        provider: p.config.name.to_string(),
        model: t.model.to_owned(),
        reason,
        fallback_of,
        primary_share,
        wire: p.config.wire().as_str(),
        base_url: p.base_url.clone(),
        health: state.health.view(Scope::Provider(p.config.name.as_str())),
        keys,
        note,
    }
}
