//! Governance at the edges: the live set of virtual keys, teams, customers and price overrides
//! ([`Governance`], one write path like `ConfigService`), the usage counters, and the two hooks every
//! inference route passes through:
//!
//! 1. [`gate`], called by the `observe` middleware before the handler: finds the virtual key,
//!    rejects missing/unknown/inactive/expired keys, and atomically checks and reserves every limit of
//!    the key, its team and its customer (requests, tokens, budgets, concurrency) with an estimate
//!    taken from the body. The [`Admission`] goes into the request's `ObsHandle`.
//! 2. [`plan`], which every handler calls instead of `RuntimeConfig::plan`: it drops targets the key's
//!    `provider_configs` do not allow (403 when none is left), reserves the primary provider config's own
//!    limits (a provider config that is exhausted is dropped from the plan, Bifrost's rule), and hands
//!    dispatch the key ids the VK may use.
//!
//! When the response body has been sent (or dropped), the observer calls [`settle`]: the real cost (from
//! the usage and [`Governance::price`]) replaces the estimate, tokens likewise, and the concurrency slot
//! is released.

pub mod api;
pub mod counters;
pub mod file;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use switchyard_core::governance::admission::{limit_checks, settlement, usd_to_nanos};
use switchyard_core::governance::estimate::{estimate, output_cap};
use switchyard_core::governance::{
    hash_vk_value, vk_from_headers, Denial, Estimate, Group, Level, LevelLimits, LimitCheck, VirtualKey,
};
use switchyard_core::pricing::Prices;
use switchyard_core::routing::{RuntimeConfig, RuntimeProvider, Target};
use switchyard_store::{GovernanceData, GovernanceStore, PriceOverride, StoreError};
use switchyard_translate::Protocol;

use crate::error::{ApiError, ErrorContext, GatewayError};
use crate::observe::ObsHandle;
use crate::state::AppState;
use counters::Counters;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The client setting that makes a virtual key mandatory on inference routes.
pub const CLIENT_CONFIG: &str = "client_config";

/// Everything governance decides with, swapped as a whole after each change.
#[derive(Default)]
pub struct GovSnapshot {
    pub keys: Vec<Arc<VirtualKey>>,
    by_hash: HashMap<String, Arc<VirtualKey>>,
    pub teams: Vec<Group>,
    pub customers: Vec<Group>,
    pub price_overrides: Vec<PriceOverride>,
    prices: HashMap<(String, String), Prices>,
    pub enforce_auth_on_inference: bool,
}

impl GovSnapshot {
    fn build(data: GovernanceData, enforce: bool) -> GovSnapshot {
        let keys: Vec<Arc<VirtualKey>> = data.virtual_keys.into_iter().map(Arc::new).collect();
        let by_hash = keys.iter().map(|k| (k.value_hash.clone(), k.clone())).collect();
        let prices = data
            .price_overrides
            .iter()
            .map(|p| {
                (
                    (p.provider.clone(), p.model.clone()),
                    Prices {
                        input: p.input_cost_per_million_tokens / 1e6,
                        output: p.output_cost_per_million_tokens / 1e6,
                        cache_read: p.cache_read_cost_per_million_tokens.map(|c| c / 1e6),
                        cache_write: p.cache_write_cost_per_million_tokens.map(|c| c / 1e6),
                    },
                )
            })
            .collect();
        GovSnapshot {
            keys,
            by_hash,
            teams: data.teams,
            customers: data.customers,
            price_overrides: data.price_overrides,
            prices,
            enforce_auth_on_inference: enforce,
        }
    }

    pub fn key(&self, id: &str) -> Option<&Arc<VirtualKey>> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn team(&self, id: &str) -> Option<&Group> {
        self.teams.iter().find(|g| g.id == id)
    }

    pub fn customer(&self, id: &str) -> Option<&Group> {
        self.customers.iter().find(|g| g.id == id)
    }
}

pub struct Governance {
    store: Arc<dyn GovernanceStore>,
    pub counters: Arc<dyn Counters>,
    snapshot: ArcSwap<GovSnapshot>,
    write_lock: tokio::sync::Mutex<()>,
}

