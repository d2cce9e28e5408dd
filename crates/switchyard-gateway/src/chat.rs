//! Chat in every client language: `/v1/chat/completions` and `/openai/v1/chat/completions` (OpenAI),
//! `/anthropic/v1/messages` (Anthropic), `/genai/v1beta/models/{model}:generateContent` (Gemini), each
//! to any provider whose wire API is OpenAI, Anthropic or Gemini.
//!
//! Same protocol on both sides is a pass-through: the client's body with only `model` rewritten, the
//! answer relayed without re-encoding. Different protocols go through `switchyard-translate`'s one
//! canonical representation: requests per attempt, answers and stream events on the way back. Errors
//! always answer in the client's own shape.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::presets::rewrite_tool_call_ids;
use switchyard_core::pricing::{PriceTable, Prices};
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::upstream_url::{gemini_endpoint, openai_endpoint};
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::{Protocol, RequestOptions, ResponseContext, StreamTranslator, DEFAULT_MAX_TOKENS};

use crate::body::read_limited;
use crate::dispatch::{dispatch, AttemptRecord, DispatchOptions, Served, ServedBody, UpstreamRequest};
use crate::error::{ApiError, ErrorContext, GatewayError};
use crate::inference::{append_extra_fields, Ingress};
use crate::observe::ObsHandle;
use crate::relay::RelayMode;
use crate::served::{
    answer_headers, dispatch_failed, extra_fields, observe_answer, observe_served_target, plan_call,
    relay_body, response, set_event_stream_headers, ChargedTo, RoutedCall,
};
use crate::state::AppState;
use crate::upstream::UpstreamCall;

/// The `anthropic-version` sent upstream when the client did not speak Anthropic itself.
const ANTHROPIC_VERSION: &str = "2023-06-01";

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

pub async fn chat_completions_unified(
    state: State<Arc<AppState>>,
    obs: Extension<ObsHandle>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    openai_chat(state, obs, Ingress::Unified, headers, body).await
}

pub async fn chat_completions_openai(
    state: State<Arc<AppState>>,
    obs: Extension<ObsHandle>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    openai_chat(state, obs, Ingress::OpenAi, headers, body).await
}

pub(crate) fn bad_field(message: &str, field: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: message.to_owned(),
        param: Some(field.to_owned()),
    }
}

fn shaped(ingress: Ingress, error: GatewayError) -> ApiError {
    ApiError {
        error,
        context: ErrorContext::default(),
        shape: ingress.protocol(),
    }
}

/// What the handlers extract before the shared pipeline runs.
struct ChatCall {
    ingress: Ingress,
    model: String,
    stream: bool,
    include_usage: bool,
    fallbacks: Vec<String>,
}

async fn openai_chat(
    State(state): State<Arc<AppState>>,
    Extension(obs): Extension<ObsHandle>,
    ingress: Ingress,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_limited(body, state.max_body_bytes).await?;
    let mut obj = JsonObject::parse(&bytes).map_err(GatewayError::from)?;
    let model = obj
        .get_str("model")?
        .ok_or_else(|| bad_field("model is required", "model"))?
        .into_owned();
    match obj.get_raw("messages") {
        Some(raw) if raw.starts_with('[') => {}
        Some(_) => return Err(bad_field("messages must be an array", "messages").into()),
        None => return Err(bad_field("messages is required", "messages").into()),
    }
    let stream = obj.get_bool("stream")?.unwrap_or(false);
    let include_usage = stream
        && obj.get_raw("stream_options").is_some_and(|raw| {
            serde_json::from_str::<serde_json::Value>(raw).is_ok_and(|v| v["include_usage"] == true)
        });
    let fallbacks = take_fallbacks(&mut obj)?;
    let call = ChatCall {
        ingress,
        model,
        stream,
        include_usage,
        fallbacks,
    };
    run(&state, &obs, call, &headers, &bytes, Some(obj)).await
}

/// Bifrost's `fallbacks` field: read, then removed from what goes upstream.
pub(crate) fn take_fallbacks(obj: &mut JsonObject<'_>) -> Result<Vec<String>, GatewayError> {
    let list = match obj.get_raw("fallbacks") {
        None | Some("null") => Vec::new(),
        Some(raw) => serde_json::from_str(raw).map_err(|_| {
            bad_field(
                "fallbacks must be an array of \"provider/model\" strings",
                "fallbacks",
            )
        })?,
    };
    obj.remove("fallbacks");
    Ok(list)
}

