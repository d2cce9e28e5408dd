//! Routing and the endpoint implementations.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::body::MockBody;
use crate::completions::{chat, completions, embeddings};
use crate::openai::{self, *};
use crate::state::{Endpoint, Shared};
use crate::{anthropic, gemini, RecordedRequest};

/// What the connection should do with a request.
pub(crate) enum Reply {
    Response(Response<MockBody>),
    /// Close the connection without answering.
    Reset,
}

impl From<Response<MockBody>> for Reply {
    fn from(r: Response<MockBody>) -> Self {
        Reply::Response(r)
    }
}

/// The wire API a route belongs to: decides the auth scheme and the error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
    Gemini,
}

enum Route<'a> {
    Endpoint(Endpoint),
    Model(&'a str),
    /// `GET /v1beta/models`.
    GeminiModels,
    /// `POST /v1beta/models/{model}:generateContent` / `:streamGenerateContent`.
    Gemini {
        model: &'a str,
        stream: bool,
    },
    MethodNotAllowed(&'static str, Api),
    NotFound(Api),
}

fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let (endpoint, allowed) = match path {
        "/v1/chat/completions" => (Endpoint::Chat, Method::POST),
        "/v1/completions" => (Endpoint::Completions, Method::POST),
        "/v1/embeddings" => (Endpoint::Embeddings, Method::POST),
        "/v1/audio/transcriptions" => (Endpoint::Transcriptions, Method::POST),
        "/v1/audio/translations" => (Endpoint::Translations, Method::POST),
        "/v1/audio/speech" => (Endpoint::Speech, Method::POST),
        "/v1/rerank" => (Endpoint::Rerank, Method::POST),
        "/v1/responses" => (Endpoint::Responses, Method::POST),
        "/v1/models" => (Endpoint::Models, Method::GET),
        "/v1/messages" => (Endpoint::Messages, Method::POST),
        "/v1/messages/count_tokens" => (Endpoint::CountTokens, Method::POST),
        _ if path.starts_with("/v1/messages/") => return Route::NotFound(Api::Anthropic),
        _ if path == "/v1beta" || path.starts_with("/v1beta/") => return gemini_route(method, path),
        _ => {
            return match path.strip_prefix("/v1/models/") {
                Some(id) if !id.is_empty() && *method == Method::GET => Route::Model(id),
                Some(id) if !id.is_empty() => Route::MethodNotAllowed("GET", Api::OpenAi),
                _ => Route::NotFound(Api::OpenAi),
            };
        }
    };
    let api = match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => Api::Anthropic,
        _ => Api::OpenAi,
    };
    if *method == allowed {
        Route::Endpoint(endpoint)
    } else if allowed == Method::GET {
        Route::MethodNotAllowed("GET", api)
    } else {
        Route::MethodNotAllowed("POST", api)
    }
}

fn gemini_route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    if path == "/v1beta/models" {
        return if *method == Method::GET {
            Route::GeminiModels
        } else {
            Route::MethodNotAllowed("GET", Api::Gemini)
        };
    }
    let Some((model, action)) = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.rsplit_once(':'))
    else {
        return Route::NotFound(Api::Gemini);
    };
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return Route::NotFound(Api::Gemini),
    };
    if model.is_empty() || model.contains('/') {
        Route::NotFound(Api::Gemini)
    } else if *method != Method::POST {
        Route::MethodNotAllowed("POST", Api::Gemini)
    } else {
        Route::Gemini { model, stream }
    }
}