fn enforce_flag(setting: Option<&serde_json::Value>) -> bool {
    setting
        .and_then(|v| v.get("enforce_auth_on_inference"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

impl Governance {
    /// Loads the governance data, and restores persisted counters when the counters need it.
    pub async fn open(
        store: Arc<dyn GovernanceStore>,
        counters: Arc<dyn Counters>,
    ) -> Result<Governance, StoreError> {
        let data = store.load_governance().await?;
        let enforce = enforce_flag(store.get_setting(CLIENT_CONFIG).await?.as_ref());
        counters.restore(store.load_counters(now_ms()).await?);
        Ok(Governance {
            store,
            counters,
            snapshot: ArcSwap::from_pointee(GovSnapshot::build(data, enforce)),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn snapshot(&self) -> Arc<GovSnapshot> {
        self.snapshot.load_full()
    }

    pub fn store(&self) -> &Arc<dyn GovernanceStore> {
        &self.store
    }

    /// Serialises writes: take it, change the store, then `reload`.
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }

    /// Rebuilds the snapshot from what the store holds (the in-memory view never runs ahead of it).
    pub async fn reload(&self) -> Result<(), GatewayError> {
        let data = self.store.load_governance().await?;
        let enforce = enforce_flag(self.store.get_setting(CLIENT_CONFIG).await?.as_ref());
        self.snapshot.store(Arc::new(GovSnapshot::build(data, enforce)));
        Ok(())
    }

    /// The price of `model` at provider `p`: the operator's override first, then the embedded list
    /// price (built-in providers at their own endpoint only). `None` = unknown, reported as such.
    pub fn price(&self, p: &RuntimeProvider, model: &str) -> Option<Prices> {
        let snap = self.snapshot.load();
        snap.prices
            .get(&(p.config.name.to_string(), model.to_owned()))
            .copied()
            .or_else(|| crate::chat::list_price(p, model))
    }

    /// Reloads from the store whenever the config store reports another replica's change (its change
    /// feed covers the governance tables too). Ends when the notices end.
    pub fn follow(self: &Arc<Self>, mut notices: tokio::sync::watch::Receiver<u64>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while notices.changed().await.is_ok() {
                let Some(g) = weak.upgrade() else { return };
                if let Err(e) = g.reload().await {
                    tracing::warn!(error = %e, "governance reload after a change notice failed");
                }
            }
        });
    }

    /// Writes the counters to the store if they changed (memory counters only).
    pub async fn flush(&self) {
        if let Some(rows) = self.counters.export(now_ms()) {
            if let Err(e) = self.store.save_counters(&rows).await {
                tracing::warn!(error = %e, "could not persist governance usage counters");
            }
        }
    }

    /// Persists the counters every `every` until the process ends.
    pub fn spawn_flusher(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(g) = weak.upgrade() else { return };
                g.flush().await;
            }
        });
    }

    /// The hierarchy above a key, as limit levels (key, team, customer).
    pub fn levels<'a>(&self, snap: &'a GovSnapshot, vk: &'a VirtualKey) -> Vec<LevelLimits<'a>> {
        let mut levels = vec![LevelLimits {
            level: Level::VirtualKey,
            id: &vk.id,
            name: &vk.name,
            budgets: &vk.budgets,
            rate_limit: vk.rate_limit.as_ref(),
            max_concurrent: vk.max_concurrent_requests,
            anchor_ms: vk.created_at_ms,
        }];
        let team = vk.team_id.as_deref().and_then(|t| snap.team(t));
        if let Some(t) = team {
            levels.push(group_level(Level::Team, t));
        }
        let customer_id = vk
            .customer_id
            .as_deref()
            .or(team.and_then(|t| t.customer_id.as_deref()));
        if let Some(c) = customer_id.and_then(|c| snap.customer(c)) {
            levels.push(group_level(Level::Customer, c));
        }
        levels
    }
}

fn group_level(level: Level, g: &Group) -> LevelLimits<'_> {
    LevelLimits {
        level,
        id: &g.id,
        name: &g.name,
        budgets: &g.budgets,
        rate_limit: g.rate_limit.as_ref(),
        max_concurrent: None,
        anchor_ms: g.created_at_ms,
    }
}

/// A request admitted under a virtual key: who it is charged to and what it reserved.
pub struct Admission {
    pub vk: Arc<VirtualKey>,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    pub estimate: Estimate,
    reserved: Mutex<Vec<LimitCheck>>,
    settled: AtomicBool,
}

impl Admission {
    fn reserve(&self, checks: Vec<LimitCheck>) {
        self.reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(checks);
    }
}

/// The allowed provider key ids per provider, for dispatch's key choice.
#[derive(Debug, Default)]
pub struct KeyRestriction {
    by_provider: HashMap<String, Vec<String>>,
}

