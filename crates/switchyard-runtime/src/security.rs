//! Security settings and the start-up rules that go with them: admin credentials (and the rule that a
//! gateway reachable from the network has some), the encryption of provider keys at rest, connection
//! limits and the upstream address policy.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::admin_auth::is_loopback_bind;
use switchyard_core::secret::Secret;
use switchyard_core::upstream_policy::UpstreamPolicy;
use switchyard_store::{ConfigStore, SealedConfigStore, SealingKey};

use crate::start_error::StartError;

/// Who may use the admin surface (`/api/*`, `/metrics`, the UI).
#[derive(Clone, Default)]
pub struct AdminCredentials {
    /// The user name for password login (`admin` by default).
    pub username: String,
    /// Argon2id hash of the password in PHC format (`$argon2id$v=19$...`); `None`: no password login.
    pub password_hash: Option<String>,
    /// Bearer tokens accepted on every admin route (`Authorization: Bearer <token>`).
    pub tokens: Vec<Secret>,
}

impl AdminCredentials {
    pub fn is_configured(&self) -> bool {
        self.password_hash.is_some() || !self.tokens.is_empty()
    }
}

impl fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("username", &self.username)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<set>"))
            .field("tokens", &format_args!("<{} token(s)>", self.tokens.len()))
            .finish()
    }
}

#[derive(Clone)]
pub struct SecurityConfig {
    pub admin: AdminCredentials,
    /// Start on a non-loopback address without admin credentials, leaving the management API open
    /// to the network (`--insecure-no-admin-auth`). Logged loudly at start-up.
    pub insecure_no_admin_auth: bool,
    /// The operator's secret from which the key that encrypts provider keys at rest is derived
    /// (`SWITCHYARD_ENCRYPTION_KEY`). `None`: values are stored in clear (and a store holding
    /// encrypted values refuses to open).
    pub encryption_key: Option<Secret>,
    /// Signs admin session cookies; replicas that share it share sessions. `None`: a random secret
    /// per process (sessions end with a restart).
    pub session_secret: Option<Secret>,
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (set when the gateway is served over HTTPS, e.g. behind an
    /// ingress that terminates TLS).
    pub secure_cookies: bool,
    /// A client must send its complete request head within this time (slowloris).
    pub header_read_timeout: Duration,
    /// Largest request head (request line plus headers) answered normally; larger is `431`.
    pub max_header_bytes: usize,
    /// Most request headers answered normally; more is `431`.
    pub max_header_count: usize,
    /// A request body must have arrived completely within this time after the request (`408`).
    pub body_read_timeout: Duration,
    /// Addresses upstream connections may not go to, besides the cloud metadata services.
    pub upstream_policy: UpstreamPolicy,
    /// LiteLLM's master key (`SWITCHYARD_MASTER_KEY`): opens the LiteLLM management routes and
    /// passes inference; when set, every inference request needs a key, as in LiteLLM.
    pub master_key: Option<Secret>,
    /// How failed admin logins and admin-token guesses are slowed down.
    pub login_throttle: LoginThrottle,
}

/// Failed admin credentials (password logins and bearer-token guesses), per source address and in
/// total: after `free_failures` failures a source is locked out for `base_lockout`, doubling with each
/// further failure up to `max_lockout`; more than `global_failures_per_minute` failures from all
/// sources together lock every source out until the minute ends. A source is forgotten after
/// `max_lockout` without failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginThrottle {
    pub free_failures: u32,
    pub base_lockout: Duration,
    pub max_lockout: Duration,
    pub global_failures_per_minute: u32,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            free_failures: 5,
            base_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(15 * 60),
            global_failures_per_minute: 100,
        }
    }
}

impl fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not even the redacted form of the encryption or session secret: its ends are part of it.
        let set = |s: &Option<Secret>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("SecurityConfig")
            .field("admin", &self.admin)
            .field("insecure_no_admin_auth", &self.insecure_no_admin_auth)
            .field("encryption_key", &set(&self.encryption_key))
            .field("session_secret", &set(&self.session_secret))
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_header_count", &self.max_header_count)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("upstream_policy", &self.upstream_policy)
            .field("master_key", &set(&self.master_key))
            .field("login_throttle", &self.login_throttle)
            .finish()
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            admin: AdminCredentials {
                username: "admin".into(),
                ..AdminCredentials::default()
            },
            insecure_no_admin_auth: false,
            encryption_key: None,
            session_secret: None,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_header_count: 100,
            body_read_timeout: Duration::from_secs(120),
            upstream_policy: UpstreamPolicy::default(),
            master_key: None,
            login_throttle: LoginThrottle::default(),
        }
    }
}

