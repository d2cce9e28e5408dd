//! Model discovery at the edge: reading `GET /v1/models` of every provider with `model_discovery`,
//! with one of its stored keys, into [`AppState::model_lists`] (routing's input, decided in
//! `switchyard_core::discovery`). Lists are read shortly after a provider appears, every
//! [`REFRESH_EVERY`] after that, and on `POST /api/providers/{p}/refresh-models`.
//!
//! Like the admin key check, these are upstream calls outside the inference pipeline: they carry no
//! client's request, are made with the operator's stored key, and reach only the configured base URL
//! (under the upstream address policy). A failed or empty read is logged as a warning and recorded
//! with its reason; routing then goes by the keys alone for that provider.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_core::discovery::ModelList;
use switchyard_runtime::governance::now_ms;
use switchyard_runtime::state::AppState;

/// How often a provider's list is read again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// How often the refresher looks for providers without a list.
const TICK: Duration = Duration::from_secs(1);

/// Reads `provider`'s list now and stores it. `None` when the provider is not configured.
pub async fn refresh(state: &AppState, provider: &str) -> Option<ModelList> {
    let config = state.config.snapshot();
    let p = config.provider(provider)?;
    let list = match p.keys.iter().find(|k| k.usable()) {
        None => ModelList {
            models: Vec::new(),
            read_at_ms: now_ms(),
            error: Some("no usable key to read the model list with".to_owned()),
        },
        Some(key) => match crate::routes::models::fetch_upstream_models(&state.upstream, p, key).await {
            Ok(items) => ModelList {
                models: items
                    .iter()
                    .filter_map(|i| i.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect(),
                read_at_ms: now_ms(),
                error: None,
            },
            Err(e) => ModelList {
                models: Vec::new(),
                read_at_ms: now_ms(),
                error: Some(e.to_string()),
            },
        },
    };
    if !list.usable() {
        tracing::warn!(
            provider,
            error = list
                .error
                .as_deref()
                .unwrap_or("the endpoint lists no models (yet)"),
            "model discovery has no usable list; routing by the keys' models alone"
        );
    }
    state
        .model_lists
        .rcu(|lists| Arc::new(lists.with(provider, list.clone())));
    Some(list)
}

/// Reads the lists that are missing or older than [`REFRESH_EVERY`], and drops those of providers
/// that are gone or no longer discover. Runs until the state is dropped by everyone else.
pub fn spawn_refresher(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        loop {
            let Some(state) = weak.upgrade() else { return };
            let config = state.config.snapshot();
            let discovering = |name: &str| config.provider(name).is_some_and(|p| p.config.model_discovery);
            state.model_lists.rcu(|lists| Arc::new(lists.retain(discovering)));
            let due: Vec<String> = config
                .providers
                .iter()
                .filter(|p| p.config.model_discovery)
                .map(|p| p.config.name.to_string())
                .filter(|name| {
                    state
                        .model_lists
                        .load()
                        .get(name)
                        .is_none_or(|l| now_ms() - l.read_at_ms >= REFRESH_EVERY.as_millis() as i64)
                })
                .collect();
            for name in due {
                refresh(&state, &name).await;
            }
            drop(state);
            tokio::time::sleep(TICK).await;
        }
    })
}
