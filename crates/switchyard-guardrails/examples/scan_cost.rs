//! The CPU a request's guardrail checks cost, without the server: three guardrails (PII redact,
//! secrets block, a custom regex log) on both stages over a typical chat request and its answer, none
//! of which match (the common case), and the same with one match redacted.
//! `cargo run --release -p switchyard-guardrails --example scan_cost` (a measurement, so bench-only).

use std::hint::black_box;
use std::time::Instant;

use switchyard_guardrails::{text_slots, BodyShape, GuardrailInput, GuardrailSet, Stage};

fn guardrail(v: serde_json::Value) -> switchyard_guardrails::Guardrail {
    serde_json::from_value::<GuardrailInput>(v)
        .unwrap()
        .create(|| "id".into())
        .unwrap()
}

fn main() {
    let set = GuardrailSet::build(
        [
            serde_json::json!({"id": "a", "name": "pii", "type": "pii", "entities": ["email", "phone", "iban", "credit_card"], "stage": "both", "action": "redact"}),
            serde_json::json!({"id": "b", "name": "secrets", "type": "secrets", "stage": "both"}),
            serde_json::json!({"id": "c", "name": "names", "type": "regex", "patterns": ["Projekt [A-Z][a-z]+"], "stage": "both", "action": "log"}),
        ]
        .into_iter()
        .map(guardrail)
        .collect(),
    );
    let request = serde_json::json!({"model": "mittwald/gpt-oss-120b", "max_tokens": 400, "messages": [
        {"role": "system", "content": "You are a helpful assistant for a German web agency. Answer briefly and in the customer's language."},
        {"role": "user", "content": "Hallo! Wir planen für nächste Woche ein Update unserer Shop-Seite. Kannst du mir drei Punkte nennen, auf die wir bei der Migration achten sollten? Danke, das Team."}]})
    .to_string();
    let answer = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-oss-120b",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content":
        "Gern! 1. Sichern Sie vorher Datenbank und Dateien. 2. Testen Sie die Migration auf einer Staging-Umgebung. 3. Planen Sie ein Wartungsfenster und informieren Sie Ihre Kunden rechtzeitig."}}]})
    .to_string();
    let with_match = request.replace("das Team.", "max@example.de");
    let on = set.applicable(Stage::Request, |_| true);
    let run = |label: &str, body: &str, shape: BodyShape| {
        let iterations = 20_000;
        let start = Instant::now();
        for _ in 0..iterations {
            let mut doc: serde_json::Value = serde_json::from_str(black_box(body)).unwrap();
            let findings = set.scan_texts(&on.off, text_slots(shape, &mut doc));
            if findings.redacted() {
                black_box(serde_json::to_vec(&doc).unwrap());
            }
            black_box(findings);
        }
        let per = start.elapsed().as_secs_f64() / f64::from(iterations) * 1e6;
        println!("{label}: {per:.2} µs per body ({} bytes)", body.len());
    };
    let parse_only = |body: &str| {
        let start = Instant::now();
        for _ in 0..20_000 {
            let mut doc: serde_json::Value = serde_json::from_str(black_box(body)).unwrap();
            black_box(text_slots(BodyShape::OpenAiChat, &mut doc).len());
        }
        println!(
            "(of which JSON parsing: {:.2} µs)",
            start.elapsed().as_secs_f64() / 20_000.0 * 1e6
        );
    };
    parse_only(&request);
    run("request, no match", &request, BodyShape::OpenAiChat);
    run("answer, no match", &answer, BodyShape::OpenAiChatAnswer);
    run("request, one e-mail redacted", &with_match, BodyShape::OpenAiChat);
}
