//! One contract for every `GovernanceStore`: the same assertions against a real SQLite file and a
//! real PostgreSQL schema (`switchyard_testkit::pg_url`, by default 127.0.0.1:5432, database `test`;
//! each test creates its own schema and drops it afterwards, because the database is shared).

use std::sync::Arc;

use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor};
use switchyard_core::governance::{Group, GroupInput, VirtualKey, VirtualKeyInput};
use switchyard_store::{
    CounterRow, GovernanceStore, GroupKind, PostgresGovernanceStore, PriceOverride, SqliteConfigStore,
    StoreError,
};
use switchyard_testkit::{pg_connect, pg_url, SchemaGuard};

async fn postgres(name: &str) -> (Arc<dyn GovernanceStore>, SchemaGuard) {
    let guard = SchemaGuard::new("sygov", name);
    let schema = guard.name().to_owned();
    let mut c = pg_connect().await;
    c.execute(format!("CREATE SCHEMA \"{schema}\"").as_str())
        .await
        .unwrap();
    c.close().await.unwrap();
    let set_path = format!("SET search_path TO \"{schema}\"");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect(move |conn, _| {
            let set_path = set_path.clone();
            Box::pin(async move {
                conn.execute(set_path.as_str()).await?;
                Ok(())
            })
        })
        .connect(&pg_url())
        .await
        .unwrap();
    let store = PostgresGovernanceStore::migrate(pool).await.unwrap();
    (Arc::new(store), guard)
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn GovernanceStore> {
    Arc::new(
        SqliteConfigStore::open(&dir.path().join("config.db"))
            .await
            .unwrap(),
    )
}

fn vk(id: &str, hash: &str, body: serde_json::Value) -> VirtualKey {
    let input: VirtualKeyInput = serde_json::from_value(body).unwrap();
    input
        .into_new(id.into(), hash.into(), "sk-bf-abcd…".into(), 1_000)
        .unwrap()
}

fn group(id: &str, body: serde_json::Value, team: bool) -> Group {
    let input: GroupInput = serde_json::from_value(body).unwrap();
    input.into_new(id.into(), 1_000, team).unwrap()
}

async fn contract(store: Arc<dyn GovernanceStore>) {
    keys_and_groups(store.as_ref()).await;
    price_overrides(store.as_ref()).await;
    settings_and_counters(store.as_ref()).await;
    guardrails(store.as_ref()).await;
}

/// Guardrails: unique id and name, updates, deletes.
async fn guardrails(store: &dyn GovernanceStore) {
    let input =
        |v: serde_json::Value| serde_json::from_value::<switchyard_guardrails::GuardrailInput>(v).unwrap();
    let mut g = input(json!({"id": "g1", "name": "pii", "type": "pii", "entities": ["email"]}))
        .create(|| unreachable!())
        .unwrap();
    store.insert_guardrail(&g).await.unwrap();
    let other = input(json!({"id": "g2", "name": "pii", "type": "secrets"}))
        .create(|| unreachable!())
        .unwrap();
    assert!(matches!(
        store.insert_guardrail(&other).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.insert_guardrail(&g).await,
        Err(StoreError::Conflict(_))
    ));
    g.name = "pii-renamed".into();
    store.update_guardrail(&g).await.unwrap();
    assert_eq!(store.load_governance().await.unwrap().guardrails, vec![g.clone()]);
    let mut missing = g.clone();
    missing.id = "nope".into();
    assert!(matches!(
        store.update_guardrail(&missing).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_guardrail("g1").await.unwrap();
    assert!(matches!(
        store.delete_guardrail("g1").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.load_governance().await.unwrap().guardrails.is_empty());
}

/// Virtual keys, teams and customers: the hierarchy, uniqueness, references, updates and deletes.
async fn keys_and_groups(store: &dyn GovernanceStore) {
    // Hierarchy: customer <- team <- key.
    let customer = group(
        "c1",
        json!({"name": "Acme", "budgets": [{"max_limit": 100, "reset_duration": "1M"}]}),
        false,
    );
    store.insert_group(GroupKind::Customer, &customer).await.unwrap();
    let team = group("t1", json!({"name": "Platform", "customer_id": "c1"}), true);
    store.insert_group(GroupKind::Team, &team).await.unwrap();
    let key = vk(
        "vk1",
        "hash1",
        json!({"name": "app", "team_id": "t1", "budgets": [{"max_limit": 5, "reset_duration": "1d", "calendar_aligned": true}],
               "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1m"},
               "provider_configs": [{"provider": "openai", "allowed_models": ["gpt-4o-mini"]}],
               "max_concurrent_requests": 2, "expires_at": "2030-01-01T00:00:00Z"}),
    );
    store.insert_virtual_key(&key).await.unwrap();

    let data = store.load_governance().await.unwrap();
    assert_eq!(data.virtual_keys, vec![key.clone()]);
    assert_eq!(data.teams, vec![team.clone()]);
    assert_eq!(data.customers, vec![customer.clone()]);

    // Uniqueness: same id, same value hash.
    let dup_id = store
        .insert_virtual_key(&vk("vk1", "other", json!({"name": "x"})))
        .await;
    assert!(matches!(dup_id, Err(StoreError::Conflict(_))), "{dup_id:?}");
    let dup_value = store
        .insert_virtual_key(&vk("vk2", "hash1", json!({"name": "x"})))
        .await;
    assert!(matches!(dup_value, Err(StoreError::Conflict(_))), "{dup_value:?}");
    // A key cannot point at a team that does not exist.
    let orphan = store
        .insert_virtual_key(&vk("vk3", "hash3", json!({"name": "x", "team_id": "nope"})))
        .await;
    assert!(matches!(orphan, Err(StoreError::Conflict(_))), "{orphan:?}");

    // Groups with members cannot be deleted.
    let busy = store.delete_group(GroupKind::Team, "t1").await;
    assert!(matches!(busy, Err(StoreError::Conflict(_))), "{busy:?}");
    let busy = store.delete_group(GroupKind::Customer, "c1").await;
    assert!(matches!(busy, Err(StoreError::Conflict(_))), "{busy:?}");

    // Updates replace the document.
    let mut changed = key.clone();
    changed.is_active = false;
    changed.team_id = None;
    store.update_virtual_key(&changed).await.unwrap();
    assert_eq!(
        store.load_governance().await.unwrap().virtual_keys,
        vec![changed.clone()]
    );
    let missing = store
        .update_virtual_key(&vk("ghost", "h", json!({"name": "g"})))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    let mut renamed = team.clone();
    renamed.name = "Platform 2".into();
    store.update_group(GroupKind::Team, &renamed).await.unwrap();
    assert_eq!(store.load_governance().await.unwrap().teams[0].name, "Platform 2");

    // Now the team is empty and can go, then the customer.
    store.delete_group(GroupKind::Team, "t1").await.unwrap();
    store.delete_group(GroupKind::Customer, "c1").await.unwrap();
    assert!(matches!(
        store.delete_group(GroupKind::Team, "t1").await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_virtual_key("vk1").await.unwrap();
    assert!(matches!(
        store.delete_virtual_key("vk1").await,
        Err(StoreError::NotFound(_))
    ));
}

/// Price overrides are upserted per provider/model.
async fn price_overrides(store: &dyn GovernanceStore) {
    let mut price = PriceOverride {
        provider: "mittwald".into(),
        model: "gpt-oss-120b".into(),
        input_cost_per_million_tokens: 0.5,
        output_cost_per_million_tokens: 1.5,
        cache_read_cost_per_million_tokens: None,
        cache_write_cost_per_million_tokens: None,
    };
    store.put_price_override(&price).await.unwrap();
    price.output_cost_per_million_tokens = 2.0;
    store.put_price_override(&price).await.unwrap();
    assert_eq!(
        store.load_governance().await.unwrap().price_overrides,
        vec![price.clone()]
    );
    store
        .delete_price_override("mittwald", "gpt-oss-120b")
        .await
        .unwrap();
    assert!(store.load_governance().await.unwrap().price_overrides.is_empty());
}

async fn settings_and_counters(store: &dyn GovernanceStore) {
    assert_eq!(store.get_setting("client_config").await.unwrap(), None);
    store
        .put_setting("client_config", &json!({"enforce_auth_on_inference": true}))
        .await
        .unwrap();
    store
        .put_setting("client_config", &json!({"enforce_auth_on_inference": false}))
        .await
        .unwrap();
    assert_eq!(
        store.get_setting("client_config").await.unwrap(),
        Some(json!({"enforce_auth_on_inference": false}))
    );

    // Counters: replaced as a whole; expired ones are not loaded.
    let rows = vec![
        CounterRow {
            name: "vk:a:usd:1h:0".into(),
            value: 1_500_000_000,
            expires_at_ms: 10_000,
        },
        CounterRow {
            name: "vk:a:req:1m:0".into(),
            value: 7,
            expires_at_ms: 500,
        },
    ];
    store.save_counters(&rows).await.unwrap();
    assert_eq!(store.load_counters(1_000).await.unwrap(), vec![rows[0].clone()]);
    store.save_counters(&rows[1..]).await.unwrap();
    assert_eq!(store.load_counters(0).await.unwrap(), vec![rows[1].clone()]);
}

#[tokio::test]
async fn sqlite_store_keeps_the_governance_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(sqlite(&dir).await).await;
}

#[tokio::test]
async fn sqlite_governance_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = vk("vk1", "hash1", json!({"name": "app"}));
    {
        let store = sqlite(&dir).await;
        store.insert_virtual_key(&key).await.unwrap();
    }
    let store = sqlite(&dir).await;
    assert_eq!(store.load_governance().await.unwrap().virtual_keys, vec![key]);
}

#[tokio::test]
async fn postgres_store_keeps_the_governance_contract() {
    let (store, _schema) = postgres("contract").await;
    contract(store).await;
}
