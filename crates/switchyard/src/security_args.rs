//! Command-line flags and environment for admin auth, secrets at rest and hardening.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use switchyard_gateway::admin::auth::{check_password_hash, hash_password};
use switchyard_gateway::security::LoginThrottle;
use switchyard_gateway::{AdminCredentials, SecurityConfig};

use switchyard_core::admin_auth::{parse_token_list, token_problem};
use switchyard_core::secret::Secret;
use switchyard_core::upstream_policy::{IpBlock, UpstreamPolicy};

/// Secrets are read from the environment only, never from flags (which other users can see in the
/// process list).
const ENV_ADMIN_PASSWORD: &str = "SWITCHYARD_ADMIN_PASSWORD";
const ENV_ADMIN_TOKENS: &str = "SWITCHYARD_ADMIN_TOKENS";
const ENV_ENCRYPTION_KEY: &str = "SWITCHYARD_ENCRYPTION_KEY";
const ENV_SESSION_SECRET: &str = "SWITCHYARD_SESSION_SECRET";

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[derive(Debug, Args)]
pub struct SecurityArgs {
    /// User name for the admin login (the UI and POST /api/auth/login).
    #[arg(long, env = "SWITCHYARD_ADMIN_USERNAME", default_value = "admin")]
    admin_username: String,
    /// Admin password as an Argon2id PHC hash ($argon2id$v=19$...), from `switchyard --hash-password`.
    #[arg(long, env = "SWITCHYARD_ADMIN_PASSWORD_HASH", hide_env_values = true)]
    admin_password_hash: Option<String>,
    /// File with admin bearer tokens, one per line ('#' comments).
    #[arg(long, env = "SWITCHYARD_ADMIN_TOKENS_FILE")]
    admin_tokens_file: Option<PathBuf>,
    /// Listen on a non-loopback address WITHOUT admin credentials. Leaves the management API open to
    /// everyone who can reach the port; only for networks where something else guards it.
    #[arg(long, env = "SWITCHYARD_INSECURE_NO_ADMIN_AUTH")]
    insecure_no_admin_auth: bool,
    /// Hours an admin session lasts.
    #[arg(long, env = "SWITCHYARD_SESSION_HOURS", default_value_t = 12)]
    session_hours: u64,
    /// Mark the session cookie Secure (serve the UI over HTTPS, e.g. behind a TLS ingress).
    #[arg(long, env = "SWITCHYARD_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Seconds a client has to send its request headers (slow clients are disconnected).
    #[arg(long, env = "SWITCHYARD_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    header_read_timeout_seconds: u64,
    /// Seconds a client has to send its whole request body (slow uploads are cut off with 408).
    #[arg(long, env = "SWITCHYARD_BODY_READ_TIMEOUT_SECONDS", default_value_t = 120)]
    body_read_timeout_seconds: u64,
    /// Largest request head (request line and headers), in KiB; larger requests get 431.
    #[arg(long, env = "SWITCHYARD_MAX_HEADER_KB", default_value_t = 32)]
    max_header_kb: usize,
    /// Most request headers; more get 431.
    #[arg(long, env = "SWITCHYARD_MAX_HEADERS", default_value_t = 100)]
    max_headers: usize,
    /// Extra address blocks upstream connections may not reach, comma-separated (e.g.
    /// 10.0.0.0/8,fd00::/8). Cloud metadata addresses are always refused.
    #[arg(long, env = "SWITCHYARD_UPSTREAM_DENY", value_delimiter = ',')]
    upstream_deny: Vec<String>,
    /// Failed admin logins or wrong admin tokens from one address before it is locked out.
    #[arg(long, env = "SWITCHYARD_LOGIN_FREE_FAILURES", default_value_t = 5)]
    login_free_failures: u32,
    /// Seconds of the first lockout; each further failure doubles it.
    #[arg(long, env = "SWITCHYARD_LOGIN_LOCKOUT_SECONDS", default_value_t = 1)]
    login_lockout_seconds: u64,
    /// Longest lockout, in seconds; an address is forgotten after this long without failures.
    #[arg(long, env = "SWITCHYARD_LOGIN_MAX_LOCKOUT_SECONDS", default_value_t = 900)]
    login_max_lockout_seconds: u64,
    /// Failed admin logins or tokens per minute from all addresses together, past which every
    /// address is refused until the minute ends.
    #[arg(
        long,
        env = "SWITCHYARD_LOGIN_GLOBAL_FAILURES_PER_MINUTE",
        default_value_t = 100
    )]
    login_global_failures_per_minute: u32,
    /// Read a password from standard input, print its Argon2id hash for SWITCHYARD_ADMIN_PASSWORD_HASH,
    /// and exit.
    #[arg(long)]
    pub hash_password: bool,
}

