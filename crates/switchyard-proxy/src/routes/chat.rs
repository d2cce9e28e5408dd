//! Chat in every client language: `/v1/chat/completions` and `/openai/v1/chat/completions` (OpenAI),
//! `/anthropic/v1/messages` (Anthropic), `/genai/v1beta/models/{model}:generateContent` (Gemini), each
//! to any provider whose wire API is OpenAI, Anthropic or Gemini.
//!
//! Same protocol on both sides is a pass-through: the client's body with only `model` rewritten, the
//! answer relayed without re-encoding. Different protocols go through `switchyard-translate`'s one
//! canonical representation: requests per attempt, answers and stream events on the way back. Errors
//! always answer in the client's own shape.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::presets::rewrite_tool_call_ids;
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::upstream_url::{gemini_endpoint, openai_endpoint};
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::{Protocol, RequestOptions, ResponseContext, StreamTranslator, DEFAULT_MAX_TOKENS};

use crate::answer::{answer_model, ServedBody};
use crate::ingress::protocol_of;
use crate::pipeline::dispatch::UpstreamRequest;
use crate::pipeline::relay::RelayMode;
use crate::pipeline::respond::{
    answer_headers, append_extra_fields, dispatch_failed, extra_fields, observe_answer,
    observe_served_target, relay_body, response, set_event_stream_headers, ChargedTo,
};
use crate::pipeline::{guard, Admitted, CallSpec, Incoming};
use crate::request::{ask_for_usage, bad_field, output_cap, take_fallbacks, wants_usage};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::upstream::UpstreamCall;

/// The `anthropic-version` sent upstream when the client did not speak Anthropic itself.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `POST /v1/chat/completions` and `/openai/v1/chat/completions`.
pub async fn openai_chat(inc: Incoming) -> Result<Response, ApiError> {
    let bytes = inc.body().clone();
    let mut obj = JsonObject::parse(&bytes).map_err(|e| inc.reject(e.into()))?;
    let model = obj
        .get_str("model")
        .map_err(|e| inc.reject(e.into()))?
        .ok_or_else(|| inc.reject(bad_field("model is required", "model")))?
        .into_owned();
    match obj.get_raw("messages") {
        Some(raw) if raw.starts_with('[') => {}
        Some(_) => return Err(inc.reject(bad_field("messages must be an array", "messages"))),
        None => return Err(inc.reject(bad_field("messages is required", "messages"))),
    }
    let stream = obj
        .get_bool("stream")
        .map_err(|e| inc.reject(e.into()))?
        .unwrap_or(false);
    let include_usage = stream && wants_usage(&obj);
    let fallbacks = take_fallbacks(&mut obj).map_err(|e| inc.reject(e))?;
    let spec = CallSpec {
        model: Some(model),
        stream,
        fallbacks,
        output_cap: output_cap(&obj),
        ..CallSpec::new(RequestType::ChatCompletion, inc.ingress().protocol())
    };
    let admitted = inc.admit(spec).await?;
    run(&admitted, include_usage, Some(obj), &bytes).await
}

/// `POST /anthropic/v1/messages`: the Anthropic SDK's drop-in.
pub async fn anthropic_messages(inc: Incoming) -> Result<Response, ApiError> {
    let bytes = inc.body().clone();
    let info = switchyard_translate::request_info(Protocol::Anthropic, &bytes)
        .map_err(|e| inc.reject(translate_error(e)))?;
    let mut obj = JsonObject::parse(&bytes).map_err(|e| inc.reject(e.into()))?;
    let model = info
        .model
        .ok_or_else(|| inc.reject(bad_field("model: Field required", "model")))?;
    let fallbacks = take_fallbacks(&mut obj).map_err(|e| inc.reject(e))?;
    let spec = CallSpec {
        model: Some(model),
        stream: info.stream,
        fallbacks,
        output_cap: output_cap(&obj),
        ..CallSpec::new(RequestType::ChatCompletion, Protocol::Anthropic)
    };
    let admitted = inc.admit(spec).await?;
    run(&admitted, info.stream, Some(obj), &bytes).await
}

