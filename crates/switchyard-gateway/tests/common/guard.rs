//! The guardrail tests' setup: the real gateway with `anthropic`, `gemini` and an OpenAI-compatible
//! `mittwald-shared` provider, all on one mock upstream (which echoes the user's text word by word).

use serde_json::{json, Value};
use switchyard_mock::{start, MockOptions, MockUpstream};

use super::TestGateway;

pub const KEY: &str = "sk-guard-test-0001";
pub const IBAN: &str = "DE89 3704 0044 0532 0130 00";

pub struct Setup {
    pub gw: TestGateway,
    pub mock: MockUpstream,
    pub _dir: tempfile::TempDir,
}

pub async fn setup() -> Setup {
    let mock = start(MockOptions {
        api_key: Some(KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(dir.path()).await;
    for (provider, url, extra) in [
        ("anthropic", mock.base_url(), json!(null)),
        ("gemini", format!("http://{}", mock.addr()), json!(null)),
        (
            "mittwald-shared",
            mock.base_url(),
            json!({"base_provider_type": "openai"}),
        ),
    ] {
        let mut body = json!({"provider": provider, "network_config": {"base_url": url, "max_retries": 0}});
        if !extra.is_null() {
            body["custom_provider_config"] = extra;
        }
        assert_eq!(gw.post("/api/providers", body).await.0, 200);
        gw.post(
            &format!("/api/providers/{provider}/keys"),
            json!({"name": "k", "value": KEY, "models": ["*"]}),
        )
        .await;
    }
    Setup { gw, mock, _dir: dir }
}

/// Creates a guardrail; its id.
pub async fn guardrail(gw: &TestGateway, body: Value) -> String {
    let (s, b) = gw.post("/api/guardrails", body).await;
    assert_eq!(s, 200, "{b}");
    b["guardrail"]["id"].as_str().unwrap().to_owned()
}

/// The body of the last request the mock received.
pub fn upstream_saw(mock: &MockUpstream) -> String {
    mock.requests()
        .last()
        .map(|r| r.json().to_string())
        .unwrap_or_default()
}

/// No piece of the IBAN longer than two characters is anywhere in `text`, as it is written there: a
/// group next to its separating space (random ids and timestamps in the events may hold the same four
/// digits by chance, never with a space).
pub fn assert_no_iban(text: &str) {
    for part in IBAN.split(' ').filter(|p| p.len() > 2) {
        for written in [format!(" {part}"), format!("{part} ")] {
            assert!(
                !text.contains(&written),
                "{written:?} of the IBAN reached the client: {text}"
            );
        }
    }
}
