//! The limits every LiteLLM entity carries (`max_budget`, `budget_duration`, `tpm_limit`, `rpm_limit`),
//! mapped onto Switchyard's budgets and rate limits, and read back out of them.

use serde::{Deserialize, Deserializer};

use super::duration::{litellm_spelling, LlmDuration};
use crate::governance::window::{ResetDuration, Unit};
use crate::governance::{Budget, RateLimit};
use crate::ValidationError;

/// LiteLLM's `max_budget` without `budget_duration` is a lifetime cap: a window of 1000 years.
pub const LIFETIME: ResetDuration = ResetDuration {
    count: 1000,
    unit: Unit::Year,
};

const MINUTE: ResetDuration = ResetDuration {
    count: 1,
    unit: Unit::Minute,
};

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The limit fields of a LiteLLM body, as given (absent: keep; `null`: remove).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct LimitFields {
    #[serde(default, deserialize_with = "double_option")]
    pub max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub budget_duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub tpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rpm_limit: Option<Option<u64>>,
}

/// Applies `f` to a level's budgets and rate limit.
pub fn apply_limits(
    f: &LimitFields,
    budgets: &mut Vec<Budget>,
    rate: &mut Option<RateLimit>,
) -> Result<(), ValidationError> {
    let window = match &f.budget_duration {
        Some(Some(raw)) => Some(
            LlmDuration::parse(raw)
                .map_err(|m| ValidationError::new("budget_duration", m))?
                .reset_duration(),
        ),
        Some(None) => Some(LIFETIME),
        None => None,
    };
    match f.max_budget {
        Some(Some(max)) => {
            if !max.is_finite() || max < 0.0 {
                return Err(ValidationError::new(
                    "max_budget",
                    "must be an amount of 0 or more (in the operator's currency)",
                ));
            }
            let reset_duration = window
                .or(budgets.first().map(|b| b.reset_duration))
                .unwrap_or(LIFETIME);
            *budgets = vec![Budget {
                max_limit: max,
                reset_duration,
                calendar_aligned: false,
            }];
        }
        Some(None) => budgets.clear(),
        None => {
            if let (Some(w), Some(b)) = (window, budgets.first_mut()) {
                b.reset_duration = w;
            }
        }
    }
    let mut r = rate.take().unwrap_or_default();
    if let Some(rpm) = f.rpm_limit {
        r.request_max_limit = rpm;
        r.request_reset_duration = rpm.map(|_| MINUTE);
    }
    if let Some(tpm) = f.tpm_limit {
        r.token_max_limit = tpm;
        r.token_reset_duration = tpm.map(|_| MINUTE);
    }
    *rate = (r != RateLimit::default()).then_some(r);
    Ok(())
}

/// What LiteLLM shows of a level's limits.
pub struct LimitView {
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub tpm_limit: Option<u64>,
    pub rpm_limit: Option<u64>,
}

pub fn view_limits(budgets: &[Budget], rate: Option<&RateLimit>) -> LimitView {
    let first = budgets.first();
    let per_minute = |limit: Option<u64>, d: Option<ResetDuration>| limit.filter(|_| d == Some(MINUTE));
    LimitView {
        max_budget: first.map(|b| b.max_limit),
        budget_duration: first
            .filter(|b| b.reset_duration != LIFETIME)
            .and_then(|b| litellm_spelling(b.reset_duration)),
        tpm_limit: rate.and_then(|r| per_minute(r.token_max_limit, r.token_reset_duration)),
        rpm_limit: rate.and_then(|r| per_minute(r.request_max_limit, r.request_reset_duration)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: serde_json::Value) -> LimitFields {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn budgets_and_rates_map_both_ways() {
        let (mut b, mut r) = (Vec::new(), None);
        apply_limits(
            &fields(serde_json::json!({"max_budget": 10.0, "budget_duration": "30d", "rpm_limit": 5, "tpm_limit": 100})),
            &mut b,
            &mut r,
        )
        .unwrap();
        let v = view_limits(&b, r.as_ref());
        assert_eq!(v.max_budget, Some(10.0));
        assert_eq!(v.budget_duration.as_deref(), Some("30d"));
        assert_eq!((v.rpm_limit, v.tpm_limit), (Some(5), Some(100)));
        // Only the duration changes: the amount stays. null removes.
        apply_limits(
            &fields(serde_json::json!({"budget_duration": "1h", "rpm_limit": null})),
            &mut b,
            &mut r,
        )
        .unwrap();
        let v = view_limits(&b, r.as_ref());
        assert_eq!(
            (v.max_budget, v.budget_duration.as_deref()),
            (Some(10.0), Some("1h"))
        );
        assert_eq!((v.rpm_limit, v.tpm_limit), (None, Some(100)));
        apply_limits(
            &fields(serde_json::json!({"max_budget": null, "tpm_limit": null})),
            &mut b,
            &mut r,
        )
        .unwrap();
        assert!(b.is_empty() && r.is_none());
        // A budget without a duration is a lifetime cap.
        apply_limits(&fields(serde_json::json!({"max_budget": 1})), &mut b, &mut r).unwrap();
        assert_eq!(b[0].reset_duration, LIFETIME);
        assert_eq!(view_limits(&b, None).budget_duration, None);
    }

    #[test]
    fn bad_values_name_the_field() {
        let (mut b, mut r) = (Vec::new(), None);
        let e = apply_limits(&fields(serde_json::json!({"max_budget": -1})), &mut b, &mut r).unwrap_err();
        assert_eq!(e.field, "max_budget");
        let e = apply_limits(
            &fields(serde_json::json!({"budget_duration": "soon"})),
            &mut b,
            &mut r,
        )
        .unwrap_err();
        assert_eq!(e.field, "budget_duration");
    }
}
