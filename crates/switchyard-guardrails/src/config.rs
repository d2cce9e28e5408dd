//! A guardrail as stored, the API's input, and all validation. Every rejection names the field as the
//! API reports it in `error.param` (`type`, `stage`, `action`, `patterns[0]`, `entities[0]`, `url`).

use serde::{Deserialize, Serialize};
use switchyard_core::ValidationError;

use crate::detect::{Detector, Entity};
use crate::scan::Action;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Regex,
    Secrets,
    Pii,
    Webhook,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Request,
    Response,
    Both,
}

impl Stage {
    pub fn covers(self, stage: Stage) -> bool {
        self == Stage::Both || self == stage
    }
}

/// What a webhook failure (timeout, unreachable, an answer it cannot read) means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    Allow,
    #[default]
    Block,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub virtual_key_ids: Vec<String>,
    #[serde(default)]
    pub providers: Vec<String>,
}

impl Scope {
    /// Empty lists match everything; both set, both must match.
    pub fn applies(&self, virtual_key_id: Option<&str>, provider: Option<&str>) -> bool {
        let vk = self.virtual_key_ids.is_empty()
            || virtual_key_id.is_some_and(|id| self.virtual_key_ids.iter().any(|v| v == id));
        let p = self.providers.is_empty()
            || provider.is_some_and(|name| self.providers.iter().any(|v| v == name));
        vk && p
    }
}

pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// A stored guardrail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guardrail {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub stage: Stage,
    pub action: Action,
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub timeout_ms: u64,
    pub on_error: OnError,
    #[serde(default)]
    pub scope: Scope,
}

/// The API's body: every field optional, so one type serves create and partial update.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub stage: Option<String>,
    pub action: Option<String>,
    pub patterns: Option<Vec<String>>,
    pub entities: Option<Vec<String>>,
    pub url: Option<String>,
    pub timeout_ms: Option<u64>,
    pub on_error: Option<String>,
    pub scope: Option<Scope>,
}

fn choice<T>(field: &str, value: &str, options: &[(&str, T)]) -> Result<T, ValidationError>
where
    T: Copy,
{
    options
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            ValidationError::new(field, format!("must be one of {}", names.join(", ")))
        })
}

impl GuardrailInput {
    /// A new guardrail (`id` given by the caller or `new_id`).
    pub fn create(self, new_id: impl FnOnce() -> String) -> Result<Guardrail, ValidationError> {
        let name = self
            .name
            .clone()
            .ok_or_else(|| ValidationError::new("name", "name is required"))?;
        let kind = self
            .kind
            .clone()
            .ok_or_else(|| ValidationError::new("type", "type is required"))?;
        let base = Guardrail {
            id: self.id.clone().unwrap_or_else(new_id),
            name,
            enabled: true,
            kind: parse_kind(&kind)?,
            stage: Stage::Request,
            action: Action::Block,
            patterns: Vec::new(),
            entities: Vec::new(),
            url: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            on_error: OnError::Block,
            scope: Scope::default(),
        };
        self.apply(base)
    }

