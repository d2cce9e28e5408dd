//! Reading token usage out of answers, in each wire format, without decoding more than the usage.

use serde::Deserialize;

use crate::pricing::TokenUsage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageFormat {
    OpenAi,
    Anthropic,
    Gemini,
    /// The Responses API: `usage.input_tokens` / `output_tokens` on the answer, and on the `response`
    /// object of its `response.completed` event.
    Responses,
}

#[derive(Deserialize, Default)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<OpenAiPromptDetails>,
}

#[derive(Deserialize, Default)]
struct OpenAiPromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GeminiUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

#[derive(Deserialize)]
struct WithUsage<U> {
    usage: Option<U>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithUsageMetadata {
    usage_metadata: Option<GeminiUsage>,
}

#[derive(Deserialize, Default)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<OpenAiPromptDetails>,
}

#[derive(Deserialize)]
struct ResponsesEvent {
    response: Option<WithUsage<ResponsesUsage>>,
}

fn from_responses(u: ResponsesUsage) -> TokenUsage {
    let cached = u
        .input_tokens_details
        .and_then(|d| d.cached_tokens)
        .unwrap_or(0)
        .min(u.input_tokens);
    TokenUsage {
        input: u.input_tokens - cached,
        output: u.output_tokens,
        cache_read: cached,
        cache_write: 0,
    }
}

#[derive(Deserialize)]
struct AnthropicEvent {
    #[serde(default)]
    usage: Option<AnthropicUsage>,
    #[serde(default)]
    message: Option<WithUsage<AnthropicUsage>>,
}

fn from_openai(u: OpenAiUsage) -> TokenUsage {
    let cached = u
        .prompt_tokens_details
        .and_then(|d| d.cached_tokens)
        .unwrap_or(0)
        .min(u.prompt_tokens);
    TokenUsage {
        input: u.prompt_tokens - cached,
        output: u.completion_tokens,
        cache_read: cached,
        cache_write: 0,
    }
}

fn from_gemini(u: GeminiUsage) -> TokenUsage {
    let cached = u.cached_content_token_count.min(u.prompt_token_count);
    TokenUsage {
        input: u.prompt_token_count - cached,
        output: u.candidates_token_count + u.thoughts_token_count,
        cache_read: cached,
        cache_write: 0,
    }
}

fn merge_anthropic(into: &mut TokenUsage, u: AnthropicUsage) {
    if let Some(v) = u.input_tokens {
        into.input = v;
    }
    if let Some(v) = u.output_tokens {
        into.output = v;
    }
    if let Some(v) = u.cache_read_input_tokens {
        into.cache_read = v;
    }
    if let Some(v) = u.cache_creation_input_tokens {
        into.cache_write = v;
    }
}

/// Usage of a whole (non-streamed) answer; `None` when it reports none.
pub fn usage_from_json(format: UsageFormat, body: &[u8]) -> Option<TokenUsage> {
    match format {
        UsageFormat::OpenAi => serde_json::from_slice::<WithUsage<OpenAiUsage>>(body)
            .ok()?
            .usage
            .map(from_openai),
        UsageFormat::Anthropic => {
            let u = serde_json::from_slice::<WithUsage<AnthropicUsage>>(body)
                .ok()?
                .usage?;
            let mut out = TokenUsage::default();
            merge_anthropic(&mut out, u);
            Some(out)
        }
        UsageFormat::Gemini => serde_json::from_slice::<WithUsageMetadata>(body)
            .ok()?
            .usage_metadata
            .map(from_gemini),
        UsageFormat::Responses => serde_json::from_slice::<WithUsage<ResponsesUsage>>(body)
            .ok()?
            .usage
            .map(from_responses),
    }
}

/// Follows a stream's events and keeps the usage they report (OpenAI's usage chunk, Anthropic's
/// `message_start`/`message_delta`, Gemini's `usageMetadata`). Events without usage cost one substring
/// search.
#[derive(Debug)]
pub struct UsageTap {
    format: UsageFormat,
    usage: Option<TokenUsage>,
}

impl UsageTap {
    pub fn new(format: UsageFormat) -> Self {
        UsageTap { format, usage: None }
    }

    pub fn observe(&mut self, event: &[u8]) {
        let needle: &[u8] = match self.format {
            UsageFormat::Gemini => b"usageMetadata",
            _ => b"\"usage\"",
        };
        if memchr::memmem::find(event, needle).is_none() {
            return;
        }
        for line in event.split(|&b| b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            match self.format {
                UsageFormat::OpenAi => {
                    if let Ok(WithUsage { usage: Some(u) }) =
                        serde_json::from_slice::<WithUsage<OpenAiUsage>>(data)
                    {
                        self.usage = Some(from_openai(u));
                    }
                }
                UsageFormat::Gemini => {
                    if let Ok(WithUsageMetadata {
                        usage_metadata: Some(u),
                    }) = serde_json::from_slice(data)
                    {
                        self.usage = Some(from_gemini(u));
                    }
                }
                UsageFormat::Responses => {
                    if let Ok(ResponsesEvent {
                        response: Some(WithUsage { usage: Some(u) }),
                    }) = serde_json::from_slice(data)
                    {
                        self.usage = Some(from_responses(u));
                    }
                }
                UsageFormat::Anthropic => {
                    if let Ok(ev) = serde_json::from_slice::<AnthropicEvent>(data) {
                        let mut u = self.usage.unwrap_or_default();
                        if let Some(inner) = ev.message.and_then(|m| m.usage) {
                            merge_anthropic(&mut u, inner);
                        }
                        if let Some(top) = ev.usage {
                            merge_anthropic(&mut u, top);
                        }
                        self.usage = Some(u);
                    }
                }
            }
        }
    }

    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
