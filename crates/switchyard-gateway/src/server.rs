//! Assembling the router and running the server with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config_source;
use crate::listen::{self, ConnectionLimits};
pub use crate::settings::{redact_url_password, ConfigStoreSetting, LogsConfig, ServerConfig};
use switchyard_admin::auth::{self, AdminAuth};
use switchyard_admin::governance_api as gov_api;
use switchyard_admin::guardrails_api as guard_api;
use switchyard_admin::{api, litellm, logs_api, mcp_api, plugins_api, ui};
use switchyard_logs::{LogStore, LogWriter, PostgresLogStore, SqliteLogStore};
use switchyard_mcp::link::LinkEnv;
use switchyard_mcp::{Hub, HubSettings};
use switchyard_proxy::routes;
use switchyard_runtime::error::GatewayError;
use switchyard_runtime::governance::counters::{Counters, MemoryCounters, RedisCounters};
use switchyard_runtime::governance::Governance;
use switchyard_runtime::metrics::Metrics;
use switchyard_runtime::runtime_state::health::HealthRegistry;
use switchyard_runtime::runtime_state::limits::ProviderLimits;
use switchyard_runtime::security::{self, SecurityConfig};
pub use switchyard_runtime::start_error::StartError;
use switchyard_runtime::state::{AppState, ConfigService, LogContentConfig};
use switchyard_runtime::trace::Tracer;
use switchyard_runtime::upstream::UpstreamClient;

/// A gateway that has opened its store and bound its socket, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    state: Arc<AppState>,
    hub: Arc<Hub>,
}

impl Gateway {
    pub async fn bind(config: &ServerConfig) -> Result<Gateway, StartError> {
        std::fs::create_dir_all(&config.app_dir).map_err(|source| StartError::AppDir {
            path: config.app_dir.clone(),
            source,
        })?;
        security::check_app_dir_writable(&config.app_dir)?;
        let admin_mode = security::admin_mode(&config.host, &config.security)?;
        let opened = config_source::open(config).await?;
        let config_service = if opened.read_only {
            ConfigService::open_read_only(opened.store).await?
        } else {
            ConfigService::open(opened.store).await?
        };
        if config_service
            .follow_changes(config.config_resync_interval)
            .await?
        {
            tracing::info!("following config changes made by other replicas");
        }
        let counters: Arc<dyn Counters> = match &config.redis_url {
            Some(url) => Arc::new(
                RedisCounters::connect(url, config.redis_key_prefix.clone())
                    .await
                    .map_err(|e| StartError::Redis(e.to_string()))?,
            ),
            None => Arc::new(MemoryCounters::default()),
        };
        let governance =
            Arc::new(Governance::open(opened.governance, counters, config.currency.clone()).await?);
        if let Some(file) = &opened.file {
            switchyard_admin::governance_file::apply(&governance, file)
                .await
                .map_err(|e| StartError::ConfigFile(format!("applying its governance: {e}")))?;
        }
        governance.spawn_flusher(config.counters_flush_every);
        if config_service.follows_changes() {
            governance.follow(config_service.reload_notices());
        }
        let (logs, log_store) = open_logs(config).await?;
        let upstream = UpstreamClient::with_policy(config.security.upstream_policy.clone())
            .with_limits(config.answer_limits);
        let tracer = config
            .otlp_endpoint
            .as_deref()
            .map(|e| Tracer::spawn(upstream.clone(), e, "switchyard".into(), config.otlp_flush_every));
        let cache = crate::cache_setup::open(config, opened.file.as_ref(), &governance).await?;
        if config_service.follows_changes() {
            cache.follow(governance.store().clone(), config_service.reload_notices());
        }
        let runtime_state = config_service.runtime_state();
        let state = Arc::new(AppState {
            config: config_service,
            upstream,
            health: HealthRegistry::new(runtime_state.clone()),
            limits: ProviderLimits::new(runtime_state),
            metrics: Metrics::new(),
            logs,
            log_store,
            tracer,
            log_content: LogContentConfig {
                enabled: config.logs.content,
                max_bytes: config.logs.content_max_bytes,
            },
            max_body_bytes: config.max_request_body_bytes,
            governance,
            master_keys: litellm::master_keys(&config.security),
            model_lists: Default::default(),
            loopback_bind: switchyard_core::admin_auth::is_loopback_bind(&config.host),
            cache,
            sealing: switchyard_runtime::security::sealing_key(&config.security)?,
        });
        switchyard_proxy::discovery::spawn_refresher(state.clone());
        let hub = open_mcp(&state, opened.file.as_ref()).await?;
        let addr = format!("{}:{}", config.host, config.port);
        let listener = listen::bind(&addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let auth = Arc::new(AdminAuth::new(admin_mode, &config.security));
        Ok(Gateway {
            listener,
            router: secured(router(state.clone(), hub.clone()), auth, &config.security),
            limits: ConnectionLimits {
                header_read_timeout: config.security.header_read_timeout,
                max_header_bytes: config.security.max_header_bytes,
                max_header_count: config.security.max_header_count,
                shutdown_grace: config.shutdown_grace,
            },
            state,
            hub,
        })
    }

    /// The MCP hub (registered MCP servers and their connections).
    pub fn mcp_hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish for up
    /// to the grace period.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        crate::listen::serve(self.listener, self.router, self.limits, shutdown).await;
        // Every answered request has queued its log record by now; write them all before exiting.
        if let Some(logs) = &self.state.logs {
            logs.clone().shutdown().await;
        }
        // Usage counted since the last periodic flush survives the restart.
        self.state.governance.flush().await;
        Ok(())
    }
}

