//! Phase 5, **dispatch**: the attempt loop. It walks a [`GovernedPlan`] (resolved targets, request
//! fallbacks, configured chains) and, per target, applies the provider's concurrency gate, picks keys,
//! enforces timeouts, retries with backoff, rotates keys and trips the circuit breakers. The decisions
//! themselves come from the pure core (`switchyard_core::retry::next_step`, `switchyard_core::health`);
//! this module only performs them.
//!
//! A request is committed to a target only once that target produced a usable start: a 2xx JSON body
//! read in full, or a 2xx stream's first event. Until then every failure may still retry or fall back,
//! so a client never sees a half answer from a failed lane.

use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use http::Request;
use switchyard_core::config::CircuitBreakerConfig;
use switchyard_core::request_type::RequestType;
use switchyard_core::retry::{next_step, Failure, RetryPolicy, Step};
use switchyard_core::routing::{KeyChoiceError, RuntimeKey, RuntimeProvider, Target};
use switchyard_core::WireApi;
use tokio::sync::OwnedSemaphorePermit;

use super::attempt::{attempt, AttemptError, Commit, Timeouts};
use super::{Admitted, GovernedPlan};
use crate::answer::ServedBody;
use switchyard_runtime::error::GatewayError;
use switchyard_runtime::runtime_state::health::{HealthRegistry, Scope};
use switchyard_runtime::runtime_state::limits::ProviderLimits;
use switchyard_runtime::trail::{AttemptOutcome, AttemptRecord};
use switchyard_runtime::upstream::UpstreamClient;

/// Builds the upstream request for one attempt; one implementation per (route, wire) pairing.
pub trait UpstreamRequest: Send {
    /// Checked against the provider's `allowed_requests`.
    fn request_type(&self) -> RequestType;
    fn supports(&self, wire: WireApi) -> bool;
    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<Request<Body>, GatewayError>;
    /// Whether a 2xx answer is relayed byte for byte as it arrives, whatever its content type
    /// (text-to-speech audio). The call then commits at the answer's first bytes, handed over as a
    /// [`ServedBody::Stream`] whose `first_events` hold those bytes (its framer is unused).
    fn relays_bytes(&self) -> bool {
        false
    }
    /// Where request guardrails find the body's text (`pipeline::guard`); `None`: not guarded.
    fn guard_shape(&self) -> Option<switchyard_guardrails::BodyShape> {
        None
    }
    /// The body as it would be sent (for guardrails), and its replacement after a redaction.
    fn guard_body(&self) -> Vec<u8> {
        Vec::new()
    }
    fn set_guarded_body(&mut self, _body: bytes::Bytes) {}
}

/// A target that answered: the committed response start and how it was reached.
pub struct Served {
    pub parts: http::response::Parts,
    pub body: ServedBody,
    pub provider: String,
    /// The wire API of the provider that served (decides whether the answer is translated).
    pub wire: WireApi,
    pub model: String,
    pub key_id: String,
    pub key_name: String,
    /// The key's value, so that answer headers echoing it are not relayed.
    pub key_secret: Option<switchyard_core::secret::Secret>,
    pub fallback_index: usize,
    pub trail: Vec<AttemptRecord>,
    /// Holds the provider's concurrency slot until the answer has been relayed.
    pub permit: OwnedSemaphorePermit,
}

pub struct DispatchFailure {
    pub error: GatewayError,
    pub provider: Option<String>,
    pub trail: Vec<AttemptRecord>,
}

/// What dispatch uses of the gateway: the upstream client and the per-key and per-provider state.
#[derive(Clone, Copy)]
pub struct Upstreams<'a> {
    pub client: &'a UpstreamClient,
    pub health: &'a HealthRegistry,
    pub limits: &'a ProviderLimits,
}

impl Admitted {
    /// Dispatches the call over its governed plan.
    pub async fn dispatch(
        &self,
        plan: &GovernedPlan<'_>,
        request: &mut dyn UpstreamRequest,
    ) -> Result<Served, DispatchFailure> {
        let state = self.state();
        let upstreams = Upstreams {
            client: &state.upstream,
            health: &state.health,
            limits: &state.limits,
        };
        dispatch(upstreams, plan, request).await
    }
}

/// How one target ended.
enum TargetEnd {
    Served(Box<Served>),
    /// The call ends here with this error (a caller error, or a single-target plan without keys).
    Return(GatewayError),
    /// Move on to the next target, with the error this one reported, if any.
    Next(Option<GatewayError>),
}

