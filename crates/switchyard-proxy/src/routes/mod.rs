//! Every inference route, in one table. Each handler enters the pipeline through
//! [`pipeline::drive`](crate::pipeline::drive) with its surface; what follows in each route module is
//! only what is its own (reading its request, building the upstream request, rendering the answer).
//!
//! `tests/inference_routes.rs` reads [`table`] (and the server's own routes) and checks every route against the real
//! server: no virtual key → 401 when one is required, a provider the key may not use → 403, an
//! admitted call → exactly one log row and one metric sample.

pub mod audio;
pub mod chat;
pub mod endpoints;
pub mod mcp;
pub mod models;
pub mod passthrough;
pub mod responses;
pub mod speech;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::ingress::Ingress;
use crate::pipeline::{drive, RouteSpec};
use audio::{AudioKind, AUDIO_MAX_BYTES};
use endpoints::{JsonEndpoint, JSON_ENDPOINTS};
use switchyard_runtime::state::AppState;

type S = State<Arc<AppState>>;

type Handler = MethodRouter<Arc<AppState>>;

/// Every inference route: its pattern and its handler. The router is built from this table alone, so
/// the route-table test (which reads it) sees every route that exists.
pub fn table() -> Vec<(String, Handler)> {
    let fixed: [(&str, Handler); 12] = [
        ("/v1/chat/completions", post(chat_unified)),
        ("/openai/v1/chat/completions", post(chat_openai)),
        ("/v1/models", get(models_unified)),
        ("/openai/v1/models", get(models_openai)),
        ("/anthropic/v1/messages", post(anthropic_messages)),
        ("/anthropic/v1/models", get(models_anthropic)),
        (
            "/anthropic/v1/messages/count_tokens",
            post(anthropic_count_tokens),
        ),
        ("/genai/v1beta/models/{*model_action}", post(genai)),
        ("/openai_passthrough/{*rest}", post(openai_passthrough)),
        ("/anthropic_passthrough/{*rest}", post(anthropic_passthrough)),
        ("/genai_passthrough/{*rest}", post(genai_passthrough)),
        ("/passthrough/{provider}/{*rest}", post(passthrough)),
    ];
    let mut table: Vec<(String, Handler)> = fixed.into_iter().map(|(p, h)| (p.to_owned(), h)).collect();
    for (prefix, ingress) in [("/v1", Ingress::Unified), ("/openai/v1", Ingress::OpenAi)] {
        for endpoint in &JSON_ENDPOINTS {
            let handler = post(move |s: S, req: Request| json_endpoint(s, req, ingress, endpoint));
            table.push((format!("{prefix}{}", endpoint.path), handler));
        }
        let handler = post(move |s: S, req: Request| responses(s, req, ingress));
        table.push((format!("{prefix}/responses"), handler));
        for kind in [AudioKind::Transcription, AudioKind::Translation] {
            let handler = post(move |s: S, req: Request| audio(s, req, ingress, kind));
            table.push((format!("{prefix}{}", kind.path()), handler));
        }
        let handler = post(move |s: S, req: Request| speech(s, req, ingress));
        table.push((format!("{prefix}{}", speech::SPEECH_PATH), handler));
    }
    table
}

/// The inference routes' patterns (for tests and tools).
pub fn patterns() -> Vec<String> {
    table().into_iter().map(|(p, _)| p).collect()
}

/// The inference routes, to merge into the server's router.
pub fn router() -> Router<Arc<AppState>> {
    table()
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(&path, handler)
        })
}

async fn chat_unified(State(s): S, req: Request) -> axum::response::Response {
    drive(s, RouteSpec::on(Ingress::Unified), req, chat::openai_chat).await
}

async fn chat_openai(State(s): S, req: Request) -> axum::response::Response {
    drive(s, RouteSpec::on(Ingress::OpenAi), req, chat::openai_chat).await
}