impl KeyRestriction {
    pub fn allows(&self, provider: &str, key_id: &str) -> bool {
        self.by_provider
            .get(provider)
            .is_none_or(|ids| ids.iter().any(|k| k == "*" || k == key_id))
    }
}

/// The plan a governed request may use.
pub struct GovernedPlan<'a> {
    pub targets: Vec<Target<'a>>,
    pub key_restriction: Option<Arc<KeyRestriction>>,
}

fn client_protocol(route: &str) -> Protocol {
    if route.starts_with("/anthropic") {
        Protocol::Anthropic
    } else if route.starts_with("/genai") {
        Protocol::Gemini
    } else {
        Protocol::OpenAi
    }
}

fn native_provider(route: &str) -> Option<&'static str> {
    if route.starts_with("/anthropic") {
        Some("anthropic")
    } else if route.starts_with("/genai") {
        Some("gemini")
    } else if route.starts_with("/openai") {
        Some("openai")
    } else {
        None
    }
}

/// The model a request names: the body's `model`, or the path's for Gemini routes.
fn requested_model(path: &str, body: &[u8]) -> Option<String> {
    if let Some(rest) = path.split("/models/").nth(1) {
        if path.starts_with("/genai") {
            return Some(rest.rsplit_once(':').map_or(rest, |(m, _)| m).to_owned());
        }
    }
    #[derive(serde::Deserialize)]
    struct ModelOnly {
        model: Option<String>,
    }
    serde_json::from_slice::<ModelOnly>(body).ok()?.model
}

