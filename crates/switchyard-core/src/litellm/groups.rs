//! `/team/new|update` and `/customer/new` bodies mapped onto a Switchyard [`Group`], and their
//! LiteLLM views.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::keys::{check_metadata, refuse_unknown};
use super::limits::{apply_limits, double_option, view_limits, LimitFields};
use crate::governance::window::format_rfc3339;
use crate::governance::Group;
use crate::ValidationError;

/// `/team/new` and `/team/update`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TeamBody {
    pub team_id: Option<String>,
    pub team_alias: Option<String>,
    pub metadata: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub budget_duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub tpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rpm_limit: Option<Option<u64>>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// `/customer/new` and `/customer/update` (LiteLLM's end users).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CustomerBody {
    pub user_id: Option<String>,
    pub alias: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub budget_duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub tpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rpm_limit: Option<Option<u64>>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// A fresh group named `name` (its limits applied afterwards).
pub fn new_group(id: String, name: String, now_ms: i64) -> Group {
    Group {
        id,
        name,
        customer_id: None,
        budgets: Vec::new(),
        rate_limit: None,
        created_at_ms: now_ms,
    }
}

fn check_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ValidationError::new(field, "must be 1-200 characters"));
    }
    Ok(())
}

impl TeamBody {
    fn limits(&self) -> LimitFields {
        limit_fields!(self)
    }

    pub fn apply(&self, g: &mut Group) -> Result<(), ValidationError> {
        refuse_unknown(&self.unknown)?;
        if let Some(m) = &self.metadata {
            check_metadata(m)?;
        }
        if let Some(a) = &self.team_alias {
            check_name("team_alias", a)?;
            g.name = a.clone();
        }
        apply_limits(&self.limits(), &mut g.budgets, &mut g.rate_limit)
    }
}

impl CustomerBody {
    fn limits(&self) -> LimitFields {
        limit_fields!(self)
    }

    pub fn apply(&self, g: &mut Group) -> Result<(), ValidationError> {
        refuse_unknown(&self.unknown)?;
        if let Some(a) = &self.alias {
            check_name("alias", a)?;
            g.name = a.clone();
        }
        apply_limits(&self.limits(), &mut g.budgets, &mut g.rate_limit)
    }
}

/// LiteLLM's team object. `spend` is read by the caller.
pub fn team_record(g: &Group, spend: f64, metadata: &Value) -> Value {
    let l = view_limits(&g.budgets, g.rate_limit.as_ref());
    json!({
        "team_id": g.id,
        "team_alias": g.name,
        "spend": spend,
        "max_budget": l.max_budget,
        "budget_duration": l.budget_duration,
        "tpm_limit": l.tpm_limit,
        "rpm_limit": l.rpm_limit,
        "models": [],
        "blocked": false,
        "metadata": if metadata.is_null() { json!({}) } else { metadata.clone() },
        "created_at": format_rfc3339(g.created_at_ms),
    })
}

/// LiteLLM's end-user object.
pub fn customer_record(g: &Group, spend: f64) -> Value {
    let l = view_limits(&g.budgets, g.rate_limit.as_ref());
    json!({
        "user_id": g.id,
        "alias": (g.name != g.id).then_some(&g.name),
        "spend": spend,
        "blocked": false,
        "litellm_budget_table": {
            "max_budget": l.max_budget,
            "budget_duration": l.budget_duration,
            "tpm_limit": l.tpm_limit,
            "rpm_limit": l.rpm_limit,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_and_customers_map() {
        let b: TeamBody =
            serde_json::from_value(json!({"team_alias": "research", "max_budget": 5, "rpm_limit": 10}))
                .unwrap();
        let mut g = new_group("t1".into(), "t1".into(), 0);
        b.apply(&mut g).unwrap();
        let r = team_record(&g, 1.5, &Value::Null);
        assert_eq!(
            (r["team_alias"].as_str(), r["max_budget"].as_f64()),
            (Some("research"), Some(5.0))
        );
        assert_eq!(r["rpm_limit"], 10);
        let c: CustomerBody = serde_json::from_value(json!({"user_id": "u1", "max_budget": 0.5})).unwrap();
        let mut g = new_group("u1".into(), "u1".into(), 0);
        c.apply(&mut g).unwrap();
        let r = customer_record(&g, 0.0);
        assert_eq!(r["litellm_budget_table"]["max_budget"], 0.5);
        assert!(r["alias"].is_null());
        let bad: TeamBody = serde_json::from_value(json!({"members_with_roles": []})).unwrap();
        assert_eq!(bad.apply(&mut g).unwrap_err().field, "members_with_roles");
    }
}
