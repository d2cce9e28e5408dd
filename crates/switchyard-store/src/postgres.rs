//! PostgreSQL: the store several gateway replicas share.
//!
//! Everything lives in one schema of its own (`switchyard` by default), the sqlx migration ledger
//! included: every pooled connection sets `search_path` to that schema, so the request-log store's
//! ledger in `public` (or any other schema) is never touched. Every write commits a `NOTIFY` on
//! [`CHANGE_CHANNEL`] in the same transaction (payload: the schema name), so every replica's
//! [`ConfigStore::watch_changes`] feed hears about it exactly when it becomes visible.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use switchyard_core::{KeyConfig, ProviderConfig};
use tokio::sync::mpsc;

use crate::rows::{
    self, bind_key_fields, conflict_or, expect_row, key_insert_error, key_update_error, to_json, KeyRow,
    ProviderRow,
};
use crate::{ChangeFeed, ConfigStore, StoreChange, StoreError, StoredConfig};

/// Runs every file in `migrations/postgres`, so migrations other stores add there (governance) join
/// the same ledger.
fn migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("./migrations/postgres");
    // During a rolling upgrade a replica of the older build must keep starting after a newer one has
    // applied migrations it does not know yet.
    m.set_ignore_missing(true);
    m
}

pub const DEFAULT_SCHEMA: &str = "switchyard";
/// One channel for every schema; the payload names the schema, so stores in other schemas of the same
/// database (tests, other deployments) ignore each other's changes.
pub const CHANGE_CHANNEL: &str = "switchyard_config_changed";

/// How long the watcher waits before connecting again after losing its listening connection.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

pub struct PostgresConfigStore {
    pool: PgPool,
    schema: String,
    options: PgConnectOptions,
}

/// A schema name must be a plain identifier, so it can be quoted into DDL and `search_path` safely.
pub fn validate_schema_name(schema: &str) -> Result<(), StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "schema name '{schema}' must match [a-z_][a-z0-9_]* (at most 63 bytes)"
        )))
    }
}

impl PostgresConfigStore {
    /// Connects to `url`, creates `schema` if it is missing and brings it up to date.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        validate_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url)?.application_name("switchyard-config");
        let mut conn = PgConnection::connect_with(&options).await?;
        // Two replicas starting together may both try; IF NOT EXISTS can still race on the catalog,
        // so a unique violation here means the other one won.
        if let Err(e) = conn
            .execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
            .await
        {
            let raced = matches!(&e, sqlx::Error::Database(db) if db.is_unique_violation());
            if !raced {
                return Err(e.into());
            }
        }
        conn.close().await?;
        let set_path = format!("SET search_path TO \"{schema}\"");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(set_path.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        migrator().run(&pool).await?;
        Ok(PostgresConfigStore {
            pool,
            schema: schema.to_owned(),
            options,
        })
    }

    /// The store's pool. Its connections have `search_path` set to the store's schema, so another
    /// store (governance) can share the pool, and its tables land next to the providers; add their
    /// migrations to `migrations/postgres` and they run here.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

impl PostgresConfigStore {
    /// Queues the change notice; PostgreSQL delivers it when (and only if) the transaction commits.
    async fn notify(&self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGE_CHANNEL)
            .bind(&self.schema)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Commits a write together with its change notice.
    async fn commit(&self, mut tx: Tx<'_>) -> Result<(), StoreError> {
        self.notify(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Commits an update or delete, or (rolling it back) answers not found when it touched no row.
    async fn commit_if_found(
        &self,
        tx: Tx<'_>,
        done: PgQueryResult,
        not_found: impl FnOnce() -> String,
    ) -> Result<(), StoreError> {
        if let Err(e) = expect_row(done.rows_affected(), not_found) {
            // Rolled back now, not when the pooled connection is next used: until then it would sit
            // idle in its transaction, holding its row locks against every other writer (and a
            // schema drop).
            tx.rollback().await?;
            return Err(e);
        }
        self.commit(tx).await
    }

    async fn insert_key_row(tx: &mut Tx<'_>, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        let q = sqlx::query(
            "INSERT INTO provider_keys (id, provider, name, value, models, blacklisted_models, weight, enabled,
                                        provider_settings)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9::jsonb)",
        )
        .bind(&key.id)
        .bind(provider);
        bind_key_fields(q, key)
            .execute(&mut **tx)
            .await
            .map_err(|e| key_insert_error(e, key))?;
        Ok(())
    }
}

