//! Wire types (requests borrow from the request body where possible; responses are serialized from
//! borrowed structs) and deterministic content helpers.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// `created` of every listed model: 2026-01-01T00:00:00Z.
pub(crate) const MODELS_CREATED: u64 = 1_767_225_600;
pub(crate) const MODEL_IDS: [&str; 4] = ["gpt-oss-120b", "Qwen3.5-0.8B", "Qwen3-Embedding-8B", "echo"];
pub(crate) const MAX_MODEL_LEN: u64 = 131_072;

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A string that is borrowed from the request body when it contains no escapes.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Str<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

#[derive(Deserialize)]
pub(crate) struct ChatRequest<'a> {
    #[serde(borrow)]
    pub(crate) model: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) messages: Option<Vec<Message<'a>>>,
    pub(crate) stream: Option<bool>,
    pub(crate) stream_options: Option<StreamOptions>,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) max_completion_tokens: Option<u64>,
    pub(crate) chat_template_kwargs: Option<TemplateKwargs>,
}

#[derive(Deserialize)]
pub(crate) struct CompletionRequest<'a> {
    #[serde(borrow)]
    pub(crate) model: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) prompt: Option<Texts<'a>>,
    pub(crate) stream: Option<bool>,
    pub(crate) stream_options: Option<StreamOptions>,
    pub(crate) max_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct EmbeddingsRequest<'a> {
    #[serde(borrow)]
    pub(crate) model: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) input: Option<Texts<'a>>,
    #[serde(borrow)]
    pub(crate) encoding_format: Option<Str<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct StreamOptions {
    pub(crate) include_usage: Option<bool>,
}

#[derive(Deserialize)]
pub(crate) struct TemplateKwargs {
    pub(crate) enable_thinking: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(borrow)]
    pub(crate) role: Option<Str<'a>>,
    #[serde(borrow)]
    pub(crate) content: Option<Content<'a>>,
}

/// Message content: a plain string or an array of parts (only their `text` is kept).
pub(crate) enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Cow<'a, str>>),
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow)]
    text: Option<Str<'a>>,
}