/// The middleware hook (see the module docs). Returns the request to run, or the rejection.
pub async fn gate(state: &Arc<AppState>, req: Request, obs: &ObsHandle) -> Result<Request, Response> {
    let gov = &state.governance;
    let snap = gov.snapshot();
    let headers = req.headers();
    let presented = vk_from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    if presented.is_none() && !snap.enforce_auth_on_inference {
        return Ok(req);
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let shape = client_protocol(&route);
    let reject = |error: GatewayError| -> Response {
        ApiError {
            error,
            context: ErrorContext::default(),
            shape,
        }
        .into_response()
    };
    let Some(value) = presented else {
        return Err(reject(GatewayError::Unauthorized {
            message: "a virtual key is required on this gateway: send it as 'x-bf-vk: sk-bf-...' or 'Authorization: Bearer sk-bf-...'".into(),
            code: "virtual_key_required",
        }));
    };
    let Some(vk) = snap.by_hash.get(&hash_vk_value(value)).cloned() else {
        return Err(reject(GatewayError::Unauthorized {
            message:
                "virtual key not found: the key sent is not (or no longer) a virtual key of this gateway"
                    .into(),
            code: "virtual_key_not_found",
        }));
    };
    let now = now_ms();
    if !vk.is_active {
        return Err(reject(GatewayError::Forbidden {
            message: format!("virtual key '{}' is inactive", vk.name),
            code: "virtual_key_inactive",
        }));
    }
    if vk.is_expired(now) {
        return Err(reject(GatewayError::Forbidden {
            message: format!(
                "virtual key '{}' expired at {}",
                vk.name,
                vk.expires_at().unwrap_or_default()
            ),
            code: "virtual_key_expired",
        }));
    }

    // The estimate needs the body (size, model, output cap); it is read once here and handed on.
    let (parts, body) = req.into_parts();
    let bytes = crate::body::read_limited(body, state.max_body_bytes)
        .await
        .map_err(reject)?;
    let model = requested_model(parts.uri.path(), &bytes);
    let config = state.config.snapshot();
    let price = model.as_deref().and_then(|m| {
        let mut rng = fastrand::Rng::new();
        let targets = config.resolve(m, native_provider(&route), &mut rng).ok()?;
        // The dearest target the request might be served by.
        targets
            .iter()
            .filter_map(|t| gov.price(t.provider, t.model))
            .max_by(|a, b| (a.input + a.output).total_cmp(&(b.input + b.output)))
    });
    let est = estimate(bytes.len(), output_cap(&bytes), price.as_ref());
    let levels = gov.levels(&snap, &vk);
    let checks = limit_checks(&levels, now, est);
    let team_id = vk.team_id.clone();
    let customer_id = vk.customer_id.clone().or_else(|| {
        team_id
            .as_deref()
            .and_then(|t| snap.team(t))
            .and_then(|t| t.customer_id.clone())
    });
    match gov.counters.admit(&checks, now).await {
        Ok(Ok(())) => {}
        Ok(Err(rejection)) => {
            obs.update(|d| {
                d.governance_ids = Some((vk.id.clone(), team_id.clone(), customer_id.clone()));
            });
            return Err(reject(GatewayError::Limited(rejection)));
        }
        Err(e) => {
            tracing::error!(error = %e, "governance counters unavailable; refusing the request");
            return Err(reject(GatewayError::Unavailable(
                "usage limits cannot be checked right now (counter store unavailable); retry shortly".into(),
            )));
        }
    }
    let admission = Arc::new(Admission {
        vk: vk.clone(),
        team_id: team_id.clone(),
        customer_id: customer_id.clone(),
        estimate: est,
        reserved: Mutex::new(checks),
        settled: AtomicBool::new(false),
    });
    obs.update(|d| {
        d.governance_ids = Some((vk.id.clone(), team_id, customer_id));
        d.admission = Some(admission);
    });
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The planning helper every inference endpoint calls instead of `RuntimeConfig::plan` (see the module
/// docs). Without a virtual key it is exactly `RuntimeConfig::plan`.
pub async fn plan<'a>(
    state: &AppState,
    obs: &ObsHandle,
    snapshot: &'a RuntimeConfig,
    model: &'a str,
    native: Option<&str>,
    fallbacks: &'a [String],
    rng: &mut fastrand::Rng,
) -> Result<GovernedPlan<'a>, GatewayError> {
    let targets = snapshot.plan(model, native, fallbacks, rng)?;
    restrict(state, obs, targets, rng).await
}

/// The virtual key's part of [`plan`], for a plan made some other way (a model-less pass-through
/// names its one target itself): drops targets the key may not use, orders by its provider weights and
/// reserves the first provider config's limits.
pub async fn restrict<'a>(
    state: &AppState,
    obs: &ObsHandle,
    targets: Vec<Target<'a>>,
    rng: &mut fastrand::Rng,
) -> Result<GovernedPlan<'a>, GatewayError> {
    let mut admission = None;
    obs.update(|d| admission = d.admission.clone());
    let Some(adm) = admission else {
        return Ok(GovernedPlan {
            targets,
            key_restriction: None,
        });
    };
    let vk = &adm.vk;
    let mut allowed: Vec<Target<'a>> = Vec::with_capacity(targets.len());
    let mut denied: Option<(Denial, String, String)> = None;
    for t in targets {
        let provider = t.provider.config.name.to_string();
        match vk.rule_for(&provider, t.model) {
            Ok(_) => allowed.push(t),
            Err(d) => {
                denied.get_or_insert((d, provider, t.model.to_owned()));
            }
        }
    }
    if allowed.is_empty() {
        let (denial, provider, m) =
            denied.expect("an empty plan is a routing error, so something was denied");
        let (message, code) = match denial {
            Denial::ProviderNotAllowed => (
                format!("virtual key '{}' may not use provider '{provider}' (not in its provider_configs)", vk.name),
                "provider_not_allowed",
            ),
            Denial::ModelNotAllowed => (
                format!("virtual key '{}' may not use model '{m}' at provider '{provider}' (not in allowed_models)", vk.name),
                "model_not_allowed",
            ),
            Denial::ModelBlacklisted => (
                format!("virtual key '{}' may not use model '{m}' at provider '{provider}' (blacklisted_models)", vk.name),
                "model_not_allowed",
            ),
        };
        return Err(GatewayError::Forbidden { message, code });
    }

    // provider_configs weights choose the primary provider among those serving the model; the others
    // stay in the plan as fallbacks.
    let providers: Vec<&str> = allowed.iter().map(|t| t.provider.config.name.as_str()).collect();
    let weight_of = |p: &str| {
        vk.provider_configs
            .iter()
            .find(|r| r.provider == p)
            .map(|r| r.weight)
    };
    if let Some(i) = switchyard_core::governance::weighted_primary(&providers, weight_of, rng) {
        let primary = allowed.remove(i);
        allowed.insert(0, primary);
    }

    // Provider-config limits: reserve at the first provider whose config has headroom; exhausted ones
    // leave the plan so traffic shifts to the remaining providers.
    let now = now_ms();
    let mut last_rejection = None;
    loop {
        let Some(first) = allowed.first() else {
            let r = last_rejection.expect("only a rejection empties the plan here");
            return Err(GatewayError::Limited(r));
        };
        let provider = first.provider.config.name.to_string();
        let rule = vk.rule_for(&provider, first.model).ok().flatten();
        let Some(rule) = rule.filter(|r| !r.budgets.is_empty() || r.rate_limit.is_some()) else {
            break;
        };
        let id = format!("{}/{}", vk.id, rule.provider);
        let name = format!("{}/{}", vk.name, rule.provider);
        let level = LevelLimits {
            level: Level::ProviderConfig,
            id: &id,
            name: &name,
            budgets: &rule.budgets,
            rate_limit: rule.rate_limit.as_ref(),
            max_concurrent: None,
            anchor_ms: vk.created_at_ms,
        };
        let checks = limit_checks(&[level], now, adm.estimate);
        match state.governance.counters.admit(&checks, now).await {
            Ok(Ok(())) => {
                adm.reserve(checks);
                break;
            }
            Ok(Err(r)) => {
                last_rejection = Some(r);
                allowed.retain(|t| t.provider.config.name.as_str() != provider);
            }
            Err(e) => {
                tracing::error!(error = %e, "governance counters unavailable; refusing the request");
                return Err(GatewayError::Unavailable(
                    "usage limits cannot be checked right now (counter store unavailable); retry shortly"
                        .into(),
                ));
            }
        }
    }
    let by_provider: HashMap<String, Vec<String>> = vk
        .provider_configs
        .iter()
        .filter(|r| !r.key_ids.iter().any(|k| k == "*"))
        .map(|r| (r.provider.clone(), r.key_ids.clone()))
        .collect();
    Ok(GovernedPlan {
        targets: allowed,
        key_restriction: (!by_provider.is_empty()).then(|| Arc::new(KeyRestriction { by_provider })),
    })
}