/// The MCP hub: the stored MCP clients plus `config.json`'s `mcp` section, connecting in the background.
async fn open_mcp(
    state: &AppState,
    file: Option<&switchyard_core::config_file::ConfigFile>,
) -> Result<Arc<Hub>, StartError> {
    let env = LinkEnv {
        http: state.upstream.clone(),
        env: Arc::new(|name| std::env::var(name).ok()),
    };
    let hub = Arc::new(Hub::new(env, HubSettings::default(), state.log_store.clone()));
    mcp_api::start(
        &state.governance,
        state.sealing.as_ref(),
        &hub,
        file.and_then(|f| f.mcp.as_ref()),
    )
    .await
    .map_err(|e| StartError::ConfigFile(format!("applying its mcp section: {e}")))?;
    if state.config.follows_changes() {
        follow_mcp_clients(
            state.governance.clone(),
            state.sealing.clone(),
            hub.clone(),
            state.config.reload_notices(),
        );
    }
    Ok(hub)
}

/// With a shared store, another replica's client changes reach this one at the config resync: the
/// hub is made equal to the stored clients (unchanged ones keep their connections).
fn follow_mcp_clients(
    gov: Arc<Governance>,
    key: Option<switchyard_store::SealingKey>,
    hub: Arc<Hub>,
    mut notices: tokio::sync::watch::Receiver<u64>,
) {
    let weak = Arc::downgrade(&hub);
    drop(hub);
    tokio::spawn(async move {
        while notices.changed().await.is_ok() {
            let Some(hub) = weak.upgrade() else { return };
            match mcp_api::load(&gov, key.as_ref()).await {
                Ok(clients) => hub.sync(&clients),
                Err(e) => tracing::warn!(error = %e, "reloading the MCP clients failed"),
            }
        }
    });
}

/// The request log's writer and store, when logging is on.
async fn open_logs(
    config: &ServerConfig,
) -> Result<(Option<LogWriter>, Option<Arc<dyn LogStore>>), StartError> {
    if !config.logs.enabled {
        return Ok((None, None));
    }
    let log_store: Arc<dyn LogStore> = match &config.logs.postgres_url {
        Some(url) => Arc::new(
            PostgresLogStore::connect(url)
                .await
                .map_err(|e| StartError::Logs(e.to_string()))?,
        ),
        None => Arc::new(
            SqliteLogStore::open(&config.app_dir.join("logs.db"))
                .await
                .map_err(|e| StartError::Logs(e.to_string()))?,
        ),
    };
    let writer = LogWriter::spawn_with_retention(
        log_store.clone(),
        config.logs.queue_capacity,
        config.logs.retention_days,
    );
    Ok((Some(writer), Some(log_store)))
}

/// The security layer around the whole router (head limits, body deadline, admin gate) and the
/// login routes.
fn secured(router: Router, auth: Arc<AdminAuth>, security: &SecurityConfig) -> Router {
    let guard = listen::RequestGuard {
        head: listen::HeadLimits {
            bytes: security.max_header_bytes,
            count: security.max_header_count,
        },
        body_limit: security.body_read_timeout,
        auth: auth.clone(),
    };
    router.merge(auth::router(auth)).layer(listen::GuardLayer(guard))
}

