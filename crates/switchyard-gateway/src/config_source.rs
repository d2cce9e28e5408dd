//! Where the config comes from at start-up: the config store (SQLite in the app dir, or a shared
//! PostgreSQL database), `config.json`, or both.
//!
//! With a `config.json` (in the app dir, or `--config-file`), the file is read first:
//! - `"config_store": {"enabled": false}`: the file is the only source. Its providers and keys are
//!   served from memory, no store is opened, and management writes answer `405 config_read_only`.
//! - otherwise the store is opened and reconciled with the file (`core::config_file::plan_reconcile`:
//!   `source_of_truth` `"split"` seeds what is missing, `"config.json"` makes the store equal to the
//!   file). Replicas starting together run the same plan; a step another replica already made
//!   (a conflict, or a row already gone) is skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard_core::config_file::{self, ConfigFile, ConfigFileError, ReconcileStep};
use switchyard_store::{
    ConfigStore, GovernanceStore, MemoryConfigStore, PostgresConfigStore, PostgresGovernanceStore,
    SqliteConfigStore, StoreError,
};

use crate::settings::{ConfigStoreSetting, ServerConfig};
use switchyard_runtime::start_error::StartError;

/// The store the gateway serves from, and whether it is read-only.
pub struct OpenedConfig {
    pub store: Arc<dyn ConfigStore>,
    /// Where virtual keys, teams, customers and usage live: the same database as the config store
    /// (for a file-only config, `config.db` in the app dir, since keys and usage change at run time).
    pub governance: Arc<dyn GovernanceStore>,
    pub read_only: bool,
    /// The parsed `config.json`, if there was one: its governance and client setting are applied by
    /// `governance::file::apply` once governance is open.
    pub file: Option<ConfigFile>,
}

/// Reads and parses a config file, with the process environment for `env.VAR`.
pub fn read_config_file(path: &Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    config_file::parse(&text, |var| std::env::var(var).ok()).map_err(|e| describe_file_error(path, &e))
}

/// `FILE:LINE:COLUMN: syntax error: ...` or `FILE: PATH: ...`, as compilers and linters print.
pub fn describe_file_error(path: &Path, e: &ConfigFileError) -> String {
    match e {
        ConfigFileError::Syntax {
            line,
            column,
            message,
        } => format!("{}:{line}:{column}: syntax error: {message}", path.display()),
        ConfigFileError::Field { path: field, message } => {
            format!("{}: error at {field}: {message}", path.display())
        }
    }
}

fn file_path(config: &ServerConfig) -> Result<Option<PathBuf>, StartError> {
    match &config.config_file {
        Some(p) if p.is_file() => Ok(Some(p.clone())),
        Some(p) => Err(StartError::ConfigFile(format!("{}: no such file", p.display()))),
        None => {
            let p = config.app_dir.join("config.json");
            Ok(p.is_file().then_some(p))
        }
    }
}

pub async fn open(config: &ServerConfig) -> Result<OpenedConfig, StartError> {
    let file = match file_path(config)? {
        Some(path) => {
            let file = read_config_file(&path).map_err(StartError::ConfigFile)?;
            for w in &file.warnings {
                tracing::warn!(file = %path.display(), "config file: {w}");
            }
            Some(file)
        }
        None => None,
    };
    if let Some(f) = file.as_ref().filter(|f| !f.config_store_enabled) {
        tracing::info!(
            providers = f.providers.len(),
            "config_store.enabled = false: serving config.json only; management writes are refused"
        );
        let governance = Arc::new(SqliteConfigStore::open(&config.app_dir.join("config.db")).await?);
        return Ok(OpenedConfig {
            store: Arc::new(MemoryConfigStore::new(config_file::as_stored(f))),
            governance,
            read_only: true,
            file,
        });
    }
    let (store, governance): (Arc<dyn ConfigStore>, Arc<dyn GovernanceStore>) = match &config.config_store {
        ConfigStoreSetting::Sqlite => {
            let sqlite = Arc::new(SqliteConfigStore::open(&config.app_dir.join("config.db")).await?);
            (sqlite.clone(), sqlite)
        }
        ConfigStoreSetting::Postgres { url, schema } => {
            let pg = PostgresConfigStore::connect(url.expose(), schema).await?;
            // Same pool, same schema: the config store's migrator already ran the governance tables.
            let governance = Arc::new(PostgresGovernanceStore::new(pg.pool().clone()));
            (Arc::new(pg), governance)
        }
    };
    // Sealed before reconciling, so values written from the file are encrypted from the first write
    // and compared in clear against the file.
    let store = switchyard_runtime::security::seal_store(store, &config.security).await?;
    if let Some(f) = &file {
        reconcile(store.as_ref(), f).await?;
    }
    Ok(OpenedConfig {
        store,
        governance,
        read_only: false,
        file,
    })
}

/// Makes the store agree with the file; returns how many steps were applied.
pub async fn reconcile(store: &dyn ConfigStore, file: &ConfigFile) -> Result<usize, StoreError> {
    let stored = store.load().await?;
    let steps = config_file::plan_reconcile(file, &stored);
    let mut applied = 0;
    for step in &steps {
        let result = match step {
            ReconcileStep::DeleteProvider(name) => store.delete_provider(name).await,
            ReconcileStep::DeleteKey { provider, key_id } => store.delete_key(provider, key_id).await,
            ReconcileStep::UpdateProvider(p) => store.update_provider(p).await,
            ReconcileStep::UpdateKey { provider, key } => store.update_key(provider, key).await,
            ReconcileStep::CreateProvider { provider, keys } => store.insert_provider(provider, keys).await,
            ReconcileStep::CreateKey { provider, key } => store.insert_key(provider, key).await,
        };
        match result {
            Ok(()) => {
                applied += 1;
                tracing::info!("config.json: {step}");
            }
            // Another replica reconciling the same file got there first.
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {
                tracing::info!("config.json: {step}: already done elsewhere, skipped");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}
