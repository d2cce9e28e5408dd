//! The pipeline's first phases: **identify** the caller (virtual key found and checked, or found
//! unnecessary), take the request's one config snapshot and read its body once; then **admit** it:
//! check and reserve every limit of the key, its team and its customer as one atomic step, with an
//! estimate taken from the request the route parsed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::HeaderMap;
use switchyard_core::governance::admission::limit_checks;
use switchyard_core::governance::estimate::estimate;
use switchyard_core::governance::{hash_vk_value, vk_from_headers, Level, LevelLimits, VirtualKey};
use switchyard_core::litellm::{inference_credential, InferenceCredential};
use switchyard_core::pricing::Prices;
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeConfig, RuntimeProvider};
use switchyard_translate::Protocol;

use super::finish::{Details, ObsHandle};
use super::RouteSpec;
use crate::ingress::Ingress;
use crate::request::timeout_override;
use switchyard_runtime::body::read_limited;
use switchyard_runtime::browser;
use switchyard_runtime::error::{ApiError, ErrorContext, GatewayError};
use switchyard_runtime::governance::{now_ms, Admission, GovSnapshot};
use switchyard_runtime::state::AppState;

/// Who is calling.
enum Caller {
    /// No virtual key, and none required.
    Anonymous,
    /// A valid, active virtual key, with the governance snapshot it was found in.
    Key {
        vk: Arc<VirtualKey>,
        gov: Arc<GovSnapshot>,
        team_id: Option<String>,
        customer_id: Option<String>,
    },
}

/// A request inside the pipeline: caller identified, body read, config snapshot taken. Only the
/// driver makes one; a route reads its request from it and then [`admit`](Incoming::admit)s it.
pub struct Incoming {
    state: Arc<AppState>,
    obs: ObsHandle,
    config: Arc<RuntimeConfig>,
    ingress: Ingress,
    caller: Caller,
    parts: Parts,
    body: Bytes,
}

/// Longest model name accepted, in bytes. Real ids are far shorter (Bedrock inference-profile ARNs,
/// the longest in use, are ~120 bytes); a longer one would be copied into the log, labels and headers.
pub const MAX_MODEL_NAME_BYTES: usize = 256;

/// A caller's `model` (and each of its `fallbacks`): not empty, at most [`MAX_MODEL_NAME_BYTES`], no
/// control characters. The message never repeats the name.
fn check_model_names(spec: &CallSpec) -> Result<(), GatewayError> {
    let names = spec.model.iter().map(|m| ("model".to_owned(), m)).chain(
        spec.fallbacks
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("fallbacks[{i}]"), f)),
    );
    for (field, name) in names {
        let problem = if name.is_empty() {
            "must not be empty".to_owned()
        } else if name.len() > MAX_MODEL_NAME_BYTES {
            format!(
                "is {} bytes long, over the limit of {MAX_MODEL_NAME_BYTES} bytes",
                name.len()
            )
        } else if name.chars().any(char::is_control) {
            "must not contain control characters".to_owned()
        } else {
            continue;
        };
        return Err(GatewayError::BadRequest {
            message: format!("{field} {problem}"),
            param: Some(field),
        });
    }
    Ok(())
}

/// What a route read from its request: what admission, planning and the log row need.
#[derive(Clone, Debug)]
pub struct CallSpec {
    pub request_type: RequestType,
    /// The model asked for (`None`: the request names none, e.g. a model listing).
    pub model: Option<String>,
    /// The one provider the route itself names (pass-through), if any.
    pub provider: Option<String>,
    pub stream: bool,
    /// Bifrost's request `fallbacks` (`provider/model`), already removed from the body.
    pub fallbacks: Vec<String>,
    /// The output cap the request sets (`max_tokens`, ...), for the estimate.
    pub output_cap: Option<u64>,
    /// The protocol errors answer in.
    pub shape: Protocol,
}

impl CallSpec {
    pub fn new(request_type: RequestType, shape: Protocol) -> CallSpec {
        CallSpec {
            request_type,
            model: None,
            provider: None,
            stream: false,
            fallbacks: Vec::new(),
            output_cap: None,
            shape,
        }
    }
}

/// A request admitted by its caller's limits (or with no limits to check). Only
/// [`Incoming::admit`] makes one; planning and dispatch start from it.
pub struct Admitted {
    pub(super) incoming: Incoming,
    pub(super) spec: CallSpec,
    pub(super) admission: Option<Arc<Admission>>,
    pub(super) ctx: ErrorContext,
    pub(super) timeout_override: Option<Duration>,
}