/// `POST /anthropic/v1/messages`: the Anthropic SDK's drop-in.
pub async fn anthropic_messages(
    State(state): State<Arc<AppState>>,
    Extension(obs): Extension<ObsHandle>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ingress = Ingress::Anthropic;
    let bytes = read_limited(body, state.max_body_bytes)
        .await
        .map_err(|e| shaped(ingress, e))?;
    let info = switchyard_translate::request_info(Protocol::Anthropic, &bytes)
        .map_err(|e| shaped(ingress, translate_error(e)))?;
    let mut obj = JsonObject::parse(&bytes).map_err(|e| shaped(ingress, e.into()))?;
    let model = info
        .model
        .ok_or_else(|| shaped(ingress, bad_field("model: Field required", "model")))?;
    let fallbacks = take_fallbacks(&mut obj).map_err(|e| shaped(ingress, e))?;
    let call = ChatCall {
        ingress,
        model,
        stream: info.stream,
        include_usage: info.stream,
        fallbacks,
    };
    run(&state, &obs, call, &headers, &bytes, Some(obj)).await
}

/// `POST /genai/v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
pub async fn genai_generate(
    State(state): State<Arc<AppState>>,
    Extension(obs): Extension<ObsHandle>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ingress = Ingress::Gemini;
    let Some((model, action)) = rest.rsplit_once(':') else {
        return Err(shaped(ingress, not_found_route(&rest)));
    };
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return Err(shaped(ingress, not_found_route(&rest))),
    };
    let bytes = read_limited(body, state.max_body_bytes)
        .await
        .map_err(|e| shaped(ingress, e))?;
    switchyard_translate::request_info(Protocol::Gemini, &bytes)
        .map_err(|e| shaped(ingress, translate_error(e)))?;
    let call = ChatCall {
        ingress,
        model: model.to_owned(),
        stream,
        include_usage: stream,
        fallbacks: Vec::new(),
    };
    run(&state, &obs, call, &headers, &bytes, None).await
}

fn not_found_route(rest: &str) -> GatewayError {
    GatewayError::NotFound {
        message: format!(
            "unknown Gemini method 'models/{rest}'; use :generateContent or :streamGenerateContent"
        ),
        code: Some("route_not_found"),
    }
}

fn translate_error(e: switchyard_translate::TranslateError) -> GatewayError {
    GatewayError::BadRequest {
        message: e.to_string(),
        param: e.param().map(str::to_owned),
    }
}