/// Replaces the reservation with what the request really used. `cost_usd` is `None` when the price is
/// unknown: nothing is charged (the log row flags the cost as unknown).
pub fn settle(state: &Arc<AppState>, admission: Arc<Admission>, cost_usd: Option<f64>, tokens: u64) {
    if admission.settled.swap(true, Ordering::AcqRel) {
        return;
    }
    let checks = std::mem::take(&mut *admission.reserved.lock().unwrap_or_else(|p| p.into_inner()));
    let deltas = settlement(&checks, cost_usd.map_or(0, usd_to_nanos), tokens as i64);
    if deltas.is_empty() || state.governance.counters.try_apply_now(&deltas) {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no runtime to settle governance usage on");
        return;
    };
    let state = state.clone();
    rt.spawn(async move {
        if let Err(e) = state.governance.counters.apply(&deltas).await {
            tracing::warn!(error = %e, "could not settle governance usage");
        }
    });
}

/// `retry-after` and the `x-ratelimit-*` headers of a rejection (OpenAI's names for requests and
/// tokens; `-budget` and `-concurrency` for the other limits).
pub fn limit_headers(r: &switchyard_core::governance::Rejection) -> Vec<(&'static str, String)> {
    use switchyard_core::governance::LimitKind;
    let reset = format!("{}s", r.retry_after_secs);
    let mut h = vec![("retry-after", r.retry_after_secs.to_string())];
    match r.kind {
        LimitKind::Requests => {
            h.push(("x-ratelimit-limit-requests", r.max.to_string()));
            h.push(("x-ratelimit-remaining-requests", "0".into()));
            h.push(("x-ratelimit-reset-requests", reset));
        }
        LimitKind::Tokens => {
            h.push(("x-ratelimit-limit-tokens", r.max.to_string()));
            h.push((
                "x-ratelimit-remaining-tokens",
                (r.max - r.current).max(0).to_string(),
            ));
            h.push(("x-ratelimit-reset-tokens", reset));
        }
        LimitKind::Concurrency => {
            h.push(("x-ratelimit-limit-concurrency", r.max.to_string()));
            h.push(("x-ratelimit-remaining-concurrency", "0".into()));
        }
        LimitKind::Budget => {
            h.push((
                "x-ratelimit-limit-budget-usd",
                format!(
                    "{:.6}",
                    switchyard_core::governance::admission::nanos_to_usd(r.max)
                ),
            ));
            h.push(("x-ratelimit-remaining-budget-usd", "0".into()));
            h.push(("x-ratelimit-reset-budget", reset));
        }
    }
    h
}
