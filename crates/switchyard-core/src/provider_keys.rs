//! Provider-specific key settings: Azure OpenAI (`azure_key_config`) and AWS Bedrock
//! (`bedrock_key_config`), in Bifrost's shape, and the pure URL logic that uses them.
//!
//! Both live on the key, not the provider, because one Azure resource or AWS account per key is how
//! Bifrost (and operators) spread load: the endpoint, region and model → deployment map travel with the
//! credentials they belong to.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{validate_base_url, ValidationError};
use crate::secret::{self, Secret, SecretSource};

/// The `api-version` sent to Azure when the key does not name one (the current GA data-plane version).
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// Bifrost's default region for Bedrock keys without one.
pub const DEFAULT_BEDROCK_REGION: &str = "us-east-1";

/// `azure_key_config`: which Azure OpenAI resource the key belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureKeyConfig {
    /// `https://{resource}.openai.azure.com` (no path needed).
    #[serde(default)]
    pub endpoint: String,
    /// Model name → deployment name; a model without an entry is used as the deployment name.
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    /// The `api-version` query parameter (default [`DEFAULT_AZURE_API_VERSION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Bifrost's Entra ID (service principal) fields: accepted when empty so Bifrost configs load;
    /// set, they are refused with a clear message (only API keys are supported).
    #[serde(default, skip_serializing)]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing)]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing)]
    pub scopes: Option<Vec<String>>,
}

impl AzureKeyConfig {
    pub fn deployment_for<'a>(&'a self, model: &'a str) -> &'a str {
        self.deployments.get(model).map_or(model, String::as_str)
    }

    pub fn api_version(&self) -> &str {
        self.api_version.as_deref().unwrap_or(DEFAULT_AZURE_API_VERSION)
    }
}

/// `bedrock_key_config`: AWS credentials (each may be an `env.VAR` reference) and where to call.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockKeyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// STS session token for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Model name → Bedrock model id, inference profile id or ARN.
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    /// Accepted for Bifrost compatibility (an inference-profile ARN prefix); not used for routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Bifrost's assume-role fields: accepted when empty so Bifrost configs load; set, they are
    /// refused with a clear message (only access keys and Bedrock API keys are supported).
    #[serde(default, skip_serializing)]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing)]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing)]
    pub session_name: Option<String>,
    #[serde(default, skip_serializing)]
    pub batch_s3_config: Option<serde_json::Value>,
}

impl fmt::Debug for BedrockKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |v: &Option<String>| v.as_deref().map(secret::redact);
        f.debug_struct("BedrockKeyConfig")
            .field("access_key", &r(&self.access_key))
            .field("secret_key", &r(&self.secret_key))
            .field("session_token", &r(&self.session_token))
            .field("region", &self.region)
            .field("deployments", &self.deployments)
            .field("arn", &self.arn)
            .finish()
    }
}

impl BedrockKeyConfig {
    pub fn region(&self) -> &str {
        self.region
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_BEDROCK_REGION)
    }

    pub fn model_id_for<'a>(&'a self, model: &'a str) -> &'a str {
        self.deployments.get(model).map_or(model, String::as_str)
    }

    /// Access key id and secret are both set: requests are SigV4-signed (else the key's `value` is a
    /// Bedrock API key sent as a bearer token).
    pub fn has_sigv4_credentials(&self) -> bool {
        self.access_key.as_deref().is_some_and(|v| !v.is_empty())
            && self.secret_key.as_deref().is_some_and(|v| !v.is_empty())
    }

    /// The same config with every credential redacted, for API answers.
    pub fn redacted(&self) -> BedrockKeyConfig {
        let r = |v: &Option<String>| v.as_deref().map(secret::redact);
        BedrockKeyConfig {
            access_key: r(&self.access_key),
            secret_key: r(&self.secret_key),
            session_token: r(&self.session_token),
            ..self.clone()
        }
    }

    /// Applies an update: a credential sent back in its redacted form keeps the stored value.
    pub fn merged_over(mut self, current: Option<&BedrockKeyConfig>) -> BedrockKeyConfig {
        if let Some(cur) = current {
            let keep = |new: &mut Option<String>, old: &Option<String>| {
                if let (Some(n), Some(o)) = (new.as_ref(), old.as_ref()) {
                    if secret::is_redacted_form_of(n, o) {
                        *new = Some(o.clone());
                    }
                }
            };
            keep(&mut self.access_key, &cur.access_key);
            keep(&mut self.secret_key, &cur.secret_key);
            keep(&mut self.session_token, &cur.session_token);
        }
        self
    }
}