impl Content<'_> {
    /// The text of the content (array parts concatenated).
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Content::Text(t) => Cow::Borrowed(t),
            Content::Parts(parts) if parts.len() == 1 => Cow::Borrowed(&parts[0]),
            Content::Parts(parts) => Cow::Owned(parts.concat()),
        }
    }

    pub(crate) fn word_count(&self) -> u64 {
        match self {
            Content::Text(t) => word_count(t),
            Content::Parts(parts) => parts.iter().map(|p| word_count(p)).sum(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element::<Part<'a>>()? {
                    if let Some(text) = part.text {
                        parts.push(text.0);
                    }
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A string or an array of strings (`prompt` of completions, `input` of embeddings).
pub(crate) enum Texts<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl Texts<'_> {
    pub(crate) fn as_slice(&self) -> &[Cow<'_, str>] {
        match self {
            Texts::One(t) => std::slice::from_ref(t),
            Texts::Many(v) => v,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Texts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Texts<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Texts::One(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Texts::One(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Texts::One(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(s) = seq.next_element::<Str<'a>>()? {
                    items.push(s.0);
                }
                Ok(Texts::Many(items))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) total_tokens: u64,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ChatCompletion<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: [ChatChoice<'a>; 1],
    /// `None` (left out) for `nousage*` models: an upstream that reports no usage at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) usage: Option<Usage>,
    pub(crate) system_fingerprint: (),
}

#[derive(Serialize)]
pub(crate) struct ChatChoice<'a> {
    pub(crate) index: u32,
    pub(crate) message: AssistantMessage<'a>,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: &'static str,
}

#[derive(Serialize)]
pub(crate) struct AssistantMessage<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: Option<&'a str>,
    pub(crate) refusal: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasoning_content: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_calls: Option<[ToolCall; 1]>,
}

#[derive(Serialize)]
pub(crate) struct ToolCall {
    pub(crate) id: &'static str,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: ToolFunction,
}

#[derive(Serialize)]
pub(crate) struct ToolFunction {
    pub(crate) name: &'static str,
    pub(crate) arguments: &'static str,
}

pub(crate) const TOOL_CALL_ID: &str = "call_1";
pub(crate) const TOOL_NAME: &str = "get_weather";
pub(crate) const TOOL_ARGUMENTS: &str = r#"{"city": "Berlin"}"#;
pub(crate) const TOOL_ARGUMENT_PIECES: [&str; 3] = [r#"{"city": "#, r#""Ber"#, r#"lin"}"#];

/// The tool call a `tool*` chat model makes: `get_weather` by default; coding agents' own tools when
/// the model name says so (`*read*`: Claude Code's `Read` of `/etc/hostname`; `*exec*`: Codex's
/// `exec_command` running `echo switchyard`), so a real agent runs the tool and sends its result back.
#[derive(Clone, Copy)]
pub(crate) struct MockTool {
    pub(crate) name: &'static str,
    pub(crate) arguments: &'static str,
    pub(crate) pieces: &'static [&'static str],
}

pub(crate) fn tool_for(model: &str) -> MockTool {
    if model.contains("read") {
        MockTool {
            name: "Read",
            arguments: r#"{"file_path": "/etc/hostname"}"#,
            pieces: &[r#"{"file_path": "#, r#""/etc/host"#, r#"name"}"#],
        }
    } else if model.contains("exec") {
        MockTool {
            name: "exec_command",
            arguments: r#"{"cmd": "echo switchyard"}"#,
            pieces: &[r#"{"cmd": "#, r#""echo switch"#, r#"yard"}"#],
        }
    } else {
        MockTool {
            name: TOOL_NAME,
            arguments: TOOL_ARGUMENTS,
            pieces: &TOOL_ARGUMENT_PIECES,
        }
    }
}

/// A streamed chunk (`chat.completion.chunk` or streamed `text_completion`).
#[derive(Serialize)]
pub(crate) struct Chunk<'a, C: Serialize> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: &'a [C],
    /// Omitted without `include_usage`, `null` on normal chunks with it, set on the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
pub(crate) struct ChunkChoice<'a> {
    pub(crate) index: u32,
    pub(crate) delta: Delta<'a>,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasoning_content: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_calls: Option<[ToolCallDelta; 1]>,
}

#[derive(Serialize)]
pub(crate) struct ToolCallDelta {
    pub(crate) index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<&'static str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) function: ToolFunctionDelta,
}

#[derive(Serialize)]
pub(crate) struct ToolFunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<&'static str>,
    pub(crate) arguments: &'static str,
}

#[derive(Serialize)]
pub(crate) struct TextCompletion<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: [TextChoice<'a>; 1],
    pub(crate) usage: Usage,
    pub(crate) system_fingerprint: (),
}

#[derive(Serialize)]
pub(crate) struct TextChoice<'a> {
    pub(crate) index: u32,
    pub(crate) text: &'a str,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct EmbeddingList<'a> {
    pub(crate) object: &'static str,
    pub(crate) model: &'a str,
    pub(crate) data: Vec<EmbeddingItem>,
    pub(crate) usage: EmbeddingUsage,
}

#[derive(Serialize)]
pub(crate) struct EmbeddingItem {
    pub(crate) object: &'static str,
    pub(crate) index: usize,
    pub(crate) embedding: EmbeddingVector,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum EmbeddingVector {
    Floats([f32; EMBEDDING_DIM]),
    Base64(String),
    /// A bag-of-words vector (`bow*` models).
    Bag(Vec<f32>),
}

#[derive(Serialize)]
pub(crate) struct EmbeddingUsage {
    pub(crate) prompt_tokens: u64,
    pub(crate) total_tokens: u64,
}

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: Vec<ModelObject>,
}

#[derive(Serialize)]
pub(crate) struct ModelObject {
    id: &'static str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    max_model_len: u64,
}

pub(crate) fn model_object(id: &'static str) -> ModelObject {
    ModelObject {
        id,
        object: "model",
        created: MODELS_CREATED,
        owned_by: "mittwald",
        max_model_len: MAX_MODEL_LEN,
    }
}

pub(crate) fn models_list_body() -> Bytes {
    let list = ModelList {
        object: "list",
        data: MODEL_IDS.iter().map(|id| model_object(id)).collect(),
    };
    Bytes::from(serde_json::to_vec(&list).expect("serializing the model list cannot fail"))
}

/// A model list of the given ids, in the same shape.
pub(crate) fn models_list_body_of(ids: &[String]) -> Bytes {
    let data: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "mittwald"}))
        .collect();
    Bytes::from(serde_json::json!({"object": "list", "data": data}).to_string())
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct OpenAiError<'a> {
    error: OpenAiErrorInner<'a>,
}

#[derive(Serialize)]
struct OpenAiErrorInner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// `{"error":{"message","type","param","code"}}`
pub(crate) fn openai_error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    let err = OpenAiError {
        error: OpenAiErrorInner {
            message,
            kind,
            param,
            code,
        },
    };
    serde_json::to_vec(&err).expect("serializing an error cannot fail")
}

