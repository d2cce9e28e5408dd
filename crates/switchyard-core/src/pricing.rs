//! What a call cost: the embedded per-token price table and token usage read from answers.
//!
//! The table (`data/prices.json`, derived from LiteLLM's MIT-licensed table, see
//! `data/PRICES-NOTICE.md`) is embedded at build time and never fetched at run time. It applies only
//! where it is true: a built-in provider at its own default endpoint. A provider whose `base_url` was
//! changed (e.g. `openai` pointed at a mittwald dedicated endpoint, as in the seed) is not billed at the
//! vendor's list price; like every custom provider, its cost is *unknown* (flagged, never a silent $0)
//! until operators set their own prices.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The operator's currency (ISO 4217 code, `--currency`): every amount the gateway counts, shows or
/// refuses with (price overrides, budgets, spend, costs) is in it, without conversion. The embedded
/// vendor table is in USD, so it prices calls only when the currency is USD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Currency(String);

impl Default for Currency {
    fn default() -> Self {
        Currency("USD".into())
    }
}

impl Currency {
    /// Three ASCII letters, any case (`eur` is `EUR`).
    pub fn parse(code: &str) -> Result<Currency, String> {
        let code = code.trim();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Currency(code.to_ascii_uppercase()))
        } else {
            Err(format!(
                "currency must be a three-letter ISO 4217 code such as USD or EUR, not '{code}'"
            ))
        }
    }

    pub fn code(&self) -> &str {
        &self.0
    }

    /// Whether the embedded (USD) vendor price table applies.
    pub fn is_usd(&self) -> bool {
        self.0 == "USD"
    }

    /// `$`, `€`, `£`, `¥`, or the code itself.
    pub fn symbol(&self) -> &str {
        match self.0.as_str() {
            "USD" => "$",
            "EUR" => "€",
            "GBP" => "£",
            "JPY" => "¥",
            other => other,
        }
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Amount per token, in the operator's [`Currency`] (the embedded table: USD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct Prices {
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
}

/// Token counts of one call. `input` excludes cached tokens (`cache_read`, `cache_write`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }
}

impl Prices {
    pub fn cost(&self, u: &TokenUsage) -> f64 {
        u.input as f64 * self.input
            + u.output as f64 * self.output
            + u.cache_read as f64 * self.cache_read.unwrap_or(self.input)
            + u.cache_write as f64 * self.cache_write.unwrap_or(self.input)
    }
}

pub struct PriceTable {
    by_provider: HashMap<String, HashMap<String, Prices>>,
}

static EMBEDDED: OnceLock<PriceTable> = OnceLock::new();

impl PriceTable {
    pub fn embedded() -> &'static PriceTable {
        EMBEDDED.get_or_init(|| {
            let by_provider = serde_json::from_str(include_str!("../data/prices.json"))
                .expect("the embedded price table is valid JSON");
            PriceTable { by_provider }
        })
    }

    /// Prices of `model` at built-in `provider`; tries the name as given, then without `-latest`.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<Prices> {
        let models = self.by_provider.get(provider)?;
        models
            .get(model)
            .or_else(|| models.get(model.strip_suffix("-latest")?))
            .copied()
    }

    pub fn len(&self) -> usize {
        self.by_provider.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod currency_tests {
    use super::Currency;

    #[test]
    fn currency_codes_are_three_letters() {
        assert_eq!(Currency::parse(" eur").unwrap().code(), "EUR");
        assert_eq!(Currency::parse("EUR").unwrap().symbol(), "€");
        assert!(Currency::default().is_usd());
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("€").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_prices_known_models() {
        let t = PriceTable::embedded();
        assert!(t.len() > 500);
        let p = t.lookup("openai", "gpt-4o-mini").unwrap();
        let usage = TokenUsage {
            input: 1_000_000,
            output: 1_000_000,
            cache_read: 0,
            cache_write: 0,
        };
        assert!((p.cost(&usage) - 0.75).abs() < 1e-9, "{}", p.cost(&usage));
        assert!(t.lookup("openai", "YOUR_MODEL_ID").is_none());
        assert!(t.lookup("mittwald-shared", "gpt-oss-120b").is_none());
    }

    #[test]
    fn cached_tokens_use_their_own_price() {
        let p = Prices {
            input: 1.0,
            output: 2.0,
            cache_read: Some(0.1),
            cache_write: Some(1.25),
        };
        let u = TokenUsage {
            input: 10,
            output: 5,
            cache_read: 100,
            cache_write: 8,
        };
        assert!((p.cost(&u) - (10.0 + 10.0 + 10.0 + 10.0)).abs() < 1e-9);
    }
}