/// Resolved AWS credentials for signing. `Debug` shows nothing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub region: String,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token.as_ref().map(|_| "<set>"))
            .field("region", &self.region)
            .finish()
    }
}

/// Resolves one possibly-`env.VAR` value; `Err` names the unset variable.
fn resolve(value: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Secret, String> {
    match secret::source(value) {
        SecretSource::Literal(v) => Ok(Secret::new(v)),
        SecretSource::Env(var) => env(var)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                format!("its bedrock_key_config references environment variable {var}, which is not set")
            }),
    }
}

/// Resolves SigV4 credentials; `Ok(None)` when the key has none (it then uses its `value`).
pub fn resolve_aws_credentials(
    cfg: &BedrockKeyConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<AwsCredentials>, String> {
    if !cfg.has_sigv4_credentials() {
        return Ok(None);
    }
    let access_key_id = resolve(cfg.access_key.as_deref().unwrap_or_default(), env)?;
    let secret_access_key = resolve(cfg.secret_key.as_deref().unwrap_or_default(), env)?;
    let session_token = match cfg.session_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(resolve(t, env)?),
        None => None,
    };
    Ok(Some(AwsCredentials {
        access_key_id,
        secret_access_key,
        session_token,
        region: cfg.region().to_owned(),
    }))
}

fn is_set(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.trim().is_empty())
}

pub fn validate_azure(
    cfg: &AzureKeyConfig,
    provider_base_url: Option<&str>,
) -> Result<AzureKeyConfig, ValidationError> {
    for (field, v) in [
        ("client_id", &cfg.client_id),
        ("client_secret", &cfg.client_secret),
        ("tenant_id", &cfg.tenant_id),
    ] {
        if is_set(v) {
            return Err(ValidationError::new(
                format!("azure_key_config.{field}"),
                "Entra ID (service principal) authentication is not supported yet; use the resource's API key as value",
            ));
        }
    }
    let mut cfg = cfg.clone();
    cfg.client_id = None;
    cfg.client_secret = None;
    cfg.tenant_id = None;
    cfg.scopes = None;
    if cfg.endpoint.trim().is_empty() {
        if provider_base_url.is_none() {
            return Err(ValidationError::new(
                "azure_key_config.endpoint",
                "the Azure endpoint is required (e.g. https://my-resource.openai.azure.com)",
            ));
        }
    } else {
        cfg.endpoint = validate_base_url(&cfg.endpoint)
            .map_err(|e| ValidationError::new("azure_key_config.endpoint", e.message))?;
    }
    if let Some(v) = &cfg.api_version {
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(ValidationError::new(
                "azure_key_config.api_version",
                "api_version must look like 2024-10-21 or 2025-01-01-preview",
            ));
        }
    }
    for (model, deployment) in &cfg.deployments {
        if !is_path_safe(deployment) {
            return Err(ValidationError::new(
                format!("azure_key_config.deployments.{model}"),
                "deployment names may only contain letters, digits, '-', '_' and '.'",
            ));
        }
    }
    Ok(cfg)
}

