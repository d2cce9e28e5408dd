//! The top-level members of a JSON object, found without decoding their values.
//!
//! Reading two or three members out of a whole answer with serde walks every byte of the rest and
//! checks it (a chat answer is mostly `choices`, which the gateway relays untouched): more than half
//! of the instructions spent on an answer. [`each_top_level`] only finds where each member's value begins
//! and ends (strings are skipped a machine word at a time, containers by their brackets); the caller
//! decodes the few values it wants.

/// Calls `each` with every member of the object `text` holds, in order: its key as written between
/// the quotes (escapes left as they are) and its value's text. `None` when `text` is not one object
/// (with whitespace around it), ends inside it, or `each` gives up by answering `None`. Values are
/// delimited, not validated: a value with a malformed inside still comes as its bracketed text.
pub fn each_top_level<'a>(
    text: &'a [u8],
    mut each: impl FnMut(&'a [u8], &'a [u8]) -> Option<()>,
) -> Option<()> {
    let mut at = skip_ws(text, 0);
    if text.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(text, at + 1);
    if text.get(at) == Some(&b'}') {
        return only_ws_after(text, at + 1).then_some(());
    }
    loop {
        if text.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(text, at)?;
        let key = &text[at + 1..key_end - 1];
        at = skip_ws(text, key_end);
        if text.get(at) != Some(&b':') {
            return None;
        }
        let start = skip_ws(text, at + 1);
        let end = value_end(text, start)?;
        each(key, &text[start..end])?;
        at = skip_ws(text, end);
        match text.get(at) {
            Some(b',') => at = skip_ws(text, at + 1),
            Some(b'}') => return only_ws_after(text, at + 1).then_some(()),
            _ => return None,
        }
    }
}

fn skip_ws(text: &[u8], mut at: usize) -> usize {
    while text
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

fn only_ws_after(text: &[u8], at: usize) -> bool {
    skip_ws(text, at) == text.len()
}

/// Just past the closing quote of the string whose opening quote is at `at`.
fn string_end(text: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', text.get(i..)?)?;
        if text[i] == b'"' {
            return Some(i + 1);
        }
        i += 2; // a backslash and the byte it escapes
    }
}

/// Just past the value that starts at `at`: a string, a container (to its matching bracket) or a
/// scalar (to the next delimiter).
fn value_end(text: &[u8], at: usize) -> Option<usize> {
    match *text.get(at)? {
        b'"' => string_end(text, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while i < text.len() {
                match text[i] {
                    b'"' => {
                        i = string_end(text, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        b',' | b'}' | b']' | b':' => None,
        _ => {
            let len = text[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(text.len() - at);
            Some(at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::each_top_level;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// Every member, or `None` where [`each_top_level`] refuses the text.
    fn top_level(text: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
        let mut members = Vec::new();
        each_top_level(text, |key, value| {
            members.push((key, value));
            Some(())
        })?;
        Some(members)
    }

    fn keys_and_values(text: &str) -> Option<Vec<(String, Value)>> {
        top_level(text.as_bytes()).map(|members| {
            members
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8(k.to_vec()).unwrap(),
                        serde_json::from_slice(v).unwrap(),
                    )
                })
                .collect()
        })
    }

    #[test]
    fn members_of_an_answer_are_delimited_exactly() {
        let text = r#" { "id" : "a\"b}", "choices":[{"message":{"content":"x]}\\"}}],
            "usage":{"prompt_tokens":3}, "n": -1.5e3 ,"ok":true,"none":null,"e":{}} "#;
        let got = keys_and_values(text).unwrap();
        let mut want: Vec<(String, Value)> = serde_json::from_str::<serde_json::Map<String, Value>>(text)
            .unwrap()
            .into_iter()
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let mut sorted = got.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(sorted, want);
        assert_eq!(got[0], ("id".to_owned(), json!("a\"b}")));
        assert_eq!(keys_and_values("{}"), Some(vec![]));
    }

    #[test]
    fn anything_but_one_whole_object_is_refused() {
        for text in [
            "",
            "[]",
            "\"x\"",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":1,}",
            "{\"a\":1} x",
            "{\"a\":[1,2}",
            "{\"a\" 1}",
            "{\"a\":\"open}",
            "{\"a\":1}}",
            "{,}",
        ] {
            assert_eq!(top_level(text.as_bytes()), None, "{text:?}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[ -~\"\\\\\\n\\u{e9}\\u{1F600}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"\\\\{}]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any object serde writes (compact or pretty) splits into the members serde reads back.
        #[test]
        fn members_agree_with_serde(
            members in prop::collection::btree_map("[a-z_\"\\\\]{0,8}", json_value(), 0..8),
            pretty in any::<bool>(),
        ) {
            let object = Value::Object(members.into_iter().collect());
            let text = if pretty {
                serde_json::to_string_pretty(&object).unwrap()
            } else {
                serde_json::to_string(&object).unwrap()
            };
            let got = top_level(text.as_bytes()).expect("a whole object");
            // What serde reads back from the same text (floats do not always survive a round trip).
            let want: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(got.len(), want.len());
            for ((key, value), (want_key, want_value)) in got.iter().zip(&want) {
                let key: String = serde_json::from_slice(&[b"\"", *key, b"\""].concat()).unwrap();
                prop_assert_eq!(&key, want_key);
                let value: Value = serde_json::from_slice(value).unwrap();
                prop_assert_eq!(&value, want_value);
            }
        }

        /// Cut anywhere inside, an object is refused, never misread and never a panic.
        #[test]
        fn a_cut_object_is_refused(object in json_value(), cut in any::<prop::sample::Index>()) {
            let text = serde_json::to_string(&serde_json::json!({"a": object, "b": 1})).unwrap();
            let at = cut.index(text.len() - 1);
            prop_assert_eq!(top_level(&text.as_bytes()[..at]), None);
        }
    }
}
