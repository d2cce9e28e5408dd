//! Governance spend accounting through the real server: the overshoot bound under 50 concurrent
//! requests, spend totals against per-request prices, every route family counting against the same
//! key, and usage surviving a restart. The rest of governance is in `governance.rs`.

mod common;

use common::governance::{
    call_with, chat, chat_body, log_rows, price_at_the_operator_rates, setup, start_gateway, COST_PER_CALL,
    INPUT_PER_M, OUTPUT_PER_M, PROVIDER,
};
use common::{assert_error_shape, create_vk};
use serde_json::json;

/// 50 concurrent requests against a budget that fits 10: the total charged stays within the budget
/// plus one request's estimate, and the counter agrees with the request log.
#[tokio::test]
async fn fifty_concurrent_requests_overshoot_by_at_most_one_estimate() {
    let (gw, _mock, _dir) = setup().await;
    let budget = 10.0 * COST_PER_CALL;
    let (id, value) = create_vk(
        &gw,
        json!({"name": "race", "budgets": [{"max_limit": budget, "reset_duration": "1d"}]}),
    )
    .await;
    // A slow model, so requests overlap; priced like "m".
    price_at_the_operator_rates(&gw, "slow-20").await;
    let body = chat_body(&format!("{PROVIDER}/slow-20"));
    // The estimate reserved per request: body bytes / 4 prompt tokens + max_tokens, at the override.
    let body_len = serde_json::to_vec(&body).unwrap().len() as f64;
    let estimate = (body_len / 4.0).ceil() * INPUT_PER_M / 1e6 + 3.0 * OUTPUT_PER_M / 1e6;
    assert!(estimate >= COST_PER_CALL);
    let calls = (0..50).map(|_| call_with(&gw, ("x-bf-vk", &value), "/v1/chat/completions", body.clone()));
    let answers = futures_util::future::join_all(calls).await;
    let admitted = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers.iter().filter(|a| a.status == 402).count();
    assert_eq!(
        admitted + refused,
        50,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let charged = admitted as f64 * COST_PER_CALL;
    eprintln!("admitted {admitted} of 50 (budget fits 10 calls)");
    assert!(
        charged <= budget + estimate + 1e-9,
        "admitted {admitted}: ${charged} > ${budget} + ${estimate}"
    );
    assert!(admitted >= 1 && refused >= 1);
    // Without reservations all 50 would have passed the check; with them the admitted count is bounded.
    let bound = ((budget + estimate) / COST_PER_CALL).floor() as usize;
    assert!(admitted <= bound, "{admitted} > {bound}");

    let rows = log_rows(&gw, 50).await;
    let logged: f64 = rows.iter().filter_map(|r| r["cost_usd"].as_f64()).sum();
    assert!((logged - charged).abs() < 1e-9, "{logged} vs {charged}");
    let (_, view) = gw.get(&format!("/api/governance/virtual-keys/{id}")).await;
    let usage = view["virtual_key"]["budgets"][0]["current_usage"]
        .as_f64()
        .unwrap();
    assert!(
        (usage - charged).abs() < 1e-9,
        "counter {usage} vs charged {charged}"
    );
}

#[tokio::test]
async fn spend_views_agree_with_per_request_prices() {
    let (gw, _mock, _dir) = setup().await;
    let (a_id, a) = create_vk(&gw, json!({"name": "a"})).await;
    let (b_id, b) = create_vk(&gw, json!({"name": "b"})).await;
    for _ in 0..3 {
        assert_eq!(chat(&gw, &a).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(chat(&gw, &b).await.status, 200);
    }
    // A model without any price: flagged, not $0.
    assert_eq!(
        call_with(
            &gw,
            ("x-bf-vk", &b),
            "/v1/chat/completions",
            chat_body(&format!("{PROVIDER}/unpriced"))
        )
        .await
        .status,
        200
    );
    let rows = log_rows(&gw, 6).await;
    // Each row's cost is its usage at the override price.
    for r in &rows {
        if r["model"] == "m" {
            let expected = r["input_tokens"].as_f64().unwrap() * INPUT_PER_M / 1e6
                + r["output_tokens"].as_f64().unwrap() * OUTPUT_PER_M / 1e6;
            assert!((r["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-12, "{r}");
        } else {
            assert_eq!(r["cost_known"], false, "{r}");
        }
    }
    let (s, spend) = gw.get("/api/governance/spend?group_by=virtual_key").await;
    assert_eq!(s, 200, "{spend}");
    let by_key = |id: &str| {
        spend["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == id)
            .cloned()
            .unwrap()
    };
    assert!(
        (by_key(&a_id)["cost_usd"].as_f64().unwrap() - 3.0 * COST_PER_CALL).abs() < 1e-9,
        "{spend}"
    );
    assert_eq!(by_key(&a_id)["requests"], 3);
    assert!(
        (by_key(&b_id)["cost_usd"].as_f64().unwrap() - 2.0 * COST_PER_CALL).abs() < 1e-9,
        "{spend}"
    );
    assert_eq!(by_key(&b_id)["unknown_cost_requests"], 1);
    assert!((spend["total_cost_usd"].as_f64().unwrap() - 5.0 * COST_PER_CALL).abs() < 1e-9);
    assert_eq!(spend["unknown_cost_requests"], 1);

    let (_, by_model) = gw.get("/api/governance/spend?group_by=model").await;
    let models: Vec<&str> = by_model["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["group"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["m", "unpriced"]);
    let (_, by_day) = gw.get("/api/governance/spend?group_by=day").await;
    assert_eq!(by_day["rows"].as_array().unwrap().len(), 1);
    assert!(
        by_day["rows"][0]["group"].as_str().unwrap().starts_with("20"),
        "{by_day}"
    );
    let (s, bad) = gw.get("/api/governance/spend?group_by=colour").await;
    assert_eq!(s, 400);
    assert_eq!(assert_error_shape(&bad, 400)["param"], "group_by");
}

#[tokio::test]
async fn every_route_family_counts_against_the_same_key() {
    let (gw, _mock, _dir) = setup().await;
    let (_, value) = create_vk(
        &gw,
        json!({"name": "all-routes", "rate_limit": {"request_max_limit": 4, "request_reset_duration": "1h"}}),
    )
    .await;
    let model = format!("{PROVIDER}/m");
    let a = call_with(
        &gw,
        ("authorization", &format!("Bearer {value}")),
        "/v1/chat/completions",
        chat_body(&model),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call_with(
        &gw,
        ("authorization", &format!("Bearer {value}")),
        "/openai/v1/chat/completions",
        chat_body(&model),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call_with(
        &gw,
        ("x-api-key", &value),
        "/anthropic/v1/messages",
        chat_body(&model),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]});
    let a = call_with(
        &gw,
        ("x-goog-api-key", &value),
        &format!("/genai/v1beta/models/{model}:generateContent"),
        gemini.clone(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // The fifth, on any route, is over the limit, answered in that route's shape.
    let a = call_with(
        &gw,
        ("x-api-key", &value),
        "/anthropic/v1/messages",
        chat_body(&model),
    )
    .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.body["type"], "error", "{}", a.body);
    assert_eq!(a.body["error"]["type"], "rate_limit_error", "{}", a.body);
    let a = call_with(
        &gw,
        ("x-goog-api-key", &value),
        &format!("/genai/v1beta/models/{model}:generateContent"),
        gemini,
    )
    .await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn usage_survives_a_restart() {
    let (gw, _mock, dir) = setup().await;
    let (id, value) = create_vk(
        &gw,
        json!({"name": "persist", "budgets": [{"max_limit": COST_PER_CALL * 1.5, "reset_duration": "1M"}],
               "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1d"}}),
    )
    .await;
    assert_eq!(chat(&gw, &value).await.status, 200);
    assert_eq!(chat(&gw, &value).await.status, 200);
    gw.stop().await;
    let gw = start_gateway(&dir).await;
    let (_, view) = gw.get(&format!("/api/governance/virtual-keys/{id}")).await;
    let vk = &view["virtual_key"];
    assert!(
        (vk["budgets"][0]["current_usage"].as_f64().unwrap() - 2.0 * COST_PER_CALL).abs() < 1e-9,
        "{view}"
    );
    assert_eq!(vk["rate_limit"]["request_current_usage"], 2, "{view}");
    let a = chat(&gw, &value).await;
    assert_eq!(
        a.status, 402,
        "the spent budget is still spent after the restart: {}",
        a.body
    );
    // An operator can start the key's budgets over.
    let (s, _) = gw
        .put(
            &format!("/api/governance/virtual-keys/{id}"),
            json!({"reset_budget_usage": true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(chat(&gw, &value).await.status, 200);
}