/// `POST /genai/v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
pub async fn genai_generate(inc: Incoming, rest: String) -> Result<Response, ApiError> {
    let Some((model, action)) = rest.rsplit_once(':') else {
        return Err(inc.reject(not_found_route(&rest)));
    };
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return Err(inc.reject(not_found_route(&rest))),
    };
    let bytes = inc.body().clone();
    switchyard_translate::request_info(Protocol::Gemini, &bytes)
        .map_err(|e| inc.reject(translate_error(e)))?;
    let spec = CallSpec {
        model: Some(model.to_owned()),
        stream,
        output_cap: switchyard_core::governance::estimate::output_cap(&bytes),
        ..CallSpec::new(RequestType::ChatCompletion, Protocol::Gemini)
    };
    let admitted = inc.admit(spec).await?;
    run(&admitted, stream, None, &bytes).await
}

fn not_found_route(rest: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!(
            "unknown Gemini method 'models/{rest}'; use :generateContent or :streamGenerateContent"
        ),
        code: Some("route_not_found"),
    }
}

pub(crate) fn translate_error(e: switchyard_translate::TranslateError) -> GatewayError {
    GatewayError::BadRequest {
        message: e.to_string(),
        param: e.param().map(str::to_owned),
    }
}

/// What chat does on every surface: the cache phase, then plan, dispatch, and the answer in the
/// client's protocol.
async fn run(
    adm: &Admitted,
    include_usage: bool,
    fast: Option<JsonObject<'_>>,
    raw: &Bytes,
) -> Result<Response, ApiError> {
    let family = crate::pipeline::cache::chat_family(adm.spec().shape);
    crate::pipeline::cache::around(adm, family, || serve(adm, include_usage, fast, raw)).await
}

async fn serve(
    adm: &Admitted,
    include_usage: bool,
    fast: Option<JsonObject<'_>>,
    raw: &Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let client = adm.spec().shape;
    let stream = adm.spec().stream;
    let plan = adm.plan().await?;
    let redacted = guard::chat_request(adm, &plan, fast.as_ref(), raw).await?;
    let (raw, fast) = guard::rebind(redacted.as_ref(), raw, fast);
    // Every OpenAI stream is metered: usage is asked for, and its chunk kept from a client that did
    // not ask for it.
    let meter_stream = stream && client == Protocol::OpenAi && !include_usage;
    let mut upstream = ChatUpstream {
        client,
        raw,
        fast,
        client_headers: adm.headers(),
        stream,
        ask_usage: meter_stream,
    };
    let served = adm
        .dispatch(&plan, &mut upstream)
        .await
        .map_err(|f| dispatch_failed(adm, f, ChargedTo::Reported))?;
    let upstream_protocol = protocol_of(served.wire).expect("dispatch only serves supported wires");
    let log_content = observe_served_target(adm, &served, raw);

    // Lengths and encodings change when the body is translated.
    let mut out_headers = answer_headers(&served, |name| {
        upstream_protocol == client || !is_representation_header(name)
    });
    // Only translated answers need a fresh id and timestamp; pass-through keeps the upstream's.
    let response_ctx = || ResponseContext {
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(1),
        model: served.model.clone(),
        id_hint: uuid::Uuid::new_v4().simple().to_string(),
        include_usage,
    };
    let status = served.parts.status;

    let body = match served.body {
        ServedBody::Stream(start) => {
            let mode = if upstream_protocol == client {
                RelayMode::PassThrough {
                    client,
                    strip_usage_chunk: meter_stream,
                }
            } else {
                RelayMode::Translate(Box::new(StreamTranslator::new(
                    upstream_protocol,
                    client,
                    &response_ctx(),
                )))
            };
            set_event_stream_headers(&mut out_headers);
            let content_cap = log_content.then_some(adm.state().log_content.max_bytes);
            relay_body(
                adm,
                start,
                served.provider,
                served.permit,
                mode,
                usage_format(client),
                content_cap,
            )
        }
        ServedBody::Json(bytes) => {
            drop(served.permit);
            let bytes = if upstream_protocol == client {
                bytes
            } else {
                out_headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                translate_answer(adm, &served.provider, upstream_protocol, &bytes, &response_ctx())
                    .map_err(|e| *e)?
            };
            let mut bytes = guard::answer(adm, &served.provider, guard::shapes(client).1, bytes).await?;
            observe_answer(adm, usage_format(client), &bytes, log_content);
            if client == Protocol::OpenAi {
                let extra = extra_fields(
                    RequestType::ChatCompletion,
                    adm.spec().model.as_deref().unwrap_or_default(),
                    &served.provider,
                    &served.model,
                    served.fallback_index,
                    &served.trail,
                    started,
                );
                bytes = append_extra_fields(bytes, &extra);
            }
            Body::from(bytes)
        }
    };
    Ok(response(status, out_headers, body))
}

