//! The endpoints besides chat (embeddings, rerank, completions, responses), `/v1/models`,
//! `allowed_requests` and the raw pass-through routes, against mock upstreams: each test checks the
//! exact request the provider received and what the client got back. Audio, and retries and
//! fallbacks on the non-chat endpoints, are in `endpoints_audio.rs`.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::assert_error_shape;
use common::endpoints::{
    assert_credentials_swapped, form, last, post_form, setup, sse_payloads, wav, SECRET,
};
use serde_json::{json, Value};

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
