//! The response cache (`semantic_cache` plugin) through the real server against the mock upstream:
//! identical requests reach the upstream once, keys ignore key order and whitespace but not any field
//! that changes the answer, streams replay as streams, TTLs expire, `no-store`/`no-cache` are obeyed,
//! virtual keys are kept apart unless configured otherwise, errors are never cached, hits are logged
//! at zero cost and not charged, and a paraphrase hits semantically while an unrelated question does
//! not (the mock's `bow*` model is a real bag-of-words embedding).

mod common;

use std::time::{Duration, Instant};

use common::governance::{chat_body, header, log_rows, setup, Answer, COST_PER_CALL, PROVIDER};
use common::{create_vk, TestGateway};
use serde_json::{json, Value};

const MODEL: &str = "mittwald-shared/m";

async fn enable(gw: &TestGateway, config: Value) {
    let (s, b) = gw
        .post(
            "/api/plugins",
            json!({"name": "semantic_cache", "enabled": true, "config": config}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

async fn send_raw(gw: &TestGateway, headers: &[(&str, &str)], path: &str, body: String) -> Answer {
    let mut req = gw
        .http
        .post(gw.url(path))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        headers,
        body: r.json().await.unwrap_or(Value::Null),
    }
}

async fn send(gw: &TestGateway, headers: &[(&str, &str)], body: Value) -> Answer {
    send_raw(gw, headers, "/v1/chat/completions", body.to_string()).await
}

fn debug(a: &Answer) -> &Value {
    &a.body["extra_fields"]["cache_debug"]
}

fn is_hit(a: &Answer) -> bool {
    debug(a)["cache_hit"] == true
}

const KEY: (&str, &str) = ("x-bf-cache-key", "campaign-7");

#[tokio::test]
async fn identical_requests_reach_the_upstream_once_and_headers_stay_home() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({"dimension": 1, "ttl": "5m"})).await;
    let first = send(&gw, &[KEY, ("cache-control", "max-age=0")], chat_body(MODEL)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(!is_hit(&first), "{}", first.body);
    assert_eq!(header(&first, "x-switchyard-cache"), "miss");
    let second = send(&gw, &[KEY], chat_body(MODEL)).await;
    assert_eq!(second.status, 200);
    assert_eq!(
        mock.call_count("chat"),
        1,
        "the second call was answered by the cache"
    );
    let d = debug(&second);
    assert_eq!(d["cache_hit"], true, "{}", second.body);
    assert_eq!(d["hit_type"], "direct");
    assert!(d["cache_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(second.body["choices"], first.body["choices"]);
    assert_eq!(second.body["id"], first.body["id"]);
    // None of the cache's headers went upstream.
    let seen = mock.requests().pop().unwrap();
    for h in ["x-bf-cache-key", "cache-control"] {
        assert!(seen.header(h).is_none(), "{h} reached the upstream");
    }
    // Without a cache key (and no default key) the cache is not used.
    send(&gw, &[], chat_body(MODEL)).await;
    send(&gw, &[], chat_body(MODEL)).await;
    assert_eq!(mock.call_count("chat"), 3);
    // Hit/miss counters.
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"switchyard_cache_lookups_total{result="hit",hit_type="direct"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchyard_cache_lookups_total{result="miss",hit_type=""} 1"#),
        "{metrics}"
    );
    let (_, stats) = gw.get("/api/cache/stats").await;
    assert_eq!(stats["hits"], 1, "{stats}");
    assert_eq!(stats["entries"], 1, "{stats}");
    assert_eq!(stats["hit_rate"], 0.5, "{stats}");
}

#[tokio::test]
async fn key_order_and_whitespace_do_not_matter() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({"default_cache_key": "all"})).await;
    let a = format!(
        r#"{{"model":"{MODEL}","max_tokens":3,"temperature":0.5,"messages":[{{"role":"user","content":"Hello there"}}]}}"#
    );
    let b = format!(
        "{{\n  \"messages\" : [ {{ \"content\" : \"Hello there\", \"role\" : \"user\" }} ],\n  \"temperature\": 0.5,\n\t\"max_tokens\" :3, \"model\": \"{MODEL}\"\n}}"
    );
    let first = send_raw(&gw, &[], "/v1/chat/completions", a).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = send_raw(&gw, &[], "/v1/chat/completions", b).await;
    assert!(is_hit(&second), "{}", second.body);
    assert_eq!(mock.call_count("chat"), 1);
}

