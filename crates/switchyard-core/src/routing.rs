//! The runtime view of the configuration and the routing decisions made on it.
//!
//! [`RuntimeConfig`] is an immutable snapshot built from the stored providers and keys (with `env.VAR`
//! references resolved). The gateway swaps whole snapshots, so a request sees one consistent config from
//! start to end. Routing is a pure function of the snapshot, the model string and a random source.

use std::cmp::Reverse;

use crate::config::{KeyConfig, ProviderConfig};
use crate::discovery::{Listed, ModelLists};
use crate::model_ref::{parse_model, ModelRef};
use crate::provider::builtin_provider;
use crate::secret::{self, Secret, SecretSource};

#[derive(Debug)]
pub struct RuntimeConfig {
    /// Sorted by name.
    pub providers: Vec<RuntimeProvider>,
    index: foldhash::HashMap<String, usize>,
}

#[derive(Debug)]
pub struct RuntimeProvider {
    pub config: ProviderConfig,
    /// Effective base URL (configured or the built-in default).
    pub base_url: String,
    pub keys: Vec<RuntimeKey>,
}

#[derive(Debug)]
pub struct RuntimeKey {
    pub config: KeyConfig,
    /// The resolved secret; `None` for an empty value (keyless providers) or an unresolvable reference.
    pub secret: Option<Secret>,
    /// Why the key cannot be used although it is enabled (e.g. its environment variable is unset).
    pub problem: Option<String>,
    /// Resolved SigV4 credentials of a Bedrock key (`bedrock_key_config` with access keys).
    pub aws: Option<crate::provider_keys::AwsCredentials>,
    /// The provider's `case_insensitive_model_ids`: names match ignoring ASCII case.
    pub fold_case: bool,
}

/// How specifically a key serves a model: an explicit listing beats `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Specificity {
    Wildcard,
    /// Through `*`, and the provider's discovered model list has it.
    Discovered,
    Exact,
}

impl RuntimeKey {
    pub fn usable(&self) -> bool {
        self.config.enabled && self.problem.is_none()
    }

    fn same(&self, a: &str, b: &str) -> bool {
        a == b || (self.fold_case && a.eq_ignore_ascii_case(b))
    }

    /// Whether this key's allow and deny lists admit `model` (ignores `enabled`). An alias, and an
    /// alias's target, count as listed.
    pub fn serves(&self, model: &str) -> Option<Specificity> {
        let c = &self.config;
        if c.blacklisted_models
            .iter()
            .any(|m| m == "*" || self.same(m, model))
        {
            return None;
        }
        if self.upstream_id(model).is_some() {
            Some(Specificity::Exact)
        } else if c.models.iter().any(|m| m == "*") {
            Some(Specificity::Wildcard)
        } else {
            None
        }
    }

    /// The target of the alias `model`: the alias spelled exactly so, else (with
    /// `case_insensitive_model_ids`) one that differs only in case.
    fn alias_target(&self, model: &str) -> Option<&str> {
        let c = &self.config;
        c.aliases
            .get(model)
            .or_else(|| {
                let folded = c.aliases.iter().find(|(a, _)| self.same(a, model));
                folded.map(|(_, t)| t)
            })
            .map(String::as_str)
    }

    /// The id this key's upstream knows `model` by, when the key names it: an alias's target, or the
    /// spelling the key lists (an alias target or a `models` entry; they differ from `model` only in
    /// case, and only with `case_insensitive_model_ids`).
    pub fn upstream_id(&self, model: &str) -> Option<&str> {
        let c = &self.config;
        if let Some(target) = self.alias_target(model) {
            return Some(target);
        }
        c.aliases
            .values()
            .chain(c.models.iter().filter(|m| *m != "*"))
            .find(|m| self.same(m, model))
            .map(String::as_str)
    }
}

