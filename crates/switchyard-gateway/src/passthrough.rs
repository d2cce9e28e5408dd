//! Raw pass-through for provider endpoints Switchyard does not model: `/openai_passthrough/{path}`,
//! `/anthropic_passthrough/{path}`, `/genai_passthrough/{path}` (the built-in providers of those names)
//! and `/passthrough/{provider}/{path}` (any configured provider).
//!
//! The body goes upstream byte for byte, to `{base_url}/{path}` with the query string kept. The client's
//! credentials never do: `Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`, cookies, `x-bf-*`
//! and a `key` query parameter are dropped and the stored key is injected, as on every route. The call
//! runs through `dispatch` (key selection, retries on the provider's own keys, breakers, concurrency)
//! and the `observe` middleware, so it is logged, metered and subject to every governance layer of that
//! stack; `model` and `stream` are read from a JSON body (or a Gemini `models/{model}:...` path) when
//! present, for key selection and the log. Custom providers gate it with
//! `allowed_requests.passthrough` / `passthrough_stream`. Only POST is passed through (inference calls).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use switchyard_core::json_fields::JsonObject;
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::upstream_url::passthrough_url;
use switchyard_core::WireApi;
use switchyard_translate::usage::UsageFormat;
use switchyard_translate::Protocol;

use crate::body::read_limited;
use crate::chat::protocol_of;
use crate::dispatch::{dispatch, timeout_override, DispatchOptions, ServedBody, UpstreamRequest};
use crate::error::{ApiError, ErrorContext, GatewayError};
use crate::observe::ObsHandle;
use crate::relay::RelayMode;
use crate::served::{
    answer_headers, dispatch_failed, observe_answer, observe_served, relay_body, response, ChargedTo,
    ServedRecord,
};
use crate::state::AppState;
use crate::upstream::UpstreamCall;

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

/// The pass-through routes, each wrapped in `observe`.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let observed = |r: axum::routing::MethodRouter<Arc<AppState>>| {
        r.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::observe::observe,
        ))
    };
    let fixed = |provider: &'static str| {
        observed(post(
            move |s: State<Arc<AppState>>,
                  o: Extension<ObsHandle>,
                  Path(rest): Path<String>,
                  uri: Uri,
                  h: HeaderMap,
                  b: Body| { passthrough(s, o, provider.to_owned(), rest, uri, h, b) },
        ))
    };
    Router::new()
        .route("/openai_passthrough/{*rest}", fixed("openai"))
        .route("/anthropic_passthrough/{*rest}", fixed("anthropic"))
        .route("/genai_passthrough/{*rest}", fixed("gemini"))
        .route(
            "/passthrough/{provider}/{*rest}",
            observed(post(
                |s: State<Arc<AppState>>,
                 o: Extension<ObsHandle>,
                 Path((provider, rest)): Path<(String, String)>,
                 uri: Uri,
                 h: HeaderMap,
                 b: Body| { passthrough(s, o, provider, rest, uri, h, b) },
            )),
        )
}

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

