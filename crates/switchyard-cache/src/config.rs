//! The `semantic_cache` plugin (Bifrost's name and shape): `{"name": "semantic_cache", "enabled",
//! "config"}`, read from `POST/PUT /api/plugins` bodies and from `config.json`'s `"plugins"`. Every
//! rejection names the JSON path of the field at fault.

use std::time::Duration;

use serde_json::{Map, Value};
use switchyard_core::config::ValidationError;

/// The plugin's name in Bifrost's API and config files.
pub const PLUGIN_NAME: &str = "semantic_cache";
/// Bifrost's default similarity threshold.
pub const DEFAULT_THRESHOLD: f64 = 0.8;
/// Bifrost's default time to live.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The longest cache key or default key accepted, in bytes.
pub const MAX_CACHE_KEY_BYTES: usize = 256;

/// A plugin as the API and `config.json` carry it. `config` is kept as sent (fields this gateway does
/// not use are kept and shown back, not applied).
#[derive(Clone, Debug, PartialEq)]
pub struct PluginInput {
    pub name: String,
    pub enabled: bool,
    pub config: Value,
}

/// Where embeddings come from: a model served through the gateway.
#[derive(Clone, Debug, PartialEq)]
pub struct Semantic {
    pub provider: String,
    pub embedding_model: String,
}

impl Semantic {
    /// The model as the gateway routes it (`provider/model`).
    pub fn model_ref(&self) -> String {
        format!("{}/{}", self.provider, self.embedding_model)
    }
}

/// The cache as the gateway applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheConfig {
    pub enabled: bool,
    /// `None`: exact matches only (`dimension: 1`, or no embedding model named).
    pub semantic: Option<Semantic>,
    pub threshold: f64,
    pub ttl: Duration,
    /// Used when a request sends no `x-bf-cache-key`; without either the cache is not used.
    pub default_cache_key: Option<String>,
    /// When set, callers with different virtual keys share entries.
    pub disable_identity_scoping: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            semantic: None,
            threshold: DEFAULT_THRESHOLD,
            ttl: DEFAULT_TTL,
            default_cache_key: None,
            disable_identity_scoping: false,
        }
    }
}

fn err(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

/// Reads a plugin entry (`{"name", "enabled", "config"}`); `path` prefixes the fields reported
/// (`""` for an API body, `"plugins[0]"` in a file).
pub fn parse_plugin(v: &Value, path: &str) -> Result<PluginInput, ValidationError> {
    let at = |f: &str| {
        if path.is_empty() {
            f.to_owned()
        } else {
            format!("{path}.{f}")
        }
    };
    let Some(obj) = v.as_object() else {
        return Err(err(
            path,
            "a plugin must be a JSON object with name, enabled and config",
        ));
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(err(&at("name"), "name must be a non-empty string")),
        None => return Err(err(&at("name"), "name is required")),
    };
    let enabled = match obj.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err(&at("enabled"), "enabled must be true or false")),
    };
    let config = match obj.get("config") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(err(&at("config"), "config must be a JSON object")),
    };
    Ok(PluginInput {
        name,
        enabled,
        config,
    })
}

impl PluginInput {
    /// The cache this plugin configures (only for [`PLUGIN_NAME`]).
    pub fn cache_config(&self, path: &str) -> Result<CacheConfig, ValidationError> {
        let mut c = parse_cache_config(&self.config, &join(path, "config"))?;
        c.enabled = self.enabled;
        Ok(c)
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"name": self.name, "enabled": self.enabled, "config": self.config})
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<&'a str>, ValidationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(&join(path, field), format!("{field} must be a string"))),
    }
}