/// Phase 2, run by the driver: identify the caller and read the body. Errors answer in the route's
/// shape.
pub(super) async fn identify(
    state: &Arc<AppState>,
    parts: Parts,
    body: Body,
    spec: RouteSpec,
    obs: &ObsHandle,
) -> Result<Incoming, ApiError> {
    let reject = |error| ApiError {
        error,
        context: ErrorContext::default(),
        shape: spec.ingress.protocol(),
    };
    let caller = caller(state, &parts, obs).map_err(reject)?;
    let limit = spec
        .body_limit
        .map_or(state.max_body_bytes, |l| l.min(state.max_body_bytes));
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(reject(GatewayError::PayloadTooLarge { limit_bytes: limit }));
    }
    let body = read_limited(body, limit).await.map_err(reject)?;
    let caller = with_end_user(caller, &body, obs);
    Ok(Incoming {
        state: state.clone(),
        obs: obs.clone(),
        config: state.config.snapshot(),
        ingress: spec.ingress,
        caller,
        parts,
        body,
    })
}

/// Inference open to anyone who can reach a loopback port (no virtual key required) answers local
/// tools only: a foreign `Host` (DNS rebinding), a cross-site browser request or a `text/plain` body
/// (the cross-site POST a page may send without asking) are refused, as on the open admin API.
fn open_on_loopback_check(parts: &Parts) -> Result<(), GatewayError> {
    let refuse = |message: &str, code| {
        Err(GatewayError::Forbidden {
            message: format!(
                "{message}; this gateway requires no virtual key and answers only local tools \
                 addressed to localhost (require virtual keys to serve browsers or other host names)"
            ),
            code,
        })
    };
    if browser::is_foreign_host(&parts.headers, &parts.uri) {
        return refuse(
            "the request is addressed to a host name other than localhost",
            "foreign_host",
        );
    }
    if browser::is_cross_site(&parts.headers, &parts.uri) {
        return refuse("cross-site browser requests are refused", "cross_site_request");
    }
    if browser::is_plain_text(&parts.headers) {
        return refuse(
            "a text/plain body is refused (send Content-Type: application/json)",
            "cross_site_request",
        );
    }
    Ok(())
}

fn caller(state: &AppState, parts: &Parts, obs: &ObsHandle) -> Result<Caller, GatewayError> {
    let headers = &parts.headers;
    let gov = state.governance.snapshot();
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // A configured LiteLLM master key makes a key mandatory, as in LiteLLM; the key itself passes.
    let required = gov.enforce_auth_on_inference || state.master_keys.requires_key_on_inference();
    if !required && state.loopback_bind {
        open_on_loopback_check(parts)?;
    }
    let presented = match inference_credential(&state.master_keys, get) {
        InferenceCredential::Master => return Ok(Caller::Anonymous),
        InferenceCredential::Key(v) => Some(v),
        InferenceCredential::None => None,
    };
    let Some(value) = presented else {
        if !required {
            return Ok(Caller::Anonymous);
        }
        return Err(GatewayError::Unauthorized {
            message: "a virtual key is required on this gateway: send it as 'x-bf-vk: sk-bf-...' or 'Authorization: Bearer sk-bf-...'".into(),
            code: "virtual_key_required",
        });
    };
    let Some(vk) = gov.by_value_hash(&hash_vk_value(value)).cloned() else {
        // An unknown LiteLLM-shaped `sk-` bearer may be a provider key for the upstream: refused
        // only when a key is required (Switchyard's own `sk-bf-` values always are).
        if !required && vk_from_headers(get).is_none() {
            return Ok(Caller::Anonymous);
        }
        return Err(GatewayError::Unauthorized {
            message:
                "virtual key not found: the key sent is not (or no longer) a virtual key of this gateway"
                    .into(),
            code: "virtual_key_not_found",
        });
    };
    // With a LiteLLM master key configured, a blocked or expired key is a 401, as LiteLLM answers.
    let refused = |message, code| {
        if state.master_keys.requires_key_on_inference() {
            GatewayError::Unauthorized { message, code }
        } else {
            GatewayError::Forbidden { message, code }
        }
    };
    if !vk.is_active {
        return Err(refused(
            format!("virtual key '{}' is inactive", vk.name),
            "virtual_key_inactive",
        ));
    }
    if vk.is_expired(now_ms()) {
        return Err(refused(
            format!(
                "virtual key '{}' expired at {}",
                vk.name,
                vk.expires_at().unwrap_or_default()
            ),
            "virtual_key_expired",
        ));
    }
    let team_id = vk.team_id.clone();
    let customer_id = vk.customer_id.clone().or_else(|| {
        team_id
            .as_deref()
            .and_then(|t| gov.team(t))
            .and_then(|t| t.customer_id.clone())
    });
    obs.update(|d| d.governance_ids = Some((vk.id.clone(), team_id.clone(), customer_id.clone())));
    Ok(Caller::Key {
        vk,
        gov,
        team_id,
        customer_id,
    })
}

