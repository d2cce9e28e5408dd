use super::*;

#[test]
fn debug_output_of_inputs_never_shows_key_values() {
    let body =
        r#"{"provider":"openai","keys":[{"name":"k","value":"sk-live-0123456789abcdef","models":["*"]}]}"#;
    let p: ProviderInput = serde_json::from_str(body).unwrap();
    let shown = format!("{p:?} {:?}", p.keys.as_ref().unwrap()[0]);
    assert!(!shown.contains("0123456789"), "{shown}");
    assert!(shown.contains("sk-l"), "the redacted form is shown: {shown}");
}

#[test]
fn metadata_base_urls_are_refused_at_config_time() {
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://metadata.google.internal/v1",
        "http://[fd00:ec2::254]/v1",
        "http://2852039166/v1",
    ] {
        let err = validate_base_url(url).unwrap_err();
        assert_eq!(err.field, "network_config.base_url");
        assert!(err.message.contains("metadata"), "{}", err.message);
    }
    assert!(validate_base_url("http://10.0.0.7:8000/v1").is_ok());
    assert!(validate_base_url("http://vllm.ai.svc.cluster.local/v1").is_ok());
}

fn input(json: &str) -> ProviderInput {
    serde_json::from_str(json).unwrap()
}

#[test]
fn seed_dedicated_provider_is_accepted_with_defaults() {
    let p = input(r#"{"provider":"openai","network_config":{"base_url":"https://your-company.llm.aihosting.mittwald.de/v1"}}"#)
        .into_new_provider()
        .unwrap();
    assert_eq!(
        p.effective_base_url(),
        Some("https://your-company.llm.aihosting.mittwald.de/v1")
    );
    assert_eq!(p.network_config.default_request_timeout_in_seconds, 600);
    assert_eq!(p.wire(), WireApi::OpenAi);
}

#[test]
fn seed_custom_provider_speaks_its_base_type() {
    let p = input(
        r#"{"provider":"mittwald-shared","network_config":{"base_url":"https://llm.aihosting.mittwald.de/v1/"},
            "custom_provider_config":{"base_provider_type":"openai"}}"#,
    )
    .into_new_provider()
    .unwrap();
    assert_eq!(p.wire(), WireApi::OpenAi);
    assert_eq!(
        p.network_config.base_url.as_deref(),
        Some("https://llm.aihosting.mittwald.de/v1")
    );
}

#[test]
fn anthropic_without_body_uses_default_endpoint() {
    let p = input(r#"{"provider":"anthropic"}"#).into_new_provider().unwrap();
    assert_eq!(p.effective_base_url(), Some("https://api.anthropic.com"));
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            r#"{"provider":"mittwald-shared","network_config":{"base_url":"https://x/v1"}}"#,
            "custom_provider_config",
        ),
        (
            r#"{"provider":"x","custom_provider_config":{"base_provider_type":"openai"}}"#,
            "network_config.base_url",
        ),
        (
            r#"{"provider":"x","network_config":{"base_url":"ftp://x"},"custom_provider_config":{"base_provider_type":"openai"}}"#,
            "network_config.base_url",
        ),
        (
            r#"{"provider":"x","network_config":{"base_url":"http://x"},"custom_provider_config":{"base_provider_type":"soap"}}"#,
            "custom_provider_config.base_provider_type",
        ),
        (
            r#"{"provider":"openai","network_config":{"default_request_timeout_in_seconds":0}}"#,
            "network_config.default_request_timeout_in_seconds",
        ),
        (
            r#"{"provider":"openai","network_config":{"extra_headers":{"bad header":"x"}}}"#,
            "network_config.extra_headers.bad header",
        ),
        (
            r#"{"provider":"openai","network_config":{"retry_backoff_initial":1000,"retry_backoff_max":10}}"#,
            "network_config.retry_backoff_max",
        ),
        (
            r#"{"provider":"openai","custom_provider_config":{"base_provider_type":"openai"}}"#,
            "custom_provider_config",
        ),
        (r#"{"network_config":{}}"#, "provider"),
    ];
    for (body, field) in cases {
        let err = input(body).into_new_provider().unwrap_err();
        assert_eq!(err.field, field, "{body}: {err}");
    }
}

