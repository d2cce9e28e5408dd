//! Cache keys. An exact key is the SHA-256 of everything that changes the answer: the route family
//! (each answers in its own shape), the provider and model asked for, the stream flag, the request's
//! cache key, the caller's virtual key (unless identity scoping is disabled) and the request's other
//! fields as canonical JSON, so key order and whitespace never matter. A semantic lookup compares
//! embeddings of the prompt's text within a *scope*: the same key without the prompt.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical::canonical;

/// The route family: answers are cached and replayed in their own shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    OpenAiChat,
    AnthropicMessages,
    Embeddings,
    TextCompletions,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::OpenAiChat => "openai.chat",
            Family::AnthropicMessages => "anthropic.messages",
            Family::Embeddings => "openai.embeddings",
            Family::TextCompletions => "openai.completions",
        }
    }

    /// The fields that carry the prompt (what a semantic lookup embeds).
    fn prompt_fields(self) -> &'static [&'static str] {
        match self {
            Family::OpenAiChat => &["messages"],
            Family::AnthropicMessages => &["system", "messages"],
            Family::Embeddings => &["input"],
            Family::TextCompletions => &["prompt"],
        }
    }
}

/// Fields that route a request rather than shape its answer: kept out of the body part of a key
/// (the model and stream flag are parts of their own).
const ROUTING_FIELDS: &[&str] = &["model", "stream", "fallbacks"];

/// What a key is made of besides the request's fields.
#[derive(Clone, Copy, Debug)]
pub struct KeyParts<'a> {
    pub family: Family,
    /// The provider the request names (`provider/model`), if any.
    pub provider: Option<&'a str>,
    pub model: &'a str,
    pub stream: bool,
    pub cache_key: &'a str,
    /// The caller's virtual key id; `None` when anonymous or identity scoping is disabled.
    pub identity: Option<&'a str>,
}

/// A request body read for caching.
#[derive(Clone, Debug)]
pub struct KeyedRequest {
    /// The exact key.
    pub exact: String,
    /// The semantic scope: the key without the prompt.
    pub scope: String,
    /// The prompt's text, for an embedding.
    pub prompt_text: String,
}

/// Reads a request body (a JSON object) into its keys; `None` when it is not a JSON object.
pub fn keyed(parts: &KeyParts<'_>, body: &[u8]) -> Option<KeyedRequest> {
    let Value::Object(mut fields) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    for f in ROUTING_FIELDS {
        fields.remove(*f);
    }
    let exact = digest(parts, "exact", &Value::Object(fields.clone()));
    let mut prompt = Map::new();
    for f in parts.family.prompt_fields() {
        if let Some(v) = fields.remove(*f) {
            prompt.insert((*f).to_owned(), v);
        }
    }
    let scope = digest(parts, "scope", &Value::Object(fields));
    let mut prompt_text = String::new();
    for v in prompt.values() {
        collect_text(v, &mut prompt_text);
    }
    Some(KeyedRequest {
        exact,
        scope,
        prompt_text,
    })
}

fn digest(parts: &KeyParts<'_>, kind: &str, fields: &Value) -> String {
    let head = serde_json::json!([
        "switchyard-cache/v1",
        kind,
        parts.family.as_str(),
        parts.provider,
        parts.model,
        parts.stream,
        parts.cache_key,
        parts.identity,
    ]);
    let mut h = Sha256::new();
    h.update(canonical(&head).as_bytes());
    h.update(b"\n");
    h.update(canonical(fields).as_bytes());
    hex::encode(h.finalize())
}

/// The text of a prompt: every string under it that is content (not a role or a type tag), one
/// line each, roles kept as prefixes so that who said what is part of the meaning.
fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        Value::Object(o) => {
            if let Some(Value::String(role)) = o.get("role") {
                out.push_str(role);
                out.push_str(": ");
            }
            for (k, val) in o {
                if !matches!(k.as_str(), "role" | "type" | "name" | "cache_control" | "id") {
                    collect_text(val, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(stream: bool) -> KeyParts<'static> {
        KeyParts {
            family: Family::OpenAiChat,
            provider: Some("openai"),
            model: "gpt-4o-mini",
            stream,
            cache_key: "k",
            identity: Some("vk1"),
        }
    }

    fn key(p: &KeyParts<'_>, body: &str) -> String {
        keyed(p, body.as_bytes()).unwrap().exact
    }

    #[test]
    fn same_meaning_same_key() {
        let a = r#"{"model":"x","messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#;
        let b = "{ \"temperature\": 0.2,\n \"messages\": [ {\"content\": \"hi\", \"role\": \"user\"} ], \"model\": \"y\", \"fallbacks\": [\"a/b\"] }";
        assert_eq!(key(&parts(false), a), key(&parts(false), b));
    }

    #[test]
    fn every_part_changes_the_key() {
        let body = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let base = key(&parts(false), body);
        let variants = [
            KeyParts {
                stream: true,
                ..parts(false)
            },
            KeyParts {
                family: Family::AnthropicMessages,
                ..parts(false)
            },
            KeyParts {
                provider: None,
                ..parts(false)
            },
            KeyParts {
                model: "gpt-4o",
                ..parts(false)
            },
            KeyParts {
                cache_key: "other",
                ..parts(false)
            },
            KeyParts {
                identity: Some("vk2"),
                ..parts(false)
            },
            KeyParts {
                identity: None,
                ..parts(false)
            },
        ];
        for v in variants {
            assert_ne!(key(&v, body), base, "{v:?}");
        }
        for other in [
            r#"{"messages":[{"role":"user","content":"hi!"}]}"#,
            r#"{"messages":[{"role":"system","content":"hi"}]}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"temperature":0}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
        ] {
            assert_ne!(key(&parts(false), other), base, "{other}");
        }
    }

    #[test]
    fn scope_leaves_out_the_prompt_only() {
        let p = parts(false);
        let a = keyed(
            &p,
            br#"{"messages":[{"role":"user","content":"What is the capital of France?"}],"temperature":0}"#,
        )
        .unwrap();
        let b = keyed(
            &p,
            br#"{"messages":[{"role":"user","content":"Tell me France's capital"}],"temperature":0}"#,
        )
        .unwrap();
        let c = keyed(
            &p,
            br#"{"messages":[{"role":"user","content":"Tell me France's capital"}],"temperature":1}"#,
        )
        .unwrap();
        assert_ne!(a.exact, b.exact);
        assert_eq!(a.scope, b.scope);
        assert_ne!(b.scope, c.scope);
        assert_eq!(a.prompt_text, "user: What is the capital of France?\n");
        assert!(keyed(&p, b"[1]").is_none());
    }
}