#[tokio::test]
async fn each_answer_changing_part_misses() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({})).await;
    let base = chat_body(MODEL);
    assert!(!is_hit(&send(&gw, &[KEY], base.clone()).await));
    let mut variants = Vec::new();
    for (field, value) in [
        ("temperature", json!(0.1)),
        ("max_tokens", json!(2)),
        ("messages", json!([{"role": "user", "content": "Hello there!"}])),
        ("messages", json!([{"role": "system", "content": "Hello there"}])),
        ("model", json!("mittwald-shared/m2")),
        ("user", json!("someone")),
    ] {
        let mut v = base.clone();
        v[field] = value;
        variants.push((format!("{field} changed"), v, KEY));
    }
    variants.push((
        "another cache key".into(),
        base.clone(),
        ("x-bf-cache-key", "other"),
    ));
    for (i, (what, body, key)) in variants.into_iter().enumerate() {
        let a = send(&gw, &[key], body).await;
        assert_eq!(a.status, 200, "{what}: {}", a.body);
        assert!(!is_hit(&a), "{what} must miss: {}", a.body);
        assert_eq!(mock.call_count("chat"), i as u64 + 2, "{what}");
    }
    // The stream flag: a streamed request does not get the JSON answer.
    let mut streamed = base.clone();
    streamed["stream"] = json!(true);
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header(KEY.0, KEY.1)
        .json(&streamed)
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(r.headers()["x-switchyard-cache"], "miss");
    // The base request still hits.
    assert!(is_hit(&send(&gw, &[KEY], base).await));
}

async fn stream_text(gw: &TestGateway, body: &Value) -> (reqwest::header::HeaderMap, String) {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header(KEY.0, KEY.1)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    (headers, r.text().await.unwrap())
}

async fn wait_entries(gw: &TestGateway, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, stats) = gw.get("/api/cache/stats").await;
        if stats["entries"].as_u64() >= Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "cache never held {n} entries: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_stream_is_replayed_as_the_same_stream() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({})).await;
    let mut body = chat_body(MODEL);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (_, first) = stream_text(&gw, &body).await;
    wait_entries(&gw, 1).await;
    let (headers, second) = stream_text(&gw, &body).await;
    assert_eq!(
        mock.call_count("chat"),
        1,
        "the replay did not reach the upstream"
    );
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(headers["x-switchyard-cache"], "hit");
    let (a, b) = (data_lines(&first), data_lines(&second));
    assert_eq!(a.len(), b.len(), "same number of events\n{first}\n---\n{second}");
    assert_eq!(b.iter().filter(|d| *d == "[DONE]").count(), 1);
    assert_eq!(b.last().map(String::as_str), Some("[DONE]"));
    let marked: Vec<usize> = (0..b.len()).filter(|&i| b[i].contains("cache_debug")).collect();
    assert_eq!(marked.len(), 1, "one event carries the marker: {second}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if i == marked[0] {
            let mut y: Value = serde_json::from_str(y).unwrap();
            assert_eq!(y["extra_fields"]["cache_debug"]["cache_hit"], true);
            y.as_object_mut().unwrap().remove("extra_fields");
            assert_eq!(y, serde_json::from_str::<Value>(x).unwrap());
        } else {
            assert_eq!(x, y, "event {i}");
        }
    }
    // The usage chunk came back too.
    assert!(
        b.iter()
            .any(|d| d.contains("\"usage\"") && d.contains("total_tokens")),
        "{second}"
    );
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({"ttl": 300})).await;
    let ttl = [KEY, ("x-bf-cache-ttl", "1s")];
    send(&gw, &ttl, chat_body(MODEL)).await;
    assert!(is_hit(&send(&gw, &ttl, chat_body(MODEL)).await));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!is_hit(&send(&gw, &ttl, chat_body(MODEL)).await), "expired");
    assert_eq!(mock.call_count("chat"), 2);
    // Seconds without a unit are accepted too; a bad TTL is the caller's mistake, named.
    let a = send(&gw, &[KEY, ("x-bf-cache-ttl", "2")], chat_body(MODEL)).await;
    assert_eq!(a.status, 200);
    let a = send(&gw, &[KEY, ("x-bf-cache-ttl", "soon")], chat_body(MODEL)).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["error"]["param"], "x-bf-cache-ttl");
}