#[test]
fn update_keeps_absent_blocks() {
    let p = input(r#"{"provider":"openai","network_config":{"base_url":"https://a/v1","max_retries":3}}"#)
        .into_new_provider()
        .unwrap();
    let updated = input(r#"{"network_config":{"default_request_timeout_in_seconds":900}}"#)
        .apply_update(&p)
        .unwrap();
    assert_eq!(updated.network_config.base_url.as_deref(), Some("https://a/v1"));
    assert_eq!(updated.network_config.max_retries, 3);
    assert_eq!(updated.network_config.default_request_timeout_in_seconds, 900);
    let err = input(r#"{"provider":"other"}"#).apply_update(&p).unwrap_err();
    assert_eq!(err.field, "provider");
}

fn key(json: &str, p: &ProviderConfig) -> Result<KeyConfig, ValidationError> {
    serde_json::from_str::<KeyInput>(json)
        .unwrap()
        .into_new_key(p, "gen-1".into())
}

#[test]
fn seed_key_is_accepted() {
    let p = input(r#"{"provider":"openai"}"#).into_new_provider().unwrap();
    let k = key(
        r#"{"name":"mittwald-dedicated","value":"YOUR_DEDICATED_API_KEY","models":["*"],"weight":1.0}"#,
        &p,
    )
    .unwrap();
    assert_eq!(k.id, "gen-1");
    assert!(k.enabled);
    assert_eq!(k.models, vec!["*"]);
}

#[test]
fn key_errors_name_the_field() {
    let p = input(r#"{"provider":"openai"}"#).into_new_provider().unwrap();
    for (body, field) in [
        (r#"{"value":"x"}"#, "name"),
        (r#"{"name":"a"}"#, "value"),
        (r#"{"name":"a","value":"x","weight":-1}"#, "weight"),
        (r#"{"name":"a","value":"x","models":[""]}"#, "models[0]"),
        (r#"{"name":"a","value":"env.1BAD"}"#, "value"),
        (r#"{"name":"a","value":"x","id":"a/b"}"#, "id"),
    ] {
        assert_eq!(key(body, &p).unwrap_err().field, field, "{body}");
    }
}

#[test]
fn keyless_providers_need_no_value() {
    let p = input(r#"{"provider":"ollama"}"#).into_new_provider().unwrap();
    assert!(key(r#"{"name":"local","models":["*"]}"#, &p).is_ok());
}

#[test]
fn redacted_value_on_update_keeps_the_secret() {
    let p = input(r#"{"provider":"openai"}"#).into_new_provider().unwrap();
    let k = key(r#"{"name":"a","value":"sk-very-secret-value-1234"}"#, &p).unwrap();
    let redacted = secret::redact(&k.value);
    let body = format!(r#"{{"value":"{redacted}","weight":2.5}}"#);
    let updated = serde_json::from_str::<KeyInput>(&body)
        .unwrap()
        .apply_update(&k, &p)
        .unwrap();
    assert_eq!(updated.value, "sk-very-secret-value-1234");
    assert_eq!(updated.weight, 2.5);
    assert_eq!(updated.name, "a", "an omitted name is kept, not cleared");
}

#[test]
fn allowed_requests_gate_request_types() {
    let p = input(
        r#"{"provider":"m","network_config":{"base_url":"http://m/v1"},
            "custom_provider_config":{"base_provider_type":"openai","allowed_requests":{"chat_completion":true,"embedding":false}}}"#,
    )
    .into_new_provider()
    .unwrap();
    assert!(p.allows_request("chat_completion"));
    assert!(!p.allows_request("embedding"));
    assert!(!p.allows_request("rerank"));
}