/// One provider a request may go to, with the model name to send upstream.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub provider: &'a RuntimeProvider,
    pub model: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error(
        "provider '{provider}' is not configured: register it first with POST /api/providers \
         {{\"provider\": \"{provider}\", ...}} and add a key with POST /api/providers/{provider}/keys"
    )]
    ProviderNotConfigured { provider: String },
    #[error("provider '{provider}' has no usable key for model '{model}': {detail}")]
    NoKeyForModel {
        provider: String,
        model: String,
        detail: String,
    },
    #[error(
        "no provider serves model '{model}': no enabled key lists it or '*' in its models. Add it to a key \
         (POST /api/providers/{{provider}}/keys with \"models\": [\"{model}\"]) or name the provider \
         explicitly as 'provider/{model}'"
    )]
    NoProviderForModel { model: String },
    #[error("fallbacks[{index}]: {message}")]
    BadFallback { index: usize, message: String },
    /// Keys are configured for the model but none can be used because of the gateway's own
    /// configuration (an unset environment variable, incomplete AWS credentials): the operator's
    /// mistake, not the caller's.
    #[error(
        "model '{model}' is configured on this gateway but no key for it can be used: {detail}. \
         This is a problem in the gateway's configuration, not in the request"
    )]
    KeyMisconfigured { model: String, detail: String },
}

/// Why no key could be chosen for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChoiceError {
    /// The configuration has no usable key for the model (a config problem, explained).
    NotConfigured(RoutingError),
    /// Keys exist but every one is excluded for this request (marked bad or ejected).
    AllExcluded,
}

impl RuntimeConfig {
    /// Builds a snapshot. `env` resolves `env.VAR` references (the process environment in production).
    pub fn build(
        stored: Vec<(ProviderConfig, Vec<KeyConfig>)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> RuntimeConfig {
        let mut providers: Vec<RuntimeProvider> = stored
            .into_iter()
            .map(|(config, keys)| {
                let base_url = config.effective_base_url().unwrap_or_default().to_owned();
                let fold_case = config.case_insensitive_model_ids;
                let keys = keys
                    .into_iter()
                    .map(|k| RuntimeKey {
                        fold_case,
                        ..resolve_key(k, &env)
                    })
                    .collect();
                RuntimeProvider {
                    config,
                    base_url,
                    keys,
                }
            })
            .collect();
        providers.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        let index = providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.config.name.as_str().to_owned(), i))
            .collect();
        RuntimeConfig { providers, index }
    }

    pub fn empty() -> RuntimeConfig {
        RuntimeConfig::build(Vec::new(), |_| None)
    }

    pub fn provider(&self, name: &str) -> Option<&RuntimeProvider> {
        self.index.get(name).map(|&i| &self.providers[i])
    }

    /// A prefix is a provider when it is configured here or a built-in name.
    pub fn is_known_provider(&self, name: &str) -> bool {
        self.index.contains_key(name) || builtin_provider(name).is_some()
    }

    /// The ordered providers a request for `model` may go to. The first is the primary; the rest are
    /// the automatic fall-through order for bare models.
    ///
    /// - `provider/model`: that provider only.
    /// - bare model: every provider with a usable key serving it; providers whose key lists the model
    ///   explicitly come before providers that serve it through `*`; within one tier the order is drawn
    ///   by weight (sum of the serving keys' weights), except that the route's `native` provider (e.g.
    ///   `openai` on `/openai/v1`, as in Bifrost) goes first within its tier.
    pub fn resolve<'a>(
        &'a self,
        model: &'a str,
        native: Option<&str>,
        rng: &mut fastrand::Rng,
    ) -> Result<Vec<Target<'a>>, RoutingError> {
        self.resolve_in(model, native, &ModelLists::default(), rng)
    }

    /// [`resolve`](Self::resolve) with the providers' discovered model lists: a provider with
    /// `model_discovery` and a usable list serves a bare model through `*` only if its list has it,
    /// and then ranks above plain `*` providers (`Specificity::Discovered`).
    pub fn resolve_in<'a>(
        &'a self,
        model: &'a str,
        native: Option<&str>,
        lists: &ModelLists,
        rng: &mut fastrand::Rng,
    ) -> Result<Vec<Target<'a>>, RoutingError> {
        match parse_model(model, |p| self.is_known_provider(p)) {
            ModelRef::Qualified { provider, model } => match self.provider(provider) {
                Some(p) => Ok(vec![Target {
                    provider: p,
                    model: p.upstream_id(model),
                }]),
                None => Err(RoutingError::ProviderNotConfigured {
                    provider: provider.to_owned(),
                }),
            },
            ModelRef::Bare(model) => {
                let mut tiers: Vec<(Specificity, &RuntimeProvider, f64)> = self
                    .providers
                    .iter()
                    .filter_map(|p| {
                        let (best, weight) = p.serving(model)?;
                        Some((p.discovered(best, model, lists)?, p, weight))
                    })
                    .collect();
                if tiers.is_empty() {
                    let broken: Vec<String> = self
                        .providers
                        .iter()
                        .filter_map(|p| p.misconfigured_for(model))
                        .collect();
                    if !broken.is_empty() {
                        return Err(RoutingError::KeyMisconfigured {
                            model: model.to_owned(),
                            detail: broken.join("; "),
                        });
                    }
                    return Err(RoutingError::NoProviderForModel {
                        model: model.to_owned(),
                    });
                }
                tiers.sort_by_key(|(s, _, _)| Reverse(*s));
                let mut out = Vec::with_capacity(tiers.len());
                for tier in tiers.chunk_by_mut(|a, b| a.0 == b.0) {
                    let mut rest: Vec<(&RuntimeProvider, f64)> =
                        tier.iter().map(|(_, p, w)| (*p, *w)).collect();
                    if let Some(i) = rest
                        .iter()
                        .position(|(p, _)| Some(p.config.name.as_str()) == native)
                    {
                        let provider = rest.remove(i).0;
                        out.push(Target {
                            provider,
                            model: provider.upstream_id(model),
                        });
                    }
                    while !rest.is_empty() {
                        let i = weighted_index(rest.iter().map(|(_, w)| *w), rng);
                        let provider = rest.remove(i).0;
                        out.push(Target {
                            provider,
                            model: provider.upstream_id(model),
                        });
                    }
                }
                Ok(out)
            }
        }
    }
}

