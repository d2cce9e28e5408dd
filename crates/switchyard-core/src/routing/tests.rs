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
fn a_model_served_only_by_keys_with_unset_variables_is_a_configuration_error() {
    let p = provider(r#"{"provider":"openai"}"#);
    let k = key(&p, r#"{"name":"shared","value":"env.UNSET_VAR","models":["*"]}"#);
    let cfg = RuntimeConfig::build(vec![(p, vec![k])], |_| None);
    let mut rng = fastrand::Rng::with_seed(1);
    for model in ["gpt-4o", "openai/gpt-4o"] {
        let err = match cfg.resolve(model, None, &mut rng) {
            Err(e) => e,
            Ok(targets) => targets[0]
                .provider
                .select_key(targets[0].model, &mut rng)
                .expect_err("no usable key"),
        };
        assert!(
            matches!(err, RoutingError::KeyMisconfigured { .. }),
            "{model}: {err:?}"
        );
        assert!(err.to_string().contains("UNSET_VAR"), "{err}");
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