/// The walk over a plan's targets: the trail so far and which error to report if all fail.
struct Walk<'p> {
    trail: Vec<AttemptRecord>,
    /// The error reported when everything fails: the primary target's (as Bifrost does), unless the
    /// primary was never tried.
    primary_error: Option<(GatewayError, String)>,
    last_error: Option<(GatewayError, String)>,
    tried_any: bool,
    plan: &'p GovernedPlan<'p>,
}

pub async fn dispatch(
    up: Upstreams<'_>,
    plan: &GovernedPlan<'_>,
    request: &mut dyn UpstreamRequest,
) -> Result<Served, DispatchFailure> {
    let mut rng = fastrand::Rng::new();
    let mut walk = Walk {
        trail: Vec::new(),
        primary_error: None,
        last_error: None,
        tried_any: false,
        plan,
    };
    for (index, target) in plan.targets().iter().enumerate() {
        let pname = target.provider.config.name.as_str();
        let Some(wait) = admit_target(up, &mut walk, index, target, request) else {
            continue;
        };
        let Some(permit) = wait.await else {
            walk.trail.push(skipped(target, "queue full"));
            let c = target.provider.config.concurrency_and_buffer_size;
            let e = GatewayError::Unavailable(format!(
                "provider '{pname}' is at capacity ({} in flight, {} waiting); raise concurrency_and_buffer_size",
                c.concurrency, c.buffer_size
            ));
            walk.last_error = Some((e, pname.to_owned()));
            continue;
        };
        match run_target(up, &mut walk, index, target, request, permit, &mut rng).await {
            TargetEnd::Served(served) => return Ok(*served),
            TargetEnd::Return(error) => {
                return Err(DispatchFailure {
                    error,
                    provider: Some(pname.to_owned()),
                    trail: walk.trail,
                })
            }
            TargetEnd::Next(Some(e)) => {
                if walk.primary_error.is_none() && walk.trail.iter().any(|a| a.key.is_some()) {
                    walk.primary_error = Some((e, pname.to_owned()));
                } else {
                    walk.last_error = Some((e, pname.to_owned()));
                }
            }
            TargetEnd::Next(None) => {}
        }
    }
    let (error, provider) = walk.primary_error.or(walk.last_error).unwrap_or_else(|| {
        (
            GatewayError::Unavailable("no provider could take the request".into()),
            String::new(),
        )
    });
    Err(DispatchFailure {
        error,
        provider: (!provider.is_empty()).then_some(provider),
        trail: walk.trail,
    })
}

fn skipped(target: &Target<'_>, why: &'static str) -> AttemptRecord {
    AttemptRecord {
        provider: target.provider.config.name.to_string(),
        model: target.model.to_owned(),
        key: None,
        outcome: AttemptOutcome::Skipped(why),
        latency_ms: 0,
        started_at: None,
    }
}

/// Whether a target may be tried at all (wire spoken, request type allowed, breaker closed); if so,
/// the wait for its concurrency slot (`None` from the wait: at capacity, skipped).
fn admit_target<'u>(
    up: Upstreams<'u>,
    walk: &mut Walk<'_>,
    index: usize,
    target: &Target<'_>,
    request: &dyn UpstreamRequest,
) -> Option<impl std::future::Future<Output = Option<OwnedSemaphorePermit>> + 'u> {
    let provider = target.provider;
    let pname = provider.config.name.to_string();
    let wire = provider.config.wire();
    if !request.supports(wire) {
        walk.trail.push(skipped(target, "wire API not supported"));
        let e = GatewayError::NotImplemented(format!(
            "provider '{pname}' speaks the {} API, which this build cannot translate this request to yet",
            wire.as_str()
        ));
        walk.last_error = Some((e, pname));
        return None;
    }
    if !provider.config.allows_request(request.request_type().as_str()) {
        walk.trail.push(skipped(target, "request type not allowed"));
        let e = GatewayError::RequestTypeNotAllowed {
            provider: pname.clone(),
            request_type: request.request_type(),
        };
        walk.last_error = Some((e, pname));
        return None;
    }
    // An ejected provider is skipped, unless it is the only chance left for a request that has
    // not reached any upstream yet (then it acts as the probe).
    let last_chance = index + 1 == walk.plan.targets().len() && !walk.tried_any;
    let breaker_cfg = provider.config.circuit_breaker;
    if !last_chance && !up.health.is_available(Scope::Provider(&pname), &breaker_cfg) {
        walk.trail
            .push(skipped(target, "provider ejected by its circuit breaker"));
        let e = GatewayError::Unavailable(format!("provider '{pname}' is ejected after repeated failures"));
        walk.last_error.get_or_insert((e, pname));
        return None;
    }
    let sizes = provider.config.concurrency_and_buffer_size;
    Some(async move { up.limits.acquire(&pname, sizes).await.ok() })
}

