//! What kind of call a request is: Bifrost's request types, one enum for routing checks
//! (`custom_provider_config.allowed_requests`), the log row, `extra_fields` and the trace.

use serde::Serialize;

/// A call's type. Its name ([`RequestType::as_str`]) is Bifrost's, as stored in
/// `allowed_requests` and shown in logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    ListModels,
    ChatCompletion,
    ChatCompletionStream,
    TextCompletion,
    TextCompletionStream,
    Responses,
    ResponsesStream,
    CountTokens,
    Embedding,
    Rerank,
    Transcription,
    TranscriptionStream,
    /// Text-to-speech (`/v1/audio/speech`): the audio is relayed as it arrives.
    Speech,
    /// Text-to-speech asked as server-sent events (`stream_format: "sse"`).
    SpeechStream,
    Passthrough,
    PassthroughStream,
}

impl RequestType {
    /// Bifrost's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::ListModels => "list_models",
            RequestType::ChatCompletion => "chat_completion",
            RequestType::ChatCompletionStream => "chat_completion_stream",
            RequestType::TextCompletion => "text_completion",
            RequestType::TextCompletionStream => "text_completion_stream",
            RequestType::Responses => "responses",
            RequestType::ResponsesStream => "responses_stream",
            RequestType::CountTokens => "count_tokens",
            RequestType::Embedding => "embedding",
            RequestType::Rerank => "rerank",
            RequestType::Transcription => "transcription",
            RequestType::TranscriptionStream => "transcription_stream",
            RequestType::Speech => "speech",
            RequestType::SpeechStream => "speech_stream",
            RequestType::Passthrough => "passthrough",
            RequestType::PassthroughStream => "passthrough_stream",
        }
    }

    /// The streamed variant of a type that can stream (itself otherwise).
    pub fn streamed(self) -> RequestType {
        match self {
            RequestType::ChatCompletion => RequestType::ChatCompletionStream,
            RequestType::TextCompletion => RequestType::TextCompletionStream,
            RequestType::Responses => RequestType::ResponsesStream,
            RequestType::Transcription => RequestType::TranscriptionStream,
            RequestType::Speech => RequestType::SpeechStream,
            RequestType::Passthrough => RequestType::PassthroughStream,
            other => other,
        }
    }

    /// Whether the call costs money at the provider (listing models and counting tokens do not).
    pub fn is_charged(self) -> bool {
        !matches!(self, RequestType::ListModels | RequestType::CountTokens)
    }

    /// Whether an answer without reported usage is charged an estimate from its text (chat,
    /// completions, responses, embeddings, rerank). Audio and pass-through bodies are not text whose
    /// bytes say anything about tokens, so they are not estimated.
    pub fn estimated_from_text(self) -> bool {
        matches!(
            self.family(),
            RequestType::ChatCompletion
                | RequestType::TextCompletion
                | RequestType::Responses
                | RequestType::Embedding
                | RequestType::Rerank
        )
    }

    /// The streamed variant when `stream` is set, itself otherwise.
    pub fn streamed_if(self, stream: bool) -> RequestType {
        if stream {
            self.streamed()
        } else {
            self
        }
    }

    /// The type named in logs and `extra_fields`: the non-streamed type (the row's `stream` says the
    /// rest), except for the pass-through, whose streamed name is its own.
    pub fn family(self) -> RequestType {
        match self {
            RequestType::ChatCompletionStream => RequestType::ChatCompletion,
            RequestType::TextCompletionStream => RequestType::TextCompletion,
            RequestType::ResponsesStream => RequestType::Responses,
            RequestType::TranscriptionStream => RequestType::Transcription,
            RequestType::SpeechStream => RequestType::Speech,
            other => other,
        }
    }

    /// The GenAI semantic conventions' `gen_ai.operation.name` (Bifrost's name where they have none).
    pub fn operation_name(self) -> &'static str {
        match self {
            RequestType::ChatCompletion | RequestType::ChatCompletionStream => "chat",
            RequestType::Embedding => "embeddings",
            RequestType::TextCompletion | RequestType::TextCompletionStream => "text_completion",
            other => other.as_str(),
        }
    }
}

impl std::fmt::Display for RequestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RequestType;

    #[test]
    fn names_are_bifrosts_and_stored_in_allowed_requests() {
        for t in [
            RequestType::ListModels,
            RequestType::ChatCompletion,
            RequestType::ChatCompletionStream,
            RequestType::TextCompletionStream,
            RequestType::ResponsesStream,
            RequestType::CountTokens,
            RequestType::Embedding,
            RequestType::Rerank,
            RequestType::TranscriptionStream,
            RequestType::Speech,
            RequestType::SpeechStream,
        ] {
            assert!(
                crate::config::REQUEST_TYPES.contains(&t.as_str()),
                "{t} is not an allowed_requests name"
            );
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    #[test]
    fn streamed_and_family_are_inverse_for_streaming_types() {
        for t in [
            RequestType::ChatCompletion,
            RequestType::TextCompletion,
            RequestType::Responses,
            RequestType::Speech,
        ] {
            assert_eq!(t.streamed().family(), t);
            assert_ne!(t.streamed(), t);
        }
        assert_eq!(RequestType::Embedding.streamed(), RequestType::Embedding);
    }

    #[test]
    fn spans_are_named_after_the_operation() {
        assert_eq!(RequestType::ChatCompletionStream.operation_name(), "chat");
        assert_eq!(RequestType::Embedding.operation_name(), "embeddings");
        assert_eq!(
            RequestType::TextCompletionStream.operation_name(),
            "text_completion"
        );
        assert_eq!(RequestType::Transcription.operation_name(), "transcription");
    }
}
