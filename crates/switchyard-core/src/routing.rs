//! The runtime view of the configuration and the routing decisions made on it.
//!
//! [`RuntimeConfig`] is an immutable snapshot built from the stored providers and keys (with `env.VAR`
//! references resolved). The gateway swaps whole snapshots, so a request sees one consistent config from
//! start to end. Routing is a pure function of the snapshot, the model string and a random source.

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::config::{KeyConfig, ProviderConfig};
use crate::model_ref::{parse_model, ModelRef};
use crate::provider::builtin_provider;
use crate::secret::{self, Secret, SecretSource};

#[derive(Debug)]
pub struct RuntimeConfig {
    /// Sorted by name.
    pub providers: Vec<RuntimeProvider>,
    index: HashMap<String, usize>,
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
}

/// How specifically a key serves a model: an explicit listing beats `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Specificity {
    Wildcard,
    Exact,
}

impl RuntimeKey {
    pub fn usable(&self) -> bool {
        self.config.enabled && self.problem.is_none()
    }

    /// Whether this key's allow and deny lists admit `model` (ignores `enabled`).
    pub fn serves(&self, model: &str) -> Option<Specificity> {
        if self
            .config
            .blacklisted_models
            .iter()
            .any(|m| m == model || m == "*")
        {
            return None;
        }
        if self.config.models.iter().any(|m| m == model) {
            Some(Specificity::Exact)
        } else if self.config.models.iter().any(|m| m == "*") {
            Some(Specificity::Wildcard)
        } else {
            None
        }
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
                let keys = keys.into_iter().map(|k| resolve_key(k, &env)).collect();
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
        match parse_model(model, |p| self.is_known_provider(p)) {
            ModelRef::Qualified { provider, model } => match self.provider(provider) {
                Some(p) => Ok(vec![Target { provider: p, model }]),
                None => Err(RoutingError::ProviderNotConfigured {
                    provider: provider.to_owned(),
                }),
            },
            ModelRef::Bare(model) => {
                let mut tiers: Vec<(Specificity, &RuntimeProvider, f64)> = self
                    .providers
                    .iter()
                    .filter_map(|p| {
                        let serving = p
                            .keys
                            .iter()
                            .filter(|k| k.usable())
                            .filter_map(|k| k.serves(model).map(|s| (s, k)));
                        let best = serving.clone().map(|(s, _)| s).max()?;
                        let weight = serving
                            .filter(|(s, _)| *s == best)
                            .map(|(_, k)| k.config.weight)
                            .sum();
                        Some((best, p, weight))
                    })
                    .collect();
                if tiers.is_empty() {
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
                        out.push(Target {
                            provider: rest.remove(i).0,
                            model,
                        });
                    }
                    while !rest.is_empty() {
                        let i = weighted_index(rest.iter().map(|(_, w)| *w), rng);
                        out.push(Target {
                            provider: rest.remove(i).0,
                            model,
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
        const MAX_TARGETS: usize = 16;
        let mut seeds = self.resolve(model, native, rng)?;
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
                } else if k.config.blacklisted_models.iter().any(|m| m == model || m == "*") {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeyInput, ProviderInput};

    fn provider(json: &str) -> ProviderConfig {
        serde_json::from_str::<ProviderInput>(json)
            .unwrap()
            .into_new_provider()
            .unwrap()
    }

    fn key(p: &ProviderConfig, json: &str) -> KeyConfig {
        let id = format!("id-{}", fastrand::u32(..));
        serde_json::from_str::<KeyInput>(json)
            .unwrap()
            .into_new_key(p, id)
            .unwrap()
    }

    /// The seed's three lanes.
    fn lanes() -> RuntimeConfig {
        let dedicated = provider(
            r#"{"provider":"openai","network_config":{"base_url":"https://c.llm.aihosting.mittwald.de/v1"}}"#,
        );
        let shared = provider(
            r#"{"provider":"mittwald-shared","network_config":{"base_url":"https://llm.aihosting.mittwald.de/v1"},"custom_provider_config":{"base_provider_type":"openai"}}"#,
        );
        let anthropic = provider(r#"{"provider":"anthropic"}"#);
        let kd = key(
            &dedicated,
            r#"{"name":"mittwald-dedicated","value":"K1","models":["PREMIUM"],"weight":1.0}"#,
        );
        let ks = key(
            &shared,
            r#"{"name":"mittwald-shared-key","value":"K2","models":["*"],"weight":1.0}"#,
        );
        let ka = key(
            &anthropic,
            r#"{"name":"claude-key","value":"K3","models":["claude-3-7-sonnet","claude-4-sonnet"]}"#,
        );
        RuntimeConfig::build(
            vec![(dedicated, vec![kd]), (shared, vec![ks]), (anthropic, vec![ka])],
            |_| None,
        )
    }

    fn route(cfg: &RuntimeConfig, model: &str) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed(7);
        cfg.resolve(model, None, &mut rng)
            .unwrap()
            .iter()
            .map(|t| format!("{}/{}", t.provider.config.name, t.model))
            .collect()
    }

    #[test]
    fn seed_lanes_route_by_model_name() {
        let cfg = lanes();
        assert_eq!(
            route(&cfg, "PREMIUM"),
            ["openai/PREMIUM", "mittwald-shared/PREMIUM"]
        );
        assert_eq!(route(&cfg, "gpt-oss-120b"), ["mittwald-shared/gpt-oss-120b"]);
        assert_eq!(
            route(&cfg, "claude-3-7-sonnet"),
            ["anthropic/claude-3-7-sonnet", "mittwald-shared/claude-3-7-sonnet"]
        );
        assert_eq!(route(&cfg, "openai/YOUR_MODEL_ID"), ["openai/YOUR_MODEL_ID"]);
        assert_eq!(
            route(&cfg, "meta-llama/Llama-3.1-8B"),
            ["mittwald-shared/meta-llama/Llama-3.1-8B"]
        );
    }

    #[test]
    fn native_provider_goes_first_within_its_tier_only() {
        let mut cfg = lanes();
        // Give the dedicated lane a '*' key too, as in the seed's first walkthrough.
        let p = cfg.provider("openai").unwrap().config.clone();
        let mut keys: Vec<KeyConfig> = cfg
            .provider("openai")
            .unwrap()
            .keys
            .iter()
            .map(|k| k.config.clone())
            .collect();
        keys.push(key(&p, r#"{"name":"all","value":"K","models":["*"]}"#));
        let others: Vec<_> = ["mittwald-shared", "anthropic"]
            .iter()
            .map(|n| {
                let rp = cfg.provider(n).unwrap();
                (
                    rp.config.clone(),
                    rp.keys.iter().map(|k| k.config.clone()).collect(),
                )
            })
            .collect();
        let mut stored = vec![(p, keys)];
        stored.extend(others);
        cfg = RuntimeConfig::build(stored, |_| None);
        for seed in 0..50 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let first = |m: &str, rng: &mut fastrand::Rng| {
                cfg.resolve(m, Some("openai"), rng).unwrap()[0]
                    .provider
                    .config
                    .name
                    .to_string()
            };
            assert_eq!(first("gpt-oss-120b", &mut rng), "openai");
            // An explicit listing elsewhere still beats the native provider's '*'.
            assert_eq!(first("claude-3-7-sonnet", &mut rng), "anthropic");
        }
    }

    #[test]
    fn unconfigured_builtin_prefix_says_what_to_register() {
        let cfg = lanes();
        let err = cfg
            .resolve("gemini/gemini-2.5-pro", None, &mut fastrand::Rng::with_seed(1))
            .unwrap_err();
        assert_eq!(
            err,
            RoutingError::ProviderNotConfigured {
                provider: "gemini".into()
            }
        );
        assert!(err.to_string().contains("POST /api/providers"));
    }

    #[test]
    fn no_key_explains_each_key() {
        let cfg = lanes();
        let p = cfg.provider("openai").unwrap();
        let err = p
            .select_key("gpt-4o", &mut fastrand::Rng::with_seed(1))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("key 'mittwald-dedicated' allows only [\"PREMIUM\"]"),
            "{msg}"
        );
    }

    #[test]
    fn bare_model_nobody_serves() {
        let cfg = RuntimeConfig::empty();
        let err = cfg
            .resolve("x", None, &mut fastrand::Rng::with_seed(1))
            .unwrap_err();
        assert_eq!(err, RoutingError::NoProviderForModel { model: "x".into() });
    }

    #[test]
    fn blacklist_beats_allowlist_and_disabled_keys_are_skipped() {
        let p = provider(r#"{"provider":"openai"}"#);
        let k1 = key(
            &p,
            r#"{"name":"a","value":"K","models":["*"],"blacklisted_models":["gpt-4o"]}"#,
        );
        let k2 = key(&p, r#"{"name":"b","value":"K","models":["*"],"enabled":false}"#);
        let cfg = RuntimeConfig::build(vec![(p, vec![k1, k2])], |_| None);
        let prov = cfg.provider("openai").unwrap();
        let mut rng = fastrand::Rng::with_seed(3);
        assert!(prov.select_key("gpt-4o", &mut rng).is_err());
        assert_eq!(prov.select_key("gpt-4o-mini", &mut rng).unwrap().config.name, "a");
    }

    #[test]
    fn env_references_resolve_or_explain() {
        let p = provider(r#"{"provider":"openai"}"#);
        let k1 = key(&p, r#"{"name":"set","value":"env.SET_VAR","models":["*"]}"#);
        let k2 = key(&p, r#"{"name":"unset","value":"env.UNSET_VAR","models":["*"]}"#);
        let cfg = RuntimeConfig::build(vec![(p, vec![k1, k2])], |v| {
            (v == "SET_VAR").then(|| "sk-from-env".to_owned())
        });
        let prov = cfg.provider("openai").unwrap();
        assert_eq!(prov.keys[0].secret.as_ref().unwrap().expose(), "sk-from-env");
        assert!(prov.keys[1].problem.as_ref().unwrap().contains("UNSET_VAR"));
        for seed in 0..20 {
            let k = prov.select_key("m", &mut fastrand::Rng::with_seed(seed)).unwrap();
            assert_eq!(k.config.name, "set");
        }
    }

    #[test]
    fn float_weights_are_used_as_given() {
        // Bifrost truncates weight*100 to an integer, so 0.004 becomes 0; here it keeps its share.
        let weights = [0.004, 0.996];
        let mut rng = fastrand::Rng::with_seed(42);
        let n = 200_000;
        let hits = (0..n)
            .filter(|_| weighted_index(weights.iter().copied(), &mut rng) == 0)
            .count();
        let share = hits as f64 / n as f64;
        assert!((0.003..0.005).contains(&share), "share {share}");
    }

    #[test]
    fn zero_weights_never_win_unless_all_are_zero() {
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..1000 {
            assert_eq!(weighted_index([0.0, 2.0, 0.0].into_iter(), &mut rng), 1);
        }
        let picks: std::collections::HashSet<usize> = (0..200)
            .map(|_| weighted_index([0.0, 0.0].into_iter(), &mut rng))
            .collect();
        assert_eq!(picks.len(), 2, "all-zero weights fall back to a uniform choice");
    }

    #[test]
    fn bare_model_tier_order_follows_weights() {
        let a = provider(
            r#"{"provider":"a","network_config":{"base_url":"http://a"},"custom_provider_config":{"base_provider_type":"openai"}}"#,
        );
        let b = provider(
            r#"{"provider":"b","network_config":{"base_url":"http://b"},"custom_provider_config":{"base_provider_type":"openai"}}"#,
        );
        let ka = key(&a, r#"{"name":"a","value":"K","models":["*"],"weight":3}"#);
        let kb = key(&b, r#"{"name":"b","value":"K","models":["*"],"weight":1}"#);
        let cfg = RuntimeConfig::build(vec![(a, vec![ka]), (b, vec![kb])], |_| None);
        let mut rng = fastrand::Rng::with_seed(5);
        let n = 20_000;
        let first_a = (0..n)
            .filter(|_| {
                cfg.resolve("m", None, &mut rng).unwrap()[0]
                    .provider
                    .config
                    .name
                    .as_str()
                    == "a"
            })
            .count();
        let share = first_a as f64 / n as f64;
        assert!((0.72..0.78).contains(&share), "share {share}");
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::config::{KeyInput, ProviderInput};
    use proptest::prelude::*;

    fn provider(json: &str) -> ProviderConfig {
        serde_json::from_str::<ProviderInput>(json)
            .unwrap()
            .into_new_provider()
            .unwrap()
    }

    fn custom(name: &str, extra: &str) -> ProviderConfig {
        provider(&format!(
            r#"{{"provider":"{name}","network_config":{{"base_url":"http://{name}/v1"}},"custom_provider_config":{{"base_provider_type":"openai"}}{extra}}}"#
        ))
    }

    fn key(p: &ProviderConfig, models: &str) -> KeyConfig {
        let body = format!(r#"{{"name":"k-{}","value":"K","models":{models}}}"#, p.name);
        serde_json::from_str::<KeyInput>(&body)
            .unwrap()
            .into_new_key(p, format!("id-{}", p.name))
            .unwrap()
    }

    fn names(plan: &[Target<'_>]) -> Vec<String> {
        plan.iter()
            .map(|t| format!("{}/{}", t.provider.config.name, t.model))
            .collect()
    }

    #[test]
    fn configured_chains_follow_each_target_without_loops() {
        let a = custom("a", r#","fallbacks":["b","c/other"]"#);
        let b = custom("b", r#","fallbacks":["a"]"#);
        let c = custom("c", "");
        let cfg = RuntimeConfig::build(
            vec![
                (key_pair(&a, r#"["*"]"#)),
                key_pair(&b, r#"["x"]"#),
                key_pair(&c, r#"["*"]"#),
            ],
            |_| None,
        );
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            names(&cfg.plan("a/PREMIUM", None, &[], &mut rng).unwrap()),
            ["a/PREMIUM", "b/PREMIUM", "c/other"]
        );
        let body = vec!["c/extra".to_owned()];
        assert_eq!(
            names(&cfg.plan("b/m", None, &body, &mut rng).unwrap()),
            ["b/m", "a/m", "c/other", "c/extra"],
            "b falls back to a, whose chain follows; the request's own fallback comes last"
        );
        let bad = vec!["nobody/m".to_owned()];
        assert!(matches!(
            cfg.plan("a/m", None, &bad, &mut rng),
            Err(RoutingError::BadFallback { index: 0, .. })
        ));
        let bad = vec!["no-slash".to_owned()];
        assert!(matches!(
            cfg.plan("a/m", None, &bad, &mut rng),
            Err(RoutingError::BadFallback { index: 0, .. })
        ));
    }

    fn key_pair(p: &ProviderConfig, models: &str) -> (ProviderConfig, Vec<KeyConfig>) {
        (p.clone(), vec![key(p, models)])
    }

    #[test]
    fn excluded_keys_are_skipped_and_reported() {
        let a = custom("a", "");
        let cfg = RuntimeConfig::build(vec![key_pair(&a, r#"["*"]"#)], |_| None);
        let p = cfg.provider("a").unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            p.select_key_where("m", &mut rng, |_| false).unwrap_err(),
            KeyChoiceError::AllExcluded
        );
        assert!(matches!(
            p.select_key_where("m", &mut rng, |_| true),
            Ok(k) if k.config.name == "k-a"
        ));
    }

    #[derive(Debug, Clone)]
    struct KeySpec {
        models: Vec<&'static str>,
        blacklist: Vec<&'static str>,
        weight: f64,
        enabled: bool,
    }

    fn key_spec() -> impl Strategy<Value = KeySpec> {
        let model = prop::sample::select(vec!["m1", "m2", "m3", "*"]);
        (
            prop::collection::vec(model.clone(), 0..3),
            prop::collection::vec(prop::sample::select(vec!["m1", "m2"]), 0..2),
            prop::sample::select(vec![0.0, 0.5, 1.0, 3.0]),
            prop::bool::weighted(0.8),
        )
            .prop_map(|(models, blacklist, weight, enabled)| KeySpec {
                models,
                blacklist,
                weight,
                enabled,
            })
    }

    fn build(specs: &[Vec<KeySpec>]) -> RuntimeConfig {
        let stored = specs
            .iter()
            .enumerate()
            .map(|(i, keys)| {
                let p = custom(&format!("p{i}"), "");
                let keys = keys
                    .iter()
                    .enumerate()
                    .map(|(j, k)| KeyConfig {
                        id: format!("p{i}-k{j}"),
                        name: format!("k{j}"),
                        value: "K".into(),
                        models: k.models.iter().map(|m| m.to_string()).collect(),
                        blacklisted_models: k.blacklist.iter().map(|m| m.to_string()).collect(),
                        weight: k.weight,
                        enabled: k.enabled,
                        azure_key_config: None,
                        bedrock_key_config: None,
                    })
                    .collect();
                (p, keys)
            })
            .collect();
        RuntimeConfig::build(stored, |_| None)
    }

    proptest! {
        #[test]
        fn resolve_and_select_obey_the_rules(
            specs in prop::collection::vec(prop::collection::vec(key_spec(), 0..4), 1..5),
            model in prop::sample::select(vec!["m1", "m2", "m3", "m4"]),
            seed in any::<u64>(),
        ) {
            let cfg = build(&specs);
            let mut rng = fastrand::Rng::with_seed(seed);
            let serving: Vec<&RuntimeProvider> = cfg.providers.iter().filter(|p| p.serves(model)).collect();
            match cfg.resolve(model, None, &mut rng) {
                Err(RoutingError::NoProviderForModel { .. }) => prop_assert!(serving.is_empty()),
                Err(e) => prop_assert!(false, "unexpected {e}"),
                Ok(targets) => {
                    // Exactly the serving providers, each once.
                    prop_assert_eq!(targets.len(), serving.len());
                    for p in &serving {
                        prop_assert_eq!(targets.iter().filter(|t| std::ptr::eq(t.provider, *p)).count(), 1);
                    }
                    // Providers with an explicit listing come before '*'-only providers.
                    let tier = |p: &RuntimeProvider| {
                        p.keys.iter().filter(|k| k.usable()).filter_map(|k| k.serves(model)).max().unwrap()
                    };
                    let tiers: Vec<Specificity> = targets.iter().map(|t| tier(t.provider)).collect();
                    prop_assert!(tiers.windows(2).all(|w| w[0] >= w[1]), "{:?}", tiers);
                    // The chosen key is enabled, admits the model, and has weight unless all are 0.
                    for t in &targets {
                        let k = t.provider.select_key(model, &mut rng).unwrap();
                        prop_assert!(k.config.enabled);
                        prop_assert!(k.serves(model).is_some());
                        prop_assert!(!k.config.blacklisted_models.iter().any(|b| b == model));
                        let any_positive = t.provider.keys.iter().any(|k| k.usable() && k.serves(model).is_some() && k.config.weight > 0.0);
                        prop_assert!(k.config.weight > 0.0 || !any_positive);
                    }
                }
            }
        }
    }
}
