//! The config store contract: one set of assertions, run against a real SQLite file and a real
//! PostgreSQL schema.
//!
//! PostgreSQL is reached at `SWITCHYARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! The `test` database is shared by concurrent test runs, so every test gets its own schema, dropped at
//! the end (also when the test panics).

use std::time::Duration;

use sqlx::{Connection, Executor, Row};
use switchyard_core::config::{KeyInput, ProviderInput};
use switchyard_core::{KeyConfig, ProviderConfig};
use switchyard_store::{ConfigStore, PostgresConfigStore, SqliteConfigStore, StoreChange, StoreError};
use switchyard_testkit::{pg_connect, pg_url, SchemaGuard};

/// Where a test's store lives; `open` may be called again to get a second handle on the same data
/// (a restart, or another replica).
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(SchemaGuard),
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres(test: &str) -> Backend {
        Backend::Postgres(SchemaGuard::new("sycfg", test))
    }

    /// The PostgreSQL schema of a `Backend::postgres`.
    fn schema(&self) -> &str {
        match self {
            Backend::Postgres(schema) => schema.name(),
            Backend::Sqlite(_) => unreachable!("a SQLite backend has no schema"),
        }
    }

    async fn open(&self) -> Box<dyn ConfigStore> {
        match self {
            Backend::Sqlite(dir) => Box::new(
                SqliteConfigStore::open(&dir.path().join("config.db"))
                    .await
                    .expect("sqlite store opens"),
            ),
            Backend::Postgres(schema) => Box::new(
                PostgresConfigStore::connect(&pg_url(), schema.name())
                    .await
                    .expect("postgres store opens"),
            ),
        }
    }
}

fn provider(json: &str) -> ProviderConfig {
    serde_json::from_str::<ProviderInput>(json)
        .unwrap()
        .into_new_provider()
        .unwrap()
}

fn key(p: &ProviderConfig, id: &str, name: &str) -> KeyConfig {
    let body = format!(r#"{{"name":"{name}","value":"sk-{id}-secret","models":["*"],"weight":0.25}}"#);
    serde_json::from_str::<KeyInput>(&body)
        .unwrap()
        .into_new_key(p, id.into())
        .unwrap()
}

fn openai() -> ProviderConfig {
    provider(r#"{"provider":"openai","network_config":{"base_url":"https://x/v1","max_retries":3}}"#)
}

fn custom(name: &str) -> ProviderConfig {
    provider(&format!(
        r#"{{"provider":"{name}","network_config":{{"base_url":"http://127.0.0.1:9/v1"}},
             "custom_provider_config":{{"base_provider_type":"openai"}},"fallbacks":["openai"]}}"#
    ))
}

/// Generates one test per backend from one async body taking the backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::sqlite()).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Backend::postgres(stringify!($name))).await
            })*
        }
    };
}

contract!(
    round_trip_survives_reopen,
    duplicates_are_conflicts,
    missing_rows_are_not_found,
    a_failed_create_leaves_nothing_behind,
    updates_replace_what_is_stored,
    deleting_a_provider_deletes_its_keys,
    providers_load_sorted_and_keys_in_insertion_order,
    the_store_answers_pings,
);

async fn round_trip_survives_reopen(b: Backend) {
    let p = openai();
    let c = custom("mittwald-shared");
    {
        let store = b.open().await;
        store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
        store.insert_key("openai", &key(&p, "k2", "b")).await.unwrap();
        store.insert_provider(&c, &[]).await.unwrap();
    }
    let store = b.open().await;
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.len(), 2);
    let (lp, lk) = loaded.iter().find(|(x, _)| x.name.as_str() == "openai").unwrap();
    assert_eq!(lp, &p, "the provider's whole config survives");
    assert_eq!(
        lk,
        &vec![key(&p, "k1", "a"), key(&p, "k2", "b")],
        "keys survive whole, in order"
    );
    let (lc, _) = loaded
        .iter()
        .find(|(x, _)| x.name.as_str() == "mittwald-shared")
        .unwrap();
    assert_eq!(lc, &c);
}