async fn models_unified(
    State(s): S,
    Query(q): Query<models::ModelsQuery>,
    req: Request,
) -> axum::response::Response {
    drive(s, RouteSpec::on(Ingress::Unified), req, |inc| {
        models::list_models(inc, q)
    })
    .await
}

async fn models_openai(
    State(s): S,
    Query(q): Query<models::ModelsQuery>,
    req: Request,
) -> axum::response::Response {
    drive(s, RouteSpec::on(Ingress::OpenAi), req, |inc| {
        models::list_models(inc, q)
    })
    .await
}

async fn models_anthropic(
    State(s): S,
    Query(q): Query<models::AnthropicModelsQuery>,
    req: Request,
) -> axum::response::Response {
    drive(s, RouteSpec::on(Ingress::Anthropic), req, |inc| {
        models::list_anthropic_models(inc, q)
    })
    .await
}

async fn anthropic_messages(State(s): S, req: Request) -> axum::response::Response {
    drive(
        s,
        RouteSpec::on(Ingress::Anthropic),
        req,
        chat::anthropic_messages,
    )
    .await
}

async fn anthropic_count_tokens(State(s): S, req: Request) -> axum::response::Response {
    drive(
        s,
        RouteSpec::on(Ingress::Anthropic),
        req,
        chat::anthropic_count_tokens,
    )
    .await
}

async fn genai(State(s): S, Path(rest): Path<String>, req: Request) -> axum::response::Response {
    drive(s, RouteSpec::on(Ingress::Gemini), req, |inc| {
        chat::genai_generate(inc, rest)
    })
    .await
}

async fn json_endpoint(
    s: S,
    req: Request,
    ingress: Ingress,
    endpoint: &'static JsonEndpoint,
) -> axum::response::Response {
    drive(s.0, RouteSpec::on(ingress), req, |inc| {
        endpoints::json_endpoint(inc, endpoint)
    })
    .await
}

async fn responses(s: S, req: Request, ingress: Ingress) -> axum::response::Response {
    drive(s.0, RouteSpec::on(ingress), req, responses::responses).await
}

async fn audio(s: S, req: Request, ingress: Ingress, kind: AudioKind) -> axum::response::Response {
    let spec = RouteSpec {
        ingress,
        body_limit: Some(AUDIO_MAX_BYTES),
    };
    drive(s.0, spec, req, |inc| audio::audio(inc, kind)).await
}

async fn speech(s: S, req: Request, ingress: Ingress) -> axum::response::Response {
    drive(s.0, RouteSpec::on(ingress), req, speech::speech).await
}

/// A fixed pass-through route names its provider; its refusals before the provider's own protocol is
/// known answer in that provider's shape.
async fn fixed_passthrough(
    s: S,
    req: Request,
    ingress: Ingress,
    provider: &str,
    rest: String,
) -> axum::response::Response {
    let provider = provider.to_owned();
    drive(s.0, RouteSpec::on(ingress), req, |inc| {
        passthrough::passthrough(inc, provider, rest)
    })
    .await
}

async fn openai_passthrough(s: S, Path(rest): Path<String>, req: Request) -> axum::response::Response {
    fixed_passthrough(s, req, Ingress::PassThrough, "openai", rest).await
}

async fn anthropic_passthrough(s: S, Path(rest): Path<String>, req: Request) -> axum::response::Response {
    fixed_passthrough(s, req, Ingress::Anthropic, "anthropic", rest).await
}

async fn genai_passthrough(s: S, Path(rest): Path<String>, req: Request) -> axum::response::Response {
    fixed_passthrough(s, req, Ingress::Gemini, "gemini", rest).await
}

async fn passthrough(
    State(s): S,
    Path((provider, rest)): Path<(String, String)>,
    req: Request,
) -> axum::response::Response {
    drive(s, RouteSpec::on(Ingress::PassThrough), req, |inc| {
        passthrough::passthrough(inc, provider, rest)
    })
    .await
}
