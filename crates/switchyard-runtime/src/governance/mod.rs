//! Governance's state: the live set of virtual keys, teams, customers and price overrides
//! ([`Governance`], one write path like `ConfigService`), prices, the usage counters and settlement.
//! The request path's use of it (identify the caller, admit and reserve, restrict the plan) is the
//! pipeline's admission phase (`pipeline::admit`, `pipeline::plan`); when the answer has been sent
//! (or dropped), the finish phase calls [`Governance::settle`]: the real cost replaces the estimate,
//! tokens likewise, and the concurrency slot is released.

pub mod counters;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_core::governance::admission::{settlement, usd_to_nanos};
use switchyard_core::governance::{Estimate, Group, Level, LevelLimits, LimitCheck, VirtualKey};
use switchyard_core::pricing::{Currency, PriceTable, Prices};
use switchyard_core::routing::RuntimeProvider;
use switchyard_guardrails::{Guardrail, GuardrailSet};
use switchyard_store::{GovernanceData, GovernanceStore, PriceOverride, StoreError};

use crate::error::GatewayError;
use counters::Counters;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The client setting that makes a virtual key mandatory on inference routes.
pub const CLIENT_CONFIG: &str = "client_config";

/// Everything governance decides with, swapped as a whole after each change.
#[derive(Default)]
pub struct GovSnapshot {
    pub keys: Vec<Arc<VirtualKey>>,
    by_hash: foldhash::HashMap<String, Arc<VirtualKey>>,
    pub teams: Vec<Group>,
    pub customers: Vec<Group>,
    pub price_overrides: Vec<PriceOverride>,
    /// Operator prices by provider, then model: looked up without building a key.
    prices: foldhash::HashMap<String, foldhash::HashMap<String, Prices>>,
    /// Every guardrail as stored (the management API's view).
    pub guardrail_list: Vec<Guardrail>,
    /// The enabled ones, compiled (the pipeline's guard phase).
    pub guardrails: Arc<GuardrailSet>,
    pub enforce_auth_on_inference: bool,
}

impl GovSnapshot {
    fn build(data: GovernanceData, enforce: bool) -> GovSnapshot {
        let keys: Vec<Arc<VirtualKey>> = data.virtual_keys.into_iter().map(Arc::new).collect();
        let by_hash = keys.iter().map(|k| (k.value_hash.clone(), k.clone())).collect();
        let mut prices: foldhash::HashMap<String, foldhash::HashMap<String, Prices>> = Default::default();
        for p in &data.price_overrides {
            prices
                .entry(p.provider.clone())
                .or_default()
                .insert(p.model.clone(), p.prices());
        }
        GovSnapshot {
            keys,
            by_hash,
            teams: data.teams,
            customers: data.customers,
            price_overrides: data.price_overrides,
            prices,
            guardrails: Arc::new(GuardrailSet::build(data.guardrails.clone())),
            guardrail_list: data.guardrails,
            enforce_auth_on_inference: enforce,
        }
    }

    /// The virtual key whose value hashes to `value_hash`.
    pub fn by_value_hash(&self, value_hash: &str) -> Option<&Arc<VirtualKey>> {
        self.by_hash.get(value_hash)
    }

    pub fn key(&self, id: &str) -> Option<&Arc<VirtualKey>> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn team(&self, id: &str) -> Option<&Group> {
        self.teams.iter().find(|g| g.id == id)
    }

    pub fn customer(&self, id: &str) -> Option<&Group> {
        self.customers.iter().find(|g| g.id == id)
    }
}

pub struct Governance {
    store: Arc<dyn GovernanceStore>,
    pub counters: Arc<dyn Counters>,
    snapshot: ArcSwap<GovSnapshot>,
    write_lock: tokio::sync::Mutex<()>,
    /// Every amount (overrides, budgets, spend, costs) is in it; the vendor table only under USD.
    currency: Currency,
}

