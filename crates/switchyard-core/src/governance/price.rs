//! An operator's price for a provider's model, set through the management API or `config.json`'s
//! `governance.pricing_overrides`, and its validation (one rule for both).

use serde::{Deserialize, Serialize};

use crate::config::ValidationError;
use crate::pricing::Prices;

/// An operator's price for a provider's model, per million tokens in the operator's currency: for
/// models the embedded table does not know (mittwald's), prices that differ from the list, and every
/// model when the currency is not USD.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub provider: String,
    pub model: String,
    pub input_cost_per_million_tokens: f64,
    pub output_cost_per_million_tokens: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_cost_per_million_tokens: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_cost_per_million_tokens: Option<f64>,
}

impl PriceOverride {
    /// Provider and model named; every amount finite and 0 or more. `field` names the failing field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let amounts = [
            (
                "input_cost_per_million_tokens",
                Some(self.input_cost_per_million_tokens),
            ),
            (
                "output_cost_per_million_tokens",
                Some(self.output_cost_per_million_tokens),
            ),
            (
                "cache_read_cost_per_million_tokens",
                self.cache_read_cost_per_million_tokens,
            ),
            (
                "cache_write_cost_per_million_tokens",
                self.cache_write_cost_per_million_tokens,
            ),
        ];
        for (field, v) in amounts {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(ValidationError::new(
                    field,
                    format!("{field} must be an amount of 0 or more"),
                ));
            }
        }
        for (field, v) in [("provider", &self.provider), ("model", &self.model)] {
            if v.is_empty() {
                return Err(ValidationError::new(field, "provider and model are required"));
            }
        }
        Ok(())
    }

    /// The per-token prices.
    pub fn prices(&self) -> Prices {
        Prices {
            input: self.input_cost_per_million_tokens / 1e6,
            output: self.output_cost_per_million_tokens / 1e6,
            cache_read: self.cache_read_cost_per_million_tokens.map(|c| c / 1e6),
            cache_write: self.cache_write_cost_per_million_tokens.map(|c| c / 1e6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_names_are_checked() {
        let ok = PriceOverride {
            provider: "p".into(),
            model: "m".into(),
            input_cost_per_million_tokens: 2.0,
            output_cost_per_million_tokens: 4.0,
            cache_read_cost_per_million_tokens: None,
            cache_write_cost_per_million_tokens: None,
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.prices().output, 4e-6);
        let bad = PriceOverride {
            output_cost_per_million_tokens: -1.0,
            ..ok.clone()
        };
        assert_eq!(
            bad.validate().unwrap_err().field,
            "output_cost_per_million_tokens"
        );
        let unnamed = PriceOverride {
            model: String::new(),
            ..ok
        };
        assert_eq!(unnamed.validate().unwrap_err().field, "model");
    }
}
