//! Where the text of a body is, per wire format: every message role and text content part, the
//! Anthropic system prompt, embeddings `input`, Gemini parts, the Responses API's `instructions` and
//! `input`, legacy completions' `prompt`; in answers, the message text (Responses `output` text,
//! completions `choices[].text`). Slots are
//! returned in document order, so a webhook's `texts` map back one to one.

use serde_json::Value;

/// The body formats guardrails read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyShape {
    OpenAiChat,
    AnthropicMessages,
    GeminiContents,
    Embeddings,
    OpenAiChatAnswer,
    AnthropicAnswer,
    GeminiAnswer,
    /// `POST /v1/responses`: `instructions`, then `input` (a string, or items with `content` and
    /// `function_call_output` items' `output`).
    ResponsesRequest,
    /// A Responses API answer: the text parts of `output` items.
    ResponsesAnswer,
    /// Legacy `POST /v1/completions`: `prompt` (a string or strings).
    Completions,
    /// A legacy completions answer: `choices[].text`.
    CompletionsAnswer,
}

/// The strings guardrails look at, as mutable slots.
pub fn text_slots(shape: BodyShape, body: &mut Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    match shape {
        BodyShape::OpenAiChat => {
            for m in array_mut(body.get_mut("messages")) {
                content_slots(m.get_mut("content"), &mut out);
            }
        }
        BodyShape::AnthropicMessages | BodyShape::GeminiContents => {
            let Value::Object(o) = body else { return out };
            let mut later = Vec::new();
            for (k, v) in o.iter_mut() {
                match k.as_str() {
                    "system" => content_slots(Some(v), &mut out),
                    "systemInstruction" => parts_slots(v, &mut out),
                    "messages" => {
                        array_mut(Some(v)).for_each(|m| content_slots(m.get_mut("content"), &mut later))
                    }
                    "contents" => array_mut(Some(v)).for_each(|c| parts_slots(c, &mut later)),
                    _ => {}
                }
            }
            out.extend(later);
        }
        BodyShape::Embeddings => strings_slots(body.get_mut("input"), &mut out),
        BodyShape::Completions => strings_slots(body.get_mut("prompt"), &mut out),
        BodyShape::ResponsesRequest => {
            let Value::Object(o) = body else { return out };
            let mut input = None;
            for (k, v) in o.iter_mut() {
                match (k.as_str(), v) {
                    ("instructions", Value::String(s)) => out.insert(0, s),
                    ("input", v) => input = Some(v),
                    _ => {}
                }
            }
            match input {
                Some(Value::String(s)) => out.push(s),
                Some(Value::Array(items)) => items.iter_mut().for_each(|i| item_slots(i, &mut out)),
                _ => {}
            }
        }
        BodyShape::ResponsesAnswer => {
            array_mut(body.get_mut("output")).for_each(|i| item_slots(i, &mut out));
        }
        BodyShape::CompletionsAnswer => {
            for c in array_mut(body.get_mut("choices")) {
                if let Some(Value::String(s)) = c.get_mut("text") {
                    out.push(s);
                }
            }
        }
        BodyShape::OpenAiChatAnswer => {
            for c in array_mut(body.get_mut("choices")) {
                if let Some(m) = c.get_mut("message") {
                    content_slots(m.get_mut("content"), &mut out);
                }
            }
        }
        BodyShape::AnthropicAnswer => content_slots(body.get_mut("content"), &mut out),
        BodyShape::GeminiAnswer => {
            for c in array_mut(body.get_mut("candidates")) {
                if let Some(content) = c.get_mut("content") {
                    parts_slots(content, &mut out);
                }
            }
        }
    }
    out
}

fn array_mut(v: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    match v {
        Some(Value::Array(a)) => a.iter_mut(),
        _ => [].iter_mut(),
    }
}

/// A `content` that is a string or a list of blocks (`text` blocks; Anthropic `tool_result` blocks
/// with their own content).
fn content_slots<'a>(content: Option<&'a mut Value>, out: &mut Vec<&'a mut String>) {
    match content {
        Some(Value::String(s)) => out.push(s),
        Some(Value::Array(blocks)) => {
            for b in blocks {
                let Value::Object(o) = b else { continue };
                match o.get("type").and_then(Value::as_str) {
                    Some("text" | "input_text" | "output_text") => {
                        if let Some(Value::String(s)) = o.get_mut("text") {
                            out.push(s);
                        }
                    }
                    Some("tool_result") => content_slots(o.get_mut("content"), out),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// A string or an array of strings (embeddings `input`, completions `prompt`; token arrays skipped).
fn strings_slots<'a>(v: Option<&'a mut Value>, out: &mut Vec<&'a mut String>) {
    match v {
        Some(Value::String(s)) => out.push(s),
        Some(Value::Array(items)) => out.extend(items.iter_mut().filter_map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })),
        _ => {}
    }
}

/// One Responses API item: a message's `content`, or a tool output's `output` text.
fn item_slots<'a>(item: &'a mut Value, out: &mut Vec<&'a mut String>) {
    let Value::Object(o) = item else { return };
    for (k, v) in o.iter_mut() {
        match k.as_str() {
            "content" => content_slots(Some(v), out),
            "output" => {
                if let Value::String(s) = v {
                    out.push(s);
                }
            }
            _ => {}
        }
    }
}

fn parts_slots<'a>(content: &'a mut Value, out: &mut Vec<&'a mut String>) {
    for p in array_mut(content.get_mut("parts")) {
        if let Some(Value::String(s)) = p.get_mut("text") {
            out.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_part_and_system_prompt_is_read() {
        let mut openai = serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {"url": "u"}}]},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "content": "tool says"}]});
        let got: Vec<String> = text_slots(BodyShape::OpenAiChat, &mut openai)
            .into_iter()
            .map(|s| s.clone())
            .collect();
        assert_eq!(got, ["sys", "part", "tool says"]);
        let mut anthropic = serde_json::json!({"system": [{"type": "text", "text": "sys"}], "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "result"}, {"type": "text", "text": "hi"}]}]});
        let got: Vec<String> = text_slots(BodyShape::AnthropicMessages, &mut anthropic)
            .into_iter()
            .map(|s| s.clone())
            .collect();
        assert_eq!(got, ["sys", "result", "hi"]);
        let mut emb = serde_json::json!({"input": ["a", "b"]});
        assert_eq!(text_slots(BodyShape::Embeddings, &mut emb).len(), 2);
        let mut responses = serde_json::json!({"input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": "u"}]},
            {"type": "function_call_output", "call_id": "c", "output": "tool says"},
            {"role": "assistant", "content": "said"}], "instructions": "sys", "model": "m"});
        let got: Vec<String> = text_slots(BodyShape::ResponsesRequest, &mut responses)
            .into_iter()
            .map(|s| s.clone())
            .collect();
        assert_eq!(got, ["sys", "hi", "tool says", "said"]);
        let mut prompt = serde_json::json!({"prompt": ["a", [1, 2], "b"]});
        assert_eq!(text_slots(BodyShape::Completions, &mut prompt).len(), 2);
    }
}
