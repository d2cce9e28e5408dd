//! The `governance` block of `config.json`, read into the same entities the management API creates,
//! and [`plan_governance`]: what to change in a governance store so it agrees with the file.
//!
//! Bifrost's file keeps budgets and rate limits in their own arrays: a rate limit is referenced by
//! `rate_limit_id`, a budget points back at its owner with `virtual_key_id`, `team_id` or
//! `customer_id`. Both are folded into their owner here, and inline `budgets` / `rate_limit` (the
//! management API's shape) are accepted too. Every entry then goes through the API's own input types
//! ([`VirtualKeyInput`], [`GroupInput`]) and their validation, so the file accepts exactly what the API
//! accepts, and an error names the field inside the file.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{field, prefixed, substitute_env, ConfigFileError, SourceOfTruth};
use crate::governance::{
    hash_vk_value, vk_hint, Budget, Group, GroupInput, PriceOverride, RateLimit, VirtualKey, VirtualKeyInput,
};

/// A file entity and whether the file set its creation time (otherwise the store's time is kept,
/// or the time of creation is used).
#[derive(Clone, Debug, PartialEq)]
pub struct FileEntity<T> {
    pub entity: T,
    pub created_at_given: bool,
}

/// The governance the file declares, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileGovernance {
    pub customers: Vec<FileEntity<Group>>,
    pub teams: Vec<FileEntity<Group>>,
    pub virtual_keys: Vec<FileEntity<VirtualKey>>,
    /// `pricing_overrides` (the management API's shape); `None` when the file has no such list, so
    /// the stored prices are left alone whatever the source of truth.
    pub pricing_overrides: Option<Vec<PriceOverride>>,
}

/// Fields Bifrost writes into its own exports that carry no configuration.
const BOOKKEEPING: &[&str] = &["config_hash", "updated_at", "last_reset", "current_usage"];

fn deserialize_at<T: DeserializeOwned>(v: Value, path: &str) -> Result<T, ConfigFileError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let at = if inner == "." {
            path.to_owned()
        } else {
            format!("{path}.{inner}")
        };
        field(at, e.into_inner().to_string())
    })
}

fn list<'a>(gov: &'a Map<String, Value>, name: &str) -> &'a [Value] {
    gov.get(name).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The id of a file entry: required, so that restarts and replicas match the entry with what the store
/// holds.
fn entry_id(e: &Map<String, Value>, path: &str) -> Result<String, ConfigFileError> {
    e.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            field(
                format!("{path}.id"),
                "is required: it is how restarts and replicas recognise this entry in the store",
            )
        })
}

/// Budgets in `governance.budgets` that point back at `owner_field == id`, as budget values.
fn budgets_for(gov: &Map<String, Value>, owner_field: &str, id: &str) -> Result<Vec<Value>, ConfigFileError> {
    let mut out = Vec::new();
    for (j, b) in list(gov, "budgets").iter().enumerate() {
        let Some(b) = b.as_object() else { continue };
        if b.get(owner_field).and_then(Value::as_str) != Some(id) {
            continue;
        }
        let path = format!("governance.budgets[{j}]");
        let mut b = b.clone();
        for k in ["id", "virtual_key_id", "team_id", "customer_id"]
            .iter()
            .chain(BOOKKEEPING)
        {
            b.remove(*k);
        }
        // Checked alone first, so an error names the entry in `governance.budgets`.
        let _: Budget = deserialize_at(Value::Object(b.clone()), &path)?;
        out.push(Value::Object(b));
    }
    Ok(out)
}