/// LiteLLM's end-user budgets: a key without a customer whose request names a known customer in
/// its `user` field is charged to that customer too.
fn with_end_user(caller: Caller, body: &[u8], obs: &ObsHandle) -> Caller {
    let Caller::Key {
        vk,
        gov,
        team_id,
        customer_id: None,
    } = caller
    else {
        return caller;
    };
    let customer_id = (!gov.customers.is_empty())
        .then(|| switchyard_core::litellm::end_user(body))
        .flatten()
        .filter(|u| gov.customer(u).is_some());
    if customer_id.is_some() {
        obs.update(|d| d.governance_ids = Some((vk.id.clone(), team_id.clone(), customer_id.clone())));
    }
    Caller::Key {
        vk,
        gov,
        team_id,
        customer_id,
    }
}

impl Incoming {
    /// The request body, read once.
    /// The caller's virtual key; `None` for a caller without one (or with the master key).
    pub fn virtual_key(&self) -> Option<&VirtualKey> {
        match &self.caller {
            Caller::Key { vk, .. } => Some(vk),
            Caller::Anonymous => None,
        }
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    pub fn uri(&self) -> &http::Uri {
        &self.parts.uri
    }

    /// The request's one config snapshot.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn ingress(&self) -> Ingress {
        self.ingress
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// A route's own refusal of its request, in the client's shape.
    pub fn reject(&self, error: GatewayError) -> ApiError {
        ApiError {
            error,
            context: ErrorContext::default(),
            shape: self.ingress.protocol(),
        }
    }

    /// Phase 3: admission. Names the call in the observation, reads the client's timeout override,
    /// and for a virtual key checks and reserves every limit of the key, its team and its customer
    /// in one atomic step (402/429 when one has no room).
    pub async fn admit(self, spec: CallSpec) -> Result<Admitted, ApiError> {
        // Checked before the model is copied anywhere (log row, labels, error context, headers).
        if let Err(error) = check_model_names(&spec) {
            return Err(self.reject(error));
        }
        let ctx = ErrorContext {
            provider: spec.provider.clone(),
            model_requested: spec.model.clone(),
            request_type: Some(spec.request_type.family()),
            ..ErrorContext::default()
        };
        let fail = |error| ApiError {
            error,
            context: ctx.clone(),
            shape: spec.shape,
        };
        self.obs.update(|d| {
            d.request_type = Some(spec.request_type.family());
            d.model_requested = spec.model.clone();
            d.stream = spec.stream;
            d.request_bytes = self.body.len();
        });
        let timeout_override = timeout_override(self.headers()).map_err(fail)?;
        let admission = match &self.caller {
            Caller::Anonymous => None,
            Caller::Key { .. } => Some(self.reserve(&spec).await.map_err(fail)?),
        };
        Ok(Admitted {
            incoming: self,
            spec,
            admission,
            ctx,
            timeout_override,
        })
    }

    async fn reserve(&self, spec: &CallSpec) -> Result<Arc<Admission>, GatewayError> {
        let Caller::Key {
            vk,
            gov,
            team_id,
            customer_id,
        } = &self.caller
        else {
            unreachable!("reserve is only called for a virtual key")
        };
        let governance = &self.state.governance;
        let now = now_ms();
        let prices = self.plan_prices(spec, vk);
        let est = estimate(self.body.len(), spec.output_cap, prices.dearest.as_ref());
        let mut levels = governance.levels(gov, vk);
        let end_user = customer_id.as_deref().and_then(|c| gov.customer(c));
        if let Some(c) = end_user.filter(|_| !levels.iter().any(|l| l.level == Level::Customer)) {
            levels.push(LevelLimits {
                level: Level::Customer,
                id: &c.id,
                name: &c.name,
                budgets: &c.budgets,
                rate_limit: c.rate_limit.as_ref(),
                max_concurrent: None,
                anchor_ms: c.created_at_ms,
            });
        }
        if spec.request_type.is_charged() && levels.iter().any(|l| !l.budgets.is_empty()) {
            if let Some((provider, model)) = &prices.unpriced {
                return Err(unpriced_under_budget(provider, model));
            }
            if spec.model.is_none() {
                return Err(unpriced_under_budget(
                    spec.provider.as_deref().unwrap_or("?"),
                    "(none named)",
                ));
            }
        }
        let checks = limit_checks(&levels, now, est);
        match governance.counters.admit(&checks, now).await {
            Ok(Ok(())) => {}
            Ok(Err(rejection)) => {
                return Err(GatewayError::Limited(
                    rejection.in_currency(governance.currency().clone()),
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "governance counters unavailable; refusing the request");
                return Err(counters_unavailable());
            }
        }
        let admission = Arc::new(Admission::new(
            vk.clone(),
            team_id.clone(),
            customer_id.clone(),
            est,
            checks,
        ));
        self.obs.update(|d| d.admission = Some(admission.clone()));
        Ok(admission)
    }

    /// The prices of every target the request might be served by (its fallbacks included): the
    /// dearest, so the reservation errs high, and the first target without a price, if any.
    fn plan_prices(&self, spec: &CallSpec, vk: &VirtualKey) -> PlanPrices {
        let governance = &self.state.governance;
        let Some(model) = spec.model.as_deref() else {
            return PlanPrices::default();
        };
        let mut rng = fastrand::Rng::new();
        let targets: Vec<(&RuntimeProvider, String)> = match spec.provider.as_deref() {
            Some(p) => self
                .config
                .provider(p)
                .map(|p| (p, model.to_owned()))
                .into_iter()
                .collect(),
            None => match self
                .config
                .plan(model, self.ingress.native_provider(), &spec.fallbacks, &mut rng)
            {
                Ok(targets) => targets.iter().map(|t| (t.provider, t.model.to_owned())).collect(),
                Err(_) => Vec::new(),
            },
        };
        let mut prices = PlanPrices::default();
        // Only the targets the key may use: the plan will drop the others.
        let usable = targets
            .into_iter()
            .filter(|(p, m)| vk.rule_for(p.config.name.as_str(), m).is_ok());
        for (provider, model) in usable {
            match governance.price(provider, &model) {
                Some(p) => {
                    let dearer = prices
                        .dearest
                        .is_none_or(|d| p.input + p.output > d.input + d.output);
                    if dearer {
                        prices.dearest = Some(p);
                    }
                }
                None => {
                    prices
                        .unpriced
                        .get_or_insert_with(|| (provider.config.name.to_string(), model));
                }
            }
        }
        prices
    }
}

/// What the targets of a call cost.
#[derive(Default)]
struct PlanPrices {
    dearest: Option<Prices>,
    /// The first target (provider, model) without a known price.
    unpriced: Option<(String, String)>,
}

/// A budget cannot count a call it cannot price: refused before any upstream call, naming the call
/// that sets a price.
pub(super) fn unpriced_under_budget(provider: &str, model: &str) -> GatewayError {
    GatewayError::Forbidden {
        message: format!(
            "model '{model}' at provider '{provider}' has no known price, and this virtual key has a \
             budget that could not count its cost; set one with POST /api/governance/pricing-overrides \
             {{\"provider\": \"{provider}\", \"model\": \"{model}\", \"input_cost_per_million_tokens\": ..., \
             \"output_cost_per_million_tokens\": ...}}"
        ),
        code: "price_unknown",
    }
}

pub(super) fn counters_unavailable() -> GatewayError {
    GatewayError::Unavailable(
        "usage limits cannot be checked right now (counter store unavailable); retry shortly".into(),
    )
}

impl Admitted {
    pub fn spec(&self) -> &CallSpec {
        &self.spec
    }

    pub fn incoming(&self) -> &Incoming {
        &self.incoming
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.incoming.state
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.incoming.config
    }

    pub fn headers(&self) -> &HeaderMap {
        self.incoming.headers()
    }

    pub fn body(&self) -> &Bytes {
        &self.incoming.body
    }

    /// The error context of every answer from here on.
    pub fn ctx(&self) -> &ErrorContext {
        &self.ctx
    }

    /// An error in the client's shape with the call's context.
    pub fn fail(&self, error: GatewayError) -> ApiError {
        ApiError {
            error,
            context: self.ctx.clone(),
            shape: self.spec.shape,
        }
    }

    /// Adds to what the call's log row will say.
    pub fn observe(&self, f: impl FnOnce(&mut Details)) {
        self.incoming.obs.update(f);
    }

    pub(crate) fn obs(&self) -> &ObsHandle {
        &self.incoming.obs
    }
}
