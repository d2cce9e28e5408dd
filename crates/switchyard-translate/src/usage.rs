//! Token usage read out of whole answers and stream events, in each wire format, for accounting.
//!
//! Only the usage object of a body or event is decoded (everything else is skipped), and its counts are
//! read by the protocol's own adapter, so an answer's usage is the same whether the gateway translates
//! it or relays it as is.

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_core::pricing::TokenUsage;

use crate::canonical::Usage;
use crate::json::{count, Obj};
use crate::{anthropic, gemini, openai};

/// The wire format of the answers whose usage is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageFormat {
    /// OpenAI Chat Completions (and legacy completions, embeddings, ...): `usage.prompt_tokens` /
    /// `completion_tokens`, in a stream on the usage chunk.
    OpenAi,
    /// Anthropic Messages: `usage`, in a stream on `message_start` and `message_delta`.
    Anthropic,
    /// Gemini `generateContent`: `usageMetadata`.
    Gemini,
    /// The Responses API: `usage.input_tokens` / `output_tokens` on the answer, and on the `response`
    /// object of its `response.completed` event.
    Responses,
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<Obj>,
}

/// A body's `usage`, its text left unparsed (for the format's own reader).
#[derive(Deserialize)]
struct WithRawUsage<'a> {
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithUsageMetadata {
    usage_metadata: Option<Obj>,
}

#[derive(Deserialize)]
struct ResponsesEvent {
    response: Option<WithUsage>,
}

#[derive(Deserialize)]
struct AnthropicEvent {
    usage: Option<Obj>,
    message: Option<WithUsage>,
}

/// The Responses API's usage object (no adapter speaks that API; only its usage is read).
fn responses_usage(u: &Obj) -> Usage {
    let detail = |object: &str, field: &str| count(u.get(object).and_then(|d| d.get(field)));
    Usage::from_cached_prompt(
        count(u.get("input_tokens")),
        detail("input_tokens_details", "cached_tokens"),
        count(u.get("output_tokens")),
        detail("output_tokens_details", "reasoning_tokens"),
    )
}

fn anthropic_usage(u: &Obj) -> Usage {
    let mut out = Usage::default();
    anthropic::merge_usage(&mut out, u);
    out
}

/// What accounting counts of a canonical usage.
fn tokens(u: Usage) -> TokenUsage {
    TokenUsage {
        input: u.input,
        output: u.output,
        cache_read: u.cache_read,
        cache_write: u.cache_write,
    }
}

/// The `usage` object of a body, decoded alone.
fn usage_object(body: &[u8]) -> Option<Obj> {
    serde_json::from_slice::<WithUsage>(body).ok()?.usage
}

/// Usage of a whole (non-streamed) answer; `None` when it reports none.
pub fn usage_from_json(format: UsageFormat, body: &[u8]) -> Option<TokenUsage> {
    let usage = match format {
        UsageFormat::OpenAi => {
            let raw = serde_json::from_slice::<WithRawUsage>(body).ok()?.usage?;
            openai::parse_usage_json(raw.get().as_bytes())?
        }
        UsageFormat::Anthropic => anthropic_usage(&usage_object(body)?),
        UsageFormat::Responses => responses_usage(&usage_object(body)?),
        UsageFormat::Gemini => gemini::parse_usage(
            &serde_json::from_slice::<WithUsageMetadata>(body)
                .ok()?
                .usage_metadata?,
        ),
    };
    Some(tokens(usage))
}

/// What a whole answer says about itself: its usage and the model the upstream names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AnswerFacts {
    /// The tokens the answer reports; `None` when it reports none.
    pub usage: Option<TokenUsage>,
    /// OpenAI's and Anthropic's `model`, Gemini's `modelVersion`, or the `model` of a `message` or
    /// `response` object; never empty.
    pub model: Option<String>,
}

#[derive(Deserialize)]
struct ModelOnly {
    model: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WholeAnswer<'a> {
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
    usage_metadata: Option<Obj>,
    model: Option<String>,
    model_version: Option<String>,
    message: Option<ModelOnly>,
    response: Option<ModelOnly>,
}

