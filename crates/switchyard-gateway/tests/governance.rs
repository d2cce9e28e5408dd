//! Governance through the real server: virtual keys, each rejection (status, body, headers), budgets
//! across the hierarchy, rate and concurrency limits, management validation, provider weights and
//! streams holding their slot. Spend accounting (the overshoot bound under 50 concurrent requests,
//! spend totals against per-request prices, every route family, usage surviving a restart) is in
//! `governance_spend.rs`.

mod common;

use std::time::{Duration, Instant};

use common::governance::{
    call_with, chat, chat_body, header, log_rows, price_at_the_operator_rates, setup, start_gateway, Answer,
    COST_PER_CALL, PROVIDER, UPSTREAM_KEY,
};
use common::{assert_error_shape, create_vk};
use serde_json::{json, Value};

#[tokio::test]
async fn vk_value_is_shown_once_and_requests_carry_it_in_any_header() {
    let (gw, _mock, _dir) = setup().await;
    let (id, value) = create_vk(&gw, json!({"name": "app"})).await;
    assert!(value.starts_with("sk-bf-") && value.len() > 40, "{value}");
    let (_, got) = gw.get(&format!("/api/governance/virtual-keys/{id}")).await;
    let (_, list) = gw.get("/api/governance/virtual-keys").await;
    assert!(!got.to_string().contains(&value) && !list.to_string().contains(&value));
    assert_eq!(got["virtual_key"]["value"], format!("{}…", &value[..10]));
    assert_eq!(list["total_count"], 1);

    let body = chat_body(&format!("{PROVIDER}/m"));
    for (name, v) in [
        ("x-bf-vk", value.clone()),
        ("authorization", format!("Bearer {value}")),
        ("x-api-key", value.clone()),
        ("api-key", value.clone()),
    ] {
        let a = call_with(&gw, (name, &v), "/v1/chat/completions", body.clone()).await;
        assert_eq!(a.status, 200, "{name}: {}", a.body);
    }
    // Every row is attributed to the key; the value itself is in no row.
    let rows = log_rows(&gw, 4).await;
    assert!(
        rows.iter().all(|r| r["virtual_key_id"] == id.as_str()),
        "{rows:?}"
    );
    let (_, logs) = gw.get("/api/logs?limit=100").await;
    assert!(!logs.to_string().contains(&value));
}

