//! Quirks of OpenAI-compatible presets, applied to request bodies (pure).
//!
//! Mistral accepts only tool-call ids of exactly 9 alphanumeric characters. Clients carry ids from
//! other providers in their history (`call_abc...`, `toolu_...`), so before a body goes to Mistral
//! every id in `messages[].tool_calls[].id` and `messages[].tool_call_id` is mapped by
//! [`alphanumeric9_id`]: a valid id maps to itself (Mistral's own ids travel back to the client and
//! return unchanged on the next turn), any other id to a deterministic 9-character hash of it, so a
//! call and its result always still match, in this request and every later one.

use serde_json::Value;

use crate::provider::ToolCallIdRule;

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `id` itself when it is 9 alphanumeric characters, else 9 base-62 digits of its 64-bit FNV-1a hash.
pub fn alphanumeric9_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_owned();
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let c = ALPHABET[(h % 62) as usize] as char;
            h /= 62;
            c
        })
        .collect()
}

/// Rewrites the tool-call ids of an OpenAI chat body for `rule`. `None` when nothing had to change
/// (the body is then forwarded byte for byte).
pub fn rewrite_tool_call_ids(body: &[u8], rule: ToolCallIdRule) -> Option<Vec<u8>> {
    if rule == ToolCallIdRule::Any || memchr::memmem::find(body, b"tool_call").is_none() {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    let mut fix = |slot: &mut Value| {
        if let Some(id) = slot.as_str() {
            let new = alphanumeric9_id(id);
            if new != id {
                *slot = Value::String(new);
                changed = true;
            }
        }
    };
    for m in v.get_mut("messages")?.as_array_mut()? {
        if let Some(id) = m.get_mut("tool_call_id") {
            fix(id);
        }
        if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
            for c in calls {
                if let Some(id) = c.get_mut("id") {
                    fix(id);
                }
            }
        }
    }
    changed.then(|| serde_json::to_vec(&v).expect("a Value always serialises"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn calls_and_results_stay_paired_and_valid_ids_are_kept() {
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_9f8e7d6c5b4a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "Ab3dE6gH9", "type": "function", "function": {"name": "g", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_9f8e7d6c5b4a", "content": "1"},
            {"role": "tool", "tool_call_id": "Ab3dE6gH9", "content": "2"}
        ]});
        let out: Value = serde_json::from_slice(
            &rewrite_tool_call_ids(body.to_string().as_bytes(), ToolCallIdRule::Alphanumeric9).unwrap(),
        )
        .unwrap();
        let first = out["messages"][1]["tool_calls"][0]["id"].as_str().unwrap();
        assert_eq!(first.len(), 9);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(out["messages"][2]["tool_call_id"], first);
        assert_eq!(out["messages"][1]["tool_calls"][1]["id"], "Ab3dE6gH9");
        assert_eq!(out["messages"][3]["tool_call_id"], "Ab3dE6gH9");
        assert_eq!(out["messages"][0], body["messages"][0]);
    }

    #[test]
    fn bodies_without_foreign_ids_are_not_touched() {
        let plain = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(rewrite_tool_call_ids(plain, ToolCallIdRule::Alphanumeric9), None);
        let valid = br#"{"messages":[{"role":"tool","tool_call_id":"abcDEF123","content":"x"}]}"#;
        assert_eq!(rewrite_tool_call_ids(valid, ToolCallIdRule::Alphanumeric9), None);
        let foreign = br#"{"messages":[{"role":"tool","tool_call_id":"call_1","content":"x"}]}"#;
        assert_eq!(rewrite_tool_call_ids(foreign, ToolCallIdRule::Any), None);
    }

    proptest! {
        #[test]
        fn always_nine_alphanumerics_deterministic_and_idempotent(id in ".{0,40}") {
            let a = alphanumeric9_id(&id);
            prop_assert_eq!(a.len(), 9);
            prop_assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
            prop_assert_eq!(&alphanumeric9_id(&id), &a);
            prop_assert_eq!(alphanumeric9_id(&a), a);
        }
    }
}
