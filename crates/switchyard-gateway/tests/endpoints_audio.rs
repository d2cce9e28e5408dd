//! Audio transcription and speech through the gateway against mock upstreams (the form forwarded
//! with only the model rewritten, size limits and bad forms), and retries and fallbacks on the
//! non-chat endpoints. The other endpoints are in `endpoints.rs`.

mod common;

use common::assert_error_shape;
use common::endpoints::{
    assert_credentials_swapped, form, gateway, last, mock, post_form, setup, sse_payloads, wav, BOUNDARY,
    SECRET,
};
use serde_json::{json, Value};
use switchyard_mock::RecordedRequest;

#[tokio::test]
async fn transcriptions_forward_the_form_with_only_the_model_rewritten() {
    let (gw, mock, _dir) = setup().await;
    let audio = wav(2);
    let fields = [
        ("model", "mittwald/whisper-large-v3-turbo"),
        ("language", "en"),
        ("response_format", "verbose_json"),
        ("temperature", "0"),
    ];
    let r = post_form(&gw, "/v1/audio/transcriptions", form(&audio, &fields)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "mittwald");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["task"], "transcribe");
    assert_eq!(answer["language"], "en");
    assert_eq!(answer["duration"], 2.0, "the upstream read the real WAV header");
    assert_eq!(answer["extra_fields"]["request_type"], "transcription");

    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/audio/transcriptions");
    assert_credentials_swapped(&seen);
    assert_eq!(
        seen.header("content-type").unwrap(),
        format!("multipart/form-data; boundary={BOUNDARY}")
    );
    assert_eq!(seen.body.len(), form(&audio, &fields).len() - "mittwald/".len());
    let parts = seen.form().expect("a complete form");
    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["file", "model", "language", "response_format", "temperature"]
    );
    assert_eq!(&parts[0].data[..], &audio[..], "the audio arrives byte for byte");
    assert_eq!(parts[0].filename.as_deref(), Some("tone.wav"));
    assert_eq!(parts[0].content_type.as_deref(), Some("audio/wav"));
    assert_eq!(parts[1].text(), Some("whisper-large-v3-turbo"));
    assert_eq!(parts[2].text(), Some("en"));
    assert_eq!(parts[3].text(), Some("verbose_json"));

    // `text` answers are relayed as plain text, untouched.
    let r = post_form(
        &gw,
        "/openai/v1/audio/transcriptions",
        form(
            &audio,
            &[
                ("model", "mittwald/whisper-large-v3-turbo"),
                ("response_format", "text"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let expected = format!("mock transcript of tone.wav ({} bytes, de)", audio.len());
    assert_eq!(r.text().await.unwrap(), expected);

    // `stream=true`: the provider's SSE events are relayed one by one.
    let r = post_form(
        &gw,
        "/v1/audio/transcriptions",
        form(
            &audio,
            &[("model", "mittwald/whisper-large-v3-turbo"), ("stream", "true")],
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(last(&mock).header("accept"), Some("text/event-stream"));
    let events: Vec<Value> = sse_payloads(&r.text().await.unwrap())
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let last_event = events.last().unwrap();
    assert_eq!(last_event["type"], "transcript.text.done", "{events:?}");
    assert_eq!(last_event["text"], expected);
    let deltas: String = events.iter().filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(deltas, expected);

    // json (the default), and translations.
    let r = post_form(
        &gw,
        "/v1/audio/translations",
        form(&audio, &[("model", "mittwald/whisper-large-v3-turbo")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["text"],
        format!("mock translation of tone.wav ({} bytes, english)", audio.len())
    );
    assert_eq!(last(&mock).path, "/v1/audio/translations");
}

#[tokio::test]
async fn audio_over_25_mb_is_a_413_and_bad_forms_are_400s() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir, 64 * 1024 * 1024).await;
    gw.add_openai_compatible("mittwald", &mock.base_url(), SECRET)
        .await;

    let big = form(&vec![0u8; 25 * 1024 * 1024 + 1], &[("model", "mittwald/whisper")]);
    let r = post_form(&gw, "/v1/audio/transcriptions", big).await;
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    let err = assert_error_shape(&b, 413);
    assert_eq!(err["code"], "request_too_large");
    assert!(err["message"].as_str().unwrap().contains("26214400"), "{b}");

    // Without a Content-Length (chunked upload) the limit holds as well.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..27).map(|_| Ok(vec![0u8; 1024 * 1024])).collect();
    let r = gw
        .http
        .post(gw.url("/v1/audio/transcriptions"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    let audio = wav(1);
    let (no_model, param) = (form(&audio, &[("language", "de")]), "model");
    let r = post_form(&gw, "/v1/audio/transcriptions", no_model).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], param);
    let mut cut = form(&audio, &[("model", "mittwald/whisper")]);
    cut.truncate(cut.len() - 10);
    let r = post_form(&gw, "/v1/audio/transcriptions", cut).await;
    assert_eq!(r.status(), 400);
    let r = gw
        .http
        .post(gw.url("/v1/audio/transcriptions"))
        .json(&json!({"model": "mittwald/whisper"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("multipart/form-data"));
    assert_eq!(mock.call_count("transcriptions"), 0);
}

// ---------------------------------------------------------------------------------------------
// Retries and fallbacks on non-chat endpoints
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn embeddings_and_transcriptions_retry_and_fall_back_like_chat() {
    let flaky = mock().await;
    let backup = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir, 1024 * 1024).await;
    gw.add_openai_compatible("flaky", &flaky.base_url(), SECRET).await;
    gw.add_openai_compatible("backup", &backup.base_url(), SECRET)
        .await;
    let (s, b) = gw
        .put(
            "/api/providers/flaky",
            json!({"network_config": {"max_retries": 1, "retry_backoff_initial": 1, "retry_backoff_max": 2},
                   "circuit_breaker": {"failure_threshold": 1000}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // Request fallbacks on embeddings: 2 attempts on the failing provider, then the fallback.
    let r = gw
        .http
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "flaky/fail-embed", "input": "x",
                      "fallbacks": ["backup/Qwen3-Embedding-8B"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "backup");
    assert_eq!(r.headers()["x-switchyard-attempts"], "3");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["extra_fields"]["fallback_index"], 1);
    assert_eq!(flaky.call_count("embeddings"), 2);
    let seen = last(&backup);
    assert_eq!(
        seen.json(),
        json!({"model": "Qwen3-Embedding-8B", "input": "x"}),
        "`fallbacks` is not sent upstream"
    );

    // The multipart body is replayed on every attempt, then to the configured fallback.
    let (s, b) = gw
        .put(
            "/api/providers/flaky",
            json!({"fallbacks": ["backup/whisper-large-v3-turbo"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let audio = wav(1);
    let r = post_form(
        &gw,
        "/v1/audio/transcriptions",
        form(&audio, &[("model", "flaky/fail-whisper"), ("language", "de")]),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "backup");
    let attempts: Vec<RecordedRequest> = flaky
        .requests()
        .into_iter()
        .filter(|q| q.path == "/v1/audio/transcriptions")
        .collect();
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        let parts = a.form().unwrap();
        assert_eq!(&parts[0].data[..], &audio[..]);
        assert_eq!(parts[1].text(), Some("fail-whisper"));
    }
    let parts = last(&backup).form().unwrap();
    assert_eq!(&parts[0].data[..], &audio[..]);
    assert_eq!(parts[1].text(), Some("whisper-large-v3-turbo"));
    assert_eq!(parts[2].text(), Some("de"));

    // Everything failing: the gateway's error, with the trail, and no SDK retry on top.
    gw.put("/api/providers/flaky", json!({"fallbacks": []})).await;
    let r = gw
        .http
        .post(gw.url("/v1/rerank"))
        .json(&json!({"model": "flaky/fail-rerank", "query": "q", "documents": ["d"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["x-should-retry"], "false");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["extra_fields"]["request_type"], "rerank");
}
