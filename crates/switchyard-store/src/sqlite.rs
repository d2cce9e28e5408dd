//! The embedded default: SQLite in the app dir.

use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use switchyard_core::{KeyConfig, ProviderConfig};

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

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("config types always serialise")
}

/// Maps a UNIQUE violation to a conflict with a message the API can show as is.
fn conflict_or(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(e),
    }
}

async fn insert_key_row(
    tx: &mut sqlx::SqliteConnection,
    provider: &str,
    key: &KeyConfig,
) -> Result<(), StoreError> {
    let t = now();
    sqlx::query(
        "INSERT INTO provider_keys (id, provider, name, value, models, blacklisted_models, weight, enabled, created_at, updated_at, provider_settings)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.id)
    .bind(provider)
    .bind(&key.name)
    .bind(&key.value)
    .bind(to_json(&key.models))
    .bind(to_json(&key.blacklisted_models))
    .bind(key.weight)
    .bind(key.enabled)
    .bind(t)
    .bind(t)
    .bind(crate::provider_settings_json(key))
    .execute(tx)
    .await
    .map_err(|e| {
        conflict_or(e, || {
            format!("a key with id '{}' or name '{}' already exists (key names are unique per provider)", key.id, key.name)
        })
    })?;
    Ok(())
}

#[async_trait]
impl ConfigStore for SqliteConfigStore {
    async fn load(&self) -> Result<StoredConfig, StoreError> {
        let providers = sqlx::query("SELECT name, config FROM providers ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let keys = sqlx::query(
            "SELECT id, provider, name, value, models, blacklisted_models, weight, enabled, provider_settings FROM provider_keys ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: StoredConfig = Vec::with_capacity(providers.len());
        for row in providers {
            let name: String = row.try_get("name")?;
            let config: String = row.try_get("config")?;
            let p: ProviderConfig = serde_json::from_str(&config)
                .map_err(|e| StoreError::Corrupt(format!("provider '{name}': {e}")))?;
            out.push((p, Vec::new()));
        }
        for row in keys {
            let provider: String = row.try_get("provider")?;
            let id: String = row.try_get("id")?;
            let parse_list = |col: &str| -> Result<Vec<String>, StoreError> {
                let raw: String = row.try_get(col)?;
                serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("key '{id}' {col}: {e}")))
            };
            let settings: crate::ProviderSettings =
                match row.try_get::<Option<String>, _>("provider_settings")? {
                    Some(raw) => serde_json::from_str(&raw)
                        .map_err(|e| StoreError::Corrupt(format!("key '{id}' provider_settings: {e}")))?,
                    None => crate::ProviderSettings::default(),
                };
            let key = KeyConfig {
                azure_key_config: settings.azure_key_config,
                bedrock_key_config: settings.bedrock_key_config,
                id: id.clone(),
                name: row.try_get("name")?,
                value: row.try_get("value")?,
                models: parse_list("models")?,
                blacklisted_models: parse_list("blacklisted_models")?,
                weight: row.try_get("weight")?,
                enabled: row.try_get("enabled")?,
            };
            match out.iter_mut().find(|(p, _)| p.name.as_str() == provider) {
                Some((_, keys)) => keys.push(key),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "key '{id}' belongs to missing provider '{provider}'"
                    )))
                }
            }
        }
        Ok(out)
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
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "provider '{}' not found",
                provider.name
            )));
        }
        Ok(())
    }

    async fn delete_provider(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM providers WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("provider '{name}' not found")));
        }
        Ok(())
    }

    async fn insert_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_key_row(&mut conn, provider, key).await
    }

    async fn update_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE provider_keys SET name = ?, value = ?, models = ?, blacklisted_models = ?, weight = ?, enabled = ?, updated_at = ?, provider_settings = ?
             WHERE provider = ? AND id = ?",
        )
        .bind(&key.name)
        .bind(&key.value)
        .bind(to_json(&key.models))
        .bind(to_json(&key.blacklisted_models))
        .bind(key.weight)
        .bind(key.enabled)
        .bind(now())
        .bind(crate::provider_settings_json(key))
        .bind(provider)
        .bind(&key.id)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, || format!("provider '{provider}' already has a key named '{}'", key.name)))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "key '{}' not found in provider '{provider}'",
                key.id
            )));
        }
        Ok(())
    }

    async fn delete_key(&self, provider: &str, key_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM provider_keys WHERE provider = ? AND id = ?")
            .bind(provider)
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "key '{key_id}' not found in provider '{provider}'"
            )));
        }
        Ok(())
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
