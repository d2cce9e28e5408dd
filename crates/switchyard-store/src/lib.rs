//! Switchyard's config store: where providers and keys live between restarts.
//!
//! [`ConfigStore`] is the seam: the gateway only talks to the trait, so the embedded SQLite store
//! ([`SqliteConfigStore`], the default `config.db` in the app dir), the PostgreSQL store that several
//! replicas share ([`PostgresConfigStore`]) and the read-only store of a file-only deployment
//! ([`MemoryConfigStore`]) are interchangeable. Every write is one transaction: it lands whole or not
//! at all, and a crash in the middle never leaves a half-written provider.
#![forbid(unsafe_code)]

pub mod governance;
mod memory;
mod postgres;
mod rows;
mod sealed;
mod sqlite;

use async_trait::async_trait;
use switchyard_core::{KeyConfig, ProviderConfig};

pub use governance::{
    CounterRow, GovernanceData, GovernanceStore, GroupKind, PostgresGovernanceStore, PriceOverride,
};
pub use memory::MemoryConfigStore;
pub use postgres::{validate_schema_name, PostgresConfigStore, CHANGE_CHANNEL, DEFAULT_SCHEMA};
pub use sealed::{
    is_sealed, open_secret, seal_secret, SealError, SealReport, SealedConfigStore, SealingKey, SEALED_PREFIX,
};
pub use sqlite::SqliteConfigStore;

/// Everything the store holds, as loaded at start-up and after every change.
pub type StoredConfig = Vec<(ProviderConfig, Vec<KeyConfig>)>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (duplicate provider, key id, or key name within a provider).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("config store is corrupt: {0}")]
    Corrupt(String),
    /// The store was opened with settings it cannot use (e.g. a bad schema name).
    #[error("invalid config store settings: {0}")]
    Invalid(String),
    /// The configuration comes from a file and cannot be changed through the store.
    #[error("the configuration is read-only: it comes from config.json (config_store.enabled = false); edit the file and restart")]
    ReadOnly,
    #[error("config store error: {0}")]
    Database(#[from] sqlx::Error),
    /// Encrypted key values that cannot be opened (no encryption key, or the wrong one).
    #[error("config store is encrypted: {0}")]
    Sealed(String),
    #[error("config store migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// What a store's change feed reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreChange {
    /// Some writer (any replica, this one included) committed a change.
    Changed,
    /// The feed may have missed changes (it has just (re)connected): reload everything.
    Resync,
}

/// A live feed of [`StoreChange`]s. The store's watcher task ends when the feed is dropped.
pub type ChangeFeed = tokio::sync::mpsc::Receiver<StoreChange>;

#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    async fn load(&self) -> Result<StoredConfig, StoreError>;
    /// Creates a provider together with its initial keys, atomically.
    async fn insert_provider(&self, provider: &ProviderConfig, keys: &[KeyConfig]) -> Result<(), StoreError>;
    async fn update_provider(&self, provider: &ProviderConfig) -> Result<(), StoreError>;
    /// Deletes a provider and its keys.
    async fn delete_provider(&self, name: &str) -> Result<(), StoreError>;
    async fn insert_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError>;
    async fn update_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError>;
    async fn delete_key(&self, provider: &str, key_id: &str) -> Result<(), StoreError>;
    /// Cheap liveness check for `/health`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Starts following changes committed by any writer of this store, for stores that other
    /// processes write too. `None` (the default) means nobody else writes it, so there is nothing to
    /// follow. Decorators around a store must forward this, or replicas stop hearing each other.
    async fn watch_changes(&self) -> Result<Option<ChangeFeed>, StoreError> {
        Ok(None)
    }
    /// Makes values that were overwritten unrecoverable from the storage files, where the engine keeps
    /// old versions (SQLite's WAL, PostgreSQL's dead tuples). Called after key values were sealed in
    /// place. The default does nothing.
    async fn scrub(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The `provider_settings` column: provider-specific key settings as one JSON object.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ProviderSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) azure_key_config: Option<switchyard_core::provider_keys::AzureKeyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bedrock_key_config: Option<switchyard_core::provider_keys::BedrockKeyConfig>,
    /// The key's model aliases (kept here, with the other per-key settings, so no column is needed).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) aliases: std::collections::BTreeMap<String, String>,
}

pub(crate) fn provider_settings_json(key: &KeyConfig) -> Option<String> {
    if key.azure_key_config.is_none() && key.bedrock_key_config.is_none() && key.aliases.is_empty() {
        return None;
    }
    let s = ProviderSettings {
        azure_key_config: key.azure_key_config.clone(),
        bedrock_key_config: key.bedrock_key_config.clone(),
        aliases: key.aliases.clone(),
    };
    Some(serde_json::to_string(&s).expect("settings always serialise"))
}
