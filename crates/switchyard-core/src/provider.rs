//! Provider names and the built-in provider table.
//!
//! A model string `prefix/model` names a provider only when the prefix is a built-in provider name or a
//! registered custom provider (Bifrost's rule), so the built-in list is part of the wire contract.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The wire protocol a provider speaks upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireApi {
    /// OpenAI-compatible HTTP API (OpenAI, mittwald AI Hosting, vLLM, Ollama, ...).
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    Cohere,
    Azure,
    Vertex,
}

impl WireApi {
    pub fn as_str(self) -> &'static str {
        match self {
            WireApi::OpenAi => "openai",
            WireApi::Anthropic => "anthropic",
            WireApi::Gemini => "gemini",
            WireApi::Bedrock => "bedrock",
            WireApi::Cohere => "cohere",
            WireApi::Azure => "azure",
            WireApi::Vertex => "vertex",
        }
    }

    /// Wire types a custom provider may declare as `base_provider_type`.
    pub fn from_base_provider_type(s: &str) -> Option<WireApi> {
        match s {
            "openai" => Some(WireApi::OpenAi),
            "anthropic" => Some(WireApi::Anthropic),
            "gemini" => Some(WireApi::Gemini),
            "bedrock" => Some(WireApi::Bedrock),
            "cohere" => Some(WireApi::Cohere),
            _ => None,
        }
    }
}

/// One entry of the built-in provider table.
#[derive(Debug)]
pub struct BuiltinProvider {
    pub name: &'static str,
    pub wire: WireApi,
    /// Used when `network_config.base_url` is not set.
    pub default_base_url: Option<&'static str>,
    /// Local servers (Ollama, vLLM, SGLang) usually run without an API key.
    pub key_optional: bool,
    /// Quirks of an OpenAI-compatible preset, applied to what goes upstream.
    pub quirks: Quirks,
}

/// What an OpenAI-compatible preset needs beyond its base URL. Presets are data: every preset goes
/// through the same OpenAI code path, and these flags are its only differences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// The tool-call ids the upstream accepts.
    pub tool_call_ids: ToolCallIdRule,
    /// The upstream's chat templates refuse a system message after the first turn (Mistral's):
    /// system messages inside the conversation are folded into the leading one.
    pub single_system_message: bool,
}

/// Tool-call id formats upstreams insist on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ToolCallIdRule {
    /// Any string (OpenAI and most compatible servers).
    #[default]
    Any,
    /// Exactly 9 characters of `[a-zA-Z0-9]` (Mistral rejects anything else).
    Alphanumeric9,
}

const fn builtin(
    name: &'static str,
    wire: WireApi,
    default_base_url: Option<&'static str>,
    key_optional: bool,
) -> BuiltinProvider {
    BuiltinProvider {
        name,
        wire,
        default_base_url,
        key_optional,
        quirks: Quirks {
            tool_call_ids: ToolCallIdRule::Any,
            single_system_message: false,
        },
    }
}

impl BuiltinProvider {
    const fn with_tool_call_ids(mut self, rule: ToolCallIdRule) -> BuiltinProvider {
        self.quirks.tool_call_ids = rule;
        self
    }

    const fn with_single_system_message(mut self) -> BuiltinProvider {
        self.quirks.single_system_message = true;
        self
    }
}

