//! Why a body could not be translated.

/// A translation failure. Request-side variants are the client's fault (HTTP 400, with
/// [`TranslateError::param`] naming the field as a JSON path in the client's own protocol, e.g.
/// `messages[2].tool_calls[0].function.arguments`); [`TranslateError::Upstream`] means the upstream sent
/// something that cannot be expressed to the client (HTTP 502).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON but not an object.
    #[error("request body must be a JSON object")]
    NotAnObject,
    /// A required field is absent or `null`.
    #[error("'{param}' is required")]
    MissingField {
        /// The field's JSON path.
        param: String,
    },
    /// A field has the wrong type or value.
    #[error("'{param}' {message}")]
    InvalidField {
        /// The field's JSON path.
        param: String,
        /// What is wrong, e.g. `must be a string`.
        message: String,
    },
    /// A field is valid in the client's protocol but cannot be expressed upstream.
    #[error("'{param}' cannot be translated: {message}")]
    Unsupported {
        /// The field's JSON path.
        param: String,
        /// Why.
        message: String,
    },
    /// The upstream's answer cannot be read or expressed in the client's protocol.
    #[error("upstream answer cannot be translated ('{field}'): {message}")]
    Upstream {
        /// The field of the upstream's answer.
        field: String,
        /// Why.
        message: String,
    },
}

impl TranslateError {
    /// The JSON path of the offending request field (for `error.param`); `None` for whole-body and
    /// upstream errors.
    pub fn param(&self) -> Option<&str> {
        match self {
            TranslateError::MissingField { param }
            | TranslateError::InvalidField { param, .. }
            | TranslateError::Unsupported { param, .. } => Some(param),
            TranslateError::InvalidJson(_)
            | TranslateError::NotAnObject
            | TranslateError::Upstream { .. } => None,
        }
    }

    /// The HTTP status to answer with: 400 for the client's mistakes, 502 for the upstream's.
    pub fn status(&self) -> u16 {
        match self {
            TranslateError::Upstream { .. } => 502,
            _ => 400,
        }
    }

    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
        TranslateError::InvalidField {
            param: param.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
        TranslateError::Unsupported {
            param: param.into(),
            message: message.into(),
        }
    }

    pub(crate) fn upstream(field: impl Into<String>, message: impl Into<String>) -> TranslateError {
        TranslateError::Upstream {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Turns a request-side error into an upstream error (used when a response is parsed with the
    /// request-side field readers).
    pub(crate) fn into_upstream(self) -> TranslateError {
        match self {
            TranslateError::InvalidJson(m) => TranslateError::upstream("$", format!("not valid JSON: {m}")),
            TranslateError::NotAnObject => TranslateError::upstream("$", "not a JSON object"),
            TranslateError::MissingField { param } => TranslateError::upstream(param, "is missing"),
            TranslateError::InvalidField { param, message }
            | TranslateError::Unsupported { param, message } => TranslateError::upstream(param, message),
            e @ TranslateError::Upstream { .. } => e,
        }
    }
}
