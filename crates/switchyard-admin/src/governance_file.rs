//! `config.json`'s `governance` and `client` blocks, applied to the governance store at start-up,
//! after [`Governance::open`](switchyard_runtime::governance::Governance::open).
//!
//! The plan is [`plan_governance`] (pure, in the core); every step goes through the same write path as
//! the management API (`api::insert_virtual_key`, ...), so references are checked and the snapshot is
//! reloaded exactly as for an API call. Replicas starting together run the same plan: a step another
//! replica already made (a conflict, or an entry already gone) is skipped, as for providers.
//!
//! `client.enforce_auth_on_inference` follows the same `source_of_truth`: `"split"` sets it only while
//! the store has no value (a later `PUT /api/config` wins), `"config.json"` makes the store equal to
//! the file at every start.

use serde_json::Value;
use switchyard_core::config_file::governance::{plan_governance, StoredGovernance};
use switchyard_core::config_file::{ConfigFile, GovernanceStep, SourceOfTruth};
use switchyard_core::governance::{Group, VirtualKey};
use switchyard_store::StoreError;

use crate::governance_api::{
    insert_group, insert_virtual_key, put_price, remove_group, remove_price, remove_virtual_key,
    set_enforce_auth, update_group_with, update_virtual_key_with,
};
use switchyard_runtime::error::GatewayError;
use switchyard_runtime::governance::{now_ms, Governance, CLIENT_CONFIG};

/// Applies the file's governance and client settings; returns how many changes were made.
pub async fn apply(gov: &Governance, file: &ConfigFile) -> Result<usize, GatewayError> {
    let mut applied = 0;
    if let Some(enforce) = file.enforce_auth_on_inference {
        let stored = gov
            .store()
            .get_setting(CLIENT_CONFIG)
            .await?
            .and_then(|v| v.get("enforce_auth_on_inference").and_then(Value::as_bool));
        let write = match file.source_of_truth {
            SourceOfTruth::Split => stored.is_none(),
            SourceOfTruth::File => stored != Some(enforce),
        };
        if write {
            set_enforce_auth(gov, enforce).await?;
            applied += 1;
            tracing::info!("config.json: client.enforce_auth_on_inference = {enforce}");
        }
    }
    applied += crate::guardrails_api::apply_file(gov, file).await?;
    let Some(declared) = &file.governance else {
        return Ok(applied);
    };
    let snap = gov.snapshot();
    let keys: Vec<VirtualKey> = snap.keys.iter().map(|k| (**k).clone()).collect();
    let steps = plan_governance(
        declared,
        file.source_of_truth,
        &StoredGovernance {
            virtual_keys: &keys,
            teams: &snap.teams,
            customers: &snap.customers,
            pricing_overrides: &snap.price_overrides,
        },
    );
    let now = now_ms();
    for step in &steps {
        let result = match step {
            GovernanceStep::CreateCustomer(g) => insert_group(gov, false, &stamp_group(g, now)).await,
            GovernanceStep::CreateTeam(g) => insert_group(gov, true, &stamp_group(g, now)).await,
            GovernanceStep::UpdateCustomer(g) => replace_group(gov, false, g).await,
            GovernanceStep::UpdateTeam(g) => replace_group(gov, true, g).await,
            GovernanceStep::DeleteCustomer(id) => remove_group(gov, false, id).await,
            GovernanceStep::DeleteTeam(id) => remove_group(gov, true, id).await,
            GovernanceStep::CreateVirtualKey(k) => {
                let mut k = k.clone();
                if k.created_at_ms == 0 {
                    k.created_at_ms = now;
                }
                insert_virtual_key(gov, &k).await
            }
            GovernanceStep::UpdateVirtualKey(k) => update_virtual_key_with(gov, &k.id, |_| Ok(k.clone()))
                .await
                .map(drop),
            GovernanceStep::DeleteVirtualKey(id) => remove_virtual_key(gov, id).await,
            GovernanceStep::PutPrice(p) => put_price(gov, p).await,
            GovernanceStep::DeletePrice(provider, model) => remove_price(gov, provider, model).await,
        };
        match result {
            Ok(()) => {
                applied += 1;
                tracing::info!("config.json: {step}");
            }
            // Another replica reconciling the same file got there first.
            Err(
                GatewayError::Store(StoreError::Conflict(_) | StoreError::NotFound(_))
                | GatewayError::NotFound { .. },
            ) => {
                tracing::info!("config.json: {step}: already done elsewhere, skipped");
                // What the other replica made is in the store, not yet in this snapshot, and the next
                // steps' reference checks read the snapshot.
                gov.reload().await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}

/// The file leaves `created_at_ms` at 0 unless it set a creation time.
fn stamp_group(g: &Group, now: i64) -> Group {
    let mut g = g.clone();
    if g.created_at_ms == 0 {
        g.created_at_ms = now;
    }
    g
}

async fn replace_group(gov: &Governance, team: bool, g: &Group) -> Result<(), GatewayError> {
    update_group_with(gov, team, &g.id, |_| Ok(g.clone()))
        .await
        .map(drop)
}