/// A whole upstream answer in the client's protocol; an answer that cannot be translated is the
/// provider's failure (502).
/// The model the upstream named is recorded as served, read before translation renames it.
fn translate_answer(
    adm: &Admitted,
    provider: &str,
    upstream: Protocol,
    answer: &[u8],
    ctx: &ResponseContext,
) -> Result<Bytes, Box<ApiError>> {
    switchyard_translate::translate_response_named(upstream, adm.spec().shape, answer, ctx)
        .map(|(out, named)| {
            adm.observe(|d| d.served_model = named);
            Bytes::from(out)
        })
        .map_err(|e| {
            let named = answer_model(answer);
            adm.observe(|d| d.served_model = named);
            let mut err = adm.fail(GatewayError::UpstreamUnreachable {
                provider: provider.to_owned(),
                reason: format!("its answer could not be translated: {e}"),
            });
            err.context.provider = Some(provider.to_owned());
            Box::new(err)
        })
}

fn usage_format(p: Protocol) -> UsageFormat {
    match p {
        // No client speaks Bedrock (there is no Bedrock ingress); OpenAI is the neutral reading.
        Protocol::OpenAi | Protocol::Bedrock => UsageFormat::OpenAi,
        Protocol::Anthropic => UsageFormat::Anthropic,
        Protocol::Gemini => UsageFormat::Gemini,
    }
}

pub(crate) fn is_representation_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-type" | "content-encoding" | "content-md5" | "etag"
    )
}

/// Builds each attempt's upstream request from the client's body: a pass-through with `model`
/// rewritten when both sides speak the same protocol, a translation otherwise.
pub(crate) struct ChatUpstream<'a> {
    client: Protocol,
    raw: &'a Bytes,
    /// The client's body as top-level fields, for pass-through (`None` for Gemini, whose model is in
    /// the URL).
    fast: Option<JsonObject<'a>>,
    client_headers: &'a HeaderMap,
    stream: bool,
    /// Ask an OpenAI upstream for the stream's usage (the client did not).
    ask_usage: bool,
}

impl<'a> ChatUpstream<'a> {
    /// Chat for an OpenAI chat completions body made by the gateway itself (the Responses API
    /// translated for providers that do not serve it): to any chat-capable provider.
    pub(crate) fn openai_body(raw: &'a Bytes, client_headers: &'a HeaderMap, stream: bool) -> Option<Self> {
        Some(ChatUpstream {
            client: Protocol::OpenAi,
            raw,
            fast: Some(JsonObject::parse(raw).ok()?),
            client_headers,
            stream,
            // The gateway made this body: its translator asks for usage itself.
            ask_usage: false,
        })
    }
}