fn is_path_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub fn validate_bedrock(cfg: &BedrockKeyConfig, has_value: bool) -> Result<(), ValidationError> {
    for (field, v) in [
        ("role_arn", &cfg.role_arn),
        ("external_id", &cfg.external_id),
        ("session_name", &cfg.session_name),
    ] {
        if is_set(v) {
            return Err(ValidationError::new(
                format!("bedrock_key_config.{field}"),
                "assuming an IAM role is not supported yet; give access_key/secret_key (optionally session_token) or a Bedrock API key as value",
            ));
        }
    }
    let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    if set(&cfg.access_key) != set(&cfg.secret_key) {
        return Err(ValidationError::new(
            if set(&cfg.access_key) {
                "bedrock_key_config.secret_key"
            } else {
                "bedrock_key_config.access_key"
            },
            "access_key and secret_key must be given together",
        ));
    }
    if !cfg.has_sigv4_credentials() && !has_value {
        return Err(ValidationError::new(
            "bedrock_key_config.access_key",
            "a Bedrock key needs access_key and secret_key (SigV4), or a Bedrock API key as value",
        ));
    }
    for (field, v) in [
        ("access_key", &cfg.access_key),
        ("secret_key", &cfg.secret_key),
        ("session_token", &cfg.session_token),
    ] {
        if let Some(v) = v {
            if v.chars().any(|c| c.is_control()) {
                return Err(ValidationError::new(
                    format!("bedrock_key_config.{field}"),
                    "may not contain control characters",
                ));
            }
            if let Some(var) = v.strip_prefix(secret::ENV_PREFIX) {
                if !secret::is_valid_env_name(var) {
                    return Err(ValidationError::new(
                        format!("bedrock_key_config.{field}"),
                        format!("'env.{var}' is not a valid environment variable reference"),
                    ));
                }
            }
        }
    }
    if let Some(r) = &cfg.region {
        if !r.is_empty()
            && !r
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ValidationError::new(
                "bedrock_key_config.region",
                "region must look like us-east-1",
            ));
        }
    }
    for (model, id) in &cfg.deployments {
        if id.is_empty()
            || id
                .chars()
                .any(|c| c.is_control() || c == ' ' || c == '?' || c == '#')
        {
            return Err(ValidationError::new(
                format!("bedrock_key_config.deployments.{model}"),
                "must be a Bedrock model id, inference profile id or ARN",
            ));
        }
    }
    Ok(())
}

/// `{endpoint}/openai/deployments/{deployment}/{operation}?api-version={version}`. An endpoint that
/// already ends in `/openai` is not doubled.
pub fn azure_deployment_url(endpoint: &str, deployment: &str, operation: &str, api_version: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    let base = base.strip_suffix("/openai").unwrap_or(base);
    format!(
        "{base}/openai/deployments/{}/{}?api-version={}",
        encode_path_segment(deployment),
        operation.trim_start_matches('/'),
        encode_path_segment(api_version)
    )
}