/// The members [`WholeAnswer`] reads, decoded from the answer's top-level members alone (the rest,
/// mostly `choices`, is delimited but not decoded). `None` when the scan or a wanted member's value
/// does not read cleanly, or a key is written with escapes or twice: serde then reads the whole body,
/// so the outcome is serde's wherever the answer is well-formed JSON.
fn whole_answer_by_members(body: &[u8]) -> Option<WholeAnswer<'_>> {
    let mut a = WholeAnswer::default();
    let mut seen = [false; 6];
    crate::json::members::each_top_level(body, |key, value| {
        if key.contains(&b'\\') {
            return None;
        }
        match key {
            b"usage" => a.usage = read_once(&mut seen[0], value)?,
            b"usageMetadata" => a.usage_metadata = read_once(&mut seen[1], value)?,
            b"model" => a.model = read_once(&mut seen[2], value)?,
            b"modelVersion" => a.model_version = read_once(&mut seen[3], value)?,
            b"message" => a.message = read_once(&mut seen[4], value)?,
            b"response" => a.response = read_once(&mut seen[5], value)?,
            _ => {}
        }
        Some(())
    })?;
    Some(a)
}

/// A wanted member's value, unless the member was already read (serde refuses a repeated field).
fn read_once<'a, T: Deserialize<'a>>(seen: &mut bool, value: &'a [u8]) -> Option<T> {
    if std::mem::replace(seen, true) {
        return None;
    }
    serde_json::from_slice(value).ok()
}

/// [`AnswerFacts`] of a whole answer, read in one pass over the body. A body whose other fields have
/// unexpected types still gives its usage (read alone, as [`usage_from_json`] does).
pub fn answer_facts(format: UsageFormat, body: &[u8]) -> AnswerFacts {
    let whole = whole_answer_by_members(body).or_else(|| serde_json::from_slice::<WholeAnswer>(body).ok());
    facts_of(format, body, whole)
}

/// The facts of `body` as `whole` (its members, however read) gives them; without it, the usage read
/// alone.
fn facts_of(format: UsageFormat, body: &[u8], whole: Option<WholeAnswer<'_>>) -> AnswerFacts {
    let Some(a) = whole else {
        return AnswerFacts {
            usage: usage_from_json(format, body),
            model: None,
        };
    };
    let object = |raw: &RawValue| serde_json::from_str::<Obj>(raw.get()).ok();
    let usage = match format {
        UsageFormat::OpenAi => a.usage.and_then(|u| openai::parse_usage_json(u.get().as_bytes())),
        UsageFormat::Anthropic => a.usage.and_then(object).map(|u| anthropic_usage(&u)),
        UsageFormat::Responses => a.usage.and_then(object).map(|u| responses_usage(&u)),
        UsageFormat::Gemini => a.usage_metadata.as_ref().map(gemini::parse_usage),
    };
    let model = a
        .model
        .or(a.model_version)
        .or(a.message.and_then(|m| m.model))
        .or(a.response.and_then(|r| r.model))
        .filter(|m| !m.is_empty());
    AnswerFacts {
        usage: usage.map(tokens),
        model,
    }
}

/// Keys whose string values are text the model wrote (or its tool-call arguments), in any protocol:
/// OpenAI's `content` / `reasoning_content` / `arguments` / `refusal`, Anthropic's `text` /
/// `thinking` / `partial_json`, Gemini's `text`, the Responses API's string `delta`.
const TEXT_KEYS: [&str; 9] = [
    "content",
    "text",
    "arguments",
    "partial_json",
    "thinking",
    "reasoning_content",
    "reasoning",
    "refusal",
    "delta",
];

/// Bytes of model-written text in a JSON answer or one stream event's payload: the basis of the
/// output estimate when an upstream reports no usage. Responses API events other than `*.delta`
/// repeat text already sent (`*.done`, `response.completed`), so they count 0.
///
/// Runs on every relayed stream event until usage arrives, so it scans the bytes once without
/// building a value: string values held by a [`TEXT_KEYS`] key (directly or in an array under one)
/// count their decoded UTF-8 length. Text that is not well-formed JSON counts 0.
pub fn text_bytes(json: &[u8]) -> usize {
    text_scan(json).unwrap_or(0)
}

/// One open container: an object (`expect_key`: the next string is a key) or an array (`text`: it is
/// held by a text key).
enum Open {
    Object { expect_key: bool },
    Array { text: bool },
}

