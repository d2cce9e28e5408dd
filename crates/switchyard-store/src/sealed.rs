//! Provider key values encrypted at rest, as a decorator over any [`ConfigStore`].
//!
//! [`SealedConfigStore`] wraps the real store (SQLite, PostgreSQL) and forwards every method; key values
//! are sealed on the way in and opened on the way out, so the rest of the gateway only ever sees clear
//! values and the database only ever holds ciphertext.
//!
//! Format of a sealed value: `sy-enc:v1:` + base64(nonce ‖ AES-256-GCM ciphertext and tag). The nonce is
//! 96 random bits per value; the key id is the associated data, so a ciphertext copied onto another
//! key row does not open. The AES key is derived with HKDF-SHA256 from the operator's secret
//! (`SWITCHYARD_ENCRYPTION_KEY`). `env.VAR` references and empty values (key-less providers) are not
//! secrets and stay as they are. The version prefix lets a later format (or key rotation) coexist.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use switchyard_core::secret::{self, SecretSource};
use switchyard_core::{KeyConfig, ProviderConfig};

use crate::{ConfigStore, StoreError, StoredConfig};

/// Prefix of every sealed value written by this version.
pub const SEALED_PREFIX: &str = "sy-enc:v1:";
/// Prefix shared by every version of the format.
const SEALED_FAMILY: &str = "sy-enc:";
const NONCE_LEN: usize = 12;
/// Shortest operator secret accepted: the KDF does not stretch, so the input must carry the entropy.
pub const MIN_SECRET_LEN: usize = 16;

/// The AES-256 key derived from the operator's secret. `Debug` never shows it.
#[derive(Clone)]
pub struct SealingKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the encryption key must be at least {MIN_SECRET_LEN} characters (e.g. 32 random bytes, base64)"
    )]
    WeakSecret,
    #[error("value is not in a known sealed format")]
    UnknownFormat,
    #[error("value does not decrypt with this encryption key (wrong key, or the row was altered)")]
    WrongKey,
    #[error("value is encrypted but no encryption key is set (SWITCHYARD_ENCRYPTION_KEY)")]
    NoKey,
}

impl SealingKey {
    /// Derives the key with HKDF-SHA256 (fixed, versioned salt and purpose label).
    pub fn derive(secret: &str) -> Result<SealingKey, SealError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(SealError::WeakSecret);
        }
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"switchyard/config-store/v1"), secret.as_bytes());
        let mut okm = [0u8; 32];
        hk.expand(b"provider key values", &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Ok(SealingKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&okm)),
        })
    }

    /// Seals `value`; `aad` binds it to its row (the key id).
    pub fn seal(&self, value: &str, aad: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory value cannot fail");
        let mut raw = Vec::with_capacity(NONCE_LEN + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        format!("{SEALED_PREFIX}{}", B64.encode(raw))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<String, SealError> {
        let b64 = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SealError::UnknownFormat)?;
        let raw = B64.decode(b64).map_err(|_| SealError::UnknownFormat)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SealError::UnknownFormat);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let clear = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(clear).map_err(|_| SealError::WrongKey)
    }
}

/// Whether a stored value is sealed (any version).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_FAMILY)
}

/// Whether a clear value is a secret that belongs sealed (not an `env.VAR` reference, not empty).
fn needs_sealing(value: &str) -> bool {
    !value.is_empty() && matches!(secret::source(value), SecretSource::Literal(_)) && !is_sealed(value)
}

/// Seals a clear secret held outside the config store (e.g. an MCP client's header values) when a key
/// is set; `env.VAR` references, empty and already sealed values stay as they are.
pub fn seal_secret(key: Option<&SealingKey>, value: &str, aad: &str) -> String {
    match key {
        Some(sk) if needs_sealing(value) => sk.seal(value, aad),
        _ => value.to_owned(),
    }
}

/// The clear value of what [`seal_secret`] stored: sealed values are opened, clear ones pass through.
pub fn open_secret(key: Option<&SealingKey>, value: &str, aad: &str) -> Result<String, SealError> {
    if !is_sealed(value) {
        return Ok(value.to_owned());
    }
    key.ok_or(SealError::NoKey)?.open(value, aad)
}

/// What [`SealedConfigStore::open`] did to the rows it found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Clear rows from before encryption was switched on, now sealed.
    pub migrated: usize,
    /// Sealed rows (after migration).
    pub sealed: usize,
    /// Literal values stored in clear because no key is configured.
    pub clear: usize,
}

/// The decorator. With no key, values pass through unchanged (and a store that holds sealed values
/// refuses to open).
pub struct SealedConfigStore {
    inner: Arc<dyn ConfigStore>,
    key: Option<SealingKey>,
}