impl RuntimeConfig {
    /// The whole attempt plan of a request: the resolved targets, then the request's own `fallbacks`
    /// (`provider/model` each); every target is followed by its provider's configured fallback chain
    /// (followed transitively, without repeats, at most 16 targets in all).
    pub fn plan<'a>(
        &'a self,
        model: &'a str,
        native: Option<&str>,
        request_fallbacks: &'a [String],
        rng: &mut fastrand::Rng,
    ) -> Result<Vec<Target<'a>>, RoutingError> {
        self.plan_in(model, native, request_fallbacks, &ModelLists::default(), rng)
    }

    /// [`plan`](Self::plan) with the providers' discovered model lists (see [`Self::resolve_in`]).
    pub fn plan_in<'a>(
        &'a self,
        model: &'a str,
        native: Option<&str>,
        request_fallbacks: &'a [String],
        lists: &ModelLists,
        rng: &mut fastrand::Rng,
    ) -> Result<Vec<Target<'a>>, RoutingError> {
        const MAX_TARGETS: usize = 16;
        let mut seeds = self.resolve_in(model, native, lists, rng)?;
        for (index, f) in request_fallbacks.iter().enumerate() {
            let Some((provider, m)) = f.split_once('/').filter(|(_, m)| !m.is_empty()) else {
                return Err(RoutingError::BadFallback {
                    index,
                    message: format!("'{f}' is not 'provider/model'"),
                });
            };
            let p = self.provider(provider).ok_or_else(|| RoutingError::BadFallback {
                index,
                message: format!("provider '{provider}' is not configured"),
            })?;
            seeds.push(Target {
                provider: p,
                model: m,
            });
        }
        let mut out: Vec<Target<'a>> = Vec::with_capacity(seeds.len() + 2);
        for seed in seeds {
            // Depth-first through the configured chain of each seed.
            let mut stack = vec![seed];
            while let Some(t) = stack.pop() {
                let repeat = out
                    .iter()
                    .any(|o| std::ptr::eq(o.provider, t.provider) && o.model == t.model);
                if out.len() >= MAX_TARGETS || repeat {
                    continue;
                }
                out.push(t);
                for f in t.provider.config.fallbacks.iter().rev() {
                    let (name, m) = match f.split_once('/') {
                        Some((name, m)) => (name, m),
                        None => (f.as_str(), t.model),
                    };
                    if let Some(p) = self.provider(name) {
                        stack.push(Target {
                            provider: p,
                            model: m,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

impl RuntimeProvider {
    /// Picks a key for `model` by weighted random among the usable keys whose lists admit it.
    pub fn select_key(&self, model: &str, rng: &mut fastrand::Rng) -> Result<&RuntimeKey, RoutingError> {
        match self.select_key_where(model, rng, |_| true) {
            Ok(k) => Ok(k),
            Err(KeyChoiceError::NotConfigured(e)) => Err(e),
            Err(KeyChoiceError::AllExcluded) => unreachable!("nothing is excluded"),
        }
    }

    /// Like [`select_key`](Self::select_key), skipping keys for which `allowed` is false (keys marked
    /// bad for this request, or ejected by their circuit breaker).
    pub fn select_key_where(
        &self,
        model: &str,
        rng: &mut fastrand::Rng,
        mut allowed: impl FnMut(&RuntimeKey) -> bool,
    ) -> Result<&RuntimeKey, KeyChoiceError> {
        let eligible: Vec<&RuntimeKey> = self
            .keys
            .iter()
            .filter(|k| k.usable() && k.serves(model).is_some())
            .collect();
        if eligible.is_empty() {
            if let Some(detail) = self.misconfigured_for(model) {
                return Err(KeyChoiceError::NotConfigured(RoutingError::KeyMisconfigured {
                    model: model.to_owned(),
                    detail,
                }));
            }
            return Err(KeyChoiceError::NotConfigured(RoutingError::NoKeyForModel {
                provider: self.config.name.to_string(),
                model: model.to_owned(),
                detail: self.explain_no_key(model),
            }));
        }
        let admitted: Vec<&RuntimeKey> = eligible.into_iter().filter(|k| allowed(k)).collect();
        if admitted.is_empty() {
            return Err(KeyChoiceError::AllExcluded);
        }
        Ok(admitted[weighted_index(admitted.iter().map(|k| k.config.weight), rng)])
    }

    /// The id this provider's upstream is sent for `model` (a client's name): the target of the first
    /// usable key that aliases it, else the spelling a usable key lists, else `model` itself.
    pub fn upstream_id<'a>(&'a self, model: &'a str) -> &'a str {
        let usable = || self.keys.iter().filter(|k| k.usable());
        let aliased = usable().find_map(|k| k.alias_target(model));
        aliased
            .or_else(|| usable().find_map(|k| k.upstream_id(model)))
            .unwrap_or(model)
    }

    /// How specifically this provider's usable keys serve `model`, and the summed weight of the keys
    /// serving it that way.
    pub fn serving(&self, model: &str) -> Option<(Specificity, f64)> {
        let serving = self
            .keys
            .iter()
            .filter(|k| k.usable())
            .filter_map(|k| k.serves(model).map(|s| (s, k)));
        let best = serving.clone().map(|(s, _)| s).max()?;
        let weight = serving
            .filter(|(s, _)| *s == best)
            .map(|(_, k)| k.config.weight)
            .sum();
        Some((best, weight))
    }

    /// What the discovered list makes of a `*` listing: `Discovered` when it has the model, `None`
    /// (not served) when a usable list lacks it; anything else is left as the keys say.
    pub fn discovered(&self, by_keys: Specificity, model: &str, lists: &ModelLists) -> Option<Specificity> {
        if by_keys != Specificity::Wildcard || !self.config.model_discovery {
            return Some(by_keys);
        }
        let fold = self.config.case_insensitive_model_ids;
        match lists.listed(self.config.name.as_str(), model, fold) {
            Listed::Yes => Some(Specificity::Discovered),
            Listed::No => None,
            Listed::Unknown => Some(Specificity::Wildcard),
        }
    }

    /// When no usable key serves `model` but enabled keys would if their configuration were
    /// complete: each such key and its problem (`provider 'p' key 'k': ...`).
    pub fn misconfigured_for(&self, model: &str) -> Option<String> {
        if self.serves(model) {
            return None;
        }
        let broken: Vec<String> = self
            .keys
            .iter()
            .filter(|k| k.config.enabled && k.serves(model).is_some())
            .filter_map(|k| {
                let problem = k.problem.as_ref()?;
                Some(format!(
                    "provider '{}' key '{}': {problem}",
                    self.config.name, k.config.name
                ))
            })
            .collect();
        (!broken.is_empty()).then(|| broken.join("; "))
    }

    /// Whether any usable key of this provider serves `model`.
    pub fn serves(&self, model: &str) -> bool {
        self.keys.iter().any(|k| k.usable() && k.serves(model).is_some())
    }

    fn explain_no_key(&self, model: &str) -> String {
        if self.keys.is_empty() {
            return format!(
                "it has no keys; add one with POST /api/providers/{}/keys",
                self.config.name
            );
        }
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                let why = if !k.config.enabled {
                    "is disabled".to_owned()
                } else if let Some(p) = &k.problem {
                    p.clone()
                } else if k
                    .config
                    .blacklisted_models
                    .iter()
                    .any(|m| m == "*" || k.same(m, model))
                {
                    format!("blacklists '{model}'")
                } else {
                    format!("allows only {:?}", k.config.models)
                };
                format!("key '{}' {why}", k.config.name)
            })
            .collect();
        parts.join("; ")
    }
}

/// Weighted random index. Weights are used as given (floats, no truncation); when they are all zero
/// the choice is uniform rather than an error.
pub fn weighted_index(weights: impl Iterator<Item = f64> + Clone, rng: &mut fastrand::Rng) -> usize {
    let total: f64 = weights.clone().filter(|w| *w > 0.0).sum();
    let n = weights.clone().count();
    if n <= 1 {
        return 0;
    }
    if total <= 0.0 {
        return rng.usize(..n);
    }
    let mut point = rng.f64() * total;
    let mut last_positive = 0;
    for (i, w) in weights.enumerate() {
        if w > 0.0 {
            if point < w {
                return i;
            }
            point -= w;
            last_positive = i;
        }
    }
    last_positive // floating-point rounding at the very end of the range
}

fn resolve_key(config: KeyConfig, env: &impl Fn(&str) -> Option<String>) -> RuntimeKey {
    let (secret, problem) = match secret::source(&config.value) {
        SecretSource::Literal("") => (None, None),
        SecretSource::Literal(v) => (Some(Secret::new(v)), None),
        SecretSource::Env(var) => match env(var) {
            Some(v) if !v.is_empty() => (Some(Secret::new(v)), None),
            _ => (
                None,
                Some(format!(
                    "its value references environment variable {var}, which is not set"
                )),
            ),
        },
    };
    let (aws, problem) = match config
        .bedrock_key_config
        .as_ref()
        .map(|b| crate::provider_keys::resolve_aws_credentials(b, env))
    {
        Some(Ok(aws)) => (aws, problem),
        Some(Err(p)) => (None, problem.or(Some(p))),
        None => (None, problem),
    };
    RuntimeKey {
        config,
        secret,
        problem,
        aws,
        fold_case: false,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod plan_tests;

#[cfg(test)]
mod alias_tests;

#[cfg(test)]
mod discovery_tests;
