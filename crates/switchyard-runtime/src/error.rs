//! The gateway's error type and its one mapping to HTTP.
//!
//! Every failure a client can see is a [`GatewayError`]; [`ApiError`] adds the request context Bifrost
//! puts in `extra_fields`. `IntoResponse` for `ApiError` is the only place where errors become status
//! codes and bodies, so the shape is identical on every route.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_core::governance::LimitKind;
use switchyard_core::json_fields::JsonBodyError;
use switchyard_core::routing::RoutingError;
use switchyard_core::text::{clip, MAX_LOGGED_ERROR};
use switchyard_core::ValidationError;
use switchyard_store::StoreError;
use switchyard_translate::{default_type_for_status, ErrorDetail};

use switchyard_translate::canonical::ErrorInfo;
use switchyard_translate::Protocol;

use switchyard_core::request_type::RequestType;

use crate::trail::AttemptRecord;

/// What the observer learns about an error answer, carried in the response's extensions.
#[derive(Clone, Debug)]
pub struct ErrorSummary {
    pub error_type: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{message}")]
    BadRequest { message: String, param: Option<String> },
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("{message}")]
    NotFound {
        message: String,
        code: Option<&'static str>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit of {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No valid credentials: admin credentials on the admin surface (`/api/*`, `/metrics`, the UI), or
    /// a missing/unknown virtual key on inference (governance). `code` says which.
    #[error("{message}")]
    Unauthorized { message: String, code: &'static str },
    /// Authenticated (or open) but refused: missing CSRF token, cross-site request, foreign `Host`;
    /// or a virtual key that may not do this (inactive, expired, provider or model not allowed).
    #[error("{message}")]
    Forbidden { message: String, code: &'static str },
    #[error("request headers are larger than the limit of {limit_bytes} bytes")]
    HeadersTooLarge { limit_bytes: usize },
    #[error("the request has more than {limit} headers")]
    TooManyHeaders { limit: usize },
    #[error("the request body was not received within {secs} s")]
    BodyTimeout { secs: u64 },
    #[error("{0}")]
    Routing(#[from] RoutingError),
    #[error("provider '{provider}' does not allow '{request_type}' requests (custom_provider_config.allowed_requests)")]
    RequestTypeNotAllowed {
        provider: String,
        request_type: RequestType,
    },
    #[error("{0}")]
    NotImplemented(String),
    /// No target could take the request (all ejected, at capacity, or without usable keys).
    #[error("{0}")]
    Unavailable(String),
    #[error(
        "provider '{provider}' did not answer within {timeout_secs} s; raise \
         network_config.default_request_timeout_in_seconds if the model needs longer"
    )]
    UpstreamTimeout { provider: String, timeout_secs: u64 },
    #[error("could not reach provider '{provider}': {reason}")]
    UpstreamUnreachable { provider: String, reason: String },
    /// The upstream answered something the gateway will not relay (too large, a 1xx/3xx status).
    #[error("provider '{provider}' {reason}")]
    UpstreamInvalid {
        provider: String,
        reason: String,
        code: &'static str,
    },
    /// An error answer from the upstream, normalised; its status is passed on.
    #[error("{}", detail.message)]
    Upstream { status: StatusCode, detail: ErrorDetail },
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Too many failed admin credentials from this source (or from everyone): refused without
    /// checking, until `retry_after_secs` have passed.
    #[error("{message}")]
    TooManyAttempts { message: String, retry_after_secs: u64 },
    /// A guardrail refused the request or the answer (400 `guardrail_blocked`).
    #[error("{message}")]
    GuardrailBlocked { message: String },
    /// A guardrail webhook failed and its `on_error` is `block` (503 `guardrail_unavailable`).
    #[error("{message}")]
    GuardrailUnavailable { message: String },
    /// Governance: a budget (402), rate limit or concurrency limit (429) has no room.
    #[error("{}", .0.message())]
    Limited(switchyard_core::governance::Rejection),
}

impl From<JsonBodyError> for GatewayError {
    fn from(e: JsonBodyError) -> Self {
        let param = match &e {
            JsonBodyError::FieldType { field, .. } => Some((*field).to_owned()),
            JsonBodyError::DuplicateField(field) => Some(field.clone()),
            _ => None,
        };
        GatewayError::BadRequest {
            message: e.to_string(),
            param,
        }
    }
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest { .. } | GatewayError::Validation(_) => StatusCode::BAD_REQUEST,
            GatewayError::Routing(RoutingError::BadFallback { .. }) => StatusCode::BAD_REQUEST,
            GatewayError::Routing(RoutingError::KeyMisconfigured { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::NotFound { .. } | GatewayError::Routing(_) => StatusCode::NOT_FOUND,
            GatewayError::Conflict(_) => StatusCode::CONFLICT,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::HeadersTooLarge { .. } | GatewayError::TooManyHeaders { .. } => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            GatewayError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::RequestTypeNotAllowed { .. } => StatusCode::FORBIDDEN,
            GatewayError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Unavailable(_) | GatewayError::GuardrailUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            GatewayError::GuardrailBlocked { .. } => StatusCode::BAD_REQUEST,
            GatewayError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::UpstreamUnreachable { .. } | GatewayError::UpstreamInvalid { .. } => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::Upstream { status, .. } => *status,
            GatewayError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            GatewayError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            GatewayError::Store(StoreError::ReadOnly) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            GatewayError::Limited(r) if r.kind == LimitKind::Budget => StatusCode::PAYMENT_REQUIRED,
            GatewayError::Limited(_) | GatewayError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn detail(&self) -> ErrorDetail {
        let status = self.status().as_u16();
        let (error_type, param, code): (&str, Option<String>, Option<&str>) = match self {
            GatewayError::Upstream { detail, .. } => return detail.clone(),
            GatewayError::BadRequest { param, .. } => ("invalid_request_error", param.clone(), None),
            GatewayError::Validation(v) => ("invalid_request_error", Some(v.field.clone()), None),
            GatewayError::NotFound { code, .. } => ("invalid_request_error", None, *code),
            GatewayError::Routing(RoutingError::ProviderNotConfigured { .. }) => (
                "invalid_request_error",
                Some("model".into()),
                Some("provider_not_configured"),
            ),
            GatewayError::Routing(RoutingError::KeyMisconfigured { .. }) => {
                ("server_error", None, Some("provider_key_misconfigured"))
            }
            GatewayError::Routing(RoutingError::BadFallback { index, .. }) => {
                ("invalid_request_error", Some(format!("fallbacks[{index}]")), None)
            }
            GatewayError::Routing(_) => (
                "invalid_request_error",
                Some("model".into()),
                Some("model_not_found"),
            ),
            GatewayError::Conflict(_) | GatewayError::Store(StoreError::Conflict(_)) => {
                ("invalid_request_error", None, Some("conflict"))
            }
            GatewayError::Store(StoreError::ReadOnly) => {
                ("invalid_request_error", None, Some("config_read_only"))
            }
            GatewayError::PayloadTooLarge { .. } => {
                ("invalid_request_error", None, Some("request_too_large"))
            }
            GatewayError::HeadersTooLarge { .. } => {
                ("invalid_request_error", None, Some("request_headers_too_large"))
            }
            GatewayError::TooManyHeaders { .. } => {
                ("invalid_request_error", None, Some("too_many_request_headers"))
            }
            GatewayError::BodyTimeout { .. } => ("timeout_error", None, Some("request_body_timeout")),
            GatewayError::RequestTypeNotAllowed { .. } => {
                ("permission_error", None, Some("request_type_blocked"))
            }
            GatewayError::NotImplemented(_) => ("invalid_request_error", None, Some("not_implemented")),
            GatewayError::Unavailable(_) => ("server_error", None, Some("provider_unavailable")),
            GatewayError::GuardrailBlocked { .. } => {
                ("invalid_request_error", None, Some("guardrail_blocked"))
            }
            GatewayError::GuardrailUnavailable { .. } => {
                ("server_error", None, Some("guardrail_unavailable"))
            }
            GatewayError::UpstreamTimeout { .. } => ("timeout_error", None, Some("request_timed_out")),
            GatewayError::UpstreamUnreachable { .. } => ("server_error", None, Some("upstream_unreachable")),
            GatewayError::UpstreamInvalid { code, .. } => ("server_error", None, Some(*code)),
            GatewayError::Unauthorized { code, .. } => ("authentication_error", None, Some(*code)),
            GatewayError::Forbidden { code, .. } => ("permission_error", None, Some(*code)),
            GatewayError::TooManyAttempts { .. } => ("rate_limit_error", None, Some("login_throttled")),
            GatewayError::Limited(r) => match r.kind {
                LimitKind::Budget => ("budget_exceeded", None, Some("budget_exceeded")),
                LimitKind::Requests => ("rate_limit_error", None, Some("rate_limit_exceeded")),
                LimitKind::Tokens => ("rate_limit_error", None, Some("token_limit_exceeded")),
                LimitKind::Concurrency | LimitKind::Reserved => {
                    ("rate_limit_error", None, Some("concurrency_limit_exceeded"))
                }
            },
            _ => (default_type_for_status(status), None, None),
        };
        ErrorDetail {
            message: self.to_string(),
            error_type: error_type.to_owned(),
            param,
            code: code.map(str::to_owned),
        }
    }
}

/// Request context echoed in an error's `extra_fields`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ErrorContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_requested: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_type: Option<RequestType>,
    /// The routing trail: every attempt and skipped target, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptRecord>,
    /// Set when the gateway already retried and fell back as far as it could: the answer then tells
    /// SDK clients not to retry on their own (`x-should-retry: false`), which would multiply load.
    #[serde(skip)]
    pub gateway_retried: bool,
}

#[derive(Debug)]
pub struct ApiError {
    pub error: GatewayError,
    pub context: ErrorContext,
    /// The client's protocol: errors answer in its own shape.
    pub shape: Protocol,
}

impl<E: Into<GatewayError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError {
            error: e.into(),
            context: ErrorContext::default(),
            shape: Protocol::OpenAi,
        }
    }
}