#[tokio::test]
async fn missing_vk_is_401_only_when_enforced_in_every_client_shape() {
    let (gw, _mock, _dir) = setup().await;
    let body = chat_body(&format!("{PROVIDER}/m"));
    let (s, _) = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(s, 200, "without enforcement a VK is optional");

    let (s, cfg) = gw
        .put(
            "/api/config",
            json!({"client_config": {"enforce_auth_on_inference": true}}),
        )
        .await;
    assert_eq!(s, 200, "{cfg}");
    assert_eq!(cfg["client_config"]["enforce_auth_on_inference"], true);
    let (s, b) = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(s, 401);
    let err = assert_error_shape(&b, 401);
    assert_eq!(err["code"], "virtual_key_required");
    assert_eq!(err["type"], "authentication_error");

    // Anthropic clients get Anthropic's error shape.
    let r = gw
        .http
        .post(gw.url("/anthropic/v1/messages"))
        .json(&json!({"model": format!("{PROVIDER}/m"), "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error", "{b}");
    assert_eq!(b["error"]["type"], "authentication_error", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("virtual key is required"),
        "{b}"
    );

    // The setting survives a restart (stored in the config store).
    let dir = _dir;
    gw.stop().await;
    let gw = start_gateway(&dir).await;
    let (s, _) = gw.post("/v1/chat/completions", body).await;
    assert_eq!(s, 401);
    let (_, cfg) = gw.get("/api/config").await;
    assert_eq!(cfg["client_config"]["enforce_auth_on_inference"], true);
}

#[tokio::test]
async fn invalid_inactive_and_expired_keys_are_refused() {
    let (gw, mock, _dir) = setup().await;
    let a = chat(&gw, "sk-bf-not-a-key-of-this-gateway").await;
    assert_eq!(a.status, 401);
    assert_eq!(assert_error_shape(&a.body, 401)["code"], "virtual_key_not_found");

    let (id, value) = create_vk(&gw, json!({"name": "paused"})).await;
    let (s, _) = gw
        .put(
            &format!("/api/governance/virtual-keys/{id}"),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(s, 200);
    let a = chat(&gw, &value).await;
    assert_eq!(a.status, 403);
    let err = assert_error_shape(&a.body, 403);
    assert_eq!(err["code"], "virtual_key_inactive");
    assert_eq!(err["message"], "virtual key 'paused' is inactive");

    let (_, old) = create_vk(&gw, json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"})).await;
    let a = chat(&gw, &old).await;
    assert_eq!(a.status, 403);
    let err = assert_error_shape(&a.body, 403);
    assert_eq!(err["code"], "virtual_key_expired");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("expired at 2020-01-01T00:00:00.000Z"),
        "{err}"
    );
    assert!(
        mock.requests().is_empty(),
        "no refused request reached the upstream"
    );
}

#[tokio::test]
async fn provider_model_and_key_restrictions_are_403() {
    let (gw, mock, _dir) = setup().await;
    gw.add_openai_compatible("other", &mock.base_url(), UPSTREAM_KEY)
        .await;
    let (_, value) = create_vk(
        &gw,
        json!({"name": "scoped", "provider_configs": [
            {"provider": PROVIDER, "allowed_models": ["m"], "blacklisted_models": ["bad"]}]}),
    )
    .await;
    assert_eq!(chat(&gw, &value).await.status, 200);
    let a = call_with(
        &gw,
        ("x-bf-vk", &value),
        "/v1/chat/completions",
        chat_body("other/m"),
    )
    .await;
    assert_eq!(a.status, 403);
    let err = assert_error_shape(&a.body, 403);
    assert_eq!(err["code"], "provider_not_allowed");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("may not use provider 'other'"),
        "{err}"
    );
    let a = call_with(
        &gw,
        ("x-bf-vk", &value),
        "/v1/chat/completions",
        chat_body(&format!("{PROVIDER}/n")),
    )
    .await;
    assert_eq!(a.status, 403);
    assert_eq!(assert_error_shape(&a.body, 403)["code"], "model_not_allowed");
    let a = call_with(
        &gw,
        ("x-bf-vk", &value),
        "/v1/chat/completions",
        chat_body(&format!("{PROVIDER}/bad")),
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("blacklisted_models"));

    // Key ids: this VK may use no key of the provider.
    let (_, nokeys) = create_vk(
        &gw,
        json!({"name": "no-keys", "provider_configs": [{"provider": PROVIDER, "key_ids": ["some-other-key"]}]}),
    )
    .await;
    let a = chat(&gw, &nokeys).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(assert_error_shape(&a.body, 403)["code"], "key_not_allowed");
}

#[tokio::test]
async fn budget_exhausted_is_402_at_every_level() {
    let (gw, _mock, _dir) = setup().await;
    // Budget for one call and a bit: the first two are admitted (headroom left), the third is not.
    let (id, value) = create_vk(
        &gw,
        json!({"name": "small", "budgets": [{"max_limit": COST_PER_CALL * 1.5, "reset_duration": "1h"}]}),
    )
    .await;
    assert_eq!(chat(&gw, &value).await.status, 200);
    assert_eq!(chat(&gw, &value).await.status, 200);
    let a = chat(&gw, &value).await;
    assert_eq!(a.status, 402, "{}", a.body);
    let err = assert_error_shape(&a.body, 402);
    assert_eq!(err["code"], "budget_exceeded");
    assert!(
        err["message"].as_str().unwrap().starts_with(
            "budget exhausted: virtual key 'small' (1h): spent 0.016000 USD, 0.000000 USD reserved by \
             calls in flight, limit 0.012000 USD"
        ),
        "{err}"
    );
    let retry: u64 = header(&a, "retry-after").parse().unwrap();
    assert!((1..=3600).contains(&retry));
    assert_eq!(header(&a, "x-ratelimit-remaining-budget-usd"), "0");
    let (_, view) = gw.get(&format!("/api/governance/virtual-keys/{id}")).await;
    let usage = view["virtual_key"]["budgets"][0]["current_usage"]
        .as_f64()
        .unwrap();
    assert!((usage - 2.0 * COST_PER_CALL).abs() < 1e-9, "{view}");

    // A team's budget binds its keys; a customer's binds its teams' keys.
    let (s, b) = gw.post("/api/governance/customers", json!({"id": "acme", "name": "Acme", "budgets": [{"max_limit": COST_PER_CALL * 0.5, "reset_duration": "1d"}]})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = gw
        .post(
            "/api/governance/teams",
            json!({"id": "platform", "name": "Platform", "customer_id": "acme"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, team_key) = create_vk(&gw, json!({"name": "team-app", "team_id": "platform"})).await;
    assert_eq!(chat(&gw, &team_key).await.status, 200);
    let a = chat(&gw, &team_key).await;
    assert_eq!(a.status, 402);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customer 'Acme'"),
        "{}",
        a.body
    );
    // The customer cannot be deleted while its team exists.
    let (s, b) = gw.delete("/api/governance/customers/acme").await;
    assert_eq!(s, 409, "{b}");
}

#[tokio::test]
async fn request_and_token_rate_limits_are_429_with_headers() {
    let (gw, _mock, _dir) = setup().await;
    let (_, value) = create_vk(
        &gw,
        json!({"name": "rl", "rate_limit": {"request_max_limit": 3, "request_reset_duration": "1h"}}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(chat(&gw, &value).await.status, 200);
    }
    let a = chat(&gw, &value).await;
    assert_eq!(a.status, 429);
    let err = assert_error_shape(&a.body, 429);
    assert_eq!(err["code"], "rate_limit_exceeded");
    assert_eq!(err["type"], "rate_limit_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("rate limit exceeded: virtual key 'rl' allows 3 requests per 1h"),
        "{err}"
    );
    assert_eq!(header(&a, "x-ratelimit-limit-requests"), "3");
    assert_eq!(header(&a, "x-ratelimit-remaining-requests"), "0");
    let retry: u64 = header(&a, "retry-after").parse().unwrap();
    // Windows are aligned to the hour (an hour window keeps the test clear of a window boundary).
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(header(&a, "x-ratelimit-reset-requests"), format!("{retry}s"));

    // Tokens: 5 per call (2 in, 3 out); a limit of 10 admits two calls.
    let (_, tokens) = create_vk(
        &gw,
        json!({"name": "tok", "rate_limit": {"token_max_limit": 10, "token_reset_duration": "1h"}}),
    )
    .await;
    assert_eq!(chat(&gw, &tokens).await.status, 200);
    assert_eq!(chat(&gw, &tokens).await.status, 200);
    let a = chat(&gw, &tokens).await;
    assert_eq!(a.status, 429);
    assert_eq!(assert_error_shape(&a.body, 429)["code"], "token_limit_exceeded");
    assert_eq!(header(&a, "x-ratelimit-limit-tokens"), "10");
    assert_eq!(header(&a, "x-ratelimit-remaining-tokens"), "0");

    // A provider config's own limit: exhausted, the provider leaves the plan.
    let (_, pc) = create_vk(
        &gw,
        json!({"name": "pc", "provider_configs": [{"provider": PROVIDER,
               "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1h"}}]}),
    )
    .await;
    assert_eq!(chat(&gw, &pc).await.status, 200);
    let a = chat(&gw, &pc).await;
    assert_eq!(a.status, 429);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("provider config 'pc/mittwald-shared' allows 1 requests per 1h"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn concurrency_limit_is_429_and_slots_come_back() {
    let (gw, _mock, _dir) = setup().await;
    let (_, value) = create_vk(&gw, json!({"name": "cc", "max_concurrent_requests": 2})).await;
    let slow = chat_body(&format!("{PROVIDER}/slow-1500"));
    let calls = (0..5).map(|_| call_with(&gw, ("x-bf-vk", &value), "/v1/chat/completions", slow.clone()));
    let answers = futures_util::future::join_all(calls).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(
        ok,
        2,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(limited.len(), 3);
    let err = assert_error_shape(&limited[0].body, 429);
    assert_eq!(err["code"], "concurrency_limit_exceeded");
    assert_eq!(
        err["message"],
        "concurrency limit reached: virtual key 'cc' allows 2 requests in flight at once"
    );
    assert_eq!(header(limited[0], "x-ratelimit-limit-concurrency"), "2");
    assert_eq!(header(limited[0], "retry-after"), "1");
    // Finished requests released their slots.
    for _ in 0..3 {
        assert_eq!(chat(&gw, &value).await.status, 200);
    }
}

#[tokio::test]
async fn management_rejects_bad_bodies_naming_the_field() {
    let (gw, _mock, _dir) = setup().await;
    let cases = [
        (json!({"name": "x", "budget": {"max_limit": 1}}), "budget"),
        (
            json!({"name": "x", "budgets": [{"max_limit": 1, "reset_duration": "1 week"}]}),
            "budgets[0].reset_duration",
        ),
        (
            json!({"name": "x", "rate_limit": {"request_max_limit": 5}}),
            "rate_limit.request_reset_duration",
        ),
        (json!({"name": "x", "team_id": "ghost"}), "team_id"),
        (json!({"name": "x", "expires_at": "tomorrow"}), "expires_at"),
        (json!({"budgets": []}), "name"),
    ];
    for (body, field) in cases {
        let (s, b) = gw.post("/api/governance/virtual-keys", body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
        let err = assert_error_shape(&b, 400);
        assert!(
            err["param"].as_str().is_some_and(|p| p.contains(field))
                || err["message"].as_str().unwrap().contains(field),
            "{body}: {b}"
        );
    }
    let value = "sk-bf-operator-chosen-value-0001";
    let (s, _) = gw
        .post(
            "/api/governance/virtual-keys",
            json!({"id": "fixed", "name": "x", "value": value}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = gw
        .post(
            "/api/governance/virtual-keys",
            json!({"name": "y", "value": value}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    let (s, _) = gw.get("/api/governance/virtual-keys/nope").await;
    assert_eq!(s, 404);
    assert_eq!(
        chat(&gw, value).await.status,
        200,
        "an operator-supplied value works as given"
    );
}

#[tokio::test]
async fn provider_config_weights_choose_the_serving_provider() {
    let (gw, mock, _dir) = setup().await;
    gw.add_openai_compatible("second", &mock.base_url(), UPSTREAM_KEY)
        .await;
    let weighted = |first: f64, second: f64| {
        json!({"name": format!("w-{first}-{second}"), "provider_configs": [
            {"provider": PROVIDER, "weight": first}, {"provider": "second", "weight": second}]})
    };
    // A bare model served by both providers; the weights decide, both ways.
    for (w, expected) in [((1.0, 0.0), PROVIDER), ((0.0, 1.0), "second")] {
        let (_, value) = create_vk(&gw, weighted(w.0, w.1)).await;
        for _ in 0..5 {
            let a = call_with(&gw, ("x-bf-vk", &value), "/v1/chat/completions", chat_body("m")).await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(header(&a, "x-switchyard-provider"), expected);
        }
    }
    let (_, even) = create_vk(&gw, weighted(1.0, 1.0)).await;
    let mut served = std::collections::HashSet::new();
    for _ in 0..40 {
        let a = call_with(&gw, ("x-bf-vk", &even), "/v1/chat/completions", chat_body("m")).await;
        served.insert(header(&a, "x-switchyard-provider").to_owned());
    }
    assert_eq!(served.len(), 2, "equal weights spread the traffic: {served:?}");
}

#[tokio::test]
async fn streams_hold_their_slot_until_they_end_and_settle_their_usage() {
    let (gw, _mock, _dir) = setup().await;
    let (id, value) = create_vk(
        &gw,
        json!({"name": "streamer", "max_concurrent_requests": 1,
               "budgets": [{"max_limit": 100, "reset_duration": "1d"}]}),
    )
    .await;
    let stream_body = |model: &str| {
        let mut b = chat_body(&format!("{PROVIDER}/{model}"));
        b["stream"] = json!(true);
        b["stream_options"] = json!({"include_usage": true});
        b
    };
    price_at_the_operator_rates(&gw, "drip").await;
    // While a (paced) stream is open, the key's one slot is taken.
    let open = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("x-bf-vk", &value)
        .json(&stream_body("drip"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    let a = chat(&gw, &value).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "concurrency_limit_exceeded");
    // Read to the end: the slot comes back and the stream's usage is charged.
    let text = open.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = chat(&gw, &value).await;
        if a.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never released: {}", a.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The counter holds exactly what the request log says the key's calls cost.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, view) = gw.get(&format!("/api/governance/virtual-keys/{id}")).await;
        let usage = view["virtual_key"]["budgets"][0]["current_usage"]
            .as_f64()
            .unwrap();
        let (_, spend) = gw
            .get(&format!("/api/governance/spend?virtual_key_id={id}"))
            .await;
        let logged = spend["total_cost_usd"].as_f64().unwrap();
        if (usage - logged).abs() < 1e-9 && logged > COST_PER_CALL {
            break;
        }
        assert!(Instant::now() < deadline, "counter {usage} vs log {logged}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A client that walks away mid-stream gives the slot back too.
    let mut dripping = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("x-bf-vk", &value)
        .json(&stream_body("drip"))
        .send()
        .await
        .unwrap();
    assert_eq!(dripping.status(), 200);
    let _first = dripping.chunk().await.unwrap();
    drop(dripping);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = chat(&gw, &value).await;
        if a.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot never released after disconnect: {}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
