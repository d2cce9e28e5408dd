//! Azure OpenAI routes: `POST /openai/deployments/{deployment}/chat/completions` and `/embeddings`
//! (`?api-version=...`)
//! with the `api-key` header. Azure answers like OpenAI once the request is accepted, so the body is
//! handled by the OpenAI chat implementation; what differs is checked here: the deployment path, the
//! required `api-version` query parameter and the `api-key` header (when the mock has a key, it must
//! match; a bearer token is not accepted), each with Azure's own error body.

use std::sync::Arc;

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};

use crate::handlers::{json, Reply};
use crate::state::Shared;

fn azure_error(status: StatusCode, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    json(status, body.to_string()).into()
}

/// `Some` when the request is an Azure route (answered here), `None` otherwise.
pub(crate) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: &Bytes) -> Option<Reply> {
    let rest = parts.uri.path().strip_prefix("/openai/deployments/")?;
    let (deployment, operation) = rest.split_once('/')?;
    if operation != "chat/completions" && operation != "embeddings" {
        return Some(azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"));
    }
    if parts.method != Method::POST {
        return Some(azure_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "405",
            "Method not allowed",
        ));
    }
    let api_version = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("api-version="));
    if api_version.is_none_or(str::is_empty) {
        return Some(azure_error(StatusCode::NOT_FOUND, "404", "Resource not found"));
    }
    let key = parts.headers.get("api-key").map(|v| v.as_bytes());
    let key_ok = match (&shared.api_key, key) {
        (_, None) => false,
        (Some(expected), Some(given)) => given == expected.as_bytes(),
        (None, Some(_)) => true,
    };
    if !key_ok {
        return Some(azure_error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        ));
    }
    if deployment.is_empty() || deployment == "missing" {
        return Some(azure_error(
            StatusCode::NOT_FOUND,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist.",
        ));
    }
    Some(match operation {
        "embeddings" => crate::completions::embeddings(body).await,
        _ => crate::completions::chat(shared, body).await,
    })
}