/// The timeouts of a provider's attempts (the client's override replaces the request timeout).
fn timeouts(provider: &RuntimeProvider, plan: &GovernedPlan<'_>) -> (RetryPolicy, Timeouts) {
    let nc = &provider.config.network_config;
    let policy = RetryPolicy {
        max_retries: nc.max_retries,
        backoff_initial: Duration::from_millis(nc.retry_backoff_initial),
        backoff_max: Duration::from_millis(nc.retry_backoff_max),
    };
    let total = plan
        .timeout_override()
        .unwrap_or(Duration::from_secs(nc.default_request_timeout_in_seconds));
    let first_byte = nc
        .first_byte_timeout_in_seconds
        .map(Duration::from_secs)
        .unwrap_or(total)
        .min(total);
    let idle = Duration::from_secs(nc.stream_idle_timeout_in_seconds);
    (
        policy,
        Timeouts {
            total,
            first_byte,
            idle,
        },
    )
}

/// The keys of one target already excluded in this request.
#[derive(Default)]
struct KeyExclusions<'k> {
    /// Rejected by the upstream (401/402/403): never again in this request.
    bad: Vec<&'k str>,
    /// Just failed with a rotating error: preferably not next.
    avoid: Option<&'k str>,
}

/// Draws the next key of a target: allowed by the virtual key, not excluded, breaker closed.
fn select_key<'k>(
    up: Upstreams<'_>,
    plan: &GovernedPlan<'_>,
    target: &Target<'k>,
    excluded: &KeyExclusions<'_>,
    rng: &mut fastrand::Rng,
) -> Result<&'k RuntimeKey, KeyChoiceError> {
    let provider = target.provider;
    let pname = provider.config.name.as_str();
    let breaker_cfg = &provider.config.circuit_breaker;
    let usable = |k: &RuntimeKey, avoid: Option<&str>| {
        plan.allows_key(pname, &k.config.id)
            && !excluded.bad.contains(&k.config.id.as_str())
            && avoid != Some(k.config.id.as_str())
            && up.health.is_available(Scope::Key(&k.config.id), breaker_cfg)
    };
    match provider.select_key_where(target.model, rng, |k| usable(k, excluded.avoid)) {
        // Rotation is a preference: with a single key left, use it again.
        Err(KeyChoiceError::AllExcluded) if excluded.avoid.is_some() => {
            provider.select_key_where(target.model, rng, |k| usable(k, None))
        }
        other => other,
    }
}

/// Why no key of a target could be drawn, as the trail and the error say it.
fn no_key(
    plan: &GovernedPlan<'_>,
    target: &Target<'_>,
    excluded: &KeyExclusions<'_>,
) -> (&'static str, GatewayError) {
    let pname = target.provider.config.name.as_str();
    if !target
        .provider
        .keys
        .iter()
        .any(|k| plan.allows_key(pname, &k.config.id))
    {
        let why = "the virtual key may not use any of this provider's keys (provider_configs[].key_ids)";
        let e = GatewayError::Forbidden {
            message: format!("provider '{pname}': {why}"),
            code: "key_not_allowed",
        };
        return (why, e);
    }
    let why = if excluded.bad.is_empty() {
        "every key is ejected by its circuit breaker"
    } else {
        "every key was rejected by the upstream (401/402/403)"
    };
    (
        why,
        GatewayError::Unavailable(format!("provider '{pname}': {why}")),
    )
}

