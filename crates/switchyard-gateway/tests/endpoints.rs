//! The endpoints besides chat (embeddings, rerank, completions, responses, audio), `/v1/models`,
//! `allowed_requests` and the raw pass-through routes, against mock upstreams: each test checks the
//! exact request the provider received and what the client got back.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{assert_error_shape, TestGateway};
use serde_json::{json, Value};
use switchyard_gateway::ServerConfig;
use switchyard_mock::{start, MockOptions, MockUpstream, RecordedRequest};

const SECRET: &str = "sk-upstream-secret";

async fn mock() -> MockUpstream {
    start(MockOptions {
        api_key: Some(SECRET.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn gateway(dir: &tempfile::TempDir, max_body: usize) -> TestGateway {
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
async fn setup() -> (TestGateway, MockUpstream, tempfile::TempDir) {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir, 1024 * 1024).await;
    gw.add_openai_compatible("mittwald", &mock.base_url(), SECRET)
        .await;
    no_retries(&gw, "mittwald").await;
    (gw, mock, dir)
}

async fn no_retries(gw: &TestGateway, provider: &str) {
    let (s, b) = gw
        .put(
            &format!("/api/providers/{provider}"),
            json!({"network_config": {"max_retries": 0}, "circuit_breaker": {"failure_threshold": 1000}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

fn last(mock: &MockUpstream) -> RecordedRequest {
    mock.requests().pop().expect("the upstream saw a request")
}

/// The upstream got the stored key and none of the client's credentials.
fn assert_credentials_swapped(seen: &RecordedRequest) {
    assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream-secret"));
    for h in ["x-api-key", "cookie", "api-key", "x-goog-api-key"] {
        assert_eq!(seen.header(h), None, "{h} must not reach the upstream");
    }
}

fn decode_base64_f32(s: &str) -> Vec<f32> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn embeddings_pass_through_with_only_the_model_rewritten_on_both_surfaces() {
    let (gw, mock, _dir) = setup().await;
    for path in ["/v1/embeddings", "/openai/v1/embeddings"] {
        let r = gw
            .http
            .post(gw.url(path))
            .header("authorization", "Bearer client-credential")
            .header("x-api-key", "client-credential")
            .json(
                &json!({"model": "mittwald/Qwen3-Embedding-8B", "input": ["first text", "second"],
                          "encoding_format": "float", "user": "u-1"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-provider"], "mittwald");
        let answer: Value = r.json().await.unwrap();
        let seen = last(&mock);
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/v1/embeddings");
        assert_credentials_swapped(&seen);
        assert_eq!(
            seen.json(),
            json!({"model": "Qwen3-Embedding-8B", "input": ["first text", "second"],
                   "encoding_format": "float", "user": "u-1"})
        );
        assert_eq!(answer["object"], "list");
        assert_eq!(answer["data"].as_array().unwrap().len(), 2);
        assert!(answer["data"][0]["embedding"].as_array().unwrap().len() > 1);
        assert_eq!(answer["usage"]["prompt_tokens"], 3);
        assert_eq!(answer["extra_fields"]["request_type"], "embedding");
        assert_eq!(
            answer["extra_fields"]["resolved_model_used"],
            "Qwen3-Embedding-8B"
        );
    }
}

#[tokio::test]
async fn base64_embeddings_are_passed_through_and_encoded_when_the_upstream_ignores_the_format() {
    let (gw, mock, _dir) = setup().await;
    let floats = |model: &str| {
        let gw = &gw;
        let model = model.to_owned();
        async move {
            let (s, b) = gw
                .post("/v1/embeddings", json!({"model": model, "input": "hello world"}))
                .await;
            assert_eq!(s, 200, "{b}");
            b["data"][0]["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect::<Vec<f32>>()
        }
    };
    let expected = floats("mittwald/Qwen3-Embedding-8B").await;

    // The upstream honours base64: the answer passes untouched.
    let (s, b) = gw
        .post(
            "/v1/embeddings",
            json!({"model": "mittwald/Qwen3-Embedding-8B", "input": "hello world", "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(last(&mock).json()["encoding_format"], "base64");
    assert_eq!(
        decode_base64_f32(b["data"][0]["embedding"].as_str().unwrap()),
        expected
    );

    // An upstream that answers floats anyway: the gateway encodes float32 little-endian itself.
    let floatonly = floats("mittwald/floatonly-embed").await;
    assert_eq!(floatonly, expected, "the mock's vectors depend on the input only");
    let (s, b) = gw
        .post(
            "/v1/embeddings",
            json!({"model": "mittwald/floatonly-embed", "input": "hello world", "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        decode_base64_f32(b["data"][0]["embedding"].as_str().unwrap()),
        expected
    );
    assert_eq!(b["extra_fields"]["provider"], "mittwald");
}

#[tokio::test]
async fn bad_embedding_requests_name_the_field_and_never_reach_the_upstream() {
    let (gw, mock, _dir) = setup().await;
    for (body, param) in [
        (json!({"input": "x"}), "model"),
        (json!({"model": "mittwald/e"}), "input"),
        (json!({"model": "mittwald/e", "input": 5}), "input"),
        (
            json!({"model": "mittwald/e", "input": "x", "encoding_format": "hex"}),
            "encoding_format",
        ),
    ] {
        let (s, b) = gw.post("/v1/embeddings", body).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(assert_error_shape(&b, 400)["param"], param, "{b}");
    }
    let r = gw
        .http
        .post(gw.url("/v1/embeddings"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(mock.call_count("embeddings"), 0);
}

// ---------------------------------------------------------------------------------------------
// Rerank, completions, responses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rerank_reaches_the_provider_in_the_vllm_shape() {
    let (gw, mock, _dir) = setup().await;
    let body = json!({"model": "mittwald/Qwen3-VL-Reranker-2B", "query": "red apple",
                      "documents": ["a green pear", "a red apple", "red wine"], "top_n": 2,
                      "instruction": "rank fruit"});
    let (s, b) = gw.post("/openai/v1/rerank", body).await;
    assert_eq!(s, 200, "{b}");
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/rerank");
    assert_credentials_swapped(&seen);
    assert_eq!(
        seen.json(),
        json!({"model": "Qwen3-VL-Reranker-2B", "query": "red apple",
               "documents": ["a green pear", "a red apple", "red wine"], "top_n": 2,
               "instruction": "rank fruit"})
    );
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["index"], 1);
    assert_eq!(results[0]["relevance_score"], 1.0);
    assert_eq!(results[0]["document"]["text"], "a red apple");
    assert_eq!(results[1]["index"], 2);
    assert_eq!(b["extra_fields"]["request_type"], "rerank");

    let (s, b) = gw
        .post("/v1/rerank", json!({"model": "mittwald/r", "query": "q"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["param"], "documents");
}

/// Reads an SSE body into its `data:` payloads.
fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn legacy_completions_json_and_stream() {
    let (gw, mock, _dir) = setup().await;
    let (s, b) = gw
        .post(
            "/v1/completions",
            json!({"model": "mittwald/gpt-oss-120b", "prompt": "Say this", "max_tokens": 16, "echo": false}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["object"], "text_completion");
    assert_eq!(b["choices"][0]["text"], "echo: Say this");
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/completions");
    assert_eq!(
        seen.json(),
        json!({"model": "gpt-oss-120b", "prompt": "Say this", "max_tokens": 16, "echo": false})
    );

    let r = gw
        .http
        .post(gw.url("/openai/v1/completions"))
        .json(
            &json!({"model": "mittwald/gpt-oss-120b", "prompt": "one two", "stream": true,
                      "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let seen = last(&mock);
    assert_eq!(seen.header("accept"), Some("text/event-stream"));
    assert_eq!(seen.json()["stream"], true);
    let payloads = sse_payloads(&r.text().await.unwrap());
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let text: String = payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "echo: one two");
    assert!(payloads.iter().any(|p| p.contains("\"usage\":{")), "{payloads:?}");
}

#[tokio::test]
async fn responses_pass_through_and_streams_keep_their_named_events() {
    let (gw, mock, _dir) = setup().await;
    let (s, b) = gw
        .post(
            "/v1/responses",
            json!({"model": "mittwald/gpt-oss-120b", "input": "Hi there", "instructions": "be brief",
                   "reasoning": {"effort": "low"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["object"], "response");
    assert_eq!(b["output"][0]["content"][0]["text"], "echo: Hi there");
    assert_eq!(b["extra_fields"]["request_type"], "responses");
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/responses");
    assert_eq!(
        seen.json(),
        json!({"model": "gpt-oss-120b", "input": "Hi there", "instructions": "be brief",
               "reasoning": {"effort": "low"}})
    );

    // The stream reaches the client byte for byte: every `event:` line, no `[DONE]` added.
    let body = json!({"model": "mittwald/gpt-oss-120b", "input": "Hi there", "stream": true});
    let r = gw
        .http
        .post(gw.url("/openai/v1/responses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let through_gateway = r.text().await.unwrap();
    let mut direct_body = body.clone();
    direct_body["model"] = json!("gpt-oss-120b");
    let direct = reqwest::Client::new()
        .post(format!("{}/responses", mock.base_url()))
        .bearer_auth(SECRET)
        .json(&direct_body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Ids and sequence numbers differ per call; compare the event names and the text.
    let names = |t: &str| {
        t.split("\n\n")
            .filter_map(|e| e.lines().next().and_then(|l| l.strip_prefix("event: ")))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&through_gateway), names(&direct));
    assert_eq!(names(&through_gateway).last().unwrap(), "response.completed");
    assert!(through_gateway.starts_with("event: response.created\ndata: {"));
    assert!(!through_gateway.contains("[DONE]"));
    assert!(!through_gateway.contains("\"error\""), "{through_gateway}");

    let (s, b) = gw
        .post("/v1/responses", json!({"model": "mittwald/m", "input": 3}))
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["param"], "input");

    // A stream cut before `response.completed` ends with an error event, never silently.
    let r = gw
        .http
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "mittwald/cut-model", "input": "a b c", "stream": true}))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("response.output_text.delta"), "{text}");
    assert!(
        sse_payloads(&text).last().unwrap().starts_with("{\"error\""),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Audio
// ---------------------------------------------------------------------------------------------

/// A real 16-bit PCM mono WAV file: `seconds` of a 440 Hz tone at 8 kHz.
fn wav(seconds: u32) -> Vec<u8> {
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

const BOUNDARY: &str = "----switchyardTestBoundary";

/// A multipart form with the file FIRST (routing must still find `model` after it).
fn form(file: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
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

async fn post_form(gw: &TestGateway, path: &str, body: Vec<u8>) -> reqwest::Response {
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

// ---------------------------------------------------------------------------------------------
// allowed_requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allowed_requests_gate_each_endpoint_with_a_403() {
    let (gw, mock, _dir) = setup().await;
    let (s, b) = gw
        .put(
            "/api/providers/mittwald",
            json!({"custom_provider_config": {"base_provider_type": "openai",
                   "allowed_requests": {"chat_completion": true, "embedding": true, "text_completion": true}}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = gw
        .post("/v1/embeddings", json!({"model": "mittwald/e", "input": "x"}))
        .await;
    assert_eq!(s, 200);
    let blocked = [
        (
            "/v1/rerank",
            json!({"model": "mittwald/r", "query": "q", "documents": ["d"]}),
            "rerank",
        ),
        (
            "/v1/responses",
            json!({"model": "mittwald/m", "input": "x"}),
            "responses",
        ),
        (
            "/v1/completions",
            json!({"model": "mittwald/m", "prompt": "x", "stream": true}),
            "text_completion_stream",
        ),
        (
            "/passthrough/mittwald/v1/chat/completions",
            json!({"model": "m", "messages": []}),
            "passthrough",
        ),
    ];
    let before = mock.requests().len();
    for (path, body, request_type) in blocked {
        let (s, b) = gw.post(path, body).await;
        assert_eq!(s, 403, "{path}: {b}");
        let err = assert_error_shape(&b, 403);
        assert_eq!(err["type"], "permission_error");
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("'{request_type}'")) && msg.contains("allowed_requests"),
            "{msg}"
        );
    }
    let r = post_form(
        &gw,
        "/v1/audio/transcriptions",
        form(&wav(1), &[("model", "mittwald/whisper")]),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        mock.requests().len(),
        before,
        "nothing blocked reached the upstream"
    );
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn models_are_merged_across_protocols_within_key_allowlists() {
    let (gw, mock, _dir) = setup().await;
    gw.post(
        "/api/providers",
        json!({"provider": "anthropic", "network_config": {"base_url": mock.base_url()}}),
    )
    .await;
    let (s, b) = gw
        .post(
            "/api/providers/anthropic/keys",
            json!({"name": "claude", "value": SECRET, "models": ["*"], "blacklisted_models": ["claude-4-sonnet"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    gw.post(
        "/api/providers",
        json!({"provider": "gemini", "network_config": {"base_url": format!("http://{}", mock.addr())}}),
    )
    .await;
    let (s, b) = gw
        .post(
            "/api/providers/gemini/keys",
            json!({"name": "g", "value": SECRET, "models": ["gemini-2.5-flash", "text-embedding-004"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = gw.get("/openai/v1/models").await;
    assert_eq!(s, 200, "{b}");
    let ids: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"anthropic/claude-3-7-sonnet"), "{ids:?}");
    assert!(
        !ids.contains(&"anthropic/claude-4-sonnet"),
        "blacklisted: {ids:?}"
    );
    assert!(ids.contains(&"mittwald/gpt-oss-120b"), "{ids:?}");
    assert!(ids.contains(&"gemini/gemini-2.5-flash"), "{ids:?}");
    assert!(
        !ids.contains(&"gemini/gemini-2.5-pro"),
        "outside the key's list: {ids:?}"
    );
    let flash = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "gemini/gemini-2.5-flash")
        .unwrap();
    assert_eq!(
        flash["inputTokenLimit"], 1_048_576,
        "listed by the upstream, not from the key"
    );
    assert_eq!(flash["owned_by"], "gemini");
    let gemini_listing = mock
        .requests()
        .into_iter()
        .find(|q| q.path == "/v1beta/models")
        .expect("Gemini's model list was asked for");
    assert_eq!(gemini_listing.header("x-goog-api-key"), Some(SECRET));
    let claude = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "anthropic/claude-3-7-sonnet")
        .unwrap();
    assert_eq!(claude["object"], "model");
    assert_eq!(claude["owned_by"], "anthropic");
    assert_eq!(claude["created"], 0);
    let listing = mock
        .requests()
        .into_iter()
        .rev()
        .find(|q| q.header("anthropic-version").is_some())
        .expect("Anthropic's model list was asked for");
    assert_eq!(listing.path, "/v1/models");
    assert_eq!(listing.header("x-api-key"), Some(SECRET));
}

// ---------------------------------------------------------------------------------------------
// Pass-through
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn passthrough_forwards_bytes_and_swaps_credentials() {
    let (gw, mock, _dir) = setup().await;
    // A real virtual key: the gateway checks it (pass-through is governed too), then never forwards it.
    const VK: &str = "sk-bf-passthrough-test-key-0001";
    let (st, body) = gw
        .post("/api/governance/virtual-keys", json!({"name": "pt", "value": VK}))
        .await;
    assert_eq!(st, 200, "{body}");
    // Odd spacing and field order must survive: the body is not re-encoded.
    let raw = "{ \"messages\": [{\"role\":\"user\",\"content\":\"Hi\"}],\n  \"model\":\"gpt-oss-120b\" }";
    let r = gw
        .http
        .post(gw.url("/passthrough/mittwald/v1/chat/completions?trace=1&key=client-key"))
        .header("authorization", "Bearer client-credential")
        .header("x-api-key", "client-credential")
        .header("cookie", "session=1")
        .header("x-bf-vk", VK)
        .header("x-request-id", "req-42")
        .header("openai-organization", "org-of-someone-else")
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-provider"], "mittwald");
    let answer = r.text().await.unwrap();
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/chat/completions?trace=1");
    assert_eq!(&seen.body[..], raw.as_bytes());
    assert_credentials_swapped(&seen);
    assert_eq!(seen.header("x-bf-vk"), None);
    assert_eq!(seen.header("openai-organization"), None);
    assert_eq!(seen.header("x-request-id"), Some("req-42"));
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: Hi");
    assert!(
        v.get("extra_fields").is_none(),
        "the answer is relayed as the provider sent it"
    );

    // Streams pass event by event.
    let r = gw
        .http
        .post(gw.url("/passthrough/mittwald/chat/completions"))
        .json(&json!({"model": "gpt-oss-120b", "stream": true,
                      "messages": [{"role": "user", "content": "a b"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(last(&mock).path, "/v1/chat/completions");
    let payloads = sse_payloads(&r.text().await.unwrap());
    assert_eq!(payloads.last().unwrap(), "[DONE]");

    // Unknown providers, paths leaving the base URL and other methods are refused.
    let (s, b) = gw.post("/passthrough/nope/v1/x", json!({})).await;
    assert_eq!(s, 404, "{b}");
    let (s, _) = gw.post("/passthrough/mittwald/v1/../admin", json!({})).await;
    assert!(s == 400 || s == 404, "{s}");
    let (s, _) = gw.get("/passthrough/mittwald/v1/models").await;
    assert_eq!(s, 405);
    // Without a model in the body only a `*` key may serve; a provider with none says so.
    gw.post(
        "/api/providers",
        json!({"provider": "listed", "network_config": {"base_url": mock.base_url()},
               "custom_provider_config": {"base_provider_type": "openai"}}),
    )
    .await;
    gw.post(
        "/api/providers/listed/keys",
        json!({"name": "k", "value": SECRET, "models": ["gpt-oss-120b"]}),
    )
    .await;
    let (s, b) = gw
        .post("/passthrough/listed/v1/embeddings", json!({"input": "x"}))
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["param"], "model");
    let (s, b) = gw
        .post(
            "/passthrough/listed/v1/chat/completions",
            json!({"model": "gpt-oss-120b", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // mittwald has a `*` key: the model-less request goes through (and the upstream judges it).
    let (s, b) = gw
        .post("/passthrough/mittwald/v1/embeddings", json!({"input": "x"}))
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Field required: model"),
        "{b}"
    );
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/embeddings");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream-secret"));
    // Upstream errors keep their status.
    let (s, b) = gw
        .post(
            "/passthrough/mittwald/v1/chat/completions",
            json!({"model": "flat400-x", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test]
async fn provider_passthrough_routes_use_each_providers_auth() {
    let (gw, mock, _dir) = setup().await;
    for (provider, url) in [
        ("openai", mock.base_url()),
        ("anthropic", mock.base_url()),
        ("gemini", format!("http://{}", mock.addr())),
    ] {
        gw.post(
            "/api/providers",
            json!({"provider": provider, "network_config": {"base_url": url, "max_retries": 0}}),
        )
        .await;
        let (s, b) = gw
            .post(
                &format!("/api/providers/{provider}/keys"),
                json!({"name": "k", "value": SECRET, "models": ["*"]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    let (s, b) = gw
        .post(
            "/openai_passthrough/v1/embeddings",
            json!({"model": "Qwen3-Embedding-8B", "input": "x"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/embeddings");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream-secret"));

    let r = gw
        .http
        .post(gw.url("/anthropic_passthrough/v1/messages"))
        .header("x-api-key", "client-credential")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-3-7-sonnet", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "message");
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(SECRET));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));

    let r = gw
        .http
        .post(gw.url("/genai_passthrough/v1beta/models/gemini-2.5-flash:generateContent?key=client-key"))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert!(b["candidates"].is_array(), "{b}");
    let seen = last(&mock);
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some(SECRET));
}

#[tokio::test]
async fn every_endpoint_and_the_passthrough_are_logged() {
    let (gw, _mock, _dir) = setup().await;
    gw.post(
        "/v1/embeddings",
        json!({"model": "mittwald/e", "input": "one two three"}),
    )
    .await;
    gw.post("/v1/responses", json!({"model": "mittwald/m", "input": "a b"}))
        .await;
    gw.post(
        "/passthrough/mittwald/v1/chat/completions",
        json!({"model": "gpt-oss-120b", "messages": [{"role": "user", "content": "x y"}]}),
    )
    .await;
    post_form(
        &gw,
        "/v1/audio/transcriptions",
        form(&wav(1), &[("model", "mittwald/whisper")]),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let logs = loop {
        let (_, page) = gw.get("/api/logs?limit=100&sort_by=timestamp&order=asc").await;
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        if logs.len() >= 4 || Instant::now() > deadline {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(logs.len(), 4, "{logs:?}");
    let types: Vec<&str> = logs.iter().map(|l| l["request_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["embedding", "responses", "passthrough", "transcription"]);
    for l in &logs {
        assert_eq!(l["provider"], "mittwald", "{l}");
        assert_eq!(l["status"], 200, "{l}");
    }
    assert_eq!(logs[0]["input_tokens"], 3);
    assert_eq!(logs[1]["input_tokens"], 2);
    assert_eq!(logs[1]["output_tokens"], 3);
    assert_eq!(logs[2]["model"], "gpt-oss-120b");
    assert_eq!(logs[2]["output_tokens"], 3);
    assert_eq!(logs[3]["model"], "whisper");
}

#[tokio::test]
async fn providers_without_the_endpoint_are_skipped_in_the_plan() {
    let (gw, mock, _dir) = setup().await;
    gw.post(
        "/api/providers",
        json!({"provider": "anthropic", "network_config": {"base_url": mock.base_url()}}),
    )
    .await;
    gw.post(
        "/api/providers/anthropic/keys",
        json!({"name": "claude", "value": SECRET, "models": ["*"]}),
    )
    .await;
    let before = mock.requests().len();
    let (s, b) = gw
        .post(
            "/v1/embeddings",
            json!({"model": "anthropic/claude-3-7-sonnet", "input": "x"}),
        )
        .await;
    assert_eq!(s, 501, "{b}");
    let msg = assert_error_shape(&b, 501)["message"].as_str().unwrap();
    assert!(msg.contains("anthropic"), "{msg}");
    assert_eq!(mock.requests().len(), before, "nothing was sent");

    let (s, b) = gw
        .post(
            "/v1/embeddings",
            json!({"model": "anthropic/claude-3-7-sonnet", "input": "x", "fallbacks": ["mittwald/Qwen3-Embedding-8B"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["extra_fields"]["provider"], "mittwald");
    assert_eq!(b["extra_fields"]["fallback_index"], 1);
    let trail = b["extra_fields"]["attempts"].as_array().unwrap();
    assert_eq!(trail[0]["outcome"], "skipped: wire API not supported");
}