#[tokio::test]
async fn no_store_and_no_cache_are_obeyed() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({})).await;
    // no-store (Bifrost's header or Cache-Control): nothing written.
    send(&gw, &[KEY, ("x-bf-cache-no-store", "true")], chat_body(MODEL)).await;
    send(&gw, &[KEY, ("cache-control", "no-store")], chat_body(MODEL)).await;
    assert_eq!(mock.call_count("chat"), 2);
    // Stored now; no-store still reads hits.
    send(&gw, &[KEY], chat_body(MODEL)).await;
    assert!(is_hit(
        &send(&gw, &[KEY, ("x-bf-cache-no-store", "true")], chat_body(MODEL)).await
    ));
    // no-cache: not answered from the cache (the upstream is asked again).
    let a = send(&gw, &[KEY, ("cache-control", "no-cache")], chat_body(MODEL)).await;
    assert!(!is_hit(&a));
    assert_eq!(mock.call_count("chat"), 4);
}

#[tokio::test]
async fn virtual_keys_do_not_share_entries_unless_configured() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({})).await;
    let (_, a) = create_vk(&gw, json!({"name": "a"})).await;
    let (_, b) = create_vk(&gw, json!({"name": "b"})).await;
    send(&gw, &[KEY, ("x-bf-vk", &a)], chat_body(MODEL)).await;
    assert!(!is_hit(
        &send(&gw, &[KEY, ("x-bf-vk", &b)], chat_body(MODEL)).await
    ));
    assert!(is_hit(
        &send(&gw, &[KEY, ("x-bf-vk", &a)], chat_body(MODEL)).await
    ));
    assert_eq!(mock.call_count("chat"), 2);
    let (s, body) = gw
        .put(
            "/api/plugins/semantic_cache",
            json!({"enabled": true, "config": {"disable_identity_scoping": true}}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    send(&gw, &[KEY, ("x-bf-vk", &a)], chat_body(MODEL)).await;
    assert!(is_hit(
        &send(&gw, &[KEY, ("x-bf-vk", &b)], chat_body(MODEL)).await
    ));
    assert_eq!(mock.call_count("chat"), 3);
}

#[tokio::test]
async fn upstream_errors_are_never_cached() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({})).await;
    for _ in 0..2 {
        let a = send(&gw, &[KEY], chat_body("mittwald-shared/fail-now")).await;
        assert!(a.status >= 500, "{}", a.body);
    }
    assert_eq!(mock.call_count("chat"), 2);
    let (_, stats) = gw.get("/api/cache/stats").await;
    assert_eq!(stats["entries"], 0, "{stats}");
}

