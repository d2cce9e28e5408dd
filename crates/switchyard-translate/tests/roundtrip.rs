//! Property tests: an OpenAI request in the supported subset survives
//! OpenAI → Anthropic → OpenAI and OpenAI → Gemini → OpenAI with its meaning intact.
//!
//! "Meaning" is compared on a normal form that applies the documented rules: system/developer messages
//! are hoisted and joined with `\n`; empty text parts and messages left empty are dropped; consecutive
//! user (and assistant) messages are merged; tool arguments compare as parsed JSON; a tool without a
//! schema has the empty object schema. Gemini carries no tool-call ids, so that path compares ids only
//! by which call each result answers.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard_translate::{translate_request, Protocol, RequestOptions, DEFAULT_MAX_TOKENS};

// ---------------------------------------------------------------------------------------------------
// Generators

/// Text that is either empty or has a non-space character (whitespace-only text is dropped by design).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9äß.,!?]([a-zA-Z0-9äß .,!?\n]{0,24})?"
    ]
}

fn nonempty_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9äß.,!?]([a-zA-Z0-9äß .,!?]{0,24})?"
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z \"\\\\{}]{0,8}".prop_map(Value::String),
    ]
}

fn json_object() -> impl Strategy<Value = Value> {
    let value = json_leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-z_]{1,6}", value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

#[derive(Clone, Debug)]
enum UserPart {
    Text(String),
    DataImage(String, String),
    UrlImage(String),
}

fn user_part() -> impl Strategy<Value = UserPart> {
    prop_oneof![
        4 => text().prop_map(UserPart::Text),
        1 => (prop_oneof![Just("image/png"), Just("image/jpeg")], "[A-Za-z0-9+/]{4,16}")
            .prop_map(|(m, d)| UserPart::DataImage(m.to_owned(), format!("{d}=="))),
        1 => ("[a-z]{1,8}", prop_oneof![Just("png"), Just("jpg")])
            .prop_map(|(n, e)| UserPart::UrlImage(format!("https://example.com/{n}.{e}"))),
    ]
}

#[derive(Clone, Debug)]
enum Turn {
    System(String),
    UserString(String),
    UserParts(Vec<UserPart>),
    /// Assistant text and calls (name index, arguments); each call is answered by a tool message.
    Assistant(Option<String>, Vec<(usize, Value)>, Vec<String>),
}

fn turn() -> impl Strategy<Value = Turn> {
    prop_oneof![
        1 => nonempty_text().prop_map(Turn::System),
        3 => text().prop_map(Turn::UserString),
        2 => prop::collection::vec(user_part(), 0..4).prop_map(Turn::UserParts),
        3 => (
            prop::option::of(text()),
            prop::collection::vec((0..3usize, json_object()), 0..3),
            prop::collection::vec("[a-z0-9 ]{0,12}", 3),
        )
            .prop_map(|(t, calls, results)| Turn::Assistant(t, calls, results)),
    ]
}

const TOOL_NAMES: [&str; 3] = ["get_weather", "search", "run_code"];

