//! LiteLLM's `config.yaml` (already parsed into a JSON value) turned into Switchyard's `config.json`:
//! each `model_list` deployment becomes an OpenAI-compatible provider with one key serving the
//! upstream id (a `model_name` that differs from it becomes a key alias of it); deployments sharing a
//! `model_name` are one routable name split by their `weight`;
//! `fallbacks` (from `router_settings` or `litellm_settings`) become the providers' fallback chains.
//! Settings without a Switchyard equivalent are reported by name, never silently dropped.

use serde_json::{json, Map, Value};

use crate::ValidationError;

/// What the import produced.
#[derive(Debug)]
pub struct Imported {
    /// A `config.json` document (Bifrost's format).
    pub config: Value,
    /// Settings that were not carried over, by name.
    pub warnings: Vec<String>,
    /// `general_settings.master_key`, as an environment reference (`os.environ/VAR` → `VAR`) or
    /// `Literal` when the file holds the key itself (never copied into the config).
    pub master_key: Option<MasterKeySource>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MasterKeySource {
    Env(String),
    Literal,
}

/// `os.environ/VAR` as Switchyard's `env.VAR`; anything else as is.
fn env_ref(v: &str) -> String {
    match v.strip_prefix("os.environ/") {
        Some(var) => format!("env.{var}"),
        None => v.to_owned(),
    }
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

/// A provider name from a model name: letters, digits, '-', '_' and '.', at most 60 characters.
fn provider_name(model_name: &str, index: usize, of: usize) -> String {
    let base: String = model_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    let base = if base.is_empty() {
        "litellm".to_owned()
    } else {
        base
    };
    if of > 1 {
        format!("{base}-{}", index + 1)
    } else {
        base
    }
}

/// One `model_list` entry.
struct Deployment {
    model_name: String,
    upstream_id: String,
    provider: String,
    base_url: String,
    key: String,
    weight: f64,
}

const KNOWN_PARAMS: &[&str] = &["model", "api_base", "api_key", "weight", "rpm", "tpm", "order"];

fn deployment(i: usize, entry: &Value, warnings: &mut Vec<String>) -> Result<Deployment, ValidationError> {
    let at = format!("model_list[{i}]");
    let model_name = entry
        .get("model_name")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{at}.model_name"), "is required"))?;
    let params = entry
        .get("litellm_params")
        .and_then(Value::as_object)
        .ok_or_else(|| err(format!("{at}.litellm_params"), "is required"))?;
    let model = params.get("model").and_then(Value::as_str).ok_or_else(|| {
        err(
            format!("{at}.litellm_params.model"),
            "is required, e.g. 'openai/<id>'",
        )
    })?;
    let upstream_id = ["openai/", "hosted_vllm/", "openai_compatible/"]
        .iter()
        .find_map(|p| model.strip_prefix(p))
        .ok_or_else(|| {
            err(
                format!("{at}.litellm_params.model"),
                format!("'{model}': only OpenAI-compatible deployments ('openai/<id>') can be imported"),
            )
        })?;
    let base_url = params
        .get("api_base")
        .and_then(Value::as_str)
        .map_or_else(|| "https://api.openai.com/v1".to_owned(), env_ref);
    let key = params
        .get("api_key")
        .and_then(Value::as_str)
        .map(env_ref)
        .ok_or_else(|| {
            err(
                format!("{at}.litellm_params.api_key"),
                "is required ('os.environ/VAR' or the key)",
            )
        })?;
    if !key.starts_with("env.") {
        warnings.push(format!(
            "{at}.litellm_params.api_key: a literal key is copied into config.json; prefer os.environ/VAR"
        ));
    }
    let weight = params.get("weight").and_then(Value::as_f64).unwrap_or(1.0);
    for name in ["rpm", "tpm", "order"] {
        if params.contains_key(name) {
            warnings.push(format!(
                "{at}.litellm_params.{name}: deployment {name} is not carried over (use virtual-key limits, weights and fallbacks)"
            ));
        }
    }
    for name in params.keys().filter(|k| !KNOWN_PARAMS.contains(&k.as_str())) {
        warnings.push(format!("{at}.litellm_params.{name}: not supported, ignored"));
    }
    for name in entry
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| !["model_name", "litellm_params"].contains(&k.as_str()))
    {
        warnings.push(format!("{at}.{name}: not supported, ignored"));
    }
    Ok(Deployment {
        model_name: model_name.to_owned(),
        upstream_id: upstream_id.to_owned(),
        provider: String::new(),
        base_url,
        key,
        weight,
    })
}

/// `fallbacks: [{"group": ["other", ...]}, ...]` from `router_settings`, else `litellm_settings`.
fn fallbacks(doc: &Value) -> Result<Vec<(String, Vec<String>)>, ValidationError> {
    let (section, list) = match ["router_settings", "litellm_settings"]
        .iter()
        .find_map(|s| Some((*s, doc.get(s)?.get("fallbacks")?)))
    {
        Some(found) => found,
        None => return Ok(Vec::new()),
    };
    let bad = |i: usize| {
        err(
            format!("{section}.fallbacks[{i}]"),
            "must be {\"model_name\": [\"fallback\", ...]}",
        )
    };
    let mut out = Vec::new();
    for (i, item) in list.as_array().ok_or_else(|| bad(0))?.iter().enumerate() {
        for (from, to) in item.as_object().ok_or_else(|| bad(i))? {
            let to: Vec<String> = to
                .as_array()
                .ok_or_else(|| bad(i))?
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(i)))
                .collect::<Result<_, _>>()?;
            out.push((from.clone(), to));
        }
    }
    Ok(out)
}

