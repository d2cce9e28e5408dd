//! Raw pass-through for provider endpoints Switchyard does not model: `/openai_passthrough/{path}`,
//! `/anthropic_passthrough/{path}`, `/genai_passthrough/{path}` (the built-in providers of those names)
//! and `/passthrough/{provider}/{path}` (any configured provider).
//!
//! The body goes upstream byte for byte, to `{base_url}/{path}` with the query string kept. The client's
//! credentials never do: `Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`, cookies, `x-bf-*`
//! and a `key` query parameter are dropped and the stored key is injected, as on every route. The call
//! runs through the pipeline (admission, a governed one-provider plan, dispatch with key selection,
//! retries on the provider's own keys, breakers and concurrency, the finish phase), so it is logged,
//! metered and governed like every call; `model` and `stream` are read from a JSON body (or a Gemini `models/{model}:...` path) when
//! present, for key selection and the log. Custom providers gate it with
//! `allowed_requests.passthrough` / `passthrough_stream`. Only POST is passed through (inference calls).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use bytes::Bytes;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, RuntimeProvider, Target};
use switchyard_core::upstream_url::passthrough_url;
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::Protocol;

use crate::answer::ServedBody;
use crate::ingress::protocol_of;
use crate::pipeline::dispatch::UpstreamRequest;
use crate::pipeline::relay::RelayMode;
use crate::pipeline::respond::{
    answer_headers, dispatch_failed, observe_answer, observe_served, relay_body, response, ChargedTo,
    ServedRecord,
};
use crate::pipeline::{Admitted, CallSpec, Incoming};
use switchyard_runtime::error::{ApiError, GatewayError};
use switchyard_runtime::upstream::UpstreamCall;

/// Client headers never forwarded: credentials and the headers that pick which account or project of
/// the stored key is charged, connection headers, the gateway's own controls, and `accept-encoding` (a
/// compressed stream could not be framed event by event).
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "openai-organization",
    "openai-project",
    "x-goog-user-project",
    "cookie",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "expect",
    "accept-encoding",
    "user-agent",
];