/// Reads the plugin's `config` object.
pub fn parse_cache_config(v: &Value, path: &str) -> Result<CacheConfig, ValidationError> {
    let Some(obj) = v.as_object() else {
        return Err(err(path, "config must be a JSON object"));
    };
    let mut c = CacheConfig::default();
    if let Some(t) = obj.get("threshold").filter(|t| !t.is_null()) {
        c.threshold = parse_threshold(t).map_err(|m| err(&join(path, "threshold"), m))?;
    }
    if let Some(t) = obj.get("ttl").filter(|t| !t.is_null()) {
        c.ttl = parse_ttl(t).map_err(|m| err(&join(path, "ttl"), m))?;
    }
    if let Some(k) = opt_str(obj, "default_cache_key", path)? {
        check_cache_key(k).map_err(|m| err(&join(path, "default_cache_key"), m))?;
        c.default_cache_key = Some(k.to_owned());
    }
    c.disable_identity_scoping = match obj.get("disable_identity_scoping") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(err(
                &join(path, "disable_identity_scoping"),
                "disable_identity_scoping must be true or false",
            ))
        }
    };
    let dimension = match obj.get("dimension") {
        None | Some(Value::Null) => None,
        Some(d) => match d.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                return Err(err(
                    &join(path, "dimension"),
                    "dimension must be a positive integer",
                ))
            }
        },
    };
    let provider = opt_str(obj, "provider", path)?;
    let model = opt_str(obj, "embedding_model", path)?;
    c.semantic = match (dimension, provider, model) {
        (Some(1), _, _) => None,
        (_, Some(p), Some(m)) => Some(Semantic {
            provider: p.to_owned(),
            embedding_model: m.to_owned(),
        }),
        (Some(_), None, _) => {
            return Err(err(
                &join(path, "provider"),
                "provider is required for semantic caching (the provider that serves embedding_model); use dimension: 1 for exact matches only",
            ))
        }
        (Some(_), Some(_), None) | (None, Some(_), None) => {
            return Err(err(
                &join(path, "embedding_model"),
                "embedding_model is required with provider (or use dimension: 1 for exact matches only)",
            ))
        }
        (None, None, _) => None,
    };
    Ok(c)
}

/// A threshold: a number from 0 to 1.
pub fn parse_threshold(v: &Value) -> Result<f64, String> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err("threshold must be a number from 0 to 1".into()),
    }
}

/// A time to live: seconds as a number, or a duration string (`"5m"`, `"1h30m"`, `"2s"`, `"2"`).
pub fn parse_ttl(v: &Value) -> Result<Duration, String> {
    let d = match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64),
        Value::String(s) => parse_duration(s),
        _ => None,
    };
    d.filter(|d| !d.is_zero() && d.as_secs() <= 365 * 24 * 3600).ok_or_else(|| {
        "ttl must be a positive duration: seconds (300) or a duration string (\"5m\", \"1h30m\", \"2s\"), at most a year"
            .into()
    })
}

/// Go's duration syntax (`300ms`, `2s`, `5m`, `1h30m`), or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let scale = match &after[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &after[unit_end..];
    }
    (total.is_finite() && total > 0.0).then(|| Duration::from_secs_f64(total))
}

/// A cache key (header or default): not empty, at most [`MAX_CACHE_KEY_BYTES`], no control
/// characters.
pub fn check_cache_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("the cache key must not be empty".into());
    }
    if k.len() > MAX_CACHE_KEY_BYTES {
        return Err(format!("the cache key is over {MAX_CACHE_KEY_BYTES} bytes"));
    }
    if k.chars().any(char::is_control) {
        return Err("the cache key must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_in_go_syntax_and_seconds() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        for bad in ["", "m", "5x", "-1s", "0", "5 m", "s5"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_ttl(&json!(60)), Ok(Duration::from_secs(60)));
        assert!(parse_ttl(&json!(0)).is_err());
        assert!(parse_ttl(&json!(true)).is_err());
    }

    #[test]
    fn exact_only_and_semantic_configs() {
        let exact = parse_cache_config(&json!({"dimension": 1, "ttl": "5m"}), "config").unwrap();
        assert_eq!(exact.semantic, None);
        assert_eq!(exact.ttl, Duration::from_secs(300));
        assert_eq!(exact.threshold, 0.8);
        let sem = parse_cache_config(
            &json!({"provider": "local", "embedding_model": "bow", "dimension": 64, "threshold": 0.9}),
            "config",
        )
        .unwrap();
        assert_eq!(sem.semantic.unwrap().model_ref(), "local/bow");
        assert_eq!(sem.threshold, 0.9);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_cache_config(&json!({"threshold": 2}), "plugins[0].config").unwrap_err();
        assert_eq!(e.field, "plugins[0].config.threshold");
        let e = parse_cache_config(&json!({"dimension": 1536}), "config").unwrap_err();
        assert_eq!(e.field, "config.provider");
        let e = parse_cache_config(&json!({"ttl": "forever"}), "config").unwrap_err();
        assert_eq!(e.field, "config.ttl");
        let e = parse_plugin(&json!({"enabled": true}), "").unwrap_err();
        assert_eq!(e.field, "name");
        let e = parse_plugin(&json!({"name": "semantic_cache", "config": []}), "").unwrap_err();
        assert_eq!(e.field, "config");
    }
}
