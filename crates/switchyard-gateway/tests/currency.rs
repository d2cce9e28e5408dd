//! Amounts in the operator's currency, and refusals that tell spent from reserved.
//!
//! An EUR deployment (`--currency EUR`) end to end: a price override and a budget in EUR, a 402 that
//! names EUR, spend and virtual-key views that carry `"currency": "EUR"`, and the embedded vendor price
//! table (USD) left out, so a vendor model is unpriced until an override gives it a price. A burst
//! against a budget shows the refusal reporting what calls in flight reserved apart from what settled
//! calls spent.

mod common;

use std::time::Duration;

use common::governance::{chat_model, price_at_the_operator_rates, serve_priced_provider, PROVIDER};
use common::{test_config, TestGateway};
use serde_json::{json, Value};
use switchyard_core::pricing::Currency;
use switchyard_gateway::ServerConfig;
use switchyard_mock::MockUpstream;

/// An EUR gateway in front of the governance tests' priced mock provider.
async fn eur_gateway(dir: &std::path::Path) -> (TestGateway, MockUpstream) {
    let gw = TestGateway::start_with(ServerConfig {
        currency: Currency::parse("EUR").unwrap(),
        ..test_config(dir)
    })
    .await;
    let mock = serve_priced_provider(&gw).await;
    (gw, mock)
}

async fn call(gw: &TestGateway, key: &str, model: &str) -> (u16, Value) {
    let a = chat_model(gw, key, model).await;
    (a.status, a.body)
}

#[tokio::test]
async fn an_eur_deployment_counts_shows_and_refuses_in_eur() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, _mock) = eur_gateway(dir.path()).await;
    let model = format!("{PROVIDER}/m");
    let (vk_id, key) = common::create_vk(
        &gw,
        json!({"name": "eur-app", "budgets": [{"max_limit": 0.015, "reset_duration": "1d"}]}),
    )
    .await;

    // Calls settle at the override's EUR price until the budget is spent, then a 402 in EUR.
    let mut refusal = None;
    for _ in 0..20 {
        let (status, body) = call(&gw, &key, &model).await;
        if status == 402 {
            refusal = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let refusal = refusal.expect("the budget runs out");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(message.contains("EUR") && !message.contains('$'), "{message}");
    let budget = &refusal["budget"];
    assert_eq!(budget["currency"], "EUR", "{refusal}");
    assert_eq!(budget["limit"], 0.015, "{refusal}");
    assert_eq!(budget["reserved"], 0.0, "nothing in flight: {refusal}");
    let spent = budget["spent"].as_f64().unwrap();
    assert!(spent >= 0.015, "{refusal}");

    // The virtual-key view and the spend view say the same amount, in EUR.
    let (_, view) = gw.get(&format!("/api/governance/virtual-keys/{vk_id}")).await;
    assert_eq!(view["virtual_key"]["currency"], "EUR", "{view}");
    let used = view["virtual_key"]["budgets"][0]["current_usage"]
        .as_f64()
        .unwrap();
    assert!((used - spent).abs() < 1e-9, "{view} vs {refusal}");
    let spend = wait_for_spend(&gw, spent).await;
    assert_eq!(spend["currency"], "EUR", "{spend}");
    let (_, overrides) = gw.get("/api/governance/pricing-overrides").await;
    assert_eq!(overrides["currency"], "EUR", "{overrides}");
    let (_, config) = gw.get("/api/config").await;
    assert_eq!(config["currency"], "EUR", "{config}");

    // The vendor table is in USD: under EUR a vendor model has no price, so a budget refuses it
    // before any upstream call (which here would leave the machine).
    let (s, b) = gw.post("/api/providers", json!({"provider": "openai"})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = gw
        .post(
            "/api/providers/openai/keys",
            json!({"name": "k", "value": "sk-test-000000", "models": ["*"], "weight": 1.0}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, other) = common::create_vk(
        &gw,
        json!({"name": "vendor", "budgets": [{"max_limit": 5.0, "reset_duration": "1d"}]}),
    )
    .await;
    let (status, body) = call(&gw, &other, "openai/gpt-4o").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "price_unknown", "{body}");
}

/// The spend view, once the log writer has written every row worth `total`.
async fn wait_for_spend(gw: &TestGateway, total: f64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (s, v) = gw.get("/api/governance/spend?group_by=virtual_key").await;
        assert_eq!(s, 200, "{v}");
        let seen = v["total_cost_usd"].as_f64().unwrap_or(0.0);
        if (seen - total).abs() < 1e-9 || std::time::Instant::now() > deadline {
            assert!((seen - total).abs() < 1e-9, "{v}");
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_refusal_during_a_burst_tells_reserved_from_spent() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, _mock) = eur_gateway(dir.path()).await;
    let slow = format!("{PROVIDER}/slow-1500");
    price_at_the_operator_rates(&gw, "slow-1500").await;
    let (_, key) = common::create_vk(
        &gw,
        json!({"name": "bursty", "budgets": [{"max_limit": 0.001, "reset_duration": "1d"}]}),
    )
    .await;

    // 20 at once: the first admitted reserves one estimate (more than the budget), the rest are
    // refused while it is in flight: nothing spent yet, everything reserved.
    let calls = (0..20).map(|_| call(&gw, &key, &slow));
    let answers = futures_util::future::join_all(calls).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 402, "{body}");
        let b = &body["budget"];
        assert_eq!(b["spent"], 0.0, "{body}");
        let reserved = b["reserved"].as_f64().unwrap();
        assert!(reserved > 0.001, "one estimate is reserved: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("spent 0.000000 EUR")
                && message.contains(&format!("{reserved:.6} EUR reserved by calls in flight"))
                && message.contains("limit 0.001000 EUR"),
            "{message}"
        );
    }

    // Settled: the real cost is spent, nothing is reserved any more.
    let (status, body) = call(&gw, &key, &slow).await;
    assert_eq!(status, 402, "{body}");
    let b = &body["budget"];
    assert_eq!(b["reserved"], 0.0, "{body}");
    assert!(b["spent"].as_f64().unwrap() > 0.0, "{body}");
}