impl SealedConfigStore {
    /// Wraps `inner`. Refuses (with a message that says what to do) when the store holds sealed values
    /// and `key` is missing or is not the key they were sealed with. With a key, every clear literal
    /// value is sealed in place first (start-up migration).
    pub async fn open(
        inner: Arc<dyn ConfigStore>,
        key: Option<SealingKey>,
    ) -> Result<(SealedConfigStore, SealReport), StoreError> {
        let loaded = inner.load().await?;
        let mut report = SealReport::default();
        for (provider, keys) in &loaded {
            for k in keys {
                let mut migrated = k.clone();
                let mut changed = false;
                let aad_base = k.id.clone();
                for (field, value) in secret_fields(&mut migrated) {
                    let aad = associated_data(&aad_base, field);
                    match &key {
                        None if is_sealed(value) => {
                            return Err(StoreError::Sealed(format!(
                                "the config store holds encrypted provider keys (e.g. key '{}' of provider \
                                 '{}') but no encryption key is set; start with SWITCHYARD_ENCRYPTION_KEY set \
                                 to the key they were encrypted with",
                                k.name, provider.name
                            )));
                        }
                        None => report.clear += usize::from(needs_sealing(value)),
                        Some(sk) if is_sealed(value) => {
                            sk.open(value, &aad).map_err(|e| {
                                StoreError::Sealed(format!(
                                    "key '{}' of provider '{}': {e}; start with the \
                                     SWITCHYARD_ENCRYPTION_KEY the store was encrypted with",
                                    k.name, provider.name
                                ))
                            })?;
                            report.sealed += 1;
                        }
                        Some(sk) if needs_sealing(value) => {
                            *value = sk.seal(value, &aad);
                            changed = true;
                            report.migrated += 1;
                            report.sealed += 1;
                        }
                        Some(_) => {}
                    }
                }
                if changed {
                    inner.update_key(provider.name.as_str(), &migrated).await?;
                }
            }
        }
        if report.migrated > 0 {
            inner.scrub().await?;
        }
        Ok((SealedConfigStore { inner, key }, report))
    }

    fn seal_key(&self, key: &KeyConfig) -> KeyConfig {
        let mut out = key.clone();
        if let Some(sk) = &self.key {
            for (field, value) in secret_fields(&mut out) {
                if needs_sealing(value) {
                    *value = sk.seal(value, &associated_data(&key.id, field));
                }
            }
        }
        out
    }

    fn open_key(&self, provider: &str, key: &mut KeyConfig) -> Result<(), StoreError> {
        let (id, name) = (key.id.clone(), key.name.clone());
        for (field, value) in secret_fields(key) {
            if !is_sealed(value) {
                continue;
            }
            let sk = self.key.as_ref().ok_or_else(|| {
                StoreError::Sealed(format!(
                    "key '{name}' of provider '{provider}' is encrypted but no encryption key is set"
                ))
            })?;
            *value = sk
                .open(value, &associated_data(&id, field))
                .map_err(|e| StoreError::Sealed(format!("key '{name}' of provider '{provider}': {e}")))?;
        }
        Ok(())
    }
}

