//! Phase 4, **plan**: the targets a call may use. Routing gives the ordered targets (explicit
//! listings, `*` lanes, the request's fallbacks, configured chains); the caller's virtual key then
//! drops what its `provider_configs` do not allow (403 when nothing is left), puts its weighted primary
//! first, reserves that provider config's own limits (an exhausted one leaves the plan, Bifrost's
//! rule) and names the provider keys it may use.
//!
//! [`GovernedPlan`] has private fields and is made only here, from an [`Admitted`] request, and
//! dispatch takes nothing else: a call that skipped admission cannot reach an upstream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::governance::admission::limit_checks;
use switchyard_core::governance::{Denial, Level, LevelLimits, VirtualKey};
use switchyard_core::routing::{RuntimeConfig, Target};

use super::admit::{counters_unavailable, Admitted};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::governance::{now_ms, Admission, KeyRestriction};

/// The targets an admitted call may use, in order, with what dispatch must respect.
pub struct GovernedPlan<'a> {
    targets: Vec<Target<'a>>,
    key_restriction: Option<Arc<KeyRestriction>>,
    stream: bool,
    timeout_override: Option<Duration>,
}

impl<'a> GovernedPlan<'a> {
    pub fn targets(&self) -> &[Target<'a>] {
        &self.targets
    }

    /// Whether the virtual key lets `provider`'s key `key_id` be used.
    pub fn allows_key(&self, provider: &str, key_id: &str) -> bool {
        self.key_restriction
            .as_ref()
            .is_none_or(|r| r.allows(provider, key_id))
    }

    pub fn stream(&self) -> bool {
        self.stream
    }

    /// The client's `x-switchyard-timeout`, replacing the provider's request timeout.
    pub fn timeout_override(&self) -> Option<Duration> {
        self.timeout_override
    }
}

impl Admitted {
    /// The plan for the call's model and fallbacks on its surface, restricted by the caller.
    pub async fn plan(&self) -> Result<GovernedPlan<'_>, ApiError> {
        let Some(model) = self.spec.model.as_deref() else {
            return Err(self.fail(GatewayError::BadRequest {
                message: "model is required".into(),
                param: Some("model".into()),
            }));
        };
        let native = self.incoming.ingress().native_provider();
        let fallbacks = &self.spec.fallbacks;
        let lists = self.state().model_lists.load();
        self.plan_with(|config, rng| Ok(config.plan_in(model, native, fallbacks, &lists, rng)?))
            .await
    }

    /// A plan the route makes itself out of the request's snapshot (a pass-through names its one
    /// provider; `count_tokens` needs Anthropic-wire targets), restricted by the caller like any plan.
    pub async fn plan_with<'s, F>(&'s self, make: F) -> Result<GovernedPlan<'s>, ApiError>
    where
        F: FnOnce(&'s RuntimeConfig, &mut fastrand::Rng) -> Result<Vec<Target<'s>>, GatewayError>,
    {
        let mut rng = fastrand::Rng::new();
        let targets = make(self.config(), &mut rng).map_err(|e| self.fail(e))?;
        let (targets, key_restriction) = match &self.admission {
            None => (targets, None),
            Some(adm) => restrict(self, adm, targets, &mut rng)
                .await
                .map_err(|e| self.fail(e))?,
        };
        Ok(GovernedPlan {
            targets,
            key_restriction,
            stream: self.spec.stream,
            timeout_override: self.timeout_override,
        })
    }
}

type Restricted<'a> = (Vec<Target<'a>>, Option<Arc<KeyRestriction>>);

async fn restrict<'a>(
    admitted: &Admitted,
    adm: &Admission,
    targets: Vec<Target<'a>>,
    rng: &mut fastrand::Rng,
) -> Result<Restricted<'a>, GatewayError> {
    let vk = &adm.vk;
    let mut allowed = allowed_targets(vk, targets)?;

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
    reserve_provider_config(admitted, adm, &mut allowed).await?;
    let by_provider: HashMap<String, Vec<String>> = vk
        .provider_configs
        .iter()
        .filter(|r| !r.key_ids.iter().any(|k| k == "*"))
        .map(|r| (r.provider.clone(), r.key_ids.clone()))
        .collect();
    let restriction = (!by_provider.is_empty()).then(|| Arc::new(KeyRestriction::new(by_provider)));
    Ok((allowed, restriction))
}

/// The targets the key's `provider_configs` allow; 403 naming the first refusal when none is left.
fn allowed_targets<'a>(vk: &VirtualKey, targets: Vec<Target<'a>>) -> Result<Vec<Target<'a>>, GatewayError> {
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
    if !allowed.is_empty() {
        return Ok(allowed);
    }
    let Some((denial, provider, m)) = denied else {
        // Routing never returns an empty plan; a route's own plan may be empty.
        return Err(GatewayError::Unavailable(
            "no provider can serve this request".into(),
        ));
    };
    let (message, code) = match denial {
        Denial::ProviderNotAllowed => (
            format!(
                "virtual key '{}' may not use provider '{provider}' (not in its provider_configs)",
                vk.name
            ),
            "provider_not_allowed",
        ),
        Denial::ModelNotAllowed => (
            format!(
                "virtual key '{}' may not use model '{m}' at provider '{provider}' (not in allowed_models)",
                vk.name
            ),
            "model_not_allowed",
        ),
        Denial::ModelBlacklisted => (
            format!(
                "virtual key '{}' may not use model '{m}' at provider '{provider}' (blacklisted_models)",
                vk.name
            ),
            "model_not_allowed",
        ),
    };
    Err(GatewayError::Forbidden { message, code })
}

/// Provider-config limits: reserve at the first provider whose config has headroom; exhausted ones
/// leave the plan so traffic shifts to the remaining providers.
async fn reserve_provider_config(
    admitted: &Admitted,
    adm: &Admission,
    allowed: &mut Vec<Target<'_>>,
) -> Result<(), GatewayError> {
    let vk = &adm.vk;
    let counters = &admitted.state().governance.counters;
    let now = now_ms();
    let mut last_refusal = None;
    loop {
        let Some(first) = allowed.first() else {
            return Err(last_refusal
                .unwrap_or_else(|| GatewayError::Unavailable("no provider can serve this request".into())));
        };
        let provider = first.provider.config.name.to_string();
        let rule = vk.rule_for(&provider, first.model).ok().flatten();
        let Some(rule) = rule.filter(|r| !r.budgets.is_empty() || r.rate_limit.is_some()) else {
            return Ok(());
        };
        // A provider config's budget cannot count what it cannot price: that provider leaves the plan.
        let unpriced = admitted
            .state()
            .governance
            .price(first.provider, first.model)
            .is_none();
        if !rule.budgets.is_empty() && unpriced && admitted.spec().request_type.is_charged() {
            last_refusal = Some(super::admit::unpriced_under_budget(&provider, first.model));
            allowed.retain(|t| t.provider.config.name.as_str() != provider);
            continue;
        }
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
        match counters.admit(&checks, now).await {
            Ok(Ok(())) => {
                adm.reserve(checks);
                return Ok(());
            }
            Ok(Err(r)) => {
                let currency = admitted.state().governance.currency().clone();
                last_refusal = Some(GatewayError::Limited(r.in_currency(currency)));
                allowed.retain(|t| t.provider.config.name.as_str() != provider);
            }
            Err(e) => {
                tracing::error!(error = %e, "governance counters unavailable; refusing the request");
                return Err(counters_unavailable());
            }
        }
    }
}