fn report_section(doc: &Value, section: &str, handled: &[&str], warnings: &mut Vec<String>) {
    if let Some(obj) = doc.get(section).and_then(Value::as_object) {
        for k in obj.keys().filter(|k| !handled.contains(&k.as_str())) {
            warnings.push(format!("{section}.{k}: not supported, ignored"));
        }
    }
}

fn master_key(doc: &Value) -> Option<MasterKeySource> {
    let mk = doc.get("general_settings")?.get("master_key")?.as_str()?;
    Some(match mk.strip_prefix("os.environ/") {
        Some(var) => MasterKeySource::Env(var.to_owned()),
        None => MasterKeySource::Literal,
    })
}

/// Converts a parsed `config.yaml`.
pub fn import(doc: &Value) -> Result<Imported, ValidationError> {
    let mut warnings = Vec::new();
    let list = doc
        .get("model_list")
        .and_then(Value::as_array)
        .ok_or_else(|| err("model_list", "is required: a list of deployments"))?;
    let mut deps = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        deps.push(deployment(i, entry, &mut warnings)?);
    }
    let names: Vec<String> = deps.iter().map(|d| d.model_name.clone()).collect();
    for i in 0..deps.len() {
        let same: Vec<usize> = (0..deps.len()).filter(|j| names[*j] == names[i]).collect();
        let pos = same.iter().position(|j| *j == i).unwrap_or(0);
        deps[i].provider = provider_name(&names[i], pos, same.len());
    }
    let chains = fallbacks(doc)?;
    for (from, to) in &chains {
        for name in std::iter::once(from).chain(to) {
            if !names.contains(name) {
                return Err(err(
                    "fallbacks",
                    format!("'{name}' is not a model_name of model_list"),
                ));
            }
        }
    }
    let mut providers = Map::new();
    for d in &deps {
        let chain: Vec<String> = chains
            .iter()
            .filter(|(from, _)| from == &d.model_name)
            .flat_map(|(_, to)| to)
            .flat_map(|to| deps.iter().filter(move |o| &o.model_name == to))
            .map(|o| format!("{}/{}", o.provider, o.upstream_id))
            .collect();
        let mut key = json!({"name": format!("{}-key", d.provider), "value": d.key, "models": [d.upstream_id], "weight": d.weight});
        // A group named other than its upstream id: the name is a key alias of the id.
        if d.model_name != d.upstream_id {
            key["aliases"] = json!({ d.model_name.clone(): d.upstream_id });
        }
        let mut p = json!({
            "keys": [key],
            "network_config": {"base_url": d.base_url},
            "custom_provider_config": {"base_provider_type": "openai"},
        });
        if !chain.is_empty() {
            p["fallbacks"] = json!(chain);
        }
        providers.insert(d.provider.clone(), p);
    }
    report_section(doc, "router_settings", &["fallbacks"], &mut warnings);
    report_section(doc, "litellm_settings", &["fallbacks"], &mut warnings);
    report_section(doc, "general_settings", &["master_key"], &mut warnings);
    for top in doc.as_object().into_iter().flat_map(|o| o.keys()) {
        if ![
            "model_list",
            "router_settings",
            "litellm_settings",
            "general_settings",
        ]
        .contains(&top.as_str())
        {
            warnings.push(format!("{top}: not supported, ignored"));
        }
    }
    Ok(Imported {
        config: json!({"source_of_truth": "split", "providers": providers}),
        warnings,
        master_key: master_key(doc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn guide() -> Value {
        json!({
            "model_list": [
                {"model_name": "gpt-oss-120b", "litellm_params": {"model": "openai/gpt-oss-120b",
                    "api_base": "https://a.example/v1", "api_key": "os.environ/KEY_A", "weight": 3, "rpm": 100}},
                {"model_name": "gpt-oss-120b", "litellm_params": {"model": "openai/gpt-oss-120b",
                    "api_base": "os.environ/BASE_B", "api_key": "os.environ/KEY_B", "weight": 1}},
                {"model_name": "Qwen3.5-0.8B", "litellm_params": {"model": "openai/Qwen3.5-0.8B",
                    "api_base": "https://c.example", "api_key": "os.environ/KEY_C"}}
            ],
            "router_settings": {"fallbacks": [{"gpt-oss-120b": ["Qwen3.5-0.8B"]}], "routing_strategy": "simple-shuffle"},
            "litellm_settings": {"drop_params": true},
            "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY", "database_url": "postgres://x"}
        })
    }

    #[test]
    fn a_model_group_becomes_weighted_providers_with_fallbacks() {
        let out = import(&guide()).unwrap();
        let p = &out.config["providers"];
        assert_eq!(p["gpt-oss-120b-1"]["keys"][0]["weight"], 3.0);
        assert_eq!(p["gpt-oss-120b-1"]["keys"][0]["value"], "env.KEY_A");
        assert_eq!(p["gpt-oss-120b-1"]["keys"][0]["models"], json!(["gpt-oss-120b"]));
        assert_eq!(p["gpt-oss-120b-2"]["network_config"]["base_url"], "env.BASE_B");
        assert_eq!(
            p["gpt-oss-120b-1"]["fallbacks"],
            json!(["Qwen3.5-0.8B/Qwen3.5-0.8B"])
        );
        assert!(p["Qwen3.5-0.8B"]["fallbacks"].is_null());
        assert_eq!(
            out.master_key,
            Some(MasterKeySource::Env("LITELLM_MASTER_KEY".into()))
        );
        for name in [
            "model_list[0].litellm_params.rpm",
            "router_settings.routing_strategy",
            "litellm_settings.drop_params",
            "general_settings.database_url",
        ] {
            assert!(
                out.warnings.iter().any(|w| w.starts_with(name)),
                "{name}: {:?}",
                out.warnings
            );
        }
    }

    #[test]
    fn mistakes_name_their_place() {
        let mut d = guide();
        d["model_list"][1]["litellm_params"]["model"] = json!("anthropic/claude");
        assert_eq!(
            import(&d).unwrap_err().field,
            "model_list[1].litellm_params.model"
        );
        // A group named other than its upstream id routes by an alias of the id.
        let mut d = guide();
        d["model_list"][2]["model_name"] = json!("small");
        d["router_settings"]["fallbacks"] = json!([{"gpt-oss-120b": ["small"]}]);
        let config = import(&d).unwrap().config;
        let key = &config["providers"]["small"]["keys"][0];
        assert_eq!(key["aliases"], json!({"small": "Qwen3.5-0.8B"}), "{config}");
        assert_eq!(key["models"], json!(["Qwen3.5-0.8B"]));
        let mut d = guide();
        d["router_settings"]["fallbacks"] = json!([{"gpt-oss-120b": ["nope"]}]);
        assert_eq!(import(&d).unwrap_err().field, "fallbacks");
        assert_eq!(import(&json!({})).unwrap_err().field, "model_list");
        let mut d = guide();
        d["general_settings"]["master_key"] = json!("sk-1234");
        let out = import(&d).unwrap();
        assert_eq!(out.master_key, Some(MasterKeySource::Literal));
        assert!(!out.config.to_string().contains("sk-1234"));
    }

    proptest! {
        #[test]
        fn never_panics(names in proptest::collection::vec("[a-zA-Z0-9./ _-]{0,12}", 0..4), w in -2.0f64..5.0) {
            let list: Vec<Value> = names.iter().map(|n| json!({"model_name": n,
                "litellm_params": {"model": format!("openai/{n}"), "api_key": "k", "weight": w}})).collect();
            let _ = import(&json!({"model_list": list, "litellm_settings": {"fallbacks": [{"a": ["b"]}]}}));
        }
    }
}
