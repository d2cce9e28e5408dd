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
                    aliases: Default::default(),
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
