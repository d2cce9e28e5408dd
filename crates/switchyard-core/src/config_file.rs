//! `config.json`: configuration as code, in Bifrost's file format.
//!
//! [`parse`] turns the file's text into a [`ConfigFile`] or into one [`ConfigFileError`] that names the
//! exact place: line and column for a syntax error, the JSON path (`providers.openai.keys[1].weight`)
//! for everything else. [`plan_reconcile`] decides what to change in a config store so that it agrees
//! with the file; the caller applies the steps. Both are pure.
//!
//! What the file may hold (Bifrost's top-level keys):
//! - `providers` (used): `{name: {keys: [...], network_config, concurrency_and_buffer_size,
//!   custom_provider_config, send_back_raw_response, store_raw_request_response, fallbacks,
//!   circuit_breaker}}`, validated exactly like the management API's bodies.
//! - `source_of_truth` (used): `"split"` (default) or `"config.json"`; see [`plan_reconcile`].
//! - `config_store` (used): `{"enabled": false}` makes the file the only source (read-only mode).
//! - `governance` (used): virtual keys, teams and customers with their budgets and rate limits, read
//!   through the management API's input types ([`governance::parse_governance`]) and reconciled with
//!   the governance store by [`governance::plan_governance`] under the same `source_of_truth`.
//! - `client` (shape-checked; `enforce_auth_on_inference`, or its old name
//!   `enforce_governance_header`, is used).
//! - `plugins` and `vector_store`: kept as written for the gateway (the response cache reads them).
//! - `$schema`, `version`, `encryption_key`, `logs_store`, `mcp`,
//!   `framework`, `websocket` and Bifrost's enterprise blocks: accepted, not applied (a warning says so).
//!
//! `env.VAR` references: a key's `value` keeps the reference (resolved whenever the config snapshot is
//! built, like a value sent to the API); any other string in `providers` that is exactly `env.VAR` is
//! replaced by the variable's value when the file is read, and an unset variable is an error there.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::config::{validate_key_id, KeyConfig, KeyInput, ProviderConfig, ProviderInput, ValidationError};
use crate::provider::ProviderName;
use crate::secret;

pub mod governance;
mod governance_shape;
pub use governance::{FileGovernance, GovernanceStep};
use governance_shape::check_governance;