#[derive(Serialize)]
struct ErrorResponseBody<'a> {
    is_bifrost_error: bool,
    status_code: u16,
    error: ErrorDetail,
    /// A budget refusal's amounts, apart: spent by settled calls, reserved by calls in flight, limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<BudgetRefusal>,
    #[serde(skip_serializing_if = "is_empty_context")]
    extra_fields: &'a ErrorContext,
}

#[derive(Serialize)]
struct BudgetRefusal {
    level: switchyard_core::governance::Level,
    name: String,
    reset_duration: Option<String>,
    spent: f64,
    reserved: f64,
    limit: f64,
    currency: String,
    resets_in_seconds: u64,
}

impl BudgetRefusal {
    fn of(error: &GatewayError) -> Option<BudgetRefusal> {
        use switchyard_core::governance::admission::nanos_to_usd;
        let GatewayError::Limited(r) = error else {
            return None;
        };
        (r.kind == LimitKind::Budget).then(|| BudgetRefusal {
            level: r.level,
            name: r.level_name.clone(),
            reset_duration: r.duration.map(|d| d.to_string()),
            spent: nanos_to_usd(r.spent()),
            reserved: nanos_to_usd(r.reserved),
            limit: nanos_to_usd(r.max),
            currency: r.currency.code().to_owned(),
            resets_in_seconds: r.retry_after_secs,
        })
    }
}

