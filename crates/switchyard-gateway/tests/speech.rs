//! `POST /v1/audio/speech` and `/openai/v1/audio/speech` over the real server and the mock upstream
//! (which answers like mittwald's TTS: always `audio/mpeg`): the audio arrives byte for byte with the
//! upstream's content type, routed by `model`, logged and metered per character; errors are in the
//! OpenAI shape; a target failing before its first byte falls back; a cut answer is never a clean end.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error_shape, TestGateway};
use serde_json::{json, Value};
use switchyard_gateway::ServerConfig;
use switchyard_mock::{speech_audio, start, MockOptions, MockUpstream};

const SECRET: &str = "sk-upstream-secret";

async fn mock() -> MockUpstream {
    start(MockOptions {
        api_key: Some(SECRET.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn setup() -> (TestGateway, MockUpstream, tempfile::TempDir) {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    })
    .await;
    gw.add_openai_compatible("mittwald", &mock.base_url(), SECRET)
        .await;
    let (s, b) = gw
        .put(
            "/api/providers/mittwald",
            json!({"network_config": {"max_retries": 0}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    (gw, mock, dir)
}

async fn speak(gw: &TestGateway, path: &str, body: Value) -> reqwest::Response {
    gw.http.post(gw.url(path)).json(&body).send().await.unwrap()
}

async fn logs(gw: &TestGateway, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, page) = gw.get("/api/logs?limit=100&sort_by=timestamp&order=asc").await;
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= at_least || Instant::now() > deadline {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn speech_streams_the_upstream_audio_with_its_content_type_on_both_prefixes() {
    let (gw, mock, _dir) = setup().await;
    let (s, b) = gw
        .post(
            "/api/governance/pricing-overrides",
            json!({"provider": "mittwald", "model": "Qwen3-TTS-12Hz-1.7B-CustomVoice",
                   "input_cost_per_million_tokens": 20.0, "output_cost_per_million_tokens": 0.0}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let input = "Grüß Gott, Welt";
    for path in ["/v1/audio/speech", "/openai/v1/audio/speech"] {
        let body = json!({"model": "mittwald/Qwen3-TTS-12Hz-1.7B-CustomVoice", "input": input,
                          "voice": "Vivian", "response_format": "wav", "language": "German"});
        let r = speak(&gw, path, body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "audio/mpeg",
            "the upstream's type is kept"
        );
        assert_eq!(r.headers()["x-switchyard-provider"], "mittwald");
        let audio = r.bytes().await.unwrap();
        assert_eq!(
            &audio[..],
            &speech_audio(input, "Vivian")[..],
            "{path}: the exact bytes"
        );

        let seen = mock.requests().pop().unwrap();
        assert_eq!(seen.path, "/v1/audio/speech");
        assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream-secret"));
        let sent: Value = serde_json::from_slice(&seen.body).unwrap();
        assert_eq!(
            sent,
            json!({"model": "Qwen3-TTS-12Hz-1.7B-CustomVoice", "input": input, "voice": "Vivian",
                   "response_format": "wav", "language": "German"}),
            "only model is rewritten"
        );
    }
    let rows = logs(&gw, 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["request_type"], "speech", "{row}");
        assert_eq!(row["provider"], "mittwald", "{row}");
        assert_eq!(row["model"], "Qwen3-TTS-12Hz-1.7B-CustomVoice", "{row}");
        assert_eq!(row["status"], 200, "{row}");
        assert_eq!(row["input_tokens"], 15, "metered per character: {row}");
        assert_eq!(row["cost_known"], true, "{row}");
        let cost = row["cost_usd"].as_f64().unwrap();
        assert!((cost - 15.0 * 20.0 / 1e6).abs() < 1e-12, "{row}");
    }
}

#[tokio::test]
async fn speech_errors_are_openai_shaped() {
    let (gw, mock, _dir) = setup().await;
    // A caller's mistake is a 400 naming the field, before any upstream call.
    let r = speak(
        &gw,
        "/v1/audio/speech",
        json!({"model": "mittwald/tts", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&body, 400)["param"], "voice", "{body}");
    assert!(mock.requests().is_empty());
    // mittwald's 500 for a parameter it refuses (aac) reaches the client in OpenAI's shape.
    let body = json!({"model": "mittwald/tts", "input": "x", "voice": "Ryan", "response_format": "aac"});
    let r = speak(&gw, "/openai/v1/audio/speech", body).await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_error_shape(&body, 500);
    // A provider that is not configured is the gateway's own 4xx.
    let r = speak(
        &gw,
        "/v1/audio/speech",
        json!({"model": "openai/tts-1", "input": "x", "voice": "a"}),
    )
    .await;
    let status = r.status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    let body: Value = r.json().await.unwrap();
    assert_error_shape(&body, status);
}

#[tokio::test]
async fn speech_falls_back_before_the_first_byte_and_never_ends_a_cut_answer_cleanly() {
    let (gw, mock, _dir) = setup().await;
    let body = json!({"model": "mittwald/fail-tts", "input": "Hallo", "voice": "Vivian",
                      "fallbacks": ["mittwald/tts"]});
    let r = speak(&gw, "/v1/audio/speech", body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-fallback-index"], "1");
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        &speech_audio("Hallo", "Vivian")[..]
    );
    assert_eq!(mock.call_count("speech"), 2);

    let body = json!({"model": "mittwald/cut-tts", "input": "Hallo", "voice": "Vivian"});
    let r = speak(&gw, "/v1/audio/speech", body).await;
    assert_eq!(r.status(), 200, "committed at the first bytes");
    assert!(r.bytes().await.is_err(), "a cut answer must not end cleanly");
    let rows = logs(&gw, 2).await;
    let cut = rows
        .iter()
        .find(|r| r["model"] == "cut-tts")
        .expect("a row for the cut call");
    assert!(
        cut["error"].to_string().contains("mid-answer") || cut.to_string().contains("mid-answer"),
        "{cut}"
    );
}

#[tokio::test]
async fn speech_audio_reaches_the_client_as_it_arrives() {
    let (gw, _mock, _dir) = setup().await;
    // The upstream sends its first chunk and then nothing for an hour, with the connection open: the
    // client has that chunk long before the answer could be complete.
    let body = json!({"model": "mittwald/stall-tts", "input": "Hallo Welt", "voice": "Vivian"});
    let mut r = speak(&gw, "/v1/audio/speech", body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/mpeg");
    let first = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("the first chunk arrives while the upstream is still sending")
        .unwrap()
        .unwrap();
    let audio = speech_audio("Hallo Welt", "Vivian");
    assert_eq!(&first[..], &audio[..audio.len().div_ceil(3)]);
}