fn enforce_flag(setting: Option<&serde_json::Value>) -> bool {
    setting
        .and_then(|v| v.get("enforce_auth_on_inference"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

impl Governance {
    /// Loads the governance data, and restores persisted counters when the counters need it.
    pub async fn open(
        store: Arc<dyn GovernanceStore>,
        counters: Arc<dyn Counters>,
        currency: Currency,
    ) -> Result<Governance, StoreError> {
        let data = store.load_governance().await?;
        let enforce = enforce_flag(store.get_setting(CLIENT_CONFIG).await?.as_ref());
        counters.restore(store.load_counters(now_ms()).await?);
        Ok(Governance {
            store,
            counters,
            snapshot: ArcSwap::from_pointee(GovSnapshot::build(data, enforce)),
            write_lock: tokio::sync::Mutex::new(()),
            currency,
        })
    }

    /// The operator's currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    pub fn snapshot(&self) -> Arc<GovSnapshot> {
        self.snapshot.load_full()
    }

    pub fn store(&self) -> &Arc<dyn GovernanceStore> {
        &self.store
    }

    /// Serialises writes: take it, change the store, then `reload`.
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }

    /// Rebuilds the snapshot from what the store holds (the in-memory view never runs ahead of it).
    pub async fn reload(&self) -> Result<(), GatewayError> {
        let data = self.store.load_governance().await?;
        let enforce = enforce_flag(self.store.get_setting(CLIENT_CONFIG).await?.as_ref());
        self.snapshot.store(Arc::new(GovSnapshot::build(data, enforce)));
        Ok(())
    }

    /// The price of `model` at provider `p`: the operator's override first, then the embedded list
    /// price (built-in providers at their own endpoint only, and only when the currency is USD, the
    /// table's). `None` = unknown, reported as such.
    pub fn price(&self, p: &RuntimeProvider, model: &str) -> Option<Prices> {
        let snap = self.snapshot.load();
        snap.prices
            .get(p.config.name.as_str())
            .and_then(|models| models.get(model))
            .copied()
            .or_else(|| self.currency.is_usd().then(|| list_price(p, model)).flatten())
    }

    /// Reloads from the store whenever the config store reports another replica's change (its change
    /// feed covers the governance tables too). Ends when the notices end.
    pub fn follow(self: &Arc<Self>, mut notices: tokio::sync::watch::Receiver<u64>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while notices.changed().await.is_ok() {
                let Some(g) = weak.upgrade() else { return };
                if let Err(e) = g.reload().await {
                    tracing::warn!(error = %e, "governance reload after a change notice failed");
                }
            }
        });
    }

    /// Writes the counters to the store if they changed (memory counters only).
    pub async fn flush(&self) {
        if let Some(rows) = self.counters.export(now_ms()) {
            if let Err(e) = self.store.save_counters(&rows).await {
                tracing::warn!(error = %e, "could not persist governance usage counters");
            }
        }
    }

    /// Persists the counters every `every` until the process ends.
    pub fn spawn_flusher(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(g) = weak.upgrade() else { return };
                g.flush().await;
            }
        });
    }

    /// The hierarchy above a key, as limit levels (key, team, customer).
    pub fn levels<'a>(&self, snap: &'a GovSnapshot, vk: &'a VirtualKey) -> Vec<LevelLimits<'a>> {
        let mut levels = vec![LevelLimits {
            level: Level::VirtualKey,
            id: &vk.id,
            name: &vk.name,
            budgets: &vk.budgets,
            rate_limit: vk.rate_limit.as_ref(),
            max_concurrent: vk.max_concurrent_requests,
            anchor_ms: vk.created_at_ms,
        }];
        let team = vk.team_id.as_deref().and_then(|t| snap.team(t));
        if let Some(t) = team {
            levels.push(group_level(Level::Team, t));
        }
        let customer_id = vk
            .customer_id
            .as_deref()
            .or(team.and_then(|t| t.customer_id.as_deref()));
        if let Some(c) = customer_id.and_then(|c| snap.customer(c)) {
            levels.push(group_level(Level::Customer, c));
        }
        levels
    }
}

fn group_level(level: Level, g: &Group) -> LevelLimits<'_> {
    LevelLimits {
        level,
        id: &g.id,
        name: &g.name,
        budgets: &g.budgets,
        rate_limit: g.rate_limit.as_ref(),
        max_concurrent: None,
        anchor_ms: g.created_at_ms,
    }
}

/// A request admitted under a virtual key: who it is charged to and what it reserved.
pub struct Admission {
    pub vk: Arc<VirtualKey>,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    pub estimate: Estimate,
    reserved: Mutex<Vec<LimitCheck>>,
    settled: AtomicBool,
}

impl Admission {
    pub fn new(
        vk: Arc<VirtualKey>,
        team_id: Option<String>,
        customer_id: Option<String>,
        estimate: Estimate,
        checks: Vec<LimitCheck>,
    ) -> Admission {
        Admission {
            vk,
            team_id,
            customer_id,
            estimate,
            reserved: Mutex::new(checks),
            settled: AtomicBool::new(false),
        }
    }

    /// Adds checks reserved after admission (a provider config's limits) to what settlement corrects.
    pub fn reserve(&self, checks: Vec<LimitCheck>) {
        self.reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(checks);
    }
}

/// The allowed provider key ids per provider, for dispatch's key choice.
#[derive(Debug, Default)]
pub struct KeyRestriction {
    by_provider: HashMap<String, Vec<String>>,
}

impl KeyRestriction {
    pub fn new(by_provider: HashMap<String, Vec<String>>) -> KeyRestriction {
        KeyRestriction { by_provider }
    }

    pub fn allows(&self, provider: &str, key_id: &str) -> bool {
        self.by_provider
            .get(provider)
            .is_none_or(|ids| ids.iter().any(|k| k == "*" || k == key_id))
    }
}

impl Governance {
    /// Replaces an admission's reservation with what the request really used. `cost_usd` is `None`
    /// when the price is unknown: nothing is charged (the log row flags the cost as unknown).
    pub fn settle(self: &Arc<Self>, admission: &Admission, cost_usd: Option<f64>, tokens: u64) {
        if admission.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        let checks = std::mem::take(&mut *admission.reserved.lock().unwrap_or_else(|p| p.into_inner()));
        let deltas = settlement(&checks, cost_usd.map_or(0, usd_to_nanos), tokens as i64);
        if deltas.is_empty() || self.counters.try_apply_now(&deltas) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime to settle governance usage on");
            return;
        };
        let gov = self.clone();
        rt.spawn(async move {
            if let Err(e) = gov.counters.apply(&deltas).await {
                tracing::warn!(error = %e, "could not settle governance usage");
            }
        });
    }
}

/// The embedded list price applies only to a built-in provider at its own default endpoint; anything
/// else (a custom provider, or `openai` pointed at a mittwald endpoint) has no known price.
pub fn list_price(p: &RuntimeProvider, model: &str) -> Option<Prices> {
    let builtin = p.config.name.builtin()?;
    if p.config.custom_provider_config.is_some() || builtin.default_base_url != Some(p.base_url.as_str()) {
        return None;
    }
    PriceTable::embedded().lookup(builtin.name, model)
}