async fn duplicates_are_conflicts(b: Backend) {
    let store = b.open().await;
    let p = openai();
    store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
    let dup_provider = store.insert_provider(&p, &[]).await;
    assert!(
        matches!(dup_provider, Err(StoreError::Conflict(_))),
        "{dup_provider:?}"
    );
    let dup_name = store.insert_key("openai", &key(&p, "k2", "a")).await;
    assert!(matches!(dup_name, Err(StoreError::Conflict(_))), "{dup_name:?}");
    let dup_id = store.insert_key("openai", &key(&p, "k1", "z")).await;
    assert!(matches!(dup_id, Err(StoreError::Conflict(_))), "{dup_id:?}");
    store.insert_key("openai", &key(&p, "k2", "b")).await.unwrap();
    let renamed_onto_other = store.update_key("openai", &key(&p, "k2", "a")).await;
    assert!(
        matches!(renamed_onto_other, Err(StoreError::Conflict(_))),
        "{renamed_onto_other:?}"
    );
    // Nothing of the refused writes is visible.
    let names: Vec<String> = store.load().await.unwrap()[0]
        .1
        .iter()
        .map(|k| k.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

async fn missing_rows_are_not_found(b: Backend) {
    let store = b.open().await;
    let p = openai();
    assert!(matches!(
        store.update_provider(&p).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_provider("openai").await,
        Err(StoreError::NotFound(_))
    ));
    store.insert_provider(&p, &[]).await.unwrap();
    assert!(matches!(
        store.update_key("openai", &key(&p, "nope", "x")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_key("openai", "nope").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.load().await.unwrap()[0].1.is_empty());
}

async fn a_failed_create_leaves_nothing_behind(b: Backend) {
    let store = b.open().await;
    let p = openai();
    // Two keys with the same name: the second insert fails, so the provider must not exist either.
    let err = store
        .insert_provider(&p, &[key(&p, "k1", "a"), key(&p, "k2", "a")])
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert!(store.load().await.unwrap().is_empty());
    store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
}

async fn updates_replace_what_is_stored(b: Backend) {
    let store = b.open().await;
    let p = openai();
    store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
    let changed = serde_json::from_str::<ProviderInput>(
        r#"{"network_config":{"max_retries":7,"extra_headers":{"x-team":"blue"}},"fallbacks":["anthropic"]}"#,
    )
    .unwrap()
    .apply_update(&p)
    .unwrap();
    store.update_provider(&changed).await.unwrap();
    let mut k = key(&p, "k1", "renamed");
    k.value = "env.OPENAI_KEY".into();
    k.models = vec!["gpt-4o".into()];
    k.blacklisted_models = vec!["gpt-4o-mini".into()];
    k.weight = 0.125;
    k.enabled = false;
    store.update_key("openai", &k).await.unwrap();
    let loaded = b.open().await.load().await.unwrap();
    assert_eq!(loaded[0].0, changed);
    assert_eq!(loaded[0].1, vec![k]);
}

async fn deleting_a_provider_deletes_its_keys(b: Backend) {
    let store = b.open().await;
    let p = openai();
    let c = custom("vllm-local");
    store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
    store.insert_provider(&c, &[key(&c, "k2", "a")]).await.unwrap();
    store.delete_provider("openai").await.unwrap();
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0.name.as_str(), "vllm-local");
    assert_eq!(loaded[0].1.len(), 1, "the other provider's keys stay");
    // The deleted provider's key id is free again.
    store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
    store.delete_key("vllm-local", "k2").await.unwrap();
    assert!(store
        .load()
        .await
        .unwrap()
        .iter()
        .all(|(p, k)| p.name.as_str() == "openai" || k.is_empty()));
}

async fn providers_load_sorted_and_keys_in_insertion_order(b: Backend) {
    let store = b.open().await;
    let z = custom("zeta");
    let a = custom("alpha");
    store.insert_provider(&z, &[]).await.unwrap();
    store.insert_provider(&a, &[]).await.unwrap();
    for (id, name) in [("k9", "n1"), ("k1", "n2"), ("k5", "n3")] {
        store.insert_key("zeta", &key(&z, id, name)).await.unwrap();
    }
    let loaded = store.load().await.unwrap();
    let names: Vec<&str> = loaded.iter().map(|(p, _)| p.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    let ids: Vec<&str> = loaded[1].1.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["k9", "k1", "k5"]);
}

async fn the_store_answers_pings(b: Backend) {
    b.open().await.ping().await.unwrap();
}

// --- Behaviour only the shared (PostgreSQL) store has --------------------------------------------

async fn next_change(feed: &mut switchyard_store::ChangeFeed) -> StoreChange {
    // A bound against hanging forever, not a latency assertion.
    tokio::time::timeout(Duration::from_secs(20), feed.recv())
        .await
        .expect("a change notice arrives")
        .expect("the feed stays open")
}

#[tokio::test]
async fn sqlite_has_no_other_writers_to_follow() {
    let b = Backend::sqlite();
    assert!(b.open().await.watch_changes().await.unwrap().is_none());
}

#[tokio::test]
async fn postgres_announces_every_committed_write_to_other_replicas() {
    let b = Backend::postgres("announce");
    let watcher = b.open().await;
    let writer = b.open().await;
    let mut feed = watcher
        .watch_changes()
        .await
        .unwrap()
        .expect("postgres has a feed");
    let p = openai();
    writer.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Changed);
    // What the notice announced is visible to the watcher by then.
    assert_eq!(watcher.load().await.unwrap().len(), 1);
    let mut changed = p.clone();
    changed.network_config.max_retries = 9;
    writer.update_provider(&changed).await.unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Changed);
    assert_eq!(watcher.load().await.unwrap()[0].0.network_config.max_retries, 9);
    writer.insert_key("openai", &key(&p, "k2", "b")).await.unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Changed);
    assert_eq!(watcher.load().await.unwrap()[0].1.len(), 2);
    let mut k2 = key(&p, "k2", "b");
    k2.enabled = false;
    writer.update_key("openai", &k2).await.unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Changed);
    assert!(!watcher.load().await.unwrap()[0].1[1].enabled);
    writer.delete_key("openai", "k1").await.unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Changed);
    assert_eq!(watcher.load().await.unwrap()[0].1, vec![k2]);
    // A refused write announces nothing: the next notice is the next successful write.
    assert!(writer.delete_key("openai", "k1").await.is_err());
    writer.delete_provider("openai").await.unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Changed);
    assert!(watcher.load().await.unwrap().is_empty());
}

