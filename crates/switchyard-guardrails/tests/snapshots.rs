//! Snapshots of what operators and clients see: a German business text redacted by every built-in
//! detector, and the API's validation errors (field and message) for bad guardrail bodies.

use switchyard_guardrails::{GuardrailInput, GuardrailSet, Stage};

fn guardrail(v: serde_json::Value) -> switchyard_guardrails::Guardrail {
    serde_json::from_value::<GuardrailInput>(v)
        .unwrap()
        .create(|| "id".into())
        .unwrap()
}

#[test]
fn a_business_text_redacted_by_every_detector() {
    let set = GuardrailSet::build(vec![
        guardrail(serde_json::json!({"id": "a", "name": "pii", "type": "pii",
            "entities": ["email", "phone", "iban", "credit_card"], "action": "redact"})),
        guardrail(serde_json::json!({"id": "b", "name": "secrets", "type": "secrets", "action": "redact"})),
    ]);
    let mut text = "Sehr geehrte Frau Schmidt,\n\
        bitte überweisen Sie 1.250,00 EUR bis 15.03.2025 auf DE89 3704 0044 0532 0130 00 (BIC COBADEFFXXX).\n\
        Rückfragen: buchhaltung@agentur-beispiel.de oder 0221 98765432, mobil +49 171 2345678.\n\
        Die Karte 4111-1111-1111-1111 ist abgelaufen; Bestellnummer 2025-000123 bleibt gültig.\n\
        Deploy-Key: AKIAIOSFODNN7EXAMPLE, Token ghp_0123456789abcdefghijklmnopqrstuvwxyz,\n\
        OpenAI: sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123.\n\
        -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n\
        Mit freundlichen Grüßen"
        .to_owned();
    let applicable = set.applicable(Stage::Request, |_| true);
    let findings = set.scan_texts(&applicable.off, [&mut text]);
    assert_eq!(findings.blocked_by, None);
    insta::assert_snapshot!(text);
}

#[test]
fn validation_errors_name_the_field() {
    let bodies = [
        serde_json::json!({"name": "a", "type": "nope"}),
        serde_json::json!({"name": "a", "type": "regex", "patterns": ["ok", "(a"]}),
        serde_json::json!({"name": "a", "type": "regex", "patterns": ["x*"]}),
        serde_json::json!({"name": "a", "type": "pii", "entities": ["email", "passport"]}),
        serde_json::json!({"name": "a", "type": "pii"}),
        serde_json::json!({"name": "a", "type": "webhook", "url": "http://127.0.0.1:9/x", "timeout_ms": 0}),
        serde_json::json!({"name": "a", "type": "webhook", "url": "http://127.0.0.1:9/x", "action": "log"}),
        serde_json::json!({"name": "a", "type": "secrets", "on_error": "maybe"}),
    ];
    let out: Vec<String> = bodies
        .into_iter()
        .map(|b| {
            let e = serde_json::from_value::<GuardrailInput>(b)
                .unwrap()
                .create(|| "id".into())
                .unwrap_err();
            format!("{}: {}", e.field, e.message)
        })
        .collect();
    insta::assert_snapshot!(out.join("\n"));
}
