//! Routing by the providers' discovered model lists (`model_discovery`).

use proptest::prelude::*;

use super::*;
use crate::config::{KeyInput, ProviderInput};
use crate::discovery::ModelList;

fn lane(name: &str, discovery: bool) -> (ProviderConfig, Vec<KeyConfig>) {
    let body = format!(
        r#"{{"provider":"{name}","network_config":{{"base_url":"http://127.0.0.1:1/v1"}},
            "custom_provider_config":{{"base_provider_type":"openai"}},"model_discovery":{discovery}}}"#
    );
    let p = serde_json::from_str::<ProviderInput>(&body)
        .unwrap()
        .into_new_provider()
        .unwrap();
    let k = serde_json::from_str::<KeyInput>(r#"{"name":"k","value":"v","models":["*"]}"#)
        .unwrap()
        .into_new_key(&p, format!("{name}-k"))
        .unwrap();
    (p, vec![k])
}

fn list(models: &[&str]) -> ModelList {
    ModelList {
        models: models.iter().map(|m| m.to_string()).collect(),
        read_at_ms: 1,
        error: None,
    }
}

fn route(cfg: &RuntimeConfig, lists: &ModelLists, model: &str, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    match cfg.resolve_in(model, None, lists, &mut rng) {
        Ok(ts) => ts.iter().map(|t| t.provider.config.name.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_bare_model_goes_only_to_the_wildcard_lane_that_lists_it() {
    let cfg = RuntimeConfig::build(vec![lane("dedicated", true), lane("shared", true)], |_| None);
    let lists = ModelLists::default()
        .with("dedicated", list(&["PREMIUM"]))
        .with("shared", list(&["gpt-oss-120b", "Qwen3-TTS"]));
    for seed in 0..20 {
        assert_eq!(route(&cfg, &lists, "PREMIUM", seed), ["dedicated"]);
        assert_eq!(route(&cfg, &lists, "gpt-oss-120b", seed), ["shared"]);
    }
    assert!(route(&cfg, &lists, "unknown", 1).is_empty(), "no list has it");
    // Naming the provider still goes there.
    assert_eq!(route(&cfg, &lists, "dedicated/gpt-oss-120b", 1), ["dedicated"]);
}

#[test]
fn an_empty_or_failed_list_falls_back_to_the_keys() {
    let cfg = RuntimeConfig::build(vec![lane("dedicated", true), lane("shared", false)], |_| None);
    let provisioning = ModelLists::default().with("dedicated", list(&[]));
    let mut seen: Vec<String> = (0..40).flat_map(|s| route(&cfg, &provisioning, "m", s)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        ["dedicated", "shared"],
        "both `*` lanes, as without discovery"
    );
    // A lane whose list has the model ranks above a plain `*` lane, which stays as a fallback.
    let listed = ModelLists::default().with("dedicated", list(&["m"]));
    for seed in 0..20 {
        assert_eq!(route(&cfg, &listed, "m", seed), ["dedicated", "shared"]);
        assert_eq!(route(&cfg, &listed, "other", seed), ["shared"]);
    }
}

proptest! {
    /// Discovery only ever removes or promotes `*` lanes: every provider routed with lists is one
    /// routed without them, and a provider whose usable list lacks the model is never routed.
    #[test]
    fn lists_only_narrow_wildcard_routing(
        a in proptest::collection::vec("[a-c]", 0..3),
        b in proptest::collection::vec("[a-c]", 0..3),
        model in "[a-c]",
        seed in any::<u64>(),
    ) {
        let cfg = RuntimeConfig::build(vec![lane("a", true), lane("b", true)], |_| None);
        let lists = ModelLists::default()
            .with("a", list(&a.iter().map(String::as_str).collect::<Vec<_>>()))
            .with("b", list(&b.iter().map(String::as_str).collect::<Vec<_>>()));
        let with = route(&cfg, &lists, &model, seed);
        let without = route(&cfg, &ModelLists::default(), &model, seed);
        for p in &with {
            prop_assert!(without.contains(p));
            let l = if p == "a" { &a } else { &b };
            prop_assert!(l.is_empty() || l.contains(&model));
        }
    }
}