/// The shared pipeline: plan, dispatch, and the answer in the client's protocol.
async fn run(
    state: &AppState,
    obs: &ObsHandle,
    call: ChatCall,
    headers: &HeaderMap,
    raw: &Bytes,
    fast: Option<JsonObject<'_>>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let client = call.ingress.protocol();
    let snapshot = state.config.snapshot();
    let routed = RoutedCall {
        ingress: call.ingress,
        model: &call.model,
        fallbacks: &call.fallbacks,
        request_type: "chat_completion",
        stream: call.stream,
    };
    let planned = plan_call(state, obs, &snapshot, headers, routed, client).await?;
    let mut upstream = ChatUpstream {
        client,
        raw,
        fast,
        client_headers: headers,
        stream: call.stream,
    };
    let served = match dispatch(state, &planned.targets, &mut upstream, &planned.opts).await {
        Ok(s) => s,
        Err(f) => return Err(dispatch_failed(obs, f, planned.ctx, client, ChargedTo::Reported)),
    };
    let mut ctx = planned.ctx;
    let fail = |error: GatewayError, ctx: &ErrorContext| ApiError {
        error,
        context: ctx.clone(),
        shape: client,
    };
    ctx.provider = Some(served.provider.clone());
    let upstream_protocol = protocol_of(served.wire).expect("dispatch only serves supported wires");
    let log_content = observe_served_target(state, obs, &snapshot, &served, call.stream, raw);

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
        include_usage: call.include_usage,
    };
    let status = served.parts.status;

    let body = match served.body {
        ServedBody::Stream(start) => {
            let mode = if upstream_protocol == client {
                RelayMode::PassThrough { client }
            } else {
                RelayMode::Translate(Box::new(StreamTranslator::new(
                    upstream_protocol,
                    client,
                    &response_ctx(),
                )))
            };
            set_event_stream_headers(&mut out_headers);
            let content_cap = log_content.then_some(state.log_content.max_bytes);
            relay_body(
                obs,
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
            let mut bytes = if upstream_protocol == client {
                bytes
            } else {
                let translated = switchyard_translate::translate_response(
                    upstream_protocol,
                    client,
                    &bytes,
                    &response_ctx(),
                )
                .map_err(|e| {
                    fail(
                        GatewayError::UpstreamUnreachable {
                            provider: served.provider.clone(),
                            reason: format!("its answer could not be translated: {e}"),
                        },
                        &ctx,
                    )
                })?;
                out_headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Bytes::from(translated)
            };
            observe_answer(state, obs, usage_format(client), &bytes, log_content);
            if client == Protocol::OpenAi {
                let extra = extra_fields(
                    "chat_completion",
                    &call.model,
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

fn usage_format(p: Protocol) -> UsageFormat {
    match p {
        // No client speaks Bedrock (there is no Bedrock ingress); OpenAI is the neutral reading.
        Protocol::OpenAi | Protocol::Bedrock => UsageFormat::OpenAi,
        Protocol::Anthropic => UsageFormat::Anthropic,
        Protocol::Gemini => UsageFormat::Gemini,
    }
}

/// The embedded list price applies only to a built-in provider at its own default endpoint; anything
/// else (a custom provider, or `openai` pointed at a mittwald endpoint) has no known price.
pub(crate) fn list_price(p: &switchyard_core::routing::RuntimeProvider, model: &str) -> Option<Prices> {
    let builtin = p.config.name.builtin()?;
    if p.config.custom_provider_config.is_some() || builtin.default_base_url != Some(p.base_url.as_str()) {
        return None;
    }
    PriceTable::embedded().lookup(builtin.name, model)
}

fn is_representation_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-type" | "content-encoding" | "content-md5" | "etag"
    )
}

/// Which provider and key served, after how many attempts, and the trail: visible to every caller,
/// streams included (they carry no `extra_fields`).
pub(crate) fn routing_headers(h: &mut HeaderMap, served: &Served) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("x-switchyard-provider", served.provider.clone());
    set("x-switchyard-model", served.model.clone());
    set("x-switchyard-key", served.key_name.clone());
    set(
        "x-switchyard-attempts",
        served
            .trail
            .iter()
            .filter(|a| a.key.is_some())
            .count()
            .to_string(),
    );
    set("x-switchyard-fallback-index", served.fallback_index.to_string());
    set(
        "x-switchyard-trail",
        served
            .trail
            .iter()
            .map(AttemptRecord::compact)
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// Builds each attempt's upstream request from the client's body: a pass-through with `model`
/// rewritten when both sides speak the same protocol, a translation otherwise.
struct ChatUpstream<'a> {
    client: Protocol,
    raw: &'a Bytes,
    /// The client's body as top-level fields, for pass-through (`None` for Gemini, whose model is in
    /// the URL).
    fast: Option<JsonObject<'a>>,
    client_headers: &'a HeaderMap,
    stream: bool,
}

impl UpstreamRequest for ChatUpstream<'_> {
    fn request_type(&self) -> &'static str {
        if self.stream {
            "chat_completion_stream"
        } else {
            "chat_completion"
        }
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
                Bytes::from(obj.to_vec())
            }
            (None, true) => self.raw.clone(),
            (_, false) => {
                let opts = RequestOptions {
                    upstream_model: target.model.to_owned(),
                    stream: Some(self.stream),
                    default_max_tokens: DEFAULT_MAX_TOKENS,
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
/// upstreams cannot count Anthropic tokens, which the answer says.
pub async fn anthropic_count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ingress = Ingress::Anthropic;
    let bytes = read_limited(body, state.max_body_bytes)
        .await
        .map_err(|e| shaped(ingress, e))?;
    let mut obj = JsonObject::parse(&bytes).map_err(|e| shaped(ingress, e.into()))?;
    let model = obj
        .get_str("model")
        .map_err(|e| shaped(ingress, e.into()))?
        .ok_or_else(|| shaped(ingress, bad_field("model: Field required", "model")))?
        .into_owned();
    let snapshot = state.config.snapshot();
    let mut rng = fastrand::Rng::new();
    let plan = snapshot
        .plan(&model, Some("anthropic"), &[], &mut rng)
        .map_err(|e| shaped(ingress, e.into()))?;
    let plan: Vec<Target<'_>> = plan
        .into_iter()
        .filter(|t| t.provider.config.wire() == WireApi::Anthropic)
        .collect();
    if plan.is_empty() {
        return Err(shaped(
            ingress,
            GatewayError::BadRequest {
                message: format!("count_tokens needs an Anthropic provider, and none serves model '{model}'"),
                param: Some("model".into()),
            },
        ));
    }
    let mut upstream = CountTokens {
        body: &mut obj,
        client_headers: &headers,
    };
    let opts = DispatchOptions {
        stream: false,
        timeout_override: Some(Duration::from_secs(60)),
        key_restriction: None,
    };
    match dispatch(&state, &plan, &mut upstream, &opts).await {
        Ok(served) => {
            let ServedBody::Json(bytes) = served.body else {
                unreachable!("not a stream")
            };
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = StatusCode::OK;
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        Err(f) => Err(shaped(ingress, f.error)),
    }
}

struct CountTokens<'a, 'b> {
    body: &'a mut JsonObject<'b>,
    client_headers: &'a HeaderMap,
}

impl UpstreamRequest for CountTokens<'_, '_> {
    fn request_type(&self) -> &'static str {
        "count_tokens"
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
