//! `switchyard`: the gateway binary. Parses the command line, sets up logging, and runs the server
//! until SIGTERM or SIGINT.

mod config_cmd;
mod litellm_cmd;
mod security_args;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use switchyard_gateway::{ConfigStoreSetting, Gateway, LogsConfig, ServerConfig};

// `--features system-allocator` leaves the process on the C allocator, where heap profilers (valgrind's
// DHAT, `bench/profile.sh heap`) see every allocation.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: switchyard_alloc::Mimalloc = switchyard_alloc::Mimalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

/// Switchyard: an AI gateway in front of mittwald AI Hosting, OpenAI, Anthropic and any
/// OpenAI-compatible server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on. Loopback by default; expose it deliberately.
    #[arg(long, env = "SWITCHYARD_HOST", default_value = "127.0.0.1")]
    host: String,
    #[arg(long, env = "SWITCHYARD_PORT", default_value_t = 8080)]
    port: u16,
    /// Directory for config.db (created if missing).
    #[arg(long, env = "SWITCHYARD_APP_DIR", default_value = "./data")]
    app_dir: PathBuf,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive such as "switchyard=debug".
    #[arg(long, env = "SWITCHYARD_LOG_LEVEL", default_value = "info")]
    log_level: String,
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: LogFormat,
    /// Seconds in-flight requests may run on after SIGTERM/SIGINT before the process exits.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    shutdown_grace_seconds: u64,
    /// Largest accepted request body, in MiB.
    #[arg(long, env = "SWITCHYARD_MAX_REQUEST_BODY_MB", default_value_t = 64)]
    max_request_body_mb: usize,
    /// Largest upstream JSON answer read, in MiB (a larger one is a 502 upstream_answer_too_large).
    #[arg(long, env = "SWITCHYARD_MAX_UPSTREAM_ANSWER_MB", default_value_t = 256)]
    max_upstream_answer_mb: usize,
    /// Largest single upstream SSE event, in MiB (a larger one ends the stream with an error event).
    #[arg(long, env = "SWITCHYARD_MAX_SSE_EVENT_MB", default_value_t = 16)]
    max_sse_event_mb: usize,
    /// Turn the request log off (it is on by default: SQLite logs.db in the app dir).
    #[arg(long, env = "SWITCHYARD_NO_REQUEST_LOGS")]
    no_request_logs: bool,
    /// Keep the request log in PostgreSQL instead (postgres://user@host/db).
    #[arg(long, env = "SWITCHYARD_LOGS_POSTGRES_URL")]
    logs_postgres_url: Option<String>,
    /// Delete request log rows older than this many days.
    #[arg(long, env = "SWITCHYARD_LOG_RETENTION_DAYS", default_value_t = 30)]
    log_retention_days: u32,
    /// Log request and response bodies of every call (off by default; providers can opt in one by
    /// one with store_raw_request_response).
    #[arg(long, env = "SWITCHYARD_LOG_CONTENT")]
    log_content: bool,
    /// Largest logged body, in KiB (longer bodies are cut).
    #[arg(long, env = "SWITCHYARD_LOG_CONTENT_MAX_KB", default_value_t = 64)]
    log_content_max_kb: usize,
    /// Export traces over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318). Off by default.
    #[arg(long, env = "SWITCHYARD_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Config store: "sqlite" (config.db in the app dir, the default) or a postgres:// URL shared by
    /// several replicas.
    #[arg(
        long,
        env = "SWITCHYARD_CONFIG_STORE",
        default_value = "sqlite",
        hide_env_values = true
    )]
    config_store: String,
    /// PostgreSQL schema of the config store (created if missing).
    #[arg(long, env = "SWITCHYARD_CONFIG_STORE_SCHEMA", default_value = "switchyard")]
    config_store_schema: String,
    /// config.json to load at start-up (default: config.json in the app dir, if present).
    #[arg(long, env = "SWITCHYARD_CONFIG_FILE")]
    config_file: Option<PathBuf>,
    /// Seconds between safety-net reloads from a shared config store.
    #[arg(long, env = "SWITCHYARD_CONFIG_RESYNC_SECONDS", default_value_t = 10)]
    config_resync_seconds: u64,
    /// Redis for governance counters shared by several gateways (e.g. redis://127.0.0.1:6379);
    /// without it, counters are kept in memory and persisted to the config store.
    #[arg(long, env = "SWITCHYARD_REDIS_URL")]
    redis_url: Option<String>,
    /// Prefix of this deployment's Redis keys.
    #[arg(long, env = "SWITCHYARD_REDIS_KEY_PREFIX", default_value = "switchyard:gov:")]
    redis_key_prefix: String,
    /// The currency of every amount: price overrides, budgets, spend views, refusals, the UI (ISO 4217
    /// code; no conversion). The embedded vendor price table (USD) applies only under USD.
    #[arg(long, env = "SWITCHYARD_CURRENCY", default_value = "USD", value_parser = switchyard_core::pricing::Currency::parse)]
    currency: switchyard_core::pricing::Currency,
    #[command(flatten)]
    security: security_args::SecurityArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with config.json files.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Check a config file: exit 0 when valid, 1 with the exact field (or line and column) otherwise.
    Validate { file: PathBuf },
    /// Convert LiteLLM's config.yaml into config.json (stdout, or --out FILE); unsupported settings
    /// are reported by name.
    ImportLitellm {
        file: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .map_err(|e| anyhow::anyhow!("invalid --log-level '{}': {e}", cli.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(Command::Config {
        action: ConfigAction::Validate { file },
    }) = &cli.command
    {
        return Ok(config_cmd::validate(file));
    }
    if let Some(Command::Config {
        action: ConfigAction::ImportLitellm { file, out },
    }) = &cli.command
    {
        return Ok(litellm_cmd::import(file, out.as_ref()));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(cli))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    if cli.security.hash_password {
        return security_args::print_password_hash();
    }
    init_logging(&cli)?;
    let config_store = ConfigStoreSetting::parse(&cli.config_store, Some(&cli.config_store_schema))
        .map_err(|e| anyhow::anyhow!("invalid --config-store: {e}"))?;
    let security = cli.security.to_config()?;
    let config = ServerConfig {
        host: cli.host.clone(),
        port: cli.port,
        app_dir: cli.app_dir.clone(),
        shutdown_grace: Duration::from_secs(cli.shutdown_grace_seconds),
        max_request_body_bytes: cli.max_request_body_mb.saturating_mul(1024 * 1024),
        answer_limits: switchyard_gateway::AnswerLimits {
            max_json_bytes: cli.max_upstream_answer_mb.max(1).saturating_mul(1024 * 1024),
            max_sse_event_bytes: cli.max_sse_event_mb.max(1).saturating_mul(1024 * 1024),
        },
        logs: LogsConfig {
            enabled: !cli.no_request_logs,
            postgres_url: cli.logs_postgres_url.clone(),
            retention_days: cli.log_retention_days,
            content: cli.log_content,
            content_max_bytes: cli.log_content_max_kb.saturating_mul(1024),
            ..LogsConfig::default()
        },
        otlp_endpoint: cli.otlp_endpoint.clone(),
        config_store,
        config_file: cli.config_file.clone(),
        config_resync_interval: Duration::from_secs(cli.config_resync_seconds.max(1)),
        security,
        redis_url: cli.redis_url.clone(),
        redis_key_prefix: cli.redis_key_prefix.clone(),
        currency: cli.currency.clone(),
        ..ServerConfig::default()
    };
    let gateway = Gateway::bind(&config).await?;
    tracing::info!(
        addr = %gateway.local_addr(),
        app_dir = %config.app_dir.display(),
        "switchyard listening on http://{}",
        gateway.local_addr()
    );
    gateway.serve(shutdown_signal()).await?;
    tracing::info!("switchyard stopped");
    Ok(())
}
