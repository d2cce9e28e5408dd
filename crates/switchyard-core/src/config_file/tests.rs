use proptest::prelude::*;
use serde_json::json;

use super::*;

fn env(var: &str) -> Option<String> {
    match var {
        "OPENAI_API_KEY" => Some("sk-from-env".into()),
        "MITTWALD_URL" => Some("https://llm.aihosting.mittwald.de/v1".into()),
        "APP_VK" => Some("sk-bf-app-key-from-env-0001".into()),
        _ => None,
    }
}

fn parse_ok(v: Value) -> ConfigFile {
    parse(&v.to_string(), env).unwrap_or_else(|e| panic!("{e}"))
}

fn error_at(v: Value) -> (String, String) {
    match parse(&v.to_string(), env) {
        Err(ConfigFileError::Field { path, message }) => (path, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn seed() -> Value {
    json!({
        "providers": {
            "openai": {
                "keys": [{"name": "mittwald-dedicated", "value": "sk-dedicated-0001", "models": ["PREMIUM"], "weight": 1.0}],
                "network_config": {"base_url": "https://your-company.llm.aihosting.mittwald.de/v1"}
            },
            "mittwald-shared": {
                "keys": [{"name": "shared", "value": "env.MITTWALD_SHARED_KEY", "models": ["*"], "weight": 1.0}],
                "network_config": {"base_url": "env.MITTWALD_URL"},
                "custom_provider_config": {"base_provider_type": "openai"}
            }
        }
    })
}

#[test]
fn bifrost_file_only_example_reads_as_read_only_with_env_reference_kept() {
    let text = r#"{"version": 2,
 "client": {"drop_excess_requests": false, "enforce_auth_on_inference": true},
 "providers": {"openai": {"keys": [{"name": "oa-1", "value": "env.OPENAI_API_KEY", "models": ["*"], "weight": 1.0}],
                          "network_config": {"default_request_timeout_in_seconds": 300, "max_retries": 2}}},
 "config_store": {"enabled": false},
 "logs_store": {"enabled": true, "type": "sqlite", "config": {"path": "./logs.db"}}}"#;
    let f = parse(text, env).unwrap();
    assert!(!f.config_store_enabled);
    assert_eq!(f.source_of_truth, SourceOfTruth::Split);
    assert_eq!(f.providers.len(), 1);
    let p = &f.providers[0];
    assert_eq!(p.config.name.as_str(), "openai");
    assert_eq!(p.config.network_config.default_request_timeout_in_seconds, 300);
    assert_eq!(p.keys[0].value, "env.OPENAI_API_KEY", "secrets stay references");
    assert_eq!(p.keys[0].id, file_key_id("openai", "oa-1"));
    assert_eq!(f.client.as_ref().unwrap()["enforce_auth_on_inference"], true);
    assert!(
        f.warnings.iter().any(|w| w.starts_with("logs_store")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn env_references_outside_key_values_are_substituted_when_read() {
    let f = parse_ok(seed());
    let shared = f
        .providers
        .iter()
        .find(|p| p.config.name.as_str() == "mittwald-shared")
        .unwrap();
    assert_eq!(
        shared.config.network_config.base_url.as_deref(),
        Some("https://llm.aihosting.mittwald.de/v1")
    );
    assert_eq!(shared.keys[0].value, "env.MITTWALD_SHARED_KEY");
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("providers.mittwald-shared.keys[0].value")
                && w.contains("MITTWALD_SHARED_KEY")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let text = "{\n  \"providers\": {\n    \"openai\": {,}\n  }\n}";
    match parse(text, env) {
        Err(ConfigFileError::Syntax {
            line,
            column,
            message,
        }) => {
            assert_eq!((line, column), (3, 16), "{message}");
            assert!(!message.contains(" at line "), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let e = parse("{\"providers\": {}", env).unwrap_err();
    assert!(matches!(e, ConfigFileError::Syntax { line: 1, .. }), "{e}");
}

#[test]
fn errors_name_the_exact_field() {
    let mut v = seed();
    v["providers"]["openai"]["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "second", "value": "sk-2", "weight": "heavy"}));
    let (path, msg) = error_at(v);
    assert_eq!(path, "providers.openai.keys[1].weight");
    assert!(msg.contains("invalid type"), "{msg}");

    let mut v = seed();
    v["providers"]["openai"]["network_config"]["base_url"] = json!("ftp://nope");
    assert_eq!(error_at(v).0, "providers.openai.network_config.base_url");

    let mut v = seed();
    v["providers"]["openai"]["network_config"]["max_retries"] = json!(99);
    assert_eq!(error_at(v).0, "providers.openai.network_config.max_retries");

    let mut v = seed();
    v["providers"]["mittwald-shared"]
        .as_object_mut()
        .unwrap()
        .remove("custom_provider_config");
    assert_eq!(error_at(v).0, "providers.mittwald-shared.custom_provider_config");

    let mut v = seed();
    v["providers"]["openai"]["keys"][0]["value"] = json!("env.not-a-var");
    assert_eq!(error_at(v).0, "providers.openai.keys[0].value");

    let mut v = seed();
    v["providers"]["openai"]["keys"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert_eq!(error_at(v).0, "providers.openai.keys[0].name");

    let mut v = seed();
    v["providers"]["openai"]["keys"][0]["name"] = json!("shared");
    v["providers"]["openai"]["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "shared", "value": "sk-2"}));
    assert_eq!(error_at(v).0, "providers.openai.keys[1].name");

    let mut v = seed();
    v["providers"]["bad name!"] = json!({});
    assert_eq!(error_at(v).0, "providers.bad name!");

    let mut v = seed();
    v["providers"]["openai"]["provider"] = json!("anthropic");
    assert_eq!(error_at(v).0, "providers.openai.provider");

    let mut v = seed();
    v["providers"]["mittwald-shared"]["network_config"]["base_url"] = json!("env.UNSET_URL");
    let (path, msg) = error_at(v);
    assert_eq!(path, "providers.mittwald-shared.network_config.base_url");
    assert!(msg.contains("UNSET_URL"), "{msg}");

    let mut v = seed();
    v["provders"] = json!({});
    assert_eq!(error_at(v).0, "provders");

    assert_eq!(error_at(json!({"source_of_truth": "db"})).0, "source_of_truth");
    assert_eq!(
        error_at(json!({"config_store": {"enabled": "no"}})).0,
        "config_store.enabled"
    );
    assert_eq!(error_at(json!([])).0, "(root)");
}

#[test]
fn unknown_fields_inside_a_provider_are_named() {
    let mut v = seed();
    v["providers"]["openai"]["network_config"]["timeout"] = json!(5);
    let (path, msg) = error_at(v);
    assert!(path.starts_with("providers.openai.network_config"), "{path}");
    assert!(msg.contains("timeout"), "{msg}");
}

#[test]
fn client_and_governance_shapes_are_checked() {
    let (path, _) = error_at(json!({"client": {"drop_excess_requests": "yes"}}));
    assert_eq!(path, "client.drop_excess_requests");
    let (path, _) = error_at(json!({"client": {"allowed_origins": ["*", 3]}}));
    assert_eq!(path, "client.allowed_origins");
    let f = parse_ok(json!({"client": {"brand_new_setting": 1}}));
    assert!(f
        .warnings
        .iter()
        .any(|w| w.starts_with("client.brand_new_setting")));

    let gov = json!({"governance": {
        "auth_config": {"admin_username": "admin", "admin_password": "env.ADMIN_PW", "is_enabled": true},
        "rate_limits": [{"id": "rl-1", "request_max_limit": 600, "request_reset_duration": "1m"}],
        "customers": [{"id": "c-1", "name": "acme"}],
        "teams": [{"id": "t-1", "name": "team-a", "customer_id": "c-1"}],
        "virtual_keys": [{"id": "vk-1", "name": "app", "team_id": "t-1", "rate_limit_id": "rl-1",
                          "value": "sk-bf-0123456789abcdef0123",
                          "provider_configs": [{"provider": "openai", "weight": 1.0, "allowed_models": ["*"]}]}],
        "budgets": [{"id": "b-1", "max_limit": 50.0, "reset_duration": "1M", "virtual_key_id": "vk-1"}]
    }});
    let f = parse_ok(gov.clone());
    let g = f.governance.as_ref().unwrap();
    let vk = &g.virtual_keys[0].entity;
    assert_eq!(vk.id, "vk-1");
    assert_eq!(vk.team_id.as_deref(), Some("t-1"));
    // The budget pointing back and the referenced rate limit are folded into the key.
    assert_eq!(vk.budgets.len(), 1);
    assert_eq!(vk.budgets[0].max_limit, 50.0);
    assert_eq!(
        vk.rate_limit.as_ref().and_then(|r| r.request_max_limit),
        Some(600)
    );
    assert_eq!(
        vk.value_hash,
        crate::governance::hash_vk_value("sk-bf-0123456789abcdef0123")
    );
    assert_eq!(g.teams[0].entity.customer_id.as_deref(), Some("c-1"));

    let mut bad = gov.clone();
    bad["governance"]["budgets"][0]["virtual_key_id"] = json!("vk-404");
    let (path, msg) = error_at(bad);
    assert_eq!(path, "governance.budgets[0].virtual_key_id");
    assert!(msg.contains("vk-404"), "{msg}");

    let mut bad = gov.clone();
    bad["governance"]["budgets"][0]["reset_duration"] = json!("monthly");
    assert_eq!(error_at(bad).0, "governance.budgets[0].reset_duration");

    let mut bad = gov.clone();
    bad["governance"]["virtual_keys"][0]["customer_id"] = json!("c-1");
    assert_eq!(error_at(bad).0, "governance.virtual_keys[0].customer_id");

    let mut bad = gov.clone();
    bad["governance"]["teams"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "t-1", "name": "again"}));
    assert_eq!(error_at(bad).0, "governance.teams[1].id");

    let mut bad = gov;
    bad["governance"]["virtual_keys"][0]["provider_configs"][0]["allowed_models"] = json!("*");
    assert_eq!(
        error_at(bad).0,
        "governance.virtual_keys[0].provider_configs[0].allowed_models"
    );
    assert_eq!(error_at(json!({"governance": {"vks": []}})).0, "governance.vks");
}

// --- Reconcile ---------------------------------------------------------------------------------

/// Applies steps the way a store would (the tests' stand-in for the real stores, whose own behaviour
/// the store contract suite covers).
fn apply(stored: &mut Vec<(ProviderConfig, Vec<KeyConfig>)>, steps: &[ReconcileStep]) {
    for s in steps {
        match s {
            ReconcileStep::DeleteProvider(n) => stored.retain(|(p, _)| p.name.as_str() != n),
            ReconcileStep::DeleteKey { provider, key_id } => {
                let (_, keys) = stored
                    .iter_mut()
                    .find(|(p, _)| p.name.as_str() == provider)
                    .unwrap();
                keys.retain(|k| &k.id != key_id);
            }
            ReconcileStep::UpdateProvider(p) => {
                stored.iter_mut().find(|(x, _)| x.name == p.name).unwrap().0 = p.clone();
            }
            ReconcileStep::UpdateKey { provider, key } => {
                let (_, keys) = stored
                    .iter_mut()
                    .find(|(p, _)| p.name.as_str() == provider)
                    .unwrap();
                *keys.iter_mut().find(|k| k.id == key.id).unwrap() = key.clone();
            }
            ReconcileStep::CreateProvider { provider, keys } => stored.push((provider.clone(), keys.clone())),
            ReconcileStep::CreateKey { provider, key } => {
                let (_, keys) = stored
                    .iter_mut()
                    .find(|(p, _)| p.name.as_str() == provider)
                    .unwrap();
                assert!(
                    keys.iter().all(|k| k.name != key.name && k.id != key.id),
                    "create would conflict"
                );
                keys.push(key.clone());
            }
        }
    }
}

fn without_ids(stored: &[(ProviderConfig, Vec<KeyConfig>)]) -> Vec<(ProviderConfig, Vec<KeyConfig>)> {
    let mut v: Vec<_> = stored
        .iter()
        .map(|(p, ks)| {
            let mut ks: Vec<KeyConfig> = ks
                .iter()
                .map(|k| KeyConfig {
                    id: String::new(),
                    ..k.clone()
                })
                .collect();
            ks.sort_by(|a, b| a.name.cmp(&b.name));
            (p.clone(), ks)
        })
        .collect();
    v.sort_by(|a, b| a.0.name.as_str().cmp(b.0.name.as_str()));
    v
}

fn ui_edited_store(file: &ConfigFile) -> Vec<(ProviderConfig, Vec<KeyConfig>)> {
    // The store after the file seeded it and someone then edited through the API: openai's retries
    // changed, its key re-weighted, and an extra provider added.
    let mut stored = as_stored(file);
    let openai = stored
        .iter_mut()
        .find(|(p, _)| p.name.as_str() == "openai")
        .unwrap();
    openai.0.network_config.max_retries = 9;
    openai.1[0].weight = 0.5;
    openai.1.push(KeyConfig {
        id: "ui-key".into(),
        ..openai.1[0].clone()
    });
    openai.1[1].name = "added-in-ui".into();
    let extra = parse_ok(json!({"providers": {"anthropic": {}}}))
        .providers
        .remove(0);
    stored.push((extra.config, vec![]));
    stored
}

#[test]
fn split_mode_only_fills_in_what_the_store_lacks() {
    let file = parse_ok(seed());
    assert_eq!(
        plan_reconcile(&file, &[]).len(),
        2,
        "an empty store gets both providers"
    );
    let mut stored = ui_edited_store(&file);
    let before = stored.clone();
    // Remove the shared provider's key and the shared provider: the file brings them back.
    stored.retain(|(p, _)| p.name.as_str() != "mittwald-shared");
    let steps = plan_reconcile(&file, &stored);
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(
        matches!(&steps[0], ReconcileStep::CreateProvider { provider, .. } if provider.name.as_str() == "mittwald-shared")
    );
    apply(&mut stored, &steps);
    assert_eq!(
        without_ids(&stored),
        without_ids(&before),
        "API edits and additions are kept"
    );
    assert!(
        plan_reconcile(&file, &stored).is_empty(),
        "a second run changes nothing"
    );
}

#[test]
fn config_json_mode_makes_the_store_equal_to_the_file() {
    let mut v = seed();
    v["source_of_truth"] = json!("config.json");
    let file = parse_ok(v);
    let mut stored = ui_edited_store(&file);
    let steps = plan_reconcile(&file, &stored);
    let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "delete provider anthropic",
            "delete key openai/ui-key",
            "update provider openai",
            "update key openai/mittwald-dedicated",
        ]
    );
    let seeded_id = stored
        .iter()
        .find(|(p, _)| p.name.as_str() == "openai")
        .unwrap()
        .1[0]
        .id
        .clone();
    apply(&mut stored, &steps);
    assert_eq!(without_ids(&stored), without_ids(&as_stored(&file)));
    let openai = stored.iter().find(|(p, _)| p.name.as_str() == "openai").unwrap();
    assert_eq!(openai.1[0].id, seeded_id, "a matched key keeps its id");
    assert!(plan_reconcile(&file, &stored).is_empty());
}

// --- Properties -----------------------------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "[a-z*./ _-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("env.OPENAI_API_KEY"),
            Just("env.UNSET"),
            Just("http://127.0.0.1:9/v1"),
            Just("openai"),
            Just("1M"),
            Just("*")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    let keys = prop_oneof![
        Just("providers"),
        Just("keys"),
        Just("name"),
        Just("value"),
        Just("models"),
        Just("weight"),
        Just("network_config"),
        Just("base_url"),
        Just("custom_provider_config"),
        Just("base_provider_type"),
        Just("openai"),
        Just("mittwald"),
        Just("governance"),
        Just("virtual_keys"),
        Just("budgets"),
        Just("id"),
        Just("virtual_key_id"),
        Just("client"),
        Just("config_store"),
        Just("enabled"),
        Just("source_of_truth"),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_file() -> impl Strategy<Value = Value> {
    let key = (
        prop::sample::select(vec!["a", "b", "c", "d"]),
        prop::sample::select(vec!["sk-one-111111111", "sk-two-222222222", "env.OPENAI_API_KEY"]),
        prop::collection::vec(prop::sample::select(vec!["*", "m1", "m2"]), 0..3),
        0.0f64..10.0,
        any::<bool>(),
    )
        .prop_map(|(name, value, models, weight, enabled)| {
            json!({"name": name, "value": value, "models": models, "weight": weight, "enabled": enabled})
        });
    let provider = (
        prop::collection::vec(key, 0..4),
        0u32..5,
        prop::option::of(prop::sample::select(vec!["openai", "anthropic"])),
    )
        .prop_map(|(keys, retries, fallback)| {
            let mut seen = HashSet::new();
            let keys: Vec<Value> = keys.into_iter().filter(|k| seen.insert(k["name"].to_string())).collect();
            json!({"keys": keys, "network_config": {"base_url": "http://127.0.0.1:9/v1", "max_retries": retries},
                   "custom_provider_config": {"base_provider_type": "openai"},
                   "fallbacks": fallback.into_iter().collect::<Vec<_>>()})
        });
    (
        prop::collection::btree_map(prop::sample::select(vec!["p1", "p2", "p3", "p4"]), provider, 0..4),
        any::<bool>(),
    )
        .prop_map(|(providers, authoritative)| {
            json!({"providers": providers,
                   "source_of_truth": if authoritative { "config.json" } else { "split" }})
        })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        let _ = parse(&text, env);
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = parse(&v.to_string(), env);
        let _ = parse(&json!({"providers": {"openai": v.clone()}}).to_string(), env);
        let _ = parse(&json!({"governance": v.clone(), "client": v}).to_string(), env);
    }

    #[test]
    fn any_cut_of_a_valid_file_is_an_error_not_a_panic(cut in 0usize..400) {
        let text = serde_json::to_string_pretty(&seed()).unwrap();
        let cut = cut.min(text.len());
        if text.is_char_boundary(cut) && cut < text.len() {
            prop_assert!(parse(&text[..cut], env).is_err());
        }
    }

    /// Whatever the store held, applying the plan gives the file's providers and keys (authoritative)
    /// or keeps everything stored and adds what was missing (split), and a second plan is empty.
    #[test]
    fn reconcile_converges(file in arb_file(), stored_file in arb_file()) {
        let file = parse(&file.to_string(), env).unwrap();
        let stored_src = parse(&stored_file.to_string(), env).unwrap();
        let mut stored = as_stored(&stored_src);
        // Stored keys with ids unlike the file's, as the API would have made them.
        for (p, keys) in stored.iter_mut() {
            for (i, k) in keys.iter_mut().enumerate() {
                k.id = format!("api-{}-{i}", p.name);
            }
        }
        let before = stored.clone();
        let steps = plan_reconcile(&file, &stored);
        apply(&mut stored, &steps);
        match file.source_of_truth {
            SourceOfTruth::File => prop_assert_eq!(without_ids(&stored), without_ids(&as_stored(&file))),
            SourceOfTruth::Split => {
                for (p, keys) in &before {
                    let (now_p, now_keys) = stored.iter().find(|(x, _)| x.name == p.name).unwrap();
                    prop_assert_eq!(now_p, p);
                    for k in keys {
                        prop_assert!(now_keys.contains(k));
                    }
                }
                for fp in &file.providers {
                    let (_, now_keys) = stored.iter().find(|(x, _)| x.name == fp.config.name).unwrap();
                    for k in &fp.keys {
                        prop_assert!(now_keys.iter().any(|n| n.name == k.name));
                    }
                }
            }
        }
        prop_assert!(plan_reconcile(&file, &stored).is_empty());
    }
}

fn gov_file(mode: &str) -> Value {
    json!({"source_of_truth": mode, "governance": {
        "customers": [{"id": "c-1", "name": "acme"}],
        "teams": [{"id": "t-1", "name": "team-a", "customer_id": "c-1"}],
        "virtual_keys": [{"id": "vk-1", "name": "app", "team_id": "t-1", "value": "env.APP_VK",
                          "budgets": [{"max_limit": 5.0, "reset_duration": "1d"}]}]
    }})
}

#[test]
fn governance_entries_are_validated_like_api_bodies() {
    let mut bad = gov_file("split");
    bad["governance"]["virtual_keys"][0]["budgets"][0]["reset_duration"] = json!("daily");
    let (path, _) = error_at(bad);
    assert_eq!(path, "governance.virtual_keys[0].budgets[0].reset_duration");

    let mut bad = gov_file("split");
    bad["governance"]["virtual_keys"][0]["budgets"][0]["max_limit"] = json!(-1.0);
    assert_eq!(error_at(bad).0, "governance.virtual_keys[0].budgets[0].max_limit");

    let mut bad = gov_file("split");
    bad["governance"]["virtual_keys"][0]
        .as_object_mut()
        .unwrap()
        .remove("value");
    let (path, msg) = error_at(bad);
    assert_eq!(path, "governance.virtual_keys[0].value");
    assert!(msg.contains("required"), "{msg}");

    let mut bad = gov_file("split");
    bad["governance"]["virtual_keys"][0]["value"] = json!("too-short");
    assert_eq!(error_at(bad).0, "governance.virtual_keys[0].value");

    let mut bad = gov_file("split");
    bad["governance"]["virtual_keys"][0]["value"] = json!("env.NOT_SET_ANYWHERE");
    let (path, msg) = error_at(bad);
    assert_eq!(path, "governance.virtual_keys[0].value");
    assert!(msg.contains("NOT_SET_ANYWHERE"), "{msg}");

    let mut bad = gov_file("split");
    bad["governance"]["teams"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "no id"}));
    assert_eq!(error_at(bad).0, "governance.teams[1].id");

    let mut bad = gov_file("split");
    bad["governance"]["customers"][0]["budgetz"] = json!([]);
    assert_eq!(error_at(bad).0, "governance.customers[0].budgetz");
}

#[test]
fn governance_plan_seeds_in_split_and_makes_equal_in_config_json() {
    use super::governance::{plan_governance, StoredGovernance};
    let split = parse_ok(gov_file("split"));
    let g = split.governance.as_ref().unwrap();
    let empty = StoredGovernance {
        virtual_keys: &[],
        teams: &[],
        customers: &[],
        pricing_overrides: &[],
    };
    let steps = plan_governance(g, SourceOfTruth::Split, &empty);
    let names: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "create customer c-1",
            "create team t-1",
            "create virtual key vk-1"
        ]
    );

    // What the store holds after seeding, edited through the API, plus one key made there.
    let mut vk = g.virtual_keys[0].entity.clone();
    vk.created_at_ms = 1_000;
    vk.name = "renamed in the UI".into();
    let mut api_key = vk.clone();
    api_key.id = "vk-api".into();
    api_key.value_hash = "other".into();
    let mut team = g.teams[0].entity.clone();
    team.created_at_ms = 1_000;
    let mut customer = g.customers[0].entity.clone();
    customer.created_at_ms = 1_000;
    let keys = [vk.clone(), api_key];
    let teams = [team];
    let customers = [customer];
    let stored = StoredGovernance {
        virtual_keys: &keys,
        teams: &teams,
        customers: &customers,
        pricing_overrides: &[],
    };
    assert!(plan_governance(g, SourceOfTruth::Split, &stored).is_empty());

    let file = parse_ok(gov_file("config.json"));
    let steps = plan_governance(file.governance.as_ref().unwrap(), SourceOfTruth::File, &stored);
    let mut expected = vk;
    expected.name = "app".into();
    assert_eq!(
        steps,
        [
            GovernanceStep::UpdateVirtualKey(expected),
            GovernanceStep::DeleteVirtualKey("vk-api".into())
        ]
    );

    // A new value in the file replaces the key: the old row goes first, the new one keeps its time.
    let mut changed = gov_file("config.json");
    changed["governance"]["virtual_keys"][0]["value"] = json!("sk-bf-another-value-0000000000");
    changed["governance"]["virtual_keys"][0]["name"] = json!("renamed in the UI");
    let file = parse_ok(changed);
    let steps = plan_governance(file.governance.as_ref().unwrap(), SourceOfTruth::File, &stored);
    assert_eq!(steps[0], GovernanceStep::DeleteVirtualKey("vk-1".into()));
    match &steps[1] {
        GovernanceStep::CreateVirtualKey(k) => assert_eq!(k.created_at_ms, 1_000),
        other => panic!("expected a create, got {other}"),
    }
}

#[test]
fn client_enforce_setting_under_either_name() {
    let f = parse_ok(json!({"client": {"enforce_governance_header": true}}));
    assert_eq!(f.enforce_auth_on_inference, Some(true));
    let f = parse_ok(json!({"client": {"enforce_auth_on_inference": false}}));
    assert_eq!(f.enforce_auth_on_inference, Some(false));
    assert_eq!(parse_ok(json!({})).enforce_auth_on_inference, None);
}

#[test]
fn keys_take_aliases_and_providers_take_the_mittwald_switches() {
    let mut v = seed();
    v["providers"]["mittwald-shared"]["case_insensitive_model_ids"] = json!(true);
    v["providers"]["mittwald-shared"]["model_discovery"] = json!(true);
    v["providers"]["mittwald-shared"]["keys"][0]["aliases"] =
        json!({"Mistral-Small-3.2-24B-Instruct": "Ministral-3-14B-Instruct-2512"});
    let file = parse_ok(v.clone());
    let shared = file
        .providers
        .iter()
        .find(|p| p.config.name.as_str() == "mittwald-shared")
        .unwrap();
    assert!(shared.config.case_insensitive_model_ids && shared.config.model_discovery);
    assert_eq!(
        shared.keys[0].aliases["Mistral-Small-3.2-24B-Instruct"],
        "Ministral-3-14B-Instruct-2512"
    );
    v["providers"]["mittwald-shared"]["keys"][0]["aliases"] = json!({"a": "*"});
    let (path, _) = error_at(v);
    assert!(path.ends_with("aliases.a"), "{path}");
}