/// The value of query parameter `name` (not percent-decoded).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if let Some(reply) = control(&shared, &parts.method, path) {
        return reply;
    }

    let route = route(&parts.method, path);
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                flat_error("Could not read the request body", None),
            )
            .into()
        }
    };
    if shared.record {
        record(&shared, &parts, &body);
    }
    count(&shared, &route);
    // `GET /v1/models[/{id}]` answers in Anthropic's shape (and takes Anthropic auth) when the request
    // carries `anthropic-version`.
    let anthropic_models = matches!(route, Route::Endpoint(Endpoint::Models) | Route::Model(_))
        && parts.headers.contains_key(ANTHROPIC_VERSION);
    let api = match route {
        Route::Endpoint(Endpoint::Messages | Endpoint::CountTokens) => Api::Anthropic,
        Route::Gemini { .. } | Route::GeminiModels => Api::Gemini,
        Route::MethodNotAllowed(_, api) | Route::NotFound(api) => api,
        _ if anthropic_models => Api::Anthropic,
        _ => Api::OpenAi,
    };

    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    if let Some(reply) = auth_refusal(&shared, &parts, api) {
        return reply;
    }
    if matches!(route, Route::Endpoint(Endpoint::Messages | Endpoint::CountTokens))
        && !parts.headers.contains_key(ANTHROPIC_VERSION)
    {
        return anthropic::missing_version().into();
    }

    if let Some(reply) = crate::azure::handle(&shared, &parts, &body).await {
        return reply;
    }
    if let Some(reply) = crate::bedrock::handle(&shared, &parts, &body).await {
        return reply;
    }
    match route {
        Route::Endpoint(Endpoint::Models) if anthropic_models => anthropic::models().into(),
        Route::Model(id) if anthropic_models => anthropic::model(id).into(),
        Route::Endpoint(Endpoint::Responses)
            if shared.chat_only.load(std::sync::atomic::Ordering::Relaxed) =>
        {
            // vLLM without the Responses API: FastAPI's plain 404.
            json(
                StatusCode::NOT_FOUND,
                bytes::Bytes::from_static(br#"{"detail":"Not Found"}"#),
            )
            .into()
        }
        Route::Endpoint(ep) => endpoint(&shared, ep, &parts, &body).await,
        Route::GeminiModels => gemini::models().into(),
        Route::Gemini { model, stream } => {
            let sse = query_param(parts.uri.query(), "alt") == Some("sse");
            gemini::generate(&shared, model, stream, sse, &body).await
        }
        Route::Model(id) => model(id).into(),
        Route::MethodNotAllowed(allow, api) => not_allowed(allow, api).into(),
        Route::NotFound(api) => not_found(api, &parts.method, path).into(),
    }
}

/// The mock's own control endpoints (`/__calls`, `/__requests/last`); `None` for every other path.
fn control(shared: &Shared, method: &Method, path: &str) -> Option<Reply> {
    let reply = match path {
        "/__calls" => match *method {
            Method::GET => json(StatusCode::OK, calls_body(shared)),
            Method::DELETE => {
                shared.reset();
                let mut resp = Response::new(MockBody::Empty);
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
            _ => method_not_allowed("GET, DELETE"),
        },
        "/__requests/last" => match *method {
            Method::GET => match shared.records.lock().unwrap_or_else(|e| e.into_inner()).back() {
                Some(rec) => json(StatusCode::OK, rec.to_json().to_string()),
                None => json(
                    StatusCode::NOT_FOUND,
                    Bytes::from_static(b"{\"error\":\"no request recorded\"}"),
                ),
            },
            _ => method_not_allowed("GET"),
        },
        _ => return None,
    };
    Some(reply.into())
}

fn record(shared: &Shared, parts: &Parts, body: &Bytes) {
    shared.push_record(RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |pq| pq.as_str())
            .to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    });
}

/// Counts the call by endpoint (`/__calls`).
fn count(shared: &Shared, route: &Route<'_>) {
    match route {
        Route::Endpoint(ep) => shared.count(*ep),
        Route::Model(_) | Route::GeminiModels => shared.count(Endpoint::Models),
        Route::Gemini { .. } => shared.count(Endpoint::Generate),
        Route::MethodNotAllowed(..) | Route::NotFound(_) => {}
    }
}

/// When the mock was given a key, checks it in the API's own way: a bearer token on `/v1` (OpenAI),
/// `x-api-key` or a bearer token (Anthropic), `x-goog-api-key` or `?key=` (Gemini). `Some` is the
/// refusal.
fn auth_refusal(shared: &Shared, parts: &Parts, api: Api) -> Option<Reply> {
    let (Some(expected), Some(key)) = (&shared.expected_auth, &shared.api_key) else {
        return None;
    };
    let path = parts.uri.path();
    let bearer_ok = parts
        .headers
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == &expected[..]);
    match api {
        Api::OpenAi if (path == "/v1" || path.starts_with("/v1/")) && !bearer_ok => {
            Some(unauthorized().into())
        }
        Api::OpenAi => None,
        Api::Anthropic => {
            let key_ok = parts
                .headers
                .get(X_API_KEY)
                .is_some_and(|v| v.as_bytes() == key.as_bytes());
            (!key_ok && !bearer_ok).then(|| anthropic::unauthorized().into())
        }
        Api::Gemini => {
            let given = parts
                .headers
                .get(X_GOOG_API_KEY)
                .map(HeaderValue::as_bytes)
                .or_else(|| query_param(parts.uri.query(), "key").map(str::as_bytes));
            (given != Some(key.as_bytes())).then(|| gemini::auth_error(given.is_some()).into())
        }
    }
}

