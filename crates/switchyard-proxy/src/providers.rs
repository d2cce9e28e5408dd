//! Provider-specific request details at the edge: Azure OpenAI deployment URLs and AWS SigV4 signing
//! for Bedrock. The URL logic itself is pure and lives in `switchyard_core::provider_keys`.
//!
//! SigV4 is done with `aws-sigv4`, AWS's own signer from the Rust SDK: canonicalisation (URI
//! double-encoding, header trimming, query ordering) is where hand-written signers go wrong, and the
//! crate is tested by AWS against the public SigV4 test suite, which the tests below replay.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderName, HeaderValue, Request, Uri};
use switchyard_core::provider_keys::{
    azure_deployment_url, bedrock_converse_url, bedrock_runtime_base, AwsCredentials,
};
use switchyard_core::routing::{RuntimeKey, RuntimeProvider};

use crate::answer::{ServedBody, StreamStart};
use switchyard_runtime::error::GatewayError;

/// The signing name of the Bedrock runtime API.
pub const BEDROCK_SERVICE: &str = "bedrock";

/// The Azure OpenAI URL for `operation` (e.g. `chat/completions`) of `model` with this key: the key's
/// endpoint (else the provider's base URL), the model's deployment, the key's `api-version`.
pub fn azure_url(provider: &RuntimeProvider, key: &RuntimeKey, model: &str, operation: &str) -> String {
    let cfg = key.config.azure_key_config.clone().unwrap_or_default();
    let endpoint = if cfg.endpoint.is_empty() {
        provider.base_url.as_str()
    } else {
        cfg.endpoint.as_str()
    };
    azure_deployment_url(endpoint, cfg.deployment_for(model), operation, cfg.api_version())
}

/// The URL of an OpenAI-style operation (`/chat/completions`, `/embeddings`, ...) for `model`: the
/// provider's base URL for OpenAI-compatible providers, the key's deployment URL for Azure. Endpoint
/// handlers that accept `WireApi::Azure` next to `WireApi::OpenAi` build their URL with this.
pub fn openai_style_url(provider: &RuntimeProvider, key: &RuntimeKey, model: &str, path: &str) -> String {
    if provider.config.wire() == switchyard_core::WireApi::Azure {
        azure_url(provider, key, model, path.trim_start_matches('/'))
    } else {
        switchyard_core::upstream_url::openai_endpoint(&provider.base_url, path)
    }
}

/// The Bedrock Converse URL of `model` with this key: the provider's `base_url` when configured (a
/// VPC endpoint, or a test mock), else the runtime host of the key's region.
pub fn bedrock_url(provider: &RuntimeProvider, key: &RuntimeKey, model: &str, stream: bool) -> String {
    let cfg = key.config.bedrock_key_config.clone().unwrap_or_default();
    let base = match provider.config.network_config.base_url.as_deref() {
        Some(b) => b.to_owned(),
        None => bedrock_runtime_base(cfg.region()),
    };
    bedrock_converse_url(&base, cfg.model_id_for(model), stream)
}

/// The `Host` header hyper will send for `uri` (host, plus the port when it is not the scheme's
/// default): the value that must be signed.
pub fn host_header(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    match uri.port_u16() {
        Some(p) if p != default_port => format!("{host}:{p}"),
        _ => host.to_owned(),
    }
}

/// The parts of an HTTP request that a SigV4 signature covers.
pub struct SignableParts<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// The headers to sign (at least `host`).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// What a signature adds to a request: `authorization`, `x-amz-date`, and `x-amz-security-token`
/// (temporary credentials) or `x-amz-content-sha256` when asked for.
pub fn sigv4_headers(
    req: SignableParts<'_>,
    creds: &AwsCredentials,
    service: &str,
    time: SystemTime,
    content_sha256_header: bool,
) -> Result<Vec<(String, String)>, String> {
    let identity = Credentials::new(
        creds.access_key_id.expose(),
        creds.secret_access_key.expose(),
        creds.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "switchyard",
    )
    .into();
    let mut settings = SigningSettings::default();
    if content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&creds.region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.url,
        req.headers.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    let (headers, _params) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

/// Signs an upstream Bedrock request in place (headers `host` and `content-type` are covered).
pub fn sign_bedrock(
    req: &mut Request<axum::body::Body>,
    body: &[u8],
    creds: &AwsCredentials,
    provider: &str,
) -> Result<(), GatewayError> {
    let failed = |reason: String| GatewayError::UpstreamUnreachable {
        provider: provider.to_owned(),
        reason: format!("the request could not be signed: {reason}"),
    };
    let url = req.uri().to_string();
    let host = host_header(req.uri());
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let added = sigv4_headers(
        SignableParts {
            method: req.method().as_str(),
            url: &url,
            headers: &[("host", &host), ("content-type", &content_type)],
            body,
        },
        creds,
        BEDROCK_SERVICE,
        SystemTime::now(),
        false,
    )
    .map_err(failed)?;
    for (name, value) in added {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| failed(e.to_string()))?;
        let mut value = HeaderValue::from_str(&value).map_err(|e| failed(e.to_string()))?;
        if name == http::header::AUTHORIZATION || name.as_str() == "x-amz-security-token" {
            value.set_sensitive(true);
        }
        req.headers_mut().insert(name, value);
    }
    Ok(())
}

