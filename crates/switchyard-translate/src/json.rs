//! Small typed readers over `serde_json::Value` that name the failing field.

pub(crate) mod members;

use serde_json::{Map, Value};

use crate::TranslateError;

pub(crate) type Obj = Map<String, Value>;

pub(crate) fn parse_object(body: &[u8]) -> Result<Obj, TranslateError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(TranslateError::NotAnObject),
        Err(e) => Err(TranslateError::InvalidJson(e.to_string())),
    }
}

/// `prefix.key`, or `key` at the top level.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

pub(crate) fn object<'a>(v: &'a Value, param: &str) -> Result<&'a Obj, TranslateError> {
    v.as_object()
        .ok_or_else(|| TranslateError::invalid(param, "must be an object"))
}

pub(crate) fn opt_object<'a>(v: Option<&'a Value>, param: &str) -> Result<Option<&'a Obj>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => object(v, param).map(Some),
    }
}

pub(crate) fn opt_str<'a>(v: Option<&'a Value>, param: &str) -> Result<Option<&'a str>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TranslateError::invalid(param, "must be a string")),
    }
}

pub(crate) fn req_str<'a>(v: Option<&'a Value>, param: &str) -> Result<&'a str, TranslateError> {
    opt_str(v, param)?.ok_or_else(|| TranslateError::MissingField {
        param: param.to_owned(),
    })
}

pub(crate) fn opt_bool(v: Option<&Value>, param: &str) -> Result<Option<bool>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(TranslateError::invalid(param, "must be a boolean")),
    }
}

pub(crate) fn opt_f64(v: Option<&Value>, param: &str) -> Result<Option<f64>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(TranslateError::invalid(param, "must be a number")),
    }
}

pub(crate) fn opt_u32(v: Option<&Value>, param: &str) -> Result<Option<u32>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| TranslateError::invalid(param, "must be a non-negative integer")),
        Some(_) => Err(TranslateError::invalid(param, "must be a non-negative integer")),
    }
}

pub(crate) fn opt_array<'a>(
    v: Option<&'a Value>,
    param: &str,
) -> Result<Option<&'a Vec<Value>>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(TranslateError::invalid(param, "must be an array")),
    }
}

pub(crate) fn req_array<'a>(v: Option<&'a Value>, param: &str) -> Result<&'a Vec<Value>, TranslateError> {
    opt_array(v, param)?.ok_or_else(|| TranslateError::MissingField {
        param: param.to_owned(),
    })
}

/// A token count: absent, `null` or not a number reads as 0 (usage is reported, never validated).
pub(crate) fn count(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

/// A value read leniently straight from JSON text (usage is reported, never validated): integers and
/// objects as the type reads them, every other kind of value as `Default::default()`.
pub(crate) trait Lenient: Default + Sized {
    fn from_u64(_: u64) -> Self {
        Self::default()
    }

    /// An object, its entries still to be read (or skipped) from `map`.
    fn from_map<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Self::default())
    }
}

/// Reads any JSON value into a [`Lenient`] type.
pub(crate) fn lenient<'de, T: Lenient, D: serde::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(LenientVisitor(std::marker::PhantomData))
}

struct LenientVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Lenient> serde::de::Visitor<'de> for LenientVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E>(self, n: u64) -> Result<T, E> {
        Ok(T::from_u64(n))
    }

    fn visit_i64<E>(self, n: i64) -> Result<T, E> {
        Ok(u64::try_from(n).map_or_else(|_| T::default(), T::from_u64))
    }

    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

/// A token count read straight from JSON text, as [`count`] reads it from a value: a non-negative
/// integer, and 0 for anything else (a float, a string, `null`, an object...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Count(pub u64);

impl Lenient for Count {
    fn from_u64(n: u64) -> Count {
        Count(n)
    }
}

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        lenient(d)
    }
}

/// A string list given as one string or an array of strings (OpenAI's `stop`).
pub(crate) fn string_or_list(v: Option<&Value>, param: &str) -> Result<Vec<String>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| TranslateError::invalid(format!("{param}[{i}]"), "must be a string"))
            })
            .collect(),
        Some(_) => Err(TranslateError::invalid(
            param,
            "must be a string or an array of strings",
        )),
    }
}

/// Checks that tool-call arguments are the JSON text of an object (empty text counts as `{}`).
pub(crate) fn check_arguments(args: &str, param: &str) -> Result<(), TranslateError> {
    if args.trim().is_empty() {
        return Ok(());
    }
    match serde_json::from_str::<Value>(args) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err(TranslateError::invalid(
            param,
            "must be the JSON text of an object",
        )),
        Err(e) => Err(TranslateError::invalid(param, format!("is not valid JSON: {e}"))),
    }
}

/// Parses tool-call arguments into an object; empty text is `{}`. `None` when they are not an object.
/// The arguments of the `index`-th tool call of an upstream answer, as the object that Anthropic,
/// Gemini and Bedrock clients need; arguments that are not an object cannot be given to them (502).
pub(crate) fn answer_arguments(index: usize, args: &str) -> Result<Value, TranslateError> {
    arguments_object(args).ok_or_else(|| {
        TranslateError::upstream(
            format!("tool_calls[{index}].function.arguments"),
            "the upstream's tool call arguments are not a JSON object",
        )
    })
}

pub(crate) fn arguments_object(args: &str) -> Option<Value> {
    if args.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// Parses arguments that a request parser already checked ([`check_arguments`]).
pub(crate) fn checked_arguments(args: &str) -> Value {
    arguments_object(args).unwrap_or_else(|| Value::Object(Map::new()))
}

pub(crate) fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a Value always serialises")
}

/// Content that must be text: absent, a string, or an array of `{"type":"text","text":...}` items
/// (joined with `\n`). The messages say what the protocol calls the items.
pub(crate) fn text_or_text_items(
    v: Option<&Value>,
    param: &str,
    non_text: &str,
    wrong_type: &str,
) -> Result<String, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) => {
            let mut texts = Vec::new();
            for (k, item) in items.iter().enumerate() {
                let ip = format!("{param}[{k}]");
                let io = object(item, &ip)?;
                match req_str(io.get("type"), &join(&ip, "type"))? {
                    "text" => texts.push(req_str(io.get("text"), &join(&ip, "text"))?.to_owned()),
                    _ => return Err(TranslateError::unsupported(join(&ip, "type"), non_text)),
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(TranslateError::invalid(param, wrong_type)),
    }
}

/// The turns of a conversation as Anthropic, Gemini and Bedrock need them: empty turns dropped (they
/// are rejected), neighbours of the same role merged (roles must alternate), and in each turn the
/// blocks for which `is_result` holds (tool results) first, since they must directly follow the calls.
pub(crate) fn merge_turns(
    turns: impl IntoIterator<Item = (&'static str, Vec<Value>)>,
    is_result: impl Fn(&Value) -> bool,
) -> Vec<(&'static str, Vec<Value>)> {
    let mut merged: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (role, blocks) in turns {
        if blocks.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => merged.push((role, blocks)),
        }
    }
    for (_, blocks) in &mut merged {
        blocks.sort_by_key(|b| !is_result(b));
    }
    merged
}