/// Folds `rate_limit_id` and the budgets pointing back into the entry, drops bookkeeping fields.
fn fold_limits(
    gov: &Map<String, Value>,
    e: &mut Map<String, Value>,
    owner_field: &str,
    id: &str,
    path: &str,
) -> Result<(), ConfigFileError> {
    for k in BOOKKEEPING {
        e.remove(*k);
    }
    if let Some(rid) = e.remove("rate_limit_id") {
        if e.contains_key("rate_limit") {
            return Err(field(
                format!("{path}.rate_limit_id"),
                "give rate_limit or rate_limit_id, not both",
            ));
        }
        let rid = rid.as_str().unwrap_or_default();
        let (j, rl) = list(gov, "rate_limits")
            .iter()
            .enumerate()
            .find(|(_, r)| r.get("id").and_then(Value::as_str) == Some(rid))
            .ok_or_else(|| {
                field(
                    format!("{path}.rate_limit_id"),
                    format!("no entry with id '{rid}' in governance.rate_limits"),
                )
            })?;
        let mut rl = rl.as_object().cloned().unwrap_or_default();
        for k in ["id"].iter().chain(BOOKKEEPING) {
            rl.remove(*k);
        }
        rl.retain(|k, _| !k.ends_with("_current_usage") && !k.ends_with("_last_reset"));
        let _: RateLimit =
            deserialize_at(Value::Object(rl.clone()), &format!("governance.rate_limits[{j}]"))?;
        e.insert("rate_limit".into(), Value::Object(rl));
    }
    let pointing_back = budgets_for(gov, owner_field, id)?;
    if !pointing_back.is_empty() {
        match e.entry("budgets").or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(inline) => inline.extend(pointing_back),
            _ => return Err(field(format!("{path}.budgets"), "must be an array")),
        }
    }
    Ok(())
}

fn parse_groups(
    gov: &Map<String, Value>,
    section: &str,
    is_team: bool,
) -> Result<Vec<FileEntity<Group>>, ConfigFileError> {
    let owner_field = if is_team { "team_id" } else { "customer_id" };
    let mut out = Vec::new();
    for (i, e) in list(gov, section).iter().enumerate() {
        let path = format!("governance.{section}[{i}]");
        let mut e = e.as_object().cloned().unwrap_or_default();
        let id = entry_id(&e, &path)?;
        fold_limits(gov, &mut e, owner_field, &id, &path)?;
        let input: GroupInput = deserialize_at(Value::Object(e), &path)?;
        let created_at_given = input.created_at.is_some();
        let entity = input
            .into_new(id, 0, is_team)
            .map_err(|err| prefixed(&path, err))?;
        out.push(FileEntity {
            entity,
            created_at_given,
        });
    }
    Ok(out)
}