/// Bifrost's v1.5 built-in names (plus `together`), so `name/model` strings parse the same way.
pub static BUILTIN_PROVIDERS: &[BuiltinProvider] = &[
    builtin(
        "openai",
        WireApi::OpenAi,
        Some("https://api.openai.com/v1"),
        false,
    ),
    builtin(
        "anthropic",
        WireApi::Anthropic,
        Some("https://api.anthropic.com"),
        false,
    ),
    builtin("azure", WireApi::Azure, None, false),
    builtin("bedrock", WireApi::Bedrock, None, false),
    builtin("vertex", WireApi::Vertex, None, false),
    builtin(
        "gemini",
        WireApi::Gemini,
        Some("https://generativelanguage.googleapis.com"),
        false,
    ),
    builtin(
        "mistral",
        WireApi::OpenAi,
        Some("https://api.mistral.ai/v1"),
        false,
    )
    .with_tool_call_ids(ToolCallIdRule::Alphanumeric9)
    .with_single_system_message(),
    builtin(
        "groq",
        WireApi::OpenAi,
        Some("https://api.groq.com/openai/v1"),
        false,
    ),
    builtin("cohere", WireApi::Cohere, Some("https://api.cohere.com"), false),
    builtin(
        "perplexity",
        WireApi::OpenAi,
        Some("https://api.perplexity.ai/v1"),
        false,
    ),
    builtin("xai", WireApi::OpenAi, Some("https://api.x.ai/v1"), false),
    builtin(
        "cerebras",
        WireApi::OpenAi,
        Some("https://api.cerebras.ai/v1"),
        false,
    ),
    builtin(
        "deepseek",
        WireApi::OpenAi,
        Some("https://api.deepseek.com/v1"),
        false,
    ),
    builtin(
        "openrouter",
        WireApi::OpenAi,
        Some("https://openrouter.ai/api/v1"),
        false,
    ),
    builtin(
        "nebius",
        WireApi::OpenAi,
        Some("https://api.studio.nebius.com/v1"),
        false,
    ),
    builtin(
        "fireworks",
        WireApi::OpenAi,
        Some("https://api.fireworks.ai/inference/v1"),
        false,
    ),
    builtin(
        "parasail",
        WireApi::OpenAi,
        Some("https://api.parasail.io/v1"),
        false,
    ),
    builtin(
        "huggingface",
        WireApi::OpenAi,
        Some("https://router.huggingface.co/v1"),
        false,
    ),
    builtin(
        "together",
        WireApi::OpenAi,
        Some("https://api.together.xyz/v1"),
        false,
    ),
    builtin("replicate", WireApi::OpenAi, None, false),
    builtin("ollama", WireApi::OpenAi, Some("http://127.0.0.1:11434/v1"), true),
    builtin("vllm", WireApi::OpenAi, None, true),
    builtin("sgl", WireApi::OpenAi, None, true),
    builtin("elevenlabs", WireApi::OpenAi, None, false),
    builtin("runway", WireApi::OpenAi, None, false),
];

pub fn builtin_provider(name: &str) -> Option<&'static BuiltinProvider> {
    BUILTIN_PROVIDERS.iter().find(|p| p.name == name)
}

/// A validated provider name: 1-64 characters of `[A-Za-z0-9_.-]`, so it is always usable as the
/// prefix of a `provider/model` string and as a URL path segment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ProviderName(String);

impl ProviderName {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::new("provider", "provider name is required"));
        }
        if s.len() > 64 {
            return Err(ValidationError::new(
                "provider",
                "provider name is longer than 64 characters",
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ValidationError::new(
                "provider",
                format!("provider name '{s}' may only contain letters, digits, '-', '_' and '.'"),
            ));
        }
        Ok(ProviderName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn builtin(&self) -> Option<&'static BuiltinProvider> {
        builtin_provider(&self.0)
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProviderName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ProviderName::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_hyphens_are_valid_model_prefixes() {
        assert_eq!(
            ProviderName::parse("mittwald-shared").unwrap().as_str(),
            "mittwald-shared"
        );
    }

    #[test]
    fn slashes_and_spaces_are_rejected_with_the_field_named() {
        for bad in ["", "a/b", "a b", "ü"] {
            let err = ProviderName::parse(bad).unwrap_err();
            assert_eq!(err.field, "provider");
        }
    }

    #[test]
    fn builtin_table_has_unique_names() {
        let mut names: Vec<_> = BUILTIN_PROVIDERS.iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), BUILTIN_PROVIDERS.len());
    }
}
