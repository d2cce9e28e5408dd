//! The embedding a semantic cache lookup compares: the prompt's text sent to the plugin's
//! `provider/embedding_model` through the pipeline's own plan and dispatch, under the caller's
//! admission (its key restrictions apply; a call its key may not make leaves the lookup exact-only).

use axum::body::Body;
use http::Method;
use switchyard_core::request_type::RequestType;
use switchyard_core::routing::{RuntimeKey, Target};
use switchyard_core::WireApi;

use super::dispatch::UpstreamRequest;
use super::Admitted;
use crate::answer::ServedBody;
use switchyard_runtime::error::GatewayError;
use switchyard_runtime::upstream::UpstreamCall;

struct EmbedRequest<'a> {
    input: &'a str,
    client_headers: &'a http::HeaderMap,
}

impl UpstreamRequest for EmbedRequest<'_> {
    fn request_type(&self) -> RequestType {
        RequestType::Embedding
    }

    fn supports(&self, wire: WireApi) -> bool {
        matches!(wire, WireApi::OpenAi | WireApi::Azure)
    }

    fn build(&mut self, target: &Target<'_>, key: &RuntimeKey) -> Result<http::Request<Body>, GatewayError> {
        let body =
            serde_json::json!({"model": target.model, "input": self.input, "encoding_format": "float"});
        UpstreamCall {
            provider: target.provider,
            key: Some(key),
            method: Method::POST,
            url: crate::providers::openai_style_url(target.provider, key, target.model, "/embeddings"),
            accept_sse: false,
            client_headers: self.client_headers,
            protocol_headers: Vec::new(),
        }
        .build(Body::from(body.to_string()))
    }
}

/// The embedding of `text` by `model` (`provider/model`); `None` (logged) when it cannot be had.
pub(super) async fn embed(adm: &Admitted, model: &str, text: &str) -> Option<Vec<f32>> {
    let plan = adm
        .plan_with(|config, rng| Ok(config.plan(model, None, &[], rng)?))
        .await;
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(model, error = %e.error, "semantic cache: no usable embedding model; exact lookup only");
            return None;
        }
    };
    let mut request = EmbedRequest {
        input: text,
        client_headers: adm.headers(),
    };
    let served = match adm.dispatch(&plan, &mut request).await {
        Ok(s) => s,
        Err(f) => {
            tracing::warn!(model, error = %f.error, "semantic cache: embedding failed; exact lookup only");
            return None;
        }
    };
    let ServedBody::Json(bytes) = served.body else {
        return None;
    };
    drop(served.permit);
    parse_embedding(&bytes)
}

/// `data[0].embedding` of an OpenAI embeddings answer, as floats.
fn parse_embedding(answer: &[u8]) -> Option<Vec<f32>> {
    let v: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let list = v.get("data")?.get(0)?.get("embedding")?.as_array()?;
    let out: Vec<f32> = list.iter().filter_map(|x| x.as_f64().map(|f| f as f32)).collect();
    (out.len() == list.len() && !out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::parse_embedding;

    #[test]
    fn reads_the_first_embedding() {
        let a = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1,2]}]}"#;
        assert_eq!(parse_embedding(a), Some(vec![0.5, -1.0, 2.0]));
        assert_eq!(parse_embedding(br#"{"data":[{"embedding":"AAAA"}]}"#), None);
        assert_eq!(parse_embedding(b"not json"), None);
    }
}