fn parse_virtual_keys(
    gov: &Map<String, Value>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<FileEntity<VirtualKey>>, ConfigFileError> {
    let mut out = Vec::new();
    for (i, e) in list(gov, "virtual_keys").iter().enumerate() {
        let path = format!("governance.virtual_keys[{i}]");
        let mut e = e.as_object().cloned().unwrap_or_default();
        let id = entry_id(&e, &path)?;
        let value_path = format!("{path}.value");
        let mut value = e.remove("value").ok_or_else(|| {
            field(
                &value_path,
                "is required: a virtual key from the file needs a value (sk-bf-..., or env.VAR) that \
                 clients can send",
            )
        })?;
        substitute_env(&mut value, &value_path, env)?;
        let Value::String(value) = value else {
            return Err(field(value_path, "must be a string"));
        };
        fold_limits(gov, &mut e, "virtual_key_id", &id, &path)?;
        let mut input: VirtualKeyInput = deserialize_at(Value::Object(e), &path)?;
        if input.reset_budget_usage.is_some() {
            return Err(field(
                format!("{path}.reset_budget_usage"),
                "is an action of the API's PUT, not configuration",
            ));
        }
        input.value = Some(value.clone());
        let created_at_given = input.created_at.is_some();
        let entity = input
            .into_new(id, hash_vk_value(&value), vk_hint(&value), 0)
            .map_err(|err| prefixed(&path, err))?;
        out.push(FileEntity {
            entity,
            created_at_given,
        });
    }
    Ok(out)
}

/// Reads a shape-checked `governance` block (see `check_governance`) into validated entities.
pub fn parse_governance(
    gov: &Map<String, Value>,
    env: &impl Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<FileGovernance, ConfigFileError> {
    for (j, b) in list(gov, "budgets").iter().enumerate() {
        if b.get("provider_config_id").is_some() {
            return Err(field(
                format!("governance.budgets[{j}].provider_config_id"),
                "budgets of a virtual key's provider config go inline, in \
                 virtual_keys[].provider_configs[].budgets",
            ));
        }
        if ["virtual_key_id", "team_id", "customer_id"]
            .iter()
            .all(|k| b.get(*k).is_none())
        {
            warnings.push(format!(
                "governance.budgets[{j}]: belongs to no virtual key, team or customer, ignored"
            ));
        }
    }
    for k in ["routing_rules", "model_configs", "projects", "auth_config"] {
        if gov.contains_key(k) {
            warnings.push(format!("governance.{k}: accepted but not applied"));
        }
    }
    Ok(FileGovernance {
        customers: parse_groups(gov, "customers", false)?,
        teams: parse_groups(gov, "teams", true)?,
        virtual_keys: parse_virtual_keys(gov, env)?,
        pricing_overrides: parse_prices(gov)?,
    })
}

/// `governance.pricing_overrides`: each entry read and validated as the API reads one; a provider's
/// model listed twice is an error (which price would hold?).
fn parse_prices(gov: &Map<String, Value>) -> Result<Option<Vec<PriceOverride>>, ConfigFileError> {
    if !gov.contains_key("pricing_overrides") {
        return Ok(None);
    }
    let mut out: Vec<PriceOverride> = Vec::new();
    for (j, v) in list(gov, "pricing_overrides").iter().enumerate() {
        let path = format!("governance.pricing_overrides[{j}]");
        let p: PriceOverride = deserialize_at(v.clone(), &path)?;
        p.validate()
            .map_err(|e| field(format!("{path}.{}", e.field), e.message))?;
        if out.iter().any(|o| o.provider == p.provider && o.model == p.model) {
            return Err(field(
                format!("{path}.model"),
                format!("{}/{} is priced twice", p.provider, p.model),
            ));
        }
        out.push(p);
    }
    Ok(Some(out))
}

/// One change to a governance store.
#[derive(Clone, Debug, PartialEq)]
pub enum GovernanceStep {
    CreateCustomer(Group),
    UpdateCustomer(Group),
    DeleteCustomer(String),
    CreateTeam(Group),
    UpdateTeam(Group),
    DeleteTeam(String),
    CreateVirtualKey(VirtualKey),
    UpdateVirtualKey(VirtualKey),
    DeleteVirtualKey(String),
    PutPrice(PriceOverride),
    /// (provider, model)
    DeletePrice(String, String),
}

impl std::fmt::Display for GovernanceStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GovernanceStep::CreateCustomer(g) => write!(f, "create customer {}", g.id),
            GovernanceStep::UpdateCustomer(g) => write!(f, "update customer {}", g.id),
            GovernanceStep::DeleteCustomer(id) => write!(f, "delete customer {id}"),
            GovernanceStep::CreateTeam(g) => write!(f, "create team {}", g.id),
            GovernanceStep::UpdateTeam(g) => write!(f, "update team {}", g.id),
            GovernanceStep::DeleteTeam(id) => write!(f, "delete team {id}"),
            GovernanceStep::CreateVirtualKey(k) => write!(f, "create virtual key {}", k.id),
            GovernanceStep::UpdateVirtualKey(k) => write!(f, "update virtual key {}", k.id),
            GovernanceStep::DeleteVirtualKey(id) => write!(f, "delete virtual key {id}"),
            GovernanceStep::PutPrice(p) => write!(f, "price {}/{}", p.provider, p.model),
            GovernanceStep::DeletePrice(p, m) => write!(f, "delete price {p}/{m}"),
        }
    }
}

/// What a store holds now, for [`plan_governance`].
pub struct StoredGovernance<'a> {
    pub virtual_keys: &'a [VirtualKey],
    pub teams: &'a [Group],
    pub customers: &'a [Group],
    pub pricing_overrides: &'a [PriceOverride],
}

/// Creation time and id decide nothing about whether an entity changed.
fn with_time<T: Clone>(e: &FileEntity<T>, current_ms: i64, set: fn(&mut T, i64)) -> T {
    let mut t = e.entity.clone();
    if !e.created_at_given {
        set(&mut t, current_ms);
    }
    t
}

