//! LiteLLM's duration strings (`"30s"`, `"30m"`, `"30h"`, `"30d"`, `"1w"`, `"1mo"`, `"1y"`), as its
//! `duration` (key lifetime) and `budget_duration` (budget window) take them, and their mapping onto
//! Switchyard's [`ResetDuration`].

use crate::governance::window::{ResetDuration, Unit};

/// A parsed LiteLLM duration: a count and a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlmDuration {
    pub count: u32,
    pub unit: Unit,
}

const SECOND_MS: i64 = 1000;

impl LlmDuration {
    /// Parses `"<count><unit>"` with unit `s`, `m` (minutes), `h`, `d`, `w`, `mo` (months) or `y`.
    pub fn parse(raw: &str) -> Result<LlmDuration, String> {
        let s = raw.trim();
        let bad = || {
            format!(
                "'{raw}' is not a duration; use a count and a unit: s, m (minutes), h, d, w, mo (months), y, e.g. '30d'"
            )
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(bad());
        }
        let count: u32 = digits.parse().map_err(|_| bad())?;
        if count == 0 || count > 1000 {
            return Err(format!("'{raw}': the count must be between 1 and 1000"));
        }
        let unit = match unit {
            "s" => Unit::Second,
            "m" => Unit::Minute,
            "h" => Unit::Hour,
            "d" => Unit::Day,
            "w" => Unit::Week,
            "mo" => Unit::Month,
            "y" | "Y" => Unit::Year,
            _ => return Err(bad()),
        };
        Ok(LlmDuration { count, unit })
    }

    /// The window Switchyard counts a budget in.
    pub fn reset_duration(self) -> ResetDuration {
        ResetDuration {
            count: self.count,
            unit: self.unit,
        }
    }

    /// The moment this long after `from_ms` (calendar months and years: the same day of the month,
    /// approximated as 30 and 365 days, as LiteLLM does).
    pub fn after(self, from_ms: i64) -> i64 {
        let unit_s: i64 = match self.unit {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Quarter => 90 * 86_400,
            Unit::Year => 365 * 86_400,
        };
        from_ms.saturating_add(i64::from(self.count) * unit_s * SECOND_MS)
    }
}

/// The LiteLLM spelling of a Switchyard window (`None` when LiteLLM has no unit for it).
pub fn litellm_spelling(d: ResetDuration) -> Option<String> {
    let unit = match d.unit {
        Unit::Second => "s",
        Unit::Minute => "m",
        Unit::Hour => "h",
        Unit::Day => "d",
        Unit::Week => "w",
        Unit::Month => "mo",
        Unit::Quarter => return Some(format!("{}mo", d.count * 3)),
        Unit::Year => "y",
    };
    Some(format!("{}{unit}", d.count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn litellm_units_parse() {
        let d = LlmDuration::parse("30d").unwrap();
        assert_eq!((d.count, d.unit), (30, Unit::Day));
        assert_eq!(LlmDuration::parse("3s").unwrap().after(1000), 4000);
        assert_eq!(LlmDuration::parse("1mo").unwrap().unit, Unit::Month);
        assert_eq!(LlmDuration::parse("5m").unwrap().unit, Unit::Minute);
        assert_eq!(LlmDuration::parse("1y").unwrap().unit, Unit::Year);
        for bad in ["", "d", "30", "30x", "0d", "-1d", "1.5h", "30 d", "99999999999d"] {
            assert!(LlmDuration::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            litellm_spelling(LlmDuration::parse("2mo").unwrap().reset_duration()).as_deref(),
            Some("2mo")
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,12}") {
            let _ = LlmDuration::parse(&s);
        }

        #[test]
        fn spelling_round_trips(count in 1u32..=1000, unit in 0usize..7) {
            let u = ["s", "m", "h", "d", "w", "mo", "y"][unit];
            let d = LlmDuration::parse(&format!("{count}{u}")).unwrap();
            let again = litellm_spelling(d.reset_duration()).unwrap();
            prop_assert_eq!(LlmDuration::parse(&again).unwrap(), d);
            prop_assert!(d.after(0) >= 1000);
        }
    }
}