impl SecurityArgs {
    pub fn to_config(&self) -> anyhow::Result<SecurityConfig> {
        let admin_password = env_secret(ENV_ADMIN_PASSWORD);
        let password_hash = match (&self.admin_password_hash, &admin_password) {
            (Some(_), Some(_)) => {
                bail!("set SWITCHYARD_ADMIN_PASSWORD_HASH or SWITCHYARD_ADMIN_PASSWORD, not both")
            }
            (Some(h), None) => {
                check_password_hash(h.trim()).map_err(anyhow::Error::msg)?;
                Some(h.trim().to_owned())
            }
            (None, Some(p)) => Some(hash_password(p).map_err(anyhow::Error::msg)?),
            (None, None) => None,
        };
        let mut tokens = env_secret(ENV_ADMIN_TOKENS)
            .map(|t| parse_token_list(&t))
            .unwrap_or_default();
        if let Some(path) = &self.admin_tokens_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the admin tokens file {}", path.display()))?;
            tokens.extend(parse_token_list(&text));
        }
        for (i, t) in tokens.iter().enumerate() {
            if let Some(problem) = token_problem(t) {
                bail!("admin token #{} is refused: {problem}", i + 1);
            }
        }
        let deny = self
            .upstream_deny
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| IpBlock::parse(s).map_err(|e| anyhow::anyhow!("--upstream-deny: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if self.max_header_kb < 4 {
            bail!("--max-header-kb must be at least 4");
        }
        if self.login_free_failures == 0 || self.login_global_failures_per_minute == 0 {
            bail!("--login-free-failures and --login-global-failures-per-minute must be at least 1");
        }
        Ok(SecurityConfig {
            admin: AdminCredentials {
                username: self.admin_username.clone(),
                password_hash,
                tokens: tokens.into_iter().map(Secret::new).collect(),
            },
            insecure_no_admin_auth: self.insecure_no_admin_auth,
            encryption_key: env_secret(ENV_ENCRYPTION_KEY).map(Secret::new),
            session_secret: env_secret(ENV_SESSION_SECRET).map(Secret::new),
            session_ttl: Duration::from_secs(self.session_hours.max(1) * 3600),
            secure_cookies: self.secure_cookies,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds.max(1)),
            max_header_bytes: self.max_header_kb * 1024,
            max_header_count: self.max_headers.max(16),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_seconds.max(1)),
            upstream_policy: UpstreamPolicy { deny },
            master_key: env_secret("SWITCHYARD_MASTER_KEY")
                .or_else(|| env_secret("LITELLM_MASTER_KEY"))
                .map(Secret::new),
            login_throttle: LoginThrottle {
                free_failures: self.login_free_failures,
                base_lockout: Duration::from_secs(self.login_lockout_seconds.max(1)),
                max_lockout: Duration::from_secs(
                    self.login_max_lockout_seconds
                        .max(self.login_lockout_seconds)
                        .max(1),
                ),
                global_failures_per_minute: self.login_global_failures_per_minute,
            },
        })
    }
}

/// `--hash-password`: one line from standard input in, its hash out.
pub fn print_password_hash() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on standard input");
    }
    println!("{}", hash_password(password).map_err(anyhow::Error::msg)?);
    Ok(())
}
