//! The embedded default: SQLite in the app dir.

use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use switchyard_core::{KeyConfig, ProviderConfig};

use crate::rows::{
    self, bind_key_fields, conflict_or, expect_row, key_insert_error, key_update_error, to_json, KeyRow,
    ProviderRow,
};
use crate::{ConfigStore, StoreError, StoredConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteConfigStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteConfigStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Config writes are rare and must survive power loss once acknowledged.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Freed space is zeroed, so a key value that was replaced (or sealed in place when
            // encryption is switched on) does not linger in the file's free pages.
            .pragma("secure_delete", "ON")
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteConfigStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn insert_key_row(
    tx: &mut sqlx::SqliteConnection,
    provider: &str,
    key: &KeyConfig,
) -> Result<(), StoreError> {
    let t = now();
    let q = sqlx::query(
        "INSERT INTO provider_keys (id, provider, name, value, models, blacklisted_models, weight, enabled, provider_settings, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.id)
    .bind(provider);
    bind_key_fields(q, key)
        .bind(t)
        .bind(t)
        .execute(tx)
        .await
        .map_err(|e| key_insert_error(e, key))?;
    Ok(())
}

#[async_trait]
impl ConfigStore for SqliteConfigStore {
    async fn load(&self) -> Result<StoredConfig, StoreError> {
        let providers = sqlx::query_as::<_, ProviderRow>("SELECT name, config FROM providers ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let keys = sqlx::query_as::<_, KeyRow>(
            "SELECT id, provider, name, value, models, blacklisted_models, weight, enabled, provider_settings FROM provider_keys ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows::assemble(providers, keys)
    }

    async fn insert_provider(&self, provider: &ProviderConfig, keys: &[KeyConfig]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        sqlx::query("INSERT INTO providers (name, config, created_at, updated_at) VALUES (?, ?, ?, ?)")
            .bind(provider.name.as_str())
            .bind(to_json(provider))
            .bind(t)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, || format!("provider '{}' already exists", provider.name)))?;
        for key in keys {
            insert_key_row(&mut tx, provider.name.as_str(), key).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_provider(&self, provider: &ProviderConfig) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE providers SET config = ?, updated_at = ? WHERE name = ?")
            .bind(to_json(provider))
            .bind(now())
            .bind(provider.name.as_str())
            .execute(&self.pool)
            .await?;
        expect_row(done.rows_affected(), || {
            format!("provider '{}' not found", provider.name)
        })
    }

    async fn delete_provider(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM providers WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        expect_row(done.rows_affected(), || format!("provider '{name}' not found"))
    }

    async fn insert_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_key_row(&mut conn, provider, key).await
    }

    async fn update_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        let q = sqlx::query(
            "UPDATE provider_keys SET name = ?, value = ?, models = ?, blacklisted_models = ?, weight = ?, enabled = ?, provider_settings = ?, updated_at = ?
             WHERE provider = ? AND id = ?",
        );
        let done = bind_key_fields(q, key)
            .bind(now())
            .bind(provider)
            .bind(&key.id)
            .execute(&self.pool)
            .await
            .map_err(|e| key_update_error(e, provider, key))?;
        expect_row(done.rows_affected(), || {
            format!("key '{}' not found in provider '{provider}'", key.id)
        })
    }

    async fn delete_key(&self, provider: &str, key_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM provider_keys WHERE provider = ? AND id = ?")
            .bind(provider)
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        expect_row(done.rows_affected(), || {
            format!("key '{key_id}' not found in provider '{provider}'")
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn scrub(&self) -> Result<(), StoreError> {
        // Old page images live on in the WAL until it is checkpointed and truncated.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::config::{KeyInput, ProviderInput};

    fn provider(json: &str) -> ProviderConfig {
        serde_json::from_str::<ProviderInput>(json)
            .unwrap()
            .into_new_provider()
            .unwrap()
    }

    fn key(p: &ProviderConfig, id: &str, name: &str) -> KeyConfig {
        let body = format!(r#"{{"name":"{name}","value":"sk-{id}","models":["*"],"weight":0.25}}"#);
        serde_json::from_str::<KeyInput>(&body)
            .unwrap()
            .into_new_key(p, id.into())
            .unwrap()
    }

    #[tokio::test]
    async fn azure_and_bedrock_key_settings_round_trip_and_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.db");
        let azure = provider(r#"{"provider":"azure"}"#);
        let bedrock = provider(r#"{"provider":"bedrock"}"#);
        let az_key = serde_json::from_str::<KeyInput>(
            r#"{"name":"az","value":"azk","models":["*"],"azure_key_config":{"endpoint":"https://r.openai.azure.com","deployments":{"gpt-4o":"prod"},"api_version":"2024-10-21"}}"#,
        )
        .unwrap()
        .into_new_key(&azure, "a1".into())
        .unwrap();
        let br_key = serde_json::from_str::<KeyInput>(
            r#"{"name":"br","models":["*"],"bedrock_key_config":{"access_key":"AKID","secret_key":"env.AWS_SK","region":"eu-central-1"}}"#,
        )
        .unwrap()
        .into_new_key(&bedrock, "b1".into())
        .unwrap();
        {
            let store = SqliteConfigStore::open(&path).await.unwrap();
            store
                .insert_provider(&azure, std::slice::from_ref(&az_key))
                .await
                .unwrap();
            store.insert_provider(&bedrock, &[]).await.unwrap();
            store.insert_key("bedrock", &br_key).await.unwrap();
            let mut changed = br_key.clone();
            changed.bedrock_key_config.as_mut().unwrap().region = Some("us-west-2".into());
            store.update_key("bedrock", &changed).await.unwrap();
            store.close().await;
        }
        let store = SqliteConfigStore::open(&path).await.unwrap();
        let loaded = store.load().await.unwrap();
        let az = &loaded.iter().find(|(p, _)| p.name.as_str() == "azure").unwrap().1[0];
        assert_eq!(az, &az_key);
        let br = &loaded
            .iter()
            .find(|(p, _)| p.name.as_str() == "bedrock")
            .unwrap()
            .1[0];
        let cfg = br.bedrock_key_config.as_ref().unwrap();
        assert_eq!(cfg.region.as_deref(), Some("us-west-2"));
        assert_eq!(cfg.secret_key.as_deref(), Some("env.AWS_SK"));
    }

    #[tokio::test]
    async fn round_trip_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.db");
        let p =
            provider(r#"{"provider":"openai","network_config":{"base_url":"https://x/v1","max_retries":2}}"#);
        {
            let store = SqliteConfigStore::open(&path).await.unwrap();
            store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
            store.insert_key("openai", &key(&p, "k2", "b")).await.unwrap();
            store.close().await;
        }
        let store = SqliteConfigStore::open(&path).await.unwrap();
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].0, p);
        let names: Vec<_> = loaded[0].1.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "keys keep their insertion order");
        assert_eq!(loaded[0].1[0].weight, 0.25);
    }

    #[tokio::test]
    async fn conflicts_and_missing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteConfigStore::open(&dir.path().join("config.db"))
            .await
            .unwrap();
        let p = provider(r#"{"provider":"openai"}"#);
        store.insert_provider(&p, &[]).await.unwrap();
        assert!(matches!(
            store.insert_provider(&p, &[]).await,
            Err(StoreError::Conflict(_))
        ));
        store.insert_key("openai", &key(&p, "k1", "a")).await.unwrap();
        assert!(matches!(
            store.insert_key("openai", &key(&p, "k2", "a")).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.insert_key("openai", &key(&p, "k1", "z")).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.delete_key("openai", "nope").await,
            Err(StoreError::NotFound(_))
        ));
        store.delete_provider("openai").await.unwrap();
        assert!(store.load().await.unwrap().is_empty());
        // Keys went with their provider (ON DELETE CASCADE), so the id is free again.
        store.insert_provider(&p, &[key(&p, "k1", "a")]).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_create_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteConfigStore::open(&dir.path().join("config.db"))
            .await
            .unwrap();
        let p = provider(r#"{"provider":"openai"}"#);
        // Two keys with the same name: the second insert fails, so the provider must not exist either.
        let err = store
            .insert_provider(&p, &[key(&p, "k1", "a"), key(&p, "k2", "a")])
            .await;
        assert!(matches!(err, Err(StoreError::Conflict(_))));
        assert!(store.load().await.unwrap().is_empty());
    }
}