/// How the admin surface is guarded, decided once at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminMode {
    /// Credentials are configured: every admin route needs them.
    Required,
    /// No credentials, bound to loopback: open to this machine only (the seed's commands work as
    /// written). Requests naming a foreign `Host` or coming cross-site are still refused.
    OpenOnLoopback,
    /// No credentials, bound to the network, explicitly allowed by `--insecure-no-admin-auth`.
    OpenInsecure,
}

/// The start-up rule: a gateway reachable from other machines needs admin credentials unless the
/// operator explicitly says otherwise.
pub fn admin_mode(host: &str, security: &SecurityConfig) -> Result<AdminMode, StartError> {
    if security.admin.is_configured() {
        return Ok(AdminMode::Required);
    }
    if is_loopback_bind(host) {
        return Ok(AdminMode::OpenOnLoopback);
    }
    if security.insecure_no_admin_auth {
        tracing::warn!(
            host,
            "INSECURE: listening on a non-loopback address WITHOUT admin credentials \
             (--insecure-no-admin-auth). Anyone who can reach this port can read and change providers \
             and keys. Set SWITCHYARD_ADMIN_TOKENS or SWITCHYARD_ADMIN_PASSWORD(_HASH) instead."
        );
        return Ok(AdminMode::OpenInsecure);
    }
    Err(StartError::AdminCredentialsRequired {
        host: host.to_owned(),
    })
}

/// Fails early, with a message that says what to do, when the app dir cannot be written (a bind mount
/// owned by another user is the usual cause in containers).
pub fn check_app_dir_writable(dir: &std::path::Path) -> Result<(), StartError> {
    let probe = dir.join(".switchyard-write-check");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| StartError::AppDirNotWritable {
            path: dir.to_owned(),
            source,
        })
}

/// The key that seals secrets at rest (provider keys, MCP header values), when one is configured.
pub fn sealing_key(security: &SecurityConfig) -> Result<Option<SealingKey>, StartError> {
    security
        .encryption_key
        .as_ref()
        .map(|secret| {
            SealingKey::derive(secret.expose())
                .map_err(|e| StartError::Security(format!("SWITCHYARD_ENCRYPTION_KEY: {e}")))
        })
        .transpose()
}

/// Wraps the config store in the encryption decorator, migrating clear rows when a key is set.
pub async fn seal_store(
    inner: Arc<dyn ConfigStore>,
    security: &SecurityConfig,
) -> Result<Arc<dyn ConfigStore>, StartError> {
    let key = sealing_key(security)?;
    let (store, report) = SealedConfigStore::open(inner, key).await?;
    if report.migrated > 0 {
        tracing::info!(
            migrated = report.migrated,
            "encrypted provider keys that were stored in clear"
        );
    }
    if security.encryption_key.is_none() {
        tracing::warn!(
            keys_in_clear = report.clear,
            "provider keys are stored in clear; set SWITCHYARD_ENCRYPTION_KEY to encrypt them at rest"
        );
    }
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_rule() {
        let open = SecurityConfig::default();
        assert_eq!(admin_mode("127.0.0.1", &open).unwrap(), AdminMode::OpenOnLoopback);
        assert_eq!(admin_mode("localhost", &open).unwrap(), AdminMode::OpenOnLoopback);
        assert!(matches!(
            admin_mode("0.0.0.0", &open),
            Err(StartError::AdminCredentialsRequired { .. })
        ));
        let insecure = SecurityConfig {
            insecure_no_admin_auth: true,
            ..SecurityConfig::default()
        };
        assert_eq!(admin_mode("0.0.0.0", &insecure).unwrap(), AdminMode::OpenInsecure);
        let mut with_token = SecurityConfig::default();
        with_token
            .admin
            .tokens
            .push(Secret::new("sy-admin-0123456789abcdef"));
        assert_eq!(admin_mode("0.0.0.0", &with_token).unwrap(), AdminMode::Required);
        assert_eq!(admin_mode("127.0.0.1", &with_token).unwrap(), AdminMode::Required);
        with_token.encryption_key = Some(Secret::new("enc-key-ABCDEFGHIJKLMNOP"));
        let shown = format!("{with_token:?}");
        assert!(
            !shown.contains("0123456789") && !shown.contains("enc-"),
            "{shown}"
        );
    }
}