#[tokio::test]
async fn a_hit_has_its_own_log_row_at_zero_cost_and_is_not_charged() {
    let (gw, _mock, _dir) = setup().await;
    enable(&gw, json!({})).await;
    let (id, vk) = create_vk(
        &gw,
        json!({"name": "budgeted", "budgets": [{"max_limit": 1.0, "reset_duration": "1h"}]}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            send(&gw, &[KEY, ("x-bf-vk", &vk)], chat_body(MODEL)).await.status,
            200
        );
    }
    let rows = log_rows(&gw, 3).await;
    assert_eq!(rows[0]["cache_hit"], false, "{}", rows[0]);
    assert!((rows[0]["cost_usd"].as_f64().unwrap() - COST_PER_CALL).abs() < 1e-12);
    for row in &rows[1..] {
        assert_eq!(row["cache_hit"], true, "{row}");
        assert_eq!(row["cost_usd"], 0.0, "{row}");
        assert_eq!(row["cost_known"], true, "{row}");
        assert_eq!(row["provider"], PROVIDER, "{row}");
        assert_eq!(row["virtual_key_id"], id.as_str(), "{row}");
        // The row shows the answer's tokens; they were not consumed again.
        assert_eq!(row["output_tokens"], rows[0]["output_tokens"], "{row}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, view) = gw.get(&format!("/api/governance/virtual-keys/{id}")).await;
    let usage = view["virtual_key"]["budgets"][0]["current_usage"]
        .as_f64()
        .unwrap();
    assert!(
        (usage - COST_PER_CALL).abs() < 1e-9,
        "only the first call is charged: {view}"
    );
}

#[tokio::test]
async fn a_paraphrase_hits_by_meaning_and_an_unrelated_question_misses() {
    let (gw, mock, _dir) = setup().await;
    enable(
        &gw,
        json!({"provider": PROVIDER, "embedding_model": "bow-embed", "dimension": 512, "threshold": 0.8}),
    )
    .await;
    let ask = |q: &str| json!({"model": MODEL, "messages": [{"role": "user", "content": q}]});
    let first = send(&gw, &[KEY], ask("What is the capital of France?")).await;
    assert!(!is_hit(&first), "{}", first.body);
    let para = send(&gw, &[KEY], ask("Tell me the capital city of France")).await;
    let d = debug(&para);
    assert_eq!(d["hit_type"], "semantic", "{}", para.body);
    let sim = d["similarity"].as_f64().unwrap();
    assert!((0.8..1.0).contains(&sim), "{d}");
    assert_eq!(d["threshold"], 0.8);
    assert_eq!(para.body["choices"], first.body["choices"]);
    let other = send(&gw, &[KEY], ask("How do I bake sourdough bread?")).await;
    assert!(!is_hit(&other), "{}", other.body);
    assert_eq!(mock.call_count("chat"), 2);
    assert_eq!(
        mock.call_count("embeddings"),
        3,
        "one embedding per lookup, through the gateway"
    );
    // A request may raise the threshold above the paraphrase's similarity (never lower it).
    let strict = send(
        &gw,
        &[KEY, ("x-bf-cache-threshold", "0.99")],
        ask("Tell me the capital city of France"),
    )
    .await;
    assert!(!is_hit(&strict), "{}", strict.body);
    assert_eq!(mock.call_count("chat"), 3);
    // Exact-only requests skip the embedding.
    let direct = send(
        &gw,
        &[KEY, ("x-bf-cache-type", "direct")],
        ask("What's France's capital?"),
    )
    .await;
    assert!(!is_hit(&direct));
}

#[tokio::test]
async fn embeddings_and_anthropic_answers_are_cached_in_their_own_shape() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({})).await;
    let emb = json!({"model": MODEL, "input": "cache me"});
    let path = "/v1/embeddings";
    let first = send_raw(&gw, &[KEY], path, emb.to_string()).await;
    let second = send_raw(&gw, &[KEY], path, emb.to_string()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(is_hit(&second), "{}", second.body);
    assert_eq!(second.body["data"], first.body["data"]);
    assert_eq!(mock.call_count("embeddings"), 1);

    let msg =
        json!({"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "Hello there"}]});
    let path = "/anthropic/v1/messages";
    let first = send_raw(&gw, &[KEY], path, msg.to_string()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["type"], "message");
    let second = send_raw(&gw, &[KEY], path, msg.to_string()).await;
    assert!(is_hit(&second), "{}", second.body);
    assert_eq!(second.body["type"], "message");
    assert_eq!(second.body["content"], first.body["content"]);
    assert_eq!(mock.call_count("chat"), 1);
    // The same prompt on the OpenAI route is another family: a miss, answered in OpenAI's shape.
    let openai = send(&gw, &[KEY], msg).await;
    assert!(!is_hit(&openai));
    assert!(openai.body["choices"].is_array());
}

#[tokio::test]
async fn the_plugin_api_speaks_bifrost_and_names_bad_fields() {
    let (gw, _mock, _dir) = setup().await;
    let (s, b) = gw.get("/api/plugins").await;
    assert_eq!((s, b["count"].as_u64()), (200, Some(0)), "{b}");
    let (s, b) = gw.get("/api/plugins/semantic_cache").await;
    assert_eq!(s, 404, "{b}");
    for (body, param) in [
        (json!({"name": "evil", "path": "/tmp/x.so"}), "name"),
        (
            json!({"name": "semantic_cache", "config": {"threshold": 1.5}}),
            "config.threshold",
        ),
        (
            json!({"name": "semantic_cache", "config": {"ttl": "eventually"}}),
            "config.ttl",
        ),
        (
            json!({"name": "semantic_cache", "config": {"dimension": 1536}}),
            "config.provider",
        ),
        (json!({"name": "semantic_cache", "enabled": "yes"}), "enabled"),
    ] {
        let (s, b) = gw.post("/api/plugins", body).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"]["param"], param, "{b}");
    }
    enable(&gw, json!({"ttl": "5m", "threshold": 0.9, "dimension": 1})).await;
    let (s, b) = gw.post("/api/plugins", json!({"name": "semantic_cache"})).await;
    assert_eq!(s, 409, "{b}");
    let (_, b) = gw.get("/api/plugins/semantic_cache").await;
    assert_eq!(b["config"]["threshold"], 0.9);
    assert_eq!(b["enabled"], true);
    let (s, b) = gw
        .put(
            "/api/plugins/semantic_cache",
            json!({"enabled": false, "config": {"ttl": 60}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, stats) = gw.get("/api/cache/stats").await;
    assert_eq!(
        (stats["enabled"].as_bool(), stats["ttl_seconds"].as_f64()),
        (Some(false), Some(60.0)),
        "{stats}"
    );
    let (s, _) = gw.delete("/api/plugins/semantic_cache").await;
    assert_eq!(s, 200);
    let (s, _) = gw.delete("/api/plugins/semantic_cache").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_plugin_comes_from_config_json_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(
        &file,
        json!({"plugins": [{"name": "semantic_cache", "enabled": true, "config": {"dimension": 1, "ttl": "90s", "default_cache_key": "k"}}]})
            .to_string(),
    )
    .unwrap();
    let config = switchyard_gateway::ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        config_file: Some(file),
        ..Default::default()
    };
    let gw = TestGateway::start_with(config).await;
    let (_, stats) = gw.get("/api/cache/stats").await;
    assert_eq!(stats["enabled"], true, "{stats}");
    assert_eq!(stats["ttl_seconds"], 90.0, "{stats}");
    assert_eq!(stats["default_cache_key"], "k", "{stats}");
    gw.stop().await;
}

/// A cached answer never lets a request past a request-stage guardrail added after it was stored:
/// while one applies to the caller, the cache does not answer.
#[tokio::test]
async fn a_cached_answer_never_skips_a_request_guardrail() {
    let (gw, mock, _dir) = setup().await;
    enable(&gw, json!({"dimension": 1, "ttl": "5m"})).await;
    let body = || json!({"model": MODEL, "messages": [{"role": "user", "content": "mail max@example.de"}]});
    assert_eq!(send(&gw, &[KEY], body()).await.status, 200);
    assert!(is_hit(&send(&gw, &[KEY], body()).await));
    let (s, b) = gw
        .post(
            "/api/guardrails",
            json!({"name": "no-mail", "type": "pii", "entities": ["email"], "action": "block"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let blocked = send(&gw, &[KEY], body()).await;
    assert_eq!(blocked.status, 400, "{}", blocked.body);
    assert_eq!(
        blocked.body["error"]["code"], "guardrail_blocked",
        "{}",
        blocked.body
    );
    assert_eq!(mock.call_count("chat"), 1, "nothing more went upstream");
}
