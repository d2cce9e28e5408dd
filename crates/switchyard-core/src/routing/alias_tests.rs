//! Key-level `aliases` and `case_insensitive_model_ids`: which providers serve a name, and which id
//! their upstream is sent.

use proptest::prelude::*;

use super::*;
use crate::config::{KeyInput, ProviderInput};

fn provider(json: &str) -> ProviderConfig {
    serde_json::from_str::<ProviderInput>(json)
        .unwrap()
        .into_new_provider()
        .unwrap()
}

fn key(p: &ProviderConfig, json: &str) -> Result<KeyConfig, crate::config::ValidationError> {
    serde_json::from_str::<KeyInput>(json)
        .unwrap()
        .into_new_key(p, format!("id-{}", fastrand::u32(..)))
}

/// The seed's Anthropic lane with real ids behind the guide's names, and mittwald's shared endpoint
/// (`*`, case-insensitive ids).
fn config() -> RuntimeConfig {
    let anthropic = provider(r#"{"provider":"anthropic"}"#);
    let shared = provider(
        r#"{"provider":"mittwald-shared","network_config":{"base_url":"https://llm.aihosting.mittwald.de/v1"},
            "custom_provider_config":{"base_provider_type":"openai"},"case_insensitive_model_ids":true}"#,
    );
    let ka = key(
        &anthropic,
        r#"{"name":"claude","value":"K","models":["claude-4-sonnet"],
            "aliases":{"claude-3-7-sonnet":"claude-3-7-sonnet-20250219","claude-4-sonnet":"claude-sonnet-4-20250514"}}"#,
    )
    .unwrap();
    let ks = key(
        &shared,
        r#"{"name":"shared","value":"K","models":["*","Whisper-Large-V3-Turbo"],
            "aliases":{"Mistral-Small-3.2-24B-Instruct":"Ministral-3-14B-Instruct-2512"}}"#,
    )
    .unwrap();
    RuntimeConfig::build(vec![(anthropic, vec![ka]), (shared, vec![ks])], |_| None)
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
fn an_alias_is_an_explicit_listing_and_the_upstream_gets_its_target() {
    let cfg = config();
    assert_eq!(
        route(&cfg, "claude-3-7-sonnet"),
        [
            "anthropic/claude-3-7-sonnet-20250219",
            "mittwald-shared/claude-3-7-sonnet"
        ]
    );
    // An alias also listed in `models` still maps to its target.
    assert_eq!(
        route(&cfg, "claude-4-sonnet")[0],
        "anthropic/claude-sonnet-4-20250514"
    );
    // Naming the provider applies its aliases too; the target id itself is served as well.
    assert_eq!(
        route(&cfg, "anthropic/claude-3-7-sonnet"),
        ["anthropic/claude-3-7-sonnet-20250219"]
    );
    assert_eq!(
        route(&cfg, "claude-3-7-sonnet-20250219")[0],
        "anthropic/claude-3-7-sonnet-20250219"
    );
    // A retired id mapped to its replacement.
    assert_eq!(
        route(&cfg, "Mistral-Small-3.2-24B-Instruct"),
        ["mittwald-shared/Ministral-3-14B-Instruct-2512"]
    );
    // The key chosen at dispatch serves the target id.
    let p = cfg.provider("anthropic").unwrap();
    let mut rng = fastrand::Rng::with_seed(1);
    assert!(p.select_key("claude-3-7-sonnet-20250219", &mut rng).is_ok());
}

#[test]
fn case_insensitive_ids_match_any_case_and_send_the_listed_spelling() {
    let cfg = config();
    assert_eq!(
        route(&cfg, "whisper-large-v3-turbo"),
        ["mittwald-shared/Whisper-Large-V3-Turbo"]
    );
    assert_eq!(
        route(&cfg, "mittwald-shared/WHISPER-large-v3-TURBO"),
        ["mittwald-shared/Whisper-Large-V3-Turbo"]
    );
    assert_eq!(
        route(&cfg, "mistral-small-3.2-24b-instruct"),
        ["mittwald-shared/Ministral-3-14B-Instruct-2512"]
    );
    // Case-sensitive providers do not fold: the anthropic key does not list this spelling.
    assert_eq!(
        route(&cfg, "CLAUDE-3-7-SONNET"),
        ["mittwald-shared/CLAUDE-3-7-SONNET"]
    );
}

