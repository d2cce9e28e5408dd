//! Top-level JSON object editing without a full parse.
//!
//! The OpenAI-to-OpenAI path must forward the client's body with only `model` rewritten: unknown fields
//! (`chat_template_kwargs`, `top_k`, ...) pass through byte for byte. [`JsonObject`] validates the whole
//! body once, keeps each top-level value as its raw text, and writes the object back with the edited
//! fields; nested values are never decoded or re-encoded.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

#[derive(Debug)]
pub struct JsonObject<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// Why a body could not be read as a JSON object, or why a field has the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonBodyError {
    #[error("request body is not valid JSON: {0}")]
    Syntax(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("'{field}' must be {expected}")]
    FieldType {
        field: &'static str,
        expected: &'static str,
    },
    /// A top-level field given twice: which one counts would be the reader's guess.
    #[error("'{0}' appears more than once in the request body")]
    DuplicateField(String),
}

impl<'a> JsonObject<'a> {
    pub fn parse(body: &'a [u8]) -> Result<JsonObject<'a>, JsonBodyError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let fields = match de.deserialize_any(ObjectVisitor) {
            Ok(f) => f,
            Err(e) if e.is_data() => return Err(JsonBodyError::NotAnObject),
            Err(e) => return Err(JsonBodyError::Syntax(e.to_string())),
        };
        de.end().map_err(|e| JsonBodyError::Syntax(e.to_string()))?;
        for (i, (key, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(k, _)| k == key) {
                return Err(JsonBodyError::DuplicateField(key.clone().into_owned()));
            }
        }
        Ok(JsonObject { fields })
    }

    /// The raw JSON text of the last occurrence of `key`.
    pub fn get_raw(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// A string field; `Ok(None)` when absent or `null`.
    pub fn get_str(&self, key: &'static str) -> Result<Option<Cow<'_, str>>, JsonBodyError> {
        match self.get_raw(key) {
            None | Some("null") => Ok(None),
            Some(raw) => {
                serde_json::from_str::<Cow<'_, str>>(raw)
                    .map(Some)
                    .map_err(|_| JsonBodyError::FieldType {
                        field: key,
                        expected: "a string",
                    })
            }
        }
    }

    /// A boolean field; `Ok(None)` when absent or `null`.
    pub fn get_bool(&self, key: &'static str) -> Result<Option<bool>, JsonBodyError> {
        match self.get_raw(key) {
            None | Some("null") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(JsonBodyError::FieldType {
                field: key,
                expected: "a boolean",
            }),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == key)
    }

    /// Sets `key` to a JSON string value, replacing every occurrence (or appending it).
    pub fn set_str(&mut self, key: &str, value: &str) {
        let raw = serde_json::to_string(value).expect("strings always serialise");
        self.set_raw(key, raw);
    }

    /// Sets `key` to raw JSON text (the caller guarantees it is valid JSON).
    pub fn set_raw(&mut self, key: &str, raw: String) {
        let mut raw = Some(raw);
        self.fields.retain_mut(|(k, v)| {
            if k != key {
                return true;
            }
            match raw.take() {
                Some(r) => {
                    *v = Cow::Owned(r);
                    true
                }
                None => false, // a later duplicate of a key already set
            }
        });
        if let Some(r) = raw {
            self.fields.push((Cow::Owned(key.to_owned()), Cow::Owned(r)));
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.fields.retain(|(k, _)| k != key);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let len = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
            + 2;
        let mut out = Vec::with_capacity(len);
        out.push(b'{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, k.as_ref()).expect("writing to a Vec cannot fail");
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'}');
        out
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<(Cow<'de, str>, Cow<'de, str>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            fields.push((key.0, Cow::Borrowed(value.get())));
        }
        Ok(fields)
    }
}

/// A map key that borrows from the input unless it contains escapes.
struct KeyStr<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_field_given_twice_is_refused_by_name() {
        let err = JsonObject::parse(br#"{"model":"cheap","messages":[],"model":"dear"}"#).unwrap_err();
        assert_eq!(err, JsonBodyError::DuplicateField("model".into()));
        assert!(JsonObject::parse(br#"{"a":{"x":1},"b":{"x":2}}"#).is_ok());
    }

    use super::*;

    #[test]
    fn rewrites_model_and_keeps_everything_else_byte_for_byte() {
        let body = br#"{"model":"openai/gpt-oss-120b","messages":[{"role":"user","content":"Hi \u00e4"}],"chat_template_kwargs":{"enable_thinking":false},"top_k": 20}"#;
        let mut obj = JsonObject::parse(body).unwrap();
        assert_eq!(
            obj.get_str("model").unwrap().as_deref(),
            Some("openai/gpt-oss-120b")
        );
        obj.set_str("model", "gpt-oss-120b");
        assert_eq!(
            String::from_utf8(obj.to_vec()).unwrap(),
            r#"{"model":"gpt-oss-120b","messages":[{"role":"user","content":"Hi \u00e4"}],"chat_template_kwargs":{"enable_thinking":false},"top_k":20}"#
        );
    }

    #[test]
    fn removes_gateway_only_fields() {
        let mut obj = JsonObject::parse(br#"{"model":"m","fallbacks":["a/b"],"stream":true}"#).unwrap();
        obj.remove("fallbacks");
        assert_eq!(obj.to_vec(), br#"{"model":"m","stream":true}"#);
        assert_eq!(obj.get_bool("stream").unwrap(), Some(true));
    }

    #[test]
    fn escaped_keys_and_duplicates() {
        // An escaped spelling is the same key: a duplicate, refused like any other.
        let err = JsonObject::parse(br#"{"mo\u0064el":"a","model":"b"}"#).unwrap_err();
        assert_eq!(err, JsonBodyError::DuplicateField("model".into()));
        let mut obj = JsonObject::parse(br#"{"mo\u0064el":"a"}"#).unwrap();
        assert_eq!(obj.get_str("model").unwrap().as_deref(), Some("a"));
        obj.set_str("model", "c");
        assert_eq!(obj.to_vec(), br#"{"model":"c"}"#);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            JsonObject::parse(b"{not json"),
            Err(JsonBodyError::Syntax(_))
        ));
        assert!(matches!(
            JsonObject::parse(b"[1,2]"),
            Err(JsonBodyError::NotAnObject)
        ));
        assert!(matches!(
            JsonObject::parse(b"{} trailing"),
            Err(JsonBodyError::Syntax(_))
        ));
        assert!(matches!(JsonObject::parse(b""), Err(JsonBodyError::Syntax(_))));
        let obj = JsonObject::parse(br#"{"model":5,"stream":"yes"}"#).unwrap();
        assert_eq!(
            obj.get_str("model").unwrap_err(),
            JsonBodyError::FieldType {
                field: "model",
                expected: "a string"
            }
        );
        assert!(obj.get_bool("stream").is_err());
    }

    #[test]
    fn appends_missing_fields() {
        let mut obj = JsonObject::parse(b"{}").unwrap();
        obj.set_str("model", "m");
        assert_eq!(obj.to_vec(), br#"{"model":"m"}"#);
    }
}