#[derive(Serialize)]
struct FlatError<'a> {
    object: &'static str,
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: u16,
}

/// vLLM's flat error body: `{"object":"error","message","type","param","code":400}`.
pub(crate) fn flat_error(message: &str, param: Option<&str>) -> Vec<u8> {
    let err = FlatError {
        object: "error",
        message,
        kind: "invalid_request_error",
        param,
        code: 400,
    };
    serde_json::to_vec(&err).expect("serializing an error cannot fail")
}

// ---------------------------------------------------------------------------------------------
// Deterministic content helpers
// ---------------------------------------------------------------------------------------------

/// Whitespace-separated word count.
pub(crate) fn word_count(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Splits `s` into pieces that each hold one word plus the whitespace following it (leading
/// whitespace stays with the first piece), so the pieces concatenate back to `s`.
pub(crate) fn word_pieces(s: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_ws = false;
    let mut seen_word = false;
    for (i, c) in s.char_indices() {
        let ws = c.is_whitespace();
        if !ws && prev_ws && seen_word {
            pieces.push(&s[start..i]);
            start = i;
        }
        if !ws {
            seen_word = true;
        }
        prev_ws = ws;
    }
    if start < s.len() {
        pieces.push(&s[start..]);
    }
    pieces
}

pub(crate) const EMBEDDING_DIM: usize = 8;

/// A deterministic 8-dimensional vector derived from the bytes of `text`, values in [-1, 1].
/// Dimensions of the `bow*` models' embeddings.
pub(crate) const BAG_DIM: usize = 512;

/// Words that carry no meaning in a bag-of-words embedding.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "of", "to", "in", "on", "for", "and", "or", "what", "whats", "s",
    "me", "please", "tell", "which", "do", "does", "i", "you", "it", "its",
];

/// A real (if simple) text embedding for `bow*` models: each content word (lower-cased, a trailing
/// plural `s` dropped, stop words left out) is hashed (FNV-1a) into one of [`BAG_DIM`] buckets and
/// counted. Texts sharing most of their content words are close by cosine similarity; texts
/// sharing none are orthogonal (but for hash collisions).
pub(crate) fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; BAG_DIM];
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.strip_suffix('s').filter(|w| w.len() > 2).unwrap_or(word);
        if STOP_WORDS.contains(&word) {
            continue;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        v[(h % BAG_DIM as u64) as usize] += 1.0;
    }
    v
}

pub(crate) fn embedding_of(text: &str) -> [f32; EMBEDDING_DIM] {
    let mut sums = [0u64; EMBEDDING_DIM];
    for (i, b) in text.bytes().enumerate() {
        sums[i % EMBEDDING_DIM] += u64::from(b) * (i as u64 / EMBEDDING_DIM as u64 + 1);
    }
    let len = text.len() as u64;
    let mut out = [0f32; EMBEDDING_DIM];
    for (j, v) in out.iter_mut().enumerate() {
        let mixed = (sums[j] + 31 * (j as u64 + 1) * len) % 2001;
        *v = mixed as f32 / 1000.0 - 1.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_back() {
        for s in ["echo: hello world", "echo: ", "a  b\nc ", "  lead x", "", "one"] {
            let pieces = word_pieces(s);
            assert_eq!(pieces.concat(), s);
            assert_eq!(pieces.len() as u64, word_count(s).max(u64::from(!s.is_empty())));
        }
        assert_eq!(word_pieces("echo: hi there"), vec!["echo: ", "hi ", "there"]);
    }

    #[test]
    fn embeddings_are_deterministic() {
        assert_eq!(embedding_of("hello"), embedding_of("hello"));
        assert_ne!(embedding_of("hello"), embedding_of("world"));
        assert!(embedding_of("x").iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn content_parts() {
        let m: Message = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"a b"},{"type":"image_url","image_url":{}},{"type":"text","text":"c"}]}"#,
        )
        .unwrap();
        let c = m.content.unwrap();
        assert_eq!(c.text(), "a bc");
        assert_eq!(c.word_count(), 3);
    }
}