/// Why a Bedrock stream could not be started.
pub enum StartError {
    Timeout,
    /// The connection failed or the stream is corrupt.
    Broken(String),
    /// The first message is an exception (e.g. `throttlingException`): a failure with the status
    /// Bedrock documents for it, so it is retried or falls back like a non-2xx answer.
    Exception {
        status: u16,
        error: GatewayError,
    },
}

/// Reads a Bedrock event stream up to its first complete message, which commits the stream. The bytes
/// read so far become the stream's first chunk; the translator decodes them again.
pub async fn first_eventstream_message(
    wire: switchyard_core::WireApi,
    key: &RuntimeKey,
    parts: http::response::Parts,
    mut body: hyper::body::Incoming,
    deadline: tokio::time::Instant,
    idle: std::time::Duration,
) -> Result<(http::response::Parts, ServedBody), StartError> {
    use http_body_util::BodyExt;
    use switchyard_translate::eventstream::{complete_message_len, EventStreamDecoder};
    let mut buf = bytes::BytesMut::new();
    let read = tokio::time::timeout_at(deadline, async {
        loop {
            match body.frame().await {
                None => return Err("the stream ended before its first event".to_owned()),
                Some(Err(e)) => return Err(format!("the stream failed before its first event: {e}")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                        match complete_message_len(&buf) {
                            Ok(Some(_)) => return Ok(()),
                            Ok(None) => {}
                            Err(e) => return Err(format!("the event stream is corrupt: {e}")),
                        }
                    }
                }
            }
        }
    })
    .await;
    match read {
        Err(_) => return Err(StartError::Timeout),
        Ok(Err(reason)) => return Err(StartError::Broken(reason)),
        Ok(Ok(())) => {}
    }
    let first = EventStreamDecoder::new()
        .push(&buf)
        .map_err(|e| StartError::Broken(format!("the event stream is corrupt: {e}")))?;
    if let Some(m) = first.first() {
        if m.header_str(":message-type") == Some("exception") {
            let kind = m
                .header_str(":exception-type")
                .unwrap_or("internalServerException");
            let status = switchyard_translate::bedrock_exception_status(kind).unwrap_or(500);
            let code = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            let error = crate::answer::upstream_error_for(wire, code, &m.payload, key);
            return Err(StartError::Exception { status, error });
        }
    }
    Ok((
        parts,
        ServedBody::Stream(StreamStart {
            first_events: vec![buf.freeze()],
            framer: switchyard_core::sse::SseFramer::new(),
            body,
            idle_timeout: idle,
        }),
    ))
}

#[cfg(test)]
mod tests {
    //! Replays cases of AWS's public SigV4 test suite (`aws-sig-v4-test-suite`): the request, the
    //! credentials `AKIDEXAMPLE` / `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, region `us-east-1`,
    //! service `service`, time 2015-08-30T12:36:00Z, and the published signature. (The canonical
    //! requests and strings-to-sign of the same cases are checked against the mock's independent
    //! signer in `switchyard-mock`.)
    use std::time::{Duration, UNIX_EPOCH};

    use switchyard_core::secret::Secret;

    use super::*;