async fn passthrough(
    State(state): State<Arc<AppState>>,
    Extension(obs): Extension<ObsHandle>,
    provider_name: String,
    rest: String,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let snapshot = state.config.snapshot();
    let Some(provider) = snapshot.provider(&provider_name) else {
        return Err(GatewayError::NotFound {
            message: format!("provider '{provider_name}' is not configured; add it with POST /api/providers"),
            code: Some("provider_not_found"),
        }
        .into());
    };
    let wire = provider.config.wire();
    let shape = protocol_of(wire).unwrap_or(Protocol::OpenAi);
    let fail = |error: GatewayError, ctx: &ErrorContext| ApiError {
        error,
        context: ctx.clone(),
        shape,
    };
    let mut ctx = ErrorContext {
        provider: Some(provider_name.clone()),
        request_type: Some("passthrough"),
        ..ErrorContext::default()
    };
    let url = passthrough_url(
        &provider.base_url,
        &rest,
        query_without_key(uri.query()).as_deref(),
    )
    .map_err(|m| {
        fail(
            GatewayError::BadRequest {
                message: m.to_owned(),
                param: None,
            },
            &ctx,
        )
    })?;
    let bytes = read_limited(body, state.max_body_bytes)
        .await
        .map_err(|e| fail(e, &ctx))?;
    // Read, never rewritten: `model` picks the key and names the call in the log.
    let (body_model, body_stream) = match JsonObject::parse(&bytes) {
        Ok(obj) => (
            obj.get_str("model").ok().flatten().map(|m| m.into_owned()),
            obj.get_bool("stream").ok().flatten().unwrap_or(false),
        ),
        Err(_) => (None, false),
    };
    let model = body_model.or_else(|| model_in_path(&rest).map(str::to_owned));
    let wants_sse = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let stream = body_stream || wants_sse || rest.contains("streamGenerateContent");
    let request_type = if stream {
        "passthrough_stream"
    } else {
        "passthrough"
    };
    ctx.request_type = Some(request_type);
    ctx.model_requested = model.clone();
    obs.update(|d| {
        d.request_type = Some(request_type);
        d.model_requested = Some(
            model
                .clone()
                .unwrap_or_else(|| format!("{provider_name}:/{rest}")),
        );
        d.stream = stream;
    });
    let timeout_override = timeout_override(&headers).map_err(|e| fail(e, &ctx))?;
    // With a model, the plan comes from the same place as every endpoint's (`plan_for`, where
    // plan-level policies apply), limited to this provider and model: the body is provider-specific,
    // so there is no fallback to other providers. Without one, only keys that serve every model
    // (`*`) can be used.
    let qualified = model.as_ref().map(|m| format!("{provider_name}/{m}"));
    let key_model = model.clone().unwrap_or_else(|| "*".to_owned());
    let mut rng = fastrand::Rng::new();
    let governed = match &qualified {
        Some(q) => {
            let planned = snapshot
                .plan(q, None, &[], &mut rng)
                .map_err(|e| fail(e.into(), &ctx))?;
            let only_here: Vec<Target<'_>> = planned
                .into_iter()
                .filter(|t| t.provider.config.name.as_str() == provider_name && t.model == key_model)
                .collect();
            crate::governance::restrict(&state, &obs, only_here, &mut rng)
                .await
                .map_err(|e| fail(e, &ctx))?
        }
        // A virtual key must allow every model at this provider to use a model-less pass-through.
        None if provider.serves(&key_model) => {
            let only = vec![Target {
                provider,
                model: &key_model,
            }];
            crate::governance::restrict(&state, &obs, only, &mut rng)
                .await
                .map_err(|e| fail(e, &ctx))?
        }
        None => {
            let message = format!(
                "this pass-through request names no model (no JSON `model` field), so only a key of \
                 provider '{provider_name}' with models [\"*\"] can serve it, and it has none"
            );
            return Err(fail(
                GatewayError::BadRequest {
                    message,
                    param: Some("model".into()),
                },
                &ctx,
            ));
        }
    };
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
    let mut upstream = RawPassThrough {
        url,
        body: bytes.clone(),
        forwarded,
        stream,
    };
    let opts = DispatchOptions {
        stream,
        timeout_override,
        key_restriction: governed.key_restriction,
    };
    let served = match dispatch(&state, &governed.targets, &mut upstream, &opts).await {
        Ok(s) => s,
        Err(f) => {
            let charged_to = ChargedTo::Route {
                provider: provider_name.clone(),
                model: model.clone(),
            };
            return Err(dispatch_failed(&obs, f, ctx, shape, charged_to));
        }
    };
    let log_content = state.log_content.enabled || provider.config.store_raw_request_response;
    let format = usage_format(wire, &rest);
    // The row names the requested model (the body is provider-specific, so nothing was rewritten),
    // and the plan holds this one target.
    let record = ServedRecord {
        model: model.clone(),
        fallback_index: 0,
        price: model.as_deref().and_then(|m| state.governance.price(provider, m)),
        stream,
        request_body: log_content.then_some(&bytes[..]),
    };
    observe_served(&state, &obs, &served, record);
    // The upstream's own headers stay (the answer is relayed unchanged, streams included).
    let out_headers = answer_headers(&served, |_| true);
    let status = served.parts.status;
    let body = match served.body {
        ServedBody::Stream(start) => {
            let content_cap = log_content.then_some(state.log_content.max_bytes);
            let mode = RelayMode::PassThrough { client: shape };
            relay_body(
                &obs,
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
            observe_answer(&state, &obs, format, &answer, log_content);
            Body::from(answer)
        }
    };
    Ok(response(status, out_headers, body))
}

/// The client's request, byte for byte, with the client's credentials replaced by the stored key.
struct RawPassThrough {
    url: String,
    body: Bytes,
    forwarded: Vec<(HeaderName, HeaderValue)>,
    stream: bool,
}

impl UpstreamRequest for RawPassThrough {
    fn request_type(&self) -> &'static str {
        if self.stream {
            "passthrough_stream"
        } else {
            "passthrough"
        }
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