/// One target's attempts: keys drawn, calls made, failures classified, until it serves, the call
/// must end, or the next target is due.
async fn run_target(
    up: Upstreams<'_>,
    walk: &mut Walk<'_>,
    index: usize,
    target: &Target<'_>,
    request: &mut dyn UpstreamRequest,
    permit: OwnedSemaphorePermit,
    rng: &mut fastrand::Rng,
) -> TargetEnd {
    let provider = target.provider;
    let pname = provider.config.name.as_str();
    let breaker_cfg = provider.config.circuit_breaker;
    let (policy, timeouts) = timeouts(provider, walk.plan);
    let mut excluded = KeyExclusions::default();
    let mut retries = 0u32;
    let mut target_error: Option<GatewayError> = None;
    loop {
        let key = match select_key(up, walk.plan, target, &excluded, rng) {
            Ok(k) => k,
            Err(KeyChoiceError::NotConfigured(e)) => {
                if walk.plan.targets().len() == 1 {
                    return TargetEnd::Return(e.into());
                }
                walk.trail.push(skipped(target, "no key serves this model"));
                return TargetEnd::Next(Some(target_error.unwrap_or(e.into())));
            }
            Err(KeyChoiceError::AllExcluded) => {
                let (why, e) = no_key(walk.plan, target, &excluded);
                walk.trail.push(skipped(target, why));
                return TargetEnd::Next(Some(target_error.unwrap_or(e)));
            }
        };
        walk.tried_any = true;
        let key_id = key.config.id.as_str();
        up.health.on_dispatch(Scope::Key(key_id));
        let started = Instant::now();
        let started_at = SystemTime::now();
        let req = match request.build(target, key) {
            Ok(r) => r,
            Err(e) => return TargetEnd::Return(e),
        };
        let attempt = attempt(
            up.client,
            pname,
            provider.config.wire(),
            key,
            req,
            Commit::of(request.relays_bytes(), walk.plan.stream()),
            timeouts,
        )
        .await;
        let record = |outcome| AttemptRecord {
            provider: pname.to_owned(),
            model: target.model.to_owned(),
            key: Some(key.config.name.clone()),
            outcome,
            latency_ms: started.elapsed().as_millis() as u64,
            started_at: Some(started_at),
        };
        let AttemptError { failure, error } = match attempt {
            Ok((parts, body)) => {
                up.health.on_success(Scope::Key(key_id));
                up.health.on_success(Scope::Provider(pname));
                walk.trail
                    .push(record(AttemptOutcome::Status(parts.status.as_u16())));
                return TargetEnd::Served(Box::new(served(walk, index, target, key, parts, body, permit)));
            }
            Err(e) => e,
        };
        let outcome = match failure {
            Failure::Status { status, .. } => AttemptOutcome::Status(status),
            Failure::Connection => AttemptOutcome::ConnectionError,
            Failure::Timeout => AttemptOutcome::Timeout,
            Failure::QueueFull => AttemptOutcome::QueueFull,
        };
        tracing::warn!(provider = %pname, key = %key.config.name, %outcome, error = %error, "upstream attempt failed");
        walk.trail.push(record(outcome));
        record_failure(up.health, pname, key_id, &breaker_cfg, &failure, &error);
        match next_step(failure, retries, &policy, rng.f64()) {
            Step::Return => return TargetEnd::Return(error),
            Step::Fallback => return TargetEnd::Next(Some(error)),
            Step::Retry {
                delay,
                rotate_key,
                key_is_bad,
                counts,
            } => {
                if key_is_bad {
                    excluded.bad.push(key_id);
                }
                excluded.avoid = rotate_key.then_some(key_id);
                if counts {
                    retries += 1;
                }
                target_error = Some(error);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

fn served(
    walk: &mut Walk<'_>,
    index: usize,
    target: &Target<'_>,
    key: &RuntimeKey,
    parts: http::response::Parts,
    body: ServedBody,
    permit: OwnedSemaphorePermit,
) -> Served {
    let pname = target.provider.config.name.to_string();
    if walk.trail.len() > 1 {
        tracing::info!(
            provider = %pname, attempts = walk.trail.len(), fallback_index = index,
            trail = %switchyard_runtime::trail::trail_header(&walk.trail),
            "served after retries or fallback"
        );
    }
    Served {
        parts,
        body,
        provider: pname,
        wire: target.provider.config.wire(),
        model: target.model.to_owned(),
        key_id: key.config.id.clone(),
        key_name: key.config.name.clone(),
        key_secret: key.secret.clone(),
        fallback_index: index,
        trail: std::mem::take(&mut walk.trail),
        permit,
    }
}

fn record_failure(
    health: &HealthRegistry,
    provider: &str,
    key_id: &str,
    cfg: &CircuitBreakerConfig,
    failure: &Failure,
    error: &GatewayError,
) {
    let message = error.to_string();
    if failure.is_health_failure() && health.on_failure(Scope::Key(key_id), cfg, &message) {
        tracing::warn!(
            provider,
            key_id,
            cooldown_secs = cfg.cooldown_in_seconds,
            "key ejected"
        );
    }
    if failure.is_provider_failure() && health.on_failure(Scope::Provider(provider), cfg, &message) {
        tracing::warn!(
            provider,
            cooldown_secs = cfg.cooldown_in_seconds,
            "provider ejected"
        );
    }
}