/// Which side wins when the file and the store disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceOfTruth {
    /// `"split"`: the file seeds. What it has and the store lacks is created; what both have is left
    /// as the store holds it (edits made through the API or UI win); nothing is deleted.
    Split,
    /// `"config.json"`: the file is authoritative for providers and keys. The store is made equal to
    /// it: providers and keys are created, updated to the file's content, and deleted when the file
    /// does not list them.
    File,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConfigFile {
    pub source_of_truth: SourceOfTruth,
    /// `false` (`"config_store": {"enabled": false}`): the file is the only source, read-only.
    pub config_store_enabled: bool,
    pub providers: Vec<FileProvider>,
    /// The `client` block, shape-checked.
    pub client: Option<Value>,
    /// `client.enforce_auth_on_inference` (or `client.enforce_governance_header`).
    pub enforce_auth_on_inference: Option<bool>,
    /// The `governance` block, validated.
    pub governance: Option<FileGovernance>,
    /// The `plugins` array as written (the gateway reads `semantic_cache` from it).
    pub plugins: Vec<Value>,
    /// The `vector_store` block as written (`{"enabled", "type": "redis", "config": {"addr"}}`).
    pub vector_store: Option<Value>,
    /// The `mcp` block (MCP servers and the tool manager's settings), validated.
    pub mcp: Option<crate::mcp::McpFileConfig>,
    /// The `guardrails` array, each entry validated where it is applied (`switchyard-guardrails`).
    pub guardrails: Vec<Value>,
    /// Things accepted but not applied, and `env.VAR` key references not set in this environment.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileProvider {
    pub config: ProviderConfig,
    /// Keys with their ids: the file's `id`, or a stable id derived from provider and key name (so
    /// every replica and every restart gives a file key the same id).
    pub keys: Vec<KeyConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigFileError {
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

fn field(path: impl Into<String>, message: impl Into<String>) -> ConfigFileError {
    ConfigFileError::Field {
        path: path.into(),
        message: message.into(),
    }
}

const TOP_LEVEL_IGNORED: &[&str] = &[
    "$schema",
    "version",
    "encryption_key",
    "logs_store",
    "framework",
    "websocket",
    "cluster_config",
    "guardrails_config",
    "alerting",
    "access_profiles",
];
const TOP_LEVEL_USED: &[&str] = &[
    "providers",
    "source_of_truth",
    "config_store",
    "client",
    "governance",
    "plugins",
    "vector_store",
    "mcp",
    "guardrails",
];

/// Reads a config file. `env` looks up environment variables (passed in: the core does no I/O).
pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<ConfigFile, ConfigFileError> {
    let root: Value = serde_json::from_str(text).map_err(|e| ConfigFileError::Syntax {
        line: e.line(),
        column: e.column(),
        message: syntax_message(&e),
    })?;
    let Value::Object(root) = root else {
        return Err(field("(root)", "the file must hold a JSON object"));
    };
    let mut warnings = Vec::new();
    for k in root.keys() {
        if TOP_LEVEL_IGNORED.contains(&k.as_str()) {
            if k != "$schema" && k != "version" {
                warnings.push(format!(
                    "{k}: accepted but not applied by Switchyard's config file loader"
                ));
            }
        } else if !TOP_LEVEL_USED.contains(&k.as_str()) {
            return Err(field(
                k.clone(),
                format!(
                    "unknown top-level field; expected one of {}",
                    TOP_LEVEL_USED.join(", ")
                ),
            ));
        }
    }
    if let Some(v) = root.get("version") {
        if !matches!(v.as_u64(), Some(1 | 2)) {
            return Err(field("version", "must be 1 or 2"));
        }
    }
    if let Some(v) = root.get("$schema") {
        if !v.is_string() {
            return Err(field("$schema", "must be a string"));
        }
    }
    let source_of_truth = match root.get("source_of_truth") {
        None => SourceOfTruth::Split,
        Some(Value::String(s)) if s == "split" => SourceOfTruth::Split,
        Some(Value::String(s)) if s == "config.json" => SourceOfTruth::File,
        Some(_) => return Err(field("source_of_truth", "must be \"split\" or \"config.json\"")),
    };
    let config_store_enabled = parse_config_store(root.get("config_store"), &mut warnings)?;
    let providers = match root.get("providers") {
        None => Vec::new(),
        Some(Value::Object(map)) => parse_providers(map, &env, &mut warnings)?,
        Some(_) => {
            return Err(field(
                "providers",
                "must be an object mapping provider names to their config",
            ))
        }
    };
    let client = match root.get("client") {
        None => None,
        Some(v) => {
            check_client(v, &mut warnings)?;
            Some(v.clone())
        }
    };
    let governance = match root.get("governance") {
        None => None,
        Some(v) => {
            check_governance(v)?;
            let map = v.as_object().cloned().unwrap_or_default();
            Some(governance::parse_governance(&map, &env, &mut warnings)?)
        }
    };
    let guardrails = match root.get("guardrails") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(field("guardrails", "must be an array of guardrails")),
    };
    let enforce_auth_on_inference = client.as_ref().and_then(|c| {
        c.get("enforce_auth_on_inference")
            .or_else(|| c.get("enforce_governance_header"))
            .and_then(Value::as_bool)
    });
    let (plugins, vector_store, mcp) = parse_extensions(&root)?;
    Ok(ConfigFile {
        plugins,
        vector_store,
        source_of_truth,
        config_store_enabled,
        providers,
        client,
        enforce_auth_on_inference,
        governance,
        mcp,
        guardrails,
        warnings,
    })
}

/// `plugins` and `vector_store` (kept as written) and `mcp` (validated).
#[allow(clippy::type_complexity)]
fn parse_extensions(
    root: &serde_json::Map<String, Value>,
) -> Result<(Vec<Value>, Option<Value>, Option<crate::mcp::McpFileConfig>), ConfigFileError> {
    let plugins = match root.get("plugins") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(field(
                "plugins",
                "must be an array of {\"name\", \"enabled\", \"config\"}",
            ))
        }
    };
    let vector_store = match root.get("vector_store") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(field("vector_store", "must be an object")),
    };
    let mcp = match root.get("mcp") {
        None => None,
        Some(v) => Some(crate::mcp::parse_file_section(v).map_err(|e| field(e.field, e.message))?),
    };
    Ok((plugins, vector_store, mcp))
}

