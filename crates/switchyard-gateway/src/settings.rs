//! The server's settings: where it listens and keeps its data, which stores, logs and counters it
//! uses, and its security settings.

use std::path::PathBuf;
use std::time::Duration;

use switchyard_core::secret::Secret;
use switchyard_store::DEFAULT_SCHEMA;

use switchyard_runtime::security::SecurityConfig;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Holds `config.db` (and, later, `logs.db`).
    pub app_dir: PathBuf,
    /// How long in-flight requests (incl. streams) may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    pub max_request_body_bytes: usize,
    /// Caps on upstream answers: a JSON answer, one SSE event.
    pub answer_limits: switchyard_runtime::upstream::AnswerLimits,
    pub logs: LogsConfig,
    /// OTLP/HTTP endpoint for traces (e.g. `http://127.0.0.1:4318`); `None` = tracing export off.
    pub otlp_endpoint: Option<String>,
    pub otlp_flush_every: Duration,
    /// Where providers and keys are stored: SQLite in the app dir, or a shared PostgreSQL.
    pub config_store: ConfigStoreSetting,
    /// `config.json` to seed, reconcile or replace the store; `None`: `config.json` in the app dir, if
    /// there is one.
    pub config_file: Option<PathBuf>,
    /// Safety-net reload interval of a shared store (changes normally arrive as notices at once).
    pub config_resync_interval: Duration,
    /// Admin auth, secrets at rest, connection limits, upstream address policy.
    pub security: SecurityConfig,
    /// Governance counters: `None` keeps them in memory (one gateway); a Redis URL shares them between
    /// gateways.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this gateway uses (tests isolate themselves with their own).
    pub redis_key_prefix: String,
    /// How often in-memory governance counters are written to the config store (only when they changed):
    /// what a crash (`kill -9`) can lose of usage at most.
    pub counters_flush_every: Duration,
    /// The operator's currency: every amount is in it, without conversion; the embedded vendor price
    /// table (USD) applies only under USD.
    pub currency: switchyard_core::pricing::Currency,
}

/// The request log.
#[derive(Clone)]
pub struct LogsConfig {
    pub enabled: bool,
    /// `None`: SQLite `logs.db` in the app dir; `Some(url)`: a PostgreSQL database.
    pub postgres_url: Option<String>,
    pub retention_days: u32,
    /// Log request and response bodies for every provider (off by default, per the compliance advice
    /// of the seed guide).
    pub content: bool,
    pub content_max_bytes: usize,
    pub queue_capacity: usize,
}

impl std::fmt::Debug for LogsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A database URL may carry a password (`postgres://user:secret@host/db`).
        f.debug_struct("LogsConfig")
            .field("enabled", &self.enabled)
            .field(
                "postgres_url",
                &self.postgres_url.as_deref().map(redact_url_password),
            )
            .field("retention_days", &self.retention_days)
            .field("content", &self.content)
            .field("content_max_bytes", &self.content_max_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .finish()
    }
}

/// `scheme://user:password@host/...` with the password replaced by `***`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: true,
            postgres_url: None,
            retention_days: 30,
            content: false,
            content_max_bytes: 64 * 1024,
            queue_capacity: 50_000,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            app_dir: PathBuf::from("./data"),
            shutdown_grace: Duration::from_secs(30),
            max_request_body_bytes: 64 * 1024 * 1024,
            answer_limits: switchyard_runtime::upstream::AnswerLimits::default(),
            logs: LogsConfig::default(),
            otlp_endpoint: None,
            otlp_flush_every: Duration::from_secs(2),
            config_store: ConfigStoreSetting::default(),
            config_file: None,
            config_resync_interval: Duration::from_secs(10),
            security: SecurityConfig::default(),
            redis_url: None,
            redis_key_prefix: "switchyard:gov:".into(),
            counters_flush_every: Duration::from_secs(1),
            currency: switchyard_core::pricing::Currency::default(),
        }
    }
}

/// Which config store to use.
#[derive(Clone, Debug, Default)]
pub enum ConfigStoreSetting {
    /// `config.db` in the app dir.
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by every replica; all tables live in `schema`.
    Postgres { url: Secret, schema: String },
}

impl ConfigStoreSetting {
    /// Reads `--config-store`: `sqlite`, or a `postgres://` / `postgresql://` URL.
    pub fn parse(value: &str, schema: Option<&str>) -> Result<Self, String> {
        let v = value.trim();
        if v.is_empty() || v == "sqlite" {
            return Ok(ConfigStoreSetting::Sqlite);
        }
        if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            return Ok(ConfigStoreSetting::Postgres {
                url: Secret::new(v),
                schema: schema.unwrap_or(DEFAULT_SCHEMA).to_owned(),
            });
        }
        Err("expected \"sqlite\" or a postgres:// URL".into())
    }
}