    /// `current` with the given fields changed (a partial update); the id stays.
    pub fn apply(self, current: Guardrail) -> Result<Guardrail, ValidationError> {
        let mut g = current;
        if let Some(id) = self.id {
            if id != g.id {
                return Err(ValidationError::new("id", "id cannot be changed"));
            }
        }
        if let Some(name) = self.name {
            g.name = name;
        }
        if let Some(enabled) = self.enabled {
            g.enabled = enabled;
        }
        if let Some(kind) = self.kind {
            g.kind = parse_kind(&kind)?;
        }
        if let Some(stage) = self.stage {
            let options = [
                ("request", Stage::Request),
                ("response", Stage::Response),
                ("both", Stage::Both),
            ];
            g.stage = choice("stage", &stage, &options)?;
        }
        if let Some(action) = self.action {
            let options = [
                ("block", Action::Block),
                ("redact", Action::Redact),
                ("log", Action::Log),
            ];
            g.action = choice("action", &action, &options)?;
        }
        if let Some(patterns) = self.patterns {
            g.patterns = patterns;
        }
        if let Some(entities) = self.entities {
            g.entities = entities
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    Entity::pii(e).ok_or_else(|| {
                        ValidationError::new(
                            format!("entities[{i}]"),
                            "must be one of email, phone, iban, credit_card",
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(url) = self.url {
            g.url = Some(url);
        }
        if let Some(t) = self.timeout_ms {
            g.timeout_ms = t;
        }
        if let Some(on_error) = self.on_error {
            g.on_error = choice(
                "on_error",
                &on_error,
                &[("allow", OnError::Allow), ("block", OnError::Block)],
            )?;
        }
        if let Some(scope) = self.scope {
            g.scope = scope;
        }
        validate(&g)?;
        Ok(g)
    }
}

fn parse_kind(kind: &str) -> Result<Kind, ValidationError> {
    let options = [
        ("regex", Kind::Regex),
        ("secrets", Kind::Secrets),
        ("pii", Kind::Pii),
        ("webhook", Kind::Webhook),
    ];
    choice("type", kind, &options)
}

/// The rules a stored guardrail must keep.
pub fn validate(g: &Guardrail) -> Result<(), ValidationError> {
    if g.name.trim().is_empty() || g.name.len() > 200 {
        return Err(ValidationError::new("name", "name must be 1 to 200 characters"));
    }
    if g.id.trim().is_empty() || g.id.len() > 200 {
        return Err(ValidationError::new("id", "id must be 1 to 200 characters"));
    }
    match g.kind {
        Kind::Regex if g.patterns.is_empty() => {
            return Err(ValidationError::new(
                "patterns",
                "a regex guardrail needs at least one pattern",
            ));
        }
        Kind::Pii if g.entities.is_empty() => {
            return Err(ValidationError::new(
                "entities",
                "a pii guardrail needs at least one entity",
            ));
        }
        Kind::Webhook => validate_webhook(g)?,
        _ => {}
    }
    for (i, p) in g.patterns.iter().enumerate() {
        Detector::custom(p)
            .map_err(|m| ValidationError::new(format!("patterns[{i}]"), format!("pattern {m}")))?;
    }
    Ok(())
}

fn validate_webhook(g: &Guardrail) -> Result<(), ValidationError> {
    let url = g
        .url
        .as_deref()
        .ok_or_else(|| ValidationError::new("url", "a webhook guardrail needs a url"))?;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| ValidationError::new("url", "url must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err(ValidationError::new("url", "url must name a host"));
    }
    if g.timeout_ms == 0 || g.timeout_ms > MAX_TIMEOUT_MS {
        return Err(ValidationError::new(
            "timeout_ms",
            format!("timeout_ms must be 1 to {MAX_TIMEOUT_MS}"),
        ));
    }
    if g.action == Action::Log {
        return Err(ValidationError::new(
            "action",
            "a webhook decides itself; use block or redact (its answer says which)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: serde_json::Value) -> GuardrailInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let cases = [
            (serde_json::json!({"name": "a", "type": "nope"}), "type"),
            (
                serde_json::json!({"name": "a", "type": "pii", "entities": ["email"], "stage": "x"}),
                "stage",
            ),
            (
                serde_json::json!({"name": "a", "type": "pii", "entities": ["email"], "action": "x"}),
                "action",
            ),
            (
                serde_json::json!({"name": "a", "type": "regex", "patterns": ["("]}),
                "patterns[0]",
            ),
            (
                serde_json::json!({"name": "a", "type": "pii", "entities": ["email", "ssn"]}),
                "entities[1]",
            ),
            (
                serde_json::json!({"name": "a", "type": "webhook", "url": "ftp://x"}),
                "url",
            ),
            (serde_json::json!({"name": "a", "type": "webhook"}), "url"),
            (serde_json::json!({"type": "secrets"}), "name"),
        ];
        for (body, field) in cases {
            let err = input(body.clone()).create(|| "id".into()).unwrap_err();
            assert_eq!(err.field, field, "{body}");
        }
    }

    #[test]
    fn create_defaults_and_partial_update() {
        let g = input(serde_json::json!({"name": "pii", "type": "pii", "entities": ["iban"]}))
            .create(|| "g1".into())
            .unwrap();
        assert_eq!(
            (g.stage, g.action, g.enabled),
            (Stage::Request, Action::Block, true)
        );
        let g = input(serde_json::json!({"action": "redact"})).apply(g).unwrap();
        assert_eq!(
            (g.action, g.entities.as_slice()),
            (Action::Redact, &[Entity::Iban][..])
        );
    }

    #[test]
    fn scope_matches_when_empty_or_both_match() {
        let s = Scope {
            virtual_key_ids: vec!["vk1".into()],
            providers: vec!["openai".into()],
        };
        assert!(s.applies(Some("vk1"), Some("openai")));
        assert!(!s.applies(Some("vk1"), Some("anthropic")));
        assert!(!s.applies(None, Some("openai")));
        assert!(Scope::default().applies(None, None));
    }
}