fn text_scan(json: &[u8]) -> Option<usize> {
    let is_text_key = |k: Option<&[u8]>| k.is_some_and(|k| TEXT_KEYS.iter().any(|t| t.as_bytes() == k));
    let mut stack: Vec<Open> = Vec::new();
    let mut key: Option<&[u8]> = None;
    let mut total = 0;
    let mut top_type: Option<&[u8]> = None;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'{' => {
                stack.push(Open::Object { expect_key: true });
                key = None;
            }
            b'[' => {
                let text = match stack.last() {
                    Some(Open::Array { text }) => *text,
                    _ => is_text_key(key),
                };
                stack.push(Open::Array { text });
            }
            b'}' | b']' => {
                stack.pop()?;
            }
            b',' => {
                if let Some(Open::Object { expect_key }) = stack.last_mut() {
                    *expect_key = true;
                    key = None;
                }
            }
            b':' => {
                if let Some(Open::Object { expect_key }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            b'"' => {
                let (raw, decoded, next) = json_string(json, i + 1)?;
                i = next;
                match stack.last() {
                    Some(Open::Object { expect_key: true }) => key = Some(raw),
                    Some(Open::Object { expect_key: false }) => {
                        if is_text_key(key) {
                            total += decoded;
                        }
                        if stack.len() == 1 && key == Some(b"type".as_slice()) {
                            top_type = Some(raw);
                        }
                    }
                    Some(Open::Array { text: true }) => total += decoded,
                    _ => {}
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if !stack.is_empty() {
        return None;
    }
    let repeats = top_type.is_some_and(|t| t.starts_with(b"response.") && !t.ends_with(b".delta"));
    Some(if repeats { 0 } else { total })
}

/// The JSON string whose content starts at `at`: (its raw bytes, its decoded UTF-8 length, the index
/// after its closing quote); `None` when it never closes.
fn json_string(json: &[u8], at: usize) -> Option<(&[u8], usize, usize)> {
    let mut i = at;
    let mut decoded = 0;
    loop {
        // Plain bytes up to the next quote or escape count one each.
        let run = memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        decoded += run;
        i += run;
        match json[i] {
            b'"' => return Some((&json[at..i], decoded, i + 1)),
            b'\\' => {
                if *json.get(i + 1)? == b'u' {
                    let hex = std::str::from_utf8(json.get(i + 2..i + 6)?).ok()?;
                    let cp = u32::from_str_radix(hex, 16).ok()?;
                    // A surrogate half counts 2, so a pair counts the 4 bytes of its character.
                    decoded += match cp {
                        0..=0x7f => 1,
                        0x80..=0x7ff => 2,
                        0xd800..=0xdfff => 2,
                        _ => 3,
                    };
                    i += 6;
                } else {
                    decoded += 1;
                    i += 2;
                }
            }
            _ => unreachable!("memchr2 stops only at a quote or a backslash"),
        }
    }
}

/// [`text_bytes`] of every `data:` line of one SSE event.
pub fn event_text_bytes(event: &[u8]) -> usize {
    switchyard_core::sse::data_payloads(event).map(text_bytes).sum()
}

/// Follows a stream's events and keeps the usage they report (OpenAI's usage chunk, Anthropic's
/// `message_start`/`message_delta`, Gemini's `usageMetadata`, the Responses API's
/// `response.completed`). Events without usage cost one substring search.
#[derive(Debug)]
pub struct UsageTap {
    format: UsageFormat,
    usage: Option<Usage>,
}

impl UsageTap {
    /// A tap for a stream in `format`, with no usage seen yet.
    pub fn new(format: UsageFormat) -> Self {
        UsageTap { format, usage: None }
    }

    /// Reads one whole SSE event (its `data:` lines). Returns whether the event names a `"usage"`
    /// object, so a caller that also looks for OpenAI's usage-only chunk need not search the event
    /// again; `None` for Gemini, whose usage has another name.
    pub fn observe(&mut self, event: &[u8]) -> Option<bool> {
        let needle: &[u8] = match self.format {
            UsageFormat::Gemini => b"usageMetadata",
            _ => b"\"usage\"",
        };
        let named = names_object(event, needle);
        if named {
            for data in switchyard_core::sse::data_payloads(event) {
                self.data(data);
            }
        }
        (self.format != UsageFormat::Gemini).then_some(named)
    }

    fn data(&mut self, data: &[u8]) {
        match self.format {
            UsageFormat::OpenAi => {
                if let Ok(WithRawUsage { usage: Some(u) }) = serde_json::from_slice(data) {
                    if let Some(u) = openai::parse_usage_json(u.get().as_bytes()) {
                        self.usage = Some(u);
                    }
                }
            }
            UsageFormat::Gemini => {
                if let Ok(WithUsageMetadata {
                    usage_metadata: Some(u),
                }) = serde_json::from_slice(data)
                {
                    self.usage = Some(gemini::parse_usage(&u));
                }
            }
            UsageFormat::Responses => {
                if let Ok(ResponsesEvent {
                    response: Some(WithUsage { usage: Some(u) }),
                }) = serde_json::from_slice(data)
                {
                    self.usage = Some(responses_usage(&u));
                }
            }
            UsageFormat::Anthropic => {
                if let Ok(ev) = serde_json::from_slice::<AnthropicEvent>(data) {
                    // Counts are cumulative: `message_start` carries the input, `message_delta` the output.
                    let mut u = self.usage.unwrap_or_default();
                    if let Some(inner) = ev.message.and_then(|m| m.usage) {
                        anthropic::merge_usage(&mut u, &inner);
                    }
                    if let Some(top) = ev.usage {
                        anthropic::merge_usage(&mut u, &top);
                    }
                    self.usage = Some(u);
                }
            }
        }
    }

    /// The latest usage the stream reported; `None` when it reported none.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage.map(tokens)
    }
}
/// Whether `event` has `needle` (a quoted key, or Gemini's bare `usageMetadata`) followed by an
/// object, without parsing it: streams that carry `"usage": null` on every chunk (OpenAI with
/// `include_usage`) are parsed only at the chunk that has the numbers.
pub fn names_object(event: &[u8], needle: &[u8]) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Building a searcher costs more than searching a short event: the two needles the relay asks
    // for every event are built once.
    static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
    static USAGE_METADATA: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"usageMetadata"));
    let other;
    let finder: &Finder<'_> = match needle {
        b"\"usage\"" => &USAGE,
        b"usageMetadata" => &USAGE_METADATA,
        _ => {
            other = Finder::new(needle);
            &other
        }
    };
    finder.find_iter(event).any(|at| {
        let rest = &event[at + needle.len()..];
        let rest = rest.trim_ascii_start();
        // Gemini's needle is the bare name inside its quotes.
        let rest = rest.strip_prefix(b"\"").unwrap_or(rest).trim_ascii_start();
        rest.strip_prefix(b":")
            .is_some_and(|r| r.trim_ascii_start().first() == Some(&b'{'))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn member_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            Just(json!("")),
            "[a-z/-]{1,8}".prop_map(Value::String),
            (0u64..5000).prop_map(Value::from),
            Just(json!([{"index": 0, "message": {"role": "assistant", "content": "hi \"there\" {"}}])),
            (0u64..5000, 0u64..5000).prop_map(|(i, o)| json!({"prompt_tokens": i, "completion_tokens": o,
                "input_tokens": i, "output_tokens": o, "promptTokenCount": i, "candidatesTokenCount": o})),
            "[a-z]{0,6}".prop_map(|m| json!({"model": m, "role": "assistant"})),
            Just(json!({"model": 7})),
        ]
    }

    proptest! {
        /// Reading an answer's members alone gives what serde's reading of the whole body gives,
        /// whatever types the members have.
        #[test]
        fn answer_facts_read_by_members_agree_with_serde(
            members in prop::collection::btree_map(
                prop::sample::select(vec!["id", "choices", "usage", "usageMetadata", "model",
                    "modelVersion", "message", "response", "object"]),
                member_value(),
                0..7,
            ),
            format in prop::sample::select(vec![super::UsageFormat::OpenAi, super::UsageFormat::Anthropic,
                super::UsageFormat::Responses, super::UsageFormat::Gemini]),
            pretty in any::<bool>(),
        ) {
            let object: serde_json::Map<String, Value> =
                members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let text = if pretty {
                serde_json::to_vec_pretty(&object).unwrap()
            } else {
                serde_json::to_vec(&object).unwrap()
            };
            let by_serde = super::facts_of(format, &text, serde_json::from_slice(&text).ok());
            prop_assert_eq!(super::answer_facts(format, &text), by_serde);
        }
    }

    #[test]
    fn a_member_named_twice_or_with_escapes_is_read_as_serde_reads_it() {
        use super::{answer_facts, UsageFormat::OpenAi};
        for body in [
            &br#"{"model":"a","model":"b","usage":{"prompt_tokens":1}}"#[..],
            br#"{"mod\u0065l":"escaped","usage":{"prompt_tokens":1}}"#,
            br#"{"model":"a","choices":[1,2}"#,
        ] {
            let by_serde = super::facts_of(OpenAi, body, serde_json::from_slice(body).ok());
            assert_eq!(
                answer_facts(OpenAi, body),
                by_serde,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            answer_facts(OpenAi, br#"{"mod\u0065l":"escaped"}"#)
                .model
                .as_deref(),
            Some("escaped")
        );
    }

    #[test]
    fn only_a_usage_object_counts_as_usage() {
        use super::names_object;
        assert!(names_object(
            br#"data: {"choices":[],"usage":{"prompt_tokens":7}}"#,
            br#""usage""#
        ));
        assert!(names_object(br#"data: {"usage" : {"a":1}}"#, br#""usage""#));
        assert!(!names_object(
            br#"data: {"choices":[{"delta":{}}],"usage":null}"#,
            br#""usage""#
        ));
        assert!(!names_object(
            br#"data: {"text":"the "usage" of words"}"#,
            br#""usage""#
        ));
        assert!(names_object(
            br#"data: {"usageMetadata": {"promptTokenCount":3}}"#,
            b"usageMetadata"
        ));
    }

    use super::*;

    /// The scan counts what decoding the JSON and summing the text keys' strings would.
    fn text_by_value(json: &[u8]) -> usize {
        fn text_in(value: &serde_json::Value, key: Option<&str>) -> usize {
            match value {
                serde_json::Value::String(s) => key.filter(|k| TEXT_KEYS.contains(k)).map_or(0, |_| s.len()),
                serde_json::Value::Array(items) => items.iter().map(|v| text_in(v, key)).sum(),
                serde_json::Value::Object(map) => map.iter().map(|(k, v)| text_in(v, Some(k))).sum(),
                _ => 0,
            }
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
            return 0;
        };
        let repeats = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| t.starts_with("response.") && !t.ends_with(".delta"));
        if repeats {
            0
        } else {
            text_in(&value, None)
        }
    }

    #[test]
    fn text_scan_agrees_with_decoding() {
        let samples: [&[u8]; 9] = [
            br#"{"choices":[{"delta":{"content":"line\none \"q\" \u00e4\u20ac\ud83d\ude00 ok"}}]}"#,
            "{\"content\":\"grüße 👋\",\"model\":\"m\"}".as_bytes(),
            br#"{"content":["a","bc",{"text":"def","type":"text"}],"n":[1,2,{"x":"y"}]}"#,
            br#"{"type":"response.output_text.delta","delta":"abc","item":{"type":"x"}}"#,
            br#"{"type":"response.completed","response":{"output":[{"content":[{"text":"abc"}]}]}}"#,
            br#"{"message":{"tool_calls":[{"function":{"name":"f","arguments":"{\"a\":1}"}}]},"text":null}"#,
            br#" { "text" : "spaced" , "other" : "no" } "#,
            br#"{"content":"unterminated}"#,
            br#"{"a":{"b":[[["text"]]]},"text":[["nested"]]}"#,
        ];
        for json in samples {
            assert_eq!(
                text_bytes(json),
                text_by_value(json),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn answer_facts_read_usage_and_model_in_one_pass() {
        let cases: [(UsageFormat, &[u8], Option<&str>); 5] = [
            (
                UsageFormat::OpenAi,
                br#"{"model":"gpt-x-2","usage":{"prompt_tokens":7,"completion_tokens":5}}"#,
                Some("gpt-x-2"),
            ),
            (
                UsageFormat::Anthropic,
                br#"{"type":"message","model":"claude-y","usage":{"input_tokens":3,"output_tokens":2}}"#,
                Some("claude-y"),
            ),
            (
                UsageFormat::Gemini,
                br#"{"modelVersion":"gemini-z","usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":1}}"#,
                Some("gemini-z"),
            ),
            (
                UsageFormat::Responses,
                br#"{"object":"response","model":"","usage":{"input_tokens":9,"output_tokens":1}}"#,
                None,
            ),
            // A field of an unexpected type costs the model, never the usage.
            (
                UsageFormat::OpenAi,
                br#"{"model":42,"message":"hi","usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
                None,
            ),
        ];
        for (format, body, model) in cases {
            let facts = answer_facts(format, body);
            assert!(facts.usage.is_some(), "{}", String::from_utf8_lossy(body));
            assert_eq!(facts.usage, usage_from_json(format, body));
            assert_eq!(facts.model.as_deref(), model);
        }
        assert_eq!(
            answer_facts(UsageFormat::OpenAi, b"not json"),
            AnswerFacts::default()
        );
    }

    #[test]
    fn json_bodies() {
        let openai = br#"{"id":"x","usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        assert_eq!(
            usage_from_json(UsageFormat::OpenAi, openai),
            Some(TokenUsage {
                input: 6,
                output: 3,
                cache_read: 4,
                cache_write: 0
            })
        );
        let anthropic = br#"{"usage":{"input_tokens":5,"output_tokens":7,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}}"#;
        assert_eq!(
            usage_from_json(UsageFormat::Anthropic, anthropic),
            Some(TokenUsage {
                input: 5,
                output: 7,
                cache_read: 100,
                cache_write: 20
            })
        );
        let gemini =
            br#"{"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"thoughtsTokenCount":2}}"#;
        assert_eq!(
            usage_from_json(UsageFormat::Gemini, gemini),
            Some(TokenUsage {
                input: 9,
                output: 6,
                cache_read: 0,
                cache_write: 0
            })
        );
        assert_eq!(usage_from_json(UsageFormat::OpenAi, br#"{"id":"x"}"#), None);
        let responses = br#"{"object":"response","usage":{"input_tokens":8,"output_tokens":5,"input_tokens_details":{"cached_tokens":3}}}"#;
        assert_eq!(
            usage_from_json(UsageFormat::Responses, responses),
            Some(TokenUsage {
                input: 5,
                output: 5,
                cache_read: 3,
                cache_write: 0
            })
        );
    }

    #[test]
    fn text_is_counted_in_every_protocol_once() {
        assert_eq!(
            text_bytes(br#"{"choices":[{"message":{"role":"assistant","content":"hello"}}]}"#),
            5
        );
        assert_eq!(
            event_text_bytes(b"data: {\"choices\":[{\"delta\":{\"content\":\"ab\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n"),
            4
        );
        assert_eq!(
            text_bytes(br#"{"content":[{"type":"text","text":"hey"}],"model":"claude"}"#),
            3
        );
        assert_eq!(
            text_bytes(br#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"xyz"}}"#),
            3
        );
        assert_eq!(
            text_bytes(br#"{"candidates":[{"content":{"parts":[{"text":"four"}]}}]}"#),
            4
        );
        assert_eq!(
            text_bytes(br#"{"type":"response.output_text.delta","delta":"abc"}"#),
            3
        );
        assert_eq!(
            text_bytes(br#"{"type":"response.output_text.done","text":"abc"}"#),
            0
        );
        assert_eq!(event_text_bytes(b"data: [DONE]\n\n"), 0);
    }

    #[test]
    fn streams() {
        let mut tap = UsageTap::new(UsageFormat::OpenAi);
        tap.observe(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n");
        assert_eq!(tap.usage(), None);
        tap.observe(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\n");
        assert_eq!(tap.usage().unwrap().output, 1);

        let mut tap = UsageTap::new(UsageFormat::Responses);
        tap.observe(b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}}\n\n");
        assert_eq!(tap.usage().map(|u| (u.input, u.output)), Some((4, 2)));

        let mut tap = UsageTap::new(UsageFormat::Anthropic);
        tap.observe(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n");
        tap.observe(
            b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":30}}\n\n",
        );
        assert_eq!(
            tap.usage(),
            Some(TokenUsage {
                input: 12,
                output: 30,
                cache_read: 0,
                cache_write: 0
            })
        );
    }
}