/// Every secret a key carries: its value, and the AWS secret and session token of a Bedrock key.
fn secret_fields(key: &mut KeyConfig) -> Vec<(&'static str, &mut String)> {
    let mut fields: Vec<(&'static str, &mut String)> = vec![("value", &mut key.value)];
    if let Some(b) = key.bedrock_key_config.as_mut() {
        if let Some(v) = b.secret_key.as_mut() {
            fields.push(("bedrock_key_config.secret_key", v));
        }
        if let Some(v) = b.session_token.as_mut() {
            fields.push(("bedrock_key_config.session_token", v));
        }
    }
    fields
}

/// Binds a sealed value to its key and field, so a ciphertext copied to another key or field does not
/// open. The key's `value` uses the bare key id (the format of the first sealed stores).
fn associated_data(key_id: &str, field: &str) -> String {
    if field == "value" {
        key_id.to_owned()
    } else {
        format!("{key_id}#{field}")
    }
}

#[async_trait]
impl ConfigStore for SealedConfigStore {
    async fn load(&self) -> Result<StoredConfig, StoreError> {
        let mut loaded = self.inner.load().await?;
        for (provider, keys) in &mut loaded {
            for k in keys.iter_mut() {
                self.open_key(provider.name.as_str(), k)?;
            }
        }
        Ok(loaded)
    }

    async fn insert_provider(&self, provider: &ProviderConfig, keys: &[KeyConfig]) -> Result<(), StoreError> {
        let sealed: Vec<KeyConfig> = keys.iter().map(|k| self.seal_key(k)).collect();
        self.inner.insert_provider(provider, &sealed).await
    }

    async fn update_provider(&self, provider: &ProviderConfig) -> Result<(), StoreError> {
        self.inner.update_provider(provider).await
    }

    async fn delete_provider(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete_provider(name).await
    }

    async fn insert_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        self.inner.insert_key(provider, &self.seal_key(key)).await
    }

    async fn update_key(&self, provider: &str, key: &KeyConfig) -> Result<(), StoreError> {
        self.inner.update_key(provider, &self.seal_key(key)).await
    }

    async fn delete_key(&self, provider: &str, key_id: &str) -> Result<(), StoreError> {
        self.inner.delete_key(provider, key_id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn scrub(&self) -> Result<(), StoreError> {
        self.inner.scrub().await
    }

    async fn watch_changes(&self) -> Result<Option<crate::ChangeFeed>, StoreError> {
        self.inner.watch_changes().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteConfigStore;
    use switchyard_core::config::{KeyInput, ProviderInput};

    const SECRET: &str = "test-encryption-key-0123456789abcdef";
    const VALUE: &str = "sk-live-PLAINTEXT-0123456789";

    fn provider() -> ProviderConfig {
        serde_json::from_str::<ProviderInput>(r#"{"provider":"openai"}"#)
            .unwrap()
            .into_new_provider()
            .unwrap()
    }

    fn key(p: &ProviderConfig, id: &str, name: &str, value: &str) -> KeyConfig {
        let body = serde_json::json!({"name": name, "value": value, "models": ["*"]});
        serde_json::from_value::<KeyInput>(body)
            .unwrap()
            .into_new_key(p, id.into())
            .unwrap()
    }

    /// The raw bytes of the SQLite file and its WAL: what an attacker with the disk sees.
    fn raw_db(dir: &std::path::Path) -> Vec<u8> {
        let mut out = Vec::new();
        for name in ["config.db", "config.db-wal"] {
            if let Ok(b) = std::fs::read(dir.join(name)) {
                out.extend(b);
            }
        }
        out
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    async fn sqlite(dir: &std::path::Path) -> Arc<SqliteConfigStore> {
        Arc::new(SqliteConfigStore::open(&dir.join("config.db")).await.unwrap())
    }

    #[test]
    fn secrets_outside_the_store_are_sealed_only_with_a_key_and_open_only_with_it() {
        let sk = SealingKey::derive(SECRET).unwrap();
        let sealed = seal_secret(Some(&sk), VALUE, "mcp_client:a#headers.Authorization");
        assert!(is_sealed(&sealed) && !sealed.contains(VALUE));
        assert_eq!(
            open_secret(Some(&sk), &sealed, "mcp_client:a#headers.Authorization").unwrap(),
            VALUE
        );
        assert_eq!(
            open_secret(Some(&sk), &sealed, "mcp_client:b#headers.Authorization"),
            Err(SealError::WrongKey)
        );
        assert_eq!(open_secret(None, &sealed, "x"), Err(SealError::NoKey));
        assert_eq!(seal_secret(None, VALUE, "x"), VALUE);
        assert_eq!(
            seal_secret(Some(&sk), "env.UPSTREAM_TOKEN", "x"),
            "env.UPSTREAM_TOKEN"
        );
        assert_eq!(open_secret(Some(&sk), VALUE, "x").unwrap(), VALUE);
    }

    #[test]
    fn seal_round_trip_fresh_nonces_and_binding() {
        let k = SealingKey::derive(SECRET).unwrap();
        let a = k.seal(VALUE, "id1");
        let b = k.seal(VALUE, "id1");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(a.starts_with(SEALED_PREFIX) && !a.contains(VALUE));
        assert_eq!(k.open(&a, "id1").unwrap(), VALUE);
        assert_eq!(k.open(&a, "id2"), Err(SealError::WrongKey), "bound to its row");
        let other = SealingKey::derive("another-key-0123456789abcdef").unwrap();
        assert_eq!(other.open(&a, "id1"), Err(SealError::WrongKey));
        assert_eq!(k.open("sy-enc:v1:!!", "id1"), Err(SealError::UnknownFormat));
        assert_eq!(SealingKey::derive("short").unwrap_err(), SealError::WeakSecret);
        assert!(!format!("{k:?}").contains(SECRET));
    }

    #[tokio::test]
    async fn values_are_ciphertext_on_disk_and_clear_through_the_trait() {
        let dir = tempfile::tempdir().unwrap();
        let inner = sqlite(dir.path()).await;
        let sealing = SealingKey::derive(SECRET).unwrap();
        let (store, _) = SealedConfigStore::open(inner.clone(), Some(sealing))
            .await
            .unwrap();
        let p = provider();
        store
            .insert_provider(&p, &[key(&p, "k1", "a", VALUE), key(&p, "k2", "b", "env.MY_KEY")])
            .await
            .unwrap();
        let mut updated = key(&p, "k1", "a", "sk-live-ROTATED-9876543210");
        updated.weight = 2.0;
        store.update_key("openai", &updated).await.unwrap();
        store
            .insert_key("openai", &key(&p, "k3", "c", "sk-live-THIRD-5555555555"))
            .await
            .unwrap();

        let clear = store.load().await.unwrap();
        let values: Vec<_> = clear[0].1.iter().map(|k| k.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "sk-live-ROTATED-9876543210",
                "env.MY_KEY",
                "sk-live-THIRD-5555555555"
            ]
        );

        let raw = inner.load().await.unwrap();
        assert!(raw[0].1[0].value.starts_with(SEALED_PREFIX));
        assert_eq!(raw[0].1[1].value, "env.MY_KEY", "references stay references");
        inner.close().await;
        let bytes = raw_db(dir.path());
        for secret in [VALUE, "sk-live-ROTATED-9876543210", "sk-live-THIRD-5555555555"] {
            assert!(!contains(&bytes, secret), "{secret} is on disk in clear");
        }
        assert!(contains(&bytes, "env.MY_KEY"));
    }

    #[tokio::test]
    async fn bedrock_secrets_are_sealed_too() {
        const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-sealed";
        const AWS_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN-sealed-0123";
        let dir = tempfile::tempdir().unwrap();
        let inner = sqlite(dir.path()).await;
        let (store, _) = SealedConfigStore::open(inner.clone(), Some(SealingKey::derive(SECRET).unwrap()))
            .await
            .unwrap();
        let p = provider();
        let mut k = key(&p, "k1", "aws", VALUE);
        k.bedrock_key_config = Some(switchyard_core::provider_keys::BedrockKeyConfig {
            access_key: Some("AKIDEXAMPLE".into()),
            secret_key: Some(AWS_SECRET.into()),
            session_token: Some(AWS_TOKEN.into()),
            region: Some("eu-central-1".into()),
            ..Default::default()
        });
        store.insert_provider(&p, &[k]).await.unwrap();
        let clear = store.load().await.unwrap();
        let b = clear[0].1[0].bedrock_key_config.as_ref().unwrap();
        assert_eq!(b.secret_key.as_deref(), Some(AWS_SECRET));
        assert_eq!(b.session_token.as_deref(), Some(AWS_TOKEN));
        let raw = inner.load().await.unwrap();
        let rb = raw[0].1[0].bedrock_key_config.as_ref().unwrap();
        assert!(rb.secret_key.as_deref().unwrap().starts_with(SEALED_PREFIX));
        assert!(rb.session_token.as_deref().unwrap().starts_with(SEALED_PREFIX));
        inner.close().await;
        let bytes = raw_db(dir.path());
        for secret in [VALUE, AWS_SECRET, AWS_TOKEN] {
            assert!(!contains(&bytes, secret), "{secret} is on disk in clear");
        }
    }

    #[tokio::test]
    async fn clear_rows_from_before_are_migrated_and_a_missing_or_wrong_key_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = provider();
        {
            let inner = sqlite(dir.path()).await;
            inner
                .insert_provider(&p, &[key(&p, "k1", "a", VALUE)])
                .await
                .unwrap();
            let (store, report) = SealedConfigStore::open(inner.clone(), None).await.unwrap();
            assert_eq!(
                report,
                SealReport {
                    migrated: 0,
                    sealed: 0,
                    clear: 1
                }
            );
            assert_eq!(store.load().await.unwrap()[0].1[0].value, VALUE);
            inner.close().await;
        }
        {
            let inner = sqlite(dir.path()).await;
            let key = SealingKey::derive(SECRET).unwrap();
            let (store, report) = SealedConfigStore::open(inner.clone(), Some(key)).await.unwrap();
            assert_eq!(
                report,
                SealReport {
                    migrated: 1,
                    sealed: 1,
                    clear: 0
                }
            );
            assert_eq!(store.load().await.unwrap()[0].1[0].value, VALUE);
            inner.close().await;
        }
        assert!(!contains(&raw_db(dir.path()), VALUE));

        let inner = sqlite(dir.path()).await;
        let err = SealedConfigStore::open(inner.clone(), None).await.err().unwrap();
        assert!(err.to_string().contains("SWITCHYARD_ENCRYPTION_KEY"), "{err}");
        let wrong = SealingKey::derive("not-the-right-key-0123456789").unwrap();
        let err = SealedConfigStore::open(inner.clone(), Some(wrong))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("wrong key"), "{err}");
        assert!(!err.to_string().contains(VALUE));
        // Refusing changed nothing: the right key still opens every row.
        let right = SealingKey::derive(SECRET).unwrap();
        let (store, report) = SealedConfigStore::open(inner, Some(right)).await.unwrap();
        assert_eq!(report.migrated, 0);
        assert_eq!(store.load().await.unwrap()[0].1[0].value, VALUE);
    }
}
