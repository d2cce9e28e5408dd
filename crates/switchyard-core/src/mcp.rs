//! MCP gateway, the pure part: Bifrost's MCP client config (`/api/mcp/client`, `config.json` `"mcp"`)
//! and its validation, the tool-name rules (`<client>-<tool>`), and who may see and call which tool
//! (the client's own `tools_to_execute`, a virtual key's `mcp_configs`).
//!
//! No I/O: connections, timeouts and the `/mcp` server are `switchyard-mcp`'s.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ValidationError;

/// How the gateway reaches an MCP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    /// Streamable HTTP (POST JSON-RPC, answers as JSON or SSE).
    Http,
    /// The older HTTP+SSE transport (GET an event stream, POST to the endpoint it names).
    Sse,
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio,
}

/// `stdio_config`: the program to run. `envs` names variables of the gateway's own environment that
/// the child gets (nothing else of the environment is passed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioConfig {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub envs: Vec<String>,
}

/// A registered MCP server (Bifrost's `MCPClientConfig`). Header values may carry credentials: views
/// redact them ([`McpClientConfig::redacted`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpClientConfig {
    pub client_id: String,
    pub name: String,
    pub connection_type: ConnectionType,
    #[serde(default)]
    pub connection_string: Option<String>,
    #[serde(default)]
    pub stdio_config: Option<StdioConfig>,
    /// `["*"]`: every tool; `[]`: none; otherwise the tools named.
    pub tools_to_execute: Vec<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub auth_type: Option<String>,
    #[serde(default)]
    pub tools_to_auto_execute: Vec<String>,
    #[serde(default)]
    pub is_ping_available: bool,
    /// How often the tool list is read again (`"5m"`); `None`: the gateway's `tool_sync_interval`.
    #[serde(default)]
    pub tool_sync_interval: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub allow_on_all_virtual_keys: bool,
}

/// Shown instead of a header value in every answer; sent back unchanged on `PUT`, it keeps the value.
pub const REDACTED: &str = "<redacted>";

/// Body of `POST /api/mcp/client` and `PUT /api/mcp/client/{id}`, and an entry of `config.json`'s
/// `mcp.client_configs`. Fields Bifrost has and Switchyard does not use are accepted and ignored, so
/// Bifrost's bodies and files work unchanged.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct McpClientInput {
    pub client_id: Option<String>,
    pub name: Option<String>,
    pub connection_type: Option<ConnectionType>,
    pub connection_string: Option<String>,
    pub stdio_config: Option<StdioConfig>,
    pub tools_to_execute: Option<Vec<String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub auth_type: Option<String>,
    pub tools_to_auto_execute: Option<Vec<String>>,
    pub is_ping_available: Option<bool>,
    pub tool_sync_interval: Option<String>,
    pub disabled: Option<bool>,
    pub allow_on_all_virtual_keys: Option<bool>,
}

/// A client name: ASCII letters, digits and `_`, not starting with a digit, at most 64 bytes. No `-`
/// (it separates the client from the tool in `<client>-<tool>`) and no spaces.
pub fn validate_client_name(name: &str) -> Result<(), ValidationError> {
    let bad = |m: &str| Err(ValidationError::new("name", m));
    if name.is_empty() {
        return bad("is required");
    }
    if name.len() > 64 {
        return bad("must be at most 64 characters");
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return bad("must not start with a digit");
    }
    if name.contains('-') {
        return bad("must not contain '-' (tools are named <client>-<tool>)");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return bad("may contain only ASCII letters, digits and '_' (no spaces)");
    }
    Ok(())
}

fn validate_tool_list(field: &str, tools: &[String]) -> Result<(), ValidationError> {
    for (i, t) in tools.iter().enumerate() {
        if t.trim().is_empty() || t.chars().any(char::is_control) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                "must be a tool name or \"*\"",
            ));
        }
    }
    Ok(())
}

fn validate_url(url: &str) -> Result<(), ValidationError> {
    let field = "connection_string";
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !url.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(ValidationError::new(
            field,
            "must be an http:// or https:// URL of the MCP server",
        )),
    }
}

impl McpClientInput {
    /// A new client from this body; `id` is used when the body names none.
    pub fn into_new(self, id: String) -> Result<McpClientConfig, ValidationError> {
        let mut c = McpClientConfig {
            client_id: id,
            name: String::new(),
            connection_type: self.connection_type.ok_or_else(|| {
                ValidationError::new("connection_type", "is required: \"http\", \"sse\" or \"stdio\"")
            })?,
            connection_string: None,
            stdio_config: None,
            tools_to_execute: vec!["*".into()],
            headers: BTreeMap::new(),
            auth_type: None,
            tools_to_auto_execute: Vec::new(),
            is_ping_available: true,
            tool_sync_interval: None,
            disabled: false,
            allow_on_all_virtual_keys: false,
        };
        if self.name.is_none() {
            return Err(ValidationError::new("name", "is required"));
        }
        if let Some(id) = &self.client_id {
            c.client_id.clone_from(id);
        }
        self.apply_to(&mut c)?;
        Ok(c)
    }