    fn creds(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
            region: "us-east-1".into(),
        }
    }

    /// 2015-08-30T12:36:00Z
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The suite's body-less requests to `example.amazonaws.com`, signed with its credentials (and
    /// `token` as the session token) at its time.
    fn sign_bodiless(method: &str, url: &str, token: Option<&str>) -> Vec<(String, String)> {
        let parts = SignableParts {
            method,
            url,
            headers: &[("host", "example.amazonaws.com")],
            body: b"",
        };
        sigv4_headers(parts, &creds(token), "service", suite_time(), false).unwrap()
    }

    #[test]
    fn suite_get_vanilla() {
        let h = sign_bodiless("GET", "https://example.amazonaws.com/", None);
        assert_eq!(header(&h, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&h, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn suite_post_vanilla_query() {
        let h = sign_bodiless("POST", "https://example.amazonaws.com/?Param1=value1", None);
        assert!(header(&h, "authorization")
            .unwrap()
            .ends_with("Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"));
    }

    #[test]
    fn suite_get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let h = sign_bodiless("GET", "https://example.amazonaws.com/", Some(token));
        assert_eq!(header(&h, "x-amz-security-token"), Some(token));
        let auth = header(&h, "authorization").unwrap();
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert!(
            auth.ends_with("Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"),
            "{auth}"
        );
    }

    #[test]
    fn suite_post_x_www_form_urlencoded_signs_the_body() {
        let h = sigv4_headers(
            SignableParts {
                method: "POST",
                url: "https://example.amazonaws.com/",
                headers: &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("host", "example.amazonaws.com"),
                    ("content-length", "13"),
                ],
                body: b"Param1=value1",
            },
            &creds(None),
            "service",
            suite_time(),
            true,
        )
        .unwrap();
        assert_eq!(
            header(&h, "x-amz-content-sha256"),
            Some("9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")
        );
        assert!(header(&h, "authorization")
            .unwrap()
            .ends_with("Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"));
    }

    fn runtime(provider: &str, key: &str) -> switchyard_core::routing::RuntimeConfig {
        use switchyard_core::config::{KeyInput, ProviderInput};
        let p = serde_json::from_str::<ProviderInput>(provider)
            .unwrap()
            .into_new_provider()
            .unwrap();
        let k = serde_json::from_str::<KeyInput>(key)
            .unwrap()
            .into_new_key(&p, "k1".into())
            .unwrap();
        switchyard_core::routing::RuntimeConfig::build(vec![(p, vec![k])], |_| None)
    }

    #[test]
    fn openai_style_urls_for_openai_compatible_and_azure_providers() {
        let rc = runtime(
            r#"{"provider":"azure"}"#,
            r#"{"name":"a","value":"k","azure_key_config":{"endpoint":"https://r.openai.azure.com","deployments":{"text-embedding-3-small":"emb"}}}"#,
        );
        let p = rc.provider("azure").unwrap();
        assert_eq!(
            openai_style_url(p, &p.keys[0], "text-embedding-3-small", "/embeddings"),
            "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
        let rc = runtime(r#"{"provider":"groq"}"#, r#"{"name":"g","value":"k"}"#);
        let p = rc.provider("groq").unwrap();
        assert_eq!(
            openai_style_url(p, &p.keys[0], "m", "/embeddings"),
            "https://api.groq.com/openai/v1/embeddings"
        );
    }

    #[test]
    fn bedrock_urls_use_the_key_region_unless_a_base_url_is_set() {
        let key = r#"{"name":"b","bedrock_key_config":{"access_key":"A","secret_key":"S","region":"eu-west-3","deployments":{"claude":"anthropic.claude-v2:1"}}}"#;
        let rc = runtime(r#"{"provider":"bedrock"}"#, key);
        let p = rc.provider("bedrock").unwrap();
        assert_eq!(
            bedrock_url(p, &p.keys[0], "claude", true),
            "https://bedrock-runtime.eu-west-3.amazonaws.com/model/anthropic.claude-v2%3A1/converse-stream"
        );
        let rc = runtime(
            r#"{"provider":"bedrock","network_config":{"base_url":"https://vpce-1.bedrock-runtime.eu-west-3.vpce.amazonaws.com"}}"#,
            key,
        );
        let p = rc.provider("bedrock").unwrap();
        assert!(bedrock_url(p, &p.keys[0], "other", false)
            .starts_with("https://vpce-1.bedrock-runtime.eu-west-3.vpce.amazonaws.com/model/other/converse"));
    }

    #[test]
    fn host_header_matches_what_hyper_sends() {
        assert_eq!(
            host_header(&"http://127.0.0.1:8123/x".parse().unwrap()),
            "127.0.0.1:8123"
        );
        assert_eq!(
            host_header(
                &"https://bedrock-runtime.us-east-1.amazonaws.com:443/x"
                    .parse()
                    .unwrap()
            ),
            "bedrock-runtime.us-east-1.amazonaws.com"
        );
    }
}