fn request() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(turn(), 1..8),
        prop::collection::vec((any::<bool>(), prop::option::of(json_object())), 0..4),
        0..5usize,
        prop::option::of(1..5000u32),
        prop::option::of(prop_oneof![Just(0.0), Just(0.5), Just(1.0), Just(1.5), Just(2.0)]),
        prop::collection::vec(nonempty_text(), 0..3),
        prop::option::of("[a-z0-9-]{1,10}"),
        "[a-zA-Z0-9]{1,8}",
    )
        .prop_map(|(turns, tools, choice, max_tokens, temperature, stop, user, id_seed)| {
            let mut messages = Vec::new();
            let mut call_no = 0;
            for t in turns {
                match t {
                    Turn::System(s) => messages.push(json!({"role": "system", "content": s})),
                    Turn::UserString(s) => messages.push(json!({"role": "user", "content": s})),
                    Turn::UserParts(parts) => {
                        let parts: Vec<Value> = parts
                            .into_iter()
                            .map(|p| match p {
                                UserPart::Text(t) => json!({"type": "text", "text": t}),
                                UserPart::DataImage(m, d) => {
                                    json!({"type": "image_url", "image_url": {"url": format!("data:{m};base64,{d}")}})
                                }
                                UserPart::UrlImage(u) => json!({"type": "image_url", "image_url": {"url": u}}),
                            })
                            .collect();
                        messages.push(json!({"role": "user", "content": parts}));
                    }
                    Turn::Assistant(text, calls, results) => {
                        let mut m = json!({"role": "assistant", "content": text});
                        let mut answers = Vec::new();
                        if !calls.is_empty() {
                            let calls: Vec<Value> = calls
                                .into_iter()
                                .enumerate()
                                .map(|(k, (name, args))| {
                                    call_no += 1;
                                    let id = format!("call_{id_seed}_{call_no}");
                                    answers.push(json!({"role": "tool", "tool_call_id": id, "content": results[k]}));
                                    json!({"id": id, "type": "function",
                                           "function": {"name": TOOL_NAMES[name], "arguments": args.to_string()}})
                                })
                                .collect();
                            m["tool_calls"] = Value::Array(calls);
                        }
                        messages.push(m);
                        messages.extend(answers);
                    }
                }
            }
            let tools: Vec<Value> = tools
                .into_iter()
                .enumerate()
                .map(|(i, (described, params))| {
                    let mut f = json!({"name": format!("tool_{i}")});
                    if described {
                        f["description"] = json!(format!("Tool number {i}"));
                    }
                    if let Some(p) = params {
                        f["parameters"] = json!({"type": "object", "properties": p});
                    }
                    json!({"type": "function", "function": f})
                })
                .collect();
            let mut body = json!({"model": "gpt-x", "messages": messages});
            if !tools.is_empty() {
                body["tool_choice"] = match choice {
                    0 => json!("auto"),
                    1 => json!("none"),
                    2 => json!("required"),
                    3 => json!({"type": "function", "function": {"name": "tool_0"}}),
                    _ => Value::Null,
                };
                body["tools"] = Value::Array(tools);
            }
            if let Some(n) = max_tokens {
                body["max_tokens"] = json!(n);
            }
            if let Some(t) = temperature {
                body["temperature"] = json!(t);
            }
            if !stop.is_empty() {
                body["stop"] = json!(stop);
            }
            if let Some(u) = user {
                body["user"] = json!(u);
            }
            body
        })
}

// ---------------------------------------------------------------------------------------------------
// Normal form

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    User(Vec<String>),
    Assistant(Vec<String>, Vec<(String, String, Value)>),
    Tool(String, String),
}

#[derive(Debug, PartialEq)]
struct Normal {
    system: Option<String>,
    messages: Vec<Msg>,
    tools: Vec<(String, Option<String>, Value)>,
    tool_choice: Option<Value>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    stop: Vec<String>,
    user: Option<String>,
}

fn texts_of(content: &Value) -> Vec<String> {
    match content {
        Value::String(s) => vec![s.clone()],
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => p["text"].as_str().unwrap().to_owned(),
                Some("image_url") => format!("<image {}>", p["image_url"]["url"].as_str().unwrap()),
                other => panic!("unexpected part {other:?}"),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("unexpected content {other}"),
    }
}