async fn endpoint(shared: &Arc<Shared>, ep: Endpoint, parts: &Parts, body: &Bytes) -> Reply {
    match ep {
        Endpoint::Models => json(StatusCode::OK, shared.models_body.clone()).into(),
        Endpoint::Chat => chat(shared, body).await,
        Endpoint::Completions => completions(shared, body).await,
        Endpoint::Embeddings => embeddings(body).await,
        Endpoint::Transcriptions | Endpoint::Translations => {
            let ct = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
            crate::extra::audio(shared, ep == Endpoint::Translations, ct, body).await
        }
        Endpoint::Rerank => crate::extra::rerank(shared, body).await,
        Endpoint::Responses => crate::extra::responses(shared, body).await,
        Endpoint::Speech => crate::speech::speech(shared, body).await,
        Endpoint::Messages => anthropic::messages(shared, body).await,
        Endpoint::CountTokens => anthropic::count_tokens(body),
        Endpoint::Generate => unreachable!("Gemini requests route as Route::Gemini"),
    }
}

/// `GET /v1/models/{id}` in OpenAI's shape.
fn model(id: &str) -> Response<MockBody> {
    match MODEL_IDS.iter().find(|m| **m == id) {
        Some(id) => json(StatusCode::OK, to_json(&model_object(id))),
        None => json(
            StatusCode::NOT_FOUND,
            openai_error(
                &format!("The model `{id}` does not exist."),
                "invalid_request_error",
                Some("model"),
                Some("model_not_found"),
            ),
        ),
    }
}

/// A 405 in the route's API's error shape.
fn not_allowed(allow: &'static str, api: Api) -> Response<MockBody> {
    let mut resp = match api {
        Api::OpenAi => return method_not_allowed(allow),
        Api::Anthropic => anthropic::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "Method Not Allowed",
        ),
        Api::Gemini => gemini::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "INVALID_ARGUMENT",
            "Method Not Allowed",
        ),
    };
    resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A 404 in the API's error shape.
fn not_found(api: Api, method: &Method, path: &str) -> Response<MockBody> {
    match api {
        Api::Anthropic => anthropic::error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("Not found: {method} {path}"),
        ),
        Api::Gemini => gemini::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Requested entity was not found: {method} {path}"),
        ),
        Api::OpenAi => json(
            StatusCode::NOT_FOUND,
            openai_error(
                &format!("Invalid URL ({method} {path})"),
                "invalid_request_error",
                None,
                None,
            ),
        ),
    }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serializing a response cannot fail")
}

fn calls_body(shared: &Shared) -> Vec<u8> {
    format!(
        r#"{{"chat":{},"models":{},"embeddings":{},"completions":{},"messages":{},"count_tokens":{},"generate":{},"transcriptions":{},"translations":{},"rerank":{},"responses":{},"speech":{}}}"#,
        shared.calls(Endpoint::Chat),
        shared.calls(Endpoint::Models),
        shared.calls(Endpoint::Embeddings),
        shared.calls(Endpoint::Completions),
        shared.calls(Endpoint::Messages),
        shared.calls(Endpoint::CountTokens),
        shared.calls(Endpoint::Generate),
        shared.calls(Endpoint::Transcriptions),
        shared.calls(Endpoint::Translations),
        shared.calls(Endpoint::Rerank),
        shared.calls(Endpoint::Responses),
        shared.calls(Endpoint::Speech),
    )
    .into_bytes()
}

const ANTHROPIC_VERSION: &str = "anthropic-version";
const X_API_KEY: &str = "x-api-key";
const X_GOOG_API_KEY: &str = "x-goog-api-key";

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn sse_response(body: MockBody) -> Response<MockBody> {
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// 200 with a `content-length` that promises more than is sent; the connection is then aborted.
pub(crate) fn truncated(body: Vec<u8>) -> Response<MockBody> {
    let full_len = body.len();
    let mut bytes = Bytes::from(body);
    bytes.truncate(full_len / 2);
    let mut resp = Response::new(MockBody::Truncated {
        data: Some(bytes),
        paused: false,
    });
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(full_len));
    resp
}

pub(crate) fn bad_request(message: &str, param: Option<&str>) -> Reply {
    json(StatusCode::BAD_REQUEST, openai::flat_error(message, param)).into()
}

pub(crate) fn unauthorized() -> Response<MockBody> {
    json(
        StatusCode::UNAUTHORIZED,
        Bytes::from_static(br#"{"error":"Unauthorized"}"#),
    )
}

fn method_not_allowed(allow: &'static str) -> Response<MockBody> {
    let mut resp = json(
        StatusCode::METHOD_NOT_ALLOWED,
        openai_error("Method Not Allowed", "invalid_request_error", None, None),
    );
    resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    resp
}
