//! The endpoint tests' set-up: a gateway with one OpenAI-compatible provider in front of a mock
//! upstream, what the upstream received, SSE payloads, and WAV files in multipart forms for audio.

use std::time::Duration;

use serde_json::json;
use switchyard_gateway::ServerConfig;
use switchyard_mock::{start, MockOptions, MockUpstream, RecordedRequest};

use super::TestGateway;

pub const SECRET: &str = "sk-upstream-secret";

pub async fn mock() -> MockUpstream {
    start(MockOptions {
        api_key: Some(SECRET.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

pub async fn gateway(dir: &tempfile::TempDir, max_body: usize) -> TestGateway {
    TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        max_request_body_bytes: max_body,
        ..ServerConfig::default()
    })
    .await
}

/// A gateway with one OpenAI-compatible provider `mittwald` (no retries) in front of one mock.
pub async fn setup() -> (TestGateway, MockUpstream, tempfile::TempDir) {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir, 1024 * 1024).await;
    gw.add_openai_compatible("mittwald", &mock.base_url(), SECRET)
        .await;
    no_retries(&gw, "mittwald").await;
    (gw, mock, dir)
}

pub async fn no_retries(gw: &TestGateway, provider: &str) {
    let (s, b) = gw
        .put(
            &format!("/api/providers/{provider}"),
            json!({"network_config": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 1000}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

pub fn last(mock: &MockUpstream) -> RecordedRequest {
    mock.requests().pop().expect("the upstream saw a request")
}

/// The upstream got the stored key and none of the client's credentials.
pub fn assert_credentials_swapped(seen: &RecordedRequest) {
    assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream-secret"));
    for h in ["x-api-key", "cookie", "api-key", "x-goog-api-key"] {
        assert_eq!(seen.header(h), None, "{h} must not reach the upstream");
    }
}

/// Reads an SSE body into its `data:` payloads.
pub fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

/// A real 16-bit PCM mono WAV file: `seconds` of a 440 Hz tone at 8 kHz.
pub fn wav(seconds: u32) -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * seconds)
        .map(|i| ((i as f32 * 440.0 * 2.0 * std::f32::consts::PI / rate as f32).sin() * 8000.0) as i16)
        .collect();
    let data_len = samples.len() as u32 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

pub const BOUNDARY: &str = "----switchyardTestBoundary";

/// A multipart form with the file FIRST (routing must still find `model` after it).
pub fn form(file: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tone.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(file);
    out.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

pub async fn post_form(gw: &TestGateway, path: &str, body: Vec<u8>) -> reqwest::Response {
    gw.http
        .post(gw.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("authorization", "Bearer client-credential")
        .body(body)
        .send()
        .await
        .unwrap()
}
