//! LiteLLM's management API through the real server, with LiteLLM's documented request shapes: the
//! master key, the key lifecycle of mittwald's LiteLLM guide command by command, rotation, rpm and
//! budget refusals on inference (nothing reaching the upstream), team and end-user budgets, spend
//! logs, report and reset, and one key seen through both APIs.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error_shape, TestGateway};
use serde_json::{json, Value};
use switchyard_core::secret::Secret;
use switchyard_gateway::{SecurityConfig, ServerConfig};
use switchyard_mock::{start, MockOptions, MockUpstream};

const MASTER: &str = "sk-master-0123456789";
const UPSTREAM_KEY: &str = "sk-upstream-secret-0123456789";
const PROVIDER: &str = "mittwald";
const INPUT_PER_M: f64 = 1000.0;
const OUTPUT_PER_M: f64 = 2000.0;
/// "Hello there" is 2 prompt tokens at the mock; with max_tokens 3 the answer is 3 tokens.
const COST_PER_CALL: f64 = 2.0 * INPUT_PER_M / 1e6 + 3.0 * OUTPUT_PER_M / 1e6;

struct Env {
    gw: TestGateway,
    mock: MockUpstream,
    _dir: tempfile::TempDir,
}

async fn setup() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mock = start(MockOptions {
        api_key: Some(UPSTREAM_KEY.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        security: SecurityConfig {
            master_key: Some(Secret::new(MASTER)),
            ..SecurityConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    gw.add_openai_compatible(PROVIDER, &mock.base_url(), UPSTREAM_KEY)
        .await;
    let (s, b) = gw
        .put(
            &format!("/api/providers/{PROVIDER}"),
            json!({"network_config": {"max_retries": 0}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = gw
        .post(
            "/api/governance/pricing-overrides",
            json!({"provider": PROVIDER, "model": "gpt-oss-120b", "input_cost_per_million_tokens": INPUT_PER_M,
                   "output_cost_per_million_tokens": OUTPUT_PER_M}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    Env { gw, mock, _dir: dir }
}

async fn send(gw: &TestGateway, req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let _ = gw;
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// A management call with the master key as `Authorization: Bearer`.
async fn mk_post(gw: &TestGateway, path: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = send(gw, gw.http.post(gw.url(path)).bearer_auth(MASTER).json(&body)).await;
    (s, b)
}

async fn mk_get(gw: &TestGateway, path: &str) -> (u16, Value) {
    let (s, b, _) = send(gw, gw.http.get(gw.url(path)).bearer_auth(MASTER)).await;
    (s, b)
}

/// A chat call with `key` as `Authorization: Bearer` (the OpenAI SDK's way).
async fn chat_as(gw: &TestGateway, key: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    send(
        gw,
        gw.http
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body),
    )
    .await
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 3, "messages": [{"role": "user", "content": "Hello there"}]})
}

async fn generate(gw: &TestGateway, body: Value) -> Value {
    let (s, b) = mk_post(gw, "/key/generate", body).await;
    assert_eq!(s, 200, "{b}");
    b
}

/// Waits until `path` (with the master key) answers a JSON array of at least `n` rows.
async fn rows_at_least(gw: &TestGateway, path: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, b) = mk_get(gw, path).await;
        assert_eq!(s, 200, "{b}");
        let rows = b.as_array().cloned().unwrap_or_default();
        if rows.len() >= n || Instant::now() > deadline {
            assert!(rows.len() >= n, "{path}: {b}");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_master_key_guards_management_and_opens_inference() {
    let env = setup().await;
    let gw = &env.gw;
    // None, a wrong one: 401 in LiteLLM's error shape.
    let (s, b) = gw.post("/key/generate", json!({})).await;
    assert_eq!(s, 401);
    assert_eq!(assert_error_shape(&b, 401)["type"], "authentication_error");
    let (s, b, _) = send(
        gw,
        gw.http
            .get(gw.url("/key/list"))
            .bearer_auth("sk-wrong-0123456789"),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    assert!(
        !b.to_string().contains("sk-wrong"),
        "the key sent is not echoed: {b}"
    );
    // Both headers LiteLLM takes.
    let (s, b, _) = send(
        gw,
        gw.http
            .get(gw.url("/key/list"))
            .header("x-litellm-api-key", MASTER),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = mk_get(gw, "/key/list").await;
    assert_eq!((s, b["total_count"].as_u64()), (200, Some(0)), "{b}");
    // With a master key configured, inference needs a key; the master key itself is one.
    let (s, b) = gw.post("/v1/chat/completions", chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 401, "{b}");
    let (s, b, _) = chat_as(gw, MASTER, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b, _) = send(
        gw,
        gw.http
            .post(gw.url("/v1/chat/completions"))
            .header("x-litellm-api-key", MASTER)
            .json(&chat_body("gpt-oss-120b")),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // Probes need no credentials; model info needs one and shows no secret.
    let (s, b) = gw.get("/health/liveliness").await;
    assert_eq!((s, b), (200, json!("I'm alive!")));
    let (s, b) = gw.get("/health/readiness").await;
    assert_eq!((s, b["db"].as_str()), (200, Some("connected")), "{b}");
    let (s, _) = gw.get("/v1/model/info").await;
    assert_eq!(s, 401);
    let (s, b) = mk_get(gw, "/v1/model/info").await;
    assert_eq!(s, 200, "{b}");
    assert!(!b.to_string().contains(UPSTREAM_KEY), "{b}");
}

#[tokio::test]
async fn mittwald_guide_key_lifecycle_command_by_command() {
    let env = setup().await;
    let gw = &env.gw;
    // POST /key/generate with the guide's fields.
    let g = generate(
        gw,
        json!({"models": ["gpt-oss-120b"], "key_alias": "customer-a", "metadata": {"customer": "a"},
               "tpm_limit": 100000, "rpm_limit": 100, "max_budget": 10.0}),
    )
    .await;
    let key = g["key"].as_str().unwrap().to_owned();
    let token = g["token"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("sk-") && token != key && !token.contains(&key),
        "{g}"
    );
    assert_eq!(g["key_alias"], "customer-a");
    assert!(g["expires"].is_null());
    // GET /key/info?key=: by value and by token; the value is never in the answer.
    for given in [&key, &token] {
        let (s, b) = mk_get(gw, &format!("/key/info?key={given}")).await;
        assert_eq!(s, 200, "{b}");
        let info = &b["info"];
        assert_eq!(info["key_alias"], "customer-a");
        assert_eq!(info["models"], json!(["gpt-oss-120b"]));
        assert_eq!(info["metadata"], json!({"customer": "a"}));
        assert_eq!(
            (info["tpm_limit"].as_u64(), info["rpm_limit"].as_u64()),
            (Some(100000), Some(100))
        );
        assert_eq!(info["max_budget"], 10.0);
        assert_eq!(info["blocked"], false);
        assert_eq!(info["spend"], 0.0);
        assert!(!b.to_string().contains(&key), "{b}");
    }
    // POST /v2/key/info {"keys"}: tokens and records.
    let (s, b) = mk_post(gw, "/v2/key/info", json!({"keys": [key]})).await;
    assert_eq!((s, &b["key"]), (200, &json!([token])), "{b}");
    assert_eq!(b["info"][0]["key_alias"], "customer-a");
    // GET /v1/models with the master key, as the guide's first check.
    let (s, b, _) = send(gw, gw.http.get(gw.url("/v1/models")).bearer_auth(MASTER)).await;
    assert_eq!(s, 200, "{b}");
    // The key works on inference (as Bearer and as x-litellm-api-key); a model outside `models` is
    // refused before the upstream.
    let (s, b, _) = chat_as(gw, &key, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b, _) = send(
        gw,
        gw.http
            .post(gw.url("/v1/chat/completions"))
            .header("x-litellm-api-key", &key)
            .json(&chat_body("gpt-oss-120b")),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let before = env.mock.call_count("chat");
    let (s, b, _) = chat_as(gw, &key, chat_body("Qwen3.5-0.8B")).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(env.mock.call_count("chat"), before);
    // POST /key/block: the record says blocked; inference refuses at once. /key/unblock undoes it.
    let (s, b) = mk_post(gw, "/key/block", json!({"key": key})).await;
    assert_eq!((s, &b["blocked"]), (200, &json!(true)), "{b}");
    // (401 as LiteLLM answers, since a master key is configured; 403 natively.)
    let (s, b, _) = chat_as(gw, &key, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["error"]["code"], "virtual_key_inactive");
    let (s, b) = mk_post(gw, "/key/unblock", json!({"key": key})).await;
    assert_eq!((s, &b["blocked"]), (200, &json!(false)), "{b}");
    let (s, _, _) = chat_as(gw, &key, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 200);
    // POST /global/spend/reset, then POST /key/delete: gone from inference and from /key/info.
    let (s, b) = mk_post(gw, "/global/spend/reset", json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = mk_post(gw, "/key/delete", json!({"keys": [key]})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["deleted_keys"], json!([token]));
    let before = env.mock.call_count("chat");
    let (s, b, _) = chat_as(gw, &key, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(env.mock.call_count("chat"), before);
    let (s, b) = mk_get(gw, &format!("/key/info?key={key}")).await;
    assert_eq!(s, 404, "{b}");
    assert_error_shape(&b, 404);
}

#[tokio::test]
async fn rotation_on_both_routes_refuses_the_old_key_at_once() {
    let env = setup().await;
    let gw = &env.gw;
    let g = generate(
        gw,
        json!({"key_alias": "rotating", "rpm_limit": 50, "max_budget": 5}),
    )
    .await;
    let k1 = g["key"].as_str().unwrap().to_owned();
    let (s, b) = mk_post(gw, &format!("/key/{k1}/regenerate"), json!({})).await;
    assert_eq!(s, 200, "{b}");
    let k2 = b["key"].as_str().unwrap().to_owned();
    assert_ne!(k1, k2);
    assert_eq!(
        (b["key_alias"].as_str(), b["rpm_limit"].as_u64()),
        (Some("rotating"), Some(50))
    );
    let (s, _, _) = chat_as(gw, &k1, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 401);
    let (s, b, _) = chat_as(gw, &k2, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 200, "{b}");
    // The body form, with a custom new value; the id (and so usage) stays the same.
    let (s, b) = mk_post(
        gw,
        "/key/regenerate",
        json!({"key": k2, "new_key": "sk-rotated-custom-0001"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["key"], "sk-rotated-custom-0001");
    assert_eq!(b["id"], g["id"]);
    let (s, _, _) = chat_as(gw, &k2, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 401);
    let (s, b, _) = chat_as(gw, "sk-rotated-custom-0001", chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = gw.get("/api/governance/virtual-keys").await;
    assert_eq!((s, b["total_count"].as_u64()), (200, Some(1)), "{b}");
    assert!(!b.to_string().contains("rotated-custom"), "{b}");
}

#[tokio::test]
async fn rpm_and_budget_refusals_never_reach_the_upstream() {
    let env = setup().await;
    let gw = &env.gw;
    let rpm = generate(gw, json!({"rpm_limit": 2})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let (s, b, _) = chat_as(gw, &rpm, chat_body("gpt-oss-120b")).await;
        assert_eq!(s, 200, "{b}");
    }
    let before = env.mock.call_count("chat");
    let (s, b, h) = chat_as(gw, &rpm, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 429, "{b}");
    assert!(h.get("retry-after").is_some(), "{h:?}");
    assert_error_shape(&b, 429);
    // Budget: room for one call and a half.
    let budget = generate(
        gw,
        json!({"max_budget": COST_PER_CALL * 1.5, "budget_duration": "30d"}),
    )
    .await;
    let budget = budget["key"].as_str().unwrap().to_owned();
    let mut refused = None;
    for _ in 0..4 {
        let (s, b, _) = chat_as(gw, &budget, chat_body("gpt-oss-120b")).await;
        if s != 200 {
            refused = Some((s, b));
            break;
        }
    }
    let (s, b) = refused.expect("the budget refuses within four calls");
    assert_eq!(s, 402, "{b}");
    assert_eq!(b["error"]["type"], "budget_exceeded", "{b}");
    assert!(env.mock.call_count("chat") <= before + 2);
}

#[tokio::test]
async fn team_and_end_user_budgets() {
    let env = setup().await;
    let gw = &env.gw;
    let (s, t) = mk_post(
        gw,
        "/team/new",
        json!({"team_alias": "research", "max_budget": 100.0}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let team_id = t["team_id"].as_str().unwrap().to_owned();
    let key = generate(gw, json!({"team_id": team_id, "key_alias": "research-app"})).await;
    let key = key["key"].as_str().unwrap().to_owned();
    let (s, b) = mk_get(gw, &format!("/team/info?team_id={team_id}")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["team_info"]["team_alias"], "research");
    assert_eq!(b["keys"][0]["key_alias"], "research-app");
    // A team budget spent elsewhere refuses the key: lower it to under one call.
    let (s, b) = mk_post(
        gw,
        "/team/update",
        json!({"team_id": team_id, "max_budget": COST_PER_CALL * 0.5}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b, _) = chat_as(gw, &key, chat_body("gpt-oss-120b")).await;
    let (s2, b2, _) = chat_as(gw, &key, chat_body("gpt-oss-120b")).await;
    assert!(s == 402 || s2 == 402, "{b} {b2}");
    let (s, b) = mk_get(gw, "/team/list").await;
    assert_eq!((s, b.as_array().map(Vec::len)), (200, Some(1)), "{b}");

    // End users: the request's `user` charges that customer's budget.
    let (s, c) = mk_post(
        gw,
        "/customer/new",
        json!({"user_id": "end-user-1", "max_budget": COST_PER_CALL * 1.5}),
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["litellm_budget_table"]["max_budget"], COST_PER_CALL * 1.5);
    let open = generate(gw, json!({"key_alias": "portal"})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut body = chat_body("gpt-oss-120b");
    body["user"] = json!("end-user-1");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(chat_as(gw, &open, body.clone()).await.0);
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses.contains(&402), "{statuses:?}");
    // Another end user (or none) is not limited by it.
    let (s, _, _) = chat_as(gw, &open, chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 200);
    let (s, b) = mk_get(gw, "/customer/info?end_user_id=end-user-1").await;
    assert_eq!((s, b["user_id"].as_str()), (200, Some("end-user-1")), "{b}");
    let (s, b) = mk_post(gw, "/customer/delete", json!({"user_ids": ["end-user-1"]})).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = mk_get(gw, "/customer/info?end_user_id=end-user-1").await;
    assert_eq!(s, 404);
    // A team with keys is deleted after its keys.
    let (s, b) = mk_post(gw, "/key/delete", json!({"key_aliases": ["research-app"]})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = mk_post(gw, "/team/delete", json!({"team_ids": [team_id]})).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn spend_logs_report_and_reset() {
    let env = setup().await;
    let gw = &env.gw;
    let g = generate(gw, json!({"key_alias": "billing", "max_budget": 1.0})).await;
    let (key, token) = (
        g["key"].as_str().unwrap().to_owned(),
        g["token"].as_str().unwrap().to_owned(),
    );
    for _ in 0..2 {
        let (s, b, _) = chat_as(gw, &key, chat_body("gpt-oss-120b")).await;
        assert_eq!(s, 200, "{b}");
    }
    let rows = rows_at_least(gw, &format!("/spend/logs?api_key={key}"), 2).await;
    for r in &rows {
        assert_eq!(r["api_key"], token.as_str());
        assert_eq!(r["model"], "gpt-oss-120b");
        assert!((r["spend"].as_f64().unwrap() - COST_PER_CALL).abs() < 1e-9, "{r}");
        assert_eq!(
            (r["prompt_tokens"].as_i64(), r["completion_tokens"].as_i64()),
            (Some(2), Some(3))
        );
        assert_eq!(r["total_tokens"], 5);
        assert!(r["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let report = rows_at_least(gw, "/global/spend/report?group_by=api_key", 1).await;
    assert_eq!(report[0]["api_key"], token.as_str());
    assert!((report[0]["total_cost"].as_f64().unwrap() - 2.0 * COST_PER_CALL).abs() < 1e-9);
    let (s, b) = mk_get(gw, &format!("/key/info?key={token}")).await;
    assert!(
        (b["info"]["spend"].as_f64().unwrap() - 2.0 * COST_PER_CALL).abs() < 1e-9,
        "{s} {b}"
    );
    // A key reads its own info with itself; not another's.
    let (s, b, _) = send(gw, gw.http.get(gw.url("/key/info")).bearer_auth(&key)).await;
    assert_eq!((s, &b["info"]["key_alias"]), (200, &json!("billing")), "{b}");
    // Reset: master key only; spend back to 0, logs kept.
    let (s, _, _) = send(gw, gw.http.post(gw.url("/global/spend/reset")).bearer_auth(&key)).await;
    assert_eq!(s, 401);
    let (s, b) = mk_post(gw, "/global/spend/reset", json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (_, b) = mk_get(gw, &format!("/key/info?key={token}")).await;
    assert_eq!(b["info"]["spend"], 0.0, "{b}");
    let (s, b) = gw.get("/api/governance/virtual-keys").await;
    assert_eq!(s, 200);
    assert_eq!(b["virtual_keys"][0]["budgets"][0]["current_usage"], 0.0, "{b}");
    assert_eq!(rows_at_least(gw, "/spend/logs", 2).await.len(), 2);
}

#[tokio::test]
async fn one_key_seen_through_both_apis() {
    let env = setup().await;
    let gw = &env.gw;
    // Native → LiteLLM: key_alias is its name, listed by token, blocked ↔ is_active.
    let (id, value) = common::create_vk(gw, json!({"name": "native-app"})).await;
    let (s, b) = mk_get(gw, &format!("/key/info?key={value}")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["info"]["key_alias"].as_str(), b["info"]["blocked"].as_bool()),
        (Some("native-app"), Some(false))
    );
    let (s, b) = gw
        .put(
            &format!("/api/governance/virtual-keys/{id}"),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, b) = mk_get(gw, &format!("/key/info?key={value}")).await;
    assert_eq!(b["info"]["blocked"], true);
    // LiteLLM → native: the generated key is listed natively, its block shows as is_active=false.
    let g = generate(
        gw,
        json!({"key_alias": "litellm-app", "max_budget": 3, "budget_duration": "1d"}),
    )
    .await;
    let key = g["key"].as_str().unwrap().to_owned();
    let (s, list) = gw.get("/api/governance/virtual-keys?search=litellm-app").await;
    assert_eq!(s, 200);
    let native = &list["virtual_keys"][0];
    assert_eq!(
        (native["name"].as_str(), native["is_active"].as_bool()),
        (Some("litellm-app"), Some(true))
    );
    assert_eq!(native["budgets"][0]["max_limit"], 3.0);
    assert_eq!(native["budgets"][0]["reset_duration"], "1d");
    mk_post(gw, "/key/block", json!({"key": key})).await;
    let (_, list) = gw.get("/api/governance/virtual-keys?search=litellm-app").await;
    assert_eq!(list["virtual_keys"][0]["is_active"], false);
    // /key/list: tokens, full objects, alias filter; never a value.
    let (s, b) = mk_get(gw, "/key/list").await;
    assert_eq!((s, b["total_count"].as_u64()), (200, Some(2)), "{b}");
    assert!(b["keys"].as_array().unwrap().contains(&g["token"]));
    let (_, b) = mk_get(gw, "/key/list?return_full_object=true&key_alias=litellm-app").await;
    assert_eq!(b["keys"].as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(b["keys"][0]["blocked"], true);
    assert!(!b.to_string().contains(&key) && !b.to_string().contains(&value));
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field_and_expiry_refuses() {
    let env = setup().await;
    let gw = &env.gw;
    for (body, param) in [
        (json!({"guardrails": ["pii"]}), "guardrails"),
        (json!({"duration": "forever"}), "duration"),
        (json!({"budget_duration": "1 day"}), "budget_duration"),
        (json!({"key": "pk-not-a-litellm-key"}), "key"),
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"team_id": "no-such-team"}), "team_id"),
        (json!({"rpm_limit": "many"}), "rpm_limit"),
    ] {
        let (s, b) = mk_post(gw, "/key/generate", body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
        let err = assert_error_shape(&b, 400);
        assert!(
            err["param"] == param || err["message"].as_str().unwrap_or("").contains(param),
            "{body}: {b}"
        );
    }
    let (s, b, _) = send(
        gw,
        gw.http
            .post(gw.url("/key/generate"))
            .bearer_auth(MASTER)
            .body("{not json"),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = mk_post(gw, "/key/update", json!({"rpm_limit": 1})).await;
    assert_eq!((s, b["error"]["param"].as_str()), (400, Some("key")), "{b}");
    let (s, b) = mk_post(gw, "/key/delete", json!({"keys": ["sk-unknown-0123456789"]})).await;
    assert_eq!(s, 404, "{b}");
    assert!(!b.to_string().contains("sk-unknown"), "{b}");
    // A custom key with a 1 s lifetime: works, then is refused.
    let g = generate(gw, json!({"key": "sk-short-lived-000001", "duration": "1s"})).await;
    assert!(g["expires"].as_str().is_some(), "{g}");
    let (s, _, _) = chat_as(gw, "sk-short-lived-000001", chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b, _) = chat_as(gw, "sk-short-lived-000001", chat_body("gpt-oss-120b")).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["error"]["code"], "virtual_key_expired");
}

async fn mock_with_key(key: &str) -> MockUpstream {
    start(MockOptions {
        api_key: Some(key.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_config_yaml_model_group_splits_three_to_one_and_falls_back() {
    // Deployment A's key comes from the environment (`os.environ/HOME`, set in every test run).
    let home = std::env::var("HOME").expect("HOME is set");
    let (a, b, c) = (
        mock_with_key(&home).await,
        mock_with_key("sk-b-0123456789").await,
        mock_with_key("sk-c-0123456789").await,
    );
    let yaml = format!(
        r#"
model_list:
  - model_name: gpt-oss-120b
    litellm_params:
      model: openai/gpt-oss-120b
      api_base: {a}
      api_key: os.environ/HOME
      weight: 3
  - model_name: gpt-oss-120b
    litellm_params:
      model: openai/gpt-oss-120b
      api_base: {b}
      api_key: sk-b-0123456789
      weight: 1
      rpm: 100
  - model_name: broken-model
    litellm_params: {{model: openai/broken-model, api_base: "{c}", api_key: sk-wrong-0123456789}}
  - model_name: Qwen3.5-0.8B
    litellm_params: {{model: openai/Qwen3.5-0.8B, api_base: "{c}", api_key: sk-c-0123456789}}
  - model_name: house-model
    litellm_params: {{model: openai/Qwen3.5-0.8B, api_base: "{c}", api_key: sk-c-0123456789}}
router_settings:
  fallbacks: [{{"broken-model": ["Qwen3.5-0.8B"]}}]
  routing_strategy: simple-shuffle
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"#,
        a = a.base_url(),
        // mittwald's LiteLLM guide gives api_base without /v1.
        b = b.base_url().trim_end_matches("/v1"),
        c = c.base_url(),
    );
    let imported = switchyard_gateway::admin::litellm::config_yaml::import_yaml(&yaml).unwrap();
    for name in [
        "model_list[1].litellm_params.rpm",
        "router_settings.routing_strategy",
    ] {
        assert!(
            imported.warnings.iter().any(|w| w.starts_with(name)),
            "{name}: {:?}",
            imported.warnings
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), imported.config.to_string()).unwrap();
    let gw = TestGateway::start_with(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        app_dir: dir.path().to_owned(),
        shutdown_grace: Duration::from_secs(5),
        security: SecurityConfig {
            master_key: Some(Secret::new(MASTER)),
            ..SecurityConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let n = 400;
    for _ in 0..n {
        let (s, b, _) = chat_as(&gw, MASTER, chat_body("gpt-oss-120b")).await;
        assert_eq!(s, 200, "{b}");
    }
    let (on_a, on_b) = (a.call_count("chat"), b.call_count("chat"));
    assert_eq!(on_a + on_b, n);
    let share = on_a as f64 / n as f64;
    assert!((0.68..=0.82).contains(&share), "A served {on_a}, B {on_b}");
    // The upstream sees the id after `openai/`.
    assert_eq!(b.requests().last().unwrap().json()["model"], "gpt-oss-120b");
    // The broken deployment (its key is refused upstream) falls back to the configured group.
    let (s, body, h) = chat_as(&gw, MASTER, chat_body("broken-model")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        h.get("x-switchyard-fallback-index").and_then(|v| v.to_str().ok()),
        Some("1"),
        "{h:?}"
    );
    assert_eq!(c.requests().last().unwrap().json()["model"], "Qwen3.5-0.8B");
    // A group named other than its upstream id: clients send the name, the upstream gets the id.
    let (s, body, _) = chat_as(&gw, MASTER, chat_body("house-model")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(c.requests().last().unwrap().json()["model"], "Qwen3.5-0.8B");
    // The imported names are routable, and listed without secrets.
    let (s, info) = mk_get(&gw, "/model/info").await;
    assert_eq!(s, 200);
    assert!(!info.to_string().contains("sk-b-0123456789") && !info.to_string().contains(&home));
}