impl UpstreamRequest for ChatUpstream<'_> {
    fn request_type(&self) -> RequestType {
        RequestType::ChatCompletion.streamed_if(self.stream)
    }

    fn supports(&self, wire: WireApi) -> bool {
        protocol_of(wire).is_some()
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        let wire = target.provider.config.wire();
        let upstream = protocol_of(wire).expect("checked by supports()");
        let mut body: Bytes = match (&mut self.fast, upstream == self.client) {
            (Some(obj), true) => {
                obj.set_str("model", target.model);
                if self.ask_usage {
                    ask_for_usage(obj);
                }
                Bytes::from(obj.to_vec())
            }
            (None, true) => self.raw.clone(),
            (_, false) => {
                let opts = RequestOptions {
                    upstream_model: target.model.to_owned(),
                    stream: Some(self.stream),
                    default_max_tokens: DEFAULT_MAX_TOKENS,
                    fold_system: target
                        .provider
                        .config
                        .name
                        .builtin()
                        .is_some_and(|b| b.quirks.single_system_message),
                };
                let translated =
                    switchyard_translate::translate_request(self.client, upstream, self.raw, &opts)
                        .map_err(translate_error)?;
                Bytes::from(translated)
            }
        };
        // Preset quirks (data in the built-in table): e.g. Mistral's 9-character tool-call ids.
        if let Some(builtin) = target.provider.config.name.builtin() {
            if let Some(rewritten) = rewrite_tool_call_ids(&body, builtin.quirks.tool_call_ids) {
                body = Bytes::from(rewritten);
            }
        }
        let base = &target.provider.base_url;
        let mut protocol_headers = Vec::new();
        let url = match upstream {
            Protocol::Bedrock => {
                return self.build_bedrock(target, key, body);
            }
            // OpenAI-compatible providers and Azure (deployment URL, api-version).
            Protocol::OpenAi => {
                crate::providers::openai_style_url(target.provider, key, target.model, "/chat/completions")
            }
            Protocol::Anthropic => {
                let version = match self.client {
                    Protocol::Anthropic => self.client_headers.get("anthropic-version").cloned(),
                    _ => None,
                };
                protocol_headers.push((
                    HeaderName::from_static("anthropic-version"),
                    version.unwrap_or(HeaderValue::from_static(ANTHROPIC_VERSION)),
                ));
                if self.client == Protocol::Anthropic {
                    if let Some(beta) = self.client_headers.get("anthropic-beta") {
                        protocol_headers.push((HeaderName::from_static("anthropic-beta"), beta.clone()));
                    }
                }
                openai_endpoint(base, "/messages")
            }
            Protocol::Gemini => gemini_endpoint(base, target.model, self.stream),
        };
        UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url,
            accept_sse: self.stream,
            client_headers: self.client_headers,
            protocol_headers,
        }
        .build(Body::from(body))
    }
}

impl ChatUpstream<'_> {
    /// Bedrock: Converse or ConverseStream, SigV4-signed when the key has AWS credentials, else the
    /// key's value as a Bedrock API key (bearer token).
    fn build_bedrock(
        &self,
        target: &Target<'_>,
        key: &RuntimeKey,
        body: Bytes,
    ) -> Result<http::Request<Body>, GatewayError> {
        let url = crate::providers::bedrock_url(target.provider, key, target.model, self.stream);
        let mut req = UpstreamCall {
            provider: target.provider,
            key: if key.aws.is_some() { None } else { Some(key) },
            method: Method::POST,
            url,
            accept_sse: false,
            client_headers: self.client_headers,
            protocol_headers: Vec::new(),
        }
        .build(Body::from(body.clone()))?;
        if self.stream {
            req.headers_mut().insert(
                http::header::ACCEPT,
                HeaderValue::from_static("application/vnd.amazon.eventstream"),
            );
        }
        if let Some(creds) = &key.aws {
            crate::providers::sign_bedrock(&mut req, &body, creds, target.provider.config.name.as_str())?;
        }
        Ok(req)
    }
}