fn is_empty_context(c: &&ErrorContext) -> bool {
    c.provider.is_none() && c.model_requested.is_none() && c.request_type.is_none() && c.attempts.is_empty()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        if status.is_server_error() {
            let error = self.error.to_string();
            let error = clip(&error, MAX_LOGGED_ERROR);
            tracing::warn!(status = status.as_u16(), error = %error, provider = ?self.context.provider, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %clip(&self.error.to_string(), MAX_LOGGED_ERROR), "request rejected");
        }
        let detail = self.error.detail();
        let limit_headers = match &self.error {
            GatewayError::Limited(r) => rejection_headers(r),
            GatewayError::TooManyAttempts { retry_after_secs, .. } => {
                vec![("retry-after", retry_after_secs.to_string())]
            }
            _ => Vec::new(),
        };
        let summary = ErrorSummary {
            error_type: detail.error_type.clone(),
            message: detail.message.clone(),
        };
        let mut resp = if self.shape == Protocol::OpenAi {
            let body = ErrorResponseBody {
                is_bifrost_error: !matches!(self.error, GatewayError::Upstream { .. }),
                status_code: status.as_u16(),
                error: detail,
                budget: BudgetRefusal::of(&self.error),
                extra_fields: &self.context,
            };
            let json = serde_json::to_vec(&body).expect("error bodies always serialise");
            (status, json).into_response()
        } else {
            // Anthropic and Gemini clients get their own error shape; the trail goes in a header.
            let rendered = switchyard_translate::render_error(
                self.shape,
                &ErrorInfo {
                    status: status.as_u16(),
                    detail,
                },
            );
            let status = StatusCode::from_u16(rendered.status).unwrap_or(status);
            (status, rendered.body).into_response()
        };
        resp.extensions_mut().insert(summary);
        let headers = resp.headers_mut();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in limit_headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        if self.context.gateway_retried
            && (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
        {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if !self.context.attempts.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&crate::trail::trail_header(&self.context.attempts)) {
                headers.insert("x-switchyard-trail", v);
            }
        }
        resp
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// `retry-after` and the `x-ratelimit-*` headers of a rejection (OpenAI's names for requests and
/// tokens; `-budget` and `-concurrency` for the other limits).
fn rejection_headers(r: &switchyard_core::governance::Rejection) -> Vec<(&'static str, String)> {
    use switchyard_core::governance::LimitKind;
    let reset = format!("{}s", r.retry_after_secs);
    let mut h = vec![("retry-after", r.retry_after_secs.to_string())];
    match r.kind {
        LimitKind::Requests => {
            h.push(("x-ratelimit-limit-requests", r.max.to_string()));
            h.push(("x-ratelimit-remaining-requests", "0".into()));
            h.push(("x-ratelimit-reset-requests", reset));
        }
        LimitKind::Tokens => {
            h.push(("x-ratelimit-limit-tokens", r.max.to_string()));
            h.push((
                "x-ratelimit-remaining-tokens",
                (r.max - r.current).max(0).to_string(),
            ));
            h.push(("x-ratelimit-reset-tokens", reset));
        }
        LimitKind::Concurrency | LimitKind::Reserved => {
            h.push(("x-ratelimit-limit-concurrency", r.max.to_string()));
            h.push(("x-ratelimit-remaining-concurrency", "0".into()));
        }
        LimitKind::Budget => {
            let limit = format!(
                "{:.6}",
                switchyard_core::governance::admission::nanos_to_usd(r.max)
            );
            if r.currency.is_usd() {
                h.push(("x-ratelimit-limit-budget-usd", limit.clone()));
                h.push(("x-ratelimit-remaining-budget-usd", "0".into()));
            }
            h.push(("x-ratelimit-limit-budget", limit));
            h.push(("x-ratelimit-remaining-budget", "0".into()));
            h.push(("x-ratelimit-budget-currency", r.currency.code().to_owned()));
            h.push(("x-ratelimit-reset-budget", reset));
        }
    }
    h
}
