//! Embedding answers: the `base64` encoding the OpenAI SDKs ask for by default.
//!
//! `encoding_format: "base64"` means each vector is sent as the base64 of its little-endian float32
//! bytes. Upstreams that honour it are passed through untouched; one that answers with float lists
//! anyway gets its vectors encoded here, so a client that asked for base64 explicitly gets base64.

use base64::Engine as _;
use serde_json::Value;

/// The base64 of `v` as little-endian float32 values (OpenAI's `encoding_format: "base64"`).
pub fn encode_f32_base64(v: &[f32]) -> String {
    let mut raw = Vec::with_capacity(v.len() * 4);
    for x in v {
        raw.extend_from_slice(&x.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Rewrites every float-list `data[].embedding` of an embeddings answer to base64. `None` when nothing
/// needed rewriting (already base64, or not an embeddings list), so the caller keeps the original bytes.
pub fn floats_to_base64(body: &[u8]) -> Option<Vec<u8>> {
    let mut answer: Value = serde_json::from_slice(body).ok()?;
    let items = answer.get_mut("data")?.as_array_mut()?;
    let mut changed = false;
    for item in items {
        let Some(embedding) = item.get_mut("embedding") else {
            continue;
        };
        let Some(list) = embedding.as_array() else {
            continue;
        };
        let floats: Option<Vec<f32>> = list.iter().map(|x| x.as_f64().map(|f| f as f32)).collect();
        if let Some(floats) = floats {
            *embedding = Value::String(encode_f32_base64(&floats));
            changed = true;
        }
    }
    changed.then(|| serde_json::to_vec(&answer).expect("a Value always serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_little_endian_float32() {
        // 1.0f32 = 0x3F800000 -> bytes 00 00 80 3F
        assert_eq!(encode_f32_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_f32_base64(&[]), "");
    }

    #[test]
    fn rewrites_float_lists_only() {
        let body = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0,-2.5]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}"#;
        let out: Value = serde_json::from_slice(&floats_to_base64(body).unwrap()).unwrap();
        let b64 = out["data"][0]["embedding"].as_str().unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        let back: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(back, vec![1.0, -2.5]);
        assert_eq!(out["usage"]["prompt_tokens"], 1);

        let already = br#"{"data":[{"embedding":"AACAPw=="}]}"#;
        assert_eq!(floats_to_base64(already), None);
        assert_eq!(floats_to_base64(b"not json"), None);
    }
}
