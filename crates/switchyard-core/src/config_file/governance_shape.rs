//! The shape check of `config.json`'s `governance` block (Bifrost's lists, each entry's fields and
//! durations), run before the block is read, so an error names the field inside the file.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{check_shape, field, ConfigFileError, Shape};

const GOVERNANCE_LISTS: &[&str] = &[
    "virtual_keys",
    "budgets",
    "rate_limits",
    "customers",
    "teams",
    "routing_rules",
    "pricing_overrides",
    "model_configs",
    "projects",
];

fn is_reset_duration(s: &str) -> bool {
    let Some(unit) = s.chars().last() else {
        return false;
    };
    let digits = &s[..s.len() - unit.len_utf8()];
    "smhdwMQY".contains(unit) && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn check_governance(v: &Value) -> Result<(), ConfigFileError> {
    let Value::Object(m) = v else {
        return Err(field("governance", "must be an object"));
    };
    let mut ids: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (k, item) in m {
        let path = format!("governance.{k}");
        if k == "auth_config" {
            let Value::Object(a) = item else {
                return Err(field(path, "must be an object"));
            };
            for (ak, av) in a {
                let shape = match ak.as_str() {
                    "admin_username" | "admin_password" => Shape::Text,
                    "is_enabled" | "disable_auth_on_inference" => Shape::Bool,
                    _ => return Err(field(format!("{path}.{ak}"), "unknown auth_config field")),
                };
                check_shape(av, shape, &format!("{path}.{ak}"))?;
            }
            continue;
        }
        let Some(list) = GOVERNANCE_LISTS.iter().find(|l| **l == k) else {
            return Err(field(
                path,
                format!(
                    "unknown governance section; expected auth_config or one of {}",
                    GOVERNANCE_LISTS.join(", ")
                ),
            ));
        };
        let Value::Array(items) = item else {
            return Err(field(path, "must be an array"));
        };
        let seen = ids.entry(list).or_default();
        for (i, entry) in items.iter().enumerate() {
            let epath = format!("{path}[{i}]");
            let Value::Object(e) = entry else {
                return Err(field(epath, "must be an object"));
            };
            if let Some(id) = e.get("id") {
                let Some(id) = id.as_str().filter(|s| !s.is_empty()) else {
                    return Err(field(format!("{epath}.id"), "must be a non-empty string"));
                };
                if !seen.insert(id.to_owned()) {
                    return Err(field(
                        format!("{epath}.id"),
                        format!("id '{id}' is used twice in {k}"),
                    ));
                }
            }
            check_governance_entry(list, e, &epath)?;
        }
    }
    // References between sections, checked once every id is known.
    let refs: &[(&str, &str, &str)] = &[
        ("virtual_keys", "team_id", "teams"),
        ("virtual_keys", "customer_id", "customers"),
        ("virtual_keys", "rate_limit_id", "rate_limits"),
        ("teams", "customer_id", "customers"),
        ("teams", "rate_limit_id", "rate_limits"),
        ("customers", "rate_limit_id", "rate_limits"),
        ("budgets", "virtual_key_id", "virtual_keys"),
        ("budgets", "team_id", "teams"),
        ("budgets", "customer_id", "customers"),
    ];
    for (list, ref_field, target) in refs {
        let Some(Value::Array(items)) = m.get(*list) else {
            continue;
        };
        for (i, entry) in items.iter().enumerate() {
            let Some(r) = entry.get(*ref_field) else { continue };
            let path = format!("governance.{list}[{i}].{ref_field}");
            let Some(r) = r.as_str() else {
                return Err(field(path, "must be a string id"));
            };
            if !ids.get(target).is_some_and(|s| s.contains(r)) {
                return Err(field(
                    path,
                    format!("no entry with id '{r}' in governance.{target}"),
                ));
            }
        }
    }
    Ok(())
}

fn check_governance_entry(list: &str, e: &Map<String, Value>, path: &str) -> Result<(), ConfigFileError> {
    let text = |k: &str| -> Result<(), ConfigFileError> {
        match e.get(k) {
            Some(v) => check_shape(v, Shape::Text, &format!("{path}.{k}")),
            None => Ok(()),
        }
    };
    match list {
        "virtual_keys" => {
            text("name")?;
            if e.contains_key("team_id") && e.contains_key("customer_id") {
                return Err(field(
                    format!("{path}.customer_id"),
                    "a virtual key belongs to a team or to a customer, not both",
                ));
            }
            if let Some(pcs) = e.get("provider_configs") {
                let Value::Array(pcs) = pcs else {
                    return Err(field(format!("{path}.provider_configs"), "must be an array"));
                };
                for (j, pc) in pcs.iter().enumerate() {
                    let ppath = format!("{path}.provider_configs[{j}]");
                    let Value::Object(pc) = pc else {
                        return Err(field(ppath, "must be an object"));
                    };
                    if !pc.get("provider").is_some_and(Value::is_string) {
                        return Err(field(
                            format!("{ppath}.provider"),
                            "is required (a provider name)",
                        ));
                    }
                    for k in ["allowed_models", "blacklisted_models", "key_ids"] {
                        if let Some(v) = pc.get(k) {
                            check_shape(v, Shape::Strings, &format!("{ppath}.{k}"))?;
                        }
                    }
                    if let Some(w) = pc.get("weight") {
                        check_shape(w, Shape::Number, &format!("{ppath}.weight"))?;
                    }
                }
            }
            for k in ["is_active", "allow_all_providers", "calendar_aligned"] {
                if let Some(v) = e.get(k) {
                    check_shape(v, Shape::Bool, &format!("{path}.{k}"))?;
                }
            }
        }
        "budgets" => {
            match e.get("max_limit") {
                Some(v) => check_shape(v, Shape::Number, &format!("{path}.max_limit"))?,
                None => return Err(field(format!("{path}.max_limit"), "is required (USD)")),
            }
            check_duration(e, "reset_duration", path, true)?;
        }
        "rate_limits" => {
            for k in ["token_max_limit", "request_max_limit"] {
                if let Some(v) = e.get(k) {
                    check_shape(v, Shape::Count, &format!("{path}.{k}"))?;
                }
            }
            check_duration(e, "token_reset_duration", path, false)?;
            check_duration(e, "request_reset_duration", path, false)?;
        }
        "customers" | "teams" => text("name")?,
        _ => {}
    }
    Ok(())
}

fn check_duration(
    e: &Map<String, Value>,
    k: &str,
    path: &str,
    required: bool,
) -> Result<(), ConfigFileError> {
    match e.get(k) {
        None if required => Err(field(format!("{path}.{k}"), "is required (e.g. \"1d\", \"1M\")")),
        None => Ok(()),
        Some(Value::String(s)) if is_reset_duration(s) => Ok(()),
        Some(_) => Err(field(
            format!("{path}.{k}"),
            "must be a duration like \"30s\", \"1m\", \"1h\", \"1d\", \"1w\", \"1M\", \"1Q\" or \"1Y\"",
        )),
    }
}