#[tokio::test]
async fn postgres_ignores_changes_in_other_schemas() {
    let mine = Backend::postgres("mine");
    let other = Backend::postgres("other");
    let watcher = mine.open().await;
    let mut feed = watcher.watch_changes().await.unwrap().unwrap();
    let other_store = other.open().await;
    let p = openai();
    other_store.insert_provider(&p, &[]).await.unwrap();
    // Our own write comes after the other schema's notice on the same channel; the first notice we
    // get must already show it, or the other schema's notice was taken for ours.
    mine.open()
        .await
        .insert_provider(&custom("mine-only"), &[])
        .await
        .unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Changed);
    let loaded = watcher.load().await.unwrap();
    assert_eq!(
        loaded.len(),
        1,
        "the first notice is our own write, not the other schema's"
    );
    assert_eq!(loaded[0].0.name.as_str(), "mine-only");
}

#[tokio::test]
async fn postgres_listener_reconnects_after_losing_its_connection() {
    let b = Backend::postgres("reconnect");
    let schema = b.schema();
    let watcher = b.open().await;
    let mut feed = watcher.watch_changes().await.unwrap().unwrap();
    // Kill the listening session from outside, as a database restart or failover would.
    let mut admin = pg_connect().await;
    let killed = sqlx::query(
        "SELECT count(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
    )
    .bind(format!("switchyard-config-listener:{schema}"))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed.get::<i64, _>("n"), 1, "exactly one listening session");
    // The watcher notices the loss and asks for a resync (changes may have been missed meanwhile).
    assert_eq!(next_change(&mut feed).await, StoreChange::Resync);
    // Writes after the reconnect are heard again. The notice may race the re-LISTEN, so write until
    // one arrives (bounded).
    let p = openai();
    b.open().await.insert_provider(&p, &[]).await.unwrap();
    let mut heard = false;
    for i in 0..20 {
        match tokio::time::timeout(Duration::from_secs(1), feed.recv()).await {
            Ok(Some(StoreChange::Changed)) => {
                heard = true;
                break;
            }
            Ok(Some(StoreChange::Resync)) => continue,
            Ok(None) => panic!("feed closed"),
            Err(_) => {
                let c = custom(&format!("again-{i}"));
                b.open().await.insert_provider(&c, &[]).await.unwrap();
            }
        }
    }
    assert!(heard, "changes are heard after the reconnect");
    admin.close().await.unwrap();
}

#[tokio::test]
async fn postgres_keeps_its_migration_ledger_in_its_own_schema() {
    let b = Backend::postgres("ledger");
    let schema = b.schema();
    let _first = b.open().await;
    let _second = b.open().await; // a second replica migrates the same schema without complaint
    let mut conn = pg_connect().await;
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("t"))
    .collect();
    // Everything the config store owns (governance included) sits in its schema, ledger and all.
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "governance_counters",
            "governance_customers",
            "governance_price_overrides",
            "governance_settings",
            "governance_teams",
            "governance_virtual_keys",
            "guardrails",
            "provider_keys",
            "providers"
        ]
    );
    conn.close().await.unwrap();
}

#[tokio::test]
async fn postgres_store_of_an_older_build_starts_on_a_newer_schema() {
    let b = Backend::postgres("rolling");
    let schema = b.schema();
    let store = b.open().await;
    store.insert_provider(&openai(), &[]).await.unwrap();
    // A newer replica applied a migration this build does not have.
    let mut conn = pg_connect().await;
    conn.execute(
        format!(
            "INSERT INTO \"{schema}\"._sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99990101000000, 'from a newer build', true, '\\x00'::bytea, 0)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
    let again = b.open().await;
    assert_eq!(again.load().await.unwrap().len(), 1);
}

#[tokio::test]
async fn postgres_refuses_bad_schema_names() {
    for bad in ["", "Upper", "a-b", "x;drop", "1abc", &"a".repeat(64)] {
        let err = PostgresConfigStore::connect(&pg_url(), bad)
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, StoreError::Invalid(_)), "{bad}: {err}");
    }
}