/// `POST /anthropic/v1/messages/count_tokens`: answered by an Anthropic provider (pass-through); other
/// upstreams cannot count Anthropic tokens, which the answer says. Governed and logged like any call.
pub async fn anthropic_count_tokens(inc: Incoming) -> Result<Response, ApiError> {
    let bytes = inc.body().clone();
    let mut obj = JsonObject::parse(&bytes).map_err(|e| inc.reject(e.into()))?;
    let model = obj
        .get_str("model")
        .map_err(|e| inc.reject(e.into()))?
        .ok_or_else(|| inc.reject(bad_field("model: Field required", "model")))?
        .into_owned();
    let spec = CallSpec {
        model: Some(model.clone()),
        // Counting produces no output.
        output_cap: Some(0),
        ..CallSpec::new(RequestType::CountTokens, Protocol::Anthropic)
    };
    let adm = inc.admit(spec).await?;
    let plan = adm
        .plan_with(|config, rng| {
            let targets = config.plan(&model, Some("anthropic"), &[], rng)?;
            let anthropic: Vec<Target<'_>> = targets
                .iter()
                .filter(|t| t.provider.config.wire() == WireApi::Anthropic)
                .copied()
                .collect();
            // No Anthropic provider: the caller must still be allowed the providers that serve the
            // model; the count is then estimated here.
            Ok(if anthropic.is_empty() { targets } else { anthropic })
        })
        .await?;
    if !plan
        .targets()
        .iter()
        .any(|t| t.provider.config.wire() == WireApi::Anthropic)
    {
        return Ok(estimated_token_count(&bytes));
    }
    let mut upstream = CountTokens {
        body: &mut obj,
        client_headers: adm.headers(),
    };
    let served = adm
        .dispatch(&plan, &mut upstream)
        .await
        .map_err(|f| dispatch_failed(&adm, f, ChargedTo::Reported))?;
    observe_served_target(&adm, &served, &bytes);
    let ServedBody::Json(answer) = served.body else {
        unreachable!("count_tokens is never a stream")
    };
    let mut resp = Response::new(Body::from(answer));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// `count_tokens` for a model no Anthropic provider serves: an estimate (the text of the request, four
/// characters a token), marked `x-switchyard-token-count: estimated`.
fn estimated_token_count(body: &[u8]) -> Response {
    fn text_len(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::String(s) => s.chars().count(),
            serde_json::Value::Array(a) => a.iter().map(text_len).sum(),
            serde_json::Value::Object(o) => o
                .iter()
                .filter(|(k, _)| k.as_str() != "model")
                .map(|(_, v)| text_len(v))
                .sum(),
            _ => 0,
        }
    }
    let chars = serde_json::from_slice(body).map_or(body.len(), |v| text_len(&v));
    let mut resp = axum::Json(serde_json::json!({"input_tokens": chars.div_ceil(4)})).into_response();
    resp.headers_mut()
        .insert("x-switchyard-token-count", HeaderValue::from_static("estimated"));
    resp
}

struct CountTokens<'a, 'b> {
    body: &'a mut JsonObject<'b>,
    client_headers: &'a HeaderMap,
}

impl UpstreamRequest for CountTokens<'_, '_> {
    fn request_type(&self) -> RequestType {
        RequestType::CountTokens
    }

    fn supports(&self, wire: WireApi) -> bool {
        wire == WireApi::Anthropic
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        self.body.set_str("model", target.model);
        let version = self
            .client_headers
            .get("anthropic-version")
            .cloned()
            .unwrap_or(HeaderValue::from_static(ANTHROPIC_VERSION));
        UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: openai_endpoint(&target.provider.base_url, "/messages/count_tokens"),
            accept_sse: false,
            client_headers: self.client_headers,
            protocol_headers: vec![(HeaderName::from_static("anthropic-version"), version)],
        }
        .build(Body::from(self.body.to_vec()))
    }
}
