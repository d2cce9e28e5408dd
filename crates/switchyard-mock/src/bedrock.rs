//! AWS Bedrock runtime routes: `POST /model/{modelId}/converse` and `/converse-stream`.
//!
//! Auth is checked like AWS does: either a Bedrock API key (`Authorization: Bearer`, which must equal
//! the mock's key when it has one) or a SigV4 signature, verified with the mock's own signer
//! ([`crate::sigv4`]) against the known test credentials: `x-amz-date` well-formed and matching the
//! credential scope, service `bedrock`, `host` and `x-amz-date` signed, the session token present and
//! signed for temporary credentials, and the signature itself recomputed. Request bodies are validated
//! as strictly as Bedrock does (no unknown top-level fields such as `model`, alternating roles starting
//! with `user`, non-empty content). Streams are real `application/vnd.amazon.eventstream` frames,
//! encoded here independently of the gateway's decoder.
//!
//! Modes by model id prefix: `tool` answers with a tool call, `throttle` is a 429
//! `ThrottlingException`, `startthrottle` is a 200 stream whose first frame is a `throttlingException`,
//! `midthrottle` streams some text then a `throttlingException` frame; anything else echoes the last
//! user text (`"echo: <text>"`).

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::body::MockBody;
use crate::completions::echo_text;
use crate::handlers::{json, Reply};
use crate::sigv4;
use crate::state::Shared;

const ALLOWED_FIELDS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
];

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Reply {
    let mut resp = json(status, json!({"message": message}).to_string());
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp.into()
}