fn syntax_message(e: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; the position is reported separately.
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

fn parse_config_store(v: Option<&Value>, warnings: &mut Vec<String>) -> Result<bool, ConfigFileError> {
    let Some(v) = v else { return Ok(true) };
    let Value::Object(m) = v else {
        return Err(field(
            "config_store",
            "must be an object like {\"enabled\": false}",
        ));
    };
    let enabled = match m.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(field("config_store.enabled", "must be true or false")),
    };
    match m.get("type") {
        None => {}
        Some(Value::String(t)) if t == "sqlite" || t == "postgres" => {}
        Some(_) => return Err(field("config_store.type", "must be \"sqlite\" or \"postgres\"")),
    }
    if enabled && (m.contains_key("type") || m.contains_key("config")) {
        warnings.push(
            "config_store.type/config: the store is chosen with --config-store (SWITCHYARD_CONFIG_STORE), not in the file"
                .into(),
        );
    }
    for k in m.keys() {
        if !["enabled", "type", "config"].contains(&k.as_str()) {
            return Err(field(
                format!("config_store.{k}"),
                "unknown field; expected enabled, type or config",
            ));
        }
    }
    Ok(enabled)
}

/// A stable id for a file key without one: the same on every replica and every restart.
pub fn file_key_id(provider: &str, key_name: &str) -> String {
    // FNV-1a, 64 bits: tiny, deterministic, and collisions within one provider's keys are negligible.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in provider.bytes().chain([0u8]).chain(key_name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("file-{h:016x}")
}