    /// This body applied to a stored client (`PUT`): given fields replace, omitted ones stay.
    pub fn apply_update(self, current: &McpClientConfig) -> Result<McpClientConfig, ValidationError> {
        if self.client_id.as_ref().is_some_and(|id| id != &current.client_id) {
            return Err(ValidationError::new("client_id", "cannot be changed"));
        }
        let mut c = current.clone();
        self.apply_to(&mut c)?;
        Ok(c)
    }

    fn apply_to(self, c: &mut McpClientConfig) -> Result<(), ValidationError> {
        if c.client_id.trim().is_empty() || c.client_id.len() > 128 {
            return Err(ValidationError::new("client_id", "must be 1 to 128 characters"));
        }
        if let Some(n) = self.name {
            validate_client_name(&n)?;
            c.name = n;
        }
        if let Some(t) = self.connection_type {
            c.connection_type = t;
        }
        if let Some(s) = self.connection_string {
            c.connection_string = Some(s).filter(|s| !s.is_empty());
        }
        if let Some(s) = self.stdio_config {
            c.stdio_config = Some(s);
        }
        if let Some(t) = self.tools_to_execute {
            validate_tool_list("tools_to_execute", &t)?;
            c.tools_to_execute = t;
        }
        if let Some(t) = self.tools_to_auto_execute {
            validate_tool_list("tools_to_auto_execute", &t)?;
            c.tools_to_auto_execute = t;
        }
        if let Some(h) = self.headers {
            c.headers = merge_headers(&c.headers, h)?;
        }
        if let Some(a) = self.auth_type {
            c.auth_type = Some(a).filter(|a| !a.is_empty());
        }
        if let Some(p) = self.is_ping_available {
            c.is_ping_available = p;
        }
        if let Some(s) = self.tool_sync_interval {
            if !s.is_empty() {
                parse_duration(&s).map_err(|m| ValidationError::new("tool_sync_interval", m))?;
            }
            c.tool_sync_interval = Some(s).filter(|s| !s.is_empty());
        }
        if let Some(d) = self.disabled {
            c.disabled = d;
        }
        if let Some(a) = self.allow_on_all_virtual_keys {
            c.allow_on_all_virtual_keys = a;
        }
        validate_transport(c)
    }
}

/// Header names must be valid tokens; a value of [`REDACTED`] keeps the stored value.
fn merge_headers(
    old: &BTreeMap<String, String>,
    new: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ValidationError> {
    let mut out = BTreeMap::new();
    for (k, v) in new {
        let token = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
        if !token {
            return Err(ValidationError::new(
                format!("headers.{k}"),
                "is not a valid header name",
            ));
        }
        if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ValidationError::new(
                format!("headers.{k}"),
                "must not contain line breaks",
            ));
        }
        let v = if v == REDACTED {
            old.get(&k).cloned().ok_or_else(|| {
                ValidationError::new(
                    format!("headers.{k}"),
                    "is redacted but no value is stored for it",
                )
            })?
        } else {
            v
        };
        out.insert(k, v);
    }
    Ok(out)
}

fn validate_transport(c: &McpClientConfig) -> Result<(), ValidationError> {
    match c.connection_type {
        ConnectionType::Http | ConnectionType::Sse => match &c.connection_string {
            Some(url) => validate_url(url),
            None => Err(ValidationError::new(
                "connection_string",
                "is required for connection_type \"http\" and \"sse\"",
            )),
        },
        ConnectionType::Stdio => {
            let Some(s) = &c.stdio_config else {
                return Err(ValidationError::new(
                    "stdio_config",
                    "is required for connection_type \"stdio\"",
                ));
            };
            if s.command.trim().is_empty() {
                return Err(ValidationError::new("stdio_config.command", "is required"));
            }
            for (i, e) in s.envs.iter().enumerate() {
                let ok = !e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(ValidationError::new(
                        format!("stdio_config.envs[{i}]"),
                        "must name an environment variable (letters, digits, '_')",
                    ));
                }
            }
            Ok(())
        }
    }
}

impl McpClientConfig {
    /// The config as answers show it: header values replaced by [`REDACTED`].
    pub fn redacted(&self) -> McpClientConfig {
        let mut c = self.clone();
        for v in c.headers.values_mut() {
            *v = REDACTED.to_owned();
        }
        c
    }

    /// Whether the client's own `tools_to_execute` lets `tool` run.
    pub fn executes(&self, tool: &str) -> bool {
        allows(&self.tools_to_execute, tool)
    }
}

fn allows(list: &[String], tool: &str) -> bool {
    list.iter().any(|t| t == "*" || t == tool)
}

/// One entry of a virtual key's `mcp_configs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpKeyConfig {
    pub mcp_client_name: String,
    /// `["*"]`: every tool the client executes; `[]`: none.
    #[serde(default)]
    pub tools_to_execute: Vec<String>,
}

