//! Which client-facing surface a request came in on, and so which protocol the client speaks. Set once
//! when the route enters the pipeline and carried with the request; nothing re-derives it from a path.

use switchyard_core::WireApi;
use switchyard_translate::Protocol;

/// A client-facing surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    /// `/v1/*`: bare models are routed across all providers.
    Unified,
    /// `/openai/v1/*`: the OpenAI SDK drop-in; bare models prefer the `openai` provider (Bifrost's rule)
    /// and fall through to the other lanes when it does not serve them.
    OpenAi,
    /// `/anthropic/v1/*`: the Anthropic SDK drop-in; bare models prefer the `anthropic` provider.
    Anthropic,
    /// `/genai/v1beta/*`: the Gemini drop-in; bare models prefer the `gemini` provider.
    Gemini,
    /// `/{openai,anthropic,genai}_passthrough/*`, `/passthrough/{provider}/*`: the client speaks the
    /// named provider's own protocol, whatever it is.
    PassThrough,
}

impl Ingress {
    pub fn native_provider(self) -> Option<&'static str> {
        match self {
            Ingress::Unified | Ingress::PassThrough => None,
            Ingress::OpenAi => Some("openai"),
            Ingress::Anthropic => Some("anthropic"),
            Ingress::Gemini => Some("gemini"),
        }
    }

    /// The protocol the client speaks (and gets its errors in). A pass-through client speaks its
    /// provider's protocol; before the provider is known, OpenAI's shape is the neutral one.
    pub fn protocol(self) -> Protocol {
        match self {
            Ingress::Unified | Ingress::OpenAi | Ingress::PassThrough => Protocol::OpenAi,
            Ingress::Anthropic => Protocol::Anthropic,
            Ingress::Gemini => Protocol::Gemini,
        }
    }
}

/// The protocol a provider's wire API speaks, for the wires the gateway can translate.
pub fn protocol_of(wire: WireApi) -> Option<Protocol> {
    match wire {
        // Azure OpenAI speaks OpenAI's protocol; only its URLs and auth header differ.
        WireApi::OpenAi | WireApi::Azure => Some(Protocol::OpenAi),
        WireApi::Bedrock => Some(Protocol::Bedrock),
        WireApi::Anthropic => Some(Protocol::Anthropic),
        WireApi::Gemini => Some(Protocol::Gemini),
        _ => None,
    }
}