#[test]
fn aliases_are_validated() {
    let p = provider(r#"{"provider":"anthropic"}"#);
    for (aliases, field) in [
        (r#"{"":"x"}"#, "aliases."),
        (r#"{"a":" "}"#, "aliases.a"),
        (r#"{"a":"*"}"#, "aliases.a"),
        (r#"{"a":"b","b":"c"}"#, "aliases.a"),
    ] {
        let body = format!(r#"{{"name":"k","value":"v","aliases":{aliases}}}"#);
        let err = key(&p, &body).unwrap_err();
        assert_eq!(err.field, field, "{aliases}");
    }
    let ok = key(&p, r#"{"name":"k","value":"v","aliases":{"a":"a-1","b":"a-1"}}"#).unwrap();
    assert_eq!(ok.aliases.len(), 2);
    // A partial update replaces the map, and leaves it alone when absent.
    let upd: KeyInput = serde_json::from_str(r#"{"weight":2}"#).unwrap();
    assert_eq!(upd.apply_update(&ok, &p).unwrap().aliases, ok.aliases);
    let upd: KeyInput = serde_json::from_str(r#"{"aliases":{}}"#).unwrap();
    assert!(upd.apply_update(&ok, &p).unwrap().aliases.is_empty());
}

proptest! {
    /// Whatever the aliases, routing an alias sends its target, and every provider that routing
    /// returns has a key that serves the id it will be sent (so dispatch finds a key).
    #[test]
    fn routed_targets_are_served_by_a_key(
        aliases in proptest::collection::btree_map("[a-dA-D]{1,3}", "[e-hE-H]{1,3}", 0..4),
        fold in any::<bool>(),
        model in "[a-hA-H]{1,3}",
    ) {
        let p = provider(&format!(
            r#"{{"provider":"p","custom_provider_config":{{"base_provider_type":"openai"}},"network_config":{{"base_url":"http://127.0.0.1:1"}},"case_insensitive_model_ids":{fold}}}"#
        ));
        let body = serde_json::json!({"name": "k", "value": "v", "models": ["Ab"], "aliases": aliases});
        let k = key(&p, &body.to_string()).unwrap();
        let cfg = RuntimeConfig::build(vec![(p, vec![k])], |_| None);
        let mut rng = fastrand::Rng::with_seed(3);
        if let Ok(targets) = cfg.resolve(&model, None, &mut rng) {
            for t in &targets {
                prop_assert!(t.provider.select_key(t.model, &mut rng).is_ok(), "{} not served", t.model);
                if let Some(target) = aliases.get(&model) {
                    prop_assert_eq!(t.model, target.as_str());
                }
            }
        }
    }
}

/// With `case_insensitive_model_ids`, an alias spelled exactly as asked wins over one that differs
/// only in case (found by the property above: `B` → F and `b` → E, asked for `b`).
#[test]
fn an_exact_alias_wins_over_a_case_folded_one() {
    let p = provider(
        r#"{"provider":"p","custom_provider_config":{"base_provider_type":"openai"},"network_config":{"base_url":"http://127.0.0.1:1"},"case_insensitive_model_ids":true}"#,
    );
    let k = key(
        &p,
        r#"{"name":"k","value":"v","models":["Ab"],"aliases":{"B":"F","b":"E"}}"#,
    )
    .unwrap();
    let cfg = RuntimeConfig::build(vec![(p, vec![k])], |_| None);
    let mut rng = fastrand::Rng::with_seed(3);
    for (asked, sent) in [("b", "E"), ("B", "F")] {
        let targets = cfg.resolve(asked, None, &mut rng).unwrap();
        assert_eq!(targets[0].model, sent, "asked for {asked}");
    }
}