fn normalize(body: &Value) -> Normal {
    let mut system = Vec::new();
    let mut messages: Vec<Msg> = Vec::new();
    for m in body["messages"].as_array().unwrap() {
        let msg = match m["role"].as_str().unwrap() {
            "system" | "developer" => {
                let t = texts_of(&m["content"]).join("\n");
                if !t.is_empty() {
                    system.push(t);
                }
                continue;
            }
            "user" => {
                let parts: Vec<String> = texts_of(&m["content"])
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect();
                if parts.is_empty() {
                    continue;
                }
                Msg::User(parts)
            }
            "assistant" => {
                let texts: Vec<String> = texts_of(&m["content"])
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect();
                let calls: Vec<(String, String, Value)> = m["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let args = c["function"]["arguments"].as_str().unwrap();
                        let args = if args.is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args).unwrap()
                        };
                        (
                            c["id"].as_str().unwrap().to_owned(),
                            c["function"]["name"].as_str().unwrap().to_owned(),
                            args,
                        )
                    })
                    .collect();
                if texts.is_empty() && calls.is_empty() {
                    continue;
                }
                Msg::Assistant(texts, calls)
            }
            "tool" => Msg::Tool(
                m["tool_call_id"].as_str().unwrap().to_owned(),
                texts_of(&m["content"]).join("\n"),
            ),
            other => panic!("unexpected role {other}"),
        };
        match (messages.last_mut(), msg) {
            (Some(Msg::User(parts)), Msg::User(more)) => parts.extend(more),
            (Some(Msg::Assistant(texts, calls)), Msg::Assistant(more_texts, more_calls)) => {
                texts.extend(more_texts);
                calls.extend(more_calls);
            }
            (_, msg) => messages.push(msg),
        }
    }
    let tools: Vec<(String, Option<String>, Value)> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let f = &t["function"];
            (
                f["name"].as_str().unwrap().to_owned(),
                f["description"].as_str().map(str::to_owned),
                match &f["parameters"] {
                    Value::Null => json!({"type": "object", "properties": {}}),
                    p => p.clone(),
                },
            )
        })
        .collect();
    Normal {
        system: (!system.is_empty()).then(|| system.join("\n")),
        messages,
        tool_choice: if tools.is_empty() {
            None
        } else {
            body.get("tool_choice").filter(|c| !c.is_null()).cloned()
        },
        tools,
        max_tokens: body["max_tokens"].as_u64(),
        temperature: body["temperature"].as_f64(),
        stop: body["stop"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        user: body["user"].as_str().map(str::to_owned),
    }
}

/// Renames tool-call ids to their order of appearance (for protocols that do not carry ids).
fn without_ids(mut n: Normal) -> Normal {
    let mut ids: HashMap<String, String> = HashMap::new();
    for m in &mut n.messages {
        match m {
            Msg::Assistant(_, calls) => {
                for (id, _, _) in calls {
                    let new = format!("#{}", ids.len());
                    ids.insert(id.clone(), new.clone());
                    *id = new;
                }
            }
            Msg::Tool(id, _) => {
                *id = ids
                    .get(id.as_str())
                    .cloned()
                    .unwrap_or_else(|| format!("unknown {id}"))
            }
            Msg::User(_) => {}
        }
    }
    n
}

fn through(via: Protocol, body: &Value) -> Value {
    let bytes = serde_json::to_vec(body).unwrap();
    let upstream = translate_request(Protocol::OpenAi, via, &bytes, &RequestOptions::new("upstream"))
        .unwrap_or_else(|e| panic!("OpenAI -> {via:?}: {e}"));
    let back = translate_request(via, Protocol::OpenAi, &upstream, &RequestOptions::new("gpt-x"))
        .unwrap_or_else(|e| panic!("{via:?} -> OpenAI: {e}\n{}", String::from_utf8_lossy(&upstream)));
    serde_json::from_slice(&back).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn openai_anthropic_openai_preserves_meaning(body in request()) {
        let back = through(Protocol::Anthropic, &body);
        let mut expected = normalize(&body);
        expected.max_tokens = Some(expected.max_tokens.unwrap_or(u64::from(DEFAULT_MAX_TOKENS)));
        expected.temperature = expected.temperature.map(|t| t.clamp(0.0, 1.0));
        prop_assert_eq!(normalize(&back), expected);
    }

    #[test]
    fn openai_gemini_openai_preserves_meaning_modulo_ids(body in request()) {
        let back = through(Protocol::Gemini, &body);
        let mut expected = normalize(&body);
        expected.user = None; // Gemini has no end-user field
        prop_assert_eq!(without_ids(normalize(&back)), without_ids(expected));
    }
}
