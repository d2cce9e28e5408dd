//! The store of a file-only deployment (`config.json` with `"config_store": {"enabled": false}`):
//! the file's providers and keys, held in memory, never written.

use async_trait::async_trait;

use crate::{ConfigStore, StoreError, StoredConfig};
use switchyard_core::{KeyConfig, ProviderConfig};

pub struct MemoryConfigStore {
    config: StoredConfig,
}

impl MemoryConfigStore {
    pub fn new(config: StoredConfig) -> Self {
        MemoryConfigStore { config }
    }
}

fn read_only() -> StoreError {
    StoreError::ReadOnly
}

#[async_trait]
impl ConfigStore for MemoryConfigStore {
    async fn load(&self) -> Result<StoredConfig, StoreError> {
        Ok(self.config.clone())
    }
    async fn insert_provider(&self, _: &ProviderConfig, _: &[KeyConfig]) -> Result<(), StoreError> {
        Err(read_only())
    }
    async fn update_provider(&self, _: &ProviderConfig) -> Result<(), StoreError> {
        Err(read_only())
    }
    async fn delete_provider(&self, _: &str) -> Result<(), StoreError> {
        Err(read_only())
    }
    async fn insert_key(&self, _: &str, _: &KeyConfig) -> Result<(), StoreError> {
        Err(read_only())
    }
    async fn update_key(&self, _: &str, _: &KeyConfig) -> Result<(), StoreError> {
        Err(read_only())
    }
    async fn delete_key(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(read_only())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