fn validation(message: impl Into<String>) -> Reply {
    aws_error(StatusCode::BAD_REQUEST, "ValidationException", &message.into())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Some` when the request is a Bedrock route (answered here), `None` otherwise.
pub(crate) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: &Bytes) -> Option<Reply> {
    let rest = parts.uri.path().strip_prefix("/model/")?;
    let (raw_model, action) = rest.rsplit_once('/')?;
    let stream = match action {
        "converse" => false,
        "converse-stream" => true,
        _ => {
            return Some(aws_error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "Unknown operation",
            ))
        }
    };
    if parts.method != Method::POST {
        return Some(aws_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            "Method not allowed",
        ));
    }
    if let Err(reply) = check_auth(shared, parts, body) {
        return Some(*reply);
    }
    let model = percent_decode(raw_model);
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Some(validation(
                "Malformed input request, please reformat your input and try again.",
            ))
        }
    };
    if let Err(msg) = validate(&req) {
        return Some(validation(msg));
    }
    if model.starts_with("throttle") {
        return Some(aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ));
    }
    let user_text: String = req["messages"]
        .as_array()
        .and_then(|ms| ms.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_array())
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let input_tokens = user_text.split_whitespace().count().max(1) as u64;
    let tool = model.starts_with("tool");
    let text = echo_text(&user_text);
    let output_tokens = if tool {
        3
    } else {
        text.split_whitespace().count() as u64
    };
    let usage = json!({"inputTokens": input_tokens, "outputTokens": output_tokens,
                       "totalTokens": input_tokens + output_tokens});
    Some(if stream {
        converse_stream(shared, &model, tool, &text, usage)
    } else {
        converse(tool, &text, usage)
    })
}

/// A Converse answer: the tool call (`tool*` models) or the echo.
fn converse(tool: bool, text: &str, usage: Value) -> Reply {
    let content = if tool {
        json!([{"text": "Checking."}, {"toolUse": {"toolUseId": "tooluse_mock01", "name": "get_weather",
                                                   "input": {"city": "Berlin"}}}])
    } else {
        json!([{"text": text}])
    };
    let answer = json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": if tool { "tool_use" } else { "end_turn" },
        "usage": usage,
        "metrics": {"latencyMs": 1},
    });
    let mut resp = json(StatusCode::OK, answer.to_string());
    resp.headers_mut()
        .insert("x-amzn-requestid", HeaderValue::from_static("mock-request-id"));
    resp.into()
}

/// The throttling exception message of a stream.
fn throttled() -> Bytes {
    frame(
        &[
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": "Too many tokens, please wait before trying again."})
            .to_string()
            .as_bytes(),
    )
}

/// A ConverseStream answer; `startthrottle*` models are throttled before the first event,
/// `midthrottle*` models after the text.
fn converse_stream(shared: &Arc<Shared>, model: &str, tool: bool, text: &str, usage: Value) -> Reply {
    if model.starts_with("startthrottle") {
        return eventstream_response(MockBody::events(vec![throttled()], shared)).into();
    }
    let mut frames = vec![event("messageStart", json!({"role": "assistant"}))];
    if tool {
        frames.push(event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0,
            "start": {"toolUse": {"toolUseId": "tooluse_mock01", "name": "get_weather"}}}),
        ));
        for piece in ["{\"city\":", "\"Berlin\"}"] {
            frames.push(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0,
                "delta": {"toolUse": {"input": piece}}}),
            ));
        }
    } else {
        for w in text.split_inclusive(' ') {
            frames.push(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": w}}),
            ));
        }
        if model.starts_with("midthrottle") {
            frames.push(throttled());
            return eventstream_response(MockBody::events(frames, shared)).into();
        }
    }
    frames.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    frames.push(event(
        "messageStop",
        json!({"stopReason": if tool { "tool_use" } else { "end_turn" }}),
    ));
    frames.push(event(
        "metadata",
        json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    ));
    eventstream_response(MockBody::events(frames, shared)).into()
}

fn eventstream_response(body: MockBody) -> Response<MockBody> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    resp.headers_mut()
        .insert("x-amzn-requestid", HeaderValue::from_static("mock-request-id"));
    resp
}

fn event(kind: &str, payload: Value) -> Bytes {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// One event-stream message: prelude (total length, headers length, CRC32 of both), string headers
/// (type 7), payload, CRC32 of everything before.
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut hbytes = Vec::new();
    for (name, value) in headers {
        hbytes.push(name.len() as u8);
        hbytes.extend_from_slice(name.as_bytes());
        hbytes.push(7u8);
        hbytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        hbytes.extend_from_slice(value.as_bytes());
    }
    let total = (12 + hbytes.len() + payload.len() + 4) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(hbytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hbytes);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Bytes::from(out)
}

fn validate(req: &Value) -> Result<(), String> {
    let obj = req.as_object().expect("checked by the caller");
    for k in obj.keys() {
        if !ALLOWED_FIELDS.contains(&k.as_str()) {
            return Err(format!("Malformed input request: extraneous key [{k}] is not permitted, please reformat your input and try again."));
        }
    }
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("A conversation must start with a user message. Try again with a conversation that starts with a user message.")?;
    let mut expected = "user";
    let mut uses_tools = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if role != expected {
            return Err(if i == 0 {
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.".to_owned()
            } else {
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".to_owned()
            });
        }
        expected = if role == "user" { "assistant" } else { "user" };
        let content = m["content"].as_array().filter(|c| !c.is_empty()).ok_or_else(|| {
            format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again.")
        })?;
        for b in content {
            uses_tools |= b.get("toolUse").is_some() || b.get("toolResult").is_some();
        }
    }
    if uses_tools && obj.get("toolConfig").is_none() {
        return Err(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.".into(),
        );
    }
    if let Some(system) = obj.get("system") {
        if !system.is_array() {
            return Err("Malformed input request: #/system: expected type: JSONArray".into());
        }
    }
    Ok(())
}

fn forbidden(kind: &str, message: &str) -> Box<Reply> {
    Box::new(aws_error(StatusCode::FORBIDDEN, kind, message))
}

/// Bedrock's two ways in: a bearer API key, or a SigV4 signature checked like AWS does (credential
/// scope, signed headers, session token, then the signature itself).
fn check_auth(shared: &Shared, parts: &Parts, body: &Bytes) -> Result<(), Box<Reply>> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Err(forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return match &shared.api_key {
            Some(k) if token != &**k => Err(forbidden(
                "UnrecognizedClientException",
                "Invalid API Key format: Must start with pre-defined prefix",
            )),
            _ => Ok(()),
        };
    }
    let a = sigv4::parse_authorization(auth).map_err(|m| forbidden("IncompleteSignatureException", &m))?;
    let date = header("x-amz-date").ok_or_else(|| {
        forbidden(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    })?;
    let secret = check_credential(&a, date, header("x-amz-security-token"))?;
    let payload_hash = header("x-amz-content-sha256")
        .map(str::to_owned)
        .unwrap_or_else(|| sigv4::sha256_hex(body));
    verify_signature(parts, &a, date, secret, &payload_hash)
}

/// The credential scope, the headers that must be signed and the session token; the secret key of a
/// known access key.
fn check_credential(
    a: &sigv4::AuthHeader,
    date: &str,
    token: Option<&str>,
) -> Result<&'static str, Box<Reply>> {
    if !sigv4::is_amz_date(date) || !date.starts_with(&a.date) {
        return Err(forbidden(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP",
        ));
    }
    if a.service != "bedrock" {
        return Err(forbidden(
            "InvalidSignatureException",
            &format!(
                "Credential should be scoped to correct service: 'bedrock'. (got '{}')",
                a.service
            ),
        ));
    }
    for required in ["host", "x-amz-date"] {
        if !a.signed_headers.iter().any(|h| h == required) {
            return Err(forbidden(
                "InvalidSignatureException",
                &format!("'{required}' must be a signed header"),
            ));
        }
    }
    if token.is_some() && !a.signed_headers.iter().any(|h| h == "x-amz-security-token") {
        return Err(forbidden(
            "InvalidSignatureException",
            "'x-amz-security-token' must be a signed header",
        ));
    }
    let invalid_token = || {
        forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    if a.access_key == sigv4::MOCK_AWS_TEMP_ACCESS_KEY_ID && token != Some(sigv4::MOCK_AWS_SESSION_TOKEN) {
        return Err(invalid_token());
    }
    sigv4::secret_for(&a.access_key).ok_or_else(invalid_token)
}

/// Recomputes the signature over the signed headers and compares.
fn verify_signature(
    parts: &Parts,
    a: &sigv4::AuthHeader,
    date: &str,
    secret: &str,
    payload_hash: &str,
) -> Result<(), Box<Reply>> {
    let mut signed = Vec::new();
    for name in &a.signed_headers {
        let values: Vec<&str> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(forbidden(
                "InvalidSignatureException",
                &format!("signed header '{name}' is missing from the request"),
            ));
        }
        signed.push((name.clone(), values.join(",")));
    }
    let canonical = sigv4::canonical_request(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or_default(),
        &signed,
        payload_hash,
    );
    let scope = format!("{}/{}/{}/aws4_request", a.date, a.region, a.service);
    let sts = sigv4::string_to_sign(date, &scope, &canonical);
    let expected = sigv4::signature(secret, &a.date, &a.region, &a.service, &sts);
    if expected != a.signature {
        return Err(forbidden(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}