/// The steps that make `stored` agree with `file`, matched by id. `Split` creates only what the store
/// lacks. `File` also updates what differs and deletes what the file does not list. A virtual key
/// whose value changed in the file is deleted and created again (a value never changes in place).
///
/// Order: customers, teams, then virtual keys are created/updated (so references exist), then virtual
/// keys, teams and customers are deleted (so nothing deleted is still referenced). Entities to create
/// carry `created_at_ms` 0 unless the file set it; the caller stamps them.
pub fn plan_governance(
    file: &FileGovernance,
    mode: SourceOfTruth,
    stored: &StoredGovernance<'_>,
) -> Vec<GovernanceStep> {
    let authoritative = mode == SourceOfTruth::File;
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    let set_group: fn(&mut Group, i64) = |g, t| g.created_at_ms = t;
    let set_vk: fn(&mut VirtualKey, i64) = |k, t| k.created_at_ms = t;
    for (entries, current, is_team) in [
        (&file.customers, stored.customers, false),
        (&file.teams, stored.teams, true),
    ] {
        for e in entries {
            match current.iter().find(|c| c.id == e.entity.id) {
                None if is_team => upserts.push(GovernanceStep::CreateTeam(e.entity.clone())),
                None => upserts.push(GovernanceStep::CreateCustomer(e.entity.clone())),
                Some(c) if authoritative => {
                    let target = with_time(e, c.created_at_ms, set_group);
                    if &target != c {
                        upserts.push(if is_team {
                            GovernanceStep::UpdateTeam(target)
                        } else {
                            GovernanceStep::UpdateCustomer(target)
                        });
                    }
                }
                Some(_) => {}
            }
        }
    }
    let mut recreated = Vec::new();
    for e in &file.virtual_keys {
        match stored.virtual_keys.iter().find(|c| c.id == e.entity.id) {
            None => upserts.push(GovernanceStep::CreateVirtualKey(e.entity.clone())),
            Some(c) if authoritative && c.value_hash != e.entity.value_hash => {
                recreated.push(GovernanceStep::DeleteVirtualKey(c.id.clone()));
                upserts.push(GovernanceStep::CreateVirtualKey(with_time(
                    e,
                    c.created_at_ms,
                    set_vk,
                )));
            }
            Some(c) if authoritative => {
                let target = with_time(e, c.created_at_ms, set_vk);
                if &target != c {
                    upserts.push(GovernanceStep::UpdateVirtualKey(target));
                }
            }
            Some(_) => {}
        }
    }
    if authoritative {
        for k in stored.virtual_keys {
            if !file.virtual_keys.iter().any(|e| e.entity.id == k.id) {
                deletes.push(GovernanceStep::DeleteVirtualKey(k.id.clone()));
            }
        }
        for t in stored.teams {
            if !file.teams.iter().any(|e| e.entity.id == t.id) {
                deletes.push(GovernanceStep::DeleteTeam(t.id.clone()));
            }
        }
        for c in stored.customers {
            if !file.customers.iter().any(|e| e.entity.id == c.id) {
                deletes.push(GovernanceStep::DeleteCustomer(c.id.clone()));
            }
        }
    }
    // A key whose value changed goes first: its old row holds the id the new one needs.
    let prices = plan_prices(file, authoritative, stored);
    recreated
        .into_iter()
        .chain(upserts)
        .chain(deletes)
        .chain(prices)
        .collect()
}

/// The price steps: `Split` sets the prices the store lacks; `File` also replaces those that differ and
/// deletes those the file does not list. A file without `pricing_overrides` changes no price.
fn plan_prices(
    file: &FileGovernance,
    authoritative: bool,
    stored: &StoredGovernance<'_>,
) -> Vec<GovernanceStep> {
    let Some(declared) = &file.pricing_overrides else {
        return Vec::new();
    };
    let same_key = |a: &PriceOverride, b: &PriceOverride| a.provider == b.provider && a.model == b.model;
    let mut out = Vec::new();
    for p in declared {
        match stored.pricing_overrides.iter().find(|s| same_key(s, p)) {
            None => out.push(GovernanceStep::PutPrice(p.clone())),
            Some(s) if authoritative && s != p => out.push(GovernanceStep::PutPrice(p.clone())),
            Some(_) => {}
        }
    }
    if authoritative {
        for s in stored.pricing_overrides {
            if !declared.iter().any(|p| same_key(s, p)) {
                out.push(GovernanceStep::DeletePrice(s.provider.clone(), s.model.clone()));
            }
        }
    }
    out
}