/// A key's `mcp_configs`: each names a client once, with a valid name.
pub fn validate_key_configs(configs: &[McpKeyConfig]) -> Result<(), ValidationError> {
    for (i, c) in configs.iter().enumerate() {
        validate_client_name(&c.mcp_client_name)
            .map_err(|e| ValidationError::new(format!("mcp_configs[{i}].mcp_client_name"), e.message))?;
        if configs[..i]
            .iter()
            .any(|o| o.mcp_client_name == c.mcp_client_name)
        {
            return Err(ValidationError::new(
                format!("mcp_configs[{i}].mcp_client_name"),
                format!("client '{}' is listed twice", c.mcp_client_name),
            ));
        }
        validate_tool_list(&format!("mcp_configs[{i}].tools_to_execute"), &c.tools_to_execute)?;
    }
    Ok(())
}

/// Who is asking: no virtual key, or a key's `mcp_configs`.
#[derive(Clone, Copy, Debug)]
pub enum McpCaller<'a> {
    Anonymous,
    Key(&'a [McpKeyConfig]),
}

/// Why a tool may not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such client, or the client has no such tool.
    Unknown,
    /// The client is disabled.
    Disabled,
    /// The client's `tools_to_execute` leaves it out.
    NotExecuted,
    /// The caller's key does not allow it.
    NotForKey,
}

/// Whether `caller` may see and call `tool` of `client`: the client must be enabled and execute the
/// tool; a key must list the client in `mcp_configs` with the tool (or `*`), unless the client is
/// `allow_on_all_virtual_keys`. A caller without a key (allowed only when the gateway does not enforce
/// keys) sees every tool the client executes.
pub fn may_call(client: &McpClientConfig, caller: McpCaller<'_>, tool: &str) -> Result<(), Refusal> {
    if client.disabled {
        return Err(Refusal::Disabled);
    }
    if !client.executes(tool) {
        return Err(Refusal::NotExecuted);
    }
    match caller {
        McpCaller::Anonymous => Ok(()),
        McpCaller::Key(configs) => match configs.iter().find(|c| c.mcp_client_name == client.name) {
            Some(c) if allows(&c.tools_to_execute, tool) => Ok(()),
            Some(_) => Err(Refusal::NotForKey),
            None if client.allow_on_all_virtual_keys => Ok(()),
            None => Err(Refusal::NotForKey),
        },
    }
}

/// `<client>-<tool>` as the gateway names it.
pub fn gateway_tool_name(client: &str, tool: &str) -> String {
    format!("{client}-{tool}")
}

/// Splits a gateway tool name at its first `-` (client names have none).
pub fn split_tool_name(name: &str) -> Option<(&str, &str)> {
    let (c, t) = name.split_once('-')?;
    (!c.is_empty() && !t.is_empty()).then_some((c, t))
}

/// `"30s"`, `"500ms"`, `"5m"`, `"1h"`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like \"30s\", \"500ms\", \"5m\""))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!("'{text}' must be more than 0 and at most 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `config.json`'s `"mcp"` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct McpFileConfig {
    pub clients: Vec<McpClientInput>,
    pub tool_execution_timeout: Option<Duration>,
    pub tool_sync_interval: Option<Duration>,
}

/// Reads `"mcp"`: every error names its JSON path under `mcp.`.
pub fn parse_file_section(value: &serde_json::Value) -> Result<McpFileConfig, ValidationError> {
    let obj = value
        .as_object()
        .ok_or_else(|| ValidationError::new("mcp", "must be an object"))?;
    let mut out = McpFileConfig::default();
    if let Some(list) = obj.get("client_configs") {
        let list = list
            .as_array()
            .ok_or_else(|| ValidationError::new("mcp.client_configs", "must be an array"))?;
        for (i, entry) in list.iter().enumerate() {
            let input: McpClientInput = serde_path_to_error_free(entry)
                .map_err(|m| ValidationError::new(format!("mcp.client_configs[{i}]"), m))?;
            out.clients.push(input);
        }
    }
    let duration = |v: &serde_json::Value, field: &str| -> Result<Duration, ValidationError> {
        let r = match v {
            serde_json::Value::String(s) => parse_duration(s),
            serde_json::Value::Number(n) => parse_duration(&n.to_string()),
            _ => Err("must be a duration like \"30s\"".to_owned()),
        };
        r.map_err(|m| ValidationError::new(field, m))
    };
    if let Some(tm) = obj.get("tool_manager_config") {
        if let Some(t) = tm.get("tool_execution_timeout") {
            out.tool_execution_timeout = Some(duration(t, "mcp.tool_manager_config.tool_execution_timeout")?);
        }
    }
    if let Some(t) = obj.get("tool_sync_interval") {
        out.tool_sync_interval = Some(duration(t, "mcp.tool_sync_interval")?);
    }
    Ok(out)
}

fn serde_path_to_error_free(v: &serde_json::Value) -> Result<McpClientInput, String> {
    McpClientInput::deserialize(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