fn parse_providers(
    map: &Map<String, Value>,
    env: &impl Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<FileProvider>, ConfigFileError> {
    let mut out = Vec::with_capacity(map.len());
    let mut key_ids = HashSet::new();
    for (name, body) in map {
        let base = format!("providers.{name}");
        let name_ok = ProviderName::parse(name).map_err(|e| field(base.clone(), e.message))?;
        let Value::Object(obj) = body else {
            return Err(field(base, "must be an object"));
        };
        let mut obj = obj.clone();
        for k in ["provider", "name"] {
            if let Some(v) = obj.get(k) {
                if v.as_str() != Some(name) {
                    return Err(field(
                        format!("{base}.{k}"),
                        format!("must be '{name}' (the provider's key in the providers map) or left out"),
                    ));
                }
            }
        }
        // Secrets stay references; every other `env.VAR` string is substituted now.
        let keys = obj.remove("keys");
        let mut body = Value::Object(obj);
        substitute_env(&mut body, &base, env)?;
        let mut input: ProviderInput = serde_path_to_error::deserialize(body).map_err(|e| {
            let inner = e.path().to_string();
            let path = if inner == "." {
                base.clone()
            } else {
                format!("{base}.{inner}")
            };
            field(path, e.into_inner().to_string())
        })?;
        input.provider = Some(name.clone());
        input.name = None;
        let config = input.into_new_provider().map_err(|e| prefixed(&base, e))?;
        debug_assert_eq!(config.name, name_ok);
        let keys = match keys {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => parse_keys(&base, &config, items, &mut key_ids, env, warnings)?,
            Some(_) => return Err(field(format!("{base}.keys"), "must be an array of keys")),
        };
        out.push(FileProvider { config, keys });
    }
    Ok(out)
}

fn parse_keys(
    base: &str,
    provider: &ProviderConfig,
    items: Vec<Value>,
    key_ids: &mut HashSet<String>,
    env: &impl Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<KeyConfig>, ConfigFileError> {
    let mut keys: Vec<KeyConfig> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let kbase = format!("{base}.keys[{i}]");
        let input: KeyInput = serde_path_to_error::deserialize(item).map_err(|e| {
            let inner = e.path().to_string();
            let path = if inner == "." {
                kbase.clone()
            } else {
                format!("{kbase}.{inner}")
            };
            field(path, e.into_inner().to_string())
        })?;
        let stable = input
            .name
            .as_deref()
            .map(|n| file_key_id(provider.name.as_str(), n))
            .unwrap_or_default();
        let key = input
            .into_new_key(provider, stable)
            .map_err(|e| prefixed(&kbase, e))?;
        validate_key_id(&key.id).map_err(|e| prefixed(&kbase, e))?;
        if keys.iter().any(|k| k.name == key.name) {
            return Err(field(
                format!("{kbase}.name"),
                format!(
                    "another key of provider '{}' is already named '{}'",
                    provider.name, key.name
                ),
            ));
        }
        if !key_ids.insert(key.id.clone()) {
            return Err(field(
                format!("{kbase}.id"),
                format!("key id '{}' is used twice", key.id),
            ));
        }
        if let secret::SecretSource::Env(var) = secret::source(&key.value) {
            if env(var).is_none() {
                warnings.push(format!(
                    "{kbase}.value: environment variable {var} is not set here; the key stays unusable until it is"
                ));
            }
        }
        keys.push(key);
    }
    Ok(keys)
}

fn prefixed(base: &str, e: ValidationError) -> ConfigFileError {
    field(format!("{base}.{}", e.field), e.message)
}

fn substitute_env(
    v: &mut Value,
    path: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigFileError> {
    match v {
        Value::String(s) => {
            if let Some(var) = s.strip_prefix(secret::ENV_PREFIX) {
                if !secret::is_valid_env_name(var) {
                    return Err(field(path, format!("'{s}' is not a valid env.VAR reference")));
                }
                *s = env(var).ok_or_else(|| field(path, format!("environment variable {var} is not set")))?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_env(item, &format!("{path}[{i}]"), env)?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                substitute_env(item, &format!("{path}.{k}"), env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

// --- client and governance: shape checks only -----------------------------------------------------

#[derive(Clone, Copy)]
enum Shape {
    Bool,
    Count,
    Strings,
    Object,
    Number,
    Text,
}

fn check_shape(v: &Value, shape: Shape, path: &str) -> Result<(), ConfigFileError> {
    let ok = match shape {
        Shape::Bool => v.is_boolean(),
        Shape::Count => v.is_u64(),
        Shape::Strings => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Shape::Object => v.is_object(),
        Shape::Number => v.as_f64().is_some_and(|n| n >= 0.0),
        Shape::Text => v.is_string(),
    };
    if ok {
        return Ok(());
    }
    let expected = match shape {
        Shape::Bool => "true or false",
        Shape::Count => "a whole number of at least 0",
        Shape::Strings => "an array of strings",
        Shape::Object => "an object",
        Shape::Number => "a number of at least 0",
        Shape::Text => "a string",
    };
    Err(field(path, format!("must be {expected}")))
}

const CLIENT_FIELDS: &[(&str, Shape)] = &[
    ("initial_pool_size", Shape::Count),
    ("drop_excess_requests", Shape::Bool),
    ("enable_logging", Shape::Bool),
    ("disable_content_logging", Shape::Bool),
    ("retain_content_in_object_storage", Shape::Bool),
    ("allow_per_request_content_storage_override", Shape::Bool),
    ("log_retention_days", Shape::Count),
    ("logging_headers", Shape::Strings),
    ("hidden_request_types", Shape::Strings),
    ("enforce_auth_on_inference", Shape::Bool),
    ("enforce_governance_header", Shape::Bool),
    ("async_job_result_ttl", Shape::Count),
    ("disable_db_pings_in_health", Shape::Bool),
    ("allowed_origins", Shape::Strings),
    ("allow_direct_keys", Shape::Bool),
    ("max_request_body_size_mb", Shape::Count),
    ("whitelisted_routes", Shape::Strings),
    ("allowed_headers", Shape::Strings),
    ("required_headers", Shape::Strings),
    ("header_filter_config", Shape::Object),
    ("prometheus_labels", Shape::Strings),
    ("compat", Shape::Object),
    ("mcp_agent_depth", Shape::Count),
    ("mcp_tool_execution_timeout", Shape::Count),
    ("mcp_tool_sync_interval", Shape::Count),
    ("routing_chain_max_depth", Shape::Count),
    ("delete_expired_virtual_keys", Shape::Bool),
];

fn check_client(v: &Value, warnings: &mut Vec<String>) -> Result<(), ConfigFileError> {
    let Value::Object(m) = v else {
        return Err(field("client", "must be an object"));
    };
    for (k, item) in m {
        match CLIENT_FIELDS.iter().find(|(name, _)| name == k) {
            Some((_, shape)) => check_shape(item, *shape, &format!("client.{k}"))?,
            None => warnings.push(format!("client.{k}: unknown client setting, ignored")),
        }
    }
    Ok(())
}

// --- Reconciling a store with the file ------------------------------------------------------------

/// One change to make in the store.
#[derive(Clone, Debug, PartialEq)]
pub enum ReconcileStep {
    DeleteProvider(String),
    DeleteKey {
        provider: String,
        key_id: String,
    },
    UpdateProvider(ProviderConfig),
    UpdateKey {
        provider: String,
        key: KeyConfig,
    },
    CreateProvider {
        provider: ProviderConfig,
        keys: Vec<KeyConfig>,
    },
    CreateKey {
        provider: String,
        key: KeyConfig,
    },
}

impl fmt::Display for ReconcileStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReconcileStep::DeleteProvider(p) => write!(f, "delete provider {p}"),
            ReconcileStep::DeleteKey { provider, key_id } => write!(f, "delete key {provider}/{key_id}"),
            ReconcileStep::UpdateProvider(p) => write!(f, "update provider {}", p.name),
            ReconcileStep::UpdateKey { provider, key } => write!(f, "update key {provider}/{}", key.name),
            ReconcileStep::CreateProvider { provider, keys } => {
                write!(f, "create provider {} with {} key(s)", provider.name, keys.len())
            }
            ReconcileStep::CreateKey { provider, key } => write!(f, "create key {provider}/{}", key.name),
        }
    }
}

/// The steps that make `stored` agree with `file` under the file's [`SourceOfTruth`], in an order that
/// can be applied one by one: deletions first (freeing names), then updates, then creations.
///
/// Keys are matched within a provider by id when the file gives one, otherwise by name; a matched
/// key keeps its stored id.
pub fn plan_reconcile(file: &ConfigFile, stored: &[(ProviderConfig, Vec<KeyConfig>)]) -> Vec<ReconcileStep> {
    let authoritative = file.source_of_truth == SourceOfTruth::File;
    let (mut deletes, mut updates, mut creates) = (Vec::new(), Vec::new(), Vec::new());
    if authoritative {
        for (p, _) in stored {
            if !file.providers.iter().any(|f| f.config.name == p.name) {
                deletes.push(ReconcileStep::DeleteProvider(p.name.to_string()));
            }
        }
    }
    for fp in &file.providers {
        let name = fp.config.name.to_string();
        let Some((sp, skeys)) = stored.iter().find(|(p, _)| p.name == fp.config.name) else {
            creates.push(ReconcileStep::CreateProvider {
                provider: fp.config.clone(),
                keys: fp.keys.clone(),
            });
            continue;
        };
        if authoritative && sp != &fp.config {
            updates.push(ReconcileStep::UpdateProvider(fp.config.clone()));
        }
        let mut matched = HashSet::new();
        for fk in &fp.keys {
            let found = skeys.iter().find(|k| k.id == fk.id).or_else(|| {
                skeys
                    .iter()
                    .find(|k| k.name == fk.name && !fp.keys.iter().any(|o| o.id == k.id))
            });
            match found {
                Some(sk) => {
                    matched.insert(sk.id.clone());
                    if authoritative {
                        let wanted = KeyConfig {
                            id: sk.id.clone(),
                            ..fk.clone()
                        };
                        if &wanted != sk {
                            updates.push(ReconcileStep::UpdateKey {
                                provider: name.clone(),
                                key: wanted,
                            });
                        }
                    }
                }
                None => creates.push(ReconcileStep::CreateKey {
                    provider: name.clone(),
                    key: fk.clone(),
                }),
            }
        }
        if authoritative {
            for sk in skeys {
                if !matched.contains(&sk.id) {
                    deletes.push(ReconcileStep::DeleteKey {
                        provider: name.clone(),
                        key_id: sk.id.clone(),
                    });
                }
            }
        }
    }
    deletes.into_iter().chain(updates).chain(creates).collect()
}

/// What a file-only deployment serves: the file's providers and keys, as a store would load them.
pub fn as_stored(file: &ConfigFile) -> Vec<(ProviderConfig, Vec<KeyConfig>)> {
    let mut out: Vec<_> = file
        .providers
        .iter()
        .map(|p| (p.config.clone(), p.keys.clone()))
        .collect();
    out.sort_by(|a, b| a.0.name.as_str().cmp(b.0.name.as_str()));
    out
}

#[cfg(test)]
mod tests;