/// The Bedrock runtime host for a region.
pub fn bedrock_runtime_base(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// `{base}/model/{modelId}/converse` or `/converse-stream`. The model id is percent-encoded as one
/// path segment (ids contain `:`, ARNs also `/`), as the AWS SDKs do.
pub fn bedrock_converse_url(base: &str, model_id: &str, stream: bool) -> String {
    format!(
        "{}/model/{}/{}",
        base.trim_end_matches('/'),
        encode_path_segment(model_id),
        if stream { "converse-stream" } else { "converse" }
    )
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_urls() {
        assert_eq!(
            azure_deployment_url("https://r.openai.azure.com/", "gpt4o-prod", "chat/completions", "2024-10-21"),
            "https://r.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            azure_deployment_url("https://r.openai.azure.com/openai", "d", "/embeddings", "v"),
            "https://r.openai.azure.com/openai/deployments/d/embeddings?api-version=v"
        );
    }

    #[test]
    fn bedrock_urls_encode_model_ids() {
        assert_eq!(
            bedrock_converse_url(
                &bedrock_runtime_base("eu-central-1"),
                "anthropic.claude-3-haiku-20240307-v1:0",
                true
            ),
            "https://bedrock-runtime.eu-central-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
        );
        assert_eq!(
            bedrock_converse_url(
                "http://127.0.0.1:9",
                "arn:aws:bedrock:us-east-1:1:inference-profile/x",
                false
            ),
            "http://127.0.0.1:9/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse"
        );
    }

    #[test]
    fn deployments_map_models() {
        let cfg: AzureKeyConfig =
            serde_json::from_str(r#"{"endpoint":"https://r","deployments":{"gpt-4o":"prod-4o"}}"#).unwrap();
        assert_eq!(cfg.deployment_for("gpt-4o"), "prod-4o");
        assert_eq!(cfg.deployment_for("other"), "other");
        assert_eq!(cfg.api_version(), DEFAULT_AZURE_API_VERSION);
    }

    #[test]
    fn bifrost_fields_load_when_empty_and_are_refused_when_set() {
        let cfg: AzureKeyConfig = serde_json::from_str(
            r#"{"endpoint":"https://r.openai.azure.com","client_id":"","client_secret":"","tenant_id":"","scopes":[]}"#,
        )
        .unwrap();
        let ok = validate_azure(&cfg, None).unwrap();
        assert!(!serde_json::to_string(&ok).unwrap().contains("client"));
        let cfg: AzureKeyConfig =
            serde_json::from_str(r#"{"endpoint":"https://r","client_secret":"s3cr3t"}"#).unwrap();
        assert_eq!(
            validate_azure(&cfg, None).unwrap_err().field,
            "azure_key_config.client_secret"
        );
        let cfg: BedrockKeyConfig =
            serde_json::from_str(r#"{"role_arn":"arn:aws:iam::1:role/x","region":"us-east-1"}"#).unwrap();
        assert_eq!(
            validate_bedrock(&cfg, true).unwrap_err().field,
            "bedrock_key_config.role_arn"
        );
        let cfg: BedrockKeyConfig = serde_json::from_str(
            r#"{"access_key":"A","secret_key":"S","role_arn":"","batch_s3_config":{"buckets":[]}}"#,
        )
        .unwrap();
        assert!(validate_bedrock(&cfg, false).is_ok());
    }

    #[test]
    fn bedrock_validation_names_the_field() {
        let half = BedrockKeyConfig {
            access_key: Some("AKIA".into()),
            ..Default::default()
        };
        assert_eq!(
            validate_bedrock(&half, false).unwrap_err().field,
            "bedrock_key_config.secret_key"
        );
        assert_eq!(
            validate_bedrock(&BedrockKeyConfig::default(), false)
                .unwrap_err()
                .field,
            "bedrock_key_config.access_key"
        );
        assert!(validate_bedrock(&BedrockKeyConfig::default(), true).is_ok());
        let bad_region = BedrockKeyConfig {
            region: Some("US EAST".into()),
            ..Default::default()
        };
        assert_eq!(
            validate_bedrock(&bad_region, true).unwrap_err().field,
            "bedrock_key_config.region"
        );
    }

    #[test]
    fn credentials_never_show_in_debug_or_views_and_redacted_updates_keep_them() {
        let cfg = BedrockKeyConfig {
            access_key: Some("AKIAIOSFODNN7EXAMPLE".into()),
            secret_key: Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
            session_token: Some("FQoGZXIvYXdzEXAMPLETOKEN".into()),
            ..Default::default()
        };
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("EXAMPLEKEY") && !dbg.contains("EXAMPLETOKEN"),
            "{dbg}"
        );
        let view = cfg.redacted();
        assert!(!serde_json::to_string(&view).unwrap().contains("EXAMPLEKEY"));
        let back = view.merged_over(Some(&cfg));
        assert_eq!(back, cfg);
        let creds = resolve_aws_credentials(&cfg, &|_| None).unwrap().unwrap();
        assert!(!format!("{creds:?}").contains("EXAMPLE"));
    }

    #[test]
    fn env_references_resolve_or_explain() {
        let cfg = BedrockKeyConfig {
            access_key: Some("env.AWS_AK".into()),
            secret_key: Some("env.AWS_SK".into()),
            region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let env = |v: &str| (v == "AWS_AK").then(|| "AKID".to_owned());
        let err = resolve_aws_credentials(&cfg, &env).unwrap_err();
        assert!(err.contains("AWS_SK"), "{err}");
        let env = |v: &str| Some(format!("value-of-{v}"));
        let c = resolve_aws_credentials(&cfg, &env).unwrap().unwrap();
        assert_eq!(c.secret_access_key.expose(), "value-of-AWS_SK");
        assert_eq!(c.region, "eu-west-1");
    }
}