pub fn router(state: Arc<AppState>, hub: Arc<Hub>) -> Router {
    Router::new()
        .merge(ui::router())
        .route("/health", get(health))
        .route(
            "/api/providers",
            get(api::list_providers).post(api::create_provider),
        )
        .route(
            "/api/providers/{provider}",
            get(api::get_provider)
                .put(api::update_provider)
                .delete(api::delete_provider),
        )
        .route(
            "/api/providers/{provider}/keys",
            get(api::list_keys).post(api::create_key),
        )
        .route(
            "/api/providers/{provider}/keys/{key_id}",
            get(api::get_key).put(api::update_key).delete(api::delete_key),
        )
        .route(
            "/api/providers/{provider}/keys/{key_id}/check",
            post(api::check_key),
        )
        .route(
            "/api/providers/{provider}/refresh-models",
            post(api::refresh_models),
        )
        .merge(governance_routes())
        .route("/metrics", get(logs_api::metrics))
        .route("/api/logs", get(logs_api::list))
        .route("/api/logs/stats", get(logs_api::stats))
        .route("/api/logs/histogram", get(logs_api::histogram))
        .route("/api/logs/{id}", get(logs_api::get))
        .merge(mcp_admin_routes())
        .merge(routes::router())
        .merge(routes::mcp::router())
        .merge(litellm::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::Extension(hub))
        .with_state(state)
}

fn mcp_admin_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/mcp/clients", get(mcp_api::list))
        .route("/api/mcp/client", post(mcp_api::create))
        .route(
            "/api/mcp/client/{id}",
            axum::routing::put(mcp_api::update).delete(mcp_api::delete),
        )
        .route("/api/mcp/client/{id}/reconnect", post(mcp_api::reconnect))
        .route("/api/mcp-logs", get(mcp_api::logs))
}

fn governance_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/config", get(gov_api::get_config).put(gov_api::put_config))
        .route(
            "/api/governance/virtual-keys",
            get(gov_api::list_virtual_keys).post(gov_api::create_virtual_key),
        )
        .route(
            "/api/governance/virtual-keys/{id}",
            get(gov_api::get_virtual_key)
                .put(gov_api::update_virtual_key)
                .delete(gov_api::delete_virtual_key),
        )
        .route(
            "/api/governance/teams",
            get(gov_api::list_teams).post(gov_api::create_team),
        )
        .route(
            "/api/governance/teams/{id}",
            get(gov_api::get_team)
                .put(gov_api::update_team)
                .delete(gov_api::delete_team),
        )
        .route(
            "/api/governance/customers",
            get(gov_api::list_customers).post(gov_api::create_customer),
        )
        .route(
            "/api/governance/customers/{id}",
            get(gov_api::get_customer)
                .put(gov_api::update_customer)
                .delete(gov_api::delete_customer),
        )
        .route(
            "/api/governance/pricing-overrides",
            get(gov_api::list_price_overrides)
                .post(gov_api::put_price_override)
                .delete(gov_api::delete_price_override),
        )
        .route("/api/governance/spend", get(gov_api::spend))
        .route(
            "/api/plugins",
            get(plugins_api::list_plugins).post(plugins_api::create_plugin),
        )
        .route(
            "/api/plugins/{name}",
            get(plugins_api::get_plugin)
                .put(plugins_api::update_plugin)
                .delete(plugins_api::delete_plugin),
        )
        .route("/api/cache/stats", get(plugins_api::cache_stats))
        .route("/api/cache", axum::routing::delete(plugins_api::clear_cache))
        .route("/api/guardrails", get(guard_api::list).post(guard_api::create))
        .route(
            "/api/guardrails/{id}",
            get(guard_api::get)
                .put(guard_api::update)
                .delete(guard_api::delete),
        )
        .route("/api/guardrails/{id}/test", post(guard_api::test))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.config.ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "message": e.to_string()})),
        )
            .into_response(),
    }
}

async fn not_found(uri: Uri) -> Response {
    GatewayError::NotFound {
        message: format!("no route for {}", uri.path()),
        code: Some("route_not_found"),
    }
    .into_response()
}

async fn method_not_allowed() -> Response {
    GatewayError::MethodNotAllowed.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_stay_out_of_debug_output() {
        assert_eq!(
            redact_url_password("postgres://app:s3cret@db:5432/logs?sslmode=require"),
            "postgres://app:***@db:5432/logs?sslmode=require"
        );
        assert_eq!(
            redact_url_password("postgres://app@db/logs"),
            "postgres://app@db/logs"
        );
        assert_eq!(redact_url_password("not a url"), "not a url");
        let config = ServerConfig {
            logs: LogsConfig {
                postgres_url: Some("postgres://app:s3cret@db/logs".into()),
                ..LogsConfig::default()
            },
            ..ServerConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
