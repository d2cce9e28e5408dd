//! Switchyard's config store: where providers and keys live between restarts.
//!
//! [`ConfigStore`] is the seam: the gateway only talks to the trait, so the embedded SQLite store
//! ([`SqliteConfigStore`], the default `config.db` in the app dir) and a PostgreSQL store (for several
//! replicas, a later step) are interchangeable. Every write is one transaction: it lands whole or not at
//! all, and a crash in the middle never leaves a half-written provider.
#![forbid(unsafe_code)]

pub mod governance;
mod sqlite;

use async_trait::async_trait;
use switchyard_core::{KeyConfig, ProviderConfig};

pub use governance::{
    CounterRow, GovernanceData, GovernanceStore, GroupKind, PostgresGovernanceStore, PriceOverride,
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
    #[error("config store error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("config store migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

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
}