#[async_trait]
impl ConfigStore for PostgresConfigStore {
    async fn load(&self) -> Result<StoredConfig, StoreError> {
        // Providers and keys are read in one snapshot, so a provider created by another replica between
        // the two queries cannot show up as keys without their provider.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let providers = sqlx::query_as::<_, ProviderRow>(
            "SELECT name, config::text AS config FROM providers ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?;
        let keys = sqlx::query_as::<_, KeyRow>(
            "SELECT id, provider, name, value, models::text AS models, blacklisted_models::text AS blacklisted_models,
                    weight, enabled, provider_settings::text AS provider_settings
             FROM provider_keys ORDER BY seq",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows::assemble(providers, keys)
    }

    async fn insert_provider(&self, provider: &ProviderConfig, keys: &[KeyConfig]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO providers (name, config) VALUES ($1, $2::jsonb)")
            .bind(provider.name.as_str())
            .bind(to_json(provider))
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, || format!("provider '{}' already exists", provider.name)))?;
        for key in keys {
            Self::insert_key_row(&mut tx, provider.name.as_str(), key).await?;
        }
        self.commit(tx).await
    }

    async fn update_provider(&self, provider: &ProviderConfig) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE providers SET config = $1::jsonb, updated_at = now() WHERE name = $2")
            .bind(to_json(provider))
            .bind(provider.name.as_str())
            .execute(&mut *tx)
            .await?;
        self.commit_if_found(tx, done, || format!("provider '{}' not found", provider.name))
            .await
    }

    async fn delete_provider(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM providers WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        self.commit_if_found(tx, done, || format!("provider '{name}' not found"))
            .await
    }

    async fn insert_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::insert_key_row(&mut tx, provider, key)
            .await
            .map_err(|e| match e {
                // The provider was deleted (by another replica) in the meantime.
                StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                    StoreError::NotFound(format!("provider '{provider}' not found"))
                }
                other => other,
            })?;
        self.commit(tx).await
    }

    async fn update_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let q = sqlx::query(
            "UPDATE provider_keys SET name = $1, value = $2, models = $3::jsonb, blacklisted_models = $4::jsonb,
                    weight = $5, enabled = $6, provider_settings = $7::jsonb, updated_at = now()
             WHERE provider = $8 AND id = $9",
        );
        let done = bind_key_fields(q, key)
            .bind(provider)
            .bind(&key.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| key_update_error(e, provider, key))?;
        self.commit_if_found(tx, done, || {
            format!("key '{}' not found in provider '{provider}'", key.id)
        })
        .await
    }

    async fn delete_key(&self, provider: &str, key_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM provider_keys WHERE provider = $1 AND id = $2")
            .bind(provider)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        self.commit_if_found(tx, done, || {
            format!("key '{key_id}' not found in provider '{provider}'")
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn watch_changes(&self) -> Result<Option<ChangeFeed>, StoreError> {
        // The first connection is made here so that a store that cannot listen fails loudly at
        // start-up; later losses are repaired by the watcher task.
        let listener = listen(&self.options, &self.schema).await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(watch(listener, self.options.clone(), self.schema.clone(), tx));
        Ok(Some(rx))
    }
}

async fn listen(options: &PgConnectOptions, schema: &str) -> Result<PgListener, sqlx::Error> {
    // A pool of one connection of its own: LISTEN holds the connection for as long as it lives.
    // The application name lets operators (and tests) find the listening session.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(
            options
                .clone()
                .application_name(&format!("switchyard-config-listener:{schema}")),
        );
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANGE_CHANNEL).await?;
    Ok(listener)
}

/// Forwards notices for `schema` to `feed` until the feed is dropped. Whenever the listening
/// connection has been lost, notices may have been missed in between, so a [`StoreChange::Resync`]
/// follows every reconnect.
async fn watch(
    mut listener: PgListener,
    options: PgConnectOptions,
    schema: String,
    feed: mpsc::Sender<StoreChange>,
) {
    loop {
        let next = tokio::select! {
            _ = feed.closed() => return,
            next = listener.try_recv() => next,
        };
        let change = match next {
            Ok(Some(notice)) if notice.payload() == schema => StoreChange::Changed,
            Ok(Some(_)) => continue,
            // sqlx has already reconnected and re-issued LISTEN.
            Ok(None) => {
                tracing::warn!(schema, "config change listener reconnected; resyncing");
                StoreChange::Resync
            }
            Err(e) => {
                tracing::warn!(schema, error = %e, "config change listener lost; reconnecting");
                listener = loop {
                    tokio::select! {
                        _ = feed.closed() => return,
                        _ = tokio::time::sleep(RECONNECT_DELAY) => {}
                    }
                    match listen(&options, &schema).await {
                        Ok(l) => break l,
                        Err(e) => {
                            tracing::warn!(schema, error = %e, "config change listener cannot reconnect yet")
                        }
                    }
                };
                StoreChange::Resync
            }
        };
        // A full feed already holds a pending reload, which will read this change too.
        if let Err(mpsc::error::TrySendError::Closed(_)) = feed.try_send(change) {
            return;
        }
    }
}
