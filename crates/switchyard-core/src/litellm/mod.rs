//! LiteLLM's dialect, the pure part: its duration strings, its master key and key headers, and its
//! key/team/customer bodies and views mapped onto Switchyard's governance model (one set of keys,
//! visible and manageable through both APIs). The HTTP handlers are in the gateway's `litellm`.

/// The four limit fields of a LiteLLM body, gathered (they are not `#[serde(flatten)]`ed, so a type
/// error still names its field).
macro_rules! limit_fields {
    ($b:expr) => {
        $crate::litellm::limits::LimitFields {
            max_budget: $b.max_budget,
            budget_duration: $b.budget_duration.clone(),
            tpm_limit: $b.tpm_limit,
            rpm_limit: $b.rpm_limit,
        }
    };
}

pub mod auth;
pub mod config_yaml;
pub mod duration;
pub mod groups;
pub mod keys;
pub mod limits;

pub use auth::{inference_credential, presented, InferenceCredential, MasterKeys};
pub use duration::LlmDuration;

/// The end user a request names in its top-level `user` field (OpenAI's field, which LiteLLM charges
/// to that end user's budget). `None` for other bodies.
pub fn end_user(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct UserField {
        user: Option<String>,
    }
    if body.first().is_none_or(|b| *b != b'{') {
        return None;
    }
    serde_json::from_slice::<UserField>(body)
        .ok()?
        .user
        .filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_user_field_names_the_end_user() {
        assert_eq!(
            super::end_user(br#"{"model":"m","user":"u-1","messages":[]}"#).as_deref(),
            Some("u-1")
        );
        assert_eq!(super::end_user(br#"{"model":"m"}"#), None);
        assert_eq!(super::end_user(br#"{"user":""}"#), None);
        assert_eq!(super::end_user(b"--multipart"), None);
        assert_eq!(super::end_user(br#"{"user": 5}"#), None);
    }
}