/// The query string without a `key` parameter (Gemini's way of carrying a client key).
fn query_without_key(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("key"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// A Gemini path's model: `v1beta/models/{model}:{action}`.
fn model_in_path(rest: &str) -> Option<&str> {
    let after = rest.split("models/").nth(1)?;
    let model = after.split(':').next()?;
    (!model.is_empty() && !model.contains('/')).then_some(model)
}

fn usage_format(wire: WireApi, rest: &str) -> UsageFormat {
    match protocol_of(wire) {
        Some(Protocol::Anthropic) => UsageFormat::Anthropic,
        Some(Protocol::Gemini) => UsageFormat::Gemini,
        _ if rest.contains("responses") => UsageFormat::Responses,
        _ => UsageFormat::OpenAi,
    }
}

/// What the pass-through reads of its request: never rewritten, only looked at.
struct Call {
    url: String,
    /// From a JSON body's `model`, or a Gemini path's.
    model: Option<String>,
    stream: bool,
}

fn read_call(inc: &Incoming, provider: &RuntimeProvider, rest: &str) -> Result<Call, GatewayError> {
    let url = passthrough_url(
        &provider.base_url,
        rest,
        query_without_key(inc.uri().query()).as_deref(),
    )
    .map_err(|m| GatewayError::BadRequest {
        message: m.to_owned(),
        param: Some("path".into()),
    })?;
    // Read, never rewritten: `model` picks the key and names the call in the log.
    let (body_model, body_stream) = match JsonObject::parse(inc.body()) {
        Ok(obj) => (
            obj.get_str("model").ok().flatten().map(|m| m.into_owned()),
            obj.get_bool("stream").ok().flatten().unwrap_or(false),
        ),
        Err(_) => (None, false),
    };
    let model = body_model.or_else(|| model_in_path(rest).map(str::to_owned));
    let wants_sse = inc
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let stream = body_stream || wants_sse || rest.contains("streamGenerateContent");
    Ok(Call { url, model, stream })
}

/// `POST /{openai,anthropic,genai}_passthrough/{rest}` and `/passthrough/{provider}/{rest}`.
pub async fn passthrough(inc: Incoming, provider_name: String, rest: String) -> Result<Response, ApiError> {
    let Some(provider) = inc.config().provider(&provider_name) else {
        return Err(inc.reject(GatewayError::NotFound {
            message: format!("provider '{provider_name}' is not configured; add it with POST /api/providers"),
            code: Some("provider_not_found"),
        }));
    };
    let wire = provider.config.wire();
    let shape = protocol_of(wire).unwrap_or(Protocol::OpenAi);
    let mut reject = inc.reject(GatewayError::MethodNotAllowed);
    reject.shape = shape;
    reject.context.provider = Some(provider_name.clone());
    reject.context.request_type = Some(RequestType::Passthrough);
    let call = read_call(&inc, provider, &rest).map_err(|error| ApiError { error, ..reject })?;
    let log_model = call
        .model
        .clone()
        .unwrap_or_else(|| format!("{provider_name}:/{rest}"));
    let request_type = RequestType::Passthrough.streamed_if(call.stream);
    let spec = CallSpec {
        model: call.model.clone(),
        provider: Some(provider_name.clone()),
        stream: call.stream,
        ..CallSpec::new(request_type, shape)
    };
    let adm = inc.admit(spec).await?;
    adm.observe(|d| d.model_requested = Some(log_model));
    serve(&adm, &provider_name, &rest, call).await
}

/// The plan is the one provider the route names, limited to the body's model: the body is
/// provider-specific, so there is no fallback to other providers. Without a model, only keys that
/// serve every model (`*`) can be used, and a virtual key must allow every model at this provider.
async fn serve(adm: &Admitted, provider_name: &str, rest: &str, call: Call) -> Result<Response, ApiError> {
    let key_model = call.model.clone().unwrap_or_else(|| "*".to_owned());
    let qualified = call.model.as_ref().map(|m| format!("{provider_name}/{m}"));
    let plan = adm
        .plan_with(|config, rng| {
            let provider = config
                .provider(provider_name)
                .expect("looked up in this snapshot");
            match &qualified {
                Some(q) => Ok(config
                    .plan(q, None, &[], rng)?
                    .into_iter()
                    .filter(|t| t.provider.config.name.as_str() == provider_name && t.model == key_model)
                    .collect()),
                None if provider.serves(&key_model) => Ok(vec![Target { provider, model: "*" }]),
                None => Err(GatewayError::BadRequest {
                    message: format!(
                        "this pass-through request names no model (no JSON `model` field), so only a key \
                         of provider '{provider_name}' with models [\"*\"] can serve it, and it has none"
                    ),
                    param: Some("model".into()),
                }),
            }
        })
        .await?;
    let mut upstream = RawPassThrough {
        url: call.url,
        body: adm.body().clone(),
        forwarded: forwarded_headers(adm.headers()),
        stream: call.stream,
    };
    let served = adm.dispatch(&plan, &mut upstream).await.map_err(|f| {
        let charged_to = ChargedTo::Route {
            provider: provider_name.to_owned(),
            model: call.model.clone(),
        };
        dispatch_failed(adm, f, charged_to)
    })?;
    let state = adm.state();
    let provider = adm.config().provider(provider_name).expect("planned above");
    let log_content = state.log_content.enabled || provider.config.store_raw_request_response;
    let format = usage_format(provider.config.wire(), rest);
    // The row names the requested model (the body is provider-specific, so nothing was rewritten),
    // and the plan holds this one target.
    let record = ServedRecord {
        model: call.model.clone(),
        fallback_index: 0,
        price: call
            .model
            .as_deref()
            .and_then(|m| state.governance.price(provider, m)),
        stream: call.stream,
        request_body: log_content.then_some(&adm.body()[..]),
    };
    observe_served(adm, &served, record);
    // The upstream's own headers stay (the answer is relayed unchanged, streams included).
    let out_headers = answer_headers(&served, |_| true);
    let status = served.parts.status;
    let body = match served.body {
        ServedBody::Stream(start) => {
            let content_cap = log_content.then_some(state.log_content.max_bytes);
            let mode = RelayMode::PassThrough {
                client: adm.spec().shape,
                strip_usage_chunk: false,
            };
            relay_body(
                adm,
                start,
                served.provider,
                served.permit,
                mode,
                format,
                content_cap,
            )
        }
        ServedBody::Json(answer) => {
            drop(served.permit);
            observe_answer(adm, format, &answer, log_content);
            Body::from(answer)
        }
    };
    Ok(response(status, out_headers, body))
}

/// The client's headers that go upstream (everything but credentials, connection headers and the
/// gateway's own controls), with `accept: */*` when the client sent none.
fn forwarded_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut forwarded: Vec<(HeaderName, HeaderValue)> = headers
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            !DROPPED_HEADERS.contains(&n) && !n.starts_with("x-bf-") && !n.starts_with("x-switchyard-")
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if !headers.contains_key(http::header::ACCEPT) {
        forwarded.push((http::header::ACCEPT, HeaderValue::from_static("*/*")));
    }
    forwarded
}

/// The client's request, byte for byte, with the client's credentials replaced by the stored key.
struct RawPassThrough {
    url: String,
    body: Bytes,
    forwarded: Vec<(HeaderName, HeaderValue)>,
    stream: bool,
}

impl UpstreamRequest for RawPassThrough {
    fn request_type(&self) -> RequestType {
        RequestType::Passthrough.streamed_if(self.stream)
    }

    fn supports(&self, _wire: WireApi) -> bool {
        true
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        let empty = HeaderMap::new();
        let mut req = UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: self.url.clone(),
            accept_sse: self.stream,
            client_headers: &empty,
            // The client's own headers, set before the provider's extra headers and the stored key,
            // which UpstreamCall applies last.
            protocol_headers: self.forwarded.clone(),
        }
        .build(Body::from(self.body.clone()))?;
        if !self
            .forwarded
            .iter()
            .any(|(n, _)| n == http::header::CONTENT_TYPE)
        {
            req.headers_mut().remove(http::header::CONTENT_TYPE);
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_in_the_query_are_dropped() {
        assert_eq!(
            query_without_key(Some("alt=sse&key=client")),
            Some("alt=sse".into())
        );
        assert_eq!(query_without_key(Some("key=client")), None);
        assert_eq!(query_without_key(None), None);
        assert_eq!(query_without_key(Some("keys=1")), Some("keys=1".into()));
    }

    #[test]
    fn gemini_model_from_the_path() {
        assert_eq!(
            model_in_path("v1beta/models/gemini-2.5-pro:generateContent"),
            Some("gemini-2.5-pro")
        );
        assert_eq!(model_in_path("v1/chat/completions"), None);
    }
}
