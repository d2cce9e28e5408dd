//! What the SQL stores share: the rows of `providers` and `provider_keys` as plain values, their
//! assembly into a [`StoredConfig`], and the mapping of write errors. Each backend only selects the
//! columns (JSON columns as text) and runs its own statements.

use switchyard_core::{KeyConfig, ProviderConfig};

use crate::{ProviderSettings, StoreError, StoredConfig};

/// A `providers` row; `config` is the provider as JSON text.
#[derive(sqlx::FromRow)]
pub(crate) struct ProviderRow {
    name: String,
    config: String,
}

/// A `provider_keys` row; `models`, `blacklisted_models` and `provider_settings` are JSON text.
/// No `Debug`: it holds the key's value.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    id: String,
    provider: String,
    name: String,
    value: String,
    models: String,
    blacklisted_models: String,
    weight: f64,
    enabled: bool,
    provider_settings: Option<String>,
}

impl KeyRow {
    /// The key and the name of the provider it belongs to.
    fn into_key(self) -> Result<(String, KeyConfig), StoreError> {
        let id = self.id;
        let settings: ProviderSettings = match &self.provider_settings {
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| StoreError::Corrupt(format!("key '{id}' provider_settings: {e}")))?,
            None => ProviderSettings::default(),
        };
        let parse_list = |column: &str, raw: &str| -> Result<Vec<String>, StoreError> {
            serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("key '{id}' {column}: {e}")))
        };
        let models = parse_list("models", &self.models)?;
        let blacklisted_models = parse_list("blacklisted_models", &self.blacklisted_models)?;
        let key = KeyConfig {
            aliases: settings.aliases,
            azure_key_config: settings.azure_key_config,
            bedrock_key_config: settings.bedrock_key_config,
            id,
            name: self.name,
            value: self.value,
            models,
            blacklisted_models,
            weight: self.weight,
            enabled: self.enabled,
        };
        Ok((self.provider, key))
    }
}

/// Builds the stored config from providers (in the order wanted) and keys (in insertion order).
/// Unparseable JSON and keys of a provider that is not there are [`StoreError::Corrupt`].
pub(crate) fn assemble(providers: Vec<ProviderRow>, keys: Vec<KeyRow>) -> Result<StoredConfig, StoreError> {
    let mut out: StoredConfig = Vec::with_capacity(providers.len());
    for row in providers {
        let p: ProviderConfig = serde_json::from_str(&row.config)
            .map_err(|e| StoreError::Corrupt(format!("provider '{}': {e}", row.name)))?;
        out.push((p, Vec::new()));
    }
    for row in keys {
        let (provider, key) = row.into_key()?;
        match out.iter_mut().find(|(p, _)| p.name.as_str() == provider) {
            Some((_, keys)) => keys.push(key),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "key '{}' belongs to missing provider '{provider}'",
                    key.id
                )))
            }
        }
    }
    Ok(out)
}

/// An update or delete that touched no row was aimed at something that does not exist.
pub(crate) fn expect_row(rows_affected: u64, not_found: impl FnOnce() -> String) -> Result<(), StoreError> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound(not_found()));
    }
    Ok(())
}

/// Binds a key's stored fields, in the order every statement lists them: `name, value, models,
/// blacklisted_models, weight, enabled, provider_settings` (JSON as text).
pub(crate) fn bind_key_fields<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    key: &'q KeyConfig,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(key.name.as_str())
        .bind(key.value.as_str())
        .bind(to_json(&key.models))
        .bind(to_json(&key.blacklisted_models))
        .bind(key.weight)
        .bind(key.enabled)
        .bind(crate::provider_settings_json(key))
}

/// The error of inserting `key`: a clash of id, or of name within the provider, is a conflict.
pub(crate) fn key_insert_error(e: sqlx::Error, key: &KeyConfig) -> StoreError {
    conflict_or(e, || {
        format!(
            "a key with id '{}' or name '{}' already exists (key names are unique per provider)",
            key.id, key.name
        )
    })
}

/// The error of updating `key`: renaming it to a name its provider already has is a conflict.
pub(crate) fn key_update_error(e: sqlx::Error, provider: &str, key: &KeyConfig) -> StoreError {
    conflict_or(e, || {
        format!("provider '{provider}' already has a key named '{}'", key.name)
    })
}

/// Maps a UNIQUE violation to a conflict with a message the API can show as is.
pub(crate) fn conflict_or(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(e),
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("config types always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider_row(name: &str) -> ProviderRow {
        let input = format!(r#"{{"provider":"{name}"}}"#);
        let provider = serde_json::from_str::<switchyard_core::config::ProviderInput>(&input)
            .unwrap()
            .into_new_provider()
            .unwrap();
        ProviderRow {
            name: name.into(),
            config: to_json(&provider),
        }
    }

    fn key_row(id: &str, provider: &str) -> KeyRow {
        KeyRow {
            id: id.into(),
            provider: provider.into(),
            name: format!("name-{id}"),
            value: "sk-test".into(),
            models: r#"["*"]"#.into(),
            blacklisted_models: "[]".into(),
            weight: 1.0,
            enabled: true,
            provider_settings: None,
        }
    }

    fn corrupt_message(result: Result<StoredConfig, StoreError>) -> String {
        match result {
            Err(StoreError::Corrupt(m)) => m,
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok(_) => panic!("expected Corrupt, got a config"),
        }
    }

    #[test]
    fn keys_join_their_provider_in_row_order() {
        let providers = vec![provider_row("anthropic"), provider_row("openai")];
        let out = assemble(providers, vec![key_row("k2", "openai"), key_row("k1", "openai")]).unwrap();
        assert_eq!(out[0].0.name.as_str(), "anthropic");
        assert!(out[0].1.is_empty());
        let ids: Vec<_> = out[1].1.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["k2", "k1"]);
    }

    #[test]
    fn unreadable_rows_are_corrupt_and_say_which() {
        let mut bad = provider_row("openai");
        bad.config = "{".into();
        assert!(corrupt_message(assemble(vec![bad], vec![])).starts_with("provider 'openai': "));

        let mut key = key_row("k1", "openai");
        key.models = "not json".into();
        let msg = corrupt_message(assemble(vec![], vec![key]));
        assert!(msg.starts_with("key 'k1' models: "), "{msg}");

        let mut key = key_row("k1", "openai");
        key.provider_settings = Some("[".into());
        let msg = corrupt_message(assemble(vec![], vec![key]));
        assert!(msg.starts_with("key 'k1' provider_settings: "), "{msg}");

        let msg = corrupt_message(assemble(vec![], vec![key_row("k1", "gone")]));
        assert_eq!(msg, "key 'k1' belongs to missing provider 'gone'");
    }
}
